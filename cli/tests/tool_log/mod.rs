//! An access log of agents' tool calls, as the shipped standalone bootstrap (`envoy/envoy.yaml`)
//! writes it: 30 hours of three agents working through MCP sessions (initialize, tools/list, a
//! few tools/call each), a client without a service account that is refused, and, in hour 26,
//! one research-agent session stuck in a loop calling `fetch_url`.
//!
//! Every record is the filter's own: each request goes through `Call::start`, the body, the
//! server's answer and `finish` with the plugin configuration read from `envoy/envoy.yaml`, and
//! the line is rendered from that file's `json_format` (the flat keys and the structured record),
//! keys sorted as Envoy writes them. A seeded generator makes the log the same on every run.

#![allow(dead_code)]

use ai_attribution::call::{Call, Effect, VmState};
use ai_attribution::config::Config;
use ai_attribution::host::{view, HeaderList, MapAttributes};
use ai_attribution::record::{dimension_otel_name, Key, Record, RecordValue};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

/// 2026-11-01T00:00:00Z.
pub const START_UNIX: i64 = 1_793_491_200;
/// The hour (from the start) in which the runaway session loops.
pub const RUNAWAY_HOUR: i64 = 26;
pub const HOURS: i64 = 30;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The written log and a few facts about it.
pub struct ToolLog {
    pub path: PathBuf,
    pub lines: usize,
    /// The runaway session's MCP session id and the correlation id of one of its calls.
    pub runaway_session: String,
    pub runaway_correlation_id: String,
    pub runaway_calls: usize,
}

/// The log, written once per test binary to `target/cli-test/tool-calls.log`.
pub fn tool_log() -> &'static ToolLog {
    static LOG: OnceLock<ToolLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = root().join("target/cli-test");
        std::fs::create_dir_all(&dir).expect("create target/cli-test");
        write(&dir.join("tool-calls.log"))
    })
}

