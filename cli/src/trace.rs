//! `trace`: every record of one correlation ID across hops, in time order, and what does not add
//! up (a hop missing downstream, hops that disagree on identity or tokens).

use crate::fields::Money;
use crate::input::{Origin, Scan};
use crate::record::Record;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// One record of the call.
#[derive(Debug, Clone)]
pub struct Hop {
    pub origin: Origin,
    pub input_name: String,
    pub time_ms: Option<i64>,
    pub start_time: Option<String>,
    pub event: String,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub dims: Vec<(String, String)>,
    pub sources: Option<String>,
    pub provider: Option<String>,
    pub operation: Option<String>,
    pub model: Option<String>,
    pub tool: Option<String>,
    pub mcp_method: Option<String>,
    pub mcp_session: Option<String>,
    pub jsonrpc_id: Option<String>,
    pub mcp_header_mismatch: bool,
    pub mcp_session_mismatch: bool,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub usage_status: Option<String>,
    pub cost_usd: Option<f64>,
    pub status: Option<String>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    /// Found through Envoy's `x-request-id` rather than the correlation ID: a hop that did not
    /// take the correlation ID from the one before it.
    pub linked_by_request_id: bool,
    pub error: Option<String>,
}

impl Hop {
    pub fn from_record(r: &Record<'_>, origin: Origin, input_name: &str) -> Hop {
        let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
        let mut dims: Vec<(String, String)> = r.dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        dims.sort();
        Hop {
            origin,
            input_name: input_name.to_string(),
            time_ms: r.time_ms,
            start_time: s(&r.start_time),
            event: r.event().as_str().to_string(),
            decision: r.decision().map(str::to_string),
            reason: s(&r.reason).filter(|x| !x.is_empty()),
            dims,
            sources: s(&r.sources),
            provider: s(&r.provider),
            operation: s(&r.operation),
            model: r.model().map(str::to_string),
            tool: r.tool().map(str::to_string),
            mcp_method: s(&r.mcp_method).filter(|x| !x.is_empty()),
            mcp_session: s(&r.mcp_session).filter(|x| !x.is_empty()),
            jsonrpc_id: s(&r.jsonrpc_id).filter(|x| !x.is_empty()),
            mcp_header_mismatch: r.mcp_header_mismatch == Some(true),
            mcp_session_mismatch: r.mcp_session_mismatch == Some(true),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cached_input_tokens: r.cached_input_tokens,
            reasoning_tokens: r.reasoning_tokens,
            usage_status: s(&r.usage_status),
            cost_usd: r.cost_usd,
            status: s(&r.status),
            request_id: s(&r.envoy_request_id),
            correlation_id: s(&r.correlation_id),
            linked_by_request_id: false,
            error: s(&r.error_type).or_else(|| s(&r.rpc_status).map(|c| format!("rpc status {c}"))),
        }
    }

    fn source_of(&self, dim: &str) -> Option<&str> {
        let sources = self.sources.as_deref()?;
        sources.split(',').find_map(|part| {
            let (d, s) = part.split_once('=')?;
            (d == dim).then_some(s)
        })
    }

    fn tokens_text(&self) -> String {
        let n = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |n| n.to_string());
        format!(
            "{} input ({} cached), {} output ({} reasoning)",
            n(self.input_tokens),
            n(self.cached_input_tokens),
            n(self.output_tokens),
            n(self.reasoning_tokens)
        )
    }
}

/// The call's records and what was found about them.
pub struct Trace {
    pub id: String,
    pub hops: Vec<Hop>,
    pub decided_by: Option<usize>,
    pub findings: Vec<String>,
}

