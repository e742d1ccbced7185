"""Plots the notebooks and apps share (matplotlib; each returns its Figure).

Example
-------
>>> from battlab.curate import curate_dataset
>>> result, card = curate_dataset("exp_formation_enthalpy")
>>> fig = plot_curation(result)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from battlab.curate import CuratedSet
from battlab.units import error_unit, plural, quantity_label


def plot_curation(result: CuratedSet, bins: int = 40):
    """Target distribution before and after curation, and where the rows went."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    target, log = result.report["target"], result.report["log_target"]
    if target and result.target_input is not None:
        before = result.target_input.to_numpy(dtype=float)
        after = result.curated[target].to_numpy(dtype=float)
        if log:
            before, after = np.log10(before[before > 0]), np.log10(after[after > 0])
        before, after = before[np.isfinite(before)], after[np.isfinite(after)]
        edges = np.histogram_bin_edges(np.concatenate([before, after]), bins=bins)
        ax1.hist(before, bins=edges, alpha=0.5, label=f"input ({len(before)} parsed)")
        ax1.hist(after, bins=edges, alpha=0.7, label=f"curated ({len(after)})", histtype="step", lw=2)
        unit = result.report["units"].get(target, "")  # a header's own unit wins (no unit twice)
        ax1.set_xlabel(quantity_label(("log10 " if log else "") + target, unit))
        ax1.set_ylabel("rows")
        ax1.legend()
    else:
        ax1.text(0.5, 0.5, "no target column", ha="center", va="center", transform=ax1.transAxes)
    r = result.report
    counts = {"kept": r["n_kept"], "merged": r["n_merged"]}
    counts.update({f"quarantined: {k}": v for k, v in r["quarantine_reasons"].items()})
    ax2.barh(list(counts), list(counts.values()), color=["tab:green", "tab:blue"] + ["tab:red"] * (len(counts) - 2))
    ax2.invert_yaxis()
    ax2.set_xlabel("rows")
    ax2.set_title(plural(r["n_input"], "input row"))
    fig.tight_layout()
    return fig


