//! The JSON-RPC 2.0 request body of an MCP POST, read as it arrives: one message, or a batch
//! array (2025-03-26) read element by element, each with the streaming scanner, at most
//! [`MAX_BATCH`] messages. Only `jsonrpc`, `id`, `method`, `params.name` and `params.uri` are kept.

use crate::json_scan::{JsonPaths, JsonScalar, JsonScanner};
use std::rc::Rc;

/// Messages of a batch that are read; a longer batch counts as unreadable.
pub const MAX_BATCH: usize = 16;
/// Longest method, name, URI or id kept, in bytes.
const MAX_TEXT: usize = 512;

const ID: usize = 1;
const METHOD: usize = 2;
const NAME: usize = 3;
const URI: usize = 4;

thread_local! {
    static PATHS: Rc<JsonPaths> = JsonPaths::new(
        [&["jsonrpc"][..], &["id"], &["method"], &["params", "name"], &["params", "uri"]]
            .iter()
            .map(|p| p.iter().map(|c| (*c).to_string()).collect())
            .collect(),
    );
}

/// One JSON-RPC message of the body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct McpMessage {
    /// The id as JSON text (`"abc"` with its quotes, or `7`); `None` for a notification.
    pub id: Option<String>,
    pub method: Option<String>,
    /// `params.name` (tools/call, prompts/get).
    pub name: Option<String>,
    /// `params.uri` (resources/read).
    pub uri: Option<String>,
}

impl McpMessage {
    /// The id as a plain string for the record (`jsonrpc.request.id`): a string id unquoted.
    pub fn id_text(&self) -> Option<String> {
        let id = self.id.as_deref()?;
        Some(serde_json::from_str::<String>(id).unwrap_or_else(|_| id.to_string()))
    }
}

/// Where the reader is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Before the first non-blank byte.
    Unknown,
    Single,
    /// Inside a batch array: between elements, or inside one (`depth` brackets deep).
    Batch {
        depth: usize,
        in_string: bool,
        escaped: bool,
        in_element: bool,
    },
    Done,
}

#[derive(Debug)]
pub struct McpRequestReader {
    shape: Shape,
    scanner: JsonScanner,
    messages: Vec<McpMessage>,
    batch: bool,
    malformed: bool,
    overflow: bool,
}

impl Default for McpRequestReader {
    fn default() -> Self {
        Self::new()
    }
}

