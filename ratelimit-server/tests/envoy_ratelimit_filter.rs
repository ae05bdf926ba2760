//! The shipped `envoy/quota-ratelimit-filter.yaml` on a real Envoy: the built filter
//! (`target/wasm32-wasip1/release/ai_attribution.wasm`, `quota.filter_state`) writes
//! `wasm.ai_attribution.quota_key.*` and `quota_tokens` / `quota_cost_microusd`, and Envoy's own
//! rate-limit filter after it builds the budgets' descriptors from them and calls this server:
//! a check before the call, the charge when the stream is done (`apply_on_stream_done`). Two
//! Envoys, each with its own server, share budgets through one Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use integration::envoy::{free_port, repo_root, wasm_path, Envoy, TempDir};
use integration::http::{self, Request};
use integration::model_server::ModelServer;
use integration::render::{render, Local};
use integration::{log_for, request_id};
use ratelimit_server::proto::Code;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{
    descriptor, eventually, model_calls, read_until, request, tokens_left, write, Client, Redis, Server, CHAT_TOKENS,
};

/// The shipped budgets with small numbers: an Anthropic call on Vertex AI (the model in the
/// path) costs 465 micro-USD against 400 a month, and a user has 3 calls a minute.
fn limits() -> String {
    support::limits(400, 3)
}

/// The shipped config on free ports, loading the built filter, in front of this model server
/// and rate-limit server.
fn bootstrap(model_port: u16, ratelimit_port: u16, access_log: &Path, failure_mode_deny: bool) -> (Value, u16, u16) {
    let (listen, admin) = (free_port(), free_port());
    let local = Local {
        wasm: Some(wasm_path()),
        listen_port: Some(listen),
        admin_port: Some(admin),
        model_server_port: Some(model_port),
        ratelimit_port: Some(ratelimit_port),
        access_log: Some(access_log.to_path_buf()),
        ..Local::default()
    };
    let text = std::fs::read_to_string(repo_root().join("envoy/quota-ratelimit-filter.yaml")).unwrap();
    let mut b: Value = serde_yaml::from_str(&render(&text, &local)).unwrap();
    let filters = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array_mut()
        .unwrap();
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
    (b, listen, admin)
}

struct Gateway {
    envoy: Envoy,
    port: u16,
    access_log: PathBuf,
    _dir: TempDir,
}

impl Gateway {
    fn start(model: &ModelServer, ratelimit_port: u16, failure_mode_deny: bool) -> Gateway {
        let dir = TempDir::new("quota-envoy").unwrap();
        let access_log = dir.path().join("access.log");
        let (b, port, admin) = bootstrap(model.port(), ratelimit_port, &access_log, failure_mode_deny);
        let envoy = Envoy::start(&b.to_string(), admin).unwrap();
        Gateway {
            envoy,
            port,
            access_log,
            _dir: dir,
        }
    }

    /// Sends a request with a fresh `x-request-id`: the response and its access-log line.
    fn send(&self, req: Request) -> (http::Response, Value) {
        let id = request_id("rl-filter");
        let r = http::send(self.port, &req.header("x-request-id", &id)).unwrap();
        let line = log_for(&self.access_log, &id)
            .unwrap_or_else(|| panic!("no access-log line for {id}:\n{}", self.envoy.log()));
        (r, line)
    }

    /// An OpenAI chat call by `user` of `bu`.
    fn call(&self, user: &str, bu: &str, extra: &[(&str, &str)]) -> http::Response {
        let mut req = Request::post("/v1/chat/completions")
            .header("x-user-id", user)
            .header("x-business-unit", bu)
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}));
        for (k, v) in extra {
            req = req.header(k, v);
        }
        self.send(req).0
    }

    /// An Anthropic call on Vertex AI (`model` in the path) by `user` of `bu`.
    fn vertex(&self, user: &str, bu: &str, model: &str) -> http::Response {
        let path = format!("/v1/projects/p/locations/us-east5/publishers/anthropic/models/{model}:rawPredict");
        let req = Request::post(&path)
            .header("x-user-id", user)
            .header("x-business-unit", bu)
            .json(&json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 16,
                          "messages": [{"role": "user", "content": "hi"}]}));
        self.send(req).0
    }
}

