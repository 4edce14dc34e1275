//! The zip reader (jars, wars, wheels inside layers): opening an archive, its outline, and
//! an expansion read from a bundle and rebuilt. An archive booster opens must rebuild to
//! exactly its own bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::zipfile::{Expansion, expand, outline};

fuzz_target!(|data: &[u8]| {
    if let Some(e) = expand(data) {
        assert_eq!(e.rebuild(data.len() as u64).as_deref(), Ok(data));
        let wire = e.encode();
        assert_eq!(Expansion::decode_recipe(&wire), Ok(e.recipe));
    }
    let _ = outline(data);
    if let Ok(e) = Expansion::decode(data.to_vec()) {
        let _ = e.rebuild(1 << 20);
    }
});
