//! One access-log line and the attribution record it carries.
//!
//! Every key name the CLI reads is written once, here, so that they can later be taken from
//! constants exported by the core crate. A line's `record` (the `google.protobuf.Struct` the
//! filter stores as `wasm.ai_attribution`, logged with `%FILTER_STATE(...:TYPED)%`) is the source
//! of truth; the flat scalar keys (`decision`, `user`, `input_tokens`, ...) are read only when the
//! line has no `record` or a null one.

use serde::de::{Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Keys of the structured record (`record.value`).
pub mod keys {
    pub const EVENT: &str = "ai_attribution.event";
    pub const DECISION: &str = "ai_attribution.decision";
    pub const REASON: &str = "ai_attribution.reason";
    pub const CORRELATION_ID: &str = "ai_attribution.correlation_id";
    pub const REQUEST_ID: &str = "ai_attribution.request_id";
    pub const SOURCES: &str = "ai_attribution.sources";
    pub const TRACE_ID: &str = "ai_attribution.trace_id";
    pub const VERSION: &str = "ai_attribution.version";
    pub const FILTER_VERSION: &str = "ai_attribution.filter_version";
    pub const STREAM: &str = "ai_attribution.stream";
    pub const USAGE_STATUS: &str = "ai_attribution.usage_status";
    pub const USAGE_REASON: &str = "ai_attribution.usage_reason";
    pub const RESPONSE_END: &str = "ai_attribution.response_end";
    pub const COST_USD: &str = "ai_attribution.cost_usd";
    pub const REQUESTED_TOOLS: &str = "ai_attribution.requested_tools";
    pub const REQUESTED_TOOL_CALL_IDS: &str = "ai_attribution.requested_tool_call_ids";
    pub const MCP_HEADER_MISMATCH: &str = "ai_attribution.mcp_header_mismatch";
    pub const MCP_SESSION_MISMATCH: &str = "ai_attribution.mcp_session_mismatch";
    pub const QUOTA_OUTCOME: &str = "ai_attribution.quota.outcome";
    pub const QUOTA_BUDGETS: &str = "ai_attribution.quota.budgets";
    pub const QUOTA_OVER: &str = "ai_attribution.quota.over";
    pub const QUOTA_REPORTED: &str = "ai_attribution.quota.reported";
    /// The dated exception to `require` or a budget that let the call through.
    pub const EXCEPTION: &str = "ai_attribution.exception";
    /// The prefix of every other dimension: `ai_attribution.<dim>`.
    pub const DIMENSION_PREFIX: &str = "ai_attribution.";
    /// The `user` dimension.
    pub const USER: &str = "user.id";
    /// The pseudonymised `user` dimension (`privacy.pseudonymise`), grouped as `user_hash`.
    pub const USER_HASH: &str = "user.hash";
    /// The `session` dimension.
    pub const SESSION: &str = "session.id";
    pub const PROVIDER: &str = "gen_ai.provider.name";
    pub const OPERATION: &str = "gen_ai.operation.name";
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    pub const RESPONSE_ID: &str = "gen_ai.response.id";
    pub const HTTP_METHOD: &str = "http.request.method";
    pub const INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    pub const OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    pub const CACHED_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
    pub const REASONING_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
    pub const MCP_METHOD: &str = "mcp.method.name";
    pub const MCP_SESSION: &str = "mcp.session.id";
    pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
    pub const PROMPT_NAME: &str = "gen_ai.prompt.name";
    pub const RESOURCE_URI: &str = "mcp.resource.uri";
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    pub const JSONRPC_ID: &str = "jsonrpc.request.id";
    pub const ERROR_TYPE: &str = "error.type";
    pub const RPC_STATUS: &str = "rpc.response.status_code";

    /// `ai_attribution.*` keys that are not dimensions.
    pub const NOT_DIMENSIONS: [&str; 23] = [
        EVENT,
        DECISION,
        REASON,
        CORRELATION_ID,
        REQUEST_ID,
        SOURCES,
        TRACE_ID,
        VERSION,
        FILTER_VERSION,
        STREAM,
        USAGE_STATUS,
        USAGE_REASON,
        RESPONSE_END,
        COST_USD,
        REQUESTED_TOOLS,
        REQUESTED_TOOL_CALL_IDS,
        MCP_HEADER_MISMATCH,
        MCP_SESSION_MISMATCH,
        QUOTA_OUTCOME,
        QUOTA_BUDGETS,
        QUOTA_OVER,
        QUOTA_REPORTED,
        EXCEPTION,
    ];
}

/// Flat scalar keys of the shipped access-log formats (`envoy/envoy.yaml`, Istio's MeshConfig).
pub mod flat {
    pub const RECORD: &str = "record";
    pub const START_TIME: &str = "start_time";
    pub const METHOD: &str = "method";
    pub const PATH: &str = "path";
    pub const STATUS: &str = "status";
    pub const DETAILS: &str = "details";
    pub const REQUEST_ID: &str = "request_id";
    pub const DURATION_MS: &str = "duration_ms";
    pub const DECISION: &str = "decision";
    pub const REASON: &str = "reason";
    pub const CORRELATION_ID: &str = "correlation_id";
    pub const SOURCES: &str = "sources";
    pub const PROVIDER: &str = "provider";
    pub const OPERATION: &str = "operation";
    pub const REQUEST_MODEL: &str = "request_model";
    pub const RESPONSE_MODEL: &str = "response_model";
    pub const RESPONSE_ID: &str = "response_id";
    pub const STREAM: &str = "stream";
    pub const INPUT_TOKENS: &str = "input_tokens";
    pub const OUTPUT_TOKENS: &str = "output_tokens";
    pub const CACHED_INPUT_TOKENS: &str = "cached_input_tokens";
    pub const REASONING_TOKENS: &str = "reasoning_tokens";
    pub const USAGE_STATUS: &str = "usage_status";
    pub const COST_USD: &str = "cost_usd";
    pub const EVENT: &str = "event";
    pub const TRACE_ID: &str = "trace_id";
    pub const USAGE_REASON: &str = "usage_reason";
    pub const RESPONSE_END: &str = "response_end";
    pub const REQUESTED_TOOLS: &str = "requested_tools";
    pub const TOOL: &str = "tool";
    pub const MCP_METHOD: &str = "mcp_method";
    pub const MCP_SESSION: &str = "mcp_session";
    pub const MCP_PROTOCOL_VERSION: &str = "mcp_protocol_version";
    pub const JSONRPC_ID: &str = "jsonrpc_id";
    pub const PROMPT: &str = "prompt";
    pub const RESOURCE_URI: &str = "resource_uri";
    pub const ERROR_TYPE: &str = "error_type";
    pub const RPC_STATUS: &str = "rpc_status";
    pub const MCP_HEADER_MISMATCH: &str = "mcp_header_mismatch";
    pub const MCP_SESSION_MISMATCH: &str = "mcp_session_mismatch";
    pub const QUOTA_OUTCOME: &str = "quota_outcome";
    pub const EXCEPTION: &str = "exception";
    /// Top-level keys that are request fields, never dimensions (with the names other common
    /// Envoy and Istio JSON formats use for them).
    pub const NOT_DIMENSIONS: [&str; 21] = [
        RECORD,
        START_TIME,
        METHOD,
        PATH,
        STATUS,
        DETAILS,
        REQUEST_ID,
        DURATION_MS,
        "flags",
        "response_code",
        "response_code_details",
        "response_flags",
        "duration",
        "authority",
        "protocol",
        "upstream_host",
        "upstream_cluster",
        "user_agent",
        "x_forwarded_for",
        "bytes_received",
        "bytes_sent",
    ];
}

/// What a record is about (`ai_attribution.event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    ModelCall,
    ToolCall,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::ModelCall => "model_call",
            Event::ToolCall => "tool_call",
        }
    }
}

