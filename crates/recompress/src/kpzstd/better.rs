// Port of klauspost/compress zstd/enc_better.go (`betterFastEncoder.Encode`,
// `EncodeNoHist`), 1.18.0, with 1.15.12's differences switched by `BetterRules`; it
// follows the Go design closely.
//
// Copyright 2019+ Klaus Post. All rights reserved.
// Based on work by Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! SpeedBetterCompression: a long table of 2^19 two-deep chains (8-byte hash) and a short
//! table of 2^13 entries (5 bytes), a look at the next position, and a probe for a longer
//! match ending where the found one ends.

use super::base::{
    FastBase, MAX_MATCH_LENGTH, PrevEntry, TableEntry, ZSTD_MIN_MATCH, hash_len, load32, load64, match_len,
    rebase_offset, zeroed_table,
};
use super::block::{BlockEnc, Seq};

const LONG_BITS: u32 = 19;
const LONG_SIZE: usize = 1 << LONG_BITS;
const LONG_LEN: u32 = 8;
const SHORT_BITS: u32 = 13;
const SHORT_SIZE: usize = 1 << SHORT_BITS;
const SHORT_LEN: u32 = 5;

/// What changed in the better match finder between 1.15.12 and 1.17.8.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BetterRules {
    /// A block that is one byte repeated becomes a literal and one match (1.17.8+).
    pub rle_shortcut: bool,
    /// After a match, positions are indexed from the search position + 1 (1.17.3+), not
    /// from the match start + 1.
    pub index_from_search: bool,
}

pub(crate) struct BetterEncoder {
    pub base: FastBase,
    table: Box<[TableEntry]>,
    long_table: Box<[PrevEntry]>,
    rules: BetterRules,
}

impl BetterEncoder {
    pub fn new(window: i32, rules: BetterRules) -> BetterEncoder {
        BetterEncoder {
            base: FastBase::new(window),
            table: zeroed_table(SHORT_SIZE),
            long_table: zeroed_table(LONG_SIZE),
            rules,
        }
    }

