//! Store records (recipes, tar indexes, blob records, documents, image records, chunk
//! info), with round trips.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::store::records::{self, BlobRecord, ChunkInfo, Doc, ImageRecord, Recipe};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    match which % 6 {
        0 => {
            if let Ok(r) = Recipe::decode(body) {
                assert_eq!(Recipe::decode(&r.encode()).unwrap(), r);
                let _ = r.offsets();
            }
        }
        1 => {
            if let Ok(t) = records::decode_tar_index(body) {
                assert_eq!(records::decode_tar_index(&records::encode_tar_index(&t)).unwrap(), t);
            }
        }
        2 => {
            if let Ok(b) = BlobRecord::decode(body) {
                assert_eq!(BlobRecord::decode(&b.encode()).unwrap(), b);
                let _ = b.method.describe();
            }
        }
        3 => {
            if let Ok(d) = Doc::decode(body) {
                assert_eq!(Doc::decode(&d.encode()).unwrap(), d);
            }
        }
        4 => {
            if let Ok(i) = ImageRecord::decode(body) {
                assert_eq!(ImageRecord::decode(&i.encode()).unwrap(), i);
            }
        }
        _ => {
            if let Ok(c) = ChunkInfo::decode(body) {
                assert_eq!(ChunkInfo::decode(&c.encode()).unwrap(), c);
            }
        }
    }
});
