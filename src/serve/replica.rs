//! The replica's side: `/sync` from the primary service or a registry of bundles, each
//! bundle checked (size, key, the primary's signature) before anything is imported.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine as _;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::cache::is_bundle_key;
use super::primary::{NONCE_HEADER, answer_claims};
use super::{AppState, ClientTls, Upstream, blocking, error_response};
use crate::error::{Error, Result};
use crate::id::Digest;
use crate::oci::cosign::{self, Finding};
use crate::oci::reference::RegistryRef;
use crate::ops::artifact::{self, Found, Place};
use crate::ops::import;
use crate::ops::inventory::Inventory;

/// The HTTP client a replica talks to its primary service with.
pub fn primary_client(tls: &ClientTls) -> Result<reqwest::Client> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(format!("reading {}", p.display()), e));
    let bad = |what: &str, p: &Path, e: reqwest::Error| Error::Usage(format!("{what} {}: {e}", p.display()));
    let mut b = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .read_timeout(std::time::Duration::from_secs(600));
    if let Some(ca) = &tls.ca {
        b = b.tls_certs_only(
            reqwest::Certificate::from_pem_bundle(&read(ca)?).map_err(|e| bad("--primary-ca", ca, e))?,
        );
    }
    match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => {
            let id = reqwest::Identity::from_pkcs8_pem(&read(c)?, &read(k)?)
                .map_err(|e| bad("--primary-client-cert/--primary-client-key", c, e))?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => {
            return Err(Error::Usage(
                "--primary-client-cert and --primary-client-key go together".into(),
            ));
        }
    }
    b.build()
        .map_err(|e| Error::Usage(format!("the HTTP client for the primary: {e}")))
}

/// `POST /sync` (or `GET /sync`): pull what this replica lacks from the primary. The sync
/// runs in a task of its own and holds the sync slot there: a client that hangs up stops
/// waiting, not the sync, and `/status` follows it to the end.
pub async fn sync(State(state): State<Arc<AppState>>) -> Response {
    if state.config.primary.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "this service has no --primary: it is not a replica"})),
        )
            .into_response();
    }
    let Ok(busy) = state.busy.clone().try_lock_owned() else {
        return (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": "a sync is already running; see GET /status"})),
        )
            .into_response();
    };
    {
        let mut s = state.status.lock().unwrap_or_else(|e| e.into_inner());
        s.running = true;
        s.phase = "starting".into();
        s.bytes_transferred = 0;
        s.started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
    }
    let task = tokio::spawn(sync_task(state.clone(), busy));
    match task.await {
        Ok(Ok(summary)) => Json(summary).into_response(),
        Ok(Err(e)) => error_response(&state, StatusCode::BAD_GATEWAY, &e),
        Err(e) => error_response(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            &super::task_failed("sync", e),
        ),
    }
}

