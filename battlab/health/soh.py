"""State of health (SOH) from one pulse test: fit, predict with an interval, evaluate on honest splits.

:func:`fit_soh` featurizes a pulse table (:class:`~battlab.health.pulse.PulseFeatures`) and lets
:func:`battlab.tune.tune` choose, by cross-validation on the rows it is given only, among feature sets (the raw
voltages, the pulse features, the pulse features with the SOC) and models; the result is a :class:`SohModel`
(save/load) whose :meth:`SohModel.predict` gives SOH with a CV+ conformal interval and flags a row whose SOC lies
outside the trained SOC range (an extrapolation). :func:`evaluate_soh` scores the splits a second-life user
needs - unseen SOC (interpolation, extrapolation), unseen cells, unseen cell kind - fitting on training rows only
and scoring the test rows once.

Example
-------
>>> from battlab.health.soh import SPLITS
>>> sorted(SPLITS)
['soc_extrapolation', 'soc_interpolation', 'unseen_cell_kind', 'unseen_cells']
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError
from battlab.health.pulse import PulseFeatures
from battlab.split import GroupKFoldBy, Splitter

__all__ = ["SohModel", "fit_soh", "evaluate_soh", "generated_rows", "mape", "soh_scores", "SPLITS", "FEATURE_SETS",
           "INTERPOLATION_TRAIN_SOC", "EXTRAPOLATION_TRAIN_SOC"]

#: Feature sets :func:`fit_soh` chooses among: raw voltages, derived pulse features, derived features and SOC.
FEATURE_SETS = ("raw", "pulse", "pulse+soc")
#: Every feature set :func:`fit_soh` knows (``feature_sets`` picks among them).
ALL_FEATURE_SETS = ("raw", "pulse", "pulse+soc", "raw+soc", "all+soc")
#: Training SOC levels (%) of the issue's unseen-SOC splits; the other levels are tested.
INTERPOLATION_TRAIN_SOC = (5, 15, 25, 35, 50)
EXTRAPOLATION_TRAIN_SOC = (5, 10, 15, 20, 25)
#: Split name -> what it holds out.
SPLITS = {
    "soc_interpolation": "unseen SOC, interpolation (train SOC 5/15/25/35/50 %, test the rest), per cell kind",
    "soc_extrapolation": "unseen SOC, extrapolation (train SOC 5-25 %, test 30-50 %), per cell kind",
    "unseen_cells": "unseen cells, all SOC (1 of 5 group folds by cell_id: 20 % of cells), per cell kind",
    "unseen_cell_kind": "unseen cell kind (train on the other kinds, test on one), pooled",
}


def mape(y: Any, pred: Any) -> float:
    """Mean absolute percentage error, in %.

    Example
    -------
    >>> mape([1.0, 0.5], [0.9, 0.55])
    10.0
    """
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    return float(np.round(100 * np.mean(np.abs(pred - y) / np.abs(y)), 10))


class _UpToKGroupFolds(GroupKFoldBy):
    """:class:`~battlab.split.GroupKFoldBy` with at most ``n_splits`` folds: one group per fold when there are
    fewer groups (leave one SOC level, one cell kind out), also on the subsets the held-out coverage check
    splits again."""

    def split(self, X: Any, y: Any = None, groups: Any = None):
        labels = self.groups(X) if groups is None else np.asarray(groups).astype(str)
        n = len(np.unique(labels))
        inner = GroupKFoldBy(n_splits=max(2, min(self.n_splits, n)), by=self.by, seed=self.seed)
        return inner.split(X, y, groups)

    def describe(self) -> str:
        return f"group up-to-{self.n_splits}-fold by {self.by!r} (seed {self.seed})"


def _columns_for(feature_set: str, featurizer: PulseFeatures, soc: str) -> list[str]:
    labels = featurizer.feature_labels()
    raw = [c for c in labels if c.startswith("U") and c[1:].isdigit()]
    derived = [c for c in labels if c not in raw and not c.endswith("_mOhm")]  # V/C: comparable across sizes
    if feature_set == "raw":
        return raw
    if feature_set == "pulse":
        return derived
    if feature_set == "pulse+soc":
        return derived + [soc]
    if feature_set == "raw+soc":
        return raw + [soc]
    if feature_set == "all+soc":
        return raw + derived + [soc]
    raise BattlabError(f"unknown feature set {feature_set!r}; choose among {list(ALL_FEATURE_SETS)}")


@dataclass
class SohModel:
    """A fitted SOH model: featurizer, chosen feature set and model, conformal intervals, trained ranges."""

    featurizer: PulseFeatures
    feature_set: str
    features: list[str]
    model: Any
    intervals: Any
    soc_column: str
    soc_range: tuple[float, float]
    soh_range: tuple[float, float]
    comparison: pd.DataFrame
    card: dict[str, Any] = field(default_factory=dict)
    #: A seeded sample of the training rows' features: the reference SHAP values are measured from (:meth:`drivers`).
    reference: pd.DataFrame | None = field(default=None, repr=False)

    def _table(self, table: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(table, pd.DataFrame):
            raise BattlabError(f"expected a pulse table (DataFrame), got {type(table).__name__}")
        X = self.featurizer.transform(table)
        if True:  # SOC: a feature of some sets, and what the extrapolation flag reads
            if self.soc_column not in table.columns:
                raise BattlabError(f"the pulse table has no SOC column {self.soc_column!r} (state of charge, %), "
                                   "which the model needs to say whether it extrapolates")
            soc = pd.to_numeric(table[self.soc_column], errors="coerce")
            bad = soc.isna()
            if bad.any():
                row = soc.index[bad.to_numpy()][0]
                raise BattlabError(f"row {row}, column {self.soc_column!r}: {table[self.soc_column][row]!r} "
                                   "is not a state of charge (a number in %)")
            X[self._soc_feature] = soc.astype(float)  # under the trained name: the features name it so
        return X

    @property
    def _soc_feature(self) -> str:
        """The SOC's name among the features: the training table's column (``soc_column`` may be set to a new
        table's name for prediction)."""
        return self.card.get("soc_column", self.soc_column)

    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """SOH of every row with its interval; ``soc_extrapolation`` flags a SOC outside the trained range and
        ``note`` says why a row is less certain. Rows are never dropped.

        Returns
        -------
        pandas.DataFrame
            Columns ``SOH_pred``, ``SOH_low``, ``SOH_high``, ``soc_extrapolation``, ``note`` (index of ``table``).
        """
        X = self._table(table)
        values = X[self.features].to_numpy(dtype=float)
        pred = self.model.predict(values)
        if self.intervals is not None:
            _, bounds = self.intervals.predict_interval(values)
            low, high = bounds[:, 0, 0], bounds[:, 1, 0]
        else:
            low = high = np.full(len(pred), np.nan)
        soc = X[self._soc_feature].to_numpy()
        lo, hi = self.soc_range
        outside = (soc < lo) | (soc > hi)
        notes = np.where(outside, [f"SOC {s:g} % outside the trained {lo:g}-{hi:g} %: extrapolation" for s in soc], "")
        missing = X[self.features].isna().any(axis=1).to_numpy()
        notes = np.where(missing, np.char.add(notes.astype(str), " missing voltages imputed").astype(object), notes)
        return pd.DataFrame({"SOH_pred": pred, "SOH_low": low, "SOH_high": high, "soc_extrapolation": outside,
                             "note": [str(n).strip() for n in notes]}, index=table.index)

    def feature_info(self) -> pd.DataFrame:
        """Family, property and unit of the model's features (the SOC column: family ``condition``)."""
        info = self.featurizer.feature_info()
        soc = pd.DataFrame({"feature": [self._soc_feature], "family": ["condition"], "property": ["SOC"],
                            "unit": ["%"]})
        return pd.concat([info, soc], ignore_index=True).set_index("feature").loc[self.features].reset_index()

    def explain(self, table: pd.DataFrame, **options: Any) -> Any:
        """SHAP values of the SOH model on the rows of a pulse table (:func:`battlab.explain.explain`): which
        pulse carries the SOH. ``options`` go to ``explain`` (``max_rows``, ``seed``, ...)."""
        from battlab.explain import explain

        X = self._table(table)[self.features]
        return explain(self.model, X, info=self.feature_info(), target=self.card.get("target", "SOH"),
                       model_name=self.card.get("model", {}).get("name", ""), **options)

    def drivers(self, table: pd.DataFrame, *, cell: str | None = None, n: int = 3, seed: int = 0) -> pd.DataFrame:
        """The pulses that drove each cell's SOH estimate: SHAP values (in SOH units) measured from the training
        rows (:attr:`reference`; without it, from the rows of ``table``), averaged over a cell's rows.

        Returns one row per cell and rank (largest absolute SHAP value first, ``n`` per cell): ``cell`` (the
        ``cell`` column, else the row's index), ``rank``, ``feature``, ``unit``, ``shap`` (mean over the cell's
        rows: + raises the estimate), ``value`` (the cell's mean feature value), ``reference_median``.

        Example
        -------
        >>> from battlab.health.example import example_pulse_table
        >>> t = example_pulse_table(n_cells=4)
        >>> model = fit_soh(t, models=("ridge",), n_trials=1, feature_sets=("pulse",))
        >>> d = model.drivers(t, cell="cell_id", n=2)
        >>> len(d), list(d.columns[:4])
        (16, ['cell', 'rank', 'feature', 'unit'])
        """
        from battlab.explain import explain

        if n < 1:
            raise BattlabError(f"n must be at least 1, got {n!r}")
        X = self._table(table)[self.features]
        if cell is not None and cell not in table.columns:
            raise BattlabError(f"the pulse table has no cell column {cell!r}; it has {list(table.columns)[:12]}")
        names = table[cell].astype(str).to_numpy() if cell else np.asarray([str(i) for i in table.index])
        reference = self.reference if self.reference is not None else X.iloc[:0]
        rows = pd.concat([reference[self.features], X], ignore_index=True).astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = explain(self.model, rows, info=self.feature_info(), target=self.card.get("target", "SOH"), seed=seed)
        values = ex.values.iloc[len(reference):].set_axis(X.index)
        units = self.feature_info().set_index("feature")["unit"]
        median = (reference if len(reference) else X).median()
        out = []
        for name in pd.unique(names):
            mask = names == name
            shap = values.loc[mask].mean()
            order = shap.abs().sort_values(ascending=False, kind="stable").index[:n]
            for rank, feature in enumerate(order, 1):
                out.append({"cell": name, "rank": rank, "feature": feature, "unit": units.get(feature, ""),
                            "shap": float(shap[feature]), "value": float(X.loc[mask, feature].mean()),
                            "reference_median": float(median[feature])})
        return pd.DataFrame(out, columns=["cell", "rank", "feature", "unit", "shap", "value", "reference_median"])

    def save(self, folder: str | Path) -> Path:
        """Write ``soh_model.joblib`` and ``model_card.json`` (human-readable) into ``folder``."""
        import joblib

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, out / "soh_model.joblib")
        (out / "model_card.json").write_text(json.dumps(self.card, indent=2, default=str))
        self.comparison.to_csv(out / "comparison.csv", index=False)
        return out

    @classmethod
    def load(cls, folder: str | Path) -> SohModel:
        """Read a model written by :meth:`save` (a folder or its ``soh_model.joblib``)."""
        from battlab.persist import load_joblib

        return load_joblib(folder, cls, file_name="soh_model.joblib",
                           missing="no SOH model at {path} (expected a folder written by `battlab health fit`)",
                           wrong="{path} does not hold a SOH model")


