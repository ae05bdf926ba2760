//! Identity sources (`kind:argument`, SPEC §3): parsing and the fields each kind may name.

use std::fmt;

/// The mTLS peer certificate fields a `peer:` source may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerField {
    SpiffeId,
    SpiffeTrustDomain,
    SpiffeNamespace,
    SpiffeServiceAccount,
    Subject,
    SubjectCn,
    SubjectOu,
    SubjectO,
    DnsSan,
    UriSan,
    Fingerprint,
}

impl PeerField {
    pub const ALL: [(&'static str, PeerField); 11] = [
        ("spiffe_id", PeerField::SpiffeId),
        ("spiffe_trust_domain", PeerField::SpiffeTrustDomain),
        ("spiffe_namespace", PeerField::SpiffeNamespace),
        ("spiffe_service_account", PeerField::SpiffeServiceAccount),
        ("subject", PeerField::Subject),
        ("subject_cn", PeerField::SubjectCn),
        ("subject_ou", PeerField::SubjectOu),
        ("subject_o", PeerField::SubjectO),
        ("dns_san", PeerField::DnsSan),
        ("uri_san", PeerField::UriSan),
        ("fingerprint", PeerField::Fingerprint),
    ];

    fn parse(name: &str) -> Option<PeerField> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// One compiled source of a dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A request header (lower-cased name).
    Header(String),
    /// A JWT claim, as a dotted path.
    Jwt(String),
    /// A field of the mTLS peer certificate.
    Peer(PeerField),
    /// `fingerprint`, or a field looked up in `api_keys.owners`.
    ApiKey(String),
    /// `xds.node.metadata.KEY`.
    Node(String),
    /// Any Envoy attribute, as path segments.
    Property(Vec<String>),
    /// A field of the JSON request body, as path segments.
    Body(Vec<String>),
    /// A constant.
    Static(String),
    /// The MCP session (`Mcp-Session-Id`); the argument is `session`.
    McpSession,
}

/// Why a source string did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    MissingColon,
    UnknownKind(String),
    EmptyArgument,
    BadHeaderName,
    UnknownPeerField(String),
    BadPath,
    UnknownMcpField(String),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::MissingColon => f.write_str("expected \"kind:argument\" (e.g. \"header:x-user-id\")"),
            SourceError::UnknownKind(k) => write!(
                f,
                "unknown source kind \"{k}\" (expected header, jwt, peer, api_key, node, property, body, static or mcp)"
            ),
            SourceError::EmptyArgument => f.write_str("the argument after ':' is empty"),
            SourceError::BadHeaderName => f.write_str("not a valid header name (lower-case letters, digits, '-', '_')"),
            SourceError::UnknownPeerField(p) => {
                let names: Vec<&str> = PeerField::ALL.iter().map(|(n, _)| *n).collect();
                write!(f, "unknown peer field \"{p}\" (expected one of {})", names.join(", "))
            }
            SourceError::BadPath => f.write_str("not a valid dotted path (no empty segments)"),
            SourceError::UnknownMcpField(a) => write!(f, "unknown mcp field \"{a}\" (expected session)"),
        }
    }
}

/// True for an HTTP header name this filter accepts in configuration.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn dotted(arg: &str) -> Result<Vec<String>, SourceError> {
    let parts: Vec<String> = arg.split('.').map(str::to_string).collect();
    if parts.iter().any(String::is_empty) {
        return Err(SourceError::BadPath);
    }
    Ok(parts)
}

impl Source {
    /// Parses `kind:argument`.
    pub fn parse(text: &str) -> Result<Source, SourceError> {
        let (kind, arg) = text.split_once(':').ok_or(SourceError::MissingColon)?;
        if arg.is_empty() {
            return Err(SourceError::EmptyArgument);
        }
        match kind {
            "header" => {
                let name = arg.to_ascii_lowercase();
                if !is_header_name(&name) {
                    return Err(SourceError::BadHeaderName);
                }
                Ok(Source::Header(name))
            }
            "jwt" => {
                dotted(arg)?;
                Ok(Source::Jwt(arg.to_string()))
            }
            "peer" => PeerField::parse(arg)
                .map(Source::Peer)
                .ok_or_else(|| SourceError::UnknownPeerField(arg.to_string())),
            "api_key" => Ok(Source::ApiKey(arg.to_string())),
            "node" => Ok(Source::Node(arg.to_string())),
            "property" => Ok(Source::Property(dotted(arg)?)),
            "body" => Ok(Source::Body(dotted(arg)?)),
            "static" => Ok(Source::Static(arg.to_string())),
            "mcp" if arg == "session" => Ok(Source::McpSession),
            "mcp" => Err(SourceError::UnknownMcpField(arg.to_string())),
            other => Err(SourceError::UnknownKind(other.to_string())),
        }
    }

    /// The kind, as written in configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Header(_) => "header",
            Source::Jwt(_) => "jwt",
            Source::Peer(_) => "peer",
            Source::ApiKey(_) => "api_key",
            Source::Node(_) => "node",
            Source::Property(_) => "property",
            Source::Body(_) => "body",
            Source::Static(_) => "static",
            Source::McpSession => "mcp",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Header(h) => write!(f, "header:{h}"),
            Source::Jwt(c) => write!(f, "jwt:{c}"),
            Source::Peer(p) => write!(f, "peer:{}", p.name()),
            Source::ApiKey(k) => write!(f, "api_key:{k}"),
            Source::Node(k) => write!(f, "node:{k}"),
            Source::Property(p) => write!(f, "property:{}", p.join(".")),
            Source::Body(p) => write!(f, "body:{}", p.join(".")),
            Source::Static(v) => write!(f, "static:{v}"),
            Source::McpSession => f.write_str("mcp:session"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            Source::parse("header:X-User-Id"),
            Ok(Source::Header("x-user-id".into()))
        );
        assert_eq!(Source::parse("jwt:org.bu"), Ok(Source::Jwt("org.bu".into())));
        assert_eq!(Source::parse("peer:spiffe_id"), Ok(Source::Peer(PeerField::SpiffeId)));
        assert_eq!(Source::parse("node:NAMESPACE"), Ok(Source::Node("NAMESPACE".into())));
        assert_eq!(
            Source::parse("property:xds.route_name"),
            Ok(Source::Property(vec!["xds".into(), "route_name".into()]))
        );
        assert_eq!(Source::parse("static:a:b"), Ok(Source::Static("a:b".into())));
    }

    #[test]
    fn names_the_problem() {
        assert_eq!(
            Source::parse("heder:x").map_err(|e| e.to_string()),
            Err(
                "unknown source kind \"heder\" (expected header, jwt, peer, api_key, node, property, body, static or mcp)"
                    .into()
            )
        );
        assert_eq!(Source::parse("header"), Err(SourceError::MissingColon));
        assert_eq!(Source::parse("header:"), Err(SourceError::EmptyArgument));
        assert_eq!(Source::parse("header:x y"), Err(SourceError::BadHeaderName));
        assert_eq!(
            Source::parse("peer:cn"),
            Err(SourceError::UnknownPeerField("cn".into()))
        );
        assert_eq!(Source::parse("property:a..b"), Err(SourceError::BadPath));
    }

    #[test]
    fn displays_as_written() {
        for s in [
            "header:x-user-id",
            "jwt:sub",
            "peer:subject_cn",
            "property:xds.route_name",
            "static:x",
        ] {
            assert_eq!(Source::parse(s).map(|s| s.to_string()), Ok(s.to_string()));
        }
    }
}
