"""``NextExperiments``: the experiments done so far in, the next batch to run out, ranked, with the reasons.

Upload the table of experiments done so far (CSV/TSV/Excel/parquet: settings or features and a measured result
column) and either a candidate pool (a table of candidates with the same feature columns) or use a process window
(the range of each setting in the done table, editable, with optional constraints); pick the target column,
maximize or minimize, the acquisition, the batch size; press *Suggest*: a ranked table of the next experiments
with the predicted mean, its uncertainty and the reason (the SHAP contributions of the model's mean prediction),
downloadable as CSV. Rows kept aside (a missing or non-numeric result, a non-numeric feature cell, a done row
outside the window, a candidate already measured, a malformed line) are listed with the reason.

A table of compositions (a formula column such as ``formula`` or ``composition`` and a measured value, e.g. a
conductivity in S/cm) with a candidate table of formulas is curated and featurized by the workflow's own steps
(composition features; the info line says which); the features list then offers only extra table columns.

Nothing here plans or explains: that is :func:`battlab.plan.recommend.next_experiments` (on
:class:`battlab.plan.Campaign`); files are read by :func:`battlab.widgets.data.read_upload`.

Example
-------
>>> app = NextExperiments()
>>> app.load_example()                        # 12 designs of the virtual pilot line, 288 candidates
>>> app.target.value, app.state
('specific_energy_Wh_kg', 'READY')
>>> app.suggest_button.click()
>>> app.state, len(app.suggestions), "reason" in app.suggestions.columns
('SUCCESS', 5, True)
>>> app.load_done_bytes("notes.xlsx", b"not a spreadsheet")
>>> app.state, app.message.split(":")[0]
('FAIL', 'notes.xlsx')
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as tl

from battlab.curate import find_formula_column
from battlab.errors import BattlabError
from battlab.plan.acquisition import ACQUISITIONS
from battlab.plan.recommend import Recommendation, example_tables, next_experiments, window_from_table
from battlab.tables import RawTable
from battlab.widgets.data import (
    ACTIVE,
    FAIL,
    INIT,
    READY,
    STATES,
    SUCCESS,
    TABLE_SUFFIXES,
    MessagesMixin,
    _safe_name,
    csv_download_html,
    frame_html,
    numeric_columns,
    on_upload,
    read_upload,
    show_state_as_class,
)

__all__ = ["NextExperiments"]

POOL, WINDOW = "candidate pool", "process window"
_ACQUISITION_LABELS = {"ei": "expected improvement", "ucb": "upper confidence bound", "ts": "Thompson sampling",
                       "explore": "pure exploration", "mean": "pure exploitation (mean)"}
_MODELS = (("extra trees, calibrated uncertainty", "et-group"), ("extra trees", "et"), ("random forest", "rf"),
           ("Gaussian process", "gp"), ("bagged LightGBM", "lgbm"))
_NONE = "(none)"
_SHOWN = ["rank", "mean", "std", "reason"]


class NextExperiments(MessagesMixin, w.VBox):
    """Which experiments next: upload what was done, and candidates or a window; get a ranked batch with reasons.

    Parameters
    ----------
    max_rows : int
        Rows of a table shown (the download has them all).

    Attributes (traitlets)
    ----------------------
    done, candidates : DataFrame or None
        The tables as read (cells as in the file; ``candidates`` None for a process window).
    recommendation : Recommendation or None
        The last answer (:func:`battlab.plan.recommend.next_experiments`).
    suggestions, set_aside : DataFrame or None
        Its ranked suggestions and the rows kept aside with the reason.
    state : Enum
        ``INIT`` (no done table), ``READY`` (tables loaded), ``ACTIVE`` (suggesting), ``SUCCESS``, ``FAIL``.
    message : Unicode
        The last message shown (errors included).

    Notes
    -----
    CSS classes for browser tests: ``battlab-next-experiments`` (with the state: ``battlab-next-experiments-init``,
    ``-ready``, ``-active``, ``-success``, ``-fail``), ``battlab-next-done-upload`` (also ``battlab-data-uploader``),
    ``battlab-next-pool-upload``, ``battlab-next-space``, ``battlab-next-target``, ``battlab-next-suggest``,
    ``battlab-next-message``, ``battlab-next-tables``, ``battlab-next-suggestions``, ``battlab-next-download``,
    ``battlab-next-set-aside``, ``battlab-next-window``.
    """

    done = tl.Instance(pd.DataFrame, allow_none=True)
    candidates = tl.Instance(pd.DataFrame, allow_none=True)
    recommendation = tl.Instance(Recommendation, allow_none=True)
    suggestions = tl.Instance(pd.DataFrame, allow_none=True)
    set_aside = tl.Instance(pd.DataFrame, allow_none=True)
    state = tl.Enum(STATES, default_value=INIT)
    message = tl.Unicode("")

    def __init__(self, *, max_rows: int = 30, **kwargs: Any) -> None:
        self.max_rows = max_rows
        self._done_source: RawTable | pd.DataFrame | None = None
        self._done_name = ""
        self._pool_source: RawTable | pd.DataFrame | None = None
        self._pool_name = ""
        self._kinds: dict[str, str] = {}
        accept = ",".join(TABLE_SUFFIXES)
        self.done_upload = w.FileUpload(accept=accept, multiple=False, description="Experiments done",
                                        layout=w.Layout(width="190px"))
        self.done_upload.observe(on_upload(self.done_upload, self.load_done_bytes, "done.csv"), names="value")
        done_box = w.HBox([self.done_upload, w.HTML("<small>CSV/Excel: settings, features or formulas, and a "
                                                    "measured result column</small>")])
        done_box.add_class("battlab-next-done-upload").add_class("battlab-data-uploader")
        self.example_button = w.Button(description="Load example", icon="table")
        self.example_button.on_click(lambda _: self.load_example())
        self.space = w.ToggleButtons(options=[POOL, WINDOW], value=POOL, description="choose from")
        self.space.add_class("battlab-next-space")
        self.pool_upload = w.FileUpload(accept=accept, multiple=False, description="Candidates",
                                        layout=w.Layout(width="190px"))
        self.pool_upload.observe(on_upload(self.pool_upload, self.load_candidates_bytes, "candidates.csv"),
                                 names="value")
        self.pool_box = w.HBox([self.pool_upload, w.HTML("<small>a table of candidates with the same feature "
                                                         "columns, or with formulas</small>")])
        self.pool_box.add_class("battlab-next-pool-upload")
        self.bounds = w.VBox()
        self.constraints = w.Textarea(placeholder="one constraint a line, e.g. solid_content + binder <= 0.8",
                                      description="constraints", layout=w.Layout(width="520px", height="60px"))
        self.window_box = w.VBox([w.HTML("<small>bounds of each setting (from the done table's range; edit "
                                         "them)</small>"), self.bounds, self.constraints],
                                 layout=w.Layout(display="none"))
        self.window_box.add_class("battlab-next-window")
        self.tables_info = w.HTML().add_class("battlab-next-tables")
        self.target = w.Dropdown(description="target", options=[], layout=w.Layout(width="360px"))
        self.target.add_class("battlab-next-target")
        self.direction = w.ToggleButtons(options=["maximize", "minimize"], value="maximize")
        self.features = w.SelectMultiple(description="features", options=[], rows=5, layout=w.Layout(width="360px"))
        self.id_column = w.Dropdown(description="id column", options=[_NONE], value=_NONE,
                                    layout=w.Layout(width="260px"))
        self.acquisition = w.Dropdown(description="acquisition", value="ei", layout=w.Layout(width="320px"),
                                      options=[(f"{_ACQUISITION_LABELS.get(a, a)} ({a})", a) for a in ACQUISITIONS])
        self.model = w.Dropdown(description="model", options=list(_MODELS), value="et-group",
                                layout=w.Layout(width="360px"))
        self.batch_size = w.BoundedIntText(value=5, min=1, max=100, description="batch size",
                                           layout=w.Layout(width="160px"))
        self.seed = w.IntText(value=0, description="seed", layout=w.Layout(width="140px"))
        self.suggest_button = w.Button(description="Suggest", button_style="primary", icon="flask", disabled=True)
        self.suggest_button.add_class("battlab-next-suggest")
        self.suggest_button.on_click(lambda _: self.suggest())
        self.status = w.HTML().add_class("battlab-next-message")
        self.result = w.HTML().add_class("battlab-next-suggestions")
        self.download = w.HTML().add_class("battlab-next-download")
        self.aside_view = w.HTML().add_class("battlab-next-set-aside")
        self.space.observe(self._on_space, names="value")
        self.target.observe(lambda _: self._refresh_features(), names="value")
        self.features.observe(lambda _: self._refresh_bounds(), names="value")
        super().__init__([
            w.HTML("<b>Next experiments</b>: what to measure next, from what was measured so far"),
            w.HBox([done_box, self.example_button]), self.space, self.pool_box, self.window_box, self.tables_info,
            w.HBox([self.target, self.direction]), w.HBox([self.features, self.id_column]),
            w.HBox([self.acquisition, self.model]), w.HBox([self.batch_size, self.seed, self.suggest_button]),
            self.status, self.result, self.download, self.aside_view], **kwargs)
        self.add_class("battlab-next-experiments")
        show_state_as_class(self, "battlab-next-experiments")
        self._say("upload the table of experiments done so far (or load the example)", "info")

    # ------------------------------------------------------------------ inputs
    def _read(self, name: str, content: bytes | memoryview) -> RawTable | None:
        try:
            return read_upload(name, content)
        except BattlabError as exc:
            self._fail(str(exc))
        except Exception as exc:  # shown in the app, the kernel keeps running
            self._fail(f"{_safe_name(name)}: cannot read the file ({type(exc).__name__}: {exc})")
        return None

    def load_done_bytes(self, name: str, content: bytes | memoryview) -> None:
        """Read an uploaded table of experiments done (what the upload button does); errors are shown."""
        table = self._read(name, content)
        if table is not None:
            self.load_done(table, _safe_name(name))

    def load_candidates_bytes(self, name: str, content: bytes | memoryview) -> None:
        """Read an uploaded candidate table (what the second upload button does); errors are shown."""
        table = self._read(name, content)
        if table is not None:
            self.load_candidates(table, _safe_name(name))

    def load_done(self, table: RawTable | pd.DataFrame | str | Path, name: str | None = None) -> None:
        """Use a table (or a file) as the experiments done so far."""
        table, name = self._source(table, name, "done table")
        if table is None:
            return
        self._done_source, self._done_name = table, name
        self.done = table.data if isinstance(table, RawTable) else table
        self._clear()
        self._refresh_columns()

    def load_candidates(self, table: RawTable | pd.DataFrame | str | Path, name: str | None = None) -> None:
        """Use a table (or a file) as the candidate pool, and switch to it."""
        table, name = self._source(table, name, "candidate table")
        if table is None:
            return
        self._pool_source, self._pool_name = table, name
        self.candidates = table.data if isinstance(table, RawTable) else table
        self.space.value = POOL
        self._clear()
        self._refresh_columns()

    def _source(self, table: Any, name: str | None, what: str) -> tuple[Any, str]:
        if isinstance(table, (str, Path)):
            path = Path(table)
            try:
                content = path.read_bytes()
            except OSError as exc:
                self._fail(f"{path.name}: cannot open the file ({exc.strerror or exc})")
                return None, ""
            return self._read(path.name, content), path.name
        return table, name or what

    def load_example(self) -> None:
        """The shipped example: 12 simulated designs done, the other 288 as candidates, specific energy as target
        (:func:`battlab.plan.recommend.example_tables`)."""
        done, pool = example_tables()
        self.load_done(done, "example: 12 designs of the virtual pilot line")
        self.load_candidates(pool, "example: 288 candidate designs")
        self.target.value = "specific_energy_Wh_kg"
        self.id_column.value = "design"

    def _on_space(self, change: dict[str, Any]) -> None:
        pool = change["new"] == POOL
        self.pool_box.layout.display = None if pool else "none"
        self.window_box.layout.display = "none" if pool else None
        self._clear()
        self._refresh_columns()

    # ------------------------------------------------------------------ choices from the tables
    def _pool_data(self) -> pd.DataFrame | None:
        return self.candidates if self.space.value == POOL else None

    def _refresh_columns(self) -> None:
        if self.done is None:
            return
        numeric = numeric_columns(self.done)
        old = self.target.value
        self.target.options = numeric
        if old in numeric:
            self.target.value = old
        elif numeric:
            self.target.value = numeric[-1]  # the result is usually the last column
        pool = self._pool_data()
        formula = self.formula_column()
        text = [str(c) for c in self.done.columns if str(c) not in numeric and str(c) != formula
                and (pool is None or c in pool.columns)]
        self.id_column.options = [_NONE, *text]
        self.id_column.value = text[0] if text else _NONE
        self._refresh_features()
        self._show_tables()
        ready = pool is not None or self.space.value == WINDOW
        self.suggest_button.disabled = not (ready and numeric)
        self.state = READY if ready and numeric else INIT
        self._say("ready: press Suggest" if ready and numeric else
                  "the done table has no numeric column" if not numeric else
                  "upload a candidate table, or choose a process window", "info")

    def formula_column(self) -> str | None:
        """The done table's formula column when suggesting from a candidate pool (:func:`find_formula_column`):
        the model's features are then the featurize step's composition features of the formulas."""
        if self.done is None or self.space.value != POOL:
            return None
        return find_formula_column([str(c) for c in self.done.columns])

    def _show_tables(self, recipe: str = "") -> None:
        """The info line: the tables loaded and, for formulas, where the features come from."""
        if self.done is None:
            return
        pool = self._pool_data()
        lines = [f"<b>done</b>: {html.escape(self._done_name)} ({len(self.done)} rows, {len(self.done.columns)} "
                 "columns)"]
        if self.space.value == POOL:
            lines.append(f"<b>candidates</b>: {html.escape(self._pool_name)} ({len(pool)} rows)" if pool is not None
                         else "<b>candidates</b>: upload a candidate table (or choose a process window)")
        formula = self.formula_column()
        if formula:
            lines.append(f"<b>features</b>: formula column {html.escape(formula)!r} found: "
                         + (html.escape(recipe) if recipe else "composition features of the formulas, computed by "
                            "the featurize step when you press Suggest")
                         + ("" if recipe else " (and the table columns selected as features)"))
        self.tables_info.value = "<br>".join(lines)

    def _refresh_features(self) -> None:
        if self.done is None:
            return
        target = self.target.value
        options = [c for c in numeric_columns(self.done) if c != target]
        pool = self._pool_data()
        chosen = [] if self.formula_column() else [c for c in options if pool is None or c in pool.columns]
        self.features.options = options
        self.features.value = tuple(chosen)
        self._refresh_bounds()

    def _refresh_bounds(self) -> None:
        self.bounds.children = ()
        if self.done is None or self.space.value != WINDOW or not self.features.value:
            return
        try:
            spec = window_from_table(self._done_source, list(self.features.value), self.target.value)
        except BattlabError as exc:
            self._fail(str(exc))
            return
        rows = []
        self._kinds = {}
        for name, bounds in spec.items():
            self._kinds[name] = bounds[2] if len(bounds) == 3 else "float"
            lo = w.FloatText(value=bounds[0], layout=w.Layout(width="120px"))
            hi = w.FloatText(value=bounds[1], layout=w.Layout(width="120px"))
            rows.append(w.HBox([w.Label(name, layout=w.Layout(width="220px")), lo, w.Label("to"), hi]))
        self.bounds.children = rows

    def window(self) -> dict[str, tuple]:
        """The process window as edited: ``{setting: (low, high)}`` (``(low, high, "int")`` for integers)."""
        out: dict[str, tuple] = {}
        for row in self.bounds.children:
            name, lo, _, hi = row.children
            kind = self._kinds.get(name.value, "float")
            out[name.value] = (lo.value, hi.value, kind) if kind == "int" else (lo.value, hi.value)
        return out

    # ------------------------------------------------------------------ suggesting
    def suggest(self) -> Recommendation | None:
        """Suggest the next batch with the choices shown (the Suggest button); errors are shown, not raised."""
        self._clear()
        if self._done_source is None:
            self._fail("upload the table of experiments done so far first")
            return None
        pool = self.space.value == POOL
        if pool and self._pool_source is None:
            self._fail("upload a candidate table first (or choose a process window)")
            return None
        self.state = ACTIVE
        self._say("suggesting…", "info")
        try:
            rec = next_experiments(
                self._done_source, self._pool_source if pool else self.window(), self.target.value,
                features=list(self.features.value) if pool else None,
                id_column=None if self.id_column.value == _NONE else self.id_column.value,
                constraints=[c.strip() for c in self.constraints.value.splitlines() if c.strip()],
                maximize=self.direction.value == "maximize", acquisition=self.acquisition.value,
                batch_size=int(self.batch_size.value), model=self.model.value, seed=int(self.seed.value),
                progress=lambda fraction, text: self._say(f"{text}…", "info"))
        except BattlabError as exc:
            self._fail(str(exc))
            return None
        except Exception as exc:  # shown in the app, the kernel keeps running
            self._fail(f"could not suggest ({type(exc).__name__}: {exc})")
            return None
        self._show(rec)
        return rec

    def _show(self, rec: Recommendation) -> None:
        self.recommendation = rec
        self.suggestions, self.set_aside = rec.suggestions, rec.set_aside
        table = rec.suggestions
        design = [c for c in table.columns if c not in (*_SHOWN, "design_id", "acquisition")]
        shown = table[["rank", *design, "mean", "std", "reason"]]
        self.result.value = (f"<p><b>{len(table)} next experiment(s)</b>, best first: predicted "
                             f"{html.escape(rec.target)} (<b>mean</b> ± <b>std</b>) and the reason: the features "
                             "that move the model's prediction most from its average over the done experiments "
                             f"({rec.base_value:.4g}), with their contribution ({html.escape(rec.explainer)})</p>"
                             + frame_html(shown, self.max_rows, "battlab-next-table"))
        self.download.value = csv_download_html(table, "next_experiments.csv", "Download the suggestions (CSV)")
        if len(rec.set_aside):
            self.aside_view.value = (f"<p><b>{len(rec.set_aside)} row(s) kept aside</b>, with the reason (not used, "
                                     "not lost):</p>" + frame_html(rec.set_aside, self.max_rows, "battlab-next-aside"))
        if rec.recipe is not None:
            extra = len(rec.recipe.process_columns)
            self._show_tables(f"{len(rec.recipe.features) - extra} composition features ({rec.recipe.preset} preset) "
                              f"of the featurize step's recipe, beside {extra} table column(s); the model learns "
                              f"{rec.target}")
        self.state = SUCCESS
        self._say(rec.summary(), "success")

    def _clear(self) -> None:
        self.recommendation = self.suggestions = self.set_aside = None
        self.result.value = self.download.value = self.aside_view.value = ""
        if self.state in (SUCCESS, FAIL) and self.done is not None:
            self.state = READY
