//! `usage::UsageReader` for every API family × body format never panics on any body fed
//! in any chunks, and chunking does not change the usage found: whole, split at points
//! derived from the input, and byte at a time all give the same `usage()`.
//!
//! Input: byte 0 = family (low 3 bits) and format (next 2 bits), byte 1 = split seed,
//! rest = response body.
#![no_main]

use ai_attribution::usage::{ApiFamily, BodyFormat, Usage, UsageReader};
use fuzz_support::chunks;
use libfuzzer_sys::fuzz_target;

const FAMILIES: [ApiFamily; 8] = ApiFamily::ALL;
const FORMATS: [BodyFormat; 4] = [
    BodyFormat::Json,
    BodyFormat::Sse,
    BodyFormat::Ndjson,
    BodyFormat::AwsEventStream,
];

fn read<'a>(family: ApiFamily, format: BodyFormat, parts: impl IntoIterator<Item = &'a [u8]>) -> Usage {
    let mut reader = UsageReader::new(family, format);
    for part in parts {
        reader.feed(part);
    }
    let before_finish = reader.usage().clone();
    reader.finish();
    let usage = reader.usage().clone();
    // Usage found before the end stays (finish may only add to it).
    for (a, b) in [
        (before_finish.input_tokens, usage.input_tokens),
        (before_finish.output_tokens, usage.output_tokens),
    ] {
        if a.is_some() {
            assert!(b.is_some(), "finish() lost a count: {before_finish:?} -> {usage:?}");
        }
    }
    // Feeding after finish is ignored.
    reader.feed(b"{\"usage\":{\"prompt_tokens\":1}}\n\ndata: {}\n\n");
    reader.finish();
    assert_eq!(reader.usage(), &usage, "feed after finish changed the usage");
    for text in usage.response_model.iter().chain(&usage.response_id) {
        assert!(!text.is_empty() && text.len() <= 256, "text {text:?}");
    }
    assert!(usage.tool_calls.len() <= ai_attribution::usage::MAX_TOOL_CALLS);
    for call in &usage.tool_calls {
        assert!(!call.name.is_empty() && call.name.len() <= 256, "tool {call:?}");
    }
    usage
}

fuzz_target!(|data: &[u8]| {
    let (selector, rest) = fuzz_support::split_first(data);
    let (seed, body) = fuzz_support::split_first(rest);
    let family = FAMILIES[usize::from(selector & 7)];
    let format = FORMATS[usize::from((selector >> 3) & 3)];

    let whole = read(family, format, [body]);
    let split = read(family, format, chunks(body, u64::from(seed) << 32 | body.len() as u64));
    assert_eq!(split, whole, "{family:?}/{format:?}: split feeding changed the usage");
    let bytewise = read(family, format, body.chunks(1));
    assert_eq!(
        bytewise, whole,
        "{family:?}/{format:?}: byte-at-a-time feeding changed the usage"
    );
});
