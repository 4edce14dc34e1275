//! The verbs: each command's work composed from the layers below.

pub mod apply;
pub mod artifact;
pub mod diff;
pub mod export;
pub mod fsck;
pub mod gc;
pub mod import;
pub mod inspect;
pub mod inventory;
pub mod make_bundle;
pub mod pull;
pub mod push;
pub mod push_attached;
pub mod signed;
pub mod stats;
