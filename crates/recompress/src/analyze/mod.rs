//! Analysis: find, for each gzip member or zstd frame of a blob, an encoder model that
//! reproduces it exactly, and prove it there and then.
//!
//! A candidate is proven by running it over the plain stream (`PlainText`) and
//! comparing every output byte with the original blob as it is produced; the first differing
//! byte rejects it, so a wrong candidate costs only the first block or so. A member no model
//! reproduces goes to preflate (with its own per-piece round-trip check); if that fails too,
//! the whole blob is carried as it is. Candidates are ordered by cheap signals from the
//! header (OS byte, XFL, the pgzip mtime fingerprint).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

mod prove;
mod zstd;

use crate::decode::{Format, Layout, Member};
use crate::error::{Error, IoContext, Result};
use crate::gzip::{self, HeaderInfo, OS_UNKNOWN, PGZIP_ZERO_MTIME};
use crate::method::{Deflate, GzipMember, KpVariant, Method, PreflatePiece};
use crate::models;
use prove::{open_range, read_range, try_member};

/// The plain text of the blob under analysis, read from wherever its owner keeps it (booster:
/// the chunk store). Candidates are proven by encoding it, so it is read once per candidate.
pub trait PlainText {
    /// A reader of the plain text from byte `offset` on.
    fn open_at(&self, offset: u64) -> io::Result<Box<dyn Read + '_>>;
}

/// preflate keeps positions in 32-bit signed integers: members beyond this are not given
/// to it (they are carried whole if no exact model matches).
const PREFLATE_MAX_PLAIN: u64 = 1536 << 20;
/// Plain text preflate decodes per piece: bounds its memory (about 350 MB peak measured at
/// 16 MiB, issue #4).
const PREFLATE_PIECE_PLAIN: usize = 16 << 20;
/// Compressed bytes handed to preflate per call.
const PREFLATE_WINDOW: usize = 4 << 20;

#[derive(Debug, Clone, Copy)]
pub struct AnalyzeOptions {
    pub use_preflate: bool,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions { use_preflate: true }
    }
}

/// Find the method that rebuilds the blob at `blob_path` (whose plain stream `text`
/// supplies). Never fails for want of a model: the last rung is `Method::Whole`, in
/// which case the caller must store the blob's own bytes.
pub fn analyze(
    text: &dyn PlainText,
    blob_path: &Path,
    layout: &Layout,
    opts: AnalyzeOptions,
) -> Result<Method> {
    match layout.format {
        Format::Plain => Ok(Method::Plain),
        Format::Gzip => analyze_gzip(text, blob_path, layout, opts),
        Format::Zstd => zstd::analyze_zstd(text, blob_path, layout),
    }
}

fn analyze_gzip(
    text: &dyn PlainText,
    blob_path: &Path,
    layout: &Layout,
    opts: AnalyzeOptions,
) -> Result<Method> {
    let mut members = Vec::with_capacity(layout.members.len());
    let mut plain_offset = 0u64;
    for (i, m) in layout.members.iter().enumerate() {
        let info = gzip::parse_header(&m.header).map_err(|_| {
            Error::format(
                blob_path.display().to_string(),
                format!("gzip member {i} has a bad header"),
            )
        })?;
        let mut found = None;
        // The candidate that got furthest before its first wrong byte: the closest model.
        let mut closest: Option<(Deflate, u64)> = None;
        for cand in deflate_candidates(&info, blob_path, m)? {
            let run = |plain: &mut dyn Read, len: u64, sink: &mut dyn Write| {
                crate::encode::encode_deflate(&cand, plain, len, sink, None)
            };
            match try_member(text, plain_offset, m, blob_path, &run)? {
                None => {
                    found = Some(cand);
                    break;
                }
                Some(matched) if closest.as_ref().is_none_or(|(_, best)| matched > *best) => {
                    closest = Some((cand, matched))
                }
                Some(_) => {}
            }
        }
        if found.is_none() && opts.use_preflate {
            found = nearest_rebuild(text, plain_offset, m, blob_path, closest.map(|c| c.0))?;
        }
        match found {
            Some(deflate) => members.push(GzipMember {
                header: m.header.clone(),
                plain_len: m.plain_len,
                deflate,
            }),
            None => {
                return Ok(Method::Whole {
                    reason: format!("encoder not recognised ({})", encoder_guess(&info)),
                });
            }
        }
        plain_offset += m.plain_len;
    }
    let trailing = read_range(blob_path, layout.trailing.start, layout.trailing.end)?;
    Ok(Method::Gzip { members, trailing })
}

