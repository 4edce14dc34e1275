// Port of the levels 7-9 part of klauspost/compress v1.15.12
// `flate/deflate.go` (`fillDeflate`, `fillWindow`, `findMatch`,
// `deflateLazy`); it follows the Go design closely.
//
// Copyright (c) 2009 The Go Authors. All rights reserved.
// Copyright (c) 2015 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Levels 7–9: hash chains over a 64 KiB window with lazy matching.
//!
//! Level 9 (chain > 100) weighs candidate matches by the bits their bytes
//! would cost as literals, with a literal Huffman table rebuilt from the
//! unprocessed window on each step.

use super::bit_writer::HuffmanBitWriter;
use super::fast::match_len;
use super::token::Tokens;
use super::variant::Variant;
use crate::deflate::huffman::{HuffmanEncoder, KlauspostOrder};
use crate::deflate::tables::{LENGTH_CODES, LENGTH_EXTRA_BITS, OFFSET_EXTRA_BITS, offset_code};

const WINDOW_SIZE: usize = 1 << 15;
const WINDOW_MASK: usize = WINDOW_SIZE - 1;
const MIN_MATCH_LENGTH: usize = 4;
const MAX_MATCH_LENGTH: usize = 258;
const MIN_OFFSET_SIZE: usize = 1;
/// Tokens per block for these levels.
const MAX_FLATE_BLOCK_TOKENS: usize = 1 << 15;
const HASH_BITS: u32 = 17;
const HASH_SIZE: usize = 1 << HASH_BITS;
const HASH_MASK: u32 = (1 << HASH_BITS) - 1;
const MAX_HASH_OFFSET: i64 = 1 << 28;
const PRIME4BYTES: u32 = 2654435761;

/// Go's `compressionLevel` for 7–9.
#[derive(Clone, Copy)]
struct Params {
    lazy: usize,
    nice: usize,
    chain: usize,
}

fn params(level: i32) -> Params {
    match level {
        7 => Params {
            lazy: 12,
            nice: 16,
            chain: 24,
        },
        8 => Params {
            lazy: 30,
            nice: 40,
            chain: 64,
        },
        _ => Params {
            lazy: 258,
            nice: 258,
            chain: 1024,
        },
    }
}

#[inline(always)]
fn hash4u(u: u32, h: u32) -> u32 {
    u.wrapping_mul(PRIME4BYTES) >> (32 - h)
}

#[inline(always)]
fn hash4(b: &[u8]) -> usize {
    hash4u(u32::from_le_bytes(b[..4].try_into().expect("4 bytes")), HASH_BITS) as usize
}

/// Hashes of every 4-byte position of `b` into `dst`.
fn bulk_hash4(b: &[u8], dst: &mut [u32]) {
    if b.len() < 4 {
        return;
    }
    let mut hb = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
    dst[0] = hash4u(hb, HASH_BITS);
    for i in 1..b.len() - 3 {
        hb = (hb >> 8) | (b[i + 3] as u32) << 24;
        dst[i] = hash4u(hb, HASH_BITS);
    }
}

pub(crate) struct Lazy {
    params: Params,
    variant: Variant,
    window: Box<[u8]>,
    pub window_end: usize,
    /// Window index where the current tokens start; `i32::MAX` once the
    /// window slid past it.
    block_start: usize,
    /// `window[index - 1]` is still to be emitted.
    byte_available: bool,
    length: usize,
    offset: usize,
    /// `window_end - 3`; negative for a nearly empty window, as in Go.
    max_insert_index: i64,
    chain_head: i64,
    hash_offset: i64,
    /// Literals since the last match; wraps like Go's uint16.
    ii: u16,
    index: usize,
    hash_match: [u32; MAX_MATCH_LENGTH + MIN_MATCH_LENGTH],
    hash_head: Box<[u32]>,
    hash_prev: Box<[u32]>,
    /// Literal costs for level 9's match choice.
    h: Option<HuffmanEncoder<KlauspostOrder>>,
}

