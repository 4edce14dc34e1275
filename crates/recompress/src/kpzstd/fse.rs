// Port of klauspost/compress zstd/fse_encoder.go and the encoder half of
// zstd/fse_predefined.go (1.18.0; unchanged in 1.15.12 and 1.20.3); it follows the Go
// design closely, including which fields persist between uses of one encoder.
//
// Copyright 2019+ Klaus Post. All rights reserved.
// Based on work by Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! FSE tables for the three sequence codes (literal lengths, offsets, match lengths):
//! normalisation, table construction, the table description, cost estimates, and the
//! predefined tables of the zstd format.

use std::sync::OnceLock;

use super::bits::BitWriter;

const MAX_ENC_TABLE_LOG: u8 = 8;
const MIN_ENC_TABLE_LOG: u8 = 5;

pub(crate) fn high_bit(v: u32) -> u32 {
    // Go: uint32(bits.Len32(v) - 1), which wraps for 0.
    (32 - v.leading_zeros()).wrapping_sub(1)
}

#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct SymbolTransform {
    pub delta_nb_bits: u32,
    pub delta_find_state: i16,
    pub out_bits: u8,
}

#[derive(Clone)]
pub(crate) struct FseEncoder {
    pub symbol_len: u16,
    pub actual_table_log: u8,
    table_symbol: Vec<u8>,
    pub state_table: Vec<u16>,
    pub symbol_tt: Vec<SymbolTransform>,
    pub max_count: usize,
    zero_bits: bool,
    pub use_rle: bool,
    pub pre_defined: bool,
    pub re_used: bool,
    pub rle_val: u8,
    max_bits: u8,
    pub count: [u32; 256],
    pub norm: [i16; 256],
}

static RTB_TABLE: [u32; 8] = [0, 473195, 504333, 520860, 550000, 700000, 750000, 830000];

impl FseEncoder {
    pub fn new() -> FseEncoder {
        FseEncoder {
            symbol_len: 0,
            actual_table_log: 0,
            table_symbol: Vec::new(),
            state_table: Vec::new(),
            symbol_tt: Vec::new(),
            max_count: 0,
            zero_bits: false,
            use_rle: false,
            pre_defined: false,
            re_used: false,
            rle_val: 0,
            max_bits: 0,
            count: [0; 256],
            norm: [0; 256],
        }
    }

    /// `HistogramFinished`: the highest symbol used and the largest count.
    pub fn histogram_finished(&mut self, max_symbol: u8, max_count: usize) {
        self.max_count = max_count;
        self.symbol_len = max_symbol as u16 + 1;
    }

    fn alloc_ctable(&mut self) {
        let table_size = 1usize << self.actual_table_log;
        self.table_symbol.resize(table_size, 0);
        self.state_table.resize(table_size, 0);
        if self.symbol_tt.len() < 256 {
            self.symbol_tt.resize(256, SymbolTransform::default());
        }
    }

    fn build_ctable(&mut self) {
        self.alloc_ctable();
        let tt = &mut self.symbol_tt;
        let sl = self.symbol_len as usize;
        self.zero_bits = build_ctable(
            &self.norm[..sl],
            self.actual_table_log,
            &mut self.table_symbol,
            &mut self.state_table,
            |i, delta_nb_bits, delta_find_state| {
                tt[i].delta_nb_bits = delta_nb_bits;
                tt[i].delta_find_state = delta_find_state;
            },
        );
    }

    pub fn set_rle(&mut self, val: u8) {
        self.alloc_ctable();
        self.actual_table_log = 0;
        self.state_table.truncate(1);
        self.symbol_tt[val as usize] = SymbolTransform::default();
        self.rle_val = val;
        self.use_rle = true;
    }

    /// Extra bits per symbol: `transform[symbol]`, or the symbol itself when None (offsets).
    pub fn set_bits(&mut self, transform: Option<&[u8]>) {
        if self.re_used || self.pre_defined {
            return;
        }
        if self.use_rle {
            let v = self.rle_val;
            self.max_bits = transform.map_or(v, |t| t[v as usize]);
            self.symbol_tt[v as usize].out_bits = self.max_bits;
            return;
        }
        let sl = self.symbol_len as usize;
        match transform {
            None => {
                for (i, tt) in self.symbol_tt[..sl].iter_mut().enumerate() {
                    tt.out_bits = i as u8;
                }
                self.max_bits = (self.symbol_len - 1) as u8;
            }
            Some(t) => {
                self.max_bits = 0;
                for (i, &v) in t[..sl].iter().enumerate() {
                    self.symbol_tt[i].out_bits = v;
                    self.max_bits = self.max_bits.max(v);
                }
            }
        }
    }

