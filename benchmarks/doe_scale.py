"""DOE scale-out: the speed-up of 2 Dask workers over 1 on this machine, same designs, same run.

The same Latin hypercube designs (DFN at 0.5C and 2C, the virtual line's defaults) are simulated

* in this process (``run_designs`` without a scheduler, warmed up: the serial default),
* on a ``LocalCluster`` of 1 worker, then of 2 workers (one thread each), each with a fresh checkpoint
  folder (``cache_dir``), so every design is simulated, and written, by a worker.

Both clusters are started and warmed up first (start-up: ``LocalCluster`` + ``Client``; warm-up: every
worker simulates one design outside the set, i.e. imports PyBaMM and builds its model), timed apart; then
their batches alternate (``--repeats`` each) so that both see the same background load. The headline is
the median batch time of 1 worker over that of 2 workers. ``end_to_end`` includes start-up, warm-up and
the first batch: what a small DOE pays. The machine's 1-minute load average and the cores the workers
really got during each batch (their CPU seconds over the batch's wall time) are printed, and before the
runs the cores that 1 and 2 busy-looping processes of this session get (``cpu_ceiling_speedup_2_processes``:
no DOE can beat it). On shared cores the speed-up is bounded by what the other processes leave free; where
Linux's autogroup scheduling is on (``sched_autogroup_enabled: 1``) each session gets an equal share of
the CPUs however many processes it runs, so on a machine busy with other sessions a second worker adds
little.

Output: one ``name: value`` line per figure, headline last (``dask_speedup_2_workers``). Exit 1 if a
design failed, if the three runs disagree on a result, or if a batch could not be timed.

    python benchmarks/doe_scale.py [--n 16] [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

COMPARED = ["specific_energy_Wh_kg", "rate_capability", "energy_density_Wh_L"]


def _load() -> float:
    return os.getloadavg()[0]


def _cpu_seconds() -> float:
    """CPU time (user + system) of the calling process: run on every worker with ``client.run``."""
    t = os.times()
    return t.user + t.system


def _spin(seconds: float, out: Any) -> None:
    """Busy-loop for ``seconds`` and report the CPU seconds this process got."""
    t0, c0 = time.perf_counter(), _cpu_seconds()
    while time.perf_counter() - t0 < seconds:
        pass
    out.put(_cpu_seconds() - c0)


def _cores_available(n_procs: int, seconds: float = 3.0) -> float:
    """Cores that ``n_procs`` busy processes of this session get together right now (the ceiling of a speed-up)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_spin, args=(seconds, q)) for _ in range(n_procs)]
    for proc in procs:
        proc.start()
    got = sum(q.get() for _ in procs)
    for proc in procs:
        proc.join()
    return got / seconds