/// What the header suggests made the stream, for messages.
pub fn encoder_guess(h: &HeaderInfo) -> &'static str {
    match (h.os, h.mtime) {
        (OS_UNKNOWN, PGZIP_ZERO_MTIME) => "klauspost/pgzip or klauspost/compress gzip",
        (OS_UNKNOWN, _) => "Go compress/gzip",
        (3, _) => "GNU gzip, pigz or zlib",
        _ => "unknown",
    }
}

/// klauspost's variants in the order they are tried, most deployed first: containers/image
/// pins 1.18.x. Where two versions write the same bytes (1.15 and 1.18 at most levels) the
/// first one tried names the stream. Go 1.27 is tried with the Go family.
const KLAUSPOST_VARIANTS: [KpVariant; 3] = [KpVariant::Kp1_18, KpVariant::Kp1_20, KpVariant::Kp1_15];

/// Candidate models, most likely first. Each costs about one window of encoding when it is
/// wrong (the first differing byte rejects it), so the list can be generous.
fn deflate_candidates(h: &HeaderInfo, blob_path: &Path, m: &Member) -> Result<Vec<Deflate>> {
    // Go and klauspost record only levels 1 and 9 in XFL.
    let go_levels: &[i8] = match h.xfl {
        2 => &[9],
        4 => &[1],
        _ => &[6, 5, 4, 3, 2, 7, 8, -2, 0],
    };
    let kp_levels: &[i8] = match h.xfl {
        2 => &[9],
        4 => &[1],
        _ => &[-1, 6, 4, 3, 2, 7, 8, -2, 0],
    };
    let zlib_levels: &[u8] = match h.xfl {
        2 => &[9],
        4 => &[1],
        _ => &[6, 5, 4, 3, 2, 7, 8, 0],
    };
    let go: Vec<Deflate> = go_levels.iter().map(|&level| Deflate::GoStd { level }).collect();
    // Go 1.27's default is level 6, which writes the same bytes: it is recorded as 6.
    let go127 = kp_levels
        .iter()
        .filter(|&&l| l != -1)
        .map(|&level| Deflate::Klauspost {
            variant: KpVariant::Go1_27,
            level,
            block_size: 0,
        });
    let zlib: Vec<Deflate> = zlib_levels
        .iter()
        .map(|&level| Deflate::Zlib { level, mem_level: 8 })
        .collect();
    let klauspost = |block_sizes: &[u32]| -> Vec<Deflate> {
        let mut v = Vec::new();
        for &block_size in block_sizes {
            for variant in KLAUSPOST_VARIANTS {
                for &level in kp_levels {
                    v.push(Deflate::Klauspost {
                        variant,
                        level,
                        block_size,
                    });
                }
            }
        }
        v
    };
    // pgzip ends every block with a sync marker; klauspost's own gzip writer is one stream.
    let kp_family = || -> Result<Vec<Deflate>> {
        let detected = detect_pgzip_block(blob_path, m)?;
        let mut blocks: Vec<u32> = detected.into_iter().collect();
        for b in [1 << 20, 256 << 10] {
            if !blocks.contains(&b) {
                blocks.push(b);
            }
        }
        Ok(if detected.is_some() {
            [klauspost(&blocks), klauspost(&[0])].concat()
        } else {
            [klauspost(&[0]), klauspost(&blocks)].concat()
        })
    };
    Ok(match (h.os, h.mtime) {
        (OS_UNKNOWN, PGZIP_ZERO_MTIME) => kp_family()?,
        (OS_UNKNOWN, _) => [go, go127.collect(), kp_family()?].concat(),
        _ => zlib,
    })
}

