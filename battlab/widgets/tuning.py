"""``TuningMonitor``: run the tune step (:func:`battlab.steps.tune`) in a background thread, watch the
trials live, stop it.

The study runs in a worker thread (the page never freezes); after every trial an optuna callback
updates the traitlets (``n_trials_done``, ``best_value``), the progress bar and the best-so-far plot
(rendered to PNG: no pyplot in the thread). Stop asks the study to stop after the running trial; the
best model found so far is then refitted and evaluated as usual (``stopped`` is True).

Example
-------
>>> from battlab.widgets.tuning import TuningMonitor
>>> mon = TuningMonitor(table, features=["x"], target="y", models=("ridge",), n_trials=3)  # doctest: +SKIP
>>> mon.start(); mon.join(timeout=60)  # doctest: +SKIP
>>> mon.state, mon.n_trials_done, mon.result.best_name  # doctest: +SKIP
('SUCCESS', 3, 'ridge')

In an app, follow a :class:`~battlab.widgets.features.FeatureExplorer`:

>>> for a, b in (("table", "table"), ("info", "info"), ("model_target", "target")):  # doctest: +SKIP
...     dlink((explorer, a), (mon, b))
"""

from __future__ import annotations

import html
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets as tl

from battlab.errors import BattlabError
from battlab.widgets.data import ACTIVE, INIT, READY, SUCCESS, MessagesMixin, figure_png, frame_html

__all__ = ["TuningMonitor"]

#: Models offered by default (fast enough for an app; ``MODELS`` has the rest).
APP_MODELS = ("ridge", "knn", "lgbm", "rf", "svr")


