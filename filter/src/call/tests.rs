//! The call lifecycle, phase by phase, with no Envoy: plain headers and body chunks in, steps and
//! the record out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::host::MapAttributes;
use crate::record::UsageStatus;

fn cfg(json: &str) -> Rc<Config> {
    Rc::new(Config::parse(json.as_bytes()).unwrap())
}

fn headers<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
    pairs.iter().map(|(k, v)| (*k, v.as_bytes())).collect()
}

fn request<'a>(path: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
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
            .scalars()
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
fn a_request_whose_headers_cannot_be_read_is_answered_500_and_held() {
    let step = Call::unreadable_request();
    assert_eq!(step.flow, Flow::Pause);
    assert_eq!(reply_of(&step).map(|r| r.status), Some(500));
    assert_eq!(step.effects.len(), 1);
}

#[test]
fn a_series_is_defined_on_the_host_once_and_asked_again_only_while_undefined() {
    let mut vm = vm();
    let series = vm.series("ai_attribution_requests_total", &[("decision", "attributed")]);
    let mut asked = Vec::new();
    // The host refuses the first definition: nothing is kept, so the next call asks again.
    assert_eq!(
        vm.host_metric_id(series, |name| {
            asked.push(name.to_string());
            None
        }),
        None
    );
    assert_eq!(vm.host_metric_id(series, |_| Some(7)), Some(7));
    assert_eq!(vm.host_metric_id(series, |_| panic!("defined twice")), Some(7));
    assert_eq!(asked, ["ai_attribution_requests_total;decision=attributed"]);
    // A series the VM never named has no id to define.
    assert_eq!(vm.host_metric_id(series + 1, |_| Some(8)), None);
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

fn scalar(f: &Finished, key: &str) -> Option<String> {
    let key = format!("ai_attribution.{key}");
    f.scalars()
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.into_owned())
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
    assert_eq!(scalar(f, "event").as_deref(), Some("tool_call"));
    assert_eq!(scalar(f, "decision").as_deref(), Some("attributed"));
    assert_eq!(scalar(f, "provider").as_deref(), Some("mcp"));
    assert_eq!(scalar(f, "operation").as_deref(), Some("execute_tool"));
    assert_eq!(scalar(f, "tool").as_deref(), Some("get_weather"));
    assert_eq!(scalar(f, "mcp_method").as_deref(), Some("tools/call"));
    assert_eq!(scalar(f, "jsonrpc_id").as_deref(), Some("7"));
    assert_eq!(scalar(f, "session").as_deref(), Some("s-1"));
    assert_eq!(scalar(f, "mcp_session").as_deref(), Some("s-1"));
    assert_eq!(scalar(f, "mcp_protocol_version").as_deref(), Some("2025-11-25"));
    assert_eq!(scalar(f, "error_type").as_deref(), Some("tool_error"));
    assert_eq!(scalar(f, "rpc_status").as_deref(), None);
    assert_eq!(
        scalar(f, "trace_id").as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(scalar(f, "usage_status").as_deref(), None);
    assert_eq!(scalar(f, "mcp_header_mismatch").as_deref(), None);
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
        scalar(&run.finished, "correlation_id").as_deref().unwrap()
    );
    assert_eq!(scalar(&run.finished, "decision").as_deref(), Some("rejected"));
    assert_eq!(scalar(&run.finished, "tool").as_deref(), Some("get_weather"));
    assert_eq!(scalar(&run.finished, "jsonrpc_id").as_deref(), Some("call-9"));
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
        assert_eq!(scalar(&run.finished, "decision").as_deref(), Some("exempt"));
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
        scalar(&run.finished, "tool").as_deref(),
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
    assert_eq!(scalar(&f, "decision").as_deref(), Some("exempt"));
    assert_eq!(scalar(&f, "operation").as_deref(), Some("mcp"));
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
    assert_eq!(scalar(&run.finished, "mcp_header_mismatch").as_deref(), Some("true"));

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
    assert_eq!(scalar(&run.finished, "decision").as_deref(), Some("attributed"));
    assert_eq!(scalar(&run.finished, "rpc_status").as_deref(), Some("-32020"));

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
    assert_eq!(scalar(&opened.finished, "mcp_session_mismatch").as_deref(), None);
    let other = tool_call(
        MCP_CONFIG,
        &[("x-service-account", "agent-b"), ("mcp-session-id", "s-9")],
        CALL_WEATHER,
        Some(("application/json", b"{}")),
        &mut vm,
    );
    assert_eq!(scalar(&other.finished, "mcp_session_mismatch").as_deref(), Some("true"));
    assert_eq!(scalar(&other.finished, "decision").as_deref(), Some("attributed"));
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
    assert_eq!(scalar(&run.finished, "rpc_status").as_deref(), Some("-32603"));
    assert_eq!(scalar(&run.finished, "error_type").as_deref(), Some("-32603"));
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
    assert_eq!(scalar(&f, "event").as_deref(), Some("model_call"));
    assert_eq!(scalar(&f, "mcp_method").as_deref(), None);
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
    assert_eq!(scalar(&f, "tool").as_deref(), Some("get_weather"));
}

