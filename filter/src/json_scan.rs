//! Incremental, memory-bounded JSON field picker following the RFC 8259 grammar:
//! a byte-at-a-time state machine that is fed a document in arbitrary chunks and keeps
//! only the scalar values found at the requested object paths. A path component `[]` stands
//! for any element of an array (`candidates.[].finishReason`); the last one seen wins.
//!
//! Memory is bounded whatever the input size:
//! - the container stack holds at most [`MAX_TRACKED_DEPTH`] frames; deeper containers, and
//!   containers that no path goes on into, are skipped by counting brackets (their contents are
//!   not validated and never match);
//! - one capture buffer, used for the key or value being read, holds at most
//!   `max(max_value_bytes, longest path component)` bytes;
//! - one stored value per path, each at most `max_value_bytes` bytes (longer values are
//!   recorded as [`JsonScalar::TooLong`] without being buffered);
//! - at most [`MAX_PATHS`] paths are tracked; further paths never match.

mod scalars;

use scalars::{Escape, Literal, NumberPart};
use std::rc::Rc;

/// Containers nested deeper than this are skipped without tracking keys.
pub const MAX_TRACKED_DEPTH: usize = 64;
/// Paths beyond this many are ignored (they never match).
pub const MAX_PATHS: usize = 64;
/// Values kept per collected path; later ones are dropped.
pub const MAX_COLLECTED: usize = 16;
/// The path component that stands for any element of an array.
const ELEMENT: &[u8] = b"[]";

/// A value found at one of the requested paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonScalar {
    /// A string, fully unescaped.
    String(String),
    /// A number, as its raw JSON text.
    Number(String),
    Bool(bool),
    Null,
    /// An object or an array.
    Composite,
    /// A string or number longer than the scanner's `max_value_bytes`.
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerKind {
    Object,
    Array,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: ContainerKind,
    /// Index of the path component that this object's keys are compared with.
    key_level: usize,
    /// Paths whose components matched every key leading to this container.
    prefix_mask: u64,
    /// Paths that also match the key of the member being read (objects only).
    member_mask: u64,
    /// Objects directly inside this array are matched as if each were the top level.
    elements_are_roots: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringRole {
    Key,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a value: at the top level, after `:`, or after `,` in an array.
    Value,
    /// Just after `[`: a value or `]`.
    ValueOrArrayEnd,
    /// Just after `{`: a key or `}`.
    KeyOrObjectEnd,
    /// After `,` in an object: a key.
    Key,
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    AfterValue,
    InString {
        role: StringRole,
        escape: Escape,
    },
    InNumber(NumberPart),
    InLiteral {
        word: Literal,
        matched: usize,
    },
    /// Inside a container nested deeper than [`MAX_TRACKED_DEPTH`], or one no path goes into.
    DeepSkip {
        /// The skipped container's kind, which its closing bracket must match.
        kind: ContainerKind,
        depth: usize,
        in_string: bool,
        escaped: bool,
    },
    Done,
    Malformed,
}

impl State {
    /// States that [`JsonScanner::structural_byte`] handles one byte at a time.
    fn is_structural(&self) -> bool {
        !matches!(
            self,
            State::InString { .. } | State::DeepSkip { .. } | State::Done | State::Malformed
        )
    }
}

/// An object key that paths name at some depth.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyName {
    bytes: Vec<u8>,
    /// [`KeyName::head_of`] the name: a key of the same length is told apart here, and its
    /// bytes compared in full only when the heads agree and it is longer than the head holds.
    head: u64,
    /// The paths that name this key at its depth.
    paths: u64,
}

impl KeyName {
    const HEAD_BYTES: usize = 7;

    /// A key's first seven bytes in one word (zero-padded).
    fn head_of(key: &[u8]) -> u64 {
        Self::head_in(key, key.len())
    }

