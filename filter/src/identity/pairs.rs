//! Decoder and encoder for the proxy-wasm "pairs" map encoding (proxy-wasm ABI spec
//! 0.2.x, used by Envoy for header maps and map-valued properties).
//!
//! Layout, all integers little-endian `u32`:
//! `count`, then `count × (key_len, value_len)`, then for each entry
//! `key bytes, 0x00, value bytes, 0x00`.
//!
//! Decoding borrows from the input and is fully bounds-checked: any inconsistency
//! (truncation, a count or length that does not fit the buffer, a missing NUL
//! terminator, trailing bytes) yields `None`. An empty buffer is an empty map, as in
//! the proxy-wasm Rust SDK.

/// A decoded pairs entry: `(key, value)` borrowed from the input buffer.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(raw)).ok()
}

/// Takes `len` bytes at `*pos` followed by a NUL terminator, advancing `*pos`.
fn take_terminated<'a>(bytes: &'a [u8], pos: &mut usize, len: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(len)?;
    let data = bytes.get(*pos..end)?;
    if bytes.get(end) != Some(&0) {
        return None;
    }
    *pos = end.checked_add(1)?;
    Some(data)
}

/// Decodes a pairs-encoded map. `None` on any inconsistency.
#[must_use]
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<Pair<'_>>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)?;
    // Every entry needs 8 bytes of lengths and 2 NUL terminators.
    if count > bytes.len().saturating_sub(4) / 10 {
        return None;
    }
    let mut pos = count.checked_mul(8)?.checked_add(4)?;
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let len_at = n.checked_mul(8)?.checked_add(4)?;
        let key_len = read_u32(bytes, len_at)?;
        let val_len = read_u32(bytes, len_at.checked_add(4)?)?;
        let key = take_terminated(bytes, &mut pos, key_len)?;
        let val = take_terminated(bytes, &mut pos, val_len)?;
        out.push((key, val));
    }
    (pos == bytes.len()).then_some(out)
}

/// Encodes `pairs` in the pairs format. Entries whose key or value is longer than
/// `u32::MAX` bytes (impossible on wasm32) are left out.
#[must_use]
pub fn encode_pairs(pairs: &[Pair<'_>]) -> Vec<u8> {
    let fits = |p: &&Pair<'_>| u32::try_from(p.0.len()).is_ok() && u32::try_from(p.1.len()).is_ok();
    let mut count: u32 = 0;
    let mut size = 4usize;
    for (k, v) in pairs.iter().filter(fits) {
        count = count.saturating_add(1);
        size = size.saturating_add(10 + k.len() + v.len());
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&count.to_le_bytes());
    for (k, v) in pairs.iter().filter(fits) {
        for len in [k.len(), v.len()] {
            out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
        }
    }
    for (k, v) in pairs.iter().filter(fits) {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pairs: Vec<Pair> = vec![
            (b":path", b"/v1/chat"),
            (b"x-api-key", b""),
            (b"", b"v"),
            (b"bin", &[0xff, 0x00, 0x01]),
        ];
        let enc = encode_pairs(&pairs);
        assert_eq!(decode_pairs(&enc).unwrap(), pairs);
    }

    #[test]
    fn exact_layout() {
        let enc = encode_pairs(&[(b"a", b"bc")]);
        assert_eq!(enc, [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', b'c', 0]);
    }

    #[test]
    fn empty() {
        assert_eq!(decode_pairs(&[]).unwrap(), vec![]);
        assert_eq!(encode_pairs(&[]), [0, 0, 0, 0]);
        assert_eq!(decode_pairs(&[0, 0, 0, 0]).unwrap(), vec![]);
    }

    #[test]
    fn rejects_inconsistent() {
        let good = encode_pairs(&[(b"k", b"v"), (b"kk", b"vv")]);
        assert!(decode_pairs(&good).is_some());
        // Every truncation fails.
        for n in 1..good.len() {
            assert_eq!(decode_pairs(&good[..n]), None, "truncated to {n}");
        }
        // Trailing byte.
        let mut t = good.clone();
        t.push(0);
        assert_eq!(decode_pairs(&t), None);
        // Missing NUL terminator.
        let mut m = good.clone();
        let last = m.len() - 1;
        m[last] = b'x';
        assert_eq!(decode_pairs(&m), None);
        // Huge count.
        assert_eq!(decode_pairs(&[0xff, 0xff, 0xff, 0xff]), None);
        let mut h = good.clone();
        h[0] = 200;
        assert_eq!(decode_pairs(&h), None);
        // Lengths that overflow.
        let mut o = encode_pairs(&[(b"k", b"v")]);
        o[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_pairs(&o), None);
        o[4..8].copy_from_slice(&1u32.to_le_bytes());
        o[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_pairs(&o), None);
        // Lengths that shift the layout but keep the total size.
        let mut s = encode_pairs(&[(b"ab", b"c")]);
        s[4..8].copy_from_slice(&1u32.to_le_bytes());
        s[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(decode_pairs(&s), None);
        // Short header.
        assert_eq!(decode_pairs(&[1, 0, 0]), None);
    }

    #[test]
    fn embedded_nul_in_value_is_fine_when_lengths_say_so() {
        let enc = encode_pairs(&[(b"k", b"a\0b")]);
        assert_eq!(decode_pairs(&enc).unwrap(), vec![(&b"k"[..], &b"a\0b"[..])]);
    }
}
