#!/usr/bin/env bash
# `make bench`: what ai-attribution costs in Envoy (throughput and latency with wrk, instructions per
# request under callgrind, RSS, a 100 MB stream). Installs nginx-light, wrk and valgrind if missing
# (Debian, as root), builds what it needs, runs bench/bench.py, and writes bench/results/latest.md.
# Quick run: BENCH_ROUNDS=1 BENCH_SECONDS=3 make bench. More knobs: see bench/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
ensure_tools python3 taskset openssl nginx wrk valgrind
build_all with-noop
# bench.py tracks every process it starts and stops them by PID on exit (also on Ctrl-C / TERM).
exec python3 bench/bench.py
