//! Differential tests of `booster::compress::kpflate` against the Go code it
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

use booster::compress::kpflate::{
    Encoder, PgzipEncoder, StatelessWriter, pgzip_block, pgzip_header, stateless_deflate,
};
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

// ---------------------------------------------------------------- inputs

/// SplitMix64: small, seedable, good enough to vary inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn cases() -> usize {
    std::env::var("BOOSTER_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

fn seed() -> u64 {
    std::env::var("BOOSTER_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

const WORDS: &[&str] = &[
    "the",
    "layer",
    "image",
    "registry",
    "blob",
    "sha256",
    "digest",
    "manifest",
    "config",
    "tar",
    "usr",
    "lib",
    "bin",
    "etc",
    "share",
    "doc",
    "x86_64-linux-gnu",
    "libc.so.6",
    "README",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "with",
    "on",
    "that",
    "by",
    "this",
    "0644",
    "root",
    "ustar",
    "\n",
    "\n\n",
    ", ",
    ". ",
    "{",
    "}",
    "\"",
    ": ",
    "    ",
    "\t",
    "func",
    "return",
    "if",
    "else",
];

fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 32);
    while v.len() < n {
        let w = WORDS[rng.below(WORDS.len())];
        v.extend_from_slice(w.as_bytes());
        if rng.chance(70) {
            v.push(b' ');
        }
        if rng.chance(2) {
            v.extend_from_slice(format!("{}", rng.next() % 100_000).as_bytes());
        }
    }
    v.truncate(n);
    v
}

/// Runs, short patterns and long repeats: many long and overlapping matches.
fn repetitive(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        match rng.below(4) {
            0 => v.extend(std::iter::repeat_n(rng.next() as u8, rng.range(1, 2000))),
            1 => {
                let pat = {
                    let k = rng.range(1, 12);
                    rng.bytes(k)
                };
                for _ in 0..rng.range(1, 400) {
                    v.extend_from_slice(&pat);
                }
            }
            2 if !v.is_empty() => {
                // Copy from up to ~40 KiB back: distances around the 32 KiB
                // window edge.
                let dist = rng.range(1, v.len().min(40_000));
                let len = rng.range(3, 700);
                for _ in 0..len {
                    v.push(v[v.len() - dist]);
                }
            }
            _ => v.extend({
                let k = rng.range(1, 40);
                rng.bytes(k)
            }),
        }
    }
    v.truncate(n);
    v
}

/// Near-duplicates: a random base with sparse mutations, repeated at
/// distances near 32 KiB.
fn near_dups(rng: &mut Rng, n: usize) -> Vec<u8> {
    let period = [32768, 32767, 32769, 16384, 65535, 1000][rng.below(6)];
    let base = rng.bytes(period.min(n).max(1));
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let i = v.len() % base.len();
        let b = if rng.chance(1) { rng.next() as u8 } else { base[i] };
        v.push(b);
    }
    v
}

/// Bytes drawn with Fibonacci weights: optimal Huffman codes would be
/// deeper than deflate's 15 bits, so the length limiting has to work.
fn fibonacci(rng: &mut Rng, n: usize) -> Vec<u8> {
    let symbols = rng.range(16, 26);
    let mut weights = vec![1u64, 1];
    while weights.len() < symbols {
        weights.push(weights[weights.len() - 1] + weights[weights.len() - 2]);
    }
    let total: u64 = weights.iter().sum();
    let base = rng.next() as u8;
    (0..n)
        .map(|_| {
            let mut x = rng.next() % total;
            let mut i = 0;
            while x >= weights[i] {
                x -= weights[i];
                i += 1;
            }
            base.wrapping_add(i as u8 * 7)
        })
        .collect()
}

/// A mix of all the kinds, in segments of random length.
fn mixed(rng: &mut Rng, n: usize, tar: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let len = rng.range(1, 70_000).min(n - v.len());
        let seg = match rng.below(6) {
            0 => text(rng, len),
            5 => fibonacci(rng, len),
            1 => repetitive(rng, len),
            2 => rng.bytes(len),
            3 => near_dups(rng, len),
            _ => tar_slice(rng, tar, len),
        };
        v.extend_from_slice(&seg);
    }
    v
}

fn tar_slice(rng: &mut Rng, tar: &[u8], n: usize) -> Vec<u8> {
    if tar.is_empty() {
        return text(rng, n);
    }
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let at = rng.below(tar.len());
        let take = (n - v.len()).min(tar.len() - at);
        v.extend_from_slice(&tar[at..at + take]);
    }
    v
}

