//! The Python suites (`integration/sdk/`, `integration/mcp/`): pytest in the pinned virtualenv
//! `.venv-sdk/` that `make test` (or `make sdk-venv`) creates, run from the repository against a
//! local stack only.

use crate::envoy::repo_root;
use std::path::Path;
use std::process::Command;

/// What a developer's shell may set that would send a suite elsewhere than the local stack:
/// proxies, certificate bundles, the providers' keys and endpoints, cloud profiles.
const SCRUBBED: [&str; 22] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "CO_API_KEY",
    "OLLAMA_HOST",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// `python -m pytest <suite> -q` with `args`, pointed at `base_url` and the stack's access log,
/// with the environment scrubbed. `<prefix>_PYTEST_ARGS` adds arguments (split on spaces) and
/// `<prefix>_PYTEST_K` a `-k` expression. An error when the virtualenv is missing.
pub fn command(suite: &str, args: &[&str], prefix: &str, base_url: &str, access_log: &Path) -> Result<Command, String> {
    let root = repo_root();
    let python = root.join(".venv-sdk/bin/python");
    if !python.exists() {
        return Err(format!(
            "{} is missing: run `make sdk-venv` (make test creates it)",
            python.display()
        ));
    }
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pytest", suite, "-q"])
        .args(args)
        .current_dir(&root)
        .env("AI_ATTRIBUTION_BASE_URL", base_url)
        .env("AI_ATTRIBUTION_ACCESS_LOG", access_log)
        // The suites' shared helpers (integration/pylib/access_log.py).
        .env("PYTHONPATH", root.join("integration/pylib"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "*")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("GOOGLE_APPLICATION_CREDENTIALS", "/dev/null")
        .env("NO_COLOR", "1");
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    if let Ok(extra) = std::env::var(format!("{prefix}_PYTEST_ARGS")) {
        cmd.args(extra.split_whitespace());
    }
    if let Ok(expr) = std::env::var(format!("{prefix}_PYTEST_K")) {
        cmd.args(["-k", &expr]);
    }
    Ok(cmd)
}

/// Runs the suite and prints pytest's own summary; on failure, an error with the exit code and
/// everything pytest wrote.
pub fn run(mut cmd: Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("pytest does not run: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("exit {:?}:\n{stdout}\n{stderr}", out.status.code()))
    }
}
