//! Zip archives inside layers (jar, war, ear, aar, whl, zip), carried by their members'
//! plain text and rebuilt bit-exactly (store-format.md 6.4.3).
//!
//! When one class of a jar changes, its deflated bytes change completely, and every offset
//! in the central directory after it moves: a delta over the archive's bytes sees noise. A
//! delta over its *plain view* — every deflated member inflated in place, and stored
//! archives inside (a fat jar's `BOOT-INF/lib/*.jar`) opened the same way — sees only the
//! change. The *expansion* of an archive is that view plus a *recipe* naming, for each
//! inflated member, the deflate model that compresses it back to its exact bytes.
//!
//! The *outline* of an archive (its plain view, with zlib 6 named for every member) depends
//! only on the archive's bytes (inflating is unambiguous), so both sides of a bundle compute
//! the same outline of an old archive whatever models their booster knows. The expansion of a new archive depends on the sender's models: a member no model
//! reproduces stays compressed in it, which costs that member alone.
//!
//! Everything here reads untrusted bytes: a malformed archive is simply not opened (the
//! caller carries it as bytes), and every size is bounded before allocation.

use std::ops::Range;

use crate::codec::{DecodeError, DecodeResult, Reader, Writer};
use recompress::method::Deflate;
use recompress::models;

/// Archives larger than this are carried as bytes (both sides hold one whole archive, its
/// view and its expansion in memory).
pub const MAX_ARCHIVE: u64 = 64 << 20;
/// Most plain bytes the members of one archive (nested ones included) may inflate to: a
/// zip bomb is not opened.
pub const MAX_INFLATED: u64 = 192 << 20;
/// How deep archives inside archives are opened (a war's jars, a fat jar's libraries).
pub const MAX_DEPTH: u32 = 3;
/// Most central directory entries one archive may declare.
const MAX_ENTRIES: u64 = 1 << 18;

const LOCAL: &[u8; 4] = b"PK\x03\x04";
const CENTRAL: &[u8; 4] = b"PK\x01\x02";
const END: &[u8; 4] = b"PK\x05\x06";
const END64: &[u8; 4] = b"PK\x06\x06";
const END64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const STORED: u16 = 0;
const DEFLATED: u16 = 8;

/// Whether bytes start like a zip archive (a local file header).
pub fn looks_like_zip(head: &[u8]) -> bool {
    head.starts_with(LOCAL)
}

/// A part of an archive, in file order.
#[derive(Debug)]
enum Region {
    /// Bytes kept as they are: headers, gaps, the central directory, members not opened.
    Bytes(Range<usize>),
    /// A deflated member's compressed bytes (`range`) and its plain text; `inner` when the
    /// plain text is itself an archive, opened (its regions index `plain`).
    Deflated {
        range: Range<usize>,
        plain: Vec<u8>,
        inner: Option<Vec<Region>>,
    },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Where the central directory is and how many entries it declares.
struct Directory {
    start: usize,
    end: usize,
    entries: u64,
    /// Bytes before the archive proper (a launcher script, a self-extractor): the
    /// directory's offsets count from after them.
    shift: usize,
}

/// The end of central directory record: the last `PK\5\6` whose comment reaches exactly to
/// the end of the file.
fn find_end(data: &[u8]) -> Option<usize> {
    let last = data.len().checked_sub(22)?;
    let first = last.saturating_sub(0xffff);
    (first..=last).rev().find(|&p| {
        &data[p..p + 4] == END && u16_at(data, p + 20).is_some_and(|c| p + 22 + c as usize == data.len())
    })
}

fn directory(data: &[u8]) -> Option<Directory> {
    let end = find_end(data)?;
    let mut entries = u16_at(data, end + 10)? as u64;
    let mut size = u32_at(data, end + 12)? as u64;
    let mut offset = u32_at(data, end + 16)? as u64;
    // The directory ends where the zip64 record starts, if there is one, else at the end
    // record.
    let mut dir_end = end;
    if end >= 20 && &data[end - 20..end - 16] == END64_LOCATOR {
        // The zip64 end record, 56 bytes without extensible data, right before the locator.
        let rec = end.checked_sub(20 + 56)?;
        if &data[rec..rec + 4] != END64 || u64_at(data, rec + 4)? != 44 {
            return None;
        }
        entries = u64_at(data, rec + 32)?;
        size = u64_at(data, rec + 40)?;
        offset = u64_at(data, rec + 48)?;
        dir_end = rec;
    }
    if entries > MAX_ENTRIES {
        return None;
    }
    let start = (dir_end as u64).checked_sub(size)?;
    let shift = start.checked_sub(offset)?;
    Some(Directory {
        start: start as usize,
        end: dir_end,
        entries,
        shift: shift as usize,
    })
}

/// One member as the central directory describes it.
struct Member {
    header: usize,
    data: Range<usize>,
    method: u16,
}

/// The zip64 extended information of a central directory entry, filling the fields that
/// are saturated in the entry itself.
fn zip64_fields(extra: &[u8], comp: &mut u64, uncomp: &mut u64, offset: &mut u64) -> Option<()> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let id = u16_at(extra, at)?;
        let len = u16_at(extra, at + 2)? as usize;
        let body = extra.get(at + 4..at + 4 + len)?;
        if id == 1 {
            let mut k = 0;
            for field in [uncomp, comp, offset] {
                if *field == 0xffff_ffff {
                    *field = u64_at(body, k)?;
                    k += 8;
                }
            }
            return Some(());
        }
        at += 4 + len;
    }
    Some(())
}

