//! Deltas against what the receiver has: the payload of a bundle.
//!
//! The receiver lacks some chunks of each new plain stream. Those chunks form *missing
//! ranges*; each range is cut at tar entry boundaries into *pieces*, each owned by one entry
//! (its headers and content). For each owner booster looks for a *reference* in the base —
//! the old version of the same file, found by the same path in the matching old layer, then
//! the same path anywhere in the base, then the same path with version numbers masked, then
//! the same file name — and compresses the missing bytes with zstd using the references'
//! bytes as a prefix. Pieces with no reference still go through zstd with a long window.
//! Pieces are batched into *groups* (one zstd frame each) so small files share context.
//! The content of x86-64 ELF files goes through the x86 code filter on both sides
//! (`crate::x86filter`): rebuilt code moves, and the filter keeps its calls and data
//! references alike.

use std::collections::{HashMap, HashSet};

use zstd::zstd_safe;

use crate::bundle::{Filters, Inner, PayloadGroup, Piece};
use crate::error::{Error, Result};
use crate::id::Digest;
use crate::reassemble::{ChunkCheck, LastChunk, read_range, read_range_with};
use crate::store::{Recipe, Store};
use crate::tarindex::TarEntry;

#[derive(Debug, Clone, Copy)]
pub struct DeltaOptions {
    /// zstd level for payload frames.
    pub level: i32,
    /// New bytes per group before a new frame is started.
    pub group_target: u64,
    /// Longest piece a big file is cut into (each piece is read, and referenced by the
    /// old file, as a whole): bounds memory on both sides.
    pub piece_max: u64,
    /// Most reference bytes one group may use as its prefix.
    pub prefix_max: u64,
    /// Threads encoding groups.
    pub workers: usize,
}

impl Default for DeltaOptions {
    fn default() -> Self {
        DeltaOptions {
            level: 19,
            group_target: 8 << 20,
            piece_max: 8 << 20,
            prefix_max: 32 << 20,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        }
    }
}

/// A stream (base or new) with its recipe and tar index, for range reads and lookups.
pub struct Stream {
    pub digest: Digest,
    pub recipe: Recipe,
    pub offsets: Vec<u64>,
    pub entries: Vec<TarEntry>,
}

impl Stream {
    pub fn load(store: &Store, digest: &Digest) -> Result<Stream> {
        let recipe = store.recipe(digest)?.ok_or_else(|| Error::NotInStore {
            path: store.path().to_path_buf(),
            kind: "layer content",
            digest: *digest,
            hint: "",
        })?;
        let offsets = recipe.offsets();
        let entries = store.tar_index(digest)?;
        Ok(Stream {
            digest: *digest,
            recipe,
            offsets,
            entries,
        })
    }

    /// The range entry `i` owns: from the end of the previous entry's content (so its own
    /// headers and the padding before them) to the end of its content.
    pub fn owned(&self, i: usize) -> (u64, u64) {
        let start = if i == 0 {
            0
        } else {
            self.entries[i - 1].offset + self.entries[i - 1].size
        };
        (
            start.min(self.entries[i].offset),
            self.entries[i].offset + self.entries[i].size,
        )
    }

    /// The chunks lying wholly within entry `i`'s content: id, offset, length.
    fn chunks_within(&self, i: usize) -> Vec<(crate::id::ChunkId, u64, u32)> {
        let e = &self.entries[i];
        let first = self.offsets.partition_point(|&o| o < e.offset);
        (first..self.offsets.len())
            .map(|k| (self.recipe.chunks[k].0, self.offsets[k], self.recipe.chunks[k].1))
            .take_while(|(_, off, len)| off + *len as u64 <= e.offset + e.size)
            .collect()
    }

    /// Index of the entry owning byte `at`, if any.
    fn owner_of(&self, at: u64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let i = self.entries.partition_point(|e| e.offset + e.size <= at);
        (i < self.entries.len() && self.owned(i).0 <= at).then_some(i)
    }

    /// The target of symbolic link entry `i`, read from its tar headers (GNU long links and
    /// PAX `linkpath` records included).
    pub fn link_target(&self, store: &Store, i: usize) -> Option<Vec<u8>> {
        let e = &self.entries[i];
        let start = self.owned(i).0.next_multiple_of(512);
        let headers = self.read(store, start, e.offset.checked_sub(start)?).ok()?;
        let mut archive = tar::Archive::new(&headers[..]);
        let entry = archive.entries().ok()?.next()?.ok()?;
        entry.link_name_bytes().map(|t| t.into_owned())
    }

    pub fn read(&self, store: &Store, offset: u64, len: u64) -> Result<Vec<u8>> {
        read_range(store, &self.recipe, &self.offsets, offset, len, ChunkCheck::Each)
    }

    /// `read` proved as `check` says, reusing the chunk the previous read through `last`
    /// ended in (see `LastChunk`).
    pub fn read_with(
        &self,
        store: &Store,
        offset: u64,
        len: u64,
        check: ChunkCheck,
        last: &mut LastChunk,
    ) -> Result<Vec<u8>> {
        read_range_with(store, &self.recipe, &self.offsets, offset, len, check, last)
    }
}

/// Version numbers masked: `libssl.so.3.0.11` and `libssl.so.3.0.13`, or
/// `site-packages/pkg-1.2.dist-info/RECORD` and `…/pkg-1.3.dist-info/RECORD`, match.
fn masked(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut in_digits = false;
    for &b in path {
        if b.is_ascii_digit() {
            if !in_digits {
                out.push(b'#');
            }
            in_digits = true;
        } else {
            out.push(b);
            in_digits = false;
        }
    }
    out
}

