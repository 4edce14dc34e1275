//! Manifest and index parsing, the bundle artifact reader (store-format.md 6.6) and what a
//! manifest says it refers to (signatures, referrers; store-format.md 3.9).
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::oci::{manifest, referrers};
use booster::ops::artifact;

fuzz_target!(|data: &[u8]| {
    let _ = manifest::parse(data, None);
    let _ = manifest::parse(data, Some(manifest::OCI_INDEX));
    let _ = artifact::parse_bundle_manifest("fuzz", data);
    let _ = referrers::attached("reg/app:sha256-00.sig", data);
    let _ = referrers::attached("reg/app@sha256:00", data);
    let _ = referrers::artifact_type_of(data);
    let entry = referrers::index_entry(&booster::id::Digest::of(data), manifest::OCI_MANIFEST, data);
    let _ = referrers::merge_into_tag_index(Some(data), entry);
});
