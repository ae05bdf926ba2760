//! From the JSON shape to the checked configuration, one section at a time. Every error names
//! the path of the field it is about.

use super::raw::{AllOr, RawApiKeys, RawConfig, RawJwt, RawMcp, RawMetrics, RawModelCalls, RawPrice, RawPrivacy};
use super::{
    err, ApiKeys, Config, ConfigError, Dimension, JwtConfig, McpConfig, McpEndpoint, MetricLabel, Price, PricePattern,
    Privacy, ScalarKeys,
};
use crate::authority::HostPattern;
use crate::path::CanonicalPath;
use crate::provider::{ExtraRoute, FreeEndpoint, ProviderSet, PROVIDER_NAMES};
use crate::record::Field;
use crate::source::{is_header_name, Source};
use crate::value::{check_str, Checked};
use std::collections::{BTreeMap, BTreeSet};

fn is_dimension_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub(super) fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    let max_value_bytes = raw.limits.max_value_bytes;
    if !(1..=8192).contains(&max_value_bytes) {
        return Err(err("limits.max_value_bytes", "must be between 1 and 8192"));
    }
    if !(1024..=1 << 30).contains(&raw.limits.body_decision_bytes) {
        return Err(err("limits.body_decision_bytes", "must be between 1024 and 1073741824"));
    }
    let dimensions = dimensions(&raw.dimensions, max_value_bytes)?;
    let index_of = |name: &str| dimensions.iter().position(|d| d.name == name);
    let require = require(&raw.require, &index_of)?;
    let trusted_peers = spiffe_ids(&raw.header_trust.peers, "header_trust.peers")?;
    let jwt = jwt(&raw.jwt)?;
    let api_keys = api_keys(&raw.api_keys, max_value_bytes)?;
    let peer_trust_domains = trust_domains(&raw.peer.trust_domains)?;
    let model_calls = model_calls(&raw.model_calls)?;
    let mcp = mcp(&raw.mcp, &require, &index_of)?;
    let require_at = |alternatives: &[Vec<String>], at: &str| {
        self::require(alternatives, &index_of).map_err(|e| ConfigError {
            path: format!("{at}{}", e.path.strip_prefix("require").unwrap_or(&e.path)),
            message: e.message,
        })
    };
    let quota = super::quota::quota(&raw.quota, &dimensions, &require_at)?;
    let exceptions = super::quota::exceptions(&raw.exceptions, &dimensions, &quota.budgets, &require_at)?;
    if !(400..=599).contains(&raw.reject.status) {
        return Err(err("reject.status", "must be an HTTP error status between 400 and 599"));
    }
    let correlation_header = raw.correlation.header.to_ascii_lowercase();
    if !is_header_name(&correlation_header) {
        return Err(err("correlation.header", "not a valid header name"));
    }
    let propagate = dimension_list(&raw.correlation.propagate, "correlation.propagate", &index_of)?;
    let pricing = pricing(&raw.pricing)?;
    let metric_labels = metric_labels(&raw.metrics, &index_of)?;
    let privacy = privacy(&raw.privacy, &dimensions)?;
    let scalar_keys = scalar_keys(&raw.record.scalar_keys, &index_of, &privacy)?;
    let mut redact = BTreeSet::new();
    for (i, key) in raw.record.redact.iter().enumerate() {
        let Some(name) = record_key_name(key, &index_of, &privacy) else {
            return Err(err(
                format!("record.redact[{i}]"),
                format!("\"{key}\" is neither a record key nor a configured dimension"),
            ));
        };
        redact.insert(name);
    }
    let needs_body = dimensions
        .iter()
        .any(|d| d.sources.iter().any(|s| matches!(s, Source::Body(_))));
    let (body_paths, body_sources) = crate::body::body_paths(&dimensions);
    Ok(Config {
        body_paths,
        body_sources,
        mode: raw.mode,
        dimensions,
        require,
        trusted_peers,
        jwt,
        api_keys,
        peer_trust_domains,
        providers: model_calls.providers,
        hosts: model_calls.hosts,
        model_hosts: model_calls.model_hosts,
        free_endpoints: model_calls.free,
        extra_routes: model_calls.extra,
        mcp,
        reject_status: raw.reject.status,
        correlation_header,
        propagate,
        baggage: raw.correlation.baggage,
        usage_enabled: raw.usage.enabled,
        force_stream_usage: raw.usage.force_stream_usage,
        request_identity_encoding: raw.usage.request_identity_encoding,
        pricing,
        metrics_enabled: raw.metrics.enabled,
        metric_labels,
        max_label_values: raw.metrics.max_label_values as usize,
        scalar_keys,
        redact,
        privacy,
        max_value_bytes,
        body_decision_bytes: raw.limits.body_decision_bytes,
        needs_body,
        quota,
        exceptions,
    })
}

