//! `bench-native PART N`: runs one part of the filter's per-request work N times, natively.
//! PART: call | call-2k | healthz | body-new | body-tiny | body-2k | usage-new | usage-json | usage-sse
//! (one 64 KB write of bench/sse_upstream.py's ~1.1 KB events). Arguments after N: the plugin
//! configuration, the 2 KB body, the JSON answer and the SSE block, as files. Instruction counts under callgrind at two N
//! give the per-request cost of that part without the proxy-wasm boundary (bench/breakdown.py).

use ai_attribution::body::RequestBody;
use ai_attribution::call::{Call, VmState};
use ai_attribution::config::Config;
use ai_attribution::host::decode_headers;
use ai_attribution::host::Attributes;
use ai_attribution::identity::pairs::encode_pairs;
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
    let sse_block = std::fs::read(args.get(6).map(String::as_str).unwrap_or("sse_block.txt")).unwrap_or_default();
    let cfg = std::rc::Rc::new(cfg);
    let mut vm = VmState::new([7; 32], cfg.max_label_values);
    let healthz = encoded(&[
        (":authority", "127.0.0.1:10000"),
        (":path", "/healthz"),
        (":method", "GET"),
        (":scheme", "http"),
        ("user-agent", "wrk"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "5f0c6a8e-1d2b-4c3a-9e8f-7a6b5c4d3e2f"),
    ]);
    let with_tiny = Exchange::new(tiny.clone(), response.clone());
    let with_2k = Exchange::new(body_2k.clone(), response.clone());
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
            "usage-sse" => {
                let mut r = UsageReader::new(ApiFamily::OpenAiChat, BodyFormat::Sse);
                r.feed(black_box(&sse_block));
                sink += r.usage().output_tokens.unwrap_or(0) as usize;
            }
            "usage-json" => {
                let mut r = UsageReader::new(ApiFamily::OpenAiChat, BodyFormat::Json);
                r.feed(black_box(&response));
                r.finish();
                sink += r.usage().input_tokens.unwrap_or(0) as usize;
            }
            "call" | "call-2k" => {
                let (effects, reads) = call(&cfg, &mut vm, if part == "call-2k" { &with_2k } else { &with_tiny });
                sink += effects + reads;
                if n == 1 {
                    eprintln!(
                        "host calls beyond the callbacks: {effects} effects and record keys, {reads} property reads"
                    );
                }
            }
            "healthz" => {
                let mut host = CountingHost(0);
                let (call, step) = with_headers(black_box(&healthz), |headers| {
                    Call::start(&cfg, headers, true, &mut host, &mut vm)
                });
                sink += step.effects.len() + usize::from(call.is_some()) + host.0;
            }
            other => panic!("unknown part {other}"),
        }
    }
    println!("{sink}");
}

/// Headers in the host's pairs encoding, as Envoy hands them to the filter.
fn encoded(pairs: &[(&str, &str)]) -> Vec<u8> {
    let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
    encode_pairs(&pairs)
}

/// What the glue does with them: copies the buffer out of the host and borrows a view from it.
fn with_headers<R>(encoded: &[u8], f: impl FnOnce(&[(&str, &[u8])]) -> R) -> R {
    let copy = encoded.to_vec();
    f(&decode_headers(&copy).unwrap_or_default())
}

/// One header-attributed chat call's messages, encoded as the host hands them over.
struct Exchange {
    headers: Vec<u8>,
    body: Vec<u8>,
    response_headers: Vec<u8>,
    response: Vec<u8>,
}

impl Exchange {
    fn new(body: Vec<u8>, response: Vec<u8>) -> Exchange {
        let body_len = body.len().to_string();
        let response_len = response.len().to_string();
        Exchange {
            headers: encoded(&[
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
            ]),
            body,
            response_headers: encoded(&[
                (":status", "200"),
                ("content-type", "application/json"),
                ("content-length", &response_len),
            ]),
            response,
        }
    }
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
fn call(cfg: &std::rc::Rc<Config>, vm: &mut VmState, exchange: &Exchange) -> (usize, usize) {
    let Exchange {
        headers,
        body,
        response_headers,
        response,
    } = exchange;
    let mut host = CountingHost(0);
    let mut effects = 0;
    let (call, step) = with_headers(black_box(&headers), |h| Call::start(cfg, h, false, &mut host, vm));
    effects += step.effects.len();
    let Some(mut call) = call else {
        return (effects, host.0);
    };
    if call.wants_request_body() {
        effects += call.on_request_body(black_box(body), true, &mut host).effects.len();
    }
    effects += with_headers(&response_headers, |h| call.on_response_headers(h, false))
        .effects
        .len();
    if call.wants_response_body() {
        effects += call.on_response_body(black_box(response), true).effects.len();
    }
    let finished = call.finish(&mut host, vm);
    effects += finished.scalars().len() + 1 + finished.counts.len();
    black_box(&finished);
    (effects, host.0)
}
