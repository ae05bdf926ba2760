//! ai-attribution: a proxy-wasm filter that binds every AI event (model calls, agent tool calls)
//! to the identity it came from.
//!
//! Everything but `glue` is plain Rust that never touches the proxy-wasm ABI: the life of a
//! request is the state machine in [`call`], fed with headers and body chunks as plain data and
//! reading Envoy attributes through the [`host::Attributes`] trait, so the whole path from the
//! request headers to the record is unit-tested natively. `glue` only translates.

pub mod authority;
pub mod body;
pub mod call;
pub mod config;
pub mod correlation;
pub mod find;
pub mod hmac;
pub mod host;
pub mod identity;
pub mod json_edit;
pub mod json_scan;
pub mod mcp;
pub mod metrics;
pub mod path;
pub mod policy;
pub mod protobuf;
pub mod provider;
pub mod quota;
pub mod record;
pub mod reject;
pub mod request;
pub mod response;
pub mod source;
pub mod usage;
pub mod value;

#[cfg(target_arch = "wasm32")]
mod glue;
