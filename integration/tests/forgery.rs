//! Forged identities through a real Envoy: what a caller sends to be recorded as someone else,
//! or to choose the IDs that tie records together. A two-hop setup (an edge Envoy with the
//! filter, then a gateway Envoy with the filter that trusts the edge's SPIFFE ID over mTLS);
//! two API keys whose display fingerprints collide; several keys on one call; duplicate request
//! IDs; and the smaller leaks (header sources without trust, baggage, `x_ai_*`, invisible
//! characters, keys in the query, forwarded tokens). No forged identity may be recorded.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use ai_attribution::identity::api_key::{fingerprint, sha256_hex};
use integration::bootstrap::Bootstrap;
use integration::envoy::{Envoy, TempDir};
use integration::http::{Request, Response};
use integration::pki::{b64url, mtls_send, CertPair, Pki};
use integration::{log_lines, request_id, Stack};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const EDGE_ID: &str = "spiffe://corp.example/ns/edge/sa/edge-proxy";
const ALICE_KEY: &str = "sk-forgery-alice-key-0001";

struct Creds {
    _dir: TempDir,
    pki: Pki,
    gateway: CertPair,
    edge: CertPair,
    rogue: CertPair,
}

fn creds() -> &'static Creds {
    static CREDS: OnceLock<Creds> = OnceLock::new();
    CREDS.get_or_init(|| {
        let dir = TempDir::for_binary("forgery-pki").unwrap();
        let pki = Pki::new(dir.path()).unwrap();
        let gateway = pki
            .issue(
                "gateway",
                "/CN=localhost",
                "DNS:localhost,URI:spiffe://corp.example/ns/gw/sa/ai-gateway",
                "serverAuth",
            )
            .unwrap();
        let edge = pki
            .issue("edge", "/CN=edge-proxy", &format!("URI:{EDGE_ID}"), "clientAuth")
            .unwrap();
        let rogue = pki
            .issue(
                "rogue",
                "/CN=rogue",
                "URI:spiffe://corp.example/ns/apps/sa/rogue",
                "clientAuth",
            )
            .unwrap();
        Creds {
            _dir: dir,
            pki,
            gateway,
            edge,
            rogue,
        }
    })
}

/// The access-log line of a request.
fn log_of(stack: &Stack, id: &str) -> Value {
    lines_for(&stack.access_log, id, 1)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no access-log line for {id}:\n{}", stack.envoy.log()))
}

fn owner_key(key: &str) -> String {
    format!("sha256:{}", sha256_hex(key))
}

