#!/usr/bin/env bash
# `make run`, `make run-mtls`, `make run-jwt`, `make run-quota`: renders envoy/<demo>.yaml with
# local paths and ports into .run/ (see integration/src/demo.rs), then runs the local model server,
# for the JWT demo a local identity provider serving its JWKS over HTTPS, for the quota demos a
# Redis without persistence and the rate-limit server counting in it, and Envoy with the filter in
# the foreground of this script. Ctrl-C (or the end of any of them) stops them all.
#
#   scripts/run.sh envoy|mtls|jwt|quota|quota-ratelimit-filter
#
# Environment (the Makefile sets them): LISTEN_PORT, ADMIN_PORT, MODEL_SERVER_PORT, IDP_PORT, ENVOY;
# for the quota demos REDIS_PORT, RATELIMIT_PORT, QUOTA_LIMITS (envoyproxy/ratelimit's format, or
# Limitador's) and RATELIMIT_LOG (the rate-limit server's log level: debug logs every call).
set -euo pipefail
cd "$(dirname "$0")/.."

# A demo name, or its config's path (envoy/quota-ratelimit-filter.yaml).
demo="${1:?usage: scripts/run.sh envoy|mtls|jwt|quota|quota-ratelimit-filter}"
demo="${demo#envoy/}"
demo="${demo%.yaml}"
LISTEN_PORT="${LISTEN_PORT:-10000}"
ADMIN_PORT="${ADMIN_PORT:-9901}"
MODEL_SERVER_PORT="${MODEL_SERVER_PORT:-18080}"
IDP_PORT="${IDP_PORT:-18443}"
RATELIMIT_PORT="${RATELIMIT_PORT:-8081}"
REDIS_PORT="${REDIS_PORT:-16379}"
QUOTA_LIMITS="${QUOTA_LIMITS:-envoy/ratelimit/config.yaml}"
RATELIMIT_LOG="${RATELIMIT_LOG:-info}"
ENVOY="${ENVOY:-.venv/bin/envoy}"
RUN_DIR="$PWD/.run"

config="$(target/release/demo "$demo" --run-dir "$RUN_DIR" --wasm "$PWD/target/wasm32-wasip1/release/ai_attribution.wasm" \
    --listen-port "$LISTEN_PORT" --admin-port "$ADMIN_PORT" --model-server-port "$MODEL_SERVER_PORT" --idp-port "$IDP_PORT" \
    --ratelimit-port "$RATELIMIT_PORT")"

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

# Whether a Redis answers PING on REDIS_PORT.
redis_up() {
    local reply
    { exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    read -r -t 1 reply <&3 || true
    exec 3<&- 3>&-
    [[ "$reply" == "+PONG"* ]]
}

scheme=http
case "$demo" in
    mtls)
        scheme=https
        ;;
    quota | quota-ratelimit-filter)
        # Redis with no persistence: the budgets' counters live as long as this demo.
        mkdir -p "$RUN_DIR/redis"
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$RUN_DIR/redis" --logfile "$RUN_DIR/redis/redis.log" &
        pids+=($!)
        for _ in $(seq 100); do
            redis_up && break
            sleep 0.1
        done
        redis_up || { echo "redis-server did not answer on 127.0.0.1:$REDIS_PORT (see .run/redis/redis.log)"; exit 1; }
        # envoyproxy/ratelimit's format has a top-level `domain`; otherwise a Limitador limits file.
        limits=(--limits "$QUOTA_LIMITS")
        grep -q '^domain:' "$QUOTA_LIMITS" && limits=(--config "$QUOTA_LIMITS")
        target/release/ratelimit-server --port "$RATELIMIT_PORT" --redis "redis://127.0.0.1:$REDIS_PORT" \
            "${limits[@]}" --log-level "$RATELIMIT_LOG" >/dev/null &
        pids+=($!)
        echo "redis on 127.0.0.1:$REDIS_PORT, rate-limit server on 127.0.0.1:$RATELIMIT_PORT ($QUOTA_LIMITS)"
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
