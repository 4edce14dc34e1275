// Port of the compression side of klauspost/compress huff0 (compress.go, huff0.go,
// bitwriter.go) and of the fse package (compress.go, bitwriter.go) that huff0 uses for
// its table description, 1.18.0 (same output in 1.15.12 and 1.20.3); it follows the Go
// design closely, including the state a Scratch keeps between blocks.
//
// Copyright 2018 Klaus Post. All rights reserved.
// Based on work Copyright (c) 2013, Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! Huffman coding of zstd literals: the table (built with zstd's depth limiting), its
//! description (FSE-compressed weights or 4-bit nibbles), one or four streams, and the
//! reuse of the previous block's table.

use super::fse::high_bit;

const TABLE_LOG_MAX: u8 = 11;
const TABLE_LOG_DEFAULT: u8 = 11;
const MIN_TABLE_LOG: u8 = 5;
const HUFF_NODES_LEN: usize = 512;
const HUFF_NODES_MASK: u32 = HUFF_NODES_LEN as u32 - 1;

/// Why Huffman coding was not used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HuffError {
    Incompressible,
    /// One byte value repeated: the caller writes an RLE section.
    UseRle,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reuse {
    Allow,
    None,
}

#[derive(Clone, Copy, Default)]
struct CTableEntry {
    val: u16,
    n_bits: u8,
}

/// `nodeElt`: count, parent, symbol and bit count packed in one u64, as in Go.
#[derive(Clone, Copy, Default)]
struct Node(u64);

impl Node {
    fn new(count: u32, symbol: u8) -> Node {
        Node(count as u64 | (symbol as u64) << 48)
    }
    fn count(self) -> u32 {
        self.0 as u32
    }
    fn parent(self) -> u16 {
        (self.0 >> 32) as u16
    }
    fn symbol(self) -> u8 {
        (self.0 >> 48) as u8
    }
    fn nb_bits(self) -> u8 {
        (self.0 >> 56) as u8
    }
    fn set_count(&mut self, c: u32) {
        self.0 = self.0 & 0xffff_ffff_0000_0000 | c as u64;
    }
    fn set_parent(&mut self, p: i16) {
        self.0 = self.0 & 0xffff_0000_ffff_ffff | ((p as u16) as u64) << 32;
    }
    fn set_nb_bits(&mut self, n: u8) {
        self.0 = self.0 & 0x00ff_ffff_ffff_ffff | (n as u64) << 56;
    }
}

/// huff0's `Scratch` as zstd's block encoder uses it (`WantLogLess: 4`).
pub(crate) struct HuffScratch {
    count: [u32; 256],
    pub reuse: Reuse,
    want_log_less: u8,
    symbol_len: u16,
    clear_count: bool,
    actual_table_log: u8,
    prev_table_log: u8,
    prev_table: Vec<CTableEntry>,
    c_table: Vec<CTableEntry>,
    /// Index 0 is the "-1" sentinel of the reference implementation.
    nodes: Vec<Node>,
    huff_weight: [u8; 256],
    fse: WeightsFse,
    src_len: usize,
}

impl HuffScratch {
    pub fn new(want_log_less: u8) -> HuffScratch {
        HuffScratch {
            count: [0; 256],
            reuse: Reuse::Allow,
            want_log_less,
            symbol_len: 0,
            clear_count: false,
            actual_table_log: 0,
            prev_table_log: 0,
            prev_table: Vec::new(),
            c_table: Vec::new(),
            nodes: vec![Node::default(); HUFF_NODES_LEN + 1],
            huff_weight: [0; 256],
            fse: WeightsFse::new(),
            src_len: 0,
        }
    }

    fn prepare(&mut self, input: &[u8]) {
        if self.clear_count {
            self.count = [0; 256];
            self.clear_count = false;
        }
        self.src_len = input.len();
    }

    /// `Compress1X`: returns the output (table description + data, or data alone when the
    /// previous table was reused) and whether it was reused.
    pub fn compress_1x(&mut self, input: &[u8]) -> Result<(Vec<u8>, bool), HuffError> {
        self.prepare(input);
        self.compress(input, false)
    }

    /// `Compress4X`.
    pub fn compress_4x(&mut self, input: &[u8]) -> Result<(Vec<u8>, bool), HuffError> {
        self.prepare(input);
        self.compress(input, true)
    }

