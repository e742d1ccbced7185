"""Tests of battlab.cycling.trajectory (capacity-fade trajectories) and plots.plot_trajectories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from battlab.cycling.labels import label_cells
from battlab.cycling.trajectory import (
    EmpiricalFadeModel,
    TrajectoryModel,
    check_capacity_table,
    early_features,
    fit_fade_curve,
    synthetic_capacity_table,
)
from battlab.errors import BattlabError

N = 100


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return synthetic_capacity_table(n_cells=24, n_last=900, seed=0)


def life_from_table(table: pd.DataFrame) -> pd.DataFrame:
    """Observed lives: first cycle below 0.88 Ah (80 % of 1.1 Ah), as the dataset defines them."""
    return label_cells(table, nominal_Ah=1.1, fraction=0.8, smooth=1, knee=False).table


def _split(table: pd.DataFrame, test: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return table[~table["cell"].isin(test)], table[table["cell"].isin(test)]


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.drop(columns="cycle"), r"missing column\(s\) \['cycle'\]"),
    (lambda t: t.assign(discharge_capacity_Ah=t["discharge_capacity_Ah"].where(t.index != 5, np.nan)),
     r"column 'discharge_capacity_Ah', row 5 \(cell 'c00'\)"),
    (lambda t: t.assign(discharge_capacity_Ah=t["discharge_capacity_Ah"].astype(object).where(t.index != 7, "x")),
     r"row 7 .* is 'x', not a finite number"),
    (lambda t: pd.concat([t, t.iloc[[3]]]), r"cell 'c00' has cycle 4 twice"),
    (lambda t: t.assign(cycle=t["cycle"].astype(float).where(t.index != 2, 2.5)), r"2.5 is not a whole cycle"),
    (lambda t: t.assign(temperature_C=t["temperature_C"].where(t.index != 0, 99.0)),
     r"covariate 'temperature_C' changes within cell 'c00'"),
    (lambda t: t.iloc[:0], r"no rows"),
])
def test_bad_capacity_tables_rejected(edit, message: str) -> None:
    table = synthetic_capacity_table(n_cells=2, n_last=150)
    with pytest.raises(BattlabError, match=message):
        check_capacity_table(edit(table), covariates=("temperature_C",))


def test_too_few_cycles_named() -> None:
    table = synthetic_capacity_table(n_cells=3, n_last=150)
    short = table[~((table["cell"] == "c01") & (table["cycle"] > 60))]
    with pytest.raises(BattlabError, match=r"cell 'c01' has cycles up to 60, and the model needs the first 100"):
        early_features(short, 100)
    with pytest.raises(BattlabError, match="needs the first 100"):
        TrajectoryModel().fit(synthetic_capacity_table(n_cells=3, n_last=150)).predict(short)


def test_early_features_are_relative_to_the_initial_capacity() -> None:
    table = synthetic_capacity_table(n_cells=3, n_last=200, seed=2)
    scaled = table.assign(discharge_capacity_Ah=table["discharge_capacity_Ah"] * 2)
    a, b = early_features(table, 100), early_features(scaled, 100)
    assert np.allclose(a.drop(columns="q0_Ah"), b.drop(columns="q0_Ah"))
    assert np.allclose(b["q0_Ah"], 2 * a["q0_Ah"])
    assert (a["slope_all"] < 0).all()  # these cells fade


# --------------------------------------------------------------------------- learned model


@pytest.mark.parametrize(("method", "target"), [("ridge", "drop"), ("neighbours", "drop"), ("blend", "drop"),
                                                ("ridge", "log_drop")])
def test_trajectory_model_predicts_held_out_cells(synthetic: pd.DataFrame, method: str, target: str) -> None:
    test_cells = ["c00", "c05", "c10", "c16", "c20"]
    train, test = _split(synthetic, test_cells)
    model = TrajectoryModel(n_cycles=N, method=method, covariates=("temperature_C",), target=target).fit(train)
    early = test[test["cycle"] <= N]
    curve = model.predict(early)
    assert list(curve.columns) == ["cell", "cycle", "predicted_capacity_Ah", "low", "high"]
    assert set(curve["cell"]) == set(test_cells)
    assert curve.groupby("cell")["cycle"].agg(["min", "max"]).eq([N + 1, int(model.grid_[-1])]).all().all()
    steps = curve.groupby("cell")["predicted_capacity_Ah"].diff().dropna()
    assert (steps <= 1e-12).all()  # monotone non-increasing
    assert (curve["low"] <= curve["predicted_capacity_Ah"] + 1e-12).all()
    assert (curve["predicted_capacity_Ah"] <= curve["high"] + 1e-12).all()
    # the prediction is close to what the held-out cells did, far closer than the training mean life
    truth = life_from_table(test).set_index("cell")["cycle_life"]
    life = model.predict_life(early).set_index("cell")
    assert life["reached"].all()
    err = life["predicted_life"] - truth.loc[life.index]
    mean_err = life_from_table(train)["cycle_life"].mean() - truth
    assert np.sqrt((err ** 2).mean()) < 0.5 * np.sqrt((mean_err ** 2).mean())
    assert (life["life_low"] <= life["predicted_life"]).all() and (life["predicted_life"] <= life["life_high"]).all()
    obs = test.merge(curve, on=["cell", "cycle"])
    obs = obs[obs["cycle"] <= obs["cell"].map(truth)]  # to end of life
    assert np.sqrt(((obs["discharge_capacity_Ah"] - obs["predicted_capacity_Ah"]) ** 2).mean()) < 0.01


def test_band_covers_most_held_out_capacities(synthetic: pd.DataFrame) -> None:
    train, test = _split(synthetic, ["c01", "c04", "c08", "c13", "c17", "c22"])
    model = TrajectoryModel(n_cycles=N, covariates=("temperature_C",), coverage=0.9).fit(train)
    obs = test.merge(model.predict(test[test["cycle"] <= N]), on=["cell", "cycle"])
    inside = (obs["discharge_capacity_Ah"] >= obs["low"]) & (obs["discharge_capacity_Ah"] <= obs["high"])
    assert inside.mean() > 0.7
    wide = TrajectoryModel(n_cycles=N, covariates=("temperature_C",), coverage=0.5).fit(train)
    assert (wide.band_high_ - wide.band_low_ <= model.band_high_ - model.band_low_ + 1e-12).all()
    assert (np.diff(model.band_high_) >= 0).all() and (np.diff(model.band_low_) <= 0).all()  # never narrows


def test_predictions_use_only_the_first_n_cycles(synthetic: pd.DataFrame) -> None:
    train, test = _split(synthetic, ["c03"])
    model = TrajectoryModel(n_cycles=N).fit(train)
    full = model.predict(test)
    early = model.predict(test[test["cycle"] <= N])
    pd.testing.assert_frame_equal(full, early)


def test_horizon_and_state_errors(synthetic: pd.DataFrame) -> None:
    early = synthetic[synthetic["cycle"] <= N]
    with pytest.raises(BattlabError, match="not fitted"):
        TrajectoryModel().predict(early)
    model = TrajectoryModel(n_cycles=N).fit(synthetic)
    with pytest.raises(BattlabError, match=r"horizon must be in 101\.\.900 .* got 5000"):
        model.predict(early, horizon=5000)
    assert model.predict(early, horizon=150)["cycle"].max() == 150
    with pytest.raises(BattlabError, match="method must be"):
        TrajectoryModel(method="magic").fit(synthetic)
    with pytest.raises(BattlabError, match="target must be 'drop' or 'log_drop'"):
        TrajectoryModel(target="log").fit(synthetic)
    with pytest.raises(BattlabError, match=r"unknown feature\(s\) \['nope'\]"):
        TrajectoryModel(features=("loss_N", "nope")).fit(synthetic)
    few = TrajectoryModel(n_cycles=N, features=("loss_N", "slope_late"), covariates=("temperature_C",)).fit(synthetic)
    assert list(few.feature_names_in_) == ["loss_N", "slope_late", "temperature_C"]
    assert len(few.predict(early, horizon=200)) == early["cell"].nunique() * 100
    with pytest.raises(BattlabError, match="needs at least 3 training cells"):
        TrajectoryModel().fit(synthetic[synthetic["cell"].isin(["c00", "c01"])])
    with pytest.raises(BattlabError, match="fewer than 3 training cells go beyond cycle 110"):
        TrajectoryModel().fit(early)


def test_estimator_protocol_and_save_load(synthetic: pd.DataFrame, tmp_path: Path) -> None:
    model = TrajectoryModel(n_cycles=N, method="blend", covariates=("temperature_C",), seed=3)
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(model, "grid_")
    model.fit(synthetic)
    assert model.n_features_in_ == len(model.feature_names_in_) == 10
    path = model.save(tmp_path / "traj.joblib")
    again = TrajectoryModel.load(path)
    early = synthetic[synthetic["cycle"] <= N]
    pd.testing.assert_frame_equal(model.predict(early), again.predict(early))
    with pytest.raises(BattlabError, match="not a TrajectoryModel"):
        TrajectoryModel.load(EmpiricalFadeModel().fit().save(tmp_path / "other.joblib"))
    with pytest.raises(BattlabError, match="no saved TrajectoryModel"):
        TrajectoryModel.load(tmp_path / "missing.joblib")


# --------------------------------------------------------------------------- empirical baselines


def test_fit_fade_curve_recovers_known_curves() -> None:
    n = np.arange(1, 101, dtype=float)
    power = fit_fade_curve(n, 1.1 - 3e-5 * n ** 1.5, "power")
    assert power.ok and np.allclose(power(np.array([400.0])), 1.1 - 3e-5 * 400 ** 1.5, atol=2e-3)
    truth = 1.05 * np.exp(-2e-4 * n) + 0.05 * np.exp(-0.05 * n)
    dexp = fit_fade_curve(n, truth, "double_exp")
    assert dexp.ok and np.allclose(dexp(n), truth, atol=1e-4)


def test_failed_fade_fit_is_reported_not_raised() -> None:
    bad = fit_fade_curve(np.arange(1, 4), np.array([1.0, 0.99, 0.98]), "power")
    assert not bad.ok and "needs 5" in bad.reason
    with pytest.raises(BattlabError, match="form must be"):
        fit_fade_curve(np.arange(1, 10), np.ones(9), "cubic")
    table = synthetic_capacity_table(n_cells=2, n_last=120)
    table.loc[(table["cell"] == "c01") & (table["cycle"] == 50), "discharge_capacity_Ah"] = -0.1
    out = EmpiricalFadeModel("double_exp").fit().predict(table[table["cycle"] <= N], horizon=200)
    assert list(out.attrs["failures"]) == ["c01"]
    assert out.loc[out["cell"] == "c01", "predicted_capacity_Ah"].isna().all()
    assert out.loc[out["cell"] == "c00", "predicted_capacity_Ah"].notna().all()


@pytest.mark.parametrize("form", ["power", "double_exp"])
def test_empirical_model_predicts_and_reads_life(form: str) -> None:
    table = synthetic_capacity_table(n_cells=3, n_last=400, seed=4)
    model = EmpiricalFadeModel(form, n_cycles=N, max_cycle=3000, n_draws=50).fit(table)
    early = table[table["cycle"] <= N]
    out = model.predict(early)
    assert out.groupby("cell")["cycle"].agg(["min", "max"]).eq([N + 1, 3000]).all().all()
    assert (out["low"] <= out["predicted_capacity_Ah"] + 1e-12).all()
    life = model.predict_life(early)
    assert list(life.columns) == ["cell", "predicted_life", "life_low", "life_high", "reached"]
    pd.testing.assert_frame_equal(out, model.predict(early))  # seeded draws
    with pytest.raises(BattlabError, match="form must be"):
        EmpiricalFadeModel("cubic").fit()
    with pytest.raises(BattlabError, match="horizon 50 must exceed"):
        model.predict(early, horizon=50)


# --------------------------------------------------------------------------- real data


def test_tbsi_leave_55C_out(data_cache: Path) -> None:
    """Trained on the 25/35/45 degC cells, the 55 degC cells' lives from 100 cycles beat the training mean."""
    from battlab.datasets import load_dataset

    df, _ = load_dataset("tbsi_sunwoda")
    train, test = df[df["temperature_C"] < 55], df[df["temperature_C"] == 55]
    model = TrajectoryModel(n_cycles=N, covariates=("temperature_C",)).fit(train)
    life = model.predict_life(test[test["cycle"] <= N]).set_index("cell")
    truth = life_from_table(test).set_index("cell")["cycle_life"]
    rmse = np.sqrt(((life["predicted_life"] - truth.loc[life.index]) ** 2).mean())
    mean_rmse = np.sqrt(((life_from_table(train)["cycle_life"].mean() - truth) ** 2).mean())
    assert rmse < 150 and rmse < 0.5 * mean_rmse, (rmse, mean_rmse)


# --------------------------------------------------------------------------- plot


def test_plot_trajectories(synthetic: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from battlab.cycling.plots import plot_trajectories

    train, test = _split(synthetic, ["c02", "c07"])
    pred = TrajectoryModel(n_cycles=N).fit(train).predict(test[test["cycle"] <= N])
    fig = plot_trajectories(test, pred)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 * 2 + 2  # observed + predicted per cell, threshold, end of the seen window
    assert len(ax.collections) == 2  # one band per cell
    assert ax.lines[-1].get_xdata()[0] == N
    assert len(plot_trajectories(test, pred, threshold_Ah=None, cells=["c02"]).axes[0].lines) == 3
    with pytest.raises(BattlabError, match=r"predicted_table has no column\(s\) \['low'\]"):
        plot_trajectories(test, pred.drop(columns="low"))
    with pytest.raises(BattlabError, match=r"cell\(s\) \['zz'\] are not in predicted_table"):
        plot_trajectories(test, pred, cells=["zz"])
