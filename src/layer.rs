//! One blob into the store: sniff its compression, decompress and ingest its plain stream,
//! then (when asked) find and prove the method that rebuilds its exact bytes, and record it.
//! A blob that no model rebuilds is kept as its own bytes ("carried whole").

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::time::Instant;

use crate::error::{Error, IoContext, Result};
use crate::id::Digest;
use crate::ingest::{self, IngestOptions, IngestOutcome};
use crate::reassemble::StoredText;
use crate::store::{BlobRecord, Store};
use recompress::Method;
use recompress::analyze::{self, AnalyzeOptions};
use recompress::decode::{self, Decoder, Format};

/// Whether to analyse the compression of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analysis {
    /// Find and prove a rebuild method: the blob can then be pushed or shipped.
    Full,
    /// Only store its plain stream (a delta base: the old side of a diff).
    BaseOnly,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BlobOutcome {
    pub digest: Digest,
    pub content: Digest,
    pub size: u64,
    pub plain: IngestOutcome,
    pub method: String,
    pub correction_bytes: u64,
    pub carried_whole: bool,
    pub ingest_seconds: f64,
    pub analyze_seconds: f64,
}

/// Ingest the blob in `path` (already verified to hash to `digest`).
pub fn ingest_blob_file(
    store: &Store,
    path: &Path,
    digest: &Digest,
    media_type: &str,
    analysis: Analysis,
    progress: &mut dyn FnMut(u64),
) -> Result<BlobOutcome> {
    // Chunks and recipes before the blob record that links them: one gc-free stretch.
    let _session = store.writer_gate();
    let size = std::fs::metadata(path)
        .ctx(|| format!("reading {}", path.display()))?
        .len();
    let format = sniff_file(path)?;
    let started = Instant::now();
    let what = format!("layer {digest}");
    let decoded = match format {
        Format::Plain => None,
        f => match decode_and_ingest(store, path, f, &what, progress) {
            Ok(x) => Some(x),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::InvalidData => {
                tracing::warn!("{what}: {source}; keeping it as it is");
                None
            }
            Err(e) => return Err(e),
        },
    };
    let (plain, method, analyze_seconds) = match decoded {
        None => {
            // Not compressed (or not decodable): the blob is its own plain stream.
            let opts = IngestOptions {
                index_tar: format == Format::Plain,
                ..IngestOptions::default()
            };
            let out = ingest_path(store, path, &what, opts, progress)?;
            if out.digest() != *digest {
                return Err(Error::DigestMismatch {
                    what: format!("blob {}", path.display()),
                    expected: *digest,
                    actual: out.digest(),
                });
            }
            let method = if format == Format::Plain {
                Method::Plain
            } else {
                Method::Whole {
                    reason: "not a valid compressed stream".into(),
                }
            };
            (out, method, 0.0)
        }
        Some((out, layout)) => match analysis {
            Analysis::BaseOnly => (out, Method::Unanalyzed, 0.0),
            Analysis::Full => {
                let t = Instant::now();
                let method = analyze::analyze(
                    &StoredText {
                        store,
                        content: out.digest(),
                    },
                    path,
                    &layout,
                    AnalyzeOptions::default(),
                )?;
                let secs = t.elapsed().as_secs_f64();
                if let Method::Whole { reason } = &method {
                    tracing::info!("{what}: carried whole: {reason}");
                    let whole = ingest_path(
                        store,
                        path,
                        &what,
                        IngestOptions {
                            index_tar: false,
                            ..IngestOptions::default()
                        },
                        &mut |_| {},
                    )?;
                    (whole, method, secs)
                } else {
                    (out, method, secs)
                }
            }
        },
    };
    let content = plain.digest();
    let rec = BlobRecord {
        media_type: media_type.to_string(),
        size,
        content,
        method,
    };
    // A delta-base-only record never replaces one that can rebuild the blob (the old and
    // new sides of a diff may ingest the same layer at the same time).
    store.put_blob_keeping_rebuildable(digest, &rec)?;
    Ok(BlobOutcome {
        digest: *digest,
        content,
        size,
        method: rec.method.describe(),
        correction_bytes: rec.method.correction_bytes(),
        carried_whole: matches!(rec.method, Method::Whole { .. }),
        plain,
        ingest_seconds: started.elapsed().as_secs_f64() - analyze_seconds,
        analyze_seconds,
    })
}

fn sniff_file(path: &Path) -> Result<Format> {
    let mut head = [0u8; 4];
    let mut f = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let mut n = 0;
    while n < head.len() {
        let k = f
            .read(&mut head[n..])
            .ctx(|| format!("reading {}", path.display()))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(decode::sniff(&head[..n]))
}

fn decode_and_ingest(
    store: &Store,
    path: &Path,
    format: Format,
    what: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<(IngestOutcome, decode::Layout)> {
    let f = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let mut dec =
        Decoder::new(format, BufReader::with_capacity(1 << 20, f)).ctx(|| format!("decoding {what}"))?;
    let out = ingest::ingest(store, &mut dec, what, IngestOptions::default(), progress)?;
    Ok((out, dec.layout()))
}

fn ingest_path(
    store: &Store,
    path: &Path,
    what: &str,
    opts: IngestOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<IngestOutcome> {
    let mut f = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    ingest::ingest(store, &mut f, what, opts, progress)
}
