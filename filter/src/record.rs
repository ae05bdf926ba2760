//! The attribution record: every key it can carry is a [`Field`], named once here for both of its
//! forms, the scalar filter-state keys (`wasm.ai_attribution.<key>`) and the structured
//! `google.protobuf.Struct` record (`wasm.ai_attribution`, OpenTelemetry names where they exist).

use crate::config::Config;
use crate::policy::Decision;
use crate::protobuf::{push_struct_field, StructValue};
use std::borrow::Cow;

/// The filter's own version (the crate's), written into every record as `filter_version`.
pub const FILTER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Name of the structured record property (filter-state key `wasm.ai_attribution`).
pub const STRUCT_PROPERTY: &str = "ai_attribution";

/// A record key that is not a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Event,
    Decision,
    Reason,
    CorrelationId,
    RequestId,
    Method,
    Sources,
    Provider,
    Operation,
    RequestModel,
    ResponseModel,
    ResponseId,
    Stream,
    InputTokens,
    OutputTokens,
    CachedInputTokens,
    ReasoningTokens,
    UsageStatus,
    UsageReason,
    ResponseEnd,
    CostUsd,
    RequestedTools,
    RequestedToolCallIds,
    TraceId,
    McpMethod,
    McpSession,
    McpProtocolVersion,
    JsonRpcId,
    Tool,
    Prompt,
    ResourceUri,
    ErrorType,
    RpcStatus,
    McpHeaderMismatch,
    McpSessionMismatch,
    QuotaBudgets,
    QuotaOutcome,
    QuotaOver,
    QuotaReported,
    Exception,
    FilterVersion,
}

impl Field {
    /// Every field, in the order records list them.
    pub const ALL: [Field; 41] = [
        Field::Event,
        Field::Decision,
        Field::Reason,
        Field::CorrelationId,
        Field::RequestId,
        Field::Method,
        Field::Sources,
        Field::Provider,
        Field::Operation,
        Field::RequestModel,
        Field::ResponseModel,
        Field::ResponseId,
        Field::Stream,
        Field::InputTokens,
        Field::OutputTokens,
        Field::CachedInputTokens,
        Field::ReasoningTokens,
        Field::UsageStatus,
        Field::UsageReason,
        Field::ResponseEnd,
        Field::CostUsd,
        Field::RequestedTools,
        Field::RequestedToolCallIds,
        Field::TraceId,
        Field::McpMethod,
        Field::McpSession,
        Field::McpProtocolVersion,
        Field::JsonRpcId,
        Field::Tool,
        Field::Prompt,
        Field::ResourceUri,
        Field::ErrorType,
        Field::RpcStatus,
        Field::McpHeaderMismatch,
        Field::McpSessionMismatch,
        Field::QuotaBudgets,
        Field::QuotaOutcome,
        Field::QuotaOver,
        Field::QuotaReported,
        Field::Exception,
        Field::FilterVersion,
    ];

