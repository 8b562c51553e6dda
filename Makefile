# Developer entry points. A fresh clone needs Python 3.11, a JDK 17+, Maven and Go; then:
#   make test    install what the tests need, lint, type-check and run the tests (starts a
#                throwaway Kafka on 19092 unless RELAY_TEST_KAFKA names one)
#   make run     run relay against a local Kafka on 9092 (or $RELAY_KAFKA__BOOTSTRAP_SERVERS)
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install, so pip only runs again when pyproject.toml changes.
STAMP := $(VENV)/.installed-dev
KAFKA := deploy/local/kafka
CONFIG ?= config/relay.toml
# Extra pytest arguments, e.g. make test PYTEST_ARGS='-m "not kafka" -x'
PYTEST_ARGS ?=

.PHONY: help install tools schemas lint fmt check test run bench bench-smoke faults faults-cluster fuzz kafka-start kafka-stop kafka-status kafka-logs lock test-compose test-kube

help:
	@echo 'make test          ruff, mypy and pytest (Kafka tests use a broker on 127.0.0.1:19092)'
	@echo 'make run           relay serve --config $(CONFIG), with a local Kafka on 9092 if'
	@echo '                   RELAY_KAFKA__BOOTSTRAP_SERVERS is unset'
	@echo 'make check         the fast loop: ruff check, ruff format --check, mypy, unit tests'
	@echo '                   (no Kafka, no Go tools; under a minute warm)'
	@echo 'make lint          ruff check, ruff format --check and mypy only'
	@echo 'make fmt           ruff format and ruff check --fix, in place'
	@echo 'make schemas       regenerate relay/consumers/schemas from ultracart-rest-sdk'
	@echo 'make install       create $(VENV) and install relay with its dev extras'
	@echo 'make tools         build or fetch what the deploy tests run (helm, promtool,'
	@echo '                   promql-check, benthos, ajv, the UltraCart SDK venv) into ~/.cache/relay;'
	@echo '                   make test does this itself'
	@echo 'make bench         benchmark relay against its ceilings and Benthos (~50 min;'
	@echo '                   own Kafka on 127.0.0.1:19392; SOAK=600 adds a 10-minute RSS run)'
	@echo 'make bench-smoke   the same harness in under 2 minutes (also run by make test)'
	@echo 'make faults        the fault-injection suite alone (~14 min with the 3-broker scenarios;'
	@echo '                   power cuts need root; report in build/fault-report)'
	@echo 'make faults-cluster the 3-broker scenarios with five-fold longer phases (own cluster on'
	@echo '                   127.0.0.1:29192,29292,29392; make test runs the short ones)'
	@echo 'make fuzz          long fuzz run: atheris for FUZZ_SECONDS (600), then the hostile-'
	@echo '                   input properties with HYPOTHESIS_PROFILE=fuzz (also in make test,'
	@echo '                   with a fixed CI budget)'
	@echo 'make test-compose  the real-engine test: dockerd, stand-in images, the relay image and'
	@echo '                   docker compose up --profile demo, checked end to end (docs/deploy.md)'
	@echo 'make test-kube     the chart on a one-node cluster built here (deploy/local/kube):'
	@echo '                   helm install under Pod Security restricted, traffic, upgrade,'
	@echo '                   rotation, spool, a rolling update under load (docs/deploy.md)'
	@echo 'make lock          regenerate requirements.lock (pinned, hashed image dependencies)'
	@echo 'make kafka-start   start the dev Kafka (127.0.0.1:9092); kafka-stop, kafka-status,'
	@echo '                   kafka-logs likewise (RELAY_KAFKA_PORT picks another broker)'

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

# Cached outside the clone (deploy/tools/paths.sh): a second run, from any clone, checks
# versions and returns in seconds; cold it builds helm, promtool, promql-check and Benthos
# from the Go module proxy (15 minutes on 2 cores), installs ajv from npm and the UltraCart
# SDK venv the schema tests read (tools/generate_schemas.py --install-sdk).
tools: $(STAMP)
	deploy/tools/install
	$(BIN)/python tools/generate_schemas.py --install-sdk >/dev/null

