# lambda-mlops: every routine task, automated.
#
#   make demo         run the whole loop locally (embedded S3, no AWS account)
#   make test         the test suite
#   make install      lint, deploy and load-test tools into .venv and .venv-lint, and
#                     asl-validator into node_modules
#   make lint         rustfmt check, clippy with warnings denied, then lint-infra
#   make lint-infra   cfn-lint, sam validate --lint, checkov, hadolint, workflow schemas,
#                     asl-validator and cfn-lint on the state machines, buildspec.yml,
#                     samconfig.toml and version checks (no Rust toolchain needed)
#   make build        Lambda bootstrap binaries with cargo-lambda (LAMBDA_ARCH=arm64|x86_64)
#   make sam-build    the same through `sam build` (SAM_ARCH=arm64|x86_64)
#   make bench        prediction latency and model load, beside onnxruntime (BENCHMARKS.md)
#   make bench-ingest ingest throughput beside polars, pandas and whylogs (BENCHMARKS.md)
#   make bench-cold-start  predict's cold start and peak memory, beside Python (BENCHMARKS.md)
#   make bench-saturation  predict's throughput and tail latency at saturation, beside FastAPI
#   make loadtest     locust against a local predict server: rps, p50, p99; fails on any 5xx
#                     or p99 over LOADTEST_P99_MS (BENCHMARKS.md)

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(abspath $(VENV)/bin)
# checkov and check-jsonschema pin versions of boto3 and click that aws-sam-cli cannot share.
LINT_VENV := .venv-lint
LINT_BIN := $(abspath $(LINT_VENV)/bin)
LAMBDA_ARCH ?= arm64
SAM_ARCH ?= $(LAMBDA_ARCH)
# SAM needs a region and (for local commands) credentials; these dummy values never reach AWS.
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}

.PHONY: help install install-build fmt lint lint-infra test build sam-build demo bench loadtest ci clean

help:
	@sed -n '3,18p' Makefile

$(VENV)/bin/activate:
	python3 -m venv $(VENV)

install: $(VENV)/bin/activate
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	test -x $(LINT_VENV)/bin/python || python3 -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LINT_VENV)/bin/python -m pip install --quiet -r requirements-lint.txt
	npm ci --silent --no-audit --no-fund

install-build: $(VENV)/bin/activate
	$(PY) -m pip install --quiet -r requirements-build.txt

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(MAKE) --no-print-directory lint-infra

# Every check of the deployment files; each tool runs offline.
lint-infra:
	$(BIN)/cfn-lint template.yaml
	$(SAM_ENV) $(BIN)/sam validate --lint --template template.yaml
	$(LINT_BIN)/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml
	$(BIN)/hadolint Dockerfile
	$(LINT_BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(PY) scripts/check_buildspec.py buildspec.yml samconfig.toml
	$(PY) scripts/check_samconfig.py samconfig.toml template.yaml
	$(SAM_ENV) $(PY) scripts/check_versions.py template.yaml
	for definition in statemachines/*.asl.json; do node_modules/.bin/asl-validator --json-path $$definition || exit 1; done
	$(PY) scripts/check_statemachines.py template.yaml
	$(PY) -m py_compile loadtest/locustfile.py loadtest/run.py scripts/check_buildspec.py scripts/check_samconfig.py scripts/check_versions.py scripts/check_statemachines.py

# The function binaries are built first: the Runtime API tests run them as Lambda would.
test:
	cargo build --workspace --bins --locked
	cargo test --workspace --locked -- --show-output

build: install-build
	PATH=$(BIN):$$PATH cargo lambda build --release --locked $(if $(filter x86_64,$(LAMBDA_ARCH)),--x86-64,--arm64)

sam-build: install install-build
	PATH=$(BIN):$$PATH $(SAM_ENV) $(BIN)/sam build --parameter-overrides Architecture=$(SAM_ARCH)

demo:
	cargo run --quiet --locked -- demo

$(VENV)/.bench: bench/requirements.txt | $(VENV)/bin/activate
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $@

bench: $(VENV)/.bench
	$(PY) bench/onnxruntime_bench.py --out bench/onnxruntime.json
	cargo bench --locked -p predict --bench latency

# Ingest throughput beside polars, pandas and whylogs (BENCHMARKS.md). whylogs needs NumPy 1, so its
# packages get their own virtualenv. INGEST_BENCH_ARGS passes options, e.g. --size-mb 20.
INGEST_VENV := .venv-bench-ingest

$(INGEST_VENV)/.stamp: bench/requirements-ingest.txt
	python3 -m venv $(INGEST_VENV)
	$(INGEST_VENV)/bin/python -m pip install --quiet -r bench/requirements-ingest.txt
	touch $@

.PHONY: bench-ingest
bench-ingest: $(INGEST_VENV)/.stamp
	cargo build --release --locked -p mlops
	$(INGEST_VENV)/bin/python bench/ingest_bench.py --out bench/ingest.json $(INGEST_BENCH_ARGS)

# predict at saturation beside FastAPI + onnxruntime, each pinned to one core and loaded by
# oha (a closed-loop load generator from crates.io) on the other (BENCHMARKS.md).
SERVE_VENV := .venv-bench-serve

$(SERVE_VENV)/.stamp: bench/requirements-serve.txt
	test -x $(SERVE_VENV)/bin/python || python3 -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --quiet -r bench/requirements-serve.txt
	cargo install --locked --quiet oha@1.16.0 --root $(SERVE_VENV)
	touch $@

.PHONY: bench-saturation
bench-saturation: $(SERVE_VENV)/.stamp
	cargo build --release --locked -p mlops -p predict
	$(SERVE_VENV)/bin/python bench/saturation.py --oha $(SERVE_VENV)/bin/oha --bin-dir target/release \
	  --out bench/saturation.json

# Load test of the local predict server (loadtest/run.py starts and stops the servers).
LOADTEST_USERS ?= 20
LOADTEST_RUN_TIME ?= 30s
LOADTEST_P99_MS ?= 250

$(VENV)/bin/locust: requirements-dev.txt | $(VENV)/bin/activate
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

loadtest: $(VENV)/bin/locust
	cargo build --release --locked -p mlops -p predict
	$(PY) loadtest/run.py --bin-dir target/release --users $(LOADTEST_USERS) \
	  --run-time $(LOADTEST_RUN_TIME) --p99-ms $(LOADTEST_P99_MS)

ci: lint test

clean:
	cargo clean
	rm -rf .aws-sam

# Cold start of the release predict binary through the Runtime API, then the Python
# alternatives (onnxruntime, scikit-learn) loading the same model on the same machine.
COLD_VENV := .venv-bench-cold
$(COLD_VENV)/.stamp: examples/penguins/requirements.txt
	test -x $(COLD_VENV)/bin/python || python3 -m venv $(COLD_VENV)
	$(COLD_VENV)/bin/python -m pip install --quiet -r examples/penguins/requirements.txt
	touch $@

.PHONY: bench-cold-start
bench-cold-start: $(COLD_VENV)/.stamp
	cargo build --release --locked -p mlops -p predict
	target/release/mlops cold-start --binary target/release/predict --runs 20
	$(COLD_VENV)/bin/python bench/python_cold_start.py --runs 10
