//! `ai-attribution explain` on the configurations the repository ships: model calls and tool
//! calls, attributed and refused, trusted and untrusted peers, JWT payloads, a simulated answer,
//! and bad input.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn config(name: &str) -> String {
    root().join(name).to_string_lossy().into_owned()
}

fn scratch(name: &str, content: &[u8]) -> String {
    let dir = root().join("target/cli-test/explain");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p.to_string_lossy().into_owned()
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ai-attribution"))
        .arg("explain")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    out
}

fn text(args: &[&str], stdin: Option<&[u8]>) -> String {
    let o = run(args, stdin);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn json(args: &[&str], stdin: Option<&[u8]>) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&text(&all, stdin)).unwrap()
}

fn dim<'a>(j: &'a Value, name: &str) -> &'a Value {
    j["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no dimension {name}: {j:#}"))
}

fn set_header<'a>(j: &'a Value, name: &str) -> Option<&'a str> {
    j["request_headers"]["set"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .and_then(|h| h["value"].as_str())
}

const CHAT: &[u8] = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
const TOOL_CALL: &[u8] =
    br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_docs","arguments":{"q":"refunds"}}}"#;

#[test]
fn a_model_call_through_the_standalone_bootstrap() {
    let envoy = config("envoy/envoy.yaml");
    let args = [
        envoy.as_str(),
        "--path",
        "/v1/chat/completions",
        "-H",
        "x-user-id:alice",
        "--body",
        "-",
    ];
    let j = json(&args, Some(CHAT));
    assert_eq!(j["event"], "model_call");
    assert_eq!(j["decision"], "attributed");
    assert_eq!(dim(&j, "user")["source"], "header:x-user-id");
    // The bootstrap's node.metadata feeds node: sources.
    assert_eq!(dim(&j, "business_unit")["value"], "platform");
    assert_eq!(dim(&j, "business_unit")["source"], "node:BUSINESS_UNIT");
    assert_eq!(dim(&j, "service_account")["status"], "absent");
    assert_eq!(set_header(&j, "x-ai-business-unit"), Some("platform"));
    assert_eq!(set_header(&j, "x-ai-correlation-id"), j["correlation_id"].as_str());
    assert_eq!(j["local_reply"], Value::Null);
    assert_eq!(j["record"]["gen_ai.request.model"], "gpt-4o");
    assert_eq!(j["record"]["user.id"], "alice");
    let metrics: Vec<&str> = j["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        metrics.contains(&"ai_attribution_requests_total;decision=attributed;provider=openai;business_unit=platform"),
        "{metrics:?}"
    );
    let t = text(&args, Some(CHAT));
    assert!(t.contains("decision: attributed (mode enforce)"), "{t}");
    assert!(t.contains("user + business_unit: met"), "{t}");
    assert!(t.contains("business_unit    platform  from node:BUSINESS_UNIT"), "{t}");
    assert!(t.contains("set x-ai-business-unit: platform"), "{t}");
}

