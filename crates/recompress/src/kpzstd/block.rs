// Port of klauspost/compress zstd/blockenc.go and zstd/seqenc.go (1.18.0, with the
// behaviours of 1.15.12 and 1.20.3 switched by `BlockRules`); it follows the Go design
// closely.
//
// Copyright 2019+ Klaus Post. All rights reserved.
// Based on work by Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! The block encoder: a block's literals and sequences (from a match finder) to a raw, RLE
//! or compressed zstd block, with the entropy state (Huffman table, FSE tables) carried to
//! the next block of the frame.

use super::base::{MAX_MATCH_LENGTH, ZSTD_MIN_MATCH};
use super::bits::{BIT_MASK32, BitWriter};
use super::fse::{CState, FseEncoder, LL_BITS, ML_BITS, Table, high_bit, predefined};
use super::huff0::{HuffError, HuffScratch, Reuse};

/// One sequence: literals, then a match. `match_len` is stored minus 3, `offset` as zstd
/// codes it (distance + 3, or 1..3 for a repeat).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Seq {
    pub lit_len: u32,
    pub match_len: u32,
    pub offset: u32,
    ll_code: u8,
    ml_code: u8,
    of_code: u8,
}

impl Seq {
    pub fn new(lit_len: u32, match_len: u32, offset: u32) -> Seq {
        Seq {
            lit_len,
            match_len,
            offset,
            ..Seq::default()
        }
    }
}

/// Block-encoder behaviours that changed between klauspost versions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockRules {
    /// A block that saves less than `size >> saved_shift` + 16 bytes is sent as literals
    /// (1.15: 5, later: 6).
    pub saved_shift: u32,
    /// One Huffman stream from this many literals + 1 (1.15: 32, later: 16).
    pub huff_1x_above: usize,
    /// Literals barely smaller than raw are sent raw (1.17+).
    pub near_raw_check: bool,
    /// A block of one offset-1 match is an RLE block (1.17.8+).
    pub rle_blocks: bool,
    /// The FSE mode choice of 1.20 (exact header size against the previous table, and
    /// each stream's final state counted).
    pub choose_comp_v2: bool,
}

const MAX_COMPRESSED_BLOCK_SIZE: usize = 128 << 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    Cur,
    Prev,
    Predefined,
}

/// One table kind's encoders: the one being built and the previous block's.
struct Coders {
    cur: Box<FseEncoder>,
    prev: Box<FseEncoder>,
}

impl Coders {
    fn new() -> Coders {
        Coders {
            cur: Box::new(FseEncoder::new()),
            prev: Box::new(FseEncoder::new()),
        }
    }

    /// `seqCoders.setPrev` for one table: the table used becomes the previous one.
    fn set_prev(&mut self, used: Option<Pick>) {
        match used {
            Some(Pick::Cur) => {
                std::mem::swap(&mut self.cur, &mut self.prev);
                self.cur.re_used = false;
                self.prev.re_used = true;
            }
            Some(Pick::Prev) => {}
            // The predefined table (or a fresh frame): the previous one must not be reused.
            Some(Pick::Predefined) | None => self.prev.symbol_len = 0,
        }
    }
}

pub(crate) struct BlockEnc {
    pub size: usize,
    pub literals: Vec<u8>,
    pub sequences: Vec<Seq>,
    ll: Coders,
    of: Coders,
    ml: Coders,
    pub lit_enc: HuffScratch,
    pub extra_lits: usize,
    pub output: Vec<u8>,
    pub recent_offsets: [u32; 3],
    pub prev_recent_offsets: [u32; 3],
    pub last: bool,
    rules: BlockRules,
}

fn block_header(last: bool, kind: u32, size: u32) -> [u8; 3] {
    let h = (last as u32) | kind << 1 | size << 3;
    [h as u8, (h >> 8) as u8, (h >> 16) as u8]
}

const BLOCK_RAW: u32 = 0;
const BLOCK_RLE: u32 = 1;
const BLOCK_COMPRESSED: u32 = 2;