impl Lazy {
    pub fn new(level: i32, variant: Variant) -> Box<Lazy> {
        let params = params(level);
        Box::new(Lazy {
            params,
            variant,
            window: vec![0; 2 * WINDOW_SIZE].into_boxed_slice(),
            window_end: 0,
            block_start: 0,
            byte_available: false,
            length: MIN_MATCH_LENGTH - 1,
            offset: 0,
            max_insert_index: 0,
            chain_head: -1,
            hash_offset: 1,
            ii: 0,
            index: 0,
            hash_match: [0; MAX_MATCH_LENGTH + MIN_MATCH_LENGTH],
            hash_head: vec![0; HASH_SIZE].into_boxed_slice(),
            hash_prev: vec![0; WINDOW_SIZE].into_boxed_slice(),
            h: None,
        })
    }

    pub fn window_full(&self) -> bool {
        self.window_end == self.window.len()
    }

    /// Moves the hash chain base, as 256 MiB of one stream would.
    #[cfg(test)]
    pub(crate) fn force_hash_offset(&mut self, v: i64) {
        self.hash_offset = v;
    }

    pub fn reset(&mut self) {
        self.chain_head = -1;
        self.hash_head.fill(0);
        self.hash_prev.fill(0);
        self.hash_offset = 1;
        self.index = 0;
        self.window_end = 0;
        self.block_start = 0;
        self.byte_available = false;
        self.length = MIN_MATCH_LENGTH - 1;
        self.offset = 0;
        self.ii = 0;
        self.max_insert_index = 0;
    }

    /// Go's `fillDeflate`: slides the window down by 32 KiB once the index
    /// nears its end, then copies in as much of `b` as fits.
    pub fn fill(&mut self, b: &[u8]) -> usize {
        if self.index >= 2 * WINDOW_SIZE - (MIN_MATCH_LENGTH + MAX_MATCH_LENGTH) {
            self.window.copy_within(WINDOW_SIZE.., 0);
            self.index -= WINDOW_SIZE;
            self.window_end -= WINDOW_SIZE;
            self.block_start = if self.block_start >= WINDOW_SIZE {
                self.block_start - WINDOW_SIZE
            } else {
                i32::MAX as usize
            };
            self.hash_offset += WINDOW_SIZE as i64;
            if self.hash_offset > MAX_HASH_OFFSET {
                self.rebase_hashes();
            }
        }
        let n = b.len().min(self.window.len() - self.window_end);
        self.window[self.window_end..self.window_end + n].copy_from_slice(&b[..n]);
        self.window_end += n;
        n
    }

    /// Brings `hash_offset` back to 1, dropping chain entries that fall off.
    fn rebase_hashes(&mut self) {
        let delta = self.hash_offset - 1;
        self.hash_offset -= delta;
        self.chain_head -= delta;
        for v in self.hash_prev.iter_mut().chain(self.hash_head.iter_mut()) {
            *v = if *v as i64 > delta {
                (*v as i64 - delta) as u32
            } else {
                0
            };
        }
    }

    /// Go's `fillWindow`: loads a dictionary (its last 32 KiB) and hashes it.
    pub fn fill_window(&mut self, b: &[u8]) {
        let b = &b[b.len().saturating_sub(WINDOW_SIZE)..];
        let n = b.len().min(self.window.len() - self.window_end);
        self.window[self.window_end..self.window_end + n].copy_from_slice(&b[..n]);
        // Hash 256 positions at a time (Go's cache-friendly batching); the
        // window start, not window_end, is where Go hashes from.
        let loops = (n + 256 - MIN_MATCH_LENGTH) / 256;
        for j in 0..loops {
            let start = j * 256;
            let end = (start + 256 + MIN_MATCH_LENGTH - 1).min(n);
            self.insert_hashes(start, end);
        }
        self.window_end += n;
        if self.variant.dictionary_moves_block_start() {
            self.block_start = self.window_end;
        }
        self.index = n;
    }

    /// Inserts the hashes of positions `start..end - 3` into the chains.
    fn insert_hashes(&mut self, start: usize, end: usize) {
        let tocheck = &self.window[start..end];
        if tocheck.len() < MIN_MATCH_LENGTH {
            return;
        }
        let dst_size = tocheck.len() - MIN_MATCH_LENGTH + 1;
        bulk_hash4(tocheck, &mut self.hash_match[..dst_size]);
        for (i, &val) in self.hash_match[..dst_size].iter().enumerate() {
            let di = i + start;
            let new_h = (val & HASH_MASK) as usize;
            self.hash_prev[di & WINDOW_MASK] = self.hash_head[new_h];
            self.hash_head[new_h] = (di as i64 + self.hash_offset) as u32;
        }
    }

