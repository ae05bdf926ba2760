//! Metric names (SPEC §7): tags travel in the name as `;key=value`, which the `stats_tags`
//! regexes shipped in `envoy/` turn into labels. Label values are capped per label.

use std::collections::{HashMap, HashSet};

/// The value used once a label has seen `max_label_values` distinct values.
pub const OTHER: &str = "other";
/// The value used when a label has no value for a call.
pub const UNKNOWN: &str = "unknown";

/// Tag values may not contain the separators `;` and `=`, nor control characters; they are
/// also kept short.
pub fn tag_value(v: &str) -> String {
    v.chars()
        .take(64)
        .map(|c| if c == ';' || c == '=' || c.is_control() { '_' } else { c })
        .collect()
}

/// Caps the number of distinct values each label may take (per VM).
#[derive(Debug, Default)]
pub struct LabelCaps {
    seen: HashMap<String, HashSet<String>>,
    max: usize,
}

impl LabelCaps {
    pub fn new(max: usize) -> LabelCaps {
        LabelCaps {
            seen: HashMap::new(),
            max,
        }
    }

    /// The value to use for `label`: the value itself while the label has room, else `other`.
    pub fn cap(&mut self, label: &str, value: &str) -> String {
        let value = tag_value(value);
        let set = self.seen.entry(label.to_string()).or_default();
        if set.contains(&value) {
            return value;
        }
        if set.len() >= self.max {
            return OTHER.to_string();
        }
        set.insert(value.clone());
        value
    }
}

/// `ai_attribution_requests_total;decision=..;provider=..`.
pub fn requests_metric(decision: &str, provider: &str) -> String {
    format!("ai_attribution_requests_total;decision={decision};provider={provider}")
}

/// `ai_attribution_tokens_total;direction=..;provider=..;<label>=..`.
pub fn tokens_metric(direction: &str, provider: &str, labels: &[(String, String)]) -> String {
    let mut name = format!("ai_attribution_tokens_total;direction={direction};provider={provider}");
    for (label, value) in labels {
        name.push(';');
        name.push_str(label);
        name.push('=');
        name.push_str(value);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_distinct_values() {
        let mut caps = LabelCaps::new(2);
        assert_eq!(caps.cap("user", "a"), "a");
        assert_eq!(caps.cap("user", "b"), "b");
        assert_eq!(caps.cap("user", "c"), OTHER);
        assert_eq!(caps.cap("user", "a"), "a");
        assert_eq!(caps.cap("team", "c"), "c");
    }

    #[test]
    fn names_carry_tags() {
        assert_eq!(
            requests_metric("attributed", "openai"),
            "ai_attribution_requests_total;decision=attributed;provider=openai"
        );
        let labels = vec![("business_unit".to_string(), tag_value("fin;ance=x"))];
        assert_eq!(
            tokens_metric("input", "openai", &labels),
            "ai_attribution_tokens_total;direction=input;provider=openai;business_unit=fin_ance_x"
        );
    }
}
