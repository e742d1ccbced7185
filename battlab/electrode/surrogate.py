"""Surrogates of the virtual line: an ensemble of neural networks, and the electrode surrogate around it.

:class:`EnsembleSurrogate` is a generic bootstrap ensemble of MLPs (the members' spread is the
uncertainty). :class:`ElectrodeSurrogate` is what the optimisers, the designer app and the CLI use:
process designs in, *physical* cell outputs out. With ``physics=True`` it is a grey box: it learns
only what physics does not give (energies relative to the design's exact theoretical figures, rate
capability on the logit scale) and maps every member back before the mean and spread are taken.

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
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from battlab.electrode.process import ProcessSettings, process_table

__all__ = ["LOGIT_OUTPUTS", "PHYSICS_SCALES", "ElectrodeSurrogate", "EnsembleSurrogate", "validation_report"]

#: Outputs that a grey-box :class:`ElectrodeSurrogate` learns relative to an exact theoretical figure of the
#: design (:func:`~battlab.electrode.simulate.theoretical_cell`): the net learns ``output / figure``
#: (utilisation x voltage for an energy), which physics does not give.
PHYSICS_SCALES: dict[str, str] = {
    "specific_energy_Wh_kg": "theoretical_specific_capacity_Ah_kg",
    "specific_energy_high_Wh_kg": "theoretical_specific_capacity_Ah_kg",
    "energy_density_Wh_L": "theoretical_capacity_density_Ah_L",
    "capacity_mAh_cm2": "theoretical_capacity_mAh_cm2",
    "capacity_high_mAh_cm2": "theoretical_capacity_mAh_cm2",
    "specific_power_W_kg": "theoretical_specific_capacity_Ah_kg",  # C-rate x mean voltage x capacity / mass
}
#: Fractions in (0, 1) learned on the logit scale: steep near 0 and 1, where a cut-off collapses capacity.
LOGIT_OUTPUTS = ("rate_capability",)
#: Varied parameters that the transport index does not capture (a grey-box surrogate takes them as inputs):
#: the index is the cathode's electrolyte load; particle size and the anode (sized by the N/P ratio) are not in it.
TRANSPORT_BLIND = ("particle_radius_um", "np_ratio")
#: Outputs that, scaled as above, follow the transport index (so a grey-box surrogate needs only it).
TRANSPORT_OUTPUTS = frozenset({*PHYSICS_SCALES, *LOGIT_OUTPUTS, "mean_voltage_V", "mean_voltage_high_V"})
_EPS = 1e-3  # logit clip: rate capabilities are kept inside [0.001, 0.999]



def _ensemble_mean(members: np.ndarray, single_output: bool, return_std: bool):
    """Mean (and std) over an ensemble's members' predictions (members x samples x outputs)."""
    mean, std = members.mean(axis=0), members.std(axis=0)
    if single_output:
        mean, std = mean[:, 0], std[:, 0]
    return (mean, std) if return_std else mean

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
    single_output_ : bool
        ``y`` was one-dimensional (predictions are then too).
    n_iter_ : int
        Most L-BFGS iterations any member ran.
    oob_mask_ : ndarray of bool, shape (n_members, n_samples)
        Training rows each member did not see (out of bag); all False without ``bootstrap``.

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
        self.single_output_ = y.ndim == 1
        Y = y.reshape(len(y), -1)
        self.n_outputs_ = Y.shape[1]
        self.x_scaler_ = StandardScaler().fit(X)
        self.y_scaler_ = StandardScaler().fit(Y)
        Xs, Ys = self.x_scaler_.transform(X), self.y_scaler_.transform(Y)
        base = 0 if self.random_state is None else int(self.random_state)
        self.members_ = []
        self.oob_mask_ = np.zeros((int(self.n_members), len(Xs)), dtype=bool)
        for i in range(int(self.n_members)):
            rng = np.random.default_rng(base + i)
            idx = rng.integers(0, len(Xs), len(Xs)) if self.bootstrap else np.arange(len(Xs))
            self.oob_mask_[i] = True
            self.oob_mask_[i, idx] = False
            net = MLPRegressor(hidden_layer_sizes=self.hidden_layer_sizes, alpha=self.alpha, solver="lbfgs",
                               max_iter=self.max_iter, random_state=base + i)
            # one BLAS thread: on matrices this small, threads cost more than they save (7x measured)
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore", ConvergenceWarning)  # L-BFGS at max_iter is still usable
                net.fit(Xs[idx], Ys[idx] if self.n_outputs_ > 1 else Ys[idx, 0])
            self.members_.append(net)
        self.n_iter_ = max(int(m.n_iter_) for m in self.members_) if self.members_ else 0
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

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
        return _ensemble_mean(self.predict_members(X), self.single_output_, return_std)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _calibrate(members: np.ndarray, Y: np.ndarray, oob: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Per output, the part of the out-of-bag error that the members' spread does not explain.

    ``members``: physical predictions ``(members, rows, outputs)`` on the training rows; ``oob``: which
    rows each member did not see. A row's out-of-bag error is its target minus the mean of the members
    that did not see it; the result is ``sqrt(max(0, mean(error^2) - mean(spread^2)))`` over those rows
    (zeros when no row was out of bag).
    """
    if oob is None or not np.any(oob):
        return np.zeros(Y.shape[1]), 0
    w = np.asarray(oob, dtype=float)[:, :, None]
    n = w.sum(axis=0)[:, 0]
    rows = n > 0
    oob_mean = (members * w).sum(axis=0)[rows] / n[rows, None]
    spread = members.std(axis=0)[rows]
    sigma = np.median(np.abs(Y[rows] - oob_mean), axis=0) / 0.6745
    return np.sqrt(np.maximum(sigma ** 2 - np.median(spread, axis=0) ** 2, 0.0)), int(rows.sum())


