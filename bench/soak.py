#!/usr/bin/env python3
"""`make soak`: at least SOAK_REQUESTS (100,000) mixed requests through Envoy + ai-attribution
(config D: envoy/envoy.yaml's filter configuration and access-log format, the log going to
/dev/null) against the repo's model-server, while sampling Envoy's RSS every second.

Mix (bench/soak.lua): attributed JSON calls (OpenAI / Anthropic), rejected calls (403 from the
filter), streamed calls (SSE with usage) and non-model requests, in equal parts.

Fails (exit 1) if RSS grows more than SOAK_MAX_GROWTH % (5) between the sample taken after the first
10 % of the requests and the end, if any response is a 5xx, if the wasm VM failed, or if fewer than
SOAK_REQUESTS requests were sent within SOAK_MAX_SECONDS (300).
Environment: SOAK_REQUESTS, SOAK_MAX_SECONDS, SOAK_CONNECTIONS (32), SOAK_MAX_GROWTH, BENCH_KEEP=1.
"""

import os
import re
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import log  # noqa: E402

REQUESTS = int(os.environ.get("SOAK_REQUESTS", "100000"))
MAX_SECONDS = int(os.environ.get("SOAK_MAX_SECONDS", "300"))
CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", "32"))
MAX_GROWTH = float(os.environ.get("SOAK_MAX_GROWTH", "5"))
CHUNK = 10  # seconds per wrk run; the loop stops once REQUESTS have been answered


def downstream(e):
    st = e.stats("^http\\.soak\\.downstream_rq_")
    return {k[len("http.soak.downstream_rq_"):]: v for k, v in st.items() if isinstance(v, int)}


