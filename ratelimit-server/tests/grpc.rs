//! The server over gRPC: the wire protocol, budgets shared through Redis by two servers, Redis
//! going away, and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use integration::envoy::{free_port, TempDir};
use ratelimit_server::proto::{Code, Unit};
use support::{descriptor, request, write, Client, Redis, Server};

const LIMITS: &str = "domain: ai-attribution
descriptors:
  - key: budget
    value: tokens_per_bu
    descriptors:
      - key: business_unit
        rate_limit: {unit: day, requests_per_unit: 100}
";

fn tokens(bu: &str, hits: u64) -> ratelimit_server::proto::RateLimitDescriptor {
    descriptor(&[("budget", "tokens_per_bu"), ("business_unit", bu)], Some(hits))
}

fn code(c: i32) -> Code {
    Code::try_from(c).unwrap()
}

#[test]
fn the_protocol_over_grpc() {
    let dir = TempDir::new("grpc").unwrap();
    let config = write(&dir, "limits.yaml", LIMITS);
    let server = Server::start(&["--config", &config]);
    let mut client = Client::connect(&server.addr);
    let r = client
        .ask(request(
            "ai-attribution",
            vec![tokens("finance", 30), tokens("legal", 0)],
        ))
        .unwrap();
    assert_eq!(code(r.overall_code), Code::Ok);
    assert_eq!(r.statuses.len(), 2);
    assert_eq!(r.statuses[0].limit_remaining, 70);
    assert_eq!(r.statuses[1].limit_remaining, 100);
    let limit = r.statuses[0].current_limit.clone().unwrap();
    assert_eq!((limit.requests_per_unit, limit.unit), (100, Unit::Day as i32));
    let e = client.ask(request("", vec![tokens("finance", 1)])).unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(server.log().contains("ShouldRateLimit"), "requests are logged at debug");
}

#[test]
fn two_servers_on_one_redis_share_a_budget_and_stop_cleanly() {
    let redis = Redis::start();
    let dir = TempDir::new("grpc").unwrap();
    let config = write(&dir, "limits.yaml", LIMITS);
    let mut a = Server::start(&["--config", &config, "--redis", &redis.url()]);
    let b = Server::start(&["--config", &config, "--redis", &redis.url()]);
    let mut ca = Client::connect(&a.addr);
    let mut cb = Client::connect(&b.addr);
    // Charged on one server...
    let r = ca.ask(request("ai-attribution", vec![tokens("finance", 60)])).unwrap();
    assert_eq!(r.statuses[0].limit_remaining, 40);
    // ...seen by the other, which charges past the limit...
    let r = cb.ask(request("ai-attribution", vec![tokens("finance", 0)])).unwrap();
    assert_eq!((code(r.overall_code), r.statuses[0].limit_remaining), (Code::Ok, 40));
    let r = cb.ask(request("ai-attribution", vec![tokens("finance", 50)])).unwrap();
    assert_eq!(code(r.overall_code), Code::OverLimit);
    // ...so the next check fails on both, for finance only.
    for c in [&mut ca, &mut cb] {
        let r = c.ask(request("ai-attribution", vec![tokens("finance", 0)])).unwrap();
        assert_eq!(code(r.overall_code), Code::OverLimit);
        let r = c.ask(request("ai-attribution", vec![tokens("legal", 0)])).unwrap();
        assert_eq!(code(r.overall_code), Code::Ok);
    }
    drop(ca);
    let status = a.terminate().expect("exits on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(a.log().contains("SIGTERM: stopping"));
    // The budget outlives the server that counted it.
    let c = Server::start(&["--config", &config, "--redis", &redis.url()]);
    let r = Client::connect(&c.addr)
        .ask(request("ai-attribution", vec![tokens("finance", 0)]))
        .unwrap();
    assert_eq!(code(r.overall_code), Code::OverLimit);
}

#[test]
fn without_redis_calls_fail_unavailable() {
    let dir = TempDir::new("grpc").unwrap();
    let config = write(&dir, "limits.yaml", LIMITS);
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let server = Server::start(&["--config", &config, "--redis", &url]);
    let mut client = Client::connect(&server.addr);
    let e = client
        .ask(request("ai-attribution", vec![tokens("finance", 1)]))
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
}

#[test]
fn a_bad_config_is_refused_with_where_it_is() {
    let dir = TempDir::new("grpc").unwrap();
    let config = write(
        &dir,
        "limits.yaml",
        "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ratelimit-server"))
        .args(["--config", &config])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("limits.yaml: descriptors[0].rate_limit.unit: invalid rate limit unit 'fortnight'"),
        "{err}"
    );
}
