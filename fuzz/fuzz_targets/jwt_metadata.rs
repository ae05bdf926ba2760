//! `identity::metadata::filter_metadata`: the protobuf reader for Envoy's `metadata` attribute
//! (where jwt_authn puts verified payloads) never panics on any bytes, and the claims it yields
//! go through `claim_at` and the peer-certificate field logic safely.
#![no_main]

use ai_attribution::identity::jwt::claim_at;
use ai_attribution::identity::metadata::filter_metadata;
use ai_attribution::identity::peer::PeerCert;
use ai_attribution::source::PeerField;
use fuzz_support::split_first;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (selector, rest) = split_first(data);
    if let Some(ns) = filter_metadata(rest, "envoy.filters.http.jwt_authn") {
        if let Some(payload) = ns.get("jwt_payload") {
            for claim in ["sub", "org.business_unit", "groups", "a.b.c"] {
                let _ = claim_at(payload, claim);
            }
        }
    }
    // The same bytes as certificate attributes and a list of local trust domains.
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(4, '\n');
    let cert = PeerCert {
        uri_san: parts.next().map(str::to_string),
        subject: parts.next().map(str::to_string),
        dns_san: None,
        fingerprint: parts.next().map(str::to_string),
    };
    let local: Vec<String> = parts.next().unwrap_or("").split(',').map(str::to_string).collect();
    let field = PeerField::ALL[usize::from(selector) % PeerField::ALL.len()].1;
    let _ = cert.field(field, &local);
    let _ = cert.spiffe_id();
});
