"""Tuning: a short SQLite study, two workers on one study, interval coverage, reproducibility, CLI."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from battlab.cli import main
from battlab.tune import _cross_validate, tune

MODELS = ("ridge", "knn")


def test_short_study_with_sqlite_storage(synthetic, tmp_path):
    table, features, _ = synthetic
    result = tune(table, features, "y", models=MODELS, n_trials=6, out_dir=tmp_path, progress=False)
    assert (tmp_path / "study.db").is_file()
    study = optuna.load_study(study_name=result.card["study"]["name"], storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert len(study.trials) == 6
    assert result.best_name in MODELS
    assert result.metrics["mae_mean"] < 0.5 * result.metrics["dummy_mae_mean"]
    assert set(result.folds["split"]) == {"group 5-fold by chemical system (seed 0)"}
    assert set(result.comparison["split"]) == {"group 5-fold by chemical system (seed 0)"}
    assert len(result.folds) == 5 and {"mae", "rmse", "r2"} <= set(result.folds.columns)
    paths = result.save(tmp_path)
    card = json.loads(paths["model_card.json"].read_text())
    assert card["metrics"]["split"] == result.split and card["seed"] == 0
    assert card["model"]["name"] == result.best_name and card["features"]["n"] == len(features)
    import joblib
    model = joblib.load(paths["model.joblib"])
    assert np.allclose(model.predict(table[features].to_numpy()), result.model.predict(table[features].to_numpy()))


def test_a_trial_running_past_the_deadline_is_stopped_after_a_fold(synthetic):
    table, features, _ = synthetic
    X, y = table[features].to_numpy(), table["y"].to_numpy()
    folds = [(np.arange(len(y)) % 3 != k, np.arange(len(y)) % 3 == k) for k in range(3)]
    folds = [(np.flatnonzero(a), np.flatnonzero(b)) for a, b in folds]
    study = optuna.create_study()
    first = study.ask()
    # no completed trial yet: the first one runs to the end whatever the deadline
    scores, _ = _cross_validate("ridge", {}, X, y, folds, 0, first, deadline=0.0)
    assert len(scores) == 3
    study.tell(first, 1.0)
    second = study.ask()
    try:
        _cross_validate("ridge", {}, X, y, folds, 0, second, deadline=0.0)
        raise AssertionError("not stopped")
    except optuna.TrialPruned:
        pass
    assert second.user_attrs["stopped"] == "timeout"


def test_a_time_cap_that_cuts_the_budget_short_says_so(synthetic, capsys, tmp_path):
    table, features, _ = synthetic
    kw = {"models": MODELS, "progress": False, "intervals": False, "out_dir": tmp_path, "study_name": "capped"}
    tune(table, features, "y", n_trials=1, **kw)  # one finished trial, then a call whose cap stops it at once
    with pytest.warns(UserWarning, match="TIME CAP: the timeout of 1e-06 s stopped tuning after 1 of 50 trials"):
        result = tune(table, features, "y", n_trials=50, timeout=1e-6, **kw)
    assert "TIME CAP" in capsys.readouterr().err
    study = result.card["study"]
    assert (study["n_trials_requested"], study["n_trials_finished"], study["cut_short_by_timeout"]) == (50, 1, True)
    full = tune(table, features, "y", models=MODELS, n_trials=3, progress=False, storage="sqlite:///:memory:",
                intervals=False)
    assert (full.card["study"]["n_trials_finished"], full.card["study"]["cut_short_by_timeout"]) == (3, False)


def test_study_resumes_and_counts_trials_of_the_whole_study(synthetic, tmp_path):
    table, features, _ = synthetic
    tune(table, features, "y", models=MODELS, n_trials=3, out_dir=tmp_path, progress=False)
    result = tune(table, features, "y", models=MODELS, n_trials=5, out_dir=tmp_path, progress=False)
    assert len(result.study.trials) == 5  # 3 earlier + 2 more, not 3 + 5


def test_grouped_split_is_honest_and_random_split_is_not_lower_by_accident():
    """On the embedded formation enthalpies (real near-duplicates: LiCoO2, Li0.9CoO2...), the same model with
    the same seed scores worse when no chemical system is on both sides of a fold than on a random K-fold,
    which leaks them: the grouped error is not lower than the random one by accident of the folds."""
    from battlab import steps
    from battlab.split import GroupKFoldBy, chemical_system

    fs = steps.featurize(steps.curate(dataset="exp_formation_enthalpy"), preset="magpie")
    systems = fs.table["formula"].map(chemical_system).to_numpy()
    grouped, rnd = (steps.tune(fs, split=split, models=("knn",), n_trials=1, intervals=False, progress=False,
                               storage="sqlite:///:memory:") for split in ("chemical_system", "random"))
    assert grouped.split.startswith("group 5-fold by chemical system") and rnd.split == "random 5-fold (seed 0)"
    folds = list(GroupKFoldBy().split(fs.table))
    assert all(not set(systems[a]) & set(systems[b]) for a, b in folds)  # honest: no system on both sides
    leaks = [len(set(systems[a]) & set(systems[b])) for a, b in steps.splitter_from_spec("random").split(fs.table)]
    assert min(leaks) > 50  # the random split shares many chemical systems between train and test
    gap = grouped.metrics["mae_mean"] - rnd.metrics["mae_mean"]
    # flattered by them: beyond the fold-to-fold noise (two standard errors of the random folds mean)
    assert gap > 2 * rnd.metrics["mae_std"] / np.sqrt(5)


def test_interval_coverage_is_measured_on_held_out_groups(synthetic):
    table, features, _ = synthetic
    result = tune(table, features, "y", models=("ridge",), n_trials=2, coverage=0.9, progress=False,
                  storage="sqlite:///:memory:")
    cov = result.coverage
    assert cov["target"] == 0.9 and cov["n_test"] > 50
    assert 0.8 <= cov["empirical"] <= 0.99
    assert 0.2 < cov["mean_width"] < 1.5  # noise sd 0.1: a 90% interval is at least 0.33 wide
    inside = (result.predictions["y"] >= result.predictions["interval_low"]) & \
             (result.predictions["y"] <= result.predictions["interval_high"])
    assert inside.mean() > 0.85


def test_same_seed_same_numbers(synthetic):
    table, features, _ = synthetic
    a = tune(table, features, "y", models=MODELS, n_trials=4, progress=False, storage="sqlite:///:memory:")
    b = tune(table, features, "y", models=MODELS, n_trials=4, progress=False, storage="sqlite:///:memory:")
    assert a.best_params == b.best_params and a.metrics == b.metrics


def test_two_processes_share_one_study(synthetic, tmp_path):
    """Two workers on one SQLite study; true in any order they run in (one may use up the budget first)."""
    import socket

    _, _, path = synthetic
    db = tmp_path / "shared.db"
    n_trials, n_workers = 16, 2
    cmd = [str(Path(sys.executable).parent / "battlab"), "tune", str(path), "--target", "y", "--models",
           "ridge,knn", "--n-trials", str(n_trials), "--storage", f"sqlite:///{db}", "--study-name", "shared",
           "--quiet"]
    optuna.create_study(study_name="shared", storage=f"sqlite:///{db}")  # created once, joined by both
    procs = [subprocess.Popen(cmd + ["--out", str(tmp_path / f"w{i}")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(n_workers)]
    try:
        errors = [p.communicate(timeout=1800)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, err in zip(procs, errors, strict=True):
        assert p.returncode == 0, err[-3000:]
    trials = optuna.load_study(study_name="shared", storage=f"sqlite:///{db}").trials
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))  # no trial lost, none duplicated
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    # the study-wide budget: a worker checks it after each of its trials, so when it is reached the other
    # worker may have one trial in flight, and no more
    assert n_trials <= len(trials) <= n_trials + n_workers - 1
    # every trial is one of these two processes' (a worker that started after the other had used up the
    # budget ran none: allowed), and each process refit the best model and wrote its card
    ours = {f"{socket.gethostname()}:{p.pid}" for p in procs}
    assert {t.user_attrs.get("worker") for t in trials} <= ours
    for i in range(n_workers):
        card = json.loads((tmp_path / f"w{i}" / "model_card.json").read_text())
        assert card["study"]["name"] == "shared" and n_trials <= card["study"]["n_trials"] <= len(trials)
    # each family's defaults run exactly once in the study (trials 0 and 1), not once per worker
    assert sorted((t.number, t.params["model"]) for t in trials if t.user_attrs.get("defaults")) == \
        [(0, "ridge"), (1, "knn")]
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from trials").fetchone()[0] == len(trials)


def test_cli_tune_and_its_errors(synthetic, tmp_path, capsys):
    _, _, path = synthetic
    assert main(["tune", str(path), "--target", "y", "--out", str(tmp_path / "t"), "--models", "ridge",
                 "--n-trials", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "best ridge" in out and "group 5-fold by chemical system" in out
    assert (tmp_path / "t" / "model_card.json").is_file()
    assert main(["tune", str(path), "--target", "y", "--out", str(tmp_path / "u"), "--models", "nope"]) == 2
    assert main(["tune", str(path), "--target", "nope", "--out", str(tmp_path / "u")]) == 2
    assert "no target column 'nope'" in capsys.readouterr().err
    plain = tmp_path / "plain.csv"  # a table without formulas and without feature info: its numeric columns
    pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 7, "y": np.arange(30.0) * 2}).to_csv(plain, index=False)
    assert main(["tune", str(plain), "--target", "y", "--out", str(tmp_path / "v"), "--models", "ridge",
                 "--n-trials", "1", "--quiet", "--split", "chemical_system"]) == 2
    assert "needs a formula column" in capsys.readouterr().err
    assert main(["tune", str(plain), "--target", "y", "--out", str(tmp_path / "v"), "--models", "ridge",
                 "--n-trials", "1", "--quiet", "--features", "a,zz"]) == 2
    assert "missing column 'zz'" in capsys.readouterr().err
    assert main(["tune", str(plain), "--target", "y", "--out", str(tmp_path / "v"), "--features", "a",
                 "--exclude", "b"]) == 2


def test_knn_tunes_on_a_table_smaller_than_its_search_space():
    """k up to 30 in the search space, folds of 11 training rows: k is capped, the trial completes."""
    import optuna

    from battlab.models import make_model, suggest

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(14, 3)), rng.normal(size=14)
    trial = optuna.trial.FixedTrial({"knn_n_neighbors": 30, "knn_weights": "uniform"})
    model = make_model("knn", suggest("knn", trial)).fit(X[:11], y[:11])
    assert model[-1].n_neighbors == 30 and model[-1].n_neighbors_ == 11
    np.testing.assert_allclose(model.predict(X[11:]), np.full(3, y[:11].mean()))  # every neighbour: the mean


def test_a_table_too_small_for_the_asked_coverage_gets_the_coverage_it_can_reach():
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(10, 3)), columns=["a", "b", "c"])
    table["y"] = table.to_numpy() @ [1.0, 2.0, 3.0]
    with pytest.warns(UserWarning, match="10 rows: conformal intervals cannot reach 90% coverage .* using 85%"):
        result = tune(table, ["a", "b", "c"], "y", split="random", models=("ridge",), n_trials=2,
                      storage="sqlite:///:memory:", progress=False)
    assert (result.card["intervals"]["coverage_asked"], result.card["intervals"]["target"]) == (0.9, 0.85)


def test_cli_predict_a_table_with_intervals_and_the_rows_it_cannot_predict(tmp_path, capsys):
    """`battlab predict MODEL TABLE --out`: a tuned composition model used outside Python (issue 25)."""
    from test_featurize import random_formulas

    rng = np.random.default_rng(1)
    raw = pd.DataFrame({"formula": random_formulas(80, seed=3)})
    raw["capacity (mAh/g)"] = rng.uniform(100, 200, len(raw))
    raw.to_csv(tmp_path / "raw.csv", index=False)
    assert main(["curate", str(tmp_path / "raw.csv"), "--target", "capacity (mAh/g)",
                 "--out", str(tmp_path / "c")]) == 0
    assert main(["featurize", str(tmp_path / "c"), "--out", str(tmp_path / "f")]) == 0
    assert main(["tune", str(tmp_path / "f"), "--target", "capacity (mAh/g)", "--out", str(tmp_path / "m"),
                 "--models", "ridge", "--n-trials", "2",
                 "--split", "random", "--quiet"]) == 0
    new = pd.DataFrame({"sample": ["a", "b", "c"], "formula": ["LiCoO2", "LiNi1/3Mn1/3Co1/3O2", "Xx2O"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    out = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert out["sample"].tolist() == ["a", "b", "c"]  # every input row, in order, with its own columns
    ok = out.iloc[:2]
    assert (ok["error"] == "").all() and (ok["low"].astype(float) < ok["prediction"].astype(float)).all()
    assert (ok["prediction"].astype(float) < ok["high"].astype(float)).all()
    assert out.loc[2, "prediction"] == "" and "Xx" in out.loc[2, "error"]
    printed = capsys.readouterr().out
    assert "2 of 3 rows predicted" in printed and "row 3: not predicted:" in printed
    assert main(["predict", str(tmp_path / "nowhere"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "q")]) == 2
