//! Parser for Envoy's `x-forwarded-client-cert` (XFCC) header, following the format in
//! Envoy's HTTP header manipulation docs (`config_http_conn_man_headers_x-forwarded-client-cert`).
//!
//! The header is a `,`-separated list of elements, one per proxy hop, oldest first.
//! Each element is a `;`-separated list of `Key=Value` pairs (keys `By`, `Hash`, `Cert`,
//! `Chain`, `Subject`, `URI`, `DNS`, matched case-insensitively; unknown keys are
//! ignored). A value is either bare (no `"`, `,` or `;`) or double-quoted; inside quotes
//! `,` and `;` are literal and a backslash escapes the next character.
//!
//! Quoted values are returned *verbatim* between the quotes, backslashes included:
//! Envoy quotes `Subject` without escaping it, and the OpenSSL RFC 2253 DN inside
//! already escapes `"` and `\` as `\"` and `\\`. Keeping the escapes lets
//! [`super::subject::subject_attr`] decode the DN exactly once.
//!
//! Empty `URI=`/`DNS=` values (Envoy writes `URI=` when the certificate has none) are
//! dropped. Duplicate `By`, `Hash` or `Subject` in one element, control characters,
//! unterminated quotes and empty pairs or elements are errors. Input over 16 KiB is
//! rejected.

use core::fmt;

/// Largest header accepted, in bytes.
pub const MAX_XFCC_LEN: usize = 16 * 1024;

/// One XFCC element: what one proxy hop saw of its direct peer's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XfccElement {
    /// URI SAN of the proxy's own certificate (`By`).
    pub by: Option<String>,
    /// SHA-256 of the peer certificate, hex (`Hash`).
    pub hash: Option<String>,
    /// Peer certificate subject DN (`Subject`), with its RFC 2253 escapes intact.
    pub subject: Option<String>,
    /// Peer URI SANs (`URI`), in header order, empty values dropped.
    pub uris: Vec<String>,
    /// Peer DNS SANs (`DNS`), in header order, empty values dropped.
    pub dns: Vec<String>,
}

/// Why an XFCC header could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XfccError {
    /// Longer than [`MAX_XFCC_LEN`].
    TooLong,
    /// A quoted value is not closed.
    UnterminatedQuote,
    /// `By`, `Hash` or `Subject` appears twice in one element.
    DuplicateKey,
    /// Any other syntax error (empty pair or element, missing `=`, stray `"`, control
    /// character, junk after a closing quote).
    Syntax,
}

impl fmt::Display for XfccError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLong => "x-forwarded-client-cert header too long",
            Self::UnterminatedQuote => "x-forwarded-client-cert has an unterminated quote",
            Self::DuplicateKey => "x-forwarded-client-cert element repeats a single-valued key",
            Self::Syntax => "malformed x-forwarded-client-cert header",
        })
    }
}

impl std::error::Error for XfccError {}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_ows(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_ows) {
        i += 1;
    }
    i
}

fn set_once(slot: &mut Option<String>, value: &str) -> Result<(), XfccError> {
    if slot.is_some() {
        return Err(XfccError::DuplicateKey);
    }
    *slot = Some(value.to_owned());
    Ok(())
}

/// Parses every element of an XFCC header, in header order (oldest hop first).
///
/// An empty or all-whitespace header yields no elements.
///
/// # Errors
/// [`XfccError`] when the header is too long or not well-formed; see the module docs.
pub fn parse_xfcc(header: &str) -> Result<Vec<XfccElement>, XfccError> {
    if header.len() > MAX_XFCC_LEN {
        return Err(XfccError::TooLong);
    }
    let b = header.as_bytes();
    if b.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
        return Err(XfccError::Syntax);
    }
    let mut out = Vec::new();
    let mut i = skip_ows(b, 0);
    if i >= b.len() {
        return Ok(out);
    }
    let mut el = XfccElement::default();
    loop {
        // Key.
        i = skip_ows(b, i);
        let key_start = i;
        while b
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        {
            i += 1;
        }
        let key = header.get(key_start..i).ok_or(XfccError::Syntax)?;
        if key.is_empty() || b.get(i) != Some(&b'=') {
            return Err(XfccError::Syntax);
        }
        i += 1;
        // Value.
        let value = if b.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            loop {
                match b.get(j) {
                    None => return Err(XfccError::UnterminatedQuote),
                    Some(b'"') => break,
                    Some(b'\\') => j += 2,
                    Some(_) => j += 1,
                }
            }
            let v = header.get(start..j).ok_or(XfccError::Syntax)?;
            i = j + 1;
            v
        } else {
            let start = i;
            while let Some(&c) = b.get(i) {
                match c {
                    b';' | b',' => break,
                    b'"' => return Err(XfccError::Syntax),
                    _ => i += 1,
                }
            }
            header.get(start..i).ok_or(XfccError::Syntax)?.trim_matches(is_ows_char)
        };
        if key.eq_ignore_ascii_case("By") {
            set_once(&mut el.by, value)?;
        } else if key.eq_ignore_ascii_case("Hash") {
            set_once(&mut el.hash, value)?;
        } else if key.eq_ignore_ascii_case("Subject") {
            set_once(&mut el.subject, value)?;
        } else if key.eq_ignore_ascii_case("URI") && !value.is_empty() {
            el.uris.push(value.to_owned());
        } else if key.eq_ignore_ascii_case("DNS") && !value.is_empty() {
            el.dns.push(value.to_owned());
        }
        // Cert, Chain and unknown keys: syntax-checked, value ignored.

        i = skip_ows(b, i);
        match b.get(i) {
            None => {
                out.push(el);
                return Ok(out);
            }
            Some(b';') => i += 1,
            Some(b',') => {
                out.push(core::mem::take(&mut el));
                i += 1;
            }
            Some(_) => return Err(XfccError::Syntax),
        }
    }
}

