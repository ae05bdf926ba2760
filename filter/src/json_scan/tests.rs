//! Unit tests for the incremental JSON field picker (RFC 8259 documents).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::*;

fn paths(list: &[&str]) -> Vec<Vec<String>> {
    list.iter()
        .map(|p| p.split('.').map(str::to_string).collect())
        .collect()
}

#[derive(Debug, PartialEq)]
struct Outcome {
    values: Vec<Option<JsonScalar>>,
    complete: bool,
    malformed: bool,
    object_start: Option<usize>,
}

fn outcome(scanner: &JsonScanner, count: usize) -> Outcome {
    Outcome {
        values: (0..count).map(|i| scanner.value(i).cloned()).collect(),
        complete: scanner.is_complete(),
        malformed: scanner.is_malformed(),
        object_start: scanner.top_level_object_start(),
    }
}

fn scan(list: &[&str], doc: &[u8], max: usize) -> Outcome {
    let mut scanner = JsonScanner::new(paths(list), max);
    scanner.feed(doc);
    outcome(&scanner, list.len())
}

/// Scans `doc` whole, at every split point and one byte at a time; all must agree.
fn scan_every_split(list: &[&str], doc: &[u8], max: usize) -> Outcome {
    let whole = scan(list, doc, max);
    for split in 0..=doc.len() {
        let (head, tail) = doc.split_at(split);
        let mut scanner = JsonScanner::new(paths(list), max);
        scanner.feed(head);
        scanner.feed(tail);
        assert_eq!(outcome(&scanner, list.len()), whole, "split at {split}");
    }
    let mut scanner = JsonScanner::new(paths(list), max);
    for b in doc {
        scanner.feed(std::slice::from_ref(b));
    }
    assert_eq!(outcome(&scanner, list.len()), whole, "byte at a time");
    whole
}

fn string(s: &str) -> Option<JsonScalar> {
    Some(JsonScalar::String(s.to_string()))
}

fn number(s: &str) -> Option<JsonScalar> {
    Some(JsonScalar::Number(s.to_string()))
}

const REQUEST: &str = r#"{
  "model": "gpt-4o-mini",
  "messages": [{"role": "user", "content": "Hi \"there\" \u00e9\ud83d\ude00 caf\u00e9 ✓", "model": "inner"}],
  "stream": true,
  "stream_options": {"include_usage": true},
  "metadata": {"user_id": "u-42", "tags": ["a", {"user_id": "no"}]},
  "temperature": -1.5e-3,
  "usage": {"prompt_tokens_details": {"cached_tokens": 1024}},
  "empty": {}, "list": [], "nothing": null
}"#;

#[test]
fn picks_nested_values_at_every_split_point() {
    let out = scan_every_split(
        &[
            "model",
            "stream_options.include_usage",
            "metadata.user_id",
            "usage.prompt_tokens_details.cached_tokens",
            "temperature",
            "nothing",
            "metadata",
            "messages",
            "absent.path",
        ],
        REQUEST.as_bytes(),
        64,
    );
    assert_eq!(
        out.values,
        vec![
            string("gpt-4o-mini"),
            Some(JsonScalar::Bool(true)),
            string("u-42"),
            number("1024"),
            number("-1.5e-3"),
            Some(JsonScalar::Null),
            Some(JsonScalar::Composite),
            Some(JsonScalar::Composite),
            None,
        ]
    );
    assert!(out.complete);
    assert!(!out.malformed);
    assert_eq!(out.object_start, Some(1));
}

#[test]
fn a_key_matches_every_path_that_names_it_and_nothing_longer_or_shorter() {
    // Paths share their first names; keys that only start like a name, or are longer than any
    // name, match nothing, whether read whole or split.
    let doc = br#"{"usag":{"prompt_tokens":7},"usage_and_more":{"prompt_tokens":8},"usage":{"prompt_tokens":1,"completion_tokens":2},"model":"m"}"#;
    let out = scan_every_split(&["usage.prompt_tokens", "usage.completion_tokens", "model"], doc, 10);
    assert_eq!(out.values, vec![number("1"), number("2"), string("m")]);
}

