"""Relative (capacity-normalised) early-life features and the cross-validation under simulated other lots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from battlab.errors import BattlabError


@pytest.fixture(scope="module")
def subset():
    from battlab.cycling.curves import load_severson_subset

    return load_severson_subset()


def _table(curves, preset, n=100):
    from battlab.cycling.features import early_life_features, featurize_curves

    table, _ = featurize_curves(curves, early_life_features(n, preset))
    return table


def test_relative_features_are_the_absolute_ones_over_the_cycle2_capacity(subset):
    rel, ab = _table(subset, "relative"), _table(subset, "full_discharge")
    q2 = ab["Qd_cycle2"]
    assert list(rel.columns[-4:]) == ["log10_var_dQ100_10_per_Q2", "log10_abs_min_dQ100_10_per_Q2",
                                      "fade_slope_2_100_per_Q2", "fade_intercept_2_100_per_Q2"]
    assert np.allclose(rel["fade_slope_2_100_per_Q2"], ab["fade_slope_2_100"] / q2)
    assert np.allclose(rel["fade_intercept_2_100_per_Q2"], ab["fade_intercept_2_100"] / q2)
    # dQ is divided by the cycle-2 curve's last point, which is the cycle-2 capacity (no glitch at cycle 2 here)
    q2_curve = subset.Q[:, list(subset.cycles).index(2), -1]
    assert np.allclose(rel["log10_var_dQ100_10_per_Q2"], ab["log10_var_dQ100_10"] - 2 * np.log10(q2_curve))
    assert np.allclose(rel["log10_abs_min_dQ100_10_per_Q2"], ab["log10_abs_min_dQ100_10"] - np.log10(q2_curve))


def test_relative_features_do_not_move_with_another_lot_and_absolute_ones_do(subset):
    from battlab.cycling.models import scale_capacity

    other_lot = scale_capacity(subset, 1.03)
    assert np.allclose(other_lot.Q, 1.03 * subset.Q) and np.allclose(other_lot.capacity, 1.03 * subset.capacity)
    rel, rel_lot = _table(subset, "relative"), _table(other_lot, "relative")
    cols = rel.columns[-4:]
    np.testing.assert_allclose(rel_lot[cols].to_numpy(), rel[cols].to_numpy(), rtol=1e-9, atol=1e-12)
    ab, ab_lot = _table(subset, "full_discharge"), _table(other_lot, "full_discharge")
    assert np.allclose(ab_lot["Qd_cycle2"], 1.03 * ab["Qd_cycle2"])


def test_relative_featurizer_options_info_and_cycles():
    from battlab.cycling.features import CapacityFadeFeatures, DeltaQFeatures, early_life_features, required_cycles

    dq = DeltaQFeatures(100, 10, stats=("var", "at_voltage"), per_capacity_of=2)
    assert dq.feature_labels() == ["log10_var_dQ100_10_per_Q2", "dQ100_10_at_2V_per_Q2"]
    assert dq.feature_info()["unit"].tolist() == ["log10", "Ah/Ah"]
    assert dq.required_cycles() == [2, 10, 100]
    fade = CapacityFadeFeatures(2, (2, 50), values=("rise", "slope"), relative=True)
    assert fade.feature_info()[["feature", "unit"]].values.tolist() == [
        ["Qd_max_minus_cycle2_per_Q2", "Ah/Ah"], ["fade_slope_2_50_per_Q2", "1/cycle"]]
    assert required_cycles(early_life_features(50, "relative")) == list(range(2, 51))
    with pytest.raises(BattlabError, match=r"values of relative capacity-fade features cannot include 'first'"):
        CapacityFadeFeatures(values=("first", "slope"), relative=True).feature_labels()


def test_relative_features_need_the_cycle2_curve():
    from battlab.cycling.curves import DischargeCurves
    from battlab.cycling.features import early_life_features
    from battlab.cycling.models import check_cycles

    q = np.tile(np.linspace(0, 1.0, 3), (1, 2, 1))  # curves of cycles 10 and 100 only
    cap = np.ones((1, 99))
    dc = DischargeCurves(q, [3.6, 2.8, 2.0], [10, 100], pd.DataFrame({"cell": ["c1"]}), cap, np.arange(2, 101))
    with pytest.raises(BattlabError, match=r"c1: the model predicts from the first 100 cycles and needs cycles 2-100"):
        check_cycles(dc, 100, early_life_features(100, "relative"))


@pytest.fixture(scope="module")
def lot_cv(subset):
    from battlab.cycling.models import compare_cycle_life_models

    kw = {"components": 0, "models": ("ridge",), "n_trials": 2}
    return compare_cycle_life_models(subset, {"relative": {"feature_set": "relative", **kw},
                                              "full_discharge": {"feature_set": "full_discharge", **kw}},
                                     n_splits=3, n_repeats=2, capacity_scales=(0.98, 1.02))


def test_lot_cv_predicts_each_cell_once_per_repeat_and_scale(subset, lot_cv):
    cv = lot_cv.results["relative"]
    p, n_train = cv.predictions, int((subset.cells["split"] == "train").sum())
    assert len(p) == 2 * 3 * n_train
    assert sorted(p["capacity_scale"].unique().tolist()) == [0.98, 1.0, 1.02]
    for _, part in p.groupby(["repeat", "capacity_scale"]):
        assert part["cell"].is_unique and len(part) == n_train
    plain = p[p["capacity_scale"] == 1.0]
    per = [np.sqrt(np.mean((g["predicted_cycle_life"] - g["cycle_life"]) ** 2)) for _, g in plain.groupby("repeat")]
    assert cv.metrics["rmse_mean"] == pytest.approx(np.mean(per))
    every = [np.sqrt(np.mean((g["predicted_cycle_life"] - g["cycle_life"]) ** 2))
             for _, g in p.groupby(["capacity_scale", "repeat"])]
    assert cv.metrics["rmse_lot"] == pytest.approx(np.mean(every))
    up = p[p["capacity_scale"] == 1.02]
    assert cv.metrics["bias_scale_1.02"] == pytest.approx((up["predicted_cycle_life"] - up["cycle_life"]).mean())


def test_relative_model_ignores_the_lot_and_the_absolute_one_does_not(lot_cv):
    def by_scale(name):
        p = lot_cv.results[name].predictions.sort_values(["repeat", "cell"], kind="stable")
        return {f: g["predicted_cycle_life"].to_numpy() for f, g in p.groupby("capacity_scale")}

    rel, ab = by_scale("relative"), by_scale("full_discharge")
    assert np.allclose(rel[0.98], rel[1.0], rtol=1e-6) and np.allclose(rel[1.02], rel[1.0], rtol=1e-6)
    assert not np.allclose(ab[1.02], ab[1.0], rtol=1e-3)
    assert lot_cv.results["relative"].metrics["rmse_lot"] == pytest.approx(
        lot_cv.results["relative"].metrics["rmse_mean"], rel=1e-6)


def test_rank_by_lot_metric_and_average_keeps_scales(lot_cv):
    table = lot_cv.table("rmse_lot")
    assert table["rmse_lot"].is_monotonic_increasing
    assert lot_cv.best_by("rmse_lot") == table["candidate"].iloc[0]
    avg = lot_cv.average(["relative", "full_discharge"], "avg")
    assert set(avg.predictions["capacity_scale"]) == {0.98, 1.0, 1.02} and "rmse_lot" in avg.metrics
    del lot_cv.results["avg"]
    with pytest.raises(BattlabError, match=r"no metric 'rmse_scale' to rank the candidates by"):
        lot_cv.table("rmse_scale")


@pytest.mark.parametrize("scales", [(0.0,), (1.02, -1.0), (float("nan"),)])
def test_a_bad_capacity_scale_is_a_clear_error(subset, scales):
    from battlab.cycling.models import cross_validate_cycle_life

    with pytest.raises(BattlabError, match=r"capacity_scales must be positive factors"):
        cross_validate_cycle_life(subset, capacity_scales=scales, feature_set="variance", components=0)


def test_fit_on_relative_features(subset):
    from battlab.cycling.models import fit_cycle_life, scale_capacity

    model = fit_cycle_life(subset, feature_set="relative", components=0, models=("ridge",), n_trials=2,
                           progress=False)
    assert model.features[-1] == "fade_intercept_2_100_per_Q2" and model.card["cycle_life"]["feature_set"] == "relative"
    test = subset.select(subset.cells["split"].to_numpy() == "test2")
    a, b = model.predict(test), model.predict(scale_capacity(test, 0.97))
    np.testing.assert_allclose(b["predicted_cycle_life"], a["predicted_cycle_life"], rtol=1e-6)
    with pytest.raises(BattlabError, match=r"a capacity scale must be a positive factor"):
        scale_capacity(test, 0)
