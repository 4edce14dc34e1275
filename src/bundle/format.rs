//! Bundle byte layouts (store-format.md §6). Every decoder treats its input as hostile:
//! lengths are checked against what remains before allocating, counts against minimal item
//! sizes, and sizes against configurable caps.

use crate::chunk::ChunkerParams;
use crate::codec::{DecodeError, DecodeResult, ReadIds, Reader, WriteIds, Writer};
use crate::id::Digest;
use crate::store::BlobRecord;
use crate::x86filter::Variant;

pub const MAGIC: &[u8; 8] = b"BOOSTBKP";
/// The newest version this booster writes: 2 when archives inside layers travel opened
/// (payload group kind 4). A version 2 reader reads version 1 bundles as they are.
pub const VERSION: u32 = 2;
/// The version of bundles without archive groups (kind 4): booster writes it whenever
/// nothing in a bundle needs version 2, so that older receivers still read them.
pub const VERSION_WITHOUT_ARCHIVES: u32 = 1;
/// The oldest version this booster reads.
pub const OLDEST_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 32;
pub const SECTION_MAGIC: &[u8; 4] = b"BSEC";
pub const SECTION_HEADER_LEN: usize = 56;
pub const TRAILER_MAGIC: &[u8; 8] = b"BKPEND\0\0";
pub const TRAILER_LEN: usize = 40;

/// Section bodies larger than this are refused (a writer never makes one: payload sections
/// are cut at about 64 MiB).
pub const DEFAULT_MAX_SECTION: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    Meta = 1,
    Recipes = 2,
    Payload = 3,
    Blobs = 4,
    Docs = 5,
    Index = 6,
}

impl SectionKind {
    pub fn from_u8(v: u8) -> Option<SectionKind> {
        Some(match v {
            1 => SectionKind::Meta,
            2 => SectionKind::Recipes,
            3 => SectionKind::Payload,
            4 => SectionKind::Blobs,
            5 => SectionKind::Docs,
            6 => SectionKind::Index,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            SectionKind::Meta => "meta",
            SectionKind::Recipes => "stream plans",
            SectionKind::Payload => "payload",
            SectionKind::Blobs => "blob records",
            SectionKind::Docs => "manifests and configs",
            SectionKind::Index => "index",
        }
    }
}

pub const CODEC_RAW: u8 = 0;
pub const CODEC_ZSTD: u8 = 1;

/// The fixed header of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub bundle_id: [u8; 16],
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        // bytes 12..16: flags, zero in version 1
        out[16..32].copy_from_slice(&self.bundle_id);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Header, String> {
        if b.len() < HEADER_LEN || &b[..8] != MAGIC {
            return Err("header: not a booster bundle (bad magic), or its header is damaged".into());
        }
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(format!(
                "header: bundle format version {version} is not supported by this booster (it reads versions {OLDEST_VERSION} to {VERSION}); \
                 upgrade booster, or if the bundle was made by this version, its header is damaged"
            ));
        }
        let flags = u32::from_le_bytes(b[12..16].try_into().unwrap());
        if flags != 0 {
            return Err(format!(
                "header: unknown bundle flags {flags:#x} (newer booster, or a damaged header)"
            ));
        }
        Ok(Header {
            version,
            bundle_id: b[16..32].try_into().unwrap(),
        })
    }
}

/// The header in front of every section body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionHeader {
    pub kind: u8,
    pub codec: u8,
    pub body_len: u64,
    pub plain_len: u64,
    pub checksum: [u8; 32],
}

impl SectionHeader {
    pub fn encode(&self) -> [u8; SECTION_HEADER_LEN] {
        let mut out = [0u8; SECTION_HEADER_LEN];
        out[..4].copy_from_slice(SECTION_MAGIC);
        out[4] = self.kind;
        out[5] = self.codec;
        // bytes 6..8 reserved
        out[8..16].copy_from_slice(&self.body_len.to_le_bytes());
        out[16..24].copy_from_slice(&self.plain_len.to_le_bytes());
        out[24..56].copy_from_slice(&self.checksum);
        out
    }

