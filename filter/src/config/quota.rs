//! The `quota` and `exceptions` sections: budgets counted by a rate-limit service, and named,
//! dated exceptions that relax a `require` or a budget for the callers they cover.

use super::{err, ConfigError, Dimension};
use serde::Deserialize;
use std::collections::BTreeMap;

// ---- the JSON shape ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuota {
    #[serde(default)]
    pub cluster: String,
    #[serde(default = "default_domain")]
    pub domain: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_failure_mode")]
    pub failure_mode: String,
    #[serde(default)]
    pub budgets: Vec<RawBudget>,
    #[serde(default)]
    pub filter_state: bool,
}

impl Default for RawQuota {
    fn default() -> Self {
        RawQuota {
            cluster: String::new(),
            domain: default_domain(),
            timeout_ms: default_timeout_ms(),
            failure_mode: default_failure_mode(),
            budgets: Vec::new(),
            filter_state: false,
        }
    }
}

fn default_domain() -> String {
    "ai-attribution".to_string()
}

fn default_timeout_ms() -> u64 {
    200
}

fn default_failure_mode() -> String {
    "allow".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub name: String,
    pub descriptors: Vec<String>,
    pub hits: String,
    #[serde(default)]
    pub require: Option<Vec<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawException {
    pub name: String,
    pub covers: RawCovers,
    pub relaxes: RawRelaxes,
    pub until: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCovers {
    /// Dimension values, each a list of accepted values.
    #[serde(default)]
    pub dimensions: BTreeMap<String, Vec<String>>,
    /// SPIFFE IDs of the downstream mTLS peer.
    #[serde(default)]
    pub spiffe_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelaxes {
    /// Extra `require` alternatives the covered callers may meet instead.
    #[serde(default)]
    pub require: Vec<Vec<String>>,
    /// Budget names not checked for the covered callers.
    #[serde(default)]
    pub budgets: Vec<String>,
}

// ---- the checked form ---------------------------------------------------------------------------

/// What a hit of a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hits {
    Requests,
    /// Input plus output tokens.
    Tokens,
    /// Cost in millionths of a US dollar.
    CostMicroUsd,
}

impl Hits {
    pub fn as_str(self) -> &'static str {
        match self {
            Hits::Requests => "requests",
            Hits::Tokens => "tokens",
            Hits::CostMicroUsd => "cost_microusd",
        }
    }
}

/// Where a descriptor entry's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Dimension(usize),
    /// The request's model.
    Model,
    Provider,
}

/// One descriptor entry of a budget: its key and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetKey {
    pub name: String,
    pub source: KeySource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub name: String,
    pub keys: Vec<BudgetKey>,
    pub hits: Hits,
    /// Alternatives of dimension indexes a call must meet for the budget to apply; `None`: any call.
    pub require: Option<Vec<Vec<usize>>>,
}

impl Budget {
    /// The budget needs the request's model.
    pub fn needs_model(&self) -> bool {
        self.keys.iter().any(|k| k.source == KeySource::Model)
    }
}

/// The `quota` section. No budgets: no quota step at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuotaConfig {
    pub cluster: String,
    pub domain: String,
    pub timeout_ms: u64,
    /// `failure_mode: allow`: a call goes on when the service cannot answer.
    pub fail_open: bool,
    pub budgets: Vec<Budget>,
    /// Write `quota_key.*`, `quota_tokens` and `quota_cost_microusd` filter state for Envoy's
    /// own rate-limit filter.
    pub filter_state: bool,
}

impl QuotaConfig {
    pub fn enabled(&self) -> bool {
        !self.budgets.is_empty()
    }
}

/// One named exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub name: String,
    /// `(dimension index, accepted values)`: every one must match.
    pub dimensions: Vec<(usize, Vec<String>)>,
    /// Peer SPIFFE IDs, one of which must match when not empty.
    pub spiffe_ids: Vec<String>,
    pub require: Vec<Vec<usize>>,
    /// Budget indexes.
    pub budgets: Vec<usize>,
    /// Unix seconds after which the exception no longer holds.
    pub until: u64,
    pub until_text: String,
}

impl Exception {
    /// Whether the exception covers a call with these values, at `now` (Unix seconds).
    pub fn covers(&self, value: &dyn Fn(usize) -> Option<String>, spiffe_id: Option<&str>, now: u64) -> bool {
        now <= self.until
            && self
                .dimensions
                .iter()
                .all(|(i, accepted)| value(*i).is_some_and(|v| accepted.contains(&v)))
            && (self.spiffe_ids.is_empty() || spiffe_id.is_some_and(|id| self.spiffe_ids.iter().any(|s| s == id)))
    }
}

