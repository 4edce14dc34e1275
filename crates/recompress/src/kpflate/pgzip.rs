// Models the block structure of klauspost/pgzip 1.2.5 `gzip.go` (Writer,
// compressCurrent, compressBlock); the code is new, the design is pgzip's.
//
// Copyright (c) 2014 Klaus Post (pgzip, MIT License).
// Copyright (c) 2010 The Go Authors. All rights reserved (BSD-3-Clause).
// See the LICENSE file in this directory.

//! The deflate body of a klauspost/pgzip stream.
//!
//! pgzip cuts the input into blocks of exactly `block_size` bytes (the last
//! one shorter, possibly empty) and compresses each on its own goroutine with
//! a flate Writer re-armed by `ResetDict(dst, tail)`, where `tail` is the
//! last 16 KiB of the previous block (none for the first). Each block ends
//! with `Flush()` (a sync marker); the last one also with `Close()`. When
//! the input is a multiple of `block_size` (or empty) the last block is
//! empty and still gets both. The blocks are concatenated in order, so the
//! bytes do not depend on the number of goroutines.
//!
//! Because the flate output does not depend on how its input is split
//! across writes, [`PgzipEncoder`] streams each block straight into one
//! reused [`Encoder`] and keeps only the 16 KiB tail, never a whole block.
//!
//! Not modelled: a caller's own `pgzip.Writer.Flush()` mid-stream (it cuts
//! a short block; containers/image and umoci never call it) and gzip
//! headers with a ModTime, name or comment.

use super::compressor::Encoder;
use super::variant::Variant;

/// pgzip's `tailSize`: the dictionary carried from one block to the next.
pub const PGZIP_TAIL_SIZE: usize = 16384;
/// pgzip's default block size (containers/image uses it).
pub const PGZIP_DEFAULT_BLOCK_SIZE: usize = 1 << 20;

/// The 10-byte gzip header pgzip writes with a zero `ModTime`, no name and
/// OS 255: MTIME is `uint32(time.Time{}.Unix())`, XFL 2 for level 9 and 4
/// for level 1.
pub const fn pgzip_header(level: i32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0x00, 0x09, 0x6e, 0x88, xfl, 255]
}

/// The deflate body of a pgzip stream (no gzip header/trailer — the caller
/// frames it).
pub struct PgzipEncoder {
    enc: Encoder,
    block_size: usize,
    /// Bytes of the current block written so far.
    in_block: usize,
    /// The last `PGZIP_TAIL_SIZE` bytes of the current block, filled as
    /// they arrive.
    tail: Box<[u8; PGZIP_TAIL_SIZE]>,
}

impl PgzipEncoder {
    /// pgzip `NewWriterLevel(w, level)` + `SetConcurrency(block_size, _)`.
    /// `None` when pgzip would refuse: a level outside −2..=9 or
    /// `block_size <= 16384`.
    pub fn new(level: i32, block_size: usize) -> Option<PgzipEncoder> {
        PgzipEncoder::with_variant(level, block_size, Variant::Kp1_15)
    }

    /// The same over another version of klauspost/compress (pgzip has no
    /// go.mod: the program that links it decides which flate it gets).
    pub fn with_variant(level: i32, block_size: usize, variant: Variant) -> Option<PgzipEncoder> {
        if block_size <= PGZIP_TAIL_SIZE {
            return None;
        }
        let mut enc = Encoder::with_variant(level, variant)?;
        enc.reset_dict(&[]);
        Some(PgzipEncoder {
            enc,
            block_size,
            in_block: 0,
            tail: Box::new([0; PGZIP_TAIL_SIZE]),
        })
    }

