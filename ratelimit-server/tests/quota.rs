//! Budgets enforced by the filter itself (its `quota` section), through real Envoys running the
//! built filter (`target/wasm32-wasip1/release/ai_attribution.wasm`) with the shipped
//! `envoy/quota.yaml`, against this rate-limit server counting in a real Redis (Debian's
//! `redis-server`, no persistence, on a free port).
//!
//! - two Envoys, each with its own server on one Redis, hold a business unit to one token budget;
//!   the call after the budget is spent gets 429 in its API family's shape, naming the budget and
//!   the owner, with `retry-after`, and a record that names them; other units still pass;
//! - a stream is charged when it ends, not when its usage passes; a stream cut short is charged
//!   what it used;
//! - a service that is down or slower than `timeout_ms`: calls pass (`failure_mode: allow`,
//!   recorded `failed_open`) or get 503 (`deny`, recorded `unavailable`);
//! - over mTLS with `header_trust`, a business-unit header from an untrusted caller moves no spend:
//!   it lands on the unit the caller's certificate names;
//! - one check and one report per call, the report only for calls that went on, and nothing for
//!   calls the filter refused for attribution or for requests that are not model calls;
//! - named, dated exceptions: a `require` alternative and a budget taken off, each named in the
//!   record of the call it let through; an expired one relaxes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use integration::envoy::{free_port, repo_root, wasm_path, Envoy, TempDir};
use integration::http::{self, Request, Response};
use integration::model_server::ModelServer;
use integration::pki::{mtls_send, CertPair, Pki};
use integration::render::{render, Local};
use integration::{log_for, request_id};
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::{eventually, model_calls, read_until, tokens_left, write, Client, Redis, Server, CHAT_TOKENS};

/// The shipped budgets, roomy but for the 100 tokens a day of a business unit: an OpenAI chat
/// call of the model server costs 175 micro-USD with the shipped gpt-4o price.
fn limits() -> String {
    support::limits(1_000_000, 1000)
}

const CHAT_REPORT: &str = "tokens_per_bu=39,cost_per_bu_model=175,requests_per_user=1";
const BUDGETS: &str = "tokens_per_bu,cost_per_bu_model,requests_per_user";

/// The wasm filter's configuration in a bootstrap.
fn wasm_filter(bootstrap: &mut Value) -> &mut Value {
    bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("the wasm filter")
}

/// One Envoy with the filter: `envoy/quota.yaml` rendered with free ports, the built filter, an
/// access-log file, this model server and this rate-limit service.
struct Gateway {
    envoy: Envoy,
    port: u16,
    access_log: PathBuf,
    _dir: TempDir,
}

impl Gateway {
    fn start(model: &ModelServer, ratelimit_port: u16) -> Gateway {
        Self::start_with(model, ratelimit_port, |_, _| {})
    }

    /// Starts one, after `adjust` has changed the plugin configuration and the bootstrap.
    fn start_with(model: &ModelServer, ratelimit_port: u16, adjust: impl FnOnce(&mut Value, &mut Value)) -> Gateway {
        let dir = TempDir::new("quota-gateway").unwrap();
        let access_log = dir.path().join("access.log");
        let (port, admin) = (free_port(), free_port());
        let local = Local {
            wasm: Some(wasm_path()),
            listen_port: Some(port),
            admin_port: Some(admin),
            model_server_port: Some(model.port()),
            ratelimit_port: Some(ratelimit_port),
            access_log: Some(access_log.clone()),
            ..Local::default()
        };
        let shipped = std::fs::read_to_string(repo_root().join("envoy/quota.yaml")).unwrap();
        let mut b: Value = serde_yaml::from_str(&render(&shipped, &local)).unwrap();
        let value = &mut wasm_filter(&mut b)["typed_config"]["config"]["configuration"]["value"];
        let mut plugin: Value = serde_json::from_str(value.as_str().unwrap()).unwrap();
        adjust(&mut plugin, &mut b);
        wasm_filter(&mut b)["typed_config"]["config"]["configuration"]["value"] = json!(plugin.to_string());
        let envoy = Envoy::start(&b.to_string(), admin).unwrap();
        Gateway {
            envoy,
            port,
            access_log,
            _dir: dir,
        }
    }