/// Waits (up to 20 s: the machine may be busy) for every access-log line of a request ID (`n` of
/// them, or what there is).
fn lines_for(path: &std::path::Path, id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines: Vec<Value> = log_lines(path).into_iter().filter(|l| l["request_id"] == id).collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An edge Envoy with the filter, in front of a gateway Envoy with the filter that trusts the
/// edge's SPIFFE ID, in front of the model server.
struct TwoHops {
    gateway: Stack,
    edge: Envoy,
    edge_port: u16,
    edge_log: PathBuf,
    _dir: TempDir,
}

impl TwoHops {
    fn start() -> TwoHops {
        let c = creds();
        let gateway_config = json!({
            "dimensions": {"user": ["header:x-ai-user"]},
            "require": [["user"]],
            "header_trust": {"peers": [EDGE_ID]}
        });
        let gateway = Stack::start_with(gateway_config.to_string(), |b: &mut Bootstrap| {
            b.transport_socket = Some(json!({
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                    "require_client_certificate": true,
                    "common_tls_context": {
                        "tls_certificates": [{"certificate_chain": {"filename": c.gateway.cert}, "private_key": {"filename": c.gateway.key}}],
                        "validation_context": {"trusted_ca": {"filename": c.pki.ca()}}
                    }
                }
            }));
        })
        .unwrap();
        let edge_config = json!({
            "dimensions": {"user": ["api_key:user"]},
            "require": [["user"]],
            "api_keys": {"owners": {owner_key(ALICE_KEY): {"user": "alice"}}},
            "correlation": {"propagate": ["user"]},
            "model_calls": {"hosts": ["api.openai.com"]}
        });
        let dir = TempDir::new("edge").unwrap();
        let edge_log = dir.path().join("access.log");
        let mut b = Bootstrap::new(gateway.port, edge_config.to_string(), edge_log.clone());
        // A route the edge forwards without recognising it: the gateway sees a model path.
        b.routes = Some(json!([
            {"match": {"prefix": "/internal/gpt"}, "route": {"cluster": "model_server", "prefix_rewrite": "/v1/chat/completions", "timeout": "60s"}},
            {"match": {"prefix": "/"}, "route": {"cluster": "model_server", "timeout": "60s"}}
        ]));
        b.upstream_transport_socket = Some(json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": "localhost",
                "common_tls_context": {
                    "tls_certificates": [{"certificate_chain": {"filename": c.edge.cert}, "private_key": {"filename": c.edge.key}}],
                    "validation_context": {"trusted_ca": {"filename": c.pki.ca()}}
                }
            }
        }));
        let edge = Envoy::start(&b.to_json(), b.admin_port).unwrap();
        TwoHops {
            gateway,
            edge,
            edge_port: b.listen_port,
            edge_log,
            _dir: dir,
        }
    }

    /// Sends through the edge; returns the response and the edge's and the gateway's lines.
    fn send(&self, req: Request) -> (Response, Vec<Value>, Vec<Value>, String) {
        let id = request_id("hops");
        let resp = integration::http::send(self.edge_port, &req.header("x-request-id", &id)).unwrap();
        let edge = lines_for(&self.edge_log, &id, 1);
        let gateway = lines_for(&self.gateway.access_log, &id, 1);
        (resp, edge, gateway, id)
    }
}

impl Drop for TwoHops {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- edge envoy log -----\n{}", self.edge.log());
        }
    }
}

fn chat(path: &str) -> Request {
    Request::post(path)
        .host("api.openai.com")
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
}

/// What a client adds to claim another identity and to choose its correlation ID.
fn forged(req: Request) -> Request {
    req.header("x-ai-user", "ceo")
        .header("x_ai_user", "ceo")
        .header("X-AI-Correlation-Id", "chosen-by-client")
        .header("baggage", "ai.user=ceo,k=v")
}

#[test]
fn two_hops_record_the_edge_identity_and_one_correlation_id() {
    let hops = TwoHops::start();
    let (resp, edge, gateway, id) =
        hops.send(forged(chat("/v1/chat/completions")).header("authorization", &format!("Bearer {ALICE_KEY}")));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(edge.len(), 1);
    assert_eq!(gateway.len(), 1);
    let (e, g) = (&edge[0], &gateway[0]);
    assert_eq!(e["decision"], "attributed");
    assert_eq!(e["user"], "alice");
    assert_eq!(g["decision"], "attributed");
    assert_eq!(g["user"], "alice", "the gateway records what the edge attributed");
    assert_eq!(g["sources"], "user=header:x-ai-user");
    assert!(e["correlation_id"].is_string());
    assert_eq!(
        e["correlation_id"], g["correlation_id"],
        "one correlation ID across the hops"
    );
    assert_ne!(e["correlation_id"], "chosen-by-client");
    assert_ne!(e["correlation_id"], id.as_str());
    let up = hops
        .gateway
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(20))
        .unwrap();
    assert_eq!(up.header_all("x-ai-user"), vec!["alice"]);
    assert_eq!(up.header("x_ai_user"), None);
    assert_eq!(up.header_all("baggage"), vec!["k=v"], "the forged member is gone");
    assert_eq!(up.header("x-ai-correlation-id"), e["correlation_id"].as_str());
}

