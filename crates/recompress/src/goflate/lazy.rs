// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Port of the hash-chain matcher of Go's compress/flate/deflate.go (Go 1.19),
// used for levels 2 to 9. Window handling, hash chains and the (lazy)
// matching loop follow Go's design line by line, hence Go's license notice.

//! Levels 2-9: hash chains over a 64 KiB window, greedy (2-3) or lazy (4-9).
//!
//! Every quirk of Go's loop is kept because each one decides token
//! boundaries: the stale `chain_head` used near the end of input, the
//! `hash_offset` rebasing, `block_start` becoming "unknown" (no stored block
//! possible) when the window slides past it, and blocks cut at exactly
//! 16384 tokens.

use super::bitwriter::BitWriter;
use super::token::{Token, literal_token, match_token};

const LOG_WINDOW_SIZE: usize = 15;
const WINDOW_SIZE: usize = 1 << LOG_WINDOW_SIZE;
const BASE_MATCH_LENGTH: usize = 3;
const MIN_MATCH_LENGTH: usize = 4;
const MAX_MATCH_LENGTH: usize = 258;
const BASE_MATCH_OFFSET: usize = 1;
const MAX_FLATE_BLOCK_TOKENS: usize = 1 << 14;
const HASH_BITS: u32 = 17;
const HASH_SIZE: usize = 1 << HASH_BITS;
const MAX_HASH_OFFSET: isize = 1 << 24;
/// `skipNever`: levels 4-9 never skip hashing inside a match.
const SKIP_NEVER: usize = i32::MAX as usize;
/// Go's `math.MaxInt32` marking a block start that slid out of the window.
const BLOCK_START_UNKNOWN: usize = i32::MAX as usize;
/// The window slides once `index` reaches this point.
const SLIDE_AT: usize = 2 * WINDOW_SIZE - (MIN_MATCH_LENGTH + MAX_MATCH_LENGTH);

/// Go's `compressionLevel` row (the `level` column is implied).
#[derive(Clone, Copy)]
pub(super) struct Params {
    good: usize,
    lazy: usize,
    nice: usize,
    chain: usize,
    fast_skip_hashing: usize,
}

/// Go's `levels` table for levels 2 to 9.
pub(super) fn params(level: i32) -> Option<Params> {
    let (good, lazy, nice, chain, fast_skip_hashing) = match level {
        2 => (4, 0, 16, 8, 5),
        3 => (4, 0, 32, 32, 6),
        4 => (4, 4, 16, 16, SKIP_NEVER),
        5 => (8, 16, 32, 32, SKIP_NEVER),
        6 => (8, 16, 128, 128, SKIP_NEVER),
        7 => (8, 32, 128, 256, SKIP_NEVER),
        8 => (32, 128, 258, 1024, SKIP_NEVER),
        9 => (32, 258, 258, 4096, SKIP_NEVER),
        _ => return None,
    };
    Some(Params {
        good,
        lazy,
        nice,
        chain,
        fast_skip_hashing,
    })
}

/// `hash4`: hash of the 4 bytes at the start of `b`, read big-endian.
#[inline(always)]
fn hash4(b: &[u8]) -> usize {
    let v = u32::from_be_bytes(b[..4].try_into().unwrap());
    (v.wrapping_mul(0x1e35a7bd) >> (32 - HASH_BITS)) as usize
}

/// Four bytes at `i`, as one comparable value.
#[inline(always)]
fn load32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}

/// `matchLen`: equal leading bytes of `a` and `b`, at most `max`.
#[inline(always)]
fn match_len(a: &[u8], b: &[u8], max: usize) -> usize {
    let (a, b) = (&a[..max], &b[..max]);
    let mut i = 0;
    while i + 8 <= max {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap())
            ^ u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < max && a[i] == b[i] {
        i += 1;
    }
    i
}

/// A zeroed fixed-size array on the heap (never on the stack: they are big).
fn zeroed_box<T: Copy + Default, const N: usize>() -> Box<[T; N]> {
    vec![T::default(); N]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("length is N"))
}

