//! Bundles as OCI artifacts (`store-format.md` 6.6): a bundle's volumes pushed as the blobs
//! of an image manifest with booster's `artifactType`, tagged by the target set it brings and
//! the base it needs, so registries, their mirrors and pull-through caches carry bundles like
//! any image, and a replica finds the bundle for its state without asking a primary.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;

use super::pull::Ctx;
use crate::error::{Error, IoContext, Result};
use crate::id::{Digest, Sha256};
use crate::oci::layout::OciLayout;
use crate::oci::manifest::{Descriptor, OCI_MANIFEST};
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::oci::source::sha256_of_file;
use crate::store::Store;

pub const BUNDLE_ARTIFACT: &str = "application/vnd.booster.bundle.v1";
pub const RELEASE_ARTIFACT: &str = "application/vnd.booster.release.v1";
pub const VOLUME_MEDIA_TYPE: &str = "application/vnd.booster.bundle.volume.v1";
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON: &[u8] = b"{}";
const TITLE: &str = "org.opencontainers.image.title";
const A_TARGETS: &str = "io.booster.bundle.targets";
const A_BASE: &str = "io.booster.bundle.base";
const A_IMAGES: &str = "io.booster.bundle.images";
const A_BASE_IMAGES: &str = "io.booster.bundle.base-images";
const A_BYTES: &str = "io.booster.bundle.bytes";
const A_BASE_STREAMS: &str = "io.booster.bundle.base-streams";
/// The tag naming the target set replicas converge to.
pub const RELEASE_TAG: &str = "current";
/// Volume size when none is asked for: small enough to fetch in parallel and resume per
/// blob, large enough that a manifest stays short.
pub const DEFAULT_VOLUME: u64 = 128 << 20;
/// More volumes than this in one manifest is not something booster writes.
const MAX_VOLUMES: usize = 100_000;

/// Bytes moved so far of all volumes, and the total: `(done, total)`.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Adds up the per-volume positions transfers report (each from 0, again on a retry).
struct Tally<'a> {
    at: Vec<std::sync::atomic::AtomicU64>,
    done: std::sync::atomic::AtomicU64,
    total: u64,
    report: Progress<'a>,
}

impl<'a> Tally<'a> {
    fn new(volumes: usize, total: u64, report: Progress<'a>) -> Tally<'a> {
        Tally {
            at: (0..volumes).map(|_| Default::default()).collect(),
            done: Default::default(),
            total,
            report,
        }
    }

    fn volume_at(&self, i: usize, now: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let before = self.at[i].swap(now, Relaxed);
        let done = if now >= before {
            self.done.fetch_add(now - before, Relaxed) + (now - before)
        } else {
            self.done.fetch_sub(before - now, Relaxed) - (before - now)
        };
        (self.report)(done, self.total);
    }
}

/// What a bundle brings and what it needs, as its annotations say.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Labels {
    /// `name@digest`, sorted.
    pub images: Vec<String>,
    /// Manifest digests the receiver must hold, sorted and unique.
    pub base_images: Vec<Digest>,
    /// The plain streams (layer contents) the bundle relies on, from its meta (6.2): what
    /// the receiver's store must hold for the import to succeed. Not part of the ids.
    pub base_streams: Vec<Digest>,
}

impl Labels {
    pub fn new(
        images: impl IntoIterator<Item = (String, Digest)>,
        base: impl IntoIterator<Item = Digest>,
    ) -> Labels {
        let mut images: Vec<String> = images.into_iter().map(|(n, d)| format!("{n}@{d}")).collect();
        images.sort();
        images.dedup();
        Labels {
            images,
            base_images: sorted_unique(base),
            base_streams: Vec::new(),
        }
    }

    pub fn targets_id(&self) -> String {
        targets_id(&self.images)
    }

    pub fn base_id(&self) -> String {
        base_id(&self.base_images)
    }

    /// `TARGETS-BASE`.
    pub fn tag(&self) -> String {
        format!("{}-{}", self.targets_id(), self.base_id())
    }

    /// The manifest digests of the images brought.
    pub fn image_digests(&self) -> Vec<Digest> {
        self.images
            .iter()
            .filter_map(|i| i.rsplit_once('@').and_then(|(_, d)| d.parse().ok()))
            .collect()
    }
}

fn sorted_unique(d: impl IntoIterator<Item = Digest>) -> Vec<Digest> {
    let mut v: Vec<Digest> = d.into_iter().collect();
    v.sort_by_key(|d| d.0);
    v.dedup();
    v
}

