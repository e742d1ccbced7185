"""Arbin MITS Pro ``.res`` files (MS Access / Jet databases), read through mdbtools' ``mdb-export`` and pandas.

The same way cellpy reads them on Linux: each table is exported as CSV by ``mdb-export`` (Debian package
``mdbtools``, installed by ``make system-deps``) and parsed by pandas. Tables used:

- ``Channel_Normal_Table``: one row per point, already in tidy units (s, A, V, Ah, Wh, ohm): ``Test_Time``,
  ``Current`` (positive on charge), ``Voltage``, ``Cycle_Index``, ``Step_Index``, ``Charge_Capacity``,
  ``Discharge_Capacity``, ``Charge_Energy``, ``Discharge_Energy``, ``Internal_Resistance``; points in
  ``Data_Point`` order.
- ``Global_Table``: the test's name, channel, start time, schedule, mass, ... into ``metadata``.
- ``Auxiliary_Table`` with ``Aux_Global_Data_Table``: the first auxiliary temperature channel, when there is one.

A file holding several tests (several ``Test_ID``) is refused, as cellpy does: one cell per file.

Example
-------
>>> sniff(b"\\x00\\x01\\x00\\x00Standard Jet DB\\x00", Path("cell.RES"))
True
>>> ole_date(42587.67804398148)
'2016-08-05T16:16:23'
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.formats import RawCell
from battlab.errors import DataFileError

__all__ = ["read", "sniff", "export_table", "list_tables", "ole_date", "NEEDS_MDBTOOLS"]

NEEDS_MDBTOOLS = "Arbin .res needs mdbtools (Debian package mdbtools; `make system-deps`)"
_MAGICS = (b"\x00\x01\x00\x00Standard Jet DB", b"\x00\x01\x00\x00Standard ACE DB")
_DAMAGE = re.compile(r"beyond EOF|failed|Unrecognized|Couldn't|not a valid|Error", re.I)
#: Channel_Normal_Table column -> tidy column (the .res stores SI units already).
COLUMNS = {"Test_Time": "time_s", "Current": "current_A", "Voltage": "voltage_V", "Cycle_Index": "cycle",
           "Step_Index": "step", "Charge_Capacity": "charge_capacity_Ah", "Discharge_Capacity": "discharge_capacity_Ah",
           "Charge_Energy": "charge_energy_Wh", "Discharge_Energy": "discharge_energy_Wh",
           "Internal_Resistance": "internal_resistance_ohm"}


def sniff(head: bytes, path: Path) -> bool:
    """An MS Access (Jet or ACE) database: Arbin's ``.res`` (the tables are checked when it is read)."""
    return head.startswith(_MAGICS)


def ole_date(days: float) -> str:
    """An OLE Automation date (days since 1899-12-30, how Access stores ``DateTime``) as ISO text (seconds)."""
    return (datetime(1899, 12, 30) + timedelta(days=float(days))).isoformat(timespec="seconds")


