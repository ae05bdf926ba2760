#!/usr/bin/env python3
"""`make bench`: what ai-attribution costs in Envoy, measured with the method BENCHMARKS.md describes.

Configs (each an Envoy with --concurrency 1 pinned to core 0; upstreams and the load on core 1):
  A  no filter (router only)            B  no-op proxy-wasm filter (bench/noop)
  C  Lua doing the header work (bench/attribution.lua)
  D  ai-attribution with envoy/envoy.yaml's configuration
  J0 jwt_authn alone                    J1 jwt_authn + ai-attribution (envoy/jwt.yaml's configuration)
  A-tls / D-tls  downstream mTLS, no filter / ai-attribution with envoy/mtls.yaml's configuration

Phases: wrk throughput (BENCH_ROUNDS rounds, interleaved, order reversed on alternate rounds),
a 100 MB SSE stream while sampling Envoy RSS, and instructions per request under callgrind.
Writes bench/results/latest.md (and latest.json) and prints the report.

Environment: BENCH_ROUNDS (5), BENCH_SECONDS (10), BENCH_WARMUP (3), BENCH_WRK=0 / BENCH_CALLGRIND=0 /
BENCH_STREAM=0 to skip a phase, BENCH_CG_CONFIGS=A,D to measure only some configs under callgrind, BENCH_CG_N1 (500), BENCH_CG_N2 (2500), BENCH_CG_WARM (300),
BENCH_STREAM_MB (100), BENCH_ATTEMPTS (6: runs of a disturbed scenario per round), BENCH_IDLE_WAIT (900 s to
wait for a quiet machine before each scenario), BENCH_KEEP=1 keeps the work directory.
`python3 bench/bench.py --report bench/results/latest.json` re-renders latest.md from saved numbers.
"""

import glob
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import log, median  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
DO_WRK = os.environ.get("BENCH_WRK", "1") != "0"
DO_CG = os.environ.get("BENCH_CALLGRIND", "1") != "0"
DO_STREAM = os.environ.get("BENCH_STREAM", "1") != "0"
CG_N1 = int(os.environ.get("BENCH_CG_N1", "500"))
CG_N2 = int(os.environ.get("BENCH_CG_N2", "2500"))
CG_WARM = int(os.environ.get("BENCH_CG_WARM", "300"))
STREAM_MB = int(os.environ.get("BENCH_STREAM_MB", "100"))
DISTURBED = 0.10  # cores used by other processes during a measured run that make a round count as disturbed
MAX_ATTEMPTS = int(os.environ.get("BENCH_ATTEMPTS", "6"))  # per scenario and round
IDLE_WAIT = int(os.environ.get("BENCH_IDLE_WAIT", "900"))  # seconds to wait for a quiet machine

WRK_PLAN = [
    ("nonmodel", ["A", "B", "C", "D"]),
    ("header", ["A", "B", "C", "D"]),
    ("jwt", ["A", "J0", "J1"]),
    ("body2k", ["A", "B", "C", "D"]),
    ("stream1m", ["A", "B", "C", "D"]),
]
CG_PLAN = [
    ("A", ["nonmodel", "header", "body2k", "jwt"]),
    ("B", ["nonmodel", "header", "body2k"]),
    ("C", ["nonmodel", "header", "body2k"]),
    ("D", ["nonmodel", "header", "body2k", "header"]),  # header twice: a repeatability check
    ("J0", ["jwt"]),
    ("J1", ["jwt"]),
    ("A-tls", ["mtls"]),
    ("D-tls", ["mtls"]),
    # With envoy/envoy.yaml's access log (every other config has none): what writing the record costs.
    ("A-log", ["header"]),
    ("D-log", ["header"]),
    ("D-log-flat", ["header"]),
]
SCENARIO_TEXT = {
    "nonmodel": "non-model path (GET /healthz), nginx",
    "header": "header attribution + full record (POST /v1/chat/completions, x-user-id + x-business-unit, 62 B body), nginx",
    "jwt": "jwt_authn RS256 JWT (POST, 62 B body), nginx",
    "body2k": "2 KB JSON chat body (POST, headers as above), nginx",
    "stream1m": "1 MB SSE stream with usage (model-server `big-event`, include_usage), model-server",
    "mtls": "header attribution over downstream mTLS (SPIFFE client cert), nginx",
}


