# hookyard: `make run` starts everything on embedded defaults, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench lock clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# requirements.lock: what the image installs (runtime only); requirements-dev.lock: that plus the
# extras (embedded Redis, tracing) and the tools. Both pinned with hashes; `make lock` rewrites both.
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet --custom-compile-command 'make lock'

$(STAMP): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "hookyard needs Python 3.11+"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	# Python 3.11's venv ships setuptools 65, which cannot build an editable wheel without `wheel`.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'setuptools>=70.1'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP) ## set up and start API + worker + private Redis on SQLite
	$(BIN)/hookyard dev

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest ## lint, type-check and run the whole suite (real Redis, SQLite, PostgreSQL if configured)

bench: $(STAMP) ## measure against ../shared/bench's reference peers (not part of test)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lock: ## re-pin both lock files from pyproject.toml (after adding or bumping a dependency)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.lock

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