    /// Inserts position `index` into its chain and remembers the old head.
    #[inline(always)]
    fn insert_one(&mut self, index: usize) {
        let hash = hash4(&self.window[index..]);
        let ch = self.hash_head[hash];
        self.chain_head = ch as i64;
        self.hash_prev[index & WINDOW_MASK] = ch;
        self.hash_head[hash] = (index as i64 + self.hash_offset) as u32;
    }

    /// Go's `findMatch`: the best match at `pos` along its hash chain.
    fn find_match(&self, pos: usize, prev_head: i64, lookahead: usize) -> Option<(usize, usize)> {
        let min_match_look = MAX_MATCH_LENGTH.min(lookahead);
        let win = &self.window[..pos + min_match_look];
        // Quit at a match that is at least nice long.
        let nice = (win.len() - pos).min(self.params.nice);
        let mut tries = self.params.chain;
        let mut length = MIN_MATCH_LENGTH - 1;
        let mut w_end = win[pos + length];
        let w_pos = &win[pos..];
        let min_index = pos.saturating_sub(WINDOW_SIZE) as i64;
        let mut offset = 0;
        let mut found = false;
        // Some like it higher (CSV), some like it lower (JSON).
        let (mut c_gain, base_cost) = self.variant.gain_threshold_and_base_cost();
        let at_least_one_bit = self.variant.literal_cost_at_least_one_bit();
        let weigh = self.params.chain >= 100;
        let mut i = prev_head;
        while tries > 0 {
            let iu = i as usize;
            if w_end == win[iu + length] {
                let n = match_len(&win[iu..iu + min_match_look], w_pos);
                if n > length {
                    let better = if weigh {
                        let h = self.h.as_ref().expect("level 9 literal table");
                        let literal_bits = if at_least_one_bit {
                            h.bit_length_raw_at_least_one(&w_pos[..n])
                        } else {
                            h.bit_length_raw(&w_pos[..n])
                        };
                        let new_gain = literal_bits
                            - OFFSET_EXTRA_BITS[offset_code((pos - iu) as u32) as usize] as i64
                            - base_cost
                            - LENGTH_EXTRA_BITS[LENGTH_CODES[(n - 3) & 255] as usize] as i64;
                        if new_gain > c_gain {
                            c_gain = new_gain;
                            true
                        } else {
                            false
                        }
                    } else {
                        true
                    };
                    if better {
                        length = n;
                        offset = pos - iu;
                        found = true;
                        if n >= nice {
                            // Good enough: stop looking.
                            break;
                        }
                        w_end = win[pos + n];
                    }
                }
            }
            if i <= min_index {
                // hash_prev[i & WINDOW_MASK] has been overwritten already.
                break;
            }
            i = self.hash_prev[iu & WINDOW_MASK] as i64 - self.hash_offset;
            if i < min_index {
                break;
            }
            tries -= 1;
        }
        found.then_some((length, offset))
    }

    /// Writes the tokens so far as one block ending at window index `index`.
    fn write_block(&mut self, tokens: &mut Tokens, w: &mut HuffmanBitWriter, index: usize, sync: bool) {
        if index > 0 {
            let window = (self.block_start <= index).then(|| &self.window[self.block_start..index]);
            self.block_start = index;
            w.write_block_dynamic(tokens, false, window, sync);
        }
        tokens.reset();
    }

    /// Emits `window[index - 1]` as a literal, writing a block when full.
    #[inline(always)]
    fn emit_prev_literal(&mut self, tokens: &mut Tokens, w: &mut HuffmanBitWriter, sync: bool) {
        tokens.add_literal(self.window[self.index - 1]);
        if tokens.n == MAX_FLATE_BLOCK_TOKENS {
            self.write_block(tokens, w, self.index, sync);
        }
    }

