//! The proxy-wasm glue: thin callbacks that hand plain data to the core and carry out its plan.

mod host;

use crate::body::{inject_include_usage, RequestBody};
use crate::config::Config;
use crate::correlation::IdGenerator;
use crate::metrics::{requests_metric, tag_value, tokens_metric, LabelCaps, UNKNOWN};
use crate::policy::Decision;
use crate::provider::{recognize, ApiFamily, ModelCall};
use crate::record::{Record, UsageStatus, STRUCT_PROPERTY};
use crate::reject::RESPONSE_CODE_DETAILS;
use crate::request::{correlation_id, plan_request, waits_for_body, Properties, RequestPlan};
use crate::response::{cost_usd, tokens, ResponseUsage, BEDROCK_INPUT_HEADER, BEDROCK_OUTPUT_HEADER};
use log::{error, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        log::error!("ai-attribution panicked, the VM is now unusable: {info}");
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Per-VM state shared by every request: the compiled config and cached metric ids.
#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    shared: Rc<RefCell<Shared>>,
}

#[derive(Default)]
struct Shared {
    ids: Option<IdGenerator>,
    counters: HashMap<String, u32>,
    labels: LabelCaps,
}

impl Shared {
    fn new_id(&mut self) -> String {
        self.ids
            .get_or_insert_with(|| IdGenerator::new(host::random_seed()))
            .uuid()
    }

