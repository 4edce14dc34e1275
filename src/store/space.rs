//! Where the store's bytes go on disk, and giving back what gc freed (store-format.md §5.1).
//!
//! The database directory holds three kinds of bytes: table files (keys and the small
//! records), blob files (chunk values) and logs (write-ahead log, manifest, options). Chunks
//! are never overwritten, so the only garbage is what gc deletes: keys that table
//! compaction drops, and values in blob files that no key points to any more, which only a
//! rewrite of those blob files ("blob garbage collection") gives back.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use rocksdb::{BottommostLevelCompaction, CompactOptions, WaitForCompactOptions};

use super::{ALL_CFS, CF_CHUNKS, RESERVE_LEN, Store, dir_size, free_bytes};
use crate::error::Result;

/// Longest a closing store waits for the compactions RocksDB has scheduled.
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(300);

/// Share of the blob files' bytes gc leaves as garbage rather than rewrite the files: a
/// rewrite copies every live chunk of the files it takes, so a little garbage is cheaper
/// than rewriting a store of hundreds of gigabytes for it (restic's prune tolerates 5 %
/// unused space by default, for the same reason).
pub const GARBAGE_TOLERATED: f64 = 0.05;

/// The age cutoffs gc's blob rewrites go through, oldest files first: gc usually deletes
/// the chunks of old images, which sit in old blob files, so rewriting the oldest quarter
/// often gives the space back; the next rung is tried only while the garbage is above
/// `GARBAGE_TOLERATED`.
const REWRITE_CUTOFFS: [f64; 3] = [0.25, 0.5, 1.0];

/// Where the bytes of the database directory go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpaceUsage {
    /// Every file under the database directory.
    pub disk_bytes: u64,
    /// Table files the current version of the database names: keys and records.
    pub table_bytes: u64,
    /// Blob files the current version names: chunk values, garbage included.
    pub blob_file_bytes: u64,
    /// Bytes inside those blob files that no key refers to: chunks gc deleted whose files
    /// were not rewritten yet.
    pub blob_garbage_bytes: u64,
    /// Table and blob files that no version names: output of a flush or compaction that a
    /// killed process left behind. Opening the store deletes them, so an open store shows
    /// them only while a reader pins an older version.
    pub unreferenced_bytes: u64,
    /// Write-ahead log, manifest, options files and RocksDB's info log: the fixed allowance
    /// the space ratio leaves out (the log is bounded by `max_total_wal_size`).
    pub log_bytes: u64,
}

impl SpaceUsage {
    /// What the database takes beyond its logs: the numerator of the space ratio.
    pub fn data_bytes(&self) -> u64 {
        self.disk_bytes.saturating_sub(self.log_bytes)
    }
}

/// What gc's compactions did to give space back.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Reclaimed {
    /// Garbage in blob files after the table compaction, before any rewrite.
    pub blob_garbage_found: u64,
    /// The age cutoff of each blob rewrite gc ran (fraction of the oldest blob files).
    pub blob_rewrites: Vec<f64>,
    /// Garbage left in blob files at the end (at most `GARBAGE_TOLERATED` of them, unless
    /// `short_of_space`).
    pub blob_garbage_left: u64,
    /// Free bytes a rewrite needed and the disk did not have; the garbage stays until a
    /// gc finds room.
    pub short_of_space: Option<u64>,
}

impl Store {
    /// Wait (up to `CLOSE_WAIT`) for the flushes and compactions RocksDB has scheduled:
    /// their files come and go while they run, so a report of the space waits for them.
    pub fn settle_background_work(&self) {
        self.settle(CLOSE_WAIT);
    }

    /// Wait up to `limit` for the flushes and compactions RocksDB has scheduled.
    pub(super) fn settle(&self, limit: Duration) {
        let mut o = WaitForCompactOptions::default();
        o.set_flush(false);
        o.set_timeout(limit.as_micros() as u64);
        if let Err(e) = self.db.wait_for_compact(&o) {
            tracing::debug!("store {}: waiting for compactions: {e}", self.path.display());
        }
    }