def fit_soh(table: pd.DataFrame, *, target: str = "SOH", soc: str = "SOC", group: str = "cell_id",
            inner_split: str | Splitter | None = None, featurizer: PulseFeatures | None = None,
            feature_sets: tuple[str, ...] = FEATURE_SETS, models: tuple[str, ...] = ("ridge", "krr", "svr"),
            n_trials: int = 6, coverage: float = 0.9, intervals: bool = True, seed: int = 0) -> SohModel:
    """Fit a SOH model on a pulse table, choosing feature set and model by cross-validation on its rows only.

    Parameters
    ----------
    table
        One row per pulse test: the voltages (see ``featurizer``), ``soc`` (%), ``target`` (SOH, Q/Qn) and
        ``group`` (the physical cell; its rows never straddle a fold).
    inner_split
        Folds of the choice (:func:`battlab.split.splitter_from_spec`, or a splitter): default ``group:<group>``;
        ``group:SOC`` to choose for SOC levels not seen, ``group:cell_kind`` for a kind not seen.
    featurizer
        :class:`PulseFeatures` with the table's column mapping, amplitudes and nominal capacity (default:
        PulseBat's layout and column ``nominal_capacity_Ah``).
    feature_sets, models, n_trials
        Candidates (:data:`FEATURE_SETS`, :data:`ALL_FEATURE_SETS`; names of :data:`battlab.models.MODELS`) and
        trials per feature set. The pulse features enter as capacity-normalised resistances (V per C), which
        compare cells of different sizes; the mOhm ones are for reading.

    Raises
    ------
    BattlabError
        Missing columns, non-numeric voltages or SOC (row and column named), too few cells.
    """
    from battlab.split import splitter_from_spec
    from battlab.tune import tune

    featurizer = featurizer if featurizer is not None else PulseFeatures()
    if not isinstance(table, pd.DataFrame):
        raise BattlabError(f"expected a pulse table (DataFrame), got {type(table).__name__}")
    missing = [c for c in (target, soc, group) if c not in table.columns]
    if missing:
        raise BattlabError(f"the pulse table has no column(s) {missing} (target, SOC in %, physical cell); it has "
                           f"{list(table.columns)[:12]}")
    y = pd.to_numeric(table[target], errors="coerce")
    if y.isna().any():
        row = y.index[y.isna().to_numpy()][0]
        raise BattlabError(f"row {row}, column {target!r}: {table[target][row]!r} is not a SOH (a number)")
    X = featurizer.fit(table).transform(table)
    socv = pd.to_numeric(table[soc], errors="coerce")
    if socv.isna().any():
        row = socv.index[socv.isna().to_numpy()][0]
        raise BattlabError(f"row {row}, column {soc!r}: {table[soc][row]!r} is not a state of charge (%)")
    frame = X.assign(**{soc: socv.astype(float).to_numpy(), target: y.astype(float).to_numpy()})
    frame["__group"] = table[group].astype(str).to_numpy()
    for extra in ("cell_kind",):
        if extra in table.columns and extra != group:
            frame[extra] = table[extra].astype(str).to_numpy()
    frame = frame.reset_index(drop=True)
    spec = inner_split or f"group:{group}"
    if isinstance(spec, Splitter):
        splitter = spec
    else:
        if spec == f"group:{group}" or spec.startswith(f"group:{group}:"):
            spec = "group:__group" + spec[len(f"group:{group}"):]
        splitter = splitter_from_spec(spec, formula_column=None, seed=seed)
    column = getattr(splitter, "by", None)
    if isinstance(splitter, GroupKFoldBy):
        if column not in frame.columns:
            raise BattlabError(f"inner split {inner_split!r}: the pulse table has no column {column!r}")
        n_groups = frame[column].nunique()
        if n_groups < 3:
            raise BattlabError(f"{n_groups} distinct value(s) in {column if column != '__group' else group!r}: "
                               "a SOH model needs at least 3 cells (or SOC levels, kinds) to choose and calibrate "
                               "on rows it has not seen")
        splitter = _UpToKGroupFolds(n_splits=splitter.n_splits, by=column, seed=splitter.seed)
    results, rows = {}, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fs in feature_sets:
            cols = _columns_for(fs, featurizer, soc)
            res = tune(frame, cols, target, split=splitter, models=models, n_trials=max(n_trials, len(models)),
                       storage="sqlite:///:memory:", coverage=coverage, intervals=intervals, seed=seed,
                       progress=False, heartbeat=None, study_name=f"soh-{fs}")
            results[fs] = (res, cols)
            rows.append({"feature_set": fs, "model": res.best_name, "cv_mae": res.metrics["mae_mean"],
                         "n_features": len(cols), "split": res.split})
    comparison = pd.DataFrame(rows).sort_values("cv_mae").reset_index(drop=True)
    best = comparison.loc[0, "feature_set"]
    res, cols = results[best]
    card = {"target": target, "soc_column": soc, "group": group, "feature_set": best, "features": cols,
            "model": {"name": res.best_name, "params": res.best_params}, "inner_split": res.split,
            "cv_mae": float(comparison.loc[0, "cv_mae"]), "intervals": res.card.get("intervals"),
            "n_rows": len(frame), "n_cells": int(frame["__group"].nunique()),
            "soc_range": [float(socv.min()), float(socv.max())], "citations": featurizer.citations()}
    reference = frame[cols].sample(n=min(100, len(frame)), random_state=seed).reset_index(drop=True)
    return SohModel(featurizer, best, cols, res.model, res.intervals, soc, (float(socv.min()), float(socv.max())),
                    (float(y.min()), float(y.max())), comparison, card, reference)


