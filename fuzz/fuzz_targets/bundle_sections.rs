//! Every bundle section decoder on raw bodies; what decodes must re-encode to something
//! that decodes to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::bundle::{PayloadSection, format};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    match which % 6 {
        0 => {
            if let Ok(m) = format::Meta::decode(body) {
                assert_eq!(format::Meta::decode(&m.encode()).unwrap(), m);
            }
        }
        1 => {
            if let Ok(p) = format::decode_plans(body) {
                assert_eq!(format::decode_plans(&format::encode_plans(&p)).unwrap(), p);
            }
        }
        2 => {
            if let Ok(s) = PayloadSection::decode(body) {
                assert_eq!(PayloadSection::decode(&s.encode()).unwrap(), s);
            }
        }
        3 => {
            if let Ok(b) = format::decode_blobs(body) {
                assert_eq!(format::decode_blobs(&format::encode_blobs(&b)).unwrap(), b);
            }
        }
        4 => {
            if let Ok(d) = format::decode_docs(body) {
                assert_eq!(format::decode_docs(&format::encode_docs(&d)).unwrap(), d);
            }
        }
        _ => {
            if let Ok(i) = format::decode_index(body) {
                assert_eq!(format::decode_index(&format::encode_index(&i)).unwrap(), i);
            }
            let _ = format::Header::decode(body);
            let _ = format::SectionHeader::decode(body);
            let _ = format::Trailer::decode(body);
        }
    }
});
