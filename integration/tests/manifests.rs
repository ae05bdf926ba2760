//! The shipped manifests and plugin configurations, checked without a cluster or an Envoy:
//!
//! - the Istio and Envoy Gateway manifests against the `openAPIV3Schema` of their CRDs, kept
//!   unmodified in `integration/crds/` (see its README for where they come from);
//! - every shipped plugin configuration (Istio, Envoy Gateway, `envoy/*.yaml`, the scenario
//!   corpus, the README's examples) against `schema/ai-attribution.schema.json`, and the shipped
//!   ones against the filter's own parser too;
//! - the schema against `filter/src/config/`: the same fields, defaults, names and refusals.

// Test code: a broken expectation is a panic with a message. Indexing is mostly into
// `serde_json::Value`, where a missing key or index yields `Null` instead of panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use ai_attribution::config::Config;
use ai_attribution::provider::PROVIDER_NAMES;
use ai_attribution::record::Field;
use ai_attribution::source::PeerField;
use boon::{Compiler, Draft, SchemaIndex, Schemas};
use integration::bootstrap::record_keys;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

// ---- files --------------------------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration/ has a parent")
        .to_path_buf()
}

/// The CRDs the manifests are checked against, kept in the repository. A missing file is a
/// failure (reading it panics), never a skip.
fn crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML file, as JSON values (empty documents dropped).
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn yaml_document(path: &Path) -> Value {
    let mut docs = yaml_documents(path);
    assert_eq!(docs.len(), 1, "{}: expected one YAML document", path.display());
    docs.remove(0)
}

fn schema_path() -> PathBuf {
    repo_root().join("schema/ai-attribution.schema.json")
}

fn plugin_schema() -> Value {
    let path = schema_path();
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- validation -----------------------------------------------------------------------------

/// A compiled JSON Schema (draft 2020-12).
struct Validator {
    schemas: Schemas,
    index: SchemaIndex,
}

impl Validator {
    fn new(name: &str, schema: Value) -> Validator {
        let url = format!("file:///schemas/{name}.json");
        let mut compiler = Compiler::new();
        compiler.set_default_draft(Draft::V2020_12);
        compiler.add_resource(&url, schema).expect("schema URL");
        let mut schemas = Schemas::new();
        let index = compiler
            .compile(&url, &mut schemas)
            .unwrap_or_else(|e| panic!("{name}: not a valid JSON Schema: {e:#}"));
        Validator { schemas, index }
    }

    fn plugin() -> Validator {
        Validator::new("ai-attribution", plugin_schema())
    }

    /// `None` when the instance is valid, else every error, one per line.
    fn errors(&self, instance: &Value) -> Option<String> {
        self.schemas.validate(instance, self.index).err().map(|e| e.to_string())
    }

    fn assert_valid(&self, what: &str, instance: &Value) {
        if let Some(errors) = self.errors(instance) {
            panic!("{what} does not match its schema:\n{errors}\n{instance:#}");
        }
    }
}

/// The filter's own parser, as Envoy runs it in `on_configure`.
fn parse_config(config: &Value) -> Result<Config, String> {
    Config::parse(config.to_string().as_bytes()).map_err(|e| e.to_string())
}

// ---- CRDs -----------------------------------------------------------------------------------

/// The `openAPIV3Schema` of `spec` for `apiVersion`/`kind`, from a file of CRDs.
fn crd_spec_schema(crds: &Path, api_version: &str, kind: &str) -> Value {
    let (group, version) = api_version
        .split_once('/')
        .unwrap_or_else(|| panic!("apiVersion {api_version:?} has no group"));
    let docs = yaml_documents(crds);
    let crd = docs
        .iter()
        .find(|d| {
            d["kind"] == "CustomResourceDefinition" && d["spec"]["group"] == group && d["spec"]["names"]["kind"] == kind
        })
        .unwrap_or_else(|| panic!("{}: no CRD for {group} {kind}", crds.display()));
    let served = crd["spec"]["versions"]
        .as_array()
        .expect("CRD versions")
        .iter()
        .find(|v| v["name"] == version && v["served"] == true)
        .unwrap_or_else(|| panic!("{}: {kind} {api_version} is not served", crds.display()));
    let mut spec = served["schema"]["openAPIV3Schema"]["properties"]["spec"].clone();
    assert!(spec.is_object(), "{kind}: the CRD has no spec schema");
    close_objects(&mut spec);
    spec
}

/// Makes a CRD schema refuse undeclared fields, as the API server does: it prunes them, and
/// kubectl's strict field validation (its default) refuses the manifest. JSON Schema would let
/// them pass, so every object that lists `properties` gets `additionalProperties: false` unless
/// it keeps unknown fields (`x-kubernetes-preserve-unknown-fields`). Logical junctors (`allOf`,
/// `anyOf`, `oneOf`, `not`) only add value checks in a structural schema and are left alone.
/// The other OpenAPI extensions (`x-kubernetes-*`, `nullable`, `format: int32`) are keywords a
/// 2020-12 validator ignores; the CEL rules (`x-kubernetes-validations`) that matter for our
/// manifests are checked by hand in the tests below.
fn close_objects(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let keeps_unknown = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") && !keeps_unknown {
        obj.insert("additionalProperties".into(), json!(false));
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        props.values_mut().for_each(close_objects);
    }
    if let Some(items) = obj.get_mut("items") {
        close_objects(items);
    }
    if let Some(additional) = obj.get_mut("additionalProperties") {
        close_objects(additional);
    }
}