class ElectrodeSurrogate(RegressorMixin, BaseEstimator):
    """Surrogate of the virtual line: process designs in, physical cell outputs (mean and spread) out.

    ``X`` holds one process design per row (the knobs of
    :data:`~battlab.electrode.doe.DEFAULT_SPACE`, or any columns that
    :func:`~battlab.electrode.process.process_electrode` reads), best as a DataFrame so the columns are
    known by name; ``y`` holds the simulated outputs in their own units. The networks see ``inputs``,
    computed from each design: its own columns, its process quantities (``thickness_um``, ``porosity``...)
    and, with ``physics``, its theoretical figures (``transport_index``...). Whatever the inputs and
    scales, :meth:`predict` returns outputs in the units of ``y``.

    With ``physics=True`` (grey box) the outputs in :data:`PHYSICS_SCALES` are learned divided by their
    exact theoretical figure (:func:`~battlab.electrode.simulate.theoretical_cell`, which needs the
    outputs' names: ``outputs``, or the columns of a DataFrame ``y``) and those in :data:`LOGIT_OUTPUTS` on
    the logit scale; each member's prediction is mapped back before the mean and the spread are taken,
    so the spread is in physical units too. The stack mass is then never learned, only what the
    discharge adds, so few designs go a long way.

    Parameters
    ----------
    outputs : list of str, optional
        Names of the columns of ``y`` (default: the columns of a DataFrame ``y``, else ``y0``, ``y1``...).
    inputs : list of str, optional
        Features of the networks, computed from each design (default: the design's columns as given,
        which needs no process model: a black box on ``X``).
    physics : bool
        Grey box (see above); ``False`` learns every output as it is.
    settings : ProcessSettings, optional
        Fixed line settings the designs were simulated with (process quantities and theory).
    np_ratio : float
        N/P ratio the designs were simulated with (theory); a design's own ``np_ratio`` column overrides it.
    estimator : regressor, optional
        The learner, cloned at fit; it must have ``predict_members`` (default :class:`EnsembleSurrogate`).

    Attributes
    ----------
    estimator_ : EnsembleSurrogate
        The fitted learner (on the transformed outputs).
    inputs_, outputs_ : list of str
        Features and output names, as resolved at fit.
    design_columns_ : list of str
        Names of the columns of ``X``.
    error_floor_ : ndarray of shape (n_outputs,)
        In output units: the error on training designs a member did not see (out of bag) that the spread
        does not explain (robust, 0 if none). The stated error of a prediction is
        ``sqrt(std^2 + error_floor_^2)``: it grows with the spread away from the data and does not claim
        more accuracy than the out-of-bag designs showed. Measured on held-out shipped designs (150 for
        training): 95-99 % of errors within twice the stated error. With few designs (say fewer than 10
        per input) the out-of-bag sample is too small and the stated error is optimistic.
    n_oob_ : int
        Training designs that at least one member did not see (the calibration's sample).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame.

    Example
    -------
    >>> from battlab.electrode.doe import load_designs
    >>> table = load_designs()[0].query("status == 'ok'")
    >>> knobs = ["active_weight_fraction", "solid_content", "coating_gap_um", "line_load_N_per_mm"]
    >>> model = ElectrodeSurrogate(inputs=["transport_index", *knobs], physics=True,
    ...                            estimator=EnsembleSurrogate(hidden_layer_sizes=(16, 16)))
    >>> model = model.fit(table[knobs], table[["specific_energy_Wh_kg", "rate_capability"]])
    >>> mean, std = model.predict(table[knobs].iloc[:1], return_std=True)  # Wh/kg, and a fraction
    >>> bool(abs(mean[0, 0] - table["specific_energy_Wh_kg"].iloc[0]) < 5), bool(0 < mean[0, 1] < 1)
    (True, True)
    >>> list(model.predict_frame(table.iloc[:1]).columns)[:3]
    ['specific_energy_Wh_kg', 'specific_energy_Wh_kg_std', 'specific_energy_Wh_kg_error']
    """

    def __init__(self, outputs: list[str] | None = None, inputs: list[str] | None = None, physics: bool = False,
                 settings: ProcessSettings | None = None, np_ratio: float = 1.1, estimator: Any = None) -> None:
        self.outputs = outputs
        self.inputs = inputs
        self.physics = physics
        self.settings = settings
        self.np_ratio = np_ratio
        self.estimator = estimator

    # ------------------------------------------------------------------ the physics, both directions

    def _design_frame(self, X: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(X, columns=self.design_columns_)

    def _derived(self, design: pd.DataFrame, need_theory: bool) -> pd.DataFrame:
        """The design, its process quantities and (if needed) its theoretical figures, one row per design."""
        from battlab.electrode.simulate import theoretical_cell

        table = design
        if set(self.inputs_) - set(design.columns) or need_theory:
            try:
                proc = process_table(design, self.settings)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{type(self).__name__}: cannot compute process quantities of the designs "
                                 f"(columns {self.design_columns_}): {exc}") from None
            table = pd.concat([design, proc.drop(columns=[c for c in proc if c in design])], axis=1)
            if need_theory:
                theory = theoretical_cell(table, self.settings, self.np_ratio)
                table = pd.concat([table, theory.drop(columns=[c for c in theory if c in table])], axis=1)
        return table

    def _needs_theory(self) -> bool:
        return bool(self.physics) and (any(o in PHYSICS_SCALES for o in self.outputs_)
                                       or any(i not in self.design_columns_ for i in self.inputs_))

    def _features(self, design: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        table = self._derived(design, self._needs_theory())
        missing = [c for c in self.inputs_ if c not in table]
        if missing:
            raise ValueError(f"{type(self).__name__}: unknown input(s) {missing}; known: {list(table.columns)}")
        return table[self.inputs_].to_numpy(float), table

    def _to_learned(self, Y: np.ndarray, table: pd.DataFrame) -> np.ndarray:
        Z = np.array(Y, dtype=float, copy=True)
        if self.physics:
            for j, name in enumerate(self.outputs_):
                if name in PHYSICS_SCALES:
                    Z[:, j] = Z[:, j] / table[PHYSICS_SCALES[name]].to_numpy(float)
                elif name in LOGIT_OUTPUTS:
                    Z[:, j] = _logit(Z[:, j])
        return Z

    def _to_physical(self, members: np.ndarray, table: pd.DataFrame) -> np.ndarray:
        """Members' predictions ``(members, rows, outputs)`` on the learned scales -> output units."""
        if self.physics:
            for j, name in enumerate(self.outputs_):
                if name in PHYSICS_SCALES:
                    members[:, :, j] *= table[PHYSICS_SCALES[name]].to_numpy(float)
                elif name in LOGIT_OUTPUTS:
                    members[:, :, j] = _sigmoid(members[:, :, j])
        return members

    # ------------------------------------------------------------------ estimator API

    def fit(self, X: Any, y: Any) -> ElectrodeSurrogate:
        """Fit the learner on the designs ``X`` and their outputs ``y`` (in output units).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_designs, n_design_columns)
        y : array-like or DataFrame of shape (n_designs,) or (n_designs, n_outputs)

        Returns
        -------
        self
        """
        y_names = [str(c) for c in y.columns] if isinstance(y, pd.DataFrame) else None
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        Y = np.asarray(y, dtype=float)
        self.single_output_ = Y.ndim == 1
        Y = Y.reshape(len(Y), -1)
        names = list(self.outputs) if self.outputs is not None else y_names or [f"y{j}" for j in range(Y.shape[1])]
        if len(names) != Y.shape[1]:
            raise ValueError(f"{type(self).__name__}: outputs has {len(names)} name(s) {names}, "
                             f"but y has {Y.shape[1]} column(s)")
        self.outputs_ = names
        if hasattr(self, "feature_names_in_"):
            self.design_columns_ = [str(c) for c in self.feature_names_in_]
        else:
            from battlab.electrode.doe import DEFAULT_SPACE

            default = list(DEFAULT_SPACE)
            self.design_columns_ = default if X.shape[1] == len(default) else [f"x{i}" for i in range(X.shape[1])]
        self.inputs_ = list(self.inputs) if self.inputs is not None else list(self.design_columns_)
        learner = EnsembleSurrogate() if self.estimator is None else self.estimator
        if not hasattr(learner, "predict_members"):
            raise TypeError(f"{type(self).__name__}: estimator {learner!r} has no predict_members(X) (the spread "
                            "of its members is the uncertainty); use EnsembleSurrogate")
        F, table = self._features(self._design_frame(X))
        self.estimator_ = clone(learner).fit(F, self._to_learned(Y, table))
        members = np.asarray(self.estimator_.predict_members(F), dtype=float).reshape(-1, len(F), Y.shape[1])
        self.error_floor_, self.n_oob_ = _calibrate(self._to_physical(members, table), Y,
                                                    getattr(self.estimator_, "oob_mask_", None))
        return self

    def predict_members(self, X: Any) -> np.ndarray:
        """Every member's prediction in output units, shape ``(n_members, n_designs, n_outputs)``."""
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, reset=False)
        F, table = self._features(self._design_frame(X))
        members = np.asarray(self.estimator_.predict_members(F), dtype=float).reshape(-1, len(F), len(self.outputs_))
        return self._to_physical(members, table)

    def predict(self, X: Any, return_std: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Mean over the members (and their standard deviation, the uncertainty), in output units.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_designs, n_design_columns)
        return_std : bool
            Also return the members' standard deviation.

        Returns
        -------
        mean : ndarray of shape (n_designs,) or (n_designs, n_outputs)
        std : ndarray, same shape (only with ``return_std``)
        """
        return _ensemble_mean(self.predict_members(X), self.single_output_, return_std)

    def predict_frame(self, designs: pd.DataFrame) -> pd.DataFrame:
        """Predictions for a table of designs, same index: per output ``<output>`` (the mean),
        ``<output>_std`` (the members' spread, which the searches penalise) and ``<output>_error`` (the
        stated one-sigma error: the spread and :attr:`error_floor_` in quadrature).

        The design columns are taken from ``designs`` by name (other columns are ignored).
        """
        check_is_fitted(self, "estimator_")
        missing = [c for c in self.design_columns_ if c not in designs]
        if missing:
            raise ValueError(f"{type(self).__name__}: the designs have no column {missing} "
                             f"(the model was fitted on {self.design_columns_})")
        X = designs[self.design_columns_] if hasattr(self, "feature_names_in_") else \
            designs[self.design_columns_].to_numpy(float)
        mean, std = self.predict(X, return_std=True)
        mean, std = mean.reshape(len(designs), -1), std.reshape(len(designs), -1)
        out = pd.DataFrame(index=designs.index)
        for j, name in enumerate(self.outputs_):
            out[name], out[f"{name}_std"] = mean[:, j], std[:, j]
            out[f"{name}_error"] = np.hypot(std[:, j], self.error_floor_[j])
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def validation_report(model: EnsembleSurrogate, X: Any, y: pd.DataFrame) -> pd.DataFrame:
    """R^2 and MAE per output on held-out designs, and the mean predicted standard deviation.

    Parameters
    ----------
    model : EnsembleSurrogate or ElectrodeSurrogate
        Fitted on other designs.
    X : array-like
        Held-out inputs (for an :class:`ElectrodeSurrogate`, a table holding the design columns).
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
    if isinstance(model, ElectrodeSurrogate) and isinstance(X, pd.DataFrame):
        pred = model.predict_frame(X)  # the design columns, by name, from a wider table
        mean = pred[model.outputs_].to_numpy()
        std = pred[[f"{o}_std" for o in model.outputs_]].to_numpy()
    else:
        mean, std = model.predict(X, return_std=True)
    Y = np.asarray(y, dtype=float).reshape(len(y), -1)
    mean, std = mean.reshape(Y.shape), std.reshape(Y.shape)
    rows = {c: {"r2": r2_score(Y[:, j], mean[:, j]), "mae": mean_absolute_error(Y[:, j], mean[:, j]),
                "mean_std": float(std[:, j].mean()), "n": len(Y)} for j, c in enumerate(y.columns)}
    return pd.DataFrame(rows).T.astype({"n": int})
