"""SHAP explanations of the model ``make run`` tunes, and battlab's ``explain`` vs plain ``shap.TreeExplainer``.

Run ``python benchmarks/explain.py [--run runs/latest] [--rows 2000] [--compare] [--sample-rows 200] [--rf-rows 50]
[--full] [--accuracy]``.

Headline, printed last: ``explain_seconds_2000_rows`` = wall time of the explain step
(:func:`battlab.steps.explain`: featurized rows, preprocessing, SHAP values, the additivity check) on 2,000 rows
of **the model the pipeline tuned**: read from ``--run`` (``runs/latest/03_tune`` and ``02_featurize``, as
``make run`` leaves them), or, when that folder has no tuned model, tuned now with the pipeline's own
defaults (the 02/03 notebooks' steps and :data:`battlab.pipeline.STEPS` parameters: about 5 minutes).
The model's family and parameters are printed with it, and the battlab version and commit measured.

``--compare`` adds, on the embedded data's 132 Magpie features:

* battlab's default LightGBM (``MODELS["lgbm"].defaults``: 800 trees, depth 6) under ``explain`` and under plain
  ``shap.TreeExplainer`` on all ``--rows`` rows;
* the unbounded LightGBM battlab used before (1,500 trees of 48 leaves, no depth limit), timed on
  ``--sample-rows`` rows and extrapolated linearly (TreeSHAP is linear in rows; the names say
  ``_extrapolated``; ``--full`` times all rows);
* a default random forest under ``shap.TreeExplainer`` on ``--rf-rows`` rows, extrapolated the same way;
* ``--accuracy``: both LightGBMs' MAE on the grouped split, to show what the bounded depth costs.

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


def battlab_build() -> dict[str, str]:
    """The battlab version and git commit measured (``-dirty``: uncommitted changes in the tree)."""
    import subprocess
    from pathlib import Path

    from battlab import __version__

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "battlab"], cwd=root, capture_output=True,
                               text=True).stdout.strip()
        commit += "-dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    return {"battlab_version": __version__, "battlab_commit": commit}


def pipeline_model(run: str):
    """(TunedModel, FeatureSet, where from): the pipeline's step 03 model and step 02 features in ``run``, or
    both made now with the pipeline's defaults."""
    from pathlib import Path

    from battlab import steps
    from battlab.pipeline import STEPS

    run_dir = Path(run)
    if (run_dir / "03_tune" / "model_card.json").is_file() and (run_dir / "02_featurize").is_dir():
        return (steps.TunedModel.load(run_dir / "03_tune"), steps.open_features(run_dir / "02_featurize"),
                f"read from {run_dir}")
    params = {s.name: s.parameters for s in STEPS}
    fs = steps.featurize(steps.curate(dataset=params["01_curate"]["dataset"]))
    tuned = steps.tune(fs, n_trials=params["03_tune"]["n_trials"], timeout=params["03_tune"]["timeout"],
                       storage="sqlite:///:memory:", progress=False)
    return tuned, fs, "tuned now with the pipeline's defaults"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="runs/latest", help="pipeline run folder with 02_featurize and 03_tune")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--compare", action="store_true", help="also battlab vs shap on fixed LightGBM/forest models")
    parser.add_argument("--sample-rows", type=int, default=200, help="rows timed for the slow default models")
    parser.add_argument("--rf-rows", type=int, default=50)
    parser.add_argument("--full", action="store_true", help="time the unbounded LightGBM on all rows")
    parser.add_argument("--accuracy", action="store_true", help="also cross-validate both LightGBMs (~1 min)")
    args = parser.parse_args()

    for name, value in battlab_build().items():
        print(f"{name}: {value}")
    if args.compare:
        compare(args)

    from battlab import steps
    from battlab.explain import EXACT_TOLERANCE

    tuned, fs, source = pipeline_model(args.run)
    print(f"pipeline_model: {tuned.best_name} {tuned.best_params} ({source})")
    print(f"pipeline_model_features: {len(tuned.features)}")
    t0 = time.perf_counter()
    ex = steps.explain(tuned, fs, max_rows=args.rows)
    seconds = time.perf_counter() - t0
    if ex.exact and ex.additivity_error > EXACT_TOLERANCE:
        raise RuntimeError(f"additivity error {ex.additivity_error:.3g} ({ex.explainer})")
    print(f"pipeline_model_explainer: {ex.explainer}")
    print(f"pipeline_model_rows_explained: {len(ex.values)}")
    print(f"pipeline_model_additivity_error: {ex.additivity_error:.3g}")
    print(f"explain_seconds_{args.rows}_rows: {seconds:.2f}")
    return 0


def compare(args: argparse.Namespace) -> None:
    """battlab's explain vs shap.TreeExplainer on fixed models (the figures of earlier versions)."""
    import shap

    from battlab.datasets import load_dataset
    from battlab.explain import EXACT_TOLERANCE, explain
    from battlab.models import MODELS, make_model
    from battlab.split import make_splitter

    df, _ = load_dataset("exp_formation_enthalpy")
    X = composition_features_of(df)
    y = df["formation_enthalpy_per_atom"].to_numpy()
    rows = X.iloc[: args.rows]
    print(f"compare_rows: {len(rows)}")
    print(f"compare_features: {X.shape[1]}")

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


def composition_features_of(df):
    from battlab.featurize import composition_features

    return composition_features(df["formula"], preset="magpie")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # conventions: a benchmark that cannot measure exits non-zero
        print(f"benchmarks/explain.py: could not measure: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
