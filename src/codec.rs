//! Byte-level encoding of booster's formats: `recompress::codec` (varints, byte strings),
//! plus booster's ids.

pub use recompress::codec::{DecodeError, DecodeResult, Reader, Writer};

use crate::id::{ChunkId, Digest};

/// Writing booster's 32-byte ids.
pub trait WriteIds {
    fn digest(&mut self, d: &Digest) -> &mut Self;
    fn chunk_id(&mut self, c: &ChunkId) -> &mut Self;
}

impl WriteIds for Writer {
    fn digest(&mut self, d: &Digest) -> &mut Self {
        self.id32(&d.0)
    }

    fn chunk_id(&mut self, c: &ChunkId) -> &mut Self {
        self.id32(&c.0)
    }
}

/// Reading booster's 32-byte ids.
pub trait ReadIds {
    fn digest(&mut self, what: &str) -> DecodeResult<Digest>;
    fn chunk_id(&mut self, what: &str) -> DecodeResult<ChunkId>;
}

impl ReadIds for Reader<'_> {
    fn digest(&mut self, what: &str) -> DecodeResult<Digest> {
        self.id32(what).map(Digest)
    }

    fn chunk_id(&mut self, what: &str) -> DecodeResult<ChunkId> {
        self.id32(what).map(ChunkId)
    }
}
