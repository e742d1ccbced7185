"""Redox-limited theoretical capacity (``battlab.design.capacity.redox_capacity``): its speed per 1,000 formulas
beside the all-ions capacity of ``BatteryDescriptors``, and how it compares with the Materials Project's DFT
capacities of insertion electrodes.

    nice -n 10 python benchmarks/redox_capacity.py

Data: the discharged formulas of the Materials Project insertion electrodes (Li, Na, K; ``load_dataset(
"mp_insertion_electrodes")``, filled from ``../shared/datasets`` as in ``benchmarks/design.py``), each with its own
working ion. Speed: ``cold`` clears the caches (every oxidation-state guess computed), ``warm`` repeats the call
(cached), per 1,000 distinct formulas; ``battery_descriptors`` is the whole all-ions featurizer on the same
formulas. Quality: the share of electrodes whose DFT capacity (``capacity_grav``, ion removed from the discharged to
the charged formula) is at most the redox-limited capacity (+1 %), i.e. where it is an upper bound as meant; the
share where it is 0 although the electrode has a capacity (anion redox, conversion and alloying hosts: not counted
by the rule) and NaN (no oxidation states). Prints ``name: value`` lines, the headline
(``seconds_per_1000_formulas_cold``) last; exits 1 if it could not measure.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from design import _ensure_data

    _ensure_data()
    from battlab.design import candidates
    from battlab.design import capacity as C
    from battlab.design.voltage import electrode_table, load_electrodes
    from battlab.errors import BattlabError
    from battlab.featurize import BatteryDescriptors

    try:
        table, _ = electrode_table(load_electrodes(("Li", "Na", "K")))
    except BattlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    table = table.drop_duplicates(["working_ion", "formula_discharge"]).reset_index(drop=True)
    print(f"n_formulas: {len(table)} (distinct discharged formulas and working ions)")
    cold = warm = desc = 0.0
    parts = []
    for ion, rows in table.groupby("working_ion"):
        formulas = rows["formula_discharge"].tolist()
        C._one.cache_clear()
        candidates._oxidation_of.cache_clear()
        t = time.perf_counter()
        c = C.redox_capacity(formulas, working_ion=ion)
        cold += time.perf_counter() - t
        t = time.perf_counter()
        C.redox_capacity(formulas, working_ion=ion)
        warm += time.perf_counter() - t
        t = time.perf_counter()
        BatteryDescriptors(working_ion=ion).fit_transform(formulas)
        desc += time.perf_counter() - t
        parts.append(c.set_index(rows.index))
    import pandas as pd

    cap = pd.concat(parts).loc[table.index]
    mp = table["capacity_grav"].to_numpy(dtype=float)
    redox = cap["capacity_mAh_g"].to_numpy(dtype=float)
    finite = np.isfinite(redox) & np.isfinite(mp)
    if not finite.any():
        print("error: no electrode with both capacities", file=sys.stderr)
        return 1
    k = len(table) / 1000
    print(f"share_nan: {np.mean(~np.isfinite(redox)):.3f}")
    print(f"share_zero_but_mp_capacity: {np.mean((redox == 0) & (mp > 1)):.3f}")
    print(f"share_mp_capacity_within_redox_limit: {np.mean(mp[finite] <= redox[finite] * 1.01 + 1e-6):.3f} "
          f"(of {int(finite.sum())} with a redox-limited capacity)")
    all_ions = cap["capacity_all_ions_mAh_g"].to_numpy(dtype=float)
    print(f"share_redox_below_all_ions: {np.mean(redox[finite] < all_ions[finite] - 1e-6):.3f}")
    print(f"seconds_per_1000_formulas_warm: {warm / k:.3f}")
    print(f"seconds_per_1000_formulas_battery_descriptors: {desc / k:.3f}")
    print(f"seconds_per_1000_formulas_cold: {cold / k:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
