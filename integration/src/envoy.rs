//! Starting and stopping a real Envoy for tests: free ports, readiness, log capture, cleanup.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The repository root (the integration crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The pinned Envoy the Makefile installs, or `$ENVOY_BIN`.
pub fn envoy_bin() -> PathBuf {
    std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/envoy"))
}

/// The release build of the filter.
pub fn wasm_path() -> PathBuf {
    repo_root().join("target/wasm32-wasip1/release/ai_attribution.wasm")
}

/// A port nobody listens on right now, for a server a test starts a moment later. It is taken
/// below the kernel's ephemeral range, so no `bind(0)` (a model server's, another test's) and no
/// outgoing connection can take it in between, and never twice in one test process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, count) = below_ephemeral_range();
    if count > 0 {
        // Test processes that run at the same time start at different places.
        let start = std::process::id().wrapping_mul(7919) % count;
        for _ in 0..count {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = low + (start + n) % count;
            let Ok(port) = u16::try_from(port) else { continue };
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Ports from 10000 up to the start of the kernel's ephemeral range (Linux); none elsewhere.
fn below_ephemeral_range() -> (u32, u32) {
    const LOW: u32 = 10_000;
    let first_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u32>().ok()))
        .unwrap_or(0);
    (LOW, first_ephemeral.saturating_sub(LOW).min(u32::from(u16::MAX) - LOW))
}

/// A scratch directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> io::Result<TempDir> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ai-attribution-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// A directory kept in a `static` for a whole test binary. A static is never dropped, so the
    /// run's directory stays behind; making one first removes the `tag` directories of processes
    /// no longer running.
    pub fn for_binary(tag: &str) -> io::Result<TempDir> {
        Self::remove_stale(tag);
        Self::new(tag)
    }
    fn remove_stale(tag: &str) {
        let prefix = format!("ai-attribution-{tag}-");
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running Envoy. Dropping it stops the process; if the test is failing, Envoy's log is printed.
pub struct Envoy {
    child: Option<Child>,
    pub admin_port: u16,
    pub log_path: PathBuf,
    pub dir: TempDir,
}

/// Result of `envoy --mode validate`.
pub struct Validation {
    pub ok: bool,
    pub output: String,
}

/// Runs `envoy --mode validate -c <file>` from the directory `cwd`.
pub fn validate_config_in(file: &Path, cwd: &Path) -> io::Result<Validation> {
    let out = Command::new(envoy_bin())
        .args(["--mode", "validate", "--disable-hot-restart", "-l", "warn", "-c"])
        .arg(file)
        .current_dir(cwd)
        .output()?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Validation {
        ok: out.status.success(),
        output,
    })
}

impl Envoy {
    /// Starts Envoy with a bootstrap (YAML or JSON text) and waits until the admin says LIVE.
    /// `admin_port` must be the admin port the bootstrap uses.
    pub fn start(bootstrap: &str, admin_port: u16) -> io::Result<Envoy> {
        Self::start_with_concurrency(bootstrap, admin_port, 1)
    }

    /// Starts Envoy with `--concurrency` worker threads.
    pub fn start_with_concurrency(bootstrap: &str, admin_port: u16, concurrency: u32) -> io::Result<Envoy> {
        let dir = TempDir::new("envoy")?;
        let config_path = dir.path().join("envoy.yaml");
        std::fs::write(&config_path, bootstrap)?;
        let log_path = dir.path().join("envoy.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&config_path)
            .args([
                "--concurrency",
                &concurrency.to_string(),
                "--disable-hot-restart",
                "-l",
                "info",
            ])
            .args(["--file-flush-interval-msec", "20"])
            // Not the repository: nothing may depend on the directory Envoy starts in.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut envoy = Envoy {
            child: Some(child),
            admin_port,
            log_path,
            dir,
        };
        envoy.wait_live(Duration::from_secs(30))?;
        Ok(envoy)
    }

    fn wait_live(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(io::Error::other(format!("envoy exited with {status}:\n{}", self.log())));
                }
            }
            if let Ok(body) = admin_get(self.admin_port, "/ready") {
                if body.trim() == "LIVE" {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other(format!(
            "envoy not ready after {timeout:?}:\n{}",
            self.log()
        )))
    }

    /// Waits for Envoy to exit by itself (used for configs it must refuse).
    pub fn wait_exit(bootstrap: &str, timeout: Duration) -> io::Result<(Option<i32>, String)> {
        let dir = TempDir::new("envoy-refuse")?;
        let config_path = dir.path().join("envoy.yaml");
        std::fs::write(&config_path, bootstrap)?;
        let mut child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&config_path)
            .args(["--concurrency", "1", "--disable-hot-restart", "-l", "info"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                let mut text = String::new();
                if let Some(mut e) = child.stderr.take() {
                    e.read_to_string(&mut text)?;
                }
                if let Some(mut o) = child.stdout.take() {
                    o.read_to_string(&mut text)?;
                }
                return Ok((status.code(), text));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other("envoy kept running with a config it should refuse"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Envoy's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// GET on the admin interface.
    pub fn admin(&self, path: &str) -> io::Result<String> {
        admin_get(self.admin_port, path)
    }

    /// One stat's value from `/stats?filter=` (exact name), or None.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let body = self
            .admin(&format!("/stats?filter=^{}$", name.replace('.', "\\.")))
            .ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).and_then(|v| v.trim().parse().ok()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops Envoy now.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(200).collect();
            let mut err = io::stderr().lock();
            let _ = writeln!(err, "----- envoy log (last {} lines) -----", tail.len());
            for line in tail.iter().rev() {
                let _ = writeln!(err, "{line}");
            }
            let _ = writeln!(err, "----- end of envoy log -----");
        }
    }
}

fn admin_get(port: u16, path: &str) -> io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
            if chunked {
                let bytes = crate::http::dechunk(body.as_bytes()).unwrap_or_default();
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            } else {
                Ok(body.to_string())
            }
        }
        _ => Err(io::Error::other(format!("admin {path}: {text}"))),
    }
}
