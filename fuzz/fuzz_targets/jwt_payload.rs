//! Unverified JWT payload decoding: `decode_payload_segment`, `bearer_payload` and
//! `claim_at` never panic, and agree with serde_json on what a payload holds.
//!
//! Input: first byte = length of the claim path, then the path, then the rest, used both
//! as a raw token/segment and as the JSON payload of a token built around it.
#![no_main]

use ai_attribution::identity::jwt::{
    bearer_payload, claim_at, decode_payload_segment, ClaimValue, JwtError, MAX_PAYLOAD_LEN,
};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check_claims(payload: &Value, path: &str) {
    assert!(payload.is_object());
    let got = claim_at(payload, path);
    if path.is_empty() {
        assert_eq!(got, None);
    }
    // A literal top-level key holding a string is returned as-is.
    if let Some(Value::String(s)) = payload.get(path).filter(|_| !path.is_empty()) {
        assert_eq!(got, Some(ClaimValue::Text(s.clone())), "path {path:?}");
    }
    // Every dotted prefix of the path too (exercises the split search).
    for (dot, _) in path.match_indices('.') {
        let _ = claim_at(payload, &path[..dot]);
        let _ = claim_at(payload, &path[dot + 1..]);
    }
}

fuzz_target!(|data: &[u8]| {
    let (n, rest) = fuzz_support::split_first(data);
    let n = usize::from(n).min(rest.len());
    let (path_bytes, body) = rest.split_at(n);
    let path = String::from_utf8_lossy(path_bytes);
    let text = String::from_utf8_lossy(body);

    // The raw bytes as a segment and as an Authorization value.
    if let Ok(v) = decode_payload_segment(&text) {
        check_claims(&v, &path);
    }
    if let Ok(v) = bearer_payload(&text) {
        check_claims(&v, &path);
    }

    // The raw bytes as the JSON payload of a well-formed token.
    let expected = if body.len() > MAX_PAYLOAD_LEN {
        Err(JwtError::TooLarge)
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(JwtError::NotObject),
            Err(_) => Err(JwtError::Json),
        }
    };
    let unpadded = URL_SAFE_NO_PAD.encode(body);
    let padded = URL_SAFE.encode(body);
    assert_eq!(decode_payload_segment(&unpadded), expected);
    assert_eq!(decode_payload_segment(&padded), expected);
    // An empty payload segment makes the token malformed.
    let expected_bearer = if body.is_empty() {
        Err(JwtError::Malformed)
    } else {
        expected.clone()
    };
    // A token that says it is signed (RS256, eyJhbGciOiJSUzI1NiJ9) gives its payload; the
    // same token as `alg: none` (eyJhbGciOiJub25lIn0) or without a signature gives nothing.
    let header = format!("Bearer eyJhbGciOiJSUzI1NiJ9.{unpadded}.sig");
    assert_eq!(bearer_payload(&header), expected_bearer);
    let header = format!("  bEaReR\t eyJhbGciOiJSUzI1NiJ9.{padded}.sig  ");
    assert_eq!(bearer_payload(&header), expected_bearer);
    if !body.is_empty() {
        let unsigned = format!("Bearer eyJhbGciOiJub25lIn0.{unpadded}.sig");
        assert_eq!(bearer_payload(&unsigned), Err(JwtError::Unsigned));
        let no_signature = format!("Bearer eyJhbGciOiJSUzI1NiJ9.{unpadded}.");
        assert_eq!(bearer_payload(&no_signature), Err(JwtError::Unsigned));
    }
    if let Ok(v) = &expected {
        check_claims(v, &path);
    }
});
