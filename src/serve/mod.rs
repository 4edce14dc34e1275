//! `booster serve`: the companion service that runs beside a registry.
//!
//! As a **primary** it offers its registry's images (the catalog, or `--images`): a replica
//! posts its inventory to `POST /bundles`, the primary builds (or finds in its cache) the
//! bundle that replica lacks and answers with its key; `GET /bundles/{key}` streams it with
//! HTTP Range support so an interrupted download resumes. Replicas in the same state share
//! one build of their bundle; at most `--max-builds` builds run at once; built bundles are
//! kept up to `--bundle-cache` bytes, the least recently used removed first.
//!
//! As a **replica** (`--primary URL`), `POST /sync` (or `GET /sync`, as in the seed's
//! `curl`) sends the store's inventory to the primary, downloads the bundle, imports it and
//! pushes the new images into its own registry, then answers with a JSON summary. One sync
//! at a time: another gets 409. Everything goes through the registry API, so it works
//! beside any registry.
//!
//! Both: `POST /cleanup` (caches, temp files, gc), `GET /status`, `GET /healthz`,
//! `GET /metrics` (Prometheus text). With a token, every endpoint but `/healthz` requires
//! `Authorization: Bearer TOKEN`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

mod listen;

pub use listen::TlsConfig;

use crate::error::{Error, Result};
use crate::layer::Analysis;
use crate::oci::reference::{Destination, ImageRef, RegistryRef, read_image_list};
use crate::oci::source::Sink;
use crate::ops::artifact::{self, Found, Labels, Place};
use crate::ops::export::Since;
use crate::ops::inventory::Inventory;
use crate::ops::make_bundle::{self, BundleOptions};
use crate::ops::pull::{Ctx, PullOptions};
use crate::ops::push::{self, MountHints};
use crate::ops::{gc, import};

#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The registry beside this service: `HOST[:PORT]`.
    pub registry: Destination,
    /// Images offered to replicas; None means the registry's catalog.
    pub images: Option<PathBuf>,
    /// Where this service, a replica, syncs from, tried in order (empty: a primary).
    pub primary: Vec<Upstream>,
    /// Registry repository a primary pushes every bundle it builds to, as an OCI artifact.
    pub publish: Option<RegistryRef>,
    pub token: Option<String>,
    pub bundle: BundleOptions,
    /// Bundle builds the primary runs at once (each holds a bundle's working set in memory
    /// and a core busy); more requests wait their turn.
    pub max_builds: usize,
    /// Bytes of built bundles the primary keeps; the least recently used go first.
    pub bundle_cache_bytes: u64,
    /// Serve over TLS (and require client certificates when it names a client CA).
    pub tls: Option<TlsConfig>,
    /// How this replica reaches an `https://` primary.
    pub primary_tls: ClientTls,
    pub limits: Limits,
}

/// `--primary-ca`, `--primary-cert`, `--primary-key`.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM CA certificates to trust for the primary instead of the system's.
    pub ca: Option<PathBuf>,
    /// PEM certificate and PKCS#8 key this replica shows a primary that asks for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Bounds on what a client may ask of this service.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest inventory accepted by `POST /bundles` (413 beyond).
    pub max_inventory: u64,
    /// Time a client has to send a request head (the connection is closed beyond) and an
    /// inventory body (408 beyond).
    pub body_timeout: std::time::Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_inventory: 256 << 20,
            body_timeout: std::time::Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// The HTTP client a replica talks to its primary service with.
fn primary_client(tls: &ClientTls) -> Result<reqwest::Client> {
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
                .map_err(|e| bad("--primary-cert/--primary-key", c, e))?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => {
            return Err(Error::Usage(
                "--primary-cert and --primary-key go together".into(),
            ));
        }
    }
    b.build()
        .map_err(|e| Error::Usage(format!("the HTTP client for the primary: {e}")))
}

/// One place a replica can sync from.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// A primary booster service (`http(s)://HOST:PORT`).
    Service(String),
    /// A registry repository of bundle artifacts (`store-format.md` 6.6).
    Bundles(RegistryRef),
}

