"""Curation: a researcher's messy table in, a clean table out, and every row accounted for.

Each input row ends in exactly one of three places:

* **kept** - in ``result.curated``, possibly with ``flags`` (rare element, outlier, replicate
  disagreement, a bad non-target cell set to NaN);
* **merged** - an exact duplicate or a replicate measurement folded into another row
  (``result.merged`` says which one);
* **quarantined** - in ``result.quarantine`` with the reason (unparseable formula, missing or
  unreadable target, wrong unit, physically impossible value, ragged row).

so that ``n_input == n_kept + n_merged + n_quarantined`` always holds (it is checked on every call).

Example
-------
>>> import pandas as pd
>>> raw = pd.DataFrame({"formula": ["LiCoO2", "LiCoO2", "LiFePO4", "Xx2O", "LiMn2O4"],
...                     "capacity (mAh/g)": ["140", "140", "0,165 Ah/g", "100", "-5"]})
>>> result = curate(raw, formula_column="formula", target="capacity (mAh/g)")
>>> {k: result.report[k] for k in ("n_input", "n_kept", "n_merged", "n_quarantined")}
{'n_input': 5, 'n_kept': 2, 'n_merged': 1, 'n_quarantined': 2}
>>> result.curated["capacity (mAh/g)"].tolist()
[140.0, 165.0]
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab import __version__
from battlab.errors import DataFileError
from battlab.formulas import parse_formula
from battlab.tables import RawTable, check_columns, dedupe_names, read_table
from battlab.units import ParsedCell, convert, parse_cell, parse_unit, split_header

#: Column names tried, in order, when no formula column is named.
FORMULA_COLUMNS = ("formula", "composition", "reduced composition", "reduced_formula",
                   "pretty_formula", "chemical formula", "compound", "material")

#: Physical bounds by keyword in a column name: (keyword, low, high, unit the bounds are in).
#: ``None`` unit means the sign alone matters, whatever the unit. Explicit ``bounds=`` win.
PHYSICAL_BOUNDS: tuple[tuple[str, float | None, float | None, str | None], ...] = (
    ("porosity", 0.0, 1.0, "dimensionless"),
    ("fraction", 0.0, 1.0, "dimensionless"),
    ("capacity", 0.0, None, None),
    ("conductivity", 0.0, None, None),
    ("density", 0.0, None, None),
    ("thickness", 0.0, None, None),
    ("loading", 0.0, None, None),
    ("cycle life", 0.0, None, None),
    ("cycle_life", 0.0, None, None),
    ("particle size", 0.0, None, None),
    ("radius", 0.0, None, None),
)

_NUMERIC_SHARE = 0.8  # a text column is numeric when this share of its filled cells parse as numbers


@dataclass
class CuratedSet:
    """The artefact of the curate step: the clean table and where every other row went.

    The next step reads the typed attributes (:attr:`target`, :attr:`formula_column`, :attr:`log_target`,
    :attr:`group_by`); ``report`` is the record for people (counts, reasons, units). :meth:`save` writes a
    folder that :meth:`load` reads back (format version checked).

    Attributes
    ----------
    curated : one row per kept material/measurement; ``row`` is the input row it came from.
    quarantine : rows set aside, with ``row``, ``category``, ``reason``, ``column``, ``value``.
    merged : rows folded into another, with ``row``, ``merged_into`` and ``kind``.
    issues : every cell-level problem, including those that did not cost the row.
    report : counts (``n_input``, ``n_kept``, ``n_merged``, ``n_quarantined``), units and settings.
    """

    curated: pd.DataFrame
    quarantine: pd.DataFrame
    merged: pd.DataFrame
    issues: pd.DataFrame
    report: dict[str, Any]
    target_input: pd.Series | None = None  #: the target as parsed from every input row, before curation

    def key_figures(self) -> dict[str, Any]:
        """The figures a pipeline summary shows for this step."""
        keys = ("source", "target", "n_input", "n_kept", "n_merged", "n_quarantined", "n_flagged", "n_censored")
        figures = {k: self.report[k] for k in keys}
        if self.report.get("demo_rows"):
            figures["n_demo_rows"] = len(self.report["demo_rows"])
        if self.report["target"] and len(self.curated):
            y = self.curated[self.report["target"]]
            figures.update(target_mean=round(float(y.mean()), 6), target_std=round(float(y.std()), 6))
        return figures

    def trace(self, rows: list[int] | None = None) -> pd.DataFrame:
        """Where each input row went: ``row``, ``outcome`` (kept / merged into row N / quarantined), ``detail``
        (the kind of merge, the quarantine reason, or the flags a kept row carries), and the ``formula`` and
        target of the curated row it ended in (empty for a quarantined row).

        ``rows`` default: the demonstration rows (``report["demo_rows"]``, then with their ``problem``), else
        every input row.

        Example
        -------
        >>> cs = curate(pd.DataFrame({"formula": ["LiCoO2", "LiCoO₂", "Xx"], "y": [1.0, "1 ", 2.0]}), target="y")
        >>> cs.trace()[["row", "outcome", "formula"]].values.tolist()
        [[1, 'kept', 'LiCoO2'], [2, 'merged into row 1', 'LiCoO2'], [3, 'quarantined', '']]
        """
        if rows is None:
            demo = self.report.get("demo_rows") or []
            rows = [d["row"] for d in demo] if demo else list(range(1, int(self.report["n_input"]) + 1))
        kept = self.curated.set_index("row") if "row" in self.curated else pd.DataFrame()
        merged = {int(m["row"]): (int(m["merged_into"]), str(m["kind"])) for m in self.merged.to_dict("records")}
        quarantined = {int(q["row"]): str(q["reason"]) for q in self.quarantine.to_dict("records")}
        formula, target = self.formula_column, self.target
        problems = {int(d["row"]): str(d["problem"]) for d in self.report.get("demo_rows") or []}
        out = []
        for row in rows:
            into = row
            while into in merged:  # a row merged into a row that was itself merged
                into = merged[into][0]
            if row in quarantined:
                outcome, detail = "quarantined", quarantined[row]
            elif row in merged:
                outcome, detail = f"merged into row {into}", merged[row][1]
            else:
                outcome, detail = "kept", ""
            record = {"row": row, "outcome": outcome, "detail": detail}
            if problems:
                record["problem"] = problems.get(row, "")
            if row not in quarantined and into in kept.index:
                if outcome == "kept":
                    record["detail"] = str(kept.at[into, "qc_flags"]) if "qc_flags" in kept else ""
                if formula:
                    record["formula"] = kept.at[into, formula]
                if target:
                    record[target] = kept.at[into, target]
            out.append(record)
        columns = ["row", *(["problem"] if problems else []), "outcome", "detail", *([formula] if formula else []),
                   *([target] if target else [])]
        return pd.DataFrame(out, columns=columns).fillna({c: "" for c in columns if c == formula})

    # ------------------------------------------------------------------ what the next step reads
    @property
    def table(self) -> pd.DataFrame:
        """The curated table (same as ``curated``)."""
        return self.curated

    @property
    def target(self) -> str | None:
        """The property column, or None (a table curated without a target)."""
        return self.report.get("target") or None

    @property
    def formula_column(self) -> str | None:
        """``"formula"`` (the normalized formulas) when the table had formulas, else None."""
        return "formula" if self.report.get("formula_column") else None

    @property
    def log_target(self) -> bool:
        """Whether the target spans decades and is modelled as log10 (curation decides)."""
        return bool(self.report.get("log_target"))

    @property
    def group_by(self) -> list[str]:
        """Columns that, with the formula, identify a material (an official split column among them)."""
        return list(self.report.get("group_by", []))

    @property
    def source(self) -> str:
        return str(self.report.get("source", ""))

    # ------------------------------------------------------------------ files
    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``curated.parquet``, ``quarantine.csv``, ``merged.csv``, ``issues.csv``, ``report.json``.

        Example
        -------
        >>> import tempfile
        >>> cs = curate(pd.DataFrame({"formula": ["LiCoO2", "Xx"], "y": [1.0, 2.0]}), target="y")
        >>> back = CuratedSet.load(cs.save(tempfile.mkdtemp())["curated.parquet"])
        >>> back.target, back.formula_column, len(back.table), len(back.quarantine)
        ('y', 'formula', 1, 1)
        """
        from battlab.steps import artefact_header

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / name for name in
                 ("curated.parquet", "quarantine.csv", "merged.csv", "issues.csv", "report.json")}
        self.curated.to_parquet(paths["curated.parquet"], index=False)
        self.quarantine.to_csv(paths["quarantine.csv"], index=False)
        self.merged.to_csv(paths["merged.csv"], index=False)
        self.issues.to_csv(paths["issues.csv"], index=False)
        paths["report.json"].write_text(json.dumps({**artefact_header("CuratedSet"), **self.report}, indent=2,
                                                   default=str))
        return paths

    @classmethod
    def load(cls, path: str | Path) -> CuratedSet:
        """The curated set saved in folder ``path`` (or the folder of its ``curated.parquet``)."""
        from battlab.steps import check_artefact

        folder = Path(path)
        folder = folder.parent if folder.is_file() else folder
        report_path = folder / "report.json"
        if not report_path.is_file():
            raise DataFileError(f"{folder}: no report.json (a folder written by `battlab curate` or "
                                "CuratedSet.save is needed)")
        report = json.loads(report_path.read_text())
        check_artefact(report, "CuratedSet", report_path)
        report = {k: v for k, v in report.items() if k not in ("artefact", "format_version")}

        def csv(name: str) -> pd.DataFrame:
            p = folder / name
            return pd.read_csv(p, keep_default_na=False) if p.is_file() and p.stat().st_size else pd.DataFrame()

        return cls(pd.read_parquet(folder / "curated.parquet"), csv("quarantine.csv"), csv("merged.csv"),
                   csv("issues.csv"), report)

    def summary(self) -> str:
        """One line: where the rows went."""
        r = self.report
        return (f"{r['source']}: {r['n_input']} rows -> {r['n_kept']} kept, {r['n_merged']} merged, "
                f"{r['n_quarantined']} quarantined, {r['n_flagged']} kept with flags")

    def __repr__(self) -> str:
        return f"CuratedSet({self.summary()})"

    def _repr_html_(self) -> str:
        reasons = "".join(f"<li>{k}: {v}</li>" for k, v in self.report["quarantine_reasons"].items())
        return f"<p><b>{self.summary()}</b></p><ul>{reasons}</ul>"


