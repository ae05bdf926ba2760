//! The filter as an OCI image: building it with `scripts/oci-image.py` (what `make oci` runs),
//! reading an OCI image layout, and a local registry (Debian's `docker-registry`, the
//! distribution project's registry:2) to push to and pull from with `skopeo`.

use crate::envoy::{free_port, repo_root, TempDir};
use crate::model_server::codec::Sha256;
use serde_json::Value;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The media types of the "compat" Wasm image that Istio's WasmPlugin pulls.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The one file of the layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";

/// `sha256:<hex>` of some bytes, as OCI digests are written.
pub fn digest(data: &[u8]) -> String {
    let mut h = Sha256::default();
    h.update(data);
    format!("sha256:{}", h.finish_hex())
}

/// Writes the image of `wasm` into the OCI layout `out` with `scripts/oci-image.py`, and returns
/// what the script printed (the image, manifest and wasm digests).
pub fn build_image(wasm: &Path, out: &Path, tag: &str) -> io::Result<String> {
    let output = Command::new("python3")
        .arg(repo_root().join("scripts/oci-image.py"))
        .arg(wasm)
        .arg(out)
        .args(["--tag", tag])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "oci-image.py failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(text)
}

/// The value the script printed on the line starting with `label` (`manifest`, `wasm`).
pub fn printed(output: &str, label: &str) -> Option<String> {
    output.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some(label)).then(|| words.next().map(str::to_string))?
    })
}

/// An OCI image layout directory.
pub struct Layout(pub PathBuf);

impl Layout {
    /// The bytes of a blob, by digest.
    pub fn blob(&self, digest: &str) -> io::Result<Vec<u8>> {
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| io::Error::other(format!("not a sha256 digest: {digest}")))?;
        std::fs::read(self.0.join("blobs/sha256").join(hex))
    }

    /// `index.json`, parsed.
    pub fn index(&self) -> io::Result<Value> {
        let text = std::fs::read_to_string(self.0.join("index.json"))?;
        serde_json::from_str(&text).map_err(io::Error::other)
    }

    /// The digest of the manifest tagged `tag` in the index.
    pub fn manifest_digest(&self, tag: &str) -> io::Result<String> {
        let index = self.index()?;
        index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .and_then(|m| m["digest"].as_str())
            .map(str::to_string)
            .ok_or_else(|| io::Error::other(format!("no manifest tagged {tag} in {index}")))
    }
}

/// The files of an uncompressed tar archive: (name, type flag, contents).
pub fn tar_entries(mut tar: &[u8]) -> io::Result<Vec<(String, u8, Vec<u8>)>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut out = Vec::new();
    while tar.len() >= 512 {
        let (header, rest) = tar.split_at(512);
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let field = |from: usize, to: usize| -> &[u8] {
            let f = header.get(from..to).unwrap_or_default();
            let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
            f.get(..end).unwrap_or_default()
        };
        let name = String::from_utf8_lossy(field(0, 100)).into_owned();
        let size_text = String::from_utf8_lossy(field(124, 136)).trim().to_string();
        let size = usize::from_str_radix(&size_text, 8).map_err(|_| bad("bad tar size"))?;
        let kind = header.get(156).copied().unwrap_or(0);
        let data = rest.get(..size).ok_or_else(|| bad("tar entry cut short"))?;
        out.push((name, kind, data.to_vec()));
        let padded = size.div_ceil(512) * 512;
        tar = rest.get(padded..).unwrap_or_default();
    }
    Ok(out)
}

/// The uncompressed bytes of a gzip stream.
pub fn gunzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

/// Runs `skopeo` with these arguments; its output, or an error with it.
pub fn skopeo(args: &[&str]) -> io::Result<String> {
    let output = Command::new("skopeo").args(args).output()?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        Ok(text)
    } else {
        Err(io::Error::other(format!("skopeo {}: {text}", args.join(" "))))
    }
}

/// A local OCI registry: Debian's `docker-registry` on 127.0.0.1 at a free port, storing into a
/// scratch directory, without TLS or authentication. Stopped when dropped; its log is printed if
/// the test is failing.
pub struct Registry {
    child: Option<Child>,
    pub port: u16,
    log_path: PathBuf,
    _dir: TempDir,
}

impl Registry {
    /// Starts the registry and waits (up to 20 s) until `GET /v2/` answers 200.
    pub fn start() -> io::Result<Registry> {
        let dir = TempDir::new("registry")?;
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let config = dir.path().join("config.yml");
        // The distribution project's configuration format (version 0.1). The debug server and
        // the metrics endpoint stay off; only the API listens, on loopback.
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )?;
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut registry = Registry {
            child: Some(child),
            port,
            log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = registry.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(io::Error::other(format!(
                    "docker-registry exited with {status}:\n{}",
                    registry.log()
                )));
            }
            if let Ok(resp) = registry.get("/v2/", &[]) {
                if resp.status == 200 {
                    return Ok(registry);
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "docker-registry did not answer on port {port}:\n{}",
                    registry.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A GET on the registry's API.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> io::Result<crate::http::Response> {
        let mut req = crate::http::Request::get(path).host(&self.address());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        crate::http::send(self.port, &req)
    }

    /// The registry's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let mut err = io::stderr().lock();
            let _ = writeln!(
                err,
                "----- registry log -----\n{}----- end of registry log -----",
                self.log()
            );
        }
    }
}
