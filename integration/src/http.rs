//! A small HTTP/1.1 client over a plain socket, so tests control every byte: duplicate and
//! mixed-case headers, chunked uploads, and connections dropped mid-stream.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A request to send. Headers go out exactly as given (order, case, duplicates).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body with `transfer-encoding: chunked` instead of `content-length`.
    pub chunked: bool,
    /// The `host` header (HTTP/1.1) or `:authority` (HTTP/2); `localhost` when unset.
    pub host: Option<String>,
    /// The request target as raw bytes (e.g. not UTF-8), sent instead of `path`.
    pub raw_target: Option<Vec<u8>>,
}

impl Request {
    pub fn post(path: &str) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            ..Request::default()
        }
    }
    pub fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            ..Request::default()
        }
    }
    /// A request with any method.
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            ..Request::default()
        }
    }
    /// Sends this `host` (HTTP/1.1) or `:authority` (HTTP/2) instead of `localhost`.
    pub fn host(mut self, host: &str) -> Request {
        self.host = Some(host.into());
        self
    }
    /// Sends these bytes as the request target instead of `path`.
    pub fn raw_target(mut self, target: &[u8]) -> Request {
        self.raw_target = Some(target.to_vec());
        self
    }
    /// The request target as it goes on the wire.
    pub fn target_bytes(&self) -> Vec<u8> {
        self.raw_target.clone().unwrap_or_else(|| self.path.as_bytes().to_vec())
    }
    /// The host it names.
    pub fn host_or_default(&self) -> &str {
        self.host.as_deref().unwrap_or("localhost")
    }
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn json(mut self, body: &serde_json::Value) -> Request {
        self.body = body.to_string().into_bytes();
        self.headers.push(("content-type".into(), "application/json".into()));
        self
    }
    pub fn body(mut self, body: Vec<u8>) -> Request {
        self.body = body;
        self
    }

    /// Writes the whole request (head and body).
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        self.write_head(out)?;
        self.write_body(out)
    }

    fn write_head(&self, out: &mut impl Write) -> io::Result<()> {
        write!(out, "{} ", self.method)?;
        out.write_all(&self.target_bytes())?;
        write!(
            out,
            " HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            self.host_or_default()
        )?;
        for (k, v) in &self.headers {
            out.write_all(k.as_bytes())?;
            out.write_all(b": ")?;
            out.write_all(v.as_bytes())?;
            out.write_all(b"\r\n")?;
        }
        if self.chunked {
            write!(out, "transfer-encoding: chunked\r\n\r\n")
        } else {
            write!(out, "content-length: {}\r\n\r\n", self.body.len())
        }
    }

    fn write_body(&self, out: &mut impl Write) -> io::Result<()> {
        const PIECE: usize = 64 * 1024;
        for piece in self.body.chunks(PIECE) {
            if self.chunked {
                write!(out, "{:x}\r\n", piece.len())?;
                out.write_all(piece)?;
                out.write_all(b"\r\n")?;
            } else {
                out.write_all(piece)?;
            }
        }
        if self.chunked {
            out.write_all(b"0\r\n\r\n")?;
        }
        Ok(())
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Opens a connection and sends the request head and body.
pub fn open(port: u16, req: &Request) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(read_timeout()))?;
    stream.set_nodelay(true)?;
    let mut w = io::BufWriter::with_capacity(64 * 1024, stream.try_clone()?);
    req.write_head(&mut w)?;
    req.write_body(&mut w)?;
    w.flush()?;
    Ok(stream)
}

/// Sends a request and reads the whole response (the connection is closed after it). The body is
/// written from another thread while the response is read, as real clients do, so an early reply
/// (a rejection before the body is complete) is seen.
pub fn send(port: u16, req: &Request) -> io::Result<Response> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(read_timeout()))?;
    stream.set_nodelay(true)?;
    let writer_stream = stream.try_clone()?;
    let req = req.clone();
    let writer = std::thread::spawn(move || -> io::Result<()> {
        let mut w = io::BufWriter::with_capacity(64 * 1024, writer_stream);
        req.write_head(&mut w)?;
        req.write_body(&mut w)?;
        w.flush()
    });
    let mut raw = Vec::new();
    let read = (&stream).read_to_end(&mut raw);
    // A write cut short by an early reply is expected; the reply is what counts.
    let _ = writer.join();
    if raw.is_empty() {
        read?;
    }
    parse_response(&raw)
}

fn read_timeout() -> Duration {
    let secs = std::env::var("HTTP_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a response read to EOF, decoding a chunked body.
pub fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(raw.get(..end).unwrap_or_default());
    let rest = raw.get(end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok(Response { status, headers, body })
}

/// Decodes a chunked body; a body cut short returns what arrived.
pub fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = find(raw, b"\r\n") else {
            return Some(out);
        };
        let size_text = std::str::from_utf8(raw.get(..line_end)?).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = raw.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        let take = size.min(raw.len());
        out.extend_from_slice(raw.get(..take)?);
        raw = raw.get((take + 2).min(raw.len())..)?;
    }
}
