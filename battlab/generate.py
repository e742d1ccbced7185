"""Generated rows where measurements are missing: a conditional generative model of a table's rows.

:class:`ConditionalGaussian` learns the distribution of some columns of a table (the *outputs*, e.g. the pulse
voltages U1..U21) given others (the *conditions*, e.g. SOC and SOH), optionally separately for each value of a
grouping column (e.g. the cell kind): the outputs' mean is a ridge regression on polynomial terms of the
standardised conditions and their scatter around it a multivariate normal with a full (optionally Ledoit-Wolf
shrunk) covariance. With ``degree=1`` this is exactly the Gaussian conditional of a joint multivariate normal of
``[conditions, outputs]`` (:math:`\\mu_{y|c} = \\mu_y + \\Sigma_{yc}\\Sigma_{cc}^{-1}(c - \\mu_c)`,
:math:`\\Sigma_{y|c} = \\Sigma_{yy} - \\Sigma_{yc}\\Sigma_{cc}^{-1}\\Sigma_{cy}`); higher degrees bend the mean.
It is fitted on the conditions measured and :meth:`ConditionalGaussian.sample` draws rows at any others.

Every sampled row carries ``generated=True`` and ``extrapolated`` (a condition outside the range its group was
fitted on); rows are never mixed silently with measurements. The SOH use (issue 23): generate pulse responses at
the SOC levels missing from a training set, :func:`battlab.health.soh.evaluate_soh` with ``generator=``.

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> c = rng.uniform(0, 1, 500)
>>> table = pd.DataFrame({"c": c, "y": 2 * c + 1 + rng.normal(scale=0.1, size=500)})
>>> gen = ConditionalGaussian(conditions=["c"], outputs=["y"]).fit(table)
>>> rows = gen.sample(pd.DataFrame({"c": [0.5]}), n=2000, seed=0)
>>> round(float(rows["y"].mean()), 1), round(float(rows["y"].std()), 1), bool(rows["generated"].all())
(2.0, 0.1, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from battlab.errors import BattlabError

__all__ = ["ConditionalGaussian", "GENERATED"]

#: Column that marks a generated row (True) in every table :meth:`ConditionalGaussian.sample` returns.
GENERATED = "generated"
_ALL = "__all__"


def _numeric(table: pd.DataFrame, columns: list[str], what: str) -> np.ndarray:
    """The columns as floats, or a one-line error naming the first bad row and column."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise BattlabError(f"the {what} table has no column(s) {missing}; it has {list(table.columns)[:12]}")
    out = np.empty((len(table), len(columns)))
    for j, col in enumerate(columns):
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            row = table.index[bad][0]
            value = table[col][row]
            shown = repr(value) if isinstance(value, str) else str(value)
            raise BattlabError(f"row {row}, column {col!r}: {shown} is not a finite number")
        out[:, j] = values.to_numpy(dtype=float)
    return out


