//! Cohere v1/v2 chat (JSON, v2 SSE, v1 NDJSON stream), embed and rerank bodies for the mock
//! model server.

use serde_json::{json, Value};

use super::openai::split_arguments;
use super::{ndjson, sse, with, CohereKind, Ctx, TOOL_ARGUMENTS};
use crate::model_server::http::Reply;
use crate::model_server::tokens;

pub(super) fn reply(c: &Ctx, v2: bool, kind: CohereKind, stream: bool) -> Reply {
    let id = c.id("");
    let version = if v2 { "2" } else { "1" };
    let billed = tokens::COHERE_CHAT;
    let raw = tokens::COHERE_CHAT_TOKENS;
    let chat_usage = c.usage(|| {
        json!({
            "billed_units": {"input_tokens": billed.input, "output_tokens": billed.output},
            "tokens": {"input_tokens": raw.input, "output_tokens": raw.output}
        })
    });
    let meta = |billed_units: Option<Value>, tokens: Option<Value>| {
        let v = json!({"api_version": {"version": version}});
        with(with(v, "billed_units", billed_units), "tokens", tokens)
    };
    match kind {
        CohereKind::Embed => {
            let u = tokens::COHERE_EMBED;
            let vector = json!([[0.0125, -0.025, 0.0375, -0.05, 0.0625, -0.075, 0.0875, -0.1]]);
            let embeddings = if v2 { json!({"float": vector}) } else { vector };
            let m = meta(c.usage(|| json!({"input_tokens": u.input})), None);
            let mut v = json!({"id": id, "embeddings": embeddings, "texts": [], "meta": m});
            if v2 {
                v = with(v, "response_type", Some(json!("embeddings_by_type")));
            }
            c.json(&v)
        }
        CohereKind::Rerank => {
            let m = meta(
                c.usage(|| json!({"search_units": tokens::COHERE_RERANK_SEARCH_UNITS})),
                None,
            );
            c.json(&json!({"id": id, "results": [{"index": 0, "relevance_score": 0.9}], "meta": m}))
        }
        CohereKind::Chat if v2 => {
            let call_id = c.id("call_");
            let finish = if c.tool.is_some() { "TOOL_CALL" } else { "COMPLETE" };
            let plan = c.tool.as_ref().map(|name| format!("I will call {name}."));
            if !stream {
                let message = match (&c.tool, &plan) {
                    (Some(name), Some(plan)) => json!({
                        "role": "assistant",
                        "tool_plan": plan,
                        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": TOOL_ARGUMENTS}}]
                    }),
                    _ => json!({"role": "assistant", "content": [{"type": "text", "text": c.text}]}),
                };
                let v = json!({"id": id, "message": message, "finish_reason": finish});
                return c.json(&with(v, "usage", chat_usage));
            }
            let mut events = vec![sse(
                Some("message-start"),
                &json!({"id": id, "type": "message-start", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
            )];
            match (&c.tool, &plan) {
                (Some(name), Some(plan)) => {
                    events.push(sse(
                        Some("tool-plan-delta"),
                        &json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": plan}}}),
                    ));
                    events.push(sse(
                        Some("tool-call-start"),
                        &json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}}}}),
                    ));
                    for piece in split_arguments() {
                        events.push(sse(
                            Some("tool-call-delta"),
                            &json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": piece}}}}}),
                        ));
                    }
                    events.push(sse(
                        Some("tool-call-end"),
                        &json!({"type": "tool-call-end", "index": 0}),
                    ));
                }
                _ => {
                    events.push(sse(
                        Some("content-start"),
                        &json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
                    ));
                    for d in &c.deltas {
                        events.push(sse(
                            Some("content-delta"),
                            &json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": d}}}}),
                        ));
                    }
                    events.push(sse(Some("content-end"), &json!({"type": "content-end", "index": 0})));
                }
            }
            let delta = with(json!({"finish_reason": finish}), "usage", chat_usage);
            events.push(sse(
                Some("message-end"),
                &json!({"type": "message-end", "delta": delta}),
            ));
            c.stream("text/event-stream", events)
        }
        CohereKind::Chat => {
            let billed_units = c.usage(|| json!({"input_tokens": billed.input, "output_tokens": billed.output}));
            let tokens = c.usage(|| json!({"input_tokens": raw.input, "output_tokens": raw.output}));
            let response = json!({
                "response_id": id,
                "text": c.text,
                "generation_id": c.id("gen-"),
                "chat_history": [],
                "finish_reason": "COMPLETE",
                "meta": meta(billed_units, tokens)
            });
            if !stream {
                return c.json(&response);
            }
            let gen = c.id("gen-");
            let mut events = vec![ndjson(
                &json!({"is_finished": false, "event_type": "stream-start", "generation_id": gen}),
            )];
            for d in &c.deltas {
                events.push(ndjson(
                    &json!({"is_finished": false, "event_type": "text-generation", "text": d}),
                ));
            }
            events.push(ndjson(&json!({
                "is_finished": true,
                "event_type": "stream-end",
                "finish_reason": "COMPLETE",
                "response": response
            })));
            c.stream("application/stream+json", events)
        }
    }
}
