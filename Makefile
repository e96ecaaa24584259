# Every target sets up .venv itself (idempotent: reinstalls only when pyproject.toml changes).
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)

.PHONY: run reproduce server test lint format bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,server,ray]'
	touch $(STAMP)

run: $(STAMP)
	mlflow run . -e pretrain --env-manager local --experiment-name ecg-pretrain

# the whole study (pretrain, individual and finetune for all 29, report); resumes when re-run
reproduce: $(STAMP)
	mlflow run . -e reproduce --env-manager local --experiment-name ecg-reproduce

# a team tracking server: PostgreSQL + mlflow server in ./tracking-server (Ctrl-C stops it)
server: $(STAMP)
	ecg-platform server

test: $(STAMP)
	ruff check .
	ruff format --check .
	python -m pytest -q

format: $(STAMP)
	ruff check --fix .
	ruff format .

bench: $(STAMP)
	for script in benchmarks/*.py; do python "$$script" || exit 1; done
