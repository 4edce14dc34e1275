//! `booster diff OLD NEW`: pull both image sets (the old one only as a delta base), write
//! the patch that turns a registry holding OLD into one holding NEW, and measure it against
//! what a plain pull of the update would cost.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::make_bundle::{self, Base, BundleOptions, BundleReport};
use super::pull::{self, Ctx, PullOptions};
use crate::error::{Error, Result};
use crate::id::Digest;
use crate::layer::Analysis;
use crate::oci::manifest::{self, Parsed};
use crate::oci::reference::ImageRef;
use crate::oci::referrers::repository_of;
use crate::store::Store;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SetSizes {
    pub images: usize,
    pub blobs: usize,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DiffReport {
    pub old: SetSizes,
    pub new: SetSizes,
    /// Compressed bytes of the new set's blobs that the old set lacks: what `docker pull`
    /// (or skopeo sync) would transfer.
    pub pull_update_bytes: u64,
    pub pull_update_blobs: usize,
    pub patch_bytes: u64,
    /// 1 - patch / pull update, in percent.
    pub savings_percent: f64,
    pub dry_run: bool,
    pub bundle: BundleReport,
}

/// Pull a set of images, returning their store names.
/// Pull a set of images, returning their store names; a new set's (`Analysis::Full`)
/// each followed by the names of what is attached to it (signatures, attestations, SBOMs).
pub async fn pull_set(ctx: &Ctx, refs: &[ImageRef], analysis: Analysis) -> Result<Vec<String>> {
    pull_set_with(ctx, refs, PullOptions::new(None, analysis)).await
}

pub async fn pull_set_with(ctx: &Ctx, refs: &[ImageRef], opts: PullOptions) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for r in refs {
        let pulled = pull::pull_image(ctx, r, &opts).await?;
        for n in pulled.names() {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    Ok(names)
}

pub async fn diff(
    ctx: &Ctx,
    old: &[ImageRef],
    new: &[ImageRef],
    out: &Path,
    opts: &BundleOptions,
) -> Result<DiffReport> {
    if new.is_empty() {
        return Err(Error::Usage("the new image list is empty".into()));
    }
    // Layers the new images share with the old ones are not analysed: the receiver has
    // them. Both sides are pulled at once (two layers decompress on two cores).
    let shared = Arc::new(pull::blobs_of(ctx, old).await?);
    let new_opts = PullOptions {
        base_only_blobs: shared,
        ..PullOptions::new(None, Analysis::Full)
    };
    let (old_names, new_names) = futures_util::try_join!(
        pull_set(ctx, old, Analysis::BaseOnly),
        pull_set_with(ctx, new, new_opts)
    )?;
    ctx.store.start_flush();
    let store = ctx.store.clone();
    let out = out.to_path_buf();
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || diff_stored(&store, &old_names, &new_names, &out, &opts))
        .await
        .map_err(|e| Error::io("diff task", std::io::Error::other(e.to_string())))?
}

/// The diff of two image sets already in the store.
pub fn diff_stored(
    store: &Store,
    old_names: &[String],
    new_names: &[String],
    out: &Path,
    opts: &BundleOptions,
) -> Result<DiffReport> {
    let base = base_of(store, old_names, new_names)?;
    let bundle = make_bundle::make_bundle_shown(store, new_names, &base, out, opts, "patch")?;
    let old_blobs = blob_sizes(store, old_names)?;
    let new_blobs = blob_sizes(store, new_names)?;
    let sizes = |m: &BTreeMap<Digest, (u64, u64)>, images: usize| SetSizes {
        images,
        blobs: m.len(),
        compressed_bytes: m.values().map(|v| v.0).sum(),
        uncompressed_bytes: m.values().map(|v| v.1).sum(),
    };
    let update: Vec<u64> = new_blobs
        .iter()
        .filter(|(d, _)| !old_blobs.contains_key(d))
        .map(|(_, v)| v.0)
        .collect();
    let pull_update_bytes: u64 = update.iter().sum();
    let patch_bytes = bundle.bundle_bytes;
    Ok(DiffReport {
        old: sizes(&old_blobs, old_names.len()),
        new: sizes(&new_blobs, new_names.len()),
        pull_update_bytes,
        pull_update_blobs: update.len(),
        patch_bytes,
        savings_percent: if pull_update_bytes > 0 {
            100.0 * (1.0 - patch_bytes as f64 / pull_update_bytes as f64)
        } else {
            0.0
        },
        dry_run: opts.dry_run,
        bundle,
    })
}

/// The receiver's base: every layer of the old images. Each new layer is paired with the
/// old layer at the same position of the old image with the same repository (or, failing
/// that, the old image at the same position in its list): its files' previous versions
/// are most likely there.
pub fn base_of(store: &Store, old_names: &[String], new_names: &[String]) -> Result<Base> {
    let mut base = Base::default();
    let mut per_old: Vec<(String, Vec<Vec<Digest>>)> = Vec::new();
    // Signatures and other attached manifests are neither base nor paired: a receiver
    // pushing to a registry may not hold the old ones (they are a few kB, sent again), and
    // left out they do not shift the positions images pair by.
    let old_names = unattached(store, old_names)?;
    let new_names = unattached(store, new_names)?;
    for name in &old_names {
        let rec = store
            .image(name)?
            .ok_or_else(|| Error::Usage(format!("image {name} is not in the store")))?;
        let layers = make_bundle::layer_contents(store, &rec.digest)?;
        for (mi, m) in layers.iter().enumerate() {
            for (li, c) in m.iter().enumerate() {
                let label = if layers.len() > 1 {
                    format!("{name} manifest {} layer {}", mi + 1, li + 1)
                } else {
                    format!("{name} layer {}", li + 1)
                };
                if !base.contents.iter().any(|(d, _)| d == c) {
                    base.contents.push((*c, label));
                }
            }
        }
        per_old.push((repository_of(name).to_string(), layers));
    }
    for (i, name) in new_names.iter().enumerate() {
        let Some(rec) = store.image(name)? else { continue };
        let layers = make_bundle::layer_contents(store, &rec.digest)?;
        let repo = repository_of(name);
        let old = per_old
            .iter()
            .find(|(r, _)| *r == repo)
            .or_else(|| per_old.get(i))
            .map(|(_, l)| l);
        let Some(old) = old else { continue };
        for (mi, m) in layers.iter().enumerate() {
            let Some(om) = old.get(mi).or_else(|| old.first()) else {
                continue;
            };
            for (li, c) in m.iter().enumerate() {
                if let Some(oc) = om.get(li).or_else(|| om.last()) {
                    base.preferred.entry(*c).or_insert(*oc);
                }
            }
        }
    }
    Ok(base)
}

/// The names among `names` that are not attached to another image.
fn unattached(store: &Store, names: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for n in names {
        let attached = match store.image(n)? {
            Some(rec) => store
                .doc(&rec.digest)?
                .is_some_and(|doc| crate::oci::referrers::attached(n, &doc.data).is_some()),
            None => false,
        };
        if !attached {
            out.push(n.clone());
        }
    }
    Ok(out)
}

/// Distinct blobs (configs and layers) of a set of images: (compressed, uncompressed).
pub fn blob_sizes(store: &Store, names: &[String]) -> Result<BTreeMap<Digest, (u64, u64)>> {
    let mut out = BTreeMap::new();
    for name in names {
        let Some(rec) = store.image(name)? else { continue };
        for m in make_bundle::manifests_of(store, &rec.digest)? {
            let Some(doc) = store.doc(&m)? else { continue };
            if let Parsed::Manifest { config, layers, .. } =
                manifest::parse(&doc.data, Some(&doc.media_type))?
            {
                out.insert(config.digest()?, (config.size, config.size));
                for l in layers {
                    let d = l.digest()?;
                    let plain = match store.blob(&d)? {
                        Some(b) => store.recipe(&b.content)?.map(|r| r.len).unwrap_or(l.size),
                        None => l.size,
                    };
                    out.insert(d, (l.size, plain));
                }
            }
        }
    }
    Ok(out)
}
