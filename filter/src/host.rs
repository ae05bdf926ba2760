//! The host as the core sees it: headers as plain data, and Envoy attributes through one small
//! trait. The wasm glue implements [`Attributes`] over host calls; tests implement it over maps.

use crate::value::InvalidValue;
use std::collections::BTreeMap;

/// Headers as Envoy hands them over: lower-case names, values as bytes, duplicates kept. The
/// glue borrows both from the one buffer the host returns, so reading them allocates nothing
/// per header.
pub type Headers<'a> = [(&'a str, &'a [u8])];

/// An owned list of headers (kept across callbacks, and built by tests).
pub type HeaderList = Vec<(String, Vec<u8>)>;

/// An owned list seen as [`Headers`].
pub fn view(list: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    list.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect()
}

/// Headers borrowed from a buffer in the host's pairs encoding; `None` when it is not one.
/// Envoy's header names are tokens, so always UTF-8; a name that is not is kept as the empty
/// name, which no lookup asks for.
pub fn decode_headers(bytes: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let pairs = crate::identity::pairs::decode_pairs(bytes)?;
    Some(
        pairs
            .into_iter()
            .map(|(k, v)| (std::str::from_utf8(k).unwrap_or(""), v))
            .collect(),
    )
}

/// [`Headers`] copied into a [`HeaderList`].
pub fn to_list(headers: &Headers) -> HeaderList {
    headers.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect()
}

/// Envoy attributes (`connection.*`, `xds.*`, `metadata`, ...) for the current stream.
pub trait Attributes {
    /// The attribute's bytes; `None` when Envoy has no value for it (or the call failed).
    fn property(&mut self, path: &[&str]) -> Option<Vec<u8>>;

    /// The host's clock, Unix seconds (`None` when it has none).
    fn now_unix_seconds(&mut self) -> Option<u64> {
        None
    }
}

/// Attributes from a map of dotted paths (`connection.uri_san_peer_certificate`,
/// `xds.node.metadata.BUSINESS_UNIT`) to values: Envoy stood in for by plain data.
#[derive(Debug, Default, Clone)]
pub struct MapAttributes(pub BTreeMap<String, Vec<u8>>);

impl MapAttributes {
    /// Sets one attribute.
    pub fn set(&mut self, path: &str, value: impl Into<Vec<u8>>) -> &mut Self {
        self.0.insert(path.to_string(), value.into());
        self
    }
}

/// The key of [`MapAttributes`] that holds the clock (Unix seconds, as text).
pub const NOW_KEY: &str = "now";

impl Attributes for MapAttributes {
    fn property(&mut self, path: &[&str]) -> Option<Vec<u8>> {
        self.0.get(&path.join(".")).cloned()
    }

    fn now_unix_seconds(&mut self) -> Option<u64> {
        std::str::from_utf8(self.0.get(NOW_KEY)?).ok()?.trim().parse().ok()
    }
}

/// Attributes of nothing: every lookup is absent.
pub struct NoAttributes;

impl Attributes for NoAttributes {
    fn property(&mut self, _path: &[&str]) -> Option<Vec<u8>> {
        None
    }
}

/// The header's value; several entries with different values are ambiguous.
pub fn header_value<'h>(headers: &'h Headers, name: &str) -> Result<Option<&'h [u8]>, InvalidValue> {
    let mut found: Option<&[u8]> = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            match found {
                Some(prev) if prev != *v => return Err(InvalidValue::Ambiguous),
                _ => found = Some(v),
            }
        }
    }
    Ok(found)
}

/// The first value of a header, as text (pseudo-headers such as `:path` included).
pub fn header_text<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// The first value of a header, as bytes.
pub fn header_bytes<'h>(headers: &'h Headers, name: &str) -> Option<&'h [u8]> {
    headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
        pairs.iter().map(|(k, v)| (*k, v.as_bytes())).collect()
    }

    #[test]
    fn repeated_headers_agree_or_are_ambiguous() {
        let same = h(&[("x-user-id", "a"), ("x-user-id", "a")]);
        assert_eq!(header_value(&same, "x-user-id"), Ok(Some(&b"a"[..])));
        let differ = h(&[("x-user-id", "a"), ("x-user-id", "b")]);
        assert_eq!(header_value(&differ, "x-user-id"), Err(InvalidValue::Ambiguous));
        assert_eq!(header_value(&differ, "x-other"), Ok(None));
    }

    #[test]
    fn headers_decode_from_the_pairs_encoding_without_copies() {
        use crate::identity::pairs::encode_pairs;
        let bytes = encode_pairs(&[(b":path", b"/v1/x"), (b"x-\xff", b"v"), (b"a", b"")]);
        let headers = decode_headers(&bytes).unwrap();
        assert_eq!(
            headers,
            vec![(":path", &b"/v1/x"[..]), ("", &b"v"[..]), ("a", &b""[..])]
        );
        assert_eq!(decode_headers(&[]), Some(vec![]));
        assert_eq!(decode_headers(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn pseudo_headers_are_read_as_text_or_bytes() {
        let headers = vec![(":path", &b"/v1/x?\xff"[..])];
        assert_eq!(header_text(&headers, ":path"), None);
        assert_eq!(header_bytes(&headers, ":path"), Some(&b"/v1/x?\xff"[..]));
        assert_eq!(NoAttributes.property(&["a"]), None);
    }
}
