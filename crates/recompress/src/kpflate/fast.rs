// Port of klauspost/compress v1.15.12 `flate/fast_encoder.go`; it follows the
// Go design closely.
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Modified for deflate by Klaus Post (c) 2015.
// Copyright (c) 2012 The Go Authors. All rights reserved.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! What the single-pass encoders of levels 1–6 share: the history buffer,
//! the position base `cur` of their hash tables, hashes and match extension.
//!
//! Table entries hold `position + cur`. `cur` only grows (by the history
//! dropped when the buffer slides, and by a full window on every reset), so
//! entries from before a reset are automatically out of reach; that is why
//! an encoder reused from a pool produces the same bytes as a fresh one.

use super::level1::FastEncL1;
use super::level2::FastEncL2;
use super::level3::FastEncL3;
use super::level4::FastEncL4;
use super::level5::FastEncL5;
use super::level6::FastEncL6;
use super::token::Tokens;
use super::variant::Variant;
use crate::deflate::tables::{MAX_MATCH_LENGTH, MAX_STORE_BLOCK_SIZE};

pub(crate) const TABLE_BITS: u32 = 15;
pub(crate) const TABLE_SIZE: usize = 1 << TABLE_BITS;
pub(crate) const MAX_MATCH_OFFSET: i32 = 1 << 15;
pub(crate) const INPUT_MARGIN: i32 = 12 - 1;
pub(crate) const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN as usize;
/// History kept for matching: five store blocks, slid down to the last
/// window when full.
const ALLOC_HISTORY: usize = MAX_STORE_BLOCK_SIZE * 5;
/// `cur` is rebased once it reaches this, so `position + cur` fits an i32.
pub(crate) const BUFFER_RESET: i32 =
    ((1i64 << 31) - ALLOC_HISTORY as i64 - MAX_STORE_BLOCK_SIZE as i64 - 1) as i32;

const PRIME3BYTES: u32 = 506832829;
const PRIME4BYTES: u32 = 2654435761;
const PRIME5BYTES: u64 = 889523592379;
const PRIME6BYTES: u64 = 227718039650203;
const PRIME7BYTES: u64 = 58295818150454627;
const PRIME8BYTES: u64 = 0xcf1bbcdcb7a56463;

/// Room for the history: a power of two (for the load mask) above
/// `ALLOC_HISTORY`, plus 8 bytes so a masked 8-byte load always fits.
const HIST_CAP: usize = 1 << 19;
pub(crate) type HistBuf = [u8; HIST_CAP + 8];

