//! The CLI on access logs written by real Envoys.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;

#[test]
fn logs_are_written() {
    let l = logs();
    let s = std::fs::read_to_string(&l.sidecar).unwrap();
    let e = std::fs::read_to_string(&l.egress).unwrap();
    assert!(s.lines().count() >= 36, "{s}");
    assert!(e.lines().count() >= 10, "{e}");
}
