//! Differential test of `json_scan::JsonScanner` against serde_json on valid JSON.
//!
//! For every input that serde_json accepts, the scanner (fed whole and at split points
//! derived from the input) must:
//! - end complete and not malformed, with `top_level_object_start` just past the `{`;
//! - find at each path the value of the *last occurrence* of that path in document order
//!   (the scanner's documented rule), strings unescaped, numbers as their raw text, objects
//!   and arrays as `Composite`, strings/numbers over `max_value_bytes` as `TooLong`;
//! - agree with serde_json's own lookup (`Value::get` along the path) whenever the
//!   document has no duplicate keys, and always on the canonical re-serialisation
//!   (`serde_json::to_vec`), where numbers are compared as serde_json prints them.
//!
//! With duplicate keys, serde_json keeps the last *member*; the scanner keeps the last
//! value *seen at the path*. They differ when a later duplicate of an intermediate key
//! does not contain the path: `{"metadata":{"user_id":"a"},"metadata":{}}` gives "a" for
//! the scanner, nothing for serde_json. Build with `--features strict-duplicates` to make
//! that a failure too.
#![no_main]

use ai_attribution::json_scan::{JsonScalar, JsonScanner};
use fuzz_support::{chunks, fnv1a};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use std::fmt;

const PATHS: &[&str] = &["model", "stream", "user", "metadata.user_id", "a.b.c", "a.b", "a"];

fn split_paths() -> Vec<Vec<String>> {
    PATHS.iter().map(|p| p.split('.').map(String::from).collect()).collect()
}

/// An object's members in document order, duplicates kept, values still raw text.
struct RawMembers(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawMembers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMembers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMembers, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    out.push((key, map.next_value::<Box<RawValue>>()?));
                }
                Ok(RawMembers(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The scalar the scanner reports for a raw JSON value.
fn scalar_of(raw: &str, max: usize) -> JsonScalar {
    match raw.as_bytes().first() {
        Some(b'{' | b'[') => JsonScalar::Composite,
        Some(b't') => JsonScalar::Bool(true),
        Some(b'f') => JsonScalar::Bool(false),
        Some(b'n') => JsonScalar::Null,
        Some(b'"') => match serde_json::from_str::<String>(raw) {
            Ok(s) if s.len() > max => JsonScalar::TooLong,
            Ok(s) => JsonScalar::String(s),
            Err(e) => panic!("serde_json re-parse of {raw:?}: {e}"),
        },
        _ if raw.len() > max => JsonScalar::TooLong,
        _ => JsonScalar::Number(raw.to_string()),
    }
}

/// Reference for the scanner's rule: walk the objects in document order and record, for
/// each path, the last value found there. Returns whether some object had a duplicate key.
fn walk(
    raw: &str,
    level: usize,
    live: &[usize],
    paths: &[Vec<String>],
    max: usize,
    out: &mut [Option<JsonScalar>],
) -> bool {
    let Ok(RawMembers(members)) = serde_json::from_str::<RawMembers>(raw) else {
        return false;
    };
    let mut dup = false;
    for (i, (key, _)) in members.iter().enumerate() {
        if members[..i].iter().any(|(k, _)| k == key) {
            dup = true;
        }
    }
    for (key, value) in &members {
        let here: Vec<usize> = live.iter().copied().filter(|&p| paths[p][level] == *key).collect();
        let mut deeper = Vec::new();
        for &p in &here {
            if paths[p].len() == level + 1 {
                out[p] = Some(scalar_of(value.get(), max));
            } else {
                deeper.push(p);
            }
        }
        if !deeper.is_empty() && value.get().starts_with('{') {
            dup |= walk(value.get(), level + 1, &deeper, paths, max, out);
        }
    }
    dup
}

/// What serde_json's own lookup gives at each path.
fn serde_lookup(v: &Value, paths: &[Vec<String>]) -> Vec<Option<Value>> {
    paths
        .iter()
        .map(|p| p.iter().try_fold(v, |node, key| node.as_object()?.get(key)).cloned())
        .collect()
}

/// Does the scanner's value match serde_json's? Numbers compare by value (re-parsed by
/// serde_json), or by serde_json's printed text when `canonical`.
fn agrees(got: &Option<JsonScalar>, want: &Option<Value>, max: usize, canonical: bool) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(JsonScalar::Null), Some(Value::Null)) => true,
        (Some(JsonScalar::Bool(a)), Some(Value::Bool(b))) => a == b,
        (Some(JsonScalar::Composite), Some(Value::Object(_) | Value::Array(_))) => true,
        (Some(JsonScalar::String(a)), Some(Value::String(b))) => a == b && a.len() <= max,
        (Some(JsonScalar::TooLong), Some(Value::String(b))) => b.len() > max,
        (Some(JsonScalar::Number(a)), Some(Value::Number(b))) => {
            a.len() <= max
                && if canonical {
                    *a == b.to_string()
                } else {
                    serde_json::from_str::<Value>(a).ok().as_ref() == Some(&Value::Number(b.clone()))
                }
        }
        // Only the raw text's length is known to the scanner; in canonical form it is
        // serde_json's printed text.
        (Some(JsonScalar::TooLong), Some(Value::Number(b))) => !canonical || b.to_string().len() > max,
        _ => false,
    }
}