const LIT_RAW: u64 = 0;
const LIT_RLE: u64 = 1;
const LIT_COMPRESSED: u64 = 2;
const LIT_TREELESS: u64 = 3;

/// `literalsHeader`: the header value with its byte count in the top 4 bits.
#[derive(Clone, Copy, Default)]
struct LitHeader(u64);

impl LitHeader {
    fn set_type(&mut self, t: u64) {
        self.0 = (self.0 & (u64::MAX - 3)) | t;
    }

    fn set_size(&mut self, regen: usize) {
        let in_bits = 32 - (regen as u32).leading_zeros();
        let mut lh = self.0 & 3;
        let r = regen as u64;
        match in_bits {
            0..=4 => lh |= (r << 3) | (1 << 60),
            5..=11 => lh |= (1 << 2) | (r << 4) | (2 << 60),
            12..=19 => lh |= (3 << 2) | (r << 4) | (3 << 60),
            _ => unreachable!("literals longer than a block"),
        }
        self.0 = lh;
    }

    fn set_sizes(&mut self, comp: usize, input: usize, single: bool) {
        let comp_bits = 32 - (comp as u32).leading_zeros();
        let in_bits = 32 - (input as u32).leading_zeros();
        let mut lh = self.0 & 3;
        let (c, i) = (comp as u64, input as u64);
        if comp_bits <= 10 && in_bits <= 10 {
            if !single {
                lh |= 1 << 2;
            }
            lh |= (i << 4) | (c << (10 + 4)) | (3 << 60);
        } else if comp_bits <= 14 && in_bits <= 14 {
            lh |= (2 << 2) | (i << 4) | (c << (14 + 4)) | (4 << 60);
        } else {
            lh |= (3 << 2) | (i << 4) | (c << (18 + 4)) | (5 << 60);
        }
        self.0 = lh;
    }

    fn size(self) -> usize {
        (self.0 >> 60) as usize
    }

    fn append_to(self, out: &mut Vec<u8>) {
        let n = self.size();
        out.extend_from_slice(&self.0.to_le_bytes()[..n]);
    }
}

const LL_CODE_TABLE: [u8; 64] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 20, 20, 21,
    21, 21, 21, 22, 22, 22, 22, 22, 22, 22, 22, 23, 23, 23, 23, 23, 23, 23, 23, 24, 24, 24, 24, 24, 24, 24,
    24, 24, 24, 24, 24, 24, 24, 24, 24,
];

const ML_CODE_TABLE: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = match i {
            0..=31 => i as u8,
            32..=33 => 32,
            34..=35 => 33,
            36..=37 => 34,
            38..=39 => 35,
            40..=43 => 36,
            44..=47 => 37,
            48..=55 => 38,
            56..=63 => 39,
            64..=79 => 40,
            80..=95 => 41,
            _ => 42,
        };
        i += 1;
    }
    t
};

fn ll_code(lit_len: u32) -> u8 {
    if lit_len <= 63 {
        return LL_CODE_TABLE[(lit_len & 63) as usize];
    }
    high_bit(lit_len) as u8 + 19
}

pub(crate) fn ml_code(ml_base: u32) -> u8 {
    if ml_base <= 127 {
        return ML_CODE_TABLE[(ml_base & 127) as usize];
    }
    high_bit(ml_base) as u8 + 36
}

pub(crate) fn of_code(offset: u32) -> u8 {
    (32 - offset.leading_zeros()).wrapping_sub(1) as u8
}

/// How far a match of `l` bytes at `s` from `t` extends backwards over bytes equal on both
/// sides: `s` stays above `s_floor` and `t` above `t_min`, and `l` under `cap`. Returns the
/// extended match.
#[inline(always)]
pub fn extend_back(
    src: &[u8],
    s_floor: i32,
    t_min: i32,
    (mut s, mut t, mut l): (i32, i32, i64),
    cap: i64,
) -> (i32, i32, i64) {
    while t > t_min && s > s_floor && src[(t - 1) as usize] == src[(s - 1) as usize] && l < cap {
        s -= 1;
        t -= 1;
        l += 1;
    }
    (s, t, l)
}

