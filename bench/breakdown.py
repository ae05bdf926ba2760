#!/usr/bin/env python3
"""Where config D's instructions go: callgrind instructions per request for variants of
envoy/envoy.yaml's filter configuration, each switching off one more part of the work
(header-attribution request with a 62 B body, and the 2 KB body), then the filter's pure-Rust parts
counted natively (bench/native, built here). Not part of `make bench`; run after it (it needs the
same builds): python3 bench/breakdown.py. Writes bench/results/breakdown.md.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import bench  # noqa: E402
from lib import log  # noqa: E402


def variants():
    base = json.loads(lib.plugin_config("envoy.yaml"))
    out = [("D: envoy/envoy.yaml", dict(base))]
    v = dict(base, record={"scalar_keys": []})
    out.append(("− the scalar record keys (record.scalar_keys: [], Struct record kept)", v))
    v = dict(v, metrics={"enabled": False})
    out.append(("− metrics (metrics.enabled: false)", v))
    v = dict(v, usage={"enabled": False})
    out.append(("− usage (usage.enabled: false: no response scan)", v))
    v = dict(v, correlation={"propagate": []})
    out.append(("− propagation header (correlation.propagate: [])", v))
    v = dict(v, dimensions={"user": ["header:x-user-id"], "business_unit": ["header:x-business-unit"]},
             require=[["user", "business_unit"]])
    out.append(("− 3 unused dimensions (user + business_unit only)", v))
    return out


NATIVE = os.path.join(lib.ROOT, "target", "bench-native", "release", "bench-native")
PARTS = [("body-new", "RequestBody::new (scanner set-up)"), ("body-tiny", "request body: set-up + scan 62 B"),
         ("body-2k", "request body: set-up + scan 2 KB"), ("usage-new", "UsageReader::new (scanner set-up)"),
         ("usage-json", "response usage: set-up + scan 370 B JSON"),
         ("healthz", "non-model GET /healthz: the request headers' step (headers built by the harness)"),
         ("call", "header-attributed call, every phase: headers, 62 B body, JSON answer, record, metrics"),
         ("call-2k", "the same call with the 2 KB body"),
         ("usage-sse", "SSE usage: set-up + one 64 KB write of ~1.1 KB chat chunk events")]


def native_costs(workdir):
    """Instructions per iteration of each pure-Rust part, natively (x86-64, opt-level z), under callgrind."""
    files = lib.write_native_inputs(workdir)
    out = {}
    for part, _ in PARTS:
        # One usage-sse iteration reads 64 KB: a few dozen of them are as steady as thousands of the rest.
        counts = (10, 30) if part == "usage-sse" else (1000, 3000)
        irs = []
        for n in counts:
            cg = os.path.join(workdir, "native.%s.%d" % (part, n))
            subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg, NATIVE, part, str(n)] + files,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            with open(cg) as f:
                irs.append(next(int(l.split()[1]) for l in f if l.startswith("summary:")))
        out[part] = (irs[1] - irs[0]) / float(counts[1] - counts[0])
    return out


def main():
    lib.install_signal_exit()
    os.sched_setaffinity(0, {lib.LOAD_CPU})
    workdir = tempfile.mkdtemp(prefix="ai-attribution-breakdown.")
    procs = lib.Procs()
    rows = []
    try:
        ng = lib.free_port()
        lib.start_nginx(procs, workdir, ng)
        for i, (name, cfg) in enumerate(variants()):
            e = bench.cg_envoy(procs, workdir, "D", {"default": ng}, plugin=json.dumps(cfg), tag="v%d" % i)
            try:
                cl = lib.Client(e.port)
                h = bench.cg_measure(e, cl, lib.scenario_request("header"))["per_request"]
                b = bench.cg_measure(e, cl, lib.scenario_request("body2k"))["per_request"]
                cl.close()
            finally:
                bench.cg_stop(e)
            rows.append((name, h, b))
            log("%-70s header %8.0f  2KB %8.0f" % (name, h, b))
        L = ["# Where D's instructions go (callgrind, instructions per request)", "",
             "Each row switches off one more part of envoy/envoy.yaml's filter configuration.", "",
             "| variant | header attribution | Δ vs previous | 2 KB body | 2 KB − header |", "|---|---|---|---|---|"]
        prev = None
        for name, h, b in rows:
            L.append("| %s | %.1fk | %s | %.1fk | %.1fk |" % (
                name, h / 1000, "" if prev is None else "%+.1fk" % ((h - prev) / 1000), b / 1000, (b - h) / 1000))
            prev = h
        subprocess.run(["cargo", "build", "--release", "--manifest-path", os.path.join(lib.BENCH, "native", "Cargo.toml"),
                        "--target-dir", os.path.join(lib.ROOT, "target", "bench-native")], check=True)
        if os.path.exists(NATIVE):
            nat = native_costs(workdir)
            L += ["", "The same work natively (bench/native, x86-64, no proxy-wasm boundary), instructions per call:", "",
                  "| part | native instructions |", "|---|---|"]
            for part, text in PARTS:
                L.append("| %s | %.1fk |" % (text, nat[part] / 1000))
        text = "\n".join(L) + "\n"
        os.makedirs(os.path.join(lib.BENCH, "results"), exist_ok=True)
        with open(os.path.join(lib.BENCH, "results", "breakdown.md"), "w") as f:
            f.write(text)
        print(text)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
