//! Identity sources: pure, allocation-light parsers for the places an AI call's caller
//! identity can come from (SPIFFE IDs per the SPIFFE ID standard, RFC 4514 subject
//! DNs, unverified JWT payloads per RFC 7519, proxy-wasm "pairs" maps, and API keys). No proxy-wasm imports; malformed input
//! yields `None`/`Err`, never a panic.

pub mod api_key;
pub mod jwt;
pub mod metadata;
pub mod pairs;
pub mod peer;
pub mod spiffe;
pub mod subject;

pub use api_key::{fingerprint, key_from_header, sha256_hex};
pub use jwt::{bearer_payload, claim_at, decode_payload_segment, ClaimValue, JwtError};
pub use pairs::{decode_pairs, encode_pairs, Pair};
pub use spiffe::{parse_spiffe_id, SpiffeId};
pub use subject::subject_attr;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod fuzz_tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Bytes biased towards the structural characters of every format under test, and
    /// sometimes prefixed with a valid-looking start so parsers get past their first check.
    fn sample(rng: &mut XorShift) -> Vec<u8> {
        const SPECIAL: &[u8] = b"=,;+\"\\#:/.%?@ \t\0\n-_aZ09AFf<>{}[]";
        const PREFIXES: &[&[u8]] = &[
            b"",
            b"spiffe://",
            b"spiffe://td/ns/",
            b"CN=",
            b"URI=",
            b"Subject=\"",
            b"Bearer ",
            b"Bearer eyJ",
            b"\x01\x00\x00\x00",
        ];
        let mut out = PREFIXES[rng.below(PREFIXES.len())].to_vec();
        let len = match rng.below(10) {
            0 => rng.below(2000),
            _ => rng.below(64),
        };
        for _ in 0..len {
            let r = rng.next();
            out.push(if r & 1 == 0 {
                SPECIAL[((r >> 8) as usize) % SPECIAL.len()]
            } else {
                (r >> 16) as u8
            });
        }
        out
    }

    #[test]
    fn random_input_never_panics() {
        let payload = json!({"a": {"b": [1, "x"]}, "a.b": {"c": null}, "s": "t"});
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5000 {
            let bytes = sample(&mut rng);
            let text = String::from_utf8_lossy(&bytes);
            let s: &str = &text;

            if let Some(id) = parse_spiffe_id(s) {
                let _ = (id.namespace(), id.service_account(), id.to_string());
            }
            let _ = subject_attr(s, "CN");
            let _ = subject_attr("CN=x", s);
            let _ = decode_payload_segment(s);
            let _ = decode_payload_segment(&URL_SAFE_NO_PAD.encode(&bytes));
            let _ = bearer_payload(s);
            let _ = claim_at(&payload, s);
            let _ = decode_pairs(&bytes);
            let _ = key_from_header("authorization", s);
            let _ = key_from_header(s, s);
            let _ = fingerprint(s);
        }
    }

    #[test]
    fn random_pairs_round_trip() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..2000 {
            let blobs: Vec<Vec<u8>> = (0..rng.below(8)).map(|_| sample(&mut rng)).collect();
            let pairs: Vec<Pair> = blobs
                .chunks_exact(2)
                .map(|c| (c[0].as_slice(), c[1].as_slice()))
                .collect();
            let enc = encode_pairs(&pairs);
            assert_eq!(decode_pairs(&enc).unwrap(), pairs);
            // Flipping any one byte must not panic (and usually breaks consistency).
            if !enc.is_empty() {
                let mut bad = enc.clone();
                let at = rng.below(bad.len());
                bad[at] ^= 1 + (rng.next() as u8 & 0x7f);
                let _ = decode_pairs(&bad);
            }
        }
    }
}
