//! The request body, read while it streams past: the model, the `stream` flag, and the `body:`
//! source paths.

use crate::config::{Config, Dimension};
use crate::json_scan::{JsonPaths, JsonScalar, JsonScanner};
use crate::policy::Lookup;
use crate::source::Source;
use crate::value::InvalidValue;
use std::rc::Rc;

const MODEL: usize = 0;
const STREAM: usize = 1;
/// Index of the first `body:` source path in the scanner.
const FIRST_SOURCE: usize = 2;

/// What the filter picks out of a JSON request body.
#[derive(Debug)]
pub struct RequestBody {
    scanner: JsonScanner,
    /// The `body:` source paths, in scanner order from [`FIRST_SOURCE`].
    sources: Rc<Vec<Vec<String>>>,
}

/// The paths a configuration reads from request bodies: `model`, `stream`, then every `body:`
/// source path once. Compiled with the configuration.
pub fn body_paths(dimensions: &[Dimension]) -> (Rc<JsonPaths>, Rc<Vec<Vec<String>>>) {
    let mut sources: Vec<Vec<String>> = Vec::new();
    for source in dimensions.iter().flat_map(|d| &d.sources) {
        if let Source::Body(path) = source {
            if !sources.contains(path) {
                sources.push(path.clone());
            }
        }
    }
    let mut paths = vec![vec!["model".to_string()], vec!["stream".to_string()]];
    paths.extend(sources.iter().cloned());
    (JsonPaths::new(paths), Rc::new(sources))
}

impl RequestBody {
    pub fn new(config: &Config) -> RequestBody {
        RequestBody {
            scanner: JsonScanner::with_paths(config.body_paths.clone(), config.max_value_bytes.max(256)),
            sources: config.body_sources.clone(),
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if !self.scanner.is_complete() && !self.scanner.is_malformed() {
            self.scanner.feed(chunk);
        }
    }

    /// The top-level JSON object has closed (or the body is not JSON): nothing more will be found.
    pub fn finished(&self) -> bool {
        self.scanner.is_complete() || self.scanner.is_malformed()
    }

    /// How many `body:` source paths have been seen so far.
    pub fn sources_found(&self) -> usize {
        (0..self.sources.len())
            .filter(|i| self.scanner.value(FIRST_SOURCE + i).is_some())
            .count()
    }

    pub fn model(&self) -> Option<String> {
        match self.scanner.value(MODEL) {
            Some(JsonScalar::String(m)) if !m.is_empty() => Some(m.clone()),
            _ => None,
        }
    }

    pub fn stream(&self) -> Option<bool> {
        match self.scanner.value(STREAM) {
            Some(JsonScalar::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// The value of a `body:` source, with the claim rules of SPEC §3 (objects are invalid).
    pub fn lookup(&self, path: &[String]) -> Lookup {
        let Some(i) = self.sources.iter().position(|p| p.as_slice() == path) else {
            return Lookup::Absent;
        };
        match self.scanner.value(FIRST_SOURCE + i) {
            None | Some(JsonScalar::Null) => Lookup::Absent,
            Some(JsonScalar::String(s)) => Lookup::Value(s.as_bytes().to_vec()),
            Some(JsonScalar::Number(n)) => Lookup::Value(n.as_bytes().to_vec()),
            Some(JsonScalar::Bool(b)) => Lookup::Value(b.to_string().into_bytes()),
            Some(JsonScalar::Composite) => Lookup::Invalid(InvalidValue::Composite),
            Some(JsonScalar::TooLong) => Lookup::Invalid(InvalidValue::TooLong),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dims: &str) -> Config {
        Config::parse(format!(r#"{{"dimensions":{dims},"require":[["user"]]}}"#).as_bytes()).unwrap()
    }

    #[test]
    fn picks_model_stream_and_sources_across_chunks() {
        let c = config(r#"{"user":["body:user","body:metadata.user_id"]}"#);
        let mut b = RequestBody::new(&c);
        let body = br#"{"messages":[{"role":"user","content":"x"}],"metadata":{"user_id":"u-9"},"model":"gpt-4o","stream":true,"user":42}"#;
        for piece in body.chunks(5) {
            b.feed(piece);
        }
        assert!(b.finished());
        assert_eq!(b.model().as_deref(), Some("gpt-4o"));
        assert_eq!(b.stream(), Some(true));
        assert_eq!(b.lookup(&["user".into()]), Lookup::Value(b"42".to_vec()));
        assert_eq!(
            b.lookup(&["metadata".into(), "user_id".into()]),
            Lookup::Value(b"u-9".to_vec())
        );
        assert_eq!(b.sources_found(), 2);
    }

    #[test]
    fn objects_are_invalid_and_missing_is_absent() {
        let c = config(r#"{"user":["body:user"]}"#);
        let mut b = RequestBody::new(&c);
        b.feed(br#"{"user":{"id":1}}"#);
        assert_eq!(b.lookup(&["user".into()]), Lookup::Invalid(InvalidValue::Composite));
        let mut b = RequestBody::new(&c);
        b.feed(br#"{"model":"m"}"#);
        assert_eq!(b.lookup(&["user".into()]), Lookup::Absent);
        assert_eq!(b.sources_found(), 0);
    }

    #[test]
    fn garbage_finishes_without_values() {
        let c = config(r#"{"user":["header:x"]}"#);
        let mut b = RequestBody::new(&c);
        b.feed(b"\xff\x00not json");
        assert!(b.finished());
        assert_eq!(b.model(), None);
    }
}
