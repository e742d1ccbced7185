"""Cycle-life models on a lab's own cells: cycler files -> labels -> early-life features -> a tuned model.

:func:`cell_features` reads cycler files (folders, files, globs, a :class:`~battlab.cycling.batch.CellBatch` or a list
of :class:`~battlab.cycling.read.CellData`), labels them (:func:`battlab.cycling.labels.label_cells`, or a labels
table with ``cell``, ``cycle_life`` and optionally ``censored`` and a group column), puts the first ``n_cycles``
cycles of each on a voltage grid spanning the cells' common discharge window, and computes the early-life features
of :func:`battlab.cycling.features.early_life_features`: one row per cell. Nothing is dropped silently: every cell
that cannot serve (unreadable, too few cycles, no label, right-censored, a label naming no cell read) is in
``set_aside`` with its reason.

:func:`fit_cycle_life_cells` tunes :func:`battlab.cycling.models.fit_cycle_life` on them (cross-validated on a split
grouped by cell, or by a group column of the labels). :func:`predict_cells` predicts cells with a model, checked
against its domain of applicability, and bounded below by what the cell already shows (a cell that ran K cycles
without reaching the threshold lives K cycles at least; one that reached it has an observed life).

Example
-------
>>> import tempfile
>>> from battlab.cycling.synthetic import write_example_cells
>>> folder = tempfile.mkdtemp()
>>> truth = write_example_cells(folder, n_cells=12)
>>> fit = fit_cycle_life_cells(folder, nominal_Ah=1.1, n_cycles=100, models=("ridge",), n_trials=2)
>>> len(fit.features.table), fit.features.set_aside["cell"].tolist()
(11, ['cell_12'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.curves import DischargeCurves, _ranges, curves_from_cell
from battlab.cycling.domain import CAPACITY, CHEMISTRY, V_HIGH, V_LOW
from battlab.cycling.features import early_life_features, featurize_curves, required_cycles
from battlab.cycling.models import DEFAULT_FEATURE_SET
from battlab.errors import BattlabError

__all__ = ["CellFeatures", "OwnCellsFit", "read_cells", "discharge_window", "cells_to_curves", "cell_features",
           "read_labels", "fit_cycle_life_cells", "predict_cells", "censored_check", "ASIDE_COLUMNS"]

ASIDE_COLUMNS = ["cell", "reason"]


def read_cells(cells: Any, *, recursive: bool = False) -> tuple[list[Any], pd.DataFrame]:
    """``(cells, unreadable)``: the :class:`CellData` of ``cells`` (paths, folders, globs, a batch, a list, a dict) and
    each file that could not be read (``cell`` = the file, ``reason``)."""
    from battlab.cycling.batch import CellBatch, read_cycler_files
    from battlab.cycling.read import CellData

    if isinstance(cells, CellData):
        return [cells], pd.DataFrame(columns=ASIDE_COLUMNS)
    if isinstance(cells, dict):
        return list(cells.values()), pd.DataFrame(columns=ASIDE_COLUMNS)
    if isinstance(cells, Iterable) and not isinstance(cells, (str, Path)):
        cells = list(cells)
        if cells and all(isinstance(c, CellData) for c in cells):
            return cells, pd.DataFrame(columns=ASIDE_COLUMNS)
    batch = cells if isinstance(cells, CellBatch) else read_cycler_files(cells, recursive=recursive, progress=False)
    bad = batch.failures.rename(columns={"file": "cell"})[ASIDE_COLUMNS].copy()
    bad["reason"] = "could not be read: " + bad["reason"].astype(str)
    if not batch.cells and not len(bad):
        raise BattlabError(f"no cycler file in {cells}")
    return list(batch.cells.values()), bad


def _early(cell: Any, n_cycles: int) -> Any:
    """The cell cut to its first ``n_cycles`` cycles (so that long tests are not put on the grid for nothing)."""
    keep = cell.data["cycle"].notna() & (cell.data["cycle"] <= n_cycles)
    return dataclasses.replace(cell, data=cell.data.loc[keep], cycles=cell.cycles.loc[cell.cycles["cycle"] <= n_cycles])


def _window(cell: Any) -> tuple[float, float]:
    """(high, low): median over the cell's usable cycles of the highest and lowest voltage while discharging."""
    d = cell.data.loc[cell.data["current_A"] < -1e-6, ["cycle", "voltage_V"]]
    d = d.loc[d["cycle"].isin(cell.usable_cycles)]
    if not len(d):
        return np.nan, np.nan
    g = d.groupby("cycle")["voltage_V"]
    return float(g.max().median()), float(g.min().median())


