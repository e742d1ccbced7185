"""Discharge curves Q(V) per cycle, the common ground of the Severson dataset and of cycler files.

A :class:`DischargeCurves` holds, for many cells, the discharge capacity on a fixed voltage grid for some
cycles (``Q[cell, cycle, voltage]``, Ah, voltages decreasing as a discharge goes), the discharge capacity of
every early cycle (``capacity[cell, cycle]``), and a table of the cells (id, split, cycle life).
:func:`load_severson` reads the ``severson2019`` dataset into one; :func:`curves_from_cell` turns a cell
read from a cycler file into one, on the same voltage grid, so the same featurizers and models apply.

Example
-------
>>> import numpy as np
>>> v = np.linspace(3.6, 2.0, 5)
>>> q = np.stack([np.linspace(0, 1.0, 5), np.linspace(0, 0.9, 5)])[None]   # 1 cell, cycles 2 and 3
>>> dc = DischargeCurves(q, v, [2, 3], pd.DataFrame({"cell": ["a"], "cycle_life": [500.0]}))
>>> dc.capacity.round(2).tolist(), float(dc[0].curve(3)[-1])
([[1.0, 0.9]], 0.9)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError, DataFileError

__all__ = ["DischargeCurves", "CellCurves", "SEVERSON_VOLTAGES", "load_severson", "load_severson_subset",
           "curves_from_cell", "severson_subset", "write_severson_subset"]

#: The Severson/Attia voltage grid: 1000 voltages from 3.6 V down to 2.0 V.
SEVERSON_VOLTAGES = np.linspace(3.6, 2.0, 1000)
#: Cycles of the Severson curve files (columns 0..98).
SEVERSON_CYCLES = np.arange(2, 101)
_SUBSET = Path(__file__).with_name("data") / "severson2019_subset.npz"


@dataclass
class CellCurves:
    """One cell's view of a :class:`DischargeCurves`: what a featurizer's ``featurize`` takes."""

    Q: np.ndarray
    voltages: np.ndarray
    cycles: np.ndarray
    capacity: np.ndarray
    capacity_cycles: np.ndarray
    name: str = ""

    def curve(self, cycle: int) -> np.ndarray:
        """Q(V) of one cycle (Ah on :attr:`voltages`)."""
        where = np.flatnonzero(self.cycles == cycle)
        if not len(where):
            raise BattlabError(f"{self.name or 'cell'}: no discharge curve for cycle {cycle} "
                               f"(curves of cycles {_ranges(self.cycles)})")
        return self.Q[where[0]]

    def capacities(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """(cycles, discharge capacities) of the cycles ``first..last`` that the cell has."""
        keep = (self.capacity_cycles >= first) & (self.capacity_cycles <= last) & np.isfinite(self.capacity)
        return self.capacity_cycles[keep], self.capacity[keep]


def _ranges(cycles: Any) -> str:
    """``[1, 2, 3, 7]`` -> ``'1-3, 7'``."""
    cycles = sorted(int(c) for c in cycles)
    if not cycles:
        return "none"
    parts, start, prev = [], cycles[0], cycles[0]
    for c in cycles[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
        if c is not None:
            start = prev = c
    return ", ".join(parts)


@dataclass
class DischargeCurves:
    """Discharge curves of many cells on one voltage grid.

    Parameters
    ----------
    Q : array (n_cells, n_cycles, n_voltages)
        Discharge capacity (Ah) reached at each voltage of ``voltages`` (NaN where a cell lacks a cycle).
    voltages : array (n_voltages,)
        The voltage grid, decreasing (a discharge runs from high to low voltage).
    cycles : array (n_cycles,)
        The cycle number of each curve.
    cells : DataFrame
        One row per cell: ``cell`` (id) and, when known, ``split``, ``cycle_life``, ``is_outlier``.
    capacity, capacity_cycles : arrays (n_cells, n_cap) and (n_cap,), optional
        Discharge capacity of each cycle; by default Q at the lowest voltage of each curve.
    """

    Q: np.ndarray
    voltages: np.ndarray
    cycles: Any
    cells: pd.DataFrame
    capacity: np.ndarray | None = None
    capacity_cycles: Any = None
    source: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.Q = np.asarray(self.Q, dtype=float)
        self.voltages = np.asarray(self.voltages, dtype=float)
        self.cycles = np.asarray(self.cycles, dtype=int)
        if self.Q.ndim != 3 or self.Q.shape[1:] != (len(self.cycles), len(self.voltages)):
            raise BattlabError(f"Q has shape {self.Q.shape}; expected (cells, {len(self.cycles)} cycles, "
                               f"{len(self.voltages)} voltages)")
        if len(self.cells) != self.Q.shape[0]:
            raise BattlabError(f"{len(self.cells)} rows in cells for {self.Q.shape[0]} cells of curves")
        if self.capacity is None:
            self.capacity, self.capacity_cycles = self.Q[:, :, -1].copy(), self.cycles.copy()
        self.capacity = np.asarray(self.capacity, dtype=float)
        self.capacity_cycles = np.asarray(self.capacity_cycles, dtype=int)
        self.cells = self.cells.reset_index(drop=True)

    def __len__(self) -> int:
        return self.Q.shape[0]

    def __getitem__(self, i: int) -> CellCurves:
        return CellCurves(self.Q[i], self.voltages, self.cycles, self.capacity[i], self.capacity_cycles,
                          str(self.cells["cell"].iloc[i]) if "cell" in self.cells else str(i))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def select(self, mask: Any) -> DischargeCurves:
        """The cells where ``mask`` is true (a boolean array, or a query on :attr:`cells`).

        Example
        -------
        >>> dc = DischargeCurves(np.zeros((2, 1, 3)), [3.6, 2.8, 2.0], [2], pd.DataFrame({"cell": ["a", "b"]}))
        >>> len(dc.select(dc.cells["cell"] == "b"))
        1
        """
        mask = np.asarray(self.cells.eval(mask) if isinstance(mask, str) else mask, dtype=bool)
        return DischargeCurves(self.Q[mask], self.voltages, self.cycles, self.cells.loc[mask], self.capacity[mask],
                               self.capacity_cycles, self.source, dict(self.notes))

    @property
    def y(self) -> np.ndarray:
        """Cycle lives of the cells (NaN when unknown)."""
        return self.cells["cycle_life"].to_numpy(dtype=float) if "cycle_life" in self.cells else \
            np.full(len(self), np.nan)

    def save(self, out_dir: str | Path) -> Path:
        """Write ``curves.npz`` and ``cells.csv`` into ``out_dir``; :meth:`load` reads them back."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / "curves.npz", Q=self.Q.astype(np.float32), voltages=self.voltages,
                            cycles=self.cycles, capacity=self.capacity.astype(np.float32),
                            capacity_cycles=self.capacity_cycles)
        self.cells.to_csv(out / "cells.csv", index=False)
        (out / "curves.json").write_text(json.dumps({"source": self.source, "notes": self.notes}, default=str))
        return out

    @classmethod
    def load(cls, folder: str | Path) -> DischargeCurves:
        folder = Path(folder)
        if not (folder / "curves.npz").is_file():
            raise DataFileError(f"{folder}: no curves.npz (not a folder written by DischargeCurves.save)")
        with np.load(folder / "curves.npz") as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads((folder / "curves.json").read_text()) if (folder / "curves.json").is_file() else {}
        return cls(arrays["Q"], arrays["voltages"], arrays["cycles"], pd.read_csv(folder / "cells.csv"),
                   arrays["capacity"], arrays["capacity_cycles"], meta.get("source", ""), meta.get("notes", {}))


