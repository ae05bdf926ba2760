//! What a call to an MCP endpoint adds to the lifecycle: its JSON-RPC request read from the body
//! before the decision, the methods that must be attributed, the mirrored-header check, and the
//! outcome read from the answer.

use crate::config::Config;
use crate::host::{header_text, Headers};
use crate::mcp::{self, McpMessage, McpOutcome, McpRequestReader, McpResponseReader};

/// The MCP side of one call.
#[derive(Debug)]
pub(super) struct ToolCall {
    reader: McpRequestReader,
    response: Option<McpResponseReader>,
    /// `Mcp-Session-Id` as the client sent it.
    pub session: Option<String>,
    /// `Mcp-Session-Id` the server issued in its answer (to `initialize`).
    pub issued_session: Option<String>,
    pub protocol_version: Option<String>,
    method_header: Option<String>,
    name_header: Option<String>,
    /// The filter answered with a header-mismatch error itself.
    pub answered_mismatch: bool,
}

fn owned(headers: &Headers, name: &str) -> Option<String> {
    header_text(headers, name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

impl ToolCall {
    pub fn new(headers: &Headers) -> ToolCall {
        ToolCall {
            reader: McpRequestReader::new(),
            response: None,
            session: owned(headers, mcp::SESSION_HEADER),
            issued_session: None,
            protocol_version: owned(headers, mcp::PROTOCOL_VERSION_HEADER),
            method_header: owned(headers, mcp::METHOD_HEADER),
            name_header: owned(headers, mcp::NAME_HEADER),
            answered_mismatch: false,
        }
    }

    pub fn feed_request(&mut self, chunk: &[u8]) {
        if !self.reader.finished() {
            self.reader.feed(chunk);
        }
    }

    /// Nothing more will be learnt from the request body.
    pub fn request_read(&self) -> bool {
        self.reader.finished()
    }

    pub fn messages(&self) -> &[McpMessage] {
        self.reader.messages()
    }

    pub fn is_batch(&self) -> bool {
        self.reader.is_batch()
    }

    /// The request ids, as JSON text, in body order (`None` for a notification).
    pub fn ids(&self) -> Vec<Option<String>> {
        self.messages().iter().map(|m| m.id.clone()).collect()
    }

    /// Whether the request must be attributed, once that is known: a body that names a method
    /// of `mcp.methods` (known as soon as that method is read), or one the reader could not read
    /// (what it asks for is unknown, so it is not exempt). A request without a body (the GET of a
    /// stream, the DELETE that ends a session) and other methods need not be. `None`: not known
    /// yet.
    pub fn required(&self, cfg: &Config, had_body: bool) -> Option<bool> {
        if !had_body {
            return Some(false);
        }
        let listed = |method: &str| cfg.mcp.methods.iter().any(|x| x == method);
        if self.reader.methods_seen().into_iter().any(listed) {
            return Some(true);
        }
        if !self.reader.finished() {
            return None;
        }
        Some(self.reader.unreadable() || self.messages().is_empty())
    }

    /// The client mirrors the method or name in headers (2026-07-28).
    pub fn mirrors_headers(&self) -> bool {
        self.method_header.is_some() || self.name_header.is_some()
    }

    /// The message the record describes: the first one that must be attributed, else the first.
    pub fn subject(&self, cfg: &Config) -> Option<&McpMessage> {
        let messages = self.messages();
        messages
            .iter()
            .find(|m| {
                m.method
                    .as_deref()
                    .is_some_and(|method| cfg.mcp.methods.iter().any(|x| x == method))
            })
            .or_else(|| messages.first())
    }

    /// `Mcp-Method`/`Mcp-Name` disagree with the body's first message (2026-07-28).
    pub fn header_mismatch(&self) -> bool {
        if !self.mirrors_headers() || (self.messages().is_empty() && !self.reader.finished()) {
            // Nothing to compare, or the message was not read in full (past the body limit).
            return false;
        }
        mcp::headers_disagree(
            self.method_header.as_deref(),
            self.name_header.as_deref(),
            self.messages().first(),
        )
    }

    /// The upstream's answer begins.
    pub fn start_response(&mut self, headers: &Headers) {
        self.issued_session = owned(headers, mcp::SESSION_HEADER);
        let id = self.messages().first().and_then(|m| m.id.clone());
        self.response = Some(McpResponseReader::new(
            header_text(headers, "content-type"),
            id,
            self.is_batch(),
        ));
    }

    pub fn wants_response_body(&self) -> bool {
        self.response.as_ref().is_some_and(|r| r.outcome().is_none())
    }

    pub fn feed_response(&mut self, chunk: &[u8], end_of_stream: bool) {
        if let Some(r) = self.response.as_mut() {
            if r.outcome().is_none() {
                r.feed(chunk, end_of_stream);
            }
        }
    }

    /// How the call went: from the answer, or the mismatch error the filter sent.
    pub fn outcome(&self) -> Option<McpOutcome> {
        if self.answered_mismatch {
            return Some(McpOutcome::Error(mcp::HEADER_MISMATCH_CODE));
        }
        self.response.as_ref().and_then(|r| r.outcome().cloned())
    }
}
