//! Envoy's rate-limit protocol (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`)
//! on the wire: the request the filter sends (the host adds the gRPC framing) and the parts of
//! the answer it reads. Unknown answer fields are skipped, as protobuf requires.

use crate::protobuf::{length_delimited, varint};

/// One descriptor: its entries and how many hits it adds (0: a check, nothing charged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub entries: Vec<(String, String)>,
    pub hits: u64,
}

/// Encodes a `RateLimitRequest`. Each descriptor carries its own `hits_addend`
/// (`google.protobuf.UInt64Value`), present even when 0: that is what makes it a check.
pub fn encode_request(domain: &str, descriptors: &[Descriptor]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 48 * descriptors.len());
    length_delimited(1, domain.as_bytes(), &mut out);
    for d in descriptors {
        let mut descriptor = Vec::with_capacity(48);
        for (key, value) in &d.entries {
            let mut entry = Vec::with_capacity(key.len() + value.len() + 4);
            length_delimited(1, key.as_bytes(), &mut entry);
            length_delimited(2, value.as_bytes(), &mut entry);
            length_delimited(1, &entry, &mut descriptor);
        }
        let mut hits = Vec::with_capacity(6);
        if d.hits > 0 {
            varint(1 << 3, &mut hits);
            varint(d.hits, &mut hits);
        }
        length_delimited(3, &hits, &mut descriptor);
        length_delimited(2, &descriptor, &mut out);
    }
    out
}

/// `RateLimitResponse.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown,
    Ok,
    OverLimit,
}

impl Code {
    fn of(v: u64) -> Code {
        match v {
            1 => Code::Ok,
            2 => Code::OverLimit,
            _ => Code::Unknown,
        }
    }
}

/// One descriptor's status in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    /// `current_limit.name`, when the service names its limits.
    pub limit_name: Option<String>,
    pub limit_remaining: Option<u64>,
    /// `duration_until_reset`, whole seconds.
    pub reset_seconds: Option<u64>,
}

/// The parts of a `RateLimitResponse` the filter reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub overall: Code,
    pub statuses: Vec<Status>,
}

/// Most statuses read from one answer (one per budget the filter sent, at most).
const MAX_STATUSES: usize = 64;

/// A protobuf reader over one message: `(field number, value)` pairs, stopping at the first
/// malformed byte.
struct Fields<'a> {
    bytes: &'a [u8],
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed-width values, read past.
    Other,
}

fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields { bytes }
    }

    /// The next field; `Err` when the message is malformed.
    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, ()> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let (tag, used) = read_varint(self.bytes).ok_or(())?;
        let rest = self.bytes.get(used..).ok_or(())?;
        let (number, kind) = (tag >> 3, tag & 7);
        let (value, used) = match kind {
            0 => {
                let (v, n) = read_varint(rest).ok_or(())?;
                (Value::Varint(v), n)
            }
            1 => (Value::Other, 8),
            2 => {
                let (len, n) = read_varint(rest).ok_or(())?;
                let len = usize::try_from(len).map_err(|_| ())?;
                let end = n.checked_add(len).ok_or(())?;
                (Value::Bytes(rest.get(n..end).ok_or(())?), end)
            }
            5 => (Value::Other, 4),
            _ => return Err(()),
        };
        self.bytes = rest.get(used..).ok_or(())?;
        Ok(Some((number, value)))
    }
}

