//! The shipped `envoy/quota-ratelimit-filter.yaml` on a real Envoy: Envoy's own rate-limit
//! filter, reading the filter state the wasm filter is to write, calls this server. Two Envoys,
//! each with its own server, share budgets through one Redis.
//!
//! Until the wasm filter writes `wasm.ai_attribution.quota_*`, stand-ins write them: Envoy's
//! `set_filter_state` filter, from `x-test-*` request headers, placed after the wasm filter; and
//! a tiny proxy-wasm module in the wasm filter's place, which writes them as the filter will
//! (`set_property`, the tokens at the response).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use integration::envoy::{free_port, repo_root, Envoy, TempDir};
use integration::http::{self, Request};
use integration::model_server::ModelServer;
use ratelimit_server::proto::Code;
use serde_json::{json, Value};
use std::time::Duration;
use support::{descriptor, eventually, request, write, Client, Redis, Server};

/// The shipped budgets' shapes, with small numbers.
const LIMITS: &str = "domain: ai-attribution
descriptors:
  - key: budget
    value: tokens_per_bu
    descriptors:
      - key: business_unit
        rate_limit: {unit: day, requests_per_unit: 100}
  - key: budget
    value: cost_per_bu_model
    descriptors:
      - key: business_unit
        descriptors:
          - key: model
            rate_limit: {unit: month, requests_per_unit: 1000}
  - key: budget
    value: requests_per_user
    descriptors:
      - key: user
        rate_limit: {unit: minute, requests_per_unit: 3}
";

/// Writes each `wasm.ai_attribution.<key>` from the `x-test-<header>` request header, if sent.
fn stand_in() -> Value {
    let state = |key: &str, header: &str| {
        json!({
            "object_key": format!("wasm.ai_attribution.{key}"),
            "factory_key": "envoy.string",
            "skip_if_empty": true,
            "format_string": {"omit_empty_values": true, "text_format_source": {"inline_string": format!("%REQ({header})%")}}
        })
    };
    json!({
        "name": "envoy.filters.http.set_filter_state",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
            "on_request_headers": [
                state("quota_key.business_unit", "x-business-unit"),
                state("quota_key.user", "x-user-id"),
                state("quota_key.model", "x-test-model"),
                state("quota_tokens", "x-test-tokens"),
                state("quota_cost_microusd", "x-test-cost"),
            ]
        }
    })
}

/// The shipped config, loading the built filter.
fn shipped() -> Value {
    let text = std::fs::read_to_string(repo_root().join("envoy/quota-ratelimit-filter.yaml")).unwrap();
    let local = integration::render::Local {
        wasm: Some(integration::envoy::wasm_path()),
        ..Default::default()
    };
    serde_yaml::from_str(&integration::render::render(&text, &local)).unwrap()
}

/// The shipped config on free ports, with the stand-in, in front of this model server and
/// rate-limit server.
fn bootstrap(model_port: u16, ratelimit_port: u16, access_log: &str, failure_mode_deny: bool) -> (Value, u16, u16) {
    let mut b = shipped();
    let (listen, admin) = (free_port(), free_port());
    b["admin"]["address"]["socket_address"]["port_value"] = json!(admin);
    let listener = &mut b["static_resources"]["listeners"][0];
    listener["address"]["socket_address"]["port_value"] = json!(listen);
    let hcm = &mut listener["filter_chains"][0]["filters"][0]["typed_config"];
    hcm["access_log"][0]["typed_config"]["path"] = json!(access_log);
    let filters = hcm["http_filters"].as_array_mut().unwrap();
    let names: Vec<&str> = filters.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.wasm",
            "envoy.filters.http.ratelimit",
            "envoy.filters.http.router"
        ],
        "the shipped chain"
    );
    filters[1]["typed_config"]["failure_mode_deny"] = json!(failure_mode_deny);
    filters.insert(1, stand_in());
    for cluster in b["static_resources"]["clusters"].as_array_mut().unwrap() {
        let port = match cluster["name"].as_str().unwrap() {
            "model_server" => model_port,
            "ratelimit" => ratelimit_port,
            other => panic!("unexpected cluster {other}"),
        };
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
            ["port_value"] = json!(port);
    }
    (b, listen, admin)
}

struct Gateway {
    envoy: Envoy,
    port: u16,
    _dir: TempDir,
}

impl Gateway {
    fn start(model: &ModelServer, ratelimit_port: u16, failure_mode_deny: bool) -> Gateway {
        let dir = TempDir::new("quota-envoy").unwrap();
        let log = dir.path().join("access.log").display().to_string();
        let (b, port, admin) = bootstrap(model.port(), ratelimit_port, &log, failure_mode_deny);
        let envoy = Envoy::start(&b.to_string(), admin).unwrap();
        Gateway { envoy, port, _dir: dir }
    }

    /// A chat call by `user` of `bu`; the stand-in's quota state from `extra` headers.
    fn call(&self, user: &str, bu: &str, extra: &[(&str, &str)]) -> http::Response {
        let mut req = Request::post("/v1/chat/completions")
            .header("x-user-id", user)
            .header("x-business-unit", bu)
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}));
        for (k, v) in extra {
            req = req.header(k, v);
        }
        http::send(self.port, &req).unwrap()
    }
}