/// One attribution record, borrowing from the line it was read from.
#[derive(Debug, Clone, Default)]
pub struct Record<'a> {
    /// `start_time`, as logged.
    pub start_time: Option<Cow<'a, str>>,
    /// `start_time` in milliseconds since the Unix epoch, when it parsed.
    pub time_ms: Option<i64>,
    /// Envoy's `request_id` (the `x-request-id` header).
    pub envoy_request_id: Option<Cow<'a, str>>,
    pub status: Option<Cow<'a, str>>,
    pub event: Option<Cow<'a, str>>,
    pub decision: Option<Cow<'a, str>>,
    pub reason: Option<Cow<'a, str>>,
    pub correlation_id: Option<Cow<'a, str>>,
    pub request_id: Option<Cow<'a, str>>,
    pub sources: Option<Cow<'a, str>>,
    pub trace_id: Option<Cow<'a, str>>,
    /// `(dimension name, value)`: `user`, `session`, `business_unit`, ...
    pub dims: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub provider: Option<Cow<'a, str>>,
    pub operation: Option<Cow<'a, str>>,
    pub request_model: Option<Cow<'a, str>>,
    pub response_model: Option<Cow<'a, str>>,
    pub response_id: Option<Cow<'a, str>>,
    pub stream: Option<bool>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub usage_status: Option<Cow<'a, str>>,
    pub usage_reason: Option<Cow<'a, str>>,
    pub cost_usd: Option<f64>,
    pub tool: Option<Cow<'a, str>>,
    pub mcp_method: Option<Cow<'a, str>>,
    pub requested_tools: Option<Cow<'a, str>>,
    pub quota_outcome: Option<Cow<'a, str>>,
    pub exception: Option<Cow<'a, str>>,
    pub http_method: Option<Cow<'a, str>>,
    pub mcp_session: Option<Cow<'a, str>>,
    pub mcp_protocol_version: Option<Cow<'a, str>>,
    pub jsonrpc_id: Option<Cow<'a, str>>,
    pub prompt: Option<Cow<'a, str>>,
    pub resource_uri: Option<Cow<'a, str>>,
    pub error_type: Option<Cow<'a, str>>,
    pub rpc_status: Option<Cow<'a, str>>,
    pub response_end: Option<Cow<'a, str>>,
    pub mcp_header_mismatch: Option<bool>,
    pub mcp_session_mismatch: Option<bool>,
}

impl<'a> Record<'a> {
    pub fn event(&self) -> Event {
        match self.event.as_deref() {
            Some("tool_call") => Event::ToolCall,
            _ => Event::ModelCall,
        }
    }

    pub fn dim(&self, name: &str) -> Option<&str> {
        self.dims
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    }