/// Checks a manifest against its CRD and returns it.
fn check_manifest(manifest: &Path, crds: &Path) -> Value {
    let m = yaml_document(manifest);
    let name = manifest.display();
    let api_version = m["apiVersion"].as_str().expect("apiVersion");
    let kind = m["kind"].as_str().expect("kind");
    let keys: BTreeSet<&str> = m.as_object().expect("a mapping").keys().map(String::as_str).collect();
    let allowed = BTreeSet::from(["apiVersion", "kind", "metadata", "spec"]);
    assert!(keys.is_subset(&allowed), "{name}: unexpected top-level keys {keys:?}");
    assert!(
        m["metadata"]["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{name}: metadata.name is missing"
    );
    assert!(m["spec"].is_object(), "{name}: spec is missing");
    let crd = Validator::new(kind, crd_spec_schema(crds, api_version, kind));
    if let Some(errors) = crd.errors(&m["spec"]) {
        panic!("{name}: spec does not match the {kind} {api_version} CRD:\n{errors}");
    }
    m
}

fn istio_crds() -> PathBuf {
    crds_dir().join("istio/crds.yaml")
}

fn envoy_gateway_crds() -> PathBuf {
    crds_dir().join("envoy-gateway/envoyextensionpolicies.yaml")
}

fn wasmplugin_path() -> PathBuf {
    repo_root().join("envoy/istio/wasmplugin.yaml")
}

fn wasmplugin_https_path() -> PathBuf {
    repo_root().join("envoy/istio/wasmplugin-https.yaml")
}

fn telemetry_path() -> PathBuf {
    repo_root().join("envoy/istio/telemetry.yaml")
}

fn extension_policy_path() -> PathBuf {
    repo_root().join("envoy/envoy-gateway/extension-policy.yaml")
}

#[test]
fn istio_wasmplugin_matches_its_crd() {
    let m = check_manifest(&wasmplugin_path(), &istio_crds());
    assert_eq!(m["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(m["kind"], "WasmPlugin");
    let spec = &m["spec"];
    // CEL rules of the CRD, by hand.
    let targets = ["selector", "targetRef", "targetRefs"]
        .iter()
        .filter(|k| spec.get(**k).is_some())
        .count();
    assert!(targets <= 1, "only one of targetRefs or selector can be set");
    let url = spec["url"].as_str().expect("url");
    assert!(
        ["oci://", "http://", "https://", "file://"]
            .iter()
            .any(|s| url.starts_with(s)),
        "url must have schema one of [http, https, file, oci]: {url}"
    );
    // What the filter needs from it.
    assert_eq!(spec["pluginName"], "ai_attribution", "the filter's root_id");
    assert_eq!(spec["phase"], "AUTHZ", "after Istio's authn, before the router");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert!(
        spec["pluginConfig"].is_object(),
        "pluginConfig is the filter's configuration"
    );
}

/// The crate's version, which the shipped manifests pin.
fn crate_version() -> String {
    let cargo = read(&repo_root().join("Cargo.toml"));
    cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("version in Cargo.toml")
        .to_string()
}

/// Both delivery forms of the WasmPlugin: `oci://` by a version tag and `https://` by a path that
/// names the version, each pinned by a `sha256`; apart from `url` and `sha256` the two resources
/// are the same.
#[test]
fn istio_wasmplugin_ships_the_oci_and_https_forms_pinned() {
    let version = crate_version();
    let oci = check_manifest(&wasmplugin_path(), &istio_crds());
    let https = check_manifest(&wasmplugin_https_path(), &istio_crds());
    let oci_url = oci["spec"]["url"].as_str().expect("url");
    let https_url = https["spec"]["url"].as_str().expect("url");
    assert!(oci_url.starts_with("oci://"), "{oci_url}");
    assert!(
        oci_url.ends_with(&format!(":{version}")),
        "the image is pulled by the release's tag {version}: {oci_url}"
    );
    assert!(https_url.starts_with("https://"), "{https_url}");
    assert!(
        https_url.contains(&format!("/{version}/")),
        "the download names the release {version}: {https_url}"
    );
    for m in [&oci, &https] {
        let sha = m["spec"]["sha256"].as_str().expect("sha256");
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "sha256 pins the bytes: {sha}"
        );
        assert_eq!(m["spec"]["imagePullPolicy"], "IfNotPresent");
    }
    let strip = |m: &Value| {
        let mut m = m.clone();
        for k in ["url", "sha256"] {
            m["spec"].as_object_mut().expect("spec").remove(k);
        }
        m
    };
    assert_eq!(
        strip(&oci),
        strip(&https),
        "the two forms differ only in url and sha256"
    );
}

/// The manifests with budgets match their CRDs too (their other fields are tested to be the plain
/// manifests' in ratelimit-server/tests/shipped.rs).
#[test]
fn quota_manifests_match_their_crds() {
    let m = check_manifest(&repo_root().join("envoy/istio/wasmplugin-quota.yaml"), &istio_crds());
    assert_eq!(m["kind"], "WasmPlugin");
    assert!(m["spec"]["pluginConfig"]["quota"]["budgets"].is_array());
    let m = check_manifest(
        &repo_root().join("envoy/envoy-gateway/extension-policy-quota.yaml"),
        &envoy_gateway_crds(),
    );
    assert_eq!(m["kind"], "EnvoyExtensionPolicy");
    assert!(ai_attribution_wasm(&m)["config"]["quota"]["budgets"].is_array());
}

#[test]
fn istio_telemetry_matches_its_crd() {
    let m = check_manifest(&telemetry_path(), &istio_crds());
    assert_eq!(m["apiVersion"], "telemetry.istio.io/v1");
    assert_eq!(m["kind"], "Telemetry");
    let providers: Vec<&Value> = m["spec"]["accessLogging"]
        .as_array()
        .expect("accessLogging")
        .iter()
        .flat_map(|a| a["providers"].as_array().into_iter().flatten())
        .collect();
    assert!(
        providers.iter().any(|p| p["name"] == "ai-attribution-log"),
        "telemetry.yaml should switch on the ai-attribution-log provider"
    );
}

/// Istio's form of `envoy/otel.yaml`: a Telemetry resource (checked against its CRD) that
/// switches on an `envoyOtelAls` provider whose labels and text are the attributes and body of
/// `envoy/otel.yaml`.
#[test]
fn istio_otel_provider_matches_envoy_otel_yaml() {
    let root = repo_root();
    let telemetry = check_manifest(&root.join("envoy/istio/telemetry-otel.yaml"), &istio_crds());
    assert_eq!(telemetry["kind"], "Telemetry");
    let providers = &telemetry["spec"]["accessLogging"][0]["providers"];
    assert_eq!(providers, &json!([{"name": "ai-attribution-otel"}]));
    assert_eq!(telemetry["spec"]["accessLogging"][0]["match"]["mode"], "SERVER");

    let mesh = yaml_document(&root.join("envoy/istio/meshconfig-otel.yaml"));
    let provider = mesh["spec"]["meshConfig"]["extensionProviders"]
        .as_array()
        .expect("extensionProviders")
        .iter()
        .find(|p| p["name"] == "ai-attribution-otel")
        .expect("the ai-attribution-otel provider");
    let als = &provider["envoyOtelAls"];
    assert!(als["service"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(als["port"].as_u64().is_some_and(|p| p > 0 && p < 65536));

    let envoy = yaml_document(&root.join("envoy/otel.yaml"));
    let mut logs = Vec::new();
    find_key(&envoy, "access_log", &mut logs);
    assert_eq!(logs.len(), 1, "envoy/otel.yaml has one access_log");
    let otel = &logs[0][0]["typed_config"];
    let attributes: Map<String, Value> = otel["attributes"]["values"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|kv| {
            (
                kv["key"].as_str().expect("key").to_string(),
                kv["value"]["string_value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        als["logFormat"]["labels"].as_object(),
        Some(&attributes),
        "the Istio provider's labels are envoy/otel.yaml's attributes"
    );
    assert_eq!(als["logFormat"]["text"], otel["body"]["string_value"]);
    assert_eq!(als["logName"], otel["common_config"]["log_name"]);
}

#[test]
fn envoy_gateway_extension_policy_matches_its_crd() {
    let m = check_manifest(&extension_policy_path(), &envoy_gateway_crds());
    assert_eq!(m["apiVersion"], "gateway.envoyproxy.io/v1alpha1");
    assert_eq!(m["kind"], "EnvoyExtensionPolicy");
    let spec = &m["spec"];
    // CEL rules of the CRD, by hand.
    let refs = spec["targetRefs"].as_array().expect("targetRefs");
    assert!(spec.get("targetRef").is_none(), "either targetRef or targetRefs");
    for r in refs {
        assert_eq!(r["group"], "gateway.networking.k8s.io");
        assert!(
            [
                "Gateway",
                "ListenerSet",
                "HTTPRoute",
                "GRPCRoute",
                "TCPRoute",
                "UDPRoute",
                "TLSRoute"
            ]
            .iter()
            .any(|k| r["kind"] == *k),
            "targetRefs kind {}",
            r["kind"]
        );
    }
    assert!(refs.iter().any(|r| r["kind"] == "HTTPRoute" && r["name"] == "ai-route"));
    let wasm = ai_attribution_wasm(&m);
    let code = &wasm["code"];
    for (kind, field) in [("HTTP", "http"), ("Image", "image")] {
        assert_eq!(
            code["type"] == kind,
            code.get(field).is_some(),
            "if type is {kind}, {field} field needs to be set (and only then)"
        );
    }
    assert_eq!(wasm["rootID"], "ai_attribution", "the filter's root_id");
    assert_eq!(wasm["failOpen"], false);
}

fn ai_attribution_wasm(policy: &Value) -> &Value {
    policy["spec"]["wasm"]
        .as_array()
        .expect("spec.wasm")
        .iter()
        .find(|w| w["name"] == "ai-attribution")
        .expect("a wasm entry named ai-attribution")
}

/// The CRD check is not vacuous: broken copies of the manifests are refused.
#[test]
fn crd_checks_refuse_broken_manifests() {
    let cases: [(PathBuf, PathBuf, &str, Value); 5] = [
        (wasmplugin_path(), istio_crds(), "/spec/phase", json!("AUTHZZ")),
        (
            wasmplugin_path(),
            istio_crds(),
            "/spec/failstrategy",
            json!("FAIL_OPEN"),
        ),
        (
            telemetry_path(),
            istio_crds(),
            "/spec/accessLogging/0/providers/0",
            json!({}),
        ),
        (
            extension_policy_path(),
            envoy_gateway_crds(),
            "/spec/wasm/0/failOpen",
            json!("no"),
        ),
        (
            extension_policy_path(),
            envoy_gateway_crds(),
            "/spec/wasm/0/code/type",
            json!("OCI"),
        ),
    ];
    for (manifest, crds, pointer, value) in cases {
        let mut m = yaml_document(&manifest);
        let (parent, field) = pointer.rsplit_once('/').expect("a pointer");
        let target = m.pointer_mut(parent).expect("the parent exists");
        match target {
            Value::Object(o) => {
                o.insert(field.to_string(), value);
            }
            Value::Array(a) => a[field.parse::<usize>().expect("an index")] = value,
            _ => panic!("{pointer}: not a container"),
        }
        let kind = m["kind"].as_str().expect("kind");
        let api_version = m["apiVersion"].as_str().expect("apiVersion");
        let crd = Validator::new(kind, crd_spec_schema(&crds, api_version, kind));
        assert!(
            crd.errors(&m["spec"]).is_some(),
            "{}: the {kind} CRD accepted {pointer} = {}",
            manifest.display(),
            m.pointer(pointer).expect("set")
        );
    }
}

// ---- the plugin configurations we ship --------------------------------------------------

/// Every `configuration.value` of a wasm filter with `root_id: ai_attribution` in a YAML tree.
fn envoy_plugin_configs(node: &Value, found: &mut Vec<Value>) {
    match node {
        Value::Object(o) => {
            if o.get("root_id") == Some(&json!("ai_attribution")) {
                let value = o
                    .get("configuration")
                    .and_then(|c| c.get("value"))
                    .and_then(Value::as_str)
                    .expect("the ai_attribution wasm filter has a configuration.value string");
                found.push(
                    serde_json::from_str(value).unwrap_or_else(|e| panic!("configuration.value is not JSON: {e}")),
                );
            }
            o.values().for_each(|v| envoy_plugin_configs(v, found));
        }
        Value::Array(a) => a.iter().for_each(|v| envoy_plugin_configs(v, found)),
        _ => {}
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// Every plugin configuration the repository ships, with where it comes from. Each must load
/// in this build, so each also goes through the filter's parser.
fn shipped_configs() -> Vec<(String, Value)> {
    let root = repo_root();
    let mut configs = Vec::new();

    let plugin = yaml_document(&wasmplugin_path());
    configs.push((
        "envoy/istio/wasmplugin.yaml spec.pluginConfig".to_string(),
        plugin["spec"]["pluginConfig"].clone(),
    ));

    let egress = yaml_document(&repo_root().join("envoy/istio/egress/wasmplugin.yaml"));
    configs.push((
        "envoy/istio/egress/wasmplugin.yaml spec.pluginConfig".to_string(),
        egress["spec"]["pluginConfig"].clone(),
    ));

    let policy = yaml_document(&extension_policy_path());
    configs.push((
        "envoy/envoy-gateway/extension-policy.yaml spec.wasm[ai-attribution].config".to_string(),
        ai_attribution_wasm(&policy)["config"].clone(),
    ));

    // With budgets: the Istio WasmPlugin and the Envoy Gateway policy that carry `quota`.
    let plugin = yaml_document(&repo_root().join("envoy/istio/wasmplugin-quota.yaml"));
    configs.push((
        "envoy/istio/wasmplugin-quota.yaml spec.pluginConfig".to_string(),
        plugin["spec"]["pluginConfig"].clone(),
    ));
    let policy = yaml_document(&repo_root().join("envoy/envoy-gateway/extension-policy-quota.yaml"));
    configs.push((
        "envoy/envoy-gateway/extension-policy-quota.yaml spec.wasm[ai-attribution].config".to_string(),
        ai_attribution_wasm(&policy)["config"].clone(),
    ));

    for file in yaml_files(&root.join("envoy")) {
        let mut found = Vec::new();
        for doc in yaml_documents(&file) {
            envoy_plugin_configs(&doc, &mut found);
        }
        let name = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
        if name == "envoy/envoy.yaml" {
            assert!(!found.is_empty(), "envoy/envoy.yaml: no ai_attribution wasm filter");
        }
        for (i, config) in found.into_iter().enumerate() {
            configs.push((format!("{name} wasm filter #{i} configuration.value"), config));
        }
    }

    let scenarios = root.join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&scenarios)
        .unwrap_or_else(|e| panic!("{}: {e}", scenarios.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", scenarios.display());
    for file in files {
        let doc: Value = serde_json::from_str(&read(&file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let config = doc.get("config").cloned().unwrap_or_else(|| json!({}));
        let name = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
        configs.push((format!("{name} config"), config));
    }
    configs
}

#[test]
fn shipped_plugin_configs_match_the_schema_and_load() {
    let schema = Validator::plugin();
    let configs = shipped_configs();
    assert!(configs.len() >= 7, "only {} configs found", configs.len());
    for (name, config) in &configs {
        schema.assert_valid(name, config);
        if let Err(e) = parse_config(config) {
            panic!("{name}: the filter refuses it: {e}");
        }
    }
}

/// The ```json blocks of a Markdown file that are plugin configurations (a top-level `mode` or
/// `dimensions`), with their first line numbers.
fn markdown_config_blocks(text: &str) -> Vec<(usize, Value)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, Vec<&str>)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = fence.strip_prefix("```") {
                    open = Some((i + 1, info.trim().to_string(), Vec::new()));
                }
            }
            Some((start, info, body)) if fence.starts_with("```") => {
                if info != "json" {
                    continue;
                }
                let body = body.join("\n");
                let mentions_config = body.contains("\"dimensions\"") || body.contains("\"mode\"");
                match serde_json::from_str::<Value>(&body) {
                    Ok(v) if v.get("dimensions").is_some() || v.get("mode").is_some() => {
                        blocks.push((start, v));
                    }
                    Ok(_) => {}
                    Err(e) => assert!(
                        !mentions_config,
                        "line {start}: a ```json block that looks like a plugin configuration is \
                         not JSON ({e}); fix it, or mark a fragment as ```text"
                    ),
                }
            }
            Some((start, info, mut body)) => {
                body.push(line);
                open = Some((start, info, body));
            }
        }
    }
    blocks
}

#[test]
fn markdown_config_blocks_are_the_json_configs() {
    let text = "# t\n```json\n{\"mode\": \"audit\"}\n```\n```json\n{\"error\": {}}\n```\n\
                ```yaml\nmode: x\n```\n  ```json\n  {\"dimensions\": {}}\n  ```\n";
    let lines: Vec<usize> = markdown_config_blocks(text).into_iter().map(|(line, _)| line).collect();
    assert_eq!(lines, [2, 11]);
}

#[test]
fn readme_config_examples_match_the_schema() {
    let text = read(&repo_root().join("README.md"));
    let schema = Validator::plugin();
    let blocks = markdown_config_blocks(&text);
    for (line, config) in &blocks {
        schema.assert_valid(&format!("README.md line {line}"), config);
    }
    eprintln!("README.md: {} plugin configuration examples checked", blocks.len());
}

/// The README's full example (the first block of its configuration walk-through) shows every
/// field, matches the schema and loads.
#[test]
fn readme_full_example_shows_every_field() {
    let readme = read(&repo_root().join("README.md"));
    let section = readme
        .split("\n## Configuration walk-through")
        .nth(1)
        .expect("README.md has a configuration walk-through");
    let (_, example) = markdown_config_blocks(section)
        .into_iter()
        .next()
        .expect("the walk-through has a configuration example");
    Validator::plugin().assert_valid("the README's full example", &example);
    let fields: BTreeSet<&str> = example
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, RAW_CONFIG_FIELDS.into(), "the full example shows every field");
    if let Err(e) = parse_config(&example) {
        panic!("the README's full example does not load: {e}");
    }
}

#[test]
fn istio_access_log_labels_match_envoy_yaml() {
    let root = repo_root();
    let mesh = yaml_document(&root.join("envoy/istio/meshconfig-accesslog.yaml"));
    let providers = mesh["spec"]["meshConfig"]["extensionProviders"]
        .as_array()
        .expect("spec.meshConfig.extensionProviders");
    let provider = providers
        .iter()
        .find(|p| p["name"] == "ai-attribution-log")
        .expect("the ai-attribution-log provider");
    let labels = &provider["envoyFileAccessLog"]["logFormat"]["labels"];
    assert!(labels.is_object(), "envoyFileAccessLog.logFormat.labels");

    let envoy = yaml_document(&root.join("envoy/envoy.yaml"));
    let mut formats = Vec::new();
    find_key(&envoy, "json_format", &mut formats);
    assert_eq!(formats.len(), 1, "envoy/envoy.yaml has one json_format");
    assert_eq!(
        labels, formats[0],
        "the Istio log line should carry the same fields as envoy.yaml"
    );

    let labels = labels.as_object().expect("labels");
    for key in record_keys() {
        assert_eq!(
            labels.get(key),
            Some(&json!(format!("%FILTER_STATE(wasm.ai_attribution.{key}:PLAIN)%"))),
            "record key {key}"
        );
    }
    assert_eq!(labels["record"], "%FILTER_STATE(wasm.ai_attribution:TYPED)%");
}

fn find_key<'a>(node: &'a Value, key: &str, found: &mut Vec<&'a Value>) {
    match node {
        Value::Object(o) => {
            if let Some(v) = o.get(key) {
                found.push(v);
            }
            o.values().for_each(|v| find_key(v, key, found));
        }
        Value::Array(a) => a.iter().for_each(|v| find_key(v, key, found)),
        _ => {}
    }
}

// ---- the schema against config/ --------------------------------------------------------------

/// The fields of `RawConfig` in filter/src/config/raw.rs.
const RAW_CONFIG_FIELDS: [&str; 19] = [
    "mode",
    "dimensions",
    "require",
    "header_trust",
    "jwt",
    "api_keys",
    "peer",
    "model_calls",
    "mcp",
    "quota",
    "exceptions",
    "reject",
    "correlation",
    "usage",
    "pricing",
    "metrics",
    "record",
    "privacy",
    "limits",
];

fn properties<'a>(schema: &'a Value, pointer: &str) -> &'a Map<String, Value> {
    schema
        .pointer(&format!("{pointer}/properties"))
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("schema{pointer}: no properties"))
}

#[test]
fn schema_top_level_fields_are_raw_config_fields() {
    let schema = plugin_schema();
    let names: BTreeSet<&str> = properties(&schema, "").keys().map(String::as_str).collect();
    assert_eq!(names, RAW_CONFIG_FIELDS.into());
    assert_eq!(schema["additionalProperties"], false, "RawConfig denies unknown fields");
}

/// One `struct Raw*` of config.rs: its fields, and which have no serde default (required).
struct RawStruct {
    deny_unknown_fields: bool,
    fields: BTreeSet<String>,
    required: BTreeSet<String>,
}

/// Reads the `struct Raw*` definitions out of config.rs, so that a field added there without
/// the schema (or the other way round) fails here.
fn raw_structs(source: &str) -> BTreeMap<String, RawStruct> {
    let mut structs = BTreeMap::new();
    let mut attributes: Vec<&str> = Vec::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let line = line.strip_prefix("pub(super) ").unwrap_or(line);
        if line.starts_with("#[") {
            attributes.push(line);
            continue;
        }
        let Some(name) = line
            .strip_prefix("struct ")
            .and_then(|rest| rest.strip_suffix(" {"))
            .filter(|name| name.starts_with("Raw"))
        else {
            attributes.clear();
            continue;
        };
        let mut raw = RawStruct {
            deny_unknown_fields: attributes.iter().any(|a| a.contains("deny_unknown_fields")),
            fields: BTreeSet::new(),
            required: BTreeSet::new(),
        };
        attributes.clear();
        let mut has_default = false;
        for line in lines.by_ref() {
            let line = line.trim();
            if line == "}" {
                break;
            }
            let line = line.strip_prefix("pub ").unwrap_or(line);
            if line.starts_with("#[serde(default") {
                has_default = true;
            } else if line.starts_with("///") {
                continue;
            } else if let Some((field, _)) = line.split_once(':') {
                if field.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    raw.fields.insert(field.to_string());
                    if !has_default {
                        raw.required.insert(field.to_string());
                    }
                }
                has_default = false;
            }
        }
        structs.insert(name.to_string(), raw);
    }
    structs
}