fn tokens(bu: &str) -> ratelimit_server::proto::RateLimitDescriptor {
    descriptor(&[("budget", "tokens_per_bu"), ("business_unit", bu)], Some(0))
}

/// What `bu` has left of its tokens, asked of `server` without charging.
fn tokens_left(client: &mut Client, bu: &str) -> u32 {
    let r = client.ask(request("ai-attribution", vec![tokens(bu)])).unwrap();
    r.statuses[0].limit_remaining
}

#[test]
fn two_envoys_share_budgets_through_one_redis() {
    let redis = Redis::start();
    let dir = TempDir::new("quota").unwrap();
    let config = write(&dir, "limits.yaml", LIMITS);
    let model = ModelServer::start().unwrap();
    let (sa, sb) = (
        Server::start(&["--config", &config, "--redis", &redis.url()]),
        Server::start(&["--config", &config, "--redis", &redis.url()]),
    );
    let a = Gateway::start(&model, sa.port(), true);
    let b = Gateway::start(&model, sb.port(), true);
    let mut probe = Client::connect(&sa.addr);

    // Tokens are charged when each stream is done, on whichever Envoy served it.
    let r = a.call("u1", "finance", &[("x-test-tokens", "60")]);
    assert_eq!(r.status, 200, "{}", r.text());
    eventually("finance's 60 tokens", || {
        (tokens_left(&mut probe, "finance") == 40).then_some(())
    });
    let r = b.call("u2", "finance", &[("x-test-tokens", "50")]);
    assert_eq!(
        r.status, 200,
        "40 left: the check passes, the charge goes past the limit"
    );
    eventually("finance's budget spent", || {
        (tokens_left(&mut probe, "finance") == 0).then_some(())
    });
    // The next call is refused by both, before it reaches the model; legal is not affected.
    for gw in [&a, &b] {
        let before = model.received().len();
        let r = gw.call("u3", "finance", &[("x-test-tokens", "1")]);
        assert_eq!(r.status, 429, "{}", r.text());
        assert_eq!(r.header("x-envoy-ratelimited"), Some("true"));
        assert_eq!(model.received().len(), before, "a refused call never reaches the model");
        assert_eq!(gw.call("u4", "legal", &[]).status, 200);
    }
    // A call with no usage to report (absent, or not a number) charges nothing.
    b.call("u5", "legal", &[("x-test-tokens", "abc")]);
    assert_eq!(tokens_left(&mut probe, "legal"), 100);
    assert!(
        b.envoy.log().contains("Invalid hits_addend"),
        "Envoy says why it charged nothing"
    );

    // Requests per user are charged at the check: the fourth call in the minute is refused.
    for (i, gw) in [&a, &b, &a].into_iter().enumerate() {
        assert_eq!(gw.call("carol", "legal", &[]).status, 200, "call {i}");
    }
    assert_eq!(b.call("carol", "legal", &[]).status, 429);

    // Cost per business unit and model, from the micro-USD the call cost.
    let cost = [("x-test-model", "gpt-4o"), ("x-test-cost", "1500")];
    assert_eq!(a.call("dave", "ops", &cost).status, 200);
    let check = descriptor(
        &[
            ("budget", "cost_per_bu_model"),
            ("business_unit", "ops"),
            ("model", "gpt-4o"),
        ],
        Some(0),
    );
    let over = || probe_code(&sb.addr, check.clone()) == Code::OverLimit;
    eventually("ops's gpt-4o cost charged", || over().then_some(()));
    assert_eq!(b.call("erin", "ops", &cost).status, 429);
    let other_model = [("x-test-model", "claude-sonnet-4"), ("x-test-cost", "10")];
    assert_eq!(
        b.call("erin", "ops", &other_model).status,
        200,
        "another model, another budget"
    );

    // Both servers saw the same descriptors from Envoy.
    for s in [&sa, &sb] {
        let log = s.log();
        assert!(
            log.contains("(budget=tokens_per_bu, business_unit=finance) hits=0"),
            "the check carries hits_addend 0:\n{log}"
        );
    }
    assert!(sa
        .log()
        .contains("(budget=tokens_per_bu, business_unit=finance) hits=60"));
    assert!(sb
        .log()
        .contains("(budget=tokens_per_bu, business_unit=finance) hits=50"));
}

fn probe_code(addr: &str, d: ratelimit_server::proto::RateLimitDescriptor) -> Code {
    let r = Client::connect(addr).ask(request("ai-attribution", vec![d])).unwrap();
    Code::try_from(r.overall_code).unwrap()
}