fn probe_code(addr: &str, d: ratelimit_server::proto::RateLimitDescriptor) -> Code {
    let r = Client::connect(addr).ask(request("ai-attribution", vec![d])).unwrap();
    Code::try_from(r.overall_code).unwrap()
}

#[test]
fn two_envoys_share_budgets_through_one_redis() {
    let redis = Redis::start();
    let dir = TempDir::new("quota").unwrap();
    let config = write(&dir, "limits.yaml", &limits());
    let model = ModelServer::start().unwrap();
    let (sa, sb) = (
        Server::start(&["--config", &config, "--redis", &redis.url()]),
        Server::start(&["--config", &config, "--redis", &redis.url()]),
    );
    let a = Gateway::start(&model, sa.port(), true);
    let b = Gateway::start(&model, sb.port(), true);
    let mut probe = Client::connect(&sa.addr);

    // Each call's 39 tokens are charged when its stream is done, on whichever Envoy served it:
    // 61 left, 22 left, then past the limit (the third check passes with 22 left).
    for (i, gw) in [&a, &b, &a].into_iter().enumerate() {
        let r = gw.call(&format!("u{i}"), "finance", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        let spent = CHAT_TOKENS * (i as u32 + 1);
        eventually("finance's tokens charged", || {
            (tokens_left(&mut probe, "finance") == 100u32.saturating_sub(spent)).then_some(())
        });
    }
    // The next call is refused by both, before it reaches the model; legal is not affected.
    for gw in [&a, &b] {
        let before = model_calls(&model);
        let r = gw.call("u3", "finance", &[]);
        assert_eq!(r.status, 429, "{}", r.text());
        assert_eq!(r.header("x-envoy-ratelimited"), Some("true"));
        assert_eq!(model_calls(&model), before, "a refused call never reaches the model");
        assert_eq!(gw.call("u4", "legal", &[]).status, 200);
    }
    eventually("legal's two calls", || {
        (tokens_left(&mut probe, "legal") == 100 - 2 * CHAT_TOKENS).then_some(())
    });
    // A call with no usage leaves quota_tokens unset: that charge is dropped, nothing counted.
    assert_eq!(b.call("u5", "legal", &[("x-mock-behavior", "no-usage")]).status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tokens_left(&mut probe, "legal"), 100 - 2 * CHAT_TOKENS);

    // Requests per user are charged at the check: the fourth call in the minute is refused.
    for (i, gw) in [&a, &b, &a].into_iter().enumerate() {
        assert_eq!(gw.call("carol", "research", &[]).status, 200, "call {i}");
    }
    assert_eq!(b.call("carol", "research", &[]).status, 429);

    // Cost per business unit and model, from the micro-USD the call cost, for a model the path
    // names (the rate-limit filter builds its descriptors at the request headers).
    assert_eq!(a.vertex("dave", "research", "claude-sonnet-4-5").status, 200);
    let check = descriptor(
        &[
            ("budget", "cost_per_bu_model"),
            ("business_unit", "research"),
            ("model", "claude-sonnet-4-5"),
        ],
        Some(0),
    );
    eventually("research's claude-sonnet-4-5 cost charged", || {
        (probe_code(&sb.addr, check.clone()) == Code::OverLimit).then_some(())
    });
    assert_eq!(b.vertex("erin", "research", "claude-sonnet-4-5").status, 429);
    assert_eq!(
        b.vertex("erin", "research", "claude-sonnet-4-0").status,
        200,
        "another model, another budget"
    );

    // Both servers saw the descriptors the filter state gave Envoy.
    for s in [&sa, &sb] {
        let log = s.log();
        assert!(
            log.contains("(budget=tokens_per_bu, business_unit=finance) hits=0"),
            "the check carries hits_addend 0:\n{log}"
        );
        assert!(
            log.contains("(budget=tokens_per_bu, business_unit=finance) hits=39"),
            "the charge carries the call's tokens:\n{log}"
        );
    }
    assert!(sa
        .log()
        .contains("(budget=cost_per_bu_model, business_unit=research, model=claude-sonnet-4-5) hits=465"));
    drop(redis);
}

#[test]
fn the_charge_lands_when_the_stream_is_done() {
    let dir = TempDir::new("quota").unwrap();
    let config = write(&dir, "limits.yaml", &limits());
    let model = ModelServer::start().unwrap();
    let server = Server::start(&["--config", &config]);
    let gw = Gateway::start(&model, server.port(), true);
    let mut client = Client::connect(&server.addr);

    // The usage chunk and [DONE] pass at once; the stream then stays open for 1.5 s. The filter
    // has written quota_tokens by then; Envoy charges it when the stream is done.
    let req = Request::post("/v1/chat/completions")
        .header("x-request-id", &request_id("rl-stream"))
        .header("x-user-id", "streamer")
        .header("x-business-unit", "research")
        .header("x-mock-behavior", "linger-after-final=1500")
        .json(
            &json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]}),
        );
    let started = Instant::now();
    let mut stream = http::open(gw.port, &req).unwrap();
    let mut raw = read_until(&mut stream, b"data: [DONE]");
    assert!(String::from_utf8_lossy(&raw).contains("\"prompt_tokens\":27"));
    assert_eq!(tokens_left(&mut client, "research"), 10_000, "nothing charged yet");
    let log = server.log();
    assert!(
        log.contains("(budget=tokens_per_bu, business_unit=research) hits=0"),
        "checked before the call:\n{log}"
    );
    assert!(!log.contains("business_unit=research) hits=39"), "{log}");
    stream.read_to_end(&mut raw).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    eventually("the stream's 39 tokens, once it was done", || {
        (tokens_left(&mut client, "research") == 10_000 - CHAT_TOKENS).then_some(())
    });
    eventually("the charge logged", || {
        server
            .log()
            .contains("(budget=tokens_per_bu, business_unit=research) hits=39")
            .then_some(())
    });
}

