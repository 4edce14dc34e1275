// A Rust port of the zstd encoder of klauspost/compress (1.15.12, 1.18.0 and 1.20.3), the
// one every Go container tool writes zstd layers with (containers/image for skopeo, podman
// and buildah; containers/storage for zstd:chunked; BuildKit; containerd). The files of
// this module follow the Go design closely, file by file.
//
// Copyright 2019+ Klaus Post. All rights reserved.
// Based on work by Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! Bit-exact klauspost/compress zstd frames, so booster can rebuild zstd layers written by
//! Go tools from their decompressed tar.
//!
//! Owns: the encoder only (frame, blocks, entropy coding, match finders). No decoder.
//!
//! A frame's bytes depend on the speed, the version (`Variant`), the plain bytes, and where
//! the writer cut blocks short: `Write` fills blocks of the block size (128 KiB, 64 KiB
//! for the fastest speed), while `Flush` and the start of `ReadFrom` end the block being
//! filled. [`FrameEncoder`] takes those cut points; a frame written by `Write` + `Close`
//! has none. A writer's goroutines never change the bytes (the block after a goroutine
//! handover starts from the same entropy state), so the model is single-threaded.

mod base;
mod best;
mod better;
mod bits;
mod block;
mod dfast;
mod fast;
mod fse;
mod gomath;
mod huff0;

use base::MAX_COMPRESSED_BLOCK_SIZE;
use best::{Best15Encoder, BestEncoder};
use better::{BetterEncoder, BetterRules};
use block::{BlockEnc, BlockRules};
use dfast::DoubleFastEncoder;
use fast::FastEncoder;
use xxhash_rust::xxh64::Xxh64;

/// klauspost's `EncoderLevel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Speed {
    Fastest,
    Default,
    Better,
    Best,
}

impl Speed {
    pub const ALL: [Speed; 4] = [Speed::Fastest, Speed::Default, Speed::Better, Speed::Best];

    /// `EncoderLevelFromZstd`: how podman's and skopeo's `--compression-level` map.
    pub fn from_zstd_level(level: i32) -> Speed {
        match level {
            ..3 => Speed::Fastest,
            3..6 => Speed::Default,
            6..10 => Speed::Better,
            _ => Speed::Best,
        }
    }

    pub fn id(self) -> u8 {
        self as u8
    }

    pub fn from_id(id: u8) -> Option<Speed> {
        Speed::ALL.into_iter().find(|s| s.id() == id)
    }

    pub fn name(self) -> &'static str {
        match self {
            Speed::Fastest => "fastest",
            Speed::Default => "default",
            Speed::Better => "better",
            Speed::Best => "best",
        }
    }
}

crate::versions::versions! {
    /// The version of klauspost/compress's zstd encoder. The order is the order of history.
    pub struct Variant;
    versions {
        /// 1.15.12 (Debian bookworm; up to 1.16.3 for the fastest and default speeds).
        Kp1_15 = 0,
        /// 1.18.0 (1.17.8 to 1.18.4).
        Kp1_18 = 1,
        /// 1.20.3.
        Kp1_20 = 2,
    }
    behaviour Behaviour {
        /// The block encoder's choices (`BlockRules`): how much a compressed block must
        /// save (as a shift), above which literal count huff0 uses 1 stream, the near-raw
        /// check, RLE blocks, and 1.20's `chooseComp`.
        saved_shift: u32,
        huff_1x_above: usize,
        near_raw_check: bool,
        rle_blocks: bool,
        choose_comp_v2: bool,
        /// A stream closed with nothing written is a frame (from 1.18.5: `fullZero`).
        full_zero: bool,
        /// 1.15's windows (16 MiB better, 32 MiB best), entropy-coded literals from the
        /// default speed on, its own best-speed search, a full literal-only block stored
        /// raw, and the better speed without the RLE shortcut nor indexing from the search.
        v1_15: bool,
    }
    // name              saved 1x  nearraw rle    compv2 zero   1.15
    rows [
        ("klauspost 1.15", 5, 32, false, false, false, false, true),
        ("klauspost 1.18", 6, 16, true,  true,  false, false, false),
        ("klauspost 1.20", 6, 16, true,  true,  true,  true,  false),
    ]
}

impl Variant {
    fn block_rules(self) -> BlockRules {
        let b = self.behaviour();
        BlockRules {
            saved_shift: b.saved_shift,
            huff_1x_above: b.huff_1x_above,
            near_raw_check: b.near_raw_check,
            rle_blocks: b.rle_blocks,
            choose_comp_v2: b.choose_comp_v2,
        }
    }

    /// Whether a stream closed with nothing written is a frame (from 1.18.5: `fullZero`).
    fn full_zero(self) -> bool {
        self.behaviour().full_zero
    }