async fn sync_task(
    state: Arc<AppState>,
    _busy: tokio::sync::OwnedMutexGuard<()>,
) -> Result<serde_json::Value> {
    let started = Instant::now();
    let res = {
        let _work = state.work.read().await;
        run_sync(&state).await
    };
    let mut s = state.status.lock().unwrap_or_else(|e| e.into_inner());
    s.running = false;
    s.phase = "idle".into();
    match res {
        Ok(mut summary) => {
            state.metrics.syncs.fetch_add(1, Ordering::Relaxed);
            summary["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
            s.last = Some(summary.clone());
            tracing::info!("sync done: {summary}");
            Ok(summary)
        }
        Err(e) => {
            state.metrics.sync_failures.fetch_add(1, Ordering::Relaxed);
            s.last = Some(serde_json::json!({"error": e.to_string()}));
            Err(e)
        }
    }
}

fn primary_error(primary: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Registry {
        registry: primary.to_string(),
        image: "booster primary".into(),
        message: format!("{what}: {e}"),
    }
}

/// An error and its causes on one line: reqwest's own message alone ("error sending
/// request") hides the TLS or connection failure that says what to fix.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

fn authed(state: &AppState, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match &state.config.token {
        Some(t) => rb.bearer_auth(t),
        None => rb,
    }
}

/// A bundle on this replica's disk, checked and ready to import.
struct Incoming {
    path: PathBuf,
    /// Removed once imported.
    remove: PathBuf,
    transferred: u64,
    size: u64,
    from: String,
    /// The upstream and the signing time of the release this bundle brings (registries of
    /// bundles, with `--primary-key`): remembered once imported.
    release: Option<(String, u64)>,
}

/// What one upstream has for this replica.
enum Offered {
    Bundle(Incoming),
    UpToDate(Option<(String, u64)>),
    NoFit,
}

/// Where a replica remembers, per registry of bundles, the signing time of the newest
/// release it took (store-format.md 6.7): an older one is a rollback.
fn releases_path(state: &AppState) -> PathBuf {
    state.ctx.store.path().join("replica-releases.json")
}

fn taken_releases(state: &AppState) -> serde_json::Map<String, serde_json::Value> {
    std::fs::read(releases_path(state))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

fn remember_release(state: &AppState, release: &Option<(String, u64)>) -> Result<()> {
    let Some((upstream, at)) = release else {
        return Ok(());
    };
    let mut all = taken_releases(state);
    if all
        .get(upstream)
        .and_then(|v| v.as_u64())
        .is_some_and(|old| old >= *at)
    {
        return Ok(());
    }
    all.insert(upstream.clone(), serde_json::json!(at));
    let path = releases_path(state);
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&all).expect("json"))
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Tries each upstream in order; the first whose bundle imports (or that says this replica
/// is up to date) ends the search. A bundle that does not import (its base is not all
/// here after all), or that is not signed as it must be, sends the sync on to the next
/// upstream too. Only when none helps is the sync a failure, naming why each could not.
async fn run_sync(state: &Arc<AppState>) -> Result<serde_json::Value> {
    let mut why = Vec::new();
    for up in &state.config.primary {
        let offered = match up {
            Upstream::Service(url) => fetch_from_service(state, url).await.map(Offered::Bundle),
            Upstream::Bundles(repo) => fetch_from_bundles(state, repo).await,
        };
        let incoming = match offered {
            Ok(Offered::Bundle(i)) => i,
            Ok(Offered::UpToDate(release)) => {
                let s = state.clone();
                blocking("remembering the release", move || remember_release(&s, &release)).await?;
                return Ok(
                    serde_json::json!({"images_synced": 0, "up_to_date": true, "source": up.to_string(), "bytes_transferred": 0}),
                );
            }
            Ok(Offered::NoFit) => {
                tracing::info!("{up}: no bundle fits this replica's state; trying the next upstream");
                why.push(format!("{up}: no bundle fits this replica's state"));
                continue;
            }
            Err(e) => {
                tracing::warn!("{e}; trying the next upstream");
                why.push(e.to_string());
                continue;
            }
        };
        let from = incoming.from.clone();
        match import_incoming(state, &incoming).await {
            Ok(report) => return push_imported(state, incoming, report).await,
            Err(e) => {
                tracing::warn!("importing the bundle from {from}: {e}; trying the next upstream");
                why.push(format!("importing the bundle from {from}: {e}"));
            }
        }
    }
    Err(Error::Registry {
        registry: state
            .config
            .primary
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        image: "replica sync".into(),
        message: format!(
            "no upstream could bring this replica up to date: {}",
            why.join("; ")
        ),
    })
}

fn fresh_nonce() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).expect("the system's random source");
    hex::encode(b)
}

