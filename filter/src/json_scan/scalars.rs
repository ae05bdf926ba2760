//! Scalar and string lexing for the JSON field picker (RFC 8259 sections 6 and 7):
//! numbers, `true`/`false`/`null`, strings with full unescaping (`\uXXXX` surrogate pairs
//! combined, lone surrogates replaced by U+FFFD), skipping of over-deep containers, and
//! the bounded capture buffer.

use super::{bit, set_bits, ContainerKind, JsonScalar, JsonScanner, State, StringRole};
use crate::find::{first_stop, Stops};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Escape {
    None,
    Backslash,
    Unicode { digits: u8, code: u16 },
}

/// Position inside a number, per the RFC 8259 `number` production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumberPart {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    ExpMark,
    ExpSign,
    Exp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Literal {
    True,
    False,
    Null,
}

impl Literal {
    pub(super) fn text(self) -> &'static [u8] {
        match self {
            Literal::True => b"true",
            Literal::False => b"false",
            Literal::Null => b"null",
        }
    }

    pub(super) fn scalar(self) -> JsonScalar {
        match self {
            Literal::True => JsonScalar::Bool(true),
            Literal::False => JsonScalar::Bool(false),
            Literal::Null => JsonScalar::Null,
        }
    }
}

/// How many leading bytes of a string's contents are plain (not `"`, `\` or a control byte): long
/// message texts are most of what a request or an answer holds.
pub(super) fn plain_run(bytes: &[u8]) -> usize {
    first_stop(
        bytes,
        Stops {
            a: b'"',
            b: b'\\',
            controls: true,
        },
    )
    .unwrap_or(bytes.len())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    String,
    Number,
}

fn hex_value(b: u8) -> Option<u16> {
    char::from(b).to_digit(16).and_then(|d| u16::try_from(d).ok())
}

impl JsonScanner {
    pub(super) fn literal_byte(&mut self, b: u8, word: Literal, matched: usize) {
        let text = word.text();
        if text.get(matched) != Some(&b) {
            self.state = State::Malformed;
            return;
        }
        if matched + 1 == text.len() {
            self.store(self.capture_mask, word.scalar());
            self.value_ended();
        } else {
            self.state = State::InLiteral {
                word,
                matched: matched + 1,
            };
        }
    }

    pub(super) fn number_byte(&mut self, b: u8, part: NumberPart) -> usize {
        use NumberPart::*;
        let next = match (part, b) {
            (Minus, b'0') => Some(Zero),
            (Minus, b'1'..=b'9') => Some(Int),
            (Int, b'0'..=b'9') => Some(Int),
            (Zero | Int, b'.') => Some(Dot),
            (Dot | Frac, b'0'..=b'9') => Some(Frac),
            (Zero | Int | Frac, b'e' | b'E') => Some(ExpMark),
            (ExpMark, b'+' | b'-') => Some(ExpSign),
            (ExpMark | ExpSign | Exp, b'0'..=b'9') => Some(Exp),
            _ => None,
        };
        if let Some(next) = next {
            self.append(&[b]);
            self.state = State::InNumber(next);
            return 1;
        }
        if !matches!(part, Zero | Int | Frac | Exp) {
            self.state = State::Malformed;
            return 1;
        }
        if self.capture_mask != 0 {
            if self.capture_overflow {
                self.store(self.capture_mask, JsonScalar::TooLong);
            } else {
                self.store_text(self.capture_mask, TextKind::Number);
            }
        }
        self.capturing = false;
        self.value_ended();
        0
    }

    /// Handles bytes inside a string; returns bytes consumed (at least 1).
    pub(super) fn string_bytes(&mut self, rest: &[u8], role: StringRole, escape: Escape) -> usize {
        match (escape, rest.first()) {
            (_, None) => 0,
            (Escape::None, Some(_)) => self.plain_string_bytes(rest, role),
            (Escape::Backslash, Some(&b)) => {
                self.backslash_byte(b, role);
                1
            }
            (Escape::Unicode { digits, code }, Some(&b)) => {
                self.unicode_digit(b, role, digits, code);
                1
            }
        }
    }

