//! Proving a candidate: run it over the member's plain text and compare every byte it
//! produces with the original as it comes; the first differing byte rejects it.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::PlainText;
use crate::decode::Member;
use crate::error::{Error, IoContext, Result};

/// Compares produced bytes against the original as they come.
pub(super) struct Comparer {
    pub(super) expected: BufReader<io::Take<File>>,
    buf: Vec<u8>,
    /// Bytes that matched before the first difference.
    matched: u64,
}

const MISMATCH: &str = "booster: candidate output differs";

impl Write for Comparer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.resize(data.len(), 0);
        let mut got = 0;
        while got < data.len() {
            let n = self.expected.read(&mut self.buf[got..])?;
            if n == 0 {
                return Err(io::Error::other(MISMATCH));
            }
            got += n;
        }
        if let Some(at) = self.buf.iter().zip(data).position(|(a, b)| a != b) {
            self.matched += at as u64;
            return Err(io::Error::other(MISMATCH));
        }
        self.matched += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn open_range(path: &Path, start: u64, end: u64) -> Result<Comparer> {
    let mut f = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    f.seek(SeekFrom::Start(start))
        .ctx(|| format!("seeking in {}", path.display()))?;
    Ok(Comparer {
        expected: BufReader::with_capacity(1 << 20, f.take(end - start)),
        buf: Vec::new(),
        matched: 0,
    })
}

fn is_mismatch(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.to_string() == MISMATCH)
}

/// A candidate encoder run: plain bytes in, exactly `len` of them, compressed bytes out.
pub(super) type EncodeFn<'a> = dyn Fn(&mut dyn Read, u64, &mut dyn Write) -> io::Result<()> + 'a;

/// Run a candidate over the member's plain bytes: None when it reproduces the body exactly,
/// else how many of its bytes it got right before the first difference.
pub(super) fn try_member(
    text: &dyn PlainText,
    plain_offset: u64,
    m: &Member,
    blob_path: &Path,
    encode: &EncodeFn,
) -> Result<Option<u64>> {
    let mut plain = text
        .open_at(plain_offset)
        .ctx(|| format!("reading the plain text of {}", blob_path.display()))?;
    let mut cmp = open_range(blob_path, m.body.start, m.body.end)?;
    match encode(&mut plain, m.plain_len, &mut cmp) {
        Ok(()) => {
            // Every byte matched; the candidate must also have produced all of them.
            let mut rest = [0u8; 1];
            let n = cmp
                .expected
                .read(&mut rest)
                .ctx(|| format!("reading {}", blob_path.display()))?;
            Ok((n != 0).then_some(cmp.matched))
        }
        Err(e) if is_mismatch(&e) => Ok(Some(cmp.matched)),
        // Kept whole: it may carry the plain text supplier's own error.
        Err(e) => Err(Error::Io {
            what: format!("analysing {}", blob_path.display()),
            source: e,
        }),
    }
}

pub(super) fn read_range(path: &Path, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut f = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    f.seek(SeekFrom::Start(start))
        .ctx(|| format!("seeking in {}", path.display()))?;
    let mut out = vec![0u8; (end - start) as usize];
    f.read_exact(&mut out)
        .ctx(|| format!("reading {}", path.display()))?;
    Ok(out)
}
