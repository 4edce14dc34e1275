//! The gzip header parser and the multi-member gzip and zstd decoders (which also record
//! the blob layout), bounded in output.
#![no_main]
use libfuzzer_sys::fuzz_target;

use std::io::Read;

use recompress::decode::{GzipDecoder, ZstdDecoder};
use recompress::gzip;

#[path = "shared/preflate.rs"]
mod preflate;
use preflate::quiet_preflate_panics;

fuzz_target!(|data: &[u8]| {
    quiet_preflate_panics();
    if let Ok(h) = gzip::parse_header(data) {
        assert!(h.len <= data.len());
    }
    let mut out = Vec::new();
    let mut d = GzipDecoder::new(data);
    if (&mut d).take(8 << 20).read_to_end(&mut out).is_ok() {
        let l = d.layout();
        assert!(l.members.iter().all(|m| m.body.start <= m.body.end && m.body.end <= data.len() as u64));
    }
    if let Ok(mut z) = ZstdDecoder::new(data) {
        out.clear();
        let _ = (&mut z).take(8 << 20).read_to_end(&mut out);
    }
    // Model trials and preflate are slow on big inputs: keep the fuzzer's pace up.
    if data.len() < 64 << 10 {
        let _ = recompress::analyze::analyze_gzip_bytes(data, 4 << 20);
    }
});
