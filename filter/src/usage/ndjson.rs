//! Incremental newline-delimited JSON framing (NDJSON / JSON Lines, as streamed by the
//! Ollama API): each LF-terminated line is one JSON document, fed straight into the
//! [`DocumentReader`] without buffering; a CR before the LF is JSON whitespace.

use super::document::DocumentReader;
use crate::find::{first_stop, Stops};

#[derive(Debug, Clone, Default)]
pub(crate) struct NdjsonFramer;

impl NdjsonFramer {
    pub(crate) fn new() -> Self {
        NdjsonFramer
    }

    pub(crate) fn feed(&mut self, chunk: &[u8], doc: &mut DocumentReader) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match first_stop(
                rest,
                Stops {
                    a: b'\n',
                    b: b'\n',
                    controls: false,
                },
            ) {
                Some(at) => {
                    doc.feed(rest.get(..at).unwrap_or(&[]));
                    doc.end_document();
                    rest = rest.get(at + 1..).unwrap_or(&[]);
                }
                None => {
                    doc.feed(rest);
                    rest = &[];
                }
            }
        }
    }

    /// The stream ended: a last line without its LF counts if it is a complete document.
    pub(crate) fn finish(&mut self, doc: &mut DocumentReader) {
        doc.end_document();
    }
}
