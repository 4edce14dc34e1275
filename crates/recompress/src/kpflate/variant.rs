//! Which version of the klauspost/compress flate family a stream came from.
//!
//! klauspost/compress changed its deflate output at 1.18.0 and 1.20.x, and Go 1.27's
//! `compress/flate` is a port of klauspost 1.20.3 with two changes of its own. The encoder
//! code is shared; each behaviour that differs between versions is one switch (a column of
//! `VERSIONS`), and a variant is a row: the switches that version has. A new version is a
//! new row and, if it changes something new, a new column read where the encoder decides
//! it: never a copy of the encoder.
//!
//! Which switch belongs to which version was found by reading the Go sources side by side
//! and confirmed with patched Go builds (each switch alone turns one version's output into
//! the next one's); `tests/kpflate_differential.rs` checks every variant against the real
//! Go encoder built from Debian's packages.

crate::versions::versions! {
    /// A version of the klauspost flate family. The order is the order of history.
    pub struct Variant;
    versions {
        /// klauspost/compress 1.15.12 (same output up to 1.17.11).
        Kp1_15 = 0,
        /// klauspost/compress 1.18.0 (1.18.x, 1.19.x).
        Kp1_18 = 1,
        /// klauspost/compress 1.20.3.
        Kp1_20 = 2,
        /// Go 1.27's standard library `compress/flate`.
        Go1_27 = 3,
    }
    behaviour Behaviour {
        default_level: i32,
        level4_distance_as_position: bool,
        lazy_end_check_extends_back: bool,
        gain_threshold_and_base_cost: (i64, i64),
        open_blocks_trim_code_counts: bool,
        level9_histogram_capped: bool,
        dictionary_moves_block_start: bool,
        literal_cost_at_least_one_bit: bool,
    }
    // name              default lvl4 lazy   gain    trim   l9cap  dict   lit1
    rows [
        ("klauspost 1.15", 5, false, false, (0, 6), false, false, false, false),
        ("klauspost 1.18", 5, true,  true,  (4, 3), false, false, false, false),
        ("klauspost 1.20", 5, true,  true,  (4, 3), true,  true,  true,  false),
        ("go1.27",         6, true,  true,  (4, 3), true,  true,  true,  true),
    ]
}

impl Variant {
    /// What `DefaultCompression` (−1) means: klauspost maps it to level 5, Go 1.27 to 6.
    pub fn default_level(self) -> i32 {
        self.behaviour().default_level
    }

    /// Level 4 (from 1.18.0): the long candidate at s+1 is compared at its *distance* used
    /// as a position (`src[nextS-lOff+4:]` after `lOff` became a position), a bug that Go
    /// 1.27 kept.
    pub(crate) fn level4_distance_as_position(self) -> bool {
        self.behaviour().level4_distance_as_position
    }

    /// Levels 7–9 (from 1.18.0): when the previous match wins, look for a longer match
    /// ending where it ends by hashing at its end, then extend it back over two bytes,
    /// emitting the ones that do not match as literals (the earlier check hashed two bytes
    /// before the end and only compared lengths).
    pub(crate) fn lazy_end_check_extends_back(self) -> bool {
        self.behaviour().lazy_end_check_extends_back
    }

    /// Level 9's match gain: (minimum gain, base cost). 1.15 accepted any gain over 0 with
    /// a base cost of 6 bits; from 1.18.0 a match must gain over 4 with a base cost of 3.
    pub(crate) fn gain_threshold_and_base_cost(self) -> (i64, i64) {
        self.behaviour().gain_threshold_and_base_cost
    }

    /// Blocks left open (no sync) declare only the literal/length and offset codes they
    /// use, with an end-of-block code counted, instead of all 286 + 30 (from 1.20).
    pub(crate) fn open_blocks_trim_code_counts(self) -> bool {
        self.behaviour().open_blocks_trim_code_counts
    }

    /// Level 9's literal table is built from at most the first 32 KiB of the unprocessed
    /// window (from 1.20).
    pub(crate) fn level9_histogram_capped(self) -> bool {
        self.behaviour().level9_histogram_capped
    }

    /// A dictionary (`ResetDict`, as pgzip primes each block) moves the start of the next
    /// block past it for levels 7–9 (from 1.20), so the first block's stored-size estimate
    /// no longer covers the dictionary.
    pub(crate) fn dictionary_moves_block_start(self) -> bool {
        self.behaviour().dictionary_moves_block_start
    }

    /// Level 9 prices a literal at no less than 1 bit when weighing a match (Go 1.27 only;
    /// klauspost prices a byte missing from its table at 0).
    pub(crate) fn literal_cost_at_least_one_bit(self) -> bool {
        self.behaviour().literal_cost_at_least_one_bit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_stay_fixed() {
        for v in Variant::ALL {
            assert_eq!(Variant::from_id(v.id()), Some(v));
        }
        // Stored in blob records: these numbers never change.
        assert_eq!(
            Variant::ALL.map(Variant::id),
            [0, 1, 2, 3],
            "variant ids are part of the store format"
        );
        assert_eq!(Variant::from_id(4), None);
    }
}
