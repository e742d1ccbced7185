"""``DataUploader`` and ``CurationReport``: a table file in, a curated table out, every row accounted for.

``DataUploader`` reads an uploaded CSV/TSV/Excel/parquet file with :func:`battlab.tables.read_table`,
lets the user pick the formula and target columns and runs :func:`battlab.curate.curate`. A file that
is not a table shows a message in the app (the kernel keeps running). Its results are traitlets, so
that other widgets follow it with ``dlink``:

Example
-------
>>> from traitlets import dlink
>>> from battlab.widgets.data import CurationReport, DataUploader
>>> up = DataUploader()
>>> up.load_example()                    # or upload a file in the app
>>> up.target, up.formula_column, up.state
('capacity (mAh/g)', 'formula', 'READY')
>>> up.curate_button.click()
>>> up.state, up.result.report["n_quarantined"], len(up.curated)
('SUCCESS', 4, 10)
>>> report = CurationReport()            # the report alone, elsewhere in an app
>>> _ = dlink((up, "result"), (report, "result"))
>>> report.count.value
'4 rows quarantined'

This module also holds the helpers the other widgets share (states, messages, tables, figures).
"""

from __future__ import annotations

import base64
import html
import io
import re
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as tl

from battlab.curate import CuratedSet, curate, find_formula_column
from battlab.errors import BattlabError
from battlab.tables import RawTable, read_table
from battlab.units import parse_cell

__all__ = ["CurationReport", "DataUploader", "example_path", "on_upload", "read_upload", "show_state_as_class"]

#: States of every battlab widget (aiidalab-widgets-base's wizard states).
# The state names of STYLE.md (aiidalab-widgets-base), shared with ElectrodeDesigner.
INIT, READY, ACTIVE, SUCCESS, FAIL = "INIT", "READY", "ACTIVE", "SUCCESS", "FAIL"
STATES = (INIT, READY, ACTIVE, SUCCESS, FAIL)

#: File types the upload widgets accept (what :func:`battlab.tables.read_table` reads).
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls", ".parquet")
EXAMPLES = ("messy_cells.csv",)


# --------------------------------------------------------------------------- shared helpers

def example_path(name: str = "messy_cells.csv") -> Path:
    """Path of an example table shipped with battlab (``messy_cells.csv``: 15 cathode capacities with
    a typo in a formula, a unit in a cell, a wrong unit, a negative capacity, a duplicate, a censored
    value and a missing one)."""
    if name not in EXAMPLES:
        raise BattlabError(f"unknown example {name!r}; examples are {list(EXAMPLES)}")
    return Path(str(resources.files("battlab.widgets") / "examples" / name))


def message_html(text: str, kind: str = "info") -> str:
    """A one-line message for an app: ``kind`` is ``info``, ``success`` or ``error`` (red)."""
    color = {"error": "#b00020", "success": "#1b5e20", "info": "#333"}.get(kind, "#333")
    icon = {"error": "⚠ ", "success": "✔ "}.get(kind, "")
    return (f"<div class='battlab-msg battlab-msg-{kind}' style='color:{color}'>"
            f"{icon}{html.escape(str(text))}</div>")


def frame_html(df: pd.DataFrame | None, max_rows: int = 20, css_class: str = "battlab-table") -> str:
    """A DataFrame as escaped HTML (its first ``max_rows`` rows) with a note of the rows left out."""
    if df is None or not len(df):
        return ""
    shown = df.head(max_rows).to_html(index=False, escape=True, na_rep="", classes=css_class, border=0,
                                      float_format=lambda v: f"{v:.4g}")
    more = f"<p><i>… {len(df) - max_rows} more rows</i></p>" if len(df) > max_rows else ""
    return f"<div style='max-height:420px;overflow:auto'>{shown}</div>{more}"


