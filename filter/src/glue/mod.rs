//! The proxy-wasm glue: translates Envoy's callbacks into the core's [`Call`] events and carries
//! out the [`Step`]s it answers with. It decides nothing.

mod host;

use crate::call::{Call, Effect, Flow, Step, VmState};
use crate::config::Config;
use crate::correlation::fallback_seed;
use crate::quota::{CheckAnswer, METHOD as QUOTA_METHOD, SERVICE as QUOTA_SERVICE};
use crate::record::{FILTER_VERSION, STRUCT_PROPERTY};
use crate::reject::RESPONSE_CODE_DETAILS;
use host::Envoy;
use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    host::install_logger();
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, config: None, vm: None }) });
}}

struct Root {
    id: u32,
    config: Option<Rc<Config>>,
    vm: Option<Rc<RefCell<VmState>>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        info!("ai-attribution {FILTER_VERSION} starting");
        let read = host::buffer(BufferType::PluginConfiguration, 0, usize::MAX).map_err(|e| e.0);
        // The VM's environment (vm_config.environment_variables): where secrets such as the
        // pseudonymisation key come from, never the plugin configuration.
        let env = |name: &str| std::env::var(name).ok();
        let config = match Config::from_host_read(read, &env) {
            Ok(config) => config,
            Err(e) => {
                error!("invalid ai-attribution configuration: {e}");
                return false;
            }
        };
        if let Err(e) = host::declare_struct_property(STRUCT_PROPERTY) {
            warn!("cannot declare the structured record as a Struct ({e}); TYPED access logs will show bytes");
        }
        let seed = host::random_seed().unwrap_or_else(|| {
            warn!("the host gave no entropy; correlation IDs are seeded from the clock");
            fallback_seed(host::clock_nanos(), self.id)
        });
        self.vm = Some(Rc::new(RefCell::new(VmState::new(seed, config.max_label_values))));
        self.config = Some(Rc::new(config));
        true
    }

    fn create_http_context(&self, id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            id,
            root_id: self.id,
            config: self.config.clone()?,
            vm: self.vm.clone()?,
            call: None,
            held_request_bytes: None,
            quota_token: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream; `call` stays `None` for requests that are not AI events.
struct Stream {
    id: u32,
    root_id: u32,
    config: Rc<Config>,
    vm: Rc<RefCell<VmState>>,
    call: Option<Call>,
    /// While the request body is held, how much of Envoy's buffer the core has already seen.
    held_request_bytes: Option<usize>,
    /// The quota check in flight.
    quota_token: Option<u32>,
}

impl Context for Stream {
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        if self.quota_token != Some(token) {
            return;
        }
        self.quota_token = None;
        let answer = match (status, host::buffer(BufferType::GrpcReceiveBuffer, 0, size)) {
            (0, Ok(bytes)) => CheckAnswer::Answer(bytes),
            _ => CheckAnswer::Failed,
        };
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let step = call.on_quota_answer(&answer);
        if self.carry_out(step) == Action::Continue {
            if let Err(e) = host::resume_request() {
                warn!("cannot resume the request after the quota check: {e}");
            }
        }
    }
}

impl Stream {
    /// Carries out a step's effects; the flow becomes the callback's action. A quota check that
    /// cannot be sent is answered at once as failed.
    fn carry_out(&mut self, step: Step) -> Action {
        let mut flow = step.flow;
        for effect in step.effects {
            let Err(e) = self.carry_out_effect(&effect) else {
                continue;
            };
            // A failed local reply still pauses the stream: an unattributed call never goes on.
            warn!("cannot carry out {}: {e}", effect.what());
            if let (Effect::CheckQuota { .. }, Some(call)) = (&effect, self.call.as_mut()) {
                let next = call.on_quota_answer(&CheckAnswer::Failed);
                flow = match self.carry_out(next) {
                    Action::Continue => Flow::Continue,
                    _ => Flow::Pause,
                };
            }
        }
        match flow {
            Flow::Continue => Action::Continue,
            Flow::Pause => Action::Pause,
        }
    }

