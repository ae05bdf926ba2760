//! From the envoyproxy/ratelimit descriptor tree to limitador limits (namespace = domain).
//!
//! Each request descriptor is evaluated on its own, bound as `descriptors[0]`: a map of its
//! entries (see `service.rs`). A tree node with a `rate_limit` becomes one limit whose
//! conditions say "this node is the one envoyproxy/ratelimit's walk would pick":
//!
//! - the descriptor has exactly as many entries as the node is deep (`size(...) == n`);
//! - at every level, the entry with the node's key matches the node's value, and no sibling
//!   that the walk tries first matches it: an exact `value` beats a `prefix*`, which beats a
//!   node without `value`; among prefixes the first one in the file wins;
//! - levels without an exact value are variables, so each value gets its own counter.
//!
//! Entries are matched by key, not by position (a limitador context is a map); the config
//! loader refuses a path that repeats a key, and a descriptor that repeats a key matches
//! nothing (see `service.rs`). `unlimited` nodes get no limit (nothing to count), but they
//! still shadow their siblings. The same limits, less the window variable, are what
//! `--print-limitador` prints for limitador-server.

use crate::config::{Descriptor, Domain, RateLimit, ValueMatch};
use crate::window::Unit;
use limitador::limit::{Expression, Limit, ParseError, Predicate};
use serde::Serialize;

/// One limit, as a limitador limits file writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitSpec {
    pub namespace: String,
    pub max_value: u64,
    pub seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub conditions: Vec<String>,
    pub variables: Vec<String>,
    /// The unit the window is aligned to; `None` for limits from a limitador file, whose
    /// windows start at each counter's first hit.
    #[serde(skip)]
    pub aligned_to: Option<Unit>,
}

