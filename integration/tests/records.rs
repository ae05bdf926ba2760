//! Record completeness under load: Envoy with two worker threads, many concurrent clients, a mix
//! of attributed, rejected and streamed model calls, streams the client aborts and streams the
//! upstream resets, and requests that are no model call. Afterwards the access log must hold
//! exactly one record (a line with a decision) per model call and none for anything else,
//! counted by request ID.
//!
//! `SOAK_RECORD_CALLS` sets the number of model calls (1,000 by default; `make soak` runs
//! 10,000); non-model requests come on top, one for every four model calls.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::http::{self, Request};
use integration::{log_lines, Stack};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One kind of request in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    AttributedJson,
    AttributedGemini,
    StreamedOpenAi,
    StreamedAnthropic,
    Rejected,
    RejectedAnthropic,
    /// A stream the client closes after its first bytes.
    AbortedByClient,
    /// A stream the model server cuts off halfway (`x-mock-behavior: reset-mid-stream`).
    ResetByUpstream,
    NotAModelCall,
    NotFound,
}

/// Eight model-call kinds and two others: one non-model request per four model calls.
const MIX: [Kind; 10] = [
    Kind::AttributedJson,
    Kind::StreamedOpenAi,
    Kind::Rejected,
    Kind::NotAModelCall,
    Kind::AbortedByClient,
    Kind::StreamedAnthropic,
    Kind::ResetByUpstream,
    Kind::AttributedGemini,
    Kind::NotFound,
    Kind::RejectedAnthropic,
];

impl Kind {
    fn is_model_call(self) -> bool {
        !matches!(self, Kind::NotAModelCall | Kind::NotFound)
    }

    fn decision(self) -> &'static str {
        match self {
            Kind::Rejected | Kind::RejectedAnthropic => "rejected",
            _ => "attributed",
        }
    }

    fn request(self, id: &str) -> Request {
        let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
        let stream = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        let anthropic = json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": true, "messages": []});
        let req = match self {
            Kind::AttributedJson | Kind::Rejected => Request::post("/v1/chat/completions").json(&chat),
            Kind::AttributedGemini => Request::post("/v1beta/models/gemini-2.0-flash:generateContent")
                .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]})),
            Kind::StreamedOpenAi => Request::post("/v1/chat/completions").json(&stream),
            Kind::StreamedAnthropic => Request::post("/v1/messages").json(&anthropic),
            Kind::RejectedAnthropic => Request::post("/v1/messages").json(&anthropic),
            Kind::AbortedByClient => Request::post("/v1/chat/completions")
                .json(&stream)
                .header("x-mock-behavior", "slow"),
            Kind::ResetByUpstream => Request::post("/v1/chat/completions")
                .json(&stream)
                .header("x-mock-behavior", "reset-mid-stream"),
            Kind::NotAModelCall => Request::get("/healthz"),
            Kind::NotFound => Request::post("/not/a/model/call").json(&chat),
        };
        let req = req.header("x-request-id", id);
        match self {
            Kind::Rejected | Kind::RejectedAnthropic => req,
            _ => req.header("x-user-id", "load-user"),
        }
    }
}

/// Sends one request; errors (a reset, an abort) are part of the mix and ignored.
fn send(port: u16, kind: Kind, id: &str) {
    let req = kind.request(id);
    if kind == Kind::AbortedByClient {
        if let Ok(mut stream) = http::open(port, &req) {
            // Wait for the start of the stream, then hang up.
            let mut buf = [0u8; 256];
            let _ = stream.read(&mut buf);
        }
    } else {
        let _ = http::send(port, &req);
    }
}

