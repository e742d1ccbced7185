"""``battlab design candidates|screen``: new candidate materials on the command line.

Examples
--------
.. code-block:: console

    $ battlab design candidates LiFePO4 --ion Na --out cands.csv          # ionic substitution of a formula
    $ battlab design candidates my.cif olivine layered --ion Na --out cands/   # structures: CIFs, prototypes
    $ battlab design candidates Na-Fe-P-O --ion Na --max-stoich 4 --out enum.csv  # enumeration (SMACT)
    $ battlab predict tuned/ cands.csv --out predicted.csv                # any tuned composition model
    $ battlab design screen cands.csv --model tuned/ --done measured.csv --target voltage --out screen/

``--out FILE.csv`` writes the candidate table (and, beside it, ``FILE_set_aside.csv`` and a ``FILE_structures/``
folder of CIFs when there are any); ``--out FOLDER`` writes :meth:`battlab.design.CandidateSet.save`'s files.
A parent that cannot be used (a CIF that does not parse, an unknown element, no working ion) is set aside with
the reason and named on stderr; when no parent is usable the command exits with code 2 and one line.
Hook: ``battlab.cli.build_parser`` calls :func:`add_parser` with its subparsers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from battlab.errors import BattlabError

__all__ = ["add_parser", "write_candidates"]


def write_candidates(cands, out: str | Path) -> list[Path]:  # cands: CandidateSet
    """Write a candidate set to a CSV file (with its set-aside rows and structures beside it) or a folder."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        return list(cands.save(out).values())
    out.parent.mkdir(parents=True, exist_ok=True)
    cands.table.to_csv(out, index=False)
    paths = [out]
    if len(cands.set_aside):
        aside = out.with_name(f"{out.stem}_set_aside.csv")
        cands.set_aside.to_csv(aside, index=False)
        paths.append(aside)
    if cands.structures:
        folder = out.with_name(f"{out.stem}_structures")
        folder.mkdir(exist_ok=True)
        for cid, s in cands.structures.items():
            s.to(filename=str(folder / f"{cid}.cif"))
        paths.append(folder)
    return paths


