//! A local MCP server (Model Context Protocol over Streamable HTTP), served by the model server at
//! `/mcp` and at any path ending in `/mcp` (`/tenant-a/mcp`, `/v1/mcp`; the query is ignored).
//! It speaks both generations of the transport on one endpoint, as a dual-era server does:
//!
//! * **Sessions (2025-03-26, 2025-06-18, 2025-11-25).** `initialize` opens a session: the answer
//!   carries `mcp-session-id` (32 random hex digits) and the negotiated `protocolVersion` (the one
//!   the client asked for when it is one of these three, else 2025-11-25; `mcp-version=` forces
//!   one). Every later request, GET and DELETE must carry the session: missing → 400, unknown (or
//!   ended) → 404. Sessions from 2025-06-18 on must also send `MCP-Protocol-Version` equal to the
//!   negotiated version (missing or different → 400); a 2025-03-26 session may omit it.
//!   Notifications and client responses → 202 with no body. `DELETE` ends the session (200).
//!   `GET` → 405 (no standalone stream) unless `get-stream=MS`. A 2025-03-26 session also takes a
//!   batch (a JSON array of requests and notifications, `initialize` excluded): answered with an
//!   array of the responses (JSON) or one SSE event per response, or 202 when it held no request;
//!   later versions answer a batch with 400.
//! * **Stateless (2026-07-28).** A request whose `params._meta` carries
//!   `io.modelcontextprotocol/protocolVersion`, or whose `MCP-Protocol-Version` header is
//!   2026-07-28, is served without a session (`mcp-session-id` is ignored, none is minted). It is
//!   checked in this order, each failure a 400 with a JSON-RPC error echoing the request `id`:
//!   `MCP-Protocol-Version` header missing (-32020); `_meta` protocol version missing (-32602);
//!   header and `_meta` disagree (-32020); version other than 2026-07-28 (-32022, `data.supported`
//!   and `data.requested`); `_meta` `clientCapabilities` missing (-32602); `Mcp-Method` missing,
//!   sent twice, not plain ASCII or not the body's `method` (-32020); for `tools/call`,
//!   `prompts/get` (`params.name`) and `resources/read` (`params.uri`): the body value missing
//!   (-32602), `Mcp-Name` missing, sent twice, badly encoded or, once decoded from
//!   `=?base64?…?=`, not the body value (-32020). An unknown method (`ping` and `initialize`
//!   included: `initialize` always opens a legacy session) → 404 with -32601. Results carry
//!   `resultType: "complete"` and `_meta["io.modelcontextprotocol/serverInfo"]`; list results,
//!   `resources/read` and `server/discover` also `ttlMs: 0` and `cacheScope: "public"`.
//!
//! Methods: `initialize`, `ping` (sessions), `server/discover` (stateless), `tools/list`,
//! `tools/call`, `resources/list`, `resources/read`, `prompts/list`, `prompts/get`; any other
//! → -32601. Tools: [`WEATHER_TOOL`] (`city` argument; succeeds, or `isError` without a city),
//! [`FAILING_TOOL`] (always `result.isError: true`), [`BROKEN_TOOL`] (JSON-RPC error -32603);
//! an unknown tool → -32602. Resources: [`README_URI`] and [`CAFE_URI`] (a non-ASCII URI, sent by
//! clients as a base64 `Mcp-Name`); an unknown one → -32002 in sessions, -32602 stateless.
//! Prompt: [`GREETING_PROMPT`] (optional `name` argument).
//!
//! Answers: `application/json`, or `text/event-stream` carrying each JSON-RPC response as one
//! `event: message` (preceded by a `notifications/progress` event when the request's
//! `params._meta.progressToken` is set), with `x-accel-buffering: no` and no event ids (nothing is
//! resumable, so a cut stream stays cut). SSE is chosen when forced
//! (`sse`), or when the `accept` header takes `text/event-stream` but not JSON; otherwise JSON.
//! An `accept` that takes neither → 406. HTTP-level rejections (400, 404, 405, 406, 413) are
//! always JSON. An `origin` header that is not localhost / 127.0.0.1 / [::1] → 403. Bodies up to
//! [`MAX_BODY`] are read whole; larger → 413.
//!
//! Switches (`x-mock-behavior`, comma-separated; unknown ones ignored, a bad value → 400):
//!
//! | switch | effect |
//! |---|---|
//! | `sse` | answer requests as SSE whatever `accept` says |
//! | `json` | answer requests as JSON whatever `accept` says |
//! | `sse-cut` | SSE, but close the connection (no terminating chunk) after an SSE comment and any progress event, before the response event |
//! | `slow` | 200 ms between SSE writes (instead of 3 ms) |
//! | `mcp-version=V` | `initialize` negotiates V (2025-03-26, 2025-06-18 or 2025-11-25) whatever the client asked |
//! | `status=NNN` | answer a POST with HTTP NNN and a JSON-RPC error (-32603) echoing the request `id` |
//! | `get-stream=MS` | a session's GET opens an SSE stream (one comment) held MS ms (capped at 60 s), instead of 405 |
//! | `encoding=gzip\|deflate\|br\|zstd\|identity` | compress the answer (default: never compressed) |
//! | `x-mock-delay-ms: N` (header) | sleep N ms (capped at 60 s) before answering |

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::apis::{split_target, Answer};
use super::codec::{base64_decode, XorShift};
use super::encoding::Coding;
use super::http::{Body, Pacing, Reply, DEFAULT_PAUSE};
use super::{lock, ReceivedRequest};

