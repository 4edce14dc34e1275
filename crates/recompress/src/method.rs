//! How a blob's exact bytes are rebuilt from its plain stream: the persisted part of a blob
//! record (`store-format.md`, "Rebuild methods"). Only data lives here; `analyze` finds a
//! method for a blob and `rebuild` executes one.

use crate::codec::{DecodeError, DecodeResult, Reader, Writer};
pub use crate::kpflate::Variant as KpVariant;
pub use crate::kpzstd::{Speed as KzSpeed, Variant as KzVariant};

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
    /// One or more zstd frames (and skippable frames), each rebuilt by a zstd model.
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
    /// The klauspost/compress flate family as `variant` writes it (klauspost's `gzip` and
    /// pgzip writers, and Go 1.27's `compress/gzip`, whose flate is a port of klauspost's):
    /// one stream when `block_size` is 0, else pgzip's independent blocks of `block_size`
    /// plain bytes, each primed with the previous block's tail and ended by a sync flush.
    Klauspost {
        variant: KpVariant,
        level: i8,
        block_size: u32,
    },
    /// preflate-rs reconstruction: per piece of the stream, the plain length it covers and
    /// the correction data preflate needs to re-encode it.
    Preflate { pieces: Vec<PreflatePiece> },
    /// A near miss: `model`'s output, corrected where the real encoder decided otherwise
    /// (`replay`). `model` is one of the exact models above.
    Replay {
        model: Box<Deflate>,
        corrections: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflatePiece {
    pub plain_len: u64,
    pub corrections: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZstdFrame {
    /// Plain bytes the frame decompresses to (0 for a verbatim skippable frame).
    pub plain_len: u64,
    pub model: ZstdModel,
    /// The frame sits inside a skippable frame with this magic number (zstd:chunked keeps
    /// its table of contents and tar-split data that way); its size field is the frame's.
    pub skippable: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZstdModel {
    /// libzstd (the zstd CLI) with the recorded parameters.
    Lib {
        level: i32,
        /// Whether the frame header records the content size (the CLI pledges it for files).
        pledged_size: bool,
        checksum: bool,
        /// libzstd's worker count: 0 is the single-threaded path, any other value selects
        /// the multi-threaded job layout (whose output does not depend on the count).
        workers: u8,
    },
    /// klauspost/compress's encoder, the one Go tools write with, with the plain offsets
    /// where the writer cut blocks short (`Flush`, the start of a `ReadFrom`).
    Klauspost {
        speed: KzSpeed,
        variant: KzVariant,
        cuts: Vec<u64>,
    },
    /// A skippable frame kept as it is (zstd:chunked's footer).
    Verbatim { bytes: Vec<u8> },
}

impl ZstdFrame {
    /// A libzstd frame outside any skippable frame.
    pub fn lib(plain_len: u64, level: i32, pledged_size: bool, checksum: bool, workers: u8) -> ZstdFrame {
        ZstdFrame {
            plain_len,
            model: ZstdModel::Lib {
                level,
                pledged_size,
                checksum,
                workers,
            },
            skippable: None,
        }
    }

    pub fn describe(&self) -> String {
        match &self.model {
            ZstdModel::Lib { level, .. } => format!("zstd level {level}"),
            ZstdModel::Klauspost { speed, variant, .. } => {
                format!("zstd {} {}", variant.name(), speed.name())
            }
            ZstdModel::Verbatim { .. } => "skippable frame".into(),
        }
    }
}

/// The largest verbatim skippable frame a record keeps (zstd:chunked's footer is 40 to 64
/// bytes; a bigger opaque frame makes the blob go whole).
pub const MAX_VERBATIM_FRAME: usize = 64 << 10;

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
            Method::Zstd { frames } => {
                let data: Vec<&ZstdFrame> = frames
                    .iter()
                    .filter(|f| !matches!(f.model, ZstdModel::Verbatim { .. }))
                    .collect();
                let mut names: Vec<String> = data.iter().map(|f| f.describe()).collect();
                names.dedup();
                let skippable = frames
                    .iter()
                    .filter(|f| f.skippable.is_some() || matches!(f.model, ZstdModel::Verbatim { .. }))
                    .count();
                let mut s = match names.len() {
                    0 => "zstd (empty)".to_string(),
                    _ => names.join("+"),
                };
                if data.len() > 1 {
                    s.push_str(&format!(" x{} frames", data.len()));
                }
                if skippable > 0 {
                    s.push_str(&format!(" + {skippable} skippable"));
                }
                s
            }
        }
    }

    /// Bytes of correction data the method carries (0 for exact models).
    pub fn correction_bytes(&self) -> u64 {
        match self {
            Method::Gzip { members, .. } => members
                .iter()
                .map(|m| match &m.deflate {
                    Deflate::Preflate { pieces } => pieces.iter().map(|p| p.corrections.len() as u64).sum(),
                    Deflate::Replay { corrections, .. } => corrections.len() as u64,
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
            // Frames libzstd made, outside skippable frames, keep the first encoding, so a
            // reader that predates the other models still reads them.
            Method::Zstd { frames }
                if frames
                    .iter()
                    .all(|f| f.skippable.is_none() && matches!(f.model, ZstdModel::Lib { .. })) =>
            {
                w.u8(4).varint(frames.len() as u64);
                for f in frames {
                    if let ZstdModel::Lib {
                        level,
                        pledged_size,
                        checksum,
                        workers,
                    } = f.model
                    {
                        w.varint(f.plain_len)
                            .varint(zigzag(level as i64))
                            .u8(pledged_size as u8)
                            .u8(checksum as u8)
                            .u8(workers);
                    }
                }
            }
            Method::Zstd { frames } => {
                w.u8(5).varint(frames.len() as u64);
                for f in frames {
                    f.encode(w);
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
                    frames.push(ZstdFrame {
                        plain_len,
                        model: decode_lib_model(r)?,
                        skippable: None,
                    });
                }
                Method::Zstd { frames }
            }
            5 => {
                let n = r.count(3, "zstd frame count")?;
                let mut frames = Vec::with_capacity(n);
                for _ in 0..n {
                    frames.push(ZstdFrame::decode(r)?);
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
            Deflate::Klauspost {
                variant,
                level,
                block_size: 0,
            } => match *variant {
                KpVariant::Go1_27 => format!("go1.27 compress/gzip level {}", go_level_name(*level)),
                kp => format!("{} gzip level {}", kp.name(), go_level_name(*level)),
            },
            Deflate::Klauspost {
                variant,
                level,
                block_size,
            } => format!(
                "pgzip level {} block {} ({})",
                go_level_name(*level),
                human_block(*block_size),
                variant.name()
            ),
            Deflate::Preflate { .. } => "preflate".into(),
            Deflate::Replay { model, .. } => format!("near-miss {} + corrections", model.describe()),
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            Deflate::Zlib { level, mem_level } => {
                w.u8(0).u8(*level).u8(*mem_level);
            }
            Deflate::GoStd { level } => {
                w.u8(1).u8(*level as u8);
            }
            // The models of the first format keep their first tag, so that a reader that
            // predates the variants still reads what it can rebuild.
            Deflate::Klauspost {
                variant: KpVariant::Kp1_15,
                level,
                block_size,
            } if *block_size > 0 => {
                w.u8(2).u8(*level as u8).u32_le(*block_size);
            }
            Deflate::Klauspost {
                variant,
                level,
                block_size,
            } => {
                w.u8(4).u8(variant.id()).u8(*level as u8).u32_le(*block_size);
            }
            Deflate::Preflate { pieces } => {
                w.u8(3).varint(pieces.len() as u64);
                for p in pieces {
                    w.varint(p.plain_len).bytes(&p.corrections);
                }
            }
            Deflate::Replay { model, corrections } => {
                w.u8(5);
                model.encode(w);
                w.bytes(corrections);
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> DecodeResult<Deflate> {
        let tag = r.u8("deflate model tag")?;
        Deflate::decode_tagged(tag, r)
    }

    fn decode_tagged(tag: u8, r: &mut Reader<'_>) -> DecodeResult<Deflate> {
        Ok(match tag {
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
                Deflate::Klauspost {
                    variant: KpVariant::Kp1_15,
                    level,
                    block_size,
                }
            }
            4 => {
                let id = r.u8("klauspost flate variant")?;
                let variant = KpVariant::from_id(id).ok_or_else(|| {
                    DecodeError(format!(
                        "unknown klauspost flate variant {id} (written by a newer booster?)"
                    ))
                })?;
                let level = go_level(r.u8("klauspost flate level")?)?;
                let block_size = r.u32_le("pgzip block size")?;
                if block_size != 0 && block_size < 4096 {
                    return Err(DecodeError(format!("pgzip block size {block_size} too small")));
                }
                Deflate::Klauspost {
                    variant,
                    level,
                    block_size,
                }
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
            5 => {
                // One level only: the model is read by tag before any recursion.
                let model = match r.u8("near-miss model tag")? {
                    t @ (0 | 1 | 2 | 4) => Deflate::decode_tagged(t, r)?,
                    t => {
                        return Err(DecodeError(format!(
                            "a near-miss model must be an exact model, not deflate model {t}"
                        )));
                    }
                };
                Deflate::Replay {
                    model: Box::new(model),
                    corrections: r.bytes("near-miss corrections")?.to_vec(),
                }
            }
            t => return Err(DecodeError(format!("unknown deflate model {t}"))),
        })
    }
}

fn decode_lib_model(r: &mut Reader<'_>) -> DecodeResult<ZstdModel> {
    let level = unzigzag(r.varint("zstd level")?);
    // Analysis tries levels 1-19 only; the --ultra levels' windows (up to 128 MiB) are not
    // something a record may ask a rebuild to allocate.
    if !(-131072..=19).contains(&level) {
        return Err(DecodeError(format!("zstd level {level} out of range")));
    }
    Ok(ZstdModel::Lib {
        level: level as i32,
        pledged_size: r.u8("pledged flag")? != 0,
        checksum: r.u8("checksum flag")? != 0,
        workers: r.u8("workers")?,
    })
}

/// Skippable frame magic numbers: 0x184D2A50 to 0x184D2A5F.
const SKIPPABLE_MAGIC_BASE: u32 = 0x184D_2A50;

impl ZstdFrame {
    fn encode(&self, w: &mut Writer) {
        let kind = match self.model {
            ZstdModel::Lib { .. } => 0u8,
            ZstdModel::Klauspost { .. } => 1,
            ZstdModel::Verbatim { .. } => 2,
        };
        // The low nibble of a skippable magic, plus one; 0 when not wrapped.
        let wrap = self.skippable.map_or(0, |m| (m - SKIPPABLE_MAGIC_BASE) as u8 + 1);
        w.u8(kind | wrap << 4).varint(self.plain_len);
        match &self.model {
            ZstdModel::Lib {
                level,
                pledged_size,
                checksum,
                workers,
            } => {
                w.varint(zigzag(*level as i64))
                    .u8(*pledged_size as u8)
                    .u8(*checksum as u8)
                    .u8(*workers);
            }
            ZstdModel::Klauspost { speed, variant, cuts } => {
                w.u8(speed.id()).u8(variant.id()).varint(cuts.len() as u64);
                let mut prev = 0;
                for &c in cuts {
                    w.varint(c - prev);
                    prev = c;
                }
            }
            ZstdModel::Verbatim { bytes } => {
                w.bytes(bytes);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> DecodeResult<ZstdFrame> {
        let tag = r.u8("zstd frame kind")?;
        let skippable = match tag >> 4 {
            0 => None,
            n => Some(SKIPPABLE_MAGIC_BASE + n as u32 - 1),
        };
        let plain_len = r.varint("frame plain length")?;
        let model = match tag & 15 {
            0 => decode_lib_model(r)?,
            1 => {
                let id = r.u8("klauspost zstd speed")?;
                let speed = KzSpeed::from_id(id)
                    .ok_or_else(|| DecodeError(format!("unknown klauspost zstd speed {id}")))?;
                let id = r.u8("klauspost zstd variant")?;
                let variant = KzVariant::from_id(id).ok_or_else(|| {
                    DecodeError(format!(
                        "unknown klauspost zstd variant {id} (written by a newer booster?)"
                    ))
                })?;
                let n = r.count(1, "block cut count")?;
                let mut cuts = Vec::with_capacity(n);
                let mut at = 0u64;
                for _ in 0..n {
                    at = at
                        .checked_add(r.varint("block cut")?)
                        .filter(|&c| c <= plain_len)
                        .ok_or_else(|| DecodeError("block cut beyond the frame".into()))?;
                    cuts.push(at);
                }
                ZstdModel::Klauspost { speed, variant, cuts }
            }
            2 => {
                let bytes = r.bytes("verbatim frame")?;
                if bytes.len() > MAX_VERBATIM_FRAME || plain_len != 0 {
                    return Err(DecodeError("verbatim zstd frame too large or not empty".into()));
                }
                ZstdModel::Verbatim {
                    bytes: bytes.to_vec(),
                }
            }
            k => return Err(DecodeError(format!("unknown zstd frame kind {k}"))),
        };
        if skippable.is_some() && matches!(model, ZstdModel::Verbatim { .. }) {
            return Err(DecodeError("a verbatim frame cannot be wrapped".into()));
        }
        Ok(ZstdFrame {
            plain_len,
            model,
            skippable,
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
        for variant in KpVariant::ALL {
            for block_size in [0, 1 << 20] {
                round_trip(Method::Gzip {
                    members: vec![GzipMember {
                        header: vec![0x1f, 0x8b, 8, 0, 0, 0x09, 0x6e, 0x88, 0, 255],
                        plain_len: 77,
                        deflate: Deflate::Klauspost {
                            variant,
                            level: -1,
                            block_size,
                        },
                    }],
                    trailing: vec![],
                });
            }
        }
        round_trip(Method::Gzip {
            members: vec![GzipMember {
                header: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255],
                plain_len: 5,
                deflate: Deflate::Replay {
                    model: Box::new(Deflate::GoStd { level: 6 }),
                    corrections: vec![9, 8, 7],
                },
            }],
            trailing: vec![],
        });
        round_trip(Method::Zstd {
            frames: vec![ZstdFrame::lib(9, -5, true, false, 1)],
        });
        round_trip(Method::Zstd {
            frames: vec![
                ZstdFrame {
                    plain_len: 300_000,
                    model: ZstdModel::Klauspost {
                        speed: KzSpeed::Best,
                        variant: KzVariant::Kp1_15,
                        cuts: vec![8, 299_000],
                    },
                    skippable: None,
                },
                ZstdFrame {
                    plain_len: 3962,
                    model: ZstdModel::Klauspost {
                        speed: KzSpeed::Best,
                        variant: KzVariant::Kp1_15,
                        cuts: vec![],
                    },
                    skippable: Some(0x184D_2A50),
                },
                ZstdFrame {
                    plain_len: 0,
                    model: ZstdModel::Verbatim {
                        bytes: b"\x50\x2a\x4d\x18\x28\x00\x00\x00GnUlInUx".to_vec(),
                    },
                    skippable: None,
                },
            ],
        });
    }

    /// Records written before the variants existed (deflate model 2, pgzip) still read, and
    /// the same model is still written with those bytes.
    #[test]
    fn pgzip_records_of_the_first_format_read_and_write_unchanged() {
        let golden = [2u8, 0xff, 0x00, 0x00, 0x10, 0x00];
        let d = Deflate::decode(&mut Reader::new(&golden)).unwrap();
        assert_eq!(
            d,
            Deflate::Klauspost {
                variant: KpVariant::Kp1_15,
                level: -1,
                block_size: 1 << 20
            }
        );
        let mut w = Writer::new();
        d.encode(&mut w);
        assert_eq!(w.buf, golden);
        let go127 = [4u8, 3, 6, 0, 0, 0, 0];
        assert_eq!(
            Deflate::decode(&mut Reader::new(&go127)).unwrap().describe(),
            "go1.27 compress/gzip level 6"
        );
        let e = Deflate::decode(&mut Reader::new(&[4u8, 9, 6, 0, 0, 0, 0])).unwrap_err();
        assert!(e.0.contains("unknown klauspost flate variant 9"), "{}", e.0);
    }
}
