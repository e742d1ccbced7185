"""The model zoo: scikit-learn pipelines with optuna search spaces.

Every model is ``SimpleImputer(median) -> [StandardScaler] -> estimator`` so that NaN features (an
element without HHI data, a failed descriptor) never stop a fit, and distance- or gradient-based
models see scaled inputs. Each entry has a family (for the comparison table), default parameters and
a search space written as an optuna ``suggest`` function.

Example
-------
>>> pipe = make_model("rf", {"n_estimators": 50}, seed=0)
>>> [name for name, _ in pipe.steps]
['impute', 'model']
>>> sorted(MODELS)[:4]
['dummy', 'elasticnet', 'et', 'gp']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sklearn.dummy import DummyRegressor
from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.impute import SimpleImputer
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import ElasticNet, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from battlab.errors import BattlabError


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo: how to build it and where to search its parameters."""

    name: str
    family: str
    build: Callable[[dict[str, Any], int], Any]
    space: Callable[[Any], dict[str, Any]]
    scale: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


class CappedKNeighborsRegressor(KNeighborsRegressor):
    """k nearest neighbours with k capped at the number of training rows, so that a search space built for
    tables of thousands (k up to 30) also fits the folds of a 14-row process table (``n_neighbors_``: the k used).

    >>> import numpy as np
    >>> knn = CappedKNeighborsRegressor(n_neighbors=30).fit(np.arange(4.0).reshape(-1, 1), [1.0, 2.0, 3.0, 4.0])
    >>> knn.n_neighbors_, float(knn.predict([[0.0]])[0])
    (4, 2.5)
    """

    def fit(self, X, y):  # noqa: D102
        super().fit(X, y)
        self.n_neighbors_ = min(self.n_neighbors, self.n_samples_fit_)
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):  # noqa: D102
        return super().kneighbors(X, n_neighbors or self.n_neighbors_, return_distance)


class OneThreadHGBRegressor(HistGradientBoostingRegressor):
    """scikit-learn's ``HistGradientBoostingRegressor`` that fits and predicts on one OpenMP thread.

    Its OpenMP threads meet at barriers many times per boosting iteration; when another process holds a
    core, they wait for the thread that lost its core. On the 2 cores of the development machine
    (``benchmarks/threads.py``, 1,700 rows, 127 features, 1,000 iterations) a fit took 29.3 s on both threads
    beside a busy process against 9.5 s on one, and 8.6 s against 9.6 s on an idle machine; in the test suite,
    beside a benchmark, one tuning trial took 9.5 min. The predictions are the same to the last digit, so the
    tuning step's results do not depend on the load, and now neither does its time much. LightGBM runs with
    ``n_jobs=1`` for the same reason.

    >>> import numpy as np
    >>> X = np.arange(40.0).reshape(-1, 1)
    >>> m = OneThreadHGBRegressor(max_iter=20, random_state=0).fit(X, X[:, 0] ** 2)
    >>> bool(np.allclose(m.predict(X), HistGradientBoostingRegressor(max_iter=20, random_state=0)
    ...      .fit(X, X[:, 0] ** 2).predict(X)))
    True
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> OneThreadHGBRegressor:  # noqa: D102
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="openmp"):
            return super().fit(X, y, sample_weight=sample_weight)

    def predict(self, X: Any) -> Any:  # noqa: D102
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="openmp"):
            return super().predict(X)


def _lgbm(p: dict[str, Any], seed: int) -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(random_state=seed, n_jobs=1, verbose=-1, **p)


def _hurdle(p: dict[str, Any], seed: int) -> Any:
    """Zero-inflated targets (band gaps: half the table are metals at exactly 0): a classifier decides
    zero or not, a regressor trained on the non-zero rows gives the value (scikit-lego)."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklego.meta import ZeroInflatedRegressor

    shared = {k: v for k, v in p.items() if k != "objective"}
    return ZeroInflatedRegressor(
        classifier=LGBMClassifier(random_state=seed, n_jobs=1, verbose=-1, **shared),
        regressor=LGBMRegressor(random_state=seed, n_jobs=1, verbose=-1, objective=p.get("objective", "l1"),
                                **shared))


