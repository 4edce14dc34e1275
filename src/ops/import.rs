//! `booster import`: bring a bundle into the store.
//!
//! Verify first, write after: every section's checksum, the chunker, and the presence of the
//! base are checked before anything is written; a damaged bundle or a missing base changes
//! nothing. Then chunks (rebuilt from the payload, each checked against its BLAKE3 id) →
//! recipes → blob records → documents → image records, the store's write order. A payload
//! section whose chunks are all present is skipped, so a rerun after a kill continues where
//! the last one stopped, and importing the same bundle twice adds nothing.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::bundle::format::{
    self, Inner, InnerGzip, MAX_GROUP_OUTPUT, Meta, PayloadSection, Segment, StreamPlan,
};
use crate::bundle::{BundleReader, PayloadGroup, SectionKind};
use crate::chunk::Chunker;
use crate::delta::{self, Stream};
use crate::error::{Error, Result};
use crate::id::{ChunkId, Digest, Sha256};
use crate::reassemble::ChunkCheck;
use crate::store::{ImageRecord, Recipe, Store};
use crate::tarindex::TarWalker;
use recompress::{Method, rebuild};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    pub bundle: String,
    pub bundle_bytes: u64,
    pub images: Vec<String>,
    pub chunks_added: u64,
    pub chunk_bytes_added: u64,
    pub sections_skipped: u64,
    pub recipes_added: u64,
    pub blobs_added: u64,
    pub docs_added: u64,
    pub images_added: u64,
    pub images_updated: u64,
    /// Blob records left out because their layer is neither stored nor carried, as the
    /// caller allowed (`ImportOptions::absent_base`); the images are then not recorded.
    pub blobs_left_out: u64,
    /// Zip archives inside layers rebuilt from their members' plain text, and the deflated
    /// members the sender kept compressed in them (no model rebuilds those).
    pub archives_rebuilt: u64,
    pub archive_members_compressed: u64,
}

/// How far an import may go without the whole base.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Base streams the store may lack: layers the new images share unchanged, which the
    /// bundle uses for no bytes (see `base_used_for_data`) and which the destination
    /// registry already holds. Their blob records are left out, and so are the image
    /// records (an image is recorded only when the store holds all of it); the images can
    /// still be pushed by digest to a registry that has those layers.
    pub absent_base: HashSet<Digest>,
}

impl ImportReport {
    pub fn added_anything(&self) -> bool {
        self.chunks_added
            + self.recipes_added
            + self.blobs_added
            + self.docs_added
            + self.images_added
            + self.images_updated
            > 0
    }
}

/// Open and verify a bundle; return its reader and meta.
pub fn open_verified(
    store: &Store,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(BundleReader, Meta)> {
    let reader = BundleReader::open(path)?;
    reader.verify(progress)?;
    let meta = Meta::decode(&reader.read(0)?).map_err(|e| Error::Bundle {
        path: path.to_path_buf(),
        reason: format!("meta section: {e}"),
    })?;
    if meta.chunker != store.params() {
        return Err(Error::Bundle {
            path: path.to_path_buf(),
            reason: format!(
                "it was cut with chunker {}, this store uses {}",
                meta.chunker.name(),
                store.params().name()
            ),
        });
    }
    Ok((reader, meta))
}

/// The base streams the bundle needs that this store lacks, as "label (content)", leaving
/// out those in `absent_ok`.
pub fn missing_base(store: &Store, meta: &Meta, absent_ok: &HashSet<Digest>) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for b in meta.base.iter().filter(|b| !absent_ok.contains(&b.content)) {
        let ok = match store.recipe(&b.content)? {
            Some(r) => {
                let mut all = r.len == b.len;
                for (id, _) in &r.chunks {
                    if !all {
                        break;
                    }
                    all = store.has_chunk(id)?;
                }
                all
            }
            None => false,
        };
        if !ok {
            let label = if b.label.is_empty() {
                "unnamed layer".to_string()
            } else {
                b.label.clone()
            };
            missing.push(format!("{label} ({})", b.content));
        }
    }
    Ok(missing)
}

