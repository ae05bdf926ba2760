//! The official Python SDKs through a real Envoy with the filter: starts the stack, then runs the
//! pytest suite in `integration/sdk/` against it, in the pinned virtualenv `.venv-sdk/` that
//! `make test` (or `make sdk-venv`) creates. Envoy's log is printed when the suite fails.
//!
//! `SDK_PYTEST_ARGS` passes extra arguments to pytest (split on spaces, e.g. `-x -v`), and
//! `SDK_PYTEST_K` a `-k` expression (e.g. `anthropic and not stream`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::envoy::repo_root;
use integration::Stack;
use serde_json::json;
use std::process::Command;

/// The plugin configuration the suite's expectations are written against.
fn plugin_config() -> serde_json::Value {
    let price =
        |input: f64, output: f64, cached: f64| json!({"input": input, "output": output, "cached_input": cached});
    json!({
        "dimensions": {"user": ["header:x-user-id"], "business_unit": ["header:x-business-unit"]},
        "require": [["user"]],
        "pricing": {
            "gpt-4o*": price(2.5, 10.0, 1.25),
            "claude-sonnet-4-5*": price(3.0, 15.0, 0.3),
            "gemini-2.5-flash": price(0.3, 2.5, 0.075),
            "us.amazon.nova-lite-v1:0": price(0.06, 0.24, 0.015),
            "llama3.2": price(0.0, 0.0, 0.0),
            "command-a-03-2025": price(2.5, 10.0, 2.5)
        }
    })
}

#[test]
fn official_sdks_through_envoy() {
    let root = repo_root();
    let python = root.join(".venv-sdk/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make sdk-venv` (make test creates it)",
        python.display()
    );
    let stack = Stack::start(&plugin_config()).expect("stack starts");
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pytest", "integration/sdk", "-q"])
        .current_dir(&root)
        .env("AI_ATTRIBUTION_BASE_URL", format!("http://127.0.0.1:{}", stack.port))
        .env("AI_ATTRIBUTION_ACCESS_LOG", &stack.access_log)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // The SDKs must reach only the local stack: no proxies, no cloud credentials or metadata.
        .env("NO_PROXY", "*")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("GOOGLE_APPLICATION_CREDENTIALS", "/dev/null")
        .env("NO_COLOR", "1");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
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
    ] {
        cmd.env_remove(var);
    }
    if let Ok(extra) = std::env::var("SDK_PYTEST_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    if let Ok(expr) = std::env::var("SDK_PYTEST_K") {
        cmd.args(["-k", &expr]);
    }
    let out = cmd.output().expect("pytest runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // pytest's own summary, so the run shows what the suite did.
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the SDK suite failed (exit {:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
}