    /// Normalises the counts to the table size and builds the tables (or marks RLE).
    pub fn normalize_count(&mut self, length: usize) {
        if self.re_used {
            return;
        }
        self.optimal_table_log(length);
        if self.max_count == length {
            self.use_rle = true;
            return;
        }
        self.use_rle = false;
        normalize_count(
            &self.count,
            &mut self.norm,
            self.symbol_len as usize,
            self.actual_table_log as u32,
            length,
        );
        self.build_ctable();
    }

    fn optimal_table_log(&mut self, length: usize) {
        let mut table_log = MAX_ENC_TABLE_LOG;
        let min_bits_src = high_bit(length as u32).wrapping_add(1);
        let min_bits_symbols = high_bit((self.symbol_len as u32).wrapping_sub(1)).wrapping_add(2);
        let mut min_bits = min_bits_symbols as u8;
        if min_bits_src < min_bits_symbols {
            min_bits = min_bits_src as u8;
        }
        let max_bits_src = (high_bit((length as u32).wrapping_sub(1)) as u8).wrapping_sub(2);
        if max_bits_src < table_log {
            table_log = max_bits_src;
        }
        if min_bits > table_log {
            table_log = min_bits;
        }
        table_log = table_log.clamp(MIN_ENC_TABLE_LOG, MAX_ENC_TABLE_LOG);
        self.actual_table_log = table_log;
    }

    /// The table description (`FSE_writeNCount`), or the RLE byte; nothing for predefined
    /// and reused tables.
    pub fn write_count(&self, out: &mut Vec<u8>) {
        if self.use_rle {
            out.push(self.rle_val);
            return;
        }
        if self.pre_defined || self.re_used {
            return;
        }
        write_ncount(&self.norm, self.actual_table_log, out);
    }

    fn bit_cost(&self, symbol: u8, accuracy_log: u32) -> u32 {
        let tt = self.symbol_tt[symbol as usize];
        let min_nb_bits = tt.delta_nb_bits >> 16;
        let threshold = (min_nb_bits + 1) << 16;
        let table_size = 1u32 << self.actual_table_log;
        let delta_from_threshold = threshold.wrapping_sub(tt.delta_nb_bits.wrapping_add(table_size));
        let normalized = (delta_from_threshold << accuracy_log) >> self.actual_table_log;
        let bit_multiplier = 1u32 << accuracy_log;
        ((min_nb_bits + 1) * bit_multiplier).wrapping_sub(normalized)
    }

    /// Bits to code `hist` with this table, `u32::MAX` when it cannot.
    pub fn approx_size(&self, hist: &[u32]) -> u32 {
        if (self.symbol_len as usize) < hist.len() || self.use_rle {
            return u32::MAX;
        }
        const K_ACCURACY_LOG: u32 = 8;
        let bad_cost = (self.actual_table_log as u32 + 1) << K_ACCURACY_LOG;
        let mut cost = 0u32;
        for (i, &v) in hist.iter().enumerate() {
            if v == 0 {
                continue;
            }
            if self.norm[i] == 0 {
                return u32::MAX;
            }
            let bc = self.bit_cost(i as u8, K_ACCURACY_LOG);
            if bc > bad_cost {
                return u32::MAX;
            }
            cost = cost.wrapping_add(v.wrapping_mul(bc));
        }
        cost >> K_ACCURACY_LOG
    }

    /// A bound on the table description in bits, as the mode choice prices it.
    pub fn max_header_size(&self) -> u32 {
        if self.pre_defined {
            return 0;
        }
        if self.use_rle {
            return 8;
        }
        (((self.symbol_len as u32 * self.actual_table_log as u32) >> 3) + 3) * 8
    }
}

