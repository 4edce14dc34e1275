// Port of klauspost/compress v1.15.12 `flate/huffman_bit_writer.go`; it
// follows the Go design closely (same block-type decisions, same table reuse
// heuristics, same bit order).
//
// Copyright (c) 2012 The Go Authors. All rights reserved.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Writes deflate blocks and decides, like klauspost, between stored, fixed
//! and dynamic Huffman blocks, and whether to keep the previous block's
//! dynamic table open ("reuse") instead of sending a new one.
//!
//! Reuse is why this writer has state between blocks: when `last_header > 0`
//! the previous dynamic block has not been ended yet (its EOB is "owed") and
//! the next tokens may continue it with the same codes.
//!
//! The bits go through the shared bit writer (`deflate::bits`), appended to the caller's
//! `Vec`.

use super::token::Tokens;
use crate::deflate::bits::{BitSink, histogram, write_literals, write_tokens};
use crate::deflate::header::{Codegen, HUFF_OFFSET_CODES, stored_size};
use crate::deflate::huffman::{
    FIXED_LITERAL_CODES, FIXED_OFFSET_CODES, HuffmanEncoder, KlauspostOrder, fixed_bit_length, hlen,
};
use crate::deflate::tables::{
    END_BLOCK_MARKER, LENGTH_EXTRA_BITS, LITERAL_COUNT, OFFSET_CODE_COUNT, OFFSET_EXTRA_BITS,
};

type Huffman = HuffmanEncoder<KlauspostOrder>;

const LENGTH_CODES_START: usize = 257;
/// Blocks with fewer tokens are also priced with the fixed tables.
const MAX_PREDEFINED_TOKENS: usize = 250;

/// The facts a block is priced with.
struct Pricing<'a> {
    input: &'a [u8],
    eof: bool,
    sync: bool,
    /// Stored size in bits, when the input fits one stored block.
    ssize: Option<i64>,
    /// Length and offset extra bits (0 when not needed for a decision).
    extra_bits: i64,
}

pub(crate) struct HuffmanBitWriter {
    pub sink: BitSink,
    /// The last dynamic table was built for literals only (Huffman-only
    /// block); it cannot be reused for matches.
    last_huff_man: bool,
    literal_encoding: Huffman,
    tmp_lit_encoding: Huffman,
    offset_encoding: Huffman,
    codegen: Codegen<KlauspostOrder>,
    /// Header size in bits of the open dynamic block, 0 when none is open.
    last_header: i64,
    /// Penalty (as a shift) added to the estimate of a new table.
    pub log_new_table_penalty: u32,
    /// Blocks left open declare only the codes they use (klauspost ≥ 1.20,
    /// [`Variant::open_blocks_trim_code_counts`](super::variant::Variant)).
    pub trim_open_block_counts: bool,
    literal_freq: [u16; LENGTH_CODES_START + 32],
    offset_freq: [u16; 32],
}

impl HuffmanBitWriter {
    pub fn new() -> HuffmanBitWriter {
        HuffmanBitWriter {
            sink: BitSink::default(),
            last_huff_man: false,
            literal_encoding: Huffman::new(LITERAL_COUNT),
            tmp_lit_encoding: Huffman::new(LITERAL_COUNT),
            offset_encoding: Huffman::new(OFFSET_CODE_COUNT),
            codegen: Codegen::new(),
            last_header: 0,
            log_new_table_penalty: 0,
            trim_open_block_counts: false,
            literal_freq: [0; LENGTH_CODES_START + 32],
            offset_freq: [0; 32],
        }
    }

    /// Forgets pending bits and any open table (Go's `reset`); the output
    /// buffer is the caller's business.
    pub fn reset(&mut self) {
        self.sink.reset();
        self.last_header = 0;
        self.last_huff_man = false;
    }

    /// Ends an open dynamic block, if any, with its EOB.
    fn pay_owed_eob(&mut self) {
        if self.last_header > 0 {
            self.sink
                .write_code(self.literal_encoding.codes[END_BLOCK_MARKER]);
            self.last_header = 0;
        }
    }

