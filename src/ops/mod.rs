//! The verbs: each command's work composed from the layers below.

pub mod fsck;
pub mod inspect;
pub mod pull;
pub mod push;
pub mod stats;
