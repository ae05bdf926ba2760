//! `report --html`: one self-contained page (inline CSS, SVG and a little JavaScript, nothing
//! fetched) drawn from the same [`Report`] as the table, CSV and FOCUS outputs.

use crate::fields::Money;
use crate::output::write_json;
use crate::report::{Report, Totals};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const PALETTE: [&str; 9] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
];
const OTHER_COLOR: &str = "#bab0ac";
const TOP_OWNERS: usize = 8;
const TOP_N: usize = 10;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Which number the charts show: cost when anything was priced, else tokens, else calls (a log
/// of tool calls, which have neither).
#[derive(Clone, Copy, PartialEq)]
enum Measure {
    Cost,
    Tokens,
    Calls,
}

impl Measure {
    fn of(self, t: &Totals) -> f64 {
        match self {
            Measure::Cost => t.cost.as_f64(),
            Measure::Tokens => t.tokens() as f64,
            Measure::Calls => t.calls as f64,
        }
    }
    fn text(self, t: &Totals) -> String {
        match self {
            Measure::Cost => format!("${}", t.cost.fixed(4)),
            Measure::Tokens => format!("{} tokens", t.tokens()),
            Measure::Calls => format!("{} calls", t.calls),
        }
    }
    fn exact(self, t: &Totals) -> String {
        match self {
            Measure::Cost => t.cost.exact(),
            Measure::Tokens => t.tokens().to_string(),
            Measure::Calls => t.calls.to_string(),
        }
    }
    fn axis(self, v: f64) -> String {
        match self {
            Measure::Cost if v < 1.0 => format!("${v:.4}"),
            Measure::Cost => format!("${v:.2}"),
            Measure::Tokens | Measure::Calls => format!("{v:.0}"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Measure::Cost => "cost (USD)",
            Measure::Tokens => "tokens (no call was priced)",
            Measure::Calls => "calls (no call had tokens)",
        }
    }
}

/// Spend by owner (the first `--by` field) over time, as stacked bars.
fn spend_over_time(r: &Report, m: Measure) -> String {
    let owner_name = r.by.first().map_or("all calls", |f| f.name());
    // period -> owner -> totals
    let mut grid: BTreeMap<Option<i64>, BTreeMap<String, Totals>> = BTreeMap::new();
    let mut per_owner: BTreeMap<String, Totals> = BTreeMap::new();
    for row in &r.rows {
        let owner = row.key.first().cloned().flatten().unwrap_or_else(|| {
            if r.by.is_empty() {
                "all".into()
            } else {
                "(none)".into()
            }
        });
        grid.entry(row.period_start)
            .or_default()
            .entry(owner.clone())
            .or_default()
            .merge(&row.totals);
        per_owner.entry(owner).or_default().merge(&row.totals);
    }
    let mut ranked: Vec<(String, f64)> = per_owner.iter().map(|(o, t)| (o.clone(), m.of(t))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let top: Vec<String> = ranked.iter().take(TOP_OWNERS).map(|(o, _)| o.clone()).collect();
    let color = |o: &str| -> &'static str {
        top.iter()
            .position(|t| t == o)
            .and_then(|i| PALETTE.get(i))
            .copied()
            .unwrap_or(OTHER_COLOR)
    };
    // Fold the rest into "other".
    let columns: Vec<(String, Vec<(String, Totals)>)> = grid
        .iter()
        .map(|(p, owners)| {
            let label = p.map_or_else(|| "(no time)".into(), |s| r.period.label(s));
            let mut stack: Vec<(String, Totals)> = Vec::new();
            let mut other = Totals::default();
            for o in &top {
                if let Some(t) = owners.get(o) {
                    stack.push((o.clone(), t.clone()));
                }
            }
            for (o, t) in owners {
                if !top.contains(o) {
                    other.merge(t);
                }
            }
            if other.calls > 0 {
                stack.push(("other".into(), other));
            }
            (label, stack)
        })
        .collect();
    let max = columns
        .iter()
        .map(|(_, s)| s.iter().map(|(_, t)| m.of(t)).sum::<f64>())
        .fold(0.0f64, f64::max);
    let (w, h, left, bottom, top_pad) = (860.0, 320.0, 70.0, 60.0, 10.0);
    let plot_h = h - bottom - top_pad;
    let n = columns.len().max(1) as f64;
    let slot = (w - left - 10.0) / n;
    let bar_w = (slot * 0.7).clamp(2.0, 60.0);
    let mut svg = format!(
        "<svg id=\"chart-spend-over-time\" class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{} by {} per {}\">",
        m.name(),
        esc(owner_name),
        r.period.as_str()
    );
    axis(&mut svg, m, max, left, w, top_pad, plot_h);
    for (i, (label, stack)) in columns.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = top_pad + plot_h;
        for (owner, t) in stack {
            let v = m.of(t);
            let bh = if max > 0.0 { v / max * plot_h } else { 0.0 };
            y -= bh;
            let _ = write!(
                svg,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{bh:.1}\" fill=\"{}\" data-period=\"{}\" data-owner=\"{}\" data-value=\"{}\"><title>{} {}: {}</title></rect>",
                if owner == "other" { OTHER_COLOR } else { color(owner) },
                esc(label),
                esc(owner),
                m.exact(t),
                esc(label),
                esc(owner),
                esc(&m.text(t))
            );
        }
        if columns.len() <= 31 || i % (columns.len() / 31 + 1) == 0 {
            let cx = x + bar_w / 2.0;
            let ly = top_pad + plot_h + 14.0;
            let _ = write!(
                svg,
                "<text class=\"tick\" x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\" transform=\"rotate(-35 {cx:.1} {ly:.1})\">{}</text>",
                esc(label)
            );
        }
    }
    svg.push_str("</svg>");
    let mut legend = String::from("<div class=\"legend\">");
    let mut names: Vec<String> = top.clone();
    if ranked.len() > top.len() {
        names.push("other".into());
    }
    for o in &names {
        let c = if o == "other" { OTHER_COLOR } else { color(o) };
        let _ = write!(legend, "<span><i style=\"background:{c}\"></i>{}</span>", esc(o));
    }
    legend.push_str("</div>");
    format!(
        "<section><h2>{} by {} per {}</h2>{svg}{legend}</section>",
        cap(m.name()),
        esc(owner_name),
        r.period.as_str()
    )
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn axis(svg: &mut String, m: Measure, max: f64, left: f64, w: f64, top: f64, plot_h: f64) {
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = top + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - 10.0,
            left - 6.0,
            y + 4.0,
            esc(&m.axis(v))
        );
    }
}

