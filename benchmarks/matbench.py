"""Quality of battlab's default featurize + tune on public benchmarks, beside their leaderboards.

    python benchmarks/matbench.py --task expt_gap   # 50 trials per fold (--trials); --minutes: an optional cap
    python benchmarks/matbench.py --task steels
    python benchmarks/matbench.py --task steels --folds 1,2   # a part (each fold takes up to an hour on 2 cores)
    python benchmarks/matbench.py --task obelix     # official OBELiX train/test split

Budgets are in trials, not seconds (issue 24): the same command gives the same models and figures on an idle
and on a loaded machine. ``--minutes`` caps a run for a user in a hurry; a fold it cuts short prints
``foldK_cut_short_by_timeout: True`` and the figures then depend on the machine.

matbench tasks use matbench v0.1's exact folds (KFold 5, shuffle, random_state 18012019): for each
fold, battlab featurizes the compositions (preset "battery"), tunes on the fold's training rows only
(inner random 5-fold CV, since the outer evaluation is random too; a budget of trials per fold; prediction
intervals skipped), refits the best model and predicts the held-out rows. OBELiX: curated without
merging rows (so the official 478/121 split is kept), with censored conductivities set to 1e-15 S/cm
as in OBELiX's own processed.csv, featurized with structure descriptors, tuned on train with the
chemical-system split, scored as MAE of log10(conductivity) on test.

Prints the battlab version and commit measured first. Data come from the battlab cache (``BATTLAB_DATA``);
when that is unset and ``../shared/datasets``
exists beside the repository, a temporary cache is filled from it. Prints ``name: value`` lines, the
headline (``matbench_<task>_mae`` or ``obelix_test_mae_log10``) last; exits 1 if it could not measure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LEADERBOARD = {
    "expt_gap": {"Darwin": 0.2865, "MODNet v0.1.12": 0.3327, "CrabNet": 0.3463, "AMMExpress v2020": 0.4161,
                 "RF-SCM/Magpie": 0.4461, "Dummy": 1.1435},
    "steels": {"TPOT-Mat": 79.95, "MODNet v0.1.12": 87.76, "RF-SCM/Magpie": 103.51, "CrabNet": 107.32,
               "Dummy": 229.74},
}
TARGETS = {"expt_gap": "gap expt", "steels": "yield strength"}


def _ensure_data() -> None:
    if os.environ.get("BATTLAB_DATA"):
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from shared_data import fill_cache, shared_complete

    if shared_complete():
        os.environ["BATTLAB_DATA"] = str(fill_cache(Path(tempfile.mkdtemp(prefix="battlab-bench-"))))


def battlab_build() -> dict[str, str]:
    """The battlab version and git commit measured (``-dirty``: uncommitted changes in battlab/)."""
    import subprocess

    from battlab import __version__

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        if subprocess.run(["git", "status", "--porcelain", "--", "battlab"], cwd=root, capture_output=True,
                          text=True).stdout.strip():
            commit += "-dirty"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    return {"battlab_version": __version__, "battlab_commit": commit}


def _cap(minutes: float | None, parts: int = 1) -> float | None:
    return None if minutes is None else minutes * 60 / parts


def run_matbench(task: str, trials: int, minutes: float | None, seed: int, folds: list[int] | None = None) -> None:
    from battlab.datasets import load_dataset, matbench_folds
    from battlab.featurize import featurize_table
    from battlab.tune import tune

    df, _ = load_dataset(f"matbench_{task}")
    target = TARGETS[task]
    table, info = featurize_table(df, formula_column="composition")
    features = info["feature"].tolist()
    maes, t0 = [], time.perf_counter()
    for k, (train, test) in enumerate(matbench_folds(len(df))):
        if folds is not None and k not in folds:
            continue
        result = tune(table.iloc[train].reset_index(drop=True), features, target, split="random",
                      split_options={"seed": seed}, n_trials=trials, timeout=_cap(minutes, 5), intervals=False,
                      storage="sqlite:///:memory:", seed=seed, progress=False)
        pred = result.model.predict(table.iloc[test][features].to_numpy(dtype=float))
        if task == "expt_gap":
            pred = np.clip(pred, 0, None)  # a band gap is never negative
        maes.append(float(np.mean(np.abs(pred - table.iloc[test][target].to_numpy()))))
        print(f"fold{k}_mae: {maes[-1]:.4f}")
        print(f"fold{k}_model: {result.best_name} ({len(result.study.trials)} trials)", flush=True)
        print(f"fold{k}_cut_short_by_timeout: {result.card['study']['cut_short_by_timeout']}", flush=True)
    print(f"seconds: {time.perf_counter() - t0:.0f}")
    for name, mae in LEADERBOARD[task].items():
        print(f"leaderboard_{name.replace(' ', '_')}: {mae}")
    print(f"mae_std: {np.std(maes):.4f}")
    if folds is not None and sorted(folds) != list(range(5)):  # a part of the benchmark: not its headline
        print(f"matbench_{task}_mae_folds_{'_'.join(str(k) for k in sorted(folds))}: {np.mean(maes):.4f}")
        return
    print(f"matbench_{task}_mae: {np.mean(maes):.4f}")


def run_obelix(trials: int, minutes: float | None, seed: int) -> None:
    from battlab.curate import curate_dataset
    from battlab.featurize import add_model_target, featurize_table
    from battlab.tune import tune

    result, card = curate_dataset("obelix", group_by=["split", "ID"])  # one row per OBELiX entry
    curated = result.curated
    censored = curated[f"{card.target}_censored"] == "<"
    curated.loc[censored, card.target] = 1e-15  # as OBELiX's processed.csv
    table, info = featurize_table(curated, formula_column="formula")
    table, target = add_model_target(table, card.target, log=True)
    features = info["feature"].tolist()
    train, test = table[table["split"] == "train"], table[table["split"] == "test"]
    t0 = time.perf_counter()
    tuned = tune(train.reset_index(drop=True), features, target, n_trials=trials, timeout=_cap(minutes),
                 intervals=False, storage="sqlite:///:memory:", seed=seed, progress=False)
    pred = tuned.model.predict(test[features].to_numpy(dtype=float))
    y = test[target].to_numpy()
    print(f"n_train: {len(train)}")
    print(f"n_test: {len(test)}")
    print(f"model: {tuned.best_name} ({len(tuned.study.trials)} trials, inner split {tuned.split})")
    print(f"cut_short_by_timeout: {tuned.card['study']['cut_short_by_timeout']}")
    print(f"seconds: {time.perf_counter() - t0:.0f}")
    print(f"train_mean_baseline_mae_log10: {np.mean(np.abs(y - train[target].mean())):.4f}")
    print(f"obelix_test_mae_log10: {np.mean(np.abs(pred - y)):.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["expt_gap", "steels", "obelix"], default="expt_gap")
    parser.add_argument("--trials", type=int, default=50, help="optuna trials per fold (obelix: in all); default 50")
    parser.add_argument("--minutes", type=float, default=None,
                        help="optional cap on the tuning time (a run it cuts short says so); default none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", default=None,
                        help="comma-separated matbench folds to run (0-4), e.g. 1,2 to spread a task over several "
                             "sessions; the last line then names the folds (not the headline); default all five")
    args = parser.parse_args()
    folds = None
    if args.folds is not None:
        folds = sorted({int(k) for k in args.folds.split(",") if k.strip()})
        if not folds or not set(folds) <= set(range(5)) or args.task == "obelix":
            parser.error("--folds takes matbench folds 0-4 (comma-separated); OBELiX has one official split")
    _ensure_data()
    os.environ.setdefault("BATTLAB_OFFLINE", "1")
    for name, value in battlab_build().items():
        print(f"{name}: {value}", flush=True)
    try:
        if args.task == "obelix":
            run_obelix(args.trials, args.minutes, args.seed)
        else:
            run_matbench(args.task, args.trials, args.minutes, args.seed, folds)
    except Exception as exc:  # any failure means no figure: say why and exit non-zero
        print(f"could not measure: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