def main():
    lib.install_signal_exit()
    os.sched_setaffinity(0, {lib.LOAD_CPU})
    workdir = tempfile.mkdtemp(prefix="ai-attribution-soak.")
    procs = lib.Procs()
    ok = False
    failures = []
    try:
        ms = lib.free_port()
        lib.start_model_server(procs, workdir, ms)
        e = lib.Envoy(procs, workdir, "D", {"default": ms}, stat_prefix="soak", access_log_path="/dev/null",
                      tag="soak")
        # one request of each kind first, so that a broken setup fails fast
        cl = lib.Client(e.port)
        h = dict(lib.ATTR_HEADERS)
        cl.send(("GET", "/healthz", {}, None, None), 1)
        cl.send(("POST", "/v1/chat/completions", h, lib.TINY_BODY, None), 1)
        cl.send(("POST", "/v1/chat/completions", h, lib.STREAM_BODY, None), 1)
        cl.send(("POST", "/v1/chat/completions", {"content-type": "application/json"}, lib.TINY_BODY, None), 1,
                expect=403)
        cl.close()

        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append((time.time(), e.rss_kb(), downstream(e).get("total", 0)))
                except OSError:
                    pass
                stop.wait(1.0)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        script = os.path.join(lib.BENCH, "soak.lua")
        url = "http://127.0.0.1:%d/" % e.port
        t0 = time.time()
        start_total = downstream(e).get("total", 0)
        runs = 0
        while True:
            res = lib.run_wrk(url, script, CHUNK, conns=CONNECTIONS, latency=False)
            runs += 1
            done = downstream(e).get("total", 0) - start_total
            log("soak: %d requests after %.0f s (last run %.0f req/s, socket errors %d)" % (
                done, time.time() - t0, res["rps"] or 0, res["socket_errors"]))
            if done >= REQUESTS or time.time() - t0 + CHUNK > MAX_SECONDS:
                break
        elapsed = time.time() - t0
        time.sleep(2)
        stop.set()
        th.join()
        final = (time.time(), e.rss_kb(), downstream(e).get("total", 0))
        samples.append(final)

        ds = downstream(e)
        total = ds.get("total", 0) - start_total
        tenth = start_total + total // 10
        warm = next(s for s in samples if s[2] >= tenth)
        growth = 100.0 * (final[1] - warm[1]) / warm[1]
        peak = max(s[1] for s in samples)
        wasm = e.stats("wasm")
        ai = e.stats("ai_attribution_requests_total")
        up = e.stats("^cluster\\.default\\.upstream_rq_")
        with open(os.path.join(e.dir, "envoy.log"), errors="replace") as f:
            envoy_log = f.read()
        vm_errors = [k for k, v in wasm.items()
                     if isinstance(v, int) and v and re.search(r"fail|reload|crash|abort", k)]
        log_errors = [l for l in envoy_log.splitlines() if re.search(r"panicked|failed|wasm_fail|Uncaught", l)]

        if total < REQUESTS:
            failures.append("only %d requests in %.0f s (wanted %d)" % (total, elapsed, REQUESTS))
        if ds.get("5xx", 0):
            failures.append("%d 5xx responses" % ds["5xx"])
        if growth > MAX_GROWTH:
            failures.append("RSS grew %.2f %% (> %.1f %%)" % (growth, MAX_GROWTH))
        if vm_errors:
            failures.append("wasm VM failure counters: " + ", ".join("%s=%s" % (k, wasm[k]) for k in vm_errors))
        if log_errors:
            failures.append("Envoy log shows wasm errors: " + log_errors[0][:200])

        L = ["# ai-attribution soak", ""]
        L.append("%s: %d requests (%d wrk runs of %d s, `-t1 -c%d`, bench/soak.lua) in %.0f s through Envoy %s "
                 "(`--concurrency 1`, core 0) + ai-attribution (envoy/envoy.yaml's configuration and access-log "
                 "format, log to /dev/null) against model-server (core 1)." % (
                     time.strftime("%Y-%m-%d %H:%M %Z"), total, runs, CHUNK, CONNECTIONS, elapsed,
                     lib.envoy_version()))
        L.append("")
        L.append("| | value |")
        L.append("|---|---|")
        L.append("| requests | %d (%.0f req/s) |" % (total, total / elapsed))
        L.append("| responses 2xx / 4xx / 5xx | %d / %d / %d |" % (ds.get("2xx", 0), ds.get("4xx", 0), ds.get("5xx", 0)))
        L.append("| filter decisions | %s |" % ", ".join(
            "%s=%d" % (re.sub(r"^.*decision=([^;]*);provider=(.*)$", r"\1/\2", k), v) for k, v in sorted(ai.items())))
        L.append("| upstream 5xx | %s |" % up.get("cluster.default.upstream_rq_5xx", 0))
        L.append("| RSS after first 10 %% of requests (t=%.0f s, %d req) | %.1f MiB |" % (
            warm[0] - t0, warm[2] - start_total, warm[1] / 1024.0))
        L.append("| RSS at the end | %.1f MiB |" % (final[1] / 1024.0))
        L.append("| RSS peak | %.1f MiB |" % (peak / 1024.0))
        L.append("| growth (end vs after 10 %%) | **%+.2f %%** (limit %.1f %%) |" % (growth, MAX_GROWTH))
        L.append("| wasm VM failure / reload counters | %s |" % (
            ", ".join("%s=%s" % (k, v) for k, v in sorted(wasm.items()) if re.search(r"fail|reload", k)) or "none"))
        L.append("| result | **%s** |" % ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
        L.append("")
        L.append("RSS trace (every 10th 1 s sample): " + ", ".join(
            "%.0fs %.1f" % (s[0] - t0, s[1] / 1024.0) for s in samples[::10]) + " MiB")
        text = "\n".join(L) + "\n"
        out = os.path.join(lib.BENCH, "results")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "soak.md"), "w") as f:
            f.write(text)
        print(text)
        ok = True
    finally:
        procs.stop_all()
        if os.environ.get("BENCH_KEEP") == "1" or not ok:
            log("work directory kept: " + workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
