//! `Config::parse` never panics on any bytes, is deterministic, and every error renders.
#![no_main]

use ai_attribution::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = Config::parse(data);
    let second = Config::parse(data);
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "two parses of the same bytes differ");
            // Accessors used on the request path must not panic on a valid config.
            for d in &a.dimensions {
                assert_eq!(a.dimension_index(&d.name).map(|i| &a.dimensions[i].name), Some(&d.name));
                for s in &d.sources {
                    let _ = (s.kind(), s.to_string());
                }
            }
            for alternative in &a.require {
                assert!(alternative.iter().all(|&i| i < a.dimensions.len()));
            }
            assert!(a.propagate.iter().all(|&i| i < a.dimensions.len()));
            assert!((1..=8192).contains(&a.max_value_bytes));
            for p in &a.pricing {
                let _ = a.price_for(&p.pattern);
            }
            let _ = a.price_for("gpt-4o");
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "two parses of the same bytes give different errors");
            let _ = a.to_string();
        }
        _ => panic!("two parses of the same bytes disagree: {first:?} vs {second:?}"),
    }
});
