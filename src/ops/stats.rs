//! `booster stats`: what the store holds and how much dedup and compression save.

use crate::error::Result;
use crate::output::human_bytes;
use crate::store::{SpaceUsage, Store};

/// Space ratio above which `fsck` warns and names the cause (store-format.md §5.1): after a
/// gc a store sits at or under 1.15.
pub const RATIO_WARN: f64 = 1.25;
/// Excess over what the store holds that never warns: the fixed overheads of the table
/// files, which dominate a store of a few megabytes.
const EXCESS_ALLOWED: u64 = 4 << 20;

/// The store's bytes on disk against what it holds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SpaceReport {
    pub usage: SpaceUsage,
    /// What the store holds: chunk values as stored, chunk keys and every record.
    pub held_bytes: u64,
    /// On disk without the logs (`usage.data_bytes()`) over `held_bytes`.
    pub ratio: f64,
}

impl SpaceReport {
    /// What the report says is wrong, with the cause it finds; empty while the ratio is
    /// within `RATIO_WARN` or the excess is small.
    pub fn findings(&self) -> Vec<String> {
        let u = &self.usage;
        let excess = u.data_bytes().saturating_sub(self.held_bytes);
        if self.ratio <= RATIO_WARN || excess <= EXCESS_ALLOWED {
            return Vec::new();
        }
        let mut out = vec![format!(
            "the store takes {} on disk (logs left out) for {} it holds ({:.2}×)",
            human_bytes(u.data_bytes()),
            human_bytes(self.held_bytes),
            self.ratio
        )];
        if u.unreferenced_bytes > 0 {
            out.push(format!(
                "{} are in files no version of the database names (left by a killed process; \
                 the next open of the store deletes them)",
                human_bytes(u.unreferenced_bytes)
            ));
        }
        if u.blob_garbage_bytes > 0 {
            out.push(format!(
                "{} of the blob files are chunks already deleted (run `booster gc` to rewrite them)",
                human_bytes(u.blob_garbage_bytes)
            ));
        }
        let live_blobs = u.blob_file_bytes.saturating_sub(u.blob_garbage_bytes);
        let table_excess = (u.table_bytes + live_blobs).saturating_sub(self.held_bytes);
        if table_excess > EXCESS_ALLOWED {
            out.push(format!(
                "the table files take {} for the records (compaction is behind; `booster gc` \
                 compacts them)",
                human_bytes(u.table_bytes)
            ));
        }
        out
    }
}

pub fn space_report(store: &Store) -> Result<SpaceReport> {
    let mut chunks = 0u64;
    let mut stored = 0u64;
    store.for_each_chunk_info(|_, info| {
        chunks += 1;
        stored += info.stored_len as u64;
        Ok(())
    })?;
    space_of(store, chunks, stored)
}

fn space_of(store: &Store, chunks: u64, stored_bytes: u64) -> Result<SpaceReport> {
    let usage = store.space()?;
    let held_bytes = stored_bytes + chunks * CHUNK_KEY_LEN + store.record_bytes()?;
    Ok(SpaceReport {
        usage,
        held_bytes,
        ratio: usage.data_bytes() as f64 / held_bytes.max(1) as f64,
    })
}

/// Each chunk's key in the chunk column family (its value is the blob).
const CHUNK_KEY_LEN: u64 = 32;

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
    /// Where those bytes go, and their ratio to what the store holds.
    pub space: SpaceReport,
    /// logical / unique.
    pub dedup_ratio: f64,
}

/// What the store holds and takes; waits first for RocksDB's scheduled background work,
/// whose files come and go while it runs.
pub fn stats(store: &Store) -> Result<Stats> {
    store.settle_background_work();
    let mut s = Stats {
        images: store.images()?.len() as u64,
        manifests_and_configs: store.docs()?.len() as u64,
        blobs: store.blobs()?.len() as u64,
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
    s.space = space_of(store, s.chunks, s.stored_bytes)?;
    s.disk_bytes = s.space.usage.disk_bytes;
    s.dedup_ratio = if s.unique_bytes > 0 {
        s.logical_bytes as f64 / s.unique_bytes as f64
    } else {
        1.0
    };
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(usage: SpaceUsage, held_bytes: u64) -> SpaceReport {
        SpaceReport {
            usage,
            held_bytes,
            ratio: usage.data_bytes() as f64 / held_bytes as f64,
        }
    }

    #[test]
    fn a_lean_store_has_no_findings_and_a_bloated_one_names_its_causes() {
        let lean = SpaceUsage {
            disk_bytes: 110 << 20,
            table_bytes: 10 << 20,
            blob_file_bytes: 99 << 20,
            blob_garbage_bytes: 1 << 20,
            log_bytes: 1 << 20,
            ..Default::default()
        };
        assert!(report(lean, 105 << 20).findings().is_empty());

        let bloated = SpaceUsage {
            disk_bytes: 301 << 20,
            table_bytes: 10 << 20,
            blob_file_bytes: 250 << 20,
            blob_garbage_bytes: 150 << 20,
            unreferenced_bytes: 40 << 20,
            log_bytes: 1 << 20,
        };
        let f = report(bloated, 110 << 20).findings();
        assert!(f[0].contains("2.73×"), "{f:?}");
        assert!(
            f.iter().any(|l| l.contains("no version of the database names")),
            "{f:?}"
        );
        assert!(f.iter().any(|l| l.contains("chunks already deleted")), "{f:?}");

        // A small store's fixed overheads never warn, whatever the ratio.
        let small = SpaceUsage {
            disk_bytes: 4 << 20,
            table_bytes: 3 << 20,
            log_bytes: 1 << 20,
            ..Default::default()
        };
        assert!(report(small, 1 << 20).findings().is_empty());
    }
}
