//! Registry I/O through oci-client: manifests by their exact bytes, blobs streamed to and from
//! files with their sha256 checked on the way, retries with backoff for transient failures.
//!
//! Plain http is used for loopback registries and for hosts named with `--insecure-registry`
//! or `--tls-verify=false` (skopeo's flag); https with certificate checks everywhere else.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use reqwest::header::HeaderValue;
use tokio::io::AsyncWriteExt;

use super::auth::{AuthConfig, Credentials};
use super::manifest::ACCEPTED_MANIFEST_TYPES;
use super::reference::{RegistryRef, is_loopback_host};
use crate::error::{Error, Result};
use crate::id::{Digest, Sha256};

/// Bytes of a blob still being produced (rebuild ‖ upload), for `push_blob_live`.
pub struct LiveBlob {
    /// The bytes as they are produced. The producer ends them with an error if they turn
    /// out wrong: the upload is then never completed, and the registry keeps nothing.
    pub bytes: futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
    /// Set when the upload gives up on `bytes` (to retry from the spool file): the
    /// producer stops sending and only finishes the file.
    pub abandoned: tokio::sync::watch::Sender<bool>,
    /// `Some(true)` once the spool file holds the whole blob, verified; `Some(false)` if it
    /// never will.
    pub spool_ready: tokio::sync::watch::Receiver<Option<bool>>,
}

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub auth: AuthConfig,
    /// Hosts reached over plain http (besides loopback).
    pub insecure: Vec<String>,
    /// `--tls-verify=false`: plain http for every registry.
    pub plain_http_everywhere: bool,
    /// Attempts per operation before giving up (>= 1).
    pub attempts: u32,
    /// First backoff delay; doubles each retry.
    pub backoff: Duration,
    /// Give up on a connection that sends nothing for this long.
    pub read_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            auth: AuthConfig::default(),
            insecure: Vec::new(),
            plain_http_everywhere: false,
            attempts: 5,
            backoff: Duration::from_millis(250),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// A pulled manifest or index.
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

/// How long credentials from `--creds`, auth files and helpers are used before they are
/// looked up again.
pub const CREDENTIAL_TTL: Duration = Duration::from_secs(300);

fn same_auth(a: &RegistryAuth, b: &RegistryAuth) -> bool {
    match (a, b) {
        (RegistryAuth::Anonymous, RegistryAuth::Anonymous) => true,
        (RegistryAuth::Basic(u1, p1), RegistryAuth::Basic(u2, p2)) => u1 == u2 && p1 == p2,
        (RegistryAuth::Bearer(t1), RegistryAuth::Bearer(t2)) => t1 == t2,
        _ => false,
    }
}

/// Registry access for one process: one oci-client per host (the protocol is fixed per
/// client), credentials resolved once per host.
pub struct Registries {
    opts: RegistryOptions,
    /// Built once per host, outside any map-wide lock: building one costs tens of
    /// milliseconds of CPU (the TLS backend parses the whole system CA bundle, twice per
    /// oci-client, even for a plain-HTTP registry).
    clients: Mutex<HashMap<String, Arc<OnceLock<Arc<Client>>>>>,
    /// Resolved on first use, then again once [`CREDENTIAL_TTL`] old: credential helpers
    /// hand out short-lived passwords (cloud registries' last hours), and a long-running
    /// `serve` must not keep a stale one.
    auths: Mutex<HashMap<String, (RegistryAuth, std::time::Instant)>>,
}

