//! The README's demo, on small local images: its core (registries, diff/apply, inventory,
//! export in volumes, import --push, digest checks) must keep working.

use std::process::Command;

#[test]
fn the_demo_script_runs_end_to_end() {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.sh"))
        .arg("--local")
        .env("BOOSTER", env!("CARGO_BIN_EXE_booster"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("every digest matches upstream"), "{stderr}");
    assert!(stdout.contains("% of the pull update"), "{stdout}");
}
