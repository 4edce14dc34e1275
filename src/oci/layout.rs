//! OCI image layouts (`oci:DIR[:REF]`): `oci-layout`, `index.json`, `blobs/sha256/…`.
//! Reading resolves REF through the `org.opencontainers.image.ref.name` annotation; writing
//! adds blobs (renamed into place, so a crash never leaves a partial blob under its digest)
//! and then updates `index.json` atomically.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::manifest;
use crate::error::{Error, IoContext, Result};
use crate::id::Digest;

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone)]
pub struct OciLayout {
    pub dir: PathBuf,
}

/// An entry of `index.json` that a reference resolved to.
#[derive(Debug, Clone)]
pub struct LayoutEntry {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

impl OciLayout {
    pub fn open(dir: &Path) -> Result<OciLayout> {
        let marker = dir.join("oci-layout");
        if !marker.is_file() {
            return Err(Error::format(
                format!("oci:{}", dir.display()),
                "not an OCI image layout (no oci-layout file)",
            ));
        }
        Ok(OciLayout {
            dir: dir.to_path_buf(),
        })
    }

    /// Open for writing, creating the layout if the directory is empty or missing.
    pub fn create(dir: &Path) -> Result<OciLayout> {
        std::fs::create_dir_all(dir.join("blobs/sha256")).ctx(|| format!("creating {}", dir.display()))?;
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !dir.join("index.json").exists() {
            let empty = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": []});
            write_atomic(
                &dir.join("index.json"),
                serde_json::to_vec(&empty).expect("json").as_slice(),
            )?;
        }
        Ok(OciLayout {
            dir: dir.to_path_buf(),
        })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    fn index(&self) -> Result<Value> {
        let p = self.dir.join("index.json");
        let bytes = std::fs::read(&p).ctx(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::format(p.display().to_string(), e.to_string()))
    }

    /// The manifest or index that `reference` names (or the only one when None).
    pub fn resolve(&self, reference: Option<&str>) -> Result<LayoutEntry> {
        let index = self.index()?;
        let entries = index["manifests"].as_array().cloned().unwrap_or_default();
        let what = format!("oci:{}", self.dir.display());
        if let Some(d) = reference.and_then(|r| r.parse::<Digest>().ok()) {
            return self.resolve_digest(&d, &entries);
        }
        let chosen = match reference {
            Some(r) => entries
                .iter()
                .find(|e| e["annotations"][REF_NAME].as_str() == Some(r))
                .ok_or_else(|| Error::format(&what, format!("no image named {r:?} in index.json")))?,
            None => match self.images_among(&entries).as_slice() {
                [one] => *one,
                [] => return Err(Error::format(&what, "index.json lists no images")),
                _ => {
                    return Err(Error::format(
                        &what,
                        "index.json lists several images; name one as oci:DIR:REF",
                    ));
                }
            },
        };
        let digest: Digest = chosen["digest"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|e: crate::id::DigestParseError| Error::format(&what, e.to_string()))?;
        Ok(LayoutEntry {
            digest,
            media_type: chosen["mediaType"]
                .as_str()
                .unwrap_or(manifest::OCI_MANIFEST)
                .to_string(),
            size: chosen["size"].as_u64().unwrap_or(0),
        })
    }

    /// Every entry of `index.json`: digest and name (`org.opencontainers.image.ref.name`),
    /// if it has one. Referrers are listed there without a name (OCI image layout 1.1).
    pub fn entries(&self) -> Result<Vec<(Digest, Option<String>)>> {
        let index = self.index()?;
        let mut out = Vec::new();
        for e in index["manifests"].as_array().cloned().unwrap_or_default() {
            let Ok(d) = e["digest"].as_str().unwrap_or_default().parse() else {
                continue;
            };
            out.push((d, e["annotations"][REF_NAME].as_str().map(str::to_string)));
        }
        Ok(out)
    }

    /// The entries that are images rather than what refers to one: not named by a cosign or
    /// tag-schema tag, and (unnamed) naming no subject.
    fn images_among<'a>(&self, entries: &'a [Value]) -> Vec<&'a Value> {
        entries
            .iter()
            .filter(|e| match e["annotations"][REF_NAME].as_str() {
                Some(name) => !super::referrers::is_referrer_tag(name),
                None => e["digest"]
                    .as_str()
                    .and_then(|d| d.parse::<Digest>().ok())
                    .and_then(|d| self.read_blob(&d).ok())
                    .is_none_or(|bytes| super::referrers::subject_of(&bytes).is_none()),
            })
            .collect()
    }

    /// A manifest named by its digest (`oci:DIR:sha256:…`): an entry of `index.json`, or
    /// only a blob (a referrer listed in a tag-schema index).
    fn resolve_digest(&self, d: &Digest, entries: &[Value]) -> Result<LayoutEntry> {
        if let Some(e) = entries
            .iter()
            .find(|e| e["digest"].as_str() == Some(&d.to_string()))
        {
            return Ok(LayoutEntry {
                digest: *d,
                media_type: e["mediaType"]
                    .as_str()
                    .unwrap_or(manifest::OCI_MANIFEST)
                    .to_string(),
                size: e["size"].as_u64().unwrap_or(0),
            });
        }
        let bytes = self.read_blob(d)?;
        let media_type = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
        Ok(LayoutEntry {
            digest: *d,
            media_type,
            size: bytes.len() as u64,
        })
    }

    /// The names (`org.opencontainers.image.ref.name`) in `index.json`.
    pub fn tags(&self) -> Result<Vec<String>> {
        let index = self.index()?;
        Ok(index["manifests"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e["annotations"][REF_NAME].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let bytes = std::fs::read(&p).ctx(|| format!("reading {}", p.display()))?;
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", p.display()),
                expected: *d,
                actual,
            });
        }
        Ok(bytes)
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Move a verified blob file into the layout.
    pub fn put_blob_file(&self, d: &Digest, file: &Path) -> Result<()> {
        let dest = self.blob_path(d);
        if dest.is_file() {
            return Ok(());
        }
        let tmp = dest.with_extension("partial");
        std::fs::copy(file, &tmp).ctx(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &dest).ctx(|| format!("writing {}", dest.display()))
    }

    pub fn put_blob_bytes(&self, d: &Digest, bytes: &[u8]) -> Result<()> {
        let dest = self.blob_path(d);
        if dest.is_file() {
            return Ok(());
        }
        write_atomic(&dest, bytes)
    }

    /// Point `reference` at a manifest or index in `index.json` (replacing an entry with the
    /// same name).
    pub fn tag(&self, reference: Option<&str>, digest: &Digest, media_type: &str, size: u64) -> Result<()> {
        let mut index = self.index()?;
        let mut entries = index["manifests"].as_array().cloned().unwrap_or_default();
        entries.retain(|e| match reference {
            Some(r) => e["annotations"][REF_NAME].as_str() != Some(r),
            None => e["digest"].as_str() != Some(&digest.to_string()),
        });
        let mut entry = json!({"mediaType": media_type, "digest": digest.to_string(), "size": size});
        if let Some(r) = reference {
            entry["annotations"] = json!({ REF_NAME: r });
        }
        entries.push(entry);
        index["manifests"] = Value::Array(entries);
        let bytes = serde_json::to_vec(&index).expect("json");
        write_atomic(&self.dir.join("index.json"), &bytes)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).ctx(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("writing {}", path.display()))
}
