//! `docker-archive:FILE[:REF]`: tarballs written by `docker save`. The archive holds
//! `manifest.json` (config file, repo tags, layer files) but no registry manifest; as skopeo
//! does, booster presents each image as a Docker v2 schema 2 manifest whose layers are the
//! archive's layer files as they are (uncompressed tars, or whatever `docker save` stored).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::manifest::{DOCKER_CONFIG, DOCKER_MANIFEST};
use crate::error::{Error, IoContext, Result};
use crate::id::{Digest, Sha256};
use recompress::decode::{self, Format};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// An archive opened for reading: its entries located once, its selected image resolved.
pub struct DockerArchive {
    file: PathBuf,
    entries: HashMap<String, (u64, u64)>,
    /// The synthesized manifest and the archive file behind every blob digest.
    pub manifest: Vec<u8>,
    blobs: HashMap<Digest, String>,
}

impl DockerArchive {
    pub fn open(file: &Path, reference: Option<&str>) -> Result<DockerArchive> {
        let what = format!("docker-archive:{}", file.display());
        let entries = index_tar(file)?;
        let mut me = DockerArchive {
            file: file.to_path_buf(),
            entries,
            manifest: Vec::new(),
            blobs: HashMap::new(),
        };
        let list: Vec<ArchiveImage> = serde_json::from_slice(&me.read_entry("manifest.json")?)
            .map_err(|e| Error::format(&what, format!("manifest.json: {e}")))?;
        let image = select(&list, reference).map_err(|m| Error::format(&what, m))?;
        let config = me.read_entry(&image.config)?;
        let config_digest = Digest::of(&config);
        me.blobs.insert(config_digest, image.config.clone());
        let mut layers = Vec::new();
        for l in &image.layers {
            let (digest, size, format) = me.hash_entry(l)?;
            me.blobs.insert(digest, l.clone());
            let media_type = match format {
                Format::Gzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Format::Zstd => "application/vnd.docker.image.rootfs.diff.tar.zstd",
                Format::Plain => "application/vnd.docker.image.rootfs.diff.tar",
            };
            layers.push(
                serde_json::json!({"mediaType": media_type, "size": size, "digest": digest.to_string()}),
            );
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": config_digest.to_string()},
            "layers": layers,
        });
        me.manifest = serde_json::to_vec_pretty(&manifest).expect("json");
        Ok(me)
    }

    fn read_entry(&self, name: &str) -> Result<Vec<u8>> {
        let (offset, size) = self.locate(name)?;
        let mut f = File::open(&self.file).ctx(|| format!("opening {}", self.file.display()))?;
        f.seek(SeekFrom::Start(offset))
            .ctx(|| format!("reading {}", self.file.display()))?;
        let mut out = Vec::with_capacity(size.min(64 << 20) as usize);
        f.take(size)
            .read_to_end(&mut out)
            .ctx(|| format!("reading {name} in {}", self.file.display()))?;
        Ok(out)
    }

    fn locate(&self, name: &str) -> Result<(u64, u64)> {
        let key = name.trim_start_matches("./");
        self.entries.get(key).copied().ok_or_else(|| {
            Error::format(
                format!("docker-archive:{}", self.file.display()),
                format!("{name} is named in manifest.json but missing from the archive"),
            )
        })
    }

    fn hash_entry(&self, name: &str) -> Result<(Digest, u64, Format)> {
        let (offset, size) = self.locate(name)?;
        let mut f = File::open(&self.file).ctx(|| format!("opening {}", self.file.display()))?;
        f.seek(SeekFrom::Start(offset))
            .ctx(|| format!("reading {}", self.file.display()))?;
        let mut r = f.take(size);
        let mut sha = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut head = Vec::new();
        loop {
            let n = r
                .read(&mut buf)
                .ctx(|| format!("reading {name} in {}", self.file.display()))?;
            if n == 0 {
                break;
            }
            if head.len() < 4 {
                head.extend_from_slice(&buf[..n.min(4)]);
            }
            sha.update(&buf[..n]);
        }
        Ok((sha.finish(), size, decode::sniff(&head)))
    }

    /// Copy the blob `digest` out of the archive into `dest`.
    pub fn extract_blob(&self, digest: &Digest, dest: &Path) -> Result<()> {
        let name = self.blobs.get(digest).ok_or_else(|| {
            Error::format(
                format!("docker-archive:{}", self.file.display()),
                format!("no blob {digest} in this image"),
            )
        })?;
        let (offset, size) = self.locate(name)?;
        let mut f = File::open(&self.file).ctx(|| format!("opening {}", self.file.display()))?;
        f.seek(SeekFrom::Start(offset))
            .ctx(|| format!("reading {}", self.file.display()))?;
        let mut out = File::create(dest).ctx(|| format!("creating {}", dest.display()))?;
        std::io::copy(&mut f.take(size), &mut out).ctx(|| format!("writing {}", dest.display()))?;
        Ok(())
    }
}

fn select<'a>(
    list: &'a [ArchiveImage],
    reference: Option<&str>,
) -> std::result::Result<&'a ArchiveImage, String> {
    match reference {
        None => match list {
            [one] => Ok(one),
            [] => Err("manifest.json lists no images".into()),
            _ => Err(
                "the archive holds several images; name one as docker-archive:FILE:REPO:TAG or :@N".into(),
            ),
        },
        Some(r) if r.starts_with('@') => {
            let i: usize = r[1..].parse().map_err(|_| format!("bad image index {r}"))?;
            list.get(i)
                .ok_or_else(|| format!("no image @{i} (the archive holds {})", list.len()))
        }
        Some(r) => {
            let want = normalise(r);
            list.iter()
                .find(|img| img.repo_tags.iter().flatten().any(|t| normalise(t) == want))
                .ok_or_else(|| format!("no image tagged {r} in the archive"))
        }
    }
}

/// `ubuntu:22.04` and `docker.io/library/ubuntu:22.04` name the same image.
fn normalise(tag: &str) -> String {
    match super::reference::parse_registry_ref(tag) {
        Ok(r) => r.name(),
        Err(_) => tag.to_string(),
    }
}

/// Map every file in the tar to (offset of its data, size).
fn index_tar(file: &Path) -> Result<HashMap<String, (u64, u64)>> {
    let f = File::open(file).ctx(|| format!("opening {}", file.display()))?;
    let mut archive = tar::Archive::new(f);
    let mut out = HashMap::new();
    let entries = archive
        .entries()
        .ctx(|| format!("reading docker archive {}", file.display()))?;
    for e in entries {
        let e = e.ctx(|| format!("reading docker archive {}", file.display()))?;
        let path = e
            .path()
            .ctx(|| format!("reading docker archive {}", file.display()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        out.insert(path, (e.raw_file_position(), e.size()));
    }
    Ok(out)
}