/// The base streams a bundle takes bytes from: those its plans take chunks from, and those
/// its payload groups reference or copy from. The rest of its declared base are layers the
/// new images share unchanged: needed only to rebuild those very layers.
pub fn base_used_for_data(reader: &BundleReader, meta: &Meta) -> Result<HashSet<Digest>> {
    let mut used = HashSet::new();
    for i in 0..reader.index.len() {
        match reader.kind(i) {
            SectionKind::Recipes => {
                for plan in decode_section(reader, i, format::decode_plans)? {
                    for seg in &plan.segments {
                        if let Segment::Base { base, .. } = *seg
                            && let Some(b) = meta.base.get(base as usize)
                        {
                            used.insert(b.content);
                        }
                    }
                }
            }
            SectionKind::Payload => {
                let section = decode_section(reader, i, PayloadSection::decode)?;
                for g in &section.groups {
                    used.extend(g.refs.iter().map(|r| r.0));
                    used.extend(g.pieces.iter().filter_map(|p| p.copy.map(|c| c.0)));
                }
            }
            _ => {}
        }
    }
    Ok(used)
}

/// The bundle's documents (manifests, indexes, configs) by digest.
pub fn bundle_docs(reader: &BundleReader) -> Result<HashMap<Digest, crate::store::Doc>> {
    let mut out = HashMap::new();
    for i in (0..reader.index.len()).filter(|&i| reader.kind(i) == SectionKind::Docs) {
        out.extend(decode_section(reader, i, format::decode_docs)?);
    }
    Ok(out)
}

/// The bundle's blob records, as (blob digest, the content it rebuilds from).
pub fn blob_contents(reader: &BundleReader) -> Result<Vec<(Digest, Digest)>> {
    let mut out = Vec::new();
    for i in (0..reader.index.len()).filter(|&i| reader.kind(i) == SectionKind::Blobs) {
        let blobs = decode_section(reader, i, format::decode_blobs)?;
        out.extend(blobs.into_iter().map(|(d, rec)| (d, rec.content)));
    }
    Ok(out)
}

/// Read section `i` and decode it; a failure names the bundle and the section.
fn decode_section<T>(
    reader: &BundleReader,
    i: usize,
    decode: impl FnOnce(&[u8]) -> crate::codec::DecodeResult<T>,
) -> Result<T> {
    decode(&reader.read(i)?).map_err(|e| Error::Bundle {
        path: reader.path().to_path_buf(),
        reason: format!("{}: {e}", reader.section_name(i)),
    })
}

