"""BioLogic EC-Lab binary ``.mpr`` files, read through ``galvani`` (``galvani.BioLogic.MPRfile``).

galvani returns EC-Lab's own columns (``time/s``, ``Ewe/V``, ``I/mA``, ``dq/mA.h``, ``Q charge/discharge/mA.h``,
``half cycle``, ``cycle number``, ``Ns``, ...); battlab maps them to the tidy table (mA -> A, mA.h -> Ah, W.h -> Wh):

- current: ``I/mA`` (or ``<I>/mA``) when the file has it; GCPL files often hold only the charge passed per point
  (``dq/mA.h``), so the current is that charge over the time step (what navani does), and ``metadata["current"]``
  says so. A point with no time step (two points at the same time) takes the previous point's current.
- cycle: ``cycle number`` when the file has it, else ``half cycle // 2`` (EC-Lab counts the cycle number that way:
  half cycles 2k and 2k+1 are cycle k), else none (the entry point derives cycles from the current);
  ``metadata["cycle"]`` says which.
- capacities: ``Q charge/mA.h`` / ``Q discharge/mA.h``, else ``Q charge/discharge/mA.h`` split by its sign (EC-Lab
  counts it from 0 in each half cycle, positive on charge, negative on discharge).

Example
-------
>>> sniff(b"BIO-LOGIC MODULAR FILE\\x1a   ", Path("x.MPR"))
True
>>> sniff(b"EC-Lab ASCII FILE", Path("x.mpr"))
False
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.formats import RawCell
from battlab.errors import DataFileError

__all__ = ["read", "sniff", "MAGIC"]

#: The first bytes of every EC-Lab ``.mpr`` file.
MAGIC = b"BIO-LOGIC MODULAR FILE"


def sniff(head: bytes, path: Path) -> bool:
    """An EC-Lab ``.mpr``: its magic bytes (whatever the file's name)."""
    return head.startswith(MAGIC)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _first(df: pd.DataFrame, *names: str) -> str | None:
    return next((n for n in names if n in df.columns), None)


def _current_from_charge(time_s: np.ndarray, dq_mAh: np.ndarray) -> tuple[np.ndarray, int]:
    """Current (A) from the charge passed since the previous point; points without a time step take the previous
    point's current (0 at the start). Returns the current and how many points were filled so.

    Example
    -------
    >>> i, n = _current_from_charge(np.array([0.0, 3600.0, 7200.0, 7200.0]), np.array([0.0, 1.0, -2.0, 0.0]))
    >>> i.tolist(), n
    ([0.0, 0.001, -0.002, -0.002], 2)
    """
    dt = np.diff(time_s, prepend=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        current = dq_mAh * 3.6 / dt  # mA.h / s * 3600 s/h / 1000 mA/A
    bad = ~np.isfinite(current) | ~(dt > 0)
    current = pd.Series(np.where(bad, np.nan, current)).ffill().fillna(0.0).to_numpy()
    return current, int(bad.sum())


def read(path: Path) -> RawCell:
    """Read an EC-Lab ``.mpr`` through galvani into tidy columns (see the module docstring for the mapping)."""
    try:
        from galvani import BioLogic
    except ImportError as exc:  # pragma: no cover - galvani is a dependency
        raise DataFileError(f"{path}: BioLogic .mpr needs the galvani package (pip install galvani)") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mpr = BioLogic.MPRfile(str(path))
            raw = pd.DataFrame(mpr.data)
    except Exception as exc:
        raise DataFileError(f"{path}: BioLogic .mpr that galvani cannot read (truncated, damaged or a newer EC-Lab "
                            f"layout): {_one_line(exc)}") from None
    if not len(raw):
        raise DataFileError(f"{path}: BioLogic .mpr with no data points")
    if "freq/Hz" in raw:
        raise DataFileError(f"{path}: BioLogic .mpr of an impedance measurement (freq/Hz, Re(Z)/Ohm columns), not a "
                            "cycling record")
    if "time/s" not in raw or "Ewe/V" not in raw:
        raise DataFileError(f"{path}: BioLogic .mpr without a time/s or Ewe/V column (columns: "
                            f"{', '.join(map(str, raw.columns))}); not a cycling record")
    meta: dict[str, Any] = {"reader": "galvani.BioLogic.MPRfile", "file_columns": [str(c) for c in raw.columns]}
    for key in ("startdate", "enddate", "timestamp"):
        value = getattr(mpr, key, None)
        if value is not None:
            meta[key] = str(value)
    tidy = pd.DataFrame(index=raw.index)
    present = ["time_s", "voltage_V", "current_A"]
    tidy["time_s"] = raw["time/s"].astype(float)
    tidy["voltage_V"] = raw["Ewe/V"].astype(float)

    icol = _first(raw, "I/mA", "<I>/mA")
    dqcol = _first(raw, "dq/mA.h", "dQ/mA.h")
    if icol is not None:
        tidy["current_A"] = raw[icol].astype(float) / 1000.0
        meta["current"] = f"{icol} / 1000"
    elif dqcol is not None:
        tidy["current_A"], n_filled = _current_from_charge(tidy["time_s"].to_numpy(), raw[dqcol].to_numpy(float))
        meta["current"] = (f"derived: {dqcol} over each time step (the file has no I/mA column)"
                           + (f"; {n_filled} points without a time step take the previous point's current"
                              if n_filled else ""))
    else:
        raise DataFileError(f"{path}: BioLogic .mpr without a current column (no I/mA, <I>/mA or dq/mA.h; columns: "
                            f"{', '.join(map(str, raw.columns))})")

    if "cycle number" in raw:
        tidy["cycle"] = raw["cycle number"].astype(float)
        meta["cycle"] = "cycle number"
        present.append("cycle")
    elif "half cycle" in raw:
        tidy["cycle"] = raw["half cycle"].astype(np.int64) // 2
        meta["cycle"] = "half cycle // 2 (the file has no cycle number column)"
        present.append("cycle")
    else:
        meta["cycle"] = "none in the file"
    if "Ns" in raw:
        tidy["step"] = raw["Ns"].astype(np.int64)
        present.append("step")

    if "Q charge/mA.h" in raw and "Q discharge/mA.h" in raw:
        tidy["charge_capacity_Ah"] = raw["Q charge/mA.h"].astype(float) / 1000.0
        tidy["discharge_capacity_Ah"] = raw["Q discharge/mA.h"].astype(float).abs() / 1000.0
        meta["capacity"] = "Q charge/mA.h, Q discharge/mA.h"
        present += ["charge_capacity_Ah", "discharge_capacity_Ah"]
    elif "Q charge/discharge/mA.h" in raw:
        q = raw["Q charge/discharge/mA.h"].astype(float) / 1000.0
        tidy["charge_capacity_Ah"] = q.clip(lower=0.0)
        tidy["discharge_capacity_Ah"] = (-q).clip(lower=0.0)
        meta["capacity"] = "Q charge/discharge/mA.h split by sign (positive: charge, negative: discharge)"
        present += ["charge_capacity_Ah", "discharge_capacity_Ah"]
    if "Energy charge/W.h" in raw and "Energy discharge/W.h" in raw:
        tidy["charge_energy_Wh"] = raw["Energy charge/W.h"].astype(float)
        tidy["discharge_energy_Wh"] = raw["Energy discharge/W.h"].astype(float).abs()
        present += ["charge_energy_Wh", "discharge_energy_Wh"]
    if "Temperature/°C" in raw and raw["Temperature/°C"].notna().any():
        tidy["temperature_C"] = raw["Temperature/°C"].astype(float)
        present.append("temperature_C")
    rcol = _first(raw, "Rdc/Ohm", "R/Ohm")
    if rcol is not None and (raw[rcol].fillna(0) != 0).any():
        tidy["internal_resistance_ohm"] = raw[rcol].astype(float).replace(0.0, np.nan)
        present.append("internal_resistance_ohm")
    return RawCell(tidy, present, meta)