/// xorshift64*: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::new();
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of milliseconds since the epoch.
pub fn rfc3339(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// What `envoy/envoy.yaml` says: the plugin configuration, the access-log format, node metadata.
struct Bootstrap {
    config: Rc<Config>,
    format: Map<String, Value>,
    node_metadata: Map<String, Value>,
}

fn bootstrap() -> Bootstrap {
    let text = std::fs::read_to_string(root().join("envoy/envoy.yaml")).expect("envoy/envoy.yaml");
    let doc = Value::deserialize(serde_norway::Deserializer::from_str(&text)).expect("YAML");
    let hcm = &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let format = hcm["access_log"][0]["typed_config"]["log_format"]["json_format"]
        .as_object()
        .expect("json_format")
        .clone();
    let plugin = hcm["http_filters"]
        .as_array()
        .expect("http_filters")
        .iter()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("the wasm filter");
    let value = plugin["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .expect("configuration.value");
    Bootstrap {
        config: Rc::new(Config::parse(value.as_bytes()).expect("the shipped config parses")),
        format,
        node_metadata: doc["node"]["metadata"].as_object().cloned().unwrap_or_default(),
    }
}

/// One request to the MCP endpoint and the server's answer.
struct Exchange {
    at_ms: i64,
    headers: Vec<(String, String)>,
    body: String,
    /// The JSON-RPC answer; `issued_session` is set on the answer to initialize.
    answer: String,
    issued_session: Option<String>,
}

fn record_value(v: &RecordValue<'_>) -> Value {
    match v {
        RecordValue::Text(t) => json!(t),
        RecordValue::Count(n) => json!(n),
        RecordValue::Flag(b) => json!(b),
        RecordValue::Usd(c) => json!(c),
    }
}

/// The structured record as `%FILTER_STATE(wasm.ai_attribution:TYPED)%` renders it.
fn structured(record: &Record) -> Value {
    let mut m = Map::new();
    for (key, value) in record.entries() {
        let name = match key {
            Key::Field(f) => f.otel_name().to_string(),
            Key::Dimension(i) => dimension_otel_name(record.dimensions.get(i).map_or("", |(n, _)| n.as_str())),
        };
        m.insert(name, record_value(&value));
    }
    json!({"@type": "type.googleapis.com/google.protobuf.Struct", "value": m})
}

struct Writer {
    boot: Bootstrap,
    vm: VmState,
    rng: Rng,
    /// `(start time, line)`; written in time order.
    lines: Vec<(i64, String)>,
}

impl Writer {
    /// Runs one exchange through the filter and renders its access-log line; returns the
    /// record's correlation id.
    fn run(&mut self, x: &Exchange) -> String {
        let cfg = self.boot.config.clone();
        let request_id = self.rng.uuid();
        let mut pairs = vec![
            (":method".to_string(), "POST".to_string()),
            (":path".to_string(), "/mcp".to_string()),
            (":authority".to_string(), "mcp.internal".to_string()),
            (":scheme".to_string(), "http".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("accept".to_string(), "application/json, text/event-stream".to_string()),
            ("x-request-id".to_string(), request_id.clone()),
            ("content-length".to_string(), x.body.len().to_string()),
        ];
        pairs.extend(x.headers.iter().cloned());
        let headers: HeaderList = pairs.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect();
        let mut host = MapAttributes::default();
        for (k, v) in &self.boot.node_metadata {
            if let Some(s) = v.as_str() {
                host.set(&format!("xds.node.metadata.{k}"), s.as_bytes());
            }
        }
        let (call, step) = Call::start(&cfg, &view(&headers), false, &mut host, &mut self.vm);
        let mut call = call.expect("a request to /mcp is a tool call");
        let refused = |s: &ai_attribution::call::Step| {
            s.effects.iter().find_map(|e| match e {
                Effect::LocalReply(r) => Some(r.status),
                _ => None,
            })
        };
        let mut status = refused(&step);
        if status.is_none() {
            let step = call.on_request_body(x.body.as_bytes(), true, &mut host);
            status = refused(&step);
        }
        let details = if status.is_some() {
            "ai_attribution_rejected"
        } else {
            let mut answer_headers = vec![
                (":status".to_string(), b"200".to_vec()),
                ("content-type".to_string(), b"application/json".to_vec()),
            ];
            if let Some(s) = &x.issued_session {
                answer_headers.push(("mcp-session-id".to_string(), s.as_bytes().to_vec()));
            }
            let _ = call.on_response_headers(&view(&answer_headers), false);
            let _ = call.on_response_body(x.answer.as_bytes(), true);
            "via_upstream"
        };
        let finished = call.finish(&mut host, &mut self.vm);
        let scalars = finished.scalars();
        let scalar = |key: &str| -> Value {
            let want = format!("ai_attribution.{key}");
            scalars
                .iter()
                .find(|(k, _)| *k == want)
                .map_or(Value::Null, |(_, v)| json!(v))
        };
        let duration = 3 + self.rng.below(40);
        let mut line = Map::new();
        for (key, command) in &self.boot.format {
            let command = command.as_str().expect("a format command");
            let value = match command {
                "%START_TIME%" => json!(rfc3339(x.at_ms)),
                "%REQ(:METHOD)%" => json!("POST"),
                "%PATH(NQ)%" => json!("/mcp"),
                "%RESPONSE_CODE%" => json!(status.unwrap_or(200)),
                "%RESPONSE_CODE_DETAILS%" => json!(details),
                "%DURATION%" => json!(duration),
                "%REQ(X-REQUEST-ID)%" => json!(request_id),
                "%FILTER_STATE(wasm.ai_attribution:TYPED)%" => structured(&finished.record),
                other => {
                    let key = other
                        .strip_prefix("%FILTER_STATE(wasm.ai_attribution.")
                        .and_then(|k| k.strip_suffix(":PLAIN)%"))
                        .unwrap_or_else(|| panic!("a format command this generator does not know: {other}"));
                    scalar(key)
                }
            };
            line.insert(key.clone(), value);
        }
        self.lines.push((x.at_ms, Value::Object(line).to_string()));
        finished.record.correlation_id
    }
}

fn rpc(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn result(id: u64, result: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

struct Agent {
    service_account: &'static str,
    business_unit: &'static str,
    tools: &'static [&'static str],
    sessions_per_hour: u64,
}

const AGENTS: [Agent; 3] = [
    Agent {
        service_account: "support-agent",
        business_unit: "support",
        tools: &["search_docs", "search_docs", "get_ticket", "update_ticket"],
        sessions_per_hour: 3,
    },
    Agent {
        service_account: "billing-agent",
        business_unit: "finance",
        tools: &["get_invoice", "get_invoice", "search_docs", "refund_payment"],
        sessions_per_hour: 2,
    },
    Agent {
        service_account: "research-agent",
        business_unit: "research",
        tools: &["fetch_url", "search_docs", "summarize"],
        sessions_per_hour: 2,
    },
];

/// One MCP session: initialize (the server issues the session id), tools/list, then `calls`
/// tools/call of the agent's tools, a few seconds apart. `tool` forces every call's tool.
#[allow(clippy::too_many_arguments)]
fn session(
    w: &mut Writer,
    agent: Option<&Agent>,
    start_ms: i64,
    calls: usize,
    tool: Option<&str>,
    gap_ms: i64,
    error_every: usize,
) -> (String, Vec<String>) {
    let id = w.rng.hex(32);
    let trace = w.rng.hex(32);
    let identity: Vec<(String, String)> = match agent {
        Some(a) => vec![
            ("x-service-account".into(), a.service_account.into()),
            ("x-business-unit".into(), a.business_unit.into()),
        ],
        None => Vec::new(),
    };
    let with = |extra: &[(&str, String)]| -> Vec<(String, String)> {
        let mut h = identity.clone();
        h.push((
            "traceparent".into(),
            format!("00-{trace}-{:016x}-01", start_ms as u64 ^ 0x5a5a),
        ));
        h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        h
    };
    let mut t = start_ms;
    w.run(&Exchange {
        at_ms: t,
        headers: with(&[]),
        body: rpc(
            0,
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "agent", "version": "1.4.2"}}),
        ),
        answer: result(0, json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "corp-tools", "version": "2.1.0"}})),
        issued_session: Some(id.clone()),
    });
    let in_session = with(&[
        ("mcp-session-id", id.clone()),
        ("mcp-protocol-version", "2025-11-25".into()),
    ]);
    t += 300;
    w.run(&Exchange {
        at_ms: t,
        headers: in_session.clone(),
        body: rpc(1, "tools/list", json!({})),
        answer: result(1, json!({"tools": []})),
        issued_session: None,
    });
    let tools: &[&str] = agent.map_or(&["search_docs"], |a| a.tools);
    let mut ids = Vec::new();
    for n in 0..calls {
        t += gap_ms + w.rng.below(gap_ms as u64 / 2 + 1) as i64;
        let name = tool.unwrap_or_else(|| w.rng.pick(tools));
        let rpc_id = n as u64 + 2;
        let failed = error_every > 0 && n % error_every == error_every - 1;
        let answer = result(
            rpc_id,
            json!({"content": [{"type": "text", "text": "..."}], "isError": failed}),
        );
        ids.push(w.run(&Exchange {
            at_ms: t,
            headers: in_session.clone(),
            body: rpc(rpc_id, "tools/call", json!({"name": name, "arguments": {}})),
            answer,
            issued_session: None,
        }));
    }
    (id, ids)
}