def _mean(values: np.ndarray) -> float:
    """Mean of the finite values without overflow (each divided by their count before summing; NaN if none).

    >>> _mean(np.array([8.98e307, 8.98e307, np.nan]))
    8.98e+307
    """
    v = values[np.isfinite(values)]
    return float(np.sum(v / len(v))) if len(v) else float("nan")


def find_formula_column(columns: list[str]) -> str | None:
    """The first column whose name (case-insensitive) is a usual name for a formula."""
    lower: dict[str, str] = {}
    for c in columns:  # the first of "formula" and "Formula" wins
        lower.setdefault(str(c).strip().lower(), c)
    return next((lower[name] for name in FORMULA_COLUMNS if name in lower), None)


class _Ledger:
    """Collects quarantined rows, merges and cell issues; a row is quarantined at most once."""

    def __init__(self, source: str):
        self.source = source
        self.quarantined: dict[int, dict[str, Any]] = {}
        self.merged: list[dict[str, Any]] = []
        self.issues: list[dict[str, Any]] = []

    def issue(self, row: int, column: str, value: Any, problem: str, action: str) -> None:
        self.issues.append({"row": row, "column": column, "value": value, "problem": problem,
                            "action": action})

    def quarantine(self, row: int, category: str, reason: str, column: str = "", value: Any = "") -> None:
        if row not in self.quarantined:
            where = f"{self.source}, row {row}" + (f", column {column!r}" if column else "")
            self.quarantined[row] = {"row": row, "category": category, "reason": f"{where}: {reason}",
                                     "column": column, "value": value}
            self.issue(row, column, value, reason, "row quarantined")


