# The project's commands. Every target that needs a tool calls `bootstrap`
# first, which installs what is missing into $(ORDERPIPELINE_CACHE).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export ORDERPIPELINE_CACHE ?= $(HOME)/.cache/orderpipeline
export UV_CACHE_DIR := $(ORDERPIPELINE_CACHE)/uv-cache
export UV_PYTHON_DOWNLOADS := never
PY := .venv/bin/python
UV = $(ORDERPIPELINE_CACHE)/uv-$(shell sed -n 's/^UV_VERSION=//p' hack/versions.env)/bin/uv
PYTEST_ARGS ?=

.PHONY: help bootstrap doctor lint test test-chaos bench up down status logs cluster-up cluster-down images

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

bootstrap: ## Install every tool into the cache (idempotent; cold: tens of minutes)
	@bash hack/bootstrap.sh

doctor: ## One line per component: pinned and found version, path, OK or MISSING
	@$(PY) -m devinfra.doctor

lint: bootstrap ## ruff and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: bootstrap ## Run every test (real Kafka, gocaves, Kubernetes, Chromium)
	.venv/bin/pytest $(PYTEST_ARGS)

test-chaos: bootstrap ## Fault-injection scenarios only
	.venv/bin/pytest -m chaos $(PYTEST_ARGS)

cluster-up: bootstrap ## Start the local Kubernetes control plane (.run/cluster/kubeconfig)
	@$(PY) -m devinfra.cluster up

cluster-down: ## Stop the local Kubernetes control plane
	@$(PY) -m devinfra.cluster down