    /// [`KeyName::head_of`] the key of `len` bytes at the start of `bytes`: one load when
    /// `bytes` goes on for eight, as a key read where it lies in a chunk mostly does.
    fn head_in(bytes: &[u8], len: usize) -> u64 {
        let kept = len.min(Self::HEAD_BYTES);
        if let Some(word) = bytes.first_chunk::<8>() {
            return u64::from_le_bytes(*word) & ((1u64 << (8 * kept)) - 1);
        }
        let mut word = [0u8; 8];
        for (slot, &b) in word.iter_mut().zip(bytes.iter().take(kept)) {
            *slot = b;
        }
        u64::from_le_bytes(word)
    }
}

/// A set of paths compiled once (per configuration or per API family) and shared by every
/// scanner that looks for them: building these tables is most of what starting a scan costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPaths {
    /// Path components as bytes, at most [`MAX_PATHS`] paths.
    paths: Vec<Vec<Vec<u8>>>,
    /// `ends_at[d]`: paths with exactly `d` components.
    ends_at: Vec<u64>,
    /// `continues_past[d]`: paths with more than `d` components.
    continues_past: Vec<u64>,
    /// `element_at[d]`: paths whose component `d` is `[]` (an array element).
    element_at: Vec<u64>,
    /// `components_at[d]`: each distinct object key at component `d`, with the paths that
    /// name it there, so that a key is compared with each name once, not once per path.
    components_at: Vec<Vec<KeyName>>,
    /// `lengths_at[d]`: bit `n` for each name at component `d` that is `n` bytes long (bit 63 for
    /// 63 and longer), so that most keys are turned away without looking at a name.
    lengths_at: Vec<u64>,
    all_paths: u64,
    max_key_bytes: usize,
}

impl JsonPaths {
    /// `paths`: dotted paths into nested objects, already split, e.g. `["usage", "prompt_tokens"]`;
    /// an empty path never matches; paths beyond [`MAX_PATHS`] are ignored.
    pub fn new(paths: Vec<Vec<String>>) -> Rc<JsonPaths> {
        let paths: Vec<Vec<Vec<u8>>> = paths
            .into_iter()
            .take(MAX_PATHS)
            .map(|p| p.into_iter().map(String::into_bytes).collect())
            .collect();
        let mut ends_at = vec![0u64; MAX_TRACKED_DEPTH + 2];
        let mut continues_past = vec![0u64; MAX_TRACKED_DEPTH + 2];
        let mut element_at = vec![0u64; MAX_TRACKED_DEPTH + 2];
        let mut all_paths = 0u64;
        let mut max_key_bytes = 0usize;
        for (index, path) in paths.iter().enumerate() {
            if path.is_empty() {
                continue;
            }
            all_paths |= bit(index);
            if let Some(slot) = ends_at.get_mut(path.len()) {
                *slot |= bit(index);
            }
            for slot in continues_past.iter_mut().take(path.len()) {
                *slot |= bit(index);
            }
            for (d, component) in path.iter().enumerate() {
                if component.as_slice() == ELEMENT {
                    if let Some(slot) = element_at.get_mut(d) {
                        *slot |= bit(index);
                    }
                }
            }
            for component in path {
                max_key_bytes = max_key_bytes.max(component.len());
            }
        }
        let depth = paths.iter().map(Vec::len).max().unwrap_or(0);
        let mut components_at: Vec<Vec<KeyName>> = vec![Vec::new(); depth];
        for (index, path) in paths.iter().enumerate() {
            for (level, component) in components_at.iter_mut().zip(path) {
                if component.as_slice() == ELEMENT {
                    continue;
                }
                match level.iter_mut().find(|name| name.bytes == *component) {
                    Some(name) => name.paths |= bit(index),
                    None => level.push(KeyName {
                        bytes: component.clone(),
                        head: KeyName::head_of(component),
                        paths: bit(index),
                    }),
                }
            }
        }
        let lengths_at = components_at
            .iter()
            .map(|names| names.iter().fold(0, |lengths, name| lengths | length_bit(&name.bytes)))
            .collect();
        Rc::new(JsonPaths {
            paths,
            ends_at,
            continues_past,
            element_at,
            components_at,
            lengths_at,
            all_paths,
            max_key_bytes,
        })
    }

