//! The chunk store: the only module that names RocksDB.
//!
//! One RocksDB database per store directory, one column family per kind of record (see
//! `store-format.md`). Chunk bytes are compressed here with zstd and verified with BLAKE3
//! whenever they are read back, so no caller ever sees bytes that do not match their id.
//!
//! Write ordering (a *must* in store-format.md): chunks before the recipe that names them,
//! recipes before blob records, blob records and documents before the image record that
//! needs them. RocksDB's write-ahead log replays writes in order after a crash (point-in-time
//! recovery), so writing in that order is enough to never expose a record whose dependencies
//! are missing; the records that finish a unit of work are written with `sync` so that a
//! finished command survives power loss too.

mod gate;
mod lock;
mod orphans;
pub mod records;
mod space;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use rocksdb::{
    BoundColumnFamily, ColumnFamilyDescriptor, DBCompressionType, DBRecoveryMode, DBWithThreadMode,
    IteratorMode, MultiThreaded, Options, ReadOptions, WriteBatch, WriteOptions,
};

use crate::chunk::ChunkerParams;
use crate::codec::{Reader, Writer};
use crate::error::{Error, IoContext, Result};
use crate::id::{ChunkId, Digest};
use crate::tarindex::TarEntry;
pub use gate::WriterSession;
pub use records::{BlobRecord, ChunkInfo, Doc, ImageRecord, Recipe};
pub use space::{Reclaimed, SpaceUsage};

type Db = DBWithThreadMode<MultiThreaded>;

/// Store format version. Bumped on any incompatible change; see the Changes log.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_MAGIC: &[u8; 8] = b"BOOSTER\0";
const HEADER_KEY: &[u8] = b"header";

const CF_META: &str = "meta";
const CF_CHUNKS: &str = "chunks";
const CF_CHUNK_INFO: &str = "chunkinfo";
const CF_RECIPES: &str = "recipes";
const CF_TARINDEX: &str = "tarindex";
const CF_BLOBS: &str = "blobs";
const CF_DOCS: &str = "docs";
const CF_IMAGES: &str = "images";
const ALL_CFS: [&str; 8] = [
    CF_META,
    CF_CHUNKS,
    CF_CHUNK_INFO,
    CF_RECIPES,
    CF_TARINDEX,
    CF_BLOBS,
    CF_DOCS,
    CF_IMAGES,
];

/// A file of `RESERVE_LEN` bytes kept in the store directory and deleted when the disk
/// fills up: the room RocksDB needs to open the store again afterwards.
const RESERVE_FILE: &str = "reserve";
const RESERVE_LEN: u64 = 16 << 20;

/// Chunk values: a codec byte, then the payload.
const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;
/// zstd level for chunks at rest. Level 1 keeps chunk compression faster than gunzip on one
/// core (see bench/RESULTS.md); bundles use stronger levels because they cross a wire.
pub const CHUNK_ZSTD_LEVEL: i32 = 1;

pub struct Store {
    path: PathBuf,
    db: Db,
    params: ChunkerParams,
    /// Open by every operation that adds records, from its first chunk to its image
    /// record; gc runs only when none is: inside one process (the companion service) gc
    /// never sweeps a chunk or recipe that a pull or import has written but not yet linked.
    gc_gate: gate::Gate,
    blob_write: std::sync::Mutex<()>,
    /// New chunks were written by this process (see `Drop`).
    wrote_chunks: std::sync::atomic::AtomicBool,
    _lock: lock::StoreLock,
}

/// Closing a store leaves no work behind (store-format.md §5.1).
///
/// A process that wrote chunks flushes its memtables (BlobDB writes chunk values to blob
/// files only on flush): otherwise every later open replays the whole write-ahead log, which
/// after a pull holds every new chunk (measured: about a tenth of a following import's CPU).
/// A failure loses nothing: the log still holds every write. Processes that only read never
/// flush, and neither does one that found the disk full (its reserve file is gone): a flush's
/// partial output could take the last bytes the next open needs.
///
/// Then every process, reader or writer, waits for the compactions RocksDB has scheduled
/// (up to `CLOSE_WAIT`): a short-lived process that walks away from them leaves the debt to
/// the next one, and thousands of sessions in a row would each start and abandon the same
/// work. What a close past the wait cancels, or a killed process leaves, are files no version
/// names; the next open deletes them.
impl Drop for Store {
    fn drop(&mut self) {
        self.flush_written();
        self.settle(space::CLOSE_WAIT);
        tracing::debug!("store {}: closed", self.path.display());
    }
}

