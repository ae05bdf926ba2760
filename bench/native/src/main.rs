//! `bench-native PART N`: runs one part of the filter's per-request work N times, natively.
//! PART: call | call-2k | healthz | body-new | body-tiny | body-2k | usage-new | usage-json. Instruction counts under callgrind at two N
//! give the per-request cost of that part without the proxy-wasm boundary (bench/breakdown.py).

use ai_attribution::body::RequestBody;
use ai_attribution::call::{Call, VmState};
use ai_attribution::config::Config;
use ai_attribution::host::{Attributes, HeaderList};
use ai_attribution::provider::ApiFamily;
use ai_attribution::usage::{BodyFormat, UsageReader};
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let part = args.get(1).map(String::as_str).unwrap_or("body-tiny");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let cfg_text = std::fs::read(args.get(3).map(String::as_str).unwrap_or("config.json")).unwrap_or_default();
    let cfg = Config::parse(&cfg_text).unwrap_or_else(|e| panic!("config: {e}"));
    let body_2k = std::fs::read(args.get(4).map(String::as_str).unwrap_or("body2k.json")).unwrap_or_default();
    let tiny = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#.to_vec();
    let response = std::fs::read(args.get(5).map(String::as_str).unwrap_or("response.json")).unwrap_or_default();
    let cfg = std::rc::Rc::new(cfg);
    let mut vm = VmState::new([7; 32], cfg.max_label_values);
    let mut sink = 0usize;
    for _ in 0..n {
        match part {
            "body-tiny" | "body-2k" => {
                let mut b = RequestBody::new(&cfg);
                b.feed(black_box(if part == "body-2k" { &body_2k } else { &tiny }));
                sink += b.model().map_or(0, |m| m.len());
            }
            "body-new" => {
                let b = RequestBody::new(black_box(&cfg));
                sink += b.model().map_or(0, |m| m.len());
            }
            "usage-new" => {
                let r = UsageReader::new(black_box(ApiFamily::OpenAiChat), BodyFormat::Json);
                sink += r.usage().input_tokens.unwrap_or(0) as usize;
            }
            "usage-json" => {
                let mut r = UsageReader::new(ApiFamily::OpenAiChat, BodyFormat::Json);
                r.feed(black_box(&response));
                r.finish();
                sink += r.usage().input_tokens.unwrap_or(0) as usize;
            }
            "call" | "call-2k" => {
                let (effects, reads) = call(
                    &cfg,
                    &mut vm,
                    if part == "call-2k" { &body_2k } else { &tiny },
                    &response,
                );
                sink += effects + reads;
                if n == 1 {
                    eprintln!(
                        "host calls beyond the callbacks: {effects} effects and record keys, {reads} property reads"
                    );
                }
            }
            "healthz" => {
                let headers = header_list(&[
                    (":authority", "127.0.0.1:10000"),
                    (":path", "/healthz"),
                    (":method", "GET"),
                    (":scheme", "http"),
                    ("user-agent", "wrk"),
                    ("x-forwarded-proto", "http"),
                    ("x-request-id", "5f0c6a8e-1d2b-4c3a-9e8f-7a6b5c4d3e2f"),
                ]);
                let mut host = CountingHost(0);
                let (call, step) = Call::start(&cfg, black_box(&headers), true, &mut host, &mut vm);
                sink += step.effects.len() + usize::from(call.is_some()) + host.0;
            }
            other => panic!("unknown part {other}"),
        }
    }
    println!("{sink}");
}

/// Headers as the glue hands them to the core.
fn header_list(pairs: &[(&str, &str)]) -> HeaderList {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Counts the property reads a call makes, answering none of them (as Envoy does for a plain
/// connection without metadata).
struct CountingHost(usize);

impl Attributes for CountingHost {
    fn property(&mut self, _path: &[&str]) -> Option<Vec<u8>> {
        self.0 += 1;
        None
    }
    fn now_unix_seconds(&mut self) -> Option<u64> {
        Some(1_764_000_000)
    }
}

/// One header-attributed chat call through the whole lifecycle, as the glue drives it: the
/// headers Envoy hands over for the benchmark's request, the body, the answer, the record.
/// Returns (effects + record keys + metric increments, property reads).
fn call(cfg: &std::rc::Rc<Config>, vm: &mut VmState, body: &[u8], response: &[u8]) -> (usize, usize) {
    let body_len = body.len().to_string();
    let headers = header_list(&[
        (":authority", "127.0.0.1:10000"),
        (":path", "/v1/chat/completions"),
        (":method", "POST"),
        (":scheme", "http"),
        ("x-user-id", "alice"),
        ("x-business-unit", "research"),
        ("content-type", "application/json"),
        ("content-length", &body_len),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "5f0c6a8e-1d2b-4c3a-9e8f-7a6b5c4d3e2f"),
    ]);
    let mut host = CountingHost(0);
    let mut effects = 0;
    let (call, step) = Call::start(cfg, black_box(&headers), false, &mut host, vm);
    effects += step.effects.len();
    let Some(mut call) = call else {
        return (effects, host.0);
    };
    if call.wants_request_body() {
        effects += call.on_request_body(black_box(body), true, &mut host).effects.len();
    }
    let response_len = response.len().to_string();
    let response_headers = header_list(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-length", &response_len),
    ]);
    effects += call.on_response_headers(&response_headers, false).effects.len();
    if call.wants_response_body() {
        effects += call.on_response_body(black_box(response), true).effects.len();
    }
    let finished = call.finish(&mut host, vm);
    effects += finished.scalars().len() + 1 + finished.counts.len();
    black_box(&finished);
    (effects, host.0)
}
