//! `booster push` and the push engine behind `apply` and `import --push`: for each image,
//! make sure every blob is at the destination (skip those it has, mount those another of
//! its repositories has, rebuild and upload the rest, each rebuild verified against its
//! digest first), then push manifests with their exact bytes — children before the index —
//! and finally the tag.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, TryStreamExt};

use super::pull::Ctx;
use crate::error::{Error, Result};
use crate::id::Digest;
use crate::oci::manifest::{self, Parsed};
use crate::oci::reference::RegistryRef;
use crate::oci::source::Sink;
use crate::output;
use crate::rebuild;
use crate::store::{Doc, ImageRecord, Store};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushReport {
    pub image: String,
    pub destination: String,
    pub digest: Option<Digest>,
    pub blobs: usize,
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    pub blobs_mounted: usize,
    pub bytes_uploaded: u64,
    pub manifests: usize,
}

/// Which repository of a registry already holds a blob, learnt while pushing: later
/// images in other repositories mount from there instead of uploading again.
#[derive(Default, Clone)]
pub struct MountHints(Arc<Mutex<HashMap<(String, Digest), String>>>);

impl MountHints {
    fn get(&self, registry: &str, d: &Digest) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(registry.to_string(), *d))
            .cloned()
    }

    /// Note that `repo` of `registry` holds blob `d` (the first repository noted wins).
    pub fn set(&self, registry: &str, d: &Digest, repo: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((registry.to_string(), *d))
            .or_insert_with(|| repo.to_string());
    }

    /// Whether `d` can be mounted into `image`'s repository from another one.
    pub fn mountable(&self, image: &RegistryRef, d: &Digest) -> bool {
        self.get(&image.registry, d)
            .is_some_and(|from| from != image.repository)
    }
}

/// Everything an image consists of, from the store.
struct ImageParts {
    /// Manifests and indexes, children first, with their media types.
    manifests: Vec<(Digest, String, Vec<u8>)>,
    /// Blobs by digest: (size, media type).
    blobs: BTreeMap<Digest, (u64, String)>,
}

fn collect_parts(store: &Store, top: &Digest) -> Result<ImageParts> {
    let lookup = |d: &Digest| -> Result<Doc> {
        store.doc(d)?.ok_or_else(|| Error::NotInStore {
            path: store.path().to_path_buf(),
            kind: "manifest",
            digest: *d,
            hint: ": pull the image again",
        })
    };
    collect_parts_with(&lookup, top)
}

/// The manifests (the top one and, for an index, its children) of a stored image.
pub fn manifest_digests(store: &Store, top: &Digest) -> Result<HashSet<Digest>> {
    Ok(collect_parts(store, top)?
        .manifests
        .into_iter()
        .map(|(d, _, _)| d)
        .collect())
}

/// The blobs (configs and layers) of the image whose top manifest is `top`, its manifests
/// found by `lookup` (a bundle's documents, before they are stored).
pub fn image_blobs(lookup: &dyn Fn(&Digest) -> Result<Doc>, top: &Digest) -> Result<HashSet<Digest>> {
    Ok(collect_parts_with(lookup, top)?.blobs.into_keys().collect())
}

fn collect_parts_with(lookup: &dyn Fn(&Digest) -> Result<Doc>, top: &Digest) -> Result<ImageParts> {
    let mut parts = ImageParts {
        manifests: Vec::new(),
        blobs: BTreeMap::new(),
    };
    walk(lookup, top, &mut parts, 0)?;
    Ok(parts)
}

