//! Every shipped Envoy config passes `envoy --mode validate`; invalid plugin configs are refused
//! by a real Envoy with the field named in its log.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::bootstrap::{record_keys, Bootstrap};
use integration::envoy::{free_port, repo_root, validate_config_in, wasm_path, Envoy, TempDir};
use integration::http::{send, Request};
use integration::pki::{Pki, TlsFileServer};
use integration::render::{self, file_paths, render, Local};
use std::path::PathBuf;
use std::time::Duration;

/// Envoy bootstraps under `envoy/` (Kubernetes manifests live in `envoy/istio` and `envoy/envoy-gateway`).
fn shipped_configs() -> Vec<PathBuf> {
    let dir = repo_root().join("envoy");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .collect();
    out.sort();
    out
}

/// Every shipped config passes `envoy --mode validate` run from a directory that is not the
/// repository, with its documented placeholders replaced: the wasm path by the built filter, the
/// mTLS certificate directory by test certificates. The system CA bundle is used as it is.
#[test]
fn every_shipped_envoy_config_validates_from_any_directory() {
    let configs = shipped_configs();
    assert!(configs.len() >= 4, "envoy.yaml, mtls.yaml, jwt.yaml and egress.yaml");
    let dir = TempDir::new("validate").unwrap();
    let tls = dir.path().join("tls");
    let pki = Pki::new(&tls).unwrap();
    // Written as server.crt and server.key, the names the config expects.
    pki.issue("server", "/CN=localhost", "DNS:localhost", "serverAuth")
        .unwrap();
    let cwd = dir.path().join("elsewhere");
    std::fs::create_dir_all(&cwd).unwrap();
    let local = Local {
        wasm: Some(wasm_path()),
        tls_dir: Some(tls),
        ..Local::default()
    };
    for file in configs {
        let text = std::fs::read_to_string(&file).unwrap();
        let copy = dir.path().join(file.file_name().unwrap());
        std::fs::write(&copy, render(&text, &local)).unwrap();
        let v = validate_config_in(&copy, &cwd).unwrap();
        assert!(v.ok, "{} does not validate:\n{}", file.display(), v.output);
    }
}

/// No shipped config depends on the directory Envoy starts in: every file it names is absolute,
/// and the filter comes from the documented placeholder.
#[test]
fn shipped_configs_name_only_absolute_paths() {
    for file in shipped_configs() {
        let text = std::fs::read_to_string(&file).unwrap();
        let paths = file_paths(&text);
        assert!(!paths.is_empty(), "{}: no paths found", file.display());
        for path in &paths {
            assert!(path.starts_with('/'), "{}: relative path {path}", file.display());
        }
        // The filter comes from the documented file, or (envoy/remote-fetch.yaml) over HTTPS
        // pinned by its SHA-256.
        let doc: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let mut remote = Vec::new();
        find_remote_code(&doc, &mut remote);
        assert!(
            paths.iter().any(|p| p == render::WASM) || !remote.is_empty(),
            "{}: the filter should be loaded from {} or fetched",
            file.display(),
            render::WASM
        );
        for code in remote {
            let uri = code["http_uri"]["uri"].as_str().unwrap_or_default();
            assert!(uri.starts_with("https://"), "{}: fetched over {uri}", file.display());
            assert_eq!(
                code["sha256"].as_str().map(str::len),
                Some(64),
                "{}: a fetched module is pinned by its sha256",
                file.display()
            );
        }
    }
}

/// Every `vm_config.code.remote` in a config.
fn find_remote_code(node: &serde_json::Value, found: &mut Vec<serde_json::Value>) {
    match node {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == "code" && !v["remote"].is_null() {
                    found.push(v["remote"].clone());
                }
                find_remote_code(v, found);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| find_remote_code(v, found)),
        _ => {}
    }
}

