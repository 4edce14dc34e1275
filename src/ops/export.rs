//! `booster export --since OLD NEW… -o bundle.bkp`: a bundle holding what a receiver that
//! has OLD (an image list, or the receiver's own inventory) lacks to rebuild NEW.

use std::path::Path;

use super::artifact::{self, Labels, Place, Published};
use super::diff::{self, base_of};
use super::inventory::{self, Inventory};
use super::make_bundle::{self, Base, BundleOptions, BundleReport};
use super::pull::Ctx;
use crate::error::{Error, Result};
use crate::layer::Analysis;
use crate::oci::reference::{ImageRef, list_or_ref};

/// What the receiver is said to have.
pub enum Since {
    Images(Vec<ImageRef>),
    Inventory(Box<Inventory>),
    Nothing,
}

impl Since {
    /// An inventory file, an image list, or a reference.
    pub fn parse(arg: Option<&str>) -> Result<Since> {
        match arg {
            None => Ok(Since::Nothing),
            Some(a) if inventory::is_inventory(Path::new(a)) => {
                Ok(Since::Inventory(Box::new(Inventory::read(Path::new(a))?)))
            }
            Some(a) => Ok(Since::Images(list_or_ref(a)?)),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    pub base_images: usize,
    pub base_layers: usize,
    pub bundle: BundleReport,
    /// The bundle as an OCI artifact, when it was pushed (`--to`).
    pub published: Option<Published>,
}

pub async fn export(
    ctx: &Ctx,
    since: &Since,
    new: &[ImageRef],
    out: &Path,
    opts: &BundleOptions,
    to: Option<&Place>,
    signer: Option<&crate::oci::cosign::SigningKey>,
) -> Result<ExportReport> {
    if new.is_empty() {
        return Err(Error::Usage("nothing to export: name the new images".into()));
    }
    let old_names = match since {
        Since::Images(refs) => diff::pull_set(ctx, refs, Analysis::BaseOnly).await?,
        _ => Vec::new(),
    };
    let new_names = diff::pull_set(ctx, new, Analysis::Full).await?;
    let store = ctx.store.clone();
    let base = base_for(&store, since, &old_names, &new_names)?;
    let base_images = match since {
        Since::Images(r) => r.len(),
        Since::Inventory(i) => i.images.len(),
        Since::Nothing => 0,
    };
    let base_layers = base.contents.len();
    let labels = labels_for(&store, since, &old_names, &new_names)?;
    let out = out.to_path_buf();
    let opts = opts.clone();
    let bundle = tokio::task::spawn_blocking(move || {
        make_bundle::make_bundle_shown(&store, &new_names, &base, &out, &opts, "bundle")
    })
    .await
    .map_err(|e| Error::io("export task", std::io::Error::other(e.to_string())))??;
    let published = match to {
        Some(place) if !bundle.files.is_empty() => {
            let bar = crate::output::bytes_bar(bundle.bundle_bytes, "pushing bundle");
            let p = artifact::publish(ctx, &bundle.files, &labels, place, true, signer, &|a, b| {
                crate::output::progress_to(&bar, a, b)
            })
            .await;
            bar.finish_and_clear();
            Some(p?)
        }
        _ => None,
    };
    Ok(ExportReport {
        base_images,
        base_layers,
        bundle,
        published,
    })
}

/// What a bundle for `since` brings and needs, for its artifact's annotations (6.6).
pub fn labels_for(
    store: &crate::store::Store,
    since: &Since,
    old_names: &[String],
    new_names: &[String],
) -> Result<Labels> {
    let digest_of = |n: &String| -> Result<Option<(String, crate::id::Digest)>> {
        Ok(store.image(n)?.map(|r| (n.clone(), r.digest)))
    };
    let mut images = Vec::new();
    for n in new_names {
        images.extend(digest_of(n)?);
    }
    let base = match since {
        Since::Nothing => Vec::new(),
        Since::Images(_) => {
            let mut v = Vec::new();
            for n in old_names {
                v.extend(digest_of(n)?.map(|(_, d)| d));
            }
            v
        }
        Since::Inventory(inv) => inv.images.iter().map(|i| i.digest).collect(),
    };
    Ok(Labels::new(images, base))
}

/// The base a receiver described by `since` holds (old images already in the store).
pub fn base_for(
    store: &crate::store::Store,
    since: &Since,
    old_names: &[String],
    new_names: &[String],
) -> Result<Base> {
    match since {
        Since::Nothing => Ok(Base::default()),
        Since::Images(_) => base_of(store, old_names, new_names),
        Since::Inventory(inv) => base_from_inventory(store, inv, new_names),
    }
}

/// The receiver's contents that this store also knows (only those can serve as base), and
/// layer pairing through the receiver's image names.
fn base_from_inventory(store: &crate::store::Store, inv: &Inventory, new_names: &[String]) -> Result<Base> {
    if inv.chunker != store.params() {
        return Err(Error::Usage(format!(
            "the inventory comes from a store cut with {}, this store uses {}",
            inv.chunker.name(),
            store.params().name()
        )));
    }
    let mut base = Base::default();
    for (d, _) in &inv.contents {
        if store.has_recipe(d)? {
            base.contents
                .push((*d, format!("layer {} of the receiver", d.short())));
        }
    }
    // Pair layers through the receiver's images that this store also has.
    let known: Vec<String> = inv
        .images
        .iter()
        .filter(|i| {
            store
                .image(&i.name)
                .ok()
                .flatten()
                .is_some_and(|r| r.digest == i.digest)
        })
        .map(|i| i.name.clone())
        .collect();
    let paired = base_of(store, &known, new_names)?;
    base.preferred = paired.preferred;
    Ok(base)
}
