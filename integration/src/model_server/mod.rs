//! Local mock AI model server: answers OpenAI, Azure OpenAI, Anthropic, Gemini/Vertex,
//! Bedrock, Ollama and Cohere APIs with realistic JSON and streamed bodies carrying fixed,
//! deterministic token usage (see [`tokens`]), and records every request it receives so
//! tests can assert what went upstream through Envoy.
//!
//! Plain std networking: one accept thread plus one thread per connection, HTTP/1.1 with
//! keep-alive, request bodies of any size (content-length or chunked) counted, hashed and
//! truncated to the first 64 KiB.
//!
//! Routes are matched as common servers match them: on the path with every `%XX` decoded once
//! (`%2F` included), `.`/`..` segments resolved and repeated or trailing slashes dropped, case
//! sensitive, `;` and `\` ordinary characters (see `apis::routing_path`); so a spelling that
//! slips past the filter but that a real server would serve is served here too.
//! Routes (POST; query ignored except `alt=sse`; anything else → 404
//! `{"error":{"message":"not found"}}`, `GET /healthz` → `ok`):
//! `…/chat/completions` and `/llm/…` (OpenAI chat), `…/completions`, `…/embeddings`,
//! `…/responses`, `…/v1/messages` (Anthropic), `…/models/{m}:generateContent` /
//! `:streamGenerateContent` (Gemini, Vertex) and `:rawPredict` / `:streamRawPredict`
//! (Anthropic on Vertex), `/model/{id}/converse[-stream]` / `invoke[-with-response-stream]`
//! (Bedrock), `/api/chat|generate|embed` (Ollama), `/v1|v2/chat|embed|rerank` (Cohere).
//! The response `model` echoes the body's `model`, else the path's model/deployment, else
//! `mock-model`. JSON object keys come out in alphabetical order (serde_json default).
//! Response ids (`chatcmpl-mock…`, `msg_mock…`) are 12 hex digits of a SHA-256 of the request's
//! method, path and body: the same request always gets the same id, whatever came before it.
//! Responses carry no `x-request-id` of their own (Envoy's and the caller's stay unambiguous).
//!
//! `/mcp` and any path ending in `/mcp` (POST, GET, DELETE) are an MCP server (Streamable HTTP,
//! session generation 2025-03-26 to 2025-11-25 and stateless 2026-07-28), with its own switches:
//! see [`mcp`]. Its request bodies are kept whole up to [`mcp::MAX_BODY`].
//!
//! Per-request behaviour switches come from the `x-mock-behavior` request header
//! (comma-separated, may repeat) and `x-mock-delay-ms`:
//!
//! | switch | effect |
//! |---|---|
//! | `reset-mid-stream` | send about half the body (stream or JSON), then `shutdown(Both)` the socket and drop it without the terminating chunk (a FIN, not a guaranteed RST: std has no SO_LINGER) |
//! | `slow` | 200 ms between stream writes (instead of 3 ms) |
//! | `status=NNN` | answer status NNN (200..=599) with the provider's error JSON shape |
//! | `no-usage` | omit usage everywhere (JSON, stream events, Bedrock token headers/metrics) |
//! | `big-event` | streams only: one extra ~1 MiB text delta event, placed before the usage-bearing events (token numbers unchanged) |
//! | `garbage` | 200, `text/event-stream`, 4 KiB of deterministic pseudo-random bytes, chunked |
//! | `trickle` | 1-byte writes; pause between writes is `min(3 ms, 2 s / body_len)` |
//! | `encoding=gzip\|deflate\|br\|zstd\|identity` | use that `content-encoding` whatever the request's `accept-encoding` says (`identity`: never compress) |
//! | `linger-after-final=MS` | streams only: keep the response open MS ms (capped at 60 s) after the protocol's final event (`data: [DONE]`, `message_stop`, …) before ending it |
//! | `x-mock-delay-ms: N` | sleep N ms (capped at 60 s) before the response starts |
//!
//! Unknown switches are ignored; an unparsable `status=`/`encoding=`/`linger-after-final=`/
//! `x-mock-delay-ms` gives a 400.
//!
//! Compression ([`encoding`]): without `encoding=`, answers (JSON and streams) are compressed with
//! gzip or deflate when the request's `accept-encoding` accepts one (q-values honoured), as real
//! providers do; stream writes are flushed through the encoder one by one, so events still
//! arrive as they are generated. `br` and `zstd` are real encodings too, sent only when forced.
//! Every answer carries `x-mock-accept-encoding`: the `accept-encoding` the request arrived with.
//!
//! Tool calls: when the request offers a tool (in its provider's shape), the answer calls the
//! first one with the arguments [`TOOL_ARGUMENTS`], JSON and streamed, in
//! each provider's format (`tool_calls`, `function_call` items, `tool_use`, `functionCall`,
//! `toolUse`, Ollama `tool_calls`, Cohere `tool-call-*` events); token usage is unchanged.
//! By default streams are written in deliberately awkward pieces (7, 13, 29, 1 bytes that
//! split events, alternating with writes that finish an event and carry 1–3 more), each
//! piece its own HTTP chunk, with a 3 ms pause between writes.

