//! Limitador's own limits format (what limitador-server loads): a YAML list of
//! `{namespace, max_value, seconds, name?, conditions[], variables[]}`. Loaded so that the
//! shipped Limitador file can be run, and checked against the envoyproxy/ratelimit one, here.
//!
//! Each request descriptor is bound alone as `descriptors[0]`, so conditions and variables
//! may only read `descriptors[0]`. Windows start at each counter's first hit, as in
//! limitador-server.

use crate::config::ConfigError;
use crate::translate::LimitSpec;
use limitador::limit::{Expression, Predicate};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    namespace: Option<String>,
    max_value: Option<u64>,
    seconds: Option<u64>,
    name: Option<String>,
    conditions: Option<Vec<String>>,
    variables: Option<Vec<String>>,
}

/// Parses a limitador limits file. `source` names it in errors.
pub fn parse(source: &str, text: &str) -> Result<Vec<LimitSpec>, ConfigError> {
    let err = |at: String, message: String| ConfigError {
        source: source.to_string(),
        at,
        message,
    };
    let raw: Vec<RawLimit> = serde_yaml::from_str(text).map_err(|e| err(String::new(), e.to_string()))?;
    let mut out = Vec::with_capacity(raw.len());
    for (i, l) in raw.into_iter().enumerate() {
        let at = |field: &str| format!("[{i}].{field}");
        let namespace = l.namespace.unwrap_or_default();
        if namespace.is_empty() {
            return Err(err(at("namespace"), "a limit needs a namespace".into()));
        }
        let max_value = l
            .max_value
            .ok_or_else(|| err(at("max_value"), "a limit needs a max_value".into()))?;
        let seconds = match l.seconds {
            Some(s) if s > 0 => s,
            _ => return Err(err(at("seconds"), "a limit needs seconds above 0".into())),
        };
        let conditions = l.conditions.unwrap_or_default();
        let variables = l.variables.unwrap_or_default();
        for (j, c) in conditions.iter().enumerate() {
            Predicate::parse(c).map_err(|e| err(at(&format!("conditions[{j}]")), e.to_string()))?;
            only_first_descriptor(c).map_err(|m| err(at(&format!("conditions[{j}]")), m))?;
        }
        for (j, v) in variables.iter().enumerate() {
            Expression::parse(v).map_err(|e| err(at(&format!("variables[{j}]")), e.to_string()))?;
            only_first_descriptor(v).map_err(|m| err(at(&format!("variables[{j}]")), m))?;
        }
        out.push(LimitSpec {
            namespace,
            max_value,
            seconds,
            name: l.name,
            conditions,
            variables,
            aligned_to: None,
        });
    }
    Ok(out)
}

/// `descriptors[1]` would be out of range for a lone descriptor (an evaluation error, not a
/// "no match"), so it is refused when the file is loaded.
fn only_first_descriptor(expr: &str) -> Result<(), String> {
    let mut rest = expr;
    while let Some(i) = rest.find("descriptors[") {
        let after = rest.get(i + "descriptors[".len()..).unwrap_or_default();
        if !after.starts_with("0]") {
            return Err("this server binds each request descriptor alone: read only descriptors[0]".into());
        }
        rest = after;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_limits_file_loads() {
        let limits = parse(
            "limits.yaml",
            "- namespace: ai-attribution
  max_value: 10
  seconds: 60
  conditions:
    - \"descriptors[0]['budget'] == 'requests_per_user'\"
  variables:
    - descriptors[0]['user']
- namespace: other
  max_value: 5
  seconds: 1
  conditions:
  variables:
",
        )
        .unwrap();
        assert_eq!(limits.len(), 2);
        assert_eq!(limits[0].variables, ["descriptors[0]['user']"]);
        assert_eq!(limits[0].aligned_to, None);
        assert!(limits[1].conditions.is_empty());
        assert!(limits[0].to_limit().is_ok());
    }

    #[test]
    fn mistakes_are_refused_with_where_they_are() {
        let cases = [
            (
                "- max_value: 1\n  seconds: 1",
                "[0].namespace: a limit needs a namespace",
            ),
            (
                "- namespace: n\n  seconds: 1",
                "[0].max_value: a limit needs a max_value",
            ),
            (
                "- namespace: n\n  max_value: 1\n  seconds: 0",
                "[0].seconds: a limit needs seconds above 0",
            ),
            (
                "- namespace: n\n  max_value: 1\n  seconds: 1\n  conditions: [\"descriptors[1]['a'] == 'b'\"]",
                "[0].conditions[0]: this server binds each request descriptor alone",
            ),
            (
                "- namespace: n\n  max_value: 1\n  seconds: 1\n  variables: [\"descriptors[0]['a'\"]",
                "[0].variables[0]:",
            ),
            (
                "- namespace: n\n  max_value: 1\n  seconds: 1\n  limit: 3",
                "unknown field `limit`",
            ),
        ];
        for (text, want) in cases {
            let got = parse("limits.yaml", text).unwrap_err().to_string();
            assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
        }
    }
}
