"""Voilà apps for experimentalists: one thin notebook per app in ``widgets/``, served by ``battlab app``.

Each app loads the default model and data from ``runs/latest`` (what ``make run`` wrote) when they are
there, and otherwise builds a small one quickly; it says which (:func:`default_tune_dir`).

Example
-------
>>> sorted(APPS)
['curation', 'electrode_designer', 'predictor', 'shap_explorer']
>>> app_path("curation").name
'curation.ipynb'
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from battlab.errors import BattlabError

ROOT = Path(__file__).resolve().parents[1]
APPS_DIR = ROOT / "widgets"
RUNS_DIR = Path(os.environ.get("BATTLAB_RUNS", ROOT / "runs")).resolve()

#: App name -> what it is for.
APPS = {
    "curation": "upload a messy table, curate it, see the report and the quarantine",
    "predictor": "type a formula, get the predicted property with its interval and a short reason",
    "shap_explorer": "why the model predicts what it predicts: dependence plots and waterfalls",
    "electrode_designer": "electrode process parameters -> predicted performance, and PSO optimization",
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


def default_tune_dir(workdir: str | Path | None = None, *, n_trials: int = 3) -> tuple[Path, str]:
    """A tuned-model folder for the apps and where it came from.

    ``runs/latest/03_tune`` (from ``make run``) when present; otherwise a small LightGBM model on the
    embedded formation-enthalpy data (Magpie features, a few trials: about half a minute), cached in
    ``workdir`` (default ``runs/app-default``) for the next start.
    """
    found = latest_step("03_tune", ("model.joblib", "intervals.joblib", "model_card.json"))
    if found:
        return found, f"model from the last pipeline run ({found})"
    out = Path(workdir) if workdir else RUNS_DIR / "app-default"
    if (out / "model_card.json").is_file():
        return out, f"small default model built earlier ({out})"
    from battlab.datasets import load_dataset
    from battlab.featurize import featurize_table
    from battlab.tune import tune

    df, card = load_dataset("exp_formation_enthalpy")
    table, info = featurize_table(df, preset="magpie")
    result = tune(table, info["feature"].tolist(), card.target, models=("lgbm",), n_trials=n_trials,
                  storage="sqlite:///:memory:", progress=False)
    result.card["features"]["preset"] = "magpie"
    result.save(out)
    return out, f"small default model built now: LightGBM on Magpie features of {card.name} ({out})"


def default_explanation_dir(workdir: str | Path | None = None, *, max_rows: int = 500) -> tuple[Path, str]:
    """An explanation folder for the SHAP explorer and where it came from: ``runs/latest/04_explain`` when
    present, else the default model (:func:`default_tune_dir`) explained on the embedded data, cached."""
    found = latest_step("04_explain", ("shap_values.parquet", "explanation.json"))
    if found:
        return found, f"explanation from the last pipeline run ({found})"
    out = Path(workdir) if workdir else RUNS_DIR / "app-default" / "explain"
    if (out / "explanation.json").is_file():
        return out, f"explanation of the default model, made earlier ({out})"
    import json

    import joblib

    from battlab.datasets import load_dataset
    from battlab.explain import explain, explain_files
    from battlab.featurize import featurize_table

    model_dir, source = default_tune_dir()
    step = model_dir / "step.json"
    if step.is_file():  # a pipeline's model: explain it on the features it was tuned on
        files = json.loads(step.read_text())["outputs"]
        explain_files(model_dir / "model.joblib", files["features"], feature_info=files["feature_info"],
                      max_rows=max_rows, out_dir=out)
        return out, f"{source}; explained now on up to {max_rows} rows"
    card = json.loads((model_dir / "model_card.json").read_text())
    df, data_card = load_dataset("exp_formation_enthalpy")
    table, info = featurize_table(df, preset=card["features"].get("preset", "battery"))
    names = card["features"]["names"]
    model = joblib.load(model_dir / "model.joblib")  # trusted: the app's own model folder
    ex = explain(model, table[names], info=info, labels=table["formula"].tolist(), max_rows=max_rows,
                 target=data_card.target, model_name=card["model"]["name"])
    ex.save(out)
    return out, f"{source}; explained now on {max_rows} rows of {data_card.name}"


def serve(name: str | None = None, port: int = 8866, *, open_browser: bool = False) -> int:
    """Serve one app (or, with no name, the app folder) with Voilà; returns Voilà's exit code."""
    target = app_path(name) if name else APPS_DIR
    # Pre-heated kernels: each app's notebook runs ahead in a waiting kernel, so a visitor's page renders at
    # once instead of after imports and model loading.
    cmd = [sys.executable, "-m", "voila", str(target), f"--port={port}", "--Voila.ip=127.0.0.1",
           "--preheat_kernel=True", "--pool_size=1"]
    if not open_browser:
        cmd.append("--no-browser")
    env = {**os.environ, "PYBAMM_DISABLE_TELEMETRY": "true"}
    return subprocess.call(cmd, cwd=APPS_DIR, env=env)
