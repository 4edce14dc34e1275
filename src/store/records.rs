//! The records kept in the store, with their byte encodings (see `store-format.md`, section
//! "Records"). Each record starts with its own version byte so one kind can evolve without
//! rewriting the others.

use crate::codec::{DecodeError, DecodeResult, ReadIds, Reader, WriteIds, Writer};
use crate::id::{ChunkId, Digest};
use crate::tarindex::TarEntry;
use recompress::Method;

/// Ordered chunk list that rebuilds one plain stream (an uncompressed layer tar, or the bytes
/// of a blob carried whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub len: u64,
    pub chunks: Vec<(ChunkId, u32)>,
}

const RECIPE_V1: u8 = 1;
/// A chunk is at most 256 KiB under the default parameters; 16 MiB leaves room for any
/// parameters a future store may choose while still bounding what a record can claim.
pub const MAX_CHUNK_LEN: u64 = 16 << 20;

impl Recipe {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(RECIPE_V1).varint(self.len).varint(self.chunks.len() as u64);
        for (id, len) in &self.chunks {
            w.chunk_id(id).varint(*len as u64);
        }
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> DecodeResult<Recipe> {
        let mut r = Reader::new(data);
        let v = r.u8("recipe version")?;
        if v != RECIPE_V1 {
            return Err(DecodeError(format!("unknown recipe version {v}")));
        }
        let len = r.varint("recipe length")?;
        let n = r.count(33, "recipe chunk count")?;
        let mut chunks = Vec::with_capacity(n);
        let mut sum = 0u64;
        for _ in 0..n {
            let id = r.chunk_id("chunk id")?;
            let l = r.len(MAX_CHUNK_LEN, "chunk length")? as u32;
            if l == 0 {
                return Err(DecodeError("zero-length chunk in recipe".into()));
            }
            sum += l as u64;
            chunks.push((id, l));
        }
        r.expect_end("recipe")?;
        if sum != len {
            return Err(DecodeError(format!(
                "recipe chunks add up to {sum} bytes, header says {len}"
            )));
        }
        Ok(Recipe { len, chunks })
    }

    /// Start offset of every chunk, for range reads.
    pub fn offsets(&self) -> Vec<u64> {
        let mut at = 0;
        self.chunks
            .iter()
            .map(|(_, l)| {
                let o = at;
                at += *l as u64;
                o
            })
            .collect()
    }
}

const TARINDEX_V1: u8 = 1;

pub fn encode_tar_index(entries: &[TarEntry]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(TARINDEX_V1).varint(entries.len() as u64);
    // Offsets are increasing: store deltas to keep the index small.
    let mut prev = 0u64;
    for e in entries {
        w.u8(e.kind)
            .bytes(&e.path)
            .varint(e.offset.wrapping_sub(prev))
            .varint(e.size);
        prev = e.offset;
    }
    w.into_inner()
}

pub fn decode_tar_index(data: &[u8]) -> DecodeResult<Vec<TarEntry>> {
    let mut r = Reader::new(data);
    let v = r.u8("tar index version")?;
    if v != TARINDEX_V1 {
        return Err(DecodeError(format!("unknown tar index version {v}")));
    }
    let n = r.count(4, "tar index entry count")?;
    let mut out = Vec::with_capacity(n);
    let mut prev = 0u64;
    for _ in 0..n {
        let kind = r.u8("entry kind")?;
        let path = r.bytes("entry path")?.to_vec();
        let offset = prev.wrapping_add(r.varint("entry offset")?);
        let size = r.varint("entry size")?;
        prev = offset;
        out.push(TarEntry {
            path,
            kind,
            offset,
            size,
        });
    }
    r.expect_end("tar index")?;
    Ok(out)
}

/// What booster knows about one registry blob: the plain stream it decompresses to (by
/// digest, a recipe key) and how to rebuild its exact bytes from that stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub media_type: String,
    pub size: u64,
    /// Digest of the plain stream: the DiffID for a layer, or the blob digest itself when
    /// the blob is kept as it is (`Method::Identity`).
    pub content: Digest,
    pub method: Method,
}

const BLOB_V1: u8 = 1;

impl BlobRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(BLOB_V1)
            .str(&self.media_type)
            .varint(self.size)
            .digest(&self.content);
        self.method.encode(&mut w);
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> DecodeResult<BlobRecord> {
        let mut r = Reader::new(data);
        let v = r.u8("blob record version")?;
        if v != BLOB_V1 {
            return Err(DecodeError(format!("unknown blob record version {v}")));
        }
        let media_type = r.string("media type")?;
        let size = r.varint("blob size")?;
        let content = r.digest("content digest")?;
        let method = Method::decode(&mut r)?;
        r.expect_end("blob record")?;
        Ok(BlobRecord {
            media_type,
            size,
            content,
            method,
        })
    }
}

/// A manifest, index or config kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub media_type: String,
    pub data: Vec<u8>,
}

const DOC_V1: u8 = 1;

impl Doc {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(DOC_V1).str(&self.media_type).bytes(&self.data);
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> DecodeResult<Doc> {
        let mut r = Reader::new(data);
        let v = r.u8("document version")?;
        if v != DOC_V1 {
            return Err(DecodeError(format!("unknown document version {v}")));
        }
        let media_type = r.string("media type")?;
        let data = r.bytes("document bytes")?.to_vec();
        r.expect_end("document")?;
        Ok(Doc { media_type, data })
    }
}

/// An image name (`registry/repo:tag` or `registry/repo@digest`) and the manifest or index
/// it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub digest: Digest,
    pub media_type: String,
}

const IMAGE_V1: u8 = 1;

impl ImageRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(IMAGE_V1).digest(&self.digest).str(&self.media_type);
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> DecodeResult<ImageRecord> {
        let mut r = Reader::new(data);
        let v = r.u8("image record version")?;
        if v != IMAGE_V1 {
            return Err(DecodeError(format!("unknown image record version {v}")));
        }
        let digest = r.digest("manifest digest")?;
        let media_type = r.string("media type")?;
        r.expect_end("image record")?;
        Ok(ImageRecord { digest, media_type })
    }
}

/// Plain and stored size of a chunk, kept beside the chunk so that existence checks, stats
/// and gc never read chunk bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    pub plain_len: u32,
    pub stored_len: u32,
}

impl ChunkInfo {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.varint(self.plain_len as u64).varint(self.stored_len as u64);
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> DecodeResult<ChunkInfo> {
        let mut r = Reader::new(data);
        let plain_len = r.len(MAX_CHUNK_LEN, "chunk plain length")? as u32;
        let stored_len = r.len(MAX_CHUNK_LEN + 64, "chunk stored length")? as u32;
        r.expect_end("chunk info")?;
        Ok(ChunkInfo {
            plain_len,
            stored_len,
        })
    }
}
