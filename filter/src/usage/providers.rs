//! Where each provider API puts token usage in its JSON documents (OpenAI Chat Completions
//! and Responses, Anthropic Messages, Gemini/Vertex `GenerateContentResponse`, Bedrock
//! Converse and InvokeModel, Ollama, Cohere v2), and how those counts combine into a
//! [`Usage`] with OpenTelemetry `gen_ai.usage.*` meanings.

use super::{ApiFamily, Usage};

/// What a field found in a document contributes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Input tokens as the provider counts them (see [`counts_cache_apart`]).
    Input,
    Output,
    CacheRead,
    CacheWrite,
    Reasoning,
    Model,
    Id,
}

/// One JSON path that fills a slot. Within one document, the first listed field of a
/// slot that has a usable value wins; across documents the last document wins.
pub(crate) type Field = (Slot, &'static [&'static str]);

const OPENAI_CHAT: &[Field] = &[
    (Slot::Input, &["usage", "prompt_tokens"]),
    (Slot::Output, &["usage", "completion_tokens"]),
    (Slot::CacheRead, &["usage", "prompt_tokens_details", "cached_tokens"]),
    (
        Slot::Reasoning,
        &["usage", "completion_tokens_details", "reasoning_tokens"],
    ),
    (Slot::Model, &["model"]),
    (Slot::Id, &["id"]),
];

/// JSON bodies carry the response at the top level; stream events nest it in `response`.
const OPENAI_RESPONSES: &[Field] = &[
    (Slot::Input, &["usage", "input_tokens"]),
    (Slot::Input, &["response", "usage", "input_tokens"]),
    (Slot::Output, &["usage", "output_tokens"]),
    (Slot::Output, &["response", "usage", "output_tokens"]),
    (Slot::CacheRead, &["usage", "input_tokens_details", "cached_tokens"]),
    (
        Slot::CacheRead,
        &["response", "usage", "input_tokens_details", "cached_tokens"],
    ),
    (Slot::Reasoning, &["usage", "output_tokens_details", "reasoning_tokens"]),
    (
        Slot::Reasoning,
        &["response", "usage", "output_tokens_details", "reasoning_tokens"],
    ),
    (Slot::Model, &["model"]),
    (Slot::Model, &["response", "model"]),
    (Slot::Id, &["id"]),
    (Slot::Id, &["response", "id"]),
];

/// `message_start` nests the message (its `output_tokens` is a placeholder, not read);
/// `message_delta` and JSON bodies carry `usage` at the top level.
const ANTHROPIC: &[Field] = &[
    (Slot::Input, &["usage", "input_tokens"]),
    (Slot::Input, &["message", "usage", "input_tokens"]),
    (Slot::Output, &["usage", "output_tokens"]),
    (Slot::CacheRead, &["usage", "cache_read_input_tokens"]),
    (Slot::CacheRead, &["message", "usage", "cache_read_input_tokens"]),
    (Slot::CacheWrite, &["usage", "cache_creation_input_tokens"]),
    (Slot::CacheWrite, &["message", "usage", "cache_creation_input_tokens"]),
    (Slot::Model, &["model"]),
    (Slot::Model, &["message", "model"]),
    (Slot::Id, &["id"]),
    (Slot::Id, &["message", "id"]),
];

const GEMINI: &[Field] = &[
    (Slot::Input, &["usageMetadata", "promptTokenCount"]),
    (Slot::Output, &["usageMetadata", "candidatesTokenCount"]),
    (Slot::CacheRead, &["usageMetadata", "cachedContentTokenCount"]),
    (Slot::Reasoning, &["usageMetadata", "thoughtsTokenCount"]),
    (Slot::Model, &["modelVersion"]),
    (Slot::Id, &["responseId"]),
];

/// Converse bodies and the ConverseStream `metadata` event share this shape.
const BEDROCK_CONVERSE: &[Field] = &[
    (Slot::Input, &["usage", "inputTokens"]),
    (Slot::Output, &["usage", "outputTokens"]),
    (Slot::CacheRead, &["usage", "cacheReadInputTokens"]),
    (Slot::CacheWrite, &["usage", "cacheWriteInputTokens"]),
];

