//! `spikes`: owners whose tokens or cost in a window jump above their own baseline.
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

#[derive(Debug, Clone)]
pub struct Params {
    pub by: Field,
    pub window_ms: i64,
    pub baseline: usize,
    pub threshold: f64,
    pub min_history: usize,
    pub min_tokens: u64,
    pub min_cost: Money,
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
    tools: HashMap<String, Usage>,
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
                tally(&mut cell.tools, tool, r);
            }
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
            let mut tokens: Vec<f64> = Vec::with_capacity(n as usize);
            let mut costs: Vec<f64> = Vec::with_capacity(n as usize);
            for i in 0..n {
                let w = first + i * p.window_ms;
                let u = series.get(&w).map(|c| &c.usage);
                tokens.push(u.map_or(0.0, |u| u.tokens as f64));
                costs.push(u.map_or(0.0, |u| u.cost.as_f64()));
            }
            for i in p.min_history.max(1)..(n as usize) {
                let w = first + i as i64 * p.window_ms;
                let Some(cell) = series.get(&w) else {
                    continue;
                };
                let from = i.saturating_sub(p.baseline.max(1));
                let tok = score(tokens.get(from..i).unwrap_or(&[]), cell.usage.tokens as f64, 1.0);
                let cost = score(costs.get(from..i).unwrap_or(&[]), cell.usage.cost.as_f64(), 0.0001);
                let tokens_spike = tok.score > p.threshold && cell.usage.tokens >= p.min_tokens;
                let cost_spike =
                    cost.score > p.threshold && cell.usage.cost >= p.min_cost && cell.usage.cost > Money(0);
                if tokens_spike || cost_spike {
                    spikes.push(Spike {
                        owner: owner.clone(),
                        window_start: w,
                        window_end: w + p.window_ms,
                        calls: cell.usage.calls,
                        tokens: cell.usage.tokens,
                        cost: cell.usage.cost,
                        tokens_baseline: tok,
                        cost_baseline: cost,
                        tokens_spike,
                        cost_spike,
                        users: top(&cell.users),
                        service_accounts: top(&cell.service_accounts),
                        sessions: top(&cell.sessions),
                        models: top(&cell.models),
                        tools: top(&cell.tools),
                    });
                }
            }
        }
        spikes.sort_by(|a, b| {
            a.window_start
                .cmp(&b.window_start)
                .then_with(|| b.tokens_baseline.score.total_cmp(&a.tokens_baseline.score))
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

/// Up to 5 entries, most tokens first.
fn top(map: &HashMap<String, Usage>) -> Vec<(String, u64, u64, Money)> {
    let mut v: Vec<(String, u64, u64, Money)> = map
        .iter()
        .map(|(k, u)| (k.clone(), u.calls, u.tokens, u.cost))
        .collect();
    v.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| b.1.cmp(&a.1)).then_with(|| a.0.cmp(&b.0)));
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
    pub tokens_baseline: Baseline,
    pub cost_baseline: Baseline,
    pub tokens_spike: bool,
    pub cost_spike: bool,
    pub users: Vec<(String, u64, u64, Money)>,
    pub service_accounts: Vec<(String, u64, u64, Money)>,
    pub sessions: Vec<(String, u64, u64, Money)>,
    pub models: Vec<(String, u64, u64, Money)>,
    pub tools: Vec<(String, u64, u64, Money)>,
}

fn list_text(items: &[(String, u64, u64, Money)]) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items
        .iter()
        .map(|(k, calls, tokens, _)| format!("{k} ({tokens} tokens, {calls} calls)"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render_text(by: &str, spikes: &[Spike], p: &Params) -> String {
    if spikes.is_empty() {
        return format!(
            "no spikes: no {by} went over {} robust deviations above its baseline of {} windows of {}\n",
            p.threshold,
            p.baseline,
            window_text(p.window_ms)
        );
    }
    let mut out = format!(
        "{} spike(s) by {by}, windows of {}\n",
        spikes.len(),
        window_text(p.window_ms)
    );
    for s in spikes {
        let what: Vec<&str> = [(s.tokens_spike, "tokens"), (s.cost_spike, "cost")]
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
        let _ = writeln!(
            out,
            "  tokens {} (baseline median {:.0}, MAD {:.0}, score {:.1})",
            s.tokens, s.tokens_baseline.median, s.tokens_baseline.mad, s.tokens_baseline.score
        );
        let _ = writeln!(
            out,
            "  cost ${} (baseline median ${:.4}, MAD ${:.4}, score {:.1}), {} calls",
            s.cost.fixed(4),
            s.cost_baseline.median,
            s.cost_baseline.mad,
            s.cost_baseline.score,
            s.calls
        );
        let _ = writeln!(out, "  service accounts: {}", list_text(&s.service_accounts));
        let _ = writeln!(out, "  users: {}", list_text(&s.users));
        let _ = writeln!(out, "  sessions: {}", list_text(&s.sessions));
        let _ = writeln!(out, "  models: {}", list_text(&s.models));
        let _ = writeln!(out, "  tools: {}", list_text(&s.tools));
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
        "spikes": spikes.iter().map(|s| json!({
            "owner": s.owner,
            "window_start": format_rfc3339(s.window_start),
            "window_end": format_rfc3339(s.window_end),
            "calls": s.calls,
            "tokens": s.tokens,
            "cost_usd": crate::output::money_json(s.cost),
            "tokens_spike": s.tokens_spike,
            "cost_spike": s.cost_spike,
            "tokens_baseline": {"median": s.tokens_baseline.median, "mad": s.tokens_baseline.mad, "score": s.tokens_baseline.score},
            "cost_baseline": {"median": s.cost_baseline.median, "mad": s.cost_baseline.mad, "score": s.cost_baseline.score},
            "service_accounts": list_json(&s.service_accounts),
            "users": list_json(&s.users),
            "sessions": list_json(&s.sessions),
            "models": list_json(&s.models),
            "tools": list_json(&s.tools),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
