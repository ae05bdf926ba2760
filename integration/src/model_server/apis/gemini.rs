//! Gemini / Vertex AI `generateContent` and `streamGenerateContent` bodies (JSON, JSON array
//! stream and SSE) for the mock model server.

use serde_json::{json, Value};

use super::{sse, with, Ctx};
use crate::model_server::http::Reply;
use crate::model_server::tokens;

pub(super) fn reply(c: &Ctx, stream: bool, alt_sse: bool) -> Reply {
    let u = tokens::GEMINI;
    let full_usage = || {
        json!({
            "promptTokenCount": u.input,
            "candidatesTokenCount": u.output,
            "totalTokenCount": u.total,
            "cachedContentTokenCount": u.cache_read,
            "thoughtsTokenCount": u.reasoning,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.input}]
        })
    };
    let resp = |text: &str, finish: bool, usage: Option<Value>| {
        let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
        if finish {
            candidate = with(candidate, "finishReason", Some(json!("STOP")));
        }
        let v = json!({"candidates": [candidate]});
        let v = with(v, "usageMetadata", usage);
        with(
            with(v, "modelVersion", Some(json!(c.model))),
            "responseId",
            Some(json!(c.id("resp-"))),
        )
    };
    if !stream {
        return c.json(&resp(&c.text, true, c.usage(full_usage)));
    }
    let n = c.deltas.len();
    let chunks: Vec<Value> = c
        .deltas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let last = i + 1 == n;
            let usage = if last {
                c.usage(full_usage)
            } else {
                let partial = (i as u64 + 1).min(u.output.saturating_sub(1));
                c.usage(|| {
                    json!({
                        "promptTokenCount": u.input,
                        "candidatesTokenCount": partial,
                        "totalTokenCount": u.input + partial
                    })
                })
            };
            resp(d, last, usage)
        })
        .collect();
    if alt_sse {
        let events = chunks.iter().map(|v| sse(None, v)).collect();
        c.stream("text/event-stream", events)
    } else {
        let mut events: Vec<Vec<u8>> = chunks
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let sep = if i == 0 { "[" } else { ",\r\n" };
                format!("{sep}{v}").into_bytes()
            })
            .collect();
        events.push(b"]".to_vec());
        c.stream("application/json; charset=UTF-8", events)
    }
}