def discharge_window(cells: list[Any], n_cycles: int = 100) -> tuple[float, float]:
    """(high, low) voltage window every cell's early discharges cover (the lowest of their tops, the highest of
    their bottoms).

    Example
    -------
    >>> import tempfile
    >>> from battlab.cycling.synthetic import write_example_cells
    >>> from battlab.cycling.batch import read_cycler_files
    >>> folder = tempfile.mkdtemp(); _ = write_example_cells(folder, n_cells=2)
    >>> [round(v, 2) for v in discharge_window(list(read_cycler_files(folder, progress=False).cells.values()))]
    [3.61, 2.0]
    """
    windows = np.array([_window(_early(c, n_cycles)) for c in cells], dtype=float).reshape(-1, 2)
    windows = windows[np.isfinite(windows).all(axis=1)]
    if not len(windows):
        raise BattlabError("no cell has a discharge (negative current) in its first cycles: no voltage window")
    high, low = float(windows[:, 0].min()), float(windows[:, 1].max())
    if high - low < 0.05:
        raise BattlabError(f"the cells' discharges share no voltage window (tops from {windows[:, 0].min():.2f} V, "
                           f"bottoms up to {low:.2f} V): are they one kind of cell?")
    return high, low


def _info(cell: Any, n_cycles: int) -> dict[str, Any]:
    """Per-cell facts the domain check reads: initial capacity, discharge window, chemistry."""
    early = _early(cell, n_cycles)
    caps = early.cycles.loc[early.cycles["usable"], "discharge_capacity_Ah"].to_numpy(dtype=float)
    caps = caps[np.isfinite(caps)]
    high, low = _window(early)
    chem = next((str(v) for k, v in (cell.metadata or {}).items() if "chemistry" in str(k).lower() and v), None)
    return {CAPACITY: float(np.median(caps[:5])) if len(caps) else np.nan, V_HIGH: high, V_LOW: low,
            CHEMISTRY: chem, "file": str(cell.source)}


def cells_to_curves(cells: list[Any], voltages: Any, n_cycles: int, cells_table: pd.DataFrame | None = None
                    ) -> DischargeCurves:
    """One :class:`DischargeCurves` of ``cells`` on ``voltages`` (cycles 1..``n_cycles``; NaN where a cell lacks one);
    ``cells_table`` (one row per cell, same order) adds columns such as ``cycle_life``."""
    parts = [curves_from_cell(_early(c, n_cycles), np.asarray(voltages, dtype=float)) for c in cells]
    cycles = sorted({int(x) for p in parts for x in p.cycles})
    cap_cycles = sorted({int(x) for p in parts for x in p.capacity_cycles})
    Q = np.full((len(parts), len(cycles), len(voltages)), np.nan)
    cap = np.full((len(parts), len(cap_cycles)), np.nan)
    pos, cpos = {c: i for i, c in enumerate(cycles)}, {c: i for i, c in enumerate(cap_cycles)}
    for k, p in enumerate(parts):
        Q[k, [pos[int(c)] for c in p.cycles]] = p.Q[0]
        cap[k, [cpos[int(c)] for c in p.capacity_cycles]] = p.capacity[0]
    table = pd.DataFrame([{"cell": c.name, **_info(c, n_cycles)} for c in cells])
    if cells_table is not None:
        table = pd.concat([table, cells_table.drop(columns=["cell"], errors="ignore").reset_index(drop=True)], axis=1)
    return DischargeCurves(Q, voltages, cycles, table, cap, cap_cycles, source="cycler files")


def _missing_cycles(curves: DischargeCurves, featurizers: list[Any], n_cycles: int) -> list[str | None]:
    """Per cell, why it cannot be featurized (cycles it lacks, with how many it has), or None."""
    need = required_cycles(featurizers)
    reasons: list[str | None] = []
    for cell in curves:
        have_q = {int(c) for c, row in zip(cell.cycles, cell.Q, strict=True) if np.isfinite(row).all()}
        have_c = {int(c) for c in cell.capacity_cycles[np.isfinite(cell.capacity)]}
        have = have_q & have_c
        lacking = [c for c in need if c not in have]
        reasons.append(None if not lacking else
                       f"too few cycles: the model predicts from the first {n_cycles} cycles and needs cycles "
                       f"{_ranges(need)}; "
                       f"the cell has {len(have_c)} cycles with a usable discharge ({_ranges(have_c)})")
    return reasons