impl LimitSpec {
    /// The limitador limit. Windows aligned to a unit get that unit's window number as one
    /// more variable, so a new window is a new counter on every replica at the same moment.
    pub fn to_limit(&self) -> Result<Limit, ParseError> {
        let conditions = self
            .conditions
            .iter()
            .map(Predicate::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut variables = self
            .variables
            .iter()
            .map(Expression::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(unit) = self.aligned_to {
            variables.push(Expression::parse(unit.window_variable())?);
        }
        let mut limit = Limit::new(
            self.namespace.as_str(),
            self.max_value,
            self.seconds,
            conditions,
            variables,
        );
        if let Some(name) = &self.name {
            limit.set_name(name.clone());
        }
        Ok(limit)
    }
}

/// The limits of one domain.
pub fn limits_of(domain: &Domain) -> Vec<LimitSpec> {
    let mut out = Vec::new();
    let mut levels = Vec::new();
    walk(&domain.name, &domain.descriptors, &mut levels, &mut out);
    out
}

/// What one level of a node's path requires of the descriptor.
struct Level {
    conditions: Vec<String>,
    variable: Option<String>,
}

fn walk(namespace: &str, siblings: &[Descriptor], levels: &mut Vec<Level>, out: &mut Vec<LimitSpec>) {
    for (index, node) in siblings.iter().enumerate() {
        levels.push(level(siblings, index, node));
        if let Some(RateLimit::Limited {
            requests_per_unit,
            unit,
            name,
        }) = &node.rate_limit
        {
            let mut conditions = vec![format!("size(descriptors[0]) == {}", levels.len())];
            conditions.extend(levels.iter().flat_map(|l| l.conditions.iter().cloned()));
            out.push(LimitSpec {
                namespace: namespace.to_string(),
                max_value: u64::from(*requests_per_unit),
                seconds: unit.seconds(),
                name: name.clone(),
                conditions,
                variables: levels.iter().filter_map(|l| l.variable.clone()).collect(),
                aligned_to: Some(*unit),
            });
        }
        walk(namespace, &node.descriptors, levels, out);
        levels.pop();
    }
}

fn level(siblings: &[Descriptor], index: usize, node: &Descriptor) -> Level {
    let entry = format!("descriptors[0][{}]", cel_string(&node.key));
    let mut exact_siblings = Vec::new();
    let mut prefix_siblings = Vec::new();
    for (i, s) in siblings.iter().enumerate().filter(|(_, s)| s.key == node.key) {
        match &s.value {
            ValueMatch::Exact(v) => exact_siblings.push(format!("{entry} != {}", cel_string(v))),
            ValueMatch::Prefix(p) => prefix_siblings.push((i, format!("!{entry}.startsWith({})", cel_string(p)))),
            ValueMatch::Any => {}
        }
    }
    // The prefixes tried before this node: all of them for a node without value, the earlier
    // ones for a prefix.
    let tried_before = |before: usize| {
        prefix_siblings
            .iter()
            .filter(move |(i, _)| *i < before)
            .map(|(_, c)| c.clone())
    };
    match &node.value {
        ValueMatch::Exact(v) => Level {
            conditions: vec![format!("{entry} == {}", cel_string(v))],
            variable: None,
        },
        ValueMatch::Prefix(p) => {
            let mut conditions = vec![format!("{entry}.startsWith({})", cel_string(p))];
            conditions.extend(exact_siblings);
            conditions.extend(tried_before(index));
            Level {
                conditions,
                variable: Some(entry),
            }
        }
        ValueMatch::Any => {
            let mut conditions = vec![format!("{} in descriptors[0]", cel_string(&node.key))];
            conditions.extend(exact_siblings);
            conditions.extend(tried_before(siblings.len()));
            Level {
                conditions,
                variable: Some(entry),
            }
        }
    }
}

/// A CEL string literal (single-quoted). The config loader has refused control characters.
pub fn cel_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A limitador limits file (YAML) for these limits, without the window variables: what
/// limitador-server loads. Its windows start at each counter's first hit.
pub fn limitador_yaml(limits: &[LimitSpec]) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(limits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    fn domain(text: &str) -> Domain {
        Domain::parse("test.yaml", text).unwrap()
    }

    #[test]
    fn a_budget_per_business_unit_becomes_one_limit_with_a_variable() {
        let limits = limits_of(&domain(
            "domain: ai-attribution
descriptors:
  - key: budget
    value: tokens_per_bu
    descriptors:
      - key: business_unit
        rate_limit: {unit: day, requests_per_unit: 1000000}
",
        ));
        assert_eq!(
            limits,
            [LimitSpec {
                namespace: "ai-attribution".into(),
                max_value: 1_000_000,
                seconds: 86_400,
                name: None,
                conditions: vec![
                    "size(descriptors[0]) == 2".into(),
                    "descriptors[0]['budget'] == 'tokens_per_bu'".into(),
                    "'business_unit' in descriptors[0]".into(),
                ],
                variables: vec!["descriptors[0]['business_unit']".into()],
                aligned_to: Some(Unit::Day),
            }]
        );
        let limit = limits[0].to_limit().unwrap();
        assert!(limit.variables().contains("window_day"));
        assert_eq!(limit.variables().len(), 2);
    }

    #[test]
    fn siblings_that_win_are_excluded() {
        let limits = limits_of(&domain(
            "domain: d
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 10}
  - key: user
    value: vip-*
    rate_limit: {unit: minute, requests_per_unit: 100}
  - key: user
    value: v*
    rate_limit: {unit: minute, requests_per_unit: 50}
  - key: user
    value: vip-bob
    rate_limit: {unlimited: true}
",
        ));
        assert_eq!(limits.len(), 3, "the unlimited node gets no limit");
        assert_eq!(
            limits[0].conditions,
            [
                "size(descriptors[0]) == 1",
                "'user' in descriptors[0]",
                "descriptors[0]['user'] != 'vip-bob'",
                "!descriptors[0]['user'].startsWith('vip-')",
                "!descriptors[0]['user'].startsWith('v')",
            ]
        );
        assert_eq!(
            limits[1].conditions,
            [
                "size(descriptors[0]) == 1",
                "descriptors[0]['user'].startsWith('vip-')",
                "descriptors[0]['user'] != 'vip-bob'",
            ]
        );
        assert_eq!(
            limits[2].conditions,
            [
                "size(descriptors[0]) == 1",
                "descriptors[0]['user'].startsWith('v')",
                "descriptors[0]['user'] != 'vip-bob'",
                "!descriptors[0]['user'].startsWith('vip-')",
            ]
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(cel_string("it's"), r"'it\'s'");
        assert_eq!(cel_string(r"a\b"), r"'a\\b'");
        let limits = limits_of(&domain(
            "domain: d\ndescriptors:\n  - key: \"o'k\"\n    value: 'a\\b'\n    rate_limit: {unit: second, requests_per_unit: 1}\n",
        ));
        for c in &limits[0].conditions {
            Predicate::parse(c).unwrap_or_else(|e| panic!("{c}: {e}"));
        }
    }

    #[test]
    fn the_limitador_file_has_no_window_variables() {
        let limits = limits_of(&domain(
            "domain: d\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 3, name: per-user}\n",
        ));
        let yaml = limitador_yaml(&limits).unwrap();
        assert_eq!(
            yaml,
            "- namespace: d
  max_value: 3
  seconds: 60
  name: per-user
  conditions:
  - size(descriptors[0]) == 1
  - '''user'' in descriptors[0]'
  variables:
  - descriptors[0]['user']
"
        );
    }
}
