//! Inputs and the Go side of the differential tests: seedable generated inputs (text,
//! runs and repeats, near-duplicates at window distances, skewed bytes, slices of a real
//! tar), and a runner that feeds many requests to one Go reference process.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::goref::{Reference, go_bin, gopath};

/// SplitMix64: small, seedable, good enough to vary inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

pub fn cases() -> usize {
    std::env::var("BOOSTER_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

pub fn seed() -> u64 {
    std::env::var("BOOSTER_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

pub const WORDS: &[&str] = &[
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

pub fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
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
pub fn repetitive(rng: &mut Rng, n: usize) -> Vec<u8> {
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
pub fn near_dups(rng: &mut Rng, n: usize) -> Vec<u8> {
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
pub fn fibonacci(rng: &mut Rng, n: usize) -> Vec<u8> {
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
pub fn mixed(rng: &mut Rng, n: usize, tar: &[u8]) -> Vec<u8> {
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

pub fn tar_slice(rng: &mut Rng, tar: &[u8], n: usize) -> Vec<u8> {
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
pub const EDGES: &[usize] = &[
    0, 1, 2, 12, 13, 14, 31, 32, 33, 127, 128, 129, 1024, 1025, 16384, 16385, 32767, 32768, 32769, 65534,
    65535, 65536, 65537, 131070, 131071, 196605, 262143, 262144, 262145, 327675, 327676, 393210,
];

pub fn size(rng: &mut Rng, max: usize) -> usize {
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

pub fn input(rng: &mut Rng, n: usize, tar: &[u8]) -> (&'static str, Vec<u8>) {
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
pub fn tar() -> &'static [u8] {
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

pub fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

pub fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_u32(buf, b.len() as u32);
    buf.extend_from_slice(b);
}

/// Sends every request from a writer thread and returns Go's answers in
/// order through `check(index, answer)`.
pub fn run_go(
    prog: &str,
    reference: Reference,
    requests: Vec<Vec<u8>>,
    mut check: impl FnMut(usize, Vec<u8>),
) {
    let mut child = Command::new(go_bin(prog, reference))
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
        if prog == "goflate-ref" {
            // Its answers go on with the output length after each segment.
            let mut n = [0u8; 4];
            r.read_exact(&mut n).expect("read Go's segment count");
            let mut marks = vec![0u8; 4 * u32::from_le_bytes(n) as usize];
            r.read_exact(&mut marks).expect("read Go's segment marks");
        }
        check(i, out);
    }
    writer.join().expect("writer thread");
    assert!(child.wait().expect("wait for Go").success(), "{prog} failed");
}

/// Panics with the first differing offset, leaving the files for a look.
pub fn assert_same(what: &str, input: &[u8], go: &[u8], rust: &[u8]) {
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
