//! The real-Envoy test harness: a local model server, Envoy processes with the filter, an HTTP
//! client that controls every byte, and access-log reading. Tests in `tests/` build on [`Stack`].

// Test tooling: indexing a `serde_json::Value` by key yields `Null` and never panics.
#![allow(clippy::indexing_slicing)]

pub mod bootstrap;
pub mod demo;
pub mod envoy;
pub mod h2;
pub mod http;
pub mod model_server;
pub mod oci;
pub mod pki;
pub mod pytest;
pub mod readme;
pub mod render;
pub mod scenario;

use bootstrap::Bootstrap;
use envoy::{Envoy, TempDir};
use model_server::ModelServer;
use serde_json::Value;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A model server with Envoy and the filter in front of it.
pub struct Stack {
    // Field order matters: Envoy stops before the model server and the temp dir go away.
    pub envoy: Envoy,
    pub server: ModelServer,
    pub port: u16,
    pub access_log: PathBuf,
    _dir: TempDir,
}

impl Stack {
    /// Starts a stack with the given plugin configuration.
    pub fn start(plugin_config: &Value) -> io::Result<Stack> {
        Self::start_with(plugin_config.to_string(), |_| {})
    }

    /// Starts a stack, letting the caller adjust the bootstrap first.
    pub fn start_with(plugin_config: String, adjust: impl FnOnce(&mut Bootstrap)) -> io::Result<Stack> {
        let server = ModelServer::start()?;
        let dir = TempDir::new("stack")?;
        let access_log = dir.path().join("access.log");
        let mut bootstrap = Bootstrap::new(server.port(), plugin_config, access_log.clone());
        adjust(&mut bootstrap);
        let envoy = Envoy::start_with_concurrency(&bootstrap.to_json(), bootstrap.admin_port, bootstrap.concurrency)?;
        Ok(Stack {
            envoy,
            server,
            port: bootstrap.listen_port,
            access_log,
            _dir: dir,
        })
    }

    /// Sends a request through Envoy.
    pub fn send(&self, req: &http::Request) -> io::Result<http::Response> {
        http::send(self.port, req)
    }

    /// Sends a request through Envoy over HTTP/2 (the listener must accept it, e.g. `codec_type: AUTO`).
    pub fn send_h2(&self, req: &http::Request) -> io::Result<h2::H2Response> {
        h2::send(self.port, req)
    }

    /// Every access-log line written so far, parsed.
    pub fn log_lines(&self) -> Vec<Value> {
        log_lines(&self.access_log)
    }

    /// Waits (up to 5 s) for the access-log line of the request with this `x-request-id`.
    pub fn log_for(&self, request_id: &str) -> Option<Value> {
        log_for(&self.access_log, request_id)
    }
}

/// Every JSON line of an access-log file written so far, parsed.
pub fn log_lines(access_log: &Path) -> Vec<Value> {
    std::fs::read_to_string(access_log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits (up to 5 s) for the line of the request with this `x-request-id` in an access-log file.
pub fn log_for(access_log: &Path, request_id: &str) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = log_lines(access_log)
            .into_iter()
            .find(|l| l["request_id"] == request_id);
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (up to `timeout`) until an access log holds at least `n` lines, and returns them all.
pub fn wait_for_log_lines(path: &std::path::Path, n: usize, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = log_lines(path);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A unique request id for a test request.
pub fn request_id(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{tag}-{}-{n}", std::process::id())
}
