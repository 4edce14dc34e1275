//! Payload frames decoded with a prefix: hostile frames fail cleanly within the declared
//! output size; compressed frames round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::delta::{compress_with_prefix, decompress_with_prefix};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let split = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (prefix, frame) = data[2..].split_at(split);
    let _ = decompress_with_prefix(prefix, frame, 1 << 16);
    let packed = compress_with_prefix(prefix, frame, 3).unwrap();
    assert_eq!(decompress_with_prefix(prefix, &packed, frame.len()).unwrap(), frame);
});
