//! What `make run`, `make run-mtls`, `make run-jwt` and `make run-quota` need besides Envoy and the
//! model server: the shipped config rendered with local paths and ports, and for the identity demos
//! a throwaway CA with SPIFFE client certificates, or an IdP key, its JWKS and a signed token. The tests in
//! `tests/demos.rs` use the same functions, so the README's demo calls are checked.

use crate::pki::{CertPair, JwtSigner, Pki};
use crate::render::{self, Local};
use serde_json::json;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The demos, each a shipped config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demo {
    /// `envoy/envoy.yaml`: header and node sources.
    Plain,
    /// `envoy/mtls.yaml`: client certificates, SPIFFE IDs.
    Mtls,
    /// `envoy/jwt.yaml`: jwt_authn with the IdP's JWKS.
    Jwt,
    /// `envoy/quota.yaml`: budgets, the filter calling the rate-limit service itself.
    Quota,
    /// `envoy/quota-ratelimit-filter.yaml`: budgets through Envoy's own rate-limit filter.
    QuotaRatelimitFilter,
}

impl Demo {
    pub fn parse(name: &str) -> Option<Demo> {
        match name {
            "envoy" | "plain" => Some(Demo::Plain),
            "mtls" => Some(Demo::Mtls),
            "jwt" => Some(Demo::Jwt),
            "quota" => Some(Demo::Quota),
            "quota-ratelimit-filter" => Some(Demo::QuotaRatelimitFilter),
            _ => None,
        }
    }

    /// The shipped config's file name under `envoy/`.
    pub fn config_file(self) -> &'static str {
        match self {
            Demo::Plain => "envoy.yaml",
            Demo::Mtls => "mtls.yaml",
            Demo::Jwt => "jwt.yaml",
            Demo::Quota => "quota.yaml",
            Demo::QuotaRatelimitFilter => "quota-ratelimit-filter.yaml",
        }
    }
}

/// The workload identities of the mTLS demo's client certificates.
pub const CLIENT_SPIFFE_ID: &str = "spiffe://corp.example/ns/team-a/sa/billing-bot";
pub const GATEWAY_SPIFFE_ID: &str = "spiffe://corp.example/ns/edge/sa/auth-gateway";
/// The JWT demo's identity provider, as `envoy/jwt.yaml` names it.
pub const IDP_HOST: &str = "idp.corp.example";
pub const IDP_ISSUER: &str = "https://idp.corp.example";

/// The mTLS demo's credentials, in `dir`: `ca.crt`, `server.{crt,key}` (the names
/// `envoy/mtls.yaml` reads), `client.{crt,key}` (billing-bot) and `gateway.{crt,key}` (the
/// trusted edge proxy).
pub struct MtlsCredentials {
    pub ca: PathBuf,
    pub client: CertPair,
    pub gateway: CertPair,
}

pub fn mtls_credentials(dir: &Path) -> io::Result<MtlsCredentials> {
    let pki = Pki::new(dir)?;
    pki.issue("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth")?;
    let client = pki.issue(
        "client",
        "/O=Corp Example/OU=Team A/CN=billing-bot",
        &format!("URI:{CLIENT_SPIFFE_ID}"),
        "clientAuth",
    )?;
    let gateway = pki.issue(
        "gateway",
        "/O=Corp Example/CN=auth-gateway",
        &format!("URI:{GATEWAY_SPIFFE_ID}"),
        "clientAuth",
    )?;
    Ok(MtlsCredentials {
        ca: pki.ca(),
        client,
        gateway,
    })
}

/// The JWT demo's identity provider, in `dir`: a CA (`ca.crt`) that signed the IdP's TLS
/// certificate (`idp.{crt,key}`, for `idp.corp.example`), the JWKS it serves under
/// `www/.well-known/jwks.json`, and a token for alice (`token`), valid for a day.
pub struct JwtCredentials {
    pub ca: PathBuf,
    pub idp: CertPair,
    /// The directory the IdP serves (`.well-known/jwks.json` in it).
    pub www: PathBuf,
    pub token: String,
}

