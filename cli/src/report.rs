//! `report`: chargeback by any fields and period, the gaps, and the rejections, in one pass in
//! memory proportional to the number of groups (never to the number of lines).

use crate::fields::{Field, Money};
use crate::input::Scan;
use crate::record::{Event, Record};
use crate::time::Period;
use std::collections::HashMap;
use std::fmt::Write as _;

/// The sums kept for a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: u64,
    pub attributed: u64,
    pub rejected: u64,
    pub would_reject: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost: Money,
    /// Calls that went upstream with tokens counted but no price matched.
    pub unpriced_calls: u64,
    pub usage_missing: u64,
    pub usage_partial: u64,
    /// Of `calls`, the tool calls (agents' calls to MCP servers).
    pub tool_calls: u64,
    /// Tool calls that need not be attributed (a method outside `mcp.methods`).
    pub exempt: u64,
    /// Tool calls whose answer was an error (`error.type`: a JSON-RPC error code or `tool_error`).
    pub tool_errors: u64,
}

impl Totals {
    pub fn add(&mut self, r: &Record<'_>) {
        self.calls += 1;
        match r.decision() {
            Some("attributed") => self.attributed += 1,
            Some("rejected") => self.rejected += 1,
            Some("would_reject") => self.would_reject += 1,
            Some("exempt") => self.exempt += 1,
            _ => {}
        }
        if r.event() == Event::ToolCall {
            self.tool_calls += 1;
            if r.error_type.as_deref().is_some_and(|e| !e.is_empty()) {
                self.tool_errors += 1;
            }
        }
        let add = |sum: &mut u64, n: Option<u64>| *sum = sum.saturating_add(n.unwrap_or(0));
        add(&mut self.input_tokens, r.input_tokens);
        add(&mut self.output_tokens, r.output_tokens);
        add(&mut self.cached_input_tokens, r.cached_input_tokens);
        add(&mut self.reasoning_tokens, r.reasoning_tokens);
        if let Some(c) = r.cost_usd {
            self.cost.add(Money::from_usd(c));
        } else if r.went_upstream() && (r.input_tokens.is_some() || r.output_tokens.is_some()) {
            self.unpriced_calls += 1;
        }
        match r.usage_status.as_deref() {
            Some("missing") => self.usage_missing += 1,
            Some("partial") => self.usage_partial += 1,
            _ => {}
        }
    }

