"""Capacity-fade trajectories: from a cell's first N cycles, its capacity to end of life, with a band.

Everything works on a *capacity table*: a long :class:`pandas.DataFrame`, one row per (cell, cycle), with
columns ``cell`` (str), ``cycle`` (int), ``discharge_capacity_Ah`` (float) and optional per-cell columns
(covariates such as ``temperature_C``).

- :class:`TrajectoryModel`: learned from other (training) cells. Early-life features of cycles 2..N (capacity
  levels over windows, fade slope and curvature, relative to the cell's own initial capacity, plus per-cell
  covariates) -> the capacity relative to the level at cycle N on a grid of cycles, either by one ridge
  regression per grid cycle (``method="ridge"``) or as a similarity-weighted mean of the nearest training
  cells' trajectories (``method="neighbours"``). The curve is made monotone non-increasing; its band comes from
  residuals of predictions on cells left out by a cross-validation grouped by cell (split conformal, one
  quantile per horizon).
- :class:`EmpiricalFadeModel`: the practitioners' baseline, the cell's own first N cycles fitted with a power
  law ``Q = a - b n^c`` or a double exponential ``Q = a e^(b n) + c e^(d n)`` (scipy ``curve_fit``) and
  extrapolated; a fit that fails is reported (``predict(...).attrs["failures"]``: cell -> reason), never raised.

Both have ``fit(table)``, ``predict(table, horizon=...)`` (columns ``cell``, ``cycle``,
``predicted_capacity_Ah``, ``low``, ``high``) and ``predict_life(table)`` (the first predicted cycle below
``threshold_Ah``, with an interval read off the band), and ``save``/``load``.

Example
-------
>>> table = synthetic_capacity_table(n_cells=12, seed=0)
>>> model = TrajectoryModel(n_cycles=100, covariates=("temperature_C",)).fit(table)
>>> early = table[table["cycle"] <= 100]
>>> curve = model.predict(early)
>>> list(curve.columns)
['cell', 'cycle', 'predicted_capacity_Ah', 'low', 'high']
>>> bool((curve.groupby("cell")["predicted_capacity_Ah"].diff().dropna() <= 1e-12).all())
True
>>> life = model.predict_life(early)
>>> list(life.columns)
['cell', 'predicted_life', 'life_low', 'life_high', 'reached']
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from battlab.errors import BattlabError

__all__ = [
    "EmpiricalFadeModel",
    "FadeCurveFit",
    "TrajectoryModel",
    "check_capacity_table",
    "early_features",
    "fit_fade_curve",
    "synthetic_capacity_table",
]

CAPACITY = "discharge_capacity_Ah"
_LOG_EPS = 0.003  # relative capacity: the loss since cycle N is regressed as log(loss + 0.3 %) when asked
_REQUIRED = ("cell", "cycle", CAPACITY)


# --------------------------------------------------------------------------- tables


def _show(value: Any) -> str:
    """A value as the user typed it (numpy scalars as plain numbers)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_capacity_table(table: pd.DataFrame, covariates: Sequence[str] = (),
                         what: str = "capacity table") -> pd.DataFrame:
    """Validate a capacity table and return a clean copy sorted by cell and cycle.

    Raises :class:`~battlab.errors.BattlabError` (one line, naming the column, cell or row) on a missing column,
    a non-numeric or missing capacity, a repeated (cell, cycle), or a covariate that changes within a cell.

    >>> t = pd.DataFrame({"cell": ["a", "a"], "cycle": [2, 1], "discharge_capacity_Ah": [1.0, 1.1]})
    >>> check_capacity_table(t)["cycle"].tolist()
    [1, 2]
    """
    if not isinstance(table, pd.DataFrame):
        raise BattlabError(f"{what}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in (*_REQUIRED, *covariates) if c not in table.columns]
    if missing:
        raise BattlabError(f"{what}: missing column(s) {missing}; it has {list(table.columns)}")
    if table.empty:
        raise BattlabError(f"{what}: no rows")
    out = table[list(dict.fromkeys((*_REQUIRED, *covariates)))].copy()
    out["cell"] = out["cell"].astype(str)
    for col in ("cycle", CAPACITY, *covariates):
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            i = bad.to_numpy().nonzero()[0][0]
            raise BattlabError(f"{what}: column {col!r}, row {_show(table.index[i])} (cell {out['cell'].iloc[i]!r}) "
                               f"is {_show(table[col].iloc[i])}, not a finite number")
        out[col] = values.astype(float)
    if (out["cycle"] != out["cycle"].round()).any():
        i = (out["cycle"] != out["cycle"].round()).to_numpy().nonzero()[0][0]
        raise BattlabError(f"{what}: column 'cycle', row {_show(table.index[i])}: {_show(table['cycle'].iloc[i])} "
                           "is not a whole cycle number")
    out["cycle"] = out["cycle"].astype(int)
    dup = out.duplicated(["cell", "cycle"])
    if dup.any():
        i = dup.to_numpy().nonzero()[0][0]
        raise BattlabError(f"{what}: cell {out['cell'].iloc[i]!r} has cycle {out['cycle'].iloc[i]} twice "
                           f"(row {_show(table.index[i])})")
    for col in covariates:
        varies = out.groupby("cell")[col].nunique() > 1
        if varies.any():
            raise BattlabError(f"{what}: covariate {col!r} changes within cell {varies.index[varies][0]!r}; "
                               "a covariate is one value per cell")
    return out.sort_values(["cell", "cycle"], kind="stable").reset_index(drop=True)


def _first_cycles(t: pd.DataFrame, n_cycles: int, what: str) -> pd.DataFrame:
    """Rows of cycles 1..n_cycles; every cell must reach cycle n_cycles."""
    last = t.groupby("cell", sort=False)["cycle"].max()
    short = last[last < n_cycles]
    if len(short):
        raise BattlabError(f"{what}: cell {short.index[0]!r} has cycles up to {int(short.iloc[0])}, and the "
                           f"model needs the first {n_cycles}" + (f" ({len(short)} cells short)" if len(short) > 1
                                                                  else ""))
    return t[t["cycle"] <= n_cycles]


def early_features(table: pd.DataFrame, n_cycles: int = 100, covariates: Sequence[str] = ()) -> pd.DataFrame:
    """Early-life capacity features of cycles 2..``n_cycles``, relative to each cell's initial capacity.

    ``q0_Ah`` is the median capacity of cycles 2-6 (cycle 1 is often a formation-like outlier); ``r`` is the
    capacity divided by ``q0_Ah``. Features: ``q0_Ah``; the mean ``r`` over four equal windows of cycles
    2..N (``level_w1``..``level_w4``); ``loss_N`` = 1 - mean ``r`` of the last 10 cycles; the linear slope of
    ``r`` over the second half and over the whole window (per 100 cycles); the quadratic curvature of ``r``
    over 2..N; the covariates, one value per cell.

    >>> t = synthetic_capacity_table(n_cells=3, seed=1)
    >>> f = early_features(t, 100, covariates=("temperature_C",))
    >>> f.shape, bool((f["loss_N"] > 0).all())
    ((3, 10), True)
    """
    if n_cycles < 12:
        raise BattlabError(f"early features need at least 12 cycles, got n_cycles={n_cycles}")
    t = _first_cycles(check_capacity_table(table, covariates), n_cycles, "early features")
    rows = {}
    for cell, g in t.groupby("cell", sort=False):
        g = g[g["cycle"] >= 2]
        n, q = g["cycle"].to_numpy(float), g[CAPACITY].to_numpy(float)
        if len(n) < 10:
            raise BattlabError(f"early features: cell {cell!r} has {len(n)} cycles in 2..{n_cycles}; needs 10")
        q0 = float(np.median(q[n <= 6])) if (n <= 6).any() else float(q[0])
        if q0 <= 0:
            raise BattlabError(f"early features: cell {cell!r} has initial capacity {q0} Ah; needs > 0")
        r = q / q0
        x = n / 100.0
        windows = np.array_split(np.arange(len(n)), 4)
        half = n >= (2 + n_cycles) / 2
        row = {"q0_Ah": q0}
        row.update({f"level_w{k + 1}": float(r[w].mean()) for k, w in enumerate(windows)})
        row["loss_N"] = float(1.0 - r[-10:].mean())
        row["slope_late"] = float(np.polyfit(x[half], r[half], 1)[0])
        row["slope_all"] = float(np.polyfit(x, r, 1)[0])
        row["curvature"] = float(np.polyfit(x, r, 2)[0])
        for c in covariates:
            row[c] = float(g[c].iloc[0]) if len(g) else float(t.loc[t["cell"] == cell, c].iloc[0])
        rows[cell] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "cell"
    return out


def synthetic_capacity_table(n_cells: int = 12, n_last: int = 900, seed: int = 0) -> pd.DataFrame:
    """A small capacity table of made-up cells whose fade speeds up with temperature (for examples and tests).

    Capacity ``1.1 (1 - s (1e-4 n + 0.04 (n/500)^3))`` plus noise, the speed ``s`` growing with
    ``temperature_C`` (25/35/45 degC in turn) times a random factor 0.8-1.25 per cell.

    >>> t = synthetic_capacity_table(n_cells=2, n_last=300)
    >>> t.shape, sorted(t.columns)
    ((600, 4), ['cell', 'cycle', 'discharge_capacity_Ah', 'temperature_C'])
    """
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_cells):
        temp = float([25, 35, 45][i % 3])
        speed = (1 + (temp - 25) / 20) * rng.uniform(0.8, 1.25)
        n = np.arange(1, n_last + 1)
        q = 1.1 * (1 - speed * (1e-4 * n + 0.04 * (n / 500) ** 3)) + rng.normal(0, 5e-4, n.size)
        parts.append(pd.DataFrame({"cell": f"c{i:02d}", "cycle": n, CAPACITY: q, "temperature_C": temp}))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- shared read-offs


