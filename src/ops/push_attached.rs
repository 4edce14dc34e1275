//! Pushing what refers to an image (signatures, attestations, SBOMs, OCI 1.1 referrers)
//! after the image, in the destination's dialect, never clobbering what it holds:
//! - a referrer by digest, with its `subject`; where the registry does not list it
//!   afterwards (no referrers API), it is merged into the subject's tag-schema index;
//! - cosign's tags: where the destination's tag names other signatures, the union of both
//!   layer lists is pushed, as `cosign sign` does when it appends a signature.

use std::collections::HashSet;

use super::pull::Ctx;
use super::push::{self, MountHints, PushReport};
use crate::error::{Error, Result};
use crate::id::Digest;
use crate::oci::cosign::{self, Finding};
use crate::oci::manifest;
use crate::oci::reference::RegistryRef;
use crate::oci::referrers::{self, Attached, Link};
use crate::oci::source::Sink;
use crate::store::ImageRecord;

/// A stored or bundled image that may be attached to another: name, top record, and its
/// top manifest's bytes.
pub struct Candidate {
    pub name: String,
    pub record: ImageRecord,
    pub manifest: Vec<u8>,
}

/// Every image the store records, as candidates for [`push_attached`].
pub fn stored_candidates(ctx: &Ctx) -> Result<Vec<Candidate>> {
    candidates_of(ctx, ctx.store.images()?)
}

/// The images `records` (names and top records, from the store or a bundle's meta) whose
/// top manifests the store holds.
pub fn candidates_of(ctx: &Ctx, records: Vec<(String, ImageRecord)>) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for (name, record) in records {
        if let Some(doc) = ctx.store.doc(&record.digest)? {
            out.push(Candidate {
                name,
                record,
                manifest: doc.data,
            });
        }
    }
    Ok(out)
}

/// The candidates from the repository of the image `image`: an image with the same digest
/// in another repository does not bring its attachments along.
fn same_repository<'a>(candidates: &'a [Candidate], image: &'a str) -> impl Iterator<Item = &'a Candidate> {
    let repository = referrers::repository_of(image);
    candidates
        .iter()
        .filter(move |c| referrers::repository_of(&c.name) == repository)
}

/// Whether a candidate is attached to another image.
pub fn is_attached(c: &Candidate) -> bool {
    referrers::attached(&c.name, &c.manifest).is_some()
}

/// Push, after the image `image` whose manifests are `subjects` went to `sink`, every
/// candidate of the same repository attached to it (and to those, to
/// `referrers::MAX_DEPTH`). Returns the reports and the names pushed.
pub async fn push_attached(
    ctx: &Ctx,
    candidates: &[Candidate],
    image: &str,
    subjects: &HashSet<Digest>,
    sink: &Sink,
    hints: &MountHints,
) -> Result<Vec<(String, PushReport)>> {
    let listed: Vec<&Candidate> = same_repository(candidates, image).collect();
    let mut out = Vec::new();
    for (c, a) in referrers::attached_to(&listed, |c| (&c.name, c.record.digest, &c.manifest), subjects) {
        let target = sink_beside(sink, &a.link, &c.record.digest);
        let report = push_one(ctx, c, &a, &target, hints).await?;
        out.push((c.name.clone(), report));
    }
    Ok(out)
}

/// The sink for an attached manifest next to its subject's sink: the same repository (or
/// layout), under cosign's tag or by digest.
pub fn sink_beside(subject_sink: &Sink, link: &Link, digest: &Digest) -> Sink {
    let (tag, digest) = match link {
        Link::CosignTag(t) => (Some(t.clone()), None),
        Link::Subject => (None, Some(*digest)),
    };
    match subject_sink {
        Sink::Registry { registries, image } => Sink::Registry {
            registries: registries.clone(),
            image: RegistryRef {
                tag,
                digest,
                ..image.clone()
            },
        },
        Sink::Layout { layout, .. } => Sink::Layout {
            layout: layout.clone(),
            reference: tag,
        },
    }
}

