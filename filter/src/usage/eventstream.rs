//! Incremental decoder for the AWS event stream encoding (`application/vnd.amazon.eventstream`,
//! as documented in the Amazon S3 SelectObjectContent appendix and used by Bedrock
//! ConverseStream and InvokeModelWithResponseStream).
//!
//! Message layout: prelude = total length (u32 BE), headers length (u32 BE), prelude CRC32;
//! then headers (name length u8, name, value type u8, typed value), payload, message CRC32
//! (CRC-32/IEEE over everything before it). Both CRCs are verified; a bad prelude CRC
//! means the framing is lost, so decoding stops for good.
//!
//! Payloads are streamed, not buffered: an event's JSON payload goes straight into the
//! [`DocumentReader`] and counts only once the message CRC checks out. InvokeModel `chunk`
//! events wrap the model's JSON event as `{"bytes":"<base64>"}`: that string (at most
//! [`MAX_CHUNK_BASE64_BYTES`]) is kept, then decoded into the document reader.
//! Headers are kept up to [`MAX_HEADERS_BYTES`]; a message with more is skipped.

use super::base64::decode_into;
use super::document::DocumentReader;
use crate::json_scan::{JsonPaths, JsonScalar, JsonScanner};
use std::rc::Rc;

const PRELUDE_BYTES: usize = 12;
const CRC_BYTES: usize = 4;
/// The fixed part of every message: prelude (12 bytes) and message CRC (4 bytes).
const OVERHEAD_BYTES: usize = PRELUDE_BYTES + CRC_BYTES;
/// Largest header block kept; AWS headers of these events are well under 200 bytes.
pub(crate) const MAX_HEADERS_BYTES: usize = 1024;
/// Larger messages break the stream: AWS caps payloads at 16 MiB and headers at 128 KiB.
pub(crate) const MAX_MESSAGE_BYTES: usize = (16 << 20) + (128 << 10) + OVERHEAD_BYTES;
/// Longest base64 `bytes` string of an InvokeModel `chunk` event that is decoded.
pub(crate) const MAX_CHUNK_BASE64_BYTES: usize = 256 << 10;

/// CRC-32/IEEE (reflected, polynomial 0xEDB88320), bitwise: start from `u32::MAX`,
/// finish by inverting.
fn crc32_update(mut state: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        state ^= u32::from(b);
        for _ in 0..8 {
            let mask = (state & 1).wrapping_neg();
            state = (state >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    state
}

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    !crc32_update(u32::MAX, bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Prelude,
    Headers,
    Payload,
    MessageCrc,
    /// The framing was lost; everything else is ignored.
    Broken,
}

/// Where the payload of the current message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Skip,
    /// An event whose payload is a JSON document of the family.
    Document,
    /// An InvokeModel `chunk` event: `{"bytes":"<base64 of a JSON document>"}`.
    Base64Chunk,
}

/// What the headers of a message say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MessageKind {
    is_event: bool,
    is_chunk: bool,
    /// ConverseStream's last event, which carries the usage.
    is_metadata: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct EventStreamDecoder {
    stage: Stage,
    prelude: [u8; PRELUDE_BYTES],
    prelude_len: usize,
    message_crc: [u8; CRC_BYTES],
    message_crc_len: usize,
    running_crc: u32,
    headers: Vec<u8>,
    headers_overflow: bool,
    headers_remaining: usize,
    payload_remaining: usize,
    route: Route,
    chunk: JsonScanner,
}

fn be_u32(bytes: &[u8]) -> Option<u32> {
    let array: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(array))
}

/// Reads the header block; `None` if it is not well formed.
fn parse_headers(mut rest: &[u8]) -> Option<MessageKind> {
    let mut kind = MessageKind {
        is_event: true,
        is_chunk: false,
        is_metadata: false,
    };
    while let Some((&name_len, after)) = rest.split_first() {
        let (name, after) = after.split_at_checked(usize::from(name_len))?;
        let (&value_type, after) = after.split_first()?;
        let (value, after) = match value_type {
            0 | 1 => (&[][..], after),
            2 => after.split_at_checked(1)?,
            3 => after.split_at_checked(2)?,
            4 => after.split_at_checked(4)?,
            5 | 8 => after.split_at_checked(8)?,
            9 => after.split_at_checked(16)?,
            6 | 7 => {
                let (len, after) = after.split_at_checked(2)?;
                let len = u16::from_be_bytes(len.try_into().ok()?);
                after.split_at_checked(usize::from(len))?
            }
            _ => return None,
        };
        if value_type == 7 {
            match name {
                b":message-type" => kind.is_event = value == b"event",
                b":event-type" => {
                    kind.is_chunk = value == b"chunk";
                    kind.is_metadata = value == b"metadata";
                }
                _ => {}
            }
        }
        rest = after;
    }
    Some(kind)
}