#[test]
fn schema_objects_match_every_raw_struct_in_config_rs() {
    let source =
        read(&repo_root().join("filter/src/config/raw.rs")) + &read(&repo_root().join("filter/src/config/quota.rs"));
    let structs = raw_structs(&source);
    let schema = plugin_schema();
    // Where each struct lives in the schema.
    let places: BTreeMap<&str, &str> = BTreeMap::from([
        ("RawConfig", ""),
        ("RawHeaderTrust", "/properties/header_trust"),
        ("RawJwt", "/properties/jwt"),
        ("RawApiKeys", "/properties/api_keys"),
        ("RawPeer", "/properties/peer"),
        ("RawModelCalls", "/properties/model_calls"),
        ("RawFree", "/properties/model_calls/properties/free/items"),
        ("RawExtra", "/properties/model_calls/properties/extra/items"),
        ("RawMcp", "/properties/mcp"),
        ("RawMcpEndpoint", "/properties/mcp/properties/endpoints/items"),
        ("RawQuota", "/properties/quota"),
        ("RawBudget", "/properties/quota/properties/budgets/items"),
        ("RawException", "/properties/exceptions/items"),
        ("RawCovers", "/properties/exceptions/items/properties/covers"),
        ("RawRelaxes", "/properties/exceptions/items/properties/relaxes"),
        ("RawReject", "/properties/reject"),
        ("RawCorrelation", "/properties/correlation"),
        ("RawUsage", "/properties/usage"),
        ("RawPrice", "/properties/pricing/additionalProperties"),
        ("RawMetrics", "/properties/metrics"),
        ("RawRecord", "/properties/record"),
        ("RawPrivacy", "/properties/privacy"),
        ("RawLimits", "/properties/limits"),
    ]);
    let found: BTreeSet<&str> = structs.keys().map(String::as_str).collect();
    let mapped: BTreeSet<&str> = places.keys().copied().collect();
    assert_eq!(found, mapped, "config.rs's Raw structs vs the ones this test maps");
    for (name, raw) in &structs {
        let pointer = places[name.as_str()];
        let object = schema.pointer(pointer).expect("mapped place exists");
        let fields: BTreeSet<String> = properties(&schema, pointer).keys().cloned().collect();
        assert_eq!(fields, raw.fields, "{name} vs schema{pointer}");
        let required: BTreeSet<String> = object["required"]
            .as_array()
            .map(|r| r.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        assert_eq!(required, raw.required, "{name}: fields without a serde default");
        assert!(raw.deny_unknown_fields, "{name} should deny unknown fields");
        assert_eq!(object["additionalProperties"], false, "schema{pointer}");
    }
}

/// The enum variants of `pub enum NAME` in config.rs, in snake_case as serde writes them.
fn enum_variants(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("pub enum {name} {{"))
        .unwrap_or_else(|| panic!("config.rs: no enum {name}"));
    let body = &source[start..];
    let body = &body[body.find('{').expect("{") + 1..body.find('}').expect("}")];
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut snake = String::new();
            for (i, c) in l.trim_end_matches(',').chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            snake
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn schema_names_match_the_filter() {
    let source = read(&repo_root().join("filter/src/config/mod.rs"));
    let schema = plugin_schema();
    assert_eq!(
        strings(&schema["properties"]["mode"]["enum"]),
        enum_variants(&source, "Mode")
    );
    assert_eq!(
        strings(
            schema
                .pointer("/properties/jwt/properties/from/enum")
                .expect("jwt.from")
        ),
        enum_variants(&source, "JwtFrom")
    );
    assert_eq!(
        strings(
            schema
                .pointer("/properties/model_calls/properties/providers/oneOf/1/items/enum")
                .expect("providers")
        ),
        PROVIDER_NAMES
    );
    assert_eq!(
        strings(
            schema
                .pointer("/properties/dimensions/propertyNames/not/enum")
                .expect("reserved dimension names")
        ),
        Field::ALL.iter().map(|f| f.scalar_name()).collect::<Vec<_>>()
    );
    let peer_fields: Vec<&str> = PeerField::ALL.iter().map(|(n, _)| *n).collect();
    let peer = format!("^peer:({})$", peer_fields.join("|"));
    let source_kinds = schema["$defs"]["source"]["anyOf"].as_array().expect("anyOf");
    assert!(
        source_kinds.iter().any(|k| k["pattern"] == peer),
        "the peer: pattern should be {peer}"
    );
}

/// Every property documented, and every optional one with its default.
#[test]
fn schema_documents_every_property() {
    fn walk(node: &Value, at: &str) {
        match node {
            Value::Object(o) => {
                if let Some(Value::Object(props)) = o.get("properties") {
                    let required = o.get("required").cloned().unwrap_or_else(|| json!([]));
                    for (name, prop) in props {
                        let path = format!("{at}/{name}");
                        assert!(
                            prop["description"].as_str().is_some_and(|d| !d.is_empty()),
                            "{path}: no description"
                        );
                        let optional = !required.as_array().expect("required").contains(&json!(name));
                        assert!(!optional || prop.get("default").is_some(), "{path}: no default");
                    }
                }
                for (k, v) in o {
                    walk(v, &format!("{at}/{k}"));
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, at)),
            _ => {}
        }
    }
    walk(&plugin_schema(), "");
}

/// The schema's defaults are the parser's: each one written out gives the same configuration
/// as leaving it out, and an object's default is its fields' defaults.
#[test]
fn schema_defaults_are_the_parsers_defaults() {
    let schema = plugin_schema();
    let implicit = parse_config(&json!({})).expect("the empty config loads");
    for (field, prop) in properties(&schema, "") {
        let default = prop.get("default").unwrap_or_else(|| panic!("{field}: no default"));
        let explicit = parse_config(&json!({ field: default })).unwrap_or_else(|e| panic!("{field} = {default}: {e}"));
        assert_eq!(explicit, implicit, "{field}: the schema's default is not the parser's");
        let Some(Value::Object(inner)) = prop.get("properties") else {
            continue;
        };
        let mut assembled = Map::new();
        for (name, sub) in inner {
            if let Some(d) = sub.get("default") {
                assembled.insert(name.clone(), d.clone());
                let explicit = parse_config(&json!({ field: { name: d } }))
                    .unwrap_or_else(|e| panic!("{field}.{name} = {d}: {e}"));
                assert_eq!(explicit, implicit, "{field}.{name}: not the parser's default");
            }
        }
        assert_eq!(
            default,
            &Value::Object(assembled),
            "{field}: the object's default should be its fields' defaults"
        );
    }
}

fn long_name(n: usize) -> String {
    "a".repeat(n)
}

/// Configs the filter refuses at load time that the schema can tell from their shape alone.
fn invalid_configs() -> Vec<String> {
    let mut cases: Vec<String> = [
        r#"{"modee":"audit"}"#,
        r#"{"correlation":{"headr":"x"}}"#,
        r#"{"mode":"block"}"#,
        r#"{"reject":{"status":200}}"#,
        r#"{"reject":{"status":600}}"#,
        r#"{"dimensions":{"user":["header:x-user","heder:x"]},"require":[["user"]]}"#,
        r#"{"dimensions":{"user":["header"]},"require":[["user"]]}"#,
        r#"{"dimensions":{"user":["header:"]},"require":[["user"]]}"#,
        r#"{"dimensions":{"user":["header:x y"]},"require":[["user"]]}"#,
        r#"{"dimensions":{"user":["peer:cn"]},"require":[["user"]]}"#,
        r#"{"dimensions":{"user":["property:a..b"]},"require":[["user"]]}"#,
        r#"{"dimensions":{"user":["static: "]},"require":[["user"]]}"#,
        r#"{"dimensions":{"User":["static:x"]},"require":[["User"]]}"#,
        r#"{"dimensions":{"decision":["static:x"]},"require":[["decision"]]}"#,
        r#"{"dimensions":{"user":[]}}"#,
        r#"{"require":[]}"#,
        r#"{"require":[[]]}"#,
        r#"{"header_trust":{"peers":["corp/ns/x"]}}"#,
        r#"{"jwt":{"from":"cookie"}}"#,
        r#"{"jwt":{"payload_key":""}}"#,
        r#"{"jwt":{"header":"X-Jwt"}}"#,
        r#"{"api_keys":{"headers":["x api key"]}}"#,
        r#"{"api_keys":{"owners":{"abc":{"team":"x"}}}}"#,
        r#"{"api_keys":{"owners":{"sha256:2C26B46B68FF":{"team":"x"}}}}"#,
        r#"{"api_keys":{"owners":{"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae":{"team":" "}}}}"#,
        r#"{"model_calls":{"providers":"some"}}"#,
        r#"{"model_calls":{"providers":["openai","foo"]}}"#,
        r#"{"model_calls":{"hosts":["api.openai.com:443"]}}"#,
        r#"{"model_calls":{"extra":[{"path_prefix":"llm","provider":"x"}]}}"#,
        r#"{"model_calls":{"extra":[{"path_prefix":"/llm"}]}}"#,
        r#"{"model_calls":{"extra":[{"path_prefix":"/llm","provider":"a;b"}]}}"#,
        r#"{"model_calls":{"extra":[{"path_prefix":"/llm","provider":"x","operation":"Chat"}]}}"#,
        r#"{"mcp":{"endpoints":[{"path_prefix":"mcp"}]}}"#,
        r#"{"mcp":{"endpoints":[{"path_prefix":"/mcp","hosts":["a:80"]}]}}"#,
        r#"{"mcp":{"methods":["tools call"]}}"#,
        r#"{"mcp":{"header_mismatch":"drop"}}"#,
        r#"{"mcp":{"require":[]}}"#,
        r#"{"dimensions":{"tool":["static:x"]}}"#,
        r#"{"dimensions":{"session":["mcp:id"]}}"#,
        r#"{"quota":{"budgets":[{"name":"b","descriptors":["user"],"hits":"tokens"}]}}"#,
        r#"{"quota":{"cluster":"rl","budgets":[{"name":"b c","descriptors":["user"],"hits":"tokens"}]}}"#,
        r#"{"quota":{"cluster":"rl","budgets":[{"name":"b","descriptors":[],"hits":"tokens"}]}}"#,
        r#"{"quota":{"cluster":"rl","budgets":[{"name":"b","descriptors":["user"],"hits":"dollars"}]}}"#,
        r#"{"quota":{"failure_mode":"maybe"}}"#,
        r#"{"quota":{"timeout_ms":0}}"#,
        r#"{"exceptions":[{"name":"x","covers":{"dimensions":{"user":["a"]}},"relaxes":{"require":[["user"]]},"until":"soon"}]}"#,
        r#"{"exceptions":[{"name":"x","covers":{},"relaxes":{"require":[["user"]]},"until":"2026-12-31"}]}"#,
        r#"{"exceptions":[{"name":"x","covers":{"spiffe_ids":["corp/ns/a"]},"relaxes":{"require":[["user"]]},"until":"2026-12-31"}]}"#,
        r#"{"correlation":{"header":"x corr"}}"#,
        r#"{"usage":{"enabled":"yes"}}"#,
        r#"{"pricing":{"gpt-*o":{"input":1,"output":2}}}"#,
        r#"{"pricing":{"gpt-4o":{"input":-1,"output":2}}}"#,
        r#"{"pricing":{"gpt-4o":{"input":1}}}"#,
        r#"{"pricing":{"gpt-4o":{"input":1,"output":2,"cache":1}}}"#,
        r#"{"metrics":{"max_label_values":0}}"#,
        r#"{"metrics":{"max_label_values":10001}}"#,
        r#"{"record":{"scalar_keys":"some"}}"#,
        r#"{"limits":{"max_value_bytes":0}}"#,
        r#"{"limits":{"max_value_bytes":8193}}"#,
        r#"[1]"#,
    ]
    .map(String::from)
    .to_vec();
    let name = long_name(65);
    cases.push(format!(
        r#"{{"dimensions":{{"{name}":["static:x"]}},"require":[["{name}"]]}}"#
    ));
    cases
}

#[test]
fn schema_refuses_what_the_filter_refuses() {
    let schema = Validator::plugin();
    for case in invalid_configs() {
        let config: Value = serde_json::from_str(&case).expect("JSON");
        assert!(parse_config(&config).is_err(), "the filter accepts {case}");
        assert!(schema.errors(&config).is_some(), "the schema accepts {case}");
    }
}

#[test]
fn schema_accepts_what_the_filter_accepts() {
    let name = long_name(64);
    let mut cases: Vec<String> = [
        r#"{}"#,
        r#"{"dimensions":{"user":["header:X-User-Id"]},"require":[["user"]]}"#,
        r#"{"correlation":{"header":"X-Corr-Id","propagate":["user"],"baggage":true}}"#,
        r#"{"api_keys":{"headers":["X-API-Key"],"owners":{"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae":{"service_account":" batch "}}}}"#,
        r#"{"pricing":{"*":{"input":1,"output":2},"gpt-4o":{"input":0,"output":0.5,"cached_input":null}}}"#,
        r#"{"model_calls":{"providers":[],"hosts":["*.openai.azure.com","API.OpenAI.com"]}}"#,
        r#"{"model_calls":{"providers":["openai","aws.bedrock"],"extra":[{"path_prefix":"/","provider":"internal llm","operation":"embeddings"}]}}"#,
        r#"{"dimensions":{"tier":["node:MISSING","static:a:b"],"user":["property:xds.route_name"]},"require":[["tier","user"]],"record":{"scalar_keys":["decision","tier"]},"metrics":{"enabled":false,"labels":["model","tier"],"max_label_values":10000}}"#,
        r#"{"reject":{"status":599},"limits":{"max_value_bytes":8192},"usage":{"enabled":false,"force_stream_usage":true}}"#,
        r#"{"header_trust":{"peers":["spiffe://corp.example/ns/edge/sa/gw"]},"jwt":{"from":"bearer_unverified","payload_key":"p","header":"x-payload"}}"#,
        r#"{"mode":"audit","record":{"scalar_keys":"all"},"model_calls":{"providers":"all"}}"#,
        r#"{"dimensions":{"user":["header:x-user-id"],"business_unit":["header:x-bu"]},"require":[["user"]],"quota":{"cluster":"outbound|8081||ratelimit.ai.svc.cluster.local","domain":"d","timeout_ms":50,"failure_mode":"deny","filter_state":true,"budgets":[{"name":"tokens_per_bu","descriptors":["business_unit","model"],"hits":"tokens","require":[["business_unit"]]},{"name":"r","descriptors":["provider"],"hits":"requests","require":null}]},"exceptions":[{"name":"INC-1","covers":{"dimensions":{"user":["batch"]},"spiffe_ids":["spiffe://corp/ns/a/sa/b"]},"relaxes":{"require":[["user"]],"budgets":["r"]},"until":"2026-12-31T23:59:59Z"}]}"#,
        r#"{"dimensions":{"session":["mcp:session"],"service_account":["peer:spiffe_id"]},"require":[["service_account"]],"mcp":{"endpoints":[{"path_prefix":"/mcp","hosts":["tools.example.com"]}],"require":[["service_account","session"]],"methods":["tools/call"],"header_mismatch":"reject"}}"#,
    ]
    .map(String::from)
    .to_vec();
    cases.push(format!(
        r#"{{"dimensions":{{"{name}":["static:x"]}},"require":[["{name}"]]}}"#
    ));
    let schema = Validator::plugin();
    for case in cases {
        let config: Value = serde_json::from_str(&case).expect("JSON");
        if let Err(e) = parse_config(&config) {
            panic!("the filter refuses {case}: {e}");
        }
        if let Some(errors) = schema.errors(&config) {
            panic!("the schema refuses {case}:\n{errors}");
        }
    }
}

// ---- Istio egress and metrics ---------------------------------------------------------------

fn egress_dir() -> PathBuf {
    repo_root().join("envoy/istio/egress")
}

/// Every document of every YAML file in `envoy/istio/egress/`, with its file name.
fn egress_documents() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    for file in yaml_files(&egress_dir()) {
        let name = file.file_name().expect("a file name").to_string_lossy().into_owned();
        for doc in yaml_documents(&file) {
            docs.push((name.clone(), doc));
        }
    }
    docs
}

