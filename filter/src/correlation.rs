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
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| char::from(DIGITS.get(usize::from(n & 0x0f)).copied().unwrap_or(b'0'));
    out.push(digit(b >> 4));
    out.push(digit(b));
}

/// Correlation IDs from a ChaCha20 keystream (RFC 8439 §2.3), keyed once per VM with 32 bytes
/// of the host's entropy: an observed ID says nothing about the next one, and two VMs (Envoy
/// workers) never share a stream.
#[derive(Debug, Clone)]
pub struct IdGenerator {
    key: [u32; 8],
    counter: u64,
}

/// ChaCha20's constant, "expand 32-byte k".
const CHACHA_CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

fn quarter_round(mut a: u32, mut b: u32, mut c: u32, mut d: u32) -> (u32, u32, u32, u32) {
    a = a.wrapping_add(b);
    d = (d ^ a).rotate_left(16);
    c = c.wrapping_add(d);
    b = (b ^ c).rotate_left(12);
    a = a.wrapping_add(b);
    d = (d ^ a).rotate_left(8);
    c = c.wrapping_add(d);
    b = (b ^ c).rotate_left(7);
    (a, b, c, d)
}

/// One 64-byte ChaCha20 block for `key`, a 64-bit block counter and a zero nonce.
fn chacha20_block(key: &[u32; 8], counter: u64) -> [u8; 64] {
    let mut state = [0u32; 16];
    let words =
        CHACHA_CONSTANTS
            .iter()
            .chain(key.iter())
            .copied()
            .chain([counter as u32, (counter >> 32) as u32, 0, 0]);
    for (slot, word) in state.iter_mut().zip(words) {
        *slot = word;
    }
    let mut w = state;
    for _ in 0..10 {
        (w[0], w[4], w[8], w[12]) = quarter_round(w[0], w[4], w[8], w[12]);
        (w[1], w[5], w[9], w[13]) = quarter_round(w[1], w[5], w[9], w[13]);
        (w[2], w[6], w[10], w[14]) = quarter_round(w[2], w[6], w[10], w[14]);
        (w[3], w[7], w[11], w[15]) = quarter_round(w[3], w[7], w[11], w[15]);
        (w[0], w[5], w[10], w[15]) = quarter_round(w[0], w[5], w[10], w[15]);
        (w[1], w[6], w[11], w[12]) = quarter_round(w[1], w[6], w[11], w[12]);
        (w[2], w[7], w[8], w[13]) = quarter_round(w[2], w[7], w[8], w[13]);
        (w[3], w[4], w[9], w[14]) = quarter_round(w[3], w[4], w[9], w[14]);
    }
    let mut out = [0u8; 64];
    for (bytes, (mixed, initial)) in out.chunks_exact_mut(4).zip(w.iter().zip(state.iter())) {
        bytes.copy_from_slice(&mixed.wrapping_add(*initial).to_le_bytes());
    }
    out
}

impl IdGenerator {
    pub fn new(seed: [u8; 32]) -> Self {
        let mut key = [0u32; 8];
        for (word, bytes) in key.iter_mut().zip(seed.chunks_exact(4)) {
            let mut b = [0u8; 4];
            b.copy_from_slice(bytes);
            *word = u32::from_le_bytes(b);
        }
        IdGenerator { key, counter: 0 }
    }

    /// The next random UUIDv4 (one keystream block each; 16 of its 64 bytes are used).
    pub fn uuid(&mut self) -> String {
        let block = chacha20_block(&self.key, self.counter);
        self.counter = self.counter.wrapping_add(1);
        let mut bytes = [0u8; 16];
        for (b, k) in bytes.iter_mut().zip(block) {
            *b = k;
        }
        uuid_v4(bytes)
    }
}

/// A seed for when the host has no entropy: SHA-256 of the clock at VM start and the root
/// context id, so that worker VMs started apart in time still draw different streams (IDs are
/// then unique, though no longer unguessable to whoever knows the start time).
pub fn fallback_seed(clock_nanos: u64, root_context_id: u32) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"ai-attribution correlation seed");
    h.update(clock_nanos.to_le_bytes());
    h.update(root_context_id.to_le_bytes());
    h.finalize().into()
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

