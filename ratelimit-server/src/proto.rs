//! The messages of `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, written from
//! the field numbers of Envoy's `api/envoy/service/ratelimit/v3/rls.proto` and
//! `api/envoy/extensions/common/ratelimit/v3/ratelimit.proto` (both Apache-2.0).
//!
//! Only the fields this server reads or writes are declared; prost skips the others on the wire,
//! so a client that sends more (`limit` overrides are declared but not applied) is still
//! understood. `integration/QUOTA.md` lists the same numbers for clients that encode by hand.

/// `envoy.service.ratelimit.v3.RateLimitRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitRequest {
    /// Field 1: the limits' namespace (envoyproxy/ratelimit's `domain`).
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Field 2: each descriptor is checked, or charged, on its own.
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<RateLimitDescriptor>,
    /// Field 3: hits for descriptors without their own; 0 (unset in proto3) means 1.
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitDescriptor {
    /// Field 1: the ordered `(key, value)` entries.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
    /// Field 2: a limit chosen by the client. Decoded to be logged; this server does not apply it.
    #[prost(message, optional, tag = "2")]
    pub limit: Option<RateLimitOverride>,
    /// Field 3: `google.protobuf.UInt64Value`. Present overrides the request's `hits_addend`;
    /// present with 0 means "check only".
    #[prost(message, optional, tag = "3")]
    pub hits_addend: Option<UInt64Value>,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.Entry`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.RateLimitOverride`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitOverride {
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    /// `envoy.type.v3.RateLimitUnit` (the same numbers as [`Unit`]).
    #[prost(int32, tag = "2")]
    pub unit: i32,
}

/// `google.protobuf.UInt64Value`: a message so that "absent" and "0" differ on the wire.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct UInt64Value {
    #[prost(uint64, tag = "1")]
    pub value: u64,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitResponse {
    /// Field 1: OVER_LIMIT when any descriptor is over its limit, else OK.
    #[prost(enumeration = "Code", tag = "1")]
    pub overall_code: i32,
    /// Field 2: one status per request descriptor, in the request's order.
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    Unknown = 0,
    Ok = 1,
    OverLimit = 2,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.DescriptorStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DescriptorStatus {
    #[prost(enumeration = "Code", tag = "1")]
    pub code: i32,
    /// Field 2: absent when no configured limit matched the descriptor.
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    /// Field 3: what is left in the current window (0 when over the limit).
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    /// Field 4: `google.protobuf.Duration` until the window resets.
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<Duration>,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.RateLimit`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimit {
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(enumeration = "Unit", tag = "2")]
    pub unit: i32,
    /// Field 3: the limit's name, when the config gives one.
    #[prost(string, tag = "3")]
    pub name: String,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.RateLimit.Unit`. WEEK came last, hence 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Unit {
    Unknown = 0,
    Second = 1,
    Minute = 2,
    Hour = 3,
    Day = 4,
    Month = 5,
    Year = 6,
    Week = 7,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The generated `RateLimitService` server and client.
pub mod rls {
    include!(concat!(
        env!("OUT_DIR"),
        "/envoy.service.ratelimit.v3.RateLimitService.rs"
    ));
}