fn dimensions(raw: &BTreeMap<String, Vec<String>>, max_value_bytes: usize) -> Result<Vec<Dimension>, ConfigError> {
    let mut out = Vec::new();
    for (name, sources) in raw {
        let path = format!("dimensions.{name}");
        if !is_dimension_name(name) {
            return Err(err(path, "dimension names are [a-z][a-z0-9_]* (at most 64 bytes)"));
        }
        if Field::from_scalar_name(name).is_some() {
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
        out.push(Dimension {
            keys: crate::record::DimensionKeys::of(name),
            name: name.clone(),
            sources: compiled,
        });
    }
    Ok(out)
}

fn dimension_list(
    names: &[String],
    field: &str,
    index_of: &dyn Fn(&str) -> Option<usize>,
) -> Result<Vec<usize>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            index_of(name).ok_or_else(|| {
                err(
                    format!("{field}[{i}]"),
                    format!("\"{name}\" is not a configured dimension"),
                )
            })
        })
        .collect()
}

fn require(raw: &[Vec<String>], index_of: &dyn Fn(&str) -> Option<usize>) -> Result<Vec<Vec<usize>>, ConfigError> {
    if raw.is_empty() {
        return Err(err("require", "needs at least one alternative (a list of dimensions)"));
    }
    let mut out = Vec::new();
    for (i, alternative) in raw.iter().enumerate() {
        if alternative.is_empty() {
            return Err(err(
                format!("require[{i}]"),
                "an alternative needs at least one dimension",
            ));
        }
        let mut dims = dimension_list(alternative, &format!("require[{i}]"), index_of)?;
        let mut seen = BTreeSet::new();
        dims.retain(|d| seen.insert(*d));
        out.push(dims);
    }
    Ok(out)
}

fn spiffe_ids(raw: &[String], field: &str) -> Result<Vec<String>, ConfigError> {
    for (i, id) in raw.iter().enumerate() {
        if crate::identity::spiffe::parse_spiffe_id(id).is_none() {
            return Err(err(
                format!("{field}[{i}]"),
                "must be a SPIFFE ID (spiffe://trust-domain/path)",
            ));
        }
    }
    Ok(raw.to_vec())
}

fn trust_domains(raw: &[String]) -> Result<Vec<String>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, td)| {
            let id = format!("spiffe://{td}/x");
            match crate::identity::spiffe::parse_spiffe_id(&id) {
                Some(parsed) if parsed.trust_domain == td.as_str() => Ok(td.clone()),
                _ => Err(err(
                    format!("peer.trust_domains[{i}]"),
                    "must be a SPIFFE trust domain (lower-case letters, digits, '.', '-', '_')",
                )),
            }
        })
        .collect()
}

fn jwt(raw: &RawJwt) -> Result<JwtConfig, ConfigError> {
    if raw.payload_key.is_empty() {
        return Err(err("jwt.payload_key", "must not be empty"));
    }
    if !is_header_name(&raw.header) {
        return Err(err("jwt.header", "not a valid lower-case header name"));
    }
    Ok(JwtConfig {
        from: raw.from,
        payload_key: raw.payload_key.clone(),
        header: raw.header.clone(),
        unverified_satisfies_require: raw.unverified_claims_satisfy_require,
        forward: raw.forward,
    })
}

fn api_keys(raw: &RawApiKeys, max_value_bytes: usize) -> Result<ApiKeys, ConfigError> {
    let headers = match &raw.headers {
        AllOr::Unset => None,
        AllOr::Word(w) if w == "by_provider" => None,
        AllOr::Word(w) => {
            return Err(err(
                "api_keys.headers",
                format!("expected \"by_provider\" or a list of header names, got \"{w}\""),
            ))
        }
        AllOr::List(list) => {
            let mut out = Vec::new();
            for (i, h) in list.iter().enumerate() {
                let lower = h.to_ascii_lowercase();
                if !is_header_name(&lower) {
                    return Err(err(format!("api_keys.headers[{i}]"), "not a valid header name"));
                }
                out.push(lower);
            }
            Some(out)
        }
    };
    let mut owners = BTreeMap::new();
    for (fp, fields) in &raw.owners {
        let path = format!("api_keys.owners.{fp}");
        let hex = fp.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(err(
                path,
                "keys are \"sha256:\" + the 64 lower-case hex digits of the key's SHA-256 (printf %s \"$KEY\" | sha256sum); \
                 a short fingerprint can be matched by another key",
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
        owners.insert(hex.to_string(), fields.clone());
    }
    Ok(ApiKeys { headers, owners })
}

/// The compiled `model_calls` section.
struct ModelCalls {
    providers: ProviderSet,
    hosts: Vec<HostPattern>,
    model_hosts: Vec<HostPattern>,
    free: Vec<FreeEndpoint>,
    extra: Vec<ExtraRoute>,
}

fn host_list(raw: &[String], field: &str) -> Result<Vec<HostPattern>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, h)| HostPattern::parse(h).map_err(|e| err(format!("{field}[{i}]"), e.to_string())))
        .collect()
}

