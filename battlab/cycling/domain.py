"""Where a cycle-life model knows the ground: its domain of applicability, learned from the training cells.

:meth:`DomainOfApplicability.learn` records, from the cells a model was fitted on, the range of each feature, of the
cells' initial discharge capacity, the voltage window of the model's discharge curves, the cycle window
(``n_cycles``), the chemistries when known, and the range of the training lives. :meth:`~DomainOfApplicability.check`
then judges every predicted cell:

- inside: no warning;
- outside but comparable (a feature, the capacity or the voltage window beyond the training range widened by
  ``margin`` of its width): the prediction is kept, bounded to the training lives' range widened by ``margin`` (in
  log10 cycles), and flagged (``in_domain`` False, the reasons in ``domain_warnings``);
- nothing sensible can be said (an initial capacity more than ``refuse_ratio`` times outside the training cells',
  a discharge that overlaps less than half the model's voltage window): refused (``refused`` True, no number).

Every prediction is bounded to that widened life range: a model never answers with a life no cell can reach.

Example
-------
>>> import pandas as pd
>>> table = pd.DataFrame({"f": [1.0, 2.0, 3.0], "cycle_life": [300.0, 500.0, 900.0],
...                       "initial_capacity_Ah": [1.05, 1.07, 1.1]})
>>> dom = DomainOfApplicability.learn(table, ["f"], n_cycles=100, voltages=[3.6, 2.0])
>>> cells = pd.DataFrame({"f": [2.0, 9.0, 2.0], "initial_capacity_Ah": [1.08, 1.08, 18.5]})
>>> check = dom.check(cells)
>>> check["in_domain"].tolist(), check["refused"].tolist()
([True, False, False], [False, False, True])
>>> check["domain_warnings"].iloc[1]
'f = 9 outside the training range 1 to 3'
>>> [round(x) for x in dom.bound([10.0, 600.0, 1e90])]
[228, 600, 1184]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DomainOfApplicability", "cell_domain_info", "CAPACITY", "V_HIGH", "V_LOW"]

#: Columns of a cells table the check reads when present (:func:`cell_domain_info` adds them).
CAPACITY, V_HIGH, V_LOW, CHEMISTRY = "initial_capacity_Ah", "discharge_v_high", "discharge_v_low", "chemistry"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


@dataclass
class DomainOfApplicability:
    """The training cells' ground: feature ranges, capacity, voltage window, cycle window, chemistry, lives."""

    features: dict[str, tuple[float, float]]
    n_cycles: int
    life: tuple[float, float]
    capacity_Ah: tuple[float, float] | None = None
    voltage_window: tuple[float, float] | None = None
    chemistry: list[str] = field(default_factory=list)
    margin: float = 0.25
    refuse_ratio: float = 2.0
    #: How the training labels were made (nominal_Ah, fraction, reference), to label a predicted cell the same way.
    label_settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def learn(cls, table: pd.DataFrame, features: list[str], *, n_cycles: int, voltages: Any = None,
              life_column: str = "cycle_life", margin: float = 0.25, refuse_ratio: float = 2.0,
              label_settings: dict[str, Any] | None = None) -> DomainOfApplicability:
        """The domain of the training ``table`` (one row per cell: ``features``, ``life_column``, and when present
        :data:`CAPACITY`, :data:`CHEMISTRY`); ``voltages``: the model's voltage grid."""
        ranges = {f: (float(np.nanmin(table[f])), float(np.nanmax(table[f]))) for f in features
                  if np.isfinite(table[f].to_numpy(dtype=float)).any()}
        life = table[life_column].to_numpy(dtype=float)
        cap = table[CAPACITY].to_numpy(dtype=float) if CAPACITY in table else np.array([])
        cap = cap[np.isfinite(cap)]
        v = np.asarray(voltages, dtype=float) if voltages is not None else np.array([])
        chem = sorted({str(c) for c in table[CHEMISTRY].dropna()}) if CHEMISTRY in table else []
        return cls(ranges, int(n_cycles), (float(np.nanmin(life)), float(np.nanmax(life))),
                   (float(cap.min()), float(cap.max())) if len(cap) else None,
                   (float(v.max()), float(v.min())) if len(v) else None, chem, float(margin), float(refuse_ratio),
                   dict(label_settings or {}))

    def _widen(self, lo: float, hi: float) -> tuple[float, float]:
        w = (hi - lo) if hi > lo else max(abs(hi), 1e-12) * 0.1
        return lo - self.margin * w, hi + self.margin * w

    def life_bounds(self) -> tuple[float, float]:
        """The training lives' range widened by ``margin`` of its width in log10 cycles (0.1 decade at least)."""
        lo, hi = np.log10(max(self.life[0], 1.0)), np.log10(max(self.life[1], 1.0))
        w = max(hi - lo, 0.1)
        return float(10 ** (lo - self.margin * w)), float(10 ** (hi + self.margin * w))

    def bound(self, life: Any) -> np.ndarray:
        """``life`` clipped to :meth:`life_bounds` (NaN stays NaN)."""
        return np.clip(np.asarray(life, dtype=float), *self.life_bounds())

    def check(self, cells: pd.DataFrame) -> pd.DataFrame:
        """One row per row of ``cells``: ``in_domain``, ``refused`` and ``domain_warnings`` (reasons joined
        by ``"; "``).

        ``cells`` holds the features and, when known, :data:`CAPACITY`, :data:`V_HIGH`/:data:`V_LOW` (the cell's
        discharge window) and :data:`CHEMISTRY`.
        """
        warnings: list[list[str]] = [[] for _ in range(len(cells))]
        refused = np.zeros(len(cells), dtype=bool)
        for f, (lo, hi) in self.features.items():
            if f not in cells:
                continue
            wlo, whi = self._widen(lo, hi)
            x = cells[f].to_numpy(dtype=float)
            for i in np.flatnonzero(~np.isfinite(x)):
                warnings[i].append(f"{f} could not be computed")
            for i in np.flatnonzero(np.isfinite(x) & ((x < wlo) | (x > whi))):
                warnings[i].append(f"{f} = {_fmt(x[i])} outside the training range {_fmt(lo)} to {_fmt(hi)}")
        if self.capacity_Ah is not None and CAPACITY in cells:
            lo, hi = self.capacity_Ah
            wlo, whi = self._widen(lo, hi)
            wlo, whi = min(wlo, 0.95 * lo), max(whi, 1.05 * hi)  # cells of one kind differ by a few % at least
            cap = cells[CAPACITY].to_numpy(dtype=float)
            for i in np.flatnonzero(np.isfinite(cap) & ((cap < wlo) | (cap > whi))):
                far = cap[i] > hi * self.refuse_ratio or cap[i] < lo / self.refuse_ratio
                refused[i] |= far
                warnings[i].append(f"initial capacity {_fmt(cap[i])} Ah "
                                   + ("far " if far else "") + f"outside the training cells' {_fmt(lo)}-{_fmt(hi)} Ah")
        if self.voltage_window is not None and V_HIGH in cells and V_LOW in cells:
            top, bottom = self.voltage_window
            vh, vl = cells[V_HIGH].to_numpy(dtype=float), cells[V_LOW].to_numpy(dtype=float)
            for i in np.flatnonzero(np.isfinite(vh) & np.isfinite(vl)):
                overlap = max(0.0, min(vh[i], top) - max(vl[i], bottom)) / max(top - bottom, 1e-9)
                if overlap < 0.5:
                    refused[i] = True
                    warnings[i].append(f"discharges over {vl[i]:.2f}-{vh[i]:.2f} V, which covers {overlap:.0%} of "
                                       f"the model's {bottom:.2f}-{top:.2f} V")
                elif vh[i] < top - 0.05 or vl[i] > bottom + 0.05:
                    warnings[i].append(f"discharges over {vl[i]:.2f}-{vh[i]:.2f} V, the model's curves span "
                                       f"{bottom:.2f}-{top:.2f} V")
        if self.chemistry and CHEMISTRY in cells:
            for i, c in enumerate(cells[CHEMISTRY]):
                if isinstance(c, str) and c and c not in self.chemistry:
                    warnings[i].append(f"chemistry {c}, the training cells are {', '.join(self.chemistry)}")
        return pd.DataFrame({"in_domain": [not w for w in warnings], "refused": refused,
                             "domain_warnings": ["; ".join(w) for w in warnings]}, index=cells.index)

    def describe(self) -> dict[str, Any]:
        """Plain JSON values, for the model card."""
        out = asdict(self)
        out["life_bounds"] = list(self.life_bounds())
        return out


def cell_domain_info(curves: Any, n_first: int = 5) -> pd.DataFrame:
    """The cells table of ``curves`` with :data:`CAPACITY` added when missing: the median discharge capacity of each
    cell's first ``n_first`` cycles with a capacity.

    Example
    -------
    >>> from battlab.cycling.curves import DischargeCurves
    >>> dc = DischargeCurves(np.zeros((1, 1, 2)), [3.6, 2.0], [2], pd.DataFrame({"cell": ["a"]}),
    ...                      np.array([[np.nan, 1.1, 1.2, 1.0]]), [1, 2, 3, 4])
    >>> cell_domain_info(dc)["initial_capacity_Ah"].tolist()
    [1.1]
    """
    cells = curves.cells.copy()
    if CAPACITY not in cells:
        caps = []
        for row in np.asarray(curves.capacity, dtype=float):
            finite = row[np.isfinite(row)]
            caps.append(float(np.median(finite[:n_first])) if len(finite) else np.nan)
        cells[CAPACITY] = caps
    return cells
