// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Port of Go's compress/flate/token.go (Go 1.19); the layout follows Go's
// design closely, hence Go's license notice above.

//! LZ77 tokens as Go packs them into a `u32` (the shared layout of
//! `deflate::tables`, with the whole low 22 bits for the offset).

pub(super) use crate::deflate::tables::{END_BLOCK_MARKER, MATCH_TYPE};
use crate::deflate::tables::{LENGTH_CODES, LENGTH_SHIFT, OFFSET_MASK};

/// A packed literal or `<length, offset>` token.
pub(super) type Token = u32;

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

/// `lengthCode`: length code minus 257 of a length minus 3.
#[inline(always)]
pub(super) fn length_code(xlength: u32) -> usize {
    LENGTH_CODES[xlength as usize & 255] as usize
}

/// `offsetCode`: offset code of an offset minus 1 (< 32768).
#[inline(always)]
pub(super) fn offset_code(off: u32) -> usize {
    crate::deflate::tables::offset_code(off) as usize
}
