# The README's two commands: `make serve` and `make test`. Each sets itself up first.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: install install-browser serve test test-fast lint format

install:
	scripts/install.sh $(VENV)

# Debian's chromium + Playwright for the dashboard's browser test (needs root or sudo for apt-get).
# FNO_SKIP_BROWSER=1 skips it; the browser tests then skip with a reason.
install-browser: install
	@if [ "$${FNO_SKIP_BROWSER:-0}" = 1 ]; then echo "browser install skipped (FNO_SKIP_BROWSER=1)"; \
	else scripts/install-browser.sh $(VENV); fi

serve: install
	$(VENV)/bin/fno-forecast serve --port $(PORT)

test: install install-browser lint
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