#[test]
fn a_refused_model_call_shows_what_the_client_gets() {
    let envoy = config("envoy/envoy.yaml");
    let args = [
        envoy.as_str(),
        "--path",
        "/v1/chat/completions",
        "--header",
        "X-Business-Unit: finance",
        "--body",
        "-",
    ];
    let j = json(&args, Some(CHAT));
    assert_eq!(j["decision"], "rejected");
    assert_eq!(j["reason"], "missing:user");
    assert_eq!(dim(&j, "business_unit")["source"], "header:x-business-unit");
    let reply = &j["local_reply"];
    assert_eq!(reply["status"], 403);
    assert_eq!(reply["body_json"]["error"]["code"], "unattributed_model_call");
    assert_eq!(reply["body_json"]["error"]["missing"][0], "user");
    assert_eq!(reply["body_json"]["error"]["correlation_id"], j["correlation_id"]);
    let names: Vec<&str> = reply["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["content-type", "x-ai-correlation-id"]);
    assert!(j["require"].as_array().unwrap().iter().all(|a| a["met"] == false));
    let t = text(&args, Some(CHAT));
    assert!(t.contains("status 403"), "{t}");
    assert!(t.contains(&format!("body: {}", reply["body"].as_str().unwrap())), "{t}");
    assert!(
        t.contains("user             none: absent (tried header:x-user-id)"),
        "{t}"
    );
    assert!(t.contains("not met, lacks user"), "{t}");
}

#[test]
fn tool_calls_refused_attributed_and_exempt() {
    let envoy = config("envoy/envoy.yaml");
    // No service account: refused with a JSON-RPC error for the request's id.
    let j = json(&[&envoy, "--path", "/mcp", "--body", "-"], Some(TOOL_CALL));
    assert_eq!(j["event"], "tool_call");
    assert_eq!(j["decision"], "rejected");
    assert_eq!(j["require_field"], "mcp.require");
    let body = &j["local_reply"]["body_json"];
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32001);
    assert_eq!(j["record"]["gen_ai.tool.name"], "search_docs");

    // Attributed, with the server's answer: the outcome reaches the record, the series counts it.
    let answer = scratch(
        "tool-answer.json",
        br#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":true}}"#,
    );
    let args = [
        envoy.as_str(),
        "--path",
        "/mcp",
        "-H",
        "x-service-account:agent-7",
        "-H",
        "mcp-session-id:sess-42",
        "--body",
        "-",
        "--response-body",
        answer.as_str(),
    ];
    let j = json(&args, Some(TOOL_CALL));
    assert_eq!(j["decision"], "attributed");
    assert_eq!(dim(&j, "session")["source"], "mcp:session");
    assert_eq!(dim(&j, "session")["value"], "sess-42");
    assert_eq!(j["record"]["mcp.session.id"], "sess-42");
    assert_eq!(j["record"]["error.type"], "tool_error");
    assert_eq!(j["response_simulated"], true);
    assert_eq!(j["metrics"][0]["name"], "ai_attribution_tool_calls_total;decision=attributed;mcp_method=tools/call;tool=search_docs;business_unit=platform");
    let t = text(&args, Some(TOOL_CALL));
    assert!(
        t.contains("event: tool_call: MCP tools/call, tool search_docs, JSON-RPC id 7, MCP session sess-42"),
        "{t}"
    );
    assert!(t.contains("response headers (the answer to the client):"), "{t}");

    // A method outside mcp.methods is exempt.
    let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    let t = text(&[&envoy, "--path", "/mcp", "--body", "-"], Some(init));
    assert!(t.contains("decision: exempt"), "{t}");
    assert!(t.contains("note: exempt: initialize is not in mcp.methods"), "{t}");
}

#[test]
fn requests_that_are_no_ai_event_lose_spoofed_headers() {
    let envoy = config("envoy/envoy.yaml");
    let args = [
        envoy.as_str(),
        "-X",
        "GET",
        "--path",
        "/healthz",
        "-H",
        "x-ai-user:mallory",
        "-H",
        "baggage:ai.user=mallory,keep=1",
    ];
    let j = json(&args, None);
    assert_eq!(j["event"], Value::Null);
    assert_eq!(j["decision"], Value::Null);
    assert!(j["not_event"].as_str().unwrap().contains("/mcp"), "{j:#}");
    assert_eq!(j["request_headers"]["removed"][0]["name"], "x-ai-user");
    assert_eq!(set_header(&j, "baggage"), Some("keep=1"));
    let t = text(&args, None);
    assert!(t.contains("event: none, not an AI event"), "{t}");
    assert!(t.contains("remove x-ai-user"), "{t}");
}