/// The session-generation protocol versions, oldest first.
pub const LEGACY_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
/// What `initialize` negotiates when the client asks for a version the server does not speak.
pub const LATEST_LEGACY_VERSION: &str = "2025-11-25";
/// The stateless protocol version.
pub const MODERN_VERSION: &str = "2026-07-28";
/// The largest request body read (and kept in [`ReceivedRequest::body`]) on the MCP endpoint.
pub const MAX_BODY: usize = 16 << 20;
/// Sessions kept at once; the oldest is forgotten beyond that.
pub const MAX_SESSIONS: usize = 4096;
/// `serverInfo.name`.
pub const SERVER_NAME: &str = "mock-mcp-server";
/// `serverInfo.version`.
pub const SERVER_VERSION: &str = "1.0.0";

/// The tool that succeeds: `get_weather {city}`.
pub const WEATHER_TOOL: &str = "get_weather";
/// The tool whose result is `isError: true`.
pub const FAILING_TOOL: &str = "failing_tool";
/// The tool that fails with a JSON-RPC error ([`INTERNAL_ERROR`]).
pub const BROKEN_TOOL: &str = "broken_tool";
/// A readable resource.
pub const README_URI: &str = "file:///notes/readme.md";
/// A readable resource whose URI is not ASCII.
pub const CAFE_URI: &str = "file:///notes/café.md";
/// The prompt.
pub const GREETING_PROMPT: &str = "greeting";

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Resource not found, in the session generation (2026-07-28 uses [`INVALID_PARAMS`]).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
pub const HEADER_MISMATCH: i64 = -32020;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";
const MAX_DELAY_MS: u64 = 60_000;
const SLOW_PAUSE: Duration = Duration::from_millis(200);

/// Whether a request target is on the MCP endpoint: `/mcp`, or a path ending in `/mcp`.
pub fn is_endpoint(target: &str) -> bool {
    let (path, _) = split_target(target);
    path == "/mcp" || path.ends_with("/mcp")
}

/// The open sessions: id → negotiated protocol version.
pub struct Sessions {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    versions: HashMap<String, &'static str>,
    order: VecDeque<String>,
    rng: Option<XorShift>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new()
    }
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions {
            table: Mutex::new(Table::default()),
        }
    }

    fn create(&self, version: &'static str) -> String {
        let mut t = lock(&self.table);
        let id = random_id(&mut t.rng);
        while t.order.len() >= MAX_SESSIONS {
            match t.order.pop_front() {
                Some(old) => {
                    t.versions.remove(&old);
                }
                None => break,
            }
        }
        t.versions.insert(id.clone(), version);
        t.order.push_back(id.clone());
        id
    }

    /// The negotiated version of an open session.
    pub fn version(&self, id: &str) -> Option<&'static str> {
        lock(&self.table).versions.get(id).copied()
    }

    fn end(&self, id: &str) -> bool {
        let mut t = lock(&self.table);
        let found = t.versions.remove(id).is_some();
        if found {
            t.order.retain(|s| s != id);
        }
        found
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        lock(&self.table).versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 128 random bits as 32 hex digits: from the system's random source, else a generator seeded
/// from the clock.
fn random_id(rng: &mut Option<XorShift>) -> String {
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !from_os {
        let gen = rng.get_or_insert_with(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x5EED);
            XorShift::new(nanos ^ u64::from(std::process::id()).rotate_left(32))
        });
        let a = gen.next_u64().to_le_bytes();
        let b = gen.next_u64().to_le_bytes();
        for (dst, src) in bytes.iter_mut().zip(a.iter().chain(b.iter())) {
            *dst = *src;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Default)]