fn is_ows_char(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The last (most recent hop's) element of an XFCC header, or `None` when the header is
/// empty or malformed. With `forward_client_cert_details: SANITIZE_SET` Envoy writes
/// exactly one element describing its direct peer; taking the last one means a client
/// that forged extra elements in front of it cannot displace it.
#[must_use]
pub fn last_element(header: &str) -> Option<XfccElement> {
    parse_xfcc(header).ok()?.pop()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::identity::spiffe::parse_spiffe_id;
    use crate::identity::subject::subject_attr;

    const EXAMPLE: &str = "By=spiffe://example.org/ns/infra/sa/envoy-gw;\
Hash=714a2b6d0b3c8f0b0f1e9b4f8e2a6c3d5e7f9a1b2c4d6e8f0a1b3c5d7e9f433a;\
Subject=\"CN=billing-bot,OU=Team A,O=Example Corp,C=US\";\
URI=spiffe://example.org/ns/team-a/sa/billing-bot;URI=https://example.org/second-uri;\
DNS=billing-bot.team-a.svc;DNS=alt.example.org";

    #[test]
    fn example_header() {
        let els = parse_xfcc(EXAMPLE).unwrap();
        assert_eq!(els.len(), 1);
        let e = &els[0];
        assert_eq!(e.by.as_deref(), Some("spiffe://example.org/ns/infra/sa/envoy-gw"));
        assert!(e.hash.as_deref().unwrap().ends_with("433a"));
        assert_eq!(
            e.subject.as_deref(),
            Some("CN=billing-bot,OU=Team A,O=Example Corp,C=US")
        );
        assert_eq!(
            e.uris,
            [
                "spiffe://example.org/ns/team-a/sa/billing-bot",
                "https://example.org/second-uri"
            ]
        );
        assert_eq!(e.dns, ["billing-bot.team-a.svc", "alt.example.org"]);
        let id = parse_spiffe_id(&e.uris[0]).unwrap();
        assert_eq!(id.service_account(), Some("billing-bot"));
        assert_eq!(
            subject_attr(e.subject.as_deref().unwrap(), "CN").as_deref(),
            Some("billing-bot")
        );
        assert_eq!(last_element(EXAMPLE).as_ref(), Some(e));
    }

    #[test]
    fn quoted_subject_with_separators_and_escapes() {
        let h = r#"Hash=ab;Subject="CN=a\,b\;c,O=x\"y\\";URI=spiffe://td/w"#;
        let e = last_element(h).unwrap();
        assert_eq!(e.subject.as_deref(), Some(r#"CN=a\,b\;c,O=x\"y\\"#));
        assert_eq!(
            subject_attr(e.subject.as_deref().unwrap(), "O").as_deref(),
            Some(r#"x"y\"#)
        );
        assert_eq!(
            subject_attr(e.subject.as_deref().unwrap(), "CN").as_deref(),
            Some("a,b;c")
        );
        assert_eq!(e.uris, ["spiffe://td/w"]);
        // Unescaped ';' and ',' inside quotes are part of the value.
        let e = last_element(r#"Subject="a;b,c=d";DNS=x"#).unwrap();
        assert_eq!(e.subject.as_deref(), Some("a;b,c=d"));
        assert_eq!(e.dns, ["x"]);
    }

    #[test]
    fn quoted_cert_and_unknown_keys_ignored() {
        let h = r#"Hash=ab;Cert="-----BEGIN%20CERTIFICATE-----%0A";Chain="x";Foo=bar;URI=u"#;
        let e = last_element(h).unwrap();
        assert_eq!(e.uris, ["u"]);
        assert_eq!(e.hash.as_deref(), Some("ab"));
    }

    #[test]
    fn empty_uri_dropped_and_empty_subject_kept() {
        let e = last_element(r#"Hash=ab;Subject="";URI="#).unwrap();
        assert!(e.uris.is_empty());
        assert_eq!(e.subject.as_deref(), Some(""));
    }

    #[test]
    fn forged_multi_element() {
        let h = format!("By=spiffe://evil/x;URI=spiffe://example.org/ns/admin/sa/root;Subject=\"CN=root\",{EXAMPLE}");
        let els = parse_xfcc(&h).unwrap();
        assert_eq!(els.len(), 2);
        assert_eq!(els[0].uris, ["spiffe://example.org/ns/admin/sa/root"]);
        let last = last_element(&h).unwrap();
        assert_eq!(last.uris[0], "spiffe://example.org/ns/team-a/sa/billing-bot");
        // Three elements, whitespace after commas (as when headers are merged).
        let h3 = "URI=a, URI=b ,\tURI=c";
        let els = parse_xfcc(h3).unwrap();
        assert_eq!(
            els.iter().map(|e| e.uris[0].as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(last_element(h3).unwrap().uris, ["c"]);
    }

    #[test]
    fn keys_case_insensitive() {
        let e = last_element("uri=a;dns=b;by=c;hash=d;subject=\"CN=e\"").unwrap();
        assert_eq!(e.uris, ["a"]);
        assert_eq!(e.dns, ["b"]);
        assert_eq!(e.by.as_deref(), Some("c"));
        assert_eq!(e.hash.as_deref(), Some("d"));
        assert_eq!(e.subject.as_deref(), Some("CN=e"));
    }

    #[test]
    fn value_may_contain_equals() {
        let e = last_element("URI=https://x/?a=b&c=d").unwrap();
        assert_eq!(e.uris, ["https://x/?a=b&c=d"]);
    }

    #[test]
    fn empty_header() {
        assert_eq!(parse_xfcc("").unwrap(), vec![]);
        assert_eq!(parse_xfcc("  \t ").unwrap(), vec![]);
        assert_eq!(last_element(""), None);
    }

    #[test]
    fn errors() {
        use XfccError::*;
        let cases: &[(&str, XfccError)] = &[
            ("Subject=\"CN=x", UnterminatedQuote),
            ("Subject=\"CN=x\\\"", UnterminatedQuote),
            ("Subject=\"CN=x\\", UnterminatedQuote),
            ("Hash=a;Hash=b", DuplicateKey),
            ("By=a;By=b", DuplicateKey),
            ("Subject=\"a\";subject=\"b\"", DuplicateKey),
            ("URI", Syntax),
            ("=x", Syntax),
            ("URI=a;", Syntax),
            ("URI=a,", Syntax),
            ("URI=a,,URI=b", Syntax),
            (",URI=a", Syntax),
            (";URI=a", Syntax),
            ("URI=a\"b", Syntax),
            ("Subject=\"x\"y", Syntax),
            ("URI=a\nURI=b", Syntax),
            ("URI=a\0", Syntax),
            ("URI=a\u{7f}", Syntax),
            ("U RI=a", Syntax),
            ("URI a", Syntax),
            ("\u{e9}=a", Syntax),
        ];
        for (h, want) in cases {
            assert_eq!(parse_xfcc(h), Err(*want), "{h:?}");
            assert_eq!(last_element(h), None, "{h:?}");
        }
        assert!(!Syntax.to_string().is_empty());
    }

    #[test]
    fn size_cap() {
        let base = "URI=";
        let ok = format!("{base}{}", "a".repeat(MAX_XFCC_LEN - base.len()));
        assert_eq!(parse_xfcc(&ok).unwrap().len(), 1);
        let long = format!("{ok}a");
        assert_eq!(parse_xfcc(&long), Err(XfccError::TooLong));
    }

    #[test]
    fn multibyte_inside_quotes() {
        let e = last_element("Subject=\"CN=J\u{fc}rgen\\\u{fc}\";URI=x").unwrap();
        assert_eq!(e.subject.as_deref(), Some("CN=J\u{fc}rgen\\\u{fc}"));
        assert_eq!(e.uris, ["x"]);
    }
}
