//! `check`: validates a plugin configuration with the filter's own parser, wherever it lives (a
//! plugin config, an Envoy bootstrap, an Istio WasmPlugin, an Envoy Gateway
//! EnvoyExtensionPolicy), and adds the warnings a reviewer wants.

use ai_attribution::config::{Config, JwtFrom};
use ai_attribution::source::Source;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Known model-name prefixes, to catch pricing patterns that can never match.
pub const KNOWN_MODEL_PREFIXES: [&str; 52] = [
    "gpt-",
    "chatgpt-",
    "o1",
    "o3",
    "o4",
    "codex",
    "text-embedding-",
    "text-davinci",
    "davinci",
    "babbage",
    "whisper",
    "tts-",
    "dall-e",
    "omni-moderation",
    "text-moderation",
    "computer-use",
    "claude-",
    "gemini-",
    "models/gemini",
    "gemma",
    "imagen",
    "text-bison",
    "chat-bison",
    "textembedding-gecko",
    "text-multilingual-embedding",
    "amazon.",
    "anthropic.",
    "meta.",
    "cohere.",
    "ai21.",
    "mistral.",
    "stability.",
    "deepseek.",
    "us.",
    "eu.",
    "apac.",
    "global.",
    "command",
    "embed-",
    "rerank-",
    "mistral",
    "mixtral",
    "codestral",
    "ministral",
    "pixtral",
    "llama",
    "phi",
    "qwen",
    "deepseek",
    "nomic-embed",
    "mxbai-embed",
    "granite",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Error,
    Warning,
    Note,
}

#[derive(Debug, Clone)]
struct Finding {
    level: Level,
    message: String,
}

/// What surrounds a plugin configuration, as far as the file shows it.
#[derive(Debug, Clone, Default)]
struct Context {
    /// A bootstrap listener's filter chain (else: a bare config or a Kubernetes resource).
    listener: Option<ListenerFacts>,
    /// For Kubernetes resources: how mTLS would be required there, which this file cannot show.
    mtls_hint: Option<&'static str>,
}

#[derive(Debug, Clone, Default)]
struct ListenerFacts {
    name: String,
    mtls: bool,
    jwt_authn_before: bool,
    node_metadata: Option<Map<String, Value>>,
}

/// One plugin configuration found in the file.
struct Target {
    location: String,
    bytes: Vec<u8>,
    context: Context,
    findings: Vec<Finding>,
}

/// The result of `check`: the text to print and the exit status.
pub struct Outcome {
    pub text: String,
    pub status: i32,
}

/// Checks the file at `path`. Exit status: 0 ok (warnings allowed), 1 errors, 2 unreadable.
pub fn run(path: &str) -> Outcome {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return Outcome {
                text: format!("error: {path}: cannot read: {e}\n"),
                status: 2,
            }
        }
    };
    check_bytes(path, &bytes)
}

pub fn check_bytes(path: &str, bytes: &[u8]) -> Outcome {
    let targets = match find_targets(bytes) {
        Ok(t) => t,
        Err(message) => {
            return Outcome {
                text: format!("error: {path}: {message}\n"),
                status: 1,
            }
        }
    };
    if targets.is_empty() {
        return Outcome {
            text: format!(
                "error: {path}: no ai_attribution plugin configuration found (expected a plugin config, an Envoy bootstrap with an envoy.filters.http.wasm filter loading ai_attribution, an Istio WasmPlugin or an Envoy Gateway EnvoyExtensionPolicy)\n"
            ),
            status: 1,
        };
    }
    let mut text = String::new();
    let mut errors = 0;
    let mut warnings = 0;
    for mut t in targets {
        match Config::parse(&t.bytes) {
            Err(e) => t.findings.push(Finding {
                level: Level::Error,
                message: e.to_string(),
            }),
            Ok(cfg) => t.findings.extend(review(&cfg, &t.context)),
        }
        t.findings.sort_by_key(|f| f.level);
        let _ = writeln!(text, "{path}: {}", t.location);
        if t.findings.iter().all(|f| f.level == Level::Note) {
            let _ = writeln!(text, "  ok");
        }
        for f in &t.findings {
            let label = match f.level {
                Level::Error => {
                    errors += 1;
                    "error"
                }
                Level::Warning => {
                    warnings += 1;
                    "warning"
                }
                Level::Note => "note",
            };
            let _ = writeln!(text, "  {label}: {}", f.message);
        }
    }
    let _ = writeln!(text, "{errors} error(s), {warnings} warning(s)");
    Outcome {
        text,
        status: if errors > 0 { 1 } else { 0 },
    }
}

