//! `source::Source::parse` never panics, and a parsed source prints back to text that
//! parses to the same source.
#![no_main]

use ai_attribution::source::Source;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Source::parse(text) {
        Ok(source) => {
            let printed = source.to_string();
            assert!(
                printed.starts_with(source.kind()),
                "{printed:?} vs kind {}",
                source.kind()
            );
            assert_eq!(
                Source::parse(&printed).as_ref(),
                Ok(&source),
                "{text:?} parsed to {source:?}, printed as {printed:?}"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
