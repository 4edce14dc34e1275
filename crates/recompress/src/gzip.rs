//! gzip framing (RFC 1952): header parsing and the member trailer. The deflate bodies are
//! handled elsewhere; booster records headers verbatim and recomputes trailers.

/// Fixed part of a gzip header.
pub const MAGIC: [u8; 2] = [0x1f, 0x8b];
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
/// Names and comments longer than this are refused: real ones are short, and the parser
/// must not scan unbounded input looking for a terminator.
const MAX_FIELD: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// More bytes are needed to finish the header.
    Incomplete,
    Invalid(&'static str),
}

/// The parsed fields booster cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    pub len: usize,
    pub flags: u8,
    pub mtime: u32,
    pub xfl: u8,
    pub os: u8,
}

/// The MTIME field pgzip writes for Go's zero `time.Time` (`uint32(ModTime.Unix())`), a
/// fingerprint of klauspost/pgzip.
pub const PGZIP_ZERO_MTIME: u32 = 0x886e_0900;
/// OS byte 255 ("unknown"): what Go's compress/gzip and pgzip write.
pub const OS_UNKNOWN: u8 = 255;

/// Parse a gzip member header at the start of `data`.
pub fn parse_header(data: &[u8]) -> Result<HeaderInfo, HeaderError> {
    if data.len() < 10 {
        if data.len() >= 2 && data[..2] != MAGIC {
            return Err(HeaderError::Invalid("not gzip (bad magic)"));
        }
        return Err(HeaderError::Incomplete);
    }
    if data[..2] != MAGIC {
        return Err(HeaderError::Invalid("not gzip (bad magic)"));
    }
    if data[2] != 8 {
        return Err(HeaderError::Invalid("compression method is not deflate"));
    }
    let flags = data[3];
    if flags & 0xe0 != 0 {
        return Err(HeaderError::Invalid("reserved header flags are set"));
    }
    let mtime = u32::from_le_bytes(data[4..8].try_into().unwrap());
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let xlen = data.get(pos..pos + 2).ok_or(HeaderError::Incomplete)?;
        let xlen = u16::from_le_bytes([xlen[0], xlen[1]]) as usize;
        pos += 2 + xlen;
        if data.len() < pos {
            return Err(HeaderError::Incomplete);
        }
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let rest = &data[pos..];
            match rest.iter().take(MAX_FIELD).position(|&b| b == 0) {
                Some(i) => pos += i + 1,
                None if rest.len() >= MAX_FIELD => {
                    return Err(HeaderError::Invalid("file name or comment too long"));
                }
                None => return Err(HeaderError::Incomplete),
            }
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
        if data.len() < pos {
            return Err(HeaderError::Incomplete);
        }
    }
    Ok(HeaderInfo {
        len: pos,
        flags,
        mtime,
        xfl: data[8],
        os: data[9],
    })
}

/// The 8-byte member trailer: CRC-32 and length mod 2^32 of the plain bytes.
pub fn trailer(crc: u32, plain_len: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(plain_len as u32).to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_pgzip_and_gnu_headers() {
        let go = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        let h = parse_header(&go).unwrap();
        assert_eq!((h.len, h.os, h.mtime), (10, 255, 0));
        let pgzip = [0x1f, 0x8b, 8, 0, 0, 0x09, 0x6e, 0x88, 0, 0xff];
        assert_eq!(parse_header(&pgzip).unwrap().mtime, PGZIP_ZERO_MTIME);
        let mut named = vec![0x1f, 0x8b, 8, FNAME, 1, 2, 3, 4, 0, 3];
        named.extend_from_slice(b"layer.tar\0");
        named.push(0xaa);
        assert_eq!(parse_header(&named).unwrap().len, 20);
        assert_eq!(parse_header(&named[..15]), Err(HeaderError::Incomplete));
    }

    #[test]
    fn refuses_what_is_not_gzip() {
        assert!(matches!(
            parse_header(b"PK\x03\x04xxxxxxxx"),
            Err(HeaderError::Invalid(_))
        ));
        assert!(matches!(
            parse_header(&[0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 0]),
            Err(HeaderError::Invalid(_))
        ));
    }
}
