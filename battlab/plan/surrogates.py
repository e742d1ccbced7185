"""Models that give a mean and an uncertainty for every candidate, and draws from their posterior.

Each surrogate is a scikit-learn estimator (``__init__`` stores parameters, ``fit`` returns ``self``, learned
state ends in ``_``) with three extras a campaign uses:

- ``predict(X, return_std=True, groups=None)`` -> mean, std;
- ``sample(X, n_samples, rng, groups=None)`` -> ``(n_samples, n)`` joint draws (Thompson sampling);
- ``condition(X, y, groups=None)`` -> a copy refitted on new data *keeping* hyperparameters and calibration
  (kriging believer batches: refit with the predicted value of the designs already in the batch).

Surrogates:

- :class:`TreeEnsemble` — random forest / extra trees (scikit-learn); the spread of the trees is the
  uncertainty, a draw is one tree.
- :class:`Bagged` — bootstrap copies of any model of :data:`battlab.models.MODELS` (e.g. the tuned LightGBM
  of :func:`battlab.tune.tune`); the spread of the copies is the uncertainty.
- :class:`GaussianProcess` — scikit-learn's :class:`~sklearn.gaussian_process.GaussianProcessRegressor`
  (Matern 5/2 + white noise, fitted by marginal likelihood).
- :class:`GroupCalibrated` — wraps any of them and rescales its uncertainty so that it matches the errors
  made on *held-out groups* (chemical systems): the spread of an ensemble says nothing about how wrong
  the model is on a chemical system it has never seen. The scale comes from a grouped K-fold of the data
  seen so far; with ``novelty=True`` candidates from a system already measured get the (smaller) scale of
  a random K-fold instead.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.uniform(size=(40, 2)); y = X[:, 0] - X[:, 1]
>>> model = TreeEnsemble(n_estimators=20).fit(X, y)
>>> mean, std = model.predict(X[:3], return_std=True)
>>> mean.shape, bool((std >= 0).all()), model.sample(X[:3], 5, rng).shape
((3,), True, (5, 3))
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.impute import SimpleImputer

from battlab.errors import BattlabError

__all__ = ["SURROGATES", "Bagged", "GaussianProcess", "GroupCalibrated", "TreeEnsemble", "make_surrogate"]

_EPS = 1e-9


class _Members(RegressorMixin, BaseEstimator):
    """Base: an ensemble whose members' predictions give the mean, the spread and the draws."""

    def _members(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: Any, return_std: bool = False, groups: Any = None) -> Any:
        per = self._members(np.asarray(X, dtype=float))
        mean = per.mean(axis=0)
        return (mean, per.std(axis=0) + _EPS) if return_std else mean

    def sample(self, X: Any, n_samples: int, rng: np.random.Generator, groups: Any = None) -> np.ndarray:
        per = self._members(np.asarray(X, dtype=float))
        return per[rng.integers(0, len(per), size=n_samples)]

    def condition(self, X: Any, y: Any, groups: Any = None) -> _Members:
        return clone(self).fit(X, y)


class TreeEnsemble(_Members):
    """Random forest (``kind="rf"``) or extra trees (``"et"``); uncertainty = spread of the trees.

    Parameters
    ----------
    kind : {"et", "rf"}
    n_estimators, max_features, min_samples_leaf
        As in scikit-learn; trees are grown to full depth (few rows in a campaign).
    seed : int
    """

    def __init__(self, kind: str = "et", n_estimators: int = 100, max_features: float = 0.3,
                 min_samples_leaf: int = 1, seed: int = 0) -> None:
        self.kind = kind
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.seed = seed

    def fit(self, X: Any, y: Any, groups: Any = None) -> TreeEnsemble:
        from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

        if self.kind not in ("et", "rf"):
            raise BattlabError(f"TreeEnsemble kind must be 'et' or 'rf', got {self.kind!r}.")
        X = np.asarray(X, dtype=float)
        self.imputer_ = SimpleImputer(strategy="median", keep_empty_features=True).fit(X)
        cls = ExtraTreesRegressor if self.kind == "et" else RandomForestRegressor
        self.forest_ = cls(n_estimators=self.n_estimators, max_features=self.max_features,
                           min_samples_leaf=self.min_samples_leaf, random_state=self.seed, n_jobs=1)
        self.forest_.fit(self.imputer_.transform(X), np.asarray(y, dtype=float))
        self.n_features_in_ = X.shape[1]
        return self

    def _members(self, X: np.ndarray) -> np.ndarray:
        Xt = self.imputer_.transform(X)
        return np.stack([tree.predict(Xt) for tree in self.forest_.estimators_])


