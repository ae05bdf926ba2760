//! Distinguished-name attribute lookup, following RFC 4514 (string form of LDAP DNs,
//! which obsoletes RFC 2253) as produced by Envoy's `subjectPeerCertificate()`
//! (OpenSSL `XN_FLAG_RFC2253`, e.g. `CN=billing-bot,OU=Team A,O=Example Corp,C=US`).
//!
//! Supported: `,` and `+` separators (plus the RFC 2253 §4 legacy `;`), backslash
//! escapes of special characters and `\XX` hex pairs (decoded as UTF-8), RFC 2253
//! quoted values, `#` hex-string values holding a DER string type, descriptor or
//! numeric-OID attribute types, and optional spaces around separators. Any syntax
//! error anywhere in the DN makes the whole lookup return `None`. The old slash form
//! (`/C=US/CN=x`) is not a DN string and is rejected.

/// Well-known attribute descriptors and their OIDs, so `CN` also matches `2.5.4.3`.
const ALIASES: &[(&str, &str)] = &[
    ("cn", "2.5.4.3"),
    ("sn", "2.5.4.4"),
    ("serialnumber", "2.5.4.5"),
    ("c", "2.5.4.6"),
    ("l", "2.5.4.7"),
    ("st", "2.5.4.8"),
    ("street", "2.5.4.9"),
    ("o", "2.5.4.10"),
    ("ou", "2.5.4.11"),
    ("title", "2.5.4.12"),
    ("uid", "0.9.2342.19200300.100.1.1"),
    ("dc", "0.9.2342.19200300.100.1.25"),
    ("emailaddress", "1.2.840.113549.1.9.1"),
];

fn canonical_type(t: &str) -> &str {
    ALIASES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(t))
        .map_or(t, |(_, oid)| oid)
}

fn types_match(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || canonical_type(a).eq_ignore_ascii_case(canonical_type(b))
}