    /// The scalar key, `wasm.ai_attribution.<this>`.
    pub fn scalar_name(self) -> &'static str {
        self.names().0
    }

    /// The key in the structured record.
    pub fn otel_name(self) -> &'static str {
        self.names().1
    }

    /// The filter-state property that holds the scalar key, `ai_attribution.<scalar name>`.
    pub fn property_name(self) -> &'static str {
        self.names().2
    }

    fn names(self) -> (&'static str, &'static str, &'static str) {
        // (scalar name, structured-record key, filter-state property of the scalar key)
        macro_rules! n {
            ($scalar:literal, $otel:literal) => {
                ($scalar, $otel, concat!("ai_attribution.", $scalar))
            };
        }
        match self {
            Field::Event => n!("event", "ai_attribution.event"),
            Field::Decision => n!("decision", "ai_attribution.decision"),
            Field::Reason => n!("reason", "ai_attribution.reason"),
            Field::CorrelationId => n!("correlation_id", "ai_attribution.correlation_id"),
            Field::RequestId => n!("request_id", "ai_attribution.request_id"),
            Field::Method => n!("method", "http.request.method"),
            Field::Sources => n!("sources", "ai_attribution.sources"),
            Field::Provider => n!("provider", "gen_ai.provider.name"),
            Field::Operation => n!("operation", "gen_ai.operation.name"),
            Field::RequestModel => n!("request_model", "gen_ai.request.model"),
            Field::ResponseModel => n!("response_model", "gen_ai.response.model"),
            Field::ResponseId => n!("response_id", "gen_ai.response.id"),
            Field::Stream => n!("stream", "ai_attribution.stream"),
            Field::InputTokens => n!("input_tokens", "gen_ai.usage.input_tokens"),
            Field::OutputTokens => n!("output_tokens", "gen_ai.usage.output_tokens"),
            Field::CachedInputTokens => n!("cached_input_tokens", "gen_ai.usage.cache_read.input_tokens"),
            Field::ReasoningTokens => n!("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
            Field::UsageStatus => n!("usage_status", "ai_attribution.usage_status"),
            Field::UsageReason => n!("usage_reason", "ai_attribution.usage_reason"),
            Field::ResponseEnd => n!("response_end", "ai_attribution.response_end"),
            Field::CostUsd => n!("cost_usd", "ai_attribution.cost_usd"),
            Field::RequestedTools => n!("requested_tools", "ai_attribution.requested_tools"),
            Field::RequestedToolCallIds => n!("requested_tool_call_ids", "ai_attribution.requested_tool_call_ids"),
            Field::TraceId => n!("trace_id", "ai_attribution.trace_id"),
            Field::McpMethod => n!("mcp_method", "mcp.method.name"),
            Field::McpSession => n!("mcp_session", "mcp.session.id"),
            Field::McpProtocolVersion => n!("mcp_protocol_version", "mcp.protocol.version"),
            Field::JsonRpcId => n!("jsonrpc_id", "jsonrpc.request.id"),
            Field::Tool => n!("tool", "gen_ai.tool.name"),
            Field::Prompt => n!("prompt", "gen_ai.prompt.name"),
            Field::ResourceUri => n!("resource_uri", "mcp.resource.uri"),
            Field::ErrorType => n!("error_type", "error.type"),
            Field::RpcStatus => n!("rpc_status", "rpc.response.status_code"),
            Field::McpHeaderMismatch => n!("mcp_header_mismatch", "ai_attribution.mcp_header_mismatch"),
            Field::McpSessionMismatch => n!("mcp_session_mismatch", "ai_attribution.mcp_session_mismatch"),
            Field::QuotaBudgets => n!("quota_budgets", "ai_attribution.quota.budgets"),
            Field::QuotaOutcome => n!("quota_outcome", "ai_attribution.quota.outcome"),
            Field::QuotaOver => n!("quota_over", "ai_attribution.quota.over"),
            Field::QuotaReported => n!("quota_reported", "ai_attribution.quota.reported"),
            Field::Exception => n!("exception", "ai_attribution.exception"),
            Field::FilterVersion => n!("filter_version", "ai_attribution.filter_version"),
        }
    }

    /// The field whose scalar key is `name`.
    pub fn from_scalar_name(name: &str) -> Option<Field> {
        Field::ALL.iter().copied().find(|f| f.scalar_name() == name)
    }
}

/// The structured-record key of a dimension: OpenTelemetry's `user.id` and `session.id`, else
/// `ai_attribution.<dimension>`.
pub fn dimension_otel_name(dimension: &str) -> String {
    match dimension {
        "user" => "user.id".to_string(),
        "session" => "session.id".to_string(),
        other => format!("ai_attribution.{other}"),
    }
}

/// The structured-record key of a pseudonymised dimension: OpenTelemetry's `user.hash`, else
/// `ai_attribution.<dimension>_hash`.
pub fn pseudonym_otel_name(dimension: &str) -> String {
    match dimension {
        "user" => "user.hash".to_string(),
        other => format!("ai_attribution.{other}_hash"),
    }
}

/// `n` in decimal, without the formatting machinery (four token counts on every call).
fn decimal(mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    digits
        .get(at..)
        .map(|d| d.iter().map(|&b| char::from(b)).collect())
        .unwrap_or_default()
}

