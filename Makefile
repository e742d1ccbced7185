# The two commands of README.md. Each installs what it needs into .venv first, from the lock.
#   make run          - the whole papermill pipeline on the embedded default data -> runs/latest/
#   make test         - the full test suite (unit tests, doctests, notebooks, CLI, browser, the docs build)
#   make docs         - the documentation site, offline, warnings as errors -> docs/_build/html/index.html
#   make lock         - regenerate requirements.lock from pyproject.toml: the newest releases it allows (a deliberate upgrade)
#   make test-latest  - the suite against the newest releases pyproject.toml allows (.venv-latest)
#   make test-atomistic - the universal-potential tests (battlab.design.relax) in .venv-atomistic: the lock plus
#                       requirements-atomistic.lock (PyTorch CPU, CHGNet, SevenNet); .venv never gets torch
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
ATOMISTIC_LOCK := requirements-atomistic.lock
# The extras of requirements.lock and .venv, by name: every extra except `atomistic` (PyTorch stays out of them).
EXTRAS := apps mp postgres test dev bench docs
# Where pip finds the CPU build of the locked torch when its configured sources (PyPI) lack it: PyTorch's CPU index
# (PyPI's Linux torch is the CUDA build, ~3 GB of nvidia-* wheels).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# pip -q still prints warnings that need no action; these exact ones are dropped, everything else (errors above
# all) shows, and pip's exit status stands (pipefail):
# - a local package index of this machine's pip configuration that has no folder for a package;
# - beep asks for monty[yaml], an extra that monty's locked release no longer has (its YAML support is built in).
PIP_QUIET := 2>&1 | { grep -v -e "is ignored: it is neither" -e "^WARNING: monty [^ ]* does not provide the extra 'yaml'$$" \
    -e "^\s*$$" || true; }
# setuptools' box on every editable install ("Editable installation ... folders with the same name as your
# package"): a Python warning of the build backend, silenced by its message only.
EDITABLE_QUIET := PYTHONWARNINGS="ignore:Editable installation"

export PYBAMM_DISABLE_TELEMETRY := true
# (no MPLBACKEND here: it would reach the pipeline's kernels and leave the notebooks without figures)

.PHONY: run test quick docs screenshots apps lab lock lock-atomistic test-latest test-atomistic clean system-deps

$(PY):
	@echo "creating $(VENV) (python3 -m venv)"
	@python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip $(PIP_QUIET)

# Stamp: the locked stack (every extra), redone when the lock or pyproject.toml changes; battlab itself
# is installed on top without dependencies (the lock does not pin it).
$(VENV)/.installed: $(LOCK) pyproject.toml | $(PY)
	@echo "installing the locked stack ($(LOCK)) and battlab into $(VENV): a few minutes the first time"
	@$(PY) -m pip install -q -r $(LOCK) $(PIP_QUIET)
	@$(EDITABLE_QUIET) $(PY) -m pip install -q --no-deps -e . $(PIP_QUIET)
	@touch $@

# The lock: exact versions of the whole stack, every extra but `atomistic`, for Python 3.11 on Linux x86_64.
lock:
	python3 -m pip install -q uv $(PIP_QUIET)
	python3 -m uv pip compile pyproject.toml $(EXTRAS:%=--extra %) --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --upgrade --custom-compile-command "make lock" -o $(LOCK)

# The atomistic lock: what the `atomistic` extra adds on top of requirements.lock (whose pins it keeps), with the
# CPU build of torch (TORCH_PIN). uv reads torch's metadata from TORCH_INDEX; a folder of wheels does as well:
# `make lock-atomistic TORCH_SOURCE="--find-links /path/to/wheels"`.
TORCH_PIN ?= torch==2.13.0+cpu
TORCH_SOURCE ?= --extra-index-url $(TORCH_INDEX) --index-strategy unsafe-best-match
lock-atomistic:
	python3 -m pip install -q uv $(PIP_QUIET)
	echo "$(TORCH_PIN)" > $(ATOMISTIC_LOCK).torch.tmp
	python3 -m uv pip compile pyproject.toml $(EXTRAS:%=--extra %) --extra atomistic -c $(LOCK) \
	    -c $(ATOMISTIC_LOCK).torch.tmp $(TORCH_SOURCE) --no-emit-find-links --no-emit-index-url \
	    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	    --custom-compile-command "make lock-atomistic" -o $(ATOMISTIC_LOCK).tmp
	awk 'NR == FNR { if ($$0 ~ /^[a-z0-9]/) { split($$0, a, "=="); locked[a[1]] = 1 } next } \
	     /^[a-z0-9]/ { split($$0, a, "=="); seen = 1; keep = !(a[1] in locked) } \
	     !seen || keep' $(LOCK) $(ATOMISTIC_LOCK).tmp > $(ATOMISTIC_LOCK)
	rm -f $(ATOMISTIC_LOCK).tmp $(ATOMISTIC_LOCK).torch.tmp

