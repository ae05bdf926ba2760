//! `bench-native PART N`: runs one part of the filter's per-request work N times, natively.
//! PART: body-new | body-tiny | body-2k | usage-new | usage-json | record-scalars | record-struct | record. Instruction counts under callgrind at two N
//! give the per-request cost of that part without the proxy-wasm boundary (bench/native-cost.sh).

use ai_attribution::body::RequestBody;
use ai_attribution::config::Config;
use ai_attribution::policy::Decision;
use ai_attribution::provider::ApiFamily;
use ai_attribution::record::{Record, Tokens, UsageStatus};
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
                sink += b.bytes() as usize;
            }
            "usage-new" => {
                let r = UsageReader::new(black_box(ApiFamily::OpenAiChat), BodyFormat::Json);
                sink += r.usage().input_tokens.unwrap_or(0) as usize;
            }
            "record-scalars" | "record-struct" => {
                let rec = record();
                sink += if part == "record-scalars" {
                    rec.scalar_entries(&cfg).len()
                } else {
                    rec.structured().len()
                };
            }
            "usage-json" => {
                let mut r = UsageReader::new(ApiFamily::OpenAiChat, BodyFormat::Json);
                r.feed(black_box(&response));
                r.finish();
                sink += r.usage().input_tokens.unwrap_or(0) as usize;
            }
            "record" => {
                let rec = record();
                let scalars = rec.scalar_entries(&cfg);
                let st = rec.structured();
                sink += scalars.len() + st.len();
            }
            other => panic!("unknown part {other}"),
        }
    }
    println!("{sink}");
}

fn record() -> Record {
    Record {
        decision: Decision::Attributed,
        reason: String::new(),
        correlation_id: "0b5c3c37-2a8e-4f53-9a8e-6f1f0b9d2c11".into(),
        dimensions: vec![
            ("app".into(), None),
            ("business_unit".into(), Some("research".into())),
            ("service_account".into(), None),
            ("session".into(), None),
            ("user".into(), Some("alice".into())),
        ],
        sources: "user=header:x-user-id,business_unit=header:x-business-unit".into(),
        provider: "openai".into(),
        operation: "chat".into(),
        request_model: Some("gpt-4o".into()),
        response_model: Some("gpt-4o-2024-08-06".into()),
        response_id: Some("chatcmpl-bench".into()),
        stream: Some(false),
        tokens: Tokens {
            input: Some(27),
            output: Some(12),
            cached_input: Some(10),
            reasoning: Some(4),
        },
        usage_status: Some(UsageStatus::Reported),
        cost_usd: Some(0.0001775),
    }
}
