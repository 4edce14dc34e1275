//! The cosign signature checks of `--verify-key` (store-format.md 8.1): an attached
//! manifest and the bytes of its signature layer, from an untrusted bundle or registry.
//! Input: manifest ‖ 0xff ‖ layer bytes (the golden cosign files are the seeds).
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::id::Digest;
use booster::oci::cosign::{self, TrustedKeys};

const KEY: &[u8] = include_bytes!("../../tests/golden/cosign/cosign.pub");

fuzz_target!(|data: &[u8]| {
    let (manifest, layer) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let keys = TrustedKeys::from_pem("cosign.pub", KEY).expect("the golden key");
    let subject = Digest::of(b"image");
    let layer = layer.to_vec();
    let _ = cosign::check(&keys, &subject, manifest, &mut |_| Ok(layer.clone()));
    let _ = cosign::check_sigstore_bundle(&keys, &subject, &layer);
});
