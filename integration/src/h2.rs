//! A minimal HTTP/2 client (RFC 9113, prior knowledge over cleartext) that sends every byte as
//! given: a `:path` that is not UTF-8, any `:authority`, header names and values unchecked. It
//! encodes headers as HPACK literals without indexing and without Huffman coding (RFC 7541 §6.2.2)
//! and reads only what tests need back: the response's `:status` and its body. One request per
//! connection, so the response's first header field never refers to the dynamic table.

use crate::http::Request;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame payload a peer must accept (SETTINGS_MAX_FRAME_SIZE's initial value).
const MAX_FRAME: usize = 16_384;
/// The initial flow-control window: request bodies are kept within it.
const INITIAL_WINDOW: usize = 65_535;
const STREAM: u32 = 1;

/// What came back for the request.
#[derive(Debug, Clone, Default)]
pub struct H2Response {
    /// The `:status`, if the response headers arrived and it could be read.
    pub status: Option<u16>,
    pub body: Vec<u8>,
    /// The error code of a RST_STREAM on the request's stream.
    pub reset: Option<u32>,
    /// The error code of a GOAWAY that ended the connection before the response did.
    pub goaway: Option<u32>,
}

impl H2Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = Vec::with_capacity(9 + len);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1); `first` holds the bits above it.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A literal header field without indexing, with a literal name, no Huffman coding.
fn hpack_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    hpack_int(out, 0, 7, name.len());
    out.extend_from_slice(name);
    hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value);
}

/// The request's header block: the pseudo-headers (`:authority` from the request's host), then
/// its headers as given, `content-length` added for a body.
pub fn header_block(req: &Request) -> Vec<u8> {
    let mut block = Vec::new();
    hpack_literal(&mut block, b":method", req.method.as_bytes());
    hpack_literal(&mut block, b":scheme", b"http");
    hpack_literal(&mut block, b":authority", req.host_or_default().as_bytes());
    hpack_literal(&mut block, b":path", &req.target_bytes());
    for (name, value) in &req.headers {
        hpack_literal(&mut block, name.as_bytes(), value.as_bytes());
    }
    if !req.body.is_empty() {
        hpack_literal(&mut block, b"content-length", req.body.len().to_string().as_bytes());
    }
    block
}

/// Decodes an HPACK integer with an `n`-bit prefix at `at`; returns it and the next position.
fn read_int(block: &[u8], at: usize, n: u32) -> Option<(usize, usize)> {
    let max = (1usize << n) - 1;
    let mut value = usize::from(*block.get(at)?) & max;
    let mut pos = at + 1;
    if value < max {
        return Some((value, pos));
    }
    let mut shift = 0;
    loop {
        let b = *block.get(pos)?;
        pos += 1;
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 || shift > 28 {
            return Some((value, pos));
        }
    }
}

/// Decodes a Huffman-coded string made only of digits (RFC 7541 Appendix B: `0`-`2` are the
/// 5-bit codes 0-2, `3`-`9` the 6-bit codes 0x19-0x1f), as a status code is.
fn huffman_digits(bytes: &[u8]) -> Option<String> {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let mut out = String::new();
    let mut i = 0;
    let take = |from: usize, n: usize| -> Option<u32> {
        let slice = bits.get(from..from + n)?;
        Some(slice.iter().fold(0u32, |acc, &b| acc << 1 | u32::from(b)))
    };
    while i < bits.len() {
        let rest = bits.len() - i;
        // Padding: fewer than 8 bits, all ones.
        if rest < 8 && bits.get(i..)?.iter().all(|&b| b == 1) {
            break;
        }
        match take(i, 5)? {
            c @ 0..=2 => {
                out.push(char::from(b'0' + c as u8));
                i += 5;
            }
            _ => match take(i, 6)? {
                c @ 0x19..=0x1f => {
                    out.push(char::from(b'0' + 3 + (c - 0x19) as u8));
                    i += 6;
                }
                _ => return None,
            },
        }
    }
    Some(out)
}

/// The `:status` of a response header block: its first field, which a first response on a
/// connection sends from the static table (RFC 7541 Appendix A, entries 8-14) or as a literal
/// with the `:status` name (index 8).
fn status_of(block: &[u8]) -> Option<u16> {
    let mut at = 0;
    // Dynamic table size updates may come first.
    while block.get(at)? & 0xe0 == 0x20 {
        at = read_int(block, at, 5)?.1;
    }
    let first = *block.get(at)?;
    if first & 0x80 != 0 {
        let (index, _) = read_int(block, at, 7)?;
        const STATIC: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
        return index.checked_sub(8).and_then(|i| STATIC.get(i)).copied();
    }
    let prefix = if first & 0x40 != 0 { 6 } else { 4 };
    let (index, pos) = read_int(block, at, prefix)?;
    if !(8..=14).contains(&index) {
        return None;
    }
    let huffman = block.get(pos)? & 0x80 != 0;
    let (len, pos) = read_int(block, pos, 7)?;
    let raw = block.get(pos..pos + len)?;
    let text = if huffman {
        huffman_digits(raw)?
    } else {
        String::from_utf8(raw.to_vec()).ok()?
    };
    text.parse().ok()
}