def soh_scores(predictions: pd.DataFrame, *, by: str | None = "cell_kind", truth: str = "SOH") -> pd.DataFrame:
    """Scores of SOH predictions against the measured SOH, per value of ``by`` and over all rows (``all``): rows,
    MAPE (%), MAE, coverage of the intervals and their mean width.

    Example
    -------
    >>> p = pd.DataFrame({"SOH": [1.0, 0.5], "SOH_pred": [0.9, 0.55], "SOH_low": [0.8, 0.5], "SOH_high": [1.0, 0.6]})
    >>> soh_scores(p, by=None).round(3).to_dict("records")
    [{'group': 'all', 'n_rows': 2, 'mape': 10.0, 'mae': 0.075, 'coverage': 1.0, 'interval_width': 0.15}]
    """
    missing = [c for c in (truth, "SOH_pred", "SOH_low", "SOH_high") + ((by,) if by else ()) if c not in predictions]
    if missing:
        raise BattlabError(f"the predictions have no column(s) {missing}")
    parts = ([(str(k), g) for k, g in predictions.groupby(by, sort=True)] if by else []) + [("all", predictions)]
    rows = []
    for name, g in parts:
        y, p = g[truth].to_numpy(dtype=float), g["SOH_pred"].to_numpy(dtype=float)
        lo, hi = g["SOH_low"].to_numpy(dtype=float), g["SOH_high"].to_numpy(dtype=float)
        rows.append({"group": name, "n_rows": len(g), "mape": mape(y, p), "mae": float(np.mean(np.abs(p - y))),
                     "coverage": float(np.mean((y >= lo) & (y <= hi))), "interval_width": float(np.mean(hi - lo))})
    return pd.DataFrame(rows)


