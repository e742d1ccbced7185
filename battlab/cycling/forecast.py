"""Capacity-fade forecasts for a lab's own cells: the :class:`~battlab.cycling.trajectory.TrajectoryModel` that
``battlab cycling fit CELLS`` trains beside the cycle-life model, and what ``predict`` and the ``cycle_life`` app do
with it.

- :func:`fit_cells_trajectory`: a :class:`TrajectoryModel` on the capacity table
  (:func:`battlab.cycling.labels.capacity_table`) of every cell read that has the first ``n_cycles`` cycles
  (censored cells included: their curves are real fade, only their end is missing), or ``None`` and the reason it
  could not be fitted (fewer than 3 such cells, fewer than 3 going past cycle N + 10, no end-of-life threshold).
- :func:`save_trajectory` / :func:`load_trajectory`: ``trajectory.joblib`` in the model folder (listed in its
  ``model_card.json`` under ``trajectory``; a folder without it gives ``None`` and the reason the card records).
- :func:`forecast_cells`: for cells (cycler files, ``CellData``, a capacity table) the predicted curve (``cell``,
  ``cycle``, ``predicted_capacity_Ah``, ``low``, ``high``) from their first N cycles only, and the life read off it
  (first cycle below the threshold, its band from where ``low`` and ``high`` cross it; NaN: beyond the last cycle
  the training cells reached, ``horizon``), each cell flagged ``in_range`` when its early features lie within the
  training cells' (widened by :data:`RANGE_MARGIN` of their span). Cells refused by the cycle-life model's domain
  check, or with fewer than N cycles, get no curve: they are in ``set_aside`` with the reason.

Example
-------
>>> import tempfile
>>> from battlab.cycling.synthetic import write_example_cells
>>> from battlab.cycling.owncells import read_cells
>>> folder = tempfile.mkdtemp(); truth = write_example_cells(folder, n_cells=8)
>>> cells, _ = read_cells(folder)
>>> model, why = fit_cells_trajectory(cells, n_cycles=100, threshold_Ah=0.88)
>>> why, int(model.grid_[-1]) > 200
('', True)
>>> fc = forecast_cells(model, cells[:2])
>>> list(fc.life.columns)
['cell', 'predicted_life', 'life_low', 'life_high', 'reached', 'horizon', 'threshold_Ah', 'in_range']
>>> bool(fc.life["reached"].all()), len(fc.set_aside)
(True, 0)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["TRAJECTORY_FILE", "RANGE_MARGIN", "Forecast", "fit_cells_trajectory", "save_trajectory",
           "load_trajectory", "trajectory_card", "forecast_cells", "life_threshold", "curves_capacity_table",
           "capacity_at", "describe_forecast", "trajectory_scores"]

#: File name of the trajectory model in a model folder.
TRAJECTORY_FILE = "trajectory.joblib"
#: A cell's early features are "in range" when within the training cells' min-max widened by this share of the span.
RANGE_MARGIN = 0.1
_CURVE_COLUMNS = ["cell", "cycle", "predicted_capacity_Ah", "low", "high"]
_LIFE_COLUMNS = ["cell", "predicted_life", "life_low", "life_high", "reached", "horizon", "threshold_Ah", "in_range"]


def _table(cells: Any) -> pd.DataFrame:
    """A capacity table of ``cells`` (a table is taken as given)."""
    from battlab.cycling.labels import capacity_table

    if isinstance(cells, pd.DataFrame):
        return capacity_table(cells)  # per-cell columns (covariates) kept
    from battlab.cycling.owncells import read_cells

    read, _ = read_cells(cells)
    return capacity_table(read)


def _long_enough(table: pd.DataFrame, n_cycles: int) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Rows of the cells that have cycle ``n_cycles`` and 10 cycles in 2..N; the others as (cell, reason)."""
    aside: list[dict[str, str]] = []
    keep = []
    for cell, g in table.groupby("cell", sort=False):
        last = int(g["cycle"].max())
        early = int(((g["cycle"] >= 2) & (g["cycle"] <= n_cycles)).sum())
        if last < n_cycles or early < 10:
            aside.append({"cell": str(cell), "reason": f"too few cycles for a fade forecast: the trajectory model "
                          f"reads the first {n_cycles} cycles; the cell has cycles up to {last} "
                          f"({early} usable in 2-{n_cycles})"})
        else:
            keep.append(cell)
    return table[table["cell"].isin(keep)], aside


