# neurogrs: the two commands are `make demo` and `make test`; both set everything up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.neurogrs-installed
DEMO   ?= demo-out
PYTEST_ARGS ?=

.PHONY: all install demo test test-fast bench clean help

help:
	@echo "make demo   - set up .venv, then the whole product on a simulated 273-neuron session:"
	@echo "              train nn1/nn2/cnn1/cnn2, prune + TQ, select, C library, serve, replay, listen,"
	@echo "              a final table and $(DEMO)/report.html"
	@echo "make test   - set up .venv and run the whole test suite (slow-marked tests included)"
	@echo "make test-fast - the same without the tests marked slow"
	@echo "make bench  - inference, service, pruning (+ the quick pruning suite, 20-45 min) and cross-session benchmarks (side by side, ratios)"
	@echo "make clean  - remove .venv and outputs"
	@echo "make docs   - regenerate docs/cli.md from the parser"

# set-up output (pip's and setuptools' notices) goes to $(VENV)/install.log, shown on failure
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "installing neurogrs and its dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --upgrade pip "setuptools>=77" > $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }  # setuptools: the build requirement, for --no-build-isolation builds
	@$(BIN)/python -m pip install -e '.[dev]' >> $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/neurogrs demo --out $(DEMO)

test: $(STAMP)
	@$(BIN)/python -m pip install -e '.[ray,nwb]' >> $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }  # the sweep's Ray test, the NWB tests (else they skip)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	@$(BIN)/python -m pip install -e '.[nwb]' >> $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }  # the NWB tests (else they skip)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/neurogrs simulate $(DEMO)/bench-session.npz --neurons 273 --seed 0
	$(BIN)/neurogrs train $(DEMO)/bench-session.npz --model nn1 --out $(DEMO)/bench-nn1 --quiet
	$(BIN)/neurogrs bench inference $(DEMO)/bench-nn1
	$(BIN)/neurogrs bench service $(DEMO)/bench-nn1 --engine c
	$(BIN)/neurogrs bench pruning
	$(BIN)/neurogrs bench pruning --suite --out $(DEMO)/bench-prune-suite
	$(BIN)/neurogrs bench crosssession --out $(DEMO)/bench-crosssession

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info

# docs/cli.md is generated from the parser (tests/test_cli_reference.py fails when stale)
.PHONY: docs
docs: $(STAMP)
	$(BIN)/python -m neurogrs.cli_reference > docs/cli.md
