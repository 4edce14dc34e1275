//! `booster fsck`: check that every stored byte is what its name says and that every record
//! names only things that exist. With `rebuild`, also rebuild every blob and check its digest.

use std::collections::HashMap;

use crate::error::Result;
use crate::graph;
use crate::id::{ChunkId, Digest};
use crate::store::Store;

#[derive(Debug, Default, serde::Serialize)]
pub struct FsckReport {
    pub chunks_checked: u64,
    pub recipes_checked: u64,
    pub blobs_checked: u64,
    pub docs_checked: u64,
    pub images_checked: u64,
    pub blobs_rebuilt: u64,
    pub problems: Vec<String>,
    /// What is not damage but wastes space, with its cause (store-format.md §5.1).
    pub warnings: Vec<String>,
    pub space: crate::ops::stats::SpaceReport,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FsckOptions {
    /// Rebuild every blob that can be rebuilt and compare its sha256 with its digest.
    pub rebuild: bool,
}

pub fn fsck(store: &Store, opts: FsckOptions, progress: &mut dyn FnMut(&str, u64)) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let infos = check_chunks(store, &mut report, progress)?;
    check_recipes(store, &infos, &mut report)?;
    check_blobs(store, &mut report)?;
    check_docs(store, &mut report)?;
    let closure = graph::closure_of_all_images(store)?;
    report.images_checked = store.images()?.len() as u64;
    report.problems.extend(closure.missing);
    if opts.rebuild {
        check_rebuilds(store, &closure.blobs, &mut report, progress)?;
    }
    store.settle_background_work();
    report.space = crate::ops::stats::space_report(store)?;
    report.warnings = report.space.findings();
    Ok(report)
}

fn check_chunks(
    store: &Store,
    report: &mut FsckReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<HashMap<ChunkId, u32>> {
    let mut infos = HashMap::new();
    store.for_each_chunk_info(|id, info| {
        infos.insert(id, info.plain_len);
        Ok(())
    })?;
    let mut seen = 0u64;
    store.for_each_chunk_key(|key| {
        let Some(id) = ChunkId::from_slice(key) else {
            report
                .problems
                .push(format!("chunk key {} is not 32 bytes", hex::encode(key)));
            return Ok(());
        };
        seen += 1;
        match store.get_chunk(&id) {
            Ok(data) => match infos.get(&id) {
                Some(&len) if len as usize == data.len() => {}
                Some(&len) => report.problems.push(format!(
                    "chunk {id}: info says {len} bytes, chunk has {}",
                    data.len()
                )),
                None => report.problems.push(format!("chunk {id}: no size record")),
            },
            Err(e) => report.problems.push(e.to_string()),
        }
        if seen % 1024 == 0 {
            progress("chunks", seen);
        }
        Ok(())
    })?;
    report.chunks_checked = seen;
    if infos.len() as u64 != seen {
        let mut missing = 0;
        for id in infos.keys() {
            if store.get_chunk_raw(id)?.is_none() {
                missing += 1;
                if missing <= 20 {
                    report
                        .problems
                        .push(format!("chunk {id}: size record without chunk data"));
                }
            }
        }
        if missing > 20 {
            report
                .problems
                .push(format!("... and {} more chunks without data", missing - 20));
        }
    }
    Ok(infos)
}

fn check_recipes(store: &Store, infos: &HashMap<ChunkId, u32>, report: &mut FsckReport) -> Result<()> {
    for (digest, recipe) in store.recipes()? {
        report.recipes_checked += 1;
        let mut missing = 0usize;
        for (id, len) in &recipe.chunks {
            match infos.get(id) {
                Some(l) if l == len => {}
                Some(l) => report.problems.push(format!(
                    "recipe {digest}: chunk {id} is {l} bytes, recipe says {len}"
                )),
                None => missing += 1,
            }
        }
        if missing > 0 {
            report
                .problems
                .push(format!("recipe {digest}: {missing} of its chunks are missing"));
        }
    }
    Ok(())
}

fn check_blobs(store: &Store, report: &mut FsckReport) -> Result<()> {
    for (digest, rec) in store.blobs()? {
        report.blobs_checked += 1;
        if !store.has_recipe(&rec.content)? {
            report.problems.push(format!(
                "blob {digest}: the recipe of its content {} is missing",
                rec.content
            ));
        }
        if rec.method.is_verbatim() && rec.content != digest {
            report.problems.push(format!(
                "blob {digest}: kept verbatim but its content is {}",
                rec.content
            ));
        }
    }
    Ok(())
}

fn check_docs(store: &Store, report: &mut FsckReport) -> Result<()> {
    for (digest, doc) in store.docs()? {
        report.docs_checked += 1;
        let actual = Digest::of(&doc.data);
        if actual != digest {
            report
                .problems
                .push(format!("document {digest}: its bytes hash to {actual}"));
        }
    }
    Ok(())
}

fn check_rebuilds(
    store: &Store,
    blobs: &std::collections::BTreeSet<Digest>,
    report: &mut FsckReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<()> {
    for digest in blobs {
        let Some(rec) = store.blob(digest)? else { continue };
        if !rec.method.can_rebuild() {
            continue;
        }
        match crate::rebuild::verify_blob(store, digest, &rec) {
            Ok(()) => report.blobs_rebuilt += 1,
            Err(e) => report.problems.push(e.to_string()),
        }
        progress("rebuild", report.blobs_rebuilt);
    }
    Ok(())
}
