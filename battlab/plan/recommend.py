"""Which experiments next? The table of experiments done so far in, a ranked batch of suggestions out.

:func:`next_experiments` is what the ``next_experiments`` app calls: it takes the experiments done so far (a table
of settings or features and a measured result column, from a CSV/Excel file or a DataFrame) and either a
**candidate pool** (a table of candidates with the same feature columns) or a **process window** (bounds of the
settings; by default the range of each setting in the done table), and returns a :class:`Recommendation`: the
next ``batch_size`` experiments ranked in the order a :class:`~battlab.plan.Campaign` picked them, with the
surrogate's predicted ``mean`` and ``std`` of the result, the acquisition value, and the **reason**: the SHAP
contributions of the surrogate's mean prediction (TreeSHAP for tree surrogates through
:func:`battlab.explain.explain`, ``shap.KernelExplainer`` on a bounded sample of the done rows otherwise), as the
top features with their signs. The planning itself is :class:`~battlab.plan.Campaign`'s (``add_data`` with the
done rows, then ``suggest``); nothing of it is done again here.

Nothing is lost: a done row whose result is missing or not a number, a row or candidate with a non-numeric
feature cell, a done row outside the process window, a candidate already in the done table (same id) and a line
of the file that is not a record are kept aside in :attr:`Recommendation.set_aside` with the file's row (1-based
data row) and the reason. A done table without the target column, a candidate table without the model's
features (named), an unreadable file and fewer usable done rows than the model needs (:data:`MIN_DONE`) are one-line
:class:`~battlab.errors.BattlabError` messages.

Example
-------
>>> done, pool = example_tables()        # 12 designs of battlab's virtual pilot line, and 288 candidates
>>> settings = ["active_weight_fraction", "solid_content", "coating_gap_um", "line_load_N_per_mm"]
>>> rec = next_experiments(done, pool, "specific_energy_Wh_kg", features=settings, batch_size=3, seed=0)
>>> rec.suggestions.columns.tolist()[:3], len(rec.suggestions)
(['rank', 'design_id', 'candidate_row'], 3)
>>> bool(abs(rec.base_value + rec.contributions.sum(axis=1) - rec.suggestions["mean"]).max() < 1e-6)
True
>>> rec.suggestions["reason"].iloc[0].count(";") + 1    # the top three features, with signs
3
>>> next_experiments(done, pool.drop(columns="solid_content"), "specific_energy_Wh_kg", features=settings)
Traceback (most recent call last):
...
battlab.errors.BattlabError: candidate table lacks 1 of the model's 4 feature column(s): 'solid_content'.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab import __version__
from battlab.errors import BattlabError
from battlab.plan.campaign import Campaign, _to_parquet
from battlab.plan.space import CandidatePool, ProcessWindow, check_features
from battlab.plan.surrogates import GroupCalibrated, TreeEnsemble
from battlab.tables import RawTable, check_columns, read_table

__all__ = ["FORMAT_VERSION", "MIN_DONE", "Recommendation", "example_tables", "explain_suggestions",
           "next_experiments", "read_experiments", "window_from_table"]

#: Version of the folder :meth:`Recommendation.save` writes.
FORMAT_VERSION = 1
#: Usable done rows the surrogate needs: it is fitted on them and its uncertainty calibrated on held-out ones.
MIN_DONE = 3
#: Share of a column's filled cells that must read as numbers for it to count as a numeric column.
NUMERIC_SHARE = 0.8
_ASIDE = ["table", "row", "column", "value", "reason"]
_ID = "__design__"

#: ``progress(fraction_done, text)``.
Progress = Callable[[float, str], None]


# ------------------------------------------------------------------------------------------------ reading
@dataclass
class _Table:
    """A table as read: typed ``data`` (numeric columns as floats), the raw cells, 1-based ``rows``."""

    name: str
    data: pd.DataFrame
    raw: pd.DataFrame
    rows: np.ndarray
    aside: list[dict[str, Any]] = field(default_factory=list)
    n_rejected: int = 0

    def bad_cells(self, column: str) -> np.ndarray:
        """Rows whose cell in a numeric column is filled but not a number."""
        raw = self.raw[column]
        filled = raw.notna() & (raw.astype(str).str.strip() != "")
        return (filled & self.data[column].isna()).to_numpy()


def read_experiments(source: Any, what: str = "table") -> RawTable | pd.DataFrame:
    """A table of experiments or candidates: a DataFrame or :class:`~battlab.tables.RawTable` as given, a path read
    with :func:`battlab.tables.read_table` (CSV/TSV/Excel/parquet; a one-line error naming the file).

    Example
    -------
    >>> read_experiments("nowhere.csv")
    Traceback (most recent call last):
    ...
    battlab.errors.DataFileError: nowhere.csv: no such file
    """
    if isinstance(source, (pd.DataFrame, RawTable)):
        return source
    if isinstance(source, (str, Path)):
        return read_table(source)
    raise BattlabError(f"the {what} is a file path or a table, got {type(source).__name__}.")


def _typed(source: Any, what: str) -> _Table:
    table = read_experiments(source, what)
    aside: list[dict[str, Any]] = []
    if isinstance(table, RawTable):
        name = table.path.name if table.path is not None else what
        raw = table.data.copy()
        rows = np.asarray(table.data.index, dtype=int)
        aside = [{"table": what, "row": r.row, "column": "", "value": r.text[:80], "reason": r.reason}
                 for r in table.rejected]
    else:
        name, raw, rows = what, table.copy(), np.arange(1, len(table) + 1)
    if len(raw) == 0:
        raise BattlabError(f"{name}: the table has no rows.")
    raw.columns = [str(c) for c in raw.columns]
    raw = raw.reset_index(drop=True)
    data = raw.copy()
    for col in raw.columns:
        if pd.api.types.is_numeric_dtype(raw[col]) and not pd.api.types.is_bool_dtype(raw[col]):
            continue
        cells = raw[col].where(raw[col].astype(str).str.strip() != "")  # "" is a missing cell
        numbers = pd.to_numeric(cells, errors="coerce")
        if cells.notna().sum() and numbers.notna().sum() >= NUMERIC_SHARE * cells.notna().sum():
            data[col] = numbers
    return _Table(name, data, raw, rows, aside, len(aside))


def _numeric(table: _Table) -> list[str]:
    return [c for c in table.data.columns if pd.api.types.is_numeric_dtype(table.data[c])
            and not pd.api.types.is_bool_dtype(table.data[c])]


def _set_aside_bad_cells(table: _Table, features: Sequence[str], what: str, missing_too: bool = False) -> np.ndarray:
    """Mask of the usable rows; rows with a non-numeric (or, ``missing_too``, missing) feature cell go aside."""
    keep = np.ones(len(table.data), dtype=bool)
    for f in features:
        bad = table.bad_cells(f) & keep
        for i in np.flatnonzero(bad):
            table.aside.append({"table": what, "row": int(table.rows[i]), "column": f,
                                "value": str(table.raw[f].iloc[i]), "reason": f"column {f!r} is not a number"})
        keep &= ~bad
        if missing_too:
            gone = table.data[f].isna().to_numpy() & keep
            for i in np.flatnonzero(gone):
                table.aside.append({"table": what, "row": int(table.rows[i]), "column": f, "value": "",
                                    "reason": f"setting {f!r} is missing"})
            keep &= ~gone
    return keep


def window_from_table(done: Any, features: Sequence[str] | None = None, target: str | None = None,
                      id_column: str | None = None) -> dict[str, tuple]:
    """Bounds of a process window from the done table: each setting's range (an integer setting when every value
    is an integer). A setting held constant gets +-10 % (or +-1 around 0) so the window has room; edit them.

    Example
    -------
    >>> done = pd.DataFrame({"gap": [100, 150, 250], "solids": [0.6, 0.7, 0.65], "y": [1, 2, 3]})
    >>> window_from_table(done, target="y")
    {'gap': (100.0, 250.0, 'int'), 'solids': (0.6, 0.7)}
    """
    table = _typed(done, "done table")
    names = list(features) if features is not None else _default_features(table, target, id_column)
    out: dict[str, tuple] = {}
    for name in names:
        if name not in table.data.columns or name not in _numeric(table):
            raise BattlabError(f"{table.name}: setting {name!r} is not a numeric column of the table.")
        values = table.data[name].dropna().to_numpy(dtype=float)
        if not len(values):
            raise BattlabError(f"{table.name}: setting {name!r} has no value.")
        lo, hi = float(values.min()), float(values.max())
        if lo == hi:
            pad = abs(lo) * 0.1 or 1.0
            lo, hi = lo - pad, hi + pad
        integer = bool(np.all(values == np.round(values))) and hi - lo >= 2
        out[name] = (lo, hi, "int") if integer else (lo, hi)
    return out


def _default_features(table: _Table, target: str | None, id_column: str | None) -> list[str]:
    return [c for c in _numeric(table) if c not in (target, id_column)]


# ------------------------------------------------------------------------------------------- the artefact
@dataclass
class Recommendation:
    """The next experiments: a ranked table with predictions and reasons, and what was kept aside.

    Attributes
    ----------
    suggestions : DataFrame
        One row per suggestion, best first: ``rank``, ``design_id`` (the campaign's id, for
        ``Campaign.observe``), ``candidate_row`` (pool: the candidate's 1-based row in its table) and the
        candidate's columns, or the settings (window); then ``mean`` and ``std`` of the predicted result,
        ``acquisition`` and ``reason`` (the top features by |SHAP|, ``name=value (+contribution)``).
    contributions : DataFrame
        SHAP values of the predicted mean in result units, one row per suggestion (same order), one column per
        feature (window: per setting); ``base_value + contributions.sum(axis=1) == suggestions["mean"]``.
    base_value : float
        The mean prediction the contributions start from (over the done rows).
    set_aside : DataFrame
        ``table`` (done table / candidate table), ``row`` (1-based data row), ``column``, ``value``, ``reason``.
    target, maximize, features, space, explainer, settings
        What was asked and how it was answered (``settings``: acquisition, batch size, model, seed, numbers of
        rows, the window's bounds).
    campaign : Campaign, optional
        The campaign that made the suggestions, with the done rows as its data: save it, measure, ``observe``.
    """

    suggestions: pd.DataFrame
    contributions: pd.DataFrame
    base_value: float
    set_aside: pd.DataFrame
    target: str
    maximize: bool
    features: list[str]
    space: str
    explainer: str
    settings: dict[str, Any]
    campaign: Campaign | None = None

    def summary(self) -> str:
        """One line: what was suggested from what."""
        s = self.settings
        aside = f", {len(self.set_aside)} row(s) kept aside" if len(self.set_aside) else ""
        where = (f"{s.get('n_candidates', 0)} candidates" if self.space == "pool"
                 else f"a process window of {len(self.features)} settings")
        goal = "maximizing" if self.maximize else "minimizing"
        return (f"{len(self.suggestions)} suggestion(s) from {where}, {goal} {self.target} "
                f"({s.get('acquisition')}, model {s.get('model')}, seed {s.get('seed')}) on "
                f"{s.get('n_done_used', 0)} done experiment(s){aside}")

    def to_csv(self, path: str | Path | None = None) -> str:
        """The suggestions as CSV text (also written to ``path`` when given)."""
        text = self.suggestions.to_csv(index=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def save(self, directory: str | Path) -> Path:
        """Write ``recommendation.json``, the tables as parquet, ``suggestions.csv`` and the campaign (``campaign/``,
        :meth:`Campaign.save`). Returns the folder."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"format": "battlab.plan.Recommendation", "version": FORMAT_VERSION, "battlab_version": __version__,
                "base_value": self.base_value, "target": self.target, "maximize": self.maximize,
                "features": self.features, "space": self.space, "explainer": self.explainer,
                "settings": self.settings}
        (out / "recommendation.json").write_text(json.dumps(meta, indent=1, default=str))
        for name in ("suggestions", "contributions", "set_aside"):
            _to_parquet(getattr(self, name), out / f"{name}.parquet")
        self.to_csv(out / "suggestions.csv")
        if self.campaign is not None:
            self.campaign.save(out / "campaign")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> Recommendation:
        """Read a folder written by :meth:`save` (a one-line error when it is not one)."""
        folder = Path(directory)
        path = folder / "recommendation.json"
        if not path.is_file():
            raise BattlabError(f"{folder}: no recommendation.json; not a saved recommendation.")
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise BattlabError(f"{path} is not valid JSON: {exc}") from None
        if meta.get("format") != "battlab.plan.Recommendation" or meta.get("version") != FORMAT_VERSION:
            raise BattlabError(f"{path}: not a battlab recommendation of format version {FORMAT_VERSION}.")
        tables = {}
        for name in ("suggestions", "contributions", "set_aside"):
            if not (folder / f"{name}.parquet").is_file():
                raise BattlabError(f"{folder}: no {name}.parquet.")
            table = pd.read_parquet(folder / f"{name}.parquet")
            for col in table.columns:  # text columns come back as written (object), not as pandas strings
                if isinstance(table[col].dtype, pd.StringDtype):
                    table[col] = table[col].astype(object).where(table[col].notna(), None)
            tables[name] = table
        campaign = Campaign.load(folder / "campaign") if (folder / "campaign").is_dir() else None
        return cls(**tables, base_value=float(meta["base_value"]), target=meta["target"],
                   maximize=bool(meta["maximize"]), features=list(meta["features"]), space=meta["space"],
                   explainer=meta["explainer"], settings=dict(meta["settings"]), campaign=campaign)


# ------------------------------------------------------------------------------------------- explaining
def _mean_model(model: Any) -> tuple[Any, str]:
    """The estimator whose ``predict`` is the surrogate's mean, and which explainer suits it."""
    inner = model.model_ if isinstance(model, GroupCalibrated) else model  # calibration scales the std only
    if isinstance(inner, TreeEnsemble):
        from sklearn.pipeline import Pipeline

        return Pipeline([("impute", inner.imputer_), ("model", inner.forest_)]), "tree"
    return model, "kernel"


def explain_suggestions(campaign: Campaign, suggestions: pd.DataFrame, *, background: int = 50,
                        seed: int = 0) -> tuple[pd.DataFrame, float, str]:
    """SHAP values of the mean prediction of ``campaign``'s fitted surrogate for its suggestions.

    Tree surrogates (extra trees, random forest, also calibrated): exact TreeSHAP of the forest through
    :func:`battlab.explain.explain`. Others (GP, bagged LightGBM, a custom estimator): ``shap.KernelExplainer``
    against at most ``background`` done rows (a seeded sample). Values are in result units (a minimizing
    campaign's model learns the negated result; the sign is turned back). Returns (values: one row per suggestion,
    one column per model feature; base value; the explainer used).
    """
    model = campaign.model_
    if model is None:
        raise BattlabError("the campaign has no fitted model yet (fewer than two results).")
    space = campaign.space
    names = list(space.feature_names)
    if isinstance(space, CandidatePool):
        X = space.features(space.rows(suggestions["design_id"].astype(str)))
        train = space.features(space.rows(campaign.observations["design_id"].astype(str)))
    else:
        X = space.features(suggestions)
        train = space.features(campaign.observations)
    sign = 1.0 if campaign.maximize else -1.0
    est, kind = _mean_model(model)
    if kind == "tree":
        from battlab.explain import explain

        ex = explain(est, pd.DataFrame(X, columns=names), seed=seed)
        values, base, how = ex.values.to_numpy(dtype=float), float(ex.base_value), ex.explainer
    else:
        import shap

        rng = np.random.default_rng(seed)
        bg = train if len(train) <= background else train[np.sort(rng.choice(len(train), background, replace=False))]
        state = np.random.get_state()
        np.random.seed(seed)  # KernelExplainer samples coalitions with numpy's global generator
        try:
            explainer = shap.KernelExplainer(lambda Z: np.asarray(model.predict(Z), dtype=float), bg)
            values = np.asarray(explainer.shap_values(X, silent=True, l1_reg=False), dtype=float)
        finally:
            np.random.set_state(state)
        base = float(np.ravel(explainer.expected_value)[0])
        how = f"shap.KernelExplainer, {len(bg)} done rows as background"
    return pd.DataFrame(sign * values, columns=names), sign * base, how


def _per_setting(values: pd.DataFrame, space: Any) -> pd.DataFrame:
    """Window: one-hot columns of a choice summed into their setting; a pool's features unchanged."""
    if not isinstance(space, ProcessWindow):
        return values
    out = {}
    for p in space.params:
        cols = [f"{p.name}={c}" for c in p.choices] if p.kind == "choice" else [p.name]
        out[p.name] = values[cols].sum(axis=1)
    return pd.DataFrame(out, index=values.index)


def _reasons(contrib: pd.DataFrame, designs: pd.DataFrame, n: int) -> list[str]:
    out = []
    for i in range(len(contrib)):
        c = contrib.iloc[i]
        top = c.abs().sort_values(ascending=False, kind="stable").index[:n]
        parts = []
        for name in top:
            value = designs[name].iloc[i] if name in designs.columns else np.nan
            shown = f"{value:.4g}" if isinstance(value, (int, float, np.number)) else str(value)
            parts.append(f"{name}={shown} ({c[name]:+.3g})")
        out.append("; ".join(parts))
    return out


# ------------------------------------------------------------------------------------------------ the call
def next_experiments(done: Any, space: Any = None, target: str | None = None, *,
                     features: Sequence[str] | None = None, id_column: str | None = None,
                     constraints: Sequence[str] = (), maximize: bool = True, acquisition: str = "ei",
                     batch_size: int = 5, model: str | Any = "et-group", batch: str = "auto", kappa: float = 2.0,
                     n_reasons: int = 3, background: int = 50, min_done: int = MIN_DONE, seed: int = 0,
                     progress: Progress | None = None) -> Recommendation:
    """The next ``batch_size`` experiments, from the experiments done so far.

    Parameters
    ----------
    done : DataFrame, RawTable or path
        The experiments done so far: settings or features, and the measured result in column ``target``.
    space : DataFrame, RawTable or path of candidates; ProcessWindow; mapping of bounds; or None
        A table: a candidate pool with (at least) the model's feature columns. A :class:`ProcessWindow` or a
        mapping ``{setting: (low, high)}`` (with ``constraints``): a process window. ``None``: a window with the
        range of each setting in the done table (:func:`window_from_table`).
    target : str
        The measured result column of ``done``.
    features : sequence of str, optional
        The model's inputs; default: the numeric columns of ``done`` other than ``target`` and ``id_column``
        (window given: its settings).
    id_column : str, optional
        A column naming each experiment/candidate: a candidate with the id of a done row is kept aside (already
        measured).
    maximize, acquisition, batch, kappa, model, seed
        As in :class:`~battlab.plan.Campaign` (same seed, same suggestions).
    n_reasons : int
        Features named in each reason.
    background : int
        Done rows the kernel explainer (non-tree surrogates) integrates over, at most.
    min_done : int
        Usable done rows needed (:data:`MIN_DONE`; at least 2, below which a campaign has no model).
    progress : callable, optional
        ``progress(fraction, text)`` hears about each stage.

    Raises
    ------
    BattlabError
        An unreadable file, a done table without ``target``, a candidate table without the model's features, no
        feature, fewer than ``min_done`` usable done rows, bad settings of the campaign.
    """
    say = progress or (lambda fraction, text: None)
    if not target:
        raise BattlabError("name the target: the column of the done table with the measured result.")
    say(0.0, "reading the tables")
    done_t = _typed(done, "done table")
    check_columns(done_t.data, [target], source=done_t.name)
    if id_column is not None:
        check_columns(done_t.data, [id_column], source=done_t.name)
    window: ProcessWindow | None = None
    pool_t: _Table | None = None
    if isinstance(space, ProcessWindow):
        window = space
    elif isinstance(space, Mapping):
        window = ProcessWindow(space, constraints)
    elif space is None:
        names = list(features) if features is not None else _default_features(done_t, target, id_column)
        if not names:
            raise BattlabError(f"{done_t.name}: no numeric column besides {target!r} to use as a setting.")
        window = ProcessWindow(window_from_table(done, names, target, id_column), constraints)
    else:
        pool_t = _typed(space, "candidate table")
    chosen = features is not None
    if window is not None:
        features = list(window.names)
    elif features is None:
        features = _default_features(done_t, target, id_column)
    features = [str(f) for f in features]
    if not features:
        raise BattlabError(f"{done_t.name}: no numeric feature column besides {target!r}; name the features.")
    if target in features:
        raise BattlabError(f"the target {target!r} cannot also be a feature.")
    check_features(done_t.raw.iloc[:0], features, done_t.name)  # missing columns only; cells are checked below
    numeric = [f for f in features if window is None or window.params[window.names.index(f)].kind != "choice"]
    for f in numeric:
        if f not in _numeric(done_t):
            raise BattlabError(f"{done_t.name}: feature column {f!r} is not numeric.")
    keep = _set_aside_bad_cells(done_t, numeric, "done table", missing_too=window is not None)
    results = done_t.raw[target].where(done_t.raw[target].astype(str).str.strip() != "").to_numpy()

    if pool_t is not None:
        try:
            check_features(pool_t.raw.iloc[:0], features, pool_t.name)
        except BattlabError as exc:
            hint = "" if chosen else " (the numeric columns of the done table; name the model's inputs with features=)"
            raise BattlabError(f"{str(exc).rstrip('.')}{hint}.") from None
        for f in features:
            if f not in _numeric(pool_t):
                raise BattlabError(f"{pool_t.name}: feature column {f!r} is not numeric.")
        usable = _set_aside_bad_cells(pool_t, features, "candidate table")
        if id_column is not None and id_column in pool_t.data.columns:
            measured = {str(v): int(r) for v, r in zip(done_t.raw[id_column], done_t.rows, strict=True)}
            for i in np.flatnonzero(usable):
                v = str(pool_t.raw[id_column].iloc[i])
                if v in measured:
                    pool_t.aside.append({"table": "candidate table", "row": int(pool_t.rows[i]), "column": id_column,
                                         "value": v, "reason": f"already measured (done table row {measured[v]})"})
                    usable[i] = False
        if not usable.any():
            raise BattlabError(f"{pool_t.name}: no usable candidate (every one is kept aside: "
                               f"{pool_t.aside[0]['reason'] if pool_t.aside else 'none'}).")
        done_ids = [f"done:{r}" for r in done_t.rows[keep]]
        cand_ids = [f"candidate:{r}" for r in pool_t.rows[usable]]
        table = pd.concat([done_t.data.loc[keep, features], pool_t.data.loc[usable, features]], ignore_index=True)
        table.insert(0, _ID, done_ids + cand_ids)
        campaign = Campaign(CandidatePool(table, features=features, id_column=_ID), model=model,
                            acquisition=acquisition, batch=batch, maximize=maximize, kappa=kappa, seed=seed)
        recorded = campaign.add_data(done_ids, results[keep])
    else:
        assert window is not None
        inside = keep.copy()
        settings = done_t.data[window.names].copy()
        for p in window.params:
            if p.kind == "choice":
                settings[p.name] = done_t.raw[p.name]
        try:
            window.check(settings.loc[keep], "done table")
        except BattlabError:  # some rows outside the window: each is kept aside with the first thing it breaks
            for i in np.flatnonzero(keep):
                try:
                    window.check(settings.iloc[[i]], "done table")
                except BattlabError as exc:
                    why = str(exc).replace("done table: row 0, ", "").replace("done table: row 0 ", "").rstrip(".")
                    done_t.aside.append({"table": "done table", "row": int(done_t.rows[i]), "column": "",
                                         "value": "", "reason": f"outside the process window: {why}"})
                    inside[i] = False
        keep = inside
        campaign = Campaign(window, model=model, acquisition=acquisition, batch=batch, maximize=maximize,
                            kappa=kappa, seed=seed)
        recorded = campaign.add_data(settings.loc[keep].reset_index(drop=True), results[keep])
    for i, status in zip(np.flatnonzero(keep), recorded.itertuples(index=False), strict=True):
        if status.status == "failed":  # Campaign keeps them in .failed with the reason; here with the file's row
            done_t.aside.append({"table": "done table", "row": int(done_t.rows[i]), "column": target,
                                 "value": str(done_t.raw[target].iloc[i]), "reason": status.reason})
    aside = pd.DataFrame(done_t.aside + (pool_t.aside if pool_t is not None else []), columns=_ASIDE)
    aside = aside.sort_values(["table", "row"], kind="stable", ascending=[False, True]).reset_index(drop=True)
    n_used = len(campaign.observations)
    if n_used < max(int(min_done), 2):  # below 2 a campaign makes a random start: no model to predict or explain
        first = f"; first: row {aside['row'].iloc[0]}: {aside['reason'].iloc[0]}" if len(aside) else ""
        raise BattlabError(f"{done_t.name}: {n_used} usable result(s) in column {target!r}, the model needs at least "
                           f"{max(int(min_done), 2)} ({len(aside)} row(s) kept aside{first}).")

    say(0.2, f"fitting the surrogate on {n_used} done experiments and picking {batch_size}")
    picked = campaign.suggest(batch_size)
    say(0.6, "explaining the suggestions (SHAP)")
    values, base, how = explain_suggestions(campaign, picked, background=background, seed=seed)
    contrib = _per_setting(values, campaign.space)

    if pool_t is not None:
        rows = np.array([int(d.split(":")[1]) for d in picked["design_id"]])
        pos = [int(np.flatnonzero(pool_t.rows == r)[0]) for r in rows]
        designs = shown = pool_t.data.iloc[pos].reset_index(drop=True)  # numeric columns as numbers
        head = pd.DataFrame({"rank": np.arange(1, len(picked) + 1), "design_id": picked["design_id"].to_numpy(),
                             "candidate_row": rows})
    else:
        designs = shown = picked[window.names].reset_index(drop=True)
        head = pd.DataFrame({"rank": np.arange(1, len(picked) + 1), "design_id": picked["design_id"].to_numpy()})
    table = pd.concat([head, designs.drop(columns=[c for c in head.columns if c in designs.columns])], axis=1)
    for col in ("mean", "std", "acquisition"):
        table[col] = picked[col].to_numpy(dtype=float)
    table["reason"] = _reasons(contrib, shown, n_reasons)
    say(1.0, "done")
    params = {"acquisition": acquisition, "batch": batch, "batch_size": int(batch_size),
              "model": model if isinstance(model, str) else type(model).__name__, "kappa": kappa, "seed": int(seed),
              "n_done_rows": int(len(done_t.rows) + done_t.n_rejected),
              "n_done_used": int(n_used), "done": done_t.name}
    if pool_t is not None:
        params.update(n_candidates=int(len(campaign.space.ids) - len(campaign.observations)
                                       - len(campaign.failed)), candidates=pool_t.name)
    else:
        params.update(window=campaign.space.to_dict())
    return Recommendation(suggestions=table, contributions=contrib.reset_index(drop=True), base_value=base,
                          set_aside=aside, target=target, maximize=bool(maximize), features=list(contrib.columns),
                          space="pool" if pool_t is not None else "window", explainer=how, settings=params,
                          campaign=campaign)


# ------------------------------------------------------------------------------------------------ example
def example_tables(n_done: int = 12, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small example from data shipped with battlab, offline: ``n_done`` designs of the virtual pilot line's
    300-design DOE (:func:`battlab.electrode.load_designs`: NMC811, Chen2020, PyBaMM DFN at 0.5C and 2C) as the
    experiments done so far (the four process settings, ``specific_energy_Wh_kg`` and ``rate_capability``), and
    the other designs' settings as the candidate pool (``design`` names every row).

    Example
    -------
    >>> done, pool = example_tables()
    >>> done.shape, pool.shape, sorted(set(done.columns) - set(pool.columns))
    ((12, 7), (288, 5), ['rate_capability', 'specific_energy_Wh_kg'])
    """
    from battlab.electrode.doe import DEFAULT_SPACE, load_designs

    table, _ = load_designs()
    settings = list(DEFAULT_SPACE)
    table = table.loc[table["status"] == "ok"].reset_index(drop=True)
    table.insert(0, "design", [f"doe-{i + 1:03d}" for i in range(len(table))])
    pick = np.zeros(len(table), dtype=bool)
    pick[np.random.default_rng(seed).choice(len(table), n_done, replace=False)] = True
    done = table.loc[pick, ["design", *settings, "specific_energy_Wh_kg", "rate_capability"]].reset_index(drop=True)
    pool = table.loc[~pick, ["design", *settings]].reset_index(drop=True)
    return done, pool
