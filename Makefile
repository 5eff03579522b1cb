# neurogrs: the two commands are `make demo` and `make test`; both set everything up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.neurogrs-installed
DEMO   ?= demo-out
PYTEST_ARGS ?=

.PHONY: all install demo test test-fast bench clean help

help:
	@echo "make demo   - set up .venv, simulate a 273-neuron session, train nn1, export an artifact + C library"
	@echo "make test   - set up .venv and run the whole test suite (slow-marked tests included)"
	@echo "make bench  - inference, service and pruning benchmarks (side by side, ratios)"
	@echo "make clean  - remove .venv and outputs"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77"  # the build requirement, for --no-build-isolation builds
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m neurogrs.demo --out $(DEMO)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m neurogrs.demo --out $(DEMO) --no-codegen --quiet
	$(BIN)/neurogrs bench inference $(DEMO)/nn1
	$(BIN)/neurogrs bench service $(DEMO)/nn1 --engine c
	$(BIN)/neurogrs bench pruning

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
