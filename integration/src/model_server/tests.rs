//! Unit tests for the mock model server, talking to it over raw TCP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::codec::{base64_decode, base64_encode, crc32, Sha256};
use super::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

pub(super) struct Resp {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    /// Sizes of the HTTP chunks (empty when not chunked).
    pub(super) chunks: Vec<usize>,
    /// Whether the body framing completed (terminating chunk / full content-length).
    pub(super) complete: bool,
}

impl Resp {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub(super) fn connect(server: &ModelServer) -> BufReader<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    BufReader::new(s)
}

pub(super) fn send(conn: &mut BufReader<TcpStream>, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: mock\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let s = conn.get_mut();
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
}

fn line(conn: &mut BufReader<TcpStream>) -> Option<String> {
    let mut l = String::new();
    match conn.read_line(&mut l) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(l.trim_end_matches(['\r', '\n']).to_string()),
    }
}

pub(super) fn read_response(conn: &mut BufReader<TcpStream>) -> Resp {
    let status_line = line(conn).expect("status line");
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let l = line(conn).expect("header line");
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
        chunks: Vec::new(),
        complete: false,
    };
    if resp.header("transfer-encoding") == Some("chunked") {
        loop {
            let Some(size) = line(conn) else { return resp };
            let size = usize::from_str_radix(&size, 16).unwrap();
            if size == 0 {
                assert_eq!(line(conn).as_deref(), Some(""));
                resp.complete = true;
                return resp;
            }
            let mut buf = vec![0; size];
            if conn.read_exact(&mut buf).is_err() {
                return resp;
            }
            resp.body.extend_from_slice(&buf);
            resp.chunks.push(size);
            assert_eq!(line(conn).as_deref(), Some(""));
        }
    } else if let Some(len) = resp.header("content-length") {
        let mut buf = vec![0; len.parse().unwrap()];
        let mut got = 0;
        while got < buf.len() {
            match conn.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        resp.complete = got == buf.len();
        buf.truncate(got);
        resp.body = buf;
    } else {
        let _ = conn.read_to_end(&mut resp.body);
        resp.complete = true;
    }
    resp
}

fn call(server: &ModelServer, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut conn = connect(server);
    send(&mut conn, "POST", path, headers, body.as_bytes());
    read_response(&mut conn)
}

/// Parses SSE into (event name, data JSON or raw string).
pub(super) fn sse_events(body: &[u8]) -> Vec<(Option<String>, String)> {
    let text = std::str::from_utf8(body).unwrap();
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for l in block.lines() {
                if let Some(e) = l.strip_prefix("event: ") {
                    event = Some(e.to_string());
                } else if let Some(d) = l.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (event, data)
        })
        .collect()
}

#[test]
fn codec_vectors() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
    let mut h = Sha256::default();
    h.update(b"abc");
    assert_eq!(
        h.finish_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        Sha256::default().finish_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let mut h = Sha256::default();
    for chunk in b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".chunks(7) {
        h.update(chunk);
    }
    assert_eq!(
        h.finish_hex(),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64_encode(b"fooba"), "Zm9vYmE=");
    assert_eq!(base64_encode(b"f"), "Zg==");
    assert_eq!(base64_decode("Zm9vYmE=").unwrap(), b"fooba");
}

#[test]
fn openai_json_call_is_answered_and_recorded() {
    let server = ModelServer::start().unwrap();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let resp = call(
        &server,
        "/v1/chat/completions",
        &[("x-test-id", "t1"), ("x-dup", "a"), ("X-Dup", "b")],
        body,
    );
    assert_eq!(resp.status, 200);
    assert!(resp.header("content-type").unwrap().starts_with("application/json"));
    let v = resp.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["choices"][0]["message"]["content"], TEXT_DELTAS.concat());
    let u = tokens::OPENAI_CHAT;
    assert_eq!(v["usage"]["prompt_tokens"], u.input);
    assert_eq!(v["usage"]["completion_tokens"], u.output);
    assert_eq!(v["usage"]["total_tokens"], u.total);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 10);
    assert_eq!(v["usage"]["completion_tokens_details"]["reasoning_tokens"], 4);

    let got = server.wait_for("X-Test-Id", "t1", Duration::from_secs(1)).unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(got.body, body.as_bytes());
    assert_eq!(got.body_len, body.len());
    assert!(got.body_complete);
    assert_eq!(got.header_all("x-dup"), vec!["a", "b"]);
    assert_eq!(got.header("host"), Some("mock"));
    assert_eq!(server.received().len(), 1);
    server.clear();
    assert!(server.received().is_empty());
    assert!(server
        .wait_for("x-test-id", "nope", Duration::from_millis(50))
        .is_none());
}