struct Behavior {
    sse: bool,
    json: bool,
    cut: bool,
    slow: bool,
    version: Option<&'static str>,
    status: Option<u16>,
    get_stream: Option<Duration>,
    encoding: Option<Coding>,
    delay: Option<Duration>,
}

fn parse_ms(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|ms| Duration::from_millis(ms.min(MAX_DELAY_MS)))
}

fn parse_behavior(req: &ReceivedRequest) -> Result<Behavior, String> {
    let mut b = Behavior::default();
    for token in req.header_all("x-mock-behavior").into_iter().flat_map(|v| v.split(',')) {
        let token = token.trim().to_ascii_lowercase();
        let bad = || format!("invalid x-mock-behavior switch {token:?}");
        match token.as_str() {
            "sse" => b.sse = true,
            "json" => b.json = true,
            "sse-cut" => {
                b.sse = true;
                b.cut = true;
            }
            "slow" => b.slow = true,
            other => {
                if let Some(v) = other.strip_prefix("mcp-version=") {
                    b.version = Some(
                        LEGACY_VERSIONS
                            .iter()
                            .copied()
                            .find(|l| *l == v.trim())
                            .ok_or_else(bad)?,
                    );
                } else if let Some(code) = other.strip_prefix("status=") {
                    match code.trim().parse::<u16>() {
                        Ok(c) if (200..=599).contains(&c) => b.status = Some(c),
                        _ => return Err(bad()),
                    }
                } else if let Some(ms) = other.strip_prefix("get-stream=") {
                    b.get_stream = Some(parse_ms(ms).ok_or_else(bad)?);
                } else if let Some(name) = other.strip_prefix("encoding=") {
                    b.encoding = Some(Coding::parse(name).ok_or_else(bad)?);
                }
            }
        }
    }
    if let Some(delay) = req.header("x-mock-delay-ms") {
        b.delay = Some(parse_ms(delay).ok_or_else(|| format!("invalid x-mock-delay-ms {delay:?}"))?);
    }
    Ok(b)
}

/// A JSON-RPC error to send.
#[derive(Debug, Clone, PartialEq)]
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

fn rpc_error(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
        data: None,
    }
}

