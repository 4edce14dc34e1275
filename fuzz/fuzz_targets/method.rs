//! Rebuild methods decoded from untrusted bytes (gzip with any deflate model, preflate
//! corrections and near-miss replays; zstd frames of every model, wrapped or verbatim) and
//! then run on a plain text: a wrong method must fail cleanly, never panic or hang.
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
    // Bound the work: methods claiming other sizes than the text's are refused at once.
    match &m {
        Method::Gzip { members, .. } => {
            if members.iter().map(|x| x.plain_len).sum::<u64>() == plain.len() as u64 {
                let _ = rebuild::rebuild_gzip_bytes(&m, plain);
            }
        }
        Method::Zstd { frames } => {
            if frames.iter().map(|x| x.plain_len).sum::<u64>() == plain.len() as u64 {
                let _ = rebuild::rebuild_zstd_bytes(&m, plain);
            }
        }
        _ => {}
    }
});
