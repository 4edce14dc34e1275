//! `booster apply OLD NEW PATCH REGISTRY`: on the receiving side, make sure the base (OLD)
//! is in the store — ingesting it from REGISTRY if needed — verify and import the patch,
//! then rebuild and push every NEW image into REGISTRY at its repository path. Nothing is
//! pushed unless the patch verified and its base is present; a rerun after any failure
//! finishes the job (import skips what it has, push skips what the registry has).

use std::path::Path;

use super::import::{self, ImportReport};
use super::pull::{self, Ctx, PullOptions};
use super::push::{self, MountHints, PushReport};
use crate::error::{Error, Result};
use crate::layer::Analysis;
use crate::oci::reference::{Destination, ImageRef, RegistryRef, parse_registry_ref};
use crate::oci::source::Sink;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplyReport {
    pub base_pulled: Vec<String>,
    pub import: ImportReport,
    pub pushed: Vec<PushReport>,
}

/// Same repository and tag (or digest), whatever the registry part says.
fn same_image(a: &RegistryRef, b: &RegistryRef) -> bool {
    a.repository == b.repository
        && a.tag == b.tag
        && (a.digest.is_none() || b.digest.is_none() || a.digest == b.digest)
}

pub async fn apply(
    ctx: &Ctx,
    old: &[ImageRef],
    new: &[ImageRef],
    patch: &Path,
    dest: &Destination,
) -> Result<ApplyReport> {
    // Making the registry client costs tens of milliseconds of CPU: done beside verifying
    // and importing the patch, where a core is often idle, instead of before the push.
    let registries = ctx.registries.clone();
    let registry = dest.registry.clone();
    let client_ready = tokio::task::spawn_blocking(move || registries.prepare(&registry));
    let store = ctx.store.clone();
    let p = patch.to_path_buf();
    let (_, meta) = tokio::task::spawn_blocking(move || {
        let bar = crate::output::bytes_bar(0, "verifying patch");
        let r = import::open_verified(&store, &p, &mut |a, b| {
            crate::output::progress_to(&bar, a, b);
        });
        bar.finish_and_clear();
        r
    })
    .await
    .map_err(join_err)??;

    // Every NEW image must be in the patch; decide what to push before touching anything.
    let bundle_images: Vec<(RegistryRef, String)> = meta
        .images
        .iter()
        .filter_map(|i| parse_registry_ref(&i.name).ok().map(|r| (r, i.name.clone())))
        .collect();
    let mut to_push = Vec::new();
    for n in new {
        let ImageRef::Registry(r) = n else {
            return Err(Error::Usage(format!(
                "{n}: apply pushes to a registry; name new images as registry references"
            )));
        };
        let (_, name) = bundle_images
            .iter()
            .find(|(b, _)| same_image(b, r))
            .ok_or_else(|| Error::Bundle {
                path: patch.to_path_buf(),
                reason: format!(
                    "image {r} is not in this patch (it holds: {})",
                    meta.images
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        to_push.push((name.clone(), r.rehomed(dest)));
    }

    // The base: what the registry already holds of OLD, ingested as delta base.
    let mut base_pulled = Vec::new();
    if !import::missing_base(&ctx.store, &meta)?.is_empty() {
        let opts = PullOptions::new(None, Analysis::BaseOnly);
        let mut failures = Vec::new();
        for o in old {
            let src = match o {
                ImageRef::Registry(r) => ImageRef::Registry(r.rehomed(dest)),
                other => other.clone(),
            };
            match pull::pull_image(ctx, &src, &opts).await {
                Ok(p) => base_pulled.push(p.name),
                Err(e) => failures.push(format!("{src}: {e}")),
            }
        }
        let missing = import::missing_base(&ctx.store, &meta)?;
        if !missing.is_empty() {
            return Err(Error::Bundle {
                path: patch.to_path_buf(),
                reason: format!(
                    "refusing to apply: the patch was made against base layers that neither the store nor {} has: {}{}",
                    dest.registry,
                    missing.join(", "),
                    if failures.is_empty() {
                        " (the patch was made for another base)".to_string()
                    } else {
                        format!(
                            "; pulling OLD from {} failed: {}",
                            dest.registry,
                            failures.join("; ")
                        )
                    }
                ),
            });
        }
    }

    let store = ctx.store.clone();
    let p = patch.to_path_buf();
    let import = tokio::task::spawn_blocking(move || {
        let bar = crate::output::bytes_bar(0, "importing patch");
        let r = import::import_bundle(&store, &p, &mut |_, a, b| {
            crate::output::progress_to(&bar, a, b);
        });
        bar.finish_and_clear();
        r
    })
    .await
    .map_err(join_err)??;
    tracing::info!(
        "patch imported: {} new chunks ({}), {} layers",
        import.chunks_added,
        crate::output::human_bytes(import.chunk_bytes_added),
        import.recipes_added
    );

    client_ready.await.map_err(join_err)?;
    let hints = MountHints::default();
    let mut pushed = Vec::new();
    for (name, target) in &to_push {
        let sink = Sink::Registry {
            registries: ctx.registries.clone(),
            image: target.clone(),
        };
        pushed.push(push::push_image(ctx, name, &sink, &hints).await?);
    }
    Ok(ApplyReport {
        base_pulled,
        import,
        pushed,
    })
}

fn join_err(e: tokio::task::JoinError) -> Error {
    Error::io("background task", std::io::Error::other(e.to_string()))
}
