//! Where the first of a few bytes is, for the scans that read long texts: message contents in JSON
//! bodies and answers, and the lines of an event stream. Sixteen bytes at a time with wasm's
//! vector instructions when the build enables them (`simd128`, as `make build` does), eight at a
//! time with word-at-a-time byte tests otherwise, then byte by byte.

/// The bytes a scan stops at: two given bytes, and every control byte (below 0x20) if `controls`.
#[derive(Debug, Clone, Copy)]
pub struct Stops {
    pub a: u8,
    pub b: u8,
    pub controls: bool,
}

impl Stops {
    fn matches(self, byte: u8) -> bool {
        byte == self.a || byte == self.b || (self.controls && byte < 0x20)
    }
}

/// The position of the first byte of `bytes` that is one of `stops`. Inlined, so that each caller
/// (one small function per set of stops) gets its constants folded in.
#[inline(always)]
pub fn first_stop(bytes: &[u8], stops: Stops) -> Option<usize> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let done = match vector::first_stop(bytes, stops) {
        Ok(at) => return Some(at),
        Err(read) => read,
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let done = 0;
    let rest = bytes.get(done..).unwrap_or_default();
    let done = match words_first_stop(rest, stops) {
        Ok(at) => return Some(done + at),
        Err(read) => done + read,
    };
    let tail = bytes.get(done..).unwrap_or_default();
    tail.iter().position(|&b| stops.matches(b)).map(|at| done + at)
}

/// The first stop in `bytes`' whole eight-byte words (`Ok`), or how many bytes those words hold
/// when none has one (`Err`).
#[inline(always)]
fn words_first_stop(bytes: &[u8], stops: Stops) -> Result<usize, usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `v` below `n` sets its high bit here (`n` = 1: a zero byte), with false positives
    // only above a true one, so the lowest bit set is the first stop.
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v;
    let mut done = 0;
    // Whole words, read as arrays: a slice copy would be a call per word in the size-optimised
    // build.
    let (words, _) = bytes.as_chunks::<8>();
    for word in words {
        let x = u64::from_le_bytes(*word);
        let mut found = below(x ^ (ONES * u64::from(stops.a)), 1) | below(x ^ (ONES * u64::from(stops.b)), 1);
        if stops.controls {
            found |= below(x, 0x20);
        }
        found &= HIGHS;
        if found != 0 {
            return Ok(done + (found.trailing_zeros() / 8) as usize);
        }
        done += 8;
    }
    Err(done)
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod vector {
    use super::Stops;
    use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128, v128_load, v128_or};

    /// The first stop in `bytes`' whole sixteen-byte blocks (`Ok`), or how many bytes those blocks
    /// hold when none has one (`Err`).
    #[inline(always)]
    pub(super) fn first_stop(bytes: &[u8], stops: Stops) -> Result<usize, usize> {
        let (a, b, controls) = (u8x16_splat(stops.a), u8x16_splat(stops.b), u8x16_splat(0x20));
        let mut done = 0;
        let (blocks, _) = bytes.as_chunks::<16>();
        for block in blocks {
            // SAFETY: `block` is sixteen readable bytes, and a wasm vector load needs no alignment.
            let v = unsafe { v128_load(block.as_ptr().cast::<v128>()) };
            let mut found = v128_or(u8x16_eq(v, a), u8x16_eq(v, b));
            if stops.controls {
                found = v128_or(found, u8x16_lt(v, controls));
            }
            let mask = u8x16_bitmask(found);
            if mask != 0 {
                return Ok(done + mask.trailing_zeros() as usize);
            }
            done += 16;
        }
        Err(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_a_bytewise_scan_finds() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let sets = [
            Stops {
                a: b'"',
                b: b'\\',
                controls: true,
            },
            Stops {
                a: b'\n',
                b: b'\r',
                controls: false,
            },
        ];
        // Stops now and then, and seldom enough that long runs (several vector blocks) have none.
        for (len, spread) in (0..200).map(|len| (len, 29)).chain((0..300).map(|len| (len, 400))) {
            for _ in 0..20 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly plain text, sometimes a stop, a control or a high byte.
                        match state % spread {
                            0 => b'"',
                            1 => b'\\',
                            2 => b'\n',
                            3 => b'\r',
                            4 => (state >> 8) as u8 & 0x1f,
                            5 => 0x80 | (state >> 16) as u8,
                            _ => b'a' + (state >> 24) as u8 % 26,
                        }
                    })
                    .collect();
                for stops in sets {
                    let want = bytes.iter().position(|&c| stops.matches(c));
                    assert_eq!(first_stop(&bytes, stops), want, "{stops:?} in {bytes:?}");
                }
            }
        }
    }
}