// ---- finding the plugin configurations --------------------------------------------------

/// A plugin configuration found in a file, with what the file shows around it: what `explain`
/// runs a request against.
pub struct Found {
    /// Where in the file, as `check` names it (`listener "ai_gateway" filter_chains[0]...`).
    pub location: String,
    /// The plugin configuration, as the filter would read it.
    pub bytes: Vec<u8>,
    /// The bootstrap's `node.metadata`, for a bootstrap.
    pub node_metadata: Option<Map<String, Value>>,
    /// For a bootstrap listener: whether its filter chain requires client certificates.
    pub listener_mtls: Option<bool>,
    /// For a bootstrap listener: whether a `jwt_authn` filter runs before this one.
    pub jwt_authn_before: Option<bool>,
    /// Errors found around the configuration (e.g. a `configuration` that is no StringValue).
    pub errors: Vec<String>,
}

/// Every plugin configuration in a file's bytes, found as `check` finds them: a plugin config
/// (JSON), an Envoy bootstrap, an Istio WasmPlugin or an Envoy Gateway EnvoyExtensionPolicy.
pub fn find_configs(bytes: &[u8]) -> Result<Vec<Found>, String> {
    Ok(find_targets(bytes)?
        .into_iter()
        .map(|t| Found {
            location: t.location,
            bytes: t.bytes,
            node_metadata: t.context.listener.as_ref().and_then(|l| l.node_metadata.clone()),
            listener_mtls: t.context.listener.as_ref().map(|l| l.mtls),
            jwt_authn_before: t.context.listener.as_ref().map(|l| l.jwt_authn_before),
            errors: t
                .findings
                .into_iter()
                .filter(|f| f.level == Level::Error)
                .map(|f| f.message)
                .collect(),
        })
        .collect())
}

fn find_targets(bytes: &[u8]) -> Result<Vec<Target>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the file is not UTF-8".to_string())?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err("the file is empty".to_string());
    }
    let mut docs: Vec<Value> = Vec::new();
    if trimmed.starts_with('{') {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => docs.push(v),
            // Not valid JSON: it is meant as a plugin config, so let the filter's parser say why.
            Err(_) => return Ok(vec![bare(String::from("plugin configuration"), bytes.to_vec())]),
        }
        if let Some(Value::Object(map)) = docs.first() {
            if !is_resource(map) {
                // A plugin config as written: parse the original bytes, exactly as the filter would.
                if map.contains_key("config") && map.contains_key("cases") {
                    let cfg = map.get("config").cloned().unwrap_or(Value::Null);
                    return Ok(vec![bare("scenario file: config".into(), cfg.to_string().into_bytes())]);
                }
                return Ok(vec![bare("plugin configuration".into(), bytes.to_vec())]);
            }
        }
    } else {
        for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(doc).map_err(|e| format!("YAML document {}: {e}", i + 1))?;
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    let mut out = Vec::new();
    let many = docs.len() > 1;
    for (i, doc) in docs.iter().enumerate() {
        let prefix = if many {
            format!("document {}: ", i + 1)
        } else {
            String::new()
        };
        let Value::Object(map) = doc else {
            return Err(format!("{prefix}expected a mapping at the top level"));
        };
        if let Some(kind) = map.get("kind").and_then(Value::as_str) {
            match kind {
                "WasmPlugin" => out.push(wasm_plugin(&prefix, map)),
                "EnvoyExtensionPolicy" => out.extend(extension_policy(&prefix, map)),
                _ => {}
            }
        } else if is_bootstrap(map) {
            let found = bootstrap(&prefix, map);
            if found.is_empty() && map.contains_key("dynamic_resources") {
                return Err(format!(
                    "{prefix}an Envoy bootstrap with no static wasm filter loading ai_attribution; its listeners come from dynamic_resources (xDS): check the plugin configuration itself"
                ));
            }
            out.extend(found);
        } else if !many {
            out.push(bare(
                format!("{prefix}plugin configuration"),
                doc.to_string().into_bytes(),
            ));
        }
    }
    Ok(out)
}

fn is_resource(map: &Map<String, Value>) -> bool {
    map.contains_key("kind") || is_bootstrap(map)
}

fn is_bootstrap(map: &Map<String, Value>) -> bool {
    [
        "static_resources",
        "dynamic_resources",
        "admin",
        "node",
        "layered_runtime",
    ]
    .iter()
    .any(|k| map.contains_key(*k))
}

