//! `spikes`: owners whose calls, tokens or cost in a window jump above their own baseline.
//!
//! Method: for each owner, the windows from its first record to the end of the data (windows
//! without calls count as 0). A window is compared with the owner's previous `baseline` windows
//! through their median and MAD (median absolute deviation): its score is
//! `(value - median) / scale`, with `scale = max(1.4826 * MAD, 5 % of the median, 1 unit)`, and
//! it is a spike when the score exceeds `threshold` and the value reaches the floor
//! (`min_tokens` or `min_cost`). Median and MAD ignore the occasional outlier in the baseline,
//! a spike included, where a mean and standard deviation would be dragged along by it. The
//! first `min_history` windows of an owner are never flagged: there is no baseline yet.

use crate::fields::{Field, Money};
use crate::record::Record;
use crate::time::format_rfc3339;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Distinct values kept per detail list of one window; the rest are summed as "(other)".
const MAX_DISTINCT: usize = 1000;
/// Guard against a window far too small for the time range.
const MAX_WINDOWS: i64 = 2_000_000;

/// What a spike is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Records: model calls or tool calls (tool calls have no tokens or cost).
    Calls,
    /// Input plus output tokens.
    Tokens,
    Cost,
}

impl Measure {
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Calls => "calls",
            Measure::Tokens => "tokens",
            Measure::Cost => "cost",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Params {
    pub by: Field,
    /// In order, without duplicates; the first one ranks spikes and their details.
    pub measures: Vec<Measure>,
    pub window_ms: i64,
    pub baseline: usize,
    pub threshold: f64,
    pub min_history: usize,
    pub min_tokens: u64,
    pub min_cost: Money,
    pub min_calls: u64,
}

impl Params {
    fn measures(&self, m: Measure) -> bool {
        self.measures.contains(&m)
    }

