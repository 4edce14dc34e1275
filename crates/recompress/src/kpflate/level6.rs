// Port of klauspost/compress v1.15.12 `flate/level6.go`; it follows the Go
// design closely (same hashing, skipping and table updates, in the same order).
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Modified for deflate by Klaus Post (c) 2015.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Level 6: level 5 plus a repeat-offset check, denser indexing and both
//! long candidates tried at the end of each match.

use super::fast::{
    EntryPrev, FastGen, MAX_MATCH_OFFSET, TABLE_BITS, TABLE_SIZE, emit_match, emit_remainder, hash_len,
    hash7, load32, load64, past_match,
};
use super::token::Tokens;
use crate::deflate::tables::MAX_MATCH_LENGTH;

const HASH_SHORT_BYTES: u32 = 4;

pub(crate) struct FastEncL6 {
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

impl FastEncL6 {
    pub fn new() -> Box<FastEncL6> {
        Box::new(FastEncL6 {
            hist: FastGen::new(),
            table: Box::new([0; TABLE_SIZE]),
            b_table: Box::new([EntryPrev::default(); TABLE_SIZE]),
        })
    }

    pub fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const SKIP_LOG: i32 = 7;
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
        // Distance of the last match; must be > 0 and within range.
        let mut repeat: i32 = 1;

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
                        // The long candidate matches at least 4 bytes.
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
                    // The newest long entry failed; the previous may match.
                    t = l_candidate.prev - cur;
                    if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(buf, l_candidate.prev - cur) {
                        table[next_hash_s] = next_s + cur;
                        b_table[next_hash_l].push(next_s + cur);
                        break;
                    }
                }

                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(buf, s_candidate - cur) {
                    // A 4-byte match.
                    l = FastGen::matchlen(s + 4, t + 4, src) + 4;
                    // Long candidate at s+1, read before storing it.
                    let l_candidate = b_table[next_hash_l];
                    table[next_hash_s] = next_s + cur;
                    b_table[next_hash_l].push(next_s + cur);

                    // Check the repeat offset at s + 1.
                    const REP_OFF: i32 = 1;
                    let t2 = s - repeat + REP_OFF;
                    if load32(buf, t2) == (cv >> (8 * REP_OFF)) as u32 {
                        let ml = FastGen::matchlen(s + 4 + REP_OFF, t2 + 4, src) + 4;
                        if ml > l {
                            t = t2;
                            l = ml;
                            s += REP_OFF;
                            // Not worth checking more.
                            break;
                        }
                    }

                    // The long candidates at s+1 may be longer.
                    let t2 = l_candidate.cur - cur;
                    if next_s - t2 < MAX_MATCH_OFFSET {
                        if load32(buf, l_candidate.cur - cur) == next as u32 {
                            let ml = FastGen::matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                // Good, but check the previous one as well.
                            }
                        }
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
                l = FastGen::matchlen_long(s + 4, t + 4, src) + 4;
            } else if l == MAX_MATCH_LENGTH as i32 {
                l += FastGen::matchlen_long(s + l, t + l, src);
            }

            // Try both long candidates for a longer match ending where this
            // one ends, allowing 2 bytes at the start to mismatch.
            let s_at = s + l;
            if s_at < s_limit {
                const SKIP_BEGINNING: i32 = 2;
                let e_long = b_table[hl(load64(buf, s_at))];
                let s2 = s + SKIP_BEGINNING;
                let t2 = e_long.cur - cur - l + SKIP_BEGINNING;
                let off = s2 - t2;
                if off < MAX_MATCH_OFFSET {
                    if off > 0 && t2 >= 0 {
                        let l2 = FastGen::matchlen_long(s2, t2, src);
                        if l2 > l {
                            t = t2;
                            l = l2;
                            s = s2;
                        }
                    }
                    // Test the previous entry (with the possibly updated l).
                    let t2 = e_long.prev - cur - l + SKIP_BEGINNING;
                    let off = s2 - t2;
                    if off > 0 && off < MAX_MATCH_OFFSET && t2 >= 0 {
                        let l2 = FastGen::matchlen_long(s2, t2, src);
                        if l2 > l {
                            t = t2;
                            l = l2;
                            s = s2;
                        }
                    }
                }
            }

            (s, t, l) = emit_match(dst, src, next_emit, s, t, l);
            repeat = s - t;
            (s, next_emit) = past_match(s, l, next_s);

            if s >= s_limit {
                // Index after the match end.
                let mut i = next_s + 1;
                while i < src.len() as i32 - 8 {
                    let cv = load64(buf, i);
                    table[hs(cv)] = i + cur;
                    b_table[hl(cv)].push(i + cur);
                    i += 2;
                }
                emit_remainder(dst, src, next_emit);
                return;
            }

            // Store every long hash in-between and every second short.
            let mut i = next_s + 1;
            while i < s - 1 {
                let cv = load64(buf, i);
                let t = i + cur;
                let h_long = hl(cv);
                let h_long2 = hl(cv >> 8);
                table[hs(cv)] = t;
                b_table[h_long].push(t);
                b_table[h_long2].push(t + 1);
                i += 2;
            }

            // Continue at s.
            cv = load64(buf, s);
        }
    }
}
