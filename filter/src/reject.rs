//! The rejection reply (SPEC §4): an OpenAI-style error envelope every SDK can show.

use crate::config::Config;
use crate::policy::Attribution;
use serde_json::json;

/// Response code details Envoy logs for a rejected call (`%RESPONSE_CODE_DETAILS%`).
pub const RESPONSE_CODE_DETAILS: &str = "ai_attribution_rejected";

/// A local reply for Envoy to send instead of forwarding the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Builds the rejection reply. It names dimensions and source kinds, never a header value.
pub fn rejection(config: &Config, attribution: &Attribution, correlation_id: &str) -> LocalReply {
    let name = |i: &usize| config.dimensions.get(*i).map(|d| d.name.as_str()).unwrap_or("?");
    let missing: Vec<&str> = attribution.missing.iter().map(name).collect();
    let alternatives: Vec<String> = config
        .require
        .iter()
        .map(|alt| alt.iter().map(name).collect::<Vec<_>>().join(" + "))
        .collect();
    let mut message = format!(
        "This model call cannot be attributed: missing {}. Provide one of: {}.",
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
    let body = json!({
        "error": {
            "type": "attribution_required",
            "code": "unattributed_model_call",
            "message": message,
            "param": null,
            "missing": missing,
            "correlation_id": correlation_id,
        }
    });
    LocalReply {
        status: config.reject_status,
        headers: vec![
            ("content-type".to_string(), "application/json".to_string()),
            (config.correlation_header.clone(), correlation_id.to_string()),
        ],
        body: body.to_string(),
    }
}
