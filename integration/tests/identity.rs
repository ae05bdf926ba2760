//! Identity sources through a real Envoy: SPIFFE and certificate fields from mTLS, JWT claims
//! verified by jwt_authn, forwarded payload headers, unverified bearer tokens, API keys, the
//! header trust model, and the spoofing attempts each of them must withstand.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::bootstrap::Bootstrap;
use integration::envoy::TempDir;
use integration::http::{Request, Response};
use integration::pki::{mtls_send, unsigned_jwt, CertPair, JwtSigner, Pki};
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

struct Creds {
    _dir: TempDir,
    pki: Pki,
    server: CertPair,
    /// spiffe://example.org/ns/team-a/sa/billing-bot, plus a second URI and two DNS SANs.
    billing: CertPair,
    /// First URI SAN is not SPIFFE; the SPIFFE ID is the second.
    multi: CertPair,
    /// No SAN at all.
    nosan: CertPair,
    /// The trusted edge proxy: spiffe://corp.example/ns/edge/sa/auth-gateway.
    gateway: CertPair,
    /// A malformed SPIFFE URI.
    malformed: CertPair,
    signer: JwtSigner,
    other_signer: JwtSigner,
}

fn creds() -> &'static Creds {
    static CREDS: OnceLock<Creds> = OnceLock::new();
    CREDS.get_or_init(|| {
        let dir = TempDir::for_binary("pki").unwrap();
        let pki = Pki::new(dir.path()).unwrap();
        let server = pki.issue("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1,URI:spiffe://example.org/ns/infra/sa/envoy-gw", "serverAuth").unwrap();
        let billing = pki
            .issue(
                "billing",
                "/C=US/O=Example Corp/OU=Team A/CN=billing-bot",
                "URI:spiffe://example.org/ns/team-a/sa/billing-bot,URI:https://example.org/second-uri,DNS:billing-bot.team-a.svc,DNS:alt.example.org",
                "clientAuth",
            )
            .unwrap();
        let multi = pki
            .issue("multi", "/O=Example Corp/CN=multi", "URI:https://example.org/first,URI:spiffe://example.org/ns/ml/sa/trainer", "clientAuth")
            .unwrap();
        let nosan = pki.issue("nosan", "/O=Legacy Inc/OU=Batch/CN=legacy-job", "", "clientAuth").unwrap();
        let gateway = pki.issue("gateway", "/CN=auth-gateway", "URI:spiffe://corp.example/ns/edge/sa/auth-gateway", "clientAuth").unwrap();
        let malformed = pki.issue("malformed", "/CN=bad", "URI:spiffe://example.org/ns/../sa/x", "clientAuth").unwrap();
        let signer = JwtSigner::new(dir.path(), "trusted", "k1").unwrap();
        // Same key id, different key: what an attacker without the signing key can produce.
        let other_signer = JwtSigner::new(dir.path(), "attacker", "k1").unwrap();
        Creds { _dir: dir, pki, server, billing, multi, nosan, gateway, malformed, signer, other_signer }
    })
}

/// A stack whose listener requires client certificates, with XFCC SANITIZE_SET.
fn mtls_stack(config: Value) -> Stack {
    mtls_stack_forwarding(config, "SANITIZE_SET")
}

/// An mTLS listener whose connection manager handles `x-forwarded-client-cert` as `forward`.
fn mtls_stack_forwarding(config: Value, forward: &str) -> Stack {
    let c = creds();
    Stack::start_with(config.to_string(), |b: &mut Bootstrap| {
        b.dimensions = ["user", "service_account", "app", "team", "td", "cn", "ou", "org", "dns", "uri", "fp", "business_unit"].map(String::from).to_vec();
        b.transport_socket = Some(json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": true,
                "common_tls_context": {
                    "tls_certificates": [{"certificate_chain": {"filename": c.server.cert}, "private_key": {"filename": c.server.key}}],
                    "validation_context": {"trusted_ca": {"filename": c.pki.ca()}}
                }
            }
        }));
        b.hcm_extra.insert("forward_client_cert_details".into(), json!(forward));
        b.hcm_extra.insert("set_current_client_cert_details".into(), json!({"subject": true, "uri": true, "dns": true}));
    })
    .unwrap()
}