    fn run(
        &self,
        table: &[CTableEntry],
        table_log: u8,
        out: Vec<u8>,
        input: &[u8],
        four: bool,
    ) -> Option<Vec<u8>> {
        if four {
            compress_4x(table, table_log, out, input)
        } else {
            Some(compress_1x_do(table, table_log, out, input))
        }
    }

    fn compress(&mut self, input: &[u8], four: bool) -> Result<(Vec<u8>, bool), HuffError> {
        if self.reuse == Reuse::None {
            self.prev_table.clear();
        }
        let (max_count, can_reuse) = self.count_simple(input);
        let mut want_size = input.len();
        if self.want_log_less > 0 {
            want_size -= want_size >> self.want_log_less;
        }
        self.clear_count = true;
        if max_count >= input.len() {
            if input.len() == 1 {
                return Err(HuffError::Incompressible);
            }
            return Err(HuffError::UseRle);
        }
        if max_count == 1 || max_count < (input.len() >> 7) {
            return Err(HuffError::Incompressible);
        }
        self.build_ctable();
        let sl = self.symbol_len as usize;
        if self.reuse == Reuse::Allow && can_reuse {
            // huff0 compares against `len(s.Out)`, which is always empty at this point.
            let h_size = 0usize;
            let old_size = estimate_size(&self.prev_table, &self.count[..sl]);
            let new_size = estimate_size(&self.c_table, &self.count[..sl]);
            if old_size <= h_size + new_size || h_size + 12 >= want_size {
                let out = self
                    .run(&self.prev_table, self.prev_table_log, Vec::new(), input, four)
                    .ok_or(HuffError::Incompressible)?;
                if out.len() >= want_size {
                    return Err(HuffError::Incompressible);
                }
                return Ok((out, true));
            }
        }
        let mut out = Vec::with_capacity(input.len());
        self.write_table(&mut out)?;
        let out = self
            .run(&self.c_table, self.actual_table_log, out, input, four)
            .ok_or(HuffError::Incompressible)?;
        if out.len() >= want_size {
            return Err(HuffError::Incompressible);
        }
        std::mem::swap(&mut self.prev_table, &mut self.c_table);
        self.prev_table_log = self.actual_table_log;
        self.c_table.clear();
        Ok((out, false))
    }

    fn count_simple(&mut self, input: &[u8]) -> (usize, bool) {
        for &v in input {
            self.count[v as usize] += 1;
        }
        let mut m = 0u32;
        let mut reuse = true;
        let has_prev = !self.prev_table.is_empty();
        for (i, &v) in self.count.iter().enumerate() {
            if v == 0 {
                continue;
            }
            m = m.max(v);
            self.symbol_len = i as u16 + 1;
            if has_prev && (i >= self.prev_table.len() || self.prev_table[i].n_bits == 0) {
                reuse = false;
            }
        }
        (m as usize, has_prev && reuse)
    }

    fn min_table_log(&self) -> u8 {
        let min_bits_src = high_bit(self.src_len as u32).wrapping_add(1);
        let min_bits_symbols = high_bit((self.symbol_len as u32).wrapping_sub(1)).wrapping_add(2);
        if min_bits_src < min_bits_symbols {
            min_bits_src as u8
        } else {
            min_bits_symbols as u8
        }
    }

    fn optimal_table_log(&mut self) {
        let mut table_log = TABLE_LOG_DEFAULT;
        let min_bits = self.min_table_log();
        let max_bits_src = (high_bit((self.src_len as u32).wrapping_sub(1)) as u8).wrapping_sub(1);
        if max_bits_src < table_log {
            table_log = max_bits_src;
        }
        if min_bits > table_log {
            table_log = min_bits;
        }
        self.actual_table_log = table_log.clamp(MIN_TABLE_LOG, TABLE_LOG_MAX);
    }

