"""Ensemble neural-network surrogate: the members' spread is the uncertainty.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.uniform(-1, 1, (200, 2)); y = np.c_[X[:, 0] ** 2, X.sum(1)]
>>> model = EnsembleSurrogate(n_members=5, random_state=0).fit(X, y)
>>> mean, std = model.predict(X[:3], return_std=True)
>>> mean.shape, std.shape
((3, 2), (3, 2))
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

__all__ = ["EnsembleSurrogate", "validation_report"]


class EnsembleSurrogate(RegressorMixin, BaseEstimator):
    """Bootstrap ensemble of multi-output MLP regressors with standardised inputs and outputs.

    Parameters
    ----------
    n_members : int
        Number of networks (at least 5 is advised: the spread of fewer is a poor uncertainty).
    hidden_layer_sizes : tuple of int
        Hidden layers of each network.
    alpha : float
        L2 penalty of each network.
    bootstrap : bool
        Train each member on a bootstrap resample (otherwise members differ only by their seed).
    max_iter : int
        Iterations of the L-BFGS solver (suited to the small data sets of a pilot line).
    random_state : int or None
        Seed: member ``i`` uses ``random_state + i`` for its weights and resample.

    Attributes
    ----------
    members_ : list of MLPRegressor
    x_scaler_, y_scaler_ : StandardScaler
    n_features_in_ : int
    n_outputs_ : int

    Example
    -------
    >>> X = np.linspace(0, 1, 50)[:, None]
    >>> m = EnsembleSurrogate(random_state=0).fit(X, 2 * X[:, 0])
    >>> round(float(m.predict([[0.5]])[0]), 1)
    1.0
    """

    def __init__(self, n_members: int = 5, hidden_layer_sizes: tuple[int, ...] = (32, 32), alpha: float = 1e-3,
                 bootstrap: bool = True, max_iter: int = 300, random_state: int | None = 0) -> None:
        self.n_members = n_members
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.bootstrap = bootstrap
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> EnsembleSurrogate:
        """Fit every member.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=float)
        self._single_output = y.ndim == 1
        Y = y.reshape(len(y), -1)
        self.n_outputs_ = Y.shape[1]
        self.x_scaler_ = StandardScaler().fit(X)
        self.y_scaler_ = StandardScaler().fit(Y)
        Xs, Ys = self.x_scaler_.transform(X), self.y_scaler_.transform(Y)
        base = 0 if self.random_state is None else int(self.random_state)
        self.members_ = []
        for i in range(int(self.n_members)):
            rng = np.random.default_rng(base + i)
            idx = rng.integers(0, len(Xs), len(Xs)) if self.bootstrap else np.arange(len(Xs))
            net = MLPRegressor(hidden_layer_sizes=self.hidden_layer_sizes, alpha=self.alpha, solver="lbfgs",
                               max_iter=self.max_iter, random_state=base + i)
            # one BLAS thread: on matrices this small, threads cost more than they save (7x measured)
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore", ConvergenceWarning)  # L-BFGS at max_iter is still usable
                net.fit(Xs[idx], Ys[idx] if self.n_outputs_ > 1 else Ys[idx, 0])
            self.members_.append(net)
        return self

    def predict_members(self, X: Any) -> np.ndarray:
        """Predictions of every member, shape ``(n_members, n_samples, n_outputs)`` in output units."""
        check_is_fitted(self, "members_")
        X = validate_data(self, X, reset=False)
        Xs = self.x_scaler_.transform(X)
        with threadpool_limits(1):
            preds = [m.predict(Xs).reshape(len(Xs), -1) for m in self.members_]
        return np.stack([self.y_scaler_.inverse_transform(p) for p in preds])

    def predict(self, X: Any, return_std: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Ensemble mean (and standard deviation across members).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool
            Also return the members' standard deviation (the uncertainty).

        Returns
        -------
        mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        std : ndarray, same shape (only with ``return_std``)
        """
        p = self.predict_members(X)
        mean, std = p.mean(axis=0), p.std(axis=0)
        if self._single_output:
            mean, std = mean[:, 0], std[:, 0]
        return (mean, std) if return_std else mean


def validation_report(model: EnsembleSurrogate, X: Any, y: pd.DataFrame) -> pd.DataFrame:
    """R^2 and MAE per output on held-out designs, and the mean predicted standard deviation.

    Parameters
    ----------
    model : EnsembleSurrogate
        Fitted on other designs.
    X : array-like
        Held-out inputs.
    y : pandas.DataFrame
        Held-out outputs (columns in the order the model was fitted on).

    Returns
    -------
    pandas.DataFrame
        Index: output names; columns ``r2``, ``mae``, ``mean_std``, ``n``.

    Example
    -------
    >>> X = np.linspace(0, 1, 60)[:, None]
    >>> y = pd.DataFrame({"a": 3 * X[:, 0], "b": X[:, 0] ** 2})
    >>> m = EnsembleSurrogate(random_state=0).fit(X[::2], y.iloc[::2])
    >>> bool((validation_report(m, X[1::2], y.iloc[1::2])["r2"] > 0.99).all())
    True
    """
    mean, std = model.predict(X, return_std=True)
    Y = np.asarray(y, dtype=float).reshape(len(y), -1)
    mean, std = mean.reshape(Y.shape), std.reshape(Y.shape)
    rows = {c: {"r2": r2_score(Y[:, j], mean[:, j]), "mae": mean_absolute_error(Y[:, j], mean[:, j]),
                "mean_std": float(std[:, j].mean()), "n": len(Y)} for j, c in enumerate(y.columns)}
    return pd.DataFrame(rows).T.astype({"n": int})
