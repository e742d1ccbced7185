"""``battlab cycling read|fit|predict``: cycler files and cycle-life models from the command line.

Examples
--------
.. code-block:: console

    $ battlab cycling read cell_CH8.csv --out cell8/           # tidy table, per-cycle summary, unusable cycles
    $ battlab cycling read data/ --out cells/                  # every file in data/: one folder per cell, summary.csv
    $ battlab cycling read 'data/*.nda' more.mpr --out cells/  # globs (quoted) and files, any number
    $ battlab cycling fit --out model/ --n-cycles 100          # tuned on the severson2019 training cells
    $ battlab cycling predict cell_CH8.csv --model model/      # cycle life with its interval

Bad input (unreadable file, unknown format, missing column, too few cycles for the model) exits with code 2
and a one-line message. ``read`` of several files, a folder or a glob lists each unreadable file with its reason
and exits with code 1 when any could not be read, 0 when all were. Paths are taken as users type them: relative,
``~``, spaces or brackets in names, any case of extension.
Hook: ``battlab.cli.build_parser`` calls :func:`add_parser` with its subparsers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]

_READ_HELP = """Read cycler files into tidy tables. One file: its tables are written into --out (exit 0; exit 2 with
one line when it cannot be read). Several files, a folder or a glob: one folder per cell inside --out, plus
summary.csv (one row per cell), failures.csv (each unreadable file with its reason) and companions.csv (metadata
files read with their data file); exit 0 when every file was read, 1 when some could not be."""


def _single_file(inputs: list[str]) -> bool:
    """One input naming one file (or nothing at all, and no pattern: a bad input, exit 2) -> today's layout."""
    if len(inputs) != 1:
        return False
    path = Path(inputs[0]).expanduser()
    if path.is_dir():
        return False
    return path.is_file() or not any(c in inputs[0] for c in "*?[")


def _read_one(path: str, format: str | None) -> Any:
    """``read_cycler_file``, with a reader's own crash on an odd file turned into a one-line error naming it."""
    from battlab.cycling.read import read_cycler_file
    from battlab.errors import BattlabError, DataFileError

    try:
        return read_cycler_file(path, format=format)
    except BattlabError:
        raise
    except Exception as exc:
        text = (f"{type(exc).__name__}: {exc}".strip().splitlines() or [type(exc).__name__])[0]
        raise DataFileError(f"{path}: cannot be read as a cycler file ({text[:300]})") from exc


def _cmd_read(args: argparse.Namespace) -> int:
    if _single_file(args.files):
        cell = _read_one(args.files[0], args.format)
        paths = cell.save(Path(args.out).expanduser())
        print(cell.summary())
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
        return 0
    return _read_many(args)