    fn build_ctable(&mut self) {
        self.optimal_table_log();
        self.huff_sort();
        let sl = self.symbol_len as usize;
        self.c_table.clear();
        self.c_table.resize(sl, CTableEntry::default());

        let start_node = sl as i16;
        let mut non_null_rank = sl as i32 - 1;
        // huffNode = nodes[1..]; huffNode0 = nodes[0..] (index -1 is nodes[0]).
        let node = |i: i32| (i + 1) as usize;
        while self.nodes[node(non_null_rank)].count() == 0 {
            non_null_rank -= 1;
        }
        let mut low_s = non_null_rank as i16;
        let mut node_nb = start_node;
        let node_root = node_nb + low_s - 1;
        let mut low_n = node_nb;
        let c = self.nodes[node(low_s as i32)].count() + self.nodes[node(low_s as i32 - 1)].count();
        self.nodes[node(node_nb as i32)].set_count(c);
        self.nodes[node(low_s as i32)].set_parent(node_nb);
        self.nodes[node(low_s as i32 - 1)].set_parent(node_nb);
        node_nb += 1;
        low_s -= 2;
        for n in node_nb..=node_root {
            self.nodes[node(n as i32)].set_count(1 << 30);
        }
        self.nodes[0].set_count(1 << 31);
        while node_nb <= node_root {
            let n1 = take_smaller(&self.nodes, &mut low_s, &mut low_n);
            let n2 = take_smaller(&self.nodes, &mut low_s, &mut low_n);
            let c = self.nodes[(n1 + 1) as usize].count() + self.nodes[(n2 + 1) as usize].count();
            self.nodes[node(node_nb as i32)].set_count(c);
            self.nodes[(n1 + 1) as usize].set_parent(node_nb);
            self.nodes[(n2 + 1) as usize].set_parent(node_nb);
            node_nb += 1;
        }
        self.nodes[node(node_root as i32)].set_nb_bits(0);
        let mut n = node_root - 1;
        while n >= start_node {
            let p = self.nodes[node(n as i32)].parent();
            let b = self.nodes[node(p as i32)].nb_bits() + 1;
            self.nodes[node(n as i32)].set_nb_bits(b);
            n -= 1;
        }
        for n in 0..=non_null_rank {
            let p = self.nodes[node(n)].parent();
            let b = self.nodes[node(p as i32)].nb_bits() + 1;
            self.nodes[node(n)].set_nb_bits(b);
        }
        self.actual_table_log = self.set_max_height(non_null_rank as usize);
        let max_nb_bits = self.actual_table_log;

        let mut nb_per_rank = [0u16; TABLE_LOG_MAX as usize + 1];
        let mut val_per_rank = [0u16; 16];
        for i in 0..=non_null_rank {
            nb_per_rank[self.nodes[node(i)].nb_bits() as usize] += 1;
        }
        let mut min = 0u16;
        for n in (1..=max_nb_bits as usize).rev() {
            val_per_rank[n] = min;
            min += nb_per_rank[n];
            min >>= 1;
        }
        for i in 0..=non_null_rank {
            let v = self.nodes[node(i)];
            self.c_table[v.symbol() as usize].n_bits = v.nb_bits();
        }
        for e in self.c_table[..sl].iter_mut() {
            let nbits = (e.n_bits & 15) as usize;
            let v = val_per_rank[nbits];
            e.val = v;
            val_per_rank[nbits] = v.wrapping_add(1);
        }
    }

    /// Sorts symbols by decreasing count into `nodes[1..]` (ties keep symbol order).
    fn huff_sort(&mut self) {
        #[derive(Clone, Copy, Default)]
        struct RankPos {
            base: u32,
            current: u32,
        }
        let mut rank = [RankPos::default(); 32];
        let sl = self.symbol_len as usize;
        for &v in &self.count[..sl] {
            let r = high_bit(v.wrapping_add(1)) & 31;
            rank[r as usize].base += 1;
        }
        const MAX_BIT_LENGTH: usize = 18 + 1;
        for n in (1..=MAX_BIT_LENGTH).rev() {
            rank[n - 1].base += rank[n].base;
        }
        for r in rank[..MAX_BIT_LENGTH].iter_mut() {
            r.current = r.base;
        }
        let nodes = &mut self.nodes[1..];
        for n in 0..sl {
            let c = self.count[n];
            let r = (high_bit(c.wrapping_add(1)).wrapping_add(1) & 31) as usize;
            let mut pos = rank[r].current;
            rank[r].current += 1;
            let mut prev = nodes[(pos.wrapping_sub(1) & HUFF_NODES_MASK) as usize];
            while pos > rank[r].base && c > prev.count() {
                nodes[(pos & HUFF_NODES_MASK) as usize] = prev;
                pos -= 1;
                prev = nodes[(pos.wrapping_sub(1) & HUFF_NODES_MASK) as usize];
            }
            nodes[(pos & HUFF_NODES_MASK) as usize] = Node::new(c, n as u8);
        }
    }

