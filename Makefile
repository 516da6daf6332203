# The entry points people type. `make run` and `make test` work on a fresh machine that has
# Python 3.11 and can reach the package registries; they install and start what is missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help
SERVICES := payments otp notify media geo wallet analytics
PY := .venv/bin/python
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export PYTHONUNBUFFERED := 1
# Generated PostgreSQL passwords (rtmn_admin's, every service role's), read by asyncpg and psql.
export PGPASSFILE ?= $(CURDIR)/.run/pgpass

.PHONY: help install infra db keys run observe test test-cluster lint fmt bench demo docs images k8s clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --target .tools/lib uv
	mkdir -p .tools/bin && ln -sf ../lib/bin/uv .tools/bin/uv

install: $(UV)  ## install every package from uv.lock into .venv
	$(UV) sync --all-packages --frozen --quiet

infra: install  ## make sure PostgreSQL (+PostGIS), Redis and RabbitMQ answer, with an admin role
	bash scripts/ensure-infra.sh
	.venv/bin/rtmn-db admin

keys: .run/env  ## development JWT keys and the environment `make run` uses

.run/env: scripts/dev-env.sh $(wildcard .env) | install
	bash scripts/dev-env.sh

db: install infra .run/env  ## create the database, roles and schemas, then migrate every service
	set -a && source .run/env && set +a && .venv/bin/rtmn-db init
	set -a && source .run/env && set +a && for s in $(SERVICES); do $(PY) -m $$s migrate || exit 1; done

run: db  ## start every service, relay and consumer (and the gateway on :8080); Ctrl-C stops all
	bash scripts/gateway.sh check
	.venv/bin/honcho start -f Procfile -e .run/env

observe: install  ## Prometheus on :9090 scraping the suite `make run` started (in another terminal), with the alerts
	bash scripts/observe.sh

test: install infra  ## run every test on the real PostgreSQL, Redis and RabbitMQ
	.venv/bin/pytest -q

test-cluster: install infra  ## the cluster faults: 3 RabbitMQ nodes of their own, every worker twice
	@bash scripts/gateway.sh check  # two API processes per service behind nginx
	.venv/bin/pytest -q -p no:randomly tests/cluster

lint: install  ## ruff and mypy --strict, clean
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy shared/rtmn_shared tests/fakes/rtmn_fakes $(foreach s,$(SERVICES),services/$(s)/$(s))

fmt: install  ## format and fix what ruff can
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: install infra  ## run every benchmark; each prints a table and a JSON line
	@bash scripts/gateway.sh check  # bench/load.py runs the suite behind nginx
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

demo: install  ## tell the payment story against the suite `make run` started (in another terminal)
	$(PY) scripts/demo.py

images:  ## build every service's container image (needs a Docker engine)
	@for s in $(SERVICES); do docker build -f deploy/Dockerfile --build-arg SERVICE=$$s -t rtmn/$$s:$${RTMN_TAG:-dev} . || exit 1; done

k8s: install  ## regenerate deploy/k8s/base after editing deploy/k8s/generate.py or deploy/gateway/
	$(PY) deploy/k8s/generate.py

docs: db  ## AsyncAPI of every event and each service's OpenAPI, under docs/
	set -a && source .run/env && set +a && $(PY) scripts/docs.py

clean:  ## remove the virtualenv, caches and local run state
	rm -rf .venv .tools .run .pytest_cache .mypy_cache .ruff_cache
