"""Voilà apps for experimentalists: one thin notebook per app in ``widgets/``, served by ``battlab app``.

Each app loads the default model and data from ``runs/latest`` (what ``make run`` wrote) when they are
there, and otherwise builds a small one quickly; it says which (:func:`default_tune_dir`).

Example
-------
>>> sorted(APPS)
['curation', 'cycle_life', 'design', 'electrode_designer', 'next_experiments', 'predictor', 'shap_explorer', 'soh']
>>> app_path("curation").name
'curation.ipynb'
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from battlab.errors import BattlabError

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
APPS_DIR = ROOT / "widgets"
RUNS_DIR = Path(os.environ.get("BATTLAB_RUNS", ROOT / "runs")).resolve()

#: App name -> what it is for.
APPS = {
    "curation": "upload a messy table, curate it, see the report and the quarantine",
    "predictor": "type a formula, get the predicted property with its interval and a short reason",
    "shap_explorer": "why the model predicts what it predicts: dependence plots and waterfalls",
    "electrode_designer": "electrode process parameters -> predicted performance, and PSO optimization",
    "cycle_life": "upload a cycler file (or pick a Severson cell): predicted cycle life, its interval and why",
    "next_experiments": "upload the experiments done and candidates (or a process window): the next batch to run, "
                        "ranked, with predicted value, uncertainty and the SHAP reason; CSV download",
    "soh": "upload a pulse test of retired cells (or use the example): SOH with its interval, the pulses that drove "
           "it, and the reuse / repurpose / recycle sorting with threshold sliders",
    "design": "new materials: parent formulas or CIFs (or the shipped prototypes) -> candidates by substitution, "
              "ranked by predicted voltage, energy and a stability proxy with intervals, what to compute next; CSV "
              "download",
}


def app_path(name: str) -> Path:
    """The notebook of app ``name``."""
    if name not in APPS:
        raise BattlabError(f"unknown app {name!r}; apps are {sorted(APPS)}")
    return APPS_DIR / f"{name}.ipynb"


def latest_step(step: str, required: tuple[str, ...]) -> Path | None:
    """``runs/latest/<step>`` when it holds every ``required`` file, else None."""
    folder = RUNS_DIR / "latest" / step
    return folder if all((folder / f).is_file() for f in required) else None


#: A progress callback: ``progress(fraction_done, text)``.
Progress = Callable[[float, str], None]


def _quiet(fraction: float, text: str) -> None:
    return None


def default_tune_dir(workdir: str | Path | None = None, *, n_trials: int = 1,
                     progress: Progress | None = None, use_latest: bool = True) -> tuple[Path, str]:
    """A tuned-model folder for the apps and where it came from.

    ``runs/latest/03_tune`` (from ``make run``) when present; otherwise a small LightGBM model on the
    embedded formation-enthalpy data, built once with the pipeline's own steps (curate, featurize with the
    Magpie preset and pruning, tune a few trials: about a minute on 2 cores) and kept in ``workdir``
    (default ``runs/app-default``) for the next start. ``progress(fraction, text)`` hears about every
    stage of a build (an app shows it: :meth:`battlab.widgets.status.AppStatus.update`).

    Why a build with progress and not a model shipped inside the package: a pickled scikit-learn/LightGBM
    model only loads with the library versions that wrote it (``make test-latest`` runs the newest
    releases), a shipped binary must be rebuilt and re-reviewed at every model change, and unpickling is
    code execution; a build from the package's own data and steps is always consistent with this battlab.
    """
    found = latest_step("03_tune", ("model.joblib", "model_card.json")) if use_latest else None
    if found:
        return found, f"model from the last pipeline run ({found})"
    out = Path(workdir) if workdir else RUNS_DIR / "app-default"
    if (out / "model" / "model_card.json").is_file():
        return out / "model", f"small default model built earlier ({out})"
    from battlab import steps

    say = progress or _quiet
    say(0.0, "curating the embedded formation-enthalpy data")
    curated = steps.curate(dataset="exp_formation_enthalpy")
    say(0.1, f"featurizing {len(curated.table)} formulas (Magpie)")
    fs = steps.featurize(curated, preset="magpie")
    fs.save(out / "features")

    def on_trial(study: object, trial: object) -> None:
        done = len(study.trials)  # type: ignore[attr-defined]
        say(0.2 + 0.5 * done / n_trials, f"tuning LightGBM: trial {done} of {n_trials} done")

    say(0.2, f"tuning LightGBM: {n_trials} trials of 5-fold cross-validation")
    tuned = steps.tune(fs, models=("lgbm",), n_trials=n_trials, storage="sqlite:///:memory:", progress=False,
                       callbacks=[on_trial])
    say(0.9, "saving the model")
    tuned.save(out / "model")
    say(1.0, "model ready")
    return out / "model", (f"small default model built now: LightGBM on Magpie features of {curated.source} "
                           f"({out / 'model'})")


#: The SHAP explorer's default: the small default model (:func:`default_tune_dir`) explained on 300 rows, shipped
#: as data (parquet and JSON: no pickle, nothing version-bound), so a cold app has nothing to build. Made by
#: :func:`write_default_explanation`; a test checks that it is what that build gives today.
SHIPPED_EXPLANATION = Path(__file__).resolve().parent / "widgets" / "examples" / "default_explanation"


def default_explanation_dir(workdir: str | Path | None = None, *, max_rows: int = 500,
                            progress: Progress | None = None) -> tuple[Path, str]:
    """An explanation folder for the SHAP explorer and where it came from: ``runs/latest/04_explain`` when
    present; else an explanation made earlier in ``workdir`` (default ``runs/app-default/explain``); else, when
    the apps use the small default model (no ``runs/latest/03_tune``), the one shipped with battlab
    (:data:`SHIPPED_EXPLANATION`); else the apps' model (:func:`default_tune_dir`) explained now on the table it
    was tuned on, cached in ``workdir``."""
    found = latest_step("04_explain", ("shap_values.parquet", "explanation.json"))
    if found:
        return found, f"explanation from the last pipeline run ({found})"
    out = Path(workdir) if workdir else RUNS_DIR / "app-default" / "explain"
    if (out / "explanation.json").is_file():
        return out, f"explanation of the default model, made earlier ({out})"
    pipeline_model = latest_step("03_tune", ("model.joblib", "model_card.json"))
    if pipeline_model is None and (SHIPPED_EXPLANATION / "explanation.json").is_file():
        return SHIPPED_EXPLANATION, ("explanation of the small default model (LightGBM on Magpie features of the "
                                     "embedded formation enthalpies), shipped with battlab; `make run` makes yours")
    model_dir, source = default_tune_dir(progress=progress)
    ex = _explain_default_model(model_dir, out, max_rows, progress)
    return out, f"{source}; explained now on {len(ex.values)} rows"


def _explain_default_model(model_dir: Path, out: Path, max_rows: int, progress: Progress | None) -> Any:
    from battlab import steps

    tuned = steps.TunedModel.load(model_dir)  # trusted: the app's own model folder
    for folder in (model_dir.parent / "features", model_dir.parent / "02_featurize"):
        if (folder / "featureset.json").is_file():
            data: steps.FeatureSet | object = steps.FeatureSet.load(folder)
            break
    else:
        data = steps.curate(dataset="exp_formation_enthalpy").table
    (progress or _quiet)(0.95, f"explaining up to {max_rows} rows")
    ex = steps.explain(tuned, data, max_rows=max_rows)  # type: ignore[arg-type]
    ex.save(out)
    return ex


def write_default_explanation(out: str | Path = SHIPPED_EXPLANATION, *, max_rows: int = 300) -> Path:
    """Build the small default model in a temporary folder (never ``runs/latest``) and write its explanation
    to ``out``: how :data:`SHIPPED_EXPLANATION` is made
    (``python -c "from battlab.apps import write_default_explanation; write_default_explanation()"``)."""
    import shutil
    import tempfile

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, _ = default_tune_dir(Path(tmp) / "app-default", use_latest=False)
        _explain_default_model(model_dir, Path(tmp) / "explain", max_rows, None)
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(Path(tmp) / "explain", out)
    return out


def _save_into_place(model: Any, out: Path) -> None:
    """``model.save`` into a private folder beside ``out``, renamed into place: two kernels never read a half-written
    model, and when another kernel finished first its model is kept."""
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    model.save(tmp)
    try:
        tmp.rename(out)
    except OSError:  # another kernel finished first: keep its model
        shutil.rmtree(tmp, ignore_errors=True)


def default_cycle_life_model(workdir: str | Path | None = None, *, n_trials: int = 8,
                             progress: Progress | None = None) -> tuple[Path, str]:
    """A cycle-life model folder for the ``cycle_life`` app (:class:`battlab.cycling.models.CycleLifeModel`)
    and where it came from.

    ``runs/latest/06_cycle_life`` (notebook 06 of ``make run``) when present; otherwise a small model built once
    from the severson2019 subset shipped with battlab (no network): the default of
    :mod:`battlab.cycling.models` (``DEFAULT_FEATURE_SET``, ``DEFAULT_MODELS``: ridge on the ``relative`` early-life
    features that benchmarks/cycle_life.py chose on the training cells; they need cycles 2-100) of the 41
    training cells, ``n_trials`` optuna trials (a few seconds on 2 cores), kept in ``workdir``
    (default ``runs/app-default/cycle_life``) for the next start. Built in a private folder and renamed into
    place, so two kernels starting at once never read a half-written model. Why built and not shipped: see
    :func:`default_tune_dir`. It carries no fade-curve model (``trajectory.joblib``): the subset's capacities stop
    at cycle 100, so there is nothing after the first cycles to learn a fade curve from; the app then draws the
    predicted life on the 0.88 Ah (80 % of 1.1 Ah) threshold line and says so.

    Example
    -------
    >>> import tempfile
    >>> folder, source = default_cycle_life_model(Path(tempfile.mkdtemp()) / "cl", n_trials=2)  # doctest: +SKIP
    >>> source.startswith(("model from the last pipeline run", "small default model built now"))  # doctest: +SKIP
    True
    """
    found = latest_step("06_cycle_life", ("cycle_life_model.joblib", "model_card.json"))
    if found:
        return found, f"cycle-life model from the last pipeline run ({found})"
    out = Path(workdir) if workdir else RUNS_DIR / "app-default" / "cycle_life"
    if (out / "model_card.json").is_file():  # written after the model itself
        return out, f"small default cycle-life model built earlier ({out})"
    from battlab.cycling.curves import load_severson_subset
    from battlab.cycling.models import DEFAULT_FEATURE_SET, DEFAULT_MODELS, fit_cycle_life

    say = progress or _quiet
    say(0.0, "reading the severson2019 subset shipped with battlab")
    curves = load_severson_subset()
    train = curves.select(curves.cells["split"].to_numpy() == "train")
    say(0.2, f"tuning ridge and elastic net on the {len(train)} training cells ({n_trials} trials of 5-fold CV)")
    model = fit_cycle_life(train, n_cycles=100, components=0, feature_set=DEFAULT_FEATURE_SET,
                           models=DEFAULT_MODELS, n_trials=n_trials, progress=False,
                           label_settings={"nominal_Ah": 1.1, "reference": "nominal", "fraction": 0.8})
    say(0.9, "saving the cycle-life model")
    _save_into_place(model, out)
    say(1.0, "cycle-life model ready")
    return out, (f"small default cycle-life model built now: {model.card['model']['name']} on the early-life "
                 f"features of the {len(train)} training cells of the shipped severson2019 subset ({out})")


def default_soh_model(workdir: str | Path | None = None, *, n_trials: int = 2,
                      progress: Progress | None = None) -> tuple[Path, str]:
    """A SOH model folder for the ``soh`` app (:class:`battlab.health.SohModel`) and where it came from.

    ``runs/latest/08_soh`` (notebook 08 of ``make run``) when present; otherwise a small model built once, offline,
    on the synthetic example pulse table (:func:`battlab.health.example_pulse_table`, seed 0: ridge, ``n_trials``
    trials per feature set, a few seconds), kept in ``workdir`` (default ``runs/app-default/soh``) for the next
    start; built in a private folder and renamed into place (two kernels never read a half-written model). The
    source says when the model was fitted on synthetic cells. Why built and not shipped: see
    :func:`default_tune_dir`.
    """
    found = latest_step("08_soh", ("soh_model.joblib", "model_card.json"))
    if found:
        return found, f"SOH model from the last pipeline run ({found})"
    out = Path(workdir) if workdir else RUNS_DIR / "app-default" / "soh"
    if (out / "model_card.json").is_file():  # written after the model itself
        return out, f"small default SOH model built earlier on synthetic pulse tests ({out})"
    from battlab.health import example_pulse_table, fit_soh

    say = progress or _quiet
    say(0.0, "building the synthetic example pulse table")
    table = example_pulse_table(seed=0)
    say(0.2, f"fitting ridge on {table['cell_id'].nunique()} synthetic cells ({n_trials} trials per feature set, "
             "grouped CV)")
    model = fit_soh(table, models=("ridge",), n_trials=n_trials, seed=0)
    say(0.9, "saving the SOH model")
    _save_into_place(model, out)
    say(1.0, "SOH model ready")
    return out, (f"small default SOH model built now on SYNTHETIC pulse tests ({table['cell_id'].nunique()} "
                 f"equivalent-circuit cells; `make run` fits one on PulseBat when it is cached) ({out})")


def default_voltage_model(workdir: str | Path | None = None, *, ions: tuple[str, ...] = ("Li", "Na", "K"),
                          n_trials: int = 1, progress: Progress | None = None) -> tuple[Path | None, str]:
    """A composition model of the average voltage of insertion electrodes for the ``design`` app, and where it came
    from; ``(None, why)`` when there is none.

    Built once (kept in ``workdir``, default ``runs/app-default/voltage``; built in a private folder and renamed
    into place) with the pipeline's own steps, as ``battlab design screen``'s tests build one: the Materials
    Project's insertion electrodes of ``ions`` (:func:`battlab.design.voltage.electrode_table`: their discharged
    formula and DFT average voltage), curated, featurized with the Magpie preset, LightGBM tuned with ``n_trials``
    trials (about half a minute on 2 cores). The electrodes come from battlab's data cache or, with ``MP_API_KEY``,
    from the Materials Project; without either there is no voltage model and the reason says how to get one.
    """
    out = Path(workdir) if workdir else RUNS_DIR / "app-default" / "voltage"
    if (out / "model_card.json").is_file():  # written after the model itself
        return out, f"voltage model built earlier on the Materials Project's insertion electrodes ({out})"
    from battlab.errors import DatasetError

    say = progress or _quiet
    say(0.0, f"reading the Materials Project's insertion electrodes ({', '.join(ions)})")
    try:
        table = voltage_known(ions)
    except DatasetError as exc:
        import re

        first = re.sub(r"\s*\([^()]*/[^()]*\)", "", str(exc).split(": set ")[0].split(". ")[0]).rstrip(".")
        return None, (f"no voltage model ({first}): candidates are ranked by the stability proxy; set MP_API_KEY "
                      "(a free Materials Project key) to build one")
    from battlab import steps

    say(0.2, f"featurizing {len(table)} discharged electrode formulas (Magpie)")
    fs = steps.featurize(steps.curate(table[["formula", "average_voltage"]], target="average_voltage"),
                         preset="magpie")
    say(0.5, f"tuning LightGBM on the average voltage ({n_trials} trial(s) of 5-fold cross-validation)")
    tuned = steps.tune(fs, models=("lgbm",), n_trials=n_trials, storage="sqlite:///:memory:", progress=False)
    say(0.9, "saving the voltage model")
    _save_into_place(tuned, out)
    say(1.0, "voltage model ready")
    return out, (f"voltage model built now: LightGBM on Magpie features of {len(table)} Materials Project insertion "
                 f"electrodes ({', '.join(ions)}) ({out})")


def voltage_known(ions: tuple[str, ...] = ("Li", "Na", "K")) -> pd.DataFrame:
    """The Materials Project's insertion electrodes as known results for planning: ``formula`` (discharged),
    ``working_ion``, ``average_voltage`` (V vs the metal); raises :class:`~battlab.errors.DatasetError` when they
    are neither cached nor reachable."""
    from battlab.design.voltage import electrode_table, load_electrodes

    table, _ = electrode_table(load_electrodes(ions))
    return (table[["formula_discharge", "working_ion", "average_voltage"]]
            .rename(columns={"formula_discharge": "formula"}).reset_index(drop=True))


@dataclass
class DesignSetup:
    """What the ``design`` app screens candidates with: a stability-proxy model (the apps' default composition
    model, :func:`default_tune_dir`), an optional voltage model (:func:`default_voltage_model`), the known results
    each plans from, and where they came from."""

    stability: Any  # battlab.steps.TunedModel
    stability_source: str
    stability_known: pd.DataFrame | None = None
    voltage: Any = None  # battlab.steps.TunedModel or None
    voltage_source: str = ""
    voltage_known: pd.DataFrame | None = None

    def describe(self) -> str:
        """One line per model: what it predicts and where it came from."""
        lines = [f"stability proxy: {self.stability.model_target} ({self.stability_source})"]
        lines.append(f"voltage: {self.voltage_source}" if self.voltage is not None else self.voltage_source)
        return "\n".join(line for line in lines if line)

    def screen(self, candidates: Any, *, plan_top: int = 30, batch_size: int = 5, seed: int = 0) -> Any:
        """:func:`battlab.design.funnel.screen` with this setup: with a voltage model, ranked by the energy proxy
        (voltage x capacity) with the stability proxy beside, planned on the known electrodes of the candidates'
        working ion; without one, ranked by the stability proxy (lower: more stable), planned on its known table."""
        from battlab.design.funnel import _candidate_table, screen

        table = _candidate_table(candidates)
        ion = str(table["working_ion"].iloc[0]) if "working_ion" in table and len(table) else "Li"
        if self.voltage is not None:
            known = self.voltage_known
            if known is not None:
                known = known.loc[known["working_ion"] == ion, ["formula", "average_voltage"]].reset_index(drop=True)
                known = known if len(known) >= 5 else None
            return screen(candidates, self.voltage, rank_by="energy", maximize=True, working_ion=ion, done=known,
                          target="average_voltage" if known is not None else None, plan_top=plan_top,
                          batch_size=batch_size, seed=seed, stability=self.stability)
        known = self.stability_known
        return screen(candidates, self.stability, rank_by="prediction", maximize=False, working_ion=ion, done=known,
                      target=self.stability.model_target if known is not None else None, plan_top=plan_top,
                      batch_size=batch_size, seed=seed)


def default_design_setup(*, progress: Progress | None = None, voltage: bool = True) -> DesignSetup:
    """The ``design`` app's models, loaded once: the apps' default composition model (:func:`default_tune_dir`, a
    formation-enthalpy model: the stability proxy) with the table it was curated from, and, with ``voltage``, the
    voltage model of :func:`default_voltage_model` when the electrodes are available."""
    from battlab import steps

    say = progress or _quiet
    model_dir, source = default_tune_dir(progress=lambda f, t: say(0.6 * f, t))
    stability = steps.TunedModel.load(model_dir)  # trusted: the apps' own model folder
    say(0.6, "reading the known results the plan starts from")
    known, cs = None, None
    if model_dir == latest_step("03_tune", ("model.joblib", "model_card.json")):  # the pipeline's: its curated table
        curated = latest_step("01_curate", ("curated.parquet",))
        cs = steps.CuratedSet.load(curated / "curated.parquet") if curated is not None else None
    else:  # the small default model: the embedded data it was built on
        cs = steps.curate(dataset="exp_formation_enthalpy")
    if cs is not None and cs.formula_column and cs.target == stability.model_target:
        known = cs.table[[cs.formula_column, cs.target]].rename(columns={cs.formula_column: "formula"})
    setup = DesignSetup(stability, source, known)
    if voltage:
        vdir, vsource = default_voltage_model(progress=lambda f, t: say(0.6 + 0.4 * f, t))
        setup.voltage_source = vsource
        if vdir is not None:
            setup.voltage = steps.TunedModel.load(vdir)
            setup.voltage_known = voltage_known()
    say(1.0, "models ready")
    return setup


def voila_command(target: str | Path, port: int = 8866, *, open_browser: bool = False) -> list[str]:
    """The Voilà command line that serves ``target`` (an app notebook or the app folder), as ``battlab app`` runs it.

    Progressive rendering: each visitor's page shows Voilà's progress at once, then every cell's output as the
    cell finishes, so an app's first cell (an :class:`~battlab.widgets.status.AppStatus`) says what it is doing
    while the heavy imports and the model load run. (Voilà's pre-heated kernels, the alternative, render
    faster for the one visitor a kernel is waiting for and show a blank page to everyone else.)

    >>> voila_command("widgets/predictor.ipynb", 9000)[4:7]
    ['--port=9000', '--Voila.ip=127.0.0.1', '--progressive_rendering=True']
    """
    cmd = [sys.executable, "-m", "voila", str(target), f"--port={port}", "--Voila.ip=127.0.0.1",
           "--progressive_rendering=True"]
    if not open_browser:
        cmd.append("--no-browser")
    return cmd


def serve(name: str | None = None, port: int = 8866, *, open_browser: bool = False) -> int:
    """Serve one app (or, with no name, the app folder) with Voilà; returns Voilà's exit code.

    Ctrl-C or a SIGTERM of this process stops the server and every kernel it started (Voilà's kernels run in
    sessions of their own, and a server killed in the middle of a request leaves them behind): nothing of the
    app keeps running after ``battlab app`` returns."""
    import signal

    target = app_path(name) if name else APPS_DIR
    env = {**os.environ, "PYBAMM_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(voila_command(target, port, open_browser=open_browser), cwd=APPS_DIR, env=env)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_process_tree(server.pid)


def stop_process_tree(pid: int, timeout: float = 10.0) -> None:
    """Terminate process ``pid`` and all its descendants (SIGTERM, then SIGKILL for what is left after
    ``timeout`` seconds)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)
