// Port of klauspost/compress v1.15.12 `flate/token.go`; it follows the Go
// design closely (same token layout, same histograms, same float32 estimate).
//
// Copyright (c) 2012 The Go Authors. All rights reserved.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! Tokens (literals and matches) with the histograms the block writer needs.
//!
//! The encoders update the histograms while they emit tokens, so the block
//! writer never rescans the tokens to choose its Huffman tables.

use crate::deflate::tables::{
    BASE_MATCH_LENGTH, END_BLOCK_MARKER, LENGTH_CODES, LENGTH_EXTRA_BITS, LENGTH_SHIFT, LITERAL_COUNT,
    MATCH_TYPE, MAX_STORE_BLOCK_SIZE, OFFSET_CODE_COUNT, OFFSET_EXTRA_BITS, offset_code,
};

/// A block's tokens plus the histograms the Huffman writer is built from.
///
/// Counters are `u16` and wrap like Go's; a block never holds more than
/// `MAX_STORE_BLOCK_SIZE + 1` tokens, so they do not overflow in practice.
pub(crate) struct Tokens {
    /// Counts of symbols 256.. (EOB and the length codes).
    pub extra_hist: [u16; 32],
    pub off_hist: [u16; 32],
    pub lit_hist: [u16; 256],
    pub n: usize,
    pub tokens: Box<[u32]>,
}

impl Tokens {
    pub fn new() -> Tokens {
        Tokens {
            extra_hist: [0; 32],
            off_hist: [0; 32],
            lit_hist: [0; 256],
            n: 0,
            tokens: vec![0u32; MAX_STORE_BLOCK_SIZE + 1].into_boxed_slice(),
        }
    }

    pub fn reset(&mut self) {
        if self.n == 0 {
            return;
        }
        self.n = 0;
        self.lit_hist = [0; 256];
        self.extra_hist = [0; 32];
        self.off_hist = [0; 32];
    }

    #[inline(always)]
    pub fn add_literal(&mut self, lit: u8) {
        self.tokens[self.n] = lit as u32;
        self.lit_hist[lit as usize] = self.lit_hist[lit as usize].wrapping_add(1);
        self.n += 1;
    }

    /// Appends `lits` as literal tokens (Go's `emitLiteral`).
    #[inline(always)]
    pub fn add_literals(&mut self, lits: &[u8]) {
        let n = self.n;
        let dst = &mut self.tokens[n..n + lits.len()];
        for (d, &v) in dst.iter_mut().zip(lits) {
            *d = v as u32;
            self.lit_hist[v as usize] = self.lit_hist[v as usize].wrapping_add(1);
        }
        self.n += lits.len();
    }

    /// A match of `xlength` = length − 3 (≤ 255) and `xoffset` = distance − 1.
    #[inline(always)]
    pub fn add_match(&mut self, xlength: u32, xoffset: u32) {
        let oc = offset_code(xoffset);
        let xoffset = xoffset | oc << 16;
        let lc = LENGTH_CODES[xlength as u8 as usize] as usize + 1;
        self.extra_hist[lc] = self.extra_hist[lc].wrapping_add(1);
        self.off_hist[(oc & 31) as usize] = self.off_hist[(oc & 31) as usize].wrapping_add(1);
        self.tokens[self.n] = MATCH_TYPE | xlength << LENGTH_SHIFT | xoffset;
        self.n += 1;
    }

    /// A match of any length (not reduced by 3) split into deflate-sized
    /// pieces; every piece keeps at least 3 bytes, so a 260-byte match becomes
    /// 255 + 5 rather than 258 + 2.
    #[inline(always)]
    pub fn add_match_long(&mut self, mut xlength: i32, xoffset: u32) {
        let oc = offset_code(xoffset);
        let xoffset = xoffset | oc << 16;
        while xlength > 0 {
            let mut xl = xlength;
            if xl > 258 {
                xl = if xl > 258 + BASE_MATCH_LENGTH {
                    258
                } else {
                    258 - BASE_MATCH_LENGTH
                };
            }
            xlength -= xl;
            let xl = (xl - BASE_MATCH_LENGTH) as u32;
            let lc = LENGTH_CODES[xl as u8 as usize] as usize + 1;
            self.extra_hist[lc] = self.extra_hist[lc].wrapping_add(1);
            self.off_hist[(oc & 31) as usize] = self.off_hist[(oc & 31) as usize].wrapping_add(1);
            self.tokens[self.n] = MATCH_TYPE | xl << LENGTH_SHIFT | xoffset;
            self.n += 1;
        }
    }

    pub fn add_eob(&mut self) {
        self.tokens[self.n] = END_BLOCK_MARKER as u32;
        self.extra_hist[0] = self.extra_hist[0].wrapping_add(1);
        self.n += 1;
    }

    pub fn slice(&self) -> &[u32] {
        &self.tokens[..self.n]
    }

    /// Go's `EstimatedBits`: a Shannon estimate of an optimal encoding.
    ///
    /// It decides whether a fresh Huffman table beats reusing the previous
    /// one, so it must round exactly like Go's float32 arithmetic (no fused
    /// multiply-add: Go does not fuse on amd64).
    pub fn estimated_bits(&self) -> i64 {
        let mut shannon = 0f32;
        let mut bits: i64 = 0;
        let mut n_matches: i64 = 0;
        // Go adds nFilled, which only Fill() (unused by these encoders) sets.
        let total = self.n as u16 as i64;
        if total > 0 {
            let inv_total = 1.0f32 / total as f32;
            for &v in &self.lit_hist {
                if v > 0 {
                    let n = v as f32;
                    shannon += at_least_one(-m_fast_log2(n * inv_total)) * n;
                }
            }
            // Just add 15 for EOB.
            shannon += 15.0;
            for (i, &v) in self.extra_hist[1..LITERAL_COUNT - 256].iter().enumerate() {
                if v > 0 {
                    let n = v as f32;
                    shannon += at_least_one(-m_fast_log2(n * inv_total)) * n;
                    bits += LENGTH_EXTRA_BITS[i & 31] as i64 * v as i64;
                    n_matches += v as i64;
                }
            }
        }
        if n_matches > 0 {
            let inv_total = 1.0f32 / n_matches as f32;
            for (i, &v) in self.off_hist[..OFFSET_CODE_COUNT].iter().enumerate() {
                if v > 0 {
                    let n = v as f32;
                    shannon += at_least_one(-m_fast_log2(n * inv_total)) * n;
                    bits += OFFSET_EXTRA_BITS[i & 31] as i64 * v as i64;
                }
            }
        }
        shannon as i64 + bits
    }
}

/// Clamps to 1..=15 (Go's `atLeastOne`).
#[inline(always)]
fn at_least_one(v: f32) -> f32 {
    v.clamp(1.0, 15.0)
}

/// Go's `mFastLog2` (from <https://stackoverflow.com/a/28730362>), bit for bit.
#[inline(always)]
fn m_fast_log2(val: f32) -> f32 {
    let mut ux = val.to_bits() as i32;
    let mut log2 = (((ux >> 23) & 255) - 128) as f32;
    ux &= -0x7f80_0001;
    ux += 127 << 23;
    let uval = f32::from_bits(ux as u32);
    // The constants keep Go's decimal digits; both languages round them to
    // the nearest f32.
    #[allow(clippy::excessive_precision)]
    let (a, b, c) = (-0.34484843f32, 2.02466578f32, 0.67487759f32);
    log2 += (a * uval + b) * uval - c;
    log2
}
