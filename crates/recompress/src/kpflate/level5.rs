// Port of klauspost/compress v1.15.12 `flate/level5.go`; it follows the Go
// design closely (same hashing, skipping and table updates, in the same order).
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Modified for deflate by Klaus Post (c) 2015.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Level 5 (also pgzip's and flate's default): a short table and a long
//! table with two candidates per hash, plus a search for a longer match
//! ending where the current one ends.

use super::fast::{
    EntryPrev, FastGen, MAX_MATCH_OFFSET, TABLE_BITS, TABLE_SIZE, emit_match, emit_remainder, hash_len,
    hash7, load32, load64, past_match,
};
use super::token::Tokens;
use crate::deflate::tables::MAX_MATCH_LENGTH;

const HASH_SHORT_BYTES: u32 = 4;

pub(crate) struct FastEncL5 {
    pub hist: FastGen,
    table: Box<[i32; TABLE_SIZE]>,
    b_table: Box<[EntryPrev; TABLE_SIZE]>,
}

#[inline(always)]
fn hs(u: u64) -> usize {
    hash_len(u, TABLE_BITS, HASH_SHORT_BYTES)
}

#[inline(always)]
fn hl(u: u64) -> usize {
    hash7(u, TABLE_BITS)
}

impl FastEncL5 {
    pub fn new() -> Box<FastEncL5> {
        Box::new(FastEncL5 {
            hist: FastGen::new(),
            table: Box::new([0; TABLE_SIZE]),
            b_table: Box::new([EntryPrev::default(); TABLE_SIZE]),
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
        let table = &mut *self.table;
        let b_table = &mut *self.b_table;
        let (mut next_emit, mut cv) = (s, load64(buf, s));

        loop {
            let mut next_s = s;
            let mut l: i32 = 0;
            let mut t;
            loop {
                let mut next_hash_s = hs(cv);
                let mut next_hash_l = hl(cv);
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
                b_table[next_hash_l].push(s + cur);

                next_hash_s = hs(next);
                next_hash_l = hl(next);

                t = l_candidate.cur - cur;
                if s - t < MAX_MATCH_OFFSET {
                    if cv as u32 == load32(buf, l_candidate.cur - cur) {
                        // Store the next match.
                        table[next_hash_s] = next_s + cur;
                        b_table[next_hash_l].push(next_s + cur);
                        let t2 = l_candidate.prev - cur;
                        if s - t2 < MAX_MATCH_OFFSET && cv as u32 == load32(buf, l_candidate.prev - cur) {
                            l = FastGen::matchlen(s + 4, t + 4, src) + 4;
                            let ml1 = FastGen::matchlen(s + 4, t2 + 4, src) + 4;
                            if ml1 > l {
                                t = t2;
                                l = ml1;
                            }
                        }
                        break;
                    }
                    t = l_candidate.prev - cur;
                    if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(buf, l_candidate.prev - cur) {
                        // Store the next match.
                        table[next_hash_s] = next_s + cur;
                        b_table[next_hash_l].push(next_s + cur);
                        break;
                    }
                }

                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(buf, s_candidate - cur) {
                    // A 4-byte match; a long candidate at s+1 may be longer.
                    l = FastGen::matchlen(s + 4, t + 4, src) + 4;
                    let l_candidate = b_table[next_hash_l];
                    // Store the next match.
                    table[next_hash_s] = next_s + cur;
                    b_table[next_hash_l].push(next_s + cur);

                    let t2 = l_candidate.cur - cur;
                    if next_s - t2 < MAX_MATCH_OFFSET {
                        if load32(buf, l_candidate.cur - cur) == next as u32 {
                            let ml = FastGen::matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                break;
                            }
                        }
                        // The previous long candidate may do too.
                        let t2 = l_candidate.prev - cur;
                        if next_s - t2 < MAX_MATCH_OFFSET
                            && load32(buf, l_candidate.prev - cur) == next as u32
                        {
                            let ml = FastGen::matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                break;
                            }
                        }
                    }
                    break;
                }
                cv = next;
            }

            if l == 0 {
                // Extend the 4-byte match as long as possible.
                l = FastGen::matchlen_long(s + 4, t + 4, src) + 4;
            } else if l == MAX_MATCH_LENGTH as i32 {
                l += FastGen::matchlen_long(s + l, t + l, src);
            }

            // Try to locate a better match by checking the end of the best
            // match, allowing 2 bytes at the start to mismatch (they are
            // picked up again by the backward extension).
            let s_at = s + l;
            if l < 30 && s_at < s_limit {
                const SKIP_BEGINNING: i32 = 2;
                let e_long = b_table[hl(load64(buf, s_at))].cur;
                let t2 = e_long - cur - l + SKIP_BEGINNING;
                let s2 = s + SKIP_BEGINNING;
                let off = s2 - t2;
                if t2 >= 0 && off < MAX_MATCH_OFFSET && off > 0 {
                    let l2 = FastGen::matchlen_long(s2, t2, src);
                    if l2 > l {
                        t = t2;
                        l = l2;
                        s = s2;
                    }
                }
            }

            (s, _, l) = emit_match(dst, src, next_emit, s, t, l);
            (s, next_emit) = past_match(s, l, next_s);
            if s >= s_limit {
                emit_remainder(dst, src, next_emit);
                return;
            }

            // Store every 3rd hash in-between.
            const HASH_EVERY: i32 = 3;
            let mut i = s - l + 1;
            if i < s - 1 {
                let mut cv = load64(buf, i);
                let mut t = i + cur;
                table[hs(cv)] = t;
                b_table[hl(cv)].push(t);
                // A long entry at i+1.
                cv >>= 8;
                t += 1;
                b_table[hl(cv)].push(t);
                // Only enough bits left for a short entry at i+2.
                cv >>= 8;
                t += 1;
                table[hs(cv)] = t;
                // Skip one, or we risk hitting s.
                i += 4;
                while i < s - 1 {
                    let cv = load64(buf, i);
                    let t = i + cur;
                    b_table[hl(cv)].push(t);
                    table[hs(cv >> 8)] = t + 1;
                    i += HASH_EVERY;
                }
            }

            // Update the table at s-1 and continue at s.
            let x = load64(buf, s - 1);
            let o = cur + s - 1;
            table[hs(x)] = o;
            b_table[hl(x)].push(o);
            cv = x >> 8;
        }
    }
}