// The encoders only load at positions below the history length (Go's
// loads are bounds checked too and never fail), so the mask is a no-op
// that lets the compiler drop the bounds checks from the hot loops.
#[inline(always)]
pub(crate) fn load32(b: &HistBuf, i: i32) -> u32 {
    let i = i as usize & (HIST_CAP - 1);
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

#[inline(always)]
pub(crate) fn load64(b: &HistBuf, i: i32) -> u64 {
    let i = i as usize & (HIST_CAP - 1);
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// Hash of the low 7 bytes of `u` into `h` bits.
#[inline(always)]
pub(crate) fn hash7(u: u64, h: u32) -> usize {
    ((u << (64 - 56)).wrapping_mul(PRIME7BYTES) >> ((64 - h) & 63)) as u32 as usize
}

/// Hash of the low `mls` bytes of `u` into `length` bits (4 bytes for any
/// `mls` outside 3..=8, as in Go).
#[inline(always)]
pub(crate) fn hash_len(u: u64, length: u32, mls: u32) -> usize {
    let h = match mls {
        3 => ((u as u32) << 8).wrapping_mul(PRIME3BYTES) >> (32 - length),
        5 => ((u << (64 - 40)).wrapping_mul(PRIME5BYTES) >> (64 - length)) as u32,
        6 => ((u << (64 - 48)).wrapping_mul(PRIME6BYTES) >> (64 - length)) as u32,
        7 => ((u << (64 - 56)).wrapping_mul(PRIME7BYTES) >> (64 - length)) as u32,
        8 => (u.wrapping_mul(PRIME8BYTES) >> (64 - length)) as u32,
        _ => (u as u32).wrapping_mul(PRIME4BYTES) >> (32 - length),
    };
    h as usize
}

/// Length of the common prefix of `a` and `b`; `a` must be the shorter.
#[inline(always)]
pub(crate) fn match_len(a: &[u8], b: &[u8]) -> usize {
    let b = &b[..a.len()];
    let mut checked = 0;
    let mut ac = a.chunks_exact(8);
    let mut bc = b.chunks_exact(8);
    for (x, y) in (&mut ac).zip(&mut bc) {
        let x = u64::from_le_bytes(x.try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(y.try_into().expect("8 bytes"));
        let diff = x ^ y;
        if diff != 0 {
            return checked + (diff.trailing_zeros() >> 3) as usize;
        }
        checked += 8;
    }
    for (x, y) in ac.remainder().iter().zip(bc.remainder()) {
        if x != y {
            return checked;
        }
        checked += 1;
    }
    checked
}

/// History buffer and table base shared by the fast encoders (Go's
/// `fastGen`).
pub(crate) struct FastGen {
    /// The history is `buf[..len]`.
    pub buf: Box<HistBuf>,
    pub len: usize,
    pub cur: i32,
}

impl FastGen {
    pub fn new() -> FastGen {
        let buf: Box<HistBuf> = vec![0u8; HIST_CAP + 8]
            .into_boxed_slice()
            .try_into()
            .expect("history size");
        FastGen {
            buf,
            len: 0,
            cur: MAX_STORE_BLOCK_SIZE as i32,
        }
    }

    /// Appends `src` to the history, sliding the last window down first when
    /// it would not fit in Go's `allocHistory`; returns where `src` starts.
    pub fn add_block(&mut self, src: &[u8]) -> i32 {
        if self.len + src.len() > ALLOC_HISTORY {
            let offset = self.len - MAX_MATCH_OFFSET as usize;
            self.buf.copy_within(offset..self.len, 0);
            self.cur += offset as i32;
            self.len = MAX_MATCH_OFFSET as usize;
        }
        let s = self.len;
        self.buf[s..s + src.len()].copy_from_slice(src);
        self.len += src.len();
        s as i32
    }

    /// Forgets the history; moving `cur` past it puts every table entry out
    /// of reach without clearing the tables.
    pub fn reset(&mut self) {
        if self.cur <= BUFFER_RESET {
            self.cur += MAX_MATCH_OFFSET + self.len as i32;
        }
        self.len = 0;
    }

    /// Common prefix of `src[s..]` and `src[t..]`, at most 254 bytes (Go's
    /// `matchlen`: the caller adds the 4 bytes it already compared).
    #[inline(always)]
    pub fn matchlen(s: i32, t: i32, src: &[u8]) -> i32 {
        let s1 = (s as usize + MAX_MATCH_LENGTH - 4).min(src.len());
        match_len(&src[s as usize..s1], &src[t as usize..]) as i32
    }

    /// Unbounded common prefix of `src[s..]` and `src[t..]`.
    #[inline(always)]
    pub fn matchlen_long(s: i32, t: i32, src: &[u8]) -> i32 {
        match_len(&src[s as usize..], &src[t as usize..]) as i32
    }
}

/// Rebases table offsets when `cur` must wrap (Go's "Protect against e.cur
/// wraparound"): entries a window or more behind the history end are cleared.
#[inline]
pub(crate) fn rebase_entry(v: i32, min_off: i32, cur: i32) -> i32 {
    if v <= min_off {
        0
    } else {
        v - cur + MAX_MATCH_OFFSET
    }
}

/// One of the six single-pass encoders.
pub(crate) enum FastEnc {
    L1(Box<FastEncL1>),
    L2(Box<FastEncL2>),
    L3(Box<FastEncL3>),
    L4(Box<FastEncL4>),
    L5(Box<FastEncL5>),
    L6(Box<FastEncL6>),
}

impl FastEnc {
    pub fn new(level: i32, variant: Variant) -> FastEnc {
        match level {
            1 => FastEnc::L1(FastEncL1::new()),
            2 => FastEnc::L2(FastEncL2::new()),
            3 => FastEnc::L3(FastEncL3::new()),
            4 => FastEnc::L4(FastEncL4::new(variant.level4_distance_as_position())),
            5 => FastEnc::L5(FastEncL5::new()),
            6 => FastEnc::L6(FastEncL6::new()),
            _ => unreachable!("fast encoders cover levels 1-6"),
        }
    }

    /// Tokenises `src`, which continues the history.
    pub fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        match self {
            FastEnc::L1(e) => e.encode(dst, src),
            FastEnc::L2(e) => e.encode(dst, src),
            FastEnc::L3(e) => e.encode(dst, src),
            FastEnc::L4(e) => e.encode(dst, src),
            FastEnc::L5(e) => e.encode(dst, src),
            FastEnc::L6(e) => e.encode(dst, src),
        }
    }

    /// Moves the table base, as a long stream or many resets would.
    #[cfg(test)]
    pub(crate) fn force_cur(&mut self, cur: i32) {
        self.hist_mut().cur = cur;
    }

    #[cfg(test)]
    fn hist_mut(&mut self) -> &mut FastGen {
        match self {
            FastEnc::L1(e) => &mut e.hist,
            FastEnc::L2(e) => &mut e.hist,
            FastEnc::L3(e) => &mut e.hist,
            FastEnc::L4(e) => &mut e.hist,
            FastEnc::L5(e) => &mut e.hist,
            FastEnc::L6(e) => &mut e.hist,
        }
    }

    pub fn reset(&mut self) {
        match self {
            FastEnc::L1(e) => e.hist.reset(),
            FastEnc::L2(e) => e.hist.reset(),
            FastEnc::L3(e) => e.hist.reset(),
            FastEnc::L4(e) => e.hist.reset(),
            FastEnc::L5(e) => e.hist.reset(),
            FastEnc::L6(e) => e.hist.reset(),
        }
    }
}

/// Emits the literals left after the last match, unless the block found no
/// match at all (then the caller stores it, seeing zero tokens).
#[inline(always)]
pub(crate) fn emit_remainder(dst: &mut Tokens, src: &[u8], next_emit: i32) {
    if (next_emit as usize) < src.len() {
        if dst.n == 0 {
            return;
        }
        dst.add_literals(&src[next_emit as usize..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text-like bytes with repeats near and beyond the 32 KiB window.
    fn sample(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 == 0 && v.len() > 40_000 {
                let back = 1 + (x >> 8) as usize % 40_000;
                let len = 4 + (x >> 32) as usize % 300;
                for _ in 0..len {
                    v.push(v[v.len() - back]);
                }
            } else {
                v.extend_from_slice(&(x as u32 % 1000).to_le_bytes()[..2]);
                v.push(b" etaoinshr"[(x >> 40) as usize % 10]);
            }
        }
        v.truncate(n);
        v
    }

    /// Tokens of `data` in 64 KiB − 1 windows, with a history reset halfway.
    fn tokens(enc: &mut FastEnc, data: &[u8]) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        let mut t = Tokens::new();
        let (a, b) = data.split_at(data.len() / 2);
        for part in [a, b] {
            for w in part.chunks(MAX_STORE_BLOCK_SIZE) {
                t.reset();
                enc.encode(&mut t, w);
                out.push(t.slice().to_vec());
            }
            enc.reset();
        }
        out
    }

    /// Rebasing `cur` (after ~2 GiB of one stream, or after many resets of
    /// a pooled encoder) must not change any token: only entries out of
    /// reach are dropped.
    #[test]
    fn cur_rebase_keeps_tokens() {
        let data = sample(1_200_000, 7);
        for level in 1..=6 {
            let want = tokens(&mut FastEnc::new(level, Variant::Kp1_15), &data);
            // Rebased mid-stream with history present.
            let mut enc = FastEnc::new(level, Variant::Kp1_15);
            enc.force_cur(BUFFER_RESET - 100_000);
            assert!(
                want == tokens(&mut enc, &data),
                "level {level}: rebase with history"
            );
            // Rebased right after a reset, with an empty history.
            let mut enc = FastEnc::new(level, Variant::Kp1_15);
            // The first half slides once (+294907) and the reset adds its
            // 32 KiB + history, crossing BUFFER_RESET with an empty history.
            enc.force_cur(BUFFER_RESET - 400_000);
            assert!(
                want == tokens(&mut enc, &data),
                "level {level}: rebase after reset"
            );
        }
    }
}
