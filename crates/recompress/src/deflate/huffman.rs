// Port of Go's compress/flate `huffman_code.go` (Go 1.19) and of klauspost/compress
// v1.15.12 `flate/huffman_code.go` and `flate/huffman_sortByFreq.go`, which follow the Go
// design closely.
//
// Copyright (c) 2009, 2012 The Go Authors. All rights reserved.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file of kpflate.

//! Length-limited Huffman code construction, exactly as Go and klauspost build it.
//!
//! Code lengths decide the output bits, so the construction is reproduced step by step. The
//! two families differ only in the frequency sort (`FreqOrder`):
//! - Go sorts with `sort.Sort` by (frequency, literal). Literals are distinct, so that is a
//!   total order and every correct sort gives the same permutation (`GoOrder`).
//! - klauspost's copy of the old `sort.Sort` quicksort falls back to a heapsort *by literal*
//!   when its depth budget runs out, which gives other (equally valid) codes than a correct
//!   sort, so it is reproduced step by step (`KlauspostOrder`).
use std::marker::PhantomData;

use super::tables::LITERAL_COUNT;

/// A code and its bit length: `len | code << 8` (Go's `hcode`).
pub type HCode = u32;

#[inline(always)]
pub fn hlen(h: HCode) -> u32 {
    h & 0xff
}

#[inline(always)]
pub fn code64(h: HCode) -> u64 {
    (h >> 8) as u64
}

pub const fn new_hcode(code: u16, length: u8) -> HCode {
    length as u32 | (code as u32) << 8
}

pub const fn reverse_bits(number: u16, bit_length: u8) -> u16 {
    (number << ((16 - bit_length) & 15)).reverse_bits()
}

#[derive(Clone, Copy, Default)]
pub struct LiteralNode {
    literal: u16,
    freq: u16,
}

const MAX_NODE: LiteralNode = LiteralNode {
    literal: u16::MAX,
    freq: u16::MAX,
};
const MAX_BITS_LIMIT: usize = 16;

/// How a family sorts the used symbols by frequency before building the code.
pub trait FreqOrder {
    fn sort(nodes: &mut [LiteralNode]);
}

/// Go's standard library: any correct sort by (frequency, literal).
pub struct GoOrder;

impl FreqOrder for GoOrder {
    #[inline]
    fn sort(nodes: &mut [LiteralNode]) {
        nodes.sort_unstable_by_key(|n| (u32::from(n.freq) << 16) | u32::from(n.literal));
    }
}

/// klauspost/compress: its generated quicksort, step by step (`sort_by_freq`).
pub struct KlauspostOrder;

impl FreqOrder for KlauspostOrder {
    #[inline]
    fn sort(nodes: &mut [LiteralNode]) {
        sort_by_freq(nodes);
    }
}

pub struct HuffmanEncoder<O: FreqOrder> {
    pub codes: Vec<HCode>,
    bit_count: [i32; 17],
    freqcache: [LiteralNode; LITERAL_COUNT + 1],
    order: PhantomData<O>,
}

impl<O: FreqOrder> HuffmanEncoder<O> {
    pub fn new(size: usize) -> Self {
        HuffmanEncoder {
            codes: vec![0; size],
            bit_count: [0; 17],
            freqcache: [LiteralNode::default(); LITERAL_COUNT + 1],
            order: PhantomData,
        }
    }

