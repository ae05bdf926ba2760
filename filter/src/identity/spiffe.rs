//! SPIFFE ID parsing, following the SPIFFE ID standard (`standards/SPIFFE-ID.md`,
//! sections 2.1 trust domain, 2.2 path, 2.3 maximum length).
//!
//! Parsing is strict and borrow-only: anything that is not a well-formed
//! `spiffe://<trust-domain>[/<segment>...]` URI yields `None`. In particular
//! percent-encoding, ports, userinfo, queries, fragments, empty segments, `.`/`..`
//! segments, a trailing `/`, and an upper-case scheme are all rejected.

/// Longest SPIFFE ID accepted, in bytes (SPIFFE-ID §2.3).
pub const MAX_SPIFFE_ID_LEN: usize = 2048;
/// Longest trust domain accepted, in bytes (SPIFFE-ID §2.3).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

const PREFIX: &str = "spiffe://";

/// A borrowed, validated SPIFFE ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpiffeId<'a> {
    /// Trust domain, e.g. `example.org` (never empty).
    pub trust_domain: &'a str,
    /// Path including its leading `/`, e.g. `/ns/team-a/sa/billing-bot`; empty for a
    /// trust-domain-only ID such as `spiffe://example.org`.
    pub path: &'a str,
}

impl<'a> SpiffeId<'a> {
    /// Kubernetes namespace of an Istio-style ID `/ns/<ns>/sa/<sa>` (exactly four segments).
    #[must_use]
    pub fn namespace(&self) -> Option<&'a str> {
        self.istio_parts().map(|(ns, _)| ns)
    }

    /// Kubernetes service account of an Istio-style ID `/ns/<ns>/sa/<sa>` (exactly four segments).
    #[must_use]
    pub fn service_account(&self) -> Option<&'a str> {
        self.istio_parts().map(|(_, sa)| sa)
    }

    fn istio_parts(&self) -> Option<(&'a str, &'a str)> {
        let mut it = self.path.strip_prefix('/')?.split('/');
        match (it.next(), it.next(), it.next(), it.next(), it.next()) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Some((ns, sa)),
            _ => None,
        }
    }
}

impl core::fmt::Display for SpiffeId<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{PREFIX}{}{}", self.trust_domain, self.path)
    }
}

fn is_trust_domain_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

fn is_path_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

/// Parses `uri` as a SPIFFE ID. Returns `None` for anything that is not a valid one.
#[must_use]
pub fn parse_spiffe_id(uri: &str) -> Option<SpiffeId<'_>> {
    if uri.len() > MAX_SPIFFE_ID_LEN {
        return None;
    }
    let rest = uri.strip_prefix(PREFIX)?;
    let (trust_domain, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, ""),
    };
    if trust_domain.is_empty()
        || trust_domain.len() > MAX_TRUST_DOMAIN_LEN
        || !trust_domain.bytes().all(is_trust_domain_byte)
    {
        return None;
    }
    if !path.is_empty() {
        // `path` starts with '/', so the first split item is the empty string before it.
        for segment in path.split('/').skip(1) {
            if segment.is_empty() || segment == "." || segment == ".." || !segment.bytes().all(is_path_byte) {
                return None;
            }
        }
    }
    Some(SpiffeId { trust_domain, path })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn istio_form() {
        let id = parse_spiffe_id("spiffe://example.org/ns/team-a/sa/billing-bot").unwrap();
        assert_eq!(id.trust_domain, "example.org");
        assert_eq!(id.path, "/ns/team-a/sa/billing-bot");
        assert_eq!(id.namespace(), Some("team-a"));
        assert_eq!(id.service_account(), Some("billing-bot"));
        assert_eq!(id.to_string(), "spiffe://example.org/ns/team-a/sa/billing-bot");
    }

    #[test]
    fn trust_domain_only() {
        let id = parse_spiffe_id("spiffe://cluster.local").unwrap();
        assert_eq!(id.trust_domain, "cluster.local");
        assert_eq!(id.path, "");
        assert_eq!(id.namespace(), None);
        assert_eq!(id.service_account(), None);
    }

    #[test]
    fn non_istio_paths_have_no_ns_sa() {
        for p in [
            "spiffe://td/ns/a/sa",
            "spiffe://td/ns/a/sa/b/extra",
            "spiffe://td/sa/b/ns/a",
            "spiffe://td/NS/a/SA/b",
            "spiffe://td/workload",
            "spiffe://td/x/ns/a/sa/b",
        ] {
            let id = parse_spiffe_id(p).unwrap();
            assert_eq!(id.namespace(), None, "{p}");
            assert_eq!(id.service_account(), None, "{p}");
        }
    }

    #[test]
    fn allowed_characters() {
        assert!(parse_spiffe_id("spiffe://a-b_c.9/A-z_0.9/x").is_some());
        assert!(parse_spiffe_id("spiffe://td/.hidden/..x/...").is_some());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "spiffe:",
            "spiffe://",
            "spiffe:///path",
            "SPIFFE://example.org/a",
            "Spiffe://example.org/a",
            "spiffe:/example.org/a",
            "https://example.org/a",
            " spiffe://example.org/a",
            "spiffe://example.org/a ",
            "spiffe://Example.org/a",
            "spiffe://example.org:8080/a",
            "spiffe://user@example.org/a",
            "spiffe://user:pw@example.org/a",
            "spiffe://example.org/",
            "spiffe://example.org/a/",
            "spiffe://example.org//a",
            "spiffe://example.org/a//b",
            "spiffe://example.org/./a",
            "spiffe://example.org/a/..",
            "spiffe://example.org/a/../b",
            "spiffe://example.org/a?x=1",
            "spiffe://example.org?x=1",
            "spiffe://example.org/a#frag",
            "spiffe://example.org#frag",
            "spiffe://example.org/a%2Fb",
            "spiffe://ex%61mple.org/a",
            "spiffe://example.org/a b",
            "spiffe://example.org/a\nb",
            "spiffe://example.org/\u{e9}",
            "spiffe://ex\u{e9}mple.org/a",
            "spiffe://example.org/a\0",
            "spiffe://[::1]/a",
            "spiffe://example.org\\a",
        ] {
            assert_eq!(parse_spiffe_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn length_limits() {
        let td = "a".repeat(MAX_TRUST_DOMAIN_LEN);
        assert!(parse_spiffe_id(&format!("spiffe://{td}/x")).is_some());
        let td = "a".repeat(MAX_TRUST_DOMAIN_LEN + 1);
        assert!(parse_spiffe_id(&format!("spiffe://{td}/x")).is_none());

        let base = "spiffe://td/";
        let ok = format!("{base}{}", "p".repeat(MAX_SPIFFE_ID_LEN - base.len()));
        assert_eq!(ok.len(), MAX_SPIFFE_ID_LEN);
        assert!(parse_spiffe_id(&ok).is_some());
        let too_long = format!("{ok}p");
        assert!(parse_spiffe_id(&too_long).is_none());
        assert!(parse_spiffe_id(&"spiffe://a/b".repeat(100_000)).is_none());
    }
}