impl Upstream {
    /// `http://…` / `https://…` is a service, `docker://REGISTRY/REPO` a registry repository.
    /// The prefix is required: `host:8443` alone would read as a Docker Hub repository.
    pub fn parse(s: &str) -> Result<Upstream> {
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(Upstream::Service(s.trim_end_matches('/').to_string()));
        }
        let Some(repo) = s.strip_prefix("docker://") else {
            return Err(Error::Usage(format!(
                "{s:?}: name a booster service as http(s)://HOST:PORT or a registry of bundles as docker://REGISTRY/REPO"
            )));
        };
        let r = crate::oci::reference::parse_registry_ref(repo)?;
        Ok(Upstream::Bundles(RegistryRef {
            tag: None,
            digest: None,
            ..r
        }))
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Service(u) => write!(f, "{u}"),
            Upstream::Bundles(r) => write!(f, "docker://{}/{}", r.registry, r.repository),
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    pub syncs: AtomicU64,
    pub sync_failures: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bundles_built: AtomicU64,
    pub bundle_cache_hits: AtomicU64,
    pub bundles_evicted: AtomicU64,
    pub bundles_published: AtomicU64,
    pub offer_refreshes: AtomicU64,
    pub publish_failures: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncStatus {
    pub running: bool,
    pub phase: String,
    pub bytes_transferred: u64,
    pub started_unix: u64,
    pub last: Option<serde_json::Value>,
}

pub struct AppState {
    pub ctx: Ctx,
    pub config: ServeConfig,
    pub metrics: Metrics,
    /// Held for the whole of a sync or a cleanup: they must not overlap (gc would sweep
    /// what an import has written but not yet linked).
    pub busy: tokio::sync::Mutex<()>,
    pub status: std::sync::Mutex<SyncStatus>,
    builds: BundleBuilds,
    /// The last offer and when its refresh started (see [`current_offer`]).
    offer: tokio::sync::Mutex<Option<OfferWalk>>,
    /// Bundle keys published to `--publish`, or being published (a failed one is dropped
    /// so that its next request publishes it again).
    published: std::sync::Mutex<std::collections::HashSet<String>>,
    /// One publication at a time: each holds a copy of its bundle's volumes on disk.
    publishing: tokio::sync::Semaphore,
    http: reqwest::Client,
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

impl AppState {
    pub fn new(ctx: Ctx, config: ServeConfig) -> Result<Arc<AppState>> {
        let http = primary_client(&config.primary_tls)?;
        Ok(Arc::new(AppState {
            ctx,
            metrics: Metrics::default(),
            busy: tokio::sync::Mutex::new(()),
            status: std::sync::Mutex::new(SyncStatus::default()),
            builds: BundleBuilds::new(config.max_builds),
            offer: tokio::sync::Mutex::new(None),
            published: Default::default(),
            publishing: tokio::sync::Semaphore::new(1),
            config,
            http,
        }))
    }

    fn set_phase(&self, phase: &str, bytes: u64) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.phase = phase.to_string();
        s.bytes_transferred = bytes;
    }

    fn bundle_dir(&self) -> Result<PathBuf> {
        let d = self.ctx.store.tmp_dir()?.join("bundles");
        std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        Ok(d)
    }
}

/// The service's routes; handlers can be driven without a socket (`tower::ServiceExt::oneshot`).
pub fn app(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/offer", get(offer))
        .route("/bundles", post(create_bundle))
        .route("/bundles/{key}", get(get_bundle))
        .route("/sync", get(sync).post(sync))
        .route("/cleanup", post(cleanup))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(protected)
        .with_state(state)
}

/// Serve until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = match &state.config.tls {
        Some(tls) => Some(listen::acceptor(tls).map_err(|e| std::io::Error::other(e.to_string()))?),
        None => None,
    };
    let limits = &state.config.limits;
    listen::serve_connections(
        listener,
        acceptor,
        limits.max_connections,
        limits.body_timeout,
        app(state.clone()),
        shutdown,
    )
    .await
}

