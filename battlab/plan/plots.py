"""Plots of planning campaigns (notebook 07): discovery curves and what a campaign's model relies on.

Example
-------
>>> import numpy as np
>>> from battlab.plan.screening import ScreeningResult
>>> res = ScreeningResult("rf", [0], [np.array([1, 0, 2])], n=3, n_top=1, af={}, experiments={}, reached={},
...                       ef={}, seconds=0.0, top=np.array([True, False, False]))
>>> fig = plot_discovery({"rf": res}, budget=3, dataset="toy")
>>> fig.axes[0].get_title()
'toy: 1 campaign per strategy'
"""

from __future__ import annotations

from typing import Any

from battlab.units import plural, quantity_label

__all__ = ["plot_discovery", "plot_model_importance"]


def plot_discovery(results: dict[str, Any], budget: int, dataset: str = "", labels: dict[str, str] | None = None,
                   top_share: float = 0.05):
    """Share of the top candidates found after each experiment, per strategy (mean and range over its campaigns),
    beside random search's expectation. ``results`` maps a name to a
    :class:`~battlab.plan.screening.ScreeningResult`; ``labels`` (optional) names each in the legend."""
    import matplotlib.pyplot as plt

    from battlab.plan.screening import discovery_curve

    fig, ax = plt.subplots(figsize=(6, 3.5))
    curve = None
    n_campaigns = set()
    for name, res in results.items():
        curve = discovery_curve(res.orders, res.top, budget)
        n_campaigns.add(len(res.orders))
        ax.plot(curve["experiments"], curve["mean"], label=(labels or {}).get(name, name))
        ax.fill_between(curve["experiments"], curve["low"], curve["high"], alpha=0.15)
    if curve is not None:
        ax.plot(curve["experiments"], curve["random"], "k--", label="random search (expected)")
    counts = " / ".join(str(n) for n in sorted(n_campaigns))
    per = (plural(next(iter(n_campaigns)), "campaign") if len(n_campaigns) == 1 else f"{counts} campaigns")
    ax.set(xlabel="experiments", ylabel=f"share of the top {top_share:.0%} found",
           title=(f"{dataset}: " if dataset else "") + f"{per} per strategy")
    ax.set_ylim(0, 1.02)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_model_importance(importances: Any, names: Any, n: int = 10, target: str = ""):
    """The ``n`` largest feature importances of a campaign's model (feature names as given)."""
    import matplotlib.pyplot as plt

    top = sorted(zip(importances, names, strict=True), reverse=True)[:n]
    fig, ax = plt.subplots(figsize=(6, 0.3 * max(len(top), 3) + 1))
    ax.barh([str(name) for _, name in top][::-1], [v for v, _ in top][::-1])
    ax.set(xlabel="importance (impurity decrease)",
           title=f"Top {plural(len(top), 'feature')} of the campaign's model"
                 + (f" for {quantity_label(target)}" if target else ""))
    fig.tight_layout()
    return fig