/// Sizes where the encoders change behaviour: token-free tiny blocks (< 13),
/// stored vs Huffman tails (32, 128), the 64 KiB − 1 window, the 320 KiB
/// history, pgzip's 16 KiB tail and the block sizes.
const EDGES: &[usize] = &[
    0, 1, 2, 12, 13, 14, 31, 32, 33, 127, 128, 129, 1024, 1025, 16384, 16385, 32767, 32768, 32769, 65534,
    65535, 65536, 65537, 131070, 131071, 196605, 262143, 262144, 262145, 327675, 327676, 393210,
];

fn size(rng: &mut Rng, max: usize) -> usize {
    match rng.below(10) {
        0..=2 => {
            let e = EDGES[rng.below(EDGES.len())];
            (e + rng.below(3)).saturating_sub(1).min(max)
        }
        3..=4 => rng.range(0, 300),
        5..=7 => rng.range(0, 140_000).min(max),
        _ => rng.range(0, max),
    }
}

fn input(rng: &mut Rng, n: usize, tar: &[u8]) -> (&'static str, Vec<u8>) {
    match rng.below(9) {
        0 => ("text", text(rng, n)),
        7 => ("fibonacci", fibonacci(rng, n)),
        1 => ("repetitive", repetitive(rng, n)),
        2 => ("random", rng.bytes(n)),
        3 => ("near-dups", near_dups(rng, n)),
        4 => ("tar", tar_slice(rng, tar, n)),
        5 => ("zeros", vec![0; n]),
        _ => ("mixed", mixed(rng, n, tar)),
    }
}

/// A real tar to slice inputs from: `BOOSTER_DIFF_TAR`, else one made of
/// the klauspost Go sources, else none.
fn tar() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| {
        if let Ok(p) = std::env::var("BOOSTER_DIFF_TAR") {
            return std::fs::read(&p).unwrap_or_else(|e| panic!("BOOSTER_DIFF_TAR={p}: {e}"));
        }
        let dir = gopath().join("src/github.com/klauspost");
        Command::new("tar")
            .arg("-cf")
            .arg("-")
            .arg("-C")
            .arg(&dir)
            .arg(".")
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| o.stdout)
            .unwrap_or_default()
    })
}

// ---------------------------------------------------------------- Go side

fn gopath() -> PathBuf {
    std::env::var_os("BOOSTER_GOPATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/share/gocode".into())
}

/// Builds the Go reference programs once per test binary.
fn go_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kpflate-go");
        std::fs::create_dir_all(&out).expect("create the Go build dir");
        for prog in ["kpflate-ref", "pgzip-ref"] {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go").join(prog);
            let mut cmd = Command::new("go");
            cmd.arg("build")
                .arg("-o")
                .arg(out.join(prog))
                .arg(".")
                .current_dir(&src);
            cmd.env("GO111MODULE", "off").env("GOPATH", gopath());
            if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
                cmd.env("GOCACHE", out.join("gocache"));
            }
            let status = cmd.status().unwrap_or_else(|e| {
                panic!(
                    "cannot run `go build` in {} ({e}): these tests need Go (Debian: golang-go) \
                     and the Debian packages golang-github-klauspost-compress-dev 1.15.12 and \
                     golang-github-klauspost-pgzip-dev 1.2.5",
                    src.display()
                )
            });
            assert!(status.success(), "go build of {} failed", src.display());
        }
        out
    });
    dir.join(name)
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_u32(buf, b.len() as u32);
    buf.extend_from_slice(b);
}

/// Sends every request from a writer thread and returns Go's answers in
/// order through `check(index, answer)`.
fn run_go(prog: &str, requests: Vec<Vec<u8>>, mut check: impl FnMut(usize, Vec<u8>)) {
    let mut child = Command::new(go_bin(prog))
        .arg("-batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {prog}: {e}"));
    let stdin = child.stdin.take().expect("stdin");
    let n = requests.len();
    let writer = std::thread::spawn(move || {
        let mut w = BufWriter::new(stdin);
        for r in requests {
            w.write_all(&r).expect("write a request to Go");
        }
        w.flush().expect("flush requests to Go");
    });
    let mut r = BufReader::new(child.stdout.take().expect("stdout"));
    for i in 0..n {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)
            .unwrap_or_else(|e| panic!("{prog} answer {i}: {e}"));
        let mut out = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut out).expect("read Go's answer");
        check(i, out);
    }
    writer.join().expect("writer thread");
    assert!(child.wait().expect("wait for Go").success(), "{prog} failed");
}

