//! Tests of the usage readers against the provider fixtures in `tests/fixtures/usage`
//! (raw response bodies as each provider's API documents them; `expected.json` lists the
//! usage each one must yield), fed whole, split at every byte and one byte at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::eventstream::encode_message;
use super::*;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/usage");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn family(name: &str) -> ApiFamily {
    match name {
        "OpenAiChat" => ApiFamily::OpenAiChat,
        "OpenAiResponses" => ApiFamily::OpenAiResponses,
        "Anthropic" => ApiFamily::Anthropic,
        "Gemini" => ApiFamily::Gemini,
        "BedrockConverse" => ApiFamily::BedrockConverse,
        "BedrockInvoke" => ApiFamily::BedrockInvoke,
        "Ollama" => ApiFamily::Ollama,
        "Cohere" => ApiFamily::Cohere,
        other => panic!("unknown family {other}"),
    }
}

fn format(name: &str) -> BodyFormat {
    match name {
        "Json" => BodyFormat::Json,
        "Sse" => BodyFormat::Sse,
        "Ndjson" => BodyFormat::Ndjson,
        "AwsEventStream" => BodyFormat::AwsEventStream,
        other => panic!("unknown format {other}"),
    }
}

fn read_whole(family: ApiFamily, format: BodyFormat, body: &[u8]) -> UsageReader {
    let mut reader = UsageReader::new(family, format);
    reader.feed(body);
    reader.finish();
    reader
}

/// Reads `body` whole, split at every byte and one byte at a time; all must agree.
fn read_every_way(family: ApiFamily, format: BodyFormat, body: &[u8]) -> Usage {
    let whole = read_whole(family, format, body).usage().clone();
    for split in 0..=body.len() {
        let mut reader = UsageReader::new(family, format);
        reader.feed(&body[..split]);
        reader.feed(&body[split..]);
        reader.finish();
        assert_eq!(reader.usage(), &whole, "split at {split}");
    }
    let mut reader = UsageReader::new(family, format);
    for b in body {
        reader.feed(std::slice::from_ref(b));
    }
    reader.finish();
    assert_eq!(reader.usage(), &whole, "byte at a time");
    whole
}

fn expected_usage(entry: &Value) -> Usage {
    let count = |key: &str| entry[key].as_u64();
    let text = |key: &str| entry[key].as_str().map(str::to_string);
    Usage {
        input_tokens: count("input_tokens"),
        output_tokens: count("output_tokens"),
        cached_input_tokens: count("cached_input_tokens"),
        reasoning_tokens: count("reasoning_tokens"),
        response_model: text("response_model"),
        response_id: text("response_id"),
        tool_calls: entry["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| ToolCall {
                name: t["name"].as_str().unwrap_or_default().to_string(),
                id: t["id"].as_str().map(str::to_string),
            })
            .collect(),
    }
}

#[test]
fn every_fixture_yields_its_expected_usage_at_every_split_point() {
    let expected: Value = serde_json::from_slice(&fixture("expected.json")).unwrap();
    let expected = expected.as_object().unwrap();
    let mut on_disk: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "expected.json")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = expected.keys().cloned().collect();
    listed.sort();
    assert_eq!(listed, on_disk, "expected.json lists exactly the fixture files");
    for (name, entry) in expected {
        let (family, format) = (
            family(entry["family"].as_str().unwrap()),
            format(entry["format"].as_str().unwrap()),
        );
        let usage = read_every_way(family, format, &fixture(name));
        assert_eq!(usage, expected_usage(entry), "{name}");
        let reader = read_whole(family, format, &fixture(name));
        assert_eq!(reader.reported(), usage.has_token_counts(), "{name}");
        if format != BodyFormat::Json {
            // Every stream fixture is a whole stream: its protocol's final event is seen, at every
            // split, and not before the last event.
            for split in 0..=fixture(name).len() {
                let body = fixture(name);
                let mut reader = UsageReader::new(family, format);
                reader.feed(&body[..split]);
                reader.feed(&body[split..]);
                assert!(reader.final_seen(), "{name}: final event, split at {split}");
            }
            let body = fixture(name);
            let cut = &body[..body.len() * 3 / 4];
            let mut reader = UsageReader::new(family, format);
            reader.feed(cut);
            assert!(!reader.final_seen(), "{name}: cut at three quarters");
        }
    }
}

