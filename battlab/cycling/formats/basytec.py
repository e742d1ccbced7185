"""BaSyTec battery test system text exports, read by battlab with pandas.

No maintained package reads them apart from PyProBE (which brings polars, pybamm-style tooling and its own data
model), so battlab reads the text: ``~`` header lines (test name, channel, start) of any number, the last of which is
the column header (``~Time[s]``, ``U[V]``, ``I[A]``, ``Ah-Cyc-Charge``, ``Ah-Cyc-Discharge``, ``T1[°C]``,
``Cyc-Count``, ``Line``, ``Command``, ``State``), tab or ``;`` separated, decimal points or commas, UTF-8 or Latin-1.
BaSyTec writes current positive on charge and negative on discharge; its discharge counters run negative and are
read as their magnitude. The cycle is ``Cyc-Count`` as written (cycles are derived when it never increments).

Example
-------
>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "cell.txt")
>>> _ = open(p, "w").write("~Resultfile from Basytec Battery Test System\\n~\\n~Time[s]\\tU[V]\\tI[A]\\tCyc-Count\\n"
...     "0\\t3,5\\t1\\t1\\n3600\\t4,1\\t-1\\t1\\n")
>>> read(Path(p)).data[["time_s", "voltage_V", "current_A", "cycle"]].values.tolist()
[[0.0, 3.5, 1.0, 1.0], [3600.0, 4.1, -1.0, 1.0]]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from battlab.cycling.formats import RawCell, read_head, text_head
from battlab.cycling.formats.columns import read_delimited, tidy_from_named
from battlab.errors import DataFileError

__all__ = ["read", "sniff"]


def _header_index(lines: list[str]) -> int | None:
    """Index of the last ``~`` line before the data, when it names the time, U and I columns."""
    i = 0
    while i < len(lines) and lines[i].startswith("~"):
        i += 1
    if i == 0:
        return None
    header = lines[i - 1]
    return i - 1 if re.search(r"Time\[", header) and re.search(r"(^|[\t;])U\[", header) \
        and re.search(r"(^|[\t;])I\[", header) else None


def sniff(head: bytes, path: Path) -> bool:
    """A BaSyTec export: ``~`` header lines, the last naming ``Time[..]``, ``U[..]`` and ``I[..]``."""
    lines = text_head(head).splitlines()
    return bool(lines) and lines[0].startswith("~") and _header_index(lines) is not None


def read(path: Path) -> RawCell:
    """Read a BaSyTec text export."""
    lines = text_head(read_head(path)).splitlines()
    skip = _header_index(lines)
    if skip is None:
        raise DataFileError(f"{path}: no BaSyTec column header (a last '~' line naming Time[s], U[V], I[A])")
    meta: dict[str, Any] = {"header_lines": skip + 1}
    for line in lines[:skip]:
        key, sep, value = line[1:].partition(":")
        if sep and key.strip():
            meta[key.strip()] = value.strip()
    raw = read_delimited(path, skip)
    raw.columns = [str(c).strip().lstrip("~").strip() for c in raw.columns]
    rename = {"Cyc-Count": "cycle", "Line": "step"}
    raw = raw.rename(columns={k: v for k, v in rename.items() if k in raw.columns})
    # one column per quantity: the test time, not the step/set/cycle times
    raw = raw.drop(columns=[c for c in raw.columns if re.match(r"t-(Step|Set|Cyc)\b", c)])
    tidy, present = tidy_from_named(path, raw, "BaSyTec")
    for col in ("charge_capacity_Ah", "discharge_capacity_Ah", "charge_energy_Wh", "discharge_energy_Wh"):
        if col in tidy:
            tidy[col] = tidy[col].abs()
    return RawCell(tidy, present, meta)