// ---- compiling ----------------------------------------------------------------------------------

/// Compiles `require` alternatives found at the given field path.
pub(super) type RequireAt<'a> = dyn Fn(&[Vec<String>], &str) -> Result<Vec<Vec<usize>>, ConfigError> + 'a;

/// The `name` of the budget or exception at `at`: well formed, and not one of the names `taken`
/// before it.
fn check_name<'a>(at: &str, name: &str, mut taken: impl Iterator<Item = &'a str>) -> Result<(), ConfigError> {
    if !is_budget_name(name) {
        return Err(err(
            format!("{at}.name"),
            "letters, digits, '_', '-' or '.', at most 64 bytes",
        ));
    }
    if taken.any(|other| other == name) {
        return Err(err(format!("{at}.name"), format!("\"{name}\" is used twice")));
    }
    Ok(())
}

fn is_budget_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

pub(super) fn quota(
    raw: &RawQuota,
    dimensions: &[Dimension],
    require: &RequireAt<'_>,
) -> Result<QuotaConfig, ConfigError> {
    let fail_open = match raw.failure_mode.as_str() {
        "allow" => true,
        "deny" => false,
        other => {
            return Err(err(
                "quota.failure_mode",
                format!("expected \"allow\" or \"deny\", got \"{other}\""),
            ))
        }
    };
    if !raw.budgets.is_empty() && raw.cluster.trim().is_empty() {
        return Err(err("quota.cluster", "budgets need the rate-limit service's cluster"));
    }
    if raw.domain.is_empty() {
        return Err(err("quota.domain", "must not be empty"));
    }
    if !(1..=60_000).contains(&raw.timeout_ms) {
        return Err(err("quota.timeout_ms", "must be between 1 and 60000"));
    }
    let mut budgets: Vec<Budget> = Vec::new();
    for (i, b) in raw.budgets.iter().enumerate() {
        let budget = budget(&format!("quota.budgets[{i}]"), b, &budgets, dimensions, require)?;
        budgets.push(budget);
    }
    Ok(QuotaConfig {
        cluster: raw.cluster.trim().to_string(),
        domain: raw.domain.clone(),
        timeout_ms: raw.timeout_ms,
        fail_open,
        budgets,
        filter_state: raw.filter_state,
    })
}

/// One budget at `at`, checked against the budgets before it.
fn budget(
    at: &str,
    b: &RawBudget,
    before: &[Budget],
    dimensions: &[Dimension],
    require: &RequireAt<'_>,
) -> Result<Budget, ConfigError> {
    check_name(at, &b.name, before.iter().map(|o| o.name.as_str()))?;
    let keys = budget_keys(at, &b.descriptors, dimensions)?;
    let hits = match b.hits.as_str() {
        "requests" => Hits::Requests,
        "tokens" => Hits::Tokens,
        "cost_microusd" => Hits::CostMicroUsd,
        other => {
            return Err(err(
                format!("{at}.hits"),
                format!("expected \"requests\", \"tokens\" or \"cost_microusd\", got \"{other}\""),
            ))
        }
    };
    let require = match &b.require {
        None => None,
        Some(alternatives) => Some(require(alternatives, &format!("{at}.require"))?),
    };
    Ok(Budget {
        name: b.name.clone(),
        keys,
        hits,
        require,
    })
}

