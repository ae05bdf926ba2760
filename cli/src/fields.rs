//! What `--by` can name, and the money type every output shares.

use crate::record::Record;

/// A grouping field: a dimension, or one of the call's own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Dim(String),
    Model,
    Provider,
    Operation,
    Tool,
    Decision,
    Event,
}

impl Field {
    pub const FIXED: [(&'static str, Field); 6] = [
        ("model", Field::Model),
        ("provider", Field::Provider),
        ("operation", Field::Operation),
        ("tool", Field::Tool),
        ("decision", Field::Decision),
        ("event", Field::Event),
    ];

    pub fn parse(name: &str) -> Result<Field, String> {
        let name = name.trim();
        if let Some((_, f)) = Self::FIXED.iter().find(|(n, _)| *n == name) {
            return Ok(f.clone());
        }
        let mut bytes = name.bytes();
        let valid = matches!(bytes.next(), Some(b'a'..=b'z'))
            && name.len() <= 64
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(format!(
                "\"{name}\" is not a dimension name ([a-z][a-z0-9_]*) nor one of model, provider, operation, tool, decision, event"
            ));
        }
        Ok(Field::Dim(name.to_string()))
    }

    /// Parses `a,b,c`; duplicates are refused.
    pub fn parse_list(text: &str) -> Result<Vec<Field>, String> {
        let mut out: Vec<Field> = Vec::new();
        for part in text.split(',') {
            if part.trim().is_empty() {
                return Err(format!("--by \"{text}\": empty name in the list"));
            }
            let f = Field::parse(part)?;
            if out.contains(&f) {
                return Err(format!("--by \"{text}\": \"{}\" is named twice", f.name()));
            }
            out.push(f);
        }
        Ok(out)
    }

    pub fn name(&self) -> &str {
        match self {
            Field::Dim(d) => d,
            Field::Model => "model",
            Field::Provider => "provider",
            Field::Operation => "operation",
            Field::Tool => "tool",
            Field::Decision => "decision",
            Field::Event => "event",
        }
    }

    pub fn get<'r>(&self, r: &'r Record<'_>) -> Option<&'r str> {
        let v = match self {
            Field::Dim(d) => r.dim(d),
            Field::Model => r.model(),
            Field::Provider => r.provider.as_deref(),
            Field::Operation => r.operation.as_deref(),
            Field::Tool => r.tool(),
            Field::Decision => r.decision(),
            Field::Event => Some(r.event().as_str()),
        };
        v.filter(|s| !s.is_empty())
    }
}

/// USD in units of 10^-10, the precision the filter rounds its scalar `cost_usd` to. Summing
/// integers keeps totals independent of the order lines are read in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(pub i128);

impl Money {
    pub const SCALE: i128 = 10_000_000_000;

    pub fn from_usd(usd: f64) -> Money {
        if !usd.is_finite() {
            return Money(0);
        }
        // Saturating float-to-int: absurd values clamp instead of overflowing.
        Money((usd * Self::SCALE as f64).round() as i128)
    }

    pub fn add(&mut self, other: Money) {
        self.0 = self.0.saturating_add(other.0);
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// Every digit: `0.0001875`, `12.5`, `0`.
    pub fn exact(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let scale = Self::SCALE.unsigned_abs();
        let (whole, frac) = (abs / scale, abs % scale);
        if frac == 0 {
            return format!("{sign}{whole}");
        }
        let digits = format!("{frac:010}");
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }

    /// Rounded to `places` decimals (half away from zero), always with that many decimals.
    pub fn fixed(self, places: u32) -> String {
        let places = places.min(10);
        let div = 10u128.pow(10 - places);
        let q = self.0.unsigned_abs();
        let rounded = (q + div / 2) / div;
        let unit = 10u128.pow(places);
        let sign = if self.0 < 0 && rounded > 0 { "-" } else { "" };
        if places == 0 {
            return format!("{sign}{rounded}");
        }
        format!(
            "{sign}{}.{:0width$}",
            rounded / unit,
            rounded % unit,
            width = places as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money() {
        let m = Money::from_usd(0.0001875);
        assert_eq!(m.exact(), "0.0001875");
        assert_eq!(m.fixed(6), "0.000188");
        assert_eq!(m.fixed(2), "0.00");
        assert_eq!(Money::from_usd(12.5).exact(), "12.5");
        assert_eq!(Money::from_usd(12.345).fixed(2), "12.35");
        assert_eq!(Money::from_usd(-1.5).exact(), "-1.5");
        assert_eq!(Money::from_usd(f64::NAN), Money(0));
        assert_eq!(Money::from_usd(1e300).0, i128::MAX);
        let mut sum = Money::default();
        sum.add(Money(i128::MAX));
        sum.add(Money(5));
        assert_eq!(sum.0, i128::MAX);
    }

    #[test]
    fn fields() {
        assert_eq!(
            Field::parse_list("business_unit, model").unwrap(),
            vec![Field::Dim("business_unit".into()), Field::Model]
        );
        assert!(Field::parse_list("user,user").is_err());
        assert!(Field::parse_list("user,").is_err());
        assert!(Field::parse_list("User").is_err());
        assert!(Field::parse_list("a.b").is_err());
    }
}
