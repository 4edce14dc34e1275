//! `booster apply OLD NEW PATCH REGISTRY`: on the receiving side, make sure the base (OLD)
//! is in the store — ingesting it from REGISTRY if needed — verify and import the patch,
//! then rebuild and push every NEW image into REGISTRY at its repository path. Nothing is
//! pushed unless the patch verified and its base is present; a rerun after any failure
//! finishes the job (import skips what it has, push skips what the registry has).
//!
//! Base layers that NEW shares unchanged, that the patch takes no bytes from and that the
//! destination already holds are not ingested: such an apply records no image in the store
//! (it does not hold all of them) and pushes NEW by the patch's manifest digests.
//!
//! Shared layers are delta bases only on both sides (neither analysed how to rebuild
//! them), so a NEW image bound for another repository than OLD's gets them mounted from
//! OLD's repository at the destination.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;

use super::import::{self, ImportReport};
use super::pull::{self, Ctx, PullOptions};
use super::push::{self, MountHints, PushReport};
use super::push_attached;
use crate::bundle::BundleReader;
use crate::bundle::format::{BundleImage, Meta};
use crate::error::{Error, Result};
use crate::id::Digest;
use crate::layer::Analysis;
use crate::oci::reference::{Destination, ImageRef, RegistryRef, parse_registry_ref};
use crate::oci::source::Sink;
use crate::store::{Doc, ImageRecord};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplyReport {
    pub base_pulled: Vec<String>,
    /// Base layers not pulled: shared unchanged by the new images, used by the patch for
    /// no bytes, and at the destination (in each repository that needs them, or in one of
    /// the old images' repositories to mount them from).
    pub base_layers_left_out: usize,
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
    // The push comes after verifying and importing: its client gets built meanwhile.
    ctx.registries.warm_up(&dest.registry);
    let store = ctx.store.clone();
    let p = patch.to_path_buf();
    let (meta, facts) = tokio::task::spawn_blocking(move || -> Result<_> {
        let bar = crate::output::bytes_bar(0, "verifying patch");
        let r = import::open_verified(&store, &p, &mut |a, b| {
            crate::output::progress_to(&bar, a, b);
        });
        bar.finish_and_clear();
        let (reader, meta) = r?;
        Ok((meta, PatchFacts::of(reader, p)?))
    })
    .await
    .map_err(join_err)??;

    // Every NEW image must be in the patch; decide what to push before touching anything.
    let bundle_images: Vec<(RegistryRef, &BundleImage)> = meta
        .images
        .iter()
        .filter_map(|i| parse_registry_ref(&i.name).ok().map(|r| (r, i)))
        .collect();
    let mut to_push = Vec::new();
    for n in new {
        let ImageRef::Registry(r) = n else {
            return Err(Error::Usage(format!(
                "{n}: apply pushes to a registry; name new images as registry references"
            )));
        };
        let (_, image) = bundle_images
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
        // Pushed by the patch's own digest: the store records the image only if it holds
        // all of it, which it does not when base layers were left out.
        let top = ImageRecord {
            digest: image.digest,
            media_type: image.media_type.clone(),
        };
        to_push.push(Target {
            name: image.name.clone(),
            top,
            dest: r.rehomed(dest),
        });
    }

    // OLD as the destination holds it.
    let old_here: Vec<ImageRef> = old
        .iter()
        .map(|o| match o {
            ImageRef::Registry(r) => ImageRef::Registry(r.rehomed(dest)),
            other => other.clone(),
        })
        .collect();
    // Layers NEW shares unchanged with OLD are stored as delta bases only, here as on the
    // sending side: a repository lacking one gets it mounted from OLD's repository.
    let old_at_dest: Vec<RegistryRef> = old_here
        .iter()
        .filter_map(|o| match o {
            ImageRef::Registry(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let hints = MountHints::default();
    let at_destination =
        shared_layers_at_destination(ctx, &meta, &facts, &to_push, &old_at_dest, &hints).await?;

    // The base: what the registry already holds of OLD, ingested as delta base.
    let mut base_pulled = Vec::new();
    let mut left_out = LeftOut::default();
    let nothing = HashSet::new();
    if !import::missing_base(&ctx.store, &meta, &nothing)?.is_empty() {
        left_out = layers_to_leave_out(ctx, &meta, &facts, &at_destination).await?;
        let opts = PullOptions {
            skip_layers: Arc::new(left_out.blobs.clone()),
            ..PullOptions::new(None, Analysis::BaseOnly)
        };
        let mut failures = Vec::new();
        for src in &old_here {
            match pull::pull_image(ctx, src, &opts).await {
                Ok(p) => base_pulled.push(p.name),
                Err(e) => failures.push(format!("{src}: {e}")),
            }
        }
        let missing = import::missing_base(&ctx.store, &meta, &left_out.contents)?;
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

    // Each new image, then what the patch brings attached to it (signatures,
    // attestations, SBOMs) beside it; their documents are read once the import wrote them.
    let bundled: Vec<(String, ImageRecord)> = meta
        .images
        .iter()
        .map(|i| {
            let rec = ImageRecord {
                digest: i.digest,
                media_type: i.media_type.clone(),
            };
            (i.name.clone(), rec)
        })
        .collect();
    let base_layers_left_out = left_out.blobs.len();
    let store = ctx.store.clone();
    let (reader, p) = (facts.reader.clone(), facts.path.clone());
    let import = tokio::task::spawn_blocking(move || {
        let bar = crate::output::bytes_bar(0, "importing patch");
        let opts = import::ImportOptions {
            absent_base: left_out.contents,
        };
        // Verified at the start: not read and hashed a second time.
        let r = import::import_verified(
            &store,
            &reader,
            &meta,
            &p,
            &mut |_, a, b| {
                crate::output::progress_to(&bar, a, b);
            },
            &opts,
        );
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

    let attachable = if ctx.referrers || ctx.verify_keys.is_some() {
        push_attached::candidates_of(ctx, bundled)?
    } else {
        Vec::new()
    };
    let mut pushed = Vec::new();
    let mut refused = Vec::new();
    for t in &to_push {
        if let Some(why) = push_attached::refusal(ctx, &t.name, &t.top.digest, &attachable)? {
            refused.push(why);
            continue;
        }
        let sink = Sink::Registry {
            registries: ctx.registries.clone(),
            image: t.dest.clone(),
        };
        pushed.push(push::push_image_at(ctx, &t.name, &t.top, &sink, &hints).await?);
        if ctx.referrers {
            let subjects = push::manifest_digests(&ctx.store, &t.top.digest)?;
            for (_, r) in
                push_attached::push_attached(ctx, &attachable, &t.name, &subjects, &sink, &hints).await?
            {
                pushed.push(r);
            }
        }
    }
    push_attached::unverified(ctx, &refused)?;
    Ok(ApplyReport {
        base_pulled,
        base_layers_left_out,
        import,
        pushed,
    })
}

/// A NEW image of the patch and where it goes.
struct Target {
    name: String,
    top: ImageRecord,
    dest: RegistryRef,
}

/// Base layers an apply need not ingest: blob digests (not pulled) and their contents (the
/// import may lack them).
#[derive(Default)]
struct LeftOut {
    blobs: HashSet<Digest>,
    contents: HashSet<Digest>,
}

/// What apply needs of a verified patch besides its metadata.
struct PatchFacts {
    path: PathBuf,
    reader: Arc<BundleReader>,
    /// NEW's blobs and their contents.
    blobs: Vec<(Digest, Digest)>,
    docs: HashMap<Digest, Doc>,
}

impl PatchFacts {
    fn of(reader: BundleReader, path: PathBuf) -> Result<PatchFacts> {
        Ok(PatchFacts {
            blobs: import::blob_contents(&reader)?,
            docs: import::bundle_docs(&reader)?,
            reader: Arc::new(reader),
            path,
        })
    }
}

/// NEW's blobs whose content is a base layer (shared unchanged with OLD) and that every
/// destination repository whose new image has them holds or can mount: for each one a
/// repository lacks, `hints` names an OLD repository at the destination that has it.
async fn shared_layers_at_destination(
    ctx: &Ctx,
    meta: &Meta,
    facts: &PatchFacts,
    to_push: &[Target],
    old_at_dest: &[RegistryRef],
    hints: &MountHints,
) -> Result<HashSet<Digest>> {
    let base: HashSet<Digest> = meta.base.iter().map(|b| b.content).collect();
    let lookup = |d: &Digest| -> Result<Doc> {
        facts.docs.get(d).cloned().ok_or_else(|| Error::Bundle {
            path: facts.path.clone(),
            reason: format!("manifest {d} is not in the patch"),
        })
    };
    let mut wanted: Vec<(&RegistryRef, HashSet<Digest>)> = Vec::new();
    for t in to_push {
        wanted.push((&t.dest, push::image_blobs(&lookup, &t.top.digest)?));
    }
    // One blob's checks are a few round trips in turn; blobs are checked side by side, as
    // the push checks what the destination has (a remote registry is ~100 ms away).
    let wanted = &wanted;
    let checks = facts
        .blobs
        .iter()
        .filter(|(_, c)| base.contains(c))
        .map(|(blob, _)| async move {
            let mut needed = false;
            for (target, _) in wanted.iter().filter(|(_, b)| b.contains(blob)) {
                needed = true;
                let reachable = probe(ctx, target, blob).await
                    || hints.mountable(target, blob)
                    || find_in_old(ctx, blob, target, old_at_dest, hints).await;
                if !reachable {
                    return None;
                }
            }
            needed.then_some(*blob)
        });
    let out: HashSet<Digest> = futures_util::stream::iter(checks)
        .buffer_unordered(ctx.jobs.max(1) * 2)
        .filter_map(std::future::ready)
        .collect()
        .await;
    Ok(out)
}

/// Look for `blob` in OLD's repositories on `target`'s registry; note the first that has it.
async fn find_in_old(
    ctx: &Ctx,
    blob: &Digest,
    target: &RegistryRef,
    old_at_dest: &[RegistryRef],
    hints: &MountHints,
) -> bool {
    for o in old_at_dest
        .iter()
        .filter(|o| o.registry == target.registry && o.repository != target.repository)
    {
        if probe(ctx, o, blob).await {
            hints.set(&o.registry, blob, &o.repository);
            return true;
        }
    }
    false
}

/// Whether `repo` holds `blob`. A failed check (an unreadable repository, say) counts as
/// "no": the layer is then pulled, as it would have been without the shortcut.
async fn probe(ctx: &Ctx, repo: &RegistryRef, blob: &Digest) -> bool {
    match ctx.registries.blob_exists(repo, blob).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(
                "checking {} in {}/{}: {e}",
                blob.short(),
                repo.registry,
                repo.repository
            );
            false
        }
    }
}

/// The layers NEW shares unchanged with OLD that the patch takes no bytes from and that
/// every destination repository whose new image has them holds or can mount: the push
/// will find them there, so pulling and ingesting them would only cost time (for an app
/// update on a large base image, most of the base). Any doubt means they are pulled.
async fn layers_to_leave_out(
    ctx: &Ctx,
    meta: &Meta,
    facts: &PatchFacts,
    at_destination: &HashSet<Digest>,
) -> Result<LeftOut> {
    if at_destination.is_empty() {
        return Ok(LeftOut::default());
    }
    let (reader, m) = (facts.reader.clone(), meta.clone());
    let used = tokio::task::spawn_blocking(move || import::base_used_for_data(&reader, &m))
        .await
        .map_err(join_err)??;
    let mut out = LeftOut::default();
    for (blob, content) in &facts.blobs {
        if at_destination.contains(blob) && !used.contains(content) && !ctx.store.has_recipe(content)? {
            out.blobs.insert(*blob);
            out.contents.insert(*content);
        }
    }
    if !out.blobs.is_empty() {
        tracing::info!(
            "{} base layer(s) are shared unchanged and already at the destination (or mountable there): not pulled",
            out.blobs.len()
        );
    }
    Ok(out)
}

fn join_err(e: tokio::task::JoinError) -> Error {
    Error::io("background task", std::io::Error::other(e.to_string()))
}
