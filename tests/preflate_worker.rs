//! preflate rebuilds in the booster binary run in a child process (`preflate-worker`) that
//! is killed at its deadline: hostile corrections that make preflate-rs loop (and allocate)
//! forever cost a bounded time and leave no process behind.

mod common;

use std::path::Path;

use recompress::codec::Reader;
use recompress::{Method, preflate_worker, rebuild};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz")
            .join(name),
    )
    .unwrap()
}

/// Children of this process whose command line mentions the worker.
fn workers_alive() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let dir = e.path();
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            // Field 4 of /proc/PID/stat, after the command name in parentheses, is the parent.
            let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1));
            ppid == Some(me.as_str()) && String::from_utf8_lossy(&cmdline).contains("preflate-worker")
        })
        .count()
}

#[test]
fn a_stuck_preflate_rebuild_is_killed_at_its_deadline() {
    // SAFETY: set before any rebuild starts; this test binary has no other test.
    unsafe { std::env::set_var("BOOSTER_PREFLATE_DEADLINE_SECS", "2") };
    preflate_worker::enable(common::booster_bin());
    for name in ["method-preflate-hang.bin", "method-preflate-hang2.bin"] {
        let data = fixture(name);
        let (&n, rest) = data.split_first().unwrap();
        let (plain, method_bytes) = rest.split_at((n as usize).min(rest.len()));
        let m = Method::decode(&mut Reader::new(method_bytes)).unwrap();
        let started = std::time::Instant::now();
        let e = rebuild::rebuild_gzip_bytes(&m, plain).unwrap_err();
        eprintln!("{name}: {e} after {:?}", started.elapsed());
        assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
        assert!(e.contains("preflate"), "{e}");
        assert_eq!(workers_alive(), 0, "a preflate worker outlived its rebuild");
    }
}