/// pgzip ends every block with a sync flush (`00 00 ff ff`): the plain length up to the
/// first one is the block size.
fn detect_pgzip_block(blob_path: &Path, m: &Member) -> Result<Option<u32>> {
    let head_len = (m.body.end - m.body.start).min(8 << 20);
    let head = read_range(blob_path, m.body.start, m.body.start + head_len)?;
    let Some(pos) = head.windows(4).position(|w| w == [0, 0, 0xff, 0xff]) else {
        return Ok(None);
    };
    let mut z = flate2::Decompress::new(false);
    let mut out = vec![0u8; 1 << 20];
    let input = &head[..pos + 4];
    while (z.total_in() as usize) < input.len() {
        let before = (z.total_in(), z.total_out());
        if z.decompress(
            &input[z.total_in() as usize..],
            &mut out,
            flate2::FlushDecompress::Sync,
        )
        .is_err()
            || (z.total_in(), z.total_out()) == before
        {
            return Ok(None);
        }
    }
    let n = z.total_out();
    Ok((n >= 4096 && n < m.plain_len && n <= u32::MAX as u64).then_some(n as u32))
}

/// No exact model: the closest model plus corrections (`replay`), or preflate, whichever
/// costs fewer bytes; None when neither beats carrying the member whole by a wide margin.
fn nearest_rebuild(
    text: &dyn PlainText,
    plain_offset: u64,
    m: &Member,
    blob_path: &Path,
    closest: Option<Deflate>,
) -> Result<Option<Deflate>> {
    let body_len = m.body.end - m.body.start;
    // Worth keeping only if well under the member's own size.
    let worth = body_len / 2;
    let near = match closest {
        Some(model) => near_miss(text, plain_offset, m, blob_path, model, worth)?,
        None => None,
    };
    let near_cost = near.as_ref().map(cost);
    // A near miss under 0.01 % of the member cannot be beaten by enough to pay for
    // preflate's slow analysis. Above that preflate often wins (GNU gzip -6 on 90 MB of
    // binaries: the zlib model's near miss costs 0.73 %, preflate about 0.1 %).
    if near_cost.is_some_and(|c| c * 10_000 < body_len) {
        return Ok(near);
    }
    let pre = if m.plain_len <= PREFLATE_MAX_PLAIN {
        preflate_member(blob_path, m)?
    } else {
        None
    };
    let best = match (near, pre) {
        (Some(n), Some(p)) => Some(if cost(&n) <= cost(&p) { n } else { p }),
        (n, p) => n.or(p),
    };
    Ok(best.filter(|d| cost(d) < worth))
}

/// Correction bytes a model carries.
fn cost(d: &Deflate) -> u64 {
    match d {
        Deflate::Preflate { pieces } => pieces.iter().map(|p| p.corrections.len() as u64).sum(),
        Deflate::Replay { corrections, .. } => corrections.len() as u64,
        _ => 0,
    }
}

/// The member as `model`'s output plus corrections, proven by rebuilding it; None when the
/// model is not near (the corrections would exceed `budget`, or a divergence runs too long).
fn near_miss(
    text: &dyn PlainText,
    plain_offset: u64,
    m: &Member,
    blob_path: &Path,
    model: Deflate,
    budget: u64,
) -> Result<Option<Deflate>> {
    let ctx = || format!("near-miss analysis of {}", blob_path.display());
    let mut spool = io::BufWriter::with_capacity(1 << 20, crate::encode::anonymous_spool().ctx(ctx)?);
    let mut plain = text.open_at(plain_offset).ctx(ctx)?;
    crate::encode::encode_deflate(&model, &mut plain, m.plain_len, &mut spool, None).ctx(ctx)?;
    let mut spool = spool.into_inner().map_err(|e| e.into_error()).ctx(ctx)?;
    spool.rewind().ctx(ctx)?;
    let original = open_range(blob_path, m.body.start, m.body.end)?.expected;
    let corrections = match crate::replay::diff(
        original,
        BufReader::with_capacity(1 << 20, &spool),
        (budget as usize).saturating_mul(2),
    ) {
        Ok(c) if (c.len() as u64) < budget => c,
        Ok(_) => return Ok(None),
        Err(why) => {
            tracing::debug!(blob = %blob_path.display(), model = %model.describe(), ?why, "not a near miss");
            return Ok(None);
        }
    };
    // Prove it: rebuild from the spooled model output and compare with the original.
    spool.rewind().ctx(ctx)?;
    let mut cmp = open_range(blob_path, m.body.start, m.body.end)?;
    let rebuilt = crate::replay::apply(BufReader::with_capacity(1 << 20, &spool), &corrections, &mut cmp);
    let mut rest = [0u8; 1];
    if rebuilt.is_err() || cmp.expected.read(&mut rest).ctx(ctx)? != 0 {
        tracing::warn!(blob = %blob_path.display(), "near-miss corrections did not rebuild the member");
        return Ok(None);
    }
    Ok(Some(Deflate::Replay {
        model: Box::new(model),
        corrections,
    }))
}

