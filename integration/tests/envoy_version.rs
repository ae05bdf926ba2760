//! Which Envoy the suite runs on: the harness takes `$ENVOY_BIN` (default: the pinned Envoy in
//! `.venv/`). `make test-envoy-matrix` (and `make test`) run a smoke subset of the suite against
//! the oldest supported Envoy too, with `ENVOY_EXPECT_VERSION` set; this test makes sure that the
//! binary used is the one asked for, so that the matrix cannot pass on the wrong Envoy.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::envoy::{envoy_bin, repo_root, validate_config_in, wasm_path, TempDir};
use integration::render::{render, Local};
use std::process::Command;

/// The version in `envoy --version` (`... version: <sha>/<version>/Clean/RELEASE/BoringSSL`).
fn version() -> String {
    let out = Command::new(envoy_bin())
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", envoy_bin().display()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("version: ")
        .nth(1)
        .and_then(|v| v.split('/').nth(1))
        .unwrap_or_else(|| panic!("no version in {text:?}"))
        .to_string()
}

#[test]
fn the_suite_runs_on_the_envoy_it_was_asked_to() {
    let version = version();
    println!("Envoy {version} ({})", envoy_bin().display());
    let minor: u32 = version.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap();
    assert!(minor >= 36, "Envoy {version} is older than the oldest supported (1.36)");
    if let Ok(want) = std::env::var("ENVOY_EXPECT_VERSION") {
        assert_eq!(version, want, "ENVOY_BIN={}", envoy_bin().display());
    }
}

/// What differs between the supported versions, as observed: Envoy 1.40 takes the OpenTelemetry
/// access logger's `log_name`, `grpc_service` and `buffer_flush_interval` at the top of its config
/// and logs `common_config` (which envoy/otel.yaml uses) as deprecated; Envoy 1.36 refuses the
/// top-level form. The shipped form loads on both.
#[test]
fn the_opentelemetry_logger_config_form_that_each_version_takes() {
    let version = version();
    let dir = TempDir::new("otel-forms").unwrap();
    let shipped = std::fs::read_to_string(repo_root().join("envoy/otel.yaml")).unwrap();
    let shipped = render(
        &shipped,
        &Local {
            wasm: Some(wasm_path()),
            ..Local::default()
        },
    );
    let common = "              common_config:\n                log_name: ai_attribution\n                transport_api_version: V3\n                grpc_service:\n                  envoy_grpc: {cluster_name: otel_collector}\n                buffer_flush_interval: 1s\n";
    assert!(shipped.contains(common), "envoy/otel.yaml uses common_config");
    let top = "              log_name: ai_attribution\n              grpc_service:\n                envoy_grpc: {cluster_name: otel_collector}\n              buffer_flush_interval: 1s\n";
    let variant = shipped.replace(common, top);
    let (a, b) = (dir.path().join("shipped.yaml"), dir.path().join("top-level.yaml"));
    std::fs::write(&a, &shipped).unwrap();
    std::fs::write(&b, &variant).unwrap();
    let shipped = validate_config_in(&a, dir.path()).unwrap();
    assert!(
        shipped.ok,
        "Envoy {version} refuses envoy/otel.yaml:\n{}",
        shipped.output
    );
    let variant = validate_config_in(&b, dir.path()).unwrap();
    match version.as_str() {
        v if v.starts_with("1.36.") => {
            assert!(!variant.ok, "Envoy {version} took the top-level form");
        }
        v if v.starts_with("1.40.") => {
            assert!(variant.ok, "Envoy {version}: {}", variant.output);
            assert!(
                shipped.output.contains("Using deprecated option 'envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig.common_config'"),
                "{}",
                shipped.output
            );
        }
        _ => {}
    }
}