def figure_png(fig: Any, dpi: int = 90) -> bytes:
    """PNG bytes of a matplotlib figure, which is then closed (for an ``ipywidgets.Image``: works in
    Voilà and from worker threads, unlike ``plt.show`` in an ``Output``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # figures are laid out already: one draw, not two
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # a bare Figure not known to pyplot
        pass
    return buf.getvalue()


def csv_download_html(df: pd.DataFrame, filename: str, label: str = "Download CSV") -> str:
    """An ``<a download>`` link with the CSV in a ``data:`` URI (no server route needed: works in Voilà)."""
    payload = base64.b64encode(df.to_csv(index=False).encode("utf-8")).decode("ascii")
    return (f"<a class='battlab-download-link' download='{html.escape(filename)}' "
            f"href='data:text/csv;base64,{payload}' target='_blank'>{html.escape(label)} "
            f"({len(df)} rows)</a>")


def _safe_name(name: str) -> str:
    base = Path(str(name).replace("\\", "/")).name  # no folders from the browser
    base = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", base).strip()
    if not base.strip("."):  # "", "." and ".." name folders, not files
        base = "upload"
    return base[:120]


def upload_entries(value: Any) -> list[dict[str, Any]]:
    """The files of a ``FileUpload`` value: ipywidgets 8 (tuple of dicts) or 7 (dict by name)."""
    if not value:
        return []
    if isinstance(value, dict):  # ipywidgets 7: {name: {"metadata": {...}, "content": bytes}}
        return [{"name": k, **v.get("metadata", {}), "content": v["content"]} for k, v in value.items()]
    return [dict(v) for v in value]


def on_upload(upload: Any, load: Callable[[str, bytes], Any], default_name: str = "upload.csv", *,
              every_file: bool = False) -> Callable:
    """An observer for ``upload``'s ``value``: the first file (``every_file``: each file in turn) goes to
    ``load(name, content)``, then the button is cleared so the same file can be uploaded again (a new value, a new
    event); a cleared value does nothing.

    >>> import ipywidgets as w
    >>> seen = []
    >>> button = w.FileUpload()
    >>> observer = on_upload(button, lambda name, content: seen.append((name, bytes(content))))
    >>> button.observe(observer, names="value")
    >>> observer({"new": ({"name": "cells.csv", "content": b"a,b"},)})  # what a browser's upload triggers
    >>> seen, button.value
    ([('cells.csv', b'a,b')], ())
    """

    def observer(change: dict[str, Any]) -> None:
        files = upload_entries(change["new"])
        if not files:
            return  # the widget was cleared (below)
        try:
            for entry in files if every_file else files[:1]:
                load(entry.get("name", default_name), entry["content"])
        finally:
            upload.value = ()

    return observer


def read_upload(name: str, content: bytes | memoryview) -> RawTable:
    """Read uploaded bytes as a table: written to a temporary file with the original name (and suffix,
    which picks the reader), read with :func:`~battlab.tables.read_table`, then the file is deleted.

    Raises :class:`~battlab.errors.DataFileError` (message naming the file, not the temporary path).
    """
    safe = _safe_name(name)
    with tempfile.TemporaryDirectory(prefix="battlab-upload-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(bytes(content))
        try:
            table = read_table(path)
        except BattlabError as exc:
            raise type(exc)(str(exc).replace(str(path), safe)) from None
        table.path = Path(safe)  # curation names the file in its messages
    return table


def numeric_columns(df: pd.DataFrame, share: float = 0.5) -> list[str]:
    """Columns whose filled cells mostly read as numbers (units, commas, ``<`` ``>`` allowed)."""
    out = []
    for col in df.columns:
        cells = [parse_cell(v) for v in pd.unique(df[col].dropna())[:300]]
        filled = [c for c in cells if not c.missing]
        if filled and sum(not c.error for c in filled) >= share * len(filled):
            out.append(str(col))
    return out


# --------------------------------------------------------------------------- CurationReport

def show_state_as_class(widget: w.DOMWidget, prefix: str) -> None:
    """Keep one CSS class ``{prefix}-{state}`` (``battlab-soh-success``...) on ``widget`` for its ``state``
    traitlet, now and whenever it changes: what the apps' browser tests wait for.

    >>> class Demo(w.VBox):
    ...     state = tl.Unicode(INIT)
    >>> demo = Demo()
    >>> show_state_as_class(demo, "battlab-demo")
    >>> demo.state = SUCCESS
    >>> demo._dom_classes
    ('battlab-demo-success',)
    """

    def show(_change: object = None) -> None:
        for state in STATES:
            widget.remove_class(f"{prefix}-{state.lower()}")
        widget.add_class(f"{prefix}-{widget.state.lower()}")

    widget.observe(show, names="state")
    show()


class MessagesMixin:
    """``_say``/``_fail`` for widgets with a ``status`` HTML, a ``message`` and a ``state`` traitlet."""

    def _say(self, text: str, kind: str) -> None:
        self.message = text
        self.status.value = message_html(text, kind)

    def _fail(self, text: str) -> None:
        self.state = FAIL
        self._say(text, "error")


class CurationReport(w.VBox):
    """Shows a :class:`~battlab.curate.CuratedSet`: where the rows went, the target before and after
    curation (:func:`battlab.plots.plot_curation`) and the quarantined rows with their reasons.

    Parameters
    ----------
    result : CuratedSet, optional
        Also a traitlet: ``dlink((uploader, "result"), (report, "result"))``.
    max_rows : int
        Quarantined rows shown (all are in ``result.quarantine``).
    plot : bool
        Draw the curation figure (a fraction of a second).

    Example
    -------
    >>> from battlab.curate import curate
    >>> report = CurationReport(curate(example_path(), target="capacity (mAh/g)"))
    >>> report.count.value, report.quarantine_table.value.count("<tr>")  # data rows
    ('4 rows quarantined', 4)

    CSS classes for browser tests: ``battlab-curation-summary``, ``battlab-quarantine-count``,
    ``battlab-quarantine-table``, ``battlab-curation-plot``.
    """

    result = tl.Instance(CuratedSet, allow_none=True)

    def __init__(self, result: CuratedSet | None = None, *, max_rows: int = 20, plot: bool = True,
                 **kwargs: Any) -> None:
        self.max_rows = max_rows
        self.show_plot = plot
        self.summary = w.HTML().add_class("battlab-curation-summary")
        self.count = w.HTML().add_class("battlab-quarantine-count")
        self.figure = w.Image(format="png", layout=w.Layout(max_width="900px", display="none"))
        self.figure.add_class("battlab-curation-plot")
        self.quarantine_table = w.HTML().add_class("battlab-quarantine-table")
        super().__init__([self.summary, self.count, self.figure, self.quarantine_table], **kwargs)
        self.add_class("battlab-curation-report")
        self.result = result
        self._show()

    @tl.observe("result")
    def _on_result(self, change: dict[str, Any]) -> None:
        self._show()

    def _show(self) -> None:
        r = self.result
        if r is None:
            self.summary.value, self.count.value, self.quarantine_table.value = "", "", ""
            self.figure.value, self.figure.layout.display = b"", "none"
            return
        rep = r.report
        rows = [("input rows", rep["n_input"]), ("kept", rep["n_kept"]),
                ("merged (duplicates, replicates)", rep["n_merged"]), ("quarantined", rep["n_quarantined"]),
                ("kept with flags", rep["n_flagged"]), ("censored targets (<, >)", rep["n_censored"])]
        table = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right'><b>{v}</b></td></tr>"
                        for k, v in rows)
        reasons = "".join(f"<li>{html.escape(str(k))}: {v}</li>" for k, v in rep["quarantine_reasons"].items())
        flags = "".join(f"<li>{html.escape(str(k))}: {v}</li>" for k, v in rep.get("qc_flags", {}).items())
        self.summary.value = (f"<p><b>{html.escape(r.summary())}</b></p><table>{table}</table>"
                              + (f"<p>Quarantined because:</p><ul>{reasons}</ul>" if reasons else "")
                              + (f"<p>Flags on kept rows:</p><ul>{flags}</ul>" if flags else ""))
        n = rep["n_quarantined"]
        self.count.value = f"{n} row{'' if n == 1 else 's'} quarantined"
        cols = [c for c in ("row", "category", "reason", "value") if c in r.quarantine]
        self.quarantine_table.value = frame_html(r.quarantine[cols], self.max_rows, "battlab-quarantine")
        if self.show_plot:
            try:
                from battlab.plots import plot_curation

                self.figure.value = figure_png(plot_curation(r))
                self.figure.layout.display = None
            except Exception as exc:  # a figure is a nicety: never lose the report for it
                self.figure.value, self.figure.layout.display = b"", "none"
                self.summary.value += message_html(f"(no figure: {exc})", "info")


# --------------------------------------------------------------------------- DataUploader

class DataUploader(MessagesMixin, w.VBox):
    """Upload a table, pick the formula and target columns, curate, see the report and the quarantine.

    Parameters
    ----------
    target : str, optional
        Target column to select when the file has it (else the first numeric-looking column).
    curate_options : dict, optional
        More keyword arguments for :func:`battlab.curate.curate` (``units``, ``bounds``, ``group_by``...).
    max_rows : int
        Quarantined rows shown.

    Attributes (traitlets)
    ----------------------
    raw : DataFrame or None
        The table as read (text cells), index = row number in the file.
    filename : Unicode
    formula_column, target : Unicode or None
        The columns chosen (set before ``result`` and ``curated`` change).
    log_target : Bool
        Curation's decision to model ``log10(target)`` (quantities spanning decades).
    result : CuratedSet or None
    curated : DataFrame or None
        ``result.curated``; ``dlink((uploader, "curated"), (explorer, "curated"))``.
    state : Unicode
        ``INIT`` (no file), ``READY`` (file read), ``ACTIVE`` (curating), ``SUCCESS`` or ``FAIL``.
    message : Unicode
        The last message shown (errors included).

    Example
    -------
    Upload payloads are plain data, so the widget is tested without a browser:

    >>> from datetime import datetime
    >>> up = DataUploader()
    >>> up.upload.value = ({"name": "t.csv", "type": "text/csv", "size": 40, "last_modified": datetime.now(),
    ...                     "content": memoryview(b"formula,capacity\\nLiCoO2,140\\nXx2O,100\\n")},)
    >>> up.curate_button.click(); up.result.summary()
    't.csv: 2 rows -> 1 kept, 0 merged, 1 quarantined, 0 kept with flags'
    >>> up.upload.value = ({"name": "bad.csv", "content": memoryview(b"\\x00\\x01\\x02"),
    ...                     "type": "", "size": 3, "last_modified": datetime.now()},)
    >>> up.state, up.message
    ('FAIL', 'bad.csv: looks like a binary file, not a text table')
    """

    raw = tl.Instance(pd.DataFrame, allow_none=True)
    filename = tl.Unicode("")
    formula_column = tl.Unicode(None, allow_none=True)
    target = tl.Unicode(None, allow_none=True)
    log_target = tl.Bool(False)
    result = tl.Instance(CuratedSet, allow_none=True)
    curated = tl.Instance(pd.DataFrame, allow_none=True)
    state = tl.Unicode(INIT)
    message = tl.Unicode("")

    def __init__(self, *, target: str | None = None, curate_options: dict[str, Any] | None = None,
                 max_rows: int = 20, **kwargs: Any) -> None:
        self._preferred_target = target
        self.curate_options = dict(curate_options or {})
        self._table: RawTable | None = None
        self.upload = w.FileUpload(accept=",".join(TABLE_SUFFIXES), multiple=False,
                                   description="Upload table")
        self.upload.observe(on_upload(self.upload, self.load_bytes), names="value")
        self.example_button = w.Button(description="Load example", icon="table",
                                       tooltip="a small messy table of cathode capacities")
        self.example_button.on_click(lambda _: self.load_example())
        self.file_label = w.HTML().add_class("battlab-filename")
        style = {"description_width": "110px"}
        self.formula_dropdown = w.Dropdown(description="Formula column", options=[], style=style,
                                           layout=w.Layout(width="420px"))
        self.target_dropdown = w.Dropdown(description="Target column", options=[], style=style,
                                          layout=w.Layout(width="420px"))
        self.curate_button = w.Button(description="Curate", button_style="primary", icon="check",
                                      disabled=True)
        self.curate_button.add_class("battlab-curate")
        self.curate_button.on_click(lambda _: self.run_curation())
        self.status = w.HTML().add_class("battlab-message")
        self.report = CurationReport(max_rows=max_rows)
        tl.dlink((self, "result"), (self.report, "result"))
        super().__init__([w.HTML("<b>Data</b>: a table of formulas and a measured property (CSV, TSV, Excel)"),
                          w.HBox([self.upload, self.example_button, self.file_label]),
                          self.formula_dropdown, self.target_dropdown, self.curate_button, self.status,
                          self.report], **kwargs)
        self.add_class("battlab-data-uploader")

    # ------------------------------------------------------------------ inputs
    def load_bytes(self, name: str, content: bytes | memoryview) -> None:
        """Read an uploaded file's bytes (what the upload button does); errors are shown, not raised."""
        self._reset()
        self.filename = _safe_name(name)
        self.file_label.value = f"<code>{html.escape(self.filename)}</code>"
        try:
            table = read_upload(name, content)
        except BattlabError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:  # anything else is shown too: the kernel keeps running
            self._fail(f"{self.filename}: cannot read the file ({type(exc).__name__}: {exc})")
            return
        self._set_table(table)

    def load_file(self, path: str | Path) -> None:
        """Read a table file from disk (as an upload would be); errors are shown, not raised."""
        path = Path(path)
        try:
            content = path.read_bytes()
        except OSError as exc:
            self._reset()
            self._fail(f"{path.name}: cannot open the file ({exc.strerror or exc})")
            return
        self.load_bytes(path.name, content)

    def load_example(self, name: str = "messy_cells.csv") -> None:
        """Load an example shipped with battlab (see :func:`example_path`)."""
        self.load_file(example_path(name))

    def _set_table(self, table: RawTable) -> None:
        self._table = table
        df = table.data
        columns = [str(c) for c in df.columns]
        formula = find_formula_column(columns)
        numeric = [c for c in numeric_columns(df) if c != formula]
        self.formula_dropdown.options = [("(none: no formulas)", None)] + [(c, c) for c in columns]
        self.formula_dropdown.value = formula
        self.target_dropdown.options = numeric
        self.target_dropdown.value = (self._preferred_target if self._preferred_target in numeric
                                      else numeric[0] if numeric else None)
        self.formula_column, self.target = formula, self.target_dropdown.value
        self.raw = df
        notes = [f"{table.n_rows} rows, {len(columns)} columns"]
        if table.rejected:
            notes.append(f"{len(table.rejected)} ragged rows (will be quarantined)")
        if not numeric:
            self.curate_button.disabled = True
            self._fail(f"{self.filename}: no numeric column to use as target; columns are {columns[:12]}")
            return
        self.curate_button.disabled = False
        self.state = READY
        self._say(f"{self.filename}: " + ", ".join(notes) + ". Pick the columns and press Curate.", "info")

    # ------------------------------------------------------------------ curation
    def run_curation(self) -> CuratedSet | None:
        """Curate the loaded table with the chosen columns (the Curate button); errors are shown."""
        if self._table is None:
            self._fail("no table loaded: upload a file first")
            return None
        formula, target = self.formula_dropdown.value, self.target_dropdown.value
        if target is None:
            self._fail("choose a target column")
            return None
        if formula == target:
            self._fail(f"the formula column and the target are the same column ({target!r})")
            return None
        self.state = ACTIVE
        self.curate_button.disabled = True
        self._say(f"curating {self._table.n_rows} rows…", "info")
        try:
            result = curate(self._table, formula_column=formula, target=target, source=self.filename,
                            **self.curate_options)
        except BattlabError as exc:
            self._fail(str(exc))
            return None
        except Exception as exc:
            self._fail(f"curation failed ({type(exc).__name__}: {exc})")
            return None
        finally:
            self.curate_button.disabled = False
        # columns first, then the result, then the table: observers of `curated` see the right target
        self.formula_column, self.target = result.report["formula_column"], target
        self.log_target = bool(result.report.get("log_target"))
        self.result = result
        self.curated = result.curated
        self.state = SUCCESS
        self._say(result.summary(), "success")
        return result

    # ------------------------------------------------------------------ messages
    def _reset(self) -> None:
        self._table = None
        self.result, self.curated, self.raw = None, None, None
        self.formula_dropdown.options, self.target_dropdown.options = [], []
        self.curate_button.disabled = True

