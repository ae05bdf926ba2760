//! Access logs written by real Envoys, made once per test binary: a sidecar hop (enforce) in front
//! of an egress-gateway hop (audit) in front of the local model server, and a realistic mix of
//! calls (attributed, rejected, streamed, several users, business units, service accounts and
//! models, priced and unpriced) plus requests that are no model call.

#![allow(dead_code)]

use integration::http::Request;
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The access-log format of `envoy/envoy.yaml` (request fields, flat keys and the record).
pub fn log_format(dims: &[&str]) -> Value {
    let mut f = serde_json::Map::new();
    for (k, v) in [
        ("start_time", "%START_TIME%"),
        ("method", "%REQ(:METHOD)%"),
        ("path", "%REQ(:PATH)%"),
        ("status", "%RESPONSE_CODE%"),
        ("details", "%RESPONSE_CODE_DETAILS%"),
        ("duration_ms", "%DURATION%"),
        ("request_id", "%REQ(X-REQUEST-ID)%"),
        ("record", "%FILTER_STATE(wasm.ai_attribution:TYPED)%"),
    ] {
        f.insert(k.into(), json!(v));
    }
    for key in integration::bootstrap::record_keys().iter().chain(dims) {
        f.insert(
            key.to_string(),
            json!(format!("%FILTER_STATE(wasm.ai_attribution.{key}:PLAIN)%")),
        );
    }
    Value::Object(f)
}

fn access_log(path: &Path, dims: &[&str]) -> Value {
    json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path.to_string_lossy(),
            "log_format": {"json_format": log_format(dims)}
        }
    }])
}

const DIMS: [&str; 5] = ["user", "service_account", "app", "session", "business_unit"];

pub fn sidecar_config() -> Value {
    json!({
        "mode": "enforce",
        "dimensions": {
            "user": ["header:x-user-id"],
            "service_account": ["header:x-service-account"],
            "app": ["header:x-app-id"],
            "session": ["header:x-session-id"],
            "business_unit": ["header:x-business-unit", "node:BUSINESS_UNIT"]
        },
        "require": [["user", "business_unit"], ["service_account", "business_unit"]],
        "correlation": {"propagate": ["business_unit"]},
        "pricing": {
            "gpt-4o*": {"input": 2.50, "output": 10.00, "cached_input": 1.25},
            "claude-sonnet-4*": {"input": 3.00, "output": 15.00, "cached_input": 0.30}
        },
        "metrics": {"labels": ["provider", "business_unit"]}
    })
}

pub fn egress_config() -> Value {
    json!({
        "mode": "audit",
        "dimensions": {
            "user": ["header:x-user-id"],
            "service_account": ["header:x-service-account"],
            "session": ["header:x-session-id"],
            "business_unit": ["header:x-ai-business-unit", "header:x-business-unit"]
        },
        "require": [["user", "business_unit"], ["service_account", "business_unit"]],
        "pricing": {
            "gpt-4o*": {"input": 2.50, "output": 10.00, "cached_input": 1.25},
            "claude-sonnet-4*": {"input": 3.00, "output": 15.00, "cached_input": 0.30}
        }
    })
}

/// The logs and what was sent.
pub struct Logs {
    pub dir: PathBuf,
    pub sidecar: PathBuf,
    pub egress: PathBuf,
    /// Correlation ids of a few calls, by name.
    pub ids: Vec<(&'static str, String)>,
}

impl Logs {
    pub fn id(&self, name: &str) -> String {
        self.ids
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| panic!("no call {name}"))
    }
}

/// The output directory for artefacts a person may want to look at (screenshot, reports).
pub fn out_dir() -> PathBuf {
    let d = integration::envoy::repo_root().join("target/cli-test");
    std::fs::create_dir_all(&d).expect("create target/cli-test");
    d
}

struct Call {
    name: &'static str,
    path: &'static str,
    body: Value,
    headers: Vec<(&'static str, &'static str)>,
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]})
}

fn anthropic(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
}

