"""Read cycler files into one tidy table per cell, with per-cycle summaries.

:func:`read_cycler_file` recognises the file by its content (not its name) and returns a :class:`CellData`:

- ``data``: one row per recorded point, the columns of :data:`TIDY_COLUMNS` (SI-ish units in the names:
  seconds, amperes, volts, ampere-hours, watt-hours, degrees Celsius, ohms). Current is positive on charge,
  negative on discharge, whatever the vendor's convention. Quantities a file does not hold are NaN and
  left out of ``present``.
- ``cycles``: one row per cycle: discharge and charge capacity, discharge energy, coulombic efficiency,
  mean discharge voltage, internal resistance and temperature when the file has them, and whether the
  cycle is ``usable`` (with the ``reason`` when it is not). Nothing is dropped: points without a cycle
  number are kept in ``data`` and reported in ``unusable``.

Who reads what
--------------
One module per format under :mod:`battlab.cycling.formats`, listed with the package that reads it in
:data:`battlab.cycling.formats.REGISTRY` (and the reader table of docs/cycling.md). Formats are found from the file's
content: its magic bytes, its header, its column names, never its extension.

Example
-------
>>> import pandas as pd, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "cell.csv")
>>> pd.DataFrame({"cycle": [1, 1, 1, 1], "time_s": [0, 1800, 3600, 7200],
...               "current_A": [1.0, 1.0, -1.0, -1.0], "voltage_V": [3.4, 3.5, 3.3, 3.0]}).to_csv(path, index=False)
>>> cell = read_cycler_file(path)
>>> cell.format, cell.cycles["discharge_capacity_Ah"].round(3).tolist()
('csv', [1.0])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.formats import REGISTRY, by_name, describe_binary, is_binary, read_head, text_head
from battlab.cycling.formats.columns import map_named_columns
from battlab.cycling.formats.plain import split_header
from battlab.errors import DataFileError

__all__ = ["TIDY_COLUMNS", "CellData", "read_cycler_file", "read_bytes", "safe_file_name", "detect_format",
           "derive_cycles", "summarize_cycles", "FORMATS"]

#: Columns of the tidy table, in order.
TIDY_COLUMNS = ("cycle", "step", "time_s", "current_A", "voltage_V", "charge_capacity_Ah",
                "discharge_capacity_Ah", "charge_energy_Wh", "discharge_energy_Wh", "temperature_C",
                "internal_resistance_ohm")
#: Formats :func:`read_cycler_file` recognises (:data:`battlab.cycling.formats.REGISTRY`, in detection order).
FORMATS = tuple(f.name for f in REGISTRY)
#: Currents below this magnitude (A) count as rest when telling charge from discharge.
CURRENT_EPS = 1e-6


@dataclass
class CellData:
    """One cell read from a cycler file.

    Attributes
    ----------
    name : str
        The file's name without its extension.
    source : str
        Path of the file read.
    format : str
        One of :data:`FORMATS`.
    data : DataFrame
        The tidy table (:data:`TIDY_COLUMNS`), one row per point, in file order.
    cycles : DataFrame
        Per-cycle summary (see :func:`summarize_cycles`), with ``usable`` and ``reason``.
    present : list of str
        Tidy columns the file really holds (the others are NaN).
    metadata : dict
        What the reader found in the file's header (protocol, channel, nominal capacity...).
    """

    name: str
    source: str
    format: str
    data: pd.DataFrame
    cycles: pd.DataFrame
    present: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def unusable(self) -> pd.DataFrame:
        """Cycles (and points without a cycle number) that cannot be used, with the reason."""
        bad = self.cycles.loc[~self.cycles["usable"], ["cycle", "n_points", "reason"]]
        n_nocycle = int(self.data["cycle"].isna().sum())
        if n_nocycle:
            bad = pd.concat([bad, pd.DataFrame({"cycle": [pd.NA], "n_points": [n_nocycle],
                                                "reason": ["no cycle number (blank cycle index)"]})],
                            ignore_index=True)
        return bad.reset_index(drop=True)

    @property
    def usable_cycles(self) -> list[int]:
        """Numbers of the cycles with a usable discharge."""
        return [int(c) for c in self.cycles.loc[self.cycles["usable"], "cycle"]]

    def summary(self) -> str:
        """One line: points, cycles, usable cycles.

        Example
        -------
        >>> cycles = pd.DataFrame({"cycle": [1], "n_points": [1], "usable": [False], "reason": ["no discharge"]})
        >>> cell = CellData("c", "c.csv", "csv", pd.DataFrame({"cycle": pd.array([1], dtype="Int64")}), cycles)
        >>> cell.summary()
        'c (csv): 1 points, 1 cycles, 0 usable; unusable: cycle 1 (no discharge)'
        """
        bad = self.unusable
        text = f"{self.name} ({self.format}): {len(self.data)} points, {len(self.cycles)} cycles, " \
               f"{len(self.usable_cycles)} usable"
        if len(bad):
            items = [f"{'cycle ' + str(c) if pd.notna(c) else str(n) + ' points'} ({r})"
                     for c, n, r in bad[["cycle", "n_points", "reason"]].itertuples(index=False)]
            text += "; unusable: " + ", ".join(items[:5]) + (f", ... ({len(items)} in all)" if len(items) > 5 else "")
        return text

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``data.parquet``, ``cycles.csv``, ``unusable.csv`` and ``cell.json`` into ``out_dir``.

        Example
        -------
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> cycles = pd.DataFrame({"cycle": [1], "n_points": [1], "usable": [False], "reason": ["no discharge"]})
        >>> cell = CellData("c", "c.csv", "csv", pd.DataFrame({"cycle": pd.array([1], dtype="Int64")}), cycles)
        >>> sorted(p.name for p in cell.save(folder).values())
        ['cell.json', 'cycles.csv', 'data.parquet', 'unusable.csv']
        >>> CellData.load(folder).cycles["reason"].tolist()
        ['no discharge']
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / k for k in ("data.parquet", "cycles.csv", "unusable.csv", "cell.json")}
        self.data.to_parquet(paths["data.parquet"], index=False)
        self.cycles.to_csv(paths["cycles.csv"], index=False)
        self.unusable.to_csv(paths["unusable.csv"], index=False)
        meta = {"name": self.name, "source": self.source, "format": self.format, "present": list(self.present),
                "metadata": self.metadata}
        paths["cell.json"].write_text(json.dumps(meta, indent=2, default=str))
        return paths

    @classmethod
    def load(cls, folder: str | Path) -> CellData:
        """Read a cell written by :meth:`save`."""
        folder = Path(folder)
        meta_path = folder / "cell.json"
        if not meta_path.is_file():
            raise DataFileError(f"{folder}: no cell.json (not a folder written by CellData.save)")
        meta = json.loads(meta_path.read_text())
        data = pd.read_parquet(folder / "data.parquet")
        cycles = pd.read_csv(folder / "cycles.csv", keep_default_na=False, na_values=[""])
        cycles["reason"] = cycles["reason"].fillna("").astype(str)
        cycles["usable"] = cycles["usable"].astype(bool)
        return cls(meta["name"], meta["source"], meta["format"], data, cycles, meta.get("present", []),
                   meta.get("metadata", {}))


# --------------------------------------------------------------------------- format detection


def _check_file(path: Path) -> bytes:
    if not path.exists():
        raise DataFileError(f"{path}: no such file")
    if path.is_dir():
        raise DataFileError(f"{path}: a folder, not a file (battlab cycling read takes a folder or a glob "
                            "to read every cell in it)")
    head = read_head(path)
    if not head.strip():
        raise DataFileError(f"{path}: empty file")
    return head


def detect_format(path: str | Path) -> str:
    """The cycler format of a file, from its first bytes: the name of one of :data:`FORMATS`.

    Raises
    ------
    DataFileError
        Missing or empty file, a binary file no registered format reads (naming what it looks like), or a text
        whose header names no current and voltage column.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.csv")
    >>> _ = open(p, "w").write("Data_Point,Test_Time,Step_Index,Cycle_Index,Current,Voltage\\n0,0,1,1,0,3.3\\n")
    >>> detect_format(p)
    'arbin'
    """
    path = _user_path(path)
    head = _check_file(path)
    for fmt in REGISTRY:
        if fmt.sniff(head, path):
            return fmt.name
    if is_binary(head):
        what = describe_binary(head, path)
        if ":" in what:  # the description already says what to do (LANHE: export as Excel; a zip: unpack it)
            raise DataFileError(f"{path}: {what}")
        raise DataFileError(f"{path}: {what}: no reader for this binary format in battlab; "
                            f"export it as text/CSV or Excel (formats read: {', '.join(FORMATS)})")
    first = text_head(head).split("\n", 1)[0].strip()
    if first.startswith("version https://git-lfs.github.com/spec/"):
        raise DataFileError(f"{path}: a Git LFS pointer, not the data itself (run `git lfs pull` in its repository)")
    cols = split_header(first)
    if len(cols) > 1:
        found = map_named_columns(cols)
        missing = [q for q in ("current_A", "voltage_V") if q not in found]
        raise DataFileError(
            f"{path}: unknown cycler file format: no {' and no '.join(m.split('_')[0] for m in missing)} column "
            f"in the header ({', '.join(cols[:12])}{', ...' if len(cols) > 12 else ''}); known formats: "
            f"{', '.join(FORMATS)} (a plain CSV needs columns named like cycle, time_s, current_A, voltage_V)")
    raise DataFileError(f"{path}: unknown cycler file format (first line {first[:80]!r}); known formats: "
                        f"{', '.join(FORMATS)}")


def _user_path(path: str | Path) -> Path:
    """A path as users type it: ``~`` expanded; relative paths stay relative (readers that need an absolute path
    resolve it themselves), so messages name the file as the user wrote it."""
    return Path(path).expanduser()


# --------------------------------------------------------------------------- cycle numbers


def derive_cycles(current: np.ndarray | pd.Series) -> np.ndarray:
    """Cycle numbers (from 1) from the direction of the current, for files whose cycle column is missing or never
    increments.

    The first direction the cell is driven in (charge, or discharge for a half cell that starts by lithiation)
    opens a cycle; each time the current turns back to that direction after the other one was seen, a new cycle
    begins. Rest points belong to the cycle they fall in; points before the first non-rest point to cycle 1.

    Example
    -------
    >>> derive_cycles([0.0, 1.0, 1.0, 0.0, -1.0, -1.0, 0.0, 1.0, -1.0]).tolist()
    [1, 1, 1, 1, 1, 1, 1, 2, 2]
    >>> derive_cycles([-1.0, 0.0, 1.0, -1.0]).tolist()   # a half cell starting with a discharge
    [1, 1, 1, 2]
    """
    i = np.asarray(current, dtype=float)
    sign = np.where(i > CURRENT_EPS, 1, np.where(i < -CURRENT_EPS, -1, 0))
    moving = sign[sign != 0]
    if not len(moving):
        return np.ones(len(i), dtype=int)
    nz = np.flatnonzero(sign)
    opener = sign[nz[0]]
    starts = np.zeros(len(i), dtype=int)
    turns = (sign[nz[1:]] == opener) & (sign[nz[:-1]] == -opener)  # back to the opening direction
    starts[nz[1:][turns]] = 1
    return 1 + np.cumsum(starts)


def _cycle_column_is_stuck(data: pd.DataFrame, in_file: bool) -> bool:
    """No cycle column in the file, or one that never increments although the cell is charged and discharged
    again. A column the file has but leaves blank is not replaced: its points are listed as without a cycle."""
    if not in_file:
        return True
    cycles = pd.to_numeric(data["cycle"], errors="coerce")
    if cycles.isna().all() or cycles.nunique() > 1:
        return False
    return len(np.unique(derive_cycles(data["current_A"].to_numpy(dtype=float)))) > 1


# --------------------------------------------------------------------------- summaries


#: Columns of :func:`summarize_cycles`' table.
_SUMMARY_COLUMNS = ["cycle", "n_points", "start_s", "duration_s", "n_discharge_points", "charge_capacity_Ah",
                    "discharge_capacity_Ah", "discharge_energy_Wh", "coulombic_efficiency", "mean_discharge_voltage_V",
                    "min_voltage_V", "max_voltage_V", "internal_resistance_ohm", "temperature_mean_C",
                    "temperature_max_C", "usable", "reason"]


def summarize_cycles(data: pd.DataFrame) -> pd.DataFrame:
    """Per-cycle summary of a tidy table (:data:`TIDY_COLUMNS`).

    Capacities are the rise of the cycle's counters (``max - min`` of ``charge_capacity_Ah`` /
    ``discharge_capacity_Ah``), or the integral of the current when the file has no counters. A cycle is
    ``usable`` when it has a discharge (points with current below ``-CURRENT_EPS`` and a positive discharge
    capacity); otherwise ``reason`` says why. Vectorised over cycles (one pass of numpy reductions, no loop per
    cycle), so a file of thousands of cycles summarises in milliseconds.

    Example
    -------
    >>> t = pd.DataFrame({"cycle": [1, 1, 1, 2, 2], "time_s": [0.0, 1800, 3600, 7200, 10800],
    ...                   "current_A": [-1.0, -1.0, -1.0, 1.0, 1.0], "voltage_V": [3.3, 3.2, 3.0, 3.4, 3.5]})
    >>> s = summarize_cycles(t)
    >>> s[["cycle", "discharge_capacity_Ah", "usable", "reason"]].values.tolist()
    [[1, 1.0, True, ''], [2, 0.0, False, 'no discharge (no point with negative current)']]
    """
    def col(name: str) -> np.ndarray:
        return data[name].to_numpy(dtype=float, na_value=np.nan) if name in data else np.full(len(data), np.nan)

    cycle = pd.to_numeric(data["cycle"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    keep = ~np.isnan(cycle)
    order = np.flatnonzero(keep)[np.argsort(cycle[keep], kind="stable")]
    if not len(order):
        out = pd.DataFrame(columns=_SUMMARY_COLUMNS)
        out["usable"] = out["usable"].astype(bool)
        out["reason"] = out["reason"].astype(str)
        return out
    c = cycle[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    first = np.zeros(len(c), dtype=bool)
    first[starts] = True
    n = np.diff(np.r_[starts, len(c)])
    t, i, v = col("time_s")[order], col("current_A")[order], col("voltage_V")[order]

    def red(ufunc, x):
        return ufunc.reduceat(x, starts)

    def finite_any(x):
        return red(np.add, np.isfinite(x).astype(int)) > 0

    def nanrange(x):
        with np.errstate(invalid="ignore"):
            return red(np.fmax, x) - red(np.fmin, x)

    # per point: the step from the previous point of the same cycle (left rectangles), 0 at a cycle's first point
    dt = np.diff(t, prepend=t[:1])
    dt[first] = 0.0
    prev_i = np.r_[0.0, i[:-1]]
    prev_v = np.r_[0.0, v[:-1]]
    dis = i < -CURRENT_EPS
    out: dict[str, Any] = {"cycle": c[starts].astype(int), "n_points": n}
    tmin, tmax = red(np.fmin, t), red(np.fmax, t)
    out["start_s"], out["duration_s"] = tmin, tmax - tmin
    out["n_discharge_points"] = red(np.add, dis.astype(int))
    for kind, sign in (("charge", 1), ("discharge", -1)):
        counter = col(f"{kind}_capacity_Ah")[order]
        part = np.where(sign * prev_i > CURRENT_EPS, np.abs(prev_i), 0.0) * dt
        part[first] = 0.0
        integral = red(np.add, part) / 3600.0
        out[f"{kind}_capacity_Ah"] = np.where(finite_any(counter), nanrange(counter), integral)
    energy = np.abs(col("discharge_energy_Wh")[order])
    prev_dis = np.r_[False, dis[:-1]]
    e_part = np.where(prev_dis, np.abs(prev_v * prev_i), 0.0) * dt
    e_part[first] = 0.0
    e_int = red(np.add, np.nan_to_num(e_part, nan=0.0)) / 3600.0
    out["discharge_energy_Wh"] = np.where(finite_any(energy), nanrange(energy), e_int)
    qc, qd = out["charge_capacity_Ah"], out["discharge_capacity_Ah"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["coulombic_efficiency"] = np.where(qc > 0, qd / np.where(qc > 0, qc, 1.0), np.nan)
        out["mean_discharge_voltage_V"] = np.where(qd > 0, out["discharge_energy_Wh"] / np.where(qd > 0, qd, 1.0),
                                                   np.nan)
    out["min_voltage_V"], out["max_voltage_V"] = red(np.fmin, v), red(np.fmax, v)
    ir = col("internal_resistance_ohm")[order]
    if np.isfinite(ir).any():  # a median per cycle: pandas' grouped median (most files have no resistance)
        out["internal_resistance_ohm"] = pd.Series(ir).groupby(np.repeat(np.arange(len(starts)), n)).median().to_numpy()
    else:
        out["internal_resistance_ohm"] = np.full(len(starts), np.nan)
    temp = col("temperature_C")[order]
    n_temp = red(np.add, np.isfinite(temp).astype(int))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["temperature_mean_C"] = np.where(n_temp > 0, red(np.add, np.nan_to_num(temp)) / np.maximum(n_temp, 1),
                                             np.nan)
    out["temperature_max_C"] = red(np.fmax, temp)
    nd = out["n_discharge_points"]
    reason = np.select([nd == 0, ~(qd > 0), nd < 3],
                       ["no discharge (no point with negative current)",
                        "no discharge capacity (the discharge counter does not rise)", ""], "")
    few = (nd > 0) & (qd > 0) & (nd < 3)
    reason = np.where(few, np.char.add(np.char.add("discharge has only ", nd.astype(str)), " points"), reason)
    out["usable"] = reason == ""
    out["reason"] = reason.astype(str)
    frame = pd.DataFrame(out, columns=_SUMMARY_COLUMNS)
    frame["usable"] = frame["usable"].astype(bool)
    frame["reason"] = frame["reason"].astype(object).astype(str)
    return frame


# --------------------------------------------------------------------------- entry point


def read_cycler_file(path: str | Path, format: str | None = None) -> CellData:
    """Read a cycler file (any of :data:`FORMATS`, found from the content) into a :class:`CellData`.

    Parameters
    ----------
    path
        The file, as users type it: relative or absolute, ``~``, spaces or brackets in the name, any case of
        extension (the format is found from the content).
    format
        One of :data:`FORMATS` to skip detection (default: detected from the content).

    Notes
    -----
    When the file has no cycle column, or one that never increments although the cell is charged and discharged
    more than once, cycle numbers are derived from the direction of the current (:func:`derive_cycles`), the
    file's own column is kept in ``metadata["file_cycle_column"]`` and ``metadata["cycles_derived"]`` says so
    (``cell.json``). No point is merged or dropped.

    Raises
    ------
    DataFileError
        One line naming the file and the problem: missing/empty file, unknown format (a binary one named by what
        it looks like), no current, voltage, time or cycle column, a value that is not a number.
    """
    path = _user_path(path)
    if format is None:
        fmt = detect_format(path)
    else:
        _check_file(path)
        fmt = format
    try:
        spec = by_name(fmt)
    except KeyError:
        raise DataFileError(f"{path}: unknown format {fmt!r}; formats are {', '.join(FORMATS)}") from None
    raw = spec.read(path)
    tidy, present, meta = raw.data, list(raw.present), dict(raw.metadata)
    if not len(tidy):
        raise DataFileError(f"{path}: header only, no data rows")
    tidy = _tidy_frame(tidy)
    for col in ("time_s", "voltage_V", "current_A"):
        if tidy[col].isna().all():
            raise DataFileError(f"{path}: the {col.split('_')[0]} column holds no number")
    had = "cycle" in present
    if _cycle_column_is_stuck(tidy, had):
        values = tidy["cycle"].dropna()
        meta["file_cycle_column"] = f"constant {values.iloc[0]}" if had and len(values) else "none"
        tidy["cycle"] = pd.array(derive_cycles(tidy["current_A"].to_numpy(dtype=float)), dtype="Int64")
        meta["cycles_derived"] = ("from the charge/discharge steps: the file's cycle column "
                                  + ("never increments" if had else "is missing")
                                  + "; a cycle starts each time the current returns to the first direction driven")
        if "cycle" not in present:
            present.append("cycle")
    return CellData(_cell_name(path), str(path), fmt, tidy, summarize_cycles(tidy),
                    [c for c in TIDY_COLUMNS if c in present], meta)


def _tidy_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """The tidy table in one construction: every column of :data:`TIDY_COLUMNS` in order, floats (NaN where the
    file has no value or no such column), ``cycle`` and ``step`` as nullable integers."""
    n = len(raw)
    columns: dict[str, Any] = {}
    for col in TIDY_COLUMNS:
        if col not in raw:
            values = np.full(n, np.nan)
        else:
            series = raw[col]
            if not pd.api.types.is_numeric_dtype(series):
                series = pd.to_numeric(series, errors="coerce")
            values = series.to_numpy(dtype=float, na_value=np.nan)
        if col in ("cycle", "step"):
            missing = np.isnan(values)
            values = pd.arrays.IntegerArray(np.where(missing, 0, np.round(values)).astype(np.int64), missing)
        columns[col] = values
    return pd.DataFrame(columns)


def _cell_name(path: Path) -> str:
    """The cell's name: the file name without its extension (``61[07005012].nda`` -> ``61[07005012]``)."""
    return path.stem


