//! The response side of a model call: usage read while the body streams past (decoded first if
//! the upstream compressed it), how complete it is (`usage_status`, `usage_reason`,
//! `response_end`), and its price.

use crate::config::Price;
use crate::host::{header_text, Headers};
use crate::provider::ApiFamily;
use crate::record::{Tokens, UsageStatus};
use crate::usage::{BodyFormat, Coding, Decoder, Usage, UsageReader};

/// Bedrock InvokeModel reports usage in response headers.
pub const BEDROCK_INPUT_HEADER: &str = "x-amzn-bedrock-input-token-count";
pub const BEDROCK_OUTPUT_HEADER: &str = "x-amzn-bedrock-output-token-count";
pub const BEDROCK_CACHE_READ_HEADER: &str = "x-amzn-bedrock-cache-read-input-token-count";
pub const BEDROCK_CACHE_WRITE_HEADER: &str = "x-amzn-bedrock-cache-write-input-token-count";

/// How the answer ended, as the record says it (`response_end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseEnd {
    /// A stream's protocol said it was done (`[DONE]`, `message_stop`, ...).
    FinalEvent,
    /// The body ended without a final event (as every JSON answer does).
    EndOfStream,
    /// Neither: the client or the upstream went away first.
    CutShort,
}

impl ResponseEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseEnd::FinalEvent => "final_event",
            ResponseEnd::EndOfStream => "end_of_stream",
            ResponseEnd::CutShort => "cut_short",
        }
    }
}

/// Usage tracking for one response.
#[derive(Debug)]
pub struct ResponseUsage {
    reader: Option<UsageReader>,
    decoder: Decoder,
    from_headers: Usage,
    format: Option<BodyFormat>,
    content_type: Option<String>,
    ended: bool,
}

fn count(v: Option<&str>) -> Option<u64> {
    v.and_then(|v| v.trim().parse().ok())
}

impl ResponseUsage {
    /// Starts tracking from the response headers. `end_of_stream` is true for a response without body.
    pub fn start(family: ApiFamily, headers: &Headers, end_of_stream: bool) -> ResponseUsage {
        let content_type = header_text(headers, "content-type");
        let format = content_type.and_then(BodyFormat::from_content_type);
        let from_headers = if family == ApiFamily::BedrockInvoke {
            let input = count(header_text(headers, BEDROCK_INPUT_HEADER));
            let cache_read = count(header_text(headers, BEDROCK_CACHE_READ_HEADER));
            let cache_write = count(header_text(headers, BEDROCK_CACHE_WRITE_HEADER));
            Usage {
                // All input, as everywhere: cache reads and writes are counted apart in these headers.
                input_tokens: input.map(|i| {
                    i.saturating_add(cache_read.unwrap_or(0))
                        .saturating_add(cache_write.unwrap_or(0))
                }),
                output_tokens: count(header_text(headers, BEDROCK_OUTPUT_HEADER)),
                cached_input_tokens: cache_read.filter(|_| input.is_some()),
                ..Usage::default()
            }
        } else {
            Usage::default()
        };
        ResponseUsage {
            reader: format.map(|f| UsageReader::new(family, f)),
            decoder: Decoder::new(Coding::from_header(header_text(headers, "content-encoding"))),
            from_headers,
            format,
            content_type: content_type.map(str::to_string),
            ended: end_of_stream,
        }
    }

    /// Whether body bytes are worth reading (a format with usage, in a coding that can be undone).
    pub fn wants_body(&self) -> bool {
        self.reader.is_some() && !matches!(self.decoder.coding(), Coding::Unreadable(_)) && !self.decoder.failed()
    }

    /// Feeds one body chunk as it passes.
    pub fn feed(&mut self, chunk: &[u8], end_of_stream: bool) {
        if let Some(reader) = self.reader.as_mut() {
            if !chunk.is_empty() {
                self.decoder.feed(chunk, &mut |decoded| reader.feed(decoded));
            }
            if end_of_stream {
                reader.finish();
            }
        }
        if end_of_stream {
            self.ended = true;
        }
    }

    /// Whether the response streams (SSE, NDJSON or an AWS event stream), when its format is known.
    pub fn stream(&self) -> Option<bool> {
        self.format
            .map(|f| matches!(f, BodyFormat::Sse | BodyFormat::Ndjson | BodyFormat::AwsEventStream))
    }