fn short_sha(lines: impl Iterator<Item = String>) -> String {
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    h.finish().hex()[..16].to_string()
}

/// `t` ‖ 16 hex digits of sha256 over the sorted `name@digest` lines.
pub fn targets_id(images: &[String]) -> String {
    let mut v = images.to_vec();
    v.sort();
    format!("t{}", short_sha(v.into_iter()))
}

/// `b` ‖ 16 hex digits of sha256 over the sorted, unique digests; `full` for none.
pub fn base_id(digests: &[Digest]) -> String {
    let v = sorted_unique(digests.iter().copied());
    if v.is_empty() {
        return "full".into();
    }
    format!("b{}", short_sha(v.iter().map(|d| d.to_string())))
}

/// The images a store holds, as the base a bundle for it may need.
pub fn held_images(store: &Store) -> Result<Vec<Digest>> {
    Ok(sorted_unique(store.images()?.into_iter().map(|(_, r)| r.digest)))
}

/// Where an artifact lives.
#[derive(Debug, Clone)]
pub enum Place {
    Registry(RegistryRef),
    Layout { dir: PathBuf, tag: Option<String> },
}

impl Place {
    /// `docker://REGISTRY/REPO[:TAG]`, `REGISTRY/REPO[:TAG]` or `oci:DIR[:TAG]`.
    pub fn parse(s: &str) -> Result<Place> {
        match ImageRef::parse(s)? {
            ImageRef::Registry(mut r) => {
                // A reference without a tag means the repository, not its `latest`.
                let body = s.strip_prefix("docker://").unwrap_or(s);
                let last = body.rsplit('/').next().unwrap_or_default();
                if !last.contains(':') && !body.contains('@') {
                    r.tag = None;
                }
                Ok(Place::Registry(r))
            }
            ImageRef::OciLayout { dir, reference } => Ok(Place::Layout { dir, tag: reference }),
            ImageRef::DockerArchive { .. } => Err(Error::Usage(format!(
                "{s}: bundles travel as OCI artifacts in a registry (docker://…) or an OCI layout (oci:…), not docker archives"
            ))),
        }
    }

    /// The repository (or layout), untagged, as the user writes it.
    pub fn repository(&self) -> String {
        match self {
            Place::Registry(r) => format!("docker://{}/{}", r.registry, r.repository),
            Place::Layout { dir, .. } => format!("oci:{}", dir.display()),
        }
    }

    fn describe(&self, tag: &str) -> String {
        match self {
            Place::Registry(r) => format!("docker://{}/{}:{tag}", r.registry, r.repository),
            Place::Layout { dir, .. } => format!("oci:{}:{tag}", dir.display()),
        }
    }

    fn user_tag(&self) -> Option<String> {
        match self {
            Place::Registry(r) => r.tag.clone().filter(|_| r.digest.is_none()),
            Place::Layout { tag, .. } => tag.clone(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    /// Where the bundle can be fetched, by its scheme tag.
    pub reference: String,
    pub tags: Vec<String>,
    pub manifest_digest: Digest,
    pub volumes: usize,
    pub bytes: u64,
    pub blobs_uploaded: usize,
    pub labels: Labels,
}

struct Volume {
    path: PathBuf,
    digest: Digest,
    size: u64,
    title: String,
}

/// Cuts a one-file bundle into volumes of at most `size` bytes in `dir` (a bundle that fits
/// one volume is used as it is). The volumes concatenate to the file (6.1).
pub fn cut_volumes(file: &Path, dir: &Path, size: u64) -> Result<Vec<PathBuf>> {
    let len = std::fs::metadata(file)
        .ctx(|| format!("reading {}", file.display()))?
        .len();
    if len <= size {
        return Ok(vec![file.to_path_buf()]);
    }
    std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let mut src = std::fs::File::open(file).ctx(|| format!("reading {}", file.display()))?;
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let p = volume_path(dir, out.len());
        let mut dst = std::fs::File::create(&p).ctx(|| format!("writing {}", p.display()))?;
        let n = std::io::copy(&mut (&mut src).take(size.min(left)), &mut dst)
            .ctx(|| format!("writing {}", p.display()))?;
        if n == 0 {
            return Err(Error::io(
                format!("reading {}", file.display()),
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the bundle got shorter while being cut",
                ),
            ));
        }
        left -= n;
        out.push(p);
    }
    Ok(out)
}

/// The base streams a bundle (its first volume, or its one file) relies on, from its meta.
fn base_streams_of(first: &Path) -> Result<Vec<Digest>> {
    let reader = crate::bundle::BundleReader::open(first)?;
    let meta = crate::bundle::Meta::decode(&reader.read(0)?).map_err(|e| {
        Error::format(
            format!("bundle {}", first.display()),
            format!("meta section: {e}"),
        )
    })?;
    Ok(sorted_unique(meta.base.iter().map(|b| b.content)))
}

fn volumes_of(files: &[PathBuf]) -> Result<Vec<Volume>> {
    files
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (digest, size) = sha256_of_file(p)?;
            Ok(Volume {
                path: p.clone(),
                digest,
                size,
                title: volume_name(i),
            })
        })
        .collect()
}