fn walk(
    lookup: &dyn Fn(&Digest) -> Result<Doc>,
    d: &Digest,
    parts: &mut ImageParts,
    depth: usize,
) -> Result<()> {
    if depth > 4 || parts.manifests.iter().any(|(x, _, _)| x == d) {
        return Ok(());
    }
    let doc = lookup(d)?;
    match manifest::parse(&doc.data, Some(&doc.media_type))? {
        Parsed::Index { manifests, .. } => {
            for m in &manifests {
                let cd = m.digest()?;
                if manifest::is_index(&m.media_type)
                    || manifest::is_manifest(&m.media_type)
                    || m.media_type.is_empty()
                {
                    walk(lookup, &cd, parts, depth + 1)?;
                } else {
                    parts.blobs.insert(cd, (m.size, m.media_type.clone()));
                }
            }
        }
        Parsed::Manifest { config, layers, .. } => {
            parts
                .blobs
                .insert(config.digest()?, (config.size, config.media_type.clone()));
            for l in &layers {
                parts.blobs.insert(l.digest()?, (l.size, l.media_type.clone()));
            }
        }
    }
    parts.manifests.push((*d, doc.media_type.clone(), doc.data));
    Ok(())
}

/// Every blob the destination lacks must be rebuildable (or mountable from another
/// repository) before anything is pushed: fail early with the list instead of half-pushing
/// an image.
fn check_complete<'a>(
    store: &Store,
    blobs: impl Iterator<Item = &'a Digest>,
    mountable: impl Fn(&Digest) -> bool,
    name: &str,
) -> Result<()> {
    let mut missing = Vec::new();
    for d in blobs {
        if mountable(d) || rebuildable(store, d)? {
            continue;
        }
        missing.push(if store.blob(d)?.is_some() {
            format!("{d} (stored as a delta base only, and the destination lacks it)")
        } else {
            format!("{d} (missing)")
        });
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::format(
        format!("image {name}"),
        format!(
            "cannot push: {} blob(s) cannot be rebuilt from this store: {}; pull the image again",
            missing.len(),
            missing.join(", ")
        ),
    ))
}

/// Push the stored image `name` to `sink`.
pub async fn push_image(ctx: &Ctx, name: &str, sink: &Sink, hints: &MountHints) -> Result<PushReport> {
    let rec = ctx.store.image(name)?.ok_or_else(|| {
        Error::Usage(format!(
            "image {name} is not in the store {} (see `booster images`)",
            ctx.store.path().display()
        ))
    })?;
    push_image_at(ctx, name, &rec, sink, hints).await
}

/// Push the image whose top manifest is `rec` (stored as a document), named `name`, whether
/// or not the store records it as an image: an apply that left out layers the destination
/// already has pushes its new images this way. Blobs the destination lacks must all be
/// stored, or nothing is uploaded.
pub async fn push_image_at(
    ctx: &Ctx,
    name: &str,
    rec: &ImageRecord,
    sink: &Sink,
    hints: &MountHints,
) -> Result<PushReport> {
    let parts = collect_parts(&ctx.store, &rec.digest)?;
    let mut report = PushReport {
        image: name.to_string(),
        destination: sink.describe(),
        digest: Some(rec.digest),
        blobs: parts.blobs.len(),
        manifests: parts.manifests.len(),
        ..Default::default()
    };
    tracing::info!("pushing {name} to {}", report.destination);
    // Owned items: a stream over borrowed map entries trips the higher-ranked lifetime
    // check when the future must be Send (the service spawns it).
    let items: Vec<(Digest, u64, String)> = parts
        .blobs
        .iter()
        .map(|(d, (s, m))| (*d, *s, m.clone()))
        .collect();
    // What the destination has first: only the blobs it lacks must be rebuildable, and
    // if some are not, nothing is uploaded.
    let digests: Vec<Digest> = items.iter().map(|(d, _, _)| *d).collect();
    let present: Vec<(Digest, bool)> = futures_util::stream::iter(
        digests
            .into_iter()
            .map(|d| async move { sink_has(sink, &d).await.map(|p| (d, p)) }),
    )
    .buffer_unordered(ctx.jobs.max(1) * 2)
    .try_collect()
    .await?;
    let present: std::collections::HashSet<Digest> =
        present.into_iter().filter(|(_, p)| *p).map(|(d, _)| d).collect();
    check_complete(
        &ctx.store,
        items.iter().map(|(d, _, _)| d).filter(|d| !present.contains(d)),
        |d| matches!(sink, Sink::Registry { image, .. } if hints.mountable(image, d)),
        name,
    )?;
    if let Sink::Registry { image, .. } = sink {
        for d in &present {
            hints.set(&image.registry, d, &image.repository);
        }
    }
    report.blobs_present = present.len();
    // An image from another repository of the same registry: its blobs can be mounted
    // from there instead of uploaded.
    if let Sink::Registry { image, .. } = sink
        && let Ok(src) = crate::oci::reference::parse_registry_ref(name)
        && src.registry == image.registry
        && src.repository != image.repository
    {
        for (d, _, _) in &items {
            hints.set(&image.registry, d, &src.repository);
        }
    }
    let missing: Vec<(Digest, u64, String)> = items
        .into_iter()
        .filter(|(d, _, _)| !present.contains(d))
        .collect();
    let overall = output::count_bar(missing.len() as u64, format!("push {name}"));
    let outcomes: Vec<BlobPush> = futures_util::stream::iter(missing.into_iter().map(|(d, size, mt)| {
        let ctx = ctx.clone();
        let hints = hints.clone();
        let overall = overall.clone();
        async move {
            let r = push_blob(&ctx, sink, &d, size, &mt, &hints).await;
            overall.inc(1);
            r
        }
    }))
    .buffer_unordered(ctx.jobs.max(1))
    .try_collect()
    .await?;
    for o in outcomes {
        match o {
            BlobPush::Mounted => report.blobs_mounted += 1,
            BlobPush::Uploaded(n) => {
                report.blobs_uploaded += 1;
                report.bytes_uploaded += n;
            }
        }
    }
    overall.finish_and_clear();
    push_manifests(sink, &parts, &rec.digest).await?;
    tracing::info!(
        "pushed {name} to {} ({}): {} blobs uploaded ({}), {} already there, {} mounted",
        report.destination,
        rec.digest,
        report.blobs_uploaded,
        output::human_bytes(report.bytes_uploaded),
        report.blobs_present,
        report.blobs_mounted
    );
    Ok(report)
}