def _unseen_cells_mask(part: pd.DataFrame, group: str, seed: int) -> np.ndarray:
    from battlab.split import GroupKFoldBy

    _, test = next(GroupKFoldBy(n_splits=5, by=group, seed=seed).split(part.reset_index(drop=True)))
    mask = np.zeros(len(part), dtype=bool)
    mask[test] = True
    return mask


def generated_rows(train: pd.DataFrame, levels: Any, generator: Any, *, soc: str = "SOC", target: str = "SOH",
                   group: str = "cell_id", seed: int = 0) -> pd.DataFrame:
    """Pulse responses generated at the SOC ``levels`` missing from ``train``, one row per level and training
    sample (a distinct ``group``/``target`` pair: the SOH of a training cell, never a test row's).

    ``generator`` (e.g. :class:`battlab.generate.ConditionalGaussian` with conditions ``[soc, target]``) is cloned
    and fitted on ``train``'s measured rows only; the rows it returns keep the source row's other columns (cell,
    kind, nominal capacity) and are marked ``generated`` (True).

    Example
    -------
    >>> from battlab.generate import ConditionalGaussian
    >>> t = pd.DataFrame({"cell_id": list("aabbcc"), "SOC": [5.0, 15] * 3, "SOH": [0.9, 0.9, 0.8, 0.8, 0.7, 0.7],
    ...                   "U1": [3.50, 3.60, 3.52, 3.61, 3.53, 3.63]})
    >>> g = ConditionalGaussian(conditions=["SOC", "SOH"], outputs=["U1"])
    >>> rows = generated_rows(t, [10], g)
    >>> rows[["cell_id", "SOC", "SOH", "generated"]].to_dict("list")
    {'cell_id': ['a', 'b', 'c'], 'SOC': [10.0, 10.0, 10.0], 'SOH': [0.9, 0.8, 0.7], 'generated': [True, True, True]}
    """
    from sklearn.base import clone

    from battlab.generate import GENERATED

    measured = train
    if GENERATED in train.columns:
        measured = train.loc[~train[GENERATED].fillna(False).astype(bool)]
    fitted = clone(generator).fit(measured)
    sources = measured.drop_duplicates([group, target])
    conditions = pd.concat([sources.assign(**{soc: float(level)}) for level in levels], ignore_index=True)
    return fitted.sample(conditions, n=1, seed=seed)