fn error_message(id: &Value, e: &RpcError) -> Value {
    let mut error = json!({"code": e.code, "message": e.message});
    if let (Some(data), Some(obj)) = (&e.data, error.as_object_mut()) {
        obj.insert("data".into(), data.clone());
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

fn result_message(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An HTTP-level rejection: `status` with a JSON-RPC error body.
fn reject(status: u16, id: &Value, e: RpcError) -> Outcome {
    Outcome::Raw(Reply::json(status, &error_message(id, &e)))
}

/// What a POST, GET or DELETE comes to, before it is written as JSON or SSE.
enum Outcome {
    /// 202, no body.
    Accepted,
    /// HTTP 200 answering the request(s).
    Messages {
        /// The JSON-RPC responses, in request order.
        responses: Vec<Value>,
        /// Notifications sent before the responses (SSE only).
        notes: Vec<Value>,
        /// The body was a batch: JSON answers are an array.
        batch: bool,
        /// A new session (the `mcp-session-id` answer header).
        session: Option<String>,
    },
    /// Any other answer (a rejection, a GET stream, a DELETE), written as it is.
    Raw(Reply),
}

impl Outcome {
    fn one(response: Value, notes: Vec<Value>) -> Outcome {
        Outcome::Messages {
            responses: vec![response],
            notes,
            batch: false,
            session: None,
        }
    }
}

/// One JSON-RPC message, classified.
enum Message<'a> {
    Request {
        id: &'a Value,
        method: &'a str,
        params: &'a Value,
    },
    Notification,
    Response,
    Invalid(String),
}

static NO_PARAMS: Value = Value::Null;

fn classify(v: &Value) -> Message<'_> {
    let Some(obj) = v.as_object() else {
        return Message::Invalid("a JSON-RPC message must be an object".into());
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Message::Invalid("\"jsonrpc\" must be \"2.0\"".into());
    }
    let params = obj.get("params").unwrap_or(&NO_PARAMS);
    if !(params.is_null() || params.is_object()) {
        return Message::Invalid("\"params\" must be an object".into());
    }
    match (obj.get("method"), obj.get("id")) {
        (Some(Value::String(method)), Some(id)) if valid_id(id) => Message::Request { id, method, params },
        (Some(Value::String(_)), Some(_)) => Message::Invalid("\"id\" must be a string or an integer".into()),
        (Some(Value::String(_)), None) => Message::Notification,
        (Some(_), _) => Message::Invalid("\"method\" must be a string".into()),
        (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => Message::Response,
        (None, _) => Message::Invalid("not a request, notification or response".into()),
    }
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// The request id to echo in a rejection (`null` when there is none).
fn id_of(v: &Value) -> Value {
    v.get("id").filter(|id| valid_id(id)).cloned().unwrap_or(Value::Null)
}

/// The request's `params._meta` protocol version.
fn meta_version(params: &Value) -> Option<&str> {
    params
        .pointer("/_meta")
        .and_then(|m| m.get(PROTOCOL_VERSION_KEY))
        .and_then(Value::as_str)
}

/// Which generation a request is served under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    /// A session with this negotiated version.
    Session(&'static str),
    Stateless,
}

/// Builds the answer for one fully received request on the MCP endpoint.
pub fn respond(req: &ReceivedRequest, sessions: &Sessions) -> Answer {
    let behavior = match parse_behavior(req) {
        Ok(b) => b,
        Err(msg) => {
            return Answer {
                reply: Reply::json(400, &error_message(&Value::Null, &rpc_error(INVALID_REQUEST, msg))),
                pacing: Pacing::PLAIN,
                delay: None,
            }
        }
    };
    let outcome = if !origin_allowed(req) {
        reject(
            403,
            &Value::Null,
            rpc_error(INVALID_REQUEST, "Forbidden: origin not allowed"),
        )
    } else {
        match req.method.as_str() {
            "POST" => post(req, sessions, &behavior),
            "GET" => get(req, sessions, &behavior),
            "DELETE" => delete(req, sessions),
            _ => Outcome::Raw(
                Reply::json(
                    405,
                    &error_message(&Value::Null, &rpc_error(INVALID_REQUEST, "Method not allowed")),
                )
                .header("allow", "GET, POST, DELETE"),
            ),
        }
    };
    render(req, &behavior, outcome)
}

/// No `origin`, or one naming this machine (DNS-rebinding protection, as the spec asks).
fn origin_allowed(req: &ReceivedRequest) -> bool {
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().map(|h| format!("[{h}]")).unwrap_or_default()
    } else {
        rest.split([':', '/']).next().unwrap_or("").to_ascii_lowercase()
    };
    matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
}

fn accepts(req: &ReceivedRequest) -> (bool, bool) {
    let accept = req.header_all("accept").join(",").to_ascii_lowercase();
    if accept.trim().is_empty() {
        return (true, false);
    }
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    let any = types.contains(&"*/*");
    let json = any || types.iter().any(|t| *t == "application/json" || *t == "application/*");
    let sse = any || types.iter().any(|t| *t == "text/event-stream" || *t == "text/*");
    (json, sse)
}

fn post(req: &ReceivedRequest, sessions: &Sessions, b: &Behavior) -> Outcome {
    let (takes_json, takes_sse) = accepts(req);
    if !(takes_json || takes_sse) {
        return reject(
            406,
            &Value::Null,
            rpc_error(
                INVALID_REQUEST,
                "Not Acceptable: accept must list application/json and text/event-stream",
            ),
        );
    }
    if req.body_len > MAX_BODY || !req.body_complete || req.body.len() != req.body_len {
        return reject(413, &Value::Null, rpc_error(INVALID_REQUEST, "Request body too large"));
    }
    if req.body.is_empty() {
        return reject(400, &Value::Null, rpc_error(PARSE_ERROR, "Parse error: empty body"));
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => return reject(400, &Value::Null, rpc_error(PARSE_ERROR, format!("Parse error: {e}"))),
    };
    if let Some(status) = b.status {
        return reject(
            status,
            &id_of(&body),
            rpc_error(INTERNAL_ERROR, format!("mock error (status {status})")),
        );
    }
    match &body {
        Value::Array(items) => batch(req, sessions, items),
        _ => single(req, sessions, b, &body),
    }
}

fn single(req: &ReceivedRequest, sessions: &Sessions, b: &Behavior, body: &Value) -> Outcome {
    let message = classify(body);
    if let Message::Invalid(why) = &message {
        return reject(
            400,
            &id_of(body),
            rpc_error(INVALID_REQUEST, format!("Invalid request: {why}")),
        );
    }
    if let Message::Request {
        id,
        method: "initialize",
        params,
    } = message
    {
        return initialize(sessions, b, id, params);
    }
    let params = body.get("params").unwrap_or(&NO_PARAMS);
    if meta_version(params).is_some() || req.header("mcp-protocol-version") == Some(MODERN_VERSION) {
        return stateless(req, message);
    }
    let version = match session_of(req, sessions, body) {
        Ok(v) => v,
        Err(rejection) => return rejection,
    };
    match message {
        Message::Request { id, method, params } => {
            let era = Era::Session(version);
            let response = match handle(era, method, params) {
                Ok(result) => result_message(id, result),
                Err(e) => error_message(id, &e),
            };
            Outcome::one(response, progress(params))
        }
        _ => Outcome::Accepted,
    }
}

/// The session a request belongs to, and its negotiated version; or the rejection.
fn session_of(req: &ReceivedRequest, sessions: &Sessions, body: &Value) -> Result<&'static str, Outcome> {
    let id = id_of(body);
    let ids = req.header_all("mcp-session-id");
    let Some(&sid) = ids.first() else {
        return Err(reject(
            400,
            &id,
            rpc_error(
                INVALID_REQUEST,
                "Bad Request: missing Mcp-Session-Id header (send initialize first)",
            ),
        ));
    };
    if ids.iter().any(|other| *other != sid) {
        return Err(reject(
            400,
            &id,
            rpc_error(INVALID_REQUEST, "Bad Request: Mcp-Session-Id sent more than once"),
        ));
    }
    let Some(version) = sessions.version(sid) else {
        return Err(reject(404, &id, rpc_error(INVALID_REQUEST, "Session not found")));
    };
    match req.header("mcp-protocol-version") {
        None if version != "2025-03-26" => Err(reject(
            400,
            &id,
            rpc_error(
                INVALID_REQUEST,
                format!("Bad Request: missing MCP-Protocol-Version header (this session negotiated {version})"),
            ),
        )),
        Some(sent) if sent != version => Err(reject(
            400,
            &id,
            rpc_error(
                INVALID_REQUEST,
                format!("Bad Request: MCP-Protocol-Version {sent} is not this session's version {version}"),
            ),
        )),
        _ => Ok(version),
    }
}

fn initialize(sessions: &Sessions, b: &Behavior, id: &Value, params: &Value) -> Outcome {
    let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
        return Outcome::one(
            error_message(
                id,
                &rpc_error(INVALID_PARAMS, "Invalid params: missing protocolVersion"),
            ),
            Vec::new(),
        );
    };
    let version = b
        .version
        .or_else(|| LEGACY_VERSIONS.iter().copied().find(|v| *v == requested))
        .unwrap_or(LATEST_LEGACY_VERSION);
    let session = sessions.create(version);
    let result = json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": "A mock MCP server for tests: get_weather answers, failing_tool and broken_tool fail.",
    });
    Outcome::Messages {
        responses: vec![result_message(id, result)],
        notes: Vec::new(),
        batch: false,
        session: Some(session),
    }
}

