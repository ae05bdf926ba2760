//! The life of one request in the pure core: a state machine fed with plain data (headers, body
//! chunks, the end of the stream) that answers with [`Step`]s, effects for the host to carry out
//! and whether the stream may go on. At the end, [`Call::finish`] yields the record and the
//! metric increments. The wasm glue only translates between Envoy and these calls.
//!
//! Two phase rules of proxy-wasm shape the machine:
//! - a filter that stops the request headers also stops its own body callbacks (Envoy turns
//!   `StopIteration` into `StopAllIteration`), so a decision that waits for a `body:` source lets
//!   the headers go on and holds the *body* instead ([`Flow::Pause`] on body chunks);
//! - a request body that may grow must lose its `content-length` before any body byte is
//!   forwarded, so that header is removed at the headers phase.

mod finish;
mod start;
mod vm;

#[cfg(test)]
mod tests;

pub use finish::Finished;
pub use vm::{SeriesId, VmState};

use crate::body::RequestBody;
use crate::config::Config;
use crate::host::{Attributes, HeaderList, Headers};
use crate::json_edit::with_include_usage;
use crate::policy::{Attribution, Decision};
use crate::provider::{ApiFamily, ModelCall};
use crate::reject::LocalReply;
use crate::request::{plan_request, Inbound, RequestPlan};
use crate::response::ResponseUsage;
use std::rc::Rc;

/// Whether the stream goes on after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop here: Envoy buffers the body (request body) or waits (after a local reply).
    Pause,
}

/// Something the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    RemoveRequestHeader(String),
    SetRequestHeader(String, String),
    SetResponseHeader(String, String),
    /// Replace the first `len` bytes of the request body Envoy holds with `with`.
    ReplaceRequestBody {
        len: usize,
        with: Vec<u8>,
    },
    /// Answer the client instead of forwarding.
    LocalReply(LocalReply),
}

/// The answer to one callback.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Step {
    pub effects: Vec<Effect>,
    pub flow: Flow,
}

impl Step {
    /// Nothing to do; go on.
    pub fn proceed() -> Step {
        Step {
            effects: Vec::new(),
            flow: Flow::Continue,
        }
    }

    fn pause() -> Step {
        Step {
            effects: Vec::new(),
            flow: Flow::Pause,
        }
    }

    fn with(effects: Vec<Effect>) -> Step {
        Step {
            effects,
            flow: Flow::Continue,
        }
    }

    fn reject(reply: LocalReply) -> Step {
        Step {
            effects: vec![Effect::LocalReply(reply)],
            flow: Flow::Pause,
        }
    }
}

/// Whether the request is signed with AWS Signature Version 4 over its `accept-encoding`: changing
/// that header would break the signature, so such an answer is decoded instead.
fn signs_accept_encoding(headers: &Headers) -> bool {
    crate::host::header_text(headers, "authorization").is_some_and(|auth| {
        let auth = auth.trim_start();
        auth.get(..16)
            .is_some_and(|s| s.eq_ignore_ascii_case("AWS4-HMAC-SHA256"))
            && auth
                .split(',')
                .filter_map(|p| p.trim().strip_prefix("SignedHeaders="))
                .any(|list| list.split(';').any(|h| h.eq_ignore_ascii_case("accept-encoding")))
    })
}

/// Where the request is in its life.
#[derive(Debug)]
enum Phase {
    /// The headers went on; the body is held until a `body:` source attributes the call.
    Deciding { held: HeaderList, sources_seen: usize },
    /// Forwarded upstream (or about to be).
    Forwarded,
    /// Answered with a local reply.
    Rejected,
}

/// One AI event: a model call, from its request headers to the access log.
#[derive(Debug)]
pub struct Call {
    cfg: Rc<Config>,
    model: ModelCall,
    correlation_id: String,
    /// The downstream peer is in `header_trust.peers`.
    trusted_peer: bool,
    request_id: Option<String>,
    method: String,
    attribution: Attribution,
    phase: Phase,
    /// The decision was taken on body fields; `finish` re-reads the whole body's values.
    decided_on_body: bool,
    body: Option<RequestBody>,
    /// Bytes of the request body fed so far.
    body_fed: usize,
    /// `usage.force_stream_usage`: the request body held so far, until it can be given
    /// `stream_options.include_usage` (a model server reads the whole request before it answers,
    /// so holding it costs no latency). `None` once released.
    usage_hold: Option<Vec<u8>>,
    /// The request headers, kept while a `body:` source may still fill a dimension.
    headers_for_body: Option<HeaderList>,
    response: Option<ResponseUsage>,
}