    pub fn decode(b: &[u8]) -> Result<SectionHeader, String> {
        if b.len() < SECTION_HEADER_LEN || &b[..4] != SECTION_MAGIC {
            return Err("section header magic missing".into());
        }
        if b[6] != 0 || b[7] != 0 {
            return Err("reserved section header bytes are set".into());
        }
        let h = SectionHeader {
            kind: b[4],
            codec: b[5],
            body_len: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            plain_len: u64::from_le_bytes(b[16..24].try_into().unwrap()),
            checksum: b[24..56].try_into().unwrap(),
        };
        if SectionKind::from_u8(h.kind).is_none() {
            return Err(format!("unknown section kind {}", h.kind));
        }
        if h.codec > CODEC_ZSTD {
            return Err(format!("unknown section codec {}", h.codec));
        }
        if h.codec == CODEC_RAW && h.plain_len != h.body_len {
            return Err("raw section with different plain and stored lengths".into());
        }
        Ok(h)
    }
}

/// The trailer: where the index is, how long the whole bundle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub index_offset: u64,
    pub total_len: u64,
    pub bundle_id: [u8; 16],
}

impl Trailer {
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut out = [0u8; TRAILER_LEN];
        out[..8].copy_from_slice(&self.index_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.total_len.to_le_bytes());
        out[16..32].copy_from_slice(&self.bundle_id);
        out[32..40].copy_from_slice(TRAILER_MAGIC);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Trailer, String> {
        if b.len() < TRAILER_LEN || &b[32..40] != TRAILER_MAGIC {
            return Err("the bundle has no trailer: it is truncated (or a volume is missing)".into());
        }
        Ok(Trailer {
            index_offset: u64::from_le_bytes(b[..8].try_into().unwrap()),
            total_len: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            bundle_id: b[16..32].try_into().unwrap(),
        })
    }
}

/// One index entry: where a section starts, and its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub kind: u8,
    pub offset: u64,
    pub body_len: u64,
    pub checksum: [u8; 32],
}

pub fn encode_index(entries: &[IndexEntry]) -> Vec<u8> {
    let mut w = Writer::new();
    w.varint(entries.len() as u64);
    for e in entries {
        w.u8(e.kind).varint(e.offset).varint(e.body_len).raw(&e.checksum);
    }
    w.into_inner()
}

pub fn decode_index(b: &[u8]) -> DecodeResult<Vec<IndexEntry>> {
    let mut r = Reader::new(b);
    let n = r.count(35, "index entries")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(IndexEntry {
            kind: r.u8("section kind")?,
            offset: r.varint("section offset")?,
            body_len: r.varint("section length")?,
            checksum: r.raw(32, "section checksum")?.try_into().unwrap(),
        });
    }
    r.expect_end("index")?;
    Ok(out)
}

/// A target image of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleImage {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
}

/// `varint n ‖ n × { str name ‖ digest ‖ str media type }` (bundle meta, inventories).
pub fn write_images(w: &mut Writer, images: &[BundleImage]) {
    w.varint(images.len() as u64);
    for i in images {
        w.str(&i.name).digest(&i.digest).str(&i.media_type);
    }
}

pub fn read_images(r: &mut Reader<'_>) -> DecodeResult<Vec<BundleImage>> {
    let n = r.count(34, "image count")?;
    let mut images = Vec::with_capacity(n);
    for _ in 0..n {
        images.push(BundleImage {
            name: r.string("image name")?,
            digest: r.digest("image digest")?,
            media_type: r.string("image media type")?,
        });
    }
    Ok(images)
}

/// A plain stream the receiver must already hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BaseEntry {
    pub content: Digest,
    pub len: u64,
    /// Which image (and layer) it came from, for error messages.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub creator: String,
    pub created_unix: u64,
    pub chunker: ChunkerParams,
    pub images: Vec<BundleImage>,
    pub base: Vec<BaseEntry>,
}

