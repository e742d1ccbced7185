"""Design of experiments for the virtual line: Latin hypercube designs, parallel cached simulation.

Runs go through joblib, so the same code scales from this machine's cores to a cluster: register a
Dask or Ray backend and wrap the call, e.g.

.. code-block:: python

    from dask.distributed import Client            # pip install "dask[distributed]"
    import joblib
    client = Client("tcp://scheduler:8786")
    with joblib.parallel_config(backend="dask"):
        table = run_designs(designs, n_jobs=-1)

    from ray.util.joblib import register_ray      # pip install ray
    register_ray()
    with joblib.parallel_config(backend="ray"):
        table = run_designs(designs, n_jobs=-1)

Each process holds about 380 MB (PyBaMM + casadi): choose ``n_jobs`` by memory, not only by cores.

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
import hashlib
import importlib.resources
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_SPACE", "design_key", "latin_hypercube", "load_designs", "run_designs"]

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


def _run_one(design: dict[str, Any], cache_dir: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    from battlab.electrode.simulate import simulate

    path = None
    if cache_dir:
        path = Path(cache_dir) / f"{design_key(design, **kwargs)}.parquet"
        if path.exists():
            return pd.read_parquet(path).iloc[0].to_dict()
    row = simulate(design, **kwargs)
    row = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in row.items()}
    if path is not None:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        pd.DataFrame([row]).to_parquet(tmp, index=False)
        tmp.replace(path)  # atomic: a parallel worker never reads half a file
    return row


def run_designs(
    designs: pd.DataFrame,
    *,
    n_jobs: int = 1,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    **simulate_kwargs: Any,
) -> pd.DataFrame:
    """Simulate every design (in parallel through joblib), with a progress bar and a cache.

    Parameters
    ----------
    designs : pandas.DataFrame
        One design per row (e.g. from :func:`latin_hypercube`).
    n_jobs : int
        joblib workers (``-1``: all cores of the active backend). Default 1: each worker holds ~380 MB.
    cache_dir : str or Path, optional
        Folder of cached results, one parquet file per design (keyed by :func:`design_key` of the design
        and ``simulate_kwargs``); a design already there is not simulated again.
    progress : bool
        Show a ``tqdm.auto`` progress bar.
    **simulate_kwargs
        Passed to :func:`~battlab.electrode.simulate.simulate` (``c_rates``, ``noise``, ``seed``...).
        With ``noise`` and a ``seed``, each design gets its own noise stream ``seed + row index``.

    Returns
    -------
    pandas.DataFrame
        The designs and their results (``status``, ``reason``, outputs), in the input order; failed
        simulations are rows with ``status == "failed"`` and NaN outputs.

    Example
    -------
    >>> table = run_designs(latin_hypercube(DEFAULT_SPACE, 4), n_jobs=2)  # doctest: +SKIP
    >>> table["status"].value_counts().to_dict()  # doctest: +SKIP
    {'ok': 4}
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    records = designs.to_dict(orient="records")
    seed = simulate_kwargs.pop("seed", None)
    jobs = []
    for i, d in enumerate(records):
        kw = dict(simulate_kwargs)
        if seed is not None:
            kw["seed"] = int(seed) + i
        jobs.append(delayed(_run_one)(d, None if cache_dir is None else str(cache_dir), kw))
    out = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    rows = list(tqdm(out, total=len(jobs), disable=not progress, desc="virtual line"))
    table = pd.DataFrame(rows)
    if "reason" in table:
        table["reason"] = table["reason"].fillna("")
    return table


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
    p.add_argument("--cache", help="cache folder")
    args = p.parse_args(argv)
    designs = latin_hypercube(DEFAULT_SPACE, args.n, seed=args.seed)
    kw: dict[str, Any] = {"noise": args.noise, "seed": args.seed} if args.noise > 0 else {}
    table = run_designs(designs, n_jobs=args.n_jobs, cache_dir=args.cache, **kw)
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