/// Push one attached manifest to `sink` (already placed beside its subject).
pub async fn push_one(
    ctx: &Ctx,
    c: &Candidate,
    a: &Attached,
    sink: &Sink,
    hints: &MountHints,
) -> Result<PushReport> {
    match (sink, &a.link) {
        (Sink::Registry { registries, image }, Link::CosignTag(tag)) => {
            let existing = registries.find_manifest_by_tag(image, tag).await?;
            match existing {
                Some(e) if e.digest != c.record.digest => {
                    push_cosign_union(ctx, c, sink, registries, image, tag, &e.bytes, hints).await
                }
                _ => push::push_image_at(ctx, &c.name, &c.record, sink, hints).await,
            }
        }
        (Sink::Registry { registries, image }, Link::Subject) => {
            let report = push::push_image_at(ctx, &c.name, &c.record, sink, hints).await?;
            ensure_listed(registries, image, a, c).await?;
            Ok(report)
        }
        (Sink::Layout { .. }, _) => push::push_image_at(ctx, &c.name, &c.record, sink, hints).await,
    }
}

/// Make sure the destination lists referrer `c` for its subject: a registry with the
/// referrers API does so by itself; one without gets the referrer merged into the
/// subject's tag-schema index, whatever that index already lists staying there. The
/// index is read again after the write: another client (cosign, oras, notation at the
/// site) may have rewritten it meanwhile from what it read before, and then the merge is
/// made again on top of theirs.
async fn ensure_listed(
    registries: &crate::oci::registry::Registries,
    repo: &RegistryRef,
    a: &Attached,
    c: &Candidate,
) -> Result<()> {
    const ATTEMPTS: usize = 3;
    let tag = referrers::tag_schema_tag(&a.subject);
    let what = format!("{}/{}:{tag}", repo.registry, repo.repository);
    for attempt in 0..=ATTEMPTS {
        let listed = registries.referrers(repo, &a.subject).await?;
        if listed.iter().any(|d| d.digest == c.record.digest.to_string()) {
            return Ok(());
        }
        if attempt == ATTEMPTS {
            break;
        }
        let existing = registries.find_manifest_by_tag(repo, &tag).await?;
        if let Some(e) = &existing
            && !is_oci_index(&e.bytes)
        {
            return Err(Error::format(
                &what,
                "the referrers tag names something other than an OCI index; booster will not overwrite it",
            ));
        }
        let entry = referrers::index_entry(&c.record.digest, &c.record.media_type, &c.manifest);
        let Some(bytes) =
            referrers::merge_into_tag_index(existing.as_ref().map(|e| e.bytes.as_slice()), entry)?
        else {
            return Ok(());
        };
        registries
            .push_manifest(repo, &tag, &bytes, manifest::OCI_INDEX)
            .await?;
        tracing::info!("{what}: lists {} now", c.record.digest.short());
    }
    Err(Error::format(
        &what,
        format!(
            "{} is still not listed after {ATTEMPTS} merges (another client keeps rewriting the index); run the command again",
            c.record.digest
        ),
    ))
}

fn is_oci_index(bytes: &[u8]) -> bool {
    matches!(manifest::parse(bytes, None), Ok(manifest::Parsed::Index { .. }))
}

