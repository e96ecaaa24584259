# Every target sets up .venv itself (idempotent: reinstalls only when pyproject.toml changes).
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)

.PHONY: run test lint format bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	ecg-platform data summary

test: $(STAMP)
	ruff check .
	ruff format --check .
	python -m pytest -q

format: $(STAMP)
	ruff check --fix .
	ruff format .

bench: $(STAMP)
	for script in benchmarks/*.py; do python "$$script" || exit 1; done
