"""Neware BTS CSV exports, read by battlab with pandas: the flat export (one header, one row per record) and the
three-level "regular" export (cycle rows, step rows and record rows, each level with its own header line and
indented by one more leading empty field).

cellpy reads the flat export through a per-version configuration file but pulls in PyGithub, fabric, cookiecutter,
pyodbc, tables, polars and more; NewareNDA reads only the binary ``.nda``/``.ndax``. So battlab reads the text:

- columns by name and unit through :mod:`battlab.cycling.formats.columns` (``Current(A)`` or ``Current(mA)``,
  ``Voltage(V)``, ``Chg. Cap.(Ah)``/``Capacitance_Chg(mAh)``, ``DChg. Energy(Wh)``/``Engy_DChg(mWh)``,
  ``Cycle Index``/``Cycle ID``, ``Step Index``/``Step ID``);
- time from ``Cumulative Time``/``Total Time`` (``h:mm:ss``, hours past 24), else from the ``Date``/``Realtime``
  stamps, else by adding up the per-step ``Time`` of each step;
- one ``Capacity``/``Energy`` column for both directions (the regular export's records) split by the current's
  direction; the step's capacity and energy counters (restarting at each step) as counters over each cycle, so that a
  cycle's charge is the sum of its charge steps;
- the current's sign from ``Step Type``/``Step Name`` (``DChg`` negative) when the file writes ``|I|``;
- in the regular export, each record row gets the cycle and step of the cycle and step rows above it; the cycle
  and step rows themselves are summaries, not points (their number is in the metadata).

Example
-------
>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "cell.csv")
>>> _ = open(p, "w").write("Cycle ID,Cap_Chg(mAh),Cap_DChg(mAh)\\n,Step ID,Step Name,Step Time(h:min:s.ms)\\n"
...     ",,Record ID,Time(h:min:s.ms),Voltage(V),Current(mA),Realtime\\n1,10,9\\n,1,CC_Chg,01:00:00.000\\n"
...     ",,1,00:00:00.000,3.5,10,2024-01-01 00:00:00\\n,,2,01:00:00.000,4.2,10,2024-01-01 01:00:00\\n"
...     ",2,CC_DChg,01:00:00.000\\n,,3,00:00:00.000,4.1,-9,2024-01-01 01:00:01\\n")
>>> cell = read(Path(p))
>>> cell.data[["cycle", "step", "time_s", "current_A"]].round(6).values.tolist()
[[1.0, 1.0, 0.0, 0.01], [1.0, 1.0, 3600.0, 0.01], [1.0, 2.0, 3601.0, -0.009]]
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.formats import RawCell, read_head, text_head
from battlab.cycling.formats.columns import (
    check_numbers,
    looks_like_duration,
    map_named_columns,
    name_and_unit,
    parse_duration,
    parse_stamps,
    read_delimited,
    split_counter,
    to_number,
)
from battlab.errors import DataFileError

__all__ = ["read", "sniff"]

# Neware's own names -> names columns.py maps (the flat export's and the regular export's spellings)
_RENAME = {
    "chg. cap.": "charge capacity", "dchg. cap.": "discharge capacity", "capacitance_chg": "charge capacity",
    "capacitance_dchg": "discharge capacity", "cap_chg": "charge capacity", "cap_dchg": "discharge capacity",
    "chg. energy": "charge energy", "dchg. energy": "discharge energy", "engy_chg": "charge energy",
    "engy_dchg": "discharge energy", "cycle index": "cycle", "cycle id": "cycle", "step index": "step",
    "step id": "step", "voltage": "voltage", "current": "current",
}
_TOTAL_TIME = ("cumulative time", "total time", "test time", "total time(h:min:s.ms)")
_STAMP = ("date", "realtime", "real time", "absolute time", "system time")
_STEP_TIME = ("time", "step time", "relative time")
_STEP_KIND = ("step type", "step name")


def _is_regular(lines: list[str]) -> bool:
    return len(lines) > 2 and re.match(r'^"?cycle (id|index)', lines[0], re.I) is not None \
        and re.match(r'^\s*[,;\t]"?step (id|index)', lines[1], re.I) is not None \
        and re.match(r'^\s*[,;\t]{2}"?(record id|record index|datapoint|data point)', lines[2], re.I) is not None


def sniff(head: bytes, path: Path) -> bool:
    """A Neware export: the regular export's three header lines, or a flat header with Neware's ``DChg`` names and
    a step type column."""
    lines = text_head(head).splitlines()
    if _is_regular(lines):
        return True
    first = lines[0].lower() if lines else ""
    return "dchg" in first and any(k in first for k in _STEP_KIND) and "voltage" in first


def _plain(header: str) -> str:
    """A Neware header in the spelling columns.py maps (``Chg. Cap.(Ah)`` -> ``charge capacity(Ah)``)."""
    name, unit = name_and_unit(header)
    name = _RENAME.get(name, name)
    return f"{name}({unit})" if unit else name


def _time(path: Path, raw: pd.DataFrame, step: pd.Series | None, meta: dict[str, Any]) -> pd.Series:
    cols = {name_and_unit(c)[0]: c for c in raw.columns}
    for name in _TOTAL_TIME:
        if name in cols and looks_like_duration(raw[cols[name]]):
            meta["time_from"] = cols[name]
            return parse_duration(raw[cols[name]])
    for name in _STAMP:
        if name in cols:
            stamps = parse_stamps(raw[cols[name]])
            if stamps.notna().any():
                meta["time_from"] = f"{cols[name]} (stamps)"
                return (stamps - stamps.dropna().iloc[0]).dt.total_seconds()
    for name in _STEP_TIME:  # per-step times: add up each step's end
        if name in cols:
            t = parse_duration(raw[cols[name]])
            if step is None:
                raise DataFileError(f"{path}: Neware export with only a per-step time column ({cols[name]!r}) and "
                                    "no step column")
            new_step = (step != step.shift()).to_numpy()
            seg = np.cumsum(new_step)
            ends = t.groupby(seg).max()
            offset = ends.cumsum().shift(fill_value=0.0)
            meta["time_from"] = f"{cols[name]} (per step, added up)"
            return t + offset.reindex(seg).to_numpy()
    raise DataFileError(f"{path}: Neware export without a time column (columns: {', '.join(raw.columns[:15])})")


def _tidy(path: Path, raw: pd.DataFrame, meta: dict[str, Any]) -> RawCell:
    raw = raw.drop(columns=[c for c in raw.columns if not str(c).strip() or str(c).startswith("Unnamed")])
    names = {c: _plain(str(c)) for c in raw.columns}
    timing = set(_TOTAL_TIME) | set(_STAMP) | set(_STEP_TIME)  # read by _time, whatever their unit
    quantities = {q: v for q, v in map_named_columns([names[c] for c in raw.columns
                                                      if name_and_unit(str(c))[0] not in timing]).items()
                  if q != "time_s"}
    back = {v: k for k, v in names.items()}
    missing = [q for q in ("current_A", "voltage_V") if q not in quantities]
    if missing:
        raise DataFileError(f"{path}: Neware export without a {' or '.join(m.split('_')[0] for m in missing)} "
                            f"column (columns: {', '.join(map(str, raw.columns[:15]))})")
    if not len(raw):
        raise DataFileError(f"{path}: header only, no data rows")
    tidy = pd.DataFrame(index=raw.index)
    for q, (name, factor) in quantities.items():
        col = back[name]
        values = to_number(raw[col])
        if q in ("current_A", "voltage_V"):
            check_numbers(path, raw[col], values, col)
        tidy[q] = values * factor
    tidy["time_s"] = _time(path, raw, tidy.get("step"), meta)
    kind_col = next((c for c in raw.columns if name_and_unit(str(c))[0] in _STEP_KIND), None)
    if kind_col is not None and (tidy["current_A"].dropna() >= 0).all():
        kind = raw[kind_col].astype(str).str.lower()
        dis = kind.str.contains("dchg|discharge", regex=True)
        if dis.any():
            tidy["current_A"] = tidy["current_A"].abs().where(~dis, -tidy["current_A"].abs())
            meta["current_sign"] = f"from {kind_col!r} (DChg negative)"
    direction = pd.Series(np.where(tidy["current_A"] > 0, "C", np.where(tidy["current_A"] < 0, "D", "")),
                          index=tidy.index)
    cyc = tidy["cycle"] if "cycle" in tidy and tidy["cycle"].nunique() > 1 else None
    for name, kind in (("capacity", "capacity_Ah"), ("energy", "energy_Wh")):  # one step counter for both directions
        col = next((c for c in raw.columns if name_and_unit(str(c))[0] == name), None)
        if col is None or f"charge_{kind}" in tidy or f"discharge_{kind}" in tidy:
            continue
        unit = name_and_unit(str(col))[1]
        factor = {"ah": 1.0, "mah": 1e-3, "wh": 1.0, "mwh": 1e-3}.get(unit)
        if factor is None:
            raise DataFileError(f"{path}: column {col!r}: unit {unit!r} is not a unit of {name}")
        tidy[f"charge_{kind}"] = to_number(raw[col]) * factor
        tidy[f"discharge_{kind}"] = to_number(raw[col]) * factor
        meta[f"{name}_from"] = f"{col} (one counter, split by the current's direction)"
    for q in tidy.columns:  # Neware's counters restart at each step: one counter per cycle (or phase)
        if q.endswith(("_Ah", "_Wh")):
            tidy[q] = split_counter(tidy[q], direction, "C" if q.startswith("charge") else "D", cyc)
    present = [q for q in tidy.columns]
    return RawCell(tidy.reset_index(drop=True), present, meta)


def _read_regular(path: Path, text: str) -> RawCell:
    sep = max((",", ";", "\t"), key=text.split("\n", 1)[0].count)
    rows = list(csv.reader(io.StringIO(text), delimiter=sep))
    headers = [[c.strip() for c in r] for r in rows[:3]]
    cycle_h, step_h, rec_h = headers[0], headers[1][1:], headers[2][2:]
    cyc_i = 0
    step_i = next((i for i, c in enumerate(step_h) if name_and_unit(c)[0] in ("step id", "step index")), 0)
    kind_i = next((i for i, c in enumerate(step_h) if name_and_unit(c)[0] in _STEP_KIND), None)
    records, cycles, steps = [], [], []
    cycle = step = kind = None
    for n, r in enumerate(rows[3:], start=4):
        if not any(c.strip() for c in r):
            continue
        if r[0].strip():
            cycle = r[cyc_i].strip()
            cycles.append(cycle)
            rest = r[len(cycle_h):]  # BTS 8 writes the cycle's first step on the cycle's own line
            if any(c.strip() for c in rest):
                step = rest[step_i].strip()
                kind = rest[kind_i].strip() if kind_i is not None and len(rest) > kind_i else None
                steps.append(step)
        elif len(r) > 1 and r[1].strip():
            step = r[1 + step_i].strip()
            kind = r[1 + kind_i].strip() if kind_i is not None and len(r) > 1 + kind_i else None
            steps.append(step)
        elif len(r) > 2 and r[2].strip():
            if cycle is None or step is None:
                raise DataFileError(f"{path}: line {n}: a record row before its cycle and step rows "
                                    "(not a Neware regular export?)")
            records.append([cycle, step, kind] + r[2:2 + len(rec_h)])
        else:
            raise DataFileError(f"{path}: line {n}: neither a cycle, a step nor a record row")
    raw = pd.DataFrame([rec + [None] * (3 + len(rec_h) - len(rec)) for rec in records],
                       columns=["Cycle ID", "Step ID", "Step Type", *rec_h], dtype=object)
    raw = raw.replace({"": None})
    meta = {"export": "Neware regular (cycle / step / record levels)", "cycle_rows": len(cycles),
            "step_rows": len(steps), "cycle_header": ", ".join(cycle_h[:8])}
    return _tidy(path, raw, meta)


def read(path: Path) -> RawCell:
    """Read a Neware CSV export (flat or regular)."""
    lines = text_head(read_head(path)).splitlines()
    if _is_regular(lines):
        data = path.read_bytes()
        return _read_regular(path, text_head(data))
    raw = read_delimited(path)
    raw.columns = [str(c).strip() for c in raw.columns]
    return _tidy(path, raw, {"export": "Neware flat"})