    /// Go's `deflateLazy`: tokenises the window until less than a maximal
    /// match of lookahead remains (all of it when `sync`).
    pub fn step(&mut self, tokens: &mut Tokens, w: &mut HuffmanBitWriter, sync: bool) {
        if self.window_end - self.index < MIN_MATCH_LENGTH + MAX_MATCH_LENGTH && !sync {
            return;
        }
        if self.window_end != self.index && self.params.chain > 100 {
            let mut tmp = [0u16; 256];
            let end = if self.variant.level9_histogram_capped() {
                self.window_end.min(self.index + MAX_FLATE_BLOCK_TOKENS)
            } else {
                self.window_end
            };
            for &v in &self.window[self.index..end] {
                tmp[v as usize] = tmp[v as usize].wrapping_add(1);
            }
            self.h
                .get_or_insert_with(|| HuffmanEncoder::new(256))
                .generate(&tmp, 15);
        }
        self.max_insert_index = self.window_end as i64 - (MIN_MATCH_LENGTH as i64 - 1);

        loop {
            let lookahead = self.window_end - self.index;
            if lookahead < MIN_MATCH_LENGTH + MAX_MATCH_LENGTH {
                if !sync {
                    return;
                }
                if lookahead == 0 {
                    // Flush the current output block, if any.
                    if self.byte_available {
                        tokens.add_literal(self.window[self.index - 1]);
                        self.byte_available = false;
                    }
                    if tokens.n > 0 {
                        self.write_block(tokens, w, self.index, sync);
                    }
                    return;
                }
            }
            if (self.index as i64) < self.max_insert_index {
                self.insert_one(self.index);
            }
            let prev_length = self.length;
            let prev_offset = self.offset;
            self.length = MIN_MATCH_LENGTH - 1;
            self.offset = 0;
            let min_index = self.index.saturating_sub(WINDOW_SIZE) as i64;

            let head = self.chain_head - self.hash_offset;
            let search = head >= min_index && lookahead > prev_length && prev_length < self.params.lazy;
            if let Some((l, o)) = search
                .then(|| self.find_match(self.index, head, lookahead))
                .flatten()
            {
                self.length = l;
                self.offset = o;
            }

            if prev_length >= MIN_MATCH_LENGTH && self.length <= prev_length {
                self.emit_prev_match(tokens, w, sync, prev_length, prev_offset);
            } else {
                self.emit_literal_step(tokens, w, sync);
            }
        }
    }

    /// The previous position's match wins: look for a longer one ending at
    /// the same place, emit it and hash the bytes it covers.
    fn emit_prev_match(
        &mut self,
        tokens: &mut Tokens,
        w: &mut HuffmanBitWriter,
        sync: bool,
        prev_length: usize,
        prev_offset: usize,
    ) {
        let (prev_length, prev_offset) = if self.variant.lazy_end_check_extends_back() {
            self.longer_match_at_end(tokens, w, sync, prev_length, prev_offset)
        } else {
            self.longer_match_at_end_1_15(prev_length, prev_offset)
        };
        self.emit_match(tokens, w, sync, prev_length, prev_offset);
    }

    /// klauspost ≥ 1.18: hash the 4 bytes at the end of the previous match;
    /// a match ending there that is longer from 2 bytes in replaces it,
    /// extended back over those 2 bytes as far as they match; the bytes it
    /// does not cover are emitted as literals first.
    fn longer_match_at_end(
        &mut self,
        tokens: &mut Tokens,
        w: &mut HuffmanBitWriter,
        sync: bool,
        mut prev_length: usize,
        mut prev_offset: usize,
    ) -> (usize, usize) {
        const CHECK_OFF: usize = 2;
        if prev_length >= MAX_MATCH_LENGTH - CHECK_OFF {
            return (prev_length, prev_offset);
        }
        let lookahead = self.window_end - self.index;
        let min_index = self.index.saturating_sub(WINDOW_SIZE) as i64;
        let prev_index = self.index - 1;
        if ((prev_index + prev_length) as i64) >= self.max_insert_index {
            return (prev_length, prev_offset);
        }
        let end = prev_index + lookahead.min(MAX_MATCH_LENGTH + CHECK_OFF);
        let h = hash4(&self.window[prev_index + prev_length..]);
        let ch2 = self.hash_head[h] as i64 - self.hash_offset - prev_length as i64;
        if prev_index as i64 - ch2 == prev_offset as i64 || ch2 <= min_index + CHECK_OFF as i64 {
            return (prev_length, prev_offset);
        }
        let ch2 = ch2 as usize;
        let length = match_len(
            &self.window[prev_index + CHECK_OFF..end],
            &self.window[ch2 + CHECK_OFF..],
        );
        // A pure length metric works best here.
        if length <= prev_length {
            return (prev_length, prev_offset);
        }
        prev_length = length;
        prev_offset = prev_index - ch2;
        for i in (0..CHECK_OFF).rev() {
            if prev_length >= MAX_MATCH_LENGTH || self.window[prev_index + i] != self.window[ch2 + i] {
                // Emit the bytes before the match, which are owed.
                for j in 0..=i {
                    tokens.add_literal(self.window[prev_index + j]);
                    if tokens.n == MAX_FLATE_BLOCK_TOKENS {
                        // The block includes the current character.
                        self.write_block(tokens, w, self.index, sync);
                    }
                    self.index += 1;
                    if (self.index as i64) < self.max_insert_index {
                        self.insert_one(self.index);
                    }
                }
                break;
            }
            prev_length += 1;
        }
        (prev_length, prev_offset)
    }

