//! Minimal HTTP/1.x wire handling for the mock model server: request head and body
//! parsing (content-length and chunked, streamed without storing) and response writing
//! (whole bodies, or deliberately fragmented chunked streams).

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use super::codec::Sha256;
use super::encoding::{encode_all, Coding, Encoder};

/// Largest request head (request line + headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How much of each request body is kept in [`super::ReceivedRequest::body`].
pub const BODY_KEEP: usize = 64 * 1024;
/// Upper bound for a single chunk-size line / content-length (1 TiB).
const MAX_BODY: u64 = 1 << 40;

/// Why reading a request stopped.
#[derive(Debug)]
pub enum ReadError {
    /// Socket error or EOF: close quietly.
    Io,
    /// Malformed request: answer 400 with this message, then close.
    Bad(String),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

fn bad<T>(msg: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError::Bad(msg.into()))
}

/// A parsed request line and header block.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub minor: u8,
    /// Lower-cased names, trimmed values, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
}

impl Head {
    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection may be reused after answering this request.
    pub fn keep_alive(&self) -> bool {
        if self.header_has_token("connection", "close") {
            false
        } else if self.minor == 0 {
            self.header_has_token("connection", "keep-alive")
        } else {
            true
        }
    }

    pub fn expects_continue(&self) -> bool {
        self.minor == 1 && self.header_has_token("expect", "100-continue")
    }
}

/// Reads one line (up to `budget` bytes, including the `\n`), returning it without the
/// line ending. `Ok(None)` means clean EOF before any byte.
fn read_line<R: BufRead>(r: &mut R, budget: &mut usize) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    let n = r.by_ref().take(*budget as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return if *budget == 0 {
            bad("request head too large")
        } else {
            Ok(None)
        };
    }
    *budget = budget.saturating_sub(n);
    if line.last() != Some(&b'\n') {
        return if *budget == 0 {
            bad("request head too large")
        } else {
            Err(ReadError::Io)
        };
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    // Bytes that are not UTF-8 (obs-text in a header, or in a target that a proxy passed on
    // from HTTP/2) are read as U+FFFD, as lenient servers do, rather than refused.
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads a request head. `Ok(None)` = the peer closed the connection between requests.
pub fn read_head<R: BufRead>(r: &mut R) -> Result<Option<Head>, ReadError> {
    let mut budget = MAX_HEAD;
    // RFC 9112 §2.2: ignore empty lines before the request line.
    let request_line = loop {
        match read_line(r, &mut budget)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad("malformed request line");
    };
    if !is_token(method) {
        return bad("invalid method");
    }
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return bad("invalid request target");
    }
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return bad("unsupported HTTP version"),
    };
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(r, &mut budget)? else {
            return Err(ReadError::Io);
        };
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            return bad("obsolete header line folding");
        }
        let Some((name, value)) = line.split_once(':') else {
            return bad("malformed header line");
        };
        if !is_token(name) {
            return bad("invalid header name");
        }
        headers.push((name.to_ascii_lowercase(), value.trim_matches([' ', '\t']).to_string()));
    }
    Ok(Some(Head {
        method: method.to_string(),
        target: target.to_string(),
        minor,
        headers,
    }))
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
}

/// Determines request body framing (RFC 9112 §6.3).
pub fn framing(head: &Head) -> Result<Framing, ReadError> {
    let te: Vec<&str> = head
        .headers
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(last) = te.last() {
        return if last.eq_ignore_ascii_case("chunked") {
            Ok(Framing::Chunked)
        } else {
            bad("unsupported transfer-encoding")
        };
    }
    let mut length: Option<u64> = None;
    for (_, v) in head.headers.iter().filter(|(n, _)| n == "content-length") {
        for part in v.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return bad("invalid content-length");
            }
            let Ok(n) = part.parse::<u64>() else {
                return bad("invalid content-length");
            };
            if n > MAX_BODY || length.is_some_and(|l| l != n) {
                return bad("invalid content-length");
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) | None => Framing::Empty,
        Some(n) => Framing::Length(n),
    })
}