#[test]
fn anthropic_json_read_through_bedrock_invoke() {
    let body = fixture("anthropic.json");
    assert_eq!(
        read_whole(ApiFamily::BedrockInvoke, BodyFormat::Json, &body).usage(),
        read_whole(ApiFamily::Anthropic, BodyFormat::Json, &body).usage()
    );
}

#[test]
fn crlf_and_cr_line_endings_read_the_same() {
    let lf = fixture("anthropic.sse");
    let expected = read_whole(ApiFamily::Anthropic, BodyFormat::Sse, &lf).usage().clone();
    assert!(expected.output_tokens.is_some());
    let text = String::from_utf8(lf).unwrap();
    for ending in ["\r\n", "\r"] {
        let body = text.replace('\n', ending);
        assert_eq!(
            read_every_way(ApiFamily::Anthropic, BodyFormat::Sse, body.as_bytes()),
            expected
        );
    }
}

#[test]
fn several_events_in_one_chunk_and_events_across_chunks() {
    let body = fixture("openai_chat.sse");
    let expected = read_whole(ApiFamily::OpenAiChat, BodyFormat::Sse, &body)
        .usage()
        .clone();
    for size in [1, 2, 3, 5, 64, 200, 1000] {
        let mut reader = UsageReader::new(ApiFamily::OpenAiChat, BodyFormat::Sse);
        for chunk in body.chunks(size) {
            reader.feed(chunk);
        }
        reader.finish();
        assert_eq!(reader.usage(), &expected, "chunks of {size}");
    }
}

