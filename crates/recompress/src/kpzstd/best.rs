// Port of klauspost/compress zstd/enc_best.go (`bestFastEncoder.Encode`, `EncodeNoHist`),
// 1.18.0 (the same decisions from 1.17.6 to 1.20.3); it follows the Go design closely,
// including its operator precedence and the quirk that `improve` checks the current best
// match's repeat flag, not the candidate's.
//
// Copyright 2019+ Klaus Post. All rights reserved.
// Based on work by Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! SpeedBestCompression: two-deep chains in a long (2^22, 8-byte hash) and a short table
//! (2^18, 4 bytes), candidates scored by an estimate of their bits against the literals
//! they replace, repeat offsets tried around every position.

use super::base::{
    FastBase, MAX_MATCH_LENGTH, PrevEntry, ZSTD_MIN_MATCH, hash_len, load32, load64, match_len,
    rebase_offset, zeroed_table,
};
use super::block::{BlockEnc, Seq, extend_back, ml_code, of_code};
use super::fse::{Table, predefined};
use super::gomath::shannon_entropy_bits;

const LONG_BITS: u32 = 22;
const LONG_SIZE: usize = 1 << LONG_BITS;
const LONG_LEN: u32 = 8;
const SHORT_BITS: u32 = 18;
const SHORT_SIZE: usize = 1 << SHORT_BITS;
const SHORT_LEN: u32 = 4;
/// `maxMatchLen * 8`.
const HIGH_SCORE: i32 = 131074 * 8;