/// A dimension's key names in the record, made once per configuration instead of on every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimensionKeys {
    /// The scalar filter-state key (without `wasm.`): `ai_attribution.<name>`.
    pub property: String,
    /// The same for its pseudonym: `ai_attribution.<name>_hash`.
    pub hash_property: String,
    /// The structured-record key ([`dimension_otel_name`]).
    pub otel: String,
    /// The structured-record key of its pseudonym ([`pseudonym_otel_name`]).
    pub hash_otel: String,
}

impl DimensionKeys {
    pub fn of(dimension: &str) -> DimensionKeys {
        DimensionKeys {
            property: format!("{STRUCT_PROPERTY}.{dimension}"),
            hash_property: format!("{STRUCT_PROPERTY}.{dimension}_hash"),
            otel: dimension_otel_name(dimension),
            hash_otel: pseudonym_otel_name(dimension),
        }
    }
}

/// Which kind of AI event a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ModelCall,
    /// A request to an MCP endpoint.
    ToolCall,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ModelCall => "model_call",
            EventKind::ToolCall => "tool_call",
        }
    }
}

/// What the record says of a tool call (a request to an MCP endpoint): its JSON-RPC message
/// (the first one that had to be attributed, in a batch), and how it went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolRecord {
    pub mcp_method: Option<String>,
    /// The `Mcp-Session-Id` the client sent.
    pub mcp_session: Option<String>,
    pub protocol_version: Option<String>,
    pub jsonrpc_id: Option<String>,
    pub tool: Option<String>,
    pub prompt: Option<String>,
    pub resource_uri: Option<String>,
    /// OpenTelemetry `error.type`: the JSON-RPC error code, or `tool_error`.
    pub error_type: Option<String>,
    /// OpenTelemetry `rpc.response.status_code`: the JSON-RPC error code.
    pub rpc_status: Option<String>,
    /// `Mcp-Method`/`Mcp-Name` disagreed with the body.
    pub header_mismatch: bool,
    /// The session was opened by another service account (on this worker).
    pub session_mismatch: bool,
}

/// Token counts read from the response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cached_input: Option<u64>,
    pub reasoning: Option<u64>,
}

/// Whether usage was read (`usage_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageStatus {
    Reported,
    Missing,
    Partial,
    NotApplicable,
}

impl UsageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageStatus::Reported => "reported",
            UsageStatus::Missing => "missing",
            UsageStatus::Partial => "partial",
            UsageStatus::NotApplicable => "not_applicable",
        }
    }
}

/// Everything the record says about one AI event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub event: EventKind,
    pub decision: Decision,
    pub reason: String,
    pub correlation_id: String,
    /// The inbound `x-request-id`, as the caller (or Envoy) set it.
    pub request_id: Option<String>,
    pub method: Option<String>,
    /// `(dimension, value)` for every configured dimension, in config order. The value of a
    /// pseudonymised dimension is its pseudonym.
    pub dimensions: Vec<(String, Option<String>)>,
    /// Indexes into `dimensions` whose values are pseudonyms (recorded as `<dimension>_hash`).
    pub pseudonymised: Vec<usize>,
    pub sources: String,
    pub provider: String,
    pub operation: String,
    pub request_model: Option<String>,
    pub response_model: Option<String>,
    pub response_id: Option<String>,
    pub stream: Option<bool>,
    pub tokens: Tokens,
    pub usage_status: Option<UsageStatus>,
    /// Why usage is not `reported`.
    pub usage_reason: Option<String>,
    /// How the answer ended: `final_event`, `end_of_stream` or `cut_short`.
    pub response_end: Option<&'static str>,
    pub cost_usd: Option<f64>,
    /// The tools the model asked to call, comma-joined, and their call ids where given.
    pub requested_tools: Option<String>,
    pub requested_tool_call_ids: Option<String>,
    /// The W3C trace ID of the inbound `traceparent`.
    pub trace_id: Option<String>,
    pub tool: Option<ToolRecord>,
    pub quota: Option<QuotaRecord>,
    /// The exceptions the call passed by, comma-joined.
    pub exception: Option<String>,
}