    /// Compresses `input`, appending the bytes completed so far to `out`.
    pub fn write(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            let take = input.len().min(self.block_size - self.in_block);
            let (piece, rest) = input.split_at(take);
            self.enc.write(piece, out);
            self.keep_tail(piece);
            self.in_block += take;
            input = rest;
            if self.in_block == self.block_size {
                self.enc.flush(out);
                self.enc.reset_dict(&self.tail[..]);
                self.in_block = 0;
            }
        }
    }

    /// Ends the stream: flushes and closes the current (possibly empty)
    /// block. Use a new encoder for another stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.enc.flush(out);
        self.enc.finish(out);
    }

    /// Copies the part of `piece` (at `in_block` in the block) that falls in
    /// the block's last `PGZIP_TAIL_SIZE` bytes.
    fn keep_tail(&mut self, piece: &[u8]) {
        let tail_start = self.block_size - PGZIP_TAIL_SIZE;
        let end = self.in_block + piece.len();
        if end <= tail_start {
            return;
        }
        let from = self.in_block.max(tail_start);
        let src = &piece[from - self.in_block..];
        self.tail[from - tail_start..from - tail_start + src.len()].copy_from_slice(src);
    }
}

/// One pgzip block, independently of the others, so a caller can rebuild
/// blocks on several cores and concatenate the results in order.
///
/// `prev_block_tail` is the previous block or its last 16 KiB (only those
/// are used), empty for the first block; `last` marks the final block, which
/// is empty when the input length is a multiple of the block size.
///
/// # Panics
///
/// When `level` is not a klauspost level (−2..=9).
pub fn pgzip_block(level: i32, prev_block_tail: &[u8], block: &[u8], last: bool, out: &mut Vec<u8>) {
    pgzip_block_variant(level, Variant::Kp1_15, prev_block_tail, block, last, out);
}

/// [`pgzip_block`] over another version of klauspost/compress.
///
/// # Panics
///
/// When `level` is not a klauspost level (−2..=9).
pub fn pgzip_block_variant(
    level: i32,
    variant: Variant,
    prev_block_tail: &[u8],
    block: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) {
    let mut enc = Encoder::with_variant(level, variant).expect("pgzip_block: level must be in -2..=9");
    pgzip_block_with(&mut enc, prev_block_tail, block, last, out);
}

/// [`pgzip_block`] with a caller's encoder, re-armed for the block as pgzip re-arms the
/// Writers of its pool. Reusing one per thread spares a fresh encoder's megabyte of tables
/// and history per block (a fifth of a rebuild's CPU at 256 KiB blocks), and changes no
/// byte: `reset_dict` leaves nothing of the previous block in reach.
pub fn pgzip_block_with(
    enc: &mut Encoder,
    prev_block_tail: &[u8],
    block: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) {
    let dict = &prev_block_tail[prev_block_tail.len().saturating_sub(PGZIP_TAIL_SIZE)..];
    enc.reset_dict(dict);
    enc.write(block, out);
    enc.flush(out);
    if last {
        enc.finish(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYNC_THEN_END: [u8; 7] = [0x00, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00];

    fn body(level: i32, block: usize, data: &[u8]) -> Vec<u8> {
        let mut enc = PgzipEncoder::new(level, block).expect("valid settings");
        let mut out = Vec::new();
        enc.write(data, &mut out);
        enc.finish(&mut out);
        out
    }

    #[test]
    fn header_matches_pgzip_zero_modtime() {
        assert_eq!(
            pgzip_header(-1),
            [0x1f, 0x8b, 8, 0, 0x00, 0x09, 0x6e, 0x88, 0, 255]
        );
        assert_eq!(pgzip_header(1)[8], 4);
        assert_eq!(pgzip_header(9)[8], 2);
    }

    /// An empty stream is one empty block: a sync marker, then the end.
    #[test]
    fn empty_input_is_one_empty_block() {
        assert_eq!(body(-1, PGZIP_DEFAULT_BLOCK_SIZE, &[]), SYNC_THEN_END);
    }

    /// A whole number of blocks is followed by an empty final block.
    #[test]
    fn full_last_block_gets_an_empty_block_after_it() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let out = body(-1, 20_000, &data);
        assert!(out.ends_with(&SYNC_THEN_END));
        let mut first = Vec::new();
        pgzip_block(-1, &[], &data[..20_000], false, &mut first);
        assert!(out.starts_with(&first));
    }
}
