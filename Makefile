# skillbank: everything a fresh machine needs is installed from here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast regen-schemas check-schemas bench demo lint clean

# torch==2.13.0 goes in first and alone: it is the CPU build on this disk; any
# looser requirement would pull a multi-GB CUDA build (docs/packaging.md).
# editable_mode=compat: the checkout goes on sys.path through a plain .pth file, no
# import-hook finder that every Python process of the venv would load (docs/packaging.md).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]" --config-settings editable_mode=compat
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
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo-output