    /// `EncodeNoHist`: the history is used anyway.
    pub fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.base.ensure_hist(src.len());
        self.encode(blk, src);
    }

    pub fn encode(&mut self, blk: &mut BlockEnc, block: &[u8]) {
        const INPUT_MARGIN: i32 = 8 + 2;
        const MIN_NON_LITERAL_BLOCK_SIZE: usize = 16;
        if let Some(r) = self.base.rebase() {
            let mm = self.base.max_match_off;
            for e in self.table.iter_mut() {
                if r.0 == i32::MAX {
                    *e = TableEntry::default();
                } else {
                    e.offset = rebase_offset(e.offset, r, mm);
                }
            }
            for e in self.long_table.iter_mut() {
                if r.0 == i32::MAX || e.offset < r.0 {
                    *e = PrevEntry::default();
                } else {
                    e.offset = rebase_offset(e.offset, r, mm);
                    e.prev = rebase_offset(e.prev, r, mm);
                }
            }
        }
        let mut s = self.base.add_block(block);
        blk.size = block.len();
        if self.rules.rle_shortcut && block.len() > ZSTD_MIN_MATCH as usize {
            let ml = match_len(&block[1..], block);
            if ml == block.len() - 1 {
                blk.literals.push(block[0]);
                blk.sequences.push(Seq::new(
                    1,
                    (block.len() as u32 - 1).wrapping_sub(ZSTD_MIN_MATCH),
                    1 + 3,
                ));
                return;
            }
        }
        if block.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            blk.extra_lits = block.len();
            blk.literals.clear();
            blk.literals.extend_from_slice(block);
            return;
        }
        let cur = self.base.cur;
        let mm = self.base.max_match_off;
        let (table, long_table) = (&mut self.table, &mut self.long_table);
        let src = &self.base.hist[..];
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        const STEP_SIZE: i32 = 1;
        const K_SEARCH_STRENGTH: i32 = 9;
        let mut next_emit = s;
        let mut cv = load64(src, s);
        let mut offset1 = blk.recent_offsets[0] as i32;
        let mut offset2 = blk.recent_offsets[1] as i32;
        let matchlen = |s: i32, t: i32| match_len(&src[s as usize..], &src[t as usize..]) as i32;
        let index_from_search = self.rules.index_from_search;

        'encode: loop {
            let mut t;
            let can_repeat = blk.sequences.len() > 2;
            let mut matched;
            let mut index0;
            loop {
                let next_hash_l = hash_len(cv, LONG_BITS, LONG_LEN);
                let next_hash_s = hash_len(cv, SHORT_BITS, SHORT_LEN);
                let candidate_l = long_table[next_hash_l];
                let candidate_s = table[next_hash_s];
                const REP_OFF: i32 = 1;
                let rep_index = s - offset1 + REP_OFF;
                let off = s + cur;
                long_table[next_hash_l] = PrevEntry {
                    offset: off,
                    prev: candidate_l.offset,
                };
                table[next_hash_s] = TableEntry {
                    offset: off,
                    val: cv as u32,
                };
                index0 = s + 1;
                if can_repeat && rep_index >= 0 && load32(src, rep_index) == (cv >> (REP_OFF * 8)) as u32 {
                    let length = 4 + matchlen(s + 4 + REP_OFF, rep_index + 4);
                    let t_min = (s - mm).max(0);
                    blk.emit_repeat(
                        src,
                        next_emit,
                        t_min,
                        (
                            s + REP_OFF,
                            rep_index,
                            (length as u32).wrapping_sub(ZSTD_MIN_MATCH),
                        ),
                        MAX_MATCH_LENGTH as u32 - ZSTD_MIN_MATCH - 1,
                        1,
                    );
                    let mut index0 = s + REP_OFF;
                    s += length + REP_OFF;
                    next_emit = s;
                    if s >= s_limit {
                        break 'encode;
                    }
                    while index0 < s - 1 {
                        let cv0 = load64(src, index0);
                        let cv1 = cv0 >> 8;
                        let h0 = hash_len(cv0, LONG_BITS, LONG_LEN);
                        let off = index0 + cur;
                        long_table[h0] = PrevEntry {
                            offset: off,
                            prev: long_table[h0].offset,
                        };
                        table[hash_len(cv1, SHORT_BITS, SHORT_LEN)] = TableEntry {
                            offset: off + 1,
                            val: cv1 as u32,
                        };
                        index0 += 2;
                    }
                    cv = load64(src, s);
                    continue;
                }
                let coffset_l = candidate_l.offset - cur;
                let coffset_lp = candidate_l.prev - cur;
                if s - coffset_l < mm && cv == load64(src, coffset_l) {
                    matched = matchlen(s + 8, coffset_l + 8) + 8;
                    t = coffset_l;
                    if s - coffset_lp < mm && cv == load64(src, coffset_lp) {
                        let prev_match = matchlen(s + 8, coffset_lp + 8) + 8;
                        if prev_match > matched {
                            matched = prev_match;
                            t = coffset_lp;
                        }
                    }
                    break;
                }
                if s - coffset_lp < mm && cv == load64(src, coffset_lp) {
                    matched = matchlen(s + 8, coffset_lp + 8) + 8;
                    t = coffset_lp;
                    break;
                }
                let coffset_s = candidate_s.offset - cur;
                if s - coffset_s < mm && cv as u32 == candidate_s.val {
                    matched = matchlen(s + 4, coffset_s + 4) + 4;
                    const CHECK_AT: i32 = 1;
                    let cv = load64(src, s + CHECK_AT);
                    let next_hash_l = hash_len(cv, LONG_BITS, LONG_LEN);
                    let candidate_l = long_table[next_hash_l];
                    let coffset_l = candidate_l.offset - cur;
                    long_table[next_hash_l] = PrevEntry {
                        offset: s + CHECK_AT + cur,
                        prev: candidate_l.offset,
                    };
                    if s - coffset_l < mm && cv == load64(src, coffset_l) {
                        let matched_next = matchlen(s + 8 + CHECK_AT, coffset_l + 8) + 8;
                        if matched_next > matched {
                            t = coffset_l;
                            s += CHECK_AT;
                            matched = matched_next;
                            break;
                        }
                    }
                    let coffset_l = candidate_l.prev - cur;
                    if s - coffset_l < mm && cv == load64(src, coffset_l) {
                        let matched_next = matchlen(s + 8 + CHECK_AT, coffset_l + 8) + 8;
                        if matched_next > matched {
                            t = coffset_l;
                            s += CHECK_AT;
                            matched = matched_next;
                            break;
                        }
                    }
                    t = coffset_s;
                    break;
                }
                s += STEP_SIZE + ((s - next_emit) >> (K_SEARCH_STRENGTH - 1));
                if s >= s_limit {
                    break 'encode;
                }
                cv = load64(src, s);
            }

            // A longer match that ends where this one ends?
            if s + matched < s_limit {
                const SKIP_BEGINNING: i32 = 3;
                let next_hash_l = hash_len(load64(src, s + matched), LONG_BITS, LONG_LEN);
                let s2 = s + SKIP_BEGINNING;
                let cv = load32(src, s2);
                let candidate_l = long_table[next_hash_l];
                let coffset_l = candidate_l.offset - cur - matched + SKIP_BEGINNING;
                if coffset_l >= 0 && coffset_l < s2 && s2 - coffset_l < mm && cv == load32(src, coffset_l) {
                    let matched_next = matchlen(s2 + 4, coffset_l + 4) + 4;
                    if matched_next > matched {
                        t = coffset_l;
                        s = s2;
                        matched = matched_next;
                    }
                }
                let coffset_l = candidate_l.prev - cur - matched + SKIP_BEGINNING;
                if coffset_l >= 0 && coffset_l < s2 && s2 - coffset_l < mm && cv == load32(src, coffset_l) {
                    let matched_next = matchlen(s2 + 4, coffset_l + 4) + 4;
                    if matched_next > matched {
                        t = coffset_l;
                        s = s2;
                        matched = matched_next;
                    }
                }
            }
            offset2 = offset1;
            offset1 = s - t;
            let mut l = matched;
            let t_min = (s - mm).max(0);
            (s, _, l) = blk.emit_match(src, next_emit, t_min, (s, t, l), true);
            s += l;
            next_emit = s;
            if s >= s_limit {
                break 'encode;
            }
            if !index_from_search {
                index0 = s - l + 1;
            }
            let mut off = index0 + cur;
            while index0 < s - 1 {
                let cv0 = load64(src, index0);
                let cv1 = cv0 >> 8;
                let h0 = hash_len(cv0, LONG_BITS, LONG_LEN);
                long_table[h0] = PrevEntry {
                    offset: off,
                    prev: long_table[h0].offset,
                };
                table[hash_len(cv1, SHORT_BITS, SHORT_LEN)] = TableEntry {
                    offset: off + 1,
                    val: cv1 as u32,
                };
                index0 += 2;
                off += 2;
            }
            cv = load64(src, s);
            if !can_repeat {
                continue;
            }
            loop {
                let o2 = s - offset2;
                if load32(src, o2) != cv as u32 {
                    break;
                }
                let next_hash_l = hash_len(cv, LONG_BITS, LONG_LEN);
                let next_hash_s = hash_len(cv, SHORT_BITS, SHORT_LEN);
                let l = 4 + matchlen(s + 4, o2 + 4);
                long_table[next_hash_l] = PrevEntry {
                    offset: s + cur,
                    prev: long_table[next_hash_l].offset,
                };
                table[next_hash_s] = TableEntry {
                    offset: s + cur,
                    val: cv as u32,
                };
                blk.emit_repeat2(l);
                s += l;
                next_emit = s;
                std::mem::swap(&mut offset1, &mut offset2);
                if s >= s_limit {
                    break 'encode;
                }
                cv = load64(src, s);
            }
        }
        blk.finish_literals(src, next_emit);
        blk.recent_offsets[0] = offset1 as u32;
        blk.recent_offsets[1] = offset2 as u32;
    }
}
