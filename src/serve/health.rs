//! Health and upkeep: `/status`, `/metrics`, `/cleanup`, and `booster healthcheck`'s probe.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};

use super::cache::remove_tree_except;
use super::{AppState, blocking, error_response, listen};
use crate::ops::gc;

pub async fn status(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let s = state.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let skipped: Vec<serde_json::Value> = state
        .primary
        .skipped
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(image, error)| serde_json::json!({"image": image, "error": error}))
        .collect();
    Json(serde_json::json!({
        "role": if state.config.primary.is_empty() { "primary" } else { "replica" },
        "registry": state.config.registry.registry,
        "primary": state.config.primary.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
        "publish": state.config.publish.as_ref().map(|r| format!("docker://{}/{}", r.registry, r.repository)),
        "signing": state.config.signing_key.as_ref().map(|k| k.path().display().to_string()),
        "offer_skipped": skipped,
        "sync": s,
    }))
}

/// `GET /space`: the store's space report (store-format.md §5.1), as `booster stats` shows
/// it: on disk, what the store holds, where the bytes go. It reads every record's key, so
/// on a store of millions of chunks it takes seconds; scrape `/metrics` for the rest.
pub async fn space(State(state): State<Arc<AppState>>) -> Response {
    let store = state.ctx.store.clone();
    match blocking("space report", move || crate::ops::stats::space_report(&store)).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
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
            "booster_bundles_refused_total",
            "Bundles a replica refused (unsigned, signed by another key, altered, or larger than announced)",
            "counter",
            m.bundles_refused.load(Ordering::Relaxed),
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

/// How long `/cleanup` waits for the work in progress before it answers 409 (while it
/// waits, new work waits behind it).
const CLEANUP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// `POST /cleanup`: drop cached bundles and temp files, then gc. It waits (up to
/// [`CLEANUP_WAIT`], then 409) for the work in progress (pulls, builds, publications, a
/// sync) to finish and holds new work off while it runs; bundles being streamed to
/// replicas stay.
pub async fn cleanup(State(state): State<Arc<AppState>>) -> Response {
    let Ok(_exclusive) = tokio::time::timeout(CLEANUP_WAIT, state.work.write()).await else {
        return (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": format!(
                "work in progress (a sync, a build or a pull) for over {CLEANUP_WAIT:?}: clean up after it (see GET /status)"
            )})),
        )
            .into_response();
    };
    let tmp = match state.ctx.store.tmp_dir() {
        Ok(t) => t,
        Err(e) => return error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let (s, store) = (state.clone(), state.ctx.store.clone());
    let done = blocking("cleanup", move || {
        let (mut files, mut bytes) = (0u64, 0u64);
        remove_tree_except(&tmp, &|p| s.cache.is_in_use(p), &mut files, &mut bytes);
        let report = gc::gc(&store, false)?;
        Ok((files, bytes, report))
    })
    .await;
    match done {
        Ok((files, bytes, r)) => {
            Json(serde_json::json!({"temp_files_removed": files, "temp_bytes_removed": bytes, "gc": r}))
                .into_response()
        }
        Err(e) => error_response(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
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
