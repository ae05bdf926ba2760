//! `report`'s outputs: a terminal table, CSV, JSON and FOCUS 1.2 CSV, all from one [`Report`].

use crate::fields::{Field, Money};
use crate::report::{Report, Row, Totals};
use crate::time::{format_rfc3339, month_bounds, Period};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::io::{self, Write};

const NONE: &str = "(none)";

fn period_label(period: Period, start: Option<i64>) -> String {
    start.map_or_else(|| "(no time)".to_string(), |s| period.label(s))
}

fn period_bounds(period: Period, start: Option<i64>) -> (String, String) {
    match start {
        Some(s) => (format_rfc3339(s), format_rfc3339(period.end(s))),
        None => (String::new(), String::new()),
    }
}

/// Right-aligned numbers, left-aligned text. `cells(i)` gives row `i`; it is called twice per
/// row (once to measure, once to write) so that no table is held in memory.
fn table(
    out: &mut dyn Write,
    header: &[String],
    n: usize,
    cells: &dyn Fn(usize) -> Vec<String>,
    numeric_from: usize,
) -> io::Result<()> {
    let cells = |i: usize| -> Vec<String> { cells(i).iter().map(|c| printable(c)).collect() };
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for i in 0..n {
        for (j, c) in cells(i).iter().enumerate() {
            if let Some(w) = widths.get_mut(j) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i > 0 {
                s.push_str("  ");
            }
            if i >= numeric_from {
                let _ = write!(s, "{c:>w$}");
            } else {
                let _ = write!(s, "{c:<w$}");
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, header)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule)?;
    for i in 0..n {
        line(out, &cells(i))?;
    }
    Ok(())
}

/// Which columns the table shows: the tool-call ones when there are tool calls, the token and
/// cost ones when there are model calls (or no calls at all).
#[derive(Clone, Copy)]
struct Columns {
    tool: bool,
    model: bool,
}

impl Columns {
    fn of(r: &Report) -> Columns {
        Columns {
            tool: r.totals.tool_calls > 0,
            model: r.totals.model_calls() > 0 || r.totals.calls == 0,
        }
    }

    fn headers(self) -> Vec<&'static str> {
        let mut h = vec!["calls", "rejected", "would_reject"];
        if self.tool {
            h.extend(["exempt", "tool_errors"]);
        }
        if self.model {
            h.extend([
                "input",
                "cached",
                "output",
                "reasoning",
                "cost_usd",
                "unpriced",
                "usage_missing",
                "usage_partial",
            ]);
        }
        h
    }

    fn cells(self, t: &Totals) -> Vec<String> {
        let mut c = vec![t.calls.to_string(), t.rejected.to_string(), t.would_reject.to_string()];
        if self.tool {
            c.extend([t.exempt.to_string(), t.tool_errors.to_string()]);
        }
        if self.model {
            c.extend([
                t.input_tokens.to_string(),
                t.cached_input_tokens.to_string(),
                t.output_tokens.to_string(),
                t.reasoning_tokens.to_string(),
                t.cost.fixed(6),
                t.unpriced_calls.to_string(),
                t.usage_missing.to_string(),
                t.usage_partial.to_string(),
            ]);
        }
        c
    }
}

/// The terminal table: chargeback, then gaps, then rejections.
pub fn write_table(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut header = vec!["period".to_string()];
    header.extend(r.by.iter().map(|f| f.name().to_string()));
    let fixed = header.len();
    let columns = Columns::of(r);
    header.extend(columns.headers().iter().map(|h| h.to_string()));
    let cells = |i: usize| -> Vec<String> {
        match r.rows.get(i) {
            Some(row) => {
                let mut cells = vec![period_label(r.period, row.period_start)];
                cells.extend(row.key.iter().map(|k| k.clone().unwrap_or_else(|| NONE.to_string())));
                cells.extend(columns.cells(&row.totals));
                cells
            }
            None => {
                let mut total = vec!["TOTAL".to_string()];
                total.extend(r.by.iter().map(|_| String::new()));
                total.extend(columns.cells(&r.totals));
                total
            }
        }
    };
    writeln!(out, "Chargeback by {} and {}\n", by_names(&r.by), r.period.as_str())?;
    table(out, &header, r.rows.len() + 1, &cells, fixed)?;
    writeln!(out)?;
    if columns.model {
        out.write_all(gaps_text(r).as_bytes())?;
        writeln!(out)?;
    }
    writeln!(out, "Rejections by reason")?;
    if r.rejections.is_empty() {
        writeln!(out, "  none")?;
    } else {
        let cells = |i: usize| -> Vec<String> {
            r.rejections
                .get(i)
                .map(|(d, reason, n)| vec![d.clone(), display_reason(reason), n.to_string()])
                .unwrap_or_default()
        };
        let header = ["decision".to_string(), "reason".to_string(), "calls".to_string()];
        table(out, &header, r.rejections.len(), &cells, 2)?;
    }
    Ok(())
}

