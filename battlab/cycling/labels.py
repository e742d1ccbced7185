"""Labels from cycling data: cycle life (cycles to X % of nominal or initial capacity), knee and knee-onset.

The label most papers use is **cycle life**: the first cycle whose discharge capacity falls below a threshold,
``fraction`` (default 0.8) times a reference capacity: the cell's nominal capacity (Severson et al. 2019,
BatteryML; the default) or its initial capacity. A cell that never fell below the threshold is
**right-censored**: it is kept and flagged (``censored``), its last observed cycle recorded (``last_cycle``, a
lower bound of its life: :meth:`LifeLabels.lower_bounds`); it is never dropped nor counted as failed.

Rules (each one a documented constant or parameter):

- **Capacity table** (:func:`capacity_table`): one row per (cell, cycle) with ``cell``, ``cycle`` and
  ``discharge_capacity_Ah``; from a :class:`~battlab.cycling.read.CellData` the cycles marked ``usable``
  (cycles without a usable discharge are already reported by ``CellData.unusable``). Rows whose capacity is not
  a positive number, or whose cycle is not a whole number, or that repeat a (cell, cycle), are kept aside with
  the reason, naming the cell and the cycle.
- **Smoothing**: the capacity is thresholded after a centred rolling median over ``smooth`` observed cycles
  (default 5; ``smooth=1``: raw values), so a one-cycle dip (a check-up, a glitch) does not end a cell's life,
  while a lasting drop does (at a monotone crossing the median is the raw value: the life is unchanged).
- **Crossing**: the life is the first cycle below the threshold *after* the smoothed capacity has been at or
  above it, so low first cycles (a partial first discharge of a cell shipped half charged) do not end a life.
  A cell whose smoothed capacity is never at or above the threshold has no life to count: it is set aside
  with its largest capacity (most often its nominal capacity is wrong).
- **Initial capacity** (``reference="initial"``): the largest value of the same rolling median taken over the
  cell's observed cycles 2 to :data:`INITIAL_CYCLES` + 1 only (its first observed cycle is left out: a formation
  or partial cycle is often an outlier; a cell with one cycle uses it).
- **Nominal capacity** (``reference="nominal"``): ``nominal_Ah`` (one number or one per cell), else the capacity
  table's ``nominal_capacity_Ah`` column, which :func:`capacity_table` fills from
  ``CellData.metadata["nominal_capacity_Ah"]`` when the file's header states it; else a one-line error.
- **Knee and knee-onset** (:func:`knee_points`): the Bacon-Watts and double Bacon-Watts fits of Fermin-Cueto et
  al. (2020) (:data:`CITATIONS`), on the raw capacity up to the end of life (the whole observed curve of a
  censored cell; least squares is little moved by a one-cycle dip, and a rolling median would flatten the
  ends); NaN when the curve has fewer than :data:`MIN_KNEE_CYCLES` cycles or no knee.

Example
-------
>>> import numpy as np, pandas as pd
>>> cyc = np.arange(1, 301)
>>> table = pd.DataFrame({"cell": "a", "cycle": cyc, "discharge_capacity_Ah": 1.1 - 0.001 * cyc})
>>> labels = label_cells(table, nominal_Ah=1.1)
>>> labels.table[["cell", "cycle_life", "censored", "threshold_Ah"]].values.tolist()
[['a', 221.0, False, 0.88]]
>>> labels.summary()
'1 cell labelled: 1 reached 80 % of nominal (life 221-221), 0 censored, 0 set aside'
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["CITATIONS", "LABEL_COLUMNS", "CAPACITY_COLUMNS", "INITIAL_CYCLES", "MIN_KNEE_CYCLES", "LifeLabels",
           "capacity_table", "knee_points", "label_cells"]

#: Papers behind the labels: the knee/knee-onset method and the cycle-life definition.
CITATIONS: dict[str, str] = {
    "knee_points": "Fermin-Cueto, P., McTurk, E., Allerhand, M., Medina-Lopez, E., Anjos, M. F., Sylvester, J., "
                   "dos Reis, G. (2020). Identification and machine learning prediction of knee-point and knee-onset "
                   "in capacity degradation curves of lithium-ion cells. Energy and AI 1, 100006. "
                   "doi:10.1016/j.egyai.2020.100006",
    "cycle_life": "Severson, K. A., Attia, P. M., Jin, N., et al. (2019). Data-driven prediction of battery cycle "
                  "life before capacity degradation. Nature Energy 4, 383-391. doi:10.1038/s41560-019-0356-8 "
                  "(cycle life: cycles to 80 % of nominal capacity)",
}
#: Columns every capacity table has.
CAPACITY_COLUMNS = ("cell", "cycle", "discharge_capacity_Ah")
#: Columns of :attr:`LifeLabels.table`, in order (extra per-cell columns of the input follow).
LABEL_COLUMNS = ("cell", "cycle_life", "censored", "last_cycle", "n_cycles", "reference", "reference_capacity_Ah",
                 "fraction", "threshold_Ah", "knee_cycle", "knee_onset_cycle", "end_of_life_cycle")
#: Observed cycles (after the first) over which ``reference="initial"`` takes the cell's initial capacity.
INITIAL_CYCLES = 10
#: Fewest cycles a curve needs for :func:`knee_points` (fewer: NaN, NaN).
MIN_KNEE_CYCLES = 30
#: A knee is kept only when the fitted slope after it is at least this many times as steep as before it.
KNEE_MIN_SLOPE_RATIO = 1.5
#: ... and when the Bacon-Watts fit leaves at most this share of a straight line's squared residuals.
KNEE_MAX_SSE_RATIO = 0.5
_SET_ASIDE_COLUMNS = ["cell", "reason"]


# --------------------------------------------------------------------------- capacity table


def capacity_table(cells: Any) -> pd.DataFrame:
    """One row per (cell, cycle): ``cell``, ``cycle``, ``discharge_capacity_Ah`` (+ per-cell columns).

    ``cells`` is a :class:`~battlab.cycling.read.CellData`, a :class:`~battlab.cycling.batch.CellBatch`, an
    iterable of ``CellData``, a dict of name to ``CellData``, or a capacity table (a DataFrame with the three
    columns; other columns are kept). From a ``CellData``: its usable cycles, and a ``nominal_capacity_Ah`` column
    when a cell's metadata states it. Rows that cannot be used (capacity not a positive number, cycle not a whole
    number, a repeated (cell, cycle)) are left out of the table and listed in ``table.attrs["set_aside"]``
    (records ``{"cell", "reason"}``: plain values, so the table still concatenates), as are cells without any
    usable cycle and files a batch could not read; :func:`label_cells` reports them in
    :attr:`LifeLabels.set_aside`, including those of a table made here and passed on.

    Example
    -------
    >>> t = pd.DataFrame({"cell": ["a", "a", "a"], "cycle": [1, 2, 3], "discharge_capacity_Ah": [1.0, -1, 0.9]})
    >>> capacity_table(t).values.tolist()
    [['a', 1, 1.0], ['a', 3, 0.9]]
    >>> capacity_table(t).attrs["set_aside"]
    [{'cell': 'a', 'reason': 'cycle 2: discharge capacity -1.0 Ah is not positive'}]
    >>> capacity_table(t.drop(columns="cycle"))
    Traceback (most recent call last):
    ...
    battlab.errors.BattlabError: capacity table: no column 'cycle' (it has: cell, discharge_capacity_Ah)
    """
    table, aside = _capacity_table(cells)
    table.attrs["set_aside"] = aside.to_dict("records")
    return table


def _capacity_table(cells: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`capacity_table` and its set-aside rows, separately."""
    from battlab.cycling.batch import CellBatch
    from battlab.cycling.read import CellData

    if isinstance(cells, pd.DataFrame):
        before = pd.DataFrame(list(cells.attrs.get("set_aside", [])), columns=_SET_ASIDE_COLUMNS)
        table, aside = _validate_table(cells)
        table.attrs = {}
        return table, pd.concat([before, aside], ignore_index=True) if len(before) else aside
    aside: list[dict[str, str]] = []
    if isinstance(cells, CellBatch):
        aside += [{"cell": str(f), "reason": f"file not read: {r}"}
                  for f, r in cells.failures[["file", "reason"]].itertuples(index=False)]
        items = list(cells.cells.items())
        held = set(cells.summary["cell"].astype(str)) if "cell" in cells.summary else set()
        if held - set(cells.cells):
            raise BattlabError(f"capacity table: the batch holds {len(held - set(cells.cells))} cells on disk only "
                               "(read with out_dir=): load them first with CellBatch.load(out_dir)")
    elif isinstance(cells, CellData):
        items = [(cells.name, cells)]
    elif isinstance(cells, Mapping):
        items = [(str(k), v) for k, v in cells.items()]
    elif isinstance(cells, Iterable) and not isinstance(cells, (str, bytes)):
        items = []
        for c in cells:
            if not isinstance(c, CellData):
                raise BattlabError(f"capacity table: expected CellData items, got {type(c).__name__}")
            items.append((c.name, c))
        names = [n for n, _ in items]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise BattlabError(f"capacity table: two cells named {dup[0]!r}; give a dict of unique names "
                               "or read them with read_cycler_files (it makes names unique)")
    else:
        raise BattlabError(f"capacity table: cannot take {type(cells).__name__} (give CellData, a CellBatch, "
                           "a list or dict of CellData, or a table with cell, cycle, discharge_capacity_Ah)")
    frames = []
    nominal: dict[str, float] = {}
    for name, cell in items:
        if not isinstance(cell, CellData):
            raise BattlabError(f"capacity table: cell {name!r} is a {type(cell).__name__}, not CellData")
        cyc = cell.cycles
        if "usable" in cyc:
            cyc = cyc.loc[cyc["usable"].astype(bool)]
        if not len(cyc):
            aside.append({"cell": name, "reason": f"no usable cycle ({len(cell.cycles)} cycles read"
                                                  + (f": {_first_reason(cell.cycles)})" if len(cell.cycles) else ")")})
            continue
        frames.append(pd.DataFrame({"cell": name, "cycle": cyc["cycle"].to_numpy(),
                                    "discharge_capacity_Ah": cyc["discharge_capacity_Ah"].to_numpy()}))
        q = _positive_float(cell.metadata.get("nominal_capacity_Ah"))
        if q is not None:
            nominal[name] = q
    table = (pd.concat(frames, ignore_index=True) if frames
             else pd.DataFrame({"cell": pd.Series(dtype=str), "cycle": pd.Series(dtype=int),
                                "discharge_capacity_Ah": pd.Series(dtype=float)}))
    if nominal:
        table["nominal_capacity_Ah"] = table["cell"].map(nominal).astype(float)
    table, more = _validate_table(table)
    return table, pd.concat([pd.DataFrame(aside, columns=_SET_ASIDE_COLUMNS), more], ignore_index=True)


