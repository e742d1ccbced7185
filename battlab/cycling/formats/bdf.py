"""Battery Data Format (BDF, Battery Data Alliance) CSV files, read by battlab with pandas.

BDF fixes the column labels and units of cycler time series: preferred labels ``Quantity / unit`` (``Test Time /
s``, ``Voltage / V``, ``Current / A`` required; ``Cycle Count / 1``, ``Step Index / 1``, ``Step Count / 1``,
``Charging Capacity / Ah``, ``Discharging Capacity / Ah``, ``Charging Energy / Wh``, ``Discharging Energy / Wh``,
``Internal Resistance / Ohm``, ``Ambient Temperature / degC``, ``Surface Temperature T1 / degC`` ...) or the
machine-readable names (``test_time_second``, ``voltage_volt``, ``current_ampere``, ``cycle_count`` ...).

A BDF file is a plain CSV with fixed names, so pandas reads it; the ``bdf`` package would add polars and plotting
for no gain here. Units other than the defaults (``Test Time / h``, ``Current / mA``) are converted. Current is
positive on charge as in battlab; a file whose ``Step Type`` labels say the opposite (positive current on its
``discharge`` steps, as cellpy's BaTMo example writes), or that writes ``|I|``, is signed from the labels. Capacity
and energy counters are read as counters per cycle whether they run on (as BDF asks) or restart at each step.
``Cycle Count`` is recommended, not required: without it, the entry point derives cycles from the current.

Example
-------
>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "cell.bdf.csv")
>>> _ = open(p, "w").write("Test Time / s,Voltage / V,Current / A,Cycle Count / 1,Step Index / 1\\n"
...                        "0,3.5,1.0,1,1\\n3600,4.2,-1.0,1,2\\n")
>>> read(Path(p)).data[["time_s", "voltage_V", "current_A", "cycle", "step"]].values.tolist()
[[0.0, 3.5, 1.0, 1.0, 1.0], [3600.0, 4.2, -1.0, 1.0, 2.0]]
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from battlab.cycling.formats import RawCell, text_head
from battlab.cycling.formats.columns import name_and_unit, read_delimited, split_counter, tidy_from_named
from battlab.cycling.formats.plain import split_header

__all__ = ["read", "sniff"]

# BDF label (lower case, without unit) -> the name columns.py maps, in order of preference per quantity
_LABELS = {
    "test time": "time", "voltage": "voltage", "current": "current", "cycle count": "cycle",
    "step index": "step", "charging capacity": "charge capacity", "discharging capacity": "discharge capacity",
    "charge capacity": "charge capacity", "discharge capacity": "discharge capacity",
    "charging energy": "charge energy", "discharging energy": "discharge energy",
    "charge energy": "charge energy", "discharge energy": "discharge energy",
    "internal resistance": "internal resistance", "surface temperature t1": "temperature",
    "ambient temperature": "temperature",
}
# machine-readable names -> (label, unit)
_MACHINE = {
    "test_time_second": ("test time", "s"), "test_time_hour": ("test time", "h"), "voltage_volt": ("voltage", "V"),
    "current_ampere": ("current", "A"), "cycle_count": ("cycle count", "1"), "step_index": ("step index", "1"),
    "charging_capacity_ah": ("charging capacity", "Ah"), "discharging_capacity_ah": ("discharging capacity", "Ah"),
    "charging_capacity_ampere_hour": ("charging capacity", "Ah"),
    "discharging_capacity_ampere_hour": ("discharging capacity", "Ah"),
    "charging_energy_wh": ("charging energy", "Wh"), "discharging_energy_wh": ("discharging energy", "Wh"),
    "charging_energy_watt_hour": ("charging energy", "Wh"),
    "discharging_energy_watt_hour": ("discharging energy", "Wh"),
    "internal_resistance_ohm": ("internal resistance", "Ohm"),
    "surface_temperature_t1_celsius": ("surface temperature t1", "degC"),
    "ambient_temperature_celsius": ("ambient temperature", "degC"),
}
_REQUIRED = ("time_s", "current_A", "voltage_V")


def sniff(head: bytes, path: Path) -> bool:
    """A BDF table: ``Test Time / ..``, ``Voltage / ..`` and ``Current / ..`` labels, or their machine names."""
    cols = [c.strip().lower() for c in split_header(text_head(head).split("\n", 1)[0])]
    labels = {name_and_unit(c)[0] for c in cols if re.search(r"\s/\s", c)}
    return {"test time", "voltage", "current"} <= labels or {"test_time_second", "voltage_volt",
                                                             "current_ampere"} <= set(cols)


def read(path: Path) -> RawCell:
    """Read a BDF CSV file."""
    raw = read_delimited(path)
    raw.columns = [str(c).strip() for c in raw.columns]
    rename, taken = {}, set()
    for col in raw.columns:
        label, unit = _MACHINE.get(col.lower(), name_and_unit(col))
        target = _LABELS.get(label)
        if target is None or target in taken:  # Step Capacity, Net Capacity, Unix Time, ...: not tidy quantities
            continue
        taken.add(target)
        rename[col] = f"{target} ({unit})" if unit not in ("", "1") else target
    unmapped = [c for c in raw.columns if c not in rename]
    step_type = next((c for c in raw.columns if name_and_unit(c)[0] in ("step type", "step_type")), None)
    labels = raw[step_type].astype(str).str.strip().str.lower() if step_type else None
    raw = raw[list(rename)].rename(columns=rename)
    tidy, present = tidy_from_named(path, raw, "BDF", required=_REQUIRED, labels={v: k for k, v in rename.items()})
    meta: dict[str, str] = {"format": "Battery Data Format (BDF) CSV"}
    if labels is not None:  # the step labels say which points are charge and which discharge
        current = tidy["current_A"]
        dis, chg = labels.str.startswith("discharg"), labels.str.startswith("charg")
        if (current[dis] > 0).mean() > 0.5 or (current[chg] < 0).mean() > 0.5 or (current >= 0).all():
            tidy["current_A"] = current.abs().where(~dis, -current.abs()).where(dis | chg, current)
            meta["current_sign"] = (f"from {step_type!r}: the file's current was positive on its 'discharge' steps "
                                    "(battlab: positive on charge)")
    direction = pd.Series(np.where(tidy["current_A"] > 0, "C", np.where(tidy["current_A"] < 0, "D", "")),
                          index=tidy.index)
    cyc = tidy["cycle"] if "cycle" in tidy and tidy["cycle"].nunique() > 1 else None
    for q in [c for c in tidy.columns if c.endswith(("_Ah", "_Wh"))]:
        tidy[q] = split_counter(tidy[q], direction, "C" if q.startswith("charge") else "D", cyc)
    if unmapped:
        meta["other_columns"] = ", ".join(unmapped)
    return RawCell(tidy, present, meta)
