//! The end of a call (`on_log`, which Envoy runs before the access log is written): the last
//! decision if one was still pending, the record, and the metric increments.

use super::{Call, Phase, QuotaReport, SeriesId, VmState};
use crate::config::{Config, MetricLabel};
use crate::host::Attributes;
use crate::host::{view, Headers};
use crate::mcp::{McpMessage, McpOutcome};
use crate::metrics::{self, micro_usd, UNKNOWN};
use crate::policy::Decision;
use crate::quota::{Outcome, Used};
use crate::record::{EventKind, QuotaRecord, Record, Tokens, ToolRecord, UsageStatus};
use crate::request::{plan_request, RequestPlan};
use crate::response::{cost_usd, tokens, ResponseUsage};
use std::borrow::Cow;
use std::rc::Rc;

/// `first`, then `rest`, in `buf` (one buffer serves every series of a call).
fn labelled<'b, 'a>(
    buf: &'b mut Vec<(&'a str, &'a str)>,
    rest: &[(&'a str, &'a str)],
    first: &[(&'a str, &'a str)],
) -> &'b [(&'a str, &'a str)] {
    buf.clear();
    buf.extend_from_slice(first);
    buf.extend_from_slice(rest);
    buf
}

/// Comma-joined, or `None` when empty.
fn join<'a>(items: impl Iterator<Item = &'a str>) -> Option<String> {
    let joined = items.collect::<Vec<_>>().join(",");
    (!joined.is_empty()).then_some(joined)
}

/// What a finished call leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub record: Record,
    /// The structured record, a serialized `google.protobuf.Struct`.
    pub structured: Vec<u8>,
    /// Counters to add to.
    pub counts: Vec<(SeriesId, u64)>,
    /// The report of what the call used, for the host to send to the rate-limit service.
    pub quota_report: Option<QuotaReport>,
    /// The configuration the record was built under (which scalar keys it writes).
    cfg: Rc<Config>,
}

impl Finished {
    /// The scalar filter-state keys (without the `wasm.` prefix) and their values, borrowed
    /// from the record where they are text.
    pub fn scalars(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        self.record.scalar_entries(&self.cfg)
    }
}

impl Call {
    /// Finishes the call: decides on what arrived if the decision still waited for the body (the
    /// client went away), records the dimensions the whole body gives, and builds the record.
    pub fn finish(mut self, host: &mut dyn Attributes, vm: &mut VmState) -> Finished {
        if let Phase::Deciding { held, .. } = &self.phase {
            let plan = self.replan(&view(held), host);
            self.attribution = plan.attribution;
            self.settle();
            // Never forwarded, whatever the decision: no usage to expect.
            self.response = None;
        } else if self.attribution.decision == Decision::Attributed && self.body.is_some() {
            if let Some(headers) = self.headers_for_body.as_ref() {
                // Body sources may fill dimensions the headers left empty, or outrank the source
                // that decided; source precedence holds over the whole body.
                let plan = self.replan(&view(headers), host);
                if plan.attribution.decision == Decision::Attributed {
                    self.attribution = plan.attribution;
                }
            }
        }
        let mut record = self.record();
        if let Some(tool) = record.tool.as_mut() {
            tool.session_mismatch = self.bind_session(vm);
        }
        let used = Used {
            tokens: match (record.tokens.input, record.tokens.output) {
                (None, None) => None,
                (i, o) => Some(i.unwrap_or(0).saturating_add(o.unwrap_or(0))),
            },
            cost_microusd: record.cost_usd.map(micro_usd),
        };
        let quota_report = self.quota_report(&used);
        record.quota = self.quota_record();
        if let Some(part) = self.quota_refusal_reason(record.quota.as_ref()) {
            if !record.reason.is_empty() {
                record.reason.push(';');
            }
            record.reason.push_str(&part);
        }
        record.exception = self.exception_names();
        let counts = if self.cfg.metrics_enabled {
            self.counts(&record, vm)
        } else {
            Vec::new()
        };
        Finished {
            structured: record.structured(&self.cfg),
            record,
            counts,
            quota_report,
            cfg: self.cfg.clone(),
        }
    }

    /// The `reason` part of a call the quota step refused: `over_budget:<budgets>` (429), or
    /// `quota_unavailable` (503, `failure_mode: deny`). `None` for a call it let through.
    fn quota_refusal_reason(&self, quota: Option<&QuotaRecord>) -> Option<String> {
        match self.quota.verdict.as_ref()?.outcome {
            Outcome::OverBudget => Some(format!(
                "over_budget:{}",
                quota.and_then(|q| q.over.as_deref()).unwrap_or("")
            )),
            Outcome::Unavailable => Some("quota_unavailable".to_string()),
            Outcome::Ok | Outcome::FailedOpen => None,
        }
    }

