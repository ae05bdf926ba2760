//! The bytes `integration/QUOTA.md` gives the filter's author are the ones this server's own
//! encoding produces and decodes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::envoy::repo_root;
use prost::Message;
use ratelimit_server::proto::{
    Code, DescriptorStatus, Duration, Entry, RateLimit, RateLimitDescriptor, RateLimitRequest, RateLimitResponse,
    UInt64Value, Unit,
};

/// The bytes of the code block after `<!-- wire:NAME -->`: on each line, the leading
/// two-digit hex tokens (what follows them is commentary).
fn block(doc: &str, name: &str) -> Vec<u8> {
    let marker = format!("<!-- wire:{name} -->");
    let start = doc.find(&marker).unwrap_or_else(|| panic!("QUOTA.md has no {marker}"));
    let mut lines = doc[start..].lines().skip(1);
    assert_eq!(
        lines.next().map(str::trim),
        Some("```"),
        "{marker} is followed by a code block"
    );
    let mut out = Vec::new();
    for line in lines.take_while(|l| l.trim() != "```") {
        for token in line.split_whitespace() {
            if token.len() != 2 {
                break;
            }
            match u8::from_str_radix(token, 16) {
                Ok(b) => out.push(b),
                Err(_) => break,
            }
        }
    }
    out
}

/// Splits a gRPC message into its prefix's length and the protobuf bytes.
fn unframe(framed: &[u8]) -> &[u8] {
    assert_eq!(framed[0], 0, "not compressed");
    let len = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
    assert_eq!(len, framed.len() - 5, "the prefix gives the message's length");
    &framed[5..]
}

fn tokens(hits: u64) -> RateLimitRequest {
    RateLimitRequest {
        domain: "ai-attribution".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![
                Entry {
                    key: "budget".into(),
                    value: "tokens_per_bu".into(),
                },
                Entry {
                    key: "business_unit".into(),
                    value: "finance".into(),
                },
            ],
            limit: None,
            hits_addend: Some(UInt64Value { value: hits }),
        }],
        hits_addend: 0,
    }
}

fn doc() -> String {
    std::fs::read_to_string(repo_root().join("integration/QUOTA.md")).unwrap()
}

#[test]
fn the_check_and_the_charge_are_the_servers_encoding() {
    let doc = doc();
    for (name, hits) in [("check", 0), ("charge", 1234)] {
        let framed = block(&doc, name);
        let bytes = unframe(&framed);
        assert_eq!(bytes, tokens(hits).encode_to_vec().as_slice(), "{name}");
        let decoded = RateLimitRequest::decode(bytes).unwrap();
        assert_eq!(decoded.descriptors[0].hits_addend, Some(UInt64Value { value: hits }));
    }
}

#[test]
fn the_answer_is_the_servers_encoding() {
    let resp = RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![DescriptorStatus {
            code: Code::OverLimit as i32,
            current_limit: Some(RateLimit {
                requests_per_unit: 100,
                unit: Unit::Day as i32,
                name: String::new(),
            }),
            limit_remaining: 0,
            duration_until_reset: Some(Duration {
                seconds: 3600,
                nanos: 0,
            }),
        }],
    };
    assert_eq!(block(&doc(), "response"), resp.encode_to_vec());
}

#[test]
fn a_descriptor_without_hits_is_not_a_check() {
    // Absent means "the request's hits_addend"; present and empty means 0.
    let absent = RateLimitDescriptor {
        hits_addend: None,
        ..tokens(0).descriptors[0].clone()
    };
    let present = tokens(0).descriptors[0].clone();
    let (a, p) = (absent.encode_to_vec(), present.encode_to_vec());
    assert_eq!(&p[a.len()..], [0x1a, 0x00]);
    assert_eq!(RateLimitDescriptor::decode(a.as_slice()).unwrap().hits_addend, None);
}
