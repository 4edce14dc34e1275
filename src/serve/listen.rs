//! The companion's listener: plain TCP or TLS (optionally requiring client certificates
//! signed by `--tls-client-ca`), under a bound on open connections and on the time a
//! request head may take, served over HTTP/1 by hyper.
//!
//! Each connection, its TLS handshake included, runs in a task of its own, so one slow or
//! silent client cannot hold up the others. A plain-HTTP request sent to the TLS port gets
//! a `400` saying to use https (as nginx does), not a hang or a reset.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509Name;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_openssl::SslStream;

use crate::error::{Error, Result};

/// `--tls-cert`, `--tls-key`, `--tls-client-ca`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM: the server certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM CA certificates: when given, only clients with a certificate they signed get in.
    pub client_ca: Option<PathBuf>,
}

fn tls_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{what} {}: {e}", path.display()))
}

/// The OpenSSL server context for `cfg`: Mozilla's intermediate profile (TLS 1.2 and 1.3).
pub fn acceptor(cfg: &TlsConfig) -> Result<SslAcceptor> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| Error::Usage(format!("TLS: {e}")))?;
    b.set_certificate_chain_file(&cfg.cert)
        .map_err(|e| tls_error("--tls-cert", &cfg.cert, e))?;
    b.set_private_key_file(&cfg.key, SslFiletype::PEM)
        .map_err(|e| tls_error("--tls-key", &cfg.key, e))?;
    b.check_private_key()
        .map_err(|e| tls_error("--tls-key does not match --tls-cert:", &cfg.key, e))?;
    if let Some(ca) = &cfg.client_ca {
        b.set_ca_file(ca)
            .map_err(|e| tls_error("--tls-client-ca", ca, e))?;
        let names = X509Name::load_client_ca_file(ca).map_err(|e| tls_error("--tls-client-ca", ca, e))?;
        b.set_client_ca_list(names);
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    Ok(b.build())
}

/// What a plain-HTTP request to the TLS port is told (and how `booster healthcheck` knows
/// to try again over TLS).
pub const TLS_ONLY: &str = "this booster service speaks TLS only";

/// How long a client has for its TLS handshake.
const HANDSHAKE_TIMEOUT_SECS: u64 = 10;

/// Bounds on connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    /// For a request head to arrive (hyper's header read timeout).
    pub request_timeout: Duration,
    /// For a response write to make progress.
    pub write_timeout: Duration,
}