def proc_cpu_s(pid):
    """CPU seconds `pid`'s threads have run: the scheduler's nanosecond count of each thread
    (/proc/PID/task/*/schedstat), where the kernel has it; else utime + stime, in clock ticks
    (10 ms each: 0.1 ms per MB of a 100 MB stream)."""
    try:
        total = 0
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        if total > 0:
            return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return 0.0
    fields = data[data.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / float(lib.CLK_TCK)


# ------------------------------------------------------------------------------------ wrk phase

def wrk_phase(procs, workdir, upstreams, jwks, jwt):
    envoys = {}
    for c in ["A", "B", "C", "D", "J0", "J1"]:
        envoys[c] = lib.Envoy(procs, workdir, c, upstreams, jwks=jwks)
    scripts = {s: lib.wrk_script(os.path.join(workdir, "wrk-%s.lua" % s), s, jwt) for s, _ in WRK_PLAN}
    rss_warm, alloc_warm = {}, {}
    rounds = []

    def run_group(s, configs):
        """Runs one scenario through `configs`; returns (runs, disturbances)."""
        runs, disturbed = {}, []
        for c in configs:
            e = envoys[c]
            url = "http://127.0.0.1:%d%s" % (e.port, lib.scenario_request(s, jwt)[1])
            warm = lib.run_wrk(url, scripts[s], WARMUP, latency=False)
            if warm["non2xx"] or warm["socket_errors"] or not warm["requests"]:
                raise RuntimeError("%s/%s warm-up: %d non-2xx, %d socket errors:\n%s" % (
                    s, c, warm["non2xx"], warm["socket_errors"], warm["raw"]))
            if c not in rss_warm:
                rss_warm[c] = e.rss_kb()
                alloc_warm[c] = e.allocator_kb()
            watch = lib.CpuWatch()
            watch.start()
            t0 = proc_cpu_s(e.pid)
            res = lib.run_wrk(url, scripts[s], SECONDS)
            t1 = proc_cpu_s(e.pid)
            busy, top = watch.others()
            res["envoy_cpu_us_per_req"] = ((t1 - t0) * 1e6 / res["requests"]
                                           if res["requests"] else None)
            res["others_cores"] = round(busy, 3)
            raw = res.pop("raw")
            if res["non2xx"] or res["socket_errors"] or not res["rps"]:
                log("WARNING %s/%s: non-2xx %d, socket errors %d\n%s" % (s, c, res["non2xx"],
                                                                         res["socket_errors"], raw))
            if busy > DISTURBED:
                disturbed.append("%s/%s: other processes used %.2f cores (%s)" % (s, c, busy, top))
            runs[c] = res
            log("  %-9s %-3s %9.0f req/s  p50 %7.0f us  p99 %7.0f us  envoy %6.1f us/req%s" % (
                s, c, res["rps"] or 0, res["p50_us"] or 0, res["p99_us"] or 0,
                res["envoy_cpu_us_per_req"] or 0, "  (disturbed %.2f)" % busy if busy > DISTURBED else ""))
        return runs, disturbed

    for r in range(ROUNDS):
        # Alternate rounds run everything in reverse order (scenarios and configs).
        plan = [(s, list(reversed(cs)) if r % 2 else list(cs)) for s, cs in WRK_PLAN]
        if r % 2:
            plan.reverse()
        log("round %d/%d: %d runs of %d+%ds" % (r + 1, ROUNDS, sum(len(cs) for _, cs in plan), WARMUP, SECONDS))
        rd = {"runs": {}, "attempts": {}, "disturbed": []}
        for s, cs in plan:
            # A disturbed scenario is run again as a whole, so its ratios still compare runs minutes apart.
            for attempt in range(1, MAX_ATTEMPTS + 1):
                lib.wait_idle(max_wait=IDLE_WAIT)
                runs, disturbed = run_group(s, cs)
                if not disturbed or attempt == MAX_ATTEMPTS:
                    break
                log("%s disturbed, running it again: %s" % (s, "; ".join(disturbed)))
            rd["runs"][s] = runs
            rd["attempts"][s] = attempt
            rd["disturbed"] += disturbed
        rounds.append(rd)
    rss_end = {c: e.rss_kb() for c, e in envoys.items()}
    for e in envoys.values():
        e.stop()
    return {"rounds": rounds, "rss_after_warmup_kb": rss_warm, "rss_after_rounds_kb": rss_end,
            "allocator_after_warmup": alloc_warm}


def summarise_wrk(w):
    out = {}
    for s, cs in WRK_PLAN:
        out[s] = {}
        for c in cs:
            rows = [rd["runs"][s] for rd in w["rounds"] if s in rd["runs"]]
            ratio = [rd["runs"][s][c]["rps"] / rd["runs"][s]["A"]["rps"] for rd in w["rounds"]
                     if rd["runs"][s]["A"]["rps"] and rd["runs"][s][c]["rps"]]
            d50 = [rd["runs"][s][c]["p50_us"] - rd["runs"][s]["A"]["p50_us"] for rd in w["rounds"]]
            d99 = [rd["runs"][s][c]["p99_us"] - rd["runs"][s]["A"]["p99_us"] for rd in w["rounds"]]
            out[s][c] = {
                "rps": median([x[c]["rps"] for x in rows]),
                "ratio": median(ratio), "ratio_min": min(ratio) if ratio else None,
                "ratio_max": max(ratio) if ratio else None,
                "p50_us": median([x[c]["p50_us"] for x in rows]), "p99_us": median([x[c]["p99_us"] for x in rows]),
                "d_p50_us": median(d50), "d_p99_us": median(d99),
                "cpu_us": median([x[c]["envoy_cpu_us_per_req"] for x in rows]),
                "non2xx": sum(x[c]["non2xx"] for x in rows), "socket_errors": sum(x[c]["socket_errors"] for x in rows),
            }
        if s == "jwt":
            r = [rd["runs"][s]["J1"]["rps"] / rd["runs"][s]["J0"]["rps"] for rd in w["rounds"]]
            out[s]["J1/J0"] = median(r)
    return out


# ------------------------------------------------------------------------------------ 100 MB stream

def stream_phase(procs, workdir, upstreams):
    out = {}
    size = STREAM_MB * 1024 * 1024
    for c in ["A", "B", "D"]:
        e = lib.Envoy(procs, workdir, c, upstreams, tag="stream")
        method, path, headers, body, host = lib.scenario_request("stream100m")
        headers = dict(headers, Host=host)
        # warm-up: a few 1 MB streams
        cl = lib.Client(e.port)
        cl.send((method, path, dict(headers, **{"x-bench-stream-bytes": str(1 << 20)}), body, None), 5)
        headers["x-bench-stream-bytes"] = str(size)
        cl.close()
        time.sleep(1)
        before = e.rss_kb()
        tok0 = e.stats("ai_attribution_tokens_total;direction=output") if c == "D" else {}
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                samples.append((time.time(), e.rss_kb()))
                time.sleep(0.1)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        streams = []
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=300)
            t0, c0 = time.time(), proc_cpu_s(e.pid)
            conn.request(method, path, body=body.encode(), headers=headers)
            resp = conn.getresponse()
            n = 0
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                n += len(chunk)
            conn.close()
            dt, cpu = time.time() - t0, proc_cpu_s(e.pid) - c0
            peak = max((kb for t, kb in samples if t >= t0), default=e.rss_kb())
            streams.append({"status": resp.status, "bytes": n, "seconds": round(dt, 2),
                            "mb_per_s": round(n / dt / 1e6, 1), "envoy_cpu_s": round(cpu, 3),
                            "peak_rss_kb": peak})
        time.sleep(1)
        stop.set()
        th.join()
        after = e.rss_kb()
        tok1 = e.stats("ai_attribution_tokens_total;direction=output") if c == "D" else {}
        out[c] = {"rss_before_kb": before, "rss_after_kb": after,
                  "peak_rss_kb": max(kb for _, kb in samples), "streams": streams,
                  "output_tokens_counted": (sum(v for v in tok1.values() if isinstance(v, int)) -
                                            sum(v for v in tok0.values() if isinstance(v, int))) if c == "D" else None}
        log("100 MB stream %s: RSS %d -> peak %d -> %d kB; %s" % (c, before, out[c]["peak_rss_kb"], after, streams))
        e.stop()
    return out


