//! The primary's side: the offer, `POST /bundles` (one build per replica state),
//! `GET /bundles/{key}`, and publication to a registry of bundles.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine as _;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::io::AsyncSeekExt;

use super::cache::{self, is_bundle_key};
use super::{AppState, blocking, client_error, error_response, task_failed};
use crate::error::{Error, Result};
use crate::id::Digest;
use crate::layer::Analysis;
use crate::oci::reference::{ImageRef, RegistryRef, read_image_list};
use crate::ops::artifact::{self, Labels, Place};
use crate::ops::export::Since;
use crate::ops::inventory::Inventory;
use crate::ops::make_bundle;
use crate::ops::pull::PullOptions;

/// The header a replica sends a fresh random value in; the primary's signed answer repeats
/// it, so an old answer (and its bundle) cannot be replayed to the replica.
pub const NONCE_HEADER: &str = "x-booster-nonce";

/// When a walk of the registry for the offer started, and what it found (or why it failed).
type OfferWalk = (Instant, std::result::Result<Vec<String>, String>);

pub struct PrimaryState {
    builds: BundleBuilds,
    /// The last offer and when its refresh started (see [`current_offer`]).
    offer: tokio::sync::Mutex<Option<OfferWalk>>,
    /// Images the last offer walk could not pull, with why (shown in `/status`).
    pub skipped: std::sync::Mutex<Vec<(String, String)>>,
    /// Bundle keys published to `--publish`, or being published (a failed one is dropped
    /// so that its next request publishes it again).
    published: std::sync::Mutex<std::collections::HashSet<String>>,
    /// One publication at a time: each holds a copy of its bundle's volumes on disk.
    publishing: tokio::sync::Semaphore,
    /// Bytes of inventory bodies held now, over all requests (`--inventory-memory`).
    inventory_budget: Arc<tokio::sync::Semaphore>,
}

impl PrimaryState {
    pub fn new(config: &super::ServeConfig) -> PrimaryState {
        PrimaryState {
            builds: BundleBuilds::new(config.max_builds),
            offer: tokio::sync::Mutex::new(None),
            skipped: Default::default(),
            published: Default::default(),
            publishing: tokio::sync::Semaphore::new(1),
            inventory_budget: Arc::new(tokio::sync::Semaphore::new(budget_permits(
                config.limits.inventory_memory.max(config.limits.max_inventory),
            ))),
        }
    }
}

/// Permits are KiB, so that any budget fits a semaphore's count.
fn budget_permits(bytes: u64) -> usize {
    (bytes.div_ceil(1024) as usize).min(tokio::sync::Semaphore::MAX_PERMITS)
}

/// The primary's bundle builds: one at a time per bundle key, so replicas in the same state
/// share one build and one file (two builders of one key would write the same `.partial`
/// file at once), and at most `max_builds` at a time over all keys.
struct BundleBuilds {
    per_key: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    permits: tokio::sync::Semaphore,
}

impl BundleBuilds {
    fn new(max_builds: usize) -> BundleBuilds {
        BundleBuilds {
            per_key: Default::default(),
            permits: tokio::sync::Semaphore::new(max_builds.max(1)),
        }
    }

    fn key_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }

    /// Forgets `key`'s lock once nobody holds or awaits it (the map holds the last copy).
    fn forget_if_idle(&self, key: &str) {
        let mut m = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
            m.remove(key);
        }
    }
}

/// The offer as of this request or later. Requests that arrive together share one walk of
/// the registry: a walk that started after a request arrived saw the registry at least as
/// new as that request did, so its answer (or its failure) serves it. Fifty replicas asking
/// at once cost one or two walks instead of fifty. The walk runs in a task of its own, so a
/// client that hangs up does not cancel it for the others.
pub async fn current_offer(state: &Arc<AppState>) -> Result<Vec<String>> {
    let asked = Instant::now();
    let s = state.clone();
    let shared = tokio::spawn(async move {
        let mut last = s.primary.offer.lock().await;
        if let Some((started, outcome)) = last.as_ref()
            && *started >= asked
        {
            return outcome.clone();
        }
        let started = Instant::now();
        s.metrics.offer_refreshes.fetch_add(1, Ordering::Relaxed);
        let outcome = {
            let _work = s.work.read().await;
            refresh_offer(&s).await.map_err(|e| e.to_string())
        };
        *last = Some((started, outcome.clone()));
        outcome
    });
    shared
        .await
        .map_err(|e| task_failed("offer", e))?
        .map_err(|message| Error::Registry {
            registry: state.config.registry.registry.clone(),
            image: "the offered images".into(),
            message,
        })
}

