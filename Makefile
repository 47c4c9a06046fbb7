# One task runner for people and CI. `make quickstart` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ML_STAMP := $(VENV)/.installed-ml
PYTEST_ARGS ?=
# Tests run with bytecode writing on, as on contributors' machines, whatever the shell sets:
# stale-.pyc bugs in tests that rewrite modules must show up everywhere or nowhere.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest

.PHONY: install quickstart test test-fast check lint format sqlite-statements bench bench-scale bench-server bench-peers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The ML libraries the integration tests use (torch, tensorflow, spark, ...): only `make test`.
$(ML_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,ml]"
	touch $(ML_STAMP)

# Runs the example twice: the first run trains, the second is served from the cache.
quickstart: $(STAMP)
	cd examples/quickstart && ../../$(BIN)/gristmill run pipeline:training
	cd examples/quickstart && ../../$(BIN)/gristmill run pipeline:training

test: $(ML_STAMP)
	scripts/install-test-services.sh
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PYTEST) -m "not integration and not slow" $(PYTEST_ARGS)

check: $(ML_STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

# Benchmarks run as users' processes do: with bytecode caching, whatever the shell sets; the
# library sections (torch, Spark, Dask, Ray) need the ml extra.
# The SQL a run executes on SQLite, compiled ahead of time (src/gristmill/store/sql/prepared.py).
sqlite-statements: $(STAMP)
	PATH=$(BIN):$$PATH $(BIN)/python -c 'from gristmill.store.sql.prepared import write_sqlite_statements as w; w()'

bench: $(ML_STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python benchmarks/run.py

bench-peers: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python benchmarks/compare.py

bench-scale: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python benchmarks/scale.py
	$(MAKE) bench-server

# API latency through a real server over a 100k-run store (needs the server extra, in dev).
bench-server: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python benchmarks/server.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache examples/quickstart/.gristmill