/// A stack with jwt_authn before the filter. Failed or missing tokens continue to the filter, which
/// then rejects the call with a reason the caller can act on.
fn jwt_stack(config: Value) -> Stack {
    let c = creds();
    let jwks = c.signer.jwks().unwrap().to_string();
    Stack::start_with(config.to_string(), |b: &mut Bootstrap| {
        b.dimensions = ["user", "app", "business_unit", "groups", "quota", "admin", "team"]
            .map(String::from)
            .to_vec();
        b.filters_before.push(json!({
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": {"corp": {
                    "issuer": "https://issuer.corp.example",
                    "audiences": ["ai-gateway"],
                    "local_jwks": {"inline_string": jwks},
                    "payload_in_metadata": "jwt_payload",
                    "forward_payload_header": "x-jwt-payload",
                    "forward": false
                }},
                "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                    {"provider_name": "corp"}, {"allow_missing_or_failed": {}}
                ]}}}]
            }
        }));
    })
    .unwrap()
}

fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": "https://issuer.corp.example", "aud": "ai-gateway", "sub": "user-123", "azp": "notebook-app",
        "exp": 4102444800u64, "org": {"business_unit": "finance"}, "groups": ["ml", "billing"], "quota": 42, "admin": false,
        "team": {"name": "a"}
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        c[k] = v.clone();
    }
    c
}

fn mtls_call(stack: &Stack, client: Option<&CertPair>, headers: &[(&str, &str)]) -> (Response, Value, String) {
    let id = request_id("mtls");
    let mut req = Request::post("/v1/chat/completions")
        .header("x-request-id", &id)
        .json(&json!({"model": "gpt-4o", "messages": []}));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = mtls_send(stack.port, &creds().pki.ca(), client, &req).unwrap();
    let log = stack
        .log_for(&id)
        .unwrap_or_else(|| panic!("no log line; envoy log:\n{}", stack.envoy.log()));
    (resp, log, id)
}

fn plain_call(stack: &Stack, headers: &[(&str, &str)]) -> (Response, Value, String) {
    call_at(stack, "/v1/chat/completions", headers)
}

