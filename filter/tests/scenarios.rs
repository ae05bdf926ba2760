//! Replays the scenario corpus in `tests/scenarios/` through the core's call lifecycle, with no
//! Envoy: request headers, the request body, an answer, and `finish`, then the record, the
//! rejection and the upstream headers are compared with what each case expects. The same files
//! run through a real Envoy in `integration/tests/scenarios.rs`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use ai_attribution::call::{Call, Effect, Flow, Step, VmState};
use ai_attribution::config::Config;
use ai_attribution::host::{view, MapAttributes};
use ai_attribution::record::{dimension_otel_name, Field, Record};
use scenario_corpus::{Case, ScenarioFile};
use serde_json::Value;
use std::rc::Rc;

/// What one case produced in the core.
struct Outcome {
    call: bool,
    steps: Vec<Step>,
    record: Option<Record>,
    /// The request headers as they would go upstream.
    upstream: Vec<(String, String)>,
}

fn reply(steps: &[Step]) -> Option<&ai_attribution::reject::LocalReply> {
    steps.iter().flat_map(|s| &s.effects).find_map(|e| match e {
        Effect::LocalReply(r) => Some(r),
        _ => None,
    })
}

fn run(cfg: &Rc<Config>, attrs: &MapAttributes, case: &Case) -> Outcome {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), case.method.as_bytes().to_vec()),
        (":path".into(), case.path.as_bytes().to_vec()),
        (":authority".into(), b"models.local".to_vec()),
        ("x-request-id".into(), b"req-1".to_vec()),
    ];
    for (k, v) in &case.headers {
        // Envoy hands header values over trimmed and names lower-cased.
        headers.push((k.to_ascii_lowercase(), v.trim().as_bytes().to_vec()));
    }
    let body = case.body.as_ref().map(|b| b.to_string().into_bytes());
    let mut vm = VmState::new([7; 32], 100);
    let mut attrs = attrs.clone();
    let (call, first) = Call::start(cfg, &view(&headers), body.is_none(), &mut attrs, &mut vm);
    let mut upstream: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    let mut steps = vec![first];
    let Some(mut call) = call else {
        apply(&mut upstream, &steps);
        return Outcome {
            call: false,
            steps,
            record: None,
            upstream,
        };
    };
    if let Some(body) = &body {
        // Split in two, as Envoy may hand a body over in pieces.
        let (a, b) = body.split_at(body.len() / 2);
        for (piece, eos) in [(a, false), (b, true)] {
            if call.wants_request_body() {
                steps.push(call.on_request_body(piece, eos, &mut attrs));
            }
        }
    }
    apply(&mut upstream, &steps);
    if reply(&steps).is_none() {
        let answer = vec![("content-type", &b"application/json"[..])];
        steps.push(call.on_response_headers(&answer, false));
        steps.push(call.on_response_body(b"{}", true));
    }
    let finished = call.finish(&mut attrs, &mut vm);
    Outcome {
        call: true,
        steps,
        record: Some(finished.record),
        upstream,
    }
}

/// Applies the header edits of the request phase to the headers as they were sent.
fn apply(upstream: &mut Vec<(String, String)>, steps: &[Step]) {
    for effect in steps.iter().flat_map(|s| &s.effects) {
        match effect {
            Effect::RemoveRequestHeader(name) => upstream.retain(|(k, _)| k != name),
            Effect::SetRequestHeader(name, value) => {
                upstream.retain(|(k, _)| k != name);
                upstream.push((name.clone(), value.clone()));
            }
            _ => {}
        }
    }
}

