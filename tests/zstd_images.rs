//! zstd images as the Go tools write them: skopeo (Debian's 1.9.3, containers/image 5.23,
//! klauspost/compress 1.15.12 inside) pushes an uncompressed OCI layout to a real registry
//! as `zstd` and as `zstd:chunked` (containers/storage 1.43's chunked compressor: one zstd
//! frame per file, the table of contents in a skippable frame, a footer, annotations in the
//! manifest). booster must rebuild every layer through its klauspost model with no
//! corrections, keep every manifest digest through pull/push, diff/apply and export/import,
//! and a small update's patch must cost about what the gzip twin's does.

mod common;

use std::path::{Path, PathBuf};

use common::image::{self, Layer};
use common::registry::{TestRegistry, skopeo_copy, skopeo_digest};
use common::{booster, ok, pseudo_random, pseudo_text, tar_of};

/// The three flavours of one image: skopeo's default (pgzip), zstd and zstd:chunked.
const FLAVOURS: [(&str, &[&str]); 3] = [
    ("gzip", &[]),
    ("zstd", &["--dest-compress", "--dest-compress-format", "zstd"]),
    (
        "chunked",
        &["--dest-compress", "--dest-compress-format", "zstd:chunked"],
    ),
];

/// One registry per flavour: skopeo's blob info cache would otherwise hand the zstd push
/// the gzip blob of the same layer already in the registry (containers/image 5.23 reuses a
/// blob whatever its compression). Each registry holds the upstream images under `test/`
/// and the copies booster pushes under `mirror/test/`.
struct Fixture {
    work: tempfile::TempDir,
    registries: Vec<(&'static str, TestRegistry)>,
}

impl Fixture {
    fn registry(&self, flavour: &str) -> &str {
        let (_, r) = self.registries.iter().find(|(f, _)| *f == flavour).unwrap();
        &r.addr
    }

    fn mirror(&self, flavour: &str) -> String {
        format!("{}/mirror", self.registry(flavour))
    }
}

fn files(seed: u64, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("usr/share/pkg{i}/notes.txt"),
                pseudo_text(2000 + i * 150, seed * 1000 + i as u64),
            )
        })
        .collect();
    let mut lib = pseudo_text(1 << 20, seed + 70);
    lib.extend(pseudo_random(1 << 20, seed + 71));
    v.push(("usr/lib/libapp.so".into(), lib));
    v.push(("usr/share/big.txt".into(), pseudo_text(3 << 20, seed + 72)));
    v
}

fn tar_from(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    tar_of(
        &files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect::<Vec<_>>(),
    )
}

/// v1 and v2 of a three-layer image (a base, a library layer, an app layer); v2 edits a
/// few files of the app layer. Each is pushed to the source registry in every flavour as
/// `test/app-FLAVOUR:v1|v2`.
fn fixture() -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let registries: Vec<_> = FLAVOURS
        .iter()
        .map(|(f, _)| (*f, TestRegistry::start()))
        .collect();
    let base = Layer::plain(&tar_from(&files(1, 60)));
    let libs = Layer::plain(&tar_from(&files(2, 20)));
    let app = files(3, 30);
    let mut app2 = app.clone();
    app2[4].1.extend_from_slice(b"\nchanged in v2\n");
    let lib = app2.len() - 2;
    let at = app2[lib].1.len() / 3;
    app2[lib].1[at..at + 48].copy_from_slice(&pseudo_random(48, 999));
    app2.push(("usr/share/pkg-new/notes.txt".into(), pseudo_text(9000, 4242)));
    for (tag, app) in [("v1", &app), ("v2", &app2)] {
        let layout = work.path().join(format!("layout-{tag}"));
        let layers = [base.clone(), libs.clone(), Layer::plain(&tar_from(app))];
        image::write_image_layout(&layout, tag, &layers);
        for ((flavour, args), (_, registry)) in FLAVOURS.iter().zip(&registries) {
            skopeo_copy(
                &format!("oci:{}:{tag}", layout.display()),
                &format!("docker://{}/test/app-{flavour}:{tag}", registry.addr),
                args,
            );
        }
    }
    Fixture { work, registries }
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn image_ref(f: &Fixture, flavour: &str, tag: &str) -> String {
    format!("{}/test/app-{flavour}:{tag}", f.registry(flavour))
}

fn upstream_digest(f: &Fixture, flavour: &str, tag: &str) -> String {
    skopeo_digest(&format!("docker://{}", image_ref(f, flavour, tag)))
}

fn mirrored_digest(f: &Fixture, flavour: &str, tag: &str) -> String {
    skopeo_digest(&format!(
        "docker://{}/test/app-{flavour}:{tag}",
        f.mirror(flavour)
    ))
}

fn write_list(f: &Fixture, name: &str, refs: &[String]) -> PathBuf {
    let p = f.work.path().join(name);
    std::fs::write(&p, refs.join("\n") + "\n").unwrap();
    p
}

