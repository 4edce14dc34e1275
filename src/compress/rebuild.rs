//! Rebuild: a blob's exact bytes from its plain stream and its method. Every rebuild hashes
//! what it produces and compares with the blob digest before reporting success; callers
//! that write to a file keep the file only on success (`rebuild_to_file`).

use std::io::{self, Read, Write};
use std::path::Path;

use super::gzip;
use super::method::{Deflate, GzipMember, KpVariant, Method, PreflatePiece, ZstdFrame, ZstdModel};
use super::models::{self, StreamEncoder};
use crate::error::{Error, IoContext, Result};
use crate::id::{Digest, Sha256};
use crate::reassemble::ContentReader;
use crate::store::{BlobRecord, Store};

/// Plain bytes handed to an encoder per call.
const PUMP: usize = 1 << 20;

/// A writer that hashes and counts what passes through it.
pub struct Hashing<W> {
    inner: W,
    sha: Sha256,
    len: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            sha: Sha256::new(),
            len: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.sha.finish(), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Rebuild the blob `digest` into `out`, then check size and digest. On error, whatever
/// was written to `out` must be discarded by the caller.
pub fn rebuild_to(store: &Store, digest: &Digest, rec: &BlobRecord, out: &mut dyn Write) -> Result<u64> {
    // Every failure names the layer, whatever stage it came from.
    rebuild_inner(store, digest, rec, out).map_err(|e| match e {
        Error::Rebuild { .. } | Error::DigestMismatch { .. } => e,
        other => Error::Rebuild {
            digest: *digest,
            reason: other.to_string(),
        },
    })
}

fn rebuild_inner(store: &Store, digest: &Digest, rec: &BlobRecord, out: &mut dyn Write) -> Result<u64> {
    let fail = |reason: String| Error::Rebuild {
        digest: *digest,
        reason,
    };
    if !rec.method.can_rebuild() {
        return Err(fail(
            "it was stored as a delta base only and cannot be rebuilt; run `booster pull` on an image that has it to make it pushable".into(),
        ));
    }
    // The blob's digest, checked at the end, proves every plain byte the rebuild read; when
    // anything fails, a damaged chunk is the first suspect and is named if found.
    let mut plain = ContentReader::open(store, &rec.content)?.caller_verifies();
    let result = rebuild_from(&mut plain, digest, rec, out);
    if result.is_err() {
        plain.find_damaged_chunk()?;
    }
    result
}

fn rebuild_from(
    plain: &mut ContentReader<'_>,
    digest: &Digest,
    rec: &BlobRecord,
    out: &mut dyn Write,
) -> Result<u64> {
    let fail = |reason: String| Error::Rebuild {
        digest: *digest,
        reason,
    };
    let mut sink = Hashing::new(out);
    let io_fail = |e: io::Error| match e.into_inner() {
        Some(inner) => match inner.downcast::<Error>() {
            Ok(err) => *err,
            Err(other) => fail(other.to_string()),
        },
        None => fail("I/O error during rebuild".into()),
    };
    match &rec.method {
        Method::Plain | Method::Whole { .. } => {
            io::copy(plain, &mut sink).map_err(io_fail)?;
        }
        Method::Unanalyzed => unreachable!("checked above"),
        Method::Gzip { members, trailing } => {
            for m in members {
                rebuild_gzip_member(m, plain, &mut sink).map_err(io_fail)?;
            }
            sink.write_all(trailing).map_err(io_fail)?;
        }
        Method::Zstd { frames } => {
            let mut pool = super::zstd_frames::KzPool::default();
            for f in frames {
                rebuild_zstd_frame(f, plain, &mut sink, &mut pool).map_err(io_fail)?;
            }
        }
    }
    // The plain stream must be used up exactly.
    let mut probe = [0u8; 1];
    if plain.read(&mut probe).map_err(io_fail)? != 0 {
        return Err(fail(format!(
            "the method consumed fewer plain bytes than content {} holds",
            rec.content
        )));
    }
    let (_, actual, len) = sink.finish();
    if len != rec.size {
        return Err(fail(format!(
            "rebuilt {len} bytes, the blob has {}; the stored rebuild data is damaged (run `booster fsck --rebuild`)",
            rec.size
        )));
    }
    if actual != *digest {
        return Err(Error::DigestMismatch {
            what: format!("rebuilt layer {digest}"),
            expected: *digest,
            actual,
        });
    }
    Ok(len)
}

/// Rebuild into a new file at `path` (written beside it, renamed into place on success).
pub fn rebuild_to_file(store: &Store, digest: &Digest, rec: &BlobRecord, path: &Path) -> Result<u64> {
    rebuild_to_file_and(store, digest, rec, path, &mut io::sink())
}

/// `rebuild_to_file`, also handing every byte to `also` as it is produced (an upload in
/// flight). `also` sees the bytes before they are verified: it must not let them count
/// until this returns `Ok`.
pub fn rebuild_to_file_and(
    store: &Store,
    digest: &Digest,
    rec: &BlobRecord,
    path: &Path,
    also: &mut dyn Write,
) -> Result<u64> {
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
    let mut w = Tee {
        file: io::BufWriter::with_capacity(1 << 20, file),
        also,
    };
    let res = rebuild_to(store, digest, rec, &mut w).and_then(|n| {
        w.flush().ctx(|| format!("writing {}", tmp.display()))?;
        Ok(n)
    });
    match res {
        Ok(n) => {
            std::fs::rename(&tmp, path).ctx(|| format!("renaming {}", tmp.display()))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes to a file and to a second writer.
struct Tee<'a> {
    file: io::BufWriter<std::fs::File>,
    also: &'a mut dyn Write,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all(buf)?;
        self.also.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.also.flush()
    }
}

/// Rebuild and check, discarding the bytes.
pub fn verify_blob(store: &Store, digest: &Digest, rec: &BlobRecord) -> Result<()> {
    rebuild_to(store, digest, rec, &mut io::sink()).map(|_| ())
}

fn rebuild_gzip_member(m: &GzipMember, plain: &mut dyn Read, sink: &mut dyn Write) -> io::Result<()> {
    sink.write_all(&m.header)?;
    let mut crc = flate2::Crc::new();
    match &m.deflate {
        Deflate::Preflate { pieces } => preflate_rebuild(pieces, plain, sink, &mut crc)?,
        Deflate::Replay { model, corrections } => {
            replay_rebuild(model, corrections, plain, m.plain_len, sink, &mut crc)?
        }
        model => encode_deflate(model, plain, m.plain_len, sink, Some(&mut crc))?,
    }
    sink.write_all(&gzip::trailer(crc.sum(), m.plain_len))
}

/// A near miss: the model's output goes to an unnamed spool file, then the corrections
/// turn it into the original while it is read back (both sides stream; the spool holds
/// about one compressed member).
fn replay_rebuild(
    model: &Deflate,
    corrections: &[u8],
    plain: &mut dyn Read,
    len: u64,
    sink: &mut dyn Write,
    crc: &mut flate2::Crc,
) -> io::Result<()> {
    let mut spool = io::BufWriter::with_capacity(1 << 20, anonymous_spool()?);
    encode_deflate(model, plain, len, &mut spool, Some(crc))?;
    let mut spool = spool.into_inner().map_err(|e| e.into_error())?;
    io::Seek::rewind(&mut spool)?;
    super::replay::apply(io::BufReader::with_capacity(1 << 20, spool), corrections, sink)
}

/// A temporary file with no name (gone when closed, whatever happens to the process).
pub(crate) fn anonymous_spool() -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(std::env::temp_dir())
}

/// Run a deflate model over exactly `len` plain bytes into `sink`. pgzip's blocks are
/// independent once each knows its predecessor's tail, so they are encoded on every core.
pub fn encode_deflate(
    model: &Deflate,
    plain: &mut dyn Read,
    len: u64,
    sink: &mut dyn Write,
    crc: Option<&mut flate2::Crc>,
) -> io::Result<()> {
    if let Deflate::Klauspost {
        variant,
        level,
        block_size,
    } = model
        && *block_size > 0
    {
        return pgzip_parallel(
            *level as i32,
            *variant,
            *block_size as usize,
            plain,
            len,
            sink,
            crc,
        );
    }
    let mut enc = models::deflate_encoder(model).ok_or_else(|| {
        io::Error::other(format!(
            "deflate model {} is not available in this build",
            model.describe()
        ))
    })?;
    pump(enc.as_mut(), plain, len, sink, crc)
}

/// pgzip on all cores: blocks are read in order, each sent with the last 16 KiB of the one
/// before it to a worker, and written back in order. At most a few blocks are in flight.
fn pgzip_parallel(
    level: i32,
    variant: KpVariant,
    block_size: usize,
    plain: &mut dyn Read,
    len: u64,
    sink: &mut dyn Write,
    mut crc: Option<&mut flate2::Crc>,
) -> io::Result<()> {
    use super::kpflate::{Encoder, PGZIP_TAIL_SIZE, pgzip_block_with};
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    // One encoder per worker, reused block after block as pgzip reuses its pool's.
    let encoders: Option<Vec<Encoder>> = if block_size > PGZIP_TAIL_SIZE {
        (0..workers)
            .map(|_| Encoder::with_variant(level, variant))
            .collect()
    } else {
        None
    };
    let Some(encoders) = encoders else {
        return Err(io::Error::other(format!(
            "pgzip level {level} block {block_size} is not valid"
        )));
    };
    // Every full block, then the final block (possibly empty) which closes the stream.
    let blocks = len / block_size as u64 + 1;
    type Job = (u64, Vec<u8>, Vec<u8>, bool);
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(workers);
    let (out_tx, out_rx) = crossbeam_channel::unbounded::<(u64, Vec<u8>)>();
    std::thread::scope(|scope| -> io::Result<()> {
        for mut enc in encoders {
            let (job_rx, out_tx) = (job_rx.clone(), out_tx.clone());
            scope.spawn(move || {
                for (i, tail, block, last) in job_rx {
                    let mut out = Vec::with_capacity(block.len() / 2 + 64);
                    pgzip_block_with(&mut enc, &tail, &block, last, &mut out);
                    if out_tx.send((i, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(out_tx);
        let mut pending: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
        let mut next_out = 0u64;
        let mut write_ready =
            |pending: &mut std::collections::BTreeMap<u64, Vec<u8>>, next: &mut u64| -> io::Result<()> {
                while let Some(out) = pending.remove(next) {
                    sink.write_all(&out)?;
                    *next += 1;
                }
                Ok(())
            };
        let mut tail: Vec<u8> = Vec::new();
        let mut left = len;
        let mut result = Ok(());
        for i in 0..blocks {
            let n = left.min(block_size as u64) as usize;
            let mut block = vec![0u8; n];
            if let Err(e) = plain.read_exact(&mut block) {
                result = Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::other("the plain stream is shorter than the recorded layout")
                } else {
                    e
                });
                break;
            }
            if let Some(c) = crc.as_deref_mut() {
                c.update(&block);
            }
            left -= n as u64;
            let next_tail = block[block.len().saturating_sub(PGZIP_TAIL_SIZE)..].to_vec();
            if job_tx
                .send((i, std::mem::replace(&mut tail, next_tail), block, i + 1 == blocks))
                .is_err()
            {
                break;
            }
            while let Ok((j, out)) = out_rx.try_recv() {
                pending.insert(j, out);
            }
            if let Err(e) = write_ready(&mut pending, &mut next_out) {
                result = Err(e);
                break;
            }
        }
        drop(job_tx);
        result?;
        for (j, out) in out_rx.iter() {
            pending.insert(j, out);
            write_ready(&mut pending, &mut next_out)?;
        }
        if next_out != blocks {
            return Err(io::Error::other("a pgzip worker stopped"));
        }
        Ok(())
    })
}

/// Feed exactly `len` plain bytes through `enc` into `sink`.
pub fn pump(
    enc: &mut dyn StreamEncoder,
    plain: &mut dyn Read,
    len: u64,
    sink: &mut dyn Write,
    crc: Option<&mut flate2::Crc>,
) -> io::Result<()> {
    pump_in_pieces(enc, plain, len, sink, crc, PUMP)
}

/// `pump`, handing the encoder `piece` bytes at a time. Trial encodes use small pieces: a
/// zstd encoder's first output comes after its first block, and a wrong candidate is
/// dropped at its first differing byte, so it should not be fed more than a block or two
/// (at libzstd's level 19, a MiB costs half a second).
pub fn pump_in_pieces(
    enc: &mut dyn StreamEncoder,
    plain: &mut dyn Read,
    len: u64,
    sink: &mut dyn Write,
    mut crc: Option<&mut flate2::Crc>,
    piece: usize,
) -> io::Result<()> {
    let mut buf = vec![0u8; piece];
    let mut out = Vec::with_capacity(piece + piece / 8);
    let mut left = len;
    while left > 0 {
        let want = left.min(piece as u64) as usize;
        plain.read_exact(&mut buf[..want]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::other("the plain stream is shorter than the recorded layout")
            } else {
                e
            }
        })?;
        if let Some(c) = crc.as_deref_mut() {
            c.update(&buf[..want]);
        }
        enc.write(&buf[..want], &mut out)?;
        sink.write_all(&out)?;
        out.clear();
        left -= want as u64;
    }
    enc.finish(&mut out)?;
    sink.write_all(&out)
}

fn preflate_rebuild(
    pieces: &[PreflatePiece],
    plain: &mut dyn Read,
    sink: &mut dyn Write,
    crc: &mut flate2::Crc,
) -> io::Result<()> {
    if super::preflate_worker::enabled() {
        let mut worker = super::preflate_worker::Worker::start()?;
        for p in pieces {
            let mut text = vec![0u8; p.plain_len as usize];
            plain.read_exact(&mut text)?;
            crc.update(&text);
            let out = worker.piece(&text, &p.corrections, preflate_deadline(p.plain_len))?;
            sink.write_all(&out)?;
        }
        return Ok(());
    }
    // Without the worker process (library use: tests, fuzz targets): preflate-rs 0.7.6 can
    // loop forever on damaged or hostile correction data (`preflate_worker` says more), so
    // it runs on a worker thread with a deadline per piece; on timeout the rebuild fails
    // and the thread is abandoned (it holds no lock and writes nowhere; it ends with the
    // process).
    type Job = (Vec<u8>, Vec<u8>);
    let (job_tx, job_rx) = std::sync::mpsc::channel::<Job>();
    let (out_tx, out_rx) = std::sync::mpsc::channel::<io::Result<Vec<u8>>>();
    std::thread::Builder::new()
        .name("preflate".into())
        .spawn(move || {
            let mut recreate = preflate_rs::RecreateStreamProcessor::new();
            for (text, corrections) in job_rx {
                let r =
                    super::guard_preflate(|| recreate.recompress(&mut io::Cursor::new(&text), &corrections))
                        .ok_or_else(|| io::Error::other("preflate panicked while rebuilding"))
                        .and_then(|r| {
                            r.map(|(out, _)| out)
                                .map_err(|e| io::Error::other(format!("preflate: {e:?}")))
                        });
                let failed = r.is_err();
                if out_tx.send(r).is_err() || failed {
                    return;
                }
            }
        })?;
    for p in pieces {
        let mut text = vec![0u8; p.plain_len as usize];
        plain.read_exact(&mut text)?;
        crc.update(&text);
        let deadline = preflate_deadline(p.plain_len);
        job_tx
            .send((text, p.corrections.clone()))
            .map_err(|_| io::Error::other("preflate worker stopped"))?;
        let out = out_rx.recv_timeout(deadline).map_err(|_| {
            io::Error::other(format!(
                "preflate did not finish a {}-byte piece within {}s: its correction data is damaged",
                p.plain_len,
                deadline.as_secs()
            ))
        })??;
        sink.write_all(&out)?;
    }
    Ok(())
}

/// Generous: preflate rebuilds at 10+ MB/s; a piece taking 20× longer is not progressing.
/// `BOOSTER_PREFLATE_DEADLINE_SECS` overrides the base (tests and fuzzing).
fn preflate_deadline(plain_len: u64) -> std::time::Duration {
    let base = std::env::var("BOOSTER_PREFLATE_DEADLINE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    std::time::Duration::from_secs(base + 2 * (plain_len >> 20))
}

/// One zstd frame: a model over its plain bytes, inside its skippable frame if it has
/// one (whose size field is the frame's length, so the frame is built in memory first:
/// zstd:chunked keeps only small ones there), or verbatim bytes.
fn rebuild_zstd_frame(
    f: &ZstdFrame,
    plain: &mut dyn Read,
    sink: &mut dyn Write,
    pool: &mut super::zstd_frames::KzPool,
) -> io::Result<()> {
    let mut run = |sink: &mut dyn Write| -> io::Result<()> {
        match &f.model {
            ZstdModel::Lib { .. } => {
                let mut enc = models::ZstdEncoder::new(f)?;
                pump(&mut enc, plain, f.plain_len, sink, None)
            }
            ZstdModel::Klauspost { speed, variant, cuts } => {
                let enc = pool.get(*speed, *variant, cuts);
                pump(
                    &mut super::models::Infallible(enc),
                    plain,
                    f.plain_len,
                    sink,
                    None,
                )
            }
            ZstdModel::Verbatim { bytes } => sink.write_all(bytes),
        }
    };
    match f.skippable {
        None => run(sink),
        Some(magic) => {
            // Bounded as the decoder bounds what it looks into: a record cannot make a
            // rebuild hold more than that in memory.
            let mut inner = CappedVec(Vec::new());
            run(&mut inner)?;
            let inner = inner.0;
            sink.write_all(&magic.to_le_bytes())?;
            sink.write_all(&(inner.len() as u32).to_le_bytes())?;
            sink.write_all(&inner)
        }
    }
}

/// An in-memory sink that refuses to grow past a skippable frame's largest payload.
struct CappedVec(Vec<u8>);

impl Write for CappedVec {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if (self.0.len() + buf.len()) as u64 > super::decode::MAX_SKIPPABLE_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a frame inside a zstd skippable frame rebuilds larger than any booster records",
            ));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Refuses a method whose parts add up to another length than the text's.
fn covers_the_text(parts: impl Iterator<Item = u64>, plain: &[u8]) -> std::result::Result<(), String> {
    let total: u64 = parts.sum();
    if total != plain.len() as u64 {
        return Err(format!(
            "the method covers {total} plain bytes, the text has {}",
            plain.len()
        ));
    }
    Ok(())
}

/// Rebuild a gzip file held in memory from its plain text (the inner `.gz` files of
/// bundles). The caller checks the result against what it expects.
pub fn rebuild_gzip_bytes(method: &Method, plain: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let Method::Gzip { members, trailing } = method else {
        return Err("not a gzip method".into());
    };
    covers_the_text(members.iter().map(|m| m.plain_len), plain)?;
    let mut src = io::Cursor::new(plain);
    let mut out = Vec::with_capacity(plain.len() / 2 + 64);
    for m in members {
        rebuild_gzip_member(m, &mut src, &mut out).map_err(|e| e.to_string())?;
    }
    out.extend_from_slice(trailing);
    Ok(out)
}

/// Rebuild a zstd blob held in memory from its plain text (the method fuzz target drives
/// hostile records through the frame models with it).
pub fn rebuild_zstd_bytes(method: &Method, plain: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let Method::Zstd { frames } = method else {
        return Err("not a zstd method".into());
    };
    covers_the_text(frames.iter().map(|f| f.plain_len), plain)?;
    let mut src = io::Cursor::new(plain);
    let mut out = Vec::with_capacity(plain.len() / 2 + 64);
    let mut pool = super::zstd_frames::KzPool::default();
    for f in frames {
        rebuild_zstd_frame(f, &mut src, &mut out, &mut pool).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel pgzip path writes exactly what the sequential encoder writes, at the
    /// sizes where the block structure has edge cases.
    #[test]
    fn parallel_pgzip_matches_the_sequential_encoder() {
        let block = 40_000usize;
        let data: Vec<u8> = (0..3 * block as u32 + 7)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8 % 17)
            .collect();
        for (i, len) in [0, 1, block - 1, block, block + 1, 3 * block, data.len()]
            .into_iter()
            .enumerate()
        {
            let variant = KpVariant::ALL[i % KpVariant::ALL.len()];
            let mut seq = Vec::new();
            let mut enc = super::super::kpflate::PgzipEncoder::with_variant(9, block, variant).unwrap();
            enc.write(&data[..len], &mut seq);
            enc.finish(&mut seq);
            let mut par = Vec::new();
            let mut crc = flate2::Crc::new();
            pgzip_parallel(
                9,
                variant,
                block,
                &mut &data[..len],
                len as u64,
                &mut par,
                Some(&mut crc),
            )
            .unwrap();
            assert_eq!(par, seq, "length {len} {variant:?}");
            assert_eq!(crc.amount() as usize, len);
        }
    }

    /// A recorded block size pgzip would refuse, or a level outside klauspost's, is an
    /// error naming both, before any work starts.
    #[test]
    fn parallel_pgzip_refuses_settings_pgzip_refuses() {
        for (level, block) in [(9, 16_384), (42, 1 << 20)] {
            let e = pgzip_parallel(
                level,
                KpVariant::ALL[0],
                block,
                &mut &[][..],
                0,
                &mut Vec::new(),
                None,
            )
            .unwrap_err()
            .to_string();
            assert_eq!(e, format!("pgzip level {level} block {block} is not valid"));
        }
    }
}
