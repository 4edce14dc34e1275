//! Compresses stdin to stdout with booster's port of Go's compress/flate,
//! for bench/goflate-speed.sh (which compares its speed and output with Go's).
//!
//! Usage: goflate_speed [-level N] [-gzip] < input > output
//! Prints the time spent compressing (excluding reading stdin) to stderr.

use std::io::{Read, Write};
use std::time::Instant;

use recompress::goflate::Encoder;

fn main() {
    let mut level = -1;
    let mut gzip = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-level" => level = args.next().and_then(|v| v.parse().ok()).expect("-level N"),
            "-gzip" => gzip = true,
            _ => panic!("usage: goflate_speed [-level N] [-gzip] < input > output"),
        }
    }
    // Stream like Go's reference does (bounded memory, no page-faulting a
    // whole copy of the input), with 32 KiB reads as moby's bufio.Writer
    // feeds Go's compressor.
    let start = Instant::now();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut enc = Encoder::new(level).expect("level must be -2..9");
    let mut out = Vec::with_capacity(2 << 20);
    if gzip {
        // Go's gzip framing: zero Header, XFL by level, OS 255.
        let xfl = [(9, 2), (1, 4)]
            .iter()
            .find(|(l, _)| *l == level)
            .map_or(0, |p| p.1);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
    }
    let mut buf = vec![0; 32 * 1024];
    let (mut crc, mut size) = (Crc32::new(), 0u64);
    loop {
        // Whole 32 KiB chunks, as bufio.Writer passes them on: Go's output
        // can depend on write boundaries, so the two sides must agree.
        let n = read_full(&mut stdin, &mut buf);
        if n == 0 {
            break;
        }
        if gzip {
            crc.update(&buf[..n]);
        }
        size += n as u64;
        enc.write(&buf[..n], &mut out);
        if out.len() >= 1 << 20 {
            stdout.write_all(&out).expect("write stdout");
            out.clear();
        }
    }
    enc.finish(&mut out);
    if gzip {
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(size as u32).to_le_bytes());
    }
    stdout.write_all(&out).expect("write stdout");
    stdout.flush().expect("write stdout");
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "goflate_speed: level {level}: {size} bytes in {secs:.3} s, {:.1} MB/s",
        size as f64 / secs / 1e6
    );
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read stdin: {e}"),
        }
    }
    n
}

/// CRC-32 (IEEE) for the gzip trailer; table-driven to keep it off the profile.
struct Crc32 {
    table: [u32; 256],
    crc: u32,
}

impl Crc32 {
    fn new() -> Self {
        let mut table = [0u32; 256];
        for (i, t) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg());
            }
            *t = c;
        }
        Crc32 { table, crc: !0 }
    }

    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.crc = self.table[((self.crc ^ u32::from(b)) & 0xff) as usize] ^ (self.crc >> 8);
        }
    }

    fn sum(&self) -> u32 {
        !self.crc
    }
}
