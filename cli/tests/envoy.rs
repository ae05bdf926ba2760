//! The CLI on access logs written by real Envoys: report (every format, HTML in headless
//! Chromium, the ClickHouse queries in chDB), trace across two hops, spikes, and bad input.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn json_out(args: &[&str]) -> Value {
    let o = cli(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", stdout(&o)))
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        Value::Null => 0.0,
        other => panic!("not a number: {other}"),
    }
}

fn cents(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

/// Sums per (business_unit, user), computed straight from the log lines with serde_json.
fn oracle(log: &Path) -> BTreeMap<(String, String), [f64; 9]> {
    let mut out: BTreeMap<(String, String), [f64; 9]> = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let r = &v["record"]["value"];
        if r.is_null() {
            continue;
        }
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let e = out
            .entry((s("ai_attribution.business_unit"), s("user.id")))
            .or_default();
        e[0] += 1.0;
        e[1] += f64::from(u8::from(s("ai_attribution.decision") == "rejected"));
        e[2] += num(&r["gen_ai.usage.input_tokens"]);
        e[3] += num(&r["gen_ai.usage.cache_read.input_tokens"]);
        e[4] += num(&r["gen_ai.usage.output_tokens"]);
        e[5] += num(&r["gen_ai.usage.reasoning.output_tokens"]);
        e[6] += num(&r["ai_attribution.cost_usd"]);
        let tokens = !r["gen_ai.usage.input_tokens"].is_null() || !r["gen_ai.usage.output_tokens"].is_null();
        e[7] += f64::from(u8::from(
            r["ai_attribution.cost_usd"].is_null() && tokens && s("ai_attribution.decision") != "rejected",
        ));
        e[8] += f64::from(u8::from(s("ai_attribution.usage_status") == "missing"));
    }
    out
}

fn row_key(row: &Value) -> (String, String) {
    let k = |name: &str| row["key"][name].as_str().unwrap_or("").to_string();
    (k("business_unit"), k("user"))
}

fn row_values(row: &Value) -> [f64; 9] {
    [
        num(&row["calls"]),
        num(&row["rejected"]),
        num(&row["input_tokens"]),
        num(&row["cached_input_tokens"]),
        num(&row["output_tokens"]),
        num(&row["reasoning_tokens"]),
        num(&row["cost_usd"]),
        num(&row["unpriced_calls"]),
        num(&row["usage_missing"]),
    ]
}

fn close(a: &[f64; 9], b: &[f64; 9]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
}

#[test]
fn report_matches_an_independent_sum_of_the_log() {
    let l = logs();
    let report = json_out(&[
        "report",
        "--by",
        "business_unit,user",
        "--format",
        "json",
        p(&l.sidecar),
    ]);
    let want = oracle(&l.sidecar);
    let rows = report["chargeback"].as_array().unwrap();
    assert_eq!(rows.len(), want.len(), "{report:#}");
    for row in rows {
        let key = row_key(row);
        let w = want.get(&key).unwrap_or_else(|| panic!("unexpected group {key:?}"));
        assert!(close(&row_values(row), w), "{key:?}: {row} vs {w:?}");
    }
    // The mix is what the test sent: rejections, streamed calls, unpriced models, missing usage.
    let t = &report["totals"];
    assert_eq!(t["rejected"], 6, "{t}");
    assert!(num(&t["cost_usd"]) > 0.0);
    assert_eq!(t["usage_missing"], 2, "{t}");
    assert_eq!(
        report["gaps"]["unpriced_models"].as_array().unwrap().len(),
        2,
        "{report:#}"
    );
    assert_eq!(report["rejections"][0]["reason"], "missing:user");
    assert_eq!(report["input"]["not_records"]["not_model_call"], 4);
    assert_eq!(report["input"]["records"], 32);
    // Streamed and non-streamed calls were both priced.
    let alice = rows
        .iter()
        .find(|r| row_key(r) == ("finance".into(), "alice".into()))
        .unwrap();
    assert_eq!(alice["calls"], 8);
}

