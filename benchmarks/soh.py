"""State of health of retired cells from one pulse test (PulseBat, issue 23): MAPE per cell kind and split.

Run: ``python benchmarks/soh.py`` (needs the four PulseBat files in the battlab data cache, or
``../shared/datasets/battery_health/pulsebat/`` beside the repository; about 3-4 minutes on one core).

For each split (:data:`battlab.health.soh.SPLITS`) battlab's choice (:func:`battlab.health.soh.fit_soh`: feature
set - raw U1..U21, pulse features, pulse features + SOC - and model chosen by cross-validation on the training
rows only, grouped like the split: by SOC level, by cell, by cell kind) is fitted on the training rows and the test
rows are scored once, beside ridge (standardised, alpha 1) and a random forest (300 trees) on the raw U1..U21 in the
same run. Coverage: share of test rows inside the 90 % CV+ interval.

``--generated`` (issue 23 item 4; ``--splits soc_interpolation,soc_extrapolation`` keeps it to about 2-3
minutes): per kind, :class:`battlab.generate.ConditionalGaussian` (degree 1: the Gaussian conditional of U1..U21
given SOC and SOH, Ledoit-Wolf residual covariance) is fitted on the training rows only and samples one row per
training sample at each SOC level the training rows miss (the test levels, at the SOH of the training cells -
never a test row's voltages or SOH); battlab's choice (made on measured rows) is refitted on measured + generated
rows, and ridge / random forest on U1..U21 are trained on both; every model is scored on the same measured test
rows. Where no SOC level is missing (unseen cells, unseen kind) nothing is generated.

Measured (seed 0, this machine, 2026-12-06), MAPE % per kind NMC 2.1 / LMO 10 / NMC 21 / LFP 35:

- unseen SOC, interpolation: battlab 1.9 / 3.0 / 1.5 / 4.1 (90 % interval coverage 0.95);
  ridge on U1..U21 5.1 / 6.7 / 1.5 / 4.2; random forest on U1..U21 14.3 / 17.9 / 6.3 / 4.4
- unseen SOC, extrapolation: battlab 2.0 / 3.3 / 2.1 / 4.4 (coverage 0.92);
  ridge 7.4 / 13.2 / 2.1 / 4.1; random forest 20.6 / 27.8 / 19.0 / 5.7
- unseen cells (fold 0 of 5 grouped by cell_id): battlab 2.2 / 3.1 / 0.7 / 3.5 (coverage 0.92);
  ridge 5.7 / 7.9 / 1.0 / 6.3; random forest 4.7 / 6.9 / 0.5 / 5.2
- unseen cell kind (trained on the other three kinds): battlab 7.3 / 12.8 / 16.3 / 4.9 (coverage 0.77)

pulsebat_unseen_soc_mape_max = 4.41 (LFP 35 Ah, extrapolation): the goal (<= 3 % on every kind) is NOT met; the
paper's < 6 % (with generated data) is met without generated data on every kind. Against the issue's ridge figures:
better on every kind in extrapolation (2.0 / 3.3 / 2.1 / 4.4 vs 7.4 / 13.2 / 2.2 / 11.1); in interpolation better
for NMC 2.1 and LMO 10, level for NMC 21 (1.5 vs 1.4) and worse for LFP 35 (4.1 vs 3.4; this run's ridge: 4.2).
177 s in all (two cores shared with other jobs). The random forest figures equal the issue's on the SOC splits;
the issue's ridge figures are not reproduced exactly by a standardised ridge with alpha 1 (theirs: 4.8/4.0/1.4/3.4 and
7.4/13.2/2.2/11.1), nor its unseen-cells fold (a random 20 % of cells there, fold 0 of battlab's grouped 5-fold
here). Choices: the selected feature set and model differ per kind (pulse+soc with ridge or kernel ridge for
NMC 2.1 / LMO 10, raw voltages with ridge for NMC 21, pulse features with SVR for LFP 35). The choice is fragile
where the training SOC range is narrow, i.e. the seed-0 headline is a lucky draw for LMO 10 Ah: the same run with
seed 1 / seed 2 gives interpolation 1.9 / 3.6 / 1.5 / 4.2 and 1.9 / 3.4 / 1.5 / 4.1, extrapolation
2.0 / 5.7 / 2.1 / 4.4 and 2.0 / 18.7 / 2.1 / 4.4 (pulsebat_unseen_soc_mape_max 5.7 and 18.7): kernel models with
the SOC as a feature extrapolate well with some hyperparameters and badly with others, and leave-one-SOC-out
folds inside 5-25 % do not tell them apart (during development, 12 trials with 3-fold SOC grouping gave 16.9 %).
Unseen cell kind: no model transfers across chemistries yet (7-16 %), and its intervals undercover (0.77).

With generated rows (``--generated``, seed 0, 2026-12-06; 335 / 475 / 260 / 280 generated rows per kind), MAPE %
NMC 2.1 / LMO 10 / NMC 21 / LFP 35, without -> with:

- interpolation: battlab 1.9 / 3.0 / 1.5 / 4.1 -> 1.8 / 2.8 / 1.5 / 4.1; ridge 5.1 / 6.7 / 1.5 / 4.2 ->
  5.0 / 6.6 / 1.5 / 4.2; random forest 14.3 / 17.9 / 6.3 / 4.4 -> 5.9 / 8.2 / 1.3 / 4.1
- extrapolation: battlab 2.0 / 3.3 / 2.1 / 4.4 -> 1.6 / 7.9 / 1.9 / 4.3; ridge 7.4 / 13.2 / 2.1 / 4.1 ->
  6.7 / 8.5 / 1.9 / 4.1; random forest 20.6 / 27.8 / 19.0 / 5.7 -> 6.8 / 7.9 / 2.8 / 4.3

pulsebat_unseen_soc_generated_mape_max = 7.87 (LMO 10 Ah, extrapolation) against 4.41 without. So generated rows
rescue the models that cannot interpolate across SOC (the random forest: 28 -> 8 % at worst, the paper's setting)
and help linear ridge in extrapolation, but barely move battlab's choice, whose pulse features with the SOC as an
input already bridge SOC levels; in extrapolation they hurt it on LMO 10 Ah (3.3 -> 7.9: a linear-in-SOC generator
extrapolates the LMO pulse response worst, 0.15 V RMS off at 30-50 %). The goal (<= 3 %) is not met either way.
During development a degree chosen per kind by leaving each training SOC level out (``degree=(1, 2, 3),
degree_by="SOC"``; random forest of 100 trees) did not help: interpolation ridge / forest 5.0 / 6.5 / 1.5 / 4.2 and
5.9 / 6.0 / 1.2 / 4.1, extrapolation 6.6 / 7.1 / 1.7 / 4.1 and 15.3 / 7.9 / 15.6 / 4.4 (leaving interior levels
out rewards curvature that then extrapolates badly).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

KINDS = ["NMC 2.1Ah", "LMO 10Ah", "NMC 21Ah", "LFP 35Ah"]
ANCHORS = {  # the figures: ridge / random forest on U1..U21
    "soc_interpolation": {"ridge": [4.8, 4.0, 1.4, 3.4], "rf": [14.3, 17.9, 6.3, 4.4]},
    "soc_extrapolation": {"ridge": [7.4, 13.2, 2.2, 11.1], "rf": [20.6, 27.8, 19.0, 5.7]},
    "unseen_cells": {"ridge": [4.1, 4.0, 1.3, 3.2], "rf": [3.8, 6.5, 1.3, 3.9]},
}
PAPER_MAPE = 6.0  # Tao et al. 2024, with generated data, at unseen SOC
GOAL = 3.0


def _load() -> pd.DataFrame:
    """PulseBat from ../shared/datasets when it is there (copied into a throwaway cache), else the registry."""
    from shared_data import CACHE_LAYOUT, SHARED_DATASETS

    from battlab.datasets import load_dataset

    files = {filename: SHARED_DATASETS / rel for (name, filename), rel in CACHE_LAYOUT.items() if name == "pulsebat"}
    if not os.environ.get("BATTLAB_DATA") and all(p.is_file() for p in files.values()):
        cache = Path(tempfile.mkdtemp(prefix="battlab-soh-"))
        (cache / "pulsebat").mkdir()
        for filename, path in files.items():
            (cache / "pulsebat" / filename).write_bytes(path.read_bytes())
        os.environ["BATTLAB_DATA"] = str(cache)
    return load_dataset("pulsebat")[0]


def _baselines(df: pd.DataFrame, split: str, seed: int = 0, generator=None) -> dict[str, dict[str, float]]:
    """Ridge and random forest on the raw U1..U21, per kind, same train/test rows as battlab's choice; with
    ``generator`` also both trained on the training rows plus rows generated at the SOC levels they miss
    (``ridge+gen``, ``rf+gen``)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from battlab.health.soh import (
        EXTRAPOLATION_TRAIN_SOC,
        INTERPOLATION_TRAIN_SOC,
        _unseen_cells_mask,
        generated_rows,
        mape,
    )

    U = [f"U{i}" for i in range(1, 22)]
    out: dict[str, dict[str, float]] = {"ridge": {}, "rf": {}, "ridge+gen": {}, "rf+gen": {}}
    for kind in KINDS:
        part = df[df["cell_kind"] == kind]
        if split == "unseen_cells":
            test = _unseen_cells_mask(part, "cell_id", seed)
        else:
            train_soc = INTERPOLATION_TRAIN_SOC if split == "soc_interpolation" else EXTRAPOLATION_TRAIN_SOC
            test = ~part["SOC"].isin(train_soc).to_numpy()
        X, y = part[U].to_numpy(), part["SOH"].to_numpy()
        for name, model in (("ridge", make_pipeline(StandardScaler(), Ridge(1.0))),
                            ("rf", RandomForestRegressor(300, random_state=seed, n_jobs=1))):
            out[name][kind] = mape(y[test], model.fit(X[~test], y[~test]).predict(X[test]))
            missing = sorted(set(part["SOC"]) - set(part.loc[~test, "SOC"]))
            if generator is not None and missing:
                gen = generated_rows(part.loc[~test], missing, generator, seed=seed)
                Xa = pd.concat([part.loc[~test, U], gen[U]]).to_numpy()
                ya = pd.concat([part.loc[~test, "SOH"], gen["SOH"]]).to_numpy()
                out[name + "+gen"][kind] = mape(y[test], model.fit(Xa, ya).predict(X[test]))
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    import argparse

    from battlab.generate import ConditionalGaussian
    from battlab.health.soh import SPLITS, evaluate_soh, mape

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", action="store_true",
                        help="also train on rows generated at the SOC levels missing from the training rows "
                             "(battlab.generate.ConditionalGaussian per kind, degree 1) and print both figures")
    parser.add_argument("--splits", default=",".join(SPLITS), help="comma-separated splits (default: all)")
    args = parser.parse_args(argv)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    generator = ConditionalGaussian(conditions=["SOC", "SOH"], degree=1, seed=0) if args.generated else None
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    df = _load()
    figures: dict[str, float] = {}
    lines = []
    for split in splits:
        t = time.perf_counter()
        # pooled kinds: 2,000 rows, kernel ridge is cubic in rows: ridge and SVR only
        options: dict = {"models": ("ridge", "svr"), "n_trials": 4} if split == "unseen_cell_kind" else {}
        pred = evaluate_soh(df, split, generator=generator, **options)
        inside = (pred["SOH"] >= pred["SOH_low"]) & (pred["SOH"] <= pred["SOH_high"])
        per_kind = {k: mape(g["SOH"], g["SOH_pred"]) for k, g in pred.groupby("cell_kind")}
        cover = {k: float(inside[g.index].mean()) for k, g in pred.groupby("cell_kind")}
        base = _baselines(df, split, generator=generator) if split != "unseen_cell_kind" else None
        print(f"\n{SPLITS[split]}  ({time.perf_counter() - t:.0f} s)")
        print(f"  {'':34s}" + "".join(f"{k:>11s}" for k in KINDS))
        print("  battlab (chosen on training rows)" + "".join(f"{per_kind[k]:11.1f}" for k in KINDS))
        print("    its choice: " + "; ".join(f"{k}: {g['feature_set'].iloc[0]}/{g['model'].iloc[0]}"
                                             for k, g in pred.groupby("held_out", sort=False)))
        print("  90 % interval coverage          " + "".join(f"{cover[k]:11.2f}" for k in KINDS))
        gen_kind: dict[str, float] = {}
        if generator is not None:
            n_gen = pred.groupby("cell_kind")["n_generated"].first()
            if n_gen.sum() == 0:
                print("  with generated rows: none (no SOC level is missing from the training rows)")
            else:
                gen_kind = {k: mape(g["SOH"], g["SOH_pred_generated"]) for k, g in pred.groupby("cell_kind")}
                print(f"  {'battlab + generated (same choice)':34s}" + "".join(f"{gen_kind[k]:11.1f}" for k in KINDS))
                print("    generated rows per kind: " + ", ".join(f"{k}: {n_gen[k]}" for k in KINDS))
        if base:
            for name in ("ridge", "rf"):
                print(f"  {name + ' on U1..U21 (this run)':34s}" + "".join(f"{base[name][k]:11.1f}" for k in KINDS))
                if base[name + "+gen"]:
                    print(f"  {name + ' + generated rows':34s}"
                          + "".join(f"{base[name + '+gen'][k]:11.1f}" for k in KINDS))
                print(f"  {name + ' (issue 23 figures)':34s}" + "".join(f"{v:11.1f}" for v in ANCHORS[split][name]))
        for k in KINDS:
            figures[f"pulsebat_{split}_mape_{k.replace(' ', '_').replace('.', '_')}"] = round(per_kind[k], 2)
            if gen_kind:
                figures[f"pulsebat_{split}_generated_mape_{k.replace(' ', '_').replace('.', '_')}"] = round(
                    gen_kind[k], 2)
        figures[f"pulsebat_{split}_coverage90"] = round(float(inside.mean()), 3)
        line = f"{split}: " + " / ".join(f"{per_kind[k]:.1f}" for k in KINDS) + f" (coverage {inside.mean():.2f})"
        if base:
            line += "; ridge " + " / ".join(f"{base['ridge'][k]:.1f}" for k in KINDS)
            line += ", rf " + " / ".join(f"{base['rf'][k]:.1f}" for k in KINDS)
        if gen_kind:
            line += "; with generated rows " + " / ".join(f"{gen_kind[k]:.1f}" for k in KINDS)
        lines.append(line)
    soc_figures = [v for k, v in figures.items() if k.startswith(("pulsebat_soc_interpolation_mape",
                                                                   "pulsebat_soc_extrapolation_mape"))]
    gen_figures = [v for k, v in figures.items() if k.startswith(("pulsebat_soc_interpolation_generated_mape",
                                                                   "pulsebat_soc_extrapolation_generated_mape"))]
    if gen_figures:
        figures["pulsebat_unseen_soc_generated_mape_max"] = round(max(gen_figures), 2)
        print(f"\nwith generated rows: pulsebat_unseen_soc_generated_mape_max {max(gen_figures):.2f}")
    if not soc_figures:
        print(f"\n{time.perf_counter() - t0:.0f} s in all (no unseen-SOC split run)")
        return figures
    worst = max(soc_figures)
    print("\n" + "\n".join(lines))
    print(f"\npaper (generated data, unseen SOC): < {PAPER_MAPE:g} %; goal <= {GOAL:g} % on every kind; "
          f"{time.perf_counter() - t0:.0f} s in all")
    figures["pulsebat_unseen_soc_mape_max"] = round(worst, 2)
    print(f"pulsebat_unseen_soc_mape_max {worst:.2f}  ({'met' if worst <= GOAL else 'not met'}: goal <= {GOAL:g} %)")
    return figures


if __name__ == "__main__":
    main()