/// What the quota step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaRecord {
    /// The budgets checked, comma-joined.
    pub budgets: String,
    /// `ok`, `over_budget`, `unavailable` or `failed_open`; `None` before an answer came.
    pub outcome: Option<&'static str>,
    /// The budgets that were spent, comma-joined.
    pub over: Option<String>,
    /// What was reported after the call: `budget=hits,...`.
    pub reported: Option<String>,
}

/// One value of the record, before it is written in either form.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordValue<'a> {
    Text(&'a str),
    Count(u64),
    Flag(bool),
    Usd(f64),
}

/// A record key: a fixed field, or the dimension at this index of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Field(Field),
    Dimension(usize),
}

/// Formats a cost as a plain decimal string (no exponent), rounded to 10 decimals. Integer
/// arithmetic keeps float formatting, a sizeable part of a wasm binary, out of the filter.
pub fn format_cost(cost: f64) -> String {
    const SCALE: u64 = 10_000_000_000;
    if !cost.is_finite() || cost <= 0.0 {
        return "0".to_string();
    }
    // Saturates for absurd costs (over ~1.8 billion USD for one call).
    let units = (cost * SCALE as f64).round() as u64;
    let (whole, frac) = (units / SCALE, units % SCALE);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:010}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Record {
    /// Every key that has a value, in record order.
    pub fn entries<'a>(&'a self) -> Vec<(Key, RecordValue<'a>)> {
        use RecordValue::{Count, Flag, Text, Usd};
        let mut out: Vec<(Key, RecordValue<'a>)> = Vec::with_capacity(Field::ALL.len() + self.dimensions.len());
        let mut put = |key: Key, value: Option<RecordValue<'a>>| {
            if let Some(v) = value {
                out.push((key, v));
            }
        };
        let field = Key::Field;
        put(field(Field::Event), Some(Text(self.event.as_str())));
        put(field(Field::Decision), Some(Text(self.decision.as_str())));
        put(field(Field::Reason), Some(Text(&self.reason)));
        put(field(Field::CorrelationId), Some(Text(&self.correlation_id)));
        put(field(Field::RequestId), self.request_id.as_deref().map(Text));
        put(field(Field::Method), self.method.as_deref().map(Text));
        for (i, (_, value)) in self.dimensions.iter().enumerate() {
            put(Key::Dimension(i), value.as_deref().map(Text));
        }
        put(field(Field::Sources), Some(Text(&self.sources)));
        put(field(Field::Provider), Some(Text(&self.provider)));
        put(field(Field::Operation), Some(Text(&self.operation)));
        put(field(Field::RequestModel), self.request_model.as_deref().map(Text));
        put(field(Field::ResponseModel), self.response_model.as_deref().map(Text));
        put(field(Field::ResponseId), self.response_id.as_deref().map(Text));
        put(field(Field::Stream), self.stream.map(Flag));
        put(field(Field::InputTokens), self.tokens.input.map(Count));
        put(field(Field::OutputTokens), self.tokens.output.map(Count));
        put(field(Field::CachedInputTokens), self.tokens.cached_input.map(Count));
        put(field(Field::ReasoningTokens), self.tokens.reasoning.map(Count));
        put(field(Field::UsageStatus), self.usage_status.map(|s| Text(s.as_str())));
        put(field(Field::UsageReason), self.usage_reason.as_deref().map(Text));
        put(field(Field::ResponseEnd), self.response_end.map(Text));
        put(field(Field::CostUsd), self.cost_usd.map(Usd));
        put(field(Field::RequestedTools), self.requested_tools.as_deref().map(Text));
        put(
            field(Field::RequestedToolCallIds),
            self.requested_tool_call_ids.as_deref().map(Text),
        );
        put(field(Field::TraceId), self.trace_id.as_deref().map(Text));
        if let Some(t) = &self.tool {
            put(field(Field::McpMethod), t.mcp_method.as_deref().map(Text));
            put(field(Field::McpSession), t.mcp_session.as_deref().map(Text));
            put(
                field(Field::McpProtocolVersion),
                t.protocol_version.as_deref().map(Text),
            );
            put(field(Field::JsonRpcId), t.jsonrpc_id.as_deref().map(Text));
            put(field(Field::Tool), t.tool.as_deref().map(Text));
            put(field(Field::Prompt), t.prompt.as_deref().map(Text));
            put(field(Field::ResourceUri), t.resource_uri.as_deref().map(Text));
            put(field(Field::ErrorType), t.error_type.as_deref().map(Text));
            put(field(Field::RpcStatus), t.rpc_status.as_deref().map(Text));
            put(field(Field::McpHeaderMismatch), t.header_mismatch.then_some(Flag(true)));
            put(
                field(Field::McpSessionMismatch),
                t.session_mismatch.then_some(Flag(true)),
            );
        }
        if let Some(q) = &self.quota {
            put(field(Field::QuotaBudgets), Some(Text(&q.budgets)));
            put(field(Field::QuotaOutcome), q.outcome.map(Text));
            put(field(Field::QuotaOver), q.over.as_deref().map(Text));
            put(field(Field::QuotaReported), q.reported.as_deref().map(Text));
        }
        put(field(Field::Exception), self.exception.as_deref().map(Text));
        put(field(Field::FilterVersion), Some(Text(FILTER_VERSION)));
        out
    }

    /// The name `record.scalar_keys` and `record.redact` know a key by.
    fn base_name(&self, key: Key) -> &str {
        match key {
            Key::Field(f) => f.scalar_name(),
            Key::Dimension(i) => self.dimension_name(i),
        }
    }

    fn dimension_name(&self, i: usize) -> &str {
        self.dimensions.get(i).map_or("", |(name, _)| name.as_str())
    }

    /// The configuration's key names of the dimension at `i`, when the record's dimension is
    /// the configuration's (always, for a record a call built).
    fn dimension_keys<'c>(&self, config: &'c Config, i: usize) -> Option<&'c DimensionKeys> {
        config
            .dimensions
            .get(i)
            .filter(|d| d.name == self.dimension_name(i))
            .map(|d| &d.keys)
    }

    /// One of the dimension at `i`'s key names, `pick`ed for its clear value or its pseudonym:
    /// the configuration's, or made here for a record built without it.
    fn dimension_key<'c>(
        &self,
        config: &'c Config,
        i: usize,
        pick: fn(&DimensionKeys, bool) -> &String,
    ) -> Cow<'c, str> {
        let hashed = self.pseudonymised.contains(&i);
        match self.dimension_keys(config, i) {
            Some(keys) => Cow::Borrowed(pick(keys, hashed)),
            None => Cow::Owned(pick(&DimensionKeys::of(self.dimension_name(i)), hashed).clone()),
        }
    }

    /// The scalar key of the dimension at `i`: `ai_attribution.<name>`, or `..._hash` for a
    /// pseudonym.
    fn dimension_property<'c>(&self, config: &'c Config, i: usize) -> Cow<'c, str> {
        self.dimension_key(
            config,
            i,
            |keys, hashed| if hashed { &keys.hash_property } else { &keys.property },
        )
    }

    /// The structured-record key of the dimension at `i`.
    fn dimension_otel<'c>(&self, config: &'c Config, i: usize) -> Cow<'c, str> {
        self.dimension_key(
            config,
            i,
            |keys, hashed| if hashed { &keys.hash_otel } else { &keys.otel },
        )
    }

    /// `(key, value)` for each scalar filter-state key to write, key without the `wasm.` prefix.
    /// Text values are borrowed from the record; only numbers and dimension keys are formatted.
    pub fn scalar_entries<'a>(&'a self, config: &'a Config) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
        let mut out = Vec::with_capacity(32);
        for (key, value) in self.entries() {
            let base = self.base_name(key);
            if !config.scalar_keys.wants(base) || config.redact.contains(base) {
                continue;
            }
            let property = match key {
                Key::Field(f) => Cow::Borrowed(f.property_name()),
                Key::Dimension(i) => self.dimension_property(config, i),
            };
            let text = match value {
                RecordValue::Text(t) => Cow::Borrowed(t),
                RecordValue::Count(n) => Cow::Owned(decimal(n)),
                RecordValue::Flag(b) => Cow::Borrowed(if b { "true" } else { "false" }),
                RecordValue::Usd(c) => Cow::Owned(format_cost(c)),
            };
            out.push((property, text));
        }
        out
    }

    /// The structured record as serialized `google.protobuf.Struct`, without the keys
    /// `record.redact` names.
    pub fn structured(&self, config: &Config) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        for (key, value) in self.entries() {
            if !config.redact.is_empty() && config.redact.contains(self.base_name(key)) {
                continue;
            }
            let name: Cow<str> = match key {
                Key::Field(f) => Cow::Borrowed(f.otel_name()),
                Key::Dimension(i) => self.dimension_otel(config, i),
            };
            let value = match value {
                RecordValue::Text(t) => StructValue::String(Cow::Borrowed(t)),
                RecordValue::Count(n) => StructValue::Number(n as f64),
                RecordValue::Flag(b) => StructValue::Bool(b),
                RecordValue::Usd(c) => StructValue::Number(c),
            };
            push_struct_field(&name, &value, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record() -> Record {
        Record {
            event: EventKind::ModelCall,
            decision: Decision::Attributed,
            reason: String::new(),
            correlation_id: "c-1".into(),
            request_id: Some("r-1".into()),
            method: Some("POST".into()),
            dimensions: vec![
                ("business_unit".into(), Some("finance".into())),
                ("user".into(), Some("alice".into())),
                ("session".into(), None),
            ],
            pseudonymised: Vec::new(),
            sources: "business_unit=header:x-bu,user=header:x-user-id".into(),
            provider: "openai".into(),
            operation: "chat".into(),
            request_model: Some("gpt-4o".into()),
            response_model: None,
            response_id: None,
            stream: Some(false),
            tokens: Tokens {
                input: Some(27),
                output: Some(12),
                cached_input: None,
                reasoning: None,
            },
            usage_status: Some(UsageStatus::Reported),
            usage_reason: None,
            response_end: Some("end_of_stream"),
            cost_usd: Some(0.0001875),
            requested_tools: None,
            requested_tool_call_ids: None,
            trace_id: None,
            tool: None,
            quota: None,
            exception: None,
        }
    }

    #[test]
    fn every_field_property_is_the_scalar_name_under_the_record_property() {
        for f in Field::ALL {
            assert_eq!(f.property_name(), format!("{STRUCT_PROPERTY}.{}", f.scalar_name()));
        }
    }

    #[test]
    fn every_field_has_distinct_names() {
        for (i, a) in Field::ALL.iter().enumerate() {
            assert_eq!(Field::from_scalar_name(a.scalar_name()), Some(*a));
            for b in Field::ALL.iter().skip(i + 1) {
                assert_ne!(a.scalar_name(), b.scalar_name());
                assert_ne!(a.otel_name(), b.otel_name());
            }
        }
    }

    #[test]
    fn scalar_keys_skip_absent_values() {
        let c = Config::parse(b"{}").unwrap();
        let r = record();
        let e = r.scalar_entries(&c);
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_ref()).collect();
        assert!(keys.contains(&"ai_attribution.decision"));
        assert!(keys.contains(&"ai_attribution.business_unit"));
        assert!(!keys.contains(&"ai_attribution.session"));
        assert!(!keys.contains(&"ai_attribution.response_model"));
        assert!(e.contains(&("ai_attribution.cost_usd".into(), "0.0001875".into())));
        assert!(e.contains(&("ai_attribution.input_tokens".into(), "27".into())));
        assert!(e.contains(&("ai_attribution.event".into(), "model_call".into())));
        assert!(e.contains(&("ai_attribution.filter_version".into(), env!("CARGO_PKG_VERSION").into())));
    }

    #[test]
    fn scalar_keys_can_be_restricted() {
        let c = Config::parse(br#"{"record":{"scalar_keys":["decision","user"]}}"#).unwrap();
        let r = record();
        let e = r.scalar_entries(&c);
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["ai_attribution.decision", "ai_attribution.user"]);
    }

    #[test]
    fn redacted_keys_are_in_neither_form() {
        let c = Config::parse(
            br#"{"dimensions":{"user":["header:x"],"business_unit":["header:y"]},"require":[["user"]],
            "record":{"redact":["request_model","business_unit","cost_usd"]}}"#,
        )
        .unwrap();
        let keys: Vec<String> = record()
            .scalar_entries(&c)
            .into_iter()
            .map(|(k, _)| k.into_owned())
            .collect();
        for gone in ["request_model", "business_unit", "cost_usd"] {
            assert!(!keys.contains(&format!("ai_attribution.{gone}")), "{gone}: {keys:?}");
        }
        assert!(keys.contains(&"ai_attribution.user".to_string()));
        let text = String::from_utf8_lossy(&record().structured(&c)).into_owned();
        for gone in [
            "gen_ai.request.model",
            "ai_attribution.business_unit",
            "ai_attribution.cost_usd",
        ] {
            assert!(!text.contains(gone), "{gone}");
        }
        assert!(text.contains("user.id") && text.contains("gen_ai.provider.name"));
        // The scalar form alone: scalar_keys; both forms: redact.
        let e = Config::parse(br#"{"record":{"redact":["nope"]}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("record.redact[0]: \"nope\" is neither"), "{e}");
    }

    #[test]
    fn cost_formatting() {
        assert_eq!(format_cost(0.0001875), "0.0001875");
        assert_eq!(format_cost(2.0), "2");
        assert_eq!(format_cost(0.0), "0");
        assert_eq!(format_cost(12.5), "12.5");
        assert_eq!(format_cost(0.000175), "0.000175");
        assert_eq!(format_cost(1e-12), "0");
        assert_eq!(format_cost(f64::NAN), "0");
    }

    #[test]
    fn counts_are_written_in_decimal() {
        for n in [0, 7, 10, 39, 1_000_000, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
    }

    #[test]
    fn structured_record_uses_otel_names() {
        let bytes = record().structured(&Config::parse(b"{}").unwrap());
        let text = String::from_utf8_lossy(&bytes);
        for key in [
            "user.id",
            "ai_attribution.business_unit",
            "gen_ai.provider.name",
            "gen_ai.usage.input_tokens",
            "http.request.method",
            "ai_attribution.filter_version",
        ] {
            assert!(text.contains(key), "{key}");
        }
        assert!(!text.contains("session.id"));
    }

    #[test]
    fn pseudonymised_dimensions_are_recorded_under_hash_keys() {
        let mut r = record();
        r.dimensions = vec![
            ("business_unit".into(), Some("b".repeat(64))),
            ("user".into(), Some("a".repeat(64))),
            ("session".into(), None),
        ];
        r.pseudonymised = vec![0, 1];
        let c = Config::parse(b"{}").unwrap();
        let e = r.scalar_entries(&c);
        assert!(e.contains(&("ai_attribution.user_hash".into(), "a".repeat(64).into())));
        assert!(e.contains(&("ai_attribution.business_unit_hash".into(), "b".repeat(64).into())));
        assert!(!e
            .iter()
            .any(|(k, _)| k == "ai_attribution.user" || k == "ai_attribution.business_unit"));
        let text = String::from_utf8_lossy(&r.structured(&c)).into_owned();
        assert!(text.contains("user.hash") && text.contains("ai_attribution.business_unit_hash"));
        assert!(!text.contains("user.id"));
        assert_eq!(
            text.matches("ai_attribution.business_unit").count(),
            text.matches("ai_attribution.business_unit_hash").count()
        );
        // A restricted scalar_keys list names the dimension (or its _hash key).
        let c = Config::parse(br#"{"dimensions":{"user":["header:x"]},"require":[["user"]],"privacy":{"pseudonymise":["user"]},"record":{"scalar_keys":["user_hash"]}}"#).unwrap();
        r.pseudonymised = vec![1];
        let keys: Vec<String> = r.scalar_entries(&c).into_iter().map(|(k, _)| k.into_owned()).collect();
        assert_eq!(keys, ["ai_attribution.user_hash"]);
    }
}
