//! Compression: recognise how a blob was compressed (`analyze`), decompress it for ingest
//! (`decode`), and rebuild its exact bytes later (`rebuild`). The persisted description of a
//! rebuild lives in `method`; the encoder models in `models`, `goflate` (Go's standard
//! library) and `kpflate` (klauspost/compress and pgzip); `replay` corrects the closest model
//! where the real encoder decided otherwise (near misses), on `deflate_tokens`.

pub mod analyze;
pub mod decode;
pub mod deflate_tokens;
pub mod goflate;
pub mod gzip;
pub mod kpflate;
pub mod kpzstd;
pub mod method;
pub mod models;
pub mod preflate_worker;
pub mod rebuild;
pub mod replay;
pub mod zstd_frames;

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