enum BlobPush {
    Mounted,
    Uploaded(u64),
}

async fn sink_has(sink: &Sink, d: &Digest) -> Result<bool> {
    match sink {
        Sink::Registry { registries, image } => registries.blob_exists(image, d).await,
        Sink::Layout { layout, .. } => Ok(layout.has_blob(d)),
    }
}

async fn push_blob(
    ctx: &Ctx,
    sink: &Sink,
    d: &Digest,
    size: u64,
    media_type: &str,
    hints: &MountHints,
) -> Result<BlobPush> {
    match sink {
        Sink::Registry { registries, image } => {
            if let Some(from) = hints.get(&image.registry, d)
                && from != image.repository
            {
                if registries.mount_blob(image, &from, d).await? {
                    return Ok(BlobPush::Mounted);
                }
                if !rebuildable(&ctx.store, d)? {
                    // The registry refused the mount (no cross-repository mount, or a token
                    // scoped to the target alone) and the store cannot make the blob: copy
                    // it from the repository that holds it, checked against its digest.
                    copy_within_registry(ctx, registries, image, &from, d, size).await?;
                    hints.set(&image.registry, d, &image.repository);
                    return Ok(BlobPush::Uploaded(size));
                }
            }
            upload_while_rebuilding(ctx, registries, image, d, size).await?;
            hints.set(&image.registry, d, &image.repository);
            Ok(BlobPush::Uploaded(size))
        }
        Sink::Layout { layout, .. } => {
            let file = materialize(ctx, d, media_type).await?;
            let res = layout.put_blob_file(d, &file);
            let _ = std::fs::remove_file(&file);
            res?;
            Ok(BlobPush::Uploaded(size))
        }
    }
}

/// The store holds `d` as a document or can rebuild it from its recipe.
fn rebuildable(store: &Store, d: &Digest) -> Result<bool> {
    Ok(store.doc(d)?.is_some() || store.blob(d)?.is_some_and(|rec| rec.method.can_rebuild()))
}