def read_labels(labels: Any, group_by: str | None = None) -> pd.DataFrame:
    """A labels table (a CSV path or a DataFrame) checked: ``cell``, ``cycle_life``, optional ``censored`` and
    ``group_by``; one-line errors naming the file and column."""
    name = str(labels) if not isinstance(labels, pd.DataFrame) else "labels table"
    if not isinstance(labels, pd.DataFrame):
        path = Path(labels).expanduser()
        if not path.is_file():
            raise BattlabError(f"{name}: no such labels file")
        labels = pd.read_csv(path)
    for col in ["cell", "cycle_life"] + ([group_by] if group_by else []):
        if col not in labels:
            raise BattlabError(f"{name}: no column {col!r} (columns: {', '.join(map(str, labels.columns))})")
    out = labels.copy()
    out["cell"] = out["cell"].astype(str)
    out["cycle_life"] = pd.to_numeric(out["cycle_life"], errors="coerce")
    out["censored"] = out["censored"].astype(str).str.lower().isin(["true", "1", "yes"]) if "censored" in out \
        else False
    dup = out["cell"][out["cell"].duplicated()].unique().tolist()
    if dup:
        raise BattlabError(f"{name}: cell(s) {', '.join(dup[:5])} appear more than once")
    return out


@dataclass
class CellFeatures:
    """Early-life features of cells: ``table`` (one row per usable cell: cell, labels, domain facts, features),
    ``info`` (one row per feature), ``set_aside`` (cell, reason), ``voltages`` (the grid), ``labels`` (every label)."""

    table: pd.DataFrame
    info: pd.DataFrame
    set_aside: pd.DataFrame
    voltages: np.ndarray
    n_cycles: int
    feature_set: str
    labels: pd.DataFrame | None = None
    curves: DischargeCurves | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    #: Right-censored cells set aside from training (CellData, with ``last_cycle`` in :attr:`labels`): what a fitted
    #: model is checked against (:attr:`OwnCellsFit.censored_check`).
    censored_cells: list[Any] = field(default_factory=list)
    #: Capacity table (:func:`battlab.cycling.labels.capacity_table`) of every cell read, all its cycles: what the
    #: fade-curve model (:func:`battlab.cycling.forecast.fit_cells_trajectory`) learns from.
    capacity: pd.DataFrame | None = None

    @property
    def features(self) -> list[str]:
        return self.info["feature"].tolist()

    def save(self, path: str | Path) -> Path:
        """The table as CSV (``battlab tune features.csv --target cycle_life --exclude cell,...`` reads it) and,
        beside it, ``<stem>_set_aside.csv``."""
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(path, index=False)
        self.set_aside.to_csv(path.with_name(path.stem + "_set_aside.csv"), index=False)
        return path