pub(super) struct Lazy {
    p: Params,
    /// Two window sizes: the look-back half and the lookahead half.
    window: Box<[u8; 2 * WINDOW_SIZE]>,
    /// `hashHead[h]`: latest position (+ `hash_offset`) with hash h, 0 = none.
    /// A fixed-size array, so indexing it with a 17-bit hash needs no check.
    hash_head: Box<[u32; HASH_SIZE]>,
    /// Go's `hashPrev[pos & mask]` holds the previous position with the same
    /// hash (+ `hash_offset`), in a ring of 32768. We index by window
    /// position + 1 instead (twice as many slots, shifted down on each slide)
    /// and store the previous position + 1, 0 meaning none (a position
    /// before the window, which Go's walk would reject anyway). A chain walk
    /// step is then `v = prev_pos[v]`: one dependent load with nothing else
    /// on the critical path, and no bounds check since `v` is a `u16`. The
    /// walk is load-latency bound, so this matters at levels 4-9.
    /// `prev_pos[p + 1]` is only read for positions on a chain, which were
    /// all inserted in the current window; positions stay below 65533.
    prev_pos: Box<[u16; 2 * WINDOW_SIZE]>,
    /// Added to positions stored in the chains, so that 0 can mean "none"
    /// and slides need not rewrite the tables (until it grows too big).
    hash_offset: isize,
    chain_head: isize,
    /// Unprocessed data is `window[index..window_end]`.
    index: usize,
    window_end: usize,
    /// Window position where the pending tokens start.
    block_start: usize,
    /// Lazy matching holds back `window[index - 1]` as a possible literal.
    byte_available: bool,
    tokens: Vec<Token>,
    length: usize,
    offset: usize,
    max_insert_index: usize,
}

impl Lazy {
    pub(super) fn new(p: Params) -> Self {
        Lazy {
            p,
            window: zeroed_box(),
            hash_head: zeroed_box(),
            prev_pos: zeroed_box(),
            hash_offset: 1,
            chain_head: -1,
            index: 0,
            window_end: 0,
            block_start: 0,
            byte_available: false,
            tokens: Vec::with_capacity(MAX_FLATE_BLOCK_TOKENS + 1),
            length: MIN_MATCH_LENGTH - 1,
            offset: 0,
            max_insert_index: 0,
        }
    }

    /// Go's `reset` for levels 2-9.
    pub(super) fn reset(&mut self) {
        self.chain_head = -1;
        self.hash_head.fill(0);
        self.prev_pos.fill(0);
        self.hash_offset = 1;
        self.index = 0;
        self.window_end = 0;
        self.block_start = 0;
        self.byte_available = false;
        self.tokens.clear();
        self.length = MIN_MATCH_LENGTH - 1;
        self.offset = 0;
        self.max_insert_index = 0;
    }

    /// `fillDeflate`: slide the window if needed, then copy in what fits.
    ///
    /// Sliding here, where the input arrives, rather than when the search
    /// needs room, is what makes Go's output depend on write boundaries
    /// (see the module docs); so it must stay exactly here.
    pub(super) fn fill(&mut self, b: &[u8]) -> usize {
        if self.index >= SLIDE_AT {
            self.slide();
        }
        let n = b.len().min(self.window.len() - self.window_end);
        self.window[self.window_end..self.window_end + n].copy_from_slice(&b[..n]);
        self.window_end += n;
        n
    }

    fn slide(&mut self) {
        self.window.copy_within(WINDOW_SIZE..2 * WINDOW_SIZE, 0);
        self.index -= WINDOW_SIZE;
        self.window_end -= WINDOW_SIZE;
        if self.block_start >= WINDOW_SIZE {
            self.block_start -= WINDOW_SIZE;
        } else {
            self.block_start = BLOCK_START_UNKNOWN;
        }
        for v in 1..WINDOW_SIZE {
            // Previous positions that slide out of the window become "none".
            self.prev_pos[v] = self.prev_pos[v + WINDOW_SIZE].saturating_sub(WINDOW_SIZE as u16);
        }
        // Position 65535 is never inserted (it has no 4-byte lookahead).
        self.prev_pos[WINDOW_SIZE] = 0;
        self.hash_offset += WINDOW_SIZE as isize;
        if self.hash_offset > MAX_HASH_OFFSET {
            self.rebase_hashes();
        }
    }

    /// Pulls stored chain positions back down before they overflow `u32`,
    /// turning the ones now below 1 into "none" as Go does.
    fn rebase_hashes(&mut self) {
        let delta = self.hash_offset - 1;
        self.hash_offset -= delta;
        self.chain_head -= delta;
        let delta = delta as u32;
        for v in self.hash_head.iter_mut() {
            *v = v.saturating_sub(delta);
        }
    }

