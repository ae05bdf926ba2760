//! Byte-level helpers for the mock model server: CRC32 (IEEE), SHA-256, base64,
//! a tiny deterministic PRNG and the AWS `application/vnd.amazon.eventstream` framing.

/// CRC32 (IEEE 802.3, reflected polynomial 0xEDB88320) lookup table.
const CRC_TABLE: [u32; 256] = crc_table();

#[allow(clippy::indexing_slicing)] // `i < 256` indexes a `[u32; 256]`.
const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// CRC32 IEEE of `data` (the checksum AWS event streams use).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        let idx = ((c ^ u32::from(b)) & 0xff) as usize;
        c = CRC_TABLE.get(idx).copied().unwrap_or(0) ^ (c >> 8);
    }
    !c
}

/// Standard base64 (RFC 4648, with `=` padding).
pub fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| char::from(ALPHABET.get((v & 63) as usize).copied().unwrap_or(b'A'));
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if chunk.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(n) } else { '=' });
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on invalid input.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// Deterministic xorshift64* generator (for the `garbage` behaviour).
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

const SHA_K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// Streaming SHA-256 (FIPS 180-4), used to fingerprint request bodies without storing them.
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    block: [u8; 64],
    block_len: usize,
    total: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256 {
            state: [
                0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
            ],
            block: [0; 64],
            block_len: 0,
            total: 0,
        }
    }
}

impl Sha256 {
    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let take = (64 - self.block_len).min(data.len());
            let (head, rest) = data.split_at(take);
            if let Some(dst) = self.block.get_mut(self.block_len..self.block_len + take) {
                dst.copy_from_slice(head);
            }
            self.block_len += take;
            data = rest;
            if self.block_len == 64 {
                let block = self.block;
                self.compress(&block);
                self.block_len = 0;
            }
        }
    }

    pub fn finish(mut self) -> [u8; 32] {
        let bit_len = self.total.wrapping_mul(8);
        let pad_len = if self.block_len < 56 {
            56 - self.block_len
        } else {
            120 - self.block_len
        };
        let mut pad = vec![0u8; pad_len];
        if let Some(first) = pad.first_mut() {
            *first = 0x80;
        }
        let total = self.total;
        self.update(&pad);
        self.update(&bit_len.to_be_bytes());
        self.total = total;
        let mut out = [0u8; 32];
        for (dst, word) in out.chunks_mut(4).zip(self.state.iter()) {
            dst.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// Lower-case hex of the digest.
    pub fn finish_hex(self) -> String {
        self.finish().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[allow(clippy::indexing_slicing)] // all indices are bounded by the fixed array sizes (16/64/8).
    fn compress(&mut self, block: &[u8; 64]) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = self.state;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(SHA_K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
}

/// One decoded AWS event-stream message (string-valued headers only are kept verbatim;
/// other header types are rendered with `Debug`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl EventMessage {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Encodes one AWS event-stream message with string (type 7) headers:
/// `total_len u32 | headers_len u32 | prelude_crc u32 | headers | payload | message_crc u32`.
pub fn encode_event(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut hdr = Vec::new();
    for (name, value) in headers {
        let name = name.as_bytes();
        let value = value.as_bytes();
        hdr.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        hdr.extend_from_slice(name.get(..usize::from(u8::MAX)).unwrap_or(name));
        hdr.push(7);
        let vlen = u16::try_from(value.len()).unwrap_or(u16::MAX);
        hdr.extend_from_slice(&vlen.to_be_bytes());
        hdr.extend_from_slice(value.get(..usize::from(vlen)).unwrap_or(value));
    }
    let total = 12 + hdr.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(hdr.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([
        b.first().copied()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

/// Decodes a complete AWS event stream, verifying both CRCs of every message.
pub fn decode_event_stream(mut bytes: &[u8]) -> Result<Vec<EventMessage>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let total = be_u32(bytes, 0).ok_or("truncated prelude")? as usize;
        let headers_len = be_u32(bytes, 4).ok_or("truncated prelude")? as usize;
        let prelude_crc = be_u32(bytes, 8).ok_or("truncated prelude")?;
        let prelude = bytes.get(..8).ok_or("truncated prelude")?;
        if crc32(prelude) != prelude_crc {
            return Err(format!("prelude crc mismatch in message {}", out.len()));
        }
        if total < 16 + headers_len {
            return Err(format!("bad lengths in message {}", out.len()));
        }
        let message = bytes.get(..total).ok_or("truncated message")?;
        let body = message.get(..total - 4).ok_or("truncated message")?;
        let message_crc = be_u32(message, total - 4).ok_or("truncated message")?;
        if crc32(body) != message_crc {
            return Err(format!("message crc mismatch in message {}", out.len()));
        }
        let mut hdr = message.get(12..12 + headers_len).ok_or("truncated headers")?;
        let payload = message.get(12 + headers_len..total - 4).ok_or("bad payload")?;
        let mut headers = Vec::new();
        while let Some((&name_len, rest)) = hdr.split_first() {
            let (name, rest) = rest.split_at_checked(usize::from(name_len)).ok_or("bad header name")?;
            let (&kind, rest) = rest.split_first().ok_or("bad header type")?;
            let fixed = match kind {
                0 | 1 => Some(0),
                2 => Some(1),
                3 => Some(2),
                4 => Some(4),
                5 | 8 => Some(8),
                9 => Some(16),
                6 | 7 => None,
                _ => return Err(format!("unknown header type {kind}")),
            };
            let (value, rest) = match fixed {
                Some(n) => {
                    let (v, rest) = rest.split_at_checked(n).ok_or("bad header value")?;
                    (format!("{kind}:{v:?}"), rest)
                }
                None => {
                    let (len, rest) = rest.split_at_checked(2).ok_or("bad header length")?;
                    let len = usize::from(u16::from_be_bytes([
                        len.first().copied().unwrap_or(0),
                        len.get(1).copied().unwrap_or(0),
                    ]));
                    let (v, rest) = rest.split_at_checked(len).ok_or("bad header value")?;
                    (String::from_utf8_lossy(v).into_owned(), rest)
                }
            };
            headers.push((String::from_utf8_lossy(name).into_owned(), value));
            hdr = rest;
        }
        out.push(EventMessage {
            headers,
            payload: payload.to_vec(),
        });
        bytes = bytes.get(total..).unwrap_or(&[]);
    }
    Ok(out)
}
