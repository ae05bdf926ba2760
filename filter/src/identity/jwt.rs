//! Unverified JWT payload decoding (RFC 7519 §7.2 steps 1-10 minus signature checks;
//! base64url per RFC 7515 §2 / RFC 4648 §5) and claim extraction by dotted path.
//!
//! Nothing here verifies a signature: values read with [`bearer_payload`] must be
//! treated as unverified by the caller. Verified claims come from Envoy's `jwt_authn`
//! filter instead, read from its dynamic metadata (`identity::metadata`).

use core::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{Number, Value};

/// Largest decoded payload accepted, in bytes.
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024;

/// base64url, padding optional, non-canonical trailing bits rejected.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a JWT payload could not be read. Carries no token material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// The `Authorization` value does not use the `Bearer` scheme.
    NotBearer,
    /// The token is not three `.`-separated parts with non-empty header and payload.
    Malformed,
    /// The payload is not valid base64url.
    Base64,
    /// The decoded payload exceeds [`MAX_PAYLOAD_LEN`].
    TooLarge,
    /// The payload is not valid UTF-8 JSON.
    Json,
    /// The payload is JSON but not an object.
    NotObject,
    /// The token declares itself unsigned (`alg: none`), or has no signature.
    Unsigned,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotBearer => "authorization is not a bearer token",
            Self::Malformed => "malformed JWT",
            Self::Base64 => "JWT payload is not base64url",
            Self::TooLarge => "JWT payload too large",
            Self::Json => "JWT payload is not JSON",
            Self::NotObject => "JWT payload is not a JSON object",
            Self::Unsigned => "JWT is unsigned",
        })
    }
}

impl std::error::Error for JwtError {}

/// Decodes a JWT payload segment (base64url, with or without padding) into a JSON
/// object.
///
/// # Errors
/// [`JwtError::TooLarge`], [`JwtError::Base64`], [`JwtError::Json`] or
/// [`JwtError::NotObject`].
pub fn decode_payload_segment(b64url: &str) -> Result<Value, JwtError> {
    let unpadded = b64url.trim_end_matches('=');
    if unpadded.len() > (MAX_PAYLOAD_LEN * 4).div_ceil(3) {
        return Err(JwtError::TooLarge);
    }
    let bytes = B64URL.decode(b64url).map_err(|_| JwtError::Base64)?;
    if bytes.len() > MAX_PAYLOAD_LEN {
        return Err(JwtError::TooLarge);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(JwtError::NotObject),
        Err(_) => Err(JwtError::Json),
    }
}

/// Decodes, without verifying, the payload of the JWT in an `Authorization: Bearer
/// <jwt>` value (scheme case-insensitive). JWE (five parts) is rejected as malformed.
///
/// # Errors
/// [`JwtError::NotBearer`], [`JwtError::Malformed`], or any error of
/// [`decode_payload_segment`].
pub fn bearer_payload(authorization: &str) -> Result<Value, JwtError> {
    let value = authorization.trim();
    let (scheme, token) = value.split_once([' ', '\t']).ok_or(JwtError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(JwtError::NotBearer);
    }
    let mut parts = token.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) if !header.is_empty() && !payload.is_empty() => {
            let alg = decode_payload_segment(header)?
                .get("alg")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            if signature.is_empty() || alg.as_deref().is_none_or(|a| a == "none") {
                return Err(JwtError::Unsigned);
            }
            decode_payload_segment(payload)
        }
        _ => Err(JwtError::Malformed),
    }
}

/// A claim converted to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimValue {
    /// The claim as text: strings as-is, numbers and booleans as JSON text, lists of
    /// scalars comma-joined.
    Text(String),
    /// An object, or a list holding an object, list, null, or a string containing `,`
    /// (which would make the joined text ambiguous).
    Invalid,
}