fn decode_status(bytes: &[u8]) -> Result<Status, ()> {
    let mut status = Status {
        code: Code::Unknown,
        limit_name: None,
        limit_remaining: None,
        reset_seconds: None,
    };
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Varint(v)) => status.code = Code::of(v),
            (2, Value::Bytes(limit)) => {
                let mut limit = Fields::new(limit);
                while let Some((number, value)) = limit.next_field()? {
                    if let (3, Value::Bytes(name)) = (number, value) {
                        status.limit_name = std::str::from_utf8(name).ok().map(str::to_string);
                    }
                }
            }
            (3, Value::Varint(v)) => status.limit_remaining = Some(v),
            (4, Value::Bytes(duration)) => {
                let mut duration = Fields::new(duration);
                let mut seconds = 0;
                let mut nanos = 0;
                while let Some((number, value)) = duration.next_field()? {
                    match (number, value) {
                        (1, Value::Varint(v)) => seconds = v,
                        (2, Value::Varint(v)) => nanos = v,
                        _ => {}
                    }
                }
                // A part of a second left still means "retry after one more second".
                status.reset_seconds = Some(seconds.saturating_add(u64::from(nanos > 0)));
            }
            _ => {}
        }
    }
    Ok(status)
}

/// Decodes a `RateLimitResponse`; `None` when it is not one.
pub fn decode_response(bytes: &[u8]) -> Option<Response> {
    let mut response = Response {
        overall: Code::Unknown,
        statuses: Vec::new(),
    };
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field().ok()? {
        match (number, value) {
            (1, Value::Varint(v)) => response.overall = Code::of(v),
            (2, Value::Bytes(status)) if response.statuses.len() < MAX_STATUSES => {
                response.statuses.push(decode_status(status).ok()?);
            }
            _ => {}
        }
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn finance(hits: u64) -> Vec<Descriptor> {
        vec![Descriptor {
            entries: vec![
                ("budget".into(), "tokens_per_bu".into()),
                ("business_unit".into(), "finance".into()),
            ],
            hits,
        }]
    }

    #[test]
    fn a_check_carries_an_empty_hits_addend() {
        let want = hex("0a 0e 61 69 2d 61 74 74 72 69 62 75 74 69 6f 6e
             12 35
             0a 17 0a 06 62 75 64 67 65 74 12 0d 74 6f 6b 65 6e 73 5f 70 65 72 5f 62 75
             0a 18 0a 0d 62 75 73 69 6e 65 73 73 5f 75 6e 69 74 12 07 66 69 6e 61 6e 63 65
             1a 00");
        assert_eq!(encode_request("ai-attribution", &finance(0)), want);
    }

    #[test]
    fn a_charge_carries_its_hits() {
        let got = encode_request("ai-attribution", &finance(1234));
        assert!(got.ends_with(&hex("1a 03 08 d2 09")), "{got:02x?}");
        assert_eq!(got[16], 0x12);
        assert_eq!(got[17], 0x38);
    }

    #[test]
    fn an_answer_over_the_limit_gives_the_limit_and_the_reset() {
        // overall OVER_LIMIT; one status: OVER_LIMIT, limit {100/day, "tokens_per_bu"}, 0 left, 3600 s.
        let mut status = vec![0x08, 0x02];
        let mut limit = vec![0x08, 100, 0x10, 4];
        length_delimited(3, b"tokens_per_bu", &mut limit);
        length_delimited(2, &limit, &mut status);
        length_delimited(4, &[0x08, 0x90, 0x1c], &mut status);
        let mut answer = vec![0x08, 0x02];
        length_delimited(2, &status, &mut answer);
        // An unknown field (response_headers_to_add, 3) is skipped.
        length_delimited(3, b"\x0a\x01x", &mut answer);
        let r = decode_response(&answer).unwrap();
        assert_eq!(r.overall, Code::OverLimit);
        assert_eq!(
            r.statuses,
            vec![Status {
                code: Code::OverLimit,
                limit_name: Some("tokens_per_bu".into()),
                limit_remaining: None,
                reset_seconds: Some(3600),
            }]
        );
    }

    #[test]
    fn garbage_is_not_an_answer() {
        assert_eq!(decode_response(&[0x12, 0x05, 0x08]), None);
        assert_eq!(decode_response(&[0x0f]), None);
        assert_eq!(
            decode_response(&[]),
            Some(Response {
                overall: Code::Unknown,
                statuses: vec![]
            })
        );
        // Arbitrary bytes never panic.
        let mut seed = 7u64;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(seed % 40))
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = decode_response(&bytes);
        }
    }
}
