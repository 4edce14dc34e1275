//! Differential test of `recompress::goflate` against Go's own
//! `compress/flate` (the program in tests/go/goflate-ref, built here).
//!
//! Every generated input is compressed by Go and by the port at every level
//! (-2, -1, 0..9), with the same sequence of `Write`/`Flush` calls (varied at
//! random: one big write, tiny writes, 512-byte and 32 KiB chunks, ...). The
//! bytes must be identical, and so must the output length after each call.
//!
//! Both sides get the same writes because Go's output does depend on write
//! boundaries, in rare cases: see `go_output_depends_on_write_boundaries`.
//!
//! Environment:
//! - `BOOSTER_DIFF_CASES`: generated inputs per level (default 30); the long
//!   sweep (bench/go-sweep.sh) uses 1000 or more.
//! - `BOOSTER_DIFF_SEED`: base seed (default fixed, so CI is deterministic).
//! - `BOOSTER_DIFF_TAR`: a tar file to add as one more input per level.
//! - `BOOSTER_DIFF_ONLY`: only the cases whose name contains this (e.g.
//!   `#1599:` with the seed and case count of a failing run).
//!
//! Go is required: CI installs golang-go, so a missing `go` fails the test.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use recompress::goflate::Encoder;

// ---------------------------------------------------------------------------
// The Go reference program

/// Builds tests/go/goflate-ref once per test binary.
fn go_ref() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/goflate-ref");
        // Built into Cargo's scratch dir for tests; via a rename, so that
        // concurrent test runs never see a half-written binary.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let bin = dir.join("goflate-ref");
        let tmp = dir.join(format!("goflate-ref.{}.tmp", std::process::id()));
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&tmp)
            .arg(".")
            .current_dir(&src)
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run `go` ({e}): install Go (Debian: golang-go); this test needs it")
            });
        assert!(status.success(), "go build of {} failed", src.display());
        std::fs::rename(&tmp, &bin).unwrap();
        bin
    })
}

/// One input with its Go-side write segments (each one `Write`, optionally
/// followed by `Flush`).
struct Case {
    name: String,
    data: Vec<u8>,
    /// End offsets of the segments and whether to flush after each.
    segments: Vec<(usize, bool)>,
    gzip: bool,
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// What Go produced for one case.
struct GoReply {
    out: Vec<u8>,
    /// Output length after each segment (its Write, then Flush if asked).
    marks: Vec<usize>,
}

fn take_u32(rest: &mut &[u8]) -> usize {
    let v = u32::from_le_bytes(rest[..4].try_into().unwrap());
    *rest = &rest[4..];
    v as usize
}

/// Runs all `(level, case)` requests through one Go process.
fn go_batch(requests: &[(i32, &Case)]) -> Vec<GoReply> {
    let mut req = Vec::new();
    for (level, case) in requests {
        put_u32(&mut req, *level as u32);
        put_u32(&mut req, u32::from(case.gzip));
        put_u32(&mut req, case.segments.len() as u32);
        let mut start = 0;
        for &(end, flush) in &case.segments {
            put_u32(&mut req, (end - start) as u32);
            req.extend_from_slice(&case.data[start..end]);
            put_u32(&mut req, u32::from(flush));
            start = end;
        }
    }
    // A file as stdin avoids juggling a writer thread against the pipe.
    let mut input = tempfile::tempfile().unwrap();
    input.write_all(&req).unwrap();
    std::io::Seek::rewind(&mut input).unwrap();
    let out = Command::new(go_ref())
        .arg("-batch")
        .stdin(Stdio::from(input))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "goflate-ref -batch failed");
    let mut rest = &out.stdout[..];
    let mut replies = Vec::new();
    while !rest.is_empty() {
        let n = take_u32(&mut rest);
        let out = rest[..n].to_vec();
        rest = &rest[n..];
        let nseg = take_u32(&mut rest);
        let marks = (0..nseg).map(|_| take_u32(&mut rest)).collect();
        replies.push(GoReply { out, marks });
    }
    assert_eq!(replies.len(), requests.len(), "Go replied to every request");
    replies
}