/// True for an inbound header only this filter (or a trusted peer) may set: `x-ai-*`, also spelled
/// with underscores (`x_ai_*`), which many upstream servers read as the same header.
pub fn is_spoofable_header(name: &str) -> bool {
    let mut bytes = name
        .bytes()
        .map(|b| if b == b'_' { b'-' } else { b.to_ascii_lowercase() });
    HEADER_PREFIX.bytes().all(|p| bytes.next() == Some(p))
}

/// The key of a baggage member (`key=value;properties`), trimmed.
fn member_key(member: &str) -> &str {
    member.split(['=', ';']).next().unwrap_or("").trim()
}

/// Rebuilds a `baggage` header (W3C Baggage). With `strip_attribution`, inbound members under the
/// `ai.` namespace (any case) are dropped: they are as spoofable as `x-ai-*` headers. Inbound
/// members with the key of an appended entry are dropped too, so each key appears once. Then one
/// member per entry is appended. `None` when nothing is left.
pub fn rebuild_baggage(inbound: Option<&str>, strip_attribution: bool, entries: &[(&str, &str)]) -> Option<String> {
    let keys: Vec<String> = entries.iter().map(|(dim, _)| baggage_key(dim)).collect();
    let mut members: Vec<String> = inbound
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .filter(|m| {
            let key = member_key(m).to_ascii_lowercase();
            let spoofable = strip_attribution && key.starts_with("ai.");
            !spoofable && !keys.contains(&key)
        })
        .map(str::to_string)
        .collect();
    for ((_, value), key) in entries.iter().zip(&keys) {
        members.push(format!("{key}={}", baggage_value(value)));
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
    fn chacha20_matches_rfc_8439_test_vector() {
        // RFC 8439 §2.3.2 uses a nonce; with a zero nonce the keystream for key 00..1f and
        // counter 1 begins with these bytes (A.1 test vector #2 uses key 0, counter 1).
        let block = chacha20_block(&[0; 8], 1);
        assert_eq!(
            &block[..16],
            &[0x9f, 0x07, 0xe7, 0xbe, 0x55, 0x51, 0x38, 0x7a, 0x98, 0xba, 0x97, 0x7c, 0x73, 0x2d, 0x08, 0x0d]
        );
        let block = chacha20_block(&[0; 8], 0);
        assert_eq!(&block[..8], &[0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90]);
    }

    #[test]
    fn ids_differ_across_seeds_and_calls() {
        let mut a = IdGenerator::new([1; 32]);
        let mut b = IdGenerator::new([2; 32]);
        let (a1, a2, b1) = (a.uuid(), a.uuid(), b.uuid());
        assert_ne!(a1, a2);
        assert_ne!(a1, b1);
    }

    #[test]
    fn fallback_seeds_differ_across_vms_started_apart() {
        // Two workers start a few microseconds apart: their streams must not coincide.
        let a = IdGenerator::new(fallback_seed(1_700_000_000_000_000_000, 1)).uuid();
        let b = IdGenerator::new(fallback_seed(1_700_000_000_000_004_000, 1)).uuid();
        assert_ne!(a, b);
        assert_ne!(fallback_seed(5, 1), fallback_seed(5, 2));
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let mut g = IdGenerator::new([42; 32]);
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
            rebuild_baggage(
                Some("k1=v1, ai.user=mallory;p=1,k2=v2"),
                true,
                &[("business_unit", "fin ance,x")]
            ),
            Some("k1=v1,k2=v2,ai.business_unit=fin%20ance%2cx".to_string())
        );
        assert_eq!(rebuild_baggage(None, true, &[]), None);
        assert_eq!(rebuild_baggage(Some("ai.user=x"), true, &[]), None);
        // Any case, and duplicates.
        assert_eq!(
            rebuild_baggage(Some("AI.User=x, Ai.user=y ,k=v"), true, &[]),
            Some("k=v".to_string())
        );
        // A trusted peer's members stay, but our own keys appear once.
        assert_eq!(
            rebuild_baggage(Some("ai.user=hop1,ai.team=t"), false, &[("user", "alice")]),
            Some("ai.team=t,ai.user=alice".to_string())
        );
    }

    #[test]
    fn spoofable_headers_in_any_spelling() {
        for name in ["x-ai-user", "X-AI-User", "x_ai_user", "X_Ai-user", "x-ai-"] {
            assert!(is_spoofable_header(name), "{name}");
        }
        for name in ["x-aii-user", "x-a", "ai-user", "x-api-key", "xx-ai-user"] {
            assert!(!is_spoofable_header(name), "{name}");
        }
    }
}
