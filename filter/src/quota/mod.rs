//! Budgets per owner, counted by an Envoy rate-limit service (`quota`): which budgets a call
//! falls under, the one check before it is forwarded (`hits_addend` 0) and the one report after
//! its answer (its requests, tokens or cost), and what the answer to the check means.
//!
//! Each budget is one descriptor: `("budget", <name>)` first, then one entry per descriptor key
//! with the call's value, so a rate-limit service's tree starts at the budget's name.

pub mod wire;

use crate::config::{Budget, Hits, KeySource, QuotaConfig};
use wire::{Code, Descriptor};

/// The first descriptor entry of every budget.
pub const BUDGET_KEY: &str = "budget";
/// Service and method of the rate-limit protocol.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const METHOD: &str = "ShouldRateLimit";

/// What the quota step came to, for the record (`quota_outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every budget checked had room.
    Ok,
    /// A budget was spent: the call was refused with 429.
    OverBudget,
    /// The service could not answer and `failure_mode` is `deny`: refused with 503.
    Unavailable,
    /// The service could not answer and `failure_mode` is `allow`: the call went on unchecked.
    FailedOpen,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::OverBudget => "over_budget",
            Outcome::Unavailable => "unavailable",
            Outcome::FailedOpen => "failed_open",
        }
    }
}

/// The budgets one call falls under, with their descriptor entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applicable {
    /// Indexes into `quota.budgets`, with each one's entries after `("budget", name)`.
    pub budgets: Vec<(usize, Vec<(String, String)>)>,
}

/// What a call's values are, as the budgets need them.
pub struct CallValues<'a> {
    /// The value of each dimension, by index.
    pub dimension: &'a dyn Fn(usize) -> Option<&'a str>,
    pub model: Option<&'a str>,
    pub provider: &'a str,
    /// Whether the call satisfies a `require` list (alternatives of dimension indexes).
    pub satisfies: &'a dyn Fn(&[Vec<usize>]) -> bool,
    /// Budgets an exception relaxes for this call (by index).
    pub relaxed: &'a [usize],
}

fn entry_value<'a>(source: &KeySource, values: &CallValues<'a>) -> Option<&'a str> {
    match source {
        KeySource::Dimension(i) => (values.dimension)(*i),
        KeySource::Model => values.model,
        KeySource::Provider => Some(values.provider),
    }
}

/// The budgets that apply: those whose `require` the call meets (any call, without one), that
/// no exception relaxes, and whose every descriptor key has a value (a budget per business unit
/// cannot count a call without one).
pub fn applicable(cfg: &QuotaConfig, values: &CallValues<'_>) -> Applicable {
    let mut budgets = Vec::new();
    for (i, budget) in cfg.budgets.iter().enumerate() {
        if values.relaxed.contains(&i) || !budget.require.as_ref().is_none_or(|r| (values.satisfies)(r)) {
            continue;
        }
        let entries: Option<Vec<(String, String)>> = budget
            .keys
            .iter()
            .map(|k| entry_value(&k.source, values).map(|v| (k.name.clone(), v.to_string())))
            .collect();
        if let Some(entries) = entries {
            budgets.push((i, entries));
        }
    }
    Applicable { budgets }
}

fn descriptors(cfg: &QuotaConfig, applicable: &Applicable, hits: &dyn Fn(&Budget) -> u64) -> Vec<Descriptor> {
    applicable
        .budgets
        .iter()
        .filter_map(|(i, entries)| {
            let budget = cfg.budgets.get(*i)?;
            let mut all = Vec::with_capacity(entries.len() + 1);
            all.push((BUDGET_KEY.to_string(), budget.name.clone()));
            all.extend(entries.iter().cloned());
            Some(Descriptor {
                entries: all,
                hits: hits(budget),
            })
        })
        .collect()
}

/// The check: every applicable budget with `hits_addend` 0.
pub fn check_message(cfg: &QuotaConfig, applicable: &Applicable) -> Vec<u8> {
    wire::encode_request(&cfg.domain, &descriptors(cfg, applicable, &|_| 0))
}

/// What one call used, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Used {
    pub tokens: Option<u64>,
    pub cost_microusd: Option<u64>,
}

impl Used {
    fn hits(&self, hits: Hits) -> Option<u64> {
        match hits {
            Hits::Requests => Some(1),
            Hits::Tokens => self.tokens,
            Hits::CostMicroUsd => self.cost_microusd,
        }
    }
}

/// The report: each applicable budget charged with what the call used, skipping budgets whose
/// measure is unknown or zero. `None` when nothing is to be charged. Also gives the record's
/// `quota_reported` (`budget=hits,...`).
pub fn report_message(cfg: &QuotaConfig, applicable: &Applicable, used: &Used) -> Option<(Vec<u8>, String)> {
    let charged: Vec<(usize, Vec<(String, String)>)> = applicable
        .budgets
        .iter()
        .filter(|(i, _)| {
            cfg.budgets
                .get(*i)
                .and_then(|b| used.hits(b.hits))
                .is_some_and(|n| n > 0)
        })
        .cloned()
        .collect();
    if charged.is_empty() {
        return None;
    }
    let charged = Applicable { budgets: charged };
    let descriptors = descriptors(cfg, &charged, &|b| used.hits(b.hits).unwrap_or(0));
    let summary = descriptors
        .iter()
        .filter_map(|d| Some(format!("{}={}", d.entries.first()?.1, d.hits)))
        .collect::<Vec<_>>()
        .join(",");
    Some((wire::encode_request(&cfg.domain, &descriptors), summary))
}

/// How the check was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckAnswer {
    /// The service's answer (the gRPC call succeeded).
    Answer(Vec<u8>),
    /// No answer: the call failed, timed out or could not be made.
    Failed,
}

/// The verdict on a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Budgets over their limit, by index.
    pub over: Vec<usize>,
    /// Seconds until the first spent budget resets, when the service says.
    pub retry_after: Option<u64>,
}

/// Reads the answer to a check of `applicable`.
pub fn verdict(cfg: &QuotaConfig, applicable: &Applicable, answer: &CheckAnswer) -> Verdict {
    let unavailable = Verdict {
        outcome: if cfg.fail_open {
            Outcome::FailedOpen
        } else {
            Outcome::Unavailable
        },
        over: Vec::new(),
        retry_after: None,
    };
    let CheckAnswer::Answer(bytes) = answer else {
        return unavailable;
    };
    let Some(response) = wire::decode_response(bytes) else {
        return unavailable;
    };
    let mut over = Vec::new();
    let mut retry_after: Option<u64> = None;
    for (status, (i, _)) in response.statuses.iter().zip(&applicable.budgets) {
        if status.code == Code::OverLimit {
            over.push(*i);
            if let Some(s) = status.reset_seconds {
                retry_after = Some(retry_after.map_or(s, |r| r.min(s)));
            }
        }
    }
    if over.is_empty() && response.overall == Code::OverLimit {
        // Over, but no status says which: every budget checked.
        over = applicable.budgets.iter().map(|(i, _)| *i).collect();
    }
    let outcome = match (response.overall, over.is_empty()) {
        (_, false) => Outcome::OverBudget,
        (Code::Ok, true) => Outcome::Ok,
        // UNKNOWN is not an answer.
        _ => return unavailable,
    };
    Verdict {
        outcome,
        over,
        retry_after,
    }
}