/// What every speed's match finder does with a block: the literals and sequences it finds
/// go here, in the same steps for all of them.
impl BlockEnc {
    /// A block too small to search (under `min` bytes) is all literals: true when `src` is
    /// such a block, which the caller then leaves as it is.
    #[inline(always)]
    pub fn literal_only(&mut self, src: &[u8], min: usize) -> bool {
        self.size = src.len();
        if src.len() >= min {
            return false;
        }
        self.extra_lits = src.len();
        self.literals.clear();
        self.literals.extend_from_slice(src);
        true
    }

    /// A match of `l` bytes at `s` from `t`: extended backwards over bytes equal on both
    /// sides (not before `next_emit` nor `t_min`, and under `MAX_MATCH_LENGTH` when
    /// `capped`), then the literals since `next_emit` and the sequence are appended.
    /// Returns the extended match's start, source and length.
    #[inline(always)]
    pub fn emit_match(
        &mut self,
        src: &[u8],
        next_emit: i32,
        t_min: i32,
        (s, t, l): (i32, i32, i32),
        capped: bool,
    ) -> (i32, i32, i32) {
        let cap = if capped { MAX_MATCH_LENGTH as i64 } else { i64::MAX };
        let (s, t, l) = extend_back(src, next_emit, t_min, (s, t, l as i64), cap);
        let l = l as i32;
        self.emit_sequence(src, next_emit, s, t, l);
        (s, t, l)
    }

    /// The literals since `next_emit` and a match of `l` bytes at `s` from `t`.
    #[inline(always)]
    pub fn emit_sequence(&mut self, src: &[u8], next_emit: i32, s: i32, t: i32, l: i32) {
        let lit_len = (s - next_emit) as u32;
        if lit_len > 0 {
            self.literals
                .extend_from_slice(&src[next_emit as usize..s as usize]);
        }
        self.sequences.push(Seq::new(
            lit_len,
            (l as u32).wrapping_sub(ZSTD_MIN_MATCH),
            (s - t) as u32 + 3,
        ));
    }

    /// A match at a recent offset (`code`: zstd's repeat code 1-3) of `match_len` bytes
    /// minus 3 at `start` from `rep_index`: extended backwards over bytes equal on both
    /// sides (not before `next_emit` + 1 nor `t_min`, and while `match_len` < `cap`),
    /// then appended with the literals before it.
    #[inline(always)]
    pub fn emit_repeat(
        &mut self,
        src: &[u8],
        next_emit: i32,
        t_min: i32,
        (start, rep_index, match_len): (i32, i32, u32),
        cap: u32,
        code: u32,
    ) {
        let (start, _, match_len) = extend_back(
            src,
            next_emit + 1,
            t_min,
            (start, rep_index, i64::from(match_len)),
            i64::from(cap),
        );
        let match_len = match_len as u32;
        let mut seq = Seq::new(0, match_len, code);
        if start != next_emit {
            self.literals
                .extend_from_slice(&src[next_emit as usize..start as usize]);
            seq.lit_len = (start - next_emit) as u32;
        }
        self.sequences.push(seq);
    }

    /// A match of `l` bytes at the second most recent offset, right after the last one.
    #[inline(always)]
    pub fn emit_repeat2(&mut self, l: i32) {
        self.sequences
            .push(Seq::new(0, (l as u32).wrapping_sub(ZSTD_MIN_MATCH), 1));
    }

    /// The literals after the last match.
    #[inline(always)]
    pub fn finish_literals(&mut self, src: &[u8], next_emit: i32) {
        if (next_emit as usize) < src.len() {
            self.literals.extend_from_slice(&src[next_emit as usize..]);
            self.extra_lits = src.len() - next_emit as usize;
        }
    }
    pub fn new(rules: BlockRules) -> BlockEnc {
        BlockEnc {
            size: 0,
            literals: Vec::with_capacity(MAX_COMPRESSED_BLOCK_SIZE),
            sequences: Vec::with_capacity(2000),
            ll: Coders::new(),
            of: Coders::new(),
            ml: Coders::new(),
            lit_enc: HuffScratch::new(4),
            extra_lits: 0,
            output: Vec::with_capacity(MAX_COMPRESSED_BLOCK_SIZE),
            recent_offsets: [0; 3],
            prev_recent_offsets: [0; 3],
            last: false,
            rules,
        }
    }

