//! Differential tests of `recompress::kpflate` against the Go code it
//! ports: klauspost/compress 1.15.12 `flate` and klauspost/pgzip 1.2.5, as
//! Debian packages them (`golang-github-klauspost-compress-dev`,
//! `golang-github-klauspost-pgzip-dev`).
//!
//! The Go references (`tests/go/kpflate-ref`, `tests/go/pgzip-ref`) are built
//! once per run with `GO111MODULE=off GOPATH=/usr/share/gocode go build`
//! (override the GOPATH with `BOOSTER_GOPATH`) and answer many cases per
//! process over a length-prefixed protocol on stdin/stdout, fed by a writer
//! thread so Go and Rust work at the same time.
//!
//! `BOOSTER_DIFF_CASES` sets the number of inputs per level and per pgzip
//! block size (default 30, which keeps this file under a minute in CI);
//! `bench/kp-sweep.sh` runs the long sweep. `BOOSTER_DIFF_SEED` changes the
//! inputs; `BOOSTER_DIFF_TAR` names a tar to slice inputs from (by default
//! one is made from the Go sources of klauspost/compress when `tar` exists).
//! A mismatch leaves the input and both outputs in `CARGO_TARGET_TMPDIR`.

mod common;

use common::diff::{Rng, assert_same, cases, input, put_bytes, put_u32, run_go, seed, size, tar, text};
use common::goref::Reference;
use recompress::kpflate::{
    Encoder, PgzipEncoder, StatelessWriter, Variant, pgzip_block, pgzip_block_variant, pgzip_header,
    stateless_deflate,
};
use std::collections::HashMap;
use std::sync::Arc;

// ---------------------------------------------------------------- inputs

/// Inputs per level for a reference: `BOOSTER_DIFF_CASES` when set, else 30 for
/// the bookworm versions and 8 for each newer one (CI's share; the long sweep
/// sets the variable).
fn cases_for(reference: Reference) -> usize {
    match (reference, std::env::var_os("BOOSTER_DIFF_CASES")) {
        (Reference::Bookworm, _) | (_, Some(_)) => cases(),
        _ => 8,
    }
}

// ---------------------------------------------------------------- flate

/// One flate case: segments, each followed by an optional Flush.
struct FlateCase {
    name: String,
    level: i32,
    dict: Vec<u8>,
    /// Go's write size (0: one Write per segment).
    go_chunk: usize,
    segs: Vec<(Vec<u8>, bool)>,
}

impl FlateCase {
    fn request(&self) -> Vec<u8> {
        let mut r = Vec::new();
        put_u32(&mut r, self.level as u32);
        put_bytes(&mut r, &self.dict);
        put_u32(&mut r, self.go_chunk as u32);
        put_u32(&mut r, self.segs.len() as u32);
        for (seg, flush) in &self.segs {
            put_bytes(&mut r, seg);
            put_u32(&mut r, *flush as u32);
        }
        r
    }

    fn input(&self) -> Vec<u8> {
        self.segs.iter().flat_map(|(s, _)| s.iter().copied()).collect()
    }

    /// Encodes with `enc`, splitting the writes at random.
    fn encode(&self, enc: &mut Encoder, rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::new();
        enc.reset_dict(&self.dict);
        for (seg, flush) in &self.segs {
            let mut rest = &seg[..];
            while !rest.is_empty() {
                let n = match rng.below(4) {
                    0 => rest.len(),
                    1 => rng.range(1, 16),
                    _ => rng.range(1, 100_000),
                }
                .min(rest.len());
                enc.write(&rest[..n], &mut out);
                rest = &rest[n..];
            }
            if *flush {
                enc.flush(&mut out);
            }
        }
        enc.finish(&mut out);
        out
    }
}

