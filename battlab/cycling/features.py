"""Early-life features of a cell's discharge curves, in the house featurizer style.

Each featurizer is a scikit-learn transformer with matminer's interface: ``featurize(cell)`` gives the
features of one cell (:class:`~battlab.cycling.curves.CellCurves`), ``transform(curves)`` a table for many
(:class:`~battlab.cycling.curves.DischargeCurves`, one row per cell), ``feature_labels()``, ``citations()``,
``implementors()`` and ``feature_info()`` (family and unit of every feature, for :mod:`battlab.explain`).

- :class:`DeltaQFeatures`: statistics of dQ(V) = Q_a(V) - Q_b(V) between two cycles (default 100 and 10):
  log10 of the variance and of the absolute minimum, mean, skewness and kurtosis, and the value at 2 V
  (Severson et al. 2019: the variance alone predicts cycle life within 15 %).
- :class:`CapacityFadeFeatures`: discharge capacity at cycle 2, maximum minus cycle 2, slope and intercept of
  a linear fit over a window of cycles (default 91-100).
- :class:`DeltaQComponents`: the whole dQ(V) curve projected on principal components learned in ``fit``
  (on training cells only; Attia et al. 2021 model whole curves).

Each featurizer can compute a subset of its features (``stats`` of :class:`DeltaQFeatures`, ``values`` of
:class:`CapacityFadeFeatures`), and both can give them relative to the cell's own capacity (``per_capacity_of``,
``relative``): features that do not move when another lot of the same cell type has a few % more or less
capacity (the ``"relative"`` feature set). Cycle windows are parameters: :func:`early_life_features` gives a
named feature set (:data:`FEATURE_SETS`: the published variance and discharge models, the discharge-curve part of
the full model, its capacity-relative version, or every feature) for a prediction from the first ``n_cycles``
cycles (100, 50, 20, or 5 for the classification task).

Example
-------
>>> from battlab.cycling.curves import load_severson_subset
>>> curves = load_severson_subset()
>>> table = DeltaQFeatures(100, 10).transform(curves)
>>> table.shape, table.columns[0]
((124, 6), 'log10_var_dQ100_10')
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin

from battlab.cycling.curves import CellCurves, DischargeCurves
from battlab.errors import BattlabError

__all__ = ["DeltaQFeatures", "CapacityFadeFeatures", "DeltaQComponents", "early_life_features",
           "featurize_curves", "required_cycles", "SEVERSON_2019", "ATTIA_2021", "DELTA_Q_STATS", "FADE_VALUES",
           "FEATURE_SETS"]

SEVERSON_2019 = ("Severson, K. A. et al., Data-driven prediction of battery cycle life before capacity degradation, "
                 "Nat. Energy 4, 383-391 (2019), doi:10.1038/s41560-019-0356-8")
ATTIA_2021 = ("Attia, P. M., Severson, K. A. & Witmer, J. D., Statistical learning for accurate and interpretable "
              "battery lifetime prediction, J. Electrochem. Soc. 168, 090547 (2021), doi:10.1149/1945-7111/ac2704")

#: Statistics of dQ(V) that :class:`DeltaQFeatures` can compute, in the order of its features.
DELTA_Q_STATS = ("var", "min", "mean", "skew", "kurt", "at_voltage")
#: Capacity-fade values that :class:`CapacityFadeFeatures` can compute, in the order of its features.
FADE_VALUES = ("first", "rise", "slope", "intercept")


def _pick(kind: str, chosen: Any, known: tuple[str, ...]) -> list[int]:
    """Positions in ``known`` of the names ``chosen`` (a clear error for an unknown or empty choice)."""
    chosen = [chosen] if isinstance(chosen, str) else list(chosen)
    unknown = [c for c in chosen if c not in known]
    if unknown or not chosen:
        raise BattlabError(f"{kind} must be a non-empty subset of {list(known)}, got {chosen}")
    return [known.index(c) for c in known if c in chosen]


def _cells(X: Any) -> list[CellCurves]:
    if isinstance(X, CellCurves):
        return [X]
    if isinstance(X, DischargeCurves):
        return list(X)
    if isinstance(X, (list, tuple)) and all(isinstance(c, CellCurves) for c in X):
        return list(X)
    raise BattlabError(f"expected DischargeCurves or CellCurves, got {type(X).__name__}")


def _index(X: Any, cells: list[CellCurves]) -> pd.Index:
    return pd.Index([c.name for c in cells], name="cell")


class _CurveFeaturizer(TransformerMixin, BaseEstimator):
    """Base: cells' curves in, one row of features per cell out."""

    family = ""

    def fit(self, X: Any, y: Any = None) -> _CurveFeaturizer:
        self.n_features_in_ = 1
        return self

    def featurize(self, cell: CellCurves) -> list[float]:
        raise NotImplementedError

    def transform(self, X: Any) -> pd.DataFrame:
        cells = _cells(X)
        with np.errstate(divide="ignore", invalid="ignore"):
            rows = [self.featurize(c) for c in cells]
        values = np.asarray(rows, dtype=float).reshape(len(cells), len(self.feature_labels()))
        values[~np.isfinite(values)] = np.nan  # log10(0): no information, imputed by the models
        return pd.DataFrame(values, columns=self.feature_labels(), index=_index(X, cells))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.feature_labels(), dtype=object)

    def feature_labels(self) -> list[str]:
        raise NotImplementedError

    def feature_info(self) -> pd.DataFrame:
        """One row per feature: family, property and unit (for :func:`battlab.explain.explain`)."""
        labels = self.feature_labels()
        return pd.DataFrame({"feature": labels, "family": self.family, "property": self._properties(),
                             "unit": self._units()})

    def _properties(self) -> list[str]:
        return self.feature_labels()

    def _units(self) -> list[str]:
        return [""] * len(self.feature_labels())

    def required_cycles(self) -> list[int]:
        """Cycles whose data :meth:`featurize` needs."""
        raise NotImplementedError

    def citations(self) -> list[str]:
        return [SEVERSON_2019]

    def implementors(self) -> list[str]:
        return ["battlab developers"]


