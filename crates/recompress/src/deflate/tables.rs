// The symbol tables of RFC 1951 as Go's compress/flate `token.go` and klauspost/compress
// v1.15.12 `flate/token.go` lay them out.
//
// Copyright (c) 2012 The Go Authors. All rights reserved.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file of kpflate.

//! Deflate's symbols (RFC 1951 3.2.5) and the packed token both families use: a `u32`
//! whose bit 30 marks a match, bits 22–29 hold length − 3 and the low bits the offset − 1
//! (or the literal byte). klauspost also keeps the offset code in bits 16–21, which is why
//! its offsets are masked with `MATCH_OFFSET_ONLY_MASK`; Go leaves those bits to the offset.

/// Bits 0–15: offset − 1 (or the literal), 16–21: offset code,
/// 22–29: length − 3, bit 30: match flag.
pub const LENGTH_SHIFT: u32 = 22;
pub const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;
pub const MATCH_TYPE: u32 = 1 << 30;
pub const MATCH_OFFSET_ONLY_MASK: u32 = 0xffff;

pub const END_BLOCK_MARKER: usize = 256;
pub const LITERAL_COUNT: usize = 286;
pub const OFFSET_CODE_COUNT: usize = 30;
pub const MAX_STORE_BLOCK_SIZE: usize = 65535;
pub const BASE_MATCH_LENGTH: i32 = 3;
pub const BASE_MATCH_OFFSET: i32 = 1;
pub const MAX_MATCH_LENGTH: usize = 258;

/// Extra bits of length codes 257.. (indexed by code − 257).
pub const LENGTH_EXTRA_BITS: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0, 0, 0, 0,
];

/// Length base (minus 3) of each length code.
pub const LENGTH_BASE: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192,
    224, 255, 0, 0, 0,
];

/// Extra bits of each offset code (30 and 31 are the unused extended window).
pub const OFFSET_EXTRA_BITS: [i8; 32] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14,
];

pub const OFFSET_BASE: [u32; 32] = [
    0x000000, 0x000001, 0x000002, 0x000003, 0x000004, 0x000006, 0x000008, 0x00000c, 0x000010, 0x000018,
    0x000020, 0x000030, 0x000040, 0x000060, 0x000080, 0x0000c0, 0x000100, 0x000180, 0x000200, 0x000300,
    0x000400, 0x000600, 0x000800, 0x000c00, 0x001000, 0x001800, 0x002000, 0x003000, 0x004000, 0x006000,
    0x008000, 0x00c000,
];

/// `extra bits | base << 8` per offset code, zero for codes without extra
/// bits (Go's `offsetCombined`).
pub const OFFSET_COMBINED: [u32; 32] = {
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
pub const LENGTH_CODES: [u8; 256] = {
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
pub const OFFSET_CODES: [u8; 256] = {
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
pub fn offset_code(off: u32) -> u32 {
    if off < 256 {
        OFFSET_CODES[off as usize] as u32
    } else {
        OFFSET_CODES[(off >> 7) as u8 as usize] as u32 + 14
    }
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