    /// How many paths are tracked.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// Incremental JSON scanner that picks the values at a fixed set of object paths.
#[derive(Debug, Clone)]
pub struct JsonScanner {
    compiled: Rc<JsonPaths>,
    max_value_bytes: usize,
    match_array_elements: bool,

    state: State,
    frames: Vec<Frame>,
    /// The last value of each path. A value stays after [`JsonScanner::reset`], for its buffer to
    /// be reused, but counts only while `found` has its path.
    values: Vec<Option<JsonScalar>>,
    /// Paths with a value in the current document.
    found: u64,
    /// Paths whose every value is kept (in order, at most [`MAX_COLLECTED`] each), not only the last.
    collect_mask: u64,
    collected: Vec<Vec<JsonScalar>>,
    offset: usize,
    object_start: Option<usize>,

    /// Paths that receive the value being read.
    capture_mask: u64,
    /// Whether the current string or number is copied into `capture`.
    capturing: bool,
    capture_limit: usize,
    capture_overflow: bool,
    capture: Vec<u8>,
    pending_high_surrogate: Option<u16>,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn bit(index: usize) -> u64 {
    1u64.checked_shl(u32::try_from(index).unwrap_or(u32::MAX)).unwrap_or(0)
}

/// A key's length as one bit of a [`JsonPaths::lengths_at`] mask.
fn length_bit(key: &[u8]) -> u64 {
    1 << key.len().min(63)
}

/// The indexes of the bits set in `mask`, lowest first.
fn set_bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let index = (mask != 0).then(|| mask.trailing_zeros() as usize)?;
        mask &= mask - 1;
        Some(index)
    })
}

impl JsonScanner {
    /// A scanner for `paths` (see [`JsonPaths::new`]). Values longer than `max_value_bytes`
    /// (strings counted after unescaping) become [`JsonScalar::TooLong`].
    pub fn new(paths: Vec<Vec<String>>, max_value_bytes: usize) -> Self {
        Self::with_paths(JsonPaths::new(paths), max_value_bytes)
    }

    /// A scanner for paths compiled before.
    pub fn with_paths(compiled: Rc<JsonPaths>, max_value_bytes: usize) -> Self {
        let count = compiled.paths.len();
        let values = vec![None; count];
        let collected = vec![Vec::new(); count];

        JsonScanner {
            compiled,
            max_value_bytes,
            match_array_elements: false,
            state: State::Value,
            frames: Vec::new(),
            values,
            found: 0,
            collect_mask: 0,
            collected,
            offset: 0,
            object_start: None,
            capture_mask: 0,
            capturing: false,
            capture_limit: 0,
            capture_overflow: false,
            capture: Vec::new(),
            pending_high_surrogate: None,
        }
    }

    /// When the top-level value is an array, match the paths inside each object element
    /// as if it were the top level (last element wins). Used for JSON-array streams.
    pub fn match_top_level_array_elements(mut self) -> Self {
        self.match_array_elements = true;
        self
    }

    /// Keeps every value of these paths (by index), not only the last: see [`JsonScanner::collected`].
    pub fn collect_paths(mut self, indexes: impl IntoIterator<Item = usize>) -> Self {
        for i in indexes {
            self.collect_mask |= bit(i);
        }
        self
    }

    /// Every value seen at a collected path, in document order (bounded).
    pub fn collected(&self, path_index: usize) -> &[JsonScalar] {
        self.collected.get(path_index).map_or(&[], Vec::as_slice)
    }

