//! The configuration's JSON shape, as serde reads it: unknown fields are errors, and every field
//! has its default here. `compile.rs` turns it into the checked [`super::Config`].

use super::quota::{RawException, RawQuota};
use super::{JwtFrom, Mode};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "default_dimensions")]
    pub dimensions: BTreeMap<String, Vec<String>>,
    #[serde(default = "default_require")]
    pub require: Vec<Vec<String>>,
    #[serde(default)]
    pub header_trust: RawHeaderTrust,
    #[serde(default)]
    pub jwt: RawJwt,
    #[serde(default)]
    pub api_keys: RawApiKeys,
    #[serde(default)]
    pub peer: RawPeer,
    #[serde(default)]
    pub model_calls: RawModelCalls,
    #[serde(default)]
    pub mcp: RawMcp,
    #[serde(default)]
    pub quota: RawQuota,
    #[serde(default)]
    pub exceptions: Vec<RawException>,
    #[serde(default)]
    pub reject: RawReject,
    #[serde(default)]
    pub correlation: RawCorrelation,
    #[serde(default)]
    pub usage: RawUsage,
    #[serde(default)]
    pub pricing: BTreeMap<String, RawPrice>,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub record: RawRecord,
    #[serde(default)]
    pub privacy: RawPrivacy,
    #[serde(default)]
    pub limits: RawLimits,
}

fn default_dimensions() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([
        ("user".to_string(), vec!["header:x-user-id".to_string()]),
        (
            "service_account".to_string(),
            vec!["header:x-service-account".to_string()],
        ),
    ])
}

fn default_require() -> Vec<Vec<String>> {
    vec![vec!["user".to_string()], vec!["service_account".to_string()]]
}

fn yes() -> bool {
    true
}

/// `"all"`, or a list.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub(super) enum AllOr<T> {
    #[default]
    #[serde(skip)]
    Unset,
    Word(String),
    List(Vec<T>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderTrust {
    #[serde(default)]
    pub peers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwt {
    #[serde(default)]
    pub from: JwtFrom,
    #[serde(default = "default_payload_key")]
    pub payload_key: String,
    #[serde(default = "default_jwt_header")]
    pub header: String,
    /// Unverified claims (`bearer_unverified`) count toward `require` only when this is set.
    #[serde(default)]
    pub unverified_claims_satisfy_require: bool,
    /// Whether the token or payload header the claims were read from goes on upstream.
    #[serde(default)]
    pub forward: bool,
}

impl Default for RawJwt {
    fn default() -> Self {
        RawJwt {
            from: JwtFrom::default(),
            payload_key: default_payload_key(),
            header: default_jwt_header(),
            unverified_claims_satisfy_require: false,
            forward: false,
        }
    }
}

fn default_payload_key() -> String {
    "jwt_payload".to_string()
}

fn default_jwt_header() -> String {
    "x-jwt-payload".to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiKeys {
    /// `"by_provider"` (the default): each provider's own key header; or a list read for every call.
    #[serde(default)]
    pub headers: AllOr<String>,
    #[serde(default)]
    pub owners: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    /// Trust domains whose SPIFFE IDs yield `spiffe_namespace` and `spiffe_service_account`.
    #[serde(default)]
    pub trust_domains: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModelCalls {
    #[serde(default)]
    pub providers: AllOr<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub model_hosts: Vec<String>,
    #[serde(default)]
    pub free: Vec<RawFree>,
    #[serde(default)]
    pub extra: Vec<RawExtra>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMcp {
    #[serde(default)]
    pub endpoints: Vec<RawMcpEndpoint>,
    /// Alternatives for tool calls; absent: the top-level `require`.
    #[serde(default)]
    pub require: Option<Vec<Vec<String>>>,
    #[serde(default = "default_mcp_methods")]
    pub methods: Vec<String>,
    #[serde(default = "default_header_mismatch")]
    pub header_mismatch: String,
}

impl Default for RawMcp {
    fn default() -> Self {
        RawMcp {
            endpoints: Vec::new(),
            require: None,
            methods: default_mcp_methods(),
            header_mismatch: default_header_mismatch(),
        }
    }
}

fn default_mcp_methods() -> Vec<String> {
    ["tools/call", "resources/read", "prompts/get"]
        .map(String::from)
        .to_vec()
}

fn default_header_mismatch() -> String {
    "record".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMcpEndpoint {
    pub path_prefix: String,
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFree {
    #[serde(default = "any_method")]
    pub method: String,
    pub path: String,
}

fn any_method() -> String {
    "*".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExtra {
    pub path_prefix: String,
    pub provider: String,
    #[serde(default = "default_extra_operation")]
    pub operation: String,
}

fn default_extra_operation() -> String {
    "chat".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReject {
    #[serde(default = "default_reject_status")]
    pub status: u32,
}

impl Default for RawReject {
    fn default() -> Self {
        RawReject {
            status: default_reject_status(),
        }
    }
}

fn default_reject_status() -> u32 {
    403
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCorrelation {
    #[serde(default = "default_correlation_header")]
    pub header: String,
    #[serde(default)]
    pub propagate: Vec<String>,
    #[serde(default)]
    pub baggage: bool,
}

impl Default for RawCorrelation {
    fn default() -> Self {
        RawCorrelation {
            header: default_correlation_header(),
            propagate: Vec::new(),
            baggage: false,
        }
    }
}

fn default_correlation_header() -> String {
    "x-ai-correlation-id".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUsage {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub force_stream_usage: bool,
    /// Ask the upstream for an uncompressed answer on model calls.
    #[serde(default = "yes")]
    pub request_identity_encoding: bool,
}

impl Default for RawUsage {
    fn default() -> Self {
        RawUsage {
            enabled: true,
            force_stream_usage: false,
            request_identity_encoding: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrice {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_metric_labels")]
    pub labels: Vec<String>,
    #[serde(default = "default_max_label_values")]
    pub max_label_values: u32,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            enabled: true,
            labels: default_metric_labels(),
            max_label_values: default_max_label_values(),
        }
    }
}

fn default_metric_labels() -> Vec<String> {
    vec!["provider".to_string()]
}

fn default_max_label_values() -> u32 {
    100
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecord {
    #[serde(default)]
    pub scalar_keys: AllOr<String>,
    /// Record keys left out of both forms (scalar keys and the structured record).
    #[serde(default)]
    pub redact: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrivacy {
    /// Dimensions whose values leave the filter only as HMAC-SHA256 pseudonyms.
    #[serde(default)]
    pub pseudonymise: Vec<String>,
    /// The VM environment variable that holds the HMAC key (never the plugin configuration).
    #[serde(default = "default_key_env")]
    pub key_env: String,
}

impl Default for RawPrivacy {
    fn default() -> Self {
        RawPrivacy {
            pseudonymise: Vec::new(),
            key_env: default_key_env(),
        }
    }
}

fn default_key_env() -> String {
    "AI_ATTRIBUTION_PSEUDONYM_KEY".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    #[serde(default = "default_max_value_bytes")]
    pub max_value_bytes: usize,
    #[serde(default = "default_body_decision_bytes")]
    pub body_decision_bytes: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_value_bytes: default_max_value_bytes(),
            body_decision_bytes: default_body_decision_bytes(),
        }
    }
}

/// 768 KiB: a quarter below Envoy's default 1 MiB `per_connection_buffer_limit_bytes`, since one body
/// callback may add tens of kilobytes at once and Envoy answers 413 the moment its buffer overflows.
fn default_body_decision_bytes() -> usize {
    768 * 1024
}

fn default_max_value_bytes() -> usize {
    256
}
