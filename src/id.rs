//! Identifiers: `ChunkId` names a chunk by the BLAKE3-256 of its plain bytes; `Digest` is an
//! OCI content digest (sha256 of a blob, a manifest or an uncompressed layer). They are distinct
//! types so that a chunk id can never be used where a registry digest is expected.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// BLAKE3-256 of a chunk's plain bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    pub fn of(data: &[u8]) -> ChunkId {
        ChunkId(*blake3::hash(data).as_bytes())
    }

    pub fn from_slice(bytes: &[u8]) -> Option<ChunkId> {
        bytes.try_into().ok().map(ChunkId)
    }

    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", self.short())
    }
}

/// A sha256 content digest, written `sha256:<64 hex>` as in OCI. Other algorithms are refused
/// when parsed: every registry booster meets uses sha256, and a store key must be fixed-size.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(data: &[u8]) -> Digest {
        Digest(sha2::Sha256::digest(data).into())
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Digest> {
        bytes.try_into().ok().map(Digest)
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits, as `docker images` shows them.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.short())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: {reason}")]
pub struct DigestParseError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Digest, DigestParseError> {
        let err = |reason| DigestParseError {
            input: s.to_string(),
            reason,
        };
        let (algo, hex_part) = s.split_once(':').ok_or_else(|| err("expected ALGORITHM:HEX"))?;
        if algo != "sha256" {
            return Err(err("only sha256 digests are supported"));
        }
        if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err("expected 64 hex digits after sha256:"));
        }
        if hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("hex digits must be lower case"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| err("bad hex"))?;
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 that yields a `Digest`.
#[derive(Default, Clone)]
pub struct Sha256(sha2::Sha256);

impl Sha256 {
    pub fn new() -> Sha256 {
        Sha256::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_through_text() {
        let d = Digest::of(b"hello");
        let s = d.to_string();
        assert_eq!(
            s,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(s.parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn digest_parse_names_the_problem() {
        let e = "sha512:abcd".parse::<Digest>().unwrap_err();
        assert!(e.to_string().contains("only sha256"));
        assert!("sha256:xyz".parse::<Digest>().is_err());
        assert!("nocolon".parse::<Digest>().is_err());
    }
}