def _boosting_space(prefix: str) -> Callable[[Any], dict[str, Any]]:
    return lambda t: {
        "n_estimators": t.suggest_int(f"{prefix}_n_estimators", 200, 1500, step=100),
        "learning_rate": t.suggest_float(f"{prefix}_learning_rate", 0.01, 0.2, log=True),
        "max_depth": t.suggest_int(f"{prefix}_max_depth", 3, 8),
        "num_leaves": t.suggest_int(f"{prefix}_num_leaves", 8, 128, log=True),  # at most 2**max_depth used
        "min_child_samples": t.suggest_int(f"{prefix}_min_child_samples", 2, 50, log=True),
        "subsample": t.suggest_float(f"{prefix}_subsample", 0.5, 1.0),
        "subsample_freq": 1,
        "colsample_bytree": t.suggest_float(f"{prefix}_colsample_bytree", 0.2, 1.0),
        "reg_lambda": t.suggest_float(f"{prefix}_reg_lambda", 1e-6, 10.0, log=True),
        "objective": t.suggest_categorical(f"{prefix}_objective", ["l2", "l1", "huber"]),
    }


# Depth-bounded trees: exact TreeSHAP costs rows x trees x leaves x depth^2, and LightGBM's unbounded
# leaf-wise trees grow 10-30 deep. Depth 6 explains 2,000 rows ~20x faster than unbounded trees for a
# 3% higher MAE on the embedded set (benchmarks/explain.py --accuracy); tuning searches depth 3-8.
# Forests grown to full depth (about 30 levels here) cost 0.6 s per row to explain; depth 16 halves that and
# changes CV MAE by under 0.3% on the embedded set (extra trees 0.1153 vs 0.1150 eV/atom, chemical-system split).
_FOREST_DEFAULTS = {"n_estimators": 300, "max_depth": 16}
_BOOSTING_DEFAULTS = {"n_estimators": 800, "learning_rate": 0.05, "max_depth": 6, "num_leaves": 48,
                      "colsample_bytree": 0.5, "subsample": 0.8, "subsample_freq": 1, "objective": "l1"}