def fit_cells_trajectory(cells: Any, *, n_cycles: int = 100, threshold_Ah: float | None = None,
                         coverage: float = 0.9, covariates: tuple[str, ...] = (), seed: int = 0) -> tuple[Any, str]:
    """``(model, "")`` or ``(None, reason)``: a :class:`TrajectoryModel` learned from the whole capacity curves of
    ``cells`` (see the module docstring). ``threshold_Ah`` is the end-of-life capacity its life read-off uses (the
    labels' threshold); None: not fitted (no threshold to read a life off). ``covariates``: per-cell columns of a
    capacity table used as features (``("temperature_C",)`` for tbsi_sunwoda)."""
    from battlab.cycling.trajectory import TrajectoryModel

    if threshold_Ah is None or not np.isfinite(threshold_Ah):
        return None, ("no end-of-life threshold in Ah (labels read from a file without --nominal): no capacity "
                      "curve forecast")
    try:
        table, aside = _long_enough(_table(cells), int(n_cycles))
    except BattlabError as exc:
        return None, f"no capacity table: {exc}"
    n = table["cell"].nunique()
    if n < 3:
        return None, (f"{n} cell(s) have the first {n_cycles} cycles; a fade-curve model needs at least 3 "
                      "training cells")
    model = TrajectoryModel(n_cycles=int(n_cycles), threshold_Ah=float(threshold_Ah), coverage=coverage,
                            covariates=tuple(covariates), seed=seed)
    try:
        model.fit(table)
    except BattlabError as exc:
        return None, str(exc).replace("TrajectoryModel.fit: ", "")
    model.set_aside_ = aside
    return model, ""


def trajectory_card(model: Any, reason: str = "") -> dict[str, Any]:
    """What the model card says of the trajectory model (or why there is none)."""
    if model is None:
        return {"file": None, "skipped": reason}
    return {"file": TRAJECTORY_FILE, "method": model.method, "n_cycles": int(model.n_cycles),
            "horizon": int(model.grid_[-1]), "threshold_Ah": float(model.threshold_Ah),
            "coverage": float(model.coverage), "training_cells": list(model.cells_),
            "set_aside": list(getattr(model, "set_aside_", []))}


def save_trajectory(model: Any, out_dir: str | Path) -> Path:
    """Write ``trajectory.joblib`` into ``out_dir``."""
    return model.save(Path(out_dir).expanduser() / TRAJECTORY_FILE)


def load_trajectory(model_dir: str | Path) -> tuple[Any, str]:
    """``(TrajectoryModel, "")`` from a model folder, or ``(None, why there is none)`` (from its card when it says).

    Loading unpickles a joblib file (it runs code): trusted folders only.
    """
    from battlab.cycling.trajectory import TrajectoryModel

    folder = Path(model_dir).expanduser()
    folder = folder.parent if folder.is_file() else folder
    path = folder / TRAJECTORY_FILE
    if path.is_file():
        return TrajectoryModel.load(path), ""
    why = "the model folder has no trajectory model (trajectory.joblib)"
    card = folder / "model_card.json"
    if card.is_file():
        try:
            skipped = (json.loads(card.read_text()).get("trajectory") or {}).get("skipped")
        except (ValueError, AttributeError):
            skipped = None
        if skipped:
            why += f": {skipped}"
        elif "cells" not in json.loads(card.read_text()):
            why += (": it was fitted on the severson2019 curves, whose capacities stop at cycle 100 (nothing after "
                    "the first cycles to learn a fade curve from); fit on your own cells to get one")
    return None, why


@dataclass
class Forecast:
    """Fade forecasts: ``curve`` (cell, cycle, predicted_capacity_Ah, low, high), ``life`` (one row per cell with a
    curve) and ``set_aside`` (cell, reason)."""

    curve: pd.DataFrame
    life: pd.DataFrame
    set_aside: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["cell", "reason"]))
    coverage: float = 0.9


def _in_range(model: Any, feats: pd.DataFrame) -> pd.Series:
    rng = model.feature_range_[list(model.feature_names_in_)]
    span = (rng.loc["max"] - rng.loc["min"]).abs()
    lo, hi = rng.loc["min"] - RANGE_MARGIN * span, rng.loc["max"] + RANGE_MARGIN * span
    x = feats[list(model.feature_names_in_)]
    return ((x >= lo - 1e-12) & (x <= hi + 1e-12)).all(axis=1)


