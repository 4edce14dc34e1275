//! booster: move container images between OCI registries, and across air gaps, sending
//! only what the other side lacks, and rebuilding every blob bit-exactly on arrival.
//!
//! Data flows through the modules in this order: `oci` (registries, layouts) →
//! `recompress::decode` → `chunk` → `store` (via `ingest`, with `layer` asking
//! `recompress::analyze` how each blob was compressed) → `bundle` → `store` → `reassemble` →
//! `rebuild` (the store's plain text through `recompress::rebuild`) → `oci` (push). `ops` holds
//! the verbs built from them. The encoder models live in their own crate, `recompress`
//! (crates/recompress), which knows nothing of the store.

pub mod bundle;
pub mod chunk;
pub mod codec;
pub mod delta;
pub mod error;
pub mod graph;
pub mod id;
pub mod ingest;
pub mod layer;
pub mod oci;
pub mod ops;
pub mod ordered;
pub mod reassemble;
pub mod rebuild;
pub mod serve;
pub mod store;
pub mod tarindex;
pub mod x86filter;
pub mod zipfile;

pub use error::{Error, Result};
pub mod cli;
pub mod commands;
pub mod output;
