//! Building a bundle: the shared core of `diff` (a patch against an old image list) and
//! `export` (against an image list or a receiver's inventory).
//!
//! Order of work: collect what the target images need; work out which chunks the receiver
//! lacks (not in its base, not already sent earlier in this bundle); plan the deltas; then
//! write meta → recipes → payload → blob records → documents, as store-format.md §6 lays
//! the file out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::bundle::format::{
    self, BaseEntry, BundleImage, Meta, PayloadSection, SectionKind, Segment, StreamPlan,
};
use crate::bundle::{BundleWriter, Inner};
use crate::delta::{self, BaseIndex, DeltaOptions, GroupPlan, Stream};
use crate::error::{Error, Result};
use crate::graph::Closure;
use crate::id::{ChunkId, Digest};
use crate::oci::manifest::{self, Parsed};
use crate::store::{BlobRecord, Doc, Store};

/// What the receiver is known to hold.
#[derive(Debug, Clone, Default)]
pub struct Base {
    /// Plain streams it holds, with a label (image and layer) for messages.
    pub contents: Vec<(Digest, String)>,
    /// For a new plain stream, the base stream most likely to hold its files' previous
    /// versions (same image name, same layer position).
    pub preferred: HashMap<Digest, Digest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerStatus {
    /// The receiver has the layer's content already.
    Shared,
    /// Sent as deltas against files the receiver has (at least partly).
    Delta,
    /// Sent without any reference.
    New,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerRow {
    pub image: String,
    pub digest: Digest,
    pub media_type: String,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub status: LayerStatus,
    pub method: String,
    pub carried_whole: bool,
    pub missing_bytes: u64,
    pub bytes_in_bundle: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BundleReport {
    pub files: Vec<PathBuf>,
    pub bundle_bytes: u64,
    pub payload_bytes: u64,
    pub metadata_bytes: u64,
    pub images: Vec<BundleImage>,
    pub layers: Vec<LayerRow>,
    pub base_required: usize,
    /// Bytes of payload spent on layers carried whole (no model rebuilds them).
    pub carried_whole_bytes: u64,
    /// Gzip files inside layers carried by their plain text (and rebuilt bit-exactly).
    pub inner_gzip_files: u64,
    /// Zip archives inside layers (jars, wars, wheels) carried by their members' plain text.
    pub archives: ArchiveTally,
    /// Payload groups holding x86-64 machine code through the x86 code filter.
    pub x86_filtered_groups: u64,
    /// Signatures, attestations, SBOMs and other referrers among the images.
    pub attached: crate::oci::referrers::Tally,
}

/// What the bundle did with zip archives inside layers.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ArchiveTally {
    /// Archives carried opened (rebuilt bit-exactly from their members' plain text).
    pub opened: u64,
    /// Archives inside those (a fat jar's libraries, a war's jars), opened too.
    pub nested: u64,
    /// Deflated members carried by their plain text.
    pub members_opened: u64,
    /// Deflated members no model reproduces, carried compressed inside an opened archive.
    pub members_compressed: u64,
    /// Archives carried as bytes: booster does not open them (malformed, a bomb), or their
    /// bytes delta was the smaller.
    pub as_bytes: u64,
}

impl ArchiveTally {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} archives opened ({} inside them), {} members carried by their plain text",
            self.opened, self.nested, self.members_opened
        );
        if self.members_compressed > 0 {
            s += &format!(
                ", {} kept compressed (no model rebuilds them)",
                self.members_compressed
            );
        }
        if self.as_bytes > 0 {
            s += &format!(
                "; {} archives carried as bytes (not opened, or their bytes delta was smaller)",
                self.as_bytes
            );
        }
        s
    }
}

#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    pub delta: DeltaOptions,
    pub split: Option<u64>,
    /// Plan and measure, but write nothing (payload is still compressed to size it).
    pub dry_run: bool,
}

/// Payload sections are cut at about this many bytes of frames.
const SECTION_TARGET: usize = 64 << 20;
/// Group bytes (prefix and data) encoding may have started ahead of the section being
/// written.
const ENCODE_BUDGET: u64 = 256 << 20;
/// Payload groups a bundle is cut into at least (when it has that many bytes to send).
const MIN_GROUPS: u64 = 16;
/// Smallest group target: below it zstd loses matches across files of one group.
const MIN_GROUP_TARGET: u64 = 1 << 20;