/// Members up to this plain size may be given to preflate whole when its piecewise mode
/// fails (preflate-rs 0.7.6 loses matches across piece boundaries on some streams; whole
/// mode measured 420 MB peak for 64 MB of plain text).
const PREFLATE_WHOLE_MAX_PLAIN: u64 = 64 << 20;

/// Run preflate over one member with its own round-trip verification: piece by piece
/// (bounded memory), else whole for small members.
fn preflate_member(blob_path: &Path, m: &Member) -> Result<Option<Deflate>> {
    let guarded = |f: &dyn Fn() -> Result<Option<Deflate>>| match crate::guard_preflate(f) {
        Some(r) => r,
        None => {
            tracing::warn!(blob = %blob_path.display(), "preflate panicked on this member");
            Ok(None)
        }
    };
    if let Some(d) = guarded(&|| preflate_member_pieces(blob_path, m))? {
        return Ok(Some(d));
    }
    if m.plain_len <= PREFLATE_WHOLE_MAX_PLAIN {
        return guarded(&|| preflate_member_whole(blob_path, m));
    }
    Ok(None)
}

fn preflate_member_whole(blob_path: &Path, m: &Member) -> Result<Option<Deflate>> {
    let body = read_range(blob_path, m.body.start, m.body.end)?;
    let config = preflate_rs::PreflateConfig {
        max_chain_length: 4096,
        plain_text_limit: PREFLATE_WHOLE_MAX_PLAIN as usize + 1,
        verify_compression: true,
    };
    match preflate_rs::preflate_whole_deflate_stream(&body, &config) {
        Ok((r, plain)) if r.compressed_size == body.len() && plain.text().len() as u64 == m.plain_len => {
            Ok(Some(Deflate::Preflate {
                pieces: vec![PreflatePiece {
                    plain_len: m.plain_len,
                    corrections: r.corrections,
                }],
            }))
        }
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::debug!(blob = %blob_path.display(), error = ?e, "preflate cannot model this member");
            Ok(None)
        }
    }
}

fn preflate_member_pieces(blob_path: &Path, m: &Member) -> Result<Option<Deflate>> {
    let config = preflate_rs::PreflateConfig {
        max_chain_length: 4096,
        plain_text_limit: PREFLATE_PIECE_PLAIN,
        verify_compression: true,
    };
    let mut f = File::open(blob_path).ctx(|| format!("opening {}", blob_path.display()))?;
    f.seek(SeekFrom::Start(m.body.start))
        .ctx(|| format!("seeking in {}", blob_path.display()))?;
    let body_len = m.body.end - m.body.start;
    let mut proc = preflate_rs::PreflateStreamProcessor::new(&config);
    let mut window: Vec<u8> = Vec::new();
    let mut read_so_far = 0u64;
    let mut pieces = Vec::new();
    let mut plain_total = 0u64;
    while !proc.is_done() {
        // Top the window up.
        if window.len() < PREFLATE_WINDOW && read_so_far < body_len {
            let want = (PREFLATE_WINDOW - window.len()).min((body_len - read_so_far) as usize);
            let start = window.len();
            window.resize(start + want, 0);
            f.read_exact(&mut window[start..])
                .ctx(|| format!("reading {}", blob_path.display()))?;
            read_so_far += want as u64;
        }
        match proc.decompress(&window) {
            Ok(r) => {
                let plain_len = proc.plain_text().len() as u64;
                plain_total += plain_len;
                pieces.push(PreflatePiece {
                    plain_len,
                    corrections: r.corrections,
                });
                window.drain(..r.compressed_size);
                proc.shrink_to_dictionary();
                if r.compressed_size == 0 && plain_len == 0 {
                    return Ok(None);
                }
            }
            Err(e) if e.exit_code() == preflate_rs::ExitCode::ShortRead && read_so_far < body_len => {
                // Needs more compressed input than the window holds: grow it.
                let want = PREFLATE_WINDOW.min((body_len - read_so_far) as usize);
                let start = window.len();
                window.resize(start + want, 0);
                f.read_exact(&mut window[start..])
                    .ctx(|| format!("reading {}", blob_path.display()))?;
                read_so_far += want as u64;
            }
            Err(e) => {
                tracing::debug!(blob = %blob_path.display(), error = ?e, "preflate cannot model this member");
                return Ok(None);
            }
        }
    }
    if plain_total != m.plain_len || !window.is_empty() || read_so_far != body_len {
        tracing::debug!(blob = %blob_path.display(), "preflate pieces do not cover the member exactly");
        return Ok(None);
    }
    Ok(Some(Deflate::Preflate { pieces }))
}

