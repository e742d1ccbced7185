"""Project hygiene: the lock satisfies pyproject.toml and every environment installs it, notebooks are clean,
nothing prompts."""

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
APPS = sorted((ROOT / "widgets").glob("*.ipynb"))


LOCK = ROOT / "requirements.lock"
ATOMISTIC_LOCK = ROOT / "requirements-atomistic.lock"
#: Extras kept out of requirements.lock and .venv (PyTorch): in requirements-atomistic.lock and .venv-atomistic.
APART = {"atomistic"}
#: What the lock is made for (`make lock`): Python 3.11 on Linux x86_64.
LOCK_ENV = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def _locked(lock: Path | None = None) -> dict[str, str]:
    """Package name -> exact version pinned by requirements.lock (or another lock)."""
    pins = {}
    for line in (lock or LOCK).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        assert version, f"requirements.lock: {line!r} is not an exact pin"
        pins[canonicalize_name(name.split("[")[0].split(";")[0].strip())] = version.split(";")[0].strip()
    return pins


def _every_requirement(extras: set[str] | None = None) -> list[Requirement]:
    """The core dependencies and those of ``extras`` (default: every extra of requirements.lock)."""
    optional = PYPROJECT["project"]["optional-dependencies"]
    reqs = [Requirement(s) for s in PYPROJECT["project"]["dependencies"]]
    for name in (set(optional) - APART) if extras is None else extras:
        reqs += [Requirement(s) for s in optional[name]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({**LOCK_ENV, "extra": ""})]


def test_lock_satisfies_pyproject_with_every_extra():
    pins = _locked()
    assert "battlab" not in pins, "the lock must not pin battlab itself (installed with --no-deps -e .)"
    missing = [str(r) for r in _every_requirement() if canonicalize_name(r.name) not in pins]
    assert not missing, f"requirements.lock lacks {missing}: run `make lock`"
    stale = [f"{r} (locked {pins[canonicalize_name(r.name)]})" for r in _every_requirement()
             if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)]
    assert not stale, f"requirements.lock no longer satisfies pyproject.toml: {stale}: run `make lock`"
    assert "make lock" in LOCK.read_text().splitlines()[1], "the lock names the command that regenerates it"


def test_the_main_lock_and_venv_have_no_torch():
    """The atomistic extra (PyTorch) stays out of requirements.lock, so `make run`/`make test` stay lean."""
    assert "atomistic" in PYPROJECT["project"]["optional-dependencies"]
    pins = _locked()
    assert not {"torch", "chgnet", "sevenn", "triton"} & set(pins)
    assert not [name for name in pins if name.startswith("nvidia-")]


def test_atomistic_lock_adds_the_extra_on_top_of_the_main_lock():
    main, extra = _locked(), _locked(ATOMISTIC_LOCK)
    differ = {n: (main[n], extra[n]) for n in set(main) & set(extra) if main[n] != extra[n]}
    assert not differ, f"requirements-atomistic.lock contradicts requirements.lock {differ}: run `make lock-atomistic`"
    pins = {**main, **extra}
    reqs = _every_requirement({"atomistic"})
    missing = [str(r) for r in reqs if canonicalize_name(r.name) not in pins]
    stale = [str(r) for r in reqs if canonicalize_name(r.name) in pins
             and not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)]
    assert not missing and not stale, f"run `make lock-atomistic`: missing {missing}, unsatisfied {stale}"
    assert extra["torch"].endswith("+cpu"), "the CPU build of torch (PyPI's Linux torch brings CUDA)"
    assert not [name for name in extra if name.startswith("nvidia-") and name != "nvidia-ml-py3"]
    assert "make lock-atomistic" in ATOMISTIC_LOCK.read_text().splitlines()[1]


def test_lock_parser_catches_an_unsatisfied_pin(tmp_path, monkeypatch):
    """The check above can fail: a pin outside pyproject's range is reported."""
    text = LOCK.read_text()
    pins = _locked()
    old = f"numpy=={pins['numpy']}"
    assert old in text
    monkeypatch.setattr(sys.modules[__name__], "LOCK", tmp_path / "requirements.lock")
    (tmp_path / "requirements.lock").write_text(text.replace(old, "numpy==1.0.0"))
    with pytest.raises(AssertionError, match="no longer satisfies.*numpy"):
        test_lock_satisfies_pyproject_with_every_extra()


@pytest.mark.skipif(os.environ.get("BATTLAB_UNLOCKED") == "1", reason="make test-latest runs the newest releases")
def test_the_suite_runs_on_the_locked_versions():
    """make test installs the lock: every locked package this venv has is at its locked version."""
    pins = _locked()
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    drift = {name: (version, installed[name]) for name, version in pins.items()
             if name in installed and Version(installed[name]) != Version(version)}
    assert not drift, f"installed versions differ from requirements.lock (locked, installed): {drift}"
    core = [canonicalize_name(Requirement(s).name) for s in PYPROJECT["project"]["dependencies"]]
    assert all(name in installed for name in core)