    /// `initNewEncode`: a new frame starts with no entropy state.
    pub fn init_new_encode(&mut self) {
        self.recent_offsets = [1, 4, 8];
        self.lit_enc.reuse = Reuse::None;
        self.ll.set_prev(None);
        self.ml.set_prev(None);
        self.of.set_prev(None);
    }

    /// `reset(nil)`: a new block of the same frame.
    pub fn reset(&mut self) {
        self.extra_lits = 0;
        self.literals.clear();
        self.size = 0;
        self.sequences.clear();
        self.output.clear();
        self.last = false;
    }

    fn pop_offsets(&mut self) {
        self.recent_offsets = self.prev_recent_offsets;
    }

    /// `encodeRaw`: the block as its bytes.
    pub fn encode_raw(&mut self, a: &[u8]) {
        self.output.clear();
        self.output
            .extend_from_slice(&block_header(self.last, BLOCK_RAW, a.len() as u32));
        self.output.extend_from_slice(a);
    }

    /// A block of literals only: raw, RLE, or Huffman-coded with no sequences.
    pub fn encode_lits(&mut self, lits: &[u8], raw: bool) {
        let last = self.last;
        if lits.len() < 8 || lits.len() < 32 || raw {
            self.output
                .extend_from_slice(&block_header(last, BLOCK_RAW, lits.len() as u32));
            self.output.extend_from_slice(lits);
            return;
        }
        let mut single = false;
        let mut res = if lits.len() >= 1024 {
            self.lit_enc.compress_4x(lits)
        } else if lits.len() > self.rules.huff_1x_above {
            single = true;
            self.lit_enc.compress_1x(lits)
        } else {
            Err(HuffError::Incompressible)
        };
        if self.rules.near_raw_check
            && let Ok((out, _)) = &res
            && out.len() + 5 > lits.len()
        {
            let mut lh = LitHeader::default();
            lh.set_sizes(out.len(), lits.len(), single);
            if out.len() + lh.size() >= lits.len() {
                res = Err(HuffError::Incompressible);
            }
        }
        let (out, re_used) = match res {
            Err(HuffError::Incompressible) => {
                self.output
                    .extend_from_slice(&block_header(last, BLOCK_RAW, lits.len() as u32));
                self.output.extend_from_slice(lits);
                return;
            }
            Err(HuffError::UseRle) => {
                self.output
                    .extend_from_slice(&block_header(last, BLOCK_RLE, lits.len() as u32));
                self.output.push(lits[0]);
                return;
            }
            Ok(r) => r,
        };
        self.lit_enc.reuse = Reuse::Allow;
        let mut lh = LitHeader::default();
        lh.set_type(if re_used { LIT_TREELESS } else { LIT_COMPRESSED });
        lh.set_sizes(out.len(), lits.len(), single);
        let size = out.len() + lh.size() + 1;
        self.output
            .extend_from_slice(&block_header(last, BLOCK_COMPRESSED, size as u32));
        lh.append_to(&mut self.output);
        self.output.extend_from_slice(&out);
        self.output.push(0);
    }

    fn encode_rle(&mut self, val: u8, length: u32) {
        self.output
            .extend_from_slice(&block_header(self.last, BLOCK_RLE, length));
        self.output.push(val);
    }

