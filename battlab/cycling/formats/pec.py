"""PEC (SBT battery testers) CSV exports, read by battlab with pandas.

cellpy reads these (``pec_csv``) but pulls in PyGithub, fabric, cookiecutter, pyodbc, tables, polars and more, so
battlab reads the text: ``Key:,value`` metadata lines (and a ``#RESULTS CHECK`` block) of any length before the
column header, which is the first line naming ``Cycle``, ``Voltage (..)`` and ``Current (..)``; units from the
headers (``Voltage (mV)``, ``Current (mA)``, ``Charge Capacity (mAh)``; ``Charge Capacity (mWh)`` is the charge
*energy*); ``Total Time (Seconds)`` or ``Total Time (Hours in hh:mm:ss.xxx)``; current negative on discharge as
PEC writes it; the ``Cycle`` column as written.

Example
-------
>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "pec.csv")
>>> _ = open(p, "w").write("Test:,1\\nStart Time:,02/22/2019 16:21:35\\n"
...     "Test,Step,Cycle,Total Time (Seconds),Voltage (mV),Current (mA),Charge Capacity (mAh),"
...     "Discharge Capacity (mAh),Charge Capacity (mWh)\\n1,1,0,0,3500,-1000,0,0,0\\n1,1,0,3600,3000,-1000,0,1000,0\\n")
>>> cell = read(Path(p))
>>> cell.data[["voltage_V", "current_A", "discharge_capacity_Ah"]].values.tolist(), cell.metadata["Test"]
([[3.5, -1.0, 0.0], [3.0, -1.0, 1.0]], '1')
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from battlab.cycling.formats import RawCell, read_head, text_head
from battlab.cycling.formats.columns import name_and_unit, parse_duration, read_delimited, tidy_from_named
from battlab.errors import DataFileError

__all__ = ["read", "sniff"]


def _header_index(lines: list[str]) -> int | None:
    for i, line in enumerate(lines[:200]):
        low = line.lower()
        if "total time" in low and re.search(r"(^|,)cycle(,|$)", low) and re.search(r"voltage \(", low) \
                and re.search(r"current \(", low):
            return i
    return None


def sniff(head: bytes, path: Path) -> bool:
    """A PEC export: ``Key:,value`` metadata lines (``Test:``, ``TestRegime Name:`` ...) before a header naming
    ``Cycle``, ``Total Time``, ``Voltage (..)`` and ``Current (..)``."""
    lines = text_head(head).splitlines()
    i = _header_index(lines)
    return i is not None and (i == 0 or any(re.match(r"^(Test|TestRegime Name|Request Year):,", ln)
                                            for ln in lines[:i]))


def read(path: Path) -> RawCell:
    """Read a PEC CSV export."""
    lines = text_head(read_head(path)).splitlines()
    skip = _header_index(lines)
    if skip is None:
        raise DataFileError(f"{path}: no PEC column header (Cycle, Total Time, Voltage (..), Current (..))")
    meta: dict[str, Any] = {"header_lines": skip}
    for line in lines[:skip]:
        key, sep, value = line.partition(":,")
        if sep and key.strip() and not key.startswith("#"):
            meta[key.strip()] = value.strip().rstrip(",")
    raw = read_delimited(path, skip)
    raw.columns = [str(c).strip() for c in raw.columns]
    raw = raw.drop(columns=[c for c in raw.columns if not c or c.startswith("Unnamed")])
    rename, drop = {}, []
    for c in raw.columns:
        name, unit = name_and_unit(c)
        if name in ("charge capacity", "discharge capacity") and unit.endswith("wh"):  # PEC: energy as 'capacity'
            rename[c] = f"{name.replace('capacity', 'energy')} ({unit})"
        elif name == "total time":
            if "hh:mm:ss" in unit:  # 'Total Time (Hours in hh:mm:ss.xxx)'
                raw[c] = parse_duration(raw[c]).astype(str)
                meta["time_from"] = c
                rename[c] = "time (s)"
            elif unit in ("seconds", "s", "sec"):
                rename[c] = "time (s)"
        elif name in ("load on time", "step time", "cycle charge time", "cycle discharge time"):
            drop.append(c)
    raw = raw.drop(columns=drop).rename(columns=rename)
    tidy, present = tidy_from_named(path, raw, "PEC")
    return RawCell(tidy, present, meta)
