"""BioLogic EC-Lab text exports (``.mpt``, ``.txt``, ``;``-separated CSV), read by battlab.

BEEP's reader needs the ``.mpl`` settings file beside the export and reads it value by value in Python; galvani
reads only the binary ``.mpr``; so battlab reads the text itself with pandas:

- the header's length from its ``Nb header lines`` line (any EC-Lab or BT-Lab version; exports without the header
  too); without a ``cycle number`` column (OCV, wait techniques) the entry point derives cycles;
- EC-Lab's own column names (``time/s``, ``<I>/mA`` or ``I/mA``, ``Ewe/V`` or ``Ecell/V``, ``cycle number``,
  ``Ns``, ``Q charge/mA.h`` and ``Q discharge/mA.h``);
- ``Q charge/discharge/mA.h`` (older EC-Lab, or exports without the two counters): one signed capacity that restarts
  at each half cycle, positive while charging, negative while discharging; it becomes the charge counter on its
  positive rows and the discharge counter on its negative ones (:func:`battlab.cycling.formats.columns.split_counter`);
  ``(Q-Qo)/mA.h`` (the net charge since the start) the same way when it is the only capacity column;
- ``half cycle`` kept as the step when the file has no ``Ns``;
- decimal commas, Latin-1, German-locale exports (tabs, decimal commas, dates ``dd.mm.yyyy``).

Example
-------
>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "x.mpt")
>>> _ = open(p, "w", encoding="latin-1").write(
...     "EC-Lab ASCII FILE\\nNb header lines : 4\\n\\ntime/s\\t<I>/mA\\tEwe/V\\tcycle number\\n"
...     "0\\t100\\t3,5\\t0\\n3600\\t-100\\t3,4\\t0\\n")
>>> cell = read(Path(p))
>>> cell.data["voltage_V"].tolist(), cell.data["current_A"].tolist(), cell.metadata["header_lines"]
([3.5, 3.4], [0.1, -0.1], 4)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.formats import RawCell, read_head, text_head
from battlab.cycling.formats.columns import name_and_unit, read_delimited, split_counter, tidy_from_named, to_number
from battlab.errors import DataFileError

__all__ = ["read", "sniff"]

_BANNER = re.compile(r"(EC|BT)-Lab ASCII FILE")  # EC-Lab and BT-Lab exports
_VOLTAGE = re.compile(r"(^|[;\t])(Ecell/V|Ewe/V|<Ewe>/V|<Ewe/V>)([;\t]|$)", re.M)
_CAPACITY_UNITS = {"ma.h": 1e-3, "a.h": 1.0, "mah": 1e-3, "ah": 1.0, "µa.h": 1e-6}


def sniff(head: bytes, path: Path) -> bool:
    """An EC-Lab text export: its banner, or an ``Ewe/V``/``Ecell/V`` column."""
    text = text_head(head)
    first = text.split("\n", 1)[0]
    if _BANNER.search(first):
        return True
    start = text[:20000]  # every voltage name holds 'Ewe' or 'Ecell': a substring test before the slow regex
    return ("Ewe" in start or "Ecell" in start) and bool(_VOLTAGE.search(start))


def _header(path: Path, lines: list[str]) -> tuple[int, dict[str, Any]]:
    """Lines before the column header, and what the header says."""
    meta: dict[str, Any] = {}
    if not lines or not _BANNER.search(lines[0]):
        return 0, meta
    m = next((re.search(r"Nb header lines\s*:\s*(\d+)", line) for line in lines[:5] if "Nb header" in line), None)
    if not m:
        raise DataFileError(f"{path}: EC-Lab text export without its 'Nb header lines' line")
    n = int(m.group(1))
    if n < 2:
        raise DataFileError(f"{path}: EC-Lab text export: 'Nb header lines : {n}' leaves no room for the columns")
    if len(lines) >= n and not re.search(r"[\t;]", lines[n - 1]):
        raise DataFileError(f"{path}: EC-Lab text export: 'Nb header lines : {n}' but line {n} is not the column "
                            f"header ({lines[n - 1][:60]!r})")
    meta["header_lines"] = n
    for line in lines[: n - 1]:
        key, sep, value = line.partition(" : ")
        key = key.strip()
        if sep and key in ("Run on channel", "Acquisition started on", "Technique started on", "Device",
                           "Characteristic mass", "Electrode material", "Comments", "Cycle Definition"):
            meta[key] = value.strip()
        elif line.strip() and not sep and not meta.get("technique") and not _BANNER.search(line) \
                and "Nb header" not in line:
            meta["technique"] = line.strip()
    if m := re.match(r"\s*(\d{1,2})\.(\d{1,2})\.(\d{4})", meta.get("Acquisition started on", "")):
        meta["date_format"] = "dd.mm.yyyy (German locale)"
    return n - 1, meta


def _signed_capacity(raw: pd.DataFrame, name: str) -> tuple[pd.Series, float] | None:
    """The first column called ``name`` (any capacity unit) as numbers, with its factor to Ah."""
    for col in raw.columns:
        n, unit = name_and_unit(str(col))
        if n == name and unit in _CAPACITY_UNITS:
            return to_number(raw[col]), _CAPACITY_UNITS[unit]
    return None


def read(path: Path) -> RawCell:
    """Read an EC-Lab text export."""
    lines = text_head(read_head(path)).splitlines()
    skip, meta = _header(path, lines)
    raw = read_delimited(path, skip)
    raw.columns = [str(c).strip() for c in raw.columns]
    raw = raw.drop(columns=[c for c in raw.columns if c == "" or c.startswith("Unnamed")])
    rename = {}
    for c in raw.columns:  # EC-Lab's own names first: 'cycle number', 'Ns', 'Q discharge/mA.h', '<I>/mA'
        if c in ("<I>/mA", "I/mA") and "current/mA" not in rename.values():
            rename[c] = "current/mA"
        elif c in ("Ecell/V", "Ewe/V", "<Ewe>/V", "<Ewe/V>") and "voltage/V" not in rename.values():
            rename[c] = "voltage/V"
        elif c in ("T/°C", "Temperature/°C") and raw[c].notna().any():
            rename[c] = "temperature/°C"
    raw = raw.rename(columns=rename)
    # keep one column per quantity: the named ones win over later aliases
    raw = raw.drop(columns=[c for c in raw.columns if c in ("cycle_index", "control/mA", "control/V", "|I|/A",
                                                            "|Ewe|/V", "T/°C", "Temperature/°C/°c")])
    if "Ns" not in raw.columns and "half cycle" in raw.columns:
        raw = raw.rename(columns={"half cycle": "step"})
    tidy, present = tidy_from_named(path, raw, "biologic", required=("time_s", "current_A", "voltage_V"),
                                    labels={v: k for k, v in rename.items()})
    has_counters = "charge_capacity_Ah" in present and "discharge_capacity_Ah" in present
    if not has_counters:
        signed = _signed_capacity(raw, "q charge/discharge")
        source = "Q charge/discharge"
        if signed is None:
            signed, source = _signed_capacity(raw, "(q-qo)"), "(Q-Qo)"
            if signed is not None:  # net charge since the start: its rises are charge, its falls discharge
                q = signed[0].ffill().fillna(0.0)
                inc = q.diff().fillna(q.iloc[0] if len(q) else 0.0)
                tidy["charge_capacity_Ah"] = inc.clip(lower=0).cumsum() * signed[1]
                tidy["discharge_capacity_Ah"] = (-inc).clip(lower=0).cumsum() * signed[1]
        elif signed is not None:  # signed, restarting at each half cycle
            q = signed[0].ffill().fillna(0.0)
            kind = pd.Series(np.where(q > 0, "C", np.where(q < 0, "D", "")), index=q.index)
            cyc = tidy["cycle"] if "cycle" in tidy and tidy["cycle"].nunique() > 1 else None
            tidy["charge_capacity_Ah"] = split_counter(q.where(q > 0, 0.0), kind, "C", cyc) * signed[1]
            tidy["discharge_capacity_Ah"] = split_counter(q.where(q < 0, 0.0), kind, "D", cyc) * signed[1]
        if signed is not None:
            meta["capacity_from"] = f"{source} (signed): charge counter from its rises on charge, discharge " \
                                    "counter from its falls on discharge"
            present += [c for c in ("charge_capacity_Ah", "discharge_capacity_Ah") if c not in present]
    return RawCell(tidy, present, meta)
