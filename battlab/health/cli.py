"""``battlab health fit|predict``: state of health from pulse tests on the command line.

Examples
--------
.. code-block:: console

    $ battlab health fit pulsebat --out soh_model/                       # the PulseBat dataset (registry)
    $ battlab health fit my_pulses.csv --out soh_model/ --map U1=ocv,U2=v_c05_start,... \\
          --amplitudes 0.5,1,1.5 --nominal 2.5 --soc-column soc_pct --group-column cell
    $ battlab health predict new_cells.csv --model soh_model/ --out soh.csv
    $ battlab health predict new_cells.csv --model soh_model/ --sort reuse=0.8,repurpose=0.6 --cell-column cell
    $ battlab health sort soh.csv --reuse 0.85 --repurpose 0.6 --cell-column cell_id --out sorting.csv

A table is one row per pulse test: the voltages (canonical names U1..U21 of PulseBat's layout, or the table's own
names mapped with ``--map``), the SOC (%) and, to fit, the SOH and the physical cell. Rows of a text file are
numbered as its lines (the header is line 1). Bad input (missing column, a voltage or SOC that is not a number)
exits with code 2 and one line naming row and column; a SOC outside the trained range is predicted and flagged as
an extrapolation (column ``soc_extrapolation``, a note, and a line on stderr). ``--sort`` (or ``battlab health sort``
on a predictions CSV) decides per cell - reuse, repurpose, recycle, or retest when the SOH interval straddles a
threshold (:func:`battlab.health.sort.sort_cells`).
Hook: ``battlab.cli.build_parser`` calls :func:`add_parser` with its subparsers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from battlab.errors import BattlabError

__all__ = ["add_parser"]


def _mapping(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    pairs = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise BattlabError(f"--map {bad[0]!r}: give CANONICAL=COLUMN pairs, e.g. U1=ocv,U2=v_start")
    return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}


def _amplitudes(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise BattlabError(f"--amplitudes {text!r}: give C-rates separated by commas, e.g. 0.5,1,1.5") from None


def _read(source: str) -> pd.DataFrame:
    from battlab.datasets import _REGISTRY, load_dataset
    from battlab.health.io import read_pulse_table

    path = Path(source).expanduser()
    if not path.exists() and source in _REGISTRY:
        return load_dataset(source)[0]
    if not path.is_file():
        raise BattlabError(f"{source}: no such file (give a CSV/Excel/parquet pulse table, or 'pulsebat')")
    return read_pulse_table(path)  # rows named as lines of the file


def _featurizer(args: argparse.Namespace, base=None):
    from battlab.health.pulse import PulseFeatures

    f = base if base is not None else PulseFeatures()
    params = {}
    if args.map:
        params["columns"] = _mapping(args.map)
    if getattr(args, "amplitudes", None):
        params["amplitudes_C"] = _amplitudes(args.amplitudes)
    if getattr(args, "last_complete", False):
        params["last_complete"] = True
    if args.nominal is not None:
        params["nominal_capacity"] = _nominal(args.nominal)
    return f.set_params(**params) if params else f


def _nominal(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # a column name


def _cmd_fit(args: argparse.Namespace) -> int:
    from battlab.cli import comma_list
    from battlab.health.soh import fit_soh

    table = _read(args.table)
    model = fit_soh(table, target=args.target, soc=args.soc_column, group=args.group_column,
                    inner_split=args.inner_split, featurizer=_featurizer(args),
                    models=tuple(comma_list(args.models)), n_trials=args.n_trials,
                    seed=args.seed)
    model.save(args.out)
    card = model.card
    print(f"SOH model: {card['feature_set']} features, {card['model']['name']}, CV MAE {card['cv_mae']:.4f} "
          f"({card['inner_split']}); trained SOC {card['soc_range'][0]:g}-{card['soc_range'][1]:g} %, "
          f"{card['n_cells']} cells, {card['n_rows']} rows")
    print(f"wrote {args.out}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from battlab.health.soh import SohModel

    model = SohModel.load(args.model)
    model.featurizer = _featurizer(args, model.featurizer)
    if args.soc_column:
        model.soc_column = args.soc_column
    table = _read(args.table)
    pred = model.predict(table)
    out = pd.concat([table, pred], axis=1)
    n_out = int(pred["soc_extrapolation"].sum())
    if n_out:
        print(f"battlab health predict: {n_out} row(s) at a SOC outside the trained {model.soc_range[0]:g}-"
              f"{model.soc_range[1]:g} %: predicted as an extrapolation (column soc_extrapolation)", file=sys.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(args.out, index=False)
        print(f"wrote {len(out)} rows to {args.out}")
    elif args.sort is None:
        print(pred.to_string())
    if args.sort is not None:
        from battlab.health.sort import parse_thresholds

        reuse, repurpose = parse_thresholds(args.sort)
        _print_sorting(out, reuse, repurpose, _cell_column(out, args.cell_column), args.sort_out)
    return 0


def _cell_column(table: pd.DataFrame, given: str | None) -> str | None:
    if given:
        if given not in table.columns:
            raise BattlabError(f"--cell-column {given!r}: the table has no such column; it has "
                               f"{list(table.columns)[:12]}")
        return given
    return "cell_id" if "cell_id" in table.columns else None  # else each row is a cell


def _print_sorting(predictions: pd.DataFrame, reuse: float, repurpose: float, cell: str | None,
                   out: str | None) -> None:
    from battlab.health.sort import decision_counts, sort_cells

    sorting = sort_cells(predictions, reuse, repurpose, cell=cell)
    counts = decision_counts(sorting)
    print(f"sorting (reuse >= {reuse:g}, repurpose >= {repurpose:g}, below: recycle; an interval across a threshold: "
          f"retest) of {len(sorting)} cell(s){'' if cell else ' (one per row)'}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        sorting.to_csv(out, index=False)
        print(f"wrote {len(sorting)} cells to {out}")
    else:
        print(sorting.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _cmd_sort(args: argparse.Namespace) -> int:
    from battlab.health.sort import check_thresholds

    reuse, repurpose = check_thresholds(args.reuse, args.repurpose)
    table = _read(args.table)
    _print_sorting(table, reuse, repurpose, _cell_column(table, args.cell_column), args.out)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``health`` with ``fit``, ``predict`` and ``sort`` to the ``battlab`` subparsers."""
    health = sub.add_parser("health", help="state of health from pulse tests: fit, predict, sort")
    hsub = health.add_subparsers(dest="health_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("table", help="pulse table (CSV/Excel/parquet), or 'pulsebat'")
        p.add_argument("--map", help="canonical=column pairs for the voltages, e.g. U1=ocv,U2=v1 (default: U1..U21)")
        p.add_argument("--nominal", help="nominal capacity in Ah, or the column holding it "
                                         "(default: column nominal_capacity_Ah)")

    fit = hsub.add_parser("fit", help="fit a SOH model (feature set and model chosen by grouped CV)")
    common(fit)
    fit.add_argument("--out", required=True, help="output folder: soh_model.joblib, model_card.json")
    fit.add_argument("--amplitudes", help="pulse amplitudes in C, in test order (default: 0.5,1,1.5)")
    fit.add_argument("--last-complete", action="store_true",
                     help="the last amplitude has all 8 voltages (PulseBat's 1.5 C stops after its first rest)")
    fit.add_argument("--target", default="SOH")
    fit.add_argument("--soc-column", default="SOC", help="state of charge in %% (default: SOC)")
    fit.add_argument("--group-column", default="cell_id", help="physical cell (default: cell_id)")
    fit.add_argument("--inner-split", help="folds of the choice, e.g. group:SOC (default: group:<group column>)")
    fit.add_argument("--models", default="ridge,krr,svr", help="comma-separated model names (default: ridge,krr,svr)")
    fit.add_argument("--n-trials", type=int, default=6, help="trials per feature set (default: 6)")
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(func=_cmd_fit, command="health")

    pre = hsub.add_parser("predict", help="SOH with its interval for every row of a pulse table")
    common(pre)
    pre.add_argument("--model", required=True, help="folder written by `battlab health fit`")
    pre.add_argument("--soc-column", help="state of charge column (default: the model's)")
    pre.add_argument("--out", help="CSV with the table's columns and SOH_pred, SOH_low, SOH_high, ...")
    pre.add_argument("--sort", nargs="?", const="", metavar="reuse=0.8,repurpose=0.6",
                     help="also decide per cell: reuse / repurpose / recycle, or retest when the interval straddles "
                          "a threshold (thresholds: SOH fractions; default reuse=0.8,repurpose=0.6)")
    pre.add_argument("--cell-column", help="physical cell, whose rows are sorted together (default: cell_id if "
                                           "present, else each row)")
    pre.add_argument("--sort-out", help="CSV of the sorting, one row per cell (default: printed)")
    pre.set_defaults(func=_cmd_predict, command="health")

    srt = hsub.add_parser("sort", help="reuse / repurpose / recycle per cell from SOH predictions (a CSV written by "
                                       "`battlab health predict --out`)")
    srt.add_argument("table", help="predictions: columns SOH_pred, SOH_low, SOH_high (CSV/Excel/parquet)")
    srt.add_argument("--reuse", default=0.8, help="SOH >= this: reuse (default 0.8)")
    srt.add_argument("--repurpose", default=0.6, help="SOH >= this (below reuse): repurpose; below: recycle "
                                                      "(default 0.6)")
    srt.add_argument("--cell-column", help="physical cell (default: cell_id if present, else each row)")
    srt.add_argument("--out", help="CSV of the sorting, one row per cell (default: printed)")
    srt.set_defaults(func=_cmd_sort, command="health")