/// Version numbers and hashes taken out of every path component: `foo-1.2.3.jar` and
/// `foo.jar`, `libfoo.so.1.2.3` and `libfoo.so`, auditwheel's `libgfortran-040039e1.so.5`
/// and `libgfortran-2a1b3c4d.so.5`, `pkg-1.26.0.dist-info/RECORD` and `pkg-2.0.dist-info/RECORD`
/// match. A token (between `-`, `_`, `.`, `+`, `~`) goes when it starts with a digit, or is a
/// hash: 8 or more hexadecimal digits, at least one a digit.
fn stripped(path: &[u8]) -> Vec<u8> {
    let is_sep = |b: u8| matches!(b, b'-' | b'_' | b'.' | b'+' | b'~' | b'/');
    let mut out = Vec::with_capacity(path.len());
    let mut at = 0;
    while at < path.len() {
        // A token: an optional separator, then the bytes up to the next separator.
        let sep = is_sep(path[at]) && path[at] != b'/';
        let body = at + sep as usize;
        let end = path[body..]
            .iter()
            .position(|&b| is_sep(b))
            .map_or(path.len(), |k| body + k);
        let token = &path[body..end];
        let versionish = token.first().is_some_and(u8::is_ascii_digit)
            || (token.len() >= 8
                && token.iter().all(u8::is_ascii_hexdigit)
                && token.iter().any(u8::is_ascii_digit));
        if !versionish {
            out.extend_from_slice(&path[at..end]);
        }
        at = end;
        if at < path.len() && path[at] == b'/' {
            out.push(b'/');
            at += 1;
        }
    }
    out
}

/// The path a symbolic link at `link` with target `target` names, normalised as tar index
/// paths are (None when it leaves the root).
fn resolve_link(link: &[u8], target: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = if target.starts_with(b"/") {
        Vec::new()
    } else {
        let dir = link
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(&link[..0], |k| &link[..k]);
        dir.split(|&b| b == b'/').filter(|p| !p.is_empty()).collect()
    };
    for p in target.split(|&b| b == b'/') {
        match p {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join(&b'/'))
}

/// A chunk id's first 8 bytes: enough to find where a chunk sits (a rare collision only
/// picks a worse reference), at a quarter of the memory.
type ChunkKey = u64;

fn chunk_key(id: &crate::id::ChunkId) -> ChunkKey {
    u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes"))
}

/// Most chunks of one new file looked up to find its old version by content.
const CONTENT_PROBES: usize = 256;

/// The tar typeflag of a symbolic link.
const SYMLINK: u8 = b'2';

/// Where the base's files are, by path, masked path and file name.
#[derive(Default)]
pub struct BaseIndex {
    pub streams: HashMap<Digest, Stream>,
    by_path: HashMap<Vec<u8>, Vec<(Digest, usize)>>,
    by_masked: HashMap<Vec<u8>, Vec<(Digest, usize)>>,
    by_name: HashMap<Vec<u8>, Vec<(Digest, usize)>>,
    by_stripped: HashMap<Vec<u8>, Vec<(Digest, usize)>>,
    /// Symbolic links of the base, by path (their targets are read when needed).
    by_link: HashMap<Vec<u8>, Vec<(Digest, usize)>>,
    /// Where the base holds each chunk (see `ChunkKey`), built on the first look-up.
    by_chunk: std::sync::OnceLock<HashMap<ChunkKey, (Digest, u64)>>,
    /// Streams that matches by masked path or file name do not pick (see
    /// `avoid_in_loose_matches`).
    loose_avoid: HashSet<Digest>,
}

impl BaseIndex {
    pub fn build(store: &Store, contents: &[Digest]) -> Result<BaseIndex> {
        let mut idx = BaseIndex::default();
        for d in contents {
            if idx.streams.contains_key(d) || !store.has_recipe(d)? {
                continue;
            }
            let s = Stream::load(store, d)?;
            for (i, e) in s.entries.iter().enumerate() {
                if e.kind == SYMLINK {
                    idx.by_link.entry(e.path.clone()).or_default().push((*d, i));
                }
                if !e.is_regular() || e.size == 0 {
                    continue;
                }
                idx.by_stripped
                    .entry(stripped(&e.path))
                    .or_default()
                    .push((*d, i));
                idx.by_path.entry(e.path.clone()).or_default().push((*d, i));
                idx.by_masked.entry(masked(&e.path)).or_default().push((*d, i));
                idx.by_name
                    .entry(e.file_name().to_vec())
                    .or_default()
                    .push((*d, i));
            }
            idx.streams.insert(*d, s);
        }
        Ok(idx)
    }

    /// Keep matches by masked path or file name out of `streams`: a reference that only
    /// guesses would make a receiver hold a stream it could otherwise do without (a layer
    /// the new images share unchanged), for a few bytes saved at best.
    pub fn avoid_in_loose_matches(&mut self, streams: HashSet<Digest>) {
        self.loose_avoid = streams;
    }

    /// The base entry (stream, index) most likely to hold the previous version of `entry`,
    /// whose new stream also reaches it by `aliases` (its symbolic links there): the same
    /// path; the same path followed through a symbolic link of the base; an alias, found
    /// either way; then guesses: the same path with version numbers masked, then with them
    /// (and hashes) taken out, then the same file name, then the file of the base that
    /// shares the most chunks with it (`by_content`).
    pub fn find_entry(
        &self,
        store: &Store,
        preferred: Option<&Digest>,
        entry: &TarEntry,
        aliases: &[Vec<u8>],
        by_content: impl FnOnce(&BaseIndex) -> Option<(Digest, usize)>,
    ) -> Option<(Digest, usize)> {
        if !entry.is_regular() || entry.size == 0 {
            return None;
        }
        let pick = |cands: &Vec<(Digest, usize)>, loose: bool| -> Option<(Digest, usize)> {
            let allowed = |d: &Digest| !loose || !self.loose_avoid.contains(d);
            if let Some(p) = preferred
                && let Some(c) = cands.iter().find(|(d, _)| d == p && allowed(d))
            {
                return Some(*c);
            }
            // Closest in size: the likeliest to be the same file's previous version.
            cands
                .iter()
                .filter(|(d, _)| allowed(d))
                .min_by_key(|(d, i)| self.streams[d].entries[*i].size.abs_diff(entry.size))
                .copied()
        };
        let exact = |path: &[u8]| {
            self.by_path
                .get(path)
                .and_then(|c| pick(c, false))
                .or_else(|| self.through_link(store, preferred, path))
        };
        exact(&entry.path)
            .or_else(|| aliases.iter().find_map(|a| exact(a)))
            .or_else(|| {
                self.by_masked
                    .get(&masked(&entry.path))
                    .and_then(|c| pick(c, true))
            })
            .or_else(|| {
                self.by_stripped
                    .get(&stripped(&entry.path))
                    .and_then(|c| pick(c, true))
            })
            .or_else(|| self.by_name.get(entry.file_name()).and_then(|c| pick(c, true)))
            .or_else(|| by_content(self).filter(|(d, _)| !self.loose_avoid.contains(d)))
    }

    /// The regular file of the base holding most of `chunks` (chunk id, its offset in the
    /// new file's stream, length) of a new file of `size` bytes: the old version of a file
    /// that moved and changed a little keeps some chunks. Only a file of about the same
    /// size (within 2×) that holds at least a quarter of the new one counts: a chunk or two
    /// in common (zeros, a shared library blob) says little, and a reference that does not
    /// help costs its group prefix room. At most `CONTENT_PROBES` chunks are looked up.
    pub fn holding_most(
        &self,
        chunks: &[(crate::id::ChunkId, u64, u32)],
        size: u64,
    ) -> Option<(Digest, usize)> {
        let by_chunk = self.by_chunk.get_or_init(|| {
            let mut m = HashMap::new();
            // In digest order: a chunk several streams hold is found in the same one on
            // every run, so bundles do not depend on the order of a hash map.
            let mut streams: Vec<(&Digest, &Stream)> = self.streams.iter().collect();
            streams.sort_by_key(|(d, _)| **d);
            for (d, s) in streams {
                for ((id, _), off) in s.recipe.chunks.iter().zip(&s.offsets) {
                    m.entry(chunk_key(id)).or_insert((*d, *off));
                }
            }
            m
        });
        let mut votes: HashMap<(Digest, usize), u64> = HashMap::new();
        for (id, _, len) in chunks.iter().take(CONTENT_PROBES) {
            let Some((d, off)) = by_chunk.get(&chunk_key(id)) else {
                continue;
            };
            let s = &self.streams[d];
            if let Some(j) = s.owner_of(off + *len as u64 / 2)
                && s.entries[j].is_regular()
                && s.entries[j].size >= size / 2
                && s.entries[j].size <= size.saturating_mul(2)
            {
                *votes.entry((*d, j)).or_default() += *len as u64;
            }
        }
        votes
            .into_iter()
            .filter(|(_, v)| *v >= size / 4)
            .max_by_key(|(k, v)| (*v, std::cmp::Reverse(*k)))
            .map(|(k, _)| k)
    }

    /// Whether a base stream has a regular file at `path`.
    pub fn has_file(&self, path: &[u8]) -> bool {
        self.by_path.contains_key(path)
    }

    /// The regular file a symbolic link of the base at `path` leads to, in the same stream
    /// (the preferred stream's link first).
    fn through_link(
        &self,
        store: &Store,
        preferred: Option<&Digest>,
        path: &[u8],
    ) -> Option<(Digest, usize)> {
        let links = self.by_link.get(path)?;
        let mut order: Vec<&(Digest, usize)> = links.iter().collect();
        order.sort_by_key(|(d, _)| Some(d) != preferred);
        order.into_iter().find_map(|(d, i)| {
            let s = &self.streams[d];
            let mut at = *i;
            // A chain of links, followed a few hops.
            for _ in 0..8 {
                let e = &s.entries[at];
                if e.is_regular() {
                    return (e.size > 0).then_some((*d, at));
                }
                if e.kind != SYMLINK {
                    return None;
                }
                let target = resolve_link(&e.path, &s.link_target(store, at)?)?;
                at = s.entries.iter().rposition(|x| x.path == target)?;
            }
            None
        })
    }

    /// The base range to use as reference for `entry` of a new stream: the range the old
    /// entry owns (its headers and content).
    pub fn owned_range(&self, (d, i): (Digest, usize)) -> (Digest, u64, u64) {
        let (a, b) = self.streams[&d].owned(i);
        (d, a, b)
    }
}

/// Files carried by their plain text (see `PayloadGroup::inner`): names of gzip files.
/// The content itself decides in the end (a file that is not gzip falls back).
fn looks_gzipped(path: &[u8]) -> bool {
    path.ends_with(b".gz") || path.ends_with(b".tgz") || path.ends_with(b".svgz")
}

/// Inner gzip files larger than this (compressed or plain) are carried as bytes.
pub const MAX_INNER_GZIP_PLAIN: u64 = 64 << 20;

/// Archives the receiver partly holds are opened for missing parts of at least this many
/// bytes: a smaller part is cheaper as bytes, in the group its neighbours share, than in a
/// group of its own.
const MIN_ARCHIVE_PIECE: u64 = 16 << 10;

/// Bytes read from the start of a file to recognise what it holds.
const HEAD_LEN: u64 = 20;

/// Files smaller than this are not worth checking for machine code.
const MIN_X86_FILE: u64 = 4096;

/// Which files a group carries by their plain text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InnerKind {
    #[default]
    None,
    Gzip,
    Zip,
}

