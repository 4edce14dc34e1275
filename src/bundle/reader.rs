//! Bundle reader. `open` finds the volumes, reads the trailer and index, and checks that
//! the sections tile the file; `verify` checks every section's BLAKE3 before anything is
//! used; `read` hands out one section's plain bytes (checked again, since a USB stick can
//! change under us). Every error names the section and the volume it sits in.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::format::{
    CODEC_ZSTD, DEFAULT_MAX_SECTION, HEADER_LEN, Header, IndexEntry, SECTION_HEADER_LEN, SectionHeader,
    SectionKind, TRAILER_LEN, Trailer, decode_index,
};
use crate::error::{Error, Result};

static MAX_SECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(DEFAULT_MAX_SECTION);

struct Volume {
    path: PathBuf,
    start: u64,
    len: u64,
}

pub struct BundleReader {
    display: PathBuf,
    volumes: Vec<Volume>,
    pub header: Header,
    pub index: Vec<IndexEntry>,
    total: u64,
    max_section: u64,
}

/// `x.bkp.003` → (`x.bkp`, Some(3)).
fn split_volume_name(p: &Path) -> (PathBuf, Option<u32>) {
    let s = p.to_string_lossy();
    if let Some((base, num)) = s.rsplit_once('.')
        && num.len() == 3
        && num.chars().all(|c| c.is_ascii_digit())
    {
        return (PathBuf::from(base), num.parse().ok());
    }
    (p.to_path_buf(), None)
}

fn volume_name(base: &Path, i: u32) -> PathBuf {
    PathBuf::from(format!("{}.{:03}", base.display(), i))
}

