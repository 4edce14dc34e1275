//! Inventories (`.inv`): what a receiver's store holds — image names with their manifest
//! digests, and every plain stream (layer DiffID) with its length. Made at the receiver,
//! carried back to the sender, it lets `export --since site.inv` send only what that site
//! lacks, even when its images match no list. Format: store-format.md §7.

use std::path::Path;

use crate::bundle::BundleImage;
use crate::bundle::format;
use crate::chunk::ChunkerParams;
use crate::codec::{DecodeError, ReadIds, Reader, WriteIds, Writer};
use crate::error::{Error, IoContext, Result};
use crate::id::Digest;
use crate::store::Store;

pub const MAGIC: &[u8; 8] = b"BOOSTINV";
pub const VERSION: u32 = 1;
/// An inventory larger than this is refused (a million layers is ~40 MB).
const MAX_INVENTORY: u64 = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inventory {
    #[serde(skip)]
    pub chunker: ChunkerParams,
    pub created_unix: u64,
    pub images: Vec<BundleImage>,
    pub contents: Vec<(Digest, u64)>,
}

impl Inventory {
    /// What `store` holds now.
    pub fn of_store(store: &Store) -> Result<Inventory> {
        let images = store
            .images()?
            .into_iter()
            .map(|(name, r)| BundleImage {
                name,
                digest: r.digest,
                media_type: r.media_type,
            })
            .collect();
        let contents = store.recipes()?.into_iter().map(|(d, r)| (d, r.len)).collect();
        Ok(Inventory {
            chunker: store.params(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            images,
            contents,
        })
    }

    /// What this inventory says the store holds, in canonical form: equal for any two
    /// inventories of one state, whenever they were taken and in whatever order their
    /// lists came (`created_unix` is left out). The primary keys its bundle cache on it.
    pub fn state_digest(&self) -> blake3::Hash {
        let mut images: Vec<&BundleImage> = self.images.iter().collect();
        images.sort_by(|a, b| (&a.name, &a.digest.0).cmp(&(&b.name, &b.digest.0)));
        images.dedup();
        let mut contents: Vec<&(Digest, u64)> = self.contents.iter().collect();
        contents.sort_by_key(|(d, len)| (d.0, *len));
        contents.dedup();
        let mut w = Writer::new();
        self.chunker.write_to(&mut w);
        w.varint(images.len() as u64);
        for i in images {
            w.str(&i.name).digest(&i.digest).str(&i.media_type);
        }
        w.varint(contents.len() as u64);
        for (d, len) in contents {
            w.digest(d).varint(*len);
        }
        blake3::hash(&w.into_inner())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Writer::new();
        self.chunker.write_to(&mut body);
        body.varint(self.created_unix);
        format::write_images(&mut body, &self.images);
        body.varint(self.contents.len() as u64);
        for (d, len) in &self.contents {
            body.digest(d).varint(*len);
        }
        let body = body.into_inner();
        let mut w = Writer::new();
        w.raw(MAGIC)
            .u32_le(VERSION)
            .u32_le(0)
            .raw(blake3::hash(&body).as_bytes())
            .raw(&body);
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> std::result::Result<Inventory, DecodeError> {
        let mut r = Reader::new(data);
        if r.raw(8, "magic")? != MAGIC {
            return Err(DecodeError("not a booster inventory (bad magic)".into()));
        }
        let version = r.u32_le("version")?;
        if version != VERSION {
            return Err(DecodeError(format!(
                "inventory format version {version} is not supported (this booster reads {VERSION}); upgrade booster"
            )));
        }
        if r.u32_le("flags")? != 0 {
            return Err(DecodeError("unknown inventory flags".into()));
        }
        let sum = r.raw(32, "checksum")?;
        let body = &data[r.position()..];
        if blake3::hash(body).as_bytes() != sum {
            return Err(DecodeError("inventory is damaged (checksum mismatch)".into()));
        }
        let mut r = Reader::new(body);
        let chunker = ChunkerParams::read_from(&mut r)?;
        let created_unix = r.varint("created")?;
        let images = format::read_images(&mut r)?;
        let n = r.count(33, "content count")?;
        let mut contents = Vec::with_capacity(n);
        for _ in 0..n {
            contents.push((r.digest("content")?, r.varint("length")?));
        }
        r.expect_end("inventory")?;
        Ok(Inventory {
            chunker,
            created_unix,
            images,
            contents,
        })
    }

    pub fn read(path: &Path) -> Result<Inventory> {
        let len = std::fs::metadata(path)
            .ctx(|| format!("reading {}", path.display()))?
            .len();
        if len > MAX_INVENTORY {
            return Err(Error::format(
                path.display().to_string(),
                "too large to be an inventory",
            ));
        }
        let data = std::fs::read(path).ctx(|| format!("reading {}", path.display()))?;
        Inventory::decode(&data).map_err(|e| Error::format(format!("inventory {}", path.display()), e.0))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, self.encode()).ctx(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).ctx(|| format!("writing {}", path.display()))
    }
}

/// True when `path` starts with the inventory magic.
pub fn is_inventory(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_round_trips_and_detects_damage() {
        let inv = Inventory {
            chunker: ChunkerParams::DEFAULT,
            created_unix: 1_700_000_000,
            images: vec![BundleImage {
                name: "r/app:1".into(),
                digest: Digest::of(b"m"),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            }],
            contents: vec![(Digest::of(b"a"), 10), (Digest::of(b"b"), 20)],
        };
        let bytes = inv.encode();
        assert_eq!(Inventory::decode(&bytes).unwrap(), inv);
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 3] ^= 1;
        assert!(Inventory::decode(&bad).unwrap_err().0.contains("damaged"));
        assert!(Inventory::decode(&bytes[..20]).is_err());
    }

    #[test]
    fn one_state_has_one_digest_whenever_it_was_taken() {
        let a = Inventory {
            chunker: ChunkerParams::DEFAULT,
            created_unix: 1_700_000_000,
            images: vec![
                BundleImage {
                    name: "r/app:1".into(),
                    digest: Digest::of(b"m"),
                    media_type: "m".into(),
                },
                BundleImage {
                    name: "r/app:0".into(),
                    digest: Digest::of(b"n"),
                    media_type: "m".into(),
                },
            ],
            contents: vec![(Digest::of(b"a"), 10), (Digest::of(b"b"), 20)],
        };
        let mut later = a.clone();
        later.created_unix += 5;
        later.images.reverse();
        later.contents.reverse();
        assert_ne!(a.encode(), later.encode());
        assert_eq!(a.state_digest(), later.state_digest());
        let mut other = a.clone();
        other.contents.pop();
        assert_ne!(a.state_digest(), other.state_digest());
    }
}
