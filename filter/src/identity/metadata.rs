//! Decodes Envoy's `metadata` attribute (a serialized `envoy.config.core.v3.Metadata`) far enough
//! to read one namespace of `filter_metadata` as JSON, with its types intact. This is how the
//! verified JWT payload that `jwt_authn` stores (`payload_in_metadata`) reaches the filter.
//!
//! Wire format (protobuf): `Metadata { map<string, google.protobuf.Struct> filter_metadata = 1; }`,
//! `Struct { map<string, Value> fields = 1; }`, `Value { null = 1; number = 2 (double); string = 3;
//! bool = 4; Struct struct = 5; ListValue list = 6 }`, `ListValue { repeated Value values = 1; }`.

use serde_json::{Map, Number, Value};

/// Nesting deeper than this is treated as malformed (the payload is small and flat in practice).
const MAX_DEPTH: usize = 32;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// The next `(field number, value)`, or None at the end or on malformed input.
    fn next(&mut self) -> Option<Option<(u64, Field<'a>)>> {
        if self.at >= self.bytes.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                let b: [u8; 8] = self.bytes.get(self.at..self.at.checked_add(8)?)?.try_into().ok()?;
                self.at += 8;
                Field::Fixed64(b)
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let end = self.at.checked_add(len)?;
                let b = self.bytes.get(self.at..end)?;
                self.at = end;
                Field::Bytes(b)
            }
            5 => {
                self.at = self.at.checked_add(4).filter(|&e| e <= self.bytes.len())?;
                Field::Fixed32
            }
            _ => return None,
        };
        Some(Some((key >> 3, field)))
    }
}

/// A map entry `{ key = 1 (string); value = 2 (message) }`.
fn map_entry(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let mut r = Reader::new(bytes);
    let (mut key, mut value) = ("", &[][..]);
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(b)) => key = std::str::from_utf8(b).ok()?,
            (2, Field::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Some((key, value))
}

fn decode_struct(bytes: &[u8], depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut out = Map::new();
    let mut r = Reader::new(bytes);
    while let Some((n, f)) = r.next()? {
        if let (1, Field::Bytes(entry)) = (n, f) {
            let (key, value) = map_entry(entry)?;
            out.insert(key.to_string(), decode_value(value, depth + 1)?);
        }
    }
    Some(Value::Object(out))
}

fn decode_value(bytes: &[u8], depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut r = Reader::new(bytes);
    let mut out = Value::Null;
    while let Some((n, f)) = r.next()? {
        out = match (n, f) {
            (1, Field::Varint(_)) => Value::Null,
            (2, Field::Fixed64(b)) => Number::from_f64(f64::from_le_bytes(b)).map_or(Value::Null, Value::Number),
            (3, Field::Bytes(b)) => Value::String(std::str::from_utf8(b).ok()?.to_string()),
            (4, Field::Varint(v)) => Value::Bool(v != 0),
            (5, Field::Bytes(b)) => decode_struct(b, depth + 1)?,
            (6, Field::Bytes(b)) => {
                let mut list = Vec::new();
                let mut lr = Reader::new(b);
                while let Some((ln, lf)) = lr.next()? {
                    if let (1, Field::Bytes(v)) = (ln, lf) {
                        list.push(decode_value(v, depth + 1)?);
                    }
                }
                Value::Array(list)
            }
            _ => out,
        };
    }
    Some(out)
}

/// The `filter_metadata[namespace]` Struct of a serialized `Metadata`, as JSON.
pub fn filter_metadata(metadata: &[u8], namespace: &str) -> Option<Value> {
    let mut r = Reader::new(metadata);
    while let Some((n, f)) = r.next()? {
        if let (1, Field::Bytes(entry)) = (n, f) {
            let (key, value) = map_entry(entry)?;
            if key == namespace {
                return decode_struct(value, 0);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::{encode_struct, StructValue};

    fn len_field(field: u8, bytes: &[u8], out: &mut Vec<u8>) {
        out.push(field << 3 | 2);
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }

    fn metadata(ns: &str, inner: &[u8]) -> Vec<u8> {
        let mut entry = Vec::new();
        len_field(1, ns.as_bytes(), &mut entry);
        len_field(2, inner, &mut entry);
        let mut out = Vec::new();
        len_field(1, &entry, &mut out);
        out
    }

    #[test]
    fn reads_a_nested_payload_with_types() {
        // jwt_payload = { sub: "user-123", quota: 42.0, admin: true }
        let payload = encode_struct(&[
            ("sub", StructValue::String("user-123".into())),
            ("quota", StructValue::Number(42.0)),
            ("admin", StructValue::Bool(true)),
        ]);
        let mut value = Vec::new();
        len_field(5, &payload, &mut value);
        let mut entry = Vec::new();
        len_field(1, b"jwt_payload", &mut entry);
        len_field(2, &value, &mut entry);
        let mut ns_struct = Vec::new();
        len_field(1, &entry, &mut ns_struct);
        let md = metadata("envoy.filters.http.jwt_authn", &ns_struct);
        let v = filter_metadata(&md, "envoy.filters.http.jwt_authn").unwrap();
        assert_eq!(v["jwt_payload"]["sub"], "user-123");
        assert_eq!(v["jwt_payload"]["quota"], 42.0);
        assert_eq!(v["jwt_payload"]["admin"], true);
        assert_eq!(filter_metadata(&md, "other"), None);
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        // A length past the end, a field with a reserved wire type, an entry cut short, nothing.
        for bytes in [&b"\x0a\xff\xff\xff\xff\x0f"[..], b"\x0f", b"\x0a\x05\x0a\x03ab", b""] {
            assert_eq!(filter_metadata(bytes, "x"), None, "{bytes:?}");
        }
        let mut found = 0;
        let mut seed = 0x1234_5678_u32;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            // Random bytes are almost never a namespace "x" entry; whatever comes back is bounded
            // by the input.
            if let Some(v) = filter_metadata(&bytes, "x") {
                found += 1;
                assert!(format!("{v:?}").len() <= 64 * 8, "{v:?}");
            }
        }
        assert!(found < 20, "{found} of 2000 random inputs read as metadata");
    }
}
