//! `make run-mtls` and `make run-jwt` work as the README shows: the demo credentials that
//! `integration::demo` makes (the same code the `demo` binary runs), with the shipped
//! `envoy/mtls.yaml` and `envoy/jwt.yaml` rendered as `scripts/run.sh` renders them, through a real
//! Envoy. The README's demo commands (`<!-- demo: NAME -->` blocks) are run as they are written,
//! from a directory whose `.run/` holds the credentials, and give the output shown; the log lines
//! (`<!-- demo-log: ID -->`) carry the fields shown. The JWT demo also shows that Envoy verifies
//! the identity provider's certificate.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::demo::{prepare, Demo, Prepared, Setup};
use integration::envoy::{free_port, repo_root, wasm_path, Envoy, TempDir};
use integration::log_for;
use integration::model_server::ModelServer;
use integration::pki::{CertPair, Pki, TlsFileServer};
use integration::readme::{marked_blocks, mask_uuids};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A demo as `make run-<demo>` runs it, in a scratch directory (its `.run/` is the run directory).
struct Running {
    // Field order: Envoy stops first.
    envoy: Envoy,
    _idp: Option<TlsFileServer>,
    _server: ModelServer,
    prepared: Prepared,
    setup: Setup,
    dir: TempDir,
}

impl Running {
    fn start(demo: Demo) -> Running {
        Self::start_with_idp(demo, |p| p.jwt.as_ref().map(|j| j.idp.clone()))
    }

    /// Starts a demo; for the JWT demo, the IdP presents the certificate `idp_cert` picks.
    fn start_with_idp(demo: Demo, idp_cert: impl FnOnce(&Prepared) -> Option<CertPair>) -> Running {
        let dir = TempDir::new("demo").unwrap();
        let server = ModelServer::start().unwrap();
        let setup = Setup {
            run_dir: dir.path().join(".run"),
            wasm: wasm_path(),
            listen_port: free_port(),
            admin_port: free_port(),
            model_server_port: server.port(),
            idp_port: free_port(),
            ratelimit_port: free_port(),
            access_log: Some(dir.path().join("access.log")),
        };
        let prepared = prepare(demo, &repo_root().join("envoy"), &setup).unwrap();
        let idp = match (&prepared.jwt, idp_cert(&prepared)) {
            (Some(jwt), Some(cert)) => Some(TlsFileServer::start(&jwt.www, &cert, setup.idp_port).unwrap()),
            _ => None,
        };
        let config = std::fs::read_to_string(&prepared.config).unwrap();
        let envoy = Envoy::start(&config, setup.admin_port).unwrap();
        Running {
            envoy,
            _idp: idp,
            _server: server,
            prepared,
            setup,
            dir,
        }
    }

    /// Runs a README command as written, from the scratch directory, on this demo's port.
    fn shell(&self, cmd: &str) -> String {
        let cmd = cmd.replace("localhost:10000", &format!("localhost:{}", self.setup.listen_port));
        let out = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log_line(&self, request_id: &str) -> Value {
        let path = self.setup.access_log.clone().unwrap();
        log_for(&path, request_id)
            .unwrap_or_else(|| panic!("no access-log line for {request_id}:\n{}", self.envoy.log()))
    }
}

/// The README's `<!-- demo: NAME -->` blocks: (command, expected output) pairs.
fn readme_commands(name: &str) -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for block in marked_blocks(&readme, "demo").unwrap() {
        if block.kind != "demo" || block.arg != name {
            continue;
        }
        for line in block.text.lines() {
            if let Some(cmd) = line.strip_prefix("$ ") {
                pairs.push((cmd.to_string(), String::new()));
            } else if let Some((_, out)) = pairs.last_mut() {
                out.push_str(line);
                out.push('\n');
            } else {
                panic!("demo {name}: output before the first command: {line}");
            }
        }
    }
    assert!(!pairs.is_empty(), "the README shows no {name} demo");
    pairs
}

/// The README's `<!-- demo-log: ID -->` blocks for request ids starting with `prefix`.
fn readme_log_fields(prefix: &str) -> Vec<(String, Value)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let logs: Vec<(String, Value)> = marked_blocks(&readme, "demo-log")
        .unwrap()
        .into_iter()
        .filter(|b| b.arg.starts_with(prefix))
        .map(|b| (b.arg, serde_json::from_str(&b.text).unwrap()))
        .collect();
    assert!(!logs.is_empty(), "the README shows no {prefix} log line");
    logs
}

fn replay(demo: Demo, name: &str) {
    let running = Running::start(demo);
    for (cmd, want) in readme_commands(name) {
        let got = running.shell(&cmd);
        assert_eq!(
            mask_uuids(got.trim()),
            mask_uuids(want.trim()),
            "README command:\n$ {cmd}\n{}",
            running.envoy.log()
        );
    }
    for (id, fields) in readme_log_fields(&format!("{name}-")) {
        let line = running.log_line(&id);
        for (key, value) in fields.as_object().unwrap() {
            assert_eq!(&line[key], value, "{id}: {key} in {line}");
        }
    }
}

#[test]
fn mtls_demo_answers_as_the_readme_shows() {
    replay(Demo::Mtls, "mtls");
}

#[test]
fn jwt_demo_answers_as_the_readme_shows() {
    replay(Demo::Jwt, "jwt");
}

/// Envoy believes the IdP only if its certificate chains to the trusted CA and names
/// idp.corp.example: an impostor's JWKS is never fetched, so even a token signed with the real
/// key attributes nothing.
#[test]
fn jwt_demo_does_not_trust_an_impostor_idp() {
    type Impostor = fn(&Path) -> CertPair;
    let cases: [(&str, &str, Impostor); 2] = [
        ("trusted CA, another name", "fail_verify_san", |dir| {
            Pki { dir: dir.to_path_buf() }
                .issue(
                    "other-name",
                    "/CN=idp.other.example",
                    "DNS:idp.other.example",
                    "serverAuth",
                )
                .unwrap()
        }),
        ("the right name, an unknown CA", "fail_verify_error", |dir| {
            Pki::new(&dir.join("rogue-ca"))
                .unwrap()
                .issue("rogue", "/CN=idp.corp.example", "DNS:idp.corp.example", "serverAuth")
                .unwrap()
        }),
    ];
    for (what, refusal, impostor) in cases {
        let running = Running::start_with_idp(Demo::Jwt, |p| {
            let jwt_dir = p.jwt.as_ref().unwrap().www.parent().unwrap().to_path_buf();
            Some(impostor(&jwt_dir))
        });
        let token = &running.prepared.jwt.as_ref().unwrap().token;
        let out = running.shell(&format!(
            "curl -s localhost:10000/v1/chat/completions -H 'authorization: Bearer {token}' \
             -H 'x-request-id: impostor' -H 'content-type: application/json' -d '{{\"model\":\"gpt-4o\",\"messages\":[]}}' \
             -o /dev/null -w '%{{http_code}}'"
        ));
        assert_eq!(out, "403", "{what}: the IdP's JWKS was believed");
        let line = running.log_line("impostor");
        assert_eq!(line["reason"], "missing:user", "{what}: {line}");
        let stat = format!("cluster.corp_idp.ssl.{refusal}");
        assert!(
            running.envoy.stat(&stat).unwrap_or(0) > 0,
            "{what}: {stat} should count the refused IdP"
        );
    }
}
