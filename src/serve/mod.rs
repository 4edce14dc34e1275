//! `booster serve`: the companion service that runs beside a registry.
//!
//! As a **primary** ([`primary`]) it offers its registry's images (the catalog, or
//! `--images`): a replica posts its inventory to `POST /bundles`, the primary builds (or
//! finds in its cache, [`cache`]) the bundle that replica lacks, and answers with its key,
//! its sha256 and, with `--signing-key`, a signature over both; `GET /bundles/{key}` streams
//! it with HTTP Range support so an interrupted download resumes. Replicas in the same state
//! (the same images and streams, whenever their inventories were taken) share one build.
//!
//! As a **replica** ([`replica`], `--primary URL`), `POST /sync` sends the store's inventory
//! to the primary, downloads the bundle, checks the primary's signature (`--primary-key`),
//! imports it and pushes the new images into its own registry. One sync at a time: another
//! gets 409. The sync runs in a task of its own: a client that hangs up does not stop it.
//!
//! Both ([`health`]): `POST /cleanup` (caches, temp files, gc), `GET /status`,
//! `GET /healthz`, `GET /metrics` (Prometheus text). With a token, every endpoint but
//! `/healthz` requires `Authorization: Bearer TOKEN`; a service listening beyond loopback
//! must have one unless `--no-auth` says otherwise ([`check_exposure`]).
//!
//! Work and gc: every handler that pulls, builds, publishes or imports holds [`AppState`]'s
//! `work` lock shared; `/cleanup` holds it exclusively, so it never sweeps what a pull or an
//! import has written but not yet linked, nor removes a file another request is writing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};

mod cache;
mod health;
mod listen;
mod primary;
mod replica;

pub use cache::evict_bundles;
pub use health::{local_listen_addr, probe_health};
pub use listen::TlsConfig;

use crate::error::{Error, Result};
use crate::oci::cosign::{SigningKey, TrustedKeys};
use crate::oci::reference::{Destination, RegistryRef};
use crate::ops::make_bundle::BundleOptions;
use crate::ops::pull::Ctx;

/// A bearer token shorter than this is refused: it would be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

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
    /// A primary signs the bundles it serves and publishes with this key.
    pub signing_key: Option<Arc<SigningKey>>,
    /// A replica imports only bundles signed by one of these keys (`--primary-key`)…
    pub primary_keys: Option<Arc<TrustedKeys>>,
    /// …or, without keys, unsigned bundles when this says so (`--allow-unsigned`).
    pub allow_unsigned: bool,
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

impl ServeConfig {
    /// A primary beside `registry` with the defaults, for embedding and tests.
    pub fn new(registry: Destination) -> ServeConfig {
        ServeConfig {
            registry,
            images: None,
            primary: Vec::new(),
            publish: None,
            token: None,
            signing_key: None,
            primary_keys: None,
            allow_unsigned: false,
            bundle: BundleOptions::default(),
            max_builds: 2,
            bundle_cache_bytes: 10 << 30,
            tls: None,
            primary_tls: ClientTls::default(),
            limits: Limits::default(),
        }
    }
}

/// `--primary-ca`, `--primary-client-cert`, `--primary-client-key`.
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
    /// Bytes of inventories held at once over all requests: a request whose body does not
    /// fit waits for room (up to `body_timeout`, then 503).
    pub inventory_memory: u64,
    /// Time a client has to send a request head (the connection is closed beyond) and an
    /// inventory body (408 beyond).
    pub body_timeout: std::time::Duration,
    /// Time a response write may make no progress (a reader that stops reading a bundle
    /// loses its connection).
    pub write_timeout: std::time::Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_inventory: 256 << 20,
            inventory_memory: 512 << 20,
            body_timeout: std::time::Duration::from_secs(60),
            write_timeout: std::time::Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// Refuses a listen address beyond loopback without a token, unless `no_auth`: an open
/// primary hands anyone a bundle of a registry it reads with its own credentials, and an
/// open replica starts syncs and gc for anyone.
pub fn check_exposure(listen: &str, has_token: bool, no_auth: bool) -> Result<()> {
    if has_token || no_auth || crate::oci::reference::is_loopback_host(listen) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "refusing to listen on {listen} without a token: anyone who reaches it could fetch bundles of the registry and start syncs and gc. \
         Put a random token of at least {MIN_TOKEN_LEN} characters in a file and pass --token-file FILE (e.g. `openssl rand -hex 32 > token`), \
         listen on 127.0.0.1, or pass --no-auth if something in front of this service does the authentication"
    )))
}

/// The token in `path`, trimmed: an empty or short one is an error, not a token.
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading token file {}", path.display()), e))?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN {
        return Err(Error::Usage(format!(
            "token file {}: the token is {} characters; use at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)",
            path.display(),
            token.len()
        )));
    }
    if token.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(Error::Usage(format!(
            "token file {}: the token must be printable ASCII without spaces (it travels in an HTTP header)",
            path.display()
        )));
    }
    Ok(token.to_string())
}