fn members(data: &[u8], dir: &Directory) -> Option<Vec<Member>> {
    let mut out = Vec::with_capacity(dir.entries.min(4096) as usize);
    let mut at = dir.start;
    for _ in 0..dir.entries {
        if at + 46 > dir.end || &data[at..at + 4] != CENTRAL {
            return None;
        }
        let method = u16_at(data, at + 10)?;
        let mut comp = u32_at(data, at + 20)? as u64;
        let mut uncomp = u32_at(data, at + 24)? as u64;
        let name = u16_at(data, at + 28)? as usize;
        let extra = u16_at(data, at + 30)? as usize;
        let comment = u16_at(data, at + 32)? as usize;
        let mut offset = u32_at(data, at + 42)? as u64;
        let extra_at = at + 46 + name;
        zip64_fields(
            data.get(extra_at..extra_at + extra)?,
            &mut comp,
            &mut uncomp,
            &mut offset,
        )?;
        let header = (offset.checked_add(dir.shift as u64)?) as usize;
        if header.checked_add(30)? > dir.start || &data[header..header + 4] != LOCAL {
            return None;
        }
        let start = header + 30 + u16_at(data, header + 26)? as usize + u16_at(data, header + 28)? as usize;
        let end = (start as u64).checked_add(comp)?;
        if end > dir.start as u64 {
            return None;
        }
        out.push(Member {
            header,
            data: start..end as usize,
            method,
        });
        at = extra_at + extra + comment;
    }
    (at == dir.end).then_some(())?;
    out.sort_by_key(|m| m.header);
    // Overlapping members (a zip bomb's trick, or a lying directory) are not opened.
    for w in out.windows(2) {
        if w[1].header < w[0].data.end {
            return None;
        }
    }
    Some(out)
}

/// Inflate a raw deflate stream that must end exactly at the end of `comp`, into at most
/// `budget` bytes: the plain text, or None; and the bytes inflated either way (a member
/// that fails still cost them, so a bomb of failing members stays bounded too).
fn inflate_exact(comp: &[u8], budget: u64) -> (Option<Vec<u8>>, u64) {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut z = Decompress::new(false);
    let mut out = Vec::with_capacity((comp.len() * 3).min(budget as usize).min(64 << 20));
    loop {
        if out.len() as u64 > budget {
            return (None, out.len() as u64);
        }
        if out.len() == out.capacity() {
            out.reserve(out.len().clamp(4096, 64 << 20));
        }
        let before = (z.total_in(), z.total_out());
        let Ok(status) = z.decompress_vec(&comp[z.total_in() as usize..], &mut out, FlushDecompress::None)
        else {
            return (None, out.len() as u64);
        };
        let produced = out.len() as u64;
        if status == Status::StreamEnd {
            let whole = z.total_in() as usize == comp.len() && produced <= budget;
            return (whole.then_some(out), produced);
        }
        if (z.total_in(), z.total_out()) == before && out.len() < out.capacity() {
            return (None, produced); // truncated: no progress with room to spare
        }
    }
}