    /// Inserts position `index` into its hash chain (Go's inlined update);
    /// returns the previous head, as Go stores it.
    #[inline(always)]
    fn insert(&mut self, index: usize) -> u32 {
        let hh = &mut self.hash_head[hash4(&self.window[index..])];
        let prev = *hh;
        *hh = (index as isize + self.hash_offset) as u32;
        // prev == 0 is "none"; otherwise `prev_index` < index <= u16::MAX.
        let prev_index = prev as isize - self.hash_offset;
        self.prev_pos[index + 1] = if prev == 0 || prev_index < 0 {
            0
        } else {
            prev_index as u16 + 1
        };
        prev
    }

    /// `writeBlock`: emit the pending tokens as one block ending at `index`.
    fn write_block(&mut self, w: &mut BitWriter, index: usize) {
        if index > 0 {
            let window = (self.block_start <= index).then(|| &self.window[self.block_start..index]);
            self.block_start = index;
            w.write_block(&self.tokens, false, window);
        }
        self.tokens.clear();
    }

    /// `deflate`: tokenize the window as far as the lookahead allows (all of
    /// it when `sync`), writing a block every 16384 tokens.
    pub(super) fn deflate(&mut self, w: &mut BitWriter, sync: bool) {
        if self.window_end - self.index < MIN_MATCH_LENGTH + MAX_MATCH_LENGTH && !sync {
            return;
        }
        // Go computes this as a signed int; below 0 it behaves like 0.
        self.max_insert_index = self.window_end.saturating_sub(MIN_MATCH_LENGTH - 1);
        if self.p.fast_skip_hashing == SKIP_NEVER {
            self.deflate_loop::<true>(w, sync);
        } else {
            self.deflate_loop::<false>(w, sync);
        }
    }

    /// The body of `deflate`, specialised on whether matching is lazy.
    fn deflate_loop<const LAZY: bool>(&mut self, w: &mut BitWriter, sync: bool) {
        loop {
            debug_assert!(self.index <= self.window_end, "index > windowEnd");
            let lookahead = self.window_end - self.index;
            if lookahead < MIN_MATCH_LENGTH + MAX_MATCH_LENGTH {
                if !sync {
                    return;
                }
                if lookahead == 0 {
                    self.finish_block(w);
                    return;
                }
            }
            if self.index < self.max_insert_index {
                // Near the end nothing is inserted and `chain_head` keeps
                // its previous value, which Go then still searches from.
                self.chain_head = self.insert(self.index) as isize;
            }
            let prev_length = self.length;
            let prev_offset = self.offset;
            self.length = MIN_MATCH_LENGTH - 1;
            self.offset = 0;
            let min_index = self.index.saturating_sub(WINDOW_SIZE) as isize;
            let head = self.chain_head - self.hash_offset;
            let search = if LAZY {
                lookahead > prev_length && prev_length < self.p.lazy
            } else {
                lookahead > MIN_MATCH_LENGTH - 1
            };
            if head >= min_index && search {
                if let Some((len, off)) = self.find_match(self.index, head, lookahead) {
                    self.length = len;
                    self.offset = off;
                }
            }
            let emit_match = if LAZY {
                prev_length >= MIN_MATCH_LENGTH && self.length <= prev_length
            } else {
                self.length >= MIN_MATCH_LENGTH
            };
            if emit_match {
                if LAZY {
                    self.emit_lazy_match(w, prev_length, prev_offset);
                } else {
                    self.emit_greedy_match(w);
                }
            } else {
                self.step_literal::<LAZY>(w);
            }
        }
    }

    /// End of input on a sync: flush the held-back byte and the block.
    fn finish_block(&mut self, w: &mut BitWriter) {
        if self.byte_available {
            let lit = self.window[self.index - 1];
            self.tokens.push(literal_token(lit));
            self.byte_available = false;
        }
        if !self.tokens.is_empty() {
            self.write_block(w, self.index);
        }
    }

