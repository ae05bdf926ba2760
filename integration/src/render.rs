//! The shipped Envoy configs (`envoy/*.yaml`) made runnable on this machine: their documented
//! placeholders (the wasm module's path, the certificate paths, the ports, the IdP's address and
//! the access-log path) replaced by local values. `make run`, `make run-mtls`, `make run-jwt`,
//! `make run-quota` and the tests all render the shipped files this way, so what they run is what
//! a user copies.

use std::path::{Path, PathBuf};

/// Where the shipped configs load the filter from.
pub const WASM: &str = "/etc/envoy/ai_attribution.wasm";
/// Where `envoy/mtls.yaml` reads `ca.crt`, `server.crt` and `server.key`.
pub const TLS_DIR: &str = "/etc/ai-attribution/tls/";
/// The system CA bundle (Debian and Ubuntu), which verifies the IdP and the model providers.
pub const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The listener, admin and model-server ports of the shipped configs.
pub const LISTEN_PORT: u16 = 10000;
pub const ADMIN_PORT: u16 = 9901;
pub const MODEL_SERVER_PORT: u16 = 18080;
/// The rate-limit service's port in `envoy/quota.yaml` and `envoy/quota-ratelimit-filter.yaml`.
pub const RATELIMIT_PORT: u16 = 8081;
/// The identity provider's address in `envoy/jwt.yaml`.
pub const IDP_ADDRESS: &str = "{address: idp.corp.example, port_value: 443}";
/// The access log of the shipped configs.
pub const ACCESS_LOG: &str = "path: /dev/stdout";

/// Local values for the placeholders; `None` leaves a placeholder as shipped.
#[derive(Debug, Clone, Default)]
pub struct Local {
    pub wasm: Option<PathBuf>,
    pub tls_dir: Option<PathBuf>,
    pub system_ca: Option<PathBuf>,
    pub listen_port: Option<u16>,
    pub admin_port: Option<u16>,
    pub model_server_port: Option<u16>,
    pub ratelimit_port: Option<u16>,
    /// The IdP on 127.0.0.1 at this port.
    pub idp_port: Option<u16>,
    /// Upstream hosts of the config's clusters (`{address: HOST, port_value: 443}`) served on
    /// 127.0.0.1 at these ports instead.
    pub upstreams: Vec<(String, u16)>,
    pub access_log: Option<PathBuf>,
}

impl Local {
    /// Every placeholder that a value is given for, and that value.
    fn substitutions(&self) -> Vec<(String, String)> {
        let mut subs = Vec::new();
        let path = |p: &Path| p.display().to_string();
        if let Some(p) = &self.wasm {
            subs.push((WASM.to_string(), path(p)));
        }
        if let Some(p) = &self.tls_dir {
            subs.push((TLS_DIR.to_string(), format!("{}/", path(p).trim_end_matches('/'))));
        }
        if let Some(p) = &self.system_ca {
            subs.push((SYSTEM_CA.to_string(), path(p)));
        }
        if let Some(port) = self.idp_port {
            subs.push((
                IDP_ADDRESS.to_string(),
                format!("{{address: 127.0.0.1, port_value: {port}}}"),
            ));
        }
        for (host, port) in &self.upstreams {
            subs.push((
                format!("{{address: {host}, port_value: 443}}"),
                format!("{{address: 127.0.0.1, port_value: {port}}}"),
            ));
        }
        if let Some(p) = &self.access_log {
            subs.push((ACCESS_LOG.to_string(), format!("path: {}", path(p))));
        }
        for (from, to) in [
            (LISTEN_PORT, self.listen_port),
            (ADMIN_PORT, self.admin_port),
            (MODEL_SERVER_PORT, self.model_server_port),
            (RATELIMIT_PORT, self.ratelimit_port),
        ] {
            if let Some(to) = to {
                subs.push((format!("port_value: {from}"), format!("port_value: {to}")));
            }
        }
        subs
    }
}

/// Replaces every placeholder of `config` that `local` gives a value for. A port is replaced only
/// as a whole number (`port_value: 10000`, not `port_value: 100001`).
pub fn render(config: &str, local: &Local) -> String {
    let mut text = config.to_string();
    for (from, to) in local.substitutions() {
        text = replace_whole(&text, &from, &to);
    }
    text
}

/// `text` with each `from` not followed by a digit replaced by `to`.
fn replace_whole(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let (before, after) = rest.split_at(at);
        let after = after.get(from.len()..).unwrap_or_default();
        out.push_str(before);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The files a config names: every `filename:` value, and the `path:` of file access logs (a line
/// that starts with `path:`, whose value is not a format command like `"%REQ(:PATH)%"`).
pub fn file_paths(config: &str) -> Vec<String> {
    let value = |v: &str| {
        let v = v.trim_start();
        let end = v.find(['}', ',', ' ', '#']).unwrap_or(v.len());
        v.get(..end)
            .map(|v| v.trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    for line in config.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("filename:") {
            rest = rest.get(at + "filename:".len()..).unwrap_or_default();
            out.extend(value(rest));
        }
        if let Some(v) = line.trim_start().strip_prefix("path:") {
            out.extend(value(v).filter(|v| !v.contains('%')));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_replaced_as_whole_numbers() {
        let local = Local {
            listen_port: Some(2),
            ..Local::default()
        };
        assert_eq!(
            render("port_value: 10000}\nport_value: 100001\n", &local),
            "port_value: 2}\nport_value: 100001\n"
        );
    }

    #[test]
    fn placeholders_without_a_value_stay() {
        let config = format!("filename: {WASM}\n{IDP_ADDRESS}\n");
        assert_eq!(render(&config, &Local::default()), config);
        let local = Local {
            wasm: Some("/x/f.wasm".into()),
            idp_port: Some(7),
            ..Local::default()
        };
        assert_eq!(
            render(&config, &local),
            "filename: /x/f.wasm\n{address: 127.0.0.1, port_value: 7}\n"
        );
    }

    #[test]
    fn file_paths_are_found() {
        let config = "code: {local: {filename: /etc/a.wasm}}\n  path: /dev/stdout\n  trusted_ca: {filename: ca.crt}\n  - {certificate_chain: {filename: \"/t/s.crt\"}, private_key: {filename: s.key}}\n  match: {path: /x}\n  path: \"%REQ(:PATH)%\"\n";
        assert_eq!(
            file_paths(config),
            ["/etc/a.wasm", "/dev/stdout", "ca.crt", "/t/s.crt", "s.key"]
        );
    }
}
