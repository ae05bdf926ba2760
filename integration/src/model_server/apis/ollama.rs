//! Ollama `/api/chat`, `/api/generate` (JSON and NDJSON stream) and `/api/embed` bodies for the
//! mock model server.

use serde_json::json;

use super::{ndjson, tool_arguments, with, Ctx, OllamaKind};
use crate::model_server::http::Reply;
use crate::model_server::tokens;

const OLLAMA_CREATED_AT: &str = "2024-01-01T00:00:00.000000Z";

pub(super) fn reply(c: &Ctx, kind: OllamaKind, stream: bool) -> Reply {
    if kind == OllamaKind::Embed {
        let u = tokens::OLLAMA_EMBED;
        let v = json!({
            "model": c.model,
            "embeddings": [[0.0125, -0.025, 0.0375, -0.05, 0.0625, -0.075, 0.0875, -0.1]],
            "total_duration": 14_000_000u64,
            "load_duration": 1_000_000u64
        });
        let v = with(v, "prompt_eval_count", c.usage(|| json!(u.input)));
        return c.json(&v);
    }
    let u = tokens::OLLAMA_CHAT;
    let tool = c.tool.as_ref().filter(|_| kind == OllamaKind::Chat);
    let piece = |text: &str, done: bool| {
        let v = json!({"model": c.model, "created_at": OLLAMA_CREATED_AT});
        let v = if kind == OllamaKind::Chat {
            let message = match tool {
                // Ollama sends a tool call whole, in the last message before `done`.
                Some(name) if !done || !stream => json!({
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": name, "arguments": tool_arguments()}}]
                }),
                Some(_) => json!({"role": "assistant", "content": ""}),
                None => json!({"role": "assistant", "content": text}),
            };
            with(v, "message", Some(message))
        } else {
            with(v, "response", Some(json!(text)))
        };
        let mut v = with(v, "done", Some(json!(done)));
        if done {
            let Some(obj) = v.as_object_mut() else {
                return v;
            };
            obj.insert("done_reason".into(), json!("stop"));
            obj.insert("total_duration".into(), json!(250_000_000u64));
            obj.insert("load_duration".into(), json!(10_000_000u64));
            if !c.no_usage {
                obj.insert("prompt_eval_count".into(), json!(u.input));
            }
            obj.insert("prompt_eval_duration".into(), json!(40_000_000u64));
            if !c.no_usage {
                obj.insert("eval_count".into(), json!(u.output));
            }
            obj.insert("eval_duration".into(), json!(180_000_000u64));
        }
        v
    };
    if !stream {
        return c.json(&piece(&c.text, true));
    }
    let mut events: Vec<Vec<u8>> = if tool.is_some() {
        vec![ndjson(&piece("", false))]
    } else {
        c.deltas.iter().map(|d| ndjson(&piece(d, false))).collect()
    };
    events.push(ndjson(&piece("", true)));
    c.stream("application/x-ndjson", events)
}