    /// Total bits of `freq` coded with this table (unused symbols ignored).
    pub fn bit_length(&self, freq: &[u16]) -> i64 {
        let mut total = 0i64;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                total += f as i64 * hlen(self.codes[i]) as i64;
            }
        }
        total
    }

    /// Bits of `b` as literals with this table (level 9's gain estimate).
    pub fn bit_length_raw(&self, b: &[u8]) -> i64 {
        b.iter().map(|&f| hlen(self.codes[f as usize]) as i64).sum()
    }

    /// Bits of `b` as literals, each costing at least 1 (Go 1.27's
    /// `bitLengthRaw`: a byte missing from the table is not free).
    pub fn bit_length_raw_at_least_one(&self, b: &[u8]) -> i64 {
        b.iter()
            .map(|&f| (hlen(self.codes[f as usize]) as i64).max(1))
            .sum()
    }

    /// Bits of `freq`, or `i32::MAX` when a used symbol has no code.
    pub fn can_reuse_bits(&self, freq: &[u16]) -> i64 {
        let mut total = 0i64;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                let code = self.codes[i];
                if code == 0 {
                    return i32::MAX as i64;
                }
                total += f as i64 * hlen(code) as i64;
            }
        }
        total
    }

    /// Rebuilds the codes for `freq` with at most `max_bits` bits per code.
    /// Codes of unused symbols become 0; codes past `freq.len()` are left
    /// alone, as in Go.
    pub fn generate(&mut self, freq: &[u16], max_bits: i32) {
        let mut count = 0;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                self.freqcache[count] = LiteralNode {
                    literal: i as u16,
                    freq: f,
                };
                count += 1;
            } else {
                self.codes[i] = 0;
            }
        }
        self.freqcache[count] = LiteralNode::default();
        if count <= 2 {
            // With two or fewer literals, everything has bit length 1, in
            // order of increasing literal value.
            for i in 0..count {
                let lit = self.freqcache[i].literal as usize;
                self.codes[lit] = new_hcode(i as u16, 1);
            }
            return;
        }
        O::sort(&mut self.freqcache[..count]);
        let max_bits = self.bit_counts(count, max_bits);
        self.assign_encoding_and_size(max_bits, count);
    }

    /// Package-merge style bit counts (Go's `bitCounts`); fills
    /// `bit_count[1..=max_bits]` and returns the effective `max_bits`.
    fn bit_counts(&mut self, n: usize, mut max_bits: i32) -> usize {
        #[derive(Clone, Copy, Default)]
        struct LevelInfo {
            level: i32,
            last_freq: i32,
            next_char_freq: i32,
            next_pair_freq: i32,
            needed: i32,
        }
        let list = &mut self.freqcache[..n + 1];
        list[n] = MAX_NODE;
        let n = n as i32;
        if max_bits > n - 1 {
            max_bits = n - 1;
        }
        let mut levels = [LevelInfo::default(); MAX_BITS_LIMIT];
        // leaf_counts[i][j]: literals left of the level-j ancestor of the
        // rightmost node at level i.
        let mut leaf_counts = [[0i32; MAX_BITS_LIMIT]; MAX_BITS_LIMIT];
        let l2f = list[2].freq as i32;
        let l1f = list[1].freq as i32;
        let l0f = list[0].freq as i32 + list[1].freq as i32;
        for level in 1..=max_bits as usize {
            levels[level] = LevelInfo {
                level: level as i32,
                last_freq: l1f,
                next_char_freq: l2f,
                next_pair_freq: if level == 1 { i32::MAX } else { l0f },
                needed: 0,
            };
            leaf_counts[level][level] = 2;
        }
        levels[max_bits as usize].needed = 2 * n - 4;

        let mut level = max_bits as usize;
        while level < 16 {
            let l = levels[level];
            if l.next_pair_freq == i32::MAX && l.next_char_freq == i32::MAX {
                // Out of leaves and pairs: never come back to this level.
                levels[level].needed = 0;
                levels[level + 1].next_pair_freq = i32::MAX;
                level += 1;
                continue;
            }
            let prev_freq = l.last_freq;
            if l.next_char_freq < l.next_pair_freq {
                // The next item on this row is a leaf node.
                let nn = leaf_counts[level][level] + 1;
                levels[level].last_freq = l.next_char_freq;
                leaf_counts[level][level] = nn;
                let e = list[nn as usize];
                levels[level].next_char_freq = if e.literal < u16::MAX {
                    e.freq as i32
                } else {
                    i32::MAX
                };
            } else {
                // The next item is a pair from the row below.
                levels[level].last_freq = l.next_pair_freq;
                let save = leaf_counts[level][level];
                leaf_counts[level] = leaf_counts[level - 1];
                leaf_counts[level][level] = save;
                levels[(l.level - 1) as usize].needed = 2;
            }
            levels[level].needed -= 1;
            if levels[level].needed == 0 {
                if l.level == max_bits {
                    break;
                }
                levels[(l.level + 1) as usize].next_pair_freq = prev_freq + levels[level].last_freq;
                level += 1;
            } else {
                // If we stole from below, move down temporarily to replenish it.
                while levels[level - 1].needed > 0 {
                    level -= 1;
                }
            }
        }
        debug_assert_eq!(leaf_counts[max_bits as usize][max_bits as usize], n);

        let max_bits = max_bits as usize;
        // bit_count[b]: literals needing exactly b bits.
        let counts = &leaf_counts[max_bits];
        for (bits, level) in (1..).zip((1..=max_bits).rev()) {
            self.bit_count[bits] = counts[level] - counts[level - 1];
        }
        max_bits
    }

    /// Assigns canonical codes (RFC 1951 3.2.2): the least frequent symbols
    /// get the longest codes, and within one length codes follow literal
    /// order.
    fn assign_encoding_and_size(&mut self, max_bits: usize, count: usize) {
        let mut code = 0u16;
        let mut end = count;
        for n in 0..=max_bits {
            let bits = self.bit_count[n];
            code <<= 1;
            if n == 0 || bits == 0 {
                continue;
            }
            let start = end - bits as usize;
            let chunk = &mut self.freqcache[start..end];
            // Literals are unique, so any correct sort gives Go's order.
            chunk.sort_unstable_by_key(|node| node.literal);
            for node in chunk.iter() {
                self.codes[node.literal as usize] = new_hcode(reverse_bits(code, n as u8), n as u8);
                code = code.wrapping_add(1);
            }
            end = start;
        }
    }
}

