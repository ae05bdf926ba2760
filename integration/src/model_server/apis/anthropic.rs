//! Anthropic Messages API bodies (JSON and SSE) for the mock model server; the event list
//! is shared with Bedrock `invoke-with-response-stream`.

use serde_json::{json, Value};

use super::{sse, with, Ctx};
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

pub(super) fn anthropic_message(c: &Ctx, u: MockUsage) -> Value {
    let v = json!({
        "id": c.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": [{"type": "text", "text": c.text}],
        "stop_reason": "end_turn",
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
    let mut events = vec![
        json!({"type": "message_start", "message": with(start, "usage", anthropic_usage(c, u, 1))}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ];
    if ping {
        events.push(json!({"type": "ping"}));
    }
    for d in &c.deltas {
        events.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}));
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    let delta = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}});
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
