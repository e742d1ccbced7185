"""Plots of SOH estimates and of the sorting, shared by notebook 08 and the ``soh`` app.

Example
-------
>>> import pandas as pd
>>> p = pd.DataFrame({"SOH": [0.9, 0.7], "SOH_pred": [0.88, 0.72], "SOH_low": [0.84, 0.66],
...                   "SOH_high": [0.92, 0.78], "cell_kind": ["a", "b"]})
>>> ax = plot_soh_parity(p)
>>> ax.get_xlabel()
'measured SOH (Q/Qn)'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from battlab.health.sort import DECISIONS

__all__ = ["plot_soh_parity", "plot_sorting", "DECISION_COLOURS"]

#: Colour of each decision in the sorting view.
DECISION_COLOURS = {"reuse": "#2a7a2a", "repurpose": "#1f77b4", "recycle": "#b00020", "retest": "#e69f00"}


def plot_soh_parity(predictions: pd.DataFrame, *, truth: str = "SOH", kind: str | None = "cell_kind",
                    reuse: float | None = None, repurpose: float | None = None, ax: Any = None) -> Any:
    """Predicted against measured SOH with each row's interval (error bars), coloured by ``kind``; the
    thresholds as dotted lines when given."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 5))
    groups = predictions.groupby(kind, sort=True) if kind and kind in predictions else [("", predictions)]
    for name, part in groups:
        err = np.vstack([part["SOH_pred"] - part["SOH_low"], part["SOH_high"] - part["SOH_pred"]]).clip(min=0)
        ax.errorbar(part[truth], part["SOH_pred"], yerr=err, fmt="o", ms=3, alpha=0.6, elinewidth=0.6,
                    label=str(name) or None)
    lo = float(np.nanmin(predictions[[truth, "SOH_low"]].to_numpy())) - 0.02
    hi = float(np.nanmax(predictions[[truth, "SOH_high"]].to_numpy())) + 0.02
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
    for value in (reuse, repurpose):
        if value is not None:
            ax.axhline(value, color="grey", ls=":", lw=1)
            ax.axvline(value, color="grey", ls=":", lw=1)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="measured SOH (Q/Qn)", ylabel="predicted SOH (interval)")
    if kind and kind in predictions:
        ax.legend(fontsize=8, loc="upper left")
    ax.figure.tight_layout()
    return ax


def plot_sorting(sorting: pd.DataFrame, reuse: float, repurpose: float, *, max_cells: int = 80,
                 ax: Any = None) -> Any:
    """The sorting view: each cell's SOH estimate and interval (sorted by estimate), coloured by its decision,
    with the reuse and repurpose thresholds; the counts per decision in the legend."""
    import matplotlib.pyplot as plt

    ordered = sorting.sort_values("SOH_pred", kind="stable").reset_index(drop=True)
    keep = np.unique(np.linspace(0, len(ordered) - 1, min(max_cells, len(ordered))).round().astype(int))
    shown = ordered.iloc[keep].reset_index(drop=True) if len(ordered) else ordered
    if ax is None:
        _, ax = plt.subplots(figsize=(max(5.0, min(12.0, 0.14 * len(shown) + 3)), 4))
    x = np.arange(len(shown))
    for decision in DECISIONS:
        mask = (shown["decision"] == decision).to_numpy()
        n = int((sorting["decision"] == decision).sum())
        if not mask.any():
            ax.plot([], [], "o", color=DECISION_COLOURS[decision], label=f"{decision}: {n}")
            continue
        part = shown.loc[mask]
        err = np.vstack([part["SOH_pred"] - part["SOH_low"], part["SOH_high"] - part["SOH_pred"]]).clip(min=0)
        err = np.nan_to_num(err)
        ax.errorbar(x[mask], part["SOH_pred"], yerr=err, fmt="o", ms=4, color=DECISION_COLOURS[decision],
                    elinewidth=1, label=f"{decision}: {n}")
    ax.axhline(reuse, color=DECISION_COLOURS["reuse"], ls="--", lw=1)
    ax.axhline(repurpose, color=DECISION_COLOURS["recycle"], ls="--", lw=1)
    ax.text(0, reuse, f" reuse >= {reuse:g}", va="bottom", fontsize=8)
    ax.text(0, repurpose, f" repurpose >= {repurpose:g}", va="bottom", fontsize=8)
    ax.set(xlabel="cells, by estimated SOH" + (f" ({len(shown)} of {len(sorting)} shown)" if len(sorting) > max_cells
                                                else ""), ylabel="SOH (interval)", xticks=[])
    ax.legend(fontsize=8, loc="lower right")
    ax.figure.tight_layout()
    return ax
