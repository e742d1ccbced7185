"""Cycle life from the first 100 cycles on the Severson et al. 2019 cells, beside the published models.

    python benchmarks/cycle_life.py                      # ~8 min on 2 cores
    python benchmarks/cycle_life.py --quick              # the linear candidates only, ~3 min
    python benchmarks/cycle_life.py --n-cycles 50        # predictions from 50 (or 20) cycles
    python benchmarks/cycle_life.py --save models/cycle_life   # keep the model for `battlab cycling predict`

Protocol: only the 41 training cells are given to the fitting code (the curves of the test cells are not
even passed to it). On them, every candidate setting of ``fit_cycle_life`` (a feature set of
``battlab.cycling.features.FEATURE_SETS`` x a model family tuned by optuna on log10(cycle life), 20 trials for
one linear family, ``--trials`` for the zoo) is cross-validated as a whole procedure by
``compare_cycle_life_models``: 4 repeats of a random 5-fold split of the cells, the tuning and the CV+ conformal
intervals (90 %) redone inside each outer fold (nested), RMSE in cycles of the held-out cells. The candidate with
the lowest mean CV RMSE is refitted on the 41 cells. The classifier (life > 550 cycles from cycles 4-5) has its
regularisation chosen by stratified 5-fold CV on the training cells. Then, once, the primary (test1, 43 cells; the
paper's headline leaves out its outlier cell) and secondary (test2, 40 cells) test sets are scored.

Training-cell figures that made the choice (100 cycles, seed 0; mean RMSE over 4 repeats, its standard deviation,
coverage of the held-out cells by the 90 % intervals):

=====================================  ==============  ===========
candidate (feature set / model)        CV RMSE         coverage
=====================================  ==============  ===========
variance / elasticnet                  109.9 (1.7)     0.896
discharge / elasticnet                 84.1 (3.6)      0.939
discharge / ridge                      84.4 (2.4)      0.933
**full_discharge / elasticnet**        **69.0 (2.7)**  0.921
full_discharge / ridge                 69.6 (4.8)      0.921
full_discharge / zoo (60 trials)       69.7 (4.7)      0.915
all / ridge                            93.6 (4.6)      0.902
all / zoo (60 trials; the old default) 94.6 (6.3)      0.909
=====================================  ==============  ===========

``full_discharge`` is the part of the paper's full model that discharge curves hold: log variance and log |min|
of dQ100-10(V), capacity at cycle 2, slope and intercept of a line through the capacities of cycles 2-100 (the
full model adds charge time, temperature and resistance). How it was found, on the training cells only: a first
exploration (ridge and elastic net with scikit-learn's internal CV, 20 x 5-fold) of the paper's feature sets and
of variations (other cycle pairs 100-20, 100-50, 90-10, 80-10; fade lines over 10-100, 50-100, 91-100; adding
skewness, kurtosis, mean, value at 2 V, max minus cycle 2; whole-curve PLSR; Huber, linear SVR, GP, extra trees)
put this set first (69-70 vs 84-87 for the discharge model's features); none of the variations beat it by more
than its noise. Only the table above decided. The zoo leaves out knn (its search space reaches 30 neighbours,
more than the 25-26 cells of an inner fold).

Then the one look at the test cells (seed 0): primary 182.3 (215.4 with the outlier), secondary 151.7, mean 167.0;
intervals cover 91.6 % of test cells. Goal not reached on the primary set (two cells of 1852 and 2237 cycles are
missed by 700-800 cycles); nothing was changed after it.

Published anchors (RMSE in cycles; primary test without the outlier / secondary test):

=========================================================  ==========  =========
model                                                      primary     secondary
=========================================================  ==========  =========
Severson 2019, variance model (1 feature)                  138         196
Severson 2019, discharge model (6 discharge features)      86          173
Severson 2019, full model (+ charge time, T, IR)           100         214
Attia 2021, PLSR on whole dQ(V) curves                     100         176
Attia 2021, PCR on whole dQ(V) curves                      97          193
=========================================================  ==========  =========

Train RMSE of the paper: 103 / 76 / 51 (variance / discharge / full). Classification from cycles 4-5:
88.8 % (variance) and 95.1 % (full) accuracy on the test cells. Goal of battlab's issue 14: primary <= 86 and
secondary <= 173 from the discharge curves alone, with 90 % intervals covering at least 85 % of test cells.

Prints ``name: value`` lines, ``severson_mean_test_rmse`` (mean of the primary-without-outlier and secondary
test RMSE) last; exits 1 if it could not measure.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from matbench import _ensure_data  # BATTLAB_DATA, filled from ../shared/datasets when unset


def candidates(trials: int, quick: bool = False) -> dict[str, dict]:
    """The settings of ``fit_cycle_life`` compared on the training cells (see the module docstring)."""
    from battlab.cycling.models import CYCLE_LIFE_MODELS

    # knn is left out of the zoo here: its search space reaches 30 neighbours, more than the 25-26 cells of a
    # nested fold's inner training folds
    zoo = tuple(m for m in CYCLE_LIFE_MODELS if m != "knn")
    linear = {f"{fs}/{m}": {"feature_set": fs, "components": 0, "models": (m,), "n_trials": 20}
              for fs, m in (("variance", "elasticnet"), ("discharge", "elasticnet"), ("discharge", "ridge"),
                            ("full_discharge", "elasticnet"), ("full_discharge", "ridge"), ("all", "ridge"))}
    if quick:
        return linear
    return {**linear, **{f"{fs}/zoo": {"feature_set": fs, "components": 0, "models": zoo, "n_trials": trials}
                         for fs in ("all", "full_discharge")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-cycles", type=int, default=100, help="predict from the first N cycles (100, 50, 20)")
    parser.add_argument("--trials", type=int, default=60, help="optuna trials of the model-zoo candidates")
    parser.add_argument("--repeats", type=int, default=4, help="repeats of the 5-fold CV on the training cells")
    parser.add_argument("--quick", action="store_true", help="compare the linear candidates only (~3 min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="folder to write the fitted model into (for `battlab cycling predict`)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    _ensure_data()
    from battlab.cycling.curves import load_severson
    from battlab.cycling.models import compare_cycle_life_models, evaluate, fit_cycle_life, fit_life_classifier
    from battlab.explain import explain

    t0 = time.perf_counter()
    curves = load_severson(progress=False)
    train = curves.select(curves.cells["split"].to_numpy() == "train")  # all the fitting code ever sees
    options = {name: {"n_cycles": args.n_cycles, **kw} for name, kw in candidates(args.trials, args.quick).items()}
    found = compare_cycle_life_models(train, options, n_splits=5, n_repeats=args.repeats, seed=args.seed,
                                      progress=True)
    chosen = found.best  # chosen on the training cells' nested cross-validation only
    model = fit_cycle_life(train, **options[chosen], seed=args.seed, progress=False)
    fit_seconds = time.perf_counter() - t0
    clf = fit_life_classifier(train, n_cycles=5, threshold=550, seed=args.seed)

    scores = evaluate(model, curves).metrics  # the first and only look at the test cells
    acc = clf.accuracy(curves)
    test = curves.select(curves.cells["split"].to_numpy() != "train")
    X_test = model.feature_table(test)[model.features]
    ex = explain(model.model, X_test, info=model.info[["feature", "family", "property"]], target="log10 cycle life")
    top = ex.importance("feature").head(5)

    n = args.n_cycles
    print(f"severson_n_cycles: {n}")
    for name, row in found.table().set_index("candidate").iterrows():
        key = name.replace("/", "_")
        print(f"severson_train_cv_rmse_{key}: {row['rmse_mean']:.1f} (sd {row['rmse_std']:.1f} over "
              f"{args.repeats} repeats; interval coverage {row['coverage']:.3f})")
    best_cv = found.results[chosen].metrics
    print(f"severson_chosen: {chosen}")
    print(f"severson_model: {model.card['model']['name']}")
    print(f"severson_features: {', '.join(model.features)}")
    print(f"severson_train_cv_rmse: {best_cv['rmse_mean']:.1f}")
    print(f"severson_train_cv_interval_coverage: {best_cv['coverage']:.3f}")
    print(f"severson_fit_seconds: {fit_seconds:.1f}")
    print(f"severson_train_rmse: {scores['train']['rmse']:.1f}")
    print(f"severson_primary_test_rmse_all: {scores['test1']['rmse']:.1f}")
    print(f"severson_primary_test_mape_percent: {scores['test1_without_outlier']['mape_percent']:.1f}")
    print(f"severson_secondary_test_mape_percent: {scores['test2']['mape_percent']:.1f}")
    print(f"severson_interval_coverage_target: {model.coverage:.2f}")
    print(f"severson_interval_coverage_train_heldout: {model.card['intervals']['empirical']:.3f}")
    print(f"severson_interval_coverage_primary_test: {scores['test1']['coverage']:.3f}")
    print(f"severson_interval_coverage_secondary_test: {scores['test2']['coverage']:.3f}")
    print(f"severson_interval_coverage_test: {scores['all_test']['coverage']:.3f}")
    print(f"severson_interval_mean_width_test: {scores['all_test']['mean_width']:.0f}")
    print(f"severson_classification_cv_accuracy_train: {clf.cv_accuracy:.3f}")
    print(f"severson_classification_accuracy_primary_test: {acc['test1']:.3f}")
    print(f"severson_classification_accuracy_secondary_test: {acc['test2']:.3f}")
    print(f"severson_classification_accuracy_test: {acc['all_test']:.3f}")
    print("severson_shap_top_features: " + ", ".join(f"{k} {v:.3f}" for k, v in top.items()))
    print(f"severson_primary_test_rmse: {scores['test1_without_outlier']['rmse']:.1f}")
    print(f"severson_secondary_test_rmse: {scores['test2']['rmse']:.1f}")
    mean = (scores["test1_without_outlier"]["rmse"] + scores["test2"]["rmse"]) / 2
    if args.save:
        model.save(args.save)
        print(f"severson_model_saved: {args.save}")
    print(f"severson_mean_test_rmse: {mean:.1f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # could not measure
        print(f"cycle_life benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
