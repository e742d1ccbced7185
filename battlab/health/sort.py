"""Sorting retired cells by their estimated state of health: reuse, repurpose (second life) or recycle.

The decision a SOH estimate serves. Two thresholds on the SOH (a fraction of the nominal capacity, Q/Qn):

- ``SOH >= reuse`` (default 0.8, the usual end of first life in an electric vehicle): **reuse** as it is;
- ``repurpose <= SOH < reuse`` (default 0.6): **repurpose** for a second life (stationary storage);
- ``SOH < repurpose``: **recycle**.

A decision is made on the SOH **interval**, not the point estimate alone: a cell whose whole interval lies on one
side of the thresholds gets that decision; a cell whose interval straddles a threshold is **retest** ("uncertain:
retest") with the threshold named, rather than forced into a class by a number that could be on either side.
Without an interval (NaN bounds) the point estimate decides and the reason says so. A cell tested at several
states of charge (several rows) is decided on the median of its rows' estimates and bounds; a SOC outside the
model's trained range (``soc_extrapolation``) is carried into the reason.

Example
-------
>>> import pandas as pd
>>> pred = pd.DataFrame({"cell": ["a", "b", "c", "d"], "SOH_pred": [0.92, 0.70, 0.45, 0.79],
...                      "SOH_low": [0.86, 0.65, 0.40, 0.74], "SOH_high": [0.97, 0.75, 0.50, 0.84]})
>>> sort_cells(pred, cell="cell")[["cell", "decision"]].to_dict("list")
{'cell': ['a', 'b', 'c', 'd'], 'decision': ['reuse', 'repurpose', 'recycle', 'retest']}
>>> decision_counts(sort_cells(pred, cell="cell")).to_dict()
{'reuse': 1, 'repurpose': 1, 'recycle': 1, 'retest': 1}
>>> sort_cells(pred, reuse=80)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
battlab.errors.BattlabError: reuse=80: thresholds are SOH fractions of the nominal capacity (Q/Qn) in (0, 1.5], ...
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["sort_cells", "decision_counts", "sorting_against_truth", "check_thresholds", "parse_thresholds",
           "DECISIONS", "DEFAULT_REUSE",
           "DEFAULT_REPURPOSE"]

#: The decisions, in the order of the sorting view.
DECISIONS = ("reuse", "repurpose", "recycle", "retest")
DEFAULT_REUSE = 0.8
DEFAULT_REPURPOSE = 0.6


def check_thresholds(reuse: Any, repurpose: Any) -> tuple[float, float]:
    """The thresholds as floats, or a one-line :class:`~battlab.errors.BattlabError`: numbers in (0, 1.5]
    (fractions, not %), ``repurpose < reuse``.

    Example
    -------
    >>> check_thresholds(0.8, "0.6")
    (0.8, 0.6)
    >>> check_thresholds(0.6, 0.8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    battlab.errors.BattlabError: repurpose=0.8 must be below reuse=0.6 (SOH >= reuse: reuse; ...
    """
    values = []
    for name, value in (("reuse", reuse), ("repurpose", repurpose)):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise BattlabError(f"{name}={value!r} is not a number (a SOH fraction, e.g. 0.8)") from None
        if not math.isfinite(v) or not 0 < v <= 1.5:
            raise BattlabError(f"{name}={value!r}: thresholds are SOH fractions of the nominal capacity (Q/Qn) in "
                               "(0, 1.5], e.g. 0.8 for 80 %")
        values.append(v)
    if not values[1] < values[0]:
        raise BattlabError(f"repurpose={values[1]:g} must be below reuse={values[0]:g} (SOH >= reuse: reuse; "
                           "repurpose <= SOH < reuse: repurpose; below: recycle)")
    return values[0], values[1]


def parse_thresholds(text: str | None) -> tuple[float, float]:
    """``"reuse=0.8,repurpose=0.6"`` (either may be left out: the defaults) as checked floats.

    Example
    -------
    >>> parse_thresholds("reuse=0.85"), parse_thresholds("")
    ((0.85, 0.6), (0.8, 0.6))
    >>> parse_thresholds("reuse=0.8,recycle=0.5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    battlab.errors.BattlabError: --sort 'recycle=0.5': give reuse=NUMBER and/or repurpose=NUMBER, ...
    """
    found = {"reuse": DEFAULT_REUSE, "repurpose": DEFAULT_REPURPOSE}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or key not in found:
            raise BattlabError(f"--sort {part!r}: give reuse=NUMBER and/or repurpose=NUMBER, e.g. "
                               "reuse=0.8,repurpose=0.6")
        found[key] = value  # type: ignore[assignment]
    return check_thresholds(found["reuse"], found["repurpose"])


def _flags(column: pd.Series) -> np.ndarray:
    """True/False flags as written by pandas or read back from a text file (``"True"``, ``"false"``, 1, 0, blank)."""
    if column.dtype == bool:
        return column.to_numpy()
    text = column.astype(str).str.strip().str.lower()
    return text.isin(["true", "1", "1.0", "yes"]).to_numpy()


def _class_of(value: float, reuse: float, repurpose: float) -> str:
    return "reuse" if value >= reuse else ("repurpose" if value >= repurpose else "recycle")


def sort_cells(predictions: pd.DataFrame, reuse: float = DEFAULT_REUSE, repurpose: float = DEFAULT_REPURPOSE, *,
               cell: str | None = None, pred: str = "SOH_pred", low: str = "SOH_low",
               high: str = "SOH_high") -> pd.DataFrame:
    """One decision per cell: ``reuse``, ``repurpose``, ``recycle`` or ``retest`` (interval straddles a threshold).

    Parameters
    ----------
    predictions
        SOH estimates, e.g. :meth:`battlab.health.SohModel.predict` joined to the pulse table: columns ``pred``,
        ``low``, ``high`` (NaN bounds: the point estimate decides) and, optionally, ``soc_extrapolation``.
    reuse, repurpose
        Thresholds, SOH fractions (Q/Qn) with ``0 < repurpose < reuse <= 1.5``.
    cell
        Column naming the physical cell; its rows (e.g. one per SOC) are decided together, on the medians. Default:
        each row is a cell (named by the table's index).

    Returns
    -------
    pandas.DataFrame
        One row per cell, in the order of first appearance: ``cell``, ``n_tests``, ``SOH_pred``, ``SOH_low``,
        ``SOH_high``, ``decision``, ``reason``.

    Raises
    ------
    BattlabError
        Bad thresholds, a missing column, or an estimate that is not a number (row named).
    """
    reuse, repurpose = check_thresholds(reuse, repurpose)
    if not isinstance(predictions, pd.DataFrame):
        raise BattlabError(f"expected a table of SOH predictions (DataFrame), got {type(predictions).__name__}")
    missing = [c for c in (pred, low, high) + ((cell,) if cell else ()) if c not in predictions.columns]
    if missing:
        raise BattlabError(f"the predictions have no column(s) {missing} (from SohModel.predict: SOH_pred, SOH_low, "
                           f"SOH_high); they have {list(predictions.columns)[:12]}")
    values = predictions[[pred, low, high]].apply(pd.to_numeric, errors="coerce")
    bad = values[pred].isna()
    if bad.any():
        row = values.index[bad.to_numpy()][0]
        raise BattlabError(f"row {row}, column {pred!r}: {predictions[pred][row]!r} is not a SOH estimate")
    values["__cell"] = predictions[cell].astype(str).to_numpy() if cell else [str(i) for i in predictions.index]
    values["__extra"] = (_flags(predictions["soc_extrapolation"])
                         if "soc_extrapolation" in predictions.columns else False)
    rows = []
    for name, part in values.groupby("__cell", sort=False):
        p, lo, hi = (float(np.nanmedian(part[c])) if part[c].notna().any() else float("nan")
                     for c in (pred, low, high))
        if math.isnan(lo) or math.isnan(hi):
            decision = _class_of(p, reuse, repurpose)
            reason = f"SOH {p:.3f}: no interval, decided on the estimate alone"
        else:
            lo, hi = min(lo, p), max(hi, p)
            first, last = _class_of(lo, reuse, repurpose), _class_of(hi, reuse, repurpose)
            if first == last:
                decision = first
                reason = f"interval {lo:.3f}-{hi:.3f} " + {"reuse": f">= {reuse:g}", "recycle": f"< {repurpose:g}",
                                                            "repurpose": f"within {repurpose:g}-{reuse:g}"}[decision]
            else:
                decision = "retest"
                crossed = [f"{n} {t:g}" for n, t in (("reuse", reuse), ("repurpose", repurpose)) if lo < t <= hi]
                reason = f"uncertain - retest: interval {lo:.3f}-{hi:.3f} straddles {' and '.join(crossed)}"
        n_extra = int(part["__extra"].sum())
        if n_extra:
            reason += f"; {n_extra} of {len(part)} test(s) at a SOC outside the trained range (extrapolation)"
        rows.append({"cell": name, "n_tests": len(part), "SOH_pred": p, "SOH_low": lo, "SOH_high": hi,
                     "decision": decision, "reason": reason})
    return pd.DataFrame(rows, columns=["cell", "n_tests", "SOH_pred", "SOH_low", "SOH_high", "decision", "reason"])


def decision_counts(sorting: pd.DataFrame) -> pd.Series:
    """Cells per decision, every decision present, in :data:`DECISIONS` order."""
    return sorting["decision"].value_counts().reindex(list(DECISIONS), fill_value=0).astype(int).rename("cells")


def sorting_against_truth(sorting: pd.DataFrame, true_soh: pd.Series, reuse: float = DEFAULT_REUSE,
                          repurpose: float = DEFAULT_REPURPOSE) -> pd.DataFrame:
    """Decisions against the class of the measured SOH (``true_soh``: one value per cell, indexed by cell): a
    table of counts, rows the decisions, columns the true classes (reuse, repurpose, recycle).

    Example
    -------
    >>> s = pd.DataFrame({"cell": ["a", "b"], "decision": ["reuse", "retest"]})
    >>> sorting_against_truth(s, pd.Series({"a": 0.9, "b": 0.79})).loc[["reuse", "retest"], "reuse"].tolist()
    [1, 0]
    """
    reuse, repurpose = check_thresholds(reuse, repurpose)
    missing = sorted(set(sorting["cell"].astype(str)) - set(true_soh.index.astype(str)))
    if missing:
        raise BattlabError(f"no measured SOH for cell(s) {missing[:5]}")
    truth = true_soh.set_axis(true_soh.index.astype(str))
    true_class = [_class_of(float(truth[c]), reuse, repurpose) for c in sorting["cell"].astype(str)]
    table = pd.crosstab(pd.Series(sorting["decision"].to_numpy(), name="decision"),
                        pd.Series(true_class, name="measured class"))
    return table.reindex(index=list(DECISIONS), columns=list(DECISIONS[:3]), fill_value=0)
