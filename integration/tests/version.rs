//! The filter's own version through a real Envoy: logged when the plugin starts, and written into
//! every record (`filter_version`, `ai_attribution.filter_version`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::http::Request;
use integration::{request_id, Stack};
use serde_json::json;

/// The version the filter reports: the crate's, as Cargo.toml sets it for the whole workspace.
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn the_version_is_logged_at_start_and_in_every_record() {
    let stack = Stack::start(&json!({"dimensions": {"user": ["header:x-user-id"]}, "require": [["user"]]})).unwrap();
    let started = format!("ai-attribution {VERSION} starting");
    assert!(
        stack
            .envoy
            .log()
            .lines()
            .any(|l| l.contains("[info]") && l.contains(&started)),
        "no info line {started:?} in Envoy's log:\n{}",
        stack.envoy.log()
    );
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    for (tag, user) in [("version-ok", Some("alice")), ("version-rejected", None)] {
        let id = request_id(tag);
        let mut req = Request::post("/v1/chat/completions")
            .header("x-request-id", &id)
            .json(&body);
        if let Some(user) = user {
            req = req.header("x-user-id", user);
        }
        let resp = stack.send(&req).unwrap();
        assert_eq!(resp.status, if user.is_some() { 200 } else { 403 });
        let line = stack
            .log_for(&id)
            .unwrap_or_else(|| panic!("no access-log line for {id}\n{}", stack.envoy.log()));
        assert_eq!(line["filter_version"], VERSION, "{line}");
        assert_eq!(
            line["record"]["value"]["ai_attribution.filter_version"], VERSION,
            "{line}"
        );
    }
}