    /// Sends a request with a fresh `x-request-id`; the response and its access-log line.
    fn send(&self, req: Request) -> (Response, Value) {
        let id = request_id("quota");
        let r = http::send(self.port, &req.header("x-request-id", &id)).unwrap();
        (r, self.line(&id))
    }

    fn line(&self, id: &str) -> Value {
        log_for(&self.access_log, id).unwrap_or_else(|| panic!("no access-log line for {id}:\n{}", self.envoy.log()))
    }

    /// An OpenAI chat call by `user` of `bu`.
    fn chat(&self, user: &str, bu: &str) -> (Response, Value) {
        self.send(chat(user, bu))
    }
}

fn chat(user: &str, bu: &str) -> Request {
    Request::post("/v1/chat/completions")
        .header("x-user-id", user)
        .header("x-business-unit", bu)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
}

/// The `ShouldRateLimit` calls in a server's log whose descriptors contain `needle`:
/// (checks, reports). A check asks for 0 hits on every descriptor; a report charges.
fn calls(log: &str, needle: &str) -> (usize, usize) {
    let mut out = (0, 0);
    for line in log
        .lines()
        .filter(|l| l.contains("ShouldRateLimit") && l.contains(needle))
    {
        let hits: Vec<&str> = line.split(" hits=").skip(1).collect();
        assert!(!hits.is_empty(), "a call without hits: {line}");
        if hits.iter().all(|h| h.starts_with('0')) {
            out.0 += 1;
        } else {
            assert!(
                hits.iter().all(|h| !h.starts_with('0')),
                "a check and a charge in one call: {line}"
            );
            out.1 += 1;
        }
    }
    out
}

/// The calls for one user (the `requests_per_user` descriptor carries every call's user).
fn calls_of(log: &str, user: &str) -> (usize, usize) {
    calls(log, &format!("user={user})"))
}

/// Asserts the access-log line carries these values.
fn assert_line(line: &Value, want: &[(&str, Value)]) {
    for (key, value) in want {
        assert_eq!(&line[*key], value, "{key} in {line}");
    }
}

