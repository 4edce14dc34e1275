//! Patches end to end: `diff` against a source registry, `apply` into a second registry that
//! holds only the old images, and every new manifest digest must match the source.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::image::{self, Layer};
use common::proxy::{Fault, FaultProxy};
use common::registry::{TestRegistry, skopeo_copy, skopeo_digest};
use common::{booster, ok, pseudo_random, pseudo_text, stderr, tar_of};

struct Fixture {
    src: TestRegistry,
    dst: TestRegistry,
    work: tempfile::TempDir,
    old_list: PathBuf,
    new_list: PathBuf,
    new_refs: Vec<String>,
}

fn big_file(seed: u64) -> Vec<u8> {
    let mut v = pseudo_text(3 << 20, seed);
    v.extend(pseudo_random(2 << 20, seed + 1));
    v.extend(pseudo_text(3 << 20, seed + 2));
    v
}

/// Old and new versions of two images sharing a base layer. In the new app image, a big
/// file changes in the middle, a file is removed and one is added.
fn fixture() -> Fixture {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let base_files: Vec<(String, Vec<u8>)> = (0..30)
        .map(|i| {
            (
                format!("etc/base/file{i}.conf"),
                pseudo_text(2000 + i * 50, 100 + i as u64),
            )
        })
        .collect();
    let base_tar = tar_of(
        &base_files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect::<Vec<_>>(),
    );
    let big_old = big_file(7);
    let mut big_new = big_old.clone();
    let mid = big_new.len() / 2;
    big_new[mid..mid + 300].copy_from_slice(&pseudo_random(300, 999));
    let doc_a = pseudo_text(40_000, 11);
    let doc_b = pseudo_text(30_000, 12);
    let doc_c = pseudo_text(20_000, 13);
    let app_old = tar_of(&[
        ("opt/app/lib/libbig.so", &big_old),
        ("opt/app/doc/a.txt", &doc_a),
        ("opt/app/doc/b.txt", &doc_b),
    ]);
    let app_new = tar_of(&[
        ("opt/app/lib/libbig.so", &big_new),
        ("opt/app/doc/a.txt", &doc_a),
        ("opt/app/doc/c.txt", &doc_c),
    ]);
    let cfg = tar_of(&[("etc/app.conf", b"answer = 42\n")]);
    let tool_old = tar_of(&[("usr/bin/tool", &pseudo_random(500_000, 21))]);
    let mut tool_bin = pseudo_random(500_000, 21);
    tool_bin[1000..1010].copy_from_slice(b"version 2!");
    let tool_new = tar_of(&[("usr/bin/tool", &tool_bin)]);

    // Real encoders: GNU gzip for the base, pigz for the app, zstd for the tool.
    let base = Layer::gzip_by(&base_tar, "gzip", &["-9", "-n", "-c"]);
    let images = [
        (
            "app",
            "v1",
            vec![
                base.clone(),
                Layer::gzip_by(&app_old, "pigz", &["-6", "-n", "-c"]),
                Layer::gzip_by(&cfg, "gzip", &["-6", "-c"]),
            ],
        ),
        (
            "app",
            "v2",
            vec![
                base.clone(),
                Layer::gzip_by(&app_new, "pigz", &["-6", "-n", "-c"]),
                Layer::gzip_by(&cfg, "gzip", &["-6", "-c"]),
            ],
        ),
        (
            "tool",
            "v1",
            vec![base.clone(), Layer::zstd_by(&tool_old, &["-3", "-c"])],
        ),
        (
            "tool",
            "v2",
            vec![base.clone(), Layer::zstd_by(&tool_new, &["-3", "-c"])],
        ),
    ];
    for (repo, tag, layers) in &images {
        let dir = work.path().join(format!("{repo}-{tag}"));
        image::write_image_layout(&dir, tag, layers);
        skopeo_copy(
            &format!("oci:{}:{tag}", dir.display()),
            &format!("docker://{}/test/{repo}:{tag}", src.addr),
            &[],
        );
    }
    // The receiving registry has only the old images.
    for r in ["app:v1", "tool:v1"] {
        skopeo_copy(
            &format!("docker://{}/test/{r}", src.addr),
            &format!("docker://{}/test/{r}", dst.addr),
            &[],
        );
    }
    let old_list = work.path().join("old.txt");
    let new_list = work.path().join("new.txt");
    std::fs::write(
        &old_list,
        format!("# old\n{0}/test/app:v1\n{0}/test/tool:v1\n", src.addr),
    )
    .unwrap();
    let new_refs = vec![
        format!("{}/test/app:v2", src.addr),
        format!("{}/test/tool:v2", src.addr),
    ];
    std::fs::write(&new_list, new_refs.join("\n") + "\n").unwrap();
    Fixture {
        src,
        dst,
        work,
        old_list,
        new_list,
        new_refs,
    }
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn make_patch(f: &Fixture) -> (PathBuf, serde_json::Value) {
    let store = f.work.path().join("sender");
    let patch = f.work.path().join("old-to-new.patch");
    let out = ok(&booster(
        &store,
        &[
            "--json",
            "diff",
            arg(&f.old_list),
            arg(&f.new_list),
            "-o",
            arg(&patch),
        ],
    ));
    (patch, serde_json::from_str(&out).unwrap())
}

fn assert_new_images_match(f: &Fixture) {
    for r in &f.new_refs {
        let moved = r.replacen(&f.src.addr, &f.dst.addr, 1);
        assert_eq!(
            skopeo_digest(&format!("docker://{moved}")),
            skopeo_digest(&format!("docker://{r}")),
            "{r}"
        );
    }
}

#[test]
fn diff_then_apply_reproduces_every_new_digest() {
    let f = fixture();
    let (patch, report) = make_patch(&f);
    // Nothing in it needs format version 2 (archives): version 1, which every booster reads.
    assert_eq!(std::fs::read(&patch).unwrap()[8..12], 1u32.to_le_bytes());
    let patch_bytes = report["patch_bytes"].as_u64().unwrap();
    let update = report["pull_update_bytes"].as_u64().unwrap();
    assert!(
        patch_bytes * 5 < update,
        "patch {patch_bytes} vs pull update {update}"
    );
    let statuses: Vec<&str> = report["bundle"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"shared") && statuses.contains(&"delta"),
        "{statuses:?}"
    );

    let receiver = f.work.path().join("receiver");
    let out = booster(
        &receiver,
        &[
            "--json",
            "apply",
            arg(&f.old_list),
            arg(&f.new_list),
            arg(&patch),
            &f.dst.addr,
        ],
    );
    let applied: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_new_images_match(&f);
    // The shared base layer and the app's unchanged config layer are at the destination
    // and give the patch no bytes: not pulled.
    assert_eq!(applied["base_layers_left_out"], 2, "{applied}");
    ok(&booster(&receiver, &["fsck", "--rebuild"]));
    // A second apply has nothing left to do and still succeeds.
    ok(&booster(
        &receiver,
        &[
            "apply",
            arg(&f.old_list),
            arg(&f.new_list),
            arg(&patch),
            &f.dst.addr,
        ],
    ));
}

