// Port of klauspost/compress zstd/enc_base.go and zstd/hash.go (1.18.0); it follows the
// Go design closely.
//
// Copyright 2019+ Klaus Post. All rights reserved.
// Based on work by Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! What the four match finders share: the history buffer, the position base `cur` that
//! table entries are stored relative to, loads, hashes and match extension.
//!
//! Every accept test of the finders is relative (`s - t < max_match_off`), so entries
//! from an earlier frame or from before a rebase are out of reach by construction; that is
//! why an encoder reused from a pool writes the same bytes as a fresh one.

pub(crate) const MAX_COMPRESSED_BLOCK_SIZE: usize = 128 << 10;
pub(crate) const ZSTD_MIN_MATCH: u32 = 3;
/// Only bounds backward extension; 128 KiB blocks never reach it.
pub(crate) const MAX_MATCH_LENGTH: i32 = 131074;

const PRIME4BYTES: u32 = 2654435761;
const PRIME5BYTES: u64 = 889523592379;
const PRIME6BYTES: u64 = 227718039650203;
const PRIME8BYTES: u64 = 0xcf1bbcdcb7a56463;

/// `hashLen(u, length, mls)` for the byte counts the finders use (4, 5, 6, 8).
#[inline(always)]
pub(crate) fn hash_len(u: u64, length: u32, mls: u32) -> usize {
    (match mls {
        5 => ((u << (64 - 40)).wrapping_mul(PRIME5BYTES) >> (64 - length)) as u32,
        6 => ((u << (64 - 48)).wrapping_mul(PRIME6BYTES) >> (64 - length)) as u32,
        8 => (u.wrapping_mul(PRIME8BYTES) >> (64 - length)) as u32,
        _ => (u as u32).wrapping_mul(PRIME4BYTES) >> (32 - length),
    }) as usize
}

#[inline(always)]
pub(crate) fn load32(b: &[u8], i: i32) -> u32 {
    let i = i as usize;
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

#[inline(always)]
pub(crate) fn load64(b: &[u8], i: i32) -> u64 {
    let i = i as usize;
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// Length of the common prefix of `a` and `b` (at most `a.len()`).
#[inline(always)]
pub(crate) fn match_len(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let d = x ^ y;
        if d != 0 {
            return i + (d.trailing_zeros() >> 3) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// `fastBase`: the history and the table base.
pub(crate) struct FastBase {
    pub cur: i32,
    pub max_match_off: i32,
    pub buffer_reset: i32,
    /// The history is `hist[..]` (Go's `len(hist)`), with room for `hist_cap` bytes.
    pub hist: Vec<u8>,
    hist_cap: usize,
}

impl FastBase {
    pub fn new(window: i32) -> FastBase {
        FastBase {
            cur: 0,
            max_match_off: window,
            buffer_reset: i32::MAX - 2 * window,
            hist: Vec::new(),
            hist_cap: 0,
        }
    }

    /// `addBlock`: appends `src` to the history, sliding the last window to the front
    /// when it would not fit; returns where `src` starts.
    pub fn add_block(&mut self, src: &[u8]) -> i32 {
        if self.hist.len() + src.len() > self.hist_cap {
            if self.hist_cap == 0 {
                self.ensure_hist(src.len());
            } else {
                let offset = self.hist.len() as i32 - self.max_match_off;
                self.hist.copy_within(offset as usize.., 0);
                self.cur += offset;
                self.hist.truncate(self.max_match_off as usize);
            }
        }
        let s = self.hist.len() as i32;
        self.hist.extend_from_slice(src);
        s
    }

    /// `ensureHist`: the history's capacity, for the window plus a block (at least 1 MiB).
    pub fn ensure_hist(&mut self, n: usize) {
        if self.hist_cap >= n {
            return;
        }
        let mm = self.max_match_off as usize;
        let mut l = mm
            + if mm <= MAX_COMPRESSED_BLOCK_SIZE {
                MAX_COMPRESSED_BLOCK_SIZE
            } else {
                mm
            };
        l = l.max(1 << 20).max(n);
        self.hist = Vec::with_capacity(l);
        self.hist_cap = l;
    }

    /// `resetBase` (no dictionary): a new frame. Tables are left as they are; moving
    /// `cur` past the old history puts every entry out of reach.
    pub fn reset(&mut self) {
        if self.cur < self.buffer_reset {
            self.cur += self.max_match_off + self.hist.len() as i32;
        }
        self.hist.clear();
    }

    /// `fastBase.WindowSize`: the window a frame header declares for `size` bytes.
    pub fn window_size(&self, size: i64) -> i32 {
        if size > 0 && size < self.max_match_off as i64 {
            let b = 1i32 << (64 - (size as u64).leading_zeros());
            return b.max(1024);
        }
        self.max_match_off
    }

    /// Rebases table offsets before `cur` could overflow (every encoder's prologue):
    /// entries a window or more behind the history end are cleared. Returns the rebase as
    /// `(min_off, old_cur)` for the caller's tables, or None when nothing is needed;
    /// `Some((i32::MAX, _))` means clear everything.
    pub fn rebase(&mut self) -> Option<(i32, i32)> {
        if self.cur < self.buffer_reset - self.hist.len() as i32 {
            return None;
        }
        let old = self.cur;
        self.cur = self.max_match_off;
        if self.hist.is_empty() {
            return Some((i32::MAX, old));
        }
        Some((old + self.hist.len() as i32 - self.max_match_off, old))
    }

    /// The prologue of `EncodeNoHist`: a plain reset of the tables when `cur` is too big.
    pub fn rebase_no_hist(&mut self) -> bool {
        if self.cur >= self.buffer_reset {
            self.cur = self.max_match_off;
            return true;
        }
        false
    }
}

/// Applies a rebase to one table offset.
#[inline]
pub(crate) fn rebase_offset(v: i32, (min_off, old_cur): (i32, i32), max_match_off: i32) -> i32 {
    if min_off == i32::MAX || v < min_off {
        0
    } else {
        v - old_cur + max_match_off
    }
}

/// Match-finder tables whose entries are plain integers, zero at the start: allocated
/// zeroed, so the allocator hands out untouched pages (the best speed's tables are 34 MB,
/// of which a small frame touches a few pages) instead of writing every entry.
pub(crate) fn zeroed_table<T: ZeroIsDefault>(len: usize) -> Box<[T]> {
    use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
    let layout = Layout::array::<T>(len).expect("match-finder table size fits in memory");
    if layout.size() == 0 {
        return Vec::new().into_boxed_slice();
    }
    // SAFETY: the layout has a non-zero size; `ZeroIsDefault` types are made of integers
    // only, for which all-zero bytes are a valid value (their `Default`), so the zeroed
    // allocation holds `len` initialised values and is owned by the box from here on
    // (same layout as `Box<[T]>` of that length allocates and frees with).
    unsafe {
        let ptr = alloc_zeroed(layout).cast::<T>();
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len))
    }
}

/// # Safety
/// Only for types whose every field is an integer: all-zero bytes must be a valid value.
pub(crate) unsafe trait ZeroIsDefault: Copy {}

// SAFETY: two integer fields each.
unsafe impl ZeroIsDefault for TableEntry {}
// SAFETY: two integer fields each.
unsafe impl ZeroIsDefault for PrevEntry {}

#[derive(Clone, Copy, Default)]
pub(crate) struct TableEntry {
    pub val: u32,
    pub offset: i32,
}

#[derive(Clone, Copy, Default)]
pub(crate) struct PrevEntry {
    pub offset: i32,
    pub prev: i32,
}