const INVOCATION_METRICS: &str = "amazon-bedrock-invocationMetrics";

/// InvokeModel streams end with Bedrock's invocation metrics (preferred) and, for
/// Anthropic models, carry Anthropic events; JSON bodies are read as Anthropic.
const BEDROCK_INVOKE: &[Field] = &[
    (Slot::Input, &[INVOCATION_METRICS, "inputTokenCount"]),
    (Slot::Input, &["usage", "input_tokens"]),
    (Slot::Input, &["message", "usage", "input_tokens"]),
    (Slot::Output, &[INVOCATION_METRICS, "outputTokenCount"]),
    (Slot::Output, &["usage", "output_tokens"]),
    (Slot::CacheRead, &[INVOCATION_METRICS, "cacheReadInputTokenCount"]),
    (Slot::CacheRead, &["usage", "cache_read_input_tokens"]),
    (Slot::CacheRead, &["message", "usage", "cache_read_input_tokens"]),
    (Slot::CacheWrite, &[INVOCATION_METRICS, "cacheWriteInputTokenCount"]),
    (Slot::CacheWrite, &["usage", "cache_creation_input_tokens"]),
    (Slot::CacheWrite, &["message", "usage", "cache_creation_input_tokens"]),
    (Slot::Model, &["model"]),
    (Slot::Model, &["message", "model"]),
    (Slot::Id, &["id"]),
    (Slot::Id, &["message", "id"]),
];

const OLLAMA: &[Field] = &[
    (Slot::Input, &["prompt_eval_count"]),
    (Slot::Output, &["eval_count"]),
    (Slot::Model, &["model"]),
];

/// Cohere v2: JSON bodies have `usage`, the stream's `message-end` has `delta.usage`;
/// processed `tokens` are preferred over `billed_units`; `meta` is the v1/embed shape.
const COHERE: &[Field] = &[
    (Slot::Input, &["usage", "tokens", "input_tokens"]),
    (Slot::Input, &["delta", "usage", "tokens", "input_tokens"]),
    (Slot::Input, &["usage", "billed_units", "input_tokens"]),
    (Slot::Input, &["delta", "usage", "billed_units", "input_tokens"]),
    (Slot::Input, &["meta", "tokens", "input_tokens"]),
    (Slot::Input, &["meta", "billed_units", "input_tokens"]),
    (Slot::Output, &["usage", "tokens", "output_tokens"]),
    (Slot::Output, &["delta", "usage", "tokens", "output_tokens"]),
    (Slot::Output, &["usage", "billed_units", "output_tokens"]),
    (Slot::Output, &["delta", "usage", "billed_units", "output_tokens"]),
    (Slot::Output, &["meta", "tokens", "output_tokens"]),
    (Slot::Output, &["meta", "billed_units", "output_tokens"]),
    (Slot::Id, &["id"]),
];

/// The fields read from every document of this family.
pub(crate) fn fields(family: ApiFamily) -> &'static [Field] {
    match family {
        ApiFamily::OpenAiChat => OPENAI_CHAT,
        ApiFamily::OpenAiResponses => OPENAI_RESPONSES,
        ApiFamily::Anthropic => ANTHROPIC,
        ApiFamily::Gemini => GEMINI,
        ApiFamily::BedrockConverse => BEDROCK_CONVERSE,
        ApiFamily::BedrockInvoke => BEDROCK_INVOKE,
        ApiFamily::Ollama => OLLAMA,
        ApiFamily::Cohere => COHERE,
    }
}

/// Where a family's answers name the tools the model asks for: (name path, id path), each pair
/// read from the same document. Streams name each call once, in its first fragment.
pub(crate) type ToolPaths = (&'static [&'static str], &'static [&'static str]);