impl Call {
    #[allow(clippy::too_many_arguments)]
    fn from_plan(
        cfg: &Rc<Config>,
        model: ModelCall,
        headers: &Headers,
        end_of_stream: bool,
        plan: RequestPlan,
        trusted_peer: bool,
        request_id: Option<String>,
        method: String,
    ) -> (Call, Step) {
        let wants_body = !end_of_stream
            && (model.path_model.is_none() || cfg.usage_enabled || cfg.needs_body || cfg.force_stream_usage);
        let mut call = Call {
            cfg: cfg.clone(),
            model,
            correlation_id: plan.correlation_id.clone(),
            trusted_peer,
            request_id,
            method,
            attribution: plan.attribution.clone(),
            phase: Phase::Forwarded,
            decided_on_body: false,
            body: wants_body.then(|| RequestBody::new(cfg)),
            body_fed: 0,
            usage_hold: None,
            headers_for_body: None,
            response: None,
        };
        let mut effects = plan.header_edits();
        if cfg.needs_body && !end_of_stream {
            call.headers_for_body = Some(headers.to_vec());
        }
        if cfg.needs_body && !end_of_stream && crate::request::waits_for_body(cfg, &plan.attribution) {
            call.phase = Phase::Deciding {
                held: headers.to_vec(),
                sources_seen: 0,
            };
            return (call, Step::with(effects));
        }
        if let Some(reply) = plan.reject {
            call.phase = Phase::Rejected;
            return (call, Step::reject(reply));
        }
        if cfg.usage_enabled && cfg.request_identity_encoding && !signs_accept_encoding(headers) {
            // An uncompressed answer can be read as it passes; the client, which asked for
            // compression, may always be answered uncompressed (RFC 9110 §12.5.3).
            effects.push(Effect::SetRequestHeader(
                "accept-encoding".to_string(),
                "identity".to_string(),
            ));
        }
        if cfg.force_stream_usage
            && !end_of_stream
            && call.model.family == ApiFamily::OpenAiChat
            && matches!(call.model.operation.as_str(), "chat" | "text_completion")
        {
            // The body may grow: drop content-length before any body byte is forwarded.
            effects.push(Effect::RemoveRequestHeader("content-length".to_string()));
            call.usage_hold = Some(Vec::new());
        }
        (call, Step::with(effects))
    }

    /// Whether the core reads request body bytes (the glue skips the host call otherwise).
    pub fn wants_request_body(&self) -> bool {
        match &self.phase {
            Phase::Deciding { .. } => true,
            Phase::Rejected => false,
            Phase::Forwarded => self.usage_hold.is_some() || self.body.as_ref().is_some_and(|b| !b.finished()),
        }
    }

    /// The next request-body bytes (only those not fed before) and whether the body ends here.
    pub fn on_request_body(&mut self, chunk: &[u8], end_of_stream: bool, host: &mut dyn Attributes) -> Step {
        if let Some(body) = self.body.as_mut() {
            body.feed(chunk);
        }
        self.body_fed = self.body_fed.saturating_add(chunk.len());
        match &mut self.phase {
            Phase::Rejected => Step::pause(),
            Phase::Forwarded => self.usage_hold_step(chunk, end_of_stream),
            Phase::Deciding { held, sources_seen } => {
                // Decide once the body can say no more, or as soon as what it said attributes the call.
                let found = self.body.as_ref().map_or(0, RequestBody::sources_found);
                let complete = end_of_stream
                    || self.body.as_ref().is_none_or(RequestBody::finished)
                    || self.body_fed >= self.cfg.body_decision_bytes;
                if !complete && found == *sources_seen {
                    return Step::pause();
                }
                *sources_seen = found;
                let plan = plan_request(
                    &self.cfg,
                    &Inbound {
                        headers: held,
                        trusted_peer: self.trusted_peer,
                        call: &self.model,
                    },
                    host,
                    self.body.as_ref(),
                    self.correlation_id.clone(),
                );
                if !complete && plan.attribution.decision != Decision::Attributed {
                    return Step::pause();
                }
                self.attribution = plan.attribution;
                self.decided_on_body = true;
                match plan.reject {
                    Some(reply) => {
                        self.phase = Phase::Rejected;
                        Step::reject(reply)
                    }
                    None => {
                        self.phase = Phase::Forwarded;
                        Step::proceed()
                    }
                }
            }
        }
    }

    /// `force_stream_usage`: holds the body until it is complete, then gives a streaming request
    /// `stream_options.include_usage: true` and lets it go. A body that outgrows
    /// `limits.body_decision_bytes` goes on as it is.
    fn usage_hold_step(&mut self, chunk: &[u8], end_of_stream: bool) -> Step {
        let Some(held) = self.usage_hold.as_mut() else {
            return Step::proceed();
        };
        held.extend_from_slice(chunk);
        let complete = end_of_stream || self.body.as_ref().is_none_or(RequestBody::finished);
        if !complete {
            if held.len() >= self.cfg.body_decision_bytes {
                self.usage_hold = None;
                return Step::proceed();
            }
            return Step::pause();
        }
        let held = self.usage_hold.take().unwrap_or_default();
        let streams = self.body.as_ref().is_some_and(|b| b.stream() == Some(true));
        match streams.then(|| with_include_usage(&held)).flatten() {
            Some(with) => Step::with(vec![Effect::ReplaceRequestBody { len: held.len(), with }]),
            None => Step::proceed(),
        }
    }

    /// The response headers (of the upstream's answer, or of a local reply).
    pub fn on_response_headers(&mut self, headers: &Headers, end_of_stream: bool) -> Step {
        let set_id = Effect::SetResponseHeader(self.cfg.correlation_header.clone(), self.correlation_id.clone());
        if self.cfg.usage_enabled && matches!(self.phase, Phase::Forwarded) {
            self.response = Some(ResponseUsage::start(self.model.family, headers, end_of_stream));
        }
        Step::with(vec![set_id])
    }

    /// Whether the core reads response body bytes.
    pub fn wants_response_body(&self) -> bool {
        self.response.as_ref().is_some_and(ResponseUsage::wants_body)
    }

    /// The next response-body chunk, as it passes (never held back).
    pub fn on_response_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Step {
        if let Some(response) = self.response.as_mut() {
            response.feed(chunk, end_of_stream);
        }
        Step::proceed()
    }

    /// The call's correlation ID.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// The decision so far.
    pub fn decision(&self) -> Decision {
        self.attribution.decision
    }
}