class DeltaQFeatures(_CurveFeaturizer):
    """Statistics of dQ(V) = Q_{cycle_a}(V) - Q_{cycle_b}(V), the difference of two discharge curves.

    Features: ``log10_var``, ``log10_abs_min``, ``log10_abs_mean``, ``log10_abs_skew``, ``log10_abs_kurt``
    (variance with ddof 0, Pearson kurtosis, as MATLAB's ``var``/``kurtosis`` in the paper) and the value at
    ``voltage`` (the grid voltage nearest to it), each suffixed ``_dQ{a}_{b}``; ``stats`` (names of
    :data:`DELTA_Q_STATS`) keeps a subset of them, e.g. ``("var", "min")`` for the paper's full model.

    ``per_capacity_of`` (a cycle, e.g. 2): dQ(V) is divided by the cell's discharge capacity of that cycle (the
    last point of its curve) before the statistics, and the labels end in ``_per_Q{cycle}``. The features are
    then unchanged when all of a cell's capacities are scaled by one factor (another lot of the same cell type
    with a few % more or less capacity): see :data:`FEATURE_SETS` ``"relative"``.

    Example
    -------
    >>> import numpy as np
    >>> v = np.linspace(3.6, 2.0, 4)
    >>> cell = CellCurves(np.array([[0, .3, .6, 1.0], [0, .2, .5, .9]]), v, np.array([10, 100]),
    ...                   np.array([1.0, .9]), np.array([10, 100]))
    >>> f = DeltaQFeatures(cycle_a=100, cycle_b=10)
    >>> dict(zip(f.feature_labels(), np.round(f.featurize(cell), 3).tolist()))["dQ100_10_at_2V"]
    -0.1
    >>> DeltaQFeatures(stats=("min", "var")).feature_labels()
    ['log10_var_dQ100_10', 'log10_abs_min_dQ100_10']
    >>> rel = DeltaQFeatures(100, 10, stats=("var",), per_capacity_of=10)
    >>> half = CellCurves(cell.Q / 2, v, cell.cycles, cell.capacity / 2, cell.capacity_cycles)
    >>> rel.feature_labels(), bool(np.isclose(rel.featurize(cell)[0], rel.featurize(half)[0]))
    (['log10_var_dQ100_10_per_Q10'], True)
    """

    family = "dQ(V) statistics"

    def __init__(self, cycle_a: int = 100, cycle_b: int = 10, voltage: float = 2.0,
                 stats: tuple[str, ...] = DELTA_Q_STATS, per_capacity_of: int | None = None):
        self.cycle_a = cycle_a
        self.cycle_b = cycle_b
        self.voltage = voltage
        self.stats = stats
        self.per_capacity_of = per_capacity_of

    def _keep(self) -> list[int]:
        return _pick("stats", self.stats, DELTA_Q_STATS)

    def _suffix(self) -> str:
        return f"dQ{self.cycle_a}_{self.cycle_b}"

    def _rel(self) -> str:
        return "" if self.per_capacity_of is None else f"_per_Q{int(self.per_capacity_of)}"

    def delta_q(self, cell: CellCurves) -> np.ndarray:
        """The dQ(V) curve of one cell (Ah on the cell's voltage grid)."""
        return np.asarray(cell.curve(self.cycle_a), dtype=float) - np.asarray(cell.curve(self.cycle_b), dtype=float)

    def featurize(self, cell: CellCurves) -> list[float]:
        d = self.delta_q(cell)
        if self.per_capacity_of is not None:  # Ah per Ah of the cell's own capacity at that cycle
            d = d / float(np.asarray(cell.curve(int(self.per_capacity_of)), dtype=float)[-1])
        at = d[int(np.argmin(np.abs(cell.voltages - self.voltage)))]
        values = [np.log10(np.var(d)), np.log10(abs(d.min())), np.log10(abs(d.mean())),
                  np.log10(abs(stats.skew(d))), np.log10(abs(stats.kurtosis(d, fisher=False))), float(at)]
        return [values[i] for i in self._keep()]

    def feature_labels(self) -> list[str]:
        s, r = self._suffix(), self._rel()
        labels = [f"log10_var_{s}{r}", f"log10_abs_min_{s}{r}", f"log10_abs_mean_{s}{r}", f"log10_abs_skew_{s}",
                  f"log10_abs_kurt_{s}", f"{s}_at_{self.voltage:g}V{r}"]
        return [labels[i] for i in self._keep()]

    def _properties(self) -> list[str]:
        names = ["variance", "minimum", "mean", "skewness", "kurtosis", f"value at {self.voltage:g} V"]
        return [names[i] for i in self._keep()]

    def _units(self) -> list[str]:
        units = ["log10(Ah^2)", "log10(Ah)", "log10(Ah)", "log10", "log10", "Ah"]
        if self.per_capacity_of is not None:
            units = ["log10", "log10", "log10", "log10", "log10", "Ah/Ah"]
        return [units[i] for i in self._keep()]

    def required_cycles(self) -> list[int]:
        extra = set() if self.per_capacity_of is None else {int(self.per_capacity_of)}
        return sorted({int(self.cycle_a), int(self.cycle_b), *extra})


