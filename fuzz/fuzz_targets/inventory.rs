//! The inventory reader, with a round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;

use booster::ops::inventory::Inventory;

fuzz_target!(|data: &[u8]| {
    if let Ok(inv) = Inventory::decode(data) {
        assert_eq!(Inventory::decode(&inv.encode()).unwrap(), inv);
    }
});
