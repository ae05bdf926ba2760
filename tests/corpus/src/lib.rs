//! The scenario corpus (`tests/scenarios/*.json`), loaded and checked once for both executors:
//! the filter's pure core (`filter/tests/scenarios.rs`) and a real Envoy
//! (`integration/tests/scenarios.rs`). A file that does not parse, or a case with a key neither
//! executor knows, is an error: a misspelt expectation must not silently assert nothing.

use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// The keys a case's `expect` may carry (see `tests/scenarios/README.md`).
pub const EXPECT_KEYS: [&str; 9] = [
    "status",
    "model_call",
    "decision",
    "reason",
    "sources",
    "record",
    "missing",
    "upstream_headers",
    "upstream_absent",
];

/// The keys a case's `request` may carry.
pub const REQUEST_KEYS: [&str; 4] = ["method", "path", "headers", "body"];

/// One scenario file: a plugin configuration, host properties standing in for Envoy, and cases.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    pub name: String,
    pub config: Value,
    /// `host_properties`: dotted attribute path → value.
    pub host_properties: Vec<(String, String)>,
    pub cases: Vec<Case>,
}

/// One request and what must follow from it.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub method: String,
    pub path: String,
    /// Header names as written in the file (executors lower-case them as Envoy does).
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub expect: Value,
}

/// Why the corpus cannot be used.
#[derive(Debug)]
pub struct CorpusError(String);

impl fmt::Display for CorpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CorpusError {}

/// The corpus directory of this repository.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// `LONG300` stands for a 300-byte value (over the default 256-byte limit).
pub fn expand(v: &str) -> String {
    if v == "LONG300" {
        "x".repeat(300)
    } else {
        v.to_string()
    }
}

/// Loads every `*.json` file of the corpus, sorted by name.
pub fn load() -> Result<Vec<ScenarioFile>, CorpusError> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| CorpusError(format!("{}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load_file(p)).collect()
}

fn load_file(path: &Path) -> Result<ScenarioFile, CorpusError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fail = |what: String| CorpusError(format!("{name}: {what}"));
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let host_properties = match doc.get("host_properties") {
        None => Vec::new(),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => Ok((k.clone(), s.to_string())),
                None => Err(fail(format!("host_properties.{k} must be a string"))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(fail("host_properties must be an object".into())),
    };
    let cases = doc
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("no cases".into()))?
        .iter()
        .map(|c| load_case(c).map_err(&fail))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ScenarioFile {
        name,
        config: doc.get("config").cloned().unwrap_or(Value::Null),
        host_properties,
        cases,
    })
}

fn load_case(case: &Value) -> Result<Case, String> {
    let name = case.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
    let at = |what: &str| format!("case {name:?}: {what}");
    let request = case
        .get("request")
        .and_then(Value::as_object)
        .ok_or_else(|| at("no request"))?;
    for key in request.keys() {
        if !REQUEST_KEYS.contains(&key.as_str()) {
            return Err(at(&format!("unknown request key {key:?}")));
        }
    }
    let expect = case.get("expect").cloned().unwrap_or(Value::Object(Default::default()));
    let keys = expect.as_object().ok_or_else(|| at("expect must be an object"))?;
    for key in keys.keys() {
        if !EXPECT_KEYS.contains(&key.as_str()) {
            return Err(at(&format!(
                "unknown expect key {key:?} (known: {})",
                EXPECT_KEYS.join(", ")
            )));
        }
    }
    let text = |v: Option<&Value>, what: &str| -> Result<String, String> {
        v.and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| at(&format!("request.{what} must be a string")))
    };
    let mut headers = Vec::new();
    for h in request.get("headers").and_then(Value::as_array).into_iter().flatten() {
        match h.as_array().map(Vec::as_slice) {
            Some([k, v]) => match (k.as_str(), v.as_str()) {
                (Some(k), Some(v)) => headers.push((k.to_string(), expand(v))),
                _ => return Err(at("a header is a pair of strings")),
            },
            _ => return Err(at("a header is a pair of strings")),
        }
    }
    Ok(Case {
        method: text(request.get("method"), "method")?,
        path: text(request.get("path"), "path")?,
        headers,
        body: request.get("body").filter(|b| !b.is_null()).cloned(),
        expect,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_corpus_loads() {
        let files = load().map_err(|e| e.to_string());
        assert!(files.is_ok_and(|f| !f.is_empty()));
    }

    #[test]
    fn unknown_expect_keys_are_errors() {
        let case = json!({"name": "x", "request": {"method": "POST", "path": "/"}, "expect": {"staus": 200}});
        assert!(load_case(&case).is_err_and(|e| e.contains("unknown expect key \"staus\"")));
        let case = json!({"name": "x", "request": {"method": "POST", "path": "/", "hedaers": []}});
        assert!(load_case(&case).is_err_and(|e| e.contains("unknown request key")));
        let case = json!({"name": "x", "request": {"method": "POST", "path": "/", "headers": [["a"]]}});
        assert!(load_case(&case).is_err());
    }
}