thread_local! {
    static CHUNK_PATHS: Rc<JsonPaths> = JsonPaths::new(vec![vec!["bytes".to_string()]]);
}

/// The one path of an InvokeModel `chunk` event, compiled once per VM.
fn chunk_paths() -> Rc<JsonPaths> {
    CHUNK_PATHS.with(Rc::clone)
}

impl EventStreamDecoder {
    pub(crate) fn new() -> Self {
        EventStreamDecoder {
            stage: Stage::Prelude,
            prelude: [0; PRELUDE_BYTES],
            prelude_len: 0,
            message_crc: [0; CRC_BYTES],
            message_crc_len: 0,
            running_crc: u32::MAX,
            headers: Vec::new(),
            headers_overflow: false,
            headers_remaining: 0,
            payload_remaining: 0,
            route: Route::Skip,
            chunk: JsonScanner::with_paths(chunk_paths(), MAX_CHUNK_BASE64_BYTES),
        }
    }

    #[cfg(test)]
    pub(crate) fn is_broken(&self) -> bool {
        self.stage == Stage::Broken
    }

    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.headers.capacity() + self.chunk.buffered_bytes()
    }

    pub(crate) fn feed(&mut self, chunk: &[u8], doc: &mut DocumentReader) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let used = match self.stage {
                Stage::Prelude => self.prelude_bytes(rest, doc),
                Stage::Headers => self.header_bytes(rest, doc),
                Stage::Payload => self.payload_bytes(rest, doc),
                Stage::MessageCrc => self.crc_bytes(rest, doc),
                Stage::Broken => rest.len(),
            };
            rest = rest.get(used..).unwrap_or(&[]);
        }
    }

    /// Copies the start of `rest` into the unfilled end of `target`; returns bytes taken.
    fn fill(target: &mut [u8], filled: &mut usize, rest: &[u8]) -> usize {
        let take = target.len().saturating_sub(*filled).min(rest.len());
        if let (Some(slot), Some(bytes)) = (target.get_mut(*filled..*filled + take), rest.get(..take)) {
            slot.copy_from_slice(bytes);
        }
        *filled += take;
        take
    }

    fn prelude_bytes(&mut self, rest: &[u8], doc: &mut DocumentReader) -> usize {
        let used = Self::fill(&mut self.prelude, &mut self.prelude_len, rest);
        if self.prelude_len < PRELUDE_BYTES {
            return used;
        }
        let (lengths, crc) = self.prelude.split_at(8);
        let total = be_u32(lengths).and_then(|v| usize::try_from(v).ok());
        let headers = lengths.get(4..).and_then(be_u32).and_then(|v| usize::try_from(v).ok());
        let (Some(total), Some(headers)) = (total, headers) else {
            self.stage = Stage::Broken;
            return used;
        };
        let frame_ok = be_u32(crc) == Some(crc32(lengths))
            && (OVERHEAD_BYTES..=MAX_MESSAGE_BYTES).contains(&total)
            && headers <= total - OVERHEAD_BYTES;
        if !frame_ok {
            self.stage = Stage::Broken;
            return used;
        }
        self.running_crc = crc32_update(u32::MAX, &self.prelude);
        self.headers.clear();
        self.headers_overflow = headers > MAX_HEADERS_BYTES;
        self.headers_remaining = headers;
        self.payload_remaining = total - OVERHEAD_BYTES - headers;
        self.stage = Stage::Headers;
        if headers == 0 {
            self.headers_done(doc);
        }
        used
    }

    fn header_bytes(&mut self, rest: &[u8], doc: &mut DocumentReader) -> usize {
        let take = self.headers_remaining.min(rest.len());
        let bytes = rest.get(..take).unwrap_or(&[]);
        self.running_crc = crc32_update(self.running_crc, bytes);
        if !self.headers_overflow {
            self.headers.extend_from_slice(bytes);
        }
        self.headers_remaining -= take;
        if self.headers_remaining == 0 {
            self.headers_done(doc);
        }
        take
    }

    fn headers_done(&mut self, doc: &mut DocumentReader) {
        let kind = if self.headers_overflow {
            None
        } else {
            parse_headers(&self.headers)
        };
        if kind.is_some_and(|k| k.is_event && k.is_metadata) {
            doc.mark_final();
        }
        self.route = match kind {
            Some(MessageKind {
                is_event: true,
                is_chunk: true,
                is_metadata: false,
                ..
            }) => Route::Base64Chunk,
            Some(MessageKind { is_event: true, .. }) => Route::Document,
            _ => Route::Skip,
        };
        self.chunk.reset();
        doc.discard_document();
        self.stage = if self.payload_remaining == 0 {
            Stage::MessageCrc
        } else {
            Stage::Payload
        };
    }

    fn payload_bytes(&mut self, rest: &[u8], doc: &mut DocumentReader) -> usize {
        let take = self.payload_remaining.min(rest.len());
        let bytes = rest.get(..take).unwrap_or(&[]);
        self.running_crc = crc32_update(self.running_crc, bytes);
        match self.route {
            Route::Skip => {}
            Route::Document => doc.feed(bytes),
            Route::Base64Chunk => self.chunk.feed(bytes),
        }
        self.payload_remaining -= take;
        if self.payload_remaining == 0 {
            self.stage = Stage::MessageCrc;
        }
        take
    }

    fn crc_bytes(&mut self, rest: &[u8], doc: &mut DocumentReader) -> usize {
        let used = Self::fill(&mut self.message_crc, &mut self.message_crc_len, rest);
        if self.message_crc_len < CRC_BYTES {
            return used;
        }
        let crc_ok = be_u32(&self.message_crc) == Some(!self.running_crc);
        match self.route {
            Route::Document if crc_ok => doc.end_document(),
            Route::Base64Chunk if crc_ok => self.decode_chunk(doc),
            _ => doc.discard_document(),
        }
        self.chunk.reset();
        self.prelude_len = 0;
        self.message_crc_len = 0;
        self.stage = Stage::Prelude;
        used
    }

    fn decode_chunk(&mut self, doc: &mut DocumentReader) {
        doc.discard_document();
        if !self.chunk.is_complete() {
            return;
        }
        if let Some(JsonScalar::String(encoded)) = self.chunk.value(0) {
            if decode_into(encoded.as_bytes(), |piece| doc.feed(piece)).is_ok() {
                doc.end_document();
                return;
            }
        }
        doc.discard_document();
    }
}