/// A group to encode: references (base ranges) and pieces (ranges of the new stream).
#[derive(Debug, Clone, Default)]
pub struct GroupPlan {
    pub refs: Vec<(Digest, u64, u64)>,
    pub pieces: Vec<Piece>,
    /// One piece holding one whole compressed file, and at most one reference (the old
    /// version's content): tried by its plain text (`PayloadGroup::inner`).
    pub inner: InnerKind,
    /// For a zip group: the archive's offset and size in the new stream. Its pieces are the
    /// parts of it the receiver lacks (the receiver rebuilds it whole and takes them).
    pub archive: Option<(u64, u64)>,
    /// x86 filter origins, parallel to `refs` and `pieces` (see `Filters`).
    pub ref_filters: Vec<Option<u64>>,
    pub piece_filters: Vec<Option<u64>>,
}

impl GroupPlan {
    /// Bytes that go through the frame (copies do not).
    fn data_len(&self) -> u64 {
        self.pieces
            .iter()
            .filter(|p| p.copy.is_none())
            .map(|p| p.len)
            .sum()
    }

    /// Bytes of the new stream the group fills.
    pub fn output_len(&self) -> u64 {
        self.pieces.iter().map(|p| p.len).sum()
    }

    fn prefix_len(&self) -> u64 {
        self.refs.iter().map(|r| r.2).sum()
    }

    /// What encoding the group costs, roughly: zstd indexes the prefix and then encodes
    /// the data.
    pub fn encoding_cost(&self) -> u64 {
        match self.archive {
            // Both archives opened: outlines a few times their size, and the expansion.
            Some((_, size)) => (self.prefix_len() + size).saturating_mul(4),
            None => self.prefix_len() + self.data_len(),
        }
    }
}

