// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Bit-exact port of the encoder of Go's compress/flate (deflate.go of Go
// 1.19). The step/fill structure of the compressor and its level dispatch
// follow Go's design closely, hence Go's license notice above.

//! A bit-exact port of Go's `compress/flate` encoder.
//!
//! Docker/moby/buildkit write gzip layers with Go's `compress/gzip` at
//! `DefaultCompression` (level 6), crane/ko with `BestSpeed`. To rebuild such
//! a layer from its tar we must emit exactly the bytes Go emits, so this
//! module reproduces Go's algorithm decision by decision: the same tokens,
//! block boundaries, block types and Huffman codes. Go's output is the same
//! for Go 1.8 to 1.26 at levels 2-9, and for 1.16 to 1.26 at `BestSpeed`.
//!
//! Go's output depends on where `Write` calls start, though rarely: the
//! window slides at the start of a `Write` once the position has reached
//! 65274, and what is not yet searched then is searched after the slide,
//! which cannot reach as far back. A boundary changes the output only if it
//! moves that point: the window must be filled to within 262 bytes of its end
//! at the boundary (or the stream must end before the window fills), and a
//! match reaching over ~32500 bytes back must be affected. We run Go's
//! fill/step schedule call for call, so for the same sequence of writes
//! (and `flush`es) we produce the same bytes; to rebuild a blob, feed the
//! writes its producer made, or at least its boundaries at stream offsets
//! (>= 65278) whose remainder mod 32768 is 32510 or more: no other boundary
//! can matter. For a tar written by Go's archive/tar (moby), boundaries at
//! multiples of 512 are harmless, so what matters is where each entry's data
//! ends (its padding is a separate write). Levels 0, 1 and -2 cut blocks every
//! 65535 input bytes whatever the writes. See the differential tests
//! `go_output_depends_on_write_boundaries` and
//! `go_aligned_write_boundaries_match_one_write`.
//!
//! How much Go has passed to its `io.Writer` after each call also depends on
//! write sizes; we hand over exactly that much after each call as well.
//!
//! Memory is bounded by Go's buffers: under 1 MiB per encoder.

mod bitwriter;
mod fast;
mod lazy;
mod token;

use bitwriter::{BitWriter, MAX_STORE_BLOCK_SIZE};
use fast::DeflateFast;
use lazy::Lazy;
use token::Token;

/// Go's `HuffmanOnly`.
const HUFFMAN_ONLY: i32 = -2;
/// Go's `DefaultCompression`, which means level 6.
const DEFAULT_COMPRESSION: i32 = -1;

/// A streaming raw-deflate encoder producing Go's exact output.
pub struct Encoder {
    w: BitWriter,
    engine: Engine,
    /// Set by `finish`, like Go's `errWriterClosed`.
    closed: bool,
    /// Stream bytes Go would still hold in its 240-byte buffer after the last call.
    held: Vec<u8>,
    /// Whole bytes of the stream since it was last byte-aligned by a flush (held ones
    /// included).
    since_flush: usize,
}

/// Go's `bufferFlushSize`: its bit writer hands its byte buffer to the `io.Writer` once it
/// holds this many bytes, which it fills 6 at a time (every 48 bits).
const GO_BUFFER_FLUSH_SIZE: usize = 240;

/// The per-level strategies of Go's `compressor` (its `fill`/`step` pair).
enum Engine {
    /// Level 0: stored blocks of 65535 bytes.
    Store(Buffer),
    /// HuffmanOnly: literal-only blocks of 65535 bytes.
    Huff(Buffer),
    /// Level 1: Snappy-style matching per 65535-byte block.
    Speed(Box<Speed>),
    /// Levels 2-9: hash chains over a sliding window.
    Lazy(Box<Lazy>),
}

/// Go's `fillStore` window for the levels that work block by block.
struct Buffer {
    window: Box<[u8]>,
    window_end: usize,
}

impl Buffer {
    fn new() -> Self {
        Buffer {
            window: vec![0; MAX_STORE_BLOCK_SIZE].into_boxed_slice(),
            window_end: 0,
        }
    }

    /// `fillStore`.
    fn fill(&mut self, b: &[u8]) -> usize {
        let n = b.len().min(self.window.len() - self.window_end);
        self.window[self.window_end..self.window_end + n].copy_from_slice(&b[..n]);
        self.window_end += n;
        n
    }

    fn data(&self) -> &[u8] {
        &self.window[..self.window_end]
    }
}

/// BestSpeed state: Go keeps it in the compressor plus `deflateFast`.
struct Speed {
    buf: Buffer,
    fast: DeflateFast,
    tokens: Vec<Token>,
}