    /// 1.15.12's rules where later versions changed them (see `Behaviour::v1_15`).
    fn is_v1_15(self) -> bool {
        self.behaviour().v1_15
    }
}

/// The encoder options a speed implies in a version (`WithEncoderLevel`, or the
/// defaults of `NewWriter`, which equal SpeedDefault's).
#[derive(Clone, Copy, Debug)]
struct Options {
    window: i32,
    block_size: usize,
    all_lit_entropy: bool,
}

fn options(speed: Speed, variant: Variant) -> Options {
    let old = variant.is_v1_15();
    let window = match speed {
        Speed::Fastest => 4 << 20,
        Speed::Default => 8 << 20,
        Speed::Better if old => 16 << 20,
        Speed::Best if old => 32 << 20,
        _ => 8 << 20,
    };
    Options {
        window,
        block_size: if speed == Speed::Fastest {
            1 << 16
        } else {
            MAX_COMPRESSED_BLOCK_SIZE
        },
        all_lit_entropy: if old {
            speed > Speed::Fastest
        } else {
            speed > Speed::Default
        },
    }
}

enum Finder {
    Fast(Box<FastEncoder>),
    DFast(Box<DoubleFastEncoder>),
    Better(Box<BetterEncoder>),
    Best(Box<BestEncoder>),
    /// 1.15.12's best speed, a search of its own.
    Best15(Box<Best15Encoder>),
}

impl Finder {
    fn new(speed: Speed, variant: Variant, window: i32) -> Finder {
        let old = variant.is_v1_15();
        match speed {
            Speed::Fastest => Finder::Fast(Box::new(FastEncoder::new(window))),
            Speed::Default => Finder::DFast(Box::new(DoubleFastEncoder::new(window))),
            Speed::Better => Finder::Better(Box::new(BetterEncoder::new(
                window,
                BetterRules {
                    rle_shortcut: !old,
                    index_from_search: !old,
                },
            ))),
            Speed::Best if old => Finder::Best15(Box::new(Best15Encoder::new(window))),
            Speed::Best => Finder::Best(Box::new(BestEncoder::new(window))),
        }
    }

    fn base(&mut self) -> &mut base::FastBase {
        match self {
            Finder::Fast(e) => &mut e.base,
            Finder::DFast(e) => &mut e.base,
            Finder::Better(e) => &mut e.base,
            Finder::Best(e) => &mut e.base,
            Finder::Best15(e) => &mut e.base,
        }
    }

    fn encode(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        match self {
            Finder::Fast(e) => e.encode(blk, src),
            Finder::DFast(e) => e.encode(blk, src),
            Finder::Better(e) => e.encode(blk, src),
            Finder::Best(e) => e.encode(blk, src),
            Finder::Best15(e) => e.encode(blk, src),
        }
    }

    fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        match self {
            Finder::Fast(e) => e.encode_no_hist(blk, src),
            Finder::DFast(e) => e.encode_no_hist(blk, src),
            Finder::Better(e) => e.encode_no_hist(blk, src),
            Finder::Best(e) => e.encode_no_hist(blk, src),
            Finder::Best15(e) => e.encode_no_hist(blk, src),
        }
    }
}

const FRAME_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// `frameHeader.appendTo` (no dictionary).
fn frame_header(
    out: &mut Vec<u8>,
    content_size: u64,
    window_size: u32,
    single_segment: bool,
    checksum: bool,
) {
    out.extend_from_slice(&FRAME_MAGIC);
    let mut fhd = 0u8;
    if checksum {
        fhd |= 1 << 2;
    }
    if single_segment {
        fhd |= 1 << 5;
    }
    let fcs = (content_size >= 256) as u8
        + (content_size >= 65536 + 256) as u8
        + (content_size >= 0xffff_ffff) as u8;
    fhd |= fcs << 6;
    out.push(fhd);
    if !single_segment {
        let window_log = (32 - (window_size - 1).leading_zeros()) as i32 - 10;
        out.push((window_log << 3) as u8);
    }
    match fcs {
        0 => {
            if single_segment {
                out.push(content_size as u8);
            }
        }
        1 => out.extend_from_slice(&((content_size - 256) as u16).to_le_bytes()),
        2 => out.extend_from_slice(&(content_size as u32).to_le_bytes()),
        _ => out.extend_from_slice(&content_size.to_le_bytes()),
    }
}

/// One klauspost zstd frame, as an `Encoder` with the given speed and version writes it
/// when its input is cut at `cuts` (plain offsets where the writer called `Flush`, or
/// where a `ReadFrom` started, with data buffered).
pub struct FrameEncoder {
    finder: Finder,
    blk: BlockEnc,
    opts: Options,
    variant: Variant,
    crc: Xxh64,
    filling: Vec<u8>,
    header_written: bool,
    /// Plain bytes taken so far.
    pos: u64,
    cuts: Vec<u64>,
    next_cut: usize,
}

