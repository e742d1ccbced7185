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

A table of **compositions** (a formula column such as ``formula`` or ``composition``, found by
:func:`battlab.curate.find_formula_column`, and a measured value) with a candidate table of formulas goes through the
workflow's own steps: the done table is curated by :func:`battlab.steps.curate` (numbers with units in their cells,
replicates averaged, bad rows quarantined) and featurized by :func:`battlab.steps.featurize` (composition features);
the candidates are curated the same way and featurized by the same :class:`~battlab.featurize.FeatureRecipe`, so the
reasons name composition features. The result column of any table is read by the curate step: ``"12 mAh/g"`` or
``"1.2e-3 S/cm"`` are numbers in the column's unit.

Nothing is lost: a done row whose result is missing or not a number (or in a unit of another quantity), a row or
candidate with a non-numeric feature cell, a done row outside the process window, a candidate already in the done
table (same id, or same formula), a row curation quarantined (a formula it cannot read, a replicate merged into
another row) and a line of the file that is not a record are kept aside in :attr:`Recommendation.set_aside` with
the file's row (1-based data row) and the reason. A done table without the target column, a candidate table
without the model's features (named) or without formulas, an unreadable file and fewer usable done rows than the
model needs (:data:`MIN_DONE`) are one-line :class:`~battlab.errors.BattlabError` messages.

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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from battlab import __version__
from battlab.errors import BattlabError
from battlab.plan.campaign import Campaign, _to_parquet
from battlab.plan.space import CandidatePool, ProcessWindow, check_features
from battlab.plan.surrogates import GroupCalibrated, TreeEnsemble
from battlab.tables import RawTable, check_columns, read_table

if TYPE_CHECKING:
    from battlab.curate import CuratedSet
    from battlab.featurize import FeatureRecipe

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
_FORMULA = "__formula__"  # the formulas of a composition pool: the chemical systems group the uncertainty

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
        ``acquisition`` and ``reason`` (the top features by ``|SHAP|``, ``name=value (+contribution)``).
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
    recipe : FeatureRecipe, optional
        A table of formulas: how the featurize step turned formulas into the model's features
        (:meth:`~battlab.featurize.FeatureRecipe.transform` featurizes new candidates the same way); ``target``
        is then the column the campaign models (``log10 <target>`` when curation decided so).
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
    recipe: FeatureRecipe | None = None

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
                "settings": self.settings, "recipe": self.recipe.to_dict() if self.recipe is not None else None}
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
        recipe = None
        if meta.get("recipe"):
            from battlab.featurize import FeatureRecipe

            recipe = FeatureRecipe.from_dict(meta["recipe"])
        return cls(**tables, base_value=float(meta["base_value"]), target=meta["target"],
                   maximize=bool(meta["maximize"]), features=list(meta["features"]), space=meta["space"],
                   explainer=meta["explainer"], settings=dict(meta["settings"]), campaign=campaign, recipe=recipe)


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


@dataclass
class _Prepared:
    """What either path hands the common tail: the campaign with the done rows recorded, and how to show picks."""

    campaign: Campaign
    aside: list[dict[str, Any]]
    done_name: str
    n_done_rows: int
    target: str  # the column the campaign models (``log10 <target>`` when curation decided so)
    failed_cells: dict[str, tuple[int, str]]  # done design id -> (file row, result cell) for the campaign's failures
    show: Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]
    params: dict[str, Any]
    recipe: FeatureRecipe | None = None


def _source_name(source: Any, what: str) -> str:
    if isinstance(source, RawTable) and source.path is not None:
        return source.path.name
    return what


def _curation_reason(reason: str, source: str, row: int, column: str) -> str:
    """curate's ``"<source>, row N, column 'c': why"`` without the place (``set_aside`` has row and column)."""
    where = f"{source}, row {row}" + (f", column {column!r}" if column else "") + ": "
    return reason[len(where):] if reason.startswith(where) else reason