def _cmd_candidates(args: argparse.Namespace) -> int:
    from battlab.design.candidates import generate

    exclude: list[str] = []
    if args.exclude:
        from battlab.cli import comma_list

        exclude = comma_list(args.exclude)
    cands = generate(args.parents, ion=args.ion, method=args.method, threshold=args.threshold,
                     top=args.top or None, max_substituted=args.max_substituted, max_stoich=args.max_stoich,
                     exclude=exclude)
    for _, row in cands.set_aside.iterrows():
        if not row["candidate"]:
            print(f"battlab design: set aside {row['parent']}: {row['reason']}", file=sys.stderr)
    if not len(cands):
        first = cands.set_aside.iloc[0] if len(cands.set_aside) else None
        why = f"{first['parent']}: {first['reason']}" if first is not None else "nothing generated"
        raise BattlabError(f"no candidate made ({why})")
    paths = write_candidates(cands, args.out)
    print(cands.summary())
    shown = cands.table.head(10)
    for _, r in shown.iterrows():
        p = "" if r["probability"] != r["probability"] else f"  p={r['probability']:.3g}"
        print(f"  {r['candidate_id']}  {r['formula']:<16s} from {r['parent']}: {r['substitution'] or r['method']}{p}")
    if len(cands) > len(shown):
        print(f"  ... {len(cands) - len(shown)} more")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _cmd_screen(args: argparse.Namespace) -> int:
    from battlab.design.funnel import screen

    done = None
    if args.done:
        from battlab.tables import load_table

        done = load_table(args.done)
        if args.formula_column:
            if args.formula_column not in done.columns:
                raise BattlabError(f"{args.done}: no column {args.formula_column!r}")
            done = done.rename(columns={args.formula_column: "formula"})
    result = screen(args.candidates, args.model, rank_by=args.rank_by, maximize=not args.minimize, done=done,
                    target=args.target, plan_top=args.plan_top, batch_size=args.batch_size, seed=args.seed)
    paths = result.save(args.out)
    print(result.summary())
    for _, r in result.ranked.head(args.show).iterrows():
        if r["rank"] == r["rank"]:
            note = f"  ({r['capacity_note']})" if r["capacity_note"] else ""
            print(f"  {int(r['rank']):3d}. {r['candidate_id']}  {r['formula']:<16s} {r['prediction']:.3g} "
                  f"[{r['low']:.3g}, {r['high']:.3g}]  {r['capacity_mAh_g']:.0f} mAh/g (redox-limited)  "
                  f"energy proxy {r['energy_Wh_kg']:.0f} Wh/kg{note}")
    if result.suggestions is not None:
        print("compute next:")
        for _, r in result.suggestions.iterrows():
            print(f"  {r['candidate_id']}  {r['formula']:<16s} {r['mean']:.3g} ± {r['std']:.2g}  ({r['reason']})")
    for _, r in result.set_aside.head(10).iterrows():
        print(f"  set aside {r['candidate_id']} {r['formula']}: {r['reason']}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``design`` with ``candidates`` (and ``screen``) to the ``battlab`` subparsers."""
    design = sub.add_parser("design", help="new candidate materials: candidates, screen")
    dsub = design.add_subparsers(dest="design_command", required=True)

    can = dsub.add_parser("candidates", help="candidates by ionic substitution, enumeration or prototype structures")
    can.add_argument("parents", nargs="+", metavar="PARENT",
                     help="formulas (LiFePO4), CIF files, prototypes (olivine, layered, spinel, antiperovskite) "
                          "or chemical systems to enumerate (Na-Fe-P-O)")
    can.add_argument("--ion", default="Li", help="working ion of the candidates (default: Li)")
    can.add_argument("--out", required=True, help="CSV file (table) or folder (table, set-aside rows, CIFs)")
    can.add_argument("--method", default="substitution", choices=("substitution", "enumeration"),
                     help="for formula and structure parents (default: substitution)")
    can.add_argument("--top", type=int, default=50, help="candidates per parent, most probable first "
                                                         "(default: 50; 0 keeps all)")
    can.add_argument("--threshold", type=float, default=1e-3, help="lowest substitution probability (default 1e-3)")
    can.add_argument("--max-substituted", type=int, default=2, help="host ions replaced at once (default: 2)")
    can.add_argument("--max-stoich", type=int, default=8, help="enumeration: most atoms of an element (default: 8)")
    can.add_argument("--exclude", metavar="FORMULAS", help="comma-separated formulas not to propose (known ones)")
    can.set_defaults(func=_cmd_candidates, command="design")

    scr = dsub.add_parser("screen", help="predict and rank candidates with a tuned model; plan what to compute next")
    scr.add_argument("candidates", help="candidate table (CSV) or folder from `battlab design candidates`")
    scr.add_argument("--model", required=True, help="folder from `battlab tune` (a composition model)")
    scr.add_argument("--out", required=True, help="output folder: ranked.csv, next.csv, set_aside.csv")
    scr.add_argument("--rank-by", default="prediction", choices=("prediction", "energy"),
                     help="prediction, or energy (predicted voltage x redox-limited theoretical capacity, Wh/kg)")
    scr.add_argument("--minimize", action="store_true", help="lower is better")
    scr.add_argument("--done", help="table of known results (formula column and --target) to plan from")
    scr.add_argument("--target", help="result column of --done")
    scr.add_argument("--formula-column", help="formula column of --done (default: found by name)")
    scr.add_argument("--plan-top", type=int, default=50, help="best-ranked candidates the plan chooses from")
    scr.add_argument("--batch-size", type=int, default=5, help="candidates suggested to compute next")
    scr.add_argument("--show", type=int, default=10, help="ranked candidates printed")
    scr.add_argument("--seed", type=int, default=0)
    scr.set_defaults(func=_cmd_screen, command="design")
