//! Plugin configuration (SPEC §3): parsed once in `on_configure`, validated, and compiled.
//!
//! Every error names the path of the offending field, e.g.
//! `dimensions.user[1]: unknown source kind "heder" ...`.

use crate::provider::{ExtraRoute, ProviderSet, PROVIDER_NAMES};
use crate::source::{is_header_name, Source};
use crate::value::{check_str, Checked};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A configuration error: the field path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JwtFrom {
    #[default]
    JwtAuthn,
    Header,
    BearerUnverified,
}

// ---- the JSON shape (serde) ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    mode: Mode,
    #[serde(default = "default_dimensions")]
    dimensions: BTreeMap<String, Vec<String>>,
    #[serde(default = "default_require")]
    require: Vec<Vec<String>>,
    #[serde(default)]
    header_trust: RawHeaderTrust,
    #[serde(default)]
    jwt: RawJwt,
    #[serde(default)]
    api_keys: RawApiKeys,
    #[serde(default)]
    model_calls: RawModelCalls,
    #[serde(default)]
    reject: RawReject,
    #[serde(default)]
    correlation: RawCorrelation,
    #[serde(default)]
    usage: RawUsage,
    #[serde(default)]
    pricing: BTreeMap<String, RawPrice>,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    record: RawRecord,
    #[serde(default)]
    limits: RawLimits,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderTrust {
    #[serde(default)]
    peers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    #[serde(default)]
    from: JwtFrom,
    #[serde(default = "default_payload_key")]
    payload_key: String,
    #[serde(default = "default_jwt_header")]
    header: String,
}

impl Default for RawJwt {
    fn default() -> Self {
        RawJwt {
            from: JwtFrom::default(),
            payload_key: default_payload_key(),
            header: default_jwt_header(),
        }
    }
}

fn default_payload_key() -> String {
    "jwt_payload".to_string()
}

