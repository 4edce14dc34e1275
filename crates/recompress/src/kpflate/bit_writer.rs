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
//! Only the resulting bit stream matters, not when Go hands bytes to its
//! writer, so output is appended to the caller's `Vec`; the token and literal
//! loops stage it in a small stack buffer first, as Go does, for speed.

use super::token::Tokens;
use crate::deflate::header::{BitOut, Codegen, HUFF_OFFSET_CODES, stored_size};
use crate::deflate::huffman::{
    FIXED_LITERAL_CODES, FIXED_OFFSET_CODES, HCode, HuffmanEncoder, KlauspostOrder, code64, fixed_bit_length,
    hlen,
};
use crate::deflate::tables::{
    END_BLOCK_MARKER, LENGTH_BASE, LENGTH_CODES, LENGTH_EXTRA_BITS, LITERAL_COUNT, MATCH_OFFSET_ONLY_MASK,
    OFFSET_CODE_COUNT, OFFSET_COMBINED, OFFSET_EXTRA_BITS, OFFSET_MASK,
};

type Huffman = HuffmanEncoder<KlauspostOrder>;

const LENGTH_CODES_START: usize = 257;
/// Blocks with fewer tokens are also priced with the fixed tables.
const MAX_PREDEFINED_TOKENS: usize = 250;
const OFFSET_EXTRA_BITS_MIN_CODE: u32 = 4;

/// The bit accumulator and the output it drains into.
pub(crate) struct BitSink {
    pub out: Vec<u8>,
    bits: u64,
    nbits: u32,
}

impl BitOut for BitSink {
    #[inline(always)]
    fn write_bits(&mut self, b: u64, nb: u32) {
        BitSink::write_bits(self, b, nb);
    }
}

impl BitSink {
    #[inline(always)]
    fn write_bits(&mut self, b: u64, nb: u32) {
        self.bits |= b << (self.nbits & 63);
        self.nbits += nb;
        if self.nbits >= 48 {
            self.write_out_bits();
        }
    }

    #[inline(always)]
    fn write_code(&mut self, c: HCode) {
        self.write_bits(code64(c), hlen(c));
    }

    #[inline(always)]
    fn write_out_bits(&mut self) {
        self.out.extend_from_slice(&self.bits.to_le_bytes()[..6]);
        self.bits >>= 48;
        self.nbits -= 48;
    }

