# kyso — `make run` starts a demo PKI and server; `make test` runs every test. Both set up
# everything they need on a fresh machine (Debian packages, virtual environment).
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.kyso-installed

.PHONY: install run test lint bench load clean help

help:
	@echo "make run    set up and start kyso with a demo PKI on http://127.0.0.1:8000"
	@echo "make test   run the whole test suite (SQLite and PostgreSQL, openssl, pkilint)"
	@echo "make lint   run the code gates: ruff, mypy and the import contracts (lint-imports), as make test does"
	@echo "make bench  measure issuance, OCSP, CRL, keystore, signing and verification figures against the raw libraries (writes docs/benchmarks.md)"
	@echo "make load   load-test kyso serve --workers 2 on PostgreSQL with 200 clients for 60 s (writes docs/benchmarks-load.md; LOAD_ARGS='--clients N --duration S --workers W')"

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	./scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/kyso demo

test: install
	$(BIN)/pytest -q -n auto --dist loadscope

lint: install
	@status=0; \
	$(BIN)/ruff check || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/lint-imports || status=1; \
	exit $$status

bench: install
	$(BIN)/python -m bench.run

load: install
	$(BIN)/python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
