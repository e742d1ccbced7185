"""What the browser tests (and benchmarks/apps.py) share: Debian's Chromium driven by Playwright, servers on a
free loopback port, waits on states instead of sleeps."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
#: Flags for a closed network: no background connections, no first-run or sync prompts.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
#: Error output as Voilà and JupyterLab render it (a traceback, or text written to stderr).
ERRORS = '[data-mime-type="application/vnd.jupyter.stderr"], [data-mime-type="application/vnd.jupyter.error"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_chromium() -> None:
    """Fail in CI (``make test`` installs Debian's chromium), skip elsewhere."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} missing (make test installs it)")


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    """Return once ``url`` answers (any HTTP status); raise with the server's log if it died or never answered."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{url} did not answer: {log.read_text()[-2000:]}") from None
            time.sleep(0.2)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