#[test]
fn table_csv_focus_and_html_come_from_the_same_numbers() {
    let l = logs();
    let by = "business_unit,user,provider,model";
    let j = json_out(&["report", "--by", by, "--format", "json", p(&l.sidecar)]);
    let rows = j["chargeback"].as_array().unwrap();

    // CSV: one line per JSON row, same numbers.
    let csv = stdout(&cli(&["report", "--by", by, "--format", "csv", p(&l.sidecar)]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), rows.len() + 1, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    for (line, row) in lines[1..].iter().zip(rows) {
        let cells: Vec<&str> = line.split(',').collect();
        let col = |name: &str| cells[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!(col("cost_usd"), row["cost_usd"].to_string(), "{line}");
        assert_eq!(col("input_tokens"), row["input_tokens"].to_string());
        assert_eq!(col("calls"), row["calls"].to_string());
        assert_eq!(col("business_unit"), row["key"]["business_unit"].as_str().unwrap_or(""));
    }

    // Table: every row's cost, rounded to 6 decimals, and the total.
    let table = stdout(&cli(&["report", "--by", by, p(&l.sidecar)]));
    let total = &j["totals"];
    let total_line = table.lines().find(|l| l.starts_with("TOTAL")).unwrap();
    let total_input = total["input_tokens"].to_string();
    assert!(
        total_line.contains(&format!("{:.6}", num(&total["cost_usd"]))),
        "{total_line}"
    );
    assert!(total_line.split_whitespace().any(|c| c == total_input), "{total_line}");

    // FOCUS: the same groups (it adds nothing to these --by fields), rows with upstream calls.
    let focus = stdout(&cli(&["report", "--by", by, "--format", "focus", p(&l.sidecar)]));
    let (fh, frows) = parse_csv(&focus);
    let upstream: Vec<&Value> = rows.iter().filter(|r| num(&r["calls"]) > num(&r["rejected"])).collect();
    assert_eq!(frows.len(), upstream.len(), "{focus}");
    let fcol =
        |r: &Vec<String>, name: &str| r[fh.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name}"))].clone();
    let mut focus_cost = 0.0;
    for (fr, row) in frows.iter().zip(&upstream) {
        assert_eq!(fcol(fr, "BilledCost"), row["cost_usd"].to_string());
        assert_eq!(fcol(fr, "EffectiveCost"), row["cost_usd"].to_string());
        assert_eq!(fcol(fr, "ListCost"), row["cost_usd"].to_string());
        assert_eq!(fcol(fr, "ContractedCost"), row["cost_usd"].to_string());
        assert_eq!(fcol(fr, "ResourceId"), row["key"]["model"].as_str().unwrap_or(""));
        assert_eq!(
            fcol(fr, "SubAccountId"),
            row["key"]["business_unit"].as_str().unwrap_or("")
        );
        let tokens = num(&row["input_tokens"]) + num(&row["output_tokens"]);
        assert_eq!(num(&Value::String(fcol(fr, "ConsumedQuantity"))), tokens);
        assert_eq!(fcol(fr, "ConsumedUnit"), "Tokens");
        assert_eq!(fcol(fr, "BillingCurrency"), "USD");
        assert_eq!(fcol(fr, "ChargeCategory"), "Usage");
        assert_eq!(fcol(fr, "ServiceCategory"), "AI and Machine Learning");
        assert_eq!(fcol(fr, "ServiceSubcategory"), "Generative AI");
        assert!(fcol(fr, "ChargePeriodStart").ends_with("T00:00:00Z"));
        if let Some(user) = row["key"]["user"].as_str() {
            let tags: Value = serde_json::from_str(&fcol(fr, "Tags")).unwrap();
            assert_eq!(tags, json!({"user": user}));
        }
        focus_cost += num(&Value::String(fcol(fr, "BilledCost")));
    }
    assert!((focus_cost - num(&total["cost_usd"])).abs() < 1e-9);
    // Every FOCUS 1.2 mandatory column is there.
    for col in [
        "BilledCost",
        "BillingAccountId",
        "BillingAccountName",
        "BillingCurrency",
        "BillingPeriodEnd",
        "BillingPeriodStart",
        "ChargeCategory",
        "ChargeClass",
        "ChargeDescription",
        "ChargePeriodEnd",
        "ChargePeriodStart",
        "ContractedCost",
        "EffectiveCost",
        "InvoiceIssuerName",
        "ListCost",
        "PricingQuantity",
        "PricingUnit",
        "ProviderName",
        "PublisherName",
        "ServiceCategory",
        "ServiceName",
    ] {
        assert!(fh.iter().any(|h| h == col), "missing {col}");
    }

    // HTML: its data block is the JSON report, and its bars add up to the same totals.
    let html_path = out_dir().join("report-same-numbers.html");
    let o = cli(&[
        "report",
        "--by",
        by,
        "--html",
        p(&html_path),
        "--format",
        "json",
        p(&l.sidecar),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let html = std::fs::read_to_string(&html_path).unwrap();
    let data = between(
        &html,
        "<script type=\"application/json\" id=\"report-data\">",
        "</script>",
    );
    assert!(!data.contains('<'), "the data block must not hold a raw '<'");
    let embedded: Value = serde_json::from_str(data).unwrap();
    assert_eq!(embedded, j);
    let spend = between(&html, "<svg id=\"chart-spend-over-time\"", "</svg>");
    let bar_sum: f64 = attr_values(spend, "data-value").iter().sum();
    assert!((bar_sum - num(&total["cost_usd"])).abs() < 1e-9, "{bar_sum}");
    let rejections = between(&html, "<svg id=\"chart-rejections\"", "</svg>");
    assert_eq!(
        attr_values(rejections, "data-value").iter().sum::<f64>(),
        num(&total["rejected"])
    );
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len();
    let j = s[i..].find(end).unwrap() + i;
    &s[i..j]
}

fn attr_values(s: &str, attr: &str) -> Vec<f64> {
    let pat = format!("{attr}=\"");
    s.match_indices(&pat)
        .map(|(i, _)| {
            let rest = &s[i + pat.len()..];
            rest[..rest.find('"').unwrap()].parse::<f64>().unwrap()
        })
        .collect()
}

/// A CSV parser for the quoted fields the CLI writes.
fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut cells = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => cells.push(std::mem::take(&mut cur)),
                (c, _) => cur.push(c),
            }
        }
        cells.push(cur);
        rows.push(cells);
    }
    let header = rows.remove(0);
    for r in &rows {
        assert_eq!(r.len(), header.len(), "{r:?}");
    }
    (header, rows)
}

