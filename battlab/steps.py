"""The workflow's steps, one function each, and the typed artefacts they hand one another.

.. code-block:: text

    table file, DataFrame or dataset --curate--> CuratedSet --featurize--> FeatureSet --tune--> TunedModel
                                                                                              |
                                                        FeatureSet or any raw table --explain--> Explanation

Notebooks 01-04, ``battlab curate|featurize|tune|explain``, :mod:`battlab.apps` and the widgets call these
four functions; none of them featurizes, prunes, derives a log target, picks feature columns or builds a
split on its own. Every artefact has ``save(dir)`` / ``load(dir)``, and its folder records the artefact
kind and a format version (:data:`FORMAT_VERSION`): loading another version fails with a message saying
which version was found and what to do.

Why one module for the steps, and not one function per step module: the *algorithms* stay where they
are and do not know one another (:mod:`battlab.curate` parses and accounts for rows,
:mod:`battlab.featurize` computes descriptors, :mod:`battlab.tune` runs optuna, :mod:`battlab.explain`
computes SHAP values). What drifted apart in four copies was the *orchestration* between them: which
descriptors, pruning, the log10 target, which columns are features, which split, how new rows are
featurized for a prediction. That orchestration is one thing and lives here, in one file a reader can
point to. The artefacts that join two modules (:class:`FeatureSet`: featurize + the target as modelled;
:class:`TunedModel`: tune + the recipe that featurizes new rows) live here too; the artefacts of a single
module stay with it (:class:`~battlab.curate.CuratedSet`, :class:`~battlab.explain.Explanation`) and are
re-exported.

Any table goes through: with a formula column, composition (and structure) features and the
chemical-system split; without one, the table's numeric columns are the features and the split is
random K-fold, a group column (``group:COLUMN``) or an official split column (``official:COLUMN``).

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> raw = pd.DataFrame({"gap": rng.uniform(50, 200, 60), "solids": rng.uniform(0.5, 0.7, 60)})
>>> raw["spread"] = 0.001 * raw["gap"] + rng.normal(scale=0.01, size=60)
>>> fs = featurize(curate(raw, target="spread"))
>>> fs.features, fs.model_target, fs.split
(['gap', 'solids'], 'spread', 'random')
>>> tuned = tune(fs, models=("ridge",), n_trials=2, storage="sqlite:///:memory:", progress=False)
>>> tuned.split
'random 5-fold (seed 0)'
>>> new = pd.DataFrame({"gap": [100.0, 150.0], "solids": [0.6, 0.6]})
>>> list(tuned.predict_interval(new).columns)
['prediction', 'low', 'high', 'error']
>>> explain(tuned, fs).explainer
'linear SHAP: coef x (x - mean of the rows)'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab import __version__
from battlab.curate import CuratedSet, find_formula_column
from battlab.errors import BattlabError
from battlab.explain import Explanation
from battlab.featurize import FeatureRecipe
from battlab.split import Splitter, splitter_from_spec

__all__ = ["FORMAT_VERSION", "CuratedSet", "Explanation", "FeatureSet", "TunedModel", "curate", "explain",
           "featurize", "open_features", "predict", "read_data", "tune"]

#: Format version of every artefact folder this battlab writes and reads.
FORMAT_VERSION = 1

#: Columns curation writes for its own bookkeeping: never features of a plain table.
_BOOKKEEPING_SUFFIXES = ("_censored", "_n", "_std", "_std_log10")
_BOOKKEEPING = ("row", "qc_flags", "featurize_error", "formula_raw")


def artefact_header(kind: str) -> dict[str, Any]:
    """The fields that start every artefact's JSON record: kind, format version, battlab version."""
    return {"artefact": kind, "format_version": FORMAT_VERSION, "battlab_version": __version__}


def check_artefact(meta: dict[str, Any], kind: str, path: str | Path) -> int:
    """The format version of an artefact record, after checking it is a ``kind`` this battlab reads.

    Records without a version were written before the step layer (version 0): their files are the same,
    and the loaders read them, inferring what they lack.

    Example
    -------
    >>> check_artefact({"artefact": "FeatureSet", "format_version": 1}, "FeatureSet", "f")
    1
    >>> check_artefact({"artefact": "FeatureSet", "format_version": 9, "battlab_version": "9.0"}, "FeatureSet", "f")
    Traceback (most recent call last):
    ...
    battlab.errors.BattlabError: f: a FeatureSet of format version 9 (written by battlab 9.0); this battlab \
(0.1.0) reads version 1: run the step again with this battlab, or load it with battlab 9.0
    """
    found = meta.get("artefact")
    if found is not None and found != kind:
        raise BattlabError(f"{path}: a {found}, not a {kind}")
    version = meta.get("format_version")
    if version is None:
        return 0
    if version != FORMAT_VERSION:
        by = meta.get("battlab_version", "?")
        raise BattlabError(f"{path}: a {kind} of format version {version} (written by battlab {by}); this "
                           f"battlab ({__version__}) reads version {FORMAT_VERSION}: run the step again with "
                           f"this battlab, or load it with battlab {by}")
    return int(version)


