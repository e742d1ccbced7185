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
>>> status.done()
>>> status.state, "battlab-status-ready" in status._dom_classes
('READY', True)
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from contextlib import contextmanager

import ipywidgets as w
import traitlets as tl

STATES = ("LOADING", "READY", "FAIL")


class AppStatus(w.VBox):
    """A one-line status widget with an explicit state (``LOADING`` -> ``READY`` or ``FAIL``).

    ``message`` is what the app is doing now; ``log`` what it has done, with seconds per step. The CSS classes
    ``battlab-status-loading`` / ``-ready`` / ``-fail`` let browser tests and benchmarks wait for a state.
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
        self.children = [self._line]
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

    def done(self, message: str = "") -> None:
        """The app is ready (``message``, e.g. where its model came from, stays visible)."""
        self.message = message or f"ready in {time.perf_counter() - self._t0:.1f} s"
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