    fn quota_record(&self) -> Option<QuotaRecord> {
        let applicable = self.quota.applicable.as_ref().filter(|a| !a.budgets.is_empty())?;
        let name = |i: &usize| self.cfg.quota.budgets.get(*i).map(|b| b.name.as_str());
        let verdict = self.quota.verdict.as_ref();
        Some(QuotaRecord {
            budgets: applicable
                .budgets
                .iter()
                .filter_map(|(i, _)| name(i))
                .collect::<Vec<_>>()
                .join(","),
            outcome: verdict.map(|v| v.outcome.as_str()),
            over: verdict.and_then(|v| join(v.over.iter().filter_map(name))),
            reported: self.quota.reported.clone(),
        })
    }

    /// The exceptions the call passed by: one that met `require` for it, and those that
    /// relaxed a budget it would otherwise have been checked against.
    fn exception_names(&self) -> Option<String> {
        let mut used: Vec<usize> = self.attribution.exception.into_iter().collect();
        for &i in &self.quota.exceptions {
            if !used.contains(&i) {
                used.push(i);
            }
        }
        join(
            used.iter()
                .filter_map(|&i| self.cfg.exceptions.get(i).map(|e| e.name.as_str())),
        )
    }

    /// Plans again on the given request headers and the body read so far.
    fn replan(&self, headers: &Headers, host: &mut dyn Attributes) -> RequestPlan {
        plan_request(
            &self.cfg,
            &self.inbound(headers),
            host,
            self.body.as_ref(),
            self.correlation_id.clone(),
        )
    }

    /// Binds an MCP session to the service account of the first attributed call that used it
    /// (usually the `initialize` that opened it), in this VM: true when the session is bound to
    /// another one (`mcp_session_mismatch`). The service account is the dimension named
    /// `service_account`.
    fn bind_session(&self, vm: &mut VmState) -> bool {
        let Some(tool) = &self.tool else {
            return false;
        };
        let Some(session) = tool.session.as_deref().or(tool.issued_session.as_deref()) else {
            return false;
        };
        let account = self
            .cfg
            .dimensions
            .iter()
            .position(|d| d.name == "service_account")
            .and_then(|i| self.attribution.value(i));
        match account {
            // Only an attributed call opens (binds) a session.
            Some(account) => vm.bind_session(session, account, self.attribution.decision == Decision::Attributed),
            None => false,
        }
    }

    fn tool_record(&self) -> Option<ToolRecord> {
        let tool = self.tool.as_ref()?;
        let subject = tool.subject(&self.cfg);
        let method = subject.and_then(|m| m.method.clone());
        let names_it = |wanted: &str| method.as_deref() == Some(wanted);
        let outcome = tool.outcome();
        Some(ToolRecord {
            jsonrpc_id: subject.and_then(McpMessage::id_text),
            tool: subject.filter(|_| names_it("tools/call")).and_then(|m| m.name.clone()),
            prompt: subject.filter(|_| names_it("prompts/get")).and_then(|m| m.name.clone()),
            resource_uri: subject
                .filter(|_| names_it("resources/read"))
                .and_then(|m| m.uri.clone()),
            mcp_method: method,
            mcp_session: tool.session.clone(),
            protocol_version: tool.protocol_version.clone(),
            error_type: outcome.as_ref().and_then(McpOutcome::error_type),
            rpc_status: outcome.as_ref().and_then(McpOutcome::status_code),
            header_mismatch: tool.header_mismatch(),
            session_mismatch: false,
        })
    }

    /// `gen_ai.operation.name` of a tool call: `execute_tool` for `tools/call`, else the method
    /// (`mcp` for a request without one, such as the GET that opens a stream).
    fn tool_operation(record: &ToolRecord) -> String {
        match record.mcp_method.as_deref() {
            Some("tools/call") => "execute_tool".to_string(),
            Some(other) => other.to_string(),
            None => "mcp".to_string(),
        }
    }

    fn usage_status(&self) -> Option<UsageStatus> {
        if self.tool.is_some() {
            None
        } else if self.attribution.decision == Decision::Rejected || self.quota_refused() {
            // Refused by the filter (for its attribution, or at its budget check): no answer was
            // to come.
            Some(UsageStatus::NotApplicable)
        } else if !self.cfg.usage_enabled {
            None
        } else {
            // No response at all means the call was cut short before the upstream answered.
            Some(
                self.response
                    .as_ref()
                    .map_or(UsageStatus::Partial, ResponseUsage::status),
            )
        }
    }

    fn usage_reason(&self, status: Option<UsageStatus>) -> Option<String> {
        match (status, self.response.as_ref()) {
            (Some(UsageStatus::NotApplicable) | None, _) => None,
            (Some(_), Some(response)) => response.reason(),
            (Some(_), None) => Some("no answer came".to_string()),
        }
    }

