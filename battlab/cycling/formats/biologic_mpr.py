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


def _first(columns: dict[str, np.ndarray], *names: str) -> str | None:
    return next((n for n in names if n in columns), None)


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
            data = np.asarray(mpr.data)
            raw = {name: data[name] for name in (data.dtype.names or ())}
    except Exception as exc:
        raise DataFileError(f"{path}: BioLogic .mpr that galvani cannot read (truncated, damaged or a newer EC-Lab "
                            f"layout): {_one_line(exc)}") from None
    if not len(data) or not raw:
        raise DataFileError(f"{path}: BioLogic .mpr with no data points")
    if "freq/Hz" in raw:
        raise DataFileError(f"{path}: BioLogic .mpr of an impedance measurement (freq/Hz, Re(Z)/Ohm columns), not a "
                            "cycling record")
    if "time/s" not in raw or "Ewe/V" not in raw:
        raise DataFileError(f"{path}: BioLogic .mpr without a time/s or Ewe/V column (columns: "
                            f"{', '.join(raw)}); not a cycling record")
    meta: dict[str, Any] = {"reader": "galvani.BioLogic.MPRfile", "file_columns": list(raw)}
    for key in ("startdate", "enddate", "timestamp"):
        value = getattr(mpr, key, None)
        if value is not None:
            meta[key] = str(value)
    col = {name: np.asarray(values, dtype=float) for name, values in raw.items() if values.dtype.kind in "fiub"}
    out: dict[str, np.ndarray] = {"time_s": col["time/s"], "voltage_V": col["Ewe/V"]}

    icol = _first(col, "I/mA", "<I>/mA")
    dqcol = _first(col, "dq/mA.h", "dQ/mA.h")
    if icol is not None:
        out["current_A"] = col[icol] / 1000.0
        meta["current"] = f"{icol} / 1000"
    elif dqcol is not None:
        out["current_A"], n_filled = _current_from_charge(out["time_s"], col[dqcol])
        meta["current"] = (f"derived: {dqcol} over each time step (the file has no I/mA column)"
                           + (f"; {n_filled} points without a time step take the previous point's current"
                              if n_filled else ""))
    else:
        raise DataFileError(f"{path}: BioLogic .mpr without a current column (no I/mA, <I>/mA or dq/mA.h; columns: "
                            f"{', '.join(raw)})")

    if "cycle number" in col:
        out["cycle"] = col["cycle number"]
        meta["cycle"] = "cycle number"
    elif "half cycle" in col:
        out["cycle"] = raw["half cycle"].astype(np.int64) // 2
        meta["cycle"] = "half cycle // 2 (the file has no cycle number column)"
    else:
        meta["cycle"] = "none in the file"
    if "Ns" in col:
        out["step"] = raw["Ns"].astype(np.int64)

    if "Q charge/mA.h" in col and "Q discharge/mA.h" in col:
        out["charge_capacity_Ah"] = col["Q charge/mA.h"] / 1000.0
        out["discharge_capacity_Ah"] = np.abs(col["Q discharge/mA.h"]) / 1000.0
        meta["capacity"] = "Q charge/mA.h, Q discharge/mA.h"
    elif "Q charge/discharge/mA.h" in col:
        q = col["Q charge/discharge/mA.h"] / 1000.0
        out["charge_capacity_Ah"] = np.clip(q, 0.0, None)
        out["discharge_capacity_Ah"] = np.clip(-q, 0.0, None)
        meta["capacity"] = "Q charge/discharge/mA.h split by sign (positive: charge, negative: discharge)"
    if "Energy charge/W.h" in col and "Energy discharge/W.h" in col:
        out["charge_energy_Wh"] = col["Energy charge/W.h"]
        out["discharge_energy_Wh"] = np.abs(col["Energy discharge/W.h"])
    if "Temperature/°C" in col and np.isfinite(col["Temperature/°C"]).any():
        out["temperature_C"] = col["Temperature/°C"]
    rcol = _first(col, "Rdc/Ohm", "R/Ohm")
    if rcol is not None and (np.nan_to_num(col[rcol]) != 0).any():
        out["internal_resistance_ohm"] = np.where(col[rcol] == 0.0, np.nan, col[rcol])
    return RawCell(pd.DataFrame(out), list(out), meta)
