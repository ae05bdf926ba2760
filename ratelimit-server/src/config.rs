//! The envoyproxy/ratelimit config format: one file per `domain`, with nested `descriptors`
//! (`key`, optional `value`, optional `rate_limit {unit, requests_per_unit}`, deeper
//! `descriptors`). Parsed strictly: a field this server does not implement is refused by name,
//! never ignored.

use crate::window::Unit;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;

/// A config that cannot be loaded, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or other source) the error is in.
    pub source: String,
    /// Where in it, e.g. `descriptors[0].descriptors[1].rate_limit.unit`.
    pub at: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: {}: {}", self.source, self.at, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// One domain's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub descriptors: Vec<Descriptor>,
}

/// A node of the descriptor tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub key: String,
    pub value: ValueMatch,
    pub rate_limit: Option<RateLimit>,
    pub descriptors: Vec<Descriptor>,
}

/// How a node's `value` matches a request entry's value with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueMatch {
    /// No `value`: any value (a counter per value), when no sibling matches more precisely.
    Any,
    /// `value: x`: exactly that value.
    Exact(String),
    /// `value: x*`: values starting with `x` (a counter per value), after the exact siblings.
    Prefix(String),
}

/// A node's `rate_limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimit {
    Limited {
        requests_per_unit: u32,
        unit: Unit,
        name: Option<String>,
    },
    /// `unlimited: true`: the node matches, and nothing is counted.
    Unlimited,
}

// ---- the YAML as written ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    domain: Option<String>,
    #[serde(default)]
    descriptors: Vec<RawDescriptor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDescriptor {
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    rate_limit: Option<RawRateLimit>,
    #[serde(default)]
    descriptors: Vec<RawDescriptor>,
    // envoyproxy/ratelimit options this server does not implement: refused by name.
    shadow_mode: Option<serde_yaml::Value>,
    quota_mode: Option<serde_yaml::Value>,
    detailed_metric: Option<serde_yaml::Value>,
    value_to_metric: Option<serde_yaml::Value>,
    share_threshold: Option<serde_yaml::Value>,
    metadata: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    requests_per_unit: Option<u32>,
    unit: Option<String>,
    #[serde(default)]
    unlimited: bool,
    name: Option<String>,
    replaces: Option<serde_yaml::Value>,
}

// ---- loading ------------------------------------------------------------------------------

impl Domain {
    /// Parses one config file's text. `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Domain, ConfigError> {
        let err = |at: &str, message: String| ConfigError {
            source: source.to_string(),
            at: at.to_string(),
            message,
        };
        let raw: RawDomain = serde_yaml::from_str(text).map_err(|e| err("", e.to_string()))?;
        let name = raw.domain.unwrap_or_default();
        if name.is_empty() {
            return Err(err("domain", "the config file has no domain".into()));
        }
        check_text(&name).map_err(|m| err("domain", m))?;
        let mut path = Vec::new();
        let descriptors = load_level(raw.descriptors, "descriptors", &mut path).map_err(|(at, m)| err(&at, m))?;
        Ok(Domain { name, descriptors })
    }
}

type LoadError = (String, String);

fn load_level(raw: Vec<RawDescriptor>, at: &str, path: &mut Vec<String>) -> Result<Vec<Descriptor>, LoadError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, d) in raw.into_iter().enumerate() {
        let here = format!("{at}[{i}]");
        out.push(load_descriptor(d, &here, path, &mut seen)?);
    }
    Ok(out)
}

fn load_descriptor(
    d: RawDescriptor,
    here: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<(String, String)>,
) -> Result<Descriptor, LoadError> {
    let at = |field: &str, message: String| -> LoadError {
        let place = if field.is_empty() {
            here.to_string()
        } else {
            format!("{here}.{field}")
        };
        (place, message)
    };
    let fail = |field: &str, message: String| Err(at(field, message));
    for (field, given) in [
        ("shadow_mode", d.shadow_mode.is_some()),
        ("quota_mode", d.quota_mode.is_some()),
        ("detailed_metric", d.detailed_metric.is_some()),
        ("value_to_metric", d.value_to_metric.is_some()),
        ("share_threshold", d.share_threshold.is_some()),
        ("metadata", d.metadata.is_some()),
    ] {
        if given {
            return fail(field, "not supported by this server".into());
        }
    }
    let key = d.key.unwrap_or_default();
    if key.is_empty() {
        return fail("key", "a descriptor needs a non-empty key".into());
    }
    check_text(&key).map_err(|m| at("key", m))?;
    let raw_value = d.value.unwrap_or_default();
    check_text(&raw_value).map_err(|m| at("value", m))?;
    let value = match raw_value.find('*') {
        None if raw_value.is_empty() => ValueMatch::Any,
        None => ValueMatch::Exact(raw_value.clone()),
        Some(i) if i + 1 == raw_value.len() => ValueMatch::Prefix(raw_value[..i].to_string()),
        Some(_) => {
            return fail("value", "only a trailing `*` wildcard is supported".into());
        }
    };
    if !seen.insert((key.clone(), raw_value.clone())) {
        let composite = if raw_value.is_empty() {
            key.clone()
        } else {
            format!("{key}_{raw_value}")
        };
        return fail("", format!("duplicate descriptor composite key '{composite}'"));
    }
    if path.contains(&key) {
        return fail(
            "key",
            format!("key {key:?} already appears above this descriptor; entries are matched by key"),
        );
    }
    let rate_limit = match d.rate_limit {
        None => None,
        Some(r) => {
            if r.replaces.is_some() {
                return fail("rate_limit.replaces", "not supported by this server".into());
            }
            if let Some(name) = &r.name {
                check_text(name).map_err(|m| at("rate_limit.name", m))?;
            }
            let unit = match r.unit.as_deref() {
                None | Some("") => None,
                Some(u) => match Unit::parse(u) {
                    Some(unit) => Some(unit),
                    None => return fail("rate_limit.unit", format!("invalid rate limit unit '{u}'")),
                },
            };
            match (r.unlimited, unit) {
                (true, Some(_)) => {
                    return fail(
                        "rate_limit.unit",
                        "should not specify rate limit unit when unlimited".into(),
                    )
                }
                (true, None) => Some(RateLimit::Unlimited),
                (false, None) => return fail("rate_limit.unit", "a rate limit needs a unit".into()),
                (false, Some(unit)) => Some(RateLimit::Limited {
                    requests_per_unit: r.requests_per_unit.unwrap_or(0),
                    unit,
                    name: r.name,
                }),
            }
        }
    };
    path.push(key.clone());
    let children = load_level(d.descriptors, &format!("{here}.descriptors"), path);
    path.pop();
    Ok(Descriptor {
        key,
        value,
        rate_limit,
        descriptors: children?,
    })
}