// ---------------------------------------------------------------- budgets (quota)

const QUOTA_CONFIG: &str = r#"{"dimensions":{"user":["header:x-user-id"],"business_unit":["header:x-bu"],
    "service_account":["peer:spiffe_id"]},
    "require":[["user","business_unit"]],
    "pricing":{"gpt-4o*":{"input":2.5,"output":10},"o3-mini*":{"input":1.1,"output":4.4}},
    "quota":{"cluster":"ratelimit","budgets":[
        {"name":"tokens_per_bu","descriptors":["business_unit"],"hits":"tokens"},
        {"name":"cost_per_bu_model","descriptors":["business_unit","model"],"hits":"cost_microusd"},
        {"name":"requests_per_user","descriptors":["user"],"hits":"requests"}]}}"#;

fn check_of(step: &Step) -> Option<&Vec<u8>> {
    step.effects.iter().find_map(|e| match e {
        Effect::CheckQuota { message, .. } => Some(message),
        _ => None,
    })
}

/// A RateLimitResponse: overall code and one status per descriptor (code, reset seconds).
fn answer(overall: u64, statuses: &[(u64, Option<u64>)]) -> crate::quota::CheckAnswer {
    use crate::protobuf::length_delimited;
    let mut out = vec![0x08, overall as u8];
    for (code, reset) in statuses {
        let mut status = vec![0x08, *code as u8];
        if let Some(r) = reset {
            let mut duration = vec![0x08];
            crate::protobuf::varint(*r, &mut duration);
            length_delimited(4, &duration, &mut status);
        }
        length_delimited(2, &status, &mut out);
    }
    crate::quota::CheckAnswer::Answer(out)
}

fn decoded_entries(message: &[u8]) -> Vec<String> {
    // The descriptors' entries as key=value text, for assertions.
    let text = String::from_utf8_lossy(message).into_owned();
    text.chars()
        .filter(|c| c.is_ascii_graphic())
        .collect::<String>()
        .split(' ')
        .map(str::to_string)
        .collect()
}