def _decode_bytes(df: pd.DataFrame) -> pd.DataFrame:
    """Bytes cells (parquet binary columns, DataFrames built by hand) as text; undecodable bytes escaped."""
    cols = [c for c in df.columns if df[c].dtype == object and df[c].map(type).eq(bytes).any()]
    if not cols:
        return df
    df = df.copy()
    for c in cols:
        df[c] = df[c].map(lambda v: v.decode("utf-8", errors="backslashreplace") if isinstance(v, bytes) else v)
    return df


def _free_output_names(df: pd.DataFrame, formula_column: str | None, target: str | None,
                       group_by: list[str] | tuple[str, ...], notes: list[str]) -> tuple[dict[str, str], list[str]]:
    """Renames of input columns whose names curation writes itself (``row``, ``qc_flags``, ``formula``,
    ``<target>_std``, ``<column>_censored``...), so no input column is overwritten or clashes; and the
    numeric columns (before renaming), found once here for both uses."""
    skip = {formula_column, *group_by}
    numeric = [c for c in df.columns if c == target or (c not in skip and _is_numeric_column(df[c]))]
    taken = {"row", "qc_flags", "formula_raw", *(f"{c}_censored" for c in numeric)}
    if formula_column:
        taken.add("formula")
    if target:
        taken |= {f"{target}_std", f"{target}_std_log10", f"{target}_n"}
    renames: dict[str, str] = {}
    names = set(map(str, df.columns))
    for col in df.columns:
        if col in taken and not (col == "formula" and col == formula_column):
            new = f"{col} (input)"
            while new in names or new in taken:
                new += "'"
            names.add(new)
            renames[col] = new
            notes.append(f"input column {col!r} renamed to {new!r}: curation writes a column of that name")
    return renames, numeric