#[test]
fn event_split_inside_a_multibyte_character() {
    let body = fixture("openai_chat.sse");
    let emoji = "😊".as_bytes();
    let at = body.windows(emoji.len()).position(|w| w == emoji).unwrap();
    for split in at + 1..at + emoji.len() {
        let mut reader = UsageReader::new(ApiFamily::OpenAiChat, BodyFormat::Sse);
        reader.feed(&body[..split]);
        reader.feed(&body[split..]);
        assert_eq!(reader.usage().input_tokens, Some(1422));
        assert_eq!(reader.usage().response_model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    }
}

#[test]
fn a_one_megabyte_sse_event_uses_constant_memory() {
    let mut reader = UsageReader::new(ApiFamily::OpenAiChat, BodyFormat::Sse);
    reader.feed(br#"data: {"id":"chatcmpl-1","model":"gpt-4o","choices":[{"delta":{"content":""#);
    let filler = "0123456789abcdef\\n\\u00e9😀".repeat(64);
    let mut fed = 0;
    while fed < 1 << 20 {
        reader.feed(filler.as_bytes());
        fed += filler.len();
        assert!(reader.buffered_bytes() < 4096, "{}", reader.buffered_bytes());
    }
    reader.feed(b"\"}}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":262144}}\n\n");
    assert_eq!(reader.usage().output_tokens, Some(262_144));
    assert!(reader.buffered_bytes() < 4096);
}

fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

const ALL_FAMILIES: [ApiFamily; 8] = ApiFamily::ALL;

#[test]
fn binary_garbage_yields_no_usage() {
    let noise = garbage(256 * 1024, 0x9E37_79B9_7F4A_7C15);
    for family in ALL_FAMILIES {
        for format in [
            BodyFormat::Json,
            BodyFormat::Sse,
            BodyFormat::Ndjson,
            BodyFormat::AwsEventStream,
        ] {
            for chunk_size in [1, 7, 65536] {
                let mut reader = UsageReader::new(family, format);
                for chunk in noise.chunks(chunk_size) {
                    reader.feed(chunk);
                }
                reader.finish();
                assert!(!reader.reported(), "{family:?} {format:?}");
                assert_eq!(reader.usage(), &Usage::default());
                assert!(reader.buffered_bytes() < 8 * 1024);
            }
        }
    }
}

#[test]
fn fixtures_read_in_the_wrong_format_yield_nothing_and_never_panic() {
    for name in [
        "openai_chat.sse",
        "anthropic.json",
        "bedrock_converse_stream.bin",
        "ollama_chat.ndjson",
    ] {
        let body = fixture(name);
        for family in ALL_FAMILIES {
            for format in [
                BodyFormat::Sse,
                BodyFormat::Ndjson,
                BodyFormat::AwsEventStream,
                BodyFormat::Json,
            ] {
                let _ = read_whole(family, format, &body);
            }
        }
    }
    let reader = read_whole(
        ApiFamily::BedrockConverse,
        BodyFormat::Sse,
        &fixture("bedrock_converse_stream.bin"),
    );
    assert!(!reader.reported());
}

#[test]
fn a_stream_cut_short_keeps_what_was_seen() {
    let body = fixture("anthropic.sse");
    let cut = body.windows(20).position(|w| w == b"event: message_delta").unwrap();
    let reader = read_whole(ApiFamily::Anthropic, BodyFormat::Sse, &body[..cut]);
    let usage = reader.usage();
    assert_eq!(usage.input_tokens, Some(472 + 2048));
    assert_eq!(usage.cached_input_tokens, Some(2048));
    assert_eq!(usage.output_tokens, None);
    assert_eq!(usage.response_model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert!(reader.reported());
    // Cut anywhere: never a panic, and counts only ever come from whole events.
    for cut in 0..=body.len() {
        let usage = read_whole(ApiFamily::Anthropic, BodyFormat::Sse, &body[..cut])
            .usage()
            .clone();
        assert!(usage.input_tokens.is_none() || usage.input_tokens == Some(2520));
        assert!(usage.output_tokens.is_none() || usage.output_tokens == Some(89));
    }
}

#[test]
fn a_json_body_cut_short_keeps_the_fields_seen() {
    let body = fixture("openai_chat.json");
    let cut = body.windows(18).position(|w| w == b"\"total_tokens\": 23").unwrap();
    let mut reader = UsageReader::new(ApiFamily::OpenAiChat, BodyFormat::Json);
    reader.feed(&body[..cut]);
    assert!(!reader.reported(), "nothing is read before the body ends");
    reader.finish();
    assert_eq!(reader.usage().input_tokens, Some(1843));
    assert_eq!(reader.usage().output_tokens, Some(512));
    assert_eq!(reader.usage().cached_input_tokens, None);
}

#[test]
fn anthropic_message_delta_may_carry_input_and_cache_counts() {
    let body = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_1","model":"claude-opus-4-1","usage":{"input_tokens":10,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
        "\n\nevent: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":20}}"#,
        "\n\nevent: message_delta\n",
        r#"data: {"type":"message_delta","delta":{},"usage":{"input_tokens":12,"cache_creation_input_tokens":30,"cache_read_input_tokens":null,"output_tokens":25}}"#,
        "\n\n"
    );
    let usage = read_every_way(ApiFamily::Anthropic, BodyFormat::Sse, body.as_bytes());
    assert_eq!(usage.input_tokens, Some(12 + 30));
    assert_eq!(usage.cached_input_tokens, Some(0));
    assert_eq!(usage.output_tokens, Some(25));
    assert_eq!(usage.response_id.as_deref(), Some("msg_1"));
}

#[test]
fn empty_model_and_id_are_ignored() {
    // Azure OpenAI starts streams with a prompt-filter chunk whose model and id are empty.
    let body = concat!(
        r#"data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}"#,
        "\n\n",
        r#"data: {"choices":[],"id":"chatcmpl-9","model":"gpt-4o-2024-11-20","usage":{"prompt_tokens":5,"completion_tokens":6}}"#,
        "\n\n",
        r#"data: {"choices":[],"id":"","model":""}"#,
        "\n\ndata: [DONE]\n\n"
    );
    let usage = read_every_way(ApiFamily::OpenAiChat, BodyFormat::Sse, body.as_bytes());
    assert_eq!(usage.response_model.as_deref(), Some("gpt-4o-2024-11-20"));
    assert_eq!(usage.response_id.as_deref(), Some("chatcmpl-9"));
}

#[test]
fn counts_written_as_floats_or_invalid_numbers() {
    let body = br#"{"usage":{"prompt_tokens":12.0,"completion_tokens":-3,"prompt_tokens_details":{"cached_tokens":1.5},"completion_tokens_details":{"reasoning_tokens":"7"}}}"#;
    let usage = read_every_way(ApiFamily::OpenAiChat, BodyFormat::Json, body);
    assert_eq!(usage.input_tokens, Some(12));
    assert_eq!(usage.output_tokens, None);
    assert_eq!(usage.cached_input_tokens, None);
    assert_eq!(usage.reasoning_tokens, None);
}

