#!/usr/bin/env python3
"""Writes the filter as an OCI image, in an OCI image layout directory, without Docker.

    scripts/oci-image.py WASM OUT_DIR --tag TAG [--source URL]

The image is the "compat" variant of the Wasm image format that Istio's WasmPlugin pulls with
`url: oci://...` (and Envoy Gateway's EnvoyExtensionPolicy with `code.type: Image`): an ordinary
OCI image whose single layer, of media type application/vnd.oci.image.layer.v1.tar+gzip, is a
tar archive holding one file, `plugin.wasm`. Standard registries and tools (skopeo, crane,
docker, podman) store, copy and inspect it like any image.

The output is reproducible: the same WASM gives the same bytes and so the same digests (no
timestamps, owners fixed to 0, gzip without a name or time). OUT_DIR is replaced. It prints the
two digests a deployment pins:

    manifest  sha256:...   the image digest: WasmPlugin `sha256` with an oci:// url
    wasm      sha256:...   plugin.wasm itself: WasmPlugin `sha256` with an https:// url, and
                           Envoy's vm_config.code.remote.sha256

Push it with skopeo, e.g.
    skopeo copy oci:OUT_DIR:TAG docker://REGISTRY/ai-attribution:TAG
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_MAGIC = b"\0asm"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(wasm):
    """An uncompressed tar archive with one regular file, plugin.wasm, and nothing variable."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size = len(wasm)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(wasm))
    return out.getvalue()


def gzipped(data):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main():
    parser = argparse.ArgumentParser(description="Write the filter as an OCI image layout.")
    parser.add_argument("wasm")
    parser.add_argument("out_dir")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--source", default="", help="org.opencontainers.image.source")
    args = parser.parse_args()

    with open(args.wasm, "rb") as f:
        wasm = f.read()
    if not wasm.startswith(WASM_MAGIC):
        sys.exit(f"{args.wasm}: not a WebAssembly module")

    tar = layer_tar(wasm)
    layer = gzipped(tar)
    config = canonical(
        {
            # GOOS/GOARCH-style values for a WASI module; no runtime reads them.
            "architecture": "wasm",
            "os": "wasip1",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [digest(tar)]},
        }
    )
    annotations = {
        "org.opencontainers.image.title": "ai-attribution",
        "org.opencontainers.image.version": args.tag,
    }
    if args.source:
        annotations["org.opencontainers.image.source"] = args.source
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": digest(config), "size": len(config)},
            "layers": [
                {
                    "mediaType": LAYER,
                    "digest": digest(layer),
                    "size": len(layer),
                    "annotations": {"org.opencontainers.image.title": "plugin.wasm"},
                }
            ],
            "annotations": annotations,
        }
    )
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": MANIFEST,
                    "digest": digest(manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": args.tag},
                }
            ],
        }
    )

    if os.path.isdir(args.out_dir):
        shutil.rmtree(args.out_dir)
    blobs = os.path.join(args.out_dir, "blobs", "sha256")
    os.makedirs(blobs)
    for blob in (layer, config, manifest):
        with open(os.path.join(blobs, digest(blob).split(":", 1)[1]), "wb") as f:
            f.write(blob)
    with open(os.path.join(args.out_dir, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    with open(os.path.join(args.out_dir, "index.json"), "wb") as f:
        f.write(index)

    print(f"image     oci:{args.out_dir}:{args.tag}")
    print(f"manifest  {digest(manifest)}")
    print(f"wasm      {digest(wasm)}")


if __name__ == "__main__":
    main()
