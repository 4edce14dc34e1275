// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Port of Go's compress/flate/token.go (Go 1.19); the layout follows Go's
// design closely, hence Go's license notice above.

//! LZ77 tokens in the layout both families share (`deflate::tables`): Go packs the offset
//! into the low 22 bits; klauspost's layout, used here too, also keeps the offset code in
//! bits 16–21, which the token writer and the histograms read directly.

pub(super) use crate::deflate::tables::{END_BLOCK_MARKER, MATCH_TYPE};
use crate::deflate::tables::{LENGTH_CODES, LENGTH_SHIFT, offset_code};

/// A packed literal or `<length, offset>` token.
pub(super) type Token = u32;

/// `literalToken`.
#[inline(always)]
pub(super) fn literal_token(literal: u8) -> Token {
    u32::from(literal)
}

/// `matchToken`: `xlength` is length - 3, `xoffset` is offset - 1 (< 32768), plus the
/// offset code.
#[inline(always)]
pub(super) fn match_token(xlength: u32, xoffset: u32) -> Token {
    MATCH_TYPE | (xlength << LENGTH_SHIFT) | (offset_code(xoffset) << 16) | xoffset
}

/// Length minus 3 of a match token.
#[inline(always)]
pub(super) fn token_length(t: Token) -> u32 {
    (t - MATCH_TYPE) >> LENGTH_SHIFT
}

/// The offset code of a match token.
#[inline(always)]
pub(super) fn token_offset_code(t: Token) -> usize {
    ((t >> 16) & 31) as usize
}

/// `lengthCode`: length code minus 257 of a length minus 3.
#[inline(always)]
pub(super) fn length_code(xlength: u32) -> usize {
    LENGTH_CODES[xlength as usize & 255] as usize
}
