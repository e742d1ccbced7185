"""The documentation site: built with warnings as errors, every public function and class on an API page, notebooks
rendered with their figures, the gallery, Binder links from the one configured repository, pages in a browser.

The build here renders one small executed notebook made by the test (the pipeline is not run again: `make docs`
renders the real ones) and one screenshot made by the test.
"""

from __future__ import annotations

import base64
import doctest
import importlib
import inspect
import io
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import battlab_docs  # noqa: E402


def _png(colour: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [2, 0, 1], color=colour)
    ax.set(title="capacity fade", xlabel="cycle", ylabel="Q [Ah]")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _executed_notebook(path: Path) -> None:
    """A notebook as papermill leaves it: a title, a parameters cell, a cell with text and a figure output."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("out_dir = 'runs/latest/01_example'", execution_count=1)
    params.metadata["tags"] = ["parameters"]
    plot = nbformat.v4.new_code_cell("plot_fade(cells)", execution_count=2)
    plot.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2 cells\n"),
                    nbformat.v4.new_output("display_data", data={
                        "image/png": base64.b64encode(_png("tab:blue")).decode(), "text/plain": "<Figure>"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 · An example step\n\nWhat the step does."), params, plot]
    nbformat.write(nb, path)


def public_modules() -> list[str]:
    """Every module of battlab whose dotted name has no part starting with ``_``."""
    import battlab

    names = ["battlab"] + [m.name for m in pkgutil.walk_packages(battlab.__path__, "battlab.")]
    return [n for n in names if not any(part.startswith("_") for part in n.split("."))]


def public_objects() -> dict[str, object]:
    """``module.name`` -> every public function and class defined in a public module (and ``battlab.__all__``)."""
    import battlab

    found = {}
    for name in public_modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if not attr.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)) \
                    and obj.__module__ == name:
                found[f"{name}.{attr}"] = obj
    for attr in battlab.__all__:
        obj = getattr(battlab, attr)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def own_docstring(obj) -> str:
    """The object's own docstring: not inherited, not the signature a dataclass gets when it has none."""
    doc = obj.__doc__ or ""
    if inspect.isclass(obj) and doc.startswith(f"{obj.__name__}("):
        return ""
    return doc.strip()


def sphinx_build(src: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(src),
                           str(out), "-d", str(out.parent / "doctrees")], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built from a copy of ``docs/`` (as `make docs` builds it), with a small executed notebook."""
    tmp = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "docs", tmp / "docs",
                    ignore=shutil.ignore_patterns("_build", "notebooks", "gallery", "api", "__pycache__"))
    for name in ("pyproject.toml", "CHANGELOG.md"):
        shutil.copy2(ROOT / name, tmp / name)
    run, shots = tmp / "run", tmp / "shots"
    run.mkdir()
    shots.mkdir()
    _executed_notebook(run / "01_example.ipynb")
    (shots / "curation.png").write_bytes(_png("tab:green"))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(BATTLAB_DOCS_NOTEBOOKS=str(run), BATTLAB_DOCS_SCREENSHOTS=str(shots),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    result = sphinx_build(tmp / "docs", tmp / "html", env)
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.stderr[-4000:]}"
    return tmp / "html"


pytestmark = pytest.mark.slow


def test_the_site_builds_without_warnings_with_every_page(site):
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")}
    assert pages <= {p.stem for p in site.glob("*.html")}
    index = (site / "index.html").read_text()
    for page in pages - {"index"}:
        assert f'href="{page}.html"' in index, f"{page} missing from the navigation"


def test_every_public_function_and_class_has_a_docstring_and_an_api_page(site):
    from sphinx.util.inventory import InventoryFile

    objects = public_objects()
    assert len(objects) > 300  # the scan found battlab's API, not an empty list
    undocumented = sorted(name for name, obj in objects.items() if not own_docstring(obj))
    assert not undocumented, f"public functions and classes without a docstring: {undocumented}"
    inventory = InventoryFile.loads((site / "objects.inv").read_bytes(), uri="").data
    on_pages = {name: item.uri for kind in ("py:function", "py:class", "py:exception")
                for name, item in inventory.get(kind, {}).items()}
    missing = sorted(set(objects) - set(on_pages))
    assert not missing, f"public functions and classes on no API page: {missing}"
    assert on_pages["battlab.curate.CuratedSet"].startswith("api/battlab.curate.html#")
    assert set(public_modules()) <= set(inventory["py:module"])


def test_the_scan_sees_a_missing_docstring():
    """The docstring check can fail: a class with none, or with only a dataclass's generated signature."""
    from dataclasses import dataclass

    class Bare:
        pass

    @dataclass
    class Record:
        value: int

    @dataclass
    class Told:
        """Told what it is."""

        value: int

    assert not own_docstring(Bare) and not own_docstring(Record) and own_docstring(Told)


