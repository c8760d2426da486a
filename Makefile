# lambda-mlops: every routine task, automated.
#
#   make demo      run the whole loop locally (embedded S3, no AWS account)
#   make test      the test suite
#   make install   Python lint/deploy tools into .venv (sam, cfn-lint)
#   make lint      rustfmt check, clippy with warnings denied, cfn-lint, sam validate --lint
#   make build     Lambda bootstrap binaries with cargo-lambda (LAMBDA_ARCH=arm64|x86_64)
#   make sam-build the same through `sam build` (SAM_ARCH=arm64|x86_64)
#   make bench     prediction latency and model load, beside onnxruntime (BENCHMARKS.md)

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(abspath $(VENV)/bin)
LAMBDA_ARCH ?= arm64
SAM_ARCH ?= $(LAMBDA_ARCH)
# SAM needs a region and (for local commands) credentials; these dummy values never reach AWS.
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}

.PHONY: help install install-build fmt lint test build sam-build demo bench ci clean

help:
	@sed -n '3,11p' Makefile

$(VENV)/bin/activate:
	python3 -m venv $(VENV)

install: $(VENV)/bin/activate
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt

install-build: $(VENV)/bin/activate
	$(PY) -m pip install --quiet -r requirements-build.txt

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(BIN)/cfn-lint template.yaml
	$(SAM_ENV) $(BIN)/sam validate --lint --template template.yaml

test:
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

# Ingest throughput beside pandas and whylogs (BENCHMARKS.md). whylogs needs NumPy 1, so its
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

ci: lint test

clean:
	cargo clean
	rm -rf .aws-sam