# The Dockerfile installs exactly these; tests/deploy fails when pyproject.toml's
# dependencies change and the lock was not regenerated.
lock: $(STAMP)
	$(BIN)/python deploy/docker/lock-requirements

# Not part of make test: it needs root (dockerd), apt and ~10 minutes cold; .ci/run runs it.
test-compose: $(STAMP)
	$(BIN)/pytest tests/compose $(PYTEST_ARGS)

# Not part of make test either: root, apt, and the local cluster (deploy/local/kube), whose
# Kubernetes binaries are built once from the Go module proxy and cached outside the clone.
# The cluster is stopped again unless it was already running.
test-kube: $(STAMP) tools
	$(BIN)/pytest tests/kube $(PYTEST_ARGS)

# The consumers' JSON Schemas (relay/consumers/schemas) from UltraCart's Python SDK, which
# is installed into a venv in the cache outside the clone only for this; commit the result.
schemas: $(STAMP)
	$(BIN)/python tools/generate_schemas.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The inner loop: everything that needs neither Kafka nor the Go tools.
check: lint
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

# Everything the tests need is installed here, so a fresh clone needs nothing else.
test: lint tools
	$(BIN)/pytest $(PYTEST_ARGS)

# exec, so Ctrl-C and SIGTERM reach relay itself. The broker is left running for the next
# `make run` (it starts in seconds, but not instantly); `make kafka-stop` stops it.
run: $(STAMP)
	@if [[ -z "$${RELAY_KAFKA__BOOTSTRAP_SERVERS:-}" ]]; then \
		RELAY_KAFKA__BOOTSTRAP_SERVERS=$$(RELAY_KAFKA_PORT=$${RELAY_KAFKA_PORT:-9092} $(KAFKA) start); \
		export RELAY_KAFKA__BOOTSTRAP_SERVERS; \
	fi; \
	echo "relay: Kafka at $$RELAY_KAFKA__BOOTSTRAP_SERVERS" >&2; \
	if [[ -z "$${RELAY_AUTH__BASIC_CREDENTIALS:-}$${RELAY_AUTH__BASIC_CREDENTIALS_FILE:-}" ]]; then \
		RELAY_AUTH__BASIC_CREDENTIALS="ultracart:$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(18))')"; \
		export RELAY_AUTH__BASIC_CREDENTIALS; \
		echo "relay: no credential configured; this session accepts Basic $$RELAY_AUTH__BASIC_CREDENTIALS" >&2; \
	fi; \
	exec $(BIN)/relay serve --config $(CONFIG)

# Results go to bench/results/report.{json,md}; docs/performance.md explains the method.
bench: $(STAMP)
	$(BIN)/python -m bench $(if $(SOAK),--soak $(SOAK))

bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke

# Part of make test too; this runs it alone. docs/reliability.md explains the scenarios.
faults: $(STAMP)
	$(BIN)/pytest -q tests/faults $(PYTEST_ARGS)

# The replicated-cluster scenarios alone, each phase (load, pause, outage) five times longer
# than in make test; docs/reliability.md has the table.
faults-cluster: $(STAMP)
	RELAY_FAULTS_LONG=1 $(BIN)/pytest -q tests/faults/test_cluster_faults.py $(PYTEST_ARGS)

# The corpus is kept in build/fuzz between runs; crashes are written there as crash-*.
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	mkdir -p build/fuzz/corpus
	$(BIN)/python -m tests.hostile.fuzz_intake -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=build/fuzz/ build/fuzz/corpus
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q tests/hostile -m 'not kafka' $(PYTEST_ARGS)

kafka-start:
	$(KAFKA) start

kafka-stop:
	$(KAFKA) stop

kafka-status:
	$(KAFKA) status

kafka-logs:
	$(KAFKA) logs
