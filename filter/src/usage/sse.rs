//! Incremental Server-Sent Events framing per the WHATWG HTML "event stream
//! interpretation" rules: lines end in LF, CRLF or CR; `field: value` with one optional
//! space; `:` starts a comment; `data` lines of one event are joined with LF; a blank line
//! dispatches the event. Data bytes go straight into a [`DocumentSink`], never into
//! a buffer, so an event of any size costs constant memory.
//!
//! The event name (`event:`) is not needed: every supported provider repeats what matters
//! inside the data JSON, so it is read like any unknown field and ignored.

use super::document::DocumentSink;
use crate::find::{first_stop, Stops};

/// Longest field name kept (with room for a leading UTF-8 BOM); longer names are unknown fields.
const MAX_FIELD_NAME_BYTES: usize = 16;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the first LF or CR in `bytes` is: data lines are most of a stream.
fn line_end(bytes: &[u8]) -> Option<usize> {
    first_stop(
        bytes,
        Stops {
            a: b'\n',
            b: b'\r',
            controls: false,
        },
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Reading the field name, up to `:` or the end of the line.
    FieldName,
    /// Just after `field:`, where one space is skipped.
    ValueStart { data: bool },
    /// Reading a value; `data` values are fed to the document reader.
    Value { data: bool },
    /// Skipping a comment line.
    Comment,
}

#[derive(Debug, Clone)]
pub struct SseFramer {
    line: Line,
    field_name: [u8; MAX_FIELD_NAME_BYTES],
    field_name_len: usize,
    field_name_overflow: bool,
    /// The previous byte was a CR, so an LF right after it belongs to the same line end.
    after_cr: bool,
    first_line: bool,
    /// `data` lines seen in the current event.
    data_lines: usize,
}

impl Default for SseFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl SseFramer {
    pub fn new() -> Self {
        SseFramer {
            line: Line::FieldName,
            field_name: [0; MAX_FIELD_NAME_BYTES],
            field_name_len: 0,
            field_name_overflow: false,
            after_cr: false,
            first_line: true,
            data_lines: 0,
        }
    }

    pub fn feed(&mut self, chunk: &[u8], doc: &mut dyn DocumentSink) {
        let mut rest = chunk;
        while let Some((&first, _)) = rest.split_first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    rest = rest.get(1..).unwrap_or(&[]);
                    continue;
                }
            }
            let used = self.step(rest, doc);
            rest = rest.get(used..).unwrap_or(&[]);
        }
    }

    /// The stream ended: an event still waiting for its blank line is read if its data
    /// is a complete JSON document (stricter framing would drop it).
    pub fn finish(&mut self, doc: &mut dyn DocumentSink) {
        if self.data_lines > 0 {
            doc.end_document();
            self.data_lines = 0;
        }
    }

    /// Consumes the start of `rest` and returns how much was used (0 only when a field's
    /// value begins without the optional space).
    fn step(&mut self, rest: &[u8], doc: &mut dyn DocumentSink) -> usize {
        let line_end = || line_end(rest);
        match self.line {
            Line::FieldName => {
                let stop = rest
                    .iter()
                    .position(|&b| b == b':' || b == b'\n' || b == b'\r')
                    .unwrap_or(rest.len());
                self.push_field_name(rest.get(..stop).unwrap_or(&[]));
                match rest.get(stop) {
                    Some(b':') => {
                        self.line = if self.field_name_len == 0 && !self.field_name_overflow {
                            Line::Comment
                        } else {
                            Line::ValueStart {
                                data: self.is_data_field(),
                            }
                        };
                    }
                    Some(&end) => {
                        if self.field_name_len == 0 && !self.field_name_overflow {
                            self.dispatch(doc);
                        } else if self.is_data_field() {
                            // `data` with no colon: an empty data line.
                            self.begin_data_line(doc);
                        }
                        self.end_line(end);
                    }
                    None => {}
                }
                (stop + 1).min(rest.len())
            }
            Line::ValueStart { data } => {
                if data {
                    self.begin_data_line(doc);
                }
                self.line = Line::Value { data };
                usize::from(rest.first() == Some(&b' '))
            }
            Line::Value { data } => {
                let value_len = line_end().unwrap_or(rest.len());
                if data {
                    doc.feed(rest.get(..value_len).unwrap_or(&[]));
                }
                match rest.get(value_len) {
                    Some(&end) => {
                        self.end_line(end);
                        value_len + 1
                    }
                    None => value_len,
                }
            }
            Line::Comment => match line_end().and_then(|at| rest.get(at).map(|&b| (at, b))) {
                Some((at, end)) => {
                    self.end_line(end);
                    at + 1
                }
                None => rest.len(),
            },
        }
    }

    fn push_field_name(&mut self, bytes: &[u8]) {
        let end = self.field_name_len.saturating_add(bytes.len());
        match self.field_name.get_mut(self.field_name_len..end) {
            Some(slot) if !self.field_name_overflow => {
                slot.copy_from_slice(bytes);
                self.field_name_len = end;
            }
            _ => self.field_name_overflow = true,
        }
    }

    fn is_data_field(&self) -> bool {
        if self.field_name_overflow {
            return false;
        }
        let mut name = self.field_name.get(..self.field_name_len).unwrap_or(&[]);
        if self.first_line {
            name = name.strip_prefix(BOM).unwrap_or(name);
        }
        name == b"data"
    }

    fn begin_data_line(&mut self, doc: &mut dyn DocumentSink) {
        if self.data_lines > 0 {
            doc.feed(b"\n");
        }
        self.data_lines = self.data_lines.saturating_add(1);
    }

    fn dispatch(&mut self, doc: &mut dyn DocumentSink) {
        if self.data_lines > 0 {
            doc.end_document();
        }
        self.data_lines = 0;
    }

    fn end_line(&mut self, end: u8) {
        self.after_cr = end == b'\r';
        self.line = Line::FieldName;
        self.field_name_len = 0;
        self.field_name_overflow = false;
        self.first_line = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use crate::usage::{ApiFamily, BodyFormat, Usage, UsageReader};

    /// Reads an OpenAI chat SSE body whole, at every split point and byte by byte.
    fn read(body: &[u8]) -> Usage {
        let read_with = |parts: &[&[u8]]| {
            let mut reader = UsageReader::new(ApiFamily::OpenAiChat, BodyFormat::Sse);
            parts.iter().for_each(|p| reader.feed(p));
            reader.finish();
            reader.usage().clone()
        };
        let whole = read_with(&[body]);
        for split in 0..=body.len() {
            assert_eq!(read_with(&[&body[..split], &body[split..]]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(read_with(&bytes), whole, "byte at a time");
        whole
    }

    const USAGE: &str = r#"{"usage":{"prompt_tokens":3,"completion_tokens":4}}"#;

    #[test]
    fn line_ends_are_found_at_every_offset() {
        for len in 0..40 {
            for at in 0..=len {
                for end in [b'\n', b'\r'] {
                    let mut bytes = vec![b'x'; len];
                    // Bytes that differ from LF and CR by one bit, around the line end.
                    bytes.iter_mut().step_by(3).for_each(|b| *b = 0x0b);
                    bytes.iter_mut().skip(1).step_by(5).for_each(|b| *b = 0x8d);
                    let expected = (at < len).then_some(at);
                    if let Some(slot) = bytes.get_mut(at) {
                        *slot = end;
                    }
                    assert_eq!(super::line_end(&bytes), expected, "len {len} at {at}");
                }
            }
        }
    }

    #[test]
    fn data_lines_of_one_event_join_with_newlines() {
        let body = "data: {\"usage\":\ndata: {\"prompt_tokens\":3,\ndata:\"completion_tokens\":4}}\n\n";
        assert_eq!(read(body.as_bytes()).output_tokens, Some(4));
        // `data` alone is an empty data line.
        let body = "data: {\"usage\":\ndata\ndata: {\"prompt_tokens\":3}}\n\n";
        assert_eq!(read(body.as_bytes()).input_tokens, Some(3));
    }

    #[test]
    fn comments_other_fields_and_a_bom_are_ignored() {
        let body = format!(
            "\u{feff}: keep-alive\nid: 7\nretry: 1000\nevent: message\nfoo: data: no\nverylongfieldname_data: x\n:data: {USAGE}\ndata:{USAGE}\n\n"
        );
        let usage = read(body.as_bytes());
        assert_eq!((usage.input_tokens, usage.output_tokens), (Some(3), Some(4)));
        let body = format!("\u{feff}data: {USAGE}\n\n");
        assert_eq!(read(body.as_bytes()).input_tokens, Some(3));
    }

    #[test]
    fn only_one_space_after_the_colon_is_skipped() {
        // The value keeps its second space, which is JSON whitespace anyway.
        let body = format!("data:  {USAGE}\n\n");
        assert_eq!(read(body.as_bytes()).input_tokens, Some(3));
    }

    #[test]
    fn an_event_without_its_blank_line_counts_at_the_end_if_complete() {
        let body = format!("data: {USAGE}\n");
        assert_eq!(read(body.as_bytes()).input_tokens, Some(3));
        let body = format!("data: {USAGE}");
        assert_eq!(read(body.as_bytes()).input_tokens, Some(3));
        let cut = &USAGE[..USAGE.len() - 1];
        let body = format!("data: {cut}");
        assert_eq!(read(body.as_bytes()).input_tokens, None);
    }

    #[test]
    fn events_that_are_not_json_are_ignored() {
        let body = format!(
            "data: [DONE]\n\ndata: {USAGE}\n\ndata: {{\"usage\":{{\"prompt_tokens\":9}}}} trailing\n\ndata: [DONE]\n\n"
        );
        assert_eq!(read(body.as_bytes()).input_tokens, Some(3));
        let body = "data: {\"usage\":{\"prompt_tokens\":9}\n\ndata: }\n\n";
        assert_eq!(read(body.as_bytes()).input_tokens, None);
    }

    #[test]
    fn blank_lines_between_events_and_mixed_line_endings() {
        let body = format!("\n\r\n\rdata: {USAGE}\r\n\r\n\n\r\rdata: {{\"model\":\"m\"}}\r\r");
        let usage = read(body.as_bytes());
        assert_eq!(usage.input_tokens, Some(3));
        assert_eq!(usage.response_model.as_deref(), Some("m"));
    }
}
