//! Bit-exact recompression: find which encoder made a gzip or zstd stream, describe it
//! (`Method`), and rebuild the stream byte for byte from its plain text later.
//!
//! Layers, from the top:
//! - `analyze`: find and prove the method of a blob (the plain text comes through
//!   `analyze::PlainText`); `decode` splits a blob into members and frames while
//!   decompressing it.
//! - `rebuild`: a method over a plain stream, back to the blob's bytes.
//! - `encode`: running one model over a stream; `models` names the models a `Method` can
//!   ask for.
//! - the models: `goflate` (Go's compress/flate up to 1.26), `kpflate` (klauspost/compress
//!   flate, pgzip and Go 1.27's port of it), `kpzstd` (klauspost/compress zstd), zlib through
//!   flate2 and libzstd through zstd; `replay` corrects the closest model where the real
//!   encoder decided otherwise (near misses), on `deflate_tokens`; preflate (`preflate_worker`)
//!   takes what no model reproduces.
//! - `deflate`: what the deflate models share (bit writer, Huffman codes, token tables).
//! - `method` and `codec`: the persisted descriptions and their byte encoding.
//!
//! Nothing here needs a store, an async runtime or a network.

pub mod analyze;
pub mod codec;
pub mod decode;
pub(crate) mod deflate;
pub mod deflate_tokens;
pub mod encode;
pub mod error;
pub mod goflate;
pub mod gzip;
pub mod kpflate;
pub mod kpzstd;
pub mod method;
pub mod models;
pub mod preflate_worker;
pub mod rebuild;
pub mod replay;
mod versions;

pub use error::{Error, Result};
pub use method::{
    Deflate, GzipMember, KpVariant, KzSpeed, KzVariant, Method, PreflatePiece, ZstdFrame, ZstdModel,
};

thread_local! {
    static IN_PREFLATE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run third-party preflate code, turning its panics (it has some on damaged input) into
/// `None`. While it runs, `inside_preflate()` is true on this thread, so a panic hook can
/// stay quiet about panics that are caught here.
pub fn guard_preflate<T>(f: impl FnOnce() -> T) -> Option<T> {
    IN_PREFLATE.with(|c| c.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    IN_PREFLATE.with(|c| c.set(false));
    r
}

/// True while `guard_preflate` runs on this thread.
pub fn inside_preflate() -> bool {
    IN_PREFLATE.with(|c| c.get())
}