impl Store {
    fn flush_written(&self) {
        if !self.wrote_chunks.load(std::sync::atomic::Ordering::Relaxed)
            || !self.path.join(RESERVE_FILE).exists()
        {
            return;
        }
        for name in ALL_CFS {
            if let Some(cf) = self.db.cf_handle(name)
                && let Err(e) = self.db.flush_cf(&cf)
            {
                tracing::debug!("store {}: flushing {name} on close: {e}", self.path.display());
            }
        }
    }
}

/// What a chunk write did.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOutcome {
    pub new: bool,
    pub stored_len: u32,
}

impl Store {
    /// Open the store at `path`, creating it if it does not exist.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with(path, ChunkerParams::DEFAULT)
    }

    pub fn open_with(path: &Path, params: ChunkerParams) -> Result<Store> {
        std::fs::create_dir_all(path).ctx(|| format!("creating store directory {}", path.display()))?;
        let lock = lock::StoreLock::acquire(path)?;
        let db = open_db(path)?;
        let store = Store {
            path: path.to_path_buf(),
            db,
            params,
            gc_gate: gate::Gate::default(),
            blob_write: std::sync::Mutex::new(()),
            wrote_chunks: std::sync::atomic::AtomicBool::new(false),
            _lock: lock,
        };
        store.check_or_write_header()?;
        store.keep_reserve();
        Ok(store)
    }

    /// Recreate the reserve if it is missing and there is room (best effort). Room means
    /// the disk keeps at least another reserve's worth free afterwards: a reserve that
    /// takes the last free bytes would make the next open fail instead of this write.
    fn keep_reserve(&self) {
        let p = self.path.join(RESERVE_FILE);
        if std::fs::metadata(&p)
            .map(|m| m.len() == RESERVE_LEN)
            .unwrap_or(false)
        {
            return;
        }
        if free_bytes(&self.path).is_some_and(|free| free < 2 * RESERVE_LEN) {
            return;
        }
        let ok = std::fs::File::create(&p).and_then(|f| {
            use std::io::Write;
            let mut w = std::io::BufWriter::new(f);
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..RESERVE_LEN >> 20 {
                w.write_all(&zeros)?;
            }
            w.flush()
        });
        if ok.is_err() {
            let _ = std::fs::remove_file(&p);
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Scratch space for spooled and rebuilt blobs, on the store's filesystem so that
    /// finished files can be renamed into place.
    pub fn tmp_dir(&self) -> Result<PathBuf> {
        let p = self.path.join("tmp");
        std::fs::create_dir_all(&p).ctx(|| format!("creating {}", p.display()))?;
        Ok(p)
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Writer side of the gc interlock: hold it from before the first chunk write until
    /// the last record that links what was written. Sessions nest.
    pub fn writer_gate(&self) -> WriterSession {
        self.gc_gate.writer()
    }

    /// gc's side of the interlock: waits for every writer session to close.
    pub fn gc_gate(&self) -> gate::Collecting {
        self.gc_gate.collect()
    }

    fn cf(&self, name: &str) -> std::sync::Arc<BoundColumnFamily<'_>> {
        self.db.cf_handle(name).expect("column family created at open")
    }

    fn err(&self, source: rocksdb::Error) -> Error {
        db_error(&self.path, source)
    }

    fn bad_record(&self, kind: &'static str, key: impl ToString, reason: impl ToString) -> Error {
        Error::BadRecord {
            path: self.path.clone(),
            kind,
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }

    fn check_or_write_header(&self) -> Result<()> {
        let meta = self.cf(CF_META);
        match self.db.get_cf(&meta, HEADER_KEY).map_err(|e| self.err(e))? {
            Some(h) => self.check_header(&h),
            None => {
                if self.has_any_records()? {
                    return Err(Error::StoreFormat {
                        path: self.path.clone(),
                        message:
                            "the database has records but no booster header; this is not a booster store"
                                .into(),
                    });
                }
                let mut opts = WriteOptions::default();
                opts.set_sync(true);
                self.db
                    .put_cf_opt(&meta, HEADER_KEY, encode_header(&self.params), &opts)
                    .map_err(|e| self.err(e))
            }
        }
    }

    fn check_header(&self, h: &[u8]) -> Result<()> {
        let bad = |m: String| Error::StoreFormat {
            path: self.path.clone(),
            message: m,
        };
        let mut r = Reader::new(h);
        let magic = r.raw(8, "magic").map_err(|e| bad(e.0))?;
        if magic != HEADER_MAGIC {
            return Err(bad("bad header magic; this is not a booster store".into()));
        }
        let version = r.u32_le("version").map_err(|e| bad(e.0))?;
        if version > FORMAT_VERSION {
            return Err(Error::StoreTooNew {
                path: self.path.clone(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let found = match ChunkerParams::read_from(&mut r) {
            Ok(p) => p,
            Err(e) => {
                return Err(Error::ChunkerMismatch {
                    path: self.path.clone(),
                    found: e.0,
                    expected: self.params.name(),
                });
            }
        };
        if found != self.params {
            return Err(Error::ChunkerMismatch {
                path: self.path.clone(),
                found: found.name(),
                expected: self.params.name(),
            });
        }
        Ok(())
    }

    fn has_any_records(&self) -> Result<bool> {
        for name in ALL_CFS.iter().filter(|n| **n != CF_META) {
            let cf = self.cf(name);
            if self.db.iterator_cf(&cf, IteratorMode::Start).next().is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ---- chunks -------------------------------------------------------------------------

    pub fn chunk_info(&self, id: &ChunkId) -> Result<Option<ChunkInfo>> {
        let cf = self.cf(CF_CHUNK_INFO);
        match self.db.get_pinned_cf(&cf, id.0).map_err(|e| self.err(e))? {
            Some(v) => ChunkInfo::decode(&v)
                .map(Some)
                .map_err(|e| self.bad_record("chunk info", id, e)),
            None => Ok(None),
        }
    }

    pub fn has_chunk(&self, id: &ChunkId) -> Result<bool> {
        Ok(self.chunk_info(id)?.is_some())
    }

    /// Store a chunk unless it is already present. `plain` must hash to `id` (the caller
    /// computed the id from these very bytes).
    pub fn put_chunk(&self, id: &ChunkId, plain: &[u8]) -> Result<PutOutcome> {
        if let Some(info) = self.chunk_info(id)? {
            return Ok(PutOutcome {
                new: false,
                stored_len: info.stored_len,
            });
        }
        let value = compress_chunk(plain);
        let info = ChunkInfo {
            plain_len: plain.len() as u32,
            stored_len: value.len() as u32,
        };
        let mut batch = WriteBatch::default();
        batch.put_cf(&self.cf(CF_CHUNKS), id.0, &value);
        batch.put_cf(&self.cf(CF_CHUNK_INFO), id.0, info.encode());
        self.db.write(batch).map_err(|e| self.err(e))?;
        self.wrote_chunks
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(PutOutcome {
            new: true,
            stored_len: info.stored_len,
        })
    }

    /// Read a chunk, decompress it and check its BLAKE3 id.
    pub fn get_chunk(&self, id: &ChunkId) -> Result<Vec<u8>> {
        let plain = self.get_chunk_unverified(id)?;
        if ChunkId::of(&plain) != *id {
            return Err(Error::ChunkCorrupt {
                path: self.path.clone(),
                id: *id,
                reason: "its bytes do not hash to its id".into(),
            });
        }
        Ok(plain)
    }

    /// Read and decompress a chunk without hashing it: only for readers that verify a
    /// digest over everything they read (a whole stream's sha256), where the per-chunk
    /// BLAKE3 pass would be a second proof of the same bytes.
    pub fn get_chunk_unverified(&self, id: &ChunkId) -> Result<Vec<u8>> {
        let cf = self.cf(CF_CHUNKS);
        // RocksDB's own checksums are redundant here: every chunk read is proved end to end
        // (by its BLAKE3 in `get_chunk`, or by a stream or blob digest; store-format.md
        // 3.3), and skipping the CRC pass saves a read of every value.
        let mut ro = ReadOptions::default();
        ro.set_verify_checksums(false);
        let value = self
            .db
            .get_pinned_cf_opt(&cf, id.0, &ro)
            .map_err(|e| self.err(e))?
            .ok_or_else(|| Error::ChunkMissing {
                path: self.path.clone(),
                id: *id,
            })?;
        let corrupt = |reason: String| Error::ChunkCorrupt {
            path: self.path.clone(),
            id: *id,
            reason,
        };
        decompress_chunk(&value).map_err(corrupt)
    }

    /// Raw stored value of a chunk (codec byte + payload), for fsck's corruption tests and
    /// for copying chunks without recompressing them.
    pub fn get_chunk_raw(&self, id: &ChunkId) -> Result<Option<Vec<u8>>> {
        let cf = self.cf(CF_CHUNKS);
        self.db.get_cf(&cf, id.0).map_err(|e| self.err(e))
    }

    #[doc(hidden)]
    /// Overwrite a chunk's stored bytes without checks: only for tests that simulate disk
    /// corruption.
    pub fn corrupt_chunk_for_test(&self, id: &ChunkId, value: &[u8]) -> Result<()> {
        let cf = self.cf(CF_CHUNKS);
        self.db.put_cf(&cf, id.0, value).map_err(|e| self.err(e))
    }

    pub fn delete_chunks(&self, ids: &[ChunkId]) -> Result<()> {
        let mut batch = WriteBatch::default();
        let chunks = self.cf(CF_CHUNKS);
        let info = self.cf(CF_CHUNK_INFO);
        for id in ids {
            // Info first in the batch is irrelevant (a batch is atomic); both go together.
            batch.delete_cf(&info, id.0);
            batch.delete_cf(&chunks, id.0);
        }
        self.db.write(batch).map_err(|e| self.err(e))
    }

    /// Every chunk id with its sizes, in key order.
    pub fn for_each_chunk_info(&self, mut f: impl FnMut(ChunkId, ChunkInfo) -> Result<()>) -> Result<()> {
        let cf = self.cf(CF_CHUNK_INFO);
        for item in self.db.iterator_cf(&cf, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let id = ChunkId::from_slice(&k)
                .ok_or_else(|| self.bad_record("chunk info", hex::encode(&k), "key is not 32 bytes"))?;
            let info = ChunkInfo::decode(&v).map_err(|e| self.bad_record("chunk info", id, e))?;
            f(id, info)?;
        }
        Ok(())
    }

    /// Every stored chunk key (the data column family), in key order.
    pub fn for_each_chunk_key(&self, mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let cf = self.cf(CF_CHUNKS);
        let mut it = self.db.raw_iterator_cf(&cf);
        it.seek_to_first();
        while it.valid() {
            f(it.key().unwrap_or_default())?;
            it.next();
        }
        it.status().map_err(|e| self.err(e))
    }

    // ---- recipes and tar indexes ----------------------------------------------------------

    /// Record the recipe (and tar index) of a plain stream. Every chunk it names must already
    /// be stored; the write is synced because it completes an ingest.
    pub fn put_recipe(&self, digest: &Digest, recipe: &Recipe, tar_index: &[TarEntry]) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(&self.cf(CF_RECIPES), digest.0, recipe.encode());
        batch.put_cf(
            &self.cf(CF_TARINDEX),
            digest.0,
            records::encode_tar_index(tar_index),
        );
        self.db.write_opt(batch, &synced()).map_err(|e| self.err(e))
    }

    pub fn recipe(&self, digest: &Digest) -> Result<Option<Recipe>> {
        let cf = self.cf(CF_RECIPES);
        match self.db.get_pinned_cf(&cf, digest.0).map_err(|e| self.err(e))? {
            Some(v) => Recipe::decode(&v)
                .map(Some)
                .map_err(|e| self.bad_record("recipe", digest, e)),
            None => Ok(None),
        }
    }

    pub fn has_recipe(&self, digest: &Digest) -> Result<bool> {
        let cf = self.cf(CF_RECIPES);
        Ok(self
            .db
            .get_pinned_cf(&cf, digest.0)
            .map_err(|e| self.err(e))?
            .is_some())
    }

    pub fn tar_index(&self, digest: &Digest) -> Result<Vec<TarEntry>> {
        let cf = self.cf(CF_TARINDEX);
        match self.db.get_pinned_cf(&cf, digest.0).map_err(|e| self.err(e))? {
            Some(v) => records::decode_tar_index(&v).map_err(|e| self.bad_record("tar index", digest, e)),
            None => Ok(Vec::new()),
        }
    }

    pub fn delete_recipe(&self, digest: &Digest) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(&self.cf(CF_RECIPES), digest.0);
        batch.delete_cf(&self.cf(CF_TARINDEX), digest.0);
        self.db.write(batch).map_err(|e| self.err(e))
    }

    pub fn recipes(&self) -> Result<Vec<(Digest, Recipe)>> {
        self.collect(CF_RECIPES, "recipe", |k, v| {
            Ok((digest_key(k)?, Recipe::decode(v).map_err(|e| e.0)?))
        })
    }

    // ---- blob records ---------------------------------------------------------------------

    pub fn put_blob(&self, digest: &Digest, rec: &BlobRecord) -> Result<()> {
        let cf = self.cf(CF_BLOBS);
        self.db
            .put_cf_opt(&cf, digest.0, rec.encode(), &synced())
            .map_err(|e| self.err(e))
    }

    /// Write a blob record unless the store already has one that can rebuild the blob and
    /// this one cannot (check and write are atomic within the process).
    pub fn put_blob_keeping_rebuildable(&self, digest: &Digest, rec: &BlobRecord) -> Result<()> {
        let _serial = self.blob_write.lock().unwrap_or_else(|e| e.into_inner());
        if !rec.method.can_rebuild()
            && let Some(old) = self.blob(digest)?
            && old.method.can_rebuild()
        {
            return Ok(());
        }
        self.put_blob(digest, rec)
    }

    pub fn blob(&self, digest: &Digest) -> Result<Option<BlobRecord>> {
        let cf = self.cf(CF_BLOBS);
        match self.db.get_pinned_cf(&cf, digest.0).map_err(|e| self.err(e))? {
            Some(v) => BlobRecord::decode(&v)
                .map(Some)
                .map_err(|e| self.bad_record("blob", digest, e)),
            None => Ok(None),
        }
    }

    pub fn delete_blob(&self, digest: &Digest) -> Result<()> {
        let cf = self.cf(CF_BLOBS);
        self.db.delete_cf(&cf, digest.0).map_err(|e| self.err(e))
    }

    pub fn blobs(&self) -> Result<Vec<(Digest, BlobRecord)>> {
        self.collect(CF_BLOBS, "blob", |k, v| {
            Ok((digest_key(k)?, BlobRecord::decode(v).map_err(|e| e.0)?))
        })
    }

    // ---- documents (manifests, indexes, configs) -----------------------------------------

    pub fn put_doc(&self, digest: &Digest, doc: &Doc) -> Result<()> {
        let cf = self.cf(CF_DOCS);
        self.db
            .put_cf_opt(&cf, digest.0, doc.encode(), &synced())
            .map_err(|e| self.err(e))
    }

    pub fn doc(&self, digest: &Digest) -> Result<Option<Doc>> {
        let cf = self.cf(CF_DOCS);
        match self.db.get_pinned_cf(&cf, digest.0).map_err(|e| self.err(e))? {
            Some(v) => Doc::decode(&v)
                .map(Some)
                .map_err(|e| self.bad_record("document", digest, e)),
            None => Ok(None),
        }
    }

    pub fn delete_doc(&self, digest: &Digest) -> Result<()> {
        let cf = self.cf(CF_DOCS);
        self.db.delete_cf(&cf, digest.0).map_err(|e| self.err(e))
    }

    pub fn docs(&self) -> Result<Vec<(Digest, Doc)>> {
        self.collect(CF_DOCS, "document", |k, v| {
            Ok((digest_key(k)?, Doc::decode(v).map_err(|e| e.0)?))
        })
    }

    // ---- image records --------------------------------------------------------------------

    pub fn set_image(&self, name: &str, rec: &ImageRecord) -> Result<()> {
        let cf = self.cf(CF_IMAGES);
        self.db
            .put_cf_opt(&cf, name.as_bytes(), rec.encode(), &synced())
            .map_err(|e| self.err(e))
    }

    pub fn image(&self, name: &str) -> Result<Option<ImageRecord>> {
        let cf = self.cf(CF_IMAGES);
        match self
            .db
            .get_pinned_cf(&cf, name.as_bytes())
            .map_err(|e| self.err(e))?
        {
            Some(v) => ImageRecord::decode(&v)
                .map(Some)
                .map_err(|e| self.bad_record("image", name, e)),
            None => Ok(None),
        }
    }

    pub fn remove_image(&self, name: &str) -> Result<bool> {
        if self.image(name)?.is_none() {
            return Ok(false);
        }
        let cf = self.cf(CF_IMAGES);
        self.db
            .delete_cf_opt(&cf, name.as_bytes(), &synced())
            .map_err(|e| self.err(e))?;
        Ok(true)
    }

    pub fn images(&self) -> Result<Vec<(String, ImageRecord)>> {
        self.collect(CF_IMAGES, "image", |k, v| {
            let name = String::from_utf8(k.to_vec()).map_err(|_| "name is not UTF-8".to_string())?;
            Ok((name, ImageRecord::decode(v).map_err(|e| e.0)?))
        })
    }

    // ---- maintenance ----------------------------------------------------------------------

    /// Make every write so far durable (WAL fsync).
    pub fn sync(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(|e| self.err(e))
    }

    /// Start writing the chunks held in memory to disk without waiting for it: called
    /// between a write-heavy phase and a read-heavy one, it moves most of the flush the
    /// store does on close (see `Drop`) off the end of the command, where nothing else runs.
    ///
    /// Not when free space is short: the command's own output (a patch, a push spool)
    /// comes first, and an error of this flush is not seen (the one on close is).
    pub fn start_flush(&self) {
        if !self.wrote_chunks.load(std::sync::atomic::Ordering::Relaxed)
            || !self.path.join(RESERVE_FILE).exists()
            || free_bytes(&self.path).is_some_and(|free| free < EARLY_FLUSH_MIN_FREE)
        {
            return;
        }
        let mut opts = rocksdb::FlushOptions::default();
        opts.set_wait(false);
        if let Err(e) = self.db.flush_cf_opt(&self.cf(CF_CHUNKS), &opts) {
            tracing::debug!("store {}: background flush: {e}", self.path.display());
        }
    }

    fn collect<T>(
        &self,
        cf_name: &str,
        kind: &'static str,
        decode: impl Fn(&[u8], &[u8]) -> std::result::Result<T, String>,
    ) -> Result<Vec<T>> {
        let cf = self.cf(cf_name);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(&cf, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            out.push(decode(&k, &v).map_err(|e| self.bad_record(kind, hex::encode(&k), e))?);
        }
        Ok(out)
    }
}

fn digest_key(k: &[u8]) -> std::result::Result<Digest, String> {
    Digest::from_slice(k).ok_or_else(|| "key is not 32 bytes".to_string())
}

/// Free space below which `start_flush` leaves the flush to the close.
const EARLY_FLUSH_MIN_FREE: u64 = 1 << 30;

/// Bytes an unprivileged process may still write on the filesystem holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

fn synced() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

fn db_error(path: &Path, source: rocksdb::Error) -> Error {
    let text = source.to_string();
    if text.contains("No space left on device") {
        // Give the reserve back so the store can still be opened (RocksDB writes a little
        // on open) to inspect it, gc it, or finish the job once there is room.
        let _ = std::fs::remove_file(path.join(RESERVE_FILE));
        return Error::NoSpace {
            path: path.to_path_buf(),
        };
    }
    Error::Db {
        path: path.to_path_buf(),
        source,
    }
}

/// Open the database, first setting aside the blob files an interrupted flush or compaction
/// left unfinished, which RocksDB would keep forever (orphans.rs).
fn open_db(path: &Path) -> Result<Db> {
    let db_path = path.join("db");
    let aside = orphans::SetAside::unfinished_blob_files(&db_path, &path.join("tmp").join("unfinished"));
    let open = || Db::open_cf_descriptors(&db_options(), &db_path, column_families());
    match open() {
        Ok(db) => {
            if !aside.is_empty() {
                tracing::info!(
                    "store {}: deleted {} of unfinished blob files left by an interrupted process",
                    path.display(),
                    crate::output::human_bytes(aside.bytes)
                );
            }
            aside.delete();
            Ok(db)
        }
        Err(_) if !aside.is_empty() => {
            aside.restore();
            open().map_err(|source| db_error(path, source))
        }
        Err(source) => Err(db_error(path, source)),
    }
}

fn db_options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    o.increase_parallelism(2);
    o.set_max_background_jobs(2);
    o.set_keep_log_file_num(3);
    // RocksDB's info log is for RocksDB developers; warnings are enough here.
    o.set_log_level(rocksdb::LogLevel::Warn);
    o.set_max_open_files(512);
    o.set_compression_type(DBCompressionType::None);
    // Bound the write-ahead log: past this, RocksDB flushes memtables and recycles logs.
    o.set_max_total_wal_size(256 << 20);
    // Opening must not need free space: after a "disk full" the log is replayed into
    // memory instead of being flushed, so the user can still read the store (fsck, stats,
    // gc) and free space with booster itself.
    o.get_options_from_string("avoid_flush_during_recovery=true;allow_fallocate=false")
        .unwrap_or(o)
}

fn column_families() -> Vec<ColumnFamilyDescriptor> {
    ALL_CFS
        .iter()
        .map(|name| {
            let mut o = Options::default();
            o.set_compression_type(DBCompressionType::None);
            if *name == CF_CHUNKS {
                // Chunk values are tens of KiB: BlobDB keeps them out of the LSM tree so
                // compaction does not rewrite them again and again (measured in the issue:
                // plain values 330-420 MB/s write, BlobDB 423 MB/s).
                o.set_enable_blob_files(true);
                o.set_min_blob_size(2048);
                o.set_blob_file_size(256 << 20);
                // No blob garbage collection in routine compactions: chunks are never
                // overwritten and only gc deletes them, so between gcs a blob file holds no
                // garbage and relocating it only copies live chunks (measured: the whole
                // 52 MB of the issue-33 store rewritten every fourth pull). gc turns it on
                // for its own compactions (space.rs).
                o.set_enable_blob_gc(false);
                o.set_write_buffer_size(128 << 20);
            }
            ColumnFamilyDescriptor::new(*name, o)
        })
        .collect()
}

fn encode_header(p: &ChunkerParams) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(HEADER_MAGIC).u32_le(FORMAT_VERSION);
    p.write_to(&mut w);
    w.into_inner()
}

thread_local! {
    static ZSTD_COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    // One per thread: creating a zstd context per chunk read cost a few % of an apply.
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn compress_chunk(plain: &[u8]) -> Vec<u8> {
    let compressed = ZSTD_COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = zstd::bulk::Compressor::new(CHUNK_ZSTD_LEVEL).ok();
        }
        c.as_mut().and_then(|c| c.compress(plain).ok())
    });
    match compressed {
        Some(z) if z.len() + 1 < plain.len() => {
            let mut v = Vec::with_capacity(z.len() + 1);
            v.push(CODEC_ZSTD);
            v.extend_from_slice(&z);
            v
        }
        _ => {
            let mut v = Vec::with_capacity(plain.len() + 1);
            v.push(CODEC_RAW);
            v.extend_from_slice(plain);
            v
        }
    }
}

fn decompress_chunk(value: &[u8]) -> std::result::Result<Vec<u8>, String> {
    match value.split_first() {
        Some((&CODEC_RAW, rest)) => Ok(rest.to_vec()),
        Some((&CODEC_ZSTD, rest)) => ZSTD_DECOMPRESSOR.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?);
            }
            // Bounded: a chunk is never larger than MAX_CHUNK_LEN, and a frame that would
            // decode to more is an error. booster's frames declare their size; the output
            // buffer is allocated for exactly that.
            let capacity = match zstd::zstd_safe::get_frame_content_size(rest) {
                Ok(Some(n)) if n > records::MAX_CHUNK_LEN => {
                    return Err("decompresses to more than the chunk size limit".into());
                }
                Ok(Some(n)) => n as usize,
                _ => records::MAX_CHUNK_LEN as usize,
            };
            d.as_mut()
                .expect("set above")
                .decompress(rest, capacity)
                .map_err(|e| format!("zstd: {e}"))
        }),
        Some((codec, _)) => Err(format!("unknown chunk codec {codec}")),
        None => Err("empty value".into()),
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_codec_round_trips_and_detects_damage() {
        let data = b"hello hello hello hello hello hello hello hello".repeat(100);
        let v = compress_chunk(&data);
        assert_eq!(v[0], CODEC_ZSTD);
        assert_eq!(decompress_chunk(&v).unwrap(), data);
        let random: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let v = compress_chunk(&random);
        assert_eq!(decompress_chunk(&v).unwrap(), random);
        assert!(decompress_chunk(&[9, 1, 2]).is_err());
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn a_newer_store_is_refused_and_a_foreign_one_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut h = encode_header(&ChunkerParams::DEFAULT);
        h[8..12].copy_from_slice(&2u32.to_le_bytes());
        match store.check_header(&h) {
            Err(Error::StoreTooNew { found: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        let e = store
            .check_header(b"NOTBOOST\x01\x00\x00\x00")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a booster store"), "{e}");
    }
}