#[test]
fn two_envoys_hold_a_business_unit_to_one_token_budget() {
    let redis = Redis::start();
    let dir = TempDir::new("quota").unwrap();
    let limits = write(&dir, "limits.yaml", &limits());
    let model = ModelServer::start().unwrap();
    let sa = Server::start(&["--config", &limits, "--redis", &redis.url()]);
    let sb = Server::start(&["--config", &limits, "--redis", &redis.url()]);
    let a = Gateway::start(&model, sa.port());
    let b = Gateway::start(&model, sb.port());
    let mut probe = Client::connect(&sb.addr);

    // Finance spends 39 tokens a call, on whichever Envoy: 61 left, 22 left, then 117 spent of
    // 100 (the third check passes with 22 left; the charge after the call goes past the limit).
    for (i, gw) in [&a, &b, &a].into_iter().enumerate() {
        let user = format!("fin-{i}");
        let (r, line) = gw.chat(&user, "finance");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_line(
            &line,
            &[
                ("business_unit", json!("finance")),
                ("quota_budgets", json!(BUDGETS)),
                ("quota_outcome", json!("ok")),
                ("quota_over", Value::Null),
                ("quota_reported", json!(CHAT_REPORT)),
            ],
        );
        let spent = CHAT_TOKENS * (i as u32 + 1);
        eventually("finance's tokens charged", || {
            (tokens_left(&mut probe, "finance") == 100u32.saturating_sub(spent)).then_some(())
        });
    }

    // The budget is spent: the next call is refused by both Envoys, before it reaches the model.
    for gw in [&a, &b] {
        let before = model_calls(&model);
        let (r, line) = gw.chat("fin-late", "finance");
        assert_eq!(r.status, 429, "{}", r.text());
        assert_eq!(model_calls(&model), before, "a refused call never runs");
        let retry: u64 = r.header("retry-after").expect("retry-after").parse().unwrap();
        assert!(
            (1..=86_400).contains(&retry),
            "a day's budget resets within a day: {retry}"
        );
        assert_eq!(r.header("x-should-retry"), Some("false"));
        let body = r.json();
        assert_eq!(body["error"]["type"], "rate_limit_exceeded", "{body}");
        assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
        assert_eq!(
            body["error"]["message"],
            format!("Budget spent: tokens_per_bu (tokens) for business_unit=finance. It resets in {retry} s.").as_str()
        );
        assert_eq!(body["error"]["correlation_id"], line["correlation_id"]);
        // The record of the 429 names the owner, and why: the budget it was over.
        assert_line(
            &line,
            &[
                ("status", json!(429)),
                ("details", json!("ai_attribution_rejected")),
                ("decision", json!("attributed")),
                ("user", json!("fin-late")),
                ("business_unit", json!("finance")),
                (
                    "sources",
                    json!("business_unit=header:x-business-unit,user=header:x-user-id"),
                ),
                ("quota_budgets", json!(BUDGETS)),
                ("quota_outcome", json!("over_budget")),
                ("quota_over", json!("tokens_per_bu")),
                ("reason", json!("over_budget:tokens_per_bu")),
                ("quota_reported", Value::Null),
                ("usage_status", json!("not_applicable")),
            ],
        );
        assert_eq!(
            line["record"]["value"]["ai_attribution.quota.outcome"], "over_budget",
            "the structured record too: {line}"
        );
        // Other units still pass, on the same Envoy.
        let (r, line) = gw.chat("leg-1", "legal");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(line["quota_outcome"], "ok");
    }
    // In the Anthropic family's shape for an Anthropic call.
    let (r, line) = a.send(
        Request::post("/v1/messages")
            .header("x-user-id", "fin-claude")
            .header("x-business-unit", "finance")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})),
    );
    assert_eq!(r.status, 429, "{}", r.text());
    let body = r.json();
    assert_eq!(
        (body["type"].as_str(), body["error"]["type"].as_str()),
        (Some("error"), Some("rate_limit_error"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Budget spent: tokens_per_bu (tokens) for business_unit=finance."),
        "{body}"
    );
    assert!(r.header("retry-after").is_some());
    assert_eq!(line["quota_over"], "tokens_per_bu");
    // Legal's two calls were charged on the two servers, in the one Redis.
    eventually("legal's two calls", || {
        (tokens_left(&mut probe, "legal") == 100 - 2 * CHAT_TOKENS).then_some(())
    });
    // Each call was checked once and reported once, by the Envoy that served it; the refused
    // ones were checked and never reported (the probes above carry no user).
    let (la, lb) = (sa.log(), sb.log());
    for (user, on_a, on_b) in [
        ("fin-0", (1, 1), (0, 0)),
        ("fin-1", (0, 0), (1, 1)),
        ("fin-2", (1, 1), (0, 0)),
        ("fin-late", (1, 0), (1, 0)),
        ("fin-claude", (1, 0), (0, 0)),
        ("leg-1", (1, 1), (1, 1)),
    ] {
        assert_eq!((calls_of(&la, user), calls_of(&lb, user)), (on_a, on_b), "{user}");
    }
    drop(redis);
}

#[test]
fn a_stream_is_charged_when_it_ends() {
    let redis = Redis::start();
    let dir = TempDir::new("quota").unwrap();
    let limits = write(&dir, "limits.yaml", &limits());
    let model = ModelServer::start().unwrap();
    let server = Server::start(&["--config", &limits, "--redis", &redis.url()]);
    let gw = Gateway::start(&model, server.port());
    let mut probe = Client::connect(&server.addr);

    // The usage chunk and [DONE] pass at once; the stream then stays open for 1.5 s.
    let id = request_id("quota-stream");
    let req = Request::post("/v1/chat/completions")
        .header("x-request-id", &id)
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
    assert!(
        String::from_utf8_lossy(&raw).contains("\"prompt_tokens\":27"),
        "the usage has passed the filter"
    );
    // The usage is known, the stream is still open: nothing is charged yet.
    assert_eq!(tokens_left(&mut probe, "research"), 10_000);
    assert_eq!(
        calls_of(&server.log(), "streamer"),
        (1, 0),
        "checked before, not yet reported"
    );
    stream.read_to_end(&mut raw).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500), "the stream lingered");
    eventually("the stream's tokens, once it ended", || {
        (tokens_left(&mut probe, "research") == 10_000 - CHAT_TOKENS).then_some(())
    });
    // The server logs a call once it has answered every descriptor.
    eventually("streamer's report logged", || {
        (calls_of(&server.log(), "streamer") == (1, 1)).then_some(())
    });
    let line = gw.line(&id);
    assert_line(
        &line,
        &[
            ("stream", json!("true")),
            ("usage_status", json!("reported")),
            ("quota_outcome", json!("ok")),
            ("quota_reported", json!(CHAT_REPORT)),
        ],
    );
    assert!(
        server
            .log()
            .contains("(budget=tokens_per_bu, business_unit=research) hits=39"),
        "{}",
        server.log()
    );

    // A stream cut short by the upstream is charged what it used: Anthropic's message_start
    // carries the input tokens, and the output counted before the cut.
    let (r, line) = gw.send(
        Request::post("/v1/messages")
            .header("x-user-id", "cut-short")
            .header("x-business-unit", "research")
            .header("x-mock-behavior", "reset-mid-stream")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": true,
                          "messages": [{"role": "user", "content": "hi"}]})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(line["usage_status"], "partial", "{line}");
    let input: u32 = line["input_tokens"].as_str().unwrap().parse().unwrap();
    let output: u32 = line["output_tokens"].as_str().map_or(0, |o| o.parse().unwrap());
    let used = input + output;
    assert_eq!(
        line["quota_reported"],
        format!("tokens_per_bu={used},requests_per_user=1").as_str(),
        "no cost for incomplete usage: {line}"
    );
    eventually("the partial stream's tokens", || {
        (tokens_left(&mut probe, "research") == 10_000 - CHAT_TOKENS - used).then_some(())
    });
    // The server logs a call once it has answered every descriptor.
    eventually("cut-short's report logged", || {
        (calls_of(&server.log(), "cut-short") == (1, 1)).then_some(())
    });
    drop(redis);
}