/// Ranges `[start, end)` of chunks flagged missing, merged.
pub fn missing_ranges(stream: &Stream, missing: &[bool]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, &m) in missing.iter().enumerate() {
        if !m {
            continue;
        }
        let start = stream.offsets[i];
        let end = start + stream.recipe.chunks[i].1 as u64;
        match out.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => out.push((start, end)),
        }
    }
    out
}

/// Plan the groups for the missing ranges of a new stream. Pieces whose bytes equal the
/// same range of their reference become copies (the store is read to compare).
pub fn plan_stream(
    store: &Store,
    new: &Stream,
    ranges: &[(u64, u64)],
    base: &BaseIndex,
    preferred: Option<&Digest>,
    opts: &DeltaOptions,
) -> Vec<GroupPlan> {
    let mut p = Planner {
        store,
        new,
        base,
        preferred,
        opts,
        groups: Vec::new(),
        cur: GroupPlan::default(),
        heads: HashMap::new(),
        references: HashMap::new(),
        aliases: None,
    };
    for &(start, end) in ranges {
        let mut at = start;
        while at < end {
            at = p.plan_piece(at, end);
        }
    }
    if !p.cur.pieces.is_empty() {
        p.groups.push(p.cur);
    }
    p.groups
}

/// A piece or a reference with its x86 filter origin (None: unfiltered).
type Filtered<T> = (T, Option<u64>);

/// What planning one new stream needs, and the groups made so far.
struct Planner<'a> {
    store: &'a Store,
    new: &'a Stream,
    base: &'a BaseIndex,
    preferred: Option<&'a Digest>,
    opts: &'a DeltaOptions,
    groups: Vec<GroupPlan>,
    /// The group being filled.
    cur: GroupPlan,
    /// The first bytes of entries of the new stream, read to recognise their content.
    heads: HashMap<usize, Option<Vec<u8>>>,
    /// References found so far, by entry of the new stream.
    references: HashMap<usize, Option<(Digest, usize)>>,
    /// See `aliases`.
    aliases: Option<HashMap<usize, Vec<Vec<u8>>>>,
}

