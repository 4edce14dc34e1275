// Port of the Writer part of klauspost/compress v1.15.12 `flate/deflate.go`
// (`compressor`: `write`, `store`, `storeHuff`, `storeFast`, `syncFlush`,
// `close`, `reset`, `fillWindow`, `ResetDict`); it follows the Go design
// closely.
//
// Copyright (c) 2009 The Go Authors. All rights reserved.
// Copyright (c) 2015 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! The streaming encoder: buffers input into fixed windows and hands each
//! full window to the level's encoder.
//!
//! A window is only encoded when it is full *and* more input arrives, or on
//! `flush`/`finish`; the window size is fixed per level. The output is
//! therefore a function of the input bytes and the flush points alone, not
//! of how the input was split across `write` calls.

use super::bit_writer::HuffmanBitWriter;
use super::fast::MAX_MATCH_OFFSET;
use super::lazy::Lazy;
use super::single_pass::FastEnc;
use super::token::Tokens;
use super::variant::Variant;
use crate::deflate::tables::MAX_STORE_BLOCK_SIZE;

/// Level −2: Huffman-only blocks of literals.
pub const HUFFMAN_ONLY: i32 = -2;
/// Level −1, which klauspost maps to level 5 and Go 1.27 to level 6.
pub const DEFAULT_COMPRESSION: i32 = -1;

enum Engine {
    /// Level 0: stored blocks.
    Store,
    /// Level −2: literal-only Huffman blocks.
    Huff,
    /// Levels 1–6: single-pass encoders over 64 KiB − 1 windows.
    Fast(FastEnc),
    /// Levels 7–9: lazy matching with hash chains (owns its window).
    Lazy(Box<Lazy>),
}

/// klauspost/compress 1.15.12 `flate.Writer`, producing identical bytes.
pub struct Encoder {
    level: i32,
    engine: Engine,
    w: HuffmanBitWriter,
    tokens: Tokens,
    /// Pending input for levels −2..=6 (`window[..window_end]`).
    window: Box<[u8]>,
    window_end: usize,
    /// Set while flushing or closing: encode whatever is pending.
    sync: bool,
}

impl Encoder {
    /// klauspost 1.15.12's `flate.NewWriter(w, level)`: −2 Huffman only, −1
    /// default (= 5), 0 stored, 1–9. `None` for any other level.
    pub fn new(level: i32) -> Option<Encoder> {
        Encoder::with_variant(level, Variant::Kp1_15)
    }

    /// `flate.NewWriter(w, level)` of the given version of the family.
    pub fn with_variant(level: i32, variant: Variant) -> Option<Encoder> {
        let level = if level == DEFAULT_COMPRESSION {
            variant.default_level()
        } else {
            level
        };
        let mut w = HuffmanBitWriter::new();
        w.trim_open_block_counts = variant.open_blocks_trim_code_counts();
        let (engine, window_size) = match level {
            0 => (Engine::Store, MAX_STORE_BLOCK_SIZE),
            HUFFMAN_ONLY => {
                w.log_new_table_penalty = 10;
                (Engine::Huff, 32 << 10)
            }
            1..=6 => {
                w.log_new_table_penalty = 7;
                (Engine::Fast(FastEnc::new(level, variant)), MAX_STORE_BLOCK_SIZE)
            }
            7..=9 => {
                w.log_new_table_penalty = 8;
                (Engine::Lazy(Lazy::new(level, variant)), 0)
            }
            _ => return None,
        };
        Some(Encoder {
            level,
            engine,
            w,
            tokens: Tokens::new(),
            window: vec![0; window_size].into_boxed_slice(),
            window_end: 0,
            sync: false,
        })
    }

    /// The effective level (−1 reads as the variant's default).
    pub fn level(&self) -> i32 {
        self.level
    }

