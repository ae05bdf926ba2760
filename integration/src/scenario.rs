//! The scenario corpus (`tests/scenarios/*.json`) replayed through a real Envoy.

use crate::http::Request;
use crate::{request_id, Stack};
use serde_json::Value;
use std::time::Duration;

pub use scenario_corpus::{load, Case, ScenarioFile};

/// Runs every case of a file against a stack started with its config; returns the failures.
pub fn run_file(file: &ScenarioFile) -> Result<usize, Vec<String>> {
    let dimensions: Vec<String> = file.config["dimensions"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_else(|| vec!["user".into(), "service_account".into()]);
    let stack = match Stack::start_with(file.config.to_string(), |b| b.dimensions = dimensions) {
        Ok(s) => s,
        Err(e) => return Err(vec![format!("{}: cannot start the stack: {e}", file.name)]),
    };
    let correlation_header = file.config["correlation"]["header"]
        .as_str()
        .unwrap_or("x-ai-correlation-id")
        .to_string();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &file.cases {
        let name = format!("{}: {}", file.name, case.name);
        let mut problems = run_case(&stack, case, &correlation_header);
        if !problems.is_empty() {
            problems.insert(0, format!("case {name}"));
            failures.push(problems.join("\n    "));
        }
        ran += 1;
    }
    if failures.is_empty() {
        Ok(ran)
    } else {
        failures.push(format!("----- envoy log -----\n{}", tail(&stack.envoy.log(), 60)));
        Err(failures)
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(n)..)
        .unwrap_or_default()
        .join("\n")
}

fn run_case(stack: &Stack, case: &Case, correlation_header: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let exp = &case.expect;
    let id = request_id("scn");
    let mut req = Request {
        method: case.method.clone(),
        path: case.path.clone(),
        ..Request::default()
    };
    req = req.header("x-request-id", &id);
    for (k, v) in &case.headers {
        req = req.header(k, v);
    }
    if let Some(body) = &case.body {
        req = req.json(body);
    }
    let resp = match stack.send(&req) {
        Ok(r) => r,
        Err(e) => return vec![format!("request failed: {e}")],
    };
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    if let Some(s) = exp["status"].as_u64() {
        check(
            u64::from(resp.status) == s,
            format!("status {} != {s}; body {}", resp.status, resp.text()),
        );
    }
    let model_call = exp["model_call"] != false;
    let log = stack.log_for(&id);
    check(log.is_some(), "no access-log line".into());
    let log = log.unwrap_or(Value::Null);
    if !model_call {
        check(log["decision"].is_null(), format!("non-model call has a record: {log}"));
        check(
            log["record"].is_null(),
            format!("non-model call has a structured record: {log}"),
        );
        check(
            resp.header(correlation_header).is_none(),
            "non-model call got a correlation header".into(),
        );
    } else {
        // The caller's x-request-id is kept as its own field; the correlation ID is the filter's.
        let correlation = log["correlation_id"].as_str().unwrap_or_default().to_string();
        check(
            correlation.len() == 36 && correlation != id,
            format!("log correlation_id = {}", log["correlation_id"]),
        );
        check(
            resp.header(correlation_header) == Some(correlation.as_str()),
            format!("response {correlation_header} = {:?}", resp.header(correlation_header)),
        );
        check(
            log["record"]["value"]["ai_attribution.correlation_id"] == correlation.as_str()
                && log["record"]["value"]["ai_attribution.request_id"] == id.as_str(),
            format!("structured record: {}", log["record"]),
        );
        for (key, field) in [("decision", "decision"), ("reason", "reason"), ("sources", "sources")] {
            if let Some(want) = exp[key].as_str() {
                let got = log[field].as_str().unwrap_or("");
                check(got == want, format!("log {field} = {:?}, want {want:?}", log[field]));
            }
        }
        if exp["decision"] == "rejected" {
            check(
                log["details"] == "ai_attribution_rejected",
                format!("details = {}", log["details"]),
            );
            let body = resp.json();
            check(
                body["error"]["type"] == "attribution_required",
                format!("envelope: {}", resp.text()),
            );
            check(
                body["error"]["correlation_id"] == log["correlation_id"],
                "envelope correlation_id".into(),
            );
            check(
                resp.header("content-type") == Some("application/json"),
                "content-type".into(),
            );
        }
        if let Some(missing) = exp["missing"].as_array() {
            check(
                resp.json()["error"]["missing"] == Value::Array(missing.clone()),
                format!("missing: {}", resp.text()),
            );
        }
        for (key, want) in exp["record"].as_object().into_iter().flatten() {
            check(&log[key] == want, format!("log {key} = {}, want {want}", log[key]));
        }
    }
    if exp["decision"] != "rejected" {
        match stack.server.wait_for("x-request-id", &id, Duration::from_secs(5)) {
            None => check(false, "the model server never saw the request".into()),
            Some(up) => {
                if model_call {
                    check(
                        up.header(correlation_header).is_some()
                            && up.header(correlation_header) == log["correlation_id"].as_str(),
                        format!("upstream {correlation_header} = {:?}", up.header(correlation_header)),
                    );
                }
                for (h, want) in exp["upstream_headers"].as_object().into_iter().flatten() {
                    let got: Vec<&str> = up.header_all(h);
                    check(
                        got.len() == 1 && Some(got[0]) == want.as_str(),
                        format!("upstream {h} = {got:?}, want {want}"),
                    );
                }
                for h in exp["upstream_absent"].as_array().into_iter().flatten() {
                    let h = h.as_str().unwrap_or_default();
                    check(up.header(h).is_none(), format!("upstream got {h} = {:?}", up.header(h)));
                }
            }
        }
    } else {
        // A rejected call never reaches the model server.
        std::thread::sleep(Duration::from_millis(50));
        check(
            !stack
                .server
                .received()
                .iter()
                .any(|r| r.header("x-request-id") == Some(id.as_str())),
            "rejected call reached upstream".into(),
        );
    }
    problems
}
