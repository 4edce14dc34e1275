// Copyright 2016 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Port of Go's compress/flate/deflatefast.go (Go 1.19), itself based on
// Snappy's encoder. Table layout, skipping heuristic and offset bookkeeping
// follow Go's design line by line, hence Go's license notice above.

//! BestSpeed's LZ77 matcher (Go's `deflateFast`).
//!
//! Positions are kept as `i32` "offsets" that grow by the block length (plus
//! 32 KiB on reset) across the whole stream, exactly as Go keeps them: when
//! they are shifted back (`shift_offsets`) decides nothing about the output,
//! but keeping the same arithmetic keeps every comparison identical.

use super::bitwriter::MAX_STORE_BLOCK_SIZE;
use super::token::{Token, literal_token, match_token};

const TABLE_BITS: u32 = 14;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const TABLE_MASK: u32 = (TABLE_SIZE - 1) as u32;
const TABLE_SHIFT: u32 = 32 - TABLE_BITS;
const MAX_MATCH_OFFSET: i32 = 1 << 15;
const MAX_MATCH_LENGTH: usize = 258;
const BASE_MATCH_LENGTH: i32 = 3;
const BASE_MATCH_OFFSET: i32 = 1;
/// Offsets are shifted down before `cur` could overflow an `i32`.
const BUFFER_RESET: i32 = i32::MAX - (MAX_STORE_BLOCK_SIZE as i32) * 2;
/// Snappy's margin, kept because it decides where matching stops.
const INPUT_MARGIN: usize = 16 - 1;
const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN;

#[derive(Clone, Copy, Default)]
struct TableEntry {
    /// The 4 bytes at `offset`, to verify a candidate without loading it.
    val: u32,
    offset: i32,
}

pub(super) struct DeflateFast {
    table: Box<[TableEntry; TABLE_SIZE]>,
    /// The previous block, for matches across blocks; empty if unknown.
    prev: Vec<u8>,
    /// Stream offset of the current block's first byte.
    cur: i32,
}

#[inline(always)]
fn load32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}