/// What opening one archive may still inflate, and how many stored archives inside it were
/// opened in place.
struct Opening {
    budget: u64,
    stored_archives: u64,
}

impl Opening {
    fn new() -> Opening {
        Opening {
            budget: MAX_INFLATED,
            stored_archives: 0,
        }
    }
}

/// The regions of an archive, or None when `data` is not one booster opens.
fn regions(data: &[u8], depth: u32, open: &mut Opening) -> Option<Vec<Region>> {
    let dir = directory(data)?;
    let members = members(data, &dir)?;
    let mut out: Vec<Region> = Vec::with_capacity(members.len() * 2 + 1);
    let kept = |out: &mut Vec<Region>, r: Range<usize>| {
        if r.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(Region::Bytes(last)) if last.end == r.start => last.end = r.end,
            _ => out.push(Region::Bytes(r)),
        }
    };
    let mut at = 0;
    for m in &members {
        kept(&mut out, at..m.data.start);
        at = m.data.end;
        let bytes = &data[m.data.clone()];
        match m.method {
            DEFLATED if !bytes.is_empty() => match inflate_exact(bytes, open.budget) {
                (Some(plain), spent) => {
                    open.budget -= spent;
                    let inner = (depth < MAX_DEPTH && looks_like_zip(&plain))
                        .then(|| regions(&plain, depth + 1, open))
                        .flatten();
                    out.push(Region::Deflated {
                        range: m.data.clone(),
                        plain,
                        inner,
                    });
                }
                (None, spent) => {
                    open.budget = open.budget.saturating_sub(spent);
                    kept(&mut out, m.data.clone())
                }
            },
            STORED if depth < MAX_DEPTH && looks_like_zip(bytes) => match regions(bytes, depth + 1, open) {
                // A stored archive is opened in place: its regions join ours.
                Some(inner) => {
                    open.stored_archives += 1;
                    for r in inner {
                        match r {
                            Region::Bytes(b) => kept(&mut out, b.start + m.data.start..b.end + m.data.start),
                            Region::Deflated { range, plain, inner } => out.push(Region::Deflated {
                                range: range.start + m.data.start..range.end + m.data.start,
                                plain,
                                inner,
                            }),
                        }
                    }
                }
                None => kept(&mut out, m.data.clone()),
            },
            _ => kept(&mut out, m.data.clone()),
        }
    }
    kept(&mut out, at..data.len());
    Some(out)
}

/// One step of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The next `len` bytes of the body, as they are.
    Bytes(u64),
    /// The output of `node`, compressed by `model` into exactly `compressed_len` bytes.
    Deflated {
        model: Deflate,
        compressed_len: u64,
        node: Vec<Part>,
    },
}

/// An archive as a bundle carries it: a recipe and its body (the plain view, except that a
/// member no model reproduces keeps its compressed bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub recipe: Vec<Part>,
    pub body: Vec<u8>,
    pub stats: ExpansionStats,
}

/// What opening an archive did (for summaries; not part of the format).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpansionStats {
    /// Archives opened, the outer one and those inside it.
    pub archives: u64,
    /// Deflated members carried by their plain text.
    pub members_opened: u64,
    /// Deflated members no model reproduced, carried compressed.
    pub members_compressed: u64,
}

const EXPANSION_VERSION: u8 = 1;

/// Deflate models tried on a member, in order, after the one that fit the member before:
/// java.util.zip and Python's zipfile (zlib, default level 6), Go's archive/zip (level 5,
/// Go ≤ 1.26 and 1.27), then zlib's other levels.
const CANDIDATES: [Deflate; 11] = {
    use recompress::method::KpVariant;
    const fn zlib(level: u8) -> Deflate {
        Deflate::Zlib { level, mem_level: 8 }
    }
    [
        zlib(6),
        // archive/zip's compressor is flate.NewWriter(w, 5).
        Deflate::GoStd { level: 5 },
        Deflate::Klauspost {
            variant: KpVariant::Go1_27,
            level: 5,
            block_size: 0,
        },
        zlib(9),
        zlib(1),
        zlib(5),
        zlib(4),
        zlib(3),
        zlib(2),
        zlib(7),
        zlib(8),
    ]
};

