# Every target creates .venv on first use. torch==2.13.0 is installed first (a local CPU
# build on the project machines), so nothing lets pip pick a newer CUDA torch.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= c2s-quickstart

.PHONY: install quickstart test lint format bench bench-ref clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/c2s quickstart --out $(OUT) --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The reference package lives in its own environment so the two never share imports.
.venv-ref/.installed:
	$(PY) -m venv .venv-ref
	.venv-ref/bin/pip install torch==2.13.0
	.venv-ref/bin/pip install -r benchmarks/requirements-ref.txt
	touch .venv-ref/.installed

bench-ref: .venv-ref/.installed

bench: $(STAMP) .venv-ref/.installed
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) .venv-ref build dist .pytest_cache .ruff_cache