/// FSE's compression table from normalized counts (`buildCTable`, shared by the sequence
/// coders and huff0's weight coder): spreads the symbols over `table_symbol`, fills
/// `state_table` (both `1 << table_log` long) and hands each used symbol's
/// (deltaNbBits, deltaFindState) to `transform`. Returns `zeroBits`: whether some symbol
/// takes more than half the table.
pub(crate) fn build_ctable(
    norm: &[i16],
    table_log: u8,
    table_symbol: &mut [u8],
    state_table: &mut [u16],
    mut transform: impl FnMut(usize, u32, i16),
) -> bool {
    let table_size = 1u32 << table_log;
    let mut high_threshold = table_size - 1;
    let mut cumul = [0i16; 258];
    let sl = norm.len();
    for u in 0..sl {
        let v = norm[u];
        if v == -1 {
            cumul[u + 1] = cumul[u] + 1;
            table_symbol[high_threshold as usize] = u as u8;
            high_threshold = high_threshold.wrapping_sub(1);
        } else {
            cumul[u + 1] = cumul[u] + v;
        }
    }
    debug_assert_eq!(
        cumul[sl] as u32, table_size,
        "FSE counts must sum to the table size"
    );
    cumul[sl] = table_size as i16 + 1;

    let mut zero_bits = false;
    let step = table_step(table_size);
    let table_mask = table_size - 1;
    let mut position = 0u32;
    let large_limit = 1i16 << (table_log - 1);
    for (symbol, &v) in norm.iter().enumerate() {
        if v > large_limit {
            zero_bits = true;
        }
        for _ in 0..v.max(0) {
            table_symbol[position as usize] = symbol as u8;
            position = (position + step) & table_mask;
            while position > high_threshold {
                position = (position + step) & table_mask;
            }
        }
    }
    debug_assert_eq!(position, 0, "FSE spread must end at position 0");

    let tsi = table_size as usize;
    for (u, &symbol) in table_symbol[..tsi].iter().enumerate() {
        let v = symbol as usize;
        state_table[cumul[v] as usize] = (tsi + u) as u16;
        cumul[v] += 1;
    }

    let mut total = 0i16;
    let table_log = table_log as u32;
    let tl = (table_log << 16).wrapping_sub(1 << table_log);
    for (i, &v) in norm.iter().enumerate() {
        match v {
            0 => {}
            -1 | 1 => {
                transform(i, tl, total - 1);
                total += 1;
            }
            _ => {
                let max_bits_out = table_log - high_bit((v - 1) as u32);
                let min_state_plus = (v as u32) << max_bits_out;
                transform(i, (max_bits_out << 16).wrapping_sub(min_state_plus), total - v);
                total += v;
            }
        }
    }
    debug_assert_eq!(total as u32, table_size);
    zero_bits
}

fn table_step(table_size: u32) -> u32 {
    (table_size >> 1) + (table_size >> 3) + 3
}

/// The state of one FSE stream while sequences are written (backwards).
pub(crate) struct CState {
    pub state: u16,
    rle: bool,
}

impl CState {
    pub fn init(enc: &FseEncoder, first: SymbolTransform) -> CState {
        if enc.state_table.len() == 1 {
            return CState { state: 0, rle: true };
        }
        let nb_bits_out = (first.delta_nb_bits + (1 << 15)) >> 16;
        let im = ((nb_bits_out << 16).wrapping_sub(first.delta_nb_bits)) as i32;
        let lu = (im >> nb_bits_out) + first.delta_find_state as i32;
        CState {
            state: enc.state_table[lu as usize],
            rle: false,
        }
    }

    /// Codes `tt`'s symbol: writes the state's low bits and moves to the next state.
    #[inline(always)]
    pub fn encode(&mut self, w: &mut BitWriter, enc: &FseEncoder, tt: SymbolTransform) {
        let nb_bits_out = (self.state as u32).wrapping_add(tt.delta_nb_bits) >> 16;
        let dst = (self.state >> (nb_bits_out & 15)) as i32 + tt.delta_find_state as i32;
        w.add_bits16_nc(self.state, nb_bits_out as u8);
        self.state = if self.rle {
            0
        } else {
            enc.state_table[dst as usize]
        };
    }

    pub fn flush(&self, w: &mut BitWriter, table_log: u8) {
        w.flush32();
        w.add_bits16_nc(self.state, table_log);
    }
}

