#!/usr/bin/env bash
# Size-optimises the filter in place with wasm-opt -Oz, and remembers the result: cargo puts its
# own (unoptimised) module back at that path on every build, so the optimised copy of the same
# input is reused instead of running wasm-opt (tens of seconds) again.
#
#   scripts/optimize-wasm.sh FILE.wasm WASM-OPT-FLAGS...
set -euo pipefail
wasm="$1"
shift
hash() { sha256sum <"$1" | cut -c1-64; }

current="$(hash "$wasm")"
if [[ "$current" == "$(cat "$wasm.optimized" 2>/dev/null || true)" ]]; then
    exit 0 # already the optimised module
fi
if [[ "$current" == "$(cat "$wasm.source" 2>/dev/null || true)" && -f "$wasm.cache" ]]; then
    cp "$wasm.cache" "$wasm.tmp"
else
    echo "wasm-opt -Oz $wasm"
    wasm-opt -Oz "$@" "$wasm" -o "$wasm.tmp"
    cp "$wasm.tmp" "$wasm.cache"
    echo "$current" >"$wasm.source"
fi
# Replace the file (cargo may have hard-linked it to its own copy; never write through the link).
mv "$wasm.tmp" "$wasm"
hash "$wasm" >"$wasm.optimized"
