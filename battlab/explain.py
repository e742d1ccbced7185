"""Explain a fitted model with SHAP values: one :class:`Explanation` whatever the model.

:func:`explain` takes a fitted model (usually battlab's pipeline ``SimpleImputer -> [StandardScaler] ->
estimator``) and the raw feature table. It applies the pipeline's preprocessing and explains the final
estimator on the transformed matrix; imputer and scaler map columns 1:1, so every value is reported under
the original feature name, and base value + sum of a row's values equals ``model.predict`` of that row.

Explainer per estimator (the one used is recorded in ``Explanation.explainer``):

============================  =====================================================  =======
estimator                     explainer                                              exact
============================  =====================================================  =======
LightGBM regressor            LightGBM's native TreeSHAP, ``pred_contrib=True``      yes
XGBoost regressor             XGBoost's native TreeSHAP, ``pred_contribs=True``      yes
sklearn RF/ET/HGB/GB/tree     ``shap.TreeExplainer`` (path-dependent TreeSHAP)       yes
linear (ridge, elastic net)   ``coef * (x - mean)`` (interventional linear SHAP)     yes
anything else (SVR, kNN, GP,  permutation SHAP (antithetic) against a k-means         no
MLP, the hurdle model)        summary of the rows (``background`` centres)
============================  =====================================================  =======

The hurdle model's prediction is gated by a classifier (zero or the regressor's value), which a tree
explainer cannot add up; permutation SHAP is additive by construction (values sum to
``f(x) - mean f(background)``), its values are estimates. The additivity error is always measured and
reported (``additivity_error``); exact explainers meet 1e-6.

Speed: TreeSHAP costs rows x trees x leaves x depth^2. LightGBM's unbounded leaf-wise trees grow 10-30
deep, and 1,500 of them take about a minute for 2,000 rows even in LightGBM's native C++ (as long as
``shap.TreeExplainer``). battlab's default booster is therefore depth-bounded (800 trees, depth 6, and
tuning searches depth 3-8), and LightGBM's TreeSHAP runs on every core: 2,000 rows in seconds
(``benchmarks/explain.py``). Rows are never subsampled silently: ``max_rows`` is an explicit argument
and ``n_rows_total`` records how many there were. Interaction values (tree models only) cost about
twice the number of features times more per row, so they are computed on ``interaction_rows`` rows,
recorded in the result.

Deep forests are the expensive case: a 300-tree extra-trees model grown to depth 29 costs about 0.5 s
per row for SHAP values and two minutes per row for interaction values. :func:`treeshap_cost` estimates
these from the trees' shape; with ``max_seconds``, :func:`explain` explains as many rows as the estimate
allows, warns, and records why in ``Explanation.notes``. The estimate is deterministic (no clock), so the
same model and parameters always explain the same rows.

Example
-------
>>> import numpy as np, pandas as pd
>>> from battlab.models import make_model
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
>>> y = 2 * X["a"] + X["b"] * X["c"]
>>> model = make_model("rf", {"n_estimators": 20, "max_depth": 6}, seed=0).fit(X.to_numpy(), y)
>>> info = pd.DataFrame({"feature": ["a", "b", "c"], "family": ["process", "structure", "structure"],
...                      "property": ["a", "b", "c"]})
>>> ex = explain(model, X, info=info, interaction_rows=20)
>>> ex.explainer, ex.additivity_error < 1e-6
('shap.TreeExplainer (path-dependent TreeSHAP)', True)
>>> ex.importance("family").index.tolist()
['process', 'structure']
>>> bool(np.allclose(ex.predictions, model.predict(X.to_numpy())))
True
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError
from battlab.units import quantity_label

__all__ = ["Explanation", "explain", "treeshap_cost", "plot_summary", "plot_importance", "plot_dependence",
           "plot_waterfall", "plot_comparison", "plot_interactions"]

#: Additivity tolerance of exact explainers (base value + sum of values vs the model's prediction).
EXACT_TOLERANCE = 1e-6
GROUPINGS = ("feature", "family", "property")


@dataclass
class Explanation:
    """SHAP values of a model on a table, with what is needed to read them by feature or descriptor family.

    Attributes
    ----------
    values : DataFrame
        One row per sample explained (index: the table's row ids), one column per feature.
    data : DataFrame
        The feature values explained (raw, before imputation/scaling), same shape.
    base_value : float
        Expected prediction the values start from; ``base_value + values.sum(axis=1)`` is the prediction.
    explainer : str
        Which explainer produced the values (see the module table).
    exact : bool
        Exact SHAP values (tree or linear) rather than estimates (permutation).
    additivity_error : float
        Largest ``|base_value + sum(values) - model.predict(x)|`` over the rows, as measured.
    info : DataFrame
        ``feature``, ``family``, ``property`` of every feature (features without info: family "other").
    interactions : DataFrame or None
        Mean ``|SHAP interaction value|`` (features x features; the diagonal holds main effects), tree models.
    interaction_values : ndarray or None
        Per-row interaction values (rows x features x features) of ``interaction_rows`` (not saved).
    """

    values: pd.DataFrame
    data: pd.DataFrame
    base_value: float
    explainer: str
    exact: bool
    additivity_error: float
    info: pd.DataFrame
    target: str = ""
    model_name: str = ""
    labels: list[str] | None = None
    n_rows_total: int = 0
    seconds: float = 0.0
    background: str = ""
    interactions: pd.DataFrame | None = None
    interaction_values: np.ndarray | None = field(default=None, repr=False)
    interaction_rows: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ reading
    @property
    def features(self) -> list[str]:
        return list(self.values.columns)

    @property
    def predictions(self) -> pd.Series:
        """The model's predictions, rebuilt as base value + sum of the values (additivity)."""
        return (self.base_value + self.values.sum(axis=1)).rename("prediction")

    def groups(self, by: str = "family") -> pd.Series:
        """Group label of every feature: itself (``"feature"``), its ``"family"`` or its ``"property"``."""
        if by not in GROUPINGS:
            raise BattlabError(f"group by one of {GROUPINGS}, not {by!r}")
        if by == "feature":
            return pd.Series(self.features, index=self.features)
        return self.info.set_index("feature")[by].reindex(self.features).fillna("other")

    def grouped(self, by: str = "family") -> pd.DataFrame:
        """SHAP values summed per group (rows x groups): a family's value is the sum of its members'.

        Example
        -------
        >>> ex = _toy()
        >>> ex.grouped("family").round(6).iloc[0].to_dict()
        {'structure': 0.5, 'process': 1.0}
        """
        if by == "feature":
            return self.values
        return self.values.T.groupby(self.groups(by), sort=False).sum().T

    def importance(self, by: str = "feature") -> pd.Series:
        """Global importance: mean ``|SHAP value|`` per feature or per group (summed before ``|.|``), largest first."""
        return self.grouped(by).abs().mean().sort_values(ascending=False).rename("mean_abs_shap")

    def row(self, key: Any) -> int:
        """Position of a sample given by its row id (index label), its label, or its position."""
        if key in self.values.index:
            return int(self.values.index.get_loc(key))
        if self.labels is not None and key in self.labels:
            return self.labels.index(key)
        if isinstance(key, (int, np.integer)) and 0 <= key < len(self.values):
            return int(key)
        raise BattlabError(f"no sample {key!r} in the explanation")

    def label(self, key: Any) -> str:
        i = self.row(key)
        return str(self.labels[i]) if self.labels is not None else str(self.values.index[i])

    def compare(self, a: Any, b: Any, by: str = "family") -> pd.Series:
        """Why do samples ``a`` and ``b`` differ: per-group value of b minus a, largest ``|difference|`` first.

        The differences sum to ``prediction(b) - prediction(a)``.

        Example
        -------
        >>> ex = _toy()
        >>> d = ex.compare(0, 1)
        >>> bool(np.isclose(d.sum(), ex.predictions.iloc[1] - ex.predictions.iloc[0]))
        True
        """
        g = self.grouped(by)
        diff = g.iloc[self.row(b)] - g.iloc[self.row(a)]
        return diff.reindex(diff.abs().sort_values(ascending=False).index).rename("difference")

    def to_shap(self, by: str = "feature", rows: Any = None) -> Any:
        """A ``shap.Explanation`` (for shap's plots); grouped values have no feature values to show."""
        import shap

        g = self.grouped(by)
        data = self.data.to_numpy(dtype=float) if by == "feature" else None
        if rows is not None:
            idx = [self.row(r) for r in np.atleast_1d(rows)] if not np.isscalar(rows) else self.row(rows)
            g = g.iloc[idx]
            data = data[idx] if data is not None else None
        values = g.to_numpy(dtype=float)
        base = np.full(values.shape[0], self.base_value) if values.ndim == 2 else self.base_value
        return shap.Explanation(values, base_values=base, data=data, feature_names=list(g.columns if
                                values.ndim == 2 else g.index))

    def top_interactions(self, n: int = 10) -> pd.DataFrame:
        """Strongest two-factor interactions (mean ``|interaction value|``, off-diagonal), largest first."""
        if self.interactions is None:
            raise BattlabError(f"no interaction values ({self.explainer} is not a tree explainer, or "
                               "interaction_rows=0)")
        m = self.interactions.to_numpy()
        i, j = np.triu_indices_from(m, k=1)
        # the matrix splits each interaction in two halves (i,j) and (j,i): report their sum
        out = pd.DataFrame({"feature_a": self.interactions.index[i], "feature_b": self.interactions.columns[j],
                            "mean_abs_interaction": m[i, j] + m[j, i]})
        return out.sort_values("mean_abs_interaction", ascending=False).head(n).reset_index(drop=True)

    def __repr__(self) -> str:
        top = self.importance().index[0] if len(self.features) and len(self.values) else "-"
        return (f"Explanation({self.explainer}{' (exact)' if self.exact else ''}: {len(self.values)} of "
                f"{self.n_rows_total or len(self.values)} rows x {len(self.features)} features of "
                f"{self.target or 'the target'}; top feature {top})")

    def summary(self) -> dict[str, Any]:
        """Key figures for ``save_step`` and logs."""
        fam = self.importance("family")
        return {"explainer": self.explainer, "exact": self.exact, "n_rows": len(self.values),
                "n_rows_total": self.n_rows_total, "n_features": len(self.features),
                "additivity_error": float(self.additivity_error), "seconds": round(self.seconds, 3),
                "base_value": float(self.base_value), "top_feature": self.importance().index[0],
                "top_family": fam.index[0], "interaction_rows": len(self.interaction_rows), "notes": self.notes}

    # ------------------------------------------------------------------ files
    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``shap_values.parquet``, ``features.parquet``, ``explanation.json`` and, with interactions,
        ``interactions.parquet`` (mean ``|interaction|`` matrix); :meth:`load` reads them back."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / k for k in ("shap_values.parquet", "features.parquet", "explanation.json")}
        self.values.to_parquet(paths["shap_values.parquet"])
        self.data.to_parquet(paths["features.parquet"])
        if self.interactions is not None:
            paths["interactions.parquet"] = out / "interactions.parquet"
            self.interactions.to_parquet(paths["interactions.parquet"])
        from battlab.steps import artefact_header

        meta = {**artefact_header("Explanation"),
                "explainer": self.explainer, "exact": self.exact, "base_value": float(self.base_value),
                "additivity_error": float(self.additivity_error), "tolerance": float(self.additivity_error),
                "target": self.target, "model_name": self.model_name, "n_rows_total": self.n_rows_total,
                "seconds": self.seconds, "background": self.background,
                "row_ids": [_plain(r) for r in self.values.index], "labels": self.labels,
                "interaction_rows": [_plain(r) for r in self.interaction_rows], "notes": self.notes,
                "families": dict(zip(self.info["feature"], self.info["family"], strict=True)),
                "properties": dict(zip(self.info["feature"], self.info["property"], strict=True))}
        paths["explanation.json"].write_text(json.dumps(meta, indent=1))
        return paths

    @classmethod
    def load(cls, folder: str | Path) -> Explanation:
        """The explanation saved in ``folder`` by :meth:`save` (no recomputation)."""
        folder = Path(folder)
        if not (folder / "explanation.json").is_file():
            raise BattlabError(f"{folder}: no explanation.json (write one with Explanation.save)")
        from battlab.steps import check_artefact

        meta = json.loads((folder / "explanation.json").read_text())
        check_artefact(meta, "Explanation", folder / "explanation.json")
        values = pd.read_parquet(folder / "shap_values.parquet")
        inter = folder / "interactions.parquet"
        info = pd.DataFrame({"feature": list(meta["families"]), "family": list(meta["families"].values()),
                             "property": [meta["properties"][f] for f in meta["families"]]})
        return cls(values=values, data=pd.read_parquet(folder / "features.parquet"),
                   base_value=meta["base_value"], explainer=meta["explainer"], exact=meta["exact"],
                   additivity_error=meta["additivity_error"], info=info, target=meta["target"],
                   model_name=meta["model_name"], labels=meta["labels"], n_rows_total=meta["n_rows_total"],
                   seconds=meta["seconds"], background=meta["background"],
                   interactions=pd.read_parquet(inter) if inter.is_file() else None,
                   interaction_rows=meta["interaction_rows"], notes=meta.get("notes", []))


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


# ---------------------------------------------------------------------- computing


def _split_pipeline(model: Any) -> tuple[Any, Any]:
    """(preprocessing or None, final estimator) of a scikit-learn Pipeline, else (None, model)."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        pre = model[:-1] if len(model.steps) > 1 else None
        return pre, model.steps[-1][1]
    return None, model


def explainer_kind(estimator: Any) -> str:
    """Which explainer :func:`explain` uses for a (final) estimator: ``lightgbm``, ``xgboost``, ``tree``,
    ``linear`` or ``permutation``.

    Example
    -------
    >>> from sklearn.svm import SVR
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> explainer_kind(RandomForestRegressor()), explainer_kind(SVR())
    ('tree', 'permutation')
    """
    from sklearn.base import is_regressor
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingRegressor,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.linear_model._base import LinearModel
    from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

    module = type(estimator).__module__
    if module.startswith("lightgbm") and is_regressor(estimator):
        return "lightgbm"
    if module.startswith("xgboost") and is_regressor(estimator):
        return "xgboost"
    if isinstance(estimator, (RandomForestRegressor, ExtraTreesRegressor, GradientBoostingRegressor,
                              HistGradientBoostingRegressor, DecisionTreeRegressor, ExtraTreeRegressor)):
        return "tree"
    if isinstance(estimator, LinearModel) and np.ndim(getattr(estimator, "coef_", np.zeros(1))) == 1:
        return "linear"
    return "permutation"  # kernels, neighbours, GP, MLP, the classifier-gated hurdle model, ...


_EXPLAINER_NAMES = {
    "lightgbm": "LightGBM native TreeSHAP (pred_contrib)",
    "xgboost": "XGBoost native TreeSHAP (pred_contribs)",
    "tree": "shap.TreeExplainer (path-dependent TreeSHAP)",
    "linear": "linear SHAP: coef x (x - mean of the rows)",
    "permutation": "permutation SHAP (antithetic), k-means background",
}


# shap's path-dependent TreeSHAP visits every leaf of every tree with O(depth) work on each node of its path:
# about sum(depth(leaf)^2) operations per row. Interaction values repeat that for each feature, conditioned on
# and off. Seconds per operation measured with shap 0.51 on the 2-core reference machine.
_SECONDS_PER_UNIT = 4e-9
_INTERACTION_PER_FEATURE = 1.8


def treeshap_cost(est: Any, explainer: Any = None) -> dict[str, float]:
    """Estimated seconds per row of exact TreeSHAP values and of interaction values for tree model ``est``.

    Read from the trees' shape (sum over leaves of depth squared, features split on), not from a clock.
    LightGBM's native SHAP values run on every core; its interaction values go through shap.
    ``explainer``: the model's ``shap.TreeExplainer`` if already built (building one reads every tree).

    Example
    -------
    >>> import numpy as np
    >>> from sklearn.ensemble import ExtraTreesRegressor
    >>> X = np.random.default_rng(0).normal(size=(500, 4))
    >>> cost = treeshap_cost(ExtraTreesRegressor(50, random_state=0).fit(X, X[:, 0]))
    >>> cost["values"] < cost["interactions"]
    True
    """
    import shap

    trees = (explainer or shap.TreeExplainer(est)).model
    left, right = np.asarray(trees.children_left), np.asarray(trees.children_right)
    features = np.asarray(trees.features)
    units = np.zeros(left.shape[0])  # per tree: sum over leaves of depth^2
    tree, node, depth = np.arange(left.shape[0]), np.zeros(left.shape[0], dtype=int), 0
    while len(tree):  # level by level through every tree at once
        lc, rc = left[tree, node], right[tree, node]
        leaf = lc < 0
        np.add.at(units, tree[leaf], max(depth, 1) ** 2)
        tree, node = np.concatenate([tree[~leaf]] * 2), np.concatenate([lc[~leaf], rc[~leaf]])
        depth += 1
    used = np.array([len(np.unique(f[lc >= 0])) for f, lc in zip(features, left, strict=True)])
    per_row = float(units.sum()) * _SECONDS_PER_UNIT
    native = type(est).__module__.startswith(("lightgbm", "xgboost"))
    return {"values": per_row / (os.cpu_count() or 1) if native else per_row,
            "interactions": float(units @ np.maximum(used, 1)) * _SECONDS_PER_UNIT * _INTERACTION_PER_FEATURE,
            "trees": int(left.shape[0]), "max_depth": depth - 1}


def _chunks(n: int, seconds: float) -> list[np.ndarray]:
    """Row chunks of about 2 s of work (one chunk when the whole job is short)."""
    return np.array_split(np.arange(n), max(1, min(n, int(seconds / 2))))


def _tree_values(kind: str, est: Any, Xt: np.ndarray, seconds: float = 0.0,
                 explainer: Any = None) -> tuple[np.ndarray, float]:
    if kind == "lightgbm":
        # exact TreeSHAP in LightGBM's C++, on every core (models are fitted single-threaded); last column: base
        out = est.booster_.predict(Xt, pred_contrib=True, num_threads=os.cpu_count() or 1)
        return out[:, :-1], float(out[0, -1])
    if kind == "xgboost":
        import xgboost

        out = est.get_booster().predict(xgboost.DMatrix(Xt), pred_contribs=True)
        return out[:, :-1].astype(float), float(out[0, -1])
    import shap
    from tqdm.auto import tqdm

    explainer = explainer or shap.TreeExplainer(est)
    chunks = _chunks(len(Xt), seconds)
    # additivity is checked below against the pipeline, with battlab's tolerance and message
    values = np.vstack([np.asarray(explainer.shap_values(Xt[c], check_additivity=False), dtype=float)
                        for c in tqdm(chunks, desc="TreeSHAP", unit="chunk", disable=len(chunks) == 1)])
    return values, float(np.ravel(explainer.expected_value)[0])


def _interaction_values(kind: str, est: Any, Xt: np.ndarray, seconds: float = 0.0,
                        explainer: Any = None) -> np.ndarray:
    if kind == "xgboost":
        import xgboost

        return est.get_booster().predict(xgboost.DMatrix(Xt), pred_interactions=True)[:, :-1, :-1].astype(float)
    import shap
    from tqdm.auto import tqdm

    # LightGBM has no native interaction values: shap's TreeExplainer reads its trees
    explainer = explainer or shap.TreeExplainer(est)
    chunks = _chunks(len(Xt), seconds)
    return np.concatenate([np.asarray(explainer.shap_interaction_values(Xt[c]), dtype=float)
                           for c in tqdm(chunks, desc="interaction values", unit="chunk", disable=len(chunks) == 1)])


def _permutation_values(est: Any, Xt: np.ndarray, background: int, seed: int, n_permutations: int
                        ) -> tuple[np.ndarray, float, str]:
    """Permutation SHAP against k-means centres: for each permutation and its reverse (antithetic), add the
    row's features one at a time and credit each with the change of the mean prediction over the centres.

    Each permutation telescopes to ``f(x) - mean f(centres)``, so the values add up exactly. Written here in
    numpy, batched over rows, rather than with shap's PermutationExplainer, whose numba compilation alone
    takes 15-30 s per process on this stack.
    """
    from sklearn.cluster import KMeans

    n, p = Xt.shape
    k = min(background, n)
    centres = KMeans(k, n_init=3, random_state=seed).fit(Xt).cluster_centers_ if k < n else Xt.copy()
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(p) for _ in range(n_permutations)]
    perms += [q[::-1] for q in perms]
    values = np.zeros((n, p))
    chunk = max(1, 4_000_000 // ((p + 1) * k * p))  # rows per batch: about 32 MB of masked inputs
    for q in perms:
        steps = np.zeros((p + 1, p), dtype=bool)  # step s takes features q[:s] from the row, the rest from a centre
        for s in range(1, p + 1):
            steps[s:, q[s - 1]] = True
        for i in range(0, n, chunk):
            rows = Xt[i:i + chunk]
            z = np.where(steps[None, :, None, :], rows[:, None, None, :], centres[None, None, :, :])
            mean_pred = est.predict(z.reshape(-1, p)).reshape(len(rows), p + 1, k).mean(axis=2)
            values[i:i + chunk, q] += np.diff(mean_pred, axis=1)
    values /= len(perms)
    base = float(np.mean(est.predict(centres)))
    return values, base, f"{k} k-means centres of the rows (unweighted), {len(perms)} permutations per row"


def explain(
    model: Any,
    X: pd.DataFrame,
    *,
    info: pd.DataFrame | None = None,
    target: str = "",
    labels: Any = None,
    max_rows: int | None = None,
    interaction_rows: int = 0,
    background: int = 10,
    n_permutations: int = 1,
    seed: int = 0,
    model_name: str = "",
    max_seconds: float | None = None,
) -> Explanation:
    """SHAP values of ``model`` on the rows of ``X`` (its input columns, in the model's order).

    Parameters
    ----------
    model
        A fitted regressor, or a scikit-learn Pipeline whose last step is one (battlab's models).
    X : DataFrame
        Raw feature columns (NaN allowed: the pipeline imputes them). Its index gives the row ids.
    info : DataFrame, optional
        Feature info (``feature``, ``family``, ``property``) from :func:`battlab.featurize.featurize_table`.
    target, labels, model_name
        Recorded with the explanation; ``labels`` (e.g. formulas) name the samples in plots and widgets.
    max_rows : int, optional
        Explain a random subset of this many rows (seeded, recorded as ``n_rows_total``); default all.
    interaction_rows : int
        Rows (evenly spaced among those explained) on which tree models also get interaction values.
    background, n_permutations
        Permutation explainer only: number of k-means centres absent features are drawn from, and of
        random permutations per row (each also run reversed); the model is evaluated
        ``2 * n_permutations * (n_features + 1) * background`` times per row.
    seed : int
        Seeds the row subset, k-means and the permutations.
    max_seconds : float, optional
        Budget for tree models, in seconds as estimated by :func:`treeshap_cost` (deterministic). When all
        rows and ``interaction_rows`` would exceed it, interaction values get at most a quarter of it and
        SHAP values a seeded random subset of the rows that fits the rest; a warning and
        ``Explanation.notes`` say so. Default: no budget.

    Returns
    -------
    Explanation

    Raises
    ------
    BattlabError
        ``X`` does not have as many columns as the model was fitted on, or no rows.
    """
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(np.asarray(X), columns=[f"x{i}" for i in range(np.shape(X)[1])])
    n_in = getattr(model, "n_features_in_", X.shape[1])
    if X.shape[1] != n_in:
        raise BattlabError(f"the model takes {n_in} features, the table has {X.shape[1]} columns")
    if len(X) == 0:
        raise BattlabError("no rows to explain")
    labels = None if labels is None else [str(x) for x in labels]
    n_total = len(X)
    pre, est = _split_pipeline(model)
    kind = explainer_kind(est)
    n_rows = len(X) if max_rows is None else min(max_rows, len(X))
    n_inter = min(interaction_rows, n_rows) if kind in ("lightgbm", "xgboost", "tree") else 0
    cost, notes = {"values": 0.0, "interactions": 0.0}, []
    # shap's reading of the trees (0.5 s for the default booster), built once and shared; LightGBM's native
    # SHAP values need none, so it is read for LightGBM only to estimate a budget's cost
    tree_explainer = None
    if kind == "tree" or (kind == "lightgbm" and max_seconds is not None):
        import shap

        tree_explainer = shap.TreeExplainer(est)
        cost = treeshap_cost(est, tree_explainer)
        if max_seconds is not None:
            n_rows, n_inter, notes = _fit_budget(cost, n_rows, n_inter, max_seconds)
    if n_rows < n_total:
        keep = np.sort(np.random.default_rng(seed).choice(n_total, size=n_rows, replace=False))
        X = X.iloc[keep]
        labels = None if labels is None else [labels[i] for i in keep]
    for note in notes:
        warnings.warn(note, stacklevel=2)
    t0 = time.perf_counter()
    raw = X.to_numpy(dtype=float)
    Xt = np.asarray(pre.transform(raw) if pre is not None else raw, dtype=float)
    if Xt.shape[1] != X.shape[1]:  # keep_empty_features=True keeps columns 1:1; anything else can't be named
        raise BattlabError("the pipeline's preprocessing changes the number of columns; cannot map values "
                           "back to features")
    bg_note = ""
    if kind in ("lightgbm", "xgboost", "tree"):
        values, base = _tree_values(kind, est, Xt, cost["values"] * len(Xt), tree_explainer)
        bg_note = "training data (tree covers)"
    elif kind == "linear":
        mean = Xt.mean(axis=0)
        values = (Xt - mean) * np.asarray(est.coef_, dtype=float)
        base = float(np.asarray(est.intercept_).ravel()[0] + mean @ est.coef_)
        bg_note = "mean of the rows explained"
    else:
        values, base, bg_note = _permutation_values(est, Xt, background, seed, n_permutations)
    seconds = time.perf_counter() - t0
    exact = kind != "permutation"
    error = float(np.max(np.abs(base + values.sum(axis=1) - model.predict(raw))))
    if exact and error > EXACT_TOLERANCE:
        warnings.warn(f"SHAP values of {_EXPLAINER_NAMES[kind]} miss the prediction by {error:.2g} "
                      f"(> {EXACT_TOLERANCE:g})", stacklevel=2)

    cols = list(X.columns)
    ex = Explanation(values=pd.DataFrame(values, index=X.index, columns=cols), data=X.copy(), base_value=base,
                     explainer=_EXPLAINER_NAMES[kind], exact=exact, additivity_error=error,
                     info=_feature_info(cols, info), target=target, labels=labels, n_rows_total=n_total,
                     seconds=seconds, background=bg_note,
                     model_name=model_name or type(est).__name__, notes=notes)
    if n_inter:
        pos = np.unique(np.linspace(0, len(X) - 1, n_inter).round().astype(int))
        iv = _interaction_values(kind, est, Xt[pos], cost["interactions"] * len(pos), tree_explainer)
        ex.interaction_values = iv
        ex.interaction_rows = list(X.index[pos])
        ex.interactions = pd.DataFrame(np.abs(iv).mean(axis=0), index=cols, columns=cols)
    return ex


def _fit_budget(cost: dict[str, float], n_rows: int, n_inter: int, max_seconds: float
                ) -> tuple[int, int, list[str]]:
    """Rows for SHAP values and for interaction values that fit ``max_seconds`` of estimated work."""
    notes = []
    shape = f"{cost['trees']} trees up to depth {cost['max_depth']}"
    if n_inter and n_inter * cost["interactions"] > max_seconds / 4:
        fit = int(max_seconds / 4 // cost["interactions"])
        notes.append(f"interaction values on {fit} of {n_inter} rows: they cost about {cost['interactions']:.3g} s "
                     f"per row for this model ({shape}); budget max_seconds={max_seconds:g}")
        n_inter = fit
    left = max_seconds - n_inter * cost["interactions"]
    if n_rows * cost["values"] > left:
        fit = max(1, int(left // cost["values"]))
        notes.append(f"SHAP values of a random {fit} of {n_rows} rows: exact TreeSHAP costs about "
                     f"{cost['values']:.3g} s per row for this model ({shape}); budget max_seconds={max_seconds:g}. "
                     "A depth-bounded model (battlab's default booster) explains every row in seconds.")
        n_rows, n_inter = fit, min(n_inter, fit)
    return n_rows, n_inter, notes


def _feature_info(features: list[str], info: pd.DataFrame | None) -> pd.DataFrame:
    base = pd.DataFrame({"feature": features})
    if info is None:
        return base.assign(family="other", property=features)
    cols = [c for c in ("feature", "family", "property") if c in info]
    out = base.merge(info[cols].drop_duplicates("feature"), on="feature", how="left")
    out["family"] = out["family"].fillna("other") if "family" in out else "other"
    out["property"] = out["property"].fillna(out["feature"]) if "property" in out else out["feature"]
    return out[["feature", "family", "property"]]


# ---------------------------------------------------------------------- plots (matplotlib; return the Figure)


def plot_summary(ex: Explanation, max_display: int = 15):
    """shap's beeswarm: each dot a sample, position its SHAP value, colour its feature value."""
    import matplotlib.pyplot as plt
    import shap

    fig = plt.figure()
    shap.plots.beeswarm(ex.to_shap(), max_display=max_display, show=False)
    fig = plt.gcf()
    fig.axes[0].set_title(f"SHAP values for {quantity_label(ex.target) if ex.target else 'the prediction'} "
                          f"({ex.explainer})", fontsize=9)
    return fig


def plot_importance(ex: Explanation, by: str = "family", max_display: int = 15):
    """Bar chart of mean ``|SHAP|`` per feature, family or property (group values summed before ``|.|``)."""
    import matplotlib.pyplot as plt

    imp = ex.importance(by).head(max_display)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(imp) + 1.2))
    ax.barh(imp.index.astype(str), imp.to_numpy(), color="#1f77b4")
    ax.set(xlabel=f"mean |SHAP value| ({quantity_label(ex.target) if ex.target else 'prediction'})",
           title=f"Importance by {by}")
    fig.tight_layout()
    return fig


def plot_dependence(ex: Explanation, feature: str, by: str = "feature", color: str | None = "auto"):
    """SHAP value of a feature (or the summed value of a group) against the feature's value.

    For a group, the x axis is its most important member. ``color="auto"`` colours by the feature it
    interacts with most when interaction values exist.
    """
    import matplotlib.pyplot as plt

    if by == "feature":
        x_name, y = feature, ex.values[feature]
    else:
        members = ex.groups(by)
        members = members.index[members == feature]
        if len(members) == 0:
            raise BattlabError(f"no {by} {feature!r}")
        x_name = ex.values[members].abs().mean().idxmax()
        y = ex.grouped(by)[feature]
    if color == "auto":
        color = None
        if ex.interactions is not None:
            row = ex.interactions[x_name].drop(x_name)
            color = row.idxmax()
    fig, ax = plt.subplots(figsize=(6, 4))
    if color:
        sc = ax.scatter(ex.data[x_name], y, s=10, c=ex.data[color], cmap="coolwarm")
        fig.colorbar(sc, ax=ax, label=color)
    else:
        ax.scatter(ex.data[x_name], y, s=10, color="#1f77b4")
    ax.axhline(0, color="grey", lw=0.5)
    ylabel = f"SHAP value of {feature}" if by == "feature" else f"summed SHAP of {by} '{feature}'"
    ax.set(xlabel=x_name, ylabel=ylabel, title="Dependence")
    fig.tight_layout()
    return fig


def plot_waterfall(ex: Explanation, sample: Any, by: str = "feature", max_display: int = 12):
    """shap's waterfall for one sample: from the base value to its prediction, feature by feature."""
    import matplotlib.pyplot as plt
    import shap

    fig = plt.figure()
    shap.plots.waterfall(ex.to_shap(by, rows=sample), max_display=max_display, show=False)
    fig = plt.gcf()
    fig.axes[0].set_title(f"{ex.label(sample)}: why this prediction", fontsize=9)
    return fig


def plot_comparison(ex: Explanation, a: Any, b: Any, by: str = "family", max_display: int = 12):
    """Why do two samples differ: per-group SHAP differences (b - a), which sum to the prediction difference."""
    import matplotlib.pyplot as plt

    diff = ex.compare(a, b, by)
    shown = diff.head(max_display)
    if len(diff) > max_display:
        shown = pd.concat([shown, pd.Series({f"{len(diff) - max_display} others": diff.iloc[max_display:].sum()})])
    shown = shown[::-1]
    pa, pb = ex.predictions.iloc[ex.row(a)], ex.predictions.iloc[ex.row(b)]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.4))
    ax.barh(shown.index.astype(str), shown.to_numpy(), color=np.where(shown.to_numpy() > 0, "#d62728", "#1f77b4"))
    ax.axvline(0, color="grey", lw=0.5)
    ax.set(xlabel=f"SHAP difference ({ex.label(b)} minus {ex.label(a)})",
           title=f"{ex.label(a)}: {pa:.3g}  ->  {ex.label(b)}: {pb:.3g}  (difference {pb - pa:+.3g})")
    fig.tight_layout()
    return fig


