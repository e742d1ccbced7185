"""A synthetic pulse-test table in PulseBat's layout, built offline: for notebooks, apps and tests without the data.

**Synthetic, not measured.** Each row is the voltage response of an equivalent-circuit cell (an open-circuit voltage
curve, an ohmic resistance ``R0`` and one RC polarisation branch) to PulseBat's protocol: a rest (``U1``, the OCV),
then for each amplitude (0.5, 1, 1.5 C of the nominal capacity) a 5 s charge pulse, a 75 s rest, a 5 s discharge
pulse and a 75 s rest (the 1.5 C set stops after the first rest), 21 voltages ``U1``..``U21``. The physics that
makes SOH readable from a pulse, as in real cells:

- ageing raises the resistances: ``R0`` and ``Rp`` grow as the SOH falls (``R = R_new * (1 + k (1 - SOH))``);
- the SOC of the table is, as in PulseBat, the charge put in over the *nominal* capacity, so the cell's true state
  of charge is ``SOC / SOH``: an aged cell sits higher on its OCV curve at the same SOC;
- resistances rise at low state of charge and fall slightly with the amplitude (charge-transfer nonlinearity);
- cells of a kind scatter (3 % lognormal on the resistances, a few mV on the OCV) and the voltmeter has 0.5 mV noise.

Two kinds by default, with the shape of PulseBat's extremes: an NMC cylinder (2.1 Ah, sloped OCV) and an LFP
prismatic cell (35 Ah, flat OCV). Every row is marked ``synthetic`` (True); the table's ``attrs["source"]`` says
what it is. The numbers are plausible, not fitted to any dataset: use the table to try the workflow, never to
report an accuracy.

Example
-------
>>> t = example_pulse_table(n_cells=4, seed=0)
>>> len(t), t["cell_kind"].nunique(), int(t["synthetic"].all())
(80, 2, 1)
>>> bool((t["U3"] > t["U2"]).all()), bool((t["U7"] < t["U6"]).all())  # charge pulses raise, discharges lower
(True, True)
>>> t.attrs["source"].startswith("synthetic")
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from battlab.errors import BattlabError
from battlab.health.pulse import PULSEBAT_AMPLITUDES_C, pulse_voltage_names

__all__ = ["example_pulse_table", "load_pulse_table", "pulsebat_cached", "ExampleKind", "EXAMPLE_KINDS", "EXAMPLE_SOC",
           "PULSE_SOURCES"]

#: What :func:`load_pulse_table` reads.
PULSE_SOURCES = ("auto", "pulsebat", "example")

#: SOC levels (%) of the example, PulseBat's.
EXAMPLE_SOC = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)


@dataclass(frozen=True)
class ExampleKind:
    """Equivalent-circuit parameters of one kind of cell in :func:`example_pulse_table`.

    Resistances are capacity-specific (Ohm Ah: divide by the nominal capacity for Ohm), at SOH 1 and mid SOC.
    """

    name: str
    nominal_Ah: float
    ocv: tuple[float, float, float]  #: OCV(z) = a + b z + c ln(z / (1 - z)), z the true state of charge
    r0_ohm_ah: float
    rp_ohm_ah: float
    tau_s: float
    ageing_r0: float  #: R0 grows by this factor per unit of lost SOH
    ageing_rp: float


#: The kinds of the example (name -> parameters).
EXAMPLE_KINDS = {
    "NMC 2.1Ah (synthetic)": ExampleKind("NMC 2.1Ah (synthetic)", 2.1, (3.62, 0.55, 0.045), 0.060, 0.045, 12.0,
                                         2.5, 3.5),
    "LFP 35Ah (synthetic)": ExampleKind("LFP 35Ah (synthetic)", 35.0, (3.28, 0.06, 0.012), 0.055, 0.050, 18.0,
                                        2.5, 3.5),
}


def _response(kind: ExampleKind, soh: float, soc: float, r_scale: float, ocv_shift: float) -> np.ndarray:
    """The 21 voltages of one pulse test of one cell (no noise)."""
    z = np.clip(soc / 100.0 / soh, 0.02, 0.98)  # true state of charge: SOC is charge over the NOMINAL capacity
    a, b, c = kind.ocv
    ocv = a + b * (z - 0.5) + c * np.log(z / (1 - z)) + ocv_shift
    low_soc = 1 + 0.3 * np.exp(-z / 0.05)
    r0 = kind.r0_ohm_ah / kind.nominal_Ah * (1 + kind.ageing_r0 * (1 - soh)) * low_soc * r_scale
    rp = kind.rp_ohm_ah / kind.nominal_Ah * (1 + kind.ageing_rp * (1 - soh)) * low_soc * r_scale
    decay_pulse, decay_rest = np.exp(-5.0 / kind.tau_s), np.exp(-75.0 / kind.tau_s)
    u, vp = [ocv], 0.0  # vp: the RC branch's voltage (positive on charge)
    for k, amp in enumerate(PULSEBAT_AMPLITUDES_C):
        i = amp * kind.nominal_Ah
        nonlinear = 1 - 0.06 * (amp - 0.5)  # charge transfer: less resistance per amp at larger currents
        r0k, rpk = r0 * nonlinear, rp * nonlinear
        for sign, last in ((+1, k == len(PULSEBAT_AMPLITUDES_C) - 1), (-1, False)):
            start = ocv + vp + sign * i * r0k
            vp = vp * decay_pulse + sign * i * rpk * (1 - decay_pulse)
            end = ocv + vp + sign * i * r0k
            rest_start = ocv + vp
            vp *= decay_rest
            u += [start, end, rest_start, ocv + vp]
            if last:
                break
    return np.asarray(u)


def example_pulse_table(n_cells: int = 24, *, seed: int = 0, soc_levels: tuple[float, ...] = EXAMPLE_SOC,
                        kinds: tuple[str, ...] = tuple(EXAMPLE_KINDS), soh_range: tuple[float, float] = (0.55, 1.0),
                        noise_V: float = 5e-4) -> pd.DataFrame:
    """A synthetic pulse table: ``n_cells`` cells of each kind, each tested at every SOC level (see the module).

    Columns as :func:`battlab.datasets.load_dataset` gives PulseBat (``cell_kind``, ``cell_id``,
    ``nominal_capacity_Ah``, ``capacity_Ah``, ``SOH``, ``pulse_width_s``, ``SOC``, ``U1``..``U21``) and
    ``synthetic`` (True). Same ``seed``, same table.

    Raises
    ------
    BattlabError
        Fewer than one cell, an unknown kind, a SOH range outside (0, 1.2] or SOC levels outside (0, 100).
    """
    if int(n_cells) < 1:
        raise BattlabError(f"n_cells must be at least 1, got {n_cells!r}")
    unknown = [k for k in kinds if k not in EXAMPLE_KINDS]
    if unknown or not kinds:
        raise BattlabError(f"unknown example kind(s) {unknown}; kinds are {list(EXAMPLE_KINDS)}")
    lo, hi = (float(v) for v in soh_range)
    if not 0 < lo < hi <= 1.2:
        raise BattlabError(f"soh_range must be 0 < low < high <= 1.2 (fractions of nominal), got {soh_range!r}")
    socs = np.asarray(soc_levels, dtype=float)
    if socs.size == 0 or np.any((socs <= 0) | (socs >= 100)):
        raise BattlabError(f"soc_levels must be in (0, 100) %, got {soc_levels!r}")
    rng = np.random.default_rng(seed)
    names = pulse_voltage_names(len(PULSEBAT_AMPLITUDES_C))
    rows = []
    for kind_name in kinds:
        kind = EXAMPLE_KINDS[kind_name]
        short = kind_name.split(" (")[0].replace(" ", "_")
        for c in range(int(n_cells)):
            soh = float(rng.uniform(lo, hi))
            r_scale, ocv_shift = float(rng.lognormal(0, 0.03)), float(rng.normal(0, 0.003))
            for soc in socs:
                u = _response(kind, soh, float(soc), r_scale, ocv_shift) + rng.normal(0, noise_V, len(names))
                rows.append({"cell_kind": kind_name, "cell_id": f"{short}_syn{c:03d}",
                             "nominal_capacity_Ah": kind.nominal_Ah, "capacity_Ah": soh * kind.nominal_Ah,
                             "SOH": soh, "pulse_width_s": 5.0, "SOC": float(soc),
                             **dict(zip(names, np.round(u, 5), strict=True)), "synthetic": True})
    table = pd.DataFrame(rows)
    table.attrs["source"] = (f"synthetic pulse tests (battlab.health.example_pulse_table, seed {seed}): "
                             f"{int(n_cells)} equivalent-circuit cells of each of {len(kinds)} kinds, not measurements")
    return table


def pulsebat_cached() -> bool:
    """Whether every PulseBat file is in the download cache (:func:`battlab.datasets.data_dir`): no network needed."""
    from battlab.datasets import _FILES, data_dir

    return all((data_dir() / "pulsebat" / name).is_file() for name in _FILES["pulsebat"])


def load_pulse_table(dataset: str = "auto", *, seed: int = 0, n_cells: int = 24) -> tuple[pd.DataFrame, str]:
    """A pulse table and a sentence saying what it is.

    ``"pulsebat"``: the PulseBat dataset (:func:`battlab.datasets.load_dataset`, downloaded once, checked by sha256);
    ``"example"``: :func:`example_pulse_table` (synthetic, offline; ``n_cells`` per kind, ``seed``); ``"auto"``:
    PulseBat when it is in the cache already, else the synthetic example (never a download).

    Example
    -------
    >>> table, source = load_pulse_table("example", n_cells=3)
    >>> len(table), source.startswith("synthetic")
    (60, True)
    """
    if dataset not in PULSE_SOURCES:
        raise BattlabError(f"dataset must be one of {list(PULSE_SOURCES)}, got {dataset!r}")
    if dataset == "pulsebat" or (dataset == "auto" and pulsebat_cached()):
        from battlab.datasets import load_dataset

        table, card = load_dataset("pulsebat")
        return table, f"PulseBat, measured pulse tests of retired cells ({card.citation})"
    table = example_pulse_table(n_cells, seed=seed)
    note = " (PulseBat is not in the download cache; dataset='pulsebat' downloads it)" if dataset == "auto" else ""
    return table, table.attrs["source"] + note