/// Text for a terminal: control characters (e.g. escape sequences in a foreign log) replaced.
pub fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

fn display_reason(reason: &str) -> String {
    if reason.is_empty() {
        "(no reason)".to_string()
    } else {
        reason.to_string()
    }
}

fn by_names(by: &[Field]) -> String {
    if by.is_empty() {
        "nothing".to_string()
    } else {
        by.iter().map(Field::name).collect::<Vec<_>>().join(", ")
    }
}

fn gaps_text(r: &Report) -> String {
    let t = &r.totals;
    let mut out = String::from("Gaps\n");
    let _ = writeln!(out, "  calls with tokens but no price:   {}", t.unpriced_calls);
    for (model, n) in r.unpriced_models.iter().take(10) {
        let _ = writeln!(out, "    {model}: {n}");
    }
    if r.unpriced_models.len() > 10 {
        let _ = writeln!(out, "    ... and {} more models", r.unpriced_models.len() - 10);
    }
    let _ = writeln!(out, "  calls whose usage is missing:     {}", t.usage_missing);
    let _ = writeln!(out, "  calls whose usage is partial:     {}", t.usage_partial);
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(cells: &[String]) -> String {
    let mut s = cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",");
    s.push('\n');
    s
}

const CSV_METRICS: [&str; 16] = [
    "calls",
    "attributed",
    "rejected",
    "would_reject",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "unpriced_calls",
    "usage_missing",
    "usage_partial",
    "upstream_calls",
    "tool_calls",
    "exempt",
    "tool_errors",
];

fn csv_metrics(t: &Totals) -> Vec<String> {
    vec![
        t.calls.to_string(),
        t.attributed.to_string(),
        t.rejected.to_string(),
        t.would_reject.to_string(),
        t.input_tokens.to_string(),
        t.cached_input_tokens.to_string(),
        t.output_tokens.to_string(),
        t.reasoning_tokens.to_string(),
        t.cost.exact(),
        t.unpriced_calls.to_string(),
        t.usage_missing.to_string(),
        t.usage_partial.to_string(),
        t.upstream_calls().to_string(),
        t.tool_calls.to_string(),
        t.exempt.to_string(),
        t.tool_errors.to_string(),
    ]
}

/// Chargeback rows as CSV (one row per group and period; empty cell: no value).
pub fn write_csv(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut header = vec!["period_start".to_string(), "period_end".to_string()];
    header.extend(r.by.iter().map(|f| f.name().to_string()));
    header.extend(CSV_METRICS.iter().map(|h| h.to_string()));
    out.write_all(csv_line(&header).as_bytes())?;
    for row in &r.rows {
        let (s, e) = period_bounds(r.period, row.period_start);
        let mut cells = vec![s, e];
        cells.extend(row.key.iter().map(|k| k.clone().unwrap_or_default()));
        cells.extend(csv_metrics(&row.totals));
        out.write_all(csv_line(&cells).as_bytes())?;
    }
    Ok(())
}

pub fn totals_json(t: &Totals) -> Value {
    json!({
        "calls": t.calls,
        "attributed": t.attributed,
        "rejected": t.rejected,
        "would_reject": t.would_reject,
        "input_tokens": t.input_tokens,
        "cached_input_tokens": t.cached_input_tokens,
        "output_tokens": t.output_tokens,
        "reasoning_tokens": t.reasoning_tokens,
        "cost_usd": money_json(t.cost),
        "unpriced_calls": t.unpriced_calls,
        "usage_missing": t.usage_missing,
        "usage_partial": t.usage_partial,
        "tool_calls": t.tool_calls,
        "exempt": t.exempt,
        "tool_errors": t.tool_errors,
    })
}

