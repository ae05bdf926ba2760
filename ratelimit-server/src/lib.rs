//! An Envoy rate-limit service (`envoy.service.ratelimit.v3.RateLimitService`) that holds the
//! owners of AI model calls to budgets: limits in the envoyproxy/ratelimit config format (or
//! Limitador's), counted by the limitador crate in Redis, so that every Envoy replica draws on
//! one budget, or in memory for quick tests.
//!
//! Rooms: [`proto`] the wire messages, [`config`] the envoyproxy/ratelimit format,
//! [`limits_file`] Limitador's format, [`translate`] the one into the other, [`window`] the
//! fixed windows, [`counters`] the storage, [`service`] the request semantics, [`cli`] the
//! command line.

pub mod cli;
pub mod config;
pub mod counters;
pub mod limits_file;
pub mod proto;
pub mod service;
pub mod translate;
pub mod window;
