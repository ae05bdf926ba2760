//! The README's checked examples: fenced code blocks that follow an HTML comment marker such as
//! `<!-- readme-example: attributed -->`, which the tests replay and compare.

/// One marked block: the marker's kind and argument, and the block's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    pub kind: String,
    pub arg: String,
    pub text: String,
}

/// Every block marked `<!-- KIND: ARG -->` whose kind starts with `prefix`. A marker that is not
/// followed by a fenced block is an error.
pub fn marked_blocks(readme: &str, prefix: &str) -> Result<Vec<Marked>, String> {
    let mut out = Vec::new();
    let mut lines = readme.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(marker) = line.trim().strip_prefix("<!-- ").and_then(|m| m.strip_suffix(" -->")) else {
            continue;
        };
        let Some((kind, arg)) = marker.split_once(": ") else {
            continue;
        };
        if !kind.starts_with(prefix) {
            continue;
        }
        let fence = lines.next().map(|(_, l)| l).unwrap_or_default();
        if !fence.starts_with("```") {
            return Err(format!(
                "line {}: marker {marker} is not followed by a code block",
                n + 1
            ));
        }
        let mut block = Vec::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            block.push(l);
        }
        out.push(Marked {
            kind: kind.to_string(),
            arg: arg.to_string(),
            text: block.join("\n"),
        });
    }
    Ok(out)
}

/// Correlation IDs are random UUIDs: every UUID reads as the same placeholder on both sides.
pub fn mask_uuids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let is_uuid = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(j, &b)| match j {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    while i < bytes.len() {
        if bytes.get(i..i + 36).is_some_and(is_uuid) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            match text.get(i..).and_then(|rest| rest.chars().next()) {
                Some(c) => {
                    out.push(c);
                    i += c.len_utf8();
                }
                None => i += 1,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_markers() {
        let text = "<!-- demo: a -->\n```console\n$ x\ny\n```\n<!-- other: b -->\n```\nz\n```\n";
        assert_eq!(
            marked_blocks(text, "demo"),
            Ok(vec![Marked {
                kind: "demo".into(),
                arg: "a".into(),
                text: "$ x\ny".into()
            }])
        );
        assert!(marked_blocks("<!-- demo: a -->\ntext\n", "demo").is_err());
    }
}