fn model_calls(raw: &RawModelCalls) -> Result<ModelCalls, ConfigError> {
    let providers = match &raw.providers {
        AllOr::Unset => ProviderSet::all(),
        AllOr::Word(w) if w == "all" => ProviderSet::all(),
        AllOr::Word(w) => {
            return Err(err(
                "model_calls.providers",
                format!("expected \"all\" or a list of provider names, got \"{w}\""),
            ))
        }
        AllOr::List(list) => {
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
    let mut free = Vec::new();
    for (i, f) in raw.free.iter().enumerate() {
        let path = format!("model_calls.free[{i}]");
        let method_ok = f.method == "*" || (!f.method.is_empty() && f.method.bytes().all(|b| b.is_ascii_uppercase()));
        if !method_ok {
            return Err(err(format!("{path}.method"), "an upper-case HTTP method, or \"*\""));
        }
        if !f.path.starts_with('/') {
            return Err(err(format!("{path}.path"), "must start with '/'"));
        }
        let canonical = CanonicalPath::parse(f.path.as_bytes());
        if canonical.segments().is_empty() {
            return Err(err(format!("{path}.path"), "must name a path below '/'"));
        }
        free.push(FreeEndpoint {
            method: f.method.clone(),
            segments: canonical.segments().to_vec(),
        });
    }
    let mut extra = Vec::new();
    for (i, e) in raw.extra.iter().enumerate() {
        let path = format!("model_calls.extra[{i}]");
        if !e.path_prefix.starts_with('/') {
            return Err(err(format!("{path}.path_prefix"), "must start with '/'"));
        }
        let prefix = CanonicalPath::parse(e.path_prefix.as_bytes()).segments().to_vec();
        if !matches!(check_str(&e.provider, 64), Checked::Valid(_)) || e.provider.contains(';') {
            return Err(err(
                format!("{path}.provider"),
                "must be a non-empty printable name without ';' (at most 64 bytes)",
            ));
        }
        if !is_dimension_name(&e.operation) {
            return Err(err(format!("{path}.operation"), "must be [a-z][a-z0-9_]*"));
        }
        extra.push(ExtraRoute {
            prefix,
            provider: e.provider.clone(),
            operation: e.operation.clone(),
        });
    }
    Ok(ModelCalls {
        providers,
        hosts: host_list(&raw.hosts, "model_calls.hosts")?,
        model_hosts: host_list(&raw.model_hosts, "model_calls.model_hosts")?,
        free,
        extra,
    })
}

fn mcp(
    raw: &RawMcp,
    require_default: &[Vec<usize>],
    index_of: &dyn Fn(&str) -> Option<usize>,
) -> Result<McpConfig, ConfigError> {
    let mut endpoints = Vec::new();
    for (i, e) in raw.endpoints.iter().enumerate() {
        let path = format!("mcp.endpoints[{i}]");
        if !e.path_prefix.starts_with('/') {
            return Err(err(format!("{path}.path_prefix"), "must start with '/'"));
        }
        endpoints.push(McpEndpoint {
            prefix: CanonicalPath::parse(e.path_prefix.as_bytes()).segments().to_vec(),
            hosts: host_list(&e.hosts, &format!("{path}.hosts"))?,
        });
    }
    let require = match &raw.require {
        None => require_default.to_vec(),
        Some(alternatives) => {
            let compiled = self::require(alternatives, index_of).map_err(|e| ConfigError {
                path: format!("mcp.{}", e.path),
                message: e.message,
            })?;
            compiled
        }
    };
    for (i, m) in raw.methods.iter().enumerate() {
        let ok = !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-.$".contains(&b));
        if !ok {
            return Err(err(
                format!("mcp.methods[{i}]"),
                "a JSON-RPC method name such as tools/call",
            ));
        }
    }
    let reject_header_mismatch = match raw.header_mismatch.as_str() {
        "record" => false,
        "reject" => true,
        other => {
            return Err(err(
                "mcp.header_mismatch",
                format!("expected \"record\" or \"reject\", got \"{other}\""),
            ))
        }
    };
    Ok(McpConfig {
        endpoints,
        require,
        methods: raw.methods.clone(),
        reject_header_mismatch,
    })
}

fn pricing(raw: &BTreeMap<String, RawPrice>) -> Result<Vec<PricePattern>, ConfigError> {
    let mut out = Vec::new();
    for (pattern, price) in raw {
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
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(err(
                    format!("{path}.{field}"),
                    "must be a non-negative number (USD per million tokens)",
                ));
            }
        }
        out.push(PricePattern {
            pattern: pattern.clone(),
            price: Price {
                input: price.input,
                output: price.output,
                cached_input: price.cached_input,
            },
        });
    }
    // Exact names first, then the longest prefix.
    out.sort_by_key(|p| (p.pattern.ends_with('*'), std::cmp::Reverse(p.pattern.len())));
    Ok(out)
}

