// Port of klauspost/compress v1.15.12 `flate/stateless.go`; it follows the Go
// design closely (same 16-bit positions and wrapping, same block choices).
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Modified for deflate by Klaus Post (c) 2015.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! The stateless encoder (`StatelessDeflate`, `NewStatelessWriter`): every
//! call compresses its input on its own, in blocks of at most 32 KiB − 1
//! including an optional dictionary of up to 8 KiB.
//!
//! Unlike [`super::Encoder`], its output depends on how the input is split
//! across calls, because nothing is remembered between them.

use super::bit_writer::HuffmanBitWriter;
use super::fast::match_len;
use super::token::Tokens;
use crate::deflate::tables::BASE_MATCH_OFFSET;

/// `math.MaxInt16`: positions are 16-bit.
const MAX_STATELESS_BLOCK: usize = i16::MAX as usize;
/// The dictionary shares the block, so it is limited.
const MAX_STATELESS_DICT: usize = 8 << 10;
const SL_TABLE_BITS: u32 = 13;
const SL_TABLE_SIZE: usize = 1 << SL_TABLE_BITS;
const INPUT_MARGIN: i16 = 12 - 1;
const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN as usize;

/// klauspost's `StatelessDeflate(out, in, eof, dict)`: compresses `input`
/// on its own, as if `dict` (its last 8 KiB) preceded it, and appends the
/// bytes to `out`, ending with a sync marker unless `eof`.
pub fn stateless_deflate(input: &[u8], eof: bool, dict: &[u8], out: &mut Vec<u8>) {
    // Go takes a writer from a pool; reset() makes a used one equivalent
    // to a new one, whose table penalty is 0.
    let mut bw = HuffmanBitWriter::new();
    std::mem::swap(&mut bw.sink.out, out);
    deflate_blocks(&mut bw, input, eof, dict);
    std::mem::swap(&mut bw.sink.out, out);
}

fn deflate_blocks(bw: &mut HuffmanBitWriter, mut input: &[u8], eof: bool, dict: &[u8]) {
    if eof && input.is_empty() {
        // Just an EOF block.
        bw.write_stored_header(0, true);
        bw.flush();
        return;
    }
    let mut dst = Tokens::new();
    let mut dict = dict[dict.len().saturating_sub(MAX_STATELESS_DICT)..].to_vec();
    let mut combined = Vec::with_capacity(MAX_STATELESS_BLOCK);
    while !input.is_empty() {
        let take = input.len().min(MAX_STATELESS_BLOCK - dict.len());
        let (uncompressed, rest) = input.split_at(take);
        input = rest;
        combined.clear();
        combined.extend_from_slice(&dict);
        combined.extend_from_slice(uncompressed);
        stateless_enc(&mut dst, &combined, dict.len() as i16);
        let is_eof = eof && input.is_empty();
        if dst.n == 0 {
            bw.write_stored_header(uncompressed.len(), is_eof);
            bw.write_bytes(uncompressed);
        } else if dst.n > uncompressed.len() - (uncompressed.len() >> 4) {
            // Matches removed less than 1/16th: Huffman code the bytes.
            bw.write_block_huff(is_eof, uncompressed, input.is_empty());
        } else {
            bw.write_block_dynamic(&mut dst, is_eof, Some(uncompressed), input.is_empty());
        }
        if !input.is_empty() {
            // The next block's dictionary: the end of this one.
            dict = combined[combined.len() - MAX_STATELESS_DICT..].to_vec();
            dst.reset();
        }
    }
    if !eof {
        // Align; only a stored block can do that.
        bw.write_stored_header(0, false);
    }
    bw.flush();
}

/// Go's `NewStatelessWriter`: each `write` is one `StatelessDeflate` call
/// without a dictionary; `finish` writes the final empty block.
#[derive(Default)]
pub struct StatelessWriter {
    closed: bool,
}

impl StatelessWriter {
    pub fn new() -> StatelessWriter {
        StatelessWriter::default()
    }