impl Planner<'_> {
    /// Plan the piece of the missing range `[at, end)` that starts at `at`; returns where
    /// it ends.
    fn plan_piece(&mut self, at: u64, end: u64) -> u64 {
        let new = self.new;
        let owner = new.owner_of(at);
        let piece_end = match owner {
            Some(i) => new.owned(i).1.min(end),
            // Before the first entry's range, or in the archive's tail.
            None => {
                let next = new.entries.iter().map(|e| e.offset).find(|&o| o > at);
                next.map(|n| n.min(end)).unwrap_or(end)
            }
        };
        let piece_end = piece_end.max(at + 1).min(end);
        if let Some(i) = owner
            && self.plan_inner_file(i, at, piece_end)
        {
            return piece_end;
        }
        // A big file is cut into pieces of at most `piece_max`, so that neither side ever
        // holds more than that of it (and no group exceeds the receiver's limits, however
        // large the file). Not smaller: each piece indexes the old file as its prefix.
        let piece_end = piece_end.min(at.saturating_add(self.opts.piece_max.max(1)));
        match owner {
            Some(i) if self.is_x86_code(i) && at.max(new.entries[i].offset) < piece_end => {
                self.plan_x86_piece(i, at, piece_end)
            }
            _ => self.add_plain_piece(owner, at, piece_end),
        }
        piece_end
    }

    /// Bytes `[at, end)` owned by entry `owner` (if any), unfiltered: a copy when they are
    /// unchanged, else referenced by the old version of the same file.
    fn add_plain_piece(&mut self, owner: Option<usize>, at: u64, end: u64) {
        let new = self.new;
        let reference = owner.and_then(|i| {
            self.reference_entry(i)
                .map(|r| self.base.owned_range(r))
                .map(|(d, a, b)| {
                    clip_reference(a, b, at - new.owned(i).0, self.opts.prefix_max)
                        .map(|(ca, cb)| (d, ca, cb - ca))
                        .unwrap_or((d, a, b - a))
                })
        });
        let piece = Piece {
            offset: at,
            len: end - at,
            copy: owner.and_then(|i| self.unchanged_source(i, at, end)),
        };
        if tracing::enabled!(tracing::Level::TRACE) {
            let path = owner
                .map(|i| String::from_utf8_lossy(&new.entries[i].path).to_string())
                .unwrap_or_default();
            tracing::trace!(
                "piece {at}+{} owner {path:?} ref {:?} copy {}",
                piece.len,
                reference.map(|r| (r.0.short(), r.1, r.2)),
                piece.copy.is_some()
            );
        }
        self.add((piece, None), reference.map(|r| (r, None)));
    }

    /// A whole gzip file or zip archive inside the missing range: its headers go the usual
    /// way, its content into a group of its own that is tried by its plain text. True when
    /// it was planned so.
    fn plan_inner_file(&mut self, i: usize, at: u64, piece_end: u64) -> bool {
        let e = &self.new.entries[i];
        let (start, end) = (at.max(e.offset), piece_end);
        if !(e.is_regular() && e.size >= 64 && start < end && end <= e.offset + e.size) {
            return false;
        }
        let whole_content = start == e.offset && end == e.offset + e.size;
        let kind = if whole_content && e.size <= MAX_INNER_GZIP_PLAIN && looks_gzipped(&e.path) {
            InnerKind::Gzip
        } else if e.size <= crate::zipfile::MAX_ARCHIVE
            && (whole_content || end - start >= MIN_ARCHIVE_PIECE)
            && self.head(i).is_some_and(crate::zipfile::looks_like_zip)
            && self.unchanged_source(i, start, end).is_none()
            && self.reference_size(i) <= crate::zipfile::MAX_ARCHIVE
        {
            InnerKind::Zip
        } else {
            return false;
        };
        // (An unchanged archive in a chunk the receiver lacks is copied from its old
        // version: nearly free, where a group of its own would cost its neighbours their
        // shared context; two unchanged 400-byte `.npz` files of the test bed's scenario B
        // cost 4 KB more opened.)
        if at < e.offset {
            self.add_headers_piece(i, at);
        }
        if !self.cur.pieces.is_empty() {
            self.groups.push(std::mem::take(&mut self.cur));
        }
        let e = &self.new.entries[i];
        let piece = Piece {
            offset: start,
            len: end - start,
            copy: None,
        };
        // Another part of an archive whose earlier part was just planned: the same group
        // (the receiver rebuilds the archive once).
        if let Some(last) = self.groups.last_mut()
            && last.inner == InnerKind::Zip
            && last.archive == Some((e.offset, e.size))
        {
            last.pieces.push(piece);
            last.piece_filters.push(None);
            return true;
        }
        let max_ref = match kind {
            InnerKind::Zip => crate::zipfile::MAX_ARCHIVE,
            _ => MAX_INNER_GZIP_PLAIN,
        };
        let old = self.reference_entry(i).map(|(d, j)| {
            let oe = &self.base.streams[&d].entries[j];
            (d, oe.offset, oe.size)
        });
        let refs: Vec<_> = old.into_iter().filter(|r| r.2 <= max_ref).collect();
        let e = &self.new.entries[i];
        self.groups.push(GroupPlan {
            ref_filters: vec![None; refs.len()],
            refs,
            pieces: vec![piece],
            piece_filters: vec![None],
            inner: kind,
            archive: (kind == InnerKind::Zip).then_some((e.offset, e.size)),
        });
        true
    }

    /// The base entry holding the previous version of entry `i` of the new stream (looked
    /// up once).
    fn reference_entry(&mut self, i: usize) -> Option<(Digest, usize)> {
        if let Some(r) = self.references.get(&i) {
            return *r;
        }
        let new = self.new;
        let e = &new.entries[i];
        let by_content = |base: &BaseIndex| base.holding_most(&new.chunks_within(i), e.size);
        let r = if self.base.has_file(&e.path) {
            self.base
                .find_entry(self.store, self.preferred, e, &[], by_content)
        } else {
            let aliases = self.aliases().get(&i).cloned().unwrap_or_default();
            self.base
                .find_entry(self.store, self.preferred, e, &aliases, by_content)
        };
        self.references.insert(i, r);
        r
    }

    /// The size of entry `i`'s old version (0 without one). An archive whose old version is
    /// too large to open goes the usual way, which keeps a window of the old file.
    fn reference_size(&mut self, i: usize) -> u64 {
        self.reference_entry(i)
            .map_or(0, |(d, j)| self.base.streams[&d].entries[j].size)
    }

    /// Symbolic links of the new stream at paths where the base has a regular file, by the
    /// entry they lead to: a package that turned `foo.jar` into a link to `foo-1.2.3.jar`
    /// finds the old `foo.jar` for the new `foo-1.2.3.jar` this way.
    fn aliases(&mut self) -> &HashMap<usize, Vec<Vec<u8>>> {
        let (store, new, base) = (self.store, self.new, self.base);
        self.aliases.get_or_insert_with(|| {
            let mut out: HashMap<usize, Vec<Vec<u8>>> = HashMap::new();
            let by_path: HashMap<&[u8], usize> = new
                .entries
                .iter()
                .enumerate()
                .map(|(k, e)| (&e.path[..], k))
                .collect();
            for (k, e) in new.entries.iter().enumerate() {
                if e.kind != SYMLINK || !base.has_file(&e.path) {
                    continue;
                }
                let mut at = k;
                for _ in 0..8 {
                    let Some(t) = new
                        .link_target(store, at)
                        .and_then(|t| resolve_link(&new.entries[at].path, &t))
                    else {
                        break;
                    };
                    let Some(&j) = by_path.get(&t[..]) else { break };
                    if new.entries[j].is_regular() {
                        out.entry(j).or_default().push(e.path.clone());
                        break;
                    }
                    if new.entries[j].kind != SYMLINK {
                        break;
                    }
                    at = j;
                }
            }
            out
        })
    }

    /// The first bytes of entry `i` of the new stream (read once).
    fn head(&mut self, i: usize) -> Option<&[u8]> {
        let (store, new) = (self.store, self.new);
        let e = &new.entries[i];
        self.heads
            .entry(i)
            .or_insert_with(|| new.read(store, e.offset, e.size.min(HEAD_LEN)).ok())
            .as_deref()
    }

    /// Whether entry `i` of the new stream is an x86-64 ELF file (its first bytes are read
    /// once).
    fn is_x86_code(&mut self, i: usize) -> bool {
        let e = &self.new.entries[i];
        if !e.is_regular() || e.size < MIN_X86_FILE {
            return false;
        }
        self.head(i).is_some_and(crate::x86filter::is_x86_64_elf)
    }

    /// The headers before entry `i`'s content, from `at`: referenced by the old entry's
    /// headers.
    fn add_headers_piece(&mut self, i: usize, at: u64) {
        let e = &self.new.entries[i];
        let reference = self.reference_entry(i).map(|(d, j)| {
            let (a, _) = self.base.streams[&d].owned(j);
            ((d, a, self.base.streams[&d].entries[j].offset - a), None)
        });
        let piece = Piece {
            offset: at,
            len: e.offset - at,
            copy: None,
        };
        self.add((piece, None), reference.filter(|r| r.0.2 > 0));
    }

    /// A piece of an x86-64 ELF file: its headers the usual way, its content filtered, with
    /// the old version's content (filtered alike, clipped to the prefix budget) as
    /// reference.
    fn plan_x86_piece(&mut self, i: usize, at: u64, end: u64) {
        let e = &self.new.entries[i];
        if at < e.offset {
            self.add_headers_piece(i, at);
        }
        let start = at.max(e.offset);
        let copy = self.unchanged_source(i, start, end);
        let piece = Piece {
            offset: start,
            len: end - start,
            copy,
        };
        if copy.is_some() {
            self.add((piece, None), None);
            return;
        }
        let origin = start - e.offset;
        let reference = self.reference_entry(i).map(|(d, j)| {
            let oe = &self.base.streams[&d].entries[j];
            let (a, b) = clip_reference(oe.offset, oe.offset + oe.size, origin, self.opts.prefix_max)
                .unwrap_or((oe.offset, oe.offset + oe.size));
            ((d, a, b - a), Some(a - oe.offset))
        });
        self.add((piece, Some(origin)), reference);
    }

    /// Add a piece (and its reference) to the current group, starting a new group when the
    /// current one is full. A copy needs no reference in the prefix.
    fn add(&mut self, (piece, filter): Filtered<Piece>, reference: Option<Filtered<(Digest, u64, u64)>>) {
        let opts = self.opts;
        let reference = reference.filter(|_| piece.copy.is_none());
        let known = |cur: &GroupPlan, r: &Filtered<(Digest, u64, u64)>| {
            cur.refs
                .iter()
                .zip(&cur.ref_filters)
                .any(|(a, f)| (a, f) == (&r.0, &r.1))
        };
        let adds_prefix = reference
            .filter(|r| !known(&self.cur, r))
            .map(|r| r.0.2)
            .unwrap_or(0);
        if !self.cur.pieces.is_empty()
            && (self.cur.data_len() >= opts.group_target
                || self.cur.prefix_len() + adds_prefix > opts.prefix_max)
        {
            self.groups.push(std::mem::take(&mut self.cur));
        }
        let cur = &mut self.cur;
        if let Some(r) = reference
            && !known(cur, &r)
            && r.0.2 <= opts.prefix_max
        {
            cur.refs.push(r.0);
            cur.ref_filters.push(r.1);
        }
        let last = cur.pieces.last_mut().zip(cur.piece_filters.last());
        match last {
            // Adjacent pieces merge when they come the same way (copies stay contiguous in
            // their source, filtered bytes in their file).
            Some((last, last_filter))
                if last.offset + last.len == piece.offset
                    && match (last.copy, piece.copy) {
                        (None, None) => match (last_filter, filter) {
                            (None, None) => true,
                            (Some(a), Some(b)) => a + last.len == b,
                            _ => false,
                        },
                        (Some((d1, a1)), Some((d2, a2))) => d1 == d2 && a1 + last.len == a2,
                        _ => false,
                    } =>
            {
                last.len += piece.len
            }
            _ => {
                cur.pieces.push(piece);
                cur.piece_filters.push(filter);
            }
        }
    }

    /// When the new entry owns a range as long as its reference's and this piece's bytes
    /// are the same as the reference's at the same position, the base range to copy them
    /// from.
    fn unchanged_source(&mut self, i: usize, at: u64, end: u64) -> Option<(Digest, u64)> {
        let new = self.new;
        let (own_start, own_end) = new.owned(i);
        let (d, a, b) = self.base.owned_range(self.reference_entry(i)?);
        if b - a != own_end - own_start {
            return None;
        }
        let src = a + (at - own_start);
        let len = end - at;
        let old = self.base.streams[&d].read(self.store, src, len).ok()?;
        let cur = new.read(self.store, at, len).ok()?;
        (old == cur).then_some((d, src))
    }
}

