#!/usr/bin/env bash
# `make run`, `make run-mtls`, `make run-jwt`: renders envoy/<demo>.yaml with local paths and ports
# into .run/ (see integration/src/demo.rs), then runs the local model server, for the JWT demo a
# local identity provider serving its JWKS over HTTPS, and Envoy with the filter in the foreground
# of this script. Ctrl-C (or the end of any of them) stops them all.
#
#   scripts/run.sh envoy|mtls|jwt
#
# Environment (the Makefile sets them): LISTEN_PORT, ADMIN_PORT, MODEL_SERVER_PORT, IDP_PORT, ENVOY.
set -euo pipefail
cd "$(dirname "$0")/.."

demo="${1:?usage: scripts/run.sh envoy|mtls|jwt}"
LISTEN_PORT="${LISTEN_PORT:-10000}"
ADMIN_PORT="${ADMIN_PORT:-9901}"
MODEL_SERVER_PORT="${MODEL_SERVER_PORT:-18080}"
IDP_PORT="${IDP_PORT:-18443}"
ENVOY="${ENVOY:-.venv/bin/envoy}"
RUN_DIR="$PWD/.run"

config="$(target/release/demo "$demo" --run-dir "$RUN_DIR" --wasm "$PWD/target/wasm32-wasip1/release/ai_attribution.wasm" \
    --listen-port "$LISTEN_PORT" --admin-port "$ADMIN_PORT" --model-server-port "$MODEL_SERVER_PORT" --idp-port "$IDP_PORT")"

# Every process started here, stopped by PID when the script ends for any reason. Background
# processes of a script ignore the terminal's Ctrl-C; the trap stops them, once.
pids=()
stop_all() {
    trap - EXIT INT TERM
    if [[ ${#pids[@]} -gt 0 ]]; then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    echo "stopped"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

target/release/model-server --port "$MODEL_SERVER_PORT" --quiet &
pids+=($!)

scheme=http
case "$demo" in
    mtls)
        scheme=https
        ;;
    jwt)
        # The identity provider: its JWKS over HTTPS, with a certificate for idp.corp.example.
        (cd "$RUN_DIR/jwt/www" && exec openssl s_server -quiet -accept "127.0.0.1:$IDP_PORT" \
            -cert ../idp.crt -key ../idp.key -WWW) &
        pids+=($!)
        ;;
esac

echo "model server on 127.0.0.1:$MODEL_SERVER_PORT, Envoy (${config#"$PWD"/}) on $scheme://127.0.0.1:$LISTEN_PORT, admin on 127.0.0.1:$ADMIN_PORT"
[[ "$demo" == jwt ]] && echo "identity provider on 127.0.0.1:$IDP_PORT; a token for alice: .run/jwt/token"
[[ "$demo" == mtls ]] && echo "client certificates: .run/tls/client.crt (billing-bot), .run/tls/gateway.crt (auth-gateway); CA .run/tls/ca.crt"
echo "access log below; Ctrl-C stops everything"

# Access-log lines are flushed within a quarter of a second.
"$ENVOY" -c "$config" --concurrency 1 --disable-hot-restart --log-level warn --file-flush-interval-msec 250 &
pids+=($!)

# Until one of them ends (or Ctrl-C).
wait -n "${pids[@]}"
