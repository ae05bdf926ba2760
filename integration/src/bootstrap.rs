//! Envoy bootstraps for tests, generated as JSON: the filter in front of the model server, with a
//! JSON access log that carries every record key (the same fields as `envoy/envoy.yaml`).

use ai_attribution::record::Field;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// The record keys that are not dimensions, as `envoy/envoy.yaml` logs them. `method` and
/// `request_id` are logged from Envoy's own request (the same values, also on non-AI requests).
pub fn record_keys() -> Vec<&'static str> {
    Field::ALL
        .iter()
        .map(|f| f.scalar_name())
        .filter(|k| !matches!(*k, "method" | "request_id"))
        .collect()
}

/// What a test Envoy looks like.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub listen_port: u16,
    pub admin_port: u16,
    pub upstream_port: u16,
    /// The plugin configuration, as JSON text (it may be invalid on purpose).
    pub plugin_config: String,
    pub access_log: PathBuf,
    /// Dimension names to log (as `wasm.ai_attribution.<dim>`).
    pub dimensions: Vec<String>,
    /// HTTP filters placed before the wasm filter (e.g. jwt_authn).
    pub filters_before: Vec<Value>,
    /// Extra fields merged into the HttpConnectionManager.
    pub hcm_extra: Map<String, Value>,
    /// A downstream transport socket (mTLS).
    pub transport_socket: Option<Value>,
    pub failure_policy: Option<String>,
    /// The listener's `per_connection_buffer_limit_bytes` (Envoy's default is 1 MiB).
    pub listener_buffer_limit: Option<u32>,
    /// The virtual host's routes; one route of everything to the upstream when unset.
    pub routes: Option<Value>,
    /// A transport socket for the upstream cluster (mTLS to a next hop).
    pub upstream_transport_socket: Option<Value>,
    /// Envoy's worker threads (`--concurrency`).
    pub concurrency: u32,
    pub wasm: PathBuf,
    /// The wasm VM's environment (`vm_config.environment_variables.key_values`).
    pub vm_environment: Vec<(String, String)>,
}

impl Bootstrap {
    pub fn new(upstream_port: u16, plugin_config: String, access_log: PathBuf) -> Bootstrap {
        Bootstrap {
            listen_port: crate::envoy::free_port(),
            admin_port: crate::envoy::free_port(),
            upstream_port,
            plugin_config,
            access_log,
            dimensions: ["user", "service_account", "app", "session", "business_unit"]
                .map(String::from)
                .to_vec(),
            filters_before: Vec::new(),
            hcm_extra: Map::new(),
            transport_socket: None,
            failure_policy: None,
            listener_buffer_limit: None,
            routes: None,
            upstream_transport_socket: None,
            concurrency: 1,
            wasm: crate::envoy::wasm_path(),
            vm_environment: Vec::new(),
        }
    }

    /// The access-log format: request fields, every scalar record key, and the structured record.
    pub fn log_format(&self) -> Value {
        let mut f = Map::new();
        for (k, v) in [
            ("method", "%REQ(:METHOD)%"),
            ("path", "%PATH(NQ)%"),
            ("status", "%RESPONSE_CODE%"),
            ("details", "%RESPONSE_CODE_DETAILS%"),
            ("request_id", "%REQ(X-REQUEST-ID)%"),
            ("flags", "%RESPONSE_FLAGS%"),
            ("record", "%FILTER_STATE(wasm.ai_attribution:TYPED)%"),
        ] {
            f.insert(k.into(), json!(v));
        }
        for key in record_keys()
            .iter()
            .map(|k| k.to_string())
            .chain(self.dimensions.iter().cloned())
        {
            f.insert(
                key.clone(),
                json!(format!("%FILTER_STATE(wasm.ai_attribution.{key}:PLAIN)%")),
            );
        }
        Value::Object(f)
    }

    pub fn to_json(&self) -> String {
        let mut wasm_config = json!({
            "name": "ai_attribution",
            "root_id": "ai_attribution",
            "vm_config": {
                "vm_id": "ai_attribution",
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": self.wasm.to_string_lossy()}}
            },
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": self.plugin_config
            }
        });
        if let (Some(policy), Some(obj)) = (&self.failure_policy, wasm_config.as_object_mut()) {
            obj.insert("failure_policy".into(), json!(policy));
        }
        if !self.vm_environment.is_empty() {
            let values: Map<String, Value> = self.vm_environment.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            wasm_config["vm_config"]["environment_variables"] = json!({"key_values": values});
        }
        let mut filters = self.filters_before.clone();
        filters.push(json!({
            "name": "envoy.filters.http.wasm",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "config": wasm_config}
        }));
        filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
        }));
        let routes = self.routes.clone().unwrap_or_else(|| {
            json!([{"name": "models-route", "match": {"prefix": "/"}, "route": {"cluster": "model_server", "timeout": "60s"}}])
        });
        let mut hcm = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ai_gateway",
            "access_log": [{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": self.access_log.to_string_lossy(),
                    "log_format": {"json_format": self.log_format()}
                }
            }],
            "route_config": {
                "name": "models",
                "virtual_hosts": [{
                    "name": "models", "domains": ["*"],
                    "routes": routes
                }]
            },
            "http_filters": filters
        });
        if let Some(obj) = hcm.as_object_mut() {
            for (k, v) in &self.hcm_extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let mut chain = json!({
            "name": "main",
            "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
        });
        if let (Some(ts), Some(obj)) = (&self.transport_socket, chain.as_object_mut()) {
            obj.insert("transport_socket".into(), ts.clone());
        }
        let mut listener = json!({
            "name": "ai_gateway",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": self.listen_port}},
            "filter_chains": [chain]
        });
        if let (Some(limit), Some(obj)) = (self.listener_buffer_limit, listener.as_object_mut()) {
            obj.insert("per_connection_buffer_limit_bytes".into(), json!(limit));
        }
        let mut cluster = json!({
            "name": "model_server",
            "type": "STATIC",
            "connect_timeout": "2s",
            "load_assignment": {
                "cluster_name": "model_server",
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": self.upstream_port}}}}]}]
            }
        });
        if let (Some(ts), Some(obj)) = (&self.upstream_transport_socket, cluster.as_object_mut()) {
            obj.insert("transport_socket".into(), ts.clone());
        }
        json!({
            "node": {"id": "test-node", "cluster": "test", "metadata": {"BUSINESS_UNIT": "node-bu", "NAMESPACE": "ml-team"}},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": self.admin_port}}},
            "stats_config": {"stats_tags": stats_tags()},
            "static_resources": {
                "listeners": [listener],
                "clusters": [cluster]
            }
        })
        .to_string()
    }
}

/// The `stats_tags` that `envoy/envoy.yaml` ships, for the filter's `;key=value` metric names.
pub fn stats_tags() -> Value {
    let tags = [
        "decision",
        "provider",
        "direction",
        "status",
        "mcp_method",
        "tool",
        "business_unit",
        "user",
        "model",
    ];
    Value::Array(
        tags.iter()
            .map(|t| json!({"tag_name": t, "regex": format!("^wasmcustom\\.ai_attribution_\\w+_total.*?(;{t}=([^;]*))")}))
            .collect(),
    )
}