@pytest.mark.parametrize("path, lock", [("environment.yml", "requirements.lock"),
                                        ("binder/environment.yml", "../requirements.lock")])
def test_conda_environments_install_the_lock(path, lock):
    env = yaml.safe_load((ROOT / path).read_text())
    assert "conda-forge" in env["channels"]
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert f"-r {lock}" in pip
    assert (ROOT / path).parent.joinpath(lock).resolve() == LOCK
    # conda packages beside the lock would be resolved apart from it
    assert all(d in ("pip",) or d.startswith("python=") for d in env["dependencies"] if isinstance(d, str))


def test_makefile_installs_the_lock():
    make = (ROOT / "Makefile").read_text()
    assert "pip install -q -r $(LOCK)" in make and "LOCK := requirements.lock" in make
    assert "pip install -q --no-deps -e ." in make
    assert "uv pip compile pyproject.toml $(EXTRAS:%=--extra %) --python-version 3.11" in make
    extras = next(line for line in make.splitlines() if line.startswith("EXTRAS :="))
    assert set(extras.split(":=")[1].split()) == set(PYPROJECT["project"]["optional-dependencies"]) - APART
    assert "test-latest:" in make and "export BATTLAB_UNLOCKED := 1" in make


def _make(*args, **kw):
    return subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, **kw)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_drops_exactly_the_pip_warnings_that_need_no_action_and_keeps_errors_and_exit_status():
    pip_says = ("WARNING: Location 'file:///opt/pypi/simple/zict/' is ignored: it is neither a file nor a directory.",
                "WARNING: monty 2026.10.21 does not provide the extra 'yaml'", "",
                "WARNING: pymatgen 2025.1 does not provide the extra 'mystery'",
                "ERROR: Could not find a version that satisfies the requirement shap==0.99")
    printf = "printf '%s\\n' " + " ".join(f'"{line}"' for line in pip_says)
    ok = _make("--eval", f"pipcheck: ; @{printf} $(PIP_QUIET)", "pipcheck")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == list(pip_says[3:])  # another package's missing extra and errors stay
    failed = _make("--eval", f"pipcheck: ; @({printf}; exit 1) $(PIP_QUIET)", "pipcheck")
    assert failed.returncode != 0 and "ERROR: Could not find a version" in failed.stdout


def test_editable_install_box_is_silenced_by_its_message_only():
    make = (ROOT / "Makefile").read_text()
    assert "$(EDITABLE_QUIET) $(PY) -m pip install -q --no-deps -e ." in make
    env = {**os.environ, "PYTHONWARNINGS": "ignore:Editable installation"}  # what EDITABLE_QUIET sets
    assert 'EDITABLE_QUIET := PYTHONWARNINGS="ignore:Editable installation"' in make
    code = ("import warnings; warnings.warn('Editable installation.\\n!!\\n  Please be careful', UserWarning); "
            "warnings.warn('Something else', UserWarning)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "Editable installation" not in proc.stderr and "Something else" in proc.stderr


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
    """docs/apps.md has a Binder badge for JupyterLab and every app, on the repository pyproject.toml names."""
    from battlab.apps import APPS

    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    from battlab_docs import repository

    readme = (ROOT / "docs" / "apps.md").read_text()
    badge = f"[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/{repository()}/main?urlpath="
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


#: Tracked files allowed above 2 MB (expected data, each named here with why): none today.
LARGE_FILES_EXPECTED: dict[str, str] = {}


def test_no_tracked_file_over_2_mb_unless_expected():
    """A clone stays small: a stray wheel, dataset or executed notebook over 2 MB fails here (issue 25)."""
    root = Path(__file__).resolve().parents[1]
    files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    large = {}
    for name in filter(None, files.decode().split("\0")):
        path = root / name
        if path.is_file() and path.stat().st_size > 2 * 1024 * 1024 and name not in LARGE_FILES_EXPECTED:
            large[name] = path.stat().st_size
    assert not large, f"tracked files over 2 MB (add to LARGE_FILES_EXPECTED with a reason, or remove): {large}"


def test_citation_and_changelog_are_there_and_agree_with_pyproject():
    root = Path(__file__).resolve().parents[1]
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert cff["cff-version"] == "1.2.0" and cff["license"] == project["license"] == "BSD-3-Clause"
    assert cff["version"] == project["version"] and cff["authors"]
    assert (root / "LICENSE").read_text().startswith("BSD 3-Clause License")
    assert (root / "CHANGELOG.md").read_text().startswith("# Changelog")


def test_readme_is_a_front_page_and_every_link_of_it_and_the_docs_resolves():
    """README <= 10 KB (issue 25); the manual's pages are all in docs/index.md; relative links point at files."""
    readme = ROOT / "README.md"
    assert readme.stat().st_size <= 10 * 1024
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    index = (ROOT / "docs" / "index.md").read_text()
    assert all(f"({p})" in index for p in pages if p != "index.md"), pages
    for doc in [readme, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name}: link to {target} points at no file"
