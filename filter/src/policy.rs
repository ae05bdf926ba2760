//! Attribution policy: resolve each dimension from its sources, then decide (SPEC §3, §4).

use crate::config::{Config, Mode};
use crate::source::Source;
use crate::value::{check_value, Checked, InvalidValue};

/// What a source yields for one request, before the value rules apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The source has nothing for this request.
    Absent,
    /// A raw value.
    Value(Vec<u8>),
    /// A raw value that was not verified (a JWT read without checking its signature).
    Unverified(Vec<u8>),
    /// The value exists but breaks a rule before it could be read (ambiguous header, object claim).
    Invalid(InvalidValue),
    /// A header source whose sender is not a trusted peer.
    Untrusted,
}

/// Host access for the sources of one request. The wasm glue implements it over host calls;
/// tests implement it over plain data.
pub trait SourceLookup {
    fn lookup(&mut self, source: &Source) -> Lookup;

    /// The host's clock, Unix seconds, for exceptions' `until` (`None`: no exception holds).
    fn now(&mut self) -> Option<u64> {
        None
    }
}

/// Why a dimension has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    Absent,
    Invalid,
    Untrusted,
}

/// The outcome for one dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Resolved {
        value: String,
        source: usize,
        unverified: bool,
    },
    Unresolved(Unresolved),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Attributed,
    Rejected,
    WouldReject,
    /// Not attributed, and not required to be: an MCP request whose method is not in `mcp.methods`.
    Exempt,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Attributed => "attributed",
            Decision::Rejected => "rejected",
            Decision::WouldReject => "would_reject",
            Decision::Exempt => "exempt",
        }
    }
}

/// The attribution of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// One entry per configured dimension, in config order.
    pub dimensions: Vec<Resolution>,
    pub decision: Decision,
    /// Dimensions the closest unmet alternative still needs (empty when attributed).
    pub missing: Vec<usize>,
    /// The exception (index into `exceptions`) whose `require` attributed the call.
    pub exception: Option<usize>,
    /// Dimensions whose value was present but invalid, or untrusted.
    pub invalid: Vec<usize>,
    pub untrusted: Vec<usize>,
    /// Dimensions resolved from unverified values (recorded, marked, never propagated).
    pub unverified: Vec<usize>,
}

/// Resolves one dimension: the first source with a valid value wins.
pub fn resolve_dimension(sources: &[Source], lookup: &mut dyn SourceLookup, max_bytes: usize) -> Resolution {
    let mut cause = Unresolved::Absent;
    for (i, source) in sources.iter().enumerate() {
        let (raw, unverified) = match lookup.lookup(source) {
            Lookup::Absent => continue,
            Lookup::Untrusted => {
                if cause == Unresolved::Absent {
                    cause = Unresolved::Untrusted;
                }
                continue;
            }
            Lookup::Invalid(_) => {
                cause = Unresolved::Invalid;
                continue;
            }
            Lookup::Value(raw) => (raw, false),
            Lookup::Unverified(raw) => (raw, true),
        };
        match check_value(&raw, max_bytes) {
            Checked::Valid(value) => {
                return Resolution::Resolved {
                    value,
                    source: i,
                    unverified,
                }
            }
            Checked::Empty => {}
            Checked::Invalid(_) => cause = Unresolved::Invalid,
        }
    }
    Resolution::Unresolved(cause)
}

/// Resolves every dimension and decides against the top-level `require`.
pub fn attribute(config: &Config, lookup: &mut dyn SourceLookup) -> Attribution {
    attribute_against(config, &config.require, lookup)
}

