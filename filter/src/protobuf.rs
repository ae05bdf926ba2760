//! Minimal protobuf encoding of `google.protobuf.Struct` (struct.proto), so that Envoy's
//! `%FILTER_STATE(wasm.ai_attribution:TYPED)%` renders the record as nested JSON.

use std::borrow::Cow;

/// A value of a flat Struct record.
#[derive(Debug, Clone, PartialEq)]
pub enum StructValue<'a> {
    String(Cow<'a, str>),
    Number(f64),
    Bool(bool),
}

/// How many bytes [`varint`] writes for `v`.
fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

pub(crate) fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn length_delimited(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// `google.protobuf.Value`: number_value = 2 (double), string_value = 3, bool_value = 4.
fn encode_value(value: &StructValue, out: &mut Vec<u8>) {
    match value {
        StructValue::Number(n) => {
            out.push(2 << 3 | 1);
            out.extend_from_slice(&n.to_le_bytes());
        }
        StructValue::String(s) => length_delimited(3, s.as_bytes(), out),
        StructValue::Bool(b) => {
            out.push(4 << 3);
            out.push(u8::from(*b));
        }
    }
}

fn value_len(value: &StructValue) -> usize {
    match value {
        StructValue::Number(_) => 9,
        StructValue::String(s) => 1 + varint_len(s.len() as u64) + s.len(),
        StructValue::Bool(_) => 2,
    }
}

/// Appends one entry of `google.protobuf.Struct { map<string, Value> fields = 1; }` (a map
/// entry is `{key = 1; value = 2}`), lengths computed up front so nothing is copied twice.
pub fn push_struct_field(key: &str, value: &StructValue, out: &mut Vec<u8>) {
    let value_len = value_len(value);
    let entry_len = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(value_len as u64) + value_len;
    out.reserve(1 + varint_len(entry_len as u64) + entry_len);
    varint(1 << 3 | 2, out);
    varint(entry_len as u64, out);
    length_delimited(1, key.as_bytes(), out);
    varint(2 << 3 | 2, out);
    varint(value_len as u64, out);
    encode_value(value, out);
}

/// A whole `google.protobuf.Struct` of these fields.
pub fn encode_struct<K: AsRef<str>>(fields: &[(K, StructValue)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * fields.len());
    for (key, v) in fields {
        push_struct_field(key.as_ref(), v, &mut out);
    }
    out
}

/// `DeclarePropertyArguments { name = 1; readonly = 2; type = 3 (Protobuf = 3); schema = 4;
/// span = 5 }` for a property holding a `google.protobuf.Struct` (Envoy's `declare_property`).
pub fn declare_struct_property_args(name: &str) -> Vec<u8> {
    const SCHEMA: &str = "type.googleapis.com/google.protobuf.Struct";
    let mut out = Vec::with_capacity(name.len() + SCHEMA.len() + 8);
    length_delimited(1, name.as_bytes(), &mut out);
    varint(3 << 3, &mut out);
    varint(3, &mut out);
    length_delimited(4, SCHEMA.as_bytes(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declare_property_args_encode_long_names() {
        let args = declare_struct_property_args("ai_attribution");
        assert_eq!(&args[..2], &[0x0a, 14]);
        assert_eq!(&args[16..18], &[0x18, 3]);
        assert_eq!(args[18], 0x22);
        // A name over 127 bytes takes a two-byte length instead of being truncated.
        let long = "n".repeat(200);
        assert_eq!(&declare_struct_property_args(&long)[..3], &[0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn encodes_string_entry() {
        let bytes = encode_struct(&[("a", StructValue::String("b".into()))]);
        // field 1 (entry) len 8: key "a", value { string_value "b" }
        assert_eq!(bytes, vec![0x0a, 8, 0x0a, 1, b'a', 0x12, 3, 0x1a, 1, b'b']);
    }

    #[test]
    fn encodes_number_and_bool() {
        let bytes = encode_struct(&[("n", StructValue::Number(1.0)), ("t", StructValue::Bool(true))]);
        assert_eq!(&bytes[..5], &[0x0a, 14, 0x0a, 1, b'n']);
        assert_eq!(&bytes[5..8], &[0x12, 9, 0x11]);
        assert_eq!(&bytes[8..16], &1.0f64.to_le_bytes());
        assert_eq!(&bytes[16..], &[0x0a, 7, 0x0a, 1, b't', 0x12, 2, 0x20, 1]);
    }

    #[test]
    fn long_strings_use_multibyte_lengths() {
        let s = "x".repeat(300);
        let bytes = encode_struct(&[("k", StructValue::String(s.into()))]);
        // entry = key (3) + value tag (1) + length (2) + string field (3 + 300) = 309
        assert_eq!(&bytes[..3], &[0x0a, 0xb5, 0x02]);
    }

    #[test]
    fn varint_lengths_match_what_is_written() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            varint(v, &mut out);
            assert_eq!(varint_len(v), out.len(), "{v}");
        }
    }
}
