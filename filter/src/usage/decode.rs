//! Content codings of a response body (RFC 9110 §8.4.1), undone as the body streams past so its
//! usage can be read: `gzip` (RFC 1952), and `deflate` as a zlib stream (RFC 1950) or, as some
//! servers send it, raw DEFLATE (RFC 1951). Inflating is `miniz_oxide`'s; memory is its 32 KiB
//! window and one output block, whatever the body's size. The client still receives the body as
//! the upstream sent it.

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// Decoded bytes handed to the usage reader at a time.
const BLOCK: usize = 16 * 1024;

/// How a body is coded, from its `content-encoding`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Deflate,
    /// A coding the filter does not decode (`br`, `zstd`, `compress`, several codings).
    Unreadable(String),
}

impl Coding {
    /// The coding of a `content-encoding` value (case-insensitive, `x-gzip` is `gzip`).
    pub fn from_header(value: Option<&str>) -> Coding {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Coding::Identity;
        };
        let codings: Vec<String> = value
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty() && c != "identity")
            .collect();
        match codings.as_slice() {
            [] => Coding::Identity,
            [one] if one == "gzip" || one == "x-gzip" => Coding::Gzip,
            [one] if one == "deflate" => Coding::Deflate,
            _ => Coding::Unreadable(codings.join(", ")),
        }
    }
}

/// Where the gzip member header is (RFC 1952 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GzipHeader {
    /// The fixed 10 bytes; `flags` once byte 3 is read.
    Fixed {
        read: u8,
        flags: u8,
    },
    ExtraLength {
        read: u8,
        len: u16,
        flags: u8,
    },
    Extra {
        left: u16,
        flags: u8,
    },
    Name {
        flags: u8,
    },
    Comment {
        flags: u8,
    },
    HeaderCrc {
        left: u8,
    },
    Done,
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

impl GzipHeader {
    /// The state after the optional fields that follow `flags` from `from` on.
    fn after(flags: u8, from: u8) -> GzipHeader {
        if from <= FEXTRA && flags & FEXTRA != 0 {
            GzipHeader::ExtraLength { read: 0, len: 0, flags }
        } else if from <= FNAME && flags & FNAME != 0 {
            GzipHeader::Name { flags }
        } else if from <= FCOMMENT && flags & FCOMMENT != 0 {
            GzipHeader::Comment { flags }
        } else if flags & FHCRC != 0 {
            GzipHeader::HeaderCrc { left: 2 }
        } else {
            GzipHeader::Done
        }
    }

    /// Consumes header bytes; returns how many, or `None` if this is not a gzip member.
    fn feed(&mut self, input: &[u8]) -> Option<usize> {
        let mut used = 0;
        while *self != GzipHeader::Done {
            let Some(&b) = input.get(used) else {
                break;
            };
            used += 1;
            *self = match *self {
                GzipHeader::Fixed { read, flags } => {
                    let ok = match read {
                        0 => b == 0x1f,
                        1 => b == 0x8b,
                        2 => b == 8,
                        _ => true,
                    };
                    if !ok {
                        return None;
                    }
                    let flags = if read == 3 { b } else { flags };
                    if read == 9 {
                        GzipHeader::after(flags, FEXTRA)
                    } else {
                        GzipHeader::Fixed { read: read + 1, flags }
                    }
                }
                GzipHeader::ExtraLength { read, len, flags } => {
                    let len = len | u16::from(b) << (8 * read);
                    match (read, len) {
                        (0, _) => GzipHeader::ExtraLength { read: 1, len, flags },
                        (_, 0) => GzipHeader::after(flags, FNAME),
                        _ => GzipHeader::Extra { left: len, flags },
                    }
                }
                GzipHeader::Extra { left, flags } => match left - 1 {
                    0 => GzipHeader::after(flags, FNAME),
                    left => GzipHeader::Extra { left, flags },
                },
                GzipHeader::Name { flags } if b == 0 => GzipHeader::after(flags, FCOMMENT),
                GzipHeader::Comment { flags } if b == 0 => GzipHeader::after(flags & !FCOMMENT, FCOMMENT + 1),
                same @ (GzipHeader::Name { .. } | GzipHeader::Comment { .. }) => same,
                GzipHeader::HeaderCrc { left } => match left - 1 {
                    0 => GzipHeader::Done,
                    left => GzipHeader::HeaderCrc { left },
                },
                GzipHeader::Done => GzipHeader::Done,
            };
        }
        Some(used)
    }
}

/// Undoes one body's content coding, chunk by chunk.
pub(crate) struct Decoder {
    coding: Coding,
    header: GzipHeader,
    /// The first bytes of a `deflate` body, until they tell zlib from raw DEFLATE.
    sniff: Vec<u8>,
    state: Option<Box<InflateState>>,
    out: Vec<u8>,
    done: bool,
    failed: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("coding", &self.coding)
            .field("done", &self.done)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Whether two bytes open a zlib stream (RFC 1950 §2.2: CM 8, and the header check).
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

impl Decoder {
    pub(crate) fn new(coding: Coding) -> Decoder {
        let state = (coding == Coding::Gzip).then(|| InflateState::new_boxed(DataFormat::Raw));
        Decoder {
            coding,
            header: GzipHeader::Fixed { read: 0, flags: 0 },
            sniff: Vec::new(),
            state,
            out: Vec::new(),
            done: false,
            failed: false,
        }
    }

    pub(crate) fn coding(&self) -> &Coding {
        &self.coding
    }

