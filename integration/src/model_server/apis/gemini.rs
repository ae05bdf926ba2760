//! Gemini / Vertex AI `generateContent` and `streamGenerateContent` bodies (JSON, JSON array
//! stream and SSE) for the mock model server.

use serde_json::{json, Value};

use super::{sse, tool_arguments, with, Ctx};
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
        let parts = match &c.tool {
            Some(name) if finish => json!([{"functionCall": {"name": name, "args": tool_arguments()}}]),
            _ => json!([{"text": text}]),
        };
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
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
    // A function call comes whole, in the final chunk.
    let deltas = if c.tool.is_some() {
        vec![String::new()]
    } else {
        c.deltas.clone()
    };
    let n = deltas.len();
    let chunks: Vec<Value> = deltas
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

/// `:embedContent` (`{"embedding": …}`) and `:batchEmbedContents` (`{"embeddings": [...]}`, one per
/// request). Gemini reports no usage for embeddings; Vertex adds `metadata.billableCharacterCount`.
pub(super) fn embed(c: &Ctx, body: &Value, batch: bool) -> Reply {
    let values = |i: usize| {
        let v: Vec<f64> = (0..8u8).map(|k| f64::from(k + 1) * 0.0125 + i as f64 * 0.001).collect();
        json!({"values": v})
    };
    if batch {
        let n = body
            .get("requests")
            .and_then(Value::as_array)
            .map_or(1, |r| r.len().clamp(1, 256));
        return c.json(&json!({"embeddings": (0..n).map(values).collect::<Vec<_>>()}));
    }
    c.json(&json!({"embedding": values(0), "metadata": {"billableCharacterCount": 2}}))
}
