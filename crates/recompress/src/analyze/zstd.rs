//! zstd blobs: find, for each frame, the model that rebuilds it (klauspost/compress's
//! encoder for what Go tools write, libzstd for the zstd CLI), and keep skippable frames
//! (zstd:chunked's table of contents, tar-split data and footer).
//!
//! Candidates come from the frame header first: klauspost writes a streamed frame as
//! `28 b5 2f fd 04 WD` with a window that names the speed (and, for the two best speeds,
//! the version family), and small frames as one block with their content size. A wrong
//! candidate is rejected at its first differing byte, so it costs about one block; the
//! plain offsets where the writer cut a block short are read from the frame's blocks, so
//! frames written with `Flush` or `ReadFrom` (containers/image, containers/storage) need no
//! guessing.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::PlainText;
use super::prove::{read_range, try_member};
use crate::decode::{Layout, Member};
use crate::encode::{KzPool, pump_in_pieces};
use crate::error::{IoContext, Result};
use crate::kpzstd::{FrameEncoder, Speed, Variant};
use crate::method::{MAX_VERBATIM_FRAME, Method, ZstdFrame, ZstdModel};
use crate::models;

pub(super) fn analyze_zstd(text: &dyn PlainText, blob_path: &Path, layout: &Layout) -> Result<Method> {
    let mut frames = Vec::with_capacity(layout.members.len());
    let mut plain_offset = 0u64;
    let mut pool = KzPool::default();
    // Frames of one blob come from one writer: the model that matched last goes first.
    let mut last_kp: Option<(Speed, Variant)> = None;
    for m in &layout.members {
        if m.skippable.is_some() && m.header.is_empty() {
            // An opaque skippable frame (zstd:chunked's footer): kept as it is.
            let len = (m.body.end - m.body.start) as usize;
            if len > MAX_VERBATIM_FRAME {
                return Ok(Method::Whole {
                    reason: format!("zstd stream with a skippable frame of {len} bytes"),
                });
            }
            frames.push(ZstdFrame {
                plain_len: 0,
                model: ZstdModel::Verbatim {
                    bytes: read_range(blob_path, m.body.start, m.body.end)?,
                },
                skippable: None,
            });
            continue;
        }
        let head = read_range(blob_path, m.body.start, (m.body.start + 18).min(m.body.end))?;
        let mut found = klauspost_frame(text, plain_offset, m, blob_path, &head, &mut last_kp, &mut pool)?;
        if found.is_none() {
            found = libzstd_frame(text, plain_offset, m, blob_path, &head)?;
        }
        match found {
            Some(model) => frames.push(ZstdFrame {
                plain_len: m.plain_len,
                model,
                skippable: m.skippable,
            }),
            None => {
                tracing::debug!(
                    frame = frames.len(),
                    at = m.body.start,
                    plain_len = m.plain_len,
                    header = %hex::encode(&head),
                    "no zstd model reproduces this frame"
                );
                return Ok(Method::Whole {
                    reason: "encoder not recognised (zstd frame not reproduced by the klauspost/compress \
                             models nor by libzstd levels 1-19)"
                        .into(),
                });
            }
        }
        plain_offset += m.plain_len;
    }
    Ok(Method::Zstd { frames })
}