fn capabilities() -> Value {
    json!({
        "tools": {"listChanged": false},
        "resources": {"subscribe": false, "listChanged": false},
        "prompts": {"listChanged": false},
    })
}

fn server_info() -> Value {
    json!({"name": SERVER_NAME, "version": SERVER_VERSION})
}

/// A 2026-07-28 request: validated against its headers, then served without a session.
fn stateless(req: &ReceivedRequest, message: Message<'_>) -> Outcome {
    let Message::Request { id, method, params } = message else {
        return match message {
            Message::Response => reject(
                400,
                &Value::Null,
                rpc_error(
                    INVALID_REQUEST,
                    "Invalid request: clients send no responses in 2026-07-28",
                ),
            ),
            _ => Outcome::Accepted,
        };
    };
    if let Err(e) = validate_stateless(req, method, params) {
        return reject(400, id, e);
    }
    match handle(Era::Stateless, method, params) {
        Ok(result) => Outcome::one(result_message(id, result), progress(params)),
        Err(e) if e.code == METHOD_NOT_FOUND => reject(404, id, e),
        Err(e) => Outcome::one(error_message(id, &e), progress(params)),
    }
}

fn header_mismatch(message: String) -> RpcError {
    rpc_error(HEADER_MISMATCH, format!("Header mismatch: {message}"))
}

/// The value of a header that must be sent exactly once, as plain visible ASCII.
fn single_header<'a>(req: &'a ReceivedRequest, name: &str) -> Result<&'a str, RpcError> {
    match req.header_all(name).as_slice() {
        [] => Err(header_mismatch(format!("missing {name} header"))),
        [one] if one.chars().all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic()) => Ok(one),
        [_] => Err(header_mismatch(format!(
            "{name} header holds characters a header may not"
        ))),
        _ => Err(header_mismatch(format!("{name} header sent more than once"))),
    }
}

