//! Where each source kind finds its value for one request: headers (trusted or not), Envoy
//! attributes, the mTLS peer, JWT claims, API keys, the body. Host attributes and decoded tokens
//! are fetched once per request, on first use.

use super::Inbound;
use crate::body::RequestBody;
use crate::config::{Config, JwtFrom};
use crate::host::{header_bytes, header_value, Attributes};
use crate::identity::api_key::{display_fingerprint, key_from_header, sha256_hex};
use crate::identity::jwt::{bearer_payload, claim_at, decode_payload_segment, ClaimValue};
use crate::identity::metadata::filter_metadata;
use crate::identity::peer::PeerCert;
use crate::identity::spiffe::parse_spiffe_id;
use crate::path::{query_values, raw_query};
use crate::policy::{Lookup, SourceLookup};
use crate::source::Source;
use crate::value::InvalidValue;

/// Namespace under which Envoy's jwt_authn filter stores verified payloads.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// Envoy request attributes that Envoy computes itself; every other `request.*` attribute
/// (headers, path, host, query, method, id, referer, user agent) is what the caller sent.
const ENVOY_REQUEST_ATTRIBUTES: [&str; 5] = ["time", "duration", "size", "total_size", "protocol"];

/// Where an API key may travel: a header, or Gemini's `?key=` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyPlace<'a> {
    Header(&'a str),
    Query,
}

/// The places each provider reads its API key from, in the order it reads them.
fn provider_key_places(provider: &str) -> &'static [KeyPlace<'static>] {
    use KeyPlace::{Header, Query};
    match provider {
        "azure.ai.openai" => &[Header("api-key"), Header("authorization")],
        "anthropic" => &[Header("x-api-key"), Header("authorization")],
        "gcp.gemini" => &[Header("x-goog-api-key"), Query],
        "gcp.vertex_ai" => &[Header("authorization"), Header("x-goog-api-key"), Query],
        crate::provider::UNKNOWN_PROVIDER => &[
            Header("authorization"),
            Header("x-api-key"),
            Header("api-key"),
            Header("x-goog-api-key"),
            Query,
        ],
        // OpenAI and compatible servers, Bedrock (a bearer API key or SigV4), Cohere, Ollama.
        _ => &[Header("authorization")],
    }
}

pub(super) struct RequestSources<'a> {
    pub config: &'a Config,
    pub inbound: &'a Inbound<'a>,
    pub props: &'a mut dyn Attributes,
    pub headers_trusted: bool,
    pub body: Option<&'a RequestBody>,
    peer: Option<PeerCert>,
    local_trust_domains: Option<Vec<String>>,
    jwt: Option<Result<serde_json::Value, Lookup>>,
    /// The full SHA-256 hex of the call's API key.
    api_key: Option<Result<String, Lookup>>,
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.is_empty())
}

impl<'a> RequestSources<'a> {
    pub fn new(
        config: &'a Config,
        inbound: &'a Inbound<'a>,
        props: &'a mut dyn Attributes,
        body: Option<&'a RequestBody>,
    ) -> Self {
        RequestSources {
            config,
            inbound,
            headers_trusted: config.trusted_peers.is_empty() || inbound.trusted_peer,
            props,
            body,
            peer: None,
            local_trust_domains: None,
            jwt: None,
            api_key: None,
        }
    }

    /// Whether a JWT payload was read from the request itself (a header the caller sent).
    pub fn read_a_jwt(&self) -> bool {
        matches!(self.jwt, Some(Ok(_))) && self.config.jwt.from != JwtFrom::JwtAuthn
    }

    fn peer(&mut self) -> &PeerCert {
        if self.peer.is_none() {
            let mut get = |attr: &str| text(self.props.property(&["connection", attr]));
            self.peer = Some(PeerCert {
                uri_san: get("uri_san_peer_certificate"),
                subject: get("subject_peer_certificate"),
                dns_san: get("dns_san_peer_certificate"),
                fingerprint: get("sha256_peer_certificate_digest"),
            });
        }
        self.peer.get_or_insert_with(PeerCert::default)
    }

