"""Design of experiments for the virtual line: Latin hypercube designs, checkpointed simulation at any scale.

:func:`run_designs` simulates a table of designs in this process, through joblib (``n_jobs``), or on Dask
distributed (``scheduler=``: a LocalCluster, a scheduler address, or an HPC queue through dask-jobqueue;
see :mod:`battlab.electrode.distributed`). With a checkpoint folder (``cache_dir``) every finished design
is one file keyed by :func:`design_key`: an interrupted 10,000-design DOE started again with the same
arguments simulates only the designs that are missing, and the tasks of a worker that dies are
rescheduled without simulating a finished design twice.

.. code-block:: python

    designs = latin_hypercube(DEFAULT_SPACE, 10_000, seed=0)
    table = run_designs(designs, scheduler="local", n_jobs=2, cache_dir="doe-10k")        # this machine
    table = run_designs(designs, scheduler="tcp://scheduler:8786", cache_dir="/shared/doe-10k")

    from dask_jobqueue import SLURMCluster          # pip install dask-jobqueue; PBSCluster alike
    cluster = SLURMCluster(cores=1, processes=1, memory="2GB", walltime="04:00:00")
    cluster.scale(jobs=50)
    table = run_designs(designs, scheduler=cluster, cache_dir="/scratch/me/doe-10k")

Each process holds about 380 MB (PyBaMM + casadi): choose the number of workers by memory, not only by
cores. Existing joblib loops can also go to a cluster with ``joblib.parallel_config(backend="dask")``.

The shipped dataset is made by this module's entry point (the command and seed are recorded in
``battlab/electrode/data/designs_chen2020.json``)::

    python -m battlab.electrode.doe --n 300 --seed 0 --n-jobs 2 --out battlab/electrode/data/designs_chen2020.parquet

Example
-------
>>> designs = latin_hypercube(DEFAULT_SPACE, 4, seed=0)
>>> list(designs.columns)
['active_weight_fraction', 'solid_content', 'coating_gap_um', 'line_load_N_per_mm']
>>> table = run_designs(designs, n_jobs=1, progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.resources
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["DEFAULT_SPACE", "DESIGN_COLUMNS", "Checkpoint", "DesignError", "check_designs", "checkpointed",
           "design_key", "latin_hypercube", "load_designs", "run_designs"]

#: Process window of the shipped dataset (NMC811, Chen2020): ``name: (low, high)``; a scalar fixes a value.
DEFAULT_SPACE: dict[str, tuple[float, float] | float] = {
    "active_weight_fraction": (0.88, 0.97),
    "solid_content": (0.55, 0.75),
    "coating_gap_um": (80.0, 300.0),
    "line_load_N_per_mm": (0.0, 2000.0),
}

DATASET_FILE = "designs_chen2020.parquet"


def ranges(space: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """The varied parameters of a space (those given as ``(low, high)``)."""
    return {k: (float(v[0]), float(v[1])) for k, v in space.items() if not np.isscalar(v)}


def fixed(space: dict[str, Any]) -> dict[str, float]:
    """The fixed parameters of a space (those given as a scalar)."""
    return {k: float(v) for k, v in space.items() if np.isscalar(v)}


def latin_hypercube(space: dict[str, Any], n: int, seed: int | None = 0) -> pd.DataFrame:
    """Latin hypercube sample of a design space (``scipy.stats.qmc.LatinHypercube``).

    Parameters
    ----------
    space : dict
        ``name: (low, high)`` for varied parameters, ``name: value`` for fixed ones.
    n : int
        Number of designs.
    seed : int, optional
        Seed of the sampler (same seed, same designs).

    Returns
    -------
    pandas.DataFrame
        One row per design, one column per parameter, in the order of ``space``.

    Example
    -------
    >>> d = latin_hypercube({"a": (0.0, 1.0), "b": (10.0, 20.0), "c": 3.0}, 5, seed=1)
    >>> d.shape, bool(d["b"].between(10, 20).all()), float(d["c"].iloc[0])
    ((5, 3), True, 3.0)
    """
    from scipy.stats import qmc

    r = ranges(space)
    unit = qmc.LatinHypercube(d=len(r), seed=seed).random(n)
    lo, hi = np.array([v[0] for v in r.values()]), np.array([v[1] for v in r.values()])
    df = pd.DataFrame(qmc.scale(unit, lo, hi) if r else np.empty((n, 0)), columns=list(r))
    for k, v in fixed(space).items():
        df[k] = v
    return df[list(space)]


def design_key(design: dict[str, Any], **kwargs: Any) -> str:
    """Stable hash of a design and the simulation settings (the cache key).

    Example
    -------
    >>> design_key({"a": 1.0}) == design_key({"a": 1.0 + 1e-15})
    True
    """
    payload = {k: (round(float(v), 12) if isinstance(v, (int, float, np.number)) else str(v))
               for k, v in sorted(design.items())}
    payload["_settings"] = repr(sorted((k, repr(v)) for k, v in kwargs.items()))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


#: Parameters a design may set: the process knobs (:func:`~battlab.electrode.process.process_electrode`) and
#: ``np_ratio``, the cell's N/P ratio, which overrides the ``np_ratio`` keyword of
#: :func:`~battlab.electrode.simulate.simulate` for that design.
DESIGN_COLUMNS: tuple[str, ...] = ("active_weight_fraction", "solid_content", "coating_gap_um", "wet_thickness_um",
                                   "line_load_N_per_mm", "calender_gap_um", "particle_radius_um", "np_ratio")


class DesignError(BattlabError, ValueError):
    """A table of designs that cannot be simulated as given (unknown column, missing or non-numeric value)."""


def check_designs(designs: pd.DataFrame) -> list[dict[str, float]]:
    """The designs of a table as records, after checking every column and cell.

    Raises
    ------
    DesignError
        A column no design parameter has (with the closest known name), a missing required parameter,
        or a cell that is not a finite number (naming its row and column).

    Example
    -------
    >>> check_designs(pd.DataFrame({"active_weight_fraction": [0.9], "solid_content": [0.6],
    ...                             "coating_gap_um": [150]}))
    [{'active_weight_fraction': 0.9, 'solid_content': 0.6, 'coating_gap_um': 150.0}]
    >>> check_designs(pd.DataFrame({"active_weight_fraction": [0.9], "solid_content": [0.6],
    ...                             "coating_gap": [150]}))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    battlab.electrode.doe.DesignError: designs: unknown column 'coating_gap' (did you mean 'coating_gap_um'?); ...
    """
    import difflib

    if not isinstance(designs, pd.DataFrame):
        raise DesignError(f"designs must be a pandas DataFrame, got {type(designs).__name__}")
    for col in designs.columns:
        if col not in DESIGN_COLUMNS:
            close = difflib.get_close_matches(str(col), DESIGN_COLUMNS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DesignError(f"designs: unknown column {col!r}{hint}; design columns are {', '.join(DESIGN_COLUMNS)}")
    if designs.columns.duplicated().any():
        raise DesignError(f"designs: column {designs.columns[designs.columns.duplicated()][0]!r} appears twice")
    missing = [c for c in ("active_weight_fraction", "solid_content") if c not in designs]
    if "coating_gap_um" not in designs and "wet_thickness_um" not in designs:
        missing.append("coating_gap_um (or wet_thickness_um)")
    if missing:
        raise DesignError(f"designs: missing column {', '.join(missing)}")
    records: list[dict[str, float]] = []
    for pos, (label, row) in enumerate(designs.iterrows()):
        rec: dict[str, float] = {}
        for col, value in row.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = float("nan")
            if isinstance(value, (bool, np.bool_)) or not np.isfinite(number):
                raise DesignError(f"designs: row {pos} (index {label!r}), column {col!r}: {value!r} "
                                  "is not a finite number")
            rec[str(col)] = number
        records.append(rec)
    return records


def _simulator_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("battlab", "pybamm"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


@dataclass(frozen=True)
class Checkpoint:
    """A run folder of finished designs: one parquet file per :func:`design_key`, and a log of simulations.

    Files are written atomically (a temporary file, then a rename), so a reader never sees half a result
    and a design written twice by two workers is the same file. ``simulations.jsonl`` gets one line when a
    simulation starts and one when it ends (key, host, pid, Dask worker, time, seconds, status): an audit
    of who simulated what, and what a killed worker left unfinished (a ``start`` without its ``done``).
    ``checkpoint.json`` records the battlab and PyBaMM versions the folder's results were made with
    (:meth:`open` refuses a folder of other versions rather than mixing their results with new ones).

    Example
    -------
    >>> import tempfile
    >>> ck = Checkpoint(tempfile.mkdtemp()).open()
    >>> ck.write("abc", {"status": "ok", "reason": "", "x": 1.0})
    >>> ck.done_keys(), ck.read("abc")["x"]
    ({'abc'}, 1.0)
    """

    folder: Path

    LOG = "simulations.jsonl"

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))

    RECORD = "checkpoint.json"

    def open(self, versions: dict[str, str] | None = None, *, made: str = "designs were simulated",
             error: type[Exception] = DesignError) -> Checkpoint:
        """Create the folder, or check that its results come from the same versions.

        ``versions`` defaults to the simulator's (battlab and PyBaMM); another user of the folder layout passes
        its own (e.g. :mod:`battlab.design.relax`: the potential's), with ``made`` and ``error`` for the message.

        Raises
        ------
        DesignError
            The folder holds results made with other versions (they would be mixed with new ones silently):
            use a new folder, or delete this one.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        versions = _simulator_versions() if versions is None else versions
        record = self.folder / self.RECORD
        if record.exists():
            before = json.loads(record.read_text())
            if before != versions:
                raise error(f"checkpoint {self.folder}: its {made} with {before}, this is {versions}; "
                            "use a new folder (or delete this one)")
        else:
            tmp = record.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
            tmp.write_text(json.dumps(versions))
            tmp.replace(record)
        return self

    def path(self, key: str) -> Path:
        """The result file of a design."""
        return self.folder / f"{key}.parquet"

    def has(self, key: str) -> bool:
        """Whether a design is finished."""
        return self.path(key).exists()

    def done_keys(self) -> set[str]:
        """Keys of every finished design in the folder."""
        return {p.stem for p in self.folder.glob("*.parquet")}

    def read(self, key: str) -> dict[str, Any]:
        """A finished design's result row."""
        return pd.read_parquet(self.path(key)).iloc[0].to_dict()

    def write(self, key: str, row: dict[str, Any]) -> None:
        """Store a result row (atomically; a second write of the same key replaces it with the same row)."""
        path = self.path(key)
        tmp = path.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
        pd.DataFrame([row]).to_parquet(tmp, index=False)
        tmp.replace(path)

    def log(self, event: str, key: str, **fields: Any) -> None:
        """Append one line to ``simulations.jsonl`` (a single write: lines of parallel writers do not mix)."""
        worker = None
        with contextlib.suppress(ImportError, ValueError):
            from distributed import get_worker

            worker = get_worker().address
        line = {"event": event, "key": key, "host": socket.gethostname(), "pid": os.getpid(), "worker": worker,
                "time": time.time(), **fields}
        with open(self.folder / self.LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def events(self) -> pd.DataFrame:
        """The log as a table (one row per line; empty when nothing was simulated here)."""
        path = self.folder / self.LOG
        if not path.exists():
            return pd.DataFrame(columns=["event", "key", "host", "pid", "worker", "time"])
        return pd.read_json(path, lines=True, dtype={"key": str})


def checkpointed(cache_dir: str | None, key: str, compute: Callable[[], dict[str, Any]],
                 seconds: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    """``compute()``'s result row for ``key``, once: read from the :class:`Checkpoint` folder ``cache_dir`` when it
    has the key, else computed, written and logged (``start``, then ``done`` with the seconds, by default the wall
    time of ``compute``, or ``seconds(row)``, and the row's status); without a folder this process sees, just
    computed. Each design of :func:`run_designs` and each structure of ``battlab.design.relax_structures``."""
    ck = Checkpoint(Path(cache_dir)) if cache_dir and Path(cache_dir).is_dir() else None
    if ck is not None and ck.has(key):
        return ck.read(key)
    if ck is not None:
        ck.log("start", key)
    t0 = time.perf_counter()
    row = compute()
    if ck is not None:
        ck.write(key, row)
        took = round(time.perf_counter() - t0, 3) if seconds is None else seconds(row)
        ck.log("done", key, seconds=took, status=row.get("status"))
    return row


def _run_one(design: dict[str, Any], key: str, cache_dir: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Simulate one design unless the checkpoint has it; checkpoint it (when this process sees the folder)."""
    from battlab.electrode.simulate import simulate

    def compute() -> dict[str, Any]:
        row = simulate(design, **kwargs)
        return {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in row.items()}

    return checkpointed(cache_dir, key, compute)


def run_designs(
    designs: pd.DataFrame,
    *,
    n_jobs: int = 1,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    scheduler: Any = None,
    callback: Callable[[str, dict[str, Any]], None] | None = None,
    **simulate_kwargs: Any,
) -> pd.DataFrame:
    """Simulate every design, in this process, through joblib or on Dask, with a progress bar and a checkpoint.

    Parameters
    ----------
    designs : pandas.DataFrame
        One design per row (e.g. from :func:`latin_hypercube`); columns from :data:`DESIGN_COLUMNS`.
    n_jobs : int
        Without a scheduler: joblib workers (``-1``: all cores of the active backend). With
        ``scheduler="local"``: the LocalCluster's worker processes. Each process holds ~380 MB.
    cache_dir : str or Path, optional
        The checkpoint: a folder with one parquet file per finished design, keyed by :func:`design_key`
        of the design and ``simulate_kwargs`` (see :class:`Checkpoint`). A design already there is never
        simulated again, so an interrupted run started again with the same arguments resumes where it
        stopped. On a multi-machine cluster, use a folder every worker sees (shared filesystem).
    progress : bool
        Show a ``tqdm.auto`` progress bar (designs already in the checkpoint count as done).
    scheduler : str, distributed.Client or cluster, optional
        Run on Dask distributed (:mod:`battlab.electrode.distributed`): ``"local"`` (a LocalCluster of
        ``n_jobs`` single-threaded workers, closed afterwards), ``"tcp://host:8786"``, a client, or a
        cluster object (dask-jobqueue's ``SLURMCluster``/``PBSCluster`` for HPC queues). Default: the
        scheduler of an enclosing :func:`~battlab.electrode.distributed.use_scheduler` block, else no
        Dask (this process when ``n_jobs == 1``, joblib otherwise).
    callback : callable, optional
        ``callback(key, row)`` after each design simulated by this call (not those read back from the
        checkpoint), as results arrive.
    **simulate_kwargs
        Passed to :func:`~battlab.electrode.simulate.simulate` (``c_rates``, ``noise``, ``seed``...).
        With ``noise`` and a ``seed``, each design gets its own noise stream ``seed + row index``.

    Returns
    -------
    pandas.DataFrame
        The designs and their results (``status``, ``reason``, outputs), one row per input row in the
        input order (identical designs are simulated once and share their row); failed simulations are
        rows with ``status == "failed"`` and NaN outputs.

    Raises
    ------
    DesignError
        An unknown design column, a missing parameter or a cell that is not a finite number.

    Example
    -------
    >>> table = run_designs(latin_hypercube(DEFAULT_SPACE, 4), n_jobs=2)  # doctest: +SKIP
    >>> table["status"].value_counts().to_dict()  # doctest: +SKIP
    {'ok': 4}
    >>> table = run_designs(latin_hypercube(DEFAULT_SPACE, 10_000), scheduler="local", n_jobs=2,
    ...                     cache_dir="doe-10k")  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from battlab.electrode import distributed

    records = check_designs(designs)
    if scheduler is None:
        scheduler = distributed.current_scheduler()
    ck = None
    if cache_dir is not None:
        ck = Checkpoint(Path(cache_dir)).open()
    seed = simulate_kwargs.pop("seed", None)
    keys: list[str] = []
    jobs: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for i, d in enumerate(records):
        kw = dict(simulate_kwargs)
        if seed is not None:
            kw["seed"] = int(seed) + i
        key = design_key(d, **kw)
        keys.append(key)
        jobs.setdefault(key, (key, d, kw))
    results: dict[str, dict[str, Any]] = {}
    if ck is not None:
        done = ck.done_keys()
        results = {k: ck.read(k) for k in jobs if k in done}
    todo = [job for k, job in jobs.items() if k not in results]
    folder = None if ck is None else str(ck.folder)

    where = "" if scheduler is None else " (dask)"
    bar = tqdm(total=len(jobs), initial=len(results), disable=not progress, desc=f"virtual line{where}")
    stream: Iterator[tuple[str, dict[str, Any]]] = iter(())
    try:
        if not todo:
            pass
        elif scheduler is None:
            from joblib import Parallel, delayed

            out = Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_run_one)(d, k, folder, kw) for k, d, kw in todo)
            stream = zip((k for k, _, _ in todo), out, strict=True)
        else:
            stream = _dask_stream(scheduler, n_jobs, todo, folder, ck, tell=bar.write if progress else None)
        for key, row in stream:
            results[key] = row
            bar.update(1)
            if callback is not None:
                callback(key, row)
    finally:
        bar.close()
        close = getattr(stream, "close", None)
        if close is not None:  # an interruption: cancel the cluster's tasks, close what this call started
            close()
    table = pd.DataFrame([results[k] for k in keys])
    if not keys:
        table = pd.DataFrame(columns=list(designs.columns))
    if "reason" in table:
        table["reason"] = table["reason"].fillna("")
    return table


def _dask_stream(scheduler: Any, n_jobs: int, todo: list[tuple[str, dict[str, Any], dict[str, Any]]],
                 folder: str | None, ck: Checkpoint | None,
                 tell: Callable[[str], None] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Results from the cluster as they finish; the client checkpoints what a worker could not."""
    from battlab.electrode import distributed

    with distributed.connect(scheduler, n_workers=n_jobs) as client, \
            contextlib.closing(distributed.submit_designs(client, todo, _run_one, folder)) as finished:
        if tell is not None:
            info = client.scheduler_info()
            board = f"; dashboard: {client.dashboard_link}" if "dashboard" in info.get("services", {}) else ""
            tell(f"{len(todo)} designs on Dask ({len(info.get('workers', {}))} workers now){board}")
        for key, row in finished:
            crashed = str(row.get("reason", "")).startswith(distributed.KILLED_REASON)
            if ck is not None and not crashed and not ck.has(key):
                ck.write(key, row)  # the worker could not see the folder (another machine)
            yield key, row


def load_designs() -> tuple[pd.DataFrame, dict[str, Any]]:
    """The shipped pre-generated dataset (NMC811 / Chen2020, DFN at 0.5C and 2C) and its record.

    Returns
    -------
    (pandas.DataFrame, dict)
        The table (as :func:`run_designs` returns it) and the JSON record (command, seed, space,
        package versions, counts).

    Example
    -------
    >>> table, info = load_designs()
    >>> info["seed"], len(table) == info["n_designs"]
    (0, True)
    """
    folder = importlib.resources.files("battlab.electrode") / "data"
    with importlib.resources.as_file(folder / DATASET_FILE) as p:
        table = pd.read_parquet(p)
    info = json.loads((folder / DATASET_FILE.replace(".parquet", ".json")).read_text())
    return table, info


def main(argv: list[str] | None = None) -> int:
    """Generate a dataset: ``python -m battlab.electrode.doe --n 300 --seed 0 --out FILE.parquet``."""
    import platform

    import pybamm
    import sklearn

    p = argparse.ArgumentParser(prog="python -m battlab.electrode.doe", description=main.__doc__)
    p.add_argument("--n", type=int, default=300, help="number of designs")
    p.add_argument("--seed", type=int, default=0, help="Latin hypercube seed")
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--out", required=True, help="output parquet file; a JSON record goes beside it")
    p.add_argument("--noise", type=float, default=0.0, help="relative measurement noise")
    p.add_argument("--cache", help="checkpoint folder (one file per finished design; a rerun resumes)")
    p.add_argument("--scheduler", help="Dask: 'local' (a LocalCluster of --n-jobs workers) or tcp://host:port")
    args = p.parse_args(argv)
    designs = latin_hypercube(DEFAULT_SPACE, args.n, seed=args.seed)
    kw: dict[str, Any] = {"noise": args.noise, "seed": args.seed} if args.noise > 0 else {}
    table = run_designs(designs, n_jobs=args.n_jobs, cache_dir=args.cache, scheduler=args.scheduler, **kw)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out, index=False)
    record = {
        "command": "python -m battlab.electrode.doe " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed, "n_designs": len(table), "n_failed": int((table["status"] != "ok").sum()),
        "space": {k: list(v) if not np.isscalar(v) else v for k, v in DEFAULT_SPACE.items()},
        "simulator": "battlab.electrode.simulate.simulate defaults: DFN, c_rates (0.5, 2.0), np_ratio 1.1",
        "noise": args.noise, "pybamm": pybamm.__version__, "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    print(f"wrote {out} ({record['n_designs']} designs, {record['n_failed']} failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
