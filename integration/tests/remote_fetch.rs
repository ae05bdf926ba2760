//! `envoy/remote-fetch.yaml`: Envoy fetches the filter itself over HTTPS
//! (`vm_config.code.remote`), pinned by its SHA-256. The shipped file is run as it is, with only
//! its placeholders replaced: the artifact server by a local HTTPS server (`openssl s_server`) on
//! 127.0.0.1 with a certificate from a test CA, the system CA bundle by that CA, and the zeros of
//! `sha256` by the module's digest. With the right digest the module loads and a model call gets
//! its record; with a wrong one Envoy refuses the module, says so in its log, and the listener
//! answers 503 (FAIL_CLOSED) with no record.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::envoy::{free_port, repo_root, wasm_path, Envoy, TempDir};
use integration::http::{send, Request};
use integration::model_server::ModelServer;
use integration::oci::digest;
use integration::pki::{Pki, TlsFileServer};
use integration::render::{render, Local};
use integration::{log_for, log_lines, request_id};
use serde_json::json;
use std::path::PathBuf;

const HOST: &str = "artifacts.corp.example";
const URI_PATH: &str = "ai-attribution/0.1.0/ai_attribution.wasm";
const SHA256_PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The shipped config, the artifact server holding the built module, and Envoy started on them.
struct Fetched {
    // Field order: Envoy stops first.
    envoy: Envoy,
    _artifacts: TlsFileServer,
    _models: ModelServer,
    listen: u16,
    access_log: PathBuf,
    _dir: TempDir,
}

fn wasm_sha256() -> String {
    let module = std::fs::read(wasm_path()).expect("the filter is built (make build)");
    digest(&module).trim_start_matches("sha256:").to_string()
}

fn start(sha256: &str) -> Fetched {
    let dir = TempDir::new("remote-fetch").unwrap();
    let pki = Pki::new(&dir.path().join("tls")).unwrap();
    let cert = pki
        .issue(
            "artifacts",
            &format!("/CN={HOST}"),
            &format!("DNS:{HOST}"),
            "serverAuth",
        )
        .unwrap();
    let www = dir.path().join("www");
    let published = www.join(URI_PATH);
    std::fs::create_dir_all(published.parent().unwrap()).unwrap();
    std::fs::copy(wasm_path(), &published).unwrap();
    let artifacts_port = free_port();
    let artifacts = TlsFileServer::start(&www, &cert, artifacts_port).unwrap();
    let models = ModelServer::start().unwrap();

    let shipped = std::fs::read_to_string(repo_root().join("envoy/remote-fetch.yaml")).unwrap();
    assert!(
        shipped.contains(&format!("uri: https://{HOST}/{URI_PATH}")),
        "the shipped URI"
    );
    assert!(shipped.contains(SHA256_PLACEHOLDER), "the shipped sha256 placeholder");
    let (listen, admin) = (free_port(), free_port());
    let access_log = dir.path().join("access.log");
    let config = render(
        &shipped,
        &Local {
            system_ca: Some(pki.ca()),
            listen_port: Some(listen),
            admin_port: Some(admin),
            model_server_port: Some(models.port()),
            upstreams: vec![(HOST.to_string(), artifacts_port)],
            access_log: Some(access_log.clone()),
            ..Local::default()
        },
    )
    .replace(SHA256_PLACEHOLDER, sha256);
    let envoy = Envoy::start(&config, admin).unwrap();
    Fetched {
        envoy,
        _artifacts: artifacts,
        _models: models,
        listen,
        access_log,
        _dir: dir,
    }
}

fn model_call(listen: u16, id: &str) -> integration::http::Response {
    send(
        listen,
        &Request::post("/v1/chat/completions")
            .header("x-request-id", id)
            .header("x-user-id", "alice")
            .header("x-business-unit", "finance")
            .header("connection", "close")
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})),
    )
    .unwrap()
}

#[test]
fn envoy_fetches_the_module_over_https_and_runs_it() {
    let f = start(&wasm_sha256());
    let id = request_id("remote");
    let resp = model_call(f.listen, &id);
    assert_eq!(resp.status, 200, "{}\n{}", resp.text(), f.envoy.log());
    let line = log_for(&f.access_log, &id).expect("a log line");
    assert_eq!(
        resp.header("x-ai-correlation-id"),
        line["correlation_id"].as_str(),
        "{line}"
    );
    assert_eq!(line["decision"], "attributed", "{line}");
    assert_eq!(line["user"], "alice", "{line}");
    assert_eq!(line["business_unit"], "finance", "{line}");
    assert_eq!(line["input_tokens"], "27", "{line}");
    assert!(
        f.envoy.stat("cluster.wasm_artifacts.ssl.handshake").unwrap_or(0) >= 1,
        "the module came over TLS"
    );
}

#[test]
fn envoy_refuses_a_module_whose_sha256_does_not_match() {
    // The digest of other bytes: the server serves the real module, which does not match.
    let wrong = digest(b"another module").trim_start_matches("sha256:").to_string();
    let f = start(&wrong);
    let log = f.envoy.log();
    for said in [
        "Retry limit exceeded for fetching data from remote data source.",
        "Plugin ai_attribution failed to load",
        "Plugin configured to fail closed failed to load",
    ] {
        assert!(log.contains(said), "Envoy's log should say {said:?}:\n{log}");
    }
    let id = request_id("remote-wrong");
    let resp = model_call(f.listen, &id);
    assert_eq!(resp.status, 503, "no filter, FAIL_CLOSED: {}\n{log}", resp.text());
    assert_eq!(resp.header("x-ai-correlation-id"), None, "the filter did not run");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let lines = log_lines(&f.access_log);
    let line = lines
        .iter()
        .find(|l| l["request_id"] == id.as_str())
        .expect("a log line");
    assert!(line["decision"].is_null(), "no record: {line}");
}
