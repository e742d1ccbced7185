"""Tuning and honest evaluation: optuna over the model zoo, on splits that do not leak.

One optuna study searches model families and their parameters together (TPE sampler), scoring each
trial by cross-validated MAE on the chosen split and pruning trials that fall behind after a fold.
The study lives in a real database: SQLite in the run folder by default, or any optuna storage URL
(PostgreSQL for many workers); processes that give the same storage and study name join one study,
and ``n_trials`` counts the trials of the whole study, whoever ran them.

The result: the best pipeline refitted on all rows, per-fold metrics with the split named, a
comparison of model families, conformal prediction intervals (CV+, MAPIE) with their coverage
measured on held-out groups, and a model card.

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> metals = ["Co", "Ni", "Mn", "Fe", "Ti", "V", "Cr", "Cu"]
>>> table = pd.DataFrame({"formula": [f"Li{i % 3 + 1}{metals[i % 8]}O2" for i in range(120)],
...                       "x": rng.normal(size=120)})
>>> table["y"] = 2 * table["x"] + rng.normal(scale=0.1, size=120)
>>> result = tune(table, ["x"], "y", models=("ridge",), n_trials=3, storage="sqlite:///:memory:",
...               progress=False)
>>> result.best_name, result.metrics["mae_mean"] < 0.2
('ridge', True)
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import PredefinedSplit

from battlab import __version__
from battlab.errors import BattlabError
from battlab.models import MODELS, default_models, make_model, suggest
from battlab.split import DEFAULT_SPLIT, OfficialSplit, RandomKFold, Splitter, make_splitter


@dataclass
class TuneResult:
    """What :func:`tune` returns; :meth:`save` writes it to a folder."""

    model: Any
    best_name: str
    best_params: dict[str, Any]
    split: str
    folds: pd.DataFrame
    metrics: dict[str, float]
    comparison: pd.DataFrame
    predictions: pd.DataFrame
    intervals: Any
    coverage: dict[str, float]
    card: dict[str, Any]
    study: Any = field(repr=False, default=None)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``model.joblib``, ``intervals.joblib``, ``folds.csv``, ``comparison.csv``,
        ``predictions.csv`` and ``model_card.json``."""
        import joblib

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / k for k in ("model.joblib", "intervals.joblib", "folds.csv", "comparison.csv",
                                      "predictions.csv", "model_card.json")}
        joblib.dump(self.model, paths["model.joblib"])
        joblib.dump(self.intervals, paths["intervals.joblib"])
        self.folds.to_csv(paths["folds.csv"], index=False)
        self.comparison.to_csv(paths["comparison.csv"], index=False)
        self.predictions.to_csv(paths["predictions.csv"], index=False)
        write_card(paths["model_card.json"], self.card)
        return paths


def write_card(path: Path, card: dict[str, Any]) -> None:
    """Write a model card as JSON (numpy scalars and other objects as their values or text)."""
    path.write_text(json.dumps(card, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def storage_url(storage: str | None, out_dir: str | Path | None) -> str:
    """The optuna storage: the URL given, else an SQLite file ``study.db`` in ``out_dir``."""
    if storage:
        return storage
    if out_dir is None:
        return "sqlite:///:memory:"
    path = Path(out_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'study.db'}"


def open_storage(url: str, heartbeat: float | None = 30.0) -> Any:
    """An optuna storage for ``url``. Database URLs get a heartbeat: a worker that dies mid-trial (killed,
    out of memory, machine lost) has its trial marked FAIL by the next worker after ``2 x heartbeat``
    seconds, and the trial is retried with the same parameters, so no trial is lost."""
    import optuna
    from optuna import storages

    if url == "sqlite:///:memory:" or "://" not in url:
        return url
    if url.startswith("postgresql://"):  # SQLAlchemy 2.1 maps a bare URL to psycopg 3; psycopg2 may be what is here
        try:
            import psycopg  # noqa: F401
        except ImportError:
            url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}  # wait for a writer instead of failing
    if heartbeat:
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # stable in practice
        kwargs.update(heartbeat_interval=int(max(1, heartbeat)), grace_period=int(max(2, 2 * heartbeat)),
                      heartbeat_stale_trial_callback=_retry_callback(storages)(max_retry=3))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return storages.RDBStorage(url, **kwargs)


def _retry_callback(storages: Any) -> Any:
    """optuna >= 4.9 renamed the retry callback; the old name warns there and goes in 6.0."""
    return getattr(storages, "RetryHeartbeatStaleTrialCallback", None) or storages.RetryFailedTrialCallback


def _families_first(families: list[str], seed: int) -> Any:
    """TPE whose trial k < len(families) tries family k (with its defaults, see ``tune``): every family gets a
    fair first look. Keyed on the trial number the database hands out, so workers joining one study share it
    without optuna's trial queue, which SQLite can hand to two workers at once."""
    from optuna.samplers import TPESampler

    class FamiliesFirst(TPESampler):
        def sample_independent(self, study: Any, trial: Any, param_name: str, distribution: Any) -> Any:
            if param_name == "model" and trial.number < len(families):
                return families[trial.number]
            return super().sample_independent(study, trial, param_name, distribution)

    return FamiliesFirst(seed=seed)


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]+@", r"//\1:***@", url)