# --------------------------------------------------------------------------- the Severson dataset


def load_severson(progress: bool = False) -> DischargeCurves:
    """The ``severson2019`` dataset as :class:`DischargeCurves` (124 cells x cycles 2..100 x 1000 voltages).

    The 127 files are fetched (and checked against their sha256) through :func:`battlab.datasets.fetch`;
    without network and without the files cached, use :func:`load_severson_subset` (shipped with battlab).

    Example
    -------
    >>> dc = load_severson()  # doctest: +SKIP
    >>> dc.Q.shape, dc.cells["split"].value_counts().to_dict()  # doctest: +SKIP
    ((124, 99, 1000), {'test1': 43, 'test2': 40, 'train': 41})
    """
    from battlab.datasets import fetch, load_dataset

    cells, _ = load_dataset("severson2019")
    files = cells["curve_file"].tolist()
    if progress:
        from tqdm.auto import tqdm

        files = tqdm(files, desc="severson2019 curves", unit="cell")
    Q = np.empty((len(cells), len(SEVERSON_CYCLES), len(SEVERSON_VOLTAGES)), dtype=np.float32)
    for i, name in enumerate(files):
        m = pd.read_csv(fetch("severson2019", name), header=None, dtype=np.float64, engine="c").to_numpy()
        if m.shape != (len(SEVERSON_VOLTAGES), len(SEVERSON_CYCLES)):
            raise DataFileError(f"severson2019/{name}: shape {m.shape}, expected (1000 voltages, 99 cycles)")
        Q[i] = m.T
    return DischargeCurves(Q, SEVERSON_VOLTAGES, SEVERSON_CYCLES, cells.drop(columns="curve_file"),
                           source="severson2019 (petermattia/revisit-severson-et-al@3a77c7d)")


