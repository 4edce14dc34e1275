//! Where images come from and go to, behind one interface: a registry, an OCI layout, or
//! (read only) a docker-archive tarball.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::archive::DockerArchive;
use super::layout::OciLayout;
use super::reference::{ImageRef, RegistryRef};
use super::registry::{RawManifest, Registries};
use crate::error::{Error, Result};
use crate::id::Digest;

pub enum Source {
    Registry {
        registries: Arc<Registries>,
        image: RegistryRef,
    },
    Layout {
        layout: OciLayout,
        reference: Option<String>,
    },
    Archive(Box<DockerArchive>),
}

impl Source {
    pub fn open(r: &ImageRef, registries: &Arc<Registries>) -> Result<Source> {
        Ok(match r {
            ImageRef::Registry(image) => Source::Registry {
                registries: registries.clone(),
                image: image.clone(),
            },
            ImageRef::OciLayout { dir, reference } => Source::Layout {
                layout: OciLayout::open(dir)?,
                reference: reference.clone(),
            },
            ImageRef::DockerArchive { file, reference } => {
                let file = file.clone();
                let reference = reference.clone();
                Source::Archive(Box::new(DockerArchive::open(&file, reference.as_deref())?))
            }
        })
    }

    /// The manifest or index the reference names, with the media type the source declares
    /// (if any).
    pub async fn top(&self) -> Result<(RawManifest, Option<String>)> {
        match self {
            Source::Registry { registries, image } => Ok((registries.get_manifest(image).await?, None)),
            Source::Layout { layout, reference } => {
                let e = layout.resolve(reference.as_deref())?;
                let bytes = layout.read_blob(&e.digest)?;
                Ok((
                    RawManifest {
                        digest: e.digest,
                        bytes,
                    },
                    Some(e.media_type),
                ))
            }
            Source::Archive(a) => Ok((
                RawManifest {
                    digest: Digest::of(&a.manifest),
                    bytes: a.manifest.clone(),
                },
                Some(super::manifest::DOCKER_MANIFEST.to_string()),
            )),
        }
    }

    /// A child manifest of an index, by digest.
    pub async fn manifest(&self, digest: &Digest) -> Result<RawManifest> {
        match self {
            Source::Registry { registries, image } => {
                registries.get_manifest_by(image, &digest.to_string()).await
            }
            Source::Layout { layout, .. } => Ok(RawManifest {
                digest: *digest,
                bytes: layout.read_blob(digest)?,
            }),
            Source::Archive(_) => Err(Error::format("docker-archive", "archives hold no indexes")),
        }
    }

    /// Copy a blob into `dest`, verifying its digest.
    pub async fn fetch_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        dest: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        match self {
            Source::Registry { registries, image } => {
                registries.fetch_blob(image, digest, size, dest, progress).await
            }
            Source::Layout { layout, .. } => {
                let src = layout.blob_path(digest);
                std::fs::copy(&src, dest).map_err(|e| Error::io(format!("copying {}", src.display()), e))?;
                verify_file(dest, digest)
            }
            Source::Archive(a) => {
                a.extract_blob(digest, dest)?;
                verify_file(dest, digest)
            }
        }
    }

    /// The repository path of a registry source, for cross-repository mounts.
    pub fn registry_ref(&self) -> Option<&RegistryRef> {
        match self {
            Source::Registry { image, .. } => Some(image),
            _ => None,
        }
    }
}

/// The sha256 and length of a file, read in 1 MiB pieces.
pub fn sha256_of_file(path: &Path) -> Result<(Digest, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut sha = crate::id::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        len += n as u64;
    }
    Ok((sha.finish(), len))
}

pub fn verify_file(path: &Path, digest: &Digest) -> Result<()> {
    let (actual, _) = sha256_of_file(path)?;
    if actual != *digest {
        return Err(Error::DigestMismatch {
            what: format!("blob {}", path.display()),
            expected: *digest,
            actual,
        });
    }
    Ok(())
}

/// Where images are written.
pub enum Sink {
    Registry {
        registries: Arc<Registries>,
        image: RegistryRef,
    },
    Layout {
        layout: OciLayout,
        reference: Option<String>,
    },
}

impl Sink {
    pub fn describe(&self) -> String {
        match self {
            Sink::Registry { image, .. } => image.to_string(),
            Sink::Layout { layout, reference } => match reference {
                Some(r) => format!("oci:{}:{r}", layout.dir.display()),
                None => format!("oci:{}", layout.dir.display()),
            },
        }
    }

    pub fn layout_dir(&self) -> Option<PathBuf> {
        match self {
            Sink::Layout { layout, .. } => Some(layout.dir.clone()),
            _ => None,
        }
    }
}
