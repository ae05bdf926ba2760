//! Recognition bypasses through a real Envoy: every way of spelling a model call that a server
//! would still serve, for a representative endpoint of every provider, over HTTP/1.1 and
//! HTTP/2, with Envoy's path normalisation off and on. The rule checked for every request: a
//! model call never reaches the model server without an access-log record (unattributed calls
//! never reach it at all), each event has exactly one record with the method it was sent with,
//! and what is not an event (CORS preflights, hosts not listed, free endpoints) has none and
//! passes untouched.
//!
//! The model server routes as common servers do (decoded, dot segments resolved, case
//! sensitive), so a spelling the filter missed shows up as a call the model server *served*.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::http::Request;
use integration::model_server::ReceivedRequest;
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// The one API key the suite's stacks know, and its owner.
const KEY: &str = "sk-bypass-suite-key-0001";
const OWNER: &str = "matrix-owner";

/// Envoy's path normalisation, as the suite runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Normalisation {
    /// No `normalize_path`, no `merge_slashes`, escaped slashes left to Envoy's default.
    Off,
    /// `normalize_path`, `merge_slashes` and `path_with_escaped_slashes_action: KEEP_UNCHANGED`,
    /// as the shipped configs set them.
    On,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

fn plugin_config(model_calls: Value) -> Value {
    let full = ai_attribution::identity::api_key::sha256_hex(KEY);
    json!({
        "dimensions": {"service_account": ["api_key:service_account"]},
        "require": [["service_account"]],
        "api_keys": {"owners": {format!("sha256:{full}"): {"service_account": OWNER}}},
        "model_calls": model_calls
    })
}

/// A stack that speaks HTTP/1.1 and HTTP/2 (prior knowledge) on one port.
fn stack(norm: Normalisation, model_calls: Value, escaped: Option<&str>) -> Stack {
    Stack::start_with(plugin_config(model_calls).to_string(), |b| {
        b.hcm_extra.insert("codec_type".into(), json!("AUTO"));
        // The client reads a `connection: close` response to EOF; without this Envoy holds a
        // local reply's connection open for a second waiting for the client to close first.
        b.hcm_extra.insert("delayed_close_timeout".into(), json!("0s"));
        if norm == Normalisation::On {
            b.hcm_extra.insert("normalize_path".into(), json!(true));
            b.hcm_extra.insert("merge_slashes".into(), json!(true));
            b.hcm_extra
                .insert("path_with_escaped_slashes_action".into(), json!("KEEP_UNCHANGED"));
        }
        if let Some(action) = escaped {
            b.hcm_extra
                .insert("path_with_escaped_slashes_action".into(), json!(action));
        }
    })
    .unwrap()
}

/// What a request is expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A model call without a key: rejected, one record, never upstream.
    Rejected,
    /// A model call with the key: attributed, one record, upstream.
    Attributed,
    /// Not an event: no record, passes to the upstream untouched.
    Passes,
}

/// One request of a run and what it must be.
struct Probe {
    label: String,
    proto: Proto,
    req: Request,
    id: String,
    expect: Expect,
    provider: Option<&'static str>,
    status: Option<u16>,
}

/// Sends probes through a stack, then checks each against the access log and what the model
/// server received. Returns every violation, so that one run reports all of them.
struct Run<'a> {
    stack: &'a Stack,
    name: String,
    probes: Vec<Probe>,
    started: std::time::Instant,
}

