//! The official Python SDKs through a real Envoy with the filter: starts the stack, then runs the
//! pytest suite in `integration/sdk/` against it, in the pinned virtualenv `.venv-sdk/` that
//! `make test` (or `make sdk-venv`) creates. Envoy's log is printed when the suite fails.
//!
//! `SDK_PYTEST_ARGS` passes extra arguments to pytest (split on spaces, e.g. `-x -v`), and
//! `SDK_PYTEST_K` a `-k` expression (e.g. `anthropic and not stream`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::{pytest, Stack};
use serde_json::json;

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
    let stack = Stack::start(&plugin_config()).expect("stack starts");
    let base_url = format!("http://127.0.0.1:{}", stack.port);
    let cmd =
        pytest::command("integration/sdk", &[], "SDK", &base_url, &stack.access_log).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = pytest::run(cmd) {
        panic!("the SDK suite failed, {e}");
    }
}
