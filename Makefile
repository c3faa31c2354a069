# Two commands on a fresh machine (Python 3.11 + make): `make demo`, then `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
FLOW ?= flows/webinar-ladder.yaml

.PHONY: demo test lint bench clean

$(BIN)/ladder: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/ladder
	$(BIN)/ladder chat $(FLOW)

test: $(BIN)/ladder
	$(BIN)/pytest -q

lint: $(BIN)/ladder
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(VENV)/.bench: $(BIN)/ladder
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
