//! Sneakernet: export on one store, import on another (no registry between them), volumes,
//! damaged and truncated bundles, kills during import, inventories, gc.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::image::{self, Layer, layout_digest};
use common::{booster, ok, pseudo_random, pseudo_text, stderr, tar_of};

struct Images {
    work: tempfile::TempDir,
    /// oci: references, old and new.
    old: Vec<String>,
    new: Vec<String>,
    new_digests: Vec<String>,
}

fn layer_files(seed: u64, n: usize, big: usize) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("usr/share/pkg{i}/data.txt"),
                pseudo_text(5000 + i * 100, seed * 100 + i as u64),
            )
        })
        .collect();
    let mut b = pseudo_text(big / 2, seed + 50);
    b.extend(pseudo_random(big / 2, seed + 51));
    v.push(("usr/lib/libcore.so".into(), b));
    v
}

fn plugin() -> Vec<u8> {
    pseudo_random(2_500_000, 4242)
}

fn tar_from(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    tar_of(
        &files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect::<Vec<_>>(),
    )
}

/// Two images (a, b) in old and new versions, sharing a base layer; each new version
/// changes a few files.
fn images() -> Images {
    let work = tempfile::tempdir().unwrap();
    let base = tar_from(&layer_files(1, 40, 6 << 20));
    let base = Layer::gzip_by(&base, "gzip", &["-6", "-n", "-c"]);
    let mut old = Vec::new();
    let mut new = Vec::new();
    let mut new_digests = Vec::new();
    for (name, seed) in [("a", 10u64), ("b", 20u64)] {
        let files = layer_files(seed, 20, 3 << 20);
        let mut changed = files.clone();
        changed[3].1.extend_from_slice(b"\nchanged in v2\n");
        let big = changed.len() - 1;
        let at = changed[big].1.len() / 3;
        changed[big].1[at..at + 64].copy_from_slice(&pseudo_random(64, seed + 999));
        if name == "b" {
            // New, incompressible content: what a receiver can only have from elsewhere.
            changed.push(("usr/lib/plugin.so".into(), plugin()));
        }
        for (tag, f) in [("v1", &files), ("v2", &changed)] {
            let dir = work.path().join(format!("{name}-{tag}"));
            let d = image::write_image_layout(
                &dir,
                tag,
                &[
                    base.clone(),
                    Layer::gzip_by(&tar_from(f), "pigz", &["-6", "-n", "-c"]),
                ],
            );
            let r = format!("oci:{}:{tag}", dir.display());
            if tag == "v1" {
                old.push(r);
            } else {
                new.push(r);
                new_digests.push(d);
            }
        }
    }
    Images {
        work,
        old,
        new,
        new_digests,
    }
}

fn path_arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write_list(dir: &Path, name: &str, refs: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, refs.join("\n") + "\n").unwrap();
    p
}

/// The receiver: a store that holds the old images.
fn receiver(imgs: &Images, name: &str) -> PathBuf {
    let store = imgs.work.path().join(name);
    let mut args = vec!["pull"];
    args.extend(imgs.old.iter().map(|s| s.as_str()));
    ok(&booster(&store, &args));
    store
}

fn export(imgs: &Images, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let sender = imgs.work.path().join("sender");
    let old = write_list(imgs.work.path(), "old.txt", &imgs.old);
    let new = write_list(imgs.work.path(), "new.txt", &imgs.new);
    let bundle = imgs.work.path().join("bundle.bkp");
    let mut args = vec![
        "--json",
        "export",
        "--since",
        path_arg(&old),
        path_arg(&new),
        "-o",
        path_arg(&bundle),
    ];
    args.extend_from_slice(extra);
    let out = ok(&booster(&sender, &args));
    (bundle, serde_json::from_str(&out).unwrap())
}

fn stats(store: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&ok(&booster(store, &["--json", "stats"]))).unwrap();
    v.as_object_mut().unwrap().remove("disk_bytes");
    v.as_object_mut().unwrap().remove("space");
    v
}

