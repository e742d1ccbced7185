# The two commands of README.md. Each installs what it needs into .venv first.
#   make run   - the whole papermill pipeline on the embedded default data -> runs/latest/
#   make test  - the full test suite (unit tests, notebooks, CLI)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_QUIET := 2>&1 | { grep -v -e "is ignored: it is neither" -e "^\s*$$" || true; }

export PYBAMM_DISABLE_TELEMETRY := true
export MPLBACKEND := Agg

.PHONY: run test quick clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip $(PIP_QUIET)

# Stamps: redone when pyproject.toml (the single source of dependencies) changes.
$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e . $(PIP_QUIET)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[test]" $(PIP_QUIET)
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(VENV)/bin/battlab run

quick: $(VENV)/.installed-run
	$(VENV)/bin/battlab run --quick

test: $(VENV)/.installed-test
	$(PY) -m pytest tests
	$(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache
