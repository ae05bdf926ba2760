//! `explain`: one request described on the command line, run through the filter's own lifecycle
//! (`Call::start`, the request body, the answer when one is given, `finish`) against a plugin
//! configuration, and what came of it: whether it is an AI event, the decision, where each
//! dimension came from or why it has no value, the header edits, the answer a refused client
//! gets, the record and the metric series.
//!
//! Nothing here decides anything: every outcome is the filter's. The explanation only reads the
//! record back (its `sources` and `reason`) against the configuration to say it per dimension.

use crate::check::{find_configs, Found};
use ai_attribution::call::{Call, Effect, Finished, Step, VmState};
use ai_attribution::config::{Config, JwtFrom, Mode};
use ai_attribution::host::{view, HeaderList, MapAttributes};
use ai_attribution::identity::spiffe::parse_spiffe_id;
use ai_attribution::quota::CheckAnswer;
use ai_attribution::record::{dimension_otel_name, Key, Record, RecordValue};
use ai_attribution::reject::LocalReply;
use ai_attribution::request::{trusted_peer, JWT_AUTHN_NAMESPACE};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::rc::Rc;

/// The largest body read from a file or standard input.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Where the configuration is and which of its plugin configurations to use.
#[derive(Debug, Clone, Default)]
pub struct ConfigChoice {
    pub file: String,
    /// 1-based, in the order `check` lists them.
    pub plugin: Option<usize>,
}

/// The request as the client sends it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authority: String,
    /// Lower-cased names, in the order given.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// What Envoy knows about the request besides its headers.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub peer_spiffe_id: Option<String>,
    pub peer_subject: Option<String>,
    pub peer_dns_san: Option<String>,
    pub local_spiffe_id: Option<String>,
    /// `KEY=VALUE` from the command line; they override the bootstrap's `node.metadata`.
    pub node_metadata: Vec<(String, String)>,
    /// Any other Envoy attribute, by dotted path.
    pub properties: Vec<(String, String)>,
    /// The verified payload `jwt_authn` stores in the stream's metadata.
    pub jwt_payload: Option<Map<String, Value>>,
}

/// The upstream's answer, when one is simulated.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Everything `explain` is given.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub config: ConfigChoice,
    pub request: Request,
    pub host: HostFacts,
    pub response: Option<Response>,
}

/// Why `explain` could not run: exit status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u8,
    pub message: String,
}

fn usage(message: String) -> Failure {
    Failure { status: 2, message }
}

fn config_error(message: String) -> Failure {
    Failure { status: 1, message }
}

// ---- parsing command-line values ------------------------------------------------------------

/// `name:value` (the first colon splits; spaces around the value are trimmed, as curl does).
pub fn parse_header(flag: &str, text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(format!("{flag} \"{text}\": expected NAME:VALUE"));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!(
            "{flag} \"{text}\": the name is empty (pseudo-headers are set with --method, --path and --authority)"
        ));
    }
    if !name.bytes().all(is_token_byte) {
        return Err(format!("{flag} \"{text}\": \"{name}\" is not a valid header name"));
    }
    Ok((name.to_ascii_lowercase(), value.trim().to_string()))
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `KEY=VALUE`, with a non-empty key.
pub fn parse_pair(flag: &str, text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{flag} \"{text}\": expected KEY=VALUE")),
    }
}

/// A JWT payload file: one JSON object.
pub fn parse_jwt_payload(name: &str, bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!(
            "--jwt-payload {name}: expected a JSON object (the token's claims, as jwt_authn stores them)"
        )),
        Err(e) => Err(format!("--jwt-payload {name}: not JSON: {e}")),
    }
}

// ---- jwt_authn's metadata, as Envoy hands it to the filter -----------------------------------

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn length_delimited(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// `google.protobuf.Value` of any JSON value (nesting is bounded by serde_json's own limit).
fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => {
            varint(1 << 3, out);
            varint(0, out);
        }
        Value::Number(n) => {
            varint(2 << 3 | 1, out);
            out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
        }
        Value::String(s) => length_delimited(3, s.as_bytes(), out),
        Value::Bool(b) => {
            varint(4 << 3, out);
            varint(u64::from(*b), out);
        }
        Value::Object(m) => length_delimited(5, &encode_struct(m), out),
        Value::Array(items) => {
            let mut list = Vec::new();
            for item in items {
                let mut one = Vec::new();
                encode_value(item, &mut one);
                length_delimited(1, &one, &mut list);
            }
            length_delimited(6, &list, out);
        }
    }
}

/// `google.protobuf.Struct { map<string, Value> fields = 1; }`.
fn encode_struct(m: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in m {
        let mut entry = Vec::new();
        length_delimited(1, k.as_bytes(), &mut entry);
        let mut value = Vec::new();
        encode_value(v, &mut value);
        length_delimited(2, &value, &mut entry);
        length_delimited(1, &entry, &mut out);
    }
    out
}

/// The stream's `metadata` attribute (`envoy.config.core.v3.Metadata`) with the payload under
/// `filter_metadata["envoy.filters.http.jwt_authn"][payload_key]`, as `payload_in_metadata` puts it.
pub fn jwt_authn_metadata(payload_key: &str, payload: &Map<String, Value>) -> Vec<u8> {
    let mut ns = Map::new();
    ns.insert(payload_key.to_string(), Value::Object(payload.clone()));
    let mut entry = Vec::new();
    length_delimited(1, JWT_AUTHN_NAMESPACE.as_bytes(), &mut entry);
    length_delimited(2, &encode_struct(&ns), &mut entry);
    let mut out = Vec::new();
    length_delimited(1, &entry, &mut out);
    out
}

// ---- running the request ------------------------------------------------------------------------

/// How one dimension came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimStatus {
    /// A value, from this source; `unverified`: an unverified JWT claim.
    Value {
        value: String,
        source: String,
        unverified: bool,
    },
    /// No value: no source had one.
    Absent,
    /// No value: a source had one that broke a rule (ambiguous, control characters, too long,
    /// an object claim, a foreign trust domain, conflicting API keys).
    Invalid,
    /// No value: a header source was sent by a peer that is not in `header_trust.peers`.
    Untrusted,
}