/// The images this primary offers, pulled into its store (only what is new is fetched),
/// each with its signatures and other referrers. An image that cannot be pulled (schema 1,
/// a foreign layer, a tag deleted meanwhile) is left out of this offer, logged and listed in
/// `/status`: one bad tag must not stop every replica. Only when every image fails is the
/// offer a failure (the registry itself is likely down).
async fn refresh_offer(state: &AppState) -> Result<Vec<String>> {
    let refs: Vec<ImageRef> = match &state.config.images {
        Some(list) => read_image_list(list)?
            .into_iter()
            .map(|r| match r {
                ImageRef::Registry(x) => ImageRef::Registry(x.rehomed(&state.config.registry)),
                other => other,
            })
            .collect(),
        None => catalog_refs(state).await?,
    };
    let opts = PullOptions::new(None, Analysis::Full);
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    for r in &refs {
        match crate::ops::pull::pull_image(&state.ctx, r, &opts).await {
            Ok(pulled) => {
                for n in pulled.names() {
                    if !names.contains(n) {
                        names.push(n.clone());
                    }
                }
            }
            Err(e) => {
                tracing::warn!("offer: leaving out {r}: {e}");
                skipped.push((r.to_string(), e.to_string()));
            }
        }
    }
    let all_failed = names.is_empty() && !skipped.is_empty();
    let first = skipped.first().map(|(_, e)| e.clone());
    *state.primary.skipped.lock().unwrap_or_else(|e| e.into_inner()) = skipped;
    match (all_failed, first) {
        (true, Some(e)) => Err(Error::Registry {
            registry: state.config.registry.registry.clone(),
            image: "every offered image".into(),
            message: e,
        }),
        _ => Ok(names),
    }
}

async fn catalog_refs(state: &AppState) -> Result<Vec<ImageRef>> {
    let reg = &state.config.registry.registry;
    let mut out = Vec::new();
    for repo in state.ctx.registries.catalog(reg).await? {
        // Bundles this primary publishes beside its images are not images to offer.
        if state
            .config
            .publish
            .as_ref()
            .is_some_and(|p| p.registry == *reg && p.repository == repo)
        {
            continue;
        }
        let r = RegistryRef {
            registry: reg.clone(),
            repository: repo,
            tag: None,
            digest: None,
        };
        // cosign's tags and tag-schema indexes come with the images they are about.
        for tag in state.ctx.registries.tags(&r).await? {
            if crate::oci::referrers::is_referrer_tag(&tag) {
                continue;
            }
            out.push(ImageRef::Registry(RegistryRef {
                tag: Some(tag),
                ..r.clone()
            }));
        }
    }
    out.sort_by_key(|r| r.to_string());
    Ok(out)
}

pub async fn offer(State(state): State<Arc<AppState>>) -> Response {
    match current_offer(&state).await {
        Ok(names) => {
            let list: Vec<serde_json::Value> = names
                .iter()
                .filter_map(|n| {
                    state
                        .ctx
                        .store
                        .image(n)
                        .ok()
                        .flatten()
                        .map(|r| serde_json::json!({"name": n, "digest": r.digest}))
                })
                .collect();
            Json(serde_json::json!({"images": list})).into_response()
        }
        Err(e) => error_response(&state, StatusCode::BAD_GATEWAY, &e),
    }
}

/// An inventory body, with its share of the memory budget held until dropped.
struct HeldBody {
    bytes: Vec<u8>,
    _budget: tokio::sync::OwnedSemaphorePermit,
}

