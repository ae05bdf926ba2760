//! The request path as a model server routes it (RFC 3986 §5.2.4 dot segments, §2.1 percent
//! encoding), so that a spelling a server accepts cannot slip past recognition: every `%XX` is
//! decoded (`%2F` and `%3A` included, as ASGI servers and Go's gin do before routing), `.` and
//! `..` segments are resolved, and empty segments (repeated and trailing slashes) are dropped.
//! Servers disagree on `;` and `\`: servlet containers cut `;` parameters off and some servers
//! split at `\`, while ASGI servers and most routers keep both as ordinary characters, so a path
//! holding either is read both ways ([`CanonicalPath::parse`], [`CanonicalPath::parse_literal`])
//! and is an event when either reading is. Bytes that are not UTF-8 become U+FFFD, never a reason
//! to stop looking. Segment comparison is ASCII case-insensitive.

/// How a server splits a path into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// `/` and `\` separate segments; `;` starts parameters, cut off (servlet containers, Envoy's
    /// own normalisation of `\`).
    Separators,
    /// Only `/` separates; `;` and `\` are ordinary characters (ASGI and most routers).
    Literal,
}

/// A canonical path: decoded, normalised segments, and the raw query (not decoded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CanonicalPath {
    segments: Vec<String>,
    query: Vec<u8>,
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes every valid `%XX` escape once; invalid escapes stay as written.
pub fn percent_decode_bytes(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let hi = raw.get(i + 1).copied().and_then(hex_digit);
            let lo = raw.get(i + 2).copied().and_then(hex_digit);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// [`percent_decode_bytes`], borrowing the input when it holds no `%` (nothing to decode).
fn percent_decoded(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if raw.contains(&b'%') {
        percent_decode_bytes(raw).into()
    } else {
        raw.into()
    }
}

impl CanonicalPath {
    /// Canonicalises a request target (`:path`): the query (after the first raw `?`) and any
    /// fragment are split off first, then the path is decoded and normalised.
    pub fn parse(target: &[u8]) -> CanonicalPath {
        Self::parse_as(target, Reading::Separators)
    }

    /// Canonicalises a request target as servers that give `;` and `\` no meaning read it:
    /// segments split at `/` only, parameters kept. `None` when that reading is the same as
    /// [`CanonicalPath::parse`]'s (the path holds neither).
    pub fn parse_literal(target: &[u8]) -> Option<CanonicalPath> {
        let path = target.split(|&b| b == b'?' || b == b'#').next().unwrap_or_default();
        percent_decoded(path)
            .iter()
            .any(|&b| b == b';' || b == b'\\')
            .then(|| Self::parse_as(target, Reading::Literal))
    }

    fn parse_as(target: &[u8], reading: Reading) -> CanonicalPath {
        let path = target.split(|&b| b == b'?' || b == b'#').next().unwrap_or_default();
        let query = raw_query(target).to_vec();
        let decoded = percent_decoded(path);
        let text = String::from_utf8_lossy(&decoded);
        let mut segments: Vec<String> = Vec::new();
        // The separators are ASCII, so splitting the bytes keeps every piece on a character
        // boundary (and costs no character decoding).
        let separates = |b: u8| b == b'/' || (reading == Reading::Separators && b == b'\\');
        let mut start = 0;
        for (end, &b) in text
            .as_bytes()
            .iter()
            .enumerate()
            .chain(std::iter::once((text.len(), &b'/')))
        {
            if !separates(b) {
                continue;
            }
            let raw = text.get(start..end).unwrap_or("");
            start = end + 1;
            let segment = match reading {
                Reading::Separators => raw
                    .bytes()
                    .position(|b| b == b';')
                    .and_then(|at| raw.get(..at))
                    .unwrap_or(raw),
                Reading::Literal => raw,
            };
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                s => segments.push(s.to_string()),
            }
        }
        CanonicalPath { segments, query }
    }

    /// The canonical path's segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// `/a/b`, or `/` for the root.
    pub fn to_path_string(&self) -> String {
        if self.segments.is_empty() {
            return "/".to_string();
        }
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            out.push_str(s);
        }
        out
    }

    /// The decoded value of the first query parameter `name`, if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_values(&self.query, name).into_iter().next()
    }
}

/// Every decoded value of the query parameter `name` in a raw query (`+` is a space), in order.
pub fn query_values(query: &[u8], name: &str) -> Vec<String> {
    let plus_as_space = |b: &[u8]| -> Vec<u8> { b.iter().map(|&c| if c == b'+' { b' ' } else { c }).collect() };
    query
        .split(|&b| b == b'&')
        .filter_map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (pair.get(..at)?, pair.get(at + 1..)?),
                None => (pair, &[][..]),
            };
            let key = percent_decode_bytes(&plus_as_space(k));
            (key == name.as_bytes())
                .then(|| String::from_utf8_lossy(&percent_decode_bytes(&plus_as_space(v))).into_owned())
        })
        .collect()
}