impl DimStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DimStatus::Value { unverified: false, .. } => "verified",
            DimStatus::Value { unverified: true, .. } => "unverified",
            DimStatus::Absent => "absent",
            DimStatus::Invalid => "invalid",
            DimStatus::Untrusted => "untrusted",
        }
    }
}

/// One dimension of the explanation.
#[derive(Debug, Clone)]
pub struct DimExplained {
    pub name: String,
    pub status: DimStatus,
    /// The dimension's configured sources, in order.
    pub sources: Vec<String>,
    /// Whether its value counts toward `require` (an unverified one only by
    /// `jwt.unverified_satisfies_require`).
    pub counts: bool,
}

/// One alternative of `require` (or `mcp.require`).
#[derive(Debug, Clone)]
pub struct Alternative {
    pub dimensions: Vec<String>,
    /// The dimensions that kept it from being met.
    pub unmet: Vec<String>,
}

/// What the filter did with the request.
pub struct Explanation {
    pub file: String,
    pub location: String,
    pub mode: Mode,
    pub request: Request,
    /// Automatic additions to the request (e.g. `content-length`), for the summary.
    pub added_headers: Vec<String>,
    pub peer: PeerFacts,
    /// `None`: not an AI event.
    pub finished: Option<Finished>,
    pub dimensions: Vec<DimExplained>,
    /// The alternatives the call had to meet (`mcp.require` for a tool call).
    pub require: Vec<Alternative>,
    pub require_name: &'static str,
    /// Every effect, in the order the filter asked for them, with the phase.
    pub effects: Vec<(Phase, Effect)>,
    /// The filter read the request body (false: it had no use for it, or refused at the headers).
    pub body_read: bool,
    pub response_simulated: bool,
    pub metrics: Vec<(String, u64)>,
    pub notes: Vec<String>,
    /// For a request that is no AI event: why.
    pub not_event: Option<String>,
}

/// The callback an effect came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::RequestHeaders => "request_headers",
            Phase::RequestBody => "request_body",
            Phase::ResponseHeaders => "response_headers",
        }
    }
}

/// The peer as the filter sees it.
#[derive(Debug, Clone, Default)]
pub struct PeerFacts {
    pub spiffe_id: Option<String>,
    /// The peer is in `header_trust.peers` (by the filter's own test).
    pub trusted: bool,
    /// `header_trust.peers` is configured.
    pub peers_configured: bool,
}

/// Picks the plugin configuration and parses it with the filter's parser.
fn load(choice: &ConfigChoice) -> Result<(Found, Config), Failure> {
    let bytes = std::fs::read(&choice.file).map_err(|e| usage(format!("{}: cannot read: {e}", choice.file)))?;
    let mut found = find_configs(&bytes).map_err(|e| config_error(format!("{}: {e}", choice.file)))?;
    if found.is_empty() {
        return Err(config_error(format!(
            "{}: no ai_attribution plugin configuration found (expected a plugin config, an Envoy bootstrap with an envoy.filters.http.wasm filter loading ai_attribution, an Istio WasmPlugin or an Envoy Gateway EnvoyExtensionPolicy)",
            choice.file
        )));
    }
    let list = |found: &[Found]| -> String {
        found
            .iter()
            .enumerate()
            .map(|(i, f)| format!("\n  {}: {}", i + 1, f.location))
            .collect()
    };
    let index = match choice.plugin {
        Some(n) if n >= 1 && n <= found.len() => n - 1,
        Some(n) => {
            return Err(usage(format!(
                "--plugin {n}: {} holds {} plugin configuration(s):{}",
                choice.file,
                found.len(),
                list(&found)
            )))
        }
        None if found.len() == 1 => 0,
        None => {
            return Err(usage(format!(
                "{} holds {} plugin configurations; choose one with --plugin N:{}",
                choice.file,
                found.len(),
                list(&found)
            )))
        }
    };
    let target = found.swap_remove(index);
    if let Some(e) = target.errors.first() {
        return Err(config_error(format!(
            "{}: {}: {e} (ai-attribution check {} lists every error)",
            choice.file, target.location, choice.file
        )));
    }
    match Config::parse(&target.bytes) {
        Ok(cfg) => Ok((target, cfg)),
        Err(e) => Err(config_error(format!(
            "{}: {}: the plugin configuration is invalid: {e} (ai-attribution check {} lists every error)",
            choice.file, target.location, choice.file
        ))),
    }
}

fn header_list(pairs: &[(String, String)]) -> HeaderList {
    pairs.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect()
}

fn collect(effects: &mut Vec<(Phase, Effect)>, phase: Phase, step: Step) -> Option<LocalReply> {
    let mut reply = None;
    for e in step.effects {
        if let Effect::LocalReply(r) = &e {
            reply = Some(r.clone());
        }
        effects.push((phase, e));
    }
    reply
}

/// A `RateLimitResponse` whose overall code is OK.
const QUOTA_OK: [u8; 2] = [0x08, 0x01];

/// When the last step asked the rate-limit service about budgets, answers "within budget" (the
/// command has no service to ask) and says so.
fn answer_quota(
    call: &mut Call,
    effects: &mut Vec<(Phase, Effect)>,
    phase: Phase,
    notes: &mut Vec<String>,
) -> Option<LocalReply> {
    let asked = effects.iter().rev().find_map(|(p, e)| match e {
        Effect::CheckQuota {
            cluster, timeout_ms, ..
        } if *p == phase => Some((cluster.clone(), *timeout_ms)),
        _ => None,
    });
    let (cluster, timeout_ms) = asked?;
    notes.push(format!(
        "the call's budgets are checked with the rate-limit service on cluster \"{cluster}\" (timeout {timeout_ms} ms) before it goes on; explain assumes they have room"
    ));
    let step = call.on_quota_answer(&CheckAnswer::Answer(QUOTA_OK.to_vec()));
    collect(effects, phase, step)
}

