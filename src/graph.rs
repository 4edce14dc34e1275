//! The reachability graph of a store: image records → manifests and indexes → configs and
//! blob records → recipes → chunks. fsck walks it to find what is missing, gc to find what is
//! garbage, export and inventories to list what an image needs.

use std::collections::{BTreeSet, HashSet};

use crate::error::Result;
use crate::id::{ChunkId, Digest};
use crate::oci::manifest::{self, Parsed};
use crate::store::Store;

/// Everything an image (or a set of images) needs, by kind.
#[derive(Debug, Default, Clone)]
pub struct Closure {
    /// Manifests, indexes and configs kept as documents.
    pub docs: BTreeSet<Digest>,
    /// Registry blobs with a blob record (layers, big configs, artifacts).
    pub blobs: BTreeSet<Digest>,
    /// Plain streams (recipe keys) the blobs rebuild from.
    pub contents: BTreeSet<Digest>,
    /// What should be there and is not, described for the user.
    pub missing: Vec<String>,
}

impl Closure {
    /// Add the closure of the manifest or index `digest`.
    pub fn add_manifest(&mut self, store: &Store, digest: &Digest, owner: &str) -> Result<()> {
        if !self.docs.insert(*digest) {
            return Ok(());
        }
        let Some(doc) = store.doc(digest)? else {
            self.docs.remove(digest);
            self.missing
                .push(format!("{owner}: manifest {digest} is missing"));
            return Ok(());
        };
        let parsed = match manifest::parse(&doc.data, Some(&doc.media_type)) {
            Ok(p) => p,
            Err(e) => {
                self.missing
                    .push(format!("{owner}: manifest {digest} does not parse: {e}"));
                return Ok(());
            }
        };
        match parsed {
            Parsed::Index { manifests, .. } => {
                for d in manifests {
                    let child = d.digest()?;
                    if manifest::is_index(&d.media_type)
                        || manifest::is_manifest(&d.media_type)
                        || d.media_type.is_empty()
                    {
                        self.add_manifest(store, &child, owner)?;
                    } else {
                        // Artifacts referenced from an index (attestations) are opaque blobs.
                        self.add_blob_or_doc(store, &child, owner, "index entry")?;
                    }
                }
            }
            Parsed::Manifest { config, layers, .. } => {
                self.add_blob_or_doc(store, &config.digest()?, owner, "config")?;
                for l in layers {
                    // A layer is a blob record, or (small JSON layers of signatures and
                    // SBOMs pulled by an earlier booster) a document.
                    self.add_blob_or_doc(store, &l.digest()?, owner, "layer")?;
                }
            }
        }
        Ok(())
    }

    fn add_blob_or_doc(&mut self, store: &Store, digest: &Digest, owner: &str, what: &str) -> Result<()> {
        if self.docs.contains(digest) || self.blobs.contains(digest) {
            return Ok(());
        }
        if store.doc(digest)?.is_some() {
            self.docs.insert(*digest);
            return Ok(());
        }
        if store.blob(digest)?.is_some() {
            return self.add_blob(store, digest, owner);
        }
        self.missing.push(format!("{owner}: {what} {digest} is missing"));
        Ok(())
    }

    fn add_blob(&mut self, store: &Store, digest: &Digest, owner: &str) -> Result<()> {
        if !self.blobs.insert(*digest) {
            return Ok(());
        }
        match store.blob(digest)? {
            Some(rec) => {
                if self.contents.insert(rec.content) && !store.has_recipe(&rec.content)? {
                    self.missing.push(format!(
                        "{owner}: layer {digest}: recipe of its content {} is missing",
                        rec.content
                    ));
                }
            }
            None => {
                self.blobs.remove(digest);
                self.missing.push(format!("{owner}: layer {digest} is missing"));
            }
        }
        Ok(())
    }
}

/// The closure of every image record in the store.
pub fn closure_of_all_images(store: &Store) -> Result<Closure> {
    let mut c = Closure::default();
    for (name, rec) in store.images()? {
        c.add_manifest(store, &rec.digest, &name)?;
    }
    Ok(c)
}

/// Chunk ids used by the given contents' recipes.
pub fn chunks_of(store: &Store, contents: &BTreeSet<Digest>) -> Result<HashSet<ChunkId>> {
    let mut out = HashSet::new();
    for d in contents {
        if let Some(r) = store.recipe(d)? {
            out.extend(r.chunks.iter().map(|(id, _)| *id));
        }
    }
    Ok(out)
}