/// After this many members in a row that no model reproduced, with none reproduced before,
/// the rest of the archive is not tried: its encoder is not one booster knows, and trying
/// every model on every member would cost the sender minutes.
const GIVE_UP_AFTER: u32 = 8;

fn compress(model: &Deflate, plain: &[u8]) -> Option<Vec<u8>> {
    let mut enc = models::deflate_encoder(model)?;
    let mut out = Vec::with_capacity(plain.len() / 2 + 64);
    enc.write(plain, &mut out).ok()?;
    enc.finish(&mut out).ok()?;
    Some(out)
}

struct ModelSearch {
    last: Option<Deflate>,
    found_any: bool,
    misses: u32,
}

impl ModelSearch {
    /// The model that compresses `plain` into exactly `compressed`, proven by comparison.
    fn find(&mut self, plain: &[u8], compressed: &[u8]) -> Option<Deflate> {
        if !self.found_any && self.misses >= GIVE_UP_AFTER {
            return None;
        }
        let fits = |m: &Deflate| compress(m, plain).as_deref() == Some(compressed);
        let found = self.last.clone().filter(fits).or_else(|| {
            CANDIDATES
                .iter()
                .find(|m| Some(*m) != self.last.as_ref() && fits(m))
                .cloned()
        });
        match &found {
            Some(m) => {
                self.last = Some(m.clone());
                self.found_any = true;
            }
            None => self.misses += 1,
        }
        found
    }
}

/// Open an archive: its expansion, or None when booster does not open it (not a zip, too
/// large, malformed, a bomb).
pub fn expand(data: &[u8]) -> Option<Expansion> {
    if data.len() as u64 > MAX_ARCHIVE {
        return None;
    }
    let mut open = Opening::new();
    let regions = regions(data, 0, &mut open)?;
    let mut e = Expansion {
        recipe: Vec::new(),
        body: Vec::with_capacity(data.len() * 3),
        stats: ExpansionStats {
            archives: 1 + open.stored_archives,
            ..Default::default()
        },
    };
    let mut search = ModelSearch {
        last: None,
        found_any: false,
        misses: 0,
    };
    e.recipe = recipe_of(data, &regions, &mut e.body, &mut e.stats, &mut |p, c| {
        search.find(p, c)
    });
    let mut count = PartCount::default();
    count_parts(&e.recipe, &mut count);
    (count.parts <= MAX_PARTS && count.members <= MAX_MEMBERS).then_some(e)
}

/// The model an outline names for every deflated member (the one java.util.zip uses).
const OUTLINE_MODEL: Deflate = Deflate::Zlib {
    level: 6,
    mem_level: 8,
};

/// The *outline* of an archive: the expansion it would have if every deflated member were
/// compressed by zlib at level 6 (its recipe and its plain view, encoded), or None when
/// booster does not open it. It depends on the archive's bytes alone — no model is run —
/// so both sides of a bundle compute the same outline of an old archive, and a new
/// archive's expansion, laid out alike, finds its unchanged parts there.
pub fn outline(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() as u64 > MAX_ARCHIVE {
        return None;
    }
    let regions = regions(data, 0, &mut Opening::new())?;
    let mut e = Expansion {
        recipe: Vec::new(),
        body: Vec::with_capacity(data.len() * 3),
        stats: ExpansionStats::default(),
    };
    e.recipe = recipe_of(data, &regions, &mut e.body, &mut e.stats, &mut |_, _| {
        Some(OUTLINE_MODEL)
    });
    Some(e.encode())
}

fn push_bytes(node: &mut Vec<Part>, n: u64) {
    if n == 0 {
        return;
    }
    match node.last_mut() {
        Some(Part::Bytes(last)) => *last += n,
        _ => node.push(Part::Bytes(n)),
    }
}

/// The model that compresses a member's plain text (first) into its bytes (second), if any.
type FindModel<'a> = dyn FnMut(&[u8], &[u8]) -> Option<Deflate> + 'a;

