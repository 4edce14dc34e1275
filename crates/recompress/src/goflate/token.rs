// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Port of Go's compress/flate/token.go (Go 1.19); the layout and tables follow
// Go's design closely, hence Go's license notice above.

//! LZ77 tokens as Go packs them into a `u32`.
//!
//! Bits 30..31 hold the type (0 = literal, 1 = match), bits 22..29 the
//! length minus 3 and bits 0..21 the offset minus 1 (or the literal byte).
//! The end-of-block marker is literal 256.

/// A packed literal or `<length, offset>` token.
pub(super) type Token = u32;

const LENGTH_SHIFT: u32 = 22;
const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;
/// Every token below this value is a literal, so a single compare classifies.
pub(super) const MATCH_TYPE: u32 = 1 << 30;

/// The end-of-block symbol, written as the last literal of every block.
pub(super) const END_BLOCK_MARKER: usize = 256;

/// `literalToken`.
#[inline(always)]
pub(super) fn literal_token(literal: u8) -> Token {
    u32::from(literal)
}

/// `matchToken`: `xlength` is length - 3, `xoffset` is offset - 1.
#[inline(always)]
pub(super) fn match_token(xlength: u32, xoffset: u32) -> Token {
    MATCH_TYPE + (xlength << LENGTH_SHIFT) + xoffset
}

/// Length minus 3 of a match token.
#[inline(always)]
pub(super) fn token_length(t: Token) -> u32 {
    (t - MATCH_TYPE) >> LENGTH_SHIFT
}

/// Offset minus 1 of a match token.
#[inline(always)]
pub(super) fn token_offset(t: Token) -> u32 {
    t & OFFSET_MASK
}

/// `lengthCodes[len - 3]` gives the length code (minus 257) of a match length.
static LENGTH_CODES: [u8; 256] = build_length_codes();

/// `offsetCodes[off]` for the first 256 offsets (minus 1); larger offsets use
/// the same table on the offset shifted by 7 or 14 bits, as in Go.
static OFFSET_CODES: [u8; 256] = build_offset_codes();

/// Extra bits per length code (index = code - 257), RFC 1951 3.2.5.
pub(super) static LENGTH_EXTRA_BITS: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// Length (minus 3) at which each length code starts.
pub(super) static LENGTH_BASE: [u32; 29] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192,
    224, 255,
];

/// Extra bits per offset code.
pub(super) static OFFSET_EXTRA_BITS: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
];

/// Offset (minus 1) at which each offset code starts.
pub(super) static OFFSET_BASE: [u32; 30] = [
    0x000000, 0x000001, 0x000002, 0x000003, 0x000004, 0x000006, 0x000008, 0x00000c, 0x000010, 0x000018,
    0x000020, 0x000030, 0x000040, 0x000060, 0x000080, 0x0000c0, 0x000100, 0x000180, 0x000200, 0x000300,
    0x000400, 0x000600, 0x000800, 0x000c00, 0x001000, 0x001800, 0x002000, 0x003000, 0x004000, 0x006000,
];

/// Derives Go's literal `lengthCodes` table from `LENGTH_BASE`, so the two
/// can never disagree.
const fn build_length_codes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut code = 0;
    let mut len = 0;
    while len < 256 {
        while code + 1 < 29 && LENGTH_BASE[code + 1] as usize <= len {
            code += 1;
        }
        t[len] = code as u8;
        len += 1;
    }
    // Length 258 (xlength 255) has its own code 28, which the loop above
    // reaches because LENGTH_BASE[28] == 255.
    t
}

/// Derives Go's literal `offsetCodes` table from `OFFSET_BASE`.
const fn build_offset_codes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut code = 0;
    let mut off = 0;
    while off < 256 {
        while code + 1 < 16 && OFFSET_BASE[code + 1] as usize <= off {
            code += 1;
        }
        t[off] = code as u8;
        off += 1;
    }
    t
}

/// `lengthCode`: length code minus 257 of a length minus 3.
#[inline(always)]
pub(super) fn length_code(xlength: u32) -> usize {
    LENGTH_CODES[xlength as usize & 255] as usize
}

/// `offsetCode`: offset code of an offset minus 1 (< 32768).
#[inline(always)]
pub(super) fn offset_code(off: u32) -> usize {
    if off < 256 {
        OFFSET_CODES[off as usize] as usize
    } else if off >> 7 < 256 {
        OFFSET_CODES[(off >> 7) as usize] as usize + 14
    } else {
        OFFSET_CODES[(off >> 14) as usize & 255] as usize + 28
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spot checks against Go's literal tables in token.go.
    #[test]
    fn tables_match_go() {
        assert_eq!(&LENGTH_CODES[..10], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 8]);
        assert_eq!(LENGTH_CODES[254], 27);
        assert_eq!(LENGTH_CODES[255], 28);
        assert_eq!(LENGTH_CODES[32], 16);
        assert_eq!(
            &OFFSET_CODES[..16],
            &[0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7]
        );
        assert_eq!(OFFSET_CODES[255], 15);
        assert_eq!(offset_code(32767), 29);
        assert_eq!(offset_code(256), 16);
    }
}
