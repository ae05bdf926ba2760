//! What `--by` can name, and the money type every output shares.

use crate::record::Record;

/// A grouping field: a dimension, or one of the record's own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Dim(String),
    /// The model that was priced: the response's, else the request's.
    Model,
    Provider,
    Operation,
    Tool,
    Decision,
    Event,
    Reason,
    Sources,
    RequestModel,
    ResponseModel,
    Stream,
    UsageStatus,
    UsageReason,
    ResponseEnd,
    RequestedTools,
    TraceId,
    CorrelationId,
    /// The HTTP method (`http.request.method`).
    Method,
    /// The HTTP status Envoy logged (`status`, not a record field).
    Status,
    McpMethod,
    McpSession,
    McpProtocolVersion,
    JsonRpcId,
    Prompt,
    ResourceUri,
    ErrorType,
    RpcStatus,
    McpHeaderMismatch,
    McpSessionMismatch,
    /// What the budget check said (`quota.outcome`).
    QuotaOutcome,
    /// The dated exception that let the call through.
    Exception,
}

/// Record fields that are measures, summed rather than grouped by.
const MEASURES: [&str; 6] = [
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "cost_usd",
    "calls",
];

impl Field {
    /// The record fields `--by` can name (scalar names, as in the access log's flat keys).
    pub const FIXED: [(&'static str, Field); 31] = [
        ("model", Field::Model),
        ("provider", Field::Provider),
        ("operation", Field::Operation),
        ("tool", Field::Tool),
        ("decision", Field::Decision),
        ("event", Field::Event),
        ("reason", Field::Reason),
        ("sources", Field::Sources),
        ("request_model", Field::RequestModel),
        ("response_model", Field::ResponseModel),
        ("stream", Field::Stream),
        ("usage_status", Field::UsageStatus),
        ("usage_reason", Field::UsageReason),
        ("response_end", Field::ResponseEnd),
        ("requested_tools", Field::RequestedTools),
        ("trace_id", Field::TraceId),
        ("correlation_id", Field::CorrelationId),
        ("method", Field::Method),
        ("status", Field::Status),
        ("mcp_method", Field::McpMethod),
        ("mcp_session", Field::McpSession),
        ("mcp_protocol_version", Field::McpProtocolVersion),
        ("jsonrpc_id", Field::JsonRpcId),
        ("prompt", Field::Prompt),
        ("resource_uri", Field::ResourceUri),
        ("error_type", Field::ErrorType),
        ("rpc_status", Field::RpcStatus),
        ("mcp_header_mismatch", Field::McpHeaderMismatch),
        ("mcp_session_mismatch", Field::McpSessionMismatch),
        ("quota_outcome", Field::QuotaOutcome),
        ("exception", Field::Exception),
    ];

    pub fn parse(name: &str) -> Result<Field, String> {
        let name = name.trim();
        if let Some((_, f)) = Self::FIXED.iter().find(|(n, _)| *n == name) {
            return Ok(f.clone());
        }
        if MEASURES.contains(&name) {
            return Err(format!(
                "\"{name}\" is a measure (summed in every row), not a field to group by"
            ));
        }
        let mut bytes = name.bytes();
        let valid = matches!(bytes.next(), Some(b'a'..=b'z'))
            && name.len() <= 64
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(format!(
                "\"{name}\" is not a dimension name ([a-z][a-z0-9_]*) nor a record field ({})",
                Self::FIXED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(Field::Dim(name.to_string()))
    }

    /// Parses `a,b,c`; duplicates are refused.
    pub fn parse_list(text: &str) -> Result<Vec<Field>, String> {
        let mut out: Vec<Field> = Vec::new();
        for part in text.split(',') {
            if part.trim().is_empty() {
                return Err(format!("--by \"{text}\": empty name in the list"));
            }
            let f = Field::parse(part)?;
            if out.contains(&f) {
                return Err(format!("--by \"{text}\": \"{}\" is named twice", f.name()));
            }
            out.push(f);
        }
        Ok(out)
    }

    pub fn name(&self) -> &str {
        match self {
            Field::Dim(d) => d,
            other => Self::FIXED.iter().find(|(_, f)| f == other).map_or("?", |(n, _)| *n),
        }
    }

    pub fn get<'r>(&self, r: &'r Record<'_>) -> Option<&'r str> {
        let flag = |b: Option<bool>| b.map(|b| if b { "true" } else { "false" });
        let v = match self {
            Field::Dim(d) => r.dim(d),
            Field::Model => r.model(),
            Field::Provider => r.provider.as_deref(),
            Field::Operation => r.operation.as_deref(),
            Field::Tool => r.tool(),
            Field::Decision => r.decision(),
            Field::Event => Some(r.event().as_str()),
            Field::Reason => r.reason.as_deref(),
            Field::Sources => r.sources.as_deref(),
            Field::RequestModel => r.request_model.as_deref(),
            Field::ResponseModel => r.response_model.as_deref(),
            Field::Stream => flag(r.stream),
            Field::UsageStatus => r.usage_status.as_deref(),
            Field::UsageReason => r.usage_reason.as_deref(),
            Field::ResponseEnd => r.response_end.as_deref(),
            Field::RequestedTools => r.requested_tools.as_deref(),
            Field::TraceId => r.trace_id.as_deref(),
            Field::CorrelationId => r.correlation_id.as_deref(),
            Field::Method => r.http_method.as_deref(),
            Field::Status => r.status.as_deref(),
            Field::McpMethod => r.mcp_method.as_deref(),
            Field::McpSession => r.mcp_session.as_deref(),
            Field::McpProtocolVersion => r.mcp_protocol_version.as_deref(),
            Field::JsonRpcId => r.jsonrpc_id.as_deref(),
            Field::Prompt => r.prompt.as_deref(),
            Field::ResourceUri => r.resource_uri.as_deref(),
            Field::ErrorType => r.error_type.as_deref(),
            Field::RpcStatus => r.rpc_status.as_deref(),
            Field::McpHeaderMismatch => flag(r.mcp_header_mismatch),
            Field::McpSessionMismatch => flag(r.mcp_session_mismatch),
            Field::QuotaOutcome => r.quota_outcome.as_deref(),
            Field::Exception => r.exception.as_deref(),
        };
        v.filter(|s| !s.is_empty())
    }
}

/// USD in units of 10^-10, the precision the filter rounds its scalar `cost_usd` to. Summing
/// integers keeps totals independent of the order lines are read in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(pub i128);

impl Money {
    pub const SCALE: i128 = 10_000_000_000;

    pub fn from_usd(usd: f64) -> Money {
        if !usd.is_finite() {
            return Money(0);
        }
        // Saturating float-to-int: absurd values clamp instead of overflowing.
        Money((usd * Self::SCALE as f64).round() as i128)
    }

    pub fn add(&mut self, other: Money) {
        self.0 = self.0.saturating_add(other.0);
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// Every digit: `0.0001875`, `12.5`, `0`.
    pub fn exact(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let scale = Self::SCALE.unsigned_abs();
        let (whole, frac) = (abs / scale, abs % scale);
        if frac == 0 {
            return format!("{sign}{whole}");
        }
        let digits = format!("{frac:010}");
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }

    /// Rounded to `places` decimals (half away from zero), always with that many decimals.
    pub fn fixed(self, places: u32) -> String {
        let places = places.min(10);
        let div = 10u128.pow(10 - places);
        let q = self.0.unsigned_abs();
        let rounded = (q + div / 2) / div;
        let unit = 10u128.pow(places);
        let sign = if self.0 < 0 && rounded > 0 { "-" } else { "" };
        if places == 0 {
            return format!("{sign}{rounded}");
        }
        format!(
            "{sign}{}.{:0width$}",
            rounded / unit,
            rounded % unit,
            width = places as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money() {
        let m = Money::from_usd(0.0001875);
        assert_eq!(m.exact(), "0.0001875");
        assert_eq!(m.fixed(6), "0.000188");
        assert_eq!(m.fixed(2), "0.00");
        assert_eq!(Money::from_usd(12.5).exact(), "12.5");
        assert_eq!(Money::from_usd(12.345).fixed(2), "12.35");
        assert_eq!(Money::from_usd(-1.5).exact(), "-1.5");
        assert_eq!(Money::from_usd(f64::NAN), Money(0));
        assert_eq!(Money::from_usd(1e300).0, i128::MAX);
        let mut sum = Money::default();
        sum.add(Money(i128::MAX));
        sum.add(Money(5));
        assert_eq!(sum.0, i128::MAX);
    }

    #[test]
    fn fields() {
        assert_eq!(
            Field::parse_list("business_unit, model").unwrap(),
            vec![Field::Dim("business_unit".into()), Field::Model]
        );
        assert!(Field::parse_list("user,user").is_err());
        assert!(Field::parse_list("user,").is_err());
        assert!(Field::parse_list("User").is_err());
        assert!(Field::parse_list("a.b").is_err());
        let f = Field::parse_list("tool,service_account,session,event,mcp_method").unwrap();
        assert_eq!(
            f.iter().map(Field::name).collect::<Vec<_>>(),
            ["tool", "service_account", "session", "event", "mcp_method"]
        );
        assert!(Field::parse("input_tokens").unwrap_err().contains("measure"));
        // Every fixed field is named back as it was parsed.
        for (n, f) in Field::FIXED {
            assert_eq!(Field::parse(n).unwrap(), f);
            assert_eq!(f.name(), n);
        }
    }

    #[test]
    fn fields_read_tool_call_records() {
        let r = crate::record::parse_line(br#"{"status":403,"record":{"value":{"ai_attribution.event":"tool_call","ai_attribution.decision":"rejected","gen_ai.tool.name":"fetch_url","mcp.method.name":"tools/call","mcp.session.id":"s-9","error.type":"-32001","ai_attribution.mcp_session_mismatch":true,"ai_attribution.service_account":"agent-r","session.id":"s-9"}}}"#).unwrap();
        let get = |n: &str| Field::parse(n).unwrap().get(&r).map(str::to_string);
        assert_eq!(get("event").as_deref(), Some("tool_call"));
        assert_eq!(get("tool").as_deref(), Some("fetch_url"));
        assert_eq!(get("mcp_method").as_deref(), Some("tools/call"));
        assert_eq!(get("mcp_session").as_deref(), Some("s-9"));
        assert_eq!(get("session").as_deref(), Some("s-9"));
        assert_eq!(get("service_account").as_deref(), Some("agent-r"));
        assert_eq!(get("error_type").as_deref(), Some("-32001"));
        assert_eq!(get("mcp_session_mismatch").as_deref(), Some("true"));
        assert_eq!(get("status").as_deref(), Some("403"));
        assert_eq!(get("model"), None);
    }
}
