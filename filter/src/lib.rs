//! ai-attribution: a proxy-wasm filter that binds every AI model call to the identity it came from.
//!
//! The modules below `glue` never touch the proxy-wasm ABI: they take plain data or the
//! [`policy::SourceLookup`] trait, so the whole decision path is unit-tested natively.

pub mod body;
pub mod config;
pub mod correlation;
pub mod identity;
pub mod json_scan;
pub mod metrics;
pub mod policy;
pub mod protobuf;
pub mod provider;
pub mod record;
pub mod reject;
pub mod request;
pub mod response;
pub mod source;
pub mod usage;
pub mod value;

#[cfg(target_arch = "wasm32")]
mod glue;