impl<'a> Run<'a> {
    fn new(stack: &'a Stack, name: &str) -> Run<'a> {
        Run {
            stack,
            name: name.to_string(),
            probes: Vec::new(),
            started: std::time::Instant::now(),
        }
    }

    fn send(&mut self, label: &str, proto: Proto, req: Request, expect: Expect, provider: Option<&'static str>) {
        let id = request_id("bypass");
        let mut req = req.header("x-request-id", &id);
        if expect == Expect::Attributed {
            req = with_key(req);
        }
        let status = match proto {
            Proto::H1 => self.stack.send(&req).ok().map(|r| r.status),
            Proto::H2 => self.stack.send_h2(&req).ok().and_then(|r| r.status),
        };
        self.probes.push(Probe {
            label: label.to_string(),
            proto,
            req,
            id,
            expect,
            provider,
            status,
        });
    }

    /// Checks every probe; returns the violations.
    fn check(self) -> Vec<String> {
        // One worker writes lines in the order requests end: once a last plain request's line
        // is there, every earlier one is too.
        let sentinel = request_id("sentinel");
        let _ = self
            .stack
            .send(&Request::get("/healthz").header("x-request-id", &sentinel));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let lines = loop {
            let lines = integration::log_lines(&self.stack.access_log);
            let done = lines.iter().any(|l| l["request_id"] == sentinel.as_str());
            if done || std::time::Instant::now() > deadline {
                break lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        eprintln!(
            "{}: {} requests in {:?}",
            self.name,
            self.probes.len(),
            self.started.elapsed()
        );
        let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
        for l in lines {
            if let Some(id) = l["request_id"].as_str() {
                by_id.entry(id.to_string()).or_default().push(l);
            }
        }
        let received = self.stack.server.received();
        let upstream: HashMap<&str, &ReceivedRequest> = received
            .iter()
            .filter_map(|r| r.header("x-request-id").map(|id| (id, r)))
            .collect();
        let mut out = Vec::new();
        for p in &self.probes {
            let what = format!(
                "[{} {:?}] {} {} (host {}) [{}]",
                self.name,
                p.proto,
                p.req.method,
                String::from_utf8_lossy(&p.req.target_bytes()).escape_debug(),
                p.req.host_or_default(),
                p.label
            );
            let records: Vec<&Value> = by_id
                .get(&p.id)
                .map(|v| v.iter().filter(|l| !l["decision"].is_null()).collect())
                .unwrap_or_default();
            let up = upstream.get(p.id.as_str());
            let refused_by_envoy = up.is_none()
                && records.is_empty()
                && by_id
                    .get(&p.id)
                    .is_none_or(|v| v.iter().all(|l| l["details"] != "via_upstream"));
            match p.expect {
                Expect::Passes => {
                    if !records.is_empty() {
                        out.push(format!("{what}: not an event, but recorded: {}", records[0]));
                    }
                    if up.is_none() && !refused_by_envoy {
                        out.push(format!("{what}: not an event, but did not reach the upstream"));
                    }
                }
                Expect::Rejected | Expect::Attributed => {
                    if records.is_empty() {
                        if let Some(up) = up {
                            let served = p.status.is_some_and(|s| (200..300).contains(&s));
                            let kind = if served {
                                "BYPASS: served by the model server"
                            } else {
                                "reached the model server (not served)"
                            };
                            out.push(format!(
                                "{what}: {kind} with no record (status {:?}, the server saw {:?})",
                                p.status, up.path
                            ));
                        } else if !refused_by_envoy {
                            out.push(format!("{what}: no record (status {:?})", p.status));
                        }
                        continue;
                    }
                    if records.len() != 1 {
                        out.push(format!("{what}: {} records", records.len()));
                    }
                    let r = records[0];
                    let want = if p.expect == Expect::Rejected {
                        "rejected"
                    } else {
                        "attributed"
                    };
                    if r["decision"] != want {
                        out.push(format!(
                            "{what}: decision {} (reason {}), wanted {want}",
                            r["decision"], r["reason"]
                        ));
                    }
                    if r["method"] != p.req.method.as_str()
                        || r["record"]["value"]["http.request.method"] != p.req.method.as_str()
                    {
                        out.push(format!(
                            "{what}: method logged {} / recorded {}",
                            r["method"], r["record"]["value"]["http.request.method"]
                        ));
                    }
                    if let Some(provider) = p.provider {
                        if r["provider"] != provider {
                            out.push(format!("{what}: provider {}, wanted {provider}", r["provider"]));
                        }
                    }
                    match (p.expect, up) {
                        (Expect::Rejected, Some(up)) => out.push(format!(
                            "{what}: rejected, yet reached the model server (as {:?})",
                            up.path
                        )),
                        (Expect::Attributed, None) => {
                            out.push(format!("{what}: attributed, but never reached the upstream"))
                        }
                        (Expect::Attributed, Some(_)) if r["service_account"] != OWNER => {
                            out.push(format!("{what}: attributed to {}", r["service_account"]))
                        }
                        _ => {}
                    }
                }
            }
        }
        out
    }
}

/// The suite's key in every header any provider reads it from (the same key, so no conflict).
fn with_key(req: Request) -> Request {
    req.header("authorization", &format!("Bearer {KEY}"))
        .header("api-key", KEY)
        .header("x-api-key", KEY)
        .header("x-goog-api-key", KEY)
}

fn assert_none(violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "{} violation(s):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// A representative model-running endpoint per provider, as the model server serves it.
const ENDPOINTS: [(&str, &str); 9] = [
    ("openai", "/v1/chat/completions"),
    ("azure.ai.openai", "/openai/deployments/gpt4o/chat/completions"),
    ("anthropic", "/v1/messages"),
    ("gcp.gemini", "/v1beta/models/gemini-2.0-flash:generateContent"),
    (
        "gcp.vertex_ai",
        "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent",
    ),
    ("aws.bedrock", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"),
    (
        "aws.bedrock",
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku/converse",
    ),
    ("ollama", "/api/chat"),
    ("cohere", "/v2/chat"),
];

fn body() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

/// Percent-encodes the first character of every segment (`/v1/chat` → `/%76%31/%63hat`... only
/// the first: `/%761/%63hat`).
fn encode_first_letters(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg.chars().next() {
            Some(c) if c.is_ascii_alphanumeric() => format!("%{:02X}{}", c as u32, &seg[1..]),
            _ => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn mixed_case(path: &str) -> String {
    let mut upper = false;
    let mut in_escape = 0;
    path.chars()
        .map(|c| {
            if c == '%' {
                in_escape = 2;
                return c;
            }
            if in_escape > 0 {
                in_escape -= 1;
                return c;
            }
            upper = !upper;
            if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// `/a/b/c` → (`/a`, `/b/c`): the first segment and the rest.
fn split_first(path: &str) -> (&str, &str) {
    let at = path[1..].find('/').map_or(path.len(), |i| i + 1);
    (&path[..at], &path[at..])
}

/// Every spelling of `path` that a server may still route to it, as raw request targets.
fn spellings(path: &str, proto: Proto) -> Vec<(&'static str, Vec<u8>)> {
    let (first, rest) = split_first(path);
    let last_slash = path.rfind('/').unwrap_or(0);
    let mut out: Vec<(&'static str, String)> = vec![
        ("canonical", path.to_string()),
        ("trailing slash", format!("{path}/")),
        ("repeated slashes", path.replace('/', "//")),
        ("dot-dot segment", format!("{first}/x/..{rest}")),
        ("dot segment", format!("{first}/.{rest}")),
        ("encoded dot-dot", format!("{first}/x/%2e%2e{rest}")),
        ("encoded dot", format!("{first}/%2E{rest}")),
        ("leading dot-dot", format!("/..{path}")),
        ("encoded letters", encode_first_letters(path)),
        (
            "encoded slash",
            format!("{}%2F{}", &path[..last_slash], &path[last_slash + 1..]),
        ),
        ("encoded slashes", format!("/{}", path[1..].replace('/', "%2f"))),
        ("parameter on the first segment", format!("{first};v=1{rest}")),
        ("parameter on the last segment", format!("{path};v=1")),
        ("upper case", path.to_ascii_uppercase()),
        ("mixed case", mixed_case(path)),
        ("backslashes", format!("{first}{}", rest.replace('/', "\\"))),
        ("query", format!("{path}?a=1&b=%2F..")),
    ];
    if proto == Proto::H1 {
        out.push(("absolute form", format!("http://localhost{path}")));
    }
    let mut raw: Vec<(&'static str, Vec<u8>)> = out.into_iter().map(|(l, p)| (l, p.into_bytes())).collect();
    // Bytes that are not UTF-8: Envoy's HTTP/1 codec refuses them, HTTP/2 carries them.
    let mut q = path.as_bytes().to_vec();
    q.extend_from_slice(b"?x=\xff");
    raw.push(("non-UTF-8 query", q));
    let mut seg = first.as_bytes().to_vec();
    seg.extend_from_slice(b"/\xff\xfe/..");
    seg.extend_from_slice(rest.as_bytes());
    raw.push(("non-UTF-8 segment", seg));
    raw
}

const METHODS: [&str; 7] = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST"];

fn request(method: &str, target: &[u8]) -> Request {
    let req = Request::new(method, "/").raw_target(target);
    if matches!(method, "POST" | "PUT" | "PATCH") {
        req.json(&body())
    } else {
        req
    }
}

/// Every spelling of every provider's endpoint, with and without the key, over both protocols.
fn spellings_run(norm: Normalisation) {
    let stack = stack(norm, json!({}), None);
    let mut run = Run::new(&stack, &format!("normalisation {norm:?}"));
    for proto in [Proto::H1, Proto::H2] {
        for (provider, path) in ENDPOINTS {
            for (label, target) in spellings(path, proto) {
                for expect in [Expect::Rejected, Expect::Attributed] {
                    run.send(label, proto, request("POST", &target), expect, Some(provider));
                }
            }
        }
    }
    assert_none(run.check());
}

#[test]
fn every_spelling_of_every_provider_is_recognised_without_normalisation() {
    spellings_run(Normalisation::Off);
}

#[test]
fn every_spelling_of_every_provider_is_recognised_with_normalisation() {
    spellings_run(Normalisation::On);
}

/// Every method on every provider's endpoint is an event, recorded with its method; a CORS
/// preflight is not, and passes untouched.
#[test]
fn every_method_is_an_event_and_a_preflight_passes() {
    for norm in [Normalisation::Off, Normalisation::On] {
        let stack = stack(norm, json!({}), None);
        let mut run = Run::new(&stack, &format!("normalisation {norm:?}"));
        for proto in [Proto::H1, Proto::H2] {
            for (provider, path) in ENDPOINTS {
                for method in METHODS {
                    for expect in [Expect::Rejected, Expect::Attributed] {
                        run.send(method, proto, request(method, path.as_bytes()), expect, Some(provider));
                    }
                    // Any case of the method name.
                    let lower = method.to_ascii_lowercase();
                    if proto == Proto::H1 {
                        run.send(
                            "lower-case method",
                            proto,
                            request(&lower, path.as_bytes()),
                            Expect::Rejected,
                            None,
                        );
                    }
                }
                let preflight = Request::new("OPTIONS", path)
                    .header("origin", "https://app.example")
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "authorization,content-type");
                run.send("CORS preflight", proto, preflight, Expect::Passes, None);
                // An OPTIONS with only an origin is not a preflight.
                let not_preflight = Request::new("OPTIONS", path).header("origin", "https://app.example");
                run.send(
                    "OPTIONS with an origin only",
                    proto,
                    not_preflight,
                    Expect::Rejected,
                    Some(provider),
                );
            }
        }
        assert_none(run.check());
    }
}

/// Spellings of a listed host (`model_calls.hosts`) and a dedicated model host
/// (`model_calls.model_hosts`): a malformed host counts as listed.
#[test]
fn host_spellings_cannot_slip_a_host_list() {
    let model_calls = json!({
        "hosts": ["api.openai.com"],
        "model_hosts": ["llm.internal"],
        "free": [{"method": "GET", "path": "/v1/models"}]
    });
    for norm in [Normalisation::Off, Normalisation::On] {
        let stack = stack(norm, model_calls.clone(), None);
        let mut run = Run::new(&stack, &format!("hosts, normalisation {norm:?}"));
        for proto in [Proto::H1, Proto::H2] {
            let chat = |host: &str| request("POST", b"/v1/chat/completions").host(host);
            for host in [
                "api.openai.com",
                "api.openai.com.",
                "API.OPENAI.COM",
                "Api.OpenAI.com.",
                "api.openai.com:443",
                "api.openai.com.:8443",
                "api.openai.com:443x",
                "api.openai.com:0",
                "api.openai.com:65536",
                "api.openai.com:",
                "user@api.openai.com",
                "user:pw@api.openai.com:443",
                "api%2eopenai.com",
                "api.openai.com..",
            ] {
                for expect in [Expect::Rejected, Expect::Attributed] {
                    run.send("listed host", proto, chat(host), expect, Some("openai"));
                }
            }
            // A host that is not listed: its recognised paths are not this gateway's events.
            run.send("unlisted host", proto, chat("other.example"), Expect::Passes, None);
            run.send(
                "unlisted host",
                proto,
                chat("api.openai.com.evil.example"),
                Expect::Passes,
                None,
            );
            // A dedicated model host: every request is an event, whatever the path.
            for (method, target) in [
                ("POST", &b"/anything/at/all"[..]),
                ("GET", &b"/"[..]),
                ("POST", &b"/v1/models"[..]),
                ("GET", &b"/v1/models/../chat/completions"[..]),
                ("DELETE", &b"/v1/models"[..]),
                ("PUT", &b"/v1/chat/completions"[..]),
            ] {
                for host in ["llm.internal", "LLM.Internal.", "llm.internal:8000"] {
                    for expect in [Expect::Rejected, Expect::Attributed] {
                        run.send(
                            "dedicated host",
                            proto,
                            request(method, target).host(host),
                            expect,
                            None,
                        );
                    }
                }
            }
            // Its free endpoint passes, in any spelling, and so does a CORS preflight.
            for target in [
                &b"/v1/models"[..],
                &b"/v1/models/"[..],
                &b"//v1/./models"[..],
                &b"/V1/Models"[..],
            ] {
                run.send(
                    "free endpoint",
                    proto,
                    request("GET", target).host("llm.internal"),
                    Expect::Passes,
                    None,
                );
            }
            let preflight = Request::new("OPTIONS", "/anything")
                .host("llm.internal")
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST");
            run.send("preflight on a dedicated host", proto, preflight, Expect::Passes, None);
        }
        // HTTP/1.1 only: an absolute-form target names its own host, which wins over `host`.
        run.send(
            "absolute form naming the listed host",
            Proto::H1,
            request("POST", b"http://api.openai.com/v1/chat/completions").host("other.example"),
            Expect::Rejected,
            Some("openai"),
        );
        run.send(
            "absolute form naming the dedicated host",
            Proto::H1,
            request("POST", b"http://llm.internal/x").host("other.example"),
            Expect::Rejected,
            None,
        );
        assert_none(run.check());
    }
}

/// With only `openai` enabled, an Azure-shaped path is still an (OpenAI-compatible) event.
#[test]
fn a_disabled_provider_falls_back_to_a_compatible_one() {
    let stack = stack(Normalisation::On, json!({"providers": ["openai"]}), None);
    let mut run = Run::new(&stack, "providers [openai]");
    for proto in [Proto::H1, Proto::H2] {
        for target in [
            &b"/openai/deployments/gpt4o/chat/completions"[..],
            &b"/openai/deployments/gpt4o//chat/completions/"[..],
            &b"/v1beta/openai/chat/completions"[..],
        ] {
            for expect in [Expect::Rejected, Expect::Attributed] {
                run.send("fallback", proto, request("POST", target), expect, Some("openai"));
            }
        }
    }
    assert_none(run.check());
}

/// What each `path_with_escaped_slashes_action` does to a model call, and why the shipped
/// configs keep escaped slashes unchanged: Bedrock model IDs (ARNs) carry `%2F` and `%3A`, and
/// SigV4 signs the path as sent.
#[test]
fn escaped_slash_actions_and_bedrock_model_ids() {
    let arn = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku/converse";
    let served_as = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku";
    let call = |stack: &Stack| {
        let id = request_id("escaped");
        let resp = stack
            .send(&with_key(request("POST", arn.as_bytes())).header("x-request-id", &id))
            .unwrap();
        let up = stack.server.wait_for("x-request-id", &id, Duration::from_millis(500));
        (resp, stack.log_for(&id), up)
    };

    // KEEP_UNCHANGED: the call reaches the model as signed, attributed, with its model ID.
    let stack_keep = stack(Normalisation::On, json!({}), None);
    let (resp, log, up) = call(&stack_keep);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let log = log.unwrap();
    assert_eq!(log["decision"], "attributed");
    assert_eq!(log["request_model"], served_as);
    assert_eq!(up.unwrap().path, arn, "the path goes upstream byte for byte");

    // REJECT_REQUEST: Envoy refuses the call (400) before the filter; nothing is recorded and
    // nothing reaches the model, so no bypass, but Bedrock ARNs stop working.
    let stack_reject = stack(Normalisation::On, json!({}), Some("REJECT_REQUEST"));
    let (resp, log, up) = call(&stack_reject);
    assert_eq!(resp.status, 400);
    assert!(up.is_none());
    assert!(log.is_none_or(|l| l["decision"].is_null()));

    // UNESCAPE_AND_REDIRECT: Envoy answers 307 to the unescaped path; a client that follows it
    // sends a path whose SigV4 signature no longer matches, and whose model ID is split in two.
    let stack_redirect = stack(Normalisation::On, json!({}), Some("UNESCAPE_AND_REDIRECT"));
    let (resp, log, up) = call(&stack_redirect);
    assert_eq!(resp.status, 307);
    assert!(resp
        .header("location")
        .unwrap()
        .contains("inference-profile/us.anthropic"));
    assert!(up.is_none());
    assert!(log.is_none_or(|l| l["decision"].is_null()));
}

/// A spelling that a server serves as a model call, and under which normalisation settings it
/// still reaches the server that way.
type Known = (&'static str, &'static [u8], &'static str, &'static [Normalisation]);

const BOTH: &[Normalisation] = &[Normalisation::Off, Normalisation::On];
const OFF_ONLY: &[Normalisation] = &[Normalisation::Off];

/// Sends known spellings without the key, over both protocols, under the settings each is
/// served under.
fn known_spellings(targets: &[Known]) {
    let mut violations = Vec::new();
    for norm in [Normalisation::Off, Normalisation::On] {
        let stack = stack(norm, json!({}), None);
        let mut run = Run::new(&stack, &format!("normalisation {norm:?}"));
        for proto in [Proto::H1, Proto::H2] {
            for (label, target, provider, modes) in targets {
                if modes.contains(&norm) {
                    run.send(label, proto, request("POST", target), Expect::Rejected, Some(provider));
                }
            }
        }
        violations.extend(run.check());
    }
    assert_none(violations);
}

/// Fixed bug, kept as a guard: a `;` inside a Google `{model}:{verb}` segment. The filter cuts the segment at
/// the `;` (Tomcat-style path parameters), leaving `gemini-2.0-flash` with no verb, so the call
/// is not recognised; a server that routes `models/{model}:generateContent` with `{model}`
/// matching `[^/]+` (ASGI routers, and this model server) serves it as a Gemini call with the
/// model `gemini-2.0-flash;x`. `%3B` is the same once decoded, and Envoy's normalisation keeps
/// both. Expected: an event (rejected here, for want of a key).
#[test]
fn a_semicolon_in_a_google_model_segment_is_still_an_event() {
    known_spellings(&[
        (
            "';' in the model",
            b"/v1beta/models/gemini-2.0-flash;x:generateContent",
            "gcp.gemini",
            BOTH,
        ),
        (
            "'%3B' in the model",
            b"/v1beta/models/gemini-2.0-flash%3Bx:generateContent",
            "gcp.gemini",
            BOTH,
        ),
        (
            "';' in a Vertex model",
            b"/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.0-flash;x:streamGenerateContent",
            "gcp.vertex_ai",
            BOTH,
        ),
    ]);
}

/// Fixed bug, kept as a guard: a `\` inside a Google model segment. The filter splits segments at `\`, so
/// `models/a\b:generateContent` has the parent `a` and is not recognised; a server for which
/// `\` is an ordinary character (most, outside Windows) serves it as the model `a\b`. Without
/// Envoy's normalisation the raw `\` gets through; `normalize_path` turns a raw `\` into `/`
/// (the server then answers 404), but leaves `%5C` alone, so `%5C` gets through either way.
/// Expected: an event.
#[test]
fn a_backslash_in_a_google_model_segment_is_still_an_event() {
    known_spellings(&[
        (
            "'\\' in the model",
            b"/v1beta/models/gemini\\2.0-flash:generateContent",
            "gcp.gemini",
            OFF_ONLY,
        ),
        (
            "'%5C' in the model",
            b"/v1beta/models/gemini%5C2.0-flash:generateContent",
            "gcp.gemini",
            BOTH,
        ),
    ]);
}

/// Fixed bug, kept as a guard: a Bedrock model ID segment that the filter drops. `;x`, `.;x` and
/// `..;x` become empty, `.` and `..` once cut at the `;`, so `/model/;x/converse` has no model
/// segment left (and `..;` takes the one before it), and the call is not recognised; servers
/// that do not cut `;` route it as `converse` for the model `;x`. Envoy's `normalize_path` resolves
/// `.;x` and `..;x` as dot segments too (so only `;x` gets through with it). Real Bedrock would
/// refuse such a model ID; a Bedrock-shaped server that ignores it would not. Expected: an event.
#[test]
fn a_bedrock_model_id_made_of_path_parameters_is_still_an_event() {
    known_spellings(&[
        ("model ID ';x'", b"/model/;x/converse", "aws.bedrock", BOTH),
        ("model ID '.;x'", b"/model/.;x/converse", "aws.bedrock", OFF_ONLY),
        (
            "model ID ending in '..;x'",
            b"/model/anthropic.claude/..;x/converse",
            "aws.bedrock",
            OFF_ONLY,
        ),
    ]);
}

/// What is a limit, not a bug: a model server mounted under a path the endpoint table does not
/// know (here the model server's `/llm/...`) is not recognised, and its calls pass unrecorded,
/// until `model_calls.extra` or `model_calls.model_hosts` names it.
#[test]
fn an_unknown_mount_point_needs_extra_routes_or_a_model_host() {
    let mut run_stacks = Vec::new();
    let plain = stack(Normalisation::On, json!({}), None);
    let mut run = Run::new(&plain, "no extra routes");
    run.send(
        "unknown mount",
        Proto::H1,
        request("POST", b"/llm/chat"),
        Expect::Passes,
        None,
    );
    run_stacks.push(run.check());
    let extra = stack(
        Normalisation::On,
        json!({"extra": [{"path_prefix": "/llm", "provider": "internal"}], "model_hosts": ["llm.internal"]}),
        None,
    );
    let mut run = Run::new(&extra, "extra routes");
    for proto in [Proto::H1, Proto::H2] {
        for target in [&b"/llm/chat"[..], &b"//LLM/./chat"[..], &b"/llm%2Fchat"[..]] {
            run.send(
                "extra route",
                proto,
                request("POST", target),
                Expect::Rejected,
                Some("internal"),
            );
        }
        run.send(
            "model host",
            proto,
            request("POST", b"/chat").host("llm.internal"),
            Expect::Rejected,
            None,
        );
    }
    run_stacks.push(run.check());
    assert_none(run_stacks.concat());
}

/// Two hosts for one request: HTTP/1.1 with two `host` headers (Envoy joins them into one
/// malformed host, which counts as listed), HTTP/2 with a `host` header that differs from
/// `:authority` (Envoy drops the `host` header). Whatever Envoy makes of them, the upstream never
/// sees a listed host on a request the filter did not count.
#[test]
fn conflicting_host_headers_do_not_hide_a_listed_host() {
    let stack = stack(Normalisation::On, json!({"hosts": ["api.openai.com"]}), None);
    for proto in [Proto::H1, Proto::H2] {
        for (authority, extra_host) in [("other.example", "api.openai.com"), ("api.openai.com", "other.example")] {
            let id = request_id("hosts");
            let req = request("POST", b"/v1/chat/completions")
                .host(authority)
                .header("host", extra_host)
                .header("x-request-id", &id);
            let status = match proto {
                Proto::H1 => stack.send(&req).ok().map(|r| r.status),
                Proto::H2 => stack.send_h2(&req).ok().and_then(|r| r.status),
            };
            let log = stack.log_for(&id);
            let up = stack.server.wait_for("x-request-id", &id, Duration::from_millis(300));
            let recorded = log.as_ref().is_some_and(|l| !l["decision"].is_null());
            if let Some(up) = up {
                let hosts = up.header_all("host");
                assert!(
                    recorded || hosts.iter().all(|h| !h.to_ascii_lowercase().contains("api.openai.com")),
                    "{proto:?} {authority} + host {extra_host}: status {status:?}, unrecorded, upstream host {hosts:?}"
                );
            }
        }
    }
}

/// Fixed bug, kept as a guard: `model_calls.free` is consulted before the
/// endpoint table, on every host, so a wildcard free entry shadows the model-running endpoints
/// beneath it. With `{"path": "/v1/files/*"}` (file uploads run no model),
/// `POST /v1/files/chat/completions` is not an event, on a dedicated model host or any other,
/// though the filter recognises an OpenAI-shaped ending under any prefix and a server mounted
/// that way (as this model server is) serves it. Expected: a path the endpoint table recognises
/// stays an event; a free entry exempts only what the table does not recognise.
#[test]
fn a_wildcard_free_endpoint_does_not_shadow_a_model_endpoint() {
    let model_calls = json!({"model_hosts": ["llm.internal"], "free": [{"path": "/v1/files/*"}]});
    let mut violations = Vec::new();
    for norm in [Normalisation::Off, Normalisation::On] {
        let stack = stack(norm, model_calls.clone(), None);
        let mut run = Run::new(&stack, &format!("free /v1/files/*, normalisation {norm:?}"));
        for proto in [Proto::H1, Proto::H2] {
            // What the free entry is for: passes.
            run.send(
                "free endpoint",
                proto,
                request("GET", b"/v1/files/file-1/content").host("llm.internal"),
                Expect::Passes,
                None,
            );
            for host in ["llm.internal", "localhost"] {
                run.send(
                    "model endpoint under a free prefix",
                    proto,
                    request("POST", b"/v1/files/chat/completions").host(host),
                    Expect::Rejected,
                    None,
                );
            }
        }
        violations.extend(run.check());
    }
    assert_none(violations);
}