fn flate_case(rng: &mut Rng, level: i32, i: usize, tar: &[u8]) -> FlateCase {
    let n = size(rng, 600_000);
    let (kind, data) = input(rng, n, tar);
    let dict = match rng.below(5) {
        0 => {
            let k = rng.range(1, 20);
            rng.bytes(k)
        }
        1 => text(rng, 16384),
        2 => data[..data.len().min(rng.range(0, 40_000))].to_vec(),
        _ => Vec::new(),
    };
    // Flush points: none, a few, or many small segments.
    let mut segs = Vec::new();
    let mut rest = &data[..];
    let cuts = match rng.below(4) {
        0 => rng.range(1, 4),
        1 => rng.range(5, 40),
        _ => 0,
    };
    for _ in 0..cuts {
        let at = rng.below(rest.len() + 1);
        segs.push((rest[..at].to_vec(), rng.chance(80)));
        rest = &rest[at..];
    }
    segs.push((rest.to_vec(), false));
    let go_chunk = if rng.chance(15) { rng.range(1, 70_000) } else { 0 };
    FlateCase {
        name: format!(
            "level {level} case {i} {kind} len={n} dict={} flushes={cuts}",
            dict.len()
        ),
        level,
        dict,
        go_chunk,
        segs,
    }
}

/// Every case of every level through one Go process; Rust alternates
/// between a fresh encoder and one reused across cases (as pgzip's pool
/// reuses Go writers).
fn check_flate_levels(reference: Reference, levels: &[i32], salt: u64) {
    let tar = tar();
    let mut rng = Rng(seed() ^ salt);
    let mut all = Vec::new();
    for &level in levels {
        for i in 0..cases_for(reference) {
            all.push(flate_case(&mut rng, level, i, tar));
        }
    }
    let all = Arc::new(all);
    let requests = all.iter().map(FlateCase::request).collect();
    let mut reused: HashMap<i32, Encoder> = HashMap::new();
    let variant = reference.variant();
    let new = |level| Encoder::with_variant(level, variant).expect("valid level");
    run_go("kpflate-ref", reference, requests, |i, go| {
        let case = &all[i];
        let mut fresh;
        let enc = if i % 2 == 0 {
            fresh = new(case.level);
            &mut fresh
        } else {
            reused.entry(case.level).or_insert_with(|| new(case.level))
        };
        let rust = case.encode(enc, &mut Rng(i as u64));
        assert_same(&case.name, &case.input(), &go, &rust);
    });
}

#[test]
fn flate_default_and_fast_levels_match_go() {
    check_flate_levels(Reference::Bookworm, &[-1, 1, 2, 3, 4, 5, 6], 0x11);
}

#[test]
fn flate_lazy_levels_match_go() {
    check_flate_levels(Reference::Bookworm, &[7, 8, 9], 0x22);
}

#[test]
fn flate_stored_and_huffman_only_match_go() {
    check_flate_levels(Reference::Bookworm, &[0, -2], 0x33);
}

