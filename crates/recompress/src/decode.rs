//! Decompression for ingest: a `Read` over a blob's plain bytes that also records the blob's
//! layout (gzip members or zstd frames: where each starts and ends, how much plain data
//! each holds). `analyze` uses the layout to model each member separately.
//!
//! Integrity is checked here: gzip CRC-32 and length trailers must match, and zstd frames
//! with checksums are verified by libzstd.

use std::io::{self, Read};
use std::ops::Range;

use flate2::Crc;
use zlib_rs::{Inflate, InflateFlush, Status};

use super::gzip::{self, HeaderError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Plain,
    Gzip,
    Zstd,
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Decide the format from the first bytes. The bytes decide, not the media type: a
/// registry's media type can be wrong, the bytes cannot.
pub fn sniff(head: &[u8]) -> Format {
    if head.len() >= 3 && head[..2] == gzip::MAGIC && head[2] == 8 {
        Format::Gzip
    } else if head.len() >= 4 && head[..4] == ZSTD_MAGIC {
        Format::Zstd
    } else {
        Format::Plain
    }
}

/// One gzip member or zstd frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Header bytes (gzip; for a zstd frame inside a skippable frame, the skippable
    /// frame's 8-byte header; zstd frame headers are inside `body`).
    pub header: Vec<u8>,
    /// Compressed body in the blob: the raw deflate stream, or the whole zstd frame.
    pub body: Range<u64>,
    pub plain_len: u64,
    /// zstd only: a skippable frame (its magic number). With a non-empty `header` its
    /// payload, `body`, is a zstd frame whose content is part of the plain stream
    /// (zstd:chunked's table of contents); otherwise `body` is the whole skippable frame,
    /// which holds no plain bytes.
    pub skippable: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub format: Format,
    pub members: Vec<Member>,
    /// Bytes after the last member that belong to no member (zero padding some tools add).
    pub trailing: Range<u64>,
    pub compressed_len: u64,
}