/// The destination's cosign tag names other signatures than ours: push ours by digest
/// (so that its layers are there), then the union under the tag — the destination's
/// manifest with our layers appended and their digests added to its config's diff_ids,
/// as cosign itself appends a signature.
#[allow(clippy::too_many_arguments)]
async fn push_cosign_union(
    ctx: &Ctx,
    c: &Candidate,
    sink: &Sink,
    registries: &crate::oci::registry::Registries,
    image: &RegistryRef,
    tag: &str,
    theirs: &[u8],
    hints: &MountHints,
) -> Result<PushReport> {
    let by_digest = sink_beside(sink, &Link::Subject, &c.record.digest);
    let report = push::push_image_at(ctx, &c.name, &c.record, &by_digest, hints).await?;
    let what = format!("{}/{}:{tag}", image.registry, image.repository);
    let bad = |e: String| Error::format(&what, e);
    let mut union: serde_json::Value = serde_json::from_slice(theirs).map_err(|e| bad(e.to_string()))?;
    let ours: serde_json::Value = serde_json::from_slice(&c.manifest).map_err(|e| bad(e.to_string()))?;
    // Indexing into JSON that is not an object panics on assignment: check the shape first.
    let shaped = |m: &serde_json::Value| m["layers"].is_array() && m["config"]["digest"].is_string();
    if !shaped(&union) || !shaped(&ours) {
        return Err(bad(
            "not an image manifest with a config and layers; booster will not merge into it".into(),
        ));
    }
    // Two signatures over one payload share the layer's digest and differ in their
    // annotations: a layer is the same only when its whole descriptor is.
    let have: Vec<serde_json::Value> = union["layers"].as_array().cloned().unwrap_or_default();
    let added: Vec<serde_json::Value> = ours["layers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|l| !have.contains(l))
        .collect();
    if added.is_empty() {
        return Ok(report);
    }
    // The config lists every layer's diff id (cosign's layers are not compressed).
    let config_desc = union["config"].clone();
    let config_digest: Digest = config_desc["digest"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e: crate::id::DigestParseError| bad(e.to_string()))?;
    let scratch = ctx
        .store
        .tmp_dir()?
        .join(format!("union-{}.{}", config_digest.hex(), std::process::id()));
    let pushed_config = async {
        registries
            .fetch_blob(
                image,
                &config_digest,
                config_desc["size"].as_u64(),
                &scratch,
                &|_| {},
            )
            .await?;
        let bytes =
            std::fs::read(&scratch).map_err(|e| Error::io(format!("reading {}", scratch.display()), e))?;
        let mut config: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if let Some(ids) = config
            .get_mut("rootfs")
            .and_then(|r| r.get_mut("diff_ids"))
            .and_then(|d| d.as_array_mut())
        {
            ids.extend(added.iter().map(|l| l["digest"].clone()));
        }
        let new_config = serde_json::to_vec(&config).expect("json");
        let d = Digest::of(&new_config);
        std::fs::write(&scratch, &new_config)
            .map_err(|e| Error::io(format!("writing {}", scratch.display()), e))?;
        registries.push_blob_file(image, &d, &scratch, &|_| {}).await?;
        Ok::<_, Error>((d, new_config.len()))
    }
    .await;
    let _ = std::fs::remove_file(&scratch);
    let (config_digest, config_size) = pushed_config?;
    union["config"]["digest"] = serde_json::Value::String(config_digest.to_string());
    union["config"]["size"] = serde_json::Value::from(config_size);
    union["layers"]
        .as_array_mut()
        .ok_or_else(|| bad("its layers are not a list".into()))?
        .extend(added.iter().cloned());
    let bytes = serde_json::to_vec(&union).expect("json");
    let media_type = union["mediaType"]
        .as_str()
        .unwrap_or(manifest::OCI_MANIFEST)
        .to_string();
    registries.push_manifest(image, tag, &bytes, &media_type).await?;
    tracing::info!(
        "{what}: held other signatures; pushed the union ({} layers added to {})",
        added.len(),
        have.len()
    );
    Ok(PushReport {
        digest: Some(Digest::of(&bytes)),
        ..report
    })
}

/// `--verify-key`: None when the image `name` (top manifest `top`) may be pushed (no keys
/// given, or a cosign signature over `top` by one of them among `candidates`), else why
/// not.
pub fn refusal(ctx: &Ctx, name: &str, top: &Digest, candidates: &[Candidate]) -> Result<Option<String>> {
    let Some(keys) = &ctx.verify_keys else {
        return Ok(None);
    };
    let mut doubts = Vec::new();
    for c in same_repository(candidates, name) {
        let Some(a) = referrers::attached(&c.name, &c.manifest) else {
            continue;
        };
        if a.subject != *top {
            continue;
        }
        for f in cosign::check(keys, top, &c.manifest, &mut |d| small_blob(ctx, d)) {
            match f {
                Finding::Signed { key, layout } => {
                    tracing::info!(
                        "{name}: cosign signature ({layout}) by {} verified over {top}",
                        key.display()
                    );
                    return Ok(None);
                }
                Finding::Rejected(why) => doubts.push(why),
                Finding::NotASignature => {}
            }
        }
    }
    Ok(Some(if doubts.is_empty() {
        format!("{name} ({top}) carries no cosign signature")
    } else {
        format!("{name} ({top}): {}", doubts.join("; "))
    }))
}

/// The error for the images `refused` (from [`refusal`]), once the others are pushed.
pub fn unverified(ctx: &Ctx, refused: &[String]) -> Result<()> {
    match (&ctx.verify_keys, refused.is_empty()) {
        (Some(keys), false) => Err(Error::Unverified {
            keys: keys.describe(),
            images: refused.join("; "),
        }),
        _ => Ok(()),
    }
}

/// A signature layer's bytes (a document, or rebuilt from the store and checked against
/// its digest), refused past `cosign::MAX_PAYLOAD`.
fn small_blob(ctx: &Ctx, d: &Digest) -> Result<Vec<u8>> {
    if let Some(doc) = ctx.store.doc(d)? {
        return Ok(doc.data);
    }
    let size = ctx
        .store
        .blob(d)?
        .and_then(|b| ctx.store.recipe(&b.content).ok().flatten().map(|r| r.len))
        .unwrap_or(0);
    if size > cosign::MAX_PAYLOAD {
        return Err(Error::format(
            format!("signature layer {d}"),
            format!("{size} bytes is not a signature"),
        ));
    }
    let path = push::materialize_blocking(&ctx.store, d)?;
    let bytes = std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e));
    let _ = std::fs::remove_file(&path);
    bytes
}

