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
def voila(tmp_path_factory):
    """A Voilà server for the ``widgets/`` folder, on a free loopback port; stopped afterwards."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} missing (make test installs it)")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("voila") / "voila.log", "w")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # apps use the notebook's inline backend
    env = {**env, "BATTLAB_RUNS": os.environ.get("BATTLAB_TEST_RUNS", str(tmp_path_factory.mktemp("runs")))}
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
