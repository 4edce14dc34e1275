//! `booster gc`: mark everything reachable from image records, sweep the rest in the
//! reverse of the write order (documents, blob records, recipes, then chunks), then compact
//! and rewrite blob files so the space comes back. See store-format.md §5 and §5.1.

use std::collections::HashSet;

use crate::error::Result;
use crate::graph;
use crate::id::{ChunkId, Digest};
use crate::ops::stats::{SpaceReport, space_report};
use crate::store::{Reclaimed, Store};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub images: usize,
    pub docs_removed: usize,
    pub blobs_removed: usize,
    pub recipes_removed: usize,
    pub chunks_removed: usize,
    /// Plain bytes of the removed chunks.
    pub chunk_bytes_removed: u64,
    /// Bytes the removed chunks occupied in the store (compressed at rest).
    pub stored_bytes_removed: u64,
    pub disk_bytes_before: u64,
    pub disk_bytes_after: u64,
    /// The store's space after gc (before, with --dry-run).
    pub space: SpaceReport,
    /// What the compactions and blob rewrites did (none with --dry-run).
    pub reclaimed: Reclaimed,
}

pub fn gc(store: &Store, dry_run: bool) -> Result<GcReport> {
    let _exclusive = store.gc_gate();
    let mut report = GcReport {
        dry_run,
        disk_bytes_before: store.space()?.disk_bytes,
        ..Default::default()
    };
    report.images = store.images()?.len();
    let live = graph::closure_of_all_images(store)?;
    let live_chunks: HashSet<ChunkId> = graph::chunks_of(store, &live.contents)?;

    let dead_docs: Vec<Digest> = store
        .docs()?
        .into_iter()
        .map(|(d, _)| d)
        .filter(|d| !live.docs.contains(d))
        .collect();
    let dead_blobs: Vec<Digest> = store
        .blobs()?
        .into_iter()
        .map(|(d, _)| d)
        .filter(|d| !live.blobs.contains(d))
        .collect();
    let dead_recipes: Vec<Digest> = store
        .recipes()?
        .into_iter()
        .map(|(d, _)| d)
        .filter(|d| !live.contents.contains(d))
        .collect();
    let mut dead_chunks: Vec<ChunkId> = Vec::new();
    store.for_each_chunk_info(|id, info| {
        if !live_chunks.contains(&id) {
            dead_chunks.push(id);
            report.chunk_bytes_removed += info.plain_len as u64;
            report.stored_bytes_removed += info.stored_len as u64;
        }
        Ok(())
    })?;
    report.docs_removed = dead_docs.len();
    report.blobs_removed = dead_blobs.len();
    report.recipes_removed = dead_recipes.len();
    report.chunks_removed = dead_chunks.len();
    if dry_run {
        report.disk_bytes_after = report.disk_bytes_before;
        report.space = space_report(store)?;
        return Ok(report);
    }
    // Reverse of the write order: a crash part-way leaves only unreferenced records.
    for d in &dead_docs {
        store.delete_doc(d)?;
    }
    for d in &dead_blobs {
        store.delete_blob(d)?;
    }
    for d in &dead_recipes {
        store.delete_recipe(d)?;
    }
    for batch in dead_chunks.chunks(4096) {
        store.delete_chunks(batch)?;
    }
    store.sync()?;
    report.reclaimed = store.reclaim_space()?;
    report.space = space_report(store)?;
    report.disk_bytes_after = report.space.usage.disk_bytes;
    Ok(report)
}
