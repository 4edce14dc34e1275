//! Near-miss rebuilds: a deflate stream that no model reproduces exactly, rebuilt from the
//! closest model's decisions plus the decisions where the real encoder differed.
//!
//! The model's output and the original are both read as token streams (`deflate_tokens`),
//! aligned by position in the plain text. Where they agree nothing is stored; where they
//! differ the original's tokens are stored (a literal as a flag, its byte comes from the
//! plain text). The original's block structure (kind, header bits, token count) is stored
//! as it was, so the writer reproduces its bits exactly. A new encoder version that changes
//! a few decisions then costs a few bytes instead of the whole layer; a different encoder
//! costs about as much as its tokens, and loses to preflate or to carrying the blob whole.
//!
//! The corrections are one zstd frame over three varint streams (see `store-format.md`,
//! deflate model 5). Memory stays bounded: a divergent span is at most
//! `MAX_DIVERGENT_SPAN` plain bytes (beyond that the model is not near), and the rebuild
//! keeps one span of decoded model output.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use super::deflate_tokens::{Bits, BlockHeader, BlockKind, Parser, Token, Writer};
use crate::codec::{DecodeError, DecodeResult, Reader as CodecReader, Writer as CodecWriter};

/// The longest stretch of plain text where the model may disagree before it is not
/// considered near (and the longest span the rebuild buffers).
pub const MAX_DIVERGENT_SPAN: u64 = 4 << 20;

/// Why a stream is not a near miss of the model (analysis gives up on the model).
#[derive(Debug)]
pub enum NotNear {
    /// The corrections grew past the budget the caller set.
    TooManyCorrections,
    /// The model and the original disagree over too long a stretch.
    SpanTooLong,
    /// The streams cover different plain lengths, or one is not valid deflate.
    Mismatch(String),
}

/// The original's decisions relative to a model's, before compression.
#[derive(Default)]
struct Streams {
    /// Per block: kind/last, header bits, token count.
    blocks: CodecWriter,
    /// Runs: varint agreed tokens, varint divergent tokens, alternating.
    ops: CodecWriter,
    /// Divergent tokens: varint 0 for a literal, else len − 2 and then dist − 1.
    tokens: CodecWriter,
    n_blocks: u64,
}

impl Streams {
    fn size(&self) -> usize {
        self.blocks.buf.len() + self.ops.buf.len() + self.tokens.buf.len()
    }

    fn push_token(&mut self, t: Token) {
        match t {
            Token::Literal(_) => {
                self.tokens.varint(0);
            }
            Token::Match { len, dist } => {
                self.tokens.varint(len as u64 - 2).varint(dist as u64 - 1);
            }
        }
    }
}

/// Tokens of a deflate stream with their plain positions, across blocks; the original's
/// block headers are reported to `on_block` as they are met.
struct TokenStream<R> {
    parser: Parser<R>,
    in_block: bool,
    finished: bool,
}

impl<R: Read> TokenStream<R> {
    fn new(r: R) -> Self {
        TokenStream {
            parser: Parser::new(r),
            in_block: false,
            finished: false,
        }
    }

    /// The next token, opening blocks as needed (`on_block` sees each header, and the token
    /// count of the block just ended).
    fn next(&mut self, on_block: &mut dyn FnMut(BlockEvent)) -> io::Result<Option<Token>> {
        loop {
            if self.finished {
                return Ok(None);
            }
            if !self.in_block {
                match self.parser.next_block()? {
                    Some(h) => {
                        on_block(BlockEvent::Begin(h));
                        self.in_block = true;
                    }
                    None => {
                        let trailing = self.parser.trailing_bits()?;
                        on_block(BlockEvent::Trailing(trailing));
                        self.finished = true;
                        return Ok(None);
                    }
                }
            }
            match self.parser.next_token()? {
                Some(t) => return Ok(Some(t)),
                None => {
                    on_block(BlockEvent::End);
                    self.in_block = false;
                }
            }
        }
    }
}

enum BlockEvent {
    Begin(BlockHeader),
    End,
    Trailing(Bits),
}

