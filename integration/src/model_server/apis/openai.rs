//! OpenAI-style bodies for the mock model server: chat completions, legacy completions,
//! embeddings and the Responses API (JSON and SSE).

use serde_json::{json, Value};

use super::{sse, with, Ctx, CREATED, TOOL_ARGUMENTS};
use crate::model_server::codec::base64_encode;
use crate::model_server::http::Reply;
use crate::model_server::tokens;

pub(super) fn chat(c: &Ctx, stream: bool) -> Reply {
    let u = tokens::OPENAI_CHAT;
    let id = c.id("chatcmpl-");
    let usage = c.usage(|| {
        json!({
            "prompt_tokens": u.input,
            "completion_tokens": u.output,
            "total_tokens": u.total,
            "prompt_tokens_details": {"cached_tokens": u.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": u.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0
            }
        })
    });
    let call_id = c.id("call_");
    let finish = if c.tool.is_some() { "tool_calls" } else { "stop" };
    if !stream {
        let message = match &c.tool {
            Some(name) => json!({
                "role": "assistant",
                "content": null,
                "refusal": null,
                "annotations": [],
                "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": TOOL_ARGUMENTS}}]
            }),
            None => json!({"role": "assistant", "content": c.text, "refusal": null, "annotations": []}),
        };
        let v = json!({
            "id": id,
            "object": "chat.completion",
            "created": CREATED,
            "model": c.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish
            }],
            "service_tier": "default",
            "system_fingerprint": "fp_mock"
        });
        return c.json(&with(v, "usage", usage));
    }
    let include = c.include_usage && usage.is_some();
    let chunk = |choices: Value| {
        let v = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": c.model,
            "system_fingerprint": "fp_mock",
            "choices": choices
        });
        with(v, "usage", include.then_some(Value::Null))
    };
    let choice =
        |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut events = vec![sse(
        None,
        &chunk(choice(
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
        )),
    )];
    match &c.tool {
        Some(name) => {
            let start = json!({"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]});
            events.push(sse(None, &chunk(choice(start, Value::Null))));
            for piece in split_arguments() {
                let delta = json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]});
                events.push(sse(None, &chunk(choice(delta, Value::Null))));
            }
        }
        None => {
            for d in &c.deltas {
                events.push(sse(None, &chunk(choice(json!({"content": d}), Value::Null))));
            }
        }
    }
    events.push(sse(None, &chunk(choice(json!({}), json!(finish)))));
    if include {
        let mut last = chunk(json!([]));
        if let Some(obj) = last.as_object_mut() {
            obj.insert("usage".into(), usage.unwrap_or(Value::Null));
        }
        events.push(sse(None, &last));
    }
    events.push(b"data: [DONE]\n\n".to_vec());
    c.stream("text/event-stream; charset=utf-8", events)
}

/// The tool-call arguments in the pieces a stream sends them in.
pub(super) fn split_arguments() -> Vec<&'static str> {
    let mid = TOOL_ARGUMENTS.len() / 2;
    match (TOOL_ARGUMENTS.get(..mid), TOOL_ARGUMENTS.get(mid..)) {
        (Some(a), Some(b)) => vec![a, b],
        _ => vec![TOOL_ARGUMENTS],
    }
}

