//! API-key extraction and fingerprinting. Bearer parsing follows RFC 6750 §2.1 (scheme
//! matched case-insensitively per RFC 9110 §11.1); the fingerprint is SHA-256
//! (FIPS 180-4) truncated to 48 bits, so raw keys never have to be stored or logged.

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
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        token.trim()
    } else {
        value
    };
    (!key.is_empty()).then_some(key)
}

/// `sha256:` followed by the first 12 lowercase hex digits of SHA-256(`key`).
#[must_use]
pub fn fingerprint(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(7 + FINGERPRINT_HEX_DIGITS);
    out.push_str("sha256:");
    for byte in digest.iter().take(FINGERPRINT_HEX_DIGITS / 2) {
        for nibble in [byte >> 4, byte & 0x0f] {
            if let Some(&c) = HEX.get(usize::from(nibble)) {
                out.push(char::from(c));
            }
        }
    }
    out
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
    fn other_headers() {
        assert_eq!(key_from_header("x-api-key", " sk-ant-1 "), Some("sk-ant-1"));
        assert_eq!(key_from_header("api-key", "Bearer x"), Some("Bearer x"));
        assert_eq!(key_from_header("x-api-key", ""), None);
        assert_eq!(key_from_header("x-api-key", " \t "), None);
    }
}
