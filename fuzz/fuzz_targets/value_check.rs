//! `value::check_value`: never panics, and its outcome follows the SPEC §3 value rules
//! exactly (trim spaces/tabs; empty is absent; longer than the limit is TooLong; control
//! characters or invalid UTF-8 are ControlCharacter).
#![no_main]

use ai_attribution::value::{check_str, check_value, Checked, InvalidValue};
use fuzz_support::split_first;
use libfuzzer_sys::fuzz_target;

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
            } else if trimmed.chars().any(char::is_control) {
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
        assert!(!v.chars().any(char::is_control));
        // Valid values are a substring of the input and idempotent under the rules.
        assert!(std::str::from_utf8(raw).is_ok_and(|t| t.contains(v.as_str())));
        assert_eq!(check_str(v, limit), got);
    }
    if let Ok(text) = std::str::from_utf8(raw) {
        assert_eq!(check_str(text, limit), got);
    }
});
