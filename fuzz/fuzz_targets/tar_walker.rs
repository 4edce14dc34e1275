//! The tar entry walker, fed in pieces: offsets stay inside the stream, and the split does
//! not change the result.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::tarindex::TarWalker;

fuzz_target!(|data: &[u8]| {
    let Some((&k, tar)) = data.split_first() else { return };
    let mut whole = TarWalker::new();
    whole.push(tar);
    let whole = whole.finish();
    let mut parts = TarWalker::new();
    for p in tar.chunks(k as usize + 1) {
        parts.push(p);
    }
    assert_eq!(parts.finish(), whole);
    for e in &whole {
        assert!(e.offset <= tar.len() as u64);
    }
});