def cell_features(cells: Any, *, labels: Any = None, nominal_Ah: float | dict[str, float] | None = None,
                  reference: str = "nominal", fraction: float = 0.8, n_cycles: int = 100,
                  feature_set: str = DEFAULT_FEATURE_SET, voltages: Any = None, n_voltages: int = 200,
                  group_by: str | None = None, recursive: bool = False, require_labels: bool = True) -> CellFeatures:
    """Labels and early-life features of ``cells`` (see the module docstring); ``voltages``: a grid to use (a model's),
    else ``n_voltages`` voltages over the cells' common discharge window. Censored cells are set aside (their
    lower bound listed in the reason), as is every cell without a label when ``require_labels``."""
    from battlab.cycling.labels import capacity_table, label_cells

    read, aside = read_cells(cells, recursive=recursive)
    capacity = capacity_table(read)  # built once: the labels and the fade-curve model both read it
    aside = [aside]
    if labels is not None:
        lab = read_labels(labels, group_by)
        names = {c.name for c in read}
        missing = lab.loc[~lab["cell"].isin(names), "cell"]
        aside.append(pd.DataFrame({"cell": missing, "reason": "in the labels table, but no cycler file of that cell "
                                                              "was read"}))
        lab = lab.loc[lab["cell"].isin(names)]
        settings: dict[str, Any] = {"labels": str(labels) if not isinstance(labels, pd.DataFrame) else "table"}
    elif read:
        life = label_cells(capacity, nominal_Ah=nominal_Ah, fraction=fraction, reference=reference)
        lab = life.table.copy()
        if len(life.set_aside):
            aside.append(life.set_aside[ASIDE_COLUMNS])
        settings = {"nominal_Ah": nominal_Ah, "reference": reference, "fraction": fraction}
    else:
        lab = pd.DataFrame(columns=["cell", "cycle_life", "censored"])
        settings = {}
    lab = lab.reset_index(drop=True)
    by_name = lab.set_index("cell")
    keep, censored_cells = [], []
    already = {str(c) for a in aside for c in a["cell"]}  # set aside by the labelling: listed once, with its reason
    for c in read:
        if c.name in already:
            continue
        if c.name not in by_name.index:
            if require_labels:
                aside.append(pd.DataFrame({"cell": [c.name], "reason": ["no label (not in the labels table or "
                                                                       "set aside by the labelling)"]}))
                continue
        else:
            row = by_name.loc[c.name]
            if require_labels and bool(row.get("censored", False)):
                last = row.get("last_cycle", np.nan)
                aside.append(pd.DataFrame({"cell": [c.name], "reason": [
                    "right-censored: never reached the end-of-life threshold"
                    + (f" in its {int(last)} cycles (life >= {int(last)})" if pd.notna(last) else "")
                    + "; not used as a training label (the fitted model is checked against this lower bound)"]}))
                censored_cells.append(c)
                continue
            if require_labels and not np.isfinite(float(row["cycle_life"])):
                aside.append(pd.DataFrame({"cell": [c.name], "reason": ["no cycle life in its label"]}))
                continue
        keep.append(c)
    featurizers = early_life_features(n_cycles, feature_set)
    if not keep:
        gone = pd.concat(aside)[ASIDE_COLUMNS]
        raise BattlabError(f"no cell left to featurize ({len(gone)} set aside): " + "; ".join(
            f"{c}: {r}" for c, r in gone.head(2).itertuples(index=False)) + ("; ..." if len(gone) > 2 else ""))
    if voltages is None:
        high, low = discharge_window(keep, n_cycles)
        voltages = np.linspace(high, low, n_voltages)
    table = pd.DataFrame({"cell": [c.name for c in keep]}).merge(lab, on="cell", how="left")
    curves = cells_to_curves(keep, voltages, n_cycles, table)
    reasons = _missing_cycles(curves, featurizers, n_cycles)
    ok = np.array([r is None for r in reasons])
    aside.append(pd.DataFrame({"cell": curves.cells["cell"][~ok], "reason": [r for r in reasons if r]}))
    if not ok.any():
        raise BattlabError(f"no cell has the cycles the features need: {reasons[0]}")
    curves = curves.select(ok)
    feats, info = featurize_curves(curves, featurizers)
    parts = [a[ASIDE_COLUMNS] for a in aside if len(a)]
    set_aside = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ASIDE_COLUMNS)
    return CellFeatures(feats, info, set_aside, np.asarray(voltages, dtype=float), int(n_cycles), feature_set, lab,
                        curves, settings, censored_cells, capacity)


@dataclass
class OwnCellsFit:
    """A model fitted on a lab's cells, with the features it was fitted on (and the cells set aside)."""

    model: Any
    features: CellFeatures
    #: One row per right-censored cell with the model's cycles: ``cell``, ``life_at_least`` (cycles it ran without
    #: reaching end of life), ``predicted_cycle_life`` (before any lower bound) and ``consistent`` (prediction >= it).
    censored_check: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["cell", "life_at_least", "predicted_cycle_life", "consistent"]))
    #: The fade-curve model (:class:`~battlab.cycling.trajectory.TrajectoryModel`) fitted on the cells' whole
    #: capacity curves, or None with :attr:`trajectory_note` saying why.
    trajectory: Any = None
    trajectory_note: str = ""

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """The model (``CycleLifeModel.save``), ``labels.csv``, ``training_cells.csv``, ``set_aside.csv`` and, when
        one was fitted, ``trajectory.joblib``."""
        from battlab.cycling.forecast import save_trajectory

        out = Path(out_dir).expanduser()
        paths = self.model.save(out)
        if self.trajectory is not None:
            paths["trajectory"] = save_trajectory(self.trajectory, out)
        if self.features.labels is not None:
            self.features.labels.to_csv(out / "labels.csv", index=False)
            paths["labels"] = out / "labels.csv"
        self.features.table.to_csv(out / "training_cells.csv", index=False)
        self.features.set_aside.to_csv(out / "set_aside.csv", index=False)
        paths.update(training_cells=out / "training_cells.csv", set_aside=out / "set_aside.csv")
        return paths