const META_V1: u8 = 1;

impl Meta {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(META_V1).str(&self.creator).varint(self.created_unix);
        self.chunker.write_to(&mut w);
        write_images(&mut w, &self.images);
        w.varint(self.base.len() as u64);
        for b in &self.base {
            w.digest(&b.content).varint(b.len).str(&b.label);
        }
        w.into_inner()
    }

    pub fn decode(b: &[u8]) -> DecodeResult<Meta> {
        let mut r = Reader::new(b);
        let v = r.u8("meta version")?;
        if v != META_V1 {
            return Err(DecodeError(format!("unknown meta version {v}")));
        }
        let creator = r.string("creator")?;
        let created_unix = r.varint("creation time")?;
        let chunker = ChunkerParams::read_from(&mut r)?;
        let images = read_images(&mut r)?;
        let n = r.count(34, "base count")?;
        let mut base = Vec::with_capacity(n);
        for _ in 0..n {
            base.push(BaseEntry {
                content: r.digest("base content")?,
                len: r.varint("base length")?,
                label: r.string("base label")?,
            });
        }
        r.expect_end("meta")?;
        Ok(Meta {
            creator,
            created_unix,
            chunker,
            images,
            base,
        })
    }
}

/// How the receiver assembles one new plain stream: runs of chunks it already has (from
/// a base stream, or from a stream made earlier in this bundle) and runs of bytes carried
/// in the payload, which it cuts into chunks itself (FastCDC cuts depend only on the bytes
/// from a chunk's start, and every missing run starts on a chunk boundary, so the receiver
/// finds the sender's cuts). The stream's sha256 is checked once it is assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPlan {
    pub content: Digest,
    pub len: u64,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// `count` chunks of base stream `base` (an index into `Meta::base`) from chunk `first`.
    Base { base: u32, first: u32, count: u32 },
    /// `count` chunks of the stream planned earlier at index `stream`, from chunk `first`.
    Earlier { stream: u32, first: u32, count: u32 },
    /// `len` bytes carried by the payload.
    Missing { len: u64 },
}

pub fn encode_plans(plans: &[StreamPlan]) -> Vec<u8> {
    let mut w = Writer::new();
    w.varint(plans.len() as u64);
    for p in plans {
        w.digest(&p.content).varint(p.len).varint(p.segments.len() as u64);
        for s in &p.segments {
            match *s {
                Segment::Base { base, first, count } => {
                    w.u8(0)
                        .varint(base as u64)
                        .varint(first as u64)
                        .varint(count as u64);
                }
                Segment::Earlier { stream, first, count } => {
                    w.u8(1)
                        .varint(stream as u64)
                        .varint(first as u64)
                        .varint(count as u64);
                }
                Segment::Missing { len } => {
                    w.u8(2).varint(len);
                }
            }
        }
    }
    w.into_inner()
}

pub fn decode_plans(b: &[u8]) -> DecodeResult<Vec<StreamPlan>> {
    let mut r = Reader::new(b);
    let n = r.count(34, "stream plan count")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let content = r.digest("content digest")?;
        let len = r.varint("stream length")?;
        let ns = r.count(2, "segment count")?;
        let mut segments = Vec::with_capacity(ns);
        for _ in 0..ns {
            let small = |r: &mut Reader<'_>, what: &str| -> DecodeResult<u32> {
                let v = r.varint(what)?;
                u32::try_from(v).map_err(|_| DecodeError(format!("{what} {v} is out of range")))
            };
            segments.push(match r.u8("segment kind")? {
                0 => Segment::Base {
                    base: small(&mut r, "base index")?,
                    first: small(&mut r, "first chunk")?,
                    count: small(&mut r, "chunk count")?,
                },
                1 => Segment::Earlier {
                    stream: small(&mut r, "stream index")?,
                    first: small(&mut r, "first chunk")?,
                    count: small(&mut r, "chunk count")?,
                },
                2 => Segment::Missing {
                    len: r.varint("missing length")?,
                },
                k => return Err(DecodeError(format!("unknown segment kind {k}"))),
            });
        }
        out.push(StreamPlan {
            content,
            len,
            segments,
        });
    }
    r.expect_end("stream plans")?;
    Ok(out)
}

