//! Agent tool calls: the Model Context Protocol over Streamable HTTP (MCP 2025-03-26 to
//! 2026-07-28). A POST to an MCP endpoint carries one JSON-RPC 2.0 message (2025-03-26 also a
//! batch array); its answer is JSON or an SSE stream carrying the JSON-RPC response. The session
//! is the `Mcp-Session-Id` header (up to 2025-11-25); 2026-07-28 instead mirrors the method and
//! name in `Mcp-Method` and `Mcp-Name`, which an intermediary must check against the body.

mod request;
mod response;

pub use request::{McpMessage, McpRequestReader};
pub use response::{McpOutcome, McpResponseReader};

/// The session header.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// The protocol version header (2025-06-18 and later).
pub const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// The method and name mirrored in headers by 2026-07-28 clients.
pub const METHOD_HEADER: &str = "mcp-method";
pub const NAME_HEADER: &str = "mcp-name";

/// JSON-RPC error code of an attribution rejection (in the implementation-defined server range).
pub const UNATTRIBUTED_CODE: i64 = -32001;
/// JSON-RPC error code of a request whose mirrored headers disagree with its body (2026-07-28).
pub const HEADER_MISMATCH_CODE: i64 = -32020;

/// Methods whose `params.name` is the thing the call is about.
pub fn names_a_tool_or_prompt(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get")
}

/// A mirrored header value: plain ASCII, or `=?base64?<base64>?=` for other text (2026-07-28).
pub fn decode_header_value(raw: &str) -> Option<String> {
    use base64::Engine as _;
    let raw = raw.trim();
    match raw.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(raw.to_string()),
    }
}

/// How the mirrored headers compare with the body's first message.
pub fn headers_disagree(method_header: Option<&str>, name_header: Option<&str>, body: Option<&McpMessage>) -> bool {
    let decoded = |h: Option<&str>| h.map(decode_header_value);
    match body {
        None => method_header.is_some() || name_header.is_some(),
        Some(message) => {
            let method_differs = match decoded(method_header) {
                None => false,
                Some(header) => header.as_deref() != message.method.as_deref(),
            };
            let subject = message.name.as_deref().or(message.uri.as_deref());
            let name_differs = match decoded(name_header) {
                None => false,
                Some(header) => header.as_deref() != subject,
            };
            method_differs || name_differs
        }
    }
}

/// The W3C trace ID of a `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), if well formed.
pub fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && hex(flags, 2);
    valid.then(|| trace.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(method: &str, name: Option<&str>) -> McpMessage {
        McpMessage {
            id: Some("1".into()),
            method: Some(method.into()),
            name: name.map(str::to_string),
            uri: None,
        }
    }

    #[test]
    fn mirrored_headers_are_checked_against_the_body() {
        let m = message("tools/call", Some("get_weather"));
        assert!(!headers_disagree(Some("tools/call"), Some("get_weather"), Some(&m)));
        assert!(!headers_disagree(None, None, Some(&m)));
        assert!(headers_disagree(Some("tools/list"), None, Some(&m)));
        assert!(headers_disagree(Some("tools/call"), Some("delete_all"), Some(&m)));
        // Base64-encoded names compare by their text.
        let m = message("tools/call", Some("météo"));
        assert!(!headers_disagree(
            Some("tools/call"),
            Some("=?base64?bcOpdMOpbw==?="),
            Some(&m)
        ));
    }

    #[test]
    fn trace_ids_come_from_valid_traceparents() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }
}
