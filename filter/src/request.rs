//! Request-header processing: from the request's headers and host attributes to a plan of header
//! edits, a decision and, in enforce mode, a rejection. Pure: the wasm glue only carries it out.

use crate::body::RequestBody;
use crate::config::{Config, JwtFrom};
use crate::correlation::{merge_baggage, propagation_header, usable_request_id, HEADER_PREFIX};
use crate::identity::api_key::{fingerprint, key_from_header};
use crate::identity::jwt::{bearer_payload, claim_at, decode_payload_segment, ClaimValue};
use crate::identity::metadata::filter_metadata;
use crate::identity::peer::PeerCert;
use crate::identity::spiffe::parse_spiffe_id;
use crate::identity::xfcc::last_element;
use crate::policy::{attribute, Attribution, Decision, Lookup, SourceLookup};
use crate::provider::ModelCall;
use crate::reject::{rejection, LocalReply};
use crate::source::Source;
use crate::value::Rejected;

/// Host attributes (Envoy properties) for one request.
pub trait Properties {
    fn property(&mut self, path: &[&str]) -> Option<Vec<u8>>;
}

/// Request headers as Envoy gives them: lower-case names, duplicates as separate entries.
pub type Headers = [(String, Vec<u8>)];

/// What to do with one model call's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPlan {
    pub correlation_id: String,
    pub attribution: Attribution,
    /// Inbound header names to remove before forwarding (spoofable attribution headers).
    pub remove: Vec<String>,
    /// Headers to set (replace) on the upstream request.
    pub set: Vec<(String, String)>,
    /// The local reply, when the call is rejected.
    pub reject: Option<LocalReply>,
    /// The model named in the path, if the API puts it there.
    pub request_model: Option<String>,
    /// Whether the downstream peer is in `header_trust.peers`.
    pub trusted_peer: bool,
}

/// Looks sources up in the request's headers and host properties. Host attributes and decoded
/// tokens are fetched once per request, on first use.
struct RequestSources<'a, P: Properties> {
    config: &'a Config,
    headers: &'a Headers,
    props: &'a mut P,
    headers_trusted: bool,
    body: Option<&'a RequestBody>,
    peer: Option<PeerCert>,
    jwt: Option<Result<serde_json::Value, Lookup>>,
    api_key: Option<Result<String, Lookup>>,
}

/// Returns the header's value; several entries with different values are ambiguous.
pub fn header_value<'h>(headers: &'h Headers, name: &str) -> Result<Option<&'h [u8]>, Rejected> {
    let mut found: Option<&[u8]> = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            match found {
                Some(prev) if prev != v.as_slice() => return Err(Rejected::Ambiguous),
                _ => found = Some(v),
            }
        }
    }
    Ok(found)
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.is_empty())
}

/// Namespace under which Envoy's jwt_authn filter stores verified payloads.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