/// Models for a small gzip file held in memory (a `.gz` inside a layer): the method that
/// rebuilds it and its plain text, or None when no model reproduces it exactly (or it is not
/// gzip, or its plain text exceeds `max_plain`). Every member is proven by comparing the
/// model's output with the original bytes.
pub fn analyze_gzip_bytes(gz: &[u8], max_plain: u64) -> Option<(Method, Vec<u8>)> {
    let mut dec = crate::decode::GzipDecoder::new(gz);
    let mut plain = Vec::new();
    (&mut dec).take(max_plain + 1).read_to_end(&mut plain).ok()?;
    if plain.len() as u64 > max_plain {
        return None;
    }
    let layout = dec.layout();
    let mut members = Vec::with_capacity(layout.members.len());
    let mut at = 0usize;
    for m in &layout.members {
        let info = gzip::parse_header(&m.header).ok()?;
        let body = gz.get(m.body.start as usize..m.body.end as usize)?;
        let text = plain.get(at..at + m.plain_len as usize)?;
        let deflate = memory_candidates(&info)
            .into_iter()
            .find(|cand| encodes_to(cand, text, body))
            .or_else(|| preflate_bytes(body, text.len()))?;
        members.push(GzipMember {
            header: m.header.clone(),
            plain_len: m.plain_len,
            deflate,
        });
        at += m.plain_len as usize;
    }
    let trailing = gz
        .get(layout.trailing.start as usize..layout.trailing.end as usize)?
        .to_vec();
    Some((Method::Gzip { members, trailing }, plain))
}

fn memory_candidates(h: &HeaderInfo) -> Vec<Deflate> {
    let (zlib, go): (&[u8], &[i8]) = match h.xfl {
        2 => (&[9], &[9]),
        4 => (&[1], &[1]),
        _ => (&[6, 5, 4, 3, 2, 7, 8], &[6]),
    };
    let zlib = zlib.iter().map(|&level| Deflate::Zlib { level, mem_level: 8 });
    let go127 = go.iter().map(|&level| Deflate::Klauspost {
        variant: KpVariant::Go1_27,
        level,
        block_size: 0,
    });
    let go = go.iter().map(|&level| Deflate::GoStd { level });
    if h.os == OS_UNKNOWN {
        go.chain(go127).chain(zlib).collect()
    } else {
        zlib.chain(go).collect()
    }
}

fn encodes_to(model: &Deflate, text: &[u8], body: &[u8]) -> bool {
    let Some(mut enc) = models::deflate_encoder(model) else {
        return false;
    };
    let mut out = Vec::with_capacity(body.len() + 64);
    enc.write(text, &mut out).is_ok() && enc.finish(&mut out).is_ok() && out == body
}

fn preflate_bytes(body: &[u8], plain_len: usize) -> Option<Deflate> {
    let config = preflate_rs::PreflateConfig {
        max_chain_length: 4096,
        plain_text_limit: plain_len + 1,
        verify_compression: true,
    };
    let r = crate::guard_preflate(|| preflate_rs::preflate_whole_deflate_stream(body, &config))?;
    match r {
        Ok((r, p)) if r.compressed_size == body.len() && p.text().len() == plain_len => {
            Some(Deflate::Preflate {
                pieces: vec![PreflatePiece {
                    plain_len: plain_len as u64,
                    corrections: r.corrections,
                }],
            })
        }
        _ => None,
    }
}
