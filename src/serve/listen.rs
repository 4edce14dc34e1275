//! The companion's listeners: plain TCP or TLS (optionally requiring client certificates
//! signed by `--tls-client-ca`), both under a bound on open connections.
//!
//! TLS handshakes run in tasks of their own, so one slow or silent client cannot hold up
//! the others; finished connections reach axum through a channel. A plain-HTTP request
//! sent to the TLS port gets a `400` saying to use https (as nginx does), not a hang or a
//! reset.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509Name;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
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

/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A connection that holds one of the listener's connection slots until it closes.
pub struct Limited<S> {
    inner: S,
    _slot: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts up to `max` connections at once; the next waits in the kernel's backlog until
/// one closes.
pub struct LimitedListener<L> {
    inner: L,
    slots: Arc<Semaphore>,
}

impl<L> LimitedListener<L> {
    pub fn new(inner: L, max: usize) -> Self {
        LimitedListener {
            inner,
            slots: Arc::new(Semaphore::new(max.max(1))),
        }
    }
}

impl<L: axum::serve::Listener> axum::serve::Listener for LimitedListener<L> {
    type Io = Limited<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        let (inner, addr) = self.inner.accept().await;
        (Limited { inner, _slot: slot }, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// TLS over a TCP listener; handshakes run in their own tasks.
pub struct TlsListener {
    ready: mpsc::Receiver<(SslStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: SslAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = Arc::new(acceptor);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (tx, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, stream)).await {
                        Ok(Ok(Some(s))) => {
                            let _ = tx.send((s, addr)).await;
                        }
                        Ok(Ok(None)) => {
                            tracing::info!("{addr}: plain HTTP sent to the TLS port; answered 400")
                        }
                        Ok(Err(e)) => tracing::info!("{addr}: TLS handshake refused: {e}"),
                        Err(_) => tracing::info!("{addr}: no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
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
        let body = "this booster service speaks TLS only: use https://\n";
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

impl axum::serve::Listener for TlsListener {
    type Io = SslStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop only ends with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