mod apis;
pub mod codec;
pub mod encoding;
mod http;
pub mod mcp;

use std::collections::HashMap;
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use apis::TOOL_ARGUMENTS;
pub use codec::{decode_event_stream, encode_event, EventMessage};

/// How much of each request body is kept in [`ReceivedRequest::body`].
pub const BODY_KEEP: usize = http::BODY_KEEP;
/// Idle/read timeout on accepted connections.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Fixed token usage reported per API (identical in JSON and streamed responses).
///
/// | API | input | output | cache read | cache write | reasoning | total |
/// |---|---|---|---|---|---|---|
/// | OpenAI chat (`prompt_tokens`/`completion_tokens`, `cached_tokens`, `reasoning_tokens`) | 27 | 12 | 10 | – | 4 | 39 |
/// | OpenAI completions | 15 | 9 | – | – | – | 24 |
/// | OpenAI embeddings | 8 | – | – | – | – | 8 |
/// | OpenAI responses (`input_tokens`/`output_tokens`) | 31 | 17 | 12 | – | 5 | 48 |
/// | Anthropic messages (also Vertex `:rawPredict`) | 25 | 14 | 100 | 50 | – | (39) |
/// | Gemini / Vertex (`promptTokenCount`, `candidatesTokenCount`, `cachedContentTokenCount`, `thoughtsTokenCount`) | 21 | 11 | 6 | – | 3 | 35 |
/// | Bedrock converse / converse-stream | 19 | 13 | 5 | 7 | – | 44 |
/// | Bedrock invoke / invoke-with-response-stream (Anthropic body, headers, invocationMetrics) | 23 | 16 | 3 | 2 | – | (39) |
/// | Ollama chat / generate (`prompt_eval_count`/`eval_count`) | 26 | 18 | – | – | – | (44) |
/// | Ollama embed | 6 | – | – | – | – | (6) |
/// | Cohere chat `billed_units` (v1 `meta`, v2 `usage`) | 16 | 10 | – | – | – | (26) |
/// | Cohere chat `tokens` | 22 | 10 | – | – | – | (32) |
/// | Cohere embed `billed_units.input_tokens` | 7 | – | – | – | – | (7) |
/// | Cohere rerank `billed_units.search_units` | [`COHERE_RERANK_SEARCH_UNITS`](tokens::COHERE_RERANK_SEARCH_UNITS) = 1 | | | | | |
///
/// Totals in parentheses are not reported by the API (input + output).
pub mod tokens {
    /// Token counts for one API. `total` is what the API reports (or input + output).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct MockUsage {
        pub input: u64,
        pub output: u64,
        pub cache_read: u64,
        pub cache_write: u64,
        pub reasoning: u64,
        pub total: u64,
    }

    const fn u(input: u64, output: u64, cache_read: u64, cache_write: u64, reasoning: u64, total: u64) -> MockUsage {
        MockUsage {
            input,
            output,
            cache_read,
            cache_write,
            reasoning,
            total,
        }
    }

    pub const OPENAI_CHAT: MockUsage = u(27, 12, 10, 0, 4, 39);
    pub const OPENAI_COMPLETIONS: MockUsage = u(15, 9, 0, 0, 0, 24);
    pub const OPENAI_EMBEDDINGS: MockUsage = u(8, 0, 0, 0, 0, 8);
    pub const OPENAI_RESPONSES: MockUsage = u(31, 17, 12, 0, 5, 48);
    pub const ANTHROPIC: MockUsage = u(25, 14, 100, 50, 0, 39);
    /// total = prompt + candidates + thoughts.
    pub const GEMINI: MockUsage = u(21, 11, 6, 0, 3, 35);
    /// total = input + output + cache read + cache write.
    pub const BEDROCK_CONVERSE: MockUsage = u(19, 13, 5, 7, 0, 44);
    pub const BEDROCK_INVOKE: MockUsage = u(23, 16, 3, 2, 0, 39);
    pub const OLLAMA_CHAT: MockUsage = u(26, 18, 0, 0, 0, 44);
    pub const OLLAMA_EMBED: MockUsage = u(6, 0, 0, 0, 0, 6);
    /// Cohere `billed_units`.
    pub const COHERE_CHAT: MockUsage = u(16, 10, 0, 0, 0, 26);
    /// Cohere `tokens`.
    pub const COHERE_CHAT_TOKENS: MockUsage = u(22, 10, 0, 0, 0, 32);
    pub const COHERE_EMBED: MockUsage = u(7, 0, 0, 0, 0, 7);
    pub const COHERE_RERANK_SEARCH_UNITS: u64 = 1;
}

