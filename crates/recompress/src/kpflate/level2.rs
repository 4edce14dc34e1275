// Port of klauspost/compress v1.15.12 `flate/level2.go`; it follows the Go
// design closely (same hashing, skipping and table updates, in the same order).
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Modified for deflate by Klaus Post (c) 2015.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Level 2: like level 1 with a 17-bit table and more positions indexed
//! inside matches.

use super::fast::{
    FastGen, MAX_MATCH_OFFSET, emit_match, emit_remainder, hash_len, load32, load64, past_match,
};
use super::token::Tokens;

const B_TABLE_BITS: u32 = 17;
const B_TABLE_SIZE: usize = 1 << B_TABLE_BITS;
const HASH_BYTES: u32 = 5;

pub(crate) struct FastEncL2 {
    pub hist: FastGen,
    table: Box<[i32; B_TABLE_SIZE]>,
}

#[inline(always)]
fn h5(u: u64) -> usize {
    hash_len(u, B_TABLE_BITS, HASH_BYTES)
}

impl FastEncL2 {
    pub fn new() -> Box<FastEncL2> {
        Box::new(FastEncL2 {
            hist: FastGen::new(),
            table: Box::new([0; B_TABLE_SIZE]),
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
            let mut next_s = s;
            let mut candidate;
            loop {
                let mut next_hash = h5(cv);
                s = next_s;
                next_s = s + DO_EVERY + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    break 'outer;
                }
                candidate = table[next_hash];
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
                    break;
                }
                cv = now;
            }

            loop {
                let t = candidate - cur;
                let mut l = FastGen::matchlen_long(s + 4, t + 4, src) + 4;
                (s, _, l) = emit_match(dst, src, next_emit, s, t, l);
                (s, next_emit) = past_match(s, l, next_s);
                if s >= s_limit {
                    if ((s + l + 8) as usize) < src.len() {
                        let cv = load64(buf, s);
                        table[h5(cv)] = s + cur;
                    }
                    break 'outer;
                }
                // Store every second hash in-between, but offset by 1.
                let mut i = s - l + 2;
                while i < s - 5 {
                    let mut x = load64(buf, i);
                    table[h5(x)] = cur + i;
                    x >>= 16;
                    table[h5(x)] = cur + i + 2;
                    x >>= 16;
                    table[h5(x)] = cur + i + 4;
                    i += 7;
                }
                // Update the table at s-2 to s, and check s for a match.
                let x = load64(buf, s - 2);
                let o = cur + s - 2;
                let prev_hash = h5(x);
                let prev_hash2 = h5(x >> 8);
                table[prev_hash] = o;
                table[prev_hash2] = o + 1;
                let curr_hash = h5(x >> 16);
                candidate = table[curr_hash];
                table[curr_hash] = o + 2;
                let offset = s - (candidate - cur);
                if offset > MAX_MATCH_OFFSET || (x >> 16) as u32 != load32(buf, candidate - cur) {
                    cv = x >> 24;
                    s += 1;
                    break;
                }
            }
        }
        emit_remainder(dst, src, next_emit);
    }
}
