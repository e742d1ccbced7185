"""The workflow as one papermill pipeline: each numbered notebook is a step.

A step writes its key figures and output files into ``<run>/<step>/step.json`` (with
:func:`save_step`); the pipeline passes those outputs to later steps as notebook parameters and
gathers every step's figures into ``<run>/summary.json``.

Example
-------
>>> from battlab.pipeline import STEPS
>>> [s.name for s in STEPS]
['01_curate', '02_featurize', '03_tune', '04_explain', '05_electrode_optimization']
>>> summary = run_pipeline("runs/latest", quick=True)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import platform
import shutil
import time
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

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"


STEPS: tuple[Step, ...] = (
    Step("01_curate", parameters={"dataset": "exp_formation_enthalpy"}),
    Step("02_featurize", inputs={"curated": "01_curate:curated", "report": "01_curate:report"}),
    Step("03_tune", inputs={"features": "02_featurize:features", "feature_info": "02_featurize:feature_info",
                            "target": "02_featurize:target"},
         parameters={"n_trials": 25, "timeout": 300},
         quick={"n_trials": 4, "models": ["ridge", "knn"], "timeout": 60}),
    Step("04_explain", inputs={"model": "03_tune:model", "features": "03_tune:features",
                               "feature_info": "03_tune:feature_info", "target": "03_tune:target"},
         parameters={"max_rows": 2000, "interaction_rows": 20, "max_seconds": 120},
         quick={"max_rows": 200, "interaction_rows": 10, "max_seconds": 30}),
    Step("05_electrode_optimization", quick={"budget": 1, "batch_size": 2}),
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


def _params_for(step: Step, quick: bool, overrides: dict[str, Any], outputs: dict[str, dict[str, str]],
                step_dir: Path) -> dict[str, Any]:
    params = dict(step.parameters)
    if quick:
        params.update(step.quick)
    for param, ref in step.inputs.items():
        src, key = ref.split(":")
        params[param] = outputs[src][key]
    for name, value in overrides.items():
        target, _, pname = name.rpartition(".")
        if not target or target == step.name:
            params[pname] = value
    params["out_dir"] = str(step_dir)
    return params


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
) -> dict[str, Any]:
    """Run the notebooks with papermill into ``out_dir`` and write ``out_dir/summary.json``.

    Parameters
    ----------
    parameters
        ``{name: value}`` passed to every step that has that parameter, or ``{"step.name": value}``
        for one step only (e.g. ``{"01_curate.dataset": "obelix"}``).
    quick
        Use each step's small parameters (tests, demos).
    steps, notebooks_dir
        The steps to run and where their notebooks are (default: :data:`STEPS` in ``notebooks/``).
    resume
        Keep the steps that an earlier run in ``out_dir`` finished with the same parameters, and start
        at the first step that failed, changed or never ran (every later step runs again).

    Raises
    ------
    StepFailed
        A notebook raised; the executed notebook is kept in ``out_dir`` and the message names the
        step, the error and the cell.
    """
    import papermill as pm  # imported here: slow, and only the pipeline needs it

    steps = STEPS if steps is None else steps
    notebooks_dir = Path(NOTEBOOKS_DIR if notebooks_dir is None else notebooks_dir)
    out = Path(out_dir).resolve()  # notebooks run in notebooks_dir: pass them absolute paths
    out.mkdir(parents=True, exist_ok=True)
    overrides = dict(parameters or {})
    summary: dict[str, Any] = {
        "battlab_version": __version__,
        "python": platform.python_version(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "parameters": overrides,
        "steps": {},
    }
    previous = _previous_steps(out) if resume else {}
    outputs: dict[str, dict[str, str]] = {}
    for step in steps:
        step_dir = out / step.name
        params = _params_for(step, quick, overrides, outputs, step_dir)
        done = previous.pop(step.name, None)
        if done and done.get("status") == "ok" and done.get("parameters") == params and \
                (step_dir / "step.json").is_file():
            outputs[step.name] = done["outputs"]
            summary["steps"][step.name] = {**done, "resumed": True}
            continue
        previous = {}  # this step runs again, so every later one must too
        if step_dir.exists():
            shutil.rmtree(step_dir)  # stale outputs from an earlier run must not pass as this run's
        executed = out / step.notebook
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(notebooks_dir / step.notebook), str(executed), parameters=params,
                                cwd=str(notebooks_dir), progress_bar=False, log_output=log_output,
                                kernel_name="python3")
        except pm.PapermillExecutionError as exc:
            summary["steps"][step.name] = {"status": "failed", "error": f"{exc.ename}: {exc.evalue}"}
            _write_summary(out, summary)
            raise StepFailed(f"step {step.name} failed (see {executed}):\n{_error_cell(exc)}") from exc
        record = json.loads((step_dir / "step.json").read_text())
        outputs[step.name] = record["outputs"]
        summary["steps"][step.name] = {"status": "ok", "seconds": round(time.perf_counter() - t0, 2),
                                       "notebook": str(executed), "parameters": params, **record}
        _write_summary(out, summary)
    return summary


def _previous_steps(out: Path) -> dict[str, dict[str, Any]]:
    path = out / "summary.json"
    return dict(json.loads(path.read_text()).get("steps", {})) if path.is_file() else {}


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
