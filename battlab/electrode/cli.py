"""``battlab electrode simulate|doe|optimize``: the virtual line from the command line.

Examples
--------
.. code-block:: console

    $ battlab electrode simulate --set active_weight_fraction=0.94 --set coating_gap_um=180 --curves out.csv
    $ battlab electrode doe --n 50 --seed 1 --n-jobs 2 --out designs.parquet --checkpoint designs.ckpt
    $ battlab electrode doe --n 10000 --scheduler local --n-jobs 2 --out doe.parquet --checkpoint doe.ckpt
    $ battlab electrode doe --n 10000 --scheduler tcp://head:8786 --out doe.parquet --checkpoint /shared/doe.ckpt
    $ battlab electrode optimize --objective specific_energy_Wh_kg --min rate_capability=0.8 --json best.json

Hook: ``battlab.cli.build_parser`` calls :func:`add_parser` with its subparsers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from battlab.errors import BattlabError

__all__ = ["add_parser"]

_DEFAULT_DESIGN = {"active_weight_fraction": 0.94, "solid_content": 0.65, "coating_gap_um": 180.0,
                   "line_load_N_per_mm": 500.0}


def _pairs(items: list[str], what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise BattlabError(f"{what} must look like NAME=NUMBER, got {item!r}") from None
    return out


def _settings(args: argparse.Namespace) -> Any:
    from battlab.electrode.process import MATERIALS, ProcessSettings

    if args.material not in MATERIALS:
        raise BattlabError(f"unknown material {args.material!r}; known: {', '.join(MATERIALS)}")
    return ProcessSettings(material=args.material)


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(c) for c in text.split(","))
    except ValueError:
        raise BattlabError(f"--c-rates must be numbers separated by commas, got {text!r}") from None
    if len(rates) < 2 or min(rates) <= 0:
        raise BattlabError("--c-rates needs at least two positive rates, e.g. 0.5,2")
    return rates


def _cmd_simulate(args: argparse.Namespace) -> int:
    import pandas as pd

    from battlab.electrode.simulate import OUTPUTS, simulate

    design = _DEFAULT_DESIGN | _pairs(args.set, "--set")
    r = simulate(design, settings=_settings(args), c_rates=_rates(args.c_rates), np_ratio=args.np_ratio,
                 model=args.model, noise=args.noise, seed=args.seed, return_curves=bool(args.curves))
    if r["status"] != "ok":
        raise BattlabError(f"the simulation failed: {r['reason']}")
    for key in ["loading_mg_cm2", "thickness_um", "porosity", "active_volume_fraction", "tortuosity", *OUTPUTS]:
        print(f"{key}: {r[key]:.4g}")
    if args.curves:
        rows = [pd.DataFrame({"c_rate": c, "capacity_mAh_cm2": q, "voltage_V": v}) for c, (q, v) in r["curves"].items()]
        pd.concat(rows).to_csv(args.curves, index=False)
        print(f"wrote {args.curves}")
    return 0


def _space(args: argparse.Namespace) -> dict[str, Any]:
    from battlab.electrode.doe import DEFAULT_SPACE

    space: dict[str, Any] = dict(DEFAULT_SPACE)
    for name, value in _pairs(args.fix, "--fix").items():
        if name not in space:
            raise BattlabError(f"--fix: unknown parameter {name!r}; known: {', '.join(space)}")
        space[name] = value
    return space


def _cmd_doe(args: argparse.Namespace) -> int:
    from battlab.electrode.doe import latin_hypercube, run_designs

    if args.n < 1:
        raise BattlabError("--n must be at least 1")
    designs = latin_hypercube(_space(args), args.n, seed=args.seed)
    kw: dict[str, Any] = {"noise": args.noise, "seed": args.seed} if args.noise > 0 else {}
    if args.scheduler and not args.cache:
        print("note: without --checkpoint DIR an interrupted run starts again from the first design")
    table = run_designs(designs, n_jobs=args.n_jobs, cache_dir=args.cache, settings=_settings(args),
                        c_rates=_rates(args.c_rates), scheduler=args.scheduler, **kw)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False) if out.suffix.lower() == ".csv" else table.to_parquet(out, index=False)
    n_failed = int((table["status"] != "ok").sum())
    print(f"{len(table)} designs, {n_failed} failed (see columns status, reason); wrote {out}")
    return 0


def _cmd_optimize(args: argparse.Namespace) -> int:
    import pandas as pd

    from battlab.electrode.doe import load_designs
    from battlab.electrode.optimize import closed_loop, fit_surrogate, pso_surrogate, to_json
    from battlab.electrode.simulate import OUTPUTS

    if args.objective not in OUTPUTS:
        raise BattlabError(f"unknown objective {args.objective!r}; known: {', '.join(OUTPUTS)}")
    constraints: dict[str, tuple[float | None, float | None]] = {}
    for name, v in _pairs(args.min, "--min").items():
        constraints[name] = (v, constraints.get(name, (None, None))[1])
    for name, v in _pairs(args.max, "--max").items():
        constraints[name] = (constraints.get(name, (None, None))[0], v)
    if args.data:
        path = Path(args.data)
        if not path.is_file():
            raise BattlabError(f"no such file: {path}")
        table = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    else:
        table, _ = load_designs()
    space = _space(args)
    unknown = [c for c in [args.objective, *constraints] if c not in table]
    if unknown:
        raise BattlabError(f"the data have no column {', '.join(map(repr, unknown))}")
    if args.rounds > 0:
        res = closed_loop(args.objective, space=space, constraints=constraints, initial=table,
                          batch_size=args.batch, max_rounds=args.rounds, kappa=args.kappa, seed=args.seed,
                          tol=args.tol, patience=args.patience, n_jobs=args.n_jobs)
        best = {k: res.best.get(k) for k in [*space, args.objective, *constraints]}
        print(res.history.to_string(index=False))
        print(f"best simulated design: {to_json(best)}")
    else:
        outputs = list(dict.fromkeys([args.objective, *(c for c in constraints if c in OUTPUTS)]))
        model = fit_surrogate(table, outputs)
        r = pso_surrogate(model, args.objective, space=space, constraints=constraints, kappa=args.kappa,
                          seed=args.seed)
        best = r.best_design | {k: r.best_values[k] for k in r.best_values
                                if k in outputs or k.removesuffix("_std") in outputs or k in constraints}
        print(f"surrogate optimum ({'feasible' if r.feasible else 'INFEASIBLE'}): {to_json(best)}")
    if args.json:
        Path(args.json).write_text(to_json(best))
        print(f"wrote {args.json}")
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``electrode`` and its sub-commands on the ``battlab`` command's subparsers.

    Example
    -------
    >>> root = argparse.ArgumentParser(prog="battlab")
    >>> add_parser(root.add_subparsers(dest="command"))
    >>> root.parse_args(["electrode", "doe", "--n", "4", "--out", "d.parquet"]).n
    4
    """
    el = subparsers.add_parser("electrode", help="virtual electrode pilot line: simulate, doe, optimize")
    sub = el.add_subparsers(dest="electrode_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--material", default="NMC811", help="NMC811 (Chen2020, default), LFP, NCA, LCO")
        p.add_argument("--c-rates", default="0.5,2", help="discharge C-rates, low to high (default 0.5,2)")
        p.add_argument("--noise", type=float, default=0.0, help="relative measurement noise (default 0)")
        p.add_argument("--seed", type=int, default=0)

    sim = sub.add_parser("simulate", help="one design through the process model and a PyBaMM DFN")
    common(sim)
    sim.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help=f"process parameter (defaults: {_DEFAULT_DESIGN})")
    sim.add_argument("--np-ratio", type=float, default=1.1, help="N/P ratio sizing the anode (default 1.1)")
    sim.add_argument("--model", choices=["DFN", "SPMe"], default="DFN")
    sim.add_argument("--curves", help="write the discharge curves to this CSV")
    sim.set_defaults(func=_cmd_simulate)

    doe = sub.add_parser("doe", help="Latin hypercube designs simulated in parallel, cached")
    common(doe)
    doe.add_argument("--n", type=int, default=50, help="number of designs")
    doe.add_argument("--n-jobs", type=int, default=1, help="parallel workers (~380 MB each); with --scheduler local, "
                     "the LocalCluster's worker processes")
    doe.add_argument("--scheduler", help="run on Dask: 'local' (a LocalCluster on this machine) or a scheduler "
                     "address, e.g. tcp://head:8786 (default: this process, or joblib with --n-jobs)")
    doe.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="hold a parameter fixed")
    doe.add_argument("--checkpoint", "--cache", dest="cache", metavar="DIR",
                     help="checkpoint folder (one file per finished design): the same command again resumes")
    doe.add_argument("--out", required=True, help="output table (.parquet or .csv)")
    doe.set_defaults(func=_cmd_doe)

    opt = sub.add_parser("optimize", help="PSO on the surrogate; with --rounds, the closed loop")
    opt.add_argument("--objective", default="specific_energy_Wh_kg", help="output to maximise")
    opt.add_argument("--min", action="append", default=[], metavar="NAME=VALUE", help="lower bound, e.g. "
                     "rate_capability=0.8")
    opt.add_argument("--max", action="append", default=[], metavar="NAME=VALUE", help="upper bound")
    opt.add_argument("--data", help="simulated designs (default: the shipped dataset)")
    opt.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="hold a parameter fixed")
    opt.add_argument("--kappa", type=float, default=1.0, help="uncertainty penalty (default 1)")
    opt.add_argument("--rounds", type=int, default=0,
                     help="at most this many closed-loop rounds with the simulator (default 0: no loop); the loop "
                          "stops earlier once the surrogate expects no gain above --tol")
    opt.add_argument("--batch", type=int, default=1, help="designs simulated per round (default 1)")
    opt.add_argument("--tol", type=float, default=0.002,
                     help="stop when the largest expected improvement is below this share of the best (default 0.002)")
    opt.add_argument("--patience", type=int, default=2,
                     help="rounds in a row below --tol, without any gain, before the loop stops (default 2)")
    opt.add_argument("--n-jobs", type=int, default=1)
    opt.add_argument("--seed", type=int, default=0)
    opt.add_argument("--json", help="write the best design to this JSON file")
    opt.set_defaults(func=_cmd_optimize)