    /// Emits all pending bits, zero-padded to a byte boundary.
    fn flush_bits(&mut self) {
        while self.nbits > 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        self.bits = 0;
    }
}

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
            sink: BitSink {
                out: Vec::new(),
                bits: 0,
                nbits: 0,
            },
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
        self.sink.bits = 0;
        self.sink.nbits = 0;
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
        debug_assert_eq!(self.sink.nbits & 7, 0, "write_bytes with unfinished bits");
        self.sink.flush_bits();
        self.sink.out.extend_from_slice(bytes);
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
            if p.ssize.is_some_and(|ssize| ssize <= size) {
                self.write_stored(p.input, p.eof);
            } else {
                self.write_fixed(tokens, p.eof, p.sync);
            }
            return true;
        }
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
                if p.ssize.is_some_and(|ssize| ssize <= pre_size) {
                    self.write_stored(p.input, p.eof);
                } else {
                    self.write_fixed(tokens, p.eof, p.sync);
                }
                return true;
            }
        }
        if p.ssize.is_some_and(|ssize| ssize <= size) {
            self.write_stored(p.input, p.eof);
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

/// Byte histogram with wrapping `u16` counters (blocks are ≤ 64 KiB).
/// Four partial tables avoid stalls on runs of one byte value; wrapping
/// sums give the same counts as one table.
fn histogram(b: &[u8], h: &mut [u16]) {
    let h: &mut [u16; 256] = h.try_into().expect("histogram of 256 symbols");
    let mut part = [[0u16; 256]; 4];
    let mut quads = b.chunks_exact(4);
    for q in &mut quads {
        for (p, &t) in part.iter_mut().zip(q) {
            p[t as usize] = p[t as usize].wrapping_add(1);
        }
    }
    for &t in quads.remainder() {
        part[0][t as usize] = part[0][t as usize].wrapping_add(1);
    }
    for (i, v) in h.iter_mut().enumerate() {
        *v = v
            .wrapping_add(part[0][i])
            .wrapping_add(part[1][i])
            .wrapping_add(part[2][i])
            .wrapping_add(part[3][i]);
    }
}

/// Writes every byte of `input` with the literal codes `enc`.
fn write_literals(s: &mut BitSink, input: &[u8], enc: &[HCode]) {
    let enc: &[HCode; 256] = enc.try_into().expect("256 literal codes");
    let mut st = Staging::new(s);
    let mut triples = input.chunks_exact(3);
    for t in &mut triples {
        st.room(45, &mut s.out);
        for &b in t {
            let c = enc[b as usize];
            st.add(code64(c), hlen(c));
        }
    }
    for &b in triples.remainder() {
        let c = enc[b as usize];
        st.room(15, &mut s.out);
        st.add(code64(c), hlen(c));
    }
    st.finish(s);
}

/// The hot loops' bit buffer: whole bytes move to a small stack buffer with
/// one 8-byte store whenever the next token might not fit in 64 bits, and
/// from there to the output in batches. Only complete bytes move, in order,
/// so the bit stream is the same as with Go's 48-bit flushes.
struct Staging {
    buf: [u8; STAGING + 8],
    n: usize,
    bits: u64,
    nbits: u32,
}

const STAGING: usize = 240;

impl Staging {
    #[inline(always)]
    fn new(s: &BitSink) -> Staging {
        Staging {
            buf: [0; STAGING + 8],
            n: 0,
            bits: s.bits,
            nbits: s.nbits,
        }
    }

    /// Makes room for `need` (≤ 56) more bits.
    #[inline(always)]
    fn room(&mut self, need: u32, out: &mut Vec<u8>) {
        if self.nbits + need > 63 {
            self.spill(out);
        }
    }

    /// Appends `nb` bits; `room` must have been made for them.
    #[inline(always)]
    fn add(&mut self, v: u64, nb: u32) {
        self.bits |= v << self.nbits;
        self.nbits += nb;
    }

    /// Moves the complete bytes of `bits` to the buffer.
    #[inline(always)]
    fn spill(&mut self, out: &mut Vec<u8>) {
        // `n < STAGING` always; `min` tells the compiler so.
        let n = self.n.min(STAGING);
        self.buf[n..n + 8].copy_from_slice(&self.bits.to_le_bytes());
        let whole = self.nbits >> 3;
        self.n = n + whole as usize;
        self.bits >>= whole * 8;
        self.nbits &= 7;
        if self.n >= STAGING {
            out.extend_from_slice(&self.buf[..self.n]);
            self.n = 0;
        }
    }

    /// Hands the staged bytes and the last partial byte back to `s`.
    #[inline(always)]
    fn finish(mut self, s: &mut BitSink) {
        self.spill(&mut s.out);
        s.out.extend_from_slice(&self.buf[..self.n]);
        s.bits = self.bits;
        s.nbits = self.nbits;
    }
}

/// Go's `writeTokens`: codes the tokens with the given tables; a trailing
/// EOB token is written with the literal table too.
pub(crate) fn write_tokens(s: &mut BitSink, tokens: &[u32], le_codes: &[HCode], oe_codes: &[HCode]) {
    let (tokens, defer_eob) = match tokens.split_last() {
        Some((&last, rest)) if last == END_BLOCK_MARKER as u32 => (rest, true),
        _ => (tokens, false),
    };
    let lits: &[HCode; 256] = le_codes[..256].try_into().expect("literal codes");
    let lengths: &[HCode; 29] = le_codes[LENGTH_CODES_START..LENGTH_CODES_START + 29]
        .try_into()
        .expect("length codes");
    let offs: &[HCode; 30] = oe_codes[..30].try_into().expect("offset codes");
    let mut st = Staging::new(s);
    let mut i = 0;
    while let Some(&t) = tokens.get(i) {
        if t < 256 {
            // Literals come in runs: three codes (≤ 45 bits) per check for room.
            if let Some(&[b, c]) = tokens.get(i + 1..i + 3)
                && (b | c) < 256
            {
                st.room(45, &mut s.out);
                for l in [t, b, c] {
                    let code = lits[l as usize];
                    st.add(code64(code), hlen(code));
                }
                i += 3;
                continue;
            }
            let c = lits[t as usize];
            st.room(15, &mut s.out);
            st.add(code64(c), hlen(c));
            i += 1;
            continue;
        }
        i += 1;
        // A match takes at most 15 + 5 + 15 + 13 bits.
        st.room(48, &mut s.out);
        let length = (t >> 22) as u8;
        let length_code = LENGTH_CODES[length as usize] as usize;
        let c = lengths[length_code];
        st.add(code64(c), hlen(c));
        // Codes without extra bits have length == base: adding 0 bits of 0.
        let extra = (length - LENGTH_BASE[length_code]) as u64;
        st.add(extra, LENGTH_EXTRA_BITS[length_code] as u32);
        let offset = t & OFFSET_MASK;
        let offset_code = ((offset >> 16) & 31) as usize;
        let c = offs[offset_code];
        st.add(code64(c), hlen(c));
        if offset_code >= OFFSET_EXTRA_BITS_MIN_CODE as usize {
            let comb = OFFSET_COMBINED[offset_code];
            st.add(
                ((offset - (comb >> 8)) & MATCH_OFFSET_ONLY_MASK) as u64,
                comb & 0xff,
            );
        }
    }
    st.finish(s);
    if defer_eob {
        s.write_code(le_codes[END_BLOCK_MARKER]);
    }
}
