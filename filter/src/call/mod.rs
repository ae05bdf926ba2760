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
mod quota;
mod start;
mod tool;
mod vm;

#[cfg(test)]
mod tests;

pub use finish::Finished;
pub use quota::QuotaReport;
pub use vm::{SeriesId, VmState};

use crate::body::RequestBody;
use crate::config::Config;
use crate::host::{to_list, view, Attributes, HeaderList, Headers};
use crate::json_edit::with_include_usage;
use crate::policy::{Attribution, Decision};
use crate::provider::{ApiFamily, ModelCall};
use crate::reject::{header_mismatch_reply, rejection, tool_rejection, LocalReply};
use crate::request::{plan_request, waits_for_body, Inbound};
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
    /// Ask the rate-limit service (`ShouldRateLimit` on `cluster`) about the call's budgets; the
    /// call is paused until [`Call::on_quota_answer`].
    CheckQuota {
        cluster: String,
        message: Vec<u8>,
        timeout_ms: u64,
    },
    /// Write a filter-state key (without the `wasm.` prefix), for Envoy's own filters to read.
    SetFilterState(String, String),
}

impl Effect {
    /// What the effect does, for the host's log when it cannot be carried out.
    pub fn what(&self) -> &'static str {
        match self {
            Effect::RemoveRequestHeader(_) => "a request header removal",
            Effect::SetRequestHeader(..) => "a request header",
            Effect::SetResponseHeader(..) => "a response header",
            Effect::ReplaceRequestBody { .. } => "a request body rewrite",
            Effect::LocalReply(_) => "the local reply",
            Effect::SetFilterState(..) => "a filter-state key",
            Effect::CheckQuota { .. } => "the quota check",
        }
    }
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

/// One AI event (a model call, or an agent's tool call to an MCP endpoint), from its request
/// headers to the access log.
#[derive(Debug)]
pub struct Call {
    cfg: Rc<Config>,
    model: ModelCall,
    /// The MCP side, for a tool call.
    tool: Option<Box<tool::ToolCall>>,
    /// The request has a body (it did not end with its headers).
    has_body: bool,
    /// The W3C trace ID of the inbound `traceparent`.
    trace_id: Option<String>,
    /// The downstream mTLS peer's SPIFFE ID (for exceptions that name it).
    peer_spiffe_id: Option<String>,
    /// When the request arrived, Unix seconds (for exceptions' `until`); 0 if the host did not say.
    now: u64,
    quota: quota::QuotaStep,
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
    /// The alternatives this call must satisfy: `mcp.require` for a tool call.
    fn require(&self) -> &[Vec<usize>] {
        if self.tool.is_some() {
            &self.cfg.mcp.require
        } else {
            &self.cfg.require
        }
    }

    /// The request as the planner sees it.
    fn inbound<'a>(&'a self, headers: &'a Headers) -> Inbound<'a> {
        Inbound {
            headers,
            trusted_peer: self.trusted_peer,
            call: &self.model,
            require: self.require(),
        }
    }

    /// Settles the decision just taken: a tool call that is not required to be attributed (see
    /// `ToolCall::required`; unknown counts as required) is exempt instead of refused.
    fn settle(&mut self) {
        if let Some(tool) = &self.tool {
            let refused = matches!(self.attribution.decision, Decision::Rejected | Decision::WouldReject);
            if refused && tool.required(&self.cfg, self.has_body) == Some(false) {
                self.attribution.decision = Decision::Exempt;
            }
        }
    }

    /// The local reply for the decision taken, if the call may not go on.
    fn refusal(&mut self) -> Option<LocalReply> {
        let cfg = &self.cfg;
        if self.attribution.decision == Decision::Rejected {
            return Some(match &self.tool {
                Some(tool) => tool_rejection(
                    cfg,
                    &self.attribution,
                    &self.correlation_id,
                    &tool.ids(),
                    tool.is_batch(),
                ),
                None => rejection(cfg, &self.model, &self.attribution, &self.correlation_id),
            });
        }
        let tool = self.tool.as_mut()?;
        if cfg.mcp.reject_header_mismatch && tool.header_mismatch() {
            tool.answered_mismatch = true;
            return Some(header_mismatch_reply(
                cfg,
                &self.correlation_id,
                &tool.ids(),
                tool.is_batch(),
            ));
        }
        None
    }