fn kind_byte(h: &BlockHeader) -> u8 {
    let k = match h.kind {
        BlockKind::Stored => 0,
        BlockKind::Fixed => 1,
        BlockKind::Dynamic => 2,
    };
    k | (h.last as u8) << 2
}

/// Records the original's block structure as its token stream is read.
struct BlockRecorder<'a> {
    streams: &'a mut Streams,
    tokens_in_block: u64,
}

impl BlockRecorder<'_> {
    fn event(&mut self, e: BlockEvent) {
        let w = &mut self.streams.blocks;
        match e {
            BlockEvent::Begin(h) => {
                w.u8(kind_byte(&h));
                w.varint(h.bits.len as u64).raw(&h.bits.bytes);
                if h.kind == BlockKind::Stored {
                    w.varint(h.stored_len as u64);
                }
                self.streams.n_blocks += 1;
                self.tokens_in_block = 0;
            }
            BlockEvent::End => {
                w.varint(self.tokens_in_block);
            }
            BlockEvent::Trailing(bits) => {
                w.u8(0xff).varint(bits.len as u64).raw(&bits.bytes);
            }
        }
    }
}

/// Compares the original deflate stream with the model's output for the same plain text
/// and returns the corrections that turn the second into the first, or why the model is
/// not near. `budget` bounds the corrections before compression.
pub fn diff(original: impl Read, model: impl Read, budget: usize) -> Result<Vec<u8>, NotNear> {
    let io_err = |e: io::Error| NotNear::Mismatch(e.to_string());
    let mut streams = Streams::default();
    let mut orig = TokenStream::new(original);
    let mut modl = TokenStream::new(model);
    let mut ignore = |_e: BlockEvent| {};
    let (mut po, mut pm) = (0u64, 0u64);
    let mut agree = 0u64;
    let mut rec = BlockRecorder {
        streams: &mut streams,
        tokens_in_block: 0,
    };
    let mut o = orig.next(&mut |e| rec.event(e)).map_err(io_err)?;
    let mut m = modl.next(&mut ignore).map_err(io_err)?;
    loop {
        match (o, m) {
            (None, None) => break,
            (Some(a), Some(b)) if a == b && po == pm => {
                agree += 1;
                rec.tokens_in_block += 1;
                po += a.plain_len() as u64;
                pm += b.plain_len() as u64;
                o = orig.next(&mut |e| rec.event(e)).map_err(io_err)?;
                m = modl.next(&mut ignore).map_err(io_err)?;
            }
            (None, Some(_)) | (Some(_), None) if po == pm => {
                return Err(NotNear::Mismatch("the streams end at different places".into()));
            }
            _ => {
                // Diverge: take original tokens until both streams are at the same position
                // with the same next token (or both end).
                rec.streams.ops.varint(agree);
                agree = 0;
                let start = po;
                let mut n = 0u64;
                loop {
                    let Some(a) = o else {
                        return Err(NotNear::Mismatch("the original ends inside a divergence".into()));
                    };
                    rec.streams.push_token(a);
                    rec.tokens_in_block += 1;
                    n += 1;
                    po += a.plain_len() as u64;
                    o = orig.next(&mut |e| rec.event(e)).map_err(io_err)?;
                    while pm < po {
                        let Some(b) = m else {
                            return Err(NotNear::Mismatch("the model ends early".into()));
                        };
                        pm += b.plain_len() as u64;
                        m = modl.next(&mut ignore).map_err(io_err)?;
                    }
                    if po - start > MAX_DIVERGENT_SPAN {
                        return Err(NotNear::SpanTooLong);
                    }
                    if pm == po && (o == m) {
                        break;
                    }
                }
                rec.streams.ops.varint(n);
                if rec.streams.size() > budget {
                    return Err(NotNear::TooManyCorrections);
                }
            }
        }
    }
    rec.streams.ops.varint(agree);
    let mut all = CodecWriter::new();
    all.u8(CORRECTIONS_VERSION)
        .varint(streams.n_blocks)
        .bytes(&streams.blocks.buf)
        .bytes(&streams.ops.buf)
        .bytes(&streams.tokens.buf);
    zstd::bulk::compress(&all.buf, 19).map_err(|e| NotNear::Mismatch(e.to_string()))
}

