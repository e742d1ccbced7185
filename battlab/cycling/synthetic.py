"""Synthetic cycler files of cells with known lives: the offline example of the own-cells path, and its tests.

Each cell fades as ``Q_n = Q0 * (1 - 0.02 n/L - 0.18 (n/L)^3)`` (a slow linear fade, then a knee), so it reaches
80 % of its nominal capacity ``Q0`` at cycle ``L``, its latent life. The same ``L`` shapes the early discharge
curves: every curve is one shape (an LFP-like plateau from 3.6 V down to 2.0 V) scaled to that cycle's capacity,
so the difference of two early curves, dQ(V), grows as ``1/L^3`` - the signal Severson et al. 2019 read. A small
cell-to-cell spread (``noise``) in that signal keeps the task from being exact. Files are kept small: a few points
per charge and discharge.

:func:`write_example_cells` writes them in two vendor formats (Arbin CSV exports and BioLogic EC-Lab text
exports), one of them censored (its test stops before the threshold), and returns the known lives.

Example
-------
>>> import tempfile
>>> truth = write_example_cells(tempfile.mkdtemp(), n_cells=3, seed=1)
>>> truth[["cell", "format", "censored"]].values.tolist()
[['cell_01', 'arbin', False], ['cell_02', 'biologic', False], ['cell_03', 'arbin', True]]
>>> bool((truth["last_cycle"] < truth["true_life"])[truth["censored"]].all())
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["synthetic_cycles", "write_example_cells", "EXAMPLE_NOMINAL_AH"]

#: Nominal capacity of the synthetic cells (Ah), as the A123 cells of Severson et al.
EXAMPLE_NOMINAL_AH = 1.1
# Fractions of the capacity at which a discharge is sampled: dense at both ends of the curve.
_X = np.array([0.0, 0.01, 0.03, 0.1, 0.3, 0.5, 0.7, 0.9, 0.96, 0.99, 1.0])


def _voltage(x: np.ndarray) -> np.ndarray:
    """An LFP-like discharge: 3.6 V at the start, a sloping plateau near 3.3 V, 2.0 V at the end."""
    return 3.3 - 0.12 * (x - 0.5) + 0.25 * np.exp(-x / 0.03) - 1.24 * np.exp((x - 1) / 0.04)


def synthetic_cycles(life: float, n_cycles: int, *, nominal_Ah: float = EXAMPLE_NOMINAL_AH, signal: float = 1.0,
                     seed: int = 0) -> pd.DataFrame:
    """The tidy table (cycle, step, time_s, current_A, voltage_V, charge/discharge_capacity_Ah) of one cell.

    Each cycle is a 1 C charge (3 points) then a 1 C discharge (11 points); the capacity of cycle ``n`` follows
    the fade law of the module docstring with latent life ``life``; ``signal`` scales the early fade (the
    cell-to-cell spread of the signal); ``seed`` adds a 0.01 % measurement noise on each cycle's capacity.

    Example
    -------
    >>> t = synthetic_cycles(200, 3)
    >>> t.groupby("cycle")["discharge_capacity_Ah"].max().round(4).tolist()
    [1.0999, 1.0998, 1.0997]
    """
    rng = np.random.default_rng(seed)
    n = np.arange(1, int(n_cycles) + 1, dtype=float)
    u = n / float(life)
    q = nominal_Ah * (1 - 0.02 * u * signal - 0.18 * u ** 3 * signal ** 0.5) * (1 + 1e-4 * rng.standard_normal(len(n)))
    current = nominal_Ah  # 1 C
    rows, t = [], 0.0
    for cyc, qn in zip(n.astype(int), q, strict=True):
        for frac in (0.0, 0.5, 1.0):  # charge, its counter from 0
            rows.append((cyc, 1, t + frac * qn / current * 3600, current, 3.35 + 0.25 * frac - 0.3 * (frac == 0),
                         frac * qn, 0.0))
        t += qn / current * 3600 + 600  # and a 10-minute rest
        for x in _X:
            rows.append((cyc, 2, t + x * qn / current * 3600, -current, float(_voltage(np.array([x]))[0]), qn,
                         x * qn))
        t += qn / current * 3600 + 600
    return pd.DataFrame(rows, columns=["cycle", "step", "time_s", "current_A", "voltage_V", "charge_capacity_Ah",
                                       "discharge_capacity_Ah"])


def _crossing(signal: float) -> float:
    """u = n / L at which the fade law with this ``signal`` reaches 80 % of the nominal capacity."""
    from scipy.optimize import brentq

    return float(brentq(lambda u: 0.02 * u * signal + 0.18 * u ** 3 * signal ** 0.5 - 0.2, 1e-6, 10.0))


def _write_arbin(table: pd.DataFrame, path: Path) -> None:
    """An Arbin CSV export: Data_Point, Test_Time, ..., Cycle_Index, Current, Voltage, Charge/Discharge_Capacity."""
    out = pd.DataFrame({"Data_Point": np.arange(len(table)), "Test_Time": table["time_s"],
                        "DateTime": 1.5e9 + table["time_s"], "Step_Time": 0.0, "Step_Index": table["step"],
                        "Cycle_Index": table["cycle"], "Current": table["current_A"], "Voltage": table["voltage_V"],
                        "Charge_Capacity": table["charge_capacity_Ah"],
                        "Discharge_Capacity": table["discharge_capacity_Ah"],
                        "Charge_Energy": 3.3 * table["charge_capacity_Ah"],
                        "Discharge_Energy": 3.3 * table["discharge_capacity_Ah"], "dV/dt": 0.0,
                        "Internal_Resistance": 0.015, "Temperature": 30.0})
    out.to_csv(path, index=False, float_format="%.6g")


def _write_biologic(table: pd.DataFrame, path: Path) -> None:
    """A BioLogic EC-Lab text export (.mpt): 'Nb header lines', tab separated, mA and mA.h."""
    body = pd.DataFrame({"mode": 1, "time/s": table["time_s"], "Ewe/V": table["voltage_V"],
                         "<I>/mA": 1000 * table["current_A"], "cycle number": table["cycle"],
                         "Q charge/mA.h": 1000 * table["charge_capacity_Ah"],
                         "Q discharge/mA.h": 1000 * table["discharge_capacity_Ah"]})
    text = "EC-Lab ASCII FILE\nNb header lines : 4\n\n" + body.to_csv(sep="\t", index=False, float_format="%.6g")
    path.write_text(text, encoding="latin-1")


def write_example_cells(out_dir: str | Path, *, n_cells: int = 12, seed: int = 0, life_range: tuple[float, float] =
                        (140.0, 330.0), noise: float = 0.1, extra_cycles: int = 10) -> pd.DataFrame:
    """Write ``n_cells`` synthetic cycler files into ``out_dir``; one row per cell of what they are.

    Cells alternate between Arbin CSV (``cell_01.csv``) and EC-Lab text (``cell_02.mpt``). Latent lives are spread
    evenly in log over ``life_range`` (shuffled with ``seed``); each file runs ``extra_cycles`` past its cell's life,
    except the last cell's, which stops at 60 % of a life beyond the range (right-censored). ``noise``: the spread (log)
    of each cell's fade ``signal``. Returns ``cell``, ``file``, ``format``, ``true_life`` (the cycle at which the
    noiseless fade reaches 80 % of nominal), ``latent_life``, ``signal``, ``censored``, ``last_cycle``,
    ``nominal_Ah``.
    """
    if n_cells < 2:
        raise BattlabError(f"write_example_cells needs 2 cells or more, got n_cells={n_cells}")
    rng = np.random.default_rng(seed)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    lives = np.geomspace(*life_range, n_cells - 1)
    rng.shuffle(lives)
    lives = np.r_[lives, life_range[1] * 1.2]
    rows = []
    for i, latent in enumerate(lives, start=1):
        censored = i == n_cells
        signal = float(np.exp(noise * rng.standard_normal()))
        life = latent * _crossing(signal)
        last = int(round(0.6 * life)) if censored else int(np.ceil(life)) + extra_cycles
        table = synthetic_cycles(latent, last, signal=signal, seed=seed * 1000 + i)
        fmt = "arbin" if i % 2 else "biologic"
        path = out / f"cell_{i:02d}.{'csv' if fmt == 'arbin' else 'mpt'}"
        (_write_arbin if fmt == "arbin" else _write_biologic)(table, path)
        rows.append({"cell": path.stem, "file": path.name, "format": fmt, "true_life": float(life),
                     "latent_life": float(latent), "signal": signal,
                     "censored": censored, "last_cycle": last, "nominal_Ah": EXAMPLE_NOMINAL_AH})
    return pd.DataFrame(rows)
