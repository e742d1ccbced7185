"""Search spaces of a campaign: a pool of candidates, or a box of process settings with constraints.

Two kinds, one interface for :class:`battlab.plan.Campaign`:

- :class:`CandidatePool` — a table of candidates (materials, recipes) with an id and feature columns,
  e.g. compositions featurized by :func:`battlab.featurize.composition_features`. Suggestions are rows of
  the table; a candidate is suggested at most once.
- :class:`ProcessWindow` — continuous, integer and categorical settings with bounds and constraints
  written as expressions over the setting names (``"solid_content + binder_fraction <= 0.8"``, evaluated
  with :meth:`pandas.DataFrame.eval`). Suggestions are new designs; the campaign draws scrambled Sobol
  candidates inside the constraints (:mod:`scipy.stats.qmc`) and refines the best of them locally.

Both turn designs into the model's numeric feature matrix with :meth:`features` and describe themselves
as JSON-able records (:meth:`to_dict`) so that a campaign can be saved and loaded.

Example
-------
>>> import pandas as pd
>>> window = ProcessWindow({"thickness_um": (40, 120), "porosity": (0.25, 0.45), "passes": (1, 4, "int")},
...                        constraints=["thickness_um * (1 - porosity) <= 80"])
>>> designs = window.sample(4, seed=0)
>>> designs.columns.tolist(), bool(window.feasible(designs).all())
(['thickness_um', 'porosity', 'passes'], True)
>>> pool = CandidatePool(pd.DataFrame({"id": ["a", "b"], "x": [0.1, 0.7]}), features=["x"], id_column="id")
>>> pool.ids.tolist(), pool.features(pool.table).shape
(['a', 'b'], (2, 1))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["CandidatePool", "Param", "ProcessWindow"]


class CandidatePool:
    """A table of candidates to choose experiments from.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per candidate.
    features : sequence of str, optional
        The model's input columns; default: every numeric column except ``id_column`` and ``group_column``.
        Every one must be in the table and numeric (NaN cells are allowed: models impute them).
    id_column : str, optional
        Column with a unique id per candidate; default: the table's index (as strings).
    group_column, formula_column : str, optional
        The group of each candidate (for grouped uncertainty, :class:`battlab.plan.GroupCalibrated`):
        a column of labels, or a formula column whose chemical systems are the groups.

    Raises
    ------
    BattlabError
        Missing or non-numeric feature columns, duplicate or missing ids, an empty table.
    """

    kind = "pool"

    def __init__(self, table: pd.DataFrame, features: Sequence[str] | None = None, id_column: str | None = None,
                 group_column: str | None = None, formula_column: str | None = None) -> None:
        if not isinstance(table, pd.DataFrame):
            raise BattlabError(f"a candidate pool is a pandas DataFrame, got {type(table).__name__}.")
        if len(table) == 0:
            raise BattlabError("the candidate table is empty.")
        for col, what in ((id_column, "id_column"), (group_column, "group_column"),
                          (formula_column, "formula_column")):
            if col is not None and col not in table.columns:
                raise BattlabError(f"{what} {col!r} is not a column of the candidate table.")
        skip = {c for c in (id_column, group_column, formula_column) if c}
        if features is None:
            features = [c for c in table.select_dtypes(include="number").columns if c not in skip]
        features = [str(f) for f in features]
        if not features:
            raise BattlabError("the candidate table has no numeric feature column; pass features=[...].")
        check_features(table, features, "the candidate table")
        ids = (table[id_column] if id_column else pd.Series(table.index, index=table.index)).astype(str)
        if id_column and table[id_column].isna().any():
            row = int(np.flatnonzero(table[id_column].isna().to_numpy())[0])
            raise BattlabError(f"candidate table: row {row} has no id in column {id_column!r}.")
        dup = ids[ids.duplicated()]
        if len(dup):
            where = id_column if id_column else "the index"
            raise BattlabError(f"candidate table: id {dup.iloc[0]!r} appears more than once in {where}; "
                               "every candidate needs a unique id.")
        self.table = table.reset_index(drop=True)
        self.feature_names = features
        self.id_column = id_column
        self.group_column = group_column
        self.formula_column = formula_column
        self.ids = ids.reset_index(drop=True)
        self._position = {d: i for i, d in enumerate(self.ids)}

    def features(self, designs: pd.DataFrame) -> np.ndarray:
        """The model's feature matrix of some rows of :attr:`table`."""
        return designs[self.feature_names].to_numpy(dtype=float)

    def groups(self) -> np.ndarray | None:
        """The group of every candidate (chemical system of ``formula_column``, or ``group_column``)."""
        if getattr(self, "_groups", None) is not None:
            return self._groups
        if self.group_column:
            self._groups = self.table[self.group_column].fillna("<missing>").astype(str).to_numpy()
        elif self.formula_column:
            from battlab.split import GroupKFoldBy

            self._groups = GroupKFoldBy(formula_column=self.formula_column).groups(self.table)
        return getattr(self, "_groups", None)

    def rows(self, ids: Sequence[str]) -> pd.DataFrame:
        """The candidates with these ids, in this order; unknown ids raise a :class:`BattlabError`."""
        ids = [str(i) for i in ids]
        unknown = [i for i in ids if i not in self._position]
        if unknown:
            raise BattlabError(f"{len(unknown)} id(s) not in the candidate pool: {', '.join(unknown[:5])}"
                               f"{' ...' if len(unknown) > 5 else ''}.")
        return self.table.iloc[[self._position[i] for i in ids]]

    def to_dict(self) -> dict[str, Any]:
        """Settings as a JSON-able record (the table is saved beside it)."""
        return {"kind": self.kind, "features": self.feature_names, "id_column": self.id_column,
                "group_column": self.group_column, "formula_column": self.formula_column}