/// Receives a body: counts it, keeps the first [`BODY_KEEP`] bytes (or [`BodySink::keeping`]),
/// hashes all of it.
pub struct BodySink {
    pub len: usize,
    pub prefix: Vec<u8>,
    pub sha: Sha256,
    keep: usize,
}

impl Default for BodySink {
    fn default() -> Self {
        BodySink::keeping(BODY_KEEP)
    }
}

impl BodySink {
    /// A sink that keeps the first `keep` bytes.
    pub fn keeping(keep: usize) -> BodySink {
        BodySink {
            len: 0,
            prefix: Vec::new(),
            sha: Sha256::default(),
            keep,
        }
    }

    fn push(&mut self, data: &[u8]) {
        self.len = self.len.saturating_add(data.len());
        let room = self.keep.saturating_sub(self.prefix.len());
        self.prefix
            .extend_from_slice(data.get(..room.min(data.len())).unwrap_or(&[]));
        self.sha.update(data);
    }
}

/// Copies exactly `n` body bytes from `r` into `sink`.
fn copy_exact<R: BufRead>(r: &mut R, mut n: u64, sink: &mut BodySink) -> Result<(), ReadError> {
    while n > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(ReadError::Io);
        }
        let take = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        sink.push(buf.get(..take).unwrap_or(&[]));
        r.consume(take);
        n -= take as u64;
    }
    Ok(())
}

/// Reads the request body according to `framing`.
pub fn read_body<R: BufRead>(r: &mut R, framing: Framing, sink: &mut BodySink) -> Result<(), ReadError> {
    match framing {
        Framing::Empty => Ok(()),
        Framing::Length(n) => copy_exact(r, n, sink),
        Framing::Chunked => loop {
            let mut budget = 4096;
            let Some(line) = read_line(r, &mut budget)? else {
                return Err(ReadError::Io);
            };
            let size_text = line.split(';').next().unwrap_or("").trim();
            if size_text.is_empty() || size_text.len() > 10 {
                return bad("invalid chunk size");
            }
            let Ok(size) = u64::from_str_radix(size_text, 16) else {
                return bad("invalid chunk size");
            };
            if size == 0 {
                // Trailer section, terminated by an empty line.
                let mut budget = MAX_HEAD;
                loop {
                    match read_line(r, &mut budget)? {
                        None => return Err(ReadError::Io),
                        Some(l) if l.is_empty() => return Ok(()),
                        Some(_) => continue,
                    }
                }
            }
            if (sink.len as u64).saturating_add(size) > MAX_BODY {
                return bad("body too large");
            }
            copy_exact(r, size, sink)?;
            let mut budget = 2;
            match read_line(r, &mut budget)? {
                Some(l) if l.is_empty() => {}
                None => return Err(ReadError::Io),
                Some(_) => return bad("missing CRLF after chunk data"),
            }
        },
    }
}

/// Standard reason phrase for a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        424 => "Failed Dependency",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Site Overloaded",
        _ => "Status",
    }
}

/// A response body.
#[derive(Debug, Clone)]
pub enum Body {
    /// Sent with `content-length`.
    Full(Vec<u8>),
    /// Sent with `transfer-encoding: chunked` (HTTP/1.1) or close-delimited (HTTP/1.0);
    /// each element is one protocol event (SSE event, NDJSON line, event-stream message…),
    /// used to place deliberate split points.
    Stream(Vec<Vec<u8>>),
}

/// A complete response to send.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Extra headers (including `content-type`); framing headers are added by [`send`].
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Reply {
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::Full(value.to_string().into_bytes()),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// How to pace a response on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Pause between writes.
    pub pause: Duration,
    /// 1-byte writes.
    pub trickle: bool,
    /// Send about half the body, then `shutdown(Both)` without the terminating chunk.
    pub reset_half: bool,
    /// Also fragment `Body::Full` bodies (otherwise they go out in one write).
    pub fragment_full: bool,
    /// The content coding of the body (every write of a stream is flushed through it).
    pub encoding: Coding,
    /// Streams only: how long to keep the response open after its last event is written.
    pub linger: Option<Duration>,
    /// Streams only: after the last event, close the connection without ending the body (no
    /// terminating chunk), as a server that dies mid-answer does.
    pub cut: bool,
}