    fn set_max_height(&mut self, last_non_null: usize) -> u8 {
        let max_nb_bits = self.actual_table_log;
        let hn = &mut self.nodes[1..];
        let largest_bits = hn[last_non_null].nb_bits();
        if largest_bits <= max_nb_bits {
            return largest_bits;
        }
        let mut total_cost = 0i64;
        let base_cost = 1i64 << (largest_bits - max_nb_bits);
        let mut n = last_non_null as u32;
        while hn[n as usize].nb_bits() > max_nb_bits {
            total_cost += base_cost - (1i64 << (largest_bits - hn[n as usize].nb_bits()));
            hn[n as usize].set_nb_bits(max_nb_bits);
            n = n.wrapping_sub(1);
        }
        while hn[n as usize].nb_bits() == max_nb_bits {
            n = n.wrapping_sub(1);
        }
        total_cost >>= largest_bits - max_nb_bits;

        const NO_SYMBOL: u32 = 0xF0F0_F0F0;
        let mut rank_last = [NO_SYMBOL; TABLE_LOG_MAX as usize + 2];
        {
            let mut current_nb_bits = max_nb_bits;
            let mut pos = n as i64;
            while pos >= 0 {
                let b = hn[pos as usize].nb_bits();
                if b < current_nb_bits {
                    current_nb_bits = b;
                    rank_last[(max_nb_bits - current_nb_bits) as usize] = pos as u32;
                }
                pos -= 1;
            }
        }
        while total_cost > 0 {
            let mut n_bits_to_decrease = (high_bit(total_cost as u32) as u8).wrapping_add(1);
            while n_bits_to_decrease > 1 {
                let high_pos = rank_last[n_bits_to_decrease as usize];
                let low_pos = rank_last[n_bits_to_decrease as usize - 1];
                if high_pos == NO_SYMBOL {
                    n_bits_to_decrease -= 1;
                    continue;
                }
                if low_pos == NO_SYMBOL {
                    break;
                }
                let high_total = hn[high_pos as usize].count();
                let low_total = 2 * hn[low_pos as usize].count();
                if high_total <= low_total {
                    break;
                }
                n_bits_to_decrease -= 1;
            }
            while n_bits_to_decrease <= TABLE_LOG_MAX && rank_last[n_bits_to_decrease as usize] == NO_SYMBOL {
                n_bits_to_decrease += 1;
            }
            let nb = n_bits_to_decrease as usize;
            total_cost -= 1i64 << (nb - 1);
            if rank_last[nb - 1] == NO_SYMBOL {
                rank_last[nb - 1] = rank_last[nb];
            }
            let idx = rank_last[nb] as usize;
            let b = hn[idx].nb_bits() + 1;
            hn[idx].set_nb_bits(b);
            if rank_last[nb] == 0 {
                rank_last[nb] = NO_SYMBOL;
            } else {
                rank_last[nb] -= 1;
                if hn[rank_last[nb] as usize].nb_bits() != max_nb_bits.wrapping_sub(n_bits_to_decrease) {
                    rank_last[nb] = NO_SYMBOL;
                }
            }
        }
        while total_cost < 0 {
            if rank_last[1] == NO_SYMBOL {
                while hn[n as usize].nb_bits() == max_nb_bits {
                    n = n.wrapping_sub(1);
                }
                let i = n.wrapping_add(1) as usize;
                let b = hn[i].nb_bits() - 1;
                hn[i].set_nb_bits(b);
                rank_last[1] = n.wrapping_add(1);
                total_cost += 1;
                continue;
            }
            let i = rank_last[1] as usize + 1;
            let b = hn[i].nb_bits() - 1;
            hn[i].set_nb_bits(b);
            rank_last[1] += 1;
            total_cost += 1;
        }
        max_nb_bits
    }