/// Runs the request through the filter and explains the outcome.
pub fn run(inputs: &Inputs) -> Result<Explanation, Failure> {
    let (found, cfg) = load(&inputs.config)?;
    let cfg = Rc::new(cfg);
    let mut notes = Vec::new();
    let req = &inputs.request;
    if !req.path.starts_with('/') && req.path != "*" {
        return Err(usage(format!("--path \"{}\": must start with /", req.path)));
    }

    // The request headers as Envoy hands them over: pseudo-headers first.
    let mut pairs = vec![
        (":method".to_string(), req.method.clone()),
        (":path".to_string(), req.path.clone()),
        (":authority".to_string(), req.authority.clone()),
        (":scheme".to_string(), "http".to_string()),
    ];
    pairs.extend(req.headers.iter().filter(|(n, _)| n != "host").cloned());
    let mut added = Vec::new();
    if let Some(body) = &req.body {
        let has = |name: &str| req.headers.iter().any(|(n, _)| n == name);
        if !has("content-length") && !has("transfer-encoding") {
            pairs.push(("content-length".to_string(), body.len().to_string()));
            added.push(format!("content-length: {}", body.len()));
        }
    }
    let headers = header_list(&pairs);

    // What Envoy knows about the stream.
    let mut host = MapAttributes::default();
    let facts = &inputs.host;
    if let Some(id) = &facts.peer_spiffe_id {
        if parse_spiffe_id(id).is_none() {
            notes.push(format!(
                "--peer-spiffe-id \"{id}\" is not a SPIFFE ID (spiffe://trust-domain/path): the filter sees no peer SPIFFE ID"
            ));
        }
        host.set("connection.uri_san_peer_certificate", id.as_bytes());
    }
    if let Some(s) = &facts.peer_subject {
        host.set("connection.subject_peer_certificate", s.as_bytes());
    }
    if let Some(s) = &facts.peer_dns_san {
        host.set("connection.dns_san_peer_certificate", s.as_bytes());
    }
    if let Some(s) = &facts.local_spiffe_id {
        host.set("connection.uri_san_local_certificate", s.as_bytes());
    }
    if let Some(meta) = &found.node_metadata {
        for (k, v) in meta {
            if let Some(s) = v.as_str() {
                host.set(&format!("xds.node.metadata.{k}"), s.as_bytes());
            }
        }
    }
    for (k, v) in &facts.node_metadata {
        host.set(&format!("xds.node.metadata.{k}"), v.as_bytes());
    }
    for (k, v) in &facts.properties {
        host.set(k, v.as_bytes());
    }
    if let Some(payload) = &facts.jwt_payload {
        if cfg.jwt.from != JwtFrom::JwtAuthn {
            notes.push(format!(
                "--jwt-payload is what jwt_authn stores, but this configuration reads tokens from {}: the payload is not read",
                match cfg.jwt.from {
                    JwtFrom::Header => format!("the {} header (jwt.from: header)", cfg.jwt.header),
                    _ => "the Authorization bearer token, unverified (jwt.from: bearer_unverified)".to_string(),
                }
            ));
        } else if found.jwt_authn_before == Some(false) {
            notes.push(
                "no envoy.filters.http.jwt_authn filter runs before this one on this listener: in Envoy there would be no payload"
                    .to_string(),
            );
        }
        host.set("metadata", jwt_authn_metadata(&cfg.jwt.payload_key, payload));
    }
    let has_peer_cert = facts.peer_spiffe_id.is_some() || facts.peer_subject.is_some() || facts.peer_dns_san.is_some();
    if has_peer_cert && found.listener_mtls == Some(false) {
        notes.push(
            "this listener does not require client certificates: a peer identity is there only when the client presents one"
                .to_string(),
        );
    }
    let peer = PeerFacts {
        spiffe_id: facts.peer_spiffe_id.clone().filter(|id| parse_spiffe_id(id).is_some()),
        trusted: trusted_peer(&cfg, &mut host),
        peers_configured: !cfg.trusted_peers.is_empty(),
    };

    // The lifecycle, as the wasm glue drives it.
    let mut vm = VmState::new([0; 32], cfg.max_label_values);
    let mut effects = Vec::new();
    let (call, step) = Call::start(&cfg, &view(&headers), req.body.is_none(), &mut host, &mut vm);
    let mut reply = collect(&mut effects, Phase::RequestHeaders, step);
    let Some(mut call) = call else {
        return Ok(Explanation {
            file: inputs.config.file.clone(),
            location: found.location,
            mode: cfg.mode,
            request: req.clone(),
            added_headers: added,
            peer,
            finished: None,
            dimensions: Vec::new(),
            require: Vec::new(),
            require_name: "require",
            effects,
            body_read: false,
            response_simulated: false,
            metrics: Vec::new(),
            notes,
            not_event: Some(why_not_event(&cfg, req)),
        });
    };
    if reply.is_none() {
        reply = answer_quota(&mut call, &mut effects, Phase::RequestHeaders, &mut notes);
    }
    let mut body_read = false;
    if let Some(body) = &req.body {
        if reply.is_none() && call.wants_request_body() {
            body_read = true;
            let step = call.on_request_body(body, true, &mut host);
            reply = collect(&mut effects, Phase::RequestBody, step);
            if reply.is_none() {
                reply = answer_quota(&mut call, &mut effects, Phase::RequestBody, &mut notes);
            }
        }
    }
    let mut response_simulated = false;
    if let (None, Some(resp)) = (&reply, &inputs.response) {
        response_simulated = true;
        let mut rh = vec![(":status".to_string(), resp.status.to_string())];
        rh.extend(resp.headers.iter().cloned());
        if !resp.headers.iter().any(|(n, _)| n == "content-type") {
            rh.push(("content-type".to_string(), "application/json".to_string()));
        }
        let step = call.on_response_headers(&view(&header_list(&rh)), resp.body.is_empty());
        let _ = collect(&mut effects, Phase::ResponseHeaders, step);
        if call.wants_response_body() {
            let _ = call.on_response_body(&resp.body, true);
        }
    } else if reply.is_some() && inputs.response.is_some() {
        notes.push("the call was refused, so no upstream answer comes: --response-* are not used".to_string());
    }
    if req.body.is_some() && !body_read {
        notes.push(if reply.is_some() {
            "the body was not read: the call was refused at its headers".to_string()
        } else {
            "the filter had no use for this request's body and did not read it".to_string()
        });
    }
    let finished = call.finish(&mut host, &mut vm);
    let metrics = finished
        .counts
        .iter()
        .filter_map(|(id, n)| vm.series_name(*id).map(|name| (name.to_string(), *n)))
        .collect();
    let dimensions = explain_dimensions(&cfg, &finished.record);
    let tool = finished.record.tool.is_some();
    let alternatives = if tool { &cfg.mcp.require } else { &cfg.require };
    let require = alternatives
        .iter()
        .map(|alt| {
            let name = |i: &usize| cfg.dimensions.get(*i).map_or("?".to_string(), |d| d.name.clone());
            Alternative {
                dimensions: alt.iter().map(name).collect(),
                unmet: alt
                    .iter()
                    .filter(|i| !dimensions.get(**i).is_some_and(|d| d.counts))
                    .map(name)
                    .collect(),
            }
        })
        .collect();
    let invalid: Vec<&DimExplained> = dimensions.iter().filter(|d| d.status == DimStatus::Invalid).collect();
    if !invalid.is_empty() {
        notes.push(
            "invalid: a header sent twice with different values, control characters, a value over the size limit, a claim that is an object or a list, a SPIFFE ID of a foreign trust domain, or two different API keys on one call"
                .to_string(),
        );
    }
    let kubernetes_peer = |d: &&DimExplained| {
        d.sources
            .iter()
            .any(|s| s == "peer:spiffe_namespace" || s == "peer:spiffe_service_account")
    };
    if invalid.iter().any(kubernetes_peer) && cfg.peer_trust_domains.is_empty() && facts.local_spiffe_id.is_none() {
        notes.push(
            "peer:spiffe_namespace and peer:spiffe_service_account are read only from the local trust domain: peer.trust_domains, else the trust domain of Envoy's own certificate; give that certificate's URI SAN with --local-spiffe-id"
                .to_string(),
        );
    }
    if let Some(t) = &finished.record.tool {
        if finished.record.decision.as_str() == "exempt" {
            notes.push(match (&t.mcp_method, req.body.is_some()) {
                (_, false) => "exempt: a request without a body (the GET of a stream, the DELETE that ends a session) need not be attributed".to_string(),
                (Some(m), true) => format!(
                    "exempt: {m} is not in mcp.methods ({}), so it need not be attributed",
                    cfg.mcp.methods.join(", ")
                ),
                (None, true) => "exempt: the body names no method of mcp.methods".to_string(),
            });
        }
    }
    Ok(Explanation {
        file: inputs.config.file.clone(),
        location: found.location,
        mode: cfg.mode,
        request: req.clone(),
        added_headers: added,
        peer,
        finished: Some(finished),
        dimensions,
        require,
        require_name: if tool { "mcp.require" } else { "require" },
        effects,
        body_read,
        response_simulated,
        metrics,
        notes,
        not_event: None,
    })
}