pub(super) fn completions(c: &Ctx, stream: bool) -> Reply {
    let u = tokens::OPENAI_COMPLETIONS;
    let id = c.id("cmpl-");
    let usage = c.usage(|| json!({"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.total}));
    let obj = |choices: Value| {
        json!({
            "id": id,
            "object": "text_completion",
            "created": CREATED,
            "model": c.model,
            "system_fingerprint": "fp_mock",
            "choices": choices
        })
    };
    let choice =
        |text: &str, finish: Value| json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]);
    if !stream {
        return c.json(&with(obj(choice(&c.text, json!("stop"))), "usage", usage));
    }
    let include = c.include_usage && usage.is_some();
    let null_usage = || include.then_some(Value::Null);
    let mut events: Vec<Vec<u8>> = c
        .deltas
        .iter()
        .map(|d| sse(None, &with(obj(choice(d, Value::Null)), "usage", null_usage())))
        .collect();
    events.push(sse(None, &with(obj(choice("", json!("stop"))), "usage", null_usage())));
    if include {
        events.push(sse(None, &with(obj(json!([])), "usage", usage)));
    }
    events.push(b"data: [DONE]\n\n".to_vec());
    c.stream("text/event-stream; charset=utf-8", events)
}

pub(super) fn embeddings(c: &Ctx, body: &Value) -> Reply {
    let u = tokens::OPENAI_EMBEDDINGS;
    let n = match body.get("input") {
        Some(Value::Array(items)) if items.iter().all(|i| i.is_string() || i.is_array()) => items.len().clamp(1, 256),
        _ => 1,
    };
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = (0..n)
        .map(|i| {
            let floats: Vec<f32> = (0..8u8).map(|k| f32::from(k + 1) * 0.0125 + i as f32 * 0.001).collect();
            let embedding = if base64 {
                let bytes: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64_encode(&bytes))
            } else {
                json!(floats)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let usage = c.usage(|| json!({"prompt_tokens": u.input, "total_tokens": u.total}));
    let v = json!({"object": "list", "data": data, "model": c.model});
    c.json(&with(v, "usage", usage))
}

pub(super) fn responses(c: &Ctx, stream: bool) -> Reply {
    let u = tokens::OPENAI_RESPONSES;
    let id = c.id("resp_");
    let msg_id = c.id("msg_");
    let usage = c.usage(|| {
        json!({
            "input_tokens": u.input,
            "input_tokens_details": {"cached_tokens": u.cache_read},
            "output_tokens": u.output,
            "output_tokens_details": {"reasoning_tokens": u.reasoning},
            "total_tokens": u.total
        })
    });
    let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
    let item = |status: &str, content: Value| json!({"id": msg_id, "type": "message", "status": status, "role": "assistant", "content": content});
    let response = |status: &str, output: Value, usage: Option<Value>| {
        let v = json!({
            "id": id,
            "object": "response",
            "created_at": CREATED,
            "status": status,
            "error": null,
            "incomplete_details": null,
            "model": c.model,
            "output": output,
            "parallel_tool_calls": true,
            "tool_choice": "auto",
            "tools": []
        });
        with(v, "usage", usage)
    };
    let fc_id = c.id("fc_");
    let call_id = c.id("call_");
    let call_item = |status: &str, arguments: &str| json!({"id": fc_id, "type": "function_call", "status": status, "call_id": call_id, "name": c.tool, "arguments": arguments});
    let done_item = match c.tool {
        Some(_) => call_item("completed", TOOL_ARGUMENTS),
        None => item("completed", json!([part(&c.text)])),
    };
    if !stream {
        let v = response("completed", json!([done_item]), usage);
        return c.json(&v);
    }
    let mut seqno = 0u64;
    let mut events = Vec::new();
    let mut push = |kind: &str, payload: Value| {
        let mut v = json!({"type": kind, "sequence_number": seqno});
        if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), payload) {
            obj.extend(extra);
        }
        events.push(sse(Some(kind), &v));
        seqno += 1;
    };
    let in_progress = response("in_progress", json!([]), Some(Value::Null));
    push("response.created", json!({"response": in_progress}));
    push("response.in_progress", json!({"response": in_progress}));
    if c.tool.is_some() {
        push(
            "response.output_item.added",
            json!({"output_index": 0, "item": call_item("in_progress", "")}),
        );
        for piece in split_arguments() {
            push(
                "response.function_call_arguments.delta",
                json!({"item_id": fc_id, "output_index": 0, "delta": piece}),
            );
        }
        push(
            "response.function_call_arguments.done",
            json!({"item_id": fc_id, "output_index": 0, "name": c.tool, "arguments": TOOL_ARGUMENTS}),
        );
    } else {
        push(
            "response.output_item.added",
            json!({"output_index": 0, "item": item("in_progress", json!([]))}),
        );
        let at = json!({"item_id": msg_id, "output_index": 0, "content_index": 0});
        let merge = |extra: Value| {
            let mut v = at.clone();
            if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
                obj.extend(extra);
            }
            v
        };
        push("response.content_part.added", merge(json!({"part": part("")})));
        for d in &c.deltas {
            push("response.output_text.delta", merge(json!({"delta": d, "logprobs": []})));
        }
        push(
            "response.output_text.done",
            merge(json!({"text": c.text, "logprobs": []})),
        );
        push("response.content_part.done", merge(json!({"part": part(&c.text)})));
    }
    push(
        "response.output_item.done",
        json!({"output_index": 0, "item": done_item}),
    );
    push(
        "response.completed",
        json!({"response": response("completed", json!([done_item]), usage)}),
    );
    c.stream("text/event-stream; charset=utf-8", events)
}
