//! Correlation IDs, propagation headers and W3C baggage (SPEC §4).

/// Prefix of the attribution headers this filter owns; inbound ones are stripped.
pub const HEADER_PREFIX: &str = "x-ai-";

/// Accepts an inbound request id as the correlation id only if it is a plain token.
pub fn usable_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Formats 16 random bytes as a UUIDv4 (RFC 9562 §5.4).
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        push_hex(&mut out, *b);
    }
    out
}

/// Appends a byte as two lower-case hex digits.
fn push_hex(out: &mut String, b: u8) {
    for nibble in [b >> 4, b & 0x0f] {
        out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
    }
}

/// A small PRNG (SplitMix64) for correlation ids, seeded once per VM from the host's entropy.
#[derive(Debug, Clone)]
pub struct IdGenerator(u64);

impl IdGenerator {
    pub fn new(seed: u64) -> Self {
        IdGenerator(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        let (a, b) = bytes.split_at_mut(8);
        a.copy_from_slice(&self.next_u64().to_le_bytes());
        b.copy_from_slice(&self.next_u64().to_le_bytes());
        uuid_v4(bytes)
    }
}

/// `business_unit` → `x-ai-business-unit`.
pub fn propagation_header(dimension: &str) -> String {
    let mut h = String::with_capacity(HEADER_PREFIX.len() + dimension.len());
    h.push_str(HEADER_PREFIX);
    h.extend(dimension.chars().map(|c| if c == '_' { '-' } else { c }));
    h
}

/// The W3C baggage key for a dimension.
pub fn baggage_key(dimension: &str) -> String {
    format!("ai.{dimension}")
}

/// Percent-encodes a baggage value (W3C Baggage: everything outside baggage-octet is encoded).
fn baggage_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        let plain = b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\' | b'%');
        if plain {
            out.push(char::from(b));
        } else {
            out.push('%');
            push_hex(&mut out, b);
        }
    }
    out
}

/// Rebuilds a `baggage` header: inbound members under the `ai.` namespace are dropped (they are as
/// spoofable as `x-ai-*` headers), then one member per propagated dimension is appended.
pub fn merge_baggage(inbound: Option<&str>, entries: &[(&str, &str)]) -> Option<String> {
    let mut members: Vec<String> = inbound
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .filter(|m| !m.split(['=', ';']).next().unwrap_or("").trim().starts_with("ai."))
        .map(str::to_string)
        .collect();
    for (dim, value) in entries {
        members.push(format!("{}={}", baggage_key(dim), baggage_value(value)));
    }
    if members.is_empty() {
        None
    } else {
        Some(members.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_and_variant() {
        let mut g = IdGenerator::new(42);
        let a = g.uuid();
        let b = g.uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn request_ids_are_checked() {
        assert!(usable_request_id("9f6b5dbf-1c2d-4e5f-8a9b-0c1d2e3f4a5b"));
        assert!(!usable_request_id(""));
        assert!(!usable_request_id("a b"));
        assert!(!usable_request_id(&"a".repeat(129)));
    }

    #[test]
    fn propagation_header_names() {
        assert_eq!(propagation_header("business_unit"), "x-ai-business-unit");
        assert_eq!(propagation_header("user"), "x-ai-user");
    }

    #[test]
    fn baggage_drops_spoofed_members_and_appends() {
        assert_eq!(
            merge_baggage(
                Some("k1=v1, ai.user=mallory;p=1,k2=v2"),
                &[("business_unit", "fin ance,x")]
            ),
            Some("k1=v1,k2=v2,ai.business_unit=fin%20ance%2cx".to_string())
        );
        assert_eq!(merge_baggage(None, &[]), None);
        assert_eq!(merge_baggage(Some("ai.user=x"), &[]), None);
    }
}
