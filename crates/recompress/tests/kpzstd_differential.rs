//! Differential tests of `recompress::kpzstd` against the Go code it ports: the
//! zstd encoder of klauspost/compress 1.15.12 (Debian bookworm, the system Go), 1.18.0
//! (trixie) and 1.20.3 (sid), both with Go 1.27 (scripts/go-refs.sh).
//!
//! The reference (`tests/go/kpzstd-ref`) answers many frames per process. Inputs are cut
//! into segments that Go writes with `Write`, `Write` + `Flush` or `ReadFrom`, the calls
//! that decide where blocks end; the Rust model gets the same cut points. Writers are
//! sometimes reused with `Reset`, as containers/storage reuses one per zstd:chunked layer.
//!
//! `BOOSTER_DIFF_CASES` sets the inputs per speed and version (default 12 here);
//! `BOOSTER_DIFF_SEED` changes them.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::diff::{Rng, assert_same, input, put_bytes, put_u32, run_go, seed, tar};
use common::goref::Reference;
use recompress::kpzstd::{FrameEncoder, Speed, Variant};

fn cases() -> usize {
    std::env::var("BOOSTER_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn variant(r: Reference) -> Variant {
    match r {
        Reference::Bookworm => Variant::Kp1_15,
        Reference::Kp1_18 => Variant::Kp1_18,
        _ => Variant::Kp1_20,
    }
}

/// How Go gets a segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Write = 0,
    WriteFlush = 1,
    ReadFrom = 2,
}

struct Case {
    name: String,
    /// The zstd level handed to `EncoderLevelFromZstd`, 0 for `NewWriter` defaults.
    level: i32,
    speed: Speed,
    reuse: bool,
    segs: Vec<(Vec<u8>, Op)>,
}

impl Case {
    fn request(&self) -> Vec<u8> {
        let mut r = Vec::new();
        put_u32(&mut r, self.level as u32);
        put_u32(&mut r, self.reuse as u32);
        put_u32(&mut r, self.segs.len() as u32);
        for (seg, op) in &self.segs {
            put_bytes(&mut r, seg);
            put_u32(&mut r, *op as u32);
        }
        r
    }

    fn input(&self) -> Vec<u8> {
        self.segs.iter().flat_map(|(s, _)| s.iter().copied()).collect()
    }

    /// Where the writer's calls cut blocks short: before a `ReadFrom`, after a `Flush`.
    fn cuts(&self) -> Vec<u64> {
        let mut cuts = Vec::new();
        let mut pos = 0u64;
        for (seg, op) in &self.segs {
            if *op == Op::ReadFrom {
                cuts.push(pos);
            }
            pos += seg.len() as u64;
            if *op == Op::WriteFlush {
                cuts.push(pos);
            }
        }
        cuts.dedup();
        cuts
    }
}

/// Sizes around the block sizes (64 and 128 KiB), tiny frames, and multi-block streams.
fn zsize(rng: &mut Rng) -> usize {
    const EDGES: &[usize] = &[
        0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 255, 256, 1023, 1024, 1025, 65535, 65536, 65537, 131071,
        131072, 131073, 262144,
    ];
    match rng.below(8) {
        0..=2 => EDGES[rng.below(EDGES.len())],
        3 => rng.range(0, 2000),
        4..=5 => rng.range(0, 300_000),
        _ => rng.range(300_000, 1_200_000),
    }
}

fn case(rng: &mut Rng, level: i32, speed: Speed, i: usize, tar: &[u8]) -> Case {
    let n = zsize(rng);
    let (kind, data) = input(rng, n, tar);
    let mut segs = Vec::new();
    let mut rest = &data[..];
    let pattern = rng.below(6);
    if pattern == 0 && rest.len() > 8 {
        // containers/image compressing an uncompressed layer: Write(8) + ReadFrom(rest).
        segs.push((rest[..8].to_vec(), Op::Write));
        segs.push((rest[8..].to_vec(), Op::ReadFrom));
    } else {
        let cuts = if pattern <= 2 { 0 } else { rng.range(1, 4) };
        for _ in 0..cuts {
            let at = rng.below(rest.len() + 1);
            let op = [Op::Write, Op::WriteFlush, Op::ReadFrom][rng.below(3)];
            segs.push((rest[..at].to_vec(), op));
            rest = &rest[at..];
        }
        let op = if rng.chance(20) { Op::WriteFlush } else { Op::Write };
        segs.push((rest.to_vec(), op));
    }
    Case {
        name: format!("level {level} {speed:?} case {i} {kind} len={n} pattern={pattern}"),
        level,
        speed,
        reuse: rng.chance(30),
        segs,
    }
}

fn check(reference: Reference, levels: &[i32], salt: u64) {
    let tar = tar();
    let mut rng = Rng(seed() ^ salt);
    let mut all = Vec::new();
    for &level in levels {
        let speed = if level == 0 {
            Speed::Default
        } else {
            Speed::from_zstd_level(level)
        };
        for i in 0..cases() {
            all.push(case(&mut rng, level, speed, i, tar));
        }
    }
    let all = Arc::new(all);
    let requests = all.iter().map(Case::request).collect();
    let v = variant(reference);
    let mut pooled: HashMap<i32, FrameEncoder> = HashMap::new();
    run_go("kpzstd-ref", reference, requests, |i, go| {
        let case = &all[i];
        let cuts = case.cuts();
        // As the reference: Reset the level's last writer, or make (and keep) a new one.
        let enc = match pooled.get_mut(&case.level) {
            Some(e) if case.reuse => {
                e.reset(&cuts);
                e
            }
            _ => {
                let e = FrameEncoder::new(case.speed, v, &cuts);
                pooled.insert(case.level, e);
                pooled.get_mut(&case.level).expect("just inserted")
            }
        };
        let mut rust = Vec::new();
        let mut wrng = Rng(i as u64);
        let input = case.input();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = match wrng.below(3) {
                0 => rest.len(),
                1 => wrng.range(1, 100),
                _ => wrng.range(1, 200_000),
            }
            .min(rest.len());
            enc.write(&rest[..n], &mut rust);
            rest = &rest[n..];
        }
        enc.finish(&mut rust);
        assert_same(&format!("{reference:?} {}", case.name), &input, &go, &rust);
    });
}

#[test]
fn fastest_and_default_1_15_match_go() {
    check(Reference::Bookworm, &[0, 1, 3], 0x2115);
}

#[test]
fn fastest_and_default_1_18_match_go() {
    check(Reference::Kp1_18, &[0, 1, 3], 0x2118);
}

#[test]
fn fastest_and_default_1_20_match_go() {
    check(Reference::Kp1_20, &[0, 1, 3], 0x2120);
}

#[test]
fn better_and_best_1_15_match_go() {
    check(Reference::Bookworm, &[7, 10, 19], 0x3115);
}

#[test]
fn better_and_best_1_18_match_go() {
    check(Reference::Kp1_18, &[7, 10, 19], 0x3118);
}

#[test]
fn better_and_best_1_20_match_go() {
    check(Reference::Kp1_20, &[7, 10, 19], 0x3120);
}