fn write(path: &Path) -> ToolLog {
    let boot = bootstrap();
    let max = boot.config.max_label_values;
    let mut w = Writer {
        boot,
        vm: VmState::new([7; 32], max),
        rng: Rng(0x9e37_79b9_7f4a_7c15),
        lines: Vec::new(),
    };
    let mut runaway = (String::new(), Vec::new());
    for hour in 0..HOURS {
        let hour_ms = (START_UNIX + hour * 3600) * 1000;
        let mut sessions: Vec<(i64, usize, usize)> = Vec::new();
        for (a, agent) in AGENTS.iter().enumerate() {
            for _ in 0..agent.sessions_per_hour {
                let start = hour_ms + w.rng.below(50 * 60_000) as i64;
                sessions.push((start, a, 3 + w.rng.below(4) as usize));
            }
        }
        sessions.sort();
        for (start, a, calls) in sessions {
            session(&mut w, AGENTS.get(a), start, calls, None, 20_000, 4);
        }
        if hour % 6 == 5 {
            // A client that never says who it is: initialize is exempt, the tool call refused.
            session(&mut w, None, hour_ms + 55 * 60_000, 1, Some("search_docs"), 5_000, 0);
        }
        if hour == RUNAWAY_HOUR {
            let agent = AGENTS.get(2);
            runaway = session(&mut w, agent, hour_ms + 5 * 60_000, 240, Some("fetch_url"), 8_000, 2);
        }
    }
    // Sessions overlap: the log is in time order, as Envoy writes it (each line when its
    // request ends, which these short calls make close to their start).
    w.lines.sort_by_key(|(t, _)| *t);
    let mut text: String = w.lines.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write the tool-call log");
    let (session, ids) = runaway;
    ToolLog {
        path: path.to_path_buf(),
        lines: w.lines.len(),
        runaway_correlation_id: ids.get(101).cloned().unwrap_or_default(),
        runaway_calls: ids.len(),
        runaway_session: session,
    }
}