/// Every layer of `image` in `store`, as `booster inspect --json` reports it.
fn inspected_layers(store: &Path, image: &str) -> Vec<serde_json::Value> {
    let out = ok(&booster(store, &["--json", "inspect", image]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["manifests"][0]["layers"].as_array().unwrap().clone()
}

#[test]
fn zstd_layers_written_by_skopeo_rebuild_through_the_klauspost_model() {
    let f = fixture();
    let store = f.work.path().join("store");
    for flavour in ["zstd", "chunked"] {
        let r = image_ref(&f, flavour, "v1");
        ok(&booster(&store, &["pull", &r]));
        for layer in inspected_layers(&store, &r) {
            let method = layer["method"].as_str().unwrap();
            // containers/image 5.23 writes with klauspost/compress 1.15.12: at its default
            // speed for zstd, where 1.18.0 writes the same bytes (the model tried first
            // names them), and at SpeedBestCompression for zstd:chunked (level 10), where
            // the two differ.
            let want = if flavour == "zstd" {
                ["klauspost 1.1", "default"]
            } else {
                ["klauspost 1.15", "best"]
            };
            assert!(want.iter().all(|w| method.contains(w)), "{flavour}: {layer}");
            assert_eq!(layer["correction_bytes"], 0, "{flavour}: {layer}");
        }
        ok(&booster(&store, &["push", &r, "--to", &f.mirror(flavour)]));
        assert_eq!(
            mirrored_digest(&f, flavour, "v1"),
            upstream_digest(&f, flavour, "v1"),
            "{flavour}"
        );
    }
    ok(&booster(&store, &["fsck", "--rebuild"]));
}

/// `diff` then `apply` of v1 → v2 in one flavour; returns the patch size.
fn patch_and_apply(f: &Fixture, flavour: &str) -> u64 {
    let old = write_list(f, &format!("old-{flavour}.txt"), &[image_ref(f, flavour, "v1")]);
    let new = write_list(f, &format!("new-{flavour}.txt"), &[image_ref(f, flavour, "v2")]);
    let patch = f.work.path().join(format!("{flavour}.patch"));
    // The receiving site runs v1 already.
    skopeo_copy(
        &format!("docker://{}", image_ref(f, flavour, "v1")),
        &format!("docker://{}/test/app-{flavour}:v1", f.mirror(flavour)),
        &[],
    );
    let out = ok(&booster(
        &f.work.path().join(format!("sender-{flavour}")),
        &["--json", "diff", arg(&old), arg(&new), "-o", arg(&patch)],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["bundle"]["carried_whole_bytes"], 0, "{flavour}: {report}");
    ok(&booster(
        &f.work.path().join(format!("receiver-{flavour}")),
        &["apply", arg(&old), arg(&new), arg(&patch), &f.mirror(flavour)],
    ));
    assert_eq!(
        mirrored_digest(f, flavour, "v2"),
        upstream_digest(f, flavour, "v2"),
        "{flavour}"
    );
    report["patch_bytes"].as_u64().unwrap()
}

#[test]
fn a_zstd_chunked_update_patches_like_its_gzip_twin() {
    let f = fixture();
    let gzip = patch_and_apply(&f, "gzip");
    let chunked = patch_and_apply(&f, "chunked");
    let zstd = patch_and_apply(&f, "zstd");
    eprintln!("patch bytes: gzip {gzip}, zstd {zstd}, zstd:chunked {chunked}");
    assert!(chunked * 2 <= gzip * 3, "zstd:chunked {chunked} vs gzip {gzip}");
    assert!(zstd * 2 <= gzip * 3, "zstd {zstd} vs gzip {gzip}");
}

#[test]
fn a_zstd_chunked_image_crosses_an_air_gap_with_its_digests() {
    let f = fixture();
    let old = write_list(&f, "old.txt", &[image_ref(&f, "chunked", "v1")]);
    let new = write_list(&f, "new.txt", &[image_ref(&f, "chunked", "v2")]);
    let bundle = f.work.path().join("bundle.bkp");
    ok(&booster(
        &f.work.path().join("sender"),
        &["export", "--since", arg(&old), arg(&new), "-o", arg(&bundle)],
    ));
    // The air-gapped side holds v1 (pulled before the gap), imports the bundle, pushes v2.
    let rx = f.work.path().join("receiver");
    ok(&booster(&rx, &["pull", &image_ref(&f, "chunked", "v1")]));
    ok(&booster(&rx, &["import", arg(&bundle)]));
    ok(&booster(
        &rx,
        &[
            "push",
            &image_ref(&f, "chunked", "v2"),
            "--to",
            &f.mirror("chunked"),
        ],
    ));
    assert_eq!(
        mirrored_digest(&f, "chunked", "v2"),
        upstream_digest(&f, "chunked", "v2")
    );
    ok(&booster(&rx, &["fsck", "--rebuild"]));
}