fn why_not_event(cfg: &Config, req: &Request) -> String {
    let mcp = if cfg.mcp.endpoints.is_empty() {
        "no mcp.endpoints are configured".to_string()
    } else {
        let prefixes: Vec<String> = cfg
            .mcp
            .endpoints
            .iter()
            .map(|e| format!("/{}", e.prefix.join("/")))
            .collect();
        format!(
            "the path is under no MCP endpoint ({}, on its hosts)",
            prefixes.join(", ")
        )
    };
    format!(
        "neither a model call ({} {} on {} matches no model API route of the configured providers nor a model host, or it is a free endpoint or a CORS preflight) nor a tool call ({mcp})",
        req.method, req.path, req.authority
    )
}

/// Reads the record's `sources` back against the configuration: `dim=source[(unverified)]`
/// for every dimension that has a value, in configuration order. Matching each dimension's own
/// source strings keeps values with commas (a `static:` one) from splitting the list.
fn resolved_sources(cfg: &Config, record: &Record) -> Vec<Option<(String, bool)>> {
    let mut rest = record.sources.as_str();
    let mut out = Vec::with_capacity(cfg.dimensions.len());
    for (i, d) in cfg.dimensions.iter().enumerate() {
        let has_value = record.dimensions.get(i).is_some_and(|(_, v)| v.is_some());
        let prefix = format!("{}=", d.name);
        if !has_value || !rest.starts_with(&prefix) {
            out.push(None);
            continue;
        }
        let after = rest.get(prefix.len()..).unwrap_or("");
        let mut names: Vec<String> = d.sources.iter().map(ToString::to_string).collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let mut hit = None;
        for n in names {
            let Some(tail) = after.strip_prefix(n.as_str()) else {
                continue;
            };
            let (unverified, tail) = match tail.strip_prefix("(unverified)") {
                Some(t) => (true, t),
                None => (false, tail),
            };
            if tail.is_empty() || tail.starts_with(',') {
                hit = Some((n, unverified, tail.strip_prefix(',').unwrap_or(tail)));
                break;
            }
        }
        match hit {
            Some((n, unverified, tail)) => {
                out.push(Some((n, unverified)));
                rest = tail;
            }
            None => out.push(None),
        }
    }
    out
}

/// The dimensions named under each label of the record's `reason`
/// (`invalid:a,b;untrusted:c;unverified:d;missing:e`).
fn reason_lists(reason: &str) -> Vec<(&str, Vec<&str>)> {
    reason
        .split(';')
        .filter_map(|part| part.split_once(':'))
        .map(|(label, dims)| (label, dims.split(',').filter(|d| !d.is_empty()).collect()))
        .collect()
}

