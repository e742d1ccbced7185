"""Cycler Excel exports (``.xlsx``): Arbin's (``Global_Info`` + ``Channel_<n>_<k>`` sheets) and Neware's (a
``record`` sheet beside ``cycle``/``step`` summaries), read through openpyxl.

The data sheets are found by content: every sheet whose header row (any of its first rows) names a current and a
voltage column, except summary sheets (``Statistics``, ``cycle``, ``step``, charts, info). Exports too long for one
sheet continue on the next (``Channel_11_1``, ``Channel_11_2``, ...): the data sheets are concatenated in the
workbook's order and must share one header. Columns are mapped by name and unit
(:mod:`battlab.cycling.formats.columns`): ``Current(A)``/``Current(mA)``, ``Test_Time(s)``,
``Charge_Capacity(Ah)``/``Chg. Cap.(mAh)``, ... A Neware record sheet is read like Neware's flat CSV export
(:mod:`battlab.cycling.formats.neware_csv`: per-step counters, ``h:mm:ss`` times, current sign from the step type).
The info sheet's label/value rows go to ``metadata``.

Arbin's Excel export often leaves ``Cycle_Index`` at 1 for the whole test: the entry point then derives the cycles
from the current and says so (``metadata["cycles_derived"]``).

Example
-------
>>> header_row([("TEST REPORT", None), ("Voltage(V)", "Current(A)", "Test_Time(s)")])
1
>>> is_summary_sheet("Statistics_1-011"), is_summary_sheet("Channel_11_1"), is_summary_sheet("record")
(True, False, False)
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from battlab.cycling.formats import RawCell, first_zip_member, zip_opens
from battlab.cycling.formats.columns import map_named_columns, name_and_unit, tidy_from_named
from battlab.errors import DataFileError

__all__ = ["read", "sniff", "header_row", "is_summary_sheet", "is_xlsx"]

_SUMMARY = re.compile(r"^\s*(statis|cycle|step|chart|channel_chart|info|global|unit|test\b|summary|log)", re.I)
_HEADER_ROWS = 30


def is_xlsx(path: Path) -> bool:
    """Whether a zip file is an Excel workbook (an ``xl/workbook.xml`` member)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.lower() == "xl/workbook.xml" for n in zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def sniff(head: bytes, path: Path) -> bool:
    """An ``.xlsx`` workbook, whatever its name (which sheets hold data is decided when it is read); a damaged one
    too when its first member is a workbook's (the reader then says it is damaged)."""
    if head[:4] != b"PK\x03\x04":
        return False
    if is_xlsx(path):
        return True
    first = first_zip_member(head) or ""
    return not zip_opens(path) and first.startswith(("[Content_Types].xml", "xl/", "_rels/", "docProps/"))


def is_summary_sheet(name: str) -> bool:
    """A sheet of per-cycle or per-step summaries, a chart or test info, by its name (not points)."""
    return bool(_SUMMARY.match(name))


def _names(row: Sequence[Any]) -> list[str]:
    return [str(c).strip() for c in row if c is not None and str(c).strip()]


def _names_current_and_voltage(row: Sequence[Any]) -> bool:
    found = map_named_columns(_names(row))
    return "current_A" in found and "voltage_V" in found


def header_row(rows: Iterable[Sequence[Any]]) -> int | None:
    """Index of the first row that names a current and a voltage column (None if no row does)."""
    for i, row in enumerate(rows):
        if i >= _HEADER_ROWS:
            break
        if _names_current_and_voltage(row):
            return i
    return None


def _cell(value: Any) -> Any:
    """A cell as the text readers expect it: durations as ``h:mm:ss``, stamps as ISO text, numbers as they are."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
        h, rem = divmod(seconds, 3600.0)
        m, s = divmod(rem, 60.0)
        return f"{int(h)}:{int(m):02d}:{s:06.3f}"
    if isinstance(value, dt.time):
        return f"{value.hour}:{value.minute:02d}:{value.second + value.microsecond / 1e6:06.3f}"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return value


def _info(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Label/value pairs of an info sheet: a row of labels followed by a row of values (Arbin's Global_Info)."""
    meta: dict[str, Any] = {}
    for above, row in zip(rows, rows[1:], strict=False):  # Arbin: a 'TEST REPORT' title, then the test's name
        if any(isinstance(c, str) and c.strip().upper() == "TEST REPORT" for c in above):
            name = next((c for c in row if isinstance(c, str) and c.strip()), None)
            if name:
                meta["test_name"] = name.strip()
    for labels, values in zip(rows, rows[1:], strict=False):
        names = [c for c in labels if c is not None]
        if len(names) < 3 or not all(isinstance(c, str) for c in names) \
                or any(re.search(r"^/|\\", c) for c in names):  # a row holding a path holds values
            continue
        for label, value in zip(labels, values, strict=False):
            if not isinstance(label, str) or not label.strip() or value is None or not str(value).strip():
                continue
            v = _cell(value)
            meta[label.strip()] = v if isinstance(v, (str, int, float, bool)) else str(v)
    return meta


