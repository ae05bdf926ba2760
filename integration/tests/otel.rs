//! `envoy/otel.yaml`: Envoy's OpenTelemetry access logger sends each record as an OTLP log
//! record whose attributes carry the record's keys under their OpenTelemetry names. The shipped
//! file is run as it is (the filter's path and the ports made local) against an OTLP/gRPC
//! receiver built on the OpenTelemetry project's protobuf definitions
//! (`integration/otel/receiver.py`, in the pinned virtualenv `.venv-otel/` that `make test`
//! creates), and the attributes of real calls, one attributed and one rejected, are checked.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use ai_attribution::record::{dimension_otel_name, Field};
use integration::envoy::{free_port, repo_root, wasm_path, Envoy, TempDir};
use integration::http::{send, Request};
use integration::model_server::ModelServer;
use integration::render::{render, Local};
use integration::request_id;
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The collector's port in the shipped file.
const COLLECTOR_PORT: &str = "port_value: 4317";

/// The OTLP receiver, stopped when dropped.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Receiver {
    fn start(dir: &Path) -> Receiver {
        let python = repo_root().join(".venv-otel/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make otel-venv` (make test creates it)",
            python.display()
        );
        let port = free_port();
        let out = dir.join("otlp.jsonl");
        let mut child = Command::new(python)
            .arg(repo_root().join("integration/otel/receiver.py"))
            .args(["--port", &port.to_string(), "--out"])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let receiver = Receiver { child, port, out };
        assert_eq!(line.trim(), format!("listening on 127.0.0.1:{port}"));
        receiver
    }

    /// Every log record received so far.
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (up to 10 s: the logger flushes every second) for the record of this request id.
    fn record_for(&self, id: &str) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .records()
                .into_iter()
                .find(|r| attributes(r).get("ai_attribution.request_id") == Some(&json!(id)));
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A log record's attributes as `name -> value` (the AnyValue's string).
fn attributes(record: &Value) -> Map<String, Value> {
    record["log_record"]["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|kv| {
            let v = &kv["value"];
            let v = v.get("string_value").cloned().unwrap_or_else(|| v.clone());
            (kv["key"].as_str().unwrap_or_default().to_string(), v)
        })
        .collect()
}

struct Running {
    // Field order: Envoy stops first.
    envoy: Envoy,
    receiver: Receiver,
    _models: ModelServer,
    listen: u16,
    _dir: TempDir,
}

fn start() -> Running {
    let dir = TempDir::new("otel").unwrap();
    let receiver = Receiver::start(dir.path());
    let models = ModelServer::start().unwrap();
    let shipped = std::fs::read_to_string(repo_root().join("envoy/otel.yaml")).unwrap();
    assert!(shipped.contains(COLLECTOR_PORT));
    let (listen, admin) = (free_port(), free_port());
    let config = render(
        &shipped,
        &Local {
            wasm: Some(wasm_path()),
            listen_port: Some(listen),
            admin_port: Some(admin),
            model_server_port: Some(models.port()),
            ..Local::default()
        },
    )
    .replace(COLLECTOR_PORT, &format!("port_value: {}", receiver.port));
    let envoy = Envoy::start(&config, admin).unwrap();
    Running {
        envoy,
        receiver,
        _models: models,
        listen,
        _dir: dir,
    }
}

fn chat(listen: u16, id: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = Request::post("/v1/chat/completions")
        .header("x-request-id", id)
        .header("connection", "close");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req.json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}));
    send(listen, &req).unwrap().status
}

