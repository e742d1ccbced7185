"""Columns found by name and unit: ``Current (mA)``, ``I/mA``, ``current_A``, ``time/h`` -> the tidy quantities.

Every text reader that meets vendor headers maps them here, so that one alias table and one unit table serve all
formats (and a header the suite has never seen still reads when it names its quantity and unit).

Example
-------
>>> sorted(map_named_columns(["Current (mA)", "Voltage/V", "Test Time (h)"]).items())
[('current_A', ('Current (mA)', 0.001)), ('time_s', ('Test Time (h)', 3600.0)), ('voltage_V', ('Voltage/V', 1.0))]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import DataFileError
from battlab.cycling.formats import read_head, text_head

__all__ = ["REQUIRED", "map_named_columns", "name_and_unit", "read_delimited", "tidy_from_named", "to_number"]

#: Tidy quantities every cell needs.
REQUIRED = ("cycle", "time_s", "current_A", "voltage_V")

# quantity -> accepted names (lower case, without unit); the unit comes from the header or the default
_ALIASES: dict[str, tuple[str, ...]] = {
    "cycle": ("cycle", "cycle_index", "cycle_number", "cycle number", "cycle index", "cyc#", "cycle_no", "cycle no"),
    "step": ("step", "step_index", "step_number", "step index", "step number", "ns", "step_no"),
    "time_s": ("time", "test_time", "test time", "time_s", "total_time", "total time", "run time", "elapsed time",
               "elapsed_time"),
    "current_A": ("current", "i", "amps", "current_a"),
    "voltage_V": ("voltage", "potential", "v", "ecell", "ewe", "volts", "voltage_v", "cell potential"),
    "charge_capacity_Ah": ("charge_capacity", "charge capacity", "q charge", "charge_capacity_ah", "qc"),
    "discharge_capacity_Ah": ("discharge_capacity", "discharge capacity", "q discharge", "discharge_capacity_ah",
                              "qd"),
    "charge_energy_Wh": ("charge_energy", "charge energy", "energy charge"),
    "discharge_energy_Wh": ("discharge_energy", "discharge energy", "energy discharge"),
    "temperature_C": ("temperature", "temp", "t", "cell temperature", "aux_temperature"),
    "internal_resistance_ohm": ("internal_resistance", "internal resistance", "dcir", "ir", "resistance"),
}
# unit (lower case) -> factor to the tidy unit, per quantity kind
_UNITS: dict[str, dict[str, float]] = {
    "time_s": {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "hr": 3600.0, "hours": 3600.0},
    "current_A": {"a": 1.0, "ma": 1e-3, "ua": 1e-6},
    "voltage_V": {"v": 1.0, "mv": 1e-3},
    "charge_capacity_Ah": {"ah": 1.0, "mah": 1e-3, "a.h": 1.0, "ma.h": 1e-3},
    "charge_energy_Wh": {"wh": 1.0, "mwh": 1e-3, "w.h": 1.0, "mw.h": 1e-3},
    "temperature_C": {"c": 1.0, "°c": 1.0, "degc": 1.0},
    "internal_resistance_ohm": {"ohm": 1.0, "mohm": 1e-3, "ω": 1.0, "mω": 1e-3},
    "cycle": {"": 1.0}, "step": {"": 1.0},
}
_UNITS["discharge_capacity_Ah"] = _UNITS["charge_capacity_Ah"]
_UNITS["discharge_energy_Wh"] = _UNITS["charge_energy_Wh"]
_DEFAULT_UNIT = {q: ("" if q in ("cycle", "step") else q.rsplit("_", 1)[1].lower()) for q in _ALIASES}


def name_and_unit(header: str) -> tuple[str, str]:
    """``'Current (mA)'`` -> ``('current', 'ma')``; ``'I/mA'`` -> ``('i', 'ma')``; ``'current_A'``: no unit here."""
    h = header.strip().strip('"').lower()
    m = re.fullmatch(r"(.+?)\s*[\(\[]\s*([^\)\]]+?)\s*[\)\]]", h)
    if m:
        return m.group(1).strip(), m.group(2).replace(" ", "")
    if "/" in h and not h.startswith("d"):
        name, unit = h.split("/", 1)
        return name.strip(), unit.strip().replace(" ", "")
    return h, ""


def map_named_columns(headers: list[str]) -> dict[str, tuple[str, float]]:
    """quantity -> (header, factor to the tidy unit), for the headers that name a tidy quantity."""
    found: dict[str, tuple[str, float]] = {}
    for header in headers:
        name, unit = name_and_unit(header)
        for quantity, names in _ALIASES.items():
            if quantity in found:
                continue
            plain = name
            if not unit:  # 'current_ma', 'time_h': the unit as a suffix
                for suffix in _UNITS[quantity]:
                    if suffix and name.endswith("_" + suffix) and name[: -len(suffix) - 1] in names:
                        plain, unit = name[: -len(suffix) - 1], suffix
                        break
            if plain in names or name == quantity.lower():
                factor = _UNITS[quantity].get(unit or _DEFAULT_UNIT[quantity])
                if factor is None:
                    raise DataFileError(f"column {header!r}: unit {unit!r} is not a unit of {quantity.split('_')[0]} "
                                        f"(known: {', '.join(u for u in _UNITS[quantity] if u)})")
                found[quantity] = (header, factor)
                break
    return found


def to_number(series: pd.Series) -> pd.Series:
    if series.dtype == object:
        series = series.astype(str).str.strip().str.replace(",", ".", regex=False).replace({"": None, "nan": None})
    return pd.to_numeric(series, errors="coerce")


def tidy_from_named(path: Path, raw: pd.DataFrame, fmt: str) -> tuple[pd.DataFrame, list[str]]:
    found = map_named_columns([str(c) for c in raw.columns])
    missing = [q for q in REQUIRED if q not in found]
    if missing:
        raise DataFileError(f"{path}: no {', no '.join(m.split('_')[0] for m in missing)} column ({fmt}); "
                            f"columns are: {', '.join(map(str, raw.columns[:15]))}")
    if not len(raw):
        raise DataFileError(f"{path}: header only, no data rows")
    out = pd.DataFrame(index=raw.index)
    for quantity, (header, factor) in found.items():
        values = raw[header]
        if quantity == "time_s" and values.dtype == object and not to_number(values).notna().any():
            stamps = pd.to_datetime(values, errors="coerce", format="mixed")  # EC-Lab 'time/s' as dates
            values = (stamps - stamps.iloc[0]).dt.total_seconds()
            factor = 1.0
        out[quantity] = to_number(values) * factor
    bad = out["current_A"].isna() & raw[found["current_A"][0]].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(f"{path}: row {row + 1}, column {found['current_A'][0]!r}: "
                            f"{raw[found['current_A'][0]].iloc[row]!r} is not a number")
    return out, list(found)


def read_delimited(path: Path, skip: int = 0) -> pd.DataFrame:
    head = text_head(read_head(path)).splitlines()
    header = head[skip] if len(head) > skip else ""
    sep = max((";", "\t", ","), key=header.count)
    for enc in ("utf-8", "latin-1"):
        try:
            return pd.read_csv(path, sep=sep, skiprows=skip, encoding=enc, dtype=str, keep_default_na=False,
                               na_values=[""], index_col=False)
        except UnicodeDecodeError:
            continue
        except pd.errors.ParserError as exc:
            raise DataFileError(f"{path}: cannot be read as a {sep!r}-separated table ({exc})") from exc
    raise DataFileError(f"{path}: neither UTF-8 nor Latin-1 text")  # pragma: no cover


