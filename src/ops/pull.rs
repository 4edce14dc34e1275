//! `booster pull`: fetch images (manifests and indexes verbatim, configs, layers) from a
//! registry, an OCI layout or a docker-archive into the store. Layers already stored are
//! not fetched again; new ones are downloaded (digest checked while streaming), ingested
//! and, unless they are only a delta base, analysed so they can be rebuilt bit-exactly.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::id::Digest;
use crate::layer::{self, Analysis, BlobOutcome};
use crate::oci::manifest::{self, Descriptor, MAX_DOC_BLOB, Parsed, Platform};
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::oci::referrers::{self, AttachedImage};
use crate::oci::registry::{RawManifest, Registries};
use crate::oci::source::Source;
use crate::output;
use crate::store::{Doc, ImageRecord, Store};

/// Shared by every verb: the store and the registry clients.
#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<Store>,
    pub registries: Arc<Registries>,
    /// Parallel blob transfers and layer analyses.
    pub jobs: usize,
    /// `--referrers all|none`: whether what refers to an image travels with it.
    pub referrers: bool,
    /// `--verify-key`: images are pushed only with a cosign signature by one of these.
    pub verify_keys: Option<Arc<crate::oci::cosign::TrustedKeys>>,
    /// Blobs being fetched and ingested right now: a second task wanting the same blob
    /// waits for the first instead of downloading it again.
    inflight: Arc<std::sync::Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Ctx {
    pub fn new(store: Arc<Store>, registries: Arc<Registries>, jobs: usize) -> Ctx {
        Ctx {
            store,
            registries,
            jobs,
            referrers: true,
            verify_keys: None,
            inflight: Arc::default(),
        }
    }

    /// The same context pushing only images signed by one of `keys` (none: no check).
    pub fn with_verify_keys(mut self, keys: crate::oci::cosign::TrustedKeys) -> Ctx {
        self.verify_keys = (!keys.is_empty()).then(|| Arc::new(keys));
        self
    }

    /// The same context with referrers carried (`all`) or left behind (`none`).
    pub fn with_referrers(mut self, on: bool) -> Ctx {
        self.referrers = on;
        self
    }

    fn blob_lock(&self, d: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(*d)
            .or_default()
            .clone()
    }
}

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFilter {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl PlatformFilter {
    pub fn parse(s: &str) -> Result<PlatformFilter> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] => Ok(PlatformFilter {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] => Ok(PlatformFilter {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(Error::Usage(format!(
                "--platform {s}: expected OS/ARCH[/VARIANT], e.g. linux/amd64"
            ))),
        }
    }

    fn matches(&self, p: &Platform) -> bool {
        p.os == self.os
            && p.architecture == self.arch
            && (self.variant.is_none() || p.variant.as_deref() == self.variant.as_deref())
    }
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub platform: Option<PlatformFilter>,
    pub analysis: Analysis,
    /// Blobs to ingest only as delta bases even when `analysis` is `Full` (the layers a
    /// diff's new images share with its old ones: the receiver has them).
    pub base_only_blobs: Arc<HashSet<Digest>>,
    /// Layers not to fetch at all (an apply's base layers that its patch uses for no bytes
    /// and that the destination already has). An image pulled without some of its layers
    /// is incomplete: its documents are stored, its image record is not.
    pub skip_layers: Arc<HashSet<Digest>>,
    /// Also pull what refers to the image (signatures, attestations, SBOMs, OCI 1.1
    /// referrers), each recorded as an image of its own (`oci::referrers`). On unless the
    /// pull only feeds a delta base; `--referrers none` turns it off for a whole command.
    pub referrers: bool,
}

impl PullOptions {
    pub fn new(platform: Option<PlatformFilter>, analysis: Analysis) -> PullOptions {
        PullOptions {
            platform,
            analysis,
            base_only_blobs: Arc::default(),
            skip_layers: Arc::default(),
            referrers: analysis == Analysis::Full,
        }
    }

    fn analysis_for(&self, d: &Digest) -> Analysis {
        if self.base_only_blobs.contains(d) {
            Analysis::BaseOnly
        } else {
            self.analysis
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PulledImage {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub manifests: usize,
    pub layers: usize,
    pub layers_fetched: Vec<BlobOutcome>,
    pub layers_already_stored: usize,
    /// Layers left out on purpose (`PullOptions::skip_layers`); when non-zero the image is
    /// not recorded in the store.
    pub layers_skipped: usize,
    pub bytes_downloaded: u64,
    /// Set when `--platform` picked one manifest out of an index.
    pub platform_selected_from: Option<Digest>,
    /// What refers to the image, pulled with it and recorded as images of their own.
    pub attached: Vec<AttachedImage>,
}

impl PulledImage {
    /// The image's own name, then those of what is attached to it.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.name).chain(self.attached.iter().map(|a| &a.name))
    }
}

/// The name an image is recorded under in the store.
pub fn image_name(r: &ImageRef) -> String {
    match r {
        ImageRef::Registry(x) => x.name(),
        ImageRef::OciLayout { dir, reference } => {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            match reference {
                Some(x) => format!("oci:{}:{x}", dir.display()),
                None => format!("oci:{}", dir.display()),
            }
        }
        ImageRef::DockerArchive { file, reference } => {
            let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            match reference {
                Some(x) => format!("docker-archive:{}:{x}", file.display()),
                None => format!("docker-archive:{}", file.display()),
            }
        }
    }
}

/// Everything one image consists of, read from its source.
struct Fetched {
    /// Manifests and indexes in write order (children before parents).
    docs: Vec<(Digest, Doc)>,
    /// Blobs (configs, layers) by digest with their descriptor.
    blobs: BTreeMap<Digest, Descriptor>,
    /// Which of `blobs` are configs (kept as documents when small and JSON); layers of any
    /// media type are ingested, even JSON ones (signatures, SBOMs).
    configs: HashSet<Digest>,
    target: (Digest, String),
    selected_from: Option<Digest>,
    manifests: usize,
}

/// Pull one image and, unless turned off, what refers to it.
pub async fn pull_image(ctx: &Ctx, r: &ImageRef, opts: &PullOptions) -> Result<PulledImage> {
    // From the first chunk to the last image record: gc must not sweep a layer stored
    // (or found stored) here before the image record that links it is written.
    let _session = ctx.store.writer_gate();
    let (mut report, manifests) = pull_one(ctx, r, opts).await?;
    if opts.referrers && ctx.referrers && report.layers_skipped == 0 {
        if let Some(index) = report.platform_selected_from {
            tracing::warn!(
                "{}: --platform keeps one manifest of the index {index}: what refers to the index (a signature of the whole image) stays behind with it",
                report.name
            );
        }
        report.attached = pull_attached(ctx, r, manifests, opts).await?;
    }
    Ok(report)
}

/// Pull one image; also returns the digests of its manifests (top and children).
async fn pull_one(ctx: &Ctx, r: &ImageRef, opts: &PullOptions) -> Result<(PulledImage, Vec<Digest>)> {
    let source = Source::open(r, &ctx.registries)?;
    let name = image_name(r);
    tracing::info!("pulling {name}");
    let fetched = fetch_manifests(&source, &name, opts).await?;
    let mut report = PulledImage {
        name: name.clone(),
        digest: fetched.target.0,
        media_type: fetched.target.1.clone(),
        manifests: fetched.manifests,
        layers: 0,
        layers_fetched: Vec::new(),
        layers_already_stored: 0,
        layers_skipped: 0,
        bytes_downloaded: 0,
        platform_selected_from: fetched.selected_from,
        attached: Vec::new(),
    };
    let manifests: Vec<Digest> = fetched.docs.iter().map(|(d, _)| *d).collect();
    let mut configs = Vec::new();
    let mut layers = Vec::new();
    for (d, desc) in &fetched.blobs {
        if fetched.configs.contains(d) && desc.size <= MAX_DOC_BLOB && is_config_like(&desc.media_type) {
            configs.push((*d, desc.clone()));
        } else {
            layers.push((*d, desc.clone()));
        }
    }
    report.layers = layers.len();
    layers.retain(|(d, _)| !opts.skip_layers.contains(d));
    report.layers_skipped = report.layers - layers.len();
    for (d, desc) in &configs {
        if ctx.store.doc(d)?.is_some() {
            continue;
        }
        let bytes = fetch_small_blob(ctx, &source, d, desc.size).await?;
        report.bytes_downloaded += bytes.len() as u64;
        ctx.store.put_doc(
            d,
            &Doc {
                media_type: desc.media_type.clone(),
                data: bytes,
            },
        )?;
    }
    let todo: Vec<(Digest, Descriptor)> = layers
        .into_iter()
        .filter(|(d, _)| !already_stored(&ctx.store, d, opts.analysis_for(d)).unwrap_or(false))
        .collect();
    let source = Arc::new(source);
    let overall = output::count_bar(todo.len() as u64, format!("pull {name}"));
    let results: Vec<Option<BlobOutcome>> = futures_util::stream::iter(todo.into_iter().map(|(d, desc)| {
        let ctx = ctx.clone();
        let source = source.clone();
        let analysis = opts.analysis_for(&d);
        let overall = overall.clone();
        async move {
            let _tick = Tick(overall);
            // One task per blob at a time; whoever waited finds it stored.
            let lock = ctx.blob_lock(&d);
            let _held = lock.lock().await;
            if already_stored(&ctx.store, &d, analysis)? {
                return Ok(None);
            }
            fetch_and_ingest(&ctx, &source, &d, &desc, analysis)
                .await
                .map(Some)
        }
    }))
    .buffer_unordered(ctx.jobs.max(1))
    .try_collect()
    .await?;
    overall.finish_and_clear();
    let results: Vec<BlobOutcome> = results.into_iter().flatten().collect();
    report.layers_already_stored = report.layers - report.layers_skipped - results.len();
    report.bytes_downloaded += results.iter().map(|o| o.size).sum::<u64>();
    report.layers_fetched = results;
    for (d, doc) in &fetched.docs {
        ctx.store.put_doc(d, doc)?;
    }
    if report.layers_skipped == 0 {
        ctx.store.set_image(
            &name,
            &ImageRecord {
                digest: fetched.target.0,
                media_type: fetched.target.1,
            },
        )?;
    }
    let left_out = match report.layers_skipped {
        0 => String::new(),
        n => format!(", {n} left out (not recorded as an image)"),
    };
    tracing::info!(
        "pulled {name} ({}): {} layers, {} fetched, {} already stored{left_out}, {} downloaded",
        report.digest,
        report.layers,
        report.layers_fetched.len(),
        report.layers_already_stored,
        output::human_bytes(report.bytes_downloaded)
    );
    Ok((report, manifests))
}

/// Find and pull what refers to the manifests `subjects` of the image `r` (and, to
/// `referrers::MAX_DEPTH` levels, what refers to those), trying at most
/// `referrers::MAX_PER_IMAGE` of them. A referrer that cannot be listed or pulled (a
/// dangling entry after a registry's garbage collection, a manifest about something
/// else) is left behind with a warning: the image itself still moves, and `--verify-key`
/// downstream refuses an image whose signature did not come.
async fn pull_attached(
    ctx: &Ctx,
    r: &ImageRef,
    subjects: Vec<Digest>,
    opts: &PullOptions,
) -> Result<Vec<AttachedImage>> {
    let source = Source::open(r, &ctx.registries)?;
    let Some(finder) = Finder::open(&source, r) else {
        return Ok(Vec::new());
    };
    let plain = PullOptions {
        referrers: false,
        platform: None,
        ..opts.clone()
    };
    let mut seen: HashSet<Digest> = subjects.iter().copied().collect();
    let mut frontier = subjects;
    let mut out: Vec<AttachedImage> = Vec::new();
    let mut tried = 0usize;
    for _ in 0..referrers::MAX_DEPTH {
        let mut next = Vec::new();
        for subject in &frontier {
            for found in finder.find(&source, subject).await {
                if found.digest.is_some_and(|d| seen.contains(&d)) {
                    continue;
                }
                if tried >= referrers::MAX_PER_IMAGE {
                    tracing::warn!(
                        "{r}: more than {} attached manifests; the rest stay behind",
                        referrers::MAX_PER_IMAGE
                    );
                    return Ok(out);
                }
                tried += 1;
                if let Some(d) = found.digest.filter(|_| found.by_subject)
                    && !names_subject(&source, &d, subject).await
                {
                    tracing::warn!(
                        "{r}: {d} is listed as referring to {subject} but does not name it; left behind"
                    );
                    continue;
                }
                let (pulled, manifests) = match pull_one(ctx, &found.reference, &plain).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(
                            "{r}: {} (referring to {subject}) cannot be pulled, left behind: {e}",
                            found.reference
                        );
                        continue;
                    }
                };
                if !seen.insert(pulled.digest) {
                    continue;
                }
                let Some(doc) = ctx.store.doc(&pulled.digest)? else {
                    continue;
                };
                let Some(a) = referrers::attached(&pulled.name, &doc.data) else {
                    continue;
                };
                tracing::info!(
                    "{r}: pulled {} {} ({})",
                    a.kind.plural().trim_end_matches('s'),
                    pulled.name,
                    a.artifact_type
                );
                next.extend(manifests);
                out.push(AttachedImage {
                    name: pulled.name,
                    digest: pulled.digest,
                    subject: a.subject,
                    kind: a.kind,
                    artifact_type: a.artifact_type,
                    bytes: referrers::manifest_and_blob_bytes(&doc.data, &doc.media_type),
                });
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(out)
}

/// Whether the manifest `d` at the source names `subject` (read before any of its blobs).
async fn names_subject(source: &Source, d: &Digest, subject: &Digest) -> bool {
    match source.manifest(d).await {
        Ok(m) => referrers::subject_of(&m.bytes) == Some(*subject),
        Err(_) => false,
    }
}

/// A referrer found at a source, as a reference to pull it by.
struct FoundReferrer {
    reference: ImageRef,
    digest: Option<Digest>,
    /// Found by its `subject` (a referrers list or index entry), to be checked against
    /// the manifest itself; cosign's tags name their subject themselves.
    by_subject: bool,
}

/// Looks up what refers to a manifest at one source: the registry's referrers API (or its
/// tag-schema index) and cosign's three tags, or a layout's index.json.
enum Finder {
    Registry {
        image: RegistryRef,
    },
    Layout {
        dir: PathBuf,
        entries: Vec<(Digest, Option<String>)>,
    },
}

impl Finder {
    fn open(source: &Source, r: &ImageRef) -> Option<Finder> {
        match (source, r) {
            (Source::Registry { image, .. }, _) => Some(Finder::Registry {
                image: RegistryRef {
                    tag: None,
                    digest: None,
                    ..image.clone()
                },
            }),
            (Source::Layout { layout, .. }, ImageRef::OciLayout { dir, .. }) => Some(Finder::Layout {
                dir: dir.clone(),
                entries: layout.entries().ok()?,
            }),
            _ => None,
        }
    }

    /// What refers to `subject`; what cannot be looked up is said in a warning.
    async fn find(&self, source: &Source, subject: &Digest) -> Vec<FoundReferrer> {
        match (self, source) {
            (Finder::Registry { image }, Source::Registry { registries, .. }) => {
                find_in_registry(registries, image, subject).await
            }
            (Finder::Layout { dir, entries }, Source::Layout { layout, .. }) => {
                find_in_layout(layout, dir, entries, subject)
            }
            _ => Vec::new(),
        }
    }
}

async fn find_in_registry(
    registries: &Registries,
    image: &RegistryRef,
    subject: &Digest,
) -> Vec<FoundReferrer> {
    let mut out = Vec::new();
    // Looked up one by one: a repository's tag list can be long and paged.
    for tag in referrers::cosign_tags(subject) {
        match registries.find_manifest_by_tag(image, &tag).await {
            Ok(Some(m)) => out.push(FoundReferrer {
                reference: ImageRef::Registry(RegistryRef {
                    tag: Some(tag),
                    ..image.clone()
                }),
                digest: Some(m.digest),
                by_subject: false,
            }),
            Ok(None) => {}
            Err(e) => tracing::warn!("{image}: looking up cosign's tag {tag}: {e}"),
        }
    }
    match registries.referrers(image, subject).await {
        Ok(list) => {
            for d in list {
                let Ok(digest) = d.digest() else { continue };
                out.push(FoundReferrer {
                    reference: ImageRef::Registry(RegistryRef {
                        digest: Some(digest),
                        ..image.clone()
                    }),
                    digest: Some(digest),
                    by_subject: true,
                });
            }
        }
        Err(e) => tracing::warn!("{image}: listing the referrers of {subject}: {e}"),
    }
    out
}

fn find_in_layout(
    layout: &crate::oci::layout::OciLayout,
    dir: &std::path::Path,
    entries: &[(Digest, Option<String>)],
    subject: &Digest,
) -> Vec<FoundReferrer> {
    let at = |reference: String, digest: Digest, by_subject: bool| FoundReferrer {
        reference: ImageRef::OciLayout {
            dir: dir.to_path_buf(),
            reference: Some(reference),
        },
        digest: Some(digest),
        by_subject,
    };
    let cosign: Vec<String> = referrers::cosign_tags(subject).collect();
    let schema = referrers::tag_schema_tag(subject);
    let mut out = Vec::new();
    for (digest, name) in entries {
        match name {
            Some(n) if cosign.contains(n) => out.push(at(n.clone(), *digest, false)),
            Some(n) if *n == schema => {
                let listed = layout
                    .read_blob(digest)
                    .and_then(|bytes| manifest::parse(&bytes, None));
                if let Ok(Parsed::Index { manifests, .. }) = listed {
                    for m in manifests {
                        if let Ok(d) = m.digest() {
                            out.push(at(d.to_string(), d, true));
                        }
                    }
                }
            }
            Some(_) => {}
            None => {
                if layout
                    .read_blob(digest)
                    .is_ok_and(|bytes| referrers::subject_of(&bytes) == Some(*subject))
                {
                    out.push(at(digest.to_string(), *digest, true));
                }
            }
        }
    }
    out
}

/// Configs and other small JSON blobs are kept as documents.
fn is_config_like(media_type: &str) -> bool {
    media_type.ends_with("json") || media_type.contains("config")
}

fn already_stored(store: &Store, d: &Digest, analysis: Analysis) -> Result<bool> {
    Ok(match store.blob(d)? {
        Some(rec) => {
            (analysis == Analysis::BaseOnly || rec.method.can_rebuild()) && store.has_recipe(&rec.content)?
        }
        None => false,
    })
}

/// Advances an overall bar when a layer task ends, however it ends.
struct Tick(indicatif::ProgressBar);

impl Drop for Tick {
    fn drop(&mut self) {
        self.0.inc(1);
    }
}

/// The blobs (configs and layers) the images `refs` are made of, from their manifests only.
pub async fn blobs_of(ctx: &Ctx, refs: &[ImageRef]) -> Result<HashSet<Digest>> {
    let mut out = HashSet::new();
    for r in refs {
        let source = Source::open(r, &ctx.registries)?;
        let f = fetch_manifests(
            &source,
            &image_name(r),
            &PullOptions::new(None, Analysis::BaseOnly),
        )
        .await?;
        out.extend(f.blobs.keys().copied());
    }
    Ok(out)
}

async fn fetch_manifests(source: &Source, name: &str, opts: &PullOptions) -> Result<Fetched> {
    let (top, declared) = source.top().await?;
    let parsed = manifest::parse(&top.bytes, declared.as_deref())?;
    let mut f = Fetched {
        docs: Vec::new(),
        blobs: BTreeMap::new(),
        configs: HashSet::new(),
        target: (top.digest, parsed.media_type().to_string()),
        selected_from: None,
        manifests: 0,
    };
    match (&parsed, &opts.platform) {
        (Parsed::Index { manifests, .. }, Some(p)) => {
            let chosen = manifests
                .iter()
                .find(|d| d.platform.as_ref().is_some_and(|x| p.matches(x)))
                .ok_or_else(|| {
                    let have: Vec<String> = manifests
                        .iter()
                        .filter_map(|d| d.platform.as_ref().map(|x| x.describe()))
                        .collect();
                    Error::format(
                        name,
                        format!(
                            "no manifest for platform {}/{} (the index has: {})",
                            p.os,
                            p.arch,
                            have.join(", ")
                        ),
                    )
                })?;
            let child = source.manifest(&chosen.digest()?).await?;
            let child_parsed = manifest::parse(&child.bytes, Some(&chosen.media_type))?;
            tracing::info!(
                "{name}: selected {} for {}; the index itself is not kept",
                child.digest,
                chosen.platform.as_ref().map(|x| x.describe()).unwrap_or_default()
            );
            f.selected_from = Some(top.digest);
            f.target = (child.digest, child_parsed.media_type().to_string());
            add_manifest(source, &mut f, child, child_parsed, 0).await?;
        }
        _ => add_manifest(source, &mut f, top, parsed, 0).await?,
    }
    Ok(f)
}

/// Record a manifest (and, for an index, its children) and collect its blobs.
fn add_manifest<'a>(
    source: &'a Source,
    f: &'a mut Fetched,
    raw: RawManifest,
    parsed: Parsed,
    depth: usize,
) -> futures_util::future::BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        if depth > 4 {
            return Err(Error::format("index", "indexes nested more than 4 deep"));
        }
        f.manifests += 1;
        match &parsed {
            Parsed::Index { manifests, .. } => {
                for d in manifests {
                    let digest = d.digest()?;
                    if manifest::is_index(&d.media_type)
                        || manifest::is_manifest(&d.media_type)
                        || d.media_type.is_empty()
                    {
                        let child = source.manifest(&digest).await?;
                        let child_parsed = manifest::parse(&child.bytes, Some(&d.media_type))?;
                        add_manifest(source, f, child, child_parsed, depth + 1).await?;
                    } else {
                        f.blobs.insert(digest, d.clone());
                    }
                }
            }
            Parsed::Manifest { config, layers, .. } => {
                f.blobs.insert(config.digest()?, config.clone());
                f.configs.insert(config.digest()?);
                for l in layers {
                    f.blobs.insert(l.digest()?, l.clone());
                }
            }
        }
        f.docs.push((
            raw.digest,
            Doc {
                media_type: parsed.media_type().to_string(),
                data: raw.bytes,
            },
        ));
        Ok(())
    })
}

