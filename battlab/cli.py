"""The ``battlab`` command: what people script.

Examples
--------
.. code-block:: console

    $ battlab run --quick                      # the whole pipeline on the embedded default data
    $ battlab run -p 01_curate.dataset obelix  # a parameter for one step
    $ battlab curate lab.csv --out curated/ --formula-column Formula --target "Capacity (mAh/g)"
    $ battlab featurize curated/ --out features/ --preset magpie
    $ battlab tune features/ --target y --out tuned/ --n-trials 50 --storage postgresql://...
    $ battlab tune coating.csv --target spread --features gap,solids --split random --out tuned/
    $ battlab tune cells.csv --target cycle_life --exclude cell_id --split official:split --out tuned/
    $ battlab explain tuned/ features/ --out explained/ --max-rows 2000
    $ battlab app predictor --port 8866        # a Voila app for experimentalists
    $ battlab datasets                         # what can be loaded, with licences
    $ battlab design candidates LiFePO4 --ion Na --out cands.csv   # new candidate materials

Exit codes: 0 success, 1 a pipeline step failed, 2 bad input (file, column, dataset, usage).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from battlab.errors import BattlabError


def _value(text: str) -> Any:
    """Parameter values as papermill reads them: YAML scalars/lists, else the string itself."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _cmd_run(args: argparse.Namespace) -> int:
    from battlab.pipeline import StepFailed, resolve_parameters, run_pipeline, summary_table

    params = {name: _value(value) for name, value in args.parameter}
    for note in resolve_parameters(params).notes:  # an unknown parameter fails here (exit 2)
        print(f"battlab run: {note}", file=sys.stderr)
    try:
        summary = run_pipeline(args.out, quick=args.quick, parameters=params, log_output=args.verbose,
                               resume=args.resume, progress=lambda line: print(line, flush=True))
    except StepFailed as exc:
        print(f"battlab run: {exc}", file=sys.stderr)
        if (Path(args.out) / "report.html").is_file():
            print(f"battlab run: report of the run so far: {Path(args.out) / 'report.html'}", file=sys.stderr)
        return 1
    print()
    print(summary_table(summary))
    out = Path(args.out)
    print(f"\nexecuted notebooks (with their figures): {out}/*.ipynb (open them with `make lab` or jupyter lab)")
    print(f"every step's figures: {out / 'summary.json'}")
    print(f"report of the run (open it in a browser): {summary.get('report', out / 'report.html')}")
    return 0


def _cmd_curate(args: argparse.Namespace) -> int:
    from battlab import steps

    units = dict(u.split("=", 1) for u in args.unit)
    result = steps.curate(args.input, formula_column=args.formula_column, target=args.target, units=units,
                          group_by=args.group_by)
    paths = result.save(args.out)
    print(result.summary())
    for reason, n in result.report["quarantine_reasons"].items():
        print(f"  quarantined, {reason}: {n}")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def comma_list(text: str | None) -> list[str]:
    """``--features a,b`` / ``--exclude a,b`` / ``--models a,b``: the comma-separated names, stripped."""
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


def _out_folder(out: str) -> Path:
    path = Path(out)
    if path.suffix.lower() in (".parquet", ".csv"):
        raise BattlabError(f"--out {out}: give a folder (features.parquet, feature_info.csv and featureset.json "
                           "are written into it)")
    return path


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"  {note}")


