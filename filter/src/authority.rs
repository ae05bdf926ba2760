//! The request's host (`:authority`, RFC 9110 §7.2 and RFC 3986 §3.2) in one canonical spelling:
//! lower case, without a trailing dot, with a strict port. A host that does not parse (userinfo,
//! percent escapes, a port that is not 1 to 65535, stray characters) is [`Host::Malformed`], and
//! the matchers treat it as matching: a host list can never be slipped by misspelling the host.

/// A host list entry: an exact name, or `*.domain` for any subdomain of `domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(String);

/// Why a host list entry is refused in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadHostPattern;

impl std::fmt::Display for BadHostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("expected a host name or \"*.domain\" (letters, digits, '-', '.', no port)")
    }
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<HostPattern, BadHostPattern> {
        let lower = text.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower).to_string();
        let name = lower.strip_prefix("*.").unwrap_or(&lower);
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains("..")
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        if ok {
            Ok(HostPattern(lower))
        } else {
            Err(BadHostPattern)
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self.0.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
            None => self.0 == host,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request's host, canonical or malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// Lower case, no trailing dot, no port (an IPv6 literal keeps its brackets).
    Name(String),
    Malformed,
}

fn valid_port(port: &str) -> bool {
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
}

impl Host {
    /// Parses `:authority` (host, optional `:port`). Absent or empty is malformed.
    pub fn parse(authority: Option<&[u8]>) -> Host {
        let Some(text) = authority.and_then(|a| std::str::from_utf8(a).ok()) else {
            return Host::Malformed;
        };
        let lower = text.to_ascii_lowercase();
        let (host, port) = if let Some(rest) = lower.strip_prefix('[') {
            // An IPv6 literal: `[addr]` or `[addr]:port`.
            let Some((addr, after)) = rest.split_once(']') else {
                return Host::Malformed;
            };
            if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
                return Host::Malformed;
            }
            let port = match after {
                "" => None,
                p => match p.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return Host::Malformed,
                },
            };
            (format!("[{addr}]"), port)
        } else {
            match lower.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (lower.clone(), None),
            }
        };
        if port.is_some_and(|p| !valid_port(p)) {
            return Host::Malformed;
        }
        let host = host.strip_suffix('.').map(str::to_string).unwrap_or(host);
        let plain = host.starts_with('[')
            || (!host.is_empty()
                && !host.starts_with('.')
                && !host.ends_with('.')
                && !host.contains("..")
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'));
        if plain {
            Host::Name(host)
        } else {
            Host::Malformed
        }
    }

    /// Whether the host is on the list; a malformed host matches every non-empty list.
    pub fn is_in(&self, list: &[HostPattern]) -> bool {
        match self {
            Host::Malformed => !list.is_empty(),
            Host::Name(name) => list.iter().any(|p| p.matches(name)),
        }
    }

    /// The canonical name, if well formed.
    pub fn name(&self) -> Option<&str> {
        match self {
            Host::Name(n) => Some(n),
            Host::Malformed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(hosts: &[&str]) -> Vec<HostPattern> {
        hosts.iter().map(|h| HostPattern::parse(h).unwrap()).collect()
    }

    fn host(a: &str) -> Host {
        Host::parse(Some(a.as_bytes()))
    }

    #[test]
    fn one_spelling_per_host() {
        for a in [
            "api.openai.com",
            "API.OpenAI.com",
            "api.openai.com.",
            "api.openai.com:443",
            "api.openai.com.:8443",
        ] {
            assert_eq!(host(a), Host::Name("api.openai.com".into()), "{a}");
        }
        assert_eq!(host("[::1]:10000"), Host::Name("[::1]".into()));
        assert_eq!(host("127.0.0.1:10000"), Host::Name("127.0.0.1".into()));
    }

    #[test]
    fn misspellings_are_malformed_and_match_every_list() {
        let openai = list(&["api.openai.com"]);
        for a in [
            "api.openai.com:443x",
            "api.openai.com:0",
            "api.openai.com:65536",
            "api.openai.com:",
            "user@api.openai.com",
            "api%2eopenai.com",
            "api.openai.com..",
            "",
            "api openai.com",
            "[::1",
            "[::1]x",
        ] {
            assert_eq!(host(a), Host::Malformed, "{a:?}");
            assert!(host(a).is_in(&openai), "{a:?}");
        }
        assert_eq!(Host::parse(None), Host::Malformed);
        assert_eq!(Host::parse(Some(b"\xff")), Host::Malformed);
        assert!(!Host::Malformed.is_in(&[]));
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        let l = list(&["*.openai.azure.com", "vllm.internal"]);
        assert!(host("corp.openai.azure.com").is_in(&l));
        assert!(host("a.b.openai.azure.com:443").is_in(&l));
        assert!(!host("openai.azure.com").is_in(&l));
        assert!(!host("evilopenai.azure.com").is_in(&l));
        assert!(host("VLLM.internal.").is_in(&l));
        assert!(!host("vllm.internal.evil").is_in(&l));
    }

    #[test]
    fn patterns_are_checked() {
        assert!(HostPattern::parse("api.openai.com:443").is_err());
        assert!(HostPattern::parse("*.").is_err());
        assert!(HostPattern::parse("").is_err());
        assert_eq!(
            HostPattern::parse("API.openai.com.").unwrap().as_str(),
            "api.openai.com"
        );
    }
}