#[test]
fn the_receiver_gets_each_record_under_opentelemetry_names() {
    let r = start();
    let attributed = request_id("otel");
    let rejected = request_id("otel-rejected");
    assert_eq!(
        chat(
            r.listen,
            &attributed,
            &[("x-user-id", "alice"), ("x-business-unit", "finance")]
        ),
        200
    );
    assert_eq!(chat(r.listen, &rejected, &[("x-business-unit", "finance")]), 403);

    let record = r.receiver.record_for(&attributed).unwrap_or_else(|| {
        panic!(
            "no OTLP record for {attributed}: {:?}\n{}",
            r.receiver.records(),
            r.envoy.log()
        )
    });
    let a = attributes(&record);
    for (key, want) in [
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", "gpt-4o"),
        ("gen_ai.response.model", "gpt-4o"),
        ("gen_ai.usage.input_tokens", "27"),
        ("gen_ai.usage.output_tokens", "12"),
        ("gen_ai.usage.cache_read.input_tokens", "10"),
        ("gen_ai.usage.reasoning.output_tokens", "4"),
        ("user.id", "alice"),
        ("ai_attribution.business_unit", "finance"),
        ("ai_attribution.decision", "attributed"),
        ("ai_attribution.usage_status", "reported"),
        ("ai_attribution.cost_usd", "0.000175"),
        ("http.request.method", "POST"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(a.get(key), Some(&json!(want)), "{key} in {record:#}");
    }
    assert!(
        a["gen_ai.response.id"]
            .as_str()
            .is_some_and(|v| v.starts_with("chatcmpl-")),
        "{record:#}"
    );
    for (key, want) in [
        ("user.id", "alice"),
        ("ai_attribution.service_account", "-"),
        ("session.id", "-"),
        ("mcp.method.name", "-"),
    ] {
        assert_eq!(a.get(key), Some(&json!(want)), "{key}: a key without a value is \"-\"");
    }
    let resource = attributes(&json!({"log_record": record["resource"]}));
    assert_eq!(resource.get("service.name"), Some(&json!("ai-gateway")), "{record:#}");
    assert_eq!(resource.get("log_name"), Some(&json!("ai_attribution")), "{record:#}");

    let record = r
        .receiver
        .record_for(&rejected)
        .unwrap_or_else(|| panic!("no OTLP record for {rejected}: {:?}", r.receiver.records()));
    let a = attributes(&record);
    for (key, want) in [
        ("ai_attribution.decision", "rejected"),
        ("ai_attribution.reason", "missing:user"),
        ("ai_attribution.usage_status", "not_applicable"),
        ("ai_attribution.business_unit", "finance"),
        ("gen_ai.provider.name", "openai"),
        ("http.response.status_code", "403"),
        ("user.id", "-"),
        ("gen_ai.request.model", "-"),
        ("gen_ai.usage.input_tokens", "-"),
    ] {
        assert_eq!(a.get(key), Some(&json!(want)), "{key} in {record:#}");
    }
}

/// The attributes of `envoy/otel.yaml` are the record's keys under the names the structured
/// record uses (`Field::otel_name`, `dimension_otel_name`), each read from its scalar key.
#[test]
fn the_shipped_attributes_are_the_records_opentelemetry_names() {
    let text = std::fs::read_to_string(repo_root().join("envoy/otel.yaml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    let hcm = &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let log = &hcm["access_log"][0];
    assert_eq!(log["name"], "envoy.access_loggers.open_telemetry");
    let shipped: Map<String, Value> = log["typed_config"]["attributes"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (
                kv["key"].as_str().unwrap().to_string(),
                kv["value"]["string_value"].clone(),
            )
        })
        .collect();
    let mut want = Map::new();
    for f in Field::ALL {
        let value = match f {
            Field::Method => "%REQ(:METHOD)%".to_string(),
            Field::RequestId => "%REQ(X-REQUEST-ID)%".to_string(),
            f => format!("%FILTER_STATE(wasm.ai_attribution.{}:PLAIN)%", f.scalar_name()),
        };
        want.insert(f.otel_name().to_string(), json!(value));
    }
    for dim in ["user", "service_account", "app", "session", "business_unit"] {
        want.insert(
            dimension_otel_name(dim),
            json!(format!("%FILTER_STATE(wasm.ai_attribution.{dim}:PLAIN)%")),
        );
    }
    for (key, value) in &want {
        assert_eq!(shipped.get(key), Some(value), "envoy/otel.yaml: attribute {key}");
    }
    let extra: Vec<&String> = shipped.keys().filter(|k| !want.contains_key(*k)).collect();
    assert_eq!(
        extra,
        [
            "envoy.duration_ms",
            "envoy.response_code_details",
            "http.response.status_code",
            "url.path"
        ],
        "besides the record, only Envoy's own request fields"
    );
}