    fn carry_out_effect(&mut self, effect: &Effect) -> Result<(), host::HostError> {
        match effect {
            Effect::RemoveRequestHeader(name) => host::remove_request_header(name),
            Effect::SetRequestHeader(name, value) => host::set_request_header(name, value),
            Effect::SetResponseHeader(name, value) => host::set_response_header(name, value),
            Effect::ReplaceRequestBody { len, with } => host::set_buffer(BufferType::HttpRequestBody, 0, *len, with),
            Effect::LocalReply(reply) => {
                let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                host::send_local_response(reply.status, RESPONSE_CODE_DETAILS, reply.body.as_bytes(), &headers)
            }
            Effect::SetFilterState(key, value) => host::set_property(key, value.as_bytes()),
            Effect::CheckQuota {
                cluster,
                message,
                timeout_ms,
            } => {
                // Through the SDK, whose dispatcher then routes the answer to this stream.
                let timeout = Duration::from_millis(*timeout_ms);
                let sent =
                    self.dispatch_grpc_call(cluster, QUOTA_SERVICE, QUOTA_METHOD, Vec::new(), Some(message), timeout);
                sent.map(|token| self.quota_token = Some(token))
                    .map_err(|status| host::HostError(status as u32))
            }
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let raw = host::request_headers();
        let headers = match raw.as_deref().map_err(|e| *e).and_then(host::header_view) {
            Ok(h) => h,
            Err(e) => {
                error!("cannot read the request headers ({e}); the request is answered 500");
                return self.carry_out(Call::unreadable_request());
            }
        };
        let (call, step) = Call::start(
            &self.config,
            &headers,
            end_of_stream,
            &mut Envoy,
            &mut self.vm.borrow_mut(),
        );
        self.call = call;
        self.carry_out(step)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(call) = self.call.as_mut() else {
            return Action::Continue;
        };
        if !call.wants_request_body() {
            return Action::Continue;
        }
        // While the body is held, `body_size` counts everything Envoy buffered so far.
        let start = self.held_request_bytes.unwrap_or(0);
        let chunk =
            host::buffer(BufferType::HttpRequestBody, start, body_size.saturating_sub(start)).unwrap_or_default();
        let step = call.on_request_body(&chunk, end_of_stream, &mut Envoy);
        self.held_request_bytes = (step.flow == Flow::Pause).then_some(body_size);
        self.carry_out(step)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(call) = self.call.as_mut() else {
            return Action::Continue;
        };
        let raw = host::response_headers().unwrap_or_default();
        let headers = host::header_view(&raw).unwrap_or_default();
        let step = call.on_response_headers(&headers, end_of_stream);
        self.carry_out(step)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(call) = self.call.as_mut().filter(|c| c.wants_response_body()) else {
            return Action::Continue;
        };
        let chunk = if body_size > 0 {
            host::buffer(BufferType::HttpResponseBody, 0, body_size).unwrap_or_default()
        } else {
            Vec::new()
        };
        let step = call.on_response_body(&chunk, end_of_stream);
        self.carry_out(step)
    }

    fn on_log(&mut self) {
        let Some(call) = self.call.take() else {
            return;
        };
        let mut vm = self.vm.borrow_mut();
        let finished = call.finish(&mut Envoy, &mut vm);
        for (key, value) in finished.scalars() {
            if let Err(e) = host::set_property(&key, value.as_bytes()) {
                warn!("cannot write record key {key}: {e}");
            }
        }
        if let Err(e) = host::set_property(STRUCT_PROPERTY, &finished.structured) {
            warn!("cannot write the structured record: {e}");
        }
        for (series, by) in finished.counts {
            let Some(id) = vm.host_metric_id(series, |name| {
                host::define_counter(name)
                    .map_err(|e| warn!("cannot define metric {name}: {e}"))
                    .ok()
            }) else {
                continue;
            };
            if let Err(e) = host::increment(id, i64::try_from(by).unwrap_or(i64::MAX)) {
                warn!("cannot increment a metric: {e}");
            }
        }
        if let Some(r) = finished.quota_report {
            if let Err(e) = host::report_quota(self.root_id, self.id, &r.cluster, &r.message, r.timeout_ms) {
                warn!(
                    "cannot report usage to the rate-limit service on cluster {}: {e}",
                    r.cluster
                );
            }
        }
    }
}
