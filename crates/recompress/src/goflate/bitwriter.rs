// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Port of Go's compress/flate/huffman_bit_writer.go (Go 1.19). The block
// type decisions, size estimates and bit buffering follow Go's design line by
// line, hence Go's license notice above.

//! Go's `huffmanBitWriter`: chooses stored/fixed/dynamic blocks and emits bits.
//!
//! Bits go through the shared bit writer (`deflate::bits`) into `out`, a `Vec` that the
//! encoder swaps in from the caller for the duration of one public call; the encoder then
//! hands over exactly what Go's 240-byte buffer would have released (`Encoder::with_out`).

use super::token::{END_BLOCK_MARKER, MATCH_TYPE, Token, length_code, token_length, token_offset_code};
use crate::deflate::bits::{BitSink, histogram, write_literals, write_tokens};
use crate::deflate::header::{Codegen, HUFF_OFFSET_CODES, stored_size};
use crate::deflate::huffman::{
    FIXED_LITERAL_CODES, FIXED_OFFSET_CODES, GoOrder, HCode, HuffmanEncoder, fixed_bit_length,
};
pub(super) use crate::deflate::tables::MAX_STORE_BLOCK_SIZE;
use crate::deflate::tables::{
    LENGTH_EXTRA_BITS, LITERAL_COUNT as MAX_NUM_LIT, OFFSET_CODE_COUNT, OFFSET_EXTRA_BITS,
};

type Huffman = HuffmanEncoder<GoOrder>;

const LENGTH_CODES_START: usize = 257;

/// Which of the two literal/offset code pairs a block is written with.
#[derive(PartialEq, Eq)]
enum Codes {
    Fixed,
    Dynamic,
}

pub(super) struct BitWriter {
    pub(super) sink: BitSink,
    /// Go counts in `int32`; a block holds at most 65535 symbols, so `u16` is exact.
    literal_freq: [u16; MAX_NUM_LIT],
    offset_freq: [u16; OFFSET_CODE_COUNT],
    literal_encoding: Huffman,
    offset_encoding: Huffman,
    codegen: Codegen<GoOrder>,
}

impl BitWriter {
    pub(super) fn new() -> Self {
        BitWriter {
            sink: BitSink::default(),
            literal_freq: [0; MAX_NUM_LIT],
            offset_freq: [0; OFFSET_CODE_COUNT],
            literal_encoding: Huffman::new(MAX_NUM_LIT),
            offset_encoding: Huffman::new(OFFSET_CODE_COUNT),
            codegen: Codegen::new(),
        }
    }

    /// Go's `reset`: pending bits are dropped (the encoder drops what Go had buffered).
    pub(super) fn reset(&mut self) {
        self.sink.reset();
    }

    /// `flush`.
    pub(super) fn flush(&mut self) {
        self.sink.flush_bits();
    }

    fn write_bits(&mut self, b: u64, nb: u32) {
        self.sink.write_bits(b, nb);
    }

    /// `writeStoredHeader`: block header, byte alignment, LEN and NLEN.
    pub(super) fn write_stored_header(&mut self, length: usize, is_eof: bool) {
        self.write_bits(u64::from(is_eof), 3);
        self.flush();
        self.write_bits(length as u64, 16);
        self.write_bits(u64::from(!(length as u16)), 16);
    }

    /// `writeStoredHeader` followed by the payload.
    pub(super) fn write_stored_block(&mut self, input: &[u8], is_eof: bool) {
        self.write_stored_header(input.len(), is_eof);
        self.sink.write_bytes(input);
    }

    fn write_fixed_header(&mut self, is_eof: bool) {
        self.write_bits(if is_eof { 3 } else { 2 }, 3);
    }

    /// `generateCodegen` and the code for it, over this writer's literal codes and its
    /// offset codes (or, for Huffman-only blocks, `huffOffset`'s).
    fn build_codegen(&mut self, num_literals: usize, num_offsets: usize, huff_offset: bool) {
        let off: &[HCode] = if huff_offset {
            &HUFF_OFFSET_CODES
        } else {
            &self.offset_encoding.codes
        };
        self.codegen
            .build(num_literals, num_offsets, &self.literal_encoding.codes, off);
    }