/// The primary's answer to `POST /bundles`, checked: a key in the grammar, a size, and
/// with `--primary-key` a signature by one of the keys over this bundle's sha256, key,
/// size and this request's nonce. Returns the key, size and the sha256 the download must have.
fn check_answer(
    state: &AppState,
    primary: &str,
    info: &serde_json::Value,
    nonce: &str,
) -> Result<(String, u64, Option<Digest>)> {
    let refused = |why: String| {
        state.metrics.bundles_refused.fetch_add(1, Ordering::Relaxed);
        primary_error(primary, "refusing the bundle", why)
    };
    let key = info["key"].as_str().unwrap_or_default().to_string();
    if !is_bundle_key(&key) {
        return Err(refused(format!("the primary named it {key:?}, not a bundle key")));
    }
    let Some(size) = info["size"].as_u64() else {
        return Err(refused("the primary gave no size".into()));
    };
    let Some(keys) = &state.config.primary_keys else {
        // Unsigned (--allow-unsigned): the sha256 still catches damage on the way.
        let announced = info["sha256"].as_str().and_then(|d| d.parse().ok());
        return Ok((key, size, announced));
    };
    let sig = &info["signature"];
    let (Some(payload_b64), Some(signature)) = (sig["payload"].as_str(), sig["signature"].as_str()) else {
        return Err(refused(format!(
            "it is not signed, and --primary-key {} requires a signature (does the primary run with --signing-key?)",
            keys.describe()
        )));
    };
    let payload = base64::engine::general_purpose::STANDARD
        .decode(payload_b64)
        .map_err(|e| refused(format!("its signature payload is not base64: {e}")))?;
    let claims: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| refused(format!("its signature payload is not JSON: {e}")))?;
    let digest: Digest = claims["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| refused("its signature names no sha256".into()))?;
    match cosign::check_simplesigning(keys, &digest, &payload, Some(&signature.to_string())) {
        Finding::Signed { .. } => {}
        Finding::Rejected(why) => return Err(refused(format!("{why} (--primary-key {})", keys.describe()))),
        Finding::NotASignature => return Err(refused("not a signature".into())),
    }
    if claims["optional"] != answer_claims(&key, size, Some(nonce)) {
        return Err(refused(format!(
            "its signature is for another request (signed claims {}, expected key {key}, size {size}, nonce {nonce})",
            claims["optional"]
        )));
    }
    Ok((key, size, Some(digest)))
}

/// Asks a primary service for the bundle this replica's inventory lacks, downloads it and
/// checks it against the primary's answer.
async fn fetch_from_service(state: &Arc<AppState>, primary: &str) -> Result<Incoming> {
    state.set_phase("inventory", 0);
    let store = state.ctx.store.clone();
    let inv = blocking("inventory", move || Inventory::of_store(&store)).await?;
    state.set_phase("waiting for the primary to build the bundle", 0);
    let nonce = fresh_nonce();
    let resp = authed(state, state.http.post(format!("{primary}/bundles")))
        .header(NONCE_HEADER, &nonce)
        .body(inv.encode())
        .send()
        .await
        .map_err(|e| primary_error(primary, "requesting a bundle", with_causes(&e)))?;
    if !resp.status().is_success() {
        let code = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(primary_error(
            primary,
            "requesting a bundle",
            format!("{code}: {}", text.trim()),
        ));
    }
    let info: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| primary_error(primary, "reading the bundle answer", e))?;
    let (key, size, digest) = check_answer(state, primary, &info, &nonce)?;
    let s = state.clone();
    let dir = blocking("creating the bundle directory", move || s.bundle_dir()).await?;
    let path = dir.join(format!("incoming-{key}.bkp"));
    let transferred = download(state, primary, &key, size, &path).await?;
    if let Some(expected) = digest {
        state.set_phase("checking the bundle", transferred);
        let p = path.clone();
        let (actual, _) = blocking("hashing the bundle", move || {
            crate::oci::source::sha256_of_file(&p)
        })
        .await?;
        if actual != expected {
            let _ = std::fs::remove_file(&path);
            state.metrics.bundles_refused.fetch_add(1, Ordering::Relaxed);
            return Err(primary_error(
                primary,
                "refusing the bundle",
                format!(
                    "its sha256 is {actual}, the primary {} {expected}: altered on the way",
                    if state.config.primary_keys.is_some() {
                        "signed"
                    } else {
                        "announced"
                    }
                ),
            ));
        }
    }
    Ok(Incoming {
        remove: path.clone(),
        path,
        transferred,
        size,
        from: primary.to_string(),
        release: None,
    })
}

