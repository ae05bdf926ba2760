//! Test credentials made with the `openssl` command: a CA, server and client certificates with
//! chosen subjects and SANs, RSA keys, a JWKS, RS256-signed JWTs, and an mTLS client.

use serde_json::{json, Value};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) -> io::Result<Vec<u8>> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A throwaway certificate authority in a directory.
pub struct Pki {
    pub dir: PathBuf,
}

/// A certificate and its key.
#[derive(Debug, Clone)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> io::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=ai-attribution test CA/O=Tests",
            ],
        )?;
        Ok(Pki { dir: dir.to_path_buf() })
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Issues a certificate. `sans` is an openssl subjectAltName list (`URI:spiffe://...,DNS:x`),
    /// empty for none; `usage` is `serverAuth` or `clientAuth`.
    pub fn issue(&self, name: &str, subject: &str, sans: &str, usage: &str) -> io::Result<CertPair> {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let ext = format!("{name}.ext");
        openssl(
            &self.dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
            ],
        )?;
        let mut ext_text = format!("extendedKeyUsage={usage}\n");
        if !sans.is_empty() {
            ext_text.push_str(&format!("subjectAltName={sans}\n"));
        }
        std::fs::write(self.dir.join(&ext), ext_text)?;
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        )?;
        Ok(CertPair {
            cert: self.dir.join(crt),
            key: self.dir.join(key),
        })
    }

    /// The SHA-256 fingerprint of a certificate, lower-case hex without colons.
    pub fn fingerprint(&self, cert: &Path) -> io::Result<String> {
        let out = openssl(
            &self.dir,
            &[
                "x509",
                "-in",
                &cert.to_string_lossy(),
                "-noout",
                "-fingerprint",
                "-sha256",
            ],
        )?;
        let text = String::from_utf8_lossy(&out);
        let hex = text
            .split('=')
            .nth(1)
            .unwrap_or_default()
            .trim()
            .replace(':', "")
            .to_ascii_lowercase();
        Ok(hex)
    }
}

/// An HTTPS server for files: `openssl s_server -WWW` answering `GET /PATH` with the file
/// `DIR/PATH`, on 127.0.0.1, with a given certificate. It stands in for an identity provider's
/// JWKS endpoint or a model provider. Stopped when dropped.
pub struct TlsFileServer(std::process::Child);

impl TlsFileServer {
    /// Starts serving `dir` on `port` and waits (up to 10 s) until it accepts connections.
    pub fn start(dir: &Path, cert: &CertPair, port: u16) -> io::Result<TlsFileServer> {
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert.cert)
            .arg("-key")
            .arg(&cert.key)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = TlsFileServer(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "openssl s_server did not start on port {port}"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(server)
    }
}

impl Drop for TlsFileServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An RSA key that signs RS256 JWTs, with its JWKS.
pub struct JwtSigner {
    dir: PathBuf,
    key: String,
    pub kid: String,
}

impl JwtSigner {
    /// A new key in `dir`, under the file name `file`, announced as key id `kid`.
    pub fn new(dir: &Path, file: &str, kid: &str) -> io::Result<JwtSigner> {
        std::fs::create_dir_all(dir)?;
        let key = format!("jwt-{file}.key");
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &key,
            ],
        )?;
        Ok(JwtSigner {
            dir: dir.to_path_buf(),
            key,
            kid: kid.to_string(),
        })
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> io::Result<Value> {
        let out = openssl(&self.dir, &["rsa", "-in", &self.key, "-noout", "-modulus"])?;
        let text = String::from_utf8_lossy(&out);
        let hex = text.trim().trim_start_matches("Modulus=");
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        Ok(
            json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid, "n": b64url(&bytes), "e": "AQAB"}]}),
        )
    }

    /// Signs claims as an RS256 JWT.
    pub fn sign(&self, claims: &Value) -> io::Result<String> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign", &self.key])
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no stdin"))?
            .write_all(input.as_bytes())?;
        let mut sig = Vec::new();
        child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?
            .read_to_end(&mut sig)?;
        child.wait()?;
        Ok(format!("{input}.{}", b64url(&sig)))
    }
}

/// An unsigned (`alg: none`) JWT.
pub fn unsigned_jwt(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    )
}

/// Sends one request over TLS with a client certificate (through `openssl s_client`) and returns
/// the raw response. `client` None connects without a certificate.
pub fn mtls_send(
    port: u16,
    ca: &Path,
    client: Option<&CertPair>,
    req: &crate::http::Request,
) -> io::Result<crate::http::Response> {
    tls_send(port, ca, client, "localhost", req)
}

/// [`mtls_send`] with a chosen TLS server name (SNI), which the client alone decides.
pub fn tls_send(
    port: u16,
    ca: &Path,
    client: Option<&CertPair>,
    server_name: &str,
    req: &crate::http::Request,
) -> io::Result<crate::http::Response> {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-quiet",
        "-no_ign_eof",
        "-servername",
        server_name,
        "-connect",
    ])
    .arg(format!("127.0.0.1:{port}"))
    .arg("-CAfile")
    .arg(ca);
    if let Some(c) = client {
        cmd.arg("-cert").arg(&c.cert).arg("-key").arg(&c.key);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| io::Error::other("no stdin"))?;
    let mut raw = Vec::new();
    req.write_to(&mut raw)?;
    stdin.write_all(&raw)?;
    let mut out = Vec::new();
    let mut stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
    // The request says `connection: close`, so Envoy closes after the response; keep stdin open until then.
    stdout.read_to_end(&mut out)?;
    drop(stdin);
    child.wait()?;
    crate::http::parse_response(&out)
}