fn explain_dimensions(cfg: &Config, record: &Record) -> Vec<DimExplained> {
    let sources = resolved_sources(cfg, record);
    let reasons = reason_lists(&record.reason);
    let named = |label: &str, dim: &str| reasons.iter().any(|(l, dims)| *l == label && dims.contains(&dim));
    cfg.dimensions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let value = record.dimensions.get(i).and_then(|(_, v)| v.clone());
            let status = match (value, sources.get(i).cloned().flatten()) {
                (Some(value), Some((source, unverified))) => DimStatus::Value {
                    value,
                    source,
                    unverified,
                },
                (Some(value), None) => DimStatus::Value {
                    value,
                    source: "?".to_string(),
                    unverified: false,
                },
                (None, _) if named("invalid", &d.name) => DimStatus::Invalid,
                (None, _) if named("untrusted", &d.name) => DimStatus::Untrusted,
                (None, _) => DimStatus::Absent,
            };
            let counts = match &status {
                DimStatus::Value { unverified, .. } => !unverified || cfg.jwt.unverified_satisfies_require,
                _ => false,
            };
            DimExplained {
                name: d.name.clone(),
                status,
                sources: d.sources.iter().map(ToString::to_string).collect(),
                counts,
            }
        })
        .collect()
}

// ---- rendering ----------------------------------------------------------------------------------

fn value_json(v: &RecordValue<'_>) -> Value {
    match v {
        RecordValue::Text(t) => Value::String((*t).to_string()),
        RecordValue::Count(n) => json!(n),
        RecordValue::Flag(b) => json!(b),
        RecordValue::Usd(c) => serde_json::Number::from_f64(*c).map_or(Value::Null, Value::Number),
    }
}

fn value_text(v: &RecordValue<'_>) -> String {
    match v {
        RecordValue::Text(t) => (*t).to_string(),
        RecordValue::Count(n) => n.to_string(),
        RecordValue::Flag(b) => b.to_string(),
        RecordValue::Usd(c) => ai_attribution::record::format_cost(*c),
    }
}

fn key_names(record: &Record, key: Key) -> (String, String) {
    match key {
        Key::Field(f) => (f.scalar_name().to_string(), f.otel_name().to_string()),
        Key::Dimension(i) => {
            let name = record.dimensions.get(i).map_or("", |(n, _)| n.as_str());
            (name.to_string(), dimension_otel_name(name))
        }
    }
}

/// The structured record (`record.value` in the access log), with its OpenTelemetry names.
pub fn record_json(record: &Record) -> Value {
    let mut m = Map::new();
    for (key, value) in record.entries() {
        m.insert(key_names(record, key).1, value_json(&value));
    }
    Value::Object(m)
}

fn reply_of(x: &Explanation) -> Option<&LocalReply> {
    x.effects.iter().find_map(|(_, e)| match e {
        Effect::LocalReply(r) => Some(r),
        _ => None,
    })
}

fn event_text(record: &Record) -> String {
    match &record.tool {
        Some(t) => {
            let mut s = format!("MCP {}", t.mcp_method.as_deref().unwrap_or("request without a method"));
            if let Some(tool) = &t.tool {
                let _ = write!(s, ", tool {tool}");
            }
            if let Some(p) = &t.prompt {
                let _ = write!(s, ", prompt {p}");
            }
            if let Some(u) = &t.resource_uri {
                let _ = write!(s, ", resource {u}");
            }
            if let Some(id) = &t.jsonrpc_id {
                let _ = write!(s, ", JSON-RPC id {id}");
            }
            if let Some(session) = &t.mcp_session {
                let _ = write!(s, ", MCP session {session}");
            }
            s
        }
        None => {
            let mut s = format!("provider {}, operation {}", record.provider, record.operation);
            if let Some(m) = record.response_model.as_deref().or(record.request_model.as_deref()) {
                let _ = write!(s, ", model {m}");
            }
            if record.stream == Some(true) {
                s.push_str(", streamed");
            }
            s
        }
    }
}

fn dim_text(d: &DimExplained, x: &Explanation, unverified_counts: bool) -> String {
    let tried = d.sources.join(", ");
    match &d.status {
        DimStatus::Value {
            value,
            source,
            unverified: false,
        } => format!("{value}  from {source}"),
        DimStatus::Value { value, source, .. } => format!(
            "{value}  from {source}, unverified (a claim of a token whose signature was not checked; {})",
            if unverified_counts {
                "it counts toward require: jwt.unverified_satisfies_require"
            } else {
                "recorded, never propagated, and it does not count toward require"
            }
        ),
        DimStatus::Absent => format!("none: absent (tried {tried})"),
        DimStatus::Invalid => format!("none: invalid (a value was there but broke a rule; tried {tried})"),
        DimStatus::Untrusted => format!(
            "none: untrusted (the header was sent, but {}; tried {tried})",
            match &x.peer.spiffe_id {
                Some(id) => format!("the peer {id} is not in header_trust.peers"),
                None => "no peer certificate identifies the sender as one of header_trust.peers".to_string(),
            }
        ),
    }
}

fn printable(s: &str) -> String {
    crate::output::printable(s)
}

/// The explanation for a terminal (control characters in values replaced).
pub fn render_text(x: &Explanation) -> String {
    text(x).lines().map(|l| printable(l) + "\n").collect()
}

