# One-line targets. Every target bootstraps the local virtualenv (.venv) when it is missing or when
# pyproject.toml changed, so a fresh machine needs only Python 3.11+ and make. The tools come from
# pyproject's `dev` dependency group (exact pins), which needs pip >= 25.1: a fresh venv's pip is
# older, so it is upgraded first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_SRC := proto/nvinformers/api/device/v1alpha1
GEN_DIR := nvinformers/api/device/v1alpha1
PYTEST_ARGS ?=
GRPCURL_VERSION := v1.9.3

.PHONY: all venv demo test check lint format types imports check-proto proto unit integration e2e chaos conformance bench bench-smoke soak peers grpcurl clean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "nvinformers needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/nvinformers demo $(DEMO_ARGS)

test: check-proto lint types imports peers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

types: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports --no-logo

proto: $(STAMP)
	$(BIN)/python scripts/genproto.py --out .

check-proto: $(STAMP)
	$(BIN)/python scripts/genproto.py --check

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos tests $(PYTEST_ARGS)

# The Device API conformance suite: against an in-process FakeServer, or against the server named
# by NVINFORMERS_CONFORMANCE_TARGET (see docs/compatibility.md for every variable).
conformance: $(STAMP)
	$(BIN)/python -m pytest tests/conformance $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all $(BENCH_ARGS)

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks.run_all --smoke $(BENCH_ARGS)

soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak $(SOAK_ARGS)

# Real clients the e2e tests run against the fakes, besides kubectl (on the machine) and kopf (in
# the dev group): grpcurl, a Go program, installed from the Go module proxy into .venv/bin when Go
# is on PATH (about 30 s the first time, nothing afterwards). Without Go the grpcurl test is
# skipped, and under CI=true it fails instead.
peers: $(BIN)/grpcurl

grpcurl: $(BIN)/grpcurl

$(BIN)/grpcurl: | $(STAMP)
	@if command -v go >/dev/null 2>&1; then \
		echo "installing grpcurl $(GRPCURL_VERSION) into $(BIN) (Go module proxy)"; \
		GOBIN=$(abspath $(BIN)) GOFLAGS=-mod=mod go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION); \
	else \
		echo "go is not on PATH: the grpcurl e2e test will be skipped"; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