/// `quota.failure_mode` and `timeout_ms` set on the shipped configuration.
fn failure_mode(mode: &'static str, timeout_ms: u64) -> impl FnOnce(&mut Value, &mut Value) {
    move |plugin, _| {
        plugin["quota"]["failure_mode"] = json!(mode);
        plugin["quota"]["timeout_ms"] = json!(timeout_ms);
    }
}

/// A service that does not answer in time: with `allow` the call goes on unchecked, recorded
/// `failed_open`; with `deny` it gets 503, recorded `unavailable`, and never reaches the model.
fn unanswered(model: &ModelServer, open: &Gateway, closed: &Gateway, within: Duration) {
    let started = Instant::now();
    let (r, line) = open.chat("u-open", "finance");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() < within, "answered in {:?}", started.elapsed());
    assert_line(
        &line,
        &[
            ("decision", json!("attributed")),
            ("business_unit", json!("finance")),
            ("quota_budgets", json!(BUDGETS)),
            ("quota_outcome", json!("failed_open")),
            ("quota_over", Value::Null),
        ],
    );
    let before = model_calls(model);
    let started = Instant::now();
    let (r, line) = closed.chat("u-closed", "finance");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(started.elapsed() < within, "answered in {:?}", started.elapsed());
    assert_eq!(model_calls(model), before, "a refused call never runs");
    let body = r.json();
    assert_eq!(body["error"]["code"], "budget_unavailable", "{body}");
    assert!(r.header("retry-after").is_none());
    assert_line(
        &line,
        &[
            ("status", json!(503)),
            ("decision", json!("attributed")),
            ("user", json!("u-closed")),
            ("business_unit", json!("finance")),
            ("quota_outcome", json!("unavailable")),
            ("reason", json!("quota_unavailable")),
            ("quota_reported", Value::Null),
        ],
    );
}

#[test]
fn a_service_that_is_down_fails_open_or_closed_as_configured() {
    let model = ModelServer::start().unwrap();
    // Nothing listens on the service's port.
    let down = free_port();
    let open = Gateway::start_with(&model, down, failure_mode("allow", 200));
    let closed = Gateway::start_with(&model, down, failure_mode("deny", 200));
    unanswered(&model, &open, &closed, Duration::from_secs(2));
    // The shipped default is allow.
    let shipped = Gateway::start(&model, down);
    assert_eq!(shipped.chat("u-default", "finance").1["quota_outcome"], "failed_open");
}

