// Port of klauspost/compress v1.15.12 `flate/huffman_bit_writer.go` (the bit writer and
// its token and literal loops), which follows Go's compress/flate design.
//
// Copyright (c) 2012 The Go Authors. All rights reserved.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file of kpflate.

//! The one bit writer of the deflate models: an LSB-first accumulator draining into the
//! caller's `Vec`, and the hot loops that code tokens and literals through it.
//!
//! Only the resulting bit stream matters to klauspost's models. Go's `compress/flate` also
//! decides how many bytes reach its `io.Writer` by the end of each call (a 240-byte buffer
//! filled 6 bytes at a time); that is a pure function of the bits written since the stream
//! was last byte-aligned by a flush, which `BitSink::flushed_at` marks, so `goflate` derives
//! it from the same stream instead of buffering differently.

use super::huffman::{HCode, code64, hlen};
use super::tables::{
    END_BLOCK_MARKER, LENGTH_BASE, LENGTH_CODES, LENGTH_EXTRA_BITS, MATCH_OFFSET_ONLY_MASK, OFFSET_COMBINED,
    OFFSET_MASK,
};

const LENGTH_CODES_START: usize = 257;
const OFFSET_EXTRA_BITS_MIN_CODE: u32 = 4;

/// The bit accumulator and the output it drains into.
#[derive(Default)]
pub struct BitSink {
    pub out: Vec<u8>,
    bits: u64,
    nbits: u32,
    /// Where in `out` the stream was last byte-aligned by `flush_bits` or `write_bytes`.
    pub flushed_at: usize,
}

impl BitSink {
    #[inline(always)]
    pub fn write_bits(&mut self, b: u64, nb: u32) {
        self.bits |= b << (self.nbits & 63);
        self.nbits += nb;
        if self.nbits >= 48 {
            self.write_out_bits();
        }
    }

    #[inline(always)]
    pub fn write_code(&mut self, c: HCode) {
        self.write_bits(code64(c), hlen(c));
    }

    #[inline(always)]
    fn write_out_bits(&mut self) {
        self.out.extend_from_slice(&self.bits.to_le_bytes()[..6]);
        self.bits >>= 48;
        self.nbits -= 48;
    }

    /// Emits all pending bits, zero-padded to a byte boundary.
    pub fn flush_bits(&mut self) {
        while self.nbits > 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        self.bits = 0;
        self.flushed_at = self.out.len();
    }

    /// Appends raw bytes (a stored block's payload); the stream must be byte aligned.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.nbits & 7, 0, "write_bytes with unfinished bits");
        self.flush_bits();
        self.out.extend_from_slice(bytes);
        self.flushed_at = self.out.len();
    }

    /// Drops pending bits (Go's `reset`); the output is the caller's business.
    pub fn reset(&mut self) {
        self.bits = 0;
        self.nbits = 0;
    }

    /// Moves the complete bytes of the accumulator to `out`, leaving under 8 bits pending
    /// (the stream is unchanged), and returns how many bits are left.
    pub fn spill_whole_bytes(&mut self) -> u32 {
        while self.nbits >= 8 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits -= 8;
        }
        self.nbits
    }
}

/// Byte histogram with wrapping `u16` counters (blocks are ≤ 64 KiB).
/// Four partial tables avoid stalls on runs of one byte value; wrapping
/// sums give the same counts as one table.
pub fn histogram(b: &[u8], h: &mut [u16]) {
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
pub fn write_literals(s: &mut BitSink, input: &[u8], enc: &[HCode]) {
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
pub fn write_tokens(s: &mut BitSink, tokens: &[u32], le_codes: &[HCode], oe_codes: &[HCode]) {
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
