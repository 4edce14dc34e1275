//! A deflate stream as its encoder's decisions: blocks (kind, header bits as written) and
//! the tokens inside them (literals and matches), read from the compressed bytes, and
//! written back to exactly those bytes.
//!
//! This is what the near-miss rebuild works on (`replay`): a model that makes
//! almost the same decisions as the real encoder is corrected token by token, and the block
//! structure and headers of the original are kept, so the bytes come out identical.
//!
//! Owns: bit-level reading and writing of RFC 1951 streams. Pure std. Reading is streaming
//! (a block's tokens are pulled one at a time); memory is bounded by one block header.

use std::io::{self, Read, Write};

/// One decision of a deflate encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Token {
    Literal(u8),
    /// `len` 3..=258, `dist` 1..=32768.
    Match {
        len: u16,
        dist: u16,
    },
}

impl Token {
    /// Plain bytes the token covers.
    pub fn plain_len(self) -> usize {
        match self {
            Token::Literal(_) => 1,
            Token::Match { len, .. } => len as usize,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Stored,
    Fixed,
    Dynamic,
}

/// A block header as it was written, enough to write it again bit for bit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub last: bool,
    pub kind: BlockKind,
    /// Dynamic: every header bit after BFINAL and BTYPE (HLIT, HDIST, HCLEN, the code
    /// length codes and the code lengths), LSB first. Stored: the padding bits up to the
    /// byte boundary (their count follows from the position). Fixed: empty.
    pub bits: Bits,
    /// Stored: the byte count (LEN).
    pub stored_len: u16,
}

/// A bit string, LSB-first within each byte as deflate writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bits {
    pub bytes: Vec<u8>,
    pub len: usize,
}

impl Bits {
    fn push(&mut self, value: u32, n: u32) {
        for i in 0..n {
            if self.len % 8 == 0 {
                self.bytes.push(0);
            }
            if value >> i & 1 != 0 {
                *self.bytes.last_mut().expect("pushed above") |= 1 << (self.len % 8);
            }
            self.len += 1;
        }
    }

    fn bit(&self, i: usize) -> u32 {
        (self.bytes[i / 8] >> (i % 8) & 1) as u32
    }
}

#[derive(Debug)]
pub struct FormatError(pub String);

impl std::error::Error for FormatError {}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid deflate stream: {}", self.0)
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, FormatError(msg.into()))
}

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
    227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
    4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
];
const CODE_LENGTH_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// Length code (257..=285) of a match length.
fn length_code(len: u16) -> usize {
    if len == 258 {
        return 28;
    }
    LENGTH_BASE.partition_point(|&b| b <= len) - 1
}

fn dist_code(dist: u16) -> usize {
    DIST_BASE.partition_point(|&b| b <= dist) - 1
}

/// Canonical Huffman codes from code lengths: (reversed code, length) per symbol.
fn canonical_codes(lengths: &[u8]) -> Codes {
    let mut count = [0u16; 16];
    for &l in lengths {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for bits in 1..16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                return (0, 0);
            }
            let c = next[l as usize];
            next[l as usize] += 1;
            (reverse(c, l), l)
        })
        .collect()
}

fn reverse(code: u16, len: u8) -> u16 {
    code.reverse_bits() >> (16 - len as u32)
}

/// Table-driven decoding: one lookup of the next `max_len` bits (LSB first, as they arrive)
/// gives the symbol and its length.
struct Decoder {
    /// Indexed by the next `max_len` bits: symbol << 4 | length (0 length: no such code).
    table: Vec<u32>,
    max_len: u32,
}

impl Decoder {
    fn new(lengths: &[u8]) -> io::Result<Decoder> {
        let mut count = [0u16; 16];
        for &l in lengths {
            count[l as usize] += 1;
        }
        count[0] = 0;
        let mut left = 1i32;
        for &c in &count[1..] {
            left = (left << 1) - c as i32;
            if left < 0 {
                return Err(bad("over-subscribed Huffman code"));
            }
        }
        let max_len = (1..16).rev().find(|&l| count[l] > 0).unwrap_or(1) as u32;
        let mut table = vec![0u32; 1 << max_len];
        for (sym, &(code, len)) in canonical_codes(lengths).iter().enumerate() {
            if len == 0 {
                continue;
            }
            // Every index whose low `len` bits are the (bit-reversed) code.
            let step = 1usize << len;
            let mut i = code as usize;
            while i < table.len() {
                table[i] = (sym as u32) << 4 | len as u32;
                i += step;
            }
        }
        Ok(Decoder { table, max_len })
    }