class ConditionalGaussian(BaseEstimator):
    """Rows of ``outputs`` given ``conditions``: polynomial ridge mean plus a multivariate normal residual.

    Parameters
    ----------
    conditions, outputs
        Column names: what rows are generated *at* (e.g. ``["SOC", "SOH"]``) and what is generated
        (e.g. ``["U1", ..., "U21"]``).
    by
        Optional grouping column (e.g. ``"cell_kind"``): one model per value; :meth:`sample` then needs it.
    degree
        Degree of the polynomial in the standardised conditions for the mean (1: the Gaussian conditional of a
        joint normal; 2: adds squares and products), or a tuple of candidates: :meth:`fit` then keeps the one
        whose mean best predicts the rows of each value of ``degree_by`` left out in turn (e.g. each SOC level:
        how well a level not fitted is generated), on the training rows only (``degree_``, ``degree_scores_``).
    degree_by
        Condition column whose values are left out in turn when ``degree`` is a tuple.
    alpha
        Ridge penalty of the mean (on standardised conditions; small: close to least squares).
    shrinkage
        Residual covariance: ``"ledoit-wolf"`` (default; well conditioned with few rows per group), ``None``
        (maximum likelihood, unbiased for many rows) or a float in [0, 1] (shrunk towards its scaled identity).
    seed
        Default seed of :meth:`sample`.

    Learned: ``groups_`` (group -> fitted parts), ``degree_``, ``degree_scores_`` (candidate -> leave-one-level-out
    RMSE of the standardised outputs; empty for a single degree), ``n_features_in_``.
    """

    def __init__(self, conditions: list[str] | tuple[str, ...] = ("SOC", "SOH"),
                 outputs: list[str] | tuple[str, ...] = tuple(f"U{i}" for i in range(1, 22)), by: str | None = None,
                 degree: int | tuple[int, ...] = 1, degree_by: str | None = None, alpha: float = 1e-6,
                 shrinkage: str | float | None = "ledoit-wolf", seed: int = 0) -> None:
        self.conditions = conditions
        self.outputs = outputs
        self.by = by
        self.degree = degree
        self.degree_by = degree_by
        self.alpha = alpha
        self.shrinkage = shrinkage
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(self, table: pd.DataFrame, y: Any = None) -> ConditionalGaussian:
        """Learn, per group, the mean of the outputs given the conditions and the residual covariance.

        Rows already marked ``generated`` are refused: a generator learns from measurements only.
        """
        from sklearn.covariance import LedoitWolf, ShrunkCovariance, empirical_covariance
        from sklearn.preprocessing import PolynomialFeatures

        if not isinstance(table, pd.DataFrame):
            raise BattlabError(f"expected a table (DataFrame) to fit the generator on, got {type(table).__name__}")
        conditions, outputs = list(self.conditions), list(self.outputs)
        if not conditions or not outputs:
            raise BattlabError("a conditional generator needs at least one condition and one output column")
        overlap = sorted(set(conditions) & set(outputs))
        if overlap:
            raise BattlabError(f"column(s) {overlap} are both conditions and outputs")
        candidates = tuple(self.degree) if isinstance(self.degree, tuple | list) else (self.degree,)
        if not candidates or any(not isinstance(d, int | np.integer) or isinstance(d, bool) or d < 1
                                 for d in candidates):
            raise BattlabError(f"degree must be an integer >= 1 or a tuple of them, got {self.degree!r}")
        if len(candidates) > 1 and self.degree_by not in conditions:
            raise BattlabError(f"degree candidates {candidates} need degree_by: one of the conditions {conditions} "
                               f"whose values are left out in turn, got {self.degree_by!r}")
        if GENERATED in table.columns and table[GENERATED].fillna(False).astype(bool).any():
            row = table.index[table[GENERATED].fillna(False).astype(bool).to_numpy()][0]
            raise BattlabError(f"row {row} is marked {GENERATED!r}: a generator is fitted on measured rows only")
        C, Y = _numeric(table, conditions, "training"), _numeric(table, outputs, "training")
        if self.by is not None and self.by not in table.columns:
            raise BattlabError(f"the training table has no grouping column {self.by!r}")
        labels = table[self.by].astype(str).to_numpy() if self.by is not None else np.full(len(table), _ALL)
        self.degree_scores_: dict[int, float] = {}
        if len(candidates) > 1:
            self.degree_scores_ = self._leave_level_out(C, Y, labels, conditions.index(self.degree_by), candidates)
            usable = {d: v for d, v in self.degree_scores_.items() if np.isfinite(v)}
            if not usable:
                raise BattlabError(f"no degree among {candidates} can be scored leaving one {self.degree_by!r} "
                                   "value out (too few rows or values)")
            self.degree_ = int(min(usable, key=lambda d: (usable[d], d)))
        else:
            self.degree_ = int(candidates[0])
        self.groups_: dict[str, dict[str, Any]] = {}
        for g in sorted({str(label) for label in labels}):
            m = labels == g
            n_terms = PolynomialFeatures(self.degree_, include_bias=False).fit(C[m]).n_output_features_
            if m.sum() < n_terms + 3:
                raise BattlabError(f"group {g!r}: {int(m.sum())} row(s), too few for a degree-{self.degree_} "
                                   f"generator of {len(conditions)} condition(s) (needs {n_terms + 3})")
            mean = self._mean_model(self.degree_).fit(C[m], Y[m])
            resid = Y[m] - mean.predict(C[m]).reshape(-1, len(outputs))
            if self.shrinkage == "ledoit-wolf":
                cov = LedoitWolf(assume_centered=True).fit(resid).covariance_
            elif self.shrinkage is None:
                cov = empirical_covariance(resid, assume_centered=True)
            elif isinstance(self.shrinkage, float | int) and 0 <= self.shrinkage <= 1:
                cov = ShrunkCovariance(shrinkage=float(self.shrinkage), assume_centered=True).fit(resid).covariance_
            else:
                raise BattlabError(f"shrinkage must be 'ledoit-wolf', None or a number in [0, 1], "
                                   f"got {self.shrinkage!r}")
            # a factor that also works for a singular covariance (eigen-decomposition, negative rounding clipped)
            w, v = np.linalg.eigh(cov)
            self.groups_[g] = {"mean": mean, "cov": cov, "factor": v * np.sqrt(np.clip(w, 0, None)),
                               "low": C[m].min(axis=0), "high": C[m].max(axis=0), "n_rows": int(m.sum())}
        self.n_features_in_ = len(conditions)
        return self

    def _mean_model(self, degree: int) -> Any:
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import PolynomialFeatures, StandardScaler

        return make_pipeline(StandardScaler(), PolynomialFeatures(degree, include_bias=False), Ridge(alpha=self.alpha))

    def _leave_level_out(self, C: np.ndarray, Y: np.ndarray, labels: np.ndarray, column: int,
                         candidates: tuple[int, ...]) -> dict[int, float]:
        """RMSE (outputs standardised per group) of each degree's mean on the rows of each value of a condition
        left out in turn, per group; NaN for a degree that cannot be fitted without a value."""
        scores: dict[int, float] = {}
        for d in candidates:
            errors, ok = [], True
            for g in sorted(set(labels)):
                m = labels == g
                Cg, Yg = C[m], Y[m]
                scale = Yg.std(axis=0)
                scale[scale == 0] = 1.0
                levels = np.unique(Cg[:, column])
                n_terms = len(self._mean_model(d)[:2].fit(Cg).transform(Cg[:1])[0])
                for level in levels:
                    out = Cg[:, column] == level
                    if (~out).sum() < n_terms + 3 or len(np.unique(Cg[~out, column])) <= d:
                        ok = False
                        break
                    pred = self._mean_model(d).fit(Cg[~out], Yg[~out]).predict(Cg[out]).reshape(out.sum(), -1)
                    errors.append(((pred - Yg[out]) / scale) ** 2)
                if not ok:
                    break
            scores[int(d)] = float(np.sqrt(np.concatenate(errors).mean())) if ok and errors else float("nan")
        return scores

    # ------------------------------------------------------------------ use
    def _check_fitted(self) -> None:
        if not hasattr(self, "groups_"):
            raise BattlabError("the generator is not fitted: call fit(table) first")

    def mean(self, conditions: pd.DataFrame) -> pd.DataFrame:
        """The expected outputs at each row of ``conditions`` (index of ``conditions``)."""
        self._check_fitted()
        C, labels = self._conditions(conditions)
        out = np.empty((len(C), len(self.outputs)))
        for g in set(labels):
            m = labels == g
            out[m] = self.groups_[g]["mean"].predict(C[m]).reshape(-1, len(self.outputs))
        return pd.DataFrame(out, columns=list(self.outputs), index=conditions.index)

    def covariance(self, group: str | None = None) -> np.ndarray:
        """The residual covariance of the outputs (of ``group`` when fitted with ``by``)."""
        self._check_fitted()
        key = _ALL if self.by is None else str(group)
        if key not in self.groups_:
            raise BattlabError(f"no generator for group {group!r}; fitted groups: {sorted(self.groups_)}")
        return self.groups_[key]["cov"].copy()

    def _conditions(self, conditions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(conditions, pd.DataFrame):
            raise BattlabError(f"expected the conditions as a table (DataFrame), got {type(conditions).__name__}")
        C = _numeric(conditions, list(self.conditions), "conditions")
        if self.by is None:
            return C, np.full(len(C), _ALL)
        if self.by not in conditions.columns:
            raise BattlabError(f"the conditions table has no grouping column {self.by!r}")
        labels = conditions[self.by].astype(str).to_numpy()
        unknown = [g for g in labels if g not in self.groups_]
        if unknown:
            row = conditions.index[labels == unknown[0]][0]
            raise BattlabError(f"row {row}, column {self.by!r}: {unknown[0]!r} was not fitted (fitted: "
                               f"{sorted(self.groups_)})")
        return C, labels

    def sample(self, conditions: pd.DataFrame, n: int = 1, seed: int | None = None) -> pd.DataFrame:
        """``n`` generated rows per row of ``conditions``: its columns, the outputs drawn given them, and
        ``generated`` (True), ``extrapolated`` (a condition outside the fitted range of its group),
        ``source_row`` (index of its condition row). Same seed, same rows.

        Example
        -------
        >>> t = pd.DataFrame({"c": [0.0, 1, 2, 3, 4, 5], "y": [0.1, 1.0, 2.1, 2.9, 4.0, 5.1]})
        >>> g = ConditionalGaussian(conditions=["c"], outputs=["y"]).fit(t)
        >>> g.sample(pd.DataFrame({"c": [2.5, 9.0]}), seed=1)[["c", "generated", "extrapolated"]]
             c  generated  extrapolated
        0  2.5       True         False
        1  9.0       True          True
        """
        self._check_fitted()
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
            raise BattlabError(f"n must be a whole number of rows per condition >= 1, got {n!r}")
        C, labels = self._conditions(conditions)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        reps = np.repeat(np.arange(len(C)), n)
        C, labels = C[reps], labels[reps]
        Y = np.empty((len(C), len(self.outputs)))
        outside = np.zeros(len(C), dtype=bool)
        z = rng.standard_normal((len(C), len(self.outputs)))  # drawn once, in row order: independent of grouping
        for g in sorted(set(labels)):
            m = labels == g
            part = self.groups_[g]
            Y[m] = part["mean"].predict(C[m]).reshape(-1, len(self.outputs)) + z[m] @ part["factor"].T
            outside[m] = ((C[m] < part["low"] - 1e-12) | (C[m] > part["high"] + 1e-12)).any(axis=1)
        base = conditions.iloc[reps].reset_index(drop=True)
        base = base.drop(columns=[c for c in self.outputs if c in base.columns])
        out = pd.concat([base, pd.DataFrame(Y, columns=list(self.outputs))], axis=1)
        out[GENERATED] = True
        out["extrapolated"] = outside
        out["source_row"] = np.asarray(conditions.index)[reps]
        return out

    def save(self, path: str | Path) -> Path:
        """Write the fitted generator (joblib) to ``path`` (a file, or a folder: ``generator.joblib`` in it)."""
        import joblib

        self._check_fitted()
        p = Path(path).expanduser()
        if p.is_dir() or not p.suffix:
            p.mkdir(parents=True, exist_ok=True)
            p = p / "generator.joblib"
        joblib.dump(self, p)
        return p

    @classmethod
    def load(cls, path: str | Path) -> ConditionalGaussian:
        """Read a generator written by :meth:`save`."""
        from battlab.persist import load_joblib

        return load_joblib(path, cls, file_name="generator.joblib",
                           missing="no generator at {path} (expected a file written by ConditionalGaussian.save)",
                           wrong="{path} does not hold a conditional generator")