fn scan(doc: &[u8], paths: &[Vec<String>], max: usize, seed: u64, array_elements: bool) -> JsonScanner {
    let make = || {
        let s = JsonScanner::new(paths.to_vec(), max);
        if array_elements {
            s.match_top_level_array_elements()
        } else {
            s
        }
    };
    let mut whole = make();
    whole.feed(doc);
    let mut split = make();
    for c in chunks(doc, seed) {
        split.feed(c);
    }
    let values = |s: &JsonScanner| (0..paths.len()).map(|i| s.value(i).cloned()).collect::<Vec<_>>();
    assert_eq!(values(&whole), values(&split), "split feeding changed the values");
    // A top-level number only ends at the next byte: with nothing after it, the scanner
    // cannot know it is complete.
    let open_number = doc.last().is_some_and(u8::is_ascii_digit);
    for s in [&whole, &split] {
        assert!(
            !s.is_malformed(),
            "valid JSON malformed: {:?}",
            String::from_utf8_lossy(doc)
        );
        assert!(
            s.is_complete() || open_number,
            "valid JSON not complete: {:?}",
            String::from_utf8_lossy(doc)
        );
    }
    let first = doc.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    let expected_start = first.filter(|&i| doc[i] == b'{').map(|i| i + 1);
    assert_eq!(split.top_level_object_start(), expected_start);
    assert_eq!(whole.top_level_object_start(), expected_start);
    split
}

fn check(doc: &[u8], value: &Value, max: usize, seed: u64, array_elements: bool, canonical: bool) {
    let paths = split_paths();
    let scanner = scan(doc, &paths, max, seed, array_elements);
    let got: Vec<Option<JsonScalar>> = (0..paths.len()).map(|i| scanner.value(i).cloned()).collect();

    // Reference for the scanner's rule, from the raw text in document order.
    let Ok(text) = std::str::from_utf8(doc) else {
        panic!("serde_json accepted non-UTF-8 input");
    };
    let mut reference = vec![None; paths.len()];
    let all: Vec<usize> = (0..paths.len()).collect();
    let mut duplicates = false;
    match value {
        Value::Object(_) => duplicates = walk(text, 0, &all, &paths, max, &mut reference),
        Value::Array(items) if array_elements => {
            let elements: Vec<Box<RawValue>> = serde_json::from_str(text).unwrap_or_default();
            for (raw, item) in elements.iter().zip(items) {
                if item.is_object() {
                    duplicates |= walk(raw.get(), 0, &all, &paths, max, &mut reference);
                }
            }
        }
        _ => {}
    }
    assert_eq!(
        got, reference,
        "scanner vs document-order reference on {text:?} (max {max})"
    );

    // serde_json's own lookup (a top-level array is never looked into by serde).
    if value.is_object() && (!duplicates || cfg!(feature = "strict-duplicates")) {
        let want = serde_lookup(value, &paths);
        for (i, path) in PATHS.iter().enumerate() {
            assert!(
                agrees(&got[i], &want[i], max, canonical),
                "path {path}: scanner {:?}, serde_json {:?} on {text:?} (max {max}, duplicates {duplicates})",
                got[i],
                want[i]
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let h = fnv1a(data);
    let max = match h & 7 {
        0 => 0,
        1 => 1,
        2 => 3,
        3 => 8,
        4 => 16,
        _ => 256,
    };
    let array_elements = h & 8 != 0;
    check(data, &value, max, h >> 4, array_elements, false);
    if value.is_object() || (array_elements && value.is_array()) {
        if let Ok(canonical) = serde_json::to_vec(&value) {
            check(&canonical, &value, max, h >> 8, array_elements, true);
        }
    }
});
