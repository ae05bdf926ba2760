#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time and prints a summary table.
#
#   fuzz/run.sh                      # each target for FUZZ_SECONDS (default 60)
#   FUZZ_SMOKE=1 fuzz/run.sh         # each target for ~10 s (CI)
#   FUZZ_SECONDS=600 fuzz/run.sh config_parse usage_readers   # some targets only
#
# Tools, installed by this script the first time, both pinned: the Rust toolchain FUZZ_TOOLCHAIN
# (default the dated nightly below, with rustup) and cargo-fuzz CARGO_FUZZ_VERSION (with cargo
# install --locked, into the repository's .tools/, which git ignores; nothing global).
#
# Environment: FUZZ_SECONDS, FUZZ_SMOKE, FUZZ_TOOLCHAIN,
# FUZZ_SANITIZER (default none: the filter is safe Rust; use address to also check deps),
# FUZZ_NICE (default 10), FUZZ_EXTRA_ARGS (more libFuzzer flags).
# Seed corpora are generated from the repository's fixtures and scenarios into
# fuzz/corpus/<target>/ (not committed); crashes land in fuzz/artifacts/<target>/.
# Exits non-zero if any target crashed (or failed to build).
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FUZZ_DIR/.." && pwd)"
cd "$FUZZ_DIR"

TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly-2026-05-19}"
CARGO_FUZZ_VERSION=0.13.2
TOOLS="$ROOT/.tools"
SANITIZER="${FUZZ_SANITIZER:-none}"
NICE="${FUZZ_NICE:-10}"
if [[ "${FUZZ_SMOKE:-0}" == 1 ]]; then
    SECONDS_PER_TARGET=10
else
    SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
fi

ALL_TARGETS=(
    config_parse
    value_check
    source_parse
    jwt_payload
    identity_parsers
    body_scanner
    body_scanner_differential
    usage_readers
    jwt_metadata
    path_canonical
)
if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi

# ---- tools ------------------------------------------------------------------------------
if ! rustup toolchain list | grep -q "^$TOOLCHAIN"; then
    rustup toolchain install "$TOOLCHAIN" --profile minimal
fi
if [[ "$("$TOOLS/bin/cargo-fuzz" --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"

# ---- seed corpora (generated from the repository, never committed) ----------------------
seed() { # seed TARGET NAME  (content on stdin)
    mkdir -p "corpus/$1"
    cat >"corpus/$1/seed-$2"
}

gen_seeds() {
    local f name
    # Committed hand-written seeds and crash regressions (replayed first by libFuzzer).
    for dir in seeds/*/ regressions/*/; do
        [[ -d "$dir" ]] || continue
        name="$(basename "$dir")"
        mkdir -p "corpus/$name"
        cp "$dir"* "corpus/$name/" 2>/dev/null || true
    done

    # Scenario configs and request bodies.
    for f in "$ROOT"/tests/scenarios/*.json; do
        [[ -f "$f" ]] || continue
        name="$(basename "$f" .json)"
        python3 - "$f" "$FUZZ_DIR/corpus" "$name" <<'EOF'
import json, os, sys
src, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
doc = json.load(open(src))
def put(target, tag, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, f"seed-{name}-{tag}"), "wb") as fh:
        fh.write(data)
if "config" in doc:
    put("config_parse", "config", json.dumps(doc["config"]).encode())
    for dim, sources in doc["config"].get("dimensions", {}).items():
        for i, s in enumerate(sources):
            put("source_parse", f"{dim}-{i}", s.encode())
for i, case in enumerate(doc.get("cases", [])):
    body = case.get("request", {}).get("body")
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        put("body_scanner_differential", f"case{i}", data)
        put("body_scanner", f"case{i}", b"\x07\x00" + data)
    for j, (k, v) in enumerate(case.get("request", {}).get("headers", [])):
        put("value_check", f"case{i}-{j}", b"\xff" + v.encode())
EOF
    done

    # Usage fixtures, prefixed with the family/format selector byte and a split seed.
    python3 - "$ROOT/tests/fixtures/usage" "$FUZZ_DIR/corpus" <<'EOF'
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
families = ["OpenAiChat", "OpenAiResponses", "Anthropic", "Gemini",
            "BedrockConverse", "BedrockInvoke", "Ollama", "Cohere"]
formats = ["Json", "Sse", "Ndjson", "AwsEventStream"]
expected = json.load(open(os.path.join(src, "expected.json")))
for d in ("usage_readers", "body_scanner", "body_scanner_differential"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
for fname, meta in expected.items():
    path = os.path.join(src, fname)
    if not os.path.exists(path):
        continue
    data = open(path, "rb").read()
    sel = families.index(meta["family"]) | (formats.index(meta["format"]) << 3)
    open(os.path.join(out, "usage_readers", f"seed-{fname}"), "wb").write(bytes([sel, 0]) + data)
    if meta["format"] == "Json":
        open(os.path.join(out, "body_scanner", f"seed-{fname}"), "wb").write(b"\x07\x00" + data)
        open(os.path.join(out, "body_scanner_differential", f"seed-{fname}"), "wb").write(data)
EOF
}
if command -v python3 >/dev/null 2>&1; then
    gen_seeds
else
    echo "run.sh: python3 not found; fuzzing without generated seed corpora" >&2
fi

# ---- build and run ----------------------------------------------------------------------
mkdir -p logs
if ! nice -n "$NICE" cargo "+$TOOLCHAIN" fuzz build -s "$SANITIZER" >logs/build.log 2>&1; then
    tail -n 30 logs/build.log >&2
    echo "run.sh: building the fuzz targets failed (fuzz/logs/build.log)" >&2
    exit 1
fi

declare -a ROWS
failed=0
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    dict=()
    [[ -f "dicts/$t.dict" ]] && dict=("-dict=$FUZZ_DIR/dicts/$t.dict")
    log="logs/$t.log"
    before=$(find "artifacts/$t" -type f | wc -l)
    start=$(date +%s)
    status=0
    # shellcheck disable=SC2086
    nice -n "$NICE" cargo "+$TOOLCHAIN" fuzz run -s "$SANITIZER" "$t" "$FUZZ_DIR/corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
        "${dict[@]}" ${FUZZ_EXTRA_ARGS:-} >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - start))
    # libFuzzer's final stats; the last "#N" status line if it died before printing them.
    execs=$(grep -E '^stat::number_of_executed_units:' "$log" | tail -n 1 | awk '{print $2}' || true)
    if [[ -z "$execs" ]]; then
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)
    fi
    execs="${execs:-0}"
    secs=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -n 1)
    secs="${secs:-$elapsed}"
    rate=$(awk -v n="$execs" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
    crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
    if [[ $status -ne 0 ]]; then
        failed=1
        result="FAIL (exit $status, see fuzz/$log)"
    else
        result="ok"
    fi
    ROWS+=("$(printf '%-28s %14s %8s %10s %8s  %s' "$t" "$execs" "$secs" "$rate" "$crashes" "$result")")
done

echo
printf '%-28s %14s %8s %10s %8s  %s\n' target executions seconds execs/s crashes result
for r in "${ROWS[@]}"; do echo "$r"; done
exit "$failed"