/// One group of a payload section: a zstd frame whose output fills `pieces` of the target
/// stream, decoded with the concatenation of `refs` (ranges of base streams the receiver
/// holds) as its prefix.
///
/// With `inner`, the group carries one compressed file of the layer by its plain text (see
/// `Inner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadGroup {
    pub refs: Vec<(Digest, u64, u64)>,
    pub pieces: Vec<Piece>,
    pub frame: Vec<u8>,
    pub inner: Option<Inner>,
    /// With `filters` (kinds 2 and 3), some references and pieces go through an x86
    /// filter (`crate::x86filter`) on both sides of the frame.
    pub filters: Option<Filters>,
}

/// Per reference and per piece (parallel to `refs` and `pieces`): the x86 filter's origin
/// (the range's offset within its file), or None for bytes taken as they are. Copies are
/// never filtered. The group's kind names the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    pub variant: Variant,
    pub refs: Vec<Option<u64>>,
    pub pieces: Vec<Option<u64>>,
}

/// A range of the target stream a group fills: from the frame's output, or (`copy`)
/// verbatim from a base stream range of the same length (files the receiver has unchanged,
/// which sit in chunks it lacks because a neighbour changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub offset: u64,
    pub len: u64,
    pub copy: Option<(Digest, u64)>,
}

/// A file of the layer carried by its plain text: the group has one piece (the file) and at
/// most one reference (its old version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inner {
    /// A gzip file (a `.gz` inside a layer, kind 1): the frame decodes, with the old file's
    /// *decompressed* bytes as prefix, to the new file's plain text, and the method rebuilds
    /// its exact gzip bytes.
    Gzip(InnerGzip),
    /// A zip archive (a jar, war, whl inside a layer, kind 4): the frame decodes, with the
    /// old archive's outline as prefix, to the new archive's expansion
    /// (`crate::zipfile`), which rebuilds its exact bytes.
    Zip(InnerZip),
}

impl Inner {
    /// Bytes of the frame's output.
    pub fn plain_len(&self) -> u64 {
        match self {
            Inner::Gzip(g) => g.plain_len,
            Inner::Zip(z) => z.expanded_len,
        }
    }