/// The descriptor keys of the budget at `at`: dimensions by name, or the model or provider.
fn budget_keys(at: &str, descriptors: &[String], dimensions: &[Dimension]) -> Result<Vec<BudgetKey>, ConfigError> {
    let index_of = |name: &str| dimensions.iter().position(|d| d.name == name);
    let mut keys = Vec::new();
    for (j, key) in descriptors.iter().enumerate() {
        let source = match key.as_str() {
            "model" => KeySource::Model,
            "provider" => KeySource::Provider,
            name => KeySource::Dimension(index_of(name).ok_or_else(|| {
                err(
                    format!("{at}.descriptors[{j}]"),
                    format!("\"{name}\" is not a configured dimension (nor model or provider)"),
                )
            })?),
        };
        if keys.iter().any(|k: &BudgetKey| k.name == *key) {
            return Err(err(
                format!("{at}.descriptors[{j}]"),
                format!("\"{key}\" is listed twice"),
            ));
        }
        keys.push(BudgetKey {
            name: key.clone(),
            source,
        });
    }
    if keys.is_empty() {
        return Err(err(
            format!("{at}.descriptors"),
            "name at least one dimension (or model, provider)",
        ));
    }
    Ok(keys)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 UTC timestamp (`2026-12-31T23:59:59Z`, or a date alone, meaning its end)
/// into Unix seconds.
pub fn parse_until(text: &str) -> Option<u64> {
    let digits = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = match text.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (year, month, day) = (digits(parts.next()?)?, digits(parts.next()?)?, digits(parts.next()?)?);
    if parts.next().is_some() || !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if day < 1 || day > *month_days.get(month as usize - 1)? {
        return None;
    }
    let seconds = match time {
        None => 86_399,
        Some(t) => {
            let t = t.strip_suffix(['Z', 'z'])?;
            let t = t.split_once('.').map_or(
                t,
                |(whole, frac)| {
                    if digits(frac).is_some() {
                        whole
                    } else {
                        "invalid"
                    }
                },
            );
            let mut hms = t.split(':');
            let (h, m, s) = (digits(hms.next()?)?, digits(hms.next()?)?, digits(hms.next()?)?);
            if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
                return None;
            }
            h * 3600 + m * 60 + s
        }
    };
    let days = days_from_civil(i64::from(year), month, day);
    u64::try_from(days * 86_400 + i64::from(seconds)).ok()
}

pub(super) fn exceptions(
    raw: &[RawException],
    dimensions: &[Dimension],
    budgets: &[Budget],
    require: &RequireAt<'_>,
) -> Result<Vec<Exception>, ConfigError> {
    let index_of = |name: &str| dimensions.iter().position(|d| d.name == name);
    let mut out: Vec<Exception> = Vec::new();
    for (i, e) in raw.iter().enumerate() {
        let at = format!("exceptions[{i}]");
        check_name(&at, &e.name, out.iter().map(|o| o.name.as_str()))?;
        let mut dims = Vec::new();
        for (name, values) in &e.covers.dimensions {
            let idx = index_of(name)
                .ok_or_else(|| err(format!("{at}.covers.dimensions.{name}"), "not a configured dimension"))?;
            if values.is_empty() || values.iter().any(|v| v.trim().is_empty()) {
                return Err(err(
                    format!("{at}.covers.dimensions.{name}"),
                    "list at least one non-empty value",
                ));
            }
            dims.push((idx, values.clone()));
        }
        for (j, id) in e.covers.spiffe_ids.iter().enumerate() {
            if crate::identity::spiffe::parse_spiffe_id(id).is_none() {
                return Err(err(format!("{at}.covers.spiffe_ids[{j}]"), "not a SPIFFE ID"));
            }
        }
        if dims.is_empty() && e.covers.spiffe_ids.is_empty() {
            return Err(err(
                format!("{at}.covers"),
                "name the callers covered: dimension values or SPIFFE IDs",
            ));
        }
        let alternatives = if e.relaxes.require.is_empty() {
            Vec::new()
        } else {
            require(&e.relaxes.require, &format!("{at}.relaxes.require"))?
        };
        let mut budget_idx = Vec::new();
        for (j, name) in e.relaxes.budgets.iter().enumerate() {
            let b = budgets.iter().position(|b| b.name == *name).ok_or_else(|| {
                err(
                    format!("{at}.relaxes.budgets[{j}]"),
                    format!("\"{name}\" is not a budget of quota.budgets"),
                )
            })?;
            budget_idx.push(b);
        }
        if alternatives.is_empty() && budget_idx.is_empty() {
            return Err(err(format!("{at}.relaxes"), "relax a require alternative or a budget"));
        }
        let until = parse_until(&e.until).ok_or_else(|| {
            err(
                format!("{at}.until"),
                "an RFC 3339 UTC time such as 2026-12-31T23:59:59Z, or a date",
            )
        })?;
        out.push(Exception {
            name: e.name.clone(),
            dimensions: dims,
            spiffe_ids: e.covers.spiffe_ids.clone(),
            require: alternatives,
            budgets: budget_idx,
            until,
            until_text: e.until.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_parses_rfc3339_utc_and_dates() {
        assert_eq!(parse_until("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_until("2026-12-31T23:59:59Z"), Some(1_798_761_599));
        assert_eq!(parse_until("2026-12-31"), Some(1_798_761_599));
        assert_eq!(parse_until("2024-02-29T12:00:00.5Z"), Some(1_709_208_000));
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "2026-12-31T24:00:00Z",
            "2026-12-31T10:00:00+01:00",
            "2026-12-31 10:00",
            "tomorrow",
            "",
        ] {
            assert_eq!(parse_until(bad), None, "{bad}");
        }
    }
}
