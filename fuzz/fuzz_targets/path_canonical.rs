//! `path::CanonicalPath`: never panics, and agrees with a reference built from other parts: the
//! `percent-encoding` crate decodes, and a string-based lexical clean (one slash between
//! segments, `.` dropped, `..` removing the segment before it, never climbing above the root)
//! resolves the segments. Both readings are checked: `parse` (`\` separates, `;` starts
//! parameters) and `parse_literal` (only `/` separates). The query is split off at the first `?`
//! or `#` and kept raw.
#![no_main]

use ai_attribution::path::{raw_query, CanonicalPath};
use libfuzzer_sys::fuzz_target;

/// The path part of a request target.
fn path_part(target: &[u8]) -> &[u8] {
    match target.iter().position(|&b| b == b'?' || b == b'#') {
        Some(end) => &target[..end],
        None => target,
    }
}

/// The reference canonical path, as `/a/b` (or `/`).
fn reference(target: &[u8], literal: bool) -> String {
    let decoded: Vec<u8> = percent_encoding::percent_decode(path_part(target)).collect();
    let mut text = String::from_utf8_lossy(&decoded).into_owned();
    if !literal {
        text = text.replace('\\', "/");
    }
    let mut out = String::new();
    for piece in text.split('/') {
        let piece = if literal { piece } else { piece.split(';').next().unwrap_or("") };
        match piece {
            "" | "." => {}
            ".." => match out.rfind('/') {
                Some(i) => out.truncate(i),
                None => out.clear(),
            },
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fuzz_target!(|target: &[u8]| {
    let p = CanonicalPath::parse(target);
    assert_eq!(p.to_path_string(), reference(target, false), "parse {target:?}");
    for s in p.segments() {
        assert!(!s.is_empty() && s != "." && s != "..", "segment {s:?} of {target:?}");
        assert!(!s.contains(['/', '\\', ';']), "segment {s:?} of {target:?}");
    }

    let decoded: Vec<u8> = percent_encoding::percent_decode(path_part(target)).collect();
    let has_either = decoded.iter().any(|&b| b == b';' || b == b'\\');
    match CanonicalPath::parse_literal(target) {
        Some(l) => {
            assert!(has_either, "a literal reading without ';' or '\\\\': {target:?}");
            assert_eq!(l.to_path_string(), reference(target, true), "parse_literal {target:?}");
            for s in l.segments() {
                assert!(!s.is_empty() && s != "." && s != ".." && !s.contains('/'));
            }
        }
        None => assert!(!has_either, "no literal reading of {target:?}"),
    }

    // The raw query: after the first '?', before any '#'; nothing when a '#' comes first.
    let q = raw_query(target);
    let expected: &[u8] = match target.iter().position(|&b| b == b'?' || b == b'#') {
        Some(i) if target[i] == b'?' => {
            let rest = &target[i + 1..];
            &rest[..rest.iter().position(|&b| b == b'#').unwrap_or(rest.len())]
        }
        _ => &[],
    };
    assert_eq!(q, expected, "query of {target:?}");
});