    /// The table description: FSE-compressed weights when that is smaller, else nibbles.
    fn write_table(&mut self, out: &mut Vec<u8>) -> Result<(), HuffError> {
        let huff_log = self.actual_table_log;
        let max_symbol_value = (self.symbol_len - 1) as u8;
        let mut bits_to_weight = [0u8; TABLE_LOG_MAX as usize + 1];
        for n in 1..huff_log + 1 {
            bits_to_weight[n as usize] = huff_log + 1 - n;
        }
        let hist = &mut self.fse.count;
        hist[..16].fill(0);
        for n in 0..max_symbol_value as usize {
            let v = bits_to_weight[self.c_table[n].n_bits as usize] & 15;
            self.huff_weight[n] = v;
            hist[v as usize] += 1;
        }
        if max_symbol_value >= 2 {
            let (mut huff_max_cnt, mut huff_max) = (0u32, 0u8);
            for (i, &v) in hist[..16].iter().enumerate() {
                if v == 0 {
                    continue;
                }
                huff_max = i as u8;
                huff_max_cnt = huff_max_cnt.max(v);
            }
            self.fse.histogram_finished(huff_max, huff_max_cnt as usize);
            if let Some(b) = self.fse.compress(&self.huff_weight[..max_symbol_value as usize])
                && b.len() < (self.symbol_len >> 1) as usize
            {
                out.push(b.len() as u8);
                out.extend_from_slice(&b);
                return Ok(());
            }
        }
        if max_symbol_value > 128 {
            return Err(HuffError::Incompressible);
        }
        out.push(128 | max_symbol_value.wrapping_sub(1));
        self.huff_weight[max_symbol_value as usize] = 0;
        let mut n = 0usize;
        while n < max_symbol_value as usize {
            out.push(self.huff_weight[n] << 4 | self.huff_weight[n + 1]);
            n += 2;
        }
        Ok(())
    }
}

fn estimate_size(c: &[CTableEntry], hist: &[u32]) -> usize {
    let mut nb_bits = 7u32;
    for (i, e) in c[..hist.len()].iter().enumerate() {
        nb_bits = nb_bits.wrapping_add((e.n_bits as u32).wrapping_mul(hist[i]));
    }
    (nb_bits >> 3) as usize
}

/// A 64-bit container written from the least significant bit (huff0's bitWriter).
struct Bits {
    container: u64,
    n_bits: u8,
    out: Vec<u8>,
}

impl Bits {
    #[inline(always)]
    fn enc(&mut self, e: CTableEntry) {
        self.container |= (e.val as u64) << (self.n_bits & 63);
        self.n_bits += e.n_bits;
    }

    #[inline(always)]
    fn enc_four(&mut self, a: CTableEntry, b: CTableEntry, c: CTableEntry, d: CTableEntry) {
        let bits_a = a.n_bits;
        let bits_b = bits_a + b.n_bits;
        let bits_c = bits_b + c.n_bits;
        let bits_d = bits_c + d.n_bits;
        let combined = a.val as u64
            | (b.val as u64) << (bits_a & 63)
            | (c.val as u64) << (bits_b & 63)
            | (d.val as u64) << (bits_c & 63);
        self.container |= combined << (self.n_bits & 63);
        self.n_bits += bits_d;
    }

    #[inline(always)]
    fn enc_two(&mut self, a: CTableEntry, b: CTableEntry) {
        let combined = a.val as u64 | (b.val as u64) << (a.n_bits & 63);
        self.container |= combined << (self.n_bits & 63);
        self.n_bits += a.n_bits + b.n_bits;
    }

    #[inline(always)]
    fn flush32(&mut self) {
        if self.n_bits < 32 {
            return;
        }
        self.out.extend_from_slice(&(self.container as u32).to_le_bytes());
        self.n_bits -= 32;
        self.container >>= 32;
    }

    fn close(&mut self) {
        self.container |= 1u64 << (self.n_bits & 63);
        self.n_bits += 1;
        let n = (self.n_bits + 7) >> 3;
        for i in 0..n {
            self.out.push((self.container >> (i * 8)) as u8);
        }
        self.n_bits = 0;
        self.container = 0;
    }
}

