//! Single-threaded throughput of `recompress::kpflate`: stdin → the
//! deflate body of a pgzip stream (no gzip header or trailer) on stdout.
//!
//! ```text
//! kpflate_speed [-level N] [-block BYTES] [-raw] [-gzip] [-variant V] < in > out
//! ```
//!
//! `-variant` picks the version of the family: `1.15` (default), `1.18`, `1.20`, `go1.27`.
//! `-raw` writes one plain flate stream (`Encoder`) instead of pgzip blocks;
//! `-gzip` frames the pgzip body as pgzip does (header, CRC-32 and size), so
//! the output can be compared with Go's byte for byte.
//! Input is streamed in 1 MiB reads, like Go's `io.Copy`. The elapsed time
//! (reading and writing included) goes to stderr as `secs=…`;
//! `bench/kpflate-speed.sh` compares whole-process times with Go.

use recompress::kpflate::{Encoder, PgzipEncoder, Variant, pgzip_header};
use std::io::{Read, Write};
use std::time::Instant;

struct Args {
    level: i32,
    block: usize,
    raw: bool,
    gzip: bool,
    variant: Variant,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        level: -1,
        block: 1 << 20,
        raw: false,
        gzip: false,
        variant: Variant::Kp1_15,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.trim_start_matches('-') {
            "level" => a.level = value("-level")?.parse().map_err(|e| format!("-level: {e}"))?,
            "block" => a.block = value("-block")?.parse().map_err(|e| format!("-block: {e}"))?,
            "raw" => a.raw = true,
            "gzip" => a.gzip = true,
            "variant" => {
                a.variant = match value("-variant")?.as_str() {
                    "1.15" => Variant::Kp1_15,
                    "1.18" => Variant::Kp1_18,
                    "1.20" => Variant::Kp1_20,
                    "go1.27" => Variant::Go1_27,
                    v => return Err(format!("-variant: unknown {v}")),
                }
            }
            other => return Err(format!("unknown flag -{other}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!(
            "kpflate_speed: {e}\nusage: kpflate_speed [-level N] [-block BYTES] [-raw] [-gzip] [-variant V]"
        );
        std::process::exit(2);
    });
    let mut sink = Sink::new(args.raw, args.level, args.block, args.variant);
    let mut stdout = std::io::stdout().lock();
    let mut stdin = std::io::stdin().lock();
    let mut out = Vec::with_capacity(2 << 20);
    if args.gzip {
        out.extend_from_slice(&pgzip_header(args.level));
    }
    // Stream 1 MiB reads through, like Go's io.Copy, so memory stays flat.
    let mut buf = vec![0u8; 1 << 20];
    let (mut total_in, mut total_out) = (0usize, 0usize);
    let mut crc = Crc32::new();
    let start = Instant::now();
    loop {
        let n = read_full(&mut stdin, &mut buf);
        if n == 0 {
            break;
        }
        total_in += n;
        if args.gzip {
            crc.update(&buf[..n]);
        }
        sink.write(&buf[..n], &mut out);
        total_out += out.len();
        stdout.write_all(&out).expect("write stdout");
        out.clear();
    }
    sink.finish(&mut out);
    if args.gzip {
        out.extend_from_slice(&crc.value().to_le_bytes());
        out.extend_from_slice(&(total_in as u32).to_le_bytes());
    }
    total_out += out.len();
    stdout.write_all(&out).expect("write stdout");
    stdout.flush().expect("flush stdout");
    let secs = start.elapsed().as_secs_f64();
    eprintln!("secs={secs:.4} in={total_in} out={total_out}");
}

/// Reads until `buf` is full or stdin ends.
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

enum Sink {
    Raw(Encoder),
    Pgzip(PgzipEncoder),
}

impl Sink {
    fn new(raw: bool, level: i32, block: usize, variant: Variant) -> Sink {
        if raw {
            Sink::Raw(Encoder::with_variant(level, variant).expect("level must be in -2..=9"))
        } else {
            Sink::Pgzip(
                PgzipEncoder::with_variant(level, block, variant)
                    .expect("level must be in -2..=9 and -block above 16384"),
            )
        }
    }

    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Sink::Raw(e) => e.write(input, out),
            Sink::Pgzip(e) => e.write(input, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Sink::Raw(e) => e.finish(out),
            Sink::Pgzip(e) => e.finish(out),
        }
    }
}

/// CRC-32 (IEEE) for the gzip trailer, bytewise with a table.
struct Crc32 {
    table: [u32; 256],
    crc: u32,
}

impl Crc32 {
    fn new() -> Crc32 {
        let mut table = [0u32; 256];
        for (i, t) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *t = c;
        }
        Crc32 { table, crc: !0 }
    }

    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.crc = self.table[((self.crc ^ b as u32) & 0xff) as usize] ^ (self.crc >> 8);
        }
    }

    fn value(&self) -> u32 {
        !self.crc
    }
}