def test_notebooks_are_rendered_with_their_figures(site):
    page = (site / "notebooks" / "01_example.html").read_text()
    assert "An example step" in page and "2 cells" in page
    assert len(re.findall(r"<img [^>]*src=\"[^\"]+\.png\"", page)) == 1
    assert 'href="notebooks/01_example.html"' in (site / "notebooks.html").read_text()


def test_gallery_shows_the_screenshots_there_are_and_says_which_are_missing(site):
    from battlab.apps import APPS

    page = (site / "gallery.html").read_text()
    assert re.search(r'<img [^>]*alt="the curation app', page)
    assert (site / "_images" / "curation.png").is_file()
    assert page.count("No screenshot in this build") == len(APPS) - 1
    for name in APPS:
        assert name in page


def test_changelog_and_contributing_guide_are_pages(site):
    assert "Unreleased" in (site / "changelog.html").read_text()
    assert "Building the documentation" in (site / "development.html").read_text()


def test_binder_links_are_built_from_the_one_repository_setting(site):
    """docs/apps.md (read on GitHub) holds the table built from pyproject's Repository; the site builds it anew."""
    from battlab.apps import APPS

    repo = battlab_docs.repository()
    text = (ROOT / "docs" / "apps.md").read_text()
    assert battlab_docs.binder_block(text) == battlab_docs.binder_table(repo), \
        "docs/apps.md's Binder table differs from [project.urls] Repository: " \
        "paste `python docs/_ext/battlab_docs.py binder-table` between its markers"
    links = re.findall(r"https://mybinder\.org/v2/gh/([^/]+/[^/]+)/main\?urlpath=([^)\"]+)", text)
    assert {r for r, _ in links} == {repo} and len(links) == len(APPS) + 1
    built = (site / "apps.html").read_text()
    for name in APPS:
        assert battlab_docs.binder_url(repo, name).replace("&", "&amp;") in built
    # one setting moves every link
    moved = battlab_docs.with_binder_table(text, "someone/battlab-fork")
    assert "OWNER" not in battlab_docs.binder_block(moved)
    assert battlab_docs.binder_block(moved).count("mybinder.org/v2/gh/someone/battlab-fork/main") == len(APPS) + 1


def test_repository_setting_is_checked(tmp_path):
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "battlab"\n[project.urls]\nRepository = "gitlab.com/x/y"\n')
    with pytest.raises(ValueError, match="Repository = 'gitlab.com/x/y' is not https://github.com/OWNER/NAME"):
        battlab_docs.repository(bad)


def test_docs_helpers_doctests():
    assert doctest.testmod(battlab_docs).failed == 0


def test_without_executed_notebooks_the_page_says_how_to_render_them(tmp_path):
    assert battlab_docs.prepare_notebooks(tmp_path / "nb", None) == []
    assert "make docs" in (tmp_path / "nb" / "not-rendered.md").read_text()
    clean = tmp_path / "run"
    clean.mkdir()
    shutil.copy2(ROOT / "notebooks" / "01_curate.ipynb", clean)  # committed without outputs: never executed
    problems = battlab_docs.prepare_notebooks(tmp_path / "nb", clean)
    assert len(problems) == 1 and "01_curate.ipynb: no outputs (not executed)" in problems[0]
    assert not (tmp_path / "nb" / "not-rendered.md").exists()
    nb = nbformat.read(clean / "01_curate.ipynb", as_version=4)
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    last.outputs = [nbformat.v4.new_output("stream", name="stdout", text="done\n")]  # it ran and drew nothing
    nbformat.write(nb, clean / "01_curate.ipynb")
    problems = battlab_docs.prepare_notebooks(tmp_path / "nb", clean)
    assert len(problems) == 1 and "01_curate.ipynb: no figures" in problems[0]


