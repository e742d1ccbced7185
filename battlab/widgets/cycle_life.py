"""``CycleLifePredictor``: a cycler file (or a cell of the Severson dataset) in, its predicted cycle life out.

Upload a cycler file (any format :func:`battlab.cycling.read.read_cycler_file` reads, binary or text, found from
the content: the upload accepts every extension) or pick a cell of the dataset the model was trained on (the
severson2019 subset shipped with battlab works offline), and see

- the cell's capacity fade and its dQ(V) curve drawn over the training cells (coloured by their cycle life),
- the predicted cycle life with its conformal interval (:meth:`battlab.cycling.models.CycleLifeModel.predict`),
- when the model folder has a fade-curve model (``trajectory.joblib``: ``battlab cycling fit CELLS`` writes one), the
  predicted capacity curve with its band beside the observed capacity and the life read off it
  (:func:`battlab.cycling.forecast.forecast_cells`); otherwise the predicted life and its interval drawn on the
  end-of-life threshold line of the capacity plot, and the reason there is no curve (the default model, fitted on
  the severson2019 subset whose capacities stop at cycle 100, has none),
- the features that drove it: SHAP values from :func:`battlab.explain.explain` against the training cells
  (:func:`cell_contributions`), in log10 cycles and as a factor on the life.

Nothing here is science: reading, curves, features, checks, the model and its intervals are battlab.cycling's,
the attribution is battlab.explain's. A cell with fewer cycles than the model needs shows battlab.cycling's own
message (which cycles it needs, how many the file has); a file that cannot be read shows its one-line error; the
kernel keeps running either way.

The model is a folder written by :meth:`~battlab.cycling.models.CycleLifeModel.save` (notebook 06, ``battlab
cycling fit``, :func:`battlab.apps.default_cycle_life_model`). **Loading it unpickles a joblib file, which runs
code**: the widget only loads the folder its caller passes (``model_dir``, trusted), never an uploaded file.

Example
-------
>>> import tempfile
>>> from battlab.cycling.curves import load_severson_subset
>>> from battlab.cycling.models import fit_cycle_life
>>> subset = load_severson_subset()
>>> folder = fit_cycle_life(subset, models=("ridge",), n_trials=2, progress=False).save(tempfile.mkdtemp())["model"]
>>> app = CycleLifePredictor(folder.parent, dataset=subset)
>>> app.state
'READY'
>>> row = app.pick("test1_cell3")
>>> app.state, bool(row["interval_low"] < row["predicted_cycle_life"] < row["interval_high"])
('SUCCESS', True)
>>> app.load_bytes("notes.txt", b"hello")
>>> app.state, app.message.split(" (")[0]
('FAIL', 'notes.txt: unknown cycler file format')
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets as tl

from battlab.cycling.curves import DischargeCurves, _ranges, curves_from_cell, load_severson, load_severson_subset
from battlab.cycling.forecast import (
    Forecast,
    curves_capacity_table,
    describe_forecast,
    forecast_cells,
    life_threshold,
    load_trajectory,
)
from battlab.cycling.formats import REGISTRY
from battlab.cycling.models import CycleLifeModel
from battlab.cycling.read import CellData, read_bytes, safe_file_name
from battlab.errors import BattlabError
from battlab.widgets.data import (
    ACTIVE,
    INIT,
    READY,
    STATES,
    SUCCESS,
    MessagesMixin,
    figure_png,
    frame_html,
    message_html,
    on_upload,
    show_state_as_class,
)

__all__ = ["CycleLifePredictor", "cell_contributions", "read_cycler_upload"]

#: What the upload button accepts: every file (formats are found from the content, not the extension: .mpr, .mpt,
#: .nda, .ndax, .res, .xlsx, .xls, .h5, .txt, .csv, Maccor's .0NN channel files ...).
UPLOAD_ACCEPT = ""


_upload_name = safe_file_name


def read_cycler_upload(name: str, content: bytes | memoryview) -> CellData:
    """Read uploaded bytes as a cycler file: :func:`battlab.cycling.read.read_bytes` (a temporary file with the
    original name, spaces and brackets kept, read by :func:`~battlab.cycling.read.read_cycler_file` with the format
    found from the content, then deleted).

    Raises :class:`~battlab.errors.BattlabError` naming the uploaded file, not the temporary path.

    Example
    -------
    >>> text = ("cycle,time_s,current_A,voltage_V\\n1,0,1,3.4\\n1,1800,1,3.5\\n"
    ...         "1,3600,-1,3.3\\n1,5400,-1,3.2\\n1,7200,-1,3.0\\n")
    >>> cell = read_cycler_upload("../cell.csv", text.encode())
    >>> cell.name, cell.source, cell.usable_cycles
    ('cell', 'cell.csv', [1])
    """
    return read_bytes(content, name)


def cell_contributions(model: CycleLifeModel, curves: DischargeCurves) -> tuple[pd.DataFrame, float, str]:
    """Why the model predicts what it predicts for the cell(s) of ``curves``: SHAP values (log10 cycles).

    :func:`battlab.explain.explain` runs on the model's training cells (``model.train_table``) together with
    these cells, so that its references (the mean of the rows for linear models, k-means centres of the rows for
    kernels and neighbours; trees need none) are the training cells, not the one cell. Returns, for the first
    cell, one row per feature (largest ``|SHAP|`` first: ``feature``, ``property``, ``family``, ``unit``, ``value``,
    ``training_median``, ``shap``, ``factor`` = 10**shap, the factor on the cycle life), the base value (log10
    cycles) and the explainer used. ``base + shap.sum()`` is the model's log10 prediction.

    Raises :class:`~battlab.errors.BattlabError` when the cell lacks cycles the model needs, or the model was saved
    without its training table.

    Example
    -------
    >>> from battlab.cycling.curves import load_severson_subset
    >>> from battlab.cycling.models import fit_cycle_life
    >>> subset = load_severson_subset()
    >>> model = fit_cycle_life(subset, models=("ridge",), n_trials=2, progress=False)
    >>> cell = subset.select(subset.cells["cell"] == "test2_cell1")
    >>> table, base, explainer = cell_contributions(model, cell)
    >>> predicted = model.predict(cell)["predicted_cycle_life"].iloc[0]
    >>> bool(np.isclose(10 ** (base + table["shap"].sum()), predicted)), explainer.split(":")[0]
    (True, 'linear SHAP')
    """
    from battlab.explain import explain

    if model.train_table is None or not set(model.features) <= set(model.train_table.columns):
        raise BattlabError("this cycle-life model was saved without its training table: no attribution")
    X = model.feature_table(curves)[model.features].reset_index(drop=True)
    train = model.train_table[model.features].reset_index(drop=True)
    rows = pd.concat([train, X], ignore_index=True).astype(float)
    info = model.info[[c for c in ("feature", "family", "property") if c in model.info]]
    ex = explain(model.model, rows, info=info, target="log10 cycle life", seed=0)
    shap = ex.values.iloc[len(train)]
    meta = model.info.set_index("feature").reindex(model.features)
    out = pd.DataFrame({"feature": model.features,
                        "property": meta.get("property", pd.Series("", index=meta.index)).fillna("").to_numpy(),
                        "family": meta.get("family", pd.Series("", index=meta.index)).fillna("").to_numpy(),
                        "unit": meta.get("unit", pd.Series("", index=meta.index)).fillna("").to_numpy(),
                        "value": X.iloc[0].to_numpy(dtype=float),
                        "training_median": train.median().to_numpy(dtype=float),
                        "shap": shap.to_numpy(dtype=float)})
    out["factor"] = 10 ** out["shap"]
    out = out.reindex(out["shap"].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)
    return out, float(ex.base_value), ex.explainer


def _grids_match(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and bool(np.allclose(a, b))


class CycleLifePredictor(MessagesMixin, w.VBox):
    """Predict a cell's cycle life from its first cycles: upload a cycler file or pick a dataset cell.

    Parameters
    ----------
    model_dir : str or Path, optional
        Trusted folder written by :meth:`~battlab.cycling.models.CycleLifeModel.save` (also a traitlet, e.g.
        set by an app once :func:`battlab.apps.default_cycle_life_model` has found or built one). Loading
        unpickles it: never point it at files from untrusted sources.
    dataset : DischargeCurves, optional
        Cells to pick from and to draw the training cells of (its ``split == "train"`` cells). Default: the
        severson2019 subset shipped with battlab when the model is on its voltage grid, else the full
        severson2019 curves (downloaded once, checked by sha256).
    n_drivers : int
        Features shown as the drivers of a prediction (all are in ``contributions``).

    Attributes (traitlets)
    ----------------------
    model_dir : Unicode
    cell : CellData or None
        The uploaded cell as read (None for a dataset cell).
    curves : DischargeCurves or None
        The discharge curves of the cell shown, on the model's voltage grid.
    prediction : DataFrame or None
        One row: ``cell``, ``predicted_cycle_life``, ``interval_low``, ``interval_high`` (and ``cycle_life``, the
        observed life, for a dataset cell); None when the cell could not be predicted.
    forecast : DataFrame or None
        The predicted fade curve of the cell (``cell``, ``cycle``, ``predicted_capacity_Ah``, ``low``, ``high``) when
        the model folder has a fade-curve model; ``forecast_life`` its life read off the curve
        (:func:`battlab.cycling.forecast.forecast_cells`).
    fade_mode : Unicode
        What the capacity plot shows of the prediction: ``"curve"`` (the fade curve with its band), ``"threshold"``
        (the predicted life and interval on the threshold line: no fade-curve model, or the cell got no curve) or
        ``""`` (nothing predicted yet).
    contributions : DataFrame or None
        Per-feature SHAP values of the prediction (:func:`cell_contributions`); ``base_value`` (log10 cycles) and
        ``explainer`` say where they start from and how they were computed.
    state : Enum
        ``INIT`` (no model yet), ``READY`` (model loaded), ``ACTIVE`` (reading or predicting), ``SUCCESS``
        (prediction shown), ``FAIL`` (the message says why).
    message : Unicode
        The last message shown (errors included).

    Notes
    -----
    CSS classes for browser tests: ``battlab-cycle-life``, ``battlab-cycle-upload`` (also ``battlab-data-uploader``:
    the upload box), ``battlab-cycle-cell-picker``, ``battlab-cycle-predict-cell``, ``battlab-cycle-life-model``,
    ``battlab-cycle-life-message``, ``battlab-cycle-life-prediction``, ``battlab-cycle-life-cell``,
    ``battlab-cycle-life-plots``, ``battlab-cycle-life-forecast``, ``battlab-cycle-life-drivers``; the widget's state
    as ``battlab-cycle-life-init``,
    ``-ready``, ``-active``, ``-success`` or ``-fail``.
    """

    model_dir = tl.Unicode("")
    cell = tl.Instance(CellData, allow_none=True)
    curves = tl.Instance(DischargeCurves, allow_none=True)
    prediction = tl.Instance(pd.DataFrame, allow_none=True)
    contributions = tl.Instance(pd.DataFrame, allow_none=True)
    forecast = tl.Instance(pd.DataFrame, allow_none=True)
    forecast_life = tl.Instance(pd.DataFrame, allow_none=True)
    fade_mode = tl.Unicode("")
    base_value = tl.Float(float("nan"))
    explainer = tl.Unicode("")
    state = tl.Enum(STATES, default_value=INIT)
    message = tl.Unicode("")

    def __init__(self, model_dir: str | Path | None = None, *, dataset: DischargeCurves | None = None,
                 n_drivers: int = 6, **kwargs: Any) -> None:
        self.n_drivers = n_drivers
        self._given_dataset = dataset
        self.model: CycleLifeModel | None = None
        self.trajectory: Any = None  # the model folder's fade-curve model (TrajectoryModel), if any
        self.trajectory_note = ""  # why there is none
        self.dataset: DischargeCurves | None = None
        self.train_curves: DischargeCurves | None = None
        self._pending: tuple[str, Any] | None = None  # what to predict once the model is loaded
        self.model_info = w.HTML("<p>loading the cycle-life model…</p>").add_class("battlab-cycle-life-model")
        self.upload = w.FileUpload(accept=UPLOAD_ACCEPT, multiple=False, description="Upload cycler file",
                                   layout=w.Layout(width="190px"))
        self.upload.observe(on_upload(self.upload, self.load_bytes), names="value")
        formats = "; ".join(html.escape(f.label) for f in REGISTRY)
        upload_box = w.HBox([self.upload, w.HTML(f"<small>Any cycler file battlab reads, binary or text, found from "
                                                 f"its content: {formats}</small>")])
        # battlab-data-uploader: the class the apps' browser tests find an upload button by (tests/test_apps_browser)
        upload_box.add_class("battlab-cycle-upload").add_class("battlab-data-uploader")
        self.picker = w.Dropdown(description="or a cell", options=[], layout=w.Layout(width="460px"),
                                 style={"description_width": "70px"})
        self.picker.add_class("battlab-cycle-cell-picker")
        self.predict_button = w.Button(description="Predict this cell", button_style="primary", icon="bolt",
                                       disabled=True)
        self.predict_button.add_class("battlab-cycle-predict-cell")
        self.predict_button.on_click(lambda _: self.pick(self.picker.value))
        self.status = w.HTML().add_class("battlab-cycle-life-message")
        self.result = w.HTML().add_class("battlab-cycle-life-prediction")
        self.cell_info = w.HTML().add_class("battlab-cycle-life-cell")
        self.fade_plot = w.Image(format="png", layout=w.Layout(max_width="49%", display="none"))
        self.dq_plot = w.Image(format="png", layout=w.Layout(max_width="49%", display="none"))
        plots = w.HBox([self.fade_plot, self.dq_plot]).add_class("battlab-cycle-life-plots")
        self.drivers = w.HTML().add_class("battlab-cycle-life-drivers")
        self.forecast_info = w.HTML().add_class("battlab-cycle-life-forecast")
        super().__init__([w.HTML("<b>Cycle life</b>: predicted from a cell's first cycles (Severson et al. 2019)"),
                          self.model_info, upload_box, w.HBox([self.picker, self.predict_button]), self.status,
                          self.result, self.forecast_info, plots, self.drivers, self.cell_info], **kwargs)
        self.add_class("battlab-cycle-life")
        show_state_as_class(self, "battlab-cycle-life")
        if model_dir is not None:
            self.model_dir = str(model_dir)

    # ------------------------------------------------------------------ model
    @tl.observe("model_dir")
    def _on_model_dir(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.load_model(change["new"])

    def load_model(self, model_dir: str | Path) -> bool:
        """Load a saved cycle-life model (trusted folder: unpickling runs code) and the cells to pick from;
        errors are shown, not raised."""
        folder = Path(model_dir)
        self.model = None
        self.predict_button.disabled = True
        try:
            model = CycleLifeModel.load(folder)
        except BattlabError as exc:
            self._fail(str(exc))
            return False
        except Exception as exc:  # shown in the app, the kernel keeps running
            self._fail(f"{folder}: cannot load the cycle-life model ({type(exc).__name__}: {exc})")
            return False
        self.model = model
        try:
            self.trajectory, self.trajectory_note = load_trajectory(folder)
        except Exception as exc:  # a fade curve is a nicety: the life is still predicted
            self.trajectory, self.trajectory_note = None, f"cannot load its fade-curve model ({exc})"
        if self.trajectory is not None:
            t = self.trajectory
            fade_note = (f"Fade curve: forecast from the first {t.n_cycles} cycles to cycle {int(t.grid_[-1])} with a "
                         f"{t.coverage:.0%} band, learned from {len(t.cells_)} cells' whole capacity curves.")
        else:
            fade_note = (f"No fade-curve forecast ({self.trajectory_note}): the predicted life and its interval are "
                         "drawn on the end-of-life threshold line of the capacity plot.")
        dataset_note = self._load_dataset(model)
        name = model.card.get("model", {}).get("name", type(model.model).__name__)
        n_train = model.card.get("cycle_life", {}).get("train_cells", len(model.train_table)
                                                       if model.train_table is not None else "?")
        self.model_info.value = (
            f"<p>{html.escape(str(name))} from the first <b>{model.n_cycles}</b> cycles, tuned on {n_train} training "
            f"cells; a cell needs a usable discharge in cycles <b>{_ranges(model.required_cycles())}</b>; "
            f"{model.coverage:.0%} conformal intervals. {html.escape(dataset_note)}</p>"
            f"<p class='battlab-cycle-life-fade-model'>{html.escape(fade_note)}</p>")
        self.state = READY
        self._say(f"model loaded from {folder.name or folder}: upload a cycler file or pick a cell", "info")
        pending, self._pending = self._pending, None
        if pending is not None:
            kind, what = pending
            if kind == "cell":
                self.show_cell(what)
            else:
                self.pick(what)
        return True

    def _load_dataset(self, model: CycleLifeModel) -> str:
        """The cells to pick from and draw: the given dataset, else the shipped subset or the full curves,
        whichever is on the model's voltage grid."""
        self.dataset = self.train_curves = None
        candidates = [self._given_dataset] if self._given_dataset is not None else [load_severson_subset, load_severson]
        why = ""
        for candidate in candidates:
            try:
                curves = candidate() if callable(candidate) else candidate
            except Exception as exc:  # no network, no cache: the picker stays empty, uploads still work
                why = str(exc) if isinstance(exc, BattlabError) else f"{type(exc).__name__}: {exc}"
                continue
            if _grids_match(curves.voltages, model.voltages):
                self.dataset = curves
                break
            why = f"the dataset's curves are on {len(curves.voltages)} voltages, the model's on {len(model.voltages)}"
        if self.dataset is None:
            self.picker.options = []
            return f"No dataset cells to pick from or to draw ({why}); uploads still work."
        cells = self.dataset.cells
        split = cells["split"] if "split" in cells else pd.Series("", index=cells.index)
        lives = self.dataset.y
        self.picker.options = [(f"{c} ({s}, observed life {life:.0f} cycles)" if np.isfinite(life) else f"{c} ({s})",
                                str(c)) for c, s, life in zip(cells["cell"], split, lives, strict=True)]
        first_test = [str(c) for c, s in zip(cells["cell"], split, strict=True) if s != "train"]
        self.picker.value = first_test[0] if first_test else str(cells["cell"].iloc[0])
        is_train = (split == "train").to_numpy()
        self.train_curves = self.dataset.select(is_train) if is_train.any() else self.dataset
        self.predict_button.disabled = False
        return (f"Cells to pick: {len(cells)} of {self.dataset.source or 'the dataset'}; the plots draw its "
                f"{len(self.train_curves)} training cells.")

    # ------------------------------------------------------------------ inputs
    def load_bytes(self, name: str, content: bytes | memoryview) -> None:
        """Read an uploaded cycler file (what the upload button does) and predict its cell; errors are shown."""
        self._clear_outputs()
        self.state = ACTIVE
        safe = _upload_name(name)
        self._say(f"reading {safe} ({len(bytes(content)) / 1e6:.2g} MB)…", "info")
        try:
            cell = read_cycler_upload(name, content)
        except BattlabError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:  # anything else is shown too: the kernel keeps running
            self._fail(f"{safe}: cannot read the file ({type(exc).__name__}: {exc})")
            return
        self.show_cell(cell)

    def load_file(self, path: str | Path) -> None:
        """Read a cycler file from disk (as an upload would be); errors are shown, not raised."""
        path = Path(path)
        try:
            content = path.read_bytes()
        except OSError as exc:
            self._clear_outputs()
            self._fail(f"{path.name}: cannot open the file ({exc.strerror or exc})")
            return
        self.load_bytes(path.name, content)

    def show_cell(self, cell: CellData) -> pd.Series | None:
        """Show a cell read from a cycler file: its cycles, its curves over the training cells, its prediction."""
        self._clear_outputs()
        self.cell = cell
        unusable = cell.unusable
        self.cell_info.value = (f"<p><b>File</b>: {html.escape(cell.summary())}</p>"
                                + (f"<p>Cycles that cannot be used, with the reason:</p>"
                                   f"{frame_html(unusable, 20, 'battlab-cycle-unusable')}" if len(unusable) else ""))
        if self.model is None:
            self._pending = ("cell", cell)
            self.state = INIT
            self._say(f"{cell.name}: read ({len(cell.usable_cycles)} usable cycles); the prediction comes when the "
                      "model is loaded", "info")
            return None
        try:
            curves = curves_from_cell(cell, self.model.voltages)
        except Exception as exc:
            self._fail(f"{cell.name}: cannot make its discharge curves ({type(exc).__name__}: {exc})")
            return None
        return self._predict(curves, cell.name, self._voltage_note(cell))

    def pick(self, name: str) -> pd.Series | None:
        """Predict a cell of the dataset by its id (the picker and its button); errors are shown."""
        if self.model is None:
            self._pending = ("pick", name)
            self._say("the prediction comes when the model is loaded", "info")
            return None
        if self.dataset is None:
            self._fail("no dataset cells to pick from: upload a cycler file")
            return None
        mask = self.dataset.cells["cell"].astype(str).to_numpy() == str(name)
        if not mask.any():
            self._fail(f"no cell {name!r} in the dataset")
            return None
        self._clear_outputs()
        self.cell_info.value = ""
        return self._predict(self.dataset.select(mask), str(name), "")

    # ------------------------------------------------------------------ prediction
    def _predict(self, curves: DischargeCurves, label: str, note: str) -> pd.Series | None:
        model = self.model
        assert model is not None
        self.curves = curves
        self.state = ACTIVE
        self._say(f"{label}: featurizing and predicting…", "info")
        self._draw(curves, label)  # the curves are worth seeing even when the cell cannot be predicted
        try:
            pred = model.predict(curves)
        except BattlabError as exc:  # e.g. too few cycles: which cycles the model needs, how many the cell has
            self._fail(str(exc))
            return None
        except Exception as exc:
            self._fail(f"{label}: prediction failed ({type(exc).__name__}: {exc})")
            return None
        row = pred.iloc[0]
        if bool(row.get("refused", False)):  # outside what the model knows (issue 22 item 7): no number
            self._fail(f"{label}: no prediction, the cell is outside what the model knows "
                       f"({row['domain_warnings']})")
            return None
        self.prediction = pred
        self.result.value = self._result_html(row, label, curves)
        self._draw_fade(curves, label, row)
        try:
            table, base, explainer = cell_contributions(model, curves)
        except Exception as exc:  # a reason is a nicety: never lose the prediction for it
            self.drivers.value = message_html(f"(no attribution: {exc})", "info")
        else:
            self.base_value, self.explainer = base, explainer
            self.contributions = table
            self.drivers.value = self._drivers_html(table, base, explainer)
        self.state = SUCCESS
        self._say(f"{label}: predicted" + (f" ({note})" if note else ""), "success")
        return row

    def _result_html(self, row: pd.Series, label: str, curves: DischargeCurves) -> str:
        text = f"<b>{html.escape(label)}</b>: predicted cycle life <b>{row['predicted_cycle_life']:,.0f} cycles</b>"
        if "interval_low" in row:
            text += (f" <span class='battlab-cycle-life-interval'>({self.model.coverage:.0%} interval "
                     f"{row['interval_low']:,.0f} – {row['interval_high']:,.0f} cycles)</span>")
        observed = row.get("cycle_life", np.nan)
        if np.isfinite(observed):
            split = str(curves.cells["split"].iloc[0]) if "split" in curves.cells else ""
            seen = " (a training cell: the model has seen it)" if split == "train" else \
                f" ({split} cell: not used for any choice of the model)" if split else ""
            text += f"; observed <b>{observed:,.0f}</b>{html.escape(seen)}"
        warn = ""
        if not bool(row.get("in_domain", True)):
            warn = ("<p class='battlab-cycle-life-domain'>warning: outside the training cells ("
                    f"{html.escape(str(row['domain_warnings']))}); the prediction is bounded to the training lives' "
                    "range and less reliable</p>")
        return f"<p style='font-size:1.15em'>{text}</p>{warn}"

    def _drivers_html(self, table: pd.DataFrame, base: float, explainer: str) -> str:
        shown = table.head(self.n_drivers)
        scale = max(float(np.abs(shown["shap"]).max()), 1e-12)
        rows = []
        for r in shown.itertuples(index=False):
            side = "higher" if r.value > r.training_median else "lower" if r.value < r.training_median else "same"
            colour = "#2a7a2a" if r.shap > 0 else "#b00020"
            bar = (f"<div style='display:inline-block;height:10px;width:{int(120 * abs(r.shap) / scale)}px;"
                   f"background:{colour}'></div>")
            rows.append(f"<tr><td>{html.escape(r.feature)}</td><td>{html.escape(str(r.property))}</td>"
                        f"<td style='text-align:right'>{r.value:.4g}</td>"
                        f"<td>{side} than the training median ({r.training_median:.4g})</td>"
                        f"<td style='text-align:right'>×{r.factor:.3g}</td><td>{bar}</td></tr>")
        return (f"<p><b>What drove it</b> (SHAP values, {html.escape(explainer)}): starting from "
                f"{10 ** base:,.0f} cycles, the model's typical life over the training cells, each feature "
                "multiplies the predicted life by its factor</p>"
                "<table class='battlab-cycle-drivers'><tr><th>feature</th><th>what</th><th>this cell</th><th></th>"
                "<th>factor</th><th></th></tr>" + "".join(rows) + "</table>")

    def _voltage_note(self, cell: CellData) -> str:
        """A warning when the cell discharges outside the voltage window of the model's training cells."""
        d = cell.data.loc[cell.data["current_A"] < 0, "voltage_V"].dropna()
        if not len(d) or self.model is None:
            return ""
        lo, hi = float(np.min(self.model.voltages)), float(np.max(self.model.voltages))
        if d.min() > lo + 0.2 or d.max() < hi - 0.2 or d.max() > hi + 0.5:
            return (f"note: the training cells discharge from {hi:.1f} V to {lo:.1f} V, this cell between "
                    f"{d.max():.2f} V and {d.min():.2f} V: the prediction is outside what the model has seen")
        return ""

    # ------------------------------------------------------------------ plots
    def _fade_figure(self, curves: DischargeCurves, label: str, **predicted: Any) -> Any:
        """The capacity plot: the cell's observed capacity (over the training cells when there are some) and what
        ``predicted`` holds (:func:`battlab.cycling.plots.plot_cell_fade`)."""
        from battlab.cycling.plots import plot_capacity_fade, plot_cell_fade

        observed = curves_capacity_table(curves)
        if len(observed):  # as plot_capacity_fade, logging glitches are not drawn
            observed = observed[observed["discharge_capacity_Ah"] <= 1.5 * observed["discharge_capacity_Ah"].median()]
        ax = None
        if self.train_curves is not None:
            ax = plot_capacity_fade(self.train_curves).axes[0]
        fig = plot_cell_fade(observed, label, ax=ax, **predicted)
        if self.train_curves is not None:
            fig.axes[0].set_title(f"{fig.axes[0].get_title()} (over the {len(self.train_curves)} training cells)",
                                  fontsize=9)
        if not len(observed):
            fig.axes[0].set_title(f"{fig.axes[0].get_title()}\n({label} has no usable discharge capacity)", fontsize=9)
        return fig

    def _draw_fade(self, curves: DischargeCurves, label: str, row: pd.Series) -> None:
        """After a prediction: the fade curve with its band (a fade-curve model), else the predicted life and its
        interval on the threshold line; the text beside says which and why."""
        observed = curves_capacity_table(curves)
        fc: Forecast | None = None
        if self.trajectory is not None:
            try:
                fc = forecast_cells(self.trajectory, observed)
            except Exception as exc:  # shown, never raised: the life is predicted already
                self.forecast_info.value = message_html(f"(no fade curve: {type(exc).__name__}: {exc})", "info")
        try:
            if fc is not None and len(fc.curve):
                self.forecast, self.forecast_life, self.fade_mode = fc.curve, fc.life, "curve"
                life = fc.life.iloc[0]
                fig = self._fade_figure(curves, label, curve=fc.curve, life=life, coverage=fc.coverage,
                                        threshold_Ah=float(life["threshold_Ah"]))
                self.forecast_info.value = "<p>" + html.escape(describe_forecast(fc, str(life["cell"]))).replace(
                    "\n", "<br>") + "</p>"
            else:
                threshold, what = life_threshold(self.model, observed)
                fig = self._fade_figure(curves, label, prediction=row, threshold_Ah=threshold, threshold_note=what,
                                        coverage=self.model.coverage)
                self.fade_mode = "threshold"
                why = describe_forecast(fc, label) if fc is not None and len(fc.set_aside) else \
                    "no fade-curve forecast with this model (why: above)" if self.trajectory is None else ""
                if why:
                    self.forecast_info.value = (f"<p>{html.escape(why)}; the capacity plot shows the predicted life "
                                                "and its interval on the end-of-life threshold line.</p>")
            self.fade_plot.value, self.fade_plot.layout.display = figure_png(fig), None
        except Exception as exc:  # a figure is a nicety: never lose the prediction for it
            self.cell_info.value += message_html(f"(no fade figure: {type(exc).__name__}: {exc})", "info")

    def _draw(self, curves: DischargeCurves, label: str) -> None:
        from battlab.cycling.plots import plot_delta_q

        cell = curves[0]
        try:
            self.fade_plot.value, self.fade_plot.layout.display = figure_png(self._fade_figure(curves, label)), None
            if self.train_curves is None:
                return
            dq = self.model.featurizers[0] if self.model is not None else None
            a, b = (dq.cycle_a, dq.cycle_b) if dq is not None and hasattr(dq, "cycle_a") else (100, 10)
            fig = plot_delta_q(self.train_curves, a, b)
            ax = fig.axes[0]
            if a in cell.cycles and b in cell.cycles:
                ax.plot(curves.voltages, cell.curve(a) - cell.curve(b), color="#d62728", lw=2.5, label=label)
                ax.legend(loc="lower left", fontsize=8)
            else:
                ax.set_title(f"{ax.get_title()}\n({label} has no discharge curve of cycle "
                             f"{' or '.join(str(c) for c in (a, b) if c not in cell.cycles)})", fontsize=9)
            self.dq_plot.value, self.dq_plot.layout.display = figure_png(fig), None
        except Exception as exc:  # a figure is a nicety: never lose the prediction for it
            self.fade_plot.layout.display = self.dq_plot.layout.display = "none"
            self.cell_info.value += message_html(f"(no figure: {type(exc).__name__}: {exc})", "info")

    # ------------------------------------------------------------------ messages
    def _clear_outputs(self) -> None:
        self.cell = None
        self.curves = self.prediction = self.contributions = self.forecast = self.forecast_life = None
        self.fade_mode = ""
        self.base_value, self.explainer = float("nan"), ""
        self.result.value = self.drivers.value = self.forecast_info.value = ""
        for image in (self.fade_plot, self.dq_plot):
            image.value, image.layout.display = b"", "none"