impl BundleReader {
    /// Open a bundle given as a single file, or as any of its volumes.
    pub fn open(path: &Path) -> Result<BundleReader> {
        Self::open_with_limit(path, MAX_SECTION.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Set the process-wide cap on section sizes (`--max-section-size`).
    pub fn set_max_section(n: u64) {
        MAX_SECTION.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn open_with_limit(path: &Path, max_section: u64) -> Result<BundleReader> {
        let (stripped, num) = split_volume_name(path);
        let (display, volumes) = if num.is_none() && path.is_file() {
            let len = std::fs::metadata(path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
                .len();
            let v = Volume {
                path: path.to_path_buf(),
                start: 0,
                len,
            };
            (path.to_path_buf(), vec![v])
        } else {
            let base = if num.is_some() {
                stripped
            } else {
                path.to_path_buf()
            };
            (base.clone(), Self::find_volumes(&base)?)
        };
        let total: u64 = volumes.iter().map(|v| v.len).sum();
        let mut r = BundleReader {
            display,
            volumes,
            header: Header {
                version: 0,
                bundle_id: [0; 16],
            },
            index: Vec::new(),
            total,
            max_section,
        };
        r.load()?;
        Ok(r)
    }

    /// `BASE.001`, `BASE.002`, … in order; a gap is a missing volume.
    fn find_volumes(base: &Path) -> Result<Vec<Volume>> {
        let mut volumes = Vec::new();
        let mut start = 0;
        let mut i = 1;
        while let Ok(m) = std::fs::metadata(volume_name(base, i)) {
            volumes.push(Volume {
                path: volume_name(base, i),
                start,
                len: m.len(),
            });
            start += m.len();
            i += 1;
        }
        if volumes.is_empty() {
            return Err(Error::Bundle {
                path: base.to_path_buf(),
                reason: format!(
                    "no such file, and its first volume {} is missing",
                    volume_name(base, 1).display()
                ),
            });
        }
        for j in i + 1..i + 64 {
            if volume_name(base, j).exists() {
                return Err(Error::Bundle {
                    path: volume_name(base, i),
                    reason: format!("volume {i} is missing (volume {j} is present)"),
                });
            }
        }
        Ok(volumes)
    }

    pub fn path(&self) -> &Path {
        &self.display
    }

    pub fn total_len(&self) -> u64 {
        self.total
    }

    pub fn volume_count(&self) -> usize {
        self.volumes.len()
    }

    fn fail(&self, reason: impl Into<String>) -> Error {
        Error::Bundle {
            path: self.display.clone(),
            reason: reason.into(),
        }
    }

    /// Which volume(s) hold bytes `start..end`, for messages.
    fn where_is(&self, start: u64, end: u64) -> String {
        if self.volumes.len() == 1 {
            return String::new();
        }
        let names: Vec<String> = self
            .volumes
            .iter()
            .filter(|v| v.start < end.max(start + 1) && v.start + v.len > start)
            .map(|v| {
                v.path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            })
            .collect();
        format!(" (in volume {})", names.join(", "))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let v = self
                .volumes
                .iter()
                .find(|v| at >= v.start && at < v.start + v.len)
                .ok_or_else(|| {
                    self.fail(format!("read past the end at byte {at}: the bundle is truncated"))
                })?;
            let mut f =
                File::open(&v.path).map_err(|e| Error::io(format!("opening {}", v.path.display()), e))?;
            f.seek(SeekFrom::Start(at - v.start))
                .map_err(|e| Error::io(format!("reading {}", v.path.display()), e))?;
            let n = ((v.start + v.len - at) as usize).min(buf.len() - done);
            f.read_exact(&mut buf[done..done + n])
                .map_err(|e| Error::io(format!("reading {}", v.path.display()), e))?;
            done += n;
        }
        Ok(())
    }

    fn load(&mut self) -> Result<()> {
        if self.total < (HEADER_LEN + TRAILER_LEN) as u64 {
            return Err(self.fail("too short to be a bundle: it is truncated"));
        }
        let mut h = [0u8; HEADER_LEN];
        self.read_at(0, &mut h)?;
        self.header = Header::decode(&h).map_err(|m| self.fail(m))?;
        let mut t = [0u8; TRAILER_LEN];
        self.read_at(self.total - TRAILER_LEN as u64, &mut t)?;
        let trailer = Trailer::decode(&t).map_err(|m| {
            let last = self
                .volumes
                .last()
                .map(|v| v.path.display().to_string())
                .unwrap_or_default();
            if self.volumes.len() > 1 {
                self.fail(format!("{m}; the last volume found is {last}"))
            } else {
                self.fail(m)
            }
        })?;
        if trailer.bundle_id != self.header.bundle_id {
            return Err(self.fail("its header and trailer belong to different bundles (volumes mixed up?)"));
        }
        if trailer.total_len != self.total {
            return Err(self.fail(format!(
                "its trailer says {} bytes but it has {}: truncated, a volume missing, or the trailer damaged",
                trailer.total_len, self.total
            )));
        }
        let index_end = self.total - TRAILER_LEN as u64;
        if trailer.index_offset < HEADER_LEN as u64
            || trailer.index_offset + SECTION_HEADER_LEN as u64 > index_end
        {
            return Err(self.fail("the trailer points outside the bundle"));
        }
        let (ih, body) =
            self.read_section_at(trailer.index_offset, index_end - trailer.index_offset, "index")?;
        if ih.kind != SectionKind::Index as u8 {
            return Err(self.fail("the trailer does not point at the index"));
        }
        self.index = decode_index(&body).map_err(|e| self.fail(format!("index: {e}")))?;
        // Sections must tile the bundle from the header to the index.
        let mut at = HEADER_LEN as u64;
        for (i, e) in self.index.iter().enumerate() {
            if e.offset != at || SectionKind::from_u8(e.kind).is_none() {
                return Err(self.fail(format!("index entry {i} does not follow the previous section")));
            }
            at = e
                .offset
                .checked_add(SECTION_HEADER_LEN as u64 + e.body_len)
                .ok_or_else(|| self.fail("index entry overflows"))?;
        }
        if at != trailer.index_offset {
            return Err(self.fail("the sections do not end where the index begins"));
        }
        match self.index.first() {
            Some(e) if e.kind == SectionKind::Meta as u8 => Ok(()),
            _ => Err(self.fail("the first section is not the meta section")),
        }
    }

    /// Read a section header and body at `offset`, checking its checksum; `room` bounds it.
    fn read_section_at(&self, offset: u64, room: u64, what: &str) -> Result<(SectionHeader, Vec<u8>)> {
        let mut hb = [0u8; SECTION_HEADER_LEN];
        self.read_at(offset, &mut hb)
            .map_err(|_| self.fail(format!("{what} section at byte {offset} is cut off")))?;
        let h = SectionHeader::decode(&hb).map_err(|m| {
            self.fail(format!(
                "{what} section at byte {offset} is damaged: {m}{}",
                self.where_is(offset, offset + SECTION_HEADER_LEN as u64)
            ))
        })?;
        if h.body_len > self.max_section || h.plain_len > self.max_section {
            return Err(self.fail(format!(
                "{what} section at byte {offset} claims {} bytes, more than the limit {}",
                h.body_len.max(h.plain_len),
                self.max_section
            )));
        }
        if SECTION_HEADER_LEN as u64 + h.body_len > room {
            return Err(self.fail(format!("{what} section at byte {offset} runs past its end")));
        }
        let mut body = vec![0u8; h.body_len as usize];
        let body_at = offset + SECTION_HEADER_LEN as u64;
        self.read_at(body_at, &mut body)?;
        if *blake3::hash(&body).as_bytes() != h.checksum {
            return Err(self.fail(format!(
                "{what} section at byte {offset} is damaged (checksum mismatch){}",
                self.where_is(offset, body_at + h.body_len)
            )));
        }
        Ok((h, body))
    }

    fn describe(&self, i: usize) -> String {
        let e = &self.index[i];
        let kind = SectionKind::from_u8(e.kind)
            .map(|k| k.name())
            .unwrap_or("unknown");
        format!("section {} ({kind})", i + 1)
    }

    /// Check every section against its checksum and the index. Nothing is decoded.
    pub fn verify(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        for i in 0..self.index.len() {
            self.read_raw(i)?;
            let e = &self.index[i];
            progress(e.offset + e.body_len, self.total);
        }
        Ok(())
    }

    fn read_raw(&self, i: usize) -> Result<(SectionHeader, Vec<u8>)> {
        let e = &self.index[i];
        let what = self.describe(i);
        let (h, body) = self.read_section_at(e.offset, SECTION_HEADER_LEN as u64 + e.body_len, &what)?;
        if h.kind != e.kind || h.body_len != e.body_len || h.checksum != e.checksum {
            return Err(self.fail(format!(
                "{what} does not match the index{}",
                self.where_is(e.offset, e.offset + SECTION_HEADER_LEN as u64 + e.body_len)
            )));
        }
        Ok((h, body))
    }

    /// The plain bytes of section `i`.
    pub fn read(&self, i: usize) -> Result<Vec<u8>> {
        let (h, body) = self.read_raw(i)?;
        if h.codec != CODEC_ZSTD {
            return Ok(body);
        }
        let mut out = Vec::with_capacity(h.plain_len.min(1 << 28) as usize);
        let mut dec = zstd::stream::read::Decoder::new(&body[..]).map_err(|e| Error::io("zstd", e))?;
        (&mut dec)
            .take(h.plain_len + 1)
            .read_to_end(&mut out)
            .map_err(|e| self.fail(format!("{}: cannot decompress: {e}", self.describe(i))))?;
        if out.len() as u64 != h.plain_len {
            return Err(self.fail(format!("{}: decompresses to the wrong length", self.describe(i))));
        }
        Ok(out)
    }

    pub fn kind(&self, i: usize) -> SectionKind {
        SectionKind::from_u8(self.index[i].kind).expect("checked at open")
    }

    pub fn section_name(&self, i: usize) -> String {
        self.describe(i)
    }
}
