"""BioLogic EC-Lab text exports (``.mpt``, ``.txt``, ``;``-separated CSV), read by battlab.

BEEP's reader needs the ``.mpl`` settings file beside the export and reads it value by value in Python; galvani
reads only the binary ``.mpr``; so battlab reads the text itself: the ``Nb header lines`` header, EC-Lab's own
column names, decimal commas, Latin-1.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from battlab.errors import DataFileError
from battlab.cycling.formats import RawCell, read_head, text_head
from battlab.cycling.formats.columns import read_delimited, tidy_from_named

__all__ = ["read", "sniff"]


def sniff(head: bytes, path: Path) -> bool:
    """An EC-Lab text export: its banner, or an ``Ewe/V``/``Ecell/V`` column."""
    text = text_head(head)
    first = text.split("\n", 1)[0]
    return "EC-Lab ASCII FILE" in first or bool(re.search(r"(^|[;\t])(Ecell|Ewe|<Ewe>)/V([;\t]|$)", text[:20000], re.M))


def read(path: Path) -> RawCell:
    """Read an EC-Lab text export."""
    head = text_head(read_head(path)).splitlines()
    skip, meta = 0, {}
    if head and "EC-Lab ASCII FILE" in head[0]:
        m = next((re.search(r"Nb header lines\s*:\s*(\d+)", line) for line in head[:5] if "Nb header" in line), None)
        if not m:
            raise DataFileError(f"{path}: EC-Lab text export without its 'Nb header lines' line")
        skip = int(m.group(1)) - 1
        meta["header_lines"] = skip + 1
    raw = read_delimited(path, skip)
    raw.columns = [str(c).strip() for c in raw.columns]
    raw = raw.drop(columns=[c for c in raw.columns if c == "" or c.startswith("Unnamed")])
    rename = {}
    for c in raw.columns:  # EC-Lab's own names first: 'cycle number', 'Ns', 'Q discharge/mA.h', '<I>/mA'
        if c in ("<I>/mA", "I/mA") and "current" not in rename.values():
            rename[c] = "current/mA"
        elif c in ("Ecell/V", "Ewe/V", "<Ewe>/V") and "voltage" not in rename.values():
            rename[c] = "voltage/V"
        elif c in ("T/°C", "Temperature/°C") and raw[c].notna().any():
            rename[c] = "temperature/°C"
    raw = raw.rename(columns=rename)
    for c in list(raw.columns):  # keep one column per quantity: the named ones win over later aliases
        if c in ("cycle_index", "control/mA", "control/V", "|I|/A", "|Ewe|/V", "T/°C", "Temperature/°C/°c"):
            raw = raw.drop(columns=c)
    tidy, present = tidy_from_named(path, raw, "biologic")
    return RawCell(tidy, present, meta)


