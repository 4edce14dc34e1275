//! Images in and out through real registries (Debian's docker-registry on loopback):
//! round trips whose manifest digests must be identical at both ends.

mod common;

use common::image::{self, Layer, layout_digest, sample_tar};
use common::registry::{TestRegistry, skopeo_copy, skopeo_digest};
use common::{booster, ok, stderr};

fn store_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// An image pushed by skopeo (layers compressed by containers/image's pgzip: real Go
/// output), pulled by booster and pushed to a second registry: same manifest digest.
#[test]
fn skopeo_pushed_image_round_trips_between_registries() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    image::write_image_layout(
        &layout,
        "v1",
        &[
            Layer::plain(&sample_tar(1, 40, 3 << 20)),
            Layer::plain(&sample_tar(2, 10, 1 << 20)),
        ],
    );
    let src_ref = format!("{}/test/app:v1", src.addr);
    skopeo_copy(
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{src_ref}"),
        &[],
    );
    let want = skopeo_digest(&format!("docker://{src_ref}"));

    let store = store_dir();
    ok(&booster(store.path(), &["pull", &format!("docker://{src_ref}")]));
    ok(&booster(store.path(), &["push", &src_ref, "--to", &dst.addr]));
    let got = skopeo_digest(&format!("docker://{}/test/app:v1", dst.addr));
    assert_eq!(got, want);

    // Pulling again fetches nothing new, pushing again uploads nothing.
    let out = ok(&booster(store.path(), &["--json", "pull", &src_ref]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["layers_fetched"].as_array().unwrap().len(), 0);
    let out = ok(&booster(
        store.path(),
        &["--json", "push", &src_ref, "--to", &dst.addr],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["blobs_uploaded"], 0);
    ok(&booster(store.path(), &["fsck", "--rebuild"]));

    // Into another repository of the same registry: blobs are mounted, not uploaded.
    let out = ok(&booster(
        store.path(),
        &[
            "--json",
            "push",
            &src_ref,
            "--to",
            &format!("{}/mirror", src.addr),
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v[0]["blobs_mounted"].as_u64().unwrap() >= 2, "{out}");
    assert_eq!(v[0]["blobs_uploaded"], 0, "{out}");
    assert_eq!(
        skopeo_digest(&format!("docker://{}/mirror/test/app:v1", src.addr)),
        want
    );
}

#[test]
fn oci_layout_to_registry_to_oci_layout_keeps_digests() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let tar = sample_tar(3, 20, 2 << 20);
    let want = image::write_image_layout(
        &src,
        "v1",
        &[
            Layer::gzip_by(&tar, "gzip", &["-6", "-n", "-c"]),
            Layer::zstd_by(&sample_tar(4, 5, 1 << 20), &["-3", "-c"]),
        ],
    );
    let store = store_dir();
    let dest = format!("docker://{}/layout/app:v1", reg.addr);
    ok(&booster(
        store.path(),
        &["copy", &format!("oci:{}:v1", src.display()), &dest],
    ));
    assert_eq!(skopeo_digest(&dest), want);
    let back = work.path().join("back");
    let other_store = store_dir();
    ok(&booster(
        other_store.path(),
        &["copy", &dest, &format!("oci:{}:v1", back.display())],
    ));
    assert_eq!(layout_digest(&back, "v1"), want);
    // skopeo can read what booster wrote.
    skopeo_copy(
        &format!("oci:{}:v1", back.display()),
        &format!("dir:{}", work.path().join("dir").display()),
        &[],
    );
}

#[test]
fn two_platform_index_is_preserved_byte_exact() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("multi");
    let amd = sample_tar(5, 10, 1 << 20);
    let arm = sample_tar(6, 10, 1 << 20);
    let index_digest = image::write_multiarch_layout(
        &layout,
        "multi",
        &[Layer::gzip_by(&amd, "gzip", &["-9", "-n", "-c"])],
        &[Layer::gzip_by(&arm, "pigz", &["-6", "-n", "-c"])],
    );
    let src_ref = format!("{}/test/multi:1", src.addr);
    let store = store_dir();
    ok(&booster(
        store.path(),
        &[
            "copy",
            &format!("oci:{}:multi", layout.display()),
            &format!("docker://{src_ref}"),
        ],
    ));
    assert_eq!(skopeo_digest(&format!("docker://{src_ref}")), index_digest);

    let store2 = store_dir();
    ok(&booster(store2.path(), &["pull", &src_ref]));
    ok(&booster(store2.path(), &["push", &src_ref, "--to", &dst.addr]));
    assert_eq!(
        skopeo_digest(&format!("docker://{}/test/multi:1", dst.addr)),
        index_digest
    );

    // --platform keeps one manifest and says the index was not kept.
    let store3 = store_dir();
    let out = booster(store3.path(), &["pull", &src_ref, "--platform", "linux/arm64"]);
    ok(&out);
    assert!(
        stderr(&out).contains("the index itself is not kept"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn docker_v2s2_image_round_trips() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    image::write_image_layout(&layout, "v1", &[Layer::plain(&sample_tar(7, 10, 1 << 20))]);
    let src_ref = format!("{}/test/docker:v1", src.addr);
    skopeo_copy(
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{src_ref}"),
        &["--format", "v2s2"],
    );
    let want = skopeo_digest(&format!("docker://{src_ref}"));
    let store = store_dir();
    ok(&booster(store.path(), &["pull", &src_ref]));
    ok(&booster(store.path(), &["push", &src_ref, "--to", &dst.addr]));
    assert_eq!(
        skopeo_digest(&format!("docker://{}/test/docker:v1", dst.addr)),
        want
    );
    let out = ok(&booster(store.path(), &["--json", "inspect", &src_ref]));
    assert!(
        out.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{out}"
    );
}

#[test]
fn registry_with_basic_auth() {
    let reg = TestRegistry::start_with_auth("alice", "s3cret");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let want = image::write_image_layout(
        &layout,
        "v1",
        &[Layer::gzip_by(&sample_tar(8, 5, 1 << 19), "gzip", &["-n", "-c"])],
    );
    let store = store_dir();
    let dest = format!("docker://{}/private/app:v1", reg.addr);
    // Without credentials: refused with a hint.
    let out = booster(
        store.path(),
        &["copy", &format!("oci:{}:v1", layout.display()), &dest],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("credentials"), "{}", stderr(&out));
    ok(&booster(
        store.path(),
        &[
            "copy",
            "--creds",
            "alice:s3cret",
            &format!("oci:{}:v1", layout.display()),
            &dest,
        ],
    ));
    assert_eq!(
        {
            let out = std::process::Command::new("skopeo")
                .args([
                    "inspect",
                    "--tls-verify=false",
                    "--raw",
                    "--creds",
                    "alice:s3cret",
                    &dest,
                ])
                .output()
                .unwrap();
            image::sha256(&out.stdout)
        },
        want
    );
    // Credentials from an auth file, as `docker login` writes them.
    let auth = work.path().join("auth.json");
    let token = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    };
    std::fs::write(
        &auth,
        format!(r#"{{"auths":{{"{}":{{"auth":"{token}"}}}}}}"#, reg.addr),
    )
    .unwrap();
    let store2 = store_dir();
    let out = std::process::Command::new(common::booster_bin())
        .arg("--store")
        .arg(store2.path())
        .args(["pull", &dest])
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .unwrap();
    ok(&out);
}

/// Rebuild ‖ upload: a blob's upload starts before its rebuild has checked the digest. A
/// damaged chunk near the end of a layer (raw bytes, so it decodes, only wrong) must stop
/// the upload short: the error names the layer, the registry keeps no blob, and once the
/// chunk is repaired the same push finishes with the upstream digest.
#[test]
fn a_blob_that_rebuilds_wrong_never_reaches_the_registry() {
    use booster::id::Digest;
    use booster::store::Store;

    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    // Several MiB compressed, so that whole pieces go out before the damage is reached.
    let layer = Layer::gzip_by(&sample_tar(31, 20, 12 << 20), "gzip", &["-1", "-n", "-c"]);
    assert!(layer.blob.len() > 6 << 20);
    let want = image::write_image_layout(&layout, "v1", std::slice::from_ref(&layer));
    let src_ref = format!("{}/test/live:v1", src.addr);
    let store = store_dir();
    ok(&booster(
        store.path(),
        &[
            "copy",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{src_ref}"),
        ],
    ));
    let blob: Digest = image::sha256(&layer.blob).parse().unwrap();
    let (victim, original) = {
        let st = Store::open(store.path()).unwrap();
        let content = st.blob(&blob).unwrap().unwrap().content;
        let recipe = st.recipe(&content).unwrap().unwrap();
        // The last chunk stored raw (codec byte 0 + its bytes): random data near the end.
        let (victim, raw) = recipe
            .chunks
            .iter()
            .rev()
            .map(|(id, len)| (*id, *len, st.get_chunk_raw(id).unwrap().unwrap()))
            .find(|(_, len, raw)| raw.len() == *len as usize + 1 && raw[0] == 0)
            .map(|(id, _, raw)| (id, raw))
            .expect("a raw chunk");
        let mut bad = raw.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x10;
        st.corrupt_chunk_for_test(&victim, &bad).unwrap();
        (victim, raw)
    };
    let out = booster(store.path(), &["push", &src_ref, "--to", &dst.addr]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&blob.to_string()), "{err}");
    let head = format!("/v2/test/live/blobs/{blob}");
    assert_eq!(dst.http_status("HEAD", &head).unwrap(), 404, "{err}");

    Store::open(store.path())
        .unwrap()
        .corrupt_chunk_for_test(&victim, &original)
        .unwrap();
    ok(&booster(store.path(), &["push", &src_ref, "--to", &dst.addr]));
    assert_eq!(dst.http_status("HEAD", &head).unwrap(), 200);
    assert_eq!(
        skopeo_digest(&format!("docker://{}/test/live:v1", dst.addr)),
        want
    );
}

/// The destination registry dies in the middle of a push: a clear error; after a restart,
/// rerunning the push finishes the job.
#[test]
fn push_to_a_failing_registry_fails_clearly_and_a_rerun_finishes() {
    let src = TestRegistry::start();
    let mut dst = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let layers: Vec<Layer> = (0..6)
        .map(|i| Layer::gzip_by(&sample_tar(20 + i, 5, 2 << 20), "gzip", &["-1", "-n", "-c"]))
        .collect();
    let want = image::write_image_layout(&layout, "v1", &layers);
    let src_ref = format!("{}/test/big:v1", src.addr);
    let store = store_dir();
    ok(&booster(
        store.path(),
        &[
            "copy",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{src_ref}"),
        ],
    ));
    dst.stop();
    let out = booster(
        store.path(),
        &["push", &src_ref, "--to", &dst.addr, "--retries", "2"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&dst.addr) && err.contains("reachable"), "{err}");
    dst.restart();
    ok(&booster(store.path(), &["push", &src_ref, "--to", &dst.addr]));
    assert_eq!(skopeo_digest(&format!("docker://{}/test/big:v1", dst.addr)), want);
}

#[test]
fn image_lists_and_bad_references_give_clear_errors() {
    let store = store_dir();
    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("old.txt");
    std::fs::write(&list, "# base images\n127.0.0.1:1/ok:1\n\nNot/Valid:tag\n").unwrap();
    let out = booster(store.path(), &["pull", list.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("old.txt:4:") && err.contains("lower case"), "{err}");
}
