"""Every Voilà app rendered in headless Chromium (Debian's package) driven by Playwright.

Each test opens one app, waits for its ready marker (no sleeps), checks that no error output was
rendered, does one real interaction, and keeps a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ERRORS = '[data-mime-type="application/vnd.jupyter.stderr"], [data-mime-type="application/vnd.jupyter.error"]'

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """A ``runs/`` folder as ``make run`` leaves it, with a small tuned model (the apps load it)."""
    from battlab.datasets import load_dataset
    from battlab.featurize import featurize_table
    from battlab.tune import tune

    runs = tmp_path_factory.mktemp("runs")
    df, card = load_dataset("exp_formation_enthalpy")
    table, info = featurize_table(df, preset="magpie")
    result = tune(table, info["feature"].tolist(), card.target, models=("ridge",), n_trials=2,
                  storage="sqlite:///:memory:", progress=False)
    result.save(runs / "latest" / "03_tune")
    return runs


@pytest.fixture(scope="module")
def voila(tmp_path_factory, runs_dir):
    """A Voilà server for the ``widgets/`` folder, on a free loopback port; stopped afterwards."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} missing (make test installs it)")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("voila") / "voila.log", "w")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # apps use the notebook's inline backend
    env = {**env, "BATTLAB_RUNS": str(runs_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "voila", str(ROOT / "widgets"), "--no-browser", f"--port={port}",
                             "--Voila.ip=127.0.0.1", "--show_tracebacks=True"], cwd=ROOT / "widgets", env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # wait for the server to answer (a state, not a fixed sleep)
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # it answered
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"voila did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync", "--disable-quic"])
        yield b
        b.close()


def open_app(browser, voila, name: str):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    t0 = time.perf_counter()
    page.goto(f"{voila}/voila/render/{name}.ipynb", timeout=120_000)
    page.wait_for_selector(".battlab-app-ready", timeout=180_000)
    page.render_seconds = time.perf_counter() - t0
    assert page.locator(ERRORS).count() == 0, page.locator(ERRORS).first.inner_text()
    return page


def upload(page, path) -> None:
    """Choose a file through the upload button, as a person would."""
    with page.expect_file_chooser() as chooser:
        page.click(".battlab-data-uploader .widget-upload")
    chooser.value.set_files(str(path))


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_electrode_designer_slider_and_optimize(browser, voila):
    page = open_app(browser, voila, "electrode_designer")
    before = page.inner_text(".battlab-prediction")
    page.locator(".noUi-handle").nth(2).focus()  # coating gap
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("b => document.querySelector('.battlab-prediction').innerText !== b", arg=before,
                           timeout=20_000)
    page.click(".battlab-optimize")
    page.wait_for_function("document.querySelector('.battlab-status').innerText.startsWith('best')",
                           timeout=120_000)
    page.wait_for_selector(".battlab-convergence img", timeout=30_000)
    assert page.locator(ERRORS).count() == 0
    shot(page, "electrode_designer")
    page.close()


def test_curation_upload_messy_csv_shows_quarantine(browser, voila, tmp_path):
    from battlab.widgets import example_path

    page = open_app(browser, voila, "curation")
    upload(page, example_path())
    page.wait_for_function("!document.querySelector('.battlab-curate').disabled", timeout=30_000)
    page.click(".battlab-curate")
    page.wait_for_function("document.querySelector('.battlab-quarantine-count').innerText.includes('quarantined')",
                           timeout=60_000)
    assert page.inner_text(".battlab-quarantine-count").startswith("4 rows quarantined")
    page.wait_for_function("[...document.querySelectorAll('.battlab-curation-plot')].some("
                           "e => (e.tagName === 'IMG' ? e : e.querySelector('img'))?.naturalWidth > 0)", timeout=30_000)
    assert page.locator(ERRORS).count() == 0
    shot(page, "curation")
    page.close()


def test_curation_bad_file_shows_message_and_kernel_survives(browser, voila, tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_bytes(bytes(range(256)) * 20)
    page = open_app(browser, voila, "curation")
    upload(page, bad)
    page.wait_for_function("document.querySelector('.battlab-message').innerText.includes('binary')", timeout=30_000)
    page.click("text=Load example")  # the kernel still answers
    page.wait_for_function("!document.querySelector('.battlab-curate').disabled", timeout=30_000)
    page.close()


def test_predictor_types_a_formula(browser, voila):
    page = open_app(browser, voila, "predictor")
    assert "last pipeline run" in page.inner_text(".battlab-app-ready")
    page.fill(".battlab-predictor-input input", "LiCoO2, LiFePO4")
    page.click(".battlab-predict-button")
    page.wait_for_function("document.querySelector('.battlab-predictions').innerText.includes('LiFePO4')",
                           timeout=60_000)
    assert "LiCoO2" in page.inner_text(".battlab-predictions")
    assert page.locator(ERRORS).count() == 0
    shot(page, "predictor")
    page.close()


def test_shap_explorer_pick_a_family(browser, voila):
    page = open_app(browser, voila, "shap_explorer")
    page.wait_for_selector(".battlab-shap-dependence img", timeout=60_000)
    before = page.locator(".battlab-shap-dependence img").first.get_attribute("src")
    page.select_option(".battlab-shap-group select", "family")
    page.wait_for_function("b => document.querySelector('.battlab-shap-dependence img')?.getAttribute('src') !== b",
                           arg=before, timeout=60_000)
    assert page.locator(ERRORS).count() == 0
    shot(page, "shap_explorer")
    page.close()