def forecast_cells(model: Any, cells: Any, *, refused: Any = ()) -> Forecast:
    """Curves and lives of ``cells`` (cycler files, ``CellData``, a capacity table) from their first N cycles;
    cells named in ``refused`` (outside the cycle-life model's domain) and cells short of N cycles are set aside."""
    from battlab.cycling.trajectory import early_features

    table = _table(cells)
    refused = {str(c) for c in refused}
    aside = [{"cell": c, "reason": "outside what the model knows (domain check): no fade forecast"}
             for c in table["cell"].unique() if str(c) in refused]
    table = table[~table["cell"].astype(str).isin(refused)]
    n = int(model.n_cycles)
    table, short = _long_enough(table, n)
    aside += short
    set_aside = pd.DataFrame(aside, columns=["cell", "reason"])
    if not len(table):
        return Forecast(pd.DataFrame(columns=_CURVE_COLUMNS), pd.DataFrame(columns=_LIFE_COLUMNS), set_aside,
                        float(model.coverage))
    early = table[table["cycle"] <= n]
    curve = model.predict(early)
    life = model.predict_life(early)
    life["horizon"] = int(model.grid_[-1])
    life["threshold_Ah"] = float(model.threshold_Ah)
    feats = early_features(early, n, tuple(model.covariates))
    life["in_range"] = life["cell"].map(_in_range(model, feats)).astype(bool)
    return Forecast(curve, life[_LIFE_COLUMNS], set_aside, float(model.coverage))


def capacity_at(curve: pd.DataFrame, cycles: Any) -> pd.DataFrame:
    """Rows of ``curve`` at ``cycles`` (those it has).

    >>> c = pd.DataFrame({"cell": "a", "cycle": [101, 102], "predicted_capacity_Ah": [1.0, 0.9],
    ...                   "low": [0.9, 0.8], "high": [1.1, 1.0]})
    >>> capacity_at(c, [102, 500])["predicted_capacity_Ah"].tolist()
    [0.9]
    """
    return curve[curve["cycle"].isin([int(c) for c in cycles])].reset_index(drop=True)


def describe_forecast(forecast: Forecast, cell: str, n_points: int = 4) -> str:
    """One or two lines for a cell: predicted capacity at ``n_points`` cycles up to its end of life (the band's
    latest) or the horizon, and the life read off the curve with its band (or why there is none)."""
    aside = forecast.set_aside[forecast.set_aside["cell"].astype(str) == str(cell)]
    if len(aside):
        return f"no fade forecast: {aside['reason'].iloc[0]}"
    g = forecast.curve[forecast.curve["cell"].astype(str) == str(cell)]
    row = forecast.life[forecast.life["cell"].astype(str) == str(cell)].iloc[0]
    first, last = int(g["cycle"].min()), int(g["cycle"].max())
    if bool(row["reached"]) and np.isfinite(row["life_high"]):  # the points up to the end of life, not past it
        last = max(first, min(last, int(row["life_high"])))
    points = np.unique(np.linspace(first - 1, last, n_points + 1)[1:].round(-1).clip(first, last).astype(int))
    at = capacity_at(g, points)
    text = (f"fade forecast from the first {first - 1} cycles ({forecast.coverage:.0%} band): "
            + ", ".join(f"cycle {int(r.cycle)}: {r.predicted_capacity_Ah:.3f} Ah ({r.low:.3f}-{r.high:.3f})"
                        for r in at.itertuples(index=False)))
    thr = float(row["threshold_Ah"])
    if bool(row["reached"]):
        lo = f"{row['life_low']:.0f}" if np.isfinite(row["life_low"]) else "?"
        hi = f"{row['life_high']:.0f}" if np.isfinite(row["life_high"]) else f"beyond {int(row['horizon'])}"
        text += f"\nlife read off the curve (first cycle below {thr:.3g} Ah): {row['predicted_life']:.0f} cycles " \
                f"(band {lo}-{hi})"
    else:
        text += (f"\nlife read off the curve: beyond cycle {int(row['horizon'])} (the curve stays above {thr:.3g} Ah "
                 "as far as the training cells' data go"
                 + (f"; the band's low edge crosses it at cycle {row['life_low']:.0f})" if np.isfinite(row["life_low"])
                    else ")"))
    if not bool(row["in_range"]):
        text += "\nwarning: the cell's early fade is outside the training cells' (the forecast extrapolates)"
    return text


