//! Ingest: a plain stream (an uncompressed layer, or any blob kept whole) → FastCDC chunks →
//! BLAKE3 ids → the store, then its recipe and tar index.
//!
//! The calling thread reads and cuts; a small pool hashes, compresses and writes chunks in
//! parallel. Queues between them are bounded, so memory stays at a few chunks per worker
//! whatever the stream's size. Nothing names the stream until every chunk is written: the
//! recipe is the last write (store-format.md, "Write ordering").

use std::io::Read;

use crossbeam_channel::bounded;

use crate::chunk::Chunker;
use crate::error::{Error, IoContext, Result};
use crate::id::{ChunkId, Digest, Sha256};
use crate::store::{Recipe, Store};
use crate::tarindex::TarWalker;

/// Read size from the source: large enough to amortise calls, small enough to stay bounded.
const READ_BUF: usize = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestOutcome {
    pub digest: Option<Digest>,
    pub len: u64,
    pub chunks: u64,
    pub new_chunks: u64,
    /// Plain bytes of the chunks that were new to the store.
    pub new_bytes: u64,
    /// Bytes those new chunks occupy in the store after compression.
    pub stored_bytes: u64,
}

impl IngestOutcome {
    pub fn digest(&self) -> Digest {
        self.digest.expect("set by ingest")
    }
}

#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// Worker threads hashing and storing chunks.
    pub workers: usize,
    /// Refuse streams longer than this (decompression bombs, runaway inputs).
    pub max_len: u64,
    /// Build the tar entry index (off for blobs that are not tars).
    pub index_tar: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 8),
            max_len: MAX_LAYER_LEN.load(std::sync::atomic::Ordering::Relaxed),
            index_tar: true,
        }
    }
}

/// Default cap on a plain stream: far above any real layer, far below what would fill a disk
/// by accident from a small compressed bomb.
pub const DEFAULT_MAX_LAYER_LEN: u64 = 256 << 30;

static MAX_LAYER_LEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(DEFAULT_MAX_LAYER_LEN);

/// Set the process-wide cap on a plain stream (`--max-layer-size`).
pub fn set_max_layer_len(n: u64) {
    MAX_LAYER_LEN.store(n, std::sync::atomic::Ordering::Relaxed);
}

struct Stored {
    seq: usize,
    id: ChunkId,
    len: u32,
    new: bool,
    stored_len: u32,
}

/// Ingest a stream into the store and record its recipe under the sha256 of its bytes.
/// `what` names the stream in errors (a layer digest, a file path). `progress` receives the
/// number of plain bytes read so far.
pub fn ingest(
    store: &Store,
    source: &mut dyn Read,
    what: &str,
    opts: IngestOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<IngestOutcome> {
    let _gate = store.writer_gate();
    let workers = opts.workers.max(1);
    let (work_tx, work_rx) = bounded::<(usize, Vec<u8>)>(workers * 2);
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Result<Stored>>();

    std::thread::scope(|scope| -> Result<IngestOutcome> {
        for _ in 0..workers {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                for (seq, data) in work_rx {
                    let id = ChunkId::of(&data);
                    let res = store.put_chunk(&id, &data).map(|o| Stored {
                        seq,
                        id,
                        len: data.len() as u32,
                        new: o.new,
                        stored_len: o.stored_len,
                    });
                    let failed = res.is_err();
                    if done_tx.send(res).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        drop(work_rx);

        let read_result = read_and_cut(store, source, what, &opts, progress, |seq, chunk| {
            work_tx.send((seq, chunk.to_vec())).map_err(|_| {
                Error::io(
                    format!("ingesting {what}"),
                    std::io::Error::other("chunk writer stopped"),
                )
            })
        });
        drop(work_tx);

        let mut stored: Vec<Stored> = Vec::new();
        let mut first_err = None;
        for r in done_rx {
            match r {
                Ok(s) => stored.push(s),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        // A store error explains a stopped writer better than the reader's "stopped" error.
        if let Some(e) = first_err {
            return Err(e);
        }
        let (digest, len, entries) = read_result?;
        stored.sort_by_key(|s| s.seq);
        let mut out = IngestOutcome {
            digest: Some(digest),
            len,
            ..Default::default()
        };
        let chunks = stored
            .iter()
            .map(|s| {
                out.chunks += 1;
                if s.new {
                    out.new_chunks += 1;
                    out.new_bytes += s.len as u64;
                    out.stored_bytes += s.stored_len as u64;
                }
                (s.id, s.len)
            })
            .collect();
        let recipe = Recipe { len, chunks };
        store.put_recipe(&digest, &recipe, &entries)?;
        Ok(out)
    })
}

type ReadResult = (Digest, u64, Vec<crate::tarindex::TarEntry>);

fn read_and_cut(
    store: &Store,
    source: &mut dyn Read,
    what: &str,
    opts: &IngestOptions,
    progress: &mut dyn FnMut(u64),
    mut send: impl FnMut(usize, &[u8]) -> Result<()>,
) -> Result<ReadResult> {
    let mut chunker = Chunker::new(store.params());
    let mut sha = Sha256::new();
    let mut walker = opts.index_tar.then(TarWalker::new);
    let mut buf = vec![0u8; READ_BUF];
    let mut total = 0u64;
    let mut seq = 0usize;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("reading {what}"), e)),
        };
        let data = &buf[..n];
        total += n as u64;
        if total > opts.max_len {
            return Err(Error::format(
                what,
                format!(
                    "uncompressed stream exceeds the limit of {} bytes: a decompression bomb, or raise --max-layer-size if this layer is genuine",
                    opts.max_len
                ),
            ));
        }
        sha.update(data);
        if let Some(w) = walker.as_mut() {
            w.push(data);
        }
        chunker.push(data, |c| {
            let r = send(seq, c);
            seq += 1;
            r
        })?;
        progress(total);
    }
    chunker.finish(|c| {
        let r = send(seq, c);
        seq += 1;
        r
    })?;
    Ok((
        sha.finish(),
        total,
        walker.map(|w| w.finish()).unwrap_or_default(),
    ))
}

/// Ingest a file from disk (tests, benchmarks, `booster ingest`).
pub fn ingest_file(store: &Store, path: &std::path::Path, opts: IngestOptions) -> Result<IngestOutcome> {
    let mut f = std::fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
    ingest(store, &mut f, &path.display().to_string(), opts, &mut |_| {})
}