    pub fn merge(&mut self, o: &Totals) {
        self.calls += o.calls;
        self.attributed += o.attributed;
        self.rejected += o.rejected;
        self.would_reject += o.would_reject;
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.cached_input_tokens = self.cached_input_tokens.saturating_add(o.cached_input_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(o.reasoning_tokens);
        self.cost.add(o.cost);
        self.unpriced_calls += o.unpriced_calls;
        self.usage_missing += o.usage_missing;
        self.usage_partial += o.usage_partial;
        self.tool_calls += o.tool_calls;
        self.exempt += o.exempt;
        self.tool_errors += o.tool_errors;
    }

    /// Of `calls`, the model calls.
    pub fn model_calls(&self) -> u64 {
        self.calls - self.tool_calls
    }

    /// Calls that reached the model (not rejected).
    pub fn upstream_calls(&self) -> u64 {
        self.calls - self.rejected
    }

    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// One chargeback row.
#[derive(Debug, Clone)]
pub struct Row {
    /// The period's start (ms), or `None` for records without a time.
    pub period_start: Option<i64>,
    /// One value per `--by` field (`None`: the record had none).
    pub key: Vec<Option<String>>,
    pub totals: Totals,
}

/// What `report` computed.
#[derive(Debug, Clone)]
pub struct Report {
    pub by: Vec<Field>,
    pub period: Period,
    pub rows: Vec<Row>,
    pub totals: Totals,
    /// `(decision, reason) -> calls` for `rejected` and `would_reject`.
    pub rejections: Vec<(String, String, u64)>,
    /// Models whose calls had tokens but no price: `(model, calls)`.
    pub unpriced_models: Vec<(String, u64)>,
    /// Per-user and per-service-account totals (for the HTML's top lists).
    pub users: Vec<(String, Totals)>,
    pub service_accounts: Vec<(String, Totals)>,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub scan: Scan,
}

/// The accumulator `report` streams records into.
pub struct Builder {
    by: Vec<Field>,
    period: Period,
    index: HashMap<String, usize>,
    rows: Vec<Row>,
    totals: Totals,
    rejections: HashMap<(String, String), u64>,
    unpriced: HashMap<String, u64>,
    users: HashMap<String, Totals>,
    service_accounts: HashMap<String, Totals>,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    key: String,
}

const NONE_MARK: char = '\u{0}';

impl Builder {
    pub fn new(by: Vec<Field>, period: Period) -> Builder {
        Builder {
            by,
            period,
            index: HashMap::new(),
            rows: Vec::new(),
            totals: Totals::default(),
            rejections: HashMap::new(),
            unpriced: HashMap::new(),
            users: HashMap::new(),
            service_accounts: HashMap::new(),
            first_ms: None,
            last_ms: None,
            key: String::with_capacity(128),
        }
    }

    pub fn add(&mut self, r: &Record<'_>) {
        let period_start = r.time_ms.map(|t| self.period.start(t));
        self.key.clear();
        for f in &self.by {
            match f.get(r) {
                Some(v) => self.key.push_str(v),
                None => self.key.push(NONE_MARK),
            }
            self.key.push('\u{1f}');
        }
        match period_start {
            Some(p) => {
                let _ = write!(self.key, "{p}");
            }
            None => self.key.push(NONE_MARK),
        }
        let i = match self.index.get(self.key.as_str()) {
            Some(i) => *i,
            None => {
                let row = Row {
                    period_start,
                    key: self.by.iter().map(|f| f.get(r).map(str::to_string)).collect(),
                    totals: Totals::default(),
                };
                self.rows.push(row);
                self.index.insert(self.key.clone(), self.rows.len() - 1);
                self.rows.len() - 1
            }
        };
        if let Some(row) = self.rows.get_mut(i) {
            row.totals.add(r);
        }
        self.totals.add(r);
        if let Some(t) = r.time_ms {
            self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
            self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        }
        if let Some(d @ ("rejected" | "would_reject")) = r.decision() {
            let reason = r.reason.as_deref().unwrap_or("").to_string();
            *self.rejections.entry((d.to_string(), reason)).or_default() += 1;
        }
        if r.cost_usd.is_none() && r.went_upstream() && (r.input_tokens.is_some() || r.output_tokens.is_some()) {
            let model = r.model().unwrap_or("(no model)");
            match self.unpriced.get_mut(model) {
                Some(n) => *n += 1,
                None => {
                    self.unpriced.insert(model.to_string(), 1);
                }
            }
        }
        for (map, dim) in [
            (&mut self.users, "user"),
            (&mut self.service_accounts, "service_account"),
        ] {
            if let Some(v) = r.dim(dim) {
                match map.get_mut(v) {
                    Some(t) => t.add(r),
                    None => {
                        let mut t = Totals::default();
                        t.add(r);
                        map.insert(v.to_string(), t);
                    }
                }
            }
        }
    }

    pub fn finish(self, scan: Scan) -> Report {
        let mut rows = self.rows;
        rows.sort_by(|a, b| (a.period_start, &a.key).cmp(&(b.period_start, &b.key)));
        let mut rejections: Vec<(String, String, u64)> =
            self.rejections.into_iter().map(|((d, r), n)| (d, r, n)).collect();
        rejections.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        let mut unpriced: Vec<(String, u64)> = self.unpriced.into_iter().collect();
        unpriced.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Report {
            by: self.by,
            period: self.period,
            rows,
            totals: self.totals,
            rejections,
            unpriced_models: unpriced,
            users: ranked(self.users),
            service_accounts: ranked(self.service_accounts),
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            scan,
        }
    }
}

/// Highest cost first, then most tokens, then name.
fn ranked(map: HashMap<String, Totals>) -> Vec<(String, Totals)> {
    let mut v: Vec<(String, Totals)> = map.into_iter().collect();
    v.sort_by(|a, b| {
        b.1.cost
            .cmp(&a.1.cost)
            .then_with(|| b.1.tokens().cmp(&a.1.tokens()))
            .then_with(|| b.1.calls.cmp(&a.1.calls))
            .then_with(|| a.0.cmp(&b.0))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::parse_line;

    fn build(by: &str, lines: &[&str]) -> Report {
        let mut b = Builder::new(Field::parse_list(by).unwrap(), Period::Day);
        for l in lines {
            if let Ok(r) = parse_line(l.as_bytes()) {
                b.add(&r);
            }
        }
        b.finish(Scan::default())
    }

    #[test]
    fn tool_calls_group_by_tool() {
        let r = build(
            "tool,business_unit",
            &[
                r#"{"start_time":"2026-11-01T10:00:00Z","record":{"value":{"ai_attribution.event":"tool_call","ai_attribution.decision":"attributed","gen_ai.tool.name":"search_docs","mcp.method.name":"tools/call","ai_attribution.business_unit":"finance"}}}"#,
                r#"{"start_time":"2026-11-01T11:00:00Z","record":{"value":{"ai_attribution.event":"tool_call","ai_attribution.decision":"rejected","ai_attribution.reason":"missing:user","gen_ai.tool.name":"search_docs","ai_attribution.business_unit":"finance"}}}"#,
                r#"{"start_time":"2026-11-01T12:00:00Z","record":{"value":{"ai_attribution.decision":"attributed","gen_ai.request.model":"gpt-4o","gen_ai.usage.input_tokens":10,"ai_attribution.business_unit":"finance"}}}"#,
            ],
        );
        assert_eq!(r.rows.len(), 2);
        let tool = r
            .rows
            .iter()
            .find(|row| row.key[0].as_deref() == Some("search_docs"))
            .unwrap();
        assert_eq!((tool.totals.calls, tool.totals.rejected), (2, 1));
        // A model call without a price is a gap; tool calls (no tokens) are not.
        assert_eq!(r.totals.unpriced_calls, 1);
        assert_eq!(r.unpriced_models, vec![("gpt-4o".to_string(), 1)]);
        assert_eq!(r.rejections, vec![("rejected".into(), "missing:user".into(), 1)]);
        assert_eq!((tool.totals.tool_calls, tool.totals.model_calls()), (2, 0));
        assert_eq!((r.totals.tool_calls, r.totals.model_calls()), (2, 1));
    }

    #[test]
    fn tool_calls_by_service_account_and_session_with_exempt_and_errors() {
        let line = |sa: &str, session: &str, method: &str, decision: &str, error: &str| {
            format!(
                r#"{{"start_time":"2026-11-01T10:00:00Z","record":{{"value":{{"ai_attribution.event":"tool_call","ai_attribution.decision":"{decision}","mcp.method.name":"{method}","ai_attribution.service_account":"{sa}","session.id":"{session}"{error}}}}}}}"#
            )
        };
        let lines = [
            line("agent-a", "s-1", "initialize", "exempt", ""),
            line(
                "agent-a",
                "s-1",
                "tools/call",
                "attributed",
                r#","error.type":"tool_error""#,
            ),
            line("agent-a", "s-1", "tools/call", "attributed", ""),
            line(
                "agent-b",
                "s-2",
                "tools/call",
                "attributed",
                r#","error.type":"-32602""#,
            ),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let r = build("service_account,session,mcp_method", &refs);
        let row = |sa: &str, m: &str| {
            r.rows
                .iter()
                .find(|row| row.key[0].as_deref() == Some(sa) && row.key[2].as_deref() == Some(m))
                .unwrap()
                .totals
                .clone()
        };
        let a = row("agent-a", "tools/call");
        assert_eq!((a.calls, a.attributed, a.tool_errors, a.exempt), (2, 2, 1, 0));
        assert_eq!(row("agent-a", "initialize").exempt, 1);
        assert_eq!(r.totals.tool_errors, 2);
        assert_eq!(r.totals.tool_calls, 4);
    }

    #[test]
    fn costs_sum_exactly_in_any_order() {
        let line = |c: &str| {
            format!(
                r#"{{"record":{{"value":{{"ai_attribution.decision":"attributed","ai_attribution.cost_usd":{c}}}}}}}"#
            )
        };
        let (a, b, c) = (line("0.1"), line("0.2"), line("0.0000000001"));
        let r1 = build("decision", &[&a, &b, &c]);
        let r2 = build("decision", &[&c, &b, &a]);
        assert_eq!(r1.totals.cost, r2.totals.cost);
        assert_eq!(r1.totals.cost.exact(), "0.3000000001");
        // Records without a time fall in a period of their own.
        assert_eq!(r1.rows[0].period_start, None);
    }
}