#[test]
fn unescapes_strings_fully() {
    let doc = br#"{"s":"a\"b\\c\/d\b\f\n\r\t \u00e9 \ud83d\ude00 \u2713 x"}"#;
    let out = scan_every_split(&["s"], doc, 100);
    assert_eq!(out.values, vec![string("a\"b\\c/d\u{8}\u{c}\n\r\t é 😀 ✓ x")]);
}

#[test]
fn lone_surrogates_become_replacement_characters() {
    let doc = br#"{"a":"x\ud83dy","b":"\ude00","c":"\ud83d\ud83d\ude00","d":"\ud83d"}"#;
    let out = scan_every_split(&["a", "b", "c", "d"], doc, 100);
    assert_eq!(
        out.values,
        vec![
            string("x\u{fffd}y"),
            string("\u{fffd}"),
            string("\u{fffd}😀"),
            string("\u{fffd}")
        ]
    );
}

#[test]
fn escaped_keys_match() {
    let out = scan_every_split(&["model"], br#"{"mo\u0064el":"m"}"#, 10);
    assert_eq!(out.values, vec![string("m")]);
}

#[test]
fn raw_utf8_split_anywhere_is_kept() {
    let out = scan_every_split(&["k"], "{\"k\":\"żółć 日本 🎉\"}".as_bytes(), 100);
    assert_eq!(out.values, vec![string("żółć 日本 🎉")]);
}

#[test]
fn invalid_escape_is_malformed_and_keeps_earlier_values() {
    let out = scan_every_split(&["a", "b"], br#"{"a":1,"b":"\x"}"#, 10);
    assert!(out.malformed);
    assert!(!out.complete);
    assert_eq!(out.values, vec![number("1"), None]);
    assert!(scan(&["a"], br#"{"a":"\u12G4"}"#, 10).malformed);
}

#[test]
fn syntax_errors_are_malformed() {
    for doc in [
        &br#"{"a":}"#[..],
        br#"{"a" 1}"#,
        br#"{,}"#,
        br#"[1,]"#,
        br#"{"a":01}"#,
        br#"{"a":1.}"#,
        br#"{"a":-}"#,
        br#"{"a":1e}"#,
        br#"{"a":tru}"#,
        br#"{"a":nul1}"#,
        br#"{"a":[}"#,
        br#"{"a":1]"#,
        b"{\"a\":\"x\ny\"}",
        br#"{"a":1,}"#,
        br#"{a:1}"#,
        br#"}"#,
        b"\x00",
    ] {
        let out = scan(&["a"], doc, 10);
        assert!(out.malformed, "{}", String::from_utf8_lossy(doc));
    }
}

#[test]
fn containers_no_path_enters_are_skipped_by_their_brackets() {
    // Brackets and escaped quotes inside skipped strings do not end the skip.
    let doc =
        br#"{"messages":[{"role":"user","content":"a ] } [ { \"q\" \\ text \\\"] \\\\"},{"x":[1,{"y":"}"}]}],"model":"gpt-4o"}"#;
    let out = scan_every_split(&["model", "messages"], doc, 32);
    assert_eq!(out.values, vec![string("gpt-4o"), Some(JsonScalar::Composite)]);
    assert!(out.complete && !out.malformed);
    // The skipped container's own closing bracket must match it; the top level is read in full.
    assert!(scan(&["model"], br#"{"messages":[{"a":1}}"#, 32).malformed);
    assert!(scan(&["model"], br#"{"messages":{"a":1]}"#, 32).malformed);
    assert!(scan(&["model"], br#"{"messages":[],"model":"m",}"#, 32).malformed);
}

#[test]
fn scalars_keep_raw_number_text() {
    let doc = br#"{"a":0,"b":-0.5,"c":12.0,"d":1E+9,"e":false,"f":true,"g":null,"h":[1,2],"i":{"x":1}}"#;
    let out = scan_every_split(&["a", "b", "c", "d", "e", "f", "g", "h", "i"], doc, 10);
    assert_eq!(
        out.values,
        vec![
            number("0"),
            number("-0.5"),
            number("12.0"),
            number("1E+9"),
            Some(JsonScalar::Bool(false)),
            Some(JsonScalar::Bool(true)),
            Some(JsonScalar::Null),
            Some(JsonScalar::Composite),
            Some(JsonScalar::Composite),
        ]
    );
}

#[test]
fn long_values_become_too_long() {
    let doc = br#"{"s":"0123456789a","n":12345678901,"ok":"0123456789","k":1}"#;
    let out = scan_every_split(&["s", "n", "ok", "k"], doc, 10);
    assert_eq!(
        out.values,
        vec![
            Some(JsonScalar::TooLong),
            Some(JsonScalar::TooLong),
            string("0123456789"),
            number("1")
        ]
    );
    // The limit counts unescaped bytes: "é" is two bytes.
    let out = scan(&["s"], br#"{"s":"\u00e9\u00e9"}"#, 3);
    assert_eq!(out.values, vec![Some(JsonScalar::TooLong)]);
}

#[test]
fn values_inside_arrays_never_match() {
    let doc = br#"{"messages":[{"model":"inner"},[{"model":"deeper"}]],"x":[{"model":"no"}]}"#;
    assert_eq!(scan_every_split(&["model"], doc, 10).values, vec![None]);
    let doc = br#"{"a":[{"model":"inner"}],"model":"outer"}"#;
    assert_eq!(scan_every_split(&["model"], doc, 10).values, vec![string("outer")]);
}

#[test]
fn last_occurrence_wins_and_duplicate_paths_both_fill() {
    let doc = br#"{"model":"a","usage":{"n":1},"model":"b","usage":{"n":2}}"#;
    let out = scan_every_split(&["model", "usage.n", "model"], doc, 10);
    assert_eq!(out.values, vec![string("b"), number("2"), string("b")]);
}

#[test]
fn sibling_keys_with_shared_prefix_do_not_match() {
    let doc = br#"{"usage":{"prompt_tokens":5},"usage_x":{"prompt_tokens":7},"u":{"prompt_tokens":9}}"#;
    let out = scan_every_split(&["usage.prompt_tokens"], doc, 10);
    assert_eq!(out.values, vec![number("5")]);
}

#[test]
fn keys_match_only_in_full_whatever_their_first_bytes_and_length() {
    // Names are told apart by their length and first seven bytes first: keys that agree there
    // (or whose length differs by 256) must still be compared in full.
    let long = format!("abcdefg{}", "x".repeat(256));
    let doc = format!(r#"{{"abcdefgh1":1,"abcdefgh2":2,"ab\u0000":3,"ab":4,"abcdefg":5,"{long}":6,"abcdefg1":7}}"#);
    let out = scan_every_split(&["abcdefgh2", "ab", "abcdefg", "abcdefg1"], doc.as_bytes(), 10);
    assert_eq!(out.values, vec![number("2"), number("4"), number("5"), number("7")]);
}

#[test]
fn keys_of_63_bytes_and_more_are_still_matched_by_their_exact_length() {
    // A key's length turns it away before any name is looked at; lengths from 63 up share one
    // bit there, so names of 63, 64 and 70 bytes must still be matched only by their own keys.
    let name = |n: usize| "k".repeat(n);
    let doc = format!(
        r#"{{"{}":1,"{}":2,"{}":3,"{}":4,"{}":5}}"#,
        name(62),
        name(63),
        name(64),
        name(65),
        name(70)
    );
    let out = scan_every_split(&[&name(63), &name(70), &name(64)], doc.as_bytes(), 10);
    assert_eq!(out.values, vec![number("2"), number("5"), number("3")]);
}

#[test]
fn top_level_object_start_counts_leading_whitespace() {
    let mut scanner = JsonScanner::new(paths(&["a"]), 10);
    scanner.feed(b" \r\n\t");
    assert_eq!(scanner.top_level_object_start(), None);
    scanner.feed(b"{\"a\":1}");
    assert_eq!(scanner.top_level_object_start(), Some(5));
    scanner.reset();
    assert_eq!(scanner.top_level_object_start(), None);
    assert_eq!(scanner.value(0), None);
    scanner.feed(b"{}");
    assert_eq!(scanner.top_level_object_start(), Some(1));
    assert!(scanner.is_complete());
    assert_eq!(scan(&["a"], b"[1]", 10).object_start, None);
}

#[test]
fn all_found_and_reset() {
    let mut scanner = JsonScanner::new(paths(&["a", "b.c"]), 10);
    scanner.feed(br#"{"a":1,"b":{"c":"#);
    assert!(!scanner.all_found());
    scanner.feed(b"true");
    assert!(scanner.all_found());
    assert!(!scanner.is_complete());
    scanner.feed(b"}}  ");
    assert!(scanner.is_complete());
    scanner.reset();
    assert!(!scanner.all_found());
    assert!(!scanner.is_complete());
    scanner.feed(br#"{"a":2}"#);
    assert_eq!(scanner.value(0), number("2").as_ref());
    assert_eq!(scanner.value(1), None);
    assert_eq!(scanner.value(7), None);
}

#[test]
fn values_of_an_earlier_document_never_show_through_a_reset() {
    // A path's buffer is reused across documents; what it held before must not leak.
    let mut scanner = JsonScanner::new(paths(&["m", "n", "m"]), 10);
    scanner.feed(br#"{"m":"a-longer-1","n":12345}"#);
    assert_eq!(scanner.value(0), string("a-longer-1").as_ref());
    for doc in [
        &br#"{"x":1}"#[..],
        br#"{"m":null,"n":"7"}"#,
        br#"{"m":"b","n":1.5}"#,
        b"{\"m\":\"\xff\xff\xff\xff\",\"n\":9}",
    ] {
        scanner.reset();
        assert_eq!(
            (scanner.value(0), scanner.value(1), scanner.value(2)),
            (None, None, None)
        );
        scanner.feed(doc);
    }
    assert_eq!(scanner.value(0), Some(&JsonScalar::TooLong));
    assert_eq!(scanner.value(2), Some(&JsonScalar::TooLong));
    scanner.reset();
    scanner.feed(br#"{"n":"7","m":"b"}"#);
    assert_eq!(
        (scanner.value(0), scanner.value(1), scanner.value(2)),
        (string("b").as_ref(), string("7").as_ref(), string("b").as_ref())
    );
    scanner.reset();
    scanner.feed(br#"{"n":1.5}"#);
    assert_eq!((scanner.value(0), scanner.value(1)), (None, number("1.5").as_ref()));
}

#[test]
fn content_after_the_top_level_value_is_malformed() {
    let out = scan_every_split(&["a"], br#"{"a":1} {"a":2}"#, 10);
    assert!(out.malformed);
    assert!(!out.complete);
    assert_eq!(out.values, vec![number("1")]);
    let out = scan_every_split(&["a"], b"{\"a\":1} \r\n\t ", 10);
    assert!(out.complete);
}

#[test]
fn top_level_scalars_complete() {
    assert!(scan(&["a"], br#" "x" "#, 10).complete);
    assert!(scan(&["a"], b"true", 10).complete);
    assert!(scan(&["a"], b"12 ", 10).complete);
    assert!(!scan(&["a"], b"12", 10).complete);
    assert!(scan(&["a"], b"[]", 10).complete);
}

#[test]
fn deep_nesting_is_skipped_with_bounded_memory() {
    let mut doc = String::from(r#"{"a":"#);
    for _ in 0..5000 {
        doc.push_str(r#"[{"model":"x]}\"[{","b":"#);
    }
    doc.push('1');
    for _ in 0..5000 {
        doc.push_str("}]");
    }
    doc.push_str(r#","model":"top"}"#);
    let mut scanner = JsonScanner::new(paths(&["model", "a"]), 10);
    for chunk in doc.as_bytes().chunks(7) {
        scanner.feed(chunk);
        assert!(scanner.buffered_bytes() < 4096);
    }
    assert!(scanner.is_complete(), "deep document completes");
    assert_eq!(scanner.value(0), string("top").as_ref());
    assert_eq!(scanner.value(1), Some(&JsonScalar::Composite));
}

#[test]
fn paths_deeper_than_the_tracked_depth_never_match() {
    let depth = MAX_TRACKED_DEPTH + 3;
    let path: Vec<String> = (0..depth).map(|_| "k".to_string()).collect();
    let mut doc = String::new();
    for _ in 0..depth {
        doc.push_str(r#"{"k":"#);
    }
    doc.push('7');
    for _ in 0..depth {
        doc.push('}');
    }
    let mut scanner = JsonScanner::new(vec![path], 10);
    scanner.feed(doc.as_bytes());
    assert!(scanner.is_complete());
    assert_eq!(scanner.value(0), None);
}

#[test]
fn top_level_array_elements_can_be_matched() {
    let doc = br#"[{"u":{"n":1},"m":"a"},{"u":{"n":2}},[{"u":{"n":3}}],{"x":{"u":{"n":4}}}]"#;
    let mut scanner = JsonScanner::new(paths(&["u.n", "m"]), 10).match_top_level_array_elements();
    for b in doc {
        scanner.feed(std::slice::from_ref(b));
    }
    assert!(scanner.is_complete());
    assert_eq!(scanner.value(0), number("2").as_ref());
    assert_eq!(scanner.value(1), string("a").as_ref());
    // Without the option nothing inside the array matches.
    assert_eq!(scan(&["u.n"], doc, 10).values, vec![None]);
}

#[test]
fn more_than_max_paths_are_ignored() {
    let many: Vec<Vec<String>> = (0..MAX_PATHS + 5).map(|i| vec![format!("k{i}")]).collect();
    let mut scanner = JsonScanner::new(many, 10);
    scanner.feed(format!(r#"{{"k0":1,"k{}":2}}"#, MAX_PATHS + 1).as_bytes());
    assert_eq!(scanner.value(0), number("1").as_ref());
    assert_eq!(scanner.value(MAX_PATHS + 1), None);
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut bytes = Vec::new();
    for _ in 0..200_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let alphabet = b"{}[]\":,\\u0123456789abcdeftruenl -.eE\x00\xff";
        bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
    }
    for chunk_size in [1, 3, 4096] {
        let mut scanner = JsonScanner::new(paths(&["a", "a.b"]), 16);
        for chunk in bytes.chunks(chunk_size) {
            scanner.feed(chunk);
            scanner.reset();
            scanner.feed(chunk);
        }
        assert!(scanner.buffered_bytes() < 4096);
    }
}

/// A 20 MB request whose interesting fields come after a huge `messages` array.
fn huge_request() -> Vec<u8> {
    let mut body = Vec::with_capacity(21 << 20);
    body.extend_from_slice(br#"{"messages":["#);
    let message = br#"{"role":"user","content":"Lorem ipsum dolor sit amet, \"quoted\" \u00e9 text with {braces} and [brackets] \\ and more words to make it long enough for a realistic message body ..."},"#;
    while body.len() < 20 << 20 {
        body.extend_from_slice(message);
    }
    body.extend_from_slice(br#"{"role":"assistant","content":[{"type":"text","text":"ok","model":"no"}]}],"#);
    body.extend_from_slice(br#""model":"claude-sonnet-4-5","stream":true,"metadata":{"user_id":"alice"}}"#);
    body
}

#[test]
fn fields_after_twenty_megabytes_are_found_with_bounded_memory() {
    let body = huge_request();
    let mut scanner = JsonScanner::new(paths(&["model", "metadata.user_id", "stream"]), 256);
    let start = std::time::Instant::now();
    let mut peak = 0;
    for chunk in body.chunks(64 * 1024) {
        scanner.feed(chunk);
        peak = peak.max(scanner.buffered_bytes());
    }
    let elapsed = start.elapsed();
    assert!(scanner.is_complete());
    assert!(!scanner.is_malformed());
    assert_eq!(scanner.value(0), string("claude-sonnet-4-5").as_ref());
    assert_eq!(scanner.value(1), string("alice").as_ref());
    assert_eq!(scanner.value(2), Some(&JsonScalar::Bool(true)));
    assert!(scanner.all_found());
    assert!(peak < 4096, "peak buffered bytes {peak}");
    eprintln!("20 MB scanned in {elapsed:?}, peak buffer {peak} bytes");
}

#[test]
fn invalid_utf8_never_stores_a_value_over_the_limit() {
    // Regression (fuzz/regressions/body_scanner): each invalid byte became a 3-byte U+FFFD
    // after the limit was checked, so a stored value could reach 3 × max_value_bytes.
    let out = scan_every_split(&["model", "ok"], b"{\"model\":\"a\xff\",\"ok\":\"\xff\"}", 3);
    assert_eq!(out.values, vec![Some(JsonScalar::TooLong), string("\u{fffd}")]);
    let out = scan_every_split(&["model"], b"{\"model\":\"\xa8\xa8\xa8\xff\"}", 8);
    assert_eq!(out.values, vec![Some(JsonScalar::TooLong)]);
}

#[test]
fn array_elements_are_matched_by_brackets() {
    let doc = br#"{"candidates":[{"content":{"parts":[{"text":"a"},{"functionCall":{"name":"f1"}}]}},{"finishReason":"STOP","index":1}],"tags":["x","y"],"n":[[1]]}"#;
    let o = scan_every_split(
        &[
            "candidates.[].finishReason",
            "candidates.[].content.parts.[].functionCall.name",
            "tags.[]",
            "candidates.finishReason",
            "n.[].[]",
            "tags",
        ],
        doc,
        64,
    );
    assert_eq!(o.values[0], string("STOP"));
    assert_eq!(o.values[1], string("f1"));
    assert_eq!(o.values[2], string("y"), "the last element wins");
    assert_eq!(o.values[3], None, "an array is not an object");
    assert_eq!(o.values[4], number("1"));
    assert_eq!(o.values[5], Some(JsonScalar::Composite));
    assert!(o.complete);
}

#[test]
fn brackets_match_only_arrays_and_keys_named_brackets_are_keys() {
    let o = scan(&["a.[].b", "[]"], br#"{"a":{"[]":{"b":1}}}"#, 64);
    assert_eq!(o.values, vec![None, None]);
    let o = scan(&["[].id"], br#"[{"id":"first"},{"id":"second"}]"#, 64);
    assert_eq!(o.values[0], string("second"));
    let o = scan(&["id"], br#"[{"id":"x"}]"#, 64);
    assert_eq!(o.values[0], None, "a top-level array is not an object");
}

#[test]
fn collected_paths_keep_every_value_in_order() {
    let doc = br#"{"choices":[{"message":{"tool_calls":[{"id":"a","function":{"name":"f"}},{"id":"b","function":{"name":"g"}}]}}]}"#;
    let list = [
        "choices.[].message.tool_calls.[].function.name",
        "choices.[].message.tool_calls.[].id",
    ];
    for split in 0..=doc.len() {
        let mut s = JsonScanner::new(paths(&list), 64).collect_paths([0, 1]);
        s.feed(&doc[..split]);
        s.feed(&doc[split..]);
        let names: Vec<&JsonScalar> = s.collected(0).iter().collect();
        assert_eq!(
            names,
            [&JsonScalar::String("f".into()), &JsonScalar::String("g".into())],
            "split {split}"
        );
        assert_eq!(s.collected(1).len(), 2);
        assert_eq!(s.value(0), Some(&JsonScalar::String("g".into())));
    }
    let many: String = (0..40)
        .map(|i| format!("{{\"id\":\"{i}\"}}"))
        .collect::<Vec<_>>()
        .join(",");
    let doc = format!(r#"{{"x":[{many}]}}"#);
    let mut s = JsonScanner::new(paths(&["x.[].id"]), 64).collect_paths([0]);
    s.feed(doc.as_bytes());
    assert_eq!(s.collected(0).len(), MAX_COLLECTED, "bounded");
    s.reset();
    assert!(s.collected(0).is_empty());
}
