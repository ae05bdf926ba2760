//! Helpers shared by the fuzz targets: deterministic chunking of an input, so that the
//! incremental parsers are fed the same bytes at split points chosen by the fuzzer.

/// A small xorshift generator: deterministic, seeded from the fuzz input.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Never zero (xorshift would stay at zero).
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// FNV-1a, to derive parameters from inputs that must stay plain (e.g. valid JSON).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Splits `data` into consecutive chunks (empty chunks included now and then) whose
/// sizes follow `seed`: mostly tiny (1-8 bytes, to land splits inside tokens, escapes
/// and frame headers), sometimes larger. Concatenated, the chunks are `data`.
pub fn chunks(data: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let r = rng.next();
        let size = match r % 16 {
            0 => 0,
            1..=9 => 1 + (r >> 8) as usize % 8,
            10..=13 => 1 + (r >> 8) as usize % 64,
            _ => 1 + (r >> 8) as usize % 1024,
        };
        let size = size.min(rest.len());
        let (head, tail) = rest.split_at(size);
        out.push(head);
        rest = tail;
    }
    out
}

/// The first byte as a parameter and the rest as payload (`(0, &[])` for an empty input).
pub fn split_first(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, &[]),
    }
}