    /// A plain run of a string's bytes and the byte that ends it: the closing quote, a backslash,
    /// or a control byte (malformed).
    fn plain_string_bytes(&mut self, rest: &[u8], role: StringRole) -> usize {
        let plain = plain_run(rest);
        let whole_key = role == StringRole::Key
            && self.capture.is_empty()
            && !self.capture_overflow
            && self.pending_high_surrogate.is_none()
            && rest.get(plain) == Some(&b'"');
        if whole_key {
            self.whole_key(rest, plain);
            // The colon, when it follows at once, is taken in the same step.
            if rest.get(plain + 1) == Some(&b':') {
                self.state = State::Value;
                return plain + 2;
            }
            return plain + 1;
        }
        if plain > 0 {
            self.flush_lone_surrogate();
            self.append(rest.get(..plain).unwrap_or(&[]));
        }
        // The byte that ended the run is handled in the same step.
        let Some(&stop) = rest.get(plain) else {
            return plain;
        };
        match stop {
            b'"' => {
                self.flush_lone_surrogate();
                match role {
                    StringRole::Key => self.key_ended(),
                    StringRole::Value => self.string_value_ended(),
                }
            }
            b'\\' => {
                self.state = State::InString {
                    role,
                    escape: Escape::Backslash,
                }
            }
            _ => self.state = State::Malformed,
        }
        plain + 1
    }

