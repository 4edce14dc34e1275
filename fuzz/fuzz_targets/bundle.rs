//! The bundle reader on whole files: open (volumes, trailer, index), verify every section,
//! decode every section by kind. Must never panic or allocate beyond the section cap.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::bundle::{BundleReader, PayloadSection, SectionKind, format};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bkp");
    std::fs::write(&path, data).unwrap();
    let Ok(reader) = BundleReader::open_with_limit(&path, 4 << 20) else { return };
    if reader.verify(&mut |_, _| {}).is_err() {
        return;
    }
    for i in 0..reader.index.len() {
        let Ok(body) = reader.read(i) else { continue };
        match reader.kind(i) {
            SectionKind::Meta => drop(format::Meta::decode(&body)),
            SectionKind::Recipes => drop(format::decode_plans(&body)),
            SectionKind::Payload => drop(PayloadSection::decode(&body)),
            SectionKind::Blobs => drop(format::decode_blobs(&body)),
            SectionKind::Docs => drop(format::decode_docs(&body)),
            SectionKind::Index => {}
        }
    }
});
