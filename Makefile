# The README's two commands: `make serve` and `make test`. Each sets itself up first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install serve test test-fast lint format

install:
	scripts/install.sh $(VENV)

serve: install
	$(VENV)/bin/fno-forecast serve

test: install lint
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
