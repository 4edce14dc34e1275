//! Bundles (`.bkp`): what a receiver lacks to rebuild a set of images, in one file (or in
//! volumes) that survives a trip on a USB stick. See `store-format.md`, section 6.
//!
//! `format` holds the byte layouts; `writer` streams sections out with checksums and the
//! trailing index; `reader` verifies a whole bundle before anything is used and then hands
//! out sections. The payload's content (deltas against the receiver's files) is planned and
//! encoded in `crate::delta`.

pub mod format;
pub mod reader;
pub mod writer;

pub use format::{
    BaseEntry, BundleImage, Filters, Inner, InnerGzip, InnerZip, Meta, PayloadGroup, PayloadSection, Piece,
    SectionKind, Segment, StreamPlan,
};
pub use reader::BundleReader;
pub use writer::BundleWriter;
