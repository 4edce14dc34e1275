//! Compresses stdin to stdout with booster's port of Go's compress/flate,
//! for bench/goflate-speed.sh (which compares its speed and output with Go's).
//!
//! Usage: goflate_speed [-level N] [-gzip] < input > output
//! Prints the time spent compressing (excluding reading stdin) to stderr.

use std::io::{Read, Write};
use std::time::Instant;

use booster::compress::goflate::Encoder;

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
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).expect("read stdin");

    let start = Instant::now();
    let mut enc = Encoder::new(level).expect("level must be -2..9");
    let mut out = Vec::with_capacity(input.len() / 2);
    if gzip {
        // Go's gzip framing: zero Header, XFL by level, OS 255.
        let xfl = [(9, 2), (1, 4)]
            .iter()
            .find(|(l, _)| *l == level)
            .map_or(0, |p| p.1);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
    }
    // 32 KiB writes, as moby's bufio.Writer feeds Go's compressor.
    for chunk in input.chunks(32 * 1024) {
        enc.write(chunk, &mut out);
    }
    enc.finish(&mut out);
    let secs = start.elapsed().as_secs_f64();
    if gzip {
        out.extend_from_slice(&crc32(&input).to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    }
    std::io::stdout().write_all(&out).expect("write stdout");
    eprintln!(
        "goflate_speed: level {level}: {} -> {} bytes in {secs:.3} s, {:.1} MB/s",
        input.len(),
        out.len(),
        input.len() as f64 / secs / 1e6
    );
}

/// CRC-32 (IEEE) for the gzip trailer; table-driven to keep it off the profile.
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg());
        }
        *t = c;
    }
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}