#[test]
fn budgets_are_checked_before_and_charged_after_the_call() {
    let c = cfg(QUOTA_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, step) = Call::start(
        &c,
        &request("/v1/chat/completions", &[("x-user-id", "alice"), ("x-bu", "finance")]),
        false,
        &mut host,
        &mut vm,
    );
    let mut call = call.unwrap();
    assert_eq!(
        step.flow,
        Flow::Continue,
        "the model is in the body: the headers go on, the body is held"
    );
    assert!(check_of(&step).is_none());
    let step = call.on_request_body(br#"{"model":"gpt-4o","messages":[]}"#, true, &mut host);
    assert_eq!(step.flow, Flow::Pause, "held until the service answers");
    let check = check_of(&step).expect("a check").clone();
    assert_eq!(
        check,
        crate::quota::wire::encode_request(
            "ai-attribution",
            &[
                crate::quota::wire::Descriptor {
                    entries: vec![
                        ("budget".into(), "tokens_per_bu".into()),
                        ("business_unit".into(), "finance".into())
                    ],
                    hits: 0
                },
                crate::quota::wire::Descriptor {
                    entries: vec![
                        ("budget".into(), "cost_per_bu_model".into()),
                        ("business_unit".into(), "finance".into()),
                        ("model".into(), "gpt-4o".into())
                    ],
                    hits: 0
                },
                crate::quota::wire::Descriptor {
                    entries: vec![
                        ("budget".into(), "requests_per_user".into()),
                        ("user".into(), "alice".into())
                    ],
                    hits: 0
                },
            ]
        )
    );
    assert!(call.awaits_quota());
    assert_eq!(
        call.on_quota_answer(&answer(1, &[(1, None), (1, None), (1, None)])),
        Step::proceed()
    );
    let _ = call.on_response_headers(
        &headers(&[(":status", "200"), ("content-type", "application/json")]),
        false,
    );
    let _ = call.on_response_body(OPENAI_JSON, true);
    let f = call.finish(&mut host, &mut vm);
    let q = f.record.quota.clone().unwrap();
    assert_eq!(q.budgets, "tokens_per_bu,cost_per_bu_model,requests_per_user");
    assert_eq!(q.outcome, Some("ok"));
    let tokens = f.record.tokens.input.unwrap() + f.record.tokens.output.unwrap();
    let cost = crate::metrics::micro_usd(f.record.cost_usd.unwrap());
    assert_eq!(
        q.reported.as_deref(),
        Some(format!("tokens_per_bu={tokens},cost_per_bu_model={cost},requests_per_user=1").as_str())
    );
    // The record carries what the quota step did, in both forms.
    assert_eq!(
        scalar(&f, "quota_budgets").as_deref(),
        Some("tokens_per_bu,cost_per_bu_model,requests_per_user")
    );
    assert_eq!(scalar(&f, "quota_outcome").as_deref(), Some("ok"));
    assert_eq!(scalar(&f, "quota_over").as_deref(), None);
    assert_eq!(scalar(&f, "quota_reported").as_deref(), q.reported.as_deref());
    let structured = String::from_utf8_lossy(&f.structured).into_owned();
    for key in [
        "ai_attribution.quota.budgets",
        "ai_attribution.quota.outcome",
        "ai_attribution.quota.reported",
    ] {
        assert!(structured.contains(key), "{key} in the structured record");
    }
    let report = f.quota_report.expect("one report");
    assert_eq!(report.cluster, "ratelimit");
    let charge = |name: &str, key: &str, value: &str, hits: u64| crate::quota::wire::Descriptor {
        entries: vec![("budget".into(), name.into()), (key.into(), value.into())],
        hits,
    };
    let mut cost_descriptor = charge("cost_per_bu_model", "business_unit", "finance", cost);
    cost_descriptor.entries.push(("model".into(), "gpt-4o".into()));
    assert_eq!(
        report.message,
        crate::quota::wire::encode_request(
            "ai-attribution",
            &[
                charge("tokens_per_bu", "business_unit", "finance", tokens),
                cost_descriptor,
                charge("requests_per_user", "user", "alice", 1),
            ]
        )
    );
}

#[test]
fn the_request_stays_held_while_the_check_is_in_flight() {
    // Envoy often delivers the whole body without end_of_stream, then an empty end: that last
    // callback must be held too, or the call goes upstream before the service has answered.
    let c = cfg(QUOTA_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, _) = Call::start(
        &c,
        &request("/v1/chat/completions", &[("x-user-id", "alice"), ("x-bu", "finance")]),
        false,
        &mut host,
        &mut vm,
    );
    let mut call = call.unwrap();
    let step = call.on_request_body(br#"{"model":"gpt-4o","messages":[]}"#, false, &mut host);
    assert!(check_of(&step).is_some());
    assert_eq!(step.flow, Flow::Pause);
    assert!(call.wants_request_body(), "the end of the body is still to be held");
    assert_eq!(call.on_request_body(b"", true, &mut host).flow, Flow::Pause);
    assert_eq!(
        call.on_quota_answer(&answer(1, &[(1, None), (1, None), (1, None)])),
        Step::proceed()
    );
    assert!(!call.wants_request_body(), "released with the answer");

    // The same when the path names the model: the check starts at the headers, and the body
    // callbacks that follow are held as well.
    let (call, step) = Call::start(
        &c,
        &request(
            "/v1beta/models/gemini-2.0-flash:generateContent",
            &[("x-user-id", "alice"), ("x-bu", "finance")],
        ),
        false,
        &mut host,
        &mut vm,
    );
    let mut call = call.unwrap();
    assert!(check_of(&step).is_some());
    assert_eq!(step.flow, Flow::Pause);
    assert!(call.wants_request_body());
    assert_eq!(
        call.on_request_body(br#"{"contents":[]}"#, true, &mut host).flow,
        Flow::Pause
    );
}

#[test]
fn a_spent_budget_refuses_the_call_with_429_and_no_report() {
    let c = cfg(QUOTA_CONFIG);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, step) = Call::start(
        &c,
        &request(
            "/v1beta/models/gemini-2.0-flash:generateContent",
            &[("x-user-id", "alice"), ("x-bu", "finance")],
        ),
        false,
        &mut host,
        &mut vm,
    );
    let mut call = call.unwrap();
    assert!(
        check_of(&step).is_some(),
        "the path names the model: checked at the headers"
    );
    assert_eq!(step.flow, Flow::Pause);
    let step = call.on_quota_answer(&answer(2, &[(2, Some(3600)), (1, None), (1, None)]));
    let reply = reply_of(&step).expect("refused");
    assert_eq!(reply.status, 429);
    assert!(reply.headers.contains(&("retry-after".to_string(), "3600".to_string())));
    assert!(reply
        .headers
        .contains(&("x-should-retry".to_string(), "false".to_string())));
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("tokens_per_bu (tokens) for business_unit=finance"),
        "{message}"
    );
    assert!(message.contains("resets in 3600 s"), "{message}");
    let f = call.finish(&mut host, &mut vm);
    assert_eq!(f.record.decision, Decision::Attributed, "attributed, then over budget");
    let q = f.record.quota.clone().unwrap();
    assert_eq!(
        (q.outcome, q.over.as_deref()),
        (Some("over_budget"), Some("tokens_per_bu"))
    );
    assert_eq!(
        (
            scalar(&f, "quota_outcome").as_deref(),
            scalar(&f, "quota_over").as_deref()
        ),
        (Some("over_budget"), Some("tokens_per_bu"))
    );
    assert_eq!(scalar(&f, "quota_reported").as_deref(), None);
    assert_eq!(f.record.reason, "over_budget:tokens_per_bu", "the 429 says why");
    assert_eq!(scalar(&f, "reason").as_deref(), Some("over_budget:tokens_per_bu"));
    assert_eq!(
        (
            scalar(&f, "usage_status").as_deref(),
            scalar(&f, "usage_reason").as_deref()
        ),
        (Some("not_applicable"), None),
        "refused: no answer was to come"
    );
    assert!(f.quota_report.is_none(), "no report for a refused call");
}

#[test]
fn a_silent_service_fails_open_or_closed_as_configured() {
    for (mode, status, outcome) in [("allow", None, "failed_open"), ("deny", Some(503), "unavailable")] {
        let c = cfg(&QUOTA_CONFIG.replace(
            r#""cluster":"ratelimit","#,
            &format!(r#""cluster":"ratelimit","failure_mode":"{mode}","#),
        ));
        let mut host = MapAttributes::default();
        let mut vm = vm();
        let (call, _) = Call::start(
            &c,
            &request(
                "/v1beta/models/gemini-2.0-flash:generateContent",
                &[("x-user-id", "a"), ("x-bu", "b")],
            ),
            true,
            &mut host,
            &mut vm,
        );
        let mut call = call.unwrap();
        let step = call.on_quota_answer(&crate::quota::CheckAnswer::Failed);
        assert_eq!(reply_of(&step).map(|r| r.status), status, "{mode}");
        let f = call.finish(&mut host, &mut vm);
        assert_eq!(f.record.quota.clone().unwrap().outcome, Some(outcome));
        if mode == "deny" {
            assert_eq!(scalar(&f, "usage_status").as_deref(), Some("not_applicable"));
            assert_eq!(f.record.reason, "quota_unavailable");
        } else {
            assert_eq!(f.record.reason, "", "a call that failed open was not refused");
        }
        // A call that failed open is still charged: requests_per_user, at least.
        assert_eq!(f.quota_report.is_some(), mode == "allow");
    }
}

#[test]
fn a_budget_without_a_value_for_its_descriptor_does_not_apply() {
    let c = cfg(&QUOTA_CONFIG.replace(r#""require":[["user","business_unit"]]"#, r#""require":[["user"]]"#));
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, step) = Call::start(
        &c,
        &request("/v1beta/models/g:generateContent", &[("x-user-id", "alice")]),
        true,
        &mut host,
        &mut vm,
    );
    let check = check_of(&step).expect("requests_per_user applies");
    assert!(!decoded_entries(check).concat().contains("tokens_per_bu"));
    let mut call = call.unwrap();
    let _ = call.on_quota_answer(&answer(1, &[(1, None)]));
    assert_eq!(
        call.finish(&mut host, &mut vm).record.quota.unwrap().budgets,
        "requests_per_user"
    );
}

#[test]
fn exceptions_relax_require_and_budgets_for_the_callers_they_cover_until_they_expire() {
    let config = QUOTA_CONFIG.replace(
        r#""quota":"#,
        r#""exceptions":[
            {"name":"INC-4711","covers":{"spiffe_ids":["spiffe://corp/ns/batch/sa/reindex"]},
             "relaxes":{"require":[["service_account"]],"budgets":["tokens_per_bu"]},"until":"2026-12-31T23:59:59Z"}],
           "quota":"#,
    );
    let c = cfg(&config);
    let mut vm = vm();
    let run = |now: &str, vm: &mut VmState| {
        let mut host = MapAttributes::default();
        host.set(
            "connection.uri_san_peer_certificate",
            "spiffe://corp/ns/batch/sa/reindex",
        );
        host.set(crate::host::NOW_KEY, now);
        let (call, step) = Call::start(
            &c,
            &request("/v1beta/models/g:generateContent", &[("x-bu", "finance")]),
            true,
            &mut host,
            vm,
        );
        let mut call = call.unwrap();
        if check_of(&step).is_some() {
            let _ = call.on_quota_answer(&answer(1, &[(1, None), (1, None)]));
        }
        (step, call.finish(&mut host, vm))
    };
    // In force: no user, yet attributed by the exception; tokens_per_bu is not checked.
    let (step, f) = run("1798000000", &mut vm);
    assert!(reply_of(&step).is_none());
    assert_eq!(f.record.decision, Decision::Attributed);
    assert_eq!(f.record.exception.as_deref(), Some("INC-4711"));
    assert_eq!(scalar(&f, "exception").as_deref(), Some("INC-4711"));
    assert_eq!(f.record.quota.unwrap().budgets, "cost_per_bu_model");
    // Expired: refused as before.
    let (step, f) = run("1798761600", &mut vm);
    assert!(reply_of(&step).is_some());
    assert_eq!(f.record.exception, None);
}

#[test]
fn filter_state_for_envoys_rate_limit_filter() {
    let c = cfg(
        r#"{"dimensions":{"user":["header:x-user-id"],"business_unit":["header:x-bu"]},"require":[["user"]],
        "quota":{"filter_state":true}}"#,
    );
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, step) = Call::start(
        &c,
        &request(
            "/v1beta/models/gemini-2.0-flash:generateContent",
            &[("x-user-id", "alice"), ("x-bu", "finance")],
        ),
        true,
        &mut host,
        &mut vm,
    );
    let state: Vec<(String, String)> = step
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::SetFilterState(k, v) => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect();
    assert!(state.contains(&("ai_attribution.quota_key.business_unit".into(), "finance".into())));
    assert!(state.contains(&("ai_attribution.quota_key.model".into(), "gemini-2.0-flash".into())));
    let mut call = call.unwrap();
    let _ = call.on_response_headers(
        &headers(&[(":status", "200"), ("content-type", "application/json")]),
        false,
    );
    let gemini = include_bytes!("../../../tests/fixtures/usage/gemini.json");
    let step = call.on_response_body(gemini, true);
    assert!(step
        .effects
        .iter()
        .any(|e| matches!(e, Effect::SetFilterState(k, _) if k == "ai_attribution.quota_tokens")));
}

