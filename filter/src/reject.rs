//! Rejections in each API family's own error shape, so that every official SDK raises its usual
//! error with the filter's message as its message: OpenAI's envelope (also Azure and
//! OpenAI-compatible servers), Anthropic's, Google's (Gemini and Vertex), Bedrock's (a top-level
//! `message` and `x-amzn-errortype`), Ollama's and Cohere's. Each carries the missing dimensions and
//! the correlation ID where its format has room for them, and the correlation header.

use crate::config::Config;
use crate::policy::Attribution;
use crate::provider::{ApiFamily, ModelCall};
use serde_json::{json, Value};

/// Response code details Envoy logs for a rejected call (`%RESPONSE_CODE_DETAILS%`).
pub const RESPONSE_CODE_DETAILS: &str = "ai_attribution_rejected";

/// A local reply for Envoy to send instead of forwarding the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Whose error shape a rejection takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    OpenAi,
    Anthropic,
    Google,
    Bedrock,
    Ollama,
    Cohere,
}

impl ErrorShape {
    /// The shape the call's SDK reads.
    pub fn of(call: &ModelCall) -> ErrorShape {
        match call.family {
            ApiFamily::OpenAiChat | ApiFamily::OpenAiResponses => ErrorShape::OpenAi,
            ApiFamily::Anthropic => ErrorShape::Anthropic,
            ApiFamily::Gemini => ErrorShape::Google,
            ApiFamily::BedrockConverse | ApiFamily::BedrockInvoke => ErrorShape::Bedrock,
            ApiFamily::Ollama => ErrorShape::Ollama,
            ApiFamily::Cohere => ErrorShape::Cohere,
        }
    }
}

/// What a rejection says, before it is put in a shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<'a> {
    pub status: u32,
    /// A stable machine-readable code, e.g. `unattributed_model_call`.
    pub code: &'a str,
    /// The same in Google's `ErrorInfo.reason` style, e.g. `ATTRIBUTION_REQUIRED`.
    pub reason: &'a str,
    pub message: String,
    /// The dimensions the caller must supply.
    pub missing: Vec<&'a str>,
    pub correlation_id: &'a str,
}

/// Google's canonical status name for an HTTP status (google.rpc.Code).
fn google_status(status: u32) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

/// Anthropic's error type for an HTTP status.
fn anthropic_type(status: u32) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The AWS error type Bedrock's clients map an HTTP status to.
fn bedrock_error_type(status: u32) -> &'static str {
    match status {
        400 => "ValidationException",
        401 => "UnrecognizedClientException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// OpenAI's error type for the statuses its SDK maps to exception classes.
fn openai_type(status: u32, code: &str) -> String {
    match (status, code) {
        (_, "unattributed_model_call") => "attribution_required".to_string(),
        (429, _) => "rate_limit_exceeded".to_string(),
        _ => code.to_string(),
    }
}

impl Refusal<'_> {
    /// The local reply in `shape`, with `correlation_header` set.
    pub fn reply(&self, shape: ErrorShape, correlation_header: &str) -> LocalReply {
        let missing: Vec<Value> = self.missing.iter().map(|m| json!(m)).collect();
        let (body, extra_header) = match shape {
            ErrorShape::OpenAi => (
                json!({"error": {
                    "type": openai_type(self.status, self.code), "code": self.code, "message": self.message,
                    "param": null, "missing": missing, "correlation_id": self.correlation_id,
                }}),
                None,
            ),
            ErrorShape::Anthropic => (
                json!({"type": "error", "error": {
                    "type": anthropic_type(self.status), "message": self.message,
                    "missing": missing, "correlation_id": self.correlation_id,
                }}),
                None,
            ),
            ErrorShape::Google => (
                json!({"error": {
                    "code": self.status, "message": self.message, "status": google_status(self.status),
                    "details": [{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": self.reason,
                        "domain": "ai-attribution",
                        "metadata": {"missing": self.missing.join(","), "correlation_id": self.correlation_id},
                    }],
                }}),
                None,
            ),
            ErrorShape::Bedrock => (
                json!({"message": self.message, "missing": missing, "correlation_id": self.correlation_id}),
                Some(("x-amzn-errortype", bedrock_error_type(self.status))),
            ),
            ErrorShape::Ollama => (
                json!({"error": self.message, "missing": missing, "correlation_id": self.correlation_id}),
                None,
            ),
            ErrorShape::Cohere => (
                json!({"message": self.message, "missing": missing, "correlation_id": self.correlation_id}),
                None,
            ),
        };
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            (correlation_header.to_string(), self.correlation_id.to_string()),
        ];
        if let Some((name, value)) = extra_header {
            headers.push((name.to_string(), value.to_string()));
        }
        LocalReply {
            status: self.status,
            headers,
            body: body.to_string(),
        }
    }
}

