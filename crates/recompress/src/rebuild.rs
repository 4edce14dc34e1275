//! Rebuild: a blob's exact bytes from its plain stream and its method. The caller proves
//! the result (booster hashes every rebuilt byte and compares with the blob's digest before
//! it counts).

use std::io::{self, Read, Write};

use crate::encode::{KzPool, anonymous_spool, encode_deflate, pump};
use crate::gzip;
use crate::method::{Deflate, GzipMember, Method, PreflatePiece, ZstdFrame, ZstdModel};
use crate::models;

/// Rebuild the blob described by `method` from its plain stream into `sink`. The plain
/// stream must hold at least what the method consumes; the caller checks it holds no more.
/// A method that cannot be rebuilt (`Unanalyzed`) is an error.
pub fn rebuild_stream(method: &Method, plain: &mut dyn Read, sink: &mut dyn Write) -> io::Result<()> {
    match method {
        Method::Plain | Method::Whole { .. } => {
            io::copy(plain, sink)?;
        }
        Method::Unanalyzed => {
            return Err(io::Error::other(
                "the blob was stored as a delta base only and has no rebuild method",
            ));
        }
        Method::Gzip { members, trailing } => {
            for m in members {
                rebuild_gzip_member(m, plain, sink)?;
            }
            sink.write_all(trailing)?;
        }
        Method::Zstd { frames } => {
            let mut pool = KzPool::default();
            for f in frames {
                rebuild_zstd_frame(f, plain, sink, &mut pool)?;
            }
        }
    }
    Ok(())
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
    crate::replay::apply(io::BufReader::with_capacity(1 << 20, spool), corrections, sink)
}

fn preflate_rebuild(
    pieces: &[PreflatePiece],
    plain: &mut dyn Read,
    sink: &mut dyn Write,
    crc: &mut flate2::Crc,
) -> io::Result<()> {
    if crate::preflate_worker::enabled() {
        let mut worker = crate::preflate_worker::Worker::start()?;
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
                    crate::guard_preflate(|| recreate.recompress(&mut io::Cursor::new(&text), &corrections))
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
    pool: &mut KzPool,
) -> io::Result<()> {
    let mut run = |sink: &mut dyn Write| -> io::Result<()> {
        match &f.model {
            ZstdModel::Lib { .. } => {
                let mut enc = models::ZstdEncoder::new(f)?;
                pump(&mut enc, plain, f.plain_len, sink, None)
            }
            ZstdModel::Klauspost { speed, variant, cuts } => {
                let enc = pool.get(*speed, *variant, cuts);
                pump(&mut models::Infallible(enc), plain, f.plain_len, sink, None)
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
        if (self.0.len() + buf.len()) as u64 > crate::decode::MAX_SKIPPABLE_PAYLOAD {
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
    let mut pool = KzPool::default();
    for f in frames {
        rebuild_zstd_frame(f, &mut src, &mut out, &mut pool).map_err(|e| e.to_string())?;
    }
    Ok(out)
}