impl Registries {
    pub fn new(opts: RegistryOptions) -> Registries {
        Registries {
            opts,
            clients: Mutex::new(HashMap::new()),
            auths: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// Build the client for `registry` on a background thread, so that a command that
    /// needs it only after other work (apply pushes after its import) overlaps the cost
    /// with that work. Credentials are left to the first request.
    pub fn warm_up(self: &Arc<Self>, registry: &str) {
        let this = Arc::clone(self);
        let host = registry.to_string();
        let spawned = std::thread::Builder::new()
            .name("registry-client".into())
            .spawn(move || {
                this.http_client(&host);
            });
        if let Err(e) = spawned {
            tracing::debug!("warming up the client for {registry}: {e}");
        }
    }

    fn client(&self, registry: &str) -> Result<(Arc<Client>, RegistryAuth)> {
        let auth = self.auth(registry)?;
        Ok((self.http_client(registry), auth))
    }

    /// The client for `registry`; a caller that comes while another builds it waits for
    /// that one instead of building a second.
    fn http_client(&self, registry: &str) -> Arc<Client> {
        let cell = {
            let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(registry.to_string()).or_default().clone()
        };
        cell.get_or_init(|| Arc::new(Client::new(self.client_config(registry))))
            .clone()
    }

    fn client_config(&self, registry: &str) -> ClientConfig {
        let plain = self.opts.plain_http_everywhere
            || is_loopback_host(registry)
            || self.opts.insecure.iter().any(|h| h == registry);
        ClientConfig {
            protocol: if plain {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            use_monolithic_push: true,
            read_timeout: Some(self.opts.read_timeout),
            connect_timeout: Some(Duration::from_secs(15)),
            user_agent: concat!("booster/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        }
    }

    fn auth(&self, registry: &str) -> Result<RegistryAuth> {
        let cached = {
            let map = self.auths.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(registry) {
                Some((a, at)) if at.elapsed() < CREDENTIAL_TTL => return Ok(a.clone()),
                other => other.map(|(a, _)| a.clone()),
            }
        };
        // Outside the lock: a helper is a process, and other registries' calls go on.
        let looked_up = self.opts.auth.lookup(registry).map(|c| match c {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username, password),
            Credentials::IdentityToken(t) => RegistryAuth::Basic("<token>".into(), t),
        });
        let auth = match (looked_up, cached.clone()) {
            (Ok(a), _) => a,
            // A helper that fails now: the credentials it gave last time may still work.
            (Err(e), Some(old)) => {
                tracing::warn!("looking up credentials for {registry} again: {e}; keeping the previous ones");
                old
            }
            (Err(e), None) => return Err(e),
        };
        let changed = cached.is_some_and(|old| !same_auth(&old, &auth));
        self.auths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry.to_string(), (auth.clone(), std::time::Instant::now()));
        if changed {
            // oci-client keeps the first credentials it was given (and the tokens they
            // bought): a new client for the host starts from the new ones.
            tracing::info!("credentials for {registry} changed: using the new ones");
            self.clients
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(registry);
        }
        Ok(auth)
    }

    fn reference(r: &RegistryRef, by: &str) -> Reference {
        if by.starts_with("sha256:") {
            Reference::with_digest(r.registry.clone(), r.repository.clone(), by.to_string())
        } else {
            Reference::with_tag(r.registry.clone(), r.repository.clone(), by.to_string())
        }
    }

    fn fail(&self, r: &RegistryRef, e: impl std::fmt::Display) -> Error {
        Error::Registry {
            registry: r.registry.clone(),
            image: format!("{}/{}", r.registry, r.repository),
            message: e.to_string(),
        }
    }

    /// Run `op` with retries on transient failures.
    async fn retry<T, F, Fut>(&self, r: &RegistryRef, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut delay = self.opts.backoff;
        let attempts = self.opts.attempts.max(1);
        for attempt in 1..=attempts {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < attempts && is_transient(&e) => {
                    tracing::warn!(
                        "{what} on {}: {} (attempt {attempt}/{attempts}, retrying in {delay:?})",
                        r.registry,
                        describe(&e)
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    return Err(self.fail(
                        r,
                        format!("{what}: {}{}", describe(&e), hint(&e, attempt, attempts)),
                    ));
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// The manifest or index `r` names (by digest if pinned, else by tag), exact bytes.
    pub async fn get_manifest(&self, r: &RegistryRef) -> Result<RawManifest> {
        self.get_manifest_by(r, &r.reference_str()).await
    }

    /// A manifest of the repository `r` by digest or tag.
    pub async fn get_manifest_by(&self, r: &RegistryRef, by: &str) -> Result<RawManifest> {
        let (client, auth) = self.client(&r.registry)?;
        let reference = Self::reference(r, by);
        let (bytes, _digest_header) = self
            .retry(r, &format!("fetching manifest {by}"), || {
                client.pull_manifest_raw(&reference, &auth, &ACCEPTED_MANIFEST_TYPES)
            })
            .await?;
        check_manifest_size(r, by, bytes.len())?;
        let digest = Digest::of(&bytes);
        if let Ok(pinned) = by.parse::<Digest>()
            && pinned != digest
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest of {}/{}", r.registry, r.repository),
                expected: pinned,
                actual: digest,
            });
        }
        Ok(RawManifest {
            bytes: bytes.to_vec(),
            digest,
        })
    }

    /// The manifest tagged `tag` in `r`'s repository, or None when the registry has no such
    /// tag (or repository).
    pub async fn find_manifest_by_tag(&self, r: &RegistryRef, tag: &str) -> Result<Option<RawManifest>> {
        let (client, auth) = self.client(&r.registry)?;
        let reference = Self::reference(r, tag);
        let got = self
            .retry(r, &format!("fetching manifest {tag}"), || async {
                match client
                    .pull_manifest_raw(&reference, &auth, &ACCEPTED_MANIFEST_TYPES)
                    .await
                {
                    Ok((bytes, _)) => Ok(Some(bytes)),
                    Err(e) if is_not_found(&e) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        if let Some(b) = &got {
            check_manifest_size(r, tag, b.len())?;
        }
        Ok(got.map(|bytes| RawManifest {
            digest: Digest::of(&bytes),
            bytes: bytes.to_vec(),
        }))
    }

    /// What the registry lists as referring to `subject` in `r`'s repository: the OCI 1.1
    /// referrers API, or where the registry lacks it, the referrers tag-schema index.
    /// Entries are descriptors (media type, digest, size, artifact type, annotations).
    pub async fn referrers(
        &self,
        r: &RegistryRef,
        subject: &Digest,
    ) -> Result<Vec<super::manifest::Descriptor>> {
        let (client, auth) = self.client(&r.registry)?;
        let reference = Self::reference(r, &subject.to_string());
        client
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let index = self
            .retry(r, &format!("listing referrers of {subject}"), || async {
                match client.pull_referrers(&reference, None).await {
                    Err(e) if is_not_found(&e) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        let Some(index) = index else { return Ok(Vec::new()) };
        Ok(index
            .manifests
            .into_iter()
            .filter(|e| e.size >= 0)
            .map(|e| super::manifest::Descriptor {
                media_type: e.media_type,
                digest: e.digest,
                size: e.size as u64,
                platform: None,
                annotations: e.annotations,
                artifact_type: e.artifact_type,
            })
            .collect())
    }

    pub async fn blob_exists(&self, r: &RegistryRef, digest: &Digest) -> Result<bool> {
        let (client, auth) = self.client(&r.registry)?;
        let reference = Self::reference(r, &r.reference_str());
        client
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let d = digest.to_string();
        self.retry(r, &format!("checking blob {}", digest.short()), || {
            client.blob_exists(&reference, &d)
        })
        .await
    }

    /// Download a blob into `dest`, checking its sha256 and size. A dropped connection
    /// resumes where it stopped (HTTP range), hashing continues across attempts.
    pub async fn fetch_blob(
        &self,
        r: &RegistryRef,
        digest: &Digest,
        size: Option<u64>,
        dest: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        let (client, auth) = self.client(&r.registry)?;
        let reference = Self::reference(r, &r.reference_str());
        client
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let d = digest.to_string();
        let io = |e: std::io::Error| Error::io(format!("writing {}", dest.display()), e);
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut sha = Sha256::new();
        let mut have = 0u64;
        let attempts = self.opts.attempts.max(1);
        let mut delay = self.opts.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = self
                .fetch_attempt(
                    &client, &reference, &d, &mut file, &mut sha, &mut have, size, progress,
                )
                .await;
            match res {
                Ok(()) => break,
                Err(FetchError::Local(e)) => return Err(io(e)),
                Err(FetchError::Remote(e)) if attempt < attempts && is_transient(&e) => {
                    tracing::warn!(
                        "downloading {} from {}: {} at byte {have} (attempt {attempt}/{attempts}, resuming in {delay:?})",
                        digest.short(),
                        r.registry,
                        describe(&e)
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(FetchError::Remote(e)) => {
                    return Err(self.fail(
                        r,
                        format!(
                            "downloading blob {digest}: {}{}",
                            describe(&e),
                            hint(&e, attempt, attempts)
                        ),
                    ));
                }
            }
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        let actual = sha.finish();
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: format!("blob downloaded from {}/{}", r.registry, r.repository),
                expected: *digest,
                actual,
            });
        }
        if let Some(s) = size
            && s != have
        {
            return Err(self.fail(
                r,
                format!("blob {digest} has {have} bytes, its descriptor says {s}"),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_attempt(
        &self,
        client: &Client,
        reference: &Reference,
        digest: &str,
        file: &mut tokio::fs::File,
        sha: &mut Sha256,
        have: &mut u64,
        limit: Option<u64>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> std::result::Result<(), FetchError> {
        // A closed range when the size is known: go-containerregistry's registry refuses
        // the open `bytes=N-` form.
        let rest = limit.map(|l| l.saturating_sub(*have)).filter(|n| *n > 0);
        let mut stream = if *have == 0 {
            // oci-client's own verification is off for resumable downloads; booster hashes.
            match client
                .pull_blob_stream_partial(reference, digest, 0, rest)
                .await?
            {
                BlobResponse::Full(s) | BlobResponse::Partial(s) => s,
            }
        } else {
            match client
                .pull_blob_stream_partial(reference, digest, *have, rest)
                .await?
            {
                BlobResponse::Partial(s) => s,
                BlobResponse::Full(s) => {
                    // The registry ignored the range: start over.
                    use tokio::io::AsyncSeekExt;
                    file.set_len(0).await.map_err(FetchError::Local)?;
                    file.seek(std::io::SeekFrom::Start(0))
                        .await
                        .map_err(FetchError::Local)?;
                    *sha = Sha256::new();
                    *have = 0;
                    s
                }
            }
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError::Remote(OciDistributionError::IoError(e)))?;
            file.write_all(&chunk).await.map_err(FetchError::Local)?;
            sha.update(&chunk);
            *have += chunk.len() as u64;
            // A registry that streams past the declared size is not believed to the end.
            if let Some(l) = limit
                && *have > l
            {
                return Err(FetchError::Local(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the registry sent more than the {l} bytes the blob's descriptor declares"),
                )));
            }
            progress(*have);
        }
        Ok(())
    }

    /// Ask the registry to mount `digest` from another repository of the same registry.
    /// Returns false when the registry would rather have it uploaded (oci-client reports a
    /// 202 answer as an error: that means "upload it", not failure).
    pub async fn mount_blob(
        &self,
        target: &RegistryRef,
        from_repository: &str,
        digest: &Digest,
    ) -> Result<bool> {
        let (client, auth) = self.client(&target.registry)?;
        let reference = Self::reference(target, &target.reference_str());
        client
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let source = Reference::with_tag(
            target.registry.clone(),
            from_repository.to_string(),
            "latest".into(),
        );
        match client.mount_blob(&reference, &source, &digest.to_string()).await {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::debug!(
                    "mount of {} from {from_repository} refused: {}",
                    digest.short(),
                    describe(&e)
                );
                Ok(false)
            }
        }
    }

    /// Upload the blob in `file` (already verified to hash to `digest`). Each attempt is a
    /// new upload session, streamed from the file.
    pub async fn push_blob_file(
        &self,
        r: &RegistryRef,
        digest: &Digest,
        file: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        let size = std::fs::metadata(file)
            .map_err(|e| Error::io(format!("reading {}", file.display()), e))?
            .len();
        self.push_blob_live(r, digest, size, None, file, progress).await
    }

    /// Upload a blob: the first attempt sends `live`'s bytes as they are produced, when
    /// given; every other attempt sends the file `spool` (once `live` says it is complete).
    pub async fn push_blob_live(
        &self,
        r: &RegistryRef,
        digest: &Digest,
        size: u64,
        live: Option<LiveBlob>,
        spool: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        let (client, auth) = self.client(&r.registry)?;
        let reference = Self::reference(r, &r.reference_str());
        client
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let d = digest.to_string();
        let (first, control) = match live {
            Some(l) => (Some(l.bytes), Some((l.abandoned, l.spool_ready))),
            None => (None, None),
        };
        let first = Mutex::new(first);
        let control = control.as_ref();
        let spool = spool.to_path_buf();
        let progress_counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let uploaded = self
            .retry(r, &format!("uploading blob {}", digest.short()), || {
                let client = client.clone();
                let reference = reference.clone();
                let d = d.clone();
                let spool = spool.clone();
                let first = first.lock().unwrap_or_else(|e| e.into_inner()).take();
                let counter = progress_counter.clone();
                counter.store(0, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let live = first.is_some();
                    let body = match first {
                        Some(bytes) => bytes,
                        None => {
                            if let Some((abandoned, ready)) = control {
                                abandoned.send_replace(true);
                                let whole = ready
                                    .clone()
                                    .wait_for(|v| v.is_some())
                                    .await
                                    .is_ok_and(|v| *v == Some(true));
                                if !whole {
                                    return Err(not_rebuilt());
                                }
                            }
                            let f = tokio::fs::File::open(&spool).await?;
                            tokio_util::io::ReaderStream::with_capacity(f, 1 << 20).boxed()
                        }
                    };
                    let stream = body.map(move |r| {
                        r.inspect(|b| {
                            counter.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        })
                        .map_err(OciDistributionError::IoError)
                    });
                    let sent = client.push_blob_stream(&reference, stream, &d, Some(size)).await;
                    // The producer ended the bytes because they were wrong: nothing to retry.
                    let refused = live && control.is_some_and(|(_, ready)| *ready.borrow() == Some(false));
                    match sent {
                        Err(_) if refused => Err(not_rebuilt()),
                        // go-containerregistry's registry ends an upload with 201 and no
                        // Location, against the spec: the blob is there if it says so.
                        Err(OciDistributionError::RegistryNoLocationError) => {
                            match client.blob_exists(&reference, &d).await {
                                Ok(true) => Ok(()),
                                _ => Err(OciDistributionError::RegistryNoLocationError),
                            }
                        }
                        other => other.map(|_| ()),
                    }
                }
            })
            .await;
        // However it ended, the producer must not wait on these bytes any more (a failed
        // request may not have dropped its body yet).
        if let Some((abandoned, _)) = control {
            abandoned.send_replace(true);
        }
        uploaded?;
        progress(size);
        Ok(())
    }

    /// Push manifest bytes exactly as given, under `by` (a tag or the manifest's digest).
    pub async fn push_manifest(
        &self,
        r: &RegistryRef,
        by: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<()> {
        let (client, auth) = self.client(&r.registry)?;
        // Named as a tag even when `by` is a digest: the URL is the same, and oci-client's
        // workaround for registries that answer without a Location (go-containerregistry's,
        // ECR) panics on a digest reference.
        let reference = Reference::with_tag(r.registry.clone(), r.repository.clone(), by.to_string());
        client
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let ct = HeaderValue::from_str(media_type)
            .map_err(|_| self.fail(r, format!("bad media type {media_type:?}")))?;
        let body = bytes::Bytes::copy_from_slice(bytes);
        self.retry(r, &format!("pushing manifest {by}"), || {
            client.push_manifest_raw(&reference, body.clone(), ct.clone())
        })
        .await
        .map(|_| ())
    }

    /// Repositories in a registry (`/v2/_catalog`), all pages.
    pub async fn catalog(&self, registry: &str) -> Result<Vec<String>> {
        let r = RegistryRef {
            registry: registry.to_string(),
            repository: "catalog".into(),
            tag: Some("latest".into()),
            digest: None,
        };
        let (client, auth) = self.client(registry)?;
        let reference = Self::reference(&r, "latest");
        let (mut out, mut seen, mut last) = (Vec::new(), std::collections::HashSet::new(), None::<String>);
        loop {
            let page = self
                .retry(&r, "listing repositories", || {
                    client.catalog(&reference, &auth, Some(PAGE), last.as_deref())
                })
                .await?;
            last = next_page(&mut out, &mut seen, page.repositories);
            if last.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Tags of a repository, all pages (registries that page their lists stop at 100 or
    /// 1000 otherwise).
    pub async fn tags(&self, r: &RegistryRef) -> Result<Vec<String>> {
        let (client, auth) = self.client(&r.registry)?;
        let reference = Self::reference(r, "latest");
        let (mut out, mut seen, mut last) = (Vec::new(), std::collections::HashSet::new(), None::<String>);
        loop {
            let page = self
                .retry(r, "listing tags", || {
                    client.list_tags(&reference, &auth, Some(PAGE), last.as_deref())
                })
                .await?;
            last = next_page(&mut out, &mut seen, page.tags);
            if last.is_none() {
                break;
            }
        }
        Ok(out)
    }
}

/// The largest manifest or index booster accepts, as registries do (distribution's default
/// limit is 4 MiB): a bigger one is refused by name rather than parsed and stored.
pub const MAX_MANIFEST: usize = 4 << 20;

fn check_manifest_size(r: &RegistryRef, by: &str, len: usize) -> Result<()> {
    if len <= MAX_MANIFEST {
        return Ok(());
    }
    Err(Error::Registry {
        registry: r.registry.clone(),
        image: format!("{}/{}", r.registry, r.repository),
        message: format!(
            "the manifest {by} is {len} bytes, over the {MAX_MANIFEST}-byte limit registries keep"
        ),
    })
}

/// Entries asked for per page of a catalog or tag list. A registry may answer fewer (it
/// caps pages at 100, say) with more to come.
const PAGE: usize = 1000;

/// Appends one page of a `?n=&last=` listing to `out`; returns the `last` to ask the next
/// page with, or None when the listing is over. It is over only at a page that brings
/// nothing new: a registry whose pages are capped below `PAGE` answers short pages before
/// the end, and the `Link` header that says so is not visible through oci-client, so one
/// more request is how the end is found. The next page starts after this page's own last
/// entry (whatever order the registry lists in); a registry that ignores `last` repeats a
/// page, brings nothing new, and ends the listing instead of looping.
fn next_page(
    out: &mut Vec<String>,
    seen: &mut std::collections::HashSet<String>,
    page: Vec<String>,
) -> Option<String> {
    let last = page.last().cloned()?;
    let before = out.len();
    for e in page {
        if seen.insert(e.clone()) {
            out.push(e);
        }
    }
    (out.len() > before).then_some(last)
}

enum FetchError {
    Local(std::io::Error),
    Remote(OciDistributionError),
}

impl From<OciDistributionError> for FetchError {
    fn from(e: OciDistributionError) -> Self {
        FetchError::Remote(e)
    }
}

/// The registry has no such manifest, tag or repository.
fn is_not_found(e: &OciDistributionError) -> bool {
    use oci_client::errors::OciErrorCode;
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(
                x.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::RequestError(r) => r.status().is_some_and(|s| s.as_u16() == 404),
        _ => false,
    }
}

/// Worth retrying: the network, the server's 5xx, rate limits, and a lost upload session.
/// A live upload whose producer found its bytes wrong: not worth retrying (the rebuild's own
/// error, naming the layer, is what the caller reports).
fn not_rebuilt() -> OciDistributionError {
    OciDistributionError::GenericError(Some("the blob could not be rebuilt".into()))
}

pub fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => match r.status() {
            Some(st) => st.is_server_error() || st.as_u16() == 429 || st.as_u16() == 408,
            None => !r.is_builder() && !r.is_redirect(),
        },
        OciDistributionError::IoError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429 || *code == 408,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| format!("{:?}", e.code).to_uppercase().contains("UPLOAD")),
        OciDistributionError::SpecViolationError(m) => {
            m.contains("500") || m.contains("503") || m.contains("502")
        }
        OciDistributionError::GenericError(Some(m)) => m.contains("connection") || m.contains("timed out"),
        _ => false,
    }
}

fn describe(e: &OciDistributionError) -> String {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .map(|x| format!("{:?}: {}", x.code, x.message))
            .collect::<Vec<_>>()
            .join("; "),
        OciDistributionError::RequestError(r) => {
            let mut s = r.to_string();
            let mut src = std::error::Error::source(r);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
        other => other.to_string(),
    }
}

fn hint(e: &OciDistributionError, attempt: u32, attempts: u32) -> String {
    let tries = if attempt > 1 {
        format!(" (gave up after {attempt} attempts)")
    } else {
        String::new()
    };
    let _ = attempts;
    let what = match e {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            "; check credentials (--creds USER:PASS, or `docker login`)"
        }
        OciDistributionError::RequestError(r)
            if r.status().is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) =>
        {
            "; check credentials (--creds USER:PASS, or `docker login`)"
        }
        OciDistributionError::RequestError(r) if r.is_connect() => {
            "; is the registry running and reachable? (plain http is used only for loopback and --insecure-registry hosts)"
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|x| format!("{:?}", x.code).contains("Unknown")) =>
        {
            "; check the image name and tag"
        }
        _ => "",
    };
    format!("{tries}{what}")
}

#[cfg(test)]
mod paging_tests {
    use super::next_page;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn short_pages_do_not_end_a_listing_and_repeats_do() {
        let (mut out, mut seen) = (Vec::new(), Default::default());
        // A registry capping pages at 2 while 1000 were asked for, in its own order.
        assert_eq!(next_page(&mut out, &mut seen, v(&["b", "a"])), Some("a".into()));
        assert_eq!(next_page(&mut out, &mut seen, v(&["d", "c"])), Some("c".into()));
        assert_eq!(next_page(&mut out, &mut seen, v(&[])), None);
        assert_eq!(out, v(&["b", "a", "d", "c"]));
        // One that ignores `last` and answers its first page again.
        let (mut out, mut seen) = (Vec::new(), Default::default());
        assert!(next_page(&mut out, &mut seen, v(&["a", "b"])).is_some());
        assert_eq!(next_page(&mut out, &mut seen, v(&["a", "b"])), None);
        assert_eq!(out, v(&["a", "b"]));
    }
}