fn bare(location: String, bytes: Vec<u8>) -> Target {
    Target {
        location,
        bytes,
        context: Context::default(),
        findings: Vec::new(),
    }
}

fn wasm_plugin(prefix: &str, map: &Map<String, Value>) -> Target {
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let spec = map.get("spec");
    let mut findings = Vec::new();
    let config = match spec.and_then(|s| s.get("pluginConfig")) {
        Some(v) => v.to_string().into_bytes(),
        None => {
            findings.push(Finding {
                level: Level::Note,
                message: "spec.pluginConfig is absent: the filter runs with every default".into(),
            });
            Vec::new()
        }
    };
    if let Some(plugin) = spec.and_then(|s| s.get("pluginName")).and_then(Value::as_str) {
        if plugin != "ai_attribution" {
            findings.push(Finding {
                level: Level::Warning,
                message: format!("spec.pluginName is \"{plugin}\": the filter's root context is \"ai_attribution\""),
            });
        }
    }
    Target {
        location: format!("{prefix}WasmPlugin {name}, spec.pluginConfig"),
        bytes: config,
        context: Context {
            listener: None,
            mtls_hint: Some(" (in Istio: a STRICT PeerAuthentication)"),
        },
        findings,
    }
}

fn extension_policy(prefix: &str, map: &Map<String, Value>) -> Vec<Target> {
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let wasms = map
        .get("spec")
        .and_then(|s| s.get("wasm"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    wasms
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            let root = w.get("rootID").and_then(Value::as_str).unwrap_or("");
            let n = w.get("name").and_then(Value::as_str).unwrap_or("");
            root == "ai_attribution" || names_plugin(n)
        })
        .map(|(i, w)| Target {
            location: format!("{prefix}EnvoyExtensionPolicy {name}, spec.wasm[{i}].config"),
            bytes: w.get("config").map(|c| c.to_string().into_bytes()).unwrap_or_default(),
            context: Context {
                listener: None,
                mtls_hint: Some(" (in Envoy Gateway: a ClientTrafficPolicy with clientValidation)"),
            },
            findings: Vec::new(),
        })
        .collect()
}

fn names_plugin(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    s.contains("ai_attribution") || s.contains("ai-attribution")
}

/// Whether a wasm filter's `config` loads this plugin.
fn loads_plugin(config: &Value) -> bool {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let root = s(config.get("root_id"));
    let name = s(config.get("name"));
    let code = config.get("vm_config").and_then(|v| v.get("code"));
    let file = s(code.and_then(|c| c.get("local")).and_then(|l| l.get("filename")));
    let uri = s(code
        .and_then(|c| c.get("remote"))
        .and_then(|r| r.get("http_uri"))
        .and_then(|h| h.get("uri")));
    let wasm_named = |p: &str| {
        let base = p.rsplit('/').next().unwrap_or(p);
        base.ends_with(".wasm") && names_plugin(base)
    };
    root == "ai_attribution" || name == "ai_attribution" || wasm_named(&file) || wasm_named(&uri)
}

fn bootstrap(prefix: &str, map: &Map<String, Value>) -> Vec<Target> {
    let node_metadata = map
        .get("node")
        .and_then(|n| n.get("metadata"))
        .and_then(Value::as_object)
        .cloned();
    let mut out = Vec::new();
    let listeners = map
        .get("static_resources")
        .and_then(|s| s.get("listeners"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (li, listener) in listeners.iter().enumerate() {
        let lname = listener
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{li}"), |n| format!("\"{n}\""));
        let mut chains: Vec<(String, &Value)> = listener
            .get("filter_chains")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .enumerate()
                    .map(|(i, c)| (format!("filter_chains[{i}]"), c))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(d) = listener.get("default_filter_chain") {
            chains.push(("default_filter_chain".into(), d));
        }
        for (cpath, chain) in chains {
            let mtls = chain_requires_mtls(chain);
            let filters = chain
                .get("filters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (fi, filter) in filters.iter().enumerate() {
                let Some(http_filters) = filter
                    .get("typed_config")
                    .and_then(|t| t.get("http_filters"))
                    .and_then(Value::as_array)
                else {
                    continue;
                };
                let mut jwt_before = false;
                for (hi, hf) in http_filters.iter().enumerate() {
                    let name = hf.get("name").and_then(Value::as_str).unwrap_or("");
                    let tc = hf.get("typed_config");
                    let ty = tc.and_then(|t| t.get("@type")).and_then(Value::as_str).unwrap_or("");
                    if name == "envoy.filters.http.jwt_authn" || ty.ends_with("jwt_authn.v3.JwtAuthentication") {
                        jwt_before = true;
                    }
                    let is_wasm = name == "envoy.filters.http.wasm" || ty.ends_with("filters.http.wasm.v3.Wasm");
                    let Some(config) = tc.and_then(|t| t.get("config")) else {
                        continue;
                    };
                    if !is_wasm || !loads_plugin(config) {
                        continue;
                    }
                    let location =
                        format!("{prefix}listener {lname} {cpath}.filters[{fi}].http_filters[{hi}] ({name})");
                    let (bytes, mut findings) = plugin_configuration(config);
                    if hf.get("disabled").and_then(Value::as_bool) == Some(true) {
                        findings.push(Finding {
                            level: Level::Note,
                            message: "this filter is disabled by default (disabled: true)".into(),
                        });
                    }
                    out.push(Target {
                        location,
                        bytes,
                        context: Context {
                            listener: Some(ListenerFacts {
                                name: lname.clone(),
                                mtls,
                                jwt_authn_before: jwt_before,
                                node_metadata: node_metadata.clone(),
                            }),
                            mtls_hint: None,
                        },
                        findings,
                    });
                }
            }
        }
    }
    out
}