impl Pacing {
    /// One write per body, no pauses, no coding.
    pub const PLAIN: Pacing = Pacing {
        pause: Duration::ZERO,
        trickle: false,
        reset_half: false,
        fragment_full: false,
        encoding: Coding::Identity,
        linger: None,
        cut: false,
    };
}

/// Default pause between stream writes.
pub const DEFAULT_PAUSE: Duration = Duration::from_millis(3);
/// Total time budget for `trickle`.
const TRICKLE_BUDGET: Duration = Duration::from_secs(2);

/// What the connection should do after [`send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    KeepAlive,
    Close,
}

/// Write sizes cycle through this pattern: `Bytes(n)` writes the next `n` bytes (splitting
/// an event), `Events(n)` writes up to the end of the n-th event boundary ahead (finishing a
/// split event and usually carrying several whole events in one write).
#[derive(Clone, Copy)]
enum Step {
    Bytes(usize),
    Events(usize),
}

const PATTERN: [Step; 8] = [
    Step::Bytes(7),
    Step::Events(1),
    Step::Bytes(13),
    Step::Events(2),
    Step::Bytes(29),
    Step::Events(3),
    Step::Bytes(1),
    Step::Events(2),
];

/// Computes the write plan (end offsets) for a body of `total` bytes with event ends `bounds`.
fn plan(total: usize, bounds: &[usize], trickle: bool) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut cursor = 0;
    let mut step = 0usize;
    while cursor < total {
        let end = if trickle {
            cursor + 1
        } else {
            match PATTERN.get(step % PATTERN.len()).copied() {
                Some(Step::Bytes(n)) => cursor + n,
                Some(Step::Events(n)) => bounds
                    .iter()
                    .copied()
                    .filter(|&b| b > cursor)
                    .nth(n.saturating_sub(1))
                    .unwrap_or(total),
                None => total,
            }
        };
        step += 1;
        cursor = end.min(total);
        ends.push(cursor);
    }
    ends
}

