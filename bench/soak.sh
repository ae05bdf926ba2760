#!/usr/bin/env bash
# `make soak`: >= 100k mixed requests through Envoy + ai-attribution against the model server,
# sampling Envoy RSS every second. Fails if RSS grows > 5 %, on any 5xx or on a wasm VM failure.
# Writes bench/results/soak.md. Knobs: SOAK_REQUESTS, SOAK_MAX_SECONDS, SOAK_CONNECTIONS (bench/soak.py).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
ensure_tools python3 taskset wrk
build_all
exec python3 bench/soak.py
