//! API-key extraction and hashing. Bearer parsing follows RFC 6750 §2.1 (scheme matched
//! case-insensitively per RFC 9110 §11.1); an AWS Signature Version 4 `Authorization` yields its
//! access key ID. Owners are looked up by the full SHA-256 (FIPS 180-4) of the key, so no other
//! key can be made to match; the short fingerprint (48 bits) is only for display, and raw keys
//! never have to be stored or logged.

use sha2::{Digest, Sha256};

/// Hex digits of the digest kept in a fingerprint.
pub const FINGERPRINT_HEX_DIGITS: usize = 12;

/// Extracts the API key carried by header `header_name` with value `value`.
///
/// For `authorization` (any case) the key is the trimmed token after a
/// case-insensitive `Bearer` scheme; another scheme yields `None`. For any other header
/// the key is the whole trimmed value. An empty key yields `None`.
#[must_use]
pub fn key_from_header<'v>(header_name: &str, value: &'v str) -> Option<&'v str> {
    let value = value.trim();
    let key = if header_name.eq_ignore_ascii_case("authorization") {
        let (scheme, token) = value.split_once([' ', '\t'])?;
        if scheme.eq_ignore_ascii_case("AWS4-HMAC-SHA256") {
            return sigv4_access_key(token);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        token.trim()
    } else {
        value
    };
    (!key.is_empty()).then_some(key)
}

/// The access key ID of a SigV4 `Authorization` value's `Credential=<id>/<scope>` part.
fn sigv4_access_key(params: &str) -> Option<&str> {
    params.split(',').find_map(|p| {
        let credential = p.trim().strip_prefix("Credential=")?;
        let id = credential.split('/').next()?.trim();
        (!id.is_empty()).then_some(id)
    })
}

/// The full SHA-256 of a key, as 64 lower-case hex digits: what `api_keys.owners` is keyed by.
#[must_use]
pub fn sha256_hex(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        for nibble in [byte >> 4, byte & 0x0f] {
            if let Some(&c) = HEX.get(usize::from(nibble)) {
                out.push(char::from(c));
            }
        }
    }
    out
}

/// `sha256:` followed by the first 12 lower-case hex digits of SHA-256(`key`): a display value
/// (`api_key:fingerprint`), never an owner lookup.
#[must_use]
pub fn fingerprint(key: &str) -> String {
    display_fingerprint(&sha256_hex(key))
}

/// The display fingerprint of a full hex digest.
#[must_use]
pub fn display_fingerprint(sha256_hex: &str) -> String {
    format!(
        "sha256:{}",
        sha256_hex.get(..FINGERPRINT_HEX_DIGITS).unwrap_or(sha256_hex)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_known_vectors() {
        assert_eq!(fingerprint("foo"), "sha256:2c26b46b68ff");
        // SHA-256("") = e3b0c442 98fc...
        assert_eq!(fingerprint(""), "sha256:e3b0c44298fc");
        // SHA-256("abc") = ba7816bf 8f01...
        assert_eq!(fingerprint("abc"), "sha256:ba7816bf8f01");
        let f = fingerprint("sk-live-secret-value");
        assert_eq!(f.len(), 19);
        assert!(!f.contains("secret"));
    }

    #[test]
    fn authorization_bearer() {
        assert_eq!(key_from_header("authorization", "Bearer sk-123"), Some("sk-123"));
        assert_eq!(key_from_header("Authorization", "bearer sk-123"), Some("sk-123"));
        assert_eq!(key_from_header("AUTHORIZATION", "  BEARER   sk-123  "), Some("sk-123"));
        assert_eq!(key_from_header("authorization", "Bearer\tsk-123"), Some("sk-123"));
        assert_eq!(key_from_header("authorization", "Basic dXNlcjpwYXNz"), None);
        assert_eq!(key_from_header("authorization", "Bearer"), None);
        assert_eq!(key_from_header("authorization", "Bearer   "), None);
        assert_eq!(key_from_header("authorization", "Bearersk-123"), None);
        assert_eq!(key_from_header("authorization", "sk-123"), None);
        assert_eq!(key_from_header("authorization", ""), None);
    }

    #[test]
    fn full_digests_and_sigv4_access_keys() {
        assert_eq!(
            sha256_hex("foo"),
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        );
        let sigv4 = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260801/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(key_from_header("authorization", sigv4), Some("AKIAEXAMPLE"));
        assert_eq!(
            key_from_header("authorization", "AWS4-HMAC-SHA256 SignedHeaders=host"),
            None
        );
    }

    #[test]
    fn other_headers() {
        assert_eq!(key_from_header("x-api-key", " sk-ant-1 "), Some("sk-ant-1"));
        assert_eq!(key_from_header("api-key", "Bearer x"), Some("Bearer x"));
        assert_eq!(key_from_header("x-api-key", ""), None);
        assert_eq!(key_from_header("x-api-key", " \t "), None);
    }
}