fn head_bytes(reply: &Reply, framing: &str, close: bool, minor: u8) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (n, v) in &reply.headers {
        out.push_str(n);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str(framing);
    if close {
        out.push_str("connection: close\r\n");
    } else if minor == 0 {
        out.push_str("connection: keep-alive\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Sends `reply` for a request `head` (which decides keep-alive and HTTP/1.0 handling).
pub fn send(stream: &mut TcpStream, head: &Head, reply: &Reply, pacing: Pacing) -> After {
    match send_inner(stream, head, reply, pacing) {
        Ok(after) => after,
        Err(_) => After::Close,
    }
}

fn send_inner(stream: &mut TcpStream, head: &Head, reply: &Reply, pacing: Pacing) -> io::Result<After> {
    let head_only = head.method == "HEAD";
    let no_body = head_only || reply.status == 204 || reply.status == 304;
    let keep = head.keep_alive();
    let coding = if no_body { Coding::Identity } else { pacing.encoding };
    let mut reply = reply.clone();
    if coding != Coding::Identity {
        reply.headers.push(("content-encoding".into(), coding.name().into()));
        reply.headers.push(("vary".into(), "accept-encoding".into()));
    }
    let reply = &reply;
    let (data, bounds, chunked, close) = match &reply.body {
        Body::Full(b) => {
            let b = if coding == Coding::Identity {
                b.clone()
            } else {
                encode_all(coding, b)?
            };
            let framing = if reply.status == 204 || reply.status == 304 {
                String::new()
            } else {
                format!("content-length: {}\r\n", b.len())
            };
            let mut out = head_bytes(reply, &framing, !keep, head.minor);
            if no_body {
                stream.write_all(&out)?;
                return Ok(if keep { After::KeepAlive } else { After::Close });
            }
            if !(pacing.fragment_full || pacing.trickle || pacing.reset_half) {
                out.extend_from_slice(&b);
                stream.write_all(&out)?;
                stream.flush()?;
                return Ok(if keep { After::KeepAlive } else { After::Close });
            }
            stream.write_all(&out)?;
            let len = b.len();
            // Already encoded: the writes below send these bytes as they are.
            return write_pieces(
                stream,
                &b,
                &[len],
                false,
                !keep,
                pacing,
                Encoder::new(Coding::Identity),
                None,
            );
        }
        Body::Stream(events) => {
            let chunked = head.minor >= 1;
            let framing = if chunked { "transfer-encoding: chunked\r\n" } else { "" };
            let close = !keep || !chunked;
            stream.write_all(&head_bytes(reply, framing, close, head.minor))?;
            if no_body {
                if chunked {
                    stream.write_all(b"0\r\n\r\n")?;
                }
                return Ok(if close { After::Close } else { After::KeepAlive });
            }
            let mut data = Vec::with_capacity(events.iter().map(Vec::len).sum());
            let mut bounds = Vec::with_capacity(events.len());
            for e in events {
                data.extend_from_slice(e);
                bounds.push(data.len());
            }
            (data, bounds, chunked, close)
        }
    };
    write_pieces(
        stream,
        &data,
        &bounds,
        chunked,
        close,
        pacing,
        Encoder::new(coding),
        pacing.linger,
    )
}

fn write_piece(stream: &mut TcpStream, piece: &[u8], chunked: bool) -> io::Result<()> {
    if piece.is_empty() {
        return Ok(());
    }
    if chunked {
        let mut buf = Vec::with_capacity(piece.len() + 16);
        buf.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        buf.extend_from_slice(piece);
        buf.extend_from_slice(b"\r\n");
        stream.write_all(&buf)?;
    } else {
        stream.write_all(piece)?;
    }
    stream.flush()
}

/// Writes `data` in the paced pieces of [`plan`], each passed through `encoder` and flushed, then
/// (after `linger`) the encoder's trailer and the terminating chunk.
#[allow(clippy::too_many_arguments)]
fn write_pieces(
    stream: &mut TcpStream,
    data: &[u8],
    bounds: &[usize],
    chunked: bool,
    close: bool,
    pacing: Pacing,
    mut encoder: Encoder,
    linger: Option<Duration>,
) -> io::Result<After> {
    stream.flush()?;
    let mut ends = plan(data.len(), bounds, pacing.trickle);
    let pause = if pacing.trickle {
        let per = TRICKLE_BUDGET
            .checked_div(u32::try_from(data.len().max(1)).unwrap_or(u32::MAX))
            .unwrap_or(Duration::ZERO);
        per.min(pacing.pause)
    } else {
        pacing.pause
    };
    let half = (data.len() / 2).max(1);
    if pacing.reset_half {
        ends = ends.into_iter().map(|e| e.min(half)).collect();
        ends.dedup();
    }
    let mut start = 0;
    for end in ends {
        if !pause.is_zero() {
            thread::sleep(pause);
        }
        let piece = encoder.push(data.get(start..end).unwrap_or(&[]))?;
        write_piece(stream, &piece, chunked)?;
        start = end;
        if pacing.reset_half && start >= half {
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(After::Close);
        }
    }
    if pacing.cut && chunked {
        let _ = stream.shutdown(Shutdown::Both);
        return Ok(After::Close);
    }
    if let Some(linger) = linger {
        thread::sleep(linger);
    }
    let trailer = encoder.finish()?;
    write_piece(stream, &trailer, chunked)?;
    if chunked {
        stream.write_all(b"0\r\n\r\n")?;
        stream.flush()?;
    }
    Ok(if close { After::Close } else { After::KeepAlive })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_splits_and_groups_events() {
        let bounds = [20, 40, 60, 80, 100];
        let ends = plan(100, &bounds, false);
        assert_eq!(ends.first(), Some(&7));
        assert_eq!(ends.get(1), Some(&20));
        assert_eq!(ends.get(2), Some(&33));
        assert_eq!(ends.get(3), Some(&60));
        assert_eq!(ends.last(), Some(&100));
        assert_eq!(plan(5, &[5], true), vec![1, 2, 3, 4, 5]);
    }
}
