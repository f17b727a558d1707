# Firedrill — run `make help` for the targets. Everything installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
export FIREDRILL_STATE_DIR ?= $(CURDIR)/.firedrill

.PHONY: help setup demo test lint validate up down status logs incidents-ui simulate-outage simulate simulate-all bench proto jobs \
	    image deploy deploy-canary nomad-status dev-cluster vault-bootstrap rotate-jwt-key clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: ## install what is missing (Debian packages, virtualenv)
	@bash scripts/setup.sh

demo: setup ## start the local platform, send traffic, run the outage drill, print report and URLs
	@$(PY) -m scripts.demo

test: setup ## install what is missing and run the whole suite (lint, validation, unit, integration)
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory validate
	@$(PY) -m pytest -m "not infra"

lint: setup ## ruff, mypy, shellcheck, secret scan
	@echo "[lint] ruff" && $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check -q .
	@echo "[lint] mypy" && $(VENV)/bin/mypy services scripts bench tests
	@echo "[lint] shellcheck" && shellcheck $$(git ls-files '*.sh' .ci/run)
	@if [ -x scripts/vault/scan_secrets.sh ]; then echo "[lint] secrets" && bash scripts/vault/scan_secrets.sh; fi

validate: setup ## promtool, amtool, HCL, terraform, checkov checks (static)
	@$(PY) -m scripts.monitoring check
	@$(PY) -m pytest -q -m infra --no-header -p no:cacheprovider

up: setup ## start the local platform (idempotent)
	@$(PY) -m scripts.local up

down: ## stop the local platform
	@if [ -x $(PY) ]; then $(PY) -m scripts.local down; else echo "nothing to stop"; fi

status: setup ## processes, health and scrape state
	@$(PY) -m scripts.local status

logs: setup ## last log lines of one program: make logs UNIT=response
	@$(PY) -m scripts.local logs $(UNIT)

incidents-ui: setup ## the incidents in a browser: a read-only view on 127.0.0.1 (operator certificate); Ctrl-C stops it
	@$(PY) -m scripts.incidents_cli ui

simulate-outage: setup ## stop response, measure alert/incident/recovery, restore, report
	@$(PY) -m scripts.drills outage

simulate: setup ## run a named drill: make simulate SCENARIO=latency (DRY_RUN=1: only say what it would do)
	@test -n "$(SCENARIO)" || { echo "usage: make simulate SCENARIO=<drill>; drills: $$($(PY) -c 'from scripts.drills.catalogue import names; print(*names())')"; exit 2; }
	@$(PY) -m scripts.drills $(SCENARIO) $(if $(DRY_RUN),--dry-run)

simulate-all: setup ## every drill in turn, a scorecard and one HTML report; fails if any drill does
	@$(PY) -m scripts.drills all $(if $(DRY_RUN),--dry-run)

bench: setup ## benchmarks (instrumented vs bare, drills, movie, movie under a flood, mTLS); results in BENCHMARKS.md
	@$(PY) -m bench.run

proto: setup ## regenerate gRPC code from services/proto
	@$(PY) -m scripts.gen_proto

jobs: setup ## regenerate jobs/*.nomad.hcl from the catalog and the monitoring files
	@$(PY) -m scripts.monitoring render >/dev/null
	@$(PY) -m scripts.cluster.jobgen render

image: ## build the services container image (needs a Docker engine)
	@bash scripts/cluster/build-image.sh

deploy-canary: setup ## deploy VERSION of SERVICE step by step, analysed (STRATEGY=canary|rolling|blue-green, DRY_RUN=1: the plan only)
	@test -n "$(SERVICE)" -a -n "$(VERSION)" || { echo "usage: make deploy-canary SERVICE=<service> VERSION=<version> [STRATEGY=canary|rolling|blue-green] [DRY_RUN=1]"; exit 2; }
	@$(PY) -m scripts.canary --service "$(SERVICE)" --version "$(VERSION)" --strategy "$(or $(STRATEGY),canary)" $(if $(DRY_RUN),--dry-run)

deploy: setup ## register every job on the Nomad cluster at NOMAD_ADDR and follow the deployments
	@$(PY) -m scripts.cluster.deploy

nomad-status: setup ## jobs, allocations and deployments on the cluster
	@$(PY) -m scripts.cluster.status

dev-cluster: setup ## nomad+consul+vault dev agents on this machine (when installed), then deploy
	@bash scripts/cluster/dev-cluster.sh

vault-bootstrap: setup ## configure Vault/OpenBao at VAULT_ADDR (idempotent)
	@$(PY) -m scripts.vault.bootstrap

rotate-jwt-key: setup ## new active JWT signing key; previous keys keep validating until tokens expire
	@$(PY) -m scripts.vault.rotate_jwt_key

clean: down ## stop and delete local state
	rm -rf .firedrill .firedrill-test
