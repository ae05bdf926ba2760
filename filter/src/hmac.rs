//! HMAC-SHA256 (RFC 2104 over FIPS 180-4 SHA-256), for pseudonymised dimensions: the same value
//! under the same key always gives the same pseudonym, and without the key a pseudonym cannot be
//! computed from a guessed value.

use sha2::{Digest, Sha256};
use std::fmt;

const BLOCK: usize = 64;

/// A key prepared once: SHA-256 states that have absorbed the inner and outer key pads, so each
/// pseudonym costs two hash finalisations and no key handling.
#[derive(Clone)]
pub struct HmacKey {
    inner: Sha256,
    outer: Sha256,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key never reaches a log, not even through a debug print of the configuration.
        f.write_str("HmacKey(<secret>)")
    }
}

impl HmacKey {
    pub fn new(key: &[u8]) -> HmacKey {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            let digest = Sha256::digest(key);
            for (b, d) in block.iter_mut().zip(digest.iter()) {
                *b = *d;
            }
        } else {
            for (b, k) in block.iter_mut().zip(key.iter()) {
                *b = *k;
            }
        }
        let pad = |byte: u8| -> [u8; BLOCK] { block.map(|b| b ^ byte) };
        let mut inner = Sha256::new();
        inner.update(pad(0x36));
        let mut outer = Sha256::new();
        outer.update(pad(0x5c));
        HmacKey { inner, outer }
    }

    /// HMAC-SHA256 of `message`.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(message);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }

    /// HMAC-SHA256 of `message`, as 64 lower-case hex digits.
    pub fn mac_hex(&self, message: &[u8]) -> String {
        hex(&self.mac(message))
    }
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            if let Some(&d) = DIGITS.get(usize::from(nibble)) {
                out.push(char::from(d));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231 section 4: test cases 1 to 7 for HMAC-SHA-256 (case 5's output is truncated to
    /// 128 bits in the RFC, so only its prefix is compared).
    #[test]
    fn rfc_4231_test_vectors() {
        let long_key = vec![0xaa; 131];
        let cases: [(Vec<u8>, Vec<u8>, &str); 7] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0x0c; 20],
                b"Test With Truncation".to_vec(),
                "a3b6167473100ee06e0c796c2955552b",
            ),
            (
                long_key.clone(),
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                long_key,
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (i, (key, data, want)) in cases.iter().enumerate() {
            let got = HmacKey::new(key).mac_hex(data);
            assert!(got.starts_with(want), "test case {}: {got}", i + 1);
        }
    }

    #[test]
    fn a_key_of_exactly_one_block_is_used_as_it_is() {
        // 64 bytes: neither padded nor hashed; differs from the same key hashed first.
        let key = [0x42u8; 64];
        let hashed: Vec<u8> = Sha256::digest(key).to_vec();
        assert_ne!(HmacKey::new(&key).mac(b"x"), HmacKey::new(&hashed).mac(b"x"));
        let longer = [0x42u8; 65];
        let longer_hashed: Vec<u8> = Sha256::digest(longer).to_vec();
        assert_eq!(HmacKey::new(&longer).mac(b"x"), HmacKey::new(&longer_hashed).mac(b"x"));
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        assert_eq!(format!("{:?}", HmacKey::new(b"test-only-secret")), "HmacKey(<secret>)");
    }

    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