class CapacityFadeFeatures(_CurveFeaturizer):
    """Capacity fade of the early cycles.

    Features: discharge capacity at ``first_cycle`` (``Qd_cycle2``), the largest capacity of cycles
    ``first_cycle..window[1]`` minus it (``Qd_max_minus_cycle2``), and the slope (Ah/cycle) and intercept (Ah, at
    cycle 0) of a least-squares line through the capacities of the cycles in ``window`` (default 91-100; the
    paper's full model fits cycles 2-100). ``values`` (names of :data:`FADE_VALUES`) keeps a subset of them.

    ``relative=True``: each value is divided by the cell's own capacity at ``first_cycle`` (fade as a fraction
    of it: slope in 1/cycle, intercept and rise in Ah/Ah; labels end in ``_per_Q{first_cycle}``; ``"first"`` would
    be 1 and is not allowed). Such features do not move when a lot of cells has a few % more or less capacity.

    A capacity that differs by more than ``tolerance`` (relative) from the median of the cycles within
    ``half_window`` cycles of it is a logging glitch of one cycle, not fade (a Hampel filter; the Severson data
    hold four of about 31 Ah for a 1.1 Ah cell and a few single cycles 6 % low): it is ignored, and
    :meth:`ignored_cycles` lists it. Sustained fade moves the neighbours' median with it and is kept.

    Example
    -------
    >>> import numpy as np
    >>> cyc = np.arange(2, 11)
    >>> cell = CellCurves(np.zeros((0, 3)), np.array([3.6, 2.8, 2.0]), np.array([], dtype=int),
    ...                   1.1 - 0.001 * cyc, cyc)
    >>> f = CapacityFadeFeatures(window=(6, 10))
    >>> [round(x, 4) for x in f.featurize(cell)]
    [1.098, 0.0, -0.001, 1.1]
    >>> CapacityFadeFeatures(window=(2, 100), values=("first", "slope", "intercept")).feature_labels()
    ['Qd_cycle2', 'fade_slope_2_100', 'fade_intercept_2_100']
    >>> rel = CapacityFadeFeatures(window=(6, 10), values=("slope", "intercept"), relative=True)
    >>> rel.feature_labels(), [round(x, 5) for x in rel.featurize(cell)]
    (['fade_slope_6_10_per_Q2', 'fade_intercept_6_10_per_Q2'], [-0.00091, 1.00182])
    """

    family = "capacity fade"

    def __init__(self, first_cycle: int = 2, window: tuple[int, int] = (91, 100), tolerance: float = 0.02,
                 half_window: int = 3, values: tuple[str, ...] = FADE_VALUES, relative: bool = False):
        self.first_cycle = first_cycle
        self.window = window
        self.tolerance = tolerance
        self.half_window = half_window
        self.values = values
        self.relative = relative

    def _keep(self) -> list[int]:
        keep = _pick("values", self.values, FADE_VALUES)
        if self.relative and 0 in keep:
            raise BattlabError("values of relative capacity-fade features cannot include 'first' (it would be 1); "
                               f"choose from {list(FADE_VALUES[1:])}")
        return keep

    def _glitch(self, cell: CellCurves) -> np.ndarray:
        cap = pd.Series(np.asarray(cell.capacity, dtype=float), index=np.asarray(cell.capacity_cycles, dtype=int))
        cap = cap.sort_index()
        med = cap.rolling(2 * int(self.half_window) + 1, center=True, min_periods=1).median()
        bad = (np.abs(cap - med) > float(self.tolerance) * med) & cap.notna()
        return bad.reindex(np.asarray(cell.capacity_cycles, dtype=int)).to_numpy(dtype=bool)

    def ignored_cycles(self, cell: CellCurves) -> list[int]:
        """Cycles whose capacity is ignored as a one-cycle glitch (see the class docstring)."""
        return [int(c) for c in cell.capacity_cycles[self._glitch(cell)]]

    def featurize(self, cell: CellCurves) -> list[float]:
        lo, hi = (int(w) for w in self.window)
        first = int(self.first_cycle)
        have = set(int(c) for c in cell.capacity_cycles[np.isfinite(cell.capacity)])
        missing = [c for c in (first, *range(lo, hi + 1)) if c not in have]
        if missing:
            raise BattlabError(f"{cell.name or 'cell'}: capacity-fade features need cycles {first} and {lo}-{hi}; "
                               f"no discharge capacity for cycle(s) {missing[:10]}")
        # the first cycle is the reference of the rise: kept as measured (a cell fading fast flags every cycle)
        glitch = self._glitch(cell) & (np.asarray(cell.capacity_cycles) != first)
        in_window = (cell.capacity_cycles >= lo) & (cell.capacity_cycles <= hi) & np.isfinite(cell.capacity)
        if not (in_window & ~glitch).any():  # nothing left of the window: the measured values, not an empty fit
            glitch &= ~in_window
        if glitch.any():
            cell = CellCurves(cell.Q, cell.voltages, cell.cycles, np.where(glitch, np.nan, cell.capacity),
                              cell.capacity_cycles, cell.name)
        cyc, cap = cell.capacities(first, hi)
        q_first = float(cap[cyc == first][0])
        wc, wq = cell.capacities(lo, hi)
        slope, intercept = np.polyfit(wc.astype(float), wq, 1) if len(wc) > 1 else (np.nan, float(wq[0]))
        values = [q_first, float(np.max(cap) - q_first), float(slope), float(intercept)]
        if self.relative:  # fractions of the cell's own capacity at first_cycle
            values = [v / q_first for v in values]
        return [values[i] for i in self._keep()]

    def feature_labels(self) -> list[str]:
        lo, hi = self.window
        r = f"_per_Q{self.first_cycle}" if self.relative else ""
        labels = [f"Qd_cycle{self.first_cycle}", f"Qd_max_minus_cycle{self.first_cycle}{r}", f"fade_slope_{lo}_{hi}{r}",
                  f"fade_intercept_{lo}_{hi}{r}"]
        return [labels[i] for i in self._keep()]

    def _properties(self) -> list[str]:
        names = ["initial capacity", "capacity rise", "fade slope", "fade intercept"]
        return [names[i] for i in self._keep()]

    def _units(self) -> list[str]:
        units = ["Ah/Ah", "Ah/Ah", "1/cycle", "Ah/Ah"] if self.relative else ["Ah", "Ah", "Ah/cycle", "Ah"]
        return [units[i] for i in self._keep()]

    def required_cycles(self) -> list[int]:
        lo, hi = (int(w) for w in self.window)
        return sorted({int(self.first_cycle), *range(lo, hi + 1)})