/// Panics with the first differing offset, leaving the files for a look.
fn assert_same(what: &str, input: &[u8], go: &[u8], rust: &[u8]) {
    if go == rust {
        return;
    }
    let at = go
        .iter()
        .zip(rust)
        .position(|(a, b)| a != b)
        .unwrap_or(go.len().min(rust.len()));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kpflate-mismatch");
    std::fs::create_dir_all(&dir).ok();
    let stem = what.replace([' ', '/', '='], "_");
    std::fs::write(dir.join(format!("{stem}.in")), input).ok();
    std::fs::write(dir.join(format!("{stem}.go")), go).ok();
    std::fs::write(dir.join(format!("{stem}.rust")), rust).ok();
    panic!(
        "{what}: Go wrote {} bytes, Rust {}; first difference at byte {at} (files in {})",
        go.len(),
        rust.len(),
        dir.display()
    );
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
fn check_flate_levels(levels: &[i32], salt: u64) {
    let tar = tar();
    let mut rng = Rng(seed() ^ salt);
    let mut all = Vec::new();
    for &level in levels {
        for i in 0..cases() {
            all.push(flate_case(&mut rng, level, i, tar));
        }
    }
    let all = Arc::new(all);
    let requests = all.iter().map(FlateCase::request).collect();
    let mut reused: HashMap<i32, Encoder> = HashMap::new();
    run_go("kpflate-ref", requests, |i, go| {
        let case = &all[i];
        let mut fresh;
        let enc = if i % 2 == 0 {
            fresh = Encoder::new(case.level).expect("valid level");
            &mut fresh
        } else {
            reused
                .entry(case.level)
                .or_insert_with(|| Encoder::new(case.level).expect("valid level"))
        };
        let rust = case.encode(enc, &mut Rng(i as u64));
        assert_same(&case.name, &case.input(), &go, &rust);
    });
}

#[test]
fn flate_default_and_fast_levels_match_go() {
    check_flate_levels(&[-1, 1, 2, 3, 4, 5, 6], 0x11);
}

#[test]
fn flate_lazy_levels_match_go() {
    check_flate_levels(&[7, 8, 9], 0x22);
}

#[test]
fn flate_stored_and_huffman_only_match_go() {
    check_flate_levels(&[0, -2], 0x33);
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
    run_go("kpflate-ref", requests, |i, go| {
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

fn pgzip_cases(block: usize, salt: u64) -> Vec<PgzipCase> {
    let tar = tar();
    let mut rng = Rng(seed() ^ salt);
    let mut v = Vec::new();
    // Level −1 (containers/image, umoci) gets the full count, the others a
    // share of it.
    let levels: &[(i32, usize)] = &[(-1, cases()), (1, 0), (6, 0), (9, 0), (0, 0), (-2, 0), (3, 0)];
    for &(level, n) in levels {
        let n = if n == 0 { (cases() / 6).max(2) } else { n };
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

fn check_pgzip(block: usize, salt: u64) {
    let all = Arc::new(pgzip_cases(block, salt));
    let requests = all.iter().map(PgzipCase::request).collect();
    run_go("pgzip-ref", requests, |i, go| {
        let case = &all[i];
        assert!(go.len() >= 18, "{}: short gzip member", case.name);
        assert_eq!(go[..10], pgzip_header(case.level), "{}: gzip header", case.name);
        let body = &go[10..go.len() - 8];
        let mut enc = PgzipEncoder::new(case.level, case.block).expect("valid pgzip settings");
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
    check_pgzip(262_144, 0x44);
}

#[test]
fn pgzip_1m_blocks_match_go() {
    check_pgzip(1_048_576, 0x55);
}

#[test]
fn pgzip_odd_blocks_match_go() {
    check_pgzip(100_003, 0x66);
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
        let len = pgzip_size(&mut rng, block);
        let (kind, data) = input(&mut rng, len, tar);
        let mut stream = Vec::new();
        let mut enc = PgzipEncoder::new(level, block).expect("valid pgzip settings");
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
                        pgzip_block(level, prev, cur, last, &mut out);
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
        let name = format!("parallel block {block} level {level} case {i} {kind} len={len}");
        assert_same(&name, &data, &stream, &joined);
    }
}
