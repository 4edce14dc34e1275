//! `booster import`: bring a bundle into the store.
//!
//! Verify first, write after: every section's checksum, the chunker, and the presence of the
//! base are checked before anything is written; a damaged bundle or a missing base changes
//! nothing. Then chunks (rebuilt from the payload, each checked against its BLAKE3 id) →
//! recipes → blob records → documents → image records, the store's write order. A payload
//! section whose chunks are all present is skipped, so a rerun after a kill continues where
//! the last one stopped, and importing the same bundle twice adds nothing.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::bundle::format::{self, Meta, PayloadSection, RecipeEntry};
use crate::bundle::{BundleReader, SectionKind};
use crate::delta::{self, Stream};
use crate::error::{Error, Result};
use crate::id::{ChunkId, Digest};
use crate::store::{ImageRecord, Store};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    pub bundle: String,
    pub bundle_bytes: u64,
    pub images: Vec<String>,
    pub chunks_added: u64,
    pub chunk_bytes_added: u64,
    pub sections_skipped: u64,
    pub recipes_added: u64,
    pub blobs_added: u64,
    pub docs_added: u64,
    pub images_added: u64,
    pub images_updated: u64,
}

impl ImportReport {
    pub fn added_anything(&self) -> bool {
        self.chunks_added
            + self.recipes_added
            + self.blobs_added
            + self.docs_added
            + self.images_added
            + self.images_updated
            > 0
    }
}

/// Open and verify a bundle; return its reader and meta.
pub fn open_verified(
    store: &Store,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(BundleReader, Meta)> {
    let reader = BundleReader::open(path)?;
    reader.verify(progress)?;
    let meta = Meta::decode(&reader.read(0)?).map_err(|e| Error::Bundle {
        path: path.to_path_buf(),
        reason: format!("meta section: {e}"),
    })?;
    if meta.chunker != store.params() {
        return Err(Error::Bundle {
            path: path.to_path_buf(),
            reason: format!(
                "it was cut with chunker {}, this store uses {}",
                meta.chunker.name(),
                store.params().name()
            ),
        });
    }
    Ok((reader, meta))
}

/// The base streams the bundle needs that this store lacks, as "label (content)".
pub fn missing_base(store: &Store, meta: &Meta) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for b in &meta.base {
        let ok = match store.recipe(&b.content)? {
            Some(r) => {
                let mut all = r.len == b.len;
                for (id, _) in &r.chunks {
                    if !all {
                        break;
                    }
                    all = store.has_chunk(id)?;
                }
                all
            }
            None => false,
        };
        if !ok {
            let label = if b.label.is_empty() {
                "unnamed layer".to_string()
            } else {
                b.label.clone()
            };
            missing.push(format!("{label} ({})", b.content));
        }
    }
    Ok(missing)
}

