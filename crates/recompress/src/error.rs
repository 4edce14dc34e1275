//! The crate's error type: what failed, and on which file or stream.

use std::io;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing failed. `source` may wrap the error of whoever supplies the plain
    /// text (`analyze::PlainText`); `io::Error::into_inner` gives it back.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },

    /// A blob is not what its framing says.
    #[error("{what}: {reason}")]
    Format { what: String, reason: String },
}

impl Error {
    pub fn format(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Format {
            what: what.into(),
            reason: reason.into(),
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