/// Trailing garbage beyond this is refused rather than carried: it is not a layer anymore.
const MAX_TRAILING: u64 = 1 << 20;
const IN_BUF: usize = 256 * 1024;

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Input buffer with absolute offsets, shared by both decoders.
struct Input<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Blob offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    fn new(src: R) -> Self {
        Input {
            src,
            buf: vec![0; IN_BUF],
            pos: 0,
            len: 0,
            base: 0,
            eof: false,
        }
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    /// Read more input, keeping unconsumed bytes. Returns false at end of input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.base += self.pos as u64;
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            let n = self.buf.len();
            self.buf.resize(n * 2, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.len += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

enum GzState {
    Header,
    Body,
    Trailer,
    Done,
}

/// Multi-member gzip decoder.
pub struct GzipDecoder<R> {
    input: Input<R>,
    state: GzState,
    inflate: Inflate,
    crc: Crc,
    current: Option<Member>,
    members: Vec<Member>,
    trailing: Range<u64>,
}

impl<R: Read> GzipDecoder<R> {
    pub fn new(src: R) -> Self {
        GzipDecoder {
            input: Input::new(src),
            state: GzState::Header,
            inflate: Inflate::new(false, 15),
            crc: Crc::new(),
            current: None,
            members: Vec::new(),
            trailing: 0..0,
        }
    }

    /// The layout, once the stream has been read to its end.
    pub fn layout(&self) -> Layout {
        Layout {
            format: Format::Gzip,
            members: self.members.clone(),
            trailing: self.trailing.clone(),
            compressed_len: self.input.offset(),
        }
    }

    fn read_header(&mut self) -> io::Result<bool> {
        loop {
            let avail = self.input.avail();
            if avail.is_empty() && !self.input.fill()? {
                if self.members.is_empty() {
                    return Err(invalid("empty gzip stream"));
                }
                self.state = GzState::Done;
                return Ok(false);
            }
            let avail = self.input.avail();
            match gzip::parse_header(avail) {
                Ok(h) => {
                    let start = self.input.offset();
                    let header = avail[..h.len].to_vec();
                    self.input.consume(h.len);
                    self.current = Some(Member {
                        skippable: None,
                        header,
                        body: start + h.len as u64..0,
                        plain_len: 0,
                    });
                    self.inflate.reset(false);
                    self.crc = Crc::new();
                    self.state = GzState::Body;
                    return Ok(true);
                }
                Err(HeaderError::Incomplete) => {
                    if !self.input.fill()? {
                        return self.take_trailing();
                    }
                }
                Err(HeaderError::Invalid(why)) => {
                    if self.members.is_empty() {
                        return Err(invalid(format!("not a gzip stream: {why}")));
                    }
                    return self.take_trailing();
                }
            }
        }
    }

    /// Bytes after the last member that are not another member: kept verbatim.
    fn take_trailing(&mut self) -> io::Result<bool> {
        let start = self.input.offset();
        loop {
            let n = self.input.avail().len();
            self.input.consume(n);
            if self.input.offset() - start > MAX_TRAILING {
                return Err(invalid(format!(
                    "more than {MAX_TRAILING} bytes of garbage after the last gzip member"
                )));
            }
            if !self.input.fill()? {
                break;
            }
        }
        self.trailing = start..self.input.offset();
        self.state = GzState::Done;
        Ok(false)
    }

    fn read_body(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.input.avail().is_empty() && !self.input.fill()? {
                return Err(invalid("gzip stream is truncated (deflate data ends early)"));
            }
            let before_in = self.inflate.total_in();
            let before_out = self.inflate.total_out();
            let status = self
                .inflate
                .decompress(self.input.avail(), out, InflateFlush::NoFlush)
                .map_err(|e| {
                    let detail = self.inflate.error_message().unwrap_or(e.as_str());
                    invalid(format!("corrupt deflate data: {detail}"))
                })?;
            let used = (self.inflate.total_in() - before_in) as usize;
            let produced = (self.inflate.total_out() - before_out) as usize;
            self.input.consume(used);
            self.crc.update(&out[..produced]);
            if status == Status::StreamEnd {
                let m = self.current.as_mut().expect("member open");
                m.body.end = self.input.offset();
                m.plain_len = self.inflate.total_out();
                self.state = GzState::Trailer;
                return Ok(produced);
            }
            if produced > 0 {
                return Ok(produced);
            }
            if used == 0 && !self.input.fill()? {
                return Err(invalid("gzip stream is truncated (deflate data ends early)"));
            }
        }
    }

    fn read_trailer(&mut self) -> io::Result<()> {
        while self.input.avail().len() < 8 {
            if !self.input.fill()? {
                return Err(invalid("gzip stream is truncated (member trailer missing)"));
            }
        }
        let m = self.current.take().expect("member open");
        let expected = gzip::trailer(self.crc.sum(), m.plain_len);
        if self.input.avail()[..8] != expected {
            return Err(invalid("gzip CRC-32 or length check failed: the blob is corrupt"));
        }
        self.input.consume(8);
        self.members.push(m);
        self.state = GzState::Header;
        Ok(())
    }
}

impl<R: Read> Read for GzipDecoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                GzState::Done => return Ok(0),
                GzState::Header => {
                    self.read_header()?;
                }
                GzState::Body => {
                    let n = self.read_body(out)?;
                    if n > 0 {
                        return Ok(n);
                    }
                }
                GzState::Trailer => self.read_trailer()?,
            }
        }
    }
}

/// Skippable frames hold at most this much to be looked into; a bigger one is kept opaque.
pub(crate) const MAX_SKIPPABLE_PAYLOAD: u64 = 64 << 20;

/// Frame-by-frame zstd decoder. A skippable frame whose payload is one zstd frame (how
/// zstd:chunked stores its table of contents and tar-split data) contributes that frame's
/// content to the plain stream; any other skippable frame contributes nothing.
pub struct ZstdDecoder<R> {
    input: Input<R>,
    dctx: zstd::zstd_safe::DCtx<'static>,
    frame_start: Option<u64>,
    plain_in_frame: u64,
    members: Vec<Member>,
    /// Plain content of a skippable frame being served.
    pending: Vec<u8>,
    pending_pos: usize,
    done: bool,
}