    fn can_reuse(&self, t: &Tokens) -> bool {
        let off = &self.offset_encoding.codes;
        if t.off_hist[..OFFSET_CODE_COUNT]
            .iter()
            .zip(off)
            .any(|(&v, &c)| v != 0 && c == 0)
        {
            return false;
        }
        let lit = &self.literal_encoding.codes;
        if t.extra_hist[..LITERAL_COUNT - 256]
            .iter()
            .zip(&lit[256..LITERAL_COUNT])
            .any(|(&v, &c)| v != 0 && c == 0)
        {
            return false;
        }
        !t.lit_hist
            .iter()
            .zip(&lit[..256])
            .any(|(&v, &c)| v != 0 && c == 0)
    }

    /// Ends the open block and pads to a byte boundary.
    pub fn flush(&mut self) {
        self.pay_owed_eob();
        self.sink.flush_bits();
    }

    /// Appends raw bytes; the writer must be byte aligned.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.sink.write_bytes(bytes);
    }

    fn dynamic_reuse_size(&self) -> i64 {
        self.literal_encoding.bit_length(&self.literal_freq)
            + self.offset_encoding.bit_length(&self.offset_freq)
    }

    fn dynamic_size(&self, extra_bits: i64) -> (i64, usize) {
        let (header, num_codegens) = self.codegen.header_size();
        let size = header
            + self.literal_encoding.bit_length(&self.literal_freq)
            + self.offset_encoding.bit_length(&self.offset_freq)
            + extra_bits;
        (size, num_codegens)
    }

    /// Bits spent on length and offset extra bits.
    fn extra_bit_size(&self) -> i64 {
        let mut total = 0i64;
        for (i, &n) in self.literal_freq[257..LITERAL_COUNT].iter().enumerate() {
            total += n as i64 * LENGTH_EXTRA_BITS[i & 31] as i64;
        }
        for (i, &n) in self.offset_freq[..OFFSET_CODE_COUNT].iter().enumerate() {
            total += n as i64 * OFFSET_EXTRA_BITS[i & 31] as i64;
        }
        total
    }

    fn fixed_size(&self, extra_bits: i64) -> i64 {
        3 + fixed_bit_length(&FIXED_LITERAL_CODES, &self.literal_freq)
            + fixed_bit_length(&FIXED_OFFSET_CODES, &self.offset_freq)
            + extra_bits
    }

    /// A stored block header; an empty final block is sent as a 10-bit fixed
    /// block instead of 5 bytes.
    pub fn write_stored_header(&mut self, length: usize, is_eof: bool) {
        self.pay_owed_eob();
        if length == 0 && is_eof {
            self.write_fixed_header(is_eof);
            // EOB: 7 bits, value 0.
            self.sink.write_bits(0, 7);
            self.flush();
            return;
        }
        self.sink.write_bits(is_eof as u64, 3);
        self.flush();
        self.sink.write_bits(length as u64, 16);
        self.sink.write_bits(!(length as u16) as u64, 16);
    }

    fn write_fixed_header(&mut self, is_eof: bool) {
        self.pay_owed_eob();
        self.sink.write_bits(if is_eof { 3 } else { 2 }, 3);
    }

    fn write_stored(&mut self, input: &[u8], eof: bool) {
        self.write_stored_header(input.len(), eof);
        self.write_bytes(input);
    }

    fn write_fixed(&mut self, tokens: &mut Tokens, eof: bool, sync: bool) {
        self.write_fixed_header(eof);
        if !sync {
            tokens.add_eob();
        }
        write_tokens(
            &mut self.sink,
            tokens.slice(),
            &FIXED_LITERAL_CODES,
            &FIXED_OFFSET_CODES,
        );
    }

    /// Go's `writeBlockDynamic`: a dynamic block, or a continuation of the
    /// open one, or fixed / stored when those are estimated smaller. With
    /// `sync` (or `eof`) the block is closed; otherwise its EOB is owed.
    pub fn write_block_dynamic(&mut self, tokens: &mut Tokens, eof: bool, input: Option<&[u8]>, sync: bool) {
        let sync = sync || eof;
        if sync {
            tokens.add_eob();
        }
        // A literal-only table cannot be reused, and EOF must start fresh.
        if (self.last_huff_man || eof) && self.last_header > 0 {
            self.pay_owed_eob();
            self.last_huff_man = false;
        }
        if self.last_header > 0 && !self.can_reuse(tokens) {
            self.pay_owed_eob();
        }

        // Before 1.20, blocks left open declare all 286 + 30 codes, so that
        // reusing their table never meets a symbol it cannot send; from 1.20
        // every block counts an end-of-block code and declares what it uses.
        let (num_literals, num_offsets) = if self.trim_open_block_counts {
            self.index_tokens(tokens, false, true)
        } else {
            self.index_tokens(tokens, !sync, false)
        };
        let ssize = stored_size(input);
        let extra_bits = if ssize.is_some() || self.last_header > 0 {
            self.extra_bit_size()
        } else {
            0
        };
        let p = Pricing {
            input: input.unwrap_or_default(),
            eof,
            sync,
            ssize,
            extra_bits,
        };

        if self.last_header > 0 && self.reuse_or_replace(tokens, &p) {
            return;
        }
        if self.last_header == 0 && self.new_table(tokens, &p, num_literals, num_offsets) {
            return;
        }
        if sync {
            self.last_header = 0;
        }
        write_tokens(
            &mut self.sink,
            tokens.slice(),
            &self.literal_encoding.codes,
            &self.offset_encoding.codes,
        );
    }

    /// With a table open: decides between continuing it and a new table (by
    /// an estimate, the previous header standing in for the new one, plus a
    /// penalty since the estimate is optimistic), and writes the block as
    /// fixed or stored if that is smaller still. Returns whether the block
    /// was written.
    fn reuse_or_replace(&mut self, tokens: &mut Tokens, p: &Pricing) -> bool {
        let mut new_size = self.last_header + tokens.estimated_bits();
        new_size += hlen(self.literal_encoding.codes[END_BLOCK_MARKER]) as i64
            + (new_size >> self.log_new_table_penalty);
        let reuse_size = self.dynamic_reuse_size() + p.extra_bits;
        let size = if new_size < reuse_size {
            self.pay_owed_eob();
            new_size
        } else {
            reuse_size
        };
        if tokens.n < MAX_PREDEFINED_TOKENS && self.fixed_size(p.extra_bits) + 7 < size {
            self.write_stored_or_fixed(tokens, p, size);
            return true;
        }
        self.write_stored_if_no_larger(p, size)
    }

    /// The block stored if that is no larger than `size`, else with the fixed codes.
    fn write_stored_or_fixed(&mut self, tokens: &mut Tokens, p: &Pricing, size: i64) {
        if !self.write_stored_if_no_larger(p, size) {
            self.write_fixed(tokens, p.eof, p.sync);
        }
    }

    /// The block stored if that is no larger than `size`; true when it was.
    fn write_stored_if_no_larger(&mut self, p: &Pricing, size: i64) -> bool {
        if p.ssize.is_some_and(|ssize| ssize <= size) {
            self.write_stored(p.input, p.eof);
            return true;
        }
        false
    }

    /// Builds a new table and writes its header, unless fixed codes (small
    /// blocks) or a stored block are no larger. Returns whether the block
    /// was written completely.
    fn new_table(
        &mut self,
        tokens: &mut Tokens,
        p: &Pricing,
        num_literals: usize,
        num_offsets: usize,
    ) -> bool {
        self.literal_freq[END_BLOCK_MARKER] = 1;
        self.generate();
        self.codegen.build(
            num_literals,
            num_offsets,
            &self.literal_encoding.codes,
            &self.offset_encoding.codes,
        );
        let (size, num_codegens) = self.dynamic_size(p.extra_bits);
        if tokens.n < MAX_PREDEFINED_TOKENS {
            let pre_size = self.fixed_size(p.extra_bits);
            if pre_size <= size {
                self.write_stored_or_fixed(tokens, p, pre_size);
                return true;
            }
        }
        if self.write_stored_if_no_larger(p, size) {
            return true;
        }
        self.codegen
            .write_header(&mut self.sink, num_literals, num_offsets, num_codegens, p.eof);
        if !p.sync {
            self.last_header = self.codegen.header_size().0;
        }
        self.last_huff_man = false;
        false
    }

    /// Copies the token histograms into the writer and counts the used
    /// literal/length and offset symbols (all of them when `filled`), with
    /// one end-of-block code counted when `always_eob`. A block without
    /// matches still declares one offset code, so the offset tree can be
    /// coded.
    fn index_tokens(&mut self, t: &Tokens, filled: bool, always_eob: bool) -> (usize, usize) {
        self.literal_freq[..256].copy_from_slice(&t.lit_hist);
        self.literal_freq[256..288].copy_from_slice(&t.extra_hist);
        self.offset_freq = t.off_hist;
        if t.n == 0 {
            return (0, 0);
        }
        if filled {
            return (LITERAL_COUNT, OFFSET_CODE_COUNT);
        }
        if always_eob {
            self.literal_freq[END_BLOCK_MARKER] = 1;
        }
        let mut num_literals = self.literal_freq.len();
        while self.literal_freq[num_literals - 1] == 0 {
            num_literals -= 1;
        }
        let mut num_offsets = self.offset_freq.len();
        while num_offsets > 0 && self.offset_freq[num_offsets - 1] == 0 {
            num_offsets -= 1;
        }
        if num_offsets == 0 {
            self.offset_freq[0] = 1;
            num_offsets = 1;
        }
        (num_literals, num_offsets)
    }

    fn generate(&mut self) {
        self.literal_encoding
            .generate(&self.literal_freq[..LITERAL_COUNT], 15);
        self.offset_encoding
            .generate(&self.offset_freq[..OFFSET_CODE_COUNT], 15);
    }

    /// Go's `writeBlockHuff`: `input` as literals only, stored when that does
    /// not pay. Reuses the open table when it covers all used bytes and is
    /// estimated no worse than a new one.
    pub fn write_block_huff(&mut self, eof: bool, input: &[u8], sync: bool) {
        const NUM_LITERALS: usize = END_BLOCK_MARKER + 1;
        const NUM_OFFSETS: usize = 1;
        // Assume a header of about 70 bytes.
        const GUESS_HEADER_SIZE_BITS: i64 = 70 * 8;

        self.literal_freq = [0; LENGTH_CODES_START + 32];
        if !self.last_huff_man {
            self.offset_freq = [0; 32];
        }
        histogram(input, &mut self.literal_freq[..256]);
        let ssize = stored_size(Some(input));
        if ssize.is_some()
            && input.len() > 1024
            && looks_incompressible(&self.literal_freq[..256], input.len())
        {
            self.write_stored(input, eof);
            return;
        }
        self.literal_freq[END_BLOCK_MARKER] = 1;
        self.tmp_lit_encoding
            .generate(&self.literal_freq[..NUM_LITERALS], 15);
        let mut est_bits = self
            .tmp_lit_encoding
            .can_reuse_bits(&self.literal_freq[..NUM_LITERALS]);
        if est_bits < i32::MAX as i64 {
            est_bits += self.last_header;
            if self.last_header == 0 {
                est_bits += GUESS_HEADER_SIZE_BITS;
            }
            est_bits += est_bits >> self.log_new_table_penalty;
        }
        if ssize.is_some_and(|ssize| ssize <= est_bits) {
            self.write_stored(input, eof);
            return;
        }
        if self.last_header > 0 {
            let reuse_size = self.literal_encoding.can_reuse_bits(&self.literal_freq[..256]);
            if est_bits < reuse_size {
                self.pay_owed_eob();
            }
        }
        if self.last_header == 0 {
            std::mem::swap(&mut self.literal_encoding, &mut self.tmp_lit_encoding);
            self.codegen.build(
                NUM_LITERALS,
                NUM_OFFSETS,
                &self.literal_encoding.codes,
                &HUFF_OFFSET_CODES,
            );
            let (header_size, num_codegens) = self.codegen.header_size();
            self.codegen
                .write_header(&mut self.sink, NUM_LITERALS, NUM_OFFSETS, num_codegens, eof);
            self.last_huff_man = true;
            self.last_header = header_size;
        }
        write_literals(&mut self.sink, input, &self.literal_encoding.codes[..256]);
        if eof || sync {
            self.sink
                .write_code(self.literal_encoding.codes[END_BLOCK_MARKER]);
            self.last_header = 0;
            self.last_huff_man = false;
        }
    }
}

/// Go's quick test for incompressible input: the squared deviation of the
/// byte histogram from flat stays under `2 * len` (float64, in Go's order).
fn looks_incompressible(freq: &[u16], len: usize) -> bool {
    let mut abs = 0f64;
    let avg = len as f64 / 256.0;
    let max = (len * 2) as f64;
    for &v in freq {
        let diff = v as f64 - avg;
        abs += diff * diff;
        if abs > max {
            break;
        }
    }
    abs < max
}
