"""The Voilà apps in a real browser: time to first render, slider-to-prediction latency, kernel memory.

    python benchmarks/apps.py [--repeats 10]

Serves ``widgets/`` with Voilà on a free loopback port and drives Debian's Chromium with Playwright.
For each app: seconds from navigation to the app's ready marker (kernel start, imports, model load and
first drawing included), and the peak resident memory of its kernel (VmHWM; Binder allows 2 GB). For
ElectrodeDesigner: milliseconds from a slider key press to the updated prediction in the page (median of
``--repeats``), the headline, printed last as ``slider_to_prediction_ms``. The reference is the browser
round trip of a bare ipywidgets slider echoing its value (``echo_slider_ms``), measured in the same run.

Apps load ``runs/latest`` when ``make run`` has written it; otherwise the benchmark first builds the
small default model they fall back to (not timed). Exits 1 if it could not measure.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ECHO = '''import ipywidgets as w
s = w.IntSlider(value=3)
out = w.HTML("3")
out.add_class("echo")
s.observe(lambda ch: setattr(out, "value", str(ch["new"])), "value")
box = w.VBox([s, out])
box.add_class("battlab-app-ready")
box'''


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kernel_peak_mb(voila_pid: int) -> dict[int, float]:
    """Peak RSS (VmHWM) of each kernel process under the Voilà server."""
    peaks = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(voila_pid) and "VmHWM" in fields:
            peaks[int(status.parent.name)] = int(fields["VmHWM"].split()[0]) / 1024
    return peaks


def _cpu_seconds(voila_pid: int) -> tuple[int, float]:
    kernels = _kernel_peak_mb(voila_pid)
    total = 0.0
    for pid in kernels:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return len(kernels), total


def _wait_until_warm(voila_pid: int, n: int, deadline_s: float = 300) -> None:
    """Pre-heated kernels are ready when all exist and stop using CPU (their notebooks have run)."""
    deadline, last = time.monotonic() + deadline_s, (-1, -1.0)
    while time.monotonic() < deadline:
        count, cpu = _cpu_seconds(voila_pid)
        if count >= n and last[0] == count and cpu - last[1] < 0.05:
            return
        last = (count, cpu)
        time.sleep(2)
    raise RuntimeError("pre-heated kernels did not settle")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cold", dest="preheat", action="store_false",
                        help="no pre-heated kernels (battlab app pre-heats one per app)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"could not measure: {CHROMIUM} missing (make test installs it)", file=sys.stderr)
        return 1
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    from playwright.sync_api import sync_playwright

    from battlab.apps import APPS, default_explanation_dir, default_tune_dir

    default_tune_dir()  # build what the apps fall back to, outside the timed part
    default_explanation_dir()
    work = Path(tempfile.mkdtemp(prefix="battlab-apps-bench-"))
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(ECHO)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for name in APPS:
        (work / f"{name}.ipynb").symlink_to(ROOT / "widgets" / f"{name}.ipynb")
    nbformat.write(nb, work / "echo.ipynb")
    port = _port()
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    extra = ["--preheat_kernel=True", "--pool_size=1"] if args.preheat else []
    voila = subprocess.Popen([sys.executable, "-m", "voila", str(work), "--no-browser", f"--port={port}",
                              "--Voila.ip=127.0.0.1", *extra], cwd=ROOT / "widgets", env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("voila did not start") from None
                time.sleep(0.2)
        if args.preheat:
            _wait_until_warm(voila.pid, len(APPS) + 1)
        figures: dict[str, float] = {"preheated_kernels": float(args.preheat)}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync"])
            for name in [*APPS, "echo"]:
                page = browser.new_page()
                known = set(_kernel_peak_mb(voila.pid))
                t0 = time.perf_counter()
                page.goto(f"{base}/voila/render/{name}.ipynb", timeout=180_000)
                page.wait_for_selector(".battlab-app-ready", timeout=180_000)
                if name != "echo":
                    figures[f"{name}_first_render_s"] = time.perf_counter() - t0
                if name == "electrode_designer":
                    figures["slider_ms"] = _median_latency(page, ".noUi-handle", ".battlab-prediction", args.repeats)
                if name == "echo":
                    figures["echo_slider_ms"] = _median_latency(page, ".noUi-handle", ".echo", args.repeats)
                peaks = {pid: mb for pid, mb in _kernel_peak_mb(voila.pid).items() if pid not in known}
                if name != "echo" and peaks:
                    figures[f"{name}_kernel_peak_mb"] = max(peaks.values())
                page.close()
            browser.close()
    except Exception as exc:  # no figure without a measurement
        print(f"could not measure: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        voila.terminate()
        voila.wait(timeout=30)
    for name, value in figures.items():
        if name != "slider_ms":
            print(f"{name}: {value:.2f}")
    print(f"slider_to_prediction_ms: {figures['slider_ms']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
