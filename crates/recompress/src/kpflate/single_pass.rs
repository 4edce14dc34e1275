// Port of klauspost/compress v1.15.12 `flate/fast_encoder.go` (the `fastEnc`
// interface and its construction by level); it follows the Go design closely.
//
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be
// found in the LICENSE file in this directory.

//! The single-pass encoders of levels 1–6, chosen by level.

#[cfg(test)]
use super::fast::FastGen;
use super::level1::FastEncL1;
use super::level2::FastEncL2;
use super::level3::FastEncL3;
use super::level4::FastEncL4;
use super::level56::{FastEncL5, FastEncL6};
use super::token::Tokens;
use super::variant::Variant;

/// One of the six single-pass encoders.
pub(crate) enum FastEnc {
    L1(Box<FastEncL1>),
    L2(Box<FastEncL2>),
    L3(Box<FastEncL3>),
    L4(Box<FastEncL4>),
    L5(Box<FastEncL5>),
    L6(Box<FastEncL6>),
}

impl FastEnc {
    pub fn new(level: i32, variant: Variant) -> FastEnc {
        match level {
            1 => FastEnc::L1(FastEncL1::new()),
            2 => FastEnc::L2(FastEncL2::new()),
            3 => FastEnc::L3(FastEncL3::new()),
            4 => FastEnc::L4(FastEncL4::new(variant.level4_distance_as_position())),
            5 => FastEnc::L5(FastEncL5::new()),
            6 => FastEnc::L6(FastEncL6::new()),
            _ => unreachable!("fast encoders cover levels 1-6"),
        }
    }

    /// Tokenises `src`, which continues the history.
    pub fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        match self {
            FastEnc::L1(e) => e.encode(dst, src),
            FastEnc::L2(e) => e.encode(dst, src),
            FastEnc::L3(e) => e.encode(dst, src),
            FastEnc::L4(e) => e.encode(dst, src),
            FastEnc::L5(e) => e.encode(dst, src),
            FastEnc::L6(e) => e.encode(dst, src),
        }
    }

    /// Moves the table base, as a long stream or many resets would.
    #[cfg(test)]
    pub(crate) fn force_cur(&mut self, cur: i32) {
        self.hist_mut().cur = cur;
    }

    #[cfg(test)]
    fn hist_mut(&mut self) -> &mut FastGen {
        match self {
            FastEnc::L1(e) => &mut e.hist,
            FastEnc::L2(e) => &mut e.hist,
            FastEnc::L3(e) => &mut e.hist,
            FastEnc::L4(e) => &mut e.hist,
            FastEnc::L5(e) => &mut e.hist,
            FastEnc::L6(e) => &mut e.hist,
        }
    }

    pub fn reset(&mut self) {
        match self {
            FastEnc::L1(e) => e.hist.reset(),
            FastEnc::L2(e) => e.hist.reset(),
            FastEnc::L3(e) => e.hist.reset(),
            FastEnc::L4(e) => e.hist.reset(),
            FastEnc::L5(e) => e.hist.reset(),
            FastEnc::L6(e) => e.hist.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::tables::MAX_STORE_BLOCK_SIZE;
    use crate::kpflate::fast::BUFFER_RESET;

    /// Text-like bytes with repeats near and beyond the 32 KiB window.
    fn sample(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 == 0 && v.len() > 40_000 {
                let back = 1 + (x >> 8) as usize % 40_000;
                let len = 4 + (x >> 32) as usize % 300;
                for _ in 0..len {
                    v.push(v[v.len() - back]);
                }
            } else {
                v.extend_from_slice(&(x as u32 % 1000).to_le_bytes()[..2]);
                v.push(b" etaoinshr"[(x >> 40) as usize % 10]);
            }
        }
        v.truncate(n);
        v
    }

    /// Tokens of `data` in 64 KiB − 1 windows, with a history reset halfway.
    fn tokens(enc: &mut FastEnc, data: &[u8]) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        let mut t = Tokens::new();
        let (a, b) = data.split_at(data.len() / 2);
        for part in [a, b] {
            for w in part.chunks(MAX_STORE_BLOCK_SIZE) {
                t.reset();
                enc.encode(&mut t, w);
                out.push(t.slice().to_vec());
            }
            enc.reset();
        }
        out
    }

    /// Rebasing `cur` (after ~2 GiB of one stream, or after many resets of
    /// a pooled encoder) must not change any token: only entries out of
    /// reach are dropped.
    #[test]
    fn cur_rebase_keeps_tokens() {
        let data = sample(1_200_000, 7);
        for level in 1..=6 {
            let want = tokens(&mut FastEnc::new(level, Variant::Kp1_15), &data);
            // Rebased mid-stream with history present.
            let mut enc = FastEnc::new(level, Variant::Kp1_15);
            enc.force_cur(BUFFER_RESET - 100_000);
            assert!(
                want == tokens(&mut enc, &data),
                "level {level}: rebase with history"
            );
            // Rebased right after a reset, with an empty history.
            let mut enc = FastEnc::new(level, Variant::Kp1_15);
            // The first half slides once (+294907) and the reset adds its
            // 32 KiB + history, crossing BUFFER_RESET with an empty history.
            enc.force_cur(BUFFER_RESET - 400_000);
            assert!(
                want == tokens(&mut enc, &data),
                "level {level}: rebase after reset"
            );
        }
    }
}