/// Version byte at the start of the (decompressed) corrections.
const CORRECTIONS_VERSION: u8 = 1;
/// Corrections decompress to at most this (a record never claims more).
const MAX_CORRECTIONS_PLAIN: usize = 256 << 20;

struct Decoded {
    n_blocks: u64,
    blocks: Vec<u8>,
    ops: Vec<u8>,
    tokens: Vec<u8>,
}

fn decode_corrections(corrections: &[u8]) -> DecodeResult<Decoded> {
    // Streamed, so a forged size costs only what the frame really holds.
    let mut plain = Vec::new();
    zstd::stream::read::Decoder::new(corrections)
        .and_then(|d| d.take(MAX_CORRECTIONS_PLAIN as u64 + 1).read_to_end(&mut plain))
        .map_err(|e| DecodeError(format!("near-miss corrections do not decompress: {e}")))?;
    if plain.len() > MAX_CORRECTIONS_PLAIN {
        return Err(DecodeError("near-miss corrections too large".into()));
    }
    let mut r = CodecReader::new(&plain);
    let v = r.u8("corrections version")?;
    if v != CORRECTIONS_VERSION {
        return Err(DecodeError(format!(
            "near-miss corrections version {v} is unknown"
        )));
    }
    let n_blocks = r.varint("block count")?;
    let blocks = r.bytes("block structure")?.to_vec();
    let ops = r.bytes("token runs")?.to_vec();
    let tokens = r.bytes("divergent tokens")?.to_vec();
    Ok(Decoded {
        n_blocks,
        blocks,
        ops,
        tokens,
    })
}

fn invalid(e: DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.0)
}

/// The model's tokens with the plain text they decode to, kept from the oldest position
/// the original may still need (a literal's byte) onwards.
struct ModelSide<R> {
    tokens: TokenStream<R>,
    /// Plain bytes decoded so far: the last 32 KiB before `base` (for matches) and
    /// everything from `base` on.
    window: VecDeque<u8>,
    /// Plain position of `window[history]` where `history` = bytes kept before `base`.
    base: u64,
    history: usize,
    /// Plain position the model has reached.
    pos: u64,
    next: Option<Token>,
}

const HISTORY: usize = 32 << 10;

impl<R: Read> ModelSide<R> {
    fn new(r: R) -> io::Result<Self> {
        let mut tokens = TokenStream::new(r);
        let next = tokens.next(&mut |_| {})?;
        Ok(ModelSide {
            tokens,
            window: VecDeque::new(),
            base: 0,
            history: 0,
            pos: 0,
            next,
        })
    }

    /// Takes the model's next token, decoding its plain bytes.
    fn take(&mut self) -> io::Result<Token> {
        let t = self
            .next
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the model's output ends early"))?;
        match t {
            Token::Literal(b) => self.window.push_back(b),
            Token::Match { len, dist } => {
                let dist = dist as usize;
                if dist > self.window.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "model match before the start",
                    ));
                }
                for _ in 0..len {
                    let b = self.window[self.window.len() - dist];
                    self.window.push_back(b);
                }
            }
        }
        self.pos += t.plain_len() as u64;
        self.next = self.tokens.next(&mut |_| {})?;
        Ok(t)
    }

    /// The plain byte at `at` (≥ base, < pos).
    fn byte_at(&self, at: u64) -> u8 {
        self.window[self.history + (at - self.base) as usize]
    }

    /// Forgets plain bytes before `pos`, keeping 32 KiB of history.
    fn advance_base(&mut self, pos: u64) {
        let drop_to = (pos - self.base) as usize + self.history;
        let keep_from = drop_to.saturating_sub(HISTORY);
        self.window.drain(..keep_from);
        self.history = drop_to - keep_from;
        self.base = pos;
    }
}

/// Produces the original's tokens from the model's and the corrections.
struct Replayer<'a, R> {
    side: ModelSide<R>,
    ops: CodecReader<'a>,
    divergent: CodecReader<'a>,
    /// Plain position of the original.
    po: u64,
    agree_left: u64,
    div_left: u64,
    /// The next run to read is a divergent one.
    divergent_next: bool,
}