    /// The request headers arrived and the decision on them was taken, with `effects` to edit
    /// them: the first step.
    fn open(&mut self, headers: &Headers, mut effects: Vec<Effect>) -> Step {
        let cfg = self.cfg.clone();
        let end_of_stream = !self.has_body;
        if cfg.needs_body && !end_of_stream {
            self.headers_for_body = Some(to_list(headers));
        }
        // A model call's decision waits for the body only for a `body:` source that could still
        // attribute it; a tool call's also for its JSON-RPC method, which says whether it must be
        // attributed, unless the headers attribute it already (and the mirrored headers need not
        // be checked against the body before it goes on).
        // A budget that counts per model waits for the model the body names.
        let attributed = self.attribution.decision == Decision::Attributed;
        let waits = !end_of_stream
            && match &self.tool {
                Some(tool) => !attributed || (cfg.mcp.reject_header_mismatch && tool.mirrors_headers()),
                None => {
                    (cfg.needs_body && waits_for_body(&cfg, self.require(), &self.attribution))
                        || (attributed && self.quota_needs_model())
                }
            };
        if !waits {
            self.settle();
        }
        let reads_answer = cfg.usage_enabled || self.tool.is_some();
        if reads_answer && cfg.request_identity_encoding && !signs_accept_encoding(headers) {
            // An uncompressed answer can be read as it passes; the client, which asked for
            // compression, may always be answered uncompressed (RFC 9110 §12.5.3). Set now: the
            // headers go on even when the decision waits for the body.
            effects.push(Effect::SetRequestHeader(
                "accept-encoding".to_string(),
                "identity".to_string(),
            ));
        }
        if cfg.force_stream_usage
            && !end_of_stream
            && self.tool.is_none()
            && self.model.family == ApiFamily::OpenAiChat
            && matches!(self.model.operation.as_str(), "chat" | "text_completion")
            && (waits || self.attribution.decision != Decision::Rejected)
        {
            // The body may grow: drop content-length before any body byte is forwarded.
            effects.push(Effect::RemoveRequestHeader("content-length".to_string()));
            self.usage_hold = Some(Vec::new());
        }
        if waits {
            self.phase = Phase::Deciding {
                held: to_list(headers),
                sources_seen: 0,
            };
            return Step::with(effects);
        }
        if let Some(reply) = self.refusal() {
            self.phase = Phase::Rejected;
            return Step::reject(reply);
        }
        effects.extend(self.quota_key_effects());
        if self.usage_hold.is_some() {
            // The budgets are checked when the held body is released.
            return Step::with(effects);
        }
        self.quota_gate(effects)
    }

    /// Whether the core reads request body bytes (the glue skips the host call otherwise). While
    /// the budget check is in flight, every body callback must be answered (and held): one the
    /// glue let go would release the request before the rate-limit service has answered.
    pub fn wants_request_body(&self) -> bool {
        match &self.phase {
            Phase::Deciding { .. } => true,
            Phase::Rejected => false,
            Phase::Forwarded => {
                self.quota.checking
                    || self.usage_hold.is_some()
                    || self.body.as_ref().is_some_and(|b| !b.finished())
                    || self.tool.as_ref().is_some_and(|t| !t.request_read())
            }
        }
    }

    /// The next request-body bytes (only those not fed before) and whether the body ends here.
    pub fn on_request_body(&mut self, chunk: &[u8], end_of_stream: bool, host: &mut dyn Attributes) -> Step {
        if let Some(body) = self.body.as_mut() {
            body.feed(chunk);
        }
        if let Some(tool) = self.tool.as_mut() {
            tool.feed_request(chunk);
        }
        if let Some(held) = self.usage_hold.as_mut() {
            held.extend_from_slice(chunk);
        }
        self.body_fed = self.body_fed.saturating_add(chunk.len());
        match &self.phase {
            Phase::Rejected => Step::pause(),
            // Envoy keeps buffering while the rate-limit service has not answered.
            Phase::Forwarded if self.quota.checking => Step::pause(),
            Phase::Forwarded => self.usage_hold_step(end_of_stream),
            Phase::Deciding { .. } => self.deciding_step(end_of_stream, host),
        }
    }