#[test]
fn a_forged_user_never_crosses_a_hop_the_edge_does_not_recognise() {
    let hops = TwoHops::start();
    // A path the edge rewrites, a host the edge does not list, a spelling of the header that
    // upstream servers read as the same name: the edge sees no model call, still strips.
    for (label, req) in [
        ("rewritten path", forged(chat("/internal/gpt"))),
        (
            "unlisted host",
            forged(chat("/v1/chat/completions").host("gateway.internal")),
        ),
        (
            "upper case and underscores",
            chat("/internal/gpt")
                .header("X-AI-USER", "ceo")
                .header("X_AI_USER", "ceo")
                .header("x-ai-service-account", "ceo")
                .header("baggage", "AI.USER=ceo")
                .header("baggage", "Ai.User=ceo, k=v"),
        ),
    ] {
        let (resp, edge, gateway, id) = hops.send(req);
        assert_eq!(edge.len(), 1, "{label}");
        assert!(edge[0]["decision"].is_null(), "{label}: the edge saw no model call");
        assert_eq!(gateway.len(), 1, "{label}: the gateway saw the call");
        let g = &gateway[0];
        assert_eq!(resp.status, 403, "{label}: {}", resp.text());
        assert_eq!(g["decision"], "rejected", "{label}");
        assert_eq!(g["user"], Value::Null, "{label}: a forged user recorded at hop 2");
        assert_eq!(g["reason"], "missing:user", "{label}");
        assert_ne!(g["correlation_id"], "chosen-by-client", "{label}");
        assert!(
            hops.gateway
                .server
                .wait_for("x-request-id", &id, Duration::from_millis(200))
                .is_none(),
            "{label}: the model server got an unattributed call"
        );
    }
}

/// Fixed bug, kept as a guard: at a hop that trusts its peer, the correlation ID falls back to the request's
/// `x-request-id` when the peer sent no `x-ai-correlation-id`. A trusted edge strips
/// `x-ai-correlation-id` from its callers but passes their `x-request-id` on (Envoy keeps it
/// unless `use_remote_address` and an external caller make it generate one), so on a route the
/// edge does not recognise the caller chooses the gateway's correlation ID, and two callers can
/// give two calls the same one. Expected: a new ID when the trusted peer sent no correlation
/// header (the peer's own `x-ai-correlation-id` is what carries the first hop's ID).
#[test]
fn a_caller_cannot_choose_the_correlation_id_through_a_trusted_edge() {
    let hops = TwoHops::start();
    let chosen = request_id("chosen-by-caller");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let req = chat("/internal/gpt").header("x-request-id", &chosen);
        let resp = integration::http::send(hops.edge_port, &req).unwrap();
        assert_eq!(resp.status, 403);
    }
    let gateway = lines_for(&hops.gateway.access_log, &chosen, 2);
    assert_eq!(gateway.len(), 2);
    for g in &gateway {
        assert_eq!(g["decision"], "rejected");
        ids.push(g["correlation_id"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], chosen, "the caller chose the gateway's correlation ID");
    assert_ne!(ids[0], ids[1], "two calls share a correlation ID");
}

/// A client that talks to the gateway directly, with a certificate of its own, is not the edge.
#[test]
fn a_direct_caller_with_another_certificate_is_not_trusted() {
    let hops = TwoHops::start();
    let c = creds();
    let id = request_id("direct");
    let req = forged(chat("/v1/chat/completions")).header("x-request-id", &id);
    let resp = mtls_send(hops.gateway.port, &c.pki.ca(), Some(&c.rogue), &req).unwrap();
    assert_eq!(resp.status, 403, "{}", resp.text());
    let g = log_of(&hops.gateway, &id);
    assert_eq!(g["user"], Value::Null);
    assert_eq!(g["reason"], "untrusted:user");
    assert_ne!(g["correlation_id"], "chosen-by-client");
    assert_ne!(g["correlation_id"], id.as_str());
}

/// Two different keys whose SHA-256 share their first 48 bits (the display fingerprint): found
/// by a birthday search over `sk-collide-<n>` (about 2^24 hashes), hard-coded here.
const COLLIDING: [&str; 2] = ["sk-collide-18518290", "sk-collide-24888737"];