/// The JWKS and the providers are fetched over verified TLS: every upstream TLS context names
/// its server (SNI) and checks its certificate against the system CA bundle and that name.
#[test]
fn upstream_tls_verifies_the_server() {
    let mut checked = 0;
    for file in shipped_configs() {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        for cluster in doc["static_resources"]["clusters"].as_array().unwrap() {
            let tls = &cluster["transport_socket"]["typed_config"];
            if tls.is_null() {
                continue;
            }
            let name = cluster["name"].as_str().unwrap();
            let host = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"]["address"]
                .as_str()
                .unwrap();
            assert_eq!(tls["sni"], host, "{}: cluster {name}: sni", file.display());
            let v = &tls["common_tls_context"]["validation_context"];
            assert_eq!(
                v["trusted_ca"]["filename"],
                render::SYSTEM_CA,
                "{}: cluster {name}: trusted_ca",
                file.display()
            );
            assert_eq!(
                v["match_typed_subject_alt_names"],
                serde_json::json!([{"san_type": "DNS", "matcher": {"exact": host}}]),
                "{}: cluster {name}: the certificate must name {host}",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "jwt.yaml's IdP, egress.yaml's two providers and remote-fetch.yaml's artifact server"
    );
}

#[test]
fn every_shipped_access_log_carries_every_record_key() {
    for file in shipped_configs() {
        let text = std::fs::read_to_string(&file).unwrap();
        // envoy/otel.yaml names its attributes with the OpenTelemetry names (checked against the
        // record's in tests/otel.rs); the JSON logs use the scalar keys' names.
        let otel = text.contains("envoy.access_loggers.open_telemetry");
        for key in record_keys() {
            let command = format!("\"%FILTER_STATE(wasm.ai_attribution.{key}:PLAIN)%\"");
            let field = if otel { command } else { format!("{key}: {command}") };
            assert!(text.contains(&field), "{} does not log {key}", file.display());
        }
        assert!(otel || text.contains("%FILTER_STATE(wasm.ai_attribution:TYPED)%"));
    }
}

#[test]
fn every_shipped_config_normalises_paths_and_keeps_escaped_slashes() {
    // A second layer under the filter's recognition (README.md, "What cannot be bypassed or forged"); escaped slashes stay
    // as sent because Bedrock model IDs carry %2F and SigV4 signs the path as sent.
    for file in shipped_configs() {
        let text = std::fs::read_to_string(&file).unwrap();
        for setting in [
            "normalize_path: true",
            "merge_slashes: true",
            "path_with_escaped_slashes_action: KEEP_UNCHANGED",
        ] {
            assert!(text.contains(setting), "{} does not set {setting}", file.display());
        }
    }
}

fn refused(plugin_config: &str) -> String {
    let mut b = Bootstrap::new(
        free_port(),
        plugin_config.to_string(),
        std::env::temp_dir().join("unused.log"),
    );
    b.admin_port = free_port();
    let (code, log) = Envoy::wait_exit(&b.to_json(), Duration::from_secs(30)).unwrap();
    assert_ne!(code, Some(0), "envoy accepted {plugin_config}");
    log
}

#[test]
fn an_invalid_config_is_refused_and_the_log_names_the_field() {
    let cases = [
        (
            r#"{"dimensions":{"user":["header:x-user-id","heder:x"]},"require":[["user"]]}"#,
            r#"dimensions.user[1]: unknown source kind "heder""#,
        ),
        (r#"{"mode":"block"}"#, "mode: unknown variant `block`"),
        (
            r#"{"correlation":{"headr":"x"}}"#,
            "correlation.headr: unknown field `headr`",
        ),
        (
            r#"{"require":[["team"]]}"#,
            r#"require[0][0]: "team" is not a configured dimension"#,
        ),
        (
            r#"{"dimensions":{"user":["peer:cn"]},"require":[["user"]]}"#,
            "dimensions.user[0]: unknown peer field \"cn\"",
        ),
        ("not json", "the configuration must be a JSON object"),
    ];
    for (config, want) in cases {
        let log = refused(config);
        assert!(log.contains("invalid ai-attribution configuration"), "{config}: {log}");
        assert!(log.contains(want), "{config}: log does not say {want:?}:\n{log}");
    }
}

/// `envoy/egress.yaml` as shipped, with only the providers' addresses and the system CA bundle
/// swapped for local HTTPS servers and their CA: each prefix reaches its provider over TLS, with
/// the prefix removed, and a server whose certificate does not name the provider is refused.
#[test]
fn egress_originates_tls_to_each_provider() {
    let dir = TempDir::new("egress").unwrap();
    let pki = Pki::new(&dir.path().join("tls")).unwrap();
    let providers = ["api.openai.com", "api.anthropic.com"];
    let mut servers = Vec::new();
    let mut upstreams = Vec::new();
    for (i, host) in providers.iter().enumerate() {
        // The anthropic stand-in presents a certificate for another name: Envoy must refuse it.
        let name = if i == 0 {
            host.to_string()
        } else {
            "impostor.example".to_string()
        };
        let cert = pki
            .issue(
                &format!("provider{i}"),
                &format!("/CN={name}"),
                &format!("DNS:{name}"),
                "serverAuth",
            )
            .unwrap();
        let www = dir.path().join(format!("www{i}"));
        std::fs::create_dir_all(www.join("v1")).unwrap();
        std::fs::write(www.join("v1/models"), format!("served for {host}")).unwrap();
        let port = free_port();
        servers.push(TlsFileServer::start(&www, &cert, port).unwrap());
        upstreams.push((host.to_string(), port));
    }
    let (listen, admin) = (free_port(), free_port());
    let shipped = std::fs::read_to_string(repo_root().join("envoy/egress.yaml")).unwrap();
    let config = render(
        &shipped,
        &Local {
            wasm: Some(wasm_path()),
            system_ca: Some(pki.ca()),
            listen_port: Some(listen),
            admin_port: Some(admin),
            upstreams,
            access_log: Some(dir.path().join("access.log")),
            ..Local::default()
        },
    );
    let envoy = Envoy::start(&config, admin).unwrap();
    let get = |path: &str| send(listen, &Request::get(path).header("connection", "close")).unwrap();
    let resp = get("/openai/v1/models");
    assert_eq!(resp.status, 200, "{}\n{}", resp.text(), envoy.log());
    assert_eq!(
        resp.text(),
        "served for api.openai.com",
        "/openai/ is removed before it goes upstream"
    );
    assert!(envoy.stat("cluster.openai.ssl.handshake").unwrap_or(0) >= 1);
    let resp = get("/anthropic/v1/models");
    assert_eq!(resp.status, 503, "a certificate for another name: {}", resp.text());
    assert!(envoy.stat("cluster.anthropic.ssl.fail_verify_san").unwrap_or(0) >= 1);
    assert_eq!(get("/elsewhere").status, 404, "only the two prefixes are routed");
}
