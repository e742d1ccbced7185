"""Cross-validation splits that do not leak near-duplicate materials between train and test.

Materials tables hold families of near-duplicates (LiCoO2, Li0.9CoO2, Li0.8CoO2, ...). A random
K-fold puts members of one family on both sides of a fold, so the model is tested on compositions it
has practically seen and the score is too optimistic. The default for materials tables is therefore a
grouped split by chemical system (:data:`DEFAULT_SPLIT`).

Every splitter is a scikit-learn CV splitter (``split(X, y=None, groups=None)`` yields
``(train_idx, test_idx)`` integer arrays; ``get_n_splits()``), so it works with ``cross_validate``,
``GridSearchCV`` or a hand-written optuna loop. ``name`` / ``describe()`` give a short human string to
report beside every metric and ``to_dict()`` a record for model cards.

Example
-------
>>> import pandas as pd
>>> df = pd.DataFrame({"formula": ["LiCoO2", "Li0.9CoO2", "LiMn2O4", "LiFePO4", "NaCoO2", "Li2S"]})
>>> splitter = make_splitter(DEFAULT_SPLIT, n_splits=3)
>>> splitter.name
'group 3-fold by chemical system (seed 0)'
>>> for train, test in splitter.split(df):
...     print(sorted(df["formula"].iloc[test]))
['Li0.9CoO2', 'LiCoO2', 'LiFePO4']
['LiMn2O4', 'NaCoO2']
['Li2S']
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError
from battlab.formulas import parse_formula

__all__ = [
    "DEFAULT_SPLIT",
    "GroupKFoldBy",
    "LeaveClusterOut",
    "MatbenchFolds",
    "OfficialSplit",
    "RandomKFold",
    "Splitter",
    "chemical_system",
    "make_splitter",
    "splitter_from_spec",
]

#: Name of the default split for materials tables (see :func:`make_splitter`).
DEFAULT_SPLIT = "chemical_system"

#: Value of ``GroupKFoldBy(by=...)`` that groups by the chemical system of a formula column.
CHEMICAL_SYSTEM = "chemical_system"

Fold = tuple[np.ndarray, np.ndarray]


def chemical_system(formula: str) -> str:
    """The chemical system of a formula: its element symbols, sorted and joined by ``-``.

    Parameters
    ----------
    formula : str
        A formula as people type it (unicode subscripts and hydrate dots are accepted).

    Returns
    -------
    str
        E.g. ``'Co-Li-O'``; stoichiometry is ignored, so ``LiCoO2`` and ``Li0.9CoO2`` share a system.

    Raises
    ------
    BattlabError
        The formula cannot be parsed.

    Example
    -------
    >>> chemical_system("LiCoO2"), chemical_system("Li0.9CoO₂"), chemical_system("Li2SO4·H2O")
    ('Co-Li-O', 'Co-Li-O', 'H-Li-O-S')
    """
    parsed = parse_formula(formula)
    if parsed.error or parsed.composition is None:
        raise BattlabError(f"cannot get the chemical system of formula {formula!r}: {parsed.error}")
    return "-".join(sorted(el.symbol for el in parsed.composition.elements))


def _check_int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise BattlabError(f"{what} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_frame(X: Any, splitter: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise BattlabError(f"{splitter} needs X as a pandas DataFrame (it reads columns from it), "
                           f"got {type(X).__name__}.")
    return X


def _check_column(X: pd.DataFrame, column: str, splitter: str) -> pd.Series:
    if column not in X.columns:
        raise BattlabError(f"{splitter}: column {column!r} not in the table; columns are: "
                           f"{', '.join(map(str, X.columns))}.")
    return X[column]


class Splitter:
    """Base class: a scikit-learn CV splitter with a human description.

    Subclasses implement ``split``, ``get_n_splits``, ``describe`` and ``_params``.
    """

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        """Yield ``(train_idx, test_idx)`` integer positions into ``X``."""
        raise NotImplementedError

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds ``split`` yields."""
        raise NotImplementedError

    def describe(self) -> str:
        """Short human description, reported beside every metric."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """Same as :meth:`describe`."""
        return self.describe()

    def to_dict(self) -> dict[str, Any]:
        """Record for a model card: ``splitter`` (class name), ``description`` and the parameters.

        ``getattr(battlab.split, d["splitter"])(**params)`` rebuilds the splitter.
        """
        return {"splitter": type(self).__name__, "description": self.describe(), **self._params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class RandomKFold(Splitter):
    """Shuffled K-fold, as in public benchmarks; leaks near-duplicates, use it only for parity.

    Parameters
    ----------
    n_splits : int, default 5
    seed : int, default 0
        ``random_state`` of :class:`sklearn.model_selection.KFold`.

    Example
    -------
    >>> import numpy as np
    >>> splitter = RandomKFold(n_splits=3, seed=1)
    >>> splitter.name
    'random 3-fold (seed 1)'
    >>> [test.tolist() for _, test in splitter.split(np.zeros((6, 1)))]
    [[1, 2], [0, 4], [3, 5]]
    """

    def __init__(self, n_splits: int = 5, seed: int = 0) -> None:
        self.n_splits = _check_int(n_splits, "n_splits", 2)
        self.seed = _check_int(seed, "seed", 0)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        from sklearn.model_selection import KFold

        if len(X) < self.n_splits:
            raise BattlabError(f"{self.name} needs at least {self.n_splits} rows, got {len(X)}.")
        return KFold(self.n_splits, shuffle=True, random_state=self.seed).split(np.zeros((len(X), 1)))

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def describe(self) -> str:
        return f"random {self.n_splits}-fold (seed {self.seed})"

    def _params(self) -> dict[str, Any]:
        return {"n_splits": self.n_splits, "seed": self.seed}


class GroupKFoldBy(Splitter):
    """Group K-fold: all rows of a group (chemical system, family, ...) land in the same test fold.

    Parameters
    ----------
    n_splits : int, default 5
    by : str, default "chemical_system"
        ``"chemical_system"`` groups by the chemical system of each formula in ``formula_column``;
        anything else is the name of a column of ``X`` holding the groups (e.g. ``"Family"``).
        Missing values in that column form one group.
    formula_column : str, default "formula"
        Formula column, used when ``by="chemical_system"`` (``"Reduced Composition"`` in OBELiX).
    seed : int or None, default 0
        Groups are shuffled into folds with this seed (each fold gets the same number of groups, so
        fold sizes vary). ``None``: no shuffling, groups are dealt out to balance the fold sizes.

    Notes
    -----
    ``groups`` passed to :meth:`split` overrides ``by`` (``describe()`` then still names ``by``).
    Shuffled groups need scikit-learn >= 1.6.

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Family": ["garnet", "garnet", "NASICON", "LGPS", "LGPS"]})
    >>> splitter = GroupKFoldBy(n_splits=3, by="Family")
    >>> splitter.name
    "group 3-fold by 'Family' (seed 0)"
    >>> [df["Family"].iloc[test].unique().tolist() for _, test in splitter.split(df)]
    [['garnet'], ['NASICON'], ['LGPS']]
    """

    def __init__(self, n_splits: int = 5, by: str = CHEMICAL_SYSTEM, formula_column: str = "formula",
                 seed: int | None = 0) -> None:
        self.n_splits = _check_int(n_splits, "n_splits", 2)
        self.by = by
        self.formula_column = formula_column
        self.seed = None if seed is None else _check_int(seed, "seed", 0)

    def groups(self, X: pd.DataFrame) -> np.ndarray:
        """The group label of every row of ``X`` (as strings).

        Example
        -------
        >>> import pandas as pd
        >>> GroupKFoldBy().groups(pd.DataFrame({"formula": ["LiCoO2", "Li0.5CoO2", "Li2S"]})).tolist()
        ['Co-Li-O', 'Co-Li-O', 'Li-S']
        """
        X = _check_frame(X, self.name)
        if self.by != CHEMICAL_SYSTEM:
            # One sentinel for missing values: unlabeled rows might be one family, so keep them together.
            return _check_column(X, self.by, self.name).fillna("<missing>").astype(str).to_numpy()
        formulas = _check_column(X, self.formula_column, self.name)
        systems: dict[Any, str] = {}
        for label, formula in formulas.items():
            if formula not in systems:  # tables repeat formulas: parse each once
                try:
                    systems[formula] = chemical_system(formula)
                except BattlabError as exc:
                    raise BattlabError(f"{exc} (row {label!r}, column {self.formula_column!r})") from None
        return np.array([systems[f] for f in formulas], dtype=object).astype(str)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        from sklearn.model_selection import GroupKFold

        labels = self.groups(X) if groups is None else pd.Series(np.asarray(groups)).astype(str).to_numpy()
        if len(labels) != len(X):
            raise BattlabError(f"{self.name}: got {len(labels)} groups for {len(X)} rows.")
        n_groups = len(np.unique(labels))
        if n_groups < self.n_splits:
            what = "chemical systems" if self.by == CHEMICAL_SYSTEM and groups is None else "groups"
            raise BattlabError(f"{self.name}: only {n_groups} distinct {what} for {self.n_splits} folds; "
                               "use fewer folds or a finer grouping.")
        if self.seed is None:
            cv = GroupKFold(self.n_splits)
        else:
            try:
                cv = GroupKFold(self.n_splits, shuffle=True, random_state=self.seed)
            except TypeError:
                raise BattlabError("shuffled group K-fold needs scikit-learn >= 1.6; upgrade it "
                                   "or pass seed=None for the size-balanced, unshuffled folds.") from None
        return cv.split(np.zeros((len(labels), 1)), groups=labels)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def describe(self) -> str:
        by = "chemical system" if self.by == CHEMICAL_SYSTEM else repr(self.by)
        how = "size-balanced" if self.seed is None else f"seed {self.seed}"
        return f"group {self.n_splits}-fold by {by} ({how})"

    def _params(self) -> dict[str, Any]:
        return {"n_splits": self.n_splits, "by": self.by, "formula_column": self.formula_column, "seed": self.seed}


class LeaveClusterOut(Splitter):
    """Leave-one-cluster-out: KMeans clusters of the features, each held out once.

    Tests extrapolation to a region of feature space the model has not seen.

    Parameters
    ----------
    n_clusters : int, default 5
        Number of KMeans clusters, hence of folds.
    seed : int, default 0
        ``random_state`` of KMeans (``n_init=10``).
    columns : sequence of str, optional
        Feature columns to cluster on (converted to numbers); default: every numeric column of ``X``.
        Columns are standardized; missing values take the column median, for clustering only.

    Attributes
    ----------
    clusters_ : numpy.ndarray
        Cluster label of every row, set by :meth:`split`; fold ``k`` tests the rows with label ``k``.

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [0.0, 0.1, 0.2, 5.0, 5.1, 9.0, 9.2], "name": list("abcdefg")})
    >>> splitter = LeaveClusterOut(n_clusters=3)
    >>> splitter.name
    'leave-one-cluster-out, 3 KMeans clusters (seed 0)'
    >>> sorted(df["name"].iloc[test].str.cat() for _, test in splitter.split(df))
    ['abc', 'de', 'fg']
    """

    def __init__(self, n_clusters: int = 5, seed: int = 0, columns: Sequence[str] | None = None) -> None:
        self.n_clusters = _check_int(n_clusters, "n_clusters", 2)
        self.seed = _check_int(seed, "seed", 0)
        self.columns = None if columns is None else list(columns)
        self.clusters_: np.ndarray | None = None

    def _features(self, X: Any) -> np.ndarray:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
        if self.columns is None:
            feats = frame.select_dtypes(include="number").astype(float)
            if feats.shape[1] == 0:
                raise BattlabError(f"{self.name}: the table has no numeric columns; pass columns=[...].")
        else:
            feats = pd.DataFrame({c: pd.to_numeric(_check_column(frame, c, self.name), errors="coerce")
                                  for c in self.columns}, index=frame.index)
        empty = [str(c) for c in feats.columns if feats[c].isna().all()]
        if self.columns is not None and empty:
            raise BattlabError(f"{self.name}: no numeric values in column(s) {', '.join(empty)}.")
        feats = feats.dropna(axis=1, how="all")
        if feats.shape[1] == 0:
            raise BattlabError(f"{self.name}: every numeric column is empty.")
        return feats.fillna(feats.median()).to_numpy()

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        import warnings

        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.preprocessing import StandardScaler

        feats = self._features(X)
        if len(feats) < self.n_clusters:
            raise BattlabError(f"{self.name} needs at least {self.n_clusters} rows, got {len(feats)}.")
        scaled = StandardScaler().fit_transform(feats)
        with warnings.catch_warnings():
            # Too few distinct points is reported below as a BattlabError, not as a warning.
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = KMeans(self.n_clusters, n_init=10, random_state=self.seed).fit_predict(scaled)
        found = len(np.unique(labels))
        if found < self.n_clusters:
            raise BattlabError(f"{self.name}: the features have only {found} distinct clusters; "
                               "use fewer clusters.")
        self.clusters_ = labels
        # Computed eagerly (not in a generator) so that clusters_ is set as soon as split() returns.
        return iter([(np.flatnonzero(labels != k), np.flatnonzero(labels == k)) for k in range(self.n_clusters)])

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_clusters

    def describe(self) -> str:
        return f"leave-one-cluster-out, {self.n_clusters} KMeans clusters (seed {self.seed})"

    def _params(self) -> dict[str, Any]:
        return {"n_clusters": self.n_clusters, "seed": self.seed, "columns": self.columns}


class OfficialSplit(Splitter):
    """The train/test split a dataset ships with, read from a column (OBELiX: ``split``).

    Parameters
    ----------
    column : str, default "split"
    train : str, default "train"
        Value of ``column`` marking the training rows.
    test : str or None, default "test"
        Value marking the test rows (rows with any other value are in neither set). ``None``: every other
        value is a test set of its own, one fold each in order of appearance (Severson et al.'s cycling
        data: ``train``, ``test1``, ``test2``), always against the same training rows.

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"split": ["train", "test", "train", "train"]})
    >>> [(train.tolist(), test.tolist()) for train, test in OfficialSplit().split(df)]
    [([0, 2, 3], [1])]
    >>> df = pd.DataFrame({"split": ["train", "test1", "train", "test2", "test1"]})
    >>> s = OfficialSplit(test=None)
    >>> [test.tolist() for _, test in s.split(df)], s.name
    ([[1, 4], [3]], "official split (column 'split': train/every other value)")
    """

    def __init__(self, column: str = "split", train: str = "train", test: str | None = "test") -> None:
        self.column = column
        self.train = train
        self.test = test

    def _tests(self, values: np.ndarray) -> list[Any]:
        if self.test is not None:
            return [self.test]
        return [v for v in pd.unique(values) if v != self.train and not pd.isna(v)]

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        values = _check_column(_check_frame(X, self.name), self.column, self.name).to_numpy()
        train = np.flatnonzero(values == self.train)
        tests = [(t, np.flatnonzero(values == t)) for t in self._tests(values)]
        if not tests:
            raise BattlabError(f"{self.name}: no row has a value other than {self.train!r} in {self.column!r}: "
                               "nothing to test on.")
        for part, idx in [(self.train, train), *tests]:
            if len(idx) == 0:
                raise BattlabError(f"{self.name}: no row has {self.column!r} == {part!r}; values are: "
                                   f"{', '.join(map(str, pd.unique(values)))}.")
        return iter([(train, idx) for _, idx in tests])

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        if self.test is not None or X is None:
            return 1
        return len(self._tests(_check_column(_check_frame(X, self.name), self.column, self.name).to_numpy()))

    def describe(self) -> str:
        test = self.test if self.test is not None else "every other value"
        return f"official split (column {self.column!r}: {self.train}/{test})"

    def _params(self) -> dict[str, Any]:
        return {"column": self.column, "train": self.train, "test": self.test}


class MatbenchFolds(Splitter):
    """The matbench v0.1 folds (shuffled 5-fold, seed 18012019), for parity with the leaderboard.

    ``X`` must hold the rows in matbench's order (as :func:`battlab.datasets.load_dataset` returns them).

    Example
    -------
    >>> import numpy as np
    >>> [len(test) for _, test in MatbenchFolds().split(np.zeros((312, 1)))]
    [63, 63, 62, 62, 62]
    """

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        from battlab.datasets import matbench_folds

        return iter(matbench_folds(len(X)))

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return 5

    def describe(self) -> str:
        return "matbench v0.1 5-fold (seed 18012019)"

    def _params(self) -> dict[str, Any]:
        return {}


#: Splitter names accepted by :func:`make_splitter`.
SPLITTERS: dict[str, Callable[..., Splitter]] = {
    "random": RandomKFold,
    "chemical_system": functools.partial(GroupKFoldBy, by=CHEMICAL_SYSTEM),
    "family": functools.partial(GroupKFoldBy, by="Family"),
    "cluster": LeaveClusterOut,
    "official": OfficialSplit,
    "matbench": MatbenchFolds,
}


def make_splitter(name: str = DEFAULT_SPLIT, **kwargs: Any) -> Splitter:
    """Build a splitter by name.

    Parameters
    ----------
    name : str, default "chemical_system"
        One of ``random``, ``chemical_system``, ``family``, ``cluster``, ``official``, ``matbench``.
    **kwargs
        Parameters of the splitter class (e.g. ``n_splits``, ``seed``, ``formula_column``).

    Raises
    ------
    BattlabError
        Unknown name or parameter.

    Example
    -------
    >>> make_splitter("family", n_splits=4).name
    "group 4-fold by 'Family' (seed 0)"
    >>> make_splitter("random").to_dict()
    {'splitter': 'RandomKFold', 'description': 'random 5-fold (seed 0)', 'n_splits': 5, 'seed': 0}
    """
    if name not in SPLITTERS:
        raise BattlabError(f"unknown split {name!r}; choose one of: {', '.join(SPLITTERS)}.")
    factory = SPLITTERS[name]
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError:
        params = list(inspect.signature(factory).parameters)
        raise BattlabError(f"split {name!r} got unknown option(s) {sorted(kwargs)}; "
                           f"its options are: {', '.join(params) or '(none)'}.") from None
    return factory(**kwargs)


def splitter_from_spec(spec: str, *, formula_column: str | None = "formula", seed: int = 0) -> Splitter:
    """A splitter from the short spec people type (``battlab tune --split``, notebook 03's ``split``).

    ============================================  =========================================================
    spec                                          splitter
    ============================================  =========================================================
    ``chemical_system``                           group 5-fold by the chemical system of ``formula_column``
    ``random``, ``random:K``                      shuffled K-fold (default 5)
    ``group:COLUMN``, ``group:COLUMN:K``          group K-fold by the values of a column
    ``official``                                  column ``split``: ``train`` vs ``test`` (OBELiX)
    ``official:COLUMN[:TRAIN[:TEST]]``            the column's ``TRAIN`` rows (default ``train``) vs each
                                                  other value (or ``TEST`` only), one fold each
    ``family``, ``cluster``, ``matbench``         as :func:`make_splitter`
    ============================================  =========================================================

    Example
    -------
    >>> splitter_from_spec("official:split").name
    "official split (column 'split': train/every other value)"
    >>> splitter_from_spec("group:batch:3", seed=1).name
    "group 3-fold by 'batch' (seed 1)"
    >>> splitter_from_spec("random:10").name
    'random 10-fold (seed 0)'
    >>> splitter_from_spec("chemical_system", formula_column=None)
    Traceback (most recent call last):
    ...
    battlab.errors.BattlabError: split 'chemical_system' needs a formula column; this table has none: use \
random, group:COLUMN or official:COLUMN.
    """
    name, _, rest = str(spec).partition(":")
    args = rest.split(":") if rest else []

    def count(text: str) -> int:
        try:
            return _check_int(int(text), "the number of folds", 2)
        except ValueError:
            raise BattlabError(f"split {spec!r}: {text!r} is not a number of folds.") from None

    if name == "chemical_system":
        if not formula_column:
            raise BattlabError(f"split {spec!r} needs a formula column; this table has none: use random, "
                               "group:COLUMN or official:COLUMN.")
        return GroupKFoldBy(n_splits=count(args[0]) if args else 5, formula_column=formula_column, seed=seed)
    if name == "random":
        return RandomKFold(n_splits=count(args[0]) if args else 5, seed=seed)
    if name == "group":
        if not args or not args[0]:
            raise BattlabError(f"split {spec!r}: name the column, e.g. group:Family.")
        return GroupKFoldBy(n_splits=count(args[1]) if len(args) > 1 else 5, by=args[0], seed=seed)
    if name == "official" and args:
        return OfficialSplit(column=args[0], train=args[1] if len(args) > 1 else "train",
                             test=args[2] if len(args) > 2 else None)
    if name == "cluster":
        return LeaveClusterOut(seed=seed)
    if name in ("random", "family", "official", "matbench"):
        return make_splitter(name)
    raise BattlabError(f"unknown split {spec!r}; use chemical_system, random[:K], group:COLUMN[:K], "
                       "official[:COLUMN], family, cluster or matbench.")