fn text(x: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "configuration: {}: {}", x.file, x.location);
    let r = &x.request;
    let body = match &r.body {
        Some(b) => format!(", body of {} bytes", b.len()),
        None => ", no body".to_string(),
    };
    let _ = writeln!(
        out,
        "request: {} {} (authority {}){body}",
        r.method, r.path, r.authority
    );
    for (n, v) in &r.headers {
        let _ = writeln!(out, "  {n}: {v}");
    }
    for a in &x.added_headers {
        let _ = writeln!(out, "  {a}  (added, as a client would send it)");
    }
    let who = match &x.peer.spiffe_id {
        Some(id) => id.clone(),
        None => "no SPIFFE ID (--peer-spiffe-id)".to_string(),
    };
    let trust = match (x.peer.peers_configured, x.peer.trusted) {
        (false, _) => "header_trust.peers is not set, so header sources are believed from any caller (x-ai-* headers are still stripped)",
        (true, true) => "in header_trust.peers, so its headers are believed and its x-ai-* headers kept",
        (true, false) => "not in header_trust.peers, so header sources are untrusted and x-ai-* headers are stripped",
    };
    let _ = writeln!(out, "peer: {who}; {trust}");
    out.push('\n');

    let Some(f) = &x.finished else {
        let _ = writeln!(
            out,
            "event: none, not an AI event: {}",
            x.not_event.as_deref().unwrap_or("")
        );
        let _ = writeln!(out, "decision: none (the request passes; no record is written)");
        render_edits(x, &mut out);
        render_notes(x, &mut out);
        return out;
    };
    let record = &f.record;
    let _ = writeln!(out, "event: {}: {}", record.event.as_str(), event_text(record));
    let mode = match x.mode {
        Mode::Enforce => "enforce",
        Mode::Audit => "audit",
    };
    let reason = if record.reason.is_empty() {
        String::new()
    } else {
        format!(", reason {}", record.reason)
    };
    let _ = writeln!(out, "decision: {}{reason} (mode {mode})", record.decision.as_str());
    let _ = writeln!(out, "correlation id: {}", record.correlation_id);
    if !x.require.is_empty() {
        let _ = writeln!(out, "{} (one alternative must be met):", x.require_name);
        for alt in &x.require {
            let state = if alt.unmet.is_empty() {
                "met".to_string()
            } else {
                format!("not met, lacks {}", alt.unmet.join(", "))
            };
            let _ = writeln!(out, "  {}: {state}", alt.dimensions.join(" + "));
        }
    }
    out.push('\n');
    let _ = writeln!(out, "dimensions:");
    let width = x.dimensions.iter().map(|d| d.name.len()).max().unwrap_or(0);
    let unverified_counts = x
        .dimensions
        .iter()
        .any(|d| matches!(d.status, DimStatus::Value { unverified: true, .. }) && d.counts);
    for d in &x.dimensions {
        let _ = writeln!(out, "  {:width$}  {}", d.name, dim_text(d, x, unverified_counts));
    }
    render_edits(x, &mut out);
    if let Some(reply) = reply_of(x) {
        out.push('\n');
        let refused_at_headers = x
            .effects
            .iter()
            .any(|(phase, e)| *phase == Phase::RequestHeaders && matches!(e, Effect::LocalReply(_)));
        let _ = writeln!(
            out,
            "answer to the client (the filter answers itself; {}):",
            if refused_at_headers {
                "nothing is forwarded"
            } else {
                "the request body is not forwarded"
            }
        );
        let _ = writeln!(out, "  status {}", reply.status);
        for (n, v) in &reply.headers {
            let _ = writeln!(out, "  {n}: {v}");
        }
        let _ = writeln!(out, "  body: {}", reply.body);
    } else if !x.response_simulated {
        out.push('\n');
        let _ = writeln!(
            out,
            "answer: forwarded upstream; no answer simulated (--response-body FILE, --response-status, --response-header give one, for usage, cost and the tool's outcome)"
        );
    }
    out.push('\n');
    let _ = writeln!(out, "record (the access log's flat keys):");
    for (key, value) in record.entries() {
        let text = value_text(&value);
        let text = if text.is_empty() { "\"\"".to_string() } else { text };
        let _ = writeln!(out, "  {}: {text}", key_names(record, key).0);
    }
    if !x.metrics.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "metrics:");
        for (name, n) in &x.metrics {
            let _ = writeln!(out, "  {name} +{n}");
        }
    }
    render_notes(x, &mut out);
    out
}

fn render_edits(x: &Explanation, out: &mut String) {
    let request: Vec<String> = x
        .effects
        .iter()
        .filter_map(|(phase, e)| {
            let when = match phase {
                Phase::RequestBody => "  (once the body was read)",
                _ => "",
            };
            match e {
                Effect::RemoveRequestHeader(n) => Some(format!("remove {n}{when}")),
                Effect::SetRequestHeader(n, v) => Some(format!("set {n}: {v}{when}")),
                Effect::ReplaceRequestBody { len, with } => Some(format!(
                    "body rewritten: the first {len} bytes replaced by {} bytes (stream_options.include_usage added)",
                    with.len()
                )),
                _ => None,
            }
        })
        .collect();
    let response: Vec<String> = x
        .effects
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::SetResponseHeader(n, v) => Some(format!("set {n}: {v}")),
            _ => None,
        })
        .collect();
    let refused_at = x.effects.iter().find_map(|(phase, e)| match e {
        Effect::LocalReply(_) => Some(*phase),
        _ => None,
    });
    out.push('\n');
    if request.is_empty() {
        let _ = writeln!(out, "request headers: unchanged");
    } else {
        let _ = writeln!(
            out,
            "request headers{}:",
            match refused_at {
                Some(Phase::RequestHeaders) => " (the call is refused at its headers: nothing is forwarded)",
                Some(_) => {
                    " (the headers went on with these edits while the body was held for the decision; the body never follows)"
                }
                None => " (as forwarded upstream)",
            }
        );
        for r in request {
            let _ = writeln!(out, "  {r}");
        }
    }
    if !response.is_empty() {
        let _ = writeln!(out, "response headers (the answer to the client):");
        for r in response {
            let _ = writeln!(out, "  {r}");
        }
    }
}

fn render_notes(x: &Explanation, out: &mut String) {
    if x.notes.is_empty() {
        return;
    }
    out.push('\n');
    for n in &x.notes {
        let _ = writeln!(out, "note: {n}");
    }
}