    fn decode<R: Read>(&self, r: &mut BitReader<R>) -> io::Result<u16> {
        let bits = r.peek(self.max_len)?;
        let e = self.table[bits as usize];
        let len = e & 15;
        if len == 0 || len > r.available() {
            return Err(bad("invalid Huffman code"));
        }
        r.consume(len);
        Ok((e >> 4) as u16)
    }
}

struct BitReader<R> {
    inner: R,
    buf: Box<[u8]>,
    at: usize,
    end: usize,
    bitbuf: u64,
    bitcnt: u32,
    /// Bits consumed so far.
    pos: u64,
}

impl<R: Read> BitReader<R> {
    fn new(inner: R) -> Self {
        BitReader {
            inner,
            buf: vec![0; 1 << 16].into_boxed_slice(),
            at: 0,
            end: 0,
            bitbuf: 0,
            bitcnt: 0,
            pos: 0,
        }
    }

    /// Tops the bit buffer up to at least `n` bits if the input has them (fewer at its end).
    fn fill(&mut self, n: u32) -> io::Result<()> {
        while self.bitcnt < n {
            if self.at == self.end {
                self.end = self.inner.read(&mut self.buf)?;
                self.at = 0;
                if self.end == 0 {
                    return Ok(());
                }
            }
            while self.bitcnt <= 56 && self.at < self.end {
                self.bitbuf |= (self.buf[self.at] as u64) << self.bitcnt;
                self.at += 1;
                self.bitcnt += 8;
            }
        }
        Ok(())
    }

    /// The next `n` bits without consuming them (zeros past the end of the input).
    fn peek(&mut self, n: u32) -> io::Result<u32> {
        self.fill(n)?;
        Ok((self.bitbuf & ((1u64 << n) - 1)) as u32)
    }

    fn available(&self) -> u32 {
        self.bitcnt
    }

    fn consume(&mut self, n: u32) {
        self.bitbuf >>= n;
        self.bitcnt -= n;
        self.pos += n as u64;
    }

    fn bits(&mut self, n: u32) -> io::Result<u32> {
        if n == 0 {
            return Ok(0);
        }
        self.fill(n)?;
        if self.bitcnt < n {
            return Err(bad("truncated"));
        }
        let v = (self.bitbuf & ((1u64 << n) - 1)) as u32;
        self.consume(n);
        Ok(v)
    }
}

/// Reads a deflate stream block by block, token by token.
pub struct Parser<R> {
    r: BitReader<R>,
    state: State,
    done: bool,
}

enum State {
    BetweenBlocks,
    Stored { left: u16 },
    Coded { lit: Decoder, dist: Decoder },
}

impl<R: Read> Parser<R> {
    pub fn new(inner: R) -> Parser<R> {
        Parser {
            r: BitReader::new(inner),
            state: State::BetweenBlocks,
            done: false,
        }
    }

    /// The next block's header, or None after the last block. Call after the previous
    /// block's tokens are exhausted.
    pub fn next_block(&mut self) -> io::Result<Option<BlockHeader>> {
        if self.done {
            return Ok(None);
        }
        if !matches!(self.state, State::BetweenBlocks) {
            return Err(bad("next_block called inside a block"));
        }
        let last = self.r.bits(1)? == 1;
        let kind = self.r.bits(2)?;
        let mut bits = Bits::default();
        let mut stored_len = 0;
        let kind = match kind {
            0 => {
                let pad = ((8 - (self.r.pos % 8)) % 8) as u32;
                bits.push(self.r.bits(pad)?, pad);
                let len = self.r.bits(16)? as u16;
                let nlen = self.r.bits(16)? as u16;
                if nlen != !len {
                    return Err(bad("stored block length check failed"));
                }
                stored_len = len;
                self.state = State::Stored { left: len };
                BlockKind::Stored
            }
            1 => {
                let (lit, dist) = fixed_lengths();
                self.state = State::Coded {
                    lit: Decoder::new(&lit)?,
                    dist: Decoder::new(&dist)?,
                };
                BlockKind::Fixed
            }
            2 => {
                let (lit, dist) = self.read_dynamic_header(&mut bits)?;
                self.state = State::Coded {
                    lit: Decoder::new(&lit)?,
                    dist: Decoder::new(&dist)?,
                };
                BlockKind::Dynamic
            }
            _ => return Err(bad("reserved block type 3")),
        };
        if last {
            self.done = true;
        }
        Ok(Some(BlockHeader {
            last,
            kind,
            bits,
            stored_len,
        }))
    }