class DeltaQComponents(TransformerMixin, BaseEstimator):
    """The whole dQ(V) curve projected on principal components learned in ``fit`` (training cells only).

    ``fit``/``transform`` take :class:`DischargeCurves` (dQ between ``cycle_a`` and ``cycle_b`` is computed)
    or an array of dQ(V) curves (cells x voltages). Learned state: ``pca_`` (scikit-learn PCA on the curves),
    ``n_features_in_`` (the number of voltages).

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> curves = rng.normal(size=(20, 50))
    >>> DeltaQComponents(n_components=2).fit(curves).transform(curves).shape
    (20, 2)
    """

    family = "dQ(V) components"

    def __init__(self, n_components: int = 3, cycle_a: int = 100, cycle_b: int = 10, seed: int = 0):
        self.n_components = n_components
        self.cycle_a = cycle_a
        self.cycle_b = cycle_b
        self.seed = seed

    def _curves(self, X: Any) -> tuple[np.ndarray, pd.Index | None]:
        if isinstance(X, (DischargeCurves, CellCurves)) or (isinstance(X, list) and X
                                                           and isinstance(X[0], CellCurves)):
            cells = _cells(X)
            dq = DeltaQFeatures(self.cycle_a, self.cycle_b)
            return np.asarray([dq.delta_q(c) for c in cells], dtype=float), _index(X, cells)
        from sklearn.utils.validation import check_array

        return check_array(X, dtype=float), None

    def fit(self, X: Any, y: Any = None) -> DeltaQComponents:
        from sklearn.decomposition import PCA

        curves, _ = self._curves(X)
        self.n_features_in_ = curves.shape[1]
        self.pca_ = PCA(n_components=self.n_components, random_state=self.seed).fit(curves)
        return self

    def transform(self, X: Any) -> Any:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "pca_")
        curves, index = self._curves(X)
        if curves.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {curves.shape[1]} features, but DeltaQComponents is expecting "
                             f"{self.n_features_in_} features as input")
        out = self.pca_.transform(curves)
        return pd.DataFrame(out, columns=self.feature_labels(), index=index) if index is not None else out

    def feature_labels(self) -> list[str]:
        return [f"dQ{self.cycle_a}_{self.cycle_b}_pc{k + 1}" for k in range(int(self.n_components))]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.feature_labels(), dtype=object)

    def feature_info(self) -> pd.DataFrame:
        labels = self.feature_labels()
        return pd.DataFrame({"feature": labels, "family": self.family,
                             "property": [f"component {k + 1}" for k in range(len(labels))], "unit": "Ah"})

    def required_cycles(self) -> list[int]:
        return sorted({int(self.cycle_a), int(self.cycle_b)})

    def citations(self) -> list[str]:
        return [ATTIA_2021]

    def implementors(self) -> list[str]:
        return ["battlab developers"]