    /// Bytes the group carries besides its frame.
    pub fn overhead(&self) -> usize {
        match self {
            Inner::Gzip(g) => g.method.len(),
            Inner::Zip(_) => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerZip {
    pub expanded_len: u64,
    /// The whole archive's size, and where the first piece starts in it: the pieces are the
    /// parts of the archive the receiver lacks, in order.
    pub archive_len: u64,
    pub skip: u64,
    /// What opening the archive did (reported by `inspect`; not needed to rebuild).
    pub archives: u64,
    pub members_opened: u64,
    pub members_compressed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerGzip {
    /// An encoded rebuild method (store-format.md 3.6.1), always a gzip method.
    pub method: Vec<u8>,
    pub plain_len: u64,
}

impl PayloadGroup {
    /// Bytes of the target stream the group fills.
    pub fn output_len(&self) -> u64 {
        self.pieces.iter().map(|p| p.len).sum()
    }

    pub fn prefix_len(&self) -> u64 {
        self.refs.iter().map(|r| r.2).sum()
    }

    /// The x86 filter origin of reference `k`, if it goes through the filter.
    pub fn ref_filter(&self, k: usize) -> Option<u64> {
        self.filters
            .as_ref()
            .and_then(|f| f.refs.get(k).copied().flatten())
    }

    /// The x86 filter origin of piece `k`, if it goes through the filter.
    pub fn piece_filter(&self, k: usize) -> Option<u64> {
        self.filters
            .as_ref()
            .and_then(|f| f.pieces.get(k).copied().flatten())
    }

    /// What the frame decodes to.
    pub fn frame_len(&self) -> u64 {
        match &self.inner {
            Some(i) => i.plain_len(),
            None => self
                .pieces
                .iter()
                .filter(|p| p.copy.is_none())
                .map(|p| p.len)
                .sum(),
        }
    }
}

/// The missing bytes of one plain stream (or part of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSection {
    pub content: Digest,
    pub groups: Vec<PayloadGroup>,
}

/// Caps on what one group may claim: the receiver allocates the prefix and the output.
pub const MAX_GROUP_PREFIX: u64 = 256 << 20;
pub const MAX_GROUP_OUTPUT: u64 = 256 << 20;
const GROUP_ZSTD: u8 = 0;
const GROUP_GZIP: u8 = 1;
const GROUP_FILTERED: u8 = 2;
const GROUP_FILTERED_RIP: u8 = 3;
const GROUP_ZIP: u8 = 4;

/// A filter as written: 0 for none, else 1 + the x86 filter's origin.
fn filter_code(f: Option<u64>) -> u64 {
    f.map_or(0, |o| o.saturating_add(1))
}

fn filter_from_code(c: u64) -> Option<u64> {
    c.checked_sub(1)
}

impl PayloadSection {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.digest(&self.content).varint(self.groups.len() as u64);
        for g in &self.groups {
            let kind = match (&g.inner, &g.filters) {
                (Some(Inner::Gzip(_)), _) => GROUP_GZIP,
                (Some(Inner::Zip(_)), _) => GROUP_ZIP,
                (None, Some(f)) => match f.variant {
                    Variant::Calls => GROUP_FILTERED,
                    Variant::CallsAndRipData => GROUP_FILTERED_RIP,
                },
                (None, None) => GROUP_ZSTD,
            };
            let filtered = kind == GROUP_FILTERED || kind == GROUP_FILTERED_RIP;
            w.u8(kind);
            w.varint(g.refs.len() as u64);
            for (k, (d, off, len)) in g.refs.iter().enumerate() {
                w.digest(d).varint(*off).varint(*len);
                if filtered {
                    w.varint(filter_code(g.ref_filter(k)));
                }
            }
            w.varint(g.pieces.len() as u64);
            for (k, p) in g.pieces.iter().enumerate() {
                w.varint(p.offset).varint(p.len);
                match &p.copy {
                    None => {
                        w.u8(0);
                        if filtered {
                            w.varint(filter_code(g.piece_filter(k)));
                        }
                    }
                    Some((d, at)) => {
                        w.u8(1).digest(d).varint(*at);
                    }
                }
            }
            match &g.inner {
                Some(Inner::Gzip(i)) => {
                    w.bytes(&i.method).varint(i.plain_len);
                }
                Some(Inner::Zip(z)) => {
                    w.varint(z.expanded_len)
                        .varint(z.archive_len)
                        .varint(z.skip)
                        .varint(z.archives)
                        .varint(z.members_opened)
                        .varint(z.members_compressed);
                }
                None => {}
            }
            w.bytes(&g.frame);
        }
        w.into_inner()
    }

    pub fn decode(b: &[u8]) -> DecodeResult<PayloadSection> {
        let mut r = Reader::new(b);
        let content = r.digest("payload content")?;
        let n = r.count(4, "group count")?;
        let mut groups = Vec::with_capacity(n);
        let mut last_end = 0u64;
        for _ in 0..n {
            let kind = r.u8("group kind")?;
            let variant = match kind {
                GROUP_ZSTD | GROUP_GZIP | GROUP_ZIP => None,
                GROUP_FILTERED => Some(Variant::Calls),
                GROUP_FILTERED_RIP => Some(Variant::CallsAndRipData),
                _ => return Err(DecodeError(format!("unknown payload group kind {kind}"))),
            };
            let mut filters = variant.map(|variant| Filters {
                variant,
                refs: Vec::new(),
                pieces: Vec::new(),
            });
            let nr = r.count(34, "reference count")?;
            let mut refs = Vec::with_capacity(nr);
            for _ in 0..nr {
                refs.push((
                    r.digest("reference")?,
                    r.varint("reference offset")?,
                    r.varint("reference length")?,
                ));
                if let Some(f) = &mut filters {
                    f.refs.push(filter_from_code(r.varint("reference filter")?));
                }
            }
            let np = r.count(3, "piece count")?;
            let mut pieces = Vec::with_capacity(np);
            for _ in 0..np {
                let offset = r.varint("piece offset")?;
                let len = r.varint("piece length")?;
                if offset < last_end || len == 0 || offset.checked_add(len).is_none() {
                    return Err(DecodeError("payload pieces are not in stream order".into()));
                }
                last_end = offset + len;
                let copy = match r.u8("piece kind")? {
                    0 => {
                        if let Some(f) = &mut filters {
                            f.pieces.push(filter_from_code(r.varint("piece filter")?));
                        }
                        None
                    }
                    1 => {
                        if let Some(f) = &mut filters {
                            f.pieces.push(None);
                        }
                        Some((r.digest("copy source")?, r.varint("copy offset")?))
                    }
                    k => return Err(DecodeError(format!("unknown piece kind {k}"))),
                };
                pieces.push(Piece { offset, len, copy });
            }
            if kind == GROUP_GZIP && (nr > 1 || np != 1) {
                return Err(DecodeError(
                    "a gzip group has one piece and at most one reference".into(),
                ));
            }
            if kind == GROUP_ZIP && (nr > 1 || np == 0 || pieces.iter().any(|p| p.copy.is_some())) {
                return Err(DecodeError(
                    "a zip group has pieces without copies and at most one reference".into(),
                ));
            }
            let inner = match kind {
                GROUP_GZIP => Some(Inner::Gzip(InnerGzip {
                    method: r.bytes("gzip method")?.to_vec(),
                    plain_len: r.varint("gzip plain length")?,
                })),
                GROUP_ZIP => Some(Inner::Zip(InnerZip {
                    expanded_len: r.varint("archive expansion length")?,
                    archive_len: r.len(crate::zipfile::MAX_ARCHIVE, "archive length")? as u64,
                    skip: r.varint("archive skip")?,
                    archives: r.varint("archives opened")?,
                    members_opened: r.varint("members opened")?,
                    members_compressed: r.varint("members kept compressed")?,
                })),
                _ => None,
            };
            let frame = r.bytes("frame")?.to_vec();
            let g = PayloadGroup {
                refs,
                pieces,
                frame,
                inner,
                filters,
            };
            if g.prefix_len() > MAX_GROUP_PREFIX
                || g.output_len() > MAX_GROUP_OUTPUT
                || g.frame_len() > MAX_GROUP_OUTPUT
            {
                return Err(DecodeError(
                    "a payload group claims more than the size limits".into(),
                ));
            }
            if let Some(Inner::Zip(z)) = &g.inner {
                let (first, last) = (&g.pieces[0], &g.pieces[g.pieces.len() - 1]);
                let span = last.offset + last.len - first.offset;
                if z.skip.checked_add(span).is_none_or(|e| e > z.archive_len) {
                    return Err(DecodeError("a zip group's pieces run past its archive".into()));
                }
            }
            groups.push(g);
        }
        r.expect_end("payload section")?;
        Ok(PayloadSection { content, groups })
    }
}

pub fn encode_blobs(entries: &[(Digest, BlobRecord)]) -> Vec<u8> {
    let mut w = Writer::new();
    w.varint(entries.len() as u64);
    for (d, rec) in entries {
        w.digest(d).bytes(&rec.encode());
    }
    w.into_inner()
}

pub fn decode_blobs(b: &[u8]) -> DecodeResult<Vec<(Digest, BlobRecord)>> {
    let mut r = Reader::new(b);
    let n = r.count(34, "blob record count")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let d = r.digest("blob digest")?;
        out.push((d, BlobRecord::decode(r.bytes("blob record")?)?));
    }
    r.expect_end("blob records")?;
    Ok(out)
}

pub fn encode_docs(entries: &[(Digest, crate::store::Doc)]) -> Vec<u8> {
    let mut w = Writer::new();
    w.varint(entries.len() as u64);
    for (d, doc) in entries {
        w.digest(d).str(&doc.media_type).bytes(&doc.data);
    }
    w.into_inner()
}

pub fn decode_docs(b: &[u8]) -> DecodeResult<Vec<(Digest, crate::store::Doc)>> {
    let mut r = Reader::new(b);
    let n = r.count(34, "document count")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let d = r.digest("document digest")?;
        let media_type = r.string("media type")?;
        let data = r.bytes("document")?.to_vec();
        if Digest::of(&data) != d {
            return Err(DecodeError(format!("document {d} does not match its digest")));
        }
        out.push((d, crate::store::Doc { media_type, data }));
    }
    r.expect_end("documents")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(filters: Option<Filters>) -> PayloadGroup {
        PayloadGroup {
            refs: vec![(Digest([7; 32]), 10, 20)],
            pieces: vec![
                Piece {
                    offset: 0,
                    len: 5,
                    copy: None,
                },
                Piece {
                    offset: 5,
                    len: 3,
                    copy: Some((Digest([8; 32]), 40)),
                },
            ],
            frame: vec![1, 2, 3],
            inner: None,
            filters,
        }
    }