    fn record(&self) -> Record {
        let cfg = &self.cfg;
        let usage = self.response.as_ref().map(ResponseUsage::usage).unwrap_or_default();
        let token_counts = tokens(&usage);
        let request_model = self
            .model
            .path_model
            .clone()
            .or_else(|| self.body.as_ref().and_then(|b| b.model()));
        let priced_model = usage.response_model.as_deref().or(request_model.as_deref());
        let usage_status = self.usage_status();
        // A cost is only stated for complete counts: a stream cut before its usage event would
        // otherwise be priced on its input alone.
        let cost = priced_model
            .filter(|_| usage_status == Some(UsageStatus::Reported))
            .and_then(|m| cfg.price_for(m))
            .and_then(|p| cost_usd(p, &token_counts));
        // The response format says best; before a response, the request's `stream` flag or path.
        let stream = self.response.as_ref().and_then(ResponseUsage::stream).or_else(|| {
            self.body
                .as_ref()
                .and_then(|b| b.stream())
                .or(self.model.path_stream.then_some(true))
        });
        let tool = self.tool_record();
        Record {
            event: if tool.is_some() {
                EventKind::ToolCall
            } else {
                EventKind::ModelCall
            },
            decision: self.attribution.decision,
            reason: self.attribution.reason(cfg),
            correlation_id: self.correlation_id.clone(),
            request_id: self.request_id.clone(),
            method: Some(self.method.clone()),
            // A pseudonymised dimension's clear value stays in the call: the record gets its pseudonym.
            dimensions: cfg
                .dimensions
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let shown = self.attribution.value(i).and_then(|v| cfg.shown(i, v));
                    (d.name.clone(), shown.map(std::borrow::Cow::into_owned))
                })
                .collect(),
            pseudonymised: cfg.privacy.pseudonymised.clone(),
            sources: self.attribution.sources(cfg),
            provider: self.model.provider.clone(),
            operation: tool
                .as_ref()
                .map_or_else(|| self.model.operation.clone(), Self::tool_operation),
            request_model,
            response_model: usage.response_model.clone(),
            response_id: usage.response_id.clone(),
            stream,
            tokens: token_counts,
            usage_reason: self.usage_reason(usage_status),
            response_end: self.response.as_ref().map(|r| r.end().as_str()),
            usage_status,
            cost_usd: cost,
            requested_tools: join(usage.tool_calls.iter().map(|t| t.name.as_str())),
            requested_tool_call_ids: join(usage.tool_calls.iter().filter_map(|t| t.id.as_deref())),
            trace_id: self.trace_id.clone(),
            tool,
            quota: None,
            exception: None,
        }
    }

    /// The counters this call adds to: requests, tokens by direction, cost and usage status, each
    /// with `provider` and the configured labels.
    fn counts<'a>(&'a self, record: &'a Record, vm: &mut VmState) -> Vec<(SeriesId, u64)> {
        let labels: Vec<(&str, &str)> = self
            .cfg
            .metric_labels
            .iter()
            .map(|&label| {
                let value = match label {
                    MetricLabel::Model => record.response_model.as_deref().or(record.request_model.as_deref()),
                    MetricLabel::Dimension(i) if self.attribution.unverified.contains(&i) => Some(metrics::UNVERIFIED),
                    // The record's value: a pseudonymised dimension's pseudonym.
                    MetricLabel::Dimension(i) => record.dimensions.get(i).and_then(|(_, v)| v.as_deref()),
                };
                (self.cfg.label_name(label), value.unwrap_or(UNKNOWN))
            })
            .collect();
        // One buffer for every series' labels: the fixed ones first, then the configured ones.
        let mut buf: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 3);
        if let Some(tool) = &record.tool {
            let method = tool.mcp_method.as_deref().unwrap_or(UNKNOWN);
            let name = tool.tool.as_deref().unwrap_or(UNKNOWN);
            let tool_labels = labelled(
                &mut buf,
                &labels,
                &[
                    ("decision", record.decision.as_str()),
                    ("mcp_method", method),
                    ("tool", name),
                ],
            );
            return vec![(vm.series(metrics::TOOL_CALLS, tool_labels), 1)];
        }
        let provider = record.provider.as_str();
        let mut out = Vec::with_capacity(5);
        out.push((
            vm.series(
                metrics::REQUESTS,
                labelled(
                    &mut buf,
                    &labels,
                    &[("decision", record.decision.as_str()), ("provider", provider)],
                ),
            ),
            1,
        ));
        let Tokens { input, output, .. } = record.tokens;
        for (direction, n) in [("input", input), ("output", output)] {
            if let Some(n) = n {
                let series = vm.series(
                    metrics::TOKENS,
                    labelled(&mut buf, &labels, &[("direction", direction), ("provider", provider)]),
                );
                out.push((series, n));
            }
        }
        if let Some(cost) = record.cost_usd {
            out.push((
                vm.series(metrics::COST, labelled(&mut buf, &labels, &[("provider", provider)])),
                micro_usd(cost),
            ));
        }
        if let Some(status) = record.usage_status {
            let series = vm.series(metrics::USAGE, &[("status", status.as_str()), ("provider", provider)]);
            out.push((series, 1));
        }
        out
    }
}
