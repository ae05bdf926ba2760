//! The CLI on agents' tool calls: `report` counts them and groups them by tool, service account
//! and session, `spikes --measure calls` finds a runaway session, `trace` shows one call, the SQL
//! in `cli/sql/` gives the same numbers in chDB, and the outputs shown in `cli/README.md` and
//! `cli/TOOL_CALLS_WALKTHROUGH.md` are what the binary prints.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod tool_log;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use tool_log::{root, tool_log, RUNAWAY_HOUR, START_UNIX};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ai-attribution"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_out(args: &[&str]) -> Value {
    let o = cli(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", stdout(&o)))
}

fn log() -> &'static str {
    tool_log().path.to_str().unwrap()
}

/// Every line of the log, parsed by serde_json (not by the CLI).
fn lines() -> Vec<Value> {
    std::fs::read_to_string(log())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rec(v: &Value) -> &Value {
    &v["record"]["value"]
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    rec(v)[key].as_str().unwrap_or("")
}

#[test]
fn the_log_holds_the_filters_tool_call_records() {
    let all = lines();
    assert_eq!(all.len(), tool_log().lines);
    assert!(all.len() > 500, "{}", all.len());
    let mut decisions: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &all {
        assert_eq!(s(v, "ai_attribution.event"), "tool_call");
        // The flat keys repeat the record, as the bootstrap's format writes them.
        assert_eq!(v["decision"], rec(v)["ai_attribution.decision"]);
        assert_eq!(
            v["tool"],
            rec(v).get("gen_ai.tool.name").cloned().unwrap_or(Value::Null)
        );
        *decisions.entry(s(v, "ai_attribution.decision")).or_default() += 1;
    }
    assert_eq!(
        decisions.keys().copied().collect::<Vec<_>>(),
        ["attributed", "exempt", "rejected"]
    );
    // initialize and tools/list are not in mcp.methods: attributed when the agent says who it is,
    // exempt when it does not; a tool call without a service account is refused.
    let refused: Vec<&Value> = all
        .iter()
        .filter(|v| s(v, "ai_attribution.decision") == "rejected")
        .collect();
    assert_eq!(refused.len(), 5);
    for v in refused {
        assert_eq!(v["status"], 403);
        assert_eq!(s(v, "ai_attribution.reason"), "missing:service_account");
        assert_eq!(s(v, "mcp.method.name"), "tools/call");
    }
    // The session dimension comes from the MCP session, once the server has issued one.
    let call = all.iter().find(|v| s(v, "gen_ai.tool.name") == "get_invoice").unwrap();
    assert_eq!(s(call, "session.id"), s(call, "mcp.session.id"));
    assert!(s(call, "ai_attribution.sources").contains("session=mcp:session"));
}

#[test]
fn report_counts_tool_calls_by_any_record_field() {
    let all = lines();
    let j = json_out(&[
        "report",
        "--by",
        "tool,service_account,session",
        "--format",
        "json",
        log(),
    ]);
    assert_eq!(j["input"]["records"], all.len());
    assert_eq!(j["totals"]["calls"], all.len());
    assert_eq!(j["totals"]["tool_calls"], all.len());
    // An independent sum of the log, per (day, tool, service account, session).
    let mut want: BTreeMap<(String, String, String, String), [u64; 5]> = BTreeMap::new();
    for v in &all {
        let day = v["start_time"].as_str().unwrap()[..10].to_string();
        let key = (
            day,
            s(v, "gen_ai.tool.name").to_string(),
            s(v, "ai_attribution.service_account").to_string(),
            s(v, "session.id").to_string(),
        );
        let e = want.entry(key).or_default();
        e[0] += 1;
        match s(v, "ai_attribution.decision") {
            "attributed" => e[1] += 1,
            "rejected" => e[2] += 1,
            "exempt" => e[3] += 1,
            other => panic!("decision {other}"),
        }
        e[4] += u64::from(!s(v, "error.type").is_empty());
    }
    let rows = j["chargeback"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    for row in rows {
        let k = |n: &str| row["key"][n].as_str().unwrap_or("").to_string();
        let key = (
            row["period_start"].as_str().unwrap()[..10].to_string(),
            k("tool"),
            k("service_account"),
            k("session"),
        );
        let got = [
            row["calls"].as_u64().unwrap(),
            row["attributed"].as_u64().unwrap(),
            row["rejected"].as_u64().unwrap(),
            row["exempt"].as_u64().unwrap(),
            row["tool_errors"].as_u64().unwrap(),
        ];
        assert_eq!(Some(&got), want.get(&key), "{key:?}");
    }
    // Grouping by event and MCP method; the table shows tool-call columns, not token ones.
    let o = cli(&["report", "--by", "event,mcp_method", "--period", "month", log()]);
    let t = stdout(&o);
    assert!(t.contains("exempt  tool_errors"), "{t}");
    assert!(!t.contains("cost_usd") && !t.contains("Gaps"), "{t}");
    assert!(t.contains("tool_call  tools/call"), "{t}");
    // --event keeps one kind of record.
    let j = json_out(&["report", "--event", "model_call", "--format", "json", log()]);
    assert_eq!(j["input"]["records"], 0);
    assert_eq!(j["input"]["other_event"], all.len());
    // FOCUS rows are charges: tool calls are none.
    let o = cli(&["report", "--format", "focus", log()]);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
}

#[test]
fn spikes_in_calls_point_at_the_runaway_session() {
    let l = tool_log();
    let args = [
        "spikes",
        "--event",
        "tool_call",
        "--measure",
        "calls",
        "--by",
        "tool",
        "--format",
        "json",
        log(),
    ];
    let j = json_out(&args);
    let spikes = j["spikes"].as_array().unwrap();
    assert_eq!(spikes.len(), 1, "{j:#}");
    let s = &spikes[0];
    assert_eq!(s["owner"], "fetch_url");
    assert_eq!(
        s["window_start"].as_str().unwrap(),
        tool_log::rfc3339((START_UNIX + RUNAWAY_HOUR * 3600) * 1000).replace(".000Z", "Z")
    );
    assert_eq!(s["calls_spike"], true);
    assert_eq!(
        (s["tokens_spike"].as_bool(), s["cost_spike"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(s["service_accounts"][0]["name"], "research-agent");
    assert_eq!(s["sessions"][0]["name"], l.runaway_session.as_str());
    assert_eq!(s["sessions"][0]["calls"], l.runaway_calls);
    assert_eq!(s["tools"][0]["name"], "fetch_url");
    assert_eq!(s["tools"].as_array().unwrap().len(), 1);
    assert_eq!(s["requested_tools"].as_array().unwrap().len(), 0);
    // Tool calls have no tokens or cost: the default measures see nothing.
    let o = cli(&["spikes", "--by", "tool", log()]);
    assert!(stdout(&o).starts_with("no spikes"), "{}", stdout(&o));
    // By service account the same window stands out.
    let j = json_out(&[
        "spikes",
        "--measure",
        "calls",
        "--by",
        "service_account",
        "--format",
        "json",
        log(),
    ]);
    let owners: Vec<&str> = j["spikes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["research-agent"]);
}

#[test]
fn trace_shows_one_tool_call() {
    let l = tool_log();
    let o = cli(&["trace", &l.runaway_correlation_id, log()]);
    let t = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("tool_call tools/call tool fetch_url (JSON-RPC id 103, MCP session"),
        "{t}"
    );
    assert!(t.contains(&l.runaway_session), "{t}");
    assert!(
        t.contains("service_account=research-agent (from header:x-service-account)"),
        "{t}"
    );
    assert!(t.contains("outcome: error tool_error"), "{t}");
    assert!(!t.contains("usage"), "{t}");
    let j = json_out(&["trace", "--format", "json", &l.runaway_correlation_id, log()]);
    assert_eq!(j["hops"][0]["mcp_method"], "tools/call");
    assert_eq!(j["hops"][0]["mcp_session"], l.runaway_session.as_str());
}

fn python() -> std::path::PathBuf {
    let py = root().join(".venv-cli/bin/python");
    assert!(
        py.exists(),
        "chDB is needed for the SQL test: run `make cli-setup` (creates .venv-cli with chdb)"
    );
    py
}

/// A spike: owner, window start, calls, and the (name, calls) of its service accounts and sessions.
type SpikeRow = (String, String, u64, Vec<(String, u64)>, Vec<(String, u64)>);

#[test]
fn clickhouse_queries_equal_the_cli_on_tool_calls() {
    let o = Command::new(python())
        .arg(root().join("cli/tests/chdb_queries.py"))
        .arg(root().join("cli/sql"))
        .arg(log())
        .arg("--tool-calls")
        .arg(log())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sql: Value = serde_json::from_slice(&o.stdout).unwrap();

    // report --event tool_call --by tool,service_account,session --period day
    let j = json_out(&[
        "report",
        "--event",
        "tool_call",
        "--by",
        "tool,service_account,session",
        "--period",
        "day",
        "--format",
        "json",
        log(),
    ]);
    let rows = j["chargeback"].as_array().unwrap();
    let srows = sql["tool_calls"].as_array().unwrap();
    assert_eq!(rows.len(), srows.len());
    for (r, s) in rows.iter().zip(srows) {
        for k in ["tool", "service_account", "session"] {
            assert_eq!(r["key"][k].as_str().unwrap_or(""), s[k].as_str().unwrap(), "{r} vs {s}");
        }
        assert!(r["period_start"]
            .as_str()
            .unwrap()
            .starts_with(&s["period_start"].as_str().unwrap()[..10]));
        for k in [
            "calls",
            "attributed",
            "rejected",
            "would_reject",
            "exempt",
            "tool_errors",
        ] {
            assert_eq!(
                r[k].as_u64(),
                s[k].as_str().and_then(|x| x.parse().ok()).or(s[k].as_u64()),
                "{k}: {r} vs {s}"
            );
        }
    }
    // The chargeback query counts tool calls as the CLI does.
    assert_eq!(sql["lines"]["records"].as_u64(), j["input"]["records"].as_u64());

    // spikes --event tool_call --measure calls --by tool, with the service accounts and sessions.
    let cli_spikes = json_out(&[
        "spikes",
        "--event",
        "tool_call",
        "--measure",
        "calls",
        "--by",
        "tool",
        "--format",
        "json",
        log(),
    ]);
    let ours: Vec<SpikeRow> = cli_spikes["spikes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let list = |k: &str| -> Vec<(String, u64)> {
                s[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (e["name"].as_str().unwrap().to_string(), e["calls"].as_u64().unwrap()))
                    .collect()
            };
            (
                s["owner"].as_str().unwrap().to_string(),
                s["window_start"].as_str().unwrap().to_string(),
                s["calls"].as_u64().unwrap(),
                list("service_accounts"),
                list("sessions"),
            )
        })
        .collect();
    let theirs: Vec<SpikeRow> = sql["tool_call_spikes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let list = |k: &str| -> Vec<(String, u64)> {
                s[k].as_array()
                    .unwrap()
                    .iter()
                    .take(5)
                    .map(|e| {
                        let n = &e[1];
                        (
                            e[0].as_str().unwrap().to_string(),
                            n.as_u64().or_else(|| n.as_str().and_then(|x| x.parse().ok())).unwrap(),
                        )
                    })
                    .collect()
            };
            let calls = &s["calls"];
            (
                s["tool"].as_str().unwrap().to_string(),
                s["window_start"].as_str().unwrap().replace(' ', "T") + "Z",
                calls
                    .as_u64()
                    .or_else(|| calls.as_str().and_then(|x| x.parse().ok()))
                    .unwrap(),
                list("service_accounts"),
                list("sessions"),
            )
        })
        .collect();
    assert!(!ours.is_empty());
    assert_eq!(ours, theirs, "{cli_spikes:#}\n{sql:#}");
}

/// Splits a command line as a shell would for the simple words the docs use: spaces, and
/// single or double quotes around a word.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, ' ') => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Every ```console block of `doc` that is one `$ ai-attribution ...` command and its output:
/// the output shown is what the binary prints (run from the repository root).
fn check_doc(doc: &Path) -> usize {
    let text = std::fs::read_to_string(doc).unwrap();
    let mut checked = 0;
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```console\n") {
        let body = &rest[start + 11..];
        let end = body.find("\n```").unwrap();
        let block = &body[..end];
        rest = &body[end + 4..];
        let mut lines = block.lines();
        let Some(first) = lines.next().and_then(|l| l.strip_prefix("$ ai-attribution ")) else {
            continue;
        };
        let shown: Vec<&str> = lines.collect();
        if shown.iter().any(|l| l.starts_with("$ ")) || shown.is_empty() {
            continue;
        }
        let args = words(first);
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = cli(&arg_refs);
        let got = stdout(&o);
        let want = shown.join("\n");
        assert_eq!(
            got.trim_end(),
            want.trim_end(),
            "{}: the output of `ai-attribution {first}` is not what the doc shows",
            doc.display()
        );
        checked += 1;
    }
    checked
}

#[test]
fn the_docs_show_what_the_binary_prints() {
    let _ = tool_log();
    let walkthrough = check_doc(&root().join("cli/TOOL_CALLS_WALKTHROUGH.md"));
    assert!(walkthrough >= 4, "{walkthrough} commands checked in the walkthrough");
    let readme = check_doc(&root().join("cli/README.md"));
    assert!(readme >= 3, "{readme} commands checked in the README");
}
