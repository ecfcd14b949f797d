# kyso — `make run` starts a demo PKI and server; `make test` runs every test. Both set up
# everything they need on a fresh machine (Debian packages, virtual environment): `make run` only what
# running needs, `make test` adds the test tools (pytest, Playwright + Chromium, OpenBao, atheris, linters).
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
STAMP       = $(VENV)/.kyso-installed
TEST_STAMP  = $(VENV)/.kyso-test-installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install install-test run test lint bench load clean help

help:
	@echo "make run    set up and start kyso with a demo PKI on http://$(HOST):$(PORT) (make run PORT=8001 for another port)"
	@echo "make test   run the whole test suite (SQLite and PostgreSQL, openssl, pkilint); installs the test tools first"
	@echo "make install-test   install the test tools only (pytest, Playwright + Chromium, OpenBao, linters)"
	@echo "make lint   run the code gates: ruff, mypy and the import contracts (lint-imports), as make test does"
	@echo "make bench  measure issuance, OCSP, CRL, keystore, signing and verification figures against the raw libraries (writes docs/benchmarks.md)"
	@echo "make load   load-test kyso serve --workers 2 on PostgreSQL with 200 clients for 60 s (writes docs/benchmarks-load.md; LOAD_ARGS='--clients N --duration S --workers W'; '--nodes 2': two nodes on a PostgreSQL primary + streaming replica, CPU-ms per signature and verification)"

# what running needs: the runtime Debian packages and kyso without its test extras
$(STAMP): pyproject.toml scripts/install-system-deps.sh
	./scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(STAMP)

# and what testing needs: the test Debian packages and the [test] extras
$(TEST_STAMP): $(STAMP)
	./scripts/install-system-deps.sh --test
	$(BIN)/pip install -q -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

run: install
	$(BIN)/kyso demo --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/pytest -q -n auto --dist loadscope

lint: install-test
	@status=0; \
	$(BIN)/ruff check || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/lint-imports || status=1; \
	exit $$status

bench: install-test
	$(BIN)/python -m bench.run

load: install-test
	$(BIN)/python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
