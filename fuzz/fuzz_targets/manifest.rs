//! Manifest and index parsing, and the bundle artifact reader (store-format.md 6.6).
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::oci::manifest;
use booster::ops::artifact;

fuzz_target!(|data: &[u8]| {
    let _ = manifest::parse(data, None);
    let _ = manifest::parse(data, Some(manifest::OCI_INDEX));
    let _ = artifact::parse_bundle_manifest("fuzz", data);
});
