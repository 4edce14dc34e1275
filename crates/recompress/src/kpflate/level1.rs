// Port of klauspost/compress v1.15.12 `flate/level1.go`; it follows the Go
// design closely (same hashing, skipping and table updates, in the same order).
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Modified for deflate by Klaus Post (c) 2015.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Level 1: one 15-bit table of 5-byte hashes, Snappy-style skipping.

use super::fast::{
    FastGen, MAX_MATCH_OFFSET, TABLE_BITS, TABLE_SIZE, emit_match, emit_remainder, hash_len, load32, load64,
    past_match,
};
use super::token::Tokens;

const HASH_BYTES: u32 = 5;

pub(crate) struct FastEncL1 {
    pub hist: FastGen,
    table: Box<[i32; TABLE_SIZE]>,
}

#[inline(always)]
fn h5(u: u64) -> usize {
    hash_len(u, TABLE_BITS, HASH_BYTES)
}

impl FastEncL1 {
    pub fn new() -> Box<FastEncL1> {
        Box::new(FastEncL1 {
            hist: FastGen::new(),
            table: Box::new([0; TABLE_SIZE]),
        })
    }

    pub fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const SKIP_LOG: i32 = 5;
        const DO_EVERY: i32 = 2;
        let Some((buf, src, cur, s_limit, mut s)) = self.hist.begin(&mut self.table[..], dst, src) else {
            return;
        };
        let table = &mut *self.table;
        let (mut next_emit, mut cv) = (s, load64(buf, s));

        'outer: loop {
            let mut next_s;
            let mut candidate;
            loop {
                let mut next_hash = h5(cv);
                candidate = table[next_hash];
                next_s = s + DO_EVERY + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    break 'outer;
                }
                let mut now = load64(buf, next_s);
                table[next_hash] = s + cur;
                next_hash = h5(now);
                let offset = s - (candidate - cur);
                if offset < MAX_MATCH_OFFSET && cv as u32 == load32(buf, candidate - cur) {
                    table[next_hash] = next_s + cur;
                    break;
                }
                // Do one right away...
                cv = now;
                s = next_s;
                next_s += 1;
                candidate = table[next_hash];
                now >>= 8;
                table[next_hash] = s + cur;
                let offset = s - (candidate - cur);
                if offset < MAX_MATCH_OFFSET && cv as u32 == load32(buf, candidate - cur) {
                    table[next_hash] = next_s + cur;
                    break;
                }
                cv = now;
                s = next_s;
            }

            // A 4-byte match at s: extend it, emit, and look for another one
            // right after it.
            loop {
                let t = candidate - cur;
                let mut l = FastGen::matchlen_long(s + 4, t + 4, src) + 4;
                (s, _, l) = emit_match(dst, src, next_emit, s, t, l);
                (s, next_emit) = past_match(s, l, next_s);
                if s >= s_limit {
                    // Index the first pair after the match end.
                    if ((s + l + 8) as usize) < src.len() {
                        let cv = load64(buf, s);
                        table[h5(cv)] = s + cur;
                    }
                    break 'outer;
                }
                // Update the table at s-2 and s, and check s for a match.
                let mut x = load64(buf, s - 2);
                let o = cur + s - 2;
                table[h5(x)] = o;
                x >>= 16;
                let curr_hash = h5(x);
                candidate = table[curr_hash];
                table[curr_hash] = o + 2;
                let offset = s - (candidate - cur);
                if offset > MAX_MATCH_OFFSET || x as u32 != load32(buf, candidate - cur) {
                    cv = x >> 8;
                    s += 1;
                    break;
                }
            }
        }
        emit_remainder(dst, src, next_emit);
    }
}