/// One stream: the input coded from its end (the decoder reads backwards).
fn compress_1x_do(table: &[CTableEntry], table_log: u8, out: Vec<u8>, src: &[u8]) -> Vec<u8> {
    let mut bw = Bits {
        container: 0,
        n_bits: 0,
        out,
    };
    let ct = |b: u8| table.get(b as usize).copied().unwrap_or_default();
    let mut n = src.len() as isize;
    n -= n & 3;
    for i in (1..=(src.len() & 3)).rev() {
        bw.enc(ct(src[n as usize + i - 1]));
    }
    n -= 4;
    if table_log <= 8 {
        while n >= 0 {
            let t = &src[n as usize..n as usize + 4];
            bw.flush32();
            bw.enc_four(ct(t[3]), ct(t[2]), ct(t[1]), ct(t[0]));
            n -= 4;
        }
    } else {
        while n >= 0 {
            let t = &src[n as usize..n as usize + 4];
            bw.flush32();
            bw.enc_two(ct(t[3]), ct(t[2]));
            bw.flush32();
            bw.enc_two(ct(t[1]), ct(t[0]));
            n -= 4;
        }
    }
    bw.close();
    bw.out
}

/// Four streams after a 6-byte jump table; None when a stream exceeds 64 KiB or the input
/// is under 12 bytes.
fn compress_4x(table: &[CTableEntry], table_log: u8, mut out: Vec<u8>, mut src: &[u8]) -> Option<Vec<u8>> {
    if src.len() < 12 {
        return None;
    }
    let segment_size = src.len().div_ceil(4);
    let offset_idx = out.len();
    out.extend_from_slice(&[0; 6]);
    for i in 0..4 {
        let take = src.len().min(segment_size);
        let (to_do, rest) = src.split_at(take);
        src = rest;
        let idx = out.len();
        out = compress_1x_do(table, table_log, out, to_do);
        let length = out.len() - idx;
        if length > u16::MAX as usize {
            return None;
        }
        if i < 3 {
            out[offset_idx + i * 2..offset_idx + i * 2 + 2].copy_from_slice(&(length as u16).to_le_bytes());
        }
    }
    Some(out)
}

/// The generic FSE coder of the `fse` package, as huff0 uses it for Huffman weights
/// (table log at most 6, symbols below 16).
struct WeightsFse {
    count: [u32; 256],
    norm: [i16; 256],
    symbol_len: u16,
    max_count: usize,
    actual_table_log: u8,
    zero_bits: bool,
    table_symbol: Vec<u8>,
    state_table: Vec<u16>,
    symbol_tt: Vec<(u32, i32)>,
}

const FSE_MIN_TABLE_LOG: u8 = 5;
const FSE_MAX_TABLE_LOG: u8 = 12;
const FSE_WEIGHTS_TABLE_LOG: u8 = 6;

impl WeightsFse {
    fn new() -> WeightsFse {
        WeightsFse {
            count: [0; 256],
            norm: [0; 256],
            symbol_len: 0,
            max_count: 0,
            actual_table_log: 0,
            zero_bits: false,
            table_symbol: Vec::new(),
            state_table: Vec::new(),
            symbol_tt: vec![(0, 0); 256],
        }
    }

    fn histogram_finished(&mut self, max_symbol: u8, max_count: usize) {
        self.max_count = max_count;
        self.symbol_len = max_symbol as u16 + 1;
    }

    /// `fse.Compress` with the histogram already set: None for RLE or incompressible.
    fn compress(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        if input.len() <= 1 {
            return None;
        }
        let max_count = self.max_count;
        self.max_count = 0;
        if max_count == input.len() || max_count == 1 || max_count < (input.len() >> 7) {
            return None;
        }
        self.optimal_table_log(input.len());
        self.normalize_count(input.len());
        let mut out = self.write_count();
        self.build_ctable();
        self.encode(input, &mut out);
        (out.len() < input.len()).then_some(out)
    }

    fn optimal_table_log(&mut self, len: usize) {
        let mut table_log = FSE_WEIGHTS_TABLE_LOG;
        let min_bits_src = high_bit((len as u32).wrapping_sub(1)).wrapping_add(1);
        let min_bits_symbols = high_bit((self.symbol_len as u32).wrapping_sub(1)).wrapping_add(2);
        let min_bits = if min_bits_src < min_bits_symbols {
            min_bits_src as u8
        } else {
            min_bits_symbols as u8
        };
        let max_bits_src = (high_bit((len as u32).wrapping_sub(1)) as u8).wrapping_sub(2);
        if max_bits_src < table_log {
            table_log = max_bits_src;
        }
        if min_bits > table_log {
            table_log = min_bits;
        }
        self.actual_table_log = table_log.clamp(FSE_MIN_TABLE_LOG, FSE_MAX_TABLE_LOG);
    }