/// `descr = ALPHA *(ALPHA / DIGIT / "-")` or `numericoid = number 1*("." number)`.
fn valid_type(t: &str) -> bool {
    let b = t.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() => b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'),
        Some(c) if c.is_ascii_digit() => {
            let mut parts = 0usize;
            for part in t.split('.') {
                let pb = part.as_bytes();
                if pb.is_empty() || !pb.iter().all(u8::is_ascii_digit) || (pb.len() > 1 && pb.first() == Some(&b'0')) {
                    return false;
                }
                parts += 1;
            }
            parts >= 2
        }
        _ => false,
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// Decodes the escape starting at `b[i] == '\\'`; pushes the byte, returns the new index.
fn unescape(b: &[u8], i: usize, out: &mut Vec<u8>) -> Option<usize> {
    let c = *b.get(i + 1)?;
    if let Some(hi) = hex_val(c) {
        let lo = hex_val(*b.get(i + 2)?)?;
        out.push(hi << 4 | lo);
        return Some(i + 3);
    }
    if matches!(c, b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' | b' ' | b'#' | b'=') {
        out.push(c);
        return Some(i + 2);
    }
    None
}

/// Extracts the text of a DER-encoded string value (`#hexstring` form).
fn der_string(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    // UTF8String, NumericString, PrintableString, T61String, IA5String, VisibleString.
    if !matches!(tag, 0x0c | 0x12 | 0x13 | 0x14 | 0x16 | 0x1a) {
        return None;
    }
    let (&l0, rest) = rest.split_first()?;
    let (len, content) = match l0 {
        0..=0x7f => (usize::from(l0), rest),
        0x81 => {
            let (&l1, rest) = rest.split_first()?;
            (usize::from(l1), rest)
        }
        0x82 => {
            let (&l1, rest) = rest.split_first()?;
            let (&l2, rest) = rest.split_first()?;
            (usize::from(l1) << 8 | usize::from(l2), rest)
        }
        _ => return None,
    };
    (content.len() == len).then_some(content)
}

/// Parses one attribute value starting at `i` into `out`; returns the index after it
/// (and after any trailing spaces).
fn parse_value(b: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
    match b.get(i) {
        Some(b'#') => {
            i += 1;
            let start = i;
            while let Some(&c) = b.get(i) {
                if hex_val(c).is_none() {
                    break;
                }
                i += 1;
            }
            let hex = b.get(start..i)?;
            if hex.is_empty() || hex.len() % 2 != 0 {
                return None;
            }
            let mut der = Vec::with_capacity(hex.len() / 2);
            for pair in hex.chunks_exact(2) {
                if let [h, l] = pair {
                    der.push(hex_val(*h)? << 4 | hex_val(*l)?);
                }
            }
            // A non-string DER type is syntactically fine but has no text: record it as
            // undecodable by leaving a marker the caller turns into `None` on a match.
            match der_string(&der) {
                Some(text) => out.extend_from_slice(text),
                None => out.push(0),
            }
            Some(skip_spaces(b, i))
        }
        Some(b'"') => {
            i += 1;
            loop {
                match *b.get(i)? {
                    b'"' => return Some(skip_spaces(b, i + 1)),
                    b'\\' => i = unescape(b, i, out)?,
                    0 => return None,
                    c => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
        }
        _ => {
            // Length of `out` up to the last byte that is not an unescaped space, so
            // trailing unescaped spaces are dropped while escaped ones are kept.
            let mut keep = 0usize;
            while let Some(&c) = b.get(i) {
                match c {
                    b',' | b'+' | b';' => break,
                    b'\\' => {
                        i = unescape(b, i, out)?;
                        keep = out.len();
                    }
                    b'"' | b'<' | b'>' | 0 => return None,
                    _ => {
                        out.push(c);
                        i += 1;
                        if c != b' ' {
                            keep = out.len();
                        }
                    }
                }
            }
            out.truncate(keep);
            Some(i)
        }
    }
}

/// Returns the value of the first `attr` attribute (type matched case-insensitively,
/// descriptor or numeric OID) in the distinguished name `dn`, unescaped.
///
/// `None` when the attribute is absent, its value is empty or not valid UTF-8 after
/// unescaping (or is a `#` hex value that is not a DER string), or `dn` is malformed.
#[must_use]
pub fn subject_attr(dn: &str, attr: &str) -> Option<String> {
    let b = dn.as_bytes();
    let mut i = skip_spaces(b, 0);
    if i >= b.len() {
        return None;
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut found: Option<Vec<u8>> = None;
    loop {
        i = skip_spaces(b, i);
        let start = i;
        while let Some(&c) = b.get(i) {
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' {
                i += 1;
            } else {
                break;
            }
        }
        let ty = dn.get(start..i)?;
        if !valid_type(ty) {
            return None;
        }
        i = skip_spaces(b, i);
        if b.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_spaces(b, i + 1);
        buf.clear();
        i = parse_value(b, i, &mut buf)?;
        if found.is_none() && types_match(ty, attr) {
            found = Some(buf.clone());
        }
        match b.get(i) {
            None => break,
            Some(b',' | b'+' | b';') => {
                i += 1;
                if skip_spaces(b, i) >= b.len() {
                    return None; // trailing separator
                }
            }
            Some(_) => return None,
        }
    }
    let value = found?;
    if value.is_empty() || value.contains(&0) {
        return None;
    }
    String::from_utf8(value).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const DN: &str = "CN=billing-bot,OU=Team A,O=Example Corp,C=US";

    #[test]
    fn envoy_form() {
        assert_eq!(subject_attr(DN, "CN").as_deref(), Some("billing-bot"));
        assert_eq!(subject_attr(DN, "ou").as_deref(), Some("Team A"));
        assert_eq!(subject_attr(DN, "O").as_deref(), Some("Example Corp"));
        assert_eq!(subject_attr(DN, "c").as_deref(), Some("US"));
        assert_eq!(subject_attr(DN, "L"), None);
        assert_eq!(subject_attr(DN, ""), None);
    }

    #[test]
    fn oid_aliases() {
        assert_eq!(subject_attr(DN, "2.5.4.3").as_deref(), Some("billing-bot"));
        let dn = "2.5.4.3=bot,0.9.2342.19200300.100.1.25=example";
        assert_eq!(subject_attr(dn, "cn").as_deref(), Some("bot"));
        assert_eq!(subject_attr(dn, "DC").as_deref(), Some("example"));
        assert_eq!(
            subject_attr("emailAddress=a@b.c,CN=x", "1.2.840.113549.1.9.1").as_deref(),
            Some("a@b.c")
        );
    }

    #[test]
    fn escapes() {
        let dn = r#"CN=Smith\, John\+\"Q\"\\x,O=a\;b\<c\>\=\#"#;
        assert_eq!(subject_attr(dn, "CN").as_deref(), Some(r#"Smith, John+"Q"\x"#));
        assert_eq!(subject_attr(dn, "O").as_deref(), Some("a;b<c>=#"));
        assert_eq!(subject_attr(r"CN=a\2Cb\2cc", "CN").as_deref(), Some("a,b,c"));
        // UTF-8 as hex escapes (what OpenSSL emits with ESC_MSB) and raw.
        assert_eq!(subject_attr(r"CN=J\C3\BCrgen", "CN").as_deref(), Some("J\u{fc}rgen"));
        assert_eq!(subject_attr("CN=J\u{fc}rgen", "CN").as_deref(), Some("J\u{fc}rgen"));
        // Leading '#' and leading/trailing spaces escaped.
        assert_eq!(subject_attr(r"CN=\#x\ ", "CN").as_deref(), Some("#x "));
        assert_eq!(subject_attr(r"CN=\ x", "CN").as_deref(), Some(" x"));
    }

    #[test]
    fn quoted_values() {
        let dn = r#"CN="Smith, John; \"Q\" + co",O=x"#;
        assert_eq!(subject_attr(dn, "CN").as_deref(), Some(r#"Smith, John; "Q" + co"#));
        assert_eq!(subject_attr(dn, "O").as_deref(), Some("x"));
        assert_eq!(subject_attr(r#"CN="unterminated"#, "CN"), None);
        assert_eq!(subject_attr(r#"CN="a"b,O=x"#, "CN"), None);
    }

    #[test]
    fn multi_valued_rdn() {
        let dn = "CN=bot+UID=42,OU=Team A+OU=Team B,C=US";
        assert_eq!(subject_attr(dn, "CN").as_deref(), Some("bot"));
        assert_eq!(subject_attr(dn, "uid").as_deref(), Some("42"));
        assert_eq!(subject_attr(dn, "OU").as_deref(), Some("Team A"));
    }

    #[test]
    fn first_occurrence() {
        assert_eq!(subject_attr("CN=a,CN=b", "CN").as_deref(), Some("a"));
    }

    #[test]
    fn spaces_and_legacy_separator() {
        let dn = " CN = bot , OU=Team A ; O=Ex  ";
        assert_eq!(subject_attr(dn, "CN").as_deref(), Some("bot"));
        assert_eq!(subject_attr(dn, "OU").as_deref(), Some("Team A"));
        assert_eq!(subject_attr(dn, "O").as_deref(), Some("Ex"));
    }

    #[test]
    fn hexstring_values() {
        // UTF8String "bot"
        assert_eq!(subject_attr("CN=#0C03626F74", "CN").as_deref(), Some("bot"));
        // PrintableString "US"
        assert_eq!(subject_attr("C=#13025553,CN=x", "C").as_deref(), Some("US"));
        // INTEGER: syntactically fine, no text.
        assert_eq!(subject_attr("CN=#020101,O=x", "CN"), None);
        assert_eq!(subject_attr("CN=#020101,O=x", "O").as_deref(), Some("x"));
        // Bad lengths / odd hex.
        assert_eq!(subject_attr("CN=#0C04626F74", "CN"), None);
        assert_eq!(subject_attr("CN=#0C0", "CN"), None);
        assert_eq!(subject_attr("CN=#", "CN"), None);
        assert_eq!(subject_attr("CN=#zz", "CN"), None);
    }

    #[test]
    fn empty_value_is_none() {
        assert_eq!(subject_attr("CN=,O=x", "CN"), None);
        assert_eq!(subject_attr("CN=,O=x", "O").as_deref(), Some("x"));
        assert_eq!(subject_attr(r#"CN="""#, "CN"), None);
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            "   ",
            "CN",
            "=x",
            "CN=x,",
            "CN=x,,O=y",
            ",CN=x",
            "CN=a\"b",
            "CN=a<b",
            "CN=a\\",
            "CN=a\\q",
            "CN=a\\2",
            "CN=a\\2g",
            "1CN=x",
            "01.2=x",
            "1=x",
            "C N=x",
            "CN=x\0",
            "/C=US/CN=x",
            "CN=a\u{0}b",
        ] {
            assert_eq!(subject_attr(bad, "CN"), None, "{bad:?}");
        }
        // Malformed anywhere poisons the whole DN.
        assert_eq!(subject_attr("CN=ok,O=bad\\", "CN"), None);
    }

    #[test]
    fn invalid_utf8_from_hex_escape() {
        assert_eq!(subject_attr(r"CN=\FF\FE", "CN"), None);
        assert_eq!(subject_attr(r"CN=\C3", "CN"), None);
        assert_eq!(subject_attr(r"CN=\00x", "CN"), None);
        // Only the matched value is decoded as text.
        assert_eq!(subject_attr(r"O=\FF,CN=x", "CN").as_deref(), Some("x"));
    }

    #[test]
    fn control_and_huge() {
        assert_eq!(subject_attr("CN=a\tb", "CN").as_deref(), Some("a\tb"));
        let big = format!("CN={}", "x".repeat(100_000));
        assert_eq!(subject_attr(&big, "CN").map(|s| s.len()), Some(100_000));
        let many = "O=x,".repeat(20_000) + "CN=last";
        assert_eq!(subject_attr(&many, "CN").as_deref(), Some("last"));
    }
}