fn egress_of_kind(kind: &str) -> Vec<Value> {
    egress_documents()
        .into_iter()
        .filter(|(_, d)| d["kind"] == kind)
        .map(|(_, d)| d)
        .collect()
}

const PROVIDER_HOSTS: [&str; 2] = ["api.openai.com", "api.anthropic.com"];
const EGRESS_GATEWAY: &str = "istio-egressgateway.istio-system.svc.cluster.local";

#[test]
fn istio_egress_wasmplugin_matches_its_crd() {
    let m = check_manifest(&egress_dir().join("wasmplugin.yaml"), &istio_crds());
    let spec = &m["spec"];
    assert_eq!(spec["pluginName"], "ai_attribution");
    assert_eq!(spec["phase"], "AUTHZ");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    // WorkloadMode: "if the workload is a gateway", CLIENT selects it.
    assert_eq!(spec["match"], json!([{"mode": "CLIENT"}]));
    let gateway = &egress_of_kind("Gateway")[0];
    assert_eq!(
        spec["selector"]["matchLabels"], gateway["spec"]["selector"],
        "the plugin runs on the gateway the Gateway resource configures"
    );
    assert_eq!(m["metadata"]["namespace"], gateway["metadata"]["namespace"]);
    let sources = spec["pluginConfig"]["dimensions"]["service_account"].clone();
    assert_eq!(sources, json!(["peer:spiffe_id"]), "the caller's mTLS identity");
}

