//! Image references, destinations and image list files.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::oci::reference::{Destination, ImageRef, parse_image_list};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = ImageRef::parse(s) {
        // What parses prints to something that parses to the same reference.
        let again = ImageRef::parse(&r.to_string()).expect("display output parses");
        if let (ImageRef::Registry(a), ImageRef::Registry(b)) = (&r, &again) {
            assert_eq!(a, b);
        }
    }
    let _ = Destination::parse(s);
    let _ = parse_image_list(std::path::Path::new("list.txt"), s);
});
