//! Golden files: a store, a bundle and an inventory written by format version 1 must keep
//! reading (and rebuild the same image digests); damaged copies and newer versions must be
//! refused with clear errors. Regenerate only with a new format version, keeping the old
//! files (see store-format.md, Changes).

mod common;

use std::path::{Path, PathBuf};

use booster::bundle::BundleReader;
use booster::ops::inventory::Inventory;
use common::{booster, ok, stderr};

const V2_MANIFEST: &str = "sha256:cc8f0f462838fbdc0a27437122d72e0000dfbc04b8f74d66786d250fffdba158";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/formats")
        .join(name)
}

/// The v1 store fixture, unpacked into a temp dir.
fn store_v1(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(fixture("store-v1.tar.gz"))
        .arg("-C")
        .arg(&store)
        .status()
        .unwrap();
    assert!(st.success());
    store
}

#[test]
fn a_version_1_store_still_opens_and_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_v1(dir.path());
    let images = ok(&booster(&store, &["images"]));
    assert!(images.contains("golden/app:1"), "{images}");
    ok(&booster(&store, &["fsck", "--rebuild"]));
}

#[test]
fn a_version_1_bundle_imports_and_rebuilds_the_same_digest() {
    let dir = tempfile::tempdir().unwrap();
    let reader = BundleReader::open(&fixture("bundle-v1.bkp")).unwrap();
    reader.verify(&mut |_, _| {}).unwrap();
    let store = store_v1(dir.path());
    ok(&booster(
        &store,
        &["import", fixture("bundle-v1.bkp").to_str().unwrap()],
    ));
    let images = ok(&booster(&store, &["images"]));
    let name = images
        .lines()
        .find(|l| l.contains(":v2"))
        .expect("v2 imported")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let out = dir.path().join("out");
    ok(&booster(
        &store,
        &["push", &name, "--to", &format!("oci:{}:v2", out.display())],
    ));
    assert_eq!(common::image::layout_digest(&out, "v2"), V2_MANIFEST);
}

#[test]
fn a_version_1_inventory_still_reads() {
    let inv = Inventory::read(&fixture("inventory-v1.inv")).unwrap();
    assert_eq!(inv.images.len(), 2);
    assert_eq!(inv.contents.len(), 1);
}

#[test]
fn damaged_golden_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("bundle-v1.bkp")).unwrap();
    let bad = dir.path().join("bad.bkp");
    for (at, want) in [
        (40usize, "section 1 (meta)"),
        (bytes.len() / 2, "damaged"),
        (bytes.len() - 30, "trailer"),
    ] {
        let mut b = bytes.clone();
        b[at] ^= 0x55;
        std::fs::write(&bad, &b).unwrap();
        let out = booster(&dir.path().join("s"), &["verify", bad.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(want), "flip at {at}: {}", stderr(&out));
    }
    let mut inv = std::fs::read(fixture("inventory-v1.inv")).unwrap();
    let n = inv.len();
    inv[n - 1] ^= 1;
    assert!(Inventory::decode(&inv).unwrap_err().0.contains("damaged"));
}

#[test]
fn newer_format_versions_are_refused_with_upgrade_advice() {
    let dir = tempfile::tempdir().unwrap();
    let mut bundle = std::fs::read(fixture("bundle-v1.bkp")).unwrap();
    bundle[8] = 3;
    let p = dir.path().join("v3.bkp");
    std::fs::write(&p, &bundle).unwrap();
    let e = BundleReader::open(&p).err().unwrap().to_string();
    assert!(e.contains("version 3") && e.contains("upgrade booster"), "{e}");
    let mut inv = std::fs::read(fixture("inventory-v1.inv")).unwrap();
    inv[8] = 2;
    let e = Inventory::decode(&inv).unwrap_err().0;
    assert!(e.contains("version 2") && e.contains("upgrade booster"), "{e}");
}

/// A bundle artifact manifest written by hand from store-format.md 6.6 (ids computed by an
/// independent script): booster reads it, and its tag scheme gives the same ids.
#[test]
fn a_version_1_artifact_manifest_reads_with_the_ids_of_the_spec() {
    use booster::ops::artifact::parse_bundle_manifest;
    let bytes = std::fs::read(fixture("artifact-manifest-v1.json")).unwrap();
    let a = parse_bundle_manifest("golden", &bytes).unwrap();
    assert_eq!(a.labels.tag(), "ta7fd16c6c73e8d95-b60eb6cc944bfa151");
    assert_eq!(a.labels.images.len(), 2);
    assert_eq!(a.labels.base_images.len(), 2);
    assert_eq!(a.volumes.len(), 1);
    assert_eq!(
        a.bytes,
        std::fs::metadata(fixture("bundle-v1.bkp")).unwrap().len()
    );
    let newer = String::from_utf8(bytes)
        .unwrap()
        .replace("bundle.v1", "bundle.v2");
    let e = parse_bundle_manifest("golden", newer.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("application/vnd.booster.bundle.v2"), "{e}");
}

/// A jar written by OpenJDK 17's `jar` tool (deflated classes, a library jar kept STORED
/// under BOOT-INF/lib, as Spring Boot lays them out): its expansion (store-format.md 6.4.3)
/// is the golden file, byte for byte, and rebuilds the jar exactly; its outline too.
#[test]
fn a_jar_expands_to_its_golden_expansion_and_rebuilds_exactly() {
    use booster::zipfile::{Expansion, expand, outline};
    let jar = std::fs::read(fixture("jar-openjdk17.jar")).unwrap();
    let e = expand(&jar).expect("the jar opens");
    assert_eq!(
        (
            e.stats.archives,
            e.stats.members_opened,
            e.stats.members_compressed
        ),
        (2, 7, 0)
    );
    let golden = std::fs::read(fixture("jar-openjdk17.expansion")).unwrap();
    assert_eq!(
        e.encode(),
        golden,
        "the expansion of the golden jar changed: a format change"
    );
    let back = Expansion::decode(golden.clone()).unwrap();
    assert_eq!(back.rebuild(jar.len() as u64).unwrap(), jar);
    let golden_outline = std::fs::read(fixture("jar-openjdk17.outline")).unwrap();
    assert_eq!(
        outline(&jar).unwrap(),
        golden_outline,
        "the outline of the golden jar changed"
    );
    // Damaged: a byte of a deflated member's recipe length, the body cut short.
    assert!(Expansion::decode(golden[..golden.len() - 1].to_vec()).is_err());
}