fn recipe_of(
    data: &[u8],
    regions: &[Region],
    body: &mut Vec<u8>,
    stats: &mut ExpansionStats,
    model_of: &mut FindModel<'_>,
) -> Vec<Part> {
    let mut node = Vec::new();
    for r in regions {
        match r {
            Region::Bytes(b) => {
                body.extend_from_slice(&data[b.clone()]);
                push_bytes(&mut node, b.len() as u64);
            }
            Region::Deflated { range, plain, inner } => {
                let compressed = &data[range.clone()];
                match model_of(plain, compressed) {
                    Some(model) => {
                        stats.members_opened += 1;
                        let child = match inner {
                            Some(inner) => {
                                stats.archives += 1;
                                recipe_of(plain, inner, body, stats, model_of)
                            }
                            None => {
                                body.extend_from_slice(plain);
                                vec![Part::Bytes(plain.len() as u64)]
                            }
                        };
                        node.push(Part::Deflated {
                            model,
                            compressed_len: compressed.len() as u64,
                            node: child,
                        });
                    }
                    None => {
                        stats.members_compressed += 1;
                        body.extend_from_slice(compressed);
                        push_bytes(&mut node, compressed.len() as u64);
                    }
                }
            }
        }
    }
    node
}

impl Expansion {
    /// `version u8 ‖ varint recipe length ‖ recipe ‖ body` (store-format.md 6.4.3).
    pub fn encode(&self) -> Vec<u8> {
        let mut recipe = Writer::new();
        encode_node(&self.recipe, &mut recipe);
        let recipe = recipe.into_inner();
        let mut w = Writer::new();
        w.u8(EXPANSION_VERSION).bytes(&recipe).raw(&self.body);
        w.into_inner()
    }

    /// Decode an expansion (its stats are not carried, and read as zero). The body stays in
    /// `b`'s buffer: an expansion may be hundreds of megabytes.
    pub fn decode(mut b: Vec<u8>) -> DecodeResult<Expansion> {
        let (recipe, body_at) = read_recipe(&b)?;
        b.drain(..body_at);
        Ok(Expansion {
            recipe,
            body: b,
            stats: ExpansionStats::default(),
        })
    }

    /// The recipe of an encoded expansion, checked against its body's length.
    pub fn decode_recipe(b: &[u8]) -> DecodeResult<Vec<Part>> {
        read_recipe(b).map(|(recipe, _)| recipe)
    }

    /// The archive's exact bytes, which must be `want` long: each deflated member is
    /// compressed again by its model and must come out as long as it was.
    pub fn rebuild(&self, want: u64) -> Result<Vec<u8>, String> {
        let mut body = &self.body[..];
        let mut out = Vec::with_capacity(want.min(MAX_ARCHIVE) as usize);
        emit(&self.recipe, &mut body, &mut out, want)?;
        if !body.is_empty() {
            return Err(format!("{} body bytes are left over", body.len()));
        }
        if out.len() as u64 != want {
            return Err(format!("rebuilds to {} bytes, the plan says {want}", out.len()));
        }
        Ok(out)
    }
}

/// The recipe of an encoded expansion and where its body starts.
fn read_recipe(b: &[u8]) -> DecodeResult<(Vec<Part>, usize)> {
    let mut r = Reader::new(b);
    let version = r.u8("archive expansion version")?;
    if version != EXPANSION_VERSION {
        return Err(DecodeError(format!(
            "archive expansion version {version} is not one this booster reads; upgrade booster"
        )));
    }
    let mut recipe = Reader::new(r.bytes("archive recipe")?);
    let node = decode_node(&mut recipe, 0, &mut PartCount::default())?;
    recipe.expect_end("archive recipe")?;
    let wanted = body_len(&node);
    if wanted != r.remaining() as u64 {
        return Err(DecodeError(format!(
            "the archive recipe takes {wanted} body bytes, the body has {}",
            r.remaining()
        )));
    }
    Ok((node, r.position()))
}

fn body_len(node: &[Part]) -> u64 {
    node.iter()
        .map(|p| match p {
            Part::Bytes(n) => *n,
            Part::Deflated { node, .. } => body_len(node),
        })
        .fold(0u64, u64::saturating_add)
}

const PART_BYTES: u8 = 0;
const PART_DEFLATED: u8 = 1;

fn encode_node(node: &[Part], w: &mut Writer) {
    w.varint(node.len() as u64);
    for p in node {
        match p {
            Part::Bytes(n) => {
                w.u8(PART_BYTES).varint(*n);
            }
            Part::Deflated {
                model,
                compressed_len,
                node,
            } => {
                w.u8(PART_DEFLATED);
                model.encode(w);
                w.varint(*compressed_len);
                encode_node(node, w);
            }
        }
    }
}