    /// Where the database directory's bytes go (as of now: see `settle_background_work`).
    pub fn space(&self) -> Result<SpaceUsage> {
        let live_tables: HashSet<String> = self
            .db
            .live_files()
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(|f| f.name.trim_start_matches('/').to_string())
            .collect();
        let mut u = SpaceUsage::default();
        let mut blob_files_on_disk = 0u64;
        let db_dir = self.path.join("db");
        let entries = std::fs::read_dir(&db_dir)
            .map_err(|e| crate::Error::io(format!("listing {}", db_dir.display()), e))?;
        for entry in entries.filter_map(|e| e.ok()) {
            let Ok(meta) = entry.metadata() else { continue };
            let len = if meta.is_dir() {
                dir_size(&entry.path())
            } else {
                meta.len()
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            u.disk_bytes += len;
            match FileKind::of(&name) {
                FileKind::Table if live_tables.contains(&name) => u.table_bytes += len,
                FileKind::Table => u.unreferenced_bytes += len,
                FileKind::Blob => blob_files_on_disk += len,
                FileKind::Log => u.log_bytes += len,
                FileKind::Other => {}
            }
        }
        let live_blobs = self.sum_property("rocksdb.live-blob-file-size")?;
        if let Ok(Some(stats)) = self
            .db
            .property_value_cf(&self.cf(CF_CHUNKS), "rocksdb.blob-stats")
        {
            tracing::debug!(
                "store {}: {} blob file bytes on disk; RocksDB: {}",
                self.path.display(),
                blob_files_on_disk,
                stats.replace('\n', "; ")
            );
        }
        u.blob_file_bytes = live_blobs.min(blob_files_on_disk);
        u.blob_garbage_bytes = self
            .sum_property("rocksdb.live-blob-file-garbage-size")?
            .min(u.blob_file_bytes);
        u.unreferenced_bytes += blob_files_on_disk - u.blob_file_bytes;
        Ok(u)
    }

    fn sum_property(&self, name: &str) -> Result<u64> {
        let mut sum = 0;
        for cf_name in ALL_CFS {
            let cf = self.cf(cf_name);
            sum += self
                .db
                .property_int_value_cf(&cf, name)
                .map_err(|e| self.err(e))?
                .unwrap_or(0);
        }
        Ok(sum)
    }

    /// Bytes of every key and value outside the chunk values: the records the table files
    /// hold (chunk keys are counted by the caller, which knows how many chunks there are).
    pub fn record_bytes(&self) -> Result<u64> {
        let mut sum = 0u64;
        for name in ALL_CFS.iter().filter(|n| **n != CF_CHUNKS) {
            let mut it = self.db.raw_iterator_cf(&self.cf(name));
            it.seek_to_first();
            while it.valid() {
                sum += (it.key().map_or(0, <[u8]>::len) + it.value().map_or(0, <[u8]>::len)) as u64;
                it.next();
            }
            it.status().map_err(|e| self.err(e))?;
        }
        Ok(sum)
    }

    /// Give back the space of what gc deleted: compact every column family down to its
    /// last level (deleted keys go, and the blob files learn which of their values are
    /// garbage), then rewrite the oldest blob files, a larger share each time, while their
    /// garbage is above `GARBAGE_TOLERATED`.
    pub fn reclaim_space(&self) -> Result<Reclaimed> {
        self.flush_all()?;
        for name in ALL_CFS {
            self.compact_fully(name);
        }
        self.settle(CLOSE_WAIT);
        let mut r = Reclaimed {
            blob_garbage_found: self.space()?.blob_garbage_bytes,
            ..Default::default()
        };
        for cutoff in REWRITE_CUTOFFS {
            let u = self.space()?;
            if u.blob_garbage_bytes as f64 <= GARBAGE_TOLERATED * u.blob_file_bytes as f64 {
                break;
            }
            // The rewrite writes the live chunks of the files it takes before it deletes
            // them; leave the reserve's worth free on top.
            let need = ((u.blob_file_bytes - u.blob_garbage_bytes) as f64 * cutoff) as u64 + RESERVE_LEN;
            if free_bytes(&self.path).is_some_and(|free| free < need) {
                r.short_of_space = Some(need);
                break;
            }
            self.rewrite_blob_files(cutoff)?;
            r.blob_rewrites.push(cutoff);
            self.settle(CLOSE_WAIT);
        }
        r.blob_garbage_left = self.space()?.blob_garbage_bytes;
        Ok(r)
    }

    fn flush_all(&self) -> Result<()> {
        for name in ALL_CFS {
            self.db.flush_cf(&self.cf(name)).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Compact a column family completely, its last level included (RocksDB skips the
    /// last level by default when there is no compaction filter, which would leave every
    /// deleted chunk's key, and so its blob value, in place).
    fn compact_fully(&self, cf_name: &str) {
        let mut o = CompactOptions::default();
        o.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        self.db
            .compact_range_cf_opt(&self.cf(cf_name), None::<&[u8]>, None::<&[u8]>, &o);
    }

    /// One full compaction of the chunk keys with blob garbage collection on for the oldest
    /// `cutoff` of the blob files: their live values move to new files and the old files
    /// are deleted. Routine compactions keep it off (see `column_families`).
    fn rewrite_blob_files(&self, cutoff: f64) -> Result<()> {
        let cf = self.cf(CF_CHUNKS);
        let cutoff = format!("{cutoff}");
        self.db
            .set_options_cf(
                &cf,
                &[
                    ("enable_blob_garbage_collection", "true"),
                    ("blob_garbage_collection_age_cutoff", &cutoff),
                ],
            )
            .map_err(|e| self.err(e))?;
        self.compact_fully(CF_CHUNKS);
        self.db
            .set_options_cf(&cf, &[("enable_blob_garbage_collection", "false")])
            .map_err(|e| self.err(e))
    }
}

enum FileKind {
    Table,
    Blob,
    Log,
    Other,
}

impl FileKind {
    fn of(name: &str) -> FileKind {
        let ext = Path::new(name).extension().and_then(|e| e.to_str());
        match ext {
            Some("sst") => FileKind::Table,
            Some("blob") => FileKind::Blob,
            Some("log") => FileKind::Log,
            _ if name.starts_with("MANIFEST-") || name.starts_with("OPTIONS-") || name.starts_with("LOG") => {
                FileKind::Log
            }
            _ => FileKind::Other,
        }
    }
}
