//! Plugin configuration (SPEC §3): parsed once in `on_configure`, validated, and compiled.
//!
//! Every error names the path of the offending field, e.g.
//! `dimensions.user[1]: unknown source kind "heder" ...`.

mod compile;
mod locate;
mod quota;
mod raw;

pub use quota::{parse_until, Budget, BudgetKey, Exception, Hits, KeySource, QuotaConfig};

use crate::authority::HostPattern;
use crate::hmac::HmacKey;
use crate::json_scan::JsonPaths;
use crate::provider::{ExtraRoute, FreeEndpoint, ProviderSet};
use crate::source::Source;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;

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

// ---- the compiled configuration ----------------------------------------------------------

/// A dimension and its ordered sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    pub name: String,
    pub sources: Vec<Source>,
    /// Its key names in the record.
    pub keys: crate::record::DimensionKeys,
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

/// How `jwt:` sources read claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub from: JwtFrom,
    pub payload_key: String,
    pub header: String,
    /// Unverified claims count toward `require` (they are recorded either way, marked).
    pub unverified_satisfies_require: bool,
    /// The token or payload header the claims came from goes on upstream.
    pub forward: bool,
}

/// Where API keys are read and who owns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeys {
    /// Headers read for every call; `None` reads each API family's own key header.
    pub headers: Option<Vec<String>>,
    /// Full SHA-256 of a key, 64 lower-case hex digits → owner fields.
    pub owners: BTreeMap<String, BTreeMap<String, String>>,
}

/// One MCP endpoint: a path prefix (canonical segments) and, optionally, the hosts it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpEndpoint {
    pub prefix: Vec<String>,
    pub hosts: Vec<HostPattern>,
}

/// Agent tool calls (the `mcp` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConfig {
    pub endpoints: Vec<McpEndpoint>,
    /// Alternatives a call of one of `methods` must satisfy (indexes into `dimensions`).
    pub require: Vec<Vec<usize>>,
    /// JSON-RPC methods that must be attributed; other requests are recorded and pass.
    pub methods: Vec<String>,
    /// `Mcp-Method`/`Mcp-Name` headers that disagree with the body make the call a 400.
    pub reject_header_mismatch: bool,
}

/// A metric label besides `provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricLabel {
    Model,
    Dimension(usize),
}

/// Pseudonymised dimensions (the `privacy` section): their values leave the filter (record,
/// metric labels, upstream headers, budget keys) only as HMAC-SHA256 pseudonyms.
#[derive(Debug, Clone, Default)]
pub struct Privacy {
    /// Indexes into `dimensions`.
    pub pseudonymised: Vec<usize>,
    /// The VM environment variable the key is read from.
    pub key_env: String,
    /// The key, once read from the VM environment ([`Config::load`]).
    pub key: Option<HmacKey>,
}

impl PartialEq for Privacy {
    fn eq(&self, other: &Privacy) -> bool {
        let mark = |p: &Privacy| p.key.as_ref().map(|k| k.mac(b""));
        self.pseudonymised == other.pseudonymised && self.key_env == other.key_env && mark(self) == mark(other)
    }
}

/// The shortest key accepted: a placeholder or a typo is refused, not used.
pub const MIN_KEY_BYTES: usize = 16;

/// The validated, compiled configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mode: Mode,
    /// Sorted by name.
    pub dimensions: Vec<Dimension>,
    /// Alternatives, each a list of indexes into `dimensions`.
    pub require: Vec<Vec<usize>>,
    pub trusted_peers: Vec<String>,
    pub jwt: JwtConfig,
    pub api_keys: ApiKeys,
    /// Trust domains whose workloads yield `peer:spiffe_namespace` and `peer:spiffe_service_account`;
    /// empty means the trust domain of Envoy's own certificate.
    pub peer_trust_domains: Vec<String>,
    pub providers: ProviderSet,
    /// `model_calls.hosts`: recognised paths count only on these hosts.
    pub hosts: Vec<HostPattern>,
    /// `model_calls.model_hosts`: every request to these hosts is an AI event.
    pub model_hosts: Vec<HostPattern>,
    pub free_endpoints: Vec<FreeEndpoint>,
    pub extra_routes: Vec<ExtraRoute>,
    pub mcp: McpConfig,
    pub reject_status: u32,
    pub correlation_header: String,
    /// Indexes into `dimensions`.
    pub propagate: Vec<usize>,
    pub baggage: bool,
    pub usage_enabled: bool,
    pub force_stream_usage: bool,
    /// Model calls ask the upstream for `accept-encoding: identity`.
    pub request_identity_encoding: bool,
    /// Exact patterns first, then prefixes longest first.
    pub pricing: Vec<PricePattern>,
    pub metrics_enabled: bool,
    /// Labels besides `provider`, in configured order.
    pub metric_labels: Vec<MetricLabel>,
    /// Label combinations (series) each metric may take per VM.
    pub max_label_values: usize,
    pub scalar_keys: ScalarKeys,
    /// Record keys written in neither form (a field's scalar name, or a dimension's name).
    pub redact: BTreeSet<String>,
    pub privacy: Privacy,
    pub max_value_bytes: usize,
    /// How much of the body a decision waiting on `body:` sources may hold before deciding.
    pub body_decision_bytes: usize,
    /// True when some dimension reads the request body.
    pub needs_body: bool,
    /// What request bodies are scanned for (see `body::body_paths`), compiled once.
    pub body_paths: Rc<JsonPaths>,
    pub body_sources: Rc<Vec<Vec<String>>>,
    /// Budgets counted by a rate-limit service.
    pub quota: QuotaConfig,
    /// Named, dated exceptions to `require` and to budgets.
    pub exceptions: Vec<Exception>,
}