impl<R: Read> ZstdDecoder<R> {
    pub fn new(src: R) -> io::Result<Self> {
        let mut dctx = zstd::zstd_safe::DCtx::create();
        // Layers may use long windows (`--long=31`); allow them, the frame header bounds it.
        dctx.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(31))
            .map_err(|c| invalid(format!("zstd: {}", zstd::zstd_safe::get_error_name(c))))?;
        Ok(ZstdDecoder {
            input: Input::new(src),
            dctx,
            frame_start: None,
            plain_in_frame: 0,
            members: Vec::new(),
            pending: Vec::new(),
            pending_pos: 0,
            done: false,
        })
    }

    pub fn layout(&self) -> Layout {
        Layout {
            format: Format::Zstd,
            members: self.members.clone(),
            trailing: 0..0,
            compressed_len: self.input.offset(),
        }
    }

    /// At a frame boundary: a skippable frame is read whole; returns whether one was.
    fn take_skippable(&mut self) -> io::Result<bool> {
        while self.input.avail().len() < 8 {
            if !self.input.fill()? {
                break;
            }
        }
        let head = self.input.avail();
        if head.len() < 4 {
            return Ok(false);
        }
        let magic = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        if magic & 0xFFFF_FFF0 != 0x184D_2A50 {
            return Ok(false);
        }
        if head.len() < 8 {
            return Err(invalid("zstd stream is truncated (skippable frame header)"));
        }
        let size = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as u64;
        let start = self.input.offset();
        let header = head[..8].to_vec();
        self.input.consume(8);
        let payload = self.read_payload(size)?;
        let body = start + 8..start + 8 + size;
        if let Some(plain) = payload.as_deref().and_then(single_frame_content) {
            self.members.push(Member {
                header,
                body,
                plain_len: plain.len() as u64,
                skippable: Some(magic),
            });
            self.pending = plain;
            self.pending_pos = 0;
        } else {
            self.members.push(Member {
                header: Vec::new(),
                body: start..start + 8 + size,
                plain_len: 0,
                skippable: Some(magic),
            });
        }
        Ok(true)
    }

    /// The payload in memory when it is small enough to look into; skipped otherwise.
    fn read_payload(&mut self, size: u64) -> io::Result<Option<Vec<u8>>> {
        let keep = size <= MAX_SKIPPABLE_PAYLOAD;
        let mut payload = Vec::new();
        let mut left = size;
        while left > 0 {
            if self.input.avail().is_empty() && !self.input.fill()? {
                return Err(invalid("zstd stream is truncated (skippable frame)"));
            }
            let n = (self.input.avail().len() as u64).min(left) as usize;
            if keep {
                payload.extend_from_slice(&self.input.avail()[..n]);
            }
            self.input.consume(n);
            left -= n as u64;
        }
        Ok(keep.then_some(payload))
    }
}

/// The content of `payload` when it is exactly one complete zstd frame.
fn single_frame_content(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() < 4 || payload[..4] != ZSTD_MAGIC {
        return None;
    }
    let len = zstd::zstd_safe::find_frame_compressed_size(payload).ok()?;
    if len != payload.len() {
        return None;
    }
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(payload)
        .ok()?
        .single_frame()
        .take(MAX_SKIPPABLE_PAYLOAD * 16)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

impl<R: Read> Read for ZstdDecoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        use zstd::zstd_safe::{InBuffer, OutBuffer};
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pending_pos < self.pending.len() {
                let n = out.len().min(self.pending.len() - self.pending_pos);
                out[..n].copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
                self.pending_pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.input.avail().is_empty() && !self.input.fill()? {
                if self.frame_start.is_some() {
                    return Err(invalid("zstd stream is truncated (frame ends early)"));
                }
                if self.members.is_empty() {
                    return Err(invalid("empty zstd stream"));
                }
                self.done = true;
                return Ok(0);
            }
            if self.frame_start.is_none() {
                if self.take_skippable()? {
                    continue;
                }
                self.frame_start = Some(self.input.offset());
                self.plain_in_frame = 0;
            }
            let mut inb = InBuffer::around(self.input.avail());
            let mut outb = OutBuffer::around(&mut *out);
            let hint = self.dctx.decompress_stream(&mut outb, &mut inb).map_err(|c| {
                invalid(format!(
                    "corrupt zstd data: {}",
                    zstd::zstd_safe::get_error_name(c)
                ))
            })?;
            let used = inb.pos();
            let produced = outb.pos();
            self.input.consume(used);
            self.plain_in_frame += produced as u64;
            if hint == 0 {
                let start = self.frame_start.take().expect("frame open");
                self.members.push(Member {
                    header: Vec::new(),
                    body: start..self.input.offset(),
                    plain_len: self.plain_in_frame,
                    skippable: None,
                });
            }
            if produced > 0 {
                return Ok(produced);
            }
            if used == 0 && hint != 0 && !self.input.fill()? {
                return Err(invalid("zstd stream is truncated (frame ends early)"));
            }
        }
    }
}

