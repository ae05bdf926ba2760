//! The call lifecycle, phase by phase, with no Envoy: plain headers and body chunks in, steps and
//! the record out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::host::MapAttributes;
use crate::record::UsageStatus;

fn cfg(json: &str) -> Rc<Config> {
    Rc::new(Config::parse(json.as_bytes()).unwrap())
}

fn headers(pairs: &[(&str, &str)]) -> HeaderList {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn request(path: &str, extra: &[(&str, &str)]) -> HeaderList {
    let mut h = headers(&[(":method", "POST"), (":path", path), (":authority", "models.local")]);
    h.extend(headers(extra));
    h
}

fn vm() -> VmState {
    VmState::new([3; 32], 100)
}

const USER_CONFIG: &str = r#"{"dimensions":{"user":["header:x-user-id"],"business_unit":["header:x-bu"]},
    "require":[["user"]],"pricing":{"gpt-4o*":{"input":2.5,"output":10,"cached_input":1.25},"o3-mini*":{"input":1.1,"output":4.4}}}"#;

fn reply_of(step: &Step) -> Option<&LocalReply> {
    step.effects.iter().find_map(|e| match e {
        Effect::LocalReply(r) => Some(r),
        _ => None,
    })
}

fn sets(step: &Step, name: &str) -> Option<String> {
    step.effects.iter().find_map(|e| match e {
        Effect::SetRequestHeader(n, v) | Effect::SetResponseHeader(n, v) if n == name => Some(v.clone()),
        _ => None,
    })
}

fn removes(step: &Step, name: &str) -> bool {
    step.effects
        .iter()
        .any(|e| matches!(e, Effect::RemoveRequestHeader(n) if n == name))
}

const OPENAI_JSON: &[u8] = include_bytes!("../../../tests/fixtures/usage/openai_chat.json");
const OPENAI_SSE: &[u8] = include_bytes!("../../../tests/fixtures/usage/openai_chat.sse");

/// A complete attributed call: headers, body, an answer fed in pieces of `split` bytes, finish.
fn attributed_call(answer: &[u8], content_type: &str, split: usize) -> Finished {
    let c = cfg(USER_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, step) = Call::start(
        &c,
        &request(
            "/v1/chat/completions",
            &[("x-user-id", "alice"), ("x-ai-user", "mallory")],
        ),
        false,
        &mut host,
        &mut vm,
    );
    let mut call = call.expect("a model call");
    assert_eq!(step.flow, Flow::Continue);
    assert!(removes(&step, "x-ai-user"));
    assert_eq!(
        sets(&step, "x-ai-correlation-id").as_deref(),
        Some(call.correlation_id())
    );
    let step = call.on_request_body(br#"{"model":"gpt-4o","messages":[]}"#, true, &mut host);
    assert_eq!(step, Step::proceed());
    let step = call.on_response_headers(&headers(&[(":status", "200"), ("content-type", content_type)]), false);
    assert_eq!(
        sets(&step, "x-ai-correlation-id").as_deref(),
        Some(call.correlation_id())
    );
    assert!(call.wants_response_body());
    let pieces: Vec<&[u8]> = answer.chunks(split.max(1)).collect();
    for (i, piece) in pieces.iter().enumerate() {
        assert_eq!(call.on_response_body(piece, i + 1 == pieces.len()), Step::proceed());
    }
    call.finish(&mut host, &mut vm)
}

#[test]
fn an_attributed_call_records_usage_from_json_at_every_split() {
    for split in [1, 2, 7, 64, OPENAI_JSON.len()] {
        let f = attributed_call(OPENAI_JSON, "application/json", split);
        let r = &f.record;
        assert_eq!(r.decision, Decision::Attributed);
        assert_eq!(r.usage_status, Some(UsageStatus::Reported), "split {split}");
        assert!(r.tokens.input.is_some() && r.tokens.output.is_some(), "split {split}");
        assert_eq!(r.request_model.as_deref(), Some("gpt-4o"));
        assert!(r.cost_usd.is_some());
        assert!(f
            .scalars
            .iter()
            .any(|(k, v)| k == "ai_attribution.user" && v == "alice"));
        assert!(!f.structured.is_empty());
        assert_eq!(f.counts.len(), 5, "requests, two token directions, cost, usage");
    }
}

#[test]
fn an_attributed_call_records_usage_from_a_stream_at_every_split() {
    for split in 1..40 {
        let f = attributed_call(OPENAI_SSE, "text/event-stream", split);
        assert_eq!(f.record.usage_status, Some(UsageStatus::Reported), "split {split}");
        assert_eq!(f.record.stream, Some(true));
    }
}

#[test]
fn an_unattributed_call_is_rejected_at_the_headers() {
    let c = cfg(USER_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, step) = Call::start(&c, &request("/v1/chat/completions", &[]), false, &mut host, &mut vm);
    let mut call = call.unwrap();
    assert_eq!(step.flow, Flow::Pause);
    let reply = reply_of(&step).expect("a rejection");
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("missing user"));
    assert!(!call.wants_request_body());
    // Envoy runs the response callbacks for the local reply too: nothing is read from it.
    let _ = call.on_response_headers(
        &headers(&[(":status", "403"), ("content-type", "application/json")]),
        false,
    );
    assert!(!call.wants_response_body());
    let f = call.finish(&mut host, &mut vm);
    assert_eq!(f.record.decision, Decision::Rejected);
    assert_eq!(f.record.reason, "missing:user");
    assert_eq!(f.record.usage_status, Some(UsageStatus::NotApplicable));
}

