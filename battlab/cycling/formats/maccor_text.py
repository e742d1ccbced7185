"""Maccor text exports from MIMS templates (``.txt``, ``.csv``, raw exports named by channel such as ``.070``), read
by battlab with pandas.

cellpy reads these through per-template configuration files, but cellpy pulls in PyGithub, fabric, cookiecutter,
pyodbc, tables, polars, ipykernel and more; BEEP's Maccor reader takes only the one-metadata-line ``Test (Sec)``
raw export (:mod:`battlab.cycling.formats.beep` keeps reading that one). So battlab reads the templates itself:

- the column header is the first line that starts with ``Rec#`` (or ``Rec``) and names ``Cyc#``/``Cycle P``/
  ``Cycle C`` and ``Volts`` (or ``Voltage``), after any number of metadata lines (blank lines included); tab, comma
  or semicolon separated; the CSV template's ``Current``, ``Voltage``, ``Capacity``, ``Energy``, ``Temp 1``,
  ``Test Time (sec)`` as well;
- units from the headers: ``Amps``/``mAmps``, ``Amp-hr``/``mAmp-hr``, ``Watt-hr``/``mWatt-hr``; ``Volts``
  holds millivolts in exports whose other columns are in milli-units and whose values exceed 100 (a cell is not
  at 100 V; the metadata says so);
- ``TestTime`` as ``Nd hh:mm:ss[.f]``, ``Test (Sec)`` in seconds, or a plain number whose unit the ``DPt Time``
  stamps tell (minutes in some templates: the stamps run 60 times faster);
- the state letter from ``State`` or ``Md``; ``Cap. [Ah]``, ``Ener. [Wh]``, ``Current [A]``, ``Voltage [V]``;
- the current's sign from the ``State`` column (``C`` charge positive, ``D`` discharge negative) when the file
  writes ``|I|``; one ``Amp-hr``/``Watt-hr`` column becomes the charge and discharge counters by state, whether it
  restarts at each step or runs on through a charge;
- the cycle is ``Cyc#`` (or ``Cycle P``/``Cycle C`` when ``Cyc#`` never increments and they do) exactly as the file
  writes it; when it never increments (MIMS templates often leave ``Cyc#`` at 0) the entry point derives cycles.

Example
-------
>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "cell.070")
>>> _ = open(p, "w").write("Today's Date\\t01/01/2024\\n\\n"
...     "Rec#\\tCyc#\\tStep\\tTestTime\\tmAmp-hr\\tmAmps\\tVolts\\tState\\n"
...     "1\\t0\\t1\\t0d 00:00:00\\t0\\t500\\t3500\\tC\\n2\\t0\\t2\\t0d 01:00:00\\t500\\t500\\t3400\\tD\\n")
>>> cell = read(Path(p))
>>> cell.data[["time_s", "current_A", "voltage_V"]].values.tolist()
[[0.0, 0.5, 3.5], [3600.0, -0.5, 3.4]]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.formats import RawCell, read_head, text_head
from battlab.cycling.formats.columns import (
    check_numbers,
    decimal_mark,
    looks_like_duration,
    name_and_unit,
    parse_duration,
    parse_stamps,
    split_counter,
    to_number,
)
from battlab.errors import DataFileError

__all__ = ["read", "sniff"]

_HEADER = re.compile(r"^\s*Rec#?\s*[\t,;]")
_SCALE = {"": 1.0, "m": 1e-3, "u": 1e-6, "k": 1e3}


def _header_index(lines: list[str]) -> int | None:
    for i, line in enumerate(lines[:100]):
        if _HEADER.match(line) and re.search(r"Cyc#|Cycle [PC]|Cycle", line) and re.search(r"Volts|Voltage", line):
            return i
    return None


def sniff(head: bytes, path: Path) -> bool:
    """A Maccor template export: a ``Rec#`` (or ``Rec``), cycle and ``Volts``/``Voltage`` header line after any
    metadata lines."""
    text = text_head(head)
    return "Rec" in text and _header_index(text.splitlines()) is not None


def _separator(line: str) -> str:
    return max(("\t", ";", ","), key=line.count)


def _unit_column(columns: list[str], unit: str, name: str = "", units: dict[str, float] | None = None
                 ) -> tuple[str, float] | None:
    """The column named ``[m|u|k]<unit>`` (``mAmps``, ``Amp-hr``), else the one called ``name`` with a unit of
    ``units`` (``Current``, ``Current (mA)``; no unit: the base unit), with its factor to the base unit."""
    for col in columns if unit else ():
        m = re.fullmatch(rf"([muk]?){re.escape(unit)}", col.strip(), re.I)
        if m:
            return col, _SCALE[m.group(1).lower()]
    for col in columns:
        n, u = name_and_unit(col)
        if name and n == name and u in (units or {}) | {"": 1.0}:
            return col, ((units or {}) | {"": 1.0})[u]
    return None


def _time_factor(test_time: pd.Series, stamps: pd.Series) -> float:
    """60 or 3600 when a numeric test time runs 60 or 3600 times slower than the data-point stamps, else 1."""
    ok = test_time.notna() & stamps.notna()
    if ok.sum() < 2:
        return 1.0
    span = float(test_time[ok].iloc[-1] - test_time[ok].iloc[0])
    wall = float((stamps[ok].iloc[-1] - stamps[ok].iloc[0]).total_seconds())
    if span <= 0 or wall <= 0:
        return 1.0
    return next((f for f in (60.0, 3600.0) if abs(wall / span / f - 1) < 0.02), 1.0)


# line breaks str.splitlines knows besides \n, \r\n and \r, as bytes of each encoding
_OTHER_BREAKS = {"utf-8": (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9"),
                 "latin-1": (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85")}


def _widest(data: bytes, skip: int, sep: str, enc: str, default: int) -> int:
    """The most fields on a line of ``data`` after its first ``skip`` lines (lines as ``str.splitlines`` splits
    them; ``default`` when there is none), counted in numpy.

    Example
    -------
    >>> _widest(b"h\\na,b\\r\\n1,2,3\\r4\\n", 1, ",", "utf-8", 9), _widest(b"h\\n", 1, ",", "utf-8", 9)
    (3, 9)
    """
    if any(b in data for b in _OTHER_BREAKS[enc]):  # line breaks other than \n, \r\n, \r: split the text
        body = data.decode(enc if enc == "latin-1" else "utf-8-sig").splitlines()[skip:]
        return max((line.count(sep) + 1 for line in body), default=default)
    arr = np.frombuffer(data, dtype=np.uint8)
    breaks = arr == 10
    if b"\r" in data:  # a \r not followed by \n ends a line too
        breaks |= (arr == 13) & np.r_[arr[1:] != 10, True]
    ends = np.flatnonzero(breaks)
    starts, stops = np.r_[0, ends + 1], np.r_[ends, len(arr)]
    if starts[-1] >= len(arr):  # the text ends with a line break: no last, empty line
        starts, stops = starts[:-1], stops[:-1]
    seps = np.flatnonzero(arr == ord(sep))
    counts = (np.searchsorted(seps, stops) - np.searchsorted(seps, starts))[skip:]
    return int(counts.max()) + 1 if len(counts) else default


def _letters(column: pd.Series) -> pd.Series:
    """A column's values as stripped upper-case text (``NAN`` for blanks), each distinct value converted once.

    Example
    -------
    >>> _letters(pd.Series([" c", "D", np.nan, " c"])).tolist()
    ['C', 'D', 'NAN', 'C']
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    text = np.array([str(u).strip().upper() for u in uniques] + [""], dtype=object)[codes]
    blank = codes < 0
    if blank.any():  # NaN -> 'NAN', None -> 'NONE', as their text
        text[blank] = [str(v).strip().upper() for v in column.to_numpy()[blank]]
    return pd.Series(text, index=column.index, dtype=object)


