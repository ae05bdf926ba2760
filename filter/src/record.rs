//! The attribution record (SPEC §5): scalar filter-state keys and the structured Struct record.

use crate::config::Config;
use crate::policy::Decision;
use crate::protobuf::{encode_struct, StructValue};

/// Name of the structured record property (filter-state key `wasm.ai_attribution`).
pub const STRUCT_PROPERTY: &str = "ai_attribution";

/// Token counts read from the response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cached_input: Option<u64>,
    pub reasoning: Option<u64>,
}

/// Whether usage was read (SPEC §5 `usage_status`).
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

/// Everything the record says about one model call.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub decision: Decision,
    pub reason: String,
    pub correlation_id: String,
    /// `(dimension, value)` for every configured dimension, in config order.
    pub dimensions: Vec<(String, Option<String>)>,
    pub sources: String,
    pub provider: String,
    pub operation: String,
    pub request_model: Option<String>,
    pub response_model: Option<String>,
    pub response_id: Option<String>,
    pub stream: Option<bool>,
    pub tokens: Tokens,
    pub usage_status: Option<UsageStatus>,
    pub cost_usd: Option<f64>,
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
    /// `(key, value)` for each scalar filter-state key to write, key without the `wasm.` prefix.
    pub fn scalar_entries(&self, config: &Config) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(24);
        let mut put = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                if config.scalar_keys.wants(key) {
                    out.push((format!("{STRUCT_PROPERTY}.{key}"), v));
                }
            }
        };
        put("decision", Some(self.decision.as_str().to_string()));
        put("reason", Some(self.reason.clone()));
        put("correlation_id", Some(self.correlation_id.clone()));
        for (dim, value) in &self.dimensions {
            put(dim, value.clone());
        }
        put("sources", Some(self.sources.clone()));
        put("provider", Some(self.provider.clone()));
        put("operation", Some(self.operation.clone()));
        put("request_model", self.request_model.clone());
        put("response_model", self.response_model.clone());
        put("response_id", self.response_id.clone());
        put("stream", self.stream.map(|s| s.to_string()));
        put("input_tokens", self.tokens.input.map(|n| n.to_string()));
        put("output_tokens", self.tokens.output.map(|n| n.to_string()));
        put("cached_input_tokens", self.tokens.cached_input.map(|n| n.to_string()));
        put("reasoning_tokens", self.tokens.reasoning.map(|n| n.to_string()));
        put("usage_status", self.usage_status.map(|s| s.as_str().to_string()));
        put("cost_usd", self.cost_usd.map(format_cost));
        out
    }

    /// The structured record as serialized `google.protobuf.Struct`, with OpenTelemetry names where
    /// they exist and `ai_attribution.*` for the rest.
    pub fn structured(&self) -> Vec<u8> {
        let mut fields: Vec<(String, StructValue)> = Vec::with_capacity(24);
        let mut text = |key: &str, value: Option<&str>| {
            if let Some(v) = value {
                fields.push((key.to_string(), StructValue::String(v.to_string())));
            }
        };
        text("ai_attribution.decision", Some(self.decision.as_str()));
        text("ai_attribution.reason", Some(&self.reason));
        text("ai_attribution.correlation_id", Some(&self.correlation_id));
        for (dim, value) in &self.dimensions {
            let key = match dim.as_str() {
                "user" => "user.id".to_string(),
                "session" => "session.id".to_string(),
                other => format!("ai_attribution.{other}"),
            };
            text(&key, value.as_deref());
        }
        text("ai_attribution.sources", Some(&self.sources));
        text("gen_ai.provider.name", Some(&self.provider));
        text("gen_ai.operation.name", Some(&self.operation));
        text("gen_ai.request.model", self.request_model.as_deref());
        text("gen_ai.response.model", self.response_model.as_deref());
        text("gen_ai.response.id", self.response_id.as_deref());
        text(
            "ai_attribution.usage_status",
            self.usage_status.map(UsageStatus::as_str),
        );
        if let Some(stream) = self.stream {
            fields.push(("ai_attribution.stream".into(), StructValue::Bool(stream)));
        }
        for (key, n) in [
            ("gen_ai.usage.input_tokens", self.tokens.input),
            ("gen_ai.usage.output_tokens", self.tokens.output),
            ("gen_ai.usage.cache_read.input_tokens", self.tokens.cached_input),
            ("gen_ai.usage.reasoning.output_tokens", self.tokens.reasoning),
        ] {
            if let Some(n) = n {
                fields.push((key.into(), StructValue::Number(n as f64)));
            }
        }
        if let Some(cost) = self.cost_usd {
            fields.push(("ai_attribution.cost_usd".into(), StructValue::Number(cost)));
        }
        encode_struct(&fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            decision: Decision::Attributed,
            reason: String::new(),
            correlation_id: "c-1".into(),
            dimensions: vec![
                ("business_unit".into(), Some("finance".into())),
                ("user".into(), Some("alice".into())),
                ("session".into(), None),
            ],
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
            cost_usd: Some(0.0001875),
        }
    }

    #[test]
    fn scalar_keys_skip_absent_values() {
        let c = Config::parse(b"{}").unwrap();
        let e = record().scalar_entries(&c);
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"ai_attribution.decision"));
        assert!(keys.contains(&"ai_attribution.business_unit"));
        assert!(!keys.contains(&"ai_attribution.session"));
        assert!(!keys.contains(&"ai_attribution.response_model"));
        assert!(e.contains(&("ai_attribution.cost_usd".into(), "0.0001875".into())));
        assert!(e.contains(&("ai_attribution.input_tokens".into(), "27".into())));
    }

    #[test]
    fn scalar_keys_can_be_restricted() {
        let c = Config::parse(br#"{"record":{"scalar_keys":["decision","user"]}}"#).unwrap();
        let e = record().scalar_entries(&c);
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["ai_attribution.decision", "ai_attribution.user"]);
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
    fn structured_record_uses_otel_names() {
        let bytes = record().structured();
        let text = String::from_utf8_lossy(&bytes);
        for key in [
            "user.id",
            "ai_attribution.business_unit",
            "gen_ai.provider.name",
            "gen_ai.usage.input_tokens",
        ] {
            assert!(text.contains(key), "{key}");
        }
        assert!(!text.contains("session.id"));
    }
}
