//! The companion service: handlers driven without a socket, then two registries and two
//! `booster serve` processes on loopback, a replica syncing from its primary.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use booster::oci::reference::Destination;
use booster::oci::registry::{Registries, RegistryOptions};
use booster::ops::pull::Ctx;
use booster::serve::{AppState, ServeConfig, Upstream, app, evict_bundles};
use booster::store::Store;
use common::http::{http, http_with_body};
use common::image::{self, Layer};
use common::registry::{TestRegistry, skopeo_copy, skopeo_digest};
use common::service::{TOKEN, key_pair, start_service, start_service_with, token_file};
use common::{pseudo_random, pseudo_text, tar_of};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn state(dir: &Path, primary: Option<&str>, token: Option<&str>) -> Arc<AppState> {
    let ctx = Ctx::new(
        Arc::new(Store::open(dir).unwrap()),
        Arc::new(Registries::new(RegistryOptions::default())),
        2,
    );
    let mut config = ServeConfig::new(Destination::parse("127.0.0.1:1").unwrap());
    config.primary = primary.iter().map(|p| Upstream::parse(p).unwrap()).collect();
    config.allow_unsigned = true;
    config.token = token.map(str::to_string);
    AppState::new(ctx, config).unwrap()
}

async fn call(state: Arc<AppState>, method: &str, uri: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app(state)
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

#[tokio::test]
async fn handlers_without_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), Some("http://127.0.0.1:1"), Some("sekrit"));
    assert_eq!(call(s.clone(), "GET", "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(
        call(s.clone(), "GET", "/status", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(s.clone(), "GET", "/status", Some("wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, body) = call(s.clone(), "GET", "/status", Some("sekrit")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("\"role\":\"replica\""), "{body}");
    let (st, body) = call(s.clone(), "GET", "/metrics", Some("sekrit")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("# TYPE booster_syncs_total counter\nbooster_syncs_total 0"),
        "{body}"
    );
    // One sync at a time.
    let held = s.busy.try_lock().unwrap();
    assert_eq!(
        call(s.clone(), "POST", "/sync", Some("sekrit")).await.0,
        StatusCode::CONFLICT
    );
    drop(held);
    // A primary that cannot be reached: the sync fails with a clear error, not a hang.
    let (st, body) = call(s.clone(), "POST", "/sync", Some("sekrit")).await;
    assert_eq!(st, StatusCode::BAD_GATEWAY);
    assert!(body.contains("127.0.0.1:1"), "{body}");
    let (_, metrics) = call(s.clone(), "GET", "/metrics", Some("sekrit")).await;
    assert!(metrics.contains("booster_sync_failures_total 1"), "{metrics}");
    let (st, body) = call(s.clone(), "POST", "/cleanup", Some("sekrit")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        call(s.clone(), "GET", "/bundles/zz", Some("sekrit")).await.0,
        StatusCode::BAD_REQUEST
    );
    let not_replica = state(tempfile::tempdir().unwrap().path(), None, None);
    assert_eq!(
        call(not_replica, "POST", "/sync", None).await.0,
        StatusCode::BAD_REQUEST
    );
    // A replica must be told whose bundles to trust, or that any will do.
    let ctx = Ctx::new(
        Arc::new(Store::open(tempfile::tempdir().unwrap().path()).unwrap()),
        Arc::new(Registries::new(RegistryOptions::default())),
        2,
    );
    let mut config = ServeConfig::new(Destination::parse("127.0.0.1:1").unwrap());
    config.primary = vec![Upstream::parse("http://127.0.0.1:1").unwrap()];
    let e = AppState::new(ctx, config).err().unwrap().to_string();
    assert!(
        e.contains("--primary-key") && e.contains("--allow-unsigned"),
        "{e}"
    );
}

/// The app image TAG (a base layer, and an app layer holding `big`) as an OCI layout in
/// `work`, copied to `registry` as demo/app:TAG; returns its layers.
fn publish_app(work: &Path, registry: &str, tag: &str, big: &[u8]) -> Vec<Layer> {
    let dir = work.join(tag);
    let base = tar_of(&[
        ("etc/os-release", b"booster test\n"),
        ("usr/share/doc/x", &pseudo_text(300_000, 3)),
    ]);
    let app = tar_of(&[("opt/app/big.bin", big), ("opt/app/VERSION", tag.as_bytes())]);
    let layers = vec![
        Layer::gzip_by(&base, "gzip", &["-n", "-c"]),
        Layer::gzip_by(&app, "gzip", &["-6", "-n", "-c"]),
    ];
    image::write_image_layout(&dir, tag, &layers);
    skopeo_copy(
        &format!("oci:{}:{tag}", dir.display()),
        &format!("docker://{registry}/demo/app:{tag}"),
        &[],
    );
    layers
}

#[test]
fn a_replica_syncs_from_its_primary() {
    let primary_reg = TestRegistry::start();
    let replica_reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let mut big = pseudo_text(4 << 20, 5);
    big.extend(pseudo_random(4 << 20, 6));
    publish_app(work.path(), &primary_reg.addr, "v1", &big);

    let primary_store = work.path().join("primary-store");
    let replica_store = work.path().join("replica-store");
    // The primary signs what it serves; the replica takes only what its key signed.
    let (key, public) = key_pair(work.path(), "primary");
    let (key, public) = (key.to_str().unwrap(), public.to_str().unwrap());
    let signing = ["--signing-key", key];
    let mut primary = start_service_with(&primary_store, &primary_reg.addr, &signing, &token);
    let primary_url = format!("http://{}", primary.addr);
    let replica_of = |url: &str| {
        start_service_with(
            &replica_store,
            &replica_reg.addr,
            &["--primary", url, "--primary-key", public],
            &token,
        )
    };
    let replica = replica_of(&primary_url);

    assert_eq!(http(&replica.addr, "POST", "/sync", Some("wrong")).0, 401);
    let (code, body) = http(&replica.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["images_synced"], 1);
    let want = skopeo_digest(&format!("docker://{}/demo/app:v1", primary_reg.addr));
    assert_eq!(
        skopeo_digest(&format!("docker://{}/demo/app:v1", replica_reg.addr)),
        want
    );

    // v2: a small change in the middle of the big layer.
    let mut big2 = big.clone();
    let mid = big2.len() / 2;
    big2[mid..mid + 100].copy_from_slice(&pseudo_random(100, 77));
    let layers = publish_app(work.path(), &primary_reg.addr, "v2", &big2);
    let pull_update = layers[1].blob.len() as u64;
    // The seed's form: a plain GET.
    let (code, body) = http(&replica.addr, "GET", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let second: serde_json::Value = serde_json::from_str(&body).unwrap();
    let transferred = second["bytes_transferred"].as_u64().unwrap();
    eprintln!("v2 sync transferred {transferred} bytes; the pull update is {pull_update} bytes");
    assert!(
        transferred * 20 < pull_update,
        "transferred {transferred} of a {pull_update}-byte update"
    );
    assert_eq!(
        skopeo_digest(&format!("docker://{}/demo/app:v2", replica_reg.addr)),
        skopeo_digest(&format!("docker://{}/demo/app:v2", primary_reg.addr))
    );

    // The primary dies while the replica syncs v3: the replica reports it and stays
    // consistent; after a restart the next sync succeeds.
    let mut big3 = big2.clone();
    big3[100..200].copy_from_slice(&pseudo_random(100, 78));
    publish_app(work.path(), &primary_reg.addr, "v3", &big3);
    let replica_addr = replica.addr.clone();
    let pending = std::thread::spawn(move || http(&replica_addr, "POST", "/sync", Some(TOKEN)));
    std::thread::sleep(Duration::from_millis(150));
    let _ = primary.child.kill();
    let _ = primary.child.wait();
    let (code, body) = pending.join().unwrap();
    if code != 200 {
        assert_eq!(code, 502, "{body}");
        assert!(body.contains("error"), "{body}");
    }
    let (code, status) = http(&replica.addr, "GET", "/status", Some(TOKEN));
    assert_eq!(code, 200);
    assert!(status.contains("\"running\":false"), "{status}");
    drop(primary);
    let primary = start_service_with(&primary_store, &primary_reg.addr, &signing, &token);
    let replica_primary_url = format!("http://{}", primary.addr);
    // The replica was started with the old primary address: start a new one pointing here,
    // on the same store (the old one must release it first).
    drop(replica);
    let replica = replica_of(&replica_primary_url);
    let (code, body) = http(&replica.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        skopeo_digest(&format!("docker://{}/demo/app:v3", replica_reg.addr)),
        skopeo_digest(&format!("docker://{}/demo/app:v3", primary_reg.addr))
    );
    let (_, metrics) = http(&replica.addr, "GET", "/metrics", Some(TOKEN));
    assert!(metrics.contains("booster_syncs_total 1"), "{metrics}");
    let (code, body) = http(&replica.addr, "POST", "/cleanup", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    drop(replica);
    drop(primary);
    common::ok(&common::booster(&replica_store, &["fsck"]));
}

/// Replicas in the same state asking at the same time, each with its own inventory taken
/// at its own time: the primary builds their bundle once (the key is the state, not the
/// request's bytes), every one of them gets the same key, and the bundle on disk is whole.
/// An offered image that cannot be pulled is left out and reported, not a failure for all.
#[test]
fn replicas_in_one_state_share_one_build() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let mut big = pseudo_text(2 << 20, 8);
    big.extend(pseudo_random(2 << 20, 9));
    publish_app(work.path(), &reg.addr, "v1", &big);
    let list = work.path().join("offer.txt");
    std::fs::write(&list, format!("{0}/demo/app:v1\n{0}/demo/gone:v1\n", reg.addr)).unwrap();
    let primary_store = work.path().join("primary-store");
    let primary = start_service_with(
        &primary_store,
        &reg.addr,
        &["--images", list.to_str().unwrap()],
        &token,
    );
    // Two replicas' inventories of one (empty) state, taken more than a second apart: their
    // bytes differ in the timestamp.
    let mut bodies = Vec::new();
    for i in 0..2 {
        let inventory = work.path().join(format!("empty-{i}.inventory"));
        common::ok(&common::booster(
            &work.path().join(format!("empty-store-{i}")),
            &["inventory", "-o", inventory.to_str().unwrap()],
        ));
        bodies.push(std::fs::read(&inventory).unwrap());
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert_ne!(bodies[0], bodies[1]);

    const REPLICAS: usize = 6;
    let askers: Vec<_> = (0..REPLICAS)
        .map(|i| {
            let (addr, body) = (primary.addr.clone(), bodies[i % 2].clone());
            std::thread::spawn(move || http_with_body(&addr, "POST", "/bundles", Some(TOKEN), &body))
        })
        .collect();
    let mut keys = std::collections::BTreeSet::new();
    for asker in askers {
        let (code, answer) = asker.join().unwrap();
        assert_eq!(code, 200, "{answer}");
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        keys.insert(v["key"].as_str().unwrap().to_string());
        assert_eq!(v["images"].as_array().unwrap().len(), 1, "{answer}");
    }
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (_, metrics) = http(&primary.addr, "GET", "/metrics", Some(TOKEN));
    assert!(metrics.contains("\nbooster_bundles_built_total 1\n"), "{metrics}");
    assert!(
        metrics.contains(&format!("\nbooster_bundle_cache_hits_total {}\n", REPLICAS - 1)),
        "{metrics}"
    );
    let (_, status) = http(&primary.addr, "GET", "/status", Some(TOKEN));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let skipped = status["offer_skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{status}");
    assert!(
        skipped[0]["image"].as_str().unwrap().contains("demo/gone:v1"),
        "{status}"
    );

    let key = keys.pop_first().unwrap();
    let copy = work.path().join("copy.bkp");
    std::fs::copy(
        primary_store.join("tmp/bundles").join(format!("{key}.bkp")),
        &copy,
    )
    .unwrap();
    common::ok(&common::booster(
        &work.path().join("verify-store"),
        &["verify", copy.to_str().unwrap()],
    ));
}

/// The primary's bundle cache keeps its size limit by removing the least recently used
/// bundles, never the one just built nor a replica's download in progress.
#[test]
fn the_bundle_cache_evicts_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now();
    let file = |name: &str, age_secs: u64| {
        let p = dir.path().join(name);
        std::fs::write(&p, vec![0u8; 1000]).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(now - Duration::from_secs(age_secs)).unwrap();
        p
    };
    let oldest = file("a.bkp", 300);
    let middle = file("b.bkp", 200);
    let incoming = file("incoming-c.bkp", 400);
    let partial = file("d.bkp.partial", 500);
    let newest = file("e.bkp", 100);
    // Just built, yet the oldest by mtime: kept all the same.
    let built = file("f.bkp", 1000);
    assert_eq!(evict_bundles(dir.path(), 2500, &built), 2);
    assert!(!oldest.exists() && !middle.exists());
    assert!(newest.exists() && built.exists() && incoming.exists() && partial.exists());
    assert_eq!(evict_bundles(dir.path(), 2500, &built), 0);
}

/// The manifest of a bundle artifact, read with a stock client (skopeo).
fn artifact_manifest(reference: &str) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", reference])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A bundle exported to a registry as an OCI artifact: its manifest and volumes fetched by
/// stock clients (skopeo, curl) make a bundle that verifies; `booster import docker://…`
/// on another store rebuilds the image with its digest; the same through an OCI layout.
#[test]
fn a_bundle_travels_as_an_oci_artifact() {
    let reg = TestRegistry::start();
    let site = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let mut big = pseudo_text(3 << 20, 21);
    big.extend(pseudo_random(3 << 20, 22));
    publish_app(work.path(), &reg.addr, "v1", &big);
    let image = format!("docker://{}/demo/app:v1", reg.addr);
    let sender = work.path().join("sender");
    let out = common::ok(&common::booster(
        &sender,
        &[
            "--json",
            "export",
            &image,
            "--to",
            &format!("docker://{}/bundles:release-1", reg.addr),
            "--split-size",
            "1M",
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let published = &report["published"];
    let tag = published["tags"][0].as_str().unwrap().to_string();
    assert!(tag.starts_with('t') && tag.ends_with("-full"), "{published}");
    assert_eq!(published["tags"][1], "release-1");
    let volumes = published["volumes"].as_u64().unwrap();
    assert!(volumes >= 3, "{published}");

    // A stock client: skopeo reads the manifest, curl fetches each volume.
    let manifest = artifact_manifest(&format!("docker://{}/bundles:{tag}", reg.addr));
    assert_eq!(manifest["artifactType"], "application/vnd.booster.bundle.v1");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len() as u64, volumes);
    let fetched = work.path().join("fetched.bkp");
    let mut whole = Vec::new();
    for l in layers {
        assert_eq!(l["mediaType"], "application/vnd.booster.bundle.volume.v1");
        let digest = l["digest"].as_str().unwrap();
        let out = Command::new("curl")
            .args(["-sfL", &format!("http://{}/v2/bundles/blobs/{digest}", reg.addr)])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(image::sha256(&out.stdout), digest);
        whole.extend(out.stdout);
    }
    assert_eq!(
        whole.len() as u64,
        report["bundle"]["bundle_bytes"].as_u64().unwrap()
    );
    std::fs::write(&fetched, &whole).unwrap();
    common::ok(&common::booster(
        &work.path().join("verifier"),
        &["verify", fetched.to_str().unwrap()],
    ));
    let release = artifact_manifest(&format!("docker://{}/bundles:current", reg.addr));
    assert_eq!(release["artifactType"], "application/vnd.booster.release.v1");
    assert_eq!(
        release["annotations"]["io.booster.bundle.targets"]
            .as_str()
            .unwrap(),
        tag.split('-').next().unwrap()
    );

    // Imported elsewhere by the user's tag, and pushed: the image keeps its digest.
    let receiver = work.path().join("receiver");
    let out = common::ok(&common::booster(
        &receiver,
        &[
            "--json",
            "import",
            &format!("docker://{}/bundles:release-1", reg.addr),
            "--push",
            &site.addr,
        ],
    ));
    let imported: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(imported["artifact"]["volumes"].as_u64().unwrap(), volumes);
    assert_eq!(
        skopeo_digest(&format!("docker://{}/demo/app:v1", site.addr)),
        skopeo_digest(&image)
    );
    assert!(
        std::fs::read_dir(receiver.join("tmp")).unwrap().next().is_none(),
        "the fetched volumes are removed after the import"
    );

    // By repository alone: the bundle for this store's state (here a full one), then
    // nothing to do.
    let by_repo = format!("docker://{}/bundles", reg.addr);
    let fourth = work.path().join("fourth");
    let out = common::ok(&common::booster(&fourth, &["--json", "import", &by_repo]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["import"]["images_added"], 1, "{out}");
    let out = common::ok(&common::booster(&fourth, &["--json", "import", &by_repo]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["up_to_date"], true, "{out}");

    // The same bundle through an OCI layout, and a registry image is not taken for a bundle.
    let layout = work.path().join("layout");
    common::ok(&common::booster(
        &sender,
        &["export", &image, "--to", &format!("oci:{}:b1", layout.display())],
    ));
    let other = work.path().join("other");
    let out = common::ok(&common::booster(
        &other,
        &["--json", "import", &format!("oci:{}:b1", layout.display())],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["import"]["images_added"], 1, "{out}");
    // A layout without a tag: through its release pointer, as a registry.
    let out = common::ok(&common::booster(
        &work.path().join("fifth"),
        &["--json", "import", &format!("oci:{}", layout.display())],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["import"]["images_added"], 1, "{out}");
    let refused = common::booster(&work.path().join("third"), &["import", &image]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("no artifact type"), "{err}");
}

/// A primary publishes every bundle it builds to a registry of bundles; with the primary
/// stopped, a replica in the same state syncs from that registry alone, and an operator's
/// `export --to` brings both replicas to the next release.
#[test]
fn a_replica_syncs_from_a_registry_of_bundles_with_the_primary_stopped() {
    let primary_reg = TestRegistry::start();
    let bundles = TestRegistry::start();
    let r1_reg = TestRegistry::start();
    let r2_reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let mut big = pseudo_text(3 << 20, 31);
    big.extend(pseudo_random(3 << 20, 32));
    publish_app(work.path(), &primary_reg.addr, "v1", &big);
    let repo = format!("docker://{}/fleet/bundles", bundles.addr);

    let (key, public) = key_pair(work.path(), "primary");
    let (key, public) = (key.to_str().unwrap(), public.to_str().unwrap());
    let primary = start_service_with(
        &work.path().join("primary"),
        &primary_reg.addr,
        &["--publish", &repo, "--signing-key", key],
        &token,
    );
    let primary_url = format!("http://{}", primary.addr);
    let upstreams = [
        "--primary",
        &repo,
        "--primary",
        &primary_url,
        "--primary-key",
        public,
    ];
    let r1 = start_service_with(&work.path().join("r1"), &r1_reg.addr, &upstreams, &token);
    // The registry has no bundles yet: the replica falls back to the primary, which builds
    // and publishes one.
    let (code, body) = http(&r1.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["source"], primary_url.as_str(), "{body}");
    // Publishing runs after the answer: wait for it before stopping the primary.
    let mut metrics = String::new();
    for _ in 0..300 {
        metrics = http(&primary.addr, "GET", "/metrics", Some(TOKEN)).1;
        if metrics.contains("\nbooster_bundles_published_total 1\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        metrics.contains("\nbooster_bundles_published_total 1\n"),
        "{metrics}"
    );
    drop(primary);

    // Same state (empty), primary stopped: the registry alone.
    let r2 = start_service_with(&work.path().join("r2"), &r2_reg.addr, &upstreams, &token);
    let (code, body) = http(&r2.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["source"].as_str().unwrap().starts_with(&format!("{repo}:t")),
        "{body}"
    );
    let want = skopeo_digest(&format!("docker://{}/demo/app:v1", primary_reg.addr));
    assert_eq!(
        skopeo_digest(&format!("docker://{}/demo/app:v1", r2_reg.addr)),
        want
    );
    let (code, body) = http(&r2.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["up_to_date"], true, "{body}");

    // v2, exported by an operator against v1: both replicas take the small bundle. (A
    // second later than v1's release: signing times are in seconds.)
    let v1_release = skopeo_digest(&format!("{repo}:current"));
    std::thread::sleep(Duration::from_millis(1100));
    let mut big2 = big.clone();
    big2[1 << 20..(1 << 20) + 100].copy_from_slice(&pseudo_random(100, 33));
    let layers = publish_app(work.path(), &primary_reg.addr, "v2", &big2);
    common::ok(&common::booster(
        &work.path().join("operator"),
        &[
            "export",
            "--since",
            &format!("docker://{}/demo/app:v1", primary_reg.addr),
            &format!("docker://{}/demo/app:v2", primary_reg.addr),
            "--to",
            &repo,
            "--signing-key",
            key,
        ],
    ));
    // What the replicas check, a stock client checks too.
    let current = skopeo_digest(&format!("{repo}:current"));
    cosign_verifies(public, &format!("{}/fleet/bundles@{current}", bundles.addr));
    // The v2 bundle says which streams it relies on; a store without v1 finds no bundle
    // that fits it, and says what to do.
    let release = artifact_manifest(&format!("{repo}:current"));
    let targets = release["annotations"]["io.booster.bundle.targets"]
        .as_str()
        .unwrap();
    let tags: serde_json::Value = serde_json::from_str(
        &String::from_utf8(
            Command::new("curl")
                .args([
                    "-sf",
                    &format!("http://{}/v2/fleet/bundles/tags/list", bundles.addr),
                ])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap(),
    )
    .unwrap();
    let v2_tag = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .find(|t| t.starts_with(targets))
        .unwrap()
        .to_string();
    let v2 = artifact_manifest(&format!("{repo}:{v2_tag}"));
    let streams: Vec<String> = serde_json::from_str(
        v2["annotations"]["io.booster.bundle.base-streams"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(!streams.is_empty(), "{v2}");
    let empty = common::booster(&work.path().join("empty"), &["import", &repo]);
    assert!(!empty.status.success());
    let err = String::from_utf8_lossy(&empty.stderr);
    assert!(
        err.contains("fits this store") && err.contains("--since"),
        "{err}"
    );
    let want = skopeo_digest(&format!("docker://{}/demo/app:v2", primary_reg.addr));
    for (r, reg) in [(&r1, &r1_reg), (&r2, &r2_reg)] {
        let (code, body) = http(&r.addr, "POST", "/sync", Some(TOKEN));
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["source"].as_str().unwrap().starts_with(&repo), "{body}");
        let transferred = v["bytes_transferred"].as_u64().unwrap();
        assert!(transferred * 20 < layers[1].blob.len() as u64, "{body}");
        assert_eq!(skopeo_digest(&format!("docker://{}/demo/app:v2", reg.addr)), want);
    }
    // Someone who can push to the registry of bundles moves `current` back to v1's release
    // pointer, whose signature is genuine but older than the release the replicas took.
    let manifest = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &format!("http://{}/v2/fleet/bundles/manifests/{v1_release}", bundles.addr),
        ])
        .output()
        .unwrap();
    assert!(manifest.status.success());
    let put = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            "@-",
            &format!("http://{}/v2/fleet/bundles/manifests/current", bundles.addr),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&manifest.stdout)?;
            c.wait()
        })
        .unwrap();
    assert!(put.success());
    let (code, body) = http(&r1.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("a rollback"), "{body}");
    // Someone who can push to the registry of bundles forges v3 there, signed with a key of
    // their own, and moves `current` to it: the replicas refuse it before importing anything.
    let mut big3 = big2.clone();
    big3[..100].copy_from_slice(&pseudo_random(100, 34));
    publish_app(work.path(), &primary_reg.addr, "v3", &big3);
    let (forger, _) = key_pair(work.path(), "forger");
    for signing in [Some(forger.to_str().unwrap()), None] {
        let mut args = vec![
            "export".to_string(),
            format!("docker://{}/demo/app:v3", primary_reg.addr),
            "--to".into(),
            repo.clone(),
        ];
        if let Some(k) = signing {
            args.extend(["--signing-key".into(), k.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::ok(&common::booster(&work.path().join("forger"), &args));
        let (code, body) = http(&r1.addr, "POST", "/sync", Some(TOKEN));
        assert_eq!(code, 502, "{body}");
        assert!(body.contains("refusing the bundle"), "{body}");
        let (_, metrics) = http(&r1.addr, "GET", "/metrics", Some(TOKEN));
        assert!(
            !metrics.contains("booster_bundles_refused_total 0\n"),
            "{metrics}"
        );
        let tags = Command::new("curl")
            .args(["-s", &format!("http://{}/v2/demo/app/tags/list", r1_reg.addr)])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&tags.stdout).contains("v3"));
    }
    // A replica whose only upstreams cannot help says why, naming each.
    let r3 = start_service_with(
        &work.path().join("r3"),
        &r1_reg.addr,
        &[
            "--primary",
            &format!("docker://{}/nothing/here", bundles.addr),
            "--primary",
            &primary_url,
            "--allow-unsigned",
        ],
        &token,
    );
    let (code, body) = http(&r3.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 502, "{body}");
    assert!(
        body.contains("nothing/here") && body.contains(&primary_url),
        "{body}"
    );
    drop((r1, r2, r3));
    common::ok(&common::booster(&work.path().join("r2"), &["fsck"]));
}

/// `cosign verify --key` accepts the signature on `reference` (cosign from
/// scripts/sig-tools.sh; key-based, so no transparency log).
fn cosign_verifies(public: &str, reference: &str) {
    let dir = std::env::var("BOOSTER_SIG_TOOLS").unwrap_or_else(|_| "/var/tmp/booster-sigtools".into());
    let env = std::fs::read_to_string(Path::new(&dir).join("tools.env")).unwrap_or_else(|_| {
        panic!("{dir}/tools.env is missing: run scripts/sig-tools.sh (scripts/test.sh does)")
    });
    let bin = env.lines().find_map(|l| l.strip_prefix("BIN=")).unwrap();
    let out = Command::new(Path::new(bin).join("cosign"))
        .args([
            "verify",
            "--key",
            public,
            "--insecure-ignore-tlog",
            "--allow-http-registry",
            "--new-bundle-format=false",
            reference,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cosign verify {reference}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA; a server certificate for 127.0.0.1 and a client certificate, both signed by it; and
/// a stranger's self-signed client certificate. All made by the openssl CLI.
fn make_pki(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let self_signed = |name: &str, cn: &str| {
        let mut a = vec!["req", "-x509"];
        a.extend(ec);
        let (key, crt, subj) = (format!("{name}.key"), format!("{name}.crt"), format!("/CN={cn}"));
        a.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
        run(&a);
    };
    self_signed("ca", "booster test CA");
    self_signed("stranger", "stranger");
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("replica", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let mut a = vec!["req"];
        a.extend(ec);
        let (key, csr, crt, extf, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
            format!("/CN={name}"),
        );
        a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        run(&a);
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &extf,
        ]);
    }
}

fn curl_status(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Mutual TLS: a primary that requires client certificates from its CA. A replica with
/// the right certificate syncs; one without a certificate, or with a stranger's, is
/// refused and says so; plain HTTP to the TLS port gets a clear 400; curl agrees.
#[test]
fn mutual_tls_admits_only_the_primarys_own_replicas() {
    let primary_reg = TestRegistry::start();
    let replica_reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_pki(&pki);
    let f = |n: &str| pki.join(n).to_str().unwrap().to_string();
    let token = token_file(work.path());
    let mut big = pseudo_text(2 << 20, 41);
    big.extend(pseudo_random(2 << 20, 42));
    publish_app(work.path(), &primary_reg.addr, "v1", &big);

    let (cert, key, ca) = (f("server.crt"), f("server.key"), f("ca.crt"));
    let primary = start_service_with(
        &work.path().join("primary"),
        &primary_reg.addr,
        &["--tls-cert", &cert, "--tls-key", &key, "--tls-client-ca", &ca],
        &token,
    );
    let url = format!("https://{}", primary.addr);

    // Plain HTTP to the TLS port: a clear 400, not a hang or a reset.
    let (code, body) = http(&primary.addr, "GET", "/healthz", None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("TLS"), "{body}");
    // A stock client: with the replica's certificate in, without it out.
    let health = format!("{url}/healthz");
    let (ok, out) = curl_status(&[
        "--cacert",
        &ca,
        "--cert",
        &f("replica.crt"),
        "--key",
        &f("replica.key"),
        &health,
    ]);
    assert!(ok && out.contains("ok"), "{out}");
    let (ok, out) = curl_status(&["--cacert", &ca, &health]);
    assert!(!ok, "{out}");
    // The container health check finds the TLS listener up (it refuses the probe for want
    // of a client certificate, which is its job).
    common::ok(&common::booster(
        &work.path().join("probe"),
        &["healthcheck", &primary.addr],
    ));
    let tls_only = start_service_with(
        &work.path().join("tls-only"),
        &primary_reg.addr,
        &["--tls-cert", &cert, "--tls-key", &key],
        &token,
    );
    common::ok(&common::booster(
        &work.path().join("probe"),
        &["healthcheck", &tls_only.addr],
    ));
    drop(tls_only);

    let replica_with = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "--primary",
            url.as_str(),
            "--primary-ca",
            ca.as_str(),
            "--allow-unsigned",
        ];
        args.extend(extra);
        start_service_with(&work.path().join(name), &replica_reg.addr, &args, &token)
    };
    let (rc, rk, sc, sk) = (
        f("replica.crt"),
        f("replica.key"),
        f("stranger.crt"),
        f("stranger.key"),
    );
    for (name, extra) in [
        ("no-cert", vec![]),
        (
            "stranger",
            vec![
                "--primary-client-cert",
                sc.as_str(),
                "--primary-client-key",
                sk.as_str(),
            ],
        ),
    ] {
        let r = replica_with(name, &extra);
        let (code, body) = http(&r.addr, "POST", "/sync", Some(TOKEN));
        assert_eq!(code, 502, "{name}: {body}");
        assert!(body.contains(&url), "{name}: {body}");
        eprintln!("{name}: {body}");
    }
    let r = replica_with(
        "replica",
        &["--primary-client-cert", &rc, "--primary-client-key", &rk],
    );
    let (code, body) = http(&r.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        skopeo_digest(&format!("docker://{}/demo/app:v1", replica_reg.addr)),
        skopeo_digest(&format!("docker://{}/demo/app:v1", primary_reg.addr))
    );
}

/// Bad requests to every endpoint get a clear 4xx (oversized, slow, malformed, unknown),
/// while a replica's sync in progress finishes unharmed.
#[test]
fn bad_requests_get_clear_4xx_without_harming_a_sync() {
    use std::io::{Read, Write};
    let primary_reg = TestRegistry::start();
    let replica_reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let mut big = pseudo_text(3 << 20, 51);
    big.extend(pseudo_random(3 << 20, 52));
    publish_app(work.path(), &primary_reg.addr, "v1", &big);
    let primary = start_service_with(
        &work.path().join("primary"),
        &primary_reg.addr,
        &["--max-inventory", "64K", "--request-timeout", "2"],
        &token,
    );
    let replica = start_service(
        &work.path().join("replica"),
        &replica_reg.addr,
        Some(&format!("http://{}", primary.addr)),
        &token,
    );
    let raddr = replica.addr.clone();
    let syncing = std::thread::spawn(move || http(&raddr, "POST", "/sync", Some(TOKEN)));

    let p = primary.addr.as_str();
    let t = Some(TOKEN);
    let cases: Vec<(&str, (u16, String), u16)> = vec![
        (
            "garbage inventory",
            http_with_body(p, "POST", "/bundles", t, b"not an inventory"),
            400,
        ),
        (
            "oversized inventory",
            http_with_body(p, "POST", "/bundles", t, &vec![7u8; 100 << 10]),
            413,
        ),
        ("bad key", http(p, "GET", "/bundles/..%2F..%2Fetc", t), 400),
        (
            "unknown bundle",
            http(p, "GET", &format!("/bundles/{}", "ab".repeat(16)), t),
            404,
        ),
        ("unknown path", http(p, "GET", "/admin", t), 404),
        ("wrong method", http(p, "DELETE", "/bundles", t), 405),
        ("no token", http(p, "POST", "/bundles", None), 401),
        ("not a replica", http(p, "POST", "/sync", t), 400),
    ];
    for (what, (code, body), want) in cases {
        assert_eq!(code, want, "{what}: {body}");
    }
    // A body that never finishes arriving: 408 after --request-timeout.
    let mut s = TcpStream::connect(p).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /bundles HTTP/1.1\r\nHost: {p}\r\nAuthorization: Bearer t0ken-t0ken-t0ken-t0ken\r\nContent-Length: 1000\r\n\r\nBOOSTINV"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--request-timeout"), "{answer}");

    let (code, body) = syncing.join().unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        skopeo_digest(&format!("docker://{}/demo/app:v1", replica_reg.addr)),
        skopeo_digest(&format!("docker://{}/demo/app:v1", primary_reg.addr))
    );
}

/// `--max-connections`: with every slot held by a silent client, the next request waits to
/// be accepted; it goes through once `--request-timeout` has closed the silent ones (they
/// never sent a request head), or as soon as a slot frees.
#[test]
fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let service = start_service_with(
        &work.path().join("store"),
        &reg.addr,
        &["--max-connections", "2", "--request-timeout", "3"],
        &token,
    );
    // start_service's probes have closed; let the service see it.
    std::thread::sleep(Duration::from_millis(200));
    let third = |addr: &str| {
        let (tx, rx) = std::sync::mpsc::channel();
        let addr = addr.to_string();
        std::thread::spawn(move || tx.send(http(&addr, "GET", "/healthz", None)).unwrap());
        rx
    };
    // Silent clients, never dropped: the request head timeout frees their slots.
    let silent: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&service.addr).unwrap())
        .collect();
    let rx = third(&service.addr);
    assert!(
        rx.recv_timeout(Duration::from_millis(1500)).is_err(),
        "a third connection was served while two held both slots"
    );
    let (code, body) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(code, 200, "{body}");
    drop(silent);
    // Held slots, then one given back.
    std::thread::sleep(Duration::from_millis(200));
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&service.addr).unwrap())
        .collect();
    let rx = third(&service.addr);
    assert!(rx.recv_timeout(Duration::from_millis(1000)).is_err());
    drop(idle);
    let (code, body) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(code, 200, "{body}");
}