    /// `encode`: the block from its literals and sequences into `output`; `org` is the
    /// block's plain bytes (sent raw when coding does not pay).
    pub fn encode(&mut self, org: &[u8], raw: bool, raw_all_lits: bool) {
        if self.sequences.is_empty() {
            let lits = std::mem::take(&mut self.literals);
            self.encode_lits(&lits, raw_all_lits);
            self.literals = lits;
            return;
        }
        if self.rules.rle_blocks && self.sequences.len() == 1 && !org.is_empty() && self.literals.len() <= 1 {
            let s = self.sequences[0];
            if s.lit_len == self.literals.len() as u32 && s.offset.wrapping_sub(3) == 1 {
                self.encode_rle(org[0], s.match_len + 3 + s.lit_len);
                return;
            }
        }
        let saved = self.size as isize
            - self.literals.len() as isize
            - (self.size >> self.rules.saved_shift) as isize;
        if saved < 16 {
            self.pop_offsets();
            self.encode_lits(org, raw_all_lits);
            return;
        }

        let last = self.last;
        let bh_offset = self.output.len();
        self.output.extend_from_slice(&[0; 3]);

        let mut single = false;
        let n_lits = self.literals.len();
        let mut res = if n_lits >= 1024 && !raw {
            self.lit_enc.compress_4x(&self.literals)
        } else if n_lits > self.rules.huff_1x_above && !raw {
            single = true;
            self.lit_enc.compress_1x(&self.literals)
        } else {
            Err(HuffError::Incompressible)
        };
        if self.rules.near_raw_check
            && let Ok((out, _)) = &res
            && out.len() + 5 > n_lits
        {
            let mut lh = LitHeader::default();
            lh.set_size(n_lits);
            let sz_raw = lh.size();
            lh.set_sizes(out.len(), n_lits, single);
            let sz_comp = lh.size();
            if out.len() + sz_comp >= n_lits + sz_raw {
                res = Err(HuffError::Incompressible);
            }
        }
        let mut lh = LitHeader::default();
        match res {
            Err(HuffError::Incompressible) => {
                lh.set_type(LIT_RAW);
                lh.set_size(n_lits);
                lh.append_to(&mut self.output);
                self.output.extend_from_slice(&self.literals);
            }
            Err(HuffError::UseRle) => {
                lh.set_type(LIT_RLE);
                lh.set_size(n_lits);
                lh.append_to(&mut self.output);
                self.output.push(self.literals[0]);
            }
            Ok((out, re_used)) => {
                lh.set_type(if re_used { LIT_TREELESS } else { LIT_COMPRESSED });
                lh.set_sizes(out.len(), n_lits, single);
                lh.append_to(&mut self.output);
                self.output.extend_from_slice(&out);
                self.lit_enc.reuse = Reuse::Allow;
            }
        }

        let n = self.sequences.len();
        if n < 128 {
            self.output.push(n as u8);
        } else if n < 0x7f00 {
            self.output.extend_from_slice(&[128 + (n >> 8) as u8, n as u8]);
        } else {
            let m = n - 0x7f00;
            self.output.extend_from_slice(&[255, m as u8, (m >> 8) as u8]);
        }
        self.gen_codes();
        self.ll.cur.normalize_count(n);
        self.of.cur.normalize_count(n);
        self.ml.cur.normalize_count(n);

        let mut mode = 0u8;
        let ll_pick = if self.ll.cur.use_rle {
            mode |= 1 << 6;
            let c = self.sequences[0].ll_code;
            self.ll.cur.set_rle(c);
            Pick::Cur
        } else {
            let p = self.choose_comp(Table::LiteralLengths);
            mode |= (mode_of(p) as u8) << 6;
            p
        };
        let of_pick = if self.of.cur.use_rle {
            mode |= 1 << 4;
            let c = self.sequences[0].of_code;
            self.of.cur.set_rle(c);
            Pick::Cur
        } else {
            let p = self.choose_comp(Table::Offsets);
            mode |= (mode_of(p) as u8) << 4;
            p
        };
        let ml_pick = if self.ml.cur.use_rle {
            mode |= 1 << 2;
            let c = self.sequences[0].ml_code;
            self.ml.cur.set_rle(c);
            Pick::Cur
        } else {
            let p = self.choose_comp(Table::MatchLengths);
            mode |= (mode_of(p) as u8) << 2;
            p
        };
        self.output.push(mode);
        for (c, p) in [(&self.ll, ll_pick), (&self.of, of_pick), (&self.ml, ml_pick)] {
            if let Some(e) = ours(c, p) {
                e.write_count(&mut self.output);
            }
        }
        if let Some(e) = ours_mut(&mut self.ll, ll_pick) {
            e.set_bits(Some(&LL_BITS));
        }
        if let Some(e) = ours_mut(&mut self.ml, ml_pick) {
            e.set_bits(Some(&ML_BITS));
        }
        if let Some(e) = ours_mut(&mut self.of, of_pick) {
            e.set_bits(None);
        }
        self.output = write_sequences(
            std::mem::take(&mut self.output),
            &self.sequences,
            pick(&self.ll, ll_pick, Table::LiteralLengths),
            pick(&self.of, of_pick, Table::Offsets),
            pick(&self.ml, ml_pick, Table::MatchLengths),
        );

        if self.output.len() - 3 - bh_offset >= self.size {
            // Not worth it: the block goes raw.
            self.output.truncate(bh_offset);
            self.output
                .extend_from_slice(&block_header(last, BLOCK_RAW, org.len() as u32));
            self.output.extend_from_slice(org);
            self.pop_offsets();
            self.lit_enc.reuse = Reuse::None;
            return;
        }
        let size = (self.output.len() - bh_offset - 3) as u32;
        self.output[bh_offset..bh_offset + 3].copy_from_slice(&block_header(last, BLOCK_COMPRESSED, size));
        self.ll.set_prev(Some(ll_pick));
        self.ml.set_prev(Some(ml_pick));
        self.of.set_prev(Some(of_pick));
    }

