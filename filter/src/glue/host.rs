//! The host boundary: raw proxy-wasm ABI calls that return errors instead of panicking.
//!
//! The SDK's `hostcalls` helpers panic on any status they do not expect, and a panic kills the VM
//! (fail-closed Envoy then answers 503 to every later request). These wrappers never panic.

#![allow(unsafe_code)]

use crate::host::Attributes;
use crate::identity::pairs::encode_pairs;
use crate::protobuf::declare_struct_property_args;
use crate::quota::{METHOD as QUOTA_METHOD, SERVICE as QUOTA_SERVICE};
use proxy_wasm::types::{BufferType, MapType};
use std::ptr::null_mut;

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map: MapType, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(
        map: MapType,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: MapType, key: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(path: *const u8, path_size: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_property(path: *const u8, path_size: usize, value: *const u8, value_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: BufferType,
        start: usize,
        max: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(buffer: BufferType, start: usize, size: usize, data: *const u8, data_size: usize) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_size: usize,
        args: *const u8,
        args_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_log(level: u32, message: *const u8, message_size: usize) -> u32;
    fn proxy_grpc_call(
        upstream: *const u8,
        upstream_size: usize,
        service: *const u8,
        service_size: usize,
        method: *const u8,
        method_size: usize,
        metadata: *const u8,
        metadata_size: usize,
        message: *const u8,
        message_size: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn random_get(buf: *mut u8, len: usize) -> u16;
    fn clock_time_get(clock: u32, precision: u64, time: *mut u64) -> u16;
}

const OK: u32 = 0;

/// A host call that did not return Ok; the number is the proxy-wasm status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host call failed with status {}", self.0)
    }
}

/// Takes ownership of a host-allocated buffer (allocated through the SDK's `proxy_on_memory_allocate`).
///
/// # Safety
/// `data` must be null or a buffer of `size` bytes the host allocated for this call.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: per the ABI, the host allocated `size` bytes through our allocator.
        unsafe { Vec::from_raw_parts(data, size, size) }
    }
}

/// The request headers in the host's pairs encoding; [`header_view`] reads them.
pub fn request_headers() -> Result<Vec<u8>, HostError> {
    header_pairs(MapType::HttpRequestHeaders)
}

fn header_pairs(map: MapType) -> Result<Vec<u8>, HostError> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: out-pointers are valid; the returned buffer is taken exactly once.
    let status = unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) };
    let bytes = unsafe { take(data, size) };
    if status != OK {
        return Err(HostError(status));
    }
    Ok(bytes)
}

/// The response headers in the host's pairs encoding.
pub fn response_headers() -> Result<Vec<u8>, HostError> {
    header_pairs(MapType::HttpResponseHeaders)
}

/// Headers borrowed from a pairs buffer ([`crate::host::decode_headers`]); a buffer that does
/// not decode is the host's `SerializationFailure` (3).
pub fn header_view(bytes: &[u8]) -> Result<Vec<(&str, &[u8])>, HostError> {
    crate::host::decode_headers(bytes).ok_or(HostError(3))
}

fn set_header(map: MapType, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers and lengths describe live slices.
    let status = unsafe { proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    if status == OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

pub fn set_request_header(name: &str, value: &str) -> Result<(), HostError> {
    set_header(MapType::HttpRequestHeaders, name, value)
}

pub fn set_response_header(name: &str, value: &str) -> Result<(), HostError> {
    set_header(MapType::HttpResponseHeaders, name, value)
}

fn remove_header(map: MapType, name: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length describe a live slice.
    let status = unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) };
    if status == OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

pub fn remove_request_header(name: &str) -> Result<(), HostError> {
    remove_header(MapType::HttpRequestHeaders, name)
}

fn property_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Reads an Envoy attribute; NotFound and every error are `None`.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let p = property_path(path);
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: as above.
    let status = unsafe { proxy_get_property(p.as_ptr(), p.len(), &mut data, &mut size) };
    let bytes = unsafe { take(data, size) };
    (status == OK && !data.is_null()).then_some(bytes)
}

/// Writes filter state `wasm.<name>`; only valid inside an HTTP context.
pub fn set_property(name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: pointers and lengths describe live slices.
    let status = unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    if status == OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

/// Reads a buffer (body or plugin configuration); an error carries the host's status.
pub fn buffer(kind: BufferType, start: usize, max: usize) -> Result<Vec<u8>, HostError> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: as above.
    let status = unsafe { proxy_get_buffer_bytes(kind, start, max, &mut data, &mut size) };
    let bytes = unsafe { take(data, size) };
    if status == OK {
        Ok(bytes)
    } else {
        Err(HostError(status))
    }
}

/// Replaces `size` bytes at `start` of a body buffer with `data`.
pub fn set_buffer(kind: BufferType, start: usize, size: usize, data: &[u8]) -> Result<(), HostError> {
    // SAFETY: pointer and length describe a live slice.
    let status = unsafe { proxy_set_buffer_bytes(kind, start, size, data.as_ptr(), data.len()) };
    if status == OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

/// Sends a local reply with response code details (which the SDK's helper cannot set).
pub fn send_local_response(status: u32, details: &str, body: &[u8], headers: &[(&str, &str)]) -> Result<(), HostError> {
    let pairs: Vec<(&[u8], &[u8])> = headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
    let h = encode_pairs(&pairs);
    // SAFETY: pointers and lengths describe live slices; -1 means no gRPC status.
    let rc = unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            h.as_ptr(),
            h.len(),
            -1,
        )
    };
    if rc == OK {
        Ok(())
    } else {
        Err(HostError(rc))
    }
}