/// Which sequence code a table is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    LiteralLengths = 0,
    Offsets = 1,
    MatchLengths = 2,
}

/// Extra bits per literal length code.
pub(crate) const LL_BITS: [u8; 36] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13,
    14, 15, 16,
];

/// Extra bits per match length code.
pub(crate) const ML_BITS: [u8; 53] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1,
    1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];

/// The predefined encoders of the zstd format, built once.
pub(crate) fn predefined(t: Table) -> &'static FseEncoder {
    static TABLES: OnceLock<[FseEncoder; 3]> = OnceLock::new();
    &TABLES.get_or_init(|| {
        let build = |log: u8, norm: &[i16], bits: Option<&[u8]>| {
            let mut e = FseEncoder::new();
            e.norm[..norm.len()].copy_from_slice(norm);
            e.symbol_len = norm.len() as u16;
            e.actual_table_log = log;
            e.build_ctable();
            e.set_bits(bits);
            e.pre_defined = true;
            e
        };
        [
            build(
                6,
                &[
                    4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1,
                    1, 1, -1, -1, -1, -1,
                ],
                Some(&LL_BITS),
            ),
            build(
                5,
                &[
                    1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1,
                    -1,
                ],
                None,
            ),
            build(
                6,
                &[
                    1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
                ],
                Some(&ML_BITS),
            ),
        ]
    })[t as usize]
}

/// The description of a normalized count table (zstd's `FSE_writeNCount`): shared by the
/// sequence tables and huff0's weight table, which write it the same way.
pub(super) fn write_ncount(norm: &[i16; 256], table_log: u8, out: &mut Vec<u8>) {
    let table_size = 1i32 << table_log;
    let mut previous0 = false;
    let mut charnum = 0usize;
    let mut bit_stream = (table_log - MIN_ENC_TABLE_LOG) as u32;
    let mut bit_count = 4u32;
    let mut remaining = (table_size + 1) as i16;
    let mut threshold = table_size as i16;
    let mut nb_bits = table_log as u32 + 1;
    let put16 = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&(v as u16).to_le_bytes());
    while remaining > 1 {
        if previous0 {
            let mut start = charnum;
            while norm[charnum] == 0 {
                charnum += 1;
            }
            while charnum >= start + 24 {
                start += 24;
                bit_stream = bit_stream.wrapping_add(0xFFFF << bit_count);
                put16(out, bit_stream);
                bit_stream >>= 16;
            }
            while charnum >= start + 3 {
                start += 3;
                bit_stream = bit_stream.wrapping_add(3 << bit_count);
                bit_count += 2;
            }
            bit_stream = bit_stream.wrapping_add(((charnum - start) as u32) << bit_count);
            bit_count += 2;
            if bit_count > 16 {
                put16(out, bit_stream);
                bit_stream >>= 16;
                bit_count -= 16;
            }
        }
        let mut count = norm[charnum];
        charnum += 1;
        let max = (2 * threshold - 1) - remaining;
        if count < 0 {
            remaining += count;
        } else {
            remaining -= count;
        }
        count += 1;
        if count >= threshold {
            count += max;
        }
        bit_stream = bit_stream.wrapping_add((count as u32) << bit_count);
        bit_count += nb_bits;
        if count < max {
            bit_count -= 1;
        }
        previous0 = count == 1;
        debug_assert!(remaining >= 1, "FSE count description overran");
        while remaining < threshold {
            nb_bits -= 1;
            threshold >>= 1;
        }
        if bit_count > 16 {
            put16(out, bit_stream);
            bit_stream >>= 16;
            bit_count -= 16;
        }
    }
    let tail = (bit_stream as u16).to_le_bytes();
    out.extend_from_slice(&tail[..bit_count.div_ceil(8) as usize]);
}