def _read_many(args: argparse.Namespace) -> int:
    """Several files, a folder or a glob: one folder per cell plus summary.csv, failures.csv, companions.csv."""
    import pandas as pd

    from battlab.cycling.batch import read_cycler_files

    out = Path(args.out).expanduser()
    batch = read_cycler_files(args.files, recursive=args.recursive, format=args.format, progress=not args.quiet,
                              out_dir=out)  # each cell written as read: hundreds of files, one in memory at a time
    if len(batch.summary):
        cols = ["cell", "format", "points", "cycles", "usable_cycles", "capacity_first_Ah", "capacity_last_Ah",
                "cycles_derived"]
        with pd.option_context("display.width", 200, "display.max_colwidth", 50):
            print(batch.summary[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(batch.report())
    for f, of in batch.companions[["file", "companion_of"]].itertuples(index=False):
        print(f"  companion: {f} (metadata of {of})")
    print(f"wrote {len(batch.summary)} cell folders, summary.csv, failures.csv and companions.csv to {out}")
    return 0 if batch.ok else 1


def _cmd_fit(args: argparse.Namespace) -> int:
    from battlab.cycling.curves import load_severson, load_severson_subset
    from battlab.cycling.models import evaluate, fit_cycle_life

    curves = load_severson_subset() if args.subset else load_severson(progress=not args.quiet)
    train = curves.select(curves.cells["split"].to_numpy() == "train")
    model = fit_cycle_life(train, n_cycles=args.n_cycles, components=args.components, n_trials=args.n_trials,
                           feature_set=args.feature_set, seed=args.seed, progress=not args.quiet)
    model.save(args.out)
    scores = evaluate(model, curves).metrics
    print(f"{model.card['model']['name']} from the first {args.n_cycles} cycles, tuned on {len(train)} training cells; "
          f"RMSE (cycles): primary test {scores['test1_without_outlier']['rmse']:.0f} (outlier excluded), "
          f"secondary test {scores['test2']['rmse']:.0f}; {model.coverage:.0%} intervals cover "
          f"{scores['all_test']['coverage']:.0%} of test cells")
    print(f"wrote {args.out}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from battlab.cycling.curves import curves_from_cell
    from battlab.cycling.models import CycleLifeModel

    model = CycleLifeModel.load(args.model)
    cell = _read_one(args.file, args.format)
    pred = model.predict(curves_from_cell(cell, model.voltages)).iloc[0]
    record = {"cell": cell.name, "file": str(args.file), "n_cycles_model": model.n_cycles,
              "predicted_cycle_life": round(float(pred["predicted_cycle_life"]), 1)}
    if "interval_low" in pred:
        record.update(interval_low=round(float(pred["interval_low"]), 1),
                      interval_high=round(float(pred["interval_high"]), 1), coverage=model.coverage)
    print(f"{cell.name}: predicted cycle life {record['predicted_cycle_life']:.0f} cycles"
          + (f" ({model.coverage:.0%} interval {record['interval_low']:.0f}-{record['interval_high']:.0f})"
             if "interval_low" in record else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
        print(f"wrote {args.json}")
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``cycling`` and its sub-commands on the ``battlab`` command's subparsers.

    Example
    -------
    >>> root = argparse.ArgumentParser(prog="battlab")
    >>> add_parser(root.add_subparsers(dest="command"))
    >>> root.parse_args(["cycling", "read", "cell.csv", "--out", "cell/"]).out
    'cell/'
    >>> root.parse_args(["cycling", "read", "a.nda", "data/*.mpr", "--out", "cells/"]).files
    ['a.nda', 'data/*.mpr']
    """
    from battlab.cycling.features import FEATURE_SETS
    from battlab.cycling.read import FORMATS

    cy = subparsers.add_parser("cycling", help="cycler files and cycle-life models: read, fit, predict")
    sub = cy.add_subparsers(dest="cycling_command", required=True)

    rd = sub.add_parser("read", help="cycler files -> tidy table, per-cycle summary, unusable cycles (per cell)",
                        description=_READ_HELP)
    rd.add_argument("files", nargs="+", metavar="FILE_OR_DIR_OR_GLOB",
                    help="cycler files (any format battlab reads, found from the content), folders of them, or "
                         "quoted globs such as 'data/*.nda'")
    rd.add_argument("--out", required=True, help="output folder: one file -> data.parquet, cycles.csv, unusable.csv, "
                    "cell.json; several -> one such folder per cell plus summary.csv, failures.csv, companions.csv")
    rd.add_argument("--format", choices=FORMATS, help="skip detection")
    rd.add_argument("--recursive", action="store_true", help="also read the files in sub-folders of a folder")
    rd.add_argument("--quiet", action="store_true", help="no progress bar")
    rd.set_defaults(func=_cmd_read)

    fit = sub.add_parser("fit", help="tune a cycle-life model on the severson2019 training cells")
    fit.add_argument("--out", required=True, help="output folder (cycle_life_model.joblib, model_card.json)")
    fit.add_argument("--n-cycles", type=int, default=100, help="predict from the first N cycles (default 100)")
    fit.add_argument("--feature-set", choices=sorted(FEATURE_SETS), default="full_discharge",
                     help="early-life features (default full_discharge, chosen by benchmarks/cycle_life.py's "
                          "cross-validation on the training cells)")
    fit.add_argument("--components", type=int, default=0, help="whole-curve principal components (default 0)")
    fit.add_argument("--n-trials", type=int, default=60, help="optuna trials (default 60)")
    fit.add_argument("--subset", action="store_true", help="the subset shipped with battlab (no download)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--quiet", action="store_true", help="no progress bars")
    fit.set_defaults(func=_cmd_fit)

    pr = sub.add_parser("predict", help="predicted cycle life of the cell in a cycler file")
    pr.add_argument("file", help="cycler file of one cell (its first cycles)")
    pr.add_argument("--model", required=True, help="folder written by `battlab cycling fit`")
    pr.add_argument("--format", choices=FORMATS, help="skip detection")
    pr.add_argument("--json", help="also write the prediction to this JSON file")
    pr.set_defaults(func=_cmd_predict)