/// The message of an attribution rejection: what was missing and what would satisfy the
/// requirement. It names dimensions and source kinds, never a header value.
fn attribution_message(config: &Config, require: &[Vec<usize>], what: &str, attribution: &Attribution) -> String {
    let name = |i: &usize| config.dimensions.get(*i).map(|d| d.name.as_str()).unwrap_or("?");
    let missing: Vec<&str> = attribution.missing.iter().map(name).collect();
    let alternatives: Vec<String> = require
        .iter()
        .map(|alt| alt.iter().map(name).collect::<Vec<_>>().join(" + "))
        .collect();
    let mut message = format!(
        "This {what} cannot be attributed: missing {}. Provide one of: {}.",
        missing.join(", "),
        alternatives.join("; or ")
    );
    let hints: Vec<String> = attribution
        .missing
        .iter()
        .filter_map(|i| config.dimensions.get(*i))
        .map(|d| {
            let sources: Vec<String> = d.sources.iter().map(ToString::to_string).collect();
            format!("{} from {}", d.name, sources.join(" or "))
        })
        .collect();
    if !hints.is_empty() {
        message.push_str(&format!(" Accepted sources: {}.", hints.join("; ")));
    }
    for (label, idx) in [
        ("invalid", &attribution.invalid),
        ("untrusted", &attribution.untrusted),
        ("unverified", &attribution.unverified),
    ] {
        let names: Vec<&str> = idx
            .iter()
            .filter(|i| attribution.missing.contains(i))
            .map(name)
            .collect();
        if !names.is_empty() {
            message.push_str(&format!(" Values were {label} for: {}.", names.join(", ")));
        }
    }
    message
}

fn missing_names<'a>(config: &'a Config, attribution: &Attribution) -> Vec<&'a str> {
    attribution
        .missing
        .iter()
        .filter_map(|i| config.dimensions.get(*i).map(|d| d.name.as_str()))
        .collect()
}

/// Builds the rejection of an unattributed model call, in the call's own error shape.
pub fn rejection(config: &Config, call: &ModelCall, attribution: &Attribution, correlation_id: &str) -> LocalReply {
    Refusal {
        status: config.reject_status,
        code: "unattributed_model_call",
        reason: "ATTRIBUTION_REQUIRED",
        message: attribution_message(config, &config.require, "model call", attribution),
        missing: missing_names(config, attribution),
        correlation_id,
    }
    .reply(ErrorShape::of(call), &config.correlation_header)
}

/// A JSON-RPC id given as JSON text, or `null`.
fn rpc_id(id: Option<&str>) -> Value {
    id.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null)
}

/// A JSON-RPC 2.0 error answer: one error object per request id (`ids`, JSON text), an array
/// when the request was a batch. A batch of notifications only is answered with one `null`-id
/// error, so that the refusal is still seen.
fn json_rpc_reply(
    status: u32,
    correlation_header: &str,
    correlation_id: &str,
    ids: &[Option<String>],
    batch: bool,
    error: &Value,
) -> LocalReply {
    let one = |id: Option<&str>| json!({"jsonrpc": "2.0", "id": rpc_id(id), "error": error});
    let body = if batch {
        let mut answers: Vec<Value> = ids.iter().flatten().map(|id| one(Some(id))).collect();
        if answers.is_empty() {
            answers.push(one(None));
        }
        Value::Array(answers)
    } else {
        one(ids.first().and_then(Option::as_deref))
    };
    LocalReply {
        status,
        headers: vec![
            ("content-type".to_string(), "application/json".to_string()),
            (correlation_header.to_string(), correlation_id.to_string()),
        ],
        body: body.to_string(),
    }
}