#[test]
fn anthropic_stream_events_in_order_and_split_across_chunks() {
    let server = ModelServer::start().unwrap();
    let resp = call(
        &server,
        "/v1/messages",
        &[],
        r#"{"model":"claude-x","stream":true,"max_tokens":5}"#,
    );
    assert_eq!(resp.status, 200);
    assert!(resp.complete, "terminating chunk missing");
    assert!(resp.header("content-type").unwrap().starts_with("text/event-stream"));
    let events = sse_events(&resp.body);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", TEXT_DELTAS.len()));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    for (name, data) in &events {
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"].as_str(), name.as_deref());
    }
    let start: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(start["message"]["model"], "claude-x");
    assert_eq!(start["message"]["usage"]["input_tokens"], tokens::ANTHROPIC.input);
    assert_eq!(start["message"]["usage"]["cache_read_input_tokens"], 100);
    let delta: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(delta["usage"]["output_tokens"], tokens::ANTHROPIC.output);
    // Framing is deliberately awkward: small pieces that split events, and pieces with several events.
    assert!(resp.chunks.len() >= 6, "chunks: {:?}", resp.chunks);
    assert_eq!(resp.chunks[0], 7);
    assert!(resp.chunks.iter().any(|&c| c > 300));
}

#[test]
fn large_uploads_are_counted_not_stored() {
    let server = ModelServer::start().unwrap();
    let total = 20 * 1024 * 1024;
    let mut expected = Sha256::default();
    let mut conn = connect(&server);
    let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\nx-test-id: big-chunked\r\ntransfer-encoding: chunked\r\n\r\n";
    conn.get_mut().write_all(head.as_bytes()).unwrap();
    let mut sent = 0;
    let mut i = 0u8;
    while sent < total {
        let size = (1 << 20) - 3 * usize::from(i % 5);
        let size = size.min(total - sent);
        let piece = vec![b'a' + i % 26; size];
        expected.update(&piece);
        let s = conn.get_mut();
        s.write_all(format!("{size:x};ext=1\r\n").as_bytes()).unwrap();
        s.write_all(&piece).unwrap();
        s.write_all(b"\r\n").unwrap();
        sent += size;
        i = i.wrapping_add(1);
    }
    conn.get_mut().write_all(b"0\r\nx-trailer: 1\r\n\r\n").unwrap();
    let resp = read_response(&mut conn);
    assert_eq!(resp.status, 200);
    let got = server
        .wait_for("x-test-id", "big-chunked", Duration::from_secs(5))
        .unwrap();
    assert_eq!(got.body_len, total);
    assert_eq!(got.body.len(), BODY_KEEP);
    assert!(got.body_complete);
    assert_eq!(got.body_sha256_prefix.as_deref(), Some(&expected.finish_hex()[..16]));

    // Same size with content-length, on the same (kept-alive) connection.
    let body = vec![b'z'; total];
    send(&mut conn, "POST", "/v1/messages", &[("x-test-id", "big-cl")], &body);
    let resp = read_response(&mut conn);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["usage"]["output_tokens"], tokens::ANTHROPIC.output);
    let got = server.wait_for("x-test-id", "big-cl", Duration::from_secs(5)).unwrap();
    assert_eq!(got.body_len, total);
    assert_eq!(got.body.len(), BODY_KEEP);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = ModelServer::start().unwrap();
    let mut conn = connect(&server);
    send(
        &mut conn,
        "POST",
        "/v1/chat/completions",
        &[],
        br#"{"model":"m1","stream":true,"stream_options":{"include_usage":true}}"#,
    );
    let first = read_response(&mut conn);
    assert!(first.complete);
    let events = sse_events(&first.body);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(usage_chunk["choices"].as_array().unwrap().len(), 0);
    assert_eq!(usage_chunk["usage"]["total_tokens"], tokens::OPENAI_CHAT.total);
    send(&mut conn, "POST", "/v1/responses?x=1", &[], br#"{"model":"m2"}"#);
    let second = read_response(&mut conn);
    assert_eq!(second.json()["usage"]["input_tokens"], tokens::OPENAI_RESPONSES.input);
    assert_eq!(second.json()["model"], "m2");
    conn.get_mut()
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let third = read_response(&mut conn);
    assert_eq!((third.status, third.body.as_slice()), (200, &b"ok"[..]));
    let paths: Vec<String> = server.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/chat/completions", "/v1/responses?x=1", "/healthz"]);
}