/// A frame read: type, flags, stream ID, payload.
type Frame = (u8, u8, u32, Vec<u8>);

fn read_frame(stream: &mut TcpStream) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 9];
    match stream.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload)?;
    Ok(Some((head[3], head[4], id, payload)))
}

/// A frame's payload without its padding (and, for HEADERS, its priority fields).
fn unpadded(kind: u8, flags: u8, payload: &[u8]) -> &[u8] {
    let mut body = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        pad = usize::from(body.first().copied().unwrap_or(0));
        body = body.get(1..).unwrap_or_default();
    }
    if kind == HEADERS && flags & PRIORITY != 0 {
        body = body.get(5..).unwrap_or_default();
    }
    body.get(..body.len().saturating_sub(pad)).unwrap_or_default()
}

/// Sends one request over a new HTTP/2 connection and reads the response to its end (or to a
/// reset, a GOAWAY or the connection's close).
pub fn send(port: u16, req: &Request) -> io::Result<H2Response> {
    if req.body.len() > INITIAL_WINDOW {
        return Err(io::Error::other("request bodies over 64 KiB are not supported"));
    }
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[0x00, 0x02, 0, 0, 0, 0]));
    let block = header_block(req);
    let mut pieces = block.chunks(MAX_FRAME);
    let first = pieces.next().unwrap_or_default();
    let more = block.len() > MAX_FRAME;
    let mut flags = if more { 0 } else { END_HEADERS };
    if req.body.is_empty() {
        flags |= END_STREAM;
    }
    out.extend(frame(HEADERS, flags, STREAM, first));
    let rest: Vec<&[u8]> = pieces.collect();
    for (i, piece) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        out.extend(frame(0x9, if last { END_HEADERS } else { 0 }, STREAM, piece));
    }
    let chunks: Vec<&[u8]> = req.body.chunks(MAX_FRAME).collect();
    for (i, piece) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        out.extend(frame(DATA, if last { END_STREAM } else { 0 }, STREAM, piece));
    }
    stream.write_all(&out)?;

    let mut resp = H2Response::default();
    let mut headers_seen = false;
    while let Some((kind, flags, id, payload)) = read_frame(&mut stream)? {
        match kind {
            SETTINGS if flags & ACK == 0 => stream.write_all(&frame(SETTINGS, ACK, 0, &[]))?,
            PING if flags & ACK == 0 => stream.write_all(&frame(PING, ACK, 0, &payload))?,
            GOAWAY => {
                let code = payload.get(4..8).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                resp.goaway = code;
                // A GOAWAY naming our stream as processed still lets its response finish.
                let last = payload
                    .get(..4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff);
                if last.is_some_and(|l| l < STREAM) || code != Some(0) {
                    break;
                }
            }
            RST_STREAM if id == STREAM => {
                resp.reset = payload.get(..4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                break;
            }
            HEADERS if id == STREAM => {
                if !headers_seen {
                    resp.status = status_of(unpadded(kind, flags, &payload));
                    headers_seen = true;
                }
                if flags & END_STREAM != 0 {
                    break;
                }
            }
            DATA if id == STREAM => {
                resp.body.extend_from_slice(unpadded(kind, flags, &payload));
                if flags & END_STREAM != 0 {
                    break;
                }
                if !payload.is_empty() {
                    // Give the window back, for the connection and the stream.
                    let inc = (payload.len() as u32).to_be_bytes();
                    stream.write_all(&frame(0x8, 0, 0, &inc))?;
                    stream.write_all(&frame(0x8, 0, STREAM, &inc))?;
                }
            }
            _ => {}
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip() {
        for (n, v) in [(5, 10), (5, 31), (5, 1337), (7, 0), (7, 127), (7, 300), (6, 62)] {
            let mut out = Vec::new();
            hpack_int(&mut out, 0, n, v);
            assert_eq!(read_int(&out, 0, n), Some((v, out.len())), "{n} {v}");
        }
        // RFC 7541 C.1.2: 1337 with a 5-bit prefix.
        let mut out = Vec::new();
        hpack_int(&mut out, 0, 5, 1337);
        assert_eq!(out, [0x1f, 0x9a, 0x0a]);
    }

    #[test]
    fn statuses_in_every_form() {
        assert_eq!(status_of(&[0x88]), Some(200));
        assert_eq!(status_of(&[0x8d]), Some(404));
        assert_eq!(status_of(&[0x20, 0x88]), Some(200));
        // Literal, incremental indexing, name index 8, raw "403".
        assert_eq!(status_of(&[0x48, 0x03, b'4', b'0', b'3']), Some(403));
        // RFC 7541 C.6.1: "302" Huffman-coded is 0x64 0x02.
        assert_eq!(status_of(&[0x48, 0x82, 0x64, 0x02]), Some(302));
        assert_eq!(huffman_digits(&[0x64, 0x02]).as_deref(), Some("302"));
        // RFC 7541 C.6.2: "307" is 0x64 0x0e 0xff.
        assert_eq!(huffman_digits(&[0x64, 0x0e, 0xff]).as_deref(), Some("307"));
        assert_eq!(status_of(&[0x41, 0x01, b'x']), None, "not :status");
    }
}