def _mdb(path: Path, tool: str, *args: str) -> str:
    """Run an mdbtools command (``args`` with the file's path in them); its output, or a one-line error."""
    exe = shutil.which(tool)
    if exe is None:
        raise DataFileError(f"{path}: {NEEDS_MDBTOOLS}")
    try:
        done = subprocess.run([exe, *args], capture_output=True, timeout=600, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DataFileError(f"{path}: {tool} failed: {type(exc).__name__}: {exc}") from None
    err = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0 or _DAMAGE.search(err):
        first = next((ln.strip() for ln in err.splitlines() if ln.strip()), f"exit code {done.returncode}")
        raise DataFileError(f"{path}: truncated or damaged Arbin .res (MS Access database): {tool} says "
                            f"{first[:160]!r}")
    return done.stdout.decode("utf-8", "replace")


def list_tables(path: Path) -> list[str]:
    """The database's table names (``mdb-tables -1``)."""
    return [t.strip() for t in _mdb(path, "mdb-tables", "-1", str(path)).splitlines() if t.strip()]


def export_table(path: Path, table: str) -> pd.DataFrame:
    """One table of the database as a DataFrame (``mdb-export``, parsed by pandas)."""
    text = _mdb(path, "mdb-export", str(path), table)
    if not text.strip():
        return pd.DataFrame()
    try:
        return pd.read_csv(io.StringIO(text), low_memory=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataFileError(f"{path}: Arbin .res table {table} unreadable ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]})") from None


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    return value if isinstance(value, (str, int, bool)) or value is None else str(value)


def _temperature(path: Path, tables: list[str], points: pd.Series, test_id: Any) -> tuple[pd.Series | None, str]:
    """The first auxiliary temperature channel on the data points, if the file logged one."""
    if "Auxiliary_Table" not in tables or "Aux_Global_Data_Table" not in tables:
        return None, ""
    aux = export_table(path, "Auxiliary_Table")
    if aux.empty or not {"Data_Point", "Auxiliary_Index", "Data_Type", "X"} <= set(aux.columns):
        return None, ""
    names = export_table(path, "Aux_Global_Data_Table")
    if names.empty or "Unit" not in names:
        return None, ""
    is_temp = names["Unit"].astype(str).str.strip().str.lower().isin(["°c", "deg c", "degc", "c", "\ufffdc", "ºc"])
    temps = names[is_temp]
    if temps.empty:
        return None, ""
    first = temps.iloc[0]
    if "Test_ID" in aux:
        aux = aux[aux["Test_ID"] == test_id]
    sel = aux[(aux["Auxiliary_Index"] == first["Auxiliary_Index"]) & (aux["Data_Type"] == first["Data_Type"])]
    if sel.empty:
        return None, ""
    values = sel.drop_duplicates("Data_Point").set_index("Data_Point")["X"].astype(float)
    nick = str(first.get("Nickname", "") or "")
    return points.map(values), f"Auxiliary_Table, auxiliary index {first['Auxiliary_Index']} {nick}".strip()


def read(path: Path) -> RawCell:
    """Read an Arbin ``.res`` into tidy columns (see the module docstring)."""
    tables = list_tables(path)
    if "Channel_Normal_Table" not in tables:
        raise DataFileError(f"{path}: an MS Access database without Arbin's Channel_Normal_Table (tables: "
                            f"{', '.join(tables[:8]) or 'none'}); not an Arbin .res")
    raw = export_table(path, "Channel_Normal_Table")
    if raw.empty:
        raise DataFileError(f"{path}: Arbin .res whose Channel_Normal_Table holds no data points")
    missing = [c for c in ("Test_Time", "Current", "Voltage", "Data_Point") if c not in raw]
    if missing:
        raise DataFileError(f"{path}: Arbin .res without a {', '.join(missing)} column in Channel_Normal_Table "
                            f"(columns: {', '.join(map(str, raw.columns[:12]))})")
    meta: dict[str, Any] = {"reader": "mdbtools mdb-export + pandas", "file_columns": [str(c) for c in raw.columns]}
    test_ids = sorted(raw["Test_ID"].dropna().unique().tolist()) if "Test_ID" in raw else [None]
    if len(test_ids) > 1:
        raise DataFileError(f"{path}: Arbin .res holding {len(test_ids)} tests (Test_ID "
                            f"{', '.join(map(str, test_ids[:6]))}); battlab reads one test per file: export each "
                            "test from MITS Pro's data watcher")
    if "Global_Table" in tables:
        glob = export_table(path, "Global_Table")
        if len(glob):
            row = glob.iloc[0]
            for key in ("Test_Name", "Channel_Index", "Channel_Number", "Creator", "Comments", "Schedule_File_Name",
                        "Software_Version", "Serial_Number", "Schedule_Version", "MASS", "Specific_Capacity",
                        "Capacity"):
                if key in glob and pd.notna(row[key]):
                    meta[key] = _plain(row[key])
            if "Start_DateTime" in glob and pd.notna(row["Start_DateTime"]):
                meta["Start_DateTime"] = ole_date(row["Start_DateTime"])
    raw = raw.sort_values("Data_Point", kind="stable").reset_index(drop=True)
    tidy = pd.DataFrame(index=raw.index)
    present = []
    for src, dst in COLUMNS.items():
        if src in raw:
            tidy[dst] = pd.to_numeric(raw[src], errors="coerce")
            present.append(dst)
    if "internal_resistance_ohm" in tidy:
        if (tidy["internal_resistance_ohm"].fillna(0) == 0).all():
            tidy = tidy.drop(columns="internal_resistance_ohm")
            present.remove("internal_resistance_ohm")
        else:
            tidy["internal_resistance_ohm"] = tidy["internal_resistance_ohm"].replace(0.0, np.nan)
    if "DateTime" in raw and raw["DateTime"].notna().any():
        meta["first_datetime"], meta["last_datetime"] = ole_date(raw["DateTime"].iloc[0]), \
            ole_date(raw["DateTime"].iloc[-1])
    temp, source = _temperature(path, tables, raw["Data_Point"], test_ids[0])
    if temp is not None and temp.notna().any():
        tidy["temperature_C"] = temp.to_numpy(dtype=float)
        present.append("temperature_C")
        meta["temperature"] = source
    return RawCell(tidy, present, meta)