/// The plugin configuration of a wasm filter: `configuration.value` of a StringValue.
fn plugin_configuration(config: &Value) -> (Vec<u8>, Vec<Finding>) {
    match config.get("configuration") {
        None => (
            Vec::new(),
            vec![Finding {
                level: Level::Note,
                message: "no configuration: the filter runs with every default".into(),
            }],
        ),
        Some(c) => {
            let ty = c.get("@type").and_then(Value::as_str).unwrap_or("");
            match c.get("value") {
                Some(Value::String(s)) if ty.ends_with("google.protobuf.StringValue") => (s.clone().into_bytes(), Vec::new()),
                _ => (
                    b"\0".to_vec(),
                    vec![Finding {
                        level: Level::Error,
                        message: "configuration must be {\"@type\": \"type.googleapis.com/google.protobuf.StringValue\", \"value\": \"<the JSON plugin config>\"}".into(),
                    }],
                ),
            }
        }
    }
}

fn chain_requires_mtls(chain: &Value) -> bool {
    let Some(ts) = chain.get("transport_socket") else {
        return false;
    };
    let tc = ts.get("typed_config");
    let require = tc.and_then(|t| t.get("require_client_certificate"));
    match require {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        Some(Value::Object(o)) => o.get("value").and_then(Value::as_bool).unwrap_or(false),
        _ => false,
    }
}

// ---- the review -------------------------------------------------------------------------

/// How reliably a source (or a dimension) yields a value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Yield {
    Never(String),
    BodyOnly,
    Sometimes,
    Always,
}

fn source_yield(cfg: &Config, ctx: &Context, s: &Source) -> Yield {
    let listener = ctx.listener.as_ref();
    match s {
        Source::Static(_) => Yield::Always,
        Source::Body(_) => Yield::BodyOnly,
        // Only requests to an MCP endpoint inside a session carry one.
        Source::McpSession => Yield::Sometimes,
        Source::Header(_) => match listener {
            Some(l) if !l.mtls && !cfg.trusted_peers.is_empty() => Yield::Never(format!(
                "header_trust.peers is set but listener {} does not require client certificates, so no caller is ever trusted",
                l.name
            )),
            _ => Yield::Sometimes,
        },
        Source::Peer(_) => match listener {
            Some(l) if !l.mtls => Yield::Never(format!("listener {} does not require client certificates", l.name)),
            _ => Yield::Sometimes,
        },
        Source::Jwt(_) => match (listener, cfg.jwt.from) {
            (Some(l), JwtFrom::JwtAuthn) if !l.jwt_authn_before => Yield::Never(format!(
                "jwt.from is jwt_authn but no envoy.filters.http.jwt_authn filter runs before this one on listener {}",
                l.name
            )),
            _ => Yield::Sometimes,
        },
        Source::ApiKey(field) if field != "fingerprint" => {
            if cfg.api_keys.owners.values().any(|o| o.contains_key(field)) {
                Yield::Sometimes
            } else {
                Yield::Never(format!("no api_keys.owners entry has a \"{field}\" field"))
            }
        }
        Source::ApiKey(_) => Yield::Sometimes,
        Source::Node(key) => match listener.and_then(|l| l.node_metadata.as_ref()) {
            Some(meta) if meta.get(key).is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty())) => Yield::Always,
            Some(_) => Yield::Never(format!("the bootstrap's node.metadata has no \"{key}\"")),
            None => Yield::Sometimes,
        },
        Source::Property(_) => Yield::Sometimes,
    }
}