/// Resolves every dimension and decides against `require` (alternatives of dimension indexes).
pub fn attribute_against(config: &Config, require: &[Vec<usize>], lookup: &mut dyn SourceLookup) -> Attribution {
    let dimensions: Vec<Resolution> = config
        .dimensions
        .iter()
        .map(|d| resolve_dimension(&d.sources, lookup, config.max_value_bytes))
        .collect();
    let unresolved = |i: usize| match dimensions.get(i) {
        Some(Resolution::Resolved { .. }) => None,
        Some(Resolution::Unresolved(u)) => Some(*u),
        None => Some(Unresolved::Absent),
    };
    let unverified: Vec<usize> = (0..dimensions.len())
        .filter(|&i| matches!(dimensions.get(i), Some(Resolution::Resolved { unverified: true, .. })))
        .collect();
    // An unverified value satisfies `require` only when the operator says so.
    let counts =
        |i: usize| unresolved(i).is_none() && (config.jwt.unverified_satisfies_require || !unverified.contains(&i));
    let dims_with = |cause: Unresolved| -> Vec<usize> {
        (0..dimensions.len())
            .filter(|&i| unresolved(i) == Some(cause))
            .collect()
    };
    let invalid = dims_with(Unresolved::Invalid);
    let untrusted = dims_with(Unresolved::Untrusted);

    // The alternative with the fewest unresolved dimensions (the first on a tie).
    let closest = require
        .iter()
        .map(|alt| alt.iter().copied().filter(|&i| !counts(i)).collect::<Vec<usize>>())
        .min_by_key(Vec::len)
        .unwrap_or_default();
    // Unmet: an exception in force for these callers may accept one of its own alternatives.
    let exception = if closest.is_empty() {
        None
    } else {
        exception_for(config, &dimensions, &counts, lookup)
    };
    let decision = if closest.is_empty() || exception.is_some() {
        Decision::Attributed
    } else if config.mode == Mode::Audit {
        Decision::WouldReject
    } else {
        Decision::Rejected
    };
    Attribution {
        dimensions,
        decision,
        exception,
        missing: if exception.is_some() { Vec::new() } else { closest },
        invalid,
        untrusted,
        unverified,
    }
}

/// The first exception in force that covers the call and whose `require` it meets.
fn exception_for(
    config: &Config,
    dimensions: &[Resolution],
    counts: &dyn Fn(usize) -> bool,
    lookup: &mut dyn SourceLookup,
) -> Option<usize> {
    let candidates: Vec<usize> = config
        .exceptions
        .iter()
        .enumerate()
        .filter(|(_, e)| e.require.iter().any(|alt| alt.iter().all(|&i| counts(i))))
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let now = lookup.now()?;
    let spiffe_id = match lookup.lookup(&Source::Peer(crate::source::PeerField::SpiffeId)) {
        Lookup::Value(v) => String::from_utf8(v).ok(),
        _ => None,
    };
    let value = |i: usize| match dimensions.get(i) {
        Some(Resolution::Resolved {
            value,
            unverified: false,
            ..
        }) => Some(value.clone()),
        _ => None,
    };
    candidates.into_iter().find(|&i| {
        config
            .exceptions
            .get(i)
            .is_some_and(|e| e.covers(&value, spiffe_id.as_deref(), now))
    })
}