# The atomistic venv: requirements.lock and requirements-atomistic.lock. torch first, alone: from pip's configured
# sources if they have the locked CPU build, else from TORCH_INDEX; then the rest of both locks.
.venv-atomistic/.installed: $(LOCK) $(ATOMISTIC_LOCK) pyproject.toml
	[ -x .venv-atomistic/bin/python ] || python3 -m venv .venv-atomistic
	.venv-atomistic/bin/python -m pip install -q --upgrade pip $(PIP_QUIET)
	torch=$$(grep -E '^torch==' $(ATOMISTIC_LOCK)); \
	.venv-atomistic/bin/python -m pip install -q --no-deps "$$torch" >/dev/null 2>&1 || \
	.venv-atomistic/bin/python -m pip install -q --no-deps "$$torch" --extra-index-url $(TORCH_INDEX) $(PIP_QUIET)
	.venv-atomistic/bin/python -m pip install -q -r $(LOCK) -r $(ATOMISTIC_LOCK) $(PIP_QUIET)
	.venv-atomistic/bin/python -m pip install -q --no-deps -e . $(PIP_QUIET)
	touch $@

# System packages the tests use: Debian's Chromium for the browser tests (Playwright's own browser
# download does not work offline), PostgreSQL for the many-worker tuning tests and mdbtools (mdb-export)
# for Arbin .res files (MS Access databases): battlab.cycling.formats.arbin_res.
system-deps:
	@missing=""; [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v mdb-export >/dev/null 2>&1 || missing="$$missing mdbtools"; \
	if [ -n "$$missing" ]; then sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "installing$$missing (apt)"; $$sudo apt-get update -qq && $$sudo apt-get install -y -qq $$missing >/dev/null; fi

run: $(VENV)/.installed
	$(VENV)/bin/battlab run

quick: $(VENV)/.installed
	$(VENV)/bin/battlab run --quick

test: $(VENV)/.installed system-deps
	$(PY) -m pytest --doctest-modules tests battlab
	$(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks

# The documentation site (Sphinx, docs/conf.py), offline, warnings as errors. The example notebooks are the
# pipeline's as executed by `battlab run --quick` (or a `make run` newer than notebooks/, reused), rendered with their
# figures; the app gallery holds the browser tests' screenshots (taken first when some are missing and Chromium is
# there).
docs: $(VENV)/.installed
	@if [ -x /usr/bin/chromium ] && [ -n "$$($(PY) docs/_ext/battlab_docs.py missing-screenshots)" ]; then \
	    $(MAKE) screenshots; fi
	@run=$$($(PY) docs/_ext/battlab_docs.py fresh-run); \
	if [ -z "$$run" ]; then run=docs/_build/run; $(VENV)/bin/battlab run --quick --out $$run; \
	else echo "docs: the notebooks executed in $$run"; fi; \
	BATTLAB_DOCS_NOTEBOOKS=$$run $(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# The apps' screenshots for the docs' gallery: the browser tests take them (test-artifacts/).
screenshots: $(VENV)/.installed
	$(PY) -m pytest -q -m browser -p no:cacheprovider tests/test_apps_browser.py tests/test_cycle_life_app.py \
	    tests/test_next_experiments.py tests/test_design_app.py

# The newest releases pyproject.toml allows, in their own venv: upgrades seen coming, not by surprise.
test-latest: export BATTLAB_UNLOCKED := 1
test-latest: system-deps
	$(MAKE) VENV=.venv-latest .venv-latest/bin/python
	$(EDITABLE_QUIET) .venv-latest/bin/python -m pip install -q --upgrade -e ".[apps,test,postgres,docs]" $(PIP_QUIET)
	.venv-latest/bin/python -m pip freeze --exclude-editable > .venv-latest/versions.txt
	.venv-latest/bin/python -m pytest --doctest-modules tests battlab
	.venv-latest/bin/python -m pytest --nbval-lax -p no:cacheprovider notebooks

# The universal-potential tests (they skip in .venv, which has no torch); a few minutes on 2 cores.
test-atomistic: .venv-atomistic/.installed
	.venv-atomistic/bin/python -m pytest -p no:cacheprovider tests/test_design_relax.py

apps: $(VENV)/.installed
	$(VENV)/bin/battlab app --port 8866

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .venv-latest .venv-atomistic runs .pytest_cache docs/_build docs/notebooks docs/gallery docs/api