# ============================================================================ curate

def curate(data: pd.DataFrame | str | Path | None = None, *, dataset: str | None = None,
           **settings: Any) -> CuratedSet:
    """The curate step: a table (DataFrame or file) or a registered ``dataset`` in, a :class:`CuratedSet` out.

    ``settings`` go to :func:`battlab.curate.curate` (``formula_column``, ``target``, ``units``,
    ``group_by``...); a dataset's data card supplies them first (:func:`battlab.curate.curate_dataset`).
    """
    from battlab.curate import curate as curate_table
    from battlab.curate import curate_dataset

    if dataset:
        return curate_dataset(dataset, **settings)[0]
    if data is None:
        raise BattlabError("curate: give a table (DataFrame or file) or a dataset name")
    return curate_table(data, **settings)


# ============================================================================ featurize

@dataclass
class FeatureSet:
    """The artefact of the featurize step: a table with its feature columns and what the next steps need.

    Attributes
    ----------
    table : DataFrame
        Every row of the curated table, its columns, the feature columns, ``featurize_error`` ('' when
        featurized) and the modelled target column.
    info : DataFrame
        ``feature``, ``family``, ``property``, ``unit``, ``kept``, ``drop_reason`` of every feature computed.
    target, model_target : str or None
        The target as measured, and the column models learn (``log10 <target>`` for quantities spanning
        decades, as curation decided).
    recipe : FeatureRecipe
        How a raw table becomes the kept features (what a tuned model keeps to featurize new rows).
    split : str
        The default split for tuning (``chemical_system`` with formulas, else ``random`` or ``group:COLUMN``).
    group_column : str or None
        A column of groups (families, batches, an official split) that splits may use.
    notes : list of str
        What the step decided that a reader should know (columns left out and why, curation summary).
    units : dict of str to str
        The unit of each column that curation knew one for (``{"formation_enthalpy_per_atom": "eV/atom"}``):
        the plots' axis labels.
    """

    table: pd.DataFrame
    info: pd.DataFrame
    target: str | None
    model_target: str | None
    recipe: FeatureRecipe
    split: str = "random"
    group_column: str | None = None
    formula_column: str | None = None
    notes: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)

    @property
    def target_unit(self) -> str:
        """The unit of the measured target (``""`` when unknown), as people write it."""
        from battlab.units import unit_text

        return unit_text(self.units.get(self.target or "", ""))

    @property
    def features(self) -> list[str]:
        """The kept features, in the models' column order."""
        return list(self.recipe.features)

    @classmethod
    def from_columns(cls, table: pd.DataFrame, features: list[str], *, target: str | None = None,
                     info: pd.DataFrame | None = None, log_target: bool = False) -> FeatureSet:
        """A feature set of columns computed elsewhere (a widget's table, a table with its own descriptors).

        Example
        -------
        >>> t = pd.DataFrame({"formula": ["LiCoO2", "NaCl"], "x": [1.0, 2.0], "y": [0.5, 0.7]})
        >>> fs = FeatureSet.from_columns(t, ["x"], target="y")
        >>> fs.features, fs.model_target, fs.split
        (['x'], 'y', 'chemical_system')
        """
        formula = find_formula_column([str(c) for c in table.columns])
        missing = [f for f in features if f not in table.columns]
        if missing:
            raise BattlabError(f"features not in the table: {missing[:5]}")
        recipe = FeatureRecipe.infer(features, formula_column=formula or "formula")
        if recipe.formula_column and recipe.formula_column not in table:
            recipe = FeatureRecipe(features, process_columns=features)
        if info is None:
            info = recipe.info()
        info = info.assign(kept=info["kept"] if "kept" in info else True)
        fs = cls(table, info, None, None, recipe, split="chemical_system" if formula else "random",
                 formula_column=formula)
        return fs.with_target(target, log=log_target) if target else fs

    @property
    def labels(self) -> list[str] | None:
        """What names a row in plots and apps: its formula, when there are formulas."""
        col = self.formula_column
        return self.table[col].astype(str).tolist() if col and col in self.table else None

    def usable(self) -> pd.DataFrame:
        """The rows that were featurized."""
        if "featurize_error" not in self.table:
            return self.table
        return self.table[self.table["featurize_error"].fillna("") == ""]

    def with_target(self, target: str | None, log: bool = False) -> FeatureSet:
        """The same features with another target (``log``: modelled as ``log10 <target>``).

        Example
        -------
        >>> fs = FeatureSet(pd.DataFrame({"x": [1.0, 2.0], "s": [1e-3, 1e-5]}), pd.DataFrame(), None, None,
        ...                 FeatureRecipe(["x"], process_columns=["x"]))
        >>> fs.with_target("s", log=True).table["log10 s"].tolist()
        [-3.0, -5.0]
        """
        from battlab.featurize import add_model_target

        if not target:
            return replace(self, target=None, model_target=None)
        if target not in self.table:
            raise BattlabError(f"no target column {target!r} in the table; columns are "
                               f"{[str(c) for c in self.table.columns][:12]}")
        table, model_target = add_model_target(self.table, target, log=log)
        return replace(self, table=table, target=target, model_target=model_target)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"FeatureSet({s['n_rows']} rows, {s['n_kept_features']} of {s['n_features']} features kept, "
                f"target {s['target'] or '-'}, split {s['split']})")

    def summary(self) -> dict[str, Any]:
        """Key figures for ``save_step`` and logs."""
        kept = self.info["kept"] if "kept" in self.info else pd.Series(True, index=self.info.index)
        return {"n_rows": len(self.table), "n_features": len(self.info), "n_kept_features": int(kept.sum()),
                "n_failed_rows": int(len(self.table) - len(self.usable())),
                "preset": self.recipe.preset or "", "target": self.model_target or "", "split": self.split,
                "families": self.info["family"].value_counts().to_dict() if "family" in self.info else {}}

    # ------------------------------------------------------------------ files
    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``features.parquet``, ``feature_info.csv`` and ``featureset.json`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / k for k in ("features.parquet", "feature_info.csv", "featureset.json")}
        self.table.to_parquet(paths["features.parquet"], index=False)
        self.info.to_csv(paths["feature_info.csv"], index=False)
        meta = {**artefact_header("FeatureSet"), "target": self.target, "model_target": self.model_target,
                "recipe": self.recipe.to_dict(), "split": self.split, "group_column": self.group_column,
                "formula_column": self.formula_column, "notes": self.notes, "units": self.units}
        paths["featureset.json"].write_text(json.dumps(meta, indent=1))
        return paths

    @classmethod
    def load(cls, path: str | Path) -> FeatureSet:
        """The feature set in folder ``path`` (or the folder of its ``features.parquet``).

        A table written before the step layer (by ``battlab featurize``: ``<stem>_info.csv`` beside it, or
        notebook 02: ``feature_info.csv``) loads too: its features are the kept rows of the info file and
        its recipe is inferred from their names; it has no target (give one to :func:`tune`).
        """
        from battlab.tables import load_table

        path = Path(path)
        folder, table_path = (path, path / "features.parquet") if path.is_dir() else (path.parent, path)
        meta_path = folder / "featureset.json"
        if not table_path.is_file():
            raise BattlabError(f"{table_path}: no such file")
        if not meta_path.is_file():
            return cls._load_legacy(table_path)
        meta = json.loads(meta_path.read_text())
        check_artefact(meta, "FeatureSet", meta_path)
        return cls(table=load_table(table_path), info=pd.read_csv(folder / "feature_info.csv", keep_default_na=False),
                   target=meta["target"], model_target=meta["model_target"],
                   recipe=FeatureRecipe.from_dict(meta["recipe"]), split=meta["split"],
                   group_column=meta.get("group_column"), formula_column=meta.get("formula_column"),
                   notes=list(meta.get("notes", [])), units=dict(meta.get("units") or {}))

    @classmethod
    def _load_legacy(cls, table_path: Path) -> FeatureSet:
        from battlab.tables import load_table

        for info_path in (table_path.with_name(table_path.stem + "_info.csv"),
                          table_path.with_name("feature_info.csv")):
            if info_path.is_file():
                break
        else:
            raise BattlabError(f"{table_path}: neither a feature set (featureset.json beside it) nor a table "
                               "with feature info beside it; give --target (and --features or --exclude) to "
                               "use its numeric columns as features")
        info = pd.read_csv(info_path, keep_default_na=False)
        kept = info.loc[info["kept"].astype(str).str.lower() == "true", "feature"] if "kept" in info \
            else info["feature"]
        table = load_table(table_path)
        recipe = FeatureRecipe.infer(kept.tolist(), formula_column="formula")
        if recipe.formula_column and recipe.formula_column not in table:
            recipe = FeatureRecipe(kept.tolist(), process_columns=kept.tolist())
        formula = "formula" if "formula" in table else None
        return cls(table=table, info=info, target=None, model_target=None, recipe=recipe,
                   split="chemical_system" if formula else "random", formula_column=formula,
                   notes=[f"read {info_path.name} written before feature sets had a format version"])


def _numeric_problem(table: pd.DataFrame, column: str) -> str:
    """'' when ``column`` is numeric (NaN allowed), else the first cell that is not a number."""
    values = table[column]
    if pd.api.types.is_bool_dtype(values):
        return "true/false values"
    converted = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & converted.isna() & (values.astype(str).str.strip() != "")
    if not bad.any():
        return ""
    first = bad.idxmax()
    row = table["row"].loc[first] if "row" in table else first
    return f"row {row}: {values.loc[first]!r} is not a number"


def _auto_columns(table: pd.DataFrame, skip: set[str]) -> list[str]:
    cols = []
    for c in table.columns:
        name = str(c)
        if name in skip or name in _BOOKKEEPING or name.endswith(_BOOKKEEPING_SUFFIXES):
            continue
        if pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]):
            cols.append(name)
    return cols


def featurize(
    data: CuratedSet | pd.DataFrame,
    *,
    target: str | None = None,
    log_target: bool | None = None,
    formula_column: str | None = "auto",
    preset: str = "battery",
    working_ion: str = "Li",
    structure: bool | None = None,
    columns: list[str] | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    prune_threshold: float | None = 0.95,
    group_column: str | None = None,
    cache_dir: str | Path | None = None,
) -> FeatureSet:
    """The featurize step: a curated set (or a clean DataFrame) in, a :class:`FeatureSet` out.

    Parameters
    ----------
    data
        A :class:`CuratedSet` (its target, formulas and log-target decision are used), or a DataFrame.
    target, log_target
        Override the curated set's target and its log10 decision.
    formula_column
        ``"auto"``: the curated set's (``formula``), or a column found by name in a DataFrame; ``None``: no
        composition features.
    preset, working_ion, structure
        Composition descriptors (:data:`battlab.featurize.PRESETS`) and structure descriptors (``None``:
        when the table has the lattice columns).
    columns
        Numeric table columns to use as features (added to the composition features). Default: none with
        formulas; without formulas, every numeric column but the target, ``exclude`` and curation's
        bookkeeping columns. Named columns are never pruned.
    exclude
        Columns never to use as features (e.g. an index, or other outputs of the experiment).
    prune_threshold
        Computed and automatically chosen features correlated above this with an earlier one (and constant
        ones) are not kept, with the reason in ``info``; ``None``: no pruning.
    group_column
        A column of groups for splits (default split ``group:COLUMN`` when there are no formulas).
    cache_dir
        Folder where composition features are cached.

    Raises
    ------
    BattlabError
        A named column is missing or not numeric; no feature at all.
    """
    from battlab.featurize import featurize_table, prune_info
    from battlab.tables import check_columns

    notes: list[str] = []
    if isinstance(data, CuratedSet):
        table = data.table
        target = target if target is not None else data.target
        log_target = data.log_target if log_target is None else log_target
        formula = data.formula_column if formula_column == "auto" else formula_column
        source = data.source or "curated table"
        notes.append(data.summary())
        units = {str(k): str(v) for k, v in data.report.get("units", {}).items() if v}
    else:
        table = data
        formula = find_formula_column([str(c) for c in table.columns]) if formula_column == "auto" else formula_column
        source = "table"
        units = {}
    exclude = [str(c) for c in exclude]
    named = [str(c) for c in columns] if columns else []
    check_columns(table, [c for c in (*named, *exclude, target, group_column, formula) if c], source=source)
    if target and target in named:
        raise BattlabError(f"{source}: the target {target!r} cannot also be a feature")
    skip = {c for c in (target, f"log10 {target}" if target else None, group_column, formula) if c} | set(exclude)
    auto = [] if (formula or named) else _auto_columns(table, skip)
    if auto:
        left_out = [str(c) for c in table.columns if str(c) not in auto and str(c) not in skip
                    and str(c) not in _BOOKKEEPING and not str(c).endswith(_BOOKKEEPING_SUFFIXES)]
        if left_out:
            notes.append(f"not numeric, so not features: {', '.join(left_out[:8])}")
    table_columns = [c for c in named if c not in exclude] or auto
    for c in table_columns:
        problem = _numeric_problem(table, c)
        if problem:
            raise BattlabError(f"{source}, column {c!r}: {problem}; features must be numbers "
                               "(exclude the column, or curate the table first)")
    if not formula and not table_columns:
        raise BattlabError(f"{source}: no feature columns: no formula column and no numeric column besides "
                           "the target; name the features (--features)")

    if formula:
        featured, info = featurize_table(table, preset=preset, formula_column=formula, working_ion=working_ion,
                                         structure=structure, process_columns=table_columns or None,
                                         cache_dir=cache_dir)
    else:
        featured, info = featurize_table(table, formula_column=None, process_columns=table_columns)
    used_structure = bool((info["family"] == "structure").any())
    if prune_threshold is not None:
        info = prune_info(featured, info, threshold=prune_threshold)
        protected = info["feature"].isin(named)
        info.loc[protected, "kept"], info.loc[protected, "drop_reason"] = True, ""
    else:
        info = info.assign(kept=True, drop_reason="")
    excluded = info["feature"].isin(exclude)
    info.loc[excluded, "kept"], info.loc[excluded, "drop_reason"] = False, "excluded"
    kept = info.loc[info["kept"], "feature"].tolist()
    recipe = FeatureRecipe(kept, formula_column=formula, preset=preset, working_ion=working_ion,
                           structure=used_structure, process_columns=[c for c in table_columns if c in kept])
    split = "chemical_system" if formula else (f"group:{group_column}" if group_column else "random")
    fs = FeatureSet(featured, info, None, None, recipe, split=split, group_column=group_column,
                    formula_column=formula, notes=notes, units=units)
    if target:
        fs = fs.with_target(target, log=bool(log_target))
    return fs


def is_feature_set(path: Path) -> bool:
    """Whether ``path`` is a feature set written by step 02 (``featureset.json``, or a table with its info CSV)."""
    folder = path if path.is_dir() else path.parent
    return (folder / "featureset.json").is_file() or (path.is_file() and (
        path.with_name(path.stem + "_info.csv").is_file() or path.with_name("feature_info.csv").is_file()))


def open_features(path: str | Path, *, target: str | None = None, formula_column: str | None = None,
                  group_column: str | None = None, **options: Any) -> FeatureSet:
    """A :class:`FeatureSet` from whatever file or folder a user gives: a saved feature set, a curated set
    (featurized here), or any table file (curated, then featurized here: rows without a usable target are
    quarantined, and the notes say so).

    ``target`` (when given) becomes the modelled target; ``options`` go to :func:`featurize` (``columns``,
    ``exclude``, ``preset``...) and are ignored for a saved feature set (whose features :func:`tune` selects).
    """
    from battlab.curate import curate as curate_table

    path = Path(path)
    if is_feature_set(path):
        fs = FeatureSet.load(path)
        if target and target != fs.model_target:
            log = target == fs.target and fs.model_target != fs.target and fs.model_target is not None
            fs = fs.with_target(target, log=log)
        return fs
    folder = path if path.is_dir() else path.parent
    if (folder / "report.json").is_file() and (path.is_dir() or path.name == "curated.parquet"):
        curated = CuratedSet.load(folder)
    else:
        if not path.is_file():
            raise BattlabError(f"{path}: no such file")
        curated = curate_table(path, target=target, formula_column=formula_column,
                               group_by=[group_column] if group_column else ())
    return featurize(curated, target=target, group_column=group_column, **options)


def read_data(path: str | Path) -> FeatureSet | pd.DataFrame:
    """What to predict or explain on: a saved feature set as such, any other table file as a raw table
    (a tuned model featurizes it with its recipe)."""
    from battlab.tables import load_table

    path = Path(path)
    if is_feature_set(path):
        return FeatureSet.load(path)
    if path.is_dir() and (path / "curated.parquet").is_file():
        path = path / "curated.parquet"
    return load_table(path)


def predict(model: TunedModel | str | Path, data: pd.DataFrame | FeatureSet | str | Path) -> pd.DataFrame:
    """Predictions of a tuned model (a :class:`TunedModel` or its folder) for a table (a DataFrame, a feature set
    or a table file), one row per input row: the input's columns, ``prediction`` (of the modelled target), the
    interval ``low``/``high``, the target in its own units when the model predicts its log10
    (``predicted <target>``), and ``error``: why a row could not be predicted ('' when it was; such rows are kept,
    with NaN predictions).

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> raw = pd.DataFrame({"gap": rng.uniform(50, 200, 60), "solids": rng.uniform(0.5, 0.7, 60)})
    >>> raw["spread"] = 0.001 * raw["gap"] + rng.normal(scale=0.01, size=60)
    >>> tuned = tune(featurize(curate(raw, target="spread")), models=("ridge",), n_trials=2,
    ...              storage="sqlite:///:memory:", progress=False)
    >>> out = predict(tuned, pd.DataFrame({"gap": [100.0, None], "solids": [0.6, 0.6]}))
    >>> list(out.columns), bool(out["error"].iloc[0] == "")
    (['gap', 'solids', 'prediction', 'low', 'high', 'error'], True)
    """
    tuned = model if isinstance(model, TunedModel) else TunedModel.load(model)
    table = read_data(data) if isinstance(data, (str, Path)) else data
    found = tuned.predict_interval(table)
    shown = table.table if isinstance(table, FeatureSet) else table
    keep = [c for c in shown.columns if c not in tuned.features and c not in found.columns][:20] \
        if isinstance(table, FeatureSet) else list(shown.columns)
    out = pd.concat([shown[keep].reset_index(drop=True), found.reset_index(drop=True)], axis=1)
    if tuned.model_target and tuned.target and tuned.model_target != tuned.target and \
            tuned.model_target.startswith("log10"):
        with np.errstate(over="ignore"):
            out.insert(out.columns.get_loc("error"), f"predicted {tuned.target}", 10 ** out["prediction"])
    return out


# ============================================================================ tune

@dataclass
class TunedModel:
    """The artefact of the tune step: the refitted best model, how to featurize its inputs, and its evaluation.

    :meth:`predict` and :meth:`predict_interval` take a raw table (formulas, process parameters...) and
    featurize it with :attr:`recipe`, exactly as the training table was featurized.

    Attributes
    ----------
    model, intervals
        The fitted scikit-learn pipeline and its CV+ conformal intervals (MAPIE; None when skipped).
    recipe : FeatureRecipe
        The model's features and how a raw table becomes them.
    info : DataFrame
        ``feature``, ``family``, ``property``, ``unit`` of each feature (SHAP grouping).
    target, model_target : str
        The target as measured and as modelled (predictions are of ``model_target``).
    target_unit : str
        The measured target's unit (``""`` when unknown); a log10 model predicts the log10 of it.
    best_name, best_params, split, metrics, coverage, folds, comparison, predictions, card
        What :func:`battlab.tune.tune` found: model family and parameters, the split's description,
        cross-validated metrics, interval coverage on held-out rows, per-fold scores, the comparison of
        model families, out-of-fold predictions, and the model card (a record for people).
    study
        The optuna study (not saved; None after :meth:`load`).
    """

    model: Any
    intervals: Any
    recipe: FeatureRecipe
    info: pd.DataFrame
    target: str
    model_target: str
    best_name: str
    best_params: dict[str, Any]
    split: str
    metrics: dict[str, float]
    coverage: dict[str, float]
    folds: pd.DataFrame
    comparison: pd.DataFrame
    predictions: pd.DataFrame
    card: dict[str, Any]
    study: Any = field(default=None, repr=False)
    target_unit: str = ""

    def __repr__(self) -> str:
        m = self.metrics
        mae = f"CV MAE {m['mae_mean']:.4g} ± {m.get('mae_std', float('nan')):.2g}" if "mae_mean" in m else "no metrics"
        cover = self.coverage.get("empirical") if isinstance(self.coverage, dict) else None
        intervals = f"; {self.coverage.get('target', 0):.0%} intervals cover {cover:.0%} held out" \
            if cover is not None and cover == cover else ""
        return (f"TunedModel({self.best_name} on {self.model_target}, {len(self.recipe.features)} features; "
                f"{mae} ({self.split}){intervals})")

    @property
    def features(self) -> list[str]:
        return list(self.recipe.features)

    # ------------------------------------------------------------------ predictions
    def features_for(self, data: pd.DataFrame | FeatureSet) -> tuple[pd.DataFrame, list[str]]:
        """The model's input matrix for ``data`` and one error per row ('' when featurized).

        A :class:`FeatureSet` gives its feature columns as computed (the same values the recipe gives);
        a DataFrame is featurized with :attr:`recipe`.
        """
        if isinstance(data, FeatureSet):
            missing = [f for f in self.features if f not in data.table.columns]
            if missing:
                raise BattlabError(f"the feature set lacks the model's features {missing[:5]}")
            errors = (data.table["featurize_error"].fillna("").astype(str).tolist() if "featurize_error" in
                      data.table else [""] * len(data.table))
            return data.table[self.features].apply(pd.to_numeric, errors="coerce").astype(float), errors
        if not isinstance(data, pd.DataFrame):
            raise BattlabError(f"predict takes a table (DataFrame) or a FeatureSet, not {type(data).__name__}")
        return self.recipe.transform(data)

    def predict(self, data: pd.DataFrame | FeatureSet) -> pd.DataFrame:
        """``prediction`` (of :attr:`model_target`) and ``error`` for every row of ``data`` (its index);
        a row that cannot be featurized gets NaN and its reason."""
        X, errors = self.features_for(data)
        ok = np.array([not e for e in errors], dtype=bool)
        pred = np.full(len(X), np.nan)
        if ok.any():
            pred[ok] = self.model.predict(X.loc[ok].to_numpy(dtype=float))
        return pd.DataFrame({"prediction": pred, "error": errors}, index=X.index)

    def predict_interval(self, data: pd.DataFrame | FeatureSet) -> pd.DataFrame:
        """:meth:`predict` with the conformal interval (``low``, ``high``; NaN without saved intervals)."""
        X, errors = self.features_for(data)
        ok = np.array([not e for e in errors], dtype=bool)
        pred, low, high = (np.full(len(X), np.nan) for _ in range(3))
        if ok.any():
            values = X.loc[ok].to_numpy(dtype=float)
            pred[ok] = self.model.predict(values)
            if self.intervals is not None:
                _, bounds = self.intervals.predict_interval(values)
                low[ok], high[ok] = bounds[:, 0, 0], bounds[:, 1, 0]
        return pd.DataFrame({"prediction": pred, "low": low, "high": high, "error": errors}, index=X.index)

    # ------------------------------------------------------------------ files
    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``model.joblib``, ``intervals.joblib``, ``folds.csv``, ``comparison.csv``, ``predictions.csv``,
        ``feature_info.csv`` and ``model_card.json`` (the card records the format version and the recipe)."""
        import joblib

        from battlab.tune import write_card

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / k for k in ("model.joblib", "intervals.joblib", "folds.csv", "comparison.csv",
                                      "predictions.csv", "feature_info.csv", "model_card.json")}
        joblib.dump(self.model, paths["model.joblib"])
        joblib.dump(self.intervals, paths["intervals.joblib"])
        self.folds.to_csv(paths["folds.csv"], index=False)
        self.comparison.to_csv(paths["comparison.csv"], index=False)
        self.predictions.to_csv(paths["predictions.csv"], index=False)
        self.info.to_csv(paths["feature_info.csv"], index=False)
        card = {**artefact_header("TunedModel"), **self.card, "recipe": self.recipe.to_dict(),
                "target": {"measured": self.target, "modelled": self.model_target, "unit": self.target_unit}}
        write_card(paths["model_card.json"], card)
        return paths

    @classmethod
    def load(cls, path: str | Path) -> TunedModel:
        """The tuned model in folder ``path`` (or the folder of its ``model.joblib``). **Loading unpickles
        the model (runs code): load only folders you trust**, such as your own tuning runs.

        A folder written before the step layer (``battlab.tune.TuneResult.save``) loads too: its recipe is
        inferred from the feature names of its model card.
        """
        import joblib

        path = Path(path)
        folder = path.parent if path.is_file() else path
        card_path, model_path = folder / "model_card.json", folder / "model.joblib"
        for p in (card_path, model_path):
            if not p.is_file():
                raise BattlabError(f"{folder}: no {p.name} (a folder written by `battlab tune` or "
                                   "TunedModel.save is needed)")
        card = json.loads(card_path.read_text())
        version = check_artefact(card, "TunedModel", card_path)
        names = list(card["features"]["names"])
        if version == 0:
            recipe = FeatureRecipe.infer(names)
            target = model_target = card.get("data", {}).get("target", "")
        else:
            recipe = FeatureRecipe.from_dict(card["recipe"])
            target, model_target = card["target"]["measured"], card["target"]["modelled"]
        unit = str(card.get("target", {}).get("unit", "")) if isinstance(card.get("target"), dict) else ""
        info_path = folder / "feature_info.csv"
        info = pd.read_csv(info_path, keep_default_na=False) if info_path.is_file() else recipe.info()
        intervals_path = folder / "intervals.joblib"

        def csv(name: str) -> pd.DataFrame:
            p = folder / name
            return pd.read_csv(p) if p.is_file() else pd.DataFrame()

        return cls(model=joblib.load(model_path),
                   intervals=joblib.load(intervals_path) if intervals_path.is_file() else None,
                   recipe=recipe, info=info, target=target, model_target=model_target,
                   best_name=card.get("model", {}).get("name", "?"),
                   best_params=dict(card.get("model", {}).get("params", {})),
                   split=card.get("split", {}).get("description", "unknown split"),
                   metrics={k: v for k, v in card.get("metrics", {}).items() if k != "split"},
                   coverage={k: v for k, v in card.get("intervals", {}).items()
                             if k not in ("method", "calibration")},
                   folds=csv("folds.csv"), comparison=csv("comparison.csv"), predictions=csv("predictions.csv"),
                   card={k: v for k, v in card.items() if k not in ("artefact", "format_version", "recipe",
                                                                    "target")},
                   target_unit=unit)


def tune(
    features: FeatureSet,
    *,
    target: str | None = None,
    columns: list[str] | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    split: str | Splitter | None = None,
    models: tuple[str, ...] | list[str] | None = None,
    n_trials: int = 30,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    out_dir: str | Path | None = None,
    coverage: float = 0.9,
    intervals: bool = True,
    seed: int = 0,
    progress: bool = True,
    callbacks: list | None = None,
    heartbeat: float | None = 30.0,
) -> TunedModel:
    """The tune step: a :class:`FeatureSet` in, a :class:`TunedModel` out (:func:`battlab.tune.tune` does
    the search).

    Parameters
    ----------
    target
        Column to learn (default: the feature set's modelled target).
    columns, exclude
        A subset of the feature set's features (default: all of them), or features to leave out.
    split
        A splitter, or a spec for :func:`battlab.split.splitter_from_spec`: ``chemical_system``,
        ``random[:K]``, ``group:COLUMN[:K]``, ``official:COLUMN[:TRAIN[:TEST]]``, ``family``, ``cluster``,
        ``matbench`` (default: the feature set's).
    **kwargs
        The other parameters are :func:`battlab.tune.tune`'s.
    """
    from battlab.tune import tune as run_study
    from battlab.units import unit_text

    model_target = target or features.model_target
    if not model_target:
        raise BattlabError("no target: the feature set has none; name the column to learn (--target)")
    names = [str(c) for c in columns] if columns else features.features
    names = [n for n in names if n not in set(exclude)]
    unknown = [c for c in exclude if c not in features.features and c not in features.table.columns]
    if unknown:
        raise BattlabError(f"exclude: no column {unknown[0]!r} in the table")
    if not names:
        raise BattlabError("no features left to tune on")
    recipe = features.recipe.select(names)
    spec = split if split is not None else features.split
    splitter = spec if isinstance(spec, Splitter) else splitter_from_spec(
        spec, formula_column=features.formula_column, seed=seed)
    result = run_study(features.table, names, model_target, split=splitter, models=models, n_trials=n_trials,
                       timeout=timeout, storage=storage, study_name=study_name, out_dir=out_dir,
                       coverage=coverage, intervals=intervals, seed=seed, progress=progress, callbacks=callbacks,
                       heartbeat=heartbeat)
    info = features.info.set_index("feature").reindex(names)
    info = pd.DataFrame({"feature": names, "family": info["family"].fillna("other").to_numpy(),
                         "property": info["property"].fillna(pd.Series(names, index=info.index)).to_numpy(),
                         "unit": info["unit"].fillna("").to_numpy() if "unit" in info else ""})
    measured = features.target if model_target == features.model_target and features.target else model_target
    result.card["split"]["spec"] = spec if isinstance(spec, str) else spec.describe()
    return TunedModel(model=result.model, intervals=result.intervals, recipe=recipe, info=info, target=measured,
                      model_target=model_target, best_name=result.best_name, best_params=result.best_params,
                      split=result.split, metrics=result.metrics, coverage=result.coverage, folds=result.folds,
                      comparison=result.comparison, predictions=result.predictions, card=result.card,
                      study=result.study,
                      target_unit=unit_text(features.units.get(measured, "")))


# ============================================================================ explain

def explain(
    tuned: TunedModel,
    data: FeatureSet | pd.DataFrame,
    *,
    max_rows: int | None = None,
    interaction_rows: int = 0,
    max_seconds: float | None = None,
    background: int = 10,
    n_permutations: int = 1,
    seed: int = 0,
) -> Explanation:
    """The explain step: SHAP values of a :class:`TunedModel` on the rows of a feature set or of any raw
    table (featurized with the model's recipe). Rows that cannot be featurized are left out and counted in
    the explanation's notes. Parameters: :func:`battlab.explain.explain`'s."""
    from battlab.explain import explain as shap_values

    X, errors = tuned.features_for(data)
    table = data.table if isinstance(data, FeatureSet) else data
    ok = np.array([not e for e in errors], dtype=bool)
    labels = None
    col = tuned.recipe.formula_column
    if col and col in table:
        labels = table.loc[ok, col].astype(str).tolist()
    ex = shap_values(tuned.model, X.loc[ok], info=tuned.info, target=tuned.model_target, labels=labels,
                     max_rows=max_rows, interaction_rows=interaction_rows, max_seconds=max_seconds,
                     background=background, n_permutations=n_permutations, seed=seed, model_name=tuned.best_name)
    if not ok.all():
        ex.notes.insert(0, f"{int((~ok).sum())} of {len(ok)} rows could not be featurized and are not explained")
    return ex
