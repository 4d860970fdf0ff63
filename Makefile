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
# Component for `make logs C=kafka`.
C ?=

export CLOSELOOP_SERVICES := $(SERVICES)

.PHONY: help install up down status logs lint test demo bench clean lock

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(firstword $(MAKEFILE_LIST)) | sed 's/:.*## /\t/' | expand -t12

install: ## .venv (python3.11, pinned deps) and the system packages the stack needs
	@$(LOCAL)/install.sh

up: install ## start Kafka + PostgreSQL (+ services), run migrations and topic creation
	@$(LOCAL)/stack.sh up

down: ## stop everything the stack started
	@$(LOCAL)/stack.sh down

status: ## one line per component; exit 0 only when all are healthy
	@$(LOCAL)/stack.sh status

logs: ## tail of every log (or one: make logs C=kafka)
	@$(LOCAL)/stack.sh logs $(C)

lint: install ## ruff check + mypy
	@$(LOCAL)/lint.sh

test: install lint up ## lint, bring the stack up, run pytest against it
	@$(LOCAL)/test.sh $(PYTEST_ARGS)

demo: up ## run the demo against the local stack
	@if [[ -d services/closeloop_demo ]]; then \
		$(LOCAL)/stack.sh exec $(PY) -m closeloop_demo; \
	else \
		echo "demo: services/closeloop_demo does not exist yet; the stack is up (make status)"; \
	fi

bench: up ## run the benchmarks against the local stack
	@if [[ -f bench/__main__.py ]]; then \
		$(LOCAL)/stack.sh exec $(PY) -m bench; \
	else \
		echo "bench: bench/__main__.py does not exist yet; the stack is up (make status)"; \
	fi

clean: ## down, then delete the state folder
	@$(LOCAL)/stack.sh clean

lock: ## regenerate constraints.txt from a fresh venv (pip freeze)
	@$(LOCAL)/lock.sh
