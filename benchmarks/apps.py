"""The Voilà apps in a real browser: cold and warm first render, feedback time, slider latency, kernel memory.

    python benchmarks/apps.py [--repeats 10] [--apps NAME ...]

Drives Debian's Chromium with Playwright against Voilà on a free loopback port. Two ways a user meets an app:

- **cold**: a fresh ``voila`` server per app (no pre-heated kernel), an empty runs folder (no ``runs/latest``,
  no cached default model: what a new user on a fresh clone sees), in ``battlab app``'s configuration
  (:func:`battlab.apps.voila_command`: progressive rendering).
  ``<app>_cold_server_s``: ``voila`` start until it answers; ``<app>_cold_feedback_s``: from navigation until the
  page says it is loading (Voilà's progress line or the app's status line); ``<app>_cold_status_s``: until the
  app's own status line (``AppStatus``) shows what it is doing; ``<app>_cold_first_render_s``: from ``voila``
  start until the app is drawn and takes input (``.battlab-app-ready``); ``<app>_cold_all_loaded_s``: until its
  status says ready (the predictor draws itself first and loads, or builds, its model behind a progress bar).
- **warm**: the same configuration, a second visitor of a running server (modules in the OS cache, the default
  model built by the cold pass); ``<app>_warm_first_render_s`` from navigation to all loaded.

``<app>_kernel_peak_mb`` is the peak resident memory (VmHWM) of the kernel that served the page (found by the
kernel id the page was given, not a refill kernel), in the cold pass; Binder allows 2 GB. The headline, printed
last, ``slider_to_prediction_ms``: the electrode designer's median milliseconds from a slider key press to the
updated prediction in the page (``--repeats`` presses, warm), with a bare ipywidgets echo slider measured in the
same run for reference (``echo_slider_ms``). Also the maxima over the apps: ``cold_feedback_s_max``,
``cold_status_s_max``, ``cold_first_render_s_max``. Exits 1 if it could not measure.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser import CHROMIUM, free_port, launch, wait_for_server  # noqa: E402

#: The page says it is loading: Voilà's own progress line ("Running ...", "Reading 2 of 3") or the app's status.
LOADING = """() => !!document.querySelector('.battlab-app-status')
    || /Running|Reading|Executing/.test(document.body ? document.body.innerText : '')"""
ECHO = '''import ipywidgets as w
s = w.IntSlider(value=3)
out = w.HTML("3")
out.add_class("echo")
s.observe(lambda ch: setattr(out, "value", str(ch["new"])), "value")
box = w.VBox([s, out])
box.add_class("battlab-app-ready")
box'''


def _kernel_pid(kernel_id: str) -> int | None:
    """The process whose command line names the kernel's connection file ``kernel-<id>.json``."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"kernel-{kernel_id}.json".encode() in cmdline.read_bytes():
                return int(cmdline.parent.name)
        except OSError:
            continue
    return None


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def _served_kernel_peak_mb(page) -> float:
    found = re.search(r'"kernelId"\s*:\s*"([0-9a-f-]{36})"', page.content())
    if not found:
        raise RuntimeError("the page names no kernel id")
    pid = _kernel_pid(found.group(1))
    if pid is None:
        raise RuntimeError(f"no process for kernel {found.group(1)}")
    return _peak_mb(pid)