fn calls() -> usize {
    std::env::var("SOAK_RECORD_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[test]
fn every_model_call_has_exactly_one_record_under_load() {
    let model_calls = calls();
    let total = model_calls * MIX.len() / MIX.iter().filter(|k| k.is_model_call()).count();
    let stack = Stack::start_with(
        json!({"dimensions": {"user": ["header:x-user-id"]}, "require": [["user"]]}).to_string(),
        |b| {
            b.concurrency = 2;
            // Local replies end at once (the client reads to EOF).
            b.hcm_extra.insert("delayed_close_timeout".into(), json!("0s"));
        },
    )
    .unwrap();
    let port = stack.port;
    let next = Arc::new(AtomicUsize::new(0));
    let sent: Arc<Mutex<Vec<(String, Kind)>>> = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let started = Instant::now();
    let tag = format!("load-{}", std::process::id());
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (next, sent, tag) = (Arc::clone(&next), Arc::clone(&sent), tag.clone());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    break;
                }
                let kind = MIX[i % MIX.len()];
                let id = format!("{tag}-{i}");
                send(port, kind, &id);
                sent.lock().unwrap().push((id, kind));
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let sending = started.elapsed();
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    assert_eq!(sent.len(), total);

    // Every request leaves one access-log line; wait for all of them (a stream the client
    // aborted is logged when Envoy notices).
    let deadline = Instant::now() + Duration::from_secs(120);
    let lines = loop {
        let lines = log_lines(&stack.access_log);
        let ours = lines
            .iter()
            .filter(|l| l["request_id"].as_str().is_some_and(|id| id.starts_with(&tag)))
            .count();
        if ours >= total || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut by_id: HashMap<&str, Vec<&Value>> = HashMap::new();
    for l in &lines {
        if let Some(id) = l["request_id"].as_str() {
            by_id.entry(id).or_default().push(l);
        }
    }

    let mut problems = Vec::new();
    let mut counts: BTreeMap<(Kind, String), usize> = BTreeMap::new();
    let (mut records, mut model, mut other) = (0, 0, 0);
    for (id, kind) in &sent {
        let mine = by_id.get(id.as_str()).cloned().unwrap_or_default();
        let with_decision: Vec<&&Value> = mine.iter().filter(|l| !l["decision"].is_null()).collect();
        records += with_decision.len();
        if kind.is_model_call() {
            model += 1;
            if with_decision.len() != 1 {
                problems.push(format!(
                    "{id} ({kind:?}): {} records in {} lines",
                    with_decision.len(),
                    mine.len()
                ));
                continue;
            }
            let r = with_decision[0];
            *counts
                .entry((*kind, r["decision"].as_str().unwrap_or("?").to_string()))
                .or_default() += 1;
            if r["decision"] != kind.decision() {
                problems.push(format!(
                    "{id} ({kind:?}): decision {}, reason {}",
                    r["decision"], r["reason"]
                ));
            }
            let cut = matches!(kind, Kind::AbortedByClient | Kind::ResetByUpstream);
            if cut && r["response_end"] != "cut_short" {
                problems.push(format!(
                    "{id} ({kind:?}): response_end {}, flags {}",
                    r["response_end"], r["flags"]
                ));
            }
            if r["record"]["value"]["ai_attribution.decision"] != kind.decision() {
                problems.push(format!("{id} ({kind:?}): structured record {}", r["record"]));
            }
        } else {
            other += 1;
            if mine.len() != 1 || !with_decision.is_empty() {
                problems.push(format!(
                    "{id} ({kind:?}): {} lines, {} records",
                    mine.len(),
                    with_decision.len()
                ));
            }
        }
    }
    let all_records = lines.iter().filter(|l| !l["decision"].is_null()).count();
    eprintln!(
        "records: {model} model calls and {other} other requests sent in {sending:?} through Envoy \
         --concurrency 2; {} access-log lines, {records} records for our requests ({all_records} in all)",
        lines.len()
    );
    for ((kind, decision), n) in &counts {
        eprintln!("  {kind:?}: {n} {decision}");
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.iter().take(50).cloned().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(records, model, "one record per model call");
    assert_eq!(all_records, model, "no record for anything else");
}