#[test]
fn header_trust_follows_the_peer_certificate() {
    let mtls = config("envoy/mtls.yaml");
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[]}"#;
    // A workload that is not the trusted gateway: its identity headers are not believed, and
    // the x-ai-* header it sent is stripped.
    let untrusted = [
        mtls.as_str(),
        "--path",
        "/v1/messages",
        "--peer-spiffe-id",
        "spiffe://corp.example/ns/apps/sa/chat-bot",
        "-H",
        "x-user-id:mallory",
        "-H",
        "x-ai-business-unit:spoofed",
        "--body",
        "-",
    ];
    let j = json(&untrusted, Some(body));
    assert_eq!(j["peer"]["trusted"], false);
    assert_eq!(j["decision"], "attributed");
    assert_eq!(dim(&j, "user")["status"], "untrusted");
    assert_eq!(
        dim(&j, "service_account")["value"],
        "spiffe://corp.example/ns/apps/sa/chat-bot"
    );
    assert_eq!(dim(&j, "app")["source"], "peer:spiffe_service_account");
    assert_eq!(dim(&j, "namespace")["value"], "apps");
    assert_eq!(j["request_headers"]["removed"][0]["name"], "x-ai-business-unit");
    assert!(j["reason"].as_str().unwrap().contains("untrusted:user"));
    let t = text(&untrusted, Some(body));
    assert!(
        t.contains("none: untrusted (the header was sent, but the peer spiffe://corp.example/ns/apps/sa/chat-bot is not in header_trust.peers"),
        "{t}"
    );

    // A SPIFFE ID of another trust domain than peer.trust_domains: its namespace and service
    // account are not vouched for.
    let foreign: Vec<&str> = untrusted
        .iter()
        .map(|a| {
            if a.contains("ns/apps/sa/chat-bot") {
                "spiffe://elsewhere.example/ns/apps/sa/chat-bot"
            } else {
                a
            }
        })
        .collect();
    let t = text(&foreign, Some(body));
    assert!(t.contains("namespace        none: invalid"), "{t}");
    assert!(t.contains("a SPIFFE ID of a foreign trust domain"), "{t}");

    // The trusted gateway's headers are believed.
    let j = json(
        &[
            &mtls,
            "--path",
            "/v1/messages",
            "--peer-spiffe-id",
            "spiffe://corp.example/ns/edge/sa/auth-gateway",
            "-H",
            "x-user-id:alice",
            "-H",
            "x-business-unit:finance",
            "--body",
            "-",
        ],
        Some(body),
    );
    assert_eq!(j["peer"]["trusted"], true);
    assert_eq!(dim(&j, "user")["value"], "alice");
    assert_eq!(dim(&j, "business_unit")["source"], "header:x-business-unit");
}

#[test]
fn a_jwt_authn_payload_attributes_the_call() {
    let jwt = config("envoy/jwt.yaml");
    let claims = scratch(
        "claims.json",
        br#"{"sub":"carol","azp":"notebook","org":{"business_unit":"research"},"exp":1900000000}"#,
    );
    let j = json(
        &[
            &jwt,
            "--path",
            "/v1/chat/completions",
            "--jwt-payload",
            &claims,
            "--body",
            "-",
        ],
        Some(CHAT),
    );
    assert_eq!(j["decision"], "attributed");
    assert_eq!(dim(&j, "user")["source"], "jwt:sub");
    assert_eq!(dim(&j, "user")["value"], "carol");
    assert_eq!(dim(&j, "business_unit")["value"], "research");
    assert_eq!(dim(&j, "app")["source"], "jwt:azp");
    // Without the payload the same request has no user.
    let j = json(&[&jwt, "--path", "/v1/chat/completions", "--body", "-"], Some(CHAT));
    assert_eq!(j["decision"], "rejected");
    assert_eq!(dim(&j, "user")["status"], "absent");
}

#[test]
fn a_simulated_answer_gives_usage_and_cost() {
    let envoy = config("envoy/envoy.yaml");
    let answer = scratch(
        "chat-answer.json",
        br#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":27,"completion_tokens":12,"total_tokens":39}}"#,
    );
    let j = json(
        &[
            &envoy,
            "--path",
            "/v1/chat/completions",
            "-H",
            "x-user-id:alice",
            "--body",
            "-",
            "--response-body",
            &answer,
        ],
        Some(CHAT),
    );
    let r = &j["record"];
    assert_eq!(r["ai_attribution.usage_status"], "reported", "{r:#}");
    assert_eq!(r["gen_ai.usage.input_tokens"], 27, "{r:#}");
    assert_eq!(r["gen_ai.response.model"], "gpt-4o-2024-08-06");
    // 27 input tokens at $2.50 and 12 output at $10.00 per million.
    assert_eq!(r["ai_attribution.cost_usd"].as_f64(), Some(0.0001875), "{r:#}");
    assert_eq!(j["response_headers"]["set"][0]["name"], "x-ai-correlation-id");
}

#[test]
fn kubernetes_resources_load_like_check() {
    for file in [
        "envoy/istio/wasmplugin.yaml",
        "envoy/envoy-gateway/extension-policy.yaml",
    ] {
        let f = config(file);
        let j = json(
            &[
                &f,
                "--path",
                "/v1/chat/completions",
                "-H",
                "x-user-id:alice",
                "--body",
                "-",
            ],
            Some(CHAT),
        );
        assert_eq!(j["event"], "model_call", "{file}: {j:#}");
        assert!(j["decision"].is_string(), "{file}");
    }
}