    /// `dynamicSize`: bits of a dynamic block (header included) and the
    /// number of code length codes to send.
    fn dynamic_size(&self, huff_offset: bool, extra_bits: i64) -> (i64, usize) {
        let (header, num_codegens) = self.codegen.header_size();
        let offsets = if huff_offset {
            fixed_bit_length(&HUFF_OFFSET_CODES, &self.offset_freq)
        } else {
            self.offset_encoding.bit_length(&self.offset_freq)
        };
        let size = header + self.literal_encoding.bit_length(&self.literal_freq) + offsets + extra_bits;
        (size, num_codegens)
    }

    /// `fixedSize`.
    fn fixed_size(&self, extra_bits: i64) -> i64 {
        3 + fixed_bit_length(&FIXED_LITERAL_CODES, &self.literal_freq)
            + fixed_bit_length(&FIXED_OFFSET_CODES, &self.offset_freq)
            + extra_bits
    }

    /// `writeDynamicHeader`.
    fn write_dynamic_header(
        &mut self,
        num_literals: usize,
        num_offsets: usize,
        num_codegens: usize,
        is_eof: bool,
    ) {
        self.codegen
            .write_header(&mut self.sink, num_literals, num_offsets, num_codegens, is_eof);
    }

    /// `writeBlock`: the smallest of stored, fixed and dynamic coding for the
    /// tokens (plus end-of-block). `input` is the block's raw data if still in
    /// the window (Go passes nil otherwise, which rules out a stored block).
    pub(super) fn write_block(&mut self, tokens: &[Token], eof: bool, input: Option<&[u8]>) {
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        let stored_size = stored_size(input);
        let mut extra_bits: i64 = 0;
        if stored_size.is_some() {
            // Extra bits are the same for fixed and dynamic, so Go only counts
            // them when comparing against a stored block.
            for code in LENGTH_CODES_START + 8..num_literals {
                extra_bits += i64::from(self.literal_freq[code])
                    * i64::from(LENGTH_EXTRA_BITS[code - LENGTH_CODES_START]);
            }
            let offsets = self.offset_freq.iter().zip(OFFSET_EXTRA_BITS);
            for (&freq, extra) in offsets.take(num_offsets).skip(4) {
                extra_bits += i64::from(freq) * i64::from(extra);
            }
        }
        let mut codes = Codes::Fixed;
        let mut size = self.fixed_size(extra_bits);

        self.build_codegen(num_literals, num_offsets, false);
        let (dynamic_size, num_codegens) = self.dynamic_size(false, extra_bits);
        if dynamic_size < size {
            size = dynamic_size;
            codes = Codes::Dynamic;
        }

        if let (Some(ss), Some(input)) = (stored_size, input) {
            if ss < size {
                self.write_stored_block(input, eof);
                return;
            }
        }
        if codes == Codes::Fixed {
            self.write_fixed_header(eof);
            self.write_tokens(tokens, &FIXED_LITERAL_CODES, &FIXED_OFFSET_CODES);
        } else {
            self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
            self.write_tokens_dynamic(tokens);
        }
    }

    /// `writeBlockDynamic`: dynamic coding unless it saves less than 1/16
    /// over a stored block (BestSpeed's block writer).
    pub(super) fn write_block_dynamic(&mut self, tokens: &[Token], eof: bool, input: &[u8]) {
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        self.build_codegen(num_literals, num_offsets, false);
        if self.dynamic_header_or_stored(false, (num_literals, num_offsets), eof, input) {
            self.write_tokens_dynamic(tokens);
        }
    }