    /// The bits after the last block up to the byte boundary (normally zeros).
    pub fn trailing_bits(&mut self) -> io::Result<Bits> {
        let mut bits = Bits::default();
        let pad = ((8 - (self.r.pos % 8)) % 8) as u32;
        bits.push(self.r.bits(pad)?, pad);
        Ok(bits)
    }

    fn read_dynamic_header(&mut self, bits: &mut Bits) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let take = |r: &mut BitReader<R>, bits: &mut Bits, n: u32| -> io::Result<u32> {
            let v = r.bits(n)?;
            bits.push(v, n);
            Ok(v)
        };
        let hlit = take(&mut self.r, bits, 5)? as usize + 257;
        let hdist = take(&mut self.r, bits, 5)? as usize + 1;
        let hclen = take(&mut self.r, bits, 4)? as usize + 4;
        if hlit > 286 || hdist > 30 {
            return Err(bad("too many length or distance codes"));
        }
        let mut cl = [0u8; 19];
        for &i in &CODE_LENGTH_ORDER[..hclen] {
            cl[i] = take(&mut self.r, bits, 3)? as u8;
        }
        // Code length symbols are decoded through the reader directly, then their bits are
        // recorded by re-encoding them (canonical codes are a bijection).
        let cl_codes = canonical_codes(&cl);
        let cl_dec = Decoder::new(&cl)?;
        let mut lengths = Vec::with_capacity(hlit + hdist);
        while lengths.len() < hlit + hdist {
            let sym = cl_dec.decode(&mut self.r)? as usize;
            let (code, len) = cl_codes[sym];
            bits.push(code as u32, len as u32);
            match sym {
                0..=15 => lengths.push(sym as u8),
                16 => {
                    let prev = *lengths
                        .last()
                        .ok_or_else(|| bad("repeat with no previous length"))?;
                    let n = take(&mut self.r, bits, 2)? + 3;
                    lengths.extend(std::iter::repeat_n(prev, n as usize));
                }
                17 => {
                    let n = take(&mut self.r, bits, 3)? + 3;
                    lengths.extend(std::iter::repeat_n(0, n as usize));
                }
                _ => {
                    let n = take(&mut self.r, bits, 7)? + 11;
                    lengths.extend(std::iter::repeat_n(0, n as usize));
                }
            }
        }
        if lengths.len() != hlit + hdist {
            return Err(bad("code lengths overrun"));
        }
        let dist = lengths.split_off(hlit);
        if lengths[256] == 0 {
            return Err(bad("no end-of-block code"));
        }
        Ok((lengths, dist))
    }

    /// The next token of the current block, or None at its end.
    pub fn next_token(&mut self) -> io::Result<Option<Token>> {
        match &mut self.state {
            State::BetweenBlocks => Ok(None),
            State::Stored { left } => {
                if *left == 0 {
                    self.state = State::BetweenBlocks;
                    return Ok(None);
                }
                *left -= 1;
                Ok(Some(Token::Literal(self.r.bits(8)? as u8)))
            }
            State::Coded { lit, dist } => {
                let sym = lit.decode(&mut self.r)? as usize;
                if sym < 256 {
                    return Ok(Some(Token::Literal(sym as u8)));
                }
                if sym == 256 {
                    self.state = State::BetweenBlocks;
                    return Ok(None);
                }
                let code = sym - 257;
                if code >= 29 {
                    return Err(bad("invalid length code"));
                }
                let len = LENGTH_BASE[code] + self.r.bits(LENGTH_EXTRA[code] as u32)? as u16;
                let dsym = dist.decode(&mut self.r)? as usize;
                if dsym >= 30 {
                    return Err(bad("invalid distance code"));
                }
                let d = DIST_BASE[dsym] + self.r.bits(DIST_EXTRA[dsym] as u32)? as u16;
                Ok(Some(Token::Match { len, dist: d }))
            }
        }
    }
}