    /// `peer.trust_domains`, or else the trust domain of Envoy's own certificate.
    fn local_trust_domains(&mut self) -> Vec<String> {
        if self.local_trust_domains.is_none() {
            let domains = if self.config.peer_trust_domains.is_empty() {
                text(self.props.property(&["connection", "uri_san_local_certificate"]))
                    .and_then(|uri| parse_spiffe_id(&uri).map(|id| vec![id.trust_domain.to_string()]))
                    .unwrap_or_default()
            } else {
                self.config.peer_trust_domains.clone()
            };
            self.local_trust_domains = Some(domains);
        }
        self.local_trust_domains.clone().unwrap_or_default()
    }

    /// The JWT payload per `jwt.from`; an `Err` is the lookup every claim then gets.
    fn jwt(&mut self) -> &Result<serde_json::Value, Lookup> {
        if self.jwt.is_none() {
            let cfg = &self.config.jwt;
            let headers = self.inbound.headers;
            let payload = match cfg.from {
                JwtFrom::JwtAuthn => self
                    .props
                    .property(&["metadata"])
                    .and_then(|md| filter_metadata(&md, JWT_AUTHN_NAMESPACE))
                    .and_then(|ns| ns.get(&cfg.payload_key).cloned())
                    .filter(serde_json::Value::is_object)
                    .ok_or(Lookup::Absent),
                JwtFrom::Header => match header_value(headers, &cfg.header) {
                    Ok(None) => Err(Lookup::Absent),
                    Ok(Some(_)) if !self.headers_trusted => Err(Lookup::Untrusted),
                    Ok(Some(v)) => std::str::from_utf8(v)
                        .ok()
                        .and_then(|v| decode_payload_segment(v.trim()).ok())
                        .ok_or(Lookup::Invalid(InvalidValue::Composite)),
                    Err(e) => Err(Lookup::Invalid(e)),
                },
                JwtFrom::BearerUnverified => match header_value(headers, "authorization") {
                    Ok(None) => Err(Lookup::Absent),
                    Ok(Some(v)) => std::str::from_utf8(v)
                        .ok()
                        .and_then(|v| bearer_payload(v).ok())
                        .ok_or(Lookup::Absent),
                    Err(e) => Err(Lookup::Invalid(e)),
                },
            };
            self.jwt = Some(payload);
        }
        self.jwt.get_or_insert(Err(Lookup::Absent))
    }

    /// The key in one place; a header sent twice with different values is ambiguous.
    fn key_at(&self, place: KeyPlace<'_>) -> Result<Option<String>, InvalidValue> {
        match place {
            KeyPlace::Header(name) => {
                let raw = header_value(self.inbound.headers, name)?;
                Ok(raw
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| key_from_header(name, v))
                    .map(str::to_string))
            }
            KeyPlace::Query => {
                // Read from the bytes: a `:path` that is not UTF-8 must not hide its key.
                let target = header_bytes(self.inbound.headers, ":path").unwrap_or_default();
                let mut keys: Vec<String> = query_values(raw_query(target), "key")
                    .into_iter()
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect();
                keys.dedup();
                match keys.len() {
                    0 => Ok(None),
                    1 => Ok(keys.pop()),
                    // Which one the provider checks is the provider's choice: neither counts.
                    _ => Err(InvalidValue::ConflictingKeys),
                }
            }
        }
    }

    /// The SHA-256 of the key the provider checks: the first of its key places that carries one.
    /// Two different keys on one call (junk in one header, the real key in another) are invalid.
    fn api_key(&mut self) -> &Result<String, Lookup> {
        if self.api_key.is_none() {
            let places: Vec<KeyPlace<'_>> = match &self.config.api_keys.headers {
                Some(names) => names.iter().map(|n| KeyPlace::Header(n.as_str())).collect(),
                None => provider_key_places(&self.inbound.call.provider).to_vec(),
            };
            let mut found: Result<String, Lookup> = Err(Lookup::Absent);
            for place in places {
                match self.key_at(place) {
                    Err(e) => {
                        found = Err(Lookup::Invalid(e));
                        break;
                    }
                    Ok(None) => {}
                    Ok(Some(key)) => match &found {
                        Ok(first) if *first != sha256_hex(&key) => {
                            found = Err(Lookup::Invalid(InvalidValue::ConflictingKeys));
                            break;
                        }
                        Ok(_) => {}
                        Err(_) => found = Ok(sha256_hex(&key)),
                    },
                }
            }
            self.api_key = Some(found);
        }
        self.api_key.get_or_insert(Err(Lookup::Absent))
    }

    fn request_attribute_is_callers(path: &[String]) -> bool {
        matches!(path.first().map(String::as_str), Some("request"))
            && !path
                .get(1)
                .is_some_and(|p| ENVOY_REQUEST_ATTRIBUTES.contains(&p.as_str()))
    }
}