def life_threshold(model: Any, observed: pd.DataFrame | None = None) -> tuple[float | None, str]:
    """``(threshold_Ah, what it is)``: the end-of-life capacity a cycle-life model's labels used, from the label
    settings it was fitted with (``fraction`` of ``nominal_Ah``; of the cell's initial capacity, the median of its
    observed cycles 2-6, for ``reference="initial"``); ``(None, why)`` when the model does not say.

    >>> from types import SimpleNamespace
    >>> m = SimpleNamespace(domain=SimpleNamespace(label_settings={"nominal_Ah": 1.1, "fraction": 0.8,
    ...                                                            "reference": "nominal"}))
    >>> life_threshold(m)
    (0.88, '80 % of the nominal 1.1 Ah')
    """
    settings = getattr(getattr(model, "domain", None), "label_settings", None) or {}
    fraction = float(settings.get("fraction", 0.8) or 0.8)
    nominal = settings.get("nominal_Ah")
    if settings.get("reference", "nominal") == "nominal" and isinstance(nominal, (int, float)) and nominal > 0:
        return round(fraction * float(nominal), 6), f"{fraction:.0%} of the nominal {float(nominal):g} Ah".replace(
            "%", " %")
    if settings.get("reference") == "initial" and observed is not None and len(observed):
        early = observed[(observed["cycle"] >= 2) & (observed["cycle"] <= 6)]["discharge_capacity_Ah"]
        q0 = float(early.median()) if len(early) else float(observed["discharge_capacity_Ah"].iloc[0])
        return round(fraction * q0, 6), f"{fraction:.0%} of the cell's initial {q0:.3g} Ah".replace("%", " %")
    return None, "the model does not record the end-of-life threshold of its labels"


def curves_capacity_table(curves: Any) -> pd.DataFrame:
    """The capacity table (``cell``, ``cycle``, ``discharge_capacity_Ah``) of a
    :class:`~battlab.cycling.curves.DischargeCurves`' per-cycle capacities (missing cycles left out).

    >>> from battlab.cycling.curves import load_severson_subset
    >>> s = load_severson_subset()
    >>> t = curves_capacity_table(s.select(np.arange(len(s)) < 2))
    >>> t.groupby("cell")["cycle"].agg(["min", "max"]).values.tolist()
    [[2, 100], [2, 100]]
    """
    cells = np.repeat(curves.cells["cell"].astype(str).to_numpy(), len(curves.capacity_cycles))
    cycles = np.tile(np.asarray(curves.capacity_cycles, dtype=int), len(curves.cells))
    table = pd.DataFrame({"cell": cells, "cycle": cycles,
                          "discharge_capacity_Ah": np.asarray(curves.capacity, dtype=float).ravel()})
    return table[np.isfinite(table["discharge_capacity_Ah"]) & (table["discharge_capacity_Ah"] > 0)].reset_index(
        drop=True)


def trajectory_scores(observed: pd.DataFrame, predicted: pd.DataFrame, until: Any = None) -> dict[str, float]:
    """How well predicted curves match observed capacities: ``rmse_Ah`` over the (cell, cycle) rows both have
    (finite predictions; ``until``: a cell -> last cycle Series, e.g. each cell's end of life, to stop there),
    ``coverage`` (share of observed capacities inside ``low``-``high``) and ``n_points``.

    >>> obs = pd.DataFrame({"cell": "a", "cycle": [101, 102], "discharge_capacity_Ah": [1.0, 0.9]})
    >>> pred = pd.DataFrame({"cell": "a", "cycle": [101, 102], "predicted_capacity_Ah": [1.0, 1.0],
    ...                      "low": [0.95, 0.95], "high": [1.05, 1.05]})
    >>> {k: round(v, 4) for k, v in trajectory_scores(obs, pred).items()}
    {'rmse_Ah': 0.0707, 'coverage': 0.5, 'n_points': 2}
    """
    both = observed[["cell", "cycle", "discharge_capacity_Ah"]].merge(
        predicted[["cell", "cycle", "predicted_capacity_Ah", "low", "high"]], on=["cell", "cycle"])
    both = both[np.isfinite(both["predicted_capacity_Ah"].to_numpy(dtype=float))]
    if until is not None:
        both = both[both["cycle"] <= both["cell"].map(until).fillna(np.inf)]
    if not len(both):
        return {"rmse_Ah": float("nan"), "coverage": float("nan"), "n_points": 0}
    err = both["predicted_capacity_Ah"] - both["discharge_capacity_Ah"]
    inside = (both["discharge_capacity_Ah"] >= both["low"]) & (both["discharge_capacity_Ah"] <= both["high"])
    return {"rmse_Ah": float(np.sqrt((err ** 2).mean())), "coverage": float(inside.mean()), "n_points": len(both)}
