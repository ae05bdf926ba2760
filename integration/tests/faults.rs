//! Bad input and faults through a real Envoy. For each, the filter causes no 5xx and no VM
//! failure, and the call's record is present with an honest reason or usage status.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::http::{self, Request};
use integration::pki::{b64url, unsigned_jwt};
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn start(jwt_from: &str) -> Stack {
    Stack::start_with(
        json!({
            "dimensions": {
                "user": ["jwt:sub", "header:x-user-id", "body:user"],
                "business_unit": ["header:x-business-unit", "static:unassigned"]
            },
            "require": [["user", "business_unit"]],
            "jwt": {"from": jwt_from}
        })
        .to_string(),
        |b| {
            // Let oversized headers reach the filter instead of being refused by Envoy's codec.
            b.hcm_extra.insert("max_request_headers_kb".into(), json!(128));
        },
    )
    .unwrap()
}

/// The VM is alive and the filter still works: no crash, no `wasm_fail_stream`.
fn assert_filter_healthy(stack: &Stack) {
    let id = request_id("health");
    let resp = stack
        .send(
            &Request::post("/v1/chat/completions")
                .header("x-request-id", &id)
                .header("x-user-id", "ok")
                .json(&json!({"model": "m"})),
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(stack.log_for(&id).unwrap()["decision"], "attributed");
    let log = stack.envoy.log();
    for bad in ["panicked", "Uncaught", "wasm_fail_stream", "failed to execute"] {
        assert!(!log.contains(bad), "Envoy log shows a VM failure ({bad}):\n{log}");
    }
    assert_eq!(
        stack.envoy.stat("wasm.envoy.wasm.runtime.v8.active"),
        Some(3),
        "a VM went away"
    );
    let lines = stack.log_lines();
    assert!(lines.iter().all(|l| l["details"] != "wasm_fail_stream"));
}

fn send(stack: &Stack, req: Request) -> (u16, Value) {
    let id = request_id("fault");
    let resp = stack.send(&req.header("x-request-id", &id)).unwrap();
    let log = stack
        .log_for(&id)
        .unwrap_or_else(|| panic!("no record:\n{}", stack.envoy.log()));
    assert!(resp.status < 500, "status {}: {}", resp.status, resp.text());
    (resp.status, log)
}

fn chat() -> Request {
    Request::post("/v1/chat/completions").json(&json!({"model": "gpt-4o", "messages": []}))
}

#[test]
fn bad_headers_are_invalid_not_fatal() {
    let stack = start("bearer_unverified");
    // 60 KB identity header.
    let (status, log) = send(&stack, chat().header("x-user-id", &"u".repeat(60 * 1024)));
    assert_eq!(status, 403);
    assert_eq!(log["reason"], "invalid:user");
    // Duplicate headers with different values, and mixed-case spoofs of x-ai-*.
    let (status, log) = send(&stack, chat().header("x-user-id", "a").header("X-User-Id", "b"));
    assert_eq!(status, 403);
    assert_eq!(log["reason"], "invalid:user");
    let id = request_id("spoof");
    let req = chat()
        .header("x-request-id", &id)
        .header("x-user-id", "alice")
        .header("X-AI-USER", "ceo")
        .header("x-Ai-Business-Unit", "x");
    assert_eq!(stack.send(&req).unwrap().status, 200);
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(5))
        .unwrap();
    assert!(
        up.headers
            .iter()
            .all(|(k, _)| !k.starts_with("x-ai-") || k == "x-ai-correlation-id"),
        "{:?}",
        up.headers
    );
    // Invalid UTF-8 in a header value, sent as raw bytes.
    let id = request_id("utf8");
    let mut s = TcpStream::connect(("127.0.0.1", stack.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = br#"{"model":"gpt-4o"}"#;
    let mut raw = format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-request-id: {id}\r\ncontent-length: {}\r\nx-user-id: al", body.len()).into_bytes();
    raw.extend_from_slice(b"\xff\xfeice\r\n\r\n");
    raw.extend_from_slice(body);
    s.write_all(&raw).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let resp = http::parse_response(&out).unwrap();
    assert!(resp.status < 500);
    if resp.status != 400 {
        // Envoy passed the bytes on: the filter must have refused them as a value.
        let log = stack.log_for(&id).unwrap();
        assert_eq!(log["reason"], "invalid:user", "{log}");
    }
    assert_filter_healthy(&stack);
}

#[test]
fn malformed_and_oversized_jwts_attribute_nothing() {
    let stack = start("bearer_unverified");
    for token in [
        "not-a-jwt".to_string(),
        "a.b.c".to_string(),
        format!("{}.{}.", b64url(b"{}"), b64url(b"[1,2]")),
        format!("{}.{}.", b64url(b"{}"), "%%%%"),
        unsigned_jwt(&json!({"sub": "x".repeat(64 * 1024)})),
        format!("{}.{}.", b64url(b"{}"), b64url(&[0xff, 0xfe, 0x00])),
    ] {
        let (status, log) = send(&stack, chat().header("authorization", &format!("Bearer {token}")));
        assert_eq!(status, 403, "token {}", &token[..token.len().min(40)]);
        assert_eq!(log["user"], Value::Null);
        assert_eq!(log["decision"], "rejected");
    }
    // In jwt_authn mode without jwt_authn in front, nothing is read from the token at all.
    let stack = start("jwt_authn");
    let (status, log) = send(
        &stack,
        chat().header(
            "authorization",
            &format!("Bearer {}", unsigned_jwt(&json!({"sub": "x"}))),
        ),
    );
    assert_eq!(status, 403);
    assert_eq!(log["reason"], "missing:user");
    assert_filter_healthy(&stack);
}

#[test]
fn truncated_or_garbage_bodies_are_absent_not_fatal() {
    let stack = start("jwt_authn");
    for body in [
        &b"{\"user\":\"al"[..],
        b"\x00\x01\x02garbage",
        b"[1,2,3]",
        b"{\"user\":{\"nested\":true}}",
        b"",
    ] {
        let (status, log) = send(&stack, Request::post("/v1/chat/completions").body(body.to_vec()));
        assert_eq!(status, 403, "{body:?}");
        assert!(log["reason"].as_str().unwrap().contains("user"), "{log}");
    }
    // Garbage on a call attributed by header passes to the upstream, which answers for itself.
    let (status, log) = send(
        &stack,
        Request::post("/v1/chat/completions")
            .header("x-user-id", "a")
            .body(b"\x00garbage".to_vec()),
    );
    assert_eq!(status, 400, "the model server refuses bad JSON");
    assert_eq!(log["decision"], "attributed");
    assert_eq!(log["request_model"], Value::Null);
    assert_eq!(log["usage_status"], "missing");
    assert_filter_healthy(&stack);
}

#[test]
fn hostile_responses_are_read_safely() {
    let stack = start("jwt_authn");
    let stream = json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}, "messages": []});
    // One 1 MB SSE event before the usage.
    let (status, log) = send(
        &stack,
        Request::post("/v1/chat/completions")
            .header("x-user-id", "a")
            .header("x-mock-behavior", "big-event")
            .json(&stream),
    );
    assert_eq!(status, 200);
    assert_eq!(log["usage_status"], "reported");
    assert_eq!(log["input_tokens"], "27");
    // Binary garbage labelled text/event-stream.
    let (status, log) = send(
        &stack,
        Request::post("/v1/chat/completions")
            .header("x-user-id", "a")
            .header("x-mock-behavior", "garbage")
            .json(&stream),
    );
    assert_eq!(status, 200);
    // It ended, but no protocol event ever said it was done: the counts cannot be vouched for.
    assert_eq!(log["usage_status"], "partial");
    assert_eq!(log["usage_reason"], "the stream ended before its final event");
    assert_eq!(log["response_end"], "end_of_stream");
    assert_eq!(log["input_tokens"], Value::Null);
    // An upstream that resets mid-stream.
    let (_, log) = send(
        &stack,
        Request::post("/v1/chat/completions")
            .header("x-user-id", "a")
            .header("x-mock-behavior", "reset-mid-stream")
            .json(&stream),
    );
    assert_eq!(log["usage_status"], "partial");
    assert_eq!(log["user"], "a");
    // A stream that trickles out one byte at a time.
    let (status, log) = send(
        &stack,
        Request::post("/v1/messages")
            .header("x-user-id", "a")
            .header("x-mock-behavior", "trickle")
            .json(&json!({"model": "claude-sonnet-4-5", "stream": true, "messages": []})),
    );
    assert_eq!(status, 200);
    assert_eq!(log["usage_status"], "reported");
    assert_eq!(log["output_tokens"], "14");
    assert_filter_healthy(&stack);
}

