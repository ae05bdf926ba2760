//! Token usage readers for AI provider responses, JSON and streamed (SSE per WHATWG HTML,
//! NDJSON, AWS event stream), with OpenTelemetry `gen_ai.usage.*` semantics.
//!
//! A [`UsageReader`] is fed the response body in arbitrary chunks and never buffers it:
//! bodies are framed into JSON documents (the whole body, one SSE event, one NDJSON line,
//! one event-stream message) and each is scanned for the family's usage fields only (see
//! `providers.rs`). Garbage yields "no usage found", never an error or a panic.

mod base64;
mod decode;
mod document;
mod eventstream;
mod ndjson;
mod providers;
mod sse;

#[cfg(test)]
mod tests;

pub use decode::Coding;
pub(crate) use decode::Decoder;
use document::DocumentReader;
pub use document::DocumentSink;
use eventstream::EventStreamDecoder;
use ndjson::NdjsonFramer;
pub use sse::SseFramer;

/// Token usage of one model call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    /// All input tokens, cached ones included (OpenTelemetry `gen_ai.usage.input_tokens`).
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The part of the input read from the provider's prompt cache.
    pub cached_input_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub response_model: Option<String>,
    pub response_id: Option<String>,
    /// The tools the model asked to call, in order, at most [`MAX_TOOL_CALLS`].
    pub tool_calls: Vec<ToolCall>,
}

/// Most requested tool calls recorded per answer.
pub const MAX_TOOL_CALLS: usize = 16;

/// A tool call a model answer asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    /// The call's id, where the API gives one.
    pub id: Option<String>,
}

impl Usage {
    /// At least one token count is known.
    pub fn has_token_counts(&self) -> bool {
        self.input_tokens.is_some()
            || self.output_tokens.is_some()
            || self.cached_input_tokens.is_some()
            || self.reasoning_tokens.is_some()
    }
}

/// The provider API whose response is read (shared with model-call recognition).
pub use crate::provider::ApiFamily;

/// How the response body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Sse,
    Ndjson,
    AwsEventStream,
}

impl BodyFormat {
    /// The format of a `Content-Type` header value (case-insensitive, parameters ignored),
    /// or `None` for anything else.
    pub fn from_content_type(ct: &str) -> Option<BodyFormat> {
        let media_type = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match media_type.as_str() {
            "text/event-stream" => Some(BodyFormat::Sse),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => {
                Some(BodyFormat::Ndjson)
            }
            "application/vnd.amazon.eventstream" => Some(BodyFormat::AwsEventStream),
            "application/json" => Some(BodyFormat::Json),
            other if other.starts_with("application/") && other.ends_with("+json") => Some(BodyFormat::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Framing {
    /// The body is one JSON document; `read` once it has been folded in.
    Json {
        read: bool,
    },
    Sse(SseFramer),
    Ndjson(NdjsonFramer),
    AwsEventStream(Box<EventStreamDecoder>),
}

/// Reads token usage from a response body fed in arbitrary chunks, in bounded memory.
#[derive(Debug, Clone)]
pub struct UsageReader {
    framing: Framing,
    doc: DocumentReader,
    finished: bool,
}

impl UsageReader {
    pub fn new(family: ApiFamily, format: BodyFormat) -> Self {
        let framing = match format {
            BodyFormat::Json => Framing::Json { read: false },
            BodyFormat::Sse => Framing::Sse(SseFramer::new()),
            BodyFormat::Ndjson => Framing::Ndjson(NdjsonFramer::new()),
            BodyFormat::AwsEventStream => Framing::AwsEventStream(Box::new(EventStreamDecoder::new())),
        };
        UsageReader {
            framing,
            doc: DocumentReader::new(family),
            finished: false,
        }
    }

    /// Feeds the next bytes of the body. Ignored after [`UsageReader::finish`].
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.finished {
            return;
        }
        match &mut self.framing {
            Framing::Json { read } => {
                if !*read {
                    self.doc.feed(chunk);
                    if self.doc.is_complete() {
                        self.doc.end_document();
                        *read = true;
                    }
                }
            }
            Framing::Sse(framer) => framer.feed(chunk, &mut self.doc),
            Framing::Ndjson(framer) => framer.feed(chunk, &mut self.doc),
            Framing::AwsEventStream(decoder) => decoder.feed(chunk, &mut self.doc),
        }
    }

    /// The body ended normally. A JSON body cut short still yields the fields seen.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        match &mut self.framing {
            Framing::Json { read } => {
                if !*read {
                    self.doc.end_partial_document();
                    *read = true;
                }
            }
            Framing::Sse(framer) => framer.finish(&mut self.doc),
            Framing::Ndjson(framer) => framer.finish(&mut self.doc),
            Framing::AwsEventStream(_) => self.doc.discard_document(),
        }
    }

    /// The usage found so far.
    pub fn usage(&self) -> &Usage {
        self.doc.usage()
    }

    /// The protocol's final event was read (a stream's end, as the provider marks it).
    pub fn final_seen(&self) -> bool {
        self.doc.final_seen()
    }

    /// At least one token count was found.
    #[cfg(test)]
    pub fn reported(&self) -> bool {
        self.doc.usage().has_token_counts()
    }

    /// A JSON body has been read whole.
    pub fn document_complete(&self) -> bool {
        matches!(self.framing, Framing::Json { read: true })
    }

    /// Bytes held in the reader's buffers.
    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        let framing = match &self.framing {
            Framing::AwsEventStream(decoder) => decoder.buffered_bytes(),
            _ => 0,
        };
        self.doc.buffered_bytes() + framing
    }
}