    /// The model that was priced: the response's, else the request's.
    pub fn model(&self) -> Option<&str> {
        self.response_model
            .as_deref()
            .or(self.request_model.as_deref())
            .filter(|m| !m.is_empty())
    }

    /// The tool of a tool call.
    pub fn tool(&self) -> Option<&str> {
        self.tool.as_deref().filter(|t| !t.is_empty())
    }

    pub fn decision(&self) -> Option<&str> {
        self.decision.as_deref().filter(|d| !d.is_empty())
    }

    /// True when the call went upstream (it was not rejected).
    pub fn went_upstream(&self) -> bool {
        self.decision() != Some("rejected")
    }

    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens
            .unwrap_or(0)
            .saturating_add(self.output_tokens.unwrap_or(0))
    }

    fn set(&mut self, key: Cow<'a, str>, value: Scalar<'a>) {
        match key.as_ref() {
            keys::EVENT => self.event = value.text(),
            keys::DECISION => self.decision = value.text(),
            keys::REASON => self.reason = value.text(),
            keys::CORRELATION_ID => self.correlation_id = value.text(),
            keys::REQUEST_ID => self.request_id = value.text(),
            keys::SOURCES => self.sources = value.text(),
            keys::TRACE_ID => self.trace_id = value.text(),
            keys::STREAM => self.stream = value.boolean(),
            keys::USAGE_STATUS => self.usage_status = value.text(),
            keys::USAGE_REASON => self.usage_reason = value.text(),
            keys::COST_USD => self.cost_usd = value.number(),
            keys::REQUESTED_TOOLS => self.requested_tools = value.text(),
            keys::QUOTA_OUTCOME => self.quota_outcome = value.text(),
            keys::EXCEPTION => self.exception = value.text(),
            keys::PROVIDER => self.provider = value.text(),
            keys::OPERATION => self.operation = value.text(),
            keys::REQUEST_MODEL => self.request_model = value.text(),
            keys::RESPONSE_MODEL => self.response_model = value.text(),
            keys::RESPONSE_ID => self.response_id = value.text(),
            keys::INPUT_TOKENS => self.input_tokens = value.count(),
            keys::OUTPUT_TOKENS => self.output_tokens = value.count(),
            keys::CACHED_INPUT_TOKENS => self.cached_input_tokens = value.count(),
            keys::REASONING_TOKENS => self.reasoning_tokens = value.count(),
            keys::TOOL_NAME => self.tool = value.text(),
            keys::MCP_METHOD => self.mcp_method = value.text(),
            keys::HTTP_METHOD => self.http_method = value.text(),
            keys::MCP_SESSION => self.mcp_session = value.text(),
            keys::MCP_PROTOCOL_VERSION => self.mcp_protocol_version = value.text(),
            keys::JSONRPC_ID => self.jsonrpc_id = value.text(),
            keys::PROMPT_NAME => self.prompt = value.text(),
            keys::RESOURCE_URI => self.resource_uri = value.text(),
            keys::ERROR_TYPE => self.error_type = value.text(),
            keys::RPC_STATUS => self.rpc_status = value.text(),
            keys::RESPONSE_END => self.response_end = value.text(),
            keys::MCP_HEADER_MISMATCH => self.mcp_header_mismatch = value.boolean(),
            keys::MCP_SESSION_MISMATCH => self.mcp_session_mismatch = value.boolean(),
            keys::USER => self.push_dim(Cow::Borrowed("user"), value),
            keys::USER_HASH => self.push_dim(Cow::Borrowed("user_hash"), value),
            keys::SESSION => self.push_dim(Cow::Borrowed("session"), value),
            k if k.starts_with(keys::DIMENSION_PREFIX) && !keys::NOT_DIMENSIONS.contains(&k) => {
                let name = strip_prefix_cow(key, keys::DIMENSION_PREFIX.len());
                if !name.contains('.') {
                    self.push_dim(name, value);
                }
            }
            _ => {}
        }
    }

    fn set_flat(&mut self, key: Cow<'a, str>, value: Scalar<'a>) {
        match key.as_ref() {
            flat::DECISION => self.decision = value.text(),
            flat::REASON => self.reason = value.text(),
            flat::CORRELATION_ID => self.correlation_id = value.text(),
            flat::SOURCES => self.sources = value.text(),
            flat::PROVIDER => self.provider = value.text(),
            flat::OPERATION => self.operation = value.text(),
            flat::REQUEST_MODEL => self.request_model = value.text(),
            flat::RESPONSE_MODEL => self.response_model = value.text(),
            flat::RESPONSE_ID => self.response_id = value.text(),
            flat::STREAM => self.stream = value.boolean(),
            flat::INPUT_TOKENS => self.input_tokens = value.count(),
            flat::OUTPUT_TOKENS => self.output_tokens = value.count(),
            flat::CACHED_INPUT_TOKENS => self.cached_input_tokens = value.count(),
            flat::REASONING_TOKENS => self.reasoning_tokens = value.count(),
            flat::USAGE_STATUS => self.usage_status = value.text(),
            flat::COST_USD => self.cost_usd = value.number(),
            flat::EVENT => self.event = value.text(),
            flat::QUOTA_OUTCOME => self.quota_outcome = value.text(),
            flat::EXCEPTION => self.exception = value.text(),
            flat::TRACE_ID => self.trace_id = value.text(),
            flat::USAGE_REASON => self.usage_reason = value.text(),
            flat::RESPONSE_END => self.response_end = value.text(),
            flat::REQUESTED_TOOLS => self.requested_tools = value.text(),
            flat::TOOL => self.tool = value.text(),
            flat::MCP_METHOD => self.mcp_method = value.text(),
            flat::MCP_SESSION => self.mcp_session = value.text(),
            flat::MCP_PROTOCOL_VERSION => self.mcp_protocol_version = value.text(),
            flat::JSONRPC_ID => self.jsonrpc_id = value.text(),
            flat::PROMPT => self.prompt = value.text(),
            flat::RESOURCE_URI => self.resource_uri = value.text(),
            flat::ERROR_TYPE => self.error_type = value.text(),
            flat::RPC_STATUS => self.rpc_status = value.text(),
            flat::MCP_HEADER_MISMATCH => self.mcp_header_mismatch = value.boolean(),
            flat::MCP_SESSION_MISMATCH => self.mcp_session_mismatch = value.boolean(),
            k if flat::NOT_DIMENSIONS.contains(&k) => {}
            // Any other record field the filter writes (e.g. requested_tool_call_ids).
            k if ai_attribution::record::Field::from_scalar_name(k).is_some() => {}
            _ => self.push_dim(key, value),
        }
    }

    fn push_dim(&mut self, name: Cow<'a, str>, value: Scalar<'a>) {
        if let Some(v) = value.text() {
            if !v.is_empty() {
                self.dims.push((name, v));
            }
        }
    }
}

