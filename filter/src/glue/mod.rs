//! The proxy-wasm glue: thin callbacks that hand plain data to the core and carry out its plan.

mod host;

use crate::config::Config;
use crate::correlation::IdGenerator;
use crate::policy::Decision;
use crate::provider::{recognize, ModelCall};
use crate::record::{Record, Tokens, UsageStatus, STRUCT_PROPERTY};
use crate::reject::RESPONSE_CODE_DETAILS;
use crate::request::{plan_request, Properties, RequestPlan};
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

/// What one model call carries from the request to `on_log`.
struct CallState {
    call: ModelCall,
    plan: RequestPlan,
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
    fn recognise(&self) -> Option<(ModelCall, Vec<(String, Vec<u8>)>)> {
        let path = host::request_header(":path")?;
        let path = std::str::from_utf8(&path).ok()?;
        let cfg = &self.config;
        recognize("POST", path, cfg.providers, &cfg.extra_routes)?;
        let headers = host::request_headers().ok()?;
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        let call = recognize(get(":method")?, path, cfg.providers, &cfg.extra_routes)?;
        if !cfg.hosts.is_empty() && !host_allowed(&cfg.hosts, get(":authority").unwrap_or("")) {
            return None;
        }
        Some((call, headers))
    }

    fn apply(&self, plan: &RequestPlan) -> Action {
        for name in &plan.remove {
            if let Err(e) = host::remove_request_header(name) {
                warn!("cannot remove header {name}: {e}");
            }
        }
        if let Some(reply) = &plan.reject {
            let headers: Vec<(&str, &str)> = reply
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            match host::send_local_response(
                reply.status,
                RESPONSE_CODE_DETAILS,
                reply.body.as_bytes(),
                &headers,
            ) {
                Ok(()) => return Action::Pause,
                Err(e) => error!("cannot send the rejection ({e}); letting the call through"),
            }
        }
        for (name, value) in &plan.set {
            if let Err(e) = host::set_request_header(name, value) {
                warn!("cannot set header {name}: {e}");
            }
        }
        Action::Continue
    }

    fn record(&self, state: &CallState) -> Record {
        let cfg = &self.config;
        let a = &state.plan.attribution;
        let rejected = a.decision == Decision::Rejected;
        Record {
            decision: a.decision,
            reason: a.reason(cfg),
            correlation_id: state.plan.correlation_id.clone(),
            dimensions: cfg
                .dimensions
                .iter()
                .enumerate()
                .map(|(i, d)| (d.name.clone(), a.value(i).map(str::to_string)))
                .collect(),
            sources: a.sources(cfg),
            provider: state.call.provider.clone(),
            operation: state.call.operation.clone(),
            request_model: state.plan.request_model.clone(),
            response_model: None,
            response_id: None,
            stream: if state.call.path_stream {
                Some(true)
            } else {
                None
            },
            tokens: Tokens::default(),
            usage_status: if rejected {
                Some(UsageStatus::NotApplicable)
            } else if cfg.usage_enabled {
                Some(UsageStatus::Missing)
            } else {
                None
            },
            cost_usd: None,
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
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.')),
        None => *h == host,
    })
}

impl HttpContext for Call {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some((call, headers)) = self.recognise() else {
            return Action::Continue;
        };
        let shared = self.shared.clone();
        let mut new_id = || shared.borrow_mut().new_id();
        let plan = plan_request(
            &self.config,
            &call,
            &headers,
            &mut HostProperties,
            &mut new_id,
        );
        let action = self.apply(&plan);
        self.state = Some(CallState { call, plan });
        action
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(state) = &self.state {
            if let Err(e) = host::set_response_header(
                &self.config.correlation_header,
                &state.plan.correlation_id,
            ) {
                warn!("cannot set the correlation header on the response: {e}");
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
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
            let name = format!(
                "ai_attribution_requests_total;decision={};provider={}",
                record.decision.as_str(),
                metric_value(&record.provider)
            );
            self.shared.borrow_mut().count(&name, 1);
        }
    }
}

/// Metric tag values may not contain `;` (the tag separator) or `=`.
fn metric_value(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c == ';' || c == '=' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}