pub fn import_bundle(
    store: &Store,
    path: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<ImportReport> {
    let (reader, meta) = open_verified(store, path, &mut |a, b| progress("verifying", a, b))?;
    let missing = missing_base(store, &meta)?;
    if !missing.is_empty() {
        return Err(Error::Bundle {
            path: path.to_path_buf(),
            reason: format!(
                "this store lacks the base the bundle was made against ({} of {} layers missing): {}; pull or import those images first",
                missing.len(),
                meta.base.len(),
                summarise(&missing)
            ),
        });
    }
    let bad = |i: usize, e: crate::codec::DecodeError| Error::Bundle {
        path: path.to_path_buf(),
        reason: format!("{}: {e}", reader.section_name(i)),
    };
    // Recipes are needed to cut the payload into chunks; they are written only after the
    // chunks (write order), so hold them in memory meanwhile.
    let mut recipes: HashMap<Digest, RecipeEntry> = HashMap::new();
    for i in 0..reader.index.len() {
        if reader.kind(i) == SectionKind::Recipes {
            for r in format::decode_recipes(&reader.read(i)?).map_err(|e| bad(i, e))? {
                recipes.insert(r.content, r);
            }
        }
    }
    let base_set: BTreeSet<Digest> = meta.base.iter().map(|b| b.content).collect();
    let mut report = ImportReport {
        bundle: path.display().to_string(),
        bundle_bytes: reader.total_len(),
        images: meta.images.iter().map(|i| i.name.clone()).collect(),
        ..Default::default()
    };
    let _gate = store.writer_gate();
    let mut base_streams: HashMap<Digest, Stream> = HashMap::new();
    let total = reader.total_len();
    for i in 0..reader.index.len() {
        if reader.kind(i) != SectionKind::Payload {
            continue;
        }
        let section = PayloadSection::decode(&reader.read(i)?).map_err(|e| bad(i, e))?;
        let entry = recipes.get(&section.content).ok_or_else(|| Error::Bundle {
            path: path.to_path_buf(),
            reason: format!(
                "{}: payload for {} which has no recipe in the bundle",
                reader.section_name(i),
                section.content
            ),
        })?;
        apply_payload(
            store,
            &reader,
            i,
            &section,
            entry,
            &base_set,
            &mut base_streams,
            &mut report,
        )?;
        progress("importing", reader.index[i].offset, total);
    }
    // Every chunk of every recipe must now be present, or the bundle was inconsistent.
    for r in recipes.values() {
        for (id, _) in &r.recipe.chunks {
            if !store.has_chunk(id)? {
                return Err(Error::Bundle {
                    path: path.to_path_buf(),
                    reason: format!(
                        "chunk {id} of layer {} is neither in the store nor in the bundle",
                        r.content
                    ),
                });
            }
        }
    }
    for r in recipes.values() {
        if !store.has_recipe(&r.content)? {
            store.put_recipe(&r.content, &r.recipe, &r.tar_index)?;
            report.recipes_added += 1;
        }
    }
    for i in 0..reader.index.len() {
        match reader.kind(i) {
            SectionKind::Blobs => {
                for (d, rec) in format::decode_blobs(&reader.read(i)?).map_err(|e| bad(i, e))? {
                    if !store.has_recipe(&rec.content)? {
                        return Err(Error::Bundle {
                            path: path.to_path_buf(),
                            reason: format!(
                                "blob {d} rebuilds from {}, which is neither stored nor in the bundle",
                                rec.content
                            ),
                        });
                    }
                    match store.blob(&d)? {
                        Some(old) if old.method.can_rebuild() => {}
                        _ => {
                            store.put_blob(&d, &rec)?;
                            report.blobs_added += 1;
                        }
                    }
                }
            }
            SectionKind::Docs => {
                for (d, doc) in format::decode_docs(&reader.read(i)?).map_err(|e| bad(i, e))? {
                    if store.doc(&d)?.is_none() {
                        store.put_doc(&d, &doc)?;
                        report.docs_added += 1;
                    }
                }
            }
            _ => {}
        }
    }
    for img in &meta.images {
        let rec = ImageRecord {
            digest: img.digest,
            media_type: img.media_type.clone(),
        };
        match store.image(&img.name)? {
            Some(old) if old == rec => {}
            Some(_) => {
                store.set_image(&img.name, &rec)?;
                report.images_updated += 1;
            }
            None => {
                store.set_image(&img.name, &rec)?;
                report.images_added += 1;
            }
        }
    }
    Ok(report)
}

fn summarise(items: &[String]) -> String {
    if items.len() <= 5 {
        items.join(", ")
    } else {
        format!("{}, and {} more", items[..5].join(", "), items.len() - 5)
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_payload(
    store: &Store,
    reader: &BundleReader,
    i: usize,
    section: &PayloadSection,
    entry: &RecipeEntry,
    base_set: &BTreeSet<Digest>,
    base_streams: &mut HashMap<Digest, Stream>,
    report: &mut ImportReport,
) -> Result<()> {
    let fail = |reason: String| Error::Bundle {
        path: reader.path().to_path_buf(),
        reason: format!("{}: {reason}", reader.section_name(i)),
    };
    let recipe = &entry.recipe;
    let offsets = recipe.offsets();
    // The chunks this section completes: skip it when the store has them all (a rerun).
    let mut covered: Vec<usize> = Vec::new();
    for g in &section.groups {
        for &(off, len) in &g.pieces {
            let end = off
                .checked_add(len)
                .ok_or_else(|| fail("piece overflows".into()))?;
            if end > recipe.len {
                return Err(fail(format!(
                    "a piece ends at {end}, past the layer's {} bytes",
                    recipe.len
                )));
            }
            let mut k = offsets.partition_point(|&o| o <= off).saturating_sub(1);
            while k < offsets.len() && offsets[k] < end {
                if covered.last() != Some(&k) {
                    covered.push(k);
                }
                k += 1;
            }
        }
    }
    let mut all_present = true;
    for &k in &covered {
        if !store.has_chunk(&recipe.chunks[k].0)? {
            all_present = false;
            break;
        }
    }
    if all_present {
        report.sections_skipped += 1;
        return Ok(());
    }
    let mut asm = Assembler::new(recipe, &offsets);
    for g in &section.groups {
        let mut prefix = Vec::with_capacity(g.prefix_len() as usize);
        for (d, off, len) in &g.refs {
            if !base_set.contains(d) {
                return Err(fail(format!(
                    "a delta refers to {d}, which is not part of the bundle's declared base"
                )));
            }
            if !base_streams.contains_key(d) {
                base_streams.insert(*d, Stream::load(store, d)?);
            }
            let s = &base_streams[d];
            if off.checked_add(*len).is_none_or(|e| e > s.recipe.len) {
                return Err(fail(format!("a reference runs past the end of {d}")));
            }
            prefix.extend(s.read(store, *off, *len)?);
        }
        let out = delta::decompress_with_prefix(&prefix, &g.frame, g.output_len() as usize)
            .map_err(|e| fail(e.to_string()))?;
        let mut at = 0usize;
        for &(off, len) in &g.pieces {
            asm.feed(store, off, &out[at..at + len as usize], report)
                .map_err(|e| match e {
                    Error::Format { reason, .. } => fail(reason),
                    other => other,
                })?;
            at += len as usize;
        }
    }
    asm.finish().map_err(|e| match e {
        Error::Format { reason, .. } => fail(reason),
        other => other,
    })
}

/// Cuts payload bytes into the recipe's chunks and stores each one after checking its id.
struct Assembler<'a> {
    recipe: &'a crate::store::Recipe,
    offsets: &'a [u64],
    /// Stream position of `pending[0]`.
    pos: u64,
    pending: Vec<u8>,
}

impl<'a> Assembler<'a> {
    fn new(recipe: &'a crate::store::Recipe, offsets: &'a [u64]) -> Self {
        Assembler {
            recipe,
            offsets,
            pos: 0,
            pending: Vec::new(),
        }
    }

    fn feed(&mut self, store: &Store, off: u64, data: &[u8], report: &mut ImportReport) -> Result<()> {
        if self.pending.is_empty() {
            // A new run must start on a chunk boundary.
            if self.offsets.binary_search(&off).is_err() {
                return Err(Error::format(
                    "payload",
                    format!("bytes at {off} do not start a chunk"),
                ));
            }
            self.pos = off;
        } else if self.pos + self.pending.len() as u64 != off {
            return Err(Error::format(
                "payload",
                format!("a chunk ending before {off} is incomplete"),
            ));
        }
        self.pending.extend_from_slice(data);
        let mut k = self
            .offsets
            .binary_search(&self.pos)
            .map_err(|_| Error::format("payload", "misaligned chunk"))?;
        let mut used = 0usize;
        while k < self.recipe.chunks.len() {
            let (id, len) = self.recipe.chunks[k];
            let len = len as usize;
            if self.pending.len() - used < len {
                break;
            }
            let bytes = &self.pending[used..used + len];
            if ChunkId::of(bytes) != id {
                return Err(Error::format(
                    "payload",
                    format!("rebuilt chunk {id} does not match its id"),
                ));
            }
            if store.put_chunk(&id, bytes)?.new {
                report.chunks_added += 1;
                report.chunk_bytes_added += len as u64;
            }
            used += len;
            k += 1;
        }
        self.pending.drain(..used);
        self.pos += used as u64;
        Ok(())
    }

    fn finish(&self) -> Result<()> {
        if !self.pending.is_empty() {
            return Err(Error::format(
                "payload",
                format!("the section ends inside a chunk at {}", self.pos),
            ));
        }
        Ok(())
    }
}