/// Reads an inventory body within `--max-inventory`, `--request-timeout` and the budget
/// all requests share (`--inventory-memory`): each piece takes its room before it is kept.
async fn read_inventory(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> std::result::Result<HeldBody, Response> {
    let limits = &state.config.limits;
    let budget = state.primary.inventory_budget.clone();
    // A body that says its length takes its whole room at once: requests that each held
    // part of the budget while waiting for the rest would all time out together.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n <= limits.max_inventory)
        .unwrap_or(0);
    let read = async {
        let mut body = body;
        let mut bytes = Vec::with_capacity(announced as usize);
        let mut held = budget
            .clone()
            .acquire_many_owned(budget_permits(announced) as u32)
            .await
            .expect("never closed");
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| (StatusCode::BAD_REQUEST, format!("reading the inventory: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            if (bytes.len() + data.len()) as u64 > limits.max_inventory {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the inventory is larger than this service accepts ({} bytes; --max-inventory)",
                        limits.max_inventory
                    ),
                ));
            }
            let now = budget_permits(bytes.len() as u64 + data.len() as u64);
            let more = now.saturating_sub(held.num_permits());
            if more > 0 {
                let p = budget
                    .clone()
                    .acquire_many_owned(more as u32)
                    .await
                    .expect("never closed");
                held.merge(p);
            }
            bytes.extend_from_slice(&data);
        }
        Ok(HeldBody { bytes, _budget: held })
    };
    match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err((status, message))) => Err(client_error(state, status, message)),
        Err(_) => Err(client_error(
            state,
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the inventory did not arrive within {:?} (--request-timeout), or the service had no room for it (--inventory-memory)",
                limits.body_timeout
            ),
        )),
    }
}

/// The cache key of a bundle: what the replica holds, in canonical form, and the offer
/// (each offered name with the digest it has now). Never the request's bytes: two
/// inventories of one state differ in their timestamps.
fn bundle_key(state: &AppState, inv: &Inventory, names: &[String]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"booster bundle key v2\0");
    h.update(inv.state_digest().as_bytes());
    for n in names {
        if let Ok(Some(r)) = state.ctx.store.image(n) {
            h.update(n.as_bytes());
            h.update(b"\0");
            h.update(&r.digest.0);
        }
    }
    h.finalize().to_hex()[..32].to_string()
}

/// `POST /bundles` with an inventory body: build (or reuse) the bundle that inventory lacks.
pub async fn create_bundle(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let nonce = match headers.get(NONCE_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(v.to_string())
        }
        Some(_) => {
            return client_error(
                &state,
                StatusCode::BAD_REQUEST,
                format!("{NONCE_HEADER}: 1 to 64 hex digits"),
            );
        }
    };
    let body = match read_inventory(&state, &headers, body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    // Decoding and hashing a large inventory is CPU work: off the async threads.
    let HeldBody { bytes, _budget } = body;
    let decoded = blocking("reading the inventory", move || {
        Inventory::decode(&bytes).map_err(|e| Error::format("inventory", e.0))
    })
    .await;
    let inv = match decoded {
        Ok(i) => i,
        Err(e) => return error_response(&state, StatusCode::BAD_REQUEST, &e),
    };
    let names = match current_offer(&state).await {
        Ok(n) => n,
        Err(e) => return error_response(&state, StatusCode::BAD_GATEWAY, &e),
    };
    let (s, n) = (state.clone(), names.clone());
    let keyed = blocking("keying the bundle", move || {
        let key = bundle_key(&s, &inv, &n);
        let path = s.bundle_dir()?.join(format!("{key}.bkp"));
        Ok((inv, key, path))
    })
    .await;
    let (inv, key, path) = match keyed {
        Ok(k) => k,
        Err(e) => return error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    // In a task of its own: a replica that hangs up must not abandon a build (and release
    // its key) half-way while the blocking writer goes on.
    let build = tokio::spawn(ensure_bundle(
        state.clone(),
        key.clone(),
        path.clone(),
        inv,
        names.clone(),
    ));
    let built = match build.await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => {
            return error_response(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                &task_failed("bundle", e),
            );
        }
    };
    drop(_budget);
    let (digest, size) = built;
    let mut answer =
        serde_json::json!({"key": key, "size": size, "sha256": digest.to_string(), "images": names});
    if let Some(signer) = &state.config.signing_key {
        let (payload, sig) = signer.sign_simplesigning(
            "booster/bundle",
            &digest,
            answer_claims(&key, size, nonce.as_deref()),
        );
        answer["signature"] = serde_json::json!({
            "payload": base64::engine::general_purpose::STANDARD.encode(payload),
            "signature": sig,
        });
    }
    Json(answer).into_response()
}