def _first_reason(cycles: pd.DataFrame) -> str:
    if "reason" not in cycles or not len(cycles):
        return "none usable"
    reasons = cycles["reason"].astype(str).value_counts()
    return "; ".join(f"{r} x{n}" if n > 1 else r for r, n in reasons.head(2).items())


def _positive_float(value: Any) -> float | None:
    try:
        q = float(value)
    except (TypeError, ValueError):
        return None
    return q if np.isfinite(q) and q > 0 else None


def _validate_table(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    missing = [c for c in CAPACITY_COLUMNS if c not in table.columns]
    if missing:
        have = ", ".join(map(str, table.columns)) or "no columns"
        raise BattlabError(f"capacity table: no column {missing[0]!r} (it has: {have})")
    t = table.reset_index(drop=True)
    t.attrs = {}
    no_name = t["cell"].isna() | (t["cell"].astype(str).str.strip() == "")
    t["cell"] = t["cell"].astype(str).where(~no_name, "")
    raw_q, raw_c = t["discharge_capacity_Ah"], t["cycle"]
    q = pd.to_numeric(raw_q, errors="coerce").astype(float)
    c = pd.to_numeric(raw_c, errors="coerce").astype(float)
    reasons = pd.Series("", index=t.index, dtype=object)
    bad_c = ~np.isfinite(c) | (c != np.round(c))
    reasons[bad_c] = [f"cycle {v!r} is not a whole number" for v in raw_c[bad_c]]
    cyc_txt = c.where(~bad_c, 0).astype(int).astype(str)
    bad_q = ~bad_c & ~(q > 0)
    reasons[bad_q] = [f"cycle {k}: discharge capacity {v!r} is not a number" if not np.isfinite(x)
                      else f"cycle {k}: discharge capacity {x!r} Ah is not positive"
                      for k, v, x in zip(cyc_txt[bad_q], raw_q[bad_q], q[bad_q], strict=True)]
    reasons[no_name] = [f"row {i + 1}: no cell name" for i in np.flatnonzero(no_name)]
    ok = reasons == ""
    t["discharge_capacity_Ah"], t["cycle"] = q, c
    # a repeat of a kept (cell, cycle): only rows that are otherwise good count
    dup = ok & t[ok].duplicated(["cell", "cycle"], keep="first").reindex(t.index, fill_value=False)
    reasons[dup] = [f"cycle {int(k)}: repeated (cell, cycle) row, the first one is kept" for k in c[dup]]
    ok = reasons == ""
    aside = pd.DataFrame({"cell": t.loc[~ok, "cell"].to_numpy(), "reason": reasons[~ok].to_numpy()},
                         columns=_SET_ASIDE_COLUMNS)
    t = t.loc[ok].copy()
    t["cycle"] = t["cycle"].astype(int)
    order = {name: i for i, name in enumerate(pd.unique(t["cell"]))}
    t = t.sort_values(["cell", "cycle"], key=lambda s: s.map(order) if s.name == "cell" else s, kind="stable")
    return t.reset_index(drop=True), aside


# --------------------------------------------------------------------------- knee points


def _bacon_watts(x: np.ndarray, a0: float, a1: float, a2: float, x1: float, gamma: float) -> np.ndarray:
    return a0 + a1 * (x - x1) + a2 * (x - x1) * np.tanh((x - x1) / gamma)


def _double_bacon_watts(x: np.ndarray, a0: float, a1: float, a2: float, a3: float, x0: float, x2: float,
                        gamma: float) -> np.ndarray:
    return (a0 + a1 * (x - x0) + a2 * (x - x0) * np.tanh((x - x0) / gamma)
            + a3 * (x - x2) * np.tanh((x - x2) / gamma))


def knee_points(cycles: Any, capacity_Ah: Any) -> tuple[float, float]:
    """Knee and knee-onset cycles of a capacity fade curve (Fermin-Cueto et al. 2020, :data:`CITATIONS`).

    The knee is the change point ``x1`` of a Bacon-Watts model (two lines joined by a smooth transition),
    ``y = a0 + a1 (x - x1) + a2 (x - x1) tanh((x - x1) / g)``, fitted by least squares
    (:func:`scipy.optimize.curve_fit`, several starting knees, the best fit kept). The onset is the first change
    point ``x0`` of the double Bacon-Watts model ``a0 + a1 (x - x0) + a2 (x - x0) tanh((x - x0) / g) +
    a3 (x - x2) tanh((x - x2) / g)`` with ``x0`` before the knee and ``x2`` after it. Cycles and capacity are
    scaled to [0, 1] for the fit and ``g`` is fixed at 0.01 of the cycle range (a sharp but differentiable corner).

    Returns ``(nan, nan)`` when there are fewer than :data:`MIN_KNEE_CYCLES` finite points, when a fit fails,
    or when there is no knee: the fitted slope after ``x1`` must be negative and at least
    :data:`KNEE_MIN_SLOPE_RATIO` times as steep as before it, with ``x1`` inside the observed cycles, and the fit
    must leave at most :data:`KNEE_MAX_SSE_RATIO` of the squared residuals of a straight line (noise around a line
    has no knee). The onset alone is NaN when its fit fails or puts it outside the observed cycles; it is never
    after the knee.
    Give the curve up to the end of life (as :func:`label_cells` does): an ageing curve after a steep knee
    flattening again would otherwise move the knee.

    Example
    -------
    >>> x = np.arange(1, 801)
    >>> y = 1.1 - 1e-4 * x - 1.5e-3 * np.clip(x - 500, 0, None)   # two slopes, the change at cycle 500
    >>> knee, onset = knee_points(x, y)
    >>> bool(abs(knee - 500) < 25), bool(onset < knee)
    (True, True)
    >>> knee_points(x, 1.1 - 1e-4 * x)    # a straight line has no knee
    (nan, nan)
    >>> knee_points([1, 2, 3], [1.0, 0.9, 0.5])
    (nan, nan)
    """
    from scipy.optimize import curve_fit

    x = np.asarray(cycles, dtype=float)
    y = np.asarray(capacity_Ah, dtype=float)
    if x.shape != y.shape:
        raise BattlabError(f"knee_points: {x.size} cycles but {y.size} capacities")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    nan = (float("nan"), float("nan"))
    if x.size < MIN_KNEE_CYCLES:
        return nan
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    x_lo, x_span = x[0], x[-1] - x[0]
    y_hi, y_span = y.max(), y.max() - y.min()
    if x_span <= 0 or y_span <= 0:
        return nan
    u, v = (x - x_lo) / x_span, (y - y_hi) / y_span  # scaled: u in [0, 1], v in [-1, 0]
    gamma = 0.01

    def bw(u, a0, a1, a2, x1):
        return _bacon_watts(u, a0, a1, a2, x1, gamma)

    best, best_sse = None, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in (0.3, 0.5, 0.7, 0.85):
            try:
                p, _ = curve_fit(bw, u, v, p0=[np.interp(start, u, v), -0.5, -0.5, start],
                                 bounds=([-np.inf, -np.inf, -np.inf, 0.0], [np.inf, np.inf, np.inf, 1.0]),
                                 maxfev=5000)
            except (RuntimeError, ValueError):
                continue
            sse = float(np.sum((bw(u, *p) - v) ** 2))
            if sse < best_sse:
                best, best_sse = p, sse
    if best is None:
        return nan
    _, a1, a2, x1 = best
    before, after = a1 - a2, a1 + a2
    if not (after < 0 and after < KNEE_MIN_SLOPE_RATIO * min(before, 0.0) and 0.0 < x1 < 1.0):
        return nan  # not steeper after x1 (a rising start counts as a slope of 0), or x1 at an end
    line_sse = float(np.sum((np.polyval(np.polyfit(u, v, 1), u) - v) ** 2))
    if best_sse > KNEE_MAX_SSE_RATIO * line_sse:
        return nan
    knee = float(x_lo + x1 * x_span)

    def dbw(u, a0, a1, a2, a3, x0, x2):
        return _double_bacon_watts(u, a0, a1, a2, a3, x0, x2, gamma)

    onset, onset_sse = float("nan"), np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for frac in (0.5, 0.7, 0.85):
            x0 = frac * x1
            # slopes a1 - a2 - a3 before x0 (= before), a1 + a2 + a3 after x2 (= after), their mean in between
            p0 = [np.interp(x0, u, v), (before + after) / 2, (after - before) / 4, (after - before) / 4, x0,
                  min(x1 * 1.05, 1.0)]
            try:
                p, _ = curve_fit(dbw, u, v, p0=p0,
                                 bounds=([-np.inf] * 4 + [0.0, 0.0], [np.inf] * 4 + [x1, 1.0]), maxfev=8000)
            except (RuntimeError, ValueError):
                continue
            sse = float(np.sum((dbw(u, *p) - v) ** 2))
            lo = min(p[4], p[5])  # the earlier change point is the onset
            if sse < onset_sse and 0.0 < lo <= x1:
                onset, onset_sse = float(x_lo + lo * x_span), sse
    return knee, onset


# --------------------------------------------------------------------------- labels


@dataclass
class LifeLabels:
    """Cycle-life labels of cells, with the cells that could not be labelled.

    Attributes
    ----------
    table : DataFrame
        One row per labelled cell, columns :data:`LABEL_COLUMNS` then the input's per-cell columns.
        ``cycle_life`` (= ``end_of_life_cycle``) is NaN for a censored cell; ``last_cycle`` is its last observed
        cycle.
    set_aside : DataFrame
        ``cell``, ``reason``: cells that could not be labelled, and capacity rows left out (the reason names
        the cycle).
    settings : dict
        ``fraction``, ``reference``, ``nominal_Ah``, ``smooth``, ``knee`` and the rules' constants
        (``initial_cycles``, ``min_knee_cycles``, ``knee_min_slope_ratio``, ``knee_max_sse_ratio``).
    """

    table: pd.DataFrame
    set_aside: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_SET_ASIDE_COLUMNS))
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def unlabelled(self) -> list[str]:
        """Cells of :attr:`set_aside` that have no label row."""
        done = set(self.table["cell"].astype(str))
        return [c for c in pd.unique(self.set_aside["cell"].astype(str)) if c not in done]

    def summary(self) -> str:
        """One line: cells labelled, how many reached the threshold (their life range), censored, set aside.

        Example
        -------
        >>> t = pd.DataFrame({"cell": ["a", "b"], "cycle_life": [500.0, np.nan], "censored": [False, True],
        ...                   "last_cycle": [700, 300]})
        >>> LifeLabels(t, pd.DataFrame({"cell": ["c"], "reason": ["no usable cycle"]}),
        ...            {"fraction": 0.8, "reference": "nominal"}).summary()
        '2 cells labelled: 1 reached 80 % of nominal (life 500-500), 1 censored, 1 set aside'
        """
        t = self.table
        n, cens = len(t), int(t["censored"].astype(bool).sum())
        life = t.loc[~t["censored"].astype(bool), "cycle_life"]
        frac = float(self.settings.get("fraction", 0.8)) * 100
        text = (f"{n} cell{'s' * (n != 1)} labelled: {len(life)} reached {frac:g} % of "
                f"{self.settings.get('reference', 'nominal')}")
        if len(life):
            text += f" (life {life.min():.0f}-{life.max():.0f})"
        text += f", {cens} censored, {len(self.unlabelled)} set aside"
        n_rows = int(self.set_aside["cell"].astype(str).isin(set(t["cell"].astype(str))).sum())
        if n_rows:
            text += f" (and {n_rows} capacity row{'s' * (n_rows != 1)} of labelled cells)"
        return text

    def lower_bounds(self) -> pd.Series:
        """Per cell: its cycle life, or for a censored cell its last cycle (its life is at least that).

        Example
        -------
        >>> t = pd.DataFrame({"cell": ["a", "b"], "cycle_life": [500.0, np.nan], "censored": [False, True],
        ...                   "last_cycle": [700, 300]})
        >>> LifeLabels(t).lower_bounds().to_dict()
        {'a': 500.0, 'b': 300.0}
        """
        t = self.table
        values = np.where(t["censored"].astype(bool), t["last_cycle"].astype(float), t["cycle_life"].astype(float))
        return pd.Series(values, index=pd.Index(t["cell"].astype(str), name="cell"), name="cycle_life_lower_bound")

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``labels.csv``, ``set_aside.csv`` and ``labels.json`` (settings, summary, citations).

        Example
        -------
        >>> import tempfile
        >>> cyc = np.arange(1, 101)
        >>> lab = label_cells(pd.DataFrame({"cell": "a", "cycle": cyc, "discharge_capacity_Ah": 1 - 0.001 * cyc}),
        ...                   nominal_Ah=1.0)
        >>> folder = tempfile.mkdtemp()
        >>> sorted(lab.save(folder))
        ['labels.csv', 'labels.json', 'set_aside.csv']
        >>> back = LifeLabels.load(folder)
        >>> back.table.equals(lab.table), back.settings == lab.settings
        (True, True)
        """
        out = Path(out_dir).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / k for k in ("labels.csv", "set_aside.csv", "labels.json")}
        self.table.to_csv(paths["labels.csv"], index=False)
        self.set_aside.to_csv(paths["set_aside.csv"], index=False)
        paths["labels.json"].write_text(json.dumps({"settings": self.settings, "summary": self.summary(),
                                                    "citations": CITATIONS}, indent=1, default=str) + "\n")
        return paths

    @classmethod
    def load(cls, folder: str | Path) -> LifeLabels:
        """Read what :meth:`save` wrote."""
        folder = Path(folder).expanduser()
        for name in ("labels.csv", "set_aside.csv", "labels.json"):
            if not (folder / name).is_file():
                raise BattlabError(f"{folder}: no {name} (not a folder written by LifeLabels.save)")
        table = pd.read_csv(folder / "labels.csv", dtype={"cell": str, "reference": str}, float_precision="round_trip")
        table = _typed(table)
        aside = pd.read_csv(folder / "set_aside.csv", dtype=str, keep_default_na=False)
        settings = json.loads((folder / "labels.json").read_text())["settings"]
        return cls(table, aside, settings)


def _typed(t: pd.DataFrame) -> pd.DataFrame:
    t = t.copy()
    t["cell"] = t["cell"].astype(str)
    t["censored"] = t["censored"].astype(bool)
    for c in ("last_cycle", "n_cycles"):
        t[c] = t[c].astype(int)
    t["reference"] = t["reference"].astype(str)
    for c in ("cycle_life", "reference_capacity_Ah", "fraction", "threshold_Ah", "knee_cycle", "knee_onset_cycle",
              "end_of_life_cycle"):
        t[c] = t[c].astype(float)
    return t


def _check_settings(fraction: Any, reference: Any, smooth: Any) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.number)) \
            or not (0 < float(fraction) <= 1):
        raise BattlabError(f"fraction must be a number in (0, 1] (the share of the reference capacity that "
                           f"ends a cell's life, e.g. 0.8), got {fraction!r}")
    if reference not in ("nominal", "initial"):
        raise BattlabError(f"reference must be 'nominal' or 'initial', got {reference!r}")
    if isinstance(smooth, bool) or not isinstance(smooth, (int, np.integer)) or smooth < 1:
        raise BattlabError(f"smooth must be a whole number of cycles >= 1 (1: no smoothing), got {smooth!r}")


def _nominal_for(cell: str, group: pd.DataFrame, nominal_Ah: Any) -> float | None:
    if isinstance(nominal_Ah, Mapping):
        q = nominal_Ah.get(cell)
        if q is not None:
            value = _positive_float(q)
            if value is None:
                raise BattlabError(f"{cell}: nominal_Ah {q!r} is not a positive number of Ah")
            return value
    elif nominal_Ah is not None:
        return float(nominal_Ah)
    if "nominal_capacity_Ah" in group:
        return _positive_float(group["nominal_capacity_Ah"].iloc[0])
    return None


def label_cells(cells: Any, *, nominal_Ah: float | dict[str, float] | None = None, fraction: float = 0.8,
                reference: str = "nominal", smooth: int = 5, knee: bool = True) -> LifeLabels:
    """Cycle life (first cycle below ``fraction`` x reference capacity), censoring, knee and knee-onset per cell.

    ``cells`` is anything :func:`capacity_table` takes. The capacity is smoothed by a centred rolling median of
    ``smooth`` observed cycles before thresholding (``smooth=1``: raw), so a one-cycle dip does not end a life.
    The reference is the nominal capacity (``nominal_Ah``, else the table's ``nominal_capacity_Ah`` column /
    the file's header) or, with ``reference="initial"``, the cell's initial capacity (module docstring). A cell
    that never falls below the threshold is censored: ``cycle_life`` NaN, ``last_cycle`` its last cycle. The
    crossing counts only after the capacity has been at or above the threshold; a cell never there is set aside.
    ``knee=False`` skips :func:`knee_points` (its columns are then NaN). Per-cell columns of the input (constant
    within each cell) follow the label columns.

    Example
    -------
    >>> cyc = np.arange(1, 201)
    >>> q = 1.0 - 0.002 * cyc
    >>> q[49] = 0.5                         # a one-cycle glitch at cycle 50: not the end of life
    >>> t = pd.DataFrame({"cell": "a", "cycle": cyc, "discharge_capacity_Ah": q, "temperature_C": 25})
    >>> t2 = pd.DataFrame({"cell": "b", "cycle": cyc[:60], "discharge_capacity_Ah": 1.0, "temperature_C": 35})
    >>> lab = label_cells(pd.concat([t, t2]), nominal_Ah=1.0, knee=False)
    >>> lab.table[["cell", "cycle_life", "censored", "last_cycle", "temperature_C"]].values.tolist()
    [['a', 101.0, False, 200, 25], ['b', nan, True, 60, 35]]
    >>> label_cells(t)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    battlab.errors.BattlabError: a: no nominal capacity in the file; give nominal_Ah= (CLI --nominal) or ...
    >>> float(label_cells(t, reference="initial").table.loc[0, "reference_capacity_Ah"])
    0.994
    """
    _check_settings(fraction, reference, smooth)
    if nominal_Ah is not None and not isinstance(nominal_Ah, Mapping) and _positive_float(nominal_Ah) is None:
        raise BattlabError(f"nominal_Ah must be a positive number of Ah (or a dict of cell to Ah), got {nominal_Ah!r}")
    table, aside = _capacity_table(cells)
    if isinstance(nominal_Ah, Mapping):
        nominal_Ah = {str(k): v for k, v in nominal_Ah.items()}  # cell names are text in the table
        known = set(table["cell"]) | set(aside["cell"].astype(str))
        unknown = [str(k) for k in nominal_Ah if str(k) not in known]
        if unknown:
            raise BattlabError(f"nominal_Ah names {len(unknown)} cell{'s' * (len(unknown) != 1)} not found: "
                               f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} "
                               f"(cells: {', '.join(list(pd.unique(table['cell']))[:5])}"
                               f"{' ...' if table['cell'].nunique() > 5 else ''})")
    extra = [c for c in table.columns if c not in CAPACITY_COLUMNS
             and bool((table.groupby("cell", sort=False)[c].nunique(dropna=False) <= 1).all())]
    rows: list[dict[str, Any]] = []
    never: list[dict[str, str]] = []
    for cell, group in table.groupby("cell", sort=False):
        cycles = group["cycle"].to_numpy(dtype=int)
        q = group["discharge_capacity_Ah"].to_numpy(dtype=float)
        smoothed = pd.Series(q).rolling(int(smooth), center=True, min_periods=1).median().to_numpy()
        if reference == "nominal":
            ref = _nominal_for(str(cell), group, nominal_Ah)
            if ref is None:
                raise BattlabError(f"{cell}: no nominal capacity in the file; give nominal_Ah= (CLI --nominal) "
                                   "or reference='initial'")
        else:
            early = q[1:INITIAL_CYCLES + 1] if len(q) > 1 else q
            ref = float(pd.Series(early).rolling(int(smooth), center=True, min_periods=1).median().max())
        threshold = round(float(fraction) * ref, 12)  # 0.8 * 1.1 is 0.8800000000000001: a reading of 0.88 is not below
        above = np.flatnonzero(smoothed >= threshold)
        if not len(above):
            never.append({"cell": str(cell), "reason": f"capacity never at or above the threshold {threshold:.6g} Ah "
                          f"({fraction:g} x {reference} {ref:.6g} Ah; largest smoothed capacity "
                          f"{np.max(smoothed):.6g} Ah at cycle {cycles[np.argmax(smoothed)]}): wrong nominal "
                          "capacity?"})
            continue
        start = above[0]  # a partial first discharge (a cell shipped half charged) does not end a life
        below = start + np.flatnonzero(smoothed[start:] < threshold)
        life = float(cycles[below[0]]) if len(below) else float("nan")
        k, onset = float("nan"), float("nan")
        if knee:
            end = below[0] + 1 if len(below) else len(cycles)
            k, onset = knee_points(cycles[start:end], q[start:end])
        row = {"cell": str(cell), "cycle_life": life, "censored": not len(below), "last_cycle": int(cycles[-1]),
               "n_cycles": len(cycles), "reference": reference, "reference_capacity_Ah": ref,
               "fraction": float(fraction), "threshold_Ah": threshold, "knee_cycle": k,
               "knee_onset_cycle": onset, "end_of_life_cycle": life}
        row.update({c: group[c].iloc[0] for c in extra})
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(LABEL_COLUMNS) + extra)
    out = _typed(out) if len(out) else out
    nominal_setting: Any = ({str(k): _positive_float(v) for k, v in nominal_Ah.items()}
                            if isinstance(nominal_Ah, Mapping) else None if nominal_Ah is None else float(nominal_Ah))
    settings = {"fraction": float(fraction), "reference": reference, "nominal_Ah": nominal_setting,
                "smooth": int(smooth), "knee": bool(knee), "initial_cycles": INITIAL_CYCLES,
                "min_knee_cycles": MIN_KNEE_CYCLES, "knee_min_slope_ratio": KNEE_MIN_SLOPE_RATIO,
                "knee_max_sse_ratio": KNEE_MAX_SSE_RATIO}
    aside = pd.concat([aside, pd.DataFrame(never, columns=_SET_ASIDE_COLUMNS)], ignore_index=True) if never else aside
    return LifeLabels(out, aside.reset_index(drop=True), settings)