impl Speed {
    /// `encSpeed`: compress the buffered block once it is full, or on sync.
    fn step(&mut self, w: &mut BitWriter, sync: bool) {
        let end = self.buf.window_end;
        if end < MAX_STORE_BLOCK_SIZE {
            if !sync {
                return;
            }
            if end < 128 {
                self.small_block(w);
                return;
            }
        }
        self.tokens.clear();
        self.fast.encode(&mut self.tokens, self.buf.data());
        // Under 1/16 removed by matching: Huffman-code the literals instead.
        if self.tokens.len() > end - (end >> 4) {
            w.write_block_huff(false, self.buf.data());
        } else {
            w.write_block_dynamic(&self.tokens, false, self.buf.data());
        }
        self.buf.window_end = 0;
    }

    /// Go's special case for a sync with under 128 bytes: no matching, and
    /// the match history is dropped.
    fn small_block(&mut self, w: &mut BitWriter) {
        match self.buf.window_end {
            0 => return,
            1..=16 => w.write_stored_block(self.buf.data(), false),
            _ => w.write_block_huff(false, self.buf.data()),
        }
        self.buf.window_end = 0;
        self.fast.reset();
    }
}

impl Encoder {
    /// level: -2 HuffmanOnly, -1 DefaultCompression (=6), 0 NoCompression,
    /// 1 BestSpeed ..= 9 BestCompression (Go's constants). `None` for any
    /// other level, where Go's `NewWriter` returns an error.
    pub fn new(level: i32) -> Option<Encoder> {
        let engine = match level {
            0 => Engine::Store(Buffer::new()),
            HUFFMAN_ONLY => Engine::Huff(Buffer::new()),
            1 => Engine::Speed(Box::new(Speed {
                buf: Buffer::new(),
                fast: DeflateFast::new(),
                tokens: Vec::with_capacity(MAX_STORE_BLOCK_SIZE + 1),
            })),
            DEFAULT_COMPRESSION => Engine::Lazy(Box::new(Lazy::new(lazy::params(6)?))),
            _ => Engine::Lazy(Box::new(Lazy::new(lazy::params(level)?))),
        };
        Some(Encoder {
            w: BitWriter::new(),
            engine,
            closed: false,
            held: Vec::new(),
            since_flush: 0,
        })
    }