/// Parts one recipe may hold in all, and deflated members among them: a recipe is decoded
/// into memory and each member costs an encoder, so a small hostile frame must not ask for
/// millions. The sender carries an archive beyond them as bytes.
pub const MAX_PARTS: u64 = 1 << 20;
pub const MAX_MEMBERS: u64 = MAX_ENTRIES;

/// Parts and deflated members counted so far.
#[derive(Default)]
struct PartCount {
    parts: u64,
    members: u64,
}

fn count_parts(node: &[Part], c: &mut PartCount) {
    for p in node {
        c.parts += 1;
        if let Part::Deflated { node, .. } = p {
            c.members += 1;
            count_parts(node, c);
        }
    }
}

fn decode_node(r: &mut Reader<'_>, depth: u32, count: &mut PartCount) -> DecodeResult<Vec<Part>> {
    if depth > MAX_DEPTH + 1 {
        return Err(DecodeError(
            "archive recipe nests deeper than archives are opened".into(),
        ));
    }
    let n = r.count(2, "archive recipe parts")?;
    count.parts += n as u64;
    if count.parts > MAX_PARTS {
        return Err(DecodeError(format!(
            "archive recipe has more than {MAX_PARTS} parts"
        )));
    }
    let mut node = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        node.push(match r.u8("archive part kind")? {
            PART_BYTES => Part::Bytes(r.len(MAX_ARCHIVE + MAX_INFLATED, "archive bytes part")? as u64),
            PART_DEFLATED => {
                let model = Deflate::decode(r)?;
                if matches!(model, Deflate::Preflate { .. } | Deflate::Replay { .. }) {
                    return Err(DecodeError(
                        "an archive member's model must be an encoder model".into(),
                    ));
                }
                let compressed_len = r.len(MAX_ARCHIVE, "archive member length")? as u64;
                count.members += 1;
                if count.members > MAX_MEMBERS {
                    return Err(DecodeError(format!(
                        "archive recipe has more than {MAX_MEMBERS} deflated members"
                    )));
                }
                let node = decode_node(r, depth + 1, count)?;
                Part::Deflated {
                    model,
                    compressed_len,
                    node,
                }
            }
            k => return Err(DecodeError(format!("unknown archive part kind {k}"))),
        });
    }
    Ok(node)
}

fn take<'a>(body: &mut &'a [u8], n: u64) -> Result<&'a [u8], String> {
    if n > body.len() as u64 {
        return Err("the archive body is shorter than its recipe".into());
    }
    let (head, rest) = body.split_at(n as usize);
    *body = rest;
    Ok(head)
}