#[test]
fn a_key_whose_fingerprint_collides_is_not_the_owners() {
    let [owned, other] = COLLIDING;
    assert_eq!(
        fingerprint(owned),
        fingerprint(other),
        "the pair collides on the display fingerprint"
    );
    assert_eq!(fingerprint(owned), "sha256:c95e7f6cb847");
    assert_ne!(sha256_hex(owned), sha256_hex(other));
    let stack = Stack::start_with(
        json!({
            "dimensions": {"service_account": ["api_key:service_account"], "app": ["api_key:fingerprint"]},
            "require": [["service_account"]],
            "api_keys": {"owners": {owner_key(owned): {"service_account": "alpha-owner"}}}
        })
        .to_string(),
        |b| b.dimensions = ["service_account", "app"].map(String::from).to_vec(),
    )
    .unwrap();
    let call = |key: &str| {
        let id = request_id("collide");
        let resp = stack
            .send(
                &chat("/v1/chat/completions")
                    .header("authorization", &format!("Bearer {key}"))
                    .header("x-request-id", &id),
            )
            .unwrap();
        (resp, log_of(&stack, &id), id)
    };
    let (resp, log, _) = call(owned);
    assert_eq!(resp.status, 200);
    assert_eq!(log["service_account"], "alpha-owner");
    let (resp, log, id) = call(other);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(
        log["service_account"],
        Value::Null,
        "the other key got the owner's identity"
    );
    assert_eq!(log["app"], "sha256:c95e7f6cb847", "the display fingerprint is the same");
    assert_eq!(log["reason"], "missing:service_account");
    assert!(stack
        .server
        .wait_for("x-request-id", &id, Duration::from_millis(200))
        .is_none());
}

const JUNK: &str = "sk-junk-shared-demo-key";
const REAL: &str = "sk-real-callers-own-key";

fn keys_stack() -> Stack {
    Stack::start_with(
        json!({
            "dimensions": {"service_account": ["api_key:service_account"]},
            "require": [["service_account"]],
            "api_keys": {"owners": {
                owner_key(JUNK): {"service_account": "junk-owner"},
                owner_key(REAL): {"service_account": "real-owner"}
            }}
        })
        .to_string(),
        |b| {
            b.hcm_extra.insert("codec_type".into(), json!("AUTO"));
        },
    )
    .unwrap()
}

fn key_call(stack: &Stack, req: Request) -> (u16, Value, bool) {
    let id = request_id("keys");
    let resp = stack.send(&req.header("x-request-id", &id)).unwrap();
    let log = log_of(stack, &id);
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_millis(200))
        .is_some();
    (resp.status, log, up)
}

fn body() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

#[test]
fn several_keys_on_one_call_are_invalid_never_the_junk_owners() {
    let stack = keys_stack();
    let junk_bearer = format!("Bearer {JUNK}");
    // Anthropic reads x-api-key, then authorization: two different keys are invalid.
    let (status, log, up) = key_call(
        &stack,
        Request::post("/v1/messages")
            .json(&body())
            .header("authorization", &junk_bearer)
            .header("x-api-key", REAL),
    );
    assert_eq!(status, 403);
    assert_eq!(log["reason"], "invalid:service_account");
    assert_eq!(log["service_account"], Value::Null);
    assert!(!up);
    // Azure: api-key then authorization.
    let (_, log, up) = key_call(
        &stack,
        Request::post("/openai/deployments/d/chat/completions")
            .json(&body())
            .header("authorization", &junk_bearer)
            .header("api-key", REAL),
    );
    assert_eq!(log["reason"], "invalid:service_account");
    assert!(!up);
    // Gemini: x-goog-api-key and ?key=.
    let (_, log, up) = key_call(
        &stack,
        Request::post(&format!("/v1beta/models/gemini-2.0-flash:generateContent?key={JUNK}"))
            .json(&body())
            .header("x-goog-api-key", REAL),
    );
    assert_eq!(log["reason"], "invalid:service_account");
    assert!(!up);
    // On an OpenAI path the provider checks `authorization` alone: that is the call's key, and
    // the x-api-key header is nothing the provider reads.
    let (status, log, up) = key_call(
        &stack,
        Request::post("/v1/chat/completions")
            .json(&body())
            .header("authorization", &junk_bearer)
            .header("x-api-key", REAL),
    );
    assert_eq!(status, 200);
    assert_eq!(log["service_account"], "junk-owner");
    assert!(up);
    // The same header twice with two keys: never one of them.
    let (status, log, up) = key_call(
        &stack,
        Request::post("/v1/chat/completions")
            .json(&body())
            .header("authorization", &junk_bearer)
            .header("authorization", &format!("Bearer {REAL}")),
    );
    assert_eq!(status, 403, "{log}");
    assert_eq!(log["service_account"], Value::Null);
    assert!(!up);
}