/// What a primary's signature says besides the bundle's sha256: which key and size it
/// answers, and the replica's nonce.
pub fn answer_claims(key: &str, size: u64, nonce: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "io.booster.bundle.key": key,
        "io.booster.bundle.size": size.to_string(),
        "io.booster.nonce": nonce.unwrap_or_default(),
    })
}

/// Makes sure the bundle `key` is at `path`: built once however many replicas ask for it at
/// the same time (the others wait and count as cache hits), within the build limit.
/// Returns its sha256 and length.
async fn ensure_bundle(
    state: Arc<AppState>,
    key: String,
    path: PathBuf,
    inv: Inventory,
    names: Vec<String>,
) -> Result<(Digest, u64)> {
    let lock = state.primary.builds.key_lock(&key);
    let result = async {
        let _one_build_per_key = lock.lock().await;
        let _work = state.work.read().await;
        // Under the work lock: a cleanup that ran before it may have removed the directory.
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        if path.is_file() {
            state.metrics.bundle_cache_hits.fetch_add(1, Ordering::Relaxed);
            let (s, k, p) = (state.clone(), key.clone(), path.clone());
            let found = blocking("hashing the bundle", move || {
                cache::mark_used(&p);
                s.cache.digest(&k, &p)
            })
            .await?;
            publish_in_background(&state, &key, &path, Since::Inventory(Box::new(inv)), names);
            return Ok(found);
        }
        let built = {
            let _permit = state
                .primary
                .builds
                .permits
                .acquire()
                .await
                .expect("the build semaphore is never closed");
            let store = state.ctx.store.clone();
            let opts = state.config.bundle.clone();
            let (p, since, names) = (
                path.clone(),
                Since::Inventory(Box::new(inv.clone())),
                names.clone(),
            );
            let (s, k, inv2) = (state.clone(), key.clone(), inv.clone());
            blocking("bundle", move || {
                let base = crate::ops::export::base_for(&store, &since, &[], &names)?;
                make_bundle::make_bundle(&store, &names, &base, &p, &opts, &mut |_, _, _| {})?;
                // An offer walk may have moved a tag while this built: the file must hold
                // what its key says, or it would be served to the wrong state later.
                if bundle_key(&s, &inv2, &names) != k {
                    let _ = std::fs::remove_file(&p);
                    return Err(Error::Registry {
                        registry: s.config.registry.registry.clone(),
                        image: "the offered images".into(),
                        message: "a tag moved while the bundle was built; ask again".into(),
                    });
                }
                crate::oci::source::sha256_of_file(&p)
            })
            .await?
        };
        state.cache.remember(&key, built.0, built.1);
        state.metrics.bundles_built.fetch_add(1, Ordering::Relaxed);
        let evicted = cache::evict_unless(&dir, state.config.bundle_cache_bytes, &|p| {
            p == path || state.cache.is_in_use(p)
        });
        state
            .metrics
            .bundles_evicted
            .fetch_add(evicted, Ordering::Relaxed);
        publish_in_background(&state, &key, &path, Since::Inventory(Box::new(inv)), names);
        Ok(built)
    }
    .await;
    drop(lock);
    state.primary.builds.forget_if_idle(&key);
    result
}

/// With `--publish`, pushes the bundle `key` to the registry of bundles in a task of its
/// own (so the replica that asked gets its answer at once), unless it is there or on its
/// way already. Replicas in the same state can then take it from the registry or its
/// mirrors. A failure is logged and counted, and the next request for the bundle tries
/// again. The bundle is hard-linked first, so cache eviction cannot pull it away mid-push.
fn publish_in_background(state: &Arc<AppState>, key: &str, path: &Path, since: Since, names: Vec<String>) {
    let Some(repo) = state.config.publish.clone() else {
        return;
    };
    if !state
        .primary
        .published
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.to_string())
    {
        return;
    }
    let (state, key, path) = (state.clone(), key.to_string(), path.to_path_buf());
    tokio::spawn(async move {
        let result = publish_bundle(&state, &key, &path, since, names, repo).await;
        match result {
            Ok(p) => {
                state.metrics.bundles_published.fetch_add(1, Ordering::Relaxed);
                tracing::info!("published bundle {key} as {} ({} bytes)", p.reference, p.bytes);
            }
            Err(e) => {
                state.metrics.publish_failures.fetch_add(1, Ordering::Relaxed);
                state
                    .primary
                    .published
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
                tracing::warn!("could not publish bundle {key} (the next request for it tries again): {e}");
            }
        }
    });
}

