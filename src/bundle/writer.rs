//! Streaming bundle writer: sections go out as they are made, each with its BLAKE3, then an
//! index and a trailer. Output goes to `PATH`, or with a split size to volumes `PATH.001`,
//! `PATH.002`, …; files are written under a `.partial` name and renamed only when the whole
//! bundle is complete, so an interrupted export never leaves something that looks finished.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::format::{
    CODEC_RAW, CODEC_ZSTD, HEADER_LEN, Header, IndexEntry, SECTION_HEADER_LEN, SectionHeader, SectionKind,
    Trailer, VERSION, encode_index,
};
use crate::error::{Error, IoContext, Result};

/// zstd level for metadata sections (recipes, manifests, blob records).
const META_ZSTD_LEVEL: i32 = 12;

struct Volumes {
    base: PathBuf,
    split: Option<u64>,
    files: Vec<PathBuf>,
    current: Option<BufWriter<File>>,
    in_current: u64,
}

impl Volumes {
    fn final_name(&self, i: usize) -> PathBuf {
        match self.split {
            Some(_) => PathBuf::from(format!("{}.{:03}", self.base.display(), i + 1)),
            None => self.base.clone(),
        }
    }

    fn partial_name(&self, i: usize) -> PathBuf {
        PathBuf::from(format!("{}.partial", self.final_name(i).display()))
    }

    fn open_next(&mut self) -> Result<()> {
        if let Some(mut f) = self.current.take() {
            f.flush().ctx(|| "writing bundle".into())?;
            f.get_ref().sync_all().ctx(|| "syncing bundle".into())?;
        }
        let i = self.files.len();
        let p = self.partial_name(i);
        let f = File::create(&p).ctx(|| format!("creating {}", p.display()))?;
        self.files.push(p);
        self.current = Some(BufWriter::with_capacity(1 << 20, f));
        self.in_current = 0;
        Ok(())
    }

    fn write_all(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            if self.current.is_none() || self.split.is_some_and(|s| self.in_current >= s) {
                self.open_next()?;
            }
            let room = match self.split {
                Some(s) => (s - self.in_current).min(data.len() as u64) as usize,
                None => data.len(),
            };
            let name = self.files.last().cloned().unwrap_or_default();
            self.current
                .as_mut()
                .expect("opened above")
                .write_all(&data[..room])
                .map_err(|e| {
                    if e.raw_os_error() == Some(libc::ENOSPC) {
                        Error::Bundle {
                            path: name.clone(),
                            reason: "no space left on the device; free space or use --split-size and another medium".into(),
                        }
                    } else {
                        Error::io(format!("writing {}", name.display()), e)
                    }
                })?;
            self.in_current += room as u64;
            data = &data[room..];
        }
        Ok(())
    }

    /// Flush, sync and rename every volume to its final name.
    fn finish(mut self) -> Result<Vec<PathBuf>> {
        if let Some(mut f) = self.current.take() {
            f.flush().ctx(|| "writing bundle".into())?;
            f.get_ref().sync_all().ctx(|| "syncing bundle".into())?;
        }
        let mut out = Vec::new();
        for (i, p) in self.files.iter().enumerate() {
            let fin = self.final_name(i);
            std::fs::rename(p, &fin).ctx(|| format!("renaming {} to {}", p.display(), fin.display()))?;
            out.push(fin);
        }
        Ok(out)
    }

    fn abandon(&mut self) {
        self.current = None;
        for p in &self.files {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub struct BundleWriter {
    volumes: Option<Volumes>,
    offset: u64,
    index: Vec<IndexEntry>,
    bundle_id: [u8; 16],
    zstd: zstd::bulk::Compressor<'static>,
}

impl BundleWriter {
    /// Start a bundle at `path` (or volumes `path.NNN` of `split` bytes each).
    pub fn create(path: &Path, split: Option<u64>) -> Result<BundleWriter> {
        BundleWriter::create_version(path, split, VERSION)
    }

    /// A bundle whose header names `version`: the oldest that can read what it will hold,
    /// so that older receivers keep reading bundles that need nothing newer.
    pub fn create_version(path: &Path, split: Option<u64>, version: u32) -> Result<BundleWriter> {
        if split.is_some_and(|s| s < (1 << 20)) {
            return Err(Error::Usage("--split-size must be at least 1M".into()));
        }
        let mut id = [0u8; 16];
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = blake3::hash(format!("{:?}{}{}", now, std::process::id(), path.display()).as_bytes());
        id.copy_from_slice(&seed.as_bytes()[..16]);
        let mut w = BundleWriter {
            volumes: Some(Volumes {
                base: path.to_path_buf(),
                split,
                files: Vec::new(),
                current: None,
                in_current: 0,
            }),
            offset: 0,
            index: Vec::new(),
            bundle_id: id,
            zstd: zstd::bulk::Compressor::new(META_ZSTD_LEVEL).map_err(|e| Error::io("zstd", e))?,
        };
        let header = Header {
            version,
            bundle_id: id,
        };
        w.write_raw(&header.encode())?;
        debug_assert_eq!(w.offset, HEADER_LEN as u64);
        Ok(w)
    }

    fn write_raw(&mut self, data: &[u8]) -> Result<()> {
        self.volumes.as_mut().expect("not finished").write_all(data)?;
        self.offset += data.len() as u64;
        Ok(())
    }

    /// Append a section. Metadata sections are zstd-compressed; payload sections hold zstd
    /// frames already and are stored as they are.
    pub fn section(&mut self, kind: SectionKind, plain: &[u8]) -> Result<u64> {
        let compress = !matches!(kind, SectionKind::Payload | SectionKind::Index);
        let (codec, body): (u8, std::borrow::Cow<[u8]>) = if compress {
            let z = self.zstd.compress(plain).map_err(|e| Error::io("zstd", e))?;
            (CODEC_ZSTD, z.into())
        } else {
            (CODEC_RAW, plain.into())
        };
        let checksum = *blake3::hash(&body).as_bytes();
        let header = SectionHeader {
            kind: kind as u8,
            codec,
            body_len: body.len() as u64,
            plain_len: plain.len() as u64,
            checksum,
        };
        let at = self.offset;
        self.write_raw(&header.encode())?;
        self.write_raw(&body)?;
        if kind != SectionKind::Index {
            self.index.push(IndexEntry {
                kind: kind as u8,
                offset: at,
                body_len: body.len() as u64,
                checksum,
            });
        }
        Ok((SECTION_HEADER_LEN + body.len()) as u64)
    }

    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Write the index and trailer and make the bundle visible under its final name(s).
    pub fn finish(mut self) -> Result<(Vec<PathBuf>, u64)> {
        let index = encode_index(&self.index);
        let index_offset = self.offset;
        self.section(SectionKind::Index, &index)?;
        let trailer = Trailer {
            index_offset,
            total_len: self.offset + super::format::TRAILER_LEN as u64,
            bundle_id: self.bundle_id,
        };
        self.write_raw(&trailer.encode())?;
        let total = self.offset;
        let files = self.volumes.take().expect("not finished").finish()?;
        Ok((files, total))
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        if let Some(v) = self.volumes.as_mut() {
            v.abandon();
        }
    }
}
