//! `booster push` and the push engine behind `apply` and `import --push`: for each image,
//! make sure every blob is at the destination (skip those it has, mount those another of
//! its repositories has, rebuild and upload the rest, each rebuild verified against its
//! digest first), then push manifests with their exact bytes — children before the index —
//! and finally the tag.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, TryStreamExt};

use super::pull::Ctx;
use crate::compress::rebuild;
use crate::error::{Error, Result};
use crate::id::Digest;
use crate::oci::manifest::{self, Parsed};
use crate::oci::reference::RegistryRef;
use crate::oci::source::Sink;
use crate::output;
use crate::store::Store;

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

    fn set(&self, registry: &str, d: &Digest, repo: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((registry.to_string(), *d))
            .or_insert_with(|| repo.to_string());
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
    let mut parts = ImageParts {
        manifests: Vec::new(),
        blobs: BTreeMap::new(),
    };
    walk(store, top, &mut parts, 0)?;
    Ok(parts)
}

fn walk(store: &Store, d: &Digest, parts: &mut ImageParts, depth: usize) -> Result<()> {
    if depth > 4 || parts.manifests.iter().any(|(x, _, _)| x == d) {
        return Ok(());
    }
    let doc = store.doc(d)?.ok_or_else(|| Error::NotInStore {
        path: store.path().to_path_buf(),
        kind: "manifest",
        digest: *d,
        hint: ": pull the image again",
    })?;
    match manifest::parse(&doc.data, Some(&doc.media_type))? {
        Parsed::Index { manifests, .. } => {
            for m in &manifests {
                let cd = m.digest()?;
                if manifest::is_index(&m.media_type)
                    || manifest::is_manifest(&m.media_type)
                    || m.media_type.is_empty()
                {
                    walk(store, &cd, parts, depth + 1)?;
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

/// Every blob the destination lacks must be rebuildable before anything is pushed: fail
/// early with the list instead of half-pushing an image.
fn check_complete<'a>(store: &Store, blobs: impl Iterator<Item = &'a Digest>, name: &str) -> Result<()> {
    let mut missing = Vec::new();
    for d in blobs {
        if store.doc(d)?.is_some() {
            continue;
        }
        match store.blob(d)? {
            Some(rec) if rec.method.can_rebuild() => {}
            Some(_) => missing.push(format!(
                "{d} (stored as a delta base only, and the destination lacks it)"
            )),
            None => missing.push(format!("{d} (missing)")),
        }
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
                && registries.mount_blob(image, &from, d).await?
            {
                return Ok(BlobPush::Mounted);
            }
            let file = materialize(ctx, d, media_type).await?;
            let bar = output::bytes_bar(size, format!("push {}", d.short()));
            let b2 = bar.clone();
            let res = registries
                .push_blob_file(image, d, &file, &move |n| b2.set_position(n))
                .await;
            bar.finish_and_clear();
            let _ = std::fs::remove_file(&file);
            res?;
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

/// Write the blob's exact bytes to a temp file: documents as they are, blobs rebuilt from
/// their recipe and method, and in both cases checked against the digest.
pub async fn materialize(ctx: &Ctx, d: &Digest, _media_type: &str) -> Result<PathBuf> {
    let store = ctx.store.clone();
    let d = *d;
    tokio::task::spawn_blocking(move || materialize_blocking(&store, &d))
        .await
        .map_err(|e| Error::io("rebuild task", std::io::Error::other(e.to_string())))?
}

pub fn materialize_blocking(store: &Store, d: &Digest) -> Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = store
        .tmp_dir()?
        .join(format!("{}.{}.{n}.push", d.hex(), std::process::id()));
    if let Some(doc) = store.doc(d)? {
        let actual = Digest::of(&doc.data);
        if actual != *d {
            return Err(Error::DigestMismatch {
                what: format!("stored document {d}"),
                expected: *d,
                actual,
            });
        }
        std::fs::write(&path, &doc.data).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        return Ok(path);
    }
    let rec = store.blob(d)?.ok_or_else(|| Error::NotInStore {
        path: store.path().to_path_buf(),
        kind: "blob",
        digest: *d,
        hint: ": pull the image again",
    })?;
    rebuild::rebuild_to_file(store, d, &rec, &path)?;
    Ok(path)
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