#: Named feature sets of :func:`early_life_features` (``n``: the cycle window, e.g. 100; ``b``: cycle 10, or
#: ``n - 1`` below 20 cycles).
FEATURE_SETS: dict[str, str] = {
    "all": "every dQ(V) statistic of dQn-b, capacity at cycle 2, max minus cycle 2, fade line over the last 10 "
           "cycles (battlab's first set)",
    "variance": "log variance of dQn-b (Severson 2019, variance model)",
    "discharge": "log variance, |min|, |skewness|, |kurtosis| of dQn-b, capacity at cycle 2, max minus cycle 2 "
                 "(Severson 2019, discharge model)",
    "full_discharge": "log variance and |min| of dQn-b, capacity at cycle 2, slope and intercept of the fade line "
                      "over cycles 2-n (Severson 2019, full model without its charge-time, temperature and "
                      "resistance features)",
    "relative": "log variance and |min| of dQn-b divided by the cell's cycle-2 capacity, slope and intercept of "
                "the fade line over cycles 2-n as fractions of the cycle-2 capacity: full_discharge without "
                "absolute Ah, unchanged when a lot of cells has a few % more or less capacity (battlab, issue 22)",
}


def early_life_features(n_cycles: int = 100, preset: str = "all") -> list[_CurveFeaturizer]:
    """The featurizers of the feature set ``preset`` (:data:`FEATURE_SETS`) from the first ``n_cycles`` cycles.

    dQ between cycle ``n_cycles`` and cycle 10 (between ``n_cycles`` and ``n_cycles - 1`` below 20 cycles, as
    the paper's classifier uses cycles 5 and 4), always the first featurizer; capacity fade with a window of the
    last 10 cycles (``"all"``; from cycle 2 when fewer) or of cycles 2-``n_cycles`` (the paper's sets).

    Example
    -------
    >>> [f.feature_labels()[0] for f in early_life_features(50)]
    ['log10_var_dQ50_10', 'Qd_cycle2']
    >>> early_life_features(5)[1].window
    (2, 5)
    >>> [label for f in early_life_features(100, "full_discharge") for label in f.feature_labels()]
    ['log10_var_dQ100_10', 'log10_abs_min_dQ100_10', 'Qd_cycle2', 'fade_slope_2_100', 'fade_intercept_2_100']
    """
    n = int(n_cycles)
    if n < 3:
        raise BattlabError(f"early-life features need at least 3 cycles, got n_cycles={n}")
    if preset not in FEATURE_SETS:
        raise BattlabError(f"unknown feature set {preset!r}; feature sets are {sorted(FEATURE_SETS)}")
    b = 10 if n >= 20 else n - 1
    if preset == "variance":
        return [DeltaQFeatures(n, b, stats=("var",))]
    if preset == "discharge":
        return [DeltaQFeatures(n, b, stats=("var", "min", "skew", "kurt")),
                CapacityFadeFeatures(2, (2, n), values=("first", "rise"))]
    if preset == "full_discharge":
        return [DeltaQFeatures(n, b, stats=("var", "min")),
                CapacityFadeFeatures(2, (2, n), values=("first", "slope", "intercept"))]
    if preset == "relative":
        return [DeltaQFeatures(n, b, stats=("var", "min"), per_capacity_of=2),
                CapacityFadeFeatures(2, (2, n), values=("slope", "intercept"), relative=True)]
    return [DeltaQFeatures(n, b), CapacityFadeFeatures(2, (max(2, n - 9), n))]


def required_cycles(featurizers: list[Any]) -> list[int]:
    """The cycles a set of featurizers needs, sorted."""
    return sorted({c for f in featurizers for c in f.required_cycles()})


def featurize_curves(curves: DischargeCurves, featurizers: list[Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feature table (one row per cell, the cell table's columns first) and feature info of ``featurizers``.

    Fitted estimators (e.g. :class:`DeltaQComponents` after ``fit``) are applied as they are.
    """
    parts = [f.transform(curves) for f in featurizers]
    table = pd.concat([curves.cells.set_index(pd.Index(parts[0].index))] + parts, axis=1).reset_index(drop=True)
    info = pd.concat([f.feature_info() for f in featurizers], ignore_index=True)
    return table, info
