"""``SohSorter``: a pulse-test table in, each cell's state of health with its interval and the pulses that drove it
out, and the reuse / repurpose / recycle sorting with threshold sliders.

Upload a pulse table (CSV/TSV/Excel/parquet: one row per pulse test, 21 voltages in PulseBat's layout under any
column names, a SOC column in %, a cell column when a cell was tested at several SOC levels) or use the synthetic
example, map the lab's column names to the model's (``U1=ocv, U2=v_chg_start, ...``: the names the table lacks), and
see

- the SOH of every cell with its interval (:meth:`battlab.health.SohModel.predict`, the median over a cell's rows),
  a SOC outside the model's trained range flagged as an extrapolation,
- the pulses that drove it (:meth:`~battlab.health.SohModel.drivers`: SHAP values from the training rows),
- the sorting (:func:`battlab.health.sort.sort_cells`): reuse, repurpose (second life), recycle, or retest when the
  interval straddles a threshold; the sliders move the thresholds and the counts, table and plot follow.

Nothing here is science: reading, features, model, intervals, attributions and sorting are battlab.health's. Bad input
(a column the model needs and the table lacks, a voltage or SOC that is not a number, a file that is not a table) is
one line in the app, naming the line of the file and the column; the table is kept, so a mapping can fix it, and the
kernel keeps running.

The model is a folder written by :meth:`battlab.health.SohModel.save` (notebook 08, ``battlab health fit``,
:func:`battlab.apps.default_soh_model`). **Loading it unpickles a joblib file, which runs code**: the widget only
loads the folder its caller passes (``model_dir``, trusted), never an uploaded file.

Example
-------
>>> import tempfile
>>> from battlab.health import example_pulse_table, fit_soh
>>> folder = fit_soh(example_pulse_table(6), models=("ridge",), n_trials=1).save(tempfile.mkdtemp())
>>> app = SohSorter(folder)
>>> app.state
'READY'
>>> app.use_example()
>>> app.state, len(app.sorting), sorted(app.counts)
('SUCCESS', 12, ['recycle', 'repurpose', 'retest', 'reuse'])
>>> app.reuse = 0.9  # a slider: the sorting follows
>>> app.sorting.attrs["reuse"]
0.9
>>> app.load_bytes("notes.txt", b"\\x00\\x01binary")
>>> app.state, app.message.startswith("notes.txt")
('FAIL', True)
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as tl

from battlab.errors import BattlabError
from battlab.health.io import read_pulse_bytes
from battlab.health.soh import SohModel
from battlab.health.sort import DEFAULT_REPURPOSE, DEFAULT_REUSE, decision_counts, sort_cells
from battlab.widgets.data import (
    ACTIVE,
    INIT,
    READY,
    STATES,
    SUCCESS,
    TABLE_SUFFIXES,
    MessagesMixin,
    csv_download_html,
    figure_png,
    frame_html,
    on_upload,
    show_state_as_class,
)

__all__ = ["SohSorter", "parse_mapping"]

EACH_ROW = "(each row is a cell)"


def parse_mapping(text: str) -> dict[str, str]:
    """``"U1=ocv, U2=v start"`` (commas or new lines) as ``{"U1": "ocv", "U2": "v start"}``; a one-line error for a
    part without ``=``.

    Example
    -------
    >>> parse_mapping("U1 = ocv\\nU2=v1, ")
    {'U1': 'ocv', 'U2': 'v1'}
    """
    out = {}
    for part in (p.strip() for p in text.replace("\n", ",").split(",")):
        if not part:
            continue
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not key or not value:
            raise BattlabError(f"column mapping {part!r}: give MODEL_NAME=YOUR_COLUMN pairs, e.g. U1=ocv")
        out[key] = value
    return out


class SohSorter(MessagesMixin, w.VBox):
    """SOH of retired cells from a pulse test, the pulses that drove it, and the reuse / repurpose / recycle sorting.

    Parameters
    ----------
    model_dir : str or Path, optional
        Trusted folder written by :meth:`~battlab.health.SohModel.save` (also a traitlet, e.g. set by an app once
        :func:`battlab.apps.default_soh_model` has found or built one). Loading unpickles it.
    n_drivers : int
        Pulse features shown per cell as the drivers of its estimate.

    Attributes
    ----------
    model_dir : Unicode
    table : DataFrame or None
        The pulse table as read (row labels: lines of the file), kept when it cannot be predicted.
    predictions : DataFrame or None
        ``table`` with ``SOH_pred``, ``SOH_low``, ``SOH_high``, ``soc_extrapolation``, ``note``.
    drivers : DataFrame or None
        Per cell, the top pulse features by absolute SHAP value (:meth:`~battlab.health.SohModel.drivers`).
    sorting : DataFrame or None
        One row per cell (:func:`~battlab.health.sort.sort_cells`); ``attrs`` hold the thresholds used.
    counts : Dict
        Cells per decision.
    reuse, repurpose : Float
        The thresholds (the sliders).
    state : Enum
        ``INIT`` (no model yet), ``READY`` (model loaded), ``ACTIVE`` (reading or predicting), ``SUCCESS`` (sorted),
        ``FAIL`` (the message says why).
    message : Unicode

    Notes
    -----
    The attributes are traitlets. CSS classes for browser tests: ``battlab-soh``, ``battlab-soh-model``,
    ``battlab-soh-upload`` (also
    ``battlab-data-uploader``), ``battlab-soh-example``, ``battlab-soh-columns``, ``battlab-soh-mapping``,
    ``battlab-soh-predict``, ``battlab-soh-message``, ``battlab-soh-result``, ``battlab-soh-counts``,
    ``battlab-soh-sorting-plot``, ``battlab-soh-table``, ``battlab-soh-drivers``, ``battlab-soh-download``,
    ``battlab-soh-reuse``, ``battlab-soh-repurpose``; the state as ``battlab-soh-init``, ``-ready``, ``-active``,
    ``-success`` or ``-fail``.
    """

    model_dir = tl.Unicode("")
    table = tl.Instance(pd.DataFrame, allow_none=True)
    predictions = tl.Instance(pd.DataFrame, allow_none=True)
    drivers = tl.Instance(pd.DataFrame, allow_none=True)
    sorting = tl.Instance(pd.DataFrame, allow_none=True)
    counts = tl.Dict()
    reuse = tl.Float(DEFAULT_REUSE)
    repurpose = tl.Float(DEFAULT_REPURPOSE)
    state = tl.Enum(STATES, default_value=INIT)
    message = tl.Unicode("")

    def __init__(self, model_dir: str | Path | None = None, *, n_drivers: int = 3, **kwargs: Any) -> None:
        self.n_drivers = n_drivers
        self.model: SohModel | None = None
        self.source = ""  # what the table is (file name, or the synthetic example)
        self._pending = False  # a table waiting for the model
        self.model_info = w.HTML("<p>loading the SOH model…</p>").add_class("battlab-soh-model")
        self.upload = w.FileUpload(accept=",".join(TABLE_SUFFIXES), multiple=False, description="Upload pulse table",
                                   layout=w.Layout(width="200px"))
        self.upload.observe(on_upload(self.upload, self.load_bytes), names="value")
        self.example_button = w.Button(description="Use the example", icon="table")
        self.example_button.add_class("battlab-soh-example")
        self.example_button.on_click(lambda _: self.use_example())
        upload_box = w.HBox([self.upload, self.example_button,
                             w.HTML("<small>CSV/TSV/Excel/parquet: one row per pulse test (21 voltages, SOC in %, "
                                    "a cell column)</small>")])
        upload_box.add_class("battlab-soh-upload").add_class("battlab-data-uploader")
        self.soc_column = w.Dropdown(description="SOC column", options=[], style={"description_width": "90px"})
        self.cell_column = w.Dropdown(description="cell column", options=[EACH_ROW],
                                      style={"description_width": "90px"})
        self.nominal = w.Text(description="nominal Ah", placeholder="number or column",
                              style={"description_width": "90px"}, layout=w.Layout(width="260px"))
        self.mapping = w.Textarea(placeholder="your names, if not U1..U21: U1=ocv, U2=v_chg_start, ...",
                                  layout=w.Layout(width="98%", height="52px"))
        self.mapping.add_class("battlab-soh-mapping")
        self.predict_button = w.Button(description="Estimate and sort", button_style="primary", icon="bolt",
                                       disabled=True)
        self.predict_button.add_class("battlab-soh-predict")
        self.predict_button.on_click(lambda _: self.predict())
        columns = w.VBox([w.HBox([self.soc_column, self.cell_column, self.nominal]),
                          w.HTML("<small>Column mapping (model name = your column)</small>"), self.mapping,
                          self.predict_button])
        columns.add_class("battlab-soh-columns")
        slider = {"min": 0.3, "max": 1.0, "step": 0.01, "continuous_update": False, "readout_format": ".2f",
                  "style": {"description_width": "90px"}}
        self.reuse_slider = w.FloatSlider(value=self.reuse, description="reuse ≥", **slider)
        self.reuse_slider.add_class("battlab-soh-reuse")
        self.repurpose_slider = w.FloatSlider(value=self.repurpose, description="repurpose ≥", **slider)
        self.repurpose_slider.add_class("battlab-soh-repurpose")
        tl.link((self.reuse_slider, "value"), (self, "reuse"))
        tl.link((self.repurpose_slider, "value"), (self, "repurpose"))
        self.status = w.HTML().add_class("battlab-soh-message")
        self.result = w.HTML().add_class("battlab-soh-result")
        self.counts_html = w.HTML().add_class("battlab-soh-counts")
        self.plot = w.Image(format="png", layout=w.Layout(max_width="760px", display="none"))
        self.plot.add_class("battlab-soh-sorting-plot")
        self.cells_html = w.HTML().add_class("battlab-soh-table")
        self.drivers_html = w.HTML().add_class("battlab-soh-drivers")
        self.download = w.HTML().add_class("battlab-soh-download")
        super().__init__([w.HTML("<b>State of health</b> of retired cells from one pulse test, and the reuse / "
                                 "repurpose / recycle decision"),
                          self.model_info, upload_box, columns, self.status, self.result,
                          w.HBox([self.reuse_slider, self.repurpose_slider]), self.counts_html, self.plot,
                          self.cells_html, self.drivers_html, self.download], **kwargs)
        self.add_class("battlab-soh")
        show_state_as_class(self, "battlab-soh")
        if model_dir is not None:
            self.model_dir = str(model_dir)

    # ------------------------------------------------------------------ model
    @tl.observe("model_dir")
    def _on_model_dir(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.load_model(change["new"])

    def load_model(self, model_dir: str | Path) -> bool:
        """Load a saved SOH model (trusted folder: unpickling runs code); errors are shown, not raised."""
        folder = Path(model_dir)
        self.model = None
        try:
            model = SohModel.load(folder)
        except BattlabError as exc:
            self._fail(str(exc))
            return False
        except Exception as exc:  # shown in the app, the kernel keeps running
            self._fail(f"{folder}: cannot load the SOH model ({type(exc).__name__}: {exc})")
            return False
        self.model = model
        card, f = model.card, model.featurizer
        nominal = (f"from column {f.nominal_capacity}" if isinstance(f.nominal_capacity, str) else
                   f"{f.nominal_capacity} Ah" if f.nominal_capacity is not None else "none (V per C features only)")
        self.model_info.value = (
            f"<p>{html.escape(str(card.get('model', {}).get('name', '?')))} on the <b>{html.escape(model.feature_set)}"
            f"</b> features, fitted on {card.get('n_cells', '?')} cells ({card.get('n_rows', '?')} pulse tests), "
            f"trained SOH {model.soh_range[0]:.2f}-{model.soh_range[1]:.2f} at SOC {model.soc_range[0]:g}-"
            f"{model.soc_range[1]:g} %; pulses at {', '.join(f'{a:g}' for a in f.amplitudes_C)} C; it reads "
            f"<code>{html.escape(', '.join(f.required_columns()[:3]))}, …</code>, SOC column "
            f"<code>{html.escape(model.soc_column)}</code>, nominal capacity {html.escape(str(nominal))}.</p>")
        self.state = READY
        self._say(f"model loaded from {folder.name or folder}: upload a pulse table or use the example", "info")
        if self.table is not None:
            self._fill_columns(self.table)
            if self._pending:
                self._pending = False
                self.predict()
        return True

    # ------------------------------------------------------------------ input
    def load_bytes(self, name: str, content: bytes | memoryview) -> None:
        """Read an uploaded pulse table and, when the model is loaded and the columns found, sort its cells."""
        self.state = ACTIVE
        self._say(f"reading {name}", "info")
        try:
            table = read_pulse_bytes(name, content)
        except BattlabError as exc:
            self._clear()
            self._fail(str(exc))
            return
        except Exception as exc:  # an unreadable file: shown, the kernel keeps running
            self._clear()
            self._fail(f"{name}: cannot read it as a table ({type(exc).__name__}: {exc})")
            return
        self.set_table(table, Path(str(name)).name)

    def use_example(self) -> None:
        """The synthetic example pulse table (:func:`battlab.health.example_pulse_table`, seed 1: other cells than
        a default model was fitted on)."""
        from battlab.health.example import example_pulse_table

        table = example_pulse_table(6, seed=1)
        self.set_table(table, "the synthetic example (battlab.health.example_pulse_table, seed 1; not measured)")

    def set_table(self, table: pd.DataFrame, source: str) -> None:
        """Show ``table``'s columns in the pickers and predict it when it can be."""
        self._clear()
        self.table, self.source = table, source
        self._fill_columns(table)
        if self.model is None:
            self._pending = True
            self.state = INIT
            self._say(f"{source}: {len(table)} rows read; waiting for the model", "info")
            return
        self.predict()

    def _fill_columns(self, table: pd.DataFrame) -> None:
        cols = [str(c) for c in table.columns]
        soc = self.model.soc_column if self.model is not None else "SOC"
        self.soc_column.options = cols
        self.soc_column.value = soc if soc in cols else next((c for c in cols if "soc" in c.lower()), None)
        self.cell_column.options = [EACH_ROW, *cols]
        self.cell_column.value = next((c for c in ("cell_id", "cell", "Cell", "cell_name", "ID") if c in cols),
                                      EACH_ROW)
        self.predict_button.disabled = self.model is None

    # ------------------------------------------------------------------ predict and sort
    def _model_for_table(self) -> SohModel:
        """The loaded model with the table's column names (mapping, SOC column, nominal capacity)."""
        import copy

        from sklearn.base import clone

        model = copy.copy(self.model)
        params: dict[str, Any] = {}
        mapping = parse_mapping(self.mapping.value)
        if mapping:
            params["columns"] = mapping
        nominal = self.nominal.value.strip()
        if nominal:
            try:
                params["nominal_capacity"] = float(nominal)
            except ValueError:
                params["nominal_capacity"] = nominal  # a column
        model.featurizer = clone(self.model.featurizer).set_params(**params)
        if self.soc_column.value:
            model.soc_column = self.soc_column.value
        return model

    def predict(self) -> pd.DataFrame | None:
        """Estimate the SOH of every row, the drivers per cell, and sort the cells; errors are shown, not raised."""
        if self.table is None or self.model is None:
            return None
        self.state = ACTIVE
        self._say(f"estimating the SOH of {len(self.table)} pulse tests", "info")
        self.predictions = self.drivers = self.sorting = None
        try:
            model = self._model_for_table()
            pred = model.predict(self.table)
            cell = self.cell_column.value if self.cell_column.value != EACH_ROW else None
            drivers = model.drivers(self.table, cell=cell, n=self.n_drivers)
        except BattlabError as exc:
            self._clear_results()
            self._fail(f"{self.source}: {exc}")
            return None
        except Exception as exc:  # shown in the app, the kernel keeps running
            self._clear_results()
            self._fail(f"{self.source}: cannot estimate the SOH ({type(exc).__name__}: {exc})")
            return None
        self.predictions = pd.concat([self.table, pred], axis=1)
        self.drivers = drivers
        self._sort()
        return self.predictions

    @tl.observe("reuse", "repurpose")
    def _on_thresholds(self, change: dict[str, Any]) -> None:
        if self.predictions is not None:
            self._sort()

    def _sort(self) -> None:
        cell = self.cell_column.value if self.cell_column.value != EACH_ROW else None
        try:
            sorting = sort_cells(self.predictions, self.reuse, self.repurpose, cell=cell)
        except BattlabError as exc:
            self.sorting, self.counts = None, {}
            self.counts_html.value, self.plot.layout.display = "", "none"
            self._fail(str(exc))
            return
        sorting.attrs.update({"reuse": self.reuse, "repurpose": self.repurpose})
        self.counts = {k: int(v) for k, v in decision_counts(sorting).items()}
        self.sorting = sorting
        self._render()
        n_extra = int(self.predictions["soc_extrapolation"].sum())
        self.state = SUCCESS
        text = (f"{self.source}: {len(sorting)} cell(s) from {len(self.predictions)} pulse test(s) sorted")
        if n_extra:
            lo, hi = self.model.soc_range
            self._say(text + f"; {n_extra} test(s) at a SOC outside the trained {lo:g}-{hi:g} %: extrapolation, "
                      "less certain (see the notes)", "info")
        else:
            self._say(text, "success")

    # ------------------------------------------------------------------ display
    def _render(self) -> None:
        from battlab.health.plots import plot_sorting

        s = self.sorting
        self.result.value = (f"<p>Thresholds: reuse at SOH ≥ {self.reuse:.2f}, repurpose at ≥ {self.repurpose:.2f}, "
                             "recycle below; an interval across a threshold: retest.</p>")
        self.counts_html.value = "<p>" + " · ".join(f"<b>{k}</b>: {v}" for k, v in self.counts.items()) + "</p>"
        self.plot.value = figure_png(plot_sorting(s, self.reuse, self.repurpose).figure)
        self.plot.layout.display = None
        top = {cell: ", ".join(f"{f} ({v:+.3f})" for f, v in zip(d["feature"], d["shap"], strict=True))
               for cell, d in self.drivers.sort_values(["cell", "rank"]).groupby("cell", sort=False)}
        shown = s.assign(**{"drivers (SHAP, SOH)": s["cell"].map(top)})
        self.cells_html.value = frame_html(shown, max_rows=40, css_class="battlab-table battlab-soh-cells")
        notes = self.predictions.loc[self.predictions["note"] != "", ["note"]]
        self.drivers_html.value = (
            "<p><b>What drove the estimates</b>: per cell, the pulse features with the largest SHAP values (in SOH, "
            "from the training cells: + raises the estimate). Resistances (<code>r0</code>, <code>r5s</code>, "
            "<code>rp</code>) rising with age is the physics a pulse test reads.</p>"
            + (f"<p><b>Notes</b> ({len(notes)} tests)</p>" + frame_html(notes.reset_index(names="line"), max_rows=10)
               if len(notes) else ""))
        self.download.value = csv_download_html(shown, "soh_sorting.csv", "Download the sorting")

    def _clear_results(self) -> None:
        self.predictions = self.drivers = self.sorting = None
        self.counts = {}
        for h in (self.result, self.counts_html, self.cells_html, self.drivers_html, self.download):
            h.value = ""
        self.plot.layout.display = "none"

    def _clear(self) -> None:
        self.table = None
        self._clear_results()