def _quarantined(curated: CuratedSet, what: str) -> list[dict[str, Any]]:
    """The curate step's quarantine and merges as ``set_aside`` rows."""
    out = []
    for q in curated.quarantine.itertuples(index=False):
        column = "" if pd.isna(q.column) else str(q.column)
        reason = _curation_reason(str(q.reason), curated.source, int(q.row), column)
        out.append({"table": what, "row": int(q.row), "column": column, "value": str(q.value)[:80],
                    "reason": f"formula cannot be read: {reason}" if q.category == "formula" else reason})
    for m in curated.merged.itertuples(index=False):
        why = (f"a replicate of row {int(m.merged_into)}: curation averaged them into one result"
               if m.kind == "replicate" else f"an exact duplicate of row {int(m.merged_into)}")
        out.append({"table": what, "row": int(m.row), "column": "", "value": "", "reason": why})
    return out


def _bad_cells(curated: CuratedSet, columns: Sequence[str]) -> dict[int, tuple[str, str, str]]:
    """Rows whose cell in one of ``columns`` curation could not read (it set them to NaN): row -> (column, value,
    problem)."""
    issues = curated.issues
    bad = issues[issues["column"].isin(list(columns)) & (issues["action"] == "set to NaN")]
    return {int(r.row): (str(r.column), str(r.value), str(r.problem)) for r in bad.itertuples(index=False)}


def _parse_results(table: _Table, target: str) -> tuple[np.ndarray, list[dict[str, Any]], str]:
    """The result column read by the curate step (:func:`battlab.steps.curate`): numbers with units in their
    cells (``"12 mAh/g"``, ``"1.2e-3 S/cm"``) converted to the column's unit (its header's, else the unit most
    cells give). Returns the results (a cell curation cannot read stays as written, so the campaign names it),
    the rows curation rejects for a reason of its own (a wrong unit, a physically impossible value), and the unit.

    Example
    -------
    >>> t = _typed(pd.DataFrame({"gap": [1, 2, 3, 4], "capacity": ["140 mAh/g", "0.15 Ah/g", 145, "12 V"]}), "t")
    >>> values, aside, unit = _parse_results(t, "capacity")
    >>> values.tolist()[:3], unit, aside[0]["row"], aside[0]["reason"][:10]
    ([140.0, 150.0, 145.0], 'milliampere_hour / gram', 4, 'wrong unit')
    """
    from battlab.steps import curate

    raw = table.raw[target]
    cells = raw.where(raw.astype(str).str.strip() != "")
    curated = curate(pd.DataFrame({target: cells.to_numpy()}), target=target, formula_column=None, source=table.name)
    parsed = (curated.target_input.to_numpy(dtype=float) if curated.target_input is not None
              else np.full(len(raw), np.nan))
    values = np.where(np.isnan(parsed), cells.to_numpy(dtype=object), parsed)
    aside = []
    for q in curated.quarantine.itertuples(index=False):
        if q.category in ("wrong_unit", "out_of_bounds"):
            i = int(q.row) - 1
            aside.append({"table": "done table", "row": int(table.rows[i]), "column": target, "value": str(q.value),
                          "reason": _curation_reason(str(q.reason), table.name, int(q.row), target)})
    return values, aside, str(curated.report["units"].get(target, ""))


def _formula_column(source: RawTable | pd.DataFrame, formula_column: str | None) -> str | None:
    from battlab.curate import find_formula_column

    columns = [str(c) for c in (source.data if isinstance(source, RawTable) else source).columns]
    if formula_column == "auto":
        return find_formula_column(columns)
    if formula_column is not None and formula_column not in columns:
        raise BattlabError(f"no formula column {formula_column!r} in the done table; columns are {columns[:12]}.")
    return formula_column


