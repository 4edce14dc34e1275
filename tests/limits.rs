//! Limits for untrusted input, and a full disk.

mod common;

use std::path::Path;
use std::process::Command;

use common::image::{self, Layer, sample_tar};
use common::{booster, ok, pseudo_random, stderr, tar_of};

#[test]
fn a_decompression_bomb_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 300 << 20];
    let tar = tar_of(&[("bomb", &zeros)]);
    drop(zeros);
    let layout = work.path().join("bomb");
    image::write_image_layout(
        &layout,
        "v1",
        &[Layer::gzip_by(&tar, "gzip", &["-9", "-n", "-c"])],
    );
    drop(tar);
    let store = work.path().join("store");
    let out = booster(
        &store,
        &[
            "--max-layer-size",
            "64M",
            "pull",
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("decompression bomb"), "{}", stderr(&out));
    ok(&booster(&store, &["fsck"]));
}

#[test]
fn oversized_bundle_sections_are_refused_before_allocation() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("img");
    image::write_image_layout(
        &layout,
        "v1",
        &[Layer::gzip_by(
            &sample_tar(70, 10, 1 << 20),
            "gzip",
            &["-n", "-c"],
        )],
    );
    let store = work.path().join("s");
    let bundle = work.path().join("b.bkp");
    ok(&booster(
        &store,
        &[
            "export",
            &format!("oci:{}:v1", layout.display()),
            "-o",
            bundle.to_str().unwrap(),
        ],
    ));
    let out = booster(
        &work.path().join("rx"),
        &["--max-section-size", "4K", "verify", bundle.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("more than the limit"), "{}", stderr(&out));
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Tmpfs<'a>(&'a Path);

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

/// An import into a store on a 48 MiB tmpfs that cannot hold it: a clear "no space" error
/// naming the store; the store still opens and fsck is clean; with room, a rerun finishes.
#[test]
fn a_full_disk_gives_a_clear_error_and_a_consistent_store() {
    assert!(is_root(), "this test mounts a tmpfs: run it as root (CI does)");
    let work = tempfile::tempdir().unwrap();
    // Incompressible new data: 80 MiB of chunks that must be stored.
    let old = tar_of(&[("a", &pseudo_random(1 << 20, 1))]);
    let new = tar_of(&[
        ("a", &pseudo_random(1 << 20, 1)),
        ("b", &pseudo_random(80 << 20, 2)),
    ]);
    for (tag, tar) in [("v1", &old), ("v2", &new)] {
        image::write_image_layout(&work.path().join(tag), tag, &[Layer::plain(tar)]);
    }
    let v1 = format!("oci:{}:v1", work.path().join("v1").display());
    let v2 = format!("oci:{}:v2", work.path().join("v2").display());
    let bundle = work.path().join("b.bkp");
    ok(&booster(
        &work.path().join("sender"),
        &[
            "export",
            "--since",
            &v1,
            &v2,
            "-o",
            bundle.to_str().unwrap(),
            "--level",
            "1",
        ],
    ));

    let mnt = work.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs failed");
    let _guard = Tmpfs(&mnt);
    let store = mnt.join("store");
    ok(&booster(&store, &["pull", &v1]));
    let out = booster(&store, &["import", bundle.to_str().unwrap()]);
    assert!(!out.status.success(), "the import fit on a 48 MiB disk");
    let err = stderr(&out);
    assert!(
        err.contains("no space left") && err.contains(store.to_str().unwrap()),
        "{err}"
    );
    ok(&booster(&store, &["stats"]));
    ok(&booster(&store, &["fsck"]));
    // Room again: the same import finishes.
    let st = Command::new("mount")
        .args(["-o", "remount,size=400m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    ok(&booster(&store, &["import", bundle.to_str().unwrap()]));
    ok(&booster(&store, &["fsck", "--rebuild"]));
}