    fn by_calls(&self) -> bool {
        self.measures.first() == Some(&Measure::Calls)
    }
}

#[derive(Debug, Clone, Default)]
struct Usage {
    calls: u64,
    tokens: u64,
    cost: Money,
}

impl Usage {
    fn add(&mut self, r: &Record<'_>) {
        self.calls += 1;
        self.tokens = self.tokens.saturating_add(r.total_tokens());
        if let Some(c) = r.cost_usd {
            self.cost.add(Money::from_usd(c));
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Cell {
    usage: Usage,
    users: HashMap<String, Usage>,
    service_accounts: HashMap<String, Usage>,
    sessions: HashMap<String, Usage>,
    models: HashMap<String, Usage>,
    /// The tools of tool calls (`gen_ai.tool.name`).
    tools: HashMap<String, Usage>,
    /// The tools models asked to call (`requested_tools` of model calls).
    requested_tools: HashMap<String, Usage>,
    decisions: HashMap<String, Usage>,
    mcp_methods: HashMap<String, Usage>,
}

fn tally(map: &mut HashMap<String, Usage>, key: &str, r: &Record<'_>) {
    if let Some(u) = map.get_mut(key) {
        u.add(r);
        return;
    }
    let key = if map.len() >= MAX_DISTINCT { "(other)" } else { key };
    map.entry(key.to_string()).or_default().add(r);
}

pub struct Builder {
    params: Params,
    owners: HashMap<String, BTreeMap<i64, Cell>>,
    last_window: Option<i64>,
}

impl Builder {
    pub fn new(params: Params) -> Builder {
        Builder {
            params,
            owners: HashMap::new(),
            last_window: None,
        }
    }

    pub fn add(&mut self, r: &Record<'_>) {
        let Some(t) = r.time_ms else {
            return;
        };
        let w = t.div_euclid(self.params.window_ms) * self.params.window_ms;
        self.last_window = Some(self.last_window.map_or(w, |l| l.max(w)));
        let owner = self.params.by.get(r).unwrap_or("(none)");
        let series = match self.owners.get_mut(owner) {
            Some(s) => s,
            None => self.owners.entry(owner.to_string()).or_default(),
        };
        let cell = series.entry(w).or_default();
        cell.usage.add(r);
        if let Some(u) = r.dim("user") {
            tally(&mut cell.users, u, r);
        }
        if let Some(sa) = r.dim("service_account") {
            tally(&mut cell.service_accounts, sa, r);
        }
        if let Some(s) = r.dim("session") {
            tally(&mut cell.sessions, s, r);
        }
        if let Some(m) = r.model() {
            tally(&mut cell.models, m, r);
        }
        if let Some(tool) = r.tool() {
            tally(&mut cell.tools, tool, r);
        }
        if let Some(list) = r.requested_tools.as_deref() {
            for tool in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                tally(&mut cell.requested_tools, tool, r);
            }
        }
        if let Some(d) = r.decision() {
            tally(&mut cell.decisions, d, r);
        }
        if let Some(m) = r.mcp_method.as_deref().filter(|m| !m.is_empty()) {
            tally(&mut cell.mcp_methods, m, r);
        }
    }

    pub fn finish(self) -> Result<Vec<Spike>, String> {
        let p = &self.params;
        let Some(last) = self.last_window else {
            return Ok(Vec::new());
        };
        let mut spikes = Vec::new();
        for (owner, series) in &self.owners {
            let Some(first) = series.keys().next().copied() else {
                continue;
            };
            let n = (last - first) / p.window_ms + 1;
            if n > MAX_WINDOWS {
                return Err(format!(
                    "{n} windows of {} s from the first record to the last: use a larger --window or --since",
                    p.window_ms / 1000
                ));
            }
            let mut calls: Vec<f64> = Vec::with_capacity(n as usize);
            let mut tokens: Vec<f64> = Vec::with_capacity(n as usize);
            let mut costs: Vec<f64> = Vec::with_capacity(n as usize);
            for i in 0..n {
                let w = first + i * p.window_ms;
                let u = series.get(&w).map(|c| &c.usage);
                calls.push(u.map_or(0.0, |u| u.calls as f64));
                tokens.push(u.map_or(0.0, |u| u.tokens as f64));
                costs.push(u.map_or(0.0, |u| u.cost.as_f64()));
            }
            for i in p.min_history.max(1)..(n as usize) {
                let w = first + i as i64 * p.window_ms;
                let Some(cell) = series.get(&w) else {
                    continue;
                };
                let from = i.saturating_sub(p.baseline.max(1));
                let cnt = score(calls.get(from..i).unwrap_or(&[]), cell.usage.calls as f64, 1.0);
                let tok = score(tokens.get(from..i).unwrap_or(&[]), cell.usage.tokens as f64, 1.0);
                let cost = score(costs.get(from..i).unwrap_or(&[]), cell.usage.cost.as_f64(), 0.0001);
                let calls_spike =
                    p.measures(Measure::Calls) && cnt.score > p.threshold && cell.usage.calls >= p.min_calls;
                let tokens_spike =
                    p.measures(Measure::Tokens) && tok.score > p.threshold && cell.usage.tokens >= p.min_tokens;
                let cost_spike = p.measures(Measure::Cost)
                    && cost.score > p.threshold
                    && cell.usage.cost >= p.min_cost
                    && cell.usage.cost > Money(0);
                if calls_spike || tokens_spike || cost_spike {
                    let top = |m: &HashMap<String, Usage>| top(m, p.by_calls());
                    spikes.push(Spike {
                        owner: owner.clone(),
                        window_start: w,
                        window_end: w + p.window_ms,
                        calls: cell.usage.calls,
                        tokens: cell.usage.tokens,
                        cost: cell.usage.cost,
                        calls_baseline: cnt,
                        tokens_baseline: tok,
                        cost_baseline: cost,
                        calls_spike,
                        tokens_spike,
                        cost_spike,
                        users: top(&cell.users),
                        service_accounts: top(&cell.service_accounts),
                        sessions: top(&cell.sessions),
                        models: top(&cell.models),
                        tools: top(&cell.tools),
                        requested_tools: top(&cell.requested_tools),
                        decisions: top(&cell.decisions),
                        mcp_methods: top(&cell.mcp_methods),
                    });
                }
            }
        }
        let rank = |s: &Spike| match p.measures.first() {
            Some(Measure::Calls) => s.calls_baseline.score,
            Some(Measure::Cost) if !p.measures(Measure::Tokens) => s.cost_baseline.score,
            _ => s.tokens_baseline.score,
        };
        spikes.sort_by(|a, b| {
            a.window_start
                .cmp(&b.window_start)
                .then_with(|| rank(b).total_cmp(&rank(a)))
                .then_with(|| a.owner.cmp(&b.owner))
        });
        Ok(spikes)
    }
}

/// A window against its baseline.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pub median: f64,
    pub mad: f64,
    pub score: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let mid = n / 2;
    let hi = v.get(mid).copied().unwrap_or(0.0);
    if n % 2 == 1 {
        hi
    } else {
        (v.get(mid - 1).copied().unwrap_or(0.0) + hi) / 2.0
    }
}

fn score(history: &[f64], value: f64, unit: f64) -> Baseline {
    let mut h = history.to_vec();
    let m = median(&mut h);
    let mut dev: Vec<f64> = h.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&mut dev);
    let scale = (1.4826 * mad).max(0.05 * m).max(unit);
    Baseline {
        median: m,
        mad,
        score: (value - m) / scale,
    }
}

/// Up to 5 entries, most tokens first (most calls first when spikes are measured in calls).
fn top(map: &HashMap<String, Usage>, by_calls: bool) -> Vec<(String, u64, u64, Money)> {
    let mut v: Vec<(String, u64, u64, Money)> = map
        .iter()
        .map(|(k, u)| (k.clone(), u.calls, u.tokens, u.cost))
        .collect();
    v.sort_by(|a, b| {
        let (first, second) = if by_calls {
            ((a.1, b.1), (a.2, b.2))
        } else {
            ((a.2, b.2), (a.1, b.1))
        };
        first
            .1
            .cmp(&first.0)
            .then_with(|| second.1.cmp(&second.0))
            .then_with(|| a.0.cmp(&b.0))
    });
    v.truncate(5);
    v
}

#[derive(Debug, Clone)]
pub struct Spike {
    pub owner: String,
    pub window_start: i64,
    pub window_end: i64,
    pub calls: u64,
    pub tokens: u64,
    pub cost: Money,
    pub calls_baseline: Baseline,
    pub tokens_baseline: Baseline,
    pub cost_baseline: Baseline,
    pub calls_spike: bool,
    pub tokens_spike: bool,
    pub cost_spike: bool,
    pub users: Vec<(String, u64, u64, Money)>,
    pub service_accounts: Vec<(String, u64, u64, Money)>,
    pub sessions: Vec<(String, u64, u64, Money)>,
    pub models: Vec<(String, u64, u64, Money)>,
    pub tools: Vec<(String, u64, u64, Money)>,
    pub requested_tools: Vec<(String, u64, u64, Money)>,
    pub decisions: Vec<(String, u64, u64, Money)>,
    pub mcp_methods: Vec<(String, u64, u64, Money)>,
}

fn list_text(items: &[(String, u64, u64, Money)], by_calls: bool) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items
        .iter()
        .map(|(k, calls, tokens, _)| {
            if by_calls {
                format!("{k} ({calls} calls)")
            } else {
                format!("{k} ({tokens} tokens, {calls} calls)")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn measures_text(p: &Params) -> String {
    p.measures.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" or ")
}

pub fn render_text(by: &str, spikes: &[Spike], p: &Params) -> String {
    if spikes.is_empty() {
        return format!(
            "no spikes: no {by} went over {} robust deviations above its baseline of {} windows of {} in {}\n",
            p.threshold,
            p.baseline,
            window_text(p.window_ms),
            measures_text(p)
        );
    }
    let by_calls = p.by_calls();
    let mut out = format!(
        "{} spike(s) by {by}, windows of {}\n",
        spikes.len(),
        window_text(p.window_ms)
    );
    for s in spikes {
        let what: Vec<&str> = [
            (s.calls_spike, "calls"),
            (s.tokens_spike, "tokens"),
            (s.cost_spike, "cost"),
        ]
        .iter()
        .filter(|(b, _)| *b)
        .map(|(_, w)| *w)
        .collect();
        let _ = writeln!(
            out,
            "\n{} .. {}  {by}={}  spike in {}",
            format_rfc3339(s.window_start),
            format_rfc3339(s.window_end),
            s.owner,
            what.join(" and ")
        );
        if p.measures(Measure::Calls) {
            let _ = writeln!(
                out,
                "  calls {} (baseline median {:.0}, MAD {:.0}, score {:.1})",
                s.calls, s.calls_baseline.median, s.calls_baseline.mad, s.calls_baseline.score
            );
        }
        if p.measures(Measure::Tokens) {
            let _ = writeln!(
                out,
                "  tokens {} (baseline median {:.0}, MAD {:.0}, score {:.1})",
                s.tokens, s.tokens_baseline.median, s.tokens_baseline.mad, s.tokens_baseline.score
            );
        }
        if p.measures(Measure::Cost) {
            let calls = if p.measures(Measure::Calls) {
                String::new()
            } else {
                format!(", {} calls", s.calls)
            };
            let _ = writeln!(
                out,
                "  cost ${} (baseline median ${:.4}, MAD ${:.4}, score {:.1}){calls}",
                s.cost.fixed(4),
                s.cost_baseline.median,
                s.cost_baseline.mad,
                s.cost_baseline.score,
            );
        }
        let list = |items: &[(String, u64, u64, Money)]| list_text(items, by_calls);
        if by_calls {
            let _ = writeln!(out, "  decisions: {}", list(&s.decisions));
        }
        let _ = writeln!(out, "  service accounts: {}", list(&s.service_accounts));
        let _ = writeln!(out, "  users: {}", list(&s.users));
        let _ = writeln!(out, "  sessions: {}", list(&s.sessions));
        let _ = writeln!(out, "  models: {}", list(&s.models));
        let _ = writeln!(out, "  tools: {}", list(&s.tools));
        if !s.mcp_methods.is_empty() {
            let _ = writeln!(out, "  mcp methods: {}", list(&s.mcp_methods));
        }
        if !s.requested_tools.is_empty() {
            let _ = writeln!(out, "  tools requested by models: {}", list(&s.requested_tools));
        }
    }
    out
}

fn window_text(ms: i64) -> String {
    match ms {
        m if m % 86_400_000 == 0 => format!("{}d", m / 86_400_000),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m => format!("{}s", m / 1000),
    }
}

fn list_json(items: &[(String, u64, u64, Money)]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|(k, calls, tokens, cost)| json!({"name": k, "calls": calls, "tokens": tokens, "cost_usd": crate::output::money_json(*cost)}))
            .collect(),
    )
}

pub fn render_json(by: &str, spikes: &[Spike], p: &Params) -> Value {
    json!({
        "by": by,
        "window_seconds": p.window_ms / 1000,
        "baseline_windows": p.baseline,
        "threshold": p.threshold,
        "measures": p.measures.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "spikes": spikes.iter().map(|s| json!({
            "owner": s.owner,
            "window_start": format_rfc3339(s.window_start),
            "window_end": format_rfc3339(s.window_end),
            "calls": s.calls,
            "tokens": s.tokens,
            "cost_usd": crate::output::money_json(s.cost),
            "calls_spike": s.calls_spike,
            "tokens_spike": s.tokens_spike,
            "cost_spike": s.cost_spike,
            "calls_baseline": {"median": s.calls_baseline.median, "mad": s.calls_baseline.mad, "score": s.calls_baseline.score},
            "tokens_baseline": {"median": s.tokens_baseline.median, "mad": s.tokens_baseline.mad, "score": s.tokens_baseline.score},
            "cost_baseline": {"median": s.cost_baseline.median, "mad": s.cost_baseline.mad, "score": s.cost_baseline.score},
            "service_accounts": list_json(&s.service_accounts),
            "users": list_json(&s.users),
            "sessions": list_json(&s.sessions),
            "models": list_json(&s.models),
            "tools": list_json(&s.tools),
            "requested_tools": list_json(&s.requested_tools),
            "decisions": list_json(&s.decisions),
            "mcp_methods": list_json(&s.mcp_methods),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(measures: Vec<Measure>) -> Params {
        Params {
            by: Field::Tool,
            measures,
            window_ms: 3_600_000,
            baseline: 24,
            threshold: 3.5,
            min_history: 6,
            min_tokens: 1000,
            min_cost: Money::from_usd(0.01),
            min_calls: 10,
        }
    }

    fn tool_line(hour: i64, minute: i64, tool: &str, sa: &str, session: &str) -> String {
        format!(
            r#"{{"start_time":"2026-11-01T{hour:02}:{minute:02}:00Z","record":{{"value":{{"ai_attribution.event":"tool_call","ai_attribution.decision":"attributed","gen_ai.tool.name":"{tool}","mcp.method.name":"tools/call","ai_attribution.service_account":"{sa}","session.id":"{session}"}}}}}}"#
        )
    }

    #[test]
    fn a_burst_of_tool_calls_is_a_spike_in_calls() {
        let mut lines = Vec::new();
        for hour in 0..12 {
            for m in 0..4 {
                lines.push(tool_line(hour, m, "search_docs", "agent-a", "s-a"));
                lines.push(tool_line(hour, m + 10, "fetch_url", "agent-b", "s-b"));
            }
        }
        for m in 0..50 {
            lines.push(tool_line(10, m, "fetch_url", "agent-loop", "s-loop"));
        }
        let run = |measures: Vec<Measure>| {
            let mut b = Builder::new(params(measures));
            for l in &lines {
                b.add(&crate::record::parse_line(l.as_bytes()).unwrap());
            }
            b.finish().unwrap()
        };
        // Tool calls carry no tokens or cost: only a calls measure sees them.
        assert!(run(vec![Measure::Tokens, Measure::Cost]).is_empty());
        let found = run(vec![Measure::Calls]);
        assert_eq!(found.len(), 1, "{found:?}");
        let s = &found[0];
        assert_eq!((s.owner.as_str(), s.calls, s.calls_spike), ("fetch_url", 54, true));
        assert_eq!(s.service_accounts[0].0, "agent-loop");
        assert_eq!(s.sessions[0].0, "s-loop");
        assert_eq!(s.tools, vec![("fetch_url".to_string(), 54, 0, Money(0))]);
        assert!(s.requested_tools.is_empty());
        let p = params(vec![Measure::Calls]);
        let text = render_text("tool", &found, &p);
        assert!(text.contains("tool=fetch_url  spike in calls"), "{text}");
        assert!(
            text.contains("service accounts: agent-loop (50 calls), agent-b (4 calls)"),
            "{text}"
        );
        assert!(!text.contains("tokens"), "{text}");
    }

    #[test]
    fn robust_score() {
        let b = score(&[100.0, 110.0, 90.0, 100.0, 5000.0], 105.0, 1.0);
        assert_eq!(b.median, 100.0);
        assert!(b.score < 1.0, "{b:?}");
        let b = score(&[100.0, 110.0, 90.0, 100.0, 105.0], 1000.0, 1.0);
        assert!(b.score > 20.0, "{b:?}");
        let b = score(&[0.0; 6], 0.0, 1.0);
        assert_eq!(b.score, 0.0);
        assert_eq!(score(&[], 5.0, 1.0).score, 5.0);
    }
}
