// Port of klauspost/compress zstd/enc_dfast.go (`doubleFastEncoder.Encode`,
// `EncodeNoHist`), 1.18.0 (the same decisions in 1.15.12 and 1.20.3); it follows the Go
// design closely, quirks included.
//
// Copyright 2019+ Klaus Post. All rights reserved.
// Based on work by Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! SpeedDefault: a long table (2^17 entries, 8-byte hash) and a short one (2^15, 5 bytes).

use super::base::{
    FastBase, MAX_MATCH_LENGTH, TableEntry, ZSTD_MIN_MATCH, hash_len, load32, load64, match_len,
    rebase_offset, zeroed_table,
};
use super::block::BlockEnc;

const LONG_BITS: u32 = 17;
const LONG_SIZE: usize = 1 << LONG_BITS;
const LONG_LEN: u32 = 8;
const SHORT_BITS: u32 = 15;
const SHORT_SIZE: usize = 1 << SHORT_BITS;
const SHORT_LEN: u32 = 5;

pub(crate) struct DoubleFastEncoder {
    pub base: FastBase,
    table: Box<[TableEntry]>,
    long_table: Box<[TableEntry]>,
}

impl DoubleFastEncoder {
    pub fn new(window: i32) -> DoubleFastEncoder {
        DoubleFastEncoder {
            base: FastBase::new(window),
            table: zeroed_table(SHORT_SIZE),
            long_table: zeroed_table(LONG_SIZE),
        }
    }

    pub fn encode(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.encode_inner(blk, src, true);
    }