/// A cost as a JSON number with the exact decimal digits.
pub fn money_json(m: Money) -> Value {
    m.exact()
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn row_json(r: &Report, row: &Row) -> Value {
    let (s, e) = period_bounds(r.period, row.period_start);
    let mut key = Map::new();
    for (f, v) in r.by.iter().zip(&row.key) {
        key.insert(f.name().to_string(), v.clone().map_or(Value::Null, Value::String));
    }
    let mut obj = Map::new();
    obj.insert("period_start".into(), if s.is_empty() { Value::Null } else { s.into() });
    obj.insert("period_end".into(), if e.is_empty() { Value::Null } else { e.into() });
    obj.insert("key".into(), Value::Object(key));
    if let Value::Object(m) = totals_json(&row.totals) {
        obj.extend(m);
    }
    Value::Object(obj)
}

/// Everything in the JSON report but the chargeback rows.
fn report_json_head(r: &Report) -> Value {
    let top = |list: &[(String, Totals)]| -> Vec<Value> {
        list.iter()
            .take(20)
            .map(|(name, t)| {
                let mut v = totals_json(t);
                if let Value::Object(m) = &mut v {
                    m.insert("name".into(), name.clone().into());
                }
                v
            })
            .collect()
    };
    json!({
        "by": r.by.iter().map(Field::name).collect::<Vec<_>>(),
        "period": r.period.as_str(),
        "first_record": r.first_ms.map(crate::time::format_rfc3339_ms),
        "last_record": r.last_ms.map(crate::time::format_rfc3339_ms),
        "input": r.scan.to_json(),
        "totals": totals_json(&r.totals),
        "gaps": {
            "unpriced_calls": r.totals.unpriced_calls,
            "unpriced_models": r.unpriced_models.iter().map(|(m, n)| json!({"model": m, "calls": n})).collect::<Vec<_>>(),
            "usage_missing": r.totals.usage_missing,
            "usage_partial": r.totals.usage_partial,
        },
        "rejections": r.rejections.iter().map(|(d, reason, n)| json!({"decision": d, "reason": reason, "calls": n})).collect::<Vec<_>>(),
        "top_users": top(&r.users),
        "top_service_accounts": top(&r.service_accounts),
    })
}

/// The whole report as one JSON object, written row by row (one chargeback row per line), so
/// that no document tree of the rows is built.
pub fn write_json(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let head = report_json_head(r);
    out.write_all(b"{")?;
    let mut first = true;
    if let Value::Object(map) = &head {
        for (k, v) in map {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            writeln!(out)?;
            serde_json::to_writer(&mut *out, k)?;
            out.write_all(b": ")?;
            serde_json::to_writer(&mut *out, v)?;
        }
    }
    out.write_all(b",\n\"chargeback\": [")?;
    for (i, row) in r.rows.iter().enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut *out, &row_json(r, row))?;
    }
    out.write_all(b"\n]\n}\n")
}
// ---- FOCUS 1.2 -------------------------------------------------------------------------------

/// The fields FOCUS rows are always grouped by, on top of `--by`.
pub const FOCUS_FIELDS: [&str; 3] = ["provider", "model", "business_unit"];

/// The display names of the providers the filter knows (its `gen_ai.provider.name` values):
/// (provider, service, company).
const PROVIDERS: [(&str, &str, &str); 8] = [
    ("openai", "OpenAI API", "OpenAI"),
    ("azure.ai.openai", "Azure OpenAI", "Microsoft"),
    ("anthropic", "Claude API", "Anthropic"),
    ("gcp.gemini", "Gemini API", "Google"),
    ("gcp.vertex_ai", "Vertex AI", "Google"),
    ("aws.bedrock", "Amazon Bedrock", "Amazon Web Services"),
    ("ollama", "Ollama", "Ollama"),
    ("cohere", "Cohere API", "Cohere"),
];

fn provider_names(provider: Option<&str>) -> (String, String) {
    match provider {
        Some(p) => PROVIDERS
            .iter()
            .find(|(id, _, _)| *id == p)
            .map(|(_, service, company)| (service.to_string(), company.to_string()))
            .unwrap_or_else(|| (p.to_string(), p.to_string())),
        None => ("Unknown AI provider".to_string(), "Unknown".to_string()),
    }
}

/// The columns of the FOCUS CSV, in order.
pub const FOCUS_COLUMNS: [&str; 40] = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_Calls",
    "x_InputTokens",
    "x_CachedInputTokens",
    "x_OutputTokens",
    "x_ReasoningTokens",
    "x_UnpricedCalls",
    "x_UsageMissingCalls",
    "x_UsagePartialCalls",
];