    /// The usage read so far: body counts win over header counts, field by field.
    pub fn usage(&self) -> Usage {
        let body = self.reader.as_ref().map(|r| r.usage().clone()).unwrap_or_default();
        Usage {
            input_tokens: body.input_tokens.or(self.from_headers.input_tokens),
            output_tokens: body.output_tokens.or(self.from_headers.output_tokens),
            cached_input_tokens: body.cached_input_tokens.or(self.from_headers.cached_input_tokens),
            ..body
        }
    }

    fn final_seen(&self) -> bool {
        self.stream() == Some(true) && self.reader.as_ref().is_some_and(UsageReader::final_seen)
    }

    /// How the answer ended.
    pub fn end(&self) -> ResponseEnd {
        if self.final_seen() {
            ResponseEnd::FinalEvent
        } else if self.ended {
            ResponseEnd::EndOfStream
        } else {
            ResponseEnd::CutShort
        }
    }

    /// Whether the answer is all there: a stream's final event, or a JSON body read whole or ended.
    fn complete(&self) -> bool {
        match self.stream() {
            Some(true) => self.final_seen(),
            _ => self.ended || self.reader.as_ref().is_some_and(UsageReader::document_complete),
        }
    }

    /// `reported`, `missing` (complete, or unreadable, without usage) or `partial` (cut short).
    pub fn status(&self) -> UsageStatus {
        if self.unreadable().is_some() {
            return UsageStatus::Missing;
        }
        if !self.complete() {
            UsageStatus::Partial
        } else if self.usage().has_token_counts() {
            UsageStatus::Reported
        } else {
            UsageStatus::Missing
        }
    }

    /// Why the body could not be read at all.
    fn unreadable(&self) -> Option<String> {
        match self.decoder.coding() {
            Coding::Unreadable(coding) => Some(format!("content-encoding {coding} is not read")),
            coding if self.decoder.failed() => Some(format!(
                "the {} answer could not be decoded",
                if *coding == Coding::Gzip { "gzip" } else { "deflate" }
            )),
            _ => None,
        }
    }

    /// Why usage is not `reported`; `None` when it is.
    pub fn reason(&self) -> Option<String> {
        if let Some(why) = self.unreadable() {
            return Some(why);
        }
        match self.status() {
            UsageStatus::Reported | UsageStatus::NotApplicable => None,
            UsageStatus::Partial if self.ended => Some("the stream ended before its final event".to_string()),
            UsageStatus::Partial => Some("the answer was cut short".to_string()),
            UsageStatus::Missing if self.reader.is_none() => Some(match &self.content_type {
                Some(ct) => format!("no usage is read from content-type {ct}"),
                None => "the answer has no content-type".to_string(),
            }),
            UsageStatus::Missing => Some("the answer carries no usage".to_string()),
        }
    }
}

/// Converts usage into the record's token counts.
pub fn tokens(usage: &Usage) -> Tokens {
    Tokens {
        input: usage.input_tokens,
        output: usage.output_tokens,
        cached_input: usage.cached_input_tokens,
        reasoning: usage.reasoning_tokens,
    }
}

