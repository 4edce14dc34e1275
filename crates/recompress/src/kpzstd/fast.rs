// Port of klauspost/compress zstd/enc_fast.go (`fastEncoder.Encode`, `EncodeNoHist`),
// 1.18.0 (the same decisions in 1.15.12 and 1.20.3); it follows the Go design closely.
//
// Copyright 2019+ Klaus Post. All rights reserved.
// Based on work by Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! SpeedFastest: one table of 2^15 entries hashed on 6 bytes, two candidates per step.

use super::base::{
    FastBase, MAX_MATCH_LENGTH, TableEntry, ZSTD_MIN_MATCH, hash_len, load32, load64, match_len,
    rebase_offset, zeroed_table,
};
use super::block::BlockEnc;

pub(crate) const TABLE_BITS: u32 = 15;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const TABLE_FAST_HASH_LEN: u32 = 6;

pub(crate) struct FastEncoder {
    pub base: FastBase,
    table: Box<[TableEntry]>,
}

impl FastEncoder {
    pub fn new(window: i32) -> FastEncoder {
        FastEncoder {
            base: FastBase::new(window),
            table: zeroed_table(TABLE_SIZE),
        }
    }

    /// One block that continues the frame's history.
    pub fn encode(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.encode_block::<true>(blk, src);
    }

    /// A single-block frame: `src` alone, no history.
    pub fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.encode_block::<false>(blk, src);
    }

    /// Go's `Encode` (`HIST`) and `EncodeNoHist`, which differ in a few decisions, marked
    /// where they are; monomorphised, each is the loop Go runs.
    fn encode_block<const HIST: bool>(&mut self, blk: &mut BlockEnc, input: &[u8]) {
        const INPUT_MARGIN: i32 = 8;
        const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN as usize;
        let mut s = 0i32;
        if HIST {
            if let Some(r) = self.base.rebase() {
                let mm = self.base.max_match_off;
                for e in self.table.iter_mut() {
                    if r.0 == i32::MAX {
                        *e = TableEntry::default();
                    } else {
                        e.offset = rebase_offset(e.offset, r, mm);
                    }
                }
            }
            s = self.base.add_block(input);
        } else if self.base.rebase_no_hist() {
            self.table.fill(TableEntry::default());
        }
        if blk.literal_only(input, MIN_NON_LITERAL_BLOCK_SIZE) {
            return;
        }
        let cur = self.base.cur;
        let mm = self.base.max_match_off;
        let table = &mut self.table;
        let src: &[u8] = if HIST { &self.base.hist[..] } else { input };
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        const STEP_SIZE: i32 = 2;
        const K_SEARCH_STRENGTH: i32 = 6;
        let mut next_emit = s;
        let mut cv = load64(src, s);
        let mut offset1 = blk.recent_offsets[0] as i32;
        // EncodeNoHist loads offset 2 as well; it is always overwritten before use there.
        let mut offset2 = blk.recent_offsets[1] as i32;
        let matchlen = |s: i32, t: i32| match_len(&src[s as usize..], &src[t as usize..]) as i32;

        'encode: loop {
            let t;
            // Encode decides once per match whether repeats may be tried; EncodeNoHist asks
            // again at every try.
            let can_repeat_here = blk.sequences.len() > 2;
            let can_repeat = |blk: &BlockEnc| {
                if HIST {
                    can_repeat_here
                } else {
                    blk.sequences.len() > 2
                }
            };
            loop {
                let next_hash = hash_len(cv, TABLE_BITS, TABLE_FAST_HASH_LEN);
                let next_hash2 = hash_len(cv >> 8, TABLE_BITS, TABLE_FAST_HASH_LEN);
                let candidate = table[next_hash];
                let candidate2 = table[next_hash2];
                let rep_index = s - offset1 + 2;
                table[next_hash] = TableEntry {
                    offset: s + cur,
                    val: cv as u32,
                };
                table[next_hash2] = TableEntry {
                    offset: s + cur + 1,
                    val: (cv >> 8) as u32,
                };
                if can_repeat(blk) && (!HIST || rep_index >= 0) && load32(src, rep_index) == (cv >> 16) as u32
                {
                    let length = 4 + matchlen(s + 6, rep_index + 4);
                    let s_min = (s - mm).max(0);
                    blk.emit_repeat(
                        src,
                        next_emit,
                        s_min,
                        (s + 2, rep_index, (length as u32).wrapping_sub(ZSTD_MIN_MATCH)),
                        if HIST {
                            MAX_MATCH_LENGTH as u32 - ZSTD_MIN_MATCH
                        } else {
                            u32::MAX
                        },
                        1,
                    );
                    s += length + 2;
                    next_emit = s;
                    if s >= s_limit {
                        break 'encode;
                    }
                    cv = load64(src, s);
                    continue;
                }
                let coffset0 = s - (candidate.offset - cur);
                let coffset1 = s - (candidate2.offset - cur) + 1;
                if coffset0 < mm && cv as u32 == candidate.val {
                    t = candidate.offset - cur;
                    break;
                }
                if coffset1 < mm && (cv >> 8) as u32 == candidate2.val {
                    t = candidate2.offset - cur;
                    s += 1;
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
            (s, _, l) = blk.emit_match(src, next_emit, t_min, (s, t, l), HIST);
            s += l;
            next_emit = s;
            if s >= s_limit {
                break 'encode;
            }
            cv = load64(src, s);
            let o2 = s - offset2;
            if can_repeat(blk) && load32(src, o2) == cv as u32 {
                let l = 4 + matchlen(s + 4, o2 + 4);
                let next_hash = hash_len(cv, TABLE_BITS, TABLE_FAST_HASH_LEN);
                table[next_hash] = TableEntry {
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
        if HIST {
            blk.recent_offsets[0] = offset1 as u32;
            blk.recent_offsets[1] = offset2 as u32;
        } else if self.base.cur < self.base.buffer_reset {
            self.base.cur += src.len() as i32;
        }
    }
}
