//! Streaming access logs line by line in constant memory: files, gzip files (detected by their
//! magic bytes), and standard input (`-`). A line longer than [`MAX_LINE_BYTES`] is skipped without
//! being held in memory and counted as oversized.

use crate::record::{parse_line, Event, NotRecord, Record};
use flate2::bufread::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// The longest line read. A record is a few kilobytes (each value is at most 8 KiB by the
/// filter's own limit), so anything longer is not one.
pub const MAX_LINE_BYTES: usize = 1 << 20;

const BUF_BYTES: usize = 256 * 1024;

/// One opened input.
pub struct Input {
    pub name: String,
    reader: Box<dyn BufRead>,
}

/// Opens every input before any is read, so that a missing file fails before any output.
pub fn open_all(paths: &[String]) -> Result<Vec<Input>, String> {
    let mut out = Vec::with_capacity(paths.len());
    let mut stdin_used = false;
    for p in paths {
        if p == "-" {
            if stdin_used {
                return Err("standard input (-) can be named only once".to_string());
            }
            stdin_used = true;
            out.push(wrap("-".to_string(), Box::new(io::stdin()))?);
            continue;
        }
        let path = Path::new(p);
        if path.is_dir() {
            return Err(format!("{p}: is a directory, not a log file"));
        }
        let file = File::open(path).map_err(|e| format!("{p}: cannot read: {e}"))?;
        out.push(wrap(p.clone(), Box::new(file))?);
    }
    Ok(out)
}

fn wrap(name: String, raw: Box<dyn Read>) -> Result<Input, String> {
    let mut buffered = BufReader::with_capacity(BUF_BYTES, raw);
    let head = buffered.fill_buf().map_err(|e| format!("{name}: cannot read: {e}"))?;
    let reader: Box<dyn BufRead> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(BUF_BYTES, MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    Ok(Input { name, reader })
}

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Index into the inputs, in the order given.
    pub input: usize,
    /// 1-based line number.
    pub line: u64,
}

/// What a scan saw.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub lines: u64,
    pub records: u64,
    /// Counts by [`NotRecord`], in [`NotRecord::ALL`] order.
    pub not_records: [u64; 5],
    /// Records outside `--since`/`--until`, or without a time when a bound was given.
    pub outside_range: u64,
    /// Records of another event than `--event` asked for.
    pub other_event: u64,
    /// Inputs that failed part-way (e.g. a cut-short .gz): `name: error after N lines`.
    pub read_errors: Vec<String>,
    pub input_names: Vec<String>,
}

impl Scan {
    pub fn not_record_total(&self) -> u64 {
        self.not_records.iter().sum()
    }

    pub fn count(&self, kind: NotRecord) -> u64 {
        NotRecord::ALL
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| self.not_records.get(i))
            .copied()
            .unwrap_or(0)
    }

    fn add(&mut self, kind: NotRecord) {
        if let Some(i) = NotRecord::ALL.iter().position(|k| *k == kind) {
            if let Some(n) = self.not_records.get_mut(i) {
                *n += 1;
            }
        }
    }

    /// A note for stderr about lines that were not records and inputs that failed, if any.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let skipped: Vec<String> = NotRecord::ALL
            .iter()
            .filter(|k| **k != NotRecord::Blank)
            .filter_map(|k| {
                let n = self.count(*k);
                (n > 0).then(|| format!("{n} {}", k.describe()))
            })
            .collect();
        if !skipped.is_empty() {
            out.push(format!(
                "note: {} of {} lines were not records: {}",
                self.not_record_total() - self.count(NotRecord::Blank),
                self.lines,
                skipped.join(", ")
            ));
        }
        if self.outside_range > 0 {
            out.push(format!(
                "note: {} records outside --since/--until (or without a start_time) were left out",
                self.outside_range
            ));
        }
        if self.other_event > 0 {
            out.push(format!(
                "note: {} records of another event than --event were left out",
                self.other_event
            ));
        }
        for e in &self.read_errors {
            out.push(format!("warning: {e}"));
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut not = serde_json::Map::new();
        for k in NotRecord::ALL {
            not.insert(k.as_str().to_string(), self.count(k).into());
        }
        serde_json::json!({
            "inputs": self.input_names,
            "lines": self.lines,
            "records": self.records,
            "not_records": not,
            "outside_range": self.outside_range,
            "other_event": self.other_event,
            "read_errors": self.read_errors,
        })
    }
}