pub fn import_bundle(
    store: &Store,
    path: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<ImportReport> {
    let (reader, meta) = open_verified(store, path, &mut |a, b| progress("verifying", a, b))?;
    import_verified(store, &reader, &meta, path, progress, &ImportOptions::default())
}

/// Import a bundle `open_verified` has checked (its reader and meta), at `path`.
pub fn import_verified(
    store: &Store,
    reader: &BundleReader,
    meta: &Meta,
    path: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
    opts: &ImportOptions,
) -> Result<ImportReport> {
    let missing = missing_base(store, meta, &opts.absent_base)?;
    if !missing.is_empty() {
        return Err(Error::Bundle {
            path: path.to_path_buf(),
            reason: format!(
                "this store lacks the base the bundle was made against ({} of {} layers missing): {}; pull or import those images first",
                missing.len(),
                meta.base.len(),
                summarise(&missing)
            ),
        });
    }
    let mut plans: Vec<StreamPlan> = Vec::new();
    for i in 0..reader.index.len() {
        if reader.kind(i) == SectionKind::Recipes {
            plans.extend(decode_section(reader, i, format::decode_plans)?);
        }
    }
    // Every blob must rebuild from a stream the store has or the bundle carries: checked
    // before anything is written (a bundle from an older sender may not declare every
    // layer it assumes the receiver holds). The blob sections are read again to write
    // them below rather than kept: with their rebuild corrections they can be large.
    let carried: HashSet<Digest> = plans.iter().map(|p| p.content).collect();
    for i in 0..reader.index.len() {
        if reader.kind(i) != SectionKind::Blobs {
            continue;
        }
        for (d, rec) in decode_section(reader, i, format::decode_blobs)? {
            if !carried.contains(&rec.content)
                && !opts.absent_base.contains(&rec.content)
                && !store.has_recipe(&rec.content)?
            {
                return Err(Error::Bundle {
                    path: path.to_path_buf(),
                    reason: format!(
                        "this store lacks layer content {} (blob {d}), which the bundle expects the receiver to hold; pull or import the old images first",
                        rec.content
                    ),
                });
            }
        }
    }
    let mut report = ImportReport {
        bundle: path.display().to_string(),
        bundle_bytes: reader.total_len(),
        images: meta.images.iter().map(|i| i.name.clone()).collect(),
        ..Default::default()
    };
    let _gate = store.writer_gate();
    std::thread::scope(|scope| -> Result<()> {
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        let mut txs = Vec::with_capacity(writers);
        for _ in 0..writers {
            let (tx, rx) = crossbeam_channel::bounded(WRITER_QUEUE);
            let flag = failed.clone();
            scope.spawn(move || run_chunk_writer(store, rx, &flag));
            txs.push(tx);
        }
        let writer = ChunkWriter { txs, failed };
        let mut composer = Composer::new(store, reader, meta, &plans, &writer);
        let total = reader.total_len();
        for i in 0..reader.index.len() {
            if reader.kind(i) != SectionKind::Payload {
                continue;
            }
            let section = decode_section(reader, i, PayloadSection::decode)?;
            composer.feed(i, &section, &mut report)?;
            progress("importing", reader.index[i].offset, total);
        }
        composer.finish_all(&mut report)?;
        writer.sync(&mut report)
    })?;
    // A push of what was imported usually follows: it reads while this flush writes.
    store.start_flush();
    for i in 0..reader.index.len() {
        match reader.kind(i) {
            SectionKind::Blobs => {
                for (d, rec) in decode_section(reader, i, format::decode_blobs)? {
                    if opts.absent_base.contains(&rec.content) && !store.has_recipe(&rec.content)? {
                        report.blobs_left_out += 1;
                        continue;
                    }
                    if !store.has_recipe(&rec.content)? {
                        return Err(Error::Bundle {
                            path: path.to_path_buf(),
                            reason: format!(
                                "blob {d} rebuilds from {}, which is neither stored nor in the bundle",
                                rec.content
                            ),
                        });
                    }
                    match store.blob(&d)? {
                        Some(old) if old.method.can_rebuild() => {}
                        _ => {
                            store.put_blob(&d, &rec)?;
                            report.blobs_added += 1;
                        }
                    }
                }
            }
            SectionKind::Docs => {
                for (d, doc) in decode_section(reader, i, format::decode_docs)? {
                    if store.doc(&d)?.is_none() {
                        store.put_doc(&d, &doc)?;
                        report.docs_added += 1;
                    }
                }
            }
            _ => {}
        }
    }
    if report.blobs_left_out > 0 {
        return Ok(report);
    }
    for img in &meta.images {
        let rec = ImageRecord {
            digest: img.digest,
            media_type: img.media_type.clone(),
        };
        match store.image(&img.name)? {
            Some(old) if old == rec => {}
            Some(_) => {
                store.set_image(&img.name, &rec)?;
                report.images_updated += 1;
            }
            None => {
                store.set_image(&img.name, &rec)?;
                report.images_added += 1;
            }
        }
    }
    Ok(report)
}

fn summarise(items: &[String]) -> String {
    if items.len() <= 5 {
        items.join(", ")
    } else {
        format!("{}, and {} more", items[..5].join(", "), items.len() - 5)
    }
}

/// A gzip file carried by its plain text: decode the plain text against the old version's
/// plain text, then rebuild the exact gzip bytes.
fn decode_inner_gzip(
    old_gz: &[u8],
    frame: &[u8],
    inner: &InnerGzip,
    want: u64,
) -> std::result::Result<Vec<u8>, String> {
    let old_plain = if old_gz.is_empty() {
        Vec::new()
    } else {
        delta::gunzip_bounded(old_gz, MAX_GROUP_OUTPUT).ok_or("its reference is not a gzip file")?
    };
    let plain = delta::decompress_with_prefix(&old_plain, frame, inner.plain_len as usize)
        .map_err(|e| e.to_string())?;
    let method = Method::decode(&mut crate::codec::Reader::new(&inner.method)).map_err(|e| e.0)?;
    let bytes = rebuild::rebuild_gzip_bytes(&method, &plain)?;
    if bytes.len() as u64 != want {
        return Err(format!("rebuilds to {} bytes, the plan says {want}", bytes.len()));
    }
    Ok(bytes)
}

/// A zip archive carried by its members' plain text: decode its expansion against the old
/// archive's outline, then rebuild the exact archive.
/// The group's output is the parts of the archive its pieces name.
fn decode_inner_zip(
    old: &[u8],
    frame: &[u8],
    inner: &format::InnerZip,
    pieces: &[format::Piece],
) -> std::result::Result<Vec<u8>, String> {
    let view = delta::archive_prefix(old);
    let expanded = delta::decompress_with_prefix(&view, frame, inner.expanded_len as usize)
        .map_err(|e| e.to_string())?;
    drop(view);
    let expansion = crate::zipfile::Expansion::decode(expanded).map_err(|e| e.0)?;
    let archive = expansion.rebuild(inner.archive_len)?;
    let start = pieces[0]
        .offset
        .checked_sub(inner.skip)
        .ok_or("its archive would start before the stream")?;
    if pieces.len() == 1 && inner.skip == 0 && pieces[0].len == inner.archive_len {
        return Ok(archive);
    }
    let mut out = Vec::with_capacity(pieces.iter().map(|p| p.len as usize).sum());
    for p in pieces {
        let at = (p.offset - start) as usize;
        out.extend_from_slice(&archive[at..at + p.len as usize]);
    }
    Ok(out)
}

/// Assembles the bundle's new streams in plan order: payload bytes fill each stream's
/// missing runs, in order, and are cut into chunks as they arrive; once a stream is
/// complete its recipe is composed from base chunks, earlier streams' chunks and the new
/// ones, the stream is read back and checked against its sha256, and only then is the
/// recipe written. A stream the store already has is skipped with its payload.
struct Composer<'a> {
    store: &'a Store,
    reader: &'a BundleReader,
    meta: &'a Meta,
    plans: &'a [StreamPlan],
    /// Next plan to finish.
    next: usize,
    /// Recipes of finished plans (later `Earlier` segments refer to them).
    done: Vec<Option<Recipe>>,
    base: HashMap<u32, Stream>,
    current: Option<Filling>,
    writer: &'a ChunkWriter,
}