/// Decodes an `Mcp-Name` (or `Mcp-Param-*`) value: plain, or `=?base64?…?=` over UTF-8.
pub fn decode_header_value(value: &str) -> Option<String> {
    match value.strip_prefix("=?base64?").and_then(|v| v.strip_suffix("?=")) {
        Some(encoded) => base64_decode(encoded).and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(value.to_string()),
    }
}

/// Encodes a value for `Mcp-Name` as clients must: plain when it is visible ASCII without
/// surrounding spaces and does not look encoded, else `=?base64?…?=`.
pub fn encode_header_value(value: &str) -> String {
    let plain = value.chars().all(|c| c == ' ' || c.is_ascii_graphic())
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain {
        value.to_string()
    } else {
        format!("=?base64?{}?=", super::codec::base64_encode(value.as_bytes()))
    }
}

/// The body field `Mcp-Name` mirrors for a method.
fn name_key(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

fn validate_stateless(req: &ReceivedRequest, method: &str, params: &Value) -> Result<(), RpcError> {
    let header_version = single_header(req, "mcp-protocol-version")?;
    let Some(body_version) = meta_version(params) else {
        return Err(rpc_error(
            INVALID_PARAMS,
            format!("Invalid params: missing _meta[\"{PROTOCOL_VERSION_KEY}\"]"),
        ));
    };
    if header_version != body_version {
        return Err(header_mismatch(format!(
            "MCP-Protocol-Version header value '{header_version}' does not match body value '{body_version}'"
        )));
    }
    if body_version != MODERN_VERSION {
        let mut supported = vec![MODERN_VERSION];
        supported.extend(LEGACY_VERSIONS.iter().rev());
        return Err(RpcError {
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: "Unsupported protocol version".into(),
            data: Some(json!({"supported": supported, "requested": body_version})),
        });
    }
    if !params
        .pointer("/_meta")
        .and_then(|m| m.get(CLIENT_CAPABILITIES_KEY))
        .is_some_and(Value::is_object)
    {
        return Err(rpc_error(
            INVALID_PARAMS,
            format!("Invalid params: missing _meta[\"{CLIENT_CAPABILITIES_KEY}\"]"),
        ));
    }
    let header_method = single_header(req, "mcp-method")?;
    if header_method != method {
        return Err(header_mismatch(format!(
            "Mcp-Method header value '{header_method}' does not match body value '{method}'"
        )));
    }
    if let Some(key) = name_key(method) {
        let Some(body_name) = params.get(key).and_then(Value::as_str) else {
            return Err(rpc_error(
                INVALID_PARAMS,
                format!("Invalid params: missing params.{key}"),
            ));
        };
        let raw = single_header(req, "mcp-name")?;
        let Some(header_name) = decode_header_value(raw) else {
            return Err(header_mismatch(format!(
                "Mcp-Name header value '{raw}' is not valid base64 UTF-8"
            )));
        };
        if header_name != body_name {
            return Err(header_mismatch(format!(
                "Mcp-Name header value '{header_name}' does not match body value '{body_name}'"
            )));
        }
    }
    Ok(())
}

/// A batch (2025-03-26 sessions only).
fn batch(req: &ReceivedRequest, sessions: &Sessions, items: &[Value]) -> Outcome {
    if items.is_empty() {
        return reject(
            400,
            &Value::Null,
            rpc_error(INVALID_REQUEST, "Invalid request: empty batch"),
        );
    }
    let version = match session_of(req, sessions, &Value::Null) {
        Ok(v) => v,
        Err(rejection) => return rejection,
    };
    if version != "2025-03-26" {
        return reject(
            400,
            &Value::Null,
            rpc_error(
                INVALID_REQUEST,
                format!("Invalid request: JSON-RPC batches are not accepted in protocol version {version}"),
            ),
        );
    }
    let mut responses = Vec::new();
    let mut notes = Vec::new();
    for item in items {
        match classify(item) {
            Message::Invalid(why) => responses.push(error_message(
                &id_of(item),
                &rpc_error(INVALID_REQUEST, format!("Invalid request: {why}")),
            )),
            Message::Request {
                id,
                method: "initialize",
                ..
            } => responses.push(error_message(
                id,
                &rpc_error(
                    INVALID_REQUEST,
                    "Invalid request: initialize must not be part of a batch",
                ),
            )),
            Message::Request { id, method, params } => {
                notes.extend(progress(params));
                responses.push(match handle(Era::Session(version), method, params) {
                    Ok(result) => result_message(id, result),
                    Err(e) => error_message(id, &e),
                });
            }
            Message::Notification | Message::Response => {}
        }
    }
    if responses.is_empty() {
        return Outcome::Accepted;
    }
    Outcome::Messages {
        responses,
        notes,
        batch: true,
        session: None,
    }
}

/// The `notifications/progress` a request asked for with `_meta.progressToken`.
fn progress(params: &Value) -> Vec<Value> {
    params
        .pointer("/_meta/progressToken")
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
        .map(|token| {
            vec![json!({
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {"progressToken": token, "progress": 1, "total": 1, "message": "working"},
            })]
        })
        .unwrap_or_default()
}

fn get(req: &ReceivedRequest, sessions: &Sessions, b: &Behavior) -> Outcome {
    if let Err(rejection) = session_of(req, sessions, &Value::Null) {
        return rejection;
    }
    match b.get_stream {
        Some(_) => Outcome::Raw(Reply {
            status: 200,
            headers: sse_headers(),
            body: Body::Stream(vec![b": stream open\n\n".to_vec()]),
        }),
        None => Outcome::Raw(
            Reply::json(
                405,
                &error_message(
                    &Value::Null,
                    &rpc_error(INVALID_REQUEST, "Method not allowed: this server offers no GET stream"),
                ),
            )
            .header("allow", "POST, DELETE"),
        ),
    }
}

fn delete(req: &ReceivedRequest, sessions: &Sessions) -> Outcome {
    if let Err(rejection) = session_of(req, sessions, &Value::Null) {
        return rejection;
    }
    if let Some(sid) = req.header("mcp-session-id") {
        sessions.end(sid);
    }
    Outcome::Raw(Reply {
        status: 200,
        headers: Vec::new(),
        body: Body::Full(Vec::new()),
    })
}

fn sse_headers() -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "text/event-stream".into()),
        ("cache-control".into(), "no-cache".into()),
        ("x-accel-buffering".into(), "no".into()),
    ]
}

