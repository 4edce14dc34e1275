//! Blob files a killed or interrupted flush or compaction left unfinished (store-format.md §5.1).
//!
//! RocksDB deletes the files no version names when it opens a database, except blob files
//! without a footer: since RocksDB 11 it keeps those in case they are blob direct-write
//! files that recovery still needs (`ShouldKeepFooterlessBlobFile`). booster does not use
//! direct write, so a footerless blob file is always the output of a flush or compaction
//! that never finished (RocksDB names a blob file in its manifest only after writing the
//! footer), and nothing would ever delete it. Measured (issue 33): 32 pulls in a row, each
//! process closing while a compaction relocated blobs, left a 6.3 MB footerless file in a
//! 7 MB store, surviving every open and gc.
//!
//! So the store removes them itself, before RocksDB opens the directory (the store lock is
//! held, so no other process has it open): they are moved aside, RocksDB opens, and only then
//! are they deleted. Should RocksDB ever miss one, they are put back and the open retried.

use std::path::{Path, PathBuf};

/// RocksDB's blob log footer: magic (u32 LE), blob count, expiration range, CRC.
const FOOTER_LEN: u64 = 32;
const HEADER_LEN: u64 = 30;
const MAGIC: [u8; 4] = 0x0024_8f37u32.to_le_bytes();

/// Footerless blob files moved out of the database directory, until the open succeeds.
pub(super) struct SetAside {
    moved: Vec<(PathBuf, PathBuf)>,
    pub bytes: u64,
}

impl SetAside {
    /// Move every footerless blob file of `db_dir` into `aside_dir`.
    pub fn unfinished_blob_files(db_dir: &Path, aside_dir: &Path) -> SetAside {
        let mut out = SetAside {
            moved: Vec::new(),
            bytes: 0,
        };
        let Ok(entries) = std::fs::read_dir(db_dir) else {
            return out;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "blob") || has_footer(&path) {
                continue;
            }
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if std::fs::create_dir_all(aside_dir).is_err() {
                return out;
            }
            let dest = aside_dir.join(entry.file_name());
            if std::fs::rename(&path, &dest).is_ok() {
                out.moved.push((path, dest));
                out.bytes += len;
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.moved.is_empty()
    }

    /// The database opened without them: they were garbage.
    pub fn delete(self) {
        for (_, aside) in &self.moved {
            let _ = std::fs::remove_file(aside);
        }
    }

    /// The database did not open: put them back as they were.
    pub fn restore(self) {
        for (original, aside) in &self.moved {
            let _ = std::fs::rename(aside, original);
        }
    }
}

/// Whether a blob file ends with a footer: RocksDB finished writing it. Only the magic is
/// checked; a damaged footer counts as a footer, so the doubt always keeps a file.
fn has_footer(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return true;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return true;
    };
    if len < HEADER_LEN + FOOTER_LEN {
        return false;
    }
    let mut magic = [0u8; 4];
    if f.seek(SeekFrom::Start(len - FOOTER_LEN)).is_err() || f.read_exact(&mut magic).is_err() {
        return true;
    }
    magic == MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_footerless_blob_files_are_set_aside_and_restore_puts_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let mut finished = vec![7u8; 100];
        finished.extend_from_slice(&MAGIC);
        finished.extend_from_slice(&[0u8; 28]);
        std::fs::write(db.join("000010.blob"), &finished).unwrap();
        std::fs::write(db.join("000011.blob"), vec![7u8; 100]).unwrap();
        std::fs::write(db.join("000012.blob"), b"").unwrap();
        std::fs::write(db.join("000013.sst"), vec![7u8; 100]).unwrap();

        let aside = SetAside::unfinished_blob_files(&db, &dir.path().join("aside"));
        assert_eq!(aside.bytes, 100);
        assert!(db.join("000010.blob").exists() && db.join("000013.sst").exists());
        assert!(!db.join("000011.blob").exists() && !db.join("000012.blob").exists());
        aside.restore();
        assert!(db.join("000011.blob").exists() && db.join("000012.blob").exists());

        SetAside::unfinished_blob_files(&db, &dir.path().join("aside")).delete();
        assert!(!db.join("000011.blob").exists());
        assert!(!dir.path().join("aside/000011.blob").exists());
    }
}
