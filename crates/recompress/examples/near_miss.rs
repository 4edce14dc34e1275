//! The near-miss experiment: how many correction bytes a model needs to rebuild a gzip blob
//! that another encoder (or another version) wrote, against the blob carried whole.
//!
//! ```text
//! near_miss BLOB.gz PLAIN MODEL...
//! ```
//!
//! `PLAIN` is the blob's decompressed content (a tar). Each MODEL is `go:LEVEL` (Go ≤ 1.26
//! compress/flate), `zlib:LEVEL`, or `kp1.15:LEVEL`, `kp1.18:LEVEL`, `kp1.20:LEVEL`,
//! `go1.27:LEVEL` (the klauspost family, one stream). For each, the model's output is
//! corrected into the blob (`recompress::replay`), the result is rebuilt and checked
//! byte for byte, and a Markdown row gives the correction bytes, their share of the blob,
//! and the time of the analysis and of the rebuild. `bench/near-miss.sh` runs the pairs the
//! closing note reports.

use std::io::{Read, Write};
use std::time::Instant;

use recompress::kpflate::{Encoder, Variant};
use recompress::{gzip, replay};

fn model_output(model: &str, plain: &[u8]) -> Result<Vec<u8>, String> {
    let (family, level) = model.split_once(':').ok_or("MODEL is FAMILY:LEVEL")?;
    let level: i32 = level.parse().map_err(|_| "bad level")?;
    let variant = match family {
        "kp1.15" => Some(Variant::Kp1_15),
        "kp1.18" => Some(Variant::Kp1_18),
        "kp1.20" => Some(Variant::Kp1_20),
        "go1.27" => Some(Variant::Go1_27),
        _ => None,
    };
    let mut out = Vec::with_capacity(plain.len() / 2);
    match (family, variant) {
        (_, Some(v)) => {
            let mut e = Encoder::with_variant(level, v).ok_or("bad level")?;
            e.write(plain, &mut out);
            e.finish(&mut out);
        }
        ("go", None) => {
            let mut e = recompress::goflate::Encoder::new(level).ok_or("bad level")?;
            e.write(plain, &mut out);
            e.finish(&mut out);
        }
        ("zlib", None) => {
            let mut c = flate2::Compress::new(flate2::Compression::new(level as u32), false);
            out.reserve(plain.len() + 1024);
            c.compress_vec(plain, &mut out, flate2::FlushCompress::Finish)
                .map_err(|e| e.to_string())?;
        }
        _ => return Err(format!("unknown model family {family}")),
    }
    Ok(out)
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: near_miss BLOB.gz PLAIN MODEL...".into());
    }
    let blob = std::fs::read(&args[0]).map_err(|e| format!("{}: {e}", args[0]))?;
    let mut plain = Vec::new();
    std::fs::File::open(&args[1])
        .and_then(|mut f| f.read_to_end(&mut plain))
        .map_err(|e| format!("{}: {e}", args[1]))?;
    let h = gzip::parse_header(&blob).map_err(|e| format!("{}: {e:?}", args[0]))?;
    let body = &blob[h.len..blob.len() - 8];
    let mut stdout = std::io::stdout();
    for model in &args[2..] {
        let t = Instant::now();
        let m = model_output(model, &plain)?;
        let encode = t.elapsed().as_secs_f64();
        if m == body {
            writeln!(stdout, "| {model} | exact | 0 B | 0 % | {encode:.1} s | – |").ok();
            continue;
        }
        let t = Instant::now();
        let row = match replay::diff(body, &m[..], body.len() * 2) {
            Ok(c) => {
                let analysis = encode + t.elapsed().as_secs_f64();
                let t = Instant::now();
                let mut rebuilt = Vec::with_capacity(body.len());
                replay::apply(&m[..], &c, &mut rebuilt).map_err(|e| e.to_string())?;
                let apply = encode + t.elapsed().as_secs_f64();
                if rebuilt != body {
                    return Err(format!("{model}: the rebuild differs"));
                }
                format!(
                    "| {model} | near miss | {} B | {:.3} % | {analysis:.1} s | {apply:.1} s |",
                    c.len(),
                    100.0 * c.len() as f64 / blob.len() as f64
                )
            }
            Err(why) => format!("| {model} | not near ({why:?}) | – | – | – | – |"),
        };
        writeln!(stdout, "{row}").ok();
    }
    Ok(())
}
