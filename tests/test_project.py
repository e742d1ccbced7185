"""Project hygiene: environments mirror pyproject.toml, notebooks are clean, nothing prompts."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
APPS = sorted((ROOT / "widgets").glob("*.ipynb"))


def _pyproject(*extras):
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        reqs += PYPROJECT["project"]["optional-dependencies"][extra]
    return {(r := Requirement(s)).name.lower(): r.specifier for s in reqs}


def _conda(path):
    env = yaml.safe_load(path.read_text())
    specs = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and not dep.startswith(("python=", "pip")) and dep != "pip":
            r = Requirement(dep)
            specs[r.name.lower()] = r.specifier
    return env, specs


@pytest.mark.parametrize("path, extras", [
    ("environment.yml", ("apps", "test")),
    ("binder/environment.yml", ("apps",)),
])
def test_conda_environments_mirror_pyproject(path, extras):
    env, specs = _conda(ROOT / path)
    assert specs == _pyproject(*extras)
    assert "conda-forge" in env["channels"]


def test_binder_installs_the_package_and_disables_telemetry():
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post
    assert os.access(ROOT / "binder" / "postBuild", os.X_OK)
    start = (ROOT / "binder" / "start").read_text()
    assert "PYBAMM_DISABLE_TELEMETRY=true" in start and 'exec "$@"' in start


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make run" in readme
    assert "make test" in ci


def test_readme_has_a_binder_badge_for_lab_and_every_app():
    from battlab.apps import APPS

    readme = (ROOT / "README.md").read_text()
    badge = "[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/battlab/main?urlpath="
    assert badge + "lab/tree/notebooks)" in readme
    for name in APPS:
        assert badge + f"voila%2Frender%2Fwidgets%2F{name}.ipynb)" in readme, name
        assert (ROOT / "widgets" / f"{name}.ipynb").is_file(), name


def test_importing_battlab_disables_pybamm_telemetry():
    env = {k: v for k, v in os.environ.items() if k != "PYBAMM_DISABLE_TELEMETRY"}
    out = subprocess.run([sys.executable, "-c", "import battlab, os; print(os.environ['PYBAMM_DISABLE_TELEMETRY'])"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "true"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_clean_with_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs (nbstripout)"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "out_dir" in tagged[0].source
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", APPS, ids=lambda p: p.name)
def test_apps_are_thin_and_clean(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs (nbstripout)"
    assert sum(len(c.source.splitlines()) for c in code) <= 25, "apps compose battlab.widgets; logic lives there"
    assert "battlab-app-ready" in "".join(c.source for c in code)  # the browser tests wait for it