pub(crate) fn tool_paths(family: ApiFamily) -> &'static [ToolPaths] {
    match family {
        ApiFamily::OpenAiChat => &[
            (
                &["choices", "[]", "message", "tool_calls", "[]", "function", "name"],
                &["choices", "[]", "message", "tool_calls", "[]", "id"],
            ),
            (
                &["choices", "[]", "delta", "tool_calls", "[]", "function", "name"],
                &["choices", "[]", "delta", "tool_calls", "[]", "id"],
            ),
        ],
        ApiFamily::OpenAiResponses => &[
            (&["output", "[]", "name"], &["output", "[]", "call_id"]),
            (&["item", "name"], &["item", "call_id"]),
            (
                &["response", "output", "[]", "name"],
                &["response", "output", "[]", "call_id"],
            ),
        ],
        ApiFamily::Anthropic | ApiFamily::BedrockInvoke => &[
            (&["content", "[]", "name"], &["content", "[]", "id"]),
            (&["content_block", "name"], &["content_block", "id"]),
        ],
        ApiFamily::Gemini => &[(
            &["candidates", "[]", "content", "parts", "[]", "functionCall", "name"],
            &["candidates", "[]", "content", "parts", "[]", "functionCall", "id"],
        )],
        ApiFamily::BedrockConverse => &[
            (
                &["output", "message", "content", "[]", "toolUse", "name"],
                &["output", "message", "content", "[]", "toolUse", "toolUseId"],
            ),
            (&["start", "toolUse", "name"], &["start", "toolUse", "toolUseId"]),
        ],
        ApiFamily::Ollama => &[(
            &["message", "tool_calls", "[]", "function", "name"],
            &["message", "tool_calls", "[]", "id"],
        )],
        ApiFamily::Cohere => &[
            (
                &["message", "tool_calls", "[]", "function", "name"],
                &["message", "tool_calls", "[]", "id"],
            ),
            (
                &["delta", "message", "tool_calls", "function", "name"],
                &["delta", "message", "tool_calls", "id"],
            ),
        ],
    }
}

/// What in a document says the response is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Final {
    /// The field is one of these strings.
    OneOf(&'static [&'static str]),
    /// The field is `true`.
    True,
    /// The field holds a non-empty string.
    Present,
}

/// The protocol's final event, per family, as a field of a stream's documents. OpenAI chat and
/// completion streams end with `data: [DONE]` instead (`DocumentReader`), and Bedrock
/// ConverseStream with its `metadata` event (`EventStreamDecoder`).
pub(crate) fn final_signals(family: ApiFamily) -> &'static [(&'static [&'static str], Final)] {
    const RESPONSES_END: &[&str] = &["response.completed", "response.incomplete", "response.failed"];
    match family {
        ApiFamily::OpenAiChat | ApiFamily::BedrockConverse => &[],
        ApiFamily::OpenAiResponses => &[(&["type"], Final::OneOf(RESPONSES_END))],
        ApiFamily::Anthropic => &[(&["type"], Final::OneOf(&["message_stop"]))],
        ApiFamily::Gemini => &[(&["candidates", "[]", "finishReason"], Final::Present)],
        ApiFamily::BedrockInvoke => &[
            (&["type"], Final::OneOf(&["message_stop"])),
            (&[INVOCATION_METRICS, "outputTokenCount"], Final::Present),
        ],
        ApiFamily::Ollama => &[(&["done"], Final::True)],
        ApiFamily::Cohere => &[(&["type"], Final::OneOf(&["message-end"]))],
    }
}

/// Whether the family reports cache reads and writes apart from (not included in) its
/// input count, so they must be added to get all input tokens.
pub(crate) fn counts_cache_apart(family: ApiFamily) -> bool {
    matches!(
        family,
        ApiFamily::Anthropic | ApiFamily::BedrockConverse | ApiFamily::BedrockInvoke
    )
}

/// Parses a token count from raw JSON number text: non-negative integers, also written
/// with a zero fraction or an exponent (`12.0`, `1.2e3`); anything else is `None`.
pub(crate) fn parse_count(raw: &str) -> Option<u64> {
    // 2^53: every integer up to here is exact in an f64.
    const MAX_EXACT: f64 = 9_007_199_254_740_992.0;
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw.parse().ok();
    }
    if raw.starts_with('-') {
        return None;
    }
    let value: f64 = raw.parse().ok()?;
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_EXACT {
        // Exact: an integral, non-negative f64 no larger than 2^53.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(value as u64)
    } else {
        None
    }
}

