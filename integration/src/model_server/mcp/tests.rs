//! Unit tests for the MCP server over raw TCP: both protocol generations, sessions, batches, SSE
//! and the errors each rule gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::super::tests::{connect, read_response, send, sse_events, Resp};
use super::*;
use crate::model_server::ModelServer;
use serde_json::{json, Value};

const BOTH: &str = "application/json, text/event-stream";

fn raw(server: &ModelServer, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut conn = connect(server);
    send(&mut conn, method, path, headers, body);
    read_response(&mut conn)
}

/// POSTs a JSON body to `/mcp` with `accept` listing both types (unless `headers` sets one).
fn post(server: &ModelServer, headers: &[(&str, &str)], body: &Value) -> Resp {
    let mut all: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("accept")) {
        all.push(("accept", BOTH));
    }
    all.extend_from_slice(headers);
    raw(server, "POST", "/mcp", &all, body.to_string().as_bytes())
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// Opens a session asking for `version`; returns its id and the negotiated version.
fn open(server: &ModelServer, version: &str, headers: &[(&str, &str)]) -> (String, String) {
    let init = request(
        0,
        "initialize",
        json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let resp = post(server, headers, &init);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let sid = resp.header("mcp-session-id").expect("session id").to_string();
    let negotiated = resp.json()["result"]["protocolVersion"].as_str().unwrap().to_string();
    (sid, negotiated)
}

fn in_session(server: &ModelServer, sid: &str, version: &str, extra: &[(&str, &str)], body: &Value) -> Resp {
    let mut headers = vec![("mcp-session-id", sid), ("mcp-protocol-version", version)];
    headers.extend_from_slice(extra);
    post(server, &headers, body)
}

fn modern(id: u64, method: &str, mut params: Value) -> Value {
    params.as_object_mut().unwrap().insert(
        "_meta".into(),
        json!({
            "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        }),
    );
    request(id, method, params)
}

/// POSTs a 2026-07-28 request with its mirrored headers, then `extra`.
fn stateless(server: &ModelServer, body: &Value, extra: &[(&str, &str)]) -> Resp {
    let method = body["method"].as_str().unwrap().to_string();
    let name = body["params"]["name"]
        .as_str()
        .or(body["params"]["uri"].as_str())
        .map(encode_header_value);
    let mut headers: Vec<(&str, &str)> = vec![("mcp-protocol-version", MODERN_VERSION), ("mcp-method", &method)];
    if let Some(name) = &name {
        headers.push(("mcp-name", name));
    }
    headers.extend_from_slice(extra);
    post(server, &headers, body)
}

fn error_code(resp: &Resp) -> i64 {
    resp.json()["error"]["code"].as_i64().unwrap_or_else(|| {
        panic!(
            "no JSON-RPC error (status {}): {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        )
    })
}

#[test]
fn endpoint_paths_and_header_value_encoding() {
    for path in ["/mcp", "/tenant-a/mcp", "/mcp?x=1", "http://h/v1/mcp"] {
        assert!(is_endpoint(path), "{path}");
    }
    for path in ["/mcpx", "/mcp/", "/x/mcp/y", "/v1/chat/completions"] {
        assert!(!is_endpoint(path), "{path}");
    }
    assert_eq!(encode_header_value("get_weather"), "get_weather");
    assert_eq!(encode_header_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
    assert_eq!(encode_header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
    assert_eq!(
        encode_header_value("=?base64?literal?="),
        "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
    );
    for v in ["get_weather", CAFE_URI, " padded ", "=?base64?literal?="] {
        assert_eq!(decode_header_value(&encode_header_value(v)).as_deref(), Some(v));
    }
    assert_eq!(decode_header_value("=?base64?***?="), None);
}

#[test]
fn session_generation_lifecycle_and_methods() {
    let server = ModelServer::start().unwrap();
    let (sid, version) = open(&server, "2025-11-25", &[]);
    assert_eq!(version, "2025-11-25");
    assert_eq!(sid.len(), 32);
    assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()));
    let (other, _) = open(&server, "2025-11-25", &[]);
    assert_ne!(sid, other, "session ids are random");
    assert_eq!(server.mcp_sessions().version(&sid), Some("2025-11-25"));

    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let resp = in_session(&server, &sid, &version, &[], &note);
    assert_eq!((resp.status, resp.body.len()), (202, 0));
    let client_response = json!({"jsonrpc": "2.0", "id": 7, "result": {}});
    assert_eq!(in_session(&server, &sid, &version, &[], &client_response).status, 202);

    let call = |body: Value| in_session(&server, &sid, &version, &[], &body);
    let tools = call(request(1, "tools/list", json!({})));
    assert_eq!(tools.status, 200);
    assert_eq!(tools.header("content-type"), Some("application/json"));
    let names: Vec<String> = tools.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, [WEATHER_TOOL, FAILING_TOOL, BROKEN_TOOL]);
    assert!(
        tools.json()["result"].get("resultType").is_none(),
        "no 2026 fields in a session"
    );

    let weather = call(request(
        2,
        "tools/call",
        json!({"name": WEATHER_TOOL, "arguments": {"city": "Paris"}}),
    ));
    let w = weather.json();
    assert_eq!(w["id"], 2);
    assert_eq!(w["result"]["isError"], false);
    assert_eq!(
        w["result"]["content"][0]["text"],
        "Weather in Paris: 18°C, partly cloudy."
    );
    let no_city = call(request(3, "tools/call", json!({"name": WEATHER_TOOL, "arguments": {}})));
    assert_eq!(no_city.json()["result"]["isError"], true);
    let failing = call(request(4, "tools/call", json!({"name": FAILING_TOOL, "arguments": {}})));
    assert_eq!(failing.status, 200);
    assert_eq!(failing.json()["result"]["isError"], true);
    let broken = call(request(5, "tools/call", json!({"name": BROKEN_TOOL})));
    assert_eq!((broken.status, error_code(&broken)), (200, INTERNAL_ERROR));
    assert_eq!(broken.json()["id"], 5);
    let unknown = call(request(6, "tools/call", json!({"name": "nope"})));
    assert_eq!(error_code(&unknown), INVALID_PARAMS);

    let listed = call(request(7, "resources/list", json!({})));
    assert_eq!(listed.json()["result"]["resources"][0]["uri"], README_URI);
    let read = call(request(8, "resources/read", json!({"uri": README_URI})));
    assert_eq!(read.json()["result"]["contents"][0]["uri"], README_URI);
    let missing = call(request(9, "resources/read", json!({"uri": "file:///nope"})));
    assert_eq!(error_code(&missing), RESOURCE_NOT_FOUND);
    let prompts = call(request(10, "prompts/list", json!({})));
    assert_eq!(prompts.json()["result"]["prompts"][0]["name"], GREETING_PROMPT);
    let prompt = call(request(
        11,
        "prompts/get",
        json!({"name": GREETING_PROMPT, "arguments": {"name": "Ada"}}),
    ));
    assert_eq!(
        prompt.json()["result"]["messages"][0]["content"]["text"],
        "Say hello to Ada."
    );
    let ping = call(json!({"jsonrpc": "2.0", "id": "p-1", "method": "ping"}));
    assert_eq!(ping.json(), json!({"jsonrpc": "2.0", "id": "p-1", "result": {}}));
    let nope = call(request(12, "nope/nope", json!({})));
    assert_eq!((nope.status, error_code(&nope)), (200, METHOD_NOT_FOUND));
    let discover = call(request(13, "server/discover", json!({})));
    assert_eq!(error_code(&discover), METHOD_NOT_FOUND, "discover is stateless-only");

    // The server keeps what it was sent, whole.
    let got = server.received();
    let last = got.last().unwrap();
    assert_eq!(last.path, "/mcp");
    assert_eq!(last.json().unwrap()["method"], "server/discover");
}

#[test]
fn sessions_are_required_checked_and_ended() {
    let server = ModelServer::start().unwrap();
    let list = request(1, "tools/list", json!({}));
    let missing = post(&server, &[], &list);
    assert_eq!((missing.status, error_code(&missing)), (400, INVALID_REQUEST));
    assert_eq!(missing.json()["id"], 1);
    let unknown = in_session(&server, "0123456789abcdef0123456789abcdef", "2025-11-25", &[], &list);
    assert_eq!(unknown.status, 404);

    let (sid, v) = open(&server, "2025-06-18", &[]);
    assert_eq!(v, "2025-06-18");
    let no_version = post(&server, &[("mcp-session-id", &sid)], &list);
    assert_eq!(no_version.status, 400, "2025-06-18 needs MCP-Protocol-Version");
    let wrong = in_session(&server, &sid, "2025-11-25", &[], &list);
    assert_eq!(wrong.status, 400);
    let twice = post(
        &server,
        &[
            ("mcp-session-id", &sid),
            ("mcp-session-id", "other"),
            ("mcp-protocol-version", &v),
        ],
        &list,
    );
    assert_eq!(twice.status, 400);
    assert_eq!(in_session(&server, &sid, &v, &[], &list).status, 200);

    let (old, v) = open(&server, "2025-03-26", &[]);
    assert_eq!(v, "2025-03-26");
    assert_eq!(
        post(&server, &[("mcp-session-id", &old)], &list).status,
        200,
        "2025-03-26 may omit it"
    );

    // GET: no standalone stream unless asked; DELETE ends the session.
    let get = raw(
        &server,
        "GET",
        "/mcp",
        &[
            ("mcp-session-id", &sid),
            ("mcp-protocol-version", "2025-06-18"),
            ("accept", "text/event-stream"),
        ],
        b"",
    );
    assert_eq!(get.status, 405);
    let get_none = raw(&server, "GET", "/mcp", &[("accept", "text/event-stream")], b"");
    assert_eq!(get_none.status, 400);
    let stream = raw(
        &server,
        "GET",
        "/mcp",
        &[
            ("mcp-session-id", &sid),
            ("mcp-protocol-version", "2025-06-18"),
            ("x-mock-behavior", "get-stream=50"),
        ],
        b"",
    );
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert!(stream.complete);
    let del = raw(
        &server,
        "DELETE",
        "/mcp",
        &[("mcp-session-id", &sid), ("mcp-protocol-version", "2025-06-18")],
        b"",
    );
    assert_eq!(del.status, 200);
    assert_eq!(server.mcp_sessions().version(&sid), None);
    assert_eq!(in_session(&server, &sid, "2025-06-18", &[], &list).status, 404);
    let del_again = raw(&server, "DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
    assert_eq!(del_again.status, 404);
    let put = raw(&server, "PUT", "/mcp", &[], b"");
    assert_eq!(put.status, 405);

    // Prefixed endpoints share the sessions.
    let resp = raw(
        &server,
        "POST",
        "/tenant-a/mcp?x=1",
        &[("mcp-session-id", &old), ("accept", BOTH)],
        list.to_string().as_bytes(),
    );
    assert_eq!(resp.status, 200);
}

#[test]
fn version_negotiation() {
    let server = ModelServer::start().unwrap();
    for (asked, got) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
        ("2099-01-01", "2025-11-25"),
    ] {
        assert_eq!(open(&server, asked, &[]).1, got, "{asked}");
    }
    let (_, forced) = open(&server, "2025-11-25", &[("x-mock-behavior", "mcp-version=2025-03-26")]);
    assert_eq!(forced, "2025-03-26");
    let bad = post(
        &server,
        &[("x-mock-behavior", "mcp-version=1999-01-01")],
        &request(0, "initialize", json!({"protocolVersion": "2025-11-25"})),
    );
    assert_eq!(bad.status, 400);
    let no_version = post(&server, &[], &request(0, "initialize", json!({})));
    assert_eq!(error_code(&no_version), INVALID_PARAMS);
    assert!(no_version.header("mcp-session-id").is_none());
}

#[test]
fn batches_in_2025_03_26_sessions_only() {
    let server = ModelServer::start().unwrap();
    let (sid, v) = open(&server, "2025-03-26", &[]);
    let body = json!([
        request(1, "tools/call", json!({"name": WEATHER_TOOL, "arguments": {"city": "Oslo"}})),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        request(2, "tools/call", json!({"name": FAILING_TOOL})),
        {"jsonrpc": "1.0", "id": 3, "method": "ping"},
        request(4, "initialize", json!({"protocolVersion": "2025-03-26"})),
        request(5, "tools/call", json!({"name": BROKEN_TOOL})),
    ]);
    let resp = in_session(&server, &sid, &v, &[], &body);
    assert_eq!(resp.status, 200);
    let answers = resp.json();
    let answers = answers.as_array().unwrap();
    let ids: Vec<&Value> = answers.iter().map(|a| &a["id"]).collect();
    assert_eq!(ids, [&json!(1), &json!(2), &json!(3), &json!(4), &json!(5)]);
    assert_eq!(
        answers[0]["result"]["content"][0]["text"],
        "Weather in Oslo: 18°C, partly cloudy."
    );
    assert_eq!(answers[1]["result"]["isError"], true);
    assert_eq!(answers[2]["error"]["code"], INVALID_REQUEST);
    assert_eq!(answers[3]["error"]["code"], INVALID_REQUEST);
    assert_eq!(answers[4]["error"]["code"], INTERNAL_ERROR);

    let notes =
        json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}, {"jsonrpc": "2.0", "id": 9, "result": {}}]);
    let accepted = in_session(&server, &sid, &v, &[], &notes);
    assert_eq!((accepted.status, accepted.body.len()), (202, 0));

    let sse = in_session(
        &server,
        &sid,
        &v,
        &[("x-mock-behavior", "sse")],
        &json!([request(1, "tools/list", json!({})), request(2, "ping", json!({}))]),
    );
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    let events = sse_events(&sse.body);
    assert_eq!(events.len(), 2, "one event per response");
    let first: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(first["id"], 1);

    let empty = in_session(&server, &sid, &v, &[], &json!([]));
    assert_eq!(empty.status, 400);
    let (newer, v2) = open(&server, "2025-06-18", &[]);
    let refused = in_session(&server, &newer, &v2, &[], &json!([request(1, "ping", json!({}))]));
    assert_eq!((refused.status, error_code(&refused)), (400, INVALID_REQUEST));
    let sessionless = post(&server, &[], &json!([request(1, "ping", json!({}))]));
    assert_eq!(sessionless.status, 400);
}

