"""Batches of virtual-line simulations on Dask distributed: this machine, a lab server or an HPC queue.

:func:`~battlab.electrode.doe.run_designs` sends its designs here when it is given a ``scheduler``:

- ``"local"``: a :class:`distributed.LocalCluster` on this machine, ``n_jobs`` worker processes with one
  thread each (PyBaMM and casadi are not thread-safe; each process holds about 380 MB), closed at the end;
- ``"tcp://host:8786"``: the scheduler of a running cluster (``dask scheduler`` on one machine,
  ``dask worker tcp://host:8786 --nthreads 1`` on the others);
- a :class:`distributed.Client`, or a cluster object such as dask-jobqueue's ``SLURMCluster`` or
  ``PBSCluster`` (``pip install dask-jobqueue``): the batch queue of an HPC centre, where battery groups
  run large DOEs. One job per worker, one thread per worker; put the checkpoint folder on the shared
  filesystem so that workers skip designs already finished:

.. code-block:: python

    from dask_jobqueue import SLURMCluster           # or PBSCluster: the same arguments
    cluster = SLURMCluster(cores=1, processes=1, memory="2GB", walltime="04:00:00",
                           account="my-project", queue="standard")
    cluster.scale(jobs=50)                            # 50 single-core jobs, each one Dask worker
    table = run_designs(designs, scheduler=cluster, cache_dir="/scratch/me/doe-10k")

Every design is one task (``Client.submit(..., pure=False)``); results are collected with
:func:`distributed.as_completed` as they finish. The worker that simulates a design writes it to the
checkpoint folder (one parquet file per :func:`~battlab.electrode.doe.design_key`, written atomically) and
the client writes any result that reached it without a file, so a finished design is never simulated
again: not when the run is interrupted and started again (only the missing designs are submitted), and
not when the scheduler reschedules the tasks of a worker that died (the task finds its file first). A
design whose task kills workers again and again (``distributed.KilledWorker``) comes back as a failed row
with that reason and no file, so a later run tries it again.

Interrupting a run on a cluster that :func:`~battlab.electrode.doe.run_designs` started (``"local"``)
stops its workers; on a cluster that keeps running (an address, a client, a jobqueue cluster) the
tasks are cancelled, but the designs already being simulated finish and are checkpointed by their
workers: wait for them before starting the same run again, or they may be simulated twice (at most one
per worker; the result is the same file).

Dask is used only when asked for: :func:`~battlab.electrode.doe.run_designs` without a scheduler runs in
this process (``n_jobs=1``) or through joblib. A LocalCluster costs a few seconds to start and every
worker imports PyBaMM again (``benchmarks/doe_scale.py`` prints ``dask_local_cluster_start_s``), which a
closed-loop round of 1-4 designs would pay every time; the joblib path keeps its worker processes
between calls. :func:`use_scheduler` sends every :func:`~battlab.electrode.doe.run_designs` call of a block
(closed-loop rounds, direct PSO on the simulator) to one cluster that stays up.

Scripts that start a LocalCluster need the ``if __name__ == "__main__":`` guard (worker processes are
spawned and import the main module).

Example
-------
>>> import pandas as pd
>>> from battlab.electrode.doe import latin_hypercube, DEFAULT_SPACE, run_designs
>>> designs = latin_hypercube(DEFAULT_SPACE, 4, seed=0)
>>> table = run_designs(designs, scheduler="local", n_jobs=2, cache_dir="doe-ckpt")  # doctest: +SKIP
>>> with use_scheduler("tcp://10.0.0.5:8786"):  # doctest: +SKIP
...     result = closed_loop("specific_energy_Wh_kg", batch_size=4)
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from battlab.errors import BattlabError

__all__ = ["SchedulerError", "connect", "current_scheduler", "submit_designs", "use_scheduler"]

#: The scheduler :func:`~battlab.electrode.doe.run_designs` uses when it is given none (see :func:`use_scheduler`).
_SCHEDULER: contextvars.ContextVar[Any] = contextvars.ContextVar("battlab_electrode_scheduler", default=None)


#: Start of the ``reason`` of a design whose task crashed its workers (``distributed.KilledWorker``): not checkpointed.
KILLED_REASON = "the design's task killed its workers repeatedly"


class SchedulerError(BattlabError, ValueError):
    """A scheduler that is not one, or that cannot be reached."""


def current_scheduler() -> Any:
    """The scheduler set by the innermost :func:`use_scheduler` block (``None`` outside any).

    Example
    -------
    >>> current_scheduler() is None
    True
    """
    return _SCHEDULER.get()


@contextlib.contextmanager
def use_scheduler(scheduler: Any, n_workers: int | None = None) -> Iterator[Any]:
    """Send every :func:`~battlab.electrode.doe.run_designs` call of the block to one Dask cluster.

    Parameters
    ----------
    scheduler : str, distributed.Client or cluster
        As for :func:`connect`. A ``"local"`` cluster is started once for the whole block.
    n_workers : int, optional
        Worker processes of a ``"local"`` cluster (default 2).

    Yields
    ------
    distributed.Client
        The client every call of the block uses.

    Example
    -------
    >>> with use_scheduler("local", n_workers=2) as client:  # doctest: +SKIP
    ...     a = run_designs(first_batch)     # both batches on the same two workers
    ...     b = run_designs(second_batch)
    """
    with connect(scheduler, n_workers=n_workers) as client:
        token = _SCHEDULER.set(client)
        try:
            yield client
        finally:
            _SCHEDULER.reset(token)


@contextlib.contextmanager
def connect(scheduler: Any, n_workers: int | None = None, **cluster_kwargs: Any) -> Iterator[Any]:
    """A :class:`distributed.Client` for a scheduler; what this function started, it closes.

    Parameters
    ----------
    scheduler : str, distributed.Client or cluster
        ``"local"`` (a new :class:`distributed.LocalCluster`), a scheduler address (``"tcp://host:8786"``,
        ``"tls://..."``), an existing client (used as it is, left open) or a cluster object with a
        ``scheduler_address`` (LocalCluster, dask-jobqueue's SLURMCluster/PBSCluster; left running).
    n_workers : int, optional
        Worker processes of a ``"local"`` cluster (default 2), one thread each.
    **cluster_kwargs
        More :class:`distributed.LocalCluster` arguments (e.g. ``memory_limit``).

    Raises
    ------
    SchedulerError
        ``scheduler`` is none of these, or the address cannot be reached within Dask's connect timeout
        (``distributed.comm.timeouts.connect``).

    Example
    -------
    >>> with connect("local", n_workers=1) as client:  # doctest: +SKIP
    ...     client.submit(sum, [1, 2]).result()
    3
    >>> with connect("udp://nowhere"):  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    ...
    battlab.electrode.distributed.SchedulerError: scheduler must be 'local', an address such as ...; got 'udp://nowhere'
    """
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    cluster = None
    if isinstance(scheduler, str) and scheduler == "local":
        n = 2 if n_workers is None or n_workers < 1 else int(n_workers)
        kw = {"threads_per_worker": 1, "processes": True, "dashboard_address": ":0"} | cluster_kwargs
        cluster = LocalCluster(n_workers=n, **kw)
        target: Any = cluster
    elif isinstance(scheduler, str) and scheduler.split("://")[0] in {"tcp", "tls", "inproc", "ucx", "ws", "wss"} \
            and "://" in scheduler:
        target = scheduler
    elif hasattr(scheduler, "scheduler_address"):
        target = scheduler
    else:
        raise SchedulerError("scheduler must be 'local', an address such as 'tcp://host:8786', a distributed.Client "
                             f"or a Dask cluster; got {scheduler!r}")
    try:
        try:
            client = Client(target)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def submit_designs(
    client: Any,
    jobs: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
    task: Callable[..., dict[str, Any]],
    checkpoint_dir: str | None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Run ``task(design, key, checkpoint_dir, kwargs)`` for every job on the cluster; yield results as they come.

    Parameters
    ----------
    client : distributed.Client
        Where the tasks run.
    jobs : sequence of (key, design, simulate kwargs)
        One task per job (each key once).
    task : callable
        The function that simulates one design and checkpoints it (importable on the workers).
    checkpoint_dir : str, optional
        The checkpoint folder, as the workers see it.

    Yields
    ------
    (str, dict)
        The design's key and its result row, in the order the tasks finish. A task that killed its
        workers too often (``distributed.KilledWorker``) yields a row with ``status == "failed"`` and the
        reason; any other exception of a task is raised. Unfinished tasks are cancelled when the
        iteration stops (an error, an interruption, or the caller breaking off).

    Example
    -------
    >>> rows = dict(submit_designs(client, [(k, d, {})], _run_one, None))  # doctest: +SKIP
    """
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    futures = {}
    for key, design, kwargs in jobs:
        fut = client.submit(task, design, key, checkpoint_dir, kwargs, pure=False,
                            key=f"simulate-{key}-{uuid.uuid4().hex[:8]}")
        futures[fut] = (key, design)
    try:
        for fut in as_completed(list(futures)):
            key, design = futures.pop(fut)
            try:
                row = fut.result()
            except KilledWorker as exc:
                row = {"status": "failed", "reason": f"{KILLED_REASON}: {exc}", **design}
            fut.release()
            yield key, row
    finally:
        if futures:
            client.cancel(list(futures), force=True)


def checkpoint_visible(checkpoint_dir: str | None) -> bool:
    """Whether this process sees the checkpoint folder (a worker on another machine may not).

    Example
    -------
    >>> checkpoint_visible(None), checkpoint_visible(".")
    (False, True)
    """
    return bool(checkpoint_dir) and Path(str(checkpoint_dir)).is_dir()
