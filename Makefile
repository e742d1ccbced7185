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

.PHONY: run test quick apps clean system-deps

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip $(PIP_QUIET)

# Stamps: redone when pyproject.toml (the single source of dependencies) changes.
$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e . $(PIP_QUIET)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[test,apps]" $(PIP_QUIET)
	touch $@ $(VENV)/.installed-run

# System packages the tests use: Debian's Chromium for the browser tests (Playwright's own browser
# download does not work offline) and PostgreSQL for the many-worker tuning tests.
system-deps:
	@missing=""; [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "installing$$missing (apt)"; $$sudo apt-get update -qq && $$sudo apt-get install -y -qq $$missing >/dev/null; fi

run: $(VENV)/.installed-run
	$(VENV)/bin/battlab run

quick: $(VENV)/.installed-run
	$(VENV)/bin/battlab run --quick

test: $(VENV)/.installed-test system-deps
	$(PY) -m pytest tests
	$(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks

apps: $(VENV)/.installed-test
	$(VENV)/bin/battlab app --port 8866

clean:
	rm -rf $(VENV) runs .pytest_cache
