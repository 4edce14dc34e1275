//! Reassembly: read a plain stream back from its recipe. Every byte read is proved once
//! (store-format.md 3.3): by the whole stream's sha256 at its end, by the digest of the blob
//! a caller rebuilds from it, or, for a read that starts midway or covers a range, by each
//! chunk's BLAKE3. A reader never returns damaged bytes without an error following.

use std::io::{self, Read};

use crate::error::{Error, Result};
use crate::id::{ChunkId, Digest, Sha256};
use crate::store::{Recipe, Store};

/// A `Read` over the plain stream named by `digest`.
pub struct ContentReader<'s> {
    store: &'s Store,
    digest: Digest,
    recipe: Recipe,
    next_chunk: usize,
    current: Vec<u8>,
    pos_in_current: usize,
    sha: Option<Sha256>,
    /// How each chunk is proved: by a digest over the whole read (this reader's `sha`, or
    /// the caller's, see `caller_verifies`), or one by one.
    check: ChunkCheck,
}

impl<'s> ContentReader<'s> {
    pub fn open(store: &'s Store, digest: &Digest) -> Result<ContentReader<'s>> {
        let recipe = store.recipe(digest)?.ok_or_else(|| Error::NotInStore {
            path: store.path().to_path_buf(),
            kind: "layer content",
            digest: *digest,
            hint: ": pull or import the image that has this layer",
        })?;
        Ok(ContentReader {
            store,
            digest: *digest,
            recipe,
            next_chunk: 0,
            current: Vec::new(),
            pos_in_current: 0,
            sha: Some(Sha256::new()),
            check: ChunkCheck::ByDigest,
        })
    }

    /// A reader for a caller that verifies a digest over a function of every byte it reads:
    /// a rebuilt blob's sha256 proves the content it was made from, so neither the stream's
    /// sha256 nor the chunks' BLAKE3 ids are computed here. On a mismatch the caller asks
    /// `find_damaged_chunk` which chunk to blame.
    pub fn caller_verifies(mut self) -> Self {
        self.sha = None;
        self
    }

    /// A reader that starts `offset` bytes into the stream. Chunks are still verified; the
    /// whole-stream digest cannot be (the reader never sees the first bytes).
    pub fn open_at(store: &'s Store, digest: &Digest, offset: u64) -> Result<ContentReader<'s>> {
        let mut r = ContentReader::open(store, digest)?;
        // The caller may stop before the end, where the stream digest would be checked.
        r.sha = None;
        r.check = ChunkCheck::Each;
        if offset == 0 {
            return Ok(r);
        }
        let offsets = r.recipe.offsets();
        let i = match offsets.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        r.next_chunk = i;
        if i < r.recipe.chunks.len() {
            r.refill()
                .map_err(|e| Error::io(format!("reading {digest}"), e))?;
            r.pos_in_current = (offset - offsets[i]) as usize;
        }
        Ok(r)
    }

    pub fn len(&self) -> u64 {
        self.recipe.len
    }

    pub fn is_empty(&self) -> bool {
        self.recipe.len == 0
    }

    fn fetch_next(&mut self) -> Result<Option<Vec<u8>>> {
        if self.next_chunk >= self.recipe.chunks.len() {
            return Ok(None);
        }
        let (id, len) = self.recipe.chunks[self.next_chunk];
        self.next_chunk += 1;
        read_chunk(self.store, &id, len, self.check).map(Some)
    }

    /// After a digest mismatch: the chunk whose bytes no longer hash to its id, if any.
    pub fn find_damaged_chunk(&self) -> Result<()> {
        find_damaged_chunk(self.store, &self.recipe)
    }

    fn refill(&mut self) -> io::Result<bool> {
        match self.fetch_next().map_err(io::Error::other)? {
            Some(data) => {
                if let Some(sha) = self.sha.as_mut() {
                    sha.update(&data);
                }
                self.current = data;
                self.pos_in_current = 0;
                Ok(true)
            }
            None => {
                if let Some(sha) = self.sha.take() {
                    let actual = sha.finish();
                    if actual != self.digest {
                        if let Err(damaged) = self.find_damaged_chunk() {
                            return Err(io::Error::other(damaged));
                        }
                        return Err(io::Error::other(Error::DigestMismatch {
                            what: format!("content rebuilt from the chunks of {}", self.digest),
                            expected: self.digest,
                            actual,
                        }));
                    }
                }
                Ok(false)
            }
        }
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos_in_current >= self.current.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len() - self.pos_in_current);
        buf[..n].copy_from_slice(&self.current[self.pos_in_current..self.pos_in_current + n]);
        self.pos_in_current += n;
        Ok(n)
    }
}

/// How a read proves the chunks it reads (store-format.md 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkCheck {
    /// Each chunk against its BLAKE3 id (a range, or a read that may stop early, has no
    /// digest of its own).
    Each,
    /// Not chunk by chunk: the bytes go into a stream or blob whose digest is checked before
    /// anything depends on them, so a damaged chunk still cannot pass.
    ByDigest,
}