/// A number no other call in this process gets: temp names for concurrent publishes.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn empty_descriptor() -> serde_json::Value {
    json!({"mediaType": EMPTY_MEDIA_TYPE, "digest": Digest::of(EMPTY_JSON).to_string(), "size": EMPTY_JSON.len()})
}

fn bundle_manifest(volumes: &[Volume], labels: &Labels) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = volumes
        .iter()
        .map(|v| {
            json!({"mediaType": VOLUME_MEDIA_TYPE, "digest": v.digest.to_string(), "size": v.size,
                   "annotations": {TITLE: v.title}})
        })
        .collect();
    let bytes: u64 = volumes.iter().map(|v| v.size).sum();
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_ARTIFACT,
        "config": empty_descriptor(),
        "layers": layers,
        "annotations": {
            A_TARGETS: labels.targets_id(),
            A_BASE: labels.base_id(),
            A_IMAGES: serde_json::to_string(&labels.images).expect("json"),
            A_BASE_IMAGES: serde_json::to_string(&labels.base_images).expect("json"),
            A_BYTES: bytes.to_string(),
            A_BASE_STREAMS: serde_json::to_string(&labels.base_streams).expect("json"),
        },
    });
    serde_json::to_vec(&m).expect("json")
}

fn release_manifest(labels: &Labels) -> Vec<u8> {
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": RELEASE_ARTIFACT,
        "config": empty_descriptor(),
        "layers": [empty_descriptor()],
        "annotations": {
            A_TARGETS: labels.targets_id(),
            A_IMAGES: serde_json::to_string(&labels.images).expect("json"),
        },
    });
    serde_json::to_vec(&m).expect("json")
}

/// Pushes the bundle in `files` (its volumes in order, or one file) to `to`, tagged by the
/// scheme (and the tag `to` names); with `release`, also moves the release pointer
/// `current` to its target set.
pub async fn publish(
    ctx: &Ctx,
    files: &[PathBuf],
    labels: &Labels,
    to: &Place,
    release: bool,
    signer: Option<&crate::oci::cosign::SigningKey>,
    progress: Progress<'_>,
) -> Result<Published> {
    let vols = {
        let files = files.to_vec();
        tokio::task::spawn_blocking(move || volumes_of(&files))
            .await
            .map_err(|e| Error::io("hashing bundle volumes", std::io::Error::other(e.to_string())))??
    };
    let mut labels = labels.clone();
    labels.base_streams = {
        let first = files
            .first()
            .cloned()
            .ok_or_else(|| Error::Usage("no bundle to publish".into()))?;
        tokio::task::spawn_blocking(move || base_streams_of(&first))
            .await
            .map_err(|e| Error::io("reading the bundle's meta", std::io::Error::other(e.to_string())))??
    };
    let labels = &labels;
    let manifest = bundle_manifest(&vols, labels);
    let release = release.then(|| release_manifest(labels));
    let mut tags = vec![labels.tag()];
    tags.extend(to.user_tag().filter(|t| *t != labels.tag()));
    let uploaded = match to {
        Place::Registry(r) => {
            // Signatures first (a tag may name a manifest not pushed yet): a replica that
            // checks them never finds a bundle or release pointer of this primary unsigned.
            if let Some(key) = signer {
                super::signed::push_signature(ctx, r, &Digest::of(&manifest), key).await?;
                if let Some(release) = &release {
                    super::signed::push_signature(ctx, r, &Digest::of(release), key).await?;
                }
            }
            publish_to_registry(ctx, r, &vols, &manifest, release.as_deref(), &tags, progress).await?
        }
        Place::Layout { .. } if signer.is_some() => {
            return Err(Error::Usage(
                "signed bundles are published to registries only (docker://REGISTRY/REPO)".into(),
            ));
        }
        Place::Layout { dir, .. } => publish_to_layout(dir, &vols, &manifest, release.as_deref(), &tags)?,
    };
    Ok(Published {
        reference: to.describe(&labels.tag()),
        tags,
        manifest_digest: Digest::of(&manifest),
        volumes: vols.len(),
        bytes: vols.iter().map(|v| v.size).sum(),
        blobs_uploaded: uploaded,
        labels: labels.clone(),
    })
}

