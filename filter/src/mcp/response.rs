//! The answer to an MCP POST, read as it passes: `application/json` (one JSON-RPC response, or a
//! batch of them) or `text/event-stream` whose events carry JSON-RPC messages. The outcome is the
//! response to the request's id: success, a tool that failed (`result.isError`), or a protocol
//! error (`error.code`).

use crate::json_scan::{JsonPaths, JsonScalar, JsonScanner};
use crate::usage::{DocumentSink, SseFramer};
use std::rc::Rc;

const ID: usize = 0;
const ERROR_CODE: usize = 1;
const IS_ERROR: usize = 2;
const RESULT: usize = 3;
const METHOD: usize = 4;

thread_local! {
    static PATHS: Rc<JsonPaths> = JsonPaths::new(
        [&["id"][..], &["error", "code"], &["result", "isError"], &["result"], &["method"]]
            .iter()
            .map(|p| p.iter().map(|c| (*c).to_string()).collect())
            .collect(),
    );
    static BATCH_PATHS: Rc<JsonPaths> = JsonPaths::new(
        [&["[]", "id"][..], &["[]", "error", "code"], &["[]", "result", "isError"], &["[]", "result"], &["[]", "method"]]
            .iter()
            .map(|p| p.iter().map(|c| (*c).to_string()).collect())
            .collect(),
    );
}

/// How the call went, as the answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpOutcome {
    Ok,
    /// `result.isError: true`: the tool ran and failed.
    ToolError,
    /// A JSON-RPC error, with its code.
    Error(i64),
}

impl McpOutcome {
    /// OpenTelemetry `error.type`: the code as text, or `tool_error`.
    pub fn error_type(&self) -> Option<String> {
        match self {
            McpOutcome::Ok => None,
            McpOutcome::ToolError => Some("tool_error".to_string()),
            McpOutcome::Error(code) => Some(code.to_string()),
        }
    }

    /// OpenTelemetry `rpc.response.status_code`: the JSON-RPC error code as text.
    pub fn status_code(&self) -> Option<String> {
        match self {
            McpOutcome::Error(code) => Some(code.to_string()),
            _ => None,
        }
    }
}

/// The documents of one answer, looking for the response to `request_id`.
#[derive(Debug)]
struct Responses {
    scanner: JsonScanner,
    request_id: Option<String>,
    outcome: Option<McpOutcome>,
}

fn id_text(v: Option<&JsonScalar>) -> Option<String> {
    match v {
        Some(JsonScalar::String(s)) => serde_json::to_string(s).ok(),
        Some(JsonScalar::Number(n)) => Some(n.clone()),
        _ => None,
    }
}

impl Responses {
    /// The outcome of the document just read, if it is a response (not a server request or
    /// notification) and answers the request (or the request id is unknown).
    fn read(&mut self) {
        let s = &self.scanner;
        if self.outcome.is_some() || s.value(METHOD).is_some() {
            return;
        }
        let id = id_text(s.value(ID));
        if self.request_id.is_some() && id.is_some() && id != self.request_id {
            return;
        }
        self.outcome = match (s.value(ERROR_CODE), s.value(IS_ERROR), s.value(RESULT)) {
            (Some(JsonScalar::Number(code)), _, _) => code.parse().ok().map(McpOutcome::Error),
            (_, Some(JsonScalar::Bool(true)), _) => Some(McpOutcome::ToolError),
            (_, _, Some(_)) => Some(McpOutcome::Ok),
            _ => None,
        };
    }
}

impl DocumentSink for Responses {
    fn feed(&mut self, bytes: &[u8]) {
        self.scanner.feed(bytes);
    }

    fn end_document(&mut self) {
        if self.scanner.is_complete() {
            self.read();
        }
        self.scanner.reset();
    }
}

/// Reads an MCP answer's outcome as it streams past.
#[derive(Debug)]
pub struct McpResponseReader {
    responses: Responses,
    sse: Option<SseFramer>,
}

impl McpResponseReader {
    /// `content_type` of the answer; `request_id` as JSON text (see `McpMessage::id`).
    pub fn new(content_type: Option<&str>, request_id: Option<String>, batch: bool) -> Self {
        let media = content_type
            .and_then(|ct| ct.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let sse = (media == "text/event-stream").then(SseFramer::new);
        let paths = if batch && sse.is_none() {
            BATCH_PATHS.with(Rc::clone)
        } else {
            PATHS.with(Rc::clone)
        };
        McpResponseReader {
            responses: Responses {
                scanner: JsonScanner::with_paths(paths, 64),
                request_id,
                outcome: None,
            },
            sse,
        }
    }

    pub fn feed(&mut self, chunk: &[u8], end_of_stream: bool) {
        match self.sse.as_mut() {
            Some(framer) => {
                framer.feed(chunk, &mut self.responses);
                if end_of_stream {
                    framer.finish(&mut self.responses);
                }
            }
            None => {
                self.responses.scanner.feed(chunk);
                if end_of_stream || self.responses.scanner.is_complete() {
                    self.responses.end_document();
                }
            }
        }
    }

    /// The outcome, once the response has been read.
    pub fn outcome(&self) -> Option<&McpOutcome> {
        self.responses.outcome.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ct: &str, id: Option<&str>, body: &[u8]) -> Option<McpOutcome> {
        let whole = {
            let mut r = McpResponseReader::new(Some(ct), id.map(str::to_string), false);
            r.feed(body, true);
            r.outcome().cloned()
        };
        for split in 0..=body.len() {
            let mut r = McpResponseReader::new(Some(ct), id.map(str::to_string), false);
            r.feed(&body[..split], false);
            r.feed(&body[split..], true);
            assert_eq!(r.outcome().cloned(), whole, "split at {split}");
        }
        whole
    }

    #[test]
    fn json_answers() {
        let json = "application/json";
        assert_eq!(
            outcome(json, Some("1"), br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#),
            Some(McpOutcome::Ok)
        );
        assert_eq!(
            outcome(
                json,
                Some("1"),
                br#"{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}"#
            ),
            Some(McpOutcome::ToolError)
        );
        assert_eq!(
            outcome(
                json,
                Some("\"a\""),
                br#"{"jsonrpc":"2.0","id":"a","error":{"code":-32602,"message":"x"}}"#
            ),
            Some(McpOutcome::Error(-32602))
        );
    }

    #[test]
    fn sse_answers_skip_server_messages_and_other_ids() {
        let body =
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n\
                     data: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}\n\n\
                     data: {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32603,\"message\":\"boom\"}}\n\n";
        assert_eq!(
            outcome("text/event-stream", Some("1"), body),
            Some(McpOutcome::Error(-32603))
        );
        // Cut before the response: no outcome.
        assert_eq!(outcome("text/event-stream", Some("1"), &body[..80]), None);
    }

    #[test]
    fn a_batch_answer_gives_the_outcome_of_the_first_response() {
        let mut r = McpResponseReader::new(Some("application/json"), None, true);
        r.feed(
            br#"[{"jsonrpc":"2.0","id":1,"result":{"isError":true}},{"jsonrpc":"2.0","id":2,"result":{}}]"#,
            true,
        );
        assert_eq!(r.outcome(), Some(&McpOutcome::ToolError));
        assert_eq!(McpOutcome::Error(-32602).error_type().as_deref(), Some("-32602"));
        assert_eq!(McpOutcome::ToolError.status_code(), None);
    }
}
