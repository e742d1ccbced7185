"""JupyterLab is part of the product: a notebook and an app notebook run inside a real JupyterLab.

``jupyter lab`` serves a copy of ``notebooks/`` and ``widgets/`` (so autosave never writes outputs into the
repository) on a free loopback port; Debian's Chromium, driven by Playwright, opens ``01_curate.ipynb``, runs all
cells from the Run menu as a person would, and checks its report and plot with no error output; then it runs
the ``electrode_designer`` app notebook and sees its widgets render. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from browser import ROOT, free_port, require_chromium, shot, wait_for_server
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser
TRACEBACK = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
#: JupyterLab settings for the test: every cell in the page (no windowing of off-screen cells), no news prompt.
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in front
SETTINGS = {"@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("lab")
    for folder in ("notebooks", "widgets"):
        shutil.copytree(ROOT / folder, root / folder)
    port = free_port()
    log = root / "lab.log"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # notebooks use the inline backend
    env["JUPYTER_CONFIG_DIR"] = str(root / ".jupyter")  # no user settings, no workspace from an earlier run
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(root / ".workspaces")
    for plugin, settings in SETTINGS.items():
        path = root / ".jupyter" / "lab" / "user-settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
             "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
             f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
             "jupyterlab.NeverCheckForUpdate", "--ServerApp.open_browser=False", "--allow-root",
             "--LabApp.extension_manager=readonly"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        wait_for_server(base + "/api", proc, log)
        yield base, root
        proc.terminate()
        proc.wait(timeout=30)


def run_all(browser, base: str, path: str):
    """Open ``path`` in JupyterLab, wait for its kernel, Run > Run All Cells, wait until every cell has run."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/{path}?reset", timeout=120_000)  # a fresh workspace: only this notebook
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    for _attempt in range(3):
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        # under load the session's kernel can still be connecting: JupyterLab then asks which kernel to start
        # (a user presses Select: the notebook's own kernel is preselected), or drops the request (a user
        # presses Run All again)
        try:
            page.locator(".jp-Dialog:has-text('Select Kernel') .jp-mod-accept").click(timeout=3_000)
        except PlaywrightTimeout:
            pass
        try:  # some cell queued, running or done
            page.wait_for_function(
                """PANEL => [...document.querySelectorAll(`${PANEL} .jp-CodeCell .jp-InputPrompt`)]
                    .some(p => /\\[(\\*|\\d+)\\]/.test(p.innerText))""", arg=PANEL, timeout=30_000, polling=500)
            break
        except PlaywrightTimeout:
            continue
    # every code cell shows its execution count ("[3]:"), none is queued or running ("[*]:", "[ ]:")
    try:
        _wait_all_run(page)
    except Exception:
        shot(page, "lab_run_all_timeout")  # what the page showed when it gave up
        raise
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    return page


def _wait_all_run(page) -> None:
    page.wait_for_function(
        """PANEL => {
            const prompts = [...document.querySelectorAll(`${PANEL} .jp-CodeCell .jp-InputPrompt`)]
                .map(p => p.innerText);
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p));
        }""", arg=PANEL, timeout=300_000, polling=500)


def test_curate_notebook_runs_in_jupyterlab(lab, browser):
    base, root = lab
    page = run_all(browser, base, "notebooks/01_curate.ipynb")
    assert page.locator(TRACEBACK).count() == 0, page.locator(TRACEBACK).first.inner_text()
    text = page.inner_text(".jp-Notebook")
    assert "exp_formation_enthalpy + 8 demonstration rows: 2143 rows -> 2135 kept" in text  # the report
    assert "n_input" in text and "n_quarantined" in text  # the accounting table
    page.wait_for_function("[...document.querySelectorAll('.jp-RenderedImage img')].some(i => i.naturalWidth > 0)",
                           timeout=30_000)  # the curation plot
    stderr = [e.inner_text() for e in page.locator(STDERR).all()]
    assert not [s for s in stderr if "Error" in s or "Traceback" in s], stderr
    assert (root / "runs" / "manual" / "01_curate" / "curated.parquet").is_file()  # the step saved its outputs
    shot(page, "lab_01_curate")
    page.close()


def test_app_notebook_renders_its_widgets_in_jupyterlab(lab, browser):
    base, _ = lab
    page = run_all(browser, base, "widgets/electrode_designer.ipynb")
    assert page.locator(TRACEBACK).count() == 0, page.locator(TRACEBACK).first.inner_text()
    page.wait_for_selector(".jp-OutputArea .battlab-app-ready", timeout=60_000)
    page.wait_for_selector(".jp-OutputArea .battlab-prediction", timeout=60_000)
    assert page.locator(".jp-OutputArea .noUi-handle").count() >= 3  # the process sliders
    before = page.inner_text(".battlab-prediction")
    page.locator(".jp-OutputArea .noUi-handle").nth(2).focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("b => document.querySelector('.battlab-prediction').innerText !== b", arg=before,
                           timeout=30_000)  # the kernel answers the slider inside JupyterLab
    shot(page, "lab_electrode_designer")
    page.close()