def evaluate_soh(table: pd.DataFrame, split: str, *, kind: str = "cell_kind", group: str = "cell_id",
                 target: str = "SOH", soc: str = "SOC", seed: int = 0, generator: Any = None,
                 **fit_options: Any) -> pd.DataFrame:
    """Fit on the training rows of ``split`` (:data:`SPLITS`) only, predict its test rows once.

    With ``generator`` (e.g. :class:`battlab.generate.ConditionalGaussian`), the same choice (feature set, model,
    hyperparameters: made on measured training rows only) is also refitted on the training rows plus rows
    generated at the SOC levels of ``table`` missing from the training rows (:func:`generated_rows`, SOH of the
    training cells), and scored on the same test rows: ``SOH_pred_generated`` beside ``SOH_pred``,
    ``n_generated`` the generated rows it trained on (0 where no level is missing, e.g. unseen cells). Rows
    marked ``generated`` in ``table`` are never test rows, and generated rows never enter a test fold.

    Returns the test rows' predictions: ``cell_kind``, ``cell_id``, ``SOC``, ``SOH``, ``SOH_pred``, ``SOH_low``,
    ``SOH_high``, ``soc_extrapolation``, ``feature_set``, ``model``, ``split`` (and ``SOH_pred_generated``,
    ``n_generated`` with a generator).
    """
    from battlab.generate import GENERATED

    if split not in SPLITS:
        raise BattlabError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    table = table.reset_index(drop=True)  # positions: the output carries no index of the input
    marked = (table[GENERATED].fillna(False).astype(bool).to_numpy() if GENERATED in table.columns
              else np.zeros(len(table), dtype=bool))
    inner = {"soc_interpolation": f"group:{soc}", "soc_extrapolation": f"group:{soc}",
             "unseen_cells": f"group:{group}", "unseen_cell_kind": f"group:{kind}"}[split]
    jobs = []
    if split == "unseen_cell_kind":
        for k in table[kind].unique():
            jobs.append((k, table, (table[kind] == k).to_numpy()))
    else:
        for k, part in table.groupby(kind, sort=True):
            if split == "unseen_cells":
                test = _unseen_cells_mask(part, group, seed)
            else:
                train_soc = INTERPOLATION_TRAIN_SOC if split == "soc_interpolation" else EXTRAPOLATION_TRAIN_SOC
                test = ~part[soc].isin(train_soc).to_numpy()
            jobs.append((k, part, test))
    out = []
    for k, part, test in jobs:
        is_marked = marked[part.index.to_numpy()]
        test = np.asarray(test) & ~is_marked  # a generated row is never scored
        train = part.loc[~test]
        measured_train = train.loc[~is_marked[~test]]
        model = fit_soh(measured_train, target=target, soc=soc, group=group, inner_split=inner, seed=seed,
                        **fit_options)
        rows = part.loc[test]
        pred = model.predict(rows)
        frame = pd.DataFrame({"cell_kind": rows[kind].to_numpy(), "cell_id": rows[group].to_numpy(),
                              "SOC": rows[soc].to_numpy(), "SOH": rows[target].to_numpy(),
                              **{c: pred[c].to_numpy() for c in ("SOH_pred", "SOH_low", "SOH_high",
                                                                 "soc_extrapolation")},
                              "feature_set": model.feature_set, "model": model.card["model"]["name"],
                              "split": split, "held_out": k})
        if generator is not None:
            frame["SOH_pred_generated"], frame["n_generated"] = _refit_with_generated(
                model, train, measured_train, rows, part, generator, kind=kind, group=group, target=target, soc=soc,
                seed=seed)
        out.append(frame)
    return pd.concat(out, ignore_index=True)


