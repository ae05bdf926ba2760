//! Small, exact edits of a complete JSON object (RFC 8259) without parsing it into values: find a
//! top-level member's value by its byte span, and give a request `stream_options.include_usage:
//! true` whatever `stream_options` held before. Everything else in the body stays byte for byte.

/// The byte span `[start, end)` of the value of the first top-level member named `key` (an exact,
/// escape-free key) of the object `json`. `None` if `json` is not an object or has no such member.
pub fn member_span(json: &[u8], key: &str) -> Option<(usize, usize)> {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(json, i + 1);
    if json.get(i) == Some(&b'}') {
        return None;
    }
    loop {
        let key_start = i;
        let key_end = string_end(json, i)?;
        let name = json.get(key_start + 1..key_end - 1)?;
        i = skip_ws(json, key_end);
        if json.get(i) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(json, i + 1);
        let value_end = value_end(json, value_start)?;
        if name == key.as_bytes() {
            return Some((value_start, value_end));
        }
        i = skip_ws(json, value_end);
        match json.get(i) {
            Some(b',') => i = skip_ws(json, i + 1),
            _ => return None,
        }
    }
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while matches!(json.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index just past the string starting at `i` (which must be `"`).
fn string_end(json: &[u8], i: usize) -> Option<usize> {
    if json.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match json.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The index just past the value starting at `i`.
fn value_end(json: &[u8], i: usize) -> Option<usize> {
    match json.get(i)? {
        b'"' => string_end(json, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match json.get(j)? {
                    b'"' => {
                        j = string_end(json, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while json
                .get(j)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The request body with `stream_options.include_usage` set to `true`, keeping the other members
/// of `stream_options` and everything else as it was: an `include_usage` of another value is
/// replaced, a missing one is added, a `stream_options` that is not an object becomes
/// `{"include_usage":true}`, and a missing `stream_options` is appended to the object. `None` when
/// nothing needs to change, or when the body is not a JSON object.
pub fn with_include_usage(json: &[u8]) -> Option<Vec<u8>> {
    const MEMBER: &[u8] = b"\"include_usage\":true";
    let splice = |at: (usize, usize), with: &[u8]| -> Vec<u8> {
        let mut out = Vec::with_capacity(json.len() + with.len());
        out.extend_from_slice(json.get(..at.0).unwrap_or_default());
        out.extend_from_slice(with);
        out.extend_from_slice(json.get(at.1..).unwrap_or_default());
        out
    };
    let Some((start, end)) = member_span(json, "stream_options") else {
        // No stream_options: add it before the object's closing brace.
        let close = json.iter().rposition(|&b| b == b'}')?;
        let empty = json.get(..close)?.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let mut member = Vec::new();
        if !empty {
            member.push(b',');
        }
        member.extend_from_slice(b"\"stream_options\":{");
        member.extend_from_slice(MEMBER);
        member.push(b'}');
        return Some(splice((close, close), &member));
    };
    let value = json.get(start..end)?;
    if value.first() != Some(&b'{') {
        let mut object = b"{".to_vec();
        object.extend_from_slice(MEMBER);
        object.push(b'}');
        return Some(splice((start, end), &object));
    }
    match member_span(value, "include_usage") {
        Some((s, e)) if value.get(s..e) == Some(b"true") => None,
        Some((s, e)) => Some(splice((start + s, start + e), b"true")),
        None => {
            let inner = skip_ws(value, 1);
            let empty = value.get(inner) == Some(&b'}');
            let mut member = MEMBER.to_vec();
            if !empty {
                member.push(b',');
            }
            Some(splice((start + 1, start + 1), &member))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn edited(body: &str) -> Value {
        let out = with_include_usage(body.as_bytes()).unwrap_or_else(|| body.as_bytes().to_vec());
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn include_usage_is_set_whatever_stream_options_held() {
        let cases = [
            (r#"{"model":"m","stream":true}"#, json!({"include_usage": true})),
            (r#"{ }"#, json!({"include_usage": true})),
            (r#"{"stream_options":{},"stream":true}"#, json!({"include_usage": true})),
            (
                r#"{"stream_options":{ },"stream":true}"#,
                json!({"include_usage": true}),
            ),
            (
                r#"{"stream_options":{"include_usage":false,"x":1},"stream":true}"#,
                json!({"include_usage": true, "x": 1}),
            ),
            (
                r#"{"stream":true,"stream_options":{"include_obfuscation":false}}"#,
                json!({"include_usage": true, "include_obfuscation": false}),
            ),
            (
                r#"{"stream_options":null,"stream":true}"#,
                json!({"include_usage": true}),
            ),
            (
                r#"{"stream_options":"x","stream":true}"#,
                json!({"include_usage": true}),
            ),
            (
                r#"{"stream_options":{"include_usage":null}}"#,
                json!({"include_usage": true}),
            ),
            (
                r#"{"messages":[{"content":"stream_options }"}],"stream_options":{"a":"}"}}"#,
                json!({"include_usage": true, "a": "}"}),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(edited(body)["stream_options"], want, "{body}");
        }
        assert_eq!(
            with_include_usage(br#"{"stream_options":{"include_usage":true}}"#),
            None
        );
    }

    #[test]
    fn the_rest_of_the_body_is_untouched() {
        let body = br#"{"model":"m",  "messages":[{"role":"user","content":"a\"b"}], "stream":true}"#;
        let out = with_include_usage(body).unwrap();
        assert!(out.starts_with(&body[..body.len() - 1]));
        let body = br#"{"stream_options":{"include_usage":false},"model":"m"}"#;
        assert_eq!(
            with_include_usage(body).unwrap(),
            br#"{"stream_options":{"include_usage":true},"model":"m"}"#.to_vec()
        );
    }

    #[test]
    fn not_an_object_is_left_alone() {
        for body in [&b"[1,2]"[..], b"", b"\"x\"", b"{\"a\":"] {
            let _ = with_include_usage(body);
        }
        assert_eq!(with_include_usage(b"[1,2]"), None);
        assert_eq!(member_span(br#"{"a":1,"b":[2,{"c":3}],"d":"x"}"#, "b"), Some((11, 22)));
        assert_eq!(member_span(br#"{"a":1}"#, "z"), None);
    }
}