    /// Picks the new, previous or predefined table for one code.
    fn choose_comp(&mut self, t: Table) -> Pick {
        let coders = match t {
            Table::LiteralLengths => &self.ll,
            Table::Offsets => &self.of,
            Table::MatchLengths => &self.ml,
        };
        let cur = &coders.cur;
        let prev = &coders.prev;
        let pre_def = predefined(t);
        let hist = &cur.count[..cur.symbol_len as usize];
        let mut n_size = cur.approx_size(hist).wrapping_add(cur.max_header_size());
        let mut predef_size = pre_def.approx_size(hist);
        let mut prev_size = prev.approx_size(hist);
        n_size = n_size.wrapping_add(n_size.wrapping_add(2 * 8 * 16) >> 4);
        let mut n_size_prev = n_size;
        if self.rules.choose_comp_v2 {
            if prev_size != u32::MAX {
                let mut hdr = Vec::new();
                cur.write_count(&mut hdr);
                n_size_prev = cur.approx_size(hist).wrapping_add(hdr.len() as u32 * 8);
            }
            n_size = n_size.wrapping_add(cur.actual_table_log as u32);
            n_size_prev = n_size_prev.wrapping_add(cur.actual_table_log as u32);
            if predef_size != u32::MAX {
                predef_size = predef_size.wrapping_add(pre_def.actual_table_log as u32);
            }
            if prev_size != u32::MAX {
                prev_size = prev_size.wrapping_add(prev.actual_table_log as u32);
            }
        }
        if predef_size <= prev_size && predef_size <= n_size {
            Pick::Predefined
        } else if prev_size <= n_size_prev {
            Pick::Prev
        } else {
            Pick::Cur
        }
    }

    /// The sequences' codes and the three histograms.
    fn gen_codes(&mut self) {
        let (ll, of, ml) = (&mut self.ll.cur, &mut self.of.cur, &mut self.ml.cur);
        ll.count = [0; 256];
        of.count = [0; 256];
        ml.count = [0; 256];
        let (mut ll_max, mut of_max, mut ml_max) = (0u8, 0u8, 0u8);
        for s in self.sequences.iter_mut() {
            let v = ll_code(s.lit_len);
            s.ll_code = v;
            ll.count[v as usize] += 1;
            ll_max = ll_max.max(v);
            let v = of_code(s.offset);
            s.of_code = v;
            of.count[v as usize] += 1;
            of_max = of_max.max(v);
            let v = ml_code(s.match_len);
            s.ml_code = v;
            ml.count[v as usize] += 1;
            ml_max = ml_max.max(v);
        }
        let max_of = |c: &[u32]| *c.iter().max().unwrap_or(&0) as usize;
        let m = max_of(&ml.count[..=ml_max as usize]);
        ml.histogram_finished(ml_max, m);
        let m = max_of(&of.count[..=of_max as usize]);
        of.histogram_finished(of_max, m);
        let m = max_of(&ll.count[..=ll_max as usize]);
        ll.histogram_finished(ll_max, m);
    }
}