/// [`push_all`] into the registry `dest`, each image under its own repository and tag
/// rehomed there (`push::destination_for`): what `import --push`, `apply` and a replica do.
pub async fn push_all_to(
    ctx: &Ctx,
    names: &[String],
    dest: &crate::oci::reference::Destination,
    hints: &MountHints,
) -> Result<Vec<PushReport>> {
    let sink_for = |name: &str| -> Result<Sink> {
        Ok(Sink::Registry {
            registries: ctx.registries.clone(),
            image: push::destination_for(name, dest)?,
        })
    };
    push_all(ctx, names, &sink_for, hints).await
}

/// Push the images `names` from the store, each followed by what is attached to it; an
/// attached image whose subject is not among `names` goes beside its own subject
/// (placed by `sink_for` like any image).
pub async fn push_all(
    ctx: &Ctx,
    names: &[String],
    sink_for: &(dyn Fn(&str) -> Result<Sink> + Sync),
    hints: &MountHints,
) -> Result<Vec<PushReport>> {
    // Known whatever `--referrers` says: attached images are never pushed as images of
    // their own, and the signature check reads them even when they stay behind.
    let candidates = stored_candidates(ctx)?;
    let attached_names: HashSet<&str> = candidates
        .iter()
        .filter(|c| is_attached(c))
        .map(|c| c.name.as_str())
        .collect();
    let mut refused = Vec::new();
    let mut refused_tops = HashSet::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut reports = Vec::new();
    for name in names.iter().filter(|n| !attached_names.contains(n.as_str())) {
        if let Some(rec) = ctx.store.image(name)?
            && let Some(why) = refusal(ctx, name, &rec.digest, &candidates)?
        {
            refused.push(why);
            refused_tops.insert(rec.digest);
            continue;
        }
        let sink = sink_for(name)?;
        let report = push::push_image(ctx, name, &sink, hints).await?;
        let top = report.digest;
        reports.push(report);
        if let Some(top) = top.filter(|_| ctx.referrers) {
            let subjects = push::manifest_digests(&ctx.store, &top)?;
            for (n, r) in push_attached(ctx, &candidates, name, &subjects, &sink, hints).await? {
                done.insert(n);
                reports.push(r);
            }
        }
    }
    // Attached images named on their own (a signature added to an image the destination
    // already has): beside their subject, by digest or under cosign's tag, never under a
    // tag of their own.
    let alone = names
        .iter()
        .filter(|n| ctx.referrers && attached_names.contains(n.as_str()) && !done.contains(*n));
    for name in alone {
        let c = candidates.iter().find(|c| &c.name == name).expect("a candidate");
        let a = referrers::attached(&c.name, &c.manifest).expect("attached");
        if refused_tops.contains(&a.subject) {
            continue;
        }
        let sink = sink_beside(&sink_for(name)?, &a.link, &c.record.digest);
        reports.push(push_one(ctx, c, &a, &sink, hints).await?);
    }
    unverified(ctx, &refused)?;
    Ok(reports)
}
