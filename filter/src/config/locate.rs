//! The field path at a position of a JSON text (`correlation.headr`, `dimensions.user[1]`), so
//! that a serde error, which knows only a line and a column, names the field it is about.

/// One step into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A container being walked, and where in it the walk is.
#[derive(Debug)]
enum Frame {
    /// An object; the key of the member being read, once known.
    Object(Option<String>),
    /// An array and the index of the element being read.
    Array(usize),
}

/// The byte offset of a 1-based (line, column) position, as serde_json reports it.
pub(super) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return (offset + column).min(text.len());
        }
        offset += l.len();
    }
    text.len()
}

/// The dotted path of the member or element being read at byte `at` of `text`
/// (`a.b[2].c`), or an empty string at the top level.
pub(super) fn path_at(text: &str, at: usize) -> String {
    let bytes = text.as_bytes();
    let mut frames: Vec<Frame> = Vec::new();
    let mut i = 0;
    // After a key's string, the next string is a value, not another key.
    let mut expecting_key = false;
    while i < at.min(bytes.len()) {
        match bytes.get(i).copied() {
            Some(b'{') => {
                frames.push(Frame::Object(None));
                expecting_key = true;
            }
            Some(b'[') => {
                frames.push(Frame::Array(0));
                expecting_key = false;
            }
            Some(b'}' | b']') => {
                frames.pop();
                expecting_key = false;
            }
            Some(b',') => match frames.last_mut() {
                Some(Frame::Array(n)) => *n += 1,
                Some(Frame::Object(key)) => {
                    *key = None;
                    expecting_key = true;
                }
                None => {}
            },
            Some(b':') => expecting_key = false,
            Some(b'"') => {
                let start = i + 1;
                let mut j = start;
                while let Some(&c) = bytes.get(j) {
                    match c {
                        b'\\' => j += 2,
                        b'"' => break,
                        _ => j += 1,
                    }
                }
                if expecting_key {
                    if let Some(Frame::Object(key)) = frames.last_mut() {
                        let raw = text.get(start..j.min(text.len())).unwrap_or("");
                        *key = Some(
                            serde_json::from_str::<String>(&format!("\"{raw}\"")).unwrap_or_else(|_| raw.to_string()),
                        );
                    }
                    expecting_key = false;
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    let steps: Vec<Step> = frames
        .into_iter()
        .filter_map(|f| match f {
            Frame::Object(Some(k)) => Some(Step::Key(k)),
            Frame::Object(None) => None,
            Frame::Array(n) => Some(Step::Index(n)),
        })
        .collect();
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&k);
            }
            Step::Index(n) => out.push_str(&format!("[{n}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, marker: &str) -> String {
        path_at(text, text.find(marker).unwrap() + marker.len())
    }

    #[test]
    fn paths_of_members_and_elements() {
        let t = r#"{"correlation":{"headr":"x"},"dimensions":{"user":["a","b",3]},"p":{"m":{"in":1}}}"#;
        assert_eq!(at(t, r#""headr""#), "correlation.headr");
        assert_eq!(at(t, r#","b","#), "dimensions.user[2]");
        assert_eq!(at(t, r#""in":1"#), "p.m.in");
        assert_eq!(path_at(t, 0), "");
        assert_eq!(at(r#"{"a\"b":{"c":1}}"#, r#""c""#), "a\"b.c");
    }

    #[test]
    fn line_and_column_to_offset() {
        let t = "{\n  \"a\": 1,\n  \"b\"\n}";
        assert_eq!(offset_of(t, 3, 5), t.find("\"b\"").unwrap() + 3);
        assert_eq!(offset_of(t, 99, 1), t.len());
    }
}