// ---------------------------------------------------------------------------
// The port, fed like Go, with a gzip wrapper like Go's

/// Go's `compress/gzip` framing with a zero Header, around the port. Each
/// segment is one `write`, as Go got it. Also returns the output length after
/// each segment, which must match Go's: the API promises every byte Go would
/// have emitted so far.
fn rust_compress(enc: &mut Encoder, level: i32, case: &Case) -> (Vec<u8>, Vec<usize>) {
    let mut marks = Vec::new();
    let mut out = Vec::new();
    if case.gzip {
        // XFL is 2 for BestCompression, 4 for BestSpeed; OS is 255.
        let xfl = match level {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
    }
    let mut start = 0;
    for &(end, flush) in &case.segments {
        enc.write(&case.data[start..end], &mut out);
        if flush {
            enc.flush(&mut out);
        }
        marks.push(out.len());
        start = end;
    }
    enc.finish(&mut out);
    if case.gzip {
        out.extend_from_slice(&crc32(&case.data).to_le_bytes());
        out.extend_from_slice(&(case.data.len() as u32).to_le_bytes());
    }
    (out, marks)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

// ---------------------------------------------------------------------------
// Input generation

/// SplitMix64: small, deterministic, good enough for test data.
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
        (self.next() % n as u64) as usize
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
        .unwrap_or(default)
}

fn base_seed() -> u64 {
    env_usize("BOOSTER_DIFF_SEED", 0x600f_1a7e) as u64
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "layer",
    "image",
    "tar",
    "gzip",
    "container",
    "registry",
    "manifest",
    "blob",
    "sha256",
    "digest",
    "/usr/lib/",
    "config",
    "json",
    "func",
    "return",
    "if",
    "else",
    "\n",
    "\t",
    "{",
    "}",
    "(",
    ")",
    ";",
    "error",
    "nil",
    "0x",
    "    ",
    "deflate",
    "window",
];

/// Appends `n` bytes of one kind of content.
fn gen_kind(rng: &mut Rng, kind: usize, n: usize, out: &mut Vec<u8>) {
    let start = out.len();
    match kind {
        // Runs of one byte, of varied length.
        0 => {
            while out.len() - start < n {
                let b = rng.next() as u8;
                let run = 1 + rng.below(600);
                out.extend(std::iter::repeat_n(b, run));
            }
        }
        // A short random pattern repeated.
        1 => {
            let period = 1 + rng.below(300);
            let mut pat = vec![0; period];
            rng.fill(&mut pat);
            while out.len() - start < n {
                out.extend_from_slice(&pat);
            }
        }
        // Incompressible.
        2 => {
            out.resize(start + n, 0);
            rng.fill(&mut out[start..]);
        }
        // Text-like: words with a skewed distribution.
        3 => {
            while out.len() - start < n {
                let w = rng.below(WORDS.len()).min(rng.below(WORDS.len()));
                out.extend_from_slice(WORDS[w].as_bytes());
                out.push(b' ');
            }
        }
        // Small alphabet: many short matches, so blocks end on token count.
        4 => {
            let alphabet = 2 + rng.below(6);
            out.extend((0..n).map(|_| b'a' + rng.below(alphabet) as u8));
        }
        // Random data repeated near the window distance (32 KiB +- a bit),
        // with mutations, to probe the maximum match offset.
        5 => {
            let dist = 32768 - 8 + rng.below(17);
            let mut block = vec![0; dist];
            rng.fill(&mut block);
            while out.len() - start < n {
                let mut b = block.clone();
                for _ in 0..rng.below(20) {
                    let i = rng.below(b.len());
                    b[i] = rng.next() as u8;
                }
                out.extend_from_slice(&b);
            }
        }
        // Binary-ish records: counters and little-endian fields.
        6 => {
            let mut i = rng.next() as u32;
            while out.len() - start < n {
                out.extend_from_slice(&i.to_le_bytes());
                out.extend_from_slice(&[0, 0, (i >> 3) as u8, 0x40]);
                out.extend_from_slice(&(u64::from(i) * 0x1000).to_le_bytes());
                i = i.wrapping_add(1 + rng.below(3) as u32);
            }
        }
        // Long exact repeats of earlier material (long matches, up to 258).
        _ => {
            let mut seed = vec![0; 64 + rng.below(2000)];
            rng.fill(&mut seed);
            out.extend_from_slice(&seed);
            while out.len() - start < n {
                let from = start + rng.below(out.len() - start);
                let len = 3 + rng.below(600);
                let end = (from + len).min(out.len());
                let copy = out[from..end].to_vec();
                out.extend_from_slice(&copy);
                if rng.below(3) == 0 {
                    out.push(rng.next() as u8);
                }
            }
        }
    }
    out.truncate(start + n);
}

/// Sizes that sit on Go's internal boundaries: window halves, the lazy
/// window slide point (65536 - 262), stored block size, BestSpeed buffers.
const BOUNDARIES: &[usize] = &[
    16, 17, 127, 128, 129, 258, 262, 4096, 16384, 32768, 65274, 65535, 65536, 98304, 131070, 131072, 196605,
    262144,
];

fn gen_size(rng: &mut Rng, long: bool) -> usize {
    match rng.below(10) {
        0..=3 => rng.below(2000),
        4..=6 => 2000 + rng.below(100_000),
        7 | 8 => {
            let b = BOUNDARIES[rng.below(BOUNDARIES.len())];
            (b + rng.below(600)).saturating_sub(300)
        }
        _ => 100_000 + rng.below(if long { 1_500_000 } else { 500_000 }),
    }
}

/// Mixed content: a few chunks of different kinds.
fn gen_data(rng: &mut Rng, size: usize) -> (String, Vec<u8>) {
    let mut out = Vec::with_capacity(size);
    let mut kinds = Vec::new();
    let chunks = if rng.below(2) == 0 { 1 } else { 1 + rng.below(6) };
    for i in 0..chunks {
        let left = size - out.len();
        let n = if i + 1 == chunks {
            left
        } else {
            rng.below(left + 1)
        };
        let kind = rng.below(8);
        kinds.push(kind.to_string());
        gen_kind(rng, kind, n, &mut out);
    }
    (format!("kinds {}", kinds.join("+")), out)
}

/// The write calls for one input (end offsets, and whether to `Flush` after
/// each): one big write, or chunks in one of several styles.
fn gen_segments(rng: &mut Rng, len: usize) -> Vec<(usize, bool)> {
    if len == 0 || rng.below(3) == 0 {
        return vec![(len, rng.below(20) == 0)];
    }
    let style = rng.below(6);
    // Flushes make blocks end early; tiny writes would make thousands.
    let flush_odds = match rng.below(4) {
        0 if style != 1 => 4,
        _ => 0,
    };
    let mut segments = Vec::new();
    let mut end = 0;
    while end < len {
        let n = match style {
            // A few random cut points.
            0 => rng.below(len / 3 + 1),
            // Tiny writes (only for inputs that are not too big).
            1 if len <= 300_000 => 1 + rng.below(16),
            // Anything up to the window and past it.
            2 => 1 + rng.below(70_000),
            // Like a tar stream: 512-byte headers and 32 KiB data chunks.
            3 => [512, 512, 1024, 32768, 32768, 1 + rng.below(32768)][rng.below(6)],
            // Like bufio.Writer in front of the compressor.
            4 => 32768,
            // Sizes on Go's internal boundaries, and empty writes.
            _ => [0, 1, 261, 262, 511, 4096, 32767, 32768, 65535, 65536][rng.below(10)],
        };
        end = (end + n).min(len);
        segments.push((end, flush_odds > 0 && rng.below(flush_odds) == 0));
    }
    segments
}

/// Fixed edge cases, then `count` random ones, all derived from `seed`.
fn gen_cases(seed: u64, count: usize, long: bool) -> Vec<Case> {
    let mut rng = Rng(seed);
    let mut cases = Vec::new();
    for n in [0, 1, 2, 3, 4, 5, 15, 16, 17, 18, 127, 128, 129] {
        let mut data = vec![0; n];
        rng.fill(&mut data);
        cases.push(Case {
            name: format!("fixed {n} random bytes"),
            data,
            segments: vec![(n, false)],
            gzip: false,
        });
    }
    cases.push(Case {
        name: "empty with flush".into(),
        data: Vec::new(),
        segments: vec![(0, true)],
        gzip: true,
    });
    for i in 0..count {
        let size = gen_size(&mut rng, long);
        let (kinds, data) = gen_data(&mut rng, size);
        let segments = gen_segments(&mut rng, data.len());
        cases.push(Case {
            name: format!("random #{i}: seed {seed:#x}, {} bytes, {kinds}", data.len()),
            data,
            segments,
            gzip: rng.below(8) == 0,
        });
    }
    if let Some(tar) = real_tar() {
        cases.push(Case {
            name: "real tar".into(),
            segments: vec![(tar.len(), false)],
            data: tar,
            gzip: true,
        });
    }
    cases
}

/// `BOOSTER_DIFF_TAR`, or a tar of part of Go's own source tree (present
/// wherever Go is installed), cut to 3 MB.
fn real_tar() -> Option<Vec<u8>> {
    if let Ok(path) = std::env::var("BOOSTER_DIFF_TAR") {
        return Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")));
    }
    let goroot = Command::new("go").args(["env", "GOROOT"]).output().ok()?;
    let src = PathBuf::from(String::from_utf8(goroot.stdout).ok()?.trim()).join("src");
    let out = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(&src)
        .args(["compress", "archive", "bufio"])
        .output()
        .ok()?;
    if !out.status.success() || out.stdout.is_empty() {
        return None;
    }
    let mut tar = out.stdout;
    tar.truncate(3 << 20);
    Some(tar)
}

// ---------------------------------------------------------------------------
// Comparison

/// Compares the port with Go on `cases` at `level`; reuses one encoder
/// through `reset` so that Go's Reset path is covered too.
fn check_level(level: i32, cases: &[Case], seed: u64) {
    let requests: Vec<_> = cases.iter().map(|c| (level, c)).collect();
    let want = go_batch(&requests);
    let mut rng = Rng(seed ^ 0x5eed_5917);
    let mut enc = Encoder::new(level).expect("valid level");
    let mut failures = Vec::new();
    for (case, want) in cases.iter().zip(&want) {
        if rng.below(4) == 0 {
            enc = Encoder::new(level).unwrap();
        } else {
            enc.reset();
        }
        let (got, marks) = rust_compress(&mut enc, level, case);
        if got != want.out {
            failures.push(describe_mismatch(level, case, &got, &want.out));
        } else if marks != want.marks {
            failures.push(format!(
                "  {}: same bytes, but not emitted by the same calls as Go: port {marks:?}, Go {:?}",
                case.name, want.marks
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "level {level}: {} of {} cases differ from Go:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("level {level}: {} cases identical to Go", cases.len());
}

/// Saves the failing input for reproduction and says where output diverges.
fn describe_mismatch(level: i32, case: &Case, got: &[u8], want: &[u8]) -> String {
    let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
    let path = std::env::temp_dir().join(format!(
        "goflate-mismatch-l{level}-{}.bin",
        case.name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(60)
            .collect::<String>()
    ));
    let saved = std::fs::write(&path, &case.data).is_ok();
    let segments = if case.segments.len() <= 10 {
        format!("segments {:?}", case.segments)
    } else {
        format!("{} segments", case.segments.len())
    };
    format!(
        "  {} ({segments}{}): port {} bytes, Go {} bytes, first difference at byte {at}{}",
        case.name,
        if case.gzip { ", gzip" } else { "" },
        got.len(),
        want.len(),
        if saved {
            format!("; input saved to {}", path.display())
        } else {
            String::new()
        }
    )
}

/// Cases are generated once and shared by the per-level tests.
fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let count = env_usize("BOOSTER_DIFF_CASES", 30);
        let mut cases = gen_cases(base_seed(), count, count > 100);
        if let Ok(only) = std::env::var("BOOSTER_DIFF_ONLY") {
            cases.retain(|c| c.name.contains(&only));
        }
        cases
    })
}

macro_rules! level_tests {
    ($($name:ident: $level:expr,)*) => {$(
        #[test]
        fn $name() {
            check_level($level, cases(), base_seed());
        }
    )*};
}

level_tests! {
    identical_to_go_huffman_only: -2,
    identical_to_go_default: -1,
    identical_to_go_level0: 0,
    identical_to_go_level1: 1,
    identical_to_go_level2: 2,
    identical_to_go_level3: 3,
    identical_to_go_level4: 4,
    identical_to_go_level5: 5,
    identical_to_go_level6: 6,
    identical_to_go_level7: 7,
    identical_to_go_level8: 8,
    identical_to_go_level9: 9,
}

/// Over 16 MiB of input makes levels 2-9 rebase their hash chain positions
/// (Go's `maxHashOffset`), a path no small input reaches.
#[test]
fn identical_to_go_past_hash_offset_rebase() {
    let mut rng = Rng(base_seed() ^ 0x4a54);
    let mut data = Vec::with_capacity(18 << 20);
    while data.len() < 17_500_000 {
        let kind = rng.below(8);
        let n = 1000 + rng.below(200_000);
        gen_kind(&mut rng, kind, n, &mut data);
    }
    let case = Case {
        name: "17.5 MB mixed".into(),
        segments: vec![(data.len(), false)],
        data,
        gzip: false,
    };
    for level in [2, 6] {
        check_level(level, std::slice::from_ref(&case), base_seed());
    }
}

/// Tens of thousands of tiny flushes each reset BestSpeed's history, which
/// adds 32 KiB to its running offset. Enough of them push it past Go's
/// `bufferReset` and through `shiftOffsets`: with 65535 flushes inside a
/// reset (empty history); with 65525 during the later full blocks (history).
#[test]
fn identical_to_go_through_best_speed_offset_shift() {
    let mut rng = Rng(base_seed() ^ 0x5411);
    let cases: Vec<Case> = [65_525, 65_535]
        .into_iter()
        .map(|tiny| {
            let mut data = vec![b'x'; tiny];
            let mut segments: Vec<(usize, bool)> = (1..=tiny).map(|i| (i, true)).collect();
            gen_kind(&mut rng, 7, 8 * 65535, &mut data);
            segments.push((data.len(), false));
            Case {
                name: format!("{tiny} tiny flushes then 512 KiB"),
                data,
                segments,
                gzip: false,
            }
        })
        .collect();
    check_level(1, &cases, base_seed());
}

/// The moby pipeline end to end: Go's stream mode (gzip through a 32 KiB
/// bufio.Writer, so 32 KiB writes) on a real tar, against the port with the
/// gzip framing.
#[test]
fn identical_to_go_gzip_stream_like_moby() {
    let Some(tar) = real_tar() else {
        panic!("could not build a tar of Go's source tree");
    };
    for level in [-1, 1] {
        let mut child = Command::new(go_ref())
            .args(["-gzip", "-level", &level.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = tar.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&feed).unwrap());
        let want = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(want.status.success());
        let case = Case {
            name: "tar".into(),
            segments: (1..=tar.len().div_ceil(32768))
                .map(|i| ((i * 32768).min(tar.len()), false))
                .collect(),
            data: tar.clone(),
            gzip: true,
        };
        let mut enc = Encoder::new(level).unwrap();
        let (got, _) = rust_compress(&mut enc, level, &case);
        assert!(
            got == want.stdout,
            "{}",
            describe_mismatch(level, &case, &got, &want.stdout)
        );
    }
}

/// Go's output is NOT independent of write boundaries. The window slides in
/// `fillDeflate`, i.e. at the start of a `Write`, once the position reached
/// 65274; what was not yet searched then is searched after the slide, which
/// cannot reach as far back. Here the data ends in 300 zeros (one long match
/// carries the position past 65274 in the second window) and then repeats
/// bytes from 32700 back. Written at once, Go never slides a second time and
/// finds that repeat; with a write boundary after the zeros, it slides first
/// and cannot. The port follows Go in both. To rebuild a blob exactly, feed
/// the encoder the same writes its producer made (for moby: tar headers,
/// 32 KiB data chunks, padding, the two end blocks) wherever boundaries can
/// fall within 262 bytes of a window end.
#[test]
fn go_output_depends_on_write_boundaries() {
    let mut rng = Rng(5);
    let mut data = vec![0; 97_800];
    rng.fill(&mut data);
    data.extend_from_slice(&[0; 300]);
    data.extend_from_within(65_400..65_536);
    let case = |name: &str, segments: Vec<(usize, bool)>| Case {
        name: name.into(),
        data: data.clone(),
        segments,
        gzip: false,
    };
    let cases = [
        case("one write", vec![(data.len(), false)]),
        case(
            "boundary after the zeros",
            vec![(98_100, false), (data.len(), false)],
        ),
    ];
    for level in [2, 6, 9] {
        check_level(level, &cases, base_seed());
        let go = go_batch(&[(level, &cases[0]), (level, &cases[1])]);
        assert_ne!(
            go[0].out, go[1].out,
            "level {level}: expected Go's output to depend on the boundary"
        );
    }
}

/// The other side of the coin, as a property of Go itself: a `Write` can only
/// move the window slide if it starts while the window is filled to within
/// 258 bytes of its end, i.e. at a stream offset (at least 65278) whose
/// remainder mod 32768 is 32510 or more. Offsets that are multiples of 512,
/// like tar headers and whole 32 KiB chunks of tar data, never are, so such
/// writes give the same output as one big write. Checked on the generated
/// inputs (far repeats included) at levels 2 and 6.
#[test]
fn go_aligned_write_boundaries_match_one_write() {
    let mut rng = Rng(base_seed() ^ 0xa1);
    let aligned: Vec<Case> = cases()
        .iter()
        .map(|c| {
            let mut segments = Vec::new();
            let mut end = 0;
            while end < c.data.len() {
                end = (end + 512 * (1 + rng.below(130))).min(c.data.len());
                segments.push((end, false));
            }
            Case {
                name: format!("{} in 512-aligned writes", c.name),
                data: c.data.clone(),
                segments: if segments.is_empty() {
                    vec![(0, false)]
                } else {
                    segments
                },
                gzip: false,
            }
        })
        .collect();
    let single: Vec<Case> = cases()
        .iter()
        .map(|c| Case {
            name: c.name.clone(),
            data: c.data.clone(),
            segments: vec![(c.data.len(), false)],
            gzip: false,
        })
        .collect();
    for level in [2, 6] {
        let requests: Vec<_> = single.iter().chain(&aligned).map(|c| (level, c)).collect();
        let replies = go_batch(&requests);
        let (one, split) = replies.split_at(single.len());
        for ((case, a), b) in aligned.iter().zip(one).zip(split) {
            assert!(
                a.out == b.out,
                "level {level}: {} differs from one write",
                case.name
            );
        }
    }
}

#[test]
fn invalid_levels_are_rejected_like_go() {
    for level in [-3, 10, i32::MIN, i32::MAX] {
        assert!(Encoder::new(level).is_none(), "level {level}");
    }
}
