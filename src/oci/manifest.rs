//! Manifests and indexes: just enough parsing to walk from an image to its parts. The raw
//! bytes are never re-serialised (that would change their digest); this module only reads.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::id::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Media types booster asks registries for, most specific first.
pub const ACCEPTED_MANIFEST_TYPES: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Configs (and other small JSON blobs) are kept verbatim as documents up to this size;
/// larger config blobs are chunked like layers.
pub const MAX_DOC_BLOB: u64 = 4 << 20;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
    /// OCI 1.1: what kind of artifact a referrer is (in referrers lists and indexes).
    #[serde(default)]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn digest(&self) -> Result<Digest> {
        self.digest
            .parse()
            .map_err(|e: crate::id::DigestParseError| Error::format("descriptor", e.to_string()))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    pub fn describe(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDoc {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// A parsed manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Manifest {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
}

/// Parse manifest or index bytes. `declared` is the media type the registry or layout gave
/// (the document's own `mediaType` field is optional in OCI, and umoci omits it).
pub fn parse(bytes: &[u8], declared: Option<&str>) -> Result<Parsed> {
    let raw: RawDoc = serde_json::from_slice(bytes)
        .map_err(|e| Error::format("manifest", format!("not valid manifest JSON: {e}")))?;
    if raw.schema_version.is_some_and(|v| v != 2) {
        return Err(Error::format(
            "manifest",
            format!(
                "schemaVersion {} is not supported (only schema 2 manifests and OCI)",
                raw.schema_version.unwrap_or_default()
            ),
        ));
    }
    let media_type = raw
        .media_type
        .clone()
        .or_else(|| declared.map(str::to_string))
        .unwrap_or_else(|| {
            if raw.manifests.is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        });
    if let Some(manifests) = raw.manifests {
        for d in &manifests {
            d.digest()?;
        }
        return Ok(Parsed::Index {
            media_type,
            manifests,
        });
    }
    match (raw.config, raw.layers) {
        (Some(config), layers) => {
            let layers = layers.unwrap_or_default();
            config.digest()?;
            for l in &layers {
                l.digest()?;
            }
            Ok(Parsed::Manifest {
                media_type,
                config,
                layers,
            })
        }
        _ => Err(Error::format(
            "manifest",
            "neither an image manifest (config, layers) nor an index (manifests)",
        )),
    }
}

impl Parsed {
    pub fn media_type(&self) -> &str {
        match self {
            Parsed::Manifest { media_type, .. } | Parsed::Index { media_type, .. } => media_type,
        }
    }
}

/// The compression a layer media type declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
    /// Not a known layer type: carried as opaque bytes.
    Unknown,
}

pub fn layer_compression(media_type: &str) -> LayerCompression {
    let mt = media_type;
    if mt.ends_with("tar+gzip") || mt == "application/vnd.docker.image.rootfs.diff.tar.gzip" {
        LayerCompression::Gzip
    } else if mt.ends_with("tar+zstd") || mt == "application/vnd.docker.image.rootfs.diff.tar.zstd" {
        LayerCompression::Zstd
    } else if mt.ends_with(".tar") || mt == "application/vnd.docker.image.rootfs.diff.tar" {
        LayerCompression::None
    } else {
        LayerCompression::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_umoci_manifest_without_media_type() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","size":5},"layers":[]}"#;
        match parse(m, None).unwrap() {
            Parsed::Manifest { media_type, .. } => assert_eq!(media_type, OCI_MANIFEST),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn refuses_schema1() {
        let e = parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).unwrap_err();
        assert!(e.to_string().contains("schemaVersion 1"));
    }

    #[test]
    fn classifies_layer_media_types() {
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+gzip"),
            LayerCompression::Gzip
        );
        assert_eq!(
            layer_compression("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            LayerCompression::Gzip
        );
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+zstd"),
            LayerCompression::Zstd
        );
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar"),
            LayerCompression::None
        );
        assert_eq!(
            layer_compression("application/vnd.in-toto+json"),
            LayerCompression::Unknown
        );
    }
}