class TuningMonitor(MessagesMixin, w.VBox):
    """Start/stop an optuna study over the model zoo and watch it: trials, best CV MAE so far, result.

    Parameters
    ----------
    table : DataFrame, optional
        Feature table (also a traitlet).
    info : DataFrame, optional
        Feature info; its ``feature`` column (``kept`` ones when present) gives the features.
    features : list of str, optional
        The features, when there is no ``info`` (overrides it).
    target : str, optional
        Column to learn (also a traitlet; e.g. ``FeatureExplorer.model_target``).
    models : sequence of str
        Models the user can pick (all selected at the start).
    n_trials : int
        Trials of the study (editable in the widget).
    timeout : float, optional
        Seconds for the search.
    out_dir : str or Path, optional
        Where the study (``study.db``) and, on success, the model folder (``model.joblib``,
        ``intervals.joblib``, ``model_card.json``...) are written; default: a new temporary folder.
    storage, study_name : str, optional
        Optuna storage URL and study name (default: SQLite in ``out_dir``, a new study per Start).
    split, coverage, intervals, seed
        Passed to :func:`battlab.steps.tune` (``split``: a spec such as ``random`` or ``group:COLUMN``;
        default: the feature set's).

    Attributes (traitlets)
    ----------------------
    table, info : DataFrame or None ; target : Unicode or None
        Inputs.
    feature_set : FeatureSet or None
        Input instead of ``table``/``info``: a feature set (``dlink`` from ``FeatureExplorer.feature_set``).
    state : Unicode
        ``INIT`` (no data), ``READY``, ``ACTIVE`` (running), ``SUCCESS`` or ``FAIL``.
    n_trials_done : Int
        Finished trials (complete or pruned) of the study.
    best_value : Float or None
        Best cross-validated MAE so far.
    stopped : Bool
        The last run was stopped by the user (``result`` then holds the best model found so far).
    result : TunedModel or None
    model_dir : Unicode
        Folder the result was saved to (``dlink`` to ``Predictor.model_dir``).
    message : Unicode

    CSS classes: ``battlab-tuning-status``, ``battlab-tuning-progress``, ``battlab-tuning-plot``,
    ``battlab-tuning-result``, ``battlab-tuning-start``, ``battlab-tuning-stop``.
    """

    table = tl.Instance(pd.DataFrame, allow_none=True)
    info = tl.Instance(pd.DataFrame, allow_none=True)
    target = tl.Unicode(None, allow_none=True)
    state = tl.Unicode(INIT)
    n_trials_done = tl.Int(0)
    best_value = tl.Float(None, allow_none=True)
    stopped = tl.Bool(False)
    result = tl.Instance("battlab.steps.TunedModel", allow_none=True)
    feature_set = tl.Instance("battlab.steps.FeatureSet", allow_none=True)
    model_dir = tl.Unicode("")
    message = tl.Unicode("")

    def __init__(self, table: pd.DataFrame | None = None, info: pd.DataFrame | None = None, *,
                 features: list[str] | None = None, target: str | None = None,
                 models: tuple[str, ...] | list[str] = APP_MODELS, n_trials: int = 20,
                 timeout: float | None = None, out_dir: str | Path | None = None, storage: str | None = None,
                 study_name: str | None = None, split: Any = None, coverage: float = 0.9, intervals: bool = True,
                 seed: int = 0, **kwargs: Any) -> None:
        self._features = list(features) if features is not None else None
        self.timeout, self.out_dir, self.storage, self.study_name = timeout, out_dir, storage, study_name
        self.split = split
        self.coverage, self.intervals, self.seed = coverage, intervals, seed
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._trials: list[tuple[int, float, str]] = []
        self._last_draw = 0.0
        style = {"description_width": "80px"}
        self.target_dropdown = w.Dropdown(description="Target", options=[], style=style,
                                          layout=w.Layout(width="420px"))
        self.target_dropdown.observe(self._on_target_dropdown, names="value")
        self.models_select = w.SelectMultiple(description="Models", options=list(models), value=list(models),
                                              rows=min(6, max(2, len(models))), style=style)
        self.trials_input = w.BoundedIntText(value=n_trials, min=1, max=10_000, description="Trials",
                                             style=style, layout=w.Layout(width="180px"))
        self.start_button = w.Button(description="Start", button_style="primary", icon="play", disabled=True)
        self.start_button.add_class("battlab-tuning-start")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.stop_button.add_class("battlab-tuning-stop")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.progress = w.IntProgress(value=0, min=0, max=n_trials, description="0 trials")
        self.progress.add_class("battlab-tuning-progress")
        self.status = w.HTML().add_class("battlab-tuning-status")
        self.plot = w.Image(format="png", layout=w.Layout(max_width="760px"))
        self.plot.add_class("battlab-tuning-plot")
        self.result_view = w.HTML().add_class("battlab-tuning-result")
        super().__init__([w.HTML("<b>Tuning</b> (optuna, cross-validated MAE on a grouped split)"),
                          self.target_dropdown, w.HBox([self.models_select, self.trials_input]),
                          w.HBox([self.start_button, self.stop_button, self.progress]), self.status,
                          self.plot, self.result_view], **kwargs)
        self.add_class("battlab-tuning-monitor")
        self.info = info
        self.table = table
        if target is not None:
            self.target = target

    # ------------------------------------------------------------------ inputs
    def features(self) -> list[str]:
        """The model inputs: ``features`` given, else ``info``'s (kept) features present in the table."""
        if self._features is not None:
            return list(self._features)
        info, table = self.info, self.table
        if info is None or table is None or "feature" not in info:
            return []
        sel = info[info["kept"].astype(bool)] if "kept" in info else info
        return [f for f in sel["feature"] if f in table.columns]

    @tl.observe("feature_set")
    def _on_feature_set(self, change: dict[str, Any]) -> None:
        fs = change["new"]
        if fs is not None:
            self.info, self.table = fs.info, fs.table
            if fs.model_target:
                self.target = fs.model_target

    @tl.observe("table", "info")
    def _on_table(self, change: dict[str, Any]) -> None:
        table = self.table
        feats = set(self.features())
        options = [] if table is None else [
            c for c in table.columns if c not in feats and c != "row" and pd.api.types.is_numeric_dtype(table[c])
            and not str(c).endswith(("_n", "_std", "_std_log10"))]
        target = self.target
        self.target_dropdown.options = options
        if target in options:
            self.target_dropdown.value = target
        elif options:
            self.target_dropdown.value = options[0]
        self._update_ready()

    @tl.observe("target")
    def _on_target(self, change: dict[str, Any]) -> None:
        if change["new"] in self.target_dropdown.options and self.target_dropdown.value != change["new"]:
            self.target_dropdown.value = change["new"]
        self._update_ready()

    def _on_target_dropdown(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.target = change["new"]

    def _update_ready(self) -> None:
        if self.state == ACTIVE:
            return
        ok = self.table is not None and bool(self.target) and self.target in self.table and bool(self.features())
        self.start_button.disabled = not ok
        self.state = READY if ok else INIT
        if ok:
            self._say(f"{len(self.table)} rows, {len(self.features())} features, target {self.target!r}: "
                      "press Start.", "info")

    # ------------------------------------------------------------------ run
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start tuning in a background thread; returns False (and shows why) when it cannot start."""
        if self.running:
            self._say("tuning is already running", "info")
            return False
        table, target, features = self.table, self.target, self.features()
        models = tuple(self.models_select.value)
        problem = ("no feature table" if table is None else
                   "choose a target column" if not target or target not in table else
                   "no features" if not features else
                   "choose at least one model" if not models else
                   f"the target {target!r} has fewer than 10 values" if table[target].notna().sum() < 10 else "")
        if problem:
            self._fail(f"cannot start: {problem}")
            return False
        n_trials = int(self.trials_input.value)
        out = Path(self.out_dir) if self.out_dir else Path(tempfile.mkdtemp(prefix="battlab-tune-"))
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._fail(f"cannot start: cannot create {out} ({exc.strerror or exc})")
            return False
        storage = self.storage or f"sqlite:///{(out / 'study.db').resolve()}"
        study_name = self.study_name or f"battlab-app-{uuid.uuid4().hex[:8]}"
        self._stop.clear()
        self._trials = []
        self.result, self.best_value, self.n_trials_done, self.stopped = None, None, 0, False
        self.progress.max, self.progress.value, self.progress.bar_style = n_trials, 0, "info"
        self.progress.description = "0 trials"
        self.plot.value, self.result_view.value = b"", ""
        self.state = ACTIVE
        self.start_button.disabled, self.stop_button.disabled = True, False
        self._say(f"tuning {', '.join(models)}: {n_trials} trials on {len(table)} rows x {len(features)} "
                  f"features…", "info")
        kwargs = dict(models=models, n_trials=n_trials, timeout=self.timeout, storage=storage,
                      study_name=study_name, out_dir=out, coverage=self.coverage, intervals=self.intervals,
                      seed=self.seed, progress=False, split=self.split)
        self._thread = threading.Thread(target=self._run, args=(self._feature_set(), features, target, kwargs, out),
                                        name="battlab-tuning", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop after the running trial (the best model so far is then refitted and evaluated)."""
        if not self.running:
            return
        self._stop.set()
        self.stop_button.disabled = True
        self._say("stopping after the running trial…", "info")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread (tests, scripts); True when it has finished."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _on_trial(self, study: Any, trial: Any) -> None:
        """optuna callback, in the worker thread, after each trial."""
        try:
            self._update_progress(study, trial)
        except Exception:  # a display problem must not end the study
            pass
        if self._stop.is_set():
            study.stop()

    def _update_progress(self, study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        if trial.state == TrialState.COMPLETE and trial.value is not None:
            self._trials.append((trial.number, float(trial.value), str(trial.params.get("model", ""))))
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        best = min((v for _, v, _ in self._trials), default=None)
        self.progress.value = min(done, self.progress.max)
        self.progress.description = f"{done} trials"
        self.best_value = best
        self.n_trials_done = done  # observers (tests, apps) may call stop() here
        if best is not None:
            self._say(f"trial {trial.number} ({trial.params.get('model', '?')}): "
                      + (f"CV MAE {trial.value:.4g}" if trial.value is not None else trial.state.name.lower())
                      + f" — best so far {best:.4g}", "info")
        now = time.monotonic()
        if now - self._last_draw > 0.5:  # redraw at most twice a second
            self._last_draw = now
            self._draw()

    def _feature_set(self) -> Any:
        """The tune step's input: the linked feature set, else one made of the table's feature columns."""
        from battlab.steps import FeatureSet

        fs = self.feature_set
        if fs is not None and fs.table is self.table:
            return fs
        info = self.info
        feats = self.features()
        if info is not None and "feature" in info:
            info = info[info["feature"].isin(feats)]
        return FeatureSet.from_columns(self.table, feats, info=info)

    def _run(self, fs: Any, features: list[str], target: str, kwargs: dict[str, Any], out: Path) -> None:
        try:
            from battlab.steps import tune

            result = tune(fs, target=target, columns=features, callbacks=[self._on_trial], **kwargs)
            result.save(out)
        except BattlabError as exc:
            self._finish_fail(str(exc))
            return
        except Exception as exc:  # a thread's exception would vanish: show it
            self._finish_fail(f"tuning failed ({type(exc).__name__}: {exc})")
            return
        self.stopped = self._stop.is_set()
        self._draw()
        self._show_result(result)
        self.model_dir = str(out)
        self.result = result
        self.progress.bar_style = "success"
        self.start_button.disabled, self.stop_button.disabled = False, True
        done = self.n_trials_done
        self._say((f"stopped after {done} trials; " if self.stopped else f"{done} trials; ")
                  + f"best {result.best_name}: CV MAE {result.metrics['mae_mean']:.4g} ± "
                  f"{result.metrics['mae_std']:.2g} ({result.split}); saved to {out}", "success")
        self.state = SUCCESS  # last: whoever waits on the state finds everything set

    def _finish_fail(self, text: str) -> None:
        if self._stop.is_set():
            text = f"stopped before a trial completed: {text}" if "no trial completed" in text else text
            self.stopped = True
        self.progress.bar_style = "danger"
        self.start_button.disabled, self.stop_button.disabled = False, True
        self._fail(text)

    # ------------------------------------------------------------------ views
    def _draw(self) -> None:
        if not self._trials:
            return
        try:
            self.plot.value = figure_png(self._history_figure())
        except Exception:  # the plot is a view; the run goes on
            pass

    def _history_figure(self):
        from matplotlib.figure import Figure

        trials = sorted(self._trials)
        fig = Figure(figsize=(7.5, 3.2))
        ax = fig.subplots()
        names = sorted({m for _, _, m in trials})
        cmap = __import__("matplotlib").colormaps["tab10"]
        for i, name in enumerate(names):
            pts = [(n, v) for n, v, m in trials if m == name]
            ax.scatter(*zip(*pts, strict=True), s=20, label=name, color=cmap(i % 10))
        best = np.minimum.accumulate([v for _, v, _ in trials])
        ax.step([n for n, _, _ in trials], best, where="post", color="k", lw=1.5, label="best so far")
        ax.set(xlabel="trial", ylabel="CV MAE")
        ax.legend(fontsize=8, ncol=3)
        fig.tight_layout()
        return fig

    def _show_result(self, result: Any) -> None:
        m = result.metrics
        cov = result.coverage
        rows = [("model", result.best_name), ("split", result.split),
                ("CV MAE", f"{m['mae_mean']:.4g} ± {m['mae_std']:.2g}"),
                ("CV R²", f"{m['r2_mean']:.3f} ± {m['r2_std']:.2g}"),
                ("dummy MAE (predicts the mean)", f"{m['dummy_mae_mean']:.4g}")]
        if np.isfinite(cov.get("empirical", np.nan)):
            rows.append((f"interval coverage (target {cov['target']:.0%}, held out)", f"{cov['empirical']:.0%}"))
        table = "".join(f"<tr><td>{html.escape(k)}</td><td><b>{html.escape(str(v))}</b></td></tr>" for k, v in rows)
        comparison = result.comparison[["model", "trials", "best_cv_mae", "fold_mae_std"]]
        self.result_view.value = f"<table>{table}</table>" + frame_html(comparison, 20, "battlab-comparison")