fn out_of_step(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("near-miss corrections out of step: {what}"),
    )
}

impl<R: Read> Replayer<'_, R> {
    fn next_token(&mut self) -> io::Result<Token> {
        loop {
            if self.agree_left > 0 {
                self.agree_left -= 1;
                if self.side.pos != self.po {
                    return Err(out_of_step("an agreed token where the model is elsewhere"));
                }
                let t = self.side.take()?;
                self.po += t.plain_len() as u64;
                self.side.advance_base(self.po);
                return Ok(t);
            }
            if self.div_left > 0 {
                self.div_left -= 1;
                let t = self.divergent_token()?;
                self.po += t.plain_len() as u64;
                if self.po - self.side.base > MAX_DIVERGENT_SPAN {
                    return Err(out_of_step("a divergent span too long"));
                }
                if self.div_left == 0 {
                    // The run ends where the model is back in step.
                    while self.side.pos < self.po {
                        self.side.take()?;
                    }
                    if self.side.pos != self.po {
                        return Err(out_of_step("a run that ends inside a model token"));
                    }
                    self.side.advance_base(self.po);
                }
                return Ok(t);
            }
            if self.divergent_next {
                self.div_left = self.ops.varint("divergent run").map_err(invalid)?;
            } else {
                self.agree_left = self.ops.varint("agreed run").map_err(invalid)?;
            }
            self.divergent_next = !self.divergent_next;
        }
    }

    fn divergent_token(&mut self) -> io::Result<Token> {
        match self.divergent.varint("divergent token").map_err(invalid)? {
            0 => {
                // A literal: its byte is the plain text's, which the model decodes.
                while self.side.pos <= self.po {
                    self.side.take()?;
                }
                Ok(Token::Literal(self.side.byte_at(self.po)))
            }
            l => {
                let dist = self.divergent.varint("divergent distance").map_err(invalid)? + 1;
                let len = l + 2;
                if !(3..=258).contains(&len) || dist > 32768 || dist > self.po {
                    return Err(out_of_step("a match out of range"));
                }
                Ok(Token::Match {
                    len: len as u16,
                    dist: dist as u16,
                })
            }
        }
    }
}

fn read_block_header(blocks: &mut CodecReader) -> DecodeResult<BlockHeader> {
    let kind = blocks.u8("block kind")?;
    let nbits = blocks.len(1 << 16, "header bit count")?;
    let bytes = blocks.raw(nbits.div_ceil(8), "header bits")?.to_vec();
    Ok(BlockHeader {
        last: kind & 4 != 0,
        kind: match kind & 3 {
            0 => BlockKind::Stored,
            1 => BlockKind::Fixed,
            2 => BlockKind::Dynamic,
            k => return Err(DecodeError(format!("deflate block kind {k} is invalid"))),
        },
        bits: Bits { bytes, len: nbits },
        stored_len: if kind & 3 == 0 {
            u16::try_from(blocks.varint("stored length")?)
                .map_err(|_| DecodeError("stored block longer than 65535".into()))?
        } else {
            0
        },
    })
}