/// The latest value of every slot, across the documents of one response.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) input: Option<u64>,
    pub(crate) output: Option<u64>,
    pub(crate) cache_read: Option<u64>,
    pub(crate) cache_write: Option<u64>,
    pub(crate) reasoning: Option<u64>,
    pub(crate) model: Option<String>,
    pub(crate) id: Option<String>,
}

impl Tally {
    /// Sets a count; true when that changed the tally.
    pub(crate) fn set_count(&mut self, slot: Slot, count: u64) -> bool {
        let target = match slot {
            Slot::Input => &mut self.input,
            Slot::Output => &mut self.output,
            Slot::CacheRead => &mut self.cache_read,
            Slot::CacheWrite => &mut self.cache_write,
            Slot::Reasoning => &mut self.reasoning,
            Slot::Model | Slot::Id => return false,
        };
        let changed = *target != Some(count);
        *target = Some(count);
        changed
    }

    /// Sets the model or the response id; true when that changed the tally. A stream repeats
    /// both in every event: the same text is not copied again.
    pub(crate) fn set_text(&mut self, slot: Slot, text: &str) -> bool {
        let target = match slot {
            Slot::Model => &mut self.model,
            Slot::Id => &mut self.id,
            _ => return false,
        };
        if target.as_deref() == Some(text) {
            return false;
        }
        *target = Some(text.to_string());
        true
    }

    /// The usage in OpenTelemetry terms: input includes cache reads and writes.
    pub(crate) fn usage(&self, family: ApiFamily) -> Usage {
        let input_tokens = if counts_cache_apart(family) {
            self.input.map(|input| {
                input
                    .saturating_add(self.cache_read.unwrap_or(0))
                    .saturating_add(self.cache_write.unwrap_or(0))
            })
        } else {
            self.input
        };
        // Gemini counts thinking tokens apart from the candidates, and bills them as output; every
        // other family's output count already includes its reasoning tokens.
        let output_tokens = if family == ApiFamily::Gemini {
            self.output.map(|o| o.saturating_add(self.reasoning.unwrap_or(0)))
        } else {
            self.output
        };
        Usage {
            input_tokens,
            output_tokens,
            cached_input_tokens: self.cache_read,
            reasoning_tokens: self.reasoning,
            response_model: self.model.clone(),
            response_id: self.id.clone(),
            tool_calls: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_like_json_integers() {
        assert_eq!(parse_count("0"), Some(0));
        assert_eq!(parse_count("1234"), Some(1234));
        assert_eq!(parse_count("12.0"), Some(12));
        assert_eq!(parse_count("1.2e3"), Some(1200));
        assert_eq!(parse_count("1E2"), Some(100));
        assert_eq!(parse_count("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_count("18446744073709551616"), None);
        assert_eq!(parse_count("12.5"), None);
        assert_eq!(parse_count("-3"), None);
        assert_eq!(parse_count("-0"), None);
        assert_eq!(parse_count("1e400"), None);
        assert_eq!(parse_count(""), None);
    }

    #[test]
    fn cache_is_added_only_where_reported_apart() {
        let tally = Tally {
            input: Some(10),
            cache_read: Some(100),
            cache_write: Some(5),
            ..Tally::default()
        };
        let apart = tally.usage(ApiFamily::Anthropic);
        assert_eq!(apart.input_tokens, Some(115));
        assert_eq!(apart.cached_input_tokens, Some(100));
        let included = tally.usage(ApiFamily::OpenAiChat);
        assert_eq!(included.input_tokens, Some(10));
        assert_eq!(included.cached_input_tokens, Some(100));
        let no_input = Tally {
            cache_read: Some(3),
            ..Tally::default()
        };
        assert_eq!(no_input.usage(ApiFamily::BedrockConverse).input_tokens, None);
    }

    #[test]
    fn every_family_has_at_most_the_scanner_path_limit() {
        for family in ApiFamily::ALL {
            let paths = fields(family).len() + final_signals(family).len() + 2 * tool_paths(family).len();
            assert!(paths <= crate::json_scan::MAX_PATHS);
        }
    }
}