async fn require_token(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.config.token {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(serde_json::json!({"error": "missing or wrong bearer token"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A request this service refuses (4xx): counted, logged at info (it is the client's doing).
fn client_error(state: &AppState, status: StatusCode, message: String) -> Response {
    state.metrics.errors.fetch_add(1, Ordering::Relaxed);
    tracing::info!("{status}: {message}");
    (status, Json(serde_json::json!({"error": message}))).into_response()
}

fn error_response(state: &AppState, status: StatusCode, e: &Error) -> Response {
    state.metrics.errors.fetch_add(1, Ordering::Relaxed);
    tracing::error!("{e}");
    (status, Json(serde_json::json!({"error": e.to_string()}))).into_response()
}

async fn status(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let s = state.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Json(serde_json::json!({
        "role": if state.config.primary.is_empty() { "primary" } else { "replica" },
        "registry": state.config.registry.registry,
        "primary": state.config.primary.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
        "publish": state.config.publish.as_ref().map(|r| format!("docker://{}/{}", r.registry, r.repository)),
        "sync": s,
    }))
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let m = &state.metrics;
    let running = state.status.lock().map(|s| s.running as u64).unwrap_or(0);
    let mut out = String::new();
    for (name, help, kind, v) in [
        (
            "booster_syncs_total",
            "Syncs completed",
            "counter",
            m.syncs.load(Ordering::Relaxed),
        ),
        (
            "booster_sync_failures_total",
            "Syncs that failed",
            "counter",
            m.sync_failures.load(Ordering::Relaxed),
        ),
        (
            "booster_bytes_in_total",
            "Bundle bytes received",
            "counter",
            m.bytes_in.load(Ordering::Relaxed),
        ),
        (
            "booster_bytes_out_total",
            "Bundle bytes served",
            "counter",
            m.bytes_out.load(Ordering::Relaxed),
        ),
        (
            "booster_bundles_built_total",
            "Bundles built",
            "counter",
            m.bundles_built.load(Ordering::Relaxed),
        ),
        (
            "booster_bundle_cache_hits_total",
            "Bundle requests served from the cache",
            "counter",
            m.bundle_cache_hits.load(Ordering::Relaxed),
        ),
        (
            "booster_bundles_evicted_total",
            "Cached bundles removed to stay under --bundle-cache",
            "counter",
            m.bundles_evicted.load(Ordering::Relaxed),
        ),
        (
            "booster_offer_refreshes_total",
            "Walks of the registry for the images offered (requests arriving together share one)",
            "counter",
            m.offer_refreshes.load(Ordering::Relaxed),
        ),
        (
            "booster_bundles_published_total",
            "Bundles pushed to the --publish repository",
            "counter",
            m.bundles_published.load(Ordering::Relaxed),
        ),
        (
            "booster_bundle_publish_failures_total",
            "Bundles that could not be pushed to the --publish repository",
            "counter",
            m.publish_failures.load(Ordering::Relaxed),
        ),
        (
            "booster_errors_total",
            "Requests that failed",
            "counter",
            m.errors.load(Ordering::Relaxed),
        ),
        (
            "booster_sync_in_progress",
            "1 while a sync runs",
            "gauge",
            running,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// When a walk of the registry for the offer started, and what it found (or why it failed).
type OfferWalk = (Instant, std::result::Result<Vec<String>, String>);

/// The offer as of this request or later. Requests that arrive together share one walk of
/// the registry: a walk that started after a request arrived saw the registry at least as
/// new as that request did, so its answer (or its failure) serves it. Fifty replicas asking
/// at once cost one or two walks instead of fifty. The walk runs in a task of its own, so a
/// client that hangs up does not cancel it for the others.
async fn current_offer(state: &Arc<AppState>) -> Result<Vec<String>> {
    let asked = Instant::now();
    let s = state.clone();
    let shared = tokio::spawn(async move {
        let mut last = s.offer.lock().await;
        if let Some((started, outcome)) = last.as_ref()
            && *started >= asked
        {
            return outcome.clone();
        }
        let started = Instant::now();
        s.metrics.offer_refreshes.fetch_add(1, Ordering::Relaxed);
        let outcome = refresh_offer(&s).await.map_err(|e| e.to_string());
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

/// The images this primary offers, pulled into its store (only what is new is fetched).
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
    // Each image with its signatures and other referrers.
    crate::ops::diff::pull_set_with(&state.ctx, &refs, PullOptions::new(None, Analysis::Full)).await
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

async fn offer(State(state): State<Arc<AppState>>) -> Response {
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

/// `POST /bundles` with an inventory body: build (or reuse) the bundle that inventory lacks.
async fn create_bundle(State(state): State<Arc<AppState>>, body: Body) -> Response {
    let limits = &state.config.limits;
    let body = match tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.max_inventory as usize),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            // axum wraps the limit's own error: its source says which it was. (Were that to
            // change, the answer would turn to 400, and the bounds test would say so.)
            let too_big =
                std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return client_error(
                &state,
                if too_big {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                },
                if too_big {
                    format!(
                        "the inventory is larger than this service accepts ({} bytes; --max-inventory)",
                        limits.max_inventory
                    )
                } else {
                    format!("reading the inventory: {e}")
                },
            );
        }
        Err(_) => {
            return client_error(
                &state,
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the inventory did not arrive within {:?} (--request-timeout)",
                    limits.body_timeout
                ),
            );
        }
    };
    let inv = match Inventory::decode(&body) {
        Ok(i) => i,
        Err(e) => {
            return error_response(&state, StatusCode::BAD_REQUEST, &Error::format("inventory", e.0));
        }
    };
    let names = match current_offer(&state).await {
        Ok(n) => n,
        Err(e) => return error_response(&state, StatusCode::BAD_GATEWAY, &e),
    };
    // The cache key covers what the replica has and what is offered.
    let mut h = blake3::Hasher::new();
    h.update(&body);
    for n in &names {
        if let Ok(Some(r)) = state.ctx.store.image(n) {
            h.update(n.as_bytes());
            h.update(&r.digest.0);
        }
    }
    let key = h.finalize().to_hex()[..32].to_string();
    let dir = match state.bundle_dir() {
        Ok(d) => d,
        Err(e) => return error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let path = dir.join(format!("{key}.bkp"));
    // In a task of its own: a replica that hangs up must not abandon a build (and release
    // its key) half-way while the blocking writer goes on.
    let build = tokio::spawn(ensure_bundle(
        state.clone(),
        key.clone(),
        path.clone(),
        inv,
        names.clone(),
    ));
    match build.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => {
            return error_response(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                &task_failed("bundle", e),
            );
        }
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Json(serde_json::json!({"key": key, "size": size, "images": names})).into_response()
}

/// Makes sure the bundle `key` is at `path`: built once however many replicas ask for it at
/// the same time (the others wait and count as cache hits), within the build limit.
async fn ensure_bundle(
    state: Arc<AppState>,
    key: String,
    path: PathBuf,
    inv: Inventory,
    names: Vec<String>,
) -> Result<()> {
    let lock = state.builds.key_lock(&key);
    let result = async {
        let _one_build_per_key = lock.lock().await;
        if path.is_file() {
            state.metrics.bundle_cache_hits.fetch_add(1, Ordering::Relaxed);
            mark_used(&path);
            publish_in_background(&state, &key, &path, Since::Inventory(Box::new(inv)), names);
            return Ok(());
        }
        {
            let _permit = state
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
            tokio::task::spawn_blocking(move || -> Result<()> {
                let base = crate::ops::export::base_for(&store, &since, &[], &names)?;
                make_bundle::make_bundle(&store, &names, &base, &p, &opts, &mut |_, _, _| {}).map(|_| ())
            })
            .await
            .map_err(|e| task_failed("bundle", e))??;
        }
        state.metrics.bundles_built.fetch_add(1, Ordering::Relaxed);
        let dir = path.parent().unwrap_or(Path::new("."));
        let evicted = evict_bundles(dir, state.config.bundle_cache_bytes, &path);
        state
            .metrics
            .bundles_evicted
            .fetch_add(evicted, Ordering::Relaxed);
        publish_in_background(&state, &key, &path, Since::Inventory(Box::new(inv)), names);
        Ok(())
    }
    .await;
    drop(lock);
    state.builds.forget_if_idle(&key);
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
        .publishing
        .acquire()
        .await
        .expect("the publish semaphore is never closed");
    let dir = state.ctx.store.tmp_dir()?.join(format!("publish-{key}"));
    let (store, p, d) = (state.ctx.store.clone(), path.to_path_buf(), dir.clone());
    let prepared = tokio::task::spawn_blocking(move || -> Result<(Vec<PathBuf>, Labels)> {
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        let own = d.join("bundle.bkp");
        if std::fs::hard_link(&p, &own).is_err() {
            std::fs::copy(&p, &own).map_err(|e| Error::io(format!("copying {}", p.display()), e))?;
        }
        let files = artifact::cut_volumes(&own, &d, artifact::DEFAULT_VOLUME)?;
        let labels = crate::ops::export::labels_for(&store, &since, &[], &names)?;
        Ok((files, labels))
    })
    .await
    .map_err(|e| task_failed("preparing the bundle's volumes", e));
    let result = async {
        let (files, labels) = prepared??;
        // Only the newest offer moves the release pointer: a bundle for an older offer,
        // finished late, must not send replicas back.
        let release = current_targets(state).await.as_deref() == Some(labels.targets_id().as_str());
        artifact::publish(
            &state.ctx,
            &files,
            &labels,
            &Place::Registry(repo),
            release,
            &|_, _| {},
        )
        .await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The target id of the newest offer (what replicas should converge to).
async fn current_targets(state: &AppState) -> Option<String> {
    let names = state.offer.lock().await.as_ref()?.1.clone().ok()?;
    let labels = crate::ops::export::labels_for(&state.ctx.store, &Since::Nothing, &[], &names).ok()?;
    Some(labels.targets_id())
}

/// A blocking task that panicked or was cancelled, as an error naming the task.
fn task_failed(what: &str, e: tokio::task::JoinError) -> Error {
    Error::io(format!("{what} task"), std::io::Error::other(e.to_string()))
}

/// Marks a cached bundle as just used (its mtime), for [`evict_bundles`].
fn mark_used(path: &Path) {
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Removes the least recently used bundles of the primary's cache in `dir` until the rest
/// hold at most `limit` bytes; never `keep` (the bundle just built) nor a replica's
/// `incoming-*` download. A download in progress keeps reading a removed file (it is
/// open); a replica that resumes one later gets 404 and its next sync asks again. Returns
/// how many were removed.
pub fn evict_bundles(dir: &Path, limit: u64, keep: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut cached: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".bkp") && !name.starts_with("incoming-")
        })
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    let mut total: u64 = cached.iter().map(|(_, len, _)| len).sum();
    cached.sort();
    let mut removed = 0;
    for (_, len, path) in cached {
        if total <= limit {
            break;
        }
        if path == keep {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            tracing::info!("bundle cache over {limit} bytes: removed {}", path.display());
            total -= len;
            removed += 1;
        }
    }
    removed
}

/// `GET /bundles/{key}`, with `Range: bytes=N-` for resumed downloads.
async fn get_bundle(
    State(state): State<Arc<AppState>>,
    UrlPath(key): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (StatusCode::BAD_REQUEST, "bad bundle key\n").into_response();
    }
    let path = match state.bundle_dir() {
        Ok(d) => d.join(format!("{key}.bkp")),
        Err(e) => return error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    mark_used(&path);
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

/// `POST /sync` (or `GET /sync`): pull what this replica lacks from the primary.
async fn sync(State(state): State<Arc<AppState>>) -> Response {
    if state.config.primary.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "this service has no --primary: it is not a replica"})),
        )
            .into_response();
    }
    let Ok(_busy) = state.busy.try_lock() else {
        return (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": "a sync or cleanup is already running; see GET /status"})),
        )
            .into_response();
    };
    let started = Instant::now();
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
    let res = run_sync(&state).await;
    let mut s = state.status.lock().unwrap_or_else(|e| e.into_inner());
    s.running = false;
    s.phase = "idle".into();
    match res {
        Ok(mut summary) => {
            state.metrics.syncs.fetch_add(1, Ordering::Relaxed);
            summary["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
            s.last = Some(summary.clone());
            tracing::info!("sync done: {summary}");
            Json(summary).into_response()
        }
        Err(e) => {
            state.metrics.sync_failures.fetch_add(1, Ordering::Relaxed);
            s.last = Some(serde_json::json!({"error": e.to_string()}));
            drop(s);
            error_response(&state, StatusCode::BAD_GATEWAY, &e)
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

/// A bundle on this replica's disk, ready to import.
struct Incoming {
    path: PathBuf,
    /// Removed once imported.
    remove: PathBuf,
    transferred: u64,
    size: u64,
    from: String,
}

/// What one upstream has for this replica.
enum Offered {
    Bundle(Incoming),
    UpToDate,
    NoFit,
}

/// Tries each upstream in order; the first whose bundle imports (or that says this replica
/// is up to date) ends the search. A bundle that does not import (its base is not all
/// here after all) sends the sync on to the next upstream too. Only when none helps is the
/// sync a failure, naming why each could not.
async fn run_sync(state: &Arc<AppState>) -> Result<serde_json::Value> {
    let mut why = Vec::new();
    for up in &state.config.primary {
        let offered = match up {
            Upstream::Service(url) => fetch_from_service(state, url).await.map(Offered::Bundle),
            Upstream::Bundles(repo) => fetch_from_bundles(state, repo).await,
        };
        let incoming = match offered {
            Ok(Offered::Bundle(i)) => i,
            Ok(Offered::UpToDate) => {
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

/// Asks a primary service for the bundle this replica's inventory lacks and downloads it.
async fn fetch_from_service(state: &Arc<AppState>, primary: &str) -> Result<Incoming> {
    state.set_phase("inventory", 0);
    let store = state.ctx.store.clone();
    let inv = tokio::task::spawn_blocking(move || Inventory::of_store(&store))
        .await
        .map_err(|e| task_failed("inventory", e))??;
    state.set_phase("waiting for the primary to build the bundle", 0);
    let resp = authed(state, state.http.post(format!("{primary}/bundles")))
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
    let key = info["key"].as_str().unwrap_or_default().to_string();
    let size = info["size"].as_u64().unwrap_or(0);
    let dir = state.bundle_dir()?;
    let path = dir.join(format!("incoming-{key}.bkp"));
    let transferred = download(state, primary, &key, size, &path).await?;
    Ok(Incoming {
        remove: path.clone(),
        path,
        transferred,
        size,
        from: primary.to_string(),
    })
}

/// Finds the bundle for this replica's state in a registry of bundles and fetches it.
async fn fetch_from_bundles(state: &Arc<AppState>, repo: &RegistryRef) -> Result<Offered> {
    state.set_phase("looking for a bundle in the registry", 0);
    let store = state.ctx.store.clone();
    let held = tokio::task::spawn_blocking(move || artifact::held_images(&store))
        .await
        .map_err(|e| task_failed("inventory", e))??;
    let (place, size) = match artifact::find_bundle(&state.ctx, &Place::Registry(repo.clone()), &held).await?
    {
        Found::UpToDate => return Ok(Offered::UpToDate),
        Found::NoFit { .. } => return Ok(Offered::NoFit),
        Found::Bundle { place, bytes } => (place, bytes),
    };
    let Place::Registry(reference) = &place else {
        unreachable!("a registry's bundle is in the registry");
    };
    // Named after the manifest's digest, never after a tag the registry chose.
    let digest = reference
        .digest
        .map(|d| d.hex()[..16].to_string())
        .unwrap_or_default();
    let dir = state.bundle_dir()?.join(format!("incoming-artifact-{digest}"));
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
    }))
}

/// Imports a downloaded bundle; a bundle that fails to import is removed (a rerun fetches
/// it again, or another upstream's).
async fn import_incoming(state: &Arc<AppState>, incoming: &Incoming) -> Result<import::ImportReport> {
    state.set_phase("importing", incoming.transferred);
    let store = state.ctx.store.clone();
    let p = incoming.path.clone();
    let report = tokio::task::spawn_blocking(move || import::import_bundle(&store, &p, &mut |_, _, _| {}))
        .await
        .map_err(|e| task_failed("import", e))
        .and_then(|r| r);
    if report.is_err() {
        remove_incoming(incoming);
    }
    report
}

fn remove_incoming(incoming: &Incoming) {
    if incoming.remove.is_dir() {
        let _ = std::fs::remove_dir_all(&incoming.remove);
    } else {
        let _ = std::fs::remove_file(&incoming.remove);
    }
}

/// Pushes the images a bundle brought into this replica's registry.
async fn push_imported(
    state: &Arc<AppState>,
    incoming: Incoming,
    report: import::ImportReport,
) -> Result<serde_json::Value> {
    let transferred = incoming.transferred;
    state.set_phase("pushing", transferred);
    let hints = MountHints::default();
    // Each image, then its signatures and other referrers beside it.
    let place = |name: &str| -> Result<Sink> {
        Ok(Sink::Registry {
            registries: state.ctx.registries.clone(),
            image: push::destination_for(name, &state.config.registry)?,
        })
    };
    let pushed: Vec<serde_json::Value> =
        crate::ops::push_attached::push_all(&state.ctx, &report.images, &place, &hints)
            .await?
            .into_iter()
            .map(|r| serde_json::json!({"image": r.destination, "digest": r.digest, "blobs_uploaded": r.blobs_uploaded}))
            .collect();
    remove_incoming(&incoming);
    Ok(serde_json::json!({
        "images_synced": pushed.len(),
        "images": pushed,
        "source": incoming.from,
        "bytes_transferred": transferred,
        "bundle_bytes": incoming.size,
        "chunks_added": report.chunks_added,
    }))
}

/// Download a bundle, resuming with Range after a dropped connection.
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
        let result: std::result::Result<(), String> = async {
            let resp = rb.send().await.map_err(|e| e.to_string())?;
            let st = resp.status();
            if !(st == reqwest::StatusCode::OK || st == reqwest::StatusCode::PARTIAL_CONTENT) {
                return Err(format!("{st}"));
            }
            if st == reqwest::StatusCode::OK && have > 0 {
                file.set_len(0).await.map_err(|e| e.to_string())?;
                have = 0;
            }
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                file.write_all(&chunk).await.map_err(|e| e.to_string())?;
                have += chunk.len() as u64;
                transferred += chunk.len() as u64;
                state
                    .metrics
                    .bytes_in
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) if have >= size => break,
            Ok(()) | Err(_) if attempts < 5 => {
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
            Err(e) => return Err(primary_error(primary, "downloading the bundle", e)),
        }
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    Ok(transferred)
}

/// `POST /cleanup`: drop cached bundles and temp files, then gc.
async fn cleanup(State(state): State<Arc<AppState>>) -> Response {
    let Ok(_busy) = state.busy.try_lock() else {
        return (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": "a sync is running; clean up after it"})),
        )
            .into_response();
    };
    let mut removed_files = 0u64;
    let mut removed_bytes = 0u64;
    if let Ok(tmp) = state.ctx.store.tmp_dir() {
        removed_files_in(&tmp, &mut removed_files, &mut removed_bytes);
    }
    let store = state.ctx.store.clone();
    match tokio::task::spawn_blocking(move || gc::gc(&store, false)).await {
        Ok(Ok(r)) => Json(serde_json::json!({"temp_files_removed": removed_files, "temp_bytes_removed": removed_bytes, "gc": r})).into_response(),
        Ok(Err(e)) => error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &task_failed("gc", e)),
    }
}

fn removed_files_in(dir: &Path, files: &mut u64, bytes: &mut u64) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            removed_files_in(&p, files, bytes);
            let _ = std::fs::remove_dir(&p);
        } else {
            *bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            if std::fs::remove_file(&p).is_ok() {
                *files += 1;
            }
        }
    }
}

/// Resolve when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// The address `booster healthcheck` probes when given none: the service's listen address
/// from `BOOSTER_LISTEN` (a wildcard host read as loopback), else the default.
pub fn local_listen_addr() -> String {
    let listen = std::env::var("BOOSTER_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    match listen.rsplit_once(':') {
        Some(("0.0.0.0" | "" | "[::]", port)) => format!("127.0.0.1:{port}"),
        _ => listen,
    }
}

/// GET /healthz on `addr` with a plain HTTP/1.0 request (no client stack needed in a
/// minimal container): Ok when the service answers 200 within `timeout`.
pub fn probe_health(addr: &str, timeout: std::time::Duration) -> std::result::Result<(), String> {
    use std::io::Write;
    use std::net::ToSocketAddrs;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("not an address: {e}"))?
        .next()
        .ok_or("the address resolves to nothing")?;
    let connect = || -> std::result::Result<std::net::TcpStream, String> {
        let conn = std::net::TcpStream::connect_timeout(&sock, timeout)
            .map_err(|e| format!("cannot connect: {e}"))?;
        conn.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        conn.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        Ok(conn)
    };
    let mut conn = connect()?;
    write!(conn, "GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| format!("cannot send: {e}"))?;
    let answer = read_answer(&mut conn)?;
    if status_of(&answer) == Some("200") {
        return Ok(());
    }
    if answer.contains(listen::TLS_ONLY) {
        return listen::probe_tls(connect()?, addr);
    }
    Err(format!("answered {:?}", answer.lines().next().unwrap_or("")))
}

/// Up to 4 KiB of an HTTP answer.
fn read_answer(conn: &mut impl std::io::Read) -> std::result::Result<String, String> {
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < buf.len() {
        match conn.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if got == 0 => return Err(format!("no answer: {e}")),
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&buf[..got]).to_string())
}

fn status_of(answer: &str) -> Option<&str> {
    answer.lines().next()?.split_whitespace().nth(1)
}
