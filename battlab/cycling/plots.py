"""Plots a battery person expects from cycle-life work (matplotlib; used by notebook 06).

Example
-------
>>> from battlab.cycling.curves import load_severson_subset
>>> fig = plot_capacity_fade(load_severson_subset())
>>> len(fig.axes)
2
"""

from __future__ import annotations

from typing import Any

import numpy as np

from battlab.cycling.curves import DischargeCurves

__all__ = ["plot_capacity_fade", "plot_delta_q", "plot_predicted_vs_observed"]


def _life_colours(lives: np.ndarray) -> tuple[Any, Any]:
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    norm = mpl.colors.LogNorm(vmin=np.nanmin(lives), vmax=np.nanmax(lives))
    cmap = plt.get_cmap("viridis")
    return norm, cmap


def plot_capacity_fade(curves: DischargeCurves, ignore_glitches: float = 1.5):
    """Discharge capacity against cycle for every cell, coloured by cycle life (log scale).

    Capacities above ``ignore_glitches`` times a cell's median are logging glitches and not drawn.
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    lives = curves.y
    norm, cmap = _life_colours(lives)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for cap, life in zip(curves.capacity, lives, strict=True):
        cap = np.where(cap > ignore_glitches * np.nanmedian(cap), np.nan, cap)
        ax.plot(curves.capacity_cycles, cap, color=cmap(norm(life)), lw=1)
    ax.set(xlabel="cycle", ylabel="discharge capacity (Ah)", title=f"Capacity fade of {len(curves)} cells")
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="cycle life")
    fig.tight_layout()
    return fig


def plot_delta_q(curves: DischargeCurves, cycle_a: int = 100, cycle_b: int = 10):
    """dQ(V) = Q_a(V) - Q_b(V) of every cell against voltage, coloured by cycle life."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    lives = curves.y
    norm, cmap = _life_colours(lives)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for cell, life in zip(curves, lives, strict=True):
        ax.plot(curves.voltages, cell.curve(cycle_a) - cell.curve(cycle_b), color=cmap(norm(life)), lw=1)
    ax.set(xlabel="voltage (V)", ylabel=f"Q{cycle_a} - Q{cycle_b} (Ah)",
           title=f"dQ(V) between cycles {cycle_a} and {cycle_b}")
    ax.invert_xaxis()
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="cycle life")
    fig.tight_layout()
    return fig


def plot_predicted_vs_observed(predictions: Any, title: str = "Predicted vs observed cycle life"):
    """Predicted against observed cycle life per split, with the conformal intervals as error bars."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.2))
    for split, part in predictions.groupby("split", sort=True):
        yerr = None
        if "interval_low" in part:
            yerr = np.vstack([part["predicted_cycle_life"] - part["interval_low"],
                              part["interval_high"] - part["predicted_cycle_life"]])
        ax.errorbar(part["cycle_life"], part["predicted_cycle_life"], yerr=yerr, fmt="o", ms=4, alpha=0.7,
                    elinewidth=0.6, label=str(split))
    lo = float(np.nanmin([predictions["cycle_life"].min(), predictions["predicted_cycle_life"].min()])) * 0.9
    hi = float(np.nanmax([predictions["cycle_life"].max(), predictions["predicted_cycle_life"].max()])) * 1.1
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(xlabel="observed cycle life", ylabel="predicted cycle life", xlim=(lo, hi), ylim=(lo, hi), title=title)
    ax.legend()
    fig.tight_layout()
    return fig
