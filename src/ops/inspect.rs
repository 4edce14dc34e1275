//! `booster inspect`: per layer of a stored image, its media type, compressed and plain
//! size, the encoder that made it, the rebuild method and what the method costs.

use crate::error::{Error, Result};
use crate::id::Digest;
use recompress::analyze::encoder_guess;
use recompress::{Deflate, KpVariant, Method, ZstdModel, gzip};
use std::collections::HashSet;

use crate::oci::manifest::{self, Parsed};
use crate::oci::referrers::{self, AttachedImage};
use crate::store::Store;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerInfo {
    pub digest: Digest,
    pub media_type: String,
    pub compressed_size: u64,
    pub uncompressed_size: Option<u64>,
    pub encoder: String,
    pub method: String,
    pub correction_bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestInfo {
    pub digest: Digest,
    pub platform: Option<String>,
    pub config: Digest,
    pub layers: Vec<LayerInfo>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageInfo {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub manifests: Vec<ManifestInfo>,
    /// What refers to this image (and to those, recursively): signatures, attestations,
    /// SBOMs, other OCI 1.1 referrers, in push order.
    pub attached: Vec<AttachedImage>,
    /// When this image is itself attached to another: that one's manifest digest.
    pub attached_to: Option<Digest>,
}

/// The images in the store attached to the manifests `subjects`, recursively.
pub fn attached_of(store: &Store, subjects: HashSet<Digest>) -> Result<Vec<AttachedImage>> {
    let mut candidates = Vec::new();
    for (name, rec) in store.images()? {
        if let Some(doc) = store.doc(&rec.digest)? {
            candidates.push((name, rec.digest, doc));
        }
    }
    Ok(
        referrers::attached_to(&candidates, |c| (&c.0, c.1, &c.2.data), &subjects)
            .into_iter()
            .map(|((name, digest, doc), a)| AttachedImage {
                name: name.clone(),
                digest: *digest,
                subject: a.subject,
                kind: a.kind,
                artifact_type: a.artifact_type,
                bytes: referrers::manifest_and_blob_bytes(&doc.data, &doc.media_type),
            })
            .collect(),
    )
}

pub fn inspect(store: &Store, name: &str) -> Result<ImageInfo> {
    let rec = store
        .image(name)?
        .ok_or_else(|| Error::Usage(format!("image {name} is not in the store (see `booster images`)")))?;
    let mut info = ImageInfo {
        name: name.to_string(),
        digest: rec.digest,
        media_type: rec.media_type.clone(),
        manifests: Vec::new(),
        attached: Vec::new(),
        attached_to: None,
    };
    let doc = store.doc(&rec.digest)?.ok_or_else(|| Error::NotInStore {
        path: store.path().to_path_buf(),
        kind: "manifest",
        digest: rec.digest,
        hint: "",
    })?;
    match manifest::parse(&doc.data, Some(&doc.media_type))? {
        Parsed::Index { manifests, .. } => {
            for m in manifests {
                if !manifest::is_manifest(&m.media_type) {
                    continue;
                }
                let d = m.digest()?;
                if let Some(child) = store.doc(&d)? {
                    let platform = m.platform.as_ref().map(|p| p.describe());
                    info.manifests.push(manifest_info(
                        store,
                        &d,
                        &child.data,
                        &child.media_type,
                        platform,
                    )?);
                }
            }
        }
        Parsed::Manifest { .. } => {
            info.manifests.push(manifest_info(
                store,
                &rec.digest,
                &doc.data,
                &doc.media_type,
                None,
            )?);
        }
    }
    info.attached_to = referrers::attached(name, &doc.data).map(|a| a.subject);
    let mut subjects: HashSet<Digest> = info.manifests.iter().map(|m| m.digest).collect();
    subjects.insert(rec.digest);
    info.attached = attached_of(store, subjects)?;
    Ok(info)
}

fn manifest_info(
    store: &Store,
    digest: &Digest,
    bytes: &[u8],
    media_type: &str,
    platform: Option<String>,
) -> Result<ManifestInfo> {
    let Parsed::Manifest { config, layers, .. } = manifest::parse(bytes, Some(media_type))? else {
        return Err(Error::format(digest.to_string(), "expected an image manifest"));
    };
    let mut out = ManifestInfo {
        digest: *digest,
        platform,
        config: config.digest()?,
        layers: Vec::new(),
    };
    for l in layers {
        let d = l.digest()?;
        let (uncompressed, encoder, method, corr) = match store.blob(&d)? {
            Some(rec) => {
                let plain = match &rec.method {
                    Method::Whole { .. } => None,
                    _ => store.recipe(&rec.content)?.map(|r| r.len),
                };
                (
                    plain,
                    encoder_of(&rec.method),
                    rec.method.describe(),
                    rec.method.correction_bytes(),
                )
            }
            None => (None, "-".into(), "missing".into(), 0),
        };
        out.layers.push(LayerInfo {
            digest: d,
            media_type: l.media_type.clone(),
            compressed_size: l.size,
            uncompressed_size: uncompressed,
            encoder,
            method,
            correction_bytes: corr,
        });
    }
    Ok(out)
}

/// The encoder family a method implies.
pub fn encoder_of(m: &Method) -> String {
    match m {
        Method::Plain => "none".into(),
        Method::Whole { reason } => reason.clone(),
        Method::Unanalyzed => "not analysed".into(),
        Method::Zstd { frames } => {
            let kp = frames
                .iter()
                .any(|f| matches!(f.model, ZstdModel::Klauspost { .. }));
            let chunked = frames
                .iter()
                .any(|f| f.skippable.is_some() || matches!(f.model, ZstdModel::Verbatim { .. }));
            match (kp, chunked) {
                (true, true) => "klauspost/compress zstd (zstd:chunked)".into(),
                (true, false) => "klauspost/compress zstd".into(),
                _ => "libzstd (zstd CLI)".into(),
            }
        }
        Method::Gzip { members, .. } => {
            let Some(first) = members.first() else {
                return "gzip".into();
            };
            match &first.deflate {
                Deflate::GoStd { .. } => "Go compress/gzip".into(),
                Deflate::Klauspost {
                    variant: KpVariant::Go1_27,
                    block_size: 0,
                    ..
                } => "Go 1.27 compress/gzip".into(),
                Deflate::Klauspost { block_size: 0, .. } => "klauspost/compress gzip".into(),
                Deflate::Klauspost { .. } => "klauspost/pgzip".into(),
                Deflate::Zlib { .. } => "zlib".into(),
                Deflate::Replay { model, .. } => format!(
                    "{} (near miss of {})",
                    match gzip::parse_header(&first.header) {
                        Ok(h) => encoder_guess(&h),
                        Err(_) => "gzip",
                    },
                    model.describe()
                ),
                Deflate::Preflate { .. } => match gzip::parse_header(&first.header) {
                    Ok(h) => encoder_guess(&h).into(),
                    Err(_) => "gzip".into(),
                },
            }
        }
    }
}
