# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SERVICES ?= postgres redis mosquitto

.PHONY: demo test lint typecheck venv install install-dev services browser clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/sgw demo

services:
	scripts/services.sh $(SERVICES)

# Debian's Chromium and ChromeDriver (the dashboard's headless browser test) and promtool (alert rules).
browser:
	scripts/browser.sh
	scripts/promtool.sh

lint: install-dev
	$(BIN)/ruff check connectors adapters mapping gateway monitoring tests bench

typecheck: install-dev
	$(BIN)/mypy

test: install-dev services browser lint typecheck
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/mapping.py

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .mypy_cache .ruff_cache