fn emit(node: &[Part], body: &mut &[u8], out: &mut Vec<u8>, limit: u64) -> Result<(), String> {
    for p in node {
        match p {
            Part::Bytes(n) => out.extend_from_slice(take(body, *n)?),
            Part::Deflated {
                model,
                compressed_len,
                node,
            } => {
                let mut plain = Vec::new();
                emit(node, body, &mut plain, MAX_INFLATED)?;
                let bytes = compress(model, &plain)
                    .ok_or_else(|| format!("deflate model {} is not available", model.describe()))?;
                if bytes.len() as u64 != *compressed_len {
                    return Err(format!(
                        "a member compresses to {} bytes with {}, the recipe says {compressed_len}",
                        bytes.len(),
                        model.describe()
                    ));
                }
                out.extend_from_slice(&bytes);
            }
        }
        if out.len() as u64 > limit {
            return Err(format!("the archive rebuilds to more than {limit} bytes"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip written by hand: stored and deflated (zlib 6) members, a data descriptor, an
    /// archive comment and bytes before the first member.
    fn handmade(prefix: &[u8], members: &[(&str, &[u8], bool)], comment: &[u8]) -> Vec<u8> {
        let mut out = prefix.to_vec();
        let mut central = Vec::new();
        for (name, data, deflate) in members {
            let (method, body) = if *deflate {
                (
                    8u16,
                    compress(
                        &Deflate::Zlib {
                            level: 6,
                            mem_level: 8,
                        },
                        data,
                    )
                    .unwrap(),
                )
            } else {
                (0u16, data.to_vec())
            };
            let crc = crc32fast::hash(data);
            let offset = (out.len() - prefix.len()) as u32;
            let local = |sig: &[u8], out: &mut Vec<u8>| {
                out.extend_from_slice(sig);
                out.extend_from_slice(&20u16.to_le_bytes());
                out.extend_from_slice(&8u16.to_le_bytes()); // flags: data descriptor
                out.extend_from_slice(&method.to_le_bytes());
                out.extend_from_slice(&[0; 4]); // time, date
            };
            local(LOCAL, &mut out);
            out.extend_from_slice(&[0; 12]); // crc and sizes in the descriptor
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(b"PK\x07\x08");
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(CENTRAL);
            central.extend_from_slice(&20u16.to_le_bytes());
            local(&[], &mut central);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(body.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = (out.len() - prefix.len()) as u32;
        finish(&mut out, &central, members.len(), cd_offset, comment);
        out
    }

    /// The central directory and the end record after the members.
    fn finish(out: &mut Vec<u8>, central: &[u8], count: usize, cd_offset: u32, comment: &[u8]) {
        out.extend_from_slice(central);
        out.extend_from_slice(END);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(count as u16).to_le_bytes());
        out.extend_from_slice(&(count as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        out.extend_from_slice(comment);
    }

    fn text(seed: u32, n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"abcdefgh ijklmnop"[((i as u32).wrapping_mul(seed) % 17) as usize])
            .collect()
    }

    /// The plain view: the body of the outline.
    fn plain_view(zip: &[u8]) -> Option<Vec<u8>> {
        Some(Expansion::decode(outline(zip)?).unwrap().body)
    }

    fn round_trip(zip: &[u8]) -> Expansion {
        let e = expand(zip).expect("opens");
        let wire = e.encode();
        assert_eq!(Expansion::decode_recipe(&wire).unwrap(), e.recipe);
        let back = Expansion::decode(wire).unwrap();
        assert_eq!(back.recipe, e.recipe);
        assert_eq!(back.rebuild(zip.len() as u64).unwrap(), zip);
        e
    }

    #[test]
    fn handmade_archives_rebuild_exactly() {
        let a = text(7, 5000);
        let b = text(11, 9000);
        let zip = handmade(
            b"#!/bin/sh\nexec java -jar $0\n",
            &[("a.txt", &a, true), ("b.bin", &b, false)],
            b"made by hand",
        );
        let e = round_trip(&zip);
        assert_eq!(e.stats.members_opened, 1);
        let view = plain_view(&zip).unwrap();
        assert!(view.windows(a.len()).any(|w| w == a));
    }

    #[test]
    fn stored_and_deflated_archives_inside_are_opened() {
        let lib = handmade(b"", &[("x/Y.class", &text(13, 4000), true)], b"");
        let war_lib = handmade(b"", &[("p/Q.class", &text(17, 3000), true)], b"");
        let outer = handmade(
            b"",
            &[
                ("BOOT-INF/lib/lib.jar", &lib, false),
                ("WEB-INF/lib/q.jar", &war_lib, true),
                ("App.class", &text(19, 2000), true),
            ],
            b"",
        );
        let e = round_trip(&outer);
        assert_eq!(e.stats.archives, 3);
        assert_eq!(e.stats.members_opened, 4);
        assert!(e.body.windows(3000).any(|w| w == text(17, 3000)));
    }

    #[test]
    fn members_no_model_reproduces_stay_compressed() {
        let (a, b) = (text(23, 6000), text(29, 100));
        // One stored deflate block: valid deflate that no candidate model writes.
        let mut stored = vec![0x01];
        stored.extend_from_slice(&(a.len() as u16).to_le_bytes());
        stored.extend_from_slice(&(!(a.len() as u16)).to_le_bytes());
        stored.extend_from_slice(&a);
        let zlib6 = compress(
            &Deflate::Zlib {
                level: 6,
                mem_level: 8,
            },
            &b,
        )
        .unwrap();
        let zip = handmade_with_raw(&[("a", &a, stored), ("b", &b, zlib6)]);
        let e = round_trip(&zip);
        assert_eq!(e.stats.members_compressed, 1);
        assert_eq!(e.stats.members_opened, 1);
        // The plain view opens it all the same: it needs no model.
        assert!(plain_view(&zip).unwrap().windows(a.len()).any(|w| w == a));
    }

    /// Deflated members with given compressed bytes.
    fn handmade_with_raw(members: &[(&str, &[u8], Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, body) in members {
            let offset = out.len() as u32;
            let head = |out: &mut Vec<u8>| {
                out.extend_from_slice(&20u16.to_le_bytes());
                out.extend_from_slice(&0u16.to_le_bytes());
                out.extend_from_slice(&8u16.to_le_bytes());
                out.extend_from_slice(&[0; 4]);
                out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
                out.extend_from_slice(&(body.len() as u32).to_le_bytes());
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            };
            out.extend_from_slice(LOCAL);
            head(&mut out);
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(body);
            central.extend_from_slice(CENTRAL);
            central.extend_from_slice(&20u16.to_le_bytes());
            head(&mut central);
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd = out.len() as u32;
        finish(&mut out, &central, members.len(), cd, b"");
        out
    }

    #[test]
    fn damaged_archives_are_not_opened() {
        let zip = handmade(
            b"",
            &[("a", &text(31, 3000), true), ("b", &text(37, 3000), true)],
            b"",
        );
        // Truncated anywhere: not opened (or, if the cut leaves a valid archive, rebuilt).
        for cut in [1, 10, 100, zip.len() / 2] {
            let t = &zip[..zip.len() - cut];
            if let Some(e) = expand(t) {
                assert_eq!(e.rebuild(t.len() as u64).unwrap(), t);
            }
        }
        // A directory whose second entry points at the first: overlapping members.
        let mut lying = zip.clone();
        let cd = find_end(&lying).unwrap();
        let cd_start = u32_at(&lying, cd + 16).unwrap() as usize;
        let second = cd_start + 46 + 1;
        lying[second + 42..second + 46].copy_from_slice(&0u32.to_le_bytes());
        assert!(expand(&lying).is_none());
        // Not a zip at all.
        assert!(expand(b"PK\x03\x04 and then nothing").is_none());
    }

    #[test]
    fn bombs_are_not_opened() {
        let zeros = vec![0u8; (MAX_INFLATED / 4 + 1) as usize];
        let members: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("z{i}"), zeros.clone())).collect();
        let refs: Vec<(&str, &[u8], bool)> =
            members.iter().map(|(n, d)| (n.as_str(), &d[..], true)).collect();
        let zip = handmade(b"", &refs, b"");
        assert!((zip.len() as u64) < MAX_ARCHIVE);
        // Members past the budget stay compressed: nothing inflates beyond it.
        let view = plain_view(&zip).unwrap();
        assert!(view.len() as u64 <= MAX_INFLATED + zip.len() as u64);
        let e = round_trip(&zip);
        assert_eq!(e.stats.members_opened, 3);
        // A member that alone claims more than the budget is never inflated far past it,
        // and what it inflated counts against the budget.
        let zlib6 = Deflate::Zlib {
            level: 6,
            mem_level: 8,
        };
        let (plain, spent) = inflate_exact(&compress(&zlib6, &zeros).unwrap(), 1 << 20);
        assert!(plain.is_none() && spent > 1 << 20 && spent <= 80 << 20, "{spent}");
    }

    #[test]
    fn hostile_expansions_fail_cleanly() {
        let zip = handmade(b"", &[("a", &text(41, 2000), true)], b"");
        let wire = expand(&zip).unwrap().encode();
        for i in 0..wire.len().min(200) {
            let mut w = wire.clone();
            w[i] ^= 0x55;
            if let Ok(e) = Expansion::decode(w) {
                let _ = e.rebuild(zip.len() as u64);
            }
        }
        assert!(Expansion::decode(wire[..wire.len() - 1].to_vec()).is_err());
        // A small frame asking for millions of parts is refused before they are built.
        let n = MAX_PARTS + 1;
        let mut recipe = Writer::new();
        recipe.varint(n);
        for _ in 0..n {
            recipe.u8(PART_BYTES).varint(0);
        }
        let mut w = Writer::new();
        w.u8(EXPANSION_VERSION).bytes(&recipe.into_inner());
        let e = Expansion::decode(w.into_inner()).unwrap_err();
        assert!(e.0.contains("more than"), "{}", e.0);
    }
}