#[test]
fn bad_input_is_a_message_never_a_panic() {
    let envoy = config("envoy/envoy.yaml");
    let broken = scratch("broken.json", br#"{"dimensions": {"user": ["heder:x-user-id"]}}"#);
    let not_json = scratch("not-json.txt", b"\xff\xfe{");
    let two = scratch(
        "two.yaml",
        b"kind: WasmPlugin\nmetadata: {name: a}\nspec: {pluginConfig: {}}\n---\nkind: WasmPlugin\nmetadata: {name: b}\nspec: {pluginConfig: {}}\n",
    );
    let bad_claims = scratch("bad-claims.json", b"[1,2]");
    let dir = root().join("target");
    let dir = dir.to_str().unwrap();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec![&envoy], 2, "--path"),
        (vec!["/nonexistent.yaml", "--path", "/"], 2, "cannot read"),
        (vec![&broken, "--path", "/"], 1, "dimensions.user"),
        (vec![&not_json, "--path", "/"], 1, "not UTF-8"),
        (vec![&two, "--path", "/"], 2, "--plugin N"),
        (vec![&two, "--path", "/", "--plugin", "3"], 2, "holds 2"),
        (vec![&envoy, "--path", "v1/chat"], 2, "must start with /"),
        (vec![&envoy, "--path", "/", "-H", "novalue"], 2, "NAME:VALUE"),
        (vec![&envoy, "--path", "/", "-H", ":authority:x"], 2, "pseudo-headers"),
        (
            vec![&envoy, "--path", "/", "-H", "bad name:x"],
            2,
            "not a valid header name",
        ),
        (vec![&envoy, "--path", "/", "-X", "PO ST"], 2, "--method"),
        (vec![&envoy, "--path", "/", "--body", dir], 2, "directory"),
        (vec![&envoy, "--path", "/", "--body", "/nonexistent"], 2, "cannot read"),
        (
            vec![&envoy, "--path", "/", "--body", "-", "--jwt-payload", "-"],
            2,
            "standard input",
        ),
        (
            vec![&envoy, "--path", "/", "--jwt-payload", &bad_claims],
            2,
            "JSON object",
        ),
        (
            vec![&envoy, "--path", "/", "--node-metadata", "novalue"],
            2,
            "KEY=VALUE",
        ),
        (vec![&envoy, "--path", "/", "--response-status", "42"], 2, "42"),
        (vec![&envoy, "--path", "/", "--format", "yaml"], 2, "yaml"),
    ];
    for (args, code, needle) in cases {
        let o = run(&args, Some(b"{}"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    // Odd but well-formed requests are explained, whatever they hold.
    let odd: Vec<(Vec<&str>, &[u8])> = vec![
        (
            vec![
                &envoy,
                "--path",
                "/v1/chat/completions",
                "-H",
                "x-user-id:\u{1b}[31mred",
                "--body",
                "-",
            ],
            CHAT,
        ),
        (
            vec![
                &envoy,
                "--path",
                "/v1/chat/completions",
                "-H",
                "x-user-id:a",
                "-H",
                "x-user-id:b",
                "--body",
                "-",
            ],
            CHAT,
        ),
        (
            vec![&envoy, "--path", "/v1/chat/completions", "--body", "-"],
            b"\xff\x00not json",
        ),
        (vec![&envoy, "--path", "/mcp", "--body", "-"], b"[{\"jsonrpc\":\"2.0\""),
        (vec![&envoy, "--path", "/mcp", "-X", "GET"], b""),
        (
            vec![
                &envoy,
                "--path",
                "/v1/chat/completions?x=%zz&&",
                "--peer-spiffe-id",
                "not a uri",
            ],
            b"",
        ),
    ];
    for (args, body) in odd {
        let o = run(&args, Some(body));
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(!out.contains('\u{1b}'), "{out}");
    }
    // Two different values of one identity header are invalid, not a panic or a pick.
    let j = json(
        &[
            &envoy,
            "--path",
            "/v1/chat/completions",
            "-H",
            "x-user-id:a",
            "-H",
            "x-user-id:b",
            "--body",
            "-",
        ],
        Some(CHAT),
    );
    assert_eq!(dim(&j, "user")["status"], "invalid");
    assert_eq!(j["decision"], "rejected");
}
