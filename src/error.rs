//! The library's error type.
//!
//! Rules: every variant names what it concerns (a path, a digest, an image reference, a
//! registry, a bundle section) and, where there is one, what the user can do next. Lower-level
//! errors are wrapped, never stringified away, so `source()` chains stay intact.

use std::io;
use std::path::PathBuf;

use crate::id::{ChunkId, Digest};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store {path} is in use by pid {pid}; wait for that booster to finish, or use another --store")]
    StoreInUse { path: PathBuf, pid: String },

    #[error(
        "store {path} has format version {found}, newer than this booster understands ({supported}); upgrade booster"
    )]
    StoreTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error(
        "store {path} was created with chunker {found}, this booster chunks with {expected}; use another --store"
    )]
    ChunkerMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },

    #[error("store {path}: {message}")]
    StoreFormat { path: PathBuf, message: String },

    #[error("store {path}: database error: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },

    #[error(
        "no space left on the device holding store {path}: free space there and rerun (nothing stored so far is lost)"
    )]
    NoSpace { path: PathBuf },

    #[error(
        "chunk {id} is missing from store {path}: import the base bundle or pull the base images first, then run `booster fsck`"
    )]
    ChunkMissing { path: PathBuf, id: ChunkId },

    #[error(
        "chunk {id} in store {path} is corrupt ({reason}); run `booster fsck` and re-pull the images that use it"
    )]
    ChunkCorrupt {
        path: PathBuf,
        id: ChunkId,
        reason: String,
    },

    #[error("{kind} {digest} is not in store {path}{hint}")]
    NotInStore {
        path: PathBuf,
        kind: &'static str,
        digest: Digest,
        hint: &'static str,
    },

    #[error("{kind} record {key} in store {path} is malformed: {reason}; run `booster fsck`")]
    BadRecord {
        path: PathBuf,
        kind: &'static str,
        key: String,
        reason: String,
    },

    #[error("{what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },

    #[error("invalid image reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },

    #[error("{file}:{line}: {reason}")]
    ImageList {
        file: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("registry {registry}: {image}: {message}")]
    Registry {
        registry: String,
        image: String,
        message: String,
    },

    #[error("{what}: {reason}")]
    Format { what: String, reason: String },

    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },

    #[error("layer {digest}: {reason}")]
    Rebuild { digest: Digest, reason: String },

    #[error("{0}")]
    Usage(String),

    #[error(
        "refusing to push: no cosign signature by {keys} verified for {images}; those images were not pushed (sign them upstream with the matching key, or check --verify-key)"
    )]
    Unverified { keys: String, images: String },

    #[error(
        "refusing the bundle {what}: {reason} (the replica trusts --primary-key {keys}; the primary signs with --signing-key)"
    )]
    BundleNotSigned {
        what: String,
        keys: String,
        reason: String,
    },

    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub fn format(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Format {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// True for errors caused by a full disk, so callers can turn them into `NoSpace`.
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::NoSpace { .. } => true,
            Error::Io { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
            Error::Db { source, .. } => {
                let s = source.to_string();
                s.contains("No space left") || s.contains("NoSpace")
            }
            _ => false,
        }
    }
}

impl From<recompress::Error> for Error {
    /// An error of booster's own that passed through the models (the store failing to read
    /// a plain text) comes back as itself.
    fn from(e: recompress::Error) -> Error {
        match e {
            recompress::Error::Io { source, .. } if source.get_ref().is_some_and(|e| e.is::<Error>()) => {
                let inner = source.into_inner().expect("checked to hold an error");
                *inner.downcast::<Error>().expect("checked to be booster's error")
            }
            recompress::Error::Io { what, source } => Error::Io { what, source },
            recompress::Error::Format { what, reason } => Error::Format { what, reason },
        }
    }
}

/// Attach a description of what was being done to an `io::Result`.
pub trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { what: what(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's own error, carried through the models inside an `io::Error`, comes back as
    /// itself; any other I/O error keeps what it concerns.
    #[test]
    fn errors_from_the_models_unwrap_booster_s_own() {
        let own = recompress::Error::Io {
            what: "analysing blob".into(),
            source: io::Error::other(Error::Usage("chunk abc is damaged".into())),
        };
        assert!(matches!(Error::from(own), Error::Usage(m) if m == "chunk abc is damaged"));
        let plain = recompress::Error::Io {
            what: "reading blob".into(),
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "short"),
        };
        assert_eq!(Error::from(plain).to_string(), "reading blob: short");
    }
}