/// Cost in USD: (input − cached) × input + cached × cached_input (input price if unset)
/// + output × output, prices per million tokens. None when no token count is known.
pub fn cost_usd(price: Price, tokens: &Tokens) -> Option<f64> {
    if tokens.input.is_none() && tokens.output.is_none() {
        return None;
    }
    let input = tokens.input.unwrap_or(0) as f64;
    let cached = (tokens.cached_input.unwrap_or(0) as f64).min(input);
    let output = tokens.output.unwrap_or(0) as f64;
    let cached_price = price.cached_input.unwrap_or(price.input);
    Some(((input - cached) * price.input + cached * cached_price + output * price.output) / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_follows_the_formula() {
        let p = Price {
            input: 2.5,
            output: 10.0,
            cached_input: Some(1.25),
        };
        let t = Tokens {
            input: Some(27),
            output: Some(12),
            cached_input: Some(10),
            reasoning: Some(4),
        };
        let c = cost_usd(p, &t).unwrap();
        assert!((c - (17.0 * 2.5 + 10.0 * 1.25 + 12.0 * 10.0) / 1e6).abs() < 1e-15);
        let p = Price {
            input: 2.0,
            output: 4.0,
            cached_input: None,
        };
        let c = cost_usd(
            p,
            &Tokens {
                input: Some(1000),
                output: None,
                cached_input: Some(500),
                reasoning: None,
            },
        )
        .unwrap();
        assert!((c - 0.002).abs() < 1e-12);
        assert_eq!(cost_usd(p, &Tokens::default()), None);
    }

    fn headers<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
        pairs.iter().map(|(k, v)| (*k, v.as_bytes())).collect()
    }

    fn start(family: ApiFamily, pairs: &[(&str, &str)], eos: bool) -> ResponseUsage {
        ResponseUsage::start(family, &headers(pairs), eos)
    }

    #[test]
    fn a_json_answer_is_complete_when_read_whole_or_ended() {
        let json = [("content-type", "application/json")];
        let mut r = start(ApiFamily::OpenAiChat, &json, false);
        r.feed(br#"{"id":"x","usage":{"prompt_tokens":3,"#, false);
        assert_eq!(r.status(), UsageStatus::Partial);
        assert_eq!(r.reason().as_deref(), Some("the answer was cut short"));
        assert_eq!(r.end(), ResponseEnd::CutShort);
        r.feed(br#""completion_tokens":4}}"#, false);
        assert_eq!(r.status(), UsageStatus::Reported, "read whole before the stream ends");
        r.feed(b"", true);
        assert_eq!(
            (r.status(), r.end(), r.reason()),
            (UsageStatus::Reported, ResponseEnd::EndOfStream, None)
        );
        let mut r = start(ApiFamily::OpenAiChat, &[("content-type", "text/plain")], false);
        r.feed(b"hello", true);
        assert_eq!(r.status(), UsageStatus::Missing);
        assert_eq!(
            r.reason().as_deref(),
            Some("no usage is read from content-type text/plain")
        );
    }

    #[test]
    fn a_stream_is_complete_at_its_final_event() {
        let sse = [("content-type", "text/event-stream")];
        let body = b"data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";
        let mut r = start(ApiFamily::OpenAiChat, &sse, false);
        r.feed(body, false);
        assert_eq!((r.status(), r.end()), (UsageStatus::Reported, ResponseEnd::FinalEvent));
        // The same events without [DONE], ended by the upstream: partial, and it says why.
        let mut r = start(ApiFamily::OpenAiChat, &sse, false);
        r.feed(&body[..body.len() - 16], true);
        assert_eq!((r.status(), r.end()), (UsageStatus::Partial, ResponseEnd::EndOfStream));
        assert_eq!(r.reason().as_deref(), Some("the stream ended before its final event"));
    }

    #[test]
    fn compressed_answers_are_read_and_unreadable_codings_say_so() {
        let text = br#"{"usage":{"prompt_tokens":3,"completion_tokens":4}}"#;
        let coded = miniz_oxide::deflate::compress_to_vec_zlib(text, 6);
        let mut r = start(
            ApiFamily::OpenAiChat,
            &[("content-type", "application/json"), ("content-encoding", "deflate")],
            false,
        );
        for piece in coded.chunks(3) {
            r.feed(piece, false);
        }
        r.feed(b"", true);
        assert_eq!(r.status(), UsageStatus::Reported);
        assert_eq!(r.usage().output_tokens, Some(4));
        let mut r = start(
            ApiFamily::OpenAiChat,
            &[("content-type", "application/json"), ("content-encoding", "br")],
            false,
        );
        assert!(!r.wants_body());
        r.feed(b"\x1b\x00", true);
        assert_eq!(r.status(), UsageStatus::Missing);
        assert_eq!(r.reason().as_deref(), Some("content-encoding br is not read"));
    }

    #[test]
    fn bedrock_header_counts_are_used() {
        let r = start(
            ApiFamily::BedrockInvoke,
            &[
                (BEDROCK_INPUT_HEADER, "23"),
                (BEDROCK_OUTPUT_HEADER, " 16"),
                (BEDROCK_CACHE_READ_HEADER, "3"),
                (BEDROCK_CACHE_WRITE_HEADER, "2"),
            ],
            true,
        );
        assert_eq!(r.usage().input_tokens, Some(28));
        assert_eq!(r.usage().cached_input_tokens, Some(3));
        assert_eq!(r.usage().output_tokens, Some(16));
        assert_eq!(r.status(), UsageStatus::Reported);
    }
}