def read(path: Path) -> RawCell:
    """Read a Maccor template text export."""
    lines = text_head(read_head(path)).splitlines()
    skip = _header_index(lines)
    if skip is None:
        raise DataFileError(f"{path}: no Maccor column header (a line starting with Rec# that names Cyc# and Volts)")
    sep = _separator(lines[skip])
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
        enc = "utf-8"
    except UnicodeDecodeError:
        enc = "latin-1"
    header = [c.strip() for c in lines[skip].split(sep)]
    seen: dict[str, int] = {}
    for i, c in enumerate(header):  # Maccor repeats ' Units' after each Aux column
        if c in seen:
            seen[c] += 1
            header[i] = f"{c}.{seen[c]}"
        else:
            seen[c] = 0
    width = _widest(data, skip + 1, sep, enc, len(header))
    names = header + [f"extra_{i + 1}" for i in range(width - len(header))]
    try:
        raw = pd.read_csv(path, sep=sep, skiprows=skip + 1, header=None, names=names, encoding=enc,
                          keep_default_na=False, na_values=[""], index_col=False, skip_blank_lines=False,
                          low_memory=False, engine="c", decimal=decimal_mark(lines[skip + 1:-1], sep))
    except pd.errors.ParserError as exc:
        raise DataFileError(f"{path}: cannot be read as a Maccor table ({exc})") from exc
    extra = [c for c in names[len(header):] if raw[c].notna().any()]
    raw = raw.drop(columns=[c for c in names[len(header):] if c not in extra])
    blank = raw.isna().all(axis=1)
    if blank.any():  # a blank line inside the data is not a point; say where
        raw = raw[~blank]
    if not len(raw):
        raise DataFileError(f"{path}: header only, no data rows")
    cols = list(raw.columns)
    meta: dict[str, Any] = {"header_lines": skip}
    if extra:
        meta["extra_fields"] = (f"{int(raw[extra].notna().any(axis=1).sum())} rows hold values beyond the header's "
                                f"{len(header)} columns (kept as {', '.join(extra)})")
    if blank.any():
        meta["blank_lines_skipped"] = int(blank.sum())
    for line in lines[:skip]:
        parts = [p.strip() for p in line.split(sep) if p.strip()]
        for key, value in zip(parts[::2], parts[1::2], strict=False):  # key, value pairs
            meta[key.rstrip(":")] = value
    current = _unit_column(cols, "Amps", "current", {"a": 1.0, "ma": 1e-3})
    voltage = _unit_column(cols, "Volts", "voltage", {"v": 1.0, "mv": 1e-3})
    missing = [n for n, c in (("current (Amps)", current), ("voltage (Volts)", voltage)) if c is None]
    time_col = next((c for c in ("TestTime", "Test Time", "Test (Sec)", "Test(Sec)", "Test Time (sec)",
                                 "Test Time (Sec)", "Test (Hr)", "Test Time (Hr)") if c in cols), None)
    if time_col is None:
        missing.append("test time (TestTime)")
    if missing:
        raise DataFileError(f"{path}: Maccor export without a {' or '.join(missing)} column "
                            f"(columns: {', '.join(cols[:15])})")
    tidy = pd.DataFrame(index=raw.index)
    present = ["cycle", "time_s", "current_A", "voltage_V"]
    cycle_cols = [c for c in ("Cyc#", "Cycle P", "Cycle C", "Cycle") if c in cols]
    cycles = {c: to_number(raw[c]) for c in cycle_cols}
    chosen = next((c for c in cycle_cols if cycles[c].nunique() > 1), cycle_cols[0] if cycle_cols else None)
    if chosen is None:
        present.remove("cycle")
    else:
        tidy["cycle"] = cycles[chosen]
        meta["cycle_column"] = chosen
    if "Step" in cols:
        tidy["step"] = to_number(raw["Step"])
        present.append("step")
    tidy["time_s"] = parse_duration(raw[time_col]) * (3600.0 if "Hr" in time_col else 1.0)
    stamp_col = next((c for c in ("DPt Time", "DPT Time", "DPtTime") if c in cols), None)
    if not looks_like_duration(raw[time_col]) and time_col in ("TestTime", "Test Time") and stamp_col:
        factor = _time_factor(tidy["time_s"], parse_stamps(raw[stamp_col]))
        if factor != 1.0:  # e.g. TestTime in minutes (KIT/SIMBA templates): the stamps tell
            tidy["time_s"] *= factor
            meta["time_unit"] = f"{'minutes' if factor == 60 else 'hours'} (the {stamp_col!r} stamps run " \
                                f"{factor:g} times faster than {time_col!r})"
    amps = to_number(raw[current[0]])
    check_numbers(path, raw[current[0]], amps, current[0])
    check_numbers(path, raw[voltage[0]], to_number(raw[voltage[0]]), voltage[0])
    amps = amps * current[1]
    state_col = next((c for c in ("State", "Md", "MD", "Mode") if c in cols), None)
    state = _letters(raw[state_col]) if state_col else pd.Series("", index=raw.index)
    if (state == "D").any() or (state == "C").any():  # |I| or signed I: the state letter decides
        amps = amps.abs().where(state != "D", -amps.abs()).where(state.isin(["C", "D"]), amps)
        meta["current_sign"] = f"from the {state_col} column (C charge +, D discharge -)"
    else:  # no State column: the (signed) current tells charge from discharge
        state = pd.Series(np.where(amps > 0, "C", np.where(amps < 0, "D", "")), index=raw.index)
    tidy["current_A"] = amps
    volts = to_number(raw[voltage[0]]) * voltage[1]
    milli = any(re.fullmatch(r"m(Amps|Amp-hr|Watt-hr)", c) for c in cols)
    if voltage[1] == 1.0 and milli and volts.abs().max() > 100:
        volts = volts * 1e-3
        meta["voltage_unit"] = (f"mV: the {voltage[0]!r} column of this milli-unit export holds values up to "
                                f"{to_number(raw[voltage[0]]).abs().max():g}")
    tidy["voltage_V"] = volts
    for unit, kind, names, units in (("Amp-hr", "capacity_Ah", ("capacity", "cap."), {"ah": 1.0, "ahr": 1.0,
                                                                                      "mah": 1e-3}),
                                     ("Watt-hr", "energy_Wh", ("energy", "ener."), {"wh": 1.0, "whr": 1.0,
                                                                                   "mwh": 1e-3})):
        col = _unit_column(cols, unit, names[0], units) or _unit_column(cols, "", names[1], units)
        if col is None:
            continue
        values = to_number(raw[col[0]]) * col[1]
        cyc = tidy["cycle"] if "cycle" in tidy and tidy["cycle"].nunique() > 1 else None
        tidy[f"charge_{kind}"] = split_counter(values, state, "C", cyc)
        tidy[f"discharge_{kind}"] = split_counter(values, state, "D", cyc)
        present += [f"charge_{kind}", f"discharge_{kind}"]
    for col in ("DCIR/Ohms", "DCIR", "ACImp/Ohms"):
        if col in cols and (to_number(raw[col]).fillna(0) != 0).any():
            tidy["internal_resistance_ohm"] = to_number(raw[col]).replace(0.0, np.nan)
            present.append("internal_resistance_ohm")
            break
    temp = _unit_column(cols, "", "temp 1", {"c": 1.0, "°c": 1.0, "degc": 1.0})
    if temp is not None and to_number(raw[temp[0]]).notna().any():
        tidy["temperature_C"] = to_number(raw[temp[0]]) * temp[1]
        present.append("temperature_C")
    aux = [c for c in cols if c.startswith("Aux")]
    if aux:
        meta["aux_columns"] = ", ".join(aux)
    return RawCell(tidy.reset_index(drop=True), present, meta)
