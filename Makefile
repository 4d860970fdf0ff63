# closeloop: local development and CI entry points.
# The logic lives in deploy/local/*.sh; this file only wires the targets together.
#
# State (data, logs, generated dev secrets, <state>/env for clients) lives in .closeloop/ at the
# repository root, or in $CLOSELOOP_STATE_DIR.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

LOCAL := deploy/local
PY := .venv/bin/python

# Services started by `make up`, by name from deploy/local/services.list (empty: all listed there).
SERVICES :=
# Extra arguments for pytest, e.g. make test PYTEST_ARGS='-m "not e2e" -x'
PYTEST_ARGS ?=
# Extra arguments for the demo, e.g. make demo DEMO_ARGS='--json --keep'
DEMO_ARGS ?=
# Inputs per parser and parallel processes for `make fuzz`.
FUZZ_EXAMPLES ?= 20000
FUZZ_JOBS ?= 2
# Component for `make logs C=kafka`.
C ?=
# 1: the local broker also listens with TLS + SASL (SCRAM, PLAIN) and mTLS (deploy/local/kafka_tls.sh);
# clients stay on PLAINTEXT unless they use <state>/env.tls.
KAFKA_TLS ?= $(CLOSELOOP_KAFKA_TLS)

export CLOSELOOP_SERVICES := $(SERVICES)
export CLOSELOOP_KAFKA_TLS := $(KAFKA_TLS)

.PHONY: help install infra up down status logs lint test test-unit test-tls fuzz demo bench clean lock

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(firstword $(MAKEFILE_LIST)) | sed 's/:.*## /\t/' | expand -t12

install: ## .venv (python3.11, pinned deps) and the system packages the stack needs
	@$(LOCAL)/install.sh

up: install ## start Kafka + PostgreSQL + the services, run migrations and topic creation
	@$(LOCAL)/stack.sh up

infra: install ## start only Kafka + PostgreSQL (migrations, topics): what the tests and the demo need
	@CLOSELOOP_SERVICES=none $(LOCAL)/stack.sh up

down: ## stop everything the stack started
	@$(LOCAL)/stack.sh down

status: ## one line per component; exit 0 only when all are healthy
	@$(LOCAL)/stack.sh status

logs: ## tail of every log (or one: make logs C=kafka)
	@$(LOCAL)/stack.sh logs $(C)

lint: install ## ruff check + mypy
	@$(LOCAL)/lint.sh

test: install lint infra ## lint, bring Kafka + PostgreSQL up, run pytest against them
	@$(LOCAL)/test.sh $(PYTEST_ARGS)

test-tls: install ## the whole suite once through Kafka's TLS + SCRAM listener, and tests/tls (mTLS, PLAIN)
	@$(LOCAL)/test_tls.sh $(PYTEST_ARGS)

test-unit: install ## the unit tests alone: no Kafka, no PostgreSQL, seconds
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

fuzz: install ## property-based fuzzing of every parser through its ingress (FUZZ_EXAMPLES inputs each)
	@$(PY) -m tests.fuzz.runner --examples $(FUZZ_EXAMPLES) --jobs $(FUZZ_JOBS)

demo: infra ## five stories through the real ingress; the demo runs the services with short windows
	@$(LOCAL)/services.sh stop
	@$(LOCAL)/stack.sh exec $(PY) -m closeloop_demo $(DEMO_ARGS)

bench: infra ## run the benchmarks against the local stack
	@$(LOCAL)/stack.sh exec $(PY) -m bench

clean: ## down, then delete the state folder
	@$(LOCAL)/stack.sh clean

lock: ## regenerate constraints.txt from a fresh venv (pip freeze)
	@$(LOCAL)/lock.sh