/// Which records to keep: by `start_time` (`since <= t < until`), and by event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only records of this event (`--event`).
    pub event: Option<Event>,
}

impl Selection {
    fn keeps_time(&self, t: Option<i64>) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        match t {
            None => false,
            Some(t) => self.since.map_or(true, |s| t >= s) && self.until.map_or(true, |u| t < u),
        }
    }
}

/// Reads every line of every input, calling `f` with each record in range.
pub fn scan(inputs: Vec<Input>, range: Selection, mut f: impl FnMut(&Record<'_>, Origin)) -> Scan {
    let mut scan = Scan {
        input_names: inputs.iter().map(|i| i.name.clone()).collect(),
        ..Scan::default()
    };
    for (index, mut input) in inputs.into_iter().enumerate() {
        let mut line_no = 0u64;
        let result = for_each_line(&mut input.reader, |line| {
            line_no += 1;
            scan.lines += 1;
            let Some(line) = line else {
                scan.add(NotRecord::Oversized);
                return;
            };
            match parse_line(line) {
                Ok(rec) => {
                    if !range.keeps_time(rec.time_ms) {
                        scan.outside_range += 1;
                    } else if range.event.is_some_and(|e| e != rec.event()) {
                        scan.other_event += 1;
                    } else {
                        scan.records += 1;
                        f(
                            &rec,
                            Origin {
                                input: index,
                                line: line_no,
                            },
                        );
                    }
                }
                Err(kind) => scan.add(kind),
            }
        });
        if let Err(e) = result {
            scan.read_errors.push(format!(
                "{}: read error after {line_no} lines, the rest was skipped: {e}",
                input.name
            ));
        }
    }
    scan
}

/// Calls `f` with each line (without `\n` or `\r\n`), or `None` for a line over the limit. A
/// last line without a newline is passed too (a log cut short).
pub fn for_each_line(reader: &mut dyn BufRead, mut f: impl FnMut(Option<&[u8]>)) -> io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    let mut oversized = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            if oversized {
                f(None);
            } else if !pending.is_empty() {
                f(Some(strip_cr(&pending)));
            }
            return Ok(());
        }
        let len = chunk.len();
        let mut start = 0;
        while let Some(pos) = memchr::memchr(b'\n', chunk.get(start..).unwrap_or(&[])) {
            let end = start + pos;
            let piece = chunk.get(start..end).unwrap_or(&[]);
            if oversized || pending.len() + piece.len() > MAX_LINE_BYTES {
                f(None);
            } else if pending.is_empty() {
                f(Some(strip_cr(piece)));
            } else {
                pending.extend_from_slice(piece);
                f(Some(strip_cr(&pending)));
            }
            pending.clear();
            oversized = false;
            start = end + 1;
        }
        let rest = chunk.get(start..).unwrap_or(&[]);
        if !oversized {
            if pending.len() + rest.len() > MAX_LINE_BYTES {
                oversized = true;
                pending = Vec::new();
            } else {
                pending.extend_from_slice(rest);
            }
        }
        reader.consume(len);
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8], buf: usize) -> Vec<Option<Vec<u8>>> {
        let mut r = BufReader::with_capacity(buf, data);
        let mut out = Vec::new();
        for_each_line(&mut r, |l| out.push(l.map(<[u8]>::to_vec))).unwrap();
        out
    }

    #[test]
    fn splits_lines_across_buffers() {
        for buf in [1, 2, 3, 7, 64] {
            let got = lines(b"ab\ncd\r\n\nlast", buf);
            let want: Vec<Option<Vec<u8>>> = vec![
                Some(b"ab".to_vec()),
                Some(b"cd".to_vec()),
                Some(vec![]),
                Some(b"last".to_vec()),
            ];
            assert_eq!(got, want, "buffer {buf}");
        }
        assert!(lines(b"", 8).is_empty());
        assert_eq!(lines(b"x\n", 8), vec![Some(b"x".to_vec())]);
    }

    #[test]
    fn oversized_lines_are_skipped() {
        let mut data = vec![b'a'; MAX_LINE_BYTES + 1];
        data.extend_from_slice(b"\nok\n");
        data.extend(vec![b'b'; MAX_LINE_BYTES * 2]);
        let got = lines(&data, 4096);
        assert_eq!(got, vec![None, Some(b"ok".to_vec()), None]);
        let exact = vec![b'c'; MAX_LINE_BYTES];
        assert_eq!(lines(&exact, 4096), vec![Some(exact.clone())]);
    }
}