def _is_neware(raw: pd.DataFrame) -> bool:
    """A Neware record table: a ``Step Type``/``Step Name`` column whose values (or the headers) say ``DChg``."""
    kinds = [c for c in raw.columns if name_and_unit(c)[0] in ("step type", "step name")]
    if not kinds:
        return False
    if any("dchg" in name_and_unit(c)[0] for c in raw.columns):
        return True
    return bool(raw[kinds[0]].dropna().astype(str).str.contains("dchg", case=False).any())


def read(path: Path) -> RawCell:
    """Read an Arbin or Neware Excel export (see the module docstring)."""
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - openpyxl is a dependency
        raise DataFileError(f"{path}: Excel exports need openpyxl (pip install openpyxl)") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise DataFileError(f"{path}: Excel workbook that openpyxl cannot open (truncated or damaged?): "
                            f"{' '.join(f'{type(exc).__name__}: {exc}'.split())[:200]}") from None
    try:
        data_sheets: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
        meta: dict[str, Any] = {"reader": "openpyxl", "sheets": list(wb.sheetnames)}
        for ws in wb.worksheets:
            rows = list(ws.iter_rows(values_only=True))
            at = header_row(rows)
            if at is None or is_summary_sheet(ws.title):
                if rows and re.search(r"info|global|test|unit", ws.title, re.I):
                    meta.update({k: v for k, v in _info(rows[:_HEADER_ROWS]).items() if k not in meta})
                continue
            header = [str(c).strip() if c is not None else "" for c in rows[at]]
            body = [r for r in rows[at + 1:] if any(c is not None and str(c).strip() for c in r)]
            data_sheets.append((ws.title, header, body))
    except DataFileError:
        raise
    except Exception as exc:
        raise DataFileError(f"{path}: Excel workbook unreadable ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]})") from None
    finally:
        wb.close()
    if not data_sheets:
        raise DataFileError(f"{path}: Excel workbook without a sheet whose header names a current and a voltage "
                            f"column (sheets: {', '.join(meta['sheets'][:8])})")
    header = data_sheets[0][1]
    for name, other, _ in data_sheets[1:]:
        if other[:len(header)] != header[:len(other)] or len(_names(other)) != len(_names(header)):
            raise DataFileError(f"{path}: data sheets with different headers ({data_sheets[0][0]!r}: "
                                f"{', '.join(_names(header)[:6])}; {name!r}: {', '.join(_names(other)[:6])})")
    meta["data_sheets"] = [name for name, _, _ in data_sheets]
    meta["points_per_sheet"] = [len(body) for _, _, body in data_sheets]
    width = len(header)
    records = [tuple(_cell(c) for c in (r[:width] + (None,) * (width - len(r)))) for _, _, body in data_sheets
               for r in body]
    keep = [i for i, h in enumerate(header) if h]
    raw = pd.DataFrame([[rec[i] for i in keep] for rec in records], columns=[header[i] for i in keep], dtype=object)
    if _is_neware(raw):
        from battlab.cycling.formats import neware_csv

        meta["export"] = "Neware Excel (record sheet)"
        cell = neware_csv._tidy(path, raw, meta)
        return RawCell(cell.data, cell.present, cell.metadata)
    meta["export"] = "Arbin Excel" if any(re.match(r"channel_\d+", n, re.I) for n in meta["data_sheets"]) \
        else "Excel table with named columns"
    stamp = next((c for c in raw.columns if name_and_unit(c)[0] in ("date_time", "date time", "datetime")), None)
    if stamp is not None and raw[stamp].notna().any():
        meta["first_datetime"], meta["last_datetime"] = str(raw[stamp].dropna().iloc[0]), \
            str(raw[stamp].dropna().iloc[-1])
    aux = [c for c in raw.columns if re.fullmatch(r"aux_temperature_\d+", name_and_unit(c)[0])]
    if aux and "temperature_C" not in map_named_columns(list(raw.columns)):  # Arbin's auxiliary channels
        unit = name_and_unit(aux[0])[1]
        raw = raw.rename(columns={aux[0]: f"Temperature({unit})" if unit else "Temperature"})
        meta["temperature"] = aux[0] + (f" (also in the file: {', '.join(aux[1:])})" if aux[1:] else "")
    tidy, present = tidy_from_named(path, raw, meta["export"], required=("time_s", "current_A", "voltage_V"))
    return RawCell(tidy, present, meta)
