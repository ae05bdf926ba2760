//! Anthropic Messages API bodies (JSON and SSE) for the mock model server; the event list
//! is shared with Bedrock `invoke-with-response-stream`.

use serde_json::{json, Value};

use super::openai::split_arguments;
use super::{sse, tool_arguments, with, Ctx};
use crate::model_server::http::Reply;
use crate::model_server::tokens::{self, MockUsage};

fn anthropic_usage(c: &Ctx, u: MockUsage, output: u64) -> Option<Value> {
    c.usage(|| {
        json!({
            "input_tokens": u.input,
            "cache_creation_input_tokens": u.cache_write,
            "cache_read_input_tokens": u.cache_read,
            "output_tokens": output
        })
    })
}

fn stop_reason(c: &Ctx) -> &'static str {
    if c.tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    }
}

pub(super) fn anthropic_message(c: &Ctx, u: MockUsage) -> Value {
    let content = match &c.tool {
        Some(name) => json!([{"type": "tool_use", "id": c.id("toolu_"), "name": name, "input": tool_arguments()}]),
        None => json!([{"type": "text", "text": c.text}]),
    };
    let v = json!({
        "id": c.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": content,
        "stop_reason": stop_reason(c),
        "stop_sequence": null
    });
    with(v, "usage", anthropic_usage(c, u, u.output))
}

/// Anthropic stream events (each with `type`), optionally with a `ping`.
pub(super) fn anthropic_events(c: &Ctx, u: MockUsage, ping: bool) -> Vec<Value> {
    let start = json!({
        "id": c.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": [],
        "stop_reason": null,
        "stop_sequence": null
    });
    let block = match &c.tool {
        Some(name) => json!({"type": "tool_use", "id": c.id("toolu_"), "name": name, "input": {}}),
        None => json!({"type": "text", "text": ""}),
    };
    let mut events = vec![
        json!({"type": "message_start", "message": with(start, "usage", anthropic_usage(c, u, 1))}),
        json!({"type": "content_block_start", "index": 0, "content_block": block}),
    ];
    if ping {
        events.push(json!({"type": "ping"}));
    }
    if c.tool.is_some() {
        for piece in split_arguments() {
            events.push(
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            );
        }
    } else {
        for d in &c.deltas {
            events.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}));
        }
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    let delta = json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(c), "stop_sequence": null}});
    events.push(with(delta, "usage", c.usage(|| json!({"output_tokens": u.output}))));
    events.push(json!({"type": "message_stop"}));
    events
}

pub(super) fn reply(c: &Ctx, stream: bool) -> Reply {
    let u = tokens::ANTHROPIC;
    let reply = if stream {
        let events = anthropic_events(c, u, true)
            .iter()
            .map(|e| sse(e.get("type").and_then(Value::as_str), e))
            .collect();
        c.stream("text/event-stream; charset=utf-8", events)
    } else {
        c.json(&anthropic_message(c, u))
    };
    reply.header("request-id", c.id("req_"))
}