/// Fixed bug, kept as a guard: Gemini's `?key=` given twice with two different keys. The filter reads the
/// first `key` parameter only, so `?key=<junk>&key=<real>` is attributed to the junk key's
/// owner whatever key the provider then checks. Two different keys in one header are refused
/// as ambiguous, and so should two different `key` parameters be. Expected: `invalid`.
#[test]
fn two_query_keys_are_as_ambiguous_as_two_key_headers() {
    let stack = keys_stack();
    let (status, log, up) = key_call(
        &stack,
        Request::post(&format!(
            "/v1beta/models/gemini-2.0-flash:generateContent?key={JUNK}&key={REAL}"
        ))
        .json(&body()),
    );
    assert_ne!(
        log["service_account"], "junk-owner",
        "attributed to the first key's owner"
    );
    assert_eq!(status, 403);
    assert_eq!(log["reason"], "invalid:service_account");
    assert!(!up);
}

/// Fixed bug, kept as a guard: a `:path` that is not UTF-8 hides Gemini's `?key=`. The filter reads the query
/// key only from a `:path` that is valid UTF-8 (the path itself it reads lossily), so over
/// HTTP/2 `x-goog-api-key: <junk>` with `?key=<real>&x=\xff` is attributed to the junk key's
/// owner with no conflict seen. Expected: the query read lossily as the path is, the two keys
/// found, and the call `invalid`.
#[test]
fn a_path_that_is_not_utf8_does_not_hide_a_query_key() {
    let stack = keys_stack();
    let id = request_id("keys");
    let mut target = format!("/v1beta/models/gemini-2.0-flash:generateContent?key={REAL}&x=").into_bytes();
    target.push(0xff);
    let req = Request::post("/")
        .raw_target(&target)
        .json(&body())
        .header("x-goog-api-key", JUNK)
        .header("x-request-id", &id);
    let resp = stack.send_h2(&req).unwrap();
    let log = log_of(&stack, &id);
    assert_ne!(
        log["service_account"], "junk-owner",
        "attributed to the header key's owner (status {:?})",
        resp.status
    );
    assert_eq!(log["reason"], "invalid:service_account");
}

#[test]
fn duplicate_request_ids_from_two_callers_get_two_correlation_ids() {
    let stack = keys_stack();
    let shared = request_id("shared-by-two-callers");
    for key in [JUNK, REAL] {
        let resp = stack
            .send(
                &chat("/v1/chat/completions")
                    .header("authorization", &format!("Bearer {key}"))
                    .header("x-request-id", &shared),
            )
            .unwrap();
        assert_eq!(resp.status, 200);
    }
    let lines = lines_for(&stack.access_log, &shared, 2);
    assert_eq!(lines.len(), 2);
    let owners: Vec<&Value> = lines.iter().map(|l| &l["service_account"]).collect();
    assert!(owners.contains(&&json!("junk-owner")) && owners.contains(&&json!("real-owner")));
    for l in &lines {
        assert_eq!(l["request_id"], shared.as_str(), "recorded as request_id");
        assert_eq!(l["record"]["value"]["ai_attribution.request_id"], shared.as_str());
        assert_ne!(
            l["correlation_id"],
            shared.as_str(),
            "a caller never chooses its correlation ID"
        );
    }
    assert_ne!(lines[0]["correlation_id"], lines[1]["correlation_id"]);
    // Each upstream request carries its own correlation ID.
    let up: Vec<String> = stack
        .server
        .received()
        .iter()
        .filter(|r| r.header("x-request-id") == Some(shared.as_str()))
        .filter_map(|r| r.header("x-ai-correlation-id").map(str::to_string))
        .collect();
    assert_eq!(up.len(), 2);
    assert_ne!(up[0], up[1]);
}