/// Either decoder, or plain pass-through, behind one `Read`.
pub enum Decoder<R> {
    Plain { src: R, len: u64 },
    Gzip(GzipDecoder<R>),
    Zstd(ZstdDecoder<R>),
}

impl<R: Read> Decoder<R> {
    pub fn new(format: Format, src: R) -> io::Result<Self> {
        Ok(match format {
            Format::Plain => Decoder::Plain { src, len: 0 },
            Format::Gzip => Decoder::Gzip(GzipDecoder::new(src)),
            Format::Zstd => Decoder::Zstd(ZstdDecoder::new(src)?),
        })
    }

    pub fn layout(&self) -> Layout {
        match self {
            Decoder::Plain { len, .. } => Layout {
                format: Format::Plain,
                members: Vec::new(),
                trailing: 0..0,
                compressed_len: *len,
            },
            Decoder::Gzip(d) => d.layout(),
            Decoder::Zstd(d) => d.layout(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain { src, len } => {
                let n = src.read(out)?;
                *len += n as u64;
                Ok(n)
            }
            Decoder::Gzip(d) => d.read(out),
            Decoder::Zstd(d) => d.read(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn decodes_multi_member_gzip_and_records_layout() {
        let a = b"first member ".repeat(1000);
        let b = b"second".repeat(3000);
        let mut blob = gz(&a, 6);
        let first_len = blob.len() as u64;
        blob.extend(gz(&b, 1));
        blob.extend([0u8; 5]);
        let mut d = GzipDecoder::new(&blob[..]);
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert_eq!(out, [a.clone(), b.clone()].concat());
        let l = d.layout();
        assert_eq!(l.members.len(), 2);
        assert_eq!(l.members[0].plain_len, a.len() as u64);
        assert_eq!(l.members[0].body.start, 10);
        assert_eq!(l.members[0].body.end, first_len - 8);
        assert_eq!(l.members[1].header.len(), 10);
        assert_eq!(l.trailing, blob.len() as u64 - 5..blob.len() as u64);
    }

    #[test]
    fn truncated_or_corrupt_gzip_is_an_error() {
        let blob = gz(&b"data ".repeat(10000), 6);
        let mut out = Vec::new();
        assert!(
            GzipDecoder::new(&blob[..blob.len() - 3])
                .read_to_end(&mut out)
                .is_err()
        );
        let mut bad = blob.clone();
        let n = bad.len();
        bad[n - 6] ^= 1;
        out.clear();
        let e = GzipDecoder::new(&bad[..]).read_to_end(&mut out).unwrap_err();
        assert!(e.to_string().contains("CRC"), "{e}");
    }

    #[test]
    fn decodes_zstd_frames() {
        let a = b"zstd frame one ".repeat(500);
        let b = b"two".repeat(700);
        let mut blob = zstd::encode_all(&a[..], 3).unwrap();
        let first = blob.len() as u64;
        blob.extend(zstd::encode_all(&b[..], 1).unwrap());
        let mut d = ZstdDecoder::new(&blob[..]).unwrap();
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert_eq!(out, [a.clone(), b].concat());
        let l = d.layout();
        assert_eq!(l.members.len(), 2);
        assert_eq!(l.members[0].body, 0..first);
        assert_eq!(l.members[0].plain_len, a.len() as u64);
    }
}