/// The egress manifests are not checked against a CRD schema (the networking CRDs are not in
/// integration/crds/): this checks their shape and what the deployment relies on, for each
/// provider: a mesh-external ServiceEntry, the Gateway's Istio mTLS server, the two routing hops,
/// and TLS origination with SNI and the provider's name checked.
#[test]
fn istio_egress_routes_each_provider_through_the_gateway_with_tls_origination() {
    let docs = egress_documents();
    assert!(docs.len() >= 9, "{} documents", docs.len());
    for (file, d) in &docs {
        let keys: BTreeSet<&str> = d.as_object().expect("a mapping").keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["apiVersion", "kind", "metadata", "spec"]),
            "{file}"
        );
        let expected_api = match d["kind"].as_str() {
            Some("WasmPlugin") => "extensions.istio.io/v1alpha1",
            Some("ServiceEntry" | "Gateway" | "VirtualService" | "DestinationRule") => "networking.istio.io/v1",
            other => panic!("{file}: unexpected kind {other:?}"),
        };
        assert_eq!(d["apiVersion"], expected_api, "{file}");
        assert_eq!(d["metadata"]["namespace"], "istio-system", "{file}");
    }
    let gateway = &egress_of_kind("Gateway")[0];
    let gateway_name = gateway["metadata"]["name"].as_str().expect("a name");
    let server = &gateway["spec"]["servers"][0];
    assert_eq!(
        server["tls"]["mode"], "ISTIO_MUTUAL",
        "callers reach the gateway over Istio mTLS"
    );
    let gateway_port = &server["port"]["number"];
    for host in PROVIDER_HOSTS {
        assert!(
            server["hosts"].as_array().expect("hosts").contains(&json!(host)),
            "Gateway: {host}"
        );
        let entries = egress_of_kind("ServiceEntry");
        let entry = entries
            .iter()
            .find(|e| e["spec"]["hosts"] == json!([host]))
            .unwrap_or_else(|| panic!("no ServiceEntry for {host}"));
        assert_eq!(entry["spec"]["location"], "MESH_EXTERNAL");
        assert_eq!(entry["spec"]["resolution"], "DNS");
        let ports = &entry["spec"]["ports"];
        assert!(ports
            .as_array()
            .expect("ports")
            .contains(&json!({"number": 443, "name": "https", "protocol": "HTTPS"})));

        let routes = egress_of_kind("VirtualService");
        let vs = routes
            .iter()
            .find(|v| v["spec"]["hosts"] == json!([host]))
            .unwrap_or_else(|| panic!("no VirtualService for {host}"));
        assert_eq!(vs["spec"]["gateways"], json!(["mesh", gateway_name]));
        let http = vs["spec"]["http"].as_array().expect("http routes");
        let hop = |gw: &str| {
            http.iter()
                .find(|r| r["match"][0]["gateways"] == json!([gw]))
                .unwrap_or_else(|| panic!("{host}: no route from {gw}"))["route"][0]["destination"]
                .clone()
        };
        let first = hop("mesh");
        assert_eq!(first["host"], EGRESS_GATEWAY);
        assert_eq!(&first["port"]["number"], gateway_port);
        let second = hop(gateway_name);
        assert_eq!(second, json!({"host": host, "port": {"number": 443}}));

        let rules = egress_of_kind("DestinationRule");
        let to_gateway = rules
            .iter()
            .find(|r| r["spec"]["host"] == EGRESS_GATEWAY)
            .expect("a DestinationRule for the egress gateway");
        let subset = to_gateway["spec"]["subsets"]
            .as_array()
            .expect("subsets")
            .iter()
            .find(|s| s["name"] == first["subset"])
            .unwrap_or_else(|| panic!("{host}: no subset {}", first["subset"]));
        assert_eq!(
            subset["trafficPolicy"]["portLevelSettings"][0]["tls"],
            json!({"mode": "ISTIO_MUTUAL", "sni": host})
        );
        let origination = rules
            .iter()
            .find(|r| r["spec"]["host"] == host)
            .unwrap_or_else(|| panic!("no DestinationRule for {host}"));
        let setting = &origination["spec"]["trafficPolicy"]["portLevelSettings"][0];
        assert_eq!(setting["port"]["number"], 443);
        assert_eq!(
            setting["tls"],
            json!({"mode": "SIMPLE", "sni": host, "subjectAltNames": [host]}),
            "TLS origination to {host}"
        );
    }
}