def _fold_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"mae": float(mean_absolute_error(y, pred)), "rmse": float(np.sqrt(mean_squared_error(y, pred))),
            "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan")}


def _cross_validate(name: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, folds: list, seed: int,
                    trial: Any = None, deadline: float | None = None) -> tuple[list[dict[str, float]], np.ndarray]:
    """Per-fold metrics and out-of-fold predictions; with a trial, report each fold and prune laggards, and
    stop a trial still running at ``deadline`` (perf_counter) once the study has a completed one."""
    import optuna
    from optuna.trial import TrialState

    oof = np.full(len(y), np.nan)
    scores = []
    for k, (train, test) in enumerate(folds):
        model = make_model(name, dict(params), seed).fit(X[train], y[train])
        oof[test] = model.predict(X[test])
        scores.append({"fold": k, "n_train": len(train), "n_test": len(test), **_fold_metrics(y[test], oof[test])})
        if trial is not None:
            trial.report(float(np.mean([s["mae"] for s in scores])), k)
            if trial.should_prune():
                raise optuna.TrialPruned()
            if (deadline is not None and time.perf_counter() > deadline and k < len(folds) - 1
                    and trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))):
                trial.set_user_attr("stopped", "timeout")  # optuna's timeout only stops new trials
                raise optuna.TrialPruned()
    return scores, oof


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _conformal(name: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, folds: list, coverage: float,
               seed: int) -> Any:
    """CV+ intervals (MAPIE) with the same folds as the evaluation, so calibration does not leak either."""
    from mapie.regression import CrossConformalRegressor

    test_fold = np.full(len(y), -1)
    for k, (_, test) in enumerate(folds):
        test_fold[test] = k
    mapie = CrossConformalRegressor(make_model(name, dict(params), seed), confidence_level=coverage,
                                    cv=PredefinedSplit(test_fold), method="plus")
    return mapie.fit_conformalize(X, y)


def _held_out_coverage(name: str, params: dict[str, Any], table: pd.DataFrame, X: np.ndarray, y: np.ndarray,
                       splitter: Splitter, folds: list, coverage: float, seed: int) -> dict[str, float]:
    """Calibrate on the first fold's training rows only, then count how often its test rows fall inside."""
    train, test = folds[0]
    inner = [(train[a], train[b]) for a, b in splitter.split(table.iloc[train].reset_index(drop=True))]
    position = {row: i for i, row in enumerate(train)}
    inner = [(np.array([position[r] for r in a]), np.array([position[r] for r in b])) for a, b in inner]
    mapie = _conformal(name, params, X[train], y[train], inner, coverage, seed)
    _, bounds = mapie.predict_interval(X[test])
    lo, hi = bounds[:, 0, 0], bounds[:, 1, 0]
    return {"target": coverage, "empirical": float(np.mean((y[test] >= lo) & (y[test] <= hi))),
            "mean_width": float(np.mean(hi - lo)), "n_test": int(len(test))}


def reachable_coverage(coverage: float, n_fit: int) -> float:
    """The coverage CV+ intervals can reach when the smallest training fold has ``n_fit`` rows: ``coverage``, or
    less (in steps of 5 %) for small tables - MAPIE needs more than ``1 / (1 - coverage)`` calibration rows, and
    the held-out check calibrates on a fold's training rows split again.

    Example
    -------
    >>> reachable_coverage(0.9, 100), reachable_coverage(0.9, 8)
    (0.9, 0.85)
    """
    return float(min(coverage, np.floor(20 * (1 - 1 / max(n_fit - 1, 2))) / 20))


