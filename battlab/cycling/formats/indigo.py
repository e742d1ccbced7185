"""Indigo cycler HDF5 files (``time_series_data``, a pandas fixed-format frame), read through h5py.

BEEP's ``IndigoDatapath`` reads the same layout, but it puts the column blocks side by side in storage order and
names them by position, takes odd half cycles for charges (the test file starts with a discharge), leaves the
energies in joules and calls V/I the internal resistance; pandas' own ``read_hdf`` needs PyTables. So battlab reads
the frame with h5py, each block's values under its own item names, and maps:

- ``time_s`` (s), ``cell_current_a`` (A, negative on discharge), ``cell_voltage_v`` (V), ``cycle_count``,
  ``half_cycle_count`` (as the step), ``cell_temperature_c`` (°C);
- ``cell_coulomb_count_c`` (C, counted from 0 in each half cycle, signed) to charge / discharge capacity (Ah) by
  its sign, ``cell_energy_j`` (J) likewise to charge / discharge energy (Wh).

A file with more than one ``cell_id`` is refused (one cell per file), as BEEP does.

Example
-------
>>> sniff(b"\\x89HDF\\r\\n\\x1a\\n" + bytes(8), Path("missing.h5"))
False
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.formats import RawCell
from battlab.errors import DataFileError

__all__ = ["read", "sniff", "read_fixed_frame", "GROUP"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: The group holding Indigo's time series.
GROUP = "time_series_data"
_NEEDED = ("time_s", "cell_current_a", "cell_voltage_v")


def _items(group: Any, key: str) -> list[str]:
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in group[key][()]]


def sniff(head: bytes, path: Path) -> bool:
    """An HDF5 file with Indigo's ``time_series_data`` frame (its ``cell_voltage_v`` column); a damaged one whose
    first bytes name that group too (the reader then says it is damaged)."""
    if not head.startswith(HDF5_MAGIC):
        return False
    try:
        import h5py

        with h5py.File(path, "r") as h5:
            return GROUP in h5 and "axis0" in h5[GROUP] and "cell_voltage_v" in _items(h5[GROUP], "axis0")
    except Exception:  # unreadable (truncated?): Indigo's if its group's name is in the first bytes; read() says why
        return GROUP.encode() in head


def read_fixed_frame(path: Path, group: str = GROUP) -> pd.DataFrame:
    """A pandas fixed-format frame (``df.to_hdf(..., format="fixed")``) read with h5py: each ``block<k>_values``
    under the names in ``block<k>_items``, the columns in ``axis0``'s order."""
    import h5py

    with h5py.File(path, "r") as h5:
        g = h5[group]
        columns: dict[str, np.ndarray] = {}
        for k in range(int(g.attrs.get("nblocks", 0))):
            values = g[f"block{k}_values"][()]
            for i, name in enumerate(_items(g, f"block{k}_items")):
                columns[name] = values[:, i]
        order = _items(g, "axis0")
    missing = [c for c in order if c not in columns]
    if missing:
        raise ValueError(f"columns {', '.join(missing[:5])} in axis0 but in no block")
    return pd.DataFrame({c: columns[c] for c in order})


def read(path: Path) -> RawCell:
    """Read an Indigo HDF5 file into tidy columns (see the module docstring)."""
    try:
        raw = read_fixed_frame(path)
    except Exception as exc:
        raise DataFileError(f"{path}: Indigo HDF5 that h5py cannot read (truncated, damaged, or no {GROUP} frame): "
                            f"{' '.join(f'{type(exc).__name__}: {exc}'.split())[:200]}") from None
    if not len(raw):
        raise DataFileError(f"{path}: Indigo HDF5 with no data points")
    missing = [c for c in _NEEDED if c not in raw]
    if missing:
        raise DataFileError(f"{path}: Indigo HDF5 without a {', '.join(missing)} column (columns: "
                            f"{', '.join(map(str, raw.columns[:12]))})")
    meta: dict[str, Any] = {"reader": f"h5py ({GROUP}, pandas fixed-format frame)",
                            "file_columns": [str(c) for c in raw.columns]}
    if "cell_id" in raw:
        ids = sorted(pd.unique(raw["cell_id"]).tolist())
        if len(ids) > 1:
            raise DataFileError(f"{path}: Indigo HDF5 holding {len(ids)} cells (cell_id {', '.join(map(str, ids[:6]))}"
                                "); battlab reads one cell per file")
        meta["indigo_cell_id"] = int(ids[0])
    if "system_time_us" in raw:
        stamps = pd.to_datetime(raw["system_time_us"].astype("int64"), unit="us", utc=True)
        meta["first_timestamp"], meta["last_timestamp"] = str(stamps.iloc[0]), str(stamps.iloc[-1])
    tidy = pd.DataFrame(index=raw.index)
    tidy["time_s"] = raw["time_s"].astype(float)
    tidy["current_A"] = raw["cell_current_a"].astype(float)
    tidy["voltage_V"] = raw["cell_voltage_v"].astype(float)
    present = ["time_s", "current_A", "voltage_V"]
    for src, dst in (("cycle_count", "cycle"), ("half_cycle_count", "step")):
        if src in raw:
            tidy[dst] = raw[src].astype(np.int64)
            present.append(dst)
    for src, kind, factor in (("cell_coulomb_count_c", "capacity_Ah", 1 / 3600.0),
                              ("cell_energy_j", "energy_Wh", 1 / 3600.0)):
        if src in raw:
            value = raw[src].astype(float) * factor
            tidy[f"charge_{kind}"] = value.clip(lower=0.0)
            tidy[f"discharge_{kind}"] = (-value).clip(lower=0.0)
            present += [f"charge_{kind}", f"discharge_{kind}"]
    if "cell_temperature_c" in raw and raw["cell_temperature_c"].notna().any():
        tidy["temperature_C"] = raw["cell_temperature_c"].astype(float)
        present.append("temperature_C")
    meta["capacity"] = "cell_coulomb_count_c (C, signed, from 0 in each half cycle) / 3600 split by sign"
    return RawCell(tidy, present, meta)
