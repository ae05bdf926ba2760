//! Response content codings for the mock model server: `accept-encoding` negotiation (RFC 9110
//! §12.5.3, with q-values) and encoders that can be flushed after every write, so a compressed
//! stream still delivers each event as it is generated.
//!
//! `gzip` and `deflate` (the zlib format, RFC 1950, which is what HTTP's `deflate` means) are
//! negotiated; `br` and `zstd` are only sent when a test forces them (`encoding=br|zstd`). All four
//! produce real bytes: brotli with a sync flush per write, zstd as one frame per write (a zstd
//! stream may hold several frames, RFC 8878 §3.1).

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// A response content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coding {
    #[default]
    Identity,
    Gzip,
    Deflate,
    Br,
    Zstd,
}

impl Coding {
    /// The `content-encoding` token.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// Parses a coding token (case-insensitive); `x-gzip` is `gzip` (RFC 9110 §8.4.1.3).
    pub fn parse(token: &str) -> Option<Coding> {
        match token.trim().to_ascii_lowercase().as_str() {
            "identity" => Some(Coding::Identity),
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Br),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }
}

/// Parses a q-value (`q=0.5`); anything unreadable counts as 0 (not acceptable).
fn qvalue(params: &str) -> Option<f32> {
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("q").then(|| {
            v.trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(0.0)
        })
    })
}

/// Chooses the coding for a response from every `accept-encoding` value the request carried:
/// the acceptable negotiable coding (`gzip`, then `deflate`) with the highest q-value, where `*`
/// stands for any coding not named. No header, or nothing acceptable, means identity.
pub fn negotiate(accept: &[&str]) -> Coding {
    let mut named: Vec<(String, f32)> = Vec::new();
    for item in accept.iter().flat_map(|v| v.split(',')) {
        let (token, params) = item.split_once(';').unwrap_or((item, ""));
        let token = token.trim().to_ascii_lowercase();
        if token.is_empty() {
            continue;
        }
        named.push((token, qvalue(params).unwrap_or(1.0)));
    }
    let q_of = |name: &str| {
        named
            .iter()
            .find(|(t, _)| t == name || (name == "gzip" && t == "x-gzip"))
            .or_else(|| named.iter().find(|(t, _)| t == "*"))
            .map_or(0.0, |(_, q)| *q)
    };
    let mut best = (Coding::Identity, 0.0f32);
    for coding in [Coding::Gzip, Coding::Deflate] {
        let q = q_of(coding.name());
        if q > best.1 {
            best = (coding, q);
        }
    }
    best.0
}

/// A writer whose bytes can be taken out while an encoder still holds it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Identity,
    Gzip(flate2::write::GzEncoder<Shared>),
    Deflate(flate2::write::ZlibEncoder<Shared>),
    Br(Box<brotli::CompressorWriter<Shared>>),
    Zstd,
}

/// A streaming encoder: [`Encoder::push`] returns the bytes that decode to everything pushed so
/// far, [`Encoder::finish`] the stream's trailer.
pub struct Encoder {
    out: Shared,
    inner: Inner,
}

impl Encoder {
    pub fn new(coding: Coding) -> Encoder {
        let out = Shared::default();
        let level = flate2::Compression::fast();
        let inner = match coding {
            Coding::Identity => Inner::Identity,
            Coding::Gzip => Inner::Gzip(flate2::write::GzEncoder::new(out.clone(), level)),
            Coding::Deflate => Inner::Deflate(flate2::write::ZlibEncoder::new(out.clone(), level)),
            Coding::Br => Inner::Br(Box::new(brotli::CompressorWriter::new(out.clone(), 4096, 5, 22))),
            Coding::Zstd => Inner::Zstd,
        };
        Encoder { out, inner }
    }