/// Keys, values and names end up in CEL string literals: no control characters.
fn check_text(s: &str) -> Result<(), String> {
    if s.chars().any(char::is_control) {
        Err("control characters are not allowed".into())
    } else {
        Ok(())
    }
}

/// Checks that no two files configure the same domain.
pub fn check_unique_domains(domains: &[(String, Domain)]) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for (source, d) in domains {
        if !seen.insert(d.name.as_str()) {
            return Err(ConfigError {
                source: source.clone(),
                at: "domain".into(),
                message: format!("duplicate domain '{}' in config files", d.name),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    fn load(text: &str) -> Result<Domain, ConfigError> {
        Domain::parse("test.yaml", text)
    }

    fn refused(text: &str) -> String {
        load(text).expect_err("should be refused").to_string()
    }

    #[test]
    fn a_nested_config_loads() {
        let d = load(
            "domain: ai-attribution
descriptors:
  - key: budget
    value: tokens_per_bu
    descriptors:
      - key: business_unit
        rate_limit: {unit: day, requests_per_unit: 1000000}
      - key: business_unit
        value: research
        rate_limit: {unit: DAY, requests_per_unit: 5000000, name: research-tokens}
      - key: business_unit
        value: lab-*
        rate_limit: {unlimited: true}
",
        )
        .unwrap();
        assert_eq!(d.name, "ai-attribution");
        let budget = &d.descriptors[0];
        assert_eq!(budget.value, ValueMatch::Exact("tokens_per_bu".into()));
        assert_eq!(budget.rate_limit, None);
        let bu = &budget.descriptors;
        assert_eq!(bu[0].value, ValueMatch::Any);
        assert_eq!(
            bu[0].rate_limit,
            Some(RateLimit::Limited {
                requests_per_unit: 1_000_000,
                unit: Unit::Day,
                name: None
            })
        );
        assert_eq!(
            bu[1].rate_limit,
            Some(RateLimit::Limited {
                requests_per_unit: 5_000_000,
                unit: Unit::Day,
                name: Some("research-tokens".into())
            })
        );
        assert_eq!(bu[2].value, ValueMatch::Prefix("lab-".into()));
        assert_eq!(bu[2].rate_limit, Some(RateLimit::Unlimited));
    }

    #[test]
    fn mistakes_are_refused_with_where_they_are() {
        let cases = [
            ("descriptors: []", "domain: the config file has no domain"),
            ("domain: d\ndescriptors:\n  - value: x", "descriptors[0].key: a descriptor needs a non-empty key"),
            (
                "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: fortnight, requests_per_unit: 1}",
                "descriptors[0].rate_limit.unit: invalid rate limit unit 'fortnight'",
            ),
            (
                "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {requests_per_unit: 1}",
                "descriptors[0].rate_limit.unit: a rate limit needs a unit",
            ),
            (
                "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, unlimited: true}",
                "should not specify rate limit unit when unlimited",
            ),
            (
                "domain: d\ndescriptors:\n  - key: a\n    value: x\n  - key: a\n    value: x",
                "descriptors[1]: duplicate descriptor composite key 'a_x'",
            ),
            (
                "domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: a",
                "descriptors[0].descriptors[0].key: key \"a\" already appears above",
            ),
            (
                "domain: d\ndescriptors:\n  - key: a\n    value: x*y",
                "only a trailing `*` wildcard is supported",
            ),
            (
                "domain: d\ndescriptors:\n  - key: a\n    shadow_mode: true",
                "descriptors[0].shadow_mode: not supported by this server",
            ),
            (
                "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, replaces: [{name: x}]}",
                "descriptors[0].rate_limit.replaces: not supported",
            ),
            ("domain: d\ndescriptors:\n  - key: a\n    rate_limt: {}", "unknown field `rate_limt`"),
            (
                "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 4294967296}",
                "requests_per_unit",
            ),
            ("domain: \"d\\n\"", "domain: control characters are not allowed"),
        ];
        for (text, want) in cases {
            let got = refused(text);
            assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
            assert!(got.starts_with("test.yaml: "), "{got}");
        }
    }

    #[test]
    fn two_files_may_not_share_a_domain() {
        let a = ("a.yaml".to_string(), load("domain: d").unwrap());
        let b = ("b.yaml".to_string(), load("domain: d").unwrap());
        let c = ("c.yaml".to_string(), load("domain: e").unwrap());
        assert!(check_unique_domains(&[a.clone(), c]).is_ok());
        let e = check_unique_domains(&[a, b]).unwrap_err();
        assert_eq!(e.to_string(), "b.yaml: domain: duplicate domain 'd' in config files");
    }
}