/// A reference larger than the prefix budget is cut to a window around the position the
/// piece has in its own file: big files change in place more often than they move.
fn clip_reference(a: u64, b: u64, rel: u64, max: u64) -> Option<(u64, u64)> {
    if b - a <= max {
        return None;
    }
    let center = (a + rel).min(b);
    let start = center.saturating_sub(max / 2).max(a);
    let end = (start + max).min(b);
    Some((end.saturating_sub(max).max(a), end))
}

fn zstd_err(code: usize) -> Error {
    Error::format("zstd", zstd_safe::get_error_name(code).to_string())
}

fn window_log_for(total: u64) -> u32 {
    let mut log = 10u32;
    while (1u64 << log) < total && log < 31 {
        log += 1;
    }
    log
}

/// Compress `data` with `prefix` as zstd's reference prefix.
pub fn compress_with_prefix(prefix: &[u8], data: &[u8], level: i32) -> Result<Vec<u8>> {
    use zstd_safe::CParameter;
    let mut cctx = zstd_safe::CCtx::create();
    let total = (prefix.len() + data.len()) as u64;
    let wlog = window_log_for(total.max(1));
    cctx.set_parameter(CParameter::CompressionLevel(level))
        .map_err(zstd_err)?;
    cctx.set_parameter(CParameter::WindowLog(wlog))
        .map_err(zstd_err)?;
    cctx.set_parameter(CParameter::ChecksumFlag(false))
        .map_err(zstd_err)?;
    if total > (8 << 20) {
        cctx.set_parameter(CParameter::EnableLongDistanceMatching(true))
            .map_err(zstd_err)?;
    }
    cctx.set_pledged_src_size(Some(data.len() as u64))
        .map_err(zstd_err)?;
    if !prefix.is_empty() {
        cctx.ref_prefix(prefix).map_err(zstd_err)?;
    }
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(data.len()));
    cctx.compress2(&mut out, data).map_err(zstd_err)?;
    Ok(out)
}

/// Decompress a frame made by `compress_with_prefix`; refuses output longer than `expect`.
pub fn decompress_with_prefix(prefix: &[u8], frame: &[u8], expect: usize) -> Result<Vec<u8>> {
    let mut dctx = zstd_safe::DCtx::create();
    dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(31))
        .map_err(zstd_err)?;
    if !prefix.is_empty() {
        dctx.ref_prefix(prefix).map_err(zstd_err)?;
    }
    let mut out: Vec<u8> = Vec::with_capacity(expect + 1);
    let n = dctx.decompress(&mut out, frame).map_err(zstd_err)?;
    if n != expect {
        return Err(Error::format(
            "payload frame",
            format!("decodes to {n} bytes, the bundle says {expect}"),
        ));
    }
    Ok(out)
}