def fit_cycle_life_cells(cells: Any, *, labels: Any = None, nominal_Ah: float | dict[str, float] | None = None,
                         reference: str = "nominal", fraction: float = 0.8, n_cycles: int = 100,
                         feature_set: str = DEFAULT_FEATURE_SET, components: int = 0, group_by: str | None = None,
                         models: tuple[str, ...] | None = None, n_trials: int = 30, n_splits: int = 5,
                         min_cells: int = 6, coverage: float = 0.9, seed: int = 0, progress: bool = False,
                         recursive: bool = False, trajectory: bool = True) -> OwnCellsFit:
    """Tune a cycle-life model on ``cells`` (see :func:`cell_features` for the inputs; the rest as
    :func:`battlab.cycling.models.fit_cycle_life`). The tuning's cross-validation holds out whole cells (a random
    K-fold over one row per cell) or, with ``group_by``, whole groups of the labels' column ``group_by``; at least
    ``min_cells`` labelled cells are needed. The model card lists the cells set aside. With few cells the
    intervals' ``coverage`` is lowered to what conformal intervals can reach on the smallest training fold (MAPIE
    needs more than ``1 / (1 - coverage)`` cells; the card says so). ``trajectory``: also fit a fade-curve model on
    the cells' whole capacity curves (:func:`battlab.cycling.forecast.fit_cells_trajectory`; the card's
    ``trajectory`` entry lists it, or says why it could not be fitted)."""
    from battlab.cycling.models import CYCLE_LIFE_MODELS, fit_cycle_life
    from battlab.split import GroupKFoldBy, RandomKFold
    from battlab.tune import reachable_coverage

    feats = cell_features(cells, labels=labels, nominal_Ah=nominal_Ah, reference=reference, fraction=fraction,
                          n_cycles=n_cycles, feature_set=feature_set, group_by=group_by, recursive=recursive)
    curves = feats.curves
    curves.cells["split"] = "train"
    n = len(curves)
    if n < min_cells:
        raise BattlabError(f"{n} labelled cells with the cycles needed: a cycle-life model needs at least "
                           f"{min_cells} (set aside: {len(feats.set_aside)})")
    k = max(2, min(n_splits, n // 2))
    if group_by:
        n_groups = curves.cells[group_by].nunique()
        if n_groups < 4:  # the tuning splits the first fold's training cells again by group for its intervals
            raise BattlabError(f"group column {group_by!r} has {n_groups} groups among the labelled cells: a grouped "
                               "split needs 4 or more (without --group-by the folds hold out single cells)")
        k = max(2, min(n_splits, n_groups // 2))
        split = GroupKFoldBy(n_splits=k, by=group_by, seed=seed)
    else:
        split = RandomKFold(n_splits=k, seed=seed)
    n_fit = min(len(fit_rows) for fit_rows, _ in split.split(curves.cells))  # cells of the smallest training fold
    used_coverage = reachable_coverage(coverage, n_fit)  # what battlab.tune will use (it says so too)
    model = fit_cycle_life(curves, coverage=used_coverage, n_cycles=n_cycles, components=components,
                           feature_set=feature_set, models=tuple(models or CYCLE_LIFE_MODELS), n_trials=n_trials,
                           n_splits=k, seed=seed, progress=progress, split=split, min_cells=min_cells,
                           label_settings=feats.settings)
    check = censored_check(model, feats)
    model.card["cells"] = {"training_cells": feats.table["cell"].tolist(),
                           "censored_check": check.to_dict("records"),
                           "set_aside": feats.set_aside.to_dict("records"), "labels": feats.settings,
                           "group_by": group_by, "coverage_asked": coverage, "coverage_used": used_coverage,
                           "voltage_window_V": [float(feats.voltages[0]),
                                                                      float(feats.voltages[-1])]}
    traj, note = None, "not asked (trajectory=False)"
    if trajectory:
        from battlab.cycling.forecast import fit_cells_trajectory

        traj, note = fit_cells_trajectory(feats.capacity, n_cycles=n_cycles, seed=seed,
                                          threshold_Ah=_threshold(feats, nominal_Ah, fraction))
    from battlab.cycling.forecast import trajectory_card

    model.card["trajectory"] = trajectory_card(traj, note)
    return OwnCellsFit(model, feats, check, traj, note)


def _threshold(feats: CellFeatures, nominal_Ah: Any, fraction: float) -> float | None:
    """The end-of-life capacity (Ah) of the labels: their ``threshold_Ah`` (median over cells), else ``fraction``
    of a single ``nominal_Ah``, else None."""
    lab = feats.labels
    if lab is not None and "threshold_Ah" in lab and pd.to_numeric(lab["threshold_Ah"], errors="coerce").notna().any():
        return float(pd.to_numeric(lab["threshold_Ah"], errors="coerce").median())
    if isinstance(nominal_Ah, (int, float)) and np.isfinite(nominal_Ah):
        return float(fraction) * float(nominal_Ah)
    return None


def censored_check(model: Any, feats: CellFeatures) -> pd.DataFrame:
    """The model's predictions for the right-censored cells of ``feats`` beside the cycles they already ran: a
    model that predicts a censored cell below its observed lower bound is wrong about it (a check on cells no label
    could use)."""
    cols = ["cell", "life_at_least", "predicted_cycle_life", "consistent"]
    if not feats.censored_cells:
        return pd.DataFrame(columns=cols)
    curves = cells_to_curves(feats.censored_cells, model.voltages, model.n_cycles)
    ok = np.array([r is None for r in _missing_cycles(curves, model.featurizers, model.n_cycles)])
    if not ok.any():
        return pd.DataFrame(columns=cols)
    pred = model.predict(curves.select(ok))
    last = feats.labels.set_index("cell")["last_cycle"] if feats.labels is not None and "last_cycle" in feats.labels \
        else pd.Series(dtype=float)
    out = pd.DataFrame({"cell": pred["cell"], "life_at_least": pred["cell"].map(last).astype(float),
                        "predicted_cycle_life": pred["predicted_cycle_life"].astype(float)})
    out["consistent"] = out["predicted_cycle_life"] >= out["life_at_least"]
    return out.reset_index(drop=True)


def predict_cells(model: Any, cells: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(predictions, set_aside)`` of ``cells`` with ``model``: one row per cell predicted, with
    :meth:`CycleLifeModel.predict`'s columns, and, when the model knows how its labels were made, what the cell
    already shows: ``observed_cycle_life`` (it reached the threshold), ``censored`` and ``life_at_least`` (it ran
    that many cycles without reaching it; the prediction and its interval are raised to it). Cells lacking the
    model's cycles are in ``set_aside`` with how many they have and need."""
    from battlab.cycling.labels import label_cells

    read, aside = read_cells(cells)
    aside = [aside]
    featurizers = model.featurizers
    curves = cells_to_curves(read, model.voltages, model.n_cycles)
    reasons = _missing_cycles(curves, featurizers, model.n_cycles)
    ok = np.array([r is None for r in reasons])
    aside.append(pd.DataFrame({"cell": curves.cells["cell"][~ok], "reason": [r for r in reasons if r]}))
    set_aside = pd.concat([a for a in aside if len(a)], ignore_index=True) if any(len(a) for a in aside) \
        else pd.DataFrame(columns=ASIDE_COLUMNS)
    if not ok.any():
        return pd.DataFrame(columns=["cell", "predicted_cycle_life"]), set_aside
    keep = [c for c, good in zip(read, ok, strict=True) if good]
    pred = model.predict(curves.select(ok))
    pred.insert(1, "file", [str(c.source) for c in keep])
    settings = getattr(getattr(model, "domain", None), "label_settings", None) or {}
    pred["observed_cycle_life"], pred["censored"], pred["life_at_least"] = np.nan, pd.NA, np.nan
    if settings.get("reference") in ("nominal", "initial"):
        try:
            lab = label_cells(keep, nominal_Ah=settings.get("nominal_Ah"), reference=settings["reference"],
                              fraction=settings.get("fraction", 0.8)).table.set_index("cell")
        except BattlabError:
            lab = None
        if lab is not None:
            for i, name in enumerate(pred["cell"]):
                if name not in lab.index:
                    continue
                row = lab.loc[name]
                censored = bool(row["censored"])
                pred.loc[i, "censored"] = censored
                if censored:
                    k = float(row["last_cycle"])
                    pred.loc[i, "life_at_least"] = k
                    for col in ("predicted_cycle_life", "interval_low", "interval_high"):
                        if col in pred and np.isfinite(pred.loc[i, col]):
                            pred.loc[i, col] = max(float(pred.loc[i, col]), k)
                else:
                    pred.loc[i, "observed_cycle_life"] = float(row["cycle_life"])
    return pred, set_aside