#[test]
fn a_check_envoy_cannot_send_fails_open_or_closed_as_configured() {
    let model = ModelServer::start().unwrap();
    // A cluster the bootstrap does not have: Envoy refuses the call when it is made, and the
    // usage report at the end of an allowed call goes nowhere either.
    let unknown = |mode| {
        move |plugin: &mut Value, bootstrap: &mut Value| {
            failure_mode(mode, 200)(plugin, bootstrap);
            plugin["quota"]["cluster"] = json!("no_such_cluster");
        }
    };
    let open = Gateway::start_with(&model, free_port(), unknown("allow"));
    let closed = Gateway::start_with(&model, free_port(), unknown("deny"));
    unanswered(&model, &open, &closed, Duration::from_secs(2));
    for gateway in [&open, &closed] {
        assert!(
            gateway.envoy.log().contains("cannot carry out the quota check"),
            "{}",
            gateway.envoy.log()
        );
    }
}

#[test]
fn a_slow_service_times_out_and_fails_open_or_closed_as_configured() {
    let dir = TempDir::new("quota").unwrap();
    let limits = write(&dir, "limits.yaml", &limits());
    let model = ModelServer::start().unwrap();
    // Every answer 3 s late, against the filter's 300 ms.
    let slow = Server::start(&["--config", &limits, "--delay-ms", "3000"]);
    let open = Gateway::start_with(&model, slow.port(), failure_mode("allow", 300));
    let closed = Gateway::start_with(&model, slow.port(), failure_mode("deny", 300));
    unanswered(&model, &open, &closed, Duration::from_millis(2500));
}

/// A test PKI: a server certificate for Envoy, the trusted edge proxy, and a workload of the
/// finance namespace.
struct Certs {
    pki: Pki,
    server: CertPair,
    edge: CertPair,
    finance_bot: CertPair,
    _dir: TempDir,
}

const EDGE_ID: &str = "spiffe://corp.example/ns/edge/sa/auth-gateway";

fn certs() -> Certs {
    let dir = TempDir::new("quota-pki").unwrap();
    let pki = Pki::new(dir.path()).unwrap();
    let server = pki
        .issue("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth")
        .unwrap();
    let edge = pki
        .issue("edge", "/CN=auth-gateway", &format!("URI:{EDGE_ID}"), "clientAuth")
        .unwrap();
    let finance_bot = pki
        .issue(
            "finance-bot",
            "/CN=report-bot",
            "URI:spiffe://corp.example/ns/finance/sa/report-bot",
            "clientAuth",
        )
        .unwrap();
    Certs {
        pki,
        server,
        edge,
        finance_bot,
        _dir: dir,
    }
}