def check_features(table: pd.DataFrame, features: Sequence[str], what: str) -> None:
    """Raise a :class:`BattlabError` naming the missing or non-numeric feature columns of ``table``.

    Example
    -------
    >>> check_features(pd.DataFrame({"a": [1.0], "b": ["x"]}), ["a", "b", "c"], "pool.csv")
    Traceback (most recent call last):
    ...
    battlab.errors.BattlabError: pool.csv lacks 1 of the model's 3 feature column(s): 'c'.
    """
    missing = [f for f in features if f not in table.columns]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise BattlabError(f"{what} lacks {len(missing)} of the model's {len(features)} feature column(s): {shown}.")
    for f in features:
        col = table[f]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            values = pd.to_numeric(col, errors="coerce")
            bad = np.flatnonzero(values.isna().to_numpy() & col.notna().to_numpy())
            if len(bad):
                raise BattlabError(f"{what}: feature column {f!r} is not numeric (row {int(bad[0])}: "
                                   f"{col.iloc[bad[0]]!r}).")


@dataclass(frozen=True)
class Param:
    """One setting of a process window: a float or int between bounds, or one of some choices."""

    name: str
    low: float | None = None
    high: float | None = None
    kind: str = "float"  # "float", "int" or "choice"
    choices: tuple[Any, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in ("float", "int", "choice"):
            raise BattlabError(f"setting {self.name!r}: kind must be float, int or choice, got {self.kind!r}.")
        if self.kind == "choice":
            if len(self.choices) < 2:
                raise BattlabError(f"setting {self.name!r}: a choice needs at least two options.")
            return
        if self.low is None or self.high is None or not np.isfinite([self.low, self.high]).all() \
                or not self.low < self.high:
            raise BattlabError(f"setting {self.name!r}: bounds must be finite numbers with low < high, "
                               f"got ({self.low!r}, {self.high!r}).")

    @classmethod
    def parse(cls, name: str, spec: Any) -> Param:
        """From ``(low, high)``, ``(low, high, "int")``, a list of choices or a :class:`Param`."""
        if isinstance(spec, Param):
            return spec
        if isinstance(spec, Mapping):
            return cls(name=name, **{k: (tuple(v) if k == "choices" else v) for k, v in spec.items()})
        if isinstance(spec, tuple) and len(spec) in (2, 3) and all(isinstance(v, (int, float)) for v in spec[:2]):
            kind = spec[2] if len(spec) == 3 else "float"
            return cls(name=name, low=float(spec[0]), high=float(spec[1]), kind=kind)
        if isinstance(spec, (list, tuple)):
            return cls(name=name, kind="choice", choices=tuple(spec))
        raise BattlabError(f"setting {name!r}: give (low, high), (low, high, 'int') or a list of choices, "
                           f"got {spec!r}.")

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"kind": "choice", "choices": list(self.choices)}
        return {"kind": self.kind, "low": self.low, "high": self.high}