def _life_rows(curves: pd.DataFrame, threshold_Ah: float) -> pd.DataFrame:
    """First cycle below the threshold of the central curve, of ``low`` (earliest) and of ``high`` (latest)."""
    rows = []
    for cell, g in curves.groupby("cell", sort=False):
        cyc = g["cycle"].to_numpy()

        def first(values: np.ndarray, cyc: np.ndarray = cyc) -> float:
            below = np.flatnonzero(values < threshold_Ah)
            return float(cyc[below[0]]) if len(below) else math.nan

        mid = first(g["predicted_capacity_Ah"].to_numpy())
        rows.append({"cell": cell, "predicted_life": mid, "life_low": first(g["low"].to_numpy()),
                     "life_high": first(g["high"].to_numpy()), "reached": not math.isnan(mid)})
    return pd.DataFrame(rows, columns=["cell", "predicted_life", "life_low", "life_high", "reached"])


class _Saveable:
    """``save(path)`` / ``load(path)`` with joblib, checking the class on the way back."""

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` (a ``.joblib`` file); returns the path."""
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Read a model written by :meth:`save`."""
        from battlab.persist import load_joblib

        return load_joblib(path, cls, missing="{path}: no saved {cls} there")


# --------------------------------------------------------------------------- learned model


class TrajectoryModel(_Saveable, BaseEstimator):
    """Capacity trajectory after cycle ``n_cycles`` learned from training cells (see the module docstring).

    Parameters
    ----------
    n_cycles : int, default 100
        Cycles seen of each cell (1..N); the prediction starts at N + 1.
    method : {"ridge", "neighbours"}, default "ridge"
        ``ridge``: one ridge regression per grid cycle of the drop in relative capacity since cycle N, on the
        standardised early features (penalty chosen by leave-one-cell-out inside ``fit``). ``neighbours``: the
        weighted mean of the drops of the ``n_neighbours`` training cells nearest in standardised feature space
        (weights ``1 / (distance + eps)``).
    covariates : sequence of str, default ()
        Per-cell columns of the table used as features (e.g. ``("temperature_C",)``).
    grid_step : int, default 10
        Spacing of the grid of cycles on which trajectories are learned (predictions are interpolated to every
        cycle); each grid value is the mean of the cycles around it (half a step either side).
    n_neighbours : int, default 5
    alphas : sequence of float, default (0.01, 0.1, 1, 10, 100)
        Ridge penalties tried.
    coverage : float, default 0.9
        Target coverage of the band (two-sided).
    n_splits : int, default 5
        Folds (grouped by cell) of the cross-validation that gives the band's residuals.
    threshold_Ah : float, default 0.88
        End-of-life capacity for :meth:`predict_life`.
    features : sequence of str or None, default None
        Early features (columns of :func:`early_features`) used as regressors, besides the covariates;
        None: all of them.
    target : {"drop", "log_drop"}, default "drop"
        What the ridge regressions fit (``ridge`` and ``blend``): the drop in relative capacity since cycle N,
        or the log of that loss plus 0.003 (multiplicative effects of the features become additive).
    seed : int, default 0
        Seed of the fold assignment of the band's cross-validation.

    Attributes
    ----------
    grid_ : ndarray
        Cycles of the learned grid (N + step, N + 2 step, ..., the last cycle at least 3 training cells reach).
    band_low_, band_high_ : ndarray
        Residual quantiles (relative capacity) per grid cycle, added to the central curve.
    cells_ : list of str
        Training cells.
    """

    def __init__(self, n_cycles: int = 100, method: str = "ridge", covariates: Sequence[str] = (),
                 grid_step: int = 10, n_neighbours: int = 5,
                 alphas: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0), coverage: float = 0.9,
                 n_splits: int = 5, threshold_Ah: float = 0.88, features: Sequence[str] | None = None,
                 target: str = "drop", seed: int = 0) -> None:
        self.n_cycles = n_cycles
        self.method = method
        self.covariates = covariates
        self.grid_step = grid_step
        self.n_neighbours = n_neighbours
        self.alphas = alphas
        self.coverage = coverage
        self.n_splits = n_splits
        self.threshold_Ah = threshold_Ah
        self.features = features
        self.target = target
        self.seed = seed

    # ----------------------------------------------------------------- helpers
    def _columns(self, feats: pd.DataFrame) -> list[str]:
        """Regressors: ``features`` (default every early feature) plus the covariates."""
        if self.features is None:
            return list(feats.columns)
        wanted = list(dict.fromkeys([*self.features, *self.covariates]))
        unknown = [c for c in wanted if c not in feats.columns]
        if unknown:
            raise BattlabError(f"TrajectoryModel: unknown feature(s) {unknown}; the early features are "
                               f"{list(feats.columns)}")
        return wanted

    def _check_params(self) -> None:
        if self.method not in ("ridge", "neighbours", "blend"):
            raise BattlabError("TrajectoryModel: method must be 'ridge', 'neighbours' or 'blend', "
                               f"got {self.method!r}")
        if self.target not in ("drop", "log_drop"):
            raise BattlabError(f"TrajectoryModel: target must be 'drop' or 'log_drop', got {self.target!r}")
        if not 0 < self.coverage < 1:
            raise BattlabError(f"TrajectoryModel: coverage must be in (0, 1), got {self.coverage}")
        if int(self.grid_step) < 1:
            raise BattlabError(f"TrajectoryModel: grid_step must be >= 1, got {self.grid_step}")

    def _targets(self, t: pd.DataFrame, feats: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
        """Drop in relative capacity since cycle N at each grid cycle (NaN beyond a cell's data)."""
        half = int(self.grid_step) / 2
        level_n = 1.0 - feats["loss_N"].to_numpy()
        y = np.full((len(feats), len(grid)), np.nan)
        for i, (cell, g) in enumerate(t.groupby("cell", sort=False)):
            n, q = g["cycle"].to_numpy(float), g[CAPACITY].to_numpy(float) / feats.loc[cell, "q0_Ah"]
            idx = np.searchsorted(n, grid - half, side="left"), np.searchsorted(n, grid + half, side="right")
            for j, (a, b) in enumerate(zip(*idx, strict=True)):
                if b > a and n[b - 1] >= grid[j] - 1e-9:
                    y[i, j] = q[a:b].mean() - level_n[i]
        return y

    def _to_target(self, drop: np.ndarray) -> np.ndarray:
        """What the ridge regresses: the drop, or ``log(loss since N + 0.003)`` (``target="log_drop"``)."""
        return np.log(np.clip(-drop, 0.0, None) + _LOG_EPS) if self.target == "log_drop" else drop

    def _from_target(self, z: np.ndarray) -> np.ndarray:
        return -(np.exp(z) - _LOG_EPS) if self.target == "log_drop" else z

    def _fit_core(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        from sklearn.linear_model import Ridge
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x)
        xs = scaler.transform(x)
        if self.method == "neighbours":
            return {"scaler": scaler, "x": xs, "y": y}
        alpha = self._choose_alpha(xs, self._to_target(y))
        coefs = np.zeros((y.shape[1], xs.shape[1]))
        intercepts = np.zeros(y.shape[1])
        masks = ~np.isnan(y)
        patterns, which = np.unique(masks.T, axis=0, return_inverse=True)  # columns sharing their training cells
        for k, ok in enumerate(patterns):
            cols = np.flatnonzero(np.ravel(which) == k)
            if ok.sum() == 0:
                continue
            reg = Ridge(alpha=alpha).fit(xs[ok], self._to_target(y[np.ix_(ok, cols)]))
            coefs[cols], intercepts[cols] = reg.coef_, reg.intercept_
        state = {"scaler": scaler, "coef": coefs, "intercept": intercepts, "alpha": alpha}
        if self.method == "blend":
            state.update({"x": xs, "y": y})
        return state

    def _choose_alpha(self, xs: np.ndarray, y: np.ndarray) -> float:
        """Penalty with the smallest leave-one-cell-out error over the grid (closed form per column)."""
        best, best_err = float(self.alphas[0]), math.inf
        for alpha in self.alphas:
            err, count = 0.0, 0
            for j in range(0, y.shape[1], max(1, y.shape[1] // 20)):
                ok = ~np.isnan(y[:, j])
                if ok.sum() < 3:
                    continue
                a = np.c_[np.ones(ok.sum()), xs[ok]]
                pen = float(alpha) * np.eye(a.shape[1])
                pen[0, 0] = 0.0
                hat = a @ np.linalg.solve(a.T @ a + pen, a.T)
                res = (y[ok, j] - hat @ y[ok, j]) / np.clip(1 - np.diag(hat), 1e-6, None)
                err, count = err + float(res @ res), count + int(ok.sum())
            if count and err / count < best_err:
                best, best_err = float(alpha), err / count
        return best

    def _neighbour_drop(self, state: dict[str, Any], xs: np.ndarray) -> np.ndarray:
        dist = np.sqrt(((xs[:, None, :] - state["x"][None, :, :]) ** 2).sum(-1))
        drop = np.full((len(xs), state["y"].shape[1]), np.nan)
        k = min(int(self.n_neighbours), len(state["x"]))
        for i in range(len(xs)):
            near = np.argsort(dist[i], kind="stable")[:k]
            w = 1.0 / (dist[i, near] + 1e-3)
            yy = state["y"][near]
            ww = np.where(np.isnan(yy), 0.0, w[:, None])
            with np.errstate(invalid="ignore", divide="ignore"):
                drop[i] = np.nansum(np.nan_to_num(yy) * ww, axis=0) / ww.sum(0)
        return pd.DataFrame(drop.T).ffill().to_numpy().T  # past the neighbours' data: their last value

    def _predict_core(self, state: dict[str, Any], x: np.ndarray) -> np.ndarray:
        xs = state["scaler"].transform(x)
        if self.method == "neighbours":
            drop = self._neighbour_drop(state, xs)
        else:
            drop = self._from_target(xs @ state["coef"].T + state["intercept"])
            if self.method == "blend":
                drop = 0.5 * (drop + self._neighbour_drop(state, xs))
        return np.minimum.accumulate(np.minimum(drop, 0.0), axis=1)  # monotone non-increasing

    # ----------------------------------------------------------------- API
    def fit(self, table: pd.DataFrame, y: Any = None) -> TrajectoryModel:
        """Learn from the whole trajectories of the training cells in ``table`` (all their cycles)."""
        self._check_params()
        covs = tuple(self.covariates)
        t = check_capacity_table(table, covs, "TrajectoryModel.fit")
        n = int(self.n_cycles)
        feats = early_features(t, n, covs)
        if len(feats) < 3:
            raise BattlabError(f"TrajectoryModel.fit: {len(feats)} cell(s); needs at least 3 training cells")
        step = int(self.grid_step)
        reach = np.sort(t.groupby("cell")["cycle"].max().to_numpy())[::-1]
        last = int(reach[min(2, len(reach) - 1)])
        if last < n + step:
            raise BattlabError(f"TrajectoryModel.fit: fewer than 3 training cells go beyond cycle {n + step}; "
                               "there is nothing after the first cycles to learn from")
        grid = np.arange(n + step, last + 1, step, dtype=float)
        yy = self._targets(t, feats, grid)
        x = feats[self._columns(feats)].to_numpy(float)
        self.state_ = self._fit_core(x, yy)
        self.feature_names_in_ = np.array(self._columns(feats), dtype=object)
        self.n_features_in_ = x.shape[1]
        self.grid_, self.cells_ = grid, list(feats.index)
        self.feature_range_ = feats.agg(["min", "max"])
        # band: out-of-fold residuals, grouped by cell
        from sklearn.model_selection import GroupKFold

        k = min(int(self.n_splits), len(feats))
        oof = np.full_like(yy, np.nan)
        order = np.random.default_rng(self.seed).permutation(len(feats))
        groups = np.empty(len(feats), int)
        groups[order] = np.arange(len(feats)) % k
        for tr, te in GroupKFold(n_splits=k).split(x, groups=groups):
            state = self._fit_core(x[tr], yy[tr])
            oof[te] = self._predict_core(state, x[te])
        self.oof_residuals_ = yy - oof
        self.band_low_, self.band_high_ = self._band(self.oof_residuals_)
        return self

    def _band(self, res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = (1 - float(self.coverage)) / 2
        low, high = np.full(res.shape[1], np.nan), np.full(res.shape[1], np.nan)
        for j in range(res.shape[1]):
            r = np.sort(res[~np.isnan(res[:, j]), j])
            if len(r) >= 3:
                m = len(r)
                k_hi = min(m - 1, math.ceil((m + 1) * (1 - a)) - 1)  # split-conformal rank
                k_lo = max(0, m - 1 - k_hi)
                low[j], high[j] = r[k_lo], r[k_hi]
        low = pd.Series(low).ffill().bfill().fillna(0.0).to_numpy()
        high = pd.Series(high).ffill().bfill().fillna(0.0).to_numpy()
        # a band never narrows with horizon
        return -np.maximum.accumulate(np.maximum(-low, 0.0)), np.maximum.accumulate(np.maximum(high, 0.0))

    def _check_fitted(self) -> None:
        if not hasattr(self, "state_"):
            raise BattlabError("TrajectoryModel: not fitted yet; call fit(table) first")

    def predict(self, table: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
        """Capacity of every cycle from N + 1 to ``horizon`` (default: the last learned grid cycle).

        Only cycles 1..N of each cell are used. Returns a long table ``cell``, ``cycle``,
        ``predicted_capacity_Ah``, ``low``, ``high`` (the band at ``coverage``).
        """
        self._check_fitted()
        n = int(self.n_cycles)
        last = int(self.grid_[-1])
        horizon = last if horizon is None else int(horizon)
        if not n < horizon <= last:
            raise BattlabError(f"TrajectoryModel.predict: horizon must be in {n + 1}..{last} (the training "
                               f"cells' data end there), got {horizon}")
        covs = tuple(self.covariates)
        t = check_capacity_table(table, covs, "TrajectoryModel.predict")
        feats = early_features(t, n, covs)
        drop = self._predict_core(self.state_, feats[list(self.feature_names_in_)].to_numpy(float))
        level = (1.0 - feats["loss_N"].to_numpy())[:, None]
        grid = np.r_[n, self.grid_]
        cycles = np.arange(n + 1, horizon + 1)
        parts = []
        for i, cell in enumerate(feats.index):
            q0 = float(feats.loc[cell, "q0_Ah"])
            mid = np.interp(cycles, grid, np.r_[0.0, drop[i]]) + level[i]
            lo = mid + np.interp(cycles, grid, np.r_[0.0, self.band_low_])
            hi = mid + np.interp(cycles, grid, np.r_[0.0, self.band_high_])
            parts.append(pd.DataFrame({"cell": cell, "cycle": cycles, "predicted_capacity_Ah": q0 * mid,
                                       "low": q0 * lo, "high": q0 * hi}))
        return pd.concat(parts, ignore_index=True)

    def predict_life(self, table: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
        """First predicted cycle below ``threshold_Ah``; the interval is where ``low`` and ``high`` cross it.

        Columns ``cell``, ``predicted_life``, ``life_low``, ``life_high``, ``reached`` (False, with NaN, when the
        central curve stays above the threshold up to the horizon: the life is beyond it).
        """
        return _life_rows(self.predict(table, horizon), float(self.threshold_Ah))


# --------------------------------------------------------------------------- empirical baselines


def _power(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(x, c)


def _double_exp(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return a * np.exp(b * x) + c * np.exp(d * x)


def _power_jac(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    xc = np.power(x, c)
    return np.c_[np.ones_like(x), -xc, -b * xc * np.log(x)]


def _double_exp_jac(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    eb, ed = np.exp(b * x), np.exp(d * x)
    return np.c_[eb, a * x * eb, ed, c * x * ed]


@dataclass(frozen=True)
class FadeCurveFit:
    """One cell's empirical fade curve, fitted on cycles scaled by ``scale`` (``x = cycle / scale``).

    ``params`` and ``cov`` are those of the scaled form (``Q = a - b x^c`` or ``a e^(bx) + c e^(dx)``);
    ``ok`` is False when the fit failed, ``reason`` says why.
    """

    form: str
    params: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]
    scale: float
    ok: bool
    reason: str = ""

    def __call__(self, cycles: np.ndarray) -> np.ndarray:
        """Capacity (Ah) at ``cycles``, never below 0."""
        fn = _power if self.form == "power" else _double_exp
        with np.errstate(over="ignore", invalid="ignore"):
            return np.clip(fn(np.asarray(cycles, float) / self.scale, *self.params), 0.0, None)


def fit_fade_curve(cycles: np.ndarray, capacity: np.ndarray, form: str = "power") -> FadeCurveFit:
    """Fit ``Q = a - b n^c`` (``form="power"``) or ``Q = a e^(bn) + c e^(dn)`` (``"double_exp"``).

    Cycles are scaled by their maximum so that the parameters are of order one; bounded least squares
    (scipy ``curve_fit``, method "trf") from a few starts, the best kept. A failure returns ``ok=False``
    with the reason instead of raising.

    >>> n = np.arange(1, 101)
    >>> fit = fit_fade_curve(n, 1.1 - 2e-6 * n ** 2, "power")
    >>> fit.ok, round(float(fit(np.array([200]))[0]), 3)
    (True, 1.02)
    """
    from scipy.optimize import curve_fit

    n, q = np.asarray(cycles, float), np.asarray(capacity, float)
    if form not in ("power", "double_exp"):
        raise BattlabError(f"fade curve form must be 'power' or 'double_exp', got {form!r}")
    nan_fit = FadeCurveFit(form, (math.nan,) * (3 if form == "power" else 4), (), 1.0, False)
    if len(n) < 5 or not np.isfinite(q).all() or (q <= 0).any():
        return dataclass_replace(nan_fit, reason=f"{len(n)} usable cycles (needs 5 positive, finite capacities)")
    scale = float(n.max())
    x = n / scale
    qmax = float(q.max())
    if form == "power":
        fn, jac, lower, upper = _power, _power_jac, [0.0, 0.0, 0.1], [2 * qmax, 2 * qmax, 10.0]
        starts = [[q[:3].mean(), max(q[:3].mean() - q[-3:].mean(), 1e-4), c] for c in (0.5, 1.0, 2.0)]
    else:
        fn, jac = _double_exp, _double_exp_jac
        lower, upper = [0.0, -5.0, -2 * qmax, -5.0], [2 * qmax, 5.0, 2 * qmax, 5.0]
        starts = [[q[0], -0.01, -1e-3, 1.0], [q[0], -0.05, 1e-3, -2.0], [q[0] * 0.99, 0.0, -0.01, 2.0]]
    best, reasons = None, []
    for p0 in starts:
        p0 = np.clip(p0, np.array(lower) + 1e-9, np.array(upper) - 1e-9)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, cov = curve_fit(fn, x, q, p0=p0, bounds=(lower, upper), method="trf", jac=jac,
                                   maxfev=1000)
        except (RuntimeError, ValueError) as exc:
            reasons.append(str(exc).splitlines()[0])
            continue
        sse = float(((fn(x, *p) - q) ** 2).sum())
        if np.isfinite(sse) and (best is None or sse < best[0]):
            best = (sse, p, cov)
    if best is None:
        return dataclass_replace(nan_fit, reason="curve_fit failed from every start: " + "; ".join(reasons))
    _, p, cov = best
    return FadeCurveFit(form, tuple(float(v) for v in p), tuple(tuple(float(v) for v in r) for r in cov),
                        scale, True)


def dataclass_replace(obj: FadeCurveFit, **changes: Any) -> FadeCurveFit:
    """A copy of the fit ``obj`` with ``changes`` (:func:`dataclasses.replace`)."""
    import dataclasses

    return dataclasses.replace(obj, **changes)


class EmpiricalFadeModel(_Saveable, BaseEstimator):
    """The practitioners' baseline: fit the cell's own cycles 1..N with an ageing curve and extrapolate.

    Parameters
    ----------
    form : {"power", "double_exp"}, default "power"
    n_cycles : int, default 100
    coverage : float, default 0.9
        Band from ``n_draws`` parameter sets drawn from the fit's covariance (NaN when it is not finite).
    threshold_Ah : float, default 0.88
    max_cycle : int, default 2000
        Default horizon of :meth:`predict`.
    n_draws : int, default 200
    seed : int, default 0

    ``fit`` learns nothing from other cells (it only checks its input); ``predict(table).attrs["failures"]``
    maps each cell whose fit failed to the reason (its rows are NaN).

    >>> t = synthetic_capacity_table(n_cells=2, seed=3)
    >>> out = EmpiricalFadeModel("power").fit(t).predict(t[t["cycle"] <= 100], horizon=300)
    >>> len(out), out.attrs["failures"]
    (400, {})
    """

    def __init__(self, form: str = "power", n_cycles: int = 100, coverage: float = 0.9,
                 threshold_Ah: float = 0.88, max_cycle: int = 2000, n_draws: int = 200, seed: int = 0) -> None:
        self.form = form
        self.n_cycles = n_cycles
        self.coverage = coverage
        self.threshold_Ah = threshold_Ah
        self.max_cycle = max_cycle
        self.n_draws = n_draws
        self.seed = seed

    def fit(self, table: pd.DataFrame | None = None, y: Any = None) -> EmpiricalFadeModel:
        """Check the parameters (and the table, when given); nothing is learned from other cells."""
        if self.form not in ("power", "double_exp"):
            raise BattlabError(f"EmpiricalFadeModel: form must be 'power' or 'double_exp', got {self.form!r}")
        if table is not None:
            check_capacity_table(table, (), "EmpiricalFadeModel.fit")
        self.fitted_ = True
        return self

    def predict(self, table: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
        """Extrapolated capacity of cycles N + 1..``horizon`` (default ``max_cycle``) of every cell."""
        if not hasattr(self, "fitted_"):
            raise BattlabError("EmpiricalFadeModel: not fitted yet; call fit() first")
        n = int(self.n_cycles)
        horizon = int(self.max_cycle) if horizon is None else int(horizon)
        if horizon <= n:
            raise BattlabError(f"EmpiricalFadeModel.predict: horizon {horizon} must exceed n_cycles={n}")
        t = _first_cycles(check_capacity_table(table, (), "EmpiricalFadeModel.predict"), n,
                          "EmpiricalFadeModel.predict")
        rng = np.random.default_rng(self.seed)
        a = (1 - float(self.coverage)) / 2
        cycles = np.arange(n + 1, horizon + 1)
        parts, failures = [], []
        for cell, g in t.groupby("cell", sort=False):
            fit = fit_fade_curve(g["cycle"].to_numpy(), g[CAPACITY].to_numpy(), self.form)
            if not fit.ok:
                failures.append({"cell": cell, "reason": fit.reason})
                nan = np.full(len(cycles), np.nan)
                parts.append(pd.DataFrame({"cell": cell, "cycle": cycles, "predicted_capacity_Ah": nan,
                                           "low": nan, "high": nan}))
                continue
            mid = fit(cycles)
            low = high = np.full(len(cycles), np.nan)
            cov = np.array(fit.cov)
            if cov.size and np.isfinite(cov).all():
                draws = rng.multivariate_normal(fit.params, cov, size=int(self.n_draws), check_valid="ignore")
                sims = np.array([dataclass_replace(fit, params=tuple(d))(cycles) for d in draws])
                low, high = np.quantile(sims, [a, 1 - a], axis=0)
                low, high = np.minimum(low, mid), np.maximum(high, mid)
            parts.append(pd.DataFrame({"cell": cell, "cycle": cycles, "predicted_capacity_Ah": mid,
                                       "low": low, "high": high}))
        out = pd.concat(parts, ignore_index=True)
        out.attrs["failures"] = {f["cell"]: f["reason"] for f in failures}
        return out

    def predict_life(self, table: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
        """First extrapolated cycle below ``threshold_Ah`` (columns as :meth:`TrajectoryModel.predict_life`)."""
        return _life_rows(self.predict(table, horizon), float(self.threshold_Ah))
