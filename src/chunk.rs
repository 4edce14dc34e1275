//! Content-defined chunking: FastCDC (2020 variant) over a stream that is pushed in pieces.
//!
//! Pure computation, no I/O: the caller pushes plain bytes as they arrive and receives each
//! chunk as a slice. Boundaries depend only on content, never on how the input was split
//! into pushes, so the same layer always cuts into the same chunks.

use fastcdc::v2020::{Normalization, cut, select_masks};

/// The chunker parameters a store is created with. Stored in the store header: a store cut
/// with other parameters would dedup nothing against this one, so opening it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
    /// FastCDC normalisation level (0..=3).
    pub normalization: u8,
}

/// Algorithm id recorded in store and bundle headers: FastCDC 2020 with the crate's default
/// gear table (seed 0).
pub const ALGORITHM_FASTCDC_2020: u8 = 1;

impl ChunkerParams {
    /// 16 KiB / 64 KiB / 256 KiB, normalisation 1: the starting point. Smaller averages
    /// dedup slightly better on package refreshes but every chunk costs a 32-byte id in every
    /// recipe and a store lookup; file-level deltas (bundle payload) recover the small edits.
    pub const DEFAULT: ChunkerParams = ChunkerParams {
        min: 16 * 1024,
        avg: 64 * 1024,
        max: 256 * 1024,
        normalization: 1,
    };

    /// A stable name, used in error messages and in golden-file names.
    pub fn name(&self) -> String {
        format!(
            "fastcdc2020-{}k-{}k-{}k-n{}",
            self.min / 1024,
            self.avg / 1024,
            self.max / 1024,
            self.normalization
        )
    }

    /// `u8 algorithm ‖ u32 min ‖ u32 avg ‖ u32 max ‖ u8 normalisation`: the same bytes in
    /// the store header, bundle meta and inventories.
    pub fn write_to(&self, w: &mut crate::codec::Writer) {
        w.u8(ALGORITHM_FASTCDC_2020)
            .u32_le(self.min)
            .u32_le(self.avg)
            .u32_le(self.max)
            .u8(self.normalization);
    }

    /// Read what `write_to` wrote; only the FastCDC 2020 algorithm is known.
    pub fn read_from(r: &mut crate::codec::Reader<'_>) -> crate::codec::DecodeResult<ChunkerParams> {
        let algo = r.u8("chunker algorithm")?;
        if algo != ALGORITHM_FASTCDC_2020 {
            return Err(crate::codec::DecodeError(format!(
                "unknown chunker algorithm {algo}"
            )));
        }
        Ok(ChunkerParams {
            min: r.u32_le("chunker min")?,
            avg: r.u32_le("chunker avg")?,
            max: r.u32_le("chunker max")?,
            normalization: r.u8("chunker normalization")?,
        })
    }

    fn normalization(&self) -> Normalization {
        match self.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        }
    }
}

/// A push-based FastCDC chunker.
pub struct Chunker {
    params: ChunkerParams,
    masks: (u64, u64, u64, u64),
    /// Bytes received but not yet emitted; always shorter than `max` after a push returns.
    pending: Vec<u8>,
}

impl Chunker {
    pub fn new(params: ChunkerParams) -> Chunker {
        let (mask_s, mask_l) = select_masks(params.avg as usize, params.normalization());
        Chunker {
            params,
            masks: (mask_s, mask_l, mask_s << 1, mask_l << 1),
            pending: Vec::with_capacity(2 * params.max as usize),
        }
    }

    /// Add bytes; `emit` is called for every chunk whose end is now known.
    pub fn push<E>(
        &mut self,
        mut data: &[u8],
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let max = self.params.max as usize;
        // Cut directly from the caller's slice when nothing is pending: avoids a copy of the
        // bulk of the stream.
        if self.pending.is_empty() {
            while data.len() >= max {
                let n = self.cut_point(data);
                emit(&data[..n])?;
                data = &data[n..];
            }
            self.pending.extend_from_slice(data);
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while self.pending.len() - start >= max {
            let n = self.cut_point(&self.pending[start..]);
            emit(&self.pending[start..start + n])?;
            start += n;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Emit the remaining chunks at end of stream.
    pub fn finish<E>(mut self, mut emit: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut start = 0;
        while start < self.pending.len() {
            let n = self.cut_point(&self.pending[start..]);
            emit(&self.pending[start..start + n])?;
            start += n;
        }
        self.pending.clear();
        Ok(())
    }

    fn cut_point(&self, data: &[u8]) -> usize {
        let p = &self.params;
        let (ms, ml, msl, mll) = self.masks;
        let (_, n) = cut(
            data,
            p.min as usize,
            p.avg as usize,
            p.max as usize,
            ms,
            ml,
            msl,
            mll,
        );
        n.max(1).min(data.len())
    }
}

/// Cut a whole buffer: convenience for tests and small inputs.
pub fn chunk_all(params: ChunkerParams, data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    let mut record = |c: &[u8]| -> Result<(), ()> {
        out.push((offset, c.len()));
        offset += c.len();
        Ok(())
    };
    let mut chunker = Chunker::new(params);
    let _ = chunker.push(data, &mut record);
    let _ = chunker.finish(&mut record);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn boundaries_do_not_depend_on_push_sizes() {
        let data = pseudo_random(3 << 20, 7);
        let whole = chunk_all(ChunkerParams::DEFAULT, &data);
        for piece in [1usize, 1000, 65536, 300_000, 1 << 20] {
            let mut got = Vec::new();
            let mut offset = 0;
            let mut chunker = Chunker::new(ChunkerParams::DEFAULT);
            let mut rec = |c: &[u8]| -> Result<(), ()> {
                got.push((offset, c.len()));
                offset += c.len();
                Ok(())
            };
            for part in data.chunks(piece) {
                chunker.push(part, &mut rec).unwrap();
            }
            chunker.finish(&mut rec).unwrap();
            assert_eq!(got, whole, "push size {piece}");
        }
        let p = ChunkerParams::DEFAULT;
        for &(_, len) in &whole[..whole.len() - 1] {
            assert!(len >= p.min as usize && len <= p.max as usize);
        }
    }

    #[test]
    fn empty_input_has_no_chunks() {
        assert!(chunk_all(ChunkerParams::DEFAULT, &[]).is_empty());
    }
}