#[test]
fn stateless_requests_and_their_headers() {
    let server = ModelServer::start().unwrap();
    let call = modern(
        1,
        "tools/call",
        json!({"name": WEATHER_TOOL, "arguments": {"city": "Lima"}}),
    );
    let ok = stateless(&server, &call, &[]);
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert!(ok.header("mcp-session-id").is_none(), "no session is minted");
    let r = ok.json();
    assert_eq!(r["result"]["resultType"], "complete");
    assert_eq!(
        r["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        SERVER_NAME
    );
    assert_eq!(
        r["result"]["content"][0]["text"],
        "Weather in Lima: 18°C, partly cloudy."
    );
    assert!(r["result"].get("ttlMs").is_none());
    let ignored = stateless(&server, &call, &[("mcp-session-id", "not-a-session")]);
    assert_eq!(ignored.status, 200, "a session header is ignored");

    let list = stateless(&server, &modern(2, "tools/list", json!({})), &[]);
    assert_eq!(list.json()["result"]["ttlMs"], 0);
    assert_eq!(list.json()["result"]["cacheScope"], "public");
    let discover = stateless(&server, &modern(3, "server/discover", json!({})), &[]);
    assert_eq!(
        discover.json()["result"]["supportedVersions"],
        json!(["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"])
    );
    let cafe = stateless(&server, &modern(4, "resources/read", json!({"uri": CAFE_URI})), &[]);
    assert_eq!(cafe.status, 200, "{}", String::from_utf8_lossy(&cafe.body));
    assert_eq!(cafe.json()["result"]["contents"][0]["uri"], CAFE_URI);
    let missing = stateless(
        &server,
        &modern(5, "resources/read", json!({"uri": "file:///nope"})),
        &[],
    );
    assert_eq!((missing.status, error_code(&missing)), (200, INVALID_PARAMS));
    let prompt = stateless(
        &server,
        &modern(6, "prompts/get", json!({"name": GREETING_PROMPT})),
        &[],
    );
    assert_eq!(prompt.json()["result"]["resultType"], "complete");
    let broken = stateless(&server, &modern(7, "tools/call", json!({"name": BROKEN_TOOL})), &[]);
    assert_eq!((broken.status, error_code(&broken)), (200, INTERNAL_ERROR));
    for method in ["ping", "logging/setLevel"] {
        let gone = stateless(&server, &modern(8, method, json!({})), &[]);
        assert_eq!((gone.status, error_code(&gone)), (404, METHOD_NOT_FOUND), "{method}");
    }
    let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
    let accepted = post(&server, &[("mcp-protocol-version", MODERN_VERSION)], &note);
    assert_eq!(accepted.status, 202);
    assert!(server.mcp_sessions().is_empty(), "stateless requests open no session");
}

#[test]
fn stateless_header_rules() {
    let server = ModelServer::start().unwrap();
    let call = modern(
        41,
        "tools/call",
        json!({"name": WEATHER_TOOL, "arguments": {"city": "Rome"}}),
    );
    let body = call.to_string();
    let send_with = |headers: &[(&str, &str)]| {
        let mut all = vec![("content-type", "application/json"), ("accept", BOTH)];
        all.extend_from_slice(headers);
        raw(&server, "POST", "/mcp", &all, body.as_bytes())
    };
    let v = ("mcp-protocol-version", MODERN_VERSION);
    let m = ("mcp-method", "tools/call");
    let n = ("mcp-name", WEATHER_TOOL);
    let cases: Vec<(Vec<(&str, &str)>, i64)> = vec![
        (vec![m, n], HEADER_MISMATCH),
        (vec![v, n], HEADER_MISMATCH),
        (vec![v, m], HEADER_MISMATCH),
        (vec![v, ("mcp-method", "tools/list"), n], HEADER_MISMATCH),
        (vec![v, m, ("mcp-name", "delete_everything")], HEADER_MISMATCH),
        (vec![v, m, ("mcp-name", "=?base64?Z2V0X3dlYXRoZXI=?=")], 0),
        (vec![v, m, ("mcp-name", "=?base64?@@@?=")], HEADER_MISMATCH),
        (vec![v, m, n, ("mcp-name", WEATHER_TOOL)], HEADER_MISMATCH),
        (vec![v, m, ("mcp-name", "get_weathér")], HEADER_MISMATCH),
        (vec![("mcp-protocol-version", "2025-11-25"), m, n], HEADER_MISMATCH),
        (vec![v, ("Mcp-Method", "tools/call"), ("MCP-NAME", WEATHER_TOOL)], 0),
    ];
    for (headers, code) in cases {
        let resp = send_with(&headers);
        if code == 0 {
            assert_eq!(resp.status, 200, "{headers:?}: {}", String::from_utf8_lossy(&resp.body));
        } else {
            assert_eq!((resp.status, error_code(&resp)), (400, code), "{headers:?}");
            assert_eq!(resp.json()["id"], 41, "the id is echoed");
            assert!(resp.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Header mismatch"));
        }
    }

    let mut old = call.clone();
    old["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let body = old.to_string();
    let resp = raw(
        &server,
        "POST",
        "/mcp",
        &[("accept", BOTH), ("mcp-protocol-version", "2099-01-01"), m, n],
        body.as_bytes(),
    );
    assert_eq!((resp.status, error_code(&resp)), (400, UNSUPPORTED_PROTOCOL_VERSION));
    assert_eq!(resp.json()["error"]["data"]["requested"], "2099-01-01");
    assert_eq!(resp.json()["error"]["data"]["supported"][0], MODERN_VERSION);

    let mut no_caps = call.clone();
    no_caps["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let resp = stateless(&server, &no_caps, &[]);
    assert_eq!((resp.status, error_code(&resp)), (400, INVALID_PARAMS));
    let no_meta_version = request(42, "tools/list", json!({}));
    let resp = post(&server, &[v, ("mcp-method", "tools/list")], &no_meta_version);
    assert_eq!((resp.status, error_code(&resp)), (400, INVALID_PARAMS));
    let no_name = modern(43, "tools/call", json!({"arguments": {}}));
    let resp = stateless(&server, &no_name, &[]);
    assert_eq!((resp.status, error_code(&resp)), (400, INVALID_PARAMS));
}

#[test]
fn sse_answers_progress_and_cuts() {
    let server = ModelServer::start().unwrap();
    let (sid, v) = open(&server, "2025-11-25", &[]);
    let call = request(
        1,
        "tools/call",
        json!({"name": WEATHER_TOOL, "arguments": {"city": "Kyiv"}}),
    );
    let json_by_default = in_session(&server, &sid, &v, &[], &call);
    assert_eq!(json_by_default.header("content-type"), Some("application/json"));
    let sse_only = in_session(&server, &sid, &v, &[("accept", "text/event-stream")], &call);
    assert_eq!(sse_only.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse_only.header("x-accel-buffering"), Some("no"));
    assert!(sse_only.complete);
    let events = sse_events(&sse_only.body);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0.as_deref(), Some("message"));
    let answer: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(answer["result"]["isError"], false);
    let forced_json = in_session(
        &server,
        &sid,
        &v,
        &[("accept", "text/event-stream"), ("x-mock-behavior", "json")],
        &call,
    );
    assert_eq!(forced_json.header("content-type"), Some("application/json"));
    let neither = in_session(&server, &sid, &v, &[("accept", "text/html")], &call);
    assert_eq!(neither.status, 406);

    let with_token = request(
        2,
        "tools/call",
        json!({"name": WEATHER_TOOL, "arguments": {"city": "Kyiv"}, "_meta": {"progressToken": "tok"}}),
    );
    let sse = in_session(&server, &sid, &v, &[("x-mock-behavior", "sse, slow")], &with_token);
    let events = sse_events(&sse.body);
    assert_eq!(events.len(), 2);
    let note: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(note["method"], "notifications/progress");
    assert_eq!(note["params"]["progressToken"], "tok");
    let answer: Value = serde_json::from_str(&events[1].1).unwrap();
    assert_eq!(answer["id"], 2);
    assert!(sse.chunks.len() > 2, "streams are written in pieces");

    let cut = in_session(&server, &sid, &v, &[("x-mock-behavior", "sse-cut")], &with_token);
    assert_eq!(cut.status, 200);
    assert_eq!(cut.header("content-type"), Some("text/event-stream"));
    assert!(!cut.complete, "the stream ends without its terminating chunk");
    let text = String::from_utf8_lossy(&cut.body);
    assert!(text.contains("notifications/progress"), "{text}");
    assert!(!text.contains("\"result\""), "no response event: {text}");

    let gzip = in_session(&server, &sid, &v, &[("x-mock-behavior", "sse,encoding=gzip")], &call);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
}

#[test]
fn bad_requests_and_switches() {
    let server = ModelServer::start().unwrap();
    let not_json = raw(&server, "POST", "/mcp", &[("accept", BOTH)], b"{not json");
    assert_eq!((not_json.status, error_code(&not_json)), (400, PARSE_ERROR));
    let empty = raw(&server, "POST", "/mcp", &[("accept", BOTH)], b"");
    assert_eq!((empty.status, error_code(&empty)), (400, PARSE_ERROR));
    for body in [
        json!(42),
        json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}),
        json!({"id": 1, "method": "ping"}),
    ] {
        let resp = post(&server, &[], &body);
        assert_eq!((resp.status, error_code(&resp)), (400, INVALID_REQUEST), "{body}");
    }
    let init = request(0, "initialize", json!({"protocolVersion": "2025-11-25"}));
    let evil = post(&server, &[("origin", "http://evil.example")], &init);
    assert_eq!(evil.status, 403);
    for origin in ["http://localhost:6274", "http://127.0.0.1", "https://[::1]:8443"] {
        assert_eq!(post(&server, &[("origin", origin)], &init).status, 200, "{origin}");
    }
    let status = post(
        &server,
        &[("x-mock-behavior", "status=503")],
        &request(9, "tools/list", json!({})),
    );
    assert_eq!((status.status, error_code(&status)), (503, INTERNAL_ERROR));
    assert_eq!(status.json()["id"], 9);
    for bad in ["status=42", "get-stream=x", "encoding=nope"] {
        assert_eq!(post(&server, &[("x-mock-behavior", bad)], &init).status, 400, "{bad}");
    }
    assert_eq!(post(&server, &[("x-mock-delay-ms", "x")], &init).status, 400);
    assert_eq!(post(&server, &[("x-mock-delay-ms", "30")], &init).status, 200);
}

#[test]
fn large_bodies_are_read_whole_up_to_the_limit() {
    let server = ModelServer::start().unwrap();
    let (sid, v) = open(&server, "2025-11-25", &[]);
    // 1 MiB of arguments, the tool name after them: far past the 64 KiB other routes keep.
    let call = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"arguments": {"city": "Paris", "notes": "x".repeat(1 << 20)}, "name": WEATHER_TOOL}
    });
    let resp = in_session(&server, &sid, &v, &[], &call);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["result"]["isError"], false);
    let got = server.received().into_iter().last().unwrap();
    assert!(got.body_len > 1 << 20);
    assert_eq!(got.body.len(), got.body_len);

    let too_big = vec![b' '; MAX_BODY + 1];
    let resp = raw(
        &server,
        "POST",
        "/mcp",
        &[("mcp-session-id", &sid), ("accept", BOTH)],
        &too_big,
    );
    assert_eq!(resp.status, 413);
}
