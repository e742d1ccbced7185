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

from battlab.curate import CurationResult
from battlab.units import split_header


def plot_curation(result: CurationResult, bins: int = 40):
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
        unit = result.report["units"].get(target, "")
        shown = f" [{unit}]" if unit and split_header(target)[1] is None else ""  # no unit twice
        ax1.set_xlabel(("log10 " if log else "") + target + shown)
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
    ax2.set_title(f"{r['n_input']} input rows")
    fig.tight_layout()
    return fig
