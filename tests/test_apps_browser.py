"""Every Voilà app rendered in headless Chromium (Debian's package) driven by Playwright.

Each test opens one app, waits for its ready marker (no sleeps), checks that no error output was
rendered, does one real interaction, and keeps a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from browser import ERRORS, free_port, require_chromium, shot, wait_for_server

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.browser


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
    from battlab.apps import voila_command

    require_chromium()
    port = free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # apps use the notebook's inline backend
    env = {**env, "BATTLAB_RUNS": str(runs_dir)}
    # served as `battlab app` serves them (progressive rendering), with tracebacks for debugging
    proc = subprocess.Popen([*voila_command(ROOT / "widgets", port), "--show_tracebacks=True"], cwd=ROOT / "widgets",
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(base + "/", proc, log)
    except RuntimeError as exc:
        pytest.fail(f"voila did not start: {exc}")
    yield base
    proc.terminate()
    proc.wait(timeout=20)


def open_app(browser, voila, name: str):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    # Voilà streams the page while the notebook runs: wait for the response, then for states (no `load` wait,
    # which comes only after the last cell; a retried goto would start one kernel per retry)
    page.goto(f"{voila}/voila/render/{name}.ipynb", wait_until="commit", timeout=60_000)
    try:
        page.wait_for_selector(".battlab-app-status", state="visible", timeout=120_000)  # feedback before heavy work
        page.wait_for_selector(".battlab-app-ready", timeout=300_000)
        page.wait_for_selector(".battlab-status-ready", timeout=60_000)
    except Exception:
        shot(page, f"{name}-not-ready")  # what the user saw, for the report
        raise
    assert page.locator(ERRORS).count() == 0, page.locator(ERRORS).first.inner_text()
    return page


def upload(page, path) -> None:
    """Choose a file through the upload button, as a person would."""
    with page.expect_file_chooser() as chooser:
        page.click(".battlab-data-uploader .widget-upload")
    chooser.value.set_files(str(path))


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
    assert "last pipeline run" in page.inner_text(".battlab-app-status")  # where its model came from
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
