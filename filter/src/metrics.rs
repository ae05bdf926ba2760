//! Metric names: tags travel in the name as `;key=value`, which the `stats_tags` regexes shipped
//! in `envoy/` turn into labels. The number of series per metric is capped per VM
//! ([`crate::call::VmState::series`]).

/// Requests that were AI events, by decision and provider (and the configured labels).
pub const REQUESTS: &str = "ai_attribution_requests_total";
/// Tokens by direction and provider (and the configured labels).
pub const TOKENS: &str = "ai_attribution_tokens_total";
/// Cost in millionths of a US dollar, by provider (and the configured labels).
pub const COST: &str = "ai_attribution_cost_microusd_total";
/// Answers by `usage_status` and provider.
pub const USAGE: &str = "ai_attribution_usage_total";
/// Requests to MCP endpoints, by decision, JSON-RPC method and tool.
pub const TOOL_CALLS: &str = "ai_attribution_tool_calls_total";

/// The value used for capped labels once a metric has reached its series cap.
pub const OTHER: &str = "other";
/// The value used when a label has no value for a call.
pub const UNKNOWN: &str = "unknown";
/// The value used for a label whose value was not verified (a JWT read without its signature).
pub const UNVERIFIED: &str = "unverified";

/// Labels whose values come from a small fixed set; every other label is capped.
const BOUNDED_LABELS: [&str; 4] = ["decision", "provider", "direction", "status"];

/// Whether a label's values can grow without bound (dimensions, `model`), so the cap applies.
pub fn is_capped(label: &str) -> bool {
    !BOUNDED_LABELS.contains(&label)
}

/// Tag values may not contain the separators `;` and `=`, nor control characters; they are
/// also kept short.
pub fn tag_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len().min(64));
    push_tag_value(&mut out, v);
    out
}

/// Appends `v` sanitised as [`tag_value`] does.
fn push_tag_value(out: &mut String, v: &str) {
    let clean = |c: char| c != ';' && c != '=' && !c.is_control();
    // Printable ASCII other than `;` and `=` is clean; anything else is checked by character.
    let clean_ascii = |b: &u8| (0x20..0x7f).contains(b) && *b != b';' && *b != b'=';
    if v.len() <= 64 && (v.bytes().all(|b| clean_ascii(&b)) || v.chars().all(clean)) {
        out.push_str(v);
        return;
    }
    out.extend(v.chars().take(64).map(|c| if clean(c) { c } else { '_' }));
}

/// `metric;label=value;...`, values sanitised with [`tag_value`].
pub fn metric_name(metric: &str, labels: &[(&str, &str)]) -> String {
    let mut name = String::with_capacity(metric.len() + 24 * labels.len());
    write_metric_name(&mut name, metric, labels);
    name
}

/// [`metric_name`] written into `out` (cleared first), so that a caller can reuse one buffer.
pub fn write_metric_name(out: &mut String, metric: &str, labels: &[(&str, &str)]) {
    out.clear();
    out.push_str(metric);
    for (label, value) in labels {
        out.push(';');
        out.push_str(label);
        out.push('=');
        push_tag_value(out, value);
    }
}

/// A cost in USD as a whole number of millionths, rounded (the unit of [`COST`]).
pub fn micro_usd(cost: f64) -> u64 {
    if cost.is_finite() && cost > 0.0 {
        (cost * 1_000_000.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_tags() {
        assert_eq!(
            metric_name(REQUESTS, &[("decision", "attributed"), ("provider", "openai")]),
            "ai_attribution_requests_total;decision=attributed;provider=openai"
        );
        assert_eq!(
            metric_name(TOKENS, &[("direction", "input"), ("business_unit", "fin;ance=x")]),
            "ai_attribution_tokens_total;direction=input;business_unit=fin_ance_x"
        );
        let long = "é".repeat(70);
        assert_eq!(tag_value(&long).chars().count(), 64);
        assert_eq!(tag_value("a\nb"), "a_b");
        let mut reused = String::from("left over");
        write_metric_name(&mut reused, USAGE, &[("status", "reported")]);
        assert_eq!(reused, "ai_attribution_usage_total;status=reported");
    }

    #[test]
    fn only_open_ended_labels_are_capped() {
        assert!(!is_capped("provider"));
        assert!(is_capped("business_unit"));
        assert!(is_capped("model"));
    }

    #[test]
    fn cost_in_millionths() {
        assert_eq!(micro_usd(0.000175), 175);
        assert_eq!(micro_usd(1.5), 1_500_000);
        assert_eq!(micro_usd(-1.0), 0);
        assert_eq!(micro_usd(f64::NAN), 0);
    }
}