/// One target image's parts.
struct Target {
    name: String,
    digest: Digest,
    media_type: String,
}

/// [`make_bundle`] with a progress bar (shown on a terminal only): "planning NOUN" while
/// references are found and unchanged files compared, then "encoding NOUN". What `diff`
/// ("patch") and `export` ("bundle") show; the service builds with [`make_bundle`] alone.
pub fn make_bundle_shown(
    store: &Store,
    images: &[String],
    base: &Base,
    path: &Path,
    opts: &BundleOptions,
    noun: &str,
) -> Result<BundleReport> {
    let bar = crate::output::bytes_bar(0, format!("planning {noun}"));
    let encoding = format!("encoding {noun}");
    let r = make_bundle(store, images, base, path, opts, &mut |phase, done, total| {
        if phase == "encoding" && bar.message() != encoding {
            bar.set_message(encoding.clone());
        }
        crate::output::progress_to(&bar, done, total);
    });
    bar.finish_and_clear();
    r
}

pub fn make_bundle(
    store: &Store,
    images: &[String],
    base: &Base,
    path: &Path,
    opts: &BundleOptions,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<BundleReport> {
    let targets = load_targets(store, images)?;
    let mut closure = Closure::default();
    for t in &targets {
        closure.add_manifest(store, &t.digest, &t.name)?;
    }
    if !closure.missing.is_empty() {
        return Err(Error::format(
            "bundle",
            format!(
                "the images are incomplete in the store: {}",
                closure.missing.join("; ")
            ),
        ));
    }
    let base_set: HashSet<Digest> = base.contents.iter().map(|(d, _)| *d).collect();
    let blobs = load_blobs(store, &closure, &base_set)?;

    // What the receiver has, chunk by chunk, and which base stream each chunk is in.
    let base_digests: Vec<Digest> = base.contents.iter().map(|(d, _)| *d).collect();
    let mut base_index = BaseIndex::build(store, &base_digests)?;
    // Layers the new images share unchanged: a receiver that finds them at its registry
    // need not ingest them (`apply`) unless the bundle takes bytes from them. So chunks
    // and loosely matched references (by masked path or file name) come from the other
    // base streams whenever those have them; a file's old version at the same path is
    // still used wherever it is.
    let shared: HashSet<Digest> = closure
        .contents
        .iter()
        .filter(|c| base_index.streams.contains_key(c))
        .copied()
        .collect();
    let mut chunk_home: HashMap<ChunkId, (Digest, u32)> = HashMap::new();
    let homes = base_digests
        .iter()
        .filter(|d| !shared.contains(d))
        .chain(base_digests.iter().filter(|d| shared.contains(d)));
    for d in homes {
        let Some(s) = base_index.streams.get(d) else {
            continue;
        };
        for (j, (id, _)) in s.recipe.chunks.iter().enumerate() {
            chunk_home.entry(*id).or_insert((*d, j as u32));
        }
    }
    base_index.avoid_in_loose_matches(shared);
    let labels: HashMap<Digest, &str> = base.contents.iter().map(|(d, l)| (*d, l.as_str())).collect();

    // Plan every new stream, in image order: where each of its chunks comes from.
    let mut sent: HashMap<ChunkId, (u32, u32)> = HashMap::new();
    let mut required: BTreeMap<Digest, ()> = BTreeMap::new();
    let mut plans: Vec<(Digest, Vec<GroupPlan>, u64)> = Vec::new();
    let mut streams: HashMap<Digest, Stream> = HashMap::new();
    let mut raw_plans: Vec<(Digest, u64, Vec<RawSegment>)> = Vec::new();
    let mut missing_ranges: Vec<(Digest, Vec<(u64, u64)>)> = Vec::new();
    for c in &closure.contents {
        if base_index.streams.contains_key(c) {
            // Not carried: the receiver must hold it, so the bundle declares it as base
            // (otherwise a receiver missing only this layer would pass the base check and
            // fail after writing).
            required.insert(*c, ());
            continue;
        }
        let k = raw_plans.len() as u32;
        let s = Stream::load(store, c)?;
        let mut missing = Vec::with_capacity(s.recipe.chunks.len());
        let mut segments: Vec<RawSegment> = Vec::new();
        let mut new_here: Vec<(ChunkId, u32)> = Vec::new();
        for (j, (id, len)) in s.recipe.chunks.iter().enumerate() {
            let seg = if let Some(&(home, at)) = chunk_home.get(id) {
                required.insert(home, ());
                RawSegment::Base(home, at, 1)
            } else if let Some(&(stream, at)) = sent.get(id) {
                RawSegment::Earlier(stream, at, 1)
            } else {
                // Registered once the stream is planned: a chunk repeated inside one stream
                // is carried again (cheap, zstd sees it twice) rather than referenced
                // before the receiver has cut it.
                new_here.push((*id, j as u32));
                RawSegment::Missing(*len as u64)
            };
            missing.push(matches!(seg, RawSegment::Missing(_)));
            push_segment(&mut segments, seg);
        }
        for (id, j) in new_here {
            sent.entry(id).or_insert((k, j));
        }
        let ranges = delta::missing_ranges(&s, &missing);
        raw_plans.push((*c, s.recipe.len, segments));
        missing_ranges.push((*c, ranges));
        streams.insert(*c, s);
    }
    // Groups small enough that there are plenty of them: one big group encoding alone at
    // the end would leave the other cores idle. Their size depends only on the bytes to
    // send, so a patch does not depend on the machine that made it.
    let total_missing: u64 = missing_ranges
        .iter()
        .flat_map(|(_, r)| r)
        .map(|r| r.1 - r.0)
        .sum();
    let delta_opts = delta::DeltaOptions {
        group_target: (total_missing / MIN_GROUPS)
            .clamp(MIN_GROUP_TARGET, opts.delta.group_target.max(MIN_GROUP_TARGET)),
        ..opts.delta
    };
    for (c, ranges) in &missing_ranges {
        let g = delta::plan_stream(
            store,
            &streams[c],
            ranges,
            &base_index,
            base.preferred.get(c),
            &delta_opts,
        );
        for p in &g {
            for r in &p.refs {
                required.insert(r.0, ());
            }
        }
        plans.push((*c, g, ranges.iter().map(|r| r.1 - r.0).sum()));
    }
    let base_order: HashMap<Digest, u32> = required.keys().enumerate().map(|(i, d)| (*d, i as u32)).collect();
    let stream_plans: Vec<StreamPlan> = raw_plans
        .iter()
        .map(|(c, len, segs)| StreamPlan {
            content: *c,
            len: *len,
            segments: segs
                .iter()
                .map(|s| match *s {
                    RawSegment::Base(d, first, count) => Segment::Base {
                        base: base_order[&d],
                        first,
                        count,
                    },
                    RawSegment::Earlier(stream, first, count) => Segment::Earlier { stream, first, count },
                    RawSegment::Missing(len) => Segment::Missing { len },
                })
                .collect(),
        })
        .collect();

    let meta = Meta {
        creator: format!("booster {}", env!("CARGO_PKG_VERSION")),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        chunker: store.params(),
        images: targets
            .iter()
            .map(|t| BundleImage {
                name: t.name.clone(),
                digest: t.digest,
                media_type: t.media_type.clone(),
            })
            .collect(),
        base: required
            .keys()
            .map(|d| BaseEntry {
                content: *d,
                len: base_index.streams[d].recipe.len,
                label: labels.get(d).map(|s| s.to_string()).unwrap_or_default(),
            })
            .collect(),
    };

    let opens_archives = plans
        .iter()
        .any(|(_, groups, _)| groups.iter().any(|g| g.inner == delta::InnerKind::Zip));
    let version = if opens_archives {
        format::VERSION
    } else {
        format::VERSION_WITHOUT_ARCHIVES
    };
    let mut sink = Sink::new(path, opts, version)?;
    sink.section(SectionKind::Meta, &meta.encode())?;
    for chunk in stream_plans.chunks(256) {
        sink.section(SectionKind::Recipes, &format::encode_plans(chunk))?;
    }
    let metadata_so_far = sink.written();

    let mut per_content: HashMap<Digest, (u64, u64, bool)> = plans
        .iter()
        .map(|(c, groups, missing_bytes)| {
            let used_refs = groups.iter().any(|g| !g.refs.is_empty());
            (*c, (0, *missing_bytes, used_refs))
        })
        .collect();
    let mut inner_gzip_files = 0u64;
    let mut archives = ArchiveTally::default();
    let mut x86_filtered_groups = 0u64;
    let mut done_missing = 0u64;
    // Planning is over: from here on the bar counts encoded bytes.
    progress("encoding", 0, total_missing);
    let jobs: Vec<(Digest, &GroupPlan)> = plans
        .iter()
        .flat_map(|(c, groups, _)| groups.iter().map(move |g| (*c, g)))
        .collect();
    // Sections hold one stream's groups; a section is written once it is big enough or the
    // next group belongs to another stream, so memory stays bounded by a section plus the
    // workers' budget.
    let mut section = PayloadSection {
        content: jobs.first().map_or(Digest([0; 32]), |j| j.0),
        groups: Vec::new(),
    };
    let mut section_bytes = 0usize;
    let workers = opts.delta.workers.max(1);
    // Costliest groups first: one big group alone at the end would leave the other cores
    // idle. A group's cost (prefix and data) also bounds what encoding it holds in memory.
    let costs: Vec<u64> = jobs.iter().map(|(_, g)| g.encoding_cost()).collect();
    let mut start_order: Vec<usize> = (0..jobs.len()).collect();
    start_order.sort_by_key(|&k| std::cmp::Reverse(costs[k]));
    crate::ordered::map_in_order_starting(
        &jobs,
        &start_order,
        &costs,
        ENCODE_BUDGET,
        workers,
        |(c, plan)| delta::encode_group(store, &streams[c], &base_index, plan, opts.delta.level),
        |k, g| {
            let content = jobs[k].0;
            if !section.groups.is_empty() && (content != section.content || section_bytes >= SECTION_TARGET) {
                sink.section(SectionKind::Payload, &section.encode())?;
                section.groups.clear();
                section_bytes = 0;
            }
            section.content = content;
            match &g.inner {
                Some(Inner::Gzip(_)) => inner_gzip_files += 1,
                Some(Inner::Zip(z)) => {
                    archives.opened += 1;
                    archives.nested += z.archives.saturating_sub(1);
                    archives.members_opened += z.members_opened;
                    archives.members_compressed += z.members_compressed;
                }
                None if jobs[k].1.inner == delta::InnerKind::Zip => archives.as_bytes += 1,
                None => {}
            }
            x86_filtered_groups += g.filters.is_some() as u64;
            tracing::trace!(
                "group: {} pieces, {} new bytes, {} refs ({} bytes) -> frame {} bytes",
                g.pieces.len(),
                g.output_len(),
                g.refs.len(),
                g.prefix_len(),
                g.frame.len()
            );
            section_bytes += g.frame.len();
            if let Some(e) = per_content.get_mut(&content) {
                e.0 += g.frame.len() as u64;
            }
            done_missing += g.output_len();
            section.groups.push(g);
            progress("encoding", done_missing, total_missing);
            Ok(())
        },
    )?;
    if !section.groups.is_empty() {
        sink.section(SectionKind::Payload, &section.encode())?;
    }
    let payload_bytes = sink.written() - metadata_so_far;

    let blob_list: Vec<(Digest, BlobRecord)> = blobs.iter().map(|(d, r)| (*d, r.clone())).collect();
    for chunk in blob_list.chunks(1024) {
        sink.section(SectionKind::Blobs, &format::encode_blobs(chunk))?;
    }
    let mut docs: Vec<(Digest, Doc)> = Vec::new();
    for d in &closure.docs {
        if let Some(doc) = store.doc(d)? {
            docs.push((*d, doc));
        }
    }
    let mut batch: Vec<(Digest, Doc)> = Vec::new();
    let mut batch_bytes = 0;
    for (d, doc) in docs {
        batch_bytes += doc.data.len();
        batch.push((d, doc));
        if batch_bytes > (16 << 20) {
            sink.section(SectionKind::Docs, &format::encode_docs(&batch))?;
            batch.clear();
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        sink.section(SectionKind::Docs, &format::encode_docs(&batch))?;
    }
    let (files, total) = sink.finish()?;

    let mut report = BundleReport {
        files,
        bundle_bytes: total,
        payload_bytes,
        metadata_bytes: total - payload_bytes,
        images: meta.images.clone(),
        base_required: meta.base.len(),
        inner_gzip_files,
        archives,
        x86_filtered_groups,
        ..Default::default()
    };
    report.layers = layer_rows(store, &targets, &base_index, &per_content)?;
    report.attached = attached_tally(store, &targets)?;
    report.carried_whole_bytes = report
        .layers
        .iter()
        .filter(|l| l.carried_whole)
        .map(|l| l.bytes_in_bundle)
        .sum();
    Ok(report)
}

/// A segment while planning: base streams by digest (their index in the meta section is
/// known only once every plan is made).
#[derive(Debug, Clone, Copy)]
enum RawSegment {
    Base(Digest, u32, u32),
    Earlier(u32, u32, u32),
    Missing(u64),
}

/// Append a one-chunk segment, merging it into the previous one when they continue each
/// other.
fn push_segment(segments: &mut Vec<RawSegment>, seg: RawSegment) {
    match (segments.last_mut(), seg) {
        (Some(RawSegment::Base(d, first, count)), RawSegment::Base(d2, at, n))
            if *d == d2 && *first + *count == at =>
        {
            *count += n;
        }
        (Some(RawSegment::Earlier(s, first, count)), RawSegment::Earlier(s2, at, n))
            if *s == s2 && *first + *count == at =>
        {
            *count += n;
        }
        (Some(RawSegment::Missing(len)), RawSegment::Missing(n)) => *len += n,
        _ => segments.push(seg),
    }
}

/// The bundle file, or a counter when nothing is to be written (`--dry-run`).
enum Sink {
    File(BundleWriter),
    Count(u64),
}

impl Sink {
    fn new(path: &Path, opts: &BundleOptions, version: u32) -> Result<Sink> {
        Ok(if opts.dry_run {
            Sink::Count(format::HEADER_LEN as u64)
        } else {
            Sink::File(BundleWriter::create_version(path, opts.split, version)?)
        })
    }

    fn section(&mut self, kind: SectionKind, plain: &[u8]) -> Result<()> {
        match self {
            Sink::File(w) => {
                w.section(kind, plain)?;
            }
            Sink::Count(n) => {
                let body = if kind == SectionKind::Payload {
                    plain.len()
                } else {
                    zstd::bulk::compress(plain, 12)
                        .map(|z| z.len())
                        .unwrap_or(plain.len())
                };
                *n += (format::SECTION_HEADER_LEN + body) as u64;
            }
        }
        Ok(())
    }

    fn written(&self) -> u64 {
        match self {
            Sink::File(w) => w.bytes_written(),
            Sink::Count(n) => *n,
        }
    }

    fn finish(self) -> Result<(Vec<PathBuf>, u64)> {
        match self {
            Sink::File(w) => w.finish(),
            Sink::Count(n) => Ok((Vec::new(), n + format::TRAILER_LEN as u64 + 64)),
        }
    }
}

fn load_targets(store: &Store, images: &[String]) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for name in images {
        let rec = store
            .image(name)?
            .ok_or_else(|| Error::Usage(format!("image {name} is not in the store (pull it first)")))?;
        out.push(Target {
            name: name.clone(),
            digest: rec.digest,
            media_type: rec.media_type,
        });
    }
    Ok(out)
}

/// Blob records of every blob the targets need; all must be rebuildable, except those whose
/// content the receiver already has (its registry has those layers).
fn load_blobs(
    store: &Store,
    closure: &Closure,
    base: &HashSet<Digest>,
) -> Result<BTreeMap<Digest, BlobRecord>> {
    let mut out = BTreeMap::new();
    let mut not_rebuildable = Vec::new();
    for d in &closure.blobs {
        let rec = store.blob(d)?.expect("closure checked");
        if !rec.method.can_rebuild() && !base.contains(&rec.content) {
            not_rebuildable.push(d.to_string());
        }
        out.insert(*d, rec);
    }
    if !not_rebuildable.is_empty() {
        return Err(Error::format(
            "bundle",
            format!(
                "{} layer(s) were stored as delta bases only and cannot be rebuilt: {}; pull the new images with `booster pull`",
                not_rebuildable.len(),
                not_rebuildable.join(", ")
            ),
        ));
    }
    Ok(out)
}

fn layer_rows(
    store: &Store,
    targets: &[Target],
    base: &BaseIndex,
    per_content: &HashMap<Digest, (u64, u64, bool)>,
) -> Result<Vec<LayerRow>> {
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for t in targets {
        for m in manifests_of(store, &t.digest)? {
            let Some(doc) = store.doc(&m)? else { continue };
            let Parsed::Manifest { layers, .. } = manifest::parse(&doc.data, Some(&doc.media_type))? else {
                continue;
            };
            for l in layers {
                let d = l.digest()?;
                if !seen.insert(d) {
                    continue;
                }
                let Some(rec) = store.blob(&d)? else { continue };
                let (bytes, missing, used_refs) =
                    per_content.get(&rec.content).copied().unwrap_or((0, 0, false));
                let status = if base.streams.contains_key(&rec.content) || (missing == 0 && bytes == 0) {
                    LayerStatus::Shared
                } else if used_refs {
                    LayerStatus::Delta
                } else {
                    LayerStatus::New
                };
                let plain = store.recipe(&rec.content)?.map(|r| r.len).unwrap_or(0);
                rows.push(LayerRow {
                    image: t.name.clone(),
                    digest: d,
                    media_type: l.media_type.clone(),
                    compressed_size: l.size,
                    uncompressed_size: plain,
                    status,
                    method: rec.method.describe(),
                    carried_whole: matches!(rec.method, recompress::Method::Whole { .. }),
                    missing_bytes: missing,
                    bytes_in_bundle: bytes,
                });
            }
        }
    }
    Ok(rows)
}

/// What the targets that are attached to other images are (signatures, attestations, …).
fn attached_tally(store: &Store, targets: &[Target]) -> Result<crate::oci::referrers::Tally> {
    let mut tally = crate::oci::referrers::Tally::default();
    for t in targets {
        let Some(doc) = store.doc(&t.digest)? else {
            continue;
        };
        if let Some(a) = crate::oci::referrers::attached(&t.name, &doc.data) {
            tally.add(
                a.kind,
                crate::oci::referrers::manifest_and_blob_bytes(&doc.data, &doc.media_type),
            );
        }
    }
    Ok(tally)
}

/// The image manifests under a manifest or index digest.
pub fn manifests_of(store: &Store, d: &Digest) -> Result<Vec<Digest>> {
    let Some(doc) = store.doc(d)? else {
        return Ok(Vec::new());
    };
    Ok(match manifest::parse(&doc.data, Some(&doc.media_type))? {
        Parsed::Manifest { .. } => vec![*d],
        Parsed::Index { manifests, .. } => {
            let mut out = Vec::new();
            for m in manifests {
                if manifest::is_index(&m.media_type) {
                    out.extend(manifests_of(store, &m.digest()?)?);
                } else if manifest::is_manifest(&m.media_type) || m.media_type.is_empty() {
                    out.push(m.digest()?);
                }
            }
            out
        }
    })
}

/// The layer contents of a stored image, per manifest, in order (for base pairing).
pub fn layer_contents(store: &Store, d: &Digest) -> Result<Vec<Vec<Digest>>> {
    let mut out = Vec::new();
    for m in manifests_of(store, d)? {
        let Some(doc) = store.doc(&m)? else { continue };
        if let Parsed::Manifest { layers, .. } = manifest::parse(&doc.data, Some(&doc.media_type))? {
            let mut v = Vec::new();
            for l in layers {
                if let Some(rec) = store.blob(&l.digest()?)? {
                    v.push(rec.content);
                }
            }
            out.push(v);
        }
    }
    Ok(out)
}