#: Cycles whose curves the shipped subset keeps: what the default featurizers need for 5, 20, 50 and 100 cycles.
SUBSET_CYCLES = (2, 4, 5, 10, 20, 50, 100)
SUBSET_VOLTAGES = 100


def severson_subset(curves: DischargeCurves, cycles: tuple[int, ...] = SUBSET_CYCLES,
                    n_voltages: int = SUBSET_VOLTAGES) -> DischargeCurves:
    """A small copy of the Severson curves: a few cycles on a coarser voltage grid, every cycle's capacity.

    Q is averaged over blocks of ``1000 / n_voltages`` neighbouring voltages (a smoother, coarser curve);
    the discharge capacity of every cycle 2..100 is kept exactly, so capacity-fade features are unchanged.
    """
    keep = [int(np.flatnonzero(curves.cycles == c)[0]) for c in cycles]
    block = len(curves.voltages) // n_voltages
    if block * n_voltages != len(curves.voltages):
        raise BattlabError(f"n_voltages must divide {len(curves.voltages)}, got {n_voltages}")
    Q = curves.Q[:, keep].reshape(len(curves), len(keep), n_voltages, block).mean(axis=3)
    v = curves.voltages.reshape(n_voltages, block).mean(axis=1)
    Q[:, :, -1] = curves.Q[:, keep, -1]  # the end of discharge stays the measured capacity
    v[-1] = curves.voltages[-1]
    return DischargeCurves(Q, v, np.asarray(cycles), curves.cells, curves.capacity, curves.capacity_cycles,
                           source=curves.source + f" (subset: cycles {list(cycles)}, {n_voltages} voltages)",
                           notes={"subset": True})


def load_severson_subset() -> DischargeCurves:
    """The subset of ``severson2019`` shipped with battlab (no network): cycles 2, 4, 5, 10, 20, 50, 100 on
    100 voltages (block means of the 1000), and the discharge capacity of every cycle 2..100, for all 124 cells.

    Derived from petermattia/revisit-severson-et-al (MIT licence, Copyright (c) 2020 petermattia; the notice
    is ``battlab/cycling/data/LICENSE_revisit-severson-et-al_MIT.txt``), data of Severson et al. 2019.

    Example
    -------
    >>> dc = load_severson_subset()
    >>> dc.Q.shape, dc.capacity.shape
    ((124, 7, 100), (124, 99))
    """
    if not _SUBSET.is_file():
        raise DataFileError(f"{_SUBSET}: the shipped Severson subset is missing from this installation")
    with np.load(_SUBSET, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    cells = pd.DataFrame({"cell": arrays["cell"].astype(str), "split": arrays["split"].astype(str),
                          "cycle_life": arrays["cycle_life"].astype(float), "is_outlier": arrays["is_outlier"]})
    return DischargeCurves(arrays["Q"], arrays["voltages"], arrays["cycles"], cells, arrays["capacity"],
                           arrays["capacity_cycles"], source=str(arrays["source"]), notes={"subset": True})


def write_severson_subset(curves: DischargeCurves, path: str | Path = _SUBSET) -> Path:
    """Write the shipped subset file (run once by the maintainers from the full dataset)."""
    sub = severson_subset(curves)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, Q=sub.Q.astype(np.float32), voltages=sub.voltages, cycles=sub.cycles,
                        capacity=sub.capacity.astype(np.float32), capacity_cycles=sub.capacity_cycles,
                        cell=sub.cells["cell"].to_numpy(dtype=str), split=sub.cells["split"].to_numpy(dtype=str),
                        cycle_life=sub.cells["cycle_life"].to_numpy(dtype=float),
                        is_outlier=sub.cells["is_outlier"].to_numpy(dtype=bool), source=np.array(sub.source))
    return path