class Bagged(_Members):
    """Bootstrap copies of a model of the zoo (:func:`battlab.models.make_model`), e.g. a tuned LightGBM.

    Parameters
    ----------
    model : str
        Name in :data:`battlab.models.MODELS` (``"lgbm"``, ``"rf"``, ``"svr"``, ...).
    params : dict, optional
        Its parameters (e.g. ``TuneResult.best_params``); default: the zoo's defaults.
    n_members : int
        Number of bootstrap copies.
    seed : int
    """

    def __init__(self, model: str = "lgbm", params: dict[str, Any] | None = None, n_members: int = 8,
                 seed: int = 0) -> None:
        self.model = model
        self.params = params
        self.n_members = n_members
        self.seed = seed

    def fit(self, X: Any, y: Any, groups: Any = None) -> Bagged:
        from battlab.models import make_model

        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        rng = np.random.default_rng(self.seed)
        self.members_ = []
        for k in range(int(self.n_members)):
            rows = rng.integers(0, len(y), size=len(y))
            params = None if self.params is None else dict(self.params)
            self.members_.append(make_model(self.model, params, seed=self.seed + k).fit(X[rows], y[rows]))
        self.n_features_in_ = X.shape[1]
        return self

    def _members(self, X: np.ndarray) -> np.ndarray:
        return np.stack([m.predict(X) for m in self.members_])


class GaussianProcess(RegressorMixin, BaseEstimator):
    """scikit-learn Gaussian process: Matern(nu) x constant + white noise on standardized inputs.

    Parameters
    ----------
    nu : float, default 2.5
    n_restarts : int, default 2
        Restarts of the marginal-likelihood optimizer.
    seed : int
    """

    def __init__(self, nu: float = 2.5, n_restarts: int = 2, seed: int = 0) -> None:
        self.nu = nu
        self.n_restarts = n_restarts
        self.seed = seed

    def _pipeline(self, kernel: Any, optimize: bool) -> Any:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=self.n_restarts if optimize else 0,
                                      optimizer="fmin_l_bfgs_b" if optimize else None, random_state=self.seed)
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(), gp)

    def fit(self, X: Any, y: Any, groups: Any = None) -> GaussianProcess:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        kernel = getattr(self, "_fixed_kernel", None)  # set by condition(): keep the fitted hyperparameters
        optimize = kernel is None
        if kernel is None:
            kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.sqrt(X.shape[1]), (1e-2, 1e3), nu=self.nu)
                      + WhiteKernel(1e-2, (1e-6, 1.0)))
        self.pipeline_ = self._pipeline(kernel, optimize=optimize)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # bounds hit on tiny data: fine for BO
            self.pipeline_.fit(X, y)
        self.kernel_ = self.pipeline_[-1].kernel_
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any, return_std: bool = False, groups: Any = None) -> Any:
        Xt = self.pipeline_[:-1].transform(np.asarray(X, dtype=float))
        if not return_std:
            return self.pipeline_[-1].predict(Xt)
        mean, std = self.pipeline_[-1].predict(Xt, return_std=True)
        return mean, np.maximum(std, _EPS)

    def sample(self, X: Any, n_samples: int, rng: np.random.Generator, groups: Any = None,
               max_joint: int = 2000) -> np.ndarray:
        """Joint posterior draws; above ``max_joint`` candidates, independent draws from the marginals."""
        X = np.asarray(X, dtype=float)
        if len(X) > max_joint:
            mean, std = self.predict(X, return_std=True)
            return mean + std * rng.standard_normal((n_samples, len(X)))
        Xt = self.pipeline_[:-1].transform(X)
        draws = self.pipeline_[-1].sample_y(Xt, n_samples, random_state=int(rng.integers(2**31 - 1)))
        return np.asarray(draws).reshape(len(X), n_samples).T

    def condition(self, X: Any, y: Any, groups: Any = None) -> GaussianProcess:
        """Refit on ``X, y`` with the fitted kernel held fixed (no hyperparameter search)."""
        new = clone(self)
        new._fixed_kernel = self.kernel_
        return new.fit(X, y)


