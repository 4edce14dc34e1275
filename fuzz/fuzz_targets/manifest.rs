//! Manifest and index parsing.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::oci::manifest;

fuzz_target!(|data: &[u8]| {
    let _ = manifest::parse(data, None);
    let _ = manifest::parse(data, Some(manifest::OCI_INDEX));
});
