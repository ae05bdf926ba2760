//! Routing, behaviour switches and provider-shaped response bodies (JSON and streamed)
//! for the mock model server.

mod anthropic;
mod bedrock;
mod cohere;
mod gemini;
mod ollama;
mod openai;

use std::time::Duration;

use serde_json::{json, Value};

use super::codec::{Sha256, XorShift};
use super::encoding::{negotiate, Coding};
use super::http::{Body, Pacing, Reply, BODY_KEEP, DEFAULT_PAUSE};
use super::{ReceivedRequest, TEXT_DELTAS};

/// Fixed `created` timestamp used in every response.
const CREATED: u64 = 1_700_000_000;
/// Size of the text carried by the `big-event` event.
const BIG_EVENT_BYTES: usize = 1 << 20;
const MAX_DELAY_MS: u64 = 60_000;
/// The arguments of every tool call the server makes.
pub const TOOL_ARGUMENTS: &str = r#"{"city":"Paris"}"#;
const SLOW_PAUSE: Duration = Duration::from_millis(200);
const DEFAULT_MODEL: &str = "mock-model";

/// What to send for one request.
pub struct Answer {
    pub reply: Reply,
    pub pacing: Pacing,
    pub delay: Option<Duration>,
}

#[derive(Debug, Default)]
struct Behavior {
    reset: bool,
    slow: bool,
    status: Option<u16>,
    no_usage: bool,
    big_event: bool,
    garbage: bool,
    trickle: bool,
    delay: Option<Duration>,
    /// `encoding=…`: the coding to use whatever the request accepts.
    encoding: Option<Coding>,
    /// `linger-after-final=MS`.
    linger: Option<Duration>,
}

fn parse_behavior(req: &ReceivedRequest) -> Result<Behavior, String> {
    let mut b = Behavior::default();
    for token in req.header_all("x-mock-behavior").into_iter().flat_map(|v| v.split(',')) {
        let token = token.trim().to_ascii_lowercase();
        match token.as_str() {
            "reset-mid-stream" => b.reset = true,
            "slow" => b.slow = true,
            "no-usage" => b.no_usage = true,
            "big-event" => b.big_event = true,
            "garbage" => b.garbage = true,
            "trickle" => b.trickle = true,
            other => {
                if let Some(code) = other.strip_prefix("status=") {
                    match code.trim().parse::<u16>() {
                        Ok(c) if (200..=599).contains(&c) => b.status = Some(c),
                        _ => return Err(format!("invalid x-mock-behavior switch {other:?}")),
                    }
                } else if let Some(name) = other.strip_prefix("encoding=") {
                    match Coding::parse(name) {
                        Some(c) => b.encoding = Some(c),
                        None => return Err(format!("invalid x-mock-behavior switch {other:?}")),
                    }
                } else if let Some(ms) = other.strip_prefix("linger-after-final=") {
                    match ms.trim().parse::<u64>() {
                        Ok(ms) => b.linger = Some(Duration::from_millis(ms.min(MAX_DELAY_MS))),
                        Err(_) => return Err(format!("invalid x-mock-behavior switch {other:?}")),
                    }
                }
            }
        }
    }
    if let Some(delay) = req.header("x-mock-delay-ms") {
        match delay.trim().parse::<u64>() {
            Ok(ms) => b.delay = Some(Duration::from_millis(ms.min(MAX_DELAY_MS))),
            Err(_) => return Err(format!("invalid x-mock-delay-ms {delay:?}")),
        }
    }
    Ok(b)
}