/// The raw query of a request target: after the first `?`, before any `#`.
pub fn raw_query(target: &[u8]) -> &[u8] {
    let Some(at) = target.iter().position(|&b| b == b'?' || b == b'#') else {
        return &[];
    };
    match target.get(at..).and_then(<[u8]>::split_first) {
        Some((b'?', q)) => q.split(|&b| b == b'#').next().unwrap_or(&[]),
        _ => &[],
    }
}

/// ASCII case-insensitive match of segments against a pattern, where `*` matches any segment.
#[inline]
pub fn segments_match(segments: &[String], pattern: &[&str]) -> bool {
    segments.len() == pattern.len()
        && segments
            .iter()
            .zip(pattern)
            .all(|(s, p)| *p == "*" || s.eq_ignore_ascii_case(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(p: &str) -> String {
        CanonicalPath::parse(p.as_bytes()).to_path_string()
    }

    #[test]
    fn spellings_a_server_accepts_become_one_path() {
        for p in [
            "/v1/chat/completions",
            "/v1/chat/completions/",
            "//v1//chat///completions",
            "/v1/./chat/completions",
            "/v1/x/../chat/completions",
            "/v1/chat/%63ompletions",
            "/v1/chat%2Fcompletions",
            "/v1/chat%2fcompletions",
            "/v1;x=1/chat/completions;y=2",
            "/v1\\chat\\completions",
            "/v1/chat/completions?key=x",
            "/v1/chat/completions#frag",
            "/a/b/../../v1/chat/completions",
            "/../../v1/chat/completions",
            "/v1/chat/%2e/completions",
            "/v1/chat/%2e%2e/chat/completions",
        ] {
            assert_eq!(canon(p), "/v1/chat/completions", "{p}");
        }
    }

    #[test]
    fn the_query_is_split_off_before_decoding() {
        let p = CanonicalPath::parse(b"/realtime%3Fx?model=gpt-4o%2Drealtime&b=2");
        assert_eq!(p.to_path_string(), "/realtime?x");
        assert_eq!(p.query_param("model").as_deref(), Some("gpt-4o-realtime"));
        assert_eq!(p.query_param("b").as_deref(), Some("2"));
        assert_eq!(p.query_param("c"), None);
    }

    #[test]
    fn bytes_that_are_not_utf8_still_yield_segments() {
        let p = CanonicalPath::parse(b"/v1/chat/completions?x=\xff");
        assert_eq!(p.to_path_string(), "/v1/chat/completions");
        let p = CanonicalPath::parse(b"/v1beta/models/g\xff:generateContent");
        assert_eq!(p.segments().len(), 3);
        assert!(p.segments()[2].contains('\u{fffd}'));
        let p = CanonicalPath::parse(b"/v1/chat/%ff%fe/../completions");
        assert_eq!(p.to_path_string(), "/v1/chat/completions");
    }

    #[test]
    fn the_literal_reading_keeps_parameters_and_backslashes() {
        let literal = |p: &[u8]| CanonicalPath::parse_literal(p).map(|c| c.to_path_string());
        assert_eq!(literal(b"/v1/chat/completions"), None, "nothing to read differently");
        assert_eq!(literal(b"/a;b/c%5Cd/..;x/e?q=;").as_deref(), Some("/a;b/c\\d/..;x/e"));
        assert_eq!(literal(b"/a/b/../c;x").as_deref(), Some("/a/c;x"));
    }

    #[test]
    fn every_value_of_a_query_parameter() {
        assert_eq!(query_values(b"key=a&x=1&key=b+c&key", "key"), vec!["a", "b c", ""]);
        assert_eq!(raw_query(b"/p?key=a#f"), b"key=a");
        assert_eq!(raw_query(b"/p#f?key=a"), b"");
        assert_eq!(raw_query(b"/p"), b"");
    }

    #[test]
    fn invalid_escapes_stay_literal() {
        assert_eq!(percent_decode_bytes(b"a%zzb%"), b"a%zzb%");
        assert_eq!(percent_decode_bytes(b"%E2%9C%93"), "✓".as_bytes());
        assert_eq!(percent_decode_bytes(b"%252F"), b"%2F", "decoded once, as servers do");
    }

    #[test]
    fn patterns_ignore_case_and_take_wildcards() {
        let p = CanonicalPath::parse(b"/V1/Threads/t_1/RUNS");
        assert!(segments_match(p.segments(), &["v1", "threads", "*", "runs"]));
        assert!(!segments_match(p.segments(), &["v1", "threads", "runs"]));
        assert_eq!(CanonicalPath::parse(b"").to_path_string(), "/");
    }
}
