"""A status line for apps that take a while to start: the first thing a Voilà app shows.

A cold app imports the scientific stack, loads (or builds) a model and draws its first plot before it can
answer; that is 5-15 s on two cores. :class:`AppStatus` costs only ipywidgets, so an app's first cell can show it
at once and say what the app is doing, step by step, with the time each step took; when the app is ready the
line says so (or shows the error, and the kernel keeps running).

>>> status = AppStatus("predictor")
>>> status.state
'LOADING'
>>> with status.step("loading the model"):
...     pass
>>> status.log[-1].startswith("loading the model: done in")
True
>>> status.update(0.5, "tuning LightGBM: trial 2 of 4 done")  # the progress callback of a slow build
>>> status.bar.value, status.message
(50, 'tuning LightGBM: trial 2 of 4 done')
>>> status.done()
>>> status.state, "battlab-status-ready" in status._dom_classes
('READY', True)

A slow build (a model made on first use) can run behind an app that is already drawn and usable:

>>> status = AppStatus("predictor")
>>> built = []
>>> worker = status.in_background("building the model", lambda progress: "model/", on_done=built.append)
>>> worker.join()
>>> built
['model/']
>>> status.state, status.log[-1].startswith("building the model: done in")
('READY', True)
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import ipywidgets as w
import traitlets as tl

STATES = ("LOADING", "READY", "FAIL")


class AppStatus(w.VBox):
    """A one-line status widget with an explicit state (``LOADING`` -> ``READY`` or ``FAIL``).

    ``message`` is what the app is doing now; ``log`` what it has done, with seconds per step; ``update`` is a
    ``progress(fraction, text)`` callback (e.g. for :func:`battlab.apps.default_tune_dir`) that shows a progress
    bar. The CSS classes ``battlab-status-loading`` / ``-ready`` / ``-fail`` let browser tests and benchmarks wait
    for a state.
    """

    state = tl.Unicode("LOADING")
    message = tl.Unicode("")
    log = tl.List(tl.Unicode())

    def __init__(self, app: str, message: str = "starting the kernel and importing battlab", **kwargs) -> None:
        super().__init__(**kwargs)
        self.app = app
        self._t0 = time.perf_counter()
        self._line = w.HTML()
        self._line.add_class("battlab-status-line")
        self.bar = w.IntProgress(value=0, min=0, max=100, layout=w.Layout(width="420px", display="none"))
        self.bar.add_class("battlab-status-progress")
        self.children = [self._line, self.bar]
        self.add_class("battlab-app-status")
        self.observe(self._render, names=["state", "message", "log"])
        self.message = message
        self._render()

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        """Say ``message`` while the block runs; log it with its duration; on an error, show it and re-raise."""
        self.message = message
        t0 = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.fail(f"{message}: {type(exc).__name__}: {exc}")
            raise
        self.log = [*self.log, f"{message}: done in {time.perf_counter() - t0:.1f} s"]

    def in_background(self, message: str, build: Callable[[Callable[[float, str], None]], object], *,
                      on_done: Callable[[object], object],
                      done: str | Callable[[object], str] = "") -> threading.Thread:
        """Run ``build(progress)`` in a thread while the app is already on screen; hand its result to
        ``on_done`` (e.g. set a widget's ``model_dir``), then say ``done`` (a text, or made from the result).

        ``progress`` is :meth:`update`. An error is shown in the status line (state ``FAIL``), not lost.
        """

        def work() -> None:
            try:
                with self.step(message):
                    result = build(self.update)
                on_done(result)
                said = done(result) if callable(done) else done
            except Exception as exc:  # shown in the status line; the kernel and the app stay up
                if self.state != "FAIL":
                    self.fail(f"{message}: {type(exc).__name__}: {exc}")
                return
            self.done(said)

        thread = threading.Thread(target=work, name=f"battlab-{self.app}-build", daemon=True)
        thread.start()
        return thread

    def show(self, app: w.Widget) -> None:
        """Put ``app`` under the status line, in the output the first cell already drew (a new child of a view
        on screen), rather than as a new output of a later cell: Voilà's progressive rendering has been seen
        to leave a large new widget output (the SHAP explorer's plots) as a loading placeholder."""
        self.children = [*self.children, app]

    def update(self, fraction: float, text: str) -> None:
        """Progress of a long step: ``fraction`` done (0-1), ``text`` what is happening."""
        self.bar.layout.display = None
        self.bar.value = int(round(100 * min(max(fraction, 0.0), 1.0)))
        self.message = text

    def done(self, message: str = "") -> None:
        """The app is ready (``message``, e.g. where its model came from, stays visible)."""
        self.message = message or f"ready in {time.perf_counter() - self._t0:.1f} s"
        self.bar.layout.display = "none"
        self.state = "READY"

    def fail(self, message: str) -> None:
        self.message = message
        self.state = "FAIL"

    def _render(self, _change: object = None) -> None:
        if self.state not in STATES:
            raise tl.TraitError(f"state must be one of {STATES}, not {self.state!r}")
        for state in STATES:
            self.remove_class(f"battlab-status-{state.lower()}")
        self.add_class(f"battlab-status-{self.state.lower()}")
        icon = {"LOADING": "&#8987;", "READY": "&#10003;", "FAIL": "&#9888;"}[self.state]
        colour = {"LOADING": "#555", "READY": "#2a7a2a", "FAIL": "#b00020"}[self.state]
        done = "".join(f"<br><small>{html.escape(line)}</small>" for line in self.log) if self.state != "READY" else ""
        self._line.value = (f"<span style='color:{colour}'>{icon} <b>{html.escape(self.app)}</b>: "
                            f"{html.escape(self.message)}</span>{done}")