/// Refuses to send the token in clear to a primary beyond loopback, unless `insecure`.
pub fn check_upstreams(upstreams: &[Upstream], has_token: bool, insecure: bool) -> Result<()> {
    for u in upstreams {
        if let Upstream::Service(url) = u
            && let Some(host) = url.strip_prefix("http://")
            && has_token
            && !insecure
            && !crate::oci::reference::is_loopback_host(host.split('/').next().unwrap_or(host))
        {
            return Err(Error::Usage(format!(
                "--primary {url}: the bearer token would cross the network in clear; use https:// (with --primary-ca), or pass --insecure if the network is trusted"
            )));
        }
    }
    Ok(())
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
    pub bundles_refused: AtomicU64,
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
    /// Held for the whole of a sync: one at a time.
    pub busy: Arc<tokio::sync::Mutex<()>>,
    /// Shared by every piece of work that writes to the store or to its temp directory
    /// (offer walks, builds, publications, syncs), exclusive for `/cleanup`.
    pub work: tokio::sync::RwLock<()>,
    pub status: std::sync::Mutex<SyncStatus>,
    primary: primary::PrimaryState,
    cache: cache::BundleCache,
    http: reqwest::Client,
}

impl AppState {
    pub fn new(ctx: Ctx, config: ServeConfig) -> Result<Arc<AppState>> {
        if !config.primary.is_empty() && config.primary_keys.is_none() && !config.allow_unsigned {
            return Err(Error::Usage(
                "a replica imports only bundles its primary signed: give the primary's public key with --primary-key KEY.pub \
                 (the primary signs with --signing-key), or pass --allow-unsigned to accept any bundle that is well formed"
                    .into(),
            ));
        }
        let http = replica::primary_client(&config.primary_tls)?;
        Ok(Arc::new(AppState {
            ctx,
            metrics: Metrics::default(),
            busy: Arc::new(tokio::sync::Mutex::new(())),
            work: tokio::sync::RwLock::new(()),
            status: std::sync::Mutex::new(SyncStatus::default()),
            primary: primary::PrimaryState::new(&config),
            cache: cache::BundleCache::default(),
            config,
            http,
        }))
    }

    fn set_phase(&self, phase: &str, bytes: u64) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.phase = phase.to_string();
        s.bytes_transferred = bytes;
    }

    /// Where built and incoming bundles are (`store/tmp/bundles`), without touching the disk.
    fn bundles_path(&self) -> PathBuf {
        self.ctx.store.path().join("tmp").join("bundles")
    }

    /// [`AppState::bundles_path`], created if missing (blocking: call it off the async threads).
    fn bundle_dir(&self) -> Result<PathBuf> {
        let d = self.bundles_path();
        std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        Ok(d)
    }
}

/// The service's routes; handlers can be driven without a socket (`tower::ServiceExt::oneshot`).
pub fn app(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/status", get(health::status))
        .route("/metrics", get(health::metrics))
        .route("/space", get(health::space))
        .route("/offer", get(primary::offer))
        .route("/bundles", post(primary::create_bundle))
        .route("/bundles/{key}", get(primary::get_bundle))
        .route("/sync", get(replica::sync).post(replica::sync))
        .route("/cleanup", post(health::cleanup))
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
        listen::ConnectionLimits {
            max_connections: limits.max_connections,
            request_timeout: limits.body_timeout,
            write_timeout: limits.write_timeout,
        },
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

/// A blocking task that panicked or was cancelled, as an error naming the task.
fn task_failed(what: &str, e: tokio::task::JoinError) -> Error {
    Error::io(format!("{what} task"), std::io::Error::other(e.to_string()))
}

/// Runs blocking file-system or store work off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| task_failed(what, e))?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_needs_a_token_or_no_auth() {
        assert!(check_exposure("127.0.0.1:8080", false, false).is_ok());
        assert!(check_exposure("[::1]:8080", false, false).is_ok());
        assert!(check_exposure("localhost:8080", false, false).is_ok());
        let e = check_exposure("0.0.0.0:8080", false, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--token-file") && e.contains("--no-auth"), "{e}");
        assert!(check_exposure("[::]:8080", false, false).is_err());
        assert!(check_exposure("127.example.com:8080", false, false).is_err());
        assert!(check_exposure("0.0.0.0:8080", true, false).is_ok());
        assert!(check_exposure("0.0.0.0:8080", false, true).is_ok());
    }

    #[test]
    fn short_or_empty_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        for bad in ["", "\n", "t0ken\n", "has a space in it ok?"] {
            std::fs::write(&p, bad).unwrap();
            assert!(read_token_file(&p).is_err(), "{bad:?}");
        }
        std::fs::write(&p, "0123456789abcdef0123\n").unwrap();
        assert_eq!(read_token_file(&p).unwrap(), "0123456789abcdef0123");
    }

    #[test]
    fn a_token_goes_in_clear_only_to_loopback_or_when_insecure() {
        let far = [Upstream::parse("http://primary.example:8080").unwrap()];
        let near = [Upstream::parse("http://127.0.0.1:8080").unwrap()];
        let tls = [Upstream::parse("https://primary.example:8443").unwrap()];
        assert!(check_upstreams(&far, true, false).is_err());
        assert!(check_upstreams(&far, true, true).is_ok());
        assert!(check_upstreams(&far, false, false).is_ok());
        assert!(check_upstreams(&near, true, false).is_ok());
        assert!(check_upstreams(&tls, true, false).is_ok());
    }
}