/// Push the imported new images to OCI layouts and compare their digests with the originals.
fn check_new_images(imgs: &Images, store: &Path) {
    for (r, want) in imgs.new.iter().zip(&imgs.new_digests) {
        let out = imgs.work.path().join(format!("out-{}", want.len() + r.len()));
        ok(&booster(
            store,
            &["push", r, "--to", &format!("oci:{}:v2", out.display())],
        ));
        assert_eq!(&layout_digest(&out, "v2"), want, "{r}");
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn export_import_round_trip_and_second_import_adds_nothing() {
    let imgs = images();
    let (bundle, report) = export(&imgs, &[]);
    assert!(report["bundle"]["bundle_bytes"].as_u64().unwrap() > 0);
    let rx = receiver(&imgs, "rx");
    let first: serde_json::Value =
        serde_json::from_str(&ok(&booster(&rx, &["--json", "import", path_arg(&bundle)]))).unwrap();
    assert!(first["import"]["chunks_added"].as_u64().unwrap() > 0);
    check_new_images(&imgs, &rx);
    let before = stats(&rx);
    let second: serde_json::Value =
        serde_json::from_str(&ok(&booster(&rx, &["--json", "import", path_arg(&bundle)]))).unwrap();
    let s = &second["import"];
    for k in [
        "chunks_added",
        "recipes_added",
        "blobs_added",
        "docs_added",
        "images_added",
        "images_updated",
    ] {
        assert_eq!(s[k], 0, "{k} on the second import");
    }
    assert_eq!(stats(&rx), before);
    ok(&booster(&rx, &["fsck", "--rebuild"]));
}

#[test]
fn import_without_the_base_names_the_missing_images_and_changes_nothing() {
    let imgs = images();
    let (bundle, _) = export(&imgs, &[]);
    let empty = imgs.work.path().join("empty");
    ok(&booster(&empty, &["stats"]));
    let before = stats(&empty);
    let out = booster(&empty, &["import", path_arg(&bundle)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("lacks the base") && err.contains("a-v1"), "{err}");
    assert_eq!(stats(&empty), before);
}

/// Damage anywhere (a flipped byte, a truncation) is refused, names a section, and leaves
/// the receiving store exactly as it was.
#[test]
fn damaged_or_truncated_bundles_are_refused_and_change_nothing() {
    let imgs = images();
    let (bundle, _) = export(&imgs, &[]);
    let rx = receiver(&imgs, "rx");
    let before = stats(&rx);
    let bytes = std::fs::read(&bundle).unwrap();
    let bad = imgs.work.path().join("bad.bkp");
    let n = bytes.len();
    let positions: Vec<usize> = (0..24)
        .map(|i| (i * 7919 + 13) * n / (24 * 7919 + 13))
        .chain([0, 9, n - 1, n - 20, n - 45])
        .collect();
    for &at in &positions {
        let mut b = bytes.clone();
        b[at] ^= 1 << (at % 8);
        std::fs::write(&bad, &b).unwrap();
        let out = booster(&rx, &["import", path_arg(&bad)]);
        assert!(!out.status.success(), "flip at {at} was accepted");
        let err = stderr(&out);
        assert!(
            err.contains("section") || err.contains("trailer") || err.contains("header"),
            "flip at {at}: {err}"
        );
    }
    for cut in [n - 1, n - 41, n / 2, 100, 31] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        let out = booster(&rx, &["verify", path_arg(&bad)]);
        assert!(!out.status.success(), "truncation at {cut} was accepted");
        let out = booster(&rx, &["import", path_arg(&bad)]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("truncated") || stderr(&out).contains("damaged"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(stats(&rx), before);
    ok(&booster(&rx, &["fsck"]));
}

#[test]
fn volumes_import_from_any_volume_and_name_a_missing_or_damaged_one() {
    let imgs = images();
    let (bundle, report) = export(&imgs, &["--split-size", "1M"]);
    let files = report["bundle"]["files"].as_array().unwrap().len();
    assert!(files >= 3, "expected several volumes, got {files}");
    assert!(!bundle.exists());
    let vol = |i: usize| PathBuf::from(format!("{}.{i:03}", bundle.display()));
    for i in 1..=files {
        assert!(std::fs::metadata(vol(i)).unwrap().len() <= 1 << 20);
    }
    let rx = receiver(&imgs, "rx");
    ok(&booster(&rx, &["verify", path_arg(&vol(2))]));
    // A damaged volume is named.
    let mut b = std::fs::read(vol(2)).unwrap();
    b[1000] ^= 0xff;
    let saved = std::fs::read(vol(2)).unwrap();
    std::fs::write(vol(2), &b).unwrap();
    let err = stderr(&booster(&rx, &["import", path_arg(&vol(1))]));
    assert!(err.contains("bundle.bkp.002"), "{err}");
    std::fs::write(vol(2), &saved).unwrap();
    // A missing volume is named.
    std::fs::rename(vol(2), imgs.work.path().join("aside")).unwrap();
    let err = stderr(&booster(&rx, &["import", path_arg(&vol(3))]));
    assert!(err.contains("volume 2 is missing"), "{err}");
    std::fs::rename(imgs.work.path().join("aside"), vol(2)).unwrap();
    ok(&booster(&rx, &["import", path_arg(&vol(files))]));
    check_new_images(&imgs, &rx);
}

#[test]
fn kill_9_during_import_then_rerun_succeeds() {
    let imgs = images();
    let (bundle, _) = export(&imgs, &[]);
    let rx = receiver(&imgs, "rx");
    for delay_ms in [50u64, 150, 300, 600] {
        let mut child = Command::new(common::booster_bin())
            .arg("--store")
            .arg(&rx)
            .args(["import", path_arg(&bundle)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        ok(&booster(&rx, &["fsck"]));
    }
    ok(&booster(&rx, &["import", path_arg(&bundle)]));
    ok(&booster(&rx, &["fsck"]));
    check_new_images(&imgs, &rx);
}

/// gc after removing one of two images that share a base frees exactly the chunks only the
/// removed image used.
#[test]
fn gc_frees_exactly_what_only_the_removed_image_used() {
    let imgs = images();
    let store = imgs.work.path().join("s");
    ok(&booster(&store, &["pull", &imgs.old[0], &imgs.old[1]]));
    let chunks_of = |r: &str| -> std::collections::HashSet<String> {
        let st = booster::store::Store::open(&store).unwrap();
        let name = booster::ops::pull::image_name(&booster::oci::reference::ImageRef::parse(r).unwrap());
        let rec = st.image(&name).unwrap().unwrap();
        let mut c = booster::graph::Closure::default();
        c.add_manifest(&st, &rec.digest, &name).unwrap();
        booster::graph::chunks_of(&st, &c.contents)
            .unwrap()
            .into_iter()
            .map(|id| id.to_string())
            .collect()
    };
    let a = chunks_of(&imgs.old[0]);
    let b = chunks_of(&imgs.old[1]);
    let only_b = b.difference(&a).count();
    assert!(only_b > 0 && a.intersection(&b).count() > 0);
    ok(&booster(&store, &["rm", &imgs.old[1]]));
    let dry: serde_json::Value =
        serde_json::from_str(&ok(&booster(&store, &["--json", "gc", "--dry-run"]))).unwrap();
    assert_eq!(dry["chunks_removed"].as_u64().unwrap() as usize, only_b);
    let r: serde_json::Value = serde_json::from_str(&ok(&booster(&store, &["--json", "gc"]))).unwrap();
    assert_eq!(r["chunks_removed"].as_u64().unwrap() as usize, only_b);
    ok(&booster(&store, &["fsck", "--rebuild"]));
    assert_eq!(chunks_of(&imgs.old[0]), a);
}

/// gc started while an import runs: one waits for the other (the store lock), and the
/// import never loses a chunk.
#[test]
fn gc_racing_an_import_loses_nothing() {
    let imgs = images();
    let (bundle, _) = export(&imgs, &[]);
    let rx = receiver(&imgs, "rx");
    let import = Command::new(common::booster_bin())
        .arg("--store")
        .arg(&rx)
        .args(["--wait", "60", "import", path_arg(&bundle)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    ok(&booster(&rx, &["--wait", "60", "gc"]));
    let out = import.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ok(&booster(&rx, &["--wait", "60", "gc"]));
    ok(&booster(&rx, &["fsck", "--rebuild"]));
    check_new_images(&imgs, &rx);
}

/// A receiver that holds images beyond the old list: with its inventory the bundle leaves
/// out what those images already have.
#[test]
fn inventory_export_is_smaller_when_the_receiver_has_more() {
    let imgs = images();
    let rx = receiver(&imgs, "rx");
    // The receiver also has a third image whose big file the new images will carry.
    let extra_dir = imgs.work.path().join("extra");
    let extra_tar = tar_of(&[
        ("opt/extra/README", b"another image"),
        ("opt/extra/plugin.so", &plugin()),
    ]);
    image::write_image_layout(
        &extra_dir,
        "x",
        &[Layer::gzip_by(&extra_tar, "gzip", &["-n", "-c"])],
    );
    let extra_ref = format!("oci:{}:x", extra_dir.display());
    ok(&booster(&rx, &["pull", &extra_ref]));
    // The sender knows that image too (it built it).
    let sender = imgs.work.path().join("sender");
    ok(&booster(&sender, &["pull", &extra_ref]));
    let (_, by_list) = export(&imgs, &[]);
    let inv = imgs.work.path().join("site.inv");
    ok(&booster(&rx, &["inventory", "-o", path_arg(&inv)]));
    let new = write_list(imgs.work.path(), "new.txt", &imgs.new);
    let bundle2 = imgs.work.path().join("by-inv.bkp");
    let out = ok(&booster(
        &sender,
        &[
            "--json",
            "export",
            "--since",
            path_arg(&inv),
            path_arg(&new),
            "-o",
            path_arg(&bundle2),
        ],
    ));
    let by_inv: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list_bytes = by_list["bundle"]["bundle_bytes"].as_u64().unwrap();
    let inv_bytes = by_inv["bundle"]["bundle_bytes"].as_u64().unwrap();
    eprintln!("list-based bundle {list_bytes} bytes, inventory-based {inv_bytes} bytes");
    assert!(
        inv_bytes * 4 < list_bytes,
        "inventory {inv_bytes} vs list {list_bytes}"
    );
    ok(&booster(&rx, &["import", path_arg(&bundle2)]));
    check_new_images(&imgs, &rx);
}

/// An x86-64 program whose code moved (bytes inserted before most of it): its content goes
/// through the branch filter on both sides and the new image still rebuilds exactly.
#[test]
fn machine_code_goes_through_the_x86_filter_and_rebuilds_exactly() {
    let elf = std::fs::read("/usr/bin/ls").expect("/usr/bin/ls (an x86-64 ELF program)");
    assert!(
        elf.starts_with(b"\x7fELF") && elf[18] == 62,
        "/usr/bin/ls is not x86-64 ELF"
    );
    let mut moved = elf.clone();
    let at = moved.len() / 5;
    moved.splice(at..at, pseudo_random(700, 77));
    let doc = pseudo_text(20_000, 78);
    let work = tempfile::tempdir().unwrap();
    let old_files = vec![
        ("usr/bin/tool".to_string(), elf),
        ("usr/share/doc/tool".to_string(), doc.clone()),
    ];
    let new_files = vec![
        ("usr/bin/tool".to_string(), moved),
        ("usr/share/doc/tool".to_string(), doc),
    ];
    let mut refs = Vec::new();
    let mut want = String::new();
    for (tag, files) in [("v1", &old_files), ("v2", &new_files)] {
        let dir = work.path().join(tag);
        let layer = Layer::gzip_by(&tar_from(files), "gzip", &["-6", "-n", "-c"]);
        want = image::write_image_layout(&dir, tag, &[layer]);
        refs.push(format!("oci:{}:{tag}", dir.display()));
    }
    let bundle = work.path().join("tool.bkp");
    let sender = work.path().join("sender");
    let out = ok(&booster(
        &sender,
        &[
            "--json",
            "export",
            "--since",
            &refs[0],
            &refs[1],
            "-o",
            path_arg(&bundle),
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["bundle"]["x86_filtered_groups"].as_u64().unwrap() > 0,
        "no filtered group: {report}"
    );
    let rx = work.path().join("rx");
    ok(&booster(&rx, &["pull", &refs[0]]));
    ok(&booster(&rx, &["import", path_arg(&bundle)]));
    let dest = work.path().join("out");
    ok(&booster(
        &rx,
        &["push", &refs[1], "--to", &format!("oci:{}:v2", dest.display())],
    ));
    assert_eq!(layout_digest(&dest, "v2"), want);
    ok(&booster(&rx, &["fsck", "--rebuild"]));
}

/// A receiver that holds the old images' own layers but not the base layer they share
/// (which the new images keep): the bundle declares that layer as base, so the import is
/// refused before anything is written, naming what is missing.
#[test]
fn a_receiver_missing_a_kept_layer_is_refused_before_anything_is_written() {
    let imgs = images();
    let (bundle, _) = export(&imgs, &[]);
    let rx = imgs.work.path().join("partial");
    for seed in [10u64, 20] {
        let tar = imgs.work.path().join(format!("top-{seed}.tar"));
        std::fs::write(&tar, tar_from(&layer_files(seed, 20, 3 << 20))).unwrap();
        ok(&booster(&rx, &["ingest", path_arg(&tar)]));
    }
    let before = stats(&rx);
    let out = booster(&rx, &["import", path_arg(&bundle)]);
    assert!(!out.status.success(), "import succeeded without the base layer");
    assert!(stderr(&out).contains("lacks the base"), "{}", stderr(&out));
    assert_eq!(stats(&rx), before);
    ok(&booster(&rx, &["fsck"]));
}

/// Rewrite `bundle` into `out` with valid checksums but one payload group's frame changed
/// by `tamper`: what a buggy or hostile sender could produce.
fn rewrite_with_tampered_frame(bundle: &Path, out: &Path, tamper: impl Fn(&mut Vec<u8>)) {
    use booster::bundle::{BundleReader, BundleWriter, PayloadSection, SectionKind};
    let reader = BundleReader::open(bundle).unwrap();
    let mut writer = BundleWriter::create(out, None).unwrap();
    let mut tampered = false;
    for i in 0..reader.index.len() {
        let kind = reader.kind(i);
        let mut plain = reader.read(i).unwrap();
        if kind == SectionKind::Payload && !tampered {
            let mut section = PayloadSection::decode(&plain).unwrap();
            let with_frames: Vec<usize> = (0..section.groups.len())
                .filter(|&k| section.groups[k].frame.len() > 16)
                .collect();
            if let Some(&k) = with_frames.get(with_frames.len() / 2) {
                tamper(&mut section.groups[k].frame);
                plain = section.encode();
                tampered = true;
            }
        }
        if kind != SectionKind::Index {
            writer.section(kind, &plain).unwrap();
        }
    }
    assert!(tampered, "the bundle has no payload frame to tamper with");
    writer.finish().unwrap();
}

/// Checksums cannot catch a sender that encoded wrong bytes: the import decodes groups in
/// parallel, fails on the bad one with an error that names the section, records no recipe
/// or image, and the store checks clean.
#[test]
fn a_payload_frame_that_decodes_wrong_is_refused_and_records_nothing() {
    let imgs = images();
    let (bundle, _) = export(&imgs, &[]);
    let rx = receiver(&imgs, "rx");
    let before = stats(&rx);
    let bad = imgs.work.path().join("bad-frame.bkp");
    let truncate = |f: &mut Vec<u8>| f.truncate(f.len() / 2);
    // At this position (today's test images) the frame still decodes, to wrong bytes of
    // the right length: the composed stream's sha256 is what refuses it.
    let flip = |f: &mut Vec<u8>| {
        let at = f.len() * 3 / 16;
        f[at] ^= 0x5a;
    };
    for (what, tamper) in [
        ("truncated", &truncate as &dyn Fn(&mut Vec<u8>)),
        ("flipped", &flip),
    ] {
        rewrite_with_tampered_frame(&bundle, &bad, tamper);
        ok(&booster(&rx, &["verify", path_arg(&bad)]));
        let out = booster(&rx, &["import", path_arg(&bad)]);
        assert!(!out.status.success(), "a {what} frame was accepted");
        let err = stderr(&out);
        assert!(
            err.contains("payload") || err.contains("does not assemble"),
            "{what}: {err}"
        );
        let after = stats(&rx);
        for k in ["images", "recipes", "blobs", "manifests_and_configs"] {
            assert_eq!(after[k], before[k], "{what}: {k}");
        }
        ok(&booster(&rx, &["fsck"]));
    }
    // The real bundle still imports into the same store afterwards.
    ok(&booster(&rx, &["import", path_arg(&bundle)]));
    check_new_images(&imgs, &rx);
}

/// The receiver's own base can be damaged: a chunk of an old layer that the new layer
/// reuses. The import refuses, names that chunk, records no recipe or image, and once the
/// chunk is whole again the same bundle imports.
#[test]
fn a_damaged_base_chunk_is_named_and_the_import_records_nothing() {
    use booster::store::Store;

    let imgs = images();
    let (bundle, _) = export(&imgs, &[]);
    let rx = receiver(&imgs, "rx");
    let before = stats(&rx);
    let (victim, original) = {
        let sender = Store::open(&imgs.work.path().join("sender")).unwrap();
        let st = Store::open(&rx).unwrap();
        let have: std::collections::HashSet<_> = st
            .recipes()
            .unwrap()
            .into_iter()
            .flat_map(|(_, r)| r.chunks.into_iter().map(|c| c.0))
            .collect();
        let held: std::collections::HashSet<_> = st.recipes().unwrap().into_iter().map(|(d, _)| d).collect();
        // A chunk the receiver holds, stored raw (it decodes, only wrong), that a new
        // stream reuses.
        sender
            .recipes()
            .unwrap()
            .into_iter()
            .filter(|(d, _)| !held.contains(d))
            .flat_map(|(_, r)| r.chunks)
            .filter(|(id, _)| have.contains(id))
            .find_map(|(id, len)| {
                let raw = st.get_chunk_raw(&id).unwrap().unwrap();
                (raw.len() == len as usize + 1 && raw[0] == 0).then_some((id, raw))
            })
            .expect("a reused raw chunk")
    };
    let mut bad = original.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x04;
    Store::open(&rx)
        .unwrap()
        .corrupt_chunk_for_test(&victim, &bad)
        .unwrap();

    let out = booster(&rx, &["import", path_arg(&bundle)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&victim.to_string()), "{err}");
    let after = stats(&rx);
    for k in ["images", "recipes", "blobs", "manifests_and_configs"] {
        assert_eq!(after[k], before[k], "{k}");
    }

    Store::open(&rx)
        .unwrap()
        .corrupt_chunk_for_test(&victim, &original)
        .unwrap();
    ok(&booster(&rx, &["import", path_arg(&bundle)]));
    check_new_images(&imgs, &rx);
}