/// Finds the bundle for this replica's state in a registry of bundles and fetches it.
/// With `--primary-key`, the release pointer and the bundle must carry the primary's
/// signature (cosign's `.sig` layout) before they count.
async fn fetch_from_bundles(state: &Arc<AppState>, repo: &RegistryRef) -> Result<Offered> {
    state.set_phase("looking for a bundle in the registry", 0);
    let store = state.ctx.store.clone();
    let held = blocking("inventory", move || artifact::held_images(&store)).await?;
    let upstream = Upstream::Bundles(repo.clone()).to_string();
    let not_before = taken_releases(state)
        .get(&upstream)
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let trust = state
        .config
        .primary_keys
        .as_deref()
        .map(|keys| artifact::Trust { keys, not_before });
    let found =
        artifact::find_bundle(&state.ctx, &Place::Registry(repo.clone()), &held, trust.as_ref()).await;
    let (place, size, release) = match found {
        Ok(Found::UpToDate { released }) => return Ok(Offered::UpToDate(released.map(|at| (upstream, at)))),
        Ok(Found::NoFit { .. }) => return Ok(Offered::NoFit),
        Ok(Found::Bundle {
            place,
            bytes,
            released,
        }) => (place, bytes, released.map(|at| (upstream, at))),
        Err(e) => {
            if matches!(e, Error::BundleNotSigned { .. }) {
                state.metrics.bundles_refused.fetch_add(1, Ordering::Relaxed);
            }
            return Err(e);
        }
    };
    let Place::Registry(reference) = &place else {
        unreachable!("a registry's bundle is in the registry");
    };
    // Named after the manifest's digest, never after a tag the registry chose.
    let digest = reference
        .digest
        .map(|d| d.hex()[..16].to_string())
        .unwrap_or_default();
    let s = state.clone();
    let dir = blocking("creating the bundle directory", move || s.bundle_dir())
        .await?
        .join(format!("incoming-artifact-{digest}"));
    state.set_phase("downloading", 0);
    let fetched = artifact::fetch(&state.ctx, &place, &dir, &|done, _| {
        state.set_phase("downloading", done)
    })
    .await?;
    state
        .metrics
        .bytes_in
        .fetch_add(fetched.transferred, Ordering::Relaxed);
    Ok(Offered::Bundle(Incoming {
        path: fetched.path,
        remove: dir,
        transferred: fetched.transferred,
        size,
        from: format!(
            "docker://{}/{}:{}",
            reference.registry,
            reference.repository,
            reference.tag.as_deref().unwrap_or_default()
        ),
        release,
    }))
}

/// Imports a downloaded bundle; a bundle that fails to import is removed (a rerun fetches
/// it again, or another upstream's).
async fn import_incoming(state: &Arc<AppState>, incoming: &Incoming) -> Result<import::ImportReport> {
    state.set_phase("importing", incoming.transferred);
    let store = state.ctx.store.clone();
    let p = incoming.path.clone();
    let report = blocking("import", move || {
        import::import_bundle(&store, &p, &mut |_, _, _| {})
    })
    .await;
    if report.is_err() {
        remove_incoming(incoming).await;
    }
    report
}

async fn remove_incoming(incoming: &Incoming) {
    let p = incoming.remove.clone();
    let _ = blocking("removing the bundle", move || {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
        Ok(())
    })
    .await;
}

/// Pushes the images a bundle brought into this replica's registry.
async fn push_imported(
    state: &Arc<AppState>,
    incoming: Incoming,
    report: import::ImportReport,
) -> Result<serde_json::Value> {
    let transferred = incoming.transferred;
    state.set_phase("pushing", transferred);
    let pushed: Vec<serde_json::Value> = crate::ops::push_attached::push_all_to(
        &state.ctx,
        &report.images,
        &state.config.registry,
        &Default::default(),
    )
    .await?
    .into_iter()
    .map(|r| serde_json::json!({"image": r.destination, "digest": r.digest, "blobs_uploaded": r.blobs_uploaded}))
    .collect();
    remove_incoming(&incoming).await;
    let (s, release) = (state.clone(), incoming.release.clone());
    blocking("remembering the release", move || remember_release(&s, &release)).await?;
    Ok(serde_json::json!({
        "images_synced": pushed.len(),
        "images": pushed,
        "source": incoming.from,
        "bytes_transferred": transferred,
        "bundle_bytes": incoming.size,
        "chunks_added": report.chunks_added,
    }))
}

