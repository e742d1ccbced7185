"""DOE batches on Dask distributed: a killed worker, an interrupted run resumed, bad input.

Every test runs the real virtual line (PyBaMM DFN, a few designs). Simulations are counted from the
checkpoint's log (``simulations.jsonl``: a ``start`` and a ``done`` line per simulation, written by the
process that simulates), so "exactly once" is what the workers did, not what the client believes.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pandas as pd
import psutil
import pytest

from battlab.electrode.distributed import SchedulerError, connect, use_scheduler
from battlab.electrode.doe import (
    DEFAULT_SPACE,
    Checkpoint,
    DesignError,
    check_designs,
    design_key,
    latin_hypercube,
    run_designs,
)

DESIGN = list(DEFAULT_SPACE)
COMPARED = ["specific_energy_Wh_kg", "rate_capability", "energy_density_Wh_L", "capacity_mAh_cm2"]


class Interrupted(Exception):
    """Stands for Ctrl-C or a lost session in the middle of a DOE."""


def _done(folder) -> pd.DataFrame:
    ev = Checkpoint(folder).events()
    return ev[ev["event"] == "done"]


def _dask_children() -> set[int]:
    """Dask worker processes (and their nannies) started by this test process."""
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if any("distributed" in part or "multiprocessing" in part for part in p.cmdline()):
                out.add(p.pid)
        except psutil.Error:
            pass
    return out


# ----------------------------------------------------------------------------- bad input, no simulation


def test_unknown_design_column_is_a_clear_error(tmp_path) -> None:
    d = latin_hypercube(DEFAULT_SPACE, 3, seed=0).rename(columns={"coating_gap_um": "coating_gap"})
    with pytest.raises(DesignError, match=r"unknown column 'coating_gap' \(did you mean 'coating_gap_um'\?\)"):
        run_designs(d, cache_dir=tmp_path / "ck", scheduler="local", progress=False)
    assert not (tmp_path / "ck").exists(), "a rejected table must not start a checkpoint"
    with pytest.raises(DesignError, match="unknown column 'operator'"):
        check_designs(latin_hypercube(DEFAULT_SPACE, 2, seed=0).assign(operator="A. N. Other"))


def test_missing_parameter_and_bad_cells_name_row_and_column() -> None:
    d = latin_hypercube(DEFAULT_SPACE, 3, seed=0)
    with pytest.raises(DesignError, match="missing column solid_content"):
        check_designs(d.drop(columns="solid_content"))
    with pytest.raises(DesignError, match=r"coating_gap_um \(or wet_thickness_um\)"):
        check_designs(d.drop(columns="coating_gap_um"))
    nan = d.copy()
    nan.loc[2, "line_load_N_per_mm"] = np.nan
    with pytest.raises(DesignError, match=r"row 2 \(index 2\), column 'line_load_N_per_mm': nan"):
        check_designs(nan)
    text = d.astype(object)
    text.loc[1, "solid_content"] = "sixty percent"
    with pytest.raises(DesignError, match=r"row 1 \(index 1\), column 'solid_content': 'sixty percent'"):
        check_designs(text)
    assert len(check_designs(d)) == 3


def test_scheduler_that_is_not_one_or_cannot_be_reached() -> None:
    import dask

    with pytest.raises(SchedulerError, match="scheduler must be 'local', an address"):
        with connect("my-cluster"):
            pass
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(SchedulerError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
            with connect("tcp://127.0.0.1:9"):
                pass


def test_cli_bad_scheduler_exits_2(tmp_path, capsys) -> None:
    from battlab.cli import main

    code = main(["electrode", "doe", "--n", "2", "--scheduler", "nowhere", "--out", str(tmp_path / "d.parquet")])
    assert code == 2
    assert "scheduler must be 'local'" in capsys.readouterr().err
    assert not (tmp_path / "d.parquet").exists()


def test_checkpoint_of_another_simulator_version_is_refused(tmp_path) -> None:
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "checkpoint.json").write_text('{"battlab": "0.0.1", "pybamm": "23.5"}')
    with pytest.raises(DesignError, match="simulated with .*'pybamm': '23.5'.*use a new folder"):
        run_designs(latin_hypercube(DEFAULT_SPACE, 2, seed=0), cache_dir=ck, progress=False)


# ----------------------------------------------------------------------------- this process


def test_serial_resume_simulates_only_the_missing_designs(tmp_path) -> None:
    designs = latin_hypercube(DEFAULT_SPACE, 4, seed=31)
    designs = pd.concat([designs, designs.iloc[[1]]], ignore_index=True)  # row 4 repeats row 1
    ck = tmp_path / "ck"
    seen: list[str] = []

    def interrupt_after_two(key: str, row: dict) -> None:
        seen.append(key)
        if len(seen) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_designs(designs, cache_dir=ck, progress=False, callback=interrupt_after_two)
    first = set(_done(ck)["key"])
    assert first == set(seen) == Checkpoint(ck).done_keys() and len(first) == 2

    resumed: list[str] = []
    table = run_designs(designs, cache_dir=ck, progress=False, callback=lambda k, r: resumed.append(k))
    keys = [design_key(d) for d in check_designs(designs)]
    assert set(resumed) == set(keys) - first and len(resumed) == 2  # 4 distinct designs, 2 were done
    assert _done(ck)["key"].value_counts().to_dict() == {k: 1 for k in set(keys)}
    assert len(table) == 5 and (table["status"] == "ok").all()
    pd.testing.assert_frame_equal(table[DESIGN], designs[DESIGN])
    pd.testing.assert_series_equal(table.iloc[4], table.iloc[1], check_names=False)


def test_worker_without_the_checkpoint_folder_still_simulates(tmp_path) -> None:
    from battlab.electrode.doe import _run_one

    design = check_designs(latin_hypercube(DEFAULT_SPACE, 1, seed=32))[0]
    missing = tmp_path / "on-another-machine"
    row = _run_one(design, design_key(design), str(missing), {})
    assert row["status"] == "ok" and not missing.exists()


# ----------------------------------------------------------------------------- Dask


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_worker_every_design_simulated_exactly_once(tmp_path) -> None:
    """A 2-worker LocalCluster; one worker is SIGKILLed mid-simulation once two designs are done."""
    from distributed import Client, LocalCluster

    designs = latin_hypercube(DEFAULT_SPACE, 8, seed=33)
    ck = tmp_path / "ck"
    killed: dict = {}

    def kill_a_busy_worker(key: str, row: dict) -> None:
        ev = Checkpoint(ck).events()
        done = ev[ev["event"] == "done"]
        if killed or len(done) < 2:
            return
        running = ev[(ev["event"] == "start") & ~ev["key"].isin(done["key"])]
        if running.empty:
            return
        victim = running.sort_values("time").iloc[-1]  # started last: the most time left to run
        os.kill(int(victim["pid"]), signal.SIGKILL)
        killed.update(pid=int(victim["pid"]), key=victim["key"])

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        table = run_designs(designs, scheduler=client, cache_dir=ck, progress=False, callback=kill_a_busy_worker)
        after = set(client.run(os.getpid).values())

    assert killed, "no worker was busy once two designs were done: the fault was never injected"
    assert killed["pid"] in pids and killed["pid"] not in after  # the nanny started a new worker process
    ev = Checkpoint(ck).events()
    by_victim = ev[ev["pid"] == killed["pid"]]
    unfinished = set(by_victim.loc[by_victim["event"] == "start", "key"]) - set(
        by_victim.loc[by_victim["event"] == "done", "key"])
    assert killed["key"] in unfinished  # killed in the middle of a simulation

    keys = {design_key(d) for d in check_designs(designs)}
    done = _done(ck)
    assert done["key"].value_counts().to_dict() == {k: 1 for k in keys}  # each design simulated once
    assert done.loc[done["key"] == killed["key"], "pid"].iloc[0] != killed["pid"]  # rescheduled elsewhere
    assert Checkpoint(ck).done_keys() == keys
    assert len(table) == 8 and (table["status"] == "ok").all()
    pd.testing.assert_frame_equal(table[DESIGN], designs[DESIGN])

    # the numbers do not depend on where a design ran: two of them again, in this process
    again = run_designs(designs.iloc[[0, 5]], progress=False)
    np.testing.assert_allclose(again[COMPARED], table[COMPARED].iloc[[0, 5]], rtol=1e-6)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_local_cluster_interrupted_then_resumed(tmp_path) -> None:
    """``scheduler="local"``: an interruption closes the cluster it started; the rerun does only the rest."""
    designs = latin_hypercube(DEFAULT_SPACE, 6, seed=34)
    ck = tmp_path / "ck"
    before = _dask_children()
    count = []

    def interrupt_after_two(key: str, row: dict) -> None:
        count.append(key)
        if len(count) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_designs(designs, scheduler="local", n_jobs=2, cache_dir=ck, progress=False, callback=interrupt_after_two)
    assert not {p for p in _dask_children() - before if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}, "the interrupted run left workers running"
    first = Checkpoint(ck).done_keys()
    assert 2 <= len(first) < 6 and set(_done(ck)["key"]) == first

    resumed: list[str] = []
    with use_scheduler("local", n_workers=2):  # the way a closed loop sends every round to one cluster
        table = run_designs(designs, cache_dir=ck, progress=False, callback=lambda k, r: resumed.append(k))
    keys = {design_key(d) for d in check_designs(designs)}
    assert set(resumed) == keys - first  # only the missing designs were submitted
    assert _done(ck)["key"].value_counts().to_dict() == {k: 1 for k in keys}
    assert len(table) == 6 and (table["status"] == "ok").all()
    pd.testing.assert_frame_equal(table[DESIGN], designs[DESIGN])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_design_that_kills_its_workers_is_kept_as_failed_and_retried(tmp_path, capsys) -> None:
    """With no failure allowed, the killed worker's design comes back failed (KilledWorker), is not
    checkpointed, and the same CLI command on a LocalCluster simulates it (and only it) again."""
    import dask
    from distributed import Client, LocalCluster

    from battlab.cli import main
    from battlab.electrode.distributed import KILLED_REASON
    from battlab.electrode.process import ProcessSettings

    designs = latin_hypercube(DEFAULT_SPACE, 4, seed=35)  # what `battlab electrode doe --n 4 --seed 35` makes
    cli_kwargs = {"settings": ProcessSettings(material="NMC811"), "c_rates": (0.5, 2.0)}
    ck = tmp_path / "ck"
    killed: dict = {}

    def kill_the_first_busy_worker(key: str, row: dict) -> None:
        ev = Checkpoint(ck).events()
        running = ev[(ev["event"] == "start") & ~ev["key"].isin(ev.loc[ev["event"] == "done", "key"])]
        if not killed and not running.empty:
            victim = running.sort_values("time").iloc[-1]
            os.kill(int(victim["pid"]), signal.SIGKILL)
            killed.update(pid=int(victim["pid"]), key=victim["key"])

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        table = run_designs(designs, scheduler=client, cache_dir=ck, progress=False,
                            callback=kill_the_first_busy_worker, **cli_kwargs)
    assert killed, "no worker was busy after the first design: the fault was never injected"
    keys = [design_key(d, **cli_kwargs) for d in check_designs(designs)]
    crashed = table[table["reason"].str.startswith(KILLED_REASON)]
    assert killed["key"] in {keys[i] for i in crashed.index}
    assert (crashed["status"] == "failed").all() and (table.drop(crashed.index)["status"] == "ok").all()
    pd.testing.assert_frame_equal(table[DESIGN], designs[DESIGN])  # nothing dropped
    assert Checkpoint(ck).done_keys() == set(keys) - {keys[i] for i in crashed.index}

    out = tmp_path / "doe.parquet"
    assert main(["electrode", "doe", "--n", "4", "--seed", "35", "--scheduler", "local", "--n-jobs", "1",
                 "--checkpoint", str(ck), "--out", str(out)]) == 0
    assert "4 designs, 0 failed" in capsys.readouterr().out
    done = _done(ck)
    assert done["key"].value_counts().to_dict() == {k: 1 for k in keys}  # only the crashed ones simulated again
    final = pd.read_parquet(out)
    assert (final["status"] == "ok").all()
    pd.testing.assert_frame_equal(final.drop(crashed.index)[COMPARED], table.drop(crashed.index)[COMPARED])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_closed_loop_rounds_run_on_the_cluster_of_use_scheduler() -> None:
    """Every simulation of a closed loop inside ``use_scheduler`` is a task on the cluster (one per design)."""
    from distributed import get_task_stream

    from battlab.electrode import closed_loop

    space = DEFAULT_SPACE | {"solid_content": 0.65, "active_weight_fraction": 0.95}
    with use_scheduler("local", n_workers=2) as client, get_task_stream(client) as stream:
        res = closed_loop(space=space, constraints={"rate_capability": (0.8, None)}, n_initial=4, batch_size=2,
                          max_rounds=1, patience=5, seed=0, verbose=False, pso_params={"pop_size": 10, "n_gen": 5},
                          surrogate_params={"hidden_layer_sizes": (8,), "max_iter": 100})
        workers = set(client.scheduler_info()["workers"])
    tasks = [t for t in stream.data if str(t["key"]).startswith("simulate-")]
    assert list(res.history["n_sim_calls"]) == [4, 6] and len(res.data) == 6
    assert len(tasks) == 6 and {t["worker"] for t in tasks} <= workers
    assert (res.data["status"] == "ok").all()
