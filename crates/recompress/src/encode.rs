//! Running an encoder model over a plain stream: exactly `len` bytes in, the compressed
//! stream out. Analysis runs candidates this way, rebuild runs the chosen model.

use std::io::{self, Read, Write};

use crate::kpzstd::{FrameEncoder, Speed, Variant};
use crate::method::{Deflate, KpVariant};
use crate::models::{self, StreamEncoder};

/// Plain bytes handed to an encoder per call.
const PUMP: usize = 1 << 20;

/// A temporary file with no name (gone when closed, whatever happens to the process).
pub fn anonymous_spool() -> io::Result<std::fs::File> {
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
    use crate::kpflate::{Encoder, PGZIP_TAIL_SIZE, pgzip_block_with};
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

/// klauspost encoders by speed and version, reused across frames as `Encoder.Reset` reuses
/// one (the tables of the best speed are 34 MB). A blob's frames come from one or two
/// writers, so only the two most recently used are kept: a hostile record that switches
/// models at every frame costs time, not memory.
#[derive(Default)]
pub struct KzPool {
    /// Most recently used last.
    encoders: Vec<((Speed, Variant), FrameEncoder)>,
}

const KZ_POOL_SIZE: usize = 2;

impl KzPool {
    pub fn get(&mut self, speed: Speed, variant: Variant, cuts: &[u64]) -> &mut FrameEncoder {
        let key = (speed, variant);
        let entry = match self.encoders.iter().position(|(k, _)| *k == key) {
            Some(i) => self.encoders.remove(i),
            None => {
                if self.encoders.len() == KZ_POOL_SIZE {
                    self.encoders.remove(0);
                }
                (key, FrameEncoder::new(speed, variant, &[]))
            }
        };
        self.encoders.push(entry);
        let (_, e) = self.encoders.last_mut().expect("just pushed");
        e.reset(cuts);
        e
    }
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
            let mut enc = crate::kpflate::PgzipEncoder::with_variant(9, block, variant).unwrap();
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