fn chromium() -> PathBuf {
    for c in [
        std::env::var("CHROMIUM").unwrap_or_default().as_str(),
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
    ] {
        if !c.is_empty() && Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("headless Chromium is needed for the HTML report test: run `make cli-setup` (installs Debian's chromium)");
}

fn chromium_cmd(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1280,2200",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let l = logs();
    let dir = out_dir();
    let html = dir.join("cli-report.html");
    let o = cli(&[
        "report",
        "--by",
        "business_unit,service_account",
        "--period",
        "hour",
        "--html",
        p(&html),
        p(&l.sidecar),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch.
    for needle in ["http://", "https://", " src=", "@import", "url("] {
        assert!(!page.contains(needle), "the page refers to {needle}");
    }
    let profile = dir.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = chromium_cmd(&profile)
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(dom.contains("data-ready=\"1\""), "the page's script did not run");
    for id in [
        "chart-spend-over-time",
        "chart-top-service-accounts",
        "chart-top-users",
        "chart-rejections",
        "chargeback",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "{id} missing from the rendered DOM"
        );
    }
    let spend = between(&dom, "id=\"chart-spend-over-time\"", "</svg>");
    assert!(spend.matches("<rect class=\"bar\"").count() >= 4, "{spend}");
    let accounts = between(&dom, "id=\"chart-top-service-accounts\"", "</svg>");
    assert!(
        accounts.contains("nightly-summarizer") && accounts.contains("indexer"),
        "{accounts}"
    );
    let users = between(&dom, "id=\"chart-top-users\"", "</svg>");
    assert!(users.contains("alice") && users.contains("carol"), "{users}");
    let rejections = between(&dom, "id=\"chart-rejections\"", "</svg>");
    assert!(rejections.contains("missing:user"), "{rejections}");

    // The screenshot shows 30 hours of the same records (re-timed), so that time has a shape.
    let history_html = dir.join("cli-report-history.html");
    let o = cli(&[
        "report",
        "--by",
        "business_unit,service_account",
        "--period",
        "hour",
        "--html",
        p(&history_html),
        p(&spike_history()),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let png = integration::envoy::repo_root().join("target/cli-report.png");
    let _ = std::fs::remove_file(&png);
    let shot = chromium_cmd(&profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", history_html.display()))
        .output()
        .unwrap();
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "screenshot of {} bytes",
        bytes.len()
    );
}

fn python() -> PathBuf {
    let py = integration::envoy::repo_root().join(".venv-cli/bin/python");
    assert!(
        py.exists(),
        "chDB is needed for the SQL test: run `make cli-setup` (creates .venv-cli with chdb)"
    );
    py
}

fn chdb(log: &Path, spikes_log: Option<&Path>) -> Value {
    let root = integration::envoy::repo_root();
    let mut c = Command::new(python());
    c.arg(root.join("cli/tests/chdb_queries.py"))
        .arg(root.join("cli/sql"))
        .arg(log);
    if let Some(s) = spikes_log {
        c.arg(s);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn clickhouse_queries_equal_the_report_to_the_cent() {
    let l = logs();
    let history = spike_history();
    let sql = chdb(&l.sidecar, Some(&history));
    let report = json_out(&[
        "report",
        "--by",
        "business_unit,user",
        "--period",
        "day",
        "--format",
        "json",
        p(&l.sidecar),
    ]);
    assert_eq!(num(&sql["lines"]["records"]), num(&report["input"]["records"]));
    let rows = report["chargeback"].as_array().unwrap();
    let srows = sql["chargeback"].as_array().unwrap();
    assert_eq!(srows.len(), rows.len(), "{sql:#}");
    for (s, r) in srows.iter().zip(rows) {
        assert_eq!(
            s["business_unit"].as_str().unwrap(),
            r["key"]["business_unit"].as_str().unwrap_or("")
        );
        assert_eq!(s["user"].as_str().unwrap(), r["key"]["user"].as_str().unwrap_or(""));
        assert!(r["period_start"]
            .as_str()
            .unwrap()
            .starts_with(&s["period_start"].as_str().unwrap()[..10]));
        for (a, b) in [
            ("calls", "calls"),
            ("attributed", "attributed"),
            ("rejected", "rejected"),
            ("would_reject", "would_reject"),
            ("input", "input_tokens"),
            ("cached_input", "cached_input_tokens"),
            ("output", "output_tokens"),
            ("reasoning", "reasoning_tokens"),
            ("unpriced_calls", "unpriced_calls"),
            ("usage_missing", "usage_missing"),
            ("usage_partial", "usage_partial"),
        ] {
            assert_eq!(num(&s[a]), num(&r[b]), "{a}: {s} vs {r}");
        }
        assert_eq!(cents(num(&s["cost"])), cents(num(&r["cost_usd"])), "{s} vs {r}");
        assert!((num(&s["cost"]) - num(&r["cost_usd"])).abs() < 1e-9, "{s} vs {r}");
    }
    let rej: Vec<(String, String, f64)> = report["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["decision"].as_str().unwrap().into(),
                r["reason"].as_str().unwrap().into(),
                num(&r["calls"]),
            )
        })
        .collect();
    let srej: Vec<(String, String, f64)> = sql["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["decision"].as_str().unwrap().into(),
                r["reason"].as_str().unwrap().into(),
                num(&r["calls"]),
            )
        })
        .collect();
    assert_eq!(rej, srej);

    // Spikes: the same owners and windows.
    let spikes = json_out(&["spikes", "--format", "json", p(&history)]);
    let cli_spikes: Vec<(String, String)> = spikes["spikes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["owner"].as_str().unwrap().into(),
                s["window_start"].as_str().unwrap().into(),
            )
        })
        .collect();
    let sql_spikes: Vec<(String, String)> = sql["spikes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["owner"].as_str().unwrap().into(),
                s["window_start"].as_str().unwrap().replace(' ', "T") + "Z",
            )
        })
        .collect();
    assert!(!cli_spikes.is_empty());
    assert_eq!(cli_spikes, sql_spikes, "{spikes:#}\n{sql:#}");
}

