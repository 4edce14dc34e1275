//! booster: move container images between OCI registries, and across air gaps, sending
//! only what the other side lacks, and rebuilding every blob bit-exactly on arrival.
//!
//! Data flows through the modules in this order: `oci` (registries, layouts) → `compress`
//! (decode) → `chunk` → `store` (via `ingest`) → `bundle` → `store` → `reassemble` →
//! `compress` (rebuild) → `oci` (push). `ops` holds the verbs built from them.

pub mod bundle;
pub mod chunk;
pub mod codec;
pub mod compress;
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
pub mod serve;
pub mod store;
pub mod tarindex;
pub mod x86filter;
pub mod zipfile;

pub use error::{Error, Result};
pub mod cli;
pub mod commands;
pub mod output;