def main(argv: list[str] | None = None) -> int:
    import contextlib

    import numpy as np
    from distributed import Client, LocalCluster

    from battlab.electrode.doe import DEFAULT_SPACE, Checkpoint, latin_hypercube, run_designs
    from battlab.electrode.simulate import simulate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16, help="designs per batch (default 16)")
    p.add_argument("--seed", type=int, default=0, help="Latin hypercube seed (default 0)")
    p.add_argument("--repeats", type=int, default=3, help="batches per cluster, alternating 1 and 2 workers; "
                   "medians are reported (default 3)")
    args = p.parse_args(argv)

    designs = latin_hypercube(DEFAULT_SPACE, args.n, seed=args.seed)
    warm = latin_hypercube(DEFAULT_SPACE, 1, seed=args.seed + 1000).iloc[0].to_dict()
    print(f"designs: {args.n}")
    print(f"repeats: {args.repeats}")
    print(f"cpu_count: {os.cpu_count()}")
    print(f"load_avg_1min_start: {_load():.2f}")
    autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled")
    if autogroup.exists():  # 1: the kernel shares the CPUs equally between sessions, not between processes
        print(f"sched_autogroup_enabled: {autogroup.read_text().strip()}")
    ceiling = {n: _cores_available(n) for n in (1, 2)}
    for n in (1, 2):
        print(f"busy_loop_cores_{n}_process{'es' if n > 1 else ''}: {ceiling[n]:.2f}")
    print(f"cpu_ceiling_speedup_2_processes: {ceiling[2] / ceiling[1]:.2f}")

    simulate(warm)  # this process warmed up like the workers
    t0 = time.perf_counter()
    serial = run_designs(designs, progress=False)
    serial_s = time.perf_counter() - t0
    print(f"serial_in_process_s: {serial_s:.2f}")

    names = {1: "1_worker", 2: "2_workers"}
    tables: list = []
    batch: dict[int, list[float]] = {1: [], 2: []}
    cores: dict[int, list[float]] = {1: [], 2: []}
    cpu_per_design: dict[int, list[float]] = {1: [], 2: []}
    end_to_end: dict[int, float] = {}
    sim_s: dict[int, list[float]] = {1: [], 2: []}  # one design's simulation, timed by its worker
    with contextlib.ExitStack() as stack:
        clients = {}
        for n_workers in (1, 2):  # both clusters up and warm, then their batches alternate
            t_start = time.perf_counter()
            cluster = stack.enter_context(LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=":0"))
            client = stack.enter_context(Client(cluster))
            client.wait_for_workers(n_workers)
            started = time.perf_counter()
            client.run(simulate, warm)  # on every worker at once: import PyBaMM, build the model
            warmed = time.perf_counter()
            clients[n_workers] = client
            end_to_end[n_workers] = warmed - t_start
            print(f"dask_local_cluster_start_s_{names[n_workers]}: {started - t_start:.2f}")
            print(f"dask_worker_warmup_s_{names[n_workers]}: {warmed - started:.2f}")
        for r in range(args.repeats):
            for n_workers, client in clients.items():
                with tempfile.TemporaryDirectory() as tmp:
                    cpu0 = client.run(_cpu_seconds)
                    t1 = time.perf_counter()
                    tables.append(run_designs(designs, scheduler=client, cache_dir=Path(tmp) / "ck", progress=False))
                    wall = time.perf_counter() - t1
                    cpu1 = client.run(_cpu_seconds)
                    ev = Checkpoint(Path(tmp) / "ck").events()
                    sim_s[n_workers].extend(ev.loc[ev["event"] == "done", "seconds"].tolist())
                cpu = sum(cpu1[w] - cpu0[w] for w in cpu0 if w in cpu1)
                batch[n_workers].append(wall)
                cores[n_workers].append(cpu / wall)
                cpu_per_design[n_workers].append(cpu / args.n)
                print(f"batch_{r}_{names[n_workers]}_s: {wall:.2f}")
                if r == 0:
                    end_to_end[n_workers] += wall

    med = {n: float(np.median(v)) for n, v in batch.items()}
    for n in (1, 2):
        print(f"dask_{names[n]}_batch_s: {med[n]:.2f}")
        # cores the workers really got during a batch: 2 workers on a busy 2-core machine get less than 2
        print(f"dask_{names[n]}_cores_used: {np.median(cores[n]):.2f}")
        print(f"dask_{names[n]}_cpu_s_per_design: {np.median(cpu_per_design[n]):.2f}")
        print(f"dask_{names[n]}_simulation_s_median: {np.median(sim_s[n]):.2f}")
    failed = sum(int((t["status"] != "ok").sum()) for t in [serial, *tables])
    agree = all(np.allclose(t[COMPARED].to_numpy(float), serial[COMPARED].to_numpy(float), rtol=1e-6)
                for t in tables)
    print(f"designs_failed: {failed}")
    print(f"results_agree_serial_and_dask: {int(agree)}")
    print(f"dask_overhead_ms_per_design_1_worker: {(med[1] - serial_s) / args.n * 1e3:.0f}")
    print(f"dask_speedup_2_workers_end_to_end: {end_to_end[1] / end_to_end[2]:.2f}")
    print(f"load_avg_1min_end: {_load():.2f}")
    if failed or not agree or min(med.values()) <= 0:
        print("could not measure: a design failed, the runs disagree, or a batch was not timed", file=sys.stderr)
        return 1
    print(f"dask_speedup_2_workers: {med[1] / med[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