/// Follows `path` from `v`: at each level the whole remaining path is tried as a literal
/// key first, then each split at a `.` (leftmost first) descends into an object.
/// Every call is on a distinct JSON node, so the search is bounded by the payload size.
fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    if let Some(found) = obj.get(path) {
        return Some(found);
    }
    for (dot, _) in path.match_indices('.') {
        let (Some(head), Some(tail)) = (path.get(..dot), path.get(dot + 1..)) else {
            continue;
        };
        if let Some(child @ Value::Object(_)) = obj.get(head) {
            if let Some(found) = lookup(child, tail) {
                return Some(found);
            }
        }
    }
    None
}

fn number_text(n: &Number) -> String {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        // 2^53: every integer below it is exact in an f64 and fits an i64.
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            #[allow(clippy::cast_possible_truncation)] // |f| < 2^53, integral: exact
            return format!("{}", f as i64);
        }
    }
    n.to_string()
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(number_text(n)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The claim at dotted path `dotted` in `payload`, converted to text.
///
/// A claim whose name contains dots (`https://corp.example/bu`) is found when written
/// as the whole remaining path. `None` when missing, `null`, or an empty list.
#[must_use]
pub fn claim_at(payload: &Value, dotted: &str) -> Option<ClaimValue> {
    if dotted.is_empty() {
        return None;
    }
    match lookup(payload, dotted)? {
        Value::Null => None,
        Value::Object(_) => Some(ClaimValue::Invalid),
        Value::Array(items) => {
            if items.is_empty() {
                return None;
            }
            let mut joined = String::new();
            for (n, item) in items.iter().enumerate() {
                let Some(text) = scalar_text(item) else {
                    return Some(ClaimValue::Invalid);
                };
                if text.contains(',') {
                    return Some(ClaimValue::Invalid);
                }
                if n > 0 {
                    joined.push(',');
                }
                joined.push_str(&text);
            }
            Some(ClaimValue::Text(joined))
        }
        scalar => scalar_text(scalar).map(ClaimValue::Text),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    use serde_json::json;

    fn seg(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn text(s: &str) -> Option<ClaimValue> {
        Some(ClaimValue::Text(s.to_owned()))
    }

    #[test]
    fn decode_with_and_without_padding() {
        let v = json!({"sub": "bot"}); // 13 bytes of JSON -> "==" padding
        let raw = serde_json::to_vec(&v).unwrap();
        for s in [URL_SAFE_NO_PAD.encode(&raw), URL_SAFE.encode(&raw)] {
            assert_eq!(decode_payload_segment(&s).unwrap(), v, "{s}");
        }
        let v2 = json!({"a": 1}); // 7 bytes -> "=" padding
        let padded = URL_SAFE.encode(serde_json::to_vec(&v2).unwrap());
        assert!(padded.ends_with('='));
        assert_eq!(decode_payload_segment(&padded).unwrap(), v2);
    }

    #[test]
    fn decode_errors() {
        assert_eq!(decode_payload_segment(""), Err(JwtError::Json));
        assert_eq!(decode_payload_segment("!!!!"), Err(JwtError::Base64));
        // Standard (non-url) alphabet characters.
        assert_eq!(decode_payload_segment("eyJ+/w"), Err(JwtError::Base64));
        // Truncated: a length of 4n+1 symbols can never be valid base64.
        let mut s = seg(&json!({"sub": "bot"}));
        while s.len() % 4 != 1 {
            s.push('A');
        }
        assert_eq!(decode_payload_segment(&s), Err(JwtError::Base64));
        let cut = &s[..s.len() - 2];
        assert!(decode_payload_segment(cut).is_err());
        // Whitespace inside.
        assert_eq!(decode_payload_segment("eyJh IjoxfQ"), Err(JwtError::Base64));
        // Not an object.
        assert_eq!(decode_payload_segment(&seg(&json!([1, 2]))), Err(JwtError::NotObject));
        assert_eq!(decode_payload_segment(&seg(&json!("x"))), Err(JwtError::NotObject));
        // Invalid UTF-8 / not JSON.
        assert_eq!(
            decode_payload_segment(&URL_SAFE_NO_PAD.encode([0xff, 0xfe])),
            Err(JwtError::Json)
        );
        assert_eq!(
            decode_payload_segment(&URL_SAFE_NO_PAD.encode(b"{\"a\":")),
            Err(JwtError::Json)
        );
    }

    #[test]
    fn size_cap() {
        let filler = "x".repeat(MAX_PAYLOAD_LEN - 8);
        let ok = serde_json::to_vec(&json!({ "a": filler })).unwrap();
        assert_eq!(ok.len(), MAX_PAYLOAD_LEN);
        assert!(decode_payload_segment(&URL_SAFE_NO_PAD.encode(&ok)).is_ok());
        assert!(decode_payload_segment(&URL_SAFE.encode(&ok)).is_ok());
        let big = serde_json::to_vec(&json!({ "a": format!("{filler}x") })).unwrap();
        assert_eq!(
            decode_payload_segment(&URL_SAFE_NO_PAD.encode(&big)),
            Err(JwtError::TooLarge)
        );
        assert_eq!(decode_payload_segment(&"A".repeat(1 << 20)), Err(JwtError::TooLarge));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        let s = URL_SAFE_NO_PAD.encode(deep.as_bytes());
        assert_eq!(decode_payload_segment(&s), Err(JwtError::Json));
    }

    #[test]
    fn bearer() {
        let p = json!({"sub": "bot", "groups": ["ml", "billing"]});
        let jwt = format!("{}.{}.sig", seg(&json!({"alg": "RS256"})), seg(&p));
        assert_eq!(bearer_payload(&format!("Bearer {jwt}")).unwrap(), p);
        assert_eq!(bearer_payload(&format!("bEaReR   {jwt}  ")).unwrap(), p);
        // An unsecured JWT (`alg: none`, or no signature, or no alg at all) yields nothing.
        for header in [json!({"alg": "none"}), json!({"alg": "NONE"}), json!({"typ": "JWT"})] {
            let unsigned = format!("{}.{}.sig", seg(&header), seg(&p));
            assert_eq!(bearer_payload(&format!("Bearer {unsigned}")), Err(JwtError::Unsigned));
        }
        let no_signature = format!("{}.{}.", seg(&json!({"alg": "RS256"})), seg(&p));
        assert_eq!(
            bearer_payload(&format!("Bearer {no_signature}")),
            Err(JwtError::Unsigned)
        );

        assert_eq!(bearer_payload(&format!("Basic {jwt}")), Err(JwtError::NotBearer));
        assert_eq!(bearer_payload(&jwt), Err(JwtError::NotBearer));
        assert_eq!(bearer_payload(""), Err(JwtError::NotBearer));
        assert_eq!(bearer_payload("Bearer "), Err(JwtError::NotBearer));
        assert_eq!(bearer_payload("Bearer  "), Err(JwtError::NotBearer));
        assert_eq!(bearer_payload("Bearer a.b"), Err(JwtError::Malformed));
        assert_eq!(bearer_payload("Bearer a.b.c.d.e"), Err(JwtError::Malformed));
        assert_eq!(bearer_payload("Bearer .b.c"), Err(JwtError::Malformed));
        assert_eq!(bearer_payload("Bearer a..c"), Err(JwtError::Malformed));
        assert_eq!(bearer_payload("Bearer sk-live-123"), Err(JwtError::Malformed));
        assert_eq!(bearer_payload("Bearer a.!!.c"), Err(JwtError::Base64));
        assert_eq!(
            bearer_payload(&format!("Bearer {}.!!.c", seg(&json!({"alg": "RS256"})))),
            Err(JwtError::Base64)
        );
        // The error text never echoes the token.
        let e = bearer_payload("Bearer secret.!!secret.secret").unwrap_err();
        assert!(!e.to_string().contains("secret"));
        assert!(!format!("{e:?}").contains("secret"));
    }

    #[test]
    fn claim_conversion() {
        let p = json!({
            "sub": "bot",
            "n": 42, "neg": -7, "f": 42.0, "pi": 3.5, "big": 1e300, "u": 18446744073709551615_u64,
            "t": true, "fl": false, "nul": null,
            "groups": ["ml", "billing"], "mixed": [1, true, "x", 2.0],
            "empty": [], "nested_list": [["a"]], "obj_list": [{"a": 1}], "null_list": [null],
            "comma_list": ["a,b"], "obj": {"a": 1}, "emptys": ""
        });
        assert_eq!(claim_at(&p, "sub"), text("bot"));
        assert_eq!(claim_at(&p, "n"), text("42"));
        assert_eq!(claim_at(&p, "neg"), text("-7"));
        assert_eq!(claim_at(&p, "f"), text("42"));
        assert_eq!(claim_at(&p, "pi"), text("3.5"));
        assert_eq!(claim_at(&p, "big"), text("1e+300"));
        assert_eq!(claim_at(&p, "u"), text("18446744073709551615"));
        assert_eq!(claim_at(&p, "t"), text("true"));
        assert_eq!(claim_at(&p, "fl"), text("false"));
        assert_eq!(claim_at(&p, "nul"), None);
        assert_eq!(claim_at(&p, "missing"), None);
        assert_eq!(claim_at(&p, "groups"), text("ml,billing"));
        assert_eq!(claim_at(&p, "mixed"), text("1,true,x,2"));
        assert_eq!(claim_at(&p, "empty"), None);
        assert_eq!(claim_at(&p, "nested_list"), Some(ClaimValue::Invalid));
        assert_eq!(claim_at(&p, "obj_list"), Some(ClaimValue::Invalid));
        assert_eq!(claim_at(&p, "null_list"), Some(ClaimValue::Invalid));
        assert_eq!(claim_at(&p, "comma_list"), Some(ClaimValue::Invalid));
        assert_eq!(claim_at(&p, "obj"), Some(ClaimValue::Invalid));
        assert_eq!(claim_at(&p, "emptys"), text(""));
        assert_eq!(claim_at(&p, ""), None);
    }

    #[test]
    fn dotted_paths() {
        let p = json!({
            "realm_access": {"roles": ["a", "b"], "deep": {"x": "y"}},
            "https://corp.example/bu": "finance",
            "ext": {"https://corp.example/team": "ml", "a.b": {"c": "abc"}},
            "a": {"b": "nested"}, "a.b": "literal",
            "s": "str"
        });
        assert_eq!(claim_at(&p, "realm_access.roles"), text("a,b"));
        assert_eq!(claim_at(&p, "realm_access.deep.x"), text("y"));
        assert_eq!(claim_at(&p, "realm_access.deep"), Some(ClaimValue::Invalid));
        assert_eq!(claim_at(&p, "https://corp.example/bu"), text("finance"));
        assert_eq!(claim_at(&p, "ext.https://corp.example/team"), text("ml"));
        assert_eq!(claim_at(&p, "ext.a.b.c"), text("abc"));
        // The literal key wins over the nested walk.
        assert_eq!(claim_at(&p, "a.b"), text("literal"));
        // Walking through a non-object fails.
        assert_eq!(claim_at(&p, "s.x"), None);
        assert_eq!(claim_at(&p, "realm_access.roles.0"), None);
        assert_eq!(claim_at(&p, "."), None);
        assert_eq!(claim_at(&p, "realm_access."), None);
        assert_eq!(claim_at(&p, ".realm_access"), None);
        // Non-object payload.
        assert_eq!(claim_at(&json!("x"), "a"), None);
    }

    #[test]
    fn pathological_dotted_lookup_is_bounded() {
        // Keys "a", "a.a", "a.a.a", ... at every level; the path never resolves.
        fn build(depth: usize) -> Value {
            let mut m = serde_json::Map::new();
            if depth > 0 {
                for k in 1..=4 {
                    m.insert(vec!["a"; k].join("."), build(depth - 1));
                }
            }
            Value::Object(m)
        }
        let p = build(6);
        let path = format!("{}.zz", vec!["a"; 30].join("."));
        assert_eq!(claim_at(&p, &path), None);
    }
}
