# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LAB_DIR ?= .wlbplan-lab

.PHONY: demo test quick lint typecheck unit system-packages install clean

$(BIN)/.installed: pyproject.toml
	@PYTHON=$(PYTHON) sh scripts/ensure-system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $@

install: $(BIN)/.installed

system-packages:
	@PYTHON=$(PYTHON) sh scripts/ensure-system-packages.sh

demo: install system-packages
	@sh scripts/demo.sh "$(BIN)/wlbplan" "$(LAB_DIR)"

test: install system-packages lint typecheck unit

lint: install
	$(BIN)/ruff check wlbplan tests benchmarks

typecheck: install
	$(BIN)/mypy

# The pure core and the renderers, no lab: about a minute, for the edit-test loop.
QUICK := tests/architecture tests/core tests/certs tests/model tests/render tests/spec
quick: install lint typecheck
	$(BIN)/pytest -q -n auto $(QUICK)

# Lab tests wait on subprocesses and handshakes: one worker per core roughly halves the
# run. loadscope keeps a module's tests (and its module-scoped lab) on one worker.
unit: install
	$(BIN)/pytest -q -n auto --dist loadscope

clean:
	-$(BIN)/wlbplan lab down --dir $(LAB_DIR) --purge
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