def _prepare_formulas(done: RawTable | pd.DataFrame, pool: RawTable | pd.DataFrame, target: str, formula: str,
                      extra: Sequence[str] | None, id_column: str | None, min_done: int,
                      campaign_settings: dict[str, Any], say: Progress) -> _Prepared:
    """A table of compositions: the done table curated by the curate step, featurized by the featurize step; the
    candidates curated the same way and featurized by the same :class:`~battlab.featurize.FeatureRecipe`."""
    from battlab.curate import FORMULA_COLUMNS, find_formula_column
    from battlab.steps import curate, featurize

    done_name, pool_name = _source_name(done, "done table"), _source_name(pool, "candidate table")
    curated = curate(done, formula_column=formula, target=target, source=done_name)
    aside = _quarantined(curated, "done table")
    need = max(int(min_done), 2)
    if len(curated.table) < need:
        first = f"; first: row {aside[0]['row']}: {aside[0]['reason']}" if aside else ""
        unread = sum(a["reason"].startswith("formula cannot be read") for a in aside)
        hint = (f"; if column {formula!r} holds names rather than formulas, pass formula_column=None"
                if unread > len(aside) / 2 else "")
        raise BattlabError(f"{done_name}: {len(curated.table)} usable result(s) in column {target!r}, the model needs "
                           f"at least {need} ({len(aside)} row(s) kept aside{first}){hint}.")
    say(0.05, f"featurizing {len(curated.table)} done formulas (composition features)")
    fs = featurize(curated, columns=list(extra) if extra else None)
    recipe, features, table = fs.recipe, fs.features, fs.table
    raw_formula = table["formula_raw" if formula == "formula" else formula].astype(str).to_numpy()
    bad_extra = _bad_cells(curated, recipe.process_columns)
    y = table[fs.model_target].to_numpy(dtype=float)
    ok = np.ones(len(table), dtype=bool)
    for i, (row, error) in enumerate(zip(table["row"].astype(int), table["featurize_error"].fillna(""), strict=True)):
        if error:
            aside.append({"table": "done table", "row": int(row), "column": formula, "value": raw_formula[i],
                          "reason": f"formula cannot be featurized: {error}"})
        elif row in bad_extra:
            column, value, problem = bad_extra[row]
            aside.append({"table": "done table", "row": int(row), "column": column, "value": value,
                          "reason": f"column {column!r}: {problem}"})
        elif np.isnan(y[i]):
            aside.append({"table": "done table", "row": int(row), "column": target,
                          "value": f"{table[target].iloc[i]:g}",
                          "reason": f"result is not positive: {target!r} is modelled as log10 (it spans decades)"})
        else:
            continue
        ok[i] = False

    pool_columns = [str(c) for c in (pool.data if isinstance(pool, RawTable) else pool).columns]
    pool_formula = formula if formula in pool_columns else find_formula_column(pool_columns)
    if pool_formula is None:
        names = ", ".join(repr(c) for c in FORMULA_COLUMNS[:3])
        raise BattlabError(f"{pool_name}: no formula column ({names}, ...): the model's features are computed "
                           f"from the formulas of the done table ({formula!r}), so the candidates need theirs.")
    shown = _typed(pool, "candidate table")  # the candidates' cells as written, for the suggestions table
    say(0.1, f"curating and featurizing {len(shown.data)} candidates with the same recipe")
    candidates = curate(pool, formula_column=pool_formula, source=pool_name)
    pool_aside = _quarantined(candidates, "candidate table")
    for a in pool_aside:
        if a["reason"].startswith("an exact duplicate of row"):
            a["reason"] = a["reason"].replace("an exact duplicate of row", "the same candidate as row")
    check_features(candidates.table.iloc[:0], recipe.process_columns, pool_name)  # the table columns used
    X, errors = recipe.transform(candidates.table)
    bad_pool = _bad_cells(candidates, recipe.process_columns)
    key_columns = ["formula", *recipe.process_columns]
    measured = {tuple(k): int(r) for k, r in zip(table.loc[ok, key_columns].astype(str).itertuples(index=False),
                                                 table.loc[ok, "row"], strict=True)}
    ids_done = ({str(v): int(r) for v, r in zip(table[id_column], table["row"], strict=True)}
                if id_column and id_column in table.columns and id_column in candidates.table.columns else {})
    cand_raw = candidates.table["formula_raw" if pool_formula == "formula" else pool_formula].astype(str).to_numpy()
    usable = np.ones(len(candidates.table), dtype=bool)
    keys = candidates.table[key_columns].astype(str).itertuples(index=False)
    for i, (row, error, key) in enumerate(zip(candidates.table["row"].astype(int), errors, keys, strict=True)):
        entry = {"table": "candidate table", "row": int(row), "column": pool_formula, "value": cand_raw[i]}
        if error:
            entry["reason"] = f"formula cannot be featurized: {error}"
        elif row in bad_pool:
            column, value, problem = bad_pool[row]
            entry.update(column=column, value=value, reason=f"column {column!r}: {problem}")
        elif tuple(key) in measured:
            entry["reason"] = f"already measured (done table row {measured[tuple(key)]})"
        elif ids_done and str(candidates.table[id_column].iloc[i]) in ids_done:
            value = str(candidates.table[id_column].iloc[i])
            entry.update(column=id_column, value=value, reason=f"already measured (done table row {ids_done[value]})")
        else:
            continue
        pool_aside.append(entry)
        usable[i] = False
    if not usable.any():
        raise BattlabError(f"{pool_name}: no usable candidate (every one is kept aside: "
                           f"{pool_aside[0]['reason'] if pool_aside else 'none'}).")

    done_ids = [f"done:{r}" for r in table.loc[ok, "row"].astype(int)]
    cand_rows = candidates.table.loc[usable, "row"].astype(int).to_numpy()
    cand_ids = [f"candidate:{r}" for r in cand_rows]
    values = pd.concat([table.loc[ok, features], X.loc[usable, features]], ignore_index=True).astype(float)
    values.insert(0, _ID, done_ids + cand_ids)
    values[_FORMULA] = list(table.loc[ok, "formula"]) + list(candidates.table.loc[usable, "formula"])
    campaign = Campaign(CandidatePool(values, features=features, id_column=_ID, formula_column=_FORMULA),
                        **campaign_settings)
    campaign.add_data(done_ids, y[ok])
    by_id = values.set_index(_ID)

    def show(picked: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        rows = np.array([int(d.split(":")[1]) for d in picked["design_id"]])
        pos = [int(np.flatnonzero(shown.rows == r)[0]) for r in rows]
        head = pd.DataFrame({"rank": np.arange(1, len(picked) + 1), "design_id": picked["design_id"].to_numpy(),
                             "candidate_row": rows})
        return head, shown.data.iloc[pos].reset_index(drop=True), by_id.loc[picked["design_id"], features]

    unit = str(curated.report["units"].get(target, ""))
    params = {"formula_column": formula, "measured_target": target, "target_unit": unit,
              "log_target": fs.model_target != target, "features_from": repr(recipe),
              "n_features": len(features), "n_candidates": len(cand_ids), "candidates": pool_name}
    n_rows = int(curated.report["n_input"])
    return _Prepared(campaign, aside + pool_aside, done_name, n_rows, str(fs.model_target), {}, show, params, recipe)


def _prepare_columns(done: Any, space: Any, target: str, features: Sequence[str] | None, id_column: str | None,
                     constraints: Sequence[str], campaign_settings: dict[str, Any]) -> _Prepared:
    """A table of settings or features (numeric columns): a candidate pool with the same columns, or a window."""
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
    results, unit_aside, unit = _parse_results(done_t, target)
    for a in unit_aside:
        i = int(np.flatnonzero(done_t.rows == a["row"])[0])
        if keep[i]:
            done_t.aside.append(a)
            keep[i] = False

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
        campaign = Campaign(CandidatePool(table, features=features, id_column=_ID), **campaign_settings)
        campaign.add_data(done_ids, results[keep])
        failed = {d: (int(r), str(done_t.raw[target].iloc[i])) for d, r, i in
                  zip(done_ids, done_t.rows[keep], np.flatnonzero(keep), strict=True)}
        the_pool = pool_t

        def show(picked: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
            rows = np.array([int(d.split(":")[1]) for d in picked["design_id"]])
            pos = [int(np.flatnonzero(the_pool.rows == r)[0]) for r in rows]
            designs = the_pool.data.iloc[pos].reset_index(drop=True)  # numeric columns as numbers
            head = pd.DataFrame({"rank": np.arange(1, len(picked) + 1), "design_id": picked["design_id"].to_numpy(),
                                 "candidate_row": rows})
            return head, designs, designs

        params = {"n_candidates": len(cand_ids), "candidates": pool_t.name}
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
        campaign = Campaign(window, **campaign_settings)
        recorded = campaign.add_data(settings.loc[keep].reset_index(drop=True), results[keep])
        failed = {d: (int(r), str(done_t.raw[target].iloc[i])) for d, r, i in
                  zip(recorded["design_id"], done_t.rows[keep], np.flatnonzero(keep), strict=True)}
        names = window.names

        def show(picked: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
            designs = picked[names].reset_index(drop=True)
            head = pd.DataFrame({"rank": np.arange(1, len(picked) + 1), "design_id": picked["design_id"].to_numpy()})
            return head, designs, designs

        params = {"window": campaign.space.to_dict()}
    params["target_unit"] = unit
    aside = done_t.aside + (pool_t.aside if pool_t is not None else [])
    return _Prepared(campaign, aside, done_t.name, int(len(done_t.rows) + done_t.n_rejected), target, failed, show,
                     params)


# ------------------------------------------------------------------------------------------------ the call
def next_experiments(done: Any, space: Any = None, target: str | None = None, *,
                     features: Sequence[str] | None = None, id_column: str | None = None,
                     formula_column: str | None = "auto", constraints: Sequence[str] = (), maximize: bool = True,
                     acquisition: str = "ei", batch_size: int = 5, model: str | Any = "et-group",
                     batch: str = "auto", kappa: float = 2.0, n_reasons: int = 3, background: int = 50,
                     min_done: int = MIN_DONE, seed: int = 0, progress: Progress | None = None) -> Recommendation:
    """The next ``batch_size`` experiments, from the experiments done so far.

    Parameters
    ----------
    done : DataFrame, RawTable or path
        The experiments done so far: settings or features (or formulas), and the measured result in column
        ``target`` (numbers, or numbers with their unit: ``"12 mAh/g"``, read by the curate step).
    space : DataFrame, RawTable or path of candidates; ProcessWindow; mapping of bounds; or None
        A table: a candidate pool with (at least) the model's feature columns, or with formulas. A
        :class:`ProcessWindow` or a mapping ``{setting: (low, high)}`` (with ``constraints``): a process window.
        ``None``: a window with the range of each setting in the done table (:func:`window_from_table`).
    target : str
        The measured result column of ``done``.
    features : sequence of str, optional
        The model's inputs; default: the numeric columns of ``done`` other than ``target`` and ``id_column``
        (window given: its settings). For a table of formulas: numeric table columns used beside the composition
        features (default: none).
    id_column : str, optional
        A column naming each experiment/candidate: a candidate with the id of a done row is kept aside (already
        measured).
    formula_column : str or None
        A column of chemical formulas (``"auto"``: found by name, :func:`battlab.curate.find_formula_column`;
        ``None``: the table has none). With a candidate pool, a formula table goes through the workflow's steps:
        the done table is curated (:func:`battlab.steps.curate`: units, replicates, quarantine), featurized
        (:func:`battlab.steps.featurize`: composition features), and the candidates are curated and featurized by
        the same :class:`~battlab.featurize.FeatureRecipe`; the campaign models the target as curation decided
        (``log10 <target>`` for conductivities spanning decades: :attr:`Recommendation.target` says which) and
        groups its uncertainty by chemical system.
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
        An unreadable file, a done table without ``target``, a candidate table without the model's features (or
        without formulas), no feature, fewer than ``min_done`` usable done rows, bad settings of the campaign.

    Example
    -------
    >>> done = pd.DataFrame({"formula": ["Li7La3Zr2O12", "Li3PS4", "Li6PS5Cl", "LiTi2(PO4)3", "Li3YCl6"],
    ...                      "conductivity": ["3e-4 S/cm", "0.16 mS/cm", "1.9e-3", "1e-6", "5e-4"]})
    >>> pool = pd.DataFrame({"formula": ["Li10GeP2S12", "LiNbO3", "Li3InCl6", "Qq2O"]})
    >>> rec = next_experiments(done, pool, "conductivity", batch_size=2, seed=0)
    >>> rec.target, len(rec.suggestions), rec.set_aside["reason"].tolist()
    ('log10 conductivity', 2, ["formula cannot be read: unknown element 'Qq'"])
    """
    say = progress or (lambda fraction, text: None)
    if not target:
        raise BattlabError("name the target: the column of the done table with the measured result.")
    say(0.0, "reading the tables")
    settings = {"model": model, "acquisition": acquisition, "batch": batch, "maximize": maximize, "kappa": kappa,
                "seed": seed}
    prepared = None
    if space is not None and not isinstance(space, (ProcessWindow, Mapping)):
        done, space = read_experiments(done, "done table"), read_experiments(space, "candidate table")
        formula = _formula_column(done, formula_column)
        if formula is not None:
            if id_column is not None:
                check_columns(done.data if isinstance(done, RawTable) else done, [id_column],
                              source=_source_name(done, "done table"))
            prepared = _prepare_formulas(done, space, target, formula, features, id_column, min_done, settings, say)
    if prepared is None:
        prepared = _prepare_columns(done, space, target, features, id_column, constraints, settings)
    campaign = prepared.campaign
    aside = list(prepared.aside)
    for failure in campaign.failed.itertuples(index=False):  # kept by the campaign with the reason; here with the row
        row, cell = prepared.failed_cells.get(str(failure.design_id), (0, str(failure.result)))
        aside.append({"table": "done table", "row": row, "column": target, "value": cell, "reason": failure.reason})
    aside = pd.DataFrame(aside, columns=_ASIDE)
    aside = aside.sort_values(["table", "row"], kind="stable", ascending=[False, True]).reset_index(drop=True)
    n_used = len(campaign.observations)
    if n_used < max(int(min_done), 2):  # below 2 a campaign makes a random start: no model to predict or explain
        first = f"; first: row {aside['row'].iloc[0]}: {aside['reason'].iloc[0]}" if len(aside) else ""
        raise BattlabError(f"{prepared.done_name}: {n_used} usable result(s) in column {target!r}, the model needs "
                           f"at least {max(int(min_done), 2)} ({len(aside)} row(s) kept aside{first}).")

    say(0.2, f"fitting the surrogate on {n_used} done experiments and picking {batch_size}")
    picked = campaign.suggest(batch_size)
    say(0.6, "explaining the suggestions (SHAP)")
    values, base, how = explain_suggestions(campaign, picked, background=background, seed=seed)
    contrib = _per_setting(values, campaign.space)
    head, designs, shown = prepared.show(picked)
    table = pd.concat([head, designs.drop(columns=[c for c in head.columns if c in designs.columns])], axis=1)
    for col in ("mean", "std", "acquisition"):
        table[col] = picked[col].to_numpy(dtype=float)
    table["reason"] = _reasons(contrib, shown.reset_index(drop=True), n_reasons)
    say(1.0, "done")
    params = {"acquisition": acquisition, "batch": batch, "batch_size": int(batch_size),
              "model": model if isinstance(model, str) else type(model).__name__, "kappa": kappa, "seed": int(seed),
              "n_done_rows": prepared.n_done_rows, "n_done_used": int(n_used), "done": prepared.done_name,
              **prepared.params}
    return Recommendation(suggestions=table, contributions=contrib.reset_index(drop=True), base_value=base,
                          set_aside=aside, target=prepared.target, maximize=bool(maximize),
                          features=list(contrib.columns), explainer=how, settings=params,
                          space="pool" if isinstance(campaign.space, CandidatePool) else "window",
                          campaign=campaign, recipe=prepared.recipe)


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