async fn publish_bundle(
    state: &AppState,
    key: &str,
    path: &Path,
    since: Since,
    names: Vec<String>,
    repo: RegistryRef,
) -> Result<artifact::Published> {
    let _one_at_a_time = state
        .primary
        .publishing
        .acquire()
        .await
        .expect("the publish semaphore is never closed");
    // Before the work lock: the offer's mutex is held by a walk that waits for the work
    // lock, and a cleanup queued for it would then wait for this task forever.
    let newest = current_targets(state).await;
    let _work = state.work.read().await;
    let dir = state.ctx.store.tmp_dir()?.join(format!("publish-{key}"));
    let (store, p, d) = (state.ctx.store.clone(), path.to_path_buf(), dir.clone());
    let prepared = blocking(
        "preparing the bundle's volumes",
        move || -> Result<(Vec<PathBuf>, Labels)> {
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
            let own = d.join("bundle.bkp");
            if std::fs::hard_link(&p, &own).is_err() {
                std::fs::copy(&p, &own).map_err(|e| Error::io(format!("copying {}", p.display()), e))?;
            }
            let files = artifact::cut_volumes(&own, &d, artifact::DEFAULT_VOLUME)?;
            let labels = crate::ops::export::labels_for(&store, &since, &[], &names)?;
            Ok((files, labels))
        },
    )
    .await;
    let result = async {
        let (files, labels) = prepared?;
        // Only the newest offer moves the release pointer: a bundle for an older offer,
        // finished late, must not send replicas back.
        let release = newest.as_deref() == Some(labels.targets_id().as_str());
        artifact::publish(
            &state.ctx,
            &files,
            &labels,
            &Place::Registry(repo),
            release,
            state.config.signing_key.as_deref(),
            &|_, _| {},
        )
        .await
    }
    .await;
    let _ = blocking("removing the volumes", move || {
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
    result
}

/// The target id of the newest offer (what replicas should converge to).
async fn current_targets(state: &AppState) -> Option<String> {
    let names = state.primary.offer.lock().await.as_ref()?.1.clone().ok()?;
    let labels = crate::ops::export::labels_for(&state.ctx.store, &Since::Nothing, &[], &names).ok()?;
    Some(labels.targets_id())
}

/// `GET /bundles/{key}`, with `Range: bytes=N-` for resumed downloads.
pub async fn get_bundle(
    State(state): State<Arc<AppState>>,
    UrlPath(key): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if !is_bundle_key(&key) {
        return (StatusCode::BAD_REQUEST, "bad bundle key\n").into_response();
    }
    let path = state.bundles_path().join(format!("{key}.bkp"));
    // Held until the last byte is sent: eviction and cleanup leave the file alone.
    let in_use = state.cache.hold(&path);
    let p = path.clone();
    let _ = blocking("marking the bundle used", move || {
        cache::mark_used(&p);
        Ok(())
    })
    .await;
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return (
            StatusCode::NOT_FOUND,
            "no such bundle (cleaned up?): request it again\n",
        )
            .into_response();
    };
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<u64>().ok());
    let (status, from) = match start {
        Some(s) if s < size => (StatusCode::PARTIAL_CONTENT, s),
        Some(_) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response();
        }
        None => (StatusCode::OK, 0),
    };
    if file.seek(std::io::SeekFrom::Start(from)).await.is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "seek failed\n").into_response();
    }
    let counter = state.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).inspect(move |r| {
        let _held = &in_use;
        if let Ok(b) = r {
            counter
                .metrics
                .bytes_out
                .fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.booster.bundle"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size - from));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {from}-{}/{size}", size - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    resp
}
