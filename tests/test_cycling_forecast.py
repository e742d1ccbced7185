"""Issue 22 items 3 and 6 for a lab's own cells: ``battlab cycling fit CELLS`` also fits a fade-curve model
(trajectory.joblib) and ``battlab cycling predict`` prints and writes the forecast curve with its band.

The cells are synthetic (battlab.cycling.synthetic): known lives, Arbin CSV and EC-Lab text exports, one censored.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_cycling_owncells import _cli  # the fixtures example_cells, example_model_dir are in conftest

from battlab.cycling.forecast import (
    TRAJECTORY_FILE,
    describe_forecast,
    fit_cells_trajectory,
    forecast_cells,
    load_trajectory,
)
from battlab.cycling.labels import capacity_table
from battlab.cycling.owncells import read_cells
from battlab.cycling.synthetic import EXAMPLE_NOMINAL_AH, _write_arbin, synthetic_cycles
from battlab.errors import BattlabError


def test_fit_saves_a_trajectory_model_listed_in_the_card(example_cells, example_model_dir):
    _, truth = example_cells
    assert (example_model_dir / TRAJECTORY_FILE).is_file()
    card = json.loads((example_model_dir / "model_card.json").read_text())["trajectory"]
    assert card["file"] == TRAJECTORY_FILE and card["n_cycles"] == 100
    assert card["threshold_Ah"] == pytest.approx(0.8 * EXAMPLE_NOMINAL_AH)
    # every cell has its first 100 cycles: the censored one's curve is real fade too
    assert sorted(card["training_cells"]) == sorted(truth["cell"]) and card["set_aside"] == []
    # the horizon is where 3 training cells still have data
    assert card["horizon"] <= sorted(truth["last_cycle"])[-3]


def test_predict_prints_the_forecast_and_writes_the_curve(example_cells, example_model_dir, tmp_path, capsys):
    folder, truth = example_cells
    capsys.readouterr()
    curve_csv, js = tmp_path / "fade.csv", tmp_path / "p.json"
    assert _cli("cycling", "predict", folder / "cell_03.csv", "--model", example_model_dir, "--curve", curve_csv,
                "--json", js) == 0
    out = capsys.readouterr().out
    assert "fade forecast from the first 100 cycles" in out and "life read off the curve" in out
    curve = pd.read_csv(curve_csv)
    assert list(curve.columns) == ["cell", "cycle", "predicted_capacity_Ah", "low", "high"]
    assert curve["cycle"].min() == 101 and set(curve["cell"]) == {"cell_03"}
    assert (curve["low"] <= curve["predicted_capacity_Ah"] + 1e-12).all()
    assert (curve["predicted_capacity_Ah"] <= curve["high"] + 1e-12).all()
    assert (np.diff(curve["predicted_capacity_Ah"]) <= 1e-12).all()  # a fade curve never rises
    life = float(truth.set_index("cell").loc["cell_03", "true_life"])
    rec = json.loads(js.read_text())["trajectory"]
    assert rec["reached"] and abs(rec["predicted_life"] - life) < 0.1 * life
    # the observed capacity after cycle 100 (never seen by the forecast) lies mostly inside the band
    obs = capacity_table(read_cells(folder / "cell_03.csv")[0]).merge(curve, on=["cell", "cycle"])
    inside = (obs["discharge_capacity_Ah"] >= obs["low"]) & (obs["discharge_capacity_Ah"] <= obs["high"])
    assert len(obs) > 100 and inside.mean() > 0.8


def test_a_censored_long_lived_cell_is_forecast_beyond_the_horizon(example_cells, example_model_dir, tmp_path, capsys):
    folder, _ = example_cells
    js = tmp_path / "p.json"
    assert _cli("cycling", "predict", folder / "cell_12.mpt", "--model", example_model_dir, "--json", js) == 0
    rec = json.loads(js.read_text())
    assert rec["censored"] is True
    assert rec["trajectory"]["reached"] is False and rec["trajectory"]["predicted_life"] is None
    assert f"beyond cycle {rec['trajectory']['horizon']}" in capsys.readouterr().out


def test_refused_and_short_cells_get_no_curve(example_cells, example_model_dir, tmp_path):
    folder, _ = example_cells
    traj, why = load_trajectory(example_model_dir)
    assert why == ""
    short = tmp_path / "short.csv"
    _write_arbin(synthetic_cycles(200, 60, seed=3), short)
    fc = forecast_cells(traj, [folder / "cell_01.csv", folder / "cell_02.mpt", short], refused=["cell_02"])
    assert fc.life["cell"].tolist() == ["cell_01"] and set(fc.curve["cell"]) == {"cell_01"}
    reasons = fc.set_aside.set_index("cell")["reason"]
    assert "domain check" in reasons["cell_02"]
    assert "first 100 cycles" in reasons["short"] and "cycles up to 60" in reasons["short"]
    assert describe_forecast(fc, "short").startswith("no fade forecast: too few cycles")


def test_a_cell_outside_the_training_fade_is_flagged(example_cells, example_model_dir):
    folder, _ = example_cells
    traj, _ = load_trajectory(example_model_dir)
    t = capacity_table(read_cells(folder / "cell_01.csv")[0])
    t = t[t["cycle"] <= 100].copy()
    t["discharge_capacity_Ah"] *= 1 - 0.002 * t["cycle"]  # fades ten times faster than any training cell
    fc = forecast_cells(traj, t)
    assert not bool(fc.life["in_range"].iloc[0])
    assert "outside the training cells'" in describe_forecast(fc, "cell_01")


def test_too_few_cells_or_no_threshold_skip_the_trajectory_with_a_reason(example_cells, tmp_path, capsys):
    folder, truth = example_cells
    two, _ = read_cells([folder / "cell_01.csv", folder / "cell_02.mpt"])
    model, why = fit_cells_trajectory(two, n_cycles=100, threshold_Ah=0.88)
    assert model is None and "2 cell(s) have the first 100 cycles" in why and "at least 3" in why
    model, why = fit_cells_trajectory(two, n_cycles=100, threshold_Ah=None)
    assert model is None and "no end-of-life threshold" in why
    # labels from a file and no --nominal: no threshold in Ah, so no fade model; the card and predict say why
    labels = tmp_path / "labels.csv"
    truth.loc[~truth["censored"], ["cell"]].assign(cycle_life=truth["true_life"].round()).to_csv(labels, index=False)
    out = tmp_path / "model"
    assert _cli("cycling", "fit", folder, "--labels", labels, "--n-trials", 2, "--quiet", "--out", out) == 0
    assert "no fade-curve model: no end-of-life threshold" in capsys.readouterr().out
    assert not (out / TRAJECTORY_FILE).exists()
    assert "no end-of-life threshold" in json.loads((out / "model_card.json").read_text())["trajectory"]["skipped"]
    assert _cli("cycling", "predict", folder / "cell_01.csv", "--model", out) == 0
    assert "(no fade-curve forecast: the model folder has no trajectory model" in capsys.readouterr().out
    assert _cli("cycling", "predict", folder / "cell_01.csv", "--model", out, "--curve", tmp_path / "c.csv") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--curve: the model folder has no trajectory model" in err[0]


def test_a_severson_model_folder_says_why_it_has_no_trajectory(tmp_path):
    (tmp_path / "model_card.json").write_text(json.dumps({"model": {"name": "ridge"}}))
    model, why = load_trajectory(tmp_path)
    assert model is None and "capacities stop at cycle 100" in why


def test_a_capacity_table_with_a_covariate_is_fitted_and_forecast():
    """tbsi_sunwoda's shape (a capacity table with temperature_C, no cycler files), as notebook 06 uses it."""
    from battlab.cycling.trajectory import synthetic_capacity_table

    table = synthetic_capacity_table(n_cells=9, n_last=400, seed=2)
    train, test = table[table["cell"] != "c00"], table[table["cell"] == "c00"]
    model, why = fit_cells_trajectory(train, n_cycles=100, threshold_Ah=1.0, covariates=("temperature_C",))
    assert why == "" and list(model.covariates) == ["temperature_C"]
    fc = forecast_cells(model, pd.concat([test, train[train["cell"] == "c01"]]))
    assert fc.life["cell"].tolist() == ["c00", "c01"] and bool(fc.life["in_range"].iloc[1])  # a training cell
    assert fc.curve["cycle"].min() == 101 and fc.curve["cycle"].max() == int(model.grid_[-1])
    with pytest.raises(BattlabError, match="temperature_C"):  # the covariate is needed to forecast
        forecast_cells(model, test.drop(columns="temperature_C"))
