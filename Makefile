# The project's commands (`make help`). Each target that needs tools first runs
# hack/bootstrap.sh with only the components it uses, which installs whatever
# of them is missing into $(ORDERPIPELINE_CACHE) and takes well under a second
# when nothing is: `make up` never waits for a Kubernetes build it does not run.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export ORDERPIPELINE_CACHE ?= $(HOME)/.cache/orderpipeline
export UV_CACHE_DIR := $(ORDERPIPELINE_CACHE)/uv-cache
export UV_PYTHON_DOWNLOADS := never
export PYTHONDONTWRITEBYTECODE := 1
PY := .venv/bin/python
PYTEST_ARGS ?=
QUICK ?=

# What each kind of target needs from hack/bootstrap.sh (its component names; a
# `$(BOOTSTRAP)` with none installs everything).
STACK_TOOLS := python kafka gocaves dashboard
CLUSTER_TOOLS := python kubernetes kwok helm
# `make test` bootstraps everything before pytest starts and says so to the make
# commands its tests run (`make lint-python`), which then skip bootstrap: nothing
# may re-sync the virtualenv that pytest is running from.
BOOTSTRAP = $(if $(ORDERPIPELINE_BOOTSTRAPPED),@:,@bash hack/bootstrap.sh)

.PHONY: help bootstrap doctor lint lint-python test test-unit test-chaos bench up down status logs \
        cluster-up cluster-down node-up node-down node-status images audit bench-chaos api-types

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

bootstrap: ## Install every pinned tool into the cache (idempotent)
	@bash hack/bootstrap.sh

doctor: ## One line per component: pinned and found version, path, OK or MISSING
	@if [ ! -x $(PY) ]; then echo "python environment MISSING: run make bootstrap"; exit 1; fi
	@$(PY) -m devinfra.doctor

lint: lint-python ## ruff, the import contracts (pyproject.toml), mypy, and the dashboard's eslint + tsc
	$(BOOTSTRAP) dashboard
	cd services/dashboard && npm run --silent lint

lint-python: ## ruff, import contracts and strict mypy only (run by `make test`, which checks the dashboard itself)
	$(BOOTSTRAP) python
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache
	.venv/bin/mypy
	.venv/bin/mypy bench tests

API_TYPES := services/dashboard/src/api/openapi.gen.ts

# The generator reads the document on stdin and writes the types on stdout; the test
# tests/dashboard/test_dashboard_api_types.py runs the same two commands and compares.
api-types: ## Regenerate the dashboard's API types from the backend's OpenAPI document
	$(BOOTSTRAP) python dashboard
	$(PY) -m orderpipeline.backend.openapi \
	  | (cd services/dashboard && npm run --silent api-types) > $(API_TYPES).tmp
	mv $(API_TYPES).tmp $(API_TYPES)

test: bootstrap ## Run every test against the real Kafka, gocaves, Kubernetes and Chromium
	ORDERPIPELINE_BOOTSTRAPPED=1 .venv/bin/pytest $(PYTEST_ARGS)

test-unit: ## Only the tests that need no infrastructure (tests/conftest.py marks them `unit`)
	$(BOOTSTRAP) python dashboard
	ORDERPIPELINE_BOOTSTRAPPED=1 .venv/bin/pytest -m unit $(PYTEST_ARGS)

test-chaos: ## Only the fault-injection scenarios
	$(BOOTSTRAP) $(STACK_TOOLS) $(CLUSTER_TOOLS) chromium
	ORDERPIPELINE_BOOTSTRAPPED=1 .venv/bin/pytest -m chaos $(PYTEST_ARGS)

bench: ## Benchmarks -> bench/results/latest.json (QUICK=1 short; ONLY=bench.node one module)
	$(BOOTSTRAP)
	$(PY) -m bench.run $(if $(QUICK),--quick,) $(if $(ONLY),--only $(ONLY),)

bench-chaos: ## Full-size fault scenarios (20,000 orders) -> docs/reliability.md (QUICK=1 short)
	$(BOOTSTRAP) python kafka gocaves
	$(PY) -m bench.chaos $(if $(QUICK),--quick,)

up: ## Run the whole pipeline locally; prints the dashboard URL
	$(BOOTSTRAP) $(STACK_TOOLS)
	@$(PY) -m devinfra.stack up

down: ## Stop everything `make up` started
	@$(PY) -m devinfra.stack down

status: ## Each process of the local stack and its health
	@$(PY) -m devinfra.stack status

logs: ## Follow the local stack's logs
	@$(PY) -m devinfra.stack logs

cluster-up: ## Local Kubernetes control plane + CRD + operator (.run/cluster/kubeconfig)
	$(BOOTSTRAP) $(CLUSTER_TOOLS)
	@$(PY) -m devinfra.cluster up

cluster-down: ## Stop the local Kubernetes control plane
	@$(PY) -m devinfra.cluster down

node-up: ## A real one-node Kubernetes (kubelet, containerd, Traefik) with our images; needs root
	$(BOOTSTRAP)
	@$(PY) -m devinfra.node up

node-down: ## Stop the real node and remove everything it put on the host
	@$(PY) -m devinfra.node down

node-status: ## Whether the real node runs, and anything it left on the host
	@$(PY) -m devinfra.node status; $(PY) -m devinfra.node leftovers

images: ## Build the three container images with buildah (no Docker engine needed)
	$(BOOTSTRAP)
	@bash hack/images.sh

audit: ## pip-audit (uv.lock) + npm audit; fails when an advisory service is unreachable
	$(BOOTSTRAP) python
	$(PY) tests/security/dependency_audit.py
