"""Plain CSV (or ``;``/tab separated) with named columns: ``cycle, time_s, current_A, voltage_V`` or any header
:mod:`battlab.cycling.formats.columns` understands (``Current (mA)``, ``Voltage/V``, ``time/h`` ...)."""

from __future__ import annotations

import csv
from pathlib import Path

from battlab.cycling.formats import RawCell, text_head
from battlab.cycling.formats.columns import map_named_columns, read_delimited, tidy_from_named
from battlab.errors import DataFileError

__all__ = ["read", "sniff", "split_header"]


def split_header(line: str) -> list[str]:
    """The column names of a header line (``,``, ``;`` or tab separated, quotes stripped)."""
    try:
        sep = csv.Sniffer().sniff(line, delimiters=",;\t").delimiter
    except csv.Error:
        sep = ","
    return [c.strip().strip('"') for c in line.split(sep)]


def sniff(head: bytes, path: Path) -> bool:
    """A delimited table whose first line names a current and a voltage column."""
    first = text_head(head).split("\n", 1)[0]
    cols = split_header(first)
    if len(cols) < 2:
        return False
    try:
        found = map_named_columns(cols)
    except DataFileError:
        return True  # it names them, with a unit the reader will report
    return "current_A" in found and "voltage_V" in found


def read(path: Path) -> RawCell:
    """Read a delimited table whose header names current, voltage and time (and the cycle, else the entry point
    derives cycles from the current)."""
    raw = read_delimited(path)
    tidy, present = tidy_from_named(path, raw, "csv", required=("time_s", "current_A", "voltage_V"))
    return RawCell(tidy, present, {})