fn call_at(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> (Response, Value, String) {
    let id = request_id("plain");
    let mut req = Request::post(path)
        .header("x-request-id", &id)
        .json(&json!({"model": "gpt-4o", "messages": []}));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = stack.send(&req).unwrap();
    let log = stack
        .log_for(&id)
        .unwrap_or_else(|| panic!("no log line; envoy log:\n{}", stack.envoy.log()));
    (resp, log, id)
}

fn peer_config() -> Value {
    json!({
        "dimensions": {
            "service_account": ["peer:spiffe_id"], "team": ["peer:spiffe_namespace"], "app": ["peer:spiffe_service_account"],
            "td": ["peer:spiffe_trust_domain"], "cn": ["peer:subject_cn"], "ou": ["peer:subject_ou"], "org": ["peer:subject_o"],
            "dns": ["peer:dns_san"], "uri": ["peer:uri_san"], "fp": ["peer:fingerprint"]
        },
        "require": [["service_account"]],
        "peer": {"trust_domains": ["example.org"]}
    })
}

#[test]
fn spiffe_identity_and_certificate_fields_from_mtls() {
    let stack = mtls_stack(peer_config());
    let c = creds();
    let (resp, log, _) = mtls_call(&stack, Some(&c.billing), &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(log["decision"], "attributed");
    assert_eq!(log["service_account"], "spiffe://example.org/ns/team-a/sa/billing-bot");
    assert_eq!(log["td"], "example.org");
    assert_eq!(log["team"], "team-a");
    assert_eq!(log["app"], "billing-bot");
    assert_eq!(log["cn"], "billing-bot");
    assert_eq!(log["ou"], "Team A");
    assert_eq!(log["org"], "Example Corp");
    assert_eq!(log["dns"], "billing-bot.team-a.svc");
    assert_eq!(log["uri"], "spiffe://example.org/ns/team-a/sa/billing-bot");
    assert_eq!(log["fp"], c.pki.fingerprint(&c.billing.cert).unwrap().as_str());
    assert_eq!(
        log["sources"].as_str().unwrap().split(',').next(),
        Some("app=peer:spiffe_service_account")
    );
}

#[test]
fn a_certificate_whose_first_uri_san_is_not_spiffe_is_not_a_workload_identity() {
    // An X.509-SVID has exactly one URI SAN; Envoy shows filters only the first, and the XFCC
    // element listing the others is nothing the filter can check, so it is never read.
    let stack = mtls_stack(peer_config());
    let (resp, log, _) = mtls_call(&stack, Some(&creds().multi), &[]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(log["service_account"], Value::Null);
    assert_eq!(log["uri"], "https://example.org/first");
    assert_eq!(log["team"], Value::Null);
}

#[test]
fn a_partner_trust_domain_is_not_billed_as_a_local_namespace() {
    let mut config = peer_config();
    config["peer"] = json!({"trust_domains": ["corp.example"]});
    let stack = mtls_stack(config);
    let (resp, log, _) = mtls_call(&stack, Some(&creds().billing), &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(log["service_account"], "spiffe://example.org/ns/team-a/sa/billing-bot");
    assert_eq!(log["team"], Value::Null);
    assert_eq!(log["app"], Value::Null);
    assert_eq!(log["reason"], "invalid:app,team");
}

#[test]
fn a_certificate_without_san_or_with_a_malformed_spiffe_id_is_not_a_workload_identity() {
    let stack = mtls_stack(peer_config());
    let (resp, log, _) = mtls_call(&stack, Some(&creds().nosan), &[]);
    assert_eq!(resp.status, 403);
    assert_eq!(log["reason"], "missing:service_account");
    assert_eq!(log["cn"], "legacy-job");
    assert_eq!(log["ou"], "Batch");
    let (resp, log, _) = mtls_call(&stack, Some(&creds().malformed), &[]);
    assert_eq!(resp.status, 403);
    assert_eq!(log["service_account"], Value::Null);
    assert_eq!(log["uri"], "spiffe://example.org/ns/../sa/x");
}

/// A client presenting the multi-SAN certificate writes an XFCC element with its own
/// certificate's hash that claims the trusted gateway's SPIFFE ID, and a user header.
fn forged_xfcc_call(forward: &str) -> (Response, Value, Stack, String) {
    let config = json!({
        "dimensions": {"service_account": ["peer:spiffe_id"], "user": ["header:x-user-id"]},
        "require": [["user"], ["service_account"]],
        "header_trust": {"peers": ["spiffe://corp.example/ns/edge/sa/auth-gateway"]}
    });
    let stack = mtls_stack_forwarding(config, forward);
    let c = creds();
    let hash = c.pki.fingerprint(&c.multi.cert).unwrap();
    let forged = format!("Hash={hash};URI=https://example.org/first;URI=spiffe://corp.example/ns/edge/sa/auth-gateway");
    let (resp, log, id) = mtls_call(
        &stack,
        Some(&c.multi),
        &[
            ("x-forwarded-client-cert", &forged),
            ("x-user-id", "mallory"),
            ("x-ai-user", "mallory"),
        ],
    );
    (resp, log, stack, id)
}

#[test]
fn a_forged_xfcc_yields_no_identity_under_any_forwarding_mode() {
    for mode in ["SANITIZE_SET", "FORWARD_ONLY", "ALWAYS_FORWARD_ONLY", "APPEND_FORWARD"] {
        let (resp, log, _stack, _) = forged_xfcc_call(mode);
        assert_eq!(resp.status, 403, "{mode}: {}", resp.text());
        assert_eq!(log["service_account"], Value::Null, "{mode}");
        assert_eq!(log["user"], Value::Null, "{mode}");
        assert_eq!(log["reason"], "untrusted:user", "{mode}");
    }
}

#[test]
fn a_forged_xfcc_over_mtls_changes_nothing() {
    let stack = mtls_stack(json!({
        "dimensions": {"service_account": ["peer:spiffe_id"], "user": ["header:x-user-id"]},
        "require": [["user"], ["service_account"]],
        "header_trust": {"peers": ["spiffe://corp.example/ns/edge/sa/auth-gateway"]}
    }));
    let c = creds();
    let hash = c.pki.fingerprint(&c.billing.cert).unwrap();
    let forged = format!("Hash={hash};URI=spiffe://corp.example/ns/edge/sa/auth-gateway");
    // The billing client claims to be the trusted gateway through XFCC, and sends a user header.
    let (resp, log, id) = mtls_call(
        &stack,
        Some(&c.billing),
        &[
            ("x-forwarded-client-cert", &forged),
            ("x-user-id", "mallory"),
            ("x-ai-user", "mallory"),
        ],
    );
    assert_eq!(resp.status, 200, "attributed by its real SPIFFE ID");
    assert_eq!(log["service_account"], "spiffe://example.org/ns/team-a/sa/billing-bot");
    assert_eq!(log["user"], Value::Null);
    assert_eq!(log["reason"], "untrusted:user");
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        up.header("x-ai-user"),
        None,
        "an untrusted peer's x-ai-* headers are stripped"
    );
}

#[test]
fn header_sources_count_only_from_trusted_peers() {
    let config = json!({
        "dimensions": {"user": ["header:x-user-id"], "business_unit": ["header:x-ai-business-unit", "header:x-business-unit"]},
        "require": [["user", "business_unit"]],
        "header_trust": {"peers": ["spiffe://corp.example/ns/edge/sa/auth-gateway"]},
        "correlation": {"propagate": ["business_unit"]}
    });
    let stack = mtls_stack(config);
    let c = creds();
    let headers = [
        ("x-user-id", "alice"),
        ("x-business-unit", "finance"),
        ("x-ai-session", "first-hop"),
    ];
    let (resp, log, id) = mtls_call(&stack, Some(&c.gateway), &headers);
    assert_eq!(resp.status, 200);
    assert_eq!(log["user"], "alice");
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        up.header("x-ai-session"),
        Some("first-hop"),
        "a trusted peer's x-ai-* headers pass"
    );
    // A second hop reuses the first hop's attribution header.
    let (_, log, _) = mtls_call(
        &stack,
        Some(&c.gateway),
        &[("x-user-id", "alice"), ("x-ai-business-unit", "ops")],
    );
    assert_eq!(log["business_unit"], "ops");
    assert_eq!(
        log["sources"],
        "business_unit=header:x-ai-business-unit,user=header:x-user-id"
    );
    // Any other peer: the same headers are not used.
    let (resp, log, id) = mtls_call(&stack, Some(&c.billing), &headers);
    assert_eq!(resp.status, 403);
    assert_eq!(log["reason"], "untrusted:business_unit,user");
    assert_eq!(resp.json()["error"]["missing"], json!(["user", "business_unit"]));
    assert!(stack
        .server
        .received()
        .iter()
        .all(|r| r.header("x-request-id") != Some(id.as_str())));
}

#[test]
fn header_sources_over_plaintext_are_untrusted_when_peers_are_configured() {
    let stack = Stack::start(&json!({
        "dimensions": {"user": ["header:x-user-id"]},
        "require": [["user"]],
        "header_trust": {"peers": ["spiffe://corp.example/ns/edge/sa/auth-gateway"]}
    }))
    .unwrap();
    let (resp, log, _) = plain_call(
        &stack,
        &[
            ("x-user-id", "alice"),
            (
                "x-forwarded-client-cert",
                "URI=spiffe://corp.example/ns/edge/sa/auth-gateway",
            ),
        ],
    );
    assert_eq!(resp.status, 403);
    assert_eq!(log["reason"], "untrusted:user");
}

fn jwt_config(from: &str) -> Value {
    json!({
        "dimensions": {
            "user": ["jwt:sub", "header:x-user-id"], "app": ["jwt:azp"], "business_unit": ["jwt:org.business_unit"],
            "groups": ["jwt:groups"], "quota": ["jwt:quota"], "admin": ["jwt:admin"], "team": ["jwt:team"]
        },
        "require": [["user", "business_unit"]],
        "jwt": {"from": from}
    })
}

#[test]
fn verified_jwt_claims_from_jwt_authn() {
    let stack = jwt_stack(jwt_config("jwt_authn"));
    let token = creds().signer.sign(&claims(json!({}))).unwrap();
    let (resp, log, id) = plain_call(
        &stack,
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-user-id", "header-user"),
        ],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(log["user"], "user-123", "jwt:sub comes before header:x-user-id");
    assert_eq!(log["app"], "notebook-app");
    assert_eq!(log["business_unit"], "finance");
    assert_eq!(log["groups"], "ml,billing");
    assert_eq!(log["quota"], "42");
    assert_eq!(log["admin"], "false");
    assert_eq!(log["team"], Value::Null, "an object claim is invalid");
    assert_eq!(log["reason"], "invalid:team");
    assert!(!log["sources"].as_str().unwrap().contains("unverified"));
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        up.header("authorization"),
        None,
        "jwt_authn (forward: false) removed the token"
    );
}

#[test]
fn without_a_token_the_next_source_is_used() {
    let stack = jwt_stack(jwt_config("jwt_authn"));
    let (resp, log, _) = plain_call(&stack, &[("x-user-id", "header-user")]);
    assert_eq!(resp.status, 403);
    assert_eq!(log["user"], "header-user");
    assert_eq!(log["reason"], "missing:business_unit");
}

#[test]
fn a_jwt_signed_with_another_key_or_unsigned_attributes_nothing() {
    let stack = jwt_stack(jwt_config("jwt_authn"));
    let c = creds();
    let forged = c.other_signer.sign(&claims(json!({"sub": "ceo"}))).unwrap();
    let (resp, log, _) = plain_call(&stack, &[("authorization", &format!("Bearer {forged}"))]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(log["user"], Value::Null);
    assert_eq!(log["reason"], "missing:user,business_unit");
    assert_eq!(resp.json()["error"]["missing"], json!(["user", "business_unit"]));
    let unsigned = unsigned_jwt(&claims(json!({"sub": "ceo"})));
    let (resp, log, _) = plain_call(&stack, &[("authorization", &format!("Bearer {unsigned}"))]);
    assert_eq!(resp.status, 403);
    assert_eq!(log["user"], Value::Null);
    // A payload header forged by the client is not read in jwt_authn mode.
    let fake = integration::pki::b64url(claims(json!({"sub": "ceo"})).to_string().as_bytes());
    let (resp, log, _) = plain_call(&stack, &[("x-jwt-payload", &fake)]);
    assert_eq!(resp.status, 403);
    assert_eq!(log["user"], Value::Null);
}

#[test]
fn forwarded_payload_header_mode() {
    let stack = jwt_stack(jwt_config("header"));
    let token = creds().signer.sign(&claims(json!({"sub": "hdr-user"}))).unwrap();
    let (resp, log, _) = plain_call(&stack, &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(log["user"], "hdr-user");
    assert_eq!(log["business_unit"], "finance");
}

#[test]
fn bearer_unverified_values_count_only_when_the_operator_says_so() {
    let start = |extra: Value| {
        let mut config = jwt_config("bearer_unverified");
        config["jwt"] = json!({"from": "bearer_unverified"});
        if let Some(obj) = config["jwt"].as_object_mut() {
            if let Some(e) = extra.as_object() {
                obj.extend(e.clone());
            }
        }
        config["correlation"] = json!({"propagate": ["user"]});
        config["metrics"] = json!({"labels": ["provider", "user"]});
        Stack::start_with(config.to_string(), |b| {
            b.dimensions = ["user", "app", "business_unit"].map(String::from).to_vec();
        })
        .unwrap()
    };
    // Signed, but nobody checks the signature: recorded, marked, and not enough to attribute.
    let token = creds()
        .other_signer
        .sign(&claims(json!({"sub": "maybe-alice"})))
        .unwrap();
    let bearer = format!("Bearer {token}");
    let stack = start(json!({}));
    let (resp, log, _) = plain_call(&stack, &[("authorization", &bearer)]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(log["user"], "maybe-alice");
    assert_eq!(log["reason"], "invalid:team;unverified:user,business_unit");
    assert!(resp.text().contains("unverified"), "{}", resp.text());

    let stack = start(json!({"unverified_claims_satisfy_require": true}));
    let (resp, log, id) = plain_call(&stack, &[("authorization", &bearer)]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(log["user"], "maybe-alice");
    let sources = log["sources"].as_str().unwrap();
    assert!(sources.contains("user=jwt:sub(unverified)"), "{sources}");
    assert!(
        sources.contains("business_unit=jwt:org.business_unit(unverified)"),
        "{sources}"
    );
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(5))
        .unwrap();
    assert_eq!(up.header("x-ai-user"), None, "unverified values are not propagated");
    assert_eq!(up.header("authorization"), None, "the caller's token stays at this hop");
    let metrics = stack
        .envoy
        .admin("/stats?filter=ai_attribution_requests_total")
        .unwrap();
    assert!(metrics.contains("user=unverified"), "{metrics}");
    assert!(!metrics.contains("maybe-alice"), "{metrics}");

    // An unsigned token (alg: none) yields nothing, even then.
    let unsigned = unsigned_jwt(&claims(json!({"sub": "ceo"})));
    let (resp, log, _) = plain_call(&stack, &[("authorization", &format!("Bearer {unsigned}"))]);
    assert_eq!(resp.status, 403);
    assert_eq!(log["user"], Value::Null);
}

#[test]
fn oversized_and_control_character_claims_are_invalid() {
    let stack = jwt_stack(jwt_config("jwt_authn"));
    let token = creds()
        .signer
        .sign(&claims(
            json!({"sub": "x".repeat(300), "org": {"business_unit": "fin\u{1}ance"}}),
        ))
        .unwrap();
    let (resp, log, _) = plain_call(&stack, &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(resp.status, 403);
    assert_eq!(log["reason"], "invalid:business_unit,team,user");
}

const RAW_KEY: &str = "sk-test-0123456789abcdefSECRET";

#[test]
fn api_keys_are_fingerprinted_never_logged() {
    let fp = ai_attribution::identity::api_key::fingerprint(RAW_KEY);
    let full = format!("sha256:{}", ai_attribution::identity::api_key::sha256_hex(RAW_KEY));
    let stack = Stack::start_with(
        json!({
            "dimensions": {"service_account": ["api_key:service_account"], "business_unit": ["api_key:business_unit"], "app": ["api_key:fingerprint"]},
            "require": [["service_account", "business_unit"]],
            "api_keys": {"owners": {full: {"service_account": "batch-summarizer", "business_unit": "finance"}}},
            "correlation": {"propagate": ["service_account", "app"]}
        })
        .to_string(),
        |b| b.dimensions = ["service_account", "business_unit", "app"].map(String::from).to_vec(),
    )
    .unwrap();
    // Each provider's own key header: OpenAI's authorization, Anthropic's x-api-key, Azure's api-key.
    for (path, header) in [
        ("/v1/chat/completions", ("authorization", format!("Bearer {RAW_KEY}"))),
        ("/v1/messages", ("x-api-key", RAW_KEY.to_string())),
        (
            "/openai/deployments/gpt4o/chat/completions",
            ("api-key", RAW_KEY.to_string()),
        ),
    ] {
        let (resp, log, id) = call_at(&stack, path, &[(header.0, &header.1)]);
        assert_eq!(resp.status, 200, "{header:?}: {}", resp.text());
        assert_eq!(log["service_account"], "batch-summarizer");
        assert_eq!(log["business_unit"], "finance");
        assert_eq!(log["app"], fp.as_str());
        let up = stack
            .server
            .wait_for("x-request-id", &id, Duration::from_secs(5))
            .unwrap();
        assert_eq!(up.header("x-ai-app"), Some(fp.as_str()));
        for (name, value) in &up.headers {
            if name.starts_with("x-ai-") {
                assert!(!value.contains(RAW_KEY), "{name} carries the key");
            }
        }
    }
    // A key in a header the provider does not read is not the call's key.
    let (resp, _, _) = plain_call(&stack, &[("x-api-key", RAW_KEY)]);
    assert_eq!(resp.status, 403);
    // An unknown key: rejected, and the error body names no key.
    let unknown = "sk-unknown-key-SECRET2";
    let (resp, log, _) = plain_call(&stack, &[("authorization", &format!("Bearer {unknown}"))]);
    assert_eq!(resp.status, 403);
    assert!(
        !resp.text().contains(unknown) && !resp.text().contains("SECRET"),
        "{}",
        resp.text()
    );
    assert_eq!(log["reason"], "missing:service_account,business_unit");
    std::thread::sleep(Duration::from_millis(200));
    let access_log = std::fs::read_to_string(&stack.access_log).unwrap();
    assert!(!access_log.contains("SECRET"), "the access log carries a raw key");
    assert!(!stack.envoy.log().contains("SECRET"), "Envoy's log carries a raw key");
}