def test_rendered_notebooks_show_paths_relative_to_the_repository(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _executed_notebook(run / "01_example.ipynb")
    nb = nbformat.read(run / "01_example.ipynb", as_version=4)
    nb.cells[1].source = f"out_dir = '{battlab_docs.ROOT}/runs/latest/01_example'"
    nbformat.write(nb, run / "01_example.ipynb")
    assert battlab_docs.prepare_notebooks(tmp_path / "nb", run) == []
    shown = nbformat.read(tmp_path / "nb" / "01_example.ipynb", as_version=4)
    assert shown.cells[1].source == "out_dir = 'runs/latest/01_example'"
    assert shown.cells[2].outputs == nb.cells[2].outputs


def test_fresh_run_is_one_newer_than_every_notebook(tmp_path):
    sources = tmp_path / "notebooks"
    sources.mkdir()
    (sources / "01_a.ipynb").write_text("{}")
    run = tmp_path / "run"
    run.mkdir()
    assert battlab_docs.fresh_run((run,), sources) is None  # nothing ran
    (run / "summary.json").write_text(json.dumps({"steps": {"01_a": {"status": "ok"}}}))
    (run / "01_a.ipynb").write_text("{}")
    assert battlab_docs.fresh_run((run,), sources) == run
    os.utime(sources / "01_a.ipynb", (run.stat().st_mtime + 100,) * 2)  # the notebook changed since
    assert battlab_docs.fresh_run((run,), sources) is None
    (run / "summary.json").write_text(json.dumps({"steps": {"01_a": {"status": "failed"}}}))
    os.utime(run / "01_a.ipynb", (run.stat().st_mtime + 200,) * 2)
    assert battlab_docs.fresh_run((run,), sources) is None  # a failed step is not rendered


@pytest.fixture(scope="module")
def served(site):
    """The built site over HTTP on a free loopback port (as a browser reads it); stopped afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.mark.browser
@pytest.mark.parametrize("page, what", [
    ("index.html", "battlab documentation"),
    ("workflow.html", "Curation"),
    ("notebooks/01_example.html", "An example step"),
    ("api/battlab.curate.html", "CuratedSet"),
])
def test_pages_render_in_a_browser_with_their_links_resolving(site, served, page, what):
    from browser import launch, require_chromium, shot
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        browser = launch(p)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        failed = []
        tab.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        tab.goto(f"{served}/{page}", wait_until="load", timeout=60_000)
        tab.wait_for_selector("article.bd-article", timeout=30_000)
        assert what in tab.inner_text("article.bd-article")
        assert tab.title() and "battlab" in tab.title()
        # every image drawn (the notebook's figure, the theme's logos), every stylesheet and script found
        broken = tab.eval_on_selector_all("img", "els => els.filter(e => !e.complete || e.naturalWidth === 0)"
                                                 ".map(e => e.src)")
        assert not broken and not failed, (broken, failed)
        if page.startswith("notebooks/"):
            assert tab.locator("article.bd-article img").count() >= 1
        # every link within the site leads to a page that is there
        hrefs = tab.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        internal = {h.split("#")[0] for h in hrefs if h.startswith(served)}
        assert len(internal) > 5
        for url in sorted(internal):
            target = site / url[len(served) + 1:]
            assert (target / "index.html" if target.is_dir() else target).is_file(), f"{page}: {url} is missing"
        shot(tab, "docs_" + page.replace("/", "_").removesuffix(".html"))
        browser.close()
