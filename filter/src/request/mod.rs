//! Request-header processing: from the request's headers and host attributes to a plan of header
//! edits and a decision. Pure: the call lifecycle carries it out (and words any rejection).

mod sources;

pub use sources::JWT_AUTHN_NAMESPACE;

use crate::body::RequestBody;
use crate::call::Effect;
use crate::config::{Config, JwtFrom};
use crate::correlation::{is_spoofable_header, propagation_header, rebuild_baggage, usable_request_id};
use crate::host::{header_value, Attributes, Headers};
use crate::identity::spiffe::parse_spiffe_id;
use crate::policy::{attribute_against, Attribution, Decision};
use crate::provider::ModelCall;
use crate::source::Source;
use sources::RequestSources;

/// What to do with one model call's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPlan {
    pub correlation_id: String,
    pub attribution: Attribution,
    /// Inbound header names to remove before forwarding (spoofable attribution headers).
    pub remove: Vec<String>,
    /// Headers to set (replace) on the upstream request.
    pub set: Vec<(String, String)>,
}

/// The request as the core received it: its headers, whether the downstream peer is trusted,
/// what kind of call it is, and the alternatives it must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub headers: &'a Headers<'a>,
    pub trusted_peer: bool,
    pub call: &'a ModelCall,
    pub require: &'a [Vec<usize>],
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.is_empty())
}

/// The downstream mTLS peer's SPIFFE ID from the connection (never from a header), if valid.
pub fn peer_spiffe_id(props: &mut dyn Attributes) -> Option<String> {
    let uri = text(props.property(&["connection", "uri_san_peer_certificate"]))?;
    parse_spiffe_id(&uri).is_some().then_some(uri)
}

/// Whether the downstream mTLS peer is in `header_trust.peers`.
pub fn trusted_peer(config: &Config, props: &mut dyn Attributes) -> bool {
    !config.trusted_peers.is_empty() && peer_spiffe_id(props).is_some_and(|id| config.trusted_peers.contains(&id))
}

/// Names of the inbound headers an untrusted peer may not send (`x-ai-*`, `x_ai_*`), lower-cased.
fn spoofed_names(headers: &Headers) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in headers {
        if is_spoofable_header(name) {
            let lower = name.to_ascii_lowercase();
            if !out.contains(&lower) {
                out.push(lower);
            }
        }
    }
    out
}

/// The inbound `baggage` members, every `baggage` header joined.
fn inbound_baggage(headers: &Headers) -> Option<String> {
    let mut joined: Option<String> = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("baggage") {
            let v = String::from_utf8_lossy(value);
            match joined.as_mut() {
                Some(j) => {
                    j.push(',');
                    j.push_str(&v);
                }
                None => joined = Some(v.into_owned()),
            }
        }
    }
    joined
}

/// Header edits that strip what an untrusted peer may not send, on any request: `x-ai-*` and
/// `x_ai_*` headers, and `ai.*` members of every `baggage` header. Empty when the peer is trusted.
pub fn spoofed_header_edits(config: &Config, headers: &Headers, props: &mut dyn Attributes) -> Vec<Effect> {
    let names = spoofed_names(headers);
    let inbound = inbound_baggage(headers);
    let rebuilt = inbound.as_deref().map(|b| rebuild_baggage(Some(b), true, &[]));
    let baggage_changes = match &rebuilt {
        Some(r) => *r != inbound || headers_repeat(headers, "baggage"),
        None => false,
    };
    if (names.is_empty() && !baggage_changes) || trusted_peer(config, props) {
        return Vec::new();
    }
    let mut out: Vec<Effect> = names.into_iter().map(Effect::RemoveRequestHeader).collect();
    if baggage_changes {
        match rebuilt.flatten() {
            Some(clean) => out.push(Effect::SetRequestHeader("baggage".to_string(), clean)),
            None => out.push(Effect::RemoveRequestHeader("baggage".to_string())),
        }
    }
    out
}

fn headers_repeat(headers: &Headers, name: &str) -> bool {
    headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count() > 1
}

