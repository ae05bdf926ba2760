//! The README's examples are true: its `curl` commands, run against `envoy/envoy.yaml` and the
//! local model server, give the responses and access-log lines the README shows.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::envoy::{free_port, repo_root, wasm_path, Envoy, TempDir};
use integration::log_for;
use integration::model_server::ModelServer;
use integration::readme::{marked_blocks, mask_uuids};
use integration::render::{render, Local};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn run_shell(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn split_http(text: &str) -> (Vec<String>, String) {
    let text = mask_uuids(text);
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    (head.lines().map(str::to_string).collect(), body.trim().to_string())
}

#[test]
fn readme_examples_give_what_the_readme_shows() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let blocks: Vec<(String, String, String)> = marked_blocks(&readme, "readme-")
        .unwrap()
        .into_iter()
        .map(|m| (m.kind, m.arg, m.text))
        .collect();
    assert!(blocks.len() >= 6, "README examples not found");

    let server = ModelServer::start().unwrap();
    let dir = TempDir::new("readme").unwrap();
    let (port, admin) = (free_port(), free_port());
    let log_path = dir.path().join("access.log");
    let shipped = std::fs::read_to_string(repo_root().join("envoy/envoy.yaml")).unwrap();
    let config = render(
        &shipped,
        &Local {
            wasm: Some(wasm_path()),
            listen_port: Some(port),
            admin_port: Some(admin),
            model_server_port: Some(server.port()),
            access_log: Some(log_path.clone()),
            ..Local::default()
        },
    );
    let envoy = Envoy::start(&config, admin).unwrap();
    let localize = |cmd: &str| {
        cmd.replace("localhost:10000", &format!("127.0.0.1:{port}"))
            .replace("localhost:9901", &format!("127.0.0.1:{admin}"))
    };
    let log_line = |id: &str| -> Value {
        log_for(&log_path, id).unwrap_or_else(|| panic!("no access-log line for {id}\n{}", envoy.log()))
    };

    for (kind, arg, block) in blocks {
        match kind.as_str() {
            "readme-example" => {
                let (cmd, expected) = block.split_once('\n').unwrap_or((&block, ""));
                let cmd = cmd.strip_prefix("$ ").expect("an example starts with `$ `");
                if arg == "metrics" {
                    std::thread::sleep(Duration::from_millis(300));
                }
                let actual = run_shell(&localize(cmd));
                if expected.trim().is_empty() {
                    assert!(!actual.is_empty(), "{arg}: no output");
                    continue;
                }
                if arg == "metrics" {
                    let mut want: Vec<&str> = expected.lines().collect();
                    let mut got: Vec<&str> = actual.lines().collect();
                    want.sort_unstable();
                    got.sort_unstable();
                    assert_eq!(got, want, "{arg}");
                    continue;
                }
                let (want_head, want_body) = split_http(expected);
                let (got_head, got_body) = split_http(&actual);
                assert_eq!(got_head.first(), want_head.first(), "{arg}: status line");
                for h in want_head.iter().skip(1) {
                    assert!(
                        got_head.iter().any(|g| g.eq_ignore_ascii_case(h)),
                        "{arg}: header {h:?} not in {got_head:?}"
                    );
                }
                let want_json: Value = serde_json::from_str(&want_body).unwrap();
                let got_json: Value = serde_json::from_str(&got_body).unwrap_or(Value::String(got_body.clone()));
                assert_eq!(got_json, want_json, "{arg}: body");
            }
            "readme-log" => {
                let mut want: Value = serde_json::from_str(&mask_uuids(&block)).unwrap();
                let mut got: Value = serde_json::from_str(&mask_uuids(&log_line(&arg).to_string())).unwrap();
                for varying in ["start_time", "duration_ms"] {
                    want.as_object_mut().unwrap().remove(varying);
                    got.as_object_mut().unwrap().remove(varying);
                }
                assert_eq!(got, want, "access-log line for {arg}:\n{got}");
            }
            other => panic!("unknown README marker {other}"),
        }
    }
}
