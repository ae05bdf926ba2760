//! Request-header processing: from the request's headers and host attributes to a plan of header
//! edits, a decision and, in enforce mode, a rejection. Pure: the wasm glue only carries it out.

use crate::body::RequestBody;
use crate::config::Config;
use crate::correlation::{merge_baggage, propagation_header, usable_request_id, HEADER_PREFIX};
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

/// Looks sources up in the request's headers and host properties.
struct RequestSources<'a, P: Properties> {
    headers: &'a Headers,
    props: &'a mut P,
    headers_trusted: bool,
    body: Option<&'a RequestBody>,
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
            // Refused by config validation in this version.
            Source::Jwt(_) | Source::Peer(_) | Source::ApiKey(_) => Lookup::Absent,
        }
    }
}

/// The downstream mTLS peer's SPIFFE ID, if it presented one.
fn peer_spiffe_id<P: Properties>(props: &mut P) -> Option<String> {
    let raw = props.property(&["connection", "uri_san_peer_certificate"])?;
    let text = String::from_utf8(raw).ok()?;
    text.starts_with("spiffe://").then_some(text)
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
            headers,
            props,
            headers_trusted,
            body,
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