/// The sequences, last first, into the output (`encode`'s bitstream part).
fn write_sequences(out: Vec<u8>, seqs: &[Seq], ll: &FseEncoder, of: &FseEncoder, ml: &FseEncoder) -> Vec<u8> {
    let mut wr = BitWriter::new(out);
    let mut seq = seqs.len() - 1;
    let s = seqs[seq];
    let (ll_b, of_b, ml_b) = (
        ll.symbol_tt[s.ll_code as usize],
        of.symbol_tt[s.of_code as usize],
        ml.symbol_tt[s.ml_code as usize],
    );
    let mut llc = CState::init(ll, ll_b);
    let mut ofc = CState::init(of, of_b);
    wr.flush32();
    let mut mlc = CState::init(ml, ml_b);
    wr.add_bits32_nc(s.lit_len, ll_b.out_bits);
    wr.add_bits32_nc(s.match_len, ml_b.out_bits);
    wr.flush32();
    wr.add_bits32_nc(s.offset, of_b.out_bits);
    while seq > 0 {
        seq -= 1;
        let s = seqs[seq];
        let of_b = of.symbol_tt[s.of_code as usize];
        wr.flush32();
        ofc.encode(&mut wr, of, of_b);
        let out_bits = of_b.out_bits & 31;
        let mut extra = (s.offset & BIT_MASK32[out_bits as usize]) as u64;
        let mut extra_n = out_bits;

        let ml_b = ml.symbol_tt[s.ml_code as usize];
        mlc.encode(&mut wr, ml, ml_b);
        let out_bits = ml_b.out_bits & 31;
        extra = extra << out_bits | (s.match_len & BIT_MASK32[out_bits as usize]) as u64;
        extra_n += out_bits;

        let ll_b = ll.symbol_tt[s.ll_code as usize];
        llc.encode(&mut wr, ll, ll_b);
        let out_bits = ll_b.out_bits & 31;
        extra = extra << out_bits | (s.lit_len & BIT_MASK32[out_bits as usize]) as u64;
        extra_n += out_bits;

        wr.flush32();
        wr.add_bits64_nc(extra, extra_n);
    }
    mlc.flush(&mut wr, ml.actual_table_log);
    ofc.flush(&mut wr, of.actual_table_log);
    llc.flush(&mut wr, ll.actual_table_log);
    wr.close();
    wr.out
}

fn mode_of(p: Pick) -> u32 {
    match p {
        Pick::Predefined => 0,
        Pick::Cur => 2,
        Pick::Prev => 3,
    }
}

fn pick(c: &Coders, p: Pick, t: Table) -> &FseEncoder {
    match p {
        Pick::Cur => &c.cur,
        Pick::Prev => &c.prev,
        Pick::Predefined => predefined(t),
    }
}

/// The picked table when it is one of ours: the predefined tables are shared and never
/// written to (their descriptions and extra bits are implied).
fn ours(c: &Coders, p: Pick) -> Option<&FseEncoder> {
    match p {
        Pick::Cur => Some(&c.cur),
        Pick::Prev => Some(&c.prev),
        Pick::Predefined => None,
    }
}

fn ours_mut(c: &mut Coders, p: Pick) -> Option<&mut FseEncoder> {
    match p {
        Pick::Cur => Some(&mut c.cur),
        Pick::Prev => Some(&mut c.prev),
        Pick::Predefined => None,
    }
}
