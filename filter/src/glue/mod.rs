//! The proxy-wasm glue: translates Envoy's callbacks into the core's [`Call`] events and carries
//! out the [`Step`]s it answers with. It decides nothing.

mod host;

use crate::call::{Call, Effect, Flow, SeriesId, Step, VmState};
use crate::config::Config;
use crate::correlation::fallback_seed;
use crate::host::Attributes;
use crate::record::STRUCT_PROPERTY;
use crate::reject::RESPONSE_CODE_DETAILS;
use log::{error, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType};
use std::cell::RefCell;
use std::rc::Rc;

proxy_wasm::main! {{
    host::install_logger();
    std::panic::set_hook(Box::new(|info| {
        host::log_critical(&format!("ai-attribution panicked, the VM is now unusable: {info}"));
    }));
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, config: None, vm: None }) });
}}

/// What every stream of a VM shares: the core's per-VM state and the host's metric ids.
struct Shared {
    state: VmState,
    /// Host metric id of each series, once defined.
    metric_ids: Vec<Option<u32>>,
}

struct Root {
    id: u32,
    config: Option<Rc<Config>>,
    vm: Option<Rc<RefCell<Shared>>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let read = host::buffer(BufferType::PluginConfiguration, 0, usize::MAX).map_err(|e| e.0);
        let config = match Config::from_host_read(read) {
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
        let state = VmState::new(seed, config.max_label_values);
        self.vm = Some(Rc::new(RefCell::new(Shared {
            state,
            metric_ids: Vec::new(),
        })));
        self.config = Some(Rc::new(config));
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            config: self.config.clone()?,
            vm: self.vm.clone()?,
            call: None,
            held_request_bytes: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Envoy attributes through the host boundary.
struct HostAttributes;

impl Attributes for HostAttributes {
    fn property(&mut self, path: &[&str]) -> Option<Vec<u8>> {
        host::property(path)
    }
}

/// One HTTP stream; `call` stays `None` for requests that are not AI events.
struct Stream {
    config: Rc<Config>,
    vm: Rc<RefCell<Shared>>,
    call: Option<Call>,
    /// While the request body is held, how much of Envoy's buffer the core has already seen.
    held_request_bytes: Option<usize>,
}

impl Context for Stream {}

/// Carries out a step's effects; the flow becomes the callback's action.
fn carry_out(step: Step) -> Action {
    for effect in step.effects {
        let result = match &effect {
            Effect::RemoveRequestHeader(name) => host::remove_request_header(name),
            Effect::SetRequestHeader(name, value) => host::set_request_header(name, value),
            Effect::SetResponseHeader(name, value) => host::set_response_header(name, value),
            Effect::ReplaceRequestBody { len, with } => host::set_buffer(BufferType::HttpRequestBody, 0, *len, with),
            Effect::LocalReply(reply) => {
                let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                host::send_local_response(reply.status, RESPONSE_CODE_DETAILS, reply.body.as_bytes(), &headers)
            }
        };
        if let Err(e) = result {
            // A failed local reply still pauses the stream: an unattributed call never goes on.
            warn!("cannot carry out {}: {e}", effect_name(&effect));
        }
    }
    match step.flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

fn effect_name(effect: &Effect) -> &'static str {
    match effect {
        Effect::RemoveRequestHeader(_) => "a request header removal",
        Effect::SetRequestHeader(..) => "a request header",
        Effect::SetResponseHeader(..) => "a response header",
        Effect::ReplaceRequestBody { .. } => "a request body rewrite",
        Effect::LocalReply(_) => "the local reply",
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let headers = match host::request_headers() {
            Ok(h) => h,
            Err(e) => {
                error!("cannot read the request headers ({e}); the request is answered 500");
                let _ = host::send_local_response(500, RESPONSE_CODE_DETAILS, b"", &[]);
                return Action::Pause;
            }
        };
        let mut vm = self.vm.borrow_mut();
        let (call, step) = Call::start(
            &self.config,
            &headers,
            end_of_stream,
            &mut HostAttributes,
            &mut vm.state,
        );
        self.call = call;
        carry_out(step)
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
        let step = call.on_request_body(&chunk, end_of_stream, &mut HostAttributes);
        self.held_request_bytes = (step.flow == Flow::Pause).then_some(body_size);
        carry_out(step)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(call) = self.call.as_mut() else {
            return Action::Continue;
        };
        let headers = host::response_headers().unwrap_or_default();
        carry_out(call.on_response_headers(&headers, end_of_stream))
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
        carry_out(call.on_response_body(&chunk, end_of_stream))
    }

    fn on_log(&mut self) {
        let Some(call) = self.call.take() else {
            return;
        };
        let mut vm = self.vm.borrow_mut();
        let finished = call.finish(&mut HostAttributes, &mut vm.state);
        for (key, value) in &finished.scalars {
            if let Err(e) = host::set_property(key, value.as_bytes()) {
                warn!("cannot write record key {key}: {e}");
            }
        }
        if let Err(e) = host::set_property(STRUCT_PROPERTY, &finished.structured) {
            warn!("cannot write the structured record: {e}");
        }
        for (series, by) in finished.counts {
            vm.count(series, by);
        }
    }
}

impl Shared {
    /// Adds to a series' counter, defining it on the host the first time.
    fn count(&mut self, series: SeriesId, by: u64) {
        let slot = series as usize;
        if self.metric_ids.len() <= slot {
            self.metric_ids.resize(slot + 1, None);
        }
        let id = match self.metric_ids.get(slot).copied().flatten() {
            Some(id) => id,
            None => {
                let Some(name) = self.state.series_name(series) else {
                    return;
                };
                match host::define_counter(name) {
                    Ok(id) => {
                        if let Some(s) = self.metric_ids.get_mut(slot) {
                            *s = Some(id);
                        }
                        id
                    }
                    Err(e) => {
                        warn!("cannot define metric {name}: {e}");
                        return;
                    }
                }
            }
        };
        if let Err(e) = host::increment(id, i64::try_from(by).unwrap_or(i64::MAX)) {
            warn!("cannot increment a metric: {e}");
        }
    }
}