fn strip_prefix_cow(key: Cow<'_, str>, n: usize) -> Cow<'_, str> {
    match key {
        Cow::Borrowed(s) => Cow::Borrowed(s.get(n..).unwrap_or("")),
        Cow::Owned(s) => Cow::Owned(s.get(n..).unwrap_or("").to_string()),
    }
}

/// Why a line is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotRecord {
    /// An empty or blank line.
    Blank,
    /// Not JSON, or JSON cut short (a truncated line).
    Malformed,
    /// JSON that is not an access-log line of this format (no `record` key, no record keys).
    Foreign,
    /// An access-log line of a request that was no AI event, neither a model call nor a tool
    /// call (`record: null`).
    NotModelCall,
    /// Longer than the line limit; skipped unread.
    Oversized,
}

impl NotRecord {
    pub const ALL: [NotRecord; 5] = [
        NotRecord::Blank,
        NotRecord::Malformed,
        NotRecord::Foreign,
        NotRecord::NotModelCall,
        NotRecord::Oversized,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotRecord::Blank => "blank",
            NotRecord::Malformed => "malformed",
            NotRecord::Foreign => "foreign",
            NotRecord::NotModelCall => "not_model_call",
            NotRecord::Oversized => "oversized",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            NotRecord::Blank => "blank lines",
            NotRecord::Malformed => "not JSON or cut short",
            NotRecord::Foreign => "JSON without an attribution record",
            NotRecord::NotModelCall => "requests that were no AI event (record: null)",
            NotRecord::Oversized => "lines over the size limit, skipped",
        }
    }
}

/// Parses one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Record<'_>, NotRecord> {
    parse_line_with(line, true)
}

fn parse_line_with(line: &[u8], fast: bool) -> Result<Record<'_>, NotRecord> {
    let trimmed = trim_ascii(line);
    if trimmed.is_empty() {
        return Err(NotRecord::Blank);
    }
    if trimmed.first() != Some(&b'{') {
        // JSON arrays and scalars are well-formed but foreign; anything else is malformed.
        return match serde_json::from_slice::<IgnoredAny>(trimmed) {
            Ok(_) => Err(NotRecord::Foreign),
            Err(_) => Err(NotRecord::Malformed),
        };
    }
    // One UTF-8 check for the whole line; serde_json then reads it as text without re-checking
    // every string.
    let text = std::str::from_utf8(trimmed).map_err(|_| NotRecord::Malformed)?;
    let skimmed = if fast { skim(text) } else { None };
    let line = match skimmed {
        Some(line) => line,
        None => parse_text(text, false)?,
    };
    classify(text, line)
}

fn classify<'a>(text: &'a str, line: Line<'a>) -> Result<Record<'a>, NotRecord> {
    match line.record {
        Some(RecordField::Entries(ref e)) if !e.is_empty() => line.into_record(),
        Some(RecordField::Invalid) => Err(NotRecord::Foreign),
        // No structured record: read the flat keys, if the line has any worth reading.
        _ if line.flat_decision => parse_text(text, true)?.into_record(),
        _ => line.into_record(),
    }
}

