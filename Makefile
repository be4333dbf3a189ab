# skillbank: everything a fresh machine needs is installed from here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast regen-schemas check-schemas bench demo lint clean

# torch==2.13.0 goes in first and alone: it is the CPU build on this disk; any
# looser requirement would pull a multi-GB CUDA build (see DEVELOPERS.md).
$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

regen-schemas: $(STAMP)
	$(BIN)/python -m skillbank.generator.regen

check-schemas: $(STAMP)
	$(BIN)/python -m skillbank.generator.regen --check

lint: $(STAMP)
	$(BIN)/ruff check skillbank generator runtime tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

demo: $(STAMP)
	$(BIN)/python -m skillbank.demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo-output