/// A replica takes only bundles its primary signed, for this request: one signed by
/// another key, one altered on the way, and one from a primary that does not sign are all
/// refused before anything is imported; the same replica then syncs from the real thing.
#[test]
fn a_replica_refuses_bundles_its_primary_did_not_sign() {
    let primary_reg = TestRegistry::start();
    let replica_reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let mut big = pseudo_text(1 << 20, 41);
    big.extend(pseudo_random(1 << 20, 42));
    publish_app(work.path(), &primary_reg.addr, "v1", &big);
    let (key, public) = key_pair(work.path(), "primary");
    let (_, stranger) = key_pair(work.path(), "stranger");
    let primary = start_service_with(
        &work.path().join("primary"),
        &primary_reg.addr,
        &["--signing-key", key.to_str().unwrap()],
        &token,
    );
    let unsigned = start_service(&work.path().join("unsigned"), &primary_reg.addr, None, &token);
    let tamper = common::proxy::FaultProxy::start(&primary.addr);
    let replica_store = work.path().join("replica");
    let replica = |upstream: &str, trusted: &Path| {
        start_service_with(
            &replica_store,
            &replica_reg.addr,
            &["--primary", upstream, "--primary-key", trusted.to_str().unwrap()],
            &token,
        )
    };
    let catalog = || {
        let out = Command::new("curl")
            .args(["-s", &format!("http://{}/v2/_catalog", replica_reg.addr)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let refused = |r: &common::service::Service, why: &str| {
        let (code, body) = http(&r.addr, "POST", "/sync", Some(TOKEN));
        assert_eq!(code, 502, "{body}");
        assert!(
            body.contains("refusing the bundle") && body.contains(why),
            "{body}"
        );
        assert!(!catalog().contains("demo/app"), "{}", catalog());
    };

    let r = replica(&format!("http://{}", primary.addr), &stranger);
    refused(&r, "none of the keys");
    drop(r);
    let r = replica(&format!("http://{}", unsigned.addr), &public);
    refused(&r, "not signed");
    drop(r);
    // One byte flipped in the bundle on its way: the sha256 the primary signed catches it.
    tamper.add("GET /bundles/", common::proxy::Fault::FlipByte(5000), 1);
    let r = replica(&format!("http://{}", tamper.addr), &public);
    refused(&r, "altered on the way");
    let (_, metrics) = http(&r.addr, "GET", "/metrics", Some(TOKEN));
    assert!(
        metrics.contains("\nbooster_bundles_refused_total 1\n"),
        "{metrics}"
    );
    // The proxy now passes bytes as they are.
    let (code, body) = http(&r.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        skopeo_digest(&format!("docker://{}/demo/app:v1", replica_reg.addr)),
        skopeo_digest(&format!("docker://{}/demo/app:v1", primary_reg.addr))
    );
    drop(r);
    common::ok(&common::booster(&replica_store, &["fsck"]));
}

/// A primary that announces a 1000-byte bundle and then sends a gigabyte: the replica
/// stops at 1000 bytes and refuses it; a bundle key outside the grammar (a path) is
/// refused before it names a file.
#[test]
fn a_rogue_primary_is_cut_off_at_the_size_it_announced() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    let replica_reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rogue = listener.local_addr().unwrap().to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let answers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (s2, a2) = (sent.clone(), answers.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut w = conn;
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push(line);
            }
            let len = head
                .iter()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<u64>().unwrap())
                })
                .unwrap_or(0);
            let _ = std::io::copy(&mut (&mut r).take(len), &mut std::io::sink());
            if head[0].starts_with("POST /bundles") {
                let key = if a2.fetch_add(1, Ordering::SeqCst) == 0 {
                    "../../../../etc/booster"
                } else {
                    "0123456789abcdef0123456789abcdef"
                };
                let body = format!("{{\"key\":\"{key}\",\"size\":1000,\"images\":[]}}");
                let _ = write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            } else {
                let _ = write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\nConnection: close\r\n\r\n"
                );
                let zeros = vec![0u8; 64 << 10];
                while w.write_all(&zeros).is_ok() {
                    s2.fetch_add(zeros.len() as u64, Ordering::Relaxed);
                    if s2.load(Ordering::Relaxed) >= 1 << 30 {
                        break;
                    }
                }
            }
        }
    });
    let replica = start_service(
        &work.path().join("replica"),
        &replica_reg.addr,
        Some(&format!("http://{rogue}")),
        &token,
    );
    let (code, body) = http(&replica.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("not a bundle key"), "{body}");
    let (code, body) = http(&replica.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("more than the 1000 bytes it announced"), "{body}");
    let (_, metrics) = http(&replica.addr, "GET", "/metrics", Some(TOKEN));
    assert!(metrics.contains("\nbooster_bytes_in_total 1000\n"), "{metrics}");
    let incoming: Vec<_> = std::fs::read_dir(work.path().join("replica/tmp/bundles"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(incoming.is_empty(), "{incoming:?}");
    std::thread::sleep(Duration::from_millis(500));
    let rogue_sent = sent.load(Ordering::Relaxed);
    eprintln!("the rogue primary got {rogue_sent} bytes out before the replica hung up");
    assert!(rogue_sent < 256 << 20, "{rogue_sent}");
}

/// A client that hangs up right after asking for a sync: the sync goes on in its own task,
/// finishes, and `/status` says so.
#[test]
fn a_sync_outlives_a_client_that_hangs_up() {
    use std::io::Write;
    let primary_reg = TestRegistry::start();
    let replica_reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let mut big = pseudo_text(3 << 20, 51);
    big.extend(pseudo_random(3 << 20, 52));
    publish_app(work.path(), &primary_reg.addr, "v1", &big);
    let primary = start_service(&work.path().join("primary"), &primary_reg.addr, None, &token);
    let replica = start_service(
        &work.path().join("replica"),
        &replica_reg.addr,
        Some(&format!("http://{}", primary.addr)),
        &token,
    );
    {
        let mut c = TcpStream::connect(&replica.addr).unwrap();
        write!(
            c,
            "POST /sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut status = serde_json::Value::Null;
    for _ in 0..1200 {
        let (_, body) = http(&replica.addr, "GET", "/status", Some(TOKEN));
        status = serde_json::from_str(&body).unwrap();
        if status["sync"]["running"] == false && !status["sync"]["last"].is_null() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status["sync"]["last"]["images_synced"], 1, "{status}");
    assert_eq!(
        skopeo_digest(&format!("docker://{}/demo/app:v1", replica_reg.addr)),
        skopeo_digest(&format!("docker://{}/demo/app:v1", primary_reg.addr))
    );
    // And the slot is free again.
    let (code, body) = http(&replica.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
}

/// 100 rounds of pulls (new tags arriving all the time), bundle builds and `/cleanup` on one
/// primary, all at once: the store stays consistent (`fsck`), and every image it holds can
/// be pushed whole.
#[test]
fn cleanup_never_races_pulls_and_builds() {
    const ROUNDS: usize = 100;
    let reg = TestRegistry::start();
    let elsewhere = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let base = tar_of(&[
        ("etc/os-release", b"race\n"),
        ("usr/share/doc/x", &pseudo_text(200_000, 60)),
    ]);
    let base = Layer::gzip_by(&base, "gzip", &["-n", "-c"]);
    // The offer is the three newest tags (each walk pulls what is new, and stays short).
    let offer = work.path().join("offer.txt");
    let publish = |i: usize| {
        let app = tar_of(&[("opt/app.bin", &pseudo_random(96 << 10, 1000 + i as u64))]);
        let layers = vec![base.clone(), Layer::gzip_by(&app, "gzip", &["-n", "-c"])];
        let dir = work.path().join(format!("r{i}"));
        image::write_image_layout(&dir, "t", &layers);
        skopeo_copy(
            &format!("oci:{}:t", dir.display()),
            &format!("docker://{}/race/app:r{i}", reg.addr),
            &[],
        );
        let list: String = (i.saturating_sub(2)..=i)
            .map(|t| format!("{}/race/app:r{t}\n", reg.addr))
            .collect();
        let tmp = offer.with_extension("partial");
        std::fs::write(&tmp, list).unwrap();
        std::fs::rename(&tmp, &offer).unwrap();
    };
    publish(0);
    let store = work.path().join("primary");
    let primary = start_service_with(&store, &reg.addr, &["--images", offer.to_str().unwrap()], &token);
    let inventory = work.path().join("empty.inventory");
    common::ok(&common::booster(
        &work.path().join("empty-store"),
        &["inventory", "-o", inventory.to_str().unwrap()],
    ));
    let body = std::fs::read(&inventory).unwrap();
    let addr = primary.addr.clone();
    let mut cleanups = 0;
    std::thread::scope(|scope| {
        let publisher = scope.spawn(|| (1..ROUNDS).for_each(publish));
        for round in 0..ROUNDS {
            let jobs: Vec<_> = [
                ("/bundles", &body[..]),
                ("/cleanup", &[][..]),
                ("/bundles", &body[..]),
            ]
            .into_iter()
            .map(|(path, b)| {
                let addr = addr.clone();
                scope.spawn(move || (path, http_with_body(&addr, "POST", path, Some(TOKEN), b)))
            })
            .collect();
            for j in jobs {
                let (path, (code, answer)) = j.join().unwrap();
                // A cleanup that waited too long for the work in progress says so (409).
                if path == "/cleanup" && code == 409 {
                    continue;
                }
                assert_eq!(code, 200, "round {round}, {path}: {answer}");
                if path == "/cleanup" {
                    cleanups += 1;
                }
            }
        }
        publisher.join().unwrap();
    });
    assert!(cleanups > ROUNDS / 2, "{cleanups} of {ROUNDS} cleanups ran");
    drop(primary);
    common::ok(&common::booster(&store, &["fsck"]));
    let listed = common::ok(&common::booster(&store, &["images", "--json"]));
    let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&listed)
        .unwrap()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(names.len() > 1, "{listed}");
    let mut args = vec!["push".to_string()];
    args.extend(names.iter().cloned());
    args.extend(["--to".into(), elsewhere.addr.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::ok(&common::booster(&store, &args));
    let last = names.last().unwrap();
    let (_, repo_tag) = last.split_once('/').unwrap();
    assert_eq!(
        skopeo_digest(&format!("docker://{}/{repo_tag}", elsewhere.addr)),
        skopeo_digest(&format!("docker://{last}"))
    );
}

/// Safe by default: beyond loopback without a token, with a short token, or sending the
/// token in clear to a primary elsewhere, `serve` refuses to start and says what to do.
#[test]
fn serve_refuses_unsafe_setups_and_says_how() {
    let work = tempfile::tempdir().unwrap();
    let short = work.path().join("short");
    std::fs::write(&short, "t0ken\n").unwrap();
    let empty = work.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let token = token_file(work.path());
    let port = common::registry::free_port().to_string();
    let wild = format!("0.0.0.0:{port}");
    let local = format!("127.0.0.1:{port}");
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec!["--listen", &wild],
            &["--token-file", "--no-auth", "openssl rand"],
        ),
        (
            vec!["--listen", &local, "--token-file", short.to_str().unwrap()],
            &["at least 16"],
        ),
        (
            vec!["--listen", &local, "--token-file", empty.to_str().unwrap()],
            &["at least 16"],
        ),
        (
            vec![
                "--listen",
                &local,
                "--token-file",
                token.to_str().unwrap(),
                "--primary",
                "http://primary.example:8080",
                "--allow-unsigned",
            ],
            &["in clear", "--insecure"],
        ),
        (
            vec!["--listen", &local, "--primary", "http://127.0.0.1:1"],
            &["--primary-key", "--allow-unsigned"],
        ),
    ];
    for (args, says) in cases {
        let mut full = vec!["serve", "--registry", "127.0.0.1:1"];
        full.extend(args.iter().copied());
        let out = common::booster(&work.path().join("store"), &full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{full:?} started");
        for s in says {
            assert!(err.contains(s), "{full:?}: {err}");
        }
    }
}

/// A client that asks for a bundle and then reads nothing loses its connection after
/// `--write-timeout`, so it cannot hold a connection slot (here the only one) for good.
#[test]
fn a_reader_that_stops_reading_loses_its_slot() {
    use std::io::Write;
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    publish_app(work.path(), &reg.addr, "v1", &pseudo_random(24 << 20, 61));
    let primary = start_service_with(
        &work.path().join("primary"),
        &reg.addr,
        &["--max-connections", "1", "--write-timeout", "2"],
        &token,
    );
    let inventory = work.path().join("empty.inventory");
    common::ok(&common::booster(
        &work.path().join("empty-store"),
        &["inventory", "-o", inventory.to_str().unwrap()],
    ));
    let (code, answer) = http_with_body(
        &primary.addr,
        "POST",
        "/bundles",
        Some(TOKEN),
        &std::fs::read(&inventory).unwrap(),
    );
    assert_eq!(code, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert!(v["size"].as_u64().unwrap() > 16 << 20, "{answer}");
    let mut stalled = TcpStream::connect(&primary.addr).unwrap();
    write!(
        stalled,
        "GET /bundles/{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n",
        v["key"].as_str().unwrap()
    )
    .unwrap();
    // The only slot is the stalled reader's until the write timeout frees it.
    let started = std::time::Instant::now();
    let (code, _) = http(&primary.addr, "GET", "/healthz", None);
    assert_eq!(code, 200);
    let waited = started.elapsed();
    eprintln!("/healthz answered after {waited:?} behind a reader that stopped");
    assert!(waited < Duration::from_secs(30), "{waited:?}");
    drop(stalled);
}

/// Inventories being received share one memory budget: while one request holds most of
/// `--inventory-memory`, another waits for room; when the first runs out of time (408,
/// naming the budget) its room goes to the second.
#[test]
fn inventories_share_one_memory_budget() {
    use std::io::{Read, Write};
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let primary = start_service_with(
        &work.path().join("primary"),
        "127.0.0.1:1",
        &[
            "--max-inventory",
            "1M",
            "--inventory-memory",
            "1M",
            "--request-timeout",
            "3",
        ],
        &token,
    );
    // A: announces most of the budget (900 kB), sends ten bytes, then nothing.
    let mut a = TcpStream::connect(&primary.addr).unwrap();
    write!(
        a,
        "POST /bundles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 900000\r\nConnection: close\r\n\r\nBOOSTINV.."
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // B: 200 kB at once: no room until A's time is up, 2 s later; then B is read (and
    // refused as no inventory: 400, not 408).
    let started = std::time::Instant::now();
    let (code, body) = http_with_body(
        &primary.addr,
        "POST",
        "/bundles",
        Some(TOKEN),
        &vec![b'x'; 200_000],
    );
    let waited = started.elapsed();
    assert_eq!(code, 400, "{body}");
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    let mut answer = String::new();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = a.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--inventory-memory"), "{answer}");
}

/// The container runtime and systemd stop the service with SIGTERM, a terminal with SIGINT:
/// either way it stops accepting, closes its store (after RocksDB's background work) and
/// exits 0, and the store opens clean afterwards.
#[test]
fn sigterm_and_sigint_close_the_store_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let token = token_file(work.path());
    let store = work.path().join("store");
    for signal in ["-TERM", "-INT"] {
        let mut service = start_service_with(&store, "127.0.0.1:1", &["-v"], &token);
        let pid = service.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = service.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "kill {signal}: still running"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = std::fs::read_to_string(store.with_extension("log")).unwrap();
        assert!(status.success(), "kill {signal}: {status}\n{log}");
        assert!(
            log.contains("shutting down") && log.contains("closed"),
            "kill {signal}: {log}"
        );
        let fsck: serde_json::Value =
            serde_json::from_str(&common::ok(&common::booster(&store, &["--json", "fsck"]))).unwrap();
        assert_eq!(fsck["warnings"].as_array().unwrap().len(), 0, "{fsck}");
    }
}