    /// `Writer.ResetDict`: forgets all state and continues as if `dict` had
    /// been written without producing output (levels ≤ 0 ignore it).
    ///
    /// Call it after `flush` or `finish`: Go drops bits it had not written
    /// out yet, while this port has already appended whole bytes to `out`.
    pub fn reset_dict(&mut self, dict: &[u8]) {
        self.reset();
        self.fill_window(dict);
    }

    /// Compresses `input`, appending the bytes completed so far to `out`.
    pub fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.with_out(out, |e| e.write_inner(input));
    }

    /// `Writer.Flush`: encodes everything pending and ends with a sync
    /// marker (an empty stored block), so the output is byte aligned.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        self.end_with_empty_block(out, false);
        self.sync = false;
    }

    /// `Writer.Close`: encodes everything pending and ends the stream with
    /// an empty final block. Use `reset_dict` before writing again.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.end_with_empty_block(out, true);
        self.w.reset();
    }

    /// Encodes everything pending, then an empty stored block (final with `eof`).
    fn end_with_empty_block(&mut self, out: &mut Vec<u8>, eof: bool) {
        self.with_out(out, |e| {
            e.sync = true;
            e.step();
            e.w.write_stored_header(0, eof);
            e.w.flush();
        });
    }

    /// Runs `f` with the bit writer appending straight to `out`.
    fn with_out(&mut self, out: &mut Vec<u8>, f: impl FnOnce(&mut Self)) {
        std::mem::swap(&mut self.w.sink.out, out);
        f(self);
        std::mem::swap(&mut self.w.sink.out, out);
    }

    fn write_inner(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.window_full() || self.sync {
                self.step();
            }
            let n = self.fill(b);
            b = &b[n..];
        }
    }

    fn window_full(&self) -> bool {
        match &self.engine {
            Engine::Lazy(l) => l.window_full(),
            _ => self.window_end == self.window.len(),
        }
    }

    fn fill(&mut self, b: &[u8]) -> usize {
        match &mut self.engine {
            Engine::Lazy(l) => l.fill(b),
            _ => {
                let n = b.len().min(self.window.len() - self.window_end);
                self.window[self.window_end..self.window_end + n].copy_from_slice(&b[..n]);
                self.window_end += n;
                n
            }
        }
    }

    /// Encodes the pending window if it is full or `sync` is set.
    fn step(&mut self) {
        match &mut self.engine {
            Engine::Store => self.store(),
            Engine::Huff => self.store_huff(),
            Engine::Fast(_) => self.store_fast(),
            Engine::Lazy(l) => l.step(&mut self.tokens, &mut self.w, self.sync),
        }
    }

    fn write_stored_block(w: &mut HuffmanBitWriter, buf: &[u8]) {
        w.write_stored_header(buf.len(), false);
        w.write_bytes(buf);
    }

    /// Go's `store` (level 0).
    fn store(&mut self) {
        if self.window_end > 0 && (self.window_end == MAX_STORE_BLOCK_SIZE || self.sync) {
            Self::write_stored_block(&mut self.w, &self.window[..self.window_end]);
            self.window_end = 0;
        }
    }

    /// Go's `storeHuff` (level −2).
    fn store_huff(&mut self) {
        if self.window_end < self.window.len() && !self.sync || self.window_end == 0 {
            return;
        }
        self.w
            .write_block_huff(false, &self.window[..self.window_end], self.sync);
        self.window_end = 0;
    }

    /// Go's `storeFast` (levels 1–6): encode a full window, or on sync
    /// whatever is pending; tiny tails are stored or Huffman coded without
    /// matching, which also forgets the history.
    fn store_fast(&mut self) {
        let Engine::Fast(fast) = &mut self.engine else {
            unreachable!("store_fast on a fast level")
        };
        let end = self.window_end;
        let window = &self.window[..end];
        if end < self.window.len() {
            if !self.sync {
                return;
            }
            if end < 128 {
                if end == 0 {
                    return;
                }
                if end <= 32 {
                    Self::write_stored_block(&mut self.w, window);
                } else {
                    self.w.write_block_huff(false, window, true);
                }
                self.tokens.reset();
                self.window_end = 0;
                fast.reset();
                return;
            }
        }
        fast.encode(&mut self.tokens, window);
        if self.tokens.n == 0 {
            // No matches at all: store.
            Self::write_stored_block(&mut self.w, window);
        } else if self.tokens.n > end - (end >> 4) {
            // Matches removed less than 1/16th: Huffman code the bytes.
            self.w.write_block_huff(false, window, self.sync);
        } else {
            self.w
                .write_block_dynamic(&mut self.tokens, false, Some(window), self.sync);
        }
        self.tokens.reset();
        self.window_end = 0;
    }

    /// Go's `compressor.reset`.
    fn reset(&mut self) {
        self.w.reset();
        self.sync = false;
        self.window_end = 0;
        match &mut self.engine {
            Engine::Fast(f) => {
                f.reset();
                self.tokens.reset();
            }
            Engine::Lazy(l) => {
                l.reset();
                self.tokens.reset();
            }
            Engine::Store | Engine::Huff => {}
        }
    }

    /// Go's `fillWindow`: the fast levels encode the dictionary's last
    /// 32 KiB and drop the tokens, leaving only the history and tables.
    fn fill_window(&mut self, dict: &[u8]) {
        match &mut self.engine {
            Engine::Store | Engine::Huff => {}
            Engine::Fast(f) => {
                let dict = &dict[dict.len().saturating_sub(MAX_MATCH_OFFSET as usize)..];
                f.encode(&mut self.tokens, dict);
                self.tokens.reset();
            }
            Engine::Lazy(l) => l.fill_window(dict),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let word: &[u8] = match x % 7 {
                0 => b"layer ",
                1 => b"blob\n",
                2 => b"sha256:",
                3 => b"usr/lib/",
                _ => &x.to_le_bytes()[..(x % 5) as usize],
            };
            v.extend_from_slice(word);
        }
        v.truncate(n);
        v
    }

    fn encode(level: i32, dict: &[u8], data: &[u8], splits: &[usize]) -> Vec<u8> {
        let mut enc = Encoder::new(level).expect("valid level");
        enc.reset_dict(dict);
        let mut out = Vec::new();
        let mut rest = data;
        for &n in splits.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = n.min(rest.len());
            enc.write(&rest[..n], &mut out);
            rest = &rest[n..];
        }
        enc.finish(&mut out);
        out
    }

    /// Write sizes never change the output (the window, not the caller,
    /// decides when to encode).
    #[test]
    fn output_does_not_depend_on_write_sizes() {
        let data = sample(300_000);
        for level in -2..=9 {
            let whole = encode(level, b"", &data, &[usize::MAX]);
            assert_eq!(
                whole,
                encode(level, b"", &data, &[1, 7, 65535, 100, 65536, 3]),
                "level {level}"
            );
        }
    }

    /// Like `cur_rebase_keeps_tokens` for levels 7-9: bringing the chain base
    /// back to 1 keeps every reachable entry.
    #[test]
    fn hash_offset_rebase_keeps_output() {
        let data = sample(400_000);
        for level in 7..=9 {
            let want = encode(level, &data[..5000], &data, &[usize::MAX]);
            let mut enc = Encoder::new(level).expect("valid level");
            let Engine::Lazy(lazy) = &mut enc.engine else {
                unreachable!("levels 7-9 are lazy")
            };
            lazy.force_hash_offset((1 << 28) - 3 * 32768);
            enc.fill_window(&data[..5000]);
            let mut out = Vec::new();
            enc.write(&data, &mut out);
            enc.finish(&mut out);
            assert!(want == out, "level {level}");
        }
    }

    /// The smallest streams: an empty stored block as sync marker, a 10-bit
    /// fixed block as the end.
    #[test]
    fn empty_stream_bytes() {
        let mut enc = Encoder::new(-1).expect("valid level");
        let mut out = Vec::new();
        enc.flush(&mut out);
        enc.finish(&mut out);
        assert_eq!(out, [0x00, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00]);
    }
}