/// Moves both chain tables along when the history buffer is rebased (`resetBase`).
fn rebase_chains(base: &mut FastBase, table: &mut [PrevEntry], long_table: &mut [PrevEntry]) {
    if let Some(r) = base.rebase() {
        let mm = base.max_match_off;
        for e in table.iter_mut().chain(long_table.iter_mut()) {
            if r.0 == i32::MAX || e.offset < r.0 {
                *e = PrevEntry::default();
            } else {
                e.offset = rebase_offset(e.offset, r, mm);
                e.prev = rebase_offset(e.prev, r, mm);
            }
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Match {
    offset: i32,
    s: i32,
    length: i32,
    rep: i32,
    est: i32,
}

impl Match {
    /// `estBits`: the match's bits with the predefined tables, minus the literals it saves.
    fn est_bits(&mut self, bits_per_byte: i32) {
        self.estimate(bits_per_byte, 3, HIGH_SCORE);
    }

    /// 1.15.12's `estBits`: the repeat code is used as it is (no `& 3`), and a match that
    /// saves nothing scores its own `highScore`.
    fn est_bits_15(&mut self, bits_per_byte: i32) {
        self.estimate(bits_per_byte, u32::MAX, HIGH_SCORE_15);
    }

    fn estimate(&mut self, bits_per_byte: i32, rep_mask: u32, high_score: i32) {
        let mlc = ml_code((self.length - ZSTD_MIN_MATCH as i32) as u32);
        let ofc = if self.rep < 0 {
            of_code((self.s - self.offset) as u32 + 3)
        } else {
            of_code(self.rep as u32 & rep_mask)
        };
        let of_tt = predefined(Table::Offsets).symbol_tt[ofc as usize];
        let ml_tt = predefined(Table::MatchLengths).symbol_tt[mlc as usize];
        self.est = of_tt.out_bits.wrapping_add(ml_tt.out_bits) as i32;
        self.est += ((of_tt.delta_nb_bits >> 16).wrapping_add(ml_tt.delta_nb_bits >> 16)) as i32;
        self.est -= (self.length.wrapping_mul(bits_per_byte)) >> 10;
        if self.est > 0 {
            self.length = 0;
            self.est = high_score;
        }
    }
}

pub(crate) struct BestEncoder {
    pub base: FastBase,
    table: Box<[PrevEntry]>,
    long_table: Box<[PrevEntry]>,
}

impl BestEncoder {
    pub fn new(window: i32) -> BestEncoder {
        BestEncoder {
            base: FastBase::new(window),
            table: zeroed_table(SHORT_SIZE),
            long_table: zeroed_table(LONG_SIZE),
        }
    }

    pub fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.base.ensure_hist(src.len());
        self.encode(blk, src);
    }

    pub fn encode(&mut self, blk: &mut BlockEnc, block: &[u8]) {
        const INPUT_MARGIN: i32 = 8 + 4;
        const MIN_NON_LITERAL_BLOCK_SIZE: usize = 16;
        rebase_chains(&mut self.base, &mut self.table, &mut self.long_table);
        let mut s = self.base.add_block(block);
        blk.size = block.len();
        if block.len() > ZSTD_MIN_MATCH as usize {
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
        let bits_per_byte = ((shannon_entropy_bits(block) * 1024) / block.len() as i64) as i32;
        let bits_per_byte = bits_per_byte.max(1024);

        let cur = self.base.cur;
        let mm = self.base.max_match_off;
        let (table, long_table) = (&mut self.table, &mut self.long_table);
        let src = &self.base.hist[..];
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        const K_SEARCH_STRENGTH: i32 = 10;
        let mut next_emit = s;
        let mut offset1 = blk.recent_offsets[0] as i32;
        let mut offset2 = blk.recent_offsets[1] as i32;
        let mut offset3 = blk.recent_offsets[2] as i32;

        'encode: loop {
            let can_repeat = blk.sequences.len() > 2;
            const GOOD_ENOUGH: i32 = 250;
            let mut cv = load64(src, s);
            let next_hash_l = hash_len(cv, LONG_BITS, LONG_LEN);
            let next_hash_s = hash_len(cv, SHORT_BITS, SHORT_LEN);
            let mut candidate_l = long_table[next_hash_l];
            let mut candidate_s = table[next_hash_s];

            let improve = |m: &mut Match, offset: i32, s: i32, first: u32, rep: i32| {
                let (mut s, mut offset) = (s, offset);
                let delta = s - offset;
                if delta >= mm || delta <= 0 || load32(src, offset) != first {
                    return;
                }
                if m.length > 16 {
                    let left = src.len() as i64 - (m.s + m.length) as i64;
                    if left <= 0 {
                        return;
                    }
                    let check_len = m.length - (s - m.s) - 8;
                    if left > 2 && check_len > 4 {
                        let a = load32(src, offset + check_len);
                        let b = load32(src, s + check_len);
                        if a != b {
                            return;
                        }
                    }
                }
                let mut l = 4 + match_len(&src[(s + 4) as usize..], &src[(offset + 4) as usize..]) as i32;
                if m.rep <= 0 {
                    let t_min = (s - mm).max(0);
                    let extended = extend_back(
                        src,
                        next_emit,
                        t_min,
                        (s, offset, l.into()),
                        MAX_MATCH_LENGTH.into(),
                    );
                    (s, offset) = (extended.0, extended.1);
                    l = extended.2 as i32;
                }
                let mut cand = Match {
                    offset,
                    s,
                    length: l,
                    rep,
                    est: 0,
                };
                cand.est_bits(bits_per_byte);
                if m.est >= HIGH_SCORE
                    || cand.est - m.est + ((cand.s - m.s).wrapping_mul(bits_per_byte) >> 10) < 0
                {
                    *m = cand;
                }
            };

            let mut best = Match {
                s,
                est: HIGH_SCORE,
                ..Match::default()
            };
            improve(&mut best, candidate_l.offset - cur, s, cv as u32, -1);
            improve(&mut best, candidate_l.prev - cur, s, cv as u32, -1);
            improve(&mut best, candidate_s.offset - cur, s, cv as u32, -1);
            improve(&mut best, candidate_s.prev - cur, s, cv as u32, -1);

            if can_repeat && best.length < GOOD_ENOUGH {
                if s == next_emit {
                    improve(&mut best, s - offset2, s, cv as u32, 1 | 4);
                    improve(&mut best, s - offset3, s, cv as u32, 2 | 4);
                    if offset1 > 1 {
                        improve(&mut best, s - (offset1 - 1), s, cv as u32, 3 | 4);
                    }
                }
                if best.rep <= 0 {
                    let mut cv32 = (cv >> 8) as u32;
                    let mut spp = s + 1;
                    improve(&mut best, spp - offset1, spp, cv32, 1);
                    improve(&mut best, spp - offset2, spp, cv32, 2);
                    improve(&mut best, spp - offset3, spp, cv32, 3);
                    if best.rep < 0 {
                        cv32 = (cv >> 24) as u32;
                        spp += 2;
                        improve(&mut best, spp - offset1, spp, cv32, 1);
                        improve(&mut best, spp - offset2, spp, cv32, 2);
                        improve(&mut best, spp - offset3, spp, cv32, 3);
                    }
                }
            }
            long_table[next_hash_l] = PrevEntry {
                offset: s + cur,
                prev: candidate_l.offset,
            };
            table[next_hash_s] = PrevEntry {
                offset: s + cur,
                prev: candidate_s.offset,
            };
            let mut index0 = s + 1;

            if best.length < GOOD_ENOUGH {
                if best.length < 4 {
                    s += 1 + ((s - next_emit) >> (K_SEARCH_STRENGTH - 1));
                    if s >= s_limit {
                        break 'encode;
                    }
                    continue;
                }
                candidate_s = table[hash_len(cv >> 8, SHORT_BITS, SHORT_LEN)];
                cv = load64(src, s + 1);
                let cv2 = load64(src, s + 2);
                candidate_l = long_table[hash_len(cv, LONG_BITS, LONG_LEN)];
                let candidate_l2 = long_table[hash_len(cv2, LONG_BITS, LONG_LEN)];
                improve(&mut best, candidate_s.offset - cur, s + 1, cv as u32, -1);
                improve(&mut best, candidate_l.offset - cur, s + 1, cv as u32, -1);
                improve(&mut best, candidate_l.prev - cur, s + 1, cv as u32, -1);
                improve(&mut best, candidate_l2.offset - cur, s + 2, cv2 as u32, -1);
                improve(&mut best, candidate_l2.prev - cur, s + 2, cv2 as u32, -1);

                const SKIP_BEGINNING: i32 = 2;
                if best.s > s - SKIP_BEGINNING {
                    let s_at = best.s + best.length;
                    if s_at < s_limit {
                        let next_hash_l = hash_len(load64(src, s_at), LONG_BITS, LONG_LEN);
                        let candidate_end = long_table[next_hash_l];
                        let off = candidate_end.offset - cur - best.length + SKIP_BEGINNING;
                        if off >= 0 {
                            let at = best.s + SKIP_BEGINNING;
                            improve(&mut best, off, at, load32(src, at), -1);
                            let off = candidate_end.prev - cur - best.length + SKIP_BEGINNING;
                            if off >= 0 {
                                let at = best.s + SKIP_BEGINNING;
                                improve(&mut best, off, at, load32(src, at), -1);
                            }
                        }
                    }
                }
            }

            s = best.s;
            if best.rep > 0 {
                let mut seq = Seq::new(
                    0,
                    (best.length as u32).wrapping_sub(ZSTD_MIN_MATCH),
                    (best.rep & 3) as u32,
                );
                if best.s != next_emit {
                    blk.literals
                        .extend_from_slice(&src[next_emit as usize..best.s as usize]);
                    seq.lit_len = (best.s - next_emit) as u32;
                }
                blk.sequences.push(seq);
                s = best.s + best.length;
                next_emit = s;
                let end = s.min(s_limit + 4);
                let mut off = index0 + cur;
                while index0 < end {
                    let cv0 = load64(src, index0);
                    let h0 = hash_len(cv0, LONG_BITS, LONG_LEN);
                    let h1 = hash_len(cv0, SHORT_BITS, SHORT_LEN);
                    long_table[h0] = PrevEntry {
                        offset: off,
                        prev: long_table[h0].offset,
                    };
                    table[h1] = PrevEntry {
                        offset: off,
                        prev: table[h1].offset,
                    };
                    off += 1;
                    index0 += 1;
                }
                match best.rep {
                    2 | 5 => std::mem::swap(&mut offset1, &mut offset2),
                    3 | 6 => {
                        (offset1, offset2, offset3) = (offset3, offset1, offset2);
                    }
                    7 => {
                        (offset1, offset2, offset3) = (offset1 - 1, offset1, offset2);
                    }
                    _ => {}
                }
                if s >= s_limit {
                    break 'encode;
                }
                continue;
            }

            let t = best.offset;
            (offset1, offset2, offset3) = (s - t, offset1, offset2);
            let l = best.length;
            blk.emit_sequence(src, next_emit, s, t, l);
            s += l;
            next_emit = s;
            let end = s.min(s_limit - 4);
            let mut off = index0 + cur;
            while index0 < end {
                let cv0 = load64(src, index0);
                let h0 = hash_len(cv0, LONG_BITS, LONG_LEN);
                let h1 = hash_len(cv0, SHORT_BITS, SHORT_LEN);
                long_table[h0] = PrevEntry {
                    offset: off,
                    prev: long_table[h0].offset,
                };
                table[h1] = PrevEntry {
                    offset: off,
                    prev: table[h1].offset,
                };
                index0 += 1;
                off += 1;
            }
            if s >= s_limit {
                break 'encode;
            }
        }
        blk.finish_literals(src, next_emit);
        blk.recent_offsets = [offset1 as u32, offset2 as u32, offset3 as u32];
    }
}

/// The best speed as klauspost/compress 1.15.12 wrote it (bookworm's skopeo and podman,
/// whose zstd:chunked default is this speed): a different search from the later one, so a
/// function of its own rather than a switch in [`BestEncoder::encode`]. The tables and the
/// cost estimate are shared.
pub(crate) struct Best15Encoder {
    pub base: FastBase,
    table: Box<[PrevEntry]>,
    long_table: Box<[PrevEntry]>,
}

/// 1.15.12's `highScore`.
const HIGH_SCORE_15: i32 = 25000;

impl Best15Encoder {
    pub fn new(window: i32) -> Best15Encoder {
        Best15Encoder {
            base: FastBase::new(window),
            table: zeroed_table(SHORT_SIZE),
            long_table: zeroed_table(LONG_SIZE),
        }
    }

    pub fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.base.ensure_hist(src.len());
        self.encode(blk, src);
    }

    pub fn encode(&mut self, blk: &mut BlockEnc, block: &[u8]) {
        const INPUT_MARGIN: i32 = 8 + 4;
        const MIN_NON_LITERAL_BLOCK_SIZE: usize = 16;
        rebase_chains(&mut self.base, &mut self.table, &mut self.long_table);
        let mut s = self.base.add_block(block);
        if blk.literal_only(block, MIN_NON_LITERAL_BLOCK_SIZE) {
            return;
        }
        let bits_per_byte = ((shannon_entropy_bits(block) * 1024) / block.len() as i64) as i32;
        let bits_per_byte = bits_per_byte.max(1024);
        let cur = self.base.cur;
        let mm = self.base.max_match_off;
        let (table, long_table) = (&mut self.table, &mut self.long_table);
        let src = &self.base.hist[..];
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        const K_SEARCH_STRENGTH: i32 = 10;
        let mut next_emit = s;
        let mut cv = load64(src, s);
        let mut offset1 = blk.recent_offsets[0] as i32;
        let mut offset2 = blk.recent_offsets[1] as i32;
        let mut offset3 = blk.recent_offsets[2] as i32;
        let matchlen = |s: i32, t: i32| match_len(&src[s as usize..], &src[t as usize..]) as i32;
        let best_of = |a: Match, b: Match| {
            if a.est + ((a.s - b.s).wrapping_mul(bits_per_byte) >> 10)
                < b.est + ((b.s - a.s).wrapping_mul(bits_per_byte) >> 10)
            {
                a
            } else {
                b
            }
        };
        let match_at = |offset: i32, s: i32, first: u32, rep: i32| {
            if s - offset >= mm || load32(src, offset) != first {
                return Match {
                    s,
                    est: HIGH_SCORE_15,
                    ..Match::default()
                };
            }
            let mut m = Match {
                offset,
                s,
                length: 4 + matchlen(s + 4, offset + 4),
                rep,
                est: 0,
            };
            m.est_bits_15(bits_per_byte);
            m
        };

        'encode: loop {
            let can_repeat = blk.sequences.len() > 2;
            const GOOD_ENOUGH: i32 = 100;
            let next_hash_l = hash_len(cv, LONG_BITS, LONG_LEN);
            let next_hash_s = hash_len(cv, SHORT_BITS, SHORT_LEN);
            let mut candidate_l = long_table[next_hash_l];
            let mut candidate_s = table[next_hash_s];

            let mut best = best_of(
                match_at(candidate_l.offset - cur, s, cv as u32, -1),
                match_at(candidate_l.prev - cur, s, cv as u32, -1),
            );
            best = best_of(best, match_at(candidate_s.offset - cur, s, cv as u32, -1));
            best = best_of(best, match_at(candidate_s.prev - cur, s, cv as u32, -1));
            if can_repeat && best.length < GOOD_ENOUGH {
                let mut cv32 = (cv >> 8) as u32;
                let mut spp = s + 1;
                best = best_of(best, match_at(spp - offset1, spp, cv32, 1));
                best = best_of(best, match_at(spp - offset2, spp, cv32, 2));
                best = best_of(best, match_at(spp - offset3, spp, cv32, 3));
                if best.length > 0 {
                    cv32 = (cv >> 24) as u32;
                    spp += 2;
                    best = best_of(best, match_at(spp - offset1, spp, cv32, 1));
                    best = best_of(best, match_at(spp - offset2, spp, cv32, 2));
                    best = best_of(best, match_at(spp - offset3, spp, cv32, 3));
                }
            }
            long_table[next_hash_l] = PrevEntry {
                offset: s + cur,
                prev: candidate_l.offset,
            };
            table[next_hash_s] = PrevEntry {
                offset: s + cur,
                prev: candidate_s.offset,
            };

            if best.length < GOOD_ENOUGH {
                if best.length < 4 {
                    s += 1 + ((s - next_emit) >> (K_SEARCH_STRENGTH - 1));
                    if s >= s_limit {
                        break 'encode;
                    }
                    cv = load64(src, s);
                    continue;
                }
                s += 1;
                candidate_s = table[hash_len(cv >> 8, SHORT_BITS, SHORT_LEN)];
                cv = load64(src, s);
                let cv2 = load64(src, s + 1);
                candidate_l = long_table[hash_len(cv, LONG_BITS, LONG_LEN)];
                let candidate_l2 = long_table[hash_len(cv2, LONG_BITS, LONG_LEN)];
                best = best_of(best, match_at(candidate_s.offset - cur, s, cv as u32, -1));
                best = best_of(best, match_at(candidate_l.offset - cur, s, cv as u32, -1));
                best = best_of(best, match_at(candidate_l.prev - cur, s, cv as u32, -1));
                best = best_of(best, match_at(candidate_l2.offset - cur, s + 1, cv2 as u32, -1));
                best = best_of(best, match_at(candidate_l2.prev - cur, s + 1, cv2 as u32, -1));
                let s_at = best.s + best.length;
                if s_at < s_limit {
                    let candidate_end = long_table[hash_len(load64(src, s_at), LONG_BITS, LONG_LEN)];
                    let pos = candidate_end.offset - cur - best.length;
                    if pos >= 0 {
                        let mut best_end = best_of(best, match_at(pos, best.s, load32(src, best.s), -1));
                        let pos = candidate_end.prev - cur - best.length;
                        if pos >= 0 {
                            best_end = best_of(best_end, match_at(pos, best.s, load32(src, best.s), -1));
                        }
                        best = best_end;
                    }
                }
            }

            if best.rep > 0 {
                s = best.s;
                let t_min = (s - mm).max(0);
                blk.emit_repeat(
                    src,
                    next_emit,
                    t_min,
                    (
                        best.s,
                        best.offset,
                        (best.length as u32).wrapping_sub(ZSTD_MIN_MATCH),
                    ),
                    MAX_MATCH_LENGTH as u32 - ZSTD_MIN_MATCH - 1,
                    best.rep as u32,
                );
                let mut index0 = s;
                s = best.s + best.length;
                next_emit = s;
                if s >= s_limit {
                    break 'encode;
                }
                let mut off = index0 + cur;
                while index0 < s - 1 {
                    let cv0 = load64(src, index0);
                    let h0 = hash_len(cv0, LONG_BITS, LONG_LEN);
                    let h1 = hash_len(cv0, SHORT_BITS, SHORT_LEN);
                    long_table[h0] = PrevEntry {
                        offset: off,
                        prev: long_table[h0].offset,
                    };
                    table[h1] = PrevEntry {
                        offset: off,
                        prev: table[h1].offset,
                    };
                    off += 1;
                    index0 += 1;
                }
                match best.rep {
                    2 => std::mem::swap(&mut offset1, &mut offset2),
                    3 => (offset1, offset2, offset3) = (offset3, offset1, offset2),
                    _ => {}
                }
                cv = load64(src, s);
                continue;
            }

            s = best.s;
            let t = best.offset;
            (offset1, offset2, offset3) = (s - t, offset1, offset2);
            let mut l = best.length;
            let t_min = (s - mm).max(0);
            (s, _, l) = blk.emit_match(src, next_emit, t_min, (s, t, l), true);
            s += l;
            next_emit = s;
            if s >= s_limit {
                break 'encode;
            }
            let mut index0 = s - l + 1;
            while index0 < s - 1 {
                let cv0 = load64(src, index0);
                let h0 = hash_len(cv0, LONG_BITS, LONG_LEN);
                let h1 = hash_len(cv0, SHORT_BITS, SHORT_LEN);
                let off = index0 + cur;
                long_table[h0] = PrevEntry {
                    offset: off,
                    prev: long_table[h0].offset,
                };
                table[h1] = PrevEntry {
                    offset: off,
                    prev: table[h1].offset,
                };
                index0 += 1;
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
                let next_hash_s = hash_len(cv, SHORT_BITS, SHORT_LEN);
                let next_hash_l = hash_len(cv, LONG_BITS, LONG_LEN);
                let l = 4 + matchlen(s + 4, o2 + 4);
                long_table[next_hash_l] = PrevEntry {
                    offset: s + cur,
                    prev: long_table[next_hash_l].offset,
                };
                table[next_hash_s] = PrevEntry {
                    offset: s + cur,
                    prev: table[next_hash_s].offset,
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
        blk.recent_offsets = [offset1 as u32, offset2 as u32, offset3 as u32];
    }
}
