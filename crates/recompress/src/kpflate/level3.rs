// Port of klauspost/compress v1.15.12 `flate/level3.go`; it follows the Go
// design closely (same hashing, skipping and table updates, in the same order).
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Modified for deflate by Klaus Post (c) 2015.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Level 3: a 16-bit table keeping two candidates per hash.

use super::fast::{
    EntryPrev, FastGen, MAX_MATCH_OFFSET, Tables, emit_match, emit_remainder, hash_len, load32, load64,
    match_len, past_match, rebase_entry,
};
use super::token::Tokens;

const TABLE_BITS: u32 = 16;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const HASH_BYTES: u32 = 5;

/// The newest and the previous position with one hash.
/// Level 3 rebases both candidates of an entry independently (level3.go).
struct Independent<'a>(&'a mut [EntryPrev]);

impl Tables for Independent<'_> {
    fn clear(&mut self) {
        self.0.fill(EntryPrev::default());
    }

    fn rebase(&mut self, min_off: i32, cur: i32) {
        for v in self.0.iter_mut() {
            v.cur = rebase_entry(v.cur, min_off, cur);
            v.prev = rebase_entry(v.prev, min_off, cur);
        }
    }
}

pub(crate) struct FastEncL3 {
    pub hist: FastGen,
    table: Box<[EntryPrev; TABLE_SIZE]>,
}

#[inline(always)]
fn h5(u: u64) -> usize {
    hash_len(u, TABLE_BITS, HASH_BYTES)
}

impl FastEncL3 {
    pub fn new() -> Box<FastEncL3> {
        Box::new(FastEncL3 {
            hist: FastGen::new(),
            table: Box::new([EntryPrev::default(); TABLE_SIZE]),
        })
    }

    pub fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const SKIP_LOG: i32 = 7;
        let Some((buf, src, cur, s_limit, mut s)) =
            self.hist.begin(&mut Independent(&mut self.table[..]), dst, src)
        else {
            return;
        };
        let table = &mut *self.table;
        let (mut next_emit, mut cv) = (s, load64(buf, s));

        'outer: loop {
            let mut next_s = s;
            let mut candidate;
            loop {
                let next_hash = h5(cv);
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    break 'outer;
                }
                let candidates = table[next_hash];
                let now = load64(buf, next_s);
                // Offsets below this are out of reach until s + 4.
                let min_offset = cur + s - (MAX_MATCH_OFFSET - 4);
                table[next_hash] = EntryPrev {
                    prev: candidates.cur,
                    cur: s + cur,
                };

                candidate = candidates.cur;
                if candidate < min_offset {
                    // The previous entry is older still: nothing here.
                    cv = now;
                    continue;
                }
                if cv as u32 == load32(buf, candidate - cur) {
                    if candidates.prev < min_offset || cv as u32 != load32(buf, candidates.prev - cur) {
                        break;
                    }
                    // Both match: take the longer.
                    let o1 = s - (candidate - cur);
                    let o2 = s - (candidates.prev - cur);
                    let a = &src[(s + 4) as usize..];
                    let l1 = match_len(a, &src[(s - o1 + 4) as usize..]);
                    let l2 = match_len(a, &src[(s - o2 + 4) as usize..]);
                    if l2 > l1 {
                        candidate = candidates.prev;
                    }
                    break;
                }
                // Only the previous entry can still match.
                candidate = candidates.prev;
                if candidate > min_offset && cv as u32 == load32(buf, candidate - cur) {
                    break;
                }
                cv = now;
            }

            loop {
                let mut t = candidate - cur;
                let mut l = FastGen::matchlen_long(s + 4, t + 4, src) + 4;
                (s, t, l) = emit_match(dst, src, next_emit, s, t, l);
                (s, next_emit) = past_match(s, l, next_s);
                if s >= s_limit {
                    t += l;
                    // Index the first pair after the match end.
                    if ((t + 8) as usize) < src.len() && t > 0 {
                        let cv = load64(buf, t);
                        table[h5(cv)].push(cur + t);
                    }
                    break 'outer;
                }
                // Store every 5th hash in-between.
                let mut i = s - l + 2;
                while i < s - 5 {
                    table[h5(load64(buf, i))].push(cur + i);
                    i += 6;
                }
                // Update the table at s-2 to s, and check s for a match.
                let mut x = load64(buf, s - 2);
                table[h5(x)].push(cur + s - 2);
                x >>= 8;
                table[h5(x)].push(cur + s - 1);
                x >>= 8;
                let curr_hash = h5(x);
                let candidates = table[curr_hash];
                cv = x;
                table[curr_hash] = EntryPrev {
                    prev: candidates.cur,
                    cur: s + cur,
                };

                candidate = candidates.cur;
                let min_offset = cur + s - (MAX_MATCH_OFFSET - 4);
                if candidate > min_offset {
                    if cv as u32 == load32(buf, candidate - cur) {
                        continue;
                    }
                    candidate = candidates.prev;
                    if candidate > min_offset && cv as u32 == load32(buf, candidate - cur) {
                        continue;
                    }
                }
                cv = x >> 8;
                s += 1;
                break;
            }
        }
        emit_remainder(dst, src, next_emit);
    }
}