    /// klauspost 1.15: a match found by hashing 2 bytes before the end of
    /// the previous one that is longer from where the previous one starts
    /// replaces it.
    fn longer_match_at_end_1_15(&self, mut prev_length: usize, mut prev_offset: usize) -> (usize, usize) {
        // checkOff must be >= 2 or it could test s.index itself.
        const CHECK_OFF: usize = 2;
        let lookahead = self.window_end - self.index;
        let min_index = self.index.saturating_sub(WINDOW_SIZE) as i64;
        let prev_index = self.index - 1;
        if ((prev_index + prev_length + CHECK_OFF) as i64) < self.max_insert_index {
            let end = prev_index + lookahead.min(MAX_MATCH_LENGTH);
            let idx = prev_index + prev_length - (4 - CHECK_OFF);
            let h = hash4(&self.window[idx..]);
            let ch2 =
                self.hash_head[h] as i64 - self.hash_offset - prev_length as i64 + (4 - CHECK_OFF) as i64;
            if ch2 > min_index {
                let length = match_len(&self.window[prev_index..end], &self.window[ch2 as usize..]);
                // A pure length metric works best here.
                if length > prev_length {
                    prev_length = length;
                    prev_offset = prev_index - ch2 as usize;
                }
            }
        }
        (prev_length, prev_offset)
    }

    /// Emits the match and hashes the positions it covers.
    fn emit_match(
        &mut self,
        tokens: &mut Tokens,
        w: &mut HuffmanBitWriter,
        sync: bool,
        prev_length: usize,
        prev_offset: usize,
    ) {
        tokens.add_match((prev_length - 3) as u32, (prev_offset - MIN_OFFSET_SIZE) as u32);

        // Insert the strings up to the end of the match; without enough
        // lookahead the last two are left out.
        let new_index = self.index + prev_length - 1;
        let max_ins = self.max_insert_index;
        let end = (new_index as i64).min(max_ins) + MIN_MATCH_LENGTH as i64 - 1;
        let start = (self.index as i64 + 1).min(max_ins);
        if end > start {
            self.insert_hashes(start as usize, end as usize);
        }
        self.index = new_index;
        self.byte_available = false;
        self.length = MIN_MATCH_LENGTH - 1;
        if tokens.n == MAX_FLATE_BLOCK_TOKENS {
            // The block includes the current character.
            self.write_block(tokens, w, self.index, sync);
        }
        self.ii = 0;
    }

    /// No match to emit: emit the pending literal (skipping ahead after a
    /// long run without matches) or make the current byte pending.
    fn emit_literal_step(&mut self, tokens: &mut Tokens, w: &mut HuffmanBitWriter, sync: bool) {
        if self.length >= MIN_MATCH_LENGTH {
            self.ii = 0;
        }
        if !self.byte_available {
            self.index += 1;
            self.byte_available = true;
            return;
        }
        self.ii = self.ii.wrapping_add(1);
        self.emit_prev_literal(tokens, w, sync);
        self.index += 1;

        // After a long run of literals, skip additional bytes.
        let over = self.ii as i64 - self.params.chain as i64;
        if over <= 0 {
            return;
        }
        let n = 1 + (over >> 6);
        for _ in 0..n {
            if self.index >= self.window_end - 1 {
                break;
            }
            self.emit_prev_literal(tokens, w, sync);
            if (self.index as i64) < self.max_insert_index {
                self.insert_one(self.index);
            }
            self.index += 1;
        }
        // Flush the last byte.
        tokens.add_literal(self.window[self.index - 1]);
        self.byte_available = false;
        if tokens.n == MAX_FLATE_BLOCK_TOKENS {
            self.write_block(tokens, w, self.index, sync);
        }
    }
}