/// Read the bytes a plan needs and encode it.
pub fn encode_group(
    store: &Store,
    new: &Stream,
    base: &BaseIndex,
    plan: &GroupPlan,
    level: i32,
) -> Result<PayloadGroup> {
    let filter = |bytes: &mut Vec<u8>, origin: Option<&Option<u64>>| {
        if let Some(Some(o)) = origin {
            crate::x86filter::encode(bytes, *o, crate::x86filter::WRITTEN);
        }
    };
    let mut prefix = Vec::with_capacity(plan.prefix_len() as usize);
    let mut last = LastChunk::default();
    for (k, (d, off, len)) in plan.refs.iter().enumerate() {
        let mut bytes = base.streams[d].read_with(store, *off, *len, ChunkCheck::Each, &mut last)?;
        filter(&mut bytes, plan.ref_filters.get(k));
        prefix.extend(bytes);
    }
    let mut data = Vec::with_capacity(plan.data_len() as usize);
    for (k, p) in plan.pieces.iter().enumerate().filter(|(_, p)| p.copy.is_none()) {
        let mut bytes = new.read_with(store, p.offset, p.len, ChunkCheck::Each, &mut last)?;
        filter(&mut bytes, plan.piece_filters.get(k));
        data.extend(bytes);
    }
    let filtered = plan
        .ref_filters
        .iter()
        .chain(&plan.piece_filters)
        .any(Option::is_some);
    let frame = if data.is_empty() {
        Vec::new()
    } else {
        compress_with_prefix(&prefix, &data, level)?
    };
    let bytes = PayloadGroup {
        refs: plan.refs.clone(),
        pieces: plan.pieces.clone(),
        frame,
        inner: None,
        filters: filtered.then(|| Filters {
            variant: crate::x86filter::WRITTEN,
            refs: plan.ref_filters.clone(),
            pieces: plan.piece_filters.clone(),
        }),
    };
    // An unchanged file costs nearly nothing as bytes; a changed one is tried by its plain
    // text, and the smaller encoding wins.
    let by_plain_text = match plan.inner {
        _ if prefix == data => None,
        InnerKind::None => None,
        InnerKind::Gzip => encode_inner_gzip(plan, &prefix, &data, level)?,
        InnerKind::Zip => {
            let (start, len) = plan.archive.expect("a zip group names its archive");
            let whole = new.read_with(store, start, len, ChunkCheck::Each, &mut last)?;
            encode_inner_zip(plan, &prefix, &whole, start, level)?
        }
    };
    match by_plain_text {
        Some(g) if g.frame.len() + g.inner.as_ref().map_or(0, |i| i.overhead()) < bytes.frame.len() => Ok(g),
        _ => Ok(bytes),
    }
}

/// A gzip file by its plain text: its delta against the old version's plain text, plus the
/// method that rebuilds the exact gzip bytes. None when booster cannot rebuild the file.
fn encode_inner_gzip(plan: &GroupPlan, old: &[u8], new: &[u8], level: i32) -> Result<Option<PayloadGroup>> {
    let Some((method, new_plain)) = recompress::analyze::analyze_gzip_bytes(new, MAX_INNER_GZIP_PLAIN) else {
        return Ok(None);
    };
    // Prove the whole file rebuilds before relying on it.
    if recompress::rebuild::rebuild_gzip_bytes(&method, &new_plain).as_deref() != Ok(new) {
        return Ok(None);
    }
    let old_plain = gunzip_bounded(old, MAX_INNER_GZIP_PLAIN).unwrap_or_default();
    let refs = if old_plain.is_empty() {
        Vec::new()
    } else {
        plan.refs.clone()
    };
    let mut w = crate::codec::Writer::new();
    method.encode(&mut w);
    Ok(Some(PayloadGroup {
        refs,
        pieces: plan.pieces.clone(),
        frame: compress_with_prefix(&old_plain, &new_plain, level)?,
        inner: Some(Inner::Gzip(crate::bundle::InnerGzip {
            method: w.into_inner(),
            plain_len: new_plain.len() as u64,
        })),
        filters: None,
    }))
}

/// A zip archive by its members' plain text: its expansion's delta against the old
/// version's outline (`crate::zipfile`). None when booster does not open the archive.
fn encode_inner_zip(
    plan: &GroupPlan,
    old: &[u8],
    new: &[u8],
    start: u64,
    level: i32,
) -> Result<Option<PayloadGroup>> {
    let Some(expansion) = crate::zipfile::expand(new) else {
        return Ok(None);
    };
    let expanded = expansion.encode();
    if expanded.len() as u64 > crate::bundle::format::MAX_GROUP_OUTPUT {
        return Ok(None); // a receiver would refuse the group
    }
    // Prove the expansion reads back as built: each member's model was proven on its own
    // bytes, and the parts tile the archive, so the rebuild is the archive.
    if crate::zipfile::Expansion::decode_recipe(&expanded).as_ref() != Ok(&expansion.recipe) {
        return Ok(None);
    }
    let old_view = archive_prefix(old);
    Ok(Some(PayloadGroup {
        refs: plan.refs.clone(),
        pieces: plan.pieces.clone(),
        frame: compress_with_prefix(&old_view, &expanded, level)?,
        inner: Some(Inner::Zip(crate::bundle::InnerZip {
            expanded_len: expanded.len() as u64,
            archive_len: new.len() as u64,
            skip: plan.pieces[0].offset - start,
            archives: expansion.stats.archives,
            members_opened: expansion.stats.members_opened,
            members_compressed: expansion.stats.members_compressed,
        })),
        filters: None,
    }))
}

/// What a zip group's frame is decoded against: the old archive's outline, or its bytes
/// when booster does not open it (either way a function of those bytes alone, so that
/// sender and receiver agree).
pub fn archive_prefix(old: &[u8]) -> Vec<u8> {
    crate::zipfile::outline(old).unwrap_or_else(|| old.to_vec())
}

