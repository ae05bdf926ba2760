//! The quota step of a model call: once the call is attributed (and its model known, when a
//! budget counts per model), one check of every budget it falls under, the call held until the
//! service answers; after the answer, one report of what the call used. A spent budget refuses
//! the call with 429 in its API family's shape; a service that cannot answer lets it go on or
//! refuses it with 503, as `quota.failure_mode` says.

use super::{Call, Effect, Phase, Step};
use crate::policy::Decision;
use crate::quota::{self, Applicable, CallValues, CheckAnswer, Outcome, Used, Verdict};
use crate::reject::{ErrorShape, LocalReply, Refusal};

/// Where the quota step is.
#[derive(Debug, Default)]
pub(super) struct QuotaStep {
    /// The budgets the call falls under, once known.
    pub applicable: Option<Applicable>,
    /// The check is in flight.
    pub checking: bool,
    pub verdict: Option<Verdict>,
    /// The exceptions that relaxed a budget for this call.
    pub exceptions: Vec<usize>,
    /// `budget=hits,...` of the report, once sent.
    pub reported: Option<String>,
    /// `quota_tokens` and `quota_cost_microusd` were written.
    pub usage_written: bool,
}

/// A report for the host to send after the call (fire and forget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaReport {
    pub cluster: String,
    pub message: Vec<u8>,
    pub timeout_ms: u64,
}

impl Call {
    /// Whether a budget of this call counts per model while the model is still unknown.
    pub(super) fn quota_needs_model(&self) -> bool {
        self.tool.is_none()
            && self.cfg.quota.enabled()
            && self.request_model().is_none()
            && self.cfg.quota.budgets.iter().any(|b| b.needs_model())
    }

    /// Starts the quota step of a call that is about to be forwarded: the check, when budgets
    /// apply (the step then pauses until [`Call::on_quota_answer`]).
    pub(super) fn quota_gate(&mut self, mut effects: Vec<Effect>) -> Step {
        if self.tool.is_some() || !self.cfg.quota.enabled() || self.quota.applicable.is_some() {
            return Step::with(effects);
        }
        let cfg = self.cfg.clone();
        let model = self.request_model();
        let relaxed: Vec<usize> = self.covering_exceptions(|e| !e.budgets.is_empty());
        let relaxed_budgets: Vec<usize> = relaxed
            .iter()
            .filter_map(|&e| cfg.exceptions.get(e))
            .flat_map(|e| e.budgets.iter().copied())
            .collect();
        let attribution = &self.attribution;
        // Budget keys carry what may leave the filter: a pseudonymised dimension's pseudonym.
        let shown: Vec<Option<String>> = (0..cfg.dimensions.len())
            .map(|i| {
                let value = attribution.verified_value(i)?;
                cfg.shown(i, value).map(std::borrow::Cow::into_owned)
            })
            .collect();
        let dimension = |i: usize| shown.get(i).and_then(|v| v.as_deref());
        let satisfies = |require: &[Vec<usize>]| {
            require
                .iter()
                .any(|alt| alt.iter().all(|&i| attribution.verified_value(i).is_some()))
        };
        let applicable = quota::applicable(
            &cfg.quota,
            &CallValues {
                dimension: &dimension,
                model: model.as_deref(),
                provider: &self.model.provider,
                satisfies: &satisfies,
                relaxed: &relaxed_budgets,
            },
        );
        self.quota.exceptions = relaxed;
        if applicable.budgets.is_empty() {
            self.quota.applicable = Some(applicable);
            return Step::with(effects);
        }
        effects.push(Effect::CheckQuota {
            cluster: cfg.quota.cluster.clone(),
            message: quota::check_message(&cfg.quota, &applicable),
            timeout_ms: cfg.quota.timeout_ms,
        });
        self.quota.applicable = Some(applicable);
        self.quota.checking = true;
        self.phase = Phase::Forwarded;
        Step {
            effects,
            flow: super::Flow::Pause,
        }
    }

    /// Whether the call was refused at its budget check (429 over budget, or 503 when the
    /// service could not answer and budgets are enforced).
    pub(super) fn quota_refused(&self) -> bool {
        self.quota
            .verdict
            .as_ref()
            .is_some_and(|v| matches!(v.outcome, Outcome::OverBudget | Outcome::Unavailable))
    }

    /// Whether the call waits for the rate-limit service's answer.
    pub fn awaits_quota(&self) -> bool {
        self.quota.checking
    }

    /// The rate-limit service answered the check (or could not): the call goes on (the host
    /// resumes it) or is refused.
    pub fn on_quota_answer(&mut self, answer: &CheckAnswer) -> Step {
        if !self.quota.checking {
            return Step::proceed();
        }
        self.quota.checking = false;
        let Some(applicable) = self.quota.applicable.as_ref() else {
            return Step::proceed();
        };
        let verdict = quota::verdict(&self.cfg.quota, applicable, answer);
        let step = match verdict.outcome {
            Outcome::Ok | Outcome::FailedOpen => Step::proceed(),
            Outcome::OverBudget => Step::reject(self.over_budget_reply(&verdict)),
            Outcome::Unavailable => Step::reject(self.quota_unavailable_reply()),
        };
        if matches!(verdict.outcome, Outcome::OverBudget | Outcome::Unavailable) {
            self.phase = Phase::Rejected;
        }
        self.quota.verdict = Some(verdict);
        step
    }

