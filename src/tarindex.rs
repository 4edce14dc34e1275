//! A streaming tar walker that records, for every entry of a layer, where its content sits in
//! the uncompressed stream. The index lets a bundle encode a changed file against the old
//! version of the same path (see `bundle` and `delta`).
//!
//! The walker is fed the stream in arbitrary pieces, never buffers content, and treats its
//! input as untrusted: a stream that is not a tar simply yields a shorter (possibly empty)
//! index, never an error or a panic, because layers may be arbitrary blobs.

/// One tar entry. `offset` is the position of the first content byte in the tar stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    pub path: Vec<u8>,
    pub kind: u8,
    pub offset: u64,
    pub size: u64,
}

impl TarEntry {
    pub const REGULAR: u8 = b'0';
    /// The path of the pseudo-entry for what follows a tar's end-of-archive marker: a NUL
    /// ends a tar path, so no real entry can have it.
    pub const AFTER_THE_TAR: &'static [u8] = b"\0after-the-tar";

    pub fn is_regular(&self) -> bool {
        self.kind == b'0' || self.kind == 0 || self.kind == b'7'
    }

    /// The file name after the last `/`.
    pub fn file_name(&self) -> &[u8] {
        match self.path.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.path[i + 1..],
            None => &self.path,
        }
    }
}

/// Metadata entries (long names, PAX headers) larger than this end indexing: real ones are a
/// few hundred bytes, and a hostile stream must not make the walker allocate without bound.
const MAX_META_ENTRY: u64 = 1 << 20;

enum State {
    /// Collecting a 512-byte header.
    Header,
    /// Skipping `remaining` bytes of content plus padding.
    Skip { remaining: u64 },
    /// Collecting the content of a metadata entry (GNU long name/link, PAX), then padding.
    Meta { kind: u8, remaining: u64, padding: u64 },
    /// End of archive seen, or not a tar: ignore the rest.
    Done,
}

pub struct TarWalker {
    state: State,
    pos: u64,
    header: Vec<u8>,
    meta: Vec<u8>,
    long_name: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_size: Option<u64>,
    zero_blocks: u8,
    entries: Vec<TarEntry>,
    /// Where the end-of-archive marker ended, once seen.
    end_of_archive: Option<u64>,
    /// Whether a non-zero byte followed the end-of-archive marker.
    data_after_the_tar: bool,
}

impl Default for TarWalker {
    fn default() -> Self {
        TarWalker::new()
    }
}

impl TarWalker {
    pub fn new() -> TarWalker {
        TarWalker {
            state: State::Header,
            pos: 0,
            header: Vec::with_capacity(512),
            meta: Vec::new(),
            long_name: None,
            pax_path: None,
            pax_size: None,
            zero_blocks: 0,
            entries: Vec::new(),
            end_of_archive: None,
            data_after_the_tar: false,
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let used = match self.state {
                State::Done => {
                    if self.end_of_archive.is_some() && !self.data_after_the_tar {
                        self.data_after_the_tar = data.iter().any(|&b| b != 0);
                    }
                    data.len()
                }
                State::Header => {
                    let take = (512 - self.header.len()).min(data.len());
                    self.header.extend_from_slice(&data[..take]);
                    if self.header.len() == 512 {
                        let header = std::mem::take(&mut self.header);
                        self.on_header(&header, self.pos + take as u64);
                        self.header = header;
                        self.header.clear();
                    }
                    take
                }
                State::Skip { remaining } => {
                    let take = remaining.min(data.len() as u64);
                    self.state = if take == remaining {
                        State::Header
                    } else {
                        State::Skip {
                            remaining: remaining - take,
                        }
                    };
                    take as usize
                }
                State::Meta {
                    kind,
                    remaining,
                    padding,
                } => {
                    let take = remaining.min(data.len() as u64);
                    self.meta.extend_from_slice(&data[..take as usize]);
                    if take == remaining {
                        self.on_meta(kind);
                        self.state = if padding == 0 {
                            State::Header
                        } else {
                            State::Skip { remaining: padding }
                        };
                    } else {
                        self.state = State::Meta {
                            kind,
                            remaining: remaining - take,
                            padding,
                        };
                    }
                    take as usize
                }
            };
            self.pos += used as u64;
            data = &data[used..];
        }
    }

    /// The entries seen so far; call after the whole stream was pushed. Data after the
    /// end-of-archive marker (zstd:chunked's table of contents, which the skippable frame's
    /// decoding appends to the tar) becomes one last entry, `TarEntry::AFTER_THE_TAR`, so
    /// a bundle encodes it against the old layer's.
    pub fn finish(mut self) -> Vec<TarEntry> {
        if let Some(end) = self.end_of_archive
            && self.data_after_the_tar
            && !self.entries.is_empty()
        {
            self.entries.push(TarEntry {
                path: TarEntry::AFTER_THE_TAR.to_vec(),
                kind: TarEntry::REGULAR,
                offset: end,
                size: self.pos - end,
            });
        }
        self.entries
    }