/// Whose error shape to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    Ollama,
    Cohere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BedrockOp {
    Converse,
    ConverseStream,
    Invoke,
    InvokeStream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OllamaKind {
    Chat,
    Generate,
    Embed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CohereKind {
    Chat,
    Embed,
    Rerank,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Healthz,
    Chat(Option<String>),
    Completions(Option<String>),
    Embeddings(Option<String>),
    Responses,
    /// Anthropic messages; `(path model, stream by verb)` for Vertex `:streamRawPredict`.
    Anthropic(Option<String>, bool),
    Gemini(String, bool),
    /// Gemini `:embedContent` (no usage in the response); `true` for `:batchEmbedContents`.
    GeminiEmbed(String, bool),
    Bedrock(String, BedrockOp),
    Ollama(OllamaKind),
    Cohere(bool, CohereKind),
}

impl Route {
    fn flavor(&self) -> Flavor {
        match self {
            Route::Anthropic(..) => Flavor::Anthropic,
            Route::Gemini(..) | Route::GeminiEmbed(..) => Flavor::Gemini,
            Route::Bedrock(..) => Flavor::Bedrock,
            Route::Ollama(_) => Flavor::Ollama,
            Route::Cohere(..) => Flavor::Cohere,
            _ => Flavor::OpenAi,
        }
    }
}

/// Decodes every valid `%XX` escape once (`%2F` and `%3A` included); invalid escapes stay as
/// written. Bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path a typical HTTP server routes on, from the path part of a request target: every
/// `%XX` decoded once, `%2F` included (as ASGI servers such as uvicorn and Go's gin do before
/// routing), then `.` and `..` segments resolved and empty segments (repeated or trailing
/// slashes) dropped, as Go's `path.Clean` and nginx's `merge_slashes` do. Matching stays case
/// sensitive, and `;` and `\` are ordinary characters, as they are for those servers.
pub(crate) fn routing_path(raw_path: &str) -> String {
    let decoded = percent_decode(raw_path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `/openai/deployments/{d}/...` → `d`.
fn azure_deployment(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/openai/deployments/")?;
    let d = rest.split('/').next()?;
    (!d.is_empty()).then(|| d.to_string())
}

fn route(method: &str, path: &str) -> Option<Route> {
    if path == "/healthz" {
        return (method == "GET" || method == "HEAD").then_some(Route::Healthz);
    }
    if method != "POST" {
        return None;
    }
    if path.starts_with("/llm/") {
        return Some(Route::Chat(None));
    }
    let exact = match path {
        "/v1/chat" => Some(Route::Cohere(false, CohereKind::Chat)),
        "/v2/chat" => Some(Route::Cohere(true, CohereKind::Chat)),
        "/v1/embed" => Some(Route::Cohere(false, CohereKind::Embed)),
        "/v2/embed" => Some(Route::Cohere(true, CohereKind::Embed)),
        "/v1/rerank" => Some(Route::Cohere(false, CohereKind::Rerank)),
        "/v2/rerank" => Some(Route::Cohere(true, CohereKind::Rerank)),
        "/api/chat" => Some(Route::Ollama(OllamaKind::Chat)),
        "/api/generate" => Some(Route::Ollama(OllamaKind::Generate)),
        "/api/embed" => Some(Route::Ollama(OllamaKind::Embed)),
        _ => None,
    };
    if exact.is_some() {
        return exact;
    }
    if let Some(rest) = path.strip_prefix("/model/") {
        let (id, op) = rest.rsplit_once('/')?;
        let op = match op {
            "converse" => BedrockOp::Converse,
            "converse-stream" => BedrockOp::ConverseStream,
            "invoke" => BedrockOp::Invoke,
            "invoke-with-response-stream" => BedrockOp::InvokeStream,
            _ => return None,
        };
        return (!id.is_empty()).then(|| Route::Bedrock(id.to_string(), op));
    }
    if let Some((prefix, last)) = path.rsplit_once('/') {
        // A Google custom method follows the segment's last `:`.
        if let Some((model, verb)) = last.rsplit_once(':') {
            if !prefix.ends_with("/models") || model.is_empty() {
                return None;
            }
            let model = model.to_string();
            return match verb {
                "generateContent" => Some(Route::Gemini(model, false)),
                "streamGenerateContent" => Some(Route::Gemini(model, true)),
                "embedContent" => Some(Route::GeminiEmbed(model, false)),
                "batchEmbedContents" => Some(Route::GeminiEmbed(model, true)),
                "rawPredict" => Some(Route::Anthropic(Some(model), false)),
                "streamRawPredict" => Some(Route::Anthropic(Some(model), true)),
                _ => None,
            };
        }
    }
    let deployment = azure_deployment(path);
    if path.ends_with("/chat/completions") {
        Some(Route::Chat(deployment))
    } else if path.ends_with("/completions") {
        Some(Route::Completions(deployment))
    } else if path.ends_with("/embeddings") {
        Some(Route::Embeddings(deployment))
    } else if path.ends_with("/responses") {
        Some(Route::Responses)
    } else if path.ends_with("/v1/messages") {
        Some(Route::Anthropic(None, false))
    } else {
        None
    }
}

/// Splits a request target into (path, query), tolerating absolute-form targets; a fragment
/// (which no client should send) is dropped.
pub(super) fn split_target(target: &str) -> (&str, &str) {
    let target = match target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        Some(rest) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => target,
    };
    let target = target.split('#').next().unwrap_or(target);
    target.split_once('?').unwrap_or((target, ""))
}

/// A number that names a request by what it asks, not by when it came: the SHA-256 of its method,
/// path and body. Response ids are made from it, so they do not depend on which requests came
/// before (the same request gets the same id).
fn request_key(req: &ReceivedRequest) -> u64 {
    let mut sha = Sha256::default();
    sha.update(req.method.as_bytes());
    sha.update(b" ");
    sha.update(req.path.as_bytes());
    sha.update(b"\n");
    match &req.body_sha256_prefix {
        Some(body) => sha.update(body.as_bytes()),
        None => sha.update(req.body_len.to_string().as_bytes()),
    }
    let digest = sha.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(first)
}

/// Builds the answer for one fully received request.
pub fn respond(req: &ReceivedRequest) -> Answer {
    let key = request_key(req);
    let (raw_path, query) = split_target(&req.path);
    let route = route(&req.method, &routing_path(raw_path));
    let flavor = route.as_ref().map_or(Flavor::OpenAi, Route::flavor);
    let plain = Pacing {
        pause: DEFAULT_PAUSE,
        ..Pacing::PLAIN
    };
    let behavior = match parse_behavior(req) {
        Ok(b) => b,
        Err(msg) => {
            return Answer {
                reply: error_reply(flavor, 400, &msg, key),
                pacing: plain,
                delay: None,
            }
        }
    };
    let encoding = if route == Some(Route::Healthz) || behavior.garbage {
        Coding::Identity
    } else {
        behavior
            .encoding
            .unwrap_or_else(|| negotiate(&req.header_all("accept-encoding")))
    };
    let pacing = Pacing {
        pause: if behavior.slow { SLOW_PAUSE } else { DEFAULT_PAUSE },
        trickle: behavior.trickle,
        reset_half: behavior.reset,
        fragment_full: behavior.reset || behavior.trickle,
        encoding,
        linger: behavior.linger,
        cut: false,
    };
    // Tells a test which coding the request asked for once it had passed the proxy.
    let asked = req.header_all("accept-encoding").join(", ");
    let reply = build(req, key, route, flavor, query, &behavior).header("x-mock-accept-encoding", asked);
    Answer {
        reply,
        pacing,
        delay: behavior.delay,
    }
}

/// The request body as JSON (`Null` when empty or too large to parse) plus its `model`.
fn parse_body(req: &ReceivedRequest) -> Result<(Value, Option<String>), String> {
    if req.body_len == 0 {
        return Ok((Value::Null, None));
    }
    if req.body_len > BODY_KEEP || req.body.len() != req.body_len {
        return Ok((Value::Null, scan_model(&req.body)));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(v) => {
            let model = v
                .get("model")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(str::to_string);
            Ok((v, model))
        }
        Err(e) => Err(format!("invalid JSON body: {e}")),
    }
}

/// Best-effort `"model": "..."` lookup in a body prefix too large to parse.
fn scan_model(prefix: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(prefix);
    let at = text.find("\"model\"")?;
    let rest = text.get(at + 7..)?.trim_start().strip_prefix(':')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    rest.get(..end).map(str::to_string)
}

/// Per-request context for the body builders.
struct Ctx {
    /// The request's key ([`request_key`]), from which ids are made.
    key: u64,
    model: String,
    no_usage: bool,
    include_usage: bool,
    /// Full assistant text.
    text: String,
    /// Stream text pieces (with the big event inserted when requested).
    deltas: Vec<String>,
    /// The first tool the request offers: the answer calls it.
    tool: Option<String>,
}

impl Ctx {
    fn usage(&self, f: impl FnOnce() -> Value) -> Option<Value> {
        (!self.no_usage).then(f)
    }

    /// A response id: `prefix` + `mock` + 12 hex digits of the request's key.
    fn id(&self, prefix: &str) -> String {
        mock_id(prefix, self.key)
    }

    fn json(&self, v: &Value) -> Reply {
        Reply::json(200, v)
    }

    fn stream(&self, content_type: &str, events: Vec<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            body: Body::Stream(events),
        }
    }
}

/// The name of the first tool a request offers, in any provider's shape: OpenAI chat, Ollama
/// and Cohere (`tools[].function.name`), Responses and Anthropic (`tools[].name`), Gemini
/// (`tools[].functionDeclarations[].name`) and Bedrock Converse (`toolConfig.tools[].toolSpec.name`).
fn offered_tool(body: &Value) -> Option<String> {
    [
        "/tools/0/function/name",
        "/tools/0/name",
        "/tools/0/functionDeclarations/0/name",
        "/tools/0/function_declarations/0/name",
        "/toolConfig/tools/0/toolSpec/name",
    ]
    .iter()
    .find_map(|p| body.pointer(p).and_then(Value::as_str))
    .filter(|n| !n.is_empty())
    .map(str::to_string)
}

/// The tool-call arguments as a JSON object.
fn tool_arguments() -> Value {
    serde_json::from_str(TOOL_ARGUMENTS).unwrap_or(Value::Null)
}

fn mock_id(prefix: &str, key: u64) -> String {
    format!("{prefix}mock{:012x}", key >> 16)
}

/// Inserts `key: val` into object `v` when `val` is `Some`.
fn with(mut v: Value, key: &str, val: Option<Value>) -> Value {
    if let (Some(val), Some(obj)) = (val, v.as_object_mut()) {
        obj.insert(key.to_string(), val);
    }
    v
}

fn sse(event: Option<&str>, data: &Value) -> Vec<u8> {
    let mut out = String::new();
    if let Some(e) = event {
        out.push_str("event: ");
        out.push_str(e);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
    out.into_bytes()
}

fn ndjson(v: &Value) -> Vec<u8> {
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out
}

fn build(
    req: &ReceivedRequest,
    key: u64,
    route: Option<Route>,
    flavor: Flavor,
    query: &str,
    behavior: &Behavior,
) -> Reply {
    if route == Some(Route::Healthz) {
        return Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Body::Full(b"ok".to_vec()),
        };
    }
    if behavior.garbage {
        let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15 ^ key);
        let events = (0..16).map(|_| rng.bytes(256)).collect();
        return Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: Body::Stream(events),
        };
    }
    if let Some(status) = behavior.status {
        return error_reply(flavor, status, &format!("mock error (status {status})"), key);
    }
    let Some(route) = route else {
        return Reply::json(404, &json!({"error": {"message": "not found"}}));
    };
    let (body, body_model) = match parse_body(req) {
        Ok(parsed) => parsed,
        Err(msg) => return error_reply(flavor, 400, &msg, key),
    };
    let wants_stream = body.get("stream").and_then(Value::as_bool);
    let (stream, path_model) = match &route {
        Route::Healthz => (false, None),
        Route::Chat(d) | Route::Completions(d) => (wants_stream == Some(true), d.clone()),
        Route::Embeddings(d) => (false, d.clone()),
        Route::Anthropic(m, verb) => (*verb || wants_stream == Some(true), m.clone()),
        Route::Gemini(m, s) => (*s, Some(m.clone())),
        Route::GeminiEmbed(m, _) => (false, Some(m.clone())),
        Route::Bedrock(m, op) => (
            matches!(op, BedrockOp::ConverseStream | BedrockOp::InvokeStream),
            Some(m.clone()),
        ),
        Route::Ollama(OllamaKind::Embed) => (false, None),
        Route::Ollama(_) => (wants_stream != Some(false), None),
        Route::Cohere(_, kind) => (*kind == CohereKind::Chat && wants_stream == Some(true), None),
        Route::Responses => (wants_stream == Some(true), None),
    };
    let mut deltas: Vec<String> = TEXT_DELTAS.iter().map(|d| d.to_string()).collect();
    if stream && behavior.big_event {
        let big = "big-event ".repeat(BIG_EVENT_BYTES / 10);
        deltas.insert(deltas.len().saturating_sub(1), big);
    }
    let ctx = Ctx {
        key,
        model: body_model.or(path_model).unwrap_or_else(|| DEFAULT_MODEL.to_string()),
        no_usage: behavior.no_usage,
        include_usage: body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true),
        text: TEXT_DELTAS.concat(),
        deltas,
        tool: offered_tool(&body),
    };
    match route {
        Route::Healthz => Reply::json(200, &json!({"status": "ok"})),
        Route::Chat(_) => openai::chat(&ctx, stream),
        Route::Completions(_) => openai::completions(&ctx, stream),
        Route::Embeddings(_) => openai::embeddings(&ctx, &body),
        Route::Responses => openai::responses(&ctx, stream),
        Route::Anthropic(..) => anthropic::reply(&ctx, stream),
        Route::GeminiEmbed(_, batch) => gemini::embed(&ctx, &body, batch),
        Route::Gemini(..) => gemini::reply(&ctx, stream, query.split('&').any(|p| p == "alt=sse")),
        Route::Bedrock(_, op) => bedrock::reply(&ctx, op),
        Route::Ollama(kind) => ollama::reply(&ctx, kind, stream),
        Route::Cohere(v2, kind) => cohere::reply(&ctx, v2, kind, stream),
    }
}

