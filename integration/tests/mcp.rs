//! Agent tool calls (MCP over Streamable HTTP) through a real Envoy with the filter: starts a stack
//! whose model server also serves the MCP endpoint, then runs the pytest suite in
//! `integration/mcp/` (the official `mcp` SDK, in the pinned virtualenv `.venv-sdk/` that
//! `make test` or `make sdk-venv` creates) against it, plus raw requests whose upstream side only
//! the harness can see. Envoy's log is printed when a test fails.
//!
//! `MCP_PYTEST_ARGS` passes extra arguments to pytest (split on spaces, e.g. `-x -v`), and
//! `MCP_PYTEST_K` a `-k` expression.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::bootstrap::Bootstrap;
use integration::envoy::TempDir;
use integration::http::{Request, Response};
use integration::pki::{CertPair, Pki};
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::time::Duration;

/// The client certificate's SPIFFE ID in the mTLS run.
const SPIFFE_ID: &str = "spiffe://example.org/ns/agents/sa/weather-agent";

/// The plugin configuration the attribution expectations are written against.
fn mcp_config(header_mismatch: &str) -> Value {
    json!({
        "dimensions": {
            "service_account": ["peer:spiffe_id", "header:x-service-account"],
            "session": ["mcp:session"],
            "user": ["header:x-user-id"]
        },
        "require": [["user"], ["service_account"]],
        "mcp": {
            "endpoints": [{"path_prefix": "/mcp"}],
            "require": [["service_account", "session"], ["service_account"]],
            "methods": ["tools/call", "resources/read", "prompts/get"],
            "header_mismatch": header_mismatch
        }
    })
}

/// A configuration without an `mcp` block: MCP requests are not model calls and pass untouched.
fn plain_config() -> Value {
    json!({
        "dimensions": {"user": ["header:x-user-id"], "service_account": ["header:x-service-account"]},
        "require": [["user"], ["service_account"]]
    })
}