/// Puts the hops in order and looks for gaps and disagreements.
pub fn analyse(id: &str, mut hops: Vec<Hop>, scan: &Scan) -> Trace {
    hops.sort_by_key(|h| (h.time_ms.unwrap_or(i64::MAX), h.origin.input, h.origin.line));
    let mut findings = Vec::new();

    // Which hop decided: the first to reject, else the first hop.
    let decided_by = hops
        .iter()
        .position(|h| h.decision.as_deref() == Some("rejected"))
        .or(if hops.is_empty() { None } else { Some(0) });
    if let Some(r) = hops.iter().position(|h| h.decision.as_deref() == Some("rejected")) {
        if r + 1 < hops.len() {
            findings.push(format!(
                "hop {} rejected the call, yet {} later record(s) exist: a retry, or a hop that let it through",
                r + 1,
                hops.len() - r - 1
            ));
        }
    }

    // A hop missing: each input is one hop's log, in hop order, so an input with no record is a
    // hop the call did not pass (expected only after a hop that rejected it).
    if scan.input_names.len() > 1 {
        let first_input = hops.iter().map(|h| h.origin.input).min().unwrap_or(0);
        let rejected_at = hops
            .iter()
            .find(|h| h.decision.as_deref() == Some("rejected"))
            .map(|h| h.origin.input);
        let seen: Vec<usize> = hops.iter().map(|h| h.origin.input).collect();
        for (i, name) in scan.input_names.iter().enumerate() {
            if seen.contains(&i) || rejected_at.is_some_and(|r| i > r) {
                continue;
            }
            if i < first_input {
                let first = hops.first().map_or("?", |h| h.input_name.as_str());
                findings.push(format!(
                    "hop missing upstream: {name} has no record of the call, which reached {first} without passing it"
                ));
            } else if let Some(prev) = hops
                .iter()
                .filter(|h| h.origin.input < i)
                .max_by_key(|h| h.origin.input)
            {
                findings.push(format!(
                    "hop missing downstream: {} ({}) {} the call, but {name} has no record of it",
                    prev.input_name,
                    prev.start_time.as_deref().unwrap_or("no time"),
                    prev.decision.as_deref().unwrap_or("passed")
                ));
            }
        }
    }
    for (i, h) in hops.iter().enumerate() {
        if h.linked_by_request_id {
            findings.push(format!(
                "hop {} ({}) gave the call its own correlation id {}: it is linked by x-request-id {} only, so it did not trust the hop before it (is that hop in its header_trust.peers?)",
                i + 1,
                h.input_name,
                h.correlation_id.as_deref().unwrap_or("(none)"),
                h.request_id.as_deref().unwrap_or("?")
            ));
        }
    }
    for (i, name) in scan.input_names.iter().enumerate() {
        let n = hops.iter().filter(|h| h.origin.input == i).count();
        if n > 1 {
            findings.push(format!("{n} records in {name}: a retry or a duplicated log line"));
        }
    }

    // Disagreements on identity.
    let mut names: Vec<&str> = hops
        .iter()
        .flat_map(|h| h.dims.iter().map(|(k, _)| k.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let values: Vec<(usize, &str)> = hops
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.dims.iter().find(|(k, _)| k == name).map(|(_, v)| (i, v.as_str())))
            .collect();
        if values.windows(2).any(|w| matches!(w, [a, b] if a.1 != b.1)) {
            let list: Vec<String> = values.iter().map(|(i, v)| format!("hop {} {v}", i + 1)).collect();
            findings.push(format!("hops disagree on {name}: {}", list.join(", ")));
        }
        let present: Vec<usize> = values.iter().map(|(i, _)| *i).collect();
        let lost: Vec<String> = (0..hops.len())
            .filter(|i| !present.contains(i) && present.iter().any(|p| p < i))
            .filter(|i| hops.get(*i).is_some_and(|h| h.decision.is_some()))
            .map(|i| format!("hop {}", i + 1))
            .collect();
        if !lost.is_empty() {
            findings.push(format!(
                "{name} was known upstream but is absent at {}",
                lost.join(", ")
            ));
        }
    }

    // Disagreements on usage.
    let reported: Vec<(usize, &Hop)> = hops
        .iter()
        .enumerate()
        .filter(|(_, h)| h.input_tokens.is_some() || h.output_tokens.is_some())
        .collect();
    if reported.windows(2).any(
        |w| matches!(w, [(_, a), (_, b)] if (a.input_tokens, a.output_tokens) != (b.input_tokens, b.output_tokens)),
    ) {
        let list: Vec<String> = reported
            .iter()
            .map(|(i, h)| format!("hop {} {}", i + 1, h.tokens_text()))
            .collect();
        findings.push(format!("hops disagree on tokens: {}", list.join("; ")));
    }
    let costs: Vec<(usize, Money)> = hops
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.cost_usd.map(|c| (i, Money::from_usd(c))))
        .collect();
    if costs.windows(2).any(|w| matches!(w, [a, b] if a.1 != b.1)) {
        let list: Vec<String> = costs
            .iter()
            .map(|(i, c)| format!("hop {} ${}", i + 1, c.exact()))
            .collect();
        findings.push(format!("hops disagree on cost: {}", list.join(", ")));
    }
    if costs.len() > 1 {
        findings.push(format!(
            "{} hops priced this call: add up one of them, not all, in chargeback",
            costs.len()
        ));
    }
    Trace {
        id: id.to_string(),
        hops,
        decided_by,
        findings,
    }
}

