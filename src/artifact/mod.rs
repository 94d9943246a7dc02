//! The one file format for every fitted ferrox object.
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"FERROXAF"
//! 8       4     format version, u32 little-endian
//! 12      2     kind length k, u16 little-endian
//! 14      k     kind: what the body holds ("dataset", "booster", ...), UTF-8
//! 14+k    8     body length n, u64 little-endian
//! 22+k    32    SHA-256 of kind ++ body
//! 54+k    n     body: the object, serde-encoded with postcard (compact binary)
//! ```
//!
//! Reading checks, in order: the magic, the version (a newer one is refused naming both), the lengths,
//! the hash (any changed byte of kind or body fails here, before anything is parsed), the kind, then
//! parses the body. Nothing in a file is executable.

use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The first eight bytes of every ferrox artifact.
pub const MAGIC: &[u8; 8] = b"FERROXAF";
/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

const HASH_LEN: usize = 32;

/// What an artifact's header says, once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version the file was written with.
    pub format_version: u32,
    /// What the body holds.
    pub kind: String,
    /// Body length in bytes.
    pub body_len: u64,
    /// SHA-256 of kind ++ body, lower-case hex.
    pub sha256: String,
}

fn digest(kind: &[u8], body: &[u8]) -> [u8; HASH_LEN] {
    let mut h = Sha256::new();
    h.update(kind);
    h.update(body);
    h.finalize().into()
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serialises `value` as an artifact of `kind`.
pub fn encode<T: Serialize>(kind: &str, value: &T) -> Result<Vec<u8>> {
    let body = postcard::to_stdvec(value).map_err(|e| Error::Internal(format!("cannot encode {kind}: {e}")))?;
    let kind_len = u16::try_from(kind.len()).map_err(|_| Error::Internal("artifact kind too long".into()))?;
    let mut out = Vec::with_capacity(54 + kind.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&kind_len.to_le_bytes());
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&digest(kind.as_bytes(), &body));
    out.extend_from_slice(&body);
    Ok(out)
}

/// Splits and verifies an artifact: its header, and the body once the hash matched.
pub fn verify(bytes: &[u8]) -> Result<(Header, &[u8])> {
    let bad = |what: &str| Error::integrity(format!("not a valid ferrox model: {what}"));
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad("it does not start with the ferrox magic bytes (wrong file, or corrupted)"));
    }
    let mut at = MAGIC.len();
    let mut take = |n: usize| -> Result<&[u8]> {
        let s = bytes.get(at..at + n).ok_or_else(|| bad("it is truncated"))?;
        at += n;
        Ok(s)
    };
    let version = u32::from_le_bytes(take(4)?.try_into().unwrap());
    if version > FORMAT_VERSION {
        return Err(Error::Version { found: version, supported: FORMAT_VERSION });
    }
    if version == 0 {
        return Err(bad("format version 0 does not exist"));
    }
    let kind_len = u16::from_le_bytes(take(2)?.try_into().unwrap()) as usize;
    let kind = take(kind_len)?;
    let body_len = u64::from_le_bytes(take(8)?.try_into().unwrap());
    let stored: [u8; HASH_LEN] = take(HASH_LEN)?.try_into().unwrap();
    let body = &bytes[at..];
    if body.len() as u64 != body_len {
        return Err(bad(&format!(
            "the header announces a body of {body_len} bytes but {} follow (truncated or extended)",
            body.len()
        )));
    }
    let actual = digest(kind, body);
    if actual != stored {
        return Err(Error::integrity(format!(
            "SHA-256 mismatch: the file says {} but its content hashes to {}; the file was changed or \
             corrupted after it was written",
            hex(&stored),
            hex(&actual)
        )));
    }
    let kind = std::str::from_utf8(kind).map_err(|_| bad("the kind is not UTF-8"))?.to_owned();
    Ok((Header { format_version: version, kind, body_len, sha256: hex(&stored) }, body))
}

