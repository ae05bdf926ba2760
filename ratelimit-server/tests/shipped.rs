//! The shipped budgets agree with each other: `envoy/ratelimit/config.yaml`, its Limitador
//! twin, the wasm filter's `quota` section and Envoy's rate-limit filter config.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::envoy::{repo_root, validate_config_in, TempDir};
use ratelimit_server::config::Domain;
use ratelimit_server::counters::{Limits, Store};
use ratelimit_server::proto::{Code, Entry, RateLimitDescriptor, RateLimitRequest, UInt64Value};
use ratelimit_server::service::{Counting, RateLimitServer};
use ratelimit_server::{limits_file, translate};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn config() -> Domain {
    Domain::parse("envoy/ratelimit/config.yaml", &read("envoy/ratelimit/config.yaml")).unwrap()
}

fn limitador() -> Vec<translate::LimitSpec> {
    limits_file::parse(
        "envoy/ratelimit/limitador-limits.yaml",
        &read("envoy/ratelimit/limitador-limits.yaml"),
    )
    .unwrap()
}

#[test]
fn the_limitador_file_is_the_translation_of_the_config() {
    let translated: Vec<_> = translate::limits_of(&config())
        .into_iter()
        .map(|l| translate::LimitSpec { aligned_to: None, ..l })
        .collect();
    assert_eq!(
        limitador(),
        translated,
        "regenerate with: ratelimit-server --config envoy/ratelimit/config.yaml --print-limitador"
    );
}

fn server(counting: Counting) -> RateLimitServer {
    RateLimitServer::new(counting, Duration::ZERO)
}

fn d(pairs: &[(&str, &str)], hits: u64) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: pairs
            .iter()
            .map(|(k, v)| Entry {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        limit: None,
        hits_addend: Some(UInt64Value { value: hits }),
    }
}

#[tokio::test]
async fn both_files_decide_alike() {
    let from_config = server(Counting {
        limits: Limits::new(&translate::limits_of(&config())).unwrap(),
        store: Store::in_memory(),
    });
    let from_limitador = server(Counting {
        limits: Limits::new(&limitador()).unwrap(),
        store: Store::in_memory(),
    });
    let tokens = |bu: &str, n: u64| d(&[("budget", "tokens_per_bu"), ("business_unit", bu)], n);
    let cost = |bu: &str, m: &str, n: u64| {
        d(
            &[("budget", "cost_per_bu_model"), ("business_unit", bu), ("model", m)],
            n,
        )
    };
    let user = |u: &str| d(&[("budget", "requests_per_user"), ("user", u)], 1);
    let mut steps: Vec<RateLimitDescriptor> = vec![
        tokens("finance", 1_999_999),
        tokens("finance", 0),
        tokens("finance", 1),
        tokens("finance", 0),
        tokens("research", 5_000_000),
        tokens("research", 0),
        cost("finance", "gpt-4o", 600_000_000),
        cost("finance", "gpt-4o", 0),
        cost("finance", "o3", 600_000_000),
        cost("finance", "o3", 0),
        d(&[("budget", "tokens_per_bu")], 5),
        d(&[("budget", "nonesuch"), ("business_unit", "finance")], 5),
    ];
    steps.extend((0..61).map(|_| user("alice")));
    steps.push(user("bob"));
    let mut outcomes = Vec::new();
    for step in steps {
        let req = RateLimitRequest {
            domain: "ai-attribution".into(),
            descriptors: vec![step.clone()],
            hits_addend: 0,
        };
        let a = from_config.answer(req.clone()).await.unwrap();
        let b = from_limitador.answer(req).await.unwrap();
        let summary = |r: &ratelimit_server::proto::RateLimitResponse| {
            let s = &r.statuses[0];
            (
                s.code,
                s.limit_remaining,
                s.current_limit.as_ref().map(|l| l.requests_per_unit),
            )
        };
        assert_eq!(summary(&a), summary(&b), "{step:?}");
        outcomes.push(Code::try_from(a.overall_code).unwrap());
    }
    // The sequence went over where it should.
    assert_eq!(&outcomes[..4], [Code::Ok, Code::Ok, Code::Ok, Code::OverLimit]);
    assert_eq!(&outcomes[4..6], [Code::Ok, Code::Ok], "research has 10 million");
    assert_eq!(&outcomes[6..10], [Code::Ok, Code::Ok, Code::OverLimit, Code::OverLimit]);
    assert_eq!(outcomes.iter().filter(|c| **c == Code::OverLimit).count(), 4);
}

