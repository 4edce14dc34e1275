// Port of klauspost/compress v1.15.12 `flate/level4.go`; it follows the Go
// design closely (same hashing, skipping and table updates, in the same order).
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Modified for deflate by Klaus Post (c) 2015.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Level 4: a short (4-byte) and a long (7-byte) hash table.

use super::fast::{
    FastGen, MAX_MATCH_OFFSET, TABLE_BITS, TABLE_SIZE, emit_match, emit_remainder, hash_len, hash7, load32,
    load64, match_len, past_match,
};
use super::token::Tokens;

const HASH_SHORT_BYTES: u32 = 4;

pub(crate) struct FastEncL4 {
    pub hist: FastGen,
    table: Box<[i32; TABLE_SIZE]>,
    b_table: Box<[i32; TABLE_SIZE]>,
    /// klauspost ≥ 1.18 (and Go 1.27) compare the candidate at s+1 at its
    /// distance read as a position; see `Variant::level4_distance_as_position`.
    distance_as_position: bool,
}

#[inline(always)]
fn hs(u: u64) -> usize {
    hash_len(u, TABLE_BITS, HASH_SHORT_BYTES)
}

#[inline(always)]
fn hl(u: u64) -> usize {
    hash7(u, TABLE_BITS)
}

impl FastEncL4 {
    pub fn new(distance_as_position: bool) -> Box<FastEncL4> {
        Box::new(FastEncL4 {
            hist: FastGen::new(),
            table: Box::new([0; TABLE_SIZE]),
            b_table: Box::new([0; TABLE_SIZE]),
            distance_as_position,
        })
    }

    pub fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const SKIP_LOG: i32 = 6;
        const DO_EVERY: i32 = 1;
        let Some((buf, src, cur, s_limit, mut s)) =
            self.hist
                .begin(&mut (&mut self.table[..], &mut self.b_table[..]), dst, src)
        else {
            return;
        };
        let distance_as_position = self.distance_as_position;
        let table = &mut *self.table;
        let b_table = &mut *self.b_table;
        let (mut next_emit, mut cv) = (s, load64(buf, s));

        loop {
            let mut next_s = s;
            let mut t;
            loop {
                let next_hash_s = hs(cv);
                let next_hash_l = hl(cv);
                s = next_s;
                next_s = s + DO_EVERY + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    emit_remainder(dst, src, next_emit);
                    return;
                }
                // Fetch a short and a long candidate.
                let s_candidate = table[next_hash_s];
                let l_candidate = b_table[next_hash_l];
                let next = load64(buf, next_s);
                table[next_hash_s] = s + cur;
                b_table[next_hash_l] = s + cur;

                t = l_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(buf, l_candidate - cur) {
                    // A long match: use it.
                    break;
                }
                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(buf, s_candidate - cur) {
                    // A short match; prefer the long candidate at s+1 if it
                    // is longer.
                    let l_candidate = b_table[hl(next)];
                    let l_off = next_s - (l_candidate - cur);
                    if l_off < MAX_MATCH_OFFSET && load32(buf, l_candidate - cur) == next as u32 {
                        let l1 = match_len(&src[(s + 4) as usize..], &src[(t + 4) as usize..]);
                        // Where the candidate is compared: at its position,
                        // or (≥ 1.18) at its distance taken for a position.
                        let at = if distance_as_position {
                            l_off
                        } else {
                            next_s - l_off
                        };
                        let l2 = match_len(&src[(next_s + 4) as usize..], &src[(at + 4) as usize..]);
                        if l2 > l1 {
                            s = next_s;
                            t = l_candidate - cur;
                        }
                    }
                    break;
                }
                cv = next;
            }

            let mut l = FastGen::matchlen_long(s + 4, t + 4, src) + 4;
            (s, _, l) = emit_match(dst, src, next_emit, s, t, l);
            (s, next_emit) = past_match(s, l, next_s);
            if s >= s_limit {
                // Index the first pair after the match end.
                if ((s + 8) as usize) < src.len() {
                    let cv = load64(buf, s);
                    table[hs(cv)] = s + cur;
                    b_table[hl(cv)] = s + cur;
                }
                emit_remainder(dst, src, next_emit);
                return;
            }
            // Store every 3rd hash in-between.
            let mut i = next_s;
            while i < s - 1 {
                let cv = load64(buf, i);
                let t = i + cur;
                b_table[hl(cv)] = t;
                b_table[hl(cv >> 8)] = t + 1;
                table[hs(cv >> 8)] = t + 1;
                i += 3;
            }
            // Update the table at s-1 and continue at s.
            let x = load64(buf, s - 1);
            let o = cur + s - 1;
            table[hs(x)] = o;
            b_table[hl(x)] = o;
            cv = x >> 8;
        }
    }
}
