"""The workflow as one papermill pipeline: each numbered notebook is a step.

A step writes its key figures and output files into ``<run>/<step>/step.json`` (with
:func:`save_step`); the pipeline passes those outputs to later steps as notebook parameters and
gathers every step's figures into ``<run>/summary.json``.

Example
-------
>>> from battlab.pipeline import STEPS
>>> [s.name for s in STEPS][-3:]
['07_plan', '08_soh', '09_design']
>>> summary = run_pipeline("runs/latest", quick=True)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from battlab import __version__
from battlab.errors import BattlabError

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"


@dataclass(frozen=True)
class Step:
    """One notebook of the pipeline.

    ``inputs`` maps a parameter of this notebook to ``"step:output"`` of an earlier step, so the
    earlier step's output file becomes this notebook's input.
    """

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    #: What the step does, in a few words (the line ``battlab run`` prints as it starts).
    title: str = ""
    #: The figure of the step's summary shown in the final table of ``battlab run``: a name, or a pattern
    #: (``fnmatch``, e.g. ``ef_at_*`` when the name carries a parameter); when no figure matches, the
    #: summary's first number is shown (see :func:`key_figure`).
    key: str = ""

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"


STEPS: tuple[Step, ...] = (
    Step("01_curate", parameters={"dataset": "exp_formation_enthalpy"}, title="curate the table: units, formulas, "
         "duplicates, quarantine", key="n_kept"),
    Step("02_featurize", inputs={"curated": "01_curate:curated", "report": "01_curate:report"},
         title="featurize compositions (Magpie and battery descriptors), prune", key="n_kept_features"),
    Step("03_tune", inputs={"features": "02_featurize:features", "feature_info": "02_featurize:feature_info",
                            "target": "02_featurize:target"},
         parameters={"n_trials": 25},  # a budget in trials: the same model on an idle and a loaded machine
         quick={"n_trials": 4, "models": ["ridge", "knn"]},
         title="tune the model zoo with optuna on a grouped split, conformal intervals", key="mae_mean"),
    Step("04_explain", inputs={"model": "03_tune:model", "features": "03_tune:features",
                               "feature_info": "03_tune:feature_info", "target": "03_tune:target"},
         parameters={"max_rows": 2000, "interaction_rows": 20, "max_seconds": 120},
         quick={"max_rows": 200, "interaction_rows": 10, "max_seconds": 30},
         title="explain the model with SHAP", key="top_feature"),
    Step("05_electrode_optimization", quick={"budget": 1, "batch_size": 2},
         title="optimize an electrode on the PyBaMM virtual line (surrogate, PSO, NSGA-II, closed loop)",
         key="best_simulated"),
    Step("06_cycle_life", parameters={"models": ["ridge"], "n_trials": 20},  # the benchmark's choice
         quick={"models": ["ridge"], "n_trials": 4},
         title="cycle life from early cycles, labels, trajectories, your own cells", key="primary_test_rmse"),
    Step("07_plan", quick={"budget": 30, "n_seeds": 1}, title="plan the next experiments (retrospective screening)",
         key="ef_at_*"),  # ef_at_<budget>: 30 in a quick run, 60 in a full one
    Step("08_soh", parameters={"models": ["ridge", "svr"], "n_trials": 12},  # about 3 min on PulseBat (docs/health.md)
         quick={"models": ["ridge"], "n_trials": 2},
         title="state of health from one pulse test, and the reuse / repurpose / recycle sorting", key="test_mape"),
    Step("09_design", inputs={"model": "03_tune:model", "curated": "01_curate:curated"},
         quick={"top": 5, "plan_top": 15, "batch_size": 3},
         title="new materials: candidates by substitution, screened by the model, what to compute next",
         key="n_candidates"),
)


class StepFailed(BattlabError):
    """A notebook of the pipeline raised; the message shows the failing cell's error."""