    /// The body held for the decision grew. A model call is decided once the body can say no
    /// more, or as soon as what it said attributes the call. A tool call once its method is read
    /// (whole, when mirrored headers are to be checked), and, when that method must be
    /// attributed, `body:` sources have had their say.
    fn deciding_step(&mut self, end_of_stream: bool, host: &mut dyn Attributes) -> Step {
        let Phase::Deciding { held, sources_seen } = &self.phase else {
            return Step::proceed();
        };
        let found = self.body.as_ref().map_or(0, RequestBody::sources_found);
        let body_read = self.body.as_ref().is_none_or(RequestBody::finished);
        let out_of_body = end_of_stream || self.body_fed >= self.cfg.body_decision_bytes;
        let complete = match &self.tool {
            None if !out_of_body && !body_read && self.quota_needs_model() => {
                // A budget counts per model: the decision waits for the body's model.
                return Step::pause();
            }
            None => out_of_body || body_read,
            Some(tool) => {
                let required = tool.required(&self.cfg, self.has_body);
                let checks_headers = self.cfg.mcp.reject_header_mismatch && tool.mirrors_headers();
                if !out_of_body && (required.is_none() || (checks_headers && !tool.request_read())) {
                    return Step::pause();
                }
                out_of_body || body_read || required == Some(false)
            }
        };
        let decided_on_headers = self.tool.is_none() && self.attribution.decision == Decision::Attributed;
        if !complete && self.tool.is_none() && found == *sources_seen && !decided_on_headers {
            return Step::pause();
        }
        let plan = plan_request(
            &self.cfg,
            &self.inbound(&view(held)),
            host,
            self.body.as_ref(),
            self.correlation_id.clone(),
        );
        if let Phase::Deciding { sources_seen, .. } = &mut self.phase {
            *sources_seen = found;
        }
        if !complete && plan.attribution.decision != Decision::Attributed {
            return Step::pause();
        }
        self.attribution = plan.attribution;
        self.settle();
        self.decided_on_body = true;
        if let Some(reply) = self.refusal() {
            self.phase = Phase::Rejected;
            return Step::reject(reply);
        }
        self.phase = Phase::Forwarded;
        let effects = self.quota_key_effects();
        if self.usage_hold.is_some() {
            let mut step = self.usage_hold_step(end_of_stream);
            step.effects.splice(0..0, effects);
            return step;
        }
        self.quota_gate(effects)
    }

    /// `force_stream_usage`: holds the body (every byte fed so far) until it is complete, then
    /// gives a streaming request `stream_options.include_usage: true` and lets it go, through the
    /// quota check. A body that outgrows `limits.body_decision_bytes` goes on as it is.
    fn usage_hold_step(&mut self, end_of_stream: bool) -> Step {
        let Some(held) = self.usage_hold.as_ref() else {
            return Step::proceed();
        };
        let complete = end_of_stream || self.body.as_ref().is_none_or(RequestBody::finished);
        if !complete {
            if held.len() >= self.cfg.body_decision_bytes {
                self.usage_hold = None;
                return self.quota_gate(Vec::new());
            }
            return Step::pause();
        }
        let held = self.usage_hold.take().unwrap_or_default();
        let streams = self.body.as_ref().is_some_and(|b| b.stream() == Some(true));
        let effects = match streams.then(|| with_include_usage(&held)).flatten() {
            Some(with) => vec![Effect::ReplaceRequestBody { len: held.len(), with }],
            None => Vec::new(),
        };
        self.quota_gate(effects)
    }

    /// The request's model: from the path, else from the body read so far.
    fn request_model(&self) -> Option<String> {
        self.model
            .path_model
            .clone()
            .or_else(|| self.body.as_ref().and_then(RequestBody::model))
    }

    /// The response headers (of the upstream's answer, or of a local reply).
    pub fn on_response_headers(&mut self, headers: &Headers, end_of_stream: bool) -> Step {
        let set_id = Effect::SetResponseHeader(self.cfg.correlation_header.clone(), self.correlation_id.clone());
        if matches!(self.phase, Phase::Forwarded) {
            match self.tool.as_mut() {
                Some(tool) => tool.start_response(headers),
                None if self.cfg.usage_enabled => {
                    self.response = Some(ResponseUsage::start(self.model.family, headers, end_of_stream));
                }
                None => {}
            }
        }
        Step::with(vec![set_id])
    }

    /// Whether the core reads response body bytes.
    pub fn wants_response_body(&self) -> bool {
        self.response.as_ref().is_some_and(ResponseUsage::wants_body)
            || self.tool.as_ref().is_some_and(|t| t.wants_response_body())
    }

    /// The next response-body chunk, as it passes (never held back).
    pub fn on_response_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Step {
        if let Some(response) = self.response.as_mut() {
            response.feed(chunk, end_of_stream);
        }
        if let Some(tool) = self.tool.as_mut() {
            tool.feed_response(chunk, end_of_stream);
        }
        if end_of_stream || !self.wants_response_body() {
            return Step::with(self.quota_usage_effects());
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
