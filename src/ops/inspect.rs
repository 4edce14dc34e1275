//! `booster inspect`: per layer of a stored image, its media type, compressed and plain
//! size, the encoder that made it, the rebuild method and what the method costs.

use crate::compress::analyze::encoder_guess;
use crate::compress::{Deflate, KpVariant, Method, ZstdModel, gzip};
use crate::error::{Error, Result};
use crate::id::Digest;
use crate::oci::manifest::{self, Parsed};
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