// ---------------------------------------------------------------- errors

fn error_reply(flavor: Flavor, status: u16, msg: &str, key: u64) -> Reply {
    let server = status >= 500;
    match flavor {
        Flavor::OpenAi => {
            let (kind, code) = match status {
                401 => ("invalid_request_error", json!("invalid_api_key")),
                403 => ("permission_error", Value::Null),
                404 => ("invalid_request_error", json!("model_not_found")),
                429 => ("requests", json!("rate_limit_exceeded")),
                _ if server => ("server_error", Value::Null),
                _ => ("invalid_request_error", Value::Null),
            };
            Reply::json(
                status,
                &json!({"error": {"message": msg, "type": kind, "param": null, "code": code}}),
            )
        }
        Flavor::Anthropic => {
            let kind = match status {
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ if server => "api_error",
                _ => "invalid_request_error",
            };
            Reply::json(
                status,
                &json!({"type": "error", "error": {"type": kind, "message": msg}}),
            )
            .header("request-id", mock_id("req_", key))
        }
        Flavor::Gemini => {
            let kind = match status {
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
                _ if server => "INTERNAL",
                _ => "FAILED_PRECONDITION",
            };
            Reply::json(
                status,
                &json!({"error": {"code": status, "message": msg, "status": kind}}),
            )
        }
        Flavor::Bedrock => {
            let kind = match status {
                403 => "AccessDeniedException",
                404 => "ResourceNotFoundException",
                408 => "ModelTimeoutException",
                424 => "ModelErrorException",
                429 => "ThrottlingException",
                503 => "ServiceUnavailableException",
                _ if server => "InternalServerException",
                _ => "ValidationException",
            };
            Reply::json(status, &json!({"message": msg}))
                .header("x-amzn-errortype", kind)
                .header("x-amzn-requestid", mock_id("", key))
        }
        Flavor::Ollama => Reply::json(status, &json!({"error": msg})),
        Flavor::Cohere => Reply::json(status, &json!({"id": mock_id("", key), "message": msg})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |p: &str| route("POST", &routing_path(p));
        assert_eq!(r("/v1/chat/completions"), Some(Route::Chat(None)));
        assert_eq!(
            r("/openai/deployments/gpt4o/chat/completions"),
            Some(Route::Chat(Some("gpt4o".into())))
        );
        assert_eq!(r("/llm/anything"), Some(Route::Chat(None)));
        assert_eq!(r("/v1/completions"), Some(Route::Completions(None)));
        assert_eq!(r("/v1/responses"), Some(Route::Responses));
        assert_eq!(r("/v1/messages"), Some(Route::Anthropic(None, false)));
        assert_eq!(
            r("/v1beta/models/gemini-2.0-flash:streamGenerateContent"),
            Some(Route::Gemini("gemini-2.0-flash".into(), true))
        );
        assert_eq!(
            r("/v1/projects/p/locations/l/publishers/google/models/gemini-pro:generateContent"),
            Some(Route::Gemini("gemini-pro".into(), false))
        );
        assert_eq!(
            r("/model/anthropic.claude-v2%3A1/invoke-with-response-stream"),
            Some(Route::Bedrock("anthropic.claude-v2:1".into(), BedrockOp::InvokeStream))
        );
        assert_eq!(r("/v2/chat"), Some(Route::Cohere(true, CohereKind::Chat)));
        assert_eq!(r("/api/generate"), Some(Route::Ollama(OllamaKind::Generate)));
        assert_eq!(r("/nope"), None);
        assert_eq!(route("GET", "/v1/chat/completions"), None);
        assert_eq!(route("GET", "/healthz"), Some(Route::Healthz));
        assert_eq!(split_target("http://h:1/a?b=c"), ("/a", "b=c"));
        assert_eq!(split_target("/a#f?b"), ("/a", ""));
        assert_eq!(
            scan_model(br#"{"model" : "gpt-x", "input": "..."#).as_deref(),
            Some("gpt-x")
        );
    }

    #[test]
    fn routes_on_the_decoded_and_resolved_path() {
        for p in [
            "/v1/chat/completions",
            "/v1/chat/completions/",
            "//v1//chat///completions",
            "/v1/./chat/completions",
            "/v1/x/../chat/completions",
            "/v1/x/%2e%2e/chat/completions",
            "/v1/chat/%63ompletions",
            "/v1/chat%2Fcompletions",
            "/v1%2fchat%2fcompletions",
            "/../v1/chat/completions",
        ] {
            assert_eq!(routing_path(p), "/v1/chat/completions", "{p}");
        }
        // Decoded once; `;`, `\` and case are the server's business, not a separator.
        assert_eq!(routing_path("/a/%252F"), "/a/%2F");
        assert_eq!(routing_path("/a;b/c\\d"), "/a;b/c\\d");
        assert_eq!(routing_path("/V1/Chat"), "/V1/Chat");
        assert_eq!(routing_path("/a%zz%+1"), "/a%zz%+1");
        assert_eq!(routing_path(""), "/");
        let r = |p: &str| route("POST", &routing_path(p));
        assert_eq!(r("/V1/CHAT/COMPLETIONS"), None, "case sensitive");
        assert_eq!(r("/v1/chat/completions;x=1"), None);
        assert_eq!(
            r("/v1beta/models/gemini-pro;x:generateContent"),
            Some(Route::Gemini("gemini-pro;x".into(), false))
        );
        assert_eq!(
            r("/v1beta/models/a:b:streamGenerateContent"),
            Some(Route::Gemini("a:b".into(), true))
        );
        assert_eq!(
            r("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.claude/converse"),
            Some(Route::Bedrock(
                "arn:aws:bedrock:us-east-1:1:inference-profile/us.claude".into(),
                BedrockOp::Converse
            ))
        );
        assert_eq!(r("/api/%63hat"), Some(Route::Ollama(OllamaKind::Chat)));
        assert_eq!(r("/v2//chat/"), Some(Route::Cohere(true, CohereKind::Chat)));
    }
}