    /// The owner a budget counts, as `key=value` pairs: what the refusal names.
    fn budget_owner(&self, budget: usize) -> String {
        self.quota
            .applicable
            .as_ref()
            .and_then(|a| a.budgets.iter().find(|(i, _)| *i == budget))
            .map(|(_, entries)| {
                entries
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }

    fn over_budget_reply(&self, verdict: &Verdict) -> LocalReply {
        let cfg = &self.cfg;
        let spent: Vec<String> = verdict
            .over
            .iter()
            .filter_map(|&i| {
                let budget = cfg.quota.budgets.get(i)?;
                Some(format!(
                    "{} ({}) for {}",
                    budget.name,
                    budget.hits.as_str(),
                    self.budget_owner(i)
                ))
            })
            .collect();
        let mut message = format!("Budget spent: {}.", spent.join("; "));
        if let Some(s) = verdict.retry_after {
            message.push_str(&format!(" It resets in {s} s."));
        }
        let mut reply = Refusal {
            status: 429,
            code: "budget_exceeded",
            reason: "BUDGET_EXCEEDED",
            message,
            missing: Vec::new(),
            correlation_id: &self.correlation_id,
        }
        .reply(ErrorShape::of(&self.model), &cfg.correlation_header);
        if let Some(s) = verdict.retry_after {
            reply.headers.push(("retry-after".to_string(), s.to_string()));
        }
        // The OpenAI and Anthropic SDKs retry a 429 unless told not to; a spent budget stays
        // spent until its window resets.
        reply.headers.push(("x-should-retry".to_string(), "false".to_string()));
        reply
    }

    fn quota_unavailable_reply(&self) -> LocalReply {
        Refusal {
            status: 503,
            code: "budget_unavailable",
            reason: "BUDGET_UNAVAILABLE",
            message: "The budget service did not answer, and budgets are enforced (quota.failure_mode: deny)."
                .to_string(),
            missing: Vec::new(),
            correlation_id: &self.correlation_id,
        }
        .reply(ErrorShape::of(&self.model), &self.cfg.correlation_header)
    }

    /// The report of what the call used, if a budget was checked and the call was forwarded.
    pub(super) fn quota_report(&mut self, used: &Used) -> Option<QuotaReport> {
        let checked = matches!(
            self.quota.verdict.as_ref().map(|v| v.outcome),
            Some(Outcome::Ok | Outcome::FailedOpen)
        );
        if !checked || self.attribution.decision != Decision::Attributed {
            return None;
        }
        let applicable = self.quota.applicable.as_ref()?;
        let (message, summary) = quota::report_message(&self.cfg.quota, applicable, used)?;
        self.quota.reported = Some(summary);
        Some(QuotaReport {
            cluster: self.cfg.quota.cluster.clone(),
            message,
            timeout_ms: self.cfg.quota.timeout_ms,
        })
    }

    /// Filter state for Envoy's own rate-limit filter (`quota.filter_state`): the owner's values
    /// under `quota_key.<dimension>` (and `.model`), once the call is attributed.
    pub(super) fn quota_key_effects(&self) -> Vec<Effect> {
        if !self.cfg.quota.filter_state || self.attribution.decision != Decision::Attributed {
            return Vec::new();
        }
        let mut out: Vec<Effect> = self
            .cfg
            .dimensions
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let value = self.cfg.shown(i, self.attribution.verified_value(i)?)?;
                Some(Effect::SetFilterState(
                    format!("ai_attribution.quota_key.{}", d.name),
                    value.into_owned(),
                ))
            })
            .collect();
        if let Some(model) = self.request_model() {
            out.push(Effect::SetFilterState(
                "ai_attribution.quota_key.model".to_string(),
                model,
            ));
        }
        out
    }

    /// What the call used so far, as the budgets count it: input plus output tokens (also of a
    /// stream cut short), and the cost once usage is complete.
    pub(super) fn used(&self) -> Used {
        let Some(response) = self.response.as_ref() else {
            return Used::default();
        };
        let usage = response.usage();
        let counts = crate::response::tokens(&usage);
        let tokens = match (counts.input, counts.output) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0).saturating_add(o.unwrap_or(0))),
        };
        let model = usage.response_model.clone().or_else(|| self.request_model());
        let cost_microusd = (response.status() == crate::record::UsageStatus::Reported)
            .then(|| model.as_deref().and_then(|m| self.cfg.price_for(m)))
            .flatten()
            .and_then(|p| crate::response::cost_usd(p, &counts))
            .map(crate::metrics::micro_usd);
        Used { tokens, cost_microusd }
    }

    /// `quota_tokens` and `quota_cost_microusd` filter state, once the answer's usage is read
    /// (`quota.filter_state`), for the charge Envoy's rate-limit filter makes when the stream is done.
    pub(super) fn quota_usage_effects(&mut self) -> Vec<Effect> {
        if !self.cfg.quota.filter_state
            || self.tool.is_some()
            || self.quota.usage_written
            || self.attribution.decision != Decision::Attributed
            || self.response.is_none()
        {
            return Vec::new();
        }
        self.quota.usage_written = true;
        let used = self.used();
        let mut out = Vec::new();
        if let Some(t) = used.tokens {
            out.push(Effect::SetFilterState(
                "ai_attribution.quota_tokens".to_string(),
                t.to_string(),
            ));
        }
        if let Some(c) = used.cost_microusd {
            out.push(Effect::SetFilterState(
                "ai_attribution.quota_cost_microusd".to_string(),
                c.to_string(),
            ));
        }
        out
    }

    /// The exceptions in force that cover this call, by index, among those `relevant`.
    pub(super) fn covering_exceptions(&self, relevant: impl Fn(&crate::config::Exception) -> bool) -> Vec<usize> {
        let attribution = &self.attribution;
        let value = |i: usize| attribution.verified_value(i).map(str::to_string);
        self.cfg
            .exceptions
            .iter()
            .enumerate()
            .filter(|(_, e)| relevant(e) && e.covers(&value, self.peer_spiffe_id.as_deref(), self.now))
            .map(|(i, _)| i)
            .collect()
    }
}
