// Port of Go's compress/flate `huffman_bit_writer.go` (Go 1.19) and klauspost/compress
// v1.15.12 `flate/huffman_bit_writer.go`: the parts both write the same way.
//
// Copyright (c) 2009, 2012 The Go Authors. All rights reserved.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file of kpflate.

//! The dynamic block header (RFC 1951 3.2.7): the code lengths of the literal/length and
//! offset codes, run-length coded and sent with their own Huffman code, and what it costs.
//! Both families build, price and write it identically, through the one bit writer; they
//! differ in how they decide between block types.

use super::bits::BitSink;
use super::huffman::{FreqOrder, HCode, HuffmanEncoder, hlen, new_hcode};
use super::tables::{LITERAL_COUNT, MAX_STORE_BLOCK_SIZE, OFFSET_CODE_COUNT};

pub const CODEGEN_CODE_COUNT: usize = 19;
const BAD_CODE: u8 = 255;

/// The order in which code length code lengths are sent (RFC 1951 3.2.7).
const CODEGEN_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// The offset table of Huffman-only blocks: one code for offset 0 (Go's `huffOffset`,
/// built from a single used symbol).
pub static HUFF_OFFSET_CODES: [HCode; OFFSET_CODE_COUNT] = {
    let mut c = [0; OFFSET_CODE_COUNT];
    c[0] = new_hcode(0, 1);
    c
};

/// Stored size in bits including the header, when the input fits one stored block (Go's
/// `storedSize`; no input, Go's nil slice, rules a stored block out).
pub fn stored_size(input: Option<&[u8]>) -> Option<i64> {
    match input {
        Some(b) if b.len() <= MAX_STORE_BLOCK_SIZE => Some((b.len() as i64 + 5) * 8),
        _ => None,
    }
}

/// One run-length symbol with its extra bits: 16 (repeat the last length 3-6 times), 17
/// (3-10 zeros) or 18 (11-138 zeros).
#[inline(always)]
fn push_run(coded: &mut [u8], freq: &mut [u16], out_index: &mut usize, symbol: u8, extra: i32) {
    coded[*out_index] = symbol;
    coded[*out_index + 1] = extra as u8;
    *out_index += 2;
    freq[symbol as usize] += 1;
}

/// A dynamic block's code lengths, run-length coded, with the code they are sent in.
pub struct Codegen<O: FreqOrder> {
    /// Symbol counts of the run-length coded lengths.
    freq: [u16; CODEGEN_CODE_COUNT],
    /// The coded lengths, `BAD_CODE`-terminated; extra bits follow symbols 16, 17 and 18.
    coded: [u8; LITERAL_COUNT + OFFSET_CODE_COUNT + 1],
    encoding: HuffmanEncoder<O>,
}

impl<O: FreqOrder> Codegen<O> {
    pub fn new() -> Self {
        Codegen {
            freq: [0; CODEGEN_CODE_COUNT],
            coded: [0; LITERAL_COUNT + OFFSET_CODE_COUNT + 1],
            encoding: HuffmanEncoder::new(CODEGEN_CODE_COUNT),
        }
    }

    /// `generateCodegen`, then the code for it (`codegenEncoding.generate(.., 7)`): codes
    /// the lengths of the first `num_literals` of `lit` and `num_offsets` of `off`.
    pub fn build(&mut self, num_literals: usize, num_offsets: usize, lit: &[HCode], off: &[HCode]) {
        self.generate(num_literals, num_offsets, lit, off);
        self.encoding.generate(&self.freq, 7);
    }

    /// `generateCodegen` alone: run-length codes the concatenated code lengths.
    fn generate(&mut self, num_literals: usize, num_offsets: usize, lit: &[HCode], off: &[HCode]) {
        self.freq = [0; CODEGEN_CODE_COUNT];
        let codegen = &mut self.coded;
        let freq = &mut self.freq;
        // `codegen` first holds a copy of the lengths; the output is never longer than the
        // input consumed so far, so it is rewritten in place.
        for (dst, &c) in codegen[..num_literals].iter_mut().zip(lit) {
            *dst = hlen(c) as u8;
        }
        for (dst, &c) in codegen[num_literals..num_literals + num_offsets]
            .iter_mut()
            .zip(off)
        {
            *dst = hlen(c) as u8;
        }
        codegen[num_literals + num_offsets] = BAD_CODE;

        let mut size = codegen[0];
        let mut count: i32 = 1;
        let mut out_index = 0;
        let mut in_index = 1;
        while size != BAD_CODE {
            // Invariant: `count` copies of `size` are still to be coded.
            let next_size = codegen[in_index];
            in_index += 1;
            if next_size == size {
                count += 1;
                continue;
            }
            if size != 0 {
                codegen[out_index] = size;
                out_index += 1;
                freq[size as usize] += 1;
                count -= 1;
                while count >= 3 {
                    let n = count.min(6);
                    push_run(codegen, freq, &mut out_index, 16, n - 3);
                    count -= n;
                }
            } else {
                while count >= 11 {
                    let n = count.min(138);
                    push_run(codegen, freq, &mut out_index, 18, n - 11);
                    count -= n;
                }
                if count >= 3 {
                    push_run(codegen, freq, &mut out_index, 17, count - 3);
                    count = 0;
                }
            }
            while count > 0 {
                codegen[out_index] = size;
                out_index += 1;
                freq[size as usize] += 1;
                count -= 1;
            }
            size = next_size;
            count = 1;
        }
        codegen[out_index] = BAD_CODE;
    }

    /// How many code length code lengths are sent (at least 4).
    fn num_codegens(&self) -> usize {
        let mut n = CODEGEN_CODE_COUNT;
        while n > 4 && self.freq[CODEGEN_ORDER[n - 1]] == 0 {
            n -= 1;
        }
        n
    }

    /// Size in bits of the dynamic header, and the number of code length code lengths.
    pub fn header_size(&self) -> (i64, usize) {
        let num_codegens = self.num_codegens();
        let size = 3
            + 5
            + 5
            + 4
            + 3 * num_codegens as i64
            + self.encoding.bit_length(&self.freq)
            + self.freq[16] as i64 * 2
            + self.freq[17] as i64 * 3
            + self.freq[18] as i64 * 7;
        (size, num_codegens)
    }

    /// `writeDynamicHeader`.
    pub fn write_header(
        &self,
        s: &mut BitSink,
        num_literals: usize,
        num_offsets: usize,
        num_codegens: usize,
        is_eof: bool,
    ) {
        s.write_bits(if is_eof { 5 } else { 4 }, 3);
        s.write_bits((num_literals - 257) as u64, 5);
        s.write_bits((num_offsets - 1) as u64, 5);
        s.write_bits((num_codegens - 4) as u64, 4);
        let cg = &self.encoding.codes;
        for &sym in &CODEGEN_ORDER[..num_codegens] {
            s.write_bits(hlen(cg[sym]) as u64, 3);
        }
        let mut i = 0;
        loop {
            let code_word = self.coded[i];
            i += 1;
            if code_word == BAD_CODE {
                break;
            }
            s.write_code(cg[code_word as usize]);
            let extra = match code_word {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => continue,
            };
            s.write_bits(self.coded[i] as u64, extra);
            i += 1;
        }
    }
}