impl SourceLookup for RequestSources<'_> {
    fn now(&mut self) -> Option<u64> {
        self.props.now_unix_seconds()
    }

    fn lookup(&mut self, source: &Source) -> Lookup {
        match source {
            Source::Header(name) => match header_value(self.inbound.headers, name) {
                Ok(None) => Lookup::Absent,
                Ok(Some(_)) if !self.headers_trusted => Lookup::Untrusted,
                Ok(Some(v)) => Lookup::Value(v.to_vec()),
                Err(e) => Lookup::Invalid(e),
            },
            Source::Static(v) => Lookup::Value(v.as_bytes().to_vec()),
            // The MCP server issues the session id; a caller can only name a session it holds.
            Source::McpSession => match header_value(self.inbound.headers, "mcp-session-id") {
                Ok(None) => Lookup::Absent,
                Ok(Some(v)) => Lookup::Value(v.to_vec()),
                Err(e) => Lookup::Invalid(e),
            },
            Source::Node(key) => self
                .props
                .property(&["xds", "node", "metadata", key])
                .map_or(Lookup::Absent, Lookup::Value),
            Source::Property(path) => {
                let parts: Vec<&str> = path.iter().map(String::as_str).collect();
                match self.props.property(&parts) {
                    None => Lookup::Absent,
                    // What the caller sent obeys header_trust whatever it is read through.
                    Some(_) if !self.headers_trusted && Self::request_attribute_is_callers(path) => Lookup::Untrusted,
                    Some(v) => Lookup::Value(v),
                }
            }
            Source::Body(path) => self.body.map_or(Lookup::Absent, |b| b.lookup(path)),
            Source::Peer(field) => {
                let local = self.local_trust_domains();
                match self.peer().field(*field, &local) {
                    Ok(None) => Lookup::Absent,
                    Ok(Some(v)) => Lookup::Value(v.into_bytes()),
                    Err(e) => Lookup::Invalid(e),
                }
            }
            Source::Jwt(claim) => {
                let unverified = self.config.jwt.from == JwtFrom::BearerUnverified;
                match self.jwt() {
                    Err(lookup) => lookup.clone(),
                    Ok(payload) => match claim_at(payload, claim) {
                        None => Lookup::Absent,
                        Some(ClaimValue::Invalid) => Lookup::Invalid(InvalidValue::Composite),
                        Some(ClaimValue::Text(t)) if unverified => Lookup::Unverified(t.into_bytes()),
                        Some(ClaimValue::Text(t)) => Lookup::Value(t.into_bytes()),
                    },
                }
            }
            Source::ApiKey(field) => {
                let owners = &self.config.api_keys.owners;
                match self.api_key() {
                    Err(lookup) => lookup.clone(),
                    Ok(hex) if field == "fingerprint" => Lookup::Value(display_fingerprint(hex).into_bytes()),
                    Ok(hex) => owners
                        .get(hex)
                        .and_then(|o| o.get(field))
                        .map_or(Lookup::Absent, |v| Lookup::Value(v.clone().into_bytes())),
                }
            }
        }
    }
}