#[test]
fn an_owner_without_quota_state_is_not_counted() {
    let dir = TempDir::new("quota").unwrap();
    let config = write(&dir, "limits.yaml", LIMITS);
    let model = ModelServer::start().unwrap();
    let server = Server::start(&["--config", &config]);
    let gw = Gateway::start(&model, server.port(), true);
    // No x-business-unit: the wasm filter takes the node's, but the stand-in writes no
    // quota_key.business_unit, so Envoy drops the descriptor instead of sending
    // (budget=tokens_per_bu) alone or with an empty business unit.
    let r = http::send(
        gw.port,
        &Request::post("/v1/chat/completions")
            .header("x-user-id", "u1")
            .header("x-service-account", "sa")
            .header("x-test-tokens", "500")
            .json(&json!({"model": "gpt-4o", "messages": []})),
    )
    .unwrap();
    assert_ne!(r.status, 429);
    // Give a stream-done call, if Envoy made one, time to land before looking for it.
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log();
    assert!(!log.contains("business_unit=)"), "{log}");
    assert!(!log.contains("(budget=tokens_per_bu) "), "{log}");
}

#[test]
fn a_slow_service_fails_open_or_closed_as_configured() {
    let dir = TempDir::new("quota").unwrap();
    let config = write(&dir, "limits.yaml", LIMITS);
    let model = ModelServer::start().unwrap();
    // Far slower than the shipped 0.2 s timeout.
    let server = Server::start(&["--config", &config, "--delay-ms", "5000"]);
    let open = Gateway::start(&model, server.port(), false);
    assert_eq!(
        open.call("u1", "finance", &[]).status,
        200,
        "failure_mode_deny: false lets it pass"
    );
    let closed = Gateway::start(&model, server.port(), true);
    let r = closed.call("u1", "finance", &[]);
    assert_eq!(r.status, 500, "failure_mode_deny: true refuses it: {}", r.text());
}

/// A proxy-wasm module in the wasm filter's place that writes its quota state as the filter
/// will: `quota_key.business_unit` from `x-business-unit` at the request headers, and
/// `quota_tokens` = 42 at the response headers (usage is known only then).
const QUOTA_STATE_MODULE: &str = r#"
(module
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_property (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "x-business-unit")
  (data (i32.const 1056) "ai_attribution.quota_key.business_unit")
  (data (i32.const 1120) "ai_attribution.quota_tokens")
  (data (i32.const 1152) "42")
  (global $next (mut i32) (i32.const 8192))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (i32.and (i32.add (local.get $size) (i32.const 15)) (i32.const -16))))
    (local.get $at))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; map 0 = request headers; the value's address and size land at 2048 and 2052.
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 1024) (i32.const 15) (i32.const 2048) (i32.const 2052)))
      (then (drop (call $set_property (i32.const 1056) (i32.const 38) (i32.load (i32.const 2048)) (i32.load (i32.const 2052))))))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $set_property (i32.const 1120) (i32.const 27) (i32.const 1152) (i32.const 2)))
    (i32.const 0))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32)))
"#;

#[test]
fn wasm_filter_state_written_at_the_response_is_charged_at_stream_end() {
    let dir = TempDir::new("quota-wasm-state").unwrap();
    let config = write(&dir, "limits.yaml", LIMITS);
    let module = dir.path().join("quota-state.wasm");
    std::fs::write(&module, wat::parse_str(QUOTA_STATE_MODULE).unwrap()).unwrap();
    let model = ModelServer::start().unwrap();
    let server = Server::start(&["--config", &config]);
    // The shipped config, with the stand-in module in the wasm filter's place and no other.
    let log = dir.path().join("access.log").display().to_string();
    let mut b = shipped();
    let (port, admin) = (free_port(), free_port());
    b["admin"]["address"]["socket_address"]["port_value"] = json!(admin);
    let listener = &mut b["static_resources"]["listeners"][0];
    listener["address"]["socket_address"]["port_value"] = json!(port);
    let hcm = &mut listener["filter_chains"][0]["filters"][0]["typed_config"];
    hcm["access_log"][0]["typed_config"]["path"] = json!(log);
    hcm["http_filters"][0]["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] =
        json!(module.display().to_string());
    for cluster in b["static_resources"]["clusters"].as_array_mut().unwrap() {
        let p = if cluster["name"] == "ratelimit" {
            server.port()
        } else {
            model.port()
        };
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
            ["port_value"] = json!(p);
    }
    let envoy = Envoy::start(&b.to_string(), admin).unwrap();
    let r = http::send(
        port,
        &Request::post("/v1/chat/completions")
            .header("x-business-unit", "wasm-bu")
            .json(&json!({"model": "gpt-4o", "messages": []})),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let mut client = Client::connect(&server.addr);
    eventually("the 42 tokens written at the response", || {
        (tokens_left(&mut client, "wasm-bu") == 58).then_some(())
    });
    let log = server.log();
    assert!(
        log.contains("(budget=tokens_per_bu, business_unit=wasm-bu) hits=0"),
        "{log}"
    );
    assert!(
        log.contains("(budget=tokens_per_bu, business_unit=wasm-bu) hits=42"),
        "{log}"
    );
    // No user or model state: those budgets' descriptors were dropped, not sent half empty.
    assert!(!log.contains("requests_per_user"), "{log}");
    assert!(!log.contains("cost_per_bu_model"), "{log}");
    drop(envoy);
}