/// The wasm filter's plugin configuration in a bootstrap file.
fn plugin_config(bootstrap: &Value) -> Value {
    let filters = &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"];
    let wasm = filters
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("the wasm filter");
    serde_json::from_str(
        wasm["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

/// Every descriptor shape the config counts: the budget name and the keys below it.
fn budget_shapes(domain: &Domain) -> BTreeSet<(String, Vec<String>)> {
    fn walk(
        d: &ratelimit_server::config::Descriptor,
        keys: &mut Vec<String>,
        budget: &str,
        out: &mut BTreeSet<(String, Vec<String>)>,
    ) {
        keys.push(d.key.clone());
        if d.rate_limit.is_some() {
            out.insert((budget.to_string(), keys.clone()));
        }
        for c in &d.descriptors {
            walk(c, keys, budget, out);
        }
        keys.pop();
    }
    let mut out = BTreeSet::new();
    for top in &domain.descriptors {
        assert_eq!(top.key, "budget");
        let ratelimit_server::config::ValueMatch::Exact(name) = &top.value else {
            panic!("a budget has a name");
        };
        for c in &top.descriptors {
            walk(c, &mut Vec::new(), name, &mut out);
        }
    }
    out
}

#[test]
fn the_wasm_filters_budgets_are_the_configs() {
    let bootstrap: Value = serde_yaml::from_str(&read("envoy/quota.yaml")).unwrap();
    let quota = plugin_config(&bootstrap)["quota"].clone();
    assert_eq!(quota["domain"], config().name.as_str());
    let cluster = quota["cluster"].as_str().unwrap();
    let clusters = bootstrap["static_resources"]["clusters"].as_array().unwrap();
    let rl = clusters
        .iter()
        .find(|c| c["name"] == cluster)
        .expect("the quota cluster is defined");
    assert!(
        rl["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            ["explicit_http_config"]["http2_protocol_options"]
            .is_object(),
        "gRPC needs HTTP/2"
    );
    let sent: BTreeSet<(String, Vec<String>)> = quota["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let keys = b["descriptors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect();
            (b["name"].as_str().unwrap().to_string(), keys)
        })
        .collect();
    assert_eq!(
        sent,
        budget_shapes(&config()),
        "each budget the filter sends has a limit, and back"
    );
}

/// A bootstrap with its wasm filter's configuration parsed (a JSON object, not a string).
fn with_parsed_plugin(mut bootstrap: Value) -> Value {
    let plugin = plugin_config(&bootstrap);
    let filters = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"];
    for f in filters.as_array_mut().unwrap() {
        if f["name"] == "envoy.filters.http.wasm" {
            f["typed_config"]["config"]["configuration"]["value"] = plugin.clone();
        }
    }
    bootstrap
}

#[test]
fn the_quota_bootstrap_is_envoy_yaml_with_budgets() {
    // envoy/quota.yaml is envoy/envoy.yaml plus the `quota` section and the cluster it names, so
    // the two do not drift apart (the comments aside).
    let mut quota = with_parsed_plugin(serde_yaml::from_str(&read("envoy/quota.yaml")).unwrap());
    let plain = with_parsed_plugin(serde_yaml::from_str(&read("envoy/envoy.yaml")).unwrap());
    let filters = &mut quota["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"];
    let wasm = filters
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .unwrap();
    let section = wasm["typed_config"]["config"]["configuration"]["value"]
        .as_object_mut()
        .unwrap()
        .remove("quota")
        .expect("a quota section");
    let clusters = quota["static_resources"]["clusters"].as_array_mut().unwrap();
    let at = clusters
        .iter()
        .position(|c| c["name"] == section["cluster"])
        .expect("the quota cluster");
    clusters.remove(at);
    assert_eq!(quota, plain, "the rest is envoy/envoy.yaml's");
}

#[test]
fn the_quota_bootstrap_validates() {
    // Envoy runs the filter's configure step when it validates: the `quota` section is accepted.
    let text = read("envoy/quota.yaml");
    let wasm = integration::envoy::wasm_path();
    let local = integration::render::Local {
        wasm: Some(wasm),
        ..Default::default()
    };
    let dir = TempDir::new("quota-validate").unwrap();
    let path = dir.path().join("quota.yaml");
    std::fs::write(&path, integration::render::render(&text, &local)).unwrap();
    let v = validate_config_in(&path, dir.path()).unwrap();
    assert!(v.ok, "{}", v.output);
}

#[test]
fn envoys_rate_limit_filter_sends_the_configs_budgets() {
    let bootstrap: Value = serde_yaml::from_str(&read("envoy/quota-ratelimit-filter.yaml")).unwrap();
    let filters = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = filters.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.wasm",
            "envoy.filters.http.ratelimit",
            "envoy.filters.http.router"
        ]
    );
    // The wasm filter writes the state and makes no budget calls of its own (no double count).
    let quota = &plugin_config(&bootstrap)["quota"];
    assert_eq!(quota["filter_state"], true, "the filter writes the quota state");
    assert!(quota["budgets"].is_null(), "no budgets of the filter's own: {quota}");
    let rl = &filters[1]["typed_config"];
    assert_eq!(rl["domain"], config().name.as_str());
    let mut shapes = BTreeSet::new();
    for entry in rl["rate_limits"].as_array().unwrap() {
        let actions = entry["actions"].as_array().unwrap();
        let budget = actions[0]["generic_key"]["descriptor_value"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(actions[0]["generic_key"]["descriptor_key"], "budget");
        let keys: Vec<String> = actions[1..]
            .iter()
            .map(|a| {
                let ext = &a["extension"];
                let key = ext["name"].as_str().unwrap().to_string();
                assert_eq!(
                    ext["typed_config"]["key"],
                    format!("wasm.ai_attribution.quota_key.{key}").as_str(),
                    "the entry's key is the extension's name"
                );
                key
            })
            .collect();
        let charged_later = entry["apply_on_stream_done"] == true;
        let hits = &entry["hits_addend"];
        if charged_later {
            let format = hits["format"].as_str().unwrap();
            assert!(
                [
                    "%FILTER_STATE(wasm.ai_attribution.quota_tokens:PLAIN)%",
                    "%FILTER_STATE(wasm.ai_attribution.quota_cost_microusd:PLAIN)%"
                ]
                .contains(&format),
                "{format}"
            );
        } else {
            assert!(hits.is_null() || hits["number"] == 0, "checks do not charge: {hits}");
        }
        shapes.insert((budget, keys));
    }
    assert_eq!(shapes, budget_shapes(&config()));
}

/// Every document of a YAML file.
fn documents(rel: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(&read(rel))
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|d| !d.is_null())
        .collect()
}

#[test]
fn istio_calls_the_cluster_its_service_entry_makes() {
    // No ServiceEntry or DestinationRule CRD schema in the repository to check against: these
    // are the fields the wasm filter's call depends on.
    let [se] = documents("envoy/istio/ratelimit-serviceentry.yaml").try_into().unwrap();
    assert_eq!(
        (se["apiVersion"].as_str(), se["kind"].as_str()),
        (Some("networking.istio.io/v1"), Some("ServiceEntry"))
    );
    let host = se["spec"]["hosts"][0].as_str().unwrap();
    let port = &se["spec"]["ports"][0];
    assert_eq!(port["protocol"], "GRPC", "HTTP/2 to the service");
    let cluster = format!("outbound|{}||{host}", port["number"]);
    let [dr] = documents("envoy/istio/ratelimit-destinationrule.yaml")
        .try_into()
        .unwrap();
    assert_eq!(dr["kind"], "DestinationRule");
    assert_eq!(dr["spec"]["host"], host);
    let [wp] = documents("envoy/istio/wasmplugin-quota.yaml").try_into().unwrap();
    let quota = &wp["spec"]["pluginConfig"]["quota"];
    assert_eq!(quota["cluster"], cluster.as_str());
    assert_eq!(quota["domain"], config().name.as_str());
    // The rest is wasmplugin.yaml's, so the two do not drift apart.
    let [plain] = documents("envoy/istio/wasmplugin.yaml").try_into().unwrap();
    let mut spec = wp["spec"].clone();
    spec["pluginConfig"].as_object_mut().unwrap().remove("quota");
    assert_eq!(spec, plain["spec"]);
    assert_eq!(wp["metadata"], plain["metadata"]);
}

#[test]
fn envoy_gateway_calls_the_cluster_its_patch_adds() {
    let [patch] = documents("envoy/envoy-gateway/ratelimit-cluster.yaml")
        .try_into()
        .unwrap();
    let [policy] = documents("envoy/envoy-gateway/extension-policy-quota.yaml")
        .try_into()
        .unwrap();
    let wasm = |p: &Value| -> Value {
        p["spec"]["wasm"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "ai-attribution")
            .unwrap()
            .clone()
    };
    let mut with_quota = wasm(&policy);
    let quota = with_quota["config"].as_object_mut().unwrap().remove("quota").unwrap();
    assert_eq!(quota["cluster"], patch["spec"]["jsonPatches"][0]["name"]);
    assert_eq!(quota["domain"], config().name.as_str());
    // The budgets are envoy/quota.yaml's, and the rest is extension-policy.yaml's.
    let bootstrap: Value = serde_yaml::from_str(&read("envoy/quota.yaml")).unwrap();
    assert_eq!(quota["budgets"], plugin_config(&bootstrap)["quota"]["budgets"]);
    let [plain] = documents("envoy/envoy-gateway/extension-policy.yaml")
        .try_into()
        .unwrap();
    assert_eq!(with_quota, wasm(&plain));
    assert_eq!(policy["metadata"], plain["metadata"]);
    assert_eq!(policy["spec"]["targetRefs"], plain["spec"]["targetRefs"]);
}

#[test]
fn the_envoy_gateway_patch_adds_a_cluster_envoy_accepts() {
    let [patch] = documents("envoy/envoy-gateway/ratelimit-cluster.yaml")
        .try_into()
        .unwrap();
    assert_eq!(patch["kind"], "EnvoyPatchPolicy");
    let op = &patch["spec"]["jsonPatches"][0];
    assert_eq!(op["type"], "type.googleapis.com/envoy.config.cluster.v3.Cluster");
    let cluster = op["operation"]["value"].clone();
    assert_eq!(cluster["name"], op["name"]);
    let bootstrap = serde_json::json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"clusters": [cluster]}
    });
    let dir = TempDir::new("eg-cluster").unwrap();
    let path = dir.path().join("cluster.json");
    std::fs::write(&path, bootstrap.to_string()).unwrap();
    let v = validate_config_in(&path, &repo_root()).unwrap();
    assert!(v.ok, "{}", v.output);
}