/// Read one chunk of `len` bytes, proved as `check` says.
pub fn read_chunk(store: &Store, id: &ChunkId, len: u32, check: ChunkCheck) -> Result<Vec<u8>> {
    let data = match check {
        ChunkCheck::Each => store.get_chunk(id)?,
        ChunkCheck::ByDigest => store.get_chunk_unverified(id)?,
    };
    if data.len() != len as usize {
        return Err(Error::ChunkCorrupt {
            path: store.path().to_path_buf(),
            id: *id,
            reason: format!("recipe says {len} bytes, chunk has {}", data.len()),
        });
    }
    Ok(data)
}

/// After a digest mismatch: the first chunk of `recipe` whose bytes no longer hash to its
/// id, as an error (Ok when every chunk is intact).
pub fn find_damaged_chunk(store: &Store, recipe: &Recipe) -> Result<()> {
    for (id, _) in &recipe.chunks {
        store.get_chunk(id)?;
    }
    Ok(())
}

/// Read `len` bytes at `offset` of a stored stream, touching only the chunks that cover the
/// range.
pub fn read_range(
    store: &Store,
    recipe: &Recipe,
    offsets: &[u64],
    offset: u64,
    len: u64,
    check: ChunkCheck,
) -> Result<Vec<u8>> {
    read_range_with(
        store,
        recipe,
        offsets,
        offset,
        len,
        check,
        &mut LastChunk::default(),
    )
}

/// The last chunk a range read decoded, kept for the next read. A payload group's
/// references are often neighbouring small files: without it, each decodes the chunk the
/// previous one ended in again.
#[derive(Default)]
pub struct LastChunk(Option<(ChunkId, Vec<u8>)>);

/// `read_range`, reusing `last` when the range starts in the chunk the previous read ended
/// in. Every read through one `LastChunk` must use the same `check`.
pub fn read_range_with(
    store: &Store,
    recipe: &Recipe,
    offsets: &[u64],
    offset: u64,
    len: u64,
    check: ChunkCheck,
    last: &mut LastChunk,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len.min(64 << 20) as usize);
    if len == 0 {
        return Ok(out);
    }
    let end = offset.saturating_add(len).min(recipe.len);
    let first = match offsets.binary_search(&offset) {
        Ok(i) => i,
        Err(i) => i.saturating_sub(1),
    };
    let mut i = first;
    while i < recipe.chunks.len() && offsets[i] < end {
        let (id, clen) = recipe.chunks[i];
        if last.0.as_ref().is_none_or(|(have, _)| *have != id) {
            last.0 = Some((id, read_chunk(store, &id, clen, check)?));
        }
        let data = &last.0.as_ref().expect("just read").1;
        let cstart = offsets[i];
        let from = offset.saturating_sub(cstart) as usize;
        let to = ((end - cstart) as usize).min(data.len());
        if from < to {
            out.extend_from_slice(&data[from..to]);
        }
        i += 1;
    }
    Ok(out)
}

/// A blob's plain text in the store, as `recompress::analyze` reads it.
pub struct StoredText<'s> {
    pub store: &'s Store,
    pub content: Digest,
}

impl recompress::analyze::PlainText for StoredText<'_> {
    fn open_at(&self, offset: u64) -> io::Result<Box<dyn Read + '_>> {
        match ContentReader::open_at(self.store, &self.content, offset) {
            Ok(r) => Ok(Box::new(r)),
            Err(e) => Err(io::Error::other(e)),
        }
    }
}