    /// The coded body could not be decoded (it was not what its header said).
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Decodes the next coded bytes, handing decoded bytes to `sink` as they come.
    pub(crate) fn feed(&mut self, mut input: &[u8], sink: &mut dyn FnMut(&[u8])) {
        match self.coding {
            Coding::Identity => return sink(input),
            Coding::Unreadable(_) => return,
            Coding::Gzip | Coding::Deflate => {}
        }
        if self.done || self.failed || input.is_empty() {
            return;
        }
        if self.coding == Coding::Gzip && self.header != GzipHeader::Done {
            match self.header.feed(input) {
                Some(used) => input = input.get(used..).unwrap_or_default(),
                None => {
                    self.failed = true;
                    return;
                }
            }
        }
        if self.coding == Coding::Deflate && self.state.is_none() {
            self.sniff.extend_from_slice(input);
            let (Some(&cmf), Some(&flg)) = (self.sniff.first(), self.sniff.get(1)) else {
                return;
            };
            let format = if is_zlib_header(cmf, flg) {
                DataFormat::Zlib
            } else {
                DataFormat::Raw
            };
            self.state = Some(InflateState::new_boxed(format));
            let sniffed = std::mem::take(&mut self.sniff);
            self.inflate(&sniffed, sink);
            return;
        }
        self.inflate(input, sink);
    }

    fn inflate(&mut self, mut input: &[u8], sink: &mut dyn FnMut(&[u8])) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        if self.out.len() < BLOCK {
            self.out.resize(BLOCK, 0);
        }
        while !input.is_empty() && !self.done {
            let result = inflate(state, input, &mut self.out, MZFlush::None);
            input = input.get(result.bytes_consumed..).unwrap_or_default();
            if let Some(decoded) = self.out.get(..result.bytes_written).filter(|d| !d.is_empty()) {
                sink(decoded);
            }
            match result.status {
                Ok(MZStatus::StreamEnd) => self.done = true,
                Ok(_) if result.bytes_consumed == 0 && result.bytes_written == 0 => break,
                Ok(_) => {}
                // No progress with this input: wait for more.
                Err(MZError::Buf) => break,
                Err(_) => {
                    self.failed = true;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniz_oxide::deflate::{compress_to_vec, compress_to_vec_zlib};

    const TEXT: &[u8] = br#"{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4}}"#;

    fn gzip(body: &[u8], flags: u8, extra: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3];
        out.extend_from_slice(extra);
        out.extend_from_slice(&compress_to_vec(body, 6));
        out.extend_from_slice(&[0; 8]);
        out
    }

    fn decode_in_pieces(coding: Coding, coded: &[u8], piece: usize) -> (Vec<u8>, bool) {
        let mut d = Decoder::new(coding);
        let mut out = Vec::new();
        for p in coded.chunks(piece.max(1)) {
            d.feed(p, &mut |b| out.extend_from_slice(b));
        }
        (out, d.failed())
    }

    #[test]
    fn gzip_and_both_deflates_decode_at_every_split() {
        let big: Vec<u8> = TEXT.iter().cycle().take(200_000).copied().collect();
        let name_and_comment = {
            let mut e = b"body.json\0a comment\0".to_vec();
            e.extend_from_slice(&[0xaa, 0xbb]);
            e
        };
        let cases = [
            (Coding::Gzip, gzip(TEXT, 0, &[])),
            (Coding::Gzip, gzip(TEXT, FEXTRA, &[3, 0, 1, 2, 3])),
            (Coding::Gzip, gzip(TEXT, FNAME | FCOMMENT | FHCRC, &name_and_comment)),
            (Coding::Deflate, compress_to_vec_zlib(TEXT, 6)),
            (Coding::Deflate, compress_to_vec(TEXT, 6)),
        ];
        for (coding, coded) in &cases {
            for piece in 1..=coded.len() {
                let (out, failed) = decode_in_pieces(coding.clone(), coded, piece);
                assert!(!failed, "{coding:?} piece {piece}");
                assert_eq!(out, TEXT, "{coding:?} piece {piece}");
            }
        }
        let (out, failed) = decode_in_pieces(Coding::Gzip, &gzip(&big, 0, &[]), 777);
        assert!(!failed);
        assert_eq!(out, big);
    }

    #[test]
    fn codings_are_read_from_the_header() {
        assert_eq!(Coding::from_header(None), Coding::Identity);
        assert_eq!(Coding::from_header(Some(" GZIP ")), Coding::Gzip);
        assert_eq!(Coding::from_header(Some("x-gzip")), Coding::Gzip);
        assert_eq!(Coding::from_header(Some("deflate")), Coding::Deflate);
        assert_eq!(Coding::from_header(Some("identity")), Coding::Identity);
        assert_eq!(Coding::from_header(Some("br")), Coding::Unreadable("br".into()));
        assert_eq!(
            Coding::from_header(Some("gzip, br")),
            Coding::Unreadable("gzip, br".into())
        );
    }

    #[test]
    fn garbage_fails_without_panicking() {
        let (out, failed) = decode_in_pieces(Coding::Gzip, b"not gzip at all", 3);
        assert!(failed && out.is_empty());
        let mut broken = gzip(TEXT, 0, &[]);
        if let Some(b) = broken.get_mut(14) {
            *b ^= 0xff;
        }
        let _ = decode_in_pieces(Coding::Gzip, &broken, 5);
        let _ = decode_in_pieces(Coding::Deflate, &[0xff; 64], 7);
        let (out, _) = decode_in_pieces(Coding::Unreadable("br".into()), TEXT, 4);
        assert!(out.is_empty());
    }
}