#[test]
fn gemini_json_array_stream_last_usage_wins() {
    // Vertex AI `streamGenerateContent` without `alt=sse` answers one JSON array.
    let body = br#"[{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},"modelVersion":"gemini-2.0-flash-001"},
{"candidates":[{"content":{"parts":[{"text":"b"}]}}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"totalTokenCount":13},"modelVersion":"gemini-2.0-flash-001","responseId":"r1"}]"#;
    let usage = read_every_way(ApiFamily::Gemini, BodyFormat::Json, body);
    assert_eq!((usage.input_tokens, usage.output_tokens), (Some(9), Some(4)));
    assert_eq!(usage.response_id.as_deref(), Some("r1"));
}

#[test]
fn cohere_prefers_processed_tokens_over_billed_units() {
    let billed_only = br#"{"id":"x","usage":{"billed_units":{"input_tokens":5,"output_tokens":6}}}"#;
    let usage = read_every_way(ApiFamily::Cohere, BodyFormat::Json, billed_only);
    assert_eq!((usage.input_tokens, usage.output_tokens), (Some(5), Some(6)));
    let embed = br#"{"id":"e","embeddings":{"float":[[0.1]]},"texts":["hi"],"meta":{"api_version":{"version":"2"},"billed_units":{"input_tokens":2}}}"#;
    assert_eq!(
        read_every_way(ApiFamily::Cohere, BodyFormat::Json, embed).input_tokens,
        Some(2)
    );
}

#[test]
fn ndjson_last_line_without_newline_counts_at_finish() {
    let body = fixture("ollama_chat.ndjson");
    let trimmed = body.strip_suffix(b"\n").unwrap();
    let mut reader = UsageReader::new(ApiFamily::Ollama, BodyFormat::Ndjson);
    reader.feed(trimmed);
    assert!(!reader.reported());
    reader.finish();
    assert_eq!(reader.usage().output_tokens, Some(12));
    // An unfinished last line does not count.
    let cut = &trimmed[..trimmed.len() - 1];
    assert!(!read_whole(ApiFamily::Ollama, BodyFormat::Ndjson, cut).reported());
}

#[test]
fn feeding_after_finish_is_ignored() {
    let mut reader = UsageReader::new(ApiFamily::Ollama, BodyFormat::Json);
    reader.finish();
    reader.feed(&fixture("ollama_chat.json"));
    reader.finish();
    assert!(!reader.reported());
}

#[test]
fn content_types() {
    for (ct, format) in [
        ("text/event-stream", Some(BodyFormat::Sse)),
        ("Text/Event-Stream; charset=utf-8", Some(BodyFormat::Sse)),
        ("application/x-ndjson", Some(BodyFormat::Ndjson)),
        ("application/jsonl", Some(BodyFormat::Ndjson)),
        ("application/vnd.amazon.eventstream", Some(BodyFormat::AwsEventStream)),
        ("application/json", Some(BodyFormat::Json)),
        (" APPLICATION/JSON ;charset=UTF-8", Some(BodyFormat::Json)),
        ("application/problem+json", Some(BodyFormat::Json)),
        ("text/html", None),
        ("", None),
        ("application/jsonx", None),
    ] {
        assert_eq!(BodyFormat::from_content_type(ct), format, "{ct}");
    }
}

// ---- Bedrock binary fixtures -------------------------------------------------------------

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - group.len()));
        for i in 0..=group.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        for _ in group.len()..3 {
            out.push('=');
        }
    }
    out
}

fn event_headers(event_type: &str) -> [(&str, &str); 3] {
    [
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ]
}

/// ConverseStream: messageStart, text deltas, contentBlockStop, messageStop, metadata.
fn bedrock_converse_stream() -> Vec<u8> {
    let events: [(&str, &str); 6] = [
        (
            "messageStart",
            r#"{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN","role":"assistant"}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Bonjour ! Voici le résumé"},"p":"abcdefghijklmnopqrstuvwxyz"}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":" de la réunion : budget validé ✅."},"p":"abcdefghijklm"}"#,
        ),
        (
            "contentBlockStop",
            r#"{"contentBlockIndex":0,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01"}"#,
        ),
        (
            "messageStop",
            r#"{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGH","stopReason":"end_turn"}"#,
        ),
        (
            "metadata",
            r#"{"metrics":{"latencyMs":1067},"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123","usage":{"cacheReadInputTokens":0,"cacheWriteInputTokens":1024,"inputTokens":27,"outputTokens":64,"totalTokens":1115}}"#,
        ),
    ];
    events
        .iter()
        .flat_map(|(name, payload)| encode_message(&event_headers(name), payload.as_bytes()))
        .collect()
}

