//! The verbs: each command's work composed from the layers below.

pub mod fsck;
pub mod pull;
pub mod stats;