# --------------------------------------------------------------------------- from a cycler file


def curves_from_cell(cell: Any, voltages: np.ndarray = SEVERSON_VOLTAGES) -> DischargeCurves:
    """The discharge curves of a cell read from a cycler file, on the voltage grid ``voltages``.

    For each usable cycle, the discharge points (current below zero) give Q(V): the discharge capacity counter
    since the start of the discharge against the voltage, made monotone (running minimum of the voltage) and
    interpolated linearly on the grid; below the lowest voltage reached, Q stays at the cycle's capacity.

    Example
    -------
    >>> from battlab.cycling.read import CellData, summarize_cycles
    >>> t = np.arange(6.0) * 720
    >>> data = pd.DataFrame({"cycle": [1] * 6, "step": 1, "time_s": t, "current_A": -1.0,
    ...                      "voltage_V": np.linspace(3.5, 2.0, 6), "discharge_capacity_Ah": t / 3600})
    >>> cell = CellData("c", "c.csv", "csv", data, summarize_cycles(data))
    >>> dc = curves_from_cell(cell, voltages=np.array([3.5, 2.75, 2.0]))
    >>> dc.Q[0, 0].round(3).tolist()
    [0.0, 0.5, 1.0]
    """
    voltages = np.asarray(voltages, dtype=float)
    data, summary = cell.data, cell.cycles.set_index("cycle")
    rows, cycles = [], []
    for c in cell.usable_cycles:
        g = data.loc[(data["cycle"] == c) & (data["current_A"] < -1e-6)]
        v = g["voltage_V"].to_numpy(dtype=float)
        q = g["discharge_capacity_Ah"].to_numpy(dtype=float)
        if not np.isfinite(q).any():  # no counter: integrate the current
            t, i = g["time_s"].to_numpy(dtype=float), g["current_A"].to_numpy(dtype=float)
            q = np.r_[0.0, np.cumsum(np.abs(i[:-1]) * np.diff(t))] / 3600.0
        ok = np.isfinite(v) & np.isfinite(q)
        v, q = np.minimum.accumulate(v[ok]), q[ok] - np.nanmin(q[ok])
        if len(v) < 3:
            continue
        # np.interp needs increasing x: the discharge runs down in voltage
        vv, qq = v[::-1], q[::-1]
        vv, first = np.unique(vv, return_index=True)
        qq = qq[first]
        curve = np.interp(voltages, vv, qq, left=float(np.nanmax(q)), right=0.0)
        rows.append(curve)
        cycles.append(c)
    cap_cycles = np.asarray(cell.usable_cycles, dtype=int)
    capacity = summary.loc[cap_cycles, "discharge_capacity_Ah"].to_numpy(dtype=float)[None] if len(cap_cycles) \
        else np.zeros((1, 0))
    Q = np.asarray(rows, dtype=float)[None] if rows else np.zeros((1, 0, len(voltages)))
    return DischargeCurves(Q, voltages, cycles, pd.DataFrame({"cell": [cell.name]}), capacity, cap_cycles,
                           source=cell.source)