async fn publish_to_registry(
    ctx: &Ctx,
    r: &RegistryRef,
    vols: &[Volume],
    manifest: &[u8],
    release: Option<&[u8]>,
    tags: &[String],
    progress: Progress<'_>,
) -> Result<usize> {
    let tally = Tally::new(vols.len() + 1, vols.iter().map(|v| v.size).sum(), progress);
    let tally = &tally;
    let empty_file = ctx
        .store
        .tmp_dir()?
        .join(format!("empty-{}-{}.json", std::process::id(), unique()));
    std::fs::write(&empty_file, EMPTY_JSON).ctx(|| format!("writing {}", empty_file.display()))?;
    let mut blobs: Vec<(Digest, PathBuf)> = vec![(Digest::of(EMPTY_JSON), empty_file.clone())];
    blobs.extend(vols.iter().map(|v| (v.digest, v.path.clone())));
    let uploaded = futures_util::stream::iter(blobs.into_iter().enumerate().map(|(i, (d, p))| async move {
        if ctx.registries.blob_exists(r, &d).await? {
            if i > 0 {
                tally.volume_at(i, vols[i - 1].size);
            }
            return Ok(0usize);
        }
        ctx.registries
            .push_blob_file(r, &d, &p, &|n| {
                if i > 0 {
                    tally.volume_at(i, n)
                }
            })
            .await?;
        Ok(1)
    }))
    .buffer_unordered(ctx.jobs.max(1))
    .try_fold(0, |a, b| async move { Ok::<_, Error>(a + b) })
    .await;
    let _ = std::fs::remove_file(&empty_file);
    let uploaded = uploaded?;
    ctx.registries
        .push_manifest(r, &Digest::of(manifest).to_string(), manifest, OCI_MANIFEST)
        .await?;
    for t in tags {
        ctx.registries.push_manifest(r, t, manifest, OCI_MANIFEST).await?;
    }
    if let Some(release) = release {
        ctx.registries
            .push_manifest(r, RELEASE_TAG, release, OCI_MANIFEST)
            .await?;
    }
    Ok(uploaded)
}