def plot_feature_distributions(table, features, target: str | None = None, n: int = 12):
    """Histograms of the ``n`` features most correlated (Spearman) with the target (or most variable)."""
    import pandas as pd

    X = table[list(features)]
    if target and target in table:
        score = X.corrwith(table[target], method="spearman").abs()
    else:
        score = (X.std() / X.abs().mean()).abs()
    top = score.dropna().sort_values(ascending=False).index[:n]
    cols = 4
    rows = max(1, int(np.ceil(len(top) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, top, strict=False):
        ax.hist(pd.to_numeric(X[name], errors="coerce").dropna(), bins=30, color="tab:blue", alpha=0.8)
        ax.set_title(name if len(name) < 38 else name[:35] + "...", fontsize=8)
        if target and target in table:
            ax.text(0.98, 0.95, f"ρ={score[name]:.2f}", ha="right", va="top", transform=ax.transAxes, fontsize=8)
    for ax in list(axes.flat)[len(top):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_feature_correlations(table, features, max_features: int = 60):
    """Correlation heatmap of features, ordered by hierarchical clustering so blocks show redundancy."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    X = table[list(features)[:max_features]]
    corr = X.corr().fillna(0).to_numpy()
    dist = np.clip(1 - np.abs(corr), 0, None)
    np.fill_diagonal(dist, 0)
    order = leaves_list(linkage(squareform(dist, checks=False), "average")) if len(corr) > 2 else np.arange(len(corr))
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(corr[np.ix_(order, order)], cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [X.columns[i] for i in order]
    if len(labels) <= 40:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=ax, label="Pearson r")
    ax.set_title(f"{len(labels)} features, clustered")
    fig.tight_layout()
    return fig


def plot_tuning_history(study, target: str = "", unit: str = ""):
    """Every trial's CV MAE (coloured by model) and the best so far; ``target``/``unit`` label the MAE's unit."""
    from optuna.trial import TrialState

    trials = [t for t in study.trials if t.state == TrialState.COMPLETE]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    names = sorted({t.params["model"] for t in trials})
    for i, name in enumerate(names):
        pts = [(t.number, t.value) for t in trials if t.params["model"] == name]
        ax.scatter(*zip(*pts, strict=True), s=18, label=name, color=plt.cm.tab10(i % 10))
    order = sorted(trials, key=lambda t: t.number)
    best = np.minimum.accumulate([t.value for t in order]) if order else []
    ax.step([t.number for t in order], best, where="post", color="k", lw=1.5, label="best so far")
    pruned = sum(t.state == TrialState.PRUNED for t in study.trials)
    ax.set_xlabel(f"trial ({plural(pruned, 'pruned trial')}, not shown)")
    mae_unit = error_unit(target, unit).strip()
    ax.set_ylabel("CV MAE" + (f" [{mae_unit.strip('()')}]" if mae_unit else ""))
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def param_importances(study, model: str) -> dict[str, float]:
    """fANOVA importances of one model's parameters, from that model's completed trials only
    (the search space is conditional on the model, so the study as a whole has no common parameters)."""
    import optuna
    from optuna.trial import TrialState

    trials = [t for t in study.trials if t.state == TrialState.COMPLETE and t.params.get("model") == model]
    names = [k for k in (trials[0].params if trials else {}) if k != "model"]
    if len(trials) < 3 or not names:
        return {}
    sub = optuna.create_study(direction="minimize")
    for t in trials:
        sub.add_trial(optuna.trial.create_trial(params={k: t.params[k] for k in names},
                                                distributions={k: t.distributions[k] for k in names},
                                                value=t.value))
    return optuna.importance.get_param_importances(sub, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))


def plot_param_importances(study, model: str):
    """Bar chart of :func:`param_importances` (empty with a note when there are too few trials)."""
    imp = param_importances(study, model)
    fig, ax = plt.subplots(figsize=(6, 0.4 * max(len(imp), 3) + 1))
    if imp:
        ax.barh(list(imp)[::-1], list(imp.values())[::-1], color="tab:purple")
        ax.set_xlabel("importance (fANOVA)")
    else:
        ax.text(0.5, 0.5, f"too few completed {model} trials for importances", ha="center", va="center")
        ax.axis("off")
    ax.set_title(f"{model}: which parameters mattered")
    fig.tight_layout()
    return fig


def plot_parity(predictions, target: str, split: str, metrics: dict, unit: str = ""):
    """Out-of-fold predictions against measurements, with the conformal intervals as bars.

    The axes carry the target's name and ``unit`` (or the unit its name carries); the title the cross-validated
    MAE in that unit, R² and the split the folds were made by.
    """
    fig, ax = plt.subplots(figsize=(5.2, 5))
    y, p = predictions["y"].to_numpy(), predictions["oof_pred"].to_numpy()
    half = (predictions["interval_high"] - predictions["interval_low"]).to_numpy() / 2
    ax.errorbar(y, p, yerr=half, fmt="o", ms=2.5, alpha=0.35, elinewidth=0.5, color="tab:blue")
    lo, hi = np.nanmin([y.min(), p.min()]), np.nanmax([y.max(), p.max()])
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    label = quantity_label(target, unit)
    ax.set_xlabel(f"measured: {label}")
    ax.set_ylabel(f"predicted (out of fold): {label}")
    ax.set_title(f"CV MAE {metrics['mae_mean']:.3g} ± {metrics['mae_std']:.2g}{error_unit(target, unit)}, "
                 f"R² {metrics['r2_mean']:.3f}\nsplit: {split}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_model_comparison(comparison, dummy_mae: float | None = None, target: str = "", unit: str = ""):
    """Best CV MAE per model family, with the dummy baseline (``target``/``unit``: the MAE's unit)."""
    done = comparison.dropna(subset=["best_cv_mae"])
    fig, ax = plt.subplots(figsize=(6, 0.45 * max(len(done), 2) + 1))
    ax.barh(done["model"][::-1], done["best_cv_mae"][::-1], xerr=done["fold_mae_std"][::-1], color="tab:green")
    if dummy_mae is not None:
        ax.axvline(dummy_mae, color="tab:red", ls="--", label=f"dummy {dummy_mae:.3g}")
        ax.legend()
    mae_unit = error_unit(target, unit).strip().strip("()")
    ax.set_xlabel("best CV MAE" + (f" [{mae_unit}]" if mae_unit else "")
                  + (f", split: {done['split'].iloc[0]}" if len(done) else ""))
    fig.tight_layout()
    return fig