/// The plain text of a gzip file, if it is one and not larger than `max`.
pub fn gunzip_bounded(gz: &[u8], max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    if gz.len() < 18 || gz[..2] != [0x1f, 0x8b] {
        return None;
    }
    let mut out = Vec::new();
    let mut dec = recompress::decode::GzipDecoder::new(gz);
    (&mut dec).take(max + 1).read_to_end(&mut out).ok()?;
    (out.len() as u64 <= max).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Store a tar as a plain stream; its content digest.
    fn ingest_tar(store: &Store, bytes: Vec<u8>) -> Digest {
        let out = crate::ingest::ingest(
            store,
            &mut &bytes[..],
            "test tar",
            crate::ingest::IngestOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        out.digest.unwrap()
    }

    #[test]
    fn stripped_paths_drop_versions_and_hashes() {
        let same =
            |a: &[u8], b: &[u8]| assert_eq!(stripped(a), stripped(b), "{:?}", String::from_utf8_lossy(a));
        same(b"usr/share/java/foo-1.2.3.jar", b"usr/share/java/foo.jar");
        same(
            b"usr/share/java/tomcat10-el-api-10.1.55.jar",
            b"usr/share/java/tomcat10-el-api.jar",
        );
        same(b"usr/lib/libfoo.so.1.2.3", b"usr/lib/libfoo.so");
        same(
            b"site-packages/numpy.libs/libgfortran-040039e1.so.5.0.0",
            b"site-packages/numpy.libs/libgfortran-2a1b3c4d.so.5.0.0",
        );
        same(
            b"site-packages/pkg-1.26.0.dist-info/RECORD",
            b"site-packages/pkg-2.0.dist-info/RECORD",
        );
        assert_ne!(
            stripped(b"usr/share/java/foo.jar"),
            stripped(b"usr/share/java/bar.jar")
        );
        // Names are kept: a digit inside a word is not a version.
        assert_eq!(stripped(b"usr/lib/python3/x.py"), b"usr/lib/python3/x.py");
    }

    #[test]
    fn links_resolve_like_paths() {
        assert_eq!(
            resolve_link(b"usr/share/java/foo.jar", b"foo-1.2.jar").unwrap(),
            b"usr/share/java/foo-1.2.jar"
        );
        assert_eq!(
            resolve_link(b"usr/share/java/foo.jar", b"../maven/foo.jar").unwrap(),
            b"usr/share/maven/foo.jar"
        );
        assert_eq!(
            resolve_link(b"usr/bin/x", b"/etc/alternatives/x").unwrap(),
            b"etc/alternatives/x"
        );
        assert_eq!(resolve_link(b"a", b"../../x"), None);
    }

    /// Old versions under new names: a link of the base followed to its file, a link of
    /// the new stream that names the old file, and versions taken out of the name.
    #[test]
    fn renamed_files_find_their_old_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut file = |path: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, path, data).unwrap();
        };
        file("usr/share/java/b-1.0.jar", &[1; 100]);
        file("usr/share/java/foo.jar", &[2; 100]);
        file("usr/share/java/tomcat-9.0.jar", &[3; 100]);
        let mut x = 88172645463325252u64;
        let big: Vec<u8> = (0..600_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        file("opt/app/data-7f3a9c21e4.bin", &big);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tar.append_link(&mut h, "usr/share/java/b.jar", "b-1.0.jar")
            .unwrap();
        let d = ingest_tar(&store, tar.into_inner().unwrap());
        let base = BaseIndex::build(&store, &[d]).unwrap();
        let path_of = |r: Option<(Digest, usize)>| {
            r.map(|(d, i)| String::from_utf8(base.streams[&d].entries[i].path.clone()).unwrap())
        };
        let entry = |path: &str| TarEntry {
            path: path.as_bytes().to_vec(),
            kind: TarEntry::REGULAR,
            offset: 0,
            size: 100,
        };
        // b.jar is a link in the base: followed to the file it names.
        let r = base.find_entry(&store, None, &entry("usr/share/java/b.jar"), &[], |_| None);
        assert_eq!(path_of(r).as_deref(), Some("usr/share/java/b-1.0.jar"));
        // foo-2.0.jar, which the new stream's foo.jar links to: the old foo.jar.
        let r = base.find_entry(
            &store,
            None,
            &entry("usr/share/java/foo-2.0.jar"),
            &[b"usr/share/java/foo.jar".to_vec()],
            |_| None,
        );
        assert_eq!(path_of(r).as_deref(), Some("usr/share/java/foo.jar"));
        // tomcat.jar: the version taken out of tomcat-9.0.jar.
        let r = base.find_entry(&store, None, &entry("usr/share/java/tomcat.jar"), &[], |_| None);
        assert_eq!(path_of(r).as_deref(), Some("usr/share/java/tomcat-9.0.jar"));
        // A file under an unrelated name that keeps chunks of an old one: found by content.
        let s = &base.streams[&d];
        let k = s.entries.iter().position(|e| e.path.ends_with(b".bin")).unwrap();
        let chunks = s.chunks_within(k);
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        assert_eq!(
            path_of(base.holding_most(&chunks[1..], 600_000)).as_deref(),
            Some("opt/app/data-7f3a9c21e4.bin")
        );
        let r = base.find_entry(&store, None, &entry("srv/moved/blob"), &[], |b| {
            b.holding_most(&chunks, 600_000)
        });
        assert_eq!(path_of(r).as_deref(), Some("opt/app/data-7f3a9c21e4.bin"));
    }

    #[test]
    fn masked_paths_ignore_versions() {
        assert_eq!(
            masked(b"usr/lib/libssl.so.3.0.11"),
            masked(b"usr/lib/libssl.so.3.0.13")
        );
        assert_ne!(masked(b"usr/lib/libssl.so"), masked(b"usr/lib/libcrypto.so"));
    }

    #[test]
    fn prefix_deltas_round_trip_and_are_small() {
        let old: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i.wrapping_mul(2654435761) >> 7).to_le_bytes())
            .collect();
        let mut new = old.clone();
        new[5000..5010].copy_from_slice(b"0123456789");
        let frame = compress_with_prefix(&old, &new, 3).unwrap();
        assert!(
            frame.len() < 200,
            "delta of a 10-byte edit is {} bytes",
            frame.len()
        );
        assert_eq!(decompress_with_prefix(&old, &frame, new.len()).unwrap(), new);
        assert!(decompress_with_prefix(&old, &frame, new.len() - 1).is_err());
    }

    /// A file far larger than a group is cut into group-sized pieces: bounded memory on
    /// both sides, and no group beyond the receiver's limits.
    #[test]
    fn big_files_are_cut_into_group_sized_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut content = vec![0u8; 5 << 20];
        let mut x = 1u64;
        for b in content.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "big.bin", &content[..]).unwrap();
        let new = Stream::load(&store, &ingest_tar(&store, tar.into_inner().unwrap())).unwrap();
        let opts = DeltaOptions {
            group_target: 1 << 20,
            piece_max: 1 << 20,
            ..DeltaOptions::default()
        };
        let groups = plan_stream(
            &store,
            &new,
            &[(0, new.recipe.len)],
            &BaseIndex::default(),
            None,
            &opts,
        );
        assert!(groups.len() >= 5, "{} groups", groups.len());
        let mut at = 0;
        for g in &groups {
            // A group closes once it holds a group's worth, so it ends below two.
            assert!(g.output_len() < 2 << 20, "a group of {} bytes", g.output_len());
            for p in &g.pieces {
                assert_eq!(p.offset, at);
                at += p.len;
            }
        }
        assert_eq!(at, new.recipe.len);
    }

    #[test]
    fn clipping_keeps_a_window_around_the_piece() {
        assert_eq!(clip_reference(0, 100, 10, 200), None);
        let (a, b) = clip_reference(1000, 2000, 900, 100).unwrap();
        assert_eq!(b - a, 100);
        assert!(a <= 1900 && 1900 <= b);
    }
}