impl Attribution {
    /// The `reason` record value: `invalid:<dims>;untrusted:<dims>;unverified:<dims>;missing:<dims>`,
    /// parts present only when non-empty. `missing` names the absent dimensions of the closest unmet
    /// alternative, `unverified` its dimensions whose values were unverified and did not count;
    /// invalid and untrusted name every dimension left without a value for that cause, attributed or not.
    pub fn reason(&self, config: &Config) -> String {
        let names = |idx: &[usize]| -> String {
            idx.iter()
                .filter_map(|&i| config.dimensions.get(i).map(|d| d.name.as_str()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let absent: Vec<usize> = self
            .missing
            .iter()
            .copied()
            .filter(|&i| matches!(self.dimensions.get(i), Some(Resolution::Unresolved(Unresolved::Absent))))
            .collect();
        let blocked_unverified: Vec<usize> = self
            .missing
            .iter()
            .copied()
            .filter(|i| self.unverified.contains(i))
            .collect();
        let mut parts = Vec::new();
        for (label, idx) in [
            ("invalid", &self.invalid),
            ("untrusted", &self.untrusted),
            ("unverified", &blocked_unverified),
            ("missing", &absent),
        ] {
            if !idx.is_empty() {
                parts.push(format!("{label}:{}", names(idx)));
            }
        }
        parts.join(";")
    }

    /// `user=header:x-user-id,business_unit=static:finance`; unverified values carry `(unverified)`.
    pub fn sources(&self, config: &Config) -> String {
        let mut out = String::new();
        for (dim, res) in config.dimensions.iter().zip(&self.dimensions) {
            if let Resolution::Resolved { source, unverified, .. } = res {
                if let Some(src) = dim.sources.get(*source) {
                    if !out.is_empty() {
                        out.push(',');
                    }
                    out.push_str(&dim.name);
                    out.push('=');
                    out.push_str(&src.to_string());
                    if *unverified {
                        out.push_str("(unverified)");
                    }
                }
            }
        }
        out
    }

    /// The dimension's value, verified or not (what the record shows).
    pub fn value(&self, dim: usize) -> Option<&str> {
        match self.dimensions.get(dim) {
            Some(Resolution::Resolved { value, .. }) => Some(value),
            _ => None,
        }
    }

    /// The dimension's value if it was verified: what may be propagated or used as a metric label.
    pub fn verified_value(&self, dim: usize) -> Option<&str> {
        match self.dimensions.get(dim) {
            Some(Resolution::Resolved {
                value,
                unverified: false,
                ..
            }) => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Headers(HashMap<String, Lookup>);

    impl SourceLookup for Headers {
        fn lookup(&mut self, source: &Source) -> Lookup {
            match source {
                Source::Header(h) => self.0.get(h).cloned().unwrap_or(Lookup::Absent),
                Source::Static(v) => Lookup::Value(v.as_bytes().to_vec()),
                _ => Lookup::Absent,
            }
        }
    }

    fn headers(pairs: &[(&str, Lookup)]) -> Headers {
        Headers(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn v(s: &str) -> Lookup {
        Lookup::Value(s.as_bytes().to_vec())
    }

    fn config(extra: &str) -> Config {
        let json = format!(
            r#"{{"dimensions":{{"user":["header:x-user-id"],"service_account":["header:x-sa"],
            "business_unit":["header:x-bu","header:x-bu2"]}},
            "require":[["user","business_unit"],["service_account","business_unit"]]{extra}}}"#
        );
        Config::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn attributed_when_one_alternative_is_met() {
        let c = config("");
        let a = attribute(&c, &mut headers(&[("x-sa", v("svc")), ("x-bu2", v("finance"))]));
        assert_eq!(a.decision, Decision::Attributed);
        assert_eq!(a.reason(&c), "");
        assert_eq!(a.sources(&c), "business_unit=header:x-bu2,service_account=header:x-sa");
    }

    #[test]
    fn rejected_names_the_closest_alternative() {
        let c = config("");
        let a = attribute(&c, &mut headers(&[("x-user-id", v("alice"))]));
        assert_eq!(a.decision, Decision::Rejected);
        assert_eq!(a.reason(&c), "missing:business_unit");
        assert_eq!(a.missing, vec![0]);
    }

    #[test]
    fn audit_mode_would_reject() {
        let c = config(r#","mode":"audit""#);
        let a = attribute(&c, &mut headers(&[]));
        assert_eq!(a.decision, Decision::WouldReject);
        assert_eq!(a.reason(&c), "missing:user,business_unit");
    }

    #[test]
    fn invalid_values_fall_through_and_are_named() {
        let c = config("");
        let a = attribute(
            &c,
            &mut headers(&[
                ("x-user-id", v("al\u{1}ice")),
                ("x-bu", Lookup::Invalid(InvalidValue::Ambiguous)),
            ]),
        );
        assert_eq!(a.decision, Decision::Rejected);
        assert_eq!(a.reason(&c), "invalid:business_unit,user");
        let a = attribute(
            &c,
            &mut headers(&[
                ("x-user-id", v("alice")),
                ("x-bu", v(&"x".repeat(300))),
                ("x-bu2", v("ops")),
            ]),
        );
        assert_eq!(a.decision, Decision::Attributed);
        assert_eq!(a.value(0), Some("ops"));
    }

    #[test]
    fn untrusted_is_named() {
        let c = config("");
        let a = attribute(
            &c,
            &mut headers(&[("x-user-id", Lookup::Untrusted), ("x-bu", v("ops"))]),
        );
        assert_eq!(a.reason(&c), "untrusted:user");
        assert_eq!(a.missing, vec![2]);
    }

    #[test]
    fn empty_values_are_absent() {
        let c = config("");
        let a = attribute(&c, &mut headers(&[("x-user-id", v("  ")), ("x-bu", v("ops"))]));
        assert_eq!(a.reason(&c), "missing:user");
    }
}
