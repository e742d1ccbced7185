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
from battlab.units import plural

__all__ = ["plot_capacity_fade", "plot_cell_fade", "plot_labels", "plot_delta_q", "plot_predicted_vs_observed",
           "plot_trajectories"]


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
    ax.set(xlabel="cycle", ylabel="discharge capacity [Ah]", title=f"Capacity fade of {plural(len(curves), 'cell')}")
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="cycle life [cycles]")
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
    ax.set(xlabel="voltage [V]", ylabel=f"Q{cycle_a} - Q{cycle_b} [Ah]",
           title=f"dQ(V) between cycles {cycle_a} and {cycle_b}")
    ax.invert_xaxis()
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="cycle life [cycles]")
    fig.tight_layout()
    return fig


def plot_predicted_vs_observed(predictions: Any, title: str = "Predicted vs observed cycle life"):
    """Predicted against observed cycle life per split, with the conformal intervals as error bars; each split's
    legend entry gives its MAE in cycles and its number of cells."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.2))
    for split, part in predictions.groupby("split", sort=True):
        errors = (part["predicted_cycle_life"] - part["cycle_life"]).abs()
        yerr = None
        if "interval_low" in part:
            yerr = np.vstack([part["predicted_cycle_life"] - part["interval_low"],
                              part["interval_high"] - part["predicted_cycle_life"]])
        ax.errorbar(part["cycle_life"], part["predicted_cycle_life"], yerr=yerr, fmt="o", ms=4, alpha=0.7,
                    elinewidth=0.6, label=f"{split}: MAE {errors.mean():.0f} cycles ({plural(len(part), 'cell')})")
    lo = float(np.nanmin([predictions["cycle_life"].min(), predictions["predicted_cycle_life"].min()])) * 0.9
    hi = float(np.nanmax([predictions["cycle_life"].max(), predictions["predicted_cycle_life"].max()])) * 1.1
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(xlabel="observed cycle life [cycles]", ylabel="predicted cycle life [cycles]", xlim=(lo, hi),
           ylim=(lo, hi), title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_trajectories(observed_table: Any, predicted_table: Any, threshold_Ah: float | None = 0.88,
                      cells: Any = None, title: str = "Observed and predicted capacity fade", ax: Any = None):
    """Observed capacity against cycle beside the predicted trajectory and its band, per cell.

    ``observed_table`` is a capacity table (``cell``, ``cycle``, ``discharge_capacity_Ah``); ``predicted_table``
    is what :meth:`battlab.cycling.trajectory.TrajectoryModel.predict` returns (``cell``, ``cycle``,
    ``predicted_capacity_Ah``, ``low``, ``high``). Drawn: per cell the observed curve (solid) and the predicted
    one (dashed) with its band (shaded), the threshold (dotted, unless ``threshold_Ah`` is None), and the
    first-N-cycles window the prediction saw (shaded up to a vertical line at N). ``cells`` restricts the
    drawing to some cells (default: every cell of ``predicted_table``).

    >>> import pandas as pd
    >>> obs = pd.DataFrame({"cell": "a", "cycle": [1, 2, 3, 4], "discharge_capacity_Ah": [1.0, 0.98, 0.95, 0.9]})
    >>> pred = pd.DataFrame({"cell": "a", "cycle": [3, 4], "predicted_capacity_Ah": [0.96, 0.93],
    ...                      "low": [0.94, 0.9], "high": [0.97, 0.95]})
    >>> len(plot_trajectories(obs, pred).axes[0].lines)  # observed, predicted, threshold, window end
    4
    """
    import matplotlib.pyplot as plt

    from battlab.errors import BattlabError

    for name, table, cols in (("observed_table", observed_table, ("cell", "cycle", "discharge_capacity_Ah")),
                              ("predicted_table", predicted_table,
                               ("cell", "cycle", "predicted_capacity_Ah", "low", "high"))):
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise BattlabError(f"plot_trajectories: {name} has no column(s) {missing}")
    chosen = list(dict.fromkeys(predicted_table["cell"].astype(str))) if cells is None else [str(c) for c in cells]
    unknown = [c for c in chosen if c not in set(predicted_table["cell"].astype(str))]
    if unknown:
        raise BattlabError(f"plot_trajectories: cell(s) {unknown} are not in predicted_table")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    colours = plt.get_cmap("tab10")
    window_end = None
    for k, cell in enumerate(chosen):
        colour = colours(k % 10)
        obs = observed_table[observed_table["cell"].astype(str) == cell].sort_values("cycle")
        pred = predicted_table[predicted_table["cell"].astype(str) == cell].sort_values("cycle")
        ax.plot(obs["cycle"], obs["discharge_capacity_Ah"], color=colour, lw=1.0, label=f"{cell} observed")
        ax.plot(pred["cycle"], pred["predicted_capacity_Ah"], color=colour, lw=1.2, ls="--",
                label=f"{cell} predicted")
        ax.fill_between(pred["cycle"], pred["low"], pred["high"], color=colour, alpha=0.18, lw=0)
        if len(pred):
            end = int(pred["cycle"].min()) - 1
            window_end = end if window_end is None else min(window_end, end)
    if threshold_Ah is not None:
        ax.axhline(threshold_Ah, color="k", ls=":", lw=1.0, label=f"threshold {threshold_Ah:g} Ah")
    if window_end is not None:
        ax.axvspan(0, window_end, color="0.85", alpha=0.5, lw=0)
        ax.axvline(window_end, color="0.4", lw=0.8, label=f"first {window_end} cycles seen")
    ax.set(xlabel="cycle", ylabel="discharge capacity [Ah]", title=title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_cell_fade(observed: Any, label: str, *, curve: Any = None, life: Any = None, prediction: Any = None,
                   threshold_Ah: float | None = None, threshold_note: str = "", coverage: float | None = None,
                   ax: Any = None):
    """One cell's observed capacity with what is predicted of its future (the ``cycle_life`` app's fade plot).

    With ``curve`` (a :meth:`TrajectoryModel.predict` table of this cell): the predicted fade curve (dashed) and
    its band, and the life read off it (``life``: a row of :func:`battlab.cycling.forecast.forecast_cells`'s
    ``life``) marked on the threshold. Without it, ``prediction`` (``predicted_cycle_life``, ``interval_low``,
    ``interval_high``) is drawn as a point and an interval **on the threshold line** (the model predicts one number,
    not a curve); the title says which. ``ax``: draw over an existing plot (e.g. the training cells' fade).

    >>> import pandas as pd
    >>> obs = pd.DataFrame({"cycle": [1, 2, 3], "discharge_capacity_Ah": [1.1, 1.09, 1.08]})
    >>> fig = plot_cell_fade(obs, "a", prediction={"predicted_cycle_life": 500, "interval_low": 400,
    ...                                             "interval_high": 650}, threshold_Ah=0.88)
    >>> "on the 0.88 Ah threshold line" in fig.axes[0].get_title()
    True
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.2))
    else:
        fig = ax.figure
    obs = observed.sort_values("cycle")
    cap = obs["discharge_capacity_Ah"].to_numpy(dtype=float)
    ax.plot(obs["cycle"], cap, color="#d62728", lw=2.0, marker="o" if len(cap) < 20 else None,
            label=f"{label} observed")
    if threshold_Ah is not None:
        ax.axhline(threshold_Ah, color="k", ls=":", lw=1.0,
                   label=f"end of life {threshold_Ah:.3g} Ah" + (f" ({threshold_note})" if threshold_note else ""))
    band = f"{coverage:.0%} ".replace("%", " %") if coverage is not None else ""
    if curve is not None and len(curve):
        c = curve.sort_values("cycle")
        ax.plot(c["cycle"], c["predicted_capacity_Ah"], color="#1f77b4", lw=1.8, ls="--", label="predicted fade")
        ax.fill_between(c["cycle"], c["low"], c["high"], color="#1f77b4", alpha=0.2, lw=0, label=f"{band}band")
        title = f"{label}: predicted fade curve with its {band}band"
        if life is not None and bool(life.get("reached", False)) and threshold_Ah is not None:
            ax.plot([life["predicted_life"]], [threshold_Ah], "v", color="#1f77b4", ms=9,
                    label=f"life read off the curve: {life['predicted_life']:.0f}")
        elif life is not None:
            title += f"\n(above the threshold up to cycle {int(life['horizon'])}, where the training data end)"
    elif prediction is not None:
        mid = float(prediction["predicted_cycle_life"])
        lo, hi = prediction.get("interval_low", np.nan), prediction.get("interval_high", np.nan)
        y = threshold_Ah if threshold_Ah is not None else float(np.nanmin(cap)) if len(cap) else 0.0
        xerr = None if not (np.isfinite(lo) and np.isfinite(hi)) else [[mid - float(lo)], [float(hi) - mid]]
        ax.errorbar([mid], [y], xerr=xerr, fmt="D", color="#1f77b4", ms=7, capsize=5, lw=2,
                    label=f"predicted life {mid:.0f}" + (f" ({band}interval {lo:.0f}-{hi:.0f})" if xerr else ""))
        where = f"on the {threshold_Ah:.3g} Ah threshold line" if threshold_Ah is not None else \
            "at the lowest observed capacity (threshold unknown)"
        title = f"{label}: predicted life {where}\n(no fade-curve model: one number, not a curve)"
    else:
        title = f"{label}: observed capacity"
    ax.set(xlabel="cycle", ylabel="discharge capacity [Ah]", title=title)
    ax.title.set_fontsize(9)
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    return fig