/// InvokeModelWithResponseStream of an Anthropic model: `chunk` events wrapping base64
/// Anthropic events; the last one carries Bedrock's invocation metrics.
fn bedrock_invoke_stream() -> Vec<u8> {
    let events = [
        r#"{"type":"message_start","message":{"id":"msg_bdrk_01Qx7VZtR5cFhKmY3w2nJpLs","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":19,"cache_creation_input_tokens":0,"cache_read_input_tokens":2304,"output_tokens":2}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Sure — here is the"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" summary you asked for: Q3 revenue grew 12 % year over year."}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":57}}"#,
        r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":19,"outputTokenCount":57,"invocationLatency":1432,"firstByteLatency":398,"cacheReadInputTokenCount":2304,"cacheWriteInputTokenCount":0}}"#,
    ];
    let pads = [
        "abcdefghijklmnopqr",
        "abcdefgh",
        "abcdefghijklmnopqrstuvwxyzABCDEF",
        "abcd",
        "abcdefghijklmnopqrstuvwxyzAB",
        "abcdefghijk",
        "abcdefghijklmnopqrstuvw",
    ];
    events
        .iter()
        .zip(pads)
        .flat_map(|(event, pad)| {
            let payload = format!(r#"{{"bytes":"{}","p":"{pad}"}}"#, base64(event.as_bytes()));
            encode_message(&event_headers("chunk"), payload.as_bytes())
        })
        .collect()
}

/// The committed binary fixtures are exactly what the generators above produce.
/// Regenerate them with `UPDATE_USAGE_FIXTURES=1 cargo test`.
#[test]
fn bedrock_binary_fixtures_match_their_generators() {
    for (name, bytes) in [
        ("bedrock_converse_stream.bin", bedrock_converse_stream()),
        ("bedrock_invoke_stream.bin", bedrock_invoke_stream()),
    ] {
        let path = format!("{FIXTURES}/{name}");
        if std::env::var_os("UPDATE_USAGE_FIXTURES").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(fixture(name), bytes, "{name} differs from its generator");
    }
}

#[test]
fn invoke_stream_without_anthropic_events_uses_invocation_metrics() {
    // E.g. a Meta Llama model: only the metrics are understood.
    let events = [
        r#"{"generation":"Hi","prompt_token_count":null,"generation_token_count":1,"stop_reason":null}"#,
        r#"{"generation":"","prompt_token_count":null,"generation_token_count":2,"stop_reason":"stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":11,"outputTokenCount":2,"invocationLatency":200,"firstByteLatency":90}}"#,
    ];
    let body: Vec<u8> = events
        .iter()
        .flat_map(|e| {
            encode_message(
                &event_headers("chunk"),
                format!(r#"{{"bytes":"{}"}}"#, base64(e.as_bytes())).as_bytes(),
            )
        })
        .collect();
    let usage = read_every_way(ApiFamily::BedrockInvoke, BodyFormat::AwsEventStream, &body);
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens),
        (Some(11), Some(2), None)
    );
}

