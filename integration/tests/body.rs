//! Request bodies through a real Envoy: read while they stream, never buffered unless a decision
//! waits on a `body:` source, and no 413 from this filter below Envoy's own buffer limit.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::http::Request;
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::time::Duration;

/// A chat body of about `size` bytes, with `model` (and optionally `user`) after the messages.
fn big_body(size: usize, user_first: Option<&str>, user_last: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 256);
    out.push(b'{');
    if let Some(u) = user_first {
        out.extend_from_slice(format!("\"user\":\"{u}\",").as_bytes());
    }
    out.extend_from_slice(br#""messages":["#);
    let msg = br#"{"role":"user","content":"lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor"},"#;
    while out.len() < size {
        out.extend_from_slice(msg);
    }
    out.extend_from_slice(br#"{"role":"user","content":"end"}],"model":"gpt-4o-mini""#);
    if let Some(u) = user_last {
        out.extend_from_slice(format!(",\"user\":\"{u}\"").as_bytes());
    }
    out.push(b'}');
    out
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn send(stack: &Stack, body: Vec<u8>, chunked: bool, headers: &[(&str, &str)]) -> (u16, Value, String) {
    let id = request_id("body");
    let mut req = Request::post("/v1/chat/completions")
        .header("x-request-id", &id)
        .header("content-type", "application/json")
        .body(body);
    req.chunked = chunked;
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = stack.send(&req).unwrap();
    let log = stack
        .log_for(&id)
        .unwrap_or_else(|| panic!("no log line:\n{}", stack.envoy.log()));
    (resp.status, log, id)
}

#[test]
fn a_20_mb_body_streams_through_with_its_model_and_flat_memory() {
    let stack = Stack::start(&json!({"dimensions": {"user": ["header:x-user-id"]}, "require": [["user"]]})).unwrap();
    let pid = stack.envoy.pid().unwrap();
    let body = big_body(20 * 1024 * 1024, None, None);
    // Warm up so that allocator growth unrelated to body size is behind us.
    send(
        &stack,
        big_body(64 * 1024, None, None),
        false,
        &[("x-user-id", "alice")],
    );
    let before = rss_kb(pid);
    for chunked in [false, true] {
        let (status, log, id) = send(&stack, body.clone(), chunked, &[("x-user-id", "alice")]);
        assert_eq!(status, 200, "chunked={chunked}");
        assert_eq!(
            log["request_model"], "gpt-4o-mini",
            "the model comes after 20 MB of messages"
        );
        let up = stack
            .server
            .wait_for("x-request-id", &id, Duration::from_secs(10))
            .unwrap();
        assert_eq!(up.body_len, body.len());
        assert!(up.body_complete);
    }
    let after = rss_kb(pid);
    // Buffering the body would add at least 20 MB; streaming keeps Envoy within a few MB.
    assert!(
        after < before + 8 * 1024,
        "Envoy RSS grew from {before} kB to {after} kB"
    );
}

fn body_stack() -> Stack {
    Stack::start(&json!({
        "dimensions": {"user": ["header:x-user-id", "body:user", "body:metadata.user_id"], "business_unit": ["static:research"]},
        "require": [["user", "business_unit"]]
    }))
    .unwrap()
}

#[test]
fn a_required_dimension_from_the_body_decides_correctly() {
    let stack = body_stack();
    let body = |v: Value| v.to_string().into_bytes();
    let (status, log, id) = send(
        &stack,
        body(json!({"model": "gpt-4o", "user": "alice", "messages": []})),
        false,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(log["user"], "alice");
    assert_eq!(log["sources"], "business_unit=static:research,user=body:user");
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(5))
        .unwrap();
    assert_eq!(up.json().unwrap()["user"], "alice", "the body reaches upstream intact");

    let (status, log, _) = send(
        &stack,
        body(json!({"model": "gpt-4o", "metadata": {"user_id": "u-7"}})),
        true,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(log["user"], "u-7");

    let (status, log, _) = send(&stack, body(json!({"model": "gpt-4o", "messages": []})), false, &[]);
    assert_eq!(status, 403);
    assert_eq!(log["reason"], "missing:user");

    let (status, log, _) = send(&stack, body(json!({"model": "gpt-4o", "user": {"id": 1}})), false, &[]);
    assert_eq!(status, 403);
    assert_eq!(log["reason"], "invalid:user");

    let (status, _, _) = send(&stack, b"{not json".to_vec(), false, &[]);
    assert_eq!(status, 403);

    // A header that satisfies the requirement means the body is not waited for.
    let (status, log, _) = send(&stack, body(json!({"user": "bob"})), false, &[("x-user-id", "carol")]);
    assert_eq!(status, 200);
    assert_eq!(log["user"], "carol");
}

#[test]
fn a_body_source_early_in_a_large_body_decides_without_buffering_it() {
    let stack = body_stack();
    let (status, log, id) = send(&stack, big_body(4 * 1024 * 1024, Some("early-user"), None), true, &[]);
    assert_eq!(status, 200);
    assert_eq!(log["user"], "early-user");
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(10))
        .unwrap();
    assert!(up.body_complete);
}

#[test]
fn a_body_source_late_in_a_body_within_the_buffer_limit_is_found() {
    let stack = body_stack();
    let (status, log, _) = send(&stack, big_body(600 * 1024, None, Some("late-user")), true, &[]);
    assert_eq!(status, 200);
    assert_eq!(log["user"], "late-user");
}

#[test]
fn a_field_past_the_decision_limit_is_rejected_and_recorded() {
    // The documented limit: a decision holds at most limits.body_decision_bytes (768 KiB, below
    // Envoy's 1 MiB buffer limit) and then decides on what it has: 403 with the reason. When one
    // read carries the body past Envoy's own limit first, Envoy answers 413 itself. Either way the
    // call is rejected and recorded.
    let stack = body_stack();
    let (status, log, _) = send(&stack, big_body(2 * 1024 * 1024, None, Some("too-late")), false, &[]);
    assert!(status == 403 || status == 413, "status {status}");
    assert_eq!(log["decision"], "rejected");
    assert_eq!(log["reason"], "missing:user");
    assert_eq!(log["usage_status"], "not_applicable");
    // With the limit raised with Envoy's own, the same call passes.
    let stack = Stack::start_with(
        json!({
            "dimensions": {"user": ["body:user"]}, "require": [["user"]],
            "limits": {"body_decision_bytes": 4_000_000}
        })
        .to_string(),
        |b| {
            b.listener_buffer_limit = Some(8 * 1024 * 1024);
        },
    )
    .unwrap();
    let (status, log, _) = send(&stack, big_body(2 * 1024 * 1024, None, Some("late-user")), false, &[]);
    assert_eq!(status, 200);
    assert_eq!(log["user"], "late-user");
}
