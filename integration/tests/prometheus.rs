//! `prometheus/`: the recording and alert rules, their `promtool` unit tests, the Grafana
//! dashboard built on them, and a real Prometheus (Debian's `prometheus`) that scrapes a real
//! Envoy's admin endpoint (`/stats/prometheus`) with the filter, evaluates the shipped rules, and
//! answers spend and rejections by business unit through its HTTP API.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use ai_attribution::metrics;
use integration::envoy::{free_port, repo_root, TempDir};
use integration::http::{send, Request};
use integration::Stack;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn rules_dir() -> PathBuf {
    repo_root().join("prometheus")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rules() -> Vec<Value> {
    yaml(&rules_dir().join("rules.yaml"))["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

fn recorded() -> BTreeSet<String> {
    rules()
        .iter()
        .filter_map(|r| r["record"].as_str().map(String::from))
        .collect()
}

/// The counters the filter exports.
fn exported() -> BTreeSet<String> {
    [
        metrics::REQUESTS,
        metrics::TOKENS,
        metrics::COST,
        metrics::USAGE,
        metrics::TOOL_CALLS,
    ]
    .map(String::from)
    .into()
}

/// The metric and recorded-series names an expression refers to: words with a colon (recording
/// rules) and words starting with `ai_attribution_`.
fn names_in(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.contains(':') || w.starts_with("ai_attribution_"))
        .filter(|w| !w.starts_with(':'))
        .map(String::from)
        .collect()
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(rules_dir())
        .output()
        .expect("promtool (Debian package prometheus, installed by scripts/setup.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let checked = promtool(&["check", "rules", "rules.yaml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "tests.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every recording rule is evaluated in a `promql_expr_test` and every alert is tested firing
/// (with labels) and not firing, in tests.yaml.
#[test]
fn every_rule_has_a_unit_test() {
    let tests = yaml(&rules_dir().join("tests.yaml"));
    let mut exprs = BTreeSet::new();
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for t in tests["tests"].as_array().unwrap() {
        for e in t["promql_expr_test"].as_array().into_iter().flatten() {
            exprs.extend(names_in(e["expr"].as_str().unwrap()));
        }
        for a in t["alert_rule_test"].as_array().into_iter().flatten() {
            let name = a["alertname"].as_str().unwrap().to_string();
            if a["exp_alerts"].as_array().is_some_and(|v| v.is_empty()) {
                quiet.insert(name);
            } else {
                firing.insert(name);
            }
        }
    }
    let rules = rules();
    assert!(rules.len() >= 9, "{} rules", rules.len());
    for rule in &rules {
        if let Some(record) = rule["record"].as_str() {
            assert!(
                exprs.contains(record),
                "recording rule {record} has no promql_expr_test"
            );
        }
        if let Some(alert) = rule["alert"].as_str() {
            assert!(firing.contains(alert), "alert {alert} is never tested firing");
            assert!(quiet.contains(alert), "alert {alert} is never tested quiet");
        }
    }
    let alerts: BTreeSet<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(
        alerts,
        BTreeSet::from([
            "AiAttributionSpendSpike",
            "AiAttributionUnattributedRejectionsRising",
            "AiAttributionUsageMissing"
        ])
    );
}

/// The rules read only counters the filter exports, or series recorded by the rules.
#[test]
fn the_rules_read_only_the_filters_counters() {
    let known: BTreeSet<String> = exported().union(&recorded()).cloned().collect();
    for rule in rules() {
        let expr = rule["expr"].as_str().unwrap();
        let names = names_in(expr);
        assert!(!names.is_empty(), "{expr}");
        for name in names {
            assert!(known.contains(&name), "{expr}: {name} is neither exported nor recorded");
        }
    }
}

/// The dashboard is valid JSON, and every panel queries shipped recording rules or the filter's
/// counters, nothing else.
#[test]
fn the_grafana_dashboard_is_built_on_the_rules() {
    let path = rules_dir().join("grafana/ai-attribution.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(dash["uid"], "ai-attribution");
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    let recorded = recorded();
    let known: BTreeSet<String> = exported().union(&recorded).cloned().collect();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 5);
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "{title}: duplicate id");
        for k in ["x", "y", "w", "h"] {
            assert!(panel["gridPos"][k].is_u64(), "{title}: gridPos.{k}");
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            let names = names_in(expr);
            assert!(!names.is_empty(), "{title}: {expr} reads nothing shipped");
            for name in names {
                assert!(
                    known.contains(&name),
                    "{title}: {expr}: {name} is neither recorded nor exported"
                );
                used.insert(name);
            }
        }
    }
    for var in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["definition"].as_str() {
            for name in names_in(q) {
                assert!(known.contains(&name), "variable {}: {name}", var["name"]);
            }
        }
    }
    for record in &recorded {
        assert!(used.contains(record), "no panel shows {record}");
    }
}

/// A Prometheus server on 127.0.0.1 with its data in a temp dir, stopped when dropped (its log
/// printed if the test is failing).
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Prometheus {
    fn start(envoy_admin: u16) -> Prometheus {
        let dir = TempDir::new("prometheus").unwrap();
        let config = dir.path().join("prometheus.yml");
        let rules = rules_dir().join("rules.yaml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n- {}\nscrape_configs:\n- job_name: envoy\n  metrics_path: /stats/prometheus\n  static_configs:\n  - targets: ['127.0.0.1:{envoy_admin}']\n",
                rules.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("prometheus.err")).unwrap())
            .spawn()
            .expect("prometheus (Debian package prometheus, installed by scripts/setup.sh)");
        let p = Prometheus {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(port, "/-/ready").is_none_or(|(status, _)| status != 200) {
            assert!(Instant::now() < deadline, "prometheus not ready:\n{}", p.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn log(&self) -> String {
        let err = self.log.with_file_name("prometheus.err");
        format!(
            "{}{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default()
        )
    }

    /// An instant query's result vector.
    fn query(&self, q: &str) -> Vec<Value> {
        let (status, body) = get(self.port, &format!("/api/v1/query?query={}", encode(q))).expect("prometheus answers");
        assert_eq!(status, 200, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{q}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// `label -> value` of an instant query whose series carry `label`.
    fn by(&self, q: &str, label: &str) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .query(q)
            .iter()
            .map(|s| {
                (
                    s["metric"][label].as_str().unwrap_or_default().to_string(),
                    s["value"][1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Waits (up to 30 s) until `check` holds for the query's answer by `label`.
    fn wait_for(&self, q: &str, label: &str, check: impl Fn(&[(String, f64)]) -> bool) -> Vec<(String, f64)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.by(q, label);
            if check(&got) {
                return got;
            }
            assert!(Instant::now() < deadline, "{q}: {got:?}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "----- prometheus log -----\n{}", self.log());
        }
    }
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let resp = send(port, &Request::get(path).header("connection", "close")).ok()?;
    Some((resp.status, resp.text()))
}

/// Percent-encoding for a query string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn call(stack: &Stack, user: Option<&str>, business_unit: &str) -> u16 {
    let mut req = Request::post("/v1/chat/completions")
        .header("x-request-id", &integration::request_id("prom"))
        .header("x-business-unit", business_unit)
        .header("connection", "close");
    if let Some(user) = user {
        req = req.header("x-user-id", user);
    }
    let req = req.json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}));
    stack.send(&req).unwrap().status
}

/// Real calls through Envoy and the filter, scraped by Prometheus, which evaluates the shipped
/// rules: spend and rejections by business unit, raw and recorded.
#[test]
fn prometheus_answers_spend_and_rejections_by_business_unit() {
    let config = json!({
        "dimensions": {"user": ["header:x-user-id"], "business_unit": ["header:x-business-unit"]},
        "require": [["user", "business_unit"]],
        "pricing": {"gpt-4o*": {"input": 2.50, "output": 10.00, "cached_input": 1.25}},
        "metrics": {"labels": ["provider", "business_unit"]}
    });
    let stack = Stack::start(&config).unwrap();
    let prometheus = Prometheus::start(stack.envoy.admin_port);
    let round = |finance: usize, platform: usize, rejected: usize| {
        for _ in 0..finance {
            assert_eq!(call(&stack, Some("alice"), "finance"), 200);
        }
        for _ in 0..platform {
            assert_eq!(call(&stack, Some("bob"), "platform"), 200);
        }
        for _ in 0..rejected {
            assert_eq!(call(&stack, None, "finance"), 403);
        }
    };
    // A first round creates the series; the second makes them grow between two scrapes, which
    // increase() and rate() in the rules need.
    round(1, 1, 1);
    prometheus.wait_for("ai_attribution_requests_total", "business_unit", |v| v.len() >= 3);
    round(2, 1, 2);

    // Each call: 27 input tokens (10 cached), 12 output: 175 millionths of a USD.
    let spend = prometheus.wait_for(
        "sum by (business_unit) (ai_attribution_cost_microusd_total) / 1e6",
        "business_unit",
        |v| {
            v.iter()
                .any(|(bu, n)| bu == "finance" && (*n - 3.0 * 0.000175).abs() < 1e-9)
        },
    );
    assert_eq!(spend.len(), 2, "{spend:?}");
    assert_eq!(spend[1].0, "platform");
    assert!((spend[1].1 - 2.0 * 0.000175).abs() < 1e-9, "{spend:?}");

    let rejected = prometheus.wait_for(
        r#"sum by (business_unit) (ai_attribution_requests_total{decision="rejected"})"#,
        "business_unit",
        |v| v == [("finance".to_string(), 3.0)],
    );
    assert_eq!(rejected, [("finance".to_string(), 3.0)]);
    let tokens = prometheus.wait_for(
        r#"sum by (business_unit) (ai_attribution_tokens_total{direction="input"})"#,
        "business_unit",
        |v| v.len() == 2,
    );
    assert_eq!(tokens, [("finance".to_string(), 81.0), ("platform".to_string(), 54.0)]);

    // The shipped recording rules, evaluated by this Prometheus on what it scraped.
    let hourly = prometheus.wait_for(
        "business_unit:ai_attribution_cost_usd:increase1h",
        "business_unit",
        |v| v.len() == 2 && v.iter().all(|(_, n)| *n > 0.0),
    );
    assert_eq!(hourly[0].0, "finance", "{hourly:?}");
    assert!(
        hourly[0].1 > hourly[1].1,
        "finance spent more in the second round: {hourly:?}"
    );
    prometheus.wait_for(
        "business_unit_direction:ai_attribution_tokens:increase1h",
        "business_unit",
        |v| v.len() == 4 && v.iter().all(|(_, n)| *n > 0.0),
    );
    let rate = prometheus.wait_for(
        "business_unit:ai_attribution_rejected_requests:rate10m",
        "business_unit",
        |v| v.iter().any(|(bu, n)| bu == "finance" && *n > 0.0),
    );
    assert!(rate.iter().all(|(bu, _)| bu == "finance"), "{rate:?}");
}
