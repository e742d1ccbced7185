"""``battlab cycling read|fit|predict``: cycler files and cycle-life models from the command line.

Examples
--------
.. code-block:: console

    $ battlab cycling read cell_CH8.csv --out cell8/           # tidy table, per-cycle summary, unusable cycles
    $ battlab cycling read data/ --out cells/                  # every file in data/: one folder per cell, summary.csv
    $ battlab cycling read 'data/*.nda' more.mpr --out cells/  # globs (quoted) and files, any number
    $ battlab cycling fit --out model/ --n-cycles 100          # tuned on the severson2019 training cells
    $ battlab cycling predict cell_CH8.csv --model model/      # cycle life with its interval
    $ battlab cycling predict cell_01.csv --model model/ --curve fade.csv   # and the fade curve (own-cells model)
    $ battlab cycling fit cells/ --nominal 1.1 --out model/    # tuned on your own cells (labels computed)
    $ battlab cycling fit cells/ --labels cells.csv --group-by batch --out model/   # your labels, folds by batch
    $ battlab cycling features cells/ --nominal 1.1 --out features.csv   # one row per cell, for battlab tune
    $ battlab cycling labels cells/ --nominal 1.1 --out labels/          # cycles to 80 % of nominal, censoring
    $ battlab cycling example --out example/                   # synthetic cells with known lives (offline)

Bad input (unreadable file, unknown format, missing column, too few cycles for the model, no nominal capacity,
too few labelled cells) exits with code 2 and a one-line message; so does a cell outside what the model knows
(an 18 Ah cell for a model of 1.1 Ah cells). A cell just outside the training cells is predicted with a warning,
its life bounded to the training lives' range (widened). Cells set aside when fitting (censored, unlabelled, too
few cycles, labels naming no file) are listed one line each, and in the model's ``set_aside.csv``.
``read`` of several files, a folder or a glob lists each unreadable file with its reason and exits with code 1
when any could not be read, 0 when all were. Paths are taken as users type them: relative,
``~``, spaces or brackets in names, any case of extension.
Hook: ``battlab.cli.build_parser`` calls :func:`add_parser` with its subparsers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

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


def _print_aside(aside: Any, what: str = "set aside") -> None:
    for cell, reason in aside[["cell", "reason"]].itertuples(index=False):
        print(f"  {what}: {cell}: {reason}")


def _label_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"labels": args.labels, "nominal_Ah": args.nominal, "reference": args.reference, "fraction": args.fraction}


def _cmd_fit_cells(args: argparse.Namespace) -> int:
    from battlab.cli import comma_list
    from battlab.cycling.owncells import fit_cycle_life_cells

    fit = fit_cycle_life_cells(args.cells, **_label_options(args), n_cycles=args.n_cycles,
                               feature_set=args.feature_set, components=args.components, group_by=args.group_by,
                               n_trials=args.n_trials, min_cells=args.min_cells, seed=args.seed,
                               models=tuple(comma_list(args.models)) or None,
                               progress=not args.quiet, recursive=args.recursive)
    fit.save(args.out)
    m = fit.model
    print(f"{m.card['model']['name']} from the first {args.n_cycles} cycles, tuned on {len(fit.features.table)} of "
          f"your cells (cross-validated by {'group ' + args.group_by if args.group_by else 'cell'}; voltage window "
          f"{fit.features.voltages[0]:.2f}-{fit.features.voltages[-1]:.2f} V)")
    lives = fit.features.table["cycle_life"]
    mae = m.card.get("metrics", {}).get("mae_mean")
    print(f"training lives {lives.min():.0f}-{lives.max():.0f} cycles; {m.coverage:.0%} intervals"
          + (f"; cross-validated error {100 * (10 ** mae - 1):.1f} % of life (MAE {mae:.3f} log10 cycles, "
             f"{m.card['split']['description']})" if mae is not None else ""))
    _print_aside(fit.features.set_aside)
    for r in fit.censored_check.itertuples(index=False):
        print(f"  censored check: {r.cell} ran {r.life_at_least:.0f} cycles without reaching end of life; predicted "
              f"{r.predicted_cycle_life:.0f}" + ("" if r.consistent else " - below what it already lived: the model "
                                                 "underestimates cells like it"))
    if fit.trajectory is not None:
        t = fit.trajectory
        print(f"fade-curve model (trajectory.joblib): capacity after cycle {t.n_cycles} up to cycle {int(t.grid_[-1])} "
              f"with a {t.coverage:.0%} band, learned from {len(t.cells_)} cells' whole curves")
    else:
        print(f"no fade-curve model: {fit.trajectory_note}")
    print(f"wrote {args.out} (model, model_card.json, labels.csv, training_cells.csv, set_aside.csv"
          + (", trajectory.joblib)" if fit.trajectory is not None else ")"))
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from battlab.cli import comma_list
    from battlab.cycling.curves import load_severson, load_severson_subset
    from battlab.cycling.models import DEFAULT_MODELS, evaluate, fit_cycle_life

    if args.cells:
        return _cmd_fit_cells(args)
    curves = load_severson_subset() if args.subset else load_severson(progress=not args.quiet)
    train = curves.select(curves.cells["split"].to_numpy() == "train")
    models = tuple(comma_list(args.models)) or DEFAULT_MODELS
    model = fit_cycle_life(train, n_cycles=args.n_cycles, components=args.components, n_trials=args.n_trials,
                           feature_set=args.feature_set, models=models, seed=args.seed, progress=not args.quiet,
                           label_settings={"nominal_Ah": 1.1, "reference": "nominal", "fraction": 0.8})
    model.save(args.out)
    scores = evaluate(model, curves).metrics
    print(f"{model.card['model']['name']} from the first {args.n_cycles} cycles, tuned on {len(train)} training cells; "
          f"RMSE (cycles): primary test {scores['test1_without_outlier']['rmse']:.0f} (outlier excluded), "
          f"secondary test {scores['test2']['rmse']:.0f}; {model.coverage:.0%} intervals cover "
          f"{scores['all_test']['coverage']:.0%} of test cells")
    print(f"wrote {args.out}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from battlab.cycling.models import CycleLifeModel
    from battlab.cycling.owncells import predict_cells
    from battlab.errors import BattlabError

    model = CycleLifeModel.load(args.model)
    cell = _read_one(args.file, args.format)
    preds, aside = predict_cells(model, [cell])
    if not len(preds):
        raise BattlabError(f"{cell.name}: {aside['reason'].iloc[0]}")
    pred = preds.iloc[0]

    def num(key: str) -> float | None:
        v = pred.get(key)
        return None if v is None or pd.isna(v) else round(float(v), 1)

    record = {"cell": cell.name, "file": str(args.file), "n_cycles_model": model.n_cycles,
              "predicted_cycle_life": num("predicted_cycle_life"), "interval_low": num("interval_low"),
              "interval_high": num("interval_high"), "coverage": model.coverage,
              "observed_cycle_life": num("observed_cycle_life"), "life_at_least": num("life_at_least"),
              "censored": None if pd.isna(pred.get("censored", pd.NA)) else bool(pred["censored"]),
              "in_domain": bool(pred.get("in_domain", True)), "refused": bool(pred.get("refused", False)),
              "domain_warnings": str(pred.get("domain_warnings", "") or "")}
    if record["refused"]:
        raise BattlabError(f"{cell.name}: no prediction, the cell is outside what the model knows "
                           f"({record['domain_warnings']})")
    text = f"{cell.name}: predicted cycle life {record['predicted_cycle_life']:.0f} cycles"
    if record["interval_low"] is not None:
        text += f" ({model.coverage:.0%} interval {record['interval_low']:.0f}-{record['interval_high']:.0f})"
    if record["observed_cycle_life"] is not None:
        text += f"; observed: the cell already reached end of life at cycle {record['observed_cycle_life']:.0f}"
    elif record["censored"]:
        text += f"; censored: {record['life_at_least']:.0f} cycles run without reaching end of life (life >= " \
                f"{record['life_at_least']:.0f})"
    print(text)
    if not record["in_domain"]:
        print(f"warning: outside the training cells ({record['domain_warnings']}); the prediction is bounded to "
              f"the training lives' range and less reliable")
    record["trajectory"] = _forecast(args, model, cell)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
        print(f"wrote {args.json}")
    return 0


def _forecast(args: argparse.Namespace, model: Any, cell: Any) -> dict[str, Any] | None:
    """The fade forecast of a predicted cell when the model folder has a trajectory model: printed, ``--curve``
    written; its life for the JSON record (None without one)."""
    from battlab.cycling.forecast import describe_forecast, forecast_cells, load_trajectory
    from battlab.errors import BattlabError

    traj, why = load_trajectory(args.model)
    if traj is None:
        if args.curve:
            raise BattlabError(f"--curve: {why}")
        print(f"(no fade-curve forecast: {why})")
        return None
    fc = forecast_cells(traj, [cell])
    print(describe_forecast(fc, cell.name))
    if args.curve:
        if not len(fc.curve):
            raise BattlabError(f"--curve: {cell.name}: {fc.set_aside['reason'].iloc[0]}")
        path = Path(args.curve).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        fc.curve.to_csv(path, index=False)
        print(f"wrote {path} (cell, cycle, predicted_capacity_Ah, low, high)")
    if not len(fc.life):
        return {"reason": fc.set_aside["reason"].iloc[0]}

    def num(v: Any) -> float | None:
        return None if pd.isna(v) else round(float(v), 1)

    row = fc.life.iloc[0]
    return {"predicted_life": num(row["predicted_life"]), "life_low": num(row["life_low"]),
            "life_high": num(row["life_high"]), "reached": bool(row["reached"]), "horizon": int(row["horizon"]),
            "threshold_Ah": float(row["threshold_Ah"]), "in_range": bool(row["in_range"]), "coverage": fc.coverage}


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
    from battlab.cycling.models import CYCLE_LIFE_MODELS, DEFAULT_FEATURE_SET, DEFAULT_MODELS
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

    fit = sub.add_parser("fit", help="tune a cycle-life model on your cells (cycler files) or, without CELLS, on the "
                                     "severson2019 training cells")
    fit.add_argument("cells", nargs="*", metavar="CELLS",
                     help="cycler files, folders of them or quoted globs (one cell per file); none: severson2019")
    fit.add_argument("--out", required=True, help="output folder (cycle_life_model.joblib, model_card.json; with "
                     "CELLS also labels.csv, training_cells.csv, set_aside.csv)")
    _cell_options(fit)
    fit.add_argument("--group-by", help="a column of --labels: the tuning's folds hold out whole groups (batch, "
                     "protocol) instead of single cells")
    fit.add_argument("--min-cells", type=int, default=6, help="fewest labelled cells accepted (default 6)")
    fit.add_argument("--n-cycles", type=int, default=100, help="predict from the first N cycles (default 100)")
    fit.add_argument("--feature-set", choices=sorted(FEATURE_SETS), default=DEFAULT_FEATURE_SET,
                     help=f"early-life features (default {DEFAULT_FEATURE_SET}: dQ(V) and fade relative to each cell's "
                          "own capacity, chosen by benchmarks/cycle_life.py on the training cells)")
    fit.add_argument("--models", help="comma-separated model families searched (default: "
                     f"{','.join(DEFAULT_MODELS)} on the severson2019 cells, as the benchmark chose; the zoo "
                     f"{','.join(CYCLE_LIFE_MODELS)} on your own cells)")
    fit.add_argument("--components", type=int, default=0, help="whole-curve principal components (default 0)")
    fit.add_argument("--n-trials", type=int, default=60, help="optuna trials (default 60)")
    fit.add_argument("--subset", action="store_true", help="the subset shipped with battlab (no download)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--quiet", action="store_true", help="no progress bars")
    fit.set_defaults(func=_cmd_fit)

    ft = sub.add_parser("features", help="one row per cell: early-life features and labels (a table for "
                                          "`battlab tune`)")
    ft.add_argument("cells", nargs="+", metavar="CELLS", help="cycler files, folders or quoted globs")
    ft.add_argument("--out", required=True, help="CSV file (and <stem>_set_aside.csv beside it)")
    ft.add_argument("--n-cycles", type=int, default=100, help="features from the first N cycles (default 100)")
    ft.add_argument("--feature-set", choices=sorted(FEATURE_SETS), default=DEFAULT_FEATURE_SET)
    _cell_options(ft, fit=False)
    ft.set_defaults(func=_cmd_features)

    lb = sub.add_parser("labels", help="cycle life (cycles to a fraction of nominal or initial capacity), knee, "
                                        "censoring of each cell")
    lb.add_argument("cells", nargs="+", metavar="CELLS", help="cycler files, folders or quoted globs")
    lb.add_argument("--out", required=True, help="output folder (LifeLabels.save)")
    _cell_options(lb, fit=False, labels_file=False)
    lb.set_defaults(func=_cmd_labels)

    ex = sub.add_parser("example", help="write synthetic cycler files of cells with known lives (offline example)")
    ex.add_argument("--out", required=True, help="folder: cells/ (Arbin CSV and EC-Lab text files) and "
                    "known_lives.csv")
    ex.add_argument("--n-cells", type=int, default=12, help="cells to write (default 12; the last one censored)")
    ex.add_argument("--seed", type=int, default=0)
    ex.set_defaults(func=_cmd_example)

    pr = sub.add_parser("predict", help="predicted cycle life of the cell in a cycler file")
    pr.add_argument("file", help="cycler file of one cell (its first cycles)")
    pr.add_argument("--model", required=True, help="folder written by `battlab cycling fit`")
    pr.add_argument("--format", choices=FORMATS, help="skip detection")
    pr.add_argument("--json", help="also write the prediction to this JSON file")
    pr.add_argument("--curve", help="write the predicted capacity curve (cell, cycle, predicted_capacity_Ah, low, "
                    "high) to this CSV; needs a model folder with a fade-curve model (fitted on your cells)")
    pr.set_defaults(func=_cmd_predict)


def _cell_options(p: argparse.ArgumentParser, fit: bool = True, labels_file: bool = True) -> None:
    """Options shared by fit (with CELLS), features and labels."""
    if labels_file:
        p.add_argument("--labels", help="CSV of labels instead of computing them: columns cell (the file name "
                       "without extension), cycle_life, optional censored and group columns")
    p.add_argument("--nominal", type=float, help="nominal capacity (Ah) when the files do not state it")
    p.add_argument("--reference", choices=("nominal", "initial"), default="nominal",
                   help="end of life relative to the nominal (default) or the initial capacity")
    p.add_argument("--fraction", type=float, default=0.8, help="end of life at this fraction of the reference "
                   "capacity (default 0.8)")
    p.add_argument("--recursive", action="store_true", help="also read the files in sub-folders")


def _cmd_features(args: argparse.Namespace) -> int:
    from battlab.cycling.owncells import cell_features

    feats = cell_features(args.cells, **_label_options(args), n_cycles=args.n_cycles, feature_set=args.feature_set,
                          recursive=args.recursive, require_labels=False)
    path = feats.save(args.out)
    print(f"{len(feats.table)} cells x {len(feats.features)} features from the first {args.n_cycles} cycles "
          f"(voltage window {feats.voltages[0]:.2f}-{feats.voltages[-1]:.2f} V)")
    _print_aside(feats.set_aside)
    print(f"wrote {path}\nnext: battlab tune {path} --target cycle_life --features {','.join(feats.features)} "
          "--split random --out tuned/")
    return 0


def _cmd_labels(args: argparse.Namespace) -> int:
    from battlab.cycling.labels import label_cells
    from battlab.cycling.owncells import read_cells

    cells, unreadable = read_cells(args.cells, recursive=args.recursive)
    labels = label_cells(cells, nominal_Ah=args.nominal, fraction=args.fraction, reference=args.reference)
    labels.save(args.out)
    t = labels.table
    with pd.option_context("display.width", 200):
        print(t[["cell", "cycle_life", "censored", "last_cycle", "threshold_Ah"]].to_string(index=False))
    _print_aside(unreadable)
    _print_aside(labels.set_aside)
    print(f"wrote {args.out}")
    return 0


def _cmd_example(args: argparse.Namespace) -> int:
    from battlab.cycling.synthetic import EXAMPLE_NOMINAL_AH, write_example_cells

    out = Path(args.out).expanduser()
    truth = write_example_cells(out / "cells", n_cells=args.n_cells, seed=args.seed)
    truth.to_csv(out / "known_lives.csv", index=False)
    print(f"wrote {len(truth)} cells to {out / 'cells'} ({', '.join(sorted(set(truth['format'])))}; nominal "
          f"{EXAMPLE_NOMINAL_AH} Ah; {int(truth['censored'].sum())} censored) and their lives to "
          f"{out / 'known_lives.csv'}")
    print(f"next: battlab cycling fit {out / 'cells'} --nominal {EXAMPLE_NOMINAL_AH} --out model/ && "
          f"battlab cycling predict {out / 'cells' / truth['file'].iloc[0]} --model model/ --curve fade.csv")
    return 0