/// The explanation for scripts.
pub fn render_json(x: &Explanation) -> Value {
    let r = &x.request;
    let mut removed = Vec::new();
    let mut set = Vec::new();
    let mut response_set = Vec::new();
    let mut body_rewrite = Value::Null;
    let mut filter_state = Vec::new();
    for (phase, e) in &x.effects {
        match e {
            Effect::RemoveRequestHeader(n) => removed.push(json!({"name": n, "phase": phase.as_str()})),
            Effect::SetRequestHeader(n, v) => set.push(json!({"name": n, "value": v, "phase": phase.as_str()})),
            Effect::SetResponseHeader(n, v) => response_set.push(json!({"name": n, "value": v})),
            Effect::ReplaceRequestBody { len, with } => {
                body_rewrite = json!({"replaced_bytes": len, "with": String::from_utf8_lossy(with)});
            }
            Effect::LocalReply(_) | Effect::CheckQuota { .. } => {}
            Effect::SetFilterState(k, v) => filter_state.push(json!({"name": format!("wasm.{k}"), "value": v})),
        }
    }
    let reply = reply_of(x).map(|reply| {
        json!({
            "status": reply.status,
            "headers": reply.headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "body": reply.body,
            "body_json": serde_json::from_str::<Value>(&reply.body).ok(),
        })
    });
    let record = x.finished.as_ref().map(|f| &f.record);
    json!({
        "configuration": {"file": x.file, "location": x.location, "mode": match x.mode { Mode::Enforce => "enforce", Mode::Audit => "audit" }},
        "request": {
            "method": r.method,
            "path": r.path,
            "authority": r.authority,
            "headers": r.headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "added_headers": x.added_headers,
            "body_bytes": r.body.as_ref().map(Vec::len),
            "body_read": x.body_read,
        },
        "peer": {
            "spiffe_id": x.peer.spiffe_id,
            "trusted": x.peer.trusted,
            "header_trust_peers_configured": x.peer.peers_configured,
        },
        "event": record.map(|r| r.event.as_str()),
        "not_event": x.not_event,
        "decision": record.map(|r| r.decision.as_str()),
        "reason": record.map(|r| r.reason.as_str()),
        "correlation_id": record.map(|r| r.correlation_id.as_str()),
        "require_field": x.require_name,
        "require": x.require.iter().map(|a| json!({"dimensions": a.dimensions, "met": a.unmet.is_empty(), "unmet": a.unmet})).collect::<Vec<_>>(),
        "dimensions": x.dimensions.iter().map(|d| {
            let (value, source) = match &d.status {
                DimStatus::Value { value, source, .. } => (Some(value.as_str()), Some(source.as_str())),
                _ => (None, None),
            };
            json!({
                "name": d.name,
                "status": d.status.as_str(),
                "value": value,
                "source": source,
                "counts_toward_require": d.counts,
                "sources": d.sources,
            })
        }).collect::<Vec<_>>(),
        "request_headers": {"removed": removed, "set": set},
        "request_body_rewrite": body_rewrite,
        "response_headers": {"set": response_set},
        "filter_state": filter_state,
        "local_reply": reply,
        "response_simulated": x.response_simulated,
        "record": record.map(record_json),
        "metrics": x.metrics.iter().map(|(name, n)| json!({"name": name, "add": n})).collect::<Vec<_>>(),
        "notes": x.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ai_attribution::identity::metadata::filter_metadata;

    /// Writes `text` to `name` in a scratch directory that is removed when the returned guard drops.
    fn write_config(name: &str, text: &str) -> (integration::envoy::TempDir, String) {
        let dir = integration::envoy::TempDir::new("explain").unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let path = p.to_string_lossy().into_owned();
        (dir, path)
    }

    const CONFIG: &str = r#"{
        "dimensions": {
            "user": ["header:x-user-id", "jwt:sub"],
            "service_account": ["peer:spiffe_service_account"],
            "team": ["static:a,b=c", "header:x-team"],
            "business_unit": ["header:x-business-unit", "node:BU"]
        },
        "require": [["user", "business_unit"], ["service_account", "business_unit"]],
        "header_trust": {"peers": ["spiffe://corp/ns/edge/sa/gateway"]},
        "peer": {"trust_domains": ["corp"]},
        "correlation": {"propagate": ["business_unit"]},
        "mcp": {"endpoints": [{"path_prefix": "/mcp"}], "require": [["service_account"]]}
    }"#;

    fn inputs(file: &str, headers: &[(&str, &str)]) -> Inputs {
        Inputs {
            config: ConfigChoice {
                file: file.to_string(),
                plugin: None,
            },
            request: Request {
                method: "POST".into(),
                path: "/v1/chat/completions".into(),
                authority: "localhost".into(),
                headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                body: Some(br#"{"model":"gpt-4o","messages":[]}"#.to_vec()),
            },
            ..Inputs::default()
        }
    }

    fn dim<'a>(x: &'a Explanation, name: &str) -> &'a DimStatus {
        &x.dimensions.iter().find(|d| d.name == name).unwrap().status
    }

    #[test]
    fn untrusted_headers_are_named_and_the_refusal_shown() {
        let (_dir, file) = write_config("untrusted.json", CONFIG);
        let x = run(&inputs(&file, &[("x-user-id", "alice"), ("x-ai-user", "spoof")])).unwrap();
        let f = x.finished.as_ref().unwrap();
        assert_eq!(f.record.decision.as_str(), "rejected");
        assert_eq!(*dim(&x, "user"), DimStatus::Untrusted);
        assert_eq!(*dim(&x, "business_unit"), DimStatus::Absent);
        assert_eq!(*dim(&x, "service_account"), DimStatus::Absent);
        // A static value with a comma and an equals sign is read back whole.
        assert_eq!(
            *dim(&x, "team"),
            DimStatus::Value {
                value: "a,b=c".into(),
                source: "static:a,b=c".into(),
                unverified: false
            }
        );
        let reply = reply_of(&x).unwrap();
        assert_eq!(reply.status, 403);
        assert!(reply.body.contains("missing"), "{}", reply.body);
        // Refused at its headers: nothing is forwarded, so no header is edited.
        assert_eq!(x.effects.len(), 1, "{:?}", x.effects);
        let text = render_text(&x);
        assert!(text.contains("request headers: unchanged"), "{text}");
        assert!(text.contains("none: untrusted"), "{text}");
        assert!(text.contains("status 403"), "{text}");
        let j = render_json(&x);
        assert_eq!(j["decision"], "rejected");
        assert_eq!(j["local_reply"]["status"], 403);
        let user = j["dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "user")
            .unwrap();
        assert_eq!(user["status"], "untrusted");
        assert_eq!(user["sources"], json!(["header:x-user-id", "jwt:sub"]));
    }

    #[test]
    fn a_trusted_peer_and_node_metadata_attribute_the_call() {
        let (_dir, file) = write_config("trusted.json", CONFIG);
        let mut i = inputs(&file, &[("x-user-id", "alice")]);
        i.host.peer_spiffe_id = Some("spiffe://corp/ns/edge/sa/gateway".into());
        i.host.node_metadata = vec![("BU".into(), "platform".into())];
        let x = run(&i).unwrap();
        assert!(x.peer.trusted);
        assert_eq!(x.finished.as_ref().unwrap().record.decision.as_str(), "attributed");
        assert_eq!(
            *dim(&x, "user"),
            DimStatus::Value {
                value: "alice".into(),
                source: "header:x-user-id".into(),
                unverified: false
            }
        );
        assert_eq!(
            *dim(&x, "service_account"),
            DimStatus::Value {
                value: "gateway".into(),
                source: "peer:spiffe_service_account".into(),
                unverified: false
            }
        );
        assert!(matches!(dim(&x, "business_unit"), DimStatus::Value { source, .. } if source == "node:BU"));
        assert!(x.require.iter().all(|a| a.unmet.is_empty()));
        assert!(x
            .effects
            .iter()
            .any(|(_, e)| *e == Effect::SetRequestHeader("x-ai-business-unit".into(), "platform".into())));
        assert!(reply_of(&x).is_none());
        assert!(render_text(&x).contains("answer: forwarded upstream"));
    }

    #[test]
    fn a_jwt_authn_payload_reaches_the_filter() {
        let payload = parse_jwt_payload("p", br#"{"sub":"carol","nested":{"a":[1,true,null]}}"#).unwrap();
        let md = jwt_authn_metadata("jwt_payload", &payload);
        let ns = filter_metadata(&md, JWT_AUTHN_NAMESPACE).unwrap();
        assert_eq!(ns["jwt_payload"]["sub"], "carol");
        assert_eq!(ns["jwt_payload"]["nested"]["a"], json!([1.0, true, null]));
        let (_dir, file) = write_config("jwt.json", CONFIG);
        let mut i = inputs(&file, &[("x-business-unit", "finance")]);
        i.host.jwt_payload = Some(payload);
        i.host.peer_spiffe_id = Some("spiffe://corp/ns/edge/sa/gateway".into());
        let x = run(&i).unwrap();
        assert!(
            matches!(dim(&x, "user"), DimStatus::Value { value, source, .. } if value == "carol" && source == "jwt:sub")
        );
        assert!(parse_jwt_payload("p", b"[1]").is_err());
        assert!(parse_jwt_payload("p", b"{").is_err());
    }

    #[test]
    fn tool_calls_and_other_requests() {
        let (_dir, file) = write_config("tool.json", CONFIG);
        let mut i = inputs(&file, &[]);
        i.request.path = "/mcp".into();
        i.request.body = Some(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search"}}"#.to_vec());
        let x = run(&i).unwrap();
        let f = x.finished.as_ref().unwrap();
        assert_eq!(f.record.event.as_str(), "tool_call");
        assert_eq!(f.record.decision.as_str(), "rejected");
        assert_eq!(x.require_name, "mcp.require");
        let reply = reply_of(&x).unwrap();
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["id"], 3);
        assert!(render_text(&x).contains("tool search"));

        i.request.path = "/healthz".into();
        i.request.method = "GET".into();
        i.request.body = None;
        i.request.headers = vec![("x-ai-user".into(), "spoof".into())];
        let x = run(&i).unwrap();
        assert!(x.finished.is_none());
        assert!(x.not_event.as_deref().unwrap().contains("/mcp"));
        assert_eq!(x.effects.len(), 1);
        assert!(render_text(&x).contains("remove x-ai-user"));
        assert_eq!(render_json(&x)["event"], Value::Null);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(parse_header("--header", "novalue").is_err());
        assert!(parse_header("--header", ":path:/x").is_err());
        assert!(parse_header("--header", "bad name:x").is_err());
        assert_eq!(
            parse_header("--header", "X-User-Id:  alice ").unwrap(),
            ("x-user-id".into(), "alice".into())
        );
        assert_eq!(parse_header("--header", "a:b:c").unwrap(), ("a".into(), "b:c".into()));
        assert!(parse_pair("--node-metadata", "=x").is_err());
        assert!(parse_pair("--node-metadata", "x").is_err());
        let missing = inputs("/nonexistent/config.json", &[]);
        assert_eq!(run(&missing).err().unwrap().status, 2);
        let (_broken_dir, broken) = write_config("broken.json", r#"{"dimensions": {"user": ["heder:x"]}}"#);
        let e = run(&inputs(&broken, &[])).err().unwrap();
        assert_eq!(e.status, 1);
        assert!(e.message.contains("dimensions.user"), "{}", e.message);
        let (_empty_dir, empty) = write_config("empty.json", "");
        assert_eq!(run(&inputs(&empty, &[])).err().unwrap().status, 1);
        let (_ok_dir, ok) = write_config("ok.json", CONFIG);
        let mut relative = inputs(&ok, &[]);
        relative.request.path = "v1/chat".into();
        assert_eq!(run(&relative).err().unwrap().status, 2);
        relative.request.path = "/".into();
        relative.config.plugin = Some(2);
        assert_eq!(run(&relative).err().unwrap().status, 2);
    }
}
