//! Token usage through a real Envoy: every provider's JSON and streamed responses, cut-short
//! streams, forced stream usage, pricing and the Prometheus series.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::http::{self, Request};
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::io::Read;
use std::time::Duration;

fn stack(extra: Value) -> Stack {
    let mut config = json!({
        "dimensions": {"user": ["header:x-user-id"], "business_unit": ["header:x-business-unit", "static:unassigned"]},
        "require": [["user"]],
        "pricing": {"gpt-4o*": {"input": 2.5, "output": 10.0, "cached_input": 1.25}},
        "metrics": {"labels": ["provider", "business_unit"]}
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        config[k] = v.clone();
    }
    Stack::start(&config).expect("stack starts")
}

/// Sends a call and returns (response, access-log line).
fn call(stack: &Stack, path: &str, body: Value, headers: &[(&str, &str)]) -> (http::Response, Value) {
    let id = request_id("usage");
    let mut req = Request::post(path)
        .header("x-request-id", &id)
        .header("x-user-id", "alice")
        .json(&body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = stack.send(&req).expect("request");
    let log = stack
        .log_for(&id)
        .unwrap_or_else(|| panic!("no access-log line for {path}"));
    (resp, log)
}

fn n(v: Option<u64>) -> Value {
    v.map_or(Value::Null, |n| Value::String(n.to_string()))
}

struct Case {
    name: &'static str,
    path: &'static str,
    body: Value,
    stream: bool,
    input: Option<u64>,
    output: Option<u64>,
    cached: Option<u64>,
    reasoning: Option<u64>,
}

fn cases() -> Vec<Case> {
    let chat = |stream: bool| json!({"model": "gpt-4o", "stream": stream, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]});
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let c = |name, path, body, stream, input, output, cached, reasoning| Case {
        name,
        path,
        body,
        stream,
        input,
        output,
        cached,
        reasoning,
    };
    vec![
        c("openai chat json", "/v1/chat/completions", chat(false), false, Some(27), Some(12), Some(10), Some(4)),
        c("openai chat sse", "/v1/chat/completions", chat(true), true, Some(27), Some(12), Some(10), Some(4)),
        c("openai completions json", "/v1/completions", json!({"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}), false, Some(15), Some(9), None, None),
        c("openai completions sse", "/v1/completions", json!({"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "stream": true, "stream_options": {"include_usage": true}}), true, Some(15), Some(9), None, None),
        c("openai embeddings", "/v1/embeddings", json!({"model": "text-embedding-3-small", "input": "hi"}), false, Some(8), None, None, None),
        c("openai responses json", "/v1/responses", json!({"model": "gpt-4o", "input": "hi"}), false, Some(31), Some(17), Some(12), Some(5)),
        c("openai responses sse", "/v1/responses", json!({"model": "gpt-4o", "input": "hi", "stream": true}), true, Some(31), Some(17), Some(12), Some(5)),
        c("azure chat sse", "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21", json!({"stream": true, "stream_options": {"include_usage": true}, "messages": msgs}), true, Some(27), Some(12), Some(10), Some(4)),
        // Anthropic reports cache reads (100) and writes (50) apart from input (25): input = 175.
        c("anthropic json", "/v1/messages", json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": msgs}), false, Some(175), Some(14), Some(100), None),
        c("anthropic sse", "/v1/messages", json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true, "messages": msgs}), true, Some(175), Some(14), Some(100), None),
        // Gemini thinking tokens (3) are output: 11 + 3.
        c("gemini json", "/v1beta/models/gemini-2.5-flash:generateContent", json!({"contents": [{"parts": [{"text": "hi"}]}]}), false, Some(21), Some(14), Some(6), Some(3)),
        c("gemini sse", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json!({"contents": [{"parts": [{"text": "hi"}]}]}), true, Some(21), Some(14), Some(6), Some(3)),
        c("vertex json", "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent", json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}), false, Some(21), Some(14), Some(6), Some(3)),
        c("vertex sse", "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse", json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}), true, Some(21), Some(14), Some(6), Some(3)),
        // Bedrock Converse: 19 + cache read 5 + cache write 7.
        c("bedrock converse", "/model/us.amazon.nova-lite-v1%3A0/converse", json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}), false, Some(31), Some(13), Some(5), None),
        c("bedrock converse-stream", "/model/us.amazon.nova-lite-v1%3A0/converse-stream", json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}), true, Some(31), Some(13), Some(5), None),
        c("bedrock invoke", "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke", json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": msgs}), false, Some(28), Some(16), Some(3), None),
        c("bedrock invoke stream", "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream", json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": msgs}), true, Some(28), Some(16), Some(3), None),
        c("ollama json", "/api/chat", json!({"model": "llama3.2", "messages": msgs, "stream": false}), false, Some(26), Some(18), None, None),
        c("ollama ndjson", "/api/chat", json!({"model": "llama3.2", "messages": msgs}), true, Some(26), Some(18), None, None),
        c("ollama generate ndjson", "/api/generate", json!({"model": "llama3.2", "prompt": "hi"}), true, Some(26), Some(18), None, None),
        c("cohere json", "/v2/chat", json!({"model": "command-r-plus", "messages": msgs}), false, Some(22), Some(10), None, None),
        c("cohere sse", "/v2/chat", json!({"model": "command-r-plus", "messages": msgs, "stream": true}), true, Some(22), Some(10), None, None),
    ]
}