/// Encodes one message with string headers (test and fixture generation only).
#[cfg(test)]
pub(crate) fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut header_block = Vec::new();
    for (name, value) in headers {
        header_block.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        header_block.extend_from_slice(name.as_bytes());
        header_block.push(7);
        header_block.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        header_block.extend_from_slice(value.as_bytes());
    }
    encode_raw(&header_block, payload)
}

/// Encodes one message around an already encoded header block.
#[cfg(test)]
pub(crate) fn encode_raw(header_block: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = OVERHEAD_BYTES + header_block.len() + payload.len();
    let mut message = Vec::with_capacity(total);
    message.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    message.extend_from_slice(&u32::try_from(header_block.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32(&message);
    message.extend_from_slice(&prelude_crc.to_be_bytes());
    message.extend_from_slice(header_block);
    message.extend_from_slice(payload);
    let message_crc = crc32(&message);
    message.extend_from_slice(&message_crc.to_be_bytes());
    message
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use crate::usage::{ApiFamily, BodyFormat, UsageReader};

    const EVENT: &[(&str, &str)] = &[
        (":event-type", "metadata"),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ];
    const METADATA: &[u8] =
        br#"{"metrics":{"latencyMs":10},"usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7}}"#;

    fn converse(bytes: &[u8]) -> UsageReader {
        let mut reader = UsageReader::new(ApiFamily::BedrockConverse, BodyFormat::AwsEventStream);
        reader.feed(bytes);
        reader.finish();
        reader
    }

    #[test]
    fn crc32_matches_the_ieee_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn encoder_output_decodes_back() {
        let message = encode_message(EVENT, METADATA);
        // Prelude: total and header lengths, big endian.
        assert_eq!(be_u32(&message), Some(u32::try_from(message.len()).unwrap()));
        let headers_len = usize::try_from(be_u32(&message[4..]).unwrap()).unwrap();
        let kind = parse_headers(&message[12..12 + headers_len]).unwrap();
        assert_eq!(
            kind,
            MessageKind {
                is_event: true,
                is_chunk: false,
                is_metadata: true
            }
        );
        assert_eq!(&message[12 + headers_len..message.len() - 4], METADATA);
        let usage = converse(&message).usage().clone();
        assert_eq!((usage.input_tokens, usage.output_tokens), (Some(3), Some(4)));
    }

    #[test]
    fn every_header_value_type_is_skipped_correctly() {
        let mut block = Vec::new();
        let mut header = |name: &str, value_type: u8, value: &[u8]| {
            block.push(u8::try_from(name.len()).unwrap());
            block.extend_from_slice(name.as_bytes());
            block.push(value_type);
            block.extend_from_slice(value);
        };
        header("t", 0, &[]);
        header("f", 1, &[]);
        header("b", 2, &[7]);
        header("s", 3, &[0, 7]);
        header("i", 4, &[0, 0, 0, 7]);
        header("l", 5, &[0; 8]);
        header("bytes", 6, &[0, 3, b'"', 0xff, b'"']);
        header(":message-type", 7, b"\x00\x05event");
        header("ts", 8, &[1; 8]);
        header("uuid", 9, &[2; 16]);
        header(":event-type", 7, b"\x00\x08metadata");
        let kind = parse_headers(&block).unwrap();
        assert_eq!(
            kind,
            MessageKind {
                is_event: true,
                is_chunk: false,
                is_metadata: true
            }
        );
        let reader = converse(&encode_raw(&block, METADATA));
        assert_eq!(reader.usage().input_tokens, Some(3));
        // Unknown value type or a truncated block: not well formed.
        assert_eq!(parse_headers(b"\x01x\x0a"), None);
        assert_eq!(parse_headers(b"\x01x\x07\x00\x09abc"), None);
        assert_eq!(parse_headers(b"\x05ab"), None);
        assert_eq!(
            parse_headers(b""),
            Some(MessageKind {
                is_event: true,
                is_chunk: false,
                is_metadata: false
            })
        );
    }

    #[test]
    fn exceptions_and_bad_message_crcs_are_skipped_but_the_stream_goes_on() {
        let exception = encode_message(
            &[
                (":exception-type", "throttlingException"),
                (":message-type", "exception"),
            ],
            br#"{"usage":{"inputTokens":999,"outputTokens":999}}"#,
        );
        let mut corrupted = encode_message(EVENT, br#"{"usage":{"inputTokens":555,"outputTokens":555}}"#);
        let payload_byte = corrupted.len() - 10;
        corrupted[payload_byte] ^= 0x01;
        let good = encode_message(EVENT, METADATA);
        let mut stream = Vec::new();
        stream.extend_from_slice(&good);
        stream.extend_from_slice(&exception);
        stream.extend_from_slice(&corrupted);
        let reader = converse(&stream);
        assert_eq!(reader.usage().input_tokens, Some(3));
        assert_eq!(reader.usage().output_tokens, Some(4));
    }

    #[test]
    fn a_bad_prelude_stops_decoding() {
        let mut bad = encode_message(EVENT, METADATA);
        bad[9] ^= 0x80;
        let mut stream = bad;
        stream.extend_from_slice(&encode_message(EVENT, METADATA));
        let mut doc = DocumentReader::new(ApiFamily::BedrockConverse);
        let mut decoder = EventStreamDecoder::new();
        decoder.feed(&stream, &mut doc);
        assert!(decoder.is_broken());
        assert!(!doc.usage().has_token_counts());
    }

    #[test]
    fn impossible_lengths_stop_decoding() {
        for (total, headers) in [(15u32, 0u32), (16, 1), (u32::MAX, 0), (100, 90)] {
            let mut prelude = Vec::new();
            prelude.extend_from_slice(&total.to_be_bytes());
            prelude.extend_from_slice(&headers.to_be_bytes());
            let crc = crc32(&prelude);
            prelude.extend_from_slice(&crc.to_be_bytes());
            let mut doc = DocumentReader::new(ApiFamily::BedrockConverse);
            let mut decoder = EventStreamDecoder::new();
            decoder.feed(&prelude, &mut doc);
            assert!(decoder.is_broken(), "{total} {headers}");
        }
    }

    #[test]
    fn empty_messages_and_oversized_headers_are_tolerated() {
        let long_value = "x".repeat(MAX_HEADERS_BYTES);
        let mut stream = encode_raw(&[], &[]);
        stream.extend_from_slice(&encode_message(&[(":event-type", &long_value)], METADATA));
        stream.extend_from_slice(&encode_message(EVENT, &[]));
        stream.extend_from_slice(&encode_message(EVENT, METADATA));
        let reader = converse(&stream);
        assert_eq!(reader.usage().input_tokens, Some(3));
        assert!(reader.buffered_bytes() < 8 * 1024);
    }

    #[test]
    fn large_payloads_stream_through_without_buffering() {
        let mut payload = br#"{"pad":""#.to_vec();
        payload.resize(payload.len() + (2 << 20), b'a');
        payload.extend_from_slice(br#"","usage":{"inputTokens":8,"outputTokens":9}}"#);
        let stream = encode_message(EVENT, &payload);
        let mut reader = UsageReader::new(ApiFamily::BedrockConverse, BodyFormat::AwsEventStream);
        for chunk in stream.chunks(64 * 1024) {
            reader.feed(chunk);
            assert!(reader.buffered_bytes() < 8 * 1024);
        }
        assert_eq!(reader.usage().output_tokens, Some(9));
    }
}