/// The assistant text every API returns (streams send it in these pieces).
pub const TEXT_DELTAS: [&str; 6] = ["Hello", " from", " the", " mock", " model", " server."];

/// One request as received by the mock server.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    /// Request target as sent, including the query string.
    pub path: String,
    /// Names lower-cased, values trimmed, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// Total body bytes received.
    pub body_len: usize,
    /// First 16 hex chars of the SHA-256 of the whole body (`None` if the body was cut short).
    pub body_sha256_prefix: Option<String>,
    /// The first [`BODY_KEEP`] (64 KiB) bytes of the body; on the MCP endpoint, the first
    /// [`mcp::MAX_BODY`] (16 MiB).
    pub body: Vec<u8>,
    /// Whether the whole body arrived (framing completed), not whether `body` holds all of it.
    pub body_complete: bool,
}

impl ReceivedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The stored body prefix parsed as JSON (if it is complete, stored whole and valid).
    pub fn json(&self) -> Option<serde_json::Value> {
        if self.body_complete && self.body.len() == self.body_len {
            serde_json::from_slice(&self.body).ok()
        } else {
            None
        }
    }
}

struct Shared {
    requests: Mutex<Vec<ReceivedRequest>>,
    arrived: Condvar,
    stopping: AtomicBool,
    next_conn: AtomicU64,
    conns: Mutex<HashMap<u64, TcpStream>>,
    mcp: mcp::Sessions,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn record(&self, req: ReceivedRequest) {
        lock(&self.requests).push(req);
        self.arrived.notify_all();
    }
}

/// A running mock model server. Dropping it stops accepting, closes the listener and
/// shuts down open connections.
pub struct ModelServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl ModelServer {
    /// Binds 127.0.0.1:0 (a free port) and serves on background threads.
    pub fn start() -> io::Result<ModelServer> {
        Self::start_on("127.0.0.1:0")
    }