    /// Levels 4-9: the previous position's match beat this one; emit it and
    /// hash every position it covers.
    fn emit_lazy_match(&mut self, w: &mut BitWriter, prev_length: usize, prev_offset: usize) {
        self.tokens.push(match_token(
            (prev_length - BASE_MATCH_LENGTH) as u32,
            (prev_offset - BASE_MATCH_OFFSET) as u32,
        ));
        // `index - 1` and `index` are already hashed.
        let new_index = self.index + prev_length - 1;
        self.insert_range(self.index + 1, new_index);
        self.index = new_index;
        self.byte_available = false;
        self.length = MIN_MATCH_LENGTH - 1;
        self.block_full(w);
    }

    /// Levels 2-3: emit the match found here; hash its positions only if it
    /// is short.
    fn emit_greedy_match(&mut self, w: &mut BitWriter) {
        self.tokens.push(match_token(
            (self.length - BASE_MATCH_LENGTH) as u32,
            (self.offset - BASE_MATCH_OFFSET) as u32,
        ));
        if self.length <= self.p.fast_skip_hashing {
            let new_index = self.index + self.length;
            self.insert_range(self.index + 1, new_index);
            self.index = new_index;
        } else {
            self.index += self.length;
        }
        self.block_full(w);
    }

    /// Hashes positions `from..to` that still have 4 bytes of lookahead.
    fn insert_range(&mut self, from: usize, to: usize) {
        for index in from..to.min(self.max_insert_index) {
            self.insert(index);
        }
    }

    /// Writes a block once it holds `maxFlateBlockTokens` tokens.
    #[inline(always)]
    fn block_full(&mut self, w: &mut BitWriter) {
        if self.tokens.len() == MAX_FLATE_BLOCK_TOKENS {
            self.write_block(w, self.index);
        }
    }

    /// No match to emit: emit a literal (the held-back byte when lazy, if
    /// any) and advance by one.
    #[inline(always)]
    fn step_literal<const LAZY: bool>(&mut self, w: &mut BitWriter) {
        if !LAZY || self.byte_available {
            let i = if LAZY { self.index - 1 } else { self.index };
            self.tokens.push(literal_token(self.window[i]));
            if self.tokens.len() == MAX_FLATE_BLOCK_TOKENS {
                self.write_block(w, i + 1);
            }
        }
        self.index += 1;
        if LAZY {
            self.byte_available = true;
        }
    }

    /// `findMatch`: the longest match at `pos` over at most `chain` chain
    /// entries starting at `prev_head`, if one beats length 3.
    fn find_match(&self, pos: usize, prev_head: isize, lookahead: usize) -> Option<(usize, usize)> {
        let min_match_look = lookahead.min(MAX_MATCH_LENGTH);
        let win = &self.window[..pos + min_match_look];
        // Stop at a match at least `nice` long.
        let nice = self.p.nice.min(min_match_look);
        let mut length = MIN_MATCH_LENGTH - 1;
        // Go passes prevLength = 3 here, so the 1/4-chain shortcut for an
        // already good match never applies; kept for fidelity.
        let mut tries = self.p.chain;
        if length >= self.p.good {
            tries >>= 2;
        }
        // Go compares one byte, win[i + length], before measuring a
        // candidate. We compare the 4 bytes ending there: the extra bytes
        // must match too for the candidate to beat `length`, so this rejects
        // exactly the candidates Go would measure and then reject, and skips
        // most of those measurements (and their mispredicted branches).
        let mut w_end = load32(win, pos + length - 3);
        let w_pos = &win[pos..];
        let min_index = pos as isize - WINDOW_SIZE as isize;
        // Chain entries are walked as position + 1 (see `prev_pos`): the walk
        // ends at Go's `i == minIndex` (that slot was overwritten in Go's
        // ring) and when `i < minIndex || i < 0`.
        let stop = min_index + 1;
        let floor = min_index.max(0) as usize;
        let mut found = None;
        let mut v = prev_head as usize + 1;
        while tries > 0 {
            let i = v - 1;
            if w_end == load32(win, i + length - 3) {
                let n = match_len(&win[i..], w_pos, min_match_look);
                // Length-4 matches only count when close (zlib's TOO_FAR).
                if n > length && (n > MIN_MATCH_LENGTH || pos - i <= 4096) {
                    length = n;
                    found = Some((n, pos - i));
                    if n >= nice {
                        break;
                    }
                    w_end = load32(win, pos + n - 3);
                }
            }
            if v as isize == stop {
                break;
            }
            v = usize::from(self.prev_pos[v]);
            if v <= floor {
                break;
            }
            tries -= 1;
        }
        found
    }
}
