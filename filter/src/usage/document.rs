//! Reads the JSON documents of one response (a whole body, or one SSE event, NDJSON line
//! or event-stream payload at a time) with a [`JsonScanner`] over the family's usage
//! fields, and folds what each complete document holds into the running [`Usage`].

use super::providers::{fields, final_signals, parse_count, tool_paths, Field, Final, Slot, Tally, ToolPaths};
use super::{ApiFamily, ToolCall, Usage, MAX_TOOL_CALLS};
use crate::json_scan::{JsonPaths, JsonScalar, JsonScanner};
use std::cell::RefCell;
use std::rc::Rc;

/// Longest model name or response id kept, in bytes; longer ones are ignored.
pub(crate) const MAX_TEXT_BYTES: usize = 256;

/// The end-of-stream marker OpenAI-style streams send as an event's data.
const DONE: &[u8] = b"[DONE]";

/// Where a framer (SSE, NDJSON) hands the documents of a body: each one's bytes as they come,
/// then its end.
pub trait DocumentSink {
    fn feed(&mut self, bytes: &[u8]);
    fn end_document(&mut self);
}

impl DocumentSink for DocumentReader {
    fn feed(&mut self, bytes: &[u8]) {
        DocumentReader::feed(self, bytes);
    }

    fn end_document(&mut self) {
        DocumentReader::end_document(self);
    }
}

thread_local! {
    /// Each family's paths, compiled once per VM (a VM is one thread).
    static FAMILY_PATHS: RefCell<Vec<(ApiFamily, Rc<JsonPaths>)>> = const { RefCell::new(Vec::new()) };
}

/// The paths a family's documents are scanned for: usage fields, final signals, tool calls.
fn family_paths(family: ApiFamily) -> Rc<JsonPaths> {
    FAMILY_PATHS.with(|cache| {
        if let Some((_, paths)) = cache.borrow().iter().find(|(f, _)| *f == family) {
            return paths.clone();
        }
        let paths: Vec<Vec<String>> = fields(family)
            .iter()
            .map(|(_, path)| path)
            .chain(final_signals(family).iter().map(|(path, _)| path))
            .chain(tool_paths(family).iter().flat_map(|(name, id)| [name, id]))
            .map(|path| path.iter().map(|c| (*c).to_string()).collect())
            .collect();
        let compiled = JsonPaths::new(paths);
        cache.borrow_mut().push((family, compiled.clone()));
        compiled
    })
}

#[derive(Debug, Clone)]
pub(crate) struct DocumentReader {
    family: ApiFamily,
    fields: &'static [Field],
    signals: &'static [(&'static [&'static str], Final)],
    tools: &'static [ToolPaths],
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
        let tools = tool_paths(family);
        let first_tool = fields.len() + signals.len();
        let mut scanner = JsonScanner::with_paths(family_paths(family), MAX_TEXT_BYTES)
            .collect_paths(first_tool..first_tool + 2 * tools.len());
        if family == ApiFamily::Gemini {
            // Vertex `streamGenerateContent` without `alt=sse` answers a JSON array.
            scanner = scanner.match_top_level_array_elements();
        }
        DocumentReader {
            family,
            fields,
            signals,
            tools,
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

    /// Adds the tool calls this document names (each id once; a call without an id by name).
    fn collect_tool_calls(&mut self) {
        let first = self.fields.len() + self.signals.len();
        for k in 0..self.tools.len() {
            let text = |i: usize| -> Vec<String> {
                self.scanner
                    .collected(i)
                    .iter()
                    .filter_map(|v| match v {
                        JsonScalar::String(s) if !s.is_empty() => Some(s.clone()),
                        _ => None,
                    })
                    .collect()
            };
            let names = text(first + 2 * k);
            if names.is_empty() {
                continue;
            }
            let ids = text(first + 2 * k + 1);
            // Ids pair with names only when every call carries one.
            let ids: Vec<Option<String>> = if ids.len() == names.len() {
                ids.into_iter().map(Some).collect()
            } else {
                vec![None; names.len()]
            };
            for (name, id) in names.into_iter().zip(ids) {
                let known = self.usage.tool_calls.iter().any(|t| match (&t.id, &id) {
                    (Some(a), Some(b)) => a == b,
                    _ => false,
                });
                if !known && self.usage.tool_calls.len() < MAX_TOOL_CALLS {
                    self.usage.tool_calls.push(ToolCall { name, id });
                }
            }
        }
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
        let mut changed = false;
        for (index, (slot, _)) in self.fields.iter().enumerate() {
            let slot_bit = 1u8 << (*slot as u8);
            if filled & slot_bit != 0 {
                continue;
            }
            let taken = match (slot, self.scanner.value(index)) {
                (Slot::Model | Slot::Id, Some(JsonScalar::String(text))) if !text.is_empty() => {
                    changed |= self.tally.set_text(*slot, text);
                    true
                }
                (Slot::Model | Slot::Id, _) => false,
                (_, Some(JsonScalar::Number(raw))) => match parse_count(raw) {
                    Some(count) => {
                        changed |= self.tally.set_count(*slot, count);
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
        // The usage follows the tally: rebuilt only when a document changed it.
        if changed {
            let tool_calls = std::mem::take(&mut self.usage.tool_calls);
            self.usage = self.tally.usage(self.family);
            self.usage.tool_calls = tool_calls;
        }
        self.collect_tool_calls();
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