pub fn jwt_credentials(dir: &Path) -> io::Result<JwtCredentials> {
    let pki = Pki::new(dir)?;
    let idp = pki.issue(
        "idp",
        &format!("/CN={IDP_HOST}"),
        &format!("DNS:{IDP_HOST}"),
        "serverAuth",
    )?;
    let signer = JwtSigner::new(dir, "idp", "demo-key-1")?;
    let www = dir.join("www");
    std::fs::create_dir_all(www.join(".well-known"))?;
    std::fs::write(www.join(".well-known/jwks.json"), signer.jwks()?.to_string())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let token = signer.sign(&json!({
        "iss": IDP_ISSUER,
        "aud": "ai-gateway",
        "sub": "alice",
        "azp": "notebook",
        "org": {"business_unit": "finance"},
        "iat": now,
        "exp": now + 24 * 3600,
    }))?;
    std::fs::write(dir.join("token"), &token)?;
    Ok(JwtCredentials {
        ca: pki.ca(),
        idp,
        www,
        token,
    })
}

/// Ports and files of a demo run.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Where the rendered config and the credentials go (`.run/` for `make run`).
    pub run_dir: PathBuf,
    pub wasm: PathBuf,
    pub listen_port: u16,
    pub admin_port: u16,
    pub model_server_port: u16,
    /// The JWT demo's IdP port.
    pub idp_port: u16,
    /// The quota demos' rate-limit service port.
    pub ratelimit_port: u16,
    /// Where the access log goes; `None` keeps the shipped `/dev/stdout`.
    pub access_log: Option<PathBuf>,
}

/// What [`prepare`] made.
pub struct Prepared {
    /// The rendered config.
    pub config: PathBuf,
    pub mtls: Option<MtlsCredentials>,
    pub jwt: Option<JwtCredentials>,
}

/// Makes the credentials a demo needs and renders its shipped config from `envoy_dir` into
/// `run_dir/<file>`.
pub fn prepare(demo: Demo, envoy_dir: &Path, setup: &Setup) -> io::Result<Prepared> {
    std::fs::create_dir_all(&setup.run_dir)?;
    let mut local = Local {
        wasm: Some(setup.wasm.clone()),
        listen_port: Some(setup.listen_port),
        admin_port: Some(setup.admin_port),
        model_server_port: Some(setup.model_server_port),
        ratelimit_port: Some(setup.ratelimit_port),
        access_log: setup.access_log.clone(),
        ..Local::default()
    };
    let mut prepared = Prepared {
        config: setup.run_dir.join(demo.config_file()),
        mtls: None,
        jwt: None,
    };
    match demo {
        Demo::Plain | Demo::Quota | Demo::QuotaRatelimitFilter => {}
        Demo::Mtls => {
            let dir = setup.run_dir.join("tls");
            prepared.mtls = Some(mtls_credentials(&dir)?);
            local.tls_dir = Some(dir);
        }
        Demo::Jwt => {
            let dir = setup.run_dir.join("jwt");
            let creds = jwt_credentials(&dir)?;
            // The demo's CA stands in for the system bundle that verifies the real IdP.
            local.system_ca = Some(creds.ca.clone());
            local.idp_port = Some(setup.idp_port);
            prepared.jwt = Some(creds);
        }
    }
    let shipped = envoy_dir.join(demo.config_file());
    let text = std::fs::read_to_string(&shipped)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", shipped.display())))?;
    std::fs::write(&prepared.config, render::render(&text, &local))?;
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_quota_demos_render_the_rate_limit_port() {
        let dir = crate::envoy::TempDir::new("demo-quota").unwrap();
        let setup = Setup {
            run_dir: dir.path().join(".run"),
            wasm: PathBuf::from("/x/ai_attribution.wasm"),
            listen_port: 11000,
            admin_port: 11001,
            model_server_port: 11002,
            idp_port: 11003,
            ratelimit_port: 11004,
            access_log: None,
        };
        let envoy = crate::envoy::repo_root().join("envoy");
        for (name, file) in [
            ("quota", "quota.yaml"),
            ("quota-ratelimit-filter", "quota-ratelimit-filter.yaml"),
        ] {
            let demo = Demo::parse(name).unwrap();
            let prepared = prepare(demo, &envoy, &setup).unwrap();
            assert_eq!(prepared.config, setup.run_dir.join(file));
            let text = std::fs::read_to_string(&prepared.config).unwrap();
            for port in ["11000", "11001", "11002", "11004"] {
                assert!(text.contains(&format!("port_value: {port}}}")), "{file}: port {port}");
            }
            assert!(!text.contains("port_value: 8081"), "{file}");
            assert!(text.contains("filename: /x/ai_attribution.wasm"), "{file}");
        }
    }
}