/// Horizontal bars: `(label, value for length, exact value, text)`.
fn hbars(id: &str, title: &str, items: &[(String, f64, String, String, &str)]) -> String {
    let mut out = format!("<section><h2>{}</h2>", esc(title));
    if items.is_empty() {
        let _ = write!(out, "<svg id=\"{id}\" class=\"chart hbar empty\" viewBox=\"0 0 420 40\"><text class=\"tick\" x=\"10\" y=\"24\">none</text></svg></section>");
        return out;
    }
    let row_h = 24.0;
    let (w, label_w) = (420.0, 150.0);
    let h = row_h * items.len() as f64 + 10.0;
    let max = items.iter().map(|i| i.1).fold(0.0f64, f64::max);
    let _ = write!(
        out,
        "<svg id=\"{id}\" class=\"chart hbar\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for (i, (label, v, exact, text, color)) in items.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let len = if max > 0.0 { v / max * (w - label_w - 90.0) } else { 0.0 };
        let short: String = if label.chars().count() > 22 {
            label.chars().take(21).collect::<String>() + "…"
        } else {
            label.clone()
        };
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect class=\"bar\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{len:.1}\" height=\"{:.1}\" fill=\"{color}\" data-label=\"{}\" data-value=\"{}\"><title>{}: {}</title></rect><text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            label_w - 6.0,
            y + 15.0,
            esc(&short),
            row_h - 6.0,
            esc(label),
            esc(exact),
            esc(label),
            esc(text),
            label_w + len + 4.0,
            y + 15.0,
            esc(text)
        );
    }
    out.push_str("</svg></section>");
    out
}