    /// Encodes `data` and flushes, so the peer can decode everything up to here.
    pub fn push(&mut self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        match &mut self.inner {
            Inner::Identity => return Ok(data.to_vec()),
            Inner::Gzip(e) => {
                e.write_all(data)?;
                e.flush()?;
            }
            Inner::Deflate(e) => {
                e.write_all(data)?;
                e.flush()?;
            }
            Inner::Br(e) => {
                e.write_all(data)?;
                e.flush()?;
            }
            Inner::Zstd => {
                if !data.is_empty() {
                    return Ok(ruzstd::encoding::compress_to_vec(
                        data,
                        ruzstd::encoding::CompressionLevel::Fastest,
                    ));
                }
            }
        }
        Ok(self.out.take())
    }

    /// Ends the encoded stream, returning its last bytes (the gzip trailer, the final brotli
    /// meta-block…).
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        match self.inner {
            Inner::Identity | Inner::Zstd => {}
            Inner::Gzip(e) => {
                e.finish()?;
            }
            Inner::Deflate(e) => {
                e.finish()?;
            }
            Inner::Br(e) => {
                drop(e.into_inner());
            }
        }
        Ok(self.out.take())
    }
}

/// Encodes a whole body.
pub fn encode_all(coding: Coding, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = Encoder::new(coding);
    let mut out = e.push(data)?;
    out.extend(e.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use std::io::Read;

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(negotiate(&[]), Coding::Identity);
        assert_eq!(negotiate(&["gzip, deflate"]), Coding::Gzip);
        assert_eq!(negotiate(&["deflate, gzip;q=0.5"]), Coding::Deflate);
        assert_eq!(negotiate(&["gzip;q=0, deflate"]), Coding::Deflate);
        assert_eq!(negotiate(&["identity"]), Coding::Identity);
        assert_eq!(negotiate(&["br, zstd"]), Coding::Identity);
        assert_eq!(negotiate(&["*"]), Coding::Gzip);
        assert_eq!(negotiate(&["*;q=0.3, gzip;q=0"]), Coding::Deflate);
        assert_eq!(negotiate(&["GZIP;Q=0.9", "deflate;q=0.8"]), Coding::Gzip);
        assert_eq!(negotiate(&["x-gzip"]), Coding::Gzip);
        assert_eq!(negotiate(&["gzip;q=nonsense, deflate;q=0.1"]), Coding::Deflate);
    }

    fn inflate(coding: Coding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => {
                flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).unwrap();
            }
            Coding::Deflate => {
                flate2::read::ZlibDecoder::new(data).read_to_end(&mut out).unwrap();
            }
            Coding::Br => {
                brotli::Decompressor::new(data, 4096).read_to_end(&mut out).unwrap();
            }
            Coding::Zstd => {
                let mut rest = data;
                while !rest.is_empty() {
                    let mut d = ruzstd::decoding::StreamingDecoder::new(&mut rest).unwrap();
                    d.read_to_end(&mut out).unwrap();
                }
            }
            Coding::Identity => out = data.to_vec(),
        }
        out
    }

    #[test]
    fn every_coding_round_trips_and_flushes_per_write() {
        for coding in [
            Coding::Gzip,
            Coding::Deflate,
            Coding::Br,
            Coding::Zstd,
            Coding::Identity,
        ] {
            let mut e = Encoder::new(coding);
            let mut wire = Vec::new();
            let mut sent = Vec::new();
            for piece in [
                &b"data: {\"a\":1}\n\n"[..],
                b"data: {\"b\":2}\n\n",
                b"",
                b"data: [DONE]\n\n",
            ] {
                let bytes = e.push(piece).unwrap();
                sent.extend_from_slice(piece);
                assert!(piece.is_empty() || !bytes.is_empty(), "{coding:?} held back a write");
                wire.extend(bytes);
            }
            wire.extend(e.finish().unwrap());
            assert_eq!(inflate(coding, &wire), sent, "{coding:?}");
            let whole = encode_all(coding, b"{\"usage\":{}}").unwrap();
            assert_eq!(inflate(coding, &whole), b"{\"usage\":{}}", "{coding:?}");
        }
    }
}