    fn filtered(variant: Variant) -> Option<Filters> {
        Some(Filters {
            variant,
            refs: vec![Some(100)],
            pieces: vec![Some(0), None],
        })
    }

    #[test]
    fn each_filter_variant_has_its_group_kind_and_round_trips() {
        for (filters, kind) in [
            (None, GROUP_ZSTD),
            (filtered(Variant::Calls), GROUP_FILTERED),
            (filtered(Variant::CallsAndRipData), GROUP_FILTERED_RIP),
        ] {
            let s = PayloadSection {
                content: Digest([9; 32]),
                groups: vec![group(filters)],
            };
            let bytes = s.encode();
            // content digest (32), group count (1), then the group's kind.
            assert_eq!(bytes[33], kind);
            assert_eq!(PayloadSection::decode(&bytes).unwrap(), s);
        }
    }

    #[test]
    fn an_unknown_group_kind_is_refused_by_name() {
        let s = PayloadSection {
            content: Digest([9; 32]),
            groups: vec![group(None)],
        };
        let mut bytes = s.encode();
        bytes[33] = 5;
        let e = PayloadSection::decode(&bytes).unwrap_err();
        assert!(e.0.contains("unknown payload group kind 5"), "{}", e.0);
    }

    fn zip_group(skip: u64, archive_len: u64) -> PayloadSection {
        let mut g = group(None);
        g.refs.truncate(1);
        g.pieces = vec![
            Piece {
                offset: 1000,
                len: 50,
                copy: None,
            },
            Piece {
                offset: 1200,
                len: 30,
                copy: None,
            },
        ];
        g.inner = Some(Inner::Zip(InnerZip {
            expanded_len: 900,
            archive_len,
            skip,
            archives: 2,
            members_opened: 7,
            members_compressed: 1,
        }));
        PayloadSection {
            content: Digest([9; 32]),
            groups: vec![g],
        }
    }

    #[test]
    fn zip_groups_round_trip_and_stay_within_their_archive() {
        let s = zip_group(100, 400);
        let bytes = s.encode();
        assert_eq!(bytes[33], GROUP_ZIP);
        assert_eq!(PayloadSection::decode(&bytes).unwrap(), s);
        // The pieces span 230 bytes from 100 bytes into the archive: 329 is too short.
        let e = PayloadSection::decode(&zip_group(100, 329).encode()).unwrap_err();
        assert!(e.0.contains("run past its archive"), "{}", e.0);
        let mut copies = zip_group(100, 400);
        copies.groups[0].pieces[1].copy = Some((Digest([8; 32]), 0));
        assert!(PayloadSection::decode(&copies.encode()).is_err());
    }
}