/// The plan whose missing runs are being filled.
struct Filling {
    plan: usize,
    /// Length of each missing run, in order.
    runs: Vec<u64>,
    run: usize,
    filled: u64,
    chunker: Chunker,
    chunks: Vec<Vec<(ChunkId, u32)>>,
    /// The store already had this stream: its payload is skipped.
    skip: bool,
    /// The next of the plan's segments whose bytes `check` has not seen.
    seg: usize,
    check: StreamCheck,
}

/// The stream being composed, hashed as its bytes go by in stream order: its sha256 is the
/// proof that the recipe and the chunks written for it are right (store-format.md 6.3), and
/// its tar index comes from the same pass. Hashing while composing spares reading the
/// whole stream back from the store.
struct StreamCheck {
    sha: Sha256,
    len: u64,
    walker: TarWalker,
}

impl StreamCheck {
    fn new() -> StreamCheck {
        StreamCheck {
            sha: Sha256::new(),
            len: 0,
            walker: TarWalker::new(),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
        self.walker.push(bytes);
    }
}

impl Filling {
    /// Put the next payload bytes into the plan's missing runs, in order.
    fn fill(&mut self, mut bytes: &[u8], c: &Composer) -> Result<()> {
        while !bytes.is_empty() {
            let Some(&len) = self.runs.get(self.run) else {
                return Err(Error::format(
                    "payload",
                    "more payload than the stream plan has missing bytes",
                ));
            };
            if self.filled == 0 {
                self.check_segments(c)?;
            }
            let take = ((len - self.filled) as usize).min(bytes.len());
            if self.chunks.len() <= self.run {
                self.chunks.push(Vec::new());
            }
            self.check.push(&bytes[..take]);
            let out = &mut self.chunks[self.run];
            self.chunker.push(&bytes[..take], |b| c.writer.put(b, out))?;
            self.filled += take as u64;
            bytes = &bytes[take..];
            if self.filled == len {
                let chunker = std::mem::replace(&mut self.chunker, Chunker::new(c.store.params()));
                chunker.finish(|b| c.writer.put(b, out))?;
                self.run += 1;
                self.filled = 0;
                // Past this run's own segment.
                self.seg += 1;
            }
        }
        Ok(())
    }

    /// Hash the segments up to the next missing run (or the end): stored chunks, read as
    /// the stream's sha256 proves them.
    fn check_segments(&mut self, c: &Composer) -> Result<()> {
        let segments = &c.plans[self.plan].segments;
        while let Some(seg) = segments.get(self.seg) {
            let Some(chunks) = c.segment_chunks(self.plan, seg)? else {
                break;
            };
            for (id, len) in chunks {
                let bytes = crate::reassemble::read_chunk(c.store, &id, len, ChunkCheck::ByDigest)?;
                self.check.push(&bytes);
            }
            self.seg += 1;
        }
        Ok(())
    }