/// The fast path for the usual line: walks the top-level keys without parsing the flat values
/// (on a line with a record they only repeat it) and hands the record and the few request fields
/// to serde_json. Anything it does not expect (an escaped key, a line cut short) returns `None`
/// and the line goes through serde_json whole. The flat values it skips are not validated: the
/// record is the source of truth.
fn skim(text: &str) -> Option<Line<'_>> {
    let b = text.as_bytes();
    let mut line = Line {
        start_time: None,
        request_id: None,
        status: None,
        record: None,
        flat: Vec::new(),
        flat_decision: false,
    };
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (ws(b, i + 1) == b.len()).then_some(line);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_start = i + 1;
        let key_end = key_start + memchr::memchr2(b'"', b'\\', b.get(key_start..)?)?;
        if b.get(key_end) != Some(&b'"') {
            return None;
        }
        let key = text.get(key_start..key_end)?;
        i = ws(b, key_end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        match key {
            flat::RECORD => {
                let mut stream = serde_json::Deserializer::from_str(text.get(i..)?).into_iter::<RecordField<'_>>();
                let record = stream.next()?.ok()?;
                i += stream.byte_offset();
                line.record = Some(record);
            }
            flat::START_TIME | "timestamp" | flat::REQUEST_ID | flat::STATUS | "response_code" => {
                let end = skip_value(b, i)?;
                let v: Scalar<'_> = serde_json::from_str(text.get(i..end)?).ok()?;
                match key {
                    flat::REQUEST_ID => line.request_id = v.text(),
                    flat::STATUS | "response_code" => line.status = v.text(),
                    _ => line.start_time = v.text(),
                }
                i = end;
            }
            _ => {
                if key == flat::DECISION || key == flat::CORRELATION_ID {
                    line.flat_decision = true;
                }
                i = skip_value(b, i)?;
            }
        }
        i = ws(b, i);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return (ws(b, i + 1) == b.len()).then_some(line),
            _ => return None,
        }
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end of the JSON string starting at `i` (its opening quote).
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b.get(k) == Some(&b'\\') {
            j = k + 2;
        } else {
            return Some(k + 1);
        }
    }
}

/// The end of the JSON value starting at `i`, found without parsing it.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while let Some(c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

fn parse_text(text: &str, collect_flat: bool) -> Result<Line<'_>, NotRecord> {
    let mut de = serde_json::Deserializer::from_str(text);
    let line = LineSeed { collect_flat }
        .deserialize(&mut de)
        .map_err(|_| NotRecord::Malformed)?;
    de.end().map_err(|_| NotRecord::Malformed)?;
    Ok(line)
}

fn trim_ascii(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

// ---- deserialization: borrowed strings, unknown values skipped ----------------------------

/// A JSON value as far as the CLI cares: scalars kept, containers skipped.
#[derive(Debug, Clone)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    Other,
}

impl<'a> Scalar<'a> {
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) => Some(s),
            Scalar::Num(n) => Some(Cow::Owned(n.to_string())),
            Scalar::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
            Scalar::Null | Scalar::Other => None,
        }
    }

    fn number(self) -> Option<f64> {
        match self {
            Scalar::Num(n) if n.is_finite() => Some(n),
            Scalar::Str(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            _ => None,
        }
    }

    /// A token count: a non-negative whole number (numbers logged as strings accepted too).
    fn count(self) -> Option<u64> {
        match self {
            Scalar::Str(s) => s.trim().parse::<u64>().ok(),
            other => other
                .number()
                .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n < 1.8e19)
                .map(|n| n as u64),
        }
    }

    fn boolean(self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(b),
            Scalar::Str(s) if s == "true" => Some(true),
            Scalar::Str(s) if s == "false" => Some(false),
            _ => None,
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A map key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The `record` value: null, `{"@type": ..., "value": {...}}`, or a bare object of record keys.
enum RecordField<'a> {
    Null,
    Entries(Vec<(Cow<'a, str>, Scalar<'a>)>),
    Invalid,
}

