//! `value::check_value`: never panics, and its outcome follows the value rules exactly (trim
//! spaces/tabs; empty is absent; longer than the limit is TooLong; invalid UTF-8, control
//! characters, and characters a reader cannot see are ControlCharacter). What cannot be seen is
//! taken from the Unicode tables of the `unicode-properties` crate (format characters, Cf, and
//! the line and paragraph separators), plus the invisible letters and marks outside Cf that the
//! README lists; the filter keeps its own list, so the two are checked against each other.
#![no_main]

use ai_attribution::value::{check_str, check_value, Checked, InvalidValue};
use fuzz_support::split_first;
use libfuzzer_sys::fuzz_target;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Invisible, but not format characters: combining grapheme joiner, Hangul fillers, Khmer
/// inherent vowels, Mongolian variation selectors, the Braille blank, variation selectors.
fn invisible_outside_cf(c: char) -> bool {
    matches!(
        u32::from(c),
        0x034F
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x2800
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFFA0
            | 0xE0100..=0xE01EF
    )
}

fn unseen(c: char) -> bool {
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format | GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
        )
        || invisible_outside_cf(c)
}

fuzz_target!(|data: &[u8]| {
    let (limit_byte, raw) = split_first(data);
    // Limits 0..=255, with the interesting small ones and the default 256 reachable.
    let limit = if limit_byte == 255 {
        256
    } else {
        usize::from(limit_byte)
    };
    let got = check_value(raw, limit);

    let expected = match std::str::from_utf8(raw) {
        Err(_) => Checked::Invalid(InvalidValue::ControlCharacter),
        Ok(text) => {
            let trimmed = text.trim_matches([' ', '\t']);
            if trimmed.is_empty() {
                Checked::Empty
            } else if trimmed.len() > limit {
                Checked::Invalid(InvalidValue::TooLong)
            } else if trimmed.chars().any(unseen) {
                Checked::Invalid(InvalidValue::ControlCharacter)
            } else {
                Checked::Valid(trimmed.to_string())
            }
        }
    };
    assert_eq!(got, expected, "input {raw:?}, limit {limit}");

    if let Checked::Valid(v) = &got {
        assert!(!v.is_empty());
        assert!(v.len() <= limit);
        assert!(!v.starts_with([' ', '\t']) && !v.ends_with([' ', '\t']));
        assert!(!v.chars().any(unseen));
        // Valid values are a substring of the input and idempotent under the rules.
        assert!(std::str::from_utf8(raw).is_ok_and(|t| t.contains(v.as_str())));
        assert_eq!(check_str(v, limit), got);
    }
    if let Ok(text) = std::str::from_utf8(raw) {
        assert_eq!(check_str(text, limit), got);
    }
});