def _group_folds(groups: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold

    return list(GroupKFold(n_splits, shuffle=True, random_state=seed).split(groups, groups=groups))


def _random_folds(n: int, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold

    return list(KFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(n)))


def _rms(z: np.ndarray) -> float:
    z = z[np.isfinite(z)]
    return float(np.sqrt(np.mean(z**2))) if len(z) else 1.0


class GroupCalibrated(RegressorMixin, BaseEstimator):
    """Rescale a surrogate's uncertainty to the errors it makes on held-out groups (chemical systems).

    At ``fit``, out-of-fold predictions of ``base`` on a K-fold split of the data give standardized errors
    ``z = (y - mean) / std``; the uncertainty is then multiplied by ``rms(z)``, so that it is calibrated
    for the kind of candidate the split holds out.

    Parameters
    ----------
    base : estimator
        A surrogate with ``predict(X, return_std=True)`` (e.g. :class:`TreeEnsemble`).
    split : {"group", "random"}
        ``"group"``: a grouped K-fold (each group - chemical system - held out whole); ``"random"``: a
        shuffled K-fold (the usual, optimistic calibration). Falls back to random folds while fewer than
        ``n_splits`` groups have been measured.
    novelty : bool
        With ``split="group"``: candidates whose group is already in the training data get the scale of a
        random K-fold (restricted to held-out rows whose group was in the training fold), the others the
        grouped scale.
    n_splits : int
    min_scale, max_scale : float
        Bounds of the scales (a handful of rows gives noisy estimates).
    seed : int

    Attributes
    ----------
    scale_new_, scale_seen_ : float
        Scale for candidates of an unseen / a measured group.
    groups_seen_ : set of str
    """

    def __init__(self, base: Any = None, split: str = "group", novelty: bool = False, n_splits: int = 5,
                 min_scale: float = 0.2, max_scale: float = 20.0, seed: int = 0) -> None:
        self.base = base
        self.split = split
        self.novelty = novelty
        self.n_splits = n_splits
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.seed = seed

    def _oof(self, X: np.ndarray, y: np.ndarray, folds: list, groups: np.ndarray | None,
             seen_only: bool) -> np.ndarray:
        z = []
        for train, test in folds:
            model = clone(self.base_template_).fit(X[train], y[train])
            mean, std = model.predict(X[test], return_std=True)
            keep = np.ones(len(test), dtype=bool)
            if seen_only and groups is not None:
                keep = np.isin(groups[test], groups[train])
            z.append(((y[test] - mean) / std)[keep])
        return np.concatenate(z) if z else np.array([])

    def fit(self, X: Any, y: Any, groups: Any = None) -> GroupCalibrated:
        if self.split not in ("group", "random"):
            raise BattlabError(f"GroupCalibrated split must be 'group' or 'random', got {self.split!r}.")
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        self.base_template_ = TreeEnsemble() if self.base is None else self.base
        self.model_ = clone(self.base_template_).fit(X, y)
        g = None if groups is None else np.asarray(groups).astype(str)
        k = int(min(self.n_splits, len(y)))
        clip = (float(self.min_scale), float(self.max_scale))
        self.scale_new_ = self.scale_seen_ = 1.0
        self.split_used_ = "none"
        if k >= 2:
            grouped = self.split == "group" and g is not None and len(np.unique(g)) >= k
            folds = _group_folds(g, k, self.seed) if grouped else _random_folds(len(y), k, self.seed)
            self.split_used_ = "group" if grouped else "random"
            self.scale_new_ = float(np.clip(_rms(self._oof(X, y, folds, g, False)), *clip))
            self.scale_seen_ = self.scale_new_
            if grouped and self.novelty:
                seen = self._oof(X, y, _random_folds(len(y), k, self.seed), g, True)
                self.scale_seen_ = float(np.clip(_rms(seen), *clip)) if len(seen) >= 5 else self.scale_new_
        self.groups_seen_ = set() if g is None else set(g.tolist())
        self.n_features_in_ = X.shape[1]
        return self

    def _scale(self, n: int, groups: Any) -> np.ndarray:
        if groups is None or not self.novelty:
            return np.full(n, self.scale_new_)
        seen = np.isin(np.asarray(groups).astype(str), list(self.groups_seen_))
        return np.where(seen, self.scale_seen_, self.scale_new_)

    def predict(self, X: Any, return_std: bool = False, groups: Any = None) -> Any:
        mean, std = self.model_.predict(X, return_std=True)
        return (mean, std * self._scale(len(mean), groups)) if return_std else mean

    def sample(self, X: Any, n_samples: int, rng: np.random.Generator, groups: Any = None) -> np.ndarray:
        mean = self.model_.predict(X)
        draws = self.model_.sample(X, n_samples, rng)
        return mean + (draws - mean) * self._scale(len(mean), groups)

    def condition(self, X: Any, y: Any, groups: Any = None) -> GroupCalibrated:
        new = copy.copy(self)  # keep the scales: a believer batch fantasizes, it does not recalibrate
        new.model_ = self.model_.condition(X, y)
        if groups is not None:
            new.groups_seen_ = set(self.groups_seen_) | set(np.asarray(groups).astype(str).tolist())
        return new


#: Surrogate names accepted by :func:`make_surrogate` (and ``Campaign(model=...)``).
SURROGATES = ("et", "rf", "lgbm", "gp", "et-group", "et-random")


def make_surrogate(name: str, seed: int = 0, **params: Any) -> Any:
    """A surrogate by name: ``"et"``/``"rf"`` (tree spread), ``"lgbm"`` (bagged LightGBM), ``"gp"``,
    ``"et-group"`` (extra trees, uncertainty calibrated on held-out chemical systems), ``"et-random"``
    (calibrated on a random K-fold).

    Example
    -------
    >>> make_surrogate("et-group", n_estimators=50).base.n_estimators
    50
    """
    if name in ("et", "rf"):
        return TreeEnsemble(kind=name, seed=seed, **params)
    if name == "lgbm":
        return Bagged("lgbm", seed=seed, **params)
    if name == "gp":
        return GaussianProcess(seed=seed, **params)
    if name in ("et-group", "et-random"):
        calib = {k: params.pop(k) for k in ("novelty", "n_splits") if k in params}
        return GroupCalibrated(TreeEnsemble(kind="et", seed=seed, **params), split=name.split("-")[1],
                               seed=seed, **calib)
    raise BattlabError(f"unknown surrogate {name!r}; choose one of: {', '.join(SURROGATES)}, "
                       "or pass an estimator with predict(X, return_std=True).")
