//! Registry faults: a proxy in front of the real registry answers 500/503, cuts bodies and
//! stalls. Pulls and pushes either finish through retries or fail with a clear error, and
//! the store stays consistent either way.

mod common;

use std::time::Duration;

use common::image::{self, Layer, sample_tar};
use common::proxy::{Fault, FaultProxy};
use common::registry::{TestRegistry, skopeo_copy, skopeo_digest};
use common::{booster, ok, stderr};

fn image_in(reg: &TestRegistry, work: &std::path::Path, repo: &str) -> String {
    let layout = work.join(repo);
    let layers: Vec<Layer> = (0..3)
        .map(|i| Layer::gzip_by(&sample_tar(40 + i, 10, 1 << 20), "gzip", &["-1", "-n", "-c"]))
        .collect();
    image::write_image_layout(&layout, "v1", &layers);
    skopeo_copy(
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/{repo}:v1", reg.addr),
        &[],
    );
    format!("{repo}:v1")
}

#[test]
fn pull_finishes_through_errors_cuts_and_stalls() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let image = image_in(&reg, work.path(), "faults/pull");
    let proxy = FaultProxy::start(&reg.addr);
    proxy.add("GET /v2/faults/pull/manifests/", Fault::Status(503), 2);
    proxy.add("GET /v2/faults/pull/blobs/", Fault::CutAfter(300_000), 2);
    proxy.add("GET /v2/faults/pull/blobs/", Fault::Status(500), 1);
    proxy.add(
        "GET /v2/faults/pull/blobs/",
        Fault::Stall(Duration::from_millis(1500)),
        1,
    );
    let store = work.path().join("store");
    let out = booster(&store, &["pull", &format!("{}/{image}", proxy.addr)]);
    ok(&out);
    assert!(
        proxy.hits.load(std::sync::atomic::Ordering::Relaxed) >= 6,
        "faults were not exercised"
    );
    assert!(
        stderr(&out).contains("retrying") || stderr(&out).contains("resuming"),
        "{}",
        stderr(&out)
    );
    ok(&booster(&store, &["fsck", "--rebuild"]));
}

#[test]
fn push_finishes_through_failed_uploads() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let image = image_in(&src, work.path(), "faults/push");
    let store = work.path().join("store");
    ok(&booster(&store, &["pull", &format!("{}/{image}", src.addr)]));
    let proxy = FaultProxy::start(&dst.addr);
    proxy.add("POST /v2/faults/push/blobs/uploads", Fault::Status(503), 1);
    proxy.add("PUT /v2/faults/push/blobs/uploads", Fault::Status(500), 2);
    proxy.add("PUT /v2/faults/push/blobs/uploads", Fault::CutAfter(10), 1);
    proxy.add("PUT /v2/faults/push/manifests/", Fault::Status(502), 1);
    proxy.add(
        "HEAD /v2/faults/push/blobs/",
        Fault::Stall(Duration::from_millis(500)),
        1,
    );
    let dest = format!("{}/faults/push:v1", proxy.addr);
    let name = format!("{}/{image}", src.addr);
    ok(&booster(&store, &["push", &name, "--to", &proxy.addr]));
    assert!(proxy.hits.load(std::sync::atomic::Ordering::Relaxed) >= 5);
    assert_eq!(
        skopeo_digest(&format!("docker://{dest}")),
        skopeo_digest(&format!("docker://{}/{image}", src.addr))
    );
}

#[test]
fn a_registry_that_keeps_failing_gives_a_clear_error_and_a_consistent_store() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let image = image_in(&reg, work.path(), "faults/down");
    let proxy = FaultProxy::start(&reg.addr);
    proxy.add("GET /v2/faults/down/blobs/", Fault::Status(503), 1000);
    let store = work.path().join("store");
    let out = booster(
        &store,
        &["pull", "--retries", "3", &format!("{}/{image}", proxy.addr)],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&proxy.addr) && err.contains("gave up after 3 attempts"),
        "{err}"
    );
    ok(&booster(&store, &["fsck"]));
    // Once the registry is healthy again, the same command finishes.
    proxy.clear();
    ok(&booster(&store, &["pull", &format!("{}/{image}", proxy.addr)]));
}