    /// Feed the next bytes of the document.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let used = match self.state {
                State::Malformed => rest.len(),
                State::Done => {
                    // Only whitespace may follow the top-level value.
                    let trailing = rest.iter().position(|&b| !is_whitespace(b));
                    if trailing.is_some() {
                        self.state = State::Malformed;
                    }
                    rest.len()
                }
                State::InString { role, escape } => self.string_bytes(rest, role, escape),
                State::DeepSkip {
                    kind,
                    depth,
                    in_string,
                    escaped,
                } => self.deep_skip(rest, kind, depth, in_string, escaped),
                _ => {
                    // Structural bytes come in runs (`":`, `},{`, digits, `null,`): one pass
                    // reads a run, keeping `offset` at the byte being looked at.
                    let mut used = 0;
                    while let Some(&b) = rest.get(used) {
                        let n = self.structural_byte(b);
                        used += n;
                        self.offset = self.offset.saturating_add(n);
                        if !self.state.is_structural() {
                            break;
                        }
                    }
                    rest = rest.get(used..).unwrap_or(&[]);
                    continue;
                }
            };
            self.offset = self.offset.saturating_add(used);
            rest = rest.get(used..).unwrap_or(&[]);
        }
    }

    /// The last value seen at path `path_index`, if any.
    pub fn value(&self, path_index: usize) -> Option<&JsonScalar> {
        if self.found & bit(path_index) == 0 {
            return None;
        }
        self.values.get(path_index).and_then(Option::as_ref)
    }

    /// The top-level value has been closed (and nothing but whitespace followed it).
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// A syntax error was seen; scanning stopped, values found before it are kept.
    pub fn is_malformed(&self) -> bool {
        self.state == State::Malformed
    }

    /// Every tracked path has a value.
    pub fn all_found(&self) -> bool {
        (0..self.values.len()).all(|index| self.found & bit(index) != 0)
    }

    /// Start a new document with the same paths; forgets every value found.
    pub fn reset(&mut self) {
        self.state = State::Value;
        self.frames.clear();
        self.found = 0;
        for index in set_bits(self.collect_mask) {
            if let Some(list) = self.collected.get_mut(index) {
                list.clear();
            }
        }
        self.offset = 0;
        self.object_start = None;
        self.capture_mask = 0;
        self.capturing = false;
        self.capture_overflow = false;
        self.capture.clear();
        self.pending_high_surrogate = None;
    }

    /// Byte offset from the start of the document just after the opening `{` of the
    /// top-level object, if seen.
    pub fn top_level_object_start(&self) -> Option<usize> {
        self.object_start
    }

    /// Bytes held in internal buffers (capture buffer, stack, stored values).
    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        let stored: usize = self
            .values
            .iter()
            .map(|v| match v {
                Some(JsonScalar::String(s)) | Some(JsonScalar::Number(s)) => s.capacity(),
                _ => 0,
            })
            .sum();
        self.capture.capacity() + self.frames.capacity() * std::mem::size_of::<Frame>() + stored
    }

    // ---- structure -------------------------------------------------------------------

    /// Handles one byte outside strings and deep containers; returns bytes consumed
    /// (0 when a number ended and the byte must be looked at again).
    #[inline(always)]
    fn structural_byte(&mut self, b: u8) -> usize {
        match self.state {
            State::Value => self.begin_value(b),
            State::ValueOrArrayEnd => {
                if b == b']' {
                    self.close_container(ContainerKind::Array);
                } else {
                    self.begin_value(b);
                }
            }
            State::KeyOrObjectEnd | State::Key => {
                if b == b'"' {
                    self.begin_key();
                } else if b == b'}' && self.state == State::KeyOrObjectEnd {
                    self.close_container(ContainerKind::Object);
                } else if !is_whitespace(b) {
                    self.state = State::Malformed;
                }
            }
            State::Colon => {
                if b == b':' {
                    self.state = State::Value;
                } else if !is_whitespace(b) {
                    self.state = State::Malformed;
                }
            }
            State::AfterValue => self.after_value(b),
            State::InNumber(part) => return self.number_byte(b, part),
            State::InLiteral { word, matched } => self.literal_byte(b, word, matched),
            State::InString { .. } | State::DeepSkip { .. } | State::Done | State::Malformed => {}
        }
        1
    }

    fn begin_value(&mut self, b: u8) {
        let capture_mask = self.member_capture_mask();
        match b {
            b'"' => {
                self.start_capture(capture_mask, capture_mask != 0, self.max_value_bytes);
                self.state = State::InString {
                    role: StringRole::Value,
                    escape: Escape::None,
                };
            }
            b'{' | b'[' => {
                self.store(capture_mask, JsonScalar::Composite);
                let kind = if b == b'{' {
                    ContainerKind::Object
                } else {
                    ContainerKind::Array
                };
                self.open_container(kind);
            }
            b'-' | b'0'..=b'9' => {
                self.start_capture(capture_mask, capture_mask != 0, self.max_value_bytes);
                self.append(&[b]);
                let part = match b {
                    b'-' => NumberPart::Minus,
                    b'0' => NumberPart::Zero,
                    _ => NumberPart::Int,
                };
                self.state = State::InNumber(part);
            }
            b't' | b'f' | b'n' => {
                self.capture_mask = capture_mask;
                let word = match b {
                    b't' => Literal::True,
                    b'f' => Literal::False,
                    _ => Literal::Null,
                };
                self.state = State::InLiteral { word, matched: 1 };
            }
            _ if is_whitespace(b) => {}
            _ => self.state = State::Malformed,
        }
    }

    /// Paths that end at the value being read: the member of the innermost object, or an
    /// element of a tracked array (a path ending in `[]`).
    #[inline(always)]
    fn member_capture_mask(&self) -> u64 {
        let ends = |level: usize| self.compiled.ends_at.get(level + 1).copied().unwrap_or(0);
        match self.frames.last() {
            Some(frame) if frame.kind == ContainerKind::Object && frame.member_mask != 0 => {
                frame.member_mask & ends(frame.key_level)
            }
            Some(frame) if frame.kind == ContainerKind::Array && frame.prefix_mask != 0 => {
                frame.prefix_mask & ends(frame.key_level)
            }
            _ => 0,
        }
    }

    fn open_container(&mut self, kind: ContainerKind) {
        if self.frames.len() >= MAX_TRACKED_DEPTH {
            self.skip_container(kind);
            return;
        }
        let element_at = |level: usize| self.compiled.element_at.get(level).copied().unwrap_or(0);
        let elements_are_roots = kind == ContainerKind::Array && self.frames.is_empty() && self.match_array_elements;
        let (key_level, prefix_mask) = match self.frames.last() {
            // An array whose objects are each matched as a top-level document.
            None if elements_are_roots => (0, 0),
            None => {
                if kind == ContainerKind::Object {
                    self.object_start = Some(self.offset.saturating_add(1));
                }
                match kind {
                    ContainerKind::Object => (0, self.compiled.all_paths & !element_at(0)),
                    ContainerKind::Array => (0, element_at(0)),
                }
            }
            Some(parent) if parent.elements_are_roots => match kind {
                ContainerKind::Object => (0, self.compiled.all_paths & !element_at(0)),
                ContainerKind::Array => (0, 0),
            },
            Some(parent) => {
                // The component this container's contents are compared with: the one after the
                // member key (objects) or after the `[]` (arrays).
                let level = parent.key_level + 1;
                let continuing = self.compiled.continues_past.get(level).copied().unwrap_or(0);
                let inherited = match parent.kind {
                    ContainerKind::Object => parent.member_mask,
                    ContainerKind::Array => parent.prefix_mask,
                };
                match kind {
                    // An array is followed only by paths that say `[]` here.
                    ContainerKind::Array => (level, inherited & continuing & element_at(level)),
                    ContainerKind::Object => (level, inherited & continuing & !element_at(level)),
                }
            }
        };
        if prefix_mask == 0 && !elements_are_roots && !self.frames.is_empty() {
            // No path goes on inside: skip the container by its brackets, as an over-deep one
            // (the top-level value is always read, so a document's own syntax is checked).
            self.skip_container(kind);
            return;
        }
        self.frames.push(Frame {
            kind,
            key_level,
            prefix_mask,
            member_mask: 0,
            elements_are_roots,
        });
        self.state = match kind {
            ContainerKind::Object => State::KeyOrObjectEnd,
            ContainerKind::Array => State::ValueOrArrayEnd,
        };
    }

    /// Skips the container just opened by its brackets (see [`State::DeepSkip`]).
    fn skip_container(&mut self, kind: ContainerKind) {
        self.state = State::DeepSkip {
            kind,
            depth: 1,
            in_string: false,
            escaped: false,
        };
    }

    fn close_container(&mut self, kind: ContainerKind) {
        match self.frames.last() {
            Some(frame) if frame.kind == kind => {
                self.frames.pop();
                self.value_ended();
            }
            _ => self.state = State::Malformed,
        }
    }

    #[inline(always)]
    fn value_ended(&mut self) {
        self.state = if self.frames.is_empty() {
            State::Done
        } else {
            State::AfterValue
        };
    }

    #[inline(always)]
    fn after_value(&mut self, b: u8) {
        let kind = self.frames.last().map(|f| f.kind);
        match (b, kind) {
            (b',', Some(ContainerKind::Object)) => self.state = State::Key,
            (b',', Some(ContainerKind::Array)) => self.state = State::Value,
            (b'}', _) => self.close_container(ContainerKind::Object),
            (b']', _) => self.close_container(ContainerKind::Array),
            _ if is_whitespace(b) => {}
            _ => self.state = State::Malformed,
        }
    }

    fn begin_key(&mut self) {
        let wanted = self.frames.last().map_or(0, |f| f.prefix_mask);
        self.start_capture(0, wanted != 0, self.compiled.max_key_bytes);
        self.state = State::InString {
            role: StringRole::Key,
            escape: Escape::None,
        };
    }

    fn key_ended(&mut self) {
        let member_mask = match self.frames.last() {
            Some(frame) => self.member_mask_of(frame, &self.capture, self.capture.len(), self.capture_overflow),
            None => 0,
        };
        self.set_member(member_mask);
    }

    /// A key of `len` bytes read whole at the start of `bytes`, without an escape: matched where
    /// it lies, not copied.
    fn whole_key(&mut self, bytes: &[u8], len: usize) {
        let member_mask = match self.frames.last() {
            Some(frame) => self.member_mask_of(frame, bytes, len, len > self.capture_limit),
            None => 0,
        };
        self.set_member(member_mask);
    }

    /// The paths still followed at `frame` that name the key of `len` bytes at the start of
    /// `bytes` next.
    fn member_mask_of(&self, frame: &Frame, bytes: &[u8], len: usize, overflow: bool) -> u64 {
        let key = bytes.get(..len).unwrap_or(bytes);
        let lengths = self.compiled.lengths_at.get(frame.key_level).copied().unwrap_or(0);
        if overflow || frame.prefix_mask == 0 || lengths & length_bit(key) == 0 {
            return 0;
        }
        let names = self
            .compiled
            .components_at
            .get(frame.key_level)
            .map_or(&[][..], Vec::as_slice);
        let mut head = None;
        let mut member_mask = 0u64;
        for name in names {
            if name.paths & frame.prefix_mask == 0 || name.bytes.len() != key.len() {
                continue;
            }
            let head = *head.get_or_insert_with(|| KeyName::head_in(bytes, len));
            if name.head == head && (key.len() <= KeyName::HEAD_BYTES || name.bytes == key) {
                member_mask |= name.paths & frame.prefix_mask;
            }
        }
        member_mask
    }

    #[inline(always)]
    fn set_member(&mut self, member_mask: u64) {
        if let Some(frame) = self.frames.last_mut() {
            frame.member_mask = member_mask;
        }
        self.capturing = false;
        self.state = State::Colon;
    }
}

#[cfg(test)]
mod tests;