def safe_file_name(name: str) -> str:
    r"""A file's own name from what a browser or user sends, without folders; spaces and brackets kept.

    Example
    -------
    >>> safe_file_name("C:\\data\\61[07005012] cell.NDA"), safe_file_name("../x.csv"), safe_file_name("..")
    ('61[07005012] cell.NDA', 'x.csv', 'upload')
    """
    import re

    base = Path(str(name).replace("\\", "/")).name
    base = re.sub(r"[^\w.\[\] ()+,#-]", "_", base).strip()
    if not base.strip("."):  # "", "." and ".." name folders, not files
        base = "upload"
    return base[:160]


def read_bytes(content: bytes | memoryview, name: str = "upload.csv") -> CellData:
    """Read a cycler file given as bytes (an upload), via a temporary file named like ``name`` (its own name,
    :func:`safe_file_name`), deleted afterwards. Errors name the file as ``name``, never the temporary path; a
    reader's own failure on an odd file is still one line naming the file.

    Example
    -------
    >>> read_bytes(b"cycle,time_s,current_A,voltage_V\\n1,0,-1,3.3\\n1,3600,-1,3.0\\n", "up.csv").source
    'up.csv'
    """
    import tempfile

    from battlab.errors import BattlabError

    safe = safe_file_name(name)
    with tempfile.TemporaryDirectory(prefix="battlab-read-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(bytes(content))
        try:
            cell = read_cycler_file(path)
        except BattlabError as exc:
            raise type(exc)(str(exc).replace(str(path), safe)) from None
        except Exception as exc:  # a reader's own failure on an odd file: still one line naming the file
            text = f"{type(exc).__name__}: {exc}".replace(str(path), safe).splitlines()[0]
            raise DataFileError(f"{safe}: cannot read the file as a cycler export ({text})") from None
    cell.source = safe
    return cell


def read_text(text: str, name: str = "upload.csv") -> CellData:
    """Read a cycler export given as text (e.g. an upload), via a temporary file named ``name``."""
    return read_bytes(text.encode("utf-8"), name)