#[test]
fn a_patch_for_another_base_is_refused_before_anything_is_pushed() {
    let f = fixture();
    let (patch, _) = make_patch(&f);
    // A third registry with unrelated images only.
    let other = TestRegistry::start();
    let layout = f.work.path().join("unrelated");
    image::write_image_layout(
        &layout,
        "v1",
        &[Layer::gzip_by(
            &tar_of(&[("x", b"unrelated")]),
            "gzip",
            &["-n", "-c"],
        )],
    );
    for r in ["app:v1", "tool:v1"] {
        skopeo_copy(
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/test/{r}", other.addr),
            &[],
        );
    }
    let receiver = f.work.path().join("receiver");
    let out = booster(
        &receiver,
        &[
            "apply",
            arg(&f.old_list),
            arg(&f.new_list),
            arg(&patch),
            &other.addr,
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("refusing to apply") && err.contains("base"), "{err}");
    assert_eq!(
        other.http_status("HEAD", "/v2/test/app/manifests/v2").unwrap(),
        404,
        "nothing may be pushed"
    );
}

#[test]
fn a_corrupted_patch_is_refused_with_nothing_pushed() {
    let f = fixture();
    let (patch, _) = make_patch(&f);
    let mut bytes = std::fs::read(&patch).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    let bad = f.work.path().join("bad.patch");
    std::fs::write(&bad, &bytes).unwrap();
    let receiver = f.work.path().join("receiver");
    let out = booster(
        &receiver,
        &[
            "apply",
            arg(&f.old_list),
            arg(&f.new_list),
            arg(&bad),
            &f.dst.addr,
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("damaged") && err.contains("section"), "{err}");
    assert_eq!(
        f.dst.http_status("HEAD", "/v2/test/app/manifests/v2").unwrap(),
        404
    );
    assert_eq!(
        f.dst.http_status("HEAD", "/v2/test/tool/manifests/v2").unwrap(),
        404
    );
}

#[test]
fn an_interrupted_apply_finishes_on_rerun() {
    let f = fixture();
    let (patch, _) = make_patch(&f);
    let receiver = f.work.path().join("receiver");
    for delay_ms in [300u64, 900] {
        let mut child = Command::new(common::booster_bin())
            .arg("--store")
            .arg(&receiver)
            .args([
                "apply",
                arg(&f.old_list),
                arg(&f.new_list),
                arg(&patch),
                &f.dst.addr,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        ok(&booster(&receiver, &["fsck"]));
    }
    ok(&booster(
        &receiver,
        &[
            "apply",
            arg(&f.old_list),
            arg(&f.new_list),
            arg(&patch),
            &f.dst.addr,
        ],
    ));
    assert_new_images_match(&f);
}

#[test]
fn dry_run_estimates_without_writing() {
    let f = fixture();
    let store = f.work.path().join("sender");
    let patch = f.work.path().join("never.patch");
    let out = ok(&booster(
        &store,
        &[
            "--json",
            "diff",
            "--dry-run",
            arg(&f.old_list),
            arg(&f.new_list),
            "-o",
            arg(&patch),
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["dry_run"].as_bool().unwrap());
    assert!(v["patch_bytes"].as_u64().unwrap() > 0);
    assert!(!patch.exists());
}

/// The shortcut's fallback: a new image whose layers have the old contents but not the old
/// blobs (recompressed), so the destination lacks them. The patch takes no bytes from those
/// layers, yet they are pulled and ingested as before, the new blobs are rebuilt from
/// them, and the pushed image has the upstream digest.
#[test]
fn layers_the_destination_lacks_are_pulled_even_when_the_patch_needs_no_bytes_of_them() {
    let f = fixture();
    let old = format!("{}/test/app:v1", f.src.addr);
    let recompressed = format!("{}/test/app:v3", f.src.addr);
    // The old layers' plain tars, compressed again by GNU gzip -1: new blobs, old contents.
    let plain = f.work.path().join("plain-v1");
    skopeo_copy(
        &format!("docker://{old}"),
        &format!("dir:{}", plain.display()),
        &["--dest-decompress"],
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plain.join("manifest.json")).unwrap()).unwrap();
    let layers: Vec<Layer> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            Layer::gzip_by(
                &std::fs::read(plain.join(d)).unwrap(),
                "gzip",
                &["-1", "-n", "-c"],
            )
        })
        .collect();
    let layout = f.work.path().join("app-v3");
    image::write_image_layout(&layout, "v3", &layers);
    skopeo_copy(
        &format!("oci:{}:v3", layout.display()),
        &format!("docker://{recompressed}"),
        &[],
    );
    let (receiver, applied) = diff_and_apply(&f, &old, &recompressed, "v3", &f.dst.addr);
    assert_eq!(applied["base_layers_left_out"], 0, "{applied}");
    assert_eq!(
        skopeo_digest(&format!("docker://{}/test/app:v3", f.dst.addr)),
        skopeo_digest(&format!("docker://{recompressed}"))
    );
    let images = ok(&booster(&receiver, &["images"]));
    assert!(images.contains("test/app:v3"), "{images}");
    ok(&booster(&receiver, &["fsck", "--rebuild"]));
}

/// A new image bound for another repository than the old one: the layers it shares
/// unchanged with the old image are stored only as delta bases on both sides, so the
/// push mounts them from the old image's repository at the destination instead of
/// rebuilding them, and the apply does not pull them.
#[test]
fn a_new_image_in_another_repository_mounts_the_shared_layers_from_the_old_one() {
    let f = fixture();
    let applied = apply_into_another_repository(&f, &f.dst.addr);
    assert_eq!(applied["base_layers_left_out"], 2, "{applied}");
    assert_eq!(applied["pushed"][0]["blobs_mounted"], 2, "{applied}");
}

/// The same where the registry refuses cross-repository mounts (as registries without
/// the feature, or token scopes limited to the target, do): the shared layers are copied
/// from the old image's repository instead.
#[test]
fn a_refused_mount_copies_the_shared_layers_from_the_old_repository() {
    let f = fixture();
    let proxy = FaultProxy::start(&f.dst.addr);
    proxy.add("?mount=", Fault::Status(403), usize::MAX);
    let applied = apply_into_another_repository(&f, &proxy.addr);
    assert!(proxy.hits.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    assert_eq!(applied["pushed"][0]["blobs_mounted"], 0, "{applied}");
}

/// Apply `test/app:v1` → `test/app-next:v2` into `dest` (the fixture's destination, maybe
/// through a proxy); checks the pushed digest and the receiver's store, returns the report.
fn apply_into_another_repository(f: &Fixture, dest: &str) -> serde_json::Value {
    let old = format!("{}/test/app:v1", f.src.addr);
    let new = format!("{}/test/app-next:v2", f.src.addr);
    skopeo_copy(
        &format!("docker://{}/test/app:v2", f.src.addr),
        &format!("docker://{new}"),
        &[],
    );
    let (receiver, applied) = diff_and_apply(f, &old, &new, "next", dest);
    assert_eq!(
        skopeo_digest(&format!("docker://{}/test/app-next:v2", f.dst.addr)),
        skopeo_digest(&format!("docker://{new}"))
    );
    ok(&booster(&receiver, &["fsck"]));
    applied
}

/// `diff` from image `old` to image `new` (the fixture's sender store), then `apply` the
/// patch into `dest` with a fresh receiver store; returns that store and the apply report.
fn diff_and_apply(f: &Fixture, old: &str, new: &str, name: &str, dest: &str) -> (PathBuf, serde_json::Value) {
    let old_list = f.work.path().join(format!("old-{name}.txt"));
    std::fs::write(&old_list, format!("{old}\n")).unwrap();
    let new_list = f.work.path().join(format!("new-{name}.txt"));
    std::fs::write(&new_list, format!("{new}\n")).unwrap();
    let patch = f.work.path().join(format!("{name}.patch"));
    ok(&booster(
        &f.work.path().join("sender"),
        &["diff", arg(&old_list), arg(&new_list), "-o", arg(&patch)],
    ));
    let receiver = f.work.path().join(format!("receiver-{name}"));
    let out = booster(
        &receiver,
        &[
            "--json",
            "apply",
            arg(&old_list),
            arg(&new_list),
            arg(&patch),
            dest,
        ],
    );
    (receiver, serde_json::from_str(&ok(&out)).unwrap())
}