MODELS: dict[str, ModelSpec] = {m.name: m for m in [
    ModelSpec(
        "dummy", "baseline", lambda p, s: DummyRegressor(**p), lambda t: {}, description="predicts the train mean"),
    ModelSpec(
        "ridge", "linear", lambda p, s: Ridge(**p), scale=True,
        space=lambda t: {"alpha": t.suggest_float("ridge_alpha", 1e-4, 1e3, log=True)}),
    ModelSpec(
        "elasticnet", "linear", lambda p, s: ElasticNet(random_state=s, max_iter=5000, **p), scale=True,
        space=lambda t: {"alpha": t.suggest_float("enet_alpha", 1e-5, 1.0, log=True),
                         "l1_ratio": t.suggest_float("enet_l1_ratio", 0.05, 1.0)}),
    ModelSpec(
        "rf", "tree ensemble", lambda p, s: RandomForestRegressor(random_state=s, n_jobs=-1, **p),
        defaults=_FOREST_DEFAULTS,
        space=lambda t: {"n_estimators": t.suggest_int("rf_n_estimators", 100, 500, step=50),
                         "max_depth": t.suggest_int("rf_max_depth", 6, 24),
                         "max_features": t.suggest_float("rf_max_features", 0.1, 1.0),
                         "min_samples_leaf": t.suggest_int("rf_min_samples_leaf", 1, 8)}),
    ModelSpec(
        "et", "tree ensemble", lambda p, s: ExtraTreesRegressor(random_state=s, n_jobs=-1, **p),
        defaults=_FOREST_DEFAULTS,
        space=lambda t: {"n_estimators": t.suggest_int("et_n_estimators", 100, 500, step=50),
                         "max_depth": t.suggest_int("et_max_depth", 6, 24),
                         "max_features": t.suggest_float("et_max_features", 0.1, 1.0),
                         "min_samples_leaf": t.suggest_int("et_min_samples_leaf", 1, 8)}),
    ModelSpec(
        "hgb", "gradient boosting", lambda p, s: OneThreadHGBRegressor(random_state=s, **p),
        space=lambda t: {"learning_rate": t.suggest_float("hgb_learning_rate", 0.01, 0.3, log=True),
                         "max_iter": t.suggest_int("hgb_max_iter", 100, 1000, step=100),
                         "max_leaf_nodes": t.suggest_int("hgb_max_leaf_nodes", 8, 128, log=True),
                         "min_samples_leaf": t.suggest_int("hgb_min_samples_leaf", 2, 50, log=True),
                         "l2_regularization": t.suggest_float("hgb_l2", 1e-6, 10.0, log=True)}),
    ModelSpec("lgbm", "gradient boosting", _lgbm, defaults=_BOOSTING_DEFAULTS, space=_boosting_space("lgbm")),
    ModelSpec("hurdle", "zero-inflated boosting", _hurdle, defaults=_BOOSTING_DEFAULTS, space=_boosting_space("hurdle"),
              description="zero or not (classifier), then how much (regressor): for targets with many exact zeros"),
    ModelSpec(
        "svr", "kernel", lambda p, s: SVR(**p), scale=True,
        space=lambda t: {"C": t.suggest_float("svr_C", 1e-2, 1e3, log=True),
                         "epsilon": t.suggest_float("svr_epsilon", 1e-3, 1.0, log=True),
                         "gamma": t.suggest_float("svr_gamma", 1e-4, 1.0, log=True)}),
    ModelSpec(
        "krr", "kernel", lambda p, s: KernelRidge(kernel="rbf", **p), scale=True,
        space=lambda t: {"alpha": t.suggest_float("krr_alpha", 1e-4, 10.0, log=True),
                         "gamma": t.suggest_float("krr_gamma", 1e-4, 1.0, log=True)}),
    ModelSpec(
        "knn", "neighbours", lambda p, s: CappedKNeighborsRegressor(**p), scale=True,
        space=lambda t: {"n_neighbors": t.suggest_int("knn_n_neighbors", 1, 30),
                         "weights": t.suggest_categorical("knn_weights", ["uniform", "distance"])}),
    ModelSpec(
        "gp", "gaussian process",
        lambda p, s: GaussianProcessRegressor(ConstantKernel() * RBF(p.get("length_scale", 10.0)) + WhiteKernel(),
                                              normalize_y=True, random_state=s), scale=True,
        space=lambda t: {"length_scale": t.suggest_float("gp_length_scale", 0.1, 100.0, log=True)},
        description="RBF kernel with fitted noise; cubic in rows: for tables of a few thousand rows"),
    ModelSpec(
        "mlp", "neural network",
        lambda p, s: MLPRegressor(random_state=s, max_iter=500, early_stopping=True, **p),
        scale=True,
        space=lambda t: {"hidden_layer_sizes": [t.suggest_int("mlp_width", 32, 256, log=True)]
                         * t.suggest_int("mlp_depth", 1, 3),
                         "alpha": t.suggest_float("mlp_alpha", 1e-6, 1e-1, log=True),
                         "learning_rate_init": t.suggest_float("mlp_lr", 1e-4, 1e-2, log=True)}),
]}

#: Models tuned by default: fast enough for a notebook, diverse enough to compare families.
DEFAULT_MODELS = ("lgbm", "hgb", "rf", "et", "svr", "knn", "ridge")


def default_models(y: Any) -> tuple[str, ...]:
    """:data:`DEFAULT_MODELS`, after the zero-inflated ``hurdle`` model when at least 10% of targets are 0.

    Example
    -------
    >>> default_models([0, 0, 1.2, 0.5])[0]
    'hurdle'
    """
    import numpy as np

    zeros = float(np.mean(np.asarray(y, dtype=float) == 0)) if len(y) else 0.0
    return (("hurdle",) if zeros >= 0.1 else ()) + DEFAULT_MODELS  # first: its defaults are tried first


def make_model(name: str, params: dict[str, Any] | None = None, seed: int = 0) -> Pipeline:
    """A fresh pipeline for model ``name`` with ``params`` (the spec's defaults otherwise)."""
    if name not in MODELS:
        raise BattlabError(f"unknown model {name!r}; models are {sorted(MODELS)}")
    spec = MODELS[name]
    params = dict(spec.defaults if params is None else params)
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if spec.scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("model", spec.build(params, seed)))
    return Pipeline(steps)


def suggest(name: str, trial: Any) -> dict[str, Any]:
    """Sample model ``name``'s parameters from its search space (optuna trial)."""
    return MODELS[name].space(trial)