def save_step(out_dir: str | Path, summary: dict[str, Any], outputs: dict[str, str | Path]) -> Path:
    """Record a step's key figures and output files (called at the end of each notebook).

    Example
    -------
    >>> import tempfile
    >>> p = save_step(tempfile.mkdtemp(), {"n_kept": 3}, {"curated": "curated.parquet"})
    >>> json.loads(p.read_text())["summary"]["n_kept"]
    3
    """
    import resource

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # the notebook's kernel is this process: its peak memory, for the 2 GB of a Binder session
    summary = {**summary, "kernel_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    path = out / "step.json"
    path.write_text(json.dumps({"summary": summary, "outputs": {k: str(v) for k, v in outputs.items()}},
                               indent=2, default=_json_default))
    return path


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return str(obj)


class ParameterError(BattlabError):
    """A ``-p`` parameter that no step declares, or that would reach no step (``battlab run`` exits 2)."""


def declared_parameters(step: Step, notebooks_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The parameters a step's notebook declares in its ``parameters`` cell (papermill's inspection).

    Returns ``{name: {"name", "inferred_type_name", "default", "help"}}``; empty when the notebook has no
    cell tagged ``parameters``.

    Example
    -------
    >>> params = declared_parameters(STEPS[0])
    >>> "dataset" in params and "out_dir" in params
    True
    """
    import papermill as pm

    path = Path(NOTEBOOKS_DIR if notebooks_dir is None else notebooks_dir) / step.notebook
    if not path.is_file():
        raise ParameterError(f"step {step.name}: its notebook {path} does not exist")
    return dict(pm.inspect_notebook(str(path)))


@dataclass(frozen=True)
class ParameterPlan:
    """Where each ``-p`` parameter goes: :func:`resolve_parameters`' answer.

    ``per_step`` maps a step to the overrides it receives; ``reaches`` maps each parameter as the user
    wrote it to the steps it reaches; ``notes`` says, for a bare name, which steps that declare it keep
    the value an earlier step produced (and how to override that).
    """

    per_step: dict[str, dict[str, Any]]
    reaches: dict[str, list[str]]
    notes: list[str]


def resolve_parameters(
    parameters: dict[str, Any] | None,
    steps: tuple[Step, ...] | list[Step] | None = None,
    notebooks_dir: str | Path | None = None,
    declared: dict[str, dict[str, Any]] | None = None,
) -> ParameterPlan:
    """Route ``-p`` parameters to steps, honestly.

    A bare ``NAME`` reaches every step whose notebook declares ``NAME``, except a step that receives
    ``NAME`` from an earlier step (its ``inputs``): the earlier step's output wins there, so that e.g.
    the log10 target that 02_featurize derives reaches 03_tune even with ``-p target RAW_COLUMN`` (which
    goes to 01_curate). ``STEP.NAME`` reaches that step only, and overrides an input too.

    Parameters
    ----------
    parameters
        ``{name: value}`` or ``{"step.name": value}``, as ``battlab run -p`` gives them.
    steps, notebooks_dir
        The pipeline (default: :data:`STEPS` in ``notebooks/``).
    declared
        ``{step: declared names}`` instead of inspecting the notebooks (tests).

    Raises
    ------
    ParameterError
        A name no step declares, a ``STEP.NAME`` whose step does not declare it or does not exist,
        ``out_dir`` (the pipeline sets it), or a bare name that every declaring step gets from an
        earlier step. The message lists close matches and what the step declares.

    Example
    -------
    >>> plan = resolve_parameters({"target": "sigma", "03_tune.n_trials": 5})
    >>> plan.per_step["01_curate"], plan.per_step["03_tune"]
    ({'target': 'sigma'}, {'n_trials': 5})
    >>> plan.reaches["target"]
    ['01_curate']
    >>> resolve_parameters({"max_rowz": 100})
    Traceback (most recent call last):
    ...
    battlab.pipeline.ParameterError: -p max_rowz: no step declares it; did you mean max_rows (04_explain)?
    """
    import difflib

    steps = tuple(STEPS if steps is None else steps)
    per_step: dict[str, dict[str, Any]] = {s.name: {} for s in steps}
    reaches: dict[str, list[str]] = {}
    notes: list[str] = []
    if not parameters:
        return ParameterPlan(per_step, reaches, notes)
    names = {s.name: set(declared[s.name] if declared is not None else declared_parameters(s, notebooks_dir))
             for s in steps}
    by_step = {s.name: s for s in steps}
    errors = []
    for key, value in parameters.items():
        step_name, _, name = key.rpartition(".")
        if name == "out_dir":
            errors.append(f"-p {key}: out_dir is set by the pipeline for every step; use --out")
            continue
        if step_name:
            if step_name not in by_step:
                close = difflib.get_close_matches(step_name, list(by_step), n=3)
                errors.append(f"-p {key}: no step {step_name}"
                              + (f"; did you mean {', '.join(close)}?" if close else "")
                              + f" (steps: {', '.join(by_step)})")
            elif name not in names[step_name]:
                close = difflib.get_close_matches(name, sorted(names[step_name]), n=3)
                errors.append(f"-p {key}: {step_name} does not declare {name}"
                              + (f"; did you mean {', '.join(close)}?" if close else "")
                              + f" ({step_name} declares: {', '.join(sorted(names[step_name] - {'out_dir'}))})")
            else:
                per_step[step_name][name] = value
                reaches[key] = [step_name]
            continue
        declaring = [s for s in steps if name in names[s.name]]
        if not declaring:
            everywhere = sorted(set().union(*names.values()) - {"out_dir"})
            close = difflib.get_close_matches(name, everywhere, n=3)
            if close:
                hint = "; did you mean " + ", ".join(
                    f"{c} ({', '.join(s.name for s in steps if c in names[s.name])})" for c in close) + "?"
            else:
                hint = "; the steps declare: " + "; ".join(
                    f"{s}: {', '.join(sorted(n - {'out_dir'}))}" for s, n in names.items())
            errors.append(f"-p {key}: no step declares it{hint}")
            continue
        free = [s for s in declaring if name not in s.inputs]
        kept = [s for s in declaring if name in s.inputs]
        if kept:
            why = (", ".join(f"{s.name} gets it from {s.inputs[name]}" for s in kept)
                   + f"; to override that, name the step: -p {kept[0].name}.{name} VALUE")
            if not free:
                errors.append(f"-p {key}: reaches no step ({why})")
                continue
            notes.append(f"-p {key} reaches {', '.join(s.name for s in free)}, not {', '.join(s.name for s in kept)} "
                         f"({why})")
        for s in free:
            per_step[s.name][name] = value
        reaches[key] = [s.name for s in free]
    if errors:
        raise ParameterError("\n".join(errors))
    return ParameterPlan(per_step, reaches, notes)


def _params_for(step: Step, quick: bool, overrides: dict[str, Any], outputs: dict[str, dict[str, str]],
                step_dir: Path) -> dict[str, Any]:
    """A step's parameters: its own, its quick ones, its inputs, then the overrides routed to it."""
    params = dict(step.parameters)
    if quick:
        params.update(step.quick)
    for param, ref in step.inputs.items():
        src, key = ref.split(":")
        params[param] = outputs[src][key]
    params.update(overrides)  # only what resolve_parameters routed here: never a bare name over an input
    params["out_dir"] = str(step_dir)
    return params


def kernel_config(kernel_name: str = "python3") -> Any:
    """Kernel-manager settings for the pipeline's kernels: no plain-text TCP between us and the kernel.

    ipykernel >= 7 warns "Kernel is running over TCP without encryption" when it starts on TCP without
    CurveZMQ keys, which is what papermill's default kernel manager does (one warning per notebook).
    When pyzmq has CurveZMQ and the kernelspec declares ``supported_encryption: curve``, the kernel
    manager provisions keys (jupyter_client's ``transport_encryption``); otherwise, on POSIX, the
    kernel talks over local IPC sockets instead of TCP. Either way the warning's cause is gone.

    Returns a traitlets ``Config`` for ``papermill.execute_notebook(..., config=...)``.

    Example
    -------
    >>> dict(kernel_config().KernelManager) in ({"transport_encryption": "auto"}, {"transport": "ipc"})
    True
    """
    import os

    import zmq
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    config = Config()
    try:
        supported = KernelSpecManager().get_kernel_spec(kernel_name).metadata.get("supported_encryption") or []
    except NoSuchKernel:
        supported = []
    supported = [supported] if isinstance(supported, str) else list(supported)
    if (zmq.has("curve") and "curve" in {str(x).lower() for x in supported}
            and "transport_encryption" in KernelManager.class_trait_names()):
        config.KernelManager.transport_encryption = "auto"
    elif os.name == "posix":
        config.KernelManager.transport = "ipc"
    return config


def _error_cell(exc: Exception) -> str:
    lines = [f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', exc)}"]
    source = getattr(exc, "cell_source", None) or getattr(exc, "source", None)
    if source:
        lines.append("in the cell:\n    " + "\n    ".join(str(source).splitlines()[-8:]))
    return "\n".join(lines)


def run_pipeline(
    out_dir: str | Path = "runs/latest",
    *,
    quick: bool = False,
    parameters: dict[str, Any] | None = None,
    steps: tuple[Step, ...] | list[Step] | None = None,
    notebooks_dir: str | Path | None = None,
    log_output: bool = False,
    resume: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the notebooks with papermill into ``out_dir``; write ``out_dir/summary.json`` and ``out_dir/report.html``.

    The report (:func:`battlab.report.write_report`) shows the final table, each step's figures and a link to
    each executed notebook exported to HTML (``out_dir/html/``); it is written also when a step fails.

    Parameters
    ----------
    parameters
        ``{name: value}`` for every step whose notebook declares ``name``, except where an earlier
        step's output feeds that parameter (the output wins); ``{"step.name": value}`` for one step
        only, overriding an input too (e.g. ``{"01_curate.dataset": "obelix"}``,
        ``{"03_tune.target": "y"}``). See :func:`resolve_parameters`.
    quick
        Use each step's small parameters (tests, demos).
    steps, notebooks_dir
        The steps to run and where their notebooks are (default: :data:`STEPS` in ``notebooks/``).
    resume
        Keep the steps that an earlier run in ``out_dir`` finished with the same parameters, and start
        at the first step that failed, changed or never ran (every later step runs again).
    progress
        Called with a line as each step starts and ends (step, what it does, elapsed time); with it, and on a
        terminal, papermill's bar shows the cells of a long step. ``battlab run`` prints the lines.

    Raises
    ------
    ParameterError
        A parameter that no step declares (before any step runs).
    StepFailed
        A notebook raised; the executed notebook is kept in ``out_dir`` and the message names the
        step, the error and the cell.
    """
    import papermill as pm  # imported here: slow, and only the pipeline needs it

    steps = STEPS if steps is None else steps
    notebooks_dir = Path(NOTEBOOKS_DIR if notebooks_dir is None else notebooks_dir)
    overrides = dict(parameters or {})
    plan = resolve_parameters(overrides, steps, notebooks_dir)  # a typo fails here, before a step runs
    out = Path(out_dir).resolve()  # notebooks run in notebooks_dir: pass them absolute paths
    out.mkdir(parents=True, exist_ok=True)
    kernel = kernel_config("python3")
    summary: dict[str, Any] = {
        "battlab_version": __version__,
        "python": platform.python_version(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "parameters": overrides,
        "parameters_reach": plan.reaches,
        "parameter_notes": plan.notes,
        "steps": {},
    }
    previous = _previous_steps(out) if resume else {}
    shutil.rmtree(out / "html", ignore_errors=True)  # the report's notebook pages: made again at the end
    outputs: dict[str, dict[str, str]] = {}
    with _inline_figures():  # the kernels draw their figures inline
        say = progress or (lambda line: None)
        started = time.perf_counter()
        for i, step in enumerate(steps, 1):
            tag = f"[{i}/{len(steps)}] {step.name}"
            step_dir = out / step.name
            params = _params_for(step, quick, plan.per_step[step.name], outputs, step_dir)
            done = previous.pop(step.name, None)
            if done and done.get("status") == "ok" and done.get("parameters") == params and \
                    (step_dir / "step.json").is_file():
                outputs[step.name] = done["outputs"]
                summary["steps"][step.name] = {**done, "resumed": True}
                say(f"{tag}: kept from the earlier run")
                continue
            previous = {}  # this step runs again, so every later one must too
            if step_dir.exists():
                shutil.rmtree(step_dir)  # stale outputs from an earlier run must not pass as this run's
            executed = out / step.notebook
            t0 = time.perf_counter()
            say(f"{tag}: {step.title or 'running ' + step.notebook} ...")
            try:
                pm.execute_notebook(str(notebooks_dir / step.notebook), str(executed), parameters=params,
                                    cwd=str(notebooks_dir), progress_bar=progress is not None and sys.stderr.isatty(),
                                    log_output=log_output,
                                    kernel_name="python3", config=kernel)
            except pm.PapermillExecutionError as exc:
                summary["steps"][step.name] = {"status": "failed", "error": f"{exc.ename}: {exc.evalue}",
                                               "seconds": round(time.perf_counter() - t0, 2),
                                               "notebook": str(executed)}
                say(f"{tag}: FAILED after {time.perf_counter() - t0:.0f} s")
                _write_summary(out, summary)
                _write_report(out, summary, steps)
                raise StepFailed(f"step {step.name} failed (see {executed}):\n{_error_cell(exc)}") from exc
            record = json.loads((step_dir / "step.json").read_text())
            outputs[step.name] = record["outputs"]
            summary["steps"][step.name] = {"status": "ok", "seconds": round(time.perf_counter() - t0, 2),
                                           "notebook": str(executed), "parameters": params, **record}
            _write_summary(out, summary)
            say(f"{tag}: done in {time.perf_counter() - t0:.0f} s (elapsed {time.perf_counter() - started:.0f} s)")
        say("writing the report: report.html and each notebook as HTML ...")
        _write_report(out, summary, steps)
    return summary


def _write_report(out: Path, summary: dict[str, Any], steps: tuple[Step, ...] | list[Step]) -> None:
    """``out/report.html`` (:func:`battlab.report.write_report`); its path goes into the summary."""
    from battlab.report import write_report

    summary["report"] = str(write_report(out, summary, steps))
    _write_summary(out, summary)


@contextlib.contextmanager
def _inline_figures() -> Any:
    """Run the kernels without a non-interactive ``MPLBACKEND`` (e.g. ``Agg`` exported for scripts): it reaches
    papermill's kernels, replaces ipykernel's inline backend, and the executed notebooks then hold no figure."""
    import os

    saved = os.environ.get("MPLBACKEND")
    if saved is not None and not saved.startswith("module://matplotlib_inline"):
        del os.environ["MPLBACKEND"]
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved


def key_figure(figures: dict[str, Any], key: str = "") -> tuple[str, Any]:
    """The figure a step's ``key`` names in its summary: ``(name, value)``, or ``("", "")`` when it has none.

    ``key`` is a name or an ``fnmatch`` pattern (``ef_at_*``: the figure's name carries a parameter); when
    nothing matches, or no key is given, the summary's first number (timings and memory aside) stands in.

    Example
    -------
    >>> key_figure({"budget": 60, "ef_at_60": 2.8}, "ef_at_*")
    ('ef_at_60', 2.8)
    >>> key_figure({"dataset": "x", "n_kept": 5}, "renamed_figure")
    ('n_kept', 5)
    """
    import fnmatch

    if key in figures:
        return key, figures[key]
    if key:
        match = next((k for k in figures if fnmatch.fnmatchcase(k, key)), None)
        if match is not None:
            return match, figures[match]
    numbers = [k for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and "seconds" not in k and not k.endswith("_rss_mb")]
    return (numbers[0], figures[numbers[0]]) if numbers else ("", "")


def summary_table(summary: dict[str, Any], steps: tuple[Step, ...] | list[Step] | None = None) -> str:
    """The short final table of a run: step, its key figure, seconds (``battlab run`` prints it).

    Example
    -------
    >>> print(summary_table({"steps": {"01_curate": {"status": "ok", "seconds": 4.9,
    ...                                              "summary": {"n_kept": 2135}}}}))
    step       key figure     seconds
    01_curate  n_kept = 2135      4.9
    """
    keys = {s.name: s.key for s in (STEPS if steps is None else steps)}
    rows = [("step", "key figure", "seconds")]
    for name, record in summary["steps"].items():
        key, value = key_figure(record.get("summary", {}), keys.get(name, ""))
        value = f"{value:.4g}" if isinstance(value, float) else str(value)
        shown = "failed" if record.get("status") == "failed" else (f"{key} = {value}" if key else "")
        seconds = "kept" if record.get("resumed") else f"{record.get('seconds', 0):.1f}"
        rows.append((name, shown[:60], seconds))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}".rstrip() for a, b, c in rows)


def _previous_steps(out: Path) -> dict[str, dict[str, Any]]:
    path = out / "summary.json"
    return dict(json.loads(path.read_text()).get("steps", {})) if path.is_file() else {}


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