def tune(
    table: pd.DataFrame,
    features: list[str],
    target: str,
    *,
    split: str | Splitter = DEFAULT_SPLIT,
    split_options: dict[str, Any] | None = None,
    models: tuple[str, ...] | list[str] | None = None,
    n_trials: int = 30,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    out_dir: str | Path | None = None,
    coverage: float = 0.9,
    intervals: bool = True,
    seed: int = 0,
    progress: bool = True,
    callbacks: list | None = None,
    heartbeat: float | None = 30.0,
) -> TuneResult:
    """Tune, evaluate and refit the best model for ``target`` from ``features`` of ``table``.

    Parameters
    ----------
    split, split_options
        A splitter or a name for :func:`battlab.split.make_splitter` (default: grouped by chemical
        system). Every metric reported names it.
    models
        Names from :data:`battlab.models.MODELS` to search over (default:
        :func:`battlab.models.default_models`). A new study first tries each model with its default
        parameters, so that even a short budget compares sensible models.
    n_trials, timeout
        Budget of the whole study in trials (trials of every worker count): the same parameters give the same
        model on an idle and on a loaded machine. ``timeout`` is only a cap a user may set on this call, in
        seconds: a trial still running at the timeout stops after its current fold (pruned, ``stopped:
        timeout``) once the study has a completed trial; the refit of the best model and its intervals come on
        top. A run the cap cuts short says so (a warning, a line on stderr, and ``card["study"]``:
        ``n_trials_requested``, ``n_trials_finished``, ``cut_short_by_timeout``).
    storage, study_name
        Optuna storage URL (default: SQLite ``study.db`` in ``out_dir``) and study name; workers that
        give the same pair share one study (``load_if_exists``).
    coverage, intervals
        Target coverage of the prediction intervals; ``intervals=False`` skips them (benchmarks that only
        score point predictions spend that time searching instead).
    heartbeat
        Seconds between a worker's heartbeats in a database storage (see :func:`open_storage`).
    callbacks
        Extra optuna callbacks ``(study, trial)`` after each trial, e.g. to show progress or stop the study.
    """
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    missing = [c for c in [target, *features] if c not in table.columns]
    if missing:
        raise BattlabError(f"columns not in the feature table: {missing[:5]}")
    models = tuple(models) if models is not None else default_models(table[target].dropna())
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise BattlabError(f"unknown model(s) {unknown}; models are {sorted(MODELS)}")
    usable = table[target].notna().to_numpy()
    if "featurize_error" in table:
        usable &= (table["featurize_error"].fillna("") == "").to_numpy()
    table = table.loc[usable].reset_index(drop=True)
    X = table[features].to_numpy(dtype=float)
    y = table[target].to_numpy(dtype=float)
    splitter = split if isinstance(split, Splitter) else make_splitter(split, **(split_options or {}))
    folds = list(splitter.split(table))
    # CV+ needs every row out of fold once: an official split (training rows never tested) is calibrated on a
    # random K-fold instead, and its coverage measured on the official test rows
    calibration = RandomKFold(5, seed=seed) if isinstance(splitter, OfficialSplit) else splitter
    cal_folds = folds if calibration is splitter else list(calibration.split(table))
    coverage_asked = coverage
    if intervals:
        coverage = reachable_coverage(coverage, min(len(train) for train, _ in folds))
        if coverage < coverage_asked:
            warnings.warn(f"{len(table)} rows: conformal intervals cannot reach {coverage_asked:.0%} coverage on "
                          f"folds this small; using {coverage:.0%}", stacklevel=2)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage_url(storage, out_dir)
    study = optuna.create_study(
        study_name=study_name or f"battlab-{re.sub(r'[^A-Za-z0-9]+', '_', target)}",
        storage=open_storage(url, heartbeat),
        direction="minimize", sampler=_families_first(list(models), seed), load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1))

    # the best trial this process ran, with its folds' scores and out-of-fold predictions: the report needs them,
    # and a trial of another worker (or an earlier run of the study) is cross-validated again instead
    best_here: dict[str, Any] = {}

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("model", list(models))
        if trial.number < len(models) or trial.user_attrs.get("defaults"):  # a retried trial keeps its attrs
            trial.set_user_attr("defaults", True)
            params = dict(MODELS[name].defaults)
        else:
            params = suggest(name, trial)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("params", _jsonable(params))
        scores, oof = _cross_validate(name, params, X, y, folds, seed, trial, deadline)
        trial.set_user_attr("fold_mae", [s["mae"] for s in scores])
        value = float(np.mean([s["mae"] for s in scores]))
        if not best_here or value < best_here["value"]:
            best_here.update(number=trial.number, value=value, scores=scores, oof=oof)
        return value

    t0 = time.perf_counter()
    deadline = t0 + timeout if timeout else None
    done = len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))
    if done < n_trials:
        study.optimize(objective, n_trials=n_trials - done, timeout=timeout, show_progress_bar=progress,
                       callbacks=[MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED)),
                                  *(callbacks or [])])
    seconds = time.perf_counter() - t0
    finished = len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))
    cut_short = timeout is not None and finished < n_trials
    if cut_short:  # a time cap is the user's; the result then depends on the machine's speed and load: say so
        note = (f"TIME CAP: the timeout of {timeout:g} s stopped tuning after {finished} of {n_trials} trials; the "
                "chosen model depends on this machine's speed and load (drop the timeout for a reproducible result)")
        warnings.warn(note, stacklevel=2)
        print(note, file=sys.stderr, flush=True)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    if not complete:
        raise BattlabError("no trial completed: raise n_trials or the timeout")

    best = study.best_trial
    best_name, best_params = best.params["model"], best.user_attrs["params"]
    if best_here.get("number") == best.number:
        scores, oof = best_here["scores"], best_here["oof"]
    else:
        scores, oof = _cross_validate(best_name, best_params, X, y, folds, seed)
    folds_df = pd.DataFrame(scores).assign(split=splitter.describe(), model=best_name)
    metrics = {f"{m}_{stat}": float(getattr(folds_df[m], stat)()) for m in ("mae", "rmse", "r2")
               for stat in ("mean", "std")}
    dummy_scores, _ = _cross_validate("dummy", {}, X, y, folds, seed)
    metrics["dummy_mae_mean"] = float(np.mean([s["mae"] for s in dummy_scores]))

    rows = []
    for name in models:
        trials = [t for t in complete if t.params.get("model") == name]
        tops = sorted(trials, key=lambda t: t.value)
        rows.append({"model": name, "family": MODELS[name].family, "trials": len(trials),
                     "best_cv_mae": tops[0].value if tops else np.nan,
                     "fold_mae_std": float(np.std(tops[0].user_attrs["fold_mae"])) if tops else np.nan,
                     "split": splitter.describe()})
    comparison = pd.DataFrame(rows).sort_values("best_cv_mae").reset_index(drop=True)

    model = make_model(best_name, dict(best_params), seed).fit(X, y)
    conformal, cover = None, {"target": coverage, "empirical": float("nan"), "mean_width": float("nan"), "n_test": 0}
    bounds = np.full((len(y), 2, 1), np.nan)
    if intervals:
        conformal = _conformal(best_name, best_params, X, y, cal_folds, coverage, seed)
        cover = _held_out_coverage(best_name, best_params, table, X, y, calibration, folds, coverage, seed)
        _, bounds = conformal.predict_interval(X)  # in-sample bounds, for plots only
    predictions = pd.DataFrame({"y": y, "oof_pred": oof, "fold": np.nan})
    for k, (_, test) in enumerate(folds):
        predictions.loc[test, "fold"] = k
    for col in ("row", "formula"):
        if col in table:
            predictions.insert(0, col, table[col].to_numpy())
    predictions["interval_low"], predictions["interval_high"] = bounds[:, 0, 0], bounds[:, 1, 0]

    card = _model_card(table, features, target, splitter, best_name, best_params, metrics, cover, study, url,
                       seed, seconds, n_dropped=int((~usable).sum()))
    card["intervals"]["calibration"] = calibration.describe()
    card["intervals"]["coverage_asked"] = coverage_asked
    card["study"].update(n_trials_requested=int(n_trials), n_trials_finished=int(finished),
                         timeout_seconds=timeout, cut_short_by_timeout=bool(cut_short))
    return TuneResult(model, best_name, best_params, splitter.describe(), folds_df, metrics, comparison,
                      predictions, conformal, cover, card, study)


def _model_card(table, features, target, splitter, name, params, metrics, cover, study, url, seed, seconds,
                n_dropped) -> dict[str, Any]:
    import lightgbm
    import optuna
    import sklearn

    return {
        "battlab_version": __version__,
        "data": {"n_rows": len(table), "n_rows_dropped": n_dropped, "target": target},
        "features": {"n": len(features), "names": list(features)},
        "split": {"description": splitter.describe(), **splitter.to_dict()},
        "model": {"name": name, "family": MODELS[name].family, "params": params},
        "metrics": {**metrics, "split": splitter.describe()},
        "intervals": {"method": "CV+ conformal (MAPIE CrossConformalRegressor, same folds)", **cover},
        "study": {"name": study.study_name, "storage": _redact(url), "n_trials": len(study.trials),
                  "best_trial": study.best_trial.number, "seconds_this_call": round(seconds, 2)},
        "seed": seed,
        "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                     "optuna": optuna.__version__, "lightgbm": lightgbm.__version__},
    }