#[inline(always)]
fn load64(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

#[inline(always)]
fn hash(u: u32) -> u32 {
    u.wrapping_mul(0x1e35a7bd) >> TABLE_SHIFT
}

/// `emitLiteral`.
fn emit_literal(dst: &mut Vec<Token>, lit: &[u8]) {
    dst.extend(lit.iter().map(|&b| literal_token(b)));
}

/// Number of equal leading bytes of `a` and `b` (same length).
#[inline(always)]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    while i + 8 <= n {
        let x = load64(a, i) ^ load64(b, i);
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

impl DeflateFast {
    pub(super) fn new() -> Self {
        DeflateFast {
            table: vec![TableEntry::default(); TABLE_SIZE]
                .into_boxed_slice()
                .try_into()
                .ok()
                .expect("table size"),
            prev: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
            cur: MAX_STORE_BLOCK_SIZE as i32,
        }
    }

    /// `encode`: appends the tokens of `src` (one block, at most 64 KiB) to
    /// `dst`, matching against `src` and the previous block.
    pub(super) fn encode(&mut self, dst: &mut Vec<Token>, src: &[u8]) {
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            self.cur += MAX_STORE_BLOCK_SIZE as i32;
            self.prev.clear();
            emit_literal(dst, src);
            return;
        }
        let next_emit = self.encode_matches(dst, src);
        if next_emit < src.len() {
            emit_literal(dst, &src[next_emit..]);
        }
        self.cur += src.len() as i32;
        self.prev.clear();
        self.prev.extend_from_slice(src);
    }

    /// The main loop of `encode`; returns where the trailing literals start.
    fn encode_matches(&mut self, dst: &mut Vec<Token>, src: &[u8]) -> usize {
        // Matching stops at `s_limit` so that 8-byte loads stay in bounds.
        let s_limit = (src.len() - INPUT_MARGIN) as i32;
        let table = &mut *self.table;
        let prev = &self.prev[..];
        let cur = self.cur;
        let mut next_emit: i32 = 0;
        let mut s: i32 = 0;
        let mut cv = load32(src, 0);
        let mut next_hash = hash(cv);

        loop {
            // Snappy's skipping: after 32 probes without a match, look only
            // at every other byte, then every third, and so on.
            let mut skip: i32 = 32;
            let mut next_s = s;
            let mut candidate;
            loop {
                s = next_s;
                let step = skip >> 5;
                next_s = s + step;
                skip += step;
                if next_s > s_limit {
                    return next_emit as usize;
                }
                let slot = &mut table[(next_hash & TABLE_MASK) as usize];
                candidate = *slot;
                let now = load32(src, next_s as usize);
                *slot = TableEntry {
                    offset: s + cur,
                    val: cv,
                };
                next_hash = hash(now);
                let offset = s - (candidate.offset - cur);
                if offset > MAX_MATCH_OFFSET || cv != candidate.val {
                    cv = now;
                    continue;
                }
                break;
            }

            // src[next_emit..s] found no match: literals.
            emit_literal(dst, &src[next_emit as usize..s as usize]);

            // Emit copies while the byte right after one starts another.
            loop {
                s += 4;
                let t = candidate.offset - cur + 4;
                let l = match_len(prev, s, t, src);
                dst.push(match_token(
                    (l + 4 - BASE_MATCH_LENGTH) as u32,
                    (s - t - BASE_MATCH_OFFSET) as u32,
                ));
                s += l;
                next_emit = s;
                if s >= s_limit {
                    return next_emit as usize;
                }
                // Update the table at s-1 and s, and probe at s, from one
                // 8-byte load as Go does.
                let mut x = load64(src, (s - 1) as usize);
                let prev_hash = hash(x as u32);
                table[(prev_hash & TABLE_MASK) as usize] = TableEntry {
                    offset: cur + s - 1,
                    val: x as u32,
                };
                x >>= 8;
                let curr_hash = hash(x as u32);
                let slot = &mut table[(curr_hash & TABLE_MASK) as usize];
                candidate = *slot;
                *slot = TableEntry {
                    offset: cur + s,
                    val: x as u32,
                };
                let offset = s - (candidate.offset - cur);
                if offset > MAX_MATCH_OFFSET || x as u32 != candidate.val {
                    cv = (x >> 8) as u32;
                    next_hash = hash(cv);
                    s += 1;
                    break;
                }
            }
        }
    }

    /// `reset`: forget the history, making every old table entry too far.
    pub(super) fn reset(&mut self) {
        self.prev.clear();
        self.cur += MAX_MATCH_OFFSET;
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
    }

    /// `shiftOffsets`: rebase all offsets so that `cur` = 32769, clamping
    /// entries that were already out of reach to 0.
    fn shift_offsets(&mut self) {
        if self.prev.is_empty() {
            self.table.fill(TableEntry::default());
        } else {
            let delta = self.cur - MAX_MATCH_OFFSET - 1;
            for e in self.table.iter_mut() {
                e.offset = (e.offset - delta).max(0);
            }
        }
        self.cur = MAX_MATCH_OFFSET + 1;
    }
}

/// `matchLen`: how far `src[s..]` matches the data at `t`, where a
/// negative `t` points into the previous block (and the match may run on
/// into the start of `src`). At most 254 more bytes (258 in all).
fn match_len(prev: &[u8], s: i32, t: i32, src: &[u8]) -> i32 {
    let s = s as usize;
    let s1 = (s + MAX_MATCH_LENGTH - 4).min(src.len());
    if t >= 0 {
        let t = t as usize;
        let a = &src[s..s1];
        let b = &src[t..t + a.len()];
        return common_prefix(a, b) as i32;
    }
    let tp = prev.len() as i32 + t;
    if tp < 0 {
        return 0;
    }
    let a = &src[s..s1];
    let b = &prev[tp as usize..];
    let n = b.len().min(a.len());
    let m = common_prefix(&a[..n], &b[..n]);
    if m < n || s + n == s1 {
        return m as i32;
    }
    // The previous block is exhausted: continue at the start of `src`.
    let a = &src[s + n..s1];
    (common_prefix(a, &src[..a.len()]) + n) as i32
}