# ------------------------------------------------------------------------------------ callgrind

def cg_control(*args):
    r = subprocess.run(["callgrind_control"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300, check=False)
    if r.returncode != 0 or b"OK" not in r.stdout:
        raise RuntimeError("callgrind_control %s: %s" % (" ".join(args), r.stdout.decode()))


def cg_dump(e):
    before = set(glob.glob(e.cg_prefix + ".*.*"))
    cg_control("-d", str(e.pid))
    deadline = time.time() + 60
    while time.time() < deadline:
        new = sorted(set(glob.glob(e.cg_prefix + ".*.*")) - before, key=os.path.getmtime)
        if new:
            with open(new[-1]) as f:
                for line in f:
                    if line.startswith("summary:"):
                        return int(line.split()[1])
        time.sleep(0.2)
    raise RuntimeError("no callgrind dump appeared")


def cg_measure(e, cl, req, warm=None, n1=None, n2=None):
    """Instructions per request of `req` on a callgrind Envoy (instrumentation already on)."""
    warm, n1, n2 = warm or CG_WARM, n1 or CG_N1, n2 or CG_N2
    cl.send(req, warm)
    cg_control("-z", str(e.pid))
    cl.send(req, n1)
    ir1 = cg_dump(e)
    cg_control("-z", str(e.pid))
    cl.send(req, n2)
    ir2 = cg_dump(e)
    return {"ir_n1": ir1, "ir_n2": ir2, "per_request": (ir2 - ir1) / float(n2 - n1)}


def cg_envoy(procs, workdir, config, upstreams, **kw):
    e = lib.Envoy(procs, workdir, config, upstreams, callgrind=True, **kw)
    cg_control("-i", "on", str(e.pid))
    return e


def cg_stop(e):
    e.stop()
    for f in glob.glob(e.cg_prefix + "*"):
        os.remove(f)


def callgrind_phase(procs, workdir, upstreams, jwks, jwt, pki):
    out = {}
    only = [c for c in os.environ.get("BENCH_CG_CONFIGS", "").split(",") if c]
    for c, scenarios in CG_PLAN:
        if only and c not in only:
            continue
        log("callgrind %s: %s" % (c, ", ".join(scenarios)))
        e = cg_envoy(procs, workdir, c, upstreams, jwks=jwks, pki=pki)
        try:
            tls = {"ca": pki["ca"], "client": pki["client"]} if c.endswith("-tls") else None
            cl = lib.Client(e.port, tls)
            for s in scenarios:
                m = cg_measure(e, cl, lib.scenario_request(s, jwt))
                key = s if s not in out.get(c, {}) else s + "_repeat"
                out.setdefault(c, {})[key] = m
                log("  %-6s %-9s %9.0f instructions/request" % (c, key, m["per_request"]))
            cl.close()
        finally:
            cg_stop(e)
    return out


# ------------------------------------------------------------------------------------ report

def k(x):
    return "–" if x is None else "%.1fk" % (x / 1000.0)


def us(x, signed=False):
    if x is None:
        return "–"
    return ("%+.0f µs" if signed else "%.0f µs") % x


def mib(kb):
    return "–" if kb is None else "%.1f MiB" % (kb / 1024.0)


def target_rows(cg, stream, sizes, wrk=None):
    """The lifecycle issue's targets: instructions against no filter (A) and the no-op (B), the
    2 KB body, SSE CPU per MB, RSS against the no-op, the .wasm size."""
    rows = []

    def ir(c, s):
        return cg.get(c, {}).get(s, {}).get("per_request")

    def verdict(value, limit, unit=""):
        return "met" if value <= limit else "missed by %s%s" % (k(value - limit) if not unit else "%.1f" % (value - limit), unit)

    if cg:
        d, a = ir("D", "header"), ir("A", "header")
        if d is not None and a is not None:
            rows.append(("header attribution, full record and usage ≤ no filter + 200k (stretch + 150k)",
                         "D − A = %s (D %s, A %s)" % (k(d - a), k(d), k(a)), verdict(d - a, 200000)))
        d, b = ir("D", "nonmodel"), ir("B", "nonmodel")
        if d is not None and b is not None:
            rows.append(("non-model traffic ≤ no-op + 25k", "D − B = %s (D %s, B %s)" % (k(d - b), k(d), k(b)),
                         verdict(d - b, 25000)))
        d2, dh = ir("D", "body2k"), ir("D", "header")
        if d2 is not None and dh is not None:
            rows.append(("a 2 KB JSON body ≤ the same call + 15k", "D(2 KB) − D(headers) = %s" % k(d2 - dh),
                         verdict(d2 - dh, 15000)))
    if stream and "D" in stream:
        per_mb = [1000.0 * st["envoy_cpu_s"] / (st["bytes"] / 1e6) for st in stream["D"]["streams"] if st["bytes"]]
        if per_mb:
            worst = max(per_mb)
            rows.append(("SSE usage reading ≤ 2 ms of Envoy CPU per MB (~1 KB events)",
                         "D: %s ms per MB (two %d MB streams)" % (" / ".join("%.2f" % x for x in per_mb), STREAM_MB),
                         verdict(worst, 2.0, " ms")))
    if wrk:
        rd, rb = wrk["rss_after_warmup_kb"].get("D"), wrk["rss_after_warmup_kb"].get("B")
        if rd and rb:
            al = wrk.get("allocator_after_warmup", {})
            ad, ab = (al.get(c, {}).get("allocated_kb") for c in ("D", "B"))
            live = "; allocated +%.1f MiB" % ((ad - ab) / 1024.0) if ad is not None and ab is not None else ""
            rows.append(("Envoy RSS with the filter ≤ the no-op filter + 10 MiB",
                         "D %s, B %s (+%.1f MiB, after the first warm-up%s)" % (mib(rd), mib(rb), (rd - rb) / 1024.0, live),
                         verdict((rd - rb) / 1024.0, 10.0, " MiB")))
    w = sizes["filter"]
    rows.append((".wasm ≤ 300 KB", "%d B (%.1f KiB)" % (w, w / 1024.0),
                 "met" if w <= 300 * 1000 else "missed by %.1f KB" % ((w - 300000) / 1000.0)))
    return rows


def report(results):
    L = []
    env = results["env"]
    L.append("# ai-attribution benchmark")
    L.append("")
    L.append("Run %s on `%s` (%s cores, %s), Envoy %s, `%s`, nginx %s, valgrind %s." % (
        env["date"], env["host"], env["cores"], env["cpu"], env["envoy"], env["wrk"], env["nginx"], env["valgrind"]))
    L.append("Method: BENCHMARKS.md. Envoy `--concurrency 1` pinned to core 0 (`taskset -c 0`); "
             "upstream and load generator pinned to core 1. wrk `-t1 -c16`, %d s warm-up, %d s measured "
             "`--latency`, %d rounds interleaved (order reversed on alternate rounds); medians, and ratios "
             "against the no-filter run (A) of the same round. No access log but in the -log configs." % (
                 results["params"]["warmup"], results["params"]["seconds"], results["params"]["rounds"]))
    L.append("")
    L.append("Configs: **A** router only; **B** no-op proxy-wasm filter (`bench/noop`); **C** Lua "
             "(`bench/attribution.lua`: reads :path + 4 headers, 403 JSON if unattributed, sets 1 request + "
             "1 response header; writes no record, scans no body); **D** ai-attribution with envoy/envoy.yaml's "
             "configuration (header attribution, request/response usage scan, full record in filter state, metrics); "
             "**J0** jwt_authn alone; **J1** jwt_authn + ai-attribution (envoy/jwt.yaml's configuration); "
             "**A-tls / D-tls** downstream mTLS without / with ai-attribution (envoy/mtls.yaml's configuration); "
             "**A-log / D-log** A and D with envoy/envoy.yaml's access log to a file, **D-log-flat** the same "
             "without the log's `record` key (callgrind only).")
    L.append("")
    s = results.get("sizes")
    cg = results.get("callgrind") or {}
    stream = results.get("stream100m") or {}
    L.append("## Targets")
    L.append("")
    L.append("| target | measured | result |")
    L.append("|---|---|---|")
    for t, m, r in target_rows(cg, stream, s, results.get("wrk")):
        L.append("| %s | %s | %s |" % (t, m, r))
    L.append("")
    if cg:
        L.append("## Instructions per request (callgrind, whole Envoy process)")
        L.append("")
        L.append("`valgrind --tool=callgrind --instr-atstart=no`; after %d warm-up requests on one keep-alive "
                 "connection: zero, %d requests, dump; zero, %d requests, dump; per request = (Ir(%d) − Ir(%d)) / %d." % (
                     CG_WARM, CG_N1, CG_N2, CG_N2, CG_N1, CG_N2 - CG_N1))
        L.append("")
        L.append("| scenario | A | B | C | D | D − A | D − B | D − C |")
        L.append("|---|---|---|---|---|---|---|---|")

        def ir(c, sc):
            return cg.get(c, {}).get(sc, {}).get("per_request")

        for sc in ["nonmodel", "header", "body2k"]:
            a, b, c_, d = ir("A", sc), ir("B", sc), ir("C", sc), ir("D", sc)
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                sc, k(a), k(b), k(c_), k(d), k(d - a) if d and a else "–", k(d - b) if d and b else "–",
                k(d - c_) if d and c_ else "–"))
        L.append("")
        L.append("| scenario | baseline | with ai-attribution | delta |")
        L.append("|---|---|---|---|")
        if ir("J0", "jwt") and ir("J1", "jwt"):
            L.append("| jwt: A (no filter, same request) | %s | | |" % k(ir("A", "jwt")))
            L.append("| jwt: J0 jwt_authn alone → J1 jwt_authn + filter | %s | %s | %s |" % (
                k(ir("J0", "jwt")), k(ir("J1", "jwt")), k(ir("J1", "jwt") - ir("J0", "jwt"))))
        if ir("A-tls", "mtls") and ir("D-tls", "mtls"):
            L.append("| mTLS: A-tls → D-tls (peer:spiffe_id etc.) | %s | %s | %s |" % (
                k(ir("A-tls", "mtls")), k(ir("D-tls", "mtls")), k(ir("D-tls", "mtls") - ir("A-tls", "mtls"))))
        if ir("D", "header") and ir("D", "body2k"):
            L.append("| 2 KB body: D(headers) → D(2 KB) | %s | %s | %s |" % (
                k(ir("D", "header")), k(ir("D", "body2k")), k(ir("D", "body2k") - ir("D", "header"))))
        if ir("A-log", "header") and ir("D-log", "header"):
            L.append("| access log (envoy/envoy.yaml's format): A-log → D-log | %s | %s | %s |" % (
                k(ir("A-log", "header")), k(ir("D-log", "header")), k(ir("D-log", "header") - ir("A-log", "header"))))
        if ir("D-log", "header") and ir("D-log-flat", "header"):
            L.append("| the same log without its `record` key (`:TYPED` Struct): D-log-flat | %s | %s | %s |" % (
                k(ir("D-log", "header")), k(ir("D-log-flat", "header")),
                k(ir("D-log-flat", "header") - ir("D-log", "header"))))
        rep = ir("D", "header_repeat")
        if rep and ir("D", "header"):
            L.append("")
            L.append("Repeatability: D header measured twice: %s and %s (%.2f %% apart)." % (
                k(ir("D", "header")), k(rep), 100.0 * abs(rep - ir("D", "header")) / ir("D", "header")))
        L.append("")
    if results.get("wrk"):
        w = results["wrk_summary"]
        L.append("## Throughput and latency (wrk)")
        L.append("")
        dist = sum(len(rd["disturbed"]) for rd in results["wrk"]["rounds"])
        reruns = sum(a - 1 for rd in results["wrk"]["rounds"] for a in rd["attempts"].values())
        L.append("Before each scenario the benchmark waits until other processes use < 0.05 cores; a scenario "
                 "whose measured runs saw other processes use > %.2f cores is run again (whole scenario, all "
                 "configs). Re-runs: %d; runs still disturbed after %d attempts: %d%s." % (
                     DISTURBED, reruns, MAX_ATTEMPTS, dist,
                     "" if not dist else " (" + "; ".join(d for rd in results["wrk"]["rounds"] for d in rd["disturbed"]) + ")"))
        L.append("Envoy CPU µs/req = the CPU time Envoy's threads ran (scheduler nanoseconds) during the measured run / requests. Δp50 / Δp99 = median "
                 "over rounds of (config − A of the same round), so they need not equal the difference of the medians.")
        L.append("")
        for sc, cs in WRK_PLAN:
            L.append("**%s**" % SCENARIO_TEXT[sc])
            L.append("")
            L.append("| config | req/s | ratio vs A (min–max) | p50 | Δp50 | p99 | Δp99 | Envoy CPU µs/req |")
            L.append("|---|---|---|---|---|---|---|---|")
            for c in cs:
                x = w[sc][c]
                L.append("| %s | %.0f | %.2f (%.2f–%.2f) | %s | %s | %s | %s | %.1f |" % (
                    c, x["rps"], x["ratio"], x["ratio_min"], x["ratio_max"], us(x["p50_us"]),
                    us(x["d_p50_us"], True) if c != "A" else "", us(x["p99_us"]),
                    us(x["d_p99_us"], True) if c != "A" else "", x["cpu_us"] or 0))
            if sc == "jwt":
                L.append("")
                L.append("J1 / J0 throughput: %.2f" % w[sc]["J1/J0"])
            errs = sum(w[sc][c]["non2xx"] + w[sc][c]["socket_errors"] for c in cs)
            if errs:
                L.append("")
                L.append("**%d non-2xx responses or socket errors in this scenario.**" % errs)
            L.append("")
        L.append("## Envoy RSS per config")
        L.append("")
        L.append("| config | after first warm-up | after all rounds | allocated (after warm-up) | allocator's heap "
                 "| of it free: page heap | free: thread caches |")
        L.append("|---|---|---|---|---|---|---|")
        for c in ["A", "B", "C", "D", "J0", "J1"]:
            al = results["wrk"].get("allocator_after_warmup", {}).get(c) or {}
            L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                c, mib(results["wrk"]["rss_after_warmup_kb"].get(c)), mib(results["wrk"]["rss_after_rounds_kb"].get(c)),
                mib(al.get("allocated_kb")), mib(al.get("heap_kb")), mib(al.get("free_kb")),
                mib(al.get("thread_caches_kb"))))
        L.append("")
        L.append("Allocated: what Envoy's allocator has handed out and not had back (admin `/memory`); "
                 "its heap also holds freed memory it keeps for reuse (in its page heap and its "
                 "threads' caches), which RSS counts.")
        L.append("")
    L.append("## Binary size")
    L.append("")
    L.append("| filter | bytes |")
    L.append("|---|---|")
    L.append("| ai_attribution.wasm | %d (%.1f KiB) |" % (s["filter"], s["filter"] / 1024.0))
    L.append("| no-op (bench/noop) | %d (%.1f KiB) |" % (s["noop"], s["noop"] / 1024.0))
    L.append("")
    if stream:
        L.append("## %d MB SSE stream (bench/sse_upstream.py, ~1.1 KB events then a usage event), RSS sampled every 100 ms" % STREAM_MB)
        L.append("")
        L.append("| config | RSS before | peak during 2 streams | RSS after | MB/s (per stream) | Envoy CPU s (per stream) | output tokens counted |")
        L.append("|---|---|---|---|---|---|---|")
        for c, x in stream.items():
            L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                c, mib(x["rss_before_kb"]), mib(x["peak_rss_kb"]), mib(x["rss_after_kb"]),
                " / ".join(str(st["mb_per_s"]) for st in x["streams"]),
                " / ".join(str(st["envoy_cpu_s"]) for st in x["streams"]),
                "–" if x["output_tokens_counted"] is None else x["output_tokens_counted"]))
        L.append("")
    L.append("## Notes")
    L.append("")
    L.append("- Upstreams: nginx-light (1 worker, `return 200`, keep-alive; a 370 B OpenAI chat completion with usage on "
             "/v1/*) for header/body/jwt/mTLS scenarios; the repo's model-server (release) for the 1 MB stream — a much "
             "heavier, paced upstream (3 ms between writes), so its ratios compare configs only within that upstream.")
    L.append("- mTLS: wrk and h2load (nghttp2 1.52) cannot present client certificates, so mTLS is measured under "
             "callgrind only (a Python `ssl` keep-alive client).")
    L.append("- C (Lua) does less than D: no filter-state record, no body or usage scan, no metrics.")
    L.append("- Raw numbers: bench/results/latest.json.")
    return "\n".join(L) + "\n"