/// The correlation ID. From a trusted peer (an earlier hop in `header_trust.peers`), the one it
/// sent in the correlation header, so that every hop records the same ID; otherwise, always a
/// new one: a caller never chooses its own correlation ID. A trusted hop's `x-request-id` is not
/// taken: an edge proxy may pass on the one its own caller chose.
pub fn correlation_id(
    config: &Config,
    headers: &Headers,
    trusted_peer: bool,
    new_id: &mut dyn FnMut() -> String,
) -> String {
    if trusted_peer {
        if let Ok(Some(id)) = header_value(headers, &config.correlation_header) {
            if let Ok(id) = std::str::from_utf8(id) {
                if usable_request_id(id) {
                    return id.to_string();
                }
            }
        }
    }
    new_id()
}

/// True when the call is not attributed yet but a `body:` source could still satisfy the
/// requirement, so the decision must wait for the request body.
pub fn waits_for_body(config: &Config, require: &[Vec<usize>], attribution: &Attribution) -> bool {
    attribution.decision != Decision::Attributed
        && require.iter().any(|alt| {
            alt.iter().all(|&i| {
                attribution.value(i).is_some()
                    || config
                        .dimensions
                        .get(i)
                        .is_some_and(|d| d.sources.iter().any(|s| matches!(s, Source::Body(_))))
            })
        })
}

/// Plans the handling of a recognised AI event's request. `body` is the request body read so far,
/// when the decision waited for it.
pub fn plan_request(
    config: &Config,
    inbound: &Inbound<'_>,
    props: &mut dyn Attributes,
    body: Option<&RequestBody>,
    correlation_id: String,
) -> RequestPlan {
    let (headers, trusted_peer) = (inbound.headers, inbound.trusted_peer);
    let mut sources = RequestSources::new(config, inbound, props, body);
    let attribution = attribute_against(config, inbound.require, &mut sources);
    let read_a_jwt = sources.read_a_jwt();

    let mut remove: Vec<String> = if trusted_peer {
        Vec::new()
    } else {
        spoofed_names(headers)
    };
    if read_a_jwt && !config.jwt.forward {
        // The caller's token was for this hop: it does not go on to the provider.
        let name = match config.jwt.from {
            JwtFrom::Header => config.jwt.header.clone(),
            _ => "authorization".to_string(),
        };
        if !remove.contains(&name) {
            remove.push(name);
        }
    }

    // A pseudonymised dimension's clear value does not go upstream in the header it came in.
    for dim in config
        .privacy
        .pseudonymised
        .iter()
        .filter_map(|&i| config.dimensions.get(i))
    {
        for source in &dim.sources {
            if let Source::Header(name) = source {
                if !remove.contains(name) {
                    remove.push(name.clone());
                }
            }
        }
    }

    let mut set = vec![(config.correlation_header.clone(), correlation_id.clone())];
    let mut baggage_entries: Vec<(&str, &str)> = Vec::new();
    // Unverified values never leave this hop; pseudonymised ones leave only as their pseudonym.
    let shown: Vec<(usize, std::borrow::Cow<'_, str>)> = config
        .propagate
        .iter()
        .filter_map(|&i| Some((i, config.shown(i, attribution.verified_value(i)?)?)))
        .collect();
    for (i, value) in &shown {
        if let Some(dim) = config.dimensions.get(*i) {
            set.push((propagation_header(&dim.name), value.to_string()));
            baggage_entries.push((&dim.name, value));
        }
    }
    let inbound_members = inbound_baggage(headers);
    let entries: &[(&str, &str)] = if config.baggage { &baggage_entries } else { &[] };
    if inbound_members.is_some() || !entries.is_empty() {
        let rebuilt = rebuild_baggage(inbound_members.as_deref(), !trusted_peer, entries);
        if rebuilt != inbound_members || headers_repeat(headers, "baggage") {
            match rebuilt {
                Some(b) => set.push(("baggage".to_string(), b)),
                None => remove.push("baggage".to_string()),
            }
        }
    }

    RequestPlan {
        correlation_id,
        attribution,
        remove,
        set,
    }
}
