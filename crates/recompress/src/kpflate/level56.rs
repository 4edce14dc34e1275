// Port of klauspost/compress v1.15.12 `flate/level5.go` and `flate/level6.go`; it
// follows the Go design closely (same hashing, skipping and table updates, in the same
// order).
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Modified for deflate by Klaus Post (c) 2015.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Levels 5 (also pgzip's and flate's default) and 6: a short table and a long table with
//! two candidates per hash, plus a search for a longer match ending where the current one
//! ends. Level 6 adds a repeat-offset check, denser indexing and both long candidates tried
//! at the end of each match. One loop, `L6` choosing at the points where Go's two differ;
//! monomorphised, each level runs its own loop.

use super::fast::{
    EntryPrev, FastGen, HistBuf, MAX_MATCH_OFFSET, TABLE_BITS, TABLE_SIZE, emit_match, emit_remainder,
    hash_len, hash7, load32, load64, past_match,
};
use super::token::Tokens;
use crate::deflate::tables::MAX_MATCH_LENGTH;

const HASH_SHORT_BYTES: u32 = 4;

pub(crate) struct FastEncL56<const L6: bool> {
    pub hist: FastGen,
    table: Box<[i32; TABLE_SIZE]>,
    b_table: Box<[EntryPrev; TABLE_SIZE]>,
}

pub(crate) type FastEncL5 = FastEncL56<false>;
pub(crate) type FastEncL6 = FastEncL56<true>;

#[inline(always)]
fn hs(u: u64) -> usize {
    hash_len(u, TABLE_BITS, HASH_SHORT_BYTES)
}

#[inline(always)]
fn hl(u: u64) -> usize {
    hash7(u, TABLE_BITS)
}

impl<const L6: bool> FastEncL56<L6> {
    pub fn new() -> Box<Self> {
        Box::new(FastEncL56 {
            hist: FastGen::new(),
            table: Box::new([0; TABLE_SIZE]),
            b_table: Box::new([EntryPrev::default(); TABLE_SIZE]),
        })
    }

    pub fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        let skip_log: i32 = if L6 { 7 } else { 6 };
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
        // Level 6: distance of the last match; must be > 0 and within range.
        let mut repeat: i32 = 1;

        loop {
            let mut next_s = s;
            let mut l: i32 = 0;
            let mut t;
            loop {
                let mut next_hash_s = hs(cv);
                let mut next_hash_l = hl(cv);
                s = next_s;
                next_s = s + DO_EVERY + ((s - next_emit) >> skip_log);
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
                        // The long candidate matches at least 4 bytes: store the next
                        // position, and take the previous long one if it is longer.
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
                    // A 4-byte match; a long candidate at s+1 (read before storing it)
                    // may be longer.
                    l = FastGen::matchlen(s + 4, t + 4, src) + 4;
                    let l_candidate = b_table[next_hash_l];
                    table[next_hash_s] = next_s + cur;
                    b_table[next_hash_l].push(next_s + cur);

                    if L6 {
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
                    }

                    let t2 = l_candidate.cur - cur;
                    if next_s - t2 < MAX_MATCH_OFFSET {
                        if load32(buf, l_candidate.cur - cur) == next as u32 {
                            let ml = FastGen::matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                // Level 6 checks the previous one as well.
                                if !L6 {
                                    break;
                                }
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
                // Extend the 4-byte match as long as possible.
                l = FastGen::matchlen_long(s + 4, t + 4, src) + 4;
            } else if l == MAX_MATCH_LENGTH as i32 {
                l += FastGen::matchlen_long(s + l, t + l, src);
            }

            // Try to locate a better match by checking the end of the best match, allowing
            // 2 bytes at the start to mismatch (they are picked up again by the backward
            // extension): level 5 for short matches with the newest long candidate, level
            // 6 always and with both.
            let s_at = s + l;
            if (L6 || l < 30) && s_at < s_limit {
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
                    if L6 {
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
            }

            (s, t, l) = emit_match(dst, src, next_emit, s, t, l);
            repeat = s - t;
            (s, next_emit) = past_match(s, l, next_s);

            if s >= s_limit {
                if L6 {
                    // Index after the match end.
                    let mut i = next_s + 1;
                    while i < src.len() as i32 - 8 {
                        let cv = load64(buf, i);
                        table[hs(cv)] = i + cur;
                        b_table[hl(cv)].push(i + cur);
                        i += 2;
                    }
                }
                emit_remainder(dst, src, next_emit);
                return;
            }

            let from = if L6 { next_s + 1 } else { s - l + 1 };
            index_between::<L6>(table, b_table, buf, cur, from, s);
            if L6 {
                // Continue at s.
                cv = load64(buf, s);
            } else {
                // Update the table at s-1 and continue at s.
                let x = load64(buf, s - 1);
                let o = cur + s - 1;
                table[hs(x)] = o;
                b_table[hl(x)].push(o);
                cv = x >> 8;
            }
        }
    }
}

/// The hashes stored between a match's start and its end `s`: level 5 every 3rd from
/// `from` = s - l + 1, level 6 every long one and every second short one from `from` =
/// `next_s` + 1.
#[inline(always)]
fn index_between<const L6: bool>(
    table: &mut [i32],
    b_table: &mut [EntryPrev],
    buf: &HistBuf,
    cur: i32,
    mut i: i32,
    s: i32,
) {
    if L6 {
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
        return;
    }
    const HASH_EVERY: i32 = 3;
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
}