pub fn render_text(t: &Trace) -> String {
    let mut out = format!("correlation id {}: {} record(s)\n", t.id, t.hops.len());
    for (i, h) in t.hops.iter().enumerate() {
        let _ = writeln!(
            out,
            "\nhop {}  {}  {}:{}  {}{}{}",
            i + 1,
            h.start_time.as_deref().unwrap_or("(no time)"),
            h.input_name,
            h.origin.line,
            h.decision.as_deref().unwrap_or("(no decision)"),
            h.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
            h.status.as_deref().map(|s| format!("  status {s}")).unwrap_or_default(),
        );
        if h.dims.is_empty() {
            let _ = writeln!(out, "  identity: none");
        } else {
            let ids: Vec<String> = h
                .dims
                .iter()
                .map(|(k, v)| match h.source_of(k) {
                    Some(s) => format!("{k}={v} (from {s})"),
                    None => format!("{k}={v}"),
                })
                .collect();
            let _ = writeln!(out, "  identity: {}", ids.join(", "));
        }
        if h.event == "tool_call" {
            let mut what = format!("  tool_call {}", h.mcp_method.as_deref().unwrap_or("(no method)"));
            if let Some(tool) = &h.tool {
                let _ = write!(what, " tool {tool}");
            }
            let mut ids = Vec::new();
            if let Some(id) = &h.jsonrpc_id {
                ids.push(format!("JSON-RPC id {id}"));
            }
            if let Some(session) = &h.mcp_session {
                ids.push(format!("MCP session {session}"));
            }
            if !ids.is_empty() {
                let _ = write!(what, " ({})", ids.join(", "));
            }
            let _ = writeln!(out, "{what}");
            match &h.error {
                Some(e) => {
                    let _ = writeln!(out, "  outcome: error {e}");
                }
                None if h.decision.as_deref() == Some("rejected") => {}
                None => {
                    let _ = writeln!(out, "  outcome: no error recorded");
                }
            }
            if h.mcp_session_mismatch {
                let _ = writeln!(
                    out,
                    "  warning: this MCP session was opened by another service account (mcp_session_mismatch)"
                );
            }
            if h.mcp_header_mismatch {
                let _ = writeln!(
                    out,
                    "  warning: the Mcp-Method or Mcp-Name header disagreed with the body (mcp_header_mismatch)"
                );
            }
            continue;
        }
        let what = match (&h.tool, &h.model) {
            (Some(tool), _) => format!("tool {tool}"),
            (None, Some(m)) => format!("model {m}"),
            (None, None) => "model unknown".to_string(),
        };
        let _ = writeln!(
            out,
            "  {} {what} via {} {}",
            h.event,
            h.provider.as_deref().unwrap_or("?"),
            h.operation.as_deref().unwrap_or("?")
        );
        if let Some(e) = &h.error {
            let _ = writeln!(out, "  error: {e}");
        }
        let _ = writeln!(
            out,
            "  usage {}: {}; cost {}",
            h.usage_status.as_deref().unwrap_or("unknown"),
            h.tokens_text(),
            h.cost_usd.map_or_else(
                || "none (no price)".to_string(),
                |c| format!("${}", Money::from_usd(c).exact())
            )
        );
    }
    if let Some(d) = t.decided_by.and_then(|i| t.hops.get(i).map(|h| (i, h))) {
        let _ = writeln!(
            out,
            "\ndecided at hop {} ({}): {}",
            d.0 + 1,
            d.1.input_name,
            d.1.decision.as_deref().unwrap_or("no decision")
        );
    }
    if t.findings.is_empty() {
        out.push_str("consistent: every hop agrees\n");
    } else {
        out.push_str("findings:\n");
        for f in &t.findings {
            let _ = writeln!(out, "  - {f}");
        }
    }
    out
}

pub fn render_json(t: &Trace) -> Value {
    json!({
        "correlation_id": t.id,
        "decided_by_hop": t.decided_by.map(|i| i + 1),
        "findings": t.findings,
        "hops": t.hops.iter().enumerate().map(|(i, h)| json!({
            "hop": i + 1,
            "input": h.input_name,
            "line": h.origin.line,
            "start_time": h.start_time,
            "event": h.event,
            "decision": h.decision,
            "reason": h.reason,
            "status": h.status,
            "request_id": h.request_id,
            "correlation_id": h.correlation_id,
            "linked_by_request_id": h.linked_by_request_id,
            "identity": h.dims.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "sources": h.sources,
            "provider": h.provider,
            "operation": h.operation,
            "model": h.model,
            "tool": h.tool,
            "mcp_method": h.mcp_method,
            "mcp_session": h.mcp_session,
            "jsonrpc_id": h.jsonrpc_id,
            "mcp_header_mismatch": h.mcp_header_mismatch,
            "mcp_session_mismatch": h.mcp_session_mismatch,
            "input_tokens": h.input_tokens,
            "cached_input_tokens": h.cached_input_tokens,
            "output_tokens": h.output_tokens,
            "reasoning_tokens": h.reasoning_tokens,
            "usage_status": h.usage_status,
            "cost_usd": h.cost_usd.map(|c| crate::output::money_json(Money::from_usd(c))),
            "error": h.error,
        })).collect::<Vec<_>>(),
    })
}
