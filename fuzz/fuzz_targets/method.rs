//! Rebuild methods decoded from untrusted bytes (gzip with any deflate model, preflate
//! corrections and near-miss replays; zstd frames of every model, wrapped or verbatim) and
//! then run on a plain text: a wrong method must fail cleanly, never panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

use recompress::codec::{Reader, Writer};
use std::sync::OnceLock;

use recompress::{Deflate, Method, rebuild};

#[path = "shared/preflate.rs"]
mod preflate;
use preflate::quiet_preflate_panics;

/// Whether preflate rebuilds can run: only in child processes of the booster binary
/// (`BOOSTER_PREFLATE_WORKER`, set by fuzz/run.sh), as the CLI runs them. Hostile
/// corrections make preflate-rs loop forever while allocating, and an in-process rebuild
/// abandoned at its deadline keeps spinning: in a fuzzer every such input would leave a
/// thread behind, eating the cores and growing until libFuzzer's memory limit stops the
/// run with an empty "crash". A killed child leaves nothing behind.
fn preflate_in_workers() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        quiet_preflate_panics();
        // SAFETY: set once, before any thread reads it.
        unsafe { std::env::set_var("BOOSTER_PREFLATE_DEADLINE_SECS", "1") };
        match std::env::var_os("BOOSTER_PREFLATE_WORKER") {
            Some(exe) => {
                recompress::preflate_worker::enable(exe.into());
                true
            }
            None => false,
        }
    })
}

fn uses_preflate(d: &Deflate) -> bool {
    match d {
        Deflate::Preflate { .. } => true,
        Deflate::Replay { model, .. } => uses_preflate(model),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let preflate_ok = preflate_in_workers();
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
            let runnable = preflate_ok || !members.iter().any(|x| uses_preflate(&x.deflate));
            if runnable && members.iter().map(|x| x.plain_len).sum::<u64>() == plain.len() as u64 {
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