impl Config {
    /// Parses and validates the plugin configuration. Empty input means all defaults.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|_| err("", "configuration is not UTF-8"))?;
        let text = if text.trim().is_empty() { "{}" } else { text };
        if !text.trim_start().starts_with('{') {
            return Err(err("", "the configuration must be a JSON object"));
        }
        let raw: raw::RawConfig = serde_json::from_str(text).map_err(|e| {
            let message = strip_position(&e.to_string());
            if e.is_eof() || e.is_syntax() && message.starts_with("trailing") {
                return err("", message);
            }
            // serde points at the last byte it read: the value it choked on (so the member is the
            // field to name), or the closing brace of an object that lacks a field (the object is).
            let at = locate::offset_of(text, e.line(), e.column());
            let at = if message.starts_with("missing field") {
                at
            } else {
                at.saturating_sub(1)
            };
            err(locate::path_at(text, at), message)
        })?;
        compile::compile(raw)
    }

    /// Parses the configuration and reads what it needs from the VM environment (`env` looks a
    /// variable up): the pseudonymisation key. What the filter loads; [`Config::parse`] checks
    /// the configuration alone.
    pub fn load(bytes: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut config = Config::parse(bytes)?;
        if config.privacy.pseudonymised.is_empty() {
            return Ok(config);
        }
        let name = config.privacy.key_env.as_str();
        let key = env(name).unwrap_or_default();
        let problem = if key.trim().is_empty() {
            let state = if env(name).is_none() { "not set" } else { "empty" };
            Some(format!(
                "privacy.pseudonymise needs a key, and the environment variable {name} is {state}; set it in the VM \
                 environment (Envoy vm_config.environment_variables, Istio vmConfig.env)"
            ))
        } else if key.len() < MIN_KEY_BYTES {
            Some(format!(
                "the key in {name} is {} bytes; it needs at least {MIN_KEY_BYTES} (e.g. openssl rand -hex 32)",
                key.len()
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(err("privacy.key_env", problem));
        }
        config.privacy.key = Some(HmacKey::new(key.as_bytes()));
        Ok(config)
    }
}

impl Config {
    /// The configuration from the host's read of the plugin configuration buffer: `Err` carries
    /// the host status. No configuration at all (NotFound = 1, Empty = 7) means all defaults; any
    /// other failure is an error, never a silent fall-back to defaults.
    pub fn from_host_read(
        read: Result<Vec<u8>, u32>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        const NOT_FOUND: u32 = 1;
        const EMPTY: u32 = 7;
        match read {
            Ok(bytes) => Config::load(&bytes, env),
            Err(NOT_FOUND | EMPTY) => Config::load(b"", env),
            Err(status) => Err(err(
                "",
                format!("cannot read the plugin configuration (host status {status})"),
            )),
        }
    }
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}

impl Config {
    /// The metric label's name.
    pub fn label_name(&self, label: MetricLabel) -> &str {
        match label {
            MetricLabel::Model => "model",
            MetricLabel::Dimension(i) => self.dimensions.get(i).map_or("", |d| d.name.as_str()),
        }
    }

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

    /// Whether the dimension's values leave the filter only as pseudonyms.
    pub fn is_pseudonymised(&self, dim: usize) -> bool {
        self.privacy.pseudonymised.contains(&dim)
    }

    /// A dimension's value as it may leave the filter: its HMAC-SHA256 pseudonym (64 lower-case
    /// hex digits) when the dimension is pseudonymised, else the value itself. A pseudonymised
    /// dimension without a key (a configuration that was parsed, not loaded) shows nothing,
    /// never the clear value.
    pub fn shown<'a>(&self, dim: usize, value: &'a str) -> Option<Cow<'a, str>> {
        if !self.is_pseudonymised(dim) {
            return Some(Cow::Borrowed(value));
        }
        self.privacy
            .key
            .as_ref()
            .map(|k| Cow::Owned(k.mac_hex(value.as_bytes())))
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
    fn an_unreadable_configuration_is_an_error_not_defaults() {
        let env = |_: &str| None;
        assert!(Config::from_host_read(Ok(b"{}".to_vec()), &env).is_ok());
        assert!(Config::from_host_read(Err(1), &env).is_ok());
        assert!(Config::from_host_read(Err(7), &env).is_ok());
        let e = Config::from_host_read(Err(10), &env).unwrap_err().to_string();
        assert_eq!(e, "cannot read the plugin configuration (host status 10)");
        assert!(Config::from_host_read(Ok(b"{\"mode\":1}".to_vec()), &env).is_err());
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
                "api_keys.owners.abc: keys are \"sha256:\" + the 64",
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
    fn budget_and_exception_names_and_keys_are_checked() {
        let quota = |budgets: &str, exceptions: &str| {
            parse(&format!(
                r#"{{"dimensions":{{"user":["header:x-user-id"]}},"require":[["user"]],
                    "quota":{{"cluster":"rl","budgets":[{budgets}]}},"exceptions":[{exceptions}]}}"#
            ))
        };
        let budget = |name: &str, descriptors: &str| {
            format!(r#"{{"name":"{name}","descriptors":[{descriptors}],"hits":"tokens"}}"#)
        };
        let exception = |name: &str| {
            format!(
                r#"{{"name":"{name}","covers":{{"dimensions":{{"user":["bob"]}}}},"relaxes":{{"budgets":["b"]}},"until":"2030-01-01T00:00:00Z"}}"#
            )
        };
        assert!(quota(&budget("b", r#""user","model""#), &exception("INC-1")).is_ok());
        let cases = [
            (
                quota(&budget("b c", r#""user""#), ""),
                "quota.budgets[0].name: letters, digits",
            ),
            (
                quota(&[budget("b", r#""user""#), budget("b", r#""model""#)].join(","), ""),
                "quota.budgets[1].name: \"b\" is used twice",
            ),
            (
                quota(&budget("b", r#""team""#), ""),
                "quota.budgets[0].descriptors[0]: \"team\" is not a configured dimension",
            ),
            (
                quota(&budget("b", r#""user","user""#), ""),
                "quota.budgets[0].descriptors[1]: \"user\" is listed twice",
            ),
            (
                quota(&budget("b", ""), ""),
                "quota.budgets[0].descriptors: name at least one",
            ),
            (
                quota(&budget("b", r#""user""#), &exception("")),
                "exceptions[0].name: letters, digits",
            ),
            (
                quota(
                    &budget("b", r#""user""#),
                    &[exception("INC-1"), exception("INC-1")].join(","),
                ),
                "exceptions[1].name: \"INC-1\" is used twice",
            ),
        ];
        for (got, want) in cases {
            let e = got.unwrap_err();
            assert!(e.starts_with(want), "{e} (expected {want})");
        }
    }

    #[test]
    fn pseudonymisation_needs_a_key_from_the_vm_environment() {
        let json = br#"{"dimensions":{"user":["header:x-user-id"]},"require":[["user"]],
            "privacy":{"pseudonymise":["user"],"key_env":"TEST_PSEUDONYM_KEY"}}"#;
        let with = |value: Option<&str>| {
            let value = value.map(str::to_string);
            Config::load(json, &move |name: &str| {
                if name == "TEST_PSEUDONYM_KEY" {
                    value.clone()
                } else {
                    None
                }
            })
            .map_err(|e| e.to_string())
        };
        let e = with(None).unwrap_err();
        assert!(e.starts_with("privacy.key_env: privacy.pseudonymise needs a key, and the environment variable TEST_PSEUDONYM_KEY is not set"), "{e}");
        assert!(
            e.contains("vm_config.environment_variables") && e.contains("vmConfig.env"),
            "{e}"
        );
        let e = with(Some("  ")).unwrap_err();
        assert!(e.contains("TEST_PSEUDONYM_KEY is empty"), "{e}");
        let e = with(Some("short")).unwrap_err();
        assert!(e.contains("is 5 bytes; it needs at least 16"), "{e}");
        let c = with(Some("test-only-key-0123456789")).unwrap();
        let hash = crate::hmac::HmacKey::new(b"test-only-key-0123456789").mac_hex(b"alice");
        assert_eq!(c.shown(0, "alice").as_deref(), Some(hash.as_str()));
        // Parsed only (not loaded): the pseudonymised value is not shown at all.
        assert_eq!(Config::parse(json).unwrap().shown(0, "alice"), None);
        // The key never shows in a debug print.
        assert!(!format!("{c:?}").contains("test-only-key"));
        // Without pseudonymisation nothing is read from the environment.
        let c = Config::load(b"{}", &|_: &str| panic!("no variable is read")).unwrap();
        assert_eq!(c.shown(0, "alice").as_deref(), Some("alice"));
    }

    #[test]
    fn privacy_names_are_checked() {
        let cases = [
            (
                r#"{"privacy":{"pseudonymise":["team"]}}"#,
                "privacy.pseudonymise[0]: \"team\" is not a configured dimension",
            ),
            (
                r#"{"dimensions":{"user":["header:x"],"user_hash":["header:y"]},"require":[["user"]],"privacy":{"pseudonymise":["user"]}}"#,
                "privacy.pseudonymise[0]: its pseudonym is recorded as \"user_hash\"",
            ),
            (
                r#"{"privacy":{"key_env":"1KEY"}}"#,
                "privacy.key_env: an environment variable name",
            ),
            (
                r#"{"privacy":{"key_env":""}}"#,
                "privacy.key_env: an environment variable name",
            ),
            (
                r#"{"record":{"scalar_keys":["user_hash"]}}"#,
                "record.scalar_keys[0]: \"user_hash\" is neither",
            ),
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