fn text(v: Option<&JsonScalar>) -> Option<String> {
    match v {
        Some(JsonScalar::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl McpRequestReader {
    pub fn new() -> Self {
        McpRequestReader {
            shape: Shape::Unknown,
            scanner: JsonScanner::with_paths(PATHS.with(Rc::clone), MAX_TEXT),
            messages: Vec::new(),
            batch: false,
            malformed: false,
            overflow: false,
        }
    }

    /// Every message read so far.
    pub fn messages(&self) -> &[McpMessage] {
        &self.messages
    }

    /// Every method read so far: of the messages complete, and of the one being read (a method
    /// is known as soon as its value is, before the rest of its message arrives).
    pub fn methods_seen(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.messages.iter().filter_map(|m| m.method.as_deref()).collect();
        if self.shape != Shape::Done {
            if let Some(JsonScalar::String(m)) = self.scanner.value(METHOD) {
                out.push(m);
            }
        }
        out
    }

    /// The body was a batch array.
    pub fn is_batch(&self) -> bool {
        self.batch
    }

    /// Nothing more will be learnt from the body.
    pub fn finished(&self) -> bool {
        self.shape == Shape::Done
    }

    /// The body was not JSON-RPC this reader can read (malformed, or a batch over [`MAX_BATCH`]):
    /// what it asks for is unknown.
    pub fn unreadable(&self) -> bool {
        self.malformed || self.overflow
    }

    fn take_message(&mut self) {
        if self.scanner.is_complete() {
            let id = match self.scanner.value(ID) {
                Some(JsonScalar::String(s)) => serde_json::to_string(s).ok(),
                Some(JsonScalar::Number(n)) => Some(n.clone()),
                _ => None,
            };
            let message = McpMessage {
                id,
                method: text(self.scanner.value(METHOD)),
                name: text(self.scanner.value(NAME)),
                uri: text(self.scanner.value(URI)),
            };
            if self.messages.len() < MAX_BATCH {
                self.messages.push(message);
            } else {
                self.overflow = true;
            }
        } else {
            self.malformed = true;
        }
        self.scanner.reset();
    }

    /// Feeds the next body bytes.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            match self.shape {
                Shape::Done => return,
                Shape::Unknown => {
                    let Some(at) = chunk.iter().position(|b| !b.is_ascii_whitespace()) else {
                        return;
                    };
                    chunk = chunk.get(at..).unwrap_or_default();
                    if chunk.first() == Some(&b'[') {
                        self.batch = true;
                        self.shape = Shape::Batch {
                            depth: 0,
                            in_string: false,
                            escaped: false,
                            in_element: false,
                        };
                        chunk = chunk.get(1..).unwrap_or_default();
                    } else {
                        self.shape = Shape::Single;
                    }
                }
                Shape::Single => {
                    self.scanner.feed(chunk);
                    if self.scanner.is_complete() || self.scanner.is_malformed() {
                        self.take_message();
                        self.shape = Shape::Done;
                    }
                    return;
                }
                Shape::Batch { .. } => {
                    let used = self.batch_bytes(chunk);
                    chunk = chunk.get(used..).unwrap_or_default();
                }
            }
        }
    }

    /// Reads batch bytes; returns how many were used.
    fn batch_bytes(&mut self, chunk: &[u8]) -> usize {
        let Shape::Batch {
            mut depth,
            mut in_string,
            mut escaped,
            mut in_element,
        } = self.shape
        else {
            return chunk.len();
        };
        let mut element_start = if in_element { Some(0) } else { None };
        for (i, &b) in chunk.iter().enumerate() {
            if !in_element {
                match b {
                    b' ' | b'\t' | b'\n' | b'\r' | b',' => continue,
                    b']' => {
                        self.shape = Shape::Done;
                        if self.messages.is_empty() && !self.overflow {
                            // An empty batch is invalid JSON-RPC.
                            self.malformed = true;
                        }
                        return i + 1;
                    }
                    _ => {
                        in_element = true;
                        element_start = Some(i);
                    }
                }
            }
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        if let Some(start) = element_start.take() {
                            self.scanner.feed(chunk.get(start..=i).unwrap_or_default());
                        }
                        self.take_message();
                        in_element = false;
                        if self.unreadable() {
                            self.shape = Shape::Done;
                            return i + 1;
                        }
                    }
                }
                _ if depth == 0 => {
                    // A scalar element: not a JSON-RPC message.
                    self.malformed = true;
                    self.shape = Shape::Done;
                    return i + 1;
                }
                _ => {}
            }
        }
        if let Some(start) = element_start {
            self.scanner.feed(chunk.get(start..).unwrap_or_default());
        }
        self.shape = Shape::Batch {
            depth,
            in_string,
            escaped,
            in_element,
        };
        chunk.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_every_way(body: &[u8]) -> (Vec<McpMessage>, bool, bool) {
        let read = |parts: &[&[u8]]| {
            let mut r = McpRequestReader::new();
            for p in parts {
                r.feed(p);
            }
            (r.messages().to_vec(), r.finished(), r.unreadable())
        };
        let whole = read(&[body]);
        for split in 0..=body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(read(&[a, b]), whole, "split at {split}");
        }
        whole
    }

    #[test]
    fn one_message() {
        let (m, done, bad) = read_every_way(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Paris"}}}"#,
        );
        assert!(done && !bad);
        assert_eq!(
            m,
            vec![McpMessage {
                id: Some("7".into()),
                method: Some("tools/call".into()),
                name: Some("get_weather".into()),
                uri: None
            }]
        );
        assert_eq!(m[0].id_text().as_deref(), Some("7"));
    }

    #[test]
    fn a_batch_is_read_element_by_element() {
        let body = br#" [ {"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"s":"}]"}}} ] "#;
        let (m, done, bad) = read_every_way(body);
        assert!(done && !bad);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].id.as_deref(), Some("\"a\""));
        assert_eq!(m[0].id_text().as_deref(), Some("a"));
        assert_eq!(m[0].uri.as_deref(), Some("file:///x"));
        assert_eq!(m[1].id, None);
        assert_eq!(m[2].name.as_deref(), Some("t"));
    }

    #[test]
    fn what_cannot_be_read_says_so() {
        for body in [&b"not json"[..], b"[]", b"[1,2]", b"{\"id\":1,", b"[{\"id\":1},"] {
            let mut r = McpRequestReader::new();
            r.feed(body);
            assert!(r.unreadable() || !r.finished(), "{body:?}");
        }
        let many: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"ping"}}"#))
            .collect();
        let body = format!("[{}]", many.join(","));
        let mut r = McpRequestReader::new();
        r.feed(body.as_bytes());
        assert!(r.unreadable() && r.finished());
        assert_eq!(r.messages().len(), MAX_BATCH);
    }
}
