//! Byte-level encoding of the rebuild descriptions (`Method`, near-miss corrections), shared
//! with every format of booster's (store records, bundles, inventories): LEB128 varints,
//! length-prefixed byte strings and fixed 32-byte ids.
//!
//! `Reader` treats its input as untrusted: every length is checked against the bytes that
//! remain before anything is allocated, so a hostile record cannot make booster allocate more
//! than the record's own size.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

pub type DecodeResult<T> = Result<T, DecodeError>;

#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u32_le(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64_le(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn varint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// A 32-byte id (a digest, a chunk id), without a length.
    pub fn id32(&mut self, id: &[u8; 32]) -> &mut Self {
        self.raw(id)
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    fn fail<T>(&self, what: &str) -> DecodeResult<T> {
        Err(DecodeError(format!(
            "truncated or malformed {what} at byte {}",
            self.pos
        )))
    }

    pub fn raw(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        if n > self.remaining() {
            return self.fail(what);
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        Ok(self.raw(1, what)?[0])
    }

    pub fn u32_le(&mut self, what: &str) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(self.raw(4, what)?.try_into().unwrap()))
    }

    pub fn u64_le(&mut self, what: &str) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(self.raw(8, what)?.try_into().unwrap()))
    }

    pub fn varint(&mut self, what: &str) -> DecodeResult<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            if shift == 63 && b > 1 {
                return self.fail(what);
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail(what)
    }

    /// A varint that must fit in `usize` and not exceed `max`.
    pub fn len(&mut self, max: u64, what: &str) -> DecodeResult<usize> {
        let v = self.varint(what)?;
        if v > max {
            return Err(DecodeError(format!("{what} is {v}, more than the limit {max}")));
        }
        Ok(v as usize)
    }

    /// A count of items that each take at least `min_item_bytes`: checked against what
    /// remains so a forged count cannot drive a large allocation.
    pub fn count(&mut self, min_item_bytes: usize, what: &str) -> DecodeResult<usize> {
        let n = self.varint(what)?;
        if n.saturating_mul(min_item_bytes.max(1) as u64) > self.remaining() as u64 {
            return Err(DecodeError(format!(
                "{what} claims {n} items but only {} bytes remain",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    pub fn bytes(&mut self, what: &str) -> DecodeResult<&'a [u8]> {
        let n = self.len(self.remaining() as u64, what)?;
        self.raw(n, what)
    }

    pub fn string(&mut self, what: &str) -> DecodeResult<String> {
        let b = self.bytes(what)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError(format!("{what} is not UTF-8")))
    }

    /// A 32-byte id (a digest, a chunk id).
    pub fn id32(&mut self, what: &str) -> DecodeResult<[u8; 32]> {
        Ok(self.raw(32, what)?.try_into().expect("32 bytes"))
    }

    pub fn expect_end(&self, what: &str) -> DecodeResult<()> {
        if self.remaining() != 0 {
            return Err(DecodeError(format!(
                "{} unexpected bytes after {what}",
                self.remaining()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut w = Writer::new();
            w.varint(v);
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.varint("v").unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn forged_counts_are_refused_before_allocation() {
        let mut w = Writer::new();
        w.varint(u64::MAX / 2);
        let mut r = Reader::new(&w.buf);
        assert!(r.count(32, "chunks").is_err());
        let mut r = Reader::new(&[0xff; 11]);
        assert!(r.varint("v").is_err());
    }
}