/// `normalizeCount`: the counts of `symbol_len` symbols over `length` scaled to
/// `1 << table_log` (rare symbols get -1, "less than one"), falling back to
/// `normalize_count2` when rounding leaves too much to the largest symbol. Shared by the
/// sequence coders and huff0's weight coder.
// Indexed loops over the two parallel arrays, as in the Go original.
#[allow(clippy::needless_range_loop)]
pub(super) fn normalize_count(
    count: &[u32; 256],
    norm: &mut [i16; 256],
    symbol_len: usize,
    table_log: u32,
    length: usize,
) {
    let scale = 62 - table_log as u64;
    let step = (1u64 << 62) / length as u64;
    let v_step = 1u64 << (scale - 20);
    let mut still_to_distribute = 1i16 << table_log;
    let mut largest = 0usize;
    let mut largest_p = 0i16;
    let low_threshold = (length >> table_log) as u32;
    for i in 0..symbol_len {
        let cnt = count[i];
        if cnt == 0 {
            norm[i] = 0;
            continue;
        }
        if cnt <= low_threshold {
            norm[i] = -1;
            still_to_distribute -= 1;
        } else {
            let mut proba = ((cnt as u64 * step) >> scale) as i16;
            if proba < 8 {
                let rest_to_beat = v_step * RTB_TABLE[proba as usize] as u64;
                let v = (cnt as u64 * step) - ((proba as u64) << scale);
                if v > rest_to_beat {
                    proba += 1;
                }
            }
            if proba > largest_p {
                largest_p = proba;
                largest = i;
            }
            norm[i] = proba;
            still_to_distribute -= proba;
        }
    }
    if -still_to_distribute >= (norm[largest] >> 1) {
        normalize_count2(count, norm, symbol_len, table_log, length);
        return;
    }
    norm[largest] += still_to_distribute;
}

/// The fallback normalisation (zstd's `FSE_normalizeM2`) for counts the fast one cannot
/// place: shared by the sequence tables and huff0's weight table, which run the same
/// algorithm in klauspost/compress.
// Indexed loops over the two parallel arrays, as in the Go original.
#[allow(clippy::needless_range_loop)]
pub(super) fn normalize_count2(
    count: &[u32; 256],
    norm: &mut [i16; 256],
    symbol_len: usize,
    table_log: u32,
    length: usize,
) {
    const NOT_YET_ASSIGNED: i16 = -2;
    let mut distributed = 0u32;
    let mut total = length as u32;
    let low_threshold = total >> table_log;
    let mut low_one = (total * 3) >> (table_log + 1);
    let sl = symbol_len;
    for i in 0..sl {
        let cnt = count[i];
        if cnt == 0 {
            norm[i] = 0;
            continue;
        }
        if cnt <= low_threshold {
            norm[i] = -1;
            distributed += 1;
            total -= cnt;
            continue;
        }
        if cnt <= low_one {
            norm[i] = 1;
            distributed += 1;
            total -= cnt;
            continue;
        }
        norm[i] = NOT_YET_ASSIGNED;
    }
    let mut to_distribute = (1u32 << table_log).wrapping_sub(distributed);
    if total / to_distribute > low_one {
        low_one = (total * 3) / (to_distribute * 2);
        for i in 0..sl {
            if norm[i] == NOT_YET_ASSIGNED && count[i] <= low_one {
                norm[i] = 1;
                distributed += 1;
                total -= count[i];
            }
        }
        to_distribute = (1u32 << table_log).wrapping_sub(distributed);
    }
    if distributed == symbol_len as u32 + 1 {
        let (mut max_v, mut max_c) = (0usize, 0u32);
        for i in 0..sl {
            if count[i] > max_c {
                max_v = i;
                max_c = count[i];
            }
        }
        norm[max_v] += to_distribute as i16;
        return;
    }
    if total == 0 {
        let mut i = 0usize;
        while to_distribute > 0 {
            if norm[i] > 0 {
                to_distribute -= 1;
                norm[i] += 1;
            }
            i = (i + 1) % sl;
        }
        return;
    }
    let v_step_log = 62 - table_log as u64;
    let mid = (1u64 << (v_step_log - 1)) - 1;
    let r_step = ((1u64 << v_step_log) * to_distribute as u64 + mid) / total as u64;
    let mut tmp_total = mid;
    for i in 0..sl {
        if norm[i] == NOT_YET_ASSIGNED {
            let end = tmp_total + count[i] as u64 * r_step;
            let s_start = (tmp_total >> v_step_log) as u32;
            let s_end = (end >> v_step_log) as u32;
            norm[i] = s_end.wrapping_sub(s_start) as i16;
            tmp_total = end;
        }
    }
}