/// Rebuilds the original stream from the model's output and the corrections.
pub fn apply(model: impl Read, corrections: &[u8], out: impl Write) -> io::Result<()> {
    let d = decode_corrections(corrections).map_err(invalid)?;
    let mut blocks = CodecReader::new(&d.blocks);
    let mut r = Replayer {
        side: ModelSide::new(model)?,
        ops: CodecReader::new(&d.ops),
        divergent: CodecReader::new(&d.tokens),
        po: 0,
        agree_left: 0,
        div_left: 0,
        divergent_next: false,
    };
    let mut w = Writer::new(out);
    for _ in 0..d.n_blocks {
        let h = read_block_header(&mut blocks).map_err(invalid)?;
        w.begin_block(&h)?;
        let n = blocks.varint("block token count").map_err(invalid)?;
        for _ in 0..n {
            let t = r.next_token()?;
            w.token(t)?;
        }
        w.end_block()?;
    }
    if blocks.u8("trailing marker").map_err(invalid)? != 0xff {
        return Err(invalid(DecodeError("bad trailing marker".into())));
    }
    let nbits = blocks.len(7, "trailing bit count").map_err(invalid)?;
    let bytes = blocks
        .raw(nbits.div_ceil(8), "trailing bits")
        .map_err(invalid)?
        .to_vec();
    w.finish(&Bits { bytes, len: nbits })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpflate::{Encoder, Variant};

    fn sample(n: usize, seed: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut x = seed;
        let words: [&[u8]; 6] = [
            b"layer ",
            b"chunk\n",
            b"sha256:",
            b"\x00\x01\x02",
            b"registry ",
            b"tar",
        ];
        while v.len() < n {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            v.extend_from_slice(words[(x >> 16) as usize % 6]);
            if x % 5 == 0 {
                v.push((x >> 8) as u8);
            }
        }
        v.truncate(n);
        v
    }

    fn kp(level: i32, variant: Variant, data: &[u8]) -> Vec<u8> {
        let mut e = Encoder::with_variant(level, variant).unwrap();
        let mut out = Vec::new();
        e.write(data, &mut out);
        e.finish(&mut out);
        out
    }

    fn zlib(level: u32, data: &[u8]) -> Vec<u8> {
        let mut c = flate2::Compress::new(flate2::Compression::new(level), false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, flate2::FlushCompress::Finish)
            .unwrap();
        out
    }

    fn round_trip(original: &[u8], model: &[u8]) -> usize {
        let c = diff(original, model, usize::MAX).unwrap_or_else(|e| panic!("{e:?}"));
        let mut out = Vec::new();
        apply(model, &c, &mut out).unwrap();
        assert!(
            out == original,
            "rebuilt {} bytes, want {}",
            out.len(),
            original.len()
        );
        c.len()
    }

    /// The same stream costs little more than its block structure.
    #[test]
    fn identical_streams_need_only_the_block_structure() {
        let data = sample(400_000, 1);
        let s = kp(5, Variant::Kp1_20, &data);
        let n = round_trip(&s, &s);
        assert!(n < 2_000, "{n} bytes of corrections for an identical stream");
    }

    /// A neighbouring version: the 1.18 model predicting 1.20 output (headers differ, tokens
    /// agree), and the 1.15 model predicting 1.18's level 9 (some matches differ).
    #[test]
    fn neighbouring_versions_cost_a_fraction_of_the_stream() {
        let data = sample(600_000, 2);
        for (level, from, to) in [
            (5, Variant::Kp1_18, Variant::Kp1_20),
            (9, Variant::Kp1_15, Variant::Kp1_18),
        ] {
            let original = kp(level, to, &data);
            let model = kp(level, from, &data);
            assert_ne!(original, model);
            let n = round_trip(&original, &model);
            assert!(
                n * 10 < original.len(),
                "level {level}: {n} bytes of corrections for a {}-byte stream",
                original.len()
            );
        }
    }

    /// Any model can stand in for any encoder; a far one just costs more.
    #[test]
    fn far_models_still_rebuild_exactly() {
        let data = sample(200_000, 3);
        for (original, model) in [
            (zlib(6, &data), kp(5, Variant::Kp1_15, &data)),
            (kp(1, Variant::Go1_27, &data), zlib(9, &data)),
            (zlib(0, &data), kp(9, Variant::Kp1_20, &data)),
        ] {
            round_trip(&original, &model);
        }
    }

    #[test]
    fn a_budget_stops_far_models_early() {
        let data = sample(200_000, 4);
        let original = zlib(6, &data);
        let model = kp(1, Variant::Kp1_15, &data);
        assert!(matches!(
            diff(&original[..], &model[..], 100),
            Err(NotNear::TooManyCorrections)
        ));
    }

    #[test]
    fn damaged_corrections_are_refused() {
        let data = sample(100_000, 5);
        let s = kp(5, Variant::Kp1_20, &data);
        let c = diff(&s[..], &s[..], usize::MAX).unwrap();
        let mut bad = c.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        let mut out = Vec::new();
        assert!(apply(&s[..], &bad, &mut out).is_err() || out != s);
        assert!(apply(&s[..], &c[..c.len() / 2], &mut Vec::new()).is_err());
    }
}