def _cmd_featurize(args: argparse.Namespace) -> int:
    from battlab import steps

    out = _out_folder(args.out)
    fs = steps.open_features(args.input, target=args.target, formula_column=args.formula_column,
                             group_column=args.group_column, preset=args.preset, working_ion=args.working_ion,
                             cache_dir=args.cache, columns=comma_list(args.features) or None,
                             exclude=comma_list(args.exclude))
    fs.save(out)
    s = fs.summary()
    families = ", ".join(fs.info["family"].unique())
    print(f"{s['n_rows']} rows x {s['n_features']} features ({families}), {s['n_kept_features']} kept after "
          f"pruning; {s['n_failed_rows']} rows could not be featurized (see column featurize_error)")
    _print_notes(fs.notes)
    print(f"target: {fs.model_target or '(none: give --target to battlab tune)'}; default split: {fs.split}")
    print(f"wrote {out}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from battlab import steps

    columns, exclude = comma_list(args.features), comma_list(args.exclude)
    if columns and exclude:
        raise BattlabError("give --features or --exclude, not both")
    given_set = steps.is_feature_set(Path(args.features_table))
    fs = steps.open_features(args.features_table, target=args.target, formula_column=args.formula_column,
                             group_column=args.group_column, preset=args.preset,
                             **({} if given_set else {"columns": columns or None, "exclude": exclude}))
    _print_notes(fs.notes)
    models = tuple(comma_list(args.models)) or None
    result = steps.tune(fs, target=args.target, split=args.split, n_trials=args.n_trials, timeout=args.timeout,
                        storage=args.storage, study_name=args.study_name, out_dir=args.out, seed=args.seed,
                        progress=not args.quiet, heartbeat=args.heartbeat, models=models,
                        **({"columns": columns or None, "exclude": exclude} if given_set else {}))
    result.save(args.out)
    m = result.metrics
    print(f"{len(result.features)} features -> {result.model_target}")
    print(f"best {result.best_name}: MAE {m['mae_mean']:.4g} ± {m['mae_std']:.2g}, RMSE {m['rmse_mean']:.4g}, "
          f"R2 {m['r2_mean']:.3f} ({result.split}); dummy MAE {m['dummy_mae_mean']:.4g}")
    print(f"intervals: {result.coverage['target']:.0%} target, {result.coverage['empirical']:.1%} on held-out rows")
    study = result.card["study"]
    print(f"study {study['name']} in {study['storage']}: {study['n_trials']} trials; wrote {args.out}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from battlab import steps

    tuned = steps.TunedModel.load(args.model)
    out = steps.predict(tuned, args.data)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    bad = out.loc[out["error"].astype(str) != ""]
    print(f"{len(out) - len(bad)} of {len(out)} rows predicted ({tuned.model_target}, {tuned.best_name}; "
          f"{tuned.coverage.get('target', 0.9):.0%} intervals); wrote {path}")
    for row, reason in bad["error"].head(10).items():
        print(f"  row {row + 1}: not predicted: {reason}")
    if len(bad) > 10:
        print(f"  ... {len(bad)} rows not predicted in all (column 'error' of {path})")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from battlab import steps

    tuned = steps.TunedModel.load(args.model)
    ex = steps.explain(tuned, steps.read_data(args.data), max_rows=args.max_rows,
                       interaction_rows=args.interaction_rows, seed=args.seed, max_seconds=args.max_seconds)
    ex.save(args.out)
    s = ex.summary()
    print(f"{s['n_rows']} of {s['n_rows_total']} rows x {s['n_features']} features in {s['seconds']} s with "
          f"{ex.explainer}; base value + SHAP = prediction within {s['additivity_error']:.2g}")
    _print_notes(ex.notes)
    top = ex.importance("family").head(5)
    print("by family (mean |SHAP|): " + ", ".join(f"{k} {v:.3g}" for k, v in top.items()))
    print("top features: " + ", ".join(f"{k} {v:.3g}" for k, v in ex.importance().head(5).items()))
    print(f"wrote {args.out}")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    from battlab.apps import APPS, app_path, serve

    if args.list:
        for name, what in APPS.items():
            print(f"{name:20s} {what}")
        return 0
    if args.name:
        app_path(args.name)  # unknown names fail before anything is printed
    what = f"app {args.name}" if args.name else "all apps"
    print(f"serving {what} on http://127.0.0.1:{args.port}/ (Ctrl-C stops)")
    return serve(args.name, args.port)


def _cmd_datasets(args: argparse.Namespace) -> int:
    from battlab.datasets import dataset_card, list_datasets

    if args.name:
        print(json.dumps(dataset_card(args.name).to_dict(), indent=2))
    else:
        print(list_datasets().drop(columns="description").to_string(index=False))
        print("\nbattlab datasets NAME shows one data card (description, source, citation, units).")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``battlab`` command's argument parser, with every subcommand."""
    parser = argparse.ArgumentParser(prog="battlab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the notebook pipeline with papermill")
    run.add_argument("--quick", action="store_true", help="small parameters, for tests and demos")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="notebook parameter for every step whose notebook declares NAME, except where an "
                          "earlier step's output feeds it (e.g. 02_featurize's log10 target reaches 03_tune "
                          "whatever -p target says); STEP.NAME for one step, overriding its input too "
                          "(-p 03_tune.target y). A name no step declares is an error (exit 2)")
    run.add_argument("--out", default="runs/latest", help="run folder (default: runs/latest)")
    run.add_argument("-v", "--verbose", action="store_true", help="stream the notebooks' output")
    run.add_argument("--resume", action="store_true",
                     help="keep the steps an earlier run in --out finished, start at the first failed one")
    run.set_defaults(func=_cmd_run)

    cur = sub.add_parser("curate", help="curate a table file: clean table, quarantine, report")
    cur.add_argument("input", help="CSV/TSV/Excel/parquet file")
    cur.add_argument("--out", required=True, help="output folder")
    cur.add_argument("--formula-column", help="column of chemical formulas (found by name if omitted)")
    cur.add_argument("--target", help="property column; rows without a usable value are quarantined")
    cur.add_argument("--unit", action="append", default=[], metavar="COLUMN=UNIT",
                     help="unit of a column whose header does not say it, e.g. capacity=mAh/g")
    cur.add_argument("--group-by", action="append", default=[], metavar="COLUMN",
                     help="column that, with the formula, identifies a material (replicates)")
    cur.set_defaults(func=_cmd_curate)

    fea = sub.add_parser("featurize", help="features of a table: composition (and structure) or its numeric columns")
    fea.add_argument("input", help="curated folder or curated.parquet from `battlab curate`, or any table file")
    fea.add_argument("--out", required=True,
                     help="output folder: features.parquet, feature_info.csv, featureset.json")
    fea.add_argument("--target", help="target column (default: the curated set's)")
    fea.add_argument("--preset", default="battery", help="magpie, stoichiometry, valence or battery (default)")
    fea.add_argument("--formula-column", help="column of formulas of a raw table (found by name if omitted)")
    fea.add_argument("--features", metavar="COLS",
                     help="comma-separated numeric columns to use as features (added to composition features)")
    fea.add_argument("--exclude", metavar="COLS", help="comma-separated columns never to use as features")
    fea.add_argument("--group-column", help="column of groups for group:COLUMN splits")
    fea.add_argument("--working-ion", default="Li", help="ion for the theoretical capacity (default: Li)")
    fea.add_argument("--cache", help="folder to cache composition features in")
    fea.set_defaults(func=_cmd_featurize)

    tun = sub.add_parser("tune", help="tune models with optuna on a leakage-aware split")
    tun.add_argument("features_table", metavar="TABLE",
                     help="feature set from `battlab featurize`, a curated folder, or any CSV/Excel/parquet table")
    tun.add_argument("--target", required=True, help="target column")
    tun.add_argument("--out", required=True, help="output folder (model, metrics, model card, study.db)")
    tun.add_argument("--features", metavar="COLS",
                     help="comma-separated feature columns (default: every numeric column of a plain table, "
                          "the feature set's features)")
    tun.add_argument("--exclude", metavar="COLS", help="comma-separated columns never to use as features")
    tun.add_argument("--split",
                     help="chemical_system (default with formulas), random[:K] (default without), group:COLUMN[:K], "
                          "official:COLUMN[:TRAIN[:TEST]], family, cluster, matbench")
    tun.add_argument("--formula-column", help="column of formulas of a raw table (found by name if omitted)")
    tun.add_argument("--group-column", help="column of groups (default split group:COLUMN without formulas)")
    tun.add_argument("--preset", default="battery", help="composition preset for a raw formula table")
    tun.add_argument("--n-trials", type=int, default=30, help="trials of the whole study (all workers)")
    tun.add_argument("--timeout", type=float, help="seconds for this worker")
    tun.add_argument("--storage", help="optuna storage URL (default: sqlite:///OUT/study.db)")
    tun.add_argument("--study-name", help="study to create or join")
    tun.add_argument("--models", help="comma-separated model names (default: lgbm,hgb,rf,et,svr,knn,ridge)")
    tun.add_argument("--seed", type=int, default=0)
    tun.add_argument("--heartbeat", type=float, default=30.0,
                     help="seconds between heartbeats; a dead worker's trial fails after twice that and is retried")
    tun.add_argument("--quiet", action="store_true", help="no progress bar")
    tun.set_defaults(func=_cmd_tune)

    exp = sub.add_parser("explain", help="SHAP values of a tuned model, per feature and descriptor family")
    exp.add_argument("model", help="folder (or its model.joblib) from `battlab tune`")
    exp.add_argument("data", metavar="TABLE",
                     help="feature set from `battlab featurize`, or any table the model's recipe can featurize")
    exp.add_argument("--out", required=True, help="output folder: shap_values.parquet, explanation.json, ...")
    exp.add_argument("--max-rows", type=int, help="explain a random subset of this many rows (recorded)")
    exp.add_argument("--interaction-rows", type=int, default=0, help="rows with interaction values (tree models)")
    exp.add_argument("--max-seconds", type=float,
                     help="budget of estimated TreeSHAP time: deep forests then explain fewer rows, and say so")
    exp.add_argument("--seed", type=int, default=0)
    exp.set_defaults(func=_cmd_explain)

    prd = sub.add_parser("predict", help="predictions of a tuned model for a table, with intervals and reasons")
    prd.add_argument("model", help="folder from `battlab tune` (or notebook 03's run folder)")
    prd.add_argument("data", metavar="TABLE", help="any table the model's recipe can featurize (formulas, process "
                     "parameters...) or a feature set from `battlab featurize`")
    prd.add_argument("--out", required=True, help="CSV file: the input's columns, prediction, low, high, error")
    prd.set_defaults(func=_cmd_predict)

    app = sub.add_parser("app", help="serve a Voila app (no name: all apps)")
    from battlab.apps import APPS

    app.add_argument("name", nargs="?", choices=sorted(APPS), metavar="NAME",
                     help=f"one of: {', '.join(sorted(APPS))} (--list says what each does)")
    app.add_argument("--port", type=int, default=8866)
    app.add_argument("--list", action="store_true", help="list the apps")
    app.set_defaults(func=_cmd_app)

    ds = sub.add_parser("datasets", help="list the datasets, or show one data card")
    ds.add_argument("name", nargs="?", help="dataset name")
    ds.set_defaults(func=_cmd_datasets)

    # Registered without importing battlab.electrode (PyBaMM, pymoo): its own parser takes the rest.
    ele = sub.add_parser("electrode", help="the virtual electrode line: simulate, doe, optimize", add_help=False)
    ele.add_argument("rest", nargs=argparse.REMAINDER)
    ele.set_defaults(func=_cmd_electrode)

    # Registered the same way: battlab.cycling (beep, the model zoo) is imported only when used.
    cyc = sub.add_parser("cycling", help="cycler files and cycle-life models: read, fit, predict", add_help=False)
    cyc.add_argument("rest", nargs=argparse.REMAINDER)
    cyc.set_defaults(func=_cmd_cycling)

    # Registered the same way: battlab.health (scikit-learn, the model zoo) is imported only when used.
    hea = sub.add_parser("health", help="state of health from pulse tests: fit, predict, sort",
                         add_help=False)
    hea.add_argument("rest", nargs=argparse.REMAINDER)
    hea.set_defaults(func=_cmd_health)

    # Registered the same way: battlab.design (pymatgen's substitution table, SMACT) is imported only when used.
    des = sub.add_parser("design", help="new candidate materials: candidates, screen", add_help=False)
    des.add_argument("rest", nargs=argparse.REMAINDER)
    des.set_defaults(func=_cmd_design)
    return parser


def _cmd_electrode(args: argparse.Namespace) -> int:
    from battlab.electrode.cli import add_parser

    parser = argparse.ArgumentParser(prog="battlab")
    add_parser(parser.add_subparsers(dest="command", required=True))
    inner = parser.parse_args(["electrode", *args.rest])
    return inner.func(inner)


def _cmd_cycling(args: argparse.Namespace) -> int:
    from battlab.cycling.cli import add_parser

    parser = argparse.ArgumentParser(prog="battlab")
    add_parser(parser.add_subparsers(dest="command", required=True))
    inner = parser.parse_args(["cycling", *args.rest])
    return inner.func(inner)


def _cmd_health(args: argparse.Namespace) -> int:
    from battlab.health.cli import add_parser

    parser = argparse.ArgumentParser(prog="battlab")
    add_parser(parser.add_subparsers(dest="command", required=True))
    inner = parser.parse_args(["health", *args.rest])
    return inner.func(inner)


def _cmd_design(args: argparse.Namespace) -> int:
    from battlab.design.cli import add_parser

    parser = argparse.ArgumentParser(prog="battlab")
    add_parser(parser.add_subparsers(dest="command", required=True))
    inner = parser.parse_args(["design", *args.rest])
    return inner.func(inner)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``battlab`` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # a Gaussian-process kernel at its bound during tuning is the search's business, not the user's
    warnings.filterwarnings("ignore", message=r"The optimal value found for dimension .* is close to the specified")
    parser = build_parser()
    if argv[:1] == ["electrode"]:  # its own parser reads every later argument, --help included
        args = argparse.Namespace(command="electrode", rest=argv[1:], func=_cmd_electrode)
    elif argv[:1] == ["cycling"]:
        args = argparse.Namespace(command="cycling", rest=argv[1:], func=_cmd_cycling)
    elif argv[:1] == ["health"]:
        args = argparse.Namespace(command="health", rest=argv[1:], func=_cmd_health)
    elif argv[:1] == ["design"]:
        args = argparse.Namespace(command="design", rest=argv[1:], func=_cmd_design)
    else:
        args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BattlabError as exc:
        print(f"battlab {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