#[test]
fn a_spoofed_business_unit_header_moves_no_spend() {
    let redis = Redis::start();
    let dir = TempDir::new("quota").unwrap();
    let limits = write(&dir, "limits.yaml", &limits());
    let model = ModelServer::start().unwrap();
    let server = Server::start(&["--config", &limits, "--redis", &redis.url()]);
    let c = certs();
    // The identity sources of envoy/mtls.yaml: the business unit from a header only when a
    // trusted edge proxy sends it, else from the caller's SPIFFE namespace; the shipped budgets.
    let gw = Gateway::start_with(&model, server.port(), |plugin, bootstrap| {
        plugin["dimensions"] = json!({
            "service_account": ["peer:spiffe_id"],
            "user": ["header:x-user-id", "peer:spiffe_service_account"],
            "business_unit": ["header:x-business-unit", "peer:spiffe_namespace"]
        });
        plugin["require"] = json!([["user", "business_unit"]]);
        plugin["header_trust"] = json!({"peers": [EDGE_ID]});
        plugin["peer"] = json!({"trust_domains": ["corp.example"]});
        plugin.as_object_mut().unwrap().remove("mcp");
        bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": true,
                "common_tls_context": {
                    "tls_certificates": [{"certificate_chain": {"filename": c.server.cert}, "private_key": {"filename": c.server.key}}],
                    "validation_context": {"trusted_ca": {"filename": c.pki.ca()}}
                }
            }
        });
    });
    let send = |cert: &CertPair, user: &str, bu: &str| {
        let id = request_id("quota-mtls");
        let r = mtls_send(
            gw.port,
            &c.pki.ca(),
            Some(cert),
            &chat(user, bu).header("x-request-id", &id),
        )
        .unwrap();
        (r, gw.line(&id))
    };
    let mut probe = Client::connect(&server.addr);

    // The finance workload claims to be legal's alice: its headers are not believed, and the
    // certificate gives both values (so `reason` names nothing left unresolved).
    let (r, line) = send(&c.finance_bot, "alice", "legal");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_line(
        &line,
        &[
            ("business_unit", json!("finance")),
            ("user", json!("report-bot")),
            ("reason", json!("")),
            (
                "sources",
                json!("business_unit=peer:spiffe_namespace,service_account=peer:spiffe_id,user=peer:spiffe_service_account"),
            ),
            ("quota_reported", json!(CHAT_REPORT)),
        ],
    );
    eventually("the spend on finance", || {
        (tokens_left(&mut probe, "finance") == 100 - CHAT_TOKENS).then_some(())
    });
    let log = server.log();
    assert!(
        !log.contains("business_unit=legal"),
        "legal was never even checked:\n{log}"
    );
    assert_eq!(tokens_left(&mut probe, "legal"), 100, "nothing lands on legal");

    // The trusted edge proxy's header does name the unit.
    let (r, line) = send(&c.edge, "alice", "legal");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(line["business_unit"], "legal");
    eventually("the spend on legal", || {
        (tokens_left(&mut probe, "legal") == 100 - CHAT_TOKENS).then_some(())
    });

    // Once finance's budget is spent, the header does not get its workload out of it.
    for _ in 0..2 {
        assert_eq!(send(&c.finance_bot, "x", "finance").0.status, 200);
    }
    eventually("finance spent", || {
        (tokens_left(&mut probe, "finance") == 0).then_some(())
    });
    let (r, line) = send(&c.finance_bot, "alice", "legal");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens_per_bu (tokens) for business_unit=finance"),
        "{}",
        r.text()
    );
    assert_line(
        &line,
        &[
            ("business_unit", json!("finance")),
            ("quota_outcome", json!("over_budget")),
            ("quota_over", json!("tokens_per_bu")),
        ],
    );
    assert_eq!(tokens_left(&mut probe, "legal"), 100 - CHAT_TOKENS);
    drop(redis);
}

#[test]
fn one_check_and_one_report_per_call_and_no_report_for_refusals() {
    let dir = TempDir::new("quota").unwrap();
    let limits = write(&dir, "limits.yaml", &limits());
    let model = ModelServer::start().unwrap();
    let server = Server::start(&["--config", &limits]);
    let gw = Gateway::start(&model, server.port());
    let mut probe = Client::connect(&server.addr);

    // Calls that go on: one check before, one report after, whatever the API and the answer.
    let ok: [(&str, Request); 4] = [
        ("c-chat", chat("c-chat", "ops")),
        (
            "c-stream",
            Request::post("/v1/messages")
                .header("x-user-id", "c-stream")
                .header("x-business-unit", "research")
                .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": true,
                              "messages": [{"role": "user", "content": "hi"}]})),
        ),
        (
            "c-gemini",
            Request::post("/v1beta/models/gemini-2.0-flash:generateContent")
                .header("x-user-id", "c-gemini")
                .header("x-business-unit", "research")
                .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]})),
        ),
        (
            "c-error",
            chat("c-error", "research").header("x-mock-behavior", "status=500"),
        ),
    ];
    for (user, req) in ok {
        let (r, line) = gw.send(req);
        assert_eq!(line["quota_outcome"], "ok", "{user}: {line}");
        assert!(r.status == 200 || user == "c-error", "{user}: {}", r.text());
        eventually(user, || (calls_of(&server.log(), user).1 > 0).then_some(()));
        assert_eq!(calls_of(&server.log(), user), (1, 1), "{user}");
    }
    // The upstream's error had no usage: only its request was charged.
    let log = server.log();
    let error_report = log
        .lines()
        .find(|l| l.contains("user=c-error) hits=1"))
        .expect("c-error's report");
    assert!(!error_report.contains("tokens_per_bu"), "{error_report}");

    // Refused for its budget: checked, never reported.
    for i in 0..3 {
        gw.chat(&format!("c-spend-{i}"), "ops");
    }
    eventually("ops spent", || (tokens_left(&mut probe, "ops") == 0).then_some(()));
    let (r, _) = gw.chat("c-over", "ops");
    assert_eq!(r.status, 429);
    // Refused for its attribution (no user): no check at all. Not a model call: nothing.
    let before = server.log().lines().filter(|l| l.contains("ShouldRateLimit")).count();
    let (r, line) = gw.send(
        Request::post("/v1/chat/completions")
            .header("x-business-unit", "ops")
            .json(&json!({"model": "gpt-4o", "messages": []})),
    );
    assert_eq!((r.status, line["reason"].as_str()), (403, Some("missing:user")));
    assert_eq!(line["quota_budgets"], Value::Null, "{line}");
    let (r, _) = gw.send(Request::get("/healthz").header("x-user-id", "c-health"));
    assert_eq!(r.status, 200);
    // Give any late call time to land before counting.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        calls_of(&server.log(), "c-over"),
        (1, 0),
        "a refused call is not reported"
    );
    let after = server.log().lines().filter(|l| l.contains("ShouldRateLimit")).count();
    assert_eq!(
        after,
        before,
        "nothing for the 403 and the health check:\n{}",
        server.log()
    );
}

