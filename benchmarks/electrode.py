"""Simulator calls needed by PSO on the virtual line versus the surrogate closed loop.

Both maximise the stack specific energy (0.5C) with rate capability (2C/0.5C) >= 0.8 over a 3-parameter
NMC811 (Chen2020) process window, with fixed seeds. For each, the count is the number of simulator
calls until its best feasible simulated design comes within 1% of the best objective either finds;
the closed loop's count includes its initial design of experiments.

Run: ``python benchmarks/electrode.py`` (about 5-15 minutes on 2 cores). Prints ``name: value`` lines,
the headline ``simulator_call_ratio`` (closed loop / direct) last; exits 1 if it could not measure.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from battlab.electrode.optimize import _score, closed_loop, pso_simulator  # noqa: E402

SPACE = {"active_weight_fraction": (0.88, 0.97), "solid_content": 0.65, "coating_gap_um": (80.0, 300.0),
         "line_load_N_per_mm": (0.0, 2000.0)}
OBJECTIVE = "specific_energy_Wh_kg"
CONSTRAINTS = {"rate_capability": (0.8, None)}
N_JOBS = min(2, os.cpu_count() or 1)


def best_so_far(calls: pd.DataFrame) -> np.ndarray:
    """Best feasible objective after each simulator call (NaN before the first feasible one)."""
    ok = (calls["status"] == "ok").to_numpy()
    _, viol = _score(calls.assign(**{OBJECTIVE: calls[OBJECTIVE].where(ok)}), OBJECTIVE, True, CONSTRAINTS, 0.0)
    value = np.where(ok & (viol == 0), calls[OBJECTIVE].to_numpy(float), -np.inf)
    return np.maximum.accumulate(value)


def calls_to(trace: np.ndarray, target: float) -> float:
    hit = np.nonzero(trace >= target)[0]
    return float(hit[0] + 1) if hit.size else float("nan")


def main() -> int:
    t0 = time.perf_counter()
    direct = pso_simulator(OBJECTIVE, space=SPACE, constraints=CONSTRAINTS, pop_size=20, n_gen=20, seed=0,
                           n_jobs=N_JOBS)
    t_direct = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = closed_loop(OBJECTIVE, space=SPACE, constraints=CONSTRAINTS, n_initial=12, batch_size=3,
                       max_rounds=15, patience=3, kappa=1.0, seed=0, n_jobs=N_JOBS, verbose=False)
    t_loop = time.perf_counter() - t0

    d_trace = best_so_far(direct.evaluations.sort_values("call"))
    l_trace = best_so_far(loop.data.sort_values("sim_call"))
    best = max(d_trace[-1], l_trace[-1])
    if not np.isfinite(best):
        print("error: no feasible design found", file=sys.stderr)
        return 1
    target = best - 0.01 * abs(best)
    n_direct, n_loop = calls_to(d_trace, target), calls_to(l_trace, target)
    print(f"direct_pso_simulator_calls_total: {len(d_trace)}")
    print(f"direct_pso_best_specific_energy_Wh_kg: {d_trace[-1]:.2f}")
    print(f"direct_pso_failed_simulations: {int((direct.evaluations['status'] != 'ok').sum())}")
    print(f"direct_pso_seconds: {t_direct:.1f}")
    print(f"closed_loop_simulator_calls_total: {len(l_trace)}")
    print(f"closed_loop_rounds: {int(loop.history['round'].max())}")
    print(f"closed_loop_best_specific_energy_Wh_kg: {l_trace[-1]:.2f}")
    print(f"closed_loop_failed_simulations: {int((loop.data['status'] != 'ok').sum())}")
    print(f"closed_loop_seconds: {t_loop:.1f}")
    print(f"closed_loop_gap_to_best_percent: {100 * (best - l_trace[-1]) / abs(best):.2f}")
    print(f"direct_pso_calls_to_1pct: {n_direct:.0f}")
    print(f"closed_loop_calls_to_1pct: {n_loop:.0f}")
    if np.isnan(n_direct) or np.isnan(n_loop):
        print("error: one method never came within 1% of the best objective", file=sys.stderr)
        return 1
    print(f"simulator_call_ratio: {n_loop / n_direct:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
