//! `ai-attribution check` on every configuration the repository ships, and on bad ones.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn check(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ai-attribution"))
        .arg("check")
        .arg(file)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn scratch(name: &str, content: &str) -> PathBuf {
    let dir = root().join("target/cli-test/check");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn every_shipped_envoy_config_passes() {
    let mut checked = 0;
    for dir in ["envoy", "envoy/istio", "envoy/envoy-gateway"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if !matches!(path.extension(), Some(e) if e == "yaml") {
                continue;
            }
            let body = std::fs::read_to_string(&path).unwrap();
            // Telemetry, MeshConfig and bootstrap-override resources carry no plugin config.
            let loads_a_plugin = body.contains("envoy.filters.http.wasm")
                || body.contains("kind: WasmPlugin")
                || body.contains("kind: EnvoyExtensionPolicy");
            if !body.contains("ai_attribution") || !loads_a_plugin {
                continue;
            }
            let o = check(&path);
            assert_eq!(o.status.code(), Some(0), "{}:\n{}", path.display(), text(&o));
            assert!(text(&o).contains("0 error(s)"), "{}", text(&o));
            checked += 1;
        }
    }
    assert!(checked >= 5, "checked only {checked} files");
}

#[test]
fn every_scenario_config_passes() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("tests/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if !matches!(path.extension(), Some(e) if e == "json") {
            continue;
        }
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = format!("scenario-{}", path.file_name().unwrap().to_string_lossy());
        let config = scratch(&name, &doc["config"].to_string());
        let o = check(&config);
        assert_eq!(o.status.code(), Some(0), "{}:\n{}", path.display(), text(&o));
        // The scenario file itself is recognised too.
        let o = check(&path);
        assert_eq!(o.status.code(), Some(0), "{}:\n{}", path.display(), text(&o));
        checked += 1;
    }
    assert!(checked >= 4);
}

#[test]
fn shipped_configs_get_the_expected_warnings() {
    let o = check(&root().join("envoy/envoy.yaml"));
    let t = text(&o);
    assert!(t.contains("listener \"ai_gateway\" has no mTLS"), "{t}");
    let o = check(&root().join("envoy/mtls.yaml"));
    assert!(!text(&o).contains("has no mTLS"), "{}", text(&o));
    let o = check(&root().join("envoy/istio/wasmplugin.yaml"));
    assert!(text(&o).contains("unless the listener requires mTLS"), "{}", text(&o));
}

#[test]
fn errors_name_the_field_like_the_filter() {
    let bad = r#"{"dimensions": {"user": ["header:x-user-id", "heder:x-user"]}, "require": [["user"]]}"#;
    let o = check(&scratch("bad.json", bad));
    assert_eq!(o.status.code(), Some(1));
    let want = ai_attribution_message(bad);
    assert!(text(&o).contains(&want), "{}\nwant {want}", text(&o));
    assert!(
        want.starts_with("dimensions.user[1]: unknown source kind \"heder\""),
        "{want}"
    );

    // The same config inside a bootstrap and a WasmPlugin: the same message.
    let envoy = std::fs::read_to_string(root().join("envoy/envoy.yaml")).unwrap();
    let envoy = envoy.replace("\"header:x-service-account\"", "\"heder:x-service-account\"");
    let o = check(&scratch("bad-envoy.yaml", &envoy));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("dimensions.service_account[0]: unknown source kind \"heder\""),
        "{}",
        text(&o)
    );
    let istio = std::fs::read_to_string(root().join("envoy/istio/wasmplugin.yaml")).unwrap();
    let istio = istio.replace(
        "require:\n    - [user, business_unit]",
        "require:\n    - [user, business_unt]",
    );
    let o = check(&scratch("bad-istio.yaml", &istio));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("require[0][1]: \"business_unt\" is not a configured dimension"),
        "{}",
        text(&o)
    );
}

/// What the filter itself logs for this config.
fn ai_attribution_message(config: &str) -> String {
    ai_attribution::config::Config::parse(config.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_files_and_usage() {
    let o = check(Path::new("/nonexistent/plugin.json"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot read"), "{}", text(&o));
    let o = check(&root().join("envoy"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    for (name, body) in [
        ("empty.json", ""),
        ("telemetry.yaml", "kind: Telemetry\nspec: {}\n"),
        ("broken.yaml", "static_resources: [\n"),
        ("list.yaml", "- a\n- b\n"),
        ("truncated.json", "{\"mode\": \"enforce\", \"dimensions\": {"),
    ] {
        let o = check(&scratch(name, body));
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    let o = Command::new(env!("CARGO_BIN_EXE_ai-attribution"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(env!("CARGO_BIN_EXE_ai-attribution"))
        .args(["check", "--help"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("Examples:"), "{}", text(&o));
}

#[test]
fn json_bootstraps_are_checked_too() {
    // The bootstrap the test harness gives Envoy, as JSON.
    let config = r#"{"dimensions": {"user": ["header:x-user-id"], "sa": ["peer:spiffe_id"]}, "require": [["sa"]]}"#;
    let b = integration::bootstrap::Bootstrap::new(1, config.to_string(), root().join("target/cli-test/x.log"));
    let o = check(&scratch("bootstrap.json", &b.to_json()));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("listener \"ai_gateway\" filter_chains[0].filters[0].http_filters[0]"),
        "{t}"
    );
    assert!(t.contains("no alternative of require can ever be met"), "{t}");
    let b = integration::bootstrap::Bootstrap::new(
        1,
        "{\"mode\": \"strict\"}".into(),
        root().join("target/cli-test/x.log"),
    );
    let o = check(&scratch("bootstrap-bad.json", &b.to_json()));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("mode: unknown variant `strict`"), "{}", text(&o));
}
