//! Processes for the tests: a throwaway Redis, `ratelimit-server` itself, and a gRPC client.
//! Every process is stopped when its handle drops; a failing test prints its log.

#![allow(dead_code)]

use integration::envoy::{free_port, TempDir};
use ratelimit_server::proto::rls::rate_limit_service_client::RateLimitServiceClient;
use ratelimit_server::proto::{Entry, RateLimitDescriptor, RateLimitRequest, RateLimitResponse, UInt64Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn print_log(what: &str, path: &Path) {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(100).collect();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "----- {what} log (last {} lines) -----", tail.len());
    for line in tail.iter().rev() {
        let _ = writeln!(err, "{line}");
    }
    let _ = writeln!(err, "----- end of {what} log -----");
}

/// Waits for `child` to exit by itself, up to `timeout`.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
}

/// A Redis server on a free loopback port, with no persistence.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let bin = std::env::var_os("REDIS_SERVER").map_or_else(|| PathBuf::from("redis-server"), PathBuf::from);
        let dir = TempDir::new("redis").expect("temp dir");
        let log = dir.path().join("redis.log");
        let port = free_port();
        let child = Command::new(&bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e} (`make setup` installs Debian's redis-server)",
                    bin.display()
                )
            });
        let redis = Redis {
            child: Some(child),
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !redis.pong() {
            assert!(Instant::now() < deadline, "redis-server did not answer PING on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    fn pong(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            print_log("redis", &self.log);
        }
    }
}

/// A running `ratelimit-server`.
pub struct Server {
    child: Option<Child>,
    pub addr: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Server {
    /// Starts the server with `--port 0` and these arguments, and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        let dir = TempDir::new("ratelimit-server").expect("temp dir");
        let log = dir.path().join("ratelimit-server.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ratelimit-server"))
            .args(["--port", "0", "--log-level", "debug"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("ratelimit-server runs");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(addr) = line.trim().strip_prefix("ratelimit-server listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            print_log("ratelimit-server", &log);
            panic!("ratelimit-server did not start: {line:?}");
        };
        Server {
            addr: addr.to_string(),
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status (None when it did not exit in 10 s).
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        sigterm(&child);
        let status = wait_exit(&mut child, Duration::from_secs(10));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
        if std::thread::panicking() {
            print_log("ratelimit-server", &self.log);
        }
    }
}

/// A blocking gRPC client for the tests.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    client: RateLimitServiceClient<tonic::transport::Channel>,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime
            .block_on(RateLimitServiceClient::connect(format!("http://{addr}")))
            .expect("connects");
        Client { runtime, client }
    }

    pub fn ask(&mut self, req: RateLimitRequest) -> Result<RateLimitResponse, tonic::Status> {
        let client = &mut self.client;
        self.runtime
            .block_on(client.should_rate_limit(req))
            .map(tonic::Response::into_inner)
    }
}

/// A descriptor from `(key, value)` pairs, with its own hits when given.
pub fn descriptor(pairs: &[(&str, &str)], hits: Option<u64>) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: pairs
            .iter()
            .map(|(k, v)| Entry {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        limit: None,
        hits_addend: hits.map(|value| UInt64Value { value }),
    }
}

pub fn request(domain: &str, descriptors: Vec<RateLimitDescriptor>) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.into(),
        descriptors,
        hits_addend: 0,
    }
}

/// Writes `text` to a file in `dir` and returns its path as a string.
pub fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

/// Polls `f` until it returns Some, for up to 10 s (fire-and-forget charges land a little later).
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a response from `stream` until its (dechunked) body contains `needle`; the bytes so far.
pub fn read_until(stream: &mut std::net::TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .and_then(|at| integration::http::dechunk(&raw[at + 4..]))
            .unwrap_or_default();
        if body.windows(needle.len()).any(|w| w == needle) {
            return raw;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {}",
            String::from_utf8_lossy(&raw)
        );
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the response ended before {needle:?}: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    }
}

/// The model calls the model server ran: requests whose body arrived whole. A call refused at
/// its budget check never is one: its headers went upstream while the filter held the body to
/// read the model, and the upstream request is reset before the body is complete.
pub fn model_calls(model: &integration::model_server::ModelServer) -> usize {
    model.received().iter().filter(|r| r.body_complete).count()
}

/// Tokens of one OpenAI chat call of the model server (27 in, 12 out).
pub const CHAT_TOKENS: u32 = 39;

/// The shipped budgets' shapes (`envoy/ratelimit/config.yaml`) with small numbers: 100 tokens a
/// day per business unit (10,000 for research), `cost_per_month` micro-USD per unit and model,
/// `requests_per_minute` calls per user.
pub fn limits(cost_per_month: u32, requests_per_minute: u32) -> String {
    format!(
        "domain: ai-attribution
descriptors:
  - key: budget
    value: tokens_per_bu
    descriptors:
      - key: business_unit
        rate_limit: {{unit: day, requests_per_unit: 100}}
      - key: business_unit
        value: research
        rate_limit: {{unit: day, requests_per_unit: 10000}}
  - key: budget
    value: cost_per_bu_model
    descriptors:
      - key: business_unit
        descriptors:
          - key: model
            rate_limit: {{unit: month, requests_per_unit: {cost_per_month}}}
  - key: budget
    value: requests_per_user
    descriptors:
      - key: user
        rate_limit: {{unit: minute, requests_per_unit: {requests_per_minute}}}
"
    )
}

/// What `bu` has left of its tokens today, asked of a server without charging.
pub fn tokens_left(client: &mut Client, bu: &str) -> u32 {
    let d = descriptor(&[("budget", "tokens_per_bu"), ("business_unit", bu)], Some(0));
    client.ask(request("ai-attribution", vec![d])).unwrap().statuses[0].limit_remaining
}