/// A stack whose header sources need a trusted peer, reached over plain TCP (no peer at all).
fn untrusted_stack(dimensions: Value, jwt: Value) -> Stack {
    Stack::start(&json!({
        "dimensions": dimensions,
        "require": [["user"]],
        "header_trust": {"peers": [EDGE_ID]},
        "jwt": jwt
    }))
    .unwrap()
}

#[test]
fn request_properties_obey_header_trust() {
    let stack = untrusted_stack(
        json!({"user": ["property:request.headers.x-user"], "app": ["property:request.path"], "session": ["property:request.host"]}),
        json!({}),
    );
    let id = request_id("prop");
    let resp = stack
        .send(
            &chat("/v1/chat/completions")
                .header("x-user", "ceo")
                .header("x-request-id", &id),
        )
        .unwrap();
    assert_eq!(resp.status, 403);
    let log = log_of(&stack, &id);
    assert_eq!(log["user"], Value::Null);
    assert_eq!(log["app"], Value::Null);
    assert_eq!(log["session"], Value::Null);
    assert_eq!(log["reason"], "untrusted:app,session,user");
}

#[test]
fn spoofable_headers_and_baggage_are_stripped_on_every_request() {
    let stack = Stack::start(&json!({
        "dimensions": {"user": ["header:x-user-id"]},
        "require": [["user"]]
    }))
    .unwrap();
    for path in ["/v1/chat/completions", "/not/a/model/call"] {
        let id = request_id("strip");
        let resp = stack
            .send(
                &chat(path)
                    .header("x-user-id", "alice")
                    .header("x_ai_user", "ceo")
                    .header("X-Ai-Business-Unit", "exec")
                    .header("x_AI_session", "s")
                    .header("baggage", "ai.user=ceo,k=v")
                    .header("baggage", "AI.USER=ceo, Ai.User=cfo ;p=1, k2=v2")
                    .header("x-request-id", &id),
            )
            .unwrap();
        assert!(resp.status == 200 || resp.status == 404, "{path}: {}", resp.status);
        let up = stack
            .server
            .wait_for("x-request-id", &id, Duration::from_secs(20))
            .unwrap();
        for (name, value) in &up.headers {
            let n = name.replace('_', "-");
            assert!(
                !n.starts_with("x-ai-") || (path.starts_with("/v1") && n == "x-ai-correlation-id"),
                "{path}: {name}: {value} reached the upstream"
            );
        }
        assert_eq!(up.header_all("baggage"), vec!["k=v,k2=v2"], "{path}");
    }
}

#[test]
fn invisible_characters_are_invalid_and_never_written_raw() {
    let stack = Stack::start(&json!({
        "dimensions": {"user": ["header:x-user-id"]},
        "require": [["user"]],
        "metrics": {"labels": ["provider", "user"]}
    }))
    .unwrap();
    let tricks = [
        "ali\u{200b}ce",         // zero-width space
        "ecnal\u{202e}ab",       // right-to-left override
        "al\u{2066}ice\u{2069}", // isolates
        "\u{feff}alice",         // byte order mark
        "ali\u{2028}ce",         // line separator
        "ali\u{2029}ce",         // paragraph separator
        "ali\u{200d}ce",         // zero-width joiner
    ];
    for value in tricks {
        let id = request_id("invisible");
        let resp = stack
            .send(
                &chat("/v1/chat/completions")
                    .header("x-user-id", value)
                    .header("x-request-id", &id),
            )
            .unwrap();
        let log = log_of(&stack, &id);
        assert_eq!(resp.status, 403, "{value:?}");
        assert_eq!(log["reason"], "invalid:user", "{value:?}");
        assert_eq!(log["user"], Value::Null, "{value:?}");
    }
    std::thread::sleep(Duration::from_millis(200));
    let access_log = std::fs::read(&stack.access_log).unwrap();
    let envoy_log = stack.envoy.log();
    let stats = stack.envoy.admin("/stats").unwrap();
    for value in tricks {
        let ch: String = value.chars().filter(|c| !c.is_ascii()).collect();
        let bytes = ch.as_bytes();
        assert!(
            !access_log.windows(bytes.len()).any(|w| w == bytes),
            "{value:?} in the access log"
        );
        assert!(!envoy_log.contains(&ch), "{value:?} in Envoy's log");
        assert!(!stats.contains(&ch), "{value:?} in a metric");
    }
}

