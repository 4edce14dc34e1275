//! `booster stats`: what the store holds and how much dedup and compression save.

use crate::error::Result;
use crate::store::Store;

#[derive(Debug, Default, serde::Serialize)]
pub struct Stats {
    pub images: u64,
    pub manifests_and_configs: u64,
    pub blobs: u64,
    pub recipes: u64,
    pub chunks: u64,
    /// Sum of the lengths of every plain stream (what the layers would take uncompressed).
    pub logical_bytes: u64,
    /// Plain bytes of the distinct chunks.
    pub unique_bytes: u64,
    /// Bytes of the distinct chunks after compression at rest.
    pub stored_bytes: u64,
    /// The database directory on disk.
    pub disk_bytes: u64,
    /// logical / unique.
    pub dedup_ratio: f64,
}

pub fn stats(store: &Store) -> Result<Stats> {
    let mut s = Stats {
        images: store.images()?.len() as u64,
        manifests_and_configs: store.docs()?.len() as u64,
        blobs: store.blobs()?.len() as u64,
        disk_bytes: store.disk_usage(),
        ..Default::default()
    };
    for (_, r) in store.recipes()? {
        s.recipes += 1;
        s.logical_bytes += r.len;
    }
    store.for_each_chunk_info(|_, info| {
        s.chunks += 1;
        s.unique_bytes += info.plain_len as u64;
        s.stored_bytes += info.stored_len as u64;
        Ok(())
    })?;
    s.dedup_ratio = if s.unique_bytes > 0 {
        s.logical_bytes as f64 / s.unique_bytes as f64
    } else {
        1.0
    };
    Ok(s)
}