    fn normalize_count(&mut self, len: usize) {
        super::fse::normalize_count(
            &self.count,
            &mut self.norm,
            self.symbol_len as usize,
            self.actual_table_log as u32,
            len,
        );
    }

    fn write_count(&self) -> Vec<u8> {
        let mut out = Vec::new();
        super::fse::write_ncount(&self.norm, self.actual_table_log, &mut out);
        out
    }

    fn build_ctable(&mut self) {
        let table_size = 1usize << self.actual_table_log;
        self.table_symbol.resize(table_size, 0);
        self.state_table.resize(table_size, 0);
        let tt = &mut self.symbol_tt;
        let sl = self.symbol_len as usize;
        self.zero_bits = super::fse::build_ctable(
            &self.norm[..sl],
            self.actual_table_log,
            &mut self.table_symbol,
            &mut self.state_table,
            |i, delta_nb_bits, delta_find_state| tt[i] = (delta_nb_bits, delta_find_state as i32),
        );
    }

    /// Two interleaved states over the input from its end (`fse.(*Scratch).compress`).
    fn encode(&self, src: &[u8], out: &mut Vec<u8>) {
        struct St {
            state: u16,
        }
        let tt = |b: u8| self.symbol_tt[b as usize];
        let init = |t: (u32, i32)| {
            let nb_bits_out = (t.0 + (1 << 15)) >> 16;
            let im = ((nb_bits_out << 16).wrapping_sub(t.0)) as i32;
            let lu = (im >> nb_bits_out) + t.1;
            St {
                state: self.state_table[lu as usize],
            }
        };
        let mut w = super::bits::BitWriter::new(std::mem::take(out));
        let enc = |c: &mut St, w: &mut super::bits::BitWriter, t: (u32, i32)| {
            let nb_bits_out = (c.state as u32).wrapping_add(t.0) >> 16;
            let dst = (c.state >> (nb_bits_out & 15)) as i32 + t.1;
            // addBits16NC and addBits16ZeroNC write the same bits.
            w.add_bits16_nc(c.state, nb_bits_out as u8);
            c.state = self.state_table[dst as usize];
        };
        let mut ip = src.len();
        let (mut c1, mut c2);
        if ip & 1 == 1 {
            c1 = init(tt(src[ip - 1]));
            c2 = init(tt(src[ip - 2]));
            enc(&mut c1, &mut w, tt(src[ip - 3]));
            ip -= 3;
        } else {
            c2 = init(tt(src[ip - 1]));
            c1 = init(tt(src[ip - 2]));
            ip -= 2;
        }
        if ip & 2 != 0 {
            enc(&mut c2, &mut w, tt(src[ip - 1]));
            enc(&mut c1, &mut w, tt(src[ip - 2]));
            ip -= 2;
        }
        let mut s = &src[..ip];
        let two_flushes = self.actual_table_log > 8;
        while s.len() >= 4 {
            w.flush32();
            let n = s.len();
            let (v3, v2, v1, v0) = (s[n - 4], s[n - 3], s[n - 2], s[n - 1]);
            enc(&mut c2, &mut w, tt(v0));
            enc(&mut c1, &mut w, tt(v1));
            if two_flushes {
                w.flush32();
            }
            enc(&mut c2, &mut w, tt(v2));
            enc(&mut c1, &mut w, tt(v3));
            s = &s[..n - 4];
        }
        let tl = self.actual_table_log;
        for c in [&c2, &c1] {
            w.flush32();
            w.add_bits16_nc(c.state, tl);
            // fse's flush(): whole bytes out, keep the rest.
            let v = w.n_bits >> 3;
            for i in 0..v {
                w.out.push((w.container >> (i * 8)) as u8);
            }
            w.container = if v >= 8 { 0 } else { w.container >> (v * 8) };
            w.n_bits &= 7;
        }
        w.close();
        *out = w.out;
    }
}

/// The smaller of the next leaf (`low_s`, counting down) and the next inner node (`low_n`,
/// counting up) in the Huffman tree under construction; the one taken moves on.
fn take_smaller(nodes: &[Node], low_s: &mut i16, low_n: &mut i16) -> i16 {
    let count = |i: i16| nodes[(i + 1) as usize].count();
    if count(*low_s) < count(*low_n) {
        *low_s -= 1;
        *low_s + 1
    } else {
        *low_n += 1;
        *low_n - 1
    }
}
