//! The identity parsers never panic, and keep their documented invariants: SPIFFE IDs
//! print back to the input, pairs decode/encode round-trip, API keys are trimmed non-empty
//! slices of the header value (or a SigV4 access key ID within it).
//!
//! Input: first byte = split point; the two parts serve as (DN, attribute),
//! (header name, header value) and so on; the whole rest as SPIFFE ID and pairs buffer.
#![no_main]

use ai_attribution::identity::api_key::{fingerprint, key_from_header, sha256_hex};
use ai_attribution::identity::pairs::{decode_pairs, encode_pairs, Pair};
use ai_attribution::identity::spiffe::parse_spiffe_id;
use ai_attribution::identity::subject::subject_attr;
use libfuzzer_sys::fuzz_target;

fn check_spiffe(s: &str) {
    if let Some(id) = parse_spiffe_id(s) {
        assert_eq!(id.to_string(), s);
        assert!(!id.trust_domain.is_empty());
        assert!(id.path.is_empty() || id.path.starts_with('/'));
        assert_eq!(parse_spiffe_id(&id.to_string()), Some(id));
        assert_eq!(id.namespace().is_some(), id.service_account().is_some());
    }
}

fn check_subject(dn: &str, attr: &str) {
    if let Some(v) = subject_attr(dn, attr) {
        assert!(!v.is_empty(), "subject_attr({dn:?}, {attr:?}) gave an empty value");
    }
}

fn check_key(name: &str, value: &str) {
    if let Some(key) = key_from_header(name, value) {
        assert!(!key.is_empty());
        assert_eq!(key, key.trim());
        assert!(value.contains(key));
        if !name.eq_ignore_ascii_case("authorization") {
            assert_eq!(key, value.trim());
        }
        let fp = fingerprint(key);
        assert_eq!(fp.len(), "sha256:".len() + 12);
        assert!(fp.starts_with("sha256:"));
        let full = sha256_hex(key);
        assert_eq!(full.len(), 64);
        assert!(full.starts_with(&fp["sha256:".len()..]));
    }
}

fuzz_target!(|data: &[u8]| {
    let (n, rest) = fuzz_support::split_first(data);
    let n = usize::from(n).min(rest.len());
    let (left, right) = rest.split_at(n);
    let whole = String::from_utf8_lossy(rest);
    let a = String::from_utf8_lossy(left);
    let b = String::from_utf8_lossy(right);

    // SPIFFE IDs, bare and behind the prefix.
    check_spiffe(&whole);
    check_spiffe(&format!("spiffe://{whole}"));

    // Subject DNs.
    check_subject(&whole, "CN");
    check_subject(&whole, "2.5.4.11");
    check_subject(&a, &b);
    check_subject(&b, &a);

    // Pairs: decoding the raw bytes, re-encoding what decoded, and encode → decode of
    // pairs cut from the input at 0xff bytes.
    if let Some(pairs) = decode_pairs(rest) {
        let encoded = encode_pairs(&pairs);
        if rest.is_empty() {
            assert!(pairs.is_empty());
            assert_eq!(encoded, [0, 0, 0, 0]);
        } else {
            assert_eq!(encoded, rest, "decode then encode must give the input back");
        }
    }
    let fields: Vec<&[u8]> = rest.split(|&c| c == 0xff).collect();
    let made: Vec<Pair<'_>> = fields.chunks_exact(2).map(|c| (c[0], c[1])).collect();
    let encoded = encode_pairs(&made);
    assert_eq!(decode_pairs(&encoded), Some(made.clone()));

    // API keys.
    check_key("authorization", &whole);
    check_key("Authorization", &b);
    check_key("x-api-key", &whole);
    check_key(&a, &b);
});
