"""What battlab's docs build makes from the repository (a local Sphinx extension, also a small command).

- ``notebooks/``: copies of the pipeline's executed notebooks (``battlab run --quick``), rendered as they are;
- ``api/``: one page per public module (autodoc);
- ``gallery/``: the apps' screenshots taken by the browser tests (``test-artifacts/``);
- the Binder links of ``apps.md``, built from the one configured repository (``[project.urls] Repository`` in
  ``pyproject.toml``);
- links from a page to repository files outside ``docs/`` (``../battlab/...``), pointed at the repository.

Used as a command by ``make docs``: ``python docs/_ext/battlab_docs.py fresh-run`` prints the folder of a run whose
executed notebooks are newer than ``notebooks/`` (``runs/latest`` or ``docs/_build/run``), or nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
#: Where the pipeline's notebooks are (the sources of the rendered ones).
NOTEBOOKS = ROOT / "notebooks"
#: The runs ``make docs`` may reuse, in order: the last ``make run``, then its own quick run.
RUNS = (ROOT / "runs" / "latest", DOCS / "_build" / "run")
#: Screenshots kept by the browser tests (tests/browser.py ``shot``).
SCREENSHOTS = ROOT / "test-artifacts"
#: Extra screenshots shown in the gallery after the apps: file stem -> caption.
EXTRA_SHOTS = {"lab_01_curate": "JupyterLab with notebook 01 run from the browser"}

BINDER_START = "<!-- binder-links: built from [project.urls] Repository in pyproject.toml -->"
BINDER_END = "<!-- /binder-links -->"
BADGE = "https://mybinder.org/badge_logo.svg"


def repository(pyproject: Path | None = None) -> str:
    """``OWNER/NAME`` of the repository on GitHub, from ``[project.urls] Repository`` of ``pyproject.toml``.

    The one setting that every Binder link and the site's repository links are built from.
    """
    project = tomllib.loads((pyproject or ROOT / "pyproject.toml").read_text())["project"]
    url = project.get("urls", {}).get("Repository", "")
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)/?", url)
    if not match:
        raise ValueError(f"pyproject.toml: [project.urls] Repository = {url!r} is not https://github.com/OWNER/NAME")
    return match.group(1)


def binder_url(repo: str, app: str | None = None, branch: str = "main") -> str:
    """The Binder launch link of JupyterLab on the notebooks (``app=None``) or of one Voilà app.

    >>> binder_url("me/battlab", "curation")
    'https://mybinder.org/v2/gh/me/battlab/main?urlpath=voila%2Frender%2Fwidgets%2Fcuration.ipynb'
    """
    path = "lab/tree/notebooks" if app is None else f"voila%2Frender%2Fwidgets%2F{app}.ipynb"
    return f"https://mybinder.org/v2/gh/{repo}/{branch}?urlpath={path}"


def binder_table(repo: str) -> str:
    """The Markdown table of Binder links of ``apps.md``: JupyterLab, then every app of ``battlab.apps.APPS``."""
    from battlab.apps import APPS

    rows = ["| What | Launch |", "|---|---|",
            f"| JupyterLab with the notebooks | [![Binder]({BADGE})]({binder_url(repo)}) |"]
    rows += [f"| App `{name}`: {what} | [![Binder]({BADGE})]({binder_url(repo, name)}) |"
             for name, what in APPS.items()]
    return "\n".join(rows)


def binder_block(text: str) -> str:
    """The Binder table between the markers of a page (``apps.md``)."""
    start, end = text.index(BINDER_START) + len(BINDER_START), text.index(BINDER_END)
    return text[start:end].strip()


def with_binder_table(text: str, repo: str) -> str:
    """``text`` with its Binder block rebuilt from ``repo``."""
    start, end = text.index(BINDER_START) + len(BINDER_START), text.index(BINDER_END)
    return text[:start] + "\n" + binder_table(repo) + "\n" + text[end:]


def rewrite_links(text: str, repo: str) -> str:
    """Links from a page of ``docs/`` to files outside it: the changelog to its page, the rest to the repository.

    >>> rewrite_links("[log](../CHANGELOG.md), [cli](../battlab/cli.py#L3), [x](data.md)", "me/battlab")
    '[log](changelog.md), [cli](https://github.com/me/battlab/blob/main/battlab/cli.py#L3), [x](data.md)'
    """
    def target(match: re.Match) -> str:
        path, anchor = match.group(1), match.group(2) or ""
        if path == "CHANGELOG.md":
            return f"](changelog.md{anchor})"
        kind = "tree" if (ROOT / path).is_dir() else "blob"
        return f"](https://github.com/{repo}/{kind}/main/{path}{anchor})"

    return re.sub(r"\]\(\.\./([^)#\s]+)(#[^)\s]*)?\)", target, text)


def fresh_run(runs: tuple[Path, ...] = RUNS, notebooks: Path = NOTEBOOKS) -> Path | None:
    """The first run whose steps all finished and whose executed notebooks are newer than their sources."""
    sources = sorted(notebooks.glob("0*.ipynb"))
    for run in runs:
        summary = run / "summary.json"
        if not summary.is_file():
            continue
        steps = json.loads(summary.read_text()).get("steps", {})
        done = [run / s.name for s in sources]
        if len(steps) == len(sources) and all(r.get("status") == "ok" for r in steps.values()) and \
                all(d.is_file() and d.stat().st_mtime >= s.stat().st_mtime for d, s in zip(done, sources, strict=True)):
            return run
    return None


def figures(path: Path) -> int:
    """How many figures (``image/png`` outputs) an executed notebook holds."""
    nb = json.loads(path.read_text())
    return sum("image/png" in out.get("data", {}) for cell in nb["cells"] for out in cell.get("outputs", []))


def prepare_notebooks(out: Path, run: Path | None) -> list[str]:
    """Fill ``out`` with the executed notebooks of ``run``; without a run, one page saying how to render them.

    Paths inside the repository are shown relative to it (``runs/latest/03_tune``, not the build's folder).

    Returns problems to report: a notebook without outputs was not executed, and a pipeline notebook without a
    figure was executed without the inline backend (each of them draws some); either would render without results.
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    executed = sorted(run.glob("*.ipynb")) if run is not None else []
    if not executed:
        (out / "not-rendered.md").write_text(
            "# Not rendered in this build\n\nThis build was made without executed notebooks. `make docs` renders "
            "the pipeline's notebooks as `battlab run --quick` executes them, with their outputs and figures.\n")
        return [] if run is None else [f"{run}: no executed notebooks"]
    problems = []
    for nb in executed:
        cells = json.loads(nb.read_text())["cells"]
        if not any(cell.get("outputs") for cell in cells):
            problems.append(f"{nb}: no outputs (not executed)")
        elif figures(nb) == 0:
            problems.append(f"{nb}: no figures (executed with a non-inline MPLBACKEND?)")
        # paths as the reader would type them: relative to the repository, not the build machine's folders
        (out / nb.name).write_text(nb.read_text().replace(str(ROOT) + "/", ""))
    return problems


def prepare_gallery(out: Path, shots: Path = SCREENSHOTS) -> str:
    """Copy the apps' screenshots into ``out`` and return the gallery's Markdown (one section per app)."""
    from battlab.apps import APPS

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sections = []
    for name, what in [*APPS.items(), *EXTRA_SHOTS.items()]:
        shot = shots / f"{name}.png"
        if name in EXTRA_SHOTS and not shot.is_file():
            continue
        title = f"## `{name}`" if name in APPS else f"## {what}"
        body = what[0].upper() + what[1:] + "." if name in APPS else ""
        if shot.is_file():
            shutil.copy2(shot, out / shot.name)
            image = f"```{{image}} /{out.name}/{shot.name}\n:alt: the {name} app, as the browser test left it\n```"
        else:
            image = "*No screenshot in this build: the browser tests take it (`make test`, or `make screenshots`).*"
        sections.append(f"{title}\n\n{body}\n\n{image}\n")
    return "\n".join(sections)


def public_modules() -> list[str]:
    """Every module of battlab whose dotted name has no part starting with ``_`` (the API reference's pages)."""
    import pkgutil

    import battlab

    names = ["battlab"] + [m.name for m in pkgutil.walk_packages(battlab.__path__, "battlab.")]
    return sorted(n for n in names if not any(part.startswith("_") for part in n.split(".")))


def prepare_api(out: Path, modules: list[str]) -> None:
    """One page per module in ``out``: its docstring, then every function and class it defines (autodoc).

    Written here rather than by autosummary, which resolves ``battlab.electrode.simulate`` to the function that
    the package re-exports under the module's name instead of to the module.
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in modules:
        (out / f"{name}.rst").write_text(f"{name}\n{'=' * len(name)}\n\n.. automodule:: {name}\n")


def missing_screenshots(shots: Path = SCREENSHOTS) -> list[str]:
    """The apps without a screenshot in ``shots`` (``make docs`` takes them first)."""
    from battlab.apps import APPS

    return [name for name in APPS if not (shots / f"{name}.png").is_file()]


def _builder_inited(app) -> None:
    from sphinx.util import logging

    log = logging.getLogger("battlab_docs")
    src = Path(app.srcdir)
    run = Path(app.config.battlab_notebooks).resolve() if app.config.battlab_notebooks else None
    for problem in prepare_notebooks(src / "notebooks", run):
        log.warning(problem)
    prepare_api(src / "api", public_modules())
    shots = Path(app.config.battlab_screenshots) if app.config.battlab_screenshots else SCREENSHOTS
    (src / "gallery").mkdir(exist_ok=True)
    text = prepare_gallery(src / "gallery", shots)
    (src / "gallery" / "_apps.md").write_text(text)


def _source_read(app, docname: str, source: list[str]) -> None:
    repo = repository(Path(app.srcdir).parent / "pyproject.toml")
    text = rewrite_links(source[0], repo)
    if docname != "index":  # "# battlab · Data" on GitHub, "Data" in the site's navigation
        text = re.sub(r"\A# battlab · ", "# ", text)
    if BINDER_START in text:
        text = with_binder_table(text, repo)
    source[0] = text


def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing methods (``set_fit_request``...): not battlab's API."""
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app) -> dict:
    import os

    app.add_config_value("battlab_notebooks", os.environ.get("BATTLAB_DOCS_NOTEBOOKS", ""), "env")
    app.add_config_value("battlab_screenshots", os.environ.get("BATTLAB_DOCS_SCREENSHOTS", ""), "env")
    app.connect("builder-inited", _builder_inited)
    app.connect("source-read", _source_read)
    app.connect("autodoc-skip-member", _skip_member)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    if sys.argv[1:] == ["fresh-run"]:
        found = fresh_run()
        print(found.relative_to(ROOT) if found else "")
    elif sys.argv[1:] == ["binder-table"]:
        print(binder_table(repository()))
    elif sys.argv[1:] == ["missing-screenshots"]:
        print(" ".join(missing_screenshots()))
    else:
        sys.exit("usage: battlab_docs.py fresh-run | binder-table | missing-screenshots")