fn top_items(
    list: &[(String, Totals)],
    m: Measure,
    color: &'static str,
) -> Vec<(String, f64, String, String, &'static str)> {
    list.iter()
        .take(TOP_N)
        .map(|(name, t)| (name.clone(), m.of(t), m.exact(t), m.text(t), color))
        .collect()
}

fn tile(label: &str, value: &str, id: &str) -> String {
    format!(
        "<div class=\"tile\" id=\"{id}\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    )
}

/// The chargeback table (the first rows; the JSON block has them all).
fn table(r: &Report) -> String {
    const MAX_ROWS: usize = 500;
    let mut out = String::from("<section><h2>Chargeback</h2><table id=\"chargeback\"><thead><tr><th>period</th>");
    for f in &r.by {
        let _ = write!(out, "<th>{}</th>", esc(f.name()));
    }
    out.push_str("<th>calls</th><th>rejected</th><th>input</th><th>cached</th><th>output</th><th>cost_usd</th><th>unpriced</th><th>usage missing</th><th>usage partial</th></tr></thead><tbody>");
    for row in r.rows.iter().take(MAX_ROWS) {
        let t = &row.totals;
        let _ = write!(
            out,
            "<tr><td>{}</td>",
            esc(&row
                .period_start
                .map_or_else(|| "(no time)".into(), |s| r.period.label(s)))
        );
        for k in &row.key {
            let _ = write!(out, "<td>{}</td>", esc(k.as_deref().unwrap_or("(none)")));
        }
        let _ = write!(
            out,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\" data-cost=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            t.calls,
            t.rejected,
            t.input_tokens,
            t.cached_input_tokens,
            t.output_tokens,
            t.cost.exact(),
            t.cost.fixed(6),
            t.unpriced_calls,
            t.usage_missing,
            t.usage_partial
        );
    }
    out.push_str("</tbody></table>");
    if r.rows.len() > MAX_ROWS {
        let _ = write!(
            out,
            "<p>{} more rows are in the JSON data of this page.</p>",
            r.rows.len() - MAX_ROWS
        );
    }
    out.push_str("</section>");
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}.sub{color:#666;margin:0 0 16px}.tiles{display:flex;flex-wrap:wrap;gap:12px}.tile{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}.tile b{display:block;font-size:20px}.tile span{color:#666;font-size:12px}.tile.gap b{color:#b3261e}.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}.chart{width:100%;max-width:860px;height:auto}.chart.hbar{max-width:560px}.grid{stroke:#eee}.tick,.label,.value{font-size:11px;fill:#555}.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}table{border-collapse:collapse;font-size:12px}th,td{border-bottom:1px solid #eee;padding:3px 8px;text-align:left}th{cursor:pointer;background:#fafafa}td.n{text-align:right;font-variant-numeric:tabular-nums}";

const SCRIPT: &str = "document.querySelectorAll('#chargeback th').forEach(function(th,i){th.addEventListener('click',function(){var tb=th.closest('table').tBodies[0];var rows=Array.prototype.slice.call(tb.rows);var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';rows.sort(function(a,b){var x=a.cells[i].textContent,y=b.cells[i].textContent;var nx=parseFloat(x),ny=parseFloat(y);var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c});rows.forEach(function(r){tb.appendChild(r)})})});document.body.setAttribute('data-ready','1');";

/// The whole page.
pub fn render(r: &Report) -> String {
    let m = if r.totals.cost > Money(0) {
        Measure::Cost
    } else if r.totals.tokens() > 0 {
        Measure::Tokens
    } else {
        Measure::Calls
    };
    let t = &r.totals;
    let range = match (r.first_ms, r.last_ms) {
        (Some(a), Some(b)) => format!(
            "{} to {}",
            crate::time::format_rfc3339(a),
            crate::time::format_rfc3339(b)
        ),
        _ => "no timed records".into(),
    };
    let not_records = r.scan.not_record_total() - r.scan.count(crate::record::NotRecord::Blank);
    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>AI attribution report</title><style>");
    page.push_str(STYLE);
    page.push_str("</style></head><body><h1>AI attribution report</h1>");
    let _ = write!(
        page,
        "<p class=\"sub\">{} records from {} lines, {range}; by {} per {}</p>",
        r.scan.records,
        r.scan.lines,
        esc(&r.by.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")),
        r.period.as_str()
    );
    page.push_str("<div class=\"tiles\">");
    page.push_str(&tile("cost (USD)", &t.cost.fixed(4), "tile-cost"));
    page.push_str(&tile("calls", &t.calls.to_string(), "tile-calls"));
    page.push_str(&tile("input tokens", &t.input_tokens.to_string(), "tile-input"));
    page.push_str(&tile("output tokens", &t.output_tokens.to_string(), "tile-output"));
    page.push_str(&tile("rejected", &t.rejected.to_string(), "tile-rejected"));
    page.push_str(&tile("would reject", &t.would_reject.to_string(), "tile-would-reject"));
    for (label, n, id) in [
        ("calls with no price", t.unpriced_calls, "tile-unpriced"),
        ("usage missing", t.usage_missing, "tile-usage-missing"),
        ("usage partial", t.usage_partial, "tile-usage-partial"),
        ("lines that were not records", not_records, "tile-not-records"),
    ] {
        let _ = write!(
            page,
            "<div class=\"tile{}\" id=\"{id}\"><b>{n}</b><span>{}</span></div>",
            if n > 0 { " gap" } else { "" },
            esc(label)
        );
    }
    page.push_str("</div>");
    page.push_str(&spend_over_time(r, m));
    page.push_str("<div class=\"grid2\">");
    page.push_str(&hbars(
        "chart-top-service-accounts",
        &format!("Top service accounts by {}", m.name()),
        &top_items(&r.service_accounts, m, "#4e79a7"),
    ));
    page.push_str(&hbars(
        "chart-top-users",
        &format!("Top users by {}", m.name()),
        &top_items(&r.users, m, "#59a14f"),
    ));
    page.push_str("</div>");
    let rejections: Vec<(String, f64, String, String, &str)> = r
        .rejections
        .iter()
        .take(15)
        .map(|(d, reason, n)| {
            let label = if reason.is_empty() {
                format!("{d}: (no reason)")
            } else {
                format!("{d}: {reason}")
            };
            let color = if d == "rejected" { "#e15759" } else { "#f28e2b" };
            (label, *n as f64, n.to_string(), format!("{n} calls"), color)
        })
        .collect();
    page.push_str(&hbars("chart-rejections", "Rejections by reason", &rejections));
    page.push_str(&table(r));
    let mut json = Vec::new();
    let _ = write_json(r, &mut json);
    // '<' only occurs inside JSON strings: escaped, nothing in the data can end the script element.
    let data = String::from_utf8_lossy(&json).replace('<', "\\u003c");
    let _ = writeln!(
        page,
        "<script type=\"application/json\" id=\"report-data\">{data}</script><script>{SCRIPT}</script></body></html>"
    );
    page
}

#[cfg(test)]
mod tests {
    use super::{esc, render};
    use crate::fields::Field;
    use crate::input::Scan;
    use crate::record::parse_line;
    use crate::report::Builder;
    use crate::time::Period;

    #[test]
    fn a_page_of_tool_calls_charts_calls() {
        let mut b = Builder::new(Field::parse_list("service_account").unwrap(), Period::Hour);
        let line = r#"{"start_time":"2026-11-01T10:00:00Z","record":{"value":{"ai_attribution.event":"tool_call","ai_attribution.decision":"attributed","gen_ai.tool.name":"search_docs","ai_attribution.service_account":"agent-a"}}}"#;
        b.add(&parse_line(line.as_bytes()).unwrap());
        let page = render(&b.finish(Scan::default()));
        assert!(page.contains("Calls (no call had tokens)"), "{page}");
        assert!(page.contains("1 calls"), "{page}");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
