//! Replays the scenario corpus in `tests/scenarios/` against the pure core (no Envoy).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use ai_attribution::body::RequestBody;
use ai_attribution::config::Config;
use ai_attribution::provider::recognize;
use ai_attribution::request::{correlation_id, plan_request, Properties};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

struct FakeHost(HashMap<String, String>);

impl Properties for FakeHost {
    fn property(&mut self, path: &[&str]) -> Option<Vec<u8>> {
        self.0.get(&path.join(".")).map(|v| v.as_bytes().to_vec())
    }
}

fn corpus() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.display().to_string(),
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect()
}

/// `LONG300` stands for a 300-byte value (over the default 256-byte limit).
fn expand(v: &str) -> String {
    if v == "LONG300" {
        "x".repeat(300)
    } else {
        v.to_string()
    }
}

#[test]
fn scenario_corpus_replays_in_the_core() {
    let mut ran = 0;
    for (file, doc) in corpus() {
        let config = Config::parse(doc["config"].to_string().as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let props: HashMap<String, String> = doc["host_properties"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        for case in doc["cases"].as_array().unwrap() {
            let name = format!("{file}: {}", case["name"]);
            let req = &case["request"];
            let exp = &case["expect"];
            let method = req["method"].as_str().unwrap();
            let path = req["path"].as_str().unwrap();
            let mut headers: Vec<(String, Vec<u8>)> = vec![
                (":method".into(), method.as_bytes().to_vec()),
                (":path".into(), path.as_bytes().to_vec()),
                ("x-request-id".into(), b"req-1".to_vec()),
            ];
            for h in req["headers"].as_array().into_iter().flatten() {
                let h = h.as_array().unwrap();
                let value = expand(h[1].as_str().unwrap());
                // Envoy hands header values over trimmed and names lower-cased.
                headers.push((
                    h[0].as_str().unwrap().to_ascii_lowercase(),
                    value.trim().as_bytes().to_vec(),
                ));
            }
            let call = recognize(method, path, config.providers, &config.extra_routes);
            if exp["model_call"] == false {
                assert!(call.is_none(), "{name}: should not be a model call");
                ran += 1;
                continue;
            }
            let call = call.unwrap_or_else(|| panic!("{name}: not recognised as a model call"));
            let mut host = FakeHost(props.clone());
            let mut new_id = || "generated".to_string();
            let id = correlation_id(&headers, &mut new_id);
            let mut body = RequestBody::new(&config);
            if !req["body"].is_null() {
                body.feed(req["body"].to_string().as_bytes());
            }
            let plan = plan_request(&config, &call, &headers, &mut host, Some(&body), id);
            let request_model = plan.request_model.clone().or_else(|| body.model());
            assert_eq!(plan.correlation_id, "req-1", "{name}");

            let decision = plan.attribution.decision.as_str();
            if let Some(d) = exp["decision"].as_str() {
                assert_eq!(decision, d, "{name}: decision");
            }
            if let Some(r) = exp["reason"].as_str() {
                assert_eq!(plan.attribution.reason(&config), r, "{name}: reason");
            }
            if let Some(s) = exp["sources"].as_str() {
                assert_eq!(plan.attribution.sources(&config), s, "{name}: sources");
            }
            let status = plan.reject.as_ref().map_or(200, |r| r.status);
            if let Some(s) = exp["status"].as_u64() {
                assert_eq!(u64::from(status), s, "{name}: status");
            }
            if let Some(missing) = exp["missing"].as_array() {
                let reply = plan
                    .reject
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: expected a rejection"));
                let body: Value = serde_json::from_str(&reply.body).unwrap();
                assert_eq!(
                    &body["error"]["missing"],
                    &Value::Array(missing.clone()),
                    "{name}: missing"
                );
                assert_eq!(body["error"]["correlation_id"], "req-1", "{name}");
                assert!(
                    reply
                        .headers
                        .contains(&(config.correlation_header.clone(), "req-1".into())),
                    "{name}"
                );
            }
            for (key, want) in exp["record"].as_object().into_iter().flatten() {
                let got = match key.as_str() {
                    "provider" => Some(call.provider.clone()),
                    "operation" => Some(call.operation.clone()),
                    "request_model" => request_model.clone(),
                    "usage_status" => continue,
                    dim => config
                        .dimension_index(dim)
                        .and_then(|i| plan.attribution.value(i).map(str::to_string)),
                };
                assert_eq!(got.as_deref(), want.as_str(), "{name}: record {key}");
            }
            if plan.reject.is_none() {
                assert!(
                    plan.set.contains(&(config.correlation_header.clone(), "req-1".into())),
                    "{name}"
                );
                for (h, want) in exp["upstream_headers"].as_object().into_iter().flatten() {
                    let set = plan.set.iter().find(|(k, _)| k == h).map(|(_, v)| v.as_str());
                    assert_eq!(set, want.as_str(), "{name}: upstream header {h}");
                }
                for h in exp["upstream_absent"].as_array().into_iter().flatten() {
                    let h = h.as_str().unwrap();
                    assert!(!plan.set.iter().any(|(k, _)| k == h), "{name}: {h} is set");
                    let sent = headers.iter().any(|(k, _)| k == h);
                    assert!(
                        !sent || plan.remove.iter().any(|k| k == h),
                        "{name}: {h} is not removed"
                    );
                }
            }
            ran += 1;
        }
    }
    assert!(ran >= 30, "only {ran} cases ran");
}