    /// BestSpeed's and HuffmanOnly's choice: a stored block when the dynamic one would
    /// save less than 1/16 of it, else the dynamic header (true: the caller writes the
    /// symbols).
    fn dynamic_header_or_stored(
        &mut self,
        huff_offset: bool,
        (num_literals, num_offsets): (usize, usize),
        eof: bool,
        input: &[u8],
    ) -> bool {
        let (size, num_codegens) = self.dynamic_size(huff_offset, 0);
        if stored_size(Some(input)).is_some_and(|ss| ss < size + (size >> 4)) {
            self.write_stored_block(input, eof);
            return false;
        }
        self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
        true
    }

    /// `indexTokens`: symbol histograms and the dynamic codes for them. The
    /// end-of-block marker, which Go appends to the token slice, is counted
    /// here directly.
    fn index_tokens(&mut self, tokens: &[Token]) -> (usize, usize) {
        self.literal_freq = [0; MAX_NUM_LIT];
        self.offset_freq = [0; OFFSET_CODE_COUNT];
        for &t in tokens {
            if t < MATCH_TYPE {
                self.literal_freq[t as usize] += 1;
            } else {
                self.literal_freq[LENGTH_CODES_START + length_code(token_length(t))] += 1;
                self.offset_freq[token_offset_code(t)] += 1;
            }
        }
        self.literal_freq[END_BLOCK_MARKER] += 1;

        let mut num_literals = MAX_NUM_LIT;
        while self.literal_freq[num_literals - 1] == 0 {
            num_literals -= 1;
        }
        let mut num_offsets = OFFSET_CODE_COUNT;
        while num_offsets > 0 && self.offset_freq[num_offsets - 1] == 0 {
            num_offsets -= 1;
        }
        if num_offsets == 0 {
            // No match at all: a dynamic header still needs one distance code.
            self.offset_freq[0] = 1;
            num_offsets = 1;
        }
        self.literal_encoding.generate(&self.literal_freq, 15);
        self.offset_encoding.generate(&self.offset_freq, 15);
        (num_literals, num_offsets)
    }

    /// `writeTokens` with this writer's own dynamic codes.
    fn write_tokens_dynamic(&mut self, tokens: &[Token]) {
        // The code tables are moved out for the loop so the bit buffer can be
        // borrowed mutably alongside them; no allocation is involved.
        let le = std::mem::take(&mut self.literal_encoding.codes);
        let oe = std::mem::take(&mut self.offset_encoding.codes);
        self.write_tokens(tokens, &le, &oe);
        self.literal_encoding.codes = le;
        self.offset_encoding.codes = oe;
    }

    /// `writeTokens`, then the end-of-block code.
    fn write_tokens(&mut self, tokens: &[Token], le: &[HCode], oe: &[HCode]) {
        write_tokens(&mut self.sink, tokens, le, oe);
        self.sink.write_code(le[END_BLOCK_MARKER]);
    }

    /// `writeBlockHuff`: literals only, or stored if that saves under 1/16.
    pub(super) fn write_block_huff(&mut self, eof: bool, input: &[u8]) {
        self.literal_freq = [0; MAX_NUM_LIT];
        histogram(input, &mut self.literal_freq[..256]);
        self.literal_freq[END_BLOCK_MARKER] = 1;
        const NUM_LITERALS: usize = END_BLOCK_MARKER + 1;
        // Go sets only entry 0 and leaves the rest of offsetFreq stale; the
        // one-symbol code gives all other entries length 0, so stale counts
        // never add to the size.
        self.offset_freq[0] = 1;
        const NUM_OFFSETS: usize = 1;

        self.literal_encoding.generate(&self.literal_freq, 15);
        self.build_codegen(NUM_LITERALS, NUM_OFFSETS, true);
        if self.dynamic_header_or_stored(true, (NUM_LITERALS, NUM_OFFSETS), eof, input) {
            self.write_literals(input);
        }
    }

    /// The literal loop of `writeBlockHuff`, with the end-of-block code.
    fn write_literals(&mut self, input: &[u8]) {
        let codes = &self.literal_encoding.codes;
        write_literals(&mut self.sink, input, &codes[..256]);
        self.sink.write_code(codes[END_BLOCK_MARKER]);
    }
}