/// klauspost candidates for a frame header, most likely first.
fn klauspost_candidates(head: &[u8]) -> Vec<(Speed, Variant)> {
    let Some(&fhd) = head.get(4) else {
        return Vec::new();
    };
    // klauspost always writes a checksum and never a dictionary id here.
    if fhd & 0x04 == 0 || fhd & 0x03 != 0 {
        return Vec::new();
    }
    // Most deployed first: containers/image pins 1.18.x; bookworm tools have 1.15.12.
    let versions = [Variant::Kp1_18, Variant::Kp1_20, Variant::Kp1_15];
    let all = |speeds: &[Speed], versions: &[Variant]| -> Vec<(Speed, Variant)> {
        speeds
            .iter()
            .flat_map(|&s| versions.iter().map(move |&v| (s, v)))
            .collect()
    };
    // A streamed klauspost frame has no content size and a window that names the speed;
    // only its one-shot frames (input within one block) carry a content size.
    let streamed = fhd >> 6 == 0 && fhd & 0x20 == 0;
    match (streamed, head.get(5)) {
        (true, Some(0x60)) => all(&[Speed::Fastest], &versions),
        (true, Some(0x68)) => [
            all(&[Speed::Default], &versions),
            all(&[Speed::Better, Speed::Best], &[Variant::Kp1_18, Variant::Kp1_20]),
        ]
        .concat(),
        (true, Some(0x70)) => all(&[Speed::Better], &[Variant::Kp1_15]),
        (true, Some(0x78)) => all(&[Speed::Best], &[Variant::Kp1_15]),
        // A streamed frame with another window: not klauspost's (the zstd CLI's, say) —
        // unless the window is the 1 KiB minimum: klauspost's one-shot frame for under 256
        // bytes, whose size it cannot write without the single-segment flag.
        (true, Some(&wd)) if wd != 0 => Vec::new(),
        // One block with its content size (or too small to have one): any speed.
        _ => all(
            &[Speed::Default, Speed::Best, Speed::Fastest, Speed::Better],
            &versions,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn klauspost_frame(
    text: &dyn PlainText,
    plain_offset: u64,
    m: &Member,
    blob_path: &Path,
    head: &[u8],
    last: &mut Option<(Speed, Variant)>,
    pool: &mut KzPool,
) -> Result<Option<ZstdModel>> {
    let mut candidates = klauspost_candidates(head);
    if candidates.is_empty() {
        return Ok(None);
    }
    if let Some(l) = *last
        && let Some(i) = candidates.iter().position(|c| *c == l)
    {
        let c = candidates.remove(i);
        candidates.insert(0, c);
    }
    let blocks = block_sizes(blob_path, m)?;
    for (speed, variant) in candidates {
        let cuts = cuts_for(&blocks, FrameEncoder::block_size(speed) as u64);
        let enc = std::cell::RefCell::new(pool.get(speed, variant, &cuts));
        let run = |plain: &mut dyn Read, len: u64, sink: &mut dyn Write| {
            let mut e = enc.borrow_mut();
            pump_in_pieces(
                &mut models::Infallible(&mut **e),
                plain,
                len,
                sink,
                None,
                TRIAL_PIECE,
            )
        };
        let matched = try_member(text, plain_offset, m, blob_path, &run)?;
        if matched.is_none() {
            *last = Some((speed, variant));
            return Ok(Some(ZstdModel::Klauspost { speed, variant, cuts }));
        }
    }
    Ok(None)
}

/// A pooled klauspost encoder behind the model interface.
impl models::PlainEncoder for &mut FrameEncoder {
    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        FrameEncoder::write(self, input, out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        FrameEncoder::finish(self, out)
    }
}

/// Where the writer cut blocks short: after every block but the last that holds less
/// than a full block.
fn cuts_for(blocks: &[(u64, bool)], block_size: u64) -> Vec<u64> {
    let mut cuts = Vec::new();
    let mut pos = 0;
    for &(regen, last) in blocks {
        pos += regen;
        if !last && regen < block_size {
            cuts.push(pos);
        }
    }
    cuts
}

/// Each block's regenerated size and last flag, by feeding the frame to libzstd one block
/// at a time (it hands out a block's content as soon as the block is complete).
fn block_sizes(blob_path: &Path, m: &Member) -> Result<Vec<(u64, bool)>> {
    use zstd::zstd_safe::{DCtx, InBuffer, OutBuffer};
    let ctx = || format!("reading the blocks of {}", blob_path.display());
    let mut f = File::open(blob_path).ctx(ctx)?;
    f.seek(SeekFrom::Start(m.body.start)).ctx(ctx)?;
    let mut r = BufReader::with_capacity(1 << 20, f.take(m.body.end - m.body.start));
    let mut head = [0u8; 18];
    let hl = {
        r.read_exact(&mut head[..6]).ctx(ctx)?;
        frame_header_len(&head).unwrap_or(18)
    };
    r.read_exact(&mut head[6..hl]).ctx(ctx)?;
    let mut dctx = DCtx::create();
    dctx.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(31))
        .map_err(|c| io::Error::other(zstd::zstd_safe::get_error_name(c)))
        .ctx(ctx)?;
    let mut out = vec![0u8; 1 << 18];
    let cap = out.len();
    let mut feed = |dctx: &mut DCtx, bytes: &[u8]| -> io::Result<u64> {
        let mut inb = InBuffer::around(bytes);
        let mut produced = 0u64;
        loop {
            let mut outb = OutBuffer::around(&mut out[..]);
            dctx.decompress_stream(&mut outb, &mut inb)
                .map_err(|c| io::Error::other(zstd::zstd_safe::get_error_name(c)))?;
            let n = outb.pos();
            produced += n as u64;
            if inb.pos() == bytes.len() && n < cap {
                return Ok(produced);
            }
        }
    };
    feed(&mut dctx, &head[..hl]).ctx(ctx)?;
    let mut blocks = Vec::new();
    let mut buf = Vec::with_capacity(1 << 17);
    loop {
        let mut bh = [0u8; 3];
        r.read_exact(&mut bh).ctx(ctx)?;
        let h = u32::from_le_bytes([bh[0], bh[1], bh[2], 0]);
        let last = h & 1 == 1;
        let kind = (h >> 1) & 3;
        let size = (h >> 3) as usize;
        let body = if kind == 1 { 1 } else { size };
        buf.clear();
        buf.extend_from_slice(&bh);
        buf.resize(3 + body, 0);
        r.read_exact(&mut buf[3..]).ctx(ctx)?;
        let regen = feed(&mut dctx, &buf).ctx(ctx)?;
        blocks.push((regen, last));
        if last {
            return Ok(blocks);
        }
    }
}

/// libzstd's levels, as the zstd CLI writes them.
fn libzstd_frame(
    text: &dyn PlainText,
    plain_offset: u64,
    m: &Member,
    blob_path: &Path,
    head: &[u8],
) -> Result<Option<ZstdModel>> {
    let Some((pledged, checksum)) = frame_flags(head) else {
        return Ok(None);
    };
    // Single-threaded libzstd first: its first output comes after one block, so a wrong
    // level costs one block. The multi-threaded layout (the zstd CLI's default) emits
    // nothing until a whole job (up to 32 MiB) is done, but its first block is the
    // single-threaded one: it is only tried at levels whose single-threaded run got the
    // frame header and some of the first block right.
    let header_len = frame_header_len(head).unwrap_or(18) as u64;
    let mut promising = Vec::new();
    for workers in [0u8, 1] {
        let levels: Vec<i32> = if workers == 0 {
            ZSTD_LEVELS.to_vec()
        } else {
            std::mem::take(&mut promising)
        };
        for level in levels {
            let frame = ZstdFrame::lib(m.plain_len, level, pledged, checksum, workers);
            let run = |plain: &mut dyn Read, len: u64, sink: &mut dyn Write| {
                let mut enc = models::ZstdEncoder::new(&frame)?;
                pump_in_pieces(&mut enc, plain, len, sink, None, TRIAL_PIECE)
            };
            match try_member(text, plain_offset, m, blob_path, &run)? {
                None => return Ok(Some(frame.model)),
                Some(matched) if workers == 0 && matched > header_len + BLOCK_HEADER => promising.push(level),
                Some(_) => {}
            }
        }
    }
    Ok(None)
}

const ZSTD_LEVELS: [i32; 19] = [3, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
/// Plain bytes a trial encoder is fed at a time: one full zstd block.
const TRIAL_PIECE: usize = 128 << 10;
/// A zstd block header: 3 bytes.
const BLOCK_HEADER: u64 = 3;

/// Length of a zstd frame header (magic included) from its first bytes.
fn frame_header_len(head: &[u8]) -> Option<usize> {
    let fhd = *head.get(4)?;
    let single_segment = fhd & 0x20 != 0;
    let fcs_len = match fhd >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let dict_len = [0, 1, 2, 4][(fhd & 3) as usize];
    Some(4 + 1 + usize::from(!single_segment) + dict_len + fcs_len)
}

/// (content size present, checksum present) from a zstd frame header.
fn frame_flags(head: &[u8]) -> Option<(bool, bool)> {
    if head.len() < 5 || head[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return None;
    }
    let fhd = head[4];
    let fcs_flag = fhd >> 6;
    let single_segment = fhd & 0x20 != 0;
    let checksum = fhd & 0x04 != 0;
    // With the single-segment flag, a content size is always present.
    let pledged = fcs_flag != 0 || single_segment;
    Some((pledged, checksum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_blocks_cut_short() {
        let b = 128 << 10;
        // Write(8) + ReadFrom(rest): a raw 8-byte block first.
        assert_eq!(cuts_for(&[(8, false), (b, false), (500, true)], b), vec![8]);
        // Write + Flush + Close: the data ends a block early, then an empty last block.
        assert_eq!(cuts_for(&[(b, false), (700, false), (0, true)], b), vec![b + 700]);
        // Plain Write + Close.
        assert!(cuts_for(&[(b, false), (b, false), (9, true)], b).is_empty());
    }

    #[test]
    fn headers_name_their_candidates() {
        let c = klauspost_candidates(&[0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x78]);
        assert_eq!(c, vec![(Speed::Best, Variant::Kp1_15)]);
        let c = klauspost_candidates(&[0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x68]);
        assert_eq!(c[0], (Speed::Default, Variant::Kp1_18));
        // libzstd's library default writes no checksum: not klauspost.
        assert!(klauspost_candidates(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58]).is_empty());
        // The zstd CLI from a pipe: a checksum, no content size, a 2 MiB window.
        assert!(klauspost_candidates(&[0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58]).is_empty());
        // klauspost's one-shot frame of under 256 bytes: no size, the smallest window.
        assert_eq!(
            klauspost_candidates(&[0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x00]).len(),
            12
        );
    }
}
