//! Rebuild methods (with preflate corrections) decoded from untrusted bytes and then run on
//! a plain text: a wrong method must fail cleanly, never panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::codec::{Reader, Writer};
use booster::compress::{Method, rebuild};

#[path = "shared/preflate.rs"]
mod preflate;
use preflate::quiet_preflate_panics;

fuzz_target!(|data: &[u8]| {
    quiet_preflate_panics();
    // Hostile preflate corrections can make preflate-rs loop forever; booster abandons
    // such a rebuild after a deadline (tests/fuzz_regressions.rs). Keep it short here.
    // SAFETY: set once, before any thread reads it.
    unsafe { std::env::set_var("BOOSTER_PREFLATE_DEADLINE_SECS", "1") };
    let Some((&n, rest)) = data.split_first() else { return };
    let split = (n as usize).min(rest.len());
    let (plain, method_bytes) = rest.split_at(split);
    let mut r = Reader::new(method_bytes);
    let Ok(m) = Method::decode(&mut r) else { return };
    let mut w = Writer::new();
    m.encode(&mut w);
    assert_eq!(Method::decode(&mut Reader::new(&w.buf)).unwrap(), m);
    if let Method::Gzip { members, .. } = &m {
        // Bound the work: methods claiming huge members are refused by the size check.
        if members.iter().map(|x| x.plain_len).sum::<u64>() == plain.len() as u64 {
            let _ = rebuild::rebuild_gzip_bytes(&m, plain);
        }
    }
});
