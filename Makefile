# Developer entry points. `make dev` runs the four services locally; `make test` and
# `make lint` are what CI (.ci/run) runs. Every target installs the project into .venv first
# (once, and again whenever pyproject.toml changes).
#
#   make dev                          # all four services; Ctrl-C stops them
#   make dev SERVICES=orders,consent  # a subset
#   make test PYTEST_ARGS='-k consent -x'

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PIP_FLAGS := --quiet --disable-pip-version-check
PYTEST_ARGS ?=
SERVICES ?=

.PHONY: install dev test lint asyncapi security-doc bench bench-scale bench-audience-memory clean

# Creates .venv only if it is missing; an existing one is reused as it is.
$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $@

install: $(INSTALLED)

dev: $(INSTALLED)
	$(BIN)/python -m tools.dev $(if $(SERVICES),--services $(SERVICES))

test: $(INSTALLED)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The permission table in docs/security.md, from shared/permissions.py; the prose around it stays.
security-doc: $(INSTALLED)
	$(BIN)/python -m tools.security_doc

# End-to-end speed against a plain aio-pika baseline in the same run: make bench BENCH_ARGS="--orders 5000 --json bench.json"
# FastStream's own CPU per message against aio-pika: make bench BENCH_ARGS=--framework
BENCH_ARGS ?=
bench: $(INSTALLED)
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

# `make bench --scale` is not something make accepts: `make bench BENCH_ARGS=--scale`, or these.
# Start time, memory and per-order cost of each service at 10k, 100k and 1M people on the embedded
# SQLite store (no MongoDB needed; the 1M fill takes minutes): BENCH_ARGS="--people 1000,5000"
bench-scale: $(INSTALLED)
	$(BIN)/python -m tools.bench --scale $(BENCH_ARGS)

# Peak memory of `rekisteri marketing audience` at 10k and 100k people: BENCH_ARGS="--json m.json"
bench-audience-memory: $(INSTALLED)
	$(BIN)/python -m tools.bench --audience-memory $(BENCH_ARGS)

# A throw-away CA and a server certificate in deploy/tls/, FOR TRIALS ONLY (deploy/tls/README.md):
# make tls-trial-certs TLS_HOSTNAMES="localhost broker.example"
TLS_HOSTNAMES ?= localhost
.PHONY: tls-trial-certs
tls-trial-certs: $(INSTALLED)
	$(BIN)/rekisteri tls trial-certificates --out deploy/tls \
		$(foreach name,$(TLS_HOSTNAMES),--hostname $(name)) $(TLS_ARGS)

# Written to a temporary file first so that a failure leaves the committed document intact.
asyncapi: $(INSTALLED)
	$(BIN)/python -m tools.asyncapi > docs/asyncapi.yaml.tmp \
		|| { rm -f docs/asyncapi.yaml.tmp; exit 1; }
	@mv docs/asyncapi.yaml.tmp docs/asyncapi.yaml

# The embedded store's data and every cache; .venv stays.
clean:
	rm -rf .data .pytest_cache .ruff_cache .mypy_cache .hypothesis build dist *.egg-info \
		docs/asyncapi.yaml.tmp
	find . \( -path ./.venv -o -path ./.git \) -prune -o -type d -name __pycache__ \
		-exec rm -rf {} +