/// FOCUS 1.2 rows: one per group and period with calls that reached the model. Costs are the
/// filter's list-price estimate, so BilledCost = EffectiveCost = ListCost = ContractedCost.
pub fn write_focus(r: &Report, billing_account: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    let header: Vec<String> = FOCUS_COLUMNS.iter().map(|c| c.to_string()).collect();
    out.write_all(csv_line(&header).as_bytes())?;
    let pos = |name: &str| r.by.iter().position(|f| f.name() == name);
    let (provider_i, model_i, bu_i) = (pos("provider"), pos("model"), pos("business_unit"));
    for row in &r.rows {
        let t = &row.totals;
        // Tool calls have no tokens and no price: they are no line of a bill.
        if t.upstream_calls() == 0 || t.tool_calls == t.calls {
            continue;
        }
        let Some(start) = row.period_start else {
            continue;
        };
        let get = |i: Option<usize>| i.and_then(|i| row.key.get(i)).and_then(Clone::clone);
        let provider = get(provider_i);
        let model = get(model_i);
        let bu = get(bu_i);
        let (service, company) = provider_names(provider.as_deref());
        let account = billing_account
            .map(str::to_string)
            .or_else(|| provider.clone())
            .unwrap_or_else(|| "unknown".to_string());
        let (bp_start, bp_end) = month_bounds(start);
        let mut tags = Map::new();
        for (f, v) in r.by.iter().zip(&row.key) {
            if FOCUS_FIELDS.contains(&f.name()) {
                continue;
            }
            if let Some(v) = v {
                tags.insert(f.name().to_string(), Value::String(v.clone()));
            }
        }
        let description = format!(
            "{} tokens through {}: {} calls, {} input ({} cached), {} output ({} reasoning)",
            model.as_deref().unwrap_or("unknown model"),
            provider.as_deref().unwrap_or("unknown provider"),
            t.upstream_calls(),
            t.input_tokens,
            t.cached_input_tokens,
            t.output_tokens,
            t.reasoning_tokens
        );
        let cost = t.cost.exact();
        let tokens = t.tokens().to_string();
        let cells: Vec<String> = vec![
            cost.clone(),
            account.clone(),
            account,
            "USD".into(),
            format_rfc3339(bp_end),
            format_rfc3339(bp_start),
            "Usage".into(),
            String::new(),
            description,
            "Usage-Based".into(),
            format_rfc3339(r.period.end(start)),
            format_rfc3339(start),
            tokens.clone(),
            "Tokens".into(),
            cost.clone(),
            cost.clone(),
            company.clone(),
            cost,
            "Standard".into(),
            tokens,
            "Tokens".into(),
            company.clone(),
            company,
            model.clone().unwrap_or_default(),
            model.clone().unwrap_or_default(),
            if model.is_some() { "Model".into() } else { String::new() },
            "AI and Machine Learning".into(),
            service,
            "Generative AI".into(),
            bu.clone().unwrap_or_default(),
            bu.unwrap_or_default(),
            if tags.is_empty() {
                String::new()
            } else {
                Value::Object(tags).to_string()
            },
            t.upstream_calls().to_string(),
            t.input_tokens.to_string(),
            t.cached_input_tokens.to_string(),
            t.output_tokens.to_string(),
            t.reasoning_tokens.to_string(),
            t.unpriced_calls.to_string(),
            t.usage_missing.to_string(),
            t.usage_partial.to_string(),
        ];
        out.write_all(csv_line(&cells).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Scan;
    use crate::record::parse_line;
    use crate::report::Builder;

    #[test]
    fn table_cells_never_carry_control_characters() {
        let line = r#"{"record":{"value":{"ai_attribution.decision":"attributed","ai_attribution.business_unit":"\u001b[31mred\u001b[0m"}}}"#;
        let mut b = Builder::new(Field::parse_list("business_unit").unwrap(), Period::Day);
        b.add(&parse_line(line.as_bytes()).unwrap());
        let r = b.finish(Scan::default());
        let mut out = Vec::new();
        write_table(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("\u{fffd}[31mred"), "{text}");
        // CSV and JSON keep the value as logged.
        let mut csv = Vec::new();
        write_csv(&r, &mut csv).unwrap();
        assert!(String::from_utf8(csv).unwrap().contains('\u{1b}'));
    }

    fn table_of(lines: &[&str], by: &str) -> String {
        let mut b = Builder::new(Field::parse_list(by).unwrap(), Period::Day);
        for l in lines {
            b.add(&parse_line(l.as_bytes()).unwrap());
        }
        let mut out = Vec::new();
        write_table(&b.finish(Scan::default()), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_table_shows_the_columns_the_calls_have() {
        let tool = r#"{"start_time":"2026-11-01T10:00:00Z","record":{"value":{"ai_attribution.event":"tool_call","ai_attribution.decision":"exempt","mcp.method.name":"initialize","ai_attribution.service_account":"agent-a"}}}"#;
        let model = r#"{"start_time":"2026-11-01T10:00:00Z","record":{"value":{"ai_attribution.decision":"attributed","gen_ai.usage.input_tokens":3,"ai_attribution.service_account":"agent-a"}}}"#;
        let only_tools = table_of(&[tool], "service_account");
        assert!(only_tools.contains("exempt  tool_errors"), "{only_tools}");
        assert!(
            !only_tools.contains("input") && !only_tools.contains("Gaps"),
            "{only_tools}"
        );
        let only_models = table_of(&[model], "service_account");
        assert!(
            !only_models.contains("exempt") && only_models.contains("Gaps"),
            "{only_models}"
        );
        let both = table_of(&[tool, model], "event");
        assert!(both.contains("tool_errors") && both.contains("cost_usd"), "{both}");
    }
}