/// A record value by its scalar key (fixed field or dimension), as the access log shows it.
fn record_value(cfg: &Config, record: &Record, key: &str) -> Option<String> {
    let structured = |name: &str| -> Option<String> {
        record.entries().into_iter().find_map(|(k, v)| {
            let otel = match k {
                ai_attribution::record::Key::Field(f) => f.otel_name().to_string(),
                ai_attribution::record::Key::Dimension(i) => dimension_otel_name(&cfg.dimensions[i].name),
            };
            (otel == name).then(|| match v {
                ai_attribution::record::RecordValue::Text(t) => t.to_string(),
                ai_attribution::record::RecordValue::Count(n) => n.to_string(),
                ai_attribution::record::RecordValue::Flag(b) => b.to_string(),
                ai_attribution::record::RecordValue::Usd(c) => ai_attribution::record::format_cost(c),
            })
        })
    };
    match Field::from_scalar_name(key) {
        Some(f) => structured(f.otel_name()),
        None => {
            assert!(
                cfg.dimensions.iter().any(|d| d.name == key),
                "record key {key:?} is neither a field nor a dimension"
            );
            structured(&dimension_otel_name(key))
        }
    }
}

fn check(file: &ScenarioFile, cfg: &Config, case: &Case, out: &Outcome) {
    let name = format!("{}: {}", file.name, case.name);
    let exp = &case.expect;
    if exp["model_call"] == false {
        assert!(!out.call, "{name}: should not be an AI event");
        return;
    }
    assert!(out.call, "{name}: not recognised as a model call");
    let record = out.record.as_ref().unwrap();
    assert_eq!(record.correlation_id.len(), 36, "{name}: a generated correlation ID");
    let rejection = reply(&out.steps);
    let status = rejection.map_or(200, |r| r.status);
    if let Some(s) = exp["status"].as_u64() {
        assert_eq!(u64::from(status), s, "{name}: status");
    }
    for (key, field) in [("decision", "decision"), ("reason", "reason"), ("sources", "sources")] {
        if let Some(want) = exp[key].as_str() {
            assert_eq!(record_value(cfg, record, field).as_deref(), Some(want), "{name}: {key}");
        }
    }
    if let Some(missing) = exp["missing"].as_array() {
        let reply = rejection.unwrap_or_else(|| panic!("{name}: expected a rejection"));
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            &body["error"]["missing"],
            &Value::Array(missing.clone()),
            "{name}: missing"
        );
        assert_eq!(
            body["error"]["correlation_id"],
            record.correlation_id.as_str(),
            "{name}"
        );
        assert!(
            reply
                .headers
                .contains(&(cfg.correlation_header.clone(), record.correlation_id.clone())),
            "{name}: correlation header on the rejection"
        );
    }
    for (key, want) in exp["record"].as_object().into_iter().flatten() {
        let got = record_value(cfg, record, key);
        assert_eq!(got.as_deref(), want.as_str(), "{name}: record {key}");
    }
    if rejection.is_none() {
        let got = |h: &str| out.upstream.iter().find(|(k, _)| k == h).map(|(_, v)| v.as_str());
        assert_eq!(
            got(&cfg.correlation_header),
            Some(record.correlation_id.as_str()),
            "{name}"
        );
        for (h, want) in exp["upstream_headers"].as_object().into_iter().flatten() {
            assert_eq!(got(h), want.as_str(), "{name}: upstream header {h}");
        }
        for h in exp["upstream_absent"].as_array().into_iter().flatten() {
            let h = h.as_str().unwrap();
            assert!(got(h).is_none(), "{name}: {h} goes upstream");
        }
    } else {
        assert!(
            out.steps.iter().any(|s| s.flow == Flow::Pause),
            "{name}: a rejection pauses"
        );
    }
}

#[test]
fn scenario_corpus_replays_in_the_core() {
    let mut ran = 0;
    for file in scenario_corpus::load().unwrap() {
        let cfg =
            Rc::new(Config::parse(file.config.to_string().as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", file.name)));
        let mut attrs = MapAttributes::default();
        for (k, v) in &file.host_properties {
            attrs.set(k, v.as_bytes());
        }
        for case in &file.cases {
            let out = run(&cfg, &attrs, case);
            check(&file, &cfg, case, &out);
            ran += 1;
        }
    }
    assert!(ran >= 30, "only {ran} cases ran");
}
