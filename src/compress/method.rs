//! How a blob's exact bytes are rebuilt from its plain stream: the persisted part of a blob
//! record (`store-format.md`, "Rebuild methods"). Only data lives here; `analyze` finds a
//! method for a blob and `rebuild` executes one.

use crate::codec::{DecodeError, DecodeResult, Reader, Writer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// The blob is not compressed: its bytes are its plain stream.
    Plain,
    /// The blob's compressed bytes are kept as they are (chunked like any other stream, so an
    /// identical blob still dedups); `reason` says why no model rebuilds it.
    Whole { reason: String },
    /// Ingested as a delta base only: its plain stream is in the store, but the way its
    /// bytes were compressed was not analysed, so it cannot be pushed from this store.
    Unanalyzed,
    /// One or more gzip members, each rebuilt by a deflate model, then any trailing bytes.
    Gzip {
        members: Vec<GzipMember>,
        trailing: Vec<u8>,
    },
    /// One or more zstd frames, each rebuilt by libzstd with recorded parameters.
    Zstd { frames: Vec<ZstdFrame> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzipMember {
    /// The member header exactly as it was (flags, mtime, XFL, OS, optional fields).
    pub header: Vec<u8>,
    /// Plain bytes this member decompresses to.
    pub plain_len: u64,
    pub deflate: Deflate,
}

/// A model of the deflate encoder that produced a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deflate {
    /// zlib's deflate (GNU-compatible zlib, as flate2's `zlib` backend links it).
    Zlib { level: u8, mem_level: u8 },
    /// Go's standard library `compress/flate` (Go 1.8–1.26 family).
    GoStd { level: i8 },
    /// klauspost/pgzip: independent klauspost/compress flate blocks of `block_size` plain
    /// bytes, each primed with the previous block's tail and ended by a sync flush.
    Pgzip { level: i8, block_size: u32 },
    /// preflate-rs reconstruction: per piece of the stream, the plain length it covers and
    /// the correction data preflate needs to re-encode it.
    Preflate { pieces: Vec<PreflatePiece> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflatePiece {
    pub plain_len: u64,
    pub corrections: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZstdFrame {
    pub plain_len: u64,
    pub level: i32,
    /// Whether the frame header records the content size (the CLI pledges it for files).
    pub pledged_size: bool,
    pub checksum: bool,
    /// libzstd's worker count: 0 is the single-threaded path, any other value selects the
    /// multi-threaded job layout (whose output does not depend on the count).
    pub workers: u8,
}

impl Method {
    /// Short human name of the method, for `inspect` and summaries.
    pub fn describe(&self) -> String {
        match self {
            Method::Plain => "uncompressed".into(),
            Method::Whole { reason } => format!("carried whole: {reason}"),
            Method::Unanalyzed => "not analysed (delta base only)".into(),
            Method::Gzip { members, .. } => {
                let mut names: Vec<String> = members.iter().map(|m| m.deflate.describe()).collect();
                names.dedup();
                let s = names.join("+");
                if members.len() > 1 {
                    format!("gzip x{} {s}", members.len())
                } else {
                    format!("gzip {s}")
                }
            }
            Method::Zstd { frames } => match frames.first() {
                Some(f) => format!(
                    "zstd level {}{}",
                    f.level,
                    if frames.len() > 1 {
                        format!(" x{} frames", frames.len())
                    } else {
                        String::new()
                    }
                ),
                None => "zstd (empty)".into(),
            },
        }
    }

    /// Bytes of correction data the method carries (0 for exact models).
    pub fn correction_bytes(&self) -> u64 {
        match self {
            Method::Gzip { members, .. } => members
                .iter()
                .map(|m| match &m.deflate {
                    Deflate::Preflate { pieces } => pieces.iter().map(|p| p.corrections.len() as u64).sum(),
                    _ => 0,
                })
                .sum(),
            _ => 0,
        }
    }

    /// True when the blob's bytes can be produced from this store.
    pub fn can_rebuild(&self) -> bool {
        !matches!(self, Method::Unanalyzed)
    }

    /// True when the blob is kept as its own bytes (no plain stream behind it).
    pub fn is_verbatim(&self) -> bool {
        matches!(self, Method::Plain | Method::Whole { .. })
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            Method::Plain => {
                w.u8(0);
            }
            Method::Whole { reason } => {
                w.u8(1).str(reason);
            }
            Method::Unanalyzed => {
                w.u8(2);
            }
            Method::Gzip { members, trailing } => {
                w.u8(3).varint(members.len() as u64);
                for m in members {
                    w.bytes(&m.header).varint(m.plain_len);
                    m.deflate.encode(w);
                }
                w.bytes(trailing);
            }
            Method::Zstd { frames } => {
                w.u8(4).varint(frames.len() as u64);
                for f in frames {
                    w.varint(f.plain_len)
                        .varint(zigzag(f.level as i64))
                        .u8(f.pledged_size as u8)
                        .u8(f.checksum as u8)
                        .u8(f.workers);
                }
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> DecodeResult<Method> {
        Ok(match r.u8("method tag")? {
            0 => Method::Plain,
            1 => Method::Whole {
                reason: r.string("carried-whole reason")?,
            },
            2 => Method::Unanalyzed,
            3 => {
                let n = r.count(3, "gzip member count")?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    let header = r.bytes("gzip header")?.to_vec();
                    if header.len() < 10 {
                        return Err(DecodeError("gzip header shorter than 10 bytes".into()));
                    }
                    let plain_len = r.varint("member plain length")?;
                    let deflate = Deflate::decode(r)?;
                    members.push(GzipMember {
                        header,
                        plain_len,
                        deflate,
                    });
                }
                let trailing = r.bytes("trailing bytes")?.to_vec();
                Method::Gzip { members, trailing }
            }
            4 => {
                let n = r.count(5, "zstd frame count")?;
                let mut frames = Vec::with_capacity(n);
                for _ in 0..n {
                    let plain_len = r.varint("frame plain length")?;
                    let level = unzigzag(r.varint("zstd level")?);
                    if !(-131072..=22).contains(&level) {
                        return Err(DecodeError(format!("zstd level {level} out of range")));
                    }
                    frames.push(ZstdFrame {
                        plain_len,
                        level: level as i32,
                        pledged_size: r.u8("pledged flag")? != 0,
                        checksum: r.u8("checksum flag")? != 0,
                        workers: r.u8("workers")?,
                    });
                }
                Method::Zstd { frames }
            }
            t => return Err(DecodeError(format!("unknown rebuild method {t}"))),
        })
    }
}

impl Deflate {
    pub fn describe(&self) -> String {
        match self {
            Deflate::Zlib { level, .. } => format!("zlib -{level}"),
            Deflate::GoStd { level } => format!("go-stdlib level {}", go_level_name(*level)),
            Deflate::Pgzip { level, block_size } => {
                format!(
                    "pgzip level {} block {}",
                    go_level_name(*level),
                    human_block(*block_size)
                )
            }
            Deflate::Preflate { .. } => "preflate".into(),
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            Deflate::Zlib { level, mem_level } => {
                w.u8(0).u8(*level).u8(*mem_level);
            }
            Deflate::GoStd { level } => {
                w.u8(1).u8(*level as u8);
            }
            Deflate::Pgzip { level, block_size } => {
                w.u8(2).u8(*level as u8).u32_le(*block_size);
            }
            Deflate::Preflate { pieces } => {
                w.u8(3).varint(pieces.len() as u64);
                for p in pieces {
                    w.varint(p.plain_len).bytes(&p.corrections);
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> DecodeResult<Deflate> {
        Ok(match r.u8("deflate model tag")? {
            0 => {
                let level = r.u8("zlib level")?;
                let mem_level = r.u8("zlib memLevel")?;
                if level > 9 || !(1..=9).contains(&mem_level) {
                    return Err(DecodeError(format!(
                        "zlib parameters level {level} memLevel {mem_level} out of range"
                    )));
                }
                Deflate::Zlib { level, mem_level }
            }
            1 => Deflate::GoStd {
                level: go_level(r.u8("go level")?)?,
            },
            2 => {
                let level = go_level(r.u8("pgzip level")?)?;
                let block_size = r.u32_le("pgzip block size")?;
                if block_size < 4096 {
                    return Err(DecodeError(format!("pgzip block size {block_size} too small")));
                }
                Deflate::Pgzip { level, block_size }
            }
            3 => {
                let n = r.count(2, "preflate piece count")?;
                let mut pieces = Vec::with_capacity(n);
                for _ in 0..n {
                    pieces.push(PreflatePiece {
                        plain_len: r.len(MAX_PREFLATE_PIECE, "preflate piece length")? as u64,
                        corrections: r.bytes("preflate corrections")?.to_vec(),
                    });
                }
                Deflate::Preflate { pieces }
            }
            t => return Err(DecodeError(format!("unknown deflate model {t}"))),
        })
    }
}

/// A preflate piece is decoded into memory whole on rebuild; booster writes pieces of at
/// most 16 MiB, and refuses records claiming more than this.
const MAX_PREFLATE_PIECE: u64 = 64 << 20;

fn go_level(b: u8) -> DecodeResult<i8> {
    let l = b as i8;
    if !(-2..=9).contains(&l) {
        return Err(DecodeError(format!("deflate level {l} out of range")));
    }
    Ok(l)
}

fn go_level_name(level: i8) -> String {
    match level {
        -2 => "huffman-only".into(),
        -1 => "default".into(),
        l => l.to_string(),
    }
}

fn human_block(b: u32) -> String {
    if b % (1 << 20) == 0 {
        format!("{}MiB", b >> 20)
    } else if b % 1024 == 0 {
        format!("{}KiB", b >> 10)
    } else {
        b.to_string()
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: Method) {
        let mut w = Writer::new();
        m.encode(&mut w);
        let mut r = Reader::new(&w.buf);
        assert_eq!(Method::decode(&mut r).unwrap(), m);
        assert!(r.is_empty());
    }

    #[test]
    fn methods_round_trip() {
        round_trip(Method::Plain);
        round_trip(Method::Unanalyzed);
        round_trip(Method::Whole {
            reason: "encoder not recognised".into(),
        });
        round_trip(Method::Gzip {
            members: vec![
                GzipMember {
                    header: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3],
                    plain_len: 1234,
                    deflate: Deflate::Zlib {
                        level: 6,
                        mem_level: 8,
                    },
                },
                GzipMember {
                    header: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255],
                    plain_len: 5,
                    deflate: Deflate::Preflate {
                        pieces: vec![PreflatePiece {
                            plain_len: 5,
                            corrections: vec![1, 2, 3],
                        }],
                    },
                },
            ],
            trailing: vec![0, 0],
        });
        round_trip(Method::Zstd {
            frames: vec![ZstdFrame {
                plain_len: 9,
                level: -5,
                pledged_size: true,
                checksum: false,
                workers: 1,
            }],
        });
    }
}