    /// Feed plain bytes; appends every compressed byte the Go encoder would
    /// have emitted so far to `out`.
    ///
    /// Panics after [`Encoder::finish`] (Go returns an error there).
    pub fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        assert!(!self.closed, "goflate: write after finish");
        self.with_out(out, |e| {
            let mut b = input;
            // Go's `write`: process what the window holds, then refill it.
            while !b.is_empty() {
                e.step(false);
                let n = e.fill(b);
                b = &b[n..];
            }
        });
    }

    /// Go's `(*Writer).Flush()`: sync flush (empty stored block).
    ///
    /// Panics after [`Encoder::finish`] (Go returns an error there).
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        assert!(!self.closed, "goflate: flush after finish");
        self.with_out(out, |e| {
            e.step(true);
            e.w.write_stored_header(0, false);
            e.w.flush();
        });
    }

    /// Go's `(*Writer).Close()`: final block; after this the encoder is
    /// finished. Calling it again does nothing, as in Go.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.with_out(out, |e| {
            e.step(true);
            // Go always ends with an empty final stored block.
            e.w.write_stored_header(0, true);
            e.w.flush();
        });
        self.closed = true;
    }

    /// Go's `(*Writer).Reset` with no dictionary, to reuse allocations.
    pub fn reset(&mut self) {
        self.w.reset();
        self.held.clear();
        self.since_flush = 0;
        self.closed = false;
        match &mut self.engine {
            Engine::Store(buf) | Engine::Huff(buf) => buf.window_end = 0,
            Engine::Speed(s) => {
                s.buf.window_end = 0;
                s.tokens.clear();
                // Like Go, only bump the history offsets; this keeps the
                // state (and so the output) identical to Go's after Reset.
                s.fast.reset();
            }
            Engine::Lazy(l) => l.reset(),
        }
    }

    /// Lends `out` to the bit writer for one call so that output is appended in place,
    /// then keeps back what Go would not have handed over yet: after a flush, Go's buffer
    /// releases 240 bytes for every 40 groups of 48 bits, so of the bits written since the
    /// last flush, all but the last `bits % 1920` stay in it (with the bytes held before).
    fn with_out(&mut self, out: &mut Vec<u8>, f: impl FnOnce(&mut Self)) {
        let start = out.len();
        out.extend_from_slice(&self.held);
        let before = out.len();
        self.w.sink.flushed_at = usize::MAX;
        std::mem::swap(&mut self.w.sink.out, out);
        f(self);
        let pending = self.w.sink.spill_whole_bytes();
        std::mem::swap(&mut self.w.sink.out, out);
        self.since_flush = match self.w.sink.flushed_at {
            usize::MAX => self.since_flush + (out.len() - before),
            at => out.len() - at,
        };
        let bits = 8 * self.since_flush as u64 + u64::from(pending);
        let released = GO_BUFFER_FLUSH_SIZE * (bits / (8 * GO_BUFFER_FLUSH_SIZE as u64)) as usize;
        let visible = out.len() - (self.since_flush - released);
        debug_assert!(visible >= start, "Go never takes back bytes it handed over");
        // Whatever the count says, what the caller had before this call stays.
        let visible = visible.max(start);
        self.held.clear();
        self.held.extend_from_slice(&out[visible..]);
        out.truncate(visible);
    }

    /// Go's `d.fill`.
    fn fill(&mut self, b: &[u8]) -> usize {
        match &mut self.engine {
            Engine::Store(buf) | Engine::Huff(buf) => buf.fill(b),
            Engine::Speed(s) => s.buf.fill(b),
            Engine::Lazy(l) => l.fill(b),
        }
    }

    /// Go's `d.step`, with Go's `d.sync` as a parameter.
    fn step(&mut self, sync: bool) {
        let w = &mut self.w;
        match &mut self.engine {
            Engine::Store(buf) => {
                // `store`
                if buf.window_end > 0 && (buf.window_end == MAX_STORE_BLOCK_SIZE || sync) {
                    w.write_stored_block(buf.data(), false);
                    buf.window_end = 0;
                }
            }
            Engine::Huff(buf) => {
                // `storeHuff`
                if (buf.window_end < buf.window.len() && !sync) || buf.window_end == 0 {
                    return;
                }
                w.write_block_huff(false, buf.data());
                buf.window_end = 0;
            }
            Engine::Speed(s) => s.step(w, sync),
            Engine::Lazy(l) => l.deflate(w, sync),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Encoder;

    fn compress(level: i32, input: &[u8]) -> Vec<u8> {
        let mut enc = Encoder::new(level).unwrap();
        let mut out = Vec::new();
        enc.write(input, &mut out);
        enc.finish(&mut out);
        out
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Golden outputs from Go 1.19 (tests/go/goflate-ref), so that a broken
    /// port shows here even where Go is not installed. The differential test
    /// is the real check.
    #[test]
    fn matches_go_golden_outputs() {
        let input = b"hello, hello, hello world\n";
        let stored = "001a00e5ff68656c6c6f2c2068656c6c6f2c2068656c6c6f20776f726c640a010000ffff";
        let lz = "ca48cdc9c9d75140a614caf38b7252b800010000ffff";
        for (level, want) in [(-2, stored), (0, stored), (1, stored), (6, lz), (9, lz)] {
            assert_eq!(hex(&compress(level, input)), want, "level {level}");
        }
        assert_eq!(hex(&compress(6, b"")), "010000ffff");
    }

    /// Write boundaries matter only within the last 258 bytes of a window
    /// position (offset mod 32768 in 32510..32768), so boundaries at multiples
    /// of 512 (tar headers, 32 KiB chunks) give the output of one big write.
    #[test]
    fn aligned_write_boundaries_do_not_change_output() {
        let input: Vec<u8> = (0..300_000u64).map(|i| (i * i / 7 % 251) as u8).collect();
        for level in [-2, 0, 1, 2, 6, 9] {
            let whole = compress(level, &input);
            for chunk in [512, 1536, 32768] {
                let mut enc = Encoder::new(level).unwrap();
                let mut out = Vec::new();
                for part in input.chunks(chunk) {
                    enc.write(part, &mut out);
                }
                enc.finish(&mut out);
                assert!(out == whole, "level {level}, {chunk}-byte writes");
            }
        }
    }

    #[test]
    fn finish_twice_and_reset() {
        let mut enc = Encoder::new(-1).unwrap();
        let mut out = Vec::new();
        enc.write(b"abc", &mut out);
        enc.finish(&mut out);
        let first = out.clone();
        enc.finish(&mut out);
        assert_eq!(out, first, "a second finish adds nothing, as in Go");
        enc.reset();
        let mut again = Vec::new();
        enc.write(b"abc", &mut again);
        enc.finish(&mut again);
        assert_eq!(again, first);
    }

    #[test]
    #[should_panic(expected = "write after finish")]
    fn write_after_finish_panics() {
        let mut enc = Encoder::new(6).unwrap();
        let mut out = Vec::new();
        enc.finish(&mut out);
        enc.write(b"x", &mut out);
    }
}
