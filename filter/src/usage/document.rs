//! Reads the JSON documents of one response (a whole body, or one SSE event, NDJSON line
//! or event-stream payload at a time) with a [`JsonScanner`] over the family's usage
//! fields, and folds what each complete document holds into the running [`Usage`].

use super::providers::{fields, parse_count, Field, Slot, Tally};
use super::{ApiFamily, Usage};
use crate::json_scan::{JsonScalar, JsonScanner};

/// Longest model name or response id kept, in bytes; longer ones are ignored.
pub(crate) const MAX_TEXT_BYTES: usize = 256;

#[derive(Debug, Clone)]
pub(crate) struct DocumentReader {
    family: ApiFamily,
    fields: &'static [Field],
    scanner: JsonScanner,
    tally: Tally,
    usage: Usage,
}

impl DocumentReader {
    pub(crate) fn new(family: ApiFamily) -> Self {
        let fields = fields(family);
        let paths = fields
            .iter()
            .map(|(_, path)| path.iter().map(|c| (*c).to_string()).collect())
            .collect();
        let mut scanner = JsonScanner::new(paths, MAX_TEXT_BYTES);
        if family == ApiFamily::Gemini {
            // Vertex `streamGenerateContent` without `alt=sse` answers a JSON array.
            scanner = scanner.match_top_level_array_elements();
        }
        DocumentReader {
            family,
            fields,
            scanner,
            tally: Tally::default(),
            usage: Usage::default(),
        }
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.scanner.feed(bytes);
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.scanner.is_complete()
    }

    /// Ends the current document; its values count only if it was a complete JSON value.
    pub(crate) fn end_document(&mut self) {
        if self.scanner.is_complete() {
            self.apply();
        }
        self.scanner.reset();
    }

    /// Ends the current document keeping the values found so far, complete or not.
    pub(crate) fn end_partial_document(&mut self) {
        self.apply();
        self.scanner.reset();
    }

    /// Drops the current document without reading it.
    pub(crate) fn discard_document(&mut self) {
        self.scanner.reset();
    }

    pub(crate) fn usage(&self) -> &Usage {
        &self.usage
    }

    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.scanner.buffered_bytes()
    }

    fn apply(&mut self) {
        let mut filled: u8 = 0;
        for (index, (slot, _)) in self.fields.iter().enumerate() {
            let slot_bit = 1u8 << (*slot as u8);
            if filled & slot_bit != 0 {
                continue;
            }
            let taken = match (slot, self.scanner.value(index)) {
                (Slot::Model | Slot::Id, Some(JsonScalar::String(text))) if !text.is_empty() => {
                    self.tally.set_text(*slot, text.clone());
                    true
                }
                (Slot::Model | Slot::Id, _) => false,
                (_, Some(JsonScalar::Number(raw))) => match parse_count(raw) {
                    Some(count) => {
                        self.tally.set_count(*slot, count);
                        true
                    }
                    None => false,
                },
                _ => false,
            };
            if taken {
                filled |= slot_bit;
            }
        }
        if filled != 0 {
            self.usage = self.tally.usage(self.family);
        }
    }
}
