//! Compression: recognise how a blob was compressed (`analyze`), decompress it for ingest
//! (`decode`), and rebuild its exact bytes later (`rebuild`). The persisted description of a
//! rebuild lives in `method`; the encoder models in `models`, `goflate` (Go's standard
//! library) and `kpflate` (klauspost/compress and pgzip).

pub mod analyze;
pub mod decode;
pub mod goflate;
pub mod gzip;
pub mod kpflate;
pub mod method;
pub mod models;
pub mod rebuild;

pub use method::{Deflate, GzipMember, Method, PreflatePiece, ZstdFrame};
