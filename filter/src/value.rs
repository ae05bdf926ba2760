//! Value rules shared by every identity source (SPEC §3): trim, length limit, no control characters.

/// Why a raw value cannot be used for attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidValue {
    /// Longer than `limits.max_value_bytes`.
    TooLong,
    /// Contains a control, format (invisible or bidirectional) or line-separator character, or is
    /// not valid UTF-8.
    ControlCharacter,
    /// The same header was sent more than once with different values.
    Ambiguous,
    /// A composite value (JSON object, or a list holding objects).
    Composite,
    /// A SPIFFE namespace or service account of a trust domain that is not local.
    ForeignTrustDomain,
    /// Two different API keys on one call.
    ConflictingKeys,
    /// Marked unverified (a JWT read without checking its signature) where only verified values count.
    Unverified,
}

impl std::fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InvalidValue::TooLong => "longer than limits.max_value_bytes",
            InvalidValue::ControlCharacter => "contains a control character or invalid UTF-8",
            InvalidValue::Ambiguous => "sent more than once with different values",
            InvalidValue::Composite => "an object, not a scalar",
            InvalidValue::ForeignTrustDomain => "from a trust domain that is not local (peer.trust_domains)",
            InvalidValue::ConflictingKeys => "two different API keys on one call",
            InvalidValue::Unverified => "not verified",
        })
    }
}

/// Outcome of checking one raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Empty after trimming: treated as absent.
    Empty,
    Valid(String),
    Invalid(InvalidValue),
}

/// Unicode format characters (general category Cf: zero-width, bidirectional controls, tags),
/// the line and paragraph separators (Zl, Zp), and the characters outside Cf that render as
/// nothing: variation selectors, the combining grapheme joiner, Mongolian free variation
/// selectors, Khmer inherent vowels, the Hangul fillers and the Braille blank (Unicode's
/// Default_Ignorable_Code_Point set and the blanks that look like a space). Each is invisible in
/// a log viewer, or can reorder or break the line it sits in, so a value holding one could pass
/// for another.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x2800
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFFA0
            | 0xE0100..=0xE01EF
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// Applies the value rules to raw bytes.
pub fn check_value(raw: &[u8], max_bytes: usize) -> Checked {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Checked::Invalid(InvalidValue::ControlCharacter);
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
        return Checked::Invalid(InvalidValue::TooLong);
    }
    if trimmed.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Checked::Invalid(InvalidValue::ControlCharacter);
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
        assert_eq!(
            check_str(&"a".repeat(257), 256),
            Checked::Invalid(InvalidValue::TooLong)
        );
        assert_eq!(check_str(&"a".repeat(256), 256), Checked::Valid("a".repeat(256)));
    }

    #[test]
    fn control_characters_are_invalid() {
        assert_eq!(
            check_str("al\u{0}ice", 256),
            Checked::Invalid(InvalidValue::ControlCharacter)
        );
        assert_eq!(
            check_str("al\nice", 256),
            Checked::Invalid(InvalidValue::ControlCharacter)
        );
        assert_eq!(
            check_str("al\u{7f}ice", 256),
            Checked::Invalid(InvalidValue::ControlCharacter)
        );
        assert_eq!(
            check_value(b"\xff\xfe", 256),
            Checked::Invalid(InvalidValue::ControlCharacter)
        );
    }

    #[test]
    fn invisible_and_reordering_characters_are_invalid() {
        for s in [
            "al\u{200b}ice",
            "\u{202e}ecila",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{feff}",
            "a\u{2066}b",
            "a\u{e0041}",
            "alice\u{fe0f}",
            "alice\u{e0100}",
            "ali\u{34f}ce",
            "\u{115f}alice",
            "alice\u{3164}",
            "alice\u{ffa0}",
            "alice\u{2800}",
            "a\u{180b}b",
        ] {
            assert_eq!(
                check_str(s, 256),
                Checked::Invalid(InvalidValue::ControlCharacter),
                "{s:?}"
            );
        }
    }

    #[test]
    fn unicode_is_fine() {
        assert_eq!(check_str("zoë", 256), Checked::Valid("zoë".into()));
    }
}