    fn new(plan: usize, runs: Vec<u64>, skip: bool, store: &Store) -> Filling {
        Filling {
            plan,
            runs,
            run: 0,
            filled: 0,
            chunker: Chunker::new(store.params()),
            chunks: Vec::new(),
            skip,
            seg: 0,
            check: StreamCheck::new(),
        }
    }
}

/// Group bytes (see `decode_weight`) import may have started decoding ahead of the one
/// being chunked.
const DECODE_BUDGET: u64 = 256 << 20;

/// What decoding a group holds in memory: its prefix and output (and the old file's plain
/// text for a gzip file carried by its plain text). Groups range from a few bytes to a big
/// piece; weighing them lets many small ones run ahead while one worker is in a big one,
/// and keeps a hostile bundle of size-limit groups from being decoded all at once.
fn decode_weight(g: &PayloadGroup) -> u64 {
    let plain = match &g.inner {
        None => 0,
        Some(Inner::Gzip(_)) => g.output_len(),
        // The old archive's outline (its members inflated, held while the outline is
        // written: up to about three times the plain text), the expansion and its body, and
        // the rebuilt archive.
        Some(Inner::Zip(z)) => g
            .prefix_len()
            .saturating_mul(4)
            .min(3 * crate::zipfile::MAX_INFLATED)
            .saturating_add(z.expanded_len.saturating_mul(2))
            .saturating_add(z.archive_len),
    };
    g.prefix_len() + g.output_len() + plain
}

/// A decoded payload group: its frame's output and where each piece's bytes are.
struct DecodedGroup {
    out: Vec<u8>,
    pieces: Vec<PieceBytes>,
}

enum PieceBytes {
    /// A range of the frame's output (already unfiltered).
    InFrame(std::ops::Range<usize>),
    /// Bytes copied from the base.
    Copied(Vec<u8>),
}

/// Chunks waiting for the writer thread: enough to keep it busy, few enough to stay small.
const WRITER_QUEUE: usize = 64;

/// What the composing thread asks of the chunk writer.
enum ToWriter {
    Put(ChunkId, Vec<u8>),
    /// Reply once every chunk sent before is in the store, with the chunks and bytes that
    /// were new since the last sync, or an error once a write has failed (the first
    /// write error, then the same failure in general terms).
    Sync(crossbeam_channel::Sender<Result<(u64, u64)>>),
}

/// The composing thread's handle on the writers: compressing and writing chunks runs beside
/// decoding the payload instead of after it, on several threads (one alone fell behind
/// the decoders: zstd and RocksDB cost more per byte than decoding a delta). A chunk goes
/// to the writer its id picks, so a repeated chunk meets its first copy in the same queue
/// and is counted and stored once.
struct ChunkWriter {
    txs: Vec<crossbeam_channel::Sender<ToWriter>>,
    /// Set by the writer thread when a write fails: decoding stops at the next chunk
    /// instead of at the end of the stream.
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ChunkWriter {
    fn gone() -> Error {
        Error::format("import", "the chunk writer thread stopped")
    }

    /// Name a chunk of a composed stream and queue it for writing.
    fn put(&self, c: &[u8], out: &mut Vec<(ChunkId, u32)>) -> Result<()> {
        if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            // A failed writer keeps failing syncs: this returns its error.
            return Err(self
                .sync(&mut ImportReport::default())
                .err()
                .unwrap_or_else(Self::gone));
        }
        let id = ChunkId::of(c);
        out.push((id, c.len() as u32));
        let writer = &self.txs[id.0[0] as usize % self.txs.len()];
        writer
            .send(ToWriter::Put(id, c.to_vec()))
            .map_err(|_| Self::gone())
    }