/// The stats tags Istio proxies get from stats-tags-bootstrap.yaml are those of envoy/envoy.yaml,
/// whose Prometheus output the README shows.
#[test]
fn istio_stats_tags_bootstrap_matches_envoy_yaml() {
    let root = repo_root();
    let map = yaml_document(&root.join("envoy/istio/stats-tags-bootstrap.yaml"));
    assert_eq!(map["apiVersion"], "v1");
    assert_eq!(map["kind"], "ConfigMap");
    let text = map["data"]["custom_bootstrap.json"]
        .as_str()
        .expect("data.custom_bootstrap.json");
    let bootstrap: Value = serde_json::from_str(text).expect("custom_bootstrap.json is JSON");
    let keys: Vec<&String> = bootstrap.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["stats_config"], "only stats settings are overridden");
    let envoy = yaml_document(&root.join("envoy/envoy.yaml"));
    assert_eq!(
        bootstrap["stats_config"]["stats_tags"],
        envoy["stats_config"]["stats_tags"]
    );
    let name = map["metadata"]["name"].as_str().expect("a name");
    let comment = read(&root.join("envoy/istio/stats-tags-bootstrap.yaml"));
    assert!(
        comment.contains(&format!("sidecar.istio.io/bootstrapOverride: {name}")),
        "the annotation shown names this ConfigMap"
    );
}