def plot_interactions(ex: Explanation, max_display: int = 12):
    """Heat map of mean ``|interaction value|`` among the features with the strongest interactions."""
    import matplotlib.pyplot as plt

    if ex.interactions is None:
        raise BattlabError("no interaction values: explain a tree model with interaction_rows > 0")
    m = ex.interactions
    off = m.to_numpy() - np.diag(np.diag(m.to_numpy()))
    top = m.index[np.argsort(off.sum(axis=0))[::-1][:max_display]]
    sub = m.loc[top, top]
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(sub.to_numpy(), cmap="viridis")
    ax.set_xticks(range(len(top)), [t.replace("MagpieData ", "") for t in top], rotation=90, fontsize=7)
    ax.set_yticks(range(len(top)), [t.replace("MagpieData ", "") for t in top], fontsize=7)
    fig.colorbar(im, ax=ax, label="mean |SHAP interaction value|")
    ax.set_title(f"Two-factor interactions ({len(ex.interaction_rows)} rows)")
    fig.tight_layout()
    return fig


def _toy() -> Explanation:
    """A two-row explanation for the docstring examples."""
    v = pd.DataFrame([[0.5, 0.5, 0.5], [-0.5, 0.2, 0.1]], columns=["a", "b", "c"])
    info = pd.DataFrame({"feature": ["a", "b", "c"], "family": ["structure", "process", "process"],
                         "property": ["a", "b", "c"]})
    return Explanation(values=v, data=v.copy(), base_value=1.0, explainer="toy", exact=True,
                       additivity_error=0.0, info=info)
