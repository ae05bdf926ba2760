//! Failure behaviour through a real Envoy: what a crashed VM does under each failure policy, and
//! an invalid configuration update refused while the previous configuration keeps serving.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::bootstrap::Bootstrap;
use integration::envoy::{Envoy, TempDir};
use integration::http::Request;
use integration::model_server::ModelServer;
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A minimal proxy-wasm module whose request-headers callback traps, as a panicking filter does.
const TRAPPING_MODULE: &str = r#"
(module
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (i32.and (i32.add (local.get $size) (i32.const 15)) (i32.const -16))))
    (local.get $at))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32)))
"#;

fn trapping_stack(policy: Option<&str>) -> (Stack, TempDir) {
    let dir = TempDir::new("trap").unwrap();
    let wasm = dir.path().join("trap.wasm");
    std::fs::write(&wasm, wat::parse_str(TRAPPING_MODULE).unwrap()).unwrap();
    let stack = Stack::start_with("{}".into(), |b| {
        b.wasm = wasm.clone();
        b.failure_policy = policy.map(str::to_string);
    })
    .unwrap();
    (stack, dir)
}

fn status_and_details(stack: &Stack) -> (u16, String) {
    let id = request_id("vm");
    let resp = stack
        .send(
            &Request::post("/v1/chat/completions")
                .header("x-request-id", &id)
                .json(&json!({})),
        )
        .unwrap();
    let log = stack.log_for(&id).unwrap();
    (resp.status, log["details"].as_str().unwrap_or_default().to_string())
}

#[test]
fn fail_closed_is_the_default_after_a_vm_failure() {
    let (stack, _dir) = trapping_stack(None);
    for _ in 0..3 {
        assert_eq!(status_and_details(&stack), (503, "wasm_fail_stream".to_string()));
    }
    let (stack, _dir) = trapping_stack(Some("FAIL_CLOSED"));
    assert_eq!(status_and_details(&stack), (503, "wasm_fail_stream".to_string()));
    assert_eq!(status_and_details(&stack), (503, "wasm_fail_stream".to_string()));
}

#[test]
fn fail_open_skips_the_filter_after_a_vm_failure() {
    let (stack, _dir) = trapping_stack(Some("FAIL_OPEN"));
    let _ = status_and_details(&stack);
    // After the crash the filter is skipped: calls pass unattributed, with no record at all.
    let id = request_id("open");
    let resp = stack
        .send(
            &Request::post("/v1/chat/completions")
                .header("x-request-id", &id)
                .json(&json!({})),
        )
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(stack.log_for(&id).unwrap()["decision"], Value::Null);
}

fn wait_for_stat(envoy: &Envoy, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while envoy.stat(name) != Some(want) {
        assert!(
            Instant::now() < deadline,
            "{name} never reached {want}: {:?}\n{}",
            envoy.stat(name),
            envoy.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes an LDS file atomically (Envoy watches for the move).
fn write_lds(path: &std::path::Path, listener: &Value) {
    let tmp = path.with_extension("tmp");
    let doc = json!({"resources": [listener]});
    std::fs::write(&tmp, doc.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn an_invalid_config_update_is_rejected_and_the_previous_config_keeps_serving() {
    let server = ModelServer::start().unwrap();
    let dir = TempDir::new("lds").unwrap();
    let access_log = dir.path().join("access.log");
    let good = json!({"dimensions": {"user": ["header:x-user-id"]}, "require": [["user"]]}).to_string();
    let bootstrap = Bootstrap::new(server.port(), good, access_log.clone());
    let mut doc: Value = serde_json::from_str(&bootstrap.to_json()).unwrap();
    let mut listener = doc["static_resources"]["listeners"][0].take();
    listener["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
    doc["static_resources"].as_object_mut().unwrap().remove("listeners");
    let lds = dir.path().join("lds.json");
    write_lds(&lds, &listener);
    doc["dynamic_resources"] =
        json!({"lds_config": {"path_config_source": {"path": lds}, "resource_api_version": "V3"}});
    let envoy = Envoy::start(&doc.to_string(), bootstrap.admin_port).unwrap();
    let port = bootstrap.listen_port;
    let call = |user: Option<&str>| {
        let mut req = Request::post("/v1/chat/completions").json(&json!({"model": "m"}));
        if let Some(u) = user {
            req = req.header("x-user-id", u);
        }
        integration::http::send(port, &req).unwrap().status
    };
    assert_eq!(call(Some("alice")), 200);
    assert_eq!(call(None), 403);

    // Push an update whose plugin config has a typo: Envoy must refuse it.
    let config_path = "/filter_chains/0/filters/0/typed_config/http_filters/0/typed_config/config/configuration/value";
    let mut bad = listener.clone();
    *bad.pointer_mut(config_path).unwrap() =
        json!(r#"{"dimensions": {"user": ["heder:x-user-id"]}, "require": [["user"]]}"#);
    write_lds(&lds, &bad);
    wait_for_stat(&envoy, "listener_manager.lds.update_rejected", 1);
    assert!(
        envoy
            .log()
            .contains(r#"dimensions.user[0]: unknown source kind "heder""#),
        "{}",
        envoy.log()
    );
    // The previous listener and filter config keep serving.
    assert_eq!(call(Some("alice")), 200);
    assert_eq!(call(None), 403);

    // A valid update (audit mode) is accepted and takes effect.
    let mut audit = listener.clone();
    *audit.pointer_mut(config_path).unwrap() =
        json!(r#"{"mode": "audit", "dimensions": {"user": ["header:x-user-id"]}, "require": [["user"]]}"#);
    write_lds(&lds, &audit);
    wait_for_stat(&envoy, "listener_manager.lds.update_success", 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(None) != 200 {
        assert!(Instant::now() < deadline, "the audit config never took effect");
        std::thread::sleep(Duration::from_millis(100));
    }
}