class ProcessWindow:
    """A continuous or mixed space of process settings, with bounds and constraints.

    Parameters
    ----------
    params : mapping of name to spec
        ``(low, high)`` for a float, ``(low, high, "int")`` for an integer, a list for a categorical
        choice (one-hot encoded for the model), or a :class:`Param`.
    constraints : sequence of str
        Boolean expressions over the setting names that every design must satisfy, e.g.
        ``"active_fraction + binder_fraction <= 0.98"`` (:meth:`pandas.DataFrame.eval`).

    Raises
    ------
    BattlabError
        Bad bounds, or a constraint that does not evaluate to true/false (named).
    """

    kind = "window"

    def __init__(self, params: Mapping[str, Any], constraints: Sequence[str] = ()) -> None:
        if not params:
            raise BattlabError("a process window needs at least one setting.")
        self.params = [Param.parse(str(k), v) for k, v in params.items()]
        self.names = [p.name for p in self.params]
        self.constraints = [str(c) for c in constraints]
        probe = self._decode(np.full((1, len(self.params)), 0.5))
        for expr in self.constraints:
            try:
                value = probe.eval(expr)
            except Exception as exc:  # pandas raises many kinds here: report them as one
                raise BattlabError(f"constraint {expr!r} cannot be evaluated over the settings "
                                   f"{', '.join(self.names)}: {exc}") from None
            if not (isinstance(value, pd.Series) and pd.api.types.is_bool_dtype(value)) and \
                    not isinstance(value, (bool, np.bool_)):
                raise BattlabError(f"constraint {expr!r} is not a true/false expression "
                                   "(write a comparison such as 'a + b <= 1').")
        self.feature_names = [f"{p.name}={c}" if p.kind == "choice" else p.name for p in self.params
                              for c in (p.choices if p.kind == "choice" else [None])]

    def _decode(self, unit: np.ndarray) -> pd.DataFrame:
        """Designs from points of the unit cube (one column per setting)."""
        cols = {}
        for j, p in enumerate(self.params):
            u = np.clip(unit[:, j], 0.0, 1.0)
            if p.kind == "choice":
                cols[p.name] = [p.choices[min(int(v * len(p.choices)), len(p.choices) - 1)] for v in u]
            elif p.kind == "int":
                lo, hi = int(np.ceil(p.low)), int(np.floor(p.high))
                cols[p.name] = np.minimum(lo + np.floor(u * (hi - lo + 1)), hi).astype(int)
            else:
                cols[p.name] = p.low + u * (p.high - p.low)
        return pd.DataFrame(cols)

    def check(self, designs: pd.DataFrame, what: str = "designs") -> None:
        """Raise a :class:`BattlabError` naming the first row/column outside the window."""
        missing = [n for n in self.names if n not in designs.columns]
        if missing:
            raise BattlabError(f"{what} lack the setting column(s) {', '.join(map(repr, missing))}.")
        for p in self.params:
            col = designs[p.name]
            if p.kind == "choice":
                bad = ~col.isin(p.choices)
            else:
                values = pd.to_numeric(col, errors="coerce")
                bad = values.isna() | (values < p.low) | (values > p.high)
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                allowed = (f"one of {list(p.choices)}" if p.kind == "choice" else f"in [{p.low}, {p.high}]")
                value = col.iloc[row]
                value = value.item() if isinstance(value, np.generic) else value
                raise BattlabError(f"{what}: row {row}, column {p.name!r} is {value!r}, not {allowed}.")
        ok = self.feasible(designs)
        if not ok.all():
            row = int(np.flatnonzero(~ok)[0])
            broken = [c for c in self.constraints if not bool(designs.iloc[[row]].eval(c).iloc[0])]
            raise BattlabError(f"{what}: row {row} breaks the constraint(s) {', '.join(map(repr, broken))}.")

    def feasible(self, designs: pd.DataFrame) -> np.ndarray:
        """True for the designs that satisfy every constraint."""
        ok = np.ones(len(designs), dtype=bool)
        for expr in self.constraints:
            ok &= np.asarray(designs.eval(expr), dtype=bool).reshape(-1) if len(designs) else ok
        return ok

    def sample(self, n: int, seed: int | np.random.Generator = 0, max_tries: int = 50) -> pd.DataFrame:
        """``n`` feasible designs from a scrambled Sobol sequence (rejection inside the constraints).

        Raises
        ------
        BattlabError
            The constraints leave (almost) no room in the box.
        """
        from scipy.stats import qmc

        rng = np.random.default_rng(seed)
        found: list[pd.DataFrame] = []
        total, drawn = 0, 0
        for _ in range(max_tries):
            m = int(2 ** np.ceil(np.log2(max(2 * (n - total), 16))))
            # an integer seed: a Generator given to scipy is spawned from its seed sequence, which a saved
            # campaign does not keep (only the generator's state), so a loaded campaign would draw otherwise
            unit = qmc.Sobol(len(self.params), scramble=True, seed=int(rng.integers(2**63 - 1))).random(m)
            designs = self._decode(unit)
            drawn += m
            designs = designs[self.feasible(designs)]
            found.append(designs)
            total += len(designs)
            if total >= n:
                return pd.concat(found, ignore_index=True).iloc[:n].reset_index(drop=True)
        raise BattlabError(f"the constraints leave only {total} of {drawn} random designs feasible; "
                           "check them (or widen the bounds).")

    def perturb(self, designs: pd.DataFrame, scale: float, rng: np.random.Generator) -> pd.DataFrame:
        """Feasible random neighbours of ``designs`` (a step of ``scale`` times each range); used to refine."""
        unit = np.column_stack([self._to_unit(designs[p.name], p) for p in self.params])
        moved = np.clip(unit + rng.normal(scale=scale, size=unit.shape), 0, 1 - 1e-12)
        out = self._decode(moved)
        return out[self.feasible(out)].reset_index(drop=True)

    @staticmethod
    def _to_unit(col: pd.Series, p: Param) -> np.ndarray:
        if p.kind == "choice":
            idx = np.array([p.choices.index(v) for v in col])
            return (idx + 0.5) / len(p.choices)
        if p.kind == "int":
            lo, hi = int(np.ceil(p.low)), int(np.floor(p.high))
            return (col.to_numpy(dtype=float) - lo + 0.5) / (hi - lo + 1)
        return (col.to_numpy(dtype=float) - p.low) / (p.high - p.low)

    def features(self, designs: pd.DataFrame) -> np.ndarray:
        """The model's inputs: settings scaled to [0, 1] (choices one-hot)."""
        cols = []
        for p in self.params:
            if p.kind == "choice":
                cols += [(designs[p.name] == c).to_numpy(dtype=float) for c in p.choices]
            else:
                cols.append((designs[p.name].to_numpy(dtype=float) - p.low) / (p.high - p.low))
        return np.column_stack(cols)

    def groups(self) -> None:
        """Process windows have no groups."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": {p.name: p.to_dict() for p in self.params},
                "constraints": self.constraints}