    /// Wait until every queued chunk is written; counts what was new. Every writer is
    /// asked (each queue is in order), and the first error wins.
    fn sync(&self, report: &mut ImportReport) -> Result<()> {
        let mut replies = Vec::with_capacity(self.txs.len());
        for writer in &self.txs {
            let (tx, rx) = crossbeam_channel::bounded(1);
            writer.send(ToWriter::Sync(tx)).map_err(|_| Self::gone())?;
            replies.push(rx);
        }
        let mut first_err = None;
        for rx in replies {
            match rx.recv().map_err(|_| Self::gone()).and_then(|r| r) {
                Ok((chunks, bytes)) => {
                    report.chunks_added += chunks;
                    report.chunk_bytes_added += bytes;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn run_chunk_writer(
    store: &Store,
    rx: crossbeam_channel::Receiver<ToWriter>,
    failed_flag: &std::sync::atomic::AtomicBool,
) {
    let mut added = (0u64, 0u64);
    // The first error goes to the first sync; later syncs still fail.
    let mut failed: Option<Option<Error>> = None;
    for m in rx {
        match m {
            ToWriter::Put(id, bytes) if failed.is_none() => match store.put_chunk(&id, &bytes) {
                Ok(o) if o.new => {
                    added.0 += 1;
                    added.1 += bytes.len() as u64;
                }
                Ok(_) => {}
                Err(e) => {
                    failed = Some(Some(e));
                    failed_flag.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            },
            ToWriter::Put(..) => {}
            ToWriter::Sync(reply) => {
                let r = match failed.as_mut() {
                    Some(first) => Err(first
                        .take()
                        .unwrap_or_else(|| Error::format("import", "an earlier chunk write failed"))),
                    None => Ok(std::mem::take(&mut added)),
                };
                let _ = reply.send(r);
            }
        }
    }
}

impl<'a> Composer<'a> {
    fn new(
        store: &'a Store,
        reader: &'a BundleReader,
        meta: &'a Meta,
        plans: &'a [StreamPlan],
        writer: &'a ChunkWriter,
    ) -> Self {
        Composer {
            store,
            reader,
            meta,
            plans,
            next: 0,
            done: vec![None; plans.len()],
            base: HashMap::new(),
            current: None,
            writer,
        }
    }

    fn fail(&self, reason: impl Into<String>) -> Error {
        Error::Bundle {
            path: self.reader.path().to_path_buf(),
            reason: reason.into(),
        }
    }

    fn base_stream(&mut self, b: u32) -> Result<&Stream> {
        if !self.base.contains_key(&b) {
            let entry = self.meta.base.get(b as usize).ok_or_else(|| {
                self.fail(format!(
                    "a stream plan names base {b}, which the bundle does not declare"
                ))
            })?;
            let s = Stream::load(self.store, &entry.content)?;
            self.base.insert(b, s);
        }
        Ok(&self.base[&b])
    }

    /// Load the base streams plan `k`'s segments name.
    fn load_bases(&mut self, k: usize) -> Result<()> {
        for seg in &self.plans[k].segments {
            if let Segment::Base { base, .. } = *seg {
                self.base_stream(base)?;
            }
        }
        Ok(())
    }

    /// The chunks a segment stands for (`None` for a missing run). The plan's base
    /// streams must be loaded (`load_bases`).
    fn segment_chunks(&self, plan: usize, seg: &Segment) -> Result<Option<Vec<(ChunkId, u32)>>> {
        let slice = |chunks: &[(ChunkId, u32)], first: u32, count: u32| -> Option<Vec<(ChunkId, u32)>> {
            let end = (first as usize).checked_add(count as usize)?;
            chunks.get(first as usize..end).map(|s| s.to_vec())
        };
        match *seg {
            Segment::Base { base, first, count } => {
                let s = self
                    .base
                    .get(&base)
                    .ok_or_else(|| self.fail(format!("base {base} is not loaded")))?;
                let found = slice(&s.recipe.chunks, first, count);
                found.map(Some).ok_or_else(|| {
                    self.fail(format!(
                        "a stream plan names chunks {first}+{count} of base {base}, which it does not have"
                    ))
                })
            }
            Segment::Earlier { stream, first, count } => {
                let earlier = (stream as usize) < plan;
                let found = self
                    .done
                    .get(stream as usize)
                    .and_then(|r| r.as_ref())
                    .filter(|_| earlier)
                    .and_then(|r| slice(&r.chunks, first, count));
                found.map(Some).ok_or_else(|| {
                    self.fail(format!("stream plan {plan} names chunks {first}+{count} of stream {stream}, which is not an earlier, finished stream"))
                })
            }
            Segment::Missing { .. } => Ok(None),
        }
    }

    /// Finish every plan before `k`, then make `k` the plan being filled.
    fn start(&mut self, k: usize, report: &mut ImportReport) -> Result<()> {
        if self.current.as_ref().is_some_and(|f| f.plan == k) {
            return Ok(());
        }
        while self.next < k {
            self.finish_next(report)?;
        }
        let skip = self.store.has_recipe(&self.plans[k].content)?;
        if !skip {
            self.load_bases(k)?;
        }
        let runs = self.plans[k]
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Missing { len } => Some(*len),
                _ => None,
            })
            .collect();
        self.current = Some(Filling::new(k, runs, skip, self.store));
        Ok(())
    }

    fn feed(&mut self, i: usize, section: &PayloadSection, report: &mut ImportReport) -> Result<()> {
        let name = self.reader.section_name(i);
        let k = self
            .plans
            .iter()
            .enumerate()
            .skip(self.next)
            .find(|(_, p)| p.content == section.content)
            .map(|(k, _)| k)
            .ok_or_else(|| {
                self.fail(format!(
                    "{name}: payload for {}, which no remaining stream plan expects",
                    section.content
                ))
            })?;
        self.start(k, report)?;
        if self.current.as_ref().is_some_and(|f| f.skip) {
            report.sections_skipped += 1;
            return Ok(());
        }
        for g in &section.groups {
            if let Some(Inner::Zip(z)) = &g.inner {
                report.archives_rebuilt += 1;
                report.archive_members_compressed += z.members_compressed;
            }
        }
        // Base streams first (loading them needs `&mut self`), then the groups are decoded
        // in parallel and their bytes filled in, in order.
        for g in &section.groups {
            for d in g
                .refs
                .iter()
                .map(|r| r.0)
                .chain(g.pieces.iter().filter_map(|p| p.copy.map(|c| c.0)))
            {
                let b = self.base_index(&name, &d)?;
                self.base_stream(b)?;
            }
        }
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut filling = self.current.take().expect("started");
        let this = &*self;
        let weights: Vec<u64> = section.groups.iter().map(decode_weight).collect();
        let filled = crate::ordered::map_in_order(
            &section.groups,
            &weights,
            DECODE_BUDGET,
            workers,
            |g| this.decode_group(&name, g),
            |_, group| {
                for piece in &group.pieces {
                    let bytes = match piece {
                        PieceBytes::InFrame(r) => &group.out[r.clone()],
                        PieceBytes::Copied(b) => b.as_slice(),
                    };
                    filling
                        .fill(bytes, this)
                        .map_err(|e| this.fail(format!("{name}: {e}")))?;
                }
                Ok(())
            },
        );
        self.current = Some(filling);
        filled
    }

    /// Index in the declared base of the stream `d` a group refers to.
    fn base_index(&self, name: &str, d: &Digest) -> Result<u32> {
        match self.meta.base.iter().position(|x| x.content == *d) {
            Some(b) => Ok(b as u32),
            None => Err(self.fail(format!(
                "{name}: a group refers to {d}, which is not in the declared base"
            ))),
        }
    }

    /// The bytes of a group's pieces, in order: copies from the base, the rest decoded from
    /// its frame. Base streams must be loaded (see `feed`).
    fn decode_group(&self, name: &str, g: &PayloadGroup) -> Result<DecodedGroup> {
        let base = |d: &Digest| -> Result<&Stream> {
            let b = self.base_index(name, d)?;
            self.base
                .get(&b)
                .ok_or_else(|| self.fail(format!("{name}: base {d} is not loaded")))
        };
        let mut prefix = Vec::with_capacity(g.prefix_len() as usize);
        let mut last = crate::reassemble::LastChunk::default();
        for (k, (d, off, len)) in g.refs.iter().enumerate() {
            let s = base(d)?;
            if off.checked_add(*len).is_none_or(|e| e > s.recipe.len) {
                return Err(self.fail(format!("{name}: a reference runs past the end of {d}")));
            }
            let mut bytes = s.read_with(self.store, *off, *len, ChunkCheck::ByDigest, &mut last)?;
            if let (Some(origin), Some(f)) = (g.ref_filter(k), &g.filters) {
                crate::x86filter::encode(&mut bytes, origin, f.variant);
            }
            prefix.extend(bytes);
        }
        let mut out = match &g.inner {
            None if g.frame_len() == 0 => Vec::new(),
            None => delta::decompress_with_prefix(&prefix, &g.frame, g.frame_len() as usize)
                .map_err(|e| self.fail(format!("{name}: {e}")))?,
            Some(Inner::Gzip(inner)) => decode_inner_gzip(&prefix, &g.frame, inner, g.output_len())
                .map_err(|e| self.fail(format!("{name}: a gzip file in the payload: {e}")))?,
            Some(Inner::Zip(inner)) => decode_inner_zip(&prefix, &g.frame, inner, &g.pieces)
                .map_err(|e| self.fail(format!("{name}: a zip archive in the payload: {e}")))?,
        };
        drop(prefix);
        let mut pieces = Vec::with_capacity(g.pieces.len());
        let mut at = 0usize;
        for (k, p) in g.pieces.iter().enumerate() {
            let bytes = match p.copy {
                Some((d, src)) => {
                    let s = base(&d)?;
                    if src.checked_add(p.len).is_none_or(|e| e > s.recipe.len) {
                        return Err(self.fail(format!("{name}: a copy runs past the end of {d}")));
                    }
                    PieceBytes::Copied(s.read_with(
                        self.store,
                        src,
                        p.len,
                        ChunkCheck::ByDigest,
                        &mut last,
                    )?)
                }
                None => {
                    let end = at + p.len as usize;
                    let slice = out
                        .get_mut(at..end)
                        .ok_or_else(|| self.fail(format!("{name}: the frame is shorter than its pieces")))?;
                    if let (Some(origin), Some(f)) = (g.piece_filter(k), &g.filters) {
                        crate::x86filter::decode(slice, origin, f.variant);
                    }
                    let range = at..end;
                    at = end;
                    PieceBytes::InFrame(range)
                }
            };
            pieces.push(bytes);
        }
        if at != out.len() {
            return Err(self.fail(format!("{name}: the frame is longer than its pieces")));
        }
        Ok(DecodedGroup { out, pieces })
    }

    /// Compose, verify and record the recipe of the next plan.
    fn finish_next(&mut self, report: &mut ImportReport) -> Result<()> {
        let k = self.next;
        let content = self.plans[k].content;
        if let Some(r) = self.store.recipe(&content)? {
            self.done[k] = Some(r);
            self.next += 1;
            self.current = None;
            return Ok(());
        }
        let mut filling = match self.current.take() {
            Some(f) if f.plan == k => f,
            other => {
                self.current = other;
                self.load_bases(k)?;
                Filling::new(k, Vec::new(), false, self.store)
            }
        };
        let segments = self.plans[k].segments.clone();
        let missing_runs = segments
            .iter()
            .filter(|s| matches!(s, Segment::Missing { .. }))
            .count();
        if filling.run != missing_runs || filling.filled != 0 {
            return Err(self.fail(format!(
                "the bundle carries {} of the {missing_runs} missing runs of layer {content}",
                filling.run
            )));
        }
        filling.check_segments(self)?;
        let mut runs = filling.chunks.into_iter();
        let mut chunks: Vec<(ChunkId, u32)> = Vec::new();
        for seg in &segments {
            match self.segment_chunks(k, seg)? {
                Some(c) => chunks.extend(c),
                None => chunks.extend(runs.next().unwrap_or_default()),
            }
        }
        let len = self.plans[k].len;
        if chunks.iter().map(|c| c.1 as u64).sum::<u64>() != len {
            return Err(self.fail(format!("layer {content} assembles to the wrong length")));
        }
        let recipe = Recipe { len, chunks };
        self.writer.sync(report)?;
        let StreamCheck {
            sha,
            len: hashed,
            walker,
        } = filling.check;
        let actual = sha.finish();
        if hashed != len || actual != content {
            // A damaged stored chunk (of the base) would explain it: name it if so.
            crate::reassemble::find_damaged_chunk(self.store, &recipe)
                .map_err(|e| self.fail(format!("layer {content} does not assemble to its digest: {e}")))?;
            return Err(self.fail(format!(
                "layer {content} does not assemble to its digest ({hashed} bytes with sha256 {actual}): the bundle is damaged or was made for another base"
            )));
        }
        self.store.put_recipe(&content, &recipe, &walker.finish())?;
        report.recipes_added += 1;
        self.done[k] = Some(recipe);
        self.next += 1;
        Ok(())
    }

    fn finish_all(&mut self, report: &mut ImportReport) -> Result<()> {
        while self.next < self.plans.len() {
            self.finish_next(report)?;
        }
        Ok(())
    }
}