def _refit_with_generated(model: SohModel, train: pd.DataFrame, measured: pd.DataFrame, rows: pd.DataFrame,
                          part: pd.DataFrame, generator: Any, *, kind: str, group: str, target: str, soc: str,
                          seed: int) -> tuple[np.ndarray, int]:
    """The chosen model refitted on the training rows (with any rows already marked generated) plus rows generated
    at the SOC levels the measured training rows miss (per kind, fitted on measured training rows only); its
    predictions of ``rows`` and the number of rows generated here."""
    from sklearn.base import clone

    from battlab.generate import GENERATED

    pred = model.predict(rows)["SOH_pred"].to_numpy()
    extra = []
    for _, kind_train in measured.groupby(kind, sort=True):
        kind_all = part.loc[part[kind] == kind_train[kind].iloc[0]]
        missing = sorted(set(pd.to_numeric(kind_all[soc]).astype(float)) -
                         set(pd.to_numeric(kind_train[soc]).astype(float)))
        if missing:
            extra.append(generated_rows(kind_train, missing, generator, soc=soc, target=target, group=group,
                                        seed=seed))
    if not extra:
        return pred, 0
    generated = pd.concat(extra, ignore_index=True)
    if not generated[GENERATED].all():  # the generator's contract; checked because a test fold depends on it
        raise BattlabError("the generator returned rows not marked as generated")
    augmented = pd.concat([train.assign(**{GENERATED: False}) if GENERATED not in train.columns else train,
                           generated], ignore_index=True)
    X = model._table(augmented)[model.features].to_numpy(dtype=float)
    y = pd.to_numeric(augmented[target]).to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = clone(model.model).fit(X, y)
    return refit.predict(model._table(rows)[model.features].to_numpy(dtype=float)), len(generated)