fn default_jwt_header() -> String {
    "x-jwt-payload".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKeys {
    #[serde(default = "default_api_key_headers")]
    headers: Vec<String>,
    #[serde(default)]
    owners: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for RawApiKeys {
    fn default() -> Self {
        RawApiKeys {
            headers: default_api_key_headers(),
            owners: BTreeMap::new(),
        }
    }
}

fn default_api_key_headers() -> Vec<String> {
    ["authorization", "x-api-key", "api-key"].map(String::from).to_vec()
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum RawProviders {
    #[default]
    #[serde(skip)]
    Unset,
    Word(String),
    List(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelCalls {
    #[serde(default)]
    providers: RawProviders,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    extra: Vec<RawExtra>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtra {
    path_prefix: String,
    provider: String,
    #[serde(default = "default_extra_operation")]
    operation: String,
}

fn default_extra_operation() -> String {
    "chat".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReject {
    #[serde(default = "default_reject_status")]
    status: u32,
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
struct RawCorrelation {
    #[serde(default = "default_correlation_header")]
    header: String,
    #[serde(default)]
    propagate: Vec<String>,
    #[serde(default)]
    baggage: bool,
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
struct RawUsage {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    force_stream_usage: bool,
}

impl Default for RawUsage {
    fn default() -> Self {
        RawUsage {
            enabled: true,
            force_stream_usage: false,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    input: f64,
    output: f64,
    #[serde(default)]
    cached_input: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_metric_labels")]
    labels: Vec<String>,
    #[serde(default = "default_max_label_values")]
    max_label_values: u32,
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
struct RawRecord {
    #[serde(default)]
    scalar_keys: RawScalarKeys,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum RawScalarKeys {
    #[default]
    #[serde(skip)]
    Unset,
    Word(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "default_max_value_bytes")]
    max_value_bytes: usize,
    #[serde(default = "default_body_decision_bytes")]
    body_decision_bytes: usize,
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

// ---- the compiled configuration ----------------------------------------------------------

/// A dimension and its ordered sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    pub name: String,
    pub sources: Vec<Source>,
}

/// Per-million-token prices for models matching a pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
}

/// A pricing pattern: an exact model name or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq)]
pub struct PricePattern {
    pub pattern: String,
    pub price: Price,
}

/// The scalar record keys the operator wants written (SPEC §5).
pub const FIXED_RECORD_KEYS: [&str; 16] = [
    "decision",
    "reason",
    "correlation_id",
    "sources",
    "provider",
    "operation",
    "request_model",
    "response_model",
    "response_id",
    "stream",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "usage_status",
    "cost_usd",
];

/// Which scalar keys to write.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarKeys {
    All,
    Only(BTreeSet<String>),
}

impl ScalarKeys {
    pub fn wants(&self, key: &str) -> bool {
        match self {
            ScalarKeys::All => true,
            ScalarKeys::Only(set) => set.contains(key),
        }
    }
}

/// The validated, compiled configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mode: Mode,
    /// Sorted by name.
    pub dimensions: Vec<Dimension>,
    /// Alternatives, each a list of indexes into `dimensions`.
    pub require: Vec<Vec<usize>>,
    pub trusted_peers: Vec<String>,
    pub jwt_from: JwtFrom,
    pub jwt_payload_key: String,
    pub jwt_header: String,
    pub api_key_headers: Vec<String>,
    pub api_key_owners: BTreeMap<String, BTreeMap<String, String>>,
    pub providers: ProviderSet,
    pub hosts: Vec<String>,
    pub extra_routes: Vec<ExtraRoute>,
    pub reject_status: u32,
    pub correlation_header: String,
    /// Indexes into `dimensions`.
    pub propagate: Vec<usize>,
    pub baggage: bool,
    pub usage_enabled: bool,
    pub force_stream_usage: bool,
    /// Exact patterns first, then prefixes longest first.
    pub pricing: Vec<PricePattern>,
    pub metrics_enabled: bool,
    pub metric_labels: Vec<String>,
    pub max_label_values: usize,
    pub scalar_keys: ScalarKeys,
    pub max_value_bytes: usize,
    /// How much of the body a decision waiting on `body:` sources may hold before deciding.
    pub body_decision_bytes: usize,
    /// True when some dimension reads the request body.
    pub needs_body: bool,
}

fn is_dimension_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Config {
    /// Parses and validates the plugin configuration. Empty input means all defaults.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|_| err("", "configuration is not UTF-8"))?;
        let text = if text.trim().is_empty() { "{}" } else { text };
        if !text.trim_start().starts_with('{') {
            return Err(err("", "the configuration must be a JSON object"));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = strip_position(&inner.to_string());
            err(if path == "." { String::new() } else { path }, message)
        })?;
        de.end().map_err(|e| err("", strip_position(&e.to_string())))?;
        compile(raw)
    }
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}

fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    let max_value_bytes = raw.limits.max_value_bytes;
    if !(1..=8192).contains(&max_value_bytes) {
        return Err(err("limits.max_value_bytes", "must be between 1 and 8192"));
    }
    if !(1024..=1 << 30).contains(&raw.limits.body_decision_bytes) {
        return Err(err("limits.body_decision_bytes", "must be between 1024 and 1073741824"));
    }

    let mut dimensions = Vec::new();
    for (name, sources) in &raw.dimensions {
        let path = format!("dimensions.{name}");
        if !is_dimension_name(name) {
            return Err(err(path, "dimension names are [a-z][a-z0-9_]* (at most 64 bytes)"));
        }
        if FIXED_RECORD_KEYS.contains(&name.as_str()) {
            return Err(err(
                path,
                "this name is a record key of its own; choose another dimension name",
            ));
        }
        if sources.is_empty() {
            return Err(err(path, "needs at least one source"));
        }
        let mut compiled = Vec::new();
        for (i, text) in sources.iter().enumerate() {
            let spath = format!("dimensions.{name}[{i}]");
            let source = Source::parse(text).map_err(|e| err(&spath, e.to_string()))?;
            if let Source::Static(v) = &source {
                if !matches!(check_str(v, max_value_bytes), Checked::Valid(_)) {
                    return Err(err(
                        spath,
                        "a static value must be non-empty, printable and within limits.max_value_bytes",
                    ));
                }
            }
            compiled.push(source);
        }
        dimensions.push(Dimension {
            name: name.clone(),
            sources: compiled,
        });
    }
    let index_of = |name: &str| dimensions.iter().position(|d| d.name == name);

    if raw.require.is_empty() {
        return Err(err("require", "needs at least one alternative (a list of dimensions)"));
    }
    let mut require = Vec::new();
    for (i, alternative) in raw.require.iter().enumerate() {
        if alternative.is_empty() {
            return Err(err(
                format!("require[{i}]"),
                "an alternative needs at least one dimension",
            ));
        }
        let mut dims = Vec::new();
        for (j, name) in alternative.iter().enumerate() {
            let idx = index_of(name).ok_or_else(|| {
                err(
                    format!("require[{i}][{j}]"),
                    format!("\"{name}\" is not a configured dimension"),
                )
            })?;
            if !dims.contains(&idx) {
                dims.push(idx);
            }
        }
        require.push(dims);
    }

    for (i, peer) in raw.header_trust.peers.iter().enumerate() {
        if !peer.starts_with("spiffe://") || peer.len() <= "spiffe://".len() {
            return Err(err(
                format!("header_trust.peers[{i}]"),
                "must be a SPIFFE ID (spiffe://trust-domain/path)",
            ));
        }
    }

    if raw.jwt.payload_key.is_empty() {
        return Err(err("jwt.payload_key", "must not be empty"));
    }
    if !is_header_name(&raw.jwt.header) {
        return Err(err("jwt.header", "not a valid lower-case header name"));
    }

    let mut api_key_headers = Vec::new();
    for (i, h) in raw.api_keys.headers.iter().enumerate() {
        let lower = h.to_ascii_lowercase();
        if !is_header_name(&lower) {
            return Err(err(format!("api_keys.headers[{i}]"), "not a valid header name"));
        }
        api_key_headers.push(lower);
    }
    for (fp, fields) in &raw.api_keys.owners {
        let path = format!("api_keys.owners.{fp}");
        let hex = fp.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(err(
                path,
                "keys are fingerprints: \"sha256:\" + the first 12 lower-case hex digits of the key's SHA-256",
            ));
        }
        for (field, value) in fields {
            if !matches!(check_str(value, max_value_bytes), Checked::Valid(_)) {
                return Err(err(
                    format!("{path}.{field}"),
                    "must be non-empty, printable and within limits.max_value_bytes",
                ));
            }
        }
    }

    let providers = match &raw.model_calls.providers {
        RawProviders::Unset => ProviderSet::all(),
        RawProviders::Word(w) if w == "all" => ProviderSet::all(),
        RawProviders::Word(w) => {
            return Err(err(
                "model_calls.providers",
                format!("expected \"all\" or a list of provider names, got \"{w}\""),
            ))
        }
        RawProviders::List(list) => {
            let mut set = ProviderSet::none();
            for (i, name) in list.iter().enumerate() {
                if !set.enable(name) {
                    return Err(err(
                        format!("model_calls.providers[{i}]"),
                        format!(
                            "unknown provider \"{name}\" (expected one of {})",
                            PROVIDER_NAMES.join(", ")
                        ),
                    ));
                }
            }
            set
        }
    };
    let mut hosts = Vec::new();
    for (i, host) in raw.model_calls.hosts.iter().enumerate() {
        let h = host.to_ascii_lowercase();
        let body = h.strip_prefix("*.").unwrap_or(&h);
        if body.is_empty()
            || !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(err(
                format!("model_calls.hosts[{i}]"),
                "expected a host name or \"*.domain\" (no port)",
            ));
        }
        hosts.push(h);
    }
    let mut extra_routes = Vec::new();
    for (i, extra) in raw.model_calls.extra.iter().enumerate() {
        let path = format!("model_calls.extra[{i}]");
        if !extra.path_prefix.starts_with('/') {
            return Err(err(format!("{path}.path_prefix"), "must start with '/'"));
        }
        if !matches!(check_str(&extra.provider, 64), Checked::Valid(_)) || extra.provider.contains(';') {
            return Err(err(
                format!("{path}.provider"),
                "must be a non-empty printable name without ';' (at most 64 bytes)",
            ));
        }
        if !is_dimension_name(&extra.operation) {
            return Err(err(format!("{path}.operation"), "must be [a-z][a-z0-9_]*"));
        }
        extra_routes.push(ExtraRoute {
            path_prefix: extra.path_prefix.clone(),
            provider: extra.provider.clone(),
            operation: extra.operation.clone(),
        });
    }

    if !(400..=599).contains(&raw.reject.status) {
        return Err(err("reject.status", "must be an HTTP error status between 400 and 599"));
    }

    let correlation_header = raw.correlation.header.to_ascii_lowercase();
    if !is_header_name(&correlation_header) {
        return Err(err("correlation.header", "not a valid header name"));
    }
    let mut propagate = Vec::new();
    for (i, name) in raw.correlation.propagate.iter().enumerate() {
        let idx = index_of(name).ok_or_else(|| {
            err(
                format!("correlation.propagate[{i}]"),
                format!("\"{name}\" is not a configured dimension"),
            )
        })?;
        propagate.push(idx);
    }

    let mut pricing = Vec::new();
    for (pattern, price) in &raw.pricing {
        let path = format!("pricing.{pattern}");
        let stem = pattern.strip_suffix('*').unwrap_or(pattern);
        if pattern.is_empty() || stem.contains('*') {
            return Err(err(
                path,
                "a pattern is an exact model name or a prefix ending in a single trailing '*'",
            ));
        }
        for (field, v) in [
            ("input", Some(price.input)),
            ("output", Some(price.output)),
            ("cached_input", price.cached_input),
        ] {
            if let Some(v) = v {
                if !v.is_finite() || v < 0.0 {
                    return Err(err(
                        format!("{path}.{field}"),
                        "must be a non-negative number (USD per million tokens)",
                    ));
                }
            }
        }
        pricing.push(PricePattern {
            pattern: pattern.clone(),
            price: Price {
                input: price.input,
                output: price.output,
                cached_input: price.cached_input,
            },
        });
    }
    // Exact names first, then the longest prefix.
    pricing.sort_by_key(|p| (p.pattern.ends_with('*'), std::cmp::Reverse(p.pattern.len())));

    let mut metric_labels = Vec::new();
    for (i, label) in raw.metrics.labels.iter().enumerate() {
        if label != "provider" && label != "model" && index_of(label).is_none() {
            return Err(err(
                format!("metrics.labels[{i}]"),
                format!("\"{label}\" is neither \"provider\", \"model\" nor a configured dimension"),
            ));
        }
        if !metric_labels.contains(label) {
            metric_labels.push(label.clone());
        }
    }
    if raw.metrics.max_label_values == 0 || raw.metrics.max_label_values > 10_000 {
        return Err(err("metrics.max_label_values", "must be between 1 and 10000"));
    }

    let scalar_keys = match &raw.record.scalar_keys {
        RawScalarKeys::Unset => ScalarKeys::All,
        RawScalarKeys::Word(w) if w == "all" => ScalarKeys::All,
        RawScalarKeys::Word(w) => {
            return Err(err(
                "record.scalar_keys",
                format!("expected \"all\" or a list of keys, got \"{w}\""),
            ))
        }
        RawScalarKeys::List(list) => {
            let mut set = BTreeSet::new();
            for (i, key) in list.iter().enumerate() {
                let known = FIXED_RECORD_KEYS.contains(&key.as_str()) || index_of(key).is_some();
                if !known {
                    return Err(err(
                        format!("record.scalar_keys[{i}]"),
                        format!("\"{key}\" is neither a record key nor a configured dimension"),
                    ));
                }
                set.insert(key.clone());
            }
            ScalarKeys::Only(set)
        }
    };

    let needs_body = dimensions
        .iter()
        .any(|d| d.sources.iter().any(|s| matches!(s, Source::Body(_))));

    Ok(Config {
        mode: raw.mode,
        dimensions,
        require,
        trusted_peers: raw.header_trust.peers,
        jwt_from: raw.jwt.from,
        jwt_payload_key: raw.jwt.payload_key,
        jwt_header: raw.jwt.header,
        api_key_headers,
        api_key_owners: raw.api_keys.owners,
        providers,
        hosts,
        extra_routes,
        reject_status: raw.reject.status,
        correlation_header,
        propagate,
        baggage: raw.correlation.baggage,
        usage_enabled: raw.usage.enabled,
        force_stream_usage: raw.usage.force_stream_usage,
        pricing,
        metrics_enabled: raw.metrics.enabled,
        metric_labels,
        max_label_values: raw.metrics.max_label_values as usize,
        scalar_keys,
        max_value_bytes,
        body_decision_bytes: raw.limits.body_decision_bytes,
        needs_body,
    })
}

impl Config {
    /// The price of a model, by exact name first, then the longest matching prefix.
    pub fn price_for(&self, model: &str) -> Option<Price> {
        self.pricing
            .iter()
            .find(|p| match p.pattern.strip_suffix('*') {
                Some(prefix) => model.starts_with(prefix),
                None => p.pattern == model,
            })
            .map(|p| p.price)
    }

    pub fn dimension_index(&self, name: &str) -> Option<usize> {
        self.dimensions.iter().position(|d| d.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, String> {
        Config::parse(json.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_config_uses_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.dimensions.len(), 2);
        assert_eq!(c.require.len(), 2);
        assert_eq!(c.reject_status, 403);
        assert_eq!(c.correlation_header, "x-ai-correlation-id");
        assert_eq!(c.max_value_bytes, 256);
        assert_eq!(c.scalar_keys, ScalarKeys::All);
        assert!(c.usage_enabled);
    }

    #[test]
    fn unknown_source_kind_names_the_path() {
        let e = parse(r#"{"dimensions":{"user":["header:x-user","heder:x"]},"require":[["user"]]}"#).unwrap_err();
        assert!(
            e.starts_with("dimensions.user[1]: unknown source kind \"heder\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_names_the_path() {
        let e = parse(r#"{"correlation":{"headr":"x"}}"#).unwrap_err();
        assert!(e.starts_with("correlation.headr: unknown field `headr`"), "{e}");
        let e = parse(r#"{"modee":"audit"}"#).unwrap_err();
        assert!(e.starts_with("modee: unknown field"), "{e}");
    }

    #[test]
    fn bad_values_name_the_path() {
        let cases = [
            (r#"{"mode":"block"}"#, "mode: unknown variant `block`"),
            (r#"{"reject":{"status":200}}"#, "reject.status: must be"),
            (
                r#"{"require":[["nobody"]]}"#,
                "require[0][0]: \"nobody\" is not a configured dimension",
            ),
            (
                r#"{"correlation":{"propagate":["team"]}}"#,
                "correlation.propagate[0]: \"team\"",
            ),
            (r#"{"limits":{"max_value_bytes":0}}"#, "limits.max_value_bytes: must be"),
            (
                r#"{"pricing":{"gpt-*o":{"input":1,"output":2}}}"#,
                "pricing.gpt-*o: a pattern",
            ),
            (
                r#"{"pricing":{"gpt-4o":{"input":-1,"output":2}}}"#,
                "pricing.gpt-4o.input: must be",
            ),
            (
                r#"{"pricing":{"gpt-4o":{"input":1}}}"#,
                "pricing.gpt-4o: missing field `output`",
            ),
            (
                r#"{"model_calls":{"providers":["openai","foo"]}}"#,
                "model_calls.providers[1]: unknown provider \"foo\"",
            ),
            (
                r#"{"model_calls":{"extra":[{"path_prefix":"llm","provider":"x"}]}}"#,
                "model_calls.extra[0].path_prefix: must start",
            ),
            (
                r#"{"dimensions":{"User":["static:x"]},"require":[["User"]]}"#,
                "dimensions.User: dimension names",
            ),
            (
                r#"{"dimensions":{"decision":["static:x"]},"require":[["decision"]]}"#,
                "dimensions.decision: this name",
            ),
            (
                r#"{"dimensions":{"user":[]}}"#,
                "dimensions.user: needs at least one source",
            ),
            (
                r#"{"dimensions":{"user":["static: "]}}"#,
                "dimensions.user[0]: a static value",
            ),
            (
                r#"{"record":{"scalar_keys":["nope"]}}"#,
                "record.scalar_keys[0]: \"nope\"",
            ),
            (r#"{"metrics":{"labels":["team"]}}"#, "metrics.labels[0]: \"team\""),
            (
                r#"{"header_trust":{"peers":["corp/ns/x"]}}"#,
                "header_trust.peers[0]: must be a SPIFFE ID",
            ),
            (
                r#"{"api_keys":{"owners":{"abc":{"team":"x"}}}}"#,
                "api_keys.owners.abc: keys are fingerprints",
            ),
            (r#"{"mode":"audit"} x"#, "trailing characters"),
            (r#"[1]"#, "the configuration must be a JSON object"),
        ];
        for (json, want) in cases {
            let e = parse(json).unwrap_err();
            assert!(e.starts_with(want), "{json}: got {e}");
        }
    }

    #[test]
    fn pricing_prefers_exact_then_longest_prefix() {
        let c = parse(r#"{"pricing":{"gpt-4o*":{"input":2.5,"output":10},"gpt-4o-mini*":{"input":0.15,"output":0.6},"gpt-4o-mini":{"input":1,"output":1}}}"#).unwrap();
        assert_eq!(c.price_for("gpt-4o-mini").map(|p| p.input), Some(1.0));
        assert_eq!(c.price_for("gpt-4o-mini-2024").map(|p| p.input), Some(0.15));
        assert_eq!(c.price_for("gpt-4o-2024-08-06").map(|p| p.input), Some(2.5));
        assert_eq!(c.price_for("claude"), None);
    }

    #[test]
    fn spec_example_parses_except_unsupported_kinds() {
        let json = r#"{
          "mode": "audit",
          "dimensions": {
            "user": ["header:x-user-id"],
            "service_account": ["header:x-service-account"],
            "app": ["header:x-app-id", "property:xds.route_name"],
            "session": ["header:x-session-id"],
            "business_unit": ["header:x-business-unit", "node:BUSINESS_UNIT", "static:unassigned"]
          },
          "require": [["user", "business_unit"], ["service_account", "business_unit"]],
          "model_calls": { "providers": "all", "extra": [{ "path_prefix": "/llm/", "provider": "internal" }] },
          "reject": { "status": 403 },
          "correlation": { "header": "x-ai-correlation-id", "propagate": ["business_unit"], "baggage": false },
          "usage": { "enabled": true, "force_stream_usage": false },
          "pricing": { "gpt-4o*": { "input": 2.50, "output": 10.00, "cached_input": 1.25 } },
          "metrics": { "enabled": true, "labels": ["provider", "business_unit"], "max_label_values": 100 },
          "record": { "scalar_keys": "all" },
          "limits": { "max_value_bytes": 256 }
        }"#;
        let c = parse(json).unwrap();
        assert_eq!(c.mode, Mode::Audit);
        assert_eq!(
            c.dimensions.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["app", "business_unit", "service_account", "session", "user"]
        );
        assert_eq!(c.require, vec![vec![4, 1], vec![2, 1]]);
        assert_eq!(c.propagate, vec![1]);
    }
}