/// Accepts connections on `tcp` until `shutdown`, at most `max_connections` open at once
/// (the slot is taken before the accept, so neither silent clients nor slow handshakes can
/// pile up beyond it; the rest wait in the kernel's backlog), each served over HTTP/1 with
/// `request_timeout` for a request head to arrive (hyper's header read timeout: a client
/// that trickles headers, or sits idle on a kept-alive connection, loses its slot) and
/// `write_timeout` for each write to make progress (a client that stops reading a bundle
/// loses its slot too). Returns once the connections still open have finished their
/// requests.
pub async fn serve_connections(
    tcp: TcpListener,
    tls: Option<SslAcceptor>,
    limits: ConnectionLimits,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ConnectionLimits {
        max_connections,
        request_timeout,
        write_timeout,
    } = limits;
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let tls = tls.map(Arc::new);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(request_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (tls, http, router, watcher) = (tls.clone(), http.clone(), router.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _slot: OwnedSemaphorePermit = slot;
            let service = hyper_util::service::TowerToHyperService::new(router);
            let served = match tls {
                None => {
                    let stream = WriteTimeout::new(stream, write_timeout);
                    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let limit = Duration::from_secs(HANDSHAKE_TIMEOUT_SECS);
                    match tokio::time::timeout(limit, handshake(&acceptor, stream)).await {
                        Ok(Ok(Some(s))) => {
                            let s = WriteTimeout::new(s, write_timeout);
                            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(s), service);
                            watcher.watch(conn).await
                        }
                        Ok(Ok(None)) => {
                            tracing::info!("{addr}: plain HTTP sent to the TLS port; answered 400");
                            return;
                        }
                        Ok(Err(e)) => {
                            tracing::info!("{addr}: TLS handshake refused: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::info!("{addr}: no TLS handshake within {limit:?}");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!("{addr}: connection ended: {e}");
            }
        });
    }
    drop(tcp);
    graceful.shutdown().await;
    Ok(())
}

/// A stream whose writes fail with `TimedOut` once one has made no progress for `limit`.
struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    /// Armed when a write first returns pending; reset by any progress.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, limit: Duration) -> WriteTimeout<S> {
        WriteTimeout {
            inner,
            limit,
            deadline: None,
        }
    }

    /// What an inner write, flush or shutdown `polled` means under the deadline: progress
    /// disarms it; pending arms it, and past it is a `TimedOut` error.
    fn guard<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        if polled.is_ready() {
            self.deadline = None;
            return polled;
        }
        let limit = self.limit;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, polled)
    }

    /// A TLS close sends an alert: a client that reads nothing must not hold it open.
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The TLS handshake, or `None` after answering a plain-HTTP request with a 400.
async fn handshake(
    acceptor: &SslAcceptor,
    stream: TcpStream,
) -> std::result::Result<Option<SslStream<TcpStream>>, String> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await.map_err(|e| e.to_string())?;
    // A TLS connection opens with a handshake record (content type 22).
    if n == 1 && first[0] != 22 && first[0].is_ascii_uppercase() {
        let mut stream = stream;
        // Read the request head first: closing with unread bytes would reset the connection
        // and the client might never see the answer.
        let _ = tokio::time::timeout(Duration::from_secs(2), read_head(&mut stream)).await;
        let body = format!("{TLS_ONLY}: use https://\n");
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        return Ok(None);
    }
    let ssl = Ssl::new(acceptor.context()).map_err(|e| e.to_string())?;
    let mut s = SslStream::new(ssl, stream).map_err(|e| e.to_string())?;
    Pin::new(&mut s).accept().await.map_err(|e| e.to_string())?;
    Ok(Some(s))
}

/// Reads up to the end of an HTTP request head (or 16 KiB).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while seen.len() < 16 << 10 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    Ok(())
}

/// `booster healthcheck` of a TLS listener: `GET /healthz` over TLS. The peer's certificate
/// is not checked: this probes our own process at an address the caller chose, and sends
/// no secret. A listener that refuses the probe for want of a client certificate (mutual
/// TLS) is up and doing its job: that counts as healthy.
pub fn probe_tls(conn: std::net::TcpStream, addr: &str) -> std::result::Result<(), String> {
    use std::io::{Read, Write};
    let client_cert_required =
        |e: &str| e.contains("certificate required") || e.contains("handshake failure");
    let mut b = openssl::ssl::SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.set_verify(SslVerifyMode::NONE);
    let mut config = b.build().configure().map_err(|e| e.to_string())?;
    config.set_verify_hostname(false);
    let mut tls = match config.connect("localhost", conn) {
        Ok(t) => t,
        Err(e) if client_cert_required(&e.to_string()) => return Ok(()),
        Err(e) => return Err(format!("TLS handshake: {e}")),
    };
    // With TLS 1.3 the server's verdict on a missing client certificate comes after the
    // handshake, as an alert: wait for it briefly before sending anything (data sent to a
    // server that then closes would turn the alert into a reset).
    let timeout = tls.get_ref().read_timeout().ok().flatten();
    let _ = tls
        .get_ref()
        .set_read_timeout(Some(std::time::Duration::from_millis(500)));
    let mut first = [0u8; 1];
    if let Err(e) = tls.ssl_read(&mut first)
        && client_cert_required(&e.to_string())
    {
        return Ok(());
    }
    let _ = tls.get_ref().set_read_timeout(timeout);
    let mut answer = Vec::new();
    let exchanged = write!(tls, "GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n")
        .and_then(|_| tls.read_to_end(&mut answer));
    if let Err(e) = exchanged {
        let e = e.to_string();
        if client_cert_required(&e) {
            return Ok(());
        }
        // A peer that closes without close_notify after answering is still an answer.
        if answer.is_empty() {
            return Err(format!("over TLS: {e}"));
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let line = answer.lines().next().unwrap_or("");
    if line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("answered over TLS {line:?}"))
    }
}
