//! Amazon Bedrock bodies for the mock model server: Converse (JSON and event stream) and
//! InvokeModel (Anthropic-shaped JSON with token headers, and `chunk` event stream).

use serde_json::{json, Value};

use super::anthropic::{anthropic_events, anthropic_message};
use super::openai::split_arguments;
use super::{tool_arguments, with, BedrockOp, Ctx};
use crate::model_server::codec::{base64_encode, encode_event};
use crate::model_server::http::Reply;
use crate::model_server::tokens;

/// Padding field real Bedrock adds to stream payloads.
const BEDROCK_PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEF";

fn bedrock_event(event_type: &str, payload: &Value) -> Vec<u8> {
    encode_event(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

pub(super) fn reply(c: &Ctx, op: BedrockOp) -> Reply {
    let reply = match op {
        BedrockOp::Converse | BedrockOp::ConverseStream => bedrock_converse(c, op),
        BedrockOp::Invoke | BedrockOp::InvokeStream => bedrock_invoke(c, op),
    };
    reply.header("x-amzn-requestid", c.id("req-"))
}

fn bedrock_converse(c: &Ctx, op: BedrockOp) -> Reply {
    let u = tokens::BEDROCK_CONVERSE;
    let usage = c.usage(|| {
        json!({
            "inputTokens": u.input,
            "outputTokens": u.output,
            "totalTokens": u.total,
            "cacheReadInputTokens": u.cache_read,
            "cacheWriteInputTokens": u.cache_write
        })
    });
    let metrics = json!({"latencyMs": 123});
    let tool_use_id = c.id("tooluse_");
    let stop = if c.tool.is_some() { "tool_use" } else { "end_turn" };
    if op == BedrockOp::Converse {
        let content = match &c.tool {
            Some(name) => json!([{"toolUse": {"toolUseId": tool_use_id, "name": name, "input": tool_arguments()}}]),
            None => json!([{"text": c.text}]),
        };
        let v = json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "metrics": metrics
        });
        return c.json(&with(v, "usage", usage));
    }
    let p = |v: Value| with(v, "p", Some(json!(BEDROCK_PAD)));
    let mut events = vec![bedrock_event("messageStart", &p(json!({"role": "assistant"})))];
    match &c.tool {
        Some(name) => {
            events.push(bedrock_event(
                "contentBlockStart",
                &p(json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": tool_use_id, "name": name}}})),
            ));
            for piece in split_arguments() {
                events.push(bedrock_event(
                    "contentBlockDelta",
                    &p(json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}})),
                ));
            }
        }
        None => {
            for d in &c.deltas {
                events.push(bedrock_event(
                    "contentBlockDelta",
                    &p(json!({"contentBlockIndex": 0, "delta": {"text": d}})),
                ));
            }
        }
    }
    events.push(bedrock_event("contentBlockStop", &p(json!({"contentBlockIndex": 0}))));
    events.push(bedrock_event("messageStop", &p(json!({"stopReason": stop}))));
    events.push(bedrock_event(
        "metadata",
        &p(with(json!({"metrics": metrics}), "usage", usage)),
    ));
    c.stream("application/vnd.amazon.eventstream", events)
}

fn bedrock_invoke(c: &Ctx, op: BedrockOp) -> Reply {
    let u = tokens::BEDROCK_INVOKE;
    if op == BedrockOp::Invoke {
        let mut reply = c.json(&anthropic_message(c, u));
        if !c.no_usage {
            for (name, n) in [
                ("x-amzn-bedrock-input-token-count", u.input),
                ("x-amzn-bedrock-output-token-count", u.output),
                ("x-amzn-bedrock-cache-read-input-token-count", u.cache_read),
                ("x-amzn-bedrock-cache-write-input-token-count", u.cache_write),
            ] {
                reply = reply.header(name, n.to_string());
            }
        }
        return reply.header("x-amzn-bedrock-invocation-latency", "123");
    }
    let mut inner = anthropic_events(c, u, false);
    if !c.no_usage {
        if let Some(last) = inner.last_mut().and_then(Value::as_object_mut) {
            last.insert(
                "amazon-bedrock-invocationMetrics".into(),
                json!({
                    "inputTokenCount": u.input,
                    "outputTokenCount": u.output,
                    "invocationLatency": 123,
                    "firstByteLatency": 45,
                    "cacheReadInputTokenCount": u.cache_read,
                    "cacheWriteInputTokenCount": u.cache_write
                }),
            );
        }
    }
    let events = inner
        .iter()
        .map(|e| {
            let payload = json!({"bytes": base64_encode(e.to_string().as_bytes()), "p": BEDROCK_PAD});
            bedrock_event("chunk", &payload)
        })
        .collect();
    c.stream("application/vnd.amazon.eventstream", events)
}