    fn on_header(&mut self, h: &[u8], content_offset: u64) {
        if h.iter().all(|&b| b == 0) {
            self.zero_blocks += 1;
            if self.zero_blocks >= 2 {
                self.state = State::Done;
                self.end_of_archive = Some(content_offset);
            }
            return;
        }
        self.zero_blocks = 0;
        if !checksum_ok(h) {
            self.state = State::Done;
            return;
        }
        let Some(header_size) = parse_size(&h[124..136]) else {
            self.state = State::Done;
            return;
        };
        let kind = h[156];
        match kind {
            b'L' | b'K' | b'x' | b'g' => {
                if header_size > MAX_META_ENTRY {
                    self.state = State::Done;
                    return;
                }
                self.meta.clear();
                let padding = pad(header_size);
                self.state = if header_size == 0 {
                    State::Skip { remaining: padding }
                } else {
                    State::Meta {
                        kind,
                        remaining: header_size,
                        padding,
                    }
                };
                if header_size == 0 && padding == 0 {
                    self.state = State::Header;
                }
            }
            _ => {
                let size = self.pax_size.take().unwrap_or(header_size);
                let path = self
                    .pax_path
                    .take()
                    .or_else(|| self.long_name.take())
                    .unwrap_or_else(|| ustar_path(h));
                self.long_name = None;
                // Hard links, symlinks, directories and devices carry no content in the stream
                // even when a size field is set.
                let content = if matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') {
                    0
                } else {
                    size
                };
                self.entries.push(TarEntry {
                    path: normalise_path(&path),
                    kind,
                    offset: content_offset,
                    size: content,
                });
                let skip = content + pad(content);
                self.state = if skip == 0 {
                    State::Header
                } else {
                    State::Skip { remaining: skip }
                };
            }
        }
    }

    fn on_meta(&mut self, kind: u8) {
        let data = std::mem::take(&mut self.meta);
        match kind {
            b'L' => self.long_name = Some(trim_nul(&data).to_vec()),
            b'x' => {
                for (key, value) in pax_records(&data) {
                    match key {
                        b"path" => self.pax_path = Some(value.to_vec()),
                        b"size" => {
                            self.pax_size = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok())
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        self.meta = data;
        self.meta.clear();
    }
}

fn pad(size: u64) -> u64 {
    (512 - size % 512) % 512
}

fn checksum_ok(h: &[u8]) -> bool {
    let Some(stored) = parse_octal(&h[148..156]) else {
        return false;
    };
    let unsigned: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u64 })
        .sum();
    let signed: i64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as i8 as i64
            }
        })
        .sum();
    stored == unsigned || stored as i64 == signed
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let s = trim_nul(field);
    let s: Vec<u8> = s.iter().copied().filter(|&b| b != b' ').collect();
    if s.is_empty() {
        return Some(0);
    }
    let mut v: u64 = 0;
    for b in s {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add((b - b'0') as u64)?;
    }
    Some(v)
}

/// Size fields are octal, or GNU base-256 when the top bit of the first byte is set.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        Some(v)
    } else {
        parse_octal(field)
    }
}

fn trim_nul(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

fn ustar_path(h: &[u8]) -> Vec<u8> {
    let name = trim_nul(&h[0..100]);
    let is_ustar = &h[257..262] == b"ustar";
    let prefix = if is_ustar { trim_nul(&h[345..500]) } else { &[] };
    if prefix.is_empty() {
        name.to_vec()
    } else {
        let mut p = prefix.to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }
}

/// `./usr/bin/x`, `/usr/bin/x` and `usr/bin/x` name the same file in a layer.
fn normalise_path(p: &[u8]) -> Vec<u8> {
    let mut s = p;
    loop {
        if let Some(rest) = s.strip_prefix(b"./") {
            s = rest;
        } else if let Some(rest) = s.strip_prefix(b"/") {
            s = rest;
        } else {
            break;
        }
    }
    let s = s.strip_suffix(b"/").unwrap_or(s);
    s.to_vec()
}

/// PAX records: `LEN KEY=VALUE\n`, where LEN counts the whole record.
fn pax_records(mut data: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let Some(space) = data.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= space + 1 || len > data.len() {
            break;
        }
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            out.push((&record[..eq], &record[eq + 1..]));
        }
        data = &data[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_tar(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn data_after_the_end_of_archive_is_one_last_entry() {
        let tar = build_tar(&[("a.txt", b"hello".to_vec())]);
        // tar-rs ends the archive with two zero blocks and no record padding.
        let end = tar.len() as u64;
        let mut with_toc = tar.clone();
        with_toc.extend_from_slice(b"{\"version\":1,\"entries\":[]}");
        for piece in [1usize, 100, 1 << 20] {
            let mut w = TarWalker::new();
            with_toc.chunks(piece).for_each(|p| w.push(p));
            let entries = w.finish();
            assert_eq!(entries.len(), 2, "piece {piece}");
            assert_eq!(entries[1].path, TarEntry::AFTER_THE_TAR);
            assert_eq!((entries[1].offset, entries[1].size), (end, 26));
        }
        // Zeros after the marker (record padding) are no entry.
        let mut padded = tar;
        padded.extend_from_slice(&[0u8; 8192]);
        let mut w = TarWalker::new();
        w.push(&padded);
        assert_eq!(w.finish().len(), 1);
    }

    #[test]
    fn indexes_regular_files_and_long_names() {
        let long = format!("usr/share/{}/file.txt", "d".repeat(150));
        let tar = build_tar(&[
            ("./etc/hostname", b"box\n".to_vec()),
            (&long, vec![7u8; 3000]),
            ("empty", vec![]),
        ]);
        for piece in [1usize, 7, 512, 100_000] {
            let mut w = TarWalker::new();
            for p in tar.chunks(piece) {
                w.push(p);
            }
            let entries = w.finish();
            assert_eq!(entries.len(), 3, "piece {piece}");
            assert_eq!(entries[0].path, b"etc/hostname");
            assert_eq!(&tar[entries[0].offset as usize..][..4], b"box\n");
            assert_eq!(entries[1].path, long.as_bytes());
            assert_eq!(entries[1].size, 3000);
            assert!(tar[entries[1].offset as usize..][..3000].iter().all(|&b| b == 7));
            assert_eq!(entries[1].file_name(), b"file.txt");
        }
    }

    #[test]
    fn garbage_gives_an_empty_index() {
        let mut w = TarWalker::new();
        w.push(&[0x55u8; 4096]);
        assert!(w.finish().is_empty());
    }
}