/// Fixed literal/length codes of RFC 1951 3.2.6.
pub static FIXED_LITERAL_CODES: [HCode; LITERAL_COUNT] = {
    let mut codes = [0; LITERAL_COUNT];
    let mut ch = 0;
    while ch < LITERAL_COUNT {
        let (bits, size) = match ch {
            0..=143 => (ch + 48, 8),
            144..=255 => (ch + 400 - 144, 9),
            256..=279 => (ch - 256, 7),
            _ => (ch + 192 - 280, 8),
        };
        codes[ch] = new_hcode(reverse_bits(bits as u16, size), size);
        ch += 1;
    }
    codes
};

/// Fixed distance codes: 5 bits each.
pub static FIXED_OFFSET_CODES: [HCode; 30] = {
    let mut codes = [0; 30];
    let mut ch = 0;
    while ch < 30 {
        codes[ch] = new_hcode(reverse_bits(ch as u16, 5), 5);
        ch += 1;
    }
    codes
};

/// Bits of `freq` with a fixed table (unused symbols ignored).
pub fn fixed_bit_length(codes: &[HCode], freq: &[u16]) -> i64 {
    let mut total = 0i64;
    for (i, &f) in freq.iter().enumerate() {
        if f != 0 {
            total += f as i64 * hlen(codes[i]) as i64;
        }
    }
    total
}

/// Strict order used by the frequency sort: by frequency, then literal.
#[inline(always)]
fn less(a: LiteralNode, b: LiteralNode) -> bool {
    a.freq < b.freq || (a.freq == b.freq && a.literal < b.literal)
}

/// Go's `sortByFreq`: the pre-pdqsort `sort.Sort` specialised to
/// `literalNode`, reproduced step by step (see the module comment).
fn sort_by_freq(data: &mut [LiteralNode]) {
    let n = data.len();
    quick_sort_by_freq(data, 0, n, max_depth(n));
}

