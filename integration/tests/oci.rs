//! The OCI image of the filter (`make oci`, `scripts/oci-image.py`): the format Istio's
//! WasmPlugin pulls with `url: oci://...`, written without Docker, pushed to a real registry
//! (Debian's `docker-registry`) with `skopeo`, pulled back, and the module in it loaded by Envoy.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use integration::envoy::{wasm_path, TempDir};
use integration::http::Request;
use integration::oci::{
    build_image, digest, gunzip, printed, skopeo, tar_entries, Layout, Registry, CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE, PLUGIN_FILE,
};
use integration::{request_id, Stack};
use serde_json::{json, Value};
use std::path::Path;

const TAG: &str = "0.1.0";

fn wasm() -> Vec<u8> {
    std::fs::read(wasm_path()).expect("the filter is built (make build)")
}

/// The manifest of `tag` in a layout, checked to be the compat Wasm image: one layer, gzip'd tar,
/// holding only `plugin.wasm` with exactly these module bytes. Returns the manifest digest.
fn check_compat_image(layout: &Layout, tag: &str, module: &[u8]) -> String {
    let manifest_digest = layout.manifest_digest(tag).unwrap();
    let manifest_bytes = layout.blob(&manifest_digest).unwrap();
    assert_eq!(
        digest(&manifest_bytes),
        manifest_digest,
        "the manifest blob matches its digest"
    );
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);

    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers.len(),
        1,
        "Istio reads the last layer; the image has just one: {manifest}"
    );
    let layer = &layers[0];
    assert_eq!(layer["mediaType"], LAYER_MEDIA_TYPE, "Istio's compat variant");
    let layer_digest = layer["digest"].as_str().unwrap();
    let blob = layout.blob(layer_digest).unwrap();
    assert_eq!(digest(&blob), layer_digest, "the layer blob matches its digest");
    assert_eq!(layer["size"], blob.len());

    let tar = gunzip(&blob).unwrap();
    let config: Value =
        serde_json::from_slice(&layout.blob(manifest["config"]["digest"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        json!([digest(&tar)]),
        "the config's diff_id is the uncompressed layer"
    );
    let entries = tar_entries(&tar).unwrap();
    let names: Vec<&str> = entries.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, [PLUGIN_FILE], "the layer holds plugin.wasm and nothing else");
    let (_, kind, data) = &entries[0];
    assert_eq!(*kind, b'0', "plugin.wasm is a regular file");
    assert_eq!(
        digest(data),
        digest(module),
        "the plugin.wasm in the layer is the .wasm (sha256)"
    );
    manifest_digest
}

#[test]
fn the_image_is_the_compat_wasm_format_and_reproducible() {
    let dir = TempDir::new("oci-build").unwrap();
    let module = wasm();
    let first = build_image(&wasm_path(), &dir.path().join("a"), TAG).unwrap();
    let second = build_image(&wasm_path(), &dir.path().join("b"), TAG).unwrap();
    let digest_a = check_compat_image(&Layout(dir.path().join("a")), TAG, &module);
    let digest_b = check_compat_image(&Layout(dir.path().join("b")), TAG, &module);
    assert_eq!(digest_a, digest_b, "the same module gives the same image");
    assert_eq!(
        printed(&first, "manifest").as_deref(),
        Some(digest_a.as_str()),
        "{first}"
    );
    assert_eq!(printed(&second, "manifest"), printed(&first, "manifest"));
    assert_eq!(printed(&first, "wasm"), Some(digest(&module)), "{first}");
    // skopeo reads the layout as an image (what `skopeo copy oci:...` pushes).
    let inspect = skopeo(&["inspect", &format!("oci:{}:{TAG}", dir.path().join("a").display())]).unwrap();
    let inspect: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], digest_a);
}

/// Pushed to a registry with skopeo and pulled back, the image keeps its digests; the registry
/// serves the manifest and the layer Istio's fetcher reads, and the plugin.wasm inside is the
/// built module, which Envoy then loads and runs.
#[test]
fn the_image_round_trips_through_a_registry_and_its_module_runs_in_envoy() {
    let dir = TempDir::new("oci-push").unwrap();
    let module = wasm();
    let built = dir.path().join("built");
    build_image(&wasm_path(), &built, TAG).unwrap();
    let built_digest = check_compat_image(&Layout(built.clone()), TAG, &module);

    let registry = Registry::start().unwrap();
    let remote = format!("docker://{}/ai-attribution:{TAG}", registry.address());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{TAG}", built.display()),
        &remote,
    ])
    .unwrap();

    // What a puller sees: the manifest by tag, its digest, and the layer blob.
    let resp = registry
        .get(
            &format!("/v2/ai-attribution/manifests/{TAG}"),
            &[("accept", MANIFEST_MEDIA_TYPE)],
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}\n{}", resp.text(), registry.log());
    assert_eq!(resp.header("content-type"), Some(MANIFEST_MEDIA_TYPE));
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(built_digest.as_str()),
        "the registry keeps the manifest as built: its digest is what WasmPlugin's sha256 pins"
    );
    assert_eq!(digest(&resp.body), built_digest);
    let manifest: Value = resp.json();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = registry
        .get(&format!("/v2/ai-attribution/blobs/{layer_digest}"), &[])
        .unwrap();
    assert_eq!(blob.status, 200, "{}", registry.log());
    assert_eq!(
        digest(&blob.body),
        layer_digest,
        "the layer as served matches its digest"
    );
    let served = tar_entries(&gunzip(&blob.body).unwrap()).unwrap();
    assert_eq!(served.len(), 1);
    assert_eq!(
        digest(&served[0].2),
        digest(&module),
        "the wasm in the served layer is the .wasm"
    );

    // Pulled back into a fresh layout with skopeo: the same image.
    let pulled = dir.path().join("pulled");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:{TAG}", pulled.display()),
    ])
    .unwrap();
    let pulled_digest = check_compat_image(&Layout(pulled.clone()), TAG, &module);
    assert_eq!(pulled_digest, built_digest);
    let inspect = skopeo(&["inspect", "--tls-verify=false", &remote]).unwrap();
    let inspect: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], built_digest, "{inspect}");

    // The module from the pulled image, as a proxy would load it.
    let layout = Layout(pulled);
    let manifest: Value = serde_json::from_slice(&layout.blob(&pulled_digest).unwrap()).unwrap();
    let layer = layout.blob(manifest["layers"][0]["digest"].as_str().unwrap()).unwrap();
    let plugin = dir.path().join(PLUGIN_FILE);
    std::fs::write(&plugin, &tar_entries(&gunzip(&layer).unwrap()).unwrap()[0].2).unwrap();
    run_a_call(&plugin);
}

fn run_a_call(plugin: &Path) {
    let config = json!({
        "dimensions": {"user": ["header:x-user-id"]},
        "require": [["user"]]
    });
    let plugin = plugin.to_path_buf();
    let stack = Stack::start_with(config.to_string(), |b| b.wasm = plugin).unwrap();
    let id = request_id("oci");
    let resp = stack
        .send(
            &Request::post("/v1/chat/completions")
                .header("x-request-id", &id)
                .header("x-user-id", "alice")
                .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})),
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let line = stack.log_for(&id).expect("a log line");
    assert_eq!(line["decision"], "attributed", "{line}");
    assert_eq!(line["user"], "alice", "{line}");
}
