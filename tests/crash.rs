//! Crashes: `kill -9` of the real binary at 20 points spread over pull, import, apply and
//! gc. After each kill `booster fsck` must be clean, no file the kill left behind may
//! survive the next open, and a rerun must finish the job.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::image::{self, Layer, sample_tar};
use common::registry::{TestRegistry, skopeo_copy, skopeo_digest};
use common::{booster, ok};

/// Delays for the kills: a deterministic spread over how long the command takes.
fn kill_points(typical: Duration, n: usize) -> Vec<Duration> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let frac = (x % 1000) as f64 / 1000.0;
            Duration::from_secs_f64(0.005 + typical.as_secs_f64() * frac)
        })
        .collect()
}

/// Run `args` against `store`, kill it after `delay` (if still running).
fn run_and_kill(store: &Path, args: &[&str], delay: Duration) {
    let mut child = Command::new(common::booster_bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn timed(store: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    ok(&booster(store, args));
    t.elapsed()
}

/// Kill `args` at 20 points; after each, fsck is clean and the same command finishes.
fn crash_loop(store: &Path, args: &[&str], typical: Duration, reset: &mut dyn FnMut()) {
    for (i, delay) in kill_points(typical, 20).into_iter().enumerate() {
        reset();
        run_and_kill(store, args, delay);
        let out = booster(store, &["fsck"]);
        assert!(
            out.status.success(),
            "fsck after kill {i} at {delay:?}: {}",
            common::stderr(&out)
        );
        // Whatever flush or compaction the kill cut short, the next open deleted its files.
        let stats: serde_json::Value =
            serde_json::from_str(&ok(&booster(store, &["--json", "stats"]))).unwrap();
        assert_eq!(
            stats["space"]["usage"]["unreferenced_bytes"], 0,
            "after kill {i} at {delay:?}: {}",
            stats["space"]
        );
        ok(&booster(store, args));
    }
}

fn images(reg: &TestRegistry, work: &Path) -> (String, String) {
    let mut refs = Vec::new();
    for (tag, seed) in [("v1", 60u64), ("v2", 61)] {
        let layout = work.join(tag);
        let base = Layer::gzip_by(&sample_tar(59, 30, 2 << 20), "gzip", &["-1", "-n", "-c"]);
        let top = Layer::gzip_by(&sample_tar(seed, 20, 3 << 20), "gzip", &["-1", "-n", "-c"]);
        image::write_image_layout(&layout, tag, &[base, top]);
        let r = format!("{}/crash/app:{tag}", reg.addr);
        skopeo_copy(
            &format!("oci:{}:{tag}", layout.display()),
            &format!("docker://{r}"),
            &[],
        );
        refs.push(r);
    }
    (refs[0].clone(), refs[1].clone())
}

#[test]
fn kill_during_pull() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let (v1, v2) = images(&reg, work.path());
    let probe = work.path().join("probe");
    let typical = timed(&probe, &["pull", &v1, &v2]);
    let store = work.path().join("store");
    let s2 = store.clone();
    crash_loop(&store, &["pull", &v1, &v2], typical, &mut || {
        let _ = std::fs::remove_dir_all(&s2);
    });
    ok(&booster(&store, &["fsck", "--rebuild"]));
}

fn bundle_setup(work: &Path, reg: &TestRegistry) -> (PathBuf, String, String) {
    let (v1, v2) = images(reg, work);
    let sender = work.join("sender");
    let bundle = work.join("b.bkp");
    ok(&booster(
        &sender,
        &[
            "export",
            "--since",
            &v1,
            &v2,
            "-o",
            bundle.to_str().unwrap(),
            "--level",
            "3",
        ],
    ));
    (bundle, v1, v2)
}

#[test]
fn kill_during_import() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let (bundle, v1, _) = bundle_setup(work.path(), &reg);
    let store = work.path().join("rx");
    ok(&booster(&store, &["pull", &v1]));
    let probe = work.path().join("probe");
    ok(&booster(&probe, &["pull", &v1]));
    let typical = timed(&probe, &["import", bundle.to_str().unwrap()]);
    // Each round starts from a receiver that has only the base.
    let base_copy = work.path().join("rx-base");
    copy_dir(&store, &base_copy);
    let (s, b) = (store.clone(), base_copy.clone());
    crash_loop(
        &store,
        &["import", bundle.to_str().unwrap()],
        typical,
        &mut || {
            let _ = std::fs::remove_dir_all(&s);
            copy_dir(&b, &s);
        },
    );
    ok(&booster(&store, &["fsck", "--rebuild"]));
}

#[test]
fn kill_during_apply() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let (v1, v2) = images(&reg, work.path());
    let patch = work.path().join("p.patch");
    ok(&booster(
        &work.path().join("sender"),
        &["diff", &v1, &v2, "-o", patch.to_str().unwrap(), "--level", "3"],
    ));
    let mirror = TestRegistry::start();
    skopeo_copy(
        &format!("docker://{v1}"),
        &format!("docker://{}/crash/app:v1", mirror.addr),
        &[],
    );
    let probe = work.path().join("probe");
    let typical = timed(
        &probe,
        &["apply", &v1, &v2, patch.to_str().unwrap(), &mirror.addr],
    );
    let store = work.path().join("rx");
    let s = store.clone();
    // The mirror keeps whatever earlier rounds pushed; each round restarts the store, so
    // both "registry ahead of the store" and "store ahead of the registry" are exercised.
    crash_loop(
        &store,
        &["apply", &v1, &v2, patch.to_str().unwrap(), &mirror.addr],
        typical,
        &mut || {
            let _ = std::fs::remove_dir_all(&s);
        },
    );
    assert_eq!(
        skopeo_digest(&format!("docker://{}/crash/app:v2", mirror.addr)),
        skopeo_digest(&format!("docker://{v2}"))
    );
}

#[test]
fn kill_during_gc() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let (v1, v2) = images(&reg, work.path());
    let full = work.path().join("full");
    ok(&booster(&full, &["pull", &v1, &v2]));
    ok(&booster(&full, &["rm", &v2]));
    let probe = work.path().join("probe");
    copy_dir(&full, &probe);
    let typical = timed(&probe, &["gc"]);
    let store = work.path().join("store");
    let (s, f) = (store.clone(), full.clone());
    crash_loop(
        &store,
        &["gc"],
        typical.max(Duration::from_millis(200)),
        &mut || {
            let _ = std::fs::remove_dir_all(&s);
            copy_dir(&f, &s);
        },
    );
    ok(&booster(&store, &["fsck", "--rebuild"]));
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success());
}