#[test]
fn flate_1_18_matches_go() {
    check_flate_levels(Reference::Kp1_18, &[-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 0x118);
}

#[test]
fn flate_1_20_matches_go() {
    check_flate_levels(Reference::Kp1_20, &[-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 0x120);
}

/// Go 1.27's compress/flate and compress/gzip (tests/go/goflate-ref built with
/// Go 1.27) against the klauspost port's Go 1.27 variant: every level, flushes
/// anywhere, and gzip framing as moby writes it (zero header).
#[test]
fn go_1_27_matches_go() {
    let tar = tar();
    let mut rng = Rng(seed() ^ 0x127);
    let mut all = Vec::new();
    for level in [-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9] {
        for i in 0..cases_for(Reference::Go1_27) {
            let mut case = flate_case(&mut rng, level, i, tar);
            case.dict.clear();
            let gzip = rng.chance(50);
            all.push((case, gzip));
        }
    }
    let all = Arc::new(all);
    let requests = all
        .iter()
        .map(|(case, gzip)| {
            let mut r = Vec::new();
            put_u32(&mut r, case.level as u32);
            put_u32(&mut r, *gzip as u32);
            put_u32(&mut r, case.segs.len() as u32);
            for (seg, flush) in &case.segs {
                put_bytes(&mut r, seg);
                put_u32(&mut r, *flush as u32);
            }
            r
        })
        .collect();
    run_go("goflate-ref", Reference::Go1_27, requests, |i, go| {
        let (case, gzip) = &all[i];
        let mut enc = Encoder::with_variant(case.level, Variant::Go1_27).expect("valid level");
        let mut rust = Vec::new();
        if *gzip {
            let xfl = match case.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            rust.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
        }
        for (seg, flush) in &case.segs {
            enc.write(seg, &mut rust);
            if *flush {
                enc.flush(&mut rust);
            }
        }
        enc.finish(&mut rust);
        let input = case.input();
        if *gzip {
            let mut crc = flate2::Crc::new();
            crc.update(&input);
            rust.extend_from_slice(&crc.sum().to_le_bytes());
            rust.extend_from_slice(&(input.len() as u32).to_le_bytes());
        }
        assert_same(&format!("go1.27 {} gzip={gzip}", case.name), &input, &go, &rust);
    });
}

/// Pseudo-levels of `tests/go/kpflate-ref` for the stateless encoder: one
/// `StatelessDeflate(seg, eof = flush flag, dict)` per segment, or one
/// `NewStatelessWriter` fed a `Write` per segment and closed.
const STATELESS_DEFLATE: i32 = -100;
const STATELESS_WRITER: i32 = -101;

#[test]
fn stateless_matches_go() {
    let tar = tar();
    let mut rng = Rng(seed() ^ 0x88);
    let mut all = Vec::new();
    for level in [STATELESS_DEFLATE, STATELESS_WRITER] {
        for i in 0..cases() {
            let mut case = flate_case(&mut rng, level, i, tar);
            // The last call usually ends the stream.
            if let Some(last) = case.segs.last_mut() {
                last.1 = rng.chance(80);
            }
            all.push(case);
        }
    }
    let all = Arc::new(all);
    let requests = all.iter().map(FlateCase::request).collect();
    run_go("kpflate-ref", Reference::Bookworm, requests, |i, go| {
        let case = &all[i];
        let mut rust = Vec::new();
        if case.level == STATELESS_DEFLATE {
            for (seg, eof) in &case.segs {
                stateless_deflate(seg, *eof, &case.dict, &mut rust);
            }
        } else {
            let mut w = StatelessWriter::new();
            for (seg, _) in &case.segs {
                w.write(seg, &mut rust);
            }
            w.finish(&mut rust);
        }
        assert_same(&case.name, &case.input(), &go, &rust);
    });
}

#[test]
fn invalid_levels_are_refused() {
    assert!(Encoder::new(-3).is_none());
    assert!(Encoder::new(10).is_none());
    assert!(PgzipEncoder::new(5, 16384).is_none());
    assert!(PgzipEncoder::new(11, 1 << 20).is_none());
}

// ---------------------------------------------------------------- pgzip

struct PgzipCase {
    name: String,
    level: i32,
    block: usize,
    go_chunk: usize,
    data: Vec<u8>,
}

impl PgzipCase {
    fn request(&self) -> Vec<u8> {
        let mut r = Vec::new();
        put_u32(&mut r, self.level as u32);
        put_u32(&mut r, self.block as u32);
        put_u32(&mut r, self.go_chunk as u32);
        put_bytes(&mut r, &self.data);
        r
    }
}

/// Sizes that end at, just before or just after block boundaries, plus
/// sizes anywhere in up to 2.5 blocks.
fn pgzip_size(rng: &mut Rng, block: usize) -> usize {
    match rng.below(6) {
        0 => rng.range(0, 40_000),
        1 | 2 => (rng.range(1, 3) * block + rng.below(3)).saturating_sub(1),
        3 => block - 16384 + rng.below(3),
        _ => rng.range(0, block * 5 / 2),
    }
}

fn pgzip_cases(reference: Reference, block: usize, salt: u64) -> Vec<PgzipCase> {
    let tar = tar();
    let mut rng = Rng(seed() ^ salt);
    let mut v = Vec::new();
    let cases = cases_for(reference);
    // Level −1 (containers/image, umoci) gets the full count, the others a
    // share of it.
    let levels: &[(i32, usize)] = &[
        (-1, cases),
        (1, 0),
        (6, 0),
        (9, 0),
        (0, 0),
        (-2, 0),
        (3, 0),
        (4, 0),
        (7, 0),
    ];
    for &(level, n) in levels {
        let n = if n == 0 { (cases / 6).max(2) } else { n };
        for i in 0..n {
            let len = pgzip_size(&mut rng, block);
            let (kind, data) = input(&mut rng, len, tar);
            let go_chunk = if rng.chance(20) {
                rng.range(1, 3 * block / 2)
            } else {
                0
            };
            v.push(PgzipCase {
                name: format!("pgzip block {block} level {level} case {i} {kind} len={len}"),
                level,
                block,
                go_chunk,
                data,
            });
        }
    }
    v
}

fn check_pgzip(reference: Reference, block: usize, salt: u64) {
    let all = Arc::new(pgzip_cases(reference, block, salt));
    let requests = all.iter().map(PgzipCase::request).collect();
    run_go("pgzip-ref", reference, requests, |i, go| {
        let case = &all[i];
        assert!(go.len() >= 18, "{}: short gzip member", case.name);
        assert_eq!(go[..10], pgzip_header(case.level), "{}: gzip header", case.name);
        let body = &go[10..go.len() - 8];
        let mut enc = PgzipEncoder::with_variant(case.level, case.block, reference.variant())
            .expect("valid pgzip settings");
        let mut rust = Vec::new();
        let mut rng = Rng(i as u64);
        let mut rest = &case.data[..];
        while !rest.is_empty() {
            let n = if rng.chance(50) {
                rest.len()
            } else {
                rng.range(1, 3 * block / 2)
            }
            .min(rest.len());
            enc.write(&rest[..n], &mut rust);
            rest = &rest[n..];
        }
        enc.finish(&mut rust);
        assert_same(&case.name, &case.data, body, &rust);
    });
}

#[test]
fn pgzip_256k_blocks_match_go() {
    check_pgzip(Reference::Bookworm, 262_144, 0x44);
}

#[test]
fn pgzip_1m_blocks_match_go() {
    check_pgzip(Reference::Bookworm, 1_048_576, 0x55);
}

#[test]
fn pgzip_odd_blocks_match_go() {
    check_pgzip(Reference::Bookworm, 100_003, 0x66);
}

/// pgzip 1.2.6 over klauspost 1.18.0 and 1.20.3 (pgzip has no go.mod: the
/// program decides which flate it links), at containers/image's and umoci's
/// block sizes and an odd one (where a level 7-9 dictionary shows).
#[test]
fn pgzip_1_2_6_on_1_18_matches_go() {
    for (block, salt) in [(1_048_576, 0x1181), (262_144, 0x1182), (100_003, 0x1183)] {
        check_pgzip(Reference::Kp1_18, block, salt);
    }
}

#[test]
fn pgzip_1_2_6_on_1_20_matches_go() {
    for (block, salt) in [(1_048_576, 0x1201), (262_144, 0x1202), (100_003, 0x1203)] {
        check_pgzip(Reference::Kp1_20, block, salt);
    }
}

/// Blocks rebuilt on separate threads with `pgzip_block` concatenate to the
/// streaming encoder's bytes.
#[test]
fn pgzip_blocks_in_parallel_match_stream() {
    let tar = tar();
    let mut rng = Rng(seed() ^ 0x77);
    for i in 0..(cases() / 5).max(3) {
        let block = [262_144, 100_003, 1_048_576][i % 3];
        let level = [-1, 1, 6, 9][rng.below(4)];
        let variant = Variant::ALL[rng.below(Variant::ALL.len())];
        let len = pgzip_size(&mut rng, block);
        let (kind, data) = input(&mut rng, len, tar);
        let mut stream = Vec::new();
        let mut enc = PgzipEncoder::with_variant(level, block, variant).expect("valid pgzip settings");
        enc.write(&data, &mut stream);
        enc.finish(&mut stream);

        // The last block is empty when the length is a multiple of `block`.
        let mut blocks: Vec<&[u8]> = data.chunks(block).collect();
        if data.len() % block == 0 {
            blocks.push(&[]);
        }
        let parts: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..blocks.len())
                .map(|k| {
                    let prev: &[u8] = if k == 0 { &[] } else { blocks[k - 1] };
                    let cur = blocks[k];
                    let last = k + 1 == blocks.len();
                    s.spawn(move || {
                        let mut out = Vec::new();
                        if variant == Variant::Kp1_15 {
                            pgzip_block(level, prev, cur, last, &mut out);
                        } else {
                            pgzip_block_variant(level, variant, prev, cur, last, &mut out);
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("block thread"))
                .collect()
        });
        let joined = parts.concat();
        let name = format!("parallel block {block} level {level} {variant:?} case {i} {kind} len={len}");
        assert_same(&name, &data, &stream, &joined);
    }
}