fn sse_event(message: &Value) -> Vec<u8> {
    format!("event: message\ndata: {message}\n\n").into_bytes()
}

fn render(req: &ReceivedRequest, b: &Behavior, outcome: Outcome) -> Answer {
    let mut pacing = Pacing {
        pause: if b.slow { SLOW_PAUSE } else { DEFAULT_PAUSE },
        encoding: b.encoding.unwrap_or(Coding::Identity),
        ..Pacing::PLAIN
    };
    let reply = match outcome {
        Outcome::Accepted => Reply {
            status: 202,
            headers: Vec::new(),
            body: Body::Full(Vec::new()),
        },
        Outcome::Raw(reply) => {
            if req.method == "GET" && reply.status == 200 {
                pacing.linger = b.get_stream;
            }
            reply
        }
        Outcome::Messages {
            responses,
            notes,
            batch,
            session,
        } => {
            let (takes_json, takes_sse) = accepts(req);
            let sse = b.sse || (!b.json && takes_sse && !takes_json);
            let mut reply = if sse {
                let mut events: Vec<Vec<u8>> = Vec::new();
                if b.cut {
                    events.push(b": working\n\n".to_vec());
                }
                events.extend(notes.iter().map(sse_event));
                if b.cut {
                    pacing.cut = true;
                } else {
                    events.extend(responses.iter().map(sse_event));
                }
                Reply {
                    status: 200,
                    headers: sse_headers(),
                    body: Body::Stream(events),
                }
            } else if batch {
                Reply::json(200, &Value::Array(responses))
            } else {
                Reply::json(200, responses.first().unwrap_or(&Value::Null))
            };
            if let Some(session) = session {
                reply = reply.header("mcp-session-id", session);
            }
            reply
        }
    };
    Answer {
        reply,
        pacing,
        delay: b.delay,
    }
}

// ---------------------------------------------------------------- methods