#[test]
fn a_query_key_never_lands_in_the_access_log() {
    let secret = "AIzaSyFORGERYsecretKEY0123456789";
    let stack = Stack::start(&json!({
        "dimensions": {"service_account": ["api_key:service_account"], "app": ["api_key:fingerprint"]},
        "require": [["service_account"]],
        "api_keys": {"owners": {owner_key(secret): {"service_account": "gemini-batch"}}}
    }))
    .unwrap();
    let id = request_id("qkey");
    let resp = stack
        .send(
            &Request::post(&format!(
                "/v1beta/models/gemini-2.0-flash:generateContent?alt=sse&key={secret}"
            ))
            .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
            .header("x-request-id", &id),
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let log = log_of(&stack, &id);
    assert_eq!(log["service_account"], "gemini-batch");
    assert_eq!(log["path"], "/v1beta/models/gemini-2.0-flash:generateContent");
    std::thread::sleep(Duration::from_millis(200));
    let access_log = std::fs::read_to_string(&stack.access_log).unwrap();
    assert!(!access_log.contains(secret), "the access log carries the key");
    assert!(!access_log.contains("FORGERYsecret"));
    assert!(
        !stack.envoy.log().contains("FORGERYsecret"),
        "Envoy's log carries the key"
    );
}

#[test]
fn a_payload_header_is_not_forwarded_and_needs_trust() {
    let claims = b64url(json!({"sub": "hdr-user"}).to_string().as_bytes());
    // Without header_trust: read, then removed before the upstream.
    let stack = Stack::start(&json!({
        "dimensions": {"user": ["jwt:sub"]},
        "require": [["user"]],
        "jwt": {"from": "header"}
    }))
    .unwrap();
    let id = request_id("jwt-header");
    let resp = stack
        .send(
            &chat("/v1/chat/completions")
                .header("x-jwt-payload", &claims)
                .header("x-request-id", &id),
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(log_of(&stack, &id)["user"], "hdr-user");
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(20))
        .unwrap();
    assert_eq!(up.header("x-jwt-payload"), None, "the payload header went on upstream");
    // With header_trust and no trusted peer: the payload header is the caller's, not a token.
    let stack = untrusted_stack(json!({"user": ["jwt:sub"]}), json!({"from": "header"}));
    let id = request_id("jwt-header");
    let resp = stack
        .send(
            &chat("/v1/chat/completions")
                .header("x-jwt-payload", &claims)
                .header("x-request-id", &id),
        )
        .unwrap();
    assert_eq!(resp.status, 403);
    let log = log_of(&stack, &id);
    assert_eq!(log["user"], Value::Null);
    assert_eq!(log["reason"], "untrusted:user");
}

/// A limit, not a bug: a SigV4 access key ID is no secret, and the filter cannot check the
/// signature, so a call that names someone's access key ID is recorded under that ID's owner.
/// Only the provider's own check stops it (the record's `status` shows Bedrock's 403); the
/// model server here checks nothing and answers.
#[test]
fn a_sigv4_access_key_id_names_an_owner_but_proves_nothing() {
    let access_key = "AKIAFORGERYEXAMPLE01";
    let stack = Stack::start(&json!({
        "dimensions": {"service_account": ["api_key:service_account"]},
        "require": [["service_account"]],
        "api_keys": {"owners": {owner_key(access_key): {"service_account": "bedrock-batch"}}}
    }))
    .unwrap();
    let id = request_id("sigv4");
    let forged = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
        "0".repeat(64)
    );
    let resp = stack
        .send(
            &Request::post("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
                .json(&json!({"messages": []}))
                .header("authorization", &forged)
                .header("x-request-id", &id),
        )
        .unwrap();
    assert_eq!(resp.status, 200);
    let log = log_of(&stack, &id);
    assert_eq!(log["service_account"], "bedrock-batch");
    assert_eq!(log["sources"], "service_account=api_key:service_account");
}

/// Fixed bug, kept as a guard: characters that render as nothing but are not format characters (Cf) pass
/// as valid identity values and are written raw: variation selectors (U+FE0F, U+E0100), the
/// combining grapheme joiner (U+034F), Hangul fillers (U+115F, U+3164, U+FFA0) and the braille
/// blank (U+2800). `alice` followed by one of them is a different identity that reads as `alice`
/// in a log viewer. Expected: `invalid`, as for U+200B.
#[test]
fn invisible_characters_outside_the_format_category_are_invalid_too() {
    let stack = Stack::start(&json!({
        "dimensions": {"user": ["header:x-user-id"]},
        "require": [["user"]]
    }))
    .unwrap();
    let mut accepted = Vec::new();
    for value in [
        "alice\u{fe0f}",
        "alice\u{e0100}",
        "ali\u{034f}ce",
        "\u{115f}alice",
        "alice\u{3164}",
        "alice\u{ffa0}",
        "alice\u{2800}",
    ] {
        let id = request_id("invisible2");
        let resp = stack
            .send(
                &chat("/v1/chat/completions")
                    .header("x-user-id", value)
                    .header("x-request-id", &id),
            )
            .unwrap();
        let log = log_of(&stack, &id);
        if resp.status != 403 || log["reason"] != "invalid:user" {
            accepted.push(format!(
                "{value:?}: status {}, user {}, reason {}",
                resp.status, log["user"], log["reason"]
            ));
        }
    }
    assert!(accepted.is_empty(), "accepted as identities:\n{}", accepted.join("\n"));
}

/// What the caller picks in the TLS handshake, read through `property:connection.*`: the server
/// name (SNI) is the client's word as much as a header is, and `header_trust` covers only
/// `request.*` attributes. A guard: an untrusted client's SNI is never recorded as its identity
/// (Envoy 1.40 gives the filter no value for it here, so the call is `missing:user`).
#[test]
fn a_client_chosen_tls_server_name_is_never_an_identity() {
    let c = creds();
    let stack = Stack::start_with(
        json!({
            "dimensions": {"user": ["property:connection.requested_server_name"]},
            "require": [["user"]],
            "header_trust": {"peers": [EDGE_ID]}
        })
        .to_string(),
        |b: &mut Bootstrap| {
            b.transport_socket = Some(json!({
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                    "require_client_certificate": true,
                    "common_tls_context": {
                        "tls_certificates": [{"certificate_chain": {"filename": c.gateway.cert}, "private_key": {"filename": c.gateway.key}}],
                        "validation_context": {"trusted_ca": {"filename": c.pki.ca()}}
                    }
                }
            }));
        },
    )
    .unwrap();
    let id = request_id("sni");
    let req = chat("/v1/chat/completions").header("x-request-id", &id);
    let resp = integration::pki::tls_send(stack.port, &c.pki.ca(), Some(&c.rogue), "ceo.corp.example", &req).unwrap();
    let log = log_of(&stack, &id);
    assert_ne!(
        log["user"], "ceo.corp.example",
        "the caller's SNI recorded as its identity (status {})",
        resp.status
    );
    assert_eq!(log["decision"], "rejected");
    assert_eq!(resp.status, 403);
}