/// A temp file name unique in the process: the same blob can be in flight twice (both
/// sides of a diff share a base layer).
fn spool_path(store: &Store, d: &Digest) -> Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(store
        .tmp_dir()?
        .join(format!("{}.{}.{n}.blob", d.hex(), std::process::id())))
}

/// A small blob's bytes (a config, a signature payload), checked against `d` and `size`.
pub async fn fetch_small_blob(ctx: &Ctx, source: &Source, d: &Digest, size: u64) -> Result<Vec<u8>> {
    let path = spool_path(&ctx.store, d)?;
    let res = source.fetch_blob(d, Some(size), &path, &|_| {}).await;
    let bytes = res
        .and_then(|_| std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e)));
    let _ = std::fs::remove_file(&path);
    bytes
}

async fn fetch_and_ingest(
    ctx: &Ctx,
    source: &Source,
    d: &Digest,
    desc: &Descriptor,
    analysis: Analysis,
) -> Result<BlobOutcome> {
    let path = spool_path(&ctx.store, d)?;
    let bar = output::bytes_bar(desc.size, format!("fetch {}", d.short()));
    let b2 = bar.clone();
    let fetched = source
        .fetch_blob(d, Some(desc.size), &path, &move |n| b2.set_position(n))
        .await;
    if let Err(e) = fetched {
        bar.finish_and_clear();
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    output::restart_as_spinner(&bar, format!("ingest {}", d.short()));
    let store = ctx.store.clone();
    let d2 = *d;
    let mt = desc.media_type.clone();
    let p2 = path.clone();
    let b3 = bar.clone();
    let out = tokio::task::spawn_blocking(move || {
        layer::ingest_blob_file(&store, &p2, &d2, &mt, analysis, &mut |n| b3.set_position(n))
    })
    .await
    .map_err(|e| Error::io("ingest task", std::io::Error::other(e.to_string())))?;
    bar.finish_and_clear();
    let _ = std::fs::remove_file(&path);
    let out = out?;
    tracing::info!(
        "layer {}: {} → {} plain, {} new chunks, {}",
        d.short(),
        output::human_bytes(out.size),
        output::human_bytes(out.plain.len),
        out.plain.new_chunks,
        out.method
    );
    Ok(out)
}