def _median_latency(page, handle: str, readout: str, repeats: int) -> float:
    times = []
    page.locator(handle).first.focus()
    for i in range(repeats):
        before = page.inner_text(readout)
        t0 = time.perf_counter()
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        page.wait_for_function("([sel, b]) => document.querySelector(sel).innerText !== b", arg=[readout, before],
                               timeout=30_000, polling="raf")
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _voila(folder: Path, runs: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """Voilà as ``battlab app`` starts it (:func:`battlab.apps.voila_command`), on a free port."""
    from battlab.apps import voila_command

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(BATTLAB_RUNS=str(runs), PYBAMM_DISABLE_TELEMETRY="true")
    proc = subprocess.Popen(voila_command(folder, port), cwd=folder, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> int:
    from battlab.apps import APPS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--apps", nargs="+", default=list(APPS), choices=list(APPS))
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"could not measure: {CHROMIUM} missing (make test installs it)", file=sys.stderr)
        return 1
    import nbformat
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="battlab-apps-bench-"))
    apps_dir = work / "widgets"
    apps_dir.mkdir()
    for name in args.apps:
        (apps_dir / f"{name}.ipynb").symlink_to(ROOT / "widgets" / f"{name}.ipynb")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(ECHO)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, apps_dir / "echo.ipynb")
    figures: dict[str, float] = {}
    try:
        with sync_playwright() as p:
            browser = launch(p)
            for name in args.apps:  # cold: a new server, no pre-heated kernel, nothing built yet
                t0 = time.perf_counter()
                runs = work / f"runs-{name}"  # nothing built by an earlier app
                runs.mkdir()
                proc, base = _voila(apps_dir, runs, work / f"voila-{name}.log")
                try:
                    wait_for_server(base + "/", proc, work / f"voila-{name}.log")
                    figures[f"{name}_cold_server_s"] = time.perf_counter() - t0
                    page = browser.new_page()
                    t_nav = time.perf_counter()
                    page.goto(f"{base}/voila/render/{name}.ipynb", wait_until="commit", timeout=60_000)
                    page.wait_for_function(LOADING, timeout=300_000, polling=50)
                    figures[f"{name}_cold_feedback_s"] = time.perf_counter() - t_nav
                    page.wait_for_selector(".battlab-app-status", state="visible", timeout=300_000)
                    figures[f"{name}_cold_status_s"] = time.perf_counter() - t_nav
                    page.wait_for_selector(".battlab-app-ready", timeout=300_000)
                    figures[f"{name}_cold_first_render_s"] = time.perf_counter() - t0
                    page.wait_for_selector(".battlab-status-ready", timeout=300_000)
                    figures[f"{name}_cold_all_loaded_s"] = time.perf_counter() - t0
                    figures[f"{name}_kernel_peak_mb"] = _served_kernel_peak_mb(page)
                    page.close()
                finally:
                    _stop(proc)
            # warm: the same server, a second visitor (modules in the OS cache, the default model built)
            runs = work / "runs-shap_explorer" if "shap_explorer" in args.apps else runs
            proc, base = _voila(apps_dir, runs, work / "voila-warm.log")
            try:
                wait_for_server(base + "/", proc, work / "voila-warm.log")
                for name in [*args.apps, "echo"]:
                    for visit in ("first", "second"):
                        page = browser.new_page()
                        t0 = time.perf_counter()
                        page.goto(f"{base}/voila/render/{name}.ipynb", wait_until="commit", timeout=60_000)
                        page.wait_for_selector(".battlab-app-ready", timeout=300_000)
                        page.wait_for_selector(".battlab-status-ready, .echo", timeout=300_000)
                        if visit == "first":
                            page.close()
                            continue
                        if name == "echo":
                            figures["echo_slider_ms"] = _median_latency(page, ".noUi-handle", ".echo", args.repeats)
                        else:
                            figures[f"{name}_warm_first_render_s"] = time.perf_counter() - t0
                        if name == "electrode_designer":
                            figures["slider_ms"] = _median_latency(page, ".noUi-handle", ".battlab-prediction",
                                                                   args.repeats)
                        page.close()
            finally:
                _stop(proc)
            browser.close()
    except Exception as exc:  # no figure without a measurement
        print(f"could not measure: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for kind in ("feedback", "status"):
        figures[f"cold_{kind}_s_max"] = max(v for k, v in figures.items() if k.endswith(f"_cold_{kind}_s"))
    figures["cold_first_render_s_max"] = max(v for k, v in figures.items() if k.endswith("_cold_first_render_s"))
    for name, value in figures.items():
        if name != "slider_ms":
            print(f"{name}: {value:.2f}")
    if "slider_ms" in figures:
        print(f"slider_to_prediction_ms: {figures['slider_ms']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
