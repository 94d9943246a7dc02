//! A small Universal Binary JSON reader (the format of XGBoost's `save_raw()` models) into
//! `serde_json::Value`. Every length is checked against the bytes left and nesting is bounded, so
//! hostile input gives an error, never a panic or a huge allocation.

use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::integrity(format!("not a valid UBJSON model: {msg}"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| bad("it is truncated"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn int_of(&mut self, marker: u8) -> Result<i64> {
        Ok(match marker {
            b'i' => self.take(1)?[0] as i8 as i64,
            b'U' => self.take(1)?[0] as i64,
            b'I' => i16::from_be_bytes(self.take(2)?.try_into().unwrap()) as i64,
            b'l' => i32::from_be_bytes(self.take(4)?.try_into().unwrap()) as i64,
            b'L' => i64::from_be_bytes(self.take(8)?.try_into().unwrap()),
            m => return Err(bad(format!("expected an integer marker, got 0x{m:02x} at byte {}", self.at - 1))),
        })
    }

    fn length(&mut self) -> Result<usize> {
        let m = self.byte()?;
        let n = self.int_of(m)?;
        let n = usize::try_from(n).map_err(|_| bad(format!("negative length {n}")))?;
        // Every element takes at least one byte: a count beyond the bytes left is a lie.
        if n > self.b.len() - self.at {
            return Err(bad(format!("a length of {n} exceeds the {} bytes left", self.b.len() - self.at)));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String> {
        let n = self.length()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| bad("a string is not UTF-8"))
    }

    fn float(v: f64) -> Value {
        Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null)
    }

    fn value_of(&mut self, marker: u8, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(bad("containers nest too deeply"));
        }
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::Number(self.int_of(marker)?.into()),
            b'd' => Self::float(f32::from_be_bytes(self.take(4)?.try_into().unwrap()) as f64),
            b'D' => Self::float(f64::from_be_bytes(self.take(8)?.try_into().unwrap())),
            b'C' => Value::String((self.byte()? as char).to_string()),
            b'S' | b'H' => Value::String(self.string()?),
            b'[' => self.container(false, depth)?,
            b'{' => self.container(true, depth)?,
            m => return Err(bad(format!("unknown marker 0x{m:02x} at byte {}", self.at - 1))),
        })
    }

    fn container(&mut self, object: bool, depth: usize) -> Result<Value> {
        let mut typed: Option<u8> = None;
        let mut count: Option<usize> = None;
        if self.b.get(self.at) == Some(&b'$') {
            self.at += 1;
            typed = Some(self.byte()?);
            if self.byte()? != b'#' {
                return Err(bad("a typed container has no count"));
            }
            count = Some(self.length()?);
        } else if self.b.get(self.at) == Some(&b'#') {
            self.at += 1;
            count = Some(self.length()?);
        }
        let mut items = Vec::new();
        let mut map = Map::new();
        let mut i = 0usize;
        loop {
            match count {
                Some(c) if i == c => break,
                None => {
                    if self.b.get(self.at) == Some(if object { &b'}' } else { &b']' }) {
                        self.at += 1;
                        break;
                    }
                }
                _ => {}
            }
            let key = if object { Some(self.string()?) } else { None };
            let marker = match typed {
                Some(t) => t,
                None => loop {
                    let m = self.byte()?;
                    if m != b'N' {
                        break m;
                    }
                },
            };
            let v = self.value_of(marker, depth + 1)?;
            match key {
                Some(k) => {
                    map.insert(k, v);
                }
                None => items.push(v),
            }
            i += 1;
        }
        Ok(if object { Value::Object(map) } else { Value::Array(items) })
    }
}

/// Decodes one UBJSON document.
pub fn parse(bytes: &[u8]) -> Result<Value> {
    let mut r = Reader { b: bytes, at: 0 };
    let m = r.byte()?;
    let v = r.value_of(m, 0)?;
    if r.at != bytes.len() {
        return Err(bad(format!("{} bytes follow the document", bytes.len() - r.at)));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_typed_and_plain_containers() {
        // {"a": [1, 2.5], "b": <typed f32 array of 2>, "s": "hi"}
        let mut b = vec![b'{'];
        b.extend([b'i', 1, b'a', b'[', b'i', 1, b'D']);
        b.extend(2.5f64.to_be_bytes());
        b.push(b']');
        b.extend([b'i', 1, b'b', b'[', b'$', b'd', b'#', b'i', 2]);
        b.extend(1.5f32.to_be_bytes());
        b.extend((-2.0f32).to_be_bytes());
        b.extend([b'i', 1, b's', b'S', b'i', 2, b'h', b'i', b'}']);
        let v = parse(&b).unwrap();
        assert_eq!(v["a"], serde_json::json!([1, 2.5]));
        assert_eq!(v["b"], serde_json::json!([1.5, -2.0]));
        assert_eq!(v["s"], "hi");
    }

    #[test]
    fn lies_about_lengths_are_errors() {
        assert!(parse(&[b'[', b'$', b'd', b'#', b'L', 0x7f, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(parse(&[b'S', b'i', 9, b'x']).is_err());
        let deep = vec![b'['; 500];
        assert!(parse(&deep).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse(&bytes);
        }
    }
}