fn review(cfg: &Config, ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    let warn = |out: &mut Vec<Finding>, message: String| {
        out.push(Finding {
            level: Level::Warning,
            message,
        })
    };

    // Header sources nobody vouches for.
    let header_dims: Vec<String> = cfg
        .dimensions
        .iter()
        .filter_map(|d| {
            let h: Vec<String> = d
                .sources
                .iter()
                .filter(|s| matches!(s, Source::Header(_)))
                .map(ToString::to_string)
                .collect();
            (!h.is_empty()).then(|| format!("{} ({})", d.name, h.join(", ")))
        })
        .collect();
    if !header_dims.is_empty() && cfg.trusted_peers.is_empty() {
        let dims = header_dims.join(", ");
        match &ctx.listener {
            Some(l) if !l.mtls => warn(
                &mut out,
                format!(
                    "header sources are believed from any caller: listener {} has no mTLS (no transport socket requiring client certificates) and header_trust.peers is empty, so anyone who reaches it can claim any identity through {dims}",
                    l.name
                ),
            ),
            Some(_) => {}
            None => warn(
                &mut out,
                format!(
                    "header sources are believed from any caller (header_trust.peers is empty): unless the listener requires mTLS and only trusted callers can reach it{}, anyone can claim any identity through {dims}",
                    ctx.mtls_hint.unwrap_or("")
                ),
            ),
        }
    }

    // Requirements that can never be met.
    let dim_yield: Vec<Yield> = cfg
        .dimensions
        .iter()
        .map(|d| {
            let ys: Vec<Yield> = d.sources.iter().map(|s| source_yield(cfg, ctx, s)).collect();
            match ys.iter().max() {
                Some(Yield::Never(_)) | None => Yield::Never(
                    ys.iter()
                        .filter_map(|y| match y {
                            Yield::Never(r) => Some(r.clone()),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                Some(best) => best.clone(),
            }
        })
        .collect();
    let mut alternatives_never = 0;
    for (i, alt) in cfg.require.iter().enumerate() {
        let mut never = false;
        for &d in alt {
            let (Some(dim), Some(y)) = (cfg.dimensions.get(d), dim_yield.get(d)) else {
                continue;
            };
            match y {
                Yield::Never(reason) => {
                    never = true;
                    warn(
                        &mut out,
                        format!(
                            "require[{i}] names \"{}\", whose sources can never yield a value ({reason}): this alternative is never met",
                            dim.name
                        ),
                    );
                }
                Yield::BodyOnly => warn(
                    &mut out,
                    format!(
                        "require[{i}] names \"{}\", whose only sources read the JSON request body: calls without that field (GETs, non-JSON bodies, bodies over limits.body_decision_bytes) can never meet this alternative",
                        dim.name
                    ),
                ),
                _ => {}
            }
        }
        if never {
            alternatives_never += 1;
        }
    }
    if alternatives_never > 0 && alternatives_never == cfg.require.len() {
        warn(
            &mut out,
            "no alternative of require can ever be met: every model call will be rejected (would_reject in audit mode)"
                .into(),
        );
    }

    // Pricing.
    if cfg.pricing.is_empty() {
        out.push(Finding {
            level: Level::Note,
            message: "no pricing: records carry tokens but no cost_usd".into(),
        });
    }
    for p in &cfg.pricing {
        let stem = p.pattern.strip_suffix('*').unwrap_or(&p.pattern).to_ascii_lowercase();
        let known = KNOWN_MODEL_PREFIXES
            .iter()
            .any(|k| stem.starts_with(k) || (p.pattern.ends_with('*') && k.starts_with(stem.as_str())));
        if !known {
            warn(
                &mut out,
                format!(
                    "pricing.{}: matches no known model name (known prefixes include gpt-, o1, claude-, gemini-, amazon., anthropic., meta., command, mistral, llama, text-embedding-); check the spelling",
                    p.pattern
                ),
            );
        }
        let prices = [Some(p.price.input), Some(p.price.output), p.price.cached_input];
        if prices.iter().flatten().any(|v| *v > 1000.0) {
            warn(
                &mut out,
                format!(
                    "pricing.{}: a price over 1000: prices are USD per million tokens",
                    p.pattern
                ),
            );
        }
    }

    // Unbounded metric labels.
    for &compiled in &cfg.metric_labels {
        let label = cfg.label_name(compiled);
        let why = match label {
            "user" | "session" => Some(format!("one value per {label}")),
            "model" => Some("model names come from the request, so callers can create new values".to_string()),
            "provider" => None,
            dim => cfg.dimensions.iter().find(|d| d.name == dim).and_then(|d| {
                d.sources
                    .iter()
                    .find(|s| matches!(s, Source::Header(_) | Source::Body(_)))
                    .map(|s| format!("its source {s} is set by the caller"))
            }),
        };
        if let Some(why) = why {
            warn(
                &mut out,
                format!(
                    "metrics.labels has \"{label}\", whose values are unbounded ({why}); past metrics.max_label_values ({}) label combinations per metric, new ones are counted as \"other\"; per-{label} numbers belong in the access log",
                    cfg.max_label_values
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Outcome {
        check_bytes("t", text.as_bytes())
    }

    #[test]
    fn errors_carry_the_filter_path() {
        let o = check(r#"{"dimensions":{"user":["header:x-user-id","heder:x"]},"require":[["user"]]}"#);
        assert_eq!(o.status, 1);
        assert!(
            o.text.contains("dimensions.user[1]: unknown source kind \"heder\""),
            "{}",
            o.text
        );
        let o = check("{\"mode\": ");
        assert_eq!(o.status, 1, "{}", o.text);
    }

    #[test]
    fn warnings() {
        let o = check(
            r#"{"dimensions":{"user":["header:x-user-id"],"bu":["body:metadata.bu"],"team":["api_key:team"]},"require":[["user","bu"],["team"]],"pricing":{"gtp-4o*":{"input":2.5,"output":10}},"metrics":{"labels":["user","model"]}}"#,
        );
        assert_eq!(o.status, 0, "{}", o.text);
        for want in [
            "unless the listener requires mTLS",
            "require[0] names \"bu\", whose only sources read the JSON request body",
            "require[1] names \"team\", whose sources can never yield a value (no api_keys.owners entry has a \"team\" field)",
            "pricing.gtp-4o*: matches no known model name",
            "metrics.labels has \"user\"",
            "metrics.labels has \"model\"",
        ] {
            assert!(o.text.contains(want), "missing {want:?} in\n{}", o.text);
        }
    }

    #[test]
    fn bootstrap_listener_facts() {
        let cfg = r#"{\"dimensions\":{\"user\":[\"header:x-user-id\"],\"sa\":[\"peer:spiffe_id\"],\"bu\":[\"node:BU\"]},\"require\":[[\"sa\"],[\"user\",\"bu\"]],\"pricing\":{\"gpt-4o*\":{\"input\":1,\"output\":2}}}"#;
        let yaml = format!(
            r#"
node: {{metadata: {{OTHER: x}}}}
static_resources:
  listeners:
  - name: gw
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                root_id: ai_attribution
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: "{cfg}"
          - name: envoy.filters.http.wasm
            typed_config:
              config: {{root_id: other_plugin}}
"#
        );
        let o = check(&yaml);
        assert_eq!(o.status, 0, "{}", o.text);
        assert!(o.text.contains("listener \"gw\" has no mTLS"), "{}", o.text);
        assert!(
            o.text.contains(
                "\"sa\", whose sources can never yield a value (listener \"gw\" does not require client certificates)"
            ),
            "{}",
            o.text
        );
        assert!(o.text.contains("node.metadata has no \"BU\""), "{}", o.text);
        assert!(
            o.text.contains("no alternative of require can ever be met"),
            "{}",
            o.text
        );
        assert_eq!(o.text.matches("http_filters[").count(), 1, "{}", o.text);
    }

    #[test]
    fn nothing_to_check() {
        assert_eq!(check("kind: Telemetry\n").status, 1);
        assert_eq!(check("").status, 1);
        assert_eq!(check("a: [\n").status, 1);
        assert_eq!(check("- 1\n- 2\n").status, 1);
        assert_eq!(check_bytes("t", b"\xff\xfe").status, 1);
        let o = check("dynamic_resources: {lds_config: {path: /x}}\n");
        assert_eq!(o.status, 1);
        assert!(o.text.contains("dynamic_resources (xDS)"), "{}", o.text);
        assert_eq!(run("/nonexistent/file.yaml").status, 2);
    }
}