#[test]
fn bedrock_event_streams_have_valid_crcs() {
    let server = ModelServer::start().unwrap();
    let resp = call(
        &server,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
        &[],
        r#"{"messages":[]}"#,
    );
    assert_eq!(resp.header("content-type"), Some("application/vnd.amazon.eventstream"));
    assert!(resp.complete);
    let messages = decode_event_stream(&resp.body).unwrap();
    let kinds: Vec<&str> = messages.iter().map(|m| m.header(":event-type").unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"messageStart"));
    assert_eq!(&kinds[kinds.len() - 2..], ["messageStop", "metadata"]);
    assert!(messages.iter().all(|m| m.header(":message-type") == Some("event")));
    let meta: Value = serde_json::from_slice(&messages.last().unwrap().payload).unwrap();
    assert_eq!(meta["usage"]["inputTokens"], tokens::BEDROCK_CONVERSE.input);
    assert_eq!(meta["usage"]["totalTokens"], tokens::BEDROCK_CONVERSE.total);
    // A flipped byte must be detected.
    let mut corrupt = resp.body.clone();
    corrupt[20] ^= 1;
    assert!(decode_event_stream(&corrupt).is_err());

    let resp = call(
        &server,
        "/model/anthropic.claude-v2/invoke-with-response-stream",
        &[],
        r#"{"max_tokens":5}"#,
    );
    let messages = decode_event_stream(&resp.body).unwrap();
    assert!(messages.iter().all(|m| m.header(":event-type") == Some("chunk")));
    let decoded: Vec<Value> = messages
        .iter()
        .map(|m| {
            let outer: Value = serde_json::from_slice(&m.payload).unwrap();
            serde_json::from_slice(&base64_decode(outer["bytes"].as_str().unwrap()).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(decoded[0]["type"], "message_start");
    assert_eq!(decoded[0]["message"]["model"], "anthropic.claude-v2");
    let last = decoded.last().unwrap();
    assert_eq!(last["type"], "message_stop");
    assert_eq!(
        last["amazon-bedrock-invocationMetrics"]["outputTokenCount"],
        tokens::BEDROCK_INVOKE.output
    );

    let resp = call(&server, "/model/m/invoke", &[], "{}");
    assert_eq!(resp.header("x-amzn-bedrock-input-token-count"), Some("23"));
    assert_eq!(resp.header("x-amzn-bedrock-output-token-count"), Some("16"));
}

#[test]
fn other_apis_and_stream_shapes() {
    let server = ModelServer::start().unwrap();
    let g = call(
        &server,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        &[],
        "{}",
    );
    let events = sse_events(&g.body);
    assert_eq!(events.len(), TEXT_DELTAS.len());
    let last: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(last["usageMetadata"]["totalTokenCount"], tokens::GEMINI.total);
    assert_eq!(last["modelVersion"], "gemini-2.0-flash");
    let arr = call(
        &server,
        "/v1/projects/p/locations/l/publishers/google/models/gem:streamGenerateContent",
        &[],
        "",
    );
    let v: Value = serde_json::from_slice(&arr.body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), TEXT_DELTAS.len());

    let o = call(&server, "/api/chat", &[], r#"{"model":"llama3"}"#);
    assert_eq!(o.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = o
        .body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.last().unwrap()["eval_count"], tokens::OLLAMA_CHAT.output);
    assert_eq!(lines.last().unwrap()["done"], true);
    let o = call(&server, "/api/generate", &[], r#"{"model":"llama3","stream":false}"#);
    assert_eq!(o.json()["prompt_eval_count"], tokens::OLLAMA_CHAT.input);

    let c = call(&server, "/v2/chat", &[], r#"{"model":"command-r","stream":true}"#);
    let events = sse_events(&c.body);
    assert_eq!(events.last().unwrap().0.as_deref(), Some("message-end"));
    let end: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(
        end["delta"]["usage"]["billed_units"]["input_tokens"],
        tokens::COHERE_CHAT.input
    );

    let r = call(&server, "/v1/responses", &[], r#"{"stream":true}"#);
    let events = sse_events(&r.body);
    assert_eq!(events[0].0.as_deref(), Some("response.created"));
    let done: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(
        done["response"]["usage"]["output_tokens"],
        tokens::OPENAI_RESPONSES.output
    );

    let e = call(
        &server,
        "/openai/deployments/emb/embeddings",
        &[],
        r#"{"input":["a","b"]}"#,
    );
    assert_eq!(e.json()["data"].as_array().unwrap().len(), 2);
    assert_eq!(e.json()["model"], "emb");
}

#[test]
fn behaviour_switches_and_errors() {
    let server = ModelServer::start().unwrap();
    let r = call(&server, "/v1/messages", &[("x-mock-behavior", "status=429")], "{}");
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");

    let r = call(
        &server,
        "/v1/chat/completions",
        &[("x-mock-behavior", "reset-mid-stream")],
        r#"{"stream":true}"#,
    );
    assert_eq!(r.status, 200);
    assert!(!r.complete);
    assert!(!r.body.is_empty());

    let r = call(
        &server,
        "/v1/chat/completions",
        &[("x-mock-behavior", "no-usage, big-event")],
        r#"{"stream":true,"stream_options":{"include_usage":true}}"#,
    );
    assert!(r.complete);
    assert!(r.body.len() > 1 << 20);
    assert!(!String::from_utf8_lossy(&r.body).contains("\"usage\""));

    let r = call(&server, "/v1/chat/completions", &[("x-mock-behavior", "garbage")], "{}");
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.body.len(), 4096);

    let r = call(
        &server,
        "/v1/messages",
        &[("x-mock-behavior", "trickle")],
        r#"{"stream":true}"#,
    );
    assert!(r.complete);
    assert!(r.chunks.iter().all(|&c| c == 1));

    let started = Instant::now();
    let r = call(&server, "/v1/embeddings", &[("x-mock-delay-ms", "150")], "{}");
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let r = call(&server, "/nowhere", &[], "{}");
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), serde_json::json!({"error": {"message": "not found"}}));

    let r = call(&server, "/v1/chat/completions", &[], "{not json");
    assert_eq!(r.status, 400);

    let mut conn = connect(&server);
    conn.get_mut().write_all(b"BROKEN\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut conn).status, 400);
    let mut conn = connect(&server);
    conn.get_mut()
        .write_all(b"POST /v1/messages HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")
        .unwrap();
    assert_eq!(read_response(&mut conn).status, 400);

    // HTTP/1.0: stream is close-delimited, not chunked.
    let mut conn = connect(&server);
    conn.get_mut()
        .write_all(b"POST /v1/messages HTTP/1.0\r\ncontent-length: 15\r\n\r\n{\"stream\":true}")
        .unwrap();
    let r = read_response(&mut conn);
    assert_eq!(r.header("transfer-encoding"), None);
    assert!(sse_events(&r.body).len() > 5);
}

#[test]
fn drop_releases_the_port() {
    let server = ModelServer::start().unwrap();
    let port = server.port();
    let mut idle = connect(&server);
    drop(server);
    let again = ModelServer::start_on(&format!("127.0.0.1:{port}")).unwrap();
    assert_eq!(again.port(), port);
    // The idle connection of the old server was shut down.
    let mut buf = [0u8; 1];
    assert!(matches!(idle.read(&mut buf), Ok(0) | Err(_)));
}

fn decoded(resp: &Resp) -> Vec<u8> {
    let mut out = Vec::new();
    match resp.header("content-encoding") {
        Some("gzip") => {
            flate2::read::GzDecoder::new(&resp.body[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("deflate") => {
            flate2::read::ZlibDecoder::new(&resp.body[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(&resp.body[..], 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        None => out = resp.body.clone(),
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    out
}

#[test]
fn answers_are_compressed_as_the_client_accepts_or_as_forced() {
    let server = ModelServer::start().unwrap();
    let chat = r#"{"model":"gpt-4o","messages":[]}"#;
    let stream = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;

    let resp = call(
        &server,
        "/v1/chat/completions",
        &[("accept-encoding", "gzip, deflate")],
        chat,
    );
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert_eq!(resp.header("x-mock-accept-encoding"), Some("gzip, deflate"));
    let v: Value = serde_json::from_slice(&decoded(&resp)).unwrap();
    assert_eq!(v["usage"]["prompt_tokens"], tokens::OPENAI_CHAT.input);

    // A stream: every write is flushed through the encoder, so it stays many chunks.
    let resp = call(
        &server,
        "/v1/chat/completions",
        &[("accept-encoding", "gzip;q=0.2, deflate")],
        stream,
    );
    assert_eq!(resp.header("content-encoding"), Some("deflate"));
    assert!(resp.complete && resp.chunks.len() > 5, "{:?}", resp.chunks);
    let events = sse_events(&decoded(&resp));
    assert_eq!(events.last().map(|e| e.1.as_str()), Some("[DONE]"));

    // Nothing acceptable, or nothing asked: identity.
    for headers in [&[("accept-encoding", "br, zstd")][..], &[]] {
        let resp = call(&server, "/v1/chat/completions", headers, chat);
        assert_eq!(resp.header("content-encoding"), None);
        assert_eq!(resp.json()["object"], "chat.completion");
    }

    // Forced, whatever was asked.
    let resp = call(
        &server,
        "/v1/messages",
        &[("accept-encoding", "gzip"), ("x-mock-behavior", "encoding=identity")],
        r#"{"model":"claude","stream":true,"messages":[]}"#,
    );
    assert_eq!(resp.header("content-encoding"), None);
    let resp = call(
        &server,
        "/v1/messages",
        &[("x-mock-behavior", "encoding=br")],
        r#"{"model":"claude","stream":true,"messages":[]}"#,
    );
    assert_eq!(resp.header("content-encoding"), Some("br"));
    let events = sse_events(&decoded(&resp));
    assert_eq!(events.last().and_then(|e| e.0.as_deref()), Some("message_stop"));
    let resp = call(
        &server,
        "/api/chat",
        &[("x-mock-behavior", "encoding=zstd")],
        r#"{"model":"m","messages":[]}"#,
    );
    assert_eq!(resp.header("content-encoding"), Some("zstd"));
    assert_eq!(&resp.body[..4], &[0x28, 0xB5, 0x2F, 0xFD], "a zstd frame");
    let resp = call(&server, "/v1/messages", &[("x-mock-behavior", "encoding=lzma")], "{}");
    assert_eq!(resp.status, 400);
}

#[test]
fn linger_keeps_a_stream_open_after_its_final_event() {
    let server = ModelServer::start().unwrap();
    let resp = call(
        &server,
        "/v1/chat/completions",
        &[("x-mock-behavior", "linger-after-final=300")],
        r#"{"model":"gpt-4o","stream":true,"messages":[]}"#,
    );
    // The stream still ends whole after the pause (the pause itself is what the SDK suite's
    // records show: a final event before the end of the stream).
    assert!(resp.complete);
    let events = sse_events(&resp.body);
    assert_eq!(events.last().map(|e| e.1.as_str()), Some("[DONE]"));
    assert_eq!(
        call(
            &server,
            "/v1/messages",
            &[("x-mock-behavior", "linger-after-final=x")],
            "{}"
        )
        .status,
        400
    );
}

#[test]
fn offered_tools_are_called_in_every_api() {
    let server = ModelServer::start().unwrap();
    let args: Value = serde_json::from_str(TOOL_ARGUMENTS).unwrap();
    let fn_tools = r#"[{"type":"function","function":{"name":"get_weather","parameters":{}}}]"#;

    let v = call(
        &server,
        "/v1/chat/completions",
        &[],
        &format!(r#"{{"model":"m","tools":{fn_tools}}}"#),
    )
    .json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let f = &v["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(
        (f["name"].as_str(), f["arguments"].as_str()),
        (Some("get_weather"), Some(TOOL_ARGUMENTS))
    );

    let resp = call(
        &server,
        "/v1/chat/completions",
        &[],
        &format!(r#"{{"model":"m","stream":true,"tools":{fn_tools}}}"#),
    );
    let mut streamed = String::new();
    for (_, data) in sse_events(&resp.body) {
        if let Ok(chunk) = serde_json::from_str::<Value>(&data) {
            streamed.push_str(
                chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap_or(""),
            );
        }
    }
    assert_eq!(streamed, TOOL_ARGUMENTS);

    let v = call(
        &server,
        "/v1/responses",
        &[],
        r#"{"model":"m","tools":[{"type":"function","name":"get_weather"}]}"#,
    )
    .json();
    assert_eq!(v["output"][0]["type"], "function_call");
    assert_eq!(v["output"][0]["arguments"], TOOL_ARGUMENTS);

    let v = call(
        &server,
        "/v1/messages",
        &[],
        r#"{"model":"m","tools":[{"name":"get_weather","input_schema":{}}]}"#,
    )
    .json();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["input"], args);

    let v = call(
        &server,
        "/v1beta/models/g:generateContent",
        &[],
        r#"{"tools":[{"functionDeclarations":[{"name":"get_weather"}]}]}"#,
    )
    .json();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["functionCall"]["args"], args);

    let v = call(
        &server,
        "/model/m/converse",
        &[],
        r#"{"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather"}}]}}"#,
    )
    .json();
    assert_eq!(v["stopReason"], "tool_use");
    assert_eq!(v["output"]["message"]["content"][0]["toolUse"]["input"], args);

    let v = call(
        &server,
        "/api/chat",
        &[],
        &format!(r#"{{"model":"m","stream":false,"tools":{fn_tools}}}"#),
    )
    .json();
    assert_eq!(v["message"]["tool_calls"][0]["function"]["arguments"], args);
    // Ollama's client sends `"tools": []` when there are none: no tool call then.
    let v = call(&server, "/api/chat", &[], r#"{"model":"m","stream":false,"tools":[]}"#).json();
    assert_eq!(v["message"]["content"], TEXT_DELTAS.concat());

    let v = call(
        &server,
        "/v2/chat",
        &[],
        &format!(r#"{{"model":"m","tools":{fn_tools}}}"#),
    )
    .json();
    assert_eq!(v["finish_reason"], "TOOL_CALL");
    assert_eq!(v["message"]["tool_calls"][0]["function"]["arguments"], TOOL_ARGUMENTS);
    let resp = call(
        &server,
        "/v2/chat",
        &[],
        &format!(r#"{{"model":"m","stream":true,"tools":{fn_tools}}}"#),
    );
    let kinds: Vec<String> = sse_events(&resp.body).into_iter().filter_map(|e| e.0).collect();
    assert!(kinds.contains(&"tool-call-start".to_string()) && kinds.last().map(String::as_str) == Some("message-end"));

    let v = call(
        &server,
        "/v1beta/models/e:batchEmbedContents",
        &[],
        r#"{"requests":[{},{}]}"#,
    )
    .json();
    assert_eq!(v["embeddings"].as_array().map(Vec::len), Some(2));
}

#[test]
fn response_ids_depend_on_the_request_not_on_the_order() {
    let id = |server: &ModelServer, body: &str| -> String {
        let r = call(server, "/v1/chat/completions", &[], body);
        assert_eq!(r.header("x-request-id"), None, "the mock sets no x-request-id");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let hello = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}"#;
    let other = r#"{"model":"gpt-4o","messages":[]}"#;
    let first = ModelServer::start().unwrap();
    let a = id(&first, hello);
    let b = id(&first, other);
    let second = ModelServer::start().unwrap();
    assert_eq!(id(&second, other), b, "the same request, after other requests or none");
    assert_eq!(id(&second, hello), a);
    assert_ne!(a, b, "different requests get different ids");
    assert!(
        a.starts_with("chatcmpl-mock") && a.len() == "chatcmpl-mock".len() + 12,
        "{a}"
    );
}