fn max_depth(n: usize) -> usize {
    let mut depth = 0;
    let mut i = n;
    while i > 0 {
        depth += 1;
        i >>= 1;
    }
    depth * 2
}

fn quick_sort_by_freq(data: &mut [LiteralNode], mut a: usize, mut b: usize, mut max_depth: usize) {
    while b - a > 12 {
        if max_depth == 0 {
            // Go calls the heapsort of huffman_sortByLiteral.go here, which
            // orders by literal only; literals are unique, so this is it.
            data[a..b].sort_unstable_by_key(|node| node.literal);
            return;
        }
        max_depth -= 1;
        let (mlo, mhi) = do_pivot_by_freq(data, a, b);
        // Recurse on the smaller side to bound the stack.
        if mlo - a < b - mhi {
            quick_sort_by_freq(data, a, mlo, max_depth);
            a = mhi;
        } else {
            quick_sort_by_freq(data, mhi, b, max_depth);
            b = mlo;
        }
    }
    if b - a > 1 {
        // ShellSort pass with gap 6, then insertion sort.
        for i in a + 6..b {
            if less(data[i], data[i - 6]) {
                data.swap(i, i - 6);
            }
        }
        for i in a + 1..b {
            let mut j = i;
            while j > a && less(data[j], data[j - 1]) {
                data.swap(j, j - 1);
                j -= 1;
            }
        }
    }
}

/// Moves the median of `data[m0], data[m1], data[m2]` into `data[m1]`.
fn median_of_three(data: &mut [LiteralNode], m1: usize, m0: usize, m2: usize) {
    if less(data[m1], data[m0]) {
        data.swap(m1, m0);
    }
    if less(data[m2], data[m1]) {
        data.swap(m2, m1);
        if less(data[m1], data[m0]) {
            data.swap(m1, m0);
        }
    }
}

fn do_pivot_by_freq(data: &mut [LiteralNode], lo: usize, hi: usize) -> (usize, usize) {
    let m = (lo + hi) >> 1;
    if hi - lo > 40 {
        // Tukey's ninther.
        let s = (hi - lo) / 8;
        median_of_three(data, lo, lo + s, lo + 2 * s);
        median_of_three(data, m, m - s, m + s);
        median_of_three(data, hi - 1, hi - 1 - s, hi - 1 - 2 * s);
    }
    median_of_three(data, lo, m, hi - 1);

    // The comparisons below are klauspost's generated ones, kept verbatim
    // (some are strict where the generic sort tested for equality), because
    // they decide which elements move where.
    let pivot = lo;
    let (mut a, mut c) = (lo + 1, hi - 1);
    while a < c && less(data[a], data[pivot]) {
        a += 1;
    }
    let mut b = a;
    loop {
        while b < c && less(data[b], data[pivot]) {
            b += 1;
        }
        while b < c && less(data[pivot], data[c - 1]) {
            c -= 1;
        }
        if b >= c {
            break;
        }
        data.swap(b, c - 1);
        b += 1;
        c -= 1;
    }
    let mut protect = hi - c < 5;
    if !protect && hi - c < (hi - lo) / 4 {
        // Test some points for equality to the pivot.
        let mut dups = 0;
        if less(data[hi - 1], data[pivot]) {
            data.swap(c, hi - 1);
            c += 1;
            dups += 1;
        }
        if less(data[pivot], data[b - 1]) {
            b -= 1;
            dups += 1;
        }
        if less(data[pivot], data[m]) {
            data.swap(m, b - 1);
            b -= 1;
            dups += 1;
        }
        protect = dups > 1;
    }
    if protect {
        // data[a <= i < b] unexamined; data[b <= i < c] = pivot.
        loop {
            while a < b && less(data[pivot], data[b - 1]) {
                b -= 1;
            }
            while a < b && less(data[a], data[pivot]) {
                a += 1;
            }
            if a >= b {
                break;
            }
            data.swap(a, b - 1);
            a += 1;
            b -= 1;
        }
    }
    data.swap(pivot, b - 1);
    (b - 1, c)
}
