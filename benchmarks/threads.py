"""Gradient boosting on one thread or on all: fit time on an idle machine and beside a busy process.

scikit-learn's ``HistGradientBoostingRegressor`` parallelises each boosting iteration over OpenMP threads,
which meet at barriers many times per iteration. When another process holds a core, every barrier waits for
the thread that lost its core. battlab's zoo entry ``hgb`` is :class:`battlab.models.OneThreadHGBRegressor`
(one OpenMP thread, the same numbers); this measures both configurations in the same run, on the embedded
formation enthalpies featurized as the pipeline's step 02 does (the first ``--rows`` rows), with tuning-like
settings (1,000 iterations, 73 leaves), each fit run ``--repeats`` times (median).

"Loaded" runs a pure-Python busy loop beside the fit (one process per core minus one, so that one core is
left for the fit but not its second thread): what a notebook's tuning step meets beside another job.

Run: ``python benchmarks/threads.py [--rows 1700] [--iterations 1000] [--repeats 3]``. Prints ``name: value``
lines; the headline, last, is ``hgb_loaded_all_threads_vs_one_thread`` (median fit time with all OpenMP
threads / with one, beside the busy process; > 1: one thread is faster). Exits 1 if the two configurations
do not give the same predictions (then it could not compare like with like).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

#: tuning-like settings (a trial optuna drew for notebook 03), the same for every configuration
PARAMS = {"learning_rate": 0.19, "max_leaf_nodes": 73, "min_samples_leaf": 8, "l2_regularization": 0.29,
          "early_stopping": False, "random_state": 0}


def fit_seconds(X: np.ndarray, y: np.ndarray, threads: int | None, iterations: int, repeats: int
                ) -> tuple[float, np.ndarray]:
    """Median seconds of ``repeats`` fits + predictions of scikit-learn's HGB with ``threads`` OpenMP threads
    (``None``: the default, all cores), and the predictions."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    times, pred = [], np.empty(0)
    for _ in range(repeats):
        with threadpool_limits(threads, user_api="openmp"):
            t0 = time.perf_counter()
            model = HistGradientBoostingRegressor(max_iter=iterations, **PARAMS).fit(X, y)
            pred = model.predict(X)
            times.append(time.perf_counter() - t0)
    return float(np.median(times)), pred


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1700, help="training rows (the embedded set has 2,135)")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from battlab import steps
    from battlab.models import OneThreadHGBRegressor

    fs = steps.featurize(steps.curate(dataset="exp_formation_enthalpy"))
    X = fs.table[list(fs.features)].to_numpy(float)[: args.rows]
    y = fs.table[fs.model_target].to_numpy(float)[: args.rows]
    cores = os.cpu_count() or 1
    print(f"rows: {len(X)}")
    print(f"features: {X.shape[1]}")
    print(f"cores: {cores}")

    results: dict[str, float] = {}
    preds = []
    for load in ("idle", "loaded"):
        burners = []
        if load == "loaded":
            burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(cores - 1, 1))]
            time.sleep(1.0)
        try:
            for name, threads in (("one_thread", 1), ("all_threads", None)):
                seconds, pred = fit_seconds(X, y, threads, args.iterations, args.repeats)
                results[f"{load}_{name}"] = seconds
                preds.append(pred)
                print(f"hgb_{load}_{name}_seconds: {seconds:.2f}", flush=True)
        finally:
            for b in burners:
                b.kill()
                b.wait()
    zoo = OneThreadHGBRegressor(max_iter=args.iterations, **PARAMS).fit(X, y).predict(X)
    same = all(np.array_equal(preds[0], p) for p in preds[1:]) and np.array_equal(preds[0], zoo)
    print(f"same_predictions: {same}")
    if not same:
        return 1
    print(f"hgb_idle_all_threads_vs_one_thread: {results['idle_all_threads'] / results['idle_one_thread']:.2f}")
    print(f"hgb_loaded_all_threads_vs_one_thread: {results['loaded_all_threads'] / results['loaded_one_thread']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
