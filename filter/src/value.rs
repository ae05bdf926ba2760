//! Value rules shared by every identity source (SPEC §3): trim, length limit, no control characters.

/// Why a raw value cannot be used for attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Longer than `limits.max_value_bytes`.
    TooLong,
    /// Contains a control character (or is not valid UTF-8).
    ControlCharacter,
    /// The same header was sent more than once with different values.
    Ambiguous,
    /// A composite value (JSON object, or a list holding objects).
    Composite,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rejected::TooLong => "longer than limits.max_value_bytes",
            Rejected::ControlCharacter => "contains a control character or invalid UTF-8",
            Rejected::Ambiguous => "sent more than once with different values",
            Rejected::Composite => "an object, not a scalar",
        })
    }
}

/// Outcome of checking one raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Empty after trimming: treated as absent.
    Empty,
    Valid(String),
    Invalid(Rejected),
}

/// Applies the value rules to raw bytes.
pub fn check_value(raw: &[u8], max_bytes: usize) -> Checked {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Checked::Invalid(Rejected::ControlCharacter);
    };
    check_str(text, max_bytes)
}

/// Applies the value rules to a string.
pub fn check_str(text: &str, max_bytes: usize) -> Checked {
    let trimmed = text.trim_matches(|c: char| c == ' ' || c == '\t');
    if trimmed.is_empty() {
        return Checked::Empty;
    }
    if trimmed.len() > max_bytes {
        return Checked::Invalid(Rejected::TooLong);
    }
    if trimmed.chars().any(char::is_control) {
        return Checked::Invalid(Rejected::ControlCharacter);
    }
    Checked::Valid(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_accepts() {
        assert_eq!(check_str("  alice \t", 256), Checked::Valid("alice".into()));
    }

    #[test]
    fn empty_is_absent() {
        assert_eq!(check_str("   ", 256), Checked::Empty);
        assert_eq!(check_value(b"", 256), Checked::Empty);
    }

    #[test]
    fn too_long_is_invalid() {
        assert_eq!(check_str(&"a".repeat(257), 256), Checked::Invalid(Rejected::TooLong));
        assert_eq!(check_str(&"a".repeat(256), 256), Checked::Valid("a".repeat(256)));
    }

    #[test]
    fn control_characters_are_invalid() {
        assert_eq!(
            check_str("al\u{0}ice", 256),
            Checked::Invalid(Rejected::ControlCharacter)
        );
        assert_eq!(check_str("al\nice", 256), Checked::Invalid(Rejected::ControlCharacter));
        assert_eq!(
            check_str("al\u{7f}ice", 256),
            Checked::Invalid(Rejected::ControlCharacter)
        );
        assert_eq!(
            check_value(b"\xff\xfe", 256),
            Checked::Invalid(Rejected::ControlCharacter)
        );
    }

    #[test]
    fn unicode_is_fine() {
        assert_eq!(check_str("zoë", 256), Checked::Valid("zoë".into()));
    }
}
