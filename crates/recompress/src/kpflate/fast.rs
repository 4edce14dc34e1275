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
//! the position base `cur` of their hash tables and its rebasing, hashes, match
//! extension and emission. The levels (level1.rs–level4.rs, level56.rs) differ in their tables and
//! search loops; `single_pass` dispatches to them.
//!
//! Table entries hold `position + cur`. `cur` only grows (by the history
//! dropped when the buffer slides, and by a full window on every reset), so
//! entries from before a reset are automatically out of reach; that is why
//! an encoder reused from a pool produces the same bytes as a fresh one.

use super::token::Tokens;
use crate::deflate::tables::{BASE_MATCH_OFFSET, MAX_MATCH_LENGTH, MAX_STORE_BLOCK_SIZE};

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

/// A level's hash tables, as `FastGen::protect_cur` clears or rebases them.
pub(crate) trait Tables {
    fn clear(&mut self);
    /// Entries at or below `min_off` are dropped, the rest move down by `cur` −
    /// `MAX_MATCH_OFFSET`.
    fn rebase(&mut self, min_off: i32, cur: i32);
}

impl Tables for [i32] {
    fn clear(&mut self) {
        self.fill(0);
    }

    fn rebase(&mut self, min_off: i32, cur: i32) {
        for v in self.iter_mut() {
            *v = rebase_entry(*v, min_off, cur);
        }
    }
}

/// Two candidates per hash: the newest and the one before it.
#[derive(Clone, Copy, Default)]
pub(crate) struct EntryPrev {
    pub cur: i32,
    pub prev: i32,
}

impl EntryPrev {
    /// Makes `offset` the newest entry, keeping the old newest as previous.
    #[inline(always)]
    pub fn push(&mut self, offset: i32) {
        self.prev = self.cur;
        self.cur = offset;
    }
}

/// Levels 5 and 6: a cleared newest entry clears both.
impl Tables for [EntryPrev] {
    fn clear(&mut self) {
        self.fill(EntryPrev::default());
    }

    fn rebase(&mut self, min_off: i32, cur: i32) {
        for v in self.iter_mut() {
            if v.cur <= min_off {
                v.cur = 0;
                v.prev = 0;
            } else {
                v.cur = v.cur - cur + MAX_MATCH_OFFSET;
                v.prev = rebase_entry(v.prev, min_off, cur);
            }
        }
    }
}

/// Levels 4 to 6: a short-hash and a long-hash table.
impl<A: Tables + ?Sized, B: Tables + ?Sized> Tables for (&mut A, &mut B) {
    fn clear(&mut self) {
        self.0.clear();
        self.1.clear();
    }

    fn rebase(&mut self, min_off: i32, cur: i32) {
        self.0.rebase(min_off, cur);
        self.1.rebase(min_off, cur);
    }
}

impl FastGen {
    /// The start of every level's `Encode`: `protect_cur`, then the block joins the history.
    /// Returns the history, the table base `cur`, where searching stops (Go's `sLimit`) and
    /// where the block starts; `None` when the block is too small to search, which the
    /// caller sees as `dst.n == src.len()` and stores.
    #[inline(always)]
    pub fn begin<T: Tables + ?Sized>(
        &mut self,
        tables: &mut T,
        dst: &mut Tokens,
        src: &[u8],
    ) -> Option<(&HistBuf, &[u8], i32, i32, i32)> {
        self.protect_cur(tables);
        let s = self.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            dst.n = src.len();
            return None;
        }
        let buf = &*self.buf;
        let s_limit = self.len as i32 - INPUT_MARGIN;
        Some((buf, &buf[..self.len], self.cur, s_limit, s))
    }

    /// Go's guard before each block: once `cur` reaches `BUFFER_RESET`, the tables are
    /// cleared (no history left) or rebased so that `cur` restarts at `MAX_MATCH_OFFSET`.
    #[inline]
    fn protect_cur<T: Tables + ?Sized>(&mut self, tables: &mut T) {
        while self.cur >= BUFFER_RESET {
            if self.len == 0 {
                tables.clear();
                self.cur = MAX_MATCH_OFFSET;
                break;
            }
            let cur = self.cur;
            let min_off = cur + self.len as i32 - MAX_MATCH_OFFSET;
            tables.rebase(min_off, cur);
            self.cur = MAX_MATCH_OFFSET;
        }
    }
}

/// What every level does with a match of `l` bytes at `s` from `t`: extend it backwards
/// over bytes equal on both sides (not before `next_emit`), then emit the literals before
/// it and the match. Returns the match's source position and length after the extension.
#[inline(always)]
pub(crate) fn emit_match(
    dst: &mut Tokens,
    src: &[u8],
    next_emit: i32,
    mut s: i32,
    mut t: i32,
    mut l: i32,
) -> (i32, i32, i32) {
    while t > 0 && s > next_emit && src[(t - 1) as usize] == src[(s - 1) as usize] {
        s -= 1;
        t -= 1;
        l += 1;
    }
    if next_emit < s {
        dst.add_literals(&src[next_emit as usize..s as usize]);
    }
    dst.add_match_long(l, (s - t - BASE_MATCH_OFFSET) as u32);
    (s, t, l)
}

/// Where a level goes on after a match of `l` bytes at `s`: the literals start again at its
/// end, and the search at its end or just past `next_s`, whichever is later (Go: `s += l;
/// nextEmit = s; if nextS >= s { s = nextS + 1 }`). Returns (search position, next emit).
#[inline(always)]
pub(crate) fn past_match(s: i32, l: i32, next_s: i32) -> (i32, i32) {
    let end = s + l;
    (if next_s >= end { next_s + 1 } else { end }, end)
}