/// Verifies an artifact and parses its body as a `kind`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], kind: &str) -> Result<T> {
    let (header, body) = verify(bytes)?;
    if header.kind != kind {
        return Err(Error::data(format!("this file holds a '{}', not a '{kind}'", header.kind)));
    }
    let (value, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|e| Error::integrity(format!("the {kind} body does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::integrity(format!("{} unexpected bytes after the {kind} body", rest.len())));
    }
    Ok(value)
}

/// Verifies an artifact and parses its body as a `kind`, followed by an optional `U` (a section
/// appended in a later release: files without it end after the `T`).
pub fn decode_with_tail<T: DeserializeOwned, U: DeserializeOwned>(bytes: &[u8], kind: &str) -> Result<(T, Option<U>)> {
    let (header, body) = verify(bytes)?;
    if header.kind != kind {
        return Err(Error::data(format!("this file holds a '{}', not a '{kind}'", header.kind)));
    }
    let (value, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|e| Error::integrity(format!("the {kind} body does not parse: {e}")))?;
    if rest.is_empty() {
        return Ok((value, None));
    }
    let (tail, rest) = postcard::take_from_bytes::<U>(rest)
        .map_err(|e| Error::integrity(format!("the section after the {kind} body does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::integrity(format!("{} unexpected bytes after the {kind} body", rest.len())));
    }
    Ok((value, Some(tail)))
}

/// Writes bytes to `path` atomically: a temporary file beside it, synced, then renamed over it.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::param(format!("'{}' is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(format!("cannot write '{}'", path.display()), e));
    }
    Ok(())
}

/// Reads a whole file.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(format!("cannot read '{}'", path.display()), e))
}

/// Saves `value` as an artifact of `kind` at `path`.
pub fn save<T: Serialize>(path: &Path, kind: &str, value: &T) -> Result<()> {
    write_file(path, &encode(kind, value)?)
}

/// Loads and verifies an artifact of `kind` from `path`.
pub fn load<T: DeserializeOwned>(path: &Path, kind: &str) -> Result<T> {
    decode(&read_file(path)?, kind)
}

/// A human-readable JSON rendering of a fitted object (for inspection, not for loading).
pub fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Internal(format!("cannot render JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Thing {
        name: String,
        values: Vec<f64>,
    }

    fn thing() -> Thing {
        Thing { name: "t".into(), values: vec![1.5, -2.0, f64::INFINITY] }
    }

    #[test]
    fn round_trip() {
        let bytes = encode("thing", &thing()).unwrap();
        assert_eq!(decode::<Thing>(&bytes, "thing").unwrap(), thing());
        let (h, _) = verify(&bytes).unwrap();
        assert_eq!(h.kind, "thing");
        assert_eq!(h.format_version, FORMAT_VERSION);
        assert_eq!(h.sha256.len(), 64);
    }

    #[test]
    fn every_changed_byte_is_caught() {
        let bytes = encode("thing", &thing()).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            let e = decode::<Thing>(&b, "thing").unwrap_err();
            assert!(matches!(e, Error::Integrity(_) | Error::Version { .. }), "byte {i}: {e}");
        }
        for cut in 0..bytes.len() {
            assert!(decode::<Thing>(&bytes[..cut], "thing").is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode::<Thing>(&longer, "thing"), Err(Error::Integrity(_))));
    }

    #[test]
    fn newer_version_names_both() {
        let mut bytes = encode("thing", &thing()).unwrap();
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let e = decode::<Thing>(&bytes, "thing").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&format!("version {}", FORMAT_VERSION + 1)) && msg.contains(&format!("up to {FORMAT_VERSION}")), "{msg}");
    }

    #[test]
    fn wrong_kind_is_named() {
        let bytes = encode("thing", &thing()).unwrap();
        let e = decode::<Thing>(&bytes, "booster").unwrap_err();
        assert!(e.to_string().contains("'thing'"), "{e}");
    }

    #[test]
    fn file_round_trip_is_atomic() {
        let dir = std::env::temp_dir().join(format!("ferrox-art-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.frx");
        save(&p, "thing", &thing()).unwrap();
        assert_eq!(load::<Thing>(&p, "thing").unwrap(), thing());
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode::<Thing>(&bytes, "thing");
        }
    }
}
