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

/// Bits 0–15: offset − 1 (or the literal), 16–21: offset code,
/// 22–29: length − 3, bit 30: match flag.
pub(crate) const LENGTH_SHIFT: u32 = 22;
pub(crate) const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;
pub(crate) const MATCH_TYPE: u32 = 1 << 30;
pub(crate) const MATCH_OFFSET_ONLY_MASK: u32 = 0xffff;

pub(crate) const END_BLOCK_MARKER: usize = 256;
pub(crate) const LITERAL_COUNT: usize = 286;
pub(crate) const OFFSET_CODE_COUNT: usize = 30;
pub(crate) const MAX_STORE_BLOCK_SIZE: usize = 65535;
pub(crate) const BASE_MATCH_LENGTH: i32 = 3;
pub(crate) const BASE_MATCH_OFFSET: i32 = 1;
pub(crate) const MAX_MATCH_LENGTH: usize = 258;

/// Extra bits of length codes 257.. (indexed by code − 257).
pub(crate) const LENGTH_EXTRA_BITS: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0, 0, 0, 0,
];

/// Length base (minus 3) of each length code.
pub(crate) const LENGTH_BASE: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192,
    224, 255, 0, 0, 0,
];

/// Extra bits of each offset code (30 and 31 are the unused extended window).
pub(crate) const OFFSET_EXTRA_BITS: [i8; 32] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14,
];

const OFFSET_BASE: [u32; 32] = [
    0x000000, 0x000001, 0x000002, 0x000003, 0x000004, 0x000006, 0x000008, 0x00000c, 0x000010, 0x000018,
    0x000020, 0x000030, 0x000040, 0x000060, 0x000080, 0x0000c0, 0x000100, 0x000180, 0x000200, 0x000300,
    0x000400, 0x000600, 0x000800, 0x000c00, 0x001000, 0x001800, 0x002000, 0x003000, 0x004000, 0x006000,
    0x008000, 0x00c000,
];

/// `extra bits | base << 8` per offset code, zero for codes without extra
/// bits (Go's `offsetCombined`).
pub(crate) const OFFSET_COMBINED: [u32; 32] = {
    let mut t = [0u32; 32];
    let mut i = 0;
    while i < 32 {
        if OFFSET_EXTRA_BITS[i] != 0 && OFFSET_BASE[i] <= 0x006000 {
            t[i] = OFFSET_EXTRA_BITS[i] as u32 | (OFFSET_BASE[i] << 8);
        }
        i += 1;
    }
    t
};

/// Length code (0..=28) of `length − 3` (RFC 1951 3.2.5).
pub(crate) const LENGTH_CODES: [u8; 256] = {
    const BASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163,
        195, 227, 258,
    ];
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let len = i as u16 + 3;
        let mut c = 0;
        while c + 1 < BASE.len() && BASE[c + 1] <= len {
            c += 1;
        }
        t[i] = c as u8;
        i += 1;
    }
    t
};

/// Offset code of `distance − 1` for distances up to 256; larger distances
/// use `OFFSET_CODES[(d − 1) >> 7] + 14` like Go's `offsetCodes14`.
const OFFSET_CODES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let dist = i as u32 + 1;
        let mut c = 0;
        while c + 1 < 30 && OFFSET_BASE[c + 1] < dist {
            c += 1;
        }
        t[i] = c as u8;
        i += 1;
    }
    t
};

/// Go's `offsetCode`: the offset code of `off` = distance − 1.
#[inline(always)]
pub(crate) fn offset_code(off: u32) -> u32 {
    if off < 256 {
        OFFSET_CODES[off as usize] as u32
    } else {
        OFFSET_CODES[(off >> 7) as u8 as usize] as u32 + 14
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_codes_follow_rfc1951() {
        // Distance 1 → code 0, 5..6 → 4, 32769 does not exist, 24577.. → 29.
        assert_eq!(offset_code(0), 0);
        assert_eq!(offset_code(4), 4);
        assert_eq!(offset_code(5), 4);
        assert_eq!(offset_code(255), 15);
        assert_eq!(offset_code(256), 16);
        assert_eq!(offset_code(24576), 29);
        assert_eq!(offset_code(32767), 29);
    }

    #[test]
    fn length_codes_follow_rfc1951() {
        assert_eq!(LENGTH_CODES[0], 0);
        assert_eq!(LENGTH_CODES[8], 8);
        assert_eq!(LENGTH_CODES[9], 8);
        assert_eq!(LENGTH_CODES[254], 27);
        assert_eq!(LENGTH_CODES[255], 28);
    }
}
