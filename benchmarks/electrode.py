"""Simulator calls to the optimum: the surrogate closed loop against the standard tools, on two problems.

Every method maximises the stack specific energy (0.5C) with rate capability (2C/0.5C) >= 0.8 on the
virtual line (DFN, NMC811 / Chen2020), with the same simulator-call budget per seed (default 50):

- ``random_lhs``: a Latin hypercube of ``budget`` designs (:func:`~battlab.electrode.optimize.random_simulator`);
- ``direct_pso``: pymoo PSO on the simulator, 10 particles x ``budget // 10`` generations;
- ``gp_ei``: constrained GP expected improvement, the constraint modelled by a second GP, 5 Latin
  hypercube starts (``bayesian-optimization`` 3.x, :func:`~battlab.electrode.optimize.gp_ei_simulator`);
- ``tpe``: optuna's TPE with its constraint handling, optuna defaults (10 random start-up trials);
- ``closed_loop``: grey-box surrogate + PSO on it, one design per round, with
  :func:`~battlab.electrode.optimize.closed_loop`'s defaults as users get them (chosen on development
  seeds 0-19): an initial Latin hypercube of 3 designs up to 3 knobs and one per knob beyond; after a
  proposal that does not improve the best design, the design of maximum expected improvement; it stops
  when the surrogate's largest expected improvement stays below 0.2 % of the best for 2 rounds that did
  not move the best design by any amount, and its last proposal came out as predicted (objective, and
  feasibility when predicted feasible), so it may use fewer calls than the budget. Only its round limit
  follows the budget (``budget - n_initial`` rounds).

Problems:

- ``window3``: the window the loop was tuned on: active weight fraction 0.88-0.97, coating gap 80-300 um,
  calender line load 0-2000 N/mm, solid content fixed at 0.65.
- ``window6``: six knobs: the same three, solid content 0.55-0.75 (the shipped DOE's range), active
  particle radius 2-10 um (NMC811 powders are sold from ~3 um single crystals to ~12-15 um
  polycrystalline secondaries, i.e. radii of about 1.5-7.5 um; 10 um keeps a coarse powder in the
  window) and N/P ratio 1.05-1.25 (below ~1.05 a graphite anode risks lithium plating, above ~1.2 the
  extra anode only adds mass). Finer particles and a leaner anode let a thicker electrode meet the rate
  constraint, so the optimum moves along several knobs at once.

The report sets are seeds 100-119 and 200-219 (a set is the seeds of one hundred); the loop's settings were
chosen on seeds 0-19 only. Two seeds of 100-119 (111, 117), which stopped short with the earlier rule, were
run again without stopping to understand why (not to choose settings); seeds 300-319 were first run with
the final settings, an unseen check. For each run, the count is the number of simulator calls until its best
feasible simulated design comes within 1 % of the best known optimum of the problem (the larger of
``BEST_KNOWN``, the best any method found in earlier runs of this benchmark, and the best feasible
objective any run finds in this one); the closed loop's count includes its initial designs; a run that
never gets there counts as infinitely many calls (so a method that misses on most seeds has median
``inf``). Each method's calls are its own: nothing is cached across methods or runs.

Runs go to ``--workers`` processes (default 2), one simulation at a time each. Measured here: one
design takes ~0.3-0.7 s on one core, a closed-loop round (refit, PSO on the surrogate, the expected-improvement
search) ~5-15 s, a GP-EI suggestion ~1-3 s on 6 knobs. All five methods on seeds 100-119 (200 runs) took
about 83 minutes on the 2 shared cores of the development machine (load 3-5); the default two report sets
double that. At load 14-23 (other sessions), a closed-loop run took 1-7 minutes on window6 (60 runs in 51
minutes on 4 workers) and a GP-EI run of 50 calls 16-20 minutes. ``--methods``, ``--problems`` and ``--seeds``
run a part (``--seeds 300-319``: the unseen check); ``--traces FILE --resume`` continues an interrupted run or
adds methods to it (the runs are seeded).

Run: ``python benchmarks/electrode.py [--seeds 100-119,200-219] [--problems window3,window6] [--budget 50]``.
Prints ``name: value`` lines; per problem and report set ``closed_loop_reached_<problem>_seeds<set>: K of
N`` (runs of the closed loop that got within 1 %) and, when a standard optimiser ran on those seeds,
``closed_loop_vs_best_bo_calls_<problem>_seeds<set>``; the headline ``closed_loop_vs_best_bo_calls``
last (median calls of the closed loop / median calls of the better of ``gp_ei`` and ``tpe`` on
``window6``, or on the last problem run if ``window6`` is not, over all seeds run); exits 1 only if it
could not measure (no feasible design found).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from battlab.electrode.optimize import (  # noqa: E402
    _score,
    closed_loop,
    gp_ei_simulator,
    pso_simulator,
    random_simulator,
    tpe_simulator,
)
from battlab.plan.electrode import initial_size  # noqa: E402

PROBLEMS: dict[str, dict[str, Any]] = {
    "window3": {"active_weight_fraction": (0.88, 0.97), "solid_content": 0.65, "coating_gap_um": (80.0, 300.0),
                "line_load_N_per_mm": (0.0, 2000.0)},
    "window6": {"active_weight_fraction": (0.88, 0.97), "solid_content": (0.55, 0.75),
                "coating_gap_um": (80.0, 300.0), "line_load_N_per_mm": (0.0, 2000.0),
                "particle_radius_um": (2.0, 10.0), "np_ratio": (1.05, 1.25)},
}
OBJECTIVE = "specific_energy_Wh_kg"
CONSTRAINTS = {"rate_capability": (0.8, None)}
METHODS = ("random_lhs", "direct_pso", "gp_ei", "tpe", "closed_loop")
BO_METHODS = ("gp_ei", "tpe")
#: the best feasible objective any method found in any earlier run of this benchmark (seeds 100-119, all five
#: methods, 50 calls); the target of a run is 1 % below the larger of this and the best the run itself finds
BEST_KNOWN = {"window3": 334.69, "window6": 348.07}
PSO_POP = 10


def best_so_far(calls: pd.DataFrame) -> np.ndarray:
    """Best feasible objective after each simulator call (-inf before the first feasible one)."""
    ok = (calls["status"] == "ok").to_numpy()
    _, viol = _score(calls.assign(**{OBJECTIVE: calls[OBJECTIVE].where(ok)}), OBJECTIVE, True, CONSTRAINTS, 0.0)
    value = np.where(ok & (viol == 0), calls[OBJECTIVE].to_numpy(float), -np.inf)
    return np.maximum.accumulate(value)


def calls_to(trace: np.ndarray, target: float) -> float:
    hit = np.nonzero(trace >= target)[0]
    return float(hit[0] + 1) if hit.size else float("inf")


def run_one(problem: str, method: str, seed: int, budget: int) -> dict[str, Any]:
    """One run of one method: its best-so-far trace over its own simulator calls."""
    space = PROBLEMS[problem]
    kw: dict[str, Any] = {"space": space, "constraints": CONSTRAINTS, "seed": seed}
    t0 = time.perf_counter()
    if method == "random_lhs":
        calls = random_simulator(OBJECTIVE, n_calls=budget, **kw).evaluations
    elif method == "direct_pso":
        calls = pso_simulator(OBJECTIVE, pop_size=PSO_POP, n_gen=budget // PSO_POP, **kw).evaluations
    elif method == "gp_ei":
        calls = gp_ei_simulator(OBJECTIVE, n_calls=budget, n_initial=5, **kw).evaluations
    elif method == "tpe":
        calls = tpe_simulator(OBJECTIVE, n_calls=budget, **kw).evaluations
    elif method == "closed_loop":
        # closed_loop's defaults, as users get them; only the round limit follows the budget
        res = closed_loop(OBJECTIVE, max_rounds=budget - initial_size(space), verbose=False, **kw)
        calls = res.data.sort_values("sim_call").rename(columns={"sim_call": "call"})
    else:
        raise ValueError(f"unknown method {method!r}")
    calls = calls.sort_values("call")
    if len(calls) > budget:
        raise RuntimeError(f"{method} on {problem}, seed {seed}: {len(calls)} simulator calls, budget {budget}")
    return {"problem": problem, "method": method, "seed": seed, "trace": best_so_far(calls),
            "n_failed": int((calls["status"] != "ok").sum()), "seconds": time.perf_counter() - t0}


def parse_seeds(text: str) -> list[int]:
    """``"100-119"``, ``"100,105"`` or a mix."""
    seeds: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        seeds += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return seeds


def seed_set(seed: int) -> int:
    """The report set of a seed: its hundred (seeds 100-119 -> 100, 200-219 -> 200, 0-19 -> 0)."""
    return seed // 100 * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="100-119,200-219",
                        help="seeds of the runs, e.g. 100-119 or 100,101 (reported per hundred)")
    parser.add_argument("--problems", default="window3,window6", help=f"comma-separated: {', '.join(PROBLEMS)}")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of the methods")
    parser.add_argument("--budget", type=int, default=50, help="simulator calls per run (every method)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="parallel runs")
    parser.add_argument("--traces", help="CSV file: each run's best-so-far trace, appended as runs finish")
    parser.add_argument("--resume", action="store_true",
                        help="skip the runs already in --traces (runs are seeded: same code, same trace)")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    problems = [p for p in args.problems.split(",") if p]
    methods = [m for m in args.methods.split(",") if m]
    bad = [p for p in problems if p not in PROBLEMS] + [m for m in methods if m not in METHODS]
    if bad or args.budget < PSO_POP:
        print(f"error: unknown problem/method {bad} or budget below {PSO_POP}", file=sys.stderr)
        return 1
    from joblib import Parallel, delayed

    # the closed loop's runs are the longest: first, so the workers finish together
    tasks = sorted(((p, m, s) for p in problems for m in methods for s in seeds),
                   key=lambda t: (t[1] != "closed_loop", t[0] != "window6"))
    t_start = time.perf_counter()
    results: list[dict[str, Any]] = []
    if args.resume and args.traces and os.path.exists(args.traces):
        old = pd.read_csv(args.traces)
        for (p, m, s), g in old.groupby(["problem", "method", "seed"]):
            if (p, m, int(s)) in tasks:
                g = g.sort_values("call")
                results.append({"problem": p, "method": m, "seed": int(s), "resumed": True,
                                "trace": g["best_feasible"].to_numpy(float),
                                "n_failed": float(g["n_failed"].iloc[0]), "seconds": float(g["seconds"].iloc[0])})
        have = {(r["problem"], r["method"], r["seed"]) for r in results}
        tasks = [t for t in tasks if t not in have]
        print(f"resumed {len(results)} runs from {args.traces}", file=sys.stderr)
    n_tasks = len(results) + len(tasks)
    out = Parallel(n_jobs=args.workers, return_as="generator_unordered")(
        delayed(run_one)(p, m, s, args.budget) for p, m, s in tasks)
    for r in out:
        results.append(r)
        if args.traces:
            pd.DataFrame({"problem": r["problem"], "method": r["method"], "seed": r["seed"],
                          "call": np.arange(1, len(r["trace"]) + 1), "best_feasible": r["trace"],
                          "seconds": round(r["seconds"], 1), "n_failed": r["n_failed"]}).to_csv(
                args.traces, mode="a", header=not os.path.exists(args.traces), index=False)
        print(f"[{len(results)}/{n_tasks} runs, {time.perf_counter() - t_start:.0f} s] {r['problem']} "
              f"{r['method']} seed {r['seed']}: best {r['trace'][-1]:.2f} in {len(r['trace'])} calls "
              f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)

    print(f"seeds: {len(seeds)}")
    print(f"seed_first: {seeds[0]}")
    print(f"seed_last: {seeds[-1]}")
    print(f"budget_simulator_calls: {args.budget}")
    sets = sorted({seed_set(s) for s in seeds})
    counts: dict[tuple[str, str, int], float] = {}  # (problem, method, seed) -> calls to 1 %
    measured = False
    for problem in problems:
        runs = [r for r in results if r["problem"] == problem]
        best = max([BEST_KNOWN.get(problem, -np.inf)] + [r["trace"][-1] for r in runs])
        if not np.isfinite(best):
            print(f"{problem}_error: no feasible design found", file=sys.stderr)
            continue
        measured = True
        target = best - 0.01 * abs(best)
        print(f"{problem}_knobs: {sum(not np.isscalar(v) for v in PROBLEMS[problem].values())}")
        print(f"{problem}_best_known_{OBJECTIVE}: {best:.2f}")
        for method in methods:
            mine = sorted((r for r in runs if r["method"] == method), key=lambda r: r["seed"])
            if not mine:
                continue
            calls = [calls_to(r["trace"], target) for r in mine]
            for r, n in zip(mine, calls, strict=True):
                counts[problem, method, r["seed"]] = n
                print(f"{problem}_{method}_seed{r['seed']}_calls_to_1pct: {n:.0f}")
            gaps = [100 * (best - r["trace"][-1]) / abs(best) for r in mine]
            print(f"{problem}_{method}_final_gap_percent_median: {np.median(gaps):.2f}")
            print(f"{problem}_{method}_simulator_calls_mean: {np.mean([len(r['trace']) for r in mine]):.1f}")
            print(f"{problem}_{method}_failed_simulations: {np.nansum([r['n_failed'] for r in mine]):.0f}")
            unknown = sum(np.isnan(r["n_failed"]) for r in mine)
            if unknown:  # runs resumed from a traces file that did not record them
                print(f"{problem}_{method}_failed_simulations_unknown_runs: {unknown}")
            print(f"{problem}_{method}_seconds: {sum(r['seconds'] for r in mine):.0f}")
            print(f"{problem}_{method}_share_within_budget: {np.mean(np.isfinite(calls)):.2f}")
            print(f"{problem}_{method}_calls_to_1pct_max: {max(calls):.0f}")
            print(f"{problem}_{method}_calls_to_1pct_median: {np.median(calls):.1f}")
    print(f"wall_seconds: {time.perf_counter() - t_start:.0f}")
    if not measured:
        print("error: no problem had a feasible design", file=sys.stderr)
        return 1

    def median(problem: str, method: str, group: int | None = None) -> float:
        got = [n for (p, m, s), n in counts.items() if p == problem and m == method
               and (group is None or seed_set(s) == group)]
        return float(np.median(got)) if got else float("nan")

    def ratio(problem: str, group: int | None = None) -> float:
        loop = median(problem, "closed_loop", group)
        bos = [b for b in (median(problem, m, group) for m in BO_METHODS) if not np.isnan(b)]
        if np.isnan(loop) or not bos:
            return float("nan")
        bo = min(bos)
        return loop / bo if np.isfinite(bo) else (0.0 if np.isfinite(loop) else float("nan"))

    # per report set (the seeds of one hundred: 100-119, 200-219...): how often the loop gets there, and its ratio
    for problem in problems:
        for group in sets:
            got = [n for (p, m, s), n in counts.items() if p == problem and m == "closed_loop" and seed_set(s) == group]
            if got:
                print(f"closed_loop_reached_{problem}_seeds{group}: {int(np.isfinite(got).sum())} of {len(got)}")
            if not np.isnan(ratio(problem, group)):
                print(f"closed_loop_vs_best_bo_calls_{problem}_seeds{group}: {ratio(problem, group):.3f}")
    headline = "window6" if "window6" in problems else problems[-1]
    if not np.isnan(ratio(headline)):
        print(f"closed_loop_vs_best_bo_calls: {ratio(headline):.3f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # a benchmark that cannot measure exits non-zero
        print(f"benchmarks/electrode.py: could not measure: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