fn publish_to_layout(
    dir: &Path,
    vols: &[Volume],
    manifest: &[u8],
    release: Option<&[u8]>,
    tags: &[String],
) -> Result<usize> {
    let layout = OciLayout::create(dir)?;
    let mut uploaded = 0;
    layout.put_blob_bytes(&Digest::of(EMPTY_JSON), EMPTY_JSON)?;
    for v in vols {
        if !layout.has_blob(&v.digest) {
            layout.put_blob_file(&v.digest, &v.path)?;
            uploaded += 1;
        }
    }
    let md = Digest::of(manifest);
    layout.put_blob_bytes(&md, manifest)?;
    for t in tags {
        layout.tag(Some(t), &md, OCI_MANIFEST, manifest.len() as u64)?;
    }
    if let Some(release) = release {
        let rd = Digest::of(release);
        layout.put_blob_bytes(&rd, release)?;
        layout.tag(Some(RELEASE_TAG), &rd, OCI_MANIFEST, release.len() as u64)?;
    }
    Ok(uploaded)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// A bundle artifact's manifest, checked: booster's artifact type, volumes only.
#[derive(Debug, Clone)]
pub struct BundleArtifact {
    pub labels: Labels,
    pub volumes: Vec<(Digest, u64)>,
    pub bytes: u64,
}

/// Reads a manifest as a bundle artifact (`what` names it in errors).
pub fn parse_bundle_manifest(what: &str, bytes: &[u8]) -> Result<BundleArtifact> {
    let m = parse_artifact(what, bytes, BUNDLE_ARTIFACT)?;
    if m.layers.is_empty() || m.layers.len() > MAX_VOLUMES {
        return Err(Error::format(
            what,
            format!(
                "a bundle artifact has 1 to {MAX_VOLUMES} volumes, this one {}",
                m.layers.len()
            ),
        ));
    }
    let mut volumes = Vec::with_capacity(m.layers.len());
    for l in &m.layers {
        if l.media_type != VOLUME_MEDIA_TYPE {
            return Err(Error::format(
                what,
                format!(
                    "volume of media type {:?}, expected {VOLUME_MEDIA_TYPE}",
                    l.media_type
                ),
            ));
        }
        volumes.push((l.digest()?, l.size));
    }
    let labels = labels_of(what, &m.annotations)?;
    let bytes = volumes
        .iter()
        .try_fold(0u64, |a, v| a.checked_add(v.1))
        .ok_or_else(|| Error::format(what, "its volume sizes add up past 2^64"))?;
    Ok(BundleArtifact {
        labels,
        volumes,
        bytes,
    })
}

fn parse_artifact(what: &str, bytes: &[u8], artifact_type: &str) -> Result<ArtifactManifest> {
    let m: ArtifactManifest = serde_json::from_slice(bytes)
        .map_err(|e| Error::format(what, format!("not an OCI manifest: {e}")))?;
    if m.media_type.as_deref().is_some_and(|t| t != OCI_MANIFEST) {
        return Err(Error::format(
            what,
            format!("media type {:?} is not an OCI image manifest", m.media_type),
        ));
    }
    match m.artifact_type.as_deref() {
        Some(t) if t == artifact_type => Ok(m),
        Some(t) => Err(Error::format(
            what,
            format!(
                "artifact type {t:?}, expected {artifact_type} (is it a booster bundle of a newer version, or an image?)"
            ),
        )),
        None => Err(Error::format(
            what,
            format!("no artifact type: an image, not a booster artifact ({artifact_type})"),
        )),
    }
}

/// A JSON list of strings in annotation `key`; an absent annotation reads as an empty list
/// (a reader must not demand what an older writer did not write).
fn string_list(what: &str, a: &BTreeMap<String, String>, key: &str) -> Result<Vec<String>> {
    match a.get(key) {
        Some(s) => serde_json::from_str(s).map_err(|e| Error::format(what, format!("annotation {key}: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// A JSON list of digests in annotation `key`, sorted and unique.
fn digest_list(what: &str, a: &BTreeMap<String, String>, key: &str) -> Result<Vec<Digest>> {
    let digests = string_list(what, a, key)?
        .iter()
        .map(|d| d.parse::<Digest>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::format(what, format!("annotation {key}: {e}")))?;
    Ok(sorted_unique(digests))
}

fn labels_of(what: &str, a: &BTreeMap<String, String>) -> Result<Labels> {
    let mut images = string_list(what, a, A_IMAGES)?;
    for i in &images {
        let ok = i
            .rsplit_once('@')
            .is_some_and(|(name, d)| !name.is_empty() && d.parse::<Digest>().is_ok());
        if !ok {
            return Err(Error::format(
                what,
                format!("annotation {A_IMAGES}: {i:?} is not NAME@sha256:DIGEST"),
            ));
        }
    }
    images.sort();
    Ok(Labels {
        images,
        base_images: digest_list(what, a, A_BASE_IMAGES)?,
        base_streams: digest_list(what, a, A_BASE_STREAMS)?,
    })
}

/// The bundle `import docker://REGISTRY/REPO` or `oci:DIR` (no tag) means: the one
/// [`find_bundle`] picks for this store's state. `None` when the store is up to date.
pub async fn resolve_for_store(ctx: &Ctx, place: Place) -> Result<Option<Place>> {
    let untagged = match &place {
        Place::Registry(r) => r.tag.is_none() && r.digest.is_none(),
        Place::Layout { tag, .. } => tag.is_none(),
    };
    if !untagged {
        return Ok(Some(place));
    }
    let held = held_images(&ctx.store)?;
    match find_bundle(ctx, &place, &held, None).await? {
        Found::UpToDate { .. } => Ok(None),
        Found::Bundle { place, .. } => Ok(Some(place)),
        Found::NoFit { targets, base } => Err(Error::Usage(format!(
            "no bundle in {repo} fits this store (release {targets}, this store's base {base}); \
             ask the sender for one: `booster inventory -o site.inv` here, then \
             `booster export --since site.inv … --to {repo}` there",
            repo = place.repository()
        ))),
    }
}

/// A bundle fetched into a directory as volumes `bundle.bkp.NNN`.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The first volume: open the bundle with it.
    pub path: PathBuf,
    pub dir: PathBuf,
    pub manifest_digest: Digest,
    pub artifact: BundleArtifact,
    /// Bytes downloaded now (volumes already complete in `dir` are kept).
    pub transferred: u64,
}

/// Fetches the bundle artifact `from` into `dir` (created), volume by volume, each checked
/// against its digest; volumes already there and whole from an earlier attempt are kept.
pub async fn fetch(ctx: &Ctx, from: &Place, dir: &Path, progress: Progress<'_>) -> Result<Fetched> {
    std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    match from {
        Place::Registry(r) => fetch_from_registry(ctx, r, dir, progress).await,
        Place::Layout { dir: layout, tag } => fetch_from_layout(layout, tag.as_deref(), dir),
    }
}

/// Volume `i` (from 0) of a bundle, as named in a directory and in its artifact (6.1).
fn volume_name(i: usize) -> String {
    format!("bundle.bkp.{:03}", i + 1)
}

fn volume_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(volume_name(i))
}

/// A volume left whole by an earlier attempt.
fn already_there(path: &Path, digest: &Digest, size: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == size)
        && sha256_of_file(path).is_ok_and(|(d, _)| d == *digest)
}

async fn fetch_from_registry(
    ctx: &Ctx,
    r: &RegistryRef,
    dir: &Path,
    progress: Progress<'_>,
) -> Result<Fetched> {
    let raw = ctx.registries.get_manifest(r).await?;
    let what = format!("docker://{r}");
    let artifact = parse_bundle_manifest(&what, &raw.bytes)?;
    let tally = Tally::new(artifact.volumes.len(), artifact.bytes, progress);
    let tally = &tally;
    let jobs = artifact
        .volumes
        .iter()
        .enumerate()
        .map(|(i, (d, size))| {
            let path = volume_path(dir, i);
            async move {
                let (p, d2, s2) = (path.clone(), *d, *size);
                if tokio::task::spawn_blocking(move || already_there(&p, &d2, s2))
                    .await
                    .unwrap_or(false)
                {
                    tally.volume_at(i, *size);
                    return Ok(0u64);
                }
                ctx.registries
                    .fetch_blob(r, d, Some(*size), &path, &|n| tally.volume_at(i, n))
                    .await?;
                Ok(*size)
            }
        })
        .collect::<Vec<_>>();
    let transferred = futures_util::stream::iter(jobs)
        .buffer_unordered(ctx.jobs.max(1))
        .try_fold(0u64, |a, b| async move { Ok::<_, Error>(a + b) })
        .await?;
    remove_stale_volumes(dir, artifact.volumes.len());
    Ok(Fetched {
        path: volume_path(dir, 0),
        dir: dir.to_path_buf(),
        manifest_digest: raw.digest,
        artifact,
        transferred,
    })
}

fn fetch_from_layout(layout_dir: &Path, tag: Option<&str>, dir: &Path) -> Result<Fetched> {
    let layout = OciLayout::open(layout_dir)?;
    let entry = layout.resolve(tag)?;
    let raw = layout.read_blob(&entry.digest)?;
    let what = format!("oci:{}:{}", layout_dir.display(), tag.unwrap_or(""));
    let artifact = parse_bundle_manifest(&what, &raw)?;
    let mut transferred = 0;
    for (i, (d, size)) in artifact.volumes.iter().enumerate() {
        let path = volume_path(dir, i);
        if already_there(&path, d, *size) {
            continue;
        }
        let src = layout.blob_path(d);
        let (got, n) = sha256_of_file(&src)?;
        if got != *d || n != *size {
            return Err(Error::DigestMismatch {
                what: format!("volume {} of {what}", i + 1),
                expected: *d,
                actual: got,
            });
        }
        let _ = std::fs::remove_file(&path);
        if std::fs::hard_link(&src, &path).is_err() {
            std::fs::copy(&src, &path).ctx(|| format!("writing {}", path.display()))?;
        }
        transferred += n;
    }
    remove_stale_volumes(dir, artifact.volumes.len());
    Ok(Fetched {
        path: volume_path(dir, 0),
        dir: dir.to_path_buf(),
        manifest_digest: entry.digest,
        artifact,
        transferred,
    })
}

/// Volumes past the last one (from another bundle fetched into the same directory) would be
/// read as part of this one.
fn remove_stale_volumes(dir: &Path, count: usize) {
    let mut i = count;
    while std::fs::remove_file(volume_path(dir, i)).is_ok() {
        i += 1;
    }
}

/// What a replica trusts in a registry of bundles (6.7): signatures by `keys`, on a
/// release pointer signed no earlier than `not_before` (the newest it took from there).
pub struct Trust<'a> {
    pub keys: &'a crate::oci::cosign::TrustedKeys,
    pub not_before: u64,
}

/// What a registry (or layout) of bundles holds for a store in some state.
#[derive(Debug, Clone)]
pub enum Found {
    /// The store already holds every image of the release.
    UpToDate { released: Option<u64> },
    /// This bundle fits: the store holds its whole base. `place` pins it (by digest in a
    /// registry), so what is fetched is what was chosen. `released`: when the release
    /// pointer was signed, with [`Trust`].
    Bundle {
        place: Place,
        bytes: u64,
        released: Option<u64>,
    },
    /// The release needs a bundle this repository does not have for this state.
    NoFit { targets: String, base: String },
}

/// `place`'s manifest under `tag`: its bytes and digest.
async fn manifest_at(ctx: &Ctx, place: &Place, tag: &str) -> Result<(Vec<u8>, Digest)> {
    match place {
        Place::Registry(r) => {
            let raw = ctx.registries.get_manifest(&at_tag(r, tag)).await?;
            Ok((raw.bytes, raw.digest))
        }
        Place::Layout { dir, .. } => {
            let layout = OciLayout::open(dir)?;
            let entry = layout.resolve(Some(tag))?;
            Ok((layout.read_blob(&entry.digest)?, entry.digest))
        }
    }
}

fn at_tag(r: &RegistryRef, tag: &str) -> RegistryRef {
    RegistryRef {
        tag: Some(tag.to_string()),
        digest: None,
        ..r.clone()
    }
}

/// The bundle under `tag` whose manifest has `digest`, pinned.
fn pinned(place: &Place, tag: &str, digest: Digest) -> Place {
    match place {
        Place::Registry(r) => Place::Registry(RegistryRef {
            digest: Some(digest),
            ..at_tag(r, tag)
        }),
        Place::Layout { dir, .. } => Place::Layout {
            dir: dir.clone(),
            tag: Some(tag.to_string()),
        },
    }
}

async fn tags_of(ctx: &Ctx, place: &Place) -> Result<Vec<String>> {
    match place {
        Place::Registry(r) => ctx.registries.tags(r).await,
        Place::Layout { dir, .. } => OciLayout::open(dir)?.tags(),
    }
}

/// Finds, in the repository `place`, the bundle that brings a store holding `held` to the
/// release `current` names (6.6: exact tag, else the smallest bundle whose base it holds).
/// With `trust`, the release pointer and the bundle must be signed by one of its keys
/// (6.7): an unsigned or foreign one is passed over, and when nothing signed fits, the
/// error says why the others were refused.
pub async fn find_bundle(
    ctx: &Ctx,
    place: &Place,
    held: &[Digest],
    trust: Option<&Trust<'_>>,
) -> Result<Found> {
    let what = place.describe(RELEASE_TAG);
    let (bytes, release_digest) = manifest_at(ctx, place, RELEASE_TAG).await.map_err(|e| {
        Error::format(
            &what,
            format!(
                "no release pointer ({e}); bundles are published there with `booster export … --to {}` or `booster serve --publish`",
                place.repository()
            ),
        )
    })?;
    let release = parse_artifact(&what, &bytes, RELEASE_ARTIFACT)?;
    let labels = labels_of(&what, &release.annotations)?;
    let targets = labels.targets_id();
    if release.annotations.get(A_TARGETS).is_some_and(|t| *t != targets) {
        return Err(Error::format(what, "its target id does not match its image list"));
    }
    if labels.images.is_empty() {
        return Err(Error::format(what, "the release lists no images"));
    }
    let released = match trust {
        Some(t) => {
            let at = super::signed::check_signed(ctx, place, &release_digest, t.keys).await?;
            if at < t.not_before {
                return Err(Error::BundleNotSigned {
                    what: what.clone(),
                    keys: t.keys.describe(),
                    reason: format!(
                        "its release pointer was signed at {at}, before the release this replica already took from there (signed at {}): a rollback",
                        t.not_before
                    ),
                });
            }
            Some(at)
        }
        None => None,
    };
    let mut refused: Option<Error> = None;
    let mut signed = async |digest: &Digest| -> bool {
        let Some(t) = trust else { return true };
        match super::signed::check_signed(ctx, place, digest, t.keys).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("{e}");
                refused.get_or_insert(e);
                false
            }
        }
    };
    let held_set: std::collections::HashSet<Digest> = held.iter().copied().collect();
    if labels.image_digests().iter().all(|d| held_set.contains(d)) {
        return Ok(Found::UpToDate { released });
    }
    let base = base_id(held);
    let store = &ctx.store;
    let fits = |tag: &str, bytes: &[u8]| {
        parse_bundle_manifest(&place.describe(tag), bytes)
            .ok()
            .filter(|a| {
                a.labels.targets_id() == targets
                    && a.labels.base_images.iter().all(|d| held_set.contains(d))
                    && a.labels
                        .base_streams
                        .iter()
                        .all(|d| store.has_recipe(d).unwrap_or(false))
            })
    };
    let exact = format!("{targets}-{base}");
    if let Ok((bytes, digest)) = manifest_at(ctx, place, &exact).await
        && let Some(a) = fits(&exact, &bytes)
        && signed(&digest).await
    {
        return Ok(Found::Bundle {
            place: pinned(place, &exact, digest),
            bytes: a.bytes,
            released,
        });
    }
    let prefix = format!("{targets}-");
    let mut fitting: Vec<(u64, String, Digest)> = Vec::new();
    for tag in tags_of(ctx, place).await? {
        // Only the tag grammar: a tag may name a local file later, never a path.
        if tag == exact
            || !tag.starts_with(&prefix)
            || crate::oci::reference::validate_tag(&tag, &tag).is_err()
        {
            continue;
        }
        let Ok((bytes, digest)) = manifest_at(ctx, place, &tag).await else {
            continue;
        };
        if let Some(a) = fits(&tag, &bytes) {
            fitting.push((a.bytes, tag, digest));
        }
    }
    // The smallest that is signed as it must be.
    fitting.sort();
    for (bytes, tag, digest) in fitting {
        if signed(&digest).await {
            return Ok(Found::Bundle {
                place: pinned(place, &tag, digest),
                bytes,
                released,
            });
        }
    }
    match refused {
        Some(e) => Err(e),
        None => Ok(Found::NoFit { targets, base }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(b: u8) -> Digest {
        Digest([b; 32])
    }

    #[test]
    fn ids_ignore_order_and_repeats() {
        let a = Labels::new(
            [("r/a:1".to_string(), d(1)), ("r/b:1".to_string(), d(2))],
            [d(3), d(4), d(3)],
        );
        let b = Labels::new(
            [("r/b:1".to_string(), d(2)), ("r/a:1".to_string(), d(1))],
            [d(4), d(3)],
        );
        assert_eq!(a.tag(), b.tag());
        assert_eq!(a.targets_id().len(), 17);
        assert!(a.tag().starts_with('t') && a.base_id().starts_with('b'));
        assert_eq!(Labels::new([("r/a:1".to_string(), d(1))], []).base_id(), "full");
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let labels = Labels::new([("r/a:1".to_string(), d(1))], [d(3)]);
        let vols = vec![Volume {
            path: PathBuf::from("x"),
            digest: d(9),
            size: 5,
            title: "bundle.bkp.001".into(),
        }];
        let m = bundle_manifest(&vols, &labels);
        let a = parse_bundle_manifest("test", &m).unwrap();
        assert_eq!(a.labels, labels);
        assert_eq!(a.volumes, vec![(d(9), 5)]);
        assert_eq!(a.bytes, 5);
    }

    #[test]
    fn other_artifacts_and_images_are_refused_by_name() {
        let labels = Labels::new([("r/a:1".to_string(), d(1))], []);
        let release = release_manifest(&labels);
        let e = parse_bundle_manifest("x", &release).unwrap_err().to_string();
        assert!(e.contains(RELEASE_ARTIFACT), "{e}");
        let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#;
        let e = parse_bundle_manifest("x", image).unwrap_err().to_string();
        assert!(e.contains("no artifact type"), "{e}");
        let newer = String::from_utf8(bundle_manifest(&[], &labels))
            .unwrap()
            .replace(BUNDLE_ARTIFACT, "application/vnd.booster.bundle.v2");
        let e = parse_bundle_manifest("x", newer.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bundle.v2"), "{e}");
    }

    #[test]
    fn cutting_volumes_keeps_the_bytes() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("b.bkp");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&f, &data).unwrap();
        let vols = cut_volumes(&f, &t.path().join("v"), 4096).unwrap();
        assert_eq!(vols.len(), 3);
        let joined: Vec<u8> = vols.iter().flat_map(|p| std::fs::read(p).unwrap()).collect();
        assert_eq!(joined, data);
        assert_eq!(cut_volumes(&f, &t.path().join("w"), 10_000).unwrap(), vec![f]);
    }
}