fn fixed_lengths() -> (Vec<u8>, Vec<u8>) {
    let mut lit = vec![8u8; 288];
    lit[144..256].fill(9);
    lit[256..280].fill(7);
    (lit, vec![5u8; 30])
}

/// Code lengths of a dynamic header, decoded from its recorded bits.
fn header_lengths(bits: &Bits) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut p = Parser::new(BitsReader { bits, at: 0 });
    p.read_dynamic_header(&mut Bits::default())
}

/// Reads the bits of a `Bits` as a byte stream (whole bytes; the caller reads only what is
/// there).
struct BitsReader<'a> {
    bits: &'a Bits,
    at: usize,
}

impl Read for BitsReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.bits.bytes[self.at.min(self.bits.bytes.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

/// Per symbol, its code (bit-reversed for LSB-first writing) and length.
type Codes = Vec<(u16, u8)>;

/// Writes blocks and tokens back to deflate bytes.
pub struct Writer<W> {
    out: W,
    bitbuf: u64,
    bitcnt: u32,
    /// The current coded block's literal/length and distance codes.
    codes: Option<(Codes, Codes)>,
    /// Stored bytes still expected in the current block.
    stored_left: u16,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer {
            out,
            bitbuf: 0,
            bitcnt: 0,
            codes: None,
            stored_left: 0,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    fn put(&mut self, value: u32, n: u32) -> io::Result<()> {
        self.bitbuf |= (value as u64) << self.bitcnt;
        self.bitcnt += n;
        while self.bitcnt >= 8 {
            self.buf.push(self.bitbuf as u8);
            self.bitbuf >>= 8;
            self.bitcnt -= 8;
        }
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn put_bits(&mut self, bits: &Bits) -> io::Result<()> {
        for i in 0..bits.len {
            self.put(bits.bit(i), 1)?;
        }
        Ok(())
    }

    /// Starts a block; the previous one must be ended.
    pub fn begin_block(&mut self, h: &BlockHeader) -> io::Result<()> {
        self.put(h.last as u32, 1)?;
        match h.kind {
            BlockKind::Stored => {
                self.put(0, 2)?;
                self.put_bits(&h.bits)?;
                if self.bitcnt != 0 {
                    return Err(bad("stored block padding does not reach a byte boundary"));
                }
                self.put(h.stored_len as u32, 16)?;
                self.put(!h.stored_len as u32, 16)?;
                self.stored_left = h.stored_len;
                self.codes = None;
            }
            BlockKind::Fixed => {
                self.put(1, 2)?;
                let (lit, dist) = fixed_lengths();
                self.codes = Some((canonical_codes(&lit), canonical_codes(&dist)));
            }
            BlockKind::Dynamic => {
                self.put(2, 2)?;
                self.put_bits(&h.bits)?;
                let (lit, dist) = header_lengths(&h.bits)?;
                self.codes = Some((canonical_codes(&lit), canonical_codes(&dist)));
            }
        }
        Ok(())
    }

    pub fn token(&mut self, t: Token) -> io::Result<()> {
        let Some((lit, dist)) = &self.codes else {
            let Token::Literal(b) = t else {
                return Err(bad("a match in a stored block"));
            };
            if self.stored_left == 0 {
                return Err(bad("stored block overrun"));
            }
            self.stored_left -= 1;
            return self.put(b as u32, 8);
        };
        let (code, n, extra) = match t {
            Token::Literal(b) => {
                let (c, n) = lit[b as usize];
                (c as u32, n as u32, None)
            }
            Token::Match { len, dist: d } => {
                let lc = length_code(len);
                // A dynamic header may declare fewer than 286 literal/length codes.
                let (c, n) = *lit.get(257 + lc).ok_or_else(|| bad("length code out of range"))?;
                let dc = dist_code(d);
                let (dcode, dn) = *dist.get(dc).ok_or_else(|| bad("distance code out of range"))?;
                (
                    c as u32,
                    n as u32,
                    Some((
                        (len - LENGTH_BASE[lc]) as u32,
                        LENGTH_EXTRA[lc] as u32,
                        dcode as u32,
                        dn as u32,
                        (d - DIST_BASE[dc]) as u32,
                        DIST_EXTRA[dc] as u32,
                    )),
                )
            }
        };
        if n == 0 {
            return Err(bad("symbol without a code in this block"));
        }
        self.put(code, n)?;
        if let Some((lx, lxn, dcode, dn, dx, dxn)) = extra {
            if dn == 0 {
                return Err(bad("distance without a code in this block"));
            }
            self.put(lx, lxn)?;
            self.put(dcode, dn)?;
            self.put(dx, dxn)?;
        }
        Ok(())
    }

    /// Ends the current block (its end-of-block code, for coded blocks).
    pub fn end_block(&mut self) -> io::Result<()> {
        if let Some((lit, _)) = &self.codes {
            let (c, n) = lit[256];
            self.put(c as u32, n as u32)?;
        } else if self.stored_left != 0 {
            return Err(bad("stored block ended early"));
        }
        self.codes = None;
        Ok(())
    }

    /// Writes the final padding bits and flushes everything.
    pub fn finish(mut self, trailing: &Bits) -> io::Result<W> {
        self.put_bits(trailing)?;
        if self.bitcnt != 0 {
            return Err(bad("trailing bits do not reach a byte boundary"));
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse a stream into blocks and tokens, write them back, get the same bytes.
    fn round_trip(stream: &[u8]) -> Vec<u8> {
        let mut p = Parser::new(stream);
        let mut w = Writer::new(Vec::new());
        let mut plain = Vec::new();
        while let Some(h) = p.next_block().unwrap() {
            w.begin_block(&h).unwrap();
            while let Some(t) = p.next_token().unwrap() {
                match t {
                    Token::Literal(b) => plain.push(b),
                    Token::Match { len, dist } => {
                        for _ in 0..len {
                            plain.push(plain[plain.len() - dist as usize]);
                        }
                    }
                }
                w.token(t).unwrap();
            }
            w.end_block().unwrap();
        }
        let trailing = p.trailing_bits().unwrap();
        let out = w.finish(&trailing).unwrap();
        assert_eq!(out, stream);
        plain
    }

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        let mut x = 1u32;
        while v.len() < 300_000 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let words: [&[u8]; 5] = [b"layer ", b"chunk\n", b"sha256:", b"\x00\x01\x02", b"registry "];
            v.extend_from_slice(words[(x >> 16) as usize % 5]);
            if x % 7 == 0 {
                v.push((x >> 8) as u8);
            }
        }
        v
    }

    #[test]
    fn zlib_streams_round_trip_at_every_level() {
        let data = sample();
        for level in 0..=9 {
            let mut c = flate2::Compress::new(flate2::Compression::new(level), false);
            let mut out = Vec::with_capacity(data.len() + 1024);
            c.compress_vec(&data, &mut out, flate2::FlushCompress::Finish)
                .unwrap();
            assert_eq!(round_trip(&out), data, "level {level}");
        }
    }

    #[test]
    fn klauspost_streams_with_sync_flushes_round_trip() {
        let data = sample();
        for level in [-2, 1, 5, 9] {
            let mut enc = crate::kpflate::Encoder::new(level).unwrap();
            let mut out = Vec::new();
            enc.write(&data[..100_000], &mut out);
            enc.flush(&mut out);
            enc.write(&data[100_000..], &mut out);
            enc.finish(&mut out);
            assert_eq!(round_trip(&out), data, "level {level}");
        }
    }

    #[test]
    fn damaged_streams_are_refused() {
        assert!(Parser::new(&[0xff][..]).next_block().is_err());
        // A stored block whose NLEN is wrong.
        let mut p = Parser::new(&[0x01, 0x05, 0x00, 0x00, 0x00][..]);
        assert!(p.next_block().is_err());
    }
}