#[test]
fn a_client_that_disconnects_mid_stream_leaves_a_partial_record() {
    let stack = start("jwt_authn");
    let id = request_id("gone");
    let req = Request::post("/v1/chat/completions")
        .header("x-request-id", &id)
        .header("x-user-id", "a")
        .header("x-mock-behavior", "slow")
        .json(&json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}, "messages": []}));
    let mut conn = http::open(stack.port, &req).unwrap();
    let mut buf = [0u8; 512];
    assert!(conn.read(&mut buf).unwrap() > 0);
    drop(conn);
    let log = stack.log_for(&id).unwrap();
    assert_eq!(log["usage_status"], "partial");
    assert_eq!(log["decision"], "attributed");
    assert_filter_healthy(&stack);
}

#[test]
fn a_body_that_trickles_in_is_decided_when_its_field_arrives() {
    let stack = start("jwt_authn");
    let id = request_id("trickle");
    let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"a slow client"}],"user":"slow-sam"}"#;
    let mut s = TcpStream::connect(("127.0.0.1", stack.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    write!(s, "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-request-id: {id}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len()).unwrap();
    for piece in body.chunks(7) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(40));
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let resp = http::parse_response(&out).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let log = stack.log_for(&id).unwrap();
    assert_eq!(log["user"], "slow-sam");
    assert_eq!(log["sources"], "business_unit=static:unassigned,user=body:user");
    assert_filter_healthy(&stack);
}
