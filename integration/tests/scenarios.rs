//! The scenario corpus through a real Envoy with the filter and the local model server.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::scenario::{load, run_file};

#[test]
fn scenario_corpus_through_real_envoy() {
    let corpus = load().unwrap();
    assert!(corpus.len() >= 4, "scenario corpus not found");
    let mut failures = Vec::new();
    let mut ran = 0;
    for file in &corpus {
        match run_file(file) {
            Ok(n) => ran += n,
            Err(f) => failures.extend(f),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran >= 30, "only {ran} cases ran");
}