/// 30 hours of history made of the Envoy-written records, re-timed: every business unit calls a
/// few times an hour; in hour 26 research calls 40 times as often.
fn spike_history() -> PathBuf {
    // Made once: tests run in parallel and must not rewrite a file another one is reading.
    static HISTORY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HISTORY.get_or_init(make_history).clone()
}

fn make_history() -> PathBuf {
    let l = logs();
    let path = out_dir().join("history.log");
    let lines: Vec<String> = std::fs::read_to_string(&l.sidecar)
        .unwrap()
        .lines()
        .filter(|x| x.contains("\"decision\":\"attributed\""))
        .map(str::to_string)
        .collect();
    let by_bu = |bu: &str| -> Vec<&String> {
        lines
            .iter()
            .filter(|x| x.contains(&format!("\"business_unit\":\"{bu}\"")))
            .collect()
    };
    let mut out = String::new();
    let base = 1_793_491_200i64; // 2026-11-01T00:00:00Z
    for hour in 0..30i64 {
        for bu in ["finance", "research", "platform"] {
            let copies = if bu == "research" && hour == 26 {
                40
            } else {
                3 + (hour % 3)
            };
            for (i, line) in by_bu(bu)
                .iter()
                .cycle()
                .take(copies as usize * by_bu(bu).len())
                .enumerate()
            {
                let t = base + hour * 3600 + (i as i64 * 7) % 3600;
                out.push_str(&retime(line, t));
                out.push('\n');
            }
        }
    }
    std::fs::write(&path, out).unwrap();
    path
}

