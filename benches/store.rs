//! `cargo bench --bench store`: the chunk store's stages on one buffer, each as a ratio to
//! sha256 of the same bytes in the same process (the cost every path pays anyway: a layer's
//! diff_id). Without `--bench` (as `cargo test --all-targets` runs it) it does a small
//! smoke run, to keep it working.
//!
//! Stages: ingest (FastCDC + BLAKE3 + zstd-1 + RocksDB/BlobDB writes), reading the stream
//! back the way a push does (proved by the stream digest), and range reads of 16 KiB
//! neighbours the way a payload group reads its references (each chunk checked), without
//! and with the last decoded chunk kept for the next read (`LastChunk`).

use std::io::Read;
use std::time::Instant;

use booster::id::Sha256;
use booster::ingest::{IngestOptions, ingest};
use booster::reassemble::{ChunkCheck, ContentReader, LastChunk, read_range, read_range_with};
use booster::store::Store;

/// Text-like bytes (zstd-1 compresses them about 3×, like a layer of scripts and docs),
/// with a share of random blocks (like binaries).
fn layer_like(len: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 12] = [
        b"usr", b"lib", b"share", b"python3", b"import", b"def", b"return", b"self", b"the", b"of", b"\n",
        b"  ",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(len + 4096);
    while out.len() < len {
        if next() % 8 == 0 {
            for _ in 0..512 {
                out.extend_from_slice(&next().to_le_bytes());
            }
        } else {
            for _ in 0..512 {
                out.extend_from_slice(WORDS[(next() % 12) as usize]);
                out.push(b' ');
            }
        }
    }
    out.truncate(len);
    out
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let len = if full { 256 << 20 } else { 4 << 20 };
    let data = layer_like(len);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store")).expect("store");

    let (digest, t_sha) = timed(|| {
        let mut h = Sha256::new();
        h.update(&data);
        h.finish()
    });
    let (out, t_ingest) = timed(|| {
        ingest(
            &store,
            &mut &data[..],
            "bench data",
            IngestOptions::default(),
            &mut |_| {},
        )
        .expect("ingest")
    });
    assert_eq!(out.digest(), digest);
    let recipe = store.recipe(&digest).expect("recipe").expect("stored");
    let (n, t_read) = timed(|| {
        let mut r = ContentReader::open(&store, &digest).expect("reader");
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0;
        loop {
            let k = r.read(&mut buf).expect("read back");
            if k == 0 {
                break n;
            }
            n += k;
        }
    });
    assert_eq!(n, len);
    let offsets = recipe.offsets();

    // Neighbouring 16 KiB files, each read on its own, as a payload group's references are.
    let neighbours = |keep_last: bool| {
        const FILE: u64 = 16 << 10;
        let mut last = LastChunk::default();
        let mut n = 0;
        for at in (0..len as u64).step_by(FILE as usize) {
            let b = if keep_last {
                read_range_with(&store, &recipe, &offsets, at, FILE, ChunkCheck::Each, &mut last)
            } else {
                read_range(&store, &recipe, &offsets, at, FILE, ChunkCheck::Each)
            };
            n += b.expect("range read").len();
        }
        n
    };
    let (n, t_ranges) = timed(|| neighbours(false));
    assert_eq!(n, len);
    let (n, t_ranges_kept) = timed(|| neighbours(true));
    assert_eq!(n, len);

    let mbps = |t: f64| len as f64 / 1e6 / t;
    println!(
        "store bench: {} MB of layer-like bytes, {} cores\n",
        len / 1_000_000,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| stage | MB/s | vs sha256 of the same bytes |");
    println!("|---|---|---|");
    println!("| sha256 (reference) | {:.0} | 1.00× |", mbps(t_sha));
    for (name, t) in [
        ("ingest: FastCDC + BLAKE3 + zstd-1 + RocksDB", t_ingest),
        ("read back, proved by the stream digest", t_read),
        ("16 KiB range reads, each chunk decoded per read", t_ranges),
        ("16 KiB range reads, last chunk kept (`LastChunk`)", t_ranges_kept),
    ] {
        println!("| {name} | {:.0} | {:.2}× |", mbps(t), t_sha / t);
    }
    println!(
        "\nstored {} chunks, {:.1} MB on disk for {:.1} MB",
        out.chunks,
        out.stored_bytes as f64 / 1e6,
        len as f64 / 1e6
    );
}
