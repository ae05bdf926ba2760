//! `json_scan::JsonScanner` never panics on any bytes fed in any chunks, and where the
//! chunk boundaries fall changes nothing: values, completeness, malformedness and the
//! top-level object offset are the same as when the input is fed whole.
//!
//! Input: byte 0 = max_value_bytes and mode bits, byte 1 = split seed, rest = document.
#![no_main]

use ai_attribution::json_scan::{JsonScalar, JsonScanner, MAX_PATHS};
use fuzz_support::chunks;
use libfuzzer_sys::fuzz_target;

const PATHS: &[&str] = &[
    "model",
    "stream",
    "user",
    "metadata.user_id",
    "a.b.c",
    "a.b",
    "a",
    "model",
    "",
];

fn paths() -> Vec<Vec<String>> {
    PATHS
        .iter()
        .map(|p| {
            if p.is_empty() {
                Vec::new()
            } else {
                p.split('.').map(String::from).collect()
            }
        })
        .collect()
}

#[derive(Debug, PartialEq)]
struct Outcome {
    values: Vec<Option<JsonScalar>>,
    complete: bool,
    malformed: bool,
    object_start: Option<usize>,
}

fn outcome(scanner: &JsonScanner) -> Outcome {
    Outcome {
        values: (0..PATHS.len() + 1).map(|i| scanner.value(i).cloned()).collect(),
        complete: scanner.is_complete(),
        malformed: scanner.is_malformed(),
        object_start: scanner.top_level_object_start(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (params, rest) = fuzz_support::split_first(data);
    let (seed, doc) = fuzz_support::split_first(rest);
    let max_value_bytes = match params & 0x7 {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        4 => 7,
        5 => 16,
        6 => 64,
        _ => 256,
    };
    let array_elements = params & 0x8 != 0;
    let many_paths = params & 0x10 != 0;

    let make = || {
        let mut p = paths();
        if many_paths {
            // Past MAX_PATHS, further paths never match (and must not panic).
            for i in 0..MAX_PATHS + 2 {
                p.push(vec![format!("k{i}")]);
            }
        }
        let s = JsonScanner::new(p, max_value_bytes);
        if array_elements {
            s.match_top_level_array_elements()
        } else {
            s
        }
    };

    let mut whole = make();
    whole.feed(doc);
    let expected = outcome(&whole);
    assert!(!(expected.complete && expected.malformed));
    for v in expected.values.iter().flatten() {
        match v {
            JsonScalar::String(s) | JsonScalar::Number(s) => assert!(s.len() <= max_value_bytes),
            _ => {}
        }
    }
    if let Some(start) = expected.object_start {
        assert!(start >= 1 && start <= doc.len());
        assert_eq!(doc.get(start - 1), Some(&b'{'));
    }

    let mut split = make();
    for chunk in chunks(doc, u64::from(seed) << 32 | doc.len() as u64) {
        split.feed(chunk);
    }
    assert_eq!(outcome(&split), expected, "split feeding changed the outcome");

    // Byte at a time, after a reset of a used scanner.
    split.reset();
    assert_eq!(outcome(&split).values, vec![None; PATHS.len() + 1]);
    for b in doc {
        split.feed(std::slice::from_ref(b));
    }
    assert_eq!(outcome(&split), expected, "byte-at-a-time feeding changed the outcome");
});