impl<'de> Deserialize<'de> for RecordField<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RecordField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("null or an object")
            }
            fn visit_unit<E>(self) -> Result<RecordField<'de>, E> {
                Ok(RecordField::Null)
            }
            fn visit_none<E>(self) -> Result<RecordField<'de>, E> {
                Ok(RecordField::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<RecordField<'de>, E> {
                Ok(RecordField::Invalid)
            }
            fn visit_i64<E>(self, _: i64) -> Result<RecordField<'de>, E> {
                Ok(RecordField::Invalid)
            }
            fn visit_u64<E>(self, _: u64) -> Result<RecordField<'de>, E> {
                Ok(RecordField::Invalid)
            }
            fn visit_f64<E>(self, _: f64) -> Result<RecordField<'de>, E> {
                Ok(RecordField::Invalid)
            }
            fn visit_str<E>(self, _: &str) -> Result<RecordField<'de>, E> {
                Ok(RecordField::Invalid)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RecordField<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RecordField::Invalid)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RecordField<'de>, A::Error> {
                let mut entries = Vec::with_capacity(24);
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    match k.as_ref() {
                        "@type" => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        "value" => match map.next_value::<RecordField<'de>>()? {
                            RecordField::Entries(inner) => entries.extend(inner),
                            RecordField::Null | RecordField::Invalid => {}
                        },
                        _ => {
                            let v = map.next_value::<Scalar<'de>>()?;
                            entries.push((k, v));
                        }
                    }
                }
                Ok(RecordField::Entries(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole line: the request fields, the record, and the flat keys.
struct Line<'a> {
    start_time: Option<Cow<'a, str>>,
    request_id: Option<Cow<'a, str>>,
    status: Option<Cow<'a, str>>,
    record: Option<RecordField<'a>>,
    flat: Vec<(Cow<'a, str>, Scalar<'a>)>,
    /// The line has a flat `decision` or `correlation_id` key (seen when flat keys were skipped).
    flat_decision: bool,
}

/// Reads a line; the flat keys are kept only when asked for (a second pass over the few lines
/// without a structured record), since on every other line they only repeat the record.
struct LineSeed {
    collect_flat: bool,
}

impl<'de> DeserializeSeed<'de> for LineSeed {
    type Value = Line<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Line<'de>, D::Error> {
        struct V(bool);
        impl<'de> Visitor<'de> for V {
            type Value = Line<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an access-log object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line<'de>, A::Error> {
                let mut line = Line {
                    start_time: None,
                    request_id: None,
                    status: None,
                    record: None,
                    flat: Vec::new(),
                    flat_decision: false,
                };
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    match k.as_ref() {
                        flat::RECORD => line.record = Some(map.next_value::<RecordField<'de>>()?),
                        flat::START_TIME | "timestamp" => line.start_time = map.next_value::<Scalar<'de>>()?.text(),
                        flat::REQUEST_ID => line.request_id = map.next_value::<Scalar<'de>>()?.text(),
                        flat::STATUS | "response_code" => line.status = map.next_value::<Scalar<'de>>()?.text(),
                        flat::DECISION | flat::CORRELATION_ID if !self.0 => {
                            line.flat_decision = true;
                            map.next_value::<IgnoredAny>()?;
                        }
                        _ if self.0 => {
                            let v = map.next_value::<Scalar<'de>>()?;
                            line.flat.push((k, v));
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(line)
            }
        }
        d.deserialize_map(V(self.collect_flat))
    }
}

impl<'a> Line<'a> {
    fn into_record(self) -> Result<Record<'a>, NotRecord> {
        let mut rec = Record {
            time_ms: self.start_time.as_deref().and_then(crate::time::parse_rfc3339),
            start_time: self.start_time,
            envoy_request_id: self.request_id,
            status: self.status,
            ..Record::default()
        };
        match self.record {
            Some(RecordField::Entries(entries)) if !entries.is_empty() => {
                for (k, v) in entries {
                    rec.set(k, v);
                }
                Ok(rec)
            }
            Some(RecordField::Invalid) => Err(NotRecord::Foreign),
            other => {
                // No structured record: the flat keys, if they say what was decided.
                let had_record_key = other.is_some();
                let mut had_flat_key = self.flat_decision;
                for (k, v) in self.flat {
                    if k == flat::DECISION || k == flat::CORRELATION_ID {
                        had_flat_key = true;
                    }
                    rec.set_flat(k, v);
                }
                if rec.decision().is_some() {
                    Ok(rec)
                } else if had_record_key || had_flat_key {
                    Err(NotRecord::NotModelCall)
                } else {
                    Err(NotRecord::Foreign)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_record_is_the_source_of_truth() {
        let line = br#"{"start_time":"2026-11-01T10:00:00.123Z","decision":"rejected","user":"mallory","input_tokens":"999","record":{"@type":"type.googleapis.com/google.protobuf.Struct","value":{"ai_attribution.decision":"attributed","user.id":"alice","ai_attribution.business_unit":"finance","session.id":"s1","gen_ai.request.model":"gpt-4o","gen_ai.usage.input_tokens":27,"gen_ai.usage.output_tokens":12,"ai_attribution.cost_usd":0.0001875,"ai_attribution.stream":true}}}"#;
        let r = parse_line(line).unwrap();
        assert_eq!(r.decision(), Some("attributed"));
        assert_eq!(r.dim("user"), Some("alice"));
        assert_eq!(r.dim("session"), Some("s1"));
        assert_eq!(r.dim("business_unit"), Some("finance"));
        assert_eq!(r.input_tokens, Some(27));
        assert_eq!(r.cost_usd, Some(0.0001875));
        assert_eq!(r.stream, Some(true));
        assert_eq!(r.time_ms, Some(1_793_527_200_123));
    }

    #[test]
    fn bare_record_object_and_flat_fallback() {
        let r = parse_line(
            br#"{"record":{"ai_attribution.decision":"would_reject","ai_attribution.reason":"missing:user"}}"#,
        )
        .unwrap();
        assert_eq!(r.decision(), Some("would_reject"));
        assert_eq!(r.reason.as_deref(), Some("missing:user"));
        let r = parse_line(br#"{"decision":"attributed","user":"bob","business_unit":"ops","input_tokens":"10","cost_usd":"0.5","method":"POST"}"#).unwrap();
        assert_eq!(r.dim("user"), Some("bob"));
        assert_eq!(r.dim("method"), None);
        assert_eq!(r.input_tokens, Some(10));
        assert_eq!(r.cost_usd, Some(0.5));
        let r = parse_line(br#"{"decision":"attributed","record":null,"user":"bob"}"#).unwrap();
        assert_eq!(r.dim("user"), Some("bob"));
    }

    #[test]
    fn not_records_are_classified() {
        assert_eq!(parse_line(b"").unwrap_err(), NotRecord::Blank);
        assert_eq!(parse_line(b"   \r").unwrap_err(), NotRecord::Blank);
        assert_eq!(parse_line(b"hello").unwrap_err(), NotRecord::Malformed);
        assert_eq!(
            parse_line(br#"{"record":{"ai_attribution.decision":"attr"#).unwrap_err(),
            NotRecord::Malformed
        );
        assert_eq!(parse_line(b"[1,2]").unwrap_err(), NotRecord::Foreign);
        assert_eq!(
            parse_line(br#"{"level":"info","msg":"x"}"#).unwrap_err(),
            NotRecord::Foreign
        );
        assert_eq!(parse_line(br#"{"record":5}"#).unwrap_err(), NotRecord::Foreign);
        assert_eq!(
            parse_line(br#"{"method":"GET","record":null,"decision":null}"#).unwrap_err(),
            NotRecord::NotModelCall
        );
        assert_eq!(parse_line(b"\xff\xfe{").unwrap_err(), NotRecord::Malformed);
        assert_eq!(
            parse_line(br#"{"decision":"\ud800"}"#).unwrap_err(),
            NotRecord::Malformed
        );
    }

    #[test]
    fn pseudonymised_dimensions_group_under_their_hash_names() {
        let r = parse_line(br#"{"record":{"value":{"ai_attribution.decision":"attributed","user.hash":"9f2c","ai_attribution.session_hash":"a1b2","ai_attribution.business_unit":"finance"}}}"#).unwrap();
        assert_eq!(r.dim("user_hash"), Some("9f2c"));
        assert_eq!(r.dim("session_hash"), Some("a1b2"));
        assert_eq!(r.dim("user"), None);
    }

    #[test]
    fn odd_values_never_panic() {
        let r = parse_line(br#"{"record":{"value":{"ai_attribution.decision":"attributed","gen_ai.usage.input_tokens":-5,"gen_ai.usage.output_tokens":1e300,"ai_attribution.cost_usd":"NaN","user.id":{"a":1},"ai_attribution.quota.outcome":"ok","ai_attribution.x.y":"z"}}}"#).unwrap();
        assert_eq!(r.input_tokens, None);
        assert_eq!(r.output_tokens, None);
        assert_eq!(r.cost_usd, None);
        assert_eq!(r.dim("user"), None);
        assert!(r.dims.is_empty());
        assert_eq!(r.quota_outcome.as_deref(), Some("ok"));
        let deep = format!("{{\"record\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse_line(deep.as_bytes()).unwrap_err(), NotRecord::Foreign);
        let deep = format!(
            "{{\"record\":{}1{}}}",
            "{\"value\":".repeat(100_000),
            "}".repeat(100_000)
        );
        assert_eq!(parse_line(deep.as_bytes()).unwrap_err(), NotRecord::Malformed);
    }

    /// The full serde_json path, for comparison with the fast one.
    fn parse_line_full(line: &[u8]) -> Result<Record<'_>, NotRecord> {
        parse_line_with(line, false)
    }

    #[test]
    fn fast_path_reads_what_serde_json_reads() {
        let lines = [
            r#"{"app":"x","business_unit":"finance","cost_usd":"0.1","decision":"attributed","duration_ms":3,"record":{"@type":"type.googleapis.com/google.protobuf.Struct","value":{"ai_attribution.decision":"attributed","user.id":"a\"b","gen_ai.usage.input_tokens":27,"ai_attribution.cost_usd":0.000175,"ai_attribution.stream":false}},"request_id":"r-1","start_time":"2026-11-01T10:00:00.000Z","status":200,"nested":{"a":[1,{"b":"}"}]}}"#,
            r#"{ "record" : { "ai_attribution.decision" : "rejected" } , "status" : "403" }"#,
            r#"{"decision":"attributed","record":null,"user":"bob","input_tokens":"5"}"#,
            r#"{"method":"GET","record":null,"decision":null}"#,
            r#"{"record":{"value":{"ai_attribution.decision":"attributed"}}} trailing"#,
            r#"{"ab":1,"record":{"value":{"ai_attribution.decision":"attributed"}}}"#,
            r#"{"record":{"value":{"ai_attribution.decision":"attributed"}},}"#,
            r#"{"record":{"value":{"ai_attribution.decision":"attrib"#,
            r#"{}"#,
            r#"{"x":[1,2,"]"],"record":7}"#,
        ];
        for l in lines {
            let fast = format!("{:?}", parse_line(l.as_bytes()));
            let full = format!("{:?}", parse_line_full(l.as_bytes()));
            assert_eq!(fast, full, "{l}");
        }
    }

    #[test]
    fn every_cut_and_mutation_of_a_line_is_safe() {
        let line = r#"{"app":null,"business_unit":"finance","cost_usd":"0.000175","decision":"attributed","duration_ms":3,"input_tokens":"27","record":{"@type":"type.googleapis.com/google.protobuf.Struct","value":{"ai_attribution.business_unit":"finance","ai_attribution.correlation_id":"readme-1","ai_attribution.cost_usd":0.000175,"ai_attribution.decision":"attributed","ai_attribution.sources":"business_unit=header:x-business-unit,user=header:x-user-id","ai_attribution.stream":false,"gen_ai.usage.input_tokens":27,"user.id":"al\u0069ce"}},"request_id":"readme-1","start_time":"2026-11-29T14:55:49.008Z","status":200,"user":"alice"}"#;
        let bytes = line.as_bytes();
        for cut in 0..bytes.len() {
            let prefix = &bytes[..cut];
            let fast = format!("{:?}", parse_line(prefix));
            let full = format!("{:?}", parse_line_full(prefix));
            assert_eq!(fast, full, "cut at {cut}");
        }
        for i in 0..bytes.len() {
            for b in [b'"', b'\\', b'{', b'}', b'[', b',', b':', b' ', b'x', 0xff] {
                let mut m = bytes.to_vec();
                m[i] = b;
                let fast = parse_line(&m);
                // Where serde_json accepts the whole line, both paths agree.
                if serde_json::from_slice::<serde_json::Value>(&m).is_ok() {
                    assert_eq!(
                        format!("{fast:?}"),
                        format!("{:?}", parse_line_full(&m)),
                        "byte {i} = {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn key_names_are_the_filters() {
        use ai_attribution::record::Field;
        // Every ai_attribution.* field of the record is known not to be a dimension.
        for f in Field::ALL {
            let otel = f.otel_name();
            if let Some(rest) = otel.strip_prefix(keys::DIMENSION_PREFIX) {
                assert!(
                    keys::NOT_DIMENSIONS.contains(&otel),
                    "{otel} would be read as dimension {rest}"
                );
            }
        }
        for (ours, field) in [
            (keys::EVENT, Field::Event),
            (keys::TOOL_NAME, Field::Tool),
            (keys::MCP_METHOD, Field::McpMethod),
            (keys::MCP_SESSION, Field::McpSession),
            (keys::MCP_PROTOCOL_VERSION, Field::McpProtocolVersion),
            (keys::JSONRPC_ID, Field::JsonRpcId),
            (keys::PROMPT_NAME, Field::Prompt),
            (keys::RESOURCE_URI, Field::ResourceUri),
            (keys::ERROR_TYPE, Field::ErrorType),
            (keys::RPC_STATUS, Field::RpcStatus),
            (keys::MCP_HEADER_MISMATCH, Field::McpHeaderMismatch),
            (keys::MCP_SESSION_MISMATCH, Field::McpSessionMismatch),
            (keys::RESPONSE_END, Field::ResponseEnd),
            (keys::REQUESTED_TOOLS, Field::RequestedTools),
            (keys::REQUESTED_TOOL_CALL_IDS, Field::RequestedToolCallIds),
            (keys::TRACE_ID, Field::TraceId),
            (keys::USAGE_REASON, Field::UsageReason),
            (keys::QUOTA_OUTCOME, Field::QuotaOutcome),
            (keys::EXCEPTION, Field::Exception),
        ] {
            assert_eq!(ours, field.otel_name());
        }
        for (ours, field) in [
            (flat::EVENT, Field::Event),
            (flat::TOOL, Field::Tool),
            (flat::MCP_METHOD, Field::McpMethod),
            (flat::MCP_SESSION, Field::McpSession),
            (flat::MCP_PROTOCOL_VERSION, Field::McpProtocolVersion),
            (flat::JSONRPC_ID, Field::JsonRpcId),
            (flat::PROMPT, Field::Prompt),
            (flat::RESOURCE_URI, Field::ResourceUri),
            (flat::ERROR_TYPE, Field::ErrorType),
            (flat::RPC_STATUS, Field::RpcStatus),
            (flat::MCP_HEADER_MISMATCH, Field::McpHeaderMismatch),
            (flat::MCP_SESSION_MISMATCH, Field::McpSessionMismatch),
            (flat::QUOTA_OUTCOME, Field::QuotaOutcome),
            (flat::EXCEPTION, Field::Exception),
        ] {
            assert_eq!(ours, field.scalar_name());
        }
    }

    #[test]
    fn flat_tool_call_keys_are_fields_not_dimensions() {
        // A line written without the structured record: every record key is flat.
        let r = parse_line(br#"{"decision":"attributed","event":"tool_call","tool":"search_docs","mcp_method":"tools/call","mcp_session":"s-1","jsonrpc_id":"7","error_type":"tool_error","mcp_session_mismatch":"true","requested_tool_call_ids":"x","service_account":"agent-7","record":null}"#).unwrap();
        assert_eq!(r.event(), Event::ToolCall);
        assert_eq!(r.tool(), Some("search_docs"));
        assert_eq!(r.mcp_method.as_deref(), Some("tools/call"));
        assert_eq!(r.mcp_session.as_deref(), Some("s-1"));
        assert_eq!(r.error_type.as_deref(), Some("tool_error"));
        assert_eq!(r.mcp_session_mismatch, Some(true));
        let dims: Vec<&str> = r.dims.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(dims, ["service_account"]);
        // The structured form of the same.
        let r = parse_line(br#"{"record":{"value":{"ai_attribution.decision":"attributed","ai_attribution.event":"tool_call","gen_ai.tool.name":"search_docs","mcp.protocol.version":"2025-11-25","ai_attribution.mcp_header_mismatch":true,"ai_attribution.requested_tool_call_ids":"a","ai_attribution.service_account":"agent-7"}}}"#).unwrap();
        assert_eq!(r.mcp_protocol_version.as_deref(), Some("2025-11-25"));
        assert_eq!(r.mcp_header_mismatch, Some(true));
        let dims: Vec<&str> = r.dims.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(dims, ["service_account"]);
    }

    #[test]
    fn escaped_keys_and_values() {
        let r = parse_line(br#"{"record":{"value":{"ai_attribution.decision":"attributed","ai_attribution.business\u005funit":"fin\"ance"}}}"#).unwrap();
        assert_eq!(r.dim("business_unit"), Some("fin\"ance"));
    }
}