def plot_labels(observed: Any, labels: Any, title: str = "Cycle life, censoring and knees", ax: Any = None):
    """Capacity against cycle of every labelled cell with what :func:`battlab.cycling.labels.label_cells` found:
    the end-of-life threshold(s) (dotted), each cell's life (a dot on its curve), knee-onset and knee (open
    triangles and squares), and right-censored cells dashed, ending in an arrow ("life > last cycle").

    ``observed``: a capacity table (``cell``, ``cycle``, ``discharge_capacity_Ah``); ``labels``: a
    :class:`~battlab.cycling.labels.LifeLabels` or its ``table``.

    >>> import numpy as np, pandas as pd
    >>> from battlab.cycling.labels import label_cells
    >>> cyc = np.arange(1, 301)
    >>> t = pd.concat([pd.DataFrame({"cell": "a", "cycle": cyc, "discharge_capacity_Ah": 1.1 - 1e-8 * cyc ** 3}),
    ...                pd.DataFrame({"cell": "b", "cycle": cyc, "discharge_capacity_Ah": 1.1 - 1e-4 * cyc})])
    >>> fig = plot_labels(t, label_cells(t, nominal_Ah=1.1))
    >>> [text.get_text() for text in fig.axes[0].get_legend().get_texts()][:3]
    ['reached end of life', 'right-censored (life > last cycle)', 'cycle life']
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    table = getattr(labels, "table", labels)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
    else:
        fig = ax.figure
    lab = table.set_index(table["cell"].astype(str))
    colours = plt.get_cmap("tab20")
    for k, (cell, g) in enumerate(observed.groupby(observed["cell"].astype(str), sort=False)):
        if cell not in lab.index:
            continue
        row, colour = lab.loc[cell], colours(k % 20)
        g = g.sort_values("cycle")
        censored = bool(row["censored"])
        ax.plot(g["cycle"], g["discharge_capacity_Ah"], color=colour, lw=1.0, ls="--" if censored else "-")
        q = g.set_index("cycle")["discharge_capacity_Ah"]
        if censored:
            ax.annotate("", xy=(q.index[-1] + 15, q.iloc[-1]), xytext=(q.index[-1], q.iloc[-1]),
                        arrowprops={"arrowstyle": "->", "color": colour})
        elif np.isfinite(row["cycle_life"]) and row["cycle_life"] in q.index:
            ax.plot([row["cycle_life"]], [q.loc[row["cycle_life"]]], "o", color=colour, ms=5)
        for col, marker in (("knee_onset_cycle", "^"), ("knee_cycle", "s")):
            c = row.get(col, np.nan)
            if np.isfinite(c):
                c = int(round(c))
                near = q.index[np.argmin(np.abs(q.index.to_numpy() - c))]
                ax.plot([near], [q.loc[near]], marker, mfc="none", color=colour, ms=7)
    for thr in sorted(set(_finite_rounded(table["threshold_Ah"]))):
        ax.axhline(thr, color="k", ls=":", lw=1.0)
    handles = [Line2D([], [], color="0.3", lw=1), Line2D([], [], color="0.3", lw=1, ls="--"),
               Line2D([], [], color="0.3", marker="o", ls=""), Line2D([], [], color="0.3", marker="^", mfc="none",
                                                                      ls=""),
               Line2D([], [], color="0.3", marker="s", mfc="none", ls=""), Line2D([], [], color="k", ls=":")]
    ax.legend(handles, ["reached end of life", "right-censored (life > last cycle)", "cycle life", "knee onset",
                        "knee", "end-of-life threshold"], fontsize=7, loc="lower left")
    ax.set(xlabel="cycle", ylabel="discharge capacity [Ah]", title=title)
    fig.tight_layout()
    return fig


def _finite_rounded(values: Any, digits: int = 4) -> list[float]:
    """Finite values rounded (the thresholds drawn once each)."""
    v = np.asarray(values, dtype=float)
    return [round(float(x), digits) for x in v[np.isfinite(v)]]