/// Named, dated exceptions through Envoy: one lets a business unit's calls pass without a user
/// (a `require` alternative), one takes a unit off a budget; the record names the exception the
/// call passed by. An exception past its `until` relaxes nothing.
#[test]
fn named_exceptions_relax_require_and_budgets_until_they_expire() {
    let redis = Redis::start();
    let dir = TempDir::new("quota-exceptions").unwrap();
    let limits = write(&dir, "limits.yaml", &limits());
    let model = ModelServer::start().unwrap();
    let server = Server::start(&["--config", &limits, "--redis", &redis.url()]);
    let gw = Gateway::start_with(&model, server.port(), |plugin, _| {
        plugin["exceptions"] = json!([
            {"name": "incident-4711", "covers": {"dimensions": {"business_unit": ["research"]}},
             "relaxes": {"require": [["business_unit"]]}, "until": "2099-01-01"},
            {"name": "launch-week", "covers": {"dimensions": {"business_unit": ["finance"]}},
             "relaxes": {"budgets": ["tokens_per_bu"]}, "until": "2099-01-01T00:00:00Z"},
            {"name": "old-incident", "covers": {"dimensions": {"business_unit": ["legal"]}},
             "relaxes": {"require": [["business_unit"]]}, "until": "2020-01-01"}
        ]);
    });
    let without_user = |bu: &str| {
        Request::post("/v1/chat/completions")
            .header("x-business-unit", bu)
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
    };

    // Research passes without a user only because of the exception, and the record says so.
    let (r, line) = gw.send(without_user("research"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_line(
        &line,
        &[
            ("decision", json!("attributed")),
            ("business_unit", json!("research")),
            ("user", Value::Null),
            ("exception", json!("incident-4711")),
        ],
    );
    // With a user, research meets `require` itself: no exception is named.
    let (r, line) = gw.chat("rita", "research");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_line(&line, &[("exception", Value::Null)]);

    // Finance is off tokens_per_bu: not checked, not charged, and the record names why.
    let (r, line) = gw.chat("fay", "finance");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_line(
        &line,
        &[
            ("quota_budgets", json!("cost_per_bu_model,requests_per_user")),
            ("quota_outcome", json!("ok")),
            ("exception", json!("launch-week")),
        ],
    );
    let mut probe = Client::connect(&server.addr);
    assert_eq!(
        tokens_left(&mut probe, "finance"),
        100,
        "finance's tokens were not charged"
    );

    // Legal's exception has expired: a call without a user is refused, and names none.
    let (r, line) = gw.send(without_user("legal"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_line(
        &line,
        &[
            ("decision", json!("rejected")),
            ("reason", json!("missing:user")),
            ("exception", Value::Null),
        ],
    );
}