    /// The byte after a backslash: a one-character escape, or the `u` of a `\uXXXX`.
    fn backslash_byte(&mut self, b: u8, role: StringRole) {
        let simple = match b {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        let escape = if let Some(c) = simple {
            self.flush_lone_surrogate();
            self.append(&[c]);
            Escape::None
        } else if b == b'u' {
            Escape::Unicode { digits: 0, code: 0 }
        } else {
            self.state = State::Malformed;
            return;
        };
        self.state = State::InString { role, escape };
    }

    /// One hex digit of a `\uXXXX` escape, after `digits` of them made `code`.
    fn unicode_digit(&mut self, b: u8, role: StringRole, digits: u8, code: u16) {
        let Some(digit) = hex_value(b) else {
            self.state = State::Malformed;
            return;
        };
        let code = (code << 4) | digit;
        let escape = if digits + 1 == 4 {
            self.code_unit(code);
            Escape::None
        } else {
            Escape::Unicode {
                digits: digits + 1,
                code,
            }
        };
        self.state = State::InString { role, escape };
    }

    /// A `\uXXXX` UTF-16 code unit, combining surrogate pairs.
    pub(super) fn code_unit(&mut self, code: u16) {
        match code {
            0xD800..=0xDBFF => {
                self.flush_lone_surrogate();
                self.pending_high_surrogate = Some(code);
            }
            0xDC00..=0xDFFF => match self.pending_high_surrogate.take() {
                Some(high) => {
                    let scalar = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(code) - 0xDC00);
                    self.append_char(char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                None => self.append_char(char::REPLACEMENT_CHARACTER),
            },
            _ => {
                self.flush_lone_surrogate();
                self.append_char(char::from_u32(u32::from(code)).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
        }
    }

    /// A high surrogate left without its low half becomes U+FFFD (checked at every plain run).
    #[inline(always)]
    pub(super) fn flush_lone_surrogate(&mut self) {
        if self.pending_high_surrogate.take().is_some() {
            self.append_char(char::REPLACEMENT_CHARACTER);
        }
    }

    pub(super) fn append_char(&mut self, c: char) {
        let mut utf8 = [0u8; 4];
        self.append(c.encode_utf8(&mut utf8).as_bytes());
    }

    pub(super) fn string_value_ended(&mut self) {
        if self.capture_mask != 0 {
            if self.capture_overflow {
                self.store(self.capture_mask, JsonScalar::TooLong);
            } else {
                self.store_text(self.capture_mask, TextKind::String);
            }
        }
        self.capturing = false;
        self.value_ended();
    }

    /// Skips a container nested beyond [`MAX_TRACKED_DEPTH`] by following brackets and strings.
    pub(super) fn deep_skip(
        &mut self,
        rest: &[u8],
        kind: ContainerKind,
        depth: usize,
        in_string: bool,
        escaped: bool,
    ) -> usize {
        let (mut depth, mut in_string, mut escaped) = (depth, in_string, escaped);
        let mut index = 0;
        while let Some(&b) = rest.get(index) {
            if in_string {
                if escaped {
                    escaped = false;
                    index += 1;
                    continue;
                }
                // Message texts are most of what is skipped: their plain runs go at word speed, and
                // an escape is stepped over whole, straight into the next run.
                index += plain_run(rest.get(index..).unwrap_or_default());
                match rest.get(index) {
                    Some(b'\\') if index + 1 < rest.len() => index += 2,
                    Some(b'\\') => {
                        escaped = true;
                        index += 1;
                    }
                    Some(b'"') => {
                        in_string = false;
                        index += 1;
                    }
                    // A control byte: not valid JSON, but a skip only counts brackets.
                    Some(_) => index += 1,
                    None => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth = depth.saturating_add(1),
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        let closes = match kind {
                            ContainerKind::Object => b'}',
                            ContainerKind::Array => b']',
                        };
                        if b == closes {
                            self.value_ended();
                        } else {
                            self.state = State::Malformed;
                        }
                        return index + 1;
                    }
                }
                _ => {}
            }
            index += 1;
        }
        self.state = State::DeepSkip {
            kind,
            depth,
            in_string,
            escaped,
        };
        rest.len()
    }

    #[inline(always)]
    pub(super) fn start_capture(&mut self, mask: u64, copy: bool, limit: usize) {
        self.capture_mask = mask;
        self.capturing = copy;
        self.capture_limit = limit;
        self.capture_overflow = false;
        self.capture.clear();
        self.pending_high_surrogate = None;
    }

    #[inline(always)]
    pub(super) fn append(&mut self, bytes: &[u8]) {
        if self.capturing && !self.capture_overflow {
            self.append_captured(bytes);
        }
    }

    fn append_captured(&mut self, bytes: &[u8]) {
        let needed = self.capture.len().saturating_add(bytes.len());
        if needed > self.capture_limit {
            self.capture_overflow = true;
            self.capture.clear();
            return;
        }
        if needed > self.capture.capacity() {
            // Grow geometrically, but never past the limit.
            let target = needed
                .max(self.capture.capacity().saturating_mul(2))
                .min(self.capture_limit);
            self.capture.reserve_exact(target - self.capture.len());
        }
        self.capture.extend_from_slice(bytes);
    }

    /// Stores the captured text as a string or number. A path that held text in an earlier
    /// document keeps its buffer: a stream's events repeat the same fields, and this spares an
    /// allocation and a free for each of them.
    fn store_text(&mut self, mask: u64, kind: TextKind) {
        let single = mask.is_power_of_two() && mask & self.collect_mask == 0;
        let index = mask.trailing_zeros() as usize;
        // Valid UTF-8 is checked a word at a time; only invalid text takes the lossy decoder.
        let text = match std::str::from_utf8(&self.capture) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(&self.capture),
        };
        // Invalid UTF-8 becomes U+FFFD (3 bytes for each bad byte), so the limit is checked
        // again on the text actually stored.
        if text.len() > self.capture_limit {
            return self.store(mask, JsonScalar::TooLong);
        }
        // A value held from before keeps its buffer when the new one is of the same kind.
        match (self.values.get_mut(index), kind) {
            (Some(Some(JsonScalar::String(held))), TextKind::String)
            | (Some(Some(JsonScalar::Number(held))), TextKind::Number)
                if single =>
            {
                held.clear();
                held.push_str(&text);
            }
            _ => {
                let text = text.into_owned();
                let scalar = match kind {
                    TextKind::String => JsonScalar::String(text),
                    TextKind::Number => JsonScalar::Number(text),
                };
                return self.store(mask, scalar);
            }
        }
        self.found |= mask;
    }

    pub(super) fn store(&mut self, mask: u64, scalar: JsonScalar) {
        if mask == 0 {
            return;
        }
        self.found |= mask;
        if mask & self.collect_mask != 0 {
            for (index, list) in self.collected.iter_mut().enumerate() {
                if mask & self.collect_mask & bit(index) != 0 && list.len() < super::MAX_COLLECTED {
                    list.push(scalar.clone());
                }
            }
        }
        // Usually one path takes the value: it is moved into the last, cloned for the others.
        let last = 63 - mask.leading_zeros() as usize;
        for index in set_bits(mask & !bit(last)) {
            if let Some(slot) = self.values.get_mut(index) {
                *slot = Some(scalar.clone());
            }
        }
        if let Some(slot) = self.values.get_mut(last) {
            *slot = Some(scalar);
        }
    }
}