/// Runs `pytest integration/mcp -m <marker>` against the stack (at `base_url`).
fn pytest(stack: &Stack, marker: &str, base_url: &str, env: &[(&str, String)]) {
    let mut cmd = integration::pytest::command("integration/mcp", &["-m", marker], "MCP", base_url, &stack.access_log)
        .unwrap_or_else(|e| panic!("{e}"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Err(e) = integration::pytest::run(cmd) {
        panic!("the MCP suite (-m {marker}) failed, {e}");
    }
}

fn http_url(stack: &Stack) -> String {
    format!("http://127.0.0.1:{}", stack.port)
}

/// The official SDK against the MCP server through Envoy: sessions, stateless, SSE, errors, a cut
/// stream, a header mismatch. Holds with a filter that knows nothing of MCP.
#[test]
fn the_sdk_talks_to_the_mcp_server_through_envoy() {
    let stack = Stack::start(&plain_config()).expect("stack starts");
    pytest(&stack, "protocol", &http_url(&stack), &[]);
}

/// Every request to the MCP endpoint is an attributed, exempt or rejected `tool_call` event.
#[test]
fn tool_calls_are_attributed_events() {
    let stack = Stack::start(&mcp_config("record")).expect("stack starts with the mcp config");
    pytest(&stack, "attribution", &http_url(&stack), &[]);
    let stats = stack
        .envoy
        .admin("/stats?filter=ai_attribution_tool_calls_total")
        .unwrap();
    let has = |decision: &str, tool: &str| {
        stats.lines().any(|l| {
            l.contains(&format!("decision={decision}"))
                && l.contains(&format!("tool={tool}"))
                && l.rsplit(": ").next().and_then(|n| n.trim().parse::<u64>().ok()) > Some(0)
        })
    };
    assert!(has("attributed", "get_weather"), "{stats}");
    assert!(has("rejected", "get_weather"), "{stats}");
}

struct MtlsCreds {
    _dir: TempDir,
    pki: Pki,
    server: CertPair,
    agent: CertPair,
}

fn mtls_creds() -> MtlsCreds {
    let dir = TempDir::new("mcp-pki").unwrap();
    let pki = Pki::new(dir.path()).unwrap();
    let server = pki
        .issue("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth")
        .unwrap();
    let agent = pki
        .issue(
            "agent",
            "/O=Example Corp/CN=weather-agent",
            &format!("URI:{SPIFFE_ID}"),
            "clientAuth",
        )
        .unwrap();
    MtlsCreds {
        _dir: dir,
        pki,
        server,
        agent,
    }
}

/// A workload with a SPIFFE certificate calls tools over mTLS: its SPIFFE ID is the service account.
#[test]
fn a_spiffe_caller_over_mtls() {
    let c = mtls_creds();
    let stack = Stack::start_with(mcp_config("record").to_string(), |b: &mut Bootstrap| {
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
    })
    .expect("mTLS stack starts with the mcp config");
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    pytest(
        &stack,
        "mtls",
        &format!("https://127.0.0.1:{}", stack.port),
        &[
            ("AI_ATTRIBUTION_CA", path(&c.pki.ca())),
            ("AI_ATTRIBUTION_CLIENT_CERT", path(&c.agent.cert)),
            ("AI_ATTRIBUTION_CLIENT_KEY", path(&c.agent.key)),
            ("AI_ATTRIBUTION_SPIFFE_ID", SPIFFE_ID.to_string()),
        ],
    );
}

// ---------------------------------------------------------------- raw requests, upstream seen

const BOTH: &str = "application/json, text/event-stream";

fn post(stack: &Stack, id: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut req = Request::post("/mcp")
        .header("x-request-id", id)
        .header("content-type", "application/json")
        .header("accept", BOTH)
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    stack.send(&req).unwrap()
}

fn log(stack: &Stack, id: &str) -> Value {
    stack
        .log_for(id)
        .unwrap_or_else(|| panic!("no log line for {id}; envoy log:\n{}", stack.envoy.log()))
}

/// A record value, from the flat key or else the structured record's name.
fn field(line: &Value, flat: &str, otel: &str) -> Value {
    match &line[flat] {
        Value::Null => line["record"]["value"][otel].clone(),
        v => v.clone(),
    }
}

/// A record value as text: the flat line writes `"true"`, the structured record may hold `true`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn stateless_call(id: u64, tool: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": tool, "arguments": {"city": "Rome"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    })
}

/// Whether the model server saw a request with this `x-request-id` and its whole body.
fn upstream_got_whole(stack: &Stack, id: &str) -> Option<bool> {
    stack
        .server
        .received()
        .into_iter()
        .find(|r| r.header("x-request-id") == Some(id))
        .map(|r| r.body_complete)
}

#[test]
fn a_header_mismatch_is_rejected_when_configured() {
    let stack = Stack::start(&mcp_config("reject")).expect("stack starts with the mcp config");
    let body = stateless_call(21, "get_weather").to_string();
    let id = request_id("mismatch");
    let headers = [
        ("x-service-account", "weather-agent"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "read_calendar"),
    ];
    let resp = post(&stack, &id, &headers, body.as_bytes());
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_ne!(
        upstream_got_whole(&stack, &id),
        Some(true),
        "the server never got the call"
    );
    let line = log(&stack, &id);
    assert_eq!(field(&line, "event", "ai_attribution.event"), "tool_call", "{line}");
    assert_eq!(
        text(&field(
            &line,
            "mcp_header_mismatch",
            "ai_attribution.mcp_header_mismatch"
        )),
        "true",
        "{line}"
    );
    // The same call with headers that agree passes.
    let ok_id = request_id("match");
    let good = [
        ("x-service-account", "weather-agent"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "get_weather"),
    ];
    let resp = post(&stack, &ok_id, &good, body.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(upstream_got_whole(&stack, &ok_id), Some(true));
}

#[test]
fn a_rejected_tool_call_never_reaches_the_server() {
    let stack = Stack::start(&mcp_config("record")).expect("stack starts with the mcp config");
    // initialize is exempt: it reaches the server, which opens a session.
    let init_id = request_id("init");
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let resp = post(&stack, &init_id, &[], init.to_string().as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
    let session = resp.header("mcp-session-id").expect("a session").to_string();
    assert_eq!(upstream_got_whole(&stack, &init_id), Some(true));

    let id = request_id("rejected");
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "get_weather", "arguments": {"city": "Paris"}}});
    let session_headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let resp = post(&stack, &id, &session_headers, call.to_string().as_bytes());
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(resp
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let correlation = resp.header("x-ai-correlation-id").expect("correlation id").to_string();
    let body = resp.json();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 5);
    assert_eq!(body["error"]["code"], -32001);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("This tool call cannot be attributed: missing service_account."),
        "{body}"
    );
    assert_eq!(body["error"]["data"]["missing"], json!(["service_account"]));
    assert_eq!(body["error"]["data"]["correlation_id"], correlation.as_str());
    // The headers go on while the filter reads the body (proxy-wasm cannot hold them and still
    // read the body); the body never does, so the server never sees the call it would run.
    assert_ne!(upstream_got_whole(&stack, &id), Some(true), "no tool call ran");
    let line = log(&stack, &id);
    assert_eq!(
        field(&line, "decision", "ai_attribution.decision"),
        "rejected",
        "{line}"
    );
    assert_eq!(field(&line, "tool", "gen_ai.tool.name"), "get_weather", "{line}");
    assert_eq!(field(&line, "session", "session.id"), session.as_str(), "{line}");
}

#[test]
fn an_oversized_tool_call_reaches_the_server_whole() {
    let stack = Stack::start(&mcp_config("record")).expect("stack starts with the mcp config");
    // Written by hand to keep the field order: the tool's name before 3 MiB of arguments.
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{{"name":"get_weather","arguments":{{"city":"Paris","notes":"{}"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#,
        "x".repeat(3 << 20)
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["params"]["name"],
        "get_weather"
    );
    let mirrored = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "get_weather"),
    ];
    let id = request_id("big");
    let mut headers = vec![("x-service-account", "weather-agent")];
    headers.extend_from_slice(&mirrored);
    let resp = post(&stack, &id, &headers, body.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(5))
        .expect("the server got it");
    assert_eq!(got.body_len, body.len(), "the whole body went upstream");
    let line = log(&stack, &id);
    assert_eq!(
        field(&line, "decision", "ai_attribution.decision"),
        "attributed",
        "{line}"
    );
    assert_eq!(field(&line, "tool", "gen_ai.tool.name"), "get_weather", "{line}");

    // The same body from nobody: rejected on its first fields, the rest never forwarded whole.
    let id = request_id("big-rejected");
    let resp = post(&stack, &id, &mirrored, body.as_bytes());
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_ne!(upstream_got_whole(&stack, &id), Some(true), "no tool call ran");
    let line = log(&stack, &id);
    assert_eq!(
        field(&line, "decision", "ai_attribution.decision"),
        "rejected",
        "{line}"
    );
}