# ------------------------------------------------------------------------------------ main

def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        # Re-render the Markdown report from a saved latest.json.
        with open(sys.argv[2]) as f:
            text = report(json.load(f))
        with open(os.path.join(lib.BENCH, "results", "latest.md"), "w") as f:
            f.write(text)
        print(text)
        return 0
    lib.install_signal_exit()
    os.sched_setaffinity(0, {lib.LOAD_CPU})
    workdir = tempfile.mkdtemp(prefix="ai-attribution-bench.")
    procs = lib.Procs()
    ok = False
    try:
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        results = {
            "env": {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "host": platform.node(), "cores": os.cpu_count(),
                    "cpu": cpu, "envoy": lib.envoy_version(),
                    "wrk": lib.tool_version(["wrk", "--version"]).split(" Copyright")[0],
                    "nginx": lib.tool_version([shutil.which("nginx") or "/usr/sbin/nginx", "-v"]).split("/")[-1],
                    "valgrind": lib.tool_version(["valgrind", "--version"]).replace("valgrind-", "")},
            "params": {"rounds": ROUNDS, "seconds": SECONDS, "warmup": WARMUP, "cg": [CG_WARM, CG_N1, CG_N2]},
            "sizes": {"filter": os.path.getsize(lib.WASM), "noop": os.path.getsize(lib.NOOP_WASM)},
        }
        ng, ms, big = lib.free_port(), lib.free_port(), lib.free_port()
        lib.start_nginx(procs, workdir, ng)
        lib.start_model_server(procs, workdir, ms)
        lib.start_sse_upstream(procs, workdir, big)
        upstreams = {"default": ng, "stream": ms, "big": big}
        jwks, jwt = lib.make_jwt(workdir)
        pki = lib.make_pki(workdir)
        # callgrind first: its counts do not depend on what else runs on the machine, wrk's do.
        if DO_CG:
            results["callgrind"] = callgrind_phase(procs, workdir, upstreams, jwks, jwt, pki)
        if DO_STREAM:
            results["stream100m"] = stream_phase(procs, workdir, upstreams)
        if DO_WRK:
            results["wrk"] = wrk_phase(procs, workdir, upstreams, jwks, jwt)
            results["wrk_summary"] = summarise_wrk(results["wrk"])
        text = report(results)
        out = os.path.join(lib.BENCH, "results")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "latest.md"), "w") as f:
            f.write(text)
        with open(os.path.join(out, "latest.json"), "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
        print(text)
        ok = True
    finally:
        procs.stop_all()
        if os.environ.get("BENCH_KEEP") == "1" or not ok:
            log("work directory kept: " + workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
