# Two commands for a newcomer: `make demo` (set up, start the embedded server, walk through it)
# and `make test` (install everything the tests need, then run them all).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv ansible-venv system-packages demo test test-package test-collection lint bench clean

help:
	@echo "make demo    - set up and walk through Rainer on the embedded SQLite database"
	@echo "make test    - install what the tests need and run them all (as CI does)"
	@echo "make bench   - print the benchmark tables (see docs/benchmarks.md)"
	@echo "make lint    - ruff, mypy and yamllint only"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11+ or set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)

ansible-venv:
	bash scripts/collection-venv.sh

system-packages:
	bash scripts/install-system-packages.sh

demo: $(STAMP) ansible-venv
	bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests/package tests/harness bench
	$(BIN)/ruff format --check src tests/package tests/harness bench
	$(BIN)/mypy
	$(BIN)/yamllint --strict .

test-package: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider

test-collection: $(STAMP)
	bash scripts/collection-test.sh
	# the oldest ansible-core the collection claims (meta/runtime.yml): sanity (its ansible-test
	# knows the oldest Pythons tests/config.yml declares for the modules), units and integration
	RAINER_ANSIBLE_VENV=$(CURDIR)/.venv-ansible-2.16 RAINER_ANSIBLE_MINIMAL=1 \
	RAINER_ANSIBLE_CORE='ansible-core==2.16.*' RAINER_TEST_STEPS='build sanity units integration' \
	bash scripts/collection-test.sh

test: system-packages lint test-package test-collection

bench: system-packages $(STAMP) ansible-venv
	$(BIN)/python bench/http_bench.py
	$(BIN)/python bench/hostile_bench.py
	$(BIN)/python bench/zk_bench.py
	$(BIN)/python bench/security_bench.py
	$(BIN)/python bench/watch_bench.py
	$(BIN)/python bench/console_bench.py
	$(BIN)/python bench/client_bench.py
	$(BIN)/python bench/cli_bench.py
	bash scripts/collection-bench.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