#[test]
fn every_provider_reports_exact_tokens_json_and_streamed() {
    let stack = stack(json!({}));
    let mut failures = Vec::new();
    for case in cases() {
        let (resp, log) = call(&stack, case.path, case.body.clone(), &[]);
        let want = [
            ("input_tokens", n(case.input)),
            ("output_tokens", n(case.output)),
            ("cached_input_tokens", n(case.cached)),
            ("reasoning_tokens", n(case.reasoning)),
            ("usage_status", json!("reported")),
            ("stream", json!(case.stream.to_string())),
        ];
        for (key, value) in want {
            if log[key] != value {
                failures.push(format!(
                    "{}: {key} = {}, want {value} (status {})",
                    case.name, log[key], resp.status
                ));
            }
        }
        // Cohere v2 and Bedrock Converse responses do not name the model.
        if log["response_model"].is_null() && !case.path.contains("/model/") && !case.path.starts_with("/v2/") {
            failures.push(format!("{}: no response_model", case.name));
        }
        let record = &log["record"]["value"];
        if record["gen_ai.usage.input_tokens"].as_f64() != case.input.map(|v| v as f64) {
            failures.push(format!(
                "{}: structured input tokens {}",
                case.name, record["gen_ai.usage.input_tokens"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        stack.envoy.log().lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn missing_usage_is_never_zero() {
    let stack = stack(json!({}));
    let (_, log) = call(
        &stack,
        "/v1/chat/completions",
        json!({"model": "gpt-4o", "stream": true, "messages": []}),
        &[],
    );
    assert_eq!(log["usage_status"], "missing");
    assert_eq!(log["input_tokens"], Value::Null);
    let (_, log) = call(
        &stack,
        "/v1/messages",
        json!({"model": "claude-sonnet-4-5", "messages": []}),
        &[("x-mock-behavior", "no-usage")],
    );
    assert_eq!(log["usage_status"], "missing");
    assert_eq!(log["output_tokens"], Value::Null);
    let (resp, log) = call(
        &stack,
        "/v1/chat/completions",
        json!({"model": "gpt-4o"}),
        &[("x-mock-behavior", "status=429")],
    );
    assert_eq!(resp.status, 429);
    assert_eq!(log["usage_status"], "missing");
}

#[test]
fn rejected_calls_are_not_applicable() {
    let stack = stack(json!({}));
    let id = request_id("rej");
    let resp = stack
        .send(
            &Request::post("/v1/chat/completions")
                .header("x-request-id", &id)
                .json(&json!({"model": "gpt-4o"})),
        )
        .unwrap();
    assert_eq!(resp.status, 403);
    let log = stack.log_for(&id).unwrap();
    assert_eq!(log["usage_status"], "not_applicable");
}

#[test]
fn cost_is_priced_from_the_model() {
    let stack = stack(json!({}));
    let (_, log) = call(
        &stack,
        "/v1/chat/completions",
        json!({"model": "gpt-4o", "messages": []}),
        &[],
    );
    // (27 - 10) x 2.50 + 10 x 1.25 + 12 x 10.00 per million = 0.0001750
    assert_eq!(log["cost_usd"], "0.000175");
    assert_eq!(
        log["record"]["value"]["ai_attribution.cost_usd"].as_f64(),
        Some(0.000175)
    );
    let (_, log) = call(
        &stack,
        "/v1/messages",
        json!({"model": "claude-sonnet-4-5", "messages": []}),
        &[],
    );
    assert_eq!(log["cost_usd"], Value::Null, "no price for claude in this config");
}

#[test]
fn an_upstream_reset_mid_stream_is_partial_and_attributed() {
    let stack = stack(json!({}));
    let (_, log) = call(
        &stack,
        "/v1/messages",
        json!({"model": "claude-sonnet-4-5", "stream": true, "messages": []}),
        &[("x-mock-behavior", "reset-mid-stream")],
    );
    assert_eq!(log["usage_status"], "partial", "{log}");
    assert_eq!(log["user"], "alice");
    assert_eq!(log["decision"], "attributed");
    assert_eq!(
        log["input_tokens"], "175",
        "message_start arrived before the reset: {log}"
    );
}

#[test]
fn a_client_that_aborts_mid_stream_is_partial_and_attributed() {
    let stack = stack(json!({}));
    let id = request_id("abort");
    let req = Request::post("/v1/messages")
        .header("x-request-id", &id)
        .header("x-user-id", "alice")
        .header("x-mock-behavior", "slow")
        .json(&json!({"model": "claude-sonnet-4-5", "stream": true, "messages": []}));
    let mut conn = http::open(stack.port, &req).unwrap();
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("message_start") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early");
        got.extend_from_slice(&buf[..n]);
    }
    drop(conn);
    let log = stack.log_for(&id).expect("a record for the aborted call");
    assert_eq!(log["usage_status"], "partial", "{log}");
    assert_eq!(log["user"], "alice");
    assert_eq!(log["input_tokens"], "175");
}

#[test]
fn force_stream_usage_adds_include_usage_and_the_client_gets_a_valid_stream() {
    let stack = stack(json!({"usage": {"force_stream_usage": true}}));
    let body = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let id = request_id("force");
    let req = Request::post("/v1/chat/completions")
        .header("x-request-id", &id)
        .header("x-user-id", "alice")
        .json(&body);
    let resp = stack.send(&req).unwrap();
    assert_eq!(resp.status, 200);
    let text = resp.text();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let log = stack.log_for(&id).unwrap();
    assert_eq!(log["usage_status"], "reported", "{log}");
    assert_eq!(log["input_tokens"], "27");
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(5))
        .unwrap();
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert_eq!(sent["model"], "gpt-4o");
    assert!(up.body_complete);
    if let Some(len) = up.header("content-length") {
        assert_eq!(
            len.parse::<usize>().unwrap(),
            up.body_len,
            "content-length must match the rewritten body"
        );
    }
    // A stream_options member without include_usage (or with it false) cannot defeat it: the
    // member is completed, its other fields kept.
    for options in [
        json!({}),
        json!({"include_usage": false}),
        json!({"include_obfuscation": false}),
        json!(null),
    ] {
        let id = request_id("force-opts");
        let body = json!({"model": "gpt-4o", "stream_options": options, "stream": true, "messages": []});
        let resp = stack
            .send(
                &Request::post("/v1/chat/completions")
                    .header("x-request-id", &id)
                    .header("x-user-id", "alice")
                    .json(&body),
            )
            .unwrap();
        assert_eq!(resp.status, 200);
        let log = stack.log_for(&id).unwrap();
        assert_eq!(log["usage_status"], "reported", "{options}: {log}");
        let up = stack
            .server
            .wait_for("x-request-id", &id, Duration::from_secs(5))
            .unwrap();
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent["stream_options"]["include_usage"], true, "{options}");
        if options.get("include_obfuscation").is_some() {
            assert_eq!(sent["stream_options"]["include_obfuscation"], false);
        }
    }
    // A non-streaming request is left alone.
    let id = request_id("force-json");
    let body = json!({"model": "gpt-4o", "messages": []});
    stack
        .send(
            &Request::post("/v1/chat/completions")
                .header("x-request-id", &id)
                .header("x-user-id", "alice")
                .json(&body),
        )
        .unwrap();
    let up = stack
        .server
        .wait_for("x-request-id", &id, Duration::from_secs(5))
        .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&up.body).unwrap(), body);
}

#[test]
fn prometheus_shows_tagged_series() {
    let stack = stack(json!({}));
    call(
        &stack,
        "/v1/chat/completions",
        json!({"model": "gpt-4o", "messages": []}),
        &[("x-business-unit", "finance")],
    );
    let id = request_id("m");
    stack
        .send(
            &Request::post("/v1/chat/completions")
                .header("x-request-id", &id)
                .json(&json!({})),
        )
        .unwrap();
    stack.log_for(&id);
    let prom = stack.envoy.admin("/stats/prometheus").unwrap();
    for series in [
        r#"ai_attribution_requests_total{decision="attributed",provider="openai",business_unit="finance"} 1"#,
        r#"ai_attribution_requests_total{decision="rejected",provider="openai",business_unit="unassigned"} 1"#,
        r#"ai_attribution_tokens_total{provider="openai",direction="input",business_unit="finance"} 27"#,
        r#"ai_attribution_tokens_total{provider="openai",direction="output",business_unit="finance"} 12"#,
        r#"ai_attribution_cost_microusd_total{provider="openai",business_unit="finance"} 175"#,
        r#"ai_attribution_usage_total{provider="openai",status="reported"} 1"#,
        r#"ai_attribution_usage_total{provider="openai",status="not_applicable"} 1"#,
    ] {
        assert!(
            prom.contains(series),
            "missing {series} in:\n{}",
            prom.lines()
                .filter(|l| l.contains("ai_attribution"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn label_values_beyond_the_cap_become_other() {
    let stack = stack(json!({"metrics": {"labels": ["business_unit"], "max_label_values": 2}}));
    for bu in ["a", "b", "c", "d"] {
        call(
            &stack,
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "x"}),
            &[("x-business-unit", bu)],
        );
    }
    let prom = stack.envoy.admin("/stats/prometheus").unwrap();
    assert!(
        prom.contains(r#"ai_attribution_tokens_total{provider="openai",direction="input",business_unit="other"} 16"#),
        "{prom}"
    );
    assert!(!prom.contains(r#"business_unit="c""#));
}
