//! The request headers of every request: spoofed attribution headers are stripped whatever the
//! request is, and an AI event starts a [`Call`].

use super::tool::ToolCall;
use super::{Call, Effect, Phase, Step, VmState};
use crate::body::RequestBody;
use crate::config::Config;
use crate::host::{header_text, Attributes, Headers};
use crate::mcp::trace_id;
use crate::provider::{is_mcp_target, mcp_call, recognize_target, RequestTarget};
use crate::reject::LocalReply;
use crate::request::{correlation_id, plan_request, spoofed_header_edits, trusted_peer, Inbound, RequestPlan};
use std::rc::Rc;

impl Call {
    /// The step for a request whose headers the host could not hand over: nothing can be
    /// attributed, so it is answered 500 and never forwarded.
    pub fn unreadable_request() -> Step {
        Step::reject(LocalReply {
            status: 500,
            headers: Vec::new(),
            body: String::new(),
        })
    }

    /// Handles a request's headers. Returns the call when the request is an AI event; either way
    /// the step strips spoofed attribution headers sent by an untrusted peer.
    pub fn start(
        cfg: &Rc<Config>,
        headers: &Headers,
        end_of_stream: bool,
        host: &mut dyn Attributes,
        vm: &mut VmState,
    ) -> (Option<Call>, Step) {
        let target = RequestTarget::of(headers);
        let (model, tool) = if is_mcp_target(cfg, &target) {
            (mcp_call(), Some(Box::new(ToolCall::new(headers))))
        } else if let Some(model) = recognize_target(cfg, &target) {
            (model, None)
        } else {
            let edits = spoofed_header_edits(cfg, headers, host);
            return (None, Step::with(edits));
        };
        let trusted_peer = trusted_peer(cfg, host);
        let correlation_id = correlation_id(cfg, headers, trusted_peer, &mut || vm.new_id());
        let has_body = !end_of_stream;
        let wants_body = has_body
            && (tool.is_some()
                || model.path_model.is_none()
                || cfg.usage_enabled
                || cfg.needs_body
                || cfg.force_stream_usage);
        // A tool call's body is read by its own reader; the model-call reader only serves `body:` sources.
        let wants_body = wants_body && (tool.is_none() || cfg.needs_body);
        let inbound = Inbound {
            headers,
            trusted_peer,
            call: &model,
            require: if tool.is_some() { &cfg.mcp.require } else { &cfg.require },
        };
        let plan = plan_request(cfg, &inbound, host, None, correlation_id.clone());
        let edits = plan.header_edits();
        let mut call = Call {
            cfg: cfg.clone(),
            model,
            tool,
            has_body,
            correlation_id,
            trusted_peer,
            request_id: header_text(headers, "x-request-id").map(str::to_string),
            method: header_text(headers, ":method").unwrap_or("POST").to_string(),
            trace_id: header_text(headers, "traceparent").and_then(trace_id),
            peer_spiffe_id: if cfg.exceptions.is_empty() {
                None
            } else {
                crate::request::peer_spiffe_id(host)
            },
            // Only dated exceptions read the clock (a host call otherwise spent on every call).
            now: if cfg.exceptions.is_empty() {
                0
            } else {
                host.now_unix_seconds().unwrap_or(0)
            },
            quota: Default::default(),
            attribution: plan.attribution,
            phase: Phase::Forwarded,
            decided_on_body: false,
            body: wants_body.then(|| RequestBody::new(cfg)),
            body_fed: 0,
            usage_hold: None,
            headers_for_body: None,
            response: None,
        };
        let step = call.open(headers, edits);
        (Some(call), step)
    }
}

impl RequestPlan {
    /// The plan's header edits as effects: removals first, then the headers it sets.
    pub(super) fn header_edits(&self) -> Vec<Effect> {
        let mut out: Vec<Effect> = self
            .remove
            .iter()
            .map(|n| Effect::RemoveRequestHeader(n.clone()))
            .collect();
        out.extend(
            self.set
                .iter()
                .map(|(n, v)| Effect::SetRequestHeader(n.clone(), v.clone())),
        );
        out
    }
}