    /// Adds to a counter, defining it once and caching its id (a define per call leaks ids).
    fn count(&mut self, name: &str, by: u64) {
        let id = match self.counters.get(name) {
            Some(id) => *id,
            None => match host::define_counter(name) {
                Ok(id) => {
                    self.counters.insert(name.to_string(), id);
                    id
                }
                Err(e) => {
                    warn!("cannot define metric {name}: {e}");
                    return;
                }
            },
        };
        if let Err(e) = host::increment(id, i64::try_from(by).unwrap_or(i64::MAX)) {
            warn!("cannot increment metric {name}: {e}");
        }
    }
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = host::buffer(BufferType::PluginConfiguration, 0, usize::MAX).unwrap_or_default();
        match Config::parse(&raw) {
            Ok(config) => {
                if let Err(e) = host::declare_struct_property(STRUCT_PROPERTY) {
                    warn!("cannot declare the structured record as a Struct ({e}); TYPED access logs will show bytes");
                }
                self.shared.borrow_mut().labels = LabelCaps::new(config.max_label_values);
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                error!("invalid ai-attribution configuration: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Call {
            config,
            shared: self.shared.clone(),
            state: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Envoy attributes through the host boundary.
struct HostProperties;

impl Properties for HostProperties {
    fn property(&mut self, path: &[&str]) -> Option<Vec<u8>> {
        host::property(path)
    }
}

/// Request headers as Envoy hands them over: lower-case names, duplicates kept.
type HeaderList = Vec<(String, Vec<u8>)>;

/// What one model call carries from the request to `on_log`.
struct CallState {
    call: ModelCall,
    correlation_id: String,
    /// None while the decision waits for the request body.
    plan: Option<RequestPlan>,
    /// Request headers, kept only while the decision waits for the body.
    held_headers: HeaderList,
    body: Option<RequestBody>,
    /// Bytes of the request body already fed to the scanner (while Envoy buffers it).
    body_fed: usize,
    /// `body:` source values seen when the decision was last tried.
    body_sources_seen: usize,
    /// `usage.force_stream_usage` may still add `stream_options` to this request.
    inject_usage: bool,
    response: Option<ResponseUsage>,
}

/// One HTTP stream. `state` stays `None` for requests that are not model calls.
struct Call {
    config: Rc<Config>,
    shared: Rc<RefCell<Shared>>,
    state: Option<CallState>,
}

impl Context for Call {}

impl Call {
    /// Recognises the call from `:path` alone first, so non-model traffic costs one host call.
    fn recognise(&self) -> Option<(ModelCall, HeaderList)> {
        let path = host::request_header(":path")?;
        let path = std::str::from_utf8(&path).ok()?;
        let cfg = &self.config;
        recognize("POST", path, cfg.providers, &cfg.extra_routes)?;
        // If the headers cannot be read the call is still a model call, decided on nothing (fail closed).
        let headers = host::request_headers().unwrap_or_default();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        let call = recognize(get(":method").unwrap_or("POST"), path, cfg.providers, &cfg.extra_routes)?;
        if !cfg.hosts.is_empty() && !host_allowed(&cfg.hosts, get(":authority").unwrap_or("")) {
            return None;
        }
        Some((call, headers))
    }

    /// Carries out a plan: the rejection if there is one, else the header edits.
    fn apply(plan: &RequestPlan) -> Action {
        if Self::reject(plan) {
            return Action::Pause;
        }
        Self::apply_headers(plan);
        Action::Continue
    }

    /// Sends the plan's rejection, if it has one; true if it was sent.
    fn reject(plan: &RequestPlan) -> bool {
        let Some(reply) = &plan.reject else {
            return false;
        };
        let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match host::send_local_response(reply.status, RESPONSE_CODE_DETAILS, reply.body.as_bytes(), &headers) {
            Ok(()) => true,
            Err(e) => {
                error!("cannot send the rejection ({e}); letting the call through");
                false
            }
        }
    }

    /// Removes spoofable headers and sets the correlation and propagation headers.
    fn apply_headers(plan: &RequestPlan) {
        for name in &plan.remove {
            if let Err(e) = host::remove_request_header(name) {
                warn!("cannot remove header {name}: {e}");
            }
        }
        for (name, value) in &plan.set {
            if let Err(e) = host::set_request_header(name, value) {
                warn!("cannot set header {name}: {e}");
            }
        }
    }

    fn record(&self, state: &CallState) -> Record {
        let cfg = &self.config;
        let plan = state.plan.as_ref();
        let decision = plan.map_or(Decision::Rejected, |p| p.attribution.decision);
        let usage = state.response.as_ref().map(ResponseUsage::usage).unwrap_or_default();
        let token_counts = tokens(&usage);
        let request_model = state
            .call
            .path_model
            .clone()
            .or_else(|| state.body.as_ref().and_then(RequestBody::model));
        let usage_status = if decision == Decision::Rejected {
            Some(UsageStatus::NotApplicable)
        } else if !cfg.usage_enabled {
            None
        } else {
            // No response at all means the call was cut short before the upstream answered.
            Some(
                state
                    .response
                    .as_ref()
                    .map_or(UsageStatus::Partial, ResponseUsage::status),
            )
        };
        let priced_model = usage.response_model.as_deref().or(request_model.as_deref());
        let cost = priced_model
            .and_then(|m| cfg.price_for(m))
            .and_then(|p| cost_usd(p, &token_counts));
        // The response format says best; before a response, the request's `stream` flag or path.
        let stream = state.response.as_ref().and_then(ResponseUsage::stream).or_else(|| {
            state
                .body
                .as_ref()
                .and_then(RequestBody::stream)
                .or(state.call.path_stream.then_some(true))
        });
        Record {
            decision,
            reason: plan.map(|p| p.attribution.reason(cfg)).unwrap_or_default(),
            correlation_id: state.correlation_id.clone(),
            dimensions: cfg
                .dimensions
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    (
                        d.name.clone(),
                        plan.and_then(|p| p.attribution.value(i)).map(str::to_string),
                    )
                })
                .collect(),
            sources: plan.map(|p| p.attribution.sources(cfg)).unwrap_or_default(),
            provider: state.call.provider.clone(),
            operation: state.call.operation.clone(),
            request_model,
            response_model: usage.response_model.clone(),
            response_id: usage.response_id.clone(),
            stream,
            tokens: token_counts,
            usage_status,
            cost_usd: cost,
        }
    }

    fn count_metrics(&self, record: &Record) {
        let cfg = &self.config;
        let mut shared = self.shared.borrow_mut();
        let provider = tag_value(&record.provider);
        shared.count(&requests_metric(record.decision.as_str(), &provider), 1);
        if record.tokens.input.is_none() && record.tokens.output.is_none() {
            return;
        }
        let mut labels = Vec::new();
        for label in cfg.metric_labels.iter().filter(|l| *l != "provider") {
            let value = match label.as_str() {
                "model" => record.response_model.as_deref().or(record.request_model.as_deref()),
                dim => record
                    .dimensions
                    .iter()
                    .find(|(d, _)| d == dim)
                    .and_then(|(_, v)| v.as_deref()),
            };
            let capped = shared.labels.cap(label, value.unwrap_or(UNKNOWN));
            labels.push((label.clone(), capped));
        }
        for (direction, n) in [("input", record.tokens.input), ("output", record.tokens.output)] {
            if let Some(n) = n {
                shared.count(&tokens_metric(direction, &provider, &labels), n);
            }
        }
    }
}

/// `model_calls.hosts`: exact names, or `*.domain` for any subdomain. The port is ignored.
fn host_allowed(hosts: &[String], authority: &str) -> bool {
    let host = authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            authority
        }
    });
    let host = host.to_ascii_lowercase();
    hosts.iter().any(|h| match h.strip_prefix("*.") {
        Some(domain) => host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.')),
        None => *h == host,
    })
}

