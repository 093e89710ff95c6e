# The README's two commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test check lint types unit bench quality system-deps clean

# (Re)create the virtualenv when it is missing or older than the project's dependencies.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/molehunt demo

serve: $(STAMP)
	$(BIN)/molehunt demo --serve

# Debian packages the tests use (real PostgreSQL + pgAudit, real Squid).
system-deps:
	@scripts/system-deps

test: $(STAMP) system-deps check unit

check: lint types

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# Two pytest-xdist workers, each taking whole test files (module fixtures are built once),
# the slowest files first (tests/conftest.py); `make unit WORKERS=0` runs in one process.
WORKERS ?= 2
unit: $(STAMP)
	$(BIN)/pytest $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile --no-loadscope-reorder)

bench: $(STAMP)
	$(BIN)/python -m bench

# Detection quality over randomised worlds (tuning, held-out and demo seeds); never in `make test`.
quality: $(STAMP)
	$(BIN)/python -m molehunt.quality --out quality-report.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .quality
