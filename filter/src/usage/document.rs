//! Reads the JSON documents of one response (a whole body, or one SSE event, NDJSON line
//! or event-stream payload at a time) with a [`JsonScanner`] over the family's usage
//! fields, and folds what each complete document holds into the running [`Usage`].

use super::providers::{fields, final_signals, parse_count, Field, Final, Slot, Tally};
use super::{ApiFamily, Usage};
use crate::json_scan::{JsonScalar, JsonScanner};

/// Longest model name or response id kept, in bytes; longer ones are ignored.
pub(crate) const MAX_TEXT_BYTES: usize = 256;

/// The end-of-stream marker OpenAI-style streams send as an event's data.
const DONE: &[u8] = b"[DONE]";

#[derive(Debug, Clone)]
pub(crate) struct DocumentReader {
    family: ApiFamily,
    fields: &'static [Field],
    signals: &'static [(&'static [&'static str], Final)],
    scanner: JsonScanner,
    tally: Tally,
    usage: Usage,
    /// The first bytes of the current document, to recognise `[DONE]`.
    head: [u8; 8],
    head_len: usize,
    /// The protocol's final event has been read.
    final_seen: bool,
}

impl DocumentReader {
    pub(crate) fn new(family: ApiFamily) -> Self {
        let fields = fields(family);
        let signals = final_signals(family);
        let paths = fields
            .iter()
            .map(|(_, path)| path)
            .chain(signals.iter().map(|(path, _)| path))
            .map(|path| path.iter().map(|c| (*c).to_string()).collect())
            .collect();
        let mut scanner = JsonScanner::new(paths, MAX_TEXT_BYTES);
        if family == ApiFamily::Gemini {
            // Vertex `streamGenerateContent` without `alt=sse` answers a JSON array.
            scanner = scanner.match_top_level_array_elements();
        }
        DocumentReader {
            family,
            fields,
            signals,
            scanner,
            tally: Tally::default(),
            usage: Usage::default(),
            head: [0; 8],
            head_len: 0,
            final_seen: false,
        }
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for (slot, b) in self.head.iter_mut().skip(self.head_len).zip(bytes) {
            *slot = *b;
        }
        self.head_len = (self.head_len + bytes.len()).min(self.head.len());
        self.scanner.feed(bytes);
    }

    /// The response's final event has been read (or a stream said it is done).
    pub(crate) fn final_seen(&self) -> bool {
        self.final_seen
    }

    /// Marks the response as complete (a framing-level final event, such as Bedrock's `metadata`).
    pub(crate) fn mark_final(&mut self) {
        self.final_seen = true;
    }

    fn new_document(&mut self) {
        self.scanner.reset();
        self.head_len = 0;
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.scanner.is_complete()
    }

    /// Ends the current document; its values count only if it was a complete JSON value.
    pub(crate) fn end_document(&mut self) {
        let head = self.head.get(..self.head_len).unwrap_or_default();
        if head.trim_ascii() == DONE {
            self.final_seen = true;
        }
        if self.scanner.is_complete() {
            self.apply();
        }
        self.new_document();
    }

    /// Ends the current document keeping the values found so far, complete or not.
    pub(crate) fn end_partial_document(&mut self) {
        self.apply();
        self.new_document();
    }

    /// Drops the current document without reading it.
    pub(crate) fn discard_document(&mut self) {
        self.new_document();
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
        for (i, (_, signal)) in self.signals.iter().enumerate() {
            let value = self.scanner.value(self.fields.len() + i);
            let is_final = match (signal, value) {
                (Final::OneOf(words), Some(JsonScalar::String(s))) => words.contains(&s.as_str()),
                (Final::True, Some(JsonScalar::Bool(true))) => true,
                (Final::Present, Some(JsonScalar::String(s))) => !s.is_empty(),
                _ => false,
            };
            if is_final {
                self.final_seen = true;
            }
        }
    }
}
