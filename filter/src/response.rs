//! The response side of a model call: usage read while the body streams past, its status
//! (SPEC §5 `usage_status`) and its price (SPEC §6).

use crate::config::Price;
use crate::provider::ApiFamily;
use crate::record::{Tokens, UsageStatus};
use crate::usage::{BodyFormat, Usage, UsageReader};

/// Bedrock InvokeModel reports usage in response headers.
pub const BEDROCK_INPUT_HEADER: &str = "x-amzn-bedrock-input-token-count";
pub const BEDROCK_OUTPUT_HEADER: &str = "x-amzn-bedrock-output-token-count";

/// Usage tracking for one response.
#[derive(Debug)]
pub struct ResponseUsage {
    reader: Option<UsageReader>,
    from_headers: Usage,
    format: Option<BodyFormat>,
    ended: bool,
}

fn count(v: Option<&str>) -> Option<u64> {
    v.and_then(|v| v.trim().parse().ok())
}

impl ResponseUsage {
    /// Starts tracking from the response headers. `end_of_stream` is true for a response without body.
    pub fn start(
        family: ApiFamily,
        content_type: Option<&str>,
        bedrock_counts: (Option<&str>, Option<&str>),
        end_of_stream: bool,
    ) -> ResponseUsage {
        let format = content_type.and_then(BodyFormat::from_content_type);
        let from_headers = Usage {
            input_tokens: count(bedrock_counts.0),
            output_tokens: count(bedrock_counts.1),
            ..Usage::default()
        };
        ResponseUsage {
            reader: format.map(|f| UsageReader::new(family, f)),
            from_headers,
            format,
            ended: end_of_stream,
        }
    }

    /// Feeds one body chunk as it passes.
    pub fn feed(&mut self, chunk: &[u8], end_of_stream: bool) {
        if let Some(reader) = self.reader.as_mut() {
            if !chunk.is_empty() {
                reader.feed(chunk);
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
            ..body
        }
    }

    /// `partial` when the body never ended (upstream reset, client gone), else `reported` or `missing`.
    pub fn status(&self) -> UsageStatus {
        if !self.ended {
            UsageStatus::Partial
        } else if self.usage().has_token_counts() {
            UsageStatus::Reported
        } else {
            UsageStatus::Missing
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

    #[test]
    fn status_reflects_how_the_body_ended() {
        let mut r = ResponseUsage::start(ApiFamily::OpenAiChat, Some("application/json"), (None, None), false);
        r.feed(
            br#"{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
            false,
        );
        assert_eq!(r.status(), UsageStatus::Partial);
        assert_eq!(r.usage().input_tokens, Some(3));
        r.feed(b"", true);
        assert_eq!(r.status(), UsageStatus::Reported);
        let mut r = ResponseUsage::start(ApiFamily::OpenAiChat, Some("text/plain"), (None, None), false);
        r.feed(b"hello", true);
        assert_eq!(r.status(), UsageStatus::Missing);
    }

    #[test]
    fn bedrock_header_counts_are_used() {
        let r = ResponseUsage::start(ApiFamily::BedrockInvoke, None, (Some("23"), Some(" 16")), true);
        assert_eq!(r.usage().input_tokens, Some(23));
        assert_eq!(r.usage().output_tokens, Some(16));
        assert_eq!(r.status(), UsageStatus::Reported);
    }
}