    /// Binds `addr` (e.g. `"127.0.0.1:18080"`) and serves on background threads.
    pub fn start_on(addr: &str) -> io::Result<ModelServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            stopping: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
            mcp: mcp::Sessions::new(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("model-server-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(ModelServer {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Removes and returns every request received so far.
    pub fn take(&self) -> Vec<ReceivedRequest> {
        std::mem::take(&mut *lock(&self.shared.requests))
    }

    /// Waits up to `timeout` for a request (already received or arriving) having a header
    /// `name` (case-insensitive) whose value equals `value` exactly.
    pub fn wait_for(&self, name: &str, value: &str, timeout: Duration) -> Option<ReceivedRequest> {
        let deadline = Instant::now() + timeout;
        let mut guard = lock(&self.shared.requests);
        loop {
            if let Some(found) = guard.iter().find(|r| r.header_all(name).contains(&value)) {
                return Some(found.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = match self.shared.arrived.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Forgets all recorded requests.
    pub fn clear(&self) {
        lock(&self.shared.requests).clear();
    }

    /// The MCP server's open sessions.
    pub fn mcp_sessions(&self) -> &mcp::Sessions {
        &self.shared.mcp
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread exits and drops the listener.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let woke = TcpStream::connect_timeout(&wake, Duration::from_secs(2)).is_ok();
        if let Some(handle) = self.accept.take() {
            if woke {
                let _ = handle.join();
            }
        }
        for (_, conn) in lock(&self.shared.conns).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.conns).insert(id, clone);
        }
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new().name("model-server-conn".into()).spawn(move || {
            serve_connection(stream, &conn_shared);
            lock(&conn_shared.conns).remove(&id);
        });
        if spawned.is_err() {
            lock(&shared.conns).remove(&id);
        }
    }
}

fn bad_request(stream: &mut TcpStream, message: &str) {
    let reply = http::Reply::json(
        400,
        &serde_json::json!({"error": {"message": format!("bad request: {message}"), "type": "invalid_request_error"}}),
    );
    let head = http::Head {
        method: "POST".into(),
        target: "/".into(),
        minor: 1,
        headers: vec![("connection".into(), "close".into())],
    };
    http::send(stream, &head, &reply, http::Pacing::PLAIN);
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = stream;
    loop {
        let head = match http::read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) | Err(http::ReadError::Io) => break,
            Err(http::ReadError::Bad(msg)) => {
                bad_request(&mut writer, &msg);
                break;
            }
        };
        let framing = match http::framing(&head) {
            Ok(f) => f,
            Err(e) => {
                shared.record(received(&head, http::BodySink::default(), false));
                if let http::ReadError::Bad(msg) = e {
                    bad_request(&mut writer, &msg);
                }
                break;
            }
        };
        if framing != http::Framing::Empty
            && head.expects_continue()
            && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            break;
        }
        let on_mcp = mcp::is_endpoint(&head.target);
        let mut sink = http::BodySink::keeping(if on_mcp { mcp::MAX_BODY } else { BODY_KEEP });
        let body = http::read_body(&mut reader, framing, &mut sink);
        let req = received(&head, sink, body.is_ok());
        let answer = if body.is_ok() {
            Some(if on_mcp {
                mcp::respond(&req, &shared.mcp)
            } else {
                apis::respond(&req)
            })
        } else {
            None
        };
        shared.record(req);
        match body {
            Ok(()) => {}
            Err(http::ReadError::Io) => break,
            Err(http::ReadError::Bad(msg)) => {
                bad_request(&mut writer, &msg);
                break;
            }
        }
        let Some(answer) = answer else { break };
        if let Some(delay) = answer.delay {
            thread::sleep(delay);
        }
        if http::send(&mut writer, &head, &answer.reply, answer.pacing) == http::After::Close {
            let _ = writer.shutdown(Shutdown::Write);
            break;
        }
    }
}

fn received(head: &http::Head, sink: http::BodySink, complete: bool) -> ReceivedRequest {
    let sha = if complete {
        let hex = sink.sha.finish_hex();
        Some(hex.get(..16).unwrap_or(&hex).to_string())
    } else {
        None
    };
    ReceivedRequest {
        method: head.method.clone(),
        path: head.target.clone(),
        headers: head.headers.clone(),
        body_len: sink.len,
        body_sha256_prefix: sha,
        body: sink.prefix,
        body_complete: complete,
    }
}

#[cfg(test)]
mod tests;