/// Runs one request. Stateless results get `resultType`, `serverInfo` and cache hints.
fn handle(era: Era, method: &str, params: &Value) -> Result<Value, RpcError> {
    let stateless = era == Era::Stateless;
    let (result, cacheable) = match method {
        "ping" if !stateless => (json!({}), false),
        "server/discover" if stateless => {
            let mut supported = vec![MODERN_VERSION];
            supported.extend(LEGACY_VERSIONS.iter().rev());
            (
                json!({
                    "supportedVersions": supported,
                    "capabilities": capabilities(),
                    "instructions": "A mock MCP server for tests.",
                }),
                true,
            )
        }
        "tools/list" => (json!({"tools": tools()}), true),
        "tools/call" => (call_tool(params)?, false),
        "resources/list" => (json!({"resources": resources()}), true),
        "resources/read" => (read_resource(era, params)?, true),
        "prompts/list" => (json!({"prompts": prompts()}), true),
        "prompts/get" => (get_prompt(params)?, false),
        _ => return Err(rpc_error(METHOD_NOT_FOUND, format!("Method not found: {method}"))),
    };
    if !stateless {
        return Ok(result);
    }
    let mut result = result;
    if let Some(obj) = result.as_object_mut() {
        obj.insert("resultType".into(), json!("complete"));
        let mut meta = Map::new();
        meta.insert(SERVER_INFO_KEY.into(), server_info());
        obj.insert("_meta".into(), Value::Object(meta));
        if cacheable {
            obj.insert("ttlMs".into(), json!(0));
            obj.insert("cacheScope".into(), json!("public"));
        }
    }
    Ok(result)
}

fn tools() -> Value {
    json!([
        {
            "name": WEATHER_TOOL,
            "title": "Weather",
            "description": "Current weather for a city.",
            "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
        {
            "name": FAILING_TOOL,
            "description": "Always fails: its result has isError true.",
            "inputSchema": {"type": "object", "properties": {}},
        },
        {
            "name": BROKEN_TOOL,
            "description": "Always fails with a JSON-RPC internal error.",
            "inputSchema": {"type": "object", "properties": {}},
        },
    ])
}

fn text_result(text: &str, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

fn call_tool(params: &Value) -> Result<Value, RpcError> {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Err(rpc_error(INVALID_PARAMS, "Invalid params: missing params.name"));
    };
    match name {
        WEATHER_TOOL => Ok(match params.pointer("/arguments/city").and_then(Value::as_str) {
            Some(city) => text_result(&format!("Weather in {city}: 18°C, partly cloudy."), false),
            None => text_result("Missing required argument: city", true),
        }),
        FAILING_TOOL => Ok(text_result("The weather service is unavailable.", true)),
        BROKEN_TOOL => Err(rpc_error(INTERNAL_ERROR, "Internal error: broken_tool crashed")),
        other => Err(rpc_error(INVALID_PARAMS, format!("Unknown tool: {other}"))),
    }
}

fn resources() -> Value {
    json!([
        {"uri": README_URI, "name": "readme.md", "mimeType": "text/markdown"},
        {"uri": CAFE_URI, "name": "café.md", "mimeType": "text/markdown"},
    ])
}

fn read_resource(era: Era, params: &Value) -> Result<Value, RpcError> {
    let Some(uri) = params.get("uri").and_then(Value::as_str) else {
        return Err(rpc_error(INVALID_PARAMS, "Invalid params: missing params.uri"));
    };
    let text = match uri {
        README_URI => "# Notes\n\nThe mock MCP server's readme.\n",
        CAFE_URI => "# Café\n\nOpen from 8 to 18.\n",
        _ => {
            let code = if era == Era::Stateless {
                INVALID_PARAMS
            } else {
                RESOURCE_NOT_FOUND
            };
            return Err(RpcError {
                code,
                message: format!("Resource not found: {uri}"),
                data: Some(json!({"uri": uri})),
            });
        }
    };
    Ok(json!({"contents": [{"uri": uri, "mimeType": "text/markdown", "text": text}]}))
}

fn prompts() -> Value {
    json!([{
        "name": GREETING_PROMPT,
        "description": "Greets someone.",
        "arguments": [{"name": "name", "description": "Who to greet", "required": false}],
    }])
}

fn get_prompt(params: &Value) -> Result<Value, RpcError> {
    match params.get("name").and_then(Value::as_str) {
        Some(GREETING_PROMPT) => {
            let who = params
                .pointer("/arguments/name")
                .and_then(Value::as_str)
                .unwrap_or("there");
            Ok(json!({
                "description": "Greets someone.",
                "messages": [{"role": "user", "content": {"type": "text", "text": format!("Say hello to {who}.")}}],
            }))
        }
        Some(other) => Err(rpc_error(INVALID_PARAMS, format!("Unknown prompt: {other}"))),
        None => Err(rpc_error(INVALID_PARAMS, "Invalid params: missing params.name")),
    }
}

#[cfg(test)]
mod tests;