fn retime(line: &str, unix: i64) -> String {
    let i = line.find("\"start_time\":\"").unwrap() + "\"start_time\":\"".len();
    let j = line[i..].find('"').unwrap() + i;
    let days = unix / 86400;
    let secs = unix % 86400;
    // 2026-11-01 is day 20758 of the Unix epoch.
    let day_of_month = days - 20758 + 1;
    let stamp = format!(
        "2026-11-{day_of_month:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    format!("{}{}{}", &line[..i], stamp, &line[j..])
}

#[test]
fn spikes_point_at_the_workload() {
    let history = spike_history();
    let o = cli(&["spikes", p(&history)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("1 spike(s) by business_unit"), "{text}");
    assert!(
        text.contains("2026-11-02T02:00:00Z .. 2026-11-02T03:00:00Z  business_unit=research  spike in tokens and cost"),
        "{text}"
    );
    assert!(text.contains("sessions: s-carol-1"), "{text}");
    assert!(text.contains("users: carol"), "{text}");
    assert!(text.contains("models: claude-sonnet-4-5"), "{text}");
    let j = json_out(&[
        "spikes",
        "--by",
        "business_unit",
        "--window",
        "1h",
        "--format",
        "json",
        p(&history),
    ]);
    let s = &j["spikes"][0];
    assert_eq!(s["owner"], "research");
    assert!(s["tokens_baseline"]["score"].as_f64().unwrap() > 3.5);
    // By service account: the platform batch never spikes, research has no service account.
    let o = cli(&["spikes", "--by", "service_account", p(&history)]);
    assert!(stdout(&o).contains("service_account=(none)"), "{}", stdout(&o));
    // A higher threshold and a day window find nothing.
    let o = cli(&["spikes", "--window", "1d", p(&history)]);
    assert!(stdout(&o).starts_with("no spikes"), "{}", stdout(&o));
}

#[test]
fn trace_follows_a_call_across_two_hops() {
    let l = logs();
    let id = l.id("alice-chat-stream");
    let j = json_out(&["trace", "--format", "json", &id, p(&l.sidecar), p(&l.egress)]);
    let hops = j["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2, "{j:#}");
    assert!(hops[0]["input"].as_str().unwrap().ends_with("sidecar.log"));
    assert!(hops[1]["input"].as_str().unwrap().ends_with("egress.log"));
    assert_eq!(hops[0]["identity"]["user"], "alice");
    assert_eq!(hops[1]["identity"]["business_unit"], "finance");
    assert!(hops[1]["sources"]
        .as_str()
        .unwrap()
        .contains("business_unit=header:x-ai-business-unit"));
    assert_eq!(hops[0]["input_tokens"], hops[1]["input_tokens"]);
    assert_eq!(j["decided_by_hop"], 1);
    let findings: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        !findings.iter().any(|f| f.contains("disagree") || f.contains("missing")),
        "{findings:?}"
    );
    assert!(
        findings.iter().any(|f| f.contains("2 hops priced this call")),
        "{findings:?}"
    );
    let text = stdout(&cli(&["trace", &id, p(&l.sidecar), p(&l.egress)]));
    assert!(text.contains("decided at hop 1"), "{text}");
    assert!(text.contains("user=alice (from header:x-user-id)"), "{text}");

    // Rejected at the sidecar: one record, and no downstream hop is expected.
    let id = l.id("rejected-spoof");
    let j = json_out(&["trace", "--format", "json", &id, p(&l.sidecar), p(&l.egress)]);
    assert_eq!(j["hops"].as_array().unwrap().len(), 1);
    assert_eq!(j["hops"][0]["decision"], "rejected");
    assert_eq!(j["findings"], json!([]));

    // A call that reached the egress gateway without passing the sidecar.
    let id = l.id("egress-only");
    let j = json_out(&["trace", "--format", "json", &id, p(&l.sidecar), p(&l.egress)]);
    assert!(
        j["findings"][0].as_str().unwrap().starts_with("hop missing upstream"),
        "{j:#}"
    );

    // An attributed call whose downstream log lost it, and a hop that disagrees.
    let id = l.id("bob-chat");
    // The egress hop, which does not trust the sidecar, gave the call its own correlation ID:
    // its line is the one with the same x-request-id.
    let j = json_out(&["trace", "--format", "json", &id, p(&l.sidecar), p(&l.egress)]);
    assert_eq!(j["hops"][1]["linked_by_request_id"], true, "{j:#}");
    let request_id = j["hops"][0]["request_id"].as_str().unwrap().to_string();
    let egress = std::fs::read_to_string(&l.egress).unwrap();
    let without: String = egress
        .lines()
        .filter(|x| !x.contains(&request_id))
        .map(|x| format!("{x}\n"))
        .collect();
    let cut = out_dir().join("egress-without.log");
    std::fs::write(&cut, without).unwrap();
    let j = json_out(&["trace", "--format", "json", &id, p(&l.sidecar), p(&cut)]);
    assert!(
        j["findings"][0].as_str().unwrap().starts_with("hop missing downstream"),
        "{j:#}"
    );
    assert!(
        j["findings"][0].as_str().unwrap().contains("attributed the call"),
        "{j:#}"
    );
    let tampered: String = egress
        .lines()
        .map(|x| {
            if x.contains(&request_id) {
                x.replace(
                    "\"ai_attribution.business_unit\":\"finance\"",
                    "\"ai_attribution.business_unit\":\"research\"",
                )
                .replace(
                    "\"gen_ai.usage.output_tokens\":12",
                    "\"gen_ai.usage.output_tokens\":999",
                )
            } else {
                x.to_string()
            }
        })
        .map(|x| x + "\n")
        .collect();
    let bad = out_dir().join("egress-tampered.log");
    std::fs::write(&bad, tampered).unwrap();
    let j = json_out(&["trace", "--format", "json", &id, p(&l.sidecar), p(&bad)]);
    let findings = j["findings"].to_string();
    assert!(
        findings.contains("hops disagree on business_unit: hop 1 finance, hop 2 research"),
        "{findings}"
    );
    assert!(findings.contains("hops disagree on tokens"), "{findings}");

    // Unknown id: exit 1 with a message.
    let o = cli(&["trace", "no-such-id", p(&l.sidecar)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no record has correlation id \"no-such-id\""),
        "{}",
        stderr(&o)
    );
}

/// Envoy lines mixed with everything a log can hold that is not a record.
fn messy_log() -> (Vec<u8>, usize) {
    let l = logs();
    let envoy = std::fs::read_to_string(&l.sidecar).unwrap();
    let records = envoy.lines().filter(|x| !x.contains("\"record\":null")).count();
    let mut data = Vec::new();
    let first = envoy.lines().next().unwrap();
    data.extend_from_slice(b"\n   \n");
    data.extend_from_slice(b"[2026-12-01 10:00:00.000][1][info][main] starting envoy\n");
    data.extend_from_slice(b"{\"level\":\"info\",\"msg\":\"some other service\"}\n");
    data.extend_from_slice(b"[1,2,3]\n");
    data.extend_from_slice(&first.as_bytes()[..first.len() / 2]);
    data.push(b'\n');
    // A record with almost every key missing still counts.
    data.extend_from_slice(b"{\"record\":{\"@type\":\"type.googleapis.com/google.protobuf.Struct\",\"value\":{\"ai_attribution.decision\":\"would_reject\",\"ai_attribution.reason\":\"missing:user\"}}}\n");
    // A flat-keys-only line (no record).
    data.extend_from_slice(b"{\"start_time\":\"2026-12-01T10:00:00.000Z\",\"decision\":\"attributed\",\"business_unit\":\"flat\",\"user\":\"erin\",\"input_tokens\":\"5\",\"output_tokens\":\"6\",\"cost_usd\":\"0.25\",\"record\":null}\n");
    data.extend_from_slice(b"\xff\xfe\xfd not utf-8\n");
    // A 10 MB line.
    data.extend(vec![b'x'; 10 * 1024 * 1024]);
    data.push(b'\n');
    let mut big = b"{\"record\":{\"value\":{\"ai_attribution.decision\":\"attributed\",\"pad\":\"".to_vec();
    big.extend(vec![b'y'; 10 * 1024 * 1024]);
    big.extend_from_slice(b"\"}}}\n");
    data.extend(big);
    data.extend_from_slice(envoy.as_bytes());
    // A last line cut short, without a newline.
    data.extend_from_slice(&first.as_bytes()[..first.len() - 10]);
    (data, records + 2)
}

#[test]
fn bad_input_is_counted_never_fatal() {
    let (data, records) = messy_log();
    let path = out_dir().join("messy.log");
    std::fs::write(&path, &data).unwrap();
    let j = json_out(&["report", "--by", "business_unit", "--format", "json", p(&path)]);
    let input = &j["input"];
    assert_eq!(num(&input["records"]) as usize, records, "{input}");
    let not = &input["not_records"];
    assert_eq!(not["blank"], 2, "{input}");
    assert_eq!(not["malformed"], 4, "{input}");
    assert_eq!(not["foreign"], 2, "{input}");
    assert_eq!(not["not_model_call"], 4, "{input}");
    assert_eq!(not["oversized"], 2, "{input}");
    let flat = j["chargeback"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"]["business_unit"] == "flat")
        .unwrap();
    assert_eq!(flat["input_tokens"], 5);
    assert_eq!(flat["cost_usd"], 0.25);
    assert_eq!(
        j["rejections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["decision"] == "would_reject")
            .count(),
        1
    );
    // Reported on stderr too, exit 0.
    let o = cli(&["report", p(&path)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("lines were not records"), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 lines over the size limit"), "{}", stderr(&o));

    // The same from a .gz file and from standard input.
    let gz = out_dir().join("messy.log.gz");
    let mut enc = gzip_writer(&gz);
    enc.write_all(&data).unwrap();
    drop(enc);
    let jz = json_out(&["report", "--by", "business_unit", "--format", "json", p(&gz)]);
    assert_eq!(jz["chargeback"], j["chargeback"]);
    let o = cli_stdin(&["report", "--by", "business_unit", "--format", "json", "-"], &data);
    assert_eq!(o.status.code(), Some(0));
    let js: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(js["chargeback"], j["chargeback"]);
    assert_eq!(js["input"]["not_records"], j["input"]["not_records"]);

    // A .gz cut short: the lines before the cut count, the cut is reported.
    let bytes = std::fs::read(&gz).unwrap();
    let cut = out_dir().join("cut.log.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = cli(&["report", "--format", "json", p(&cut)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("read error"), "{}", stderr(&o));

    // Every command survives the messy log.
    for args in [
        vec!["spikes", p(&path)],
        vec!["trace", "x", p(&path)],
        vec!["report", "--format", "focus", p(&path)],
    ] {
        let o = cli(&args);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

fn gzip_writer(path: &Path) -> impl Write {
    // The test writes gzip through the system's gzip so that the CLI's reader meets a foreign writer.
    struct Gz(std::process::Child);
    impl Write for Gz {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.stdin.as_mut().unwrap().write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for Gz {
        fn drop(&mut self) {
            drop(self.0.stdin.take());
            let _ = self.0.wait();
        }
    }
    let file = std::fs::File::create(path).unwrap();
    Gz(Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(file)
        .spawn()
        .unwrap())
}

#[test]
fn empty_and_unreadable_inputs() {
    let empty = out_dir().join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let j = json_out(&["report", "--format", "json", p(&empty)]);
    assert_eq!(j["input"]["lines"], 0);
    assert_eq!(j["chargeback"], json!([]));
    let o = cli(&["report", p(&empty)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("no records in 0 lines"), "{}", stderr(&o));
    let o = cli_stdin(&["report", "-"], b"");
    assert_eq!(o.status.code(), Some(0));
    let o = cli(&["spikes", p(&empty)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("no spikes"));
    let o = cli(&["trace", "x", p(&empty)]);
    assert_eq!(o.status.code(), Some(1));

    let dir = out_dir();
    for cmd in [vec!["report"], vec!["spikes"], vec!["trace", "x"]] {
        let mut args = cmd.clone();
        args.push("/nonexistent/access.log");
        let o = cli(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains("/nonexistent/access.log: cannot read"),
            "{}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty());
        let mut args = cmd.clone();
        args.push(p(&dir));
        let o = cli(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));
    }
    let o = cli(&["report", "-", "-"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let l = logs();
    let log = p(&l.sidecar);
    for (args, want) in [
        (vec!["report", "--period", "week", log], "invalid value 'week'"),
        (vec!["report", "--format", "xml", log], "invalid value 'xml'"),
        (vec!["report", "--by", "a.b", log], "not a dimension name"),
        (vec!["report", "--by", "user,user", log], "named twice"),
        (vec!["report", "--by", "", log], "empty name"),
        (vec!["report", "--since", "yesterday", log], "--since \"yesterday\""),
        (
            vec!["report", "--since", "2026-12-02", "--until", "2026-12-01", log],
            "--since must be before --until",
        ),
        (vec!["report"], "required"),
        (vec!["report", "--nope", log], "unexpected argument"),
        (vec!["spikes", "--window", "0h", log], "--window"),
        (vec!["spikes", "--window", "1w", log], "--window"),
        (vec!["spikes", "--threshold", "-1", log], "--threshold"),
        (vec!["spikes", "--baseline", "1", log], "--baseline"),
        (vec!["trace", "", log], "empty"),
        (vec!["trace"], "required"),
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec![], "Usage"),
    ] {
        let o = cli(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: want {want:?} in {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
    for cmd in ["check", "report", "trace", "spikes"] {
        let o = cli(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains("Examples:"), "{cmd}: {}", stdout(&o));
    }
}

#[test]
fn since_and_until_select_by_start_time() {
    let history = spike_history();
    let j = json_out(&[
        "report",
        "--period",
        "hour",
        "--since",
        "2026-11-01T05:00:00Z",
        "--until",
        "2026-11-01T07:00:00Z",
        "--format",
        "json",
        p(&history),
    ]);
    let periods: std::collections::BTreeSet<&str> = j["chargeback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["period_start"].as_str().unwrap())
        .collect();
    assert_eq!(
        periods.into_iter().collect::<Vec<_>>(),
        ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"]
    );
    assert!(num(&j["input"]["outside_range"]) > 0.0);
    let j = json_out(&[
        "report",
        "--period",
        "month",
        "--since",
        "2026-11-02",
        "--format",
        "json",
        p(&history),
    ]);
    assert_eq!(j["chargeback"][0]["period_start"], "2026-11-01T00:00:00Z");
    assert_eq!(j["chargeback"][0]["period_end"], "2026-12-01T00:00:00Z");
}