/// Builds the rejection of an unattributed tool call: a JSON-RPC error (code
/// [`crate::mcp::UNATTRIBUTED_CODE`]) answering the request's id, which every MCP client raises
/// with its message, `data` carrying the missing dimensions and the correlation ID.
pub fn tool_rejection(
    config: &Config,
    attribution: &Attribution,
    correlation_id: &str,
    ids: &[Option<String>],
    batch: bool,
) -> LocalReply {
    let require = &config.mcp.require;
    let error = json!({
        "code": crate::mcp::UNATTRIBUTED_CODE,
        "message": attribution_message(config, require, "tool call", attribution),
        "data": {"missing": missing_names(config, attribution), "correlation_id": correlation_id},
    });
    json_rpc_reply(
        config.reject_status,
        &config.correlation_header,
        correlation_id,
        ids,
        batch,
        &error,
    )
}

/// The answer to an MCP request whose `Mcp-Method` or `Mcp-Name` header disagrees with its body
/// (`mcp.header_mismatch: reject`): HTTP 400 with JSON-RPC error
/// [`crate::mcp::HEADER_MISMATCH_CODE`], as the 2026-07-28 transport asks of a server.
pub fn header_mismatch_reply(config: &Config, correlation_id: &str, ids: &[Option<String>], batch: bool) -> LocalReply {
    let error = json!({
        "code": crate::mcp::HEADER_MISMATCH_CODE,
        "message": "The Mcp-Method or Mcp-Name header does not match the request body.",
        "data": {"correlation_id": correlation_id},
    });
    json_rpc_reply(400, &config.correlation_header, correlation_id, ids, batch, &error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal() -> Refusal<'static> {
        Refusal {
            status: 403,
            code: "unattributed_model_call",
            reason: "ATTRIBUTION_REQUIRED",
            message: "This model call cannot be attributed: missing user.".into(),
            missing: vec!["user"],
            correlation_id: "c-1",
        }
    }

    fn body(shape: ErrorShape) -> (Value, LocalReply) {
        let reply = refusal().reply(shape, "x-ai-correlation-id");
        (serde_json::from_str(&reply.body).unwrap(), reply)
    }

    #[test]
    fn each_family_gets_its_own_shape() {
        let (v, _) = body(ErrorShape::OpenAi);
        assert_eq!(v["error"]["type"], "attribution_required");
        assert_eq!(v["error"]["missing"], json!(["user"]));
        let (v, _) = body(ErrorShape::Anthropic);
        assert_eq!(
            (v["type"].as_str(), v["error"]["type"].as_str()),
            (Some("error"), Some("permission_error"))
        );
        let (v, _) = body(ErrorShape::Google);
        assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(v["error"]["code"], 403);
        assert_eq!(v["error"]["details"][0]["metadata"]["correlation_id"], "c-1");
        assert_eq!(v["error"]["details"][0]["reason"], "ATTRIBUTION_REQUIRED");
        let (v, reply) = body(ErrorShape::Bedrock);
        assert!(v["message"].as_str().unwrap().contains("missing user"));
        assert!(reply
            .headers
            .contains(&("x-amzn-errortype".into(), "AccessDeniedException".into())));
        let (v, _) = body(ErrorShape::Ollama);
        assert!(v["error"].is_string());
        let (v, reply) = body(ErrorShape::Cohere);
        assert!(v["message"].is_string());
        assert!(reply.headers.contains(&("x-ai-correlation-id".into(), "c-1".into())));
    }

    #[test]
    fn statuses_map_to_each_vocabulary() {
        assert_eq!(google_status(429), "RESOURCE_EXHAUSTED");
        assert_eq!(anthropic_type(429), "rate_limit_error");
        assert_eq!(bedrock_error_type(429), "ThrottlingException");
        assert_eq!(google_status(418), "FAILED_PRECONDITION");
    }
}