#[test]
fn other_requests_pass_but_lose_spoofed_headers() {
    let c = cfg(USER_CONFIG);
    let mut host = MapAttributes::default();
    let (call, step) = Call::start(
        &c,
        &request(
            "/healthz",
            &[("x-ai-user", "ceo"), ("X_AI_Team", "x"), ("baggage", "k=v,ai.user=ceo")],
        ),
        true,
        &mut host,
        &mut vm(),
    );
    assert!(call.is_none());
    assert_eq!(step.flow, Flow::Continue);
    assert!(removes(&step, "x-ai-user"));
    assert!(removes(&step, "x_ai_team"));
    assert_eq!(sets(&step, "baggage").as_deref(), Some("k=v"));
    // Nothing to strip: no effect at all.
    let (_, step) = Call::start(&c, &request("/healthz", &[]), true, &mut host, &mut vm());
    assert_eq!(step, Step::proceed());
}

#[test]
fn a_trusted_peer_keeps_its_headers_and_its_correlation_id() {
    let c = cfg(r#"{"dimensions":{"user":["header:x-ai-user"]},"require":[["user"]],
           "header_trust":{"peers":["spiffe://corp/ns/edge/sa/gw"]}}"#);
    let mut host = MapAttributes::default();
    host.set("connection.uri_san_peer_certificate", "spiffe://corp/ns/edge/sa/gw");
    let h = request(
        "/v1/chat/completions",
        &[
            ("x-ai-user", "alice"),
            ("x-ai-correlation-id", "hop-1-id"),
            ("x-request-id", "r"),
        ],
    );
    let (call, step) = Call::start(&c, &h, true, &mut host, &mut vm());
    let call = call.unwrap();
    assert!(!removes(&step, "x-ai-user"));
    assert_eq!(call.correlation_id(), "hop-1-id");
    assert_eq!(call.decision(), Decision::Attributed);
    // The same headers from anyone else: stripped, untrusted, and a fresh correlation ID.
    let mut stranger = MapAttributes::default();
    let (call, step) = Call::start(&c, &h, true, &mut stranger, &mut vm());
    let call = call.unwrap();
    assert!(
        reply_of(&step).is_some(),
        "untrusted, so unattributed: rejected, never forwarded"
    );
    assert_ne!(call.correlation_id(), "hop-1-id");
    assert_eq!(call.correlation_id().len(), 36);
    assert_eq!(call.decision(), Decision::Rejected);
    // A trusted hop's x-request-id may be its caller's choice: without the correlation header,
    // a new ID.
    let h = request(
        "/v1/chat/completions",
        &[("x-ai-user", "alice"), ("x-request-id", "chosen")],
    );
    let (call, _) = Call::start(&c, &h, true, &mut host, &mut vm());
    assert_ne!(call.unwrap().correlation_id(), "chosen");
}

