//! Privacy through a real Envoy: a pseudonymised user never appears in clear in the access log
//! (either record form), in Envoy's metrics, or in what the upstream model server receives; the
//! key comes from the VM environment, and a configuration without it does not load.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::bootstrap::Bootstrap;
use integration::envoy::{free_port, repo_root, wasm_path, Envoy, TempDir};
use integration::http::Request;
use integration::model_server::ModelServer;
use integration::render::{render, Local};
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A test-only key; real keys come from a secret store into the VM environment.
const TEST_KEY: &str = "test-only-key-for-privacy-tests-0123456789";
/// A user name distinctive enough that any occurrence of it is a leak.
const USER: &str = "alice.privacy.7f3e";

fn config() -> Value {
    json!({
        "dimensions": {"user": ["header:x-user-id"], "business_unit": ["header:x-business-unit"]},
        "require": [["user", "business_unit"]],
        "privacy": {"pseudonymise": ["user"], "key_env": "TEST_PSEUDONYM_KEY"},
        "correlation": {"propagate": ["user", "business_unit"], "baggage": true},
        "metrics": {"labels": ["provider", "user", "business_unit"]}
    })
}

fn stack(key: Option<&str>) -> Stack {
    Stack::start_with(config().to_string(), |b: &mut Bootstrap| {
        b.dimensions.push("user_hash".to_string());
        if let Some(key) = key {
            b.vm_environment = vec![("TEST_PSEUDONYM_KEY".to_string(), key.to_string())];
        }
    })
    .unwrap()
}

/// HMAC-SHA256 of `value` under `key`, computed by OpenSSL (not by the filter's code).
fn openssl_hmac(key: &str, value: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl (make setup installs it)");
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // "HMAC-SHA2-256(stdin)= <hex>" (the label differs between OpenSSL versions).
    text.trim().rsplit(' ').next().unwrap().to_string()
}

fn chat(id: &str, user: &str) -> Request {
    Request::post("/v1/chat/completions")
        .header("x-request-id", id)
        .header("x-user-id", user)
        .header("x-business-unit", "finance")
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}))
}

#[test]
fn a_pseudonymised_user_never_appears_in_clear() {
    let stack = stack(Some(TEST_KEY));
    let hash = openssl_hmac(TEST_KEY, USER);
    assert_eq!(hash.len(), 64, "{hash}");

    let id = request_id("privacy");
    let resp = stack.send(&chat(&id, USER)).unwrap();
    assert_eq!(resp.status, 200, "require sees the resolved user: {}", resp.text());
    let rejected = request_id("privacy-rejected");
    let resp = stack
        .send(
            &Request::post("/v1/chat/completions")
                .header("x-request-id", &rejected)
                .header("x-user-id", USER)
                .json(&json!({"model": "gpt-4o", "messages": []})),
        )
        .unwrap();
    assert_eq!(resp.status, 403, "no business unit: {}", resp.text());
    assert!(!resp.text().contains(USER), "{}", resp.text());

    // The access log: the pseudonym under user_hash and user.hash, never the value.
    let line = stack
        .log_for(&id)
        .unwrap_or_else(|| panic!("no access-log line for {id}\n{}", stack.envoy.log()));
    assert_eq!(line["decision"], "attributed", "{line}");
    assert_eq!(line["user_hash"], hash.as_str(), "{line}");
    assert_eq!(line["user"], Value::Null, "{line}");
    let record = &line["record"]["value"];
    assert_eq!(record["user.hash"], hash.as_str(), "{line}");
    assert_eq!(record["user.id"], Value::Null, "{line}");
    assert_eq!(record["ai_attribution.business_unit"], "finance", "{line}");
    let rejected_line = stack.log_for(&rejected).unwrap();
    assert_eq!(rejected_line["user_hash"], hash.as_str(), "{rejected_line}");
    let log = std::fs::read_to_string(&stack.access_log).unwrap();
    assert!(!log.contains(USER), "the access log holds the clear user:\n{log}");

    // What the model server received: the pseudonym in x-ai-user and baggage, the header the
    // user came in removed, and the value nowhere.
    let up = stack
        .server
        .received()
        .into_iter()
        .find(|r| r.header("x-request-id") == Some(id.as_str()))
        .expect("the call reached the model server");
    assert_eq!(up.header("x-ai-user"), Some(hash.as_str()), "{:?}", up.headers);
    assert_eq!(up.header("x-ai-business-unit"), Some("finance"));
    assert_eq!(up.header("x-user-id"), None, "{:?}", up.headers);
    let baggage = up.header("baggage").unwrap_or_default();
    assert!(baggage.contains(&format!("ai.user={hash}")), "{baggage}");
    for (name, value) in &up.headers {
        assert!(!value.contains(USER), "upstream header {name}: {value}");
    }

    // Envoy's metrics: labelled by the pseudonym.
    std::thread::sleep(Duration::from_millis(300));
    let stats = stack.envoy.admin("/stats").unwrap();
    let prometheus = stack.envoy.admin("/stats/prometheus").unwrap();
    assert!(
        stats.contains(&format!(";user={hash}")),
        "no series labelled by the pseudonym:\n{stats}"
    );
    assert!(!stats.contains(USER), "/stats holds the clear user");
    assert!(!prometheus.contains(USER), "/stats/prometheus holds the clear user");
    // Nor does Envoy's own log.
    assert!(!stack.envoy.log().contains(USER), "Envoy's log holds the clear user");
}