impl FrameEncoder {
    pub fn new(speed: Speed, variant: Variant, cuts: &[u64]) -> FrameEncoder {
        let opts = options(speed, variant);
        let mut blk = BlockEnc::new(variant.block_rules());
        blk.init_new_encode();
        let mut finder = Finder::new(speed, variant, opts.window);
        // `NewWriter` resets its encoder once: `cur` starts a window in, so the zeroed
        // tables hold nothing within reach.
        finder.base().reset();
        FrameEncoder {
            finder,
            blk,
            opts,
            variant,
            crc: Xxh64::new(0),
            filling: Vec::with_capacity(opts.block_size),
            header_written: false,
            pos: 0,
            cuts: cuts.to_vec(),
            next_cut: 0,
        }
    }

    /// The block size of this speed (a writer fills blocks of this many plain bytes).
    pub fn block_size(speed: Speed) -> usize {
        options(speed, Variant::Kp1_18).block_size
    }

    /// Starts another frame with the same encoder (`Encoder.Reset`): nothing of the last
    /// frame can be referenced, as with a new encoder.
    pub fn reset(&mut self, cuts: &[u64]) {
        self.finder.base().reset();
        self.blk.reset();
        self.blk.init_new_encode();
        self.crc = Xxh64::new(0);
        self.filling.clear();
        self.header_written = false;
        self.pos = 0;
        self.cuts.clear();
        self.cuts.extend_from_slice(cuts);
        self.next_cut = 0;
    }

    /// Compresses `input`, appending the bytes completed so far to `out`.
    pub fn write(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            self.cut_if_due(out);
            let mut take = (self.opts.block_size - self.filling.len()).min(input.len());
            if let Some(&c) = self.cuts.get(self.next_cut) {
                take = take.min((c - self.pos) as usize);
            }
            let (piece, rest) = input.split_at(take);
            self.crc.update(piece);
            self.filling.extend_from_slice(piece);
            self.pos += take as u64;
            input = rest;
            if self.filling.len() == self.opts.block_size {
                self.next_block(false, out);
            }
        }
        self.cut_if_due(out);
    }

    /// A cut at the current position: the block being filled ends here.
    fn cut_if_due(&mut self, out: &mut Vec<u8>) {
        while self.cuts.get(self.next_cut) == Some(&self.pos) {
            self.next_cut += 1;
            if !self.filling.is_empty() {
                self.next_block(false, out);
            }
        }
    }

    /// `Close`: the last block and the checksum.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.cut_if_due(out);
        if !self.header_written {
            if self.filling.is_empty() && !self.variant.full_zero() {
                // Nothing written: no frame at all.
                self.header_written = true;
                return;
            }
            if !self.filling.is_empty() {
                self.encode_all(out);
                return;
            }
        }
        self.next_block(true, out);
        out.extend_from_slice(&(self.crc.digest() as u32).to_le_bytes());
    }

    /// `nextBlock`: the frame header first, then the filled block.
    fn next_block(&mut self, last: bool, out: &mut Vec<u8>) {
        if !self.header_written {
            let window = self.finder.base().window_size(0) as u32;
            frame_header(out, 0, window, false, true);
            self.header_written = true;
        }
        if self.filling.is_empty() {
            if last {
                // An empty raw last block.
                out.extend_from_slice(&[1, 0, 0]);
            }
            return;
        }
        self.blk.reset();
        self.finder.encode(&mut self.blk, &self.filling);
        self.blk.last = last;
        self.encode_block(out);
        self.filling.clear();
    }

    /// The block encoder over `filling`, with 1.15's rule that a full block of literals
    /// only is stored as it is.
    fn encode_block(&mut self, out: &mut Vec<u8>) {
        let src = &self.filling;
        if self.variant.is_v1_15()
            && src.len() == self.blk.literals.len()
            && src.len() == self.opts.block_size
        {
            self.blk.encode_raw(src);
        } else {
            self.blk.encode(src, false, !self.opts.all_lit_entropy);
        }
        out.extend_from_slice(&self.blk.output);
    }

    /// `encodeAll` for a stream closed before its first block was written: one frame of
    /// one block, with its content size.
    fn encode_all(&mut self, out: &mut Vec<u8>) {
        let len = self.filling.len();
        let single = len <= self.opts.window as usize && len > 1024;
        let window = self.finder.base().window_size(len as i64) as u32;
        frame_header(out, len as u64, window, single, true);
        // `Reset(dict, singleBlock)` again: cur moves on, the block starts afresh.
        self.finder.base().reset();
        self.blk.reset();
        self.blk.init_new_encode();
        self.blk.last = true;
        self.finder.encode_no_hist(&mut self.blk, &self.filling);
        self.encode_block(out);
        self.header_written = true;
        out.extend_from_slice(&(self.crc.digest() as u32).to_le_bytes());
        self.filling.clear();
    }
}
