# The two commands of the README: `make demo` (quick start) and `make test` (the whole suite, real Kafka included).
# Both set up what they need first: a virtualenv with the project installed, and (on first use) the Kafka jars;
# `make test` also Debian's Chromium for the console's browser tests (tools/browser_setup.sh: quick when it is there).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup browser demo test lint protos clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

browser:
	@sh tools/browser_setup.sh

demo: setup
	$(BIN)/apihub up

test: setup browser
	$(BIN)/ruff check services synthetic tests benchmarks tools
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check services synthetic tests benchmarks tools
	$(BIN)/ruff format --check services synthetic tests benchmarks tools
	$(BIN)/lint-imports

protos: setup
	$(BIN)/apihub dev protos

clean:
	rm -rf $(VENV) .apihub .pytest_cache