#[test]
fn an_owner_without_quota_state_is_not_counted() {
    let dir = TempDir::new("quota").unwrap();
    let config = write(&dir, "limits.yaml", &limits());
    let model = ModelServer::start().unwrap();
    let server = Server::start(&["--config", &config]);
    let gw = Gateway::start(&model, server.port(), true);
    // A service account's call has no user: the filter writes no quota_key.user, and Envoy
    // drops requests_per_user's descriptors instead of sending (budget=requests_per_user) alone
    // or with an empty user. Its business unit (the node's) is counted.
    let (r, line) = gw.send(
        Request::post("/v1/chat/completions")
            .header("x-service-account", "nightly")
            .json(&json!({"model": "gpt-4o", "messages": []})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(line["business_unit"], "platform");
    // An unattributed call (403) writes no quota state at all: nothing is checked or charged.
    let (r, _) = gw.send(
        Request::post("/v1/chat/completions")
            .header("x-business-unit", "legal")
            .json(&json!({"model": "gpt-4o", "messages": []})),
    );
    assert_eq!(r.status, 403);
    eventually("platform's tokens charged", || {
        server
            .log()
            .contains("(budget=tokens_per_bu, business_unit=platform) hits=39")
            .then_some(())
    });
    // Give a stream-done call, if Envoy made one, time to land before looking for it.
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log();
    assert!(!log.contains("requests_per_user"), "{log}");
    assert!(!log.contains("business_unit=legal"), "{log}");
    assert!(!log.contains("=)"), "no empty values: {log}");
}

#[test]
fn a_slow_service_fails_open_or_closed_as_configured() {
    let dir = TempDir::new("quota").unwrap();
    let config = write(&dir, "limits.yaml", &limits());
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
