// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Port of Go's compress/flate/huffman_code.go (Go 1.19). The code-length
// algorithm (a package-merge variant in `bit_counts`) follows Go's design
// line by line, hence Go's license notice above.

//! Length-limited Huffman code construction exactly as Go builds it.
//!
//! On sort stability: Go sorts with `sort.Sort` (pdqsort in Go 1.19, a
//! different quicksort before), which is not stable. It does not matter here:
//! `byFreq` orders by (frequency, literal) and `byLiteral` by literal, and
//! literals in one list are distinct, so both are total orders and every
//! correct sort yields the same permutation. We can therefore use Rust's
//! `sort_unstable_by_key`.

/// A Huffman code: `code` holds the bits already reversed for LSB-first output.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(super) struct HCode {
    pub(super) code: u16,
    pub(super) len: u16,
}

#[derive(Clone, Copy, Default)]
struct LiteralNode {
    literal: u16,
    freq: i32,
}

/// State of one depth of the tree under construction (Go's `levelInfo`).
#[derive(Clone, Copy, Default)]
struct LevelInfo {
    level: i32,
    last_freq: i32,
    next_char_freq: i32,
    next_pair_freq: i32,
    needed: i32,
}

const MAX_BITS_LIMIT: usize = 16;

/// The sentinel node Go appends after the sorted list.
const MAX_NODE: LiteralNode = LiteralNode {
    literal: u16::MAX,
    freq: i32::MAX,
};

pub(super) struct HuffmanEncoder {
    pub(super) codes: Vec<HCode>,
    /// Scratch list reused across `generate` calls to avoid allocation.
    freqcache: Vec<LiteralNode>,
    bit_count: [i32; 17],
}

/// `reverseBits`: the low `bit_length` bits of `number`, reversed.
pub(super) fn reverse_bits(number: u16, bit_length: u32) -> u16 {
    (number << (16 - bit_length)).reverse_bits()
}

impl HuffmanEncoder {
    pub(super) fn new(size: usize) -> Self {
        HuffmanEncoder {
            codes: vec![HCode::default(); size],
            freqcache: vec![LiteralNode::default(); super::bitwriter::MAX_NUM_LIT + 1],
            bit_count: [0; 17],
        }
    }

    /// The fixed literal/length code of RFC 1951 3.2.6.
    pub(super) fn fixed_literal() -> Self {
        let mut h = Self::new(super::bitwriter::MAX_NUM_LIT);
        for (ch, c) in h.codes.iter_mut().enumerate() {
            let ch = ch as u16;
            let (bits, size) = match ch {
                0..144 => (ch + 48, 8),
                144..256 => (ch + 400 - 144, 9),
                256..280 => (ch - 256, 7),
                _ => (ch + 192 - 280, 8),
            };
            *c = HCode {
                code: reverse_bits(bits, size),
                len: size as u16,
            };
        }
        h
    }

    /// The fixed distance code: 30 five-bit codes.
    pub(super) fn fixed_offset() -> Self {
        let mut h = Self::new(30);
        for (ch, c) in h.codes.iter_mut().enumerate() {
            *c = HCode {
                code: reverse_bits(ch as u16, 5),
                len: 5,
            };
        }
        h
    }

    /// `bitLength`: total bits to code `freq` with this code.
    pub(super) fn bit_length(&self, freq: &[i32]) -> i64 {
        freq.iter()
            .zip(&self.codes)
            .map(|(&f, c)| i64::from(f) * i64::from(c.len))
            .sum()
    }