#[test]
fn callers_never_choose_their_correlation_id() {
    let c = cfg(USER_CONFIG);
    let mut host = MapAttributes::default();
    let h = request("/v1/chat/completions", &[("x-user-id", "a"), ("x-request-id", "same")]);
    let mut vm = vm();
    let (a, _) = Call::start(&c, &h, true, &mut host, &mut vm);
    let (b, _) = Call::start(&c, &h, true, &mut host, &mut vm);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.correlation_id(), "same");
    assert_ne!(a.correlation_id(), b.correlation_id());
    let f = a.finish(&mut host, &mut vm);
    assert_eq!(f.record.request_id.as_deref(), Some("same"));
}

const BODY_CONFIG: &str = r#"{"dimensions":{"user":["header:x-user-id","body:user"],"app":["body:metadata.app"]},
    "require":[["user"]]}"#;

#[test]
fn a_decision_waits_for_a_body_source_then_releases_the_body() {
    let c = cfg(BODY_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, step) = Call::start(&c, &request("/v1/chat/completions", &[]), false, &mut host, &mut vm);
    let mut call = call.unwrap();
    // The headers go on (edited); the body is held.
    assert_eq!(step.flow, Flow::Continue);
    assert!(sets(&step, "x-ai-correlation-id").is_some());
    assert_eq!(
        call.on_request_body(br#"{"model":"gpt-4o","#, false, &mut host).flow,
        Flow::Pause
    );
    let step = call.on_request_body(br#""user":"bob","messages":[]"#, false, &mut host);
    assert_eq!(
        step,
        Step::proceed(),
        "released as soon as a body field attributes the call"
    );
    assert_eq!(call.decision(), Decision::Attributed);
    let _ = call.on_request_body(br#","metadata":{"app":"nb"}}"#, true, &mut host);
    let _ = call.on_response_headers(&headers(&[("content-type", "application/json")]), true);
    let f = call.finish(&mut host, &mut vm);
    assert_eq!(f.record.sources, "app=body:metadata.app,user=body:user");
    assert_eq!(f.record.usage_status, Some(UsageStatus::Missing));
}

#[test]
fn a_body_that_never_attributes_is_rejected_at_its_end() {
    let c = cfg(BODY_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, _) = Call::start(&c, &request("/v1/chat/completions", &[]), false, &mut host, &mut vm);
    let mut call = call.unwrap();
    assert_eq!(
        call.on_request_body(br#"{"model":"m","#, false, &mut host).flow,
        Flow::Pause
    );
    let step = call.on_request_body(br#""messages":[]}"#, true, &mut host);
    assert_eq!(step.flow, Flow::Pause);
    assert!(reply_of(&step).unwrap().body.contains("body:user"));
    let f = call.finish(&mut host, &mut vm);
    assert_eq!(f.record.decision, Decision::Rejected);
    assert_eq!(f.record.usage_status, Some(UsageStatus::NotApplicable));
}

#[test]
fn a_client_that_leaves_while_the_body_is_held_is_decided_on_what_arrived() {
    let c = cfg(BODY_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, _) = Call::start(&c, &request("/v1/chat/completions", &[]), false, &mut host, &mut vm);
    let mut call = call.unwrap();
    assert_eq!(
        call.on_request_body(br#"{"model":"m","mess"#, false, &mut host).flow,
        Flow::Pause
    );
    let f = call.finish(&mut host, &mut vm);
    assert_eq!(f.record.decision, Decision::Rejected);
    assert_eq!(f.record.reason, "missing:user");
    // Attributed before the client left: never forwarded, so usage is partial.
    let (call, _) = Call::start(&c, &request("/v1/chat/completions", &[]), false, &mut host, &mut vm);
    let mut call = call.unwrap();
    let _ = call.on_request_body(br#"{"user":"u","a":[1,2"#, false, &mut host);
    let f = call.finish(&mut host, &mut vm);
    assert_eq!(f.record.decision, Decision::Attributed);
    assert_eq!(f.record.usage_status, Some(UsageStatus::Partial));
}

#[test]
fn an_optional_body_dimension_reaches_the_record_when_headers_decided() {
    // Decided at the headers (x-user-id), yet `app` can only come from the body.
    let c = cfg(BODY_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, step) = Call::start(
        &c,
        &request("/v1/chat/completions", &[("x-user-id", "alice")]),
        false,
        &mut host,
        &mut vm,
    );
    let mut call = call.unwrap();
    assert_eq!(step.flow, Flow::Continue);
    assert_eq!(
        call.on_request_body(br#"{"metadata":{"app":"notebook"},"user":"bob"}"#, true, &mut host),
        Step::proceed()
    );
    let f = call.finish(&mut host, &mut vm);
    let app = f.record.dimensions.iter().find(|(d, _)| d == "app").unwrap();
    assert_eq!(app.1.as_deref(), Some("notebook"));
    // The header still outranks the body for `user`.
    let user = f.record.dimensions.iter().find(|(d, _)| d == "user").unwrap();
    assert_eq!(user.1.as_deref(), Some("alice"));
}

#[test]
fn calls_cut_short_are_partial_before_and_after_the_answer() {
    let c = cfg(USER_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let h = request("/v1/chat/completions", &[("x-user-id", "alice")]);
    // Before the answer: no response at all.
    let (call, _) = Call::start(&c, &h, true, &mut host, &mut vm);
    let f = call.unwrap().finish(&mut host, &mut vm);
    assert_eq!(f.record.usage_status, Some(UsageStatus::Partial));
    // After the answer started: the body never ended.
    let (call, _) = Call::start(&c, &h, true, &mut host, &mut vm);
    let mut call = call.unwrap();
    let _ = call.on_response_headers(&headers(&[("content-type", "text/event-stream")]), false);
    let _ = call.on_response_body(&OPENAI_SSE[..OPENAI_SSE.len() / 2], false);
    let f = call.finish(&mut host, &mut vm);
    assert_eq!(f.record.usage_status, Some(UsageStatus::Partial));
}

#[test]
fn force_stream_usage_holds_the_body_and_sets_include_usage() {
    let c =
        cfg(r#"{"dimensions":{"user":["header:x-user-id"]},"require":[["user"]],"usage":{"force_stream_usage":true}}"#);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let start = |vm: &mut VmState, host: &mut MapAttributes| {
        let (call, step) = Call::start(
            &c,
            &request("/v1/chat/completions", &[("x-user-id", "a")]),
            false,
            host,
            vm,
        );
        assert!(removes(&step, "content-length"));
        call.unwrap()
    };
    // A stream_options member the client sent without include_usage is completed, not ignored.
    let mut call = start(&mut vm, &mut host);
    assert_eq!(
        call.on_request_body(br#"{"model":"m","stream_options":{"#, false, &mut host)
            .flow,
        Flow::Pause
    );
    let step = call.on_request_body(br#""include_usage":false},"stream":true}"#, true, &mut host);
    let Some(Effect::ReplaceRequestBody { len, with }) = step.effects.first() else {
        panic!("expected a rewrite, got {step:?}");
    };
    assert_eq!(*len, 68);
    assert_eq!(
        with.as_slice(),
        br#"{"model":"m","stream_options":{"include_usage":true},"stream":true}"#
    );
    assert_eq!(step.flow, Flow::Continue);
    // A request that does not stream goes on unchanged.
    let mut call = start(&mut vm, &mut host);
    assert_eq!(
        call.on_request_body(br#"{"model":"m"}"#, true, &mut host),
        Step::proceed()
    );
}

#[test]
fn metric_series_are_capped_per_metric_not_per_label() {
    let c = cfg(
        r#"{"dimensions":{"user":["header:x-user-id"],"app":["header:x-app"],"team":["header:x-team"]},
           "require":[["user"]],"metrics":{"labels":["provider","user","app","team"],"max_label_values":8}}"#,
    );
    let mut host = MapAttributes::default();
    let mut vm = VmState::new([3; 32], c.max_label_values);
    let mut series = std::collections::BTreeSet::new();
    for i in 0..30 {
        let (u, a, t) = (format!("u{i}"), format!("a{i}"), format!("t{i}"));
        let h = request(
            "/v1/chat/completions",
            &[("x-user-id", &u), ("x-app", &a), ("x-team", &t)],
        );
        let (call, _) = Call::start(&c, &h, true, &mut host, &mut vm);
        for (id, _) in call.unwrap().finish(&mut host, &mut vm).counts {
            series.insert(vm.series_name(id).unwrap().to_string());
        }
    }
    let requests: Vec<&String> = series
        .iter()
        .filter(|s| s.starts_with(crate::metrics::REQUESTS))
        .collect();
    // The first 8 label combinations keep their series; later ones share the `other` series.
    assert_eq!(requests.len(), 9, "{requests:?}");
    assert!(requests.iter().any(|s| s.ends_with(";user=other;app=other;team=other")));
    assert!(requests.iter().any(|s| s.contains(";user=u0;app=a0;team=t0")));
}

// ---------------------------------------------------------------- agent tool calls (MCP)

const MCP_CONFIG: &str = r#"{"dimensions":{"service_account":["header:x-service-account"],"session":["mcp:session"],
    "user":["header:x-user-id"]},"require":[["user"]],
    "mcp":{"endpoints":[{"path_prefix":"/mcp"}],"require":[["service_account"]]}}"#;

struct ToolRun {
    step: Step,
    finished: Finished,
}

/// A POST to `/mcp` with `body` (fed in one chunk), answered with `answer` when forwarded.
fn tool_call(
    config: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    answer: Option<(&str, &[u8])>,
    vm: &mut VmState,
) -> ToolRun {
    let c = cfg(config);
    let mut host = MapAttributes::default();
    let (call, first) = Call::start(&c, &request("/mcp", extra), false, &mut host, vm);
    let mut call = call.expect("a tool call");
    assert_eq!(first.flow, Flow::Continue, "the headers go on; the body is held");
    let step = call.on_request_body(body, true, &mut host);
    if reply_of(&step).is_none() {
        if let Some((content_type, bytes)) = answer {
            let _ = call.on_response_headers(&headers(&[(":status", "200"), ("content-type", content_type)]), false);
            let _ = call.on_response_body(bytes, true);
        }
    }
    ToolRun {
        step,
        finished: call.finish(&mut host, vm),
    }
}

fn scalar<'a>(f: &'a Finished, key: &str) -> Option<&'a str> {
    let key = format!("ai_attribution.{key}");
    f.scalars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

const CALL_WEATHER: &[u8] =
    br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Paris"}}}"#;

#[test]
fn an_attributed_tool_call_is_recorded_with_its_tool_and_outcome() {
    let answer = br#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":true}}"#;
    let run = tool_call(
        MCP_CONFIG,
        &[
            ("x-service-account", "agent-a"),
            ("mcp-session-id", "s-1"),
            ("mcp-protocol-version", "2025-11-25"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ],
        CALL_WEATHER,
        Some(("application/json", answer)),
        &mut vm(),
    );
    assert_eq!(run.step, Step::proceed());
    let f = &run.finished;
    assert_eq!(scalar(f, "event"), Some("tool_call"));
    assert_eq!(scalar(f, "decision"), Some("attributed"));
    assert_eq!(scalar(f, "provider"), Some("mcp"));
    assert_eq!(scalar(f, "operation"), Some("execute_tool"));
    assert_eq!(scalar(f, "tool"), Some("get_weather"));
    assert_eq!(scalar(f, "mcp_method"), Some("tools/call"));
    assert_eq!(scalar(f, "jsonrpc_id"), Some("7"));
    assert_eq!(scalar(f, "session"), Some("s-1"));
    assert_eq!(scalar(f, "mcp_session"), Some("s-1"));
    assert_eq!(scalar(f, "mcp_protocol_version"), Some("2025-11-25"));
    assert_eq!(scalar(f, "error_type"), Some("tool_error"));
    assert_eq!(scalar(f, "rpc_status"), None);
    assert_eq!(scalar(f, "trace_id"), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(scalar(f, "usage_status"), None);
    assert_eq!(scalar(f, "mcp_header_mismatch"), None);
}

#[test]
fn an_unattributed_tool_call_gets_a_json_rpc_error_for_its_id() {
    let run = tool_call(
        MCP_CONFIG,
        &[],
        br#"{"jsonrpc":"2.0","id":"call-9","method":"tools/call","params":{"name":"get_weather"}}"#,
        None,
        &mut vm(),
    );
    let reply = reply_of(&run.step).expect("a rejection");
    assert_eq!(reply.status, 403);
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], "call-9");
    assert_eq!(body["error"]["code"], crate::mcp::UNATTRIBUTED_CODE);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("This tool call cannot be attributed: missing service_account."),
        "{message}"
    );
    assert_eq!(body["error"]["data"]["missing"], serde_json::json!(["service_account"]));
    assert_eq!(
        body["error"]["data"]["correlation_id"],
        scalar(&run.finished, "correlation_id").unwrap()
    );
    assert_eq!(scalar(&run.finished, "decision"), Some("rejected"));
    assert_eq!(scalar(&run.finished, "tool"), Some("get_weather"));
    assert_eq!(scalar(&run.finished, "jsonrpc_id"), Some("call-9"));
}

#[test]
fn methods_outside_mcp_methods_are_exempt_when_unattributed() {
    for body in [
        &br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#[..],
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        br#"[{"jsonrpc":"2.0","id":3,"method":"tools/list"},{"jsonrpc":"2.0","id":4,"method":"ping"}]"#,
    ] {
        let run = tool_call(MCP_CONFIG, &[], body, Some(("application/json", b"{}")), &mut vm());
        assert_eq!(run.step, Step::proceed(), "{}", String::from_utf8_lossy(body));
        assert_eq!(scalar(&run.finished, "decision"), Some("exempt"));
    }
}

#[test]
fn a_body_the_reader_cannot_read_must_be_attributed() {
    for body in [&b"{not json"[..], b"", b"[]", b"   "] {
        let run = tool_call(MCP_CONFIG, &[], body, None, &mut vm());
        assert!(reply_of(&run.step).is_some(), "{:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn a_batch_with_one_required_method_is_refused_for_every_id() {
    let body = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_weather"}},{"jsonrpc":"2.0","method":"notifications/progress"}]"#;
    let run = tool_call(MCP_CONFIG, &[], body, None, &mut vm());
    let reply = reply_of(&run.step).expect("a rejection");
    let answers: Vec<serde_json::Value> = serde_json::from_str(&reply.body).unwrap();
    let ids: Vec<_> = answers.iter().map(|a| a["id"].clone()).collect();
    assert_eq!(ids, vec![serde_json::json!(1), serde_json::json!(2)]);
    assert_eq!(
        scalar(&run.finished, "tool"),
        Some("get_weather"),
        "the record names the required call"
    );
}

#[test]
fn a_get_without_a_body_is_exempt() {
    let c = cfg(MCP_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let get = headers(&[
        (":method", "GET"),
        (":path", "/mcp"),
        (":authority", "m"),
        ("mcp-session-id", "s"),
    ]);
    let (call, step) = Call::start(&c, &get, true, &mut host, &mut vm);
    assert!(reply_of(&step).is_none());
    let f = call.expect("a tool call").finish(&mut host, &mut vm);
    assert_eq!(scalar(&f, "decision"), Some("exempt"));
    assert_eq!(scalar(&f, "operation"), Some("mcp"));
}

#[test]
fn mirrored_headers_that_disagree_are_recorded_or_refused() {
    let lying = [
        ("x-service-account", "agent-a"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "harmless"),
    ];
    let run = tool_call(
        MCP_CONFIG,
        &lying,
        CALL_WEATHER,
        Some(("application/json", b"{}")),
        &mut vm(),
    );
    assert_eq!(run.step, Step::proceed());
    assert_eq!(scalar(&run.finished, "mcp_header_mismatch"), Some("true"));

    let strict = MCP_CONFIG.replace(
        r#""require":[["service_account"]]}"#,
        r#""require":[["service_account"]],"header_mismatch":"reject"}"#,
    );
    let run = tool_call(&strict, &lying, CALL_WEATHER, None, &mut vm());
    let reply = reply_of(&run.step).expect("a 400");
    assert_eq!(reply.status, 400);
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"]["code"], crate::mcp::HEADER_MISMATCH_CODE);
    assert_eq!(body["id"], 7);
    assert_eq!(scalar(&run.finished, "decision"), Some("attributed"));
    assert_eq!(scalar(&run.finished, "rpc_status"), Some("-32020"));

    let base64 = [
        ("x-service-account", "agent-a"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "=?base64?Z2V0X3dlYXRoZXI=?="),
    ];
    let run = tool_call(
        &strict,
        &base64,
        CALL_WEATHER,
        Some(("application/json", b"{}")),
        &mut vm(),
    );
    assert_eq!(run.step, Step::proceed(), "a base64 name that agrees passes");
}

#[test]
fn a_session_used_by_another_service_account_is_flagged() {
    let mut vm = vm();
    let opened = tool_call(
        MCP_CONFIG,
        &[("x-service-account", "agent-a"), ("mcp-session-id", "s-9")],
        CALL_WEATHER,
        Some(("application/json", b"{}")),
        &mut vm,
    );
    assert_eq!(scalar(&opened.finished, "mcp_session_mismatch"), None);
    let other = tool_call(
        MCP_CONFIG,
        &[("x-service-account", "agent-b"), ("mcp-session-id", "s-9")],
        CALL_WEATHER,
        Some(("application/json", b"{}")),
        &mut vm,
    );
    assert_eq!(scalar(&other.finished, "mcp_session_mismatch"), Some("true"));
    assert_eq!(scalar(&other.finished, "decision"), Some("attributed"));
}

#[test]
fn an_sse_answer_gives_the_outcome_of_the_request() {
    let sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32603,\"message\":\"boom\"}}\n\n";
    let run = tool_call(
        MCP_CONFIG,
        &[("x-service-account", "agent-a")],
        CALL_WEATHER,
        Some(("text/event-stream", sse)),
        &mut vm(),
    );
    assert_eq!(scalar(&run.finished, "rpc_status"), Some("-32603"));
    assert_eq!(scalar(&run.finished, "error_type"), Some("-32603"));
}

#[test]
fn tool_calls_count_in_their_own_metric() {
    let mut vm = vm();
    let run = tool_call(
        MCP_CONFIG,
        &[("x-service-account", "agent-a")],
        CALL_WEATHER,
        Some(("application/json", b"{}")),
        &mut vm,
    );
    let names: Vec<&str> = run
        .finished
        .counts
        .iter()
        .filter_map(|(id, _)| vm.series_name(*id))
        .collect();
    assert_eq!(
        names,
        vec!["ai_attribution_tool_calls_total;decision=attributed;mcp_method=tools/call;tool=get_weather"]
    );
}

#[test]
fn model_calls_are_not_tool_calls_even_with_mcp_configured() {
    let c = cfg(MCP_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, _) = Call::start(
        &c,
        &request("/v1/chat/completions", &[("x-user-id", "alice")]),
        true,
        &mut host,
        &mut vm,
    );
    let f = call.expect("a model call").finish(&mut host, &mut vm);
    assert_eq!(scalar(&f, "event"), Some("model_call"));
    assert_eq!(scalar(&f, "mcp_method"), None);
}

#[test]
fn a_tool_call_is_decided_once_its_method_is_read() {
    let c = cfg(MCP_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    // Unattributed: refused as soon as the method is known, before the long arguments end.
    let (call, _) = Call::start(&c, &request("/mcp", &[]), false, &mut host, &mut vm);
    let mut call = call.unwrap();
    let step = call.on_request_body(br#"{"jsonrpc":"2.0","id":1,"method":"tools"#, false, &mut host);
    assert_eq!(step.flow, Flow::Pause, "the method is not known yet");
    let step = call.on_request_body(br#"/call","params":{"arguments":{"notes":"xxxx"#, false, &mut host);
    assert!(reply_of(&step).is_some(), "refused on the method alone");
    // Not required: exempt once the whole message is read (a later duplicate `method` would win).
    let (call, _) = Call::start(&c, &request("/mcp", &[]), false, &mut host, &mut vm);
    let mut call = call.unwrap();
    let step = call.on_request_body(
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"xx"#,
        false,
        &mut host,
    );
    assert_eq!(step.flow, Flow::Pause);
    let step = call.on_request_body(br#""}}"#, false, &mut host);
    assert_eq!(step, Step::proceed());
    let (call, _) = Call::start(&c, &request("/mcp", &[]), false, &mut host, &mut vm);
    let mut call = call.unwrap();
    let step = call.on_request_body(
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{},"method":"tools/call"}"#,
        false,
        &mut host,
    );
    assert!(reply_of(&step).is_some(), "the last method is the one a server reads");
    // Attributed by its headers: goes on at once, and the body is still read for the record.
    let (call, step) = Call::start(
        &c,
        &request("/mcp", &[("x-service-account", "a")]),
        false,
        &mut host,
        &mut vm,
    );
    let mut call = call.unwrap();
    assert!(reply_of(&step).is_none());
    assert!(call.wants_request_body());
    let step = call.on_request_body(CALL_WEATHER, true, &mut host);
    assert_eq!(step, Step::proceed());
    let f = call.finish(&mut host, &mut vm);
    assert_eq!(scalar(&f, "tool"), Some("get_weather"));
}
