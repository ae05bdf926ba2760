//! Minimal standard-alphabet base64 decoder (RFC 4648 section 4, padding optional) that
//! hands decoded bytes out in small fixed-size blocks instead of allocating.

/// The input is not standard base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidBase64;

const BLOCK_BYTES: usize = 768;

fn sextet(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// Decodes `input`, calling `out` with consecutive pieces of the result. On error, some
/// pieces may already have been handed out.
pub(crate) fn decode_into(input: &[u8], mut out: impl FnMut(&[u8])) -> Result<(), InvalidBase64> {
    let mut block = [0u8; BLOCK_BYTES];
    let mut block_len = 0usize;
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let mut data_chars = 0usize;
    let mut padding = 0usize;
    for &c in input {
        if c == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return Err(InvalidBase64);
        }
        acc = (acc << 6) | sextet(c).ok_or(InvalidBase64)?;
        bits += 6;
        data_chars += 1;
        if bits >= 8 {
            bits -= 8;
            let byte = ((acc >> bits) & 0xFF) as u8;
            acc &= (1 << bits) - 1;
            if let Some(slot) = block.get_mut(block_len) {
                *slot = byte;
                block_len += 1;
            }
            if block_len == BLOCK_BYTES {
                out(&block);
                block_len = 0;
            }
        }
    }
    let padded_ok = padding == 0 || (data_chars + padding).is_multiple_of(4);
    if data_chars % 4 == 1 || padding > 2 || !padded_ok {
        return Err(InvalidBase64);
    }
    out(block.get(..block_len).unwrap_or(&[]));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn decode(input: &str) -> Result<Vec<u8>, InvalidBase64> {
        let mut bytes = Vec::new();
        decode_into(input.as_bytes(), |piece| bytes.extend_from_slice(piece))?;
        Ok(bytes)
    }

    #[test]
    fn decodes_rfc4648_vectors() {
        for (encoded, plain) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9vYg", "foob"),
        ] {
            assert_eq!(decode(encoded), Ok(plain.as_bytes().to_vec()), "{encoded}");
        }
        assert_eq!(decode("+/+/"), Ok(vec![0xfb, 0xff, 0xbf]));
    }

    #[test]
    fn rejects_invalid_input() {
        for bad in ["Zm9v!", "Z", "Zm9vY", "Zg=a", "Zg===", "Zm9=v", "-_==", "Zg="] {
            assert_eq!(decode(bad), Err(InvalidBase64), "{bad}");
        }
    }

    #[test]
    fn long_input_comes_out_in_blocks() {
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut encoded = String::new();
        for group in plain.chunks(3) {
            let n = group.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - group.len()));
            for i in 0..=group.len() {
                encoded.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            }
            for _ in group.len()..3 {
                encoded.push('=');
            }
        }
        let mut pieces = 0;
        let mut bytes = Vec::new();
        decode_into(encoded.as_bytes(), |piece| {
            pieces += 1;
            bytes.extend_from_slice(piece);
        })
        .unwrap();
        assert_eq!(bytes, plain);
        assert!(pieces > 10);
    }
}