fn metric_labels(raw: &RawMetrics, index_of: &dyn Fn(&str) -> Option<usize>) -> Result<Vec<MetricLabel>, ConfigError> {
    if raw.max_label_values == 0 || raw.max_label_values > 10_000 {
        return Err(err("metrics.max_label_values", "must be between 1 and 10000"));
    }
    let mut out: Vec<MetricLabel> = Vec::new();
    for (i, label) in raw.labels.iter().enumerate() {
        let compiled = match label.as_str() {
            "provider" => continue,
            "model" => MetricLabel::Model,
            dim => MetricLabel::Dimension(index_of(dim).ok_or_else(|| {
                err(
                    format!("metrics.labels[{i}]"),
                    format!("\"{label}\" is neither \"provider\", \"model\" nor a configured dimension"),
                )
            })?),
        };
        if !out.contains(&compiled) {
            out.push(compiled);
        }
    }
    Ok(out)
}

/// The `privacy` section: which dimensions are pseudonymised, and where the key is read from (the
/// key itself is read by [`Config::load`]). A pseudonymised dimension is recorded as
/// `<dimension>_hash`, which must not name another record key.
fn privacy(raw: &RawPrivacy, dimensions: &[Dimension]) -> Result<Privacy, ConfigError> {
    let mut pseudonymised = Vec::new();
    for (i, name) in raw.pseudonymise.iter().enumerate() {
        let at = format!("privacy.pseudonymise[{i}]");
        let Some(index) = dimensions.iter().position(|d| &d.name == name) else {
            return Err(err(at, format!("\"{name}\" is not a configured dimension")));
        };
        let hashed = format!("{name}_hash");
        if Field::from_scalar_name(&hashed).is_some() || dimensions.iter().any(|d| d.name == hashed) {
            return Err(err(
                at,
                format!("its pseudonym is recorded as \"{hashed}\", which is already a record key or dimension"),
            ));
        }
        if !pseudonymised.contains(&index) {
            pseudonymised.push(index);
        }
    }
    let key_env = raw.key_env.as_str();
    let env_name_ok = !key_env.is_empty()
        && key_env.len() <= 128
        && !key_env.starts_with(|c: char| c.is_ascii_digit())
        && key_env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !env_name_ok {
        return Err(err(
            "privacy.key_env",
            "an environment variable name: letters, digits and '_', not starting with a digit",
        ));
    }
    Ok(Privacy {
        pseudonymised,
        key_env: key_env.to_string(),
        key: None,
    })
}

/// The record key a configured name stands for: a field's scalar name, a dimension, or a
/// pseudonymised dimension's `<dimension>_hash`; `None` if it is none of these.
fn record_key_name(key: &str, index_of: &dyn Fn(&str) -> Option<usize>, privacy: &Privacy) -> Option<String> {
    if Field::from_scalar_name(key).is_some() || index_of(key).is_some() {
        return Some(key.to_string());
    }
    let dim = key.strip_suffix("_hash")?;
    index_of(dim)
        .filter(|i| privacy.pseudonymised.contains(i))
        .map(|_| dim.to_string())
}

fn scalar_keys(
    raw: &AllOr<String>,
    index_of: &dyn Fn(&str) -> Option<usize>,
    privacy: &Privacy,
) -> Result<ScalarKeys, ConfigError> {
    match raw {
        AllOr::Unset => Ok(ScalarKeys::All),
        AllOr::Word(w) if w == "all" => Ok(ScalarKeys::All),
        AllOr::Word(w) => Err(err(
            "record.scalar_keys",
            format!("expected \"all\" or a list of keys, got \"{w}\""),
        )),
        AllOr::List(list) => {
            let mut set = BTreeSet::new();
            for (i, key) in list.iter().enumerate() {
                let Some(name) = record_key_name(key, index_of, privacy) else {
                    return Err(err(
                        format!("record.scalar_keys[{i}]"),
                        format!("\"{key}\" is neither a record key nor a configured dimension"),
                    ));
                };
                set.insert(name);
            }
            Ok(ScalarKeys::Only(set))
        }
    }
}