#[test]
fn invoke_chunks_with_bad_base64_are_skipped() {
    let body = encode_message(&event_headers("chunk"), br#"{"bytes":"eyJ1c2FnZSI6e30*"}"#);
    assert!(!read_whole(ApiFamily::BedrockInvoke, BodyFormat::AwsEventStream, &body).reported());
}

#[test]
fn invalid_utf8_response_id_is_not_kept_past_the_text_limit() {
    // Regression (fuzz/regressions/usage_readers): 100 invalid bytes in an id became 300
    // bytes of U+FFFD, over the 256-byte limit on kept text.
    let mut body = br#"{"model":"m","id":"cht"#.to_vec();
    body.extend_from_slice(&[0xff; 100]);
    body.extend_from_slice(br#"","usage":{"prompt_tokens":1}}"#);
    let usage = read_every_way(ApiFamily::OpenAiChat, BodyFormat::Json, &body);
    assert_eq!(usage.response_id, None);
    assert_eq!(usage.response_model.as_deref(), Some("m"));
    assert_eq!(usage.input_tokens, Some(1));
}

/// The tools the model asked for, read from one answer.
fn tool_names(family: ApiFamily, format: BodyFormat, body: &[u8]) -> Vec<(String, Option<String>)> {
    // Every split point must agree.
    let whole = read_whole(family, format, body).usage().tool_calls.clone();
    for split in 0..=body.len() {
        let mut reader = UsageReader::new(family, format);
        reader.feed(&body[..split]);
        reader.feed(&body[split..]);
        reader.finish();
        assert_eq!(reader.usage().tool_calls, whole, "{family:?} split at {split}");
    }
    whole.into_iter().map(|t| (t.name, t.id)).collect()
}

fn named(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    list.iter()
        .map(|(n, i)| (n.to_string(), i.map(str::to_string)))
        .collect()
}

#[test]
fn requested_tool_calls_are_read_for_every_family_json_and_stream() {
    use BodyFormat::{Json, Ndjson, Sse};
    type Case<'a> = (ApiFamily, BodyFormat, String, Vec<(&'a str, Option<&'a str>)>);
    let cases: Vec<Case<'_>> = vec![
        (
            ApiFamily::OpenAiChat,
            Json,
            r#"{"choices":[{"message":{"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}},{"id":"c2","function":{"name":"search"}}]}}]}"#.into(),
            vec![("get_weather", Some("c1")), ("search", Some("c2"))],
        ),
        (
            ApiFamily::OpenAiChat,
            Sse,
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\ndata: [DONE]\n\n".into(),
            vec![("get_weather", Some("c1"))],
        ),
        (
            ApiFamily::OpenAiResponses,
            Json,
            r#"{"output":[{"type":"message","id":"m"},{"type":"function_call","id":"fc","call_id":"call_1","name":"get_weather"}]}"#.into(),
            vec![("get_weather", Some("call_1"))],
        ),
        (
            ApiFamily::OpenAiResponses,
            Sse,
            "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\"}}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\"}]}}\n\n".into(),
            vec![("get_weather", Some("call_1"))],
        ),
        (
            ApiFamily::Anthropic,
            Json,
            r#"{"content":[{"type":"text","text":"I will."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]}"#.into(),
            vec![("get_weather", Some("toolu_1"))],
        ),
        (
            ApiFamily::Anthropic,
            Sse,
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into(),
            vec![("get_weather", Some("toolu_1"))],
        ),
        (
            ApiFamily::Gemini,
            Json,
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{}}}]},"finishReason":"STOP"}]}"#.into(),
            vec![("get_weather", None)],
        ),
        (
            ApiFamily::Gemini,
            Sse,
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"id\":\"g1\"}}]},\"finishReason\":\"STOP\"}]}\n\n".into(),
            vec![("get_weather", Some("g1"))],
        ),
        (
            ApiFamily::BedrockConverse,
            Json,
            r#"{"output":{"message":{"content":[{"text":"x"},{"toolUse":{"toolUseId":"tu1","name":"get_weather","input":{}}}]}}}"#.into(),
            vec![("get_weather", Some("tu1"))],
        ),
        (
            ApiFamily::Ollama,
            Ndjson,
            "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":{}}}]},\"done\":false}\n{\"done\":true}\n".into(),
            vec![("get_weather", None)],
        ),
        (
            ApiFamily::Cohere,
            Json,
            r#"{"message":{"tool_calls":[{"id":"t1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}"#.into(),
            vec![("get_weather", Some("t1"))],
        ),
        (
            ApiFamily::Cohere,
            Sse,
            "event: tool-call-start\ndata: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}\n\ndata: {\"type\":\"message-end\"}\n\n".into(),
            vec![("get_weather", Some("t1"))],
        ),
    ];
    for (family, format, body, want) in cases {
        assert_eq!(
            tool_names(family, format, body.as_bytes()),
            named(&want),
            "{family:?} {format:?}"
        );
    }
    // Bedrock ConverseStream: the contentBlockStart event names the tool.
    let start = encode_message(
        &[(":message-type", "event"), (":event-type", "contentBlockStart")],
        br#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tu9","name":"lookup"}}}"#,
    );
    assert_eq!(
        tool_names(ApiFamily::BedrockConverse, BodyFormat::AwsEventStream, &start),
        named(&[("lookup", Some("tu9"))])
    );
}