/// Replaces a request-body chunk that starts at `start` of what Envoy holds. Envoy only lets a
/// filter replace from the start of its buffer, so a chunk further in means rewriting it all.
fn replace_request_chunk(start: usize, old_len: usize, new_chunk: &[u8]) {
    let result = if start == 0 {
        host::set_buffer(BufferType::HttpRequestBody, 0, old_len, new_chunk)
    } else {
        match host::buffer(BufferType::HttpRequestBody, 0, start) {
            Some(mut all) => {
                all.extend_from_slice(new_chunk);
                host::set_buffer(BufferType::HttpRequestBody, 0, start + old_len, &all)
            }
            None => Ok(()),
        }
    };
    if let Err(e) = result {
        warn!("cannot add stream_options.include_usage to the request: {e}");
    }
}

impl HttpContext for Call {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some((call, headers)) = self.recognise() else {
            return Action::Continue;
        };
        let cfg = self.config.clone();
        let id = {
            let shared = self.shared.clone();
            correlation_id(&headers, &mut || shared.borrow_mut().new_id())
        };
        let plan = plan_request(&cfg, &call, &headers, &mut HostProperties, None, id.clone());
        let wants_body = !end_of_stream
            && (call.path_model.is_none() || cfg.usage_enabled || cfg.needs_body || cfg.force_stream_usage);
        let mut state = CallState {
            call,
            correlation_id: id,
            plan: None,
            held_headers: Vec::new(),
            body: wants_body.then(|| RequestBody::new(&cfg)),
            body_fed: 0,
            body_sources_seen: 0,
            inject_usage: false,
            response: None,
        };
        if cfg.needs_body && !end_of_stream && waits_for_body(&cfg, &plan.attribution) {
            // The decision waits for a `body:` source. A wasm filter that stops headers stops its
            // own body callbacks too (the host turns StopIteration into StopAllIteration), so the
            // headers go on now, edited as planned, and the body is held until the field is read.
            Self::apply_headers(&plan);
            state.held_headers = headers;
            self.state = Some(state);
            return Action::Continue;
        }
        let action = Self::apply(&plan);
        if plan.reject.is_none()
            && cfg.force_stream_usage
            && !end_of_stream
            && state.call.family == ApiFamily::OpenAiChat
            && matches!(state.call.operation.as_str(), "chat" | "text_completion")
        {
            // The body may grow: drop content-length before any body byte is forwarded.
            if let Err(e) = host::remove_request_header("content-length") {
                warn!("cannot remove content-length: {e}");
            }
            state.inject_usage = true;
        }
        state.plan = Some(plan);
        self.state = Some(state);
        action
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let cfg = self.config.clone();
        let Some(state) = self.state.as_mut() else {
            return Action::Continue;
        };
        let deciding = state.plan.is_none();
        // While Envoy buffers (deciding), `body_size` is everything buffered so far.
        let start = if deciding { state.body_fed } else { 0 };
        let len = body_size.saturating_sub(start);
        if let Some(body) = state.body.as_mut() {
            if !body.finished() || deciding {
                let chunk = host::buffer(BufferType::HttpRequestBody, start, len).unwrap_or_default();
                let was_finished = body.finished();
                body.feed(&chunk);
                if state.inject_usage && !was_finished && body.finished() {
                    state.inject_usage = false;
                    if body.stream() == Some(true) && !body.has_stream_options() {
                        if let Some(new_chunk) = inject_include_usage(&chunk) {
                            replace_request_chunk(start, chunk.len(), &new_chunk);
                        }
                    }
                }
            }
        }
        state.body_fed = body_size;
        if !deciding {
            return Action::Continue;
        }
        // Decide once the body can say no more, or as soon as what it said attributes the call.
        let found = state.body.as_ref().map_or(0, RequestBody::sources_found);
        let complete = end_of_stream
            || state.body.as_ref().is_none_or(RequestBody::finished)
            || body_size >= cfg.body_decision_bytes;
        if !complete && found == state.body_sources_seen {
            return Action::Pause;
        }
        state.body_sources_seen = found;
        // The headers already went on; only the decision is left.
        let plan = plan_request(
            &cfg,
            &state.call,
            &state.held_headers,
            &mut HostProperties,
            state.body.as_ref(),
            state.correlation_id.clone(),
        );
        if !complete && plan.attribution.decision != Decision::Attributed {
            return Action::Pause;
        }
        let rejected = Self::reject(&plan);
        state.plan = Some(plan);
        if rejected {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let cfg = self.config.clone();
        let Some(state) = self.state.as_mut() else {
            return Action::Continue;
        };
        if let Err(e) = host::set_response_header(&cfg.correlation_header, &state.correlation_id) {
            warn!("cannot set the correlation header on the response: {e}");
        }
        let forwarded = state.plan.as_ref().is_some_and(|p| p.reject.is_none());
        if cfg.usage_enabled && forwarded {
            let content_type = host::response_header("content-type");
            let text = |v: &Option<Vec<u8>>| {
                v.as_deref()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .map(str::to_string)
            };
            let (input, output) = if state.call.family == ApiFamily::BedrockInvoke {
                (
                    text(&host::response_header(BEDROCK_INPUT_HEADER)),
                    text(&host::response_header(BEDROCK_OUTPUT_HEADER)),
                )
            } else {
                (None, None)
            };
            state.response = Some(ResponseUsage::start(
                state.call.family,
                text(&content_type).as_deref(),
                (input.as_deref(), output.as_deref()),
                end_of_stream,
            ));
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(response) = self.state.as_mut().and_then(|s| s.response.as_mut()) {
            let chunk = if body_size > 0 {
                host::buffer(BufferType::HttpResponseBody, 0, body_size).unwrap_or_default()
            } else {
                Vec::new()
            };
            response.feed(&chunk, end_of_stream);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(mut state) = self.state.take() else {
            return;
        };
        if !state.held_headers.is_empty()
            && state
                .plan
                .as_ref()
                .is_some_and(|p| p.attribution.decision == Decision::Attributed)
        {
            // Decided on the first body fields that attributed the call; record the values as the
            // whole body gives them, so source precedence holds.
            let plan = plan_request(
                &self.config,
                &state.call,
                &state.held_headers,
                &mut HostProperties,
                state.body.as_ref(),
                state.correlation_id.clone(),
            );
            if plan.attribution.decision == Decision::Attributed {
                state.plan = Some(plan);
            }
        }
        if state.plan.is_none() {
            // The client went away while the decision waited for the body: decide on what arrived.
            let headers = std::mem::take(&mut state.held_headers);
            let mut plan = plan_request(
                &self.config,
                &state.call,
                &headers,
                &mut HostProperties,
                state.body.as_ref(),
                state.correlation_id.clone(),
            );
            if plan.attribution.decision == Decision::Attributed {
                // Attributed, but never forwarded: there is no usage to expect.
                state.response = None;
            }
            plan.reject = None;
            state.plan = Some(plan);
        }
        let record = self.record(&state);
        for (key, value) in record.scalar_entries(&self.config) {
            if let Err(e) = host::set_property(&key, value.as_bytes()) {
                warn!("cannot write record key {key}: {e}");
            }
        }
        if let Err(e) = host::set_property(STRUCT_PROPERTY, &record.structured()) {
            warn!("cannot write the structured record: {e}");
        }
        if self.config.metrics_enabled {
            self.count_metrics(&record);
        }
    }
}