/// Download blob `d` from repository `from` of `image`'s registry and upload it to
/// `image`'s repository: what a refused cross-repository mount leaves to do.
async fn copy_within_registry(
    ctx: &Ctx,
    registries: &crate::oci::registry::Registries,
    image: &RegistryRef,
    from: &str,
    d: &Digest,
    size: u64,
) -> Result<()> {
    let source = RegistryRef {
        repository: from.to_string(),
        ..image.clone()
    };
    let path = spool_path(&ctx.store, d)?;
    let res = async {
        registries
            .fetch_blob(&source, d, Some(size), &path, &|_| {})
            .await?;
        registries.push_blob_file(image, d, &path, &|_| {}).await
    }
    .await;
    let _ = std::fs::remove_file(&path);
    res.map_err(|e| {
        Error::format(
            format!("blob {d}"),
            format!(
                "{}/{} lacks it, mounting it from {from} was refused and copying it from there failed ({e}); this store holds it only as a delta base",
                image.registry, image.repository
            ),
        )
    })
}

/// Write the blob's exact bytes to a temp file: documents as they are, blobs rebuilt from
/// their recipe and method, and in both cases checked against the digest.
pub async fn materialize(ctx: &Ctx, d: &Digest, _media_type: &str) -> Result<PathBuf> {
    let store = ctx.store.clone();
    let d = *d;
    tokio::task::spawn_blocking(move || materialize_blocking(&store, &d))
        .await
        .map_err(join_err)?
}

pub fn materialize_blocking(store: &Store, d: &Digest) -> Result<PathBuf> {
    let path = spool_path(store, d)?;
    write_blob(store, d, &path, &mut std::io::sink())?;
    Ok(path)
}

fn join_err(e: tokio::task::JoinError) -> Error {
    Error::io("rebuild task", std::io::Error::other(e.to_string()))
}

/// A fresh temp file name for blob `d` in the store's temp directory.
fn spool_path(store: &Store, d: &Digest) -> Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(store
        .tmp_dir()?
        .join(format!("{}.{}.{n}.push", d.hex(), std::process::id())))
}

/// Write blob `d`'s exact bytes to `path`, and to `also` as they are produced; `Ok` only
/// once they are checked against the digest.
fn write_blob(store: &Store, d: &Digest, path: &Path, also: &mut dyn Write) -> Result<()> {
    if let Some(doc) = store.doc(d)? {
        let actual = Digest::of(&doc.data);
        if actual != *d {
            return Err(Error::DigestMismatch {
                what: format!("stored document {d}"),
                expected: *d,
                actual,
            });
        }
        std::fs::write(path, &doc.data).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        return also
            .write_all(&doc.data)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e));
    }
    let rec = store.blob(d)?.ok_or_else(|| Error::NotInStore {
        path: store.path().to_path_buf(),
        kind: "blob",
        digest: *d,
        hint: ": pull the image again",
    })?;
    rebuild::rebuild_to_file_and(store, d, &rec, path, also)?;
    Ok(())
}

/// Pieces of a blob in flight to the registry, and how many may wait: the upload runs
/// beside the rebuild, a few MiB behind it at most.
const LIVE_PIECE: usize = 1 << 20;
const LIVE_QUEUE: usize = 4;