#[test]
fn another_key_gives_another_pseudonym() {
    let stack = stack(Some("another-test-only-key-9876543210"));
    let id = request_id("privacy-key");
    assert_eq!(stack.send(&chat(&id, USER)).unwrap().status, 200);
    let line = stack.log_for(&id).unwrap();
    assert_eq!(
        line["user_hash"],
        openssl_hmac("another-test-only-key-9876543210", USER).as_str()
    );
    assert_ne!(line["user_hash"], openssl_hmac(TEST_KEY, USER).as_str());
}

#[test]
fn pseudonymisation_without_a_key_in_the_vm_environment_does_not_load() {
    for (key, want) in [
        (None, "the environment variable TEST_PSEUDONYM_KEY is not set"),
        (Some(""), "the environment variable TEST_PSEUDONYM_KEY is empty"),
        (Some("short"), "it needs at least 16"),
    ] {
        let mut b = Bootstrap::new(
            free_port(),
            config().to_string(),
            std::env::temp_dir().join("unused.log"),
        );
        b.admin_port = free_port();
        if let Some(key) = key {
            b.vm_environment = vec![("TEST_PSEUDONYM_KEY".to_string(), key.to_string())];
        }
        let (code, log) = Envoy::wait_exit(&b.to_json(), Duration::from_secs(30)).unwrap();
        assert_ne!(code, Some(0), "Envoy started without a usable key ({key:?})");
        assert!(
            log.contains("invalid ai-attribution configuration: privacy.key_env:") && log.contains(want),
            "{key:?}: {log}"
        );
    }
}

#[test]
fn a_redacted_key_is_in_neither_access_log_form() {
    let config = json!({
        "dimensions": {"user": ["header:x-user-id"], "business_unit": ["header:x-business-unit"]},
        "require": [["user"]],
        "record": {"redact": ["request_model", "business_unit"]},
        "metrics": {"labels": ["provider", "business_unit"]}
    });
    let stack = Stack::start(&config).unwrap();
    let id = request_id("redact");
    assert_eq!(stack.send(&chat(&id, "bob")).unwrap().status, 200);
    let line = stack
        .log_for(&id)
        .unwrap_or_else(|| panic!("no access-log line for {id}\n{}", stack.envoy.log()));
    assert_eq!(line["request_model"], Value::Null, "{line}");
    assert_eq!(line["business_unit"], Value::Null, "{line}");
    let record = line["record"]["value"].as_object().unwrap();
    assert!(!record.contains_key("gen_ai.request.model"), "{line}");
    assert!(!record.contains_key("ai_attribution.business_unit"), "{line}");
    // The other keys stay, and the metric label is its own switch.
    assert_eq!(line["user"], "bob");
    assert_eq!(record["gen_ai.response.model"], "gpt-4o");
    std::thread::sleep(Duration::from_millis(300));
    assert!(stack.envoy.admin("/stats").unwrap().contains(";business_unit=finance"));
}

/// The telemetry a call costs: the access-log line `envoy/envoy.yaml` (as shipped, rendered with
/// local paths and ports) writes for a typical attributed call, a streamed one and a rejection, in
/// bytes, newline included. The README's privacy review quotes these numbers; the bounds catch a
/// record that grows without the README saying so.
#[test]
fn bytes_per_record_with_the_shipped_access_log() {
    let server = ModelServer::start().unwrap();
    let dir = TempDir::new("telemetry-cost").unwrap();
    let (port, admin) = (free_port(), free_port());
    let log_path = dir.path().join("access.log");
    let shipped = std::fs::read_to_string(repo_root().join("envoy/envoy.yaml")).unwrap();
    let config = render(
        &shipped,
        &Local {
            wasm: Some(wasm_path()),
            listen_port: Some(port),
            admin_port: Some(admin),
            model_server_port: Some(server.port()),
            access_log: Some(log_path.clone()),
            ..Local::default()
        },
    );
    let envoy = Envoy::start(&config, admin).unwrap();
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]});
    let stream = json!({"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": true,
        "messages": [{"role": "user", "content": "Summarise"}]});
    let calls = [
        (
            "attributed",
            "/v1/chat/completions",
            chat.clone(),
            vec![("x-user-id", "alice"), ("x-business-unit", "finance")],
            200,
        ),
        (
            "streamed",
            "/v1/messages",
            stream,
            vec![("x-service-account", "nightly-summarizer")],
            200,
        ),
        (
            "rejected",
            "/v1/chat/completions",
            chat,
            vec![("x-business-unit", "finance")],
            403,
        ),
    ];
    let mut sizes = Vec::new();
    for (what, path, body, headers, status) in calls {
        let id = request_id(what);
        let mut req = Request::post(path).header("x-request-id", &id).json(&body);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let resp = integration::http::send(port, &req).unwrap();
        assert_eq!(resp.status, status, "{what}: {}", resp.text());
        integration::log_for(&log_path, &id).unwrap_or_else(|| panic!("no line for {id}\n{}", envoy.log()));
        let log = std::fs::read_to_string(&log_path).unwrap();
        let line = log.lines().find(|l| l.contains(&id)).unwrap();
        let parsed: Value = serde_json::from_str(line).unwrap();
        let structured = parsed["record"].to_string().len();
        let bytes = line.len() + 1;
        // `"key":null,` for each scalar key without a value.
        let nulls: usize = parsed
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.len() + 8)
            .sum();
        eprintln!(
            "{what}: {bytes} bytes per access-log line, of which {structured} the structured record and {nulls} keys without a value"
        );
        sizes.push((what, bytes, structured));
    }
    for (what, bytes, structured) in sizes {
        assert!((1000..2600).contains(&bytes), "{what}: {bytes} bytes");
        assert!(
            structured < bytes / 2 + 200,
            "{what}: structured {structured} of {bytes}"
        );
    }
}