    pub fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.encode_inner(blk, src, false);
    }

    /// `Encode` (with history) and `EncodeNoHist` share this body; where they differ the
    /// code says so (`hist`).
    fn encode_inner(&mut self, blk: &mut BlockEnc, input: &[u8], hist: bool) {
        const INPUT_MARGIN: i32 = 8 + 2;
        const MIN_NON_LITERAL_BLOCK_SIZE: usize = 16;
        let mut s;
        if hist {
            if let Some(r) = self.base.rebase() {
                let mm = self.base.max_match_off;
                for e in self.table.iter_mut().chain(self.long_table.iter_mut()) {
                    if r.0 == i32::MAX {
                        *e = TableEntry::default();
                    } else {
                        e.offset = rebase_offset(e.offset, r, mm);
                    }
                }
            }
            s = self.base.add_block(input);
        } else {
            if self.base.rebase_no_hist() {
                self.table.fill(TableEntry::default());
                self.long_table.fill(TableEntry::default());
            }
            s = 0;
        }
        if blk.literal_only(input, MIN_NON_LITERAL_BLOCK_SIZE) {
            return;
        }
        let cur = self.base.cur;
        let mm = self.base.max_match_off;
        let (table, long_table) = (&mut self.table, &mut self.long_table);
        let src: &[u8] = if hist { &self.base.hist[..] } else { input };
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        const STEP_SIZE: i32 = 1;
        const K_SEARCH_STRENGTH: i32 = 8;
        let mut next_emit = s;
        let mut cv = load64(src, s);
        let mut offset1 = blk.recent_offsets[0] as i32;
        let mut offset2 = blk.recent_offsets[1] as i32;
        let matchlen = |s: i32, t: i32| match_len(&src[s as usize..], &src[t as usize..]) as i32;
        // EncodeNoHist's offset-2 loop stores the short entry under a stale hash (Go's
        // `hashLen(cv1>>8, …)` after cv1 was shifted already); kept as Go has it.
        let mut cv1_stale;

        'encode: loop {
            let t;
            let can_repeat = blk.sequences.len() > 2;
            loop {
                let next_hash_l = hash_len(cv, LONG_BITS, LONG_LEN);
                let next_hash_s = hash_len(cv, SHORT_BITS, SHORT_LEN);
                let candidate_l = long_table[next_hash_l];
                let candidate_s = table[next_hash_s];
                const REP_OFF: i32 = 1;
                let rep_index = s - offset1 + REP_OFF;
                let entry = TableEntry {
                    offset: s + cur,
                    val: cv as u32,
                };
                long_table[next_hash_l] = entry;
                table[next_hash_s] = entry;
                let repeat_now = if hist { can_repeat } else { blk.sequences.len() > 2 };
                if repeat_now
                    && (!hist || rep_index >= 0)
                    && load32(src, rep_index) == (cv >> (REP_OFF * 8)) as u32
                {
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
                        if hist {
                            MAX_MATCH_LENGTH as u32 - ZSTD_MIN_MATCH - 1
                        } else {
                            u32::MAX
                        },
                        1,
                    );
                    s += length + REP_OFF;
                    next_emit = s;
                    if s >= s_limit {
                        break 'encode;
                    }
                    cv = load64(src, s);
                    continue;
                }
                let coffset_l = s - (candidate_l.offset - cur);
                let coffset_s = s - (candidate_s.offset - cur);
                if coffset_l < mm && cv as u32 == candidate_l.val {
                    t = candidate_l.offset - cur;
                    break;
                }
                if coffset_s < mm && cv as u32 == candidate_s.val {
                    const CHECK_AT: i32 = 1;
                    let cv_next = load64(src, s + CHECK_AT);
                    let next_hash_l = hash_len(cv_next, LONG_BITS, LONG_LEN);
                    let candidate_l = long_table[next_hash_l];
                    let coffset_l = s - (candidate_l.offset - cur) + CHECK_AT;
                    long_table[next_hash_l] = TableEntry {
                        offset: s + CHECK_AT + cur,
                        val: cv_next as u32,
                    };
                    if coffset_l < mm && cv_next as u32 == candidate_l.val {
                        t = candidate_l.offset - cur;
                        s += CHECK_AT;
                        break;
                    }
                    t = candidate_s.offset - cur;
                    break;
                }
                s += STEP_SIZE + ((s - next_emit) >> (K_SEARCH_STRENGTH - 1));
                if s >= s_limit {
                    break 'encode;
                }
                cv = load64(src, s);
            }
            offset2 = offset1;
            offset1 = s - t;
            let mut l = matchlen(s + 4, t + 4) + 4;
            let t_min = (s - mm).max(0);
            (s, _, l) = blk.emit_match(src, next_emit, t_min, (s, t, l), hist);
            s += l;
            next_emit = s;
            if s >= s_limit {
                break 'encode;
            }

            let index0 = s - l + 1;
            let index1 = s - 2;
            let mut cv0 = load64(src, index0);
            let mut cv1 = load64(src, index1);
            let mut te0 = TableEntry {
                offset: index0 + cur,
                val: cv0 as u32,
            };
            let mut te1 = TableEntry {
                offset: index1 + cur,
                val: cv1 as u32,
            };
            long_table[hash_len(cv0, LONG_BITS, LONG_LEN)] = te0;
            long_table[hash_len(cv1, LONG_BITS, LONG_LEN)] = te1;
            cv0 >>= 8;
            cv1 >>= 8;
            te0.offset += 1;
            te1.offset += 1;
            te0.val = cv0 as u32;
            te1.val = cv1 as u32;
            table[hash_len(cv0, SHORT_BITS, SHORT_LEN)] = te0;
            table[hash_len(cv1, SHORT_BITS, SHORT_LEN)] = te1;
            cv1_stale = cv1;

            cv = load64(src, s);
            let go_on = if hist { can_repeat } else { blk.sequences.len() > 2 };
            if !go_on {
                continue;
            }
            loop {
                let o2 = s - offset2;
                if load32(src, o2) != cv as u32 {
                    break;
                }
                let next_hash_s = if hist {
                    hash_len(cv, SHORT_BITS, SHORT_LEN)
                } else {
                    hash_len(cv1_stale >> 8, SHORT_BITS, SHORT_LEN)
                };
                let next_hash_l = hash_len(cv, LONG_BITS, LONG_LEN);
                let l = 4 + matchlen(s + 4, o2 + 4);
                let entry = TableEntry {
                    offset: s + cur,
                    val: cv as u32,
                };
                long_table[next_hash_l] = entry;
                table[next_hash_s] = entry;
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
        if hist {
            blk.recent_offsets[0] = offset1 as u32;
            blk.recent_offsets[1] = offset2 as u32;
        } else if self.base.cur < self.base.buffer_reset {
            self.base.cur += input.len() as i32;
        }
    }
}
