//! Images in and out: references, image lists, manifests, registries, OCI layouts and
//! docker-archive tarballs.

pub mod archive;
pub mod auth;
pub mod cosign;
pub mod layout;
pub mod manifest;
pub mod reference;
pub mod referrers;
pub mod registry;
pub mod source;
