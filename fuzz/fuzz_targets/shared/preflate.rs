//! Shared by the targets that run preflate (`#[path]`-included: not a target itself).

/// preflate-rs panics on some damaged input; booster catches those (`guard_preflate`).
/// libFuzzer's hook would report them as crashes: keep it for every other panic.
pub fn quiet_preflate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !recompress::inside_preflate() {
                fuzzer_hook(info);
            }
        }));
    });
}