    pub fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        stateless_deflate(input, false, &[], out);
    }

    /// Ends the stream; later calls do nothing, as in Go.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.closed {
            self.closed = true;
            stateless_deflate(&[], true, &[], out);
        }
    }
}

#[inline(always)]
fn hash_sl(u: u32) -> usize {
    (u.wrapping_mul(0x1e35_a7bd) >> (32 - SL_TABLE_BITS)) as usize
}

#[inline(always)]
fn load32(b: &[u8], i: i16) -> u32 {
    let i = i as usize;
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

#[inline(always)]
fn load64(b: &[u8], i: i16) -> u64 {
    let i = i as usize;
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// Go's `statelessEnc`: tokens of `src[start_at..]`, matching back into
/// `src[..start_at]` too. A fresh table reads as position 0 everywhere.
fn stateless_enc(dst: &mut Tokens, src: &[u8], start_at: i16) {
    const SKIP_LOG: i16 = 5;
    const DO_EVERY: i16 = 2;
    let mut table = [0i16; SL_TABLE_SIZE];
    if src.len() - (start_at as usize) < MIN_NON_LITERAL_BLOCK_SIZE {
        // The caller stores it, seeing no tokens.
        dst.n = 0;
        return;
    }
    // Index the dictionary.
    if start_at > 0 {
        let mut cv = load32(src, 0);
        for i in 0..start_at {
            table[hash_sl(cv)] = i;
            cv = (cv >> 8) | (src[i as usize + 4] as u32) << 24;
        }
    }
    let mut s = start_at + 1;
    let mut next_emit = start_at;
    let s_limit = (src.len() as i16).wrapping_sub(INPUT_MARGIN);
    let mut cv = load32(src, s);

    'outer: loop {
        let mut next_s;
        let mut candidate;
        loop {
            let mut next_hash = hash_sl(cv);
            candidate = table[next_hash];
            // 16-bit arithmetic: a wrap past 32767 ends the search.
            next_s = s.wrapping_add(DO_EVERY).wrapping_add((s - next_emit) >> SKIP_LOG);
            if next_s > s_limit || next_s <= 0 {
                break 'outer;
            }
            let mut now = load64(src, next_s);
            table[next_hash] = s;
            next_hash = hash_sl(now as u32);
            if cv == load32(src, candidate) {
                table[next_hash] = next_s;
                break;
            }
            // Do one right away...
            cv = now as u32;
            s = next_s;
            next_s += 1;
            candidate = table[next_hash];
            now >>= 8;
            table[next_hash] = s;
            if cv == load32(src, candidate) {
                table[next_hash] = next_s;
                break;
            }
            cv = now as u32;
            s = next_s;
        }

        loop {
            let mut t = candidate;
            let mut l = (match_len(&src[s as usize + 4..], &src[t as usize + 4..]) + 4) as i16;
            while t > 0 && s > next_emit && src[t as usize - 1] == src[s as usize - 1] {
                s -= 1;
                t -= 1;
                l += 1;
            }
            if next_emit < s {
                dst.add_literals(&src[next_emit as usize..s as usize]);
            }
            dst.add_match_long(l as i32, (s - t) as u32 - BASE_MATCH_OFFSET as u32);
            s += l;
            next_emit = s;
            if next_s >= s {
                s = next_s + 1;
            }
            if s >= s_limit {
                break 'outer;
            }
            // Update the table at s-2 and s, and check s for a match.
            let mut x = load64(src, s - 2);
            let o = s - 2;
            table[hash_sl(x as u32)] = o;
            x >>= 16;
            let curr_hash = hash_sl(x as u32);
            candidate = table[curr_hash];
            table[curr_hash] = o + 2;
            if x as u32 != load32(src, candidate) {
                cv = (x >> 8) as u32;
                s += 1;
                break;
            }
        }
    }
    if (next_emit as usize) < src.len() {
        // Nothing matched: leave no tokens, the caller stores the block.
        if dst.n == 0 {
            return;
        }
        dst.add_literals(&src[next_emit as usize..]);
    }
}