/// A test-only key for pseudonymised dimensions.
const TEST_KEY: &str = "test-only-pseudonym-key-0123456789";

fn loaded(json: &str) -> Rc<Config> {
    let env = |name: &str| (name == "AI_ATTRIBUTION_PSEUDONYM_KEY").then(|| TEST_KEY.to_string());
    Rc::new(Config::load(json.as_bytes(), &env).unwrap())
}

#[test]
fn a_pseudonymised_user_leaves_the_filter_only_as_its_hmac() {
    let c = loaded(
        r#"{"dimensions":{"user":["header:x-user-id"],"business_unit":["header:x-bu"]},
        "require":[["user","business_unit"]],"privacy":{"pseudonymise":["user"]},
        "correlation":{"propagate":["user","business_unit"],"baggage":true},
        "metrics":{"labels":["provider","user","business_unit"]},
        "quota":{"cluster":"ratelimit","filter_state":true,"budgets":[{"name":"requests_per_user","descriptors":["user"],"hits":"requests"}]}}"#,
    );
    let hash = crate::hmac::HmacKey::new(TEST_KEY.as_bytes()).mac_hex(b"alice");
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, step) = Call::start(
        &c,
        &request("/v1/chat/completions", &[("x-user-id", "alice"), ("x-bu", "finance")]),
        false,
        &mut host,
        &mut vm,
    );
    let mut call = call.unwrap();
    // `require` sees the resolved value: the call is attributed.
    assert_eq!(call.decision(), Decision::Attributed);
    assert_eq!(sets(&step, "x-ai-user").as_deref(), Some(hash.as_str()));
    // The header the clear value came in does not go upstream; other dimensions' headers do.
    assert!(removes(&step, "x-user-id"));
    assert!(!removes(&step, "x-bu"));
    assert_eq!(sets(&step, "x-ai-business-unit").as_deref(), Some("finance"));
    let baggage = sets(&step, "baggage").unwrap();
    assert!(baggage.contains(&format!("ai.user={hash}")), "{baggage}");
    let body_step = call.on_request_body(br#"{"model":"gpt-4o","messages":[]}"#, true, &mut host);
    let check = check_of(&step)
        .or(check_of(&body_step))
        .expect("a budget check")
        .clone();
    let entries = decoded_entries(&check).join(" ");
    assert!(entries.contains(&hash), "{entries}");
    let steps = format!("{step:?} {body_step:?}");
    assert!(steps.contains(&format!("quota_key.user\", \"{hash}\"")), "{steps}");
    assert!(!steps.contains("alice"), "{steps}");
    let _ = call.on_quota_answer(&answer(1, &[(1, None)]));
    let _ = call.on_response_headers(
        &headers(&[(":status", "200"), ("content-type", "application/json")]),
        false,
    );
    let _ = call.on_response_body(OPENAI_JSON, true);
    let f = call.finish(&mut host, &mut vm);
    assert_eq!(scalar(&f, "user_hash").as_deref(), Some(hash.as_str()));
    assert_eq!(scalar(&f, "user").as_deref(), None);
    let structured = String::from_utf8_lossy(&f.structured).into_owned();
    assert!(structured.contains("user.hash") && structured.contains(&hash));
    assert!(!structured.contains("user.id"));
    let names: Vec<&str> = f.counts.iter().filter_map(|(id, _)| vm.series_name(*id)).collect();
    assert!(names.iter().any(|n| n.contains(&format!(";user={hash}"))), "{names:?}");
    for text in [
        format!("{f:?}"),
        format!("{:?}", f.scalars()),
        structured,
        names.join(" "),
    ] {
        assert!(!text.contains("alice"), "the clear value leaked: {text}");
    }
}

#[test]
fn a_parsed_but_unloaded_configuration_shows_no_pseudonymised_value() {
    let c =
        cfg(r#"{"dimensions":{"user":["header:x-user-id"]},"require":[["user"]],"privacy":{"pseudonymise":["user"]}}"#);
    let mut host = MapAttributes::default();
    let mut vm = vm();
    let (call, _) = Call::start(
        &c,
        &request("/v1/chat/completions", &[("x-user-id", "alice")]),
        true,
        &mut host,
        &mut vm,
    );
    let f = call.unwrap().finish(&mut host, &mut vm);
    assert_eq!(f.record.decision, Decision::Attributed);
    assert_eq!(scalar(&f, "user_hash").as_deref(), None);
    assert!(!format!("{f:?}").contains("alice"));
}
