"""SHAP explanations: battlab's ``explain`` vs plain ``shap.TreeExplainer``, on real Magpie features.

Run ``python benchmarks/explain.py [--rows 2000] [--sample-rows 200] [--rf-rows 50] [--full] [--accuracy]``.

Data: the 2,135 formulas of ``load_dataset("exp_formation_enthalpy")`` (offline, shipped with pymatgen),
132 Magpie features from ``composition_features``, target ``formation_enthalpy_per_atom``; every model is
fitted on all rows and explains the first ``--rows`` rows.

What is measured, in one process:

* battlab's default model, LightGBM with ``MODELS["lgbm"].defaults`` (800 trees, depth 6, 48 leaves).
  ``explain`` uses LightGBM's native exact TreeSHAP (``pred_contrib``, on every core); plain
  ``shap.TreeExplainer`` runs the same algorithm on the same model. Both on all ``--rows`` rows, measured.
* The unbounded LightGBM battlab used before (1,500 trees of 48 leaves, no depth limit: leaves about 10
  deep, up to 30). TreeSHAP costs about rows x trees x leaves x depth^2, i.e. a minute or more for 2,000
  rows here, so it is timed on ``--sample-rows`` rows and extrapolated linearly to ``--rows`` (TreeSHAP is
  exactly linear in rows; the names say ``_extrapolated``); ``--full`` times all rows instead.
* A default random forest (``MODELS["rf"]``, 300 fully grown trees) under ``shap.TreeExplainer`` on
  ``--rf-rows`` rows, extrapolated the same way (the issue's "about 260 s").
* ``--accuracy``: both LightGBMs' MAE on battlab's default split (grouped 5-fold by chemical system), to
  show what the bounded depth costs.

Headline, printed last: ``explain_seconds_2000_rows`` = wall time of ``battlab.explain.explain`` (preprocessing,
TreeSHAP and the additivity check) on 2,000 rows x 132 features with the default LightGBM.
Exits 1 (message on stderr) if a measurement fails or an exact explanation misses additivity (> 1e-6).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", category=PendingDeprecationWarning)  # import shap: from matplotlib

UNBOUNDED = {"n_estimators": 1500, "learning_rate": 0.03, "max_depth": -1, "num_leaves": 48}  # battlab <= 0.1


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--sample-rows", type=int, default=200, help="rows timed for the slow default models")
    parser.add_argument("--rf-rows", type=int, default=50)
    parser.add_argument("--full", action="store_true", help="time the default LightGBM on all rows")
    parser.add_argument("--accuracy", action="store_true", help="also cross-validate both LightGBMs (~1 min)")
    args = parser.parse_args()

    import shap

    from battlab.datasets import load_dataset
    from battlab.explain import EXACT_TOLERANCE, explain
    from battlab.models import MODELS, make_model
    from battlab.split import make_splitter

    df, _ = load_dataset("exp_formation_enthalpy")
    X = composition_features_of(df)
    y = df["formation_enthalpy_per_atom"].to_numpy()
    rows = X.iloc[: args.rows]
    print(f"rows: {len(rows)}")
    print(f"features: {X.shape[1]}")

    def bench(label: str, params: dict | None, name: str, n: int, battlab: bool = True) -> None:
        fit_s, model = timed(lambda: make_model(name, params, seed=0).fit(X.to_numpy(), y))
        print(f"{label}_fit_seconds: {fit_s:.2f}")
        sub = rows.iloc[:n]
        scale, suffix = len(rows) / n, ("" if n == len(rows) else "_extrapolated")
        if battlab:
            s, ex = timed(lambda: explain(model, sub))
            if ex.additivity_error > EXACT_TOLERANCE:
                raise RuntimeError(f"{label}: additivity error {ex.additivity_error:.3g} ({ex.explainer})")
            print(f"{label}_additivity_error: {ex.additivity_error:.3g}")
            bench.last = s * scale
            if label != "lgbm_defaults":
                print(f"{label}_explain_seconds_{len(rows)}_rows{suffix}: {s * scale:.2f}")
        est, Xt = model.steps[-1][1], model[:-1].transform(sub.to_numpy())
        s, _ = timed(lambda: shap.TreeExplainer(est).shap_values(Xt, check_additivity=False))
        print(f"shap_treeexplainer_{label}_seconds_{len(rows)}_rows{suffix}: {s * scale:.2f}")

    n_slow = len(rows) if args.full else min(args.sample_rows, len(rows))
    bench("lgbm_unbounded", {**MODELS["lgbm"].defaults, **UNBOUNDED}, "lgbm", n_slow)
    bench("rf300", dict(MODELS["rf"].defaults), "rf", min(args.rf_rows, len(rows)), battlab=False)
    if args.accuracy:
        folds = list(make_splitter("chemical_system").split(df))
        for label, params in (("lgbm_unbounded", {**MODELS["lgbm"].defaults, **UNBOUNDED}),
                              ("lgbm_defaults", dict(MODELS["lgbm"].defaults))):
            mae = [np.mean(np.abs(make_model("lgbm", params, 0).fit(X.to_numpy()[a], y[a]).predict(X.to_numpy()[b])
                                  - y[b])) for a, b in folds]
            print(f"{label}_cv_mae_chemical_system: {np.mean(mae):.4f}")
    bench("lgbm_defaults", dict(MODELS["lgbm"].defaults), "lgbm", len(rows))
    print(f"explain_seconds_{len(rows)}_rows: {bench.last:.2f}")
    return 0


def composition_features_of(df):
    from battlab.featurize import composition_features

    return composition_features(df["formula"], preset="magpie")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # conventions: a benchmark that cannot measure exits non-zero
        print(f"benchmarks/explain.py: could not measure: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