impl<P: Properties> RequestSources<'_, P> {
    fn peer(&mut self) -> &PeerCert {
        if self.peer.is_none() {
            let mut get = |attr: &str| text(self.props.property(&["connection", attr]));
            let mut cert = PeerCert {
                uri_san: get("uri_san_peer_certificate"),
                subject: get("subject_peer_certificate"),
                dns_san: get("dns_san_peer_certificate"),
                fingerprint: get("sha256_peer_certificate_digest"),
                xfcc: None,
            };
            if cert.uri_san.as_deref().is_some_and(|u| parse_spiffe_id(u).is_none()) {
                if let Ok(Some(raw)) = header_value(self.headers, "x-forwarded-client-cert") {
                    cert.xfcc = std::str::from_utf8(raw).ok().and_then(last_element);
                }
            }
            self.peer = Some(cert);
        }
        self.peer.get_or_insert_with(PeerCert::default)
    }

    /// The JWT payload per `jwt.from`; an `Err` is the lookup every claim then gets.
    fn jwt(&mut self) -> &Result<serde_json::Value, Lookup> {
        if self.jwt.is_none() {
            let cfg = self.config;
            let payload = match cfg.jwt_from {
                JwtFrom::JwtAuthn => self
                    .props
                    .property(&["metadata"])
                    .and_then(|md| filter_metadata(&md, JWT_AUTHN_NAMESPACE))
                    .and_then(|ns| ns.get(&cfg.jwt_payload_key).cloned())
                    .filter(serde_json::Value::is_object)
                    .ok_or(Lookup::Absent),
                JwtFrom::Header => match header_value(self.headers, &cfg.jwt_header) {
                    Ok(None) => Err(Lookup::Absent),
                    Ok(Some(_)) if !self.headers_trusted => Err(Lookup::Untrusted),
                    Ok(Some(v)) => std::str::from_utf8(v)
                        .ok()
                        .and_then(|v| decode_payload_segment(v.trim()).ok())
                        .ok_or(Lookup::Invalid(Rejected::Composite)),
                    Err(e) => Err(Lookup::Invalid(e)),
                },
                JwtFrom::BearerUnverified => match header_value(self.headers, "authorization") {
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

    /// The fingerprint of the API key in the first configured header that carries one.
    fn api_key(&mut self) -> &Result<String, Lookup> {
        if self.api_key.is_none() {
            let mut found = Err(Lookup::Absent);
            for name in &self.config.api_key_headers {
                match header_value(self.headers, name) {
                    Ok(None) => continue,
                    Ok(Some(v)) => {
                        let key = std::str::from_utf8(v).ok().and_then(|v| key_from_header(name, v));
                        if let Some(key) = key {
                            found = Ok(fingerprint(key));
                            break;
                        }
                    }
                    Err(e) => {
                        found = Err(Lookup::Invalid(e));
                        break;
                    }
                }
            }
            self.api_key = Some(found);
        }
        self.api_key.get_or_insert(Err(Lookup::Absent))
    }
}

impl<P: Properties> SourceLookup for RequestSources<'_, P> {
    fn lookup(&mut self, source: &Source) -> Lookup {
        match source {
            Source::Header(name) => match header_value(self.headers, name) {
                Ok(None) => Lookup::Absent,
                Ok(Some(_)) if !self.headers_trusted => Lookup::Untrusted,
                Ok(Some(v)) => Lookup::Value(v.to_vec()),
                Err(e) => Lookup::Invalid(e),
            },
            Source::Static(v) => Lookup::Value(v.as_bytes().to_vec()),
            Source::Node(key) => self
                .props
                .property(&["xds", "node", "metadata", key])
                .map_or(Lookup::Absent, Lookup::Value),
            Source::Property(path) => {
                let parts: Vec<&str> = path.iter().map(String::as_str).collect();
                self.props.property(&parts).map_or(Lookup::Absent, Lookup::Value)
            }
            Source::Body(path) => self.body.map_or(Lookup::Absent, |b| b.lookup(path)),
            Source::Peer(field) => self
                .peer()
                .field(*field)
                .map_or(Lookup::Absent, |v| Lookup::Value(v.into_bytes())),
            Source::Jwt(claim) => {
                let unverified = self.config.jwt_from == JwtFrom::BearerUnverified;
                match self.jwt() {
                    Err(lookup) => lookup.clone(),
                    Ok(payload) => match claim_at(payload, claim) {
                        None => Lookup::Absent,
                        Some(ClaimValue::Invalid) => Lookup::Invalid(Rejected::Composite),
                        Some(ClaimValue::Text(t)) if unverified => Lookup::Unverified(t.into_bytes()),
                        Some(ClaimValue::Text(t)) => Lookup::Value(t.into_bytes()),
                    },
                }
            }
            Source::ApiKey(field) => {
                let owners = &self.config.api_key_owners;
                match self.api_key() {
                    Err(lookup) => lookup.clone(),
                    Ok(fp) if field == "fingerprint" => Lookup::Value(fp.clone().into_bytes()),
                    Ok(fp) => owners
                        .get(fp)
                        .and_then(|o| o.get(field))
                        .map_or(Lookup::Absent, |v| Lookup::Value(v.clone().into_bytes())),
                }
            }
        }
    }
}

/// The downstream mTLS peer's SPIFFE ID from the connection (never from a header), if valid.
fn peer_spiffe_id<P: Properties>(props: &mut P) -> Option<String> {
    let uri = text(props.property(&["connection", "uri_san_peer_certificate"]))?;
    parse_spiffe_id(&uri).is_some().then_some(uri)
}

/// The correlation id: Envoy's `x-request-id` when it is a plain token, else a new UUIDv4.
pub fn correlation_id(headers: &Headers, new_id: &mut dyn FnMut() -> String) -> String {
    match header_value(headers, "x-request-id") {
        Ok(Some(id)) => match std::str::from_utf8(id) {
            Ok(id) if usable_request_id(id) => id.to_string(),
            _ => new_id(),
        },
        _ => new_id(),
    }
}

/// True when the call is not attributed yet but a `body:` source could still satisfy the
/// requirement, so the decision must wait for the request body.
pub fn waits_for_body(config: &Config, attribution: &Attribution) -> bool {
    attribution.decision != Decision::Attributed
        && config.require.iter().any(|alt| {
            alt.iter().all(|&i| {
                attribution.value(i).is_some()
                    || config
                        .dimensions
                        .get(i)
                        .is_some_and(|d| d.sources.iter().any(|s| matches!(s, Source::Body(_))))
            })
        })
}

/// Plans the handling of a recognised model call's request. `body` is the request body read so far,
/// when the decision waited for it.
pub fn plan_request<P: Properties>(
    config: &Config,
    call: &ModelCall,
    headers: &Headers,
    props: &mut P,
    body: Option<&RequestBody>,
    correlation_id: String,
) -> RequestPlan {
    let trusted_peer =
        !config.trusted_peers.is_empty() && peer_spiffe_id(props).is_some_and(|id| config.trusted_peers.contains(&id));
    let headers_trusted = config.trusted_peers.is_empty() || trusted_peer;

    let attribution = {
        let mut sources = RequestSources {
            config,
            headers,
            props,
            headers_trusted,
            body,
            peer: None,
            jwt: None,
            api_key: None,
        };
        attribute(config, &mut sources)
    };

    let mut remove: Vec<String> = Vec::new();
    if !trusted_peer {
        for (name, _) in headers {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with(HEADER_PREFIX) && !remove.contains(&lower) {
                remove.push(lower);
            }
        }
    }

    let mut set = vec![(config.correlation_header.clone(), correlation_id.clone())];
    let mut baggage_entries: Vec<(&str, &str)> = Vec::new();
    for &i in &config.propagate {
        if let (Some(dim), Some(value)) = (config.dimensions.get(i), attribution.value(i)) {
            set.push((propagation_header(&dim.name), value.to_string()));
            baggage_entries.push((&dim.name, value));
        }
    }
    if config.baggage {
        let inbound = header_value(headers, "baggage")
            .ok()
            .flatten()
            .and_then(|v| std::str::from_utf8(v).ok());
        match merge_baggage(inbound, &baggage_entries) {
            Some(b) => set.push(("baggage".to_string(), b)),
            None if inbound.is_some() => remove.push("baggage".to_string()),
            None => {}
        }
    }

    let reject = (attribution.decision == Decision::Rejected).then(|| rejection(config, &attribution, &correlation_id));
    RequestPlan {
        correlation_id,
        attribution,
        remove,
        set,
        reject,
        request_model: call.path_model.clone(),
        trusted_peer,
    }
}