/// Downloads the bundle `key` into `path`, resuming with Range after a dropped connection,
/// and never past the `size` the primary announced: a primary that sends more is cut off
/// there and the download fails.
async fn download(state: &AppState, primary: &str, key: &str, size: u64, path: &Path) -> Result<u64> {
    let io = |e: std::io::Error| Error::io(format!("writing {}", path.display()), e);
    let mut have = tokio::fs::metadata(path).await.map(|m| m.len()).unwrap_or(0);
    if have > size {
        have = 0;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(io)?;
    if have == 0 {
        file.set_len(0).await.map_err(io)?;
    }
    let mut transferred = 0u64;
    let mut attempts = 0;
    while have < size {
        attempts += 1;
        state.set_phase("downloading", transferred);
        let mut rb = authed(state, state.http.get(format!("{primary}/bundles/{key}")));
        if have > 0 {
            rb = rb.header(header::RANGE, format!("bytes={have}-"));
        }
        let result: std::result::Result<(), Attempt> = async {
            let resp = rb.send().await.map_err(|e| Attempt::Retry(e.to_string()))?;
            let st = resp.status();
            if !(st == reqwest::StatusCode::OK || st == reqwest::StatusCode::PARTIAL_CONTENT) {
                return Err(Attempt::Retry(format!("{st}")));
            }
            if st == reqwest::StatusCode::OK && have > 0 {
                file.set_len(0).await.map_err(|e| Attempt::Retry(e.to_string()))?;
                have = 0;
            }
            // A partial answer must start where this file ends, or the two would not join.
            if st == reqwest::StatusCode::PARTIAL_CONTENT {
                let range = resp
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !range.starts_with(&format!("bytes {have}-")) {
                    file.set_len(0).await.map_err(|e| Attempt::Retry(e.to_string()))?;
                    have = 0;
                    return Err(Attempt::Retry(format!(
                        "a range {range:?} that does not start at {have}"
                    )));
                }
            }
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Attempt::Retry(e.to_string()))?;
                let room = (size - have) as usize;
                let keep = &chunk[..chunk.len().min(room)];
                file.write_all(keep)
                    .await
                    .map_err(|e| Attempt::Retry(e.to_string()))?;
                have += keep.len() as u64;
                transferred += keep.len() as u64;
                state
                    .metrics
                    .bytes_in
                    .fetch_add(keep.len() as u64, Ordering::Relaxed);
                if keep.len() < chunk.len() {
                    return Err(Attempt::Refuse(format!(
                        "the primary sent more than the {size} bytes it announced; cut off there"
                    )));
                }
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) if have >= size => break,
            Err(Attempt::Refuse(why)) => {
                drop(file);
                let _ = tokio::fs::remove_file(path).await;
                state.metrics.bundles_refused.fetch_add(1, Ordering::Relaxed);
                return Err(primary_error(primary, "downloading the bundle", why));
            }
            Ok(()) | Err(Attempt::Retry(_)) if attempts < 5 => {
                tracing::warn!(
                    "bundle download from {primary} interrupted at {have}/{size} bytes: {result:?}; resuming"
                );
                tokio::time::sleep(std::time::Duration::from_millis(300 * attempts)).await;
            }
            Ok(()) => {
                return Err(primary_error(
                    primary,
                    "downloading the bundle",
                    format!("stopped at {have} of {size} bytes"),
                ));
            }
            Err(Attempt::Retry(e)) => return Err(primary_error(primary, "downloading the bundle", e)),
        }
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    Ok(transferred)
}

/// How a download attempt failed: worth another try, or a primary to stop listening to.
#[derive(Debug)]
enum Attempt {
    Retry(String),
    Refuse(String),
}
