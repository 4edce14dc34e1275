//! Rebuild a blob from the store: its plain stream read back through `ContentReader`, the
//! bytes made by `recompress` from the recorded method, every byte hashed and the digest
//! checked before success is reported. Callers that write to a file keep the file only on
//! success (`rebuild_to_file`).

use std::io::{self, Read, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::id::{Digest, Sha256};
use crate::reassemble::ContentReader;
use crate::store::{BlobRecord, Store};

/// A writer that hashes and counts what passes through it.
pub struct Hashing<W> {
    inner: W,
    sha: Sha256,
    len: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            sha: Sha256::new(),
            len: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.sha.finish(), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Rebuild the blob `digest` into `out`, then check size and digest. On error, whatever
/// was written to `out` must be discarded by the caller.
pub fn rebuild_to(store: &Store, digest: &Digest, rec: &BlobRecord, out: &mut dyn Write) -> Result<u64> {
    // Every failure names the layer, whatever stage it came from.
    rebuild_inner(store, digest, rec, out).map_err(|e| match e {
        Error::Rebuild { .. } | Error::DigestMismatch { .. } => e,
        other => Error::Rebuild {
            digest: *digest,
            reason: other.to_string(),
        },
    })
}

fn rebuild_inner(store: &Store, digest: &Digest, rec: &BlobRecord, out: &mut dyn Write) -> Result<u64> {
    let fail = |reason: String| Error::Rebuild {
        digest: *digest,
        reason,
    };
    if !rec.method.can_rebuild() {
        return Err(fail(
            "it was stored as a delta base only and cannot be rebuilt; run `booster pull` on an image that has it to make it pushable".into(),
        ));
    }
    // The blob's digest, checked at the end, proves every plain byte the rebuild read; when
    // anything fails, a damaged chunk is the first suspect and is named if found.
    let mut plain = ContentReader::open(store, &rec.content)?.caller_verifies();
    let result = rebuild_from(&mut plain, digest, rec, out);
    if result.is_err() {
        plain.find_damaged_chunk()?;
    }
    result
}

fn rebuild_from(
    plain: &mut ContentReader<'_>,
    digest: &Digest,
    rec: &BlobRecord,
    out: &mut dyn Write,
) -> Result<u64> {
    let fail = |reason: String| Error::Rebuild {
        digest: *digest,
        reason,
    };
    let mut sink = Hashing::new(out);
    let io_fail = |e: io::Error| match e.into_inner() {
        Some(inner) => match inner.downcast::<Error>() {
            Ok(err) => *err,
            Err(other) => fail(other.to_string()),
        },
        None => fail("I/O error during rebuild".into()),
    };
    recompress::rebuild::rebuild_stream(&rec.method, plain, &mut sink).map_err(io_fail)?;
    // The plain stream must be used up exactly.
    let mut probe = [0u8; 1];
    if plain.read(&mut probe).map_err(io_fail)? != 0 {
        return Err(fail(format!(
            "the method consumed fewer plain bytes than content {} holds",
            rec.content
        )));
    }
    let (_, actual, len) = sink.finish();
    if len != rec.size {
        return Err(fail(format!(
            "rebuilt {len} bytes, the blob has {}; the stored rebuild data is damaged (run `booster fsck --rebuild`)",
            rec.size
        )));
    }
    if actual != *digest {
        return Err(Error::DigestMismatch {
            what: format!("rebuilt layer {digest}"),
            expected: *digest,
            actual,
        });
    }
    Ok(len)
}

/// Rebuild into a new file at `path` (written beside it, renamed into place on success).
pub fn rebuild_to_file(store: &Store, digest: &Digest, rec: &BlobRecord, path: &Path) -> Result<u64> {
    rebuild_to_file_and(store, digest, rec, path, &mut io::sink())
}

/// `rebuild_to_file`, also handing every byte to `also` as it is produced (an upload in
/// flight). `also` sees the bytes before they are verified: it must not let them count
/// until this returns `Ok`.
pub fn rebuild_to_file_and(
    store: &Store,
    digest: &Digest,
    rec: &BlobRecord,
    path: &Path,
    also: &mut dyn Write,
) -> Result<u64> {
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
    let mut w = Tee {
        file: io::BufWriter::with_capacity(1 << 20, file),
        also,
    };
    let res = rebuild_to(store, digest, rec, &mut w).and_then(|n| {
        w.flush().ctx(|| format!("writing {}", tmp.display()))?;
        Ok(n)
    });
    match res {
        Ok(n) => {
            std::fs::rename(&tmp, path).ctx(|| format!("renaming {}", tmp.display()))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes to a file and to a second writer.
struct Tee<'a> {
    file: io::BufWriter<std::fs::File>,
    also: &'a mut dyn Write,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all(buf)?;
        self.also.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.also.flush()
    }
}

/// Rebuild and check, discarding the bytes.
pub fn verify_blob(store: &Store, digest: &Digest, rec: &BlobRecord) -> Result<()> {
    rebuild_to(store, digest, rec, &mut io::sink()).map(|_| ())
}