def _is_numeric_column(series: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return True
    parsed = [parse_cell(v) for v in series.dropna().unique()[:500]]
    filled = [p for p in parsed if not p.missing]
    return bool(filled) and sum(not p.error for p in filled) >= _NUMERIC_SHARE * len(filled)


def _column_unit(name: str, cells: list[ParsedCell], units: dict[str, str]) -> str:
    if name in units:
        return str(parse_unit(units[name])) if units[name] else ""
    header_unit = split_header(name)[1]
    if header_unit:
        return header_unit
    written = Counter(c.unit for c in cells if c.unit)
    return written.most_common(1)[0][0] if written else ""


def _parse_numeric(df: pd.DataFrame, col: str, units: dict[str, str], ledger: _Ledger,
                   is_target: bool) -> tuple[pd.Series, pd.Series, str, list[int]]:
    """Values (in the column's unit), censoring flags and bad rows of one column; records every bad cell."""
    cache = {v: parse_cell(v) for v in pd.unique(df[col])}
    bad: list[int] = []
    unit = _column_unit(col, list(cache.values()), units)
    values = np.full(len(df), np.nan)
    censored = np.full(len(df), "", dtype=object)
    for i, (row, raw) in enumerate(zip(df.index, df[col], strict=False)):
        cell = cache.get(raw) or parse_cell(raw)  # NaN keys do not find themselves
        error = cell.error
        value = cell.value
        if not error and cell.unit and unit and cell.unit != unit:
            try:
                value = convert(value, cell.unit, unit)
            except ValueError as exc:
                error = f"wrong unit: {exc}"
        if error:
            category = "wrong_unit" if error.startswith("wrong unit") else (
                "non_finite" if error.startswith("non-finite") else "bad_number")
            if is_target:
                ledger.quarantine(row, category, error, col, raw)
            else:
                ledger.issue(row, col, raw, error, "set to NaN")
                bad.append(row)
            continue
        if cell.missing and is_target:
            ledger.quarantine(row, "missing_target", "missing target value", col, raw)
        values[i] = value
        censored[i] = cell.censored
    return pd.Series(values, index=df.index), pd.Series(censored, index=df.index), unit, bad


def _bounds_for(col: str, bounds: dict[str, tuple[float | None, float | None]]):
    if col in bounds:
        lo, hi = bounds[col]
        return lo, hi, None
    name = split_header(col)[0].lower()
    for keyword, lo, hi, unit in PHYSICAL_BOUNDS:
        if keyword in name:
            return lo, hi, unit
    return None


def _check_bounds(values: pd.Series, col: str, unit: str, spec, ledger: _Ledger, raw: pd.Series) -> None:
    lo, hi, bound_unit = spec
    scale = 1.0
    if bound_unit is not None:
        try:
            scale = convert(1.0, unit or "dimensionless", bound_unit)
        except ValueError:
            return  # the bound is about another quantity than this column holds
    for row, value in values.items():
        if math.isnan(value) or row in ledger.quarantined:
            continue
        v = value * scale
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            shown = f"{value:g} {unit}".strip()
            reason = (f"physically impossible: {shown} outside [{'-inf' if lo is None else f'{lo:g}'}, "
                      f"{'inf' if hi is None else f'{hi:g}'}]" + (f" {bound_unit}" if bound_unit else ""))
            if (lo, hi) == (0.0, 1.0) and 1 < v <= 100:
                reason += " (a percentage? write '45 %' or 0.45)"
            ledger.quarantine(row, "out_of_bounds", reason, col, raw[row])


def _flag_kind(flag: str) -> str:
    """'bad_value:porosity' -> 'bad_value'; 'rare element ...: Po (did you mean ...)' -> 'rare element ...'."""
    return flag.split(" (")[0].split(":")[0]


def _robust_z(values: np.ndarray) -> np.ndarray:
    med = np.nanmedian(values)
    mad = np.nanmedian(np.abs(values - med)) * 1.4826
    if not np.isfinite(mad) or mad == 0:
        return np.zeros_like(values)
    return (values - med) / mad


def curate(
    data: pd.DataFrame | RawTable | str | Path,
    *,
    formula_column: str | None = None,
    target: str | None = None,
    units: dict[str, str] | None = None,
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
    group_by: list[str] | tuple[str, ...] = (),
    log_target: bool | None = None,
    replicate_tolerance: float = 0.1,
    outlier_z: float = 5.0,
    source: str | None = None,
) -> CuratedSet:
    """Curate a table: normalize formulas, parse numbers and units, merge replicates, quarantine the rest.

    Parameters
    ----------
    data
        A DataFrame, a path to a table file (CSV/TSV/Excel/parquet) or a :class:`RawTable`.
    formula_column
        Column of chemical formulas; found by name (``formula``, ``composition``, ...) when omitted.
        ``None`` and none found: the table has no formulas (e.g. process data).
    target
        The property column to model. Rows without a usable target are quarantined.
    units
        Unit of a column when neither its header (``"Capacity (mAh/g)"``) nor the data card says it.
        Values with other units in their cells are converted; incompatible units are rejected.
    bounds
        ``{column: (low, high)}`` physical bounds, in the column's unit; defaults by column name
        (porosity and fractions in [0, 1], capacities, conductivities, thicknesses >= 0).
    group_by
        Extra columns that, with the formula, identify one material (e.g. a split or temperature);
        rows sharing them are replicates.
    log_target
        Aggregate and compare replicates in log10 space (conductivities). ``None``: when the target is
        positive and spans more than three decades.
    replicate_tolerance
        Replicates whose spread (max - min) exceeds this fraction of their mean (in log10 space: this
        many decades x 10) are flagged ``replicate_disagreement``.
    outlier_z
        Robust z-score (median/MAD) above which a target value is flagged ``outlier`` (not removed).
    source
        Name used in messages; the file name by default.
    """
    units = dict(units or {})
    bounds = dict(bounds or {})
    if isinstance(data, (str, Path)):
        data = read_table(data)
    if isinstance(data, RawTable):
        table = data
        source = source or (table.path.name if table.path else "table")
    else:
        frame = data.copy()
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
        notes: list[str] = []
        frame.columns = dedupe_names([str(c) for c in frame.columns], notes)  # a DataFrame may repeat a name
        table = RawTable(frame, notes=notes)
        source = source or "table"
    df = _decode_bytes(table.data)
    ledger = _Ledger(source)
    n_input = table.n_rows
    if n_input == 0:
        raise DataFileError(f"{source}: the table has a header but no data rows")
    for rej in table.rejected:
        ledger.quarantine(rej.row, "ragged_row", f"{rej.reason} (line {rej.line})", "", rej.text)

    if formula_column is None:
        formula_column = find_formula_column(list(df.columns))
    check_columns(df, [c for c in (formula_column, target, *group_by) if c], source=source,
                  delimiter=table.delimiter)
    renames, numeric = _free_output_names(df, formula_column, target, group_by, table.notes)
    numeric = [renames.get(c, c) for c in numeric]  # a rename keeps the cells, so the column stays numeric
    if renames:
        df = df.rename(columns=renames)
        formula_column, target = renames.get(formula_column, formula_column), renames.get(target, target)
        group_by = [renames.get(c, c) for c in group_by]
        units = {renames.get(k, k): v for k, v in units.items()}
        bounds = {renames.get(k, k): v for k, v in bounds.items()}
    flags: dict[int, list[str]] = {row: [] for row in df.index}
    out = df.copy()

    if formula_column:
        parsed = {v: parse_formula(v) for v in pd.unique(df[formula_column])}
        formulas = []
        for row, raw in df[formula_column].items():
            p = parsed.get(raw) or parse_formula(raw)  # NaN keys do not find themselves
            if p.error:
                ledger.quarantine(row, "formula", p.error, formula_column, raw)
            for w in p.warnings:
                flags[row].append(w)
                ledger.issue(row, formula_column, raw, w, "flagged")
            formulas.append(p.formula)
        if formula_column == "formula":
            out = out.rename(columns={"formula": "formula_raw"})
        out.insert(0, "formula", formulas)

    column_units: dict[str, str] = {}
    target_input = None
    for col in numeric:
        values, censored, unit, bad = _parse_numeric(df, col, units, ledger, is_target=(col == target))
        column_units[col] = unit
        for row in bad:
            flags[row].append(f"bad_value:{col}")
        out[col] = values
        if col == target:
            target_input = values.copy()
        if (censored != "").any() or col == target:
            out[f"{col}_censored"] = censored
        spec = _bounds_for(col, bounds)
        if spec:
            _check_bounds(values, col, unit, spec, ledger, df[col])

    alive = [r for r in df.index if r not in ledger.quarantined]
    out = out.loc[alive]

    # Exact duplicates: identical text in every cell.
    text = df.loc[alive].astype(str).apply(lambda s: s.str.strip())
    dup = text.duplicated(keep="first")
    if dup.any():
        first = {}
        for row, key in zip(text.index, map(tuple, text.itertuples(index=False)), strict=False):
            first.setdefault(key, row)
            if first[key] != row:
                ledger.merged.append({"row": row, "merged_into": first[key], "kind": "exact duplicate"})
        out = out.loc[~dup.values]

    # Replicates: same material (formula + group_by), same censoring -> one row with mean/std/count.
    n_groups = n_disagree = 0
    if target and formula_column and len(out):
        y = out[target].to_numpy(dtype=float)
        if log_target is None:
            pos = y[np.isfinite(y)]
            log_target = bool(len(pos) and (pos > 0).all() and pos.max() / pos.min() > 1e3)
        yt = np.log10(np.where(y > 0, y, np.nan)) if log_target else y
        work = out.assign(_y=yt)
        keys = ["formula", *group_by, f"{target}_censored"]
        agg_mean, agg_std, agg_count, keep = {}, {}, {}, []
        for _, grp in work.groupby(keys, sort=False, dropna=False):
            rows = list(grp.index)
            keep.append(rows[0])
            vals = grp["_y"].to_numpy()
            if len(rows) > 1:
                n_groups += 1
                for r in rows[1:]:
                    ledger.merged.append({"row": r, "merged_into": rows[0], "kind": "replicate"})
                cens = grp[f"{target}_censored"].iloc[0]
                m = np.nanmin(vals) if cens == "<" else np.nanmax(vals) if cens == ">" else _mean(vals)
                with np.errstate(over="ignore"):  # values near the float limit: an infinite spread disagrees
                    spread = np.nanmax(vals) - np.nanmin(vals)
                limit = replicate_tolerance * 10 if log_target else replicate_tolerance * abs(m)
                if spread > limit:
                    n_disagree += 1
                    flags[rows[0]].append("replicate_disagreement")
            else:
                m = vals[0]
            agg_mean[rows[0]] = m
            agg_std[rows[0]] = float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else np.nan
            agg_count[rows[0]] = len(rows)
        out = out.loc[keep]
        mean = pd.Series(agg_mean)
        out[target] = 10 ** mean if log_target else mean
        out[f"{target}_std" + ("_log10" if log_target else "")] = pd.Series(agg_std)
        out[f"{target}_n"] = pd.Series(agg_count)
        z = _robust_z(np.log10(out[target].to_numpy()) if log_target else out[target].to_numpy())
        for row in out.index[np.abs(z) > outlier_z]:
            flags[row].append("outlier")

    out.insert(0, "row", out.index.to_numpy())
    out["qc_flags"] = ["; ".join(flags[r]) for r in out.index]
    out = out.reset_index(drop=True)

    quarantine = pd.DataFrame(sorted(ledger.quarantined.values(), key=lambda d: d["row"]),
                              columns=["row", "category", "reason", "column", "value"])
    if len(quarantine):
        originals = df.reindex(quarantine["row"]).reset_index(drop=True).add_prefix("input:")
        quarantine = pd.concat([quarantine, originals], axis=1)
    merged = pd.DataFrame(ledger.merged, columns=["row", "merged_into", "kind"])
    issues = pd.DataFrame(ledger.issues, columns=["row", "column", "value", "problem", "action"])
    for frame in (quarantine, issues):
        frame["value"] = frame["value"].astype(str)

    report = {
        "source": source,
        "n_input": n_input,
        "n_kept": len(out),
        "n_merged": len(merged),
        "n_quarantined": len(quarantine),
        "n_flagged": int((out["qc_flags"] != "").sum()),
        "quarantine_reasons": dict(Counter(quarantine["category"])),
        "qc_flags": dict(Counter(_flag_kind(f) for fl in out["qc_flags"] for f in fl.split("; ") if f)),
        "n_replicate_groups": n_groups,
        "n_replicate_disagreements": n_disagree,
        "n_censored": int((out[f"{target}_censored"] != "").sum()) if target else 0,
        "formula_column": formula_column,
        "target": target,
        "group_by": list(group_by),
        "log_target": bool(log_target) if target else None,
        "units": column_units,
        "notes": table.notes,
        "battlab_version": __version__,
    }
    if report["n_input"] != report["n_kept"] + report["n_merged"] + report["n_quarantined"]:
        raise AssertionError(f"curation lost rows: {report}")  # a bug in battlab, never the user's fault
    return CuratedSet(out, quarantine, merged, issues, report, target_input)


#: Compounds :func:`example_messy_rows` writes messy copies of, when the table has them (else its first rows).
_DEMO_SOURCES = ("Li2O", "Li2SO4", "TiO2", "MgO", "Fe2O3")


def _other_unit(value: float, unit: str) -> str:
    """``value`` (in ``unit``) written in a unit a thousand times smaller or larger: ``-2.0656`` eV/atom ->
    ``"−2065.6 meV/atom"``, 140 mAh/g -> ``"0.14 Ah/g"``; ``""`` when no such unit parses.

    >>> _other_unit(-2.0656, "eV/atom"), _other_unit(140.0, "mAh/g"), _other_unit(1.0, "")
    ('−2065.6 meV/atom', '0.14 Ah/g', '')
    """
    for other in ((unit[1:],) if unit.startswith("m") else ()) + ("m" + unit,):
        if not unit or not other[:1].isalpha():
            continue
        try:
            converted = convert(value, unit, other)
        except ValueError:
            continue
        return f"{converted:.12g} {other}".replace("-", "−")
    return ""


def example_messy_rows(table: pd.DataFrame, formula_column: str, target: str, unit: str = "") -> pd.DataFrame:
    """A handful of messy rows, as lab tables have them, written from real rows of ``table``: for demonstrations.

    Every row is a copy of a row of ``table`` (same compound, same measured value) with one typical problem,
    so that curation's fixes and its quarantine can be seen on a clean table without inventing a measurement:

    ===========================  ===================================================  ==============================
    problem                      cell as written                                      what curation does
    ===========================  ===================================================  ==============================
    value with its unit          ``−2065.6 meV/atom`` (a typographic minus too)       converts; merges as replicate
    decimal comma, subscripts    ``Li₂SO₄``, ``-2,11``                                reads; merges as replicate
    exact duplicate              the same row twice                                   merges (exact duplicate)
    replicates that disagree     two more values, ±0.5 around the row's own           merges, flags the disagreement
    annotated formula            ``Fe2O3 (hematite)``                                 quarantines (formula)
    fraction formula, no value   ``LiNi1/3Mn1/3Co1/3O2`` and a blank value            reads NMC111; quarantines (target)
    blank row                    every cell empty (the last line of a spreadsheet)    quarantines
    ===========================  ===================================================  ==============================

    The disagreeing replicates sit symmetrically around the row's value, so the curated value of every compound
    is the table's own (to rounding): the demonstration changes the counts of curation, not the data that later
    steps learn from. The value-with-unit row needs ``unit`` (the target's unit, e.g. ``eV/atom``).

    Returns the rows with ``table``'s columns and a first column ``problem`` (drop it before curating; see
    :func:`curate_dataset` ``demo_rows=True``, which does).

    Example
    -------
    >>> t = pd.DataFrame({"formula": ["Li2O", "MgO"], "dH": [-2.0656, -3.1175]})
    >>> demo = example_messy_rows(t, "formula", "dH", "eV/atom")
    >>> demo.loc[0, ["formula", "dH"]].tolist(), len(demo)
    (['Li2O', '−2065.6 meV/atom'], 8)
    >>> messy = pd.concat([t, demo.drop(columns="problem")], ignore_index=True)
    >>> cs = curate(messy, target="dH", units={"dH": "eV/atom"})
    >>> cs.summary()
    'table: 10 rows -> 2 kept, 5 merged, 3 quarantined, 1 kept with flags'
    >>> cs.curated["dH"].round(6).tolist()  # the table's own values
    [-2.0656, -3.1175]
    """
    y = pd.to_numeric(table[target], errors="coerce")
    usable = table[y.notna() & table[formula_column].notna()]
    if usable.empty:
        raise DataFileError(f"example_messy_rows: no row of the table has both a formula ({formula_column!r}) "
                            f"and a number in {target!r} to copy")
    by_formula = {str(f): i for i, f in zip(usable.index, usable[formula_column], strict=True)}
    picks = [by_formula[f] for f in _DEMO_SOURCES if f in by_formula]
    picks += [i for i in usable.index if i not in picks][:len(_DEMO_SOURCES) - len(picks)]
    picks = (picks * len(_DEMO_SOURCES))[:len(_DEMO_SOURCES)]  # a table of fewer rows: reuse them
    numeric_others = [c for c in table.columns if c not in (formula_column, target)
                      and pd.api.types.is_numeric_dtype(table[c])]
    subscripts = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

    def copy(i: Any, problem: str, **cells: Any) -> dict[str, Any]:
        return {"problem": problem, **table.loc[i].to_dict(), **cells}

    rows = []
    a, b, c, d, e = picks
    written = _other_unit(float(y[a]), unit)
    if written:
        rows.append(copy(a, "value with its unit in the cell", **{target: written}))
    rows.append(copy(b, "decimal comma, subscript digits",
                     **{formula_column: str(table.at[b, formula_column]).translate(subscripts),
                        target: repr(float(y[b])).replace(".", ",")}))
    rows.append(copy(c, "exact duplicate of a row"))
    finite = y[np.isfinite(y)]
    log = bool(len(finite) and (finite > 0).all() and finite.max() / finite.min() > 1e3)  # as curate decides
    for sign in (+1, -1):
        if log:  # curation averages in log10: a factor of 10**0.75 either way (1.5 decades apart)
            value = float(y[d]) * 10.0 ** (0.75 * sign)
        else:
            value = float(y[d]) + sign * (0.5 if unit == "eV/atom" else 0.2 * abs(float(y[d])) or 1.0)
        rows.append(copy(d, "replicates that disagree (their mean is the table's value)", **{target: value},
                         **{col: np.nan for col in numeric_others}))  # a second source reporting one value
    name = str(table.at[e, formula_column])
    rows.append(copy(e, "formula with a note in the cell", **{formula_column: f"{name} (annotated)"
                                                               if name != "Fe2O3" else "Fe2O3 (hematite)"}))
    rows.append({"problem": "fraction formula (NMC111), value not measured", formula_column: "LiNi1/3Mn1/3Co1/3O2",
                 target: ""})
    rows.append({"problem": "blank row"})
    out = pd.DataFrame(rows, columns=["problem", *table.columns])
    return out.astype({c: object for c in (formula_column, target)})


def curate_dataset(name: str, *, demo_rows: bool | str = False, **settings: Any) -> tuple[CuratedSet, Any]:
    """Load a registered dataset and curate it with the settings its data card implies.

    The card gives the formula column, the target, the units, the official split and the columns
    that identify a material (both kept as ``group_by`` columns, so that replicates are never merged
    across train and test, nor polymorphs with one another). Keyword
    arguments override any of :func:`curate`'s settings.

    ``demo_rows=True`` appends :func:`example_messy_rows` to the dataset's table (after its last row), so that a
    clean dataset shows curation at work; the source reads ``NAME + N demonstration rows`` and
    ``report["demo_rows"]`` lists their row numbers and problems (:meth:`CuratedSet.trace` shows where they went).
    ``"auto"`` appends them only when the dataset alone gives curation nothing to show (no row merged or
    quarantined), as the clean default dataset does; a messy dataset (OBELiX) is curated as it is.

    Example
    -------
    >>> result, card = curate_dataset("exp_formation_enthalpy")
    >>> result.report["target"], card.units[card.target]
    ('formation_enthalpy_per_atom', 'eV/atom')
    >>> curate_dataset("exp_formation_enthalpy", demo_rows="auto")[0].summary()[:72]
    'exp_formation_enthalpy + 8 demonstration rows: 2143 rows -> 2135 kept, 5'
    """
    from battlab.datasets import load_dataset

    if demo_rows not in (True, False, "auto"):
        raise DataFileError(f"{name}: demo_rows must be True, False or 'auto', got {demo_rows!r}")
    df, card = load_dataset(name)
    units = {}
    for col, unit in card.units.items():
        try:
            parse_unit(unit)
        except ValueError:
            continue  # 'text', 'unspecified', 'eV/atom': nothing to convert
        units[col] = unit
    defaults: dict[str, Any] = {
        "formula_column": card.formula_column,
        "target": card.target,
        "units": units,
        "group_by": [c for c in (card.split_column, *card.identity_columns) if c],
        "source": name,
    }
    defaults.update(settings)
    if demo_rows == "auto":
        plain = curate(df, **defaults)
        if plain.report["n_merged"] or plain.report["n_quarantined"]:
            return plain, card  # the dataset shows curation at work by itself
    if not demo_rows:
        return curate(df, **defaults), card
    formula, target = defaults["formula_column"], defaults["target"]
    if not (formula and target):
        raise DataFileError(f"{name}: demonstration rows need a formula column and a target")
    demo = example_messy_rows(df, formula, target, str(card.units.get(target, "")))
    df = pd.concat([df.astype({c: object for c in (formula, target)}), demo.drop(columns="problem")],
                   ignore_index=True)
    if "source" not in settings:
        defaults["source"] = f"{name} + {len(demo)} demonstration rows"
    result = curate(df, **defaults)
    first = len(df) - len(demo) + 1  # their input row numbers follow the dataset's
    result.report["demo_rows"] = [{"row": first + k, "problem": p} for k, p in enumerate(demo["problem"])]
    return result, card