    /// `generate`: the length-limited code for `freq` (one entry per symbol).
    pub(super) fn generate(&mut self, freq: &[i32], max_bits: i32) {
        let mut count = 0;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                self.freqcache[count] = LiteralNode {
                    literal: i as u16,
                    freq: f,
                };
                count += 1;
            } else {
                self.codes[i].len = 0;
            }
        }
        if count <= 2 {
            // Go special-cases up to two symbols: all get length 1, codes in
            // literal order (the list is already in literal order here).
            for i in 0..count {
                let node = self.freqcache[i];
                self.codes[node.literal as usize] = HCode {
                    code: i as u16,
                    len: 1,
                };
            }
            return;
        }
        // Frequency, then literal: a total order, so unstable sorting is exact.
        self.freqcache[..count]
            .sort_unstable_by_key(|n| (u64::from(n.freq as u32) << 16) | u64::from(n.literal));
        let bits = self.bit_counts(count, max_bits);
        self.assign_encoding_and_size(bits, count);
    }

    /// `bitCounts`: how many literals get each code length (index = length).
    /// `freqcache[..n]` is sorted by increasing frequency; returns the number
    /// of valid entries of `self.bit_count` (Go's slice `bitCount[:maxBits+1]`).
    fn bit_counts(&mut self, n: usize, mut max_bits: i32) -> usize {
        assert!(max_bits < MAX_BITS_LIMIT as i32, "flate: maxBits too large");
        let list = &mut self.freqcache[..n + 1];
        list[n] = MAX_NODE;
        let n = n as i32;
        // The tree can't be deeper than n - 1.
        if max_bits > n - 1 {
            max_bits = n - 1;
        }
        let mb = max_bits as usize;

        // Level 0 is a bogus level so that level 1's pair is never chosen.
        let mut levels = [LevelInfo::default(); MAX_BITS_LIMIT];
        // leaf_counts[i][j]: literals left of the level-j ancestor of the
        // rightmost node at level i.
        let mut leaf_counts = [[0i32; MAX_BITS_LIMIT]; MAX_BITS_LIMIT];
        for level in 1..=mb {
            levels[level] = LevelInfo {
                level: level as i32,
                last_freq: list[1].freq,
                next_char_freq: list[2].freq,
                next_pair_freq: list[0].freq + list[1].freq,
                needed: 0,
            };
            leaf_counts[level][level] = 2;
            if level == 1 {
                levels[level].next_pair_freq = i32::MAX;
            }
        }
        // 2n - 2 items are needed at the top level; two exist already.
        levels[mb].needed = 2 * n - 4;

        let mut level = mb;
        loop {
            let l = &mut levels[level];
            if l.next_pair_freq == i32::MAX && l.next_char_freq == i32::MAX {
                // Out of leaves and pairs: this level is done for good.
                l.needed = 0;
                levels[level + 1].next_pair_freq = i32::MAX;
                level += 1;
                continue;
            }
            let prev_freq = l.last_freq;
            if l.next_char_freq < l.next_pair_freq {
                // Next item is a leaf.
                let nn = leaf_counts[level][level] + 1;
                l.last_freq = l.next_char_freq;
                leaf_counts[level][level] = nn;
                l.next_char_freq = list[nn as usize].freq;
            } else {
                // Next item is a pair from the level below.
                l.last_freq = l.next_pair_freq;
                let (lo, hi) = leaf_counts.split_at_mut(level);
                hi[0][..level].copy_from_slice(&lo[level - 1][..level]);
                levels[level - 1].needed = 2;
            }
            let l = &mut levels[level];
            l.needed -= 1;
            if l.needed == 0 {
                // This level is complete; its last two nodes form the next
                // pair one level up.
                if l.level == max_bits {
                    break;
                }
                let sum = prev_freq + l.last_freq;
                levels[level + 1].next_pair_freq = sum;
                level += 1;
            } else {
                // We stole from below: go down to replenish it.
                while levels[level - 1].needed > 0 {
                    level -= 1;
                }
            }
        }
        assert!(leaf_counts[mb][mb] == n, "leafCounts[maxBits][maxBits] != n");

        let counts = &leaf_counts[mb];
        for (bits, level) in (1..).zip((1..=mb).rev()) {
            // Literals that need at least `bits` bits.
            self.bit_count[bits] = counts[level] - counts[level - 1];
        }
        mb + 1
    }

    /// `assignEncodingAndSize`: canonical codes, assigned in literal order
    /// within each length (RFC 1951 3.2.2).
    fn assign_encoding_and_size(&mut self, nbits: usize, count: usize) {
        let mut code: u16 = 0;
        let mut end = count;
        for n in 0..nbits {
            let bits = self.bit_count[n] as usize;
            code <<= 1;
            if n == 0 || bits == 0 {
                continue;
            }
            // The `bits` least frequent remaining literals get length n.
            let chunk = &mut self.freqcache[end - bits..end];
            chunk.sort_unstable_by_key(|node| node.literal);
            for node in chunk.iter() {
                self.codes[node.literal as usize] = HCode {
                    code: reverse_bits(code, n as u32),
                    len: n as u16,
                };
                code = code.wrapping_add(1);
            }
            end -= bits;
        }
    }
}