fn calls() -> Vec<Call> {
    let c = |name, path, body, headers: &[(&'static str, &'static str)]| Call {
        name,
        path,
        body,
        headers: headers.to_vec(),
    };
    let finance_alice = [
        ("x-user-id", "alice"),
        ("x-business-unit", "finance"),
        ("x-session-id", "s-alice-1"),
        ("x-app-id", "notebook"),
    ];
    let finance_bob = [
        ("x-user-id", "bob"),
        ("x-business-unit", "finance"),
        ("x-session-id", "s-bob-1"),
    ];
    let research_carol = [
        ("x-user-id", "carol"),
        ("x-business-unit", "research"),
        ("x-session-id", "s-carol-1"),
    ];
    let batch = [
        ("x-service-account", "nightly-summarizer"),
        ("x-business-unit", "platform"),
        ("x-session-id", "batch-7"),
    ];
    let node_bu = [("x-service-account", "indexer")];
    vec![
        c(
            "alice-chat",
            "/v1/chat/completions",
            chat("gpt-4o", false),
            &finance_alice,
        ),
        c(
            "alice-chat-stream",
            "/v1/chat/completions",
            chat("gpt-4o", true),
            &finance_alice,
        ),
        c(
            "alice-responses",
            "/v1/responses",
            json!({"model": "gpt-4o", "input": "hi"}),
            &finance_alice,
        ),
        c(
            "bob-chat",
            "/v1/chat/completions",
            chat("gpt-4o-mini", false),
            &finance_bob,
        ),
        c(
            "bob-claude-stream",
            "/v1/messages",
            anthropic("claude-sonnet-4-5", true),
            &finance_bob,
        ),
        c(
            "carol-claude",
            "/v1/messages",
            anthropic("claude-sonnet-4-5", false),
            &research_carol,
        ),
        c(
            "carol-unpriced",
            "/v1/completions",
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}),
            &research_carol,
        ),
        c(
            "carol-embeddings",
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "hi"}),
            &research_carol,
        ),
        c("batch-1", "/v1/chat/completions", chat("gpt-4o", false), &batch),
        c("batch-2", "/v1/chat/completions", chat("gpt-4o", true), &batch),
        c("batch-3", "/v1/messages", anthropic("claude-sonnet-4-5", false), &batch),
        c("node-bu", "/v1/chat/completions", chat("gpt-4o", false), &node_bu),
        c(
            "rejected-no-user",
            "/v1/chat/completions",
            chat("gpt-4o", false),
            &[("x-business-unit", "finance")],
        ),
        c("rejected-nothing", "/v1/chat/completions", chat("gpt-4o", false), &[]),
        c(
            "rejected-spoof",
            "/v1/messages",
            anthropic("claude-sonnet-4-5", false),
            &[("x-ai-user", "ceo"), ("x-business-unit", "research")],
        ),
        c(
            "stream-no-usage",
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            &finance_alice,
        ),
    ]
}

fn wait_lines(path: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let have = std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0);
        if have >= n || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn make() -> Logs {
    let dir = out_dir();
    let sidecar_log = dir.join("sidecar.log");
    let egress_log = dir.join("egress.log");
    let _ = std::fs::remove_file(&sidecar_log);
    let _ = std::fs::remove_file(&egress_log);

    let egress_path = egress_log.clone();
    let egress = Stack::start_with(egress_config().to_string(), move |b| {
        b.hcm_extra.insert("access_log".into(), access_log(&egress_path, &DIMS));
    })
    .expect("egress stack starts");
    let sidecar_path = sidecar_log.clone();
    let egress_port = egress.port;
    let sidecar = Stack::start_with(sidecar_config().to_string(), move |b| {
        b.upstream_port = egress_port;
        b.hcm_extra
            .insert("access_log".into(), access_log(&sidecar_path, &DIMS));
    })
    .expect("sidecar stack starts");

    let mut ids = Vec::new();
    let mut sent = 0;
    let mut passed = 0;
    // Two rounds so that every group has more than one call.
    for round in 0..2 {
        for call in calls() {
            let id = request_id(call.name);
            let mut req = Request::post(call.path).header("x-request-id", &id).json(&call.body);
            for (k, v) in &call.headers {
                req = req.header(k, v);
            }
            let resp = sidecar.send(&req).expect("request through the sidecar");
            sent += 1;
            if resp.status == 200 {
                passed += 1;
            }
            if round == 0 {
                // A caller never chooses the correlation ID; the filter answers with the one it gave.
                ids.push((call.name, correlation_of(&resp, &id)));
            }
        }
        // Requests that are no model call leave lines with `record: null`.
        for path in ["/healthz", "/v1/models"] {
            let _ = sidecar.send(&Request::get(path).header("x-request-id", &request_id("plain")));
            sent += 1;
            passed += 1;
        }
    }
    // A call straight to the egress gateway: a hop the sidecar never saw.
    let id = request_id("egress-only");
    let req = Request::post("/v1/chat/completions")
        .header("x-request-id", &id)
        .header("x-user-id", "dave")
        .header("x-business-unit", "research")
        .json(&chat("gpt-4o", false));
    let resp = egress.send(&req).expect("request to the egress hop");
    ids.push(("egress-only", correlation_of(&resp, &id)));
    wait_lines(&sidecar_log, sent);
    wait_lines(&egress_log, passed + 1);
    drop(sidecar);
    drop(egress);
    Logs {
        dir,
        sidecar: sidecar_log,
        egress: egress_log,
        ids,
    }
}

/// The correlation ID the filter answered with (`x-ai-correlation-id`).
fn correlation_of(resp: &integration::http::Response, request_id: &str) -> String {
    resp.header("x-ai-correlation-id")
        .map(str::to_string)
        .unwrap_or_else(|| {
            panic!(
                "no x-ai-correlation-id in the answer to {request_id}: {:?}",
                resp.headers
            )
        })
}

/// The logs, made on first use.
pub fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(make)
}

/// Runs the CLI.
pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ai-attribution"))
        .args(args)
        .output()
        .expect("run ai-attribution")
}

/// Runs the CLI with `input` on standard input.
pub fn cli_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ai-attribution"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ai-attribution");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