pub fn call_foreign_function(name: &str, args: &[u8]) -> Result<Vec<u8>, HostError> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: as above.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            args.as_ptr(),
            args.len(),
            &mut data,
            &mut size,
        )
    };
    let bytes = unsafe { take(data, size) };
    if status == OK {
        Ok(bytes)
    } else {
        Err(HostError(status))
    }
}

/// Defines a counter (metric type 0).
pub fn define_counter(name: &str) -> Result<u32, HostError> {
    let mut id = 0u32;
    // SAFETY: as above.
    let status = unsafe { proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) };
    if status == OK {
        Ok(id)
    } else {
        Err(HostError(status))
    }
}

pub fn increment(id: u32, by: i64) -> Result<(), HostError> {
    // SAFETY: plain values.
    let status = unsafe { proxy_increment_metric(id, by) };
    if status == OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

/// 32 bytes of host entropy (WASI `random_get`), or `None` if the host has none.
pub fn random_seed() -> Option<[u8; 32]> {
    let mut buf = [0u8; 32];
    // SAFETY: the buffer is valid for 32 bytes.
    let rc = unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
    (rc == 0).then_some(buf)
}

/// The realtime clock in nanoseconds (WASI `clock_time_get`), 0 if unavailable.
pub fn clock_nanos() -> u64 {
    let mut t = 0u64;
    // SAFETY: `t` is a valid out-pointer; clock 0 is the realtime clock.
    let rc = unsafe { clock_time_get(0, 1, &mut t) };
    if rc == 0 {
        t
    } else {
        0
    }
}

/// `declare_property` foreign function (Envoy): declares `name` as a protobuf Struct so that
/// `%FILTER_STATE(wasm.<name>:TYPED)%` renders it as JSON.
pub fn declare_struct_property(name: &str) -> Result<(), HostError> {
    call_foreign_function("declare_property", &declare_struct_property_args(name)).map(|_| ())
}

/// Writes a message to Envoy's log at `level` (proxy-wasm levels: 0 trace .. 5 critical); a
/// failure is ignored, since there is nowhere left to report it.
fn log_at(level: u32, message: &str) {
    // SAFETY: pointer and length describe a live slice.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// The `log` crate's backend: straight to `proxy_log`, never panicking (the SDK's logger
/// unwraps the host's answer).
struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => 4,
            log::Level::Warn => 3,
            log::Level::Info => 2,
            log::Level::Debug => 1,
            log::Level::Trace => 0,
        };
        log_at(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

static LOGGER: HostLogger = HostLogger;

/// Routes `log` macros to Envoy's log at info level and above, and has a panic say at critical
/// level that the VM is now unusable.
pub fn install_logger() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    std::panic::set_hook(Box::new(|info| {
        log_at(5, &format!("ai-attribution panicked, the VM is now unusable: {info}"));
    }));
}

/// Envoy's attributes, for the core.
pub struct Envoy;

impl Attributes for Envoy {
    fn property(&mut self, path: &[&str]) -> Option<Vec<u8>> {
        property(path)
    }

    fn now_unix_seconds(&mut self) -> Option<u64> {
        Some(clock_nanos() / 1_000_000_000).filter(|&s| s > 0)
    }
}

/// Sends a usage report to the rate-limit service on `cluster` that nobody waits for: made on
/// behalf of `owner` (the root context, which outlives the stream, so the call is not cancelled
/// with it), then the effective context is set back to `current`. Its answer goes to a context
/// that does not expect it and is dropped.
pub fn report_quota(owner: u32, current: u32, cluster: &str, message: &[u8], timeout_ms: u64) -> Result<(), HostError> {
    // SAFETY: plain value.
    let rc = unsafe { proxy_set_effective_context(owner) };
    if rc != OK {
        return Err(HostError(rc));
    }
    let sent = grpc_call(cluster, message, u32::try_from(timeout_ms).unwrap_or(u32::MAX));
    // SAFETY: plain value.
    let back = unsafe { proxy_set_effective_context(current) };
    sent?;
    if back != OK {
        return Err(HostError(back));
    }
    Ok(())
}

/// A call of the rate-limit service's method, with no initial metadata. Not registered with the
/// SDK's dispatcher, which therefore drops its answer.
fn grpc_call(cluster: &str, message: &[u8], timeout_ms: u32) -> Result<(), HostError> {
    let mut token = 0u32;
    // An empty header map, as the ABI encodes it: a zero count.
    let metadata = [0u8; 4];
    let (service, method) = (QUOTA_SERVICE, QUOTA_METHOD);
    // SAFETY: pointers and lengths describe live slices; `token` is a valid out-pointer.
    let rc = unsafe {
        proxy_grpc_call(
            cluster.as_ptr(),
            cluster.len(),
            service.as_ptr(),
            service.len(),
            method.as_ptr(),
            method.len(),
            metadata.as_ptr(),
            metadata.len(),
            message.as_ptr(),
            message.len(),
            timeout_ms,
            &mut token,
        )
    };
    if rc == OK {
        Ok(())
    } else {
        Err(HostError(rc))
    }
}

/// Resumes the request after the filter paused it (`proxy_continue_stream`, HTTP request).
pub fn resume_request() -> Result<(), HostError> {
    // SAFETY: plain value; 0 is the HTTP request stream.
    let rc = unsafe { proxy_continue_stream(0) };
    if rc == OK {
        Ok(())
    } else {
        Err(HostError(rc))
    }
}
