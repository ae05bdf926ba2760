//! The request headers of every request: spoofed attribution headers are stripped whatever the
//! request is, and an AI event starts a [`Call`].

use super::{Call, Effect, Step, VmState};
use crate::config::Config;
use crate::host::{header_text, Attributes, Headers};
use crate::provider::recognize_request;
use crate::request::{correlation_id, plan_request, spoofed_header_edits, trusted_peer, Inbound, RequestPlan};
use std::rc::Rc;

impl Call {
    /// Handles a request's headers. Returns the call when the request is an AI event; either way
    /// the step strips spoofed attribution headers sent by an untrusted peer.
    pub fn start(
        cfg: &Rc<Config>,
        headers: &Headers,
        end_of_stream: bool,
        host: &mut dyn Attributes,
        vm: &mut VmState,
    ) -> (Option<Call>, Step) {
        let Some(model) = recognize_request(cfg, headers) else {
            let edits = spoofed_header_edits(cfg, headers, host);
            return (None, Step::with(edits));
        };
        let trusted = trusted_peer(cfg, host);
        let id = correlation_id(cfg, headers, trusted, &mut || vm.new_id());
        let inbound = Inbound {
            headers,
            trusted_peer: trusted,
            call: &model,
        };
        let plan = plan_request(cfg, &inbound, host, None, id);
        let request_id = header_text(headers, "x-request-id").map(str::to_string);
        let method = header_text(headers, ":method").unwrap_or("POST").to_string();
        let (call, step) = Call::from_plan(cfg, model, headers, end_of_stream, plan, trusted, request_id, method);
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