/// Rebuild blob `d` and upload it at the same time (rebuild ‖ upload). The bytes also go
/// to a spool file, which a retry uploads once the rebuild is done. The last piece is held
/// back until the rebuild has checked the digest, so the registry never receives a whole
/// blob that was not verified; a wrong rebuild ends the upload with an error instead.
async fn upload_while_rebuilding(
    ctx: &Ctx,
    registries: &crate::oci::registry::Registries,
    image: &RegistryRef,
    d: &Digest,
    size: u64,
) -> Result<()> {
    let path = spool_path(&ctx.store, d)?;
    let (tx, rx) = tokio::sync::mpsc::channel(LIVE_QUEUE);
    let (abandoned, stop) = tokio::sync::watch::channel(false);
    let (ready_tx, spool_ready) = tokio::sync::watch::channel(None);
    let producer = {
        let (store, d, path) = (ctx.store.clone(), *d, path.clone());
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut live = LiveBytes {
                tx,
                stop,
                rt,
                piece: Vec::with_capacity(LIVE_PIECE),
                held: None,
                open: true,
            };
            let made = write_blob(&store, &d, &path, &mut live);
            // On failure the upload learns it before the stream ends, so it does not retry.
            match &made {
                Ok(()) => {
                    live.release();
                    let _ = ready_tx.send(Some(true));
                }
                Err(e) => {
                    let _ = ready_tx.send(Some(false));
                    live.refuse(e);
                }
            }
            made
        })
    };
    let bytes =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) }).boxed();
    let live = crate::oci::registry::LiveBlob {
        bytes,
        abandoned,
        spool_ready,
    };
    let bar = output::bytes_bar(size, format!("push {}", d.short()));
    let b2 = bar.clone();
    let uploaded = registries
        .push_blob_live(image, d, size, Some(live), &path, &move |n| b2.set_position(n))
        .await;
    bar.finish_and_clear();
    // A failed rebuild is the cause of a failed upload: its error comes first.
    let made = producer.await.map_err(join_err);
    let _ = std::fs::remove_file(&path);
    made??;
    uploaded
}

/// The writer end of a live upload: rebuilt bytes cut into pieces and sent one piece
/// behind (see `upload_while_rebuilding`).
struct LiveBytes {
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    /// Set when the upload gave up on these bytes.
    stop: tokio::sync::watch::Receiver<bool>,
    rt: tokio::runtime::Handle,
    piece: Vec<u8>,
    /// The last full piece: sent when the next one is full, or once the blob is verified.
    held: Option<bytes::Bytes>,
    /// False once the upload stopped taking bytes (a retry sends the spool file).
    open: bool,
}

impl LiveBytes {
    fn send(&mut self, item: std::io::Result<bytes::Bytes>) {
        if !self.open {
            return;
        }
        let (tx, stop) = (&self.tx, &mut self.stop);
        // The rebuild runs on a blocking thread: it waits here while the upload is behind,
        // and stops waiting if the upload gives up without dropping the stream.
        self.open = self.rt.block_on(async {
            tokio::select! {
                sent = tx.send(item) => sent.is_ok(),
                _ = stop.wait_for(|s| *s) => false,
            }
        });
    }

    /// The blob is verified: send the rest.
    fn release(mut self) {
        if let Some(h) = self.held.take() {
            self.send(Ok(h));
        }
        let last = std::mem::take(&mut self.piece);
        if !last.is_empty() {
            self.send(Ok(last.into()));
        }
    }

    /// The blob is wrong: the upload must not complete.
    fn refuse(mut self, why: &Error) {
        self.send(Err(std::io::Error::other(format!("the rebuild failed: {why}"))));
    }
}

impl Write for LiveBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.open {
            self.piece.extend_from_slice(buf);
            if self.piece.len() >= LIVE_PIECE {
                let full = std::mem::replace(&mut self.piece, Vec::with_capacity(LIVE_PIECE));
                if let Some(h) = self.held.replace(full.into()) {
                    self.send(Ok(h));
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn push_manifests(sink: &Sink, parts: &ImageParts, top: &Digest) -> Result<()> {
    for (d, mt, bytes) in &parts.manifests {
        let is_top = d == top;
        match sink {
            Sink::Registry { registries, image } => {
                // Children by digest; the top manifest by tag (or by digest when the
                // destination names none).
                let by = match (&image.tag, is_top) {
                    (Some(t), true) => t.clone(),
                    _ => d.to_string(),
                };
                registries.push_manifest(image, &by, bytes, mt).await?;
            }
            Sink::Layout { layout, reference } => {
                layout.put_blob_bytes(d, bytes)?;
                if is_top {
                    layout.tag(reference.as_deref(), d, mt, bytes.len() as u64)?;
                }
            }
        }
    }
    Ok(())
}

/// Where a stored image goes in a destination registry: same repository path, under
/// `dest`'s registry and namespace.
pub fn destination_for(name: &str, dest: &crate::oci::reference::Destination) -> Result<RegistryRef> {
    let r = crate::oci::reference::parse_registry_ref(name)?;
    Ok(r.rehomed(dest))
}
