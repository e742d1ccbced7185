"""Tests of battlab.generate (ConditionalGaussian) and of generated rows in the SOH evaluation (issue 23, item 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from test_health import U, pulse_table

from battlab.errors import BattlabError
from battlab.generate import GENERATED, ConditionalGaussian
from battlab.health.soh import evaluate_soh, generated_rows, mape

A = np.array([[1.0, -0.5], [0.3, 2.0], [-1.2, 0.0]])  # outputs = A @ conditions + B + noise
B = np.array([0.5, -1.0, 2.0])
SIGMA = np.array([[0.04, 0.018, 0.0], [0.018, 0.09, -0.02], [0.0, -0.02, 0.0625]])


def synthetic(n: int = 4000, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """Known structure: a linear mean in two conditions and a correlated Gaussian scatter."""
    rng = np.random.default_rng(seed)
    c = rng.uniform([0, 10], [1, 20], size=(n, 2))
    y = c @ A.T + B + shift + rng.multivariate_normal(np.zeros(3), SIGMA, size=n)
    return pd.DataFrame({"c1": c[:, 0], "c2": c[:, 1], "y1": y[:, 0], "y2": y[:, 1], "y3": y[:, 2]})


def generator(**kwargs) -> ConditionalGaussian:
    return ConditionalGaussian(conditions=["c1", "c2"], outputs=["y1", "y2", "y3"], **kwargs)


def test_reproduces_known_mean_and_covariance() -> None:
    gen = generator(shrinkage=None).fit(synthetic())
    at = pd.DataFrame({"c1": [0.2, 0.8], "c2": [12.0, 18.0]})
    np.testing.assert_allclose(gen.mean(at).to_numpy(), at.to_numpy() @ A.T + B, atol=0.03)
    np.testing.assert_allclose(gen.covariance(), SIGMA, atol=0.006)
    rows = gen.sample(at.iloc[[1]], n=20000, seed=3)
    y = rows[["y1", "y2", "y3"]].to_numpy()
    np.testing.assert_allclose(y.mean(axis=0), at.to_numpy()[1] @ A.T + B, atol=0.02)
    np.testing.assert_allclose(np.cov(y.T), SIGMA, atol=0.006)
    assert (rows[["c1", "c2"]].to_numpy() == at.to_numpy()[1]).all()


def test_degree_one_is_the_gaussian_conditional_of_the_joint_normal() -> None:
    t = synthetic(n=300, seed=5)
    gen = generator(shrinkage=None, alpha=0.0).fit(t)
    Z = t[["c1", "c2", "y1", "y2", "y3"]].to_numpy()
    mu, S = Z.mean(axis=0), np.cov(Z.T, bias=True)
    Scc, Syc, Syy = S[:2, :2], S[2:, :2], S[2:, 2:]
    c = np.array([0.4, 15.0])
    expected_mean = mu[2:] + Syc @ np.linalg.solve(Scc, c - mu[:2])
    expected_cov = Syy - Syc @ np.linalg.solve(Scc, Syc.T)
    got = gen.mean(pd.DataFrame({"c1": [c[0]], "c2": [c[1]]})).to_numpy()[0]
    np.testing.assert_allclose(got, expected_mean, atol=1e-8)
    np.testing.assert_allclose(gen.covariance(), expected_cov, atol=1e-8)


def test_one_model_per_group() -> None:
    t = pd.concat([synthetic(2000, seed=1).assign(kind="a"), synthetic(2000, seed=2, shift=5.0).assign(kind="b")])
    gen = generator(by="kind").fit(t)
    at = pd.DataFrame({"c1": [0.5, 0.5], "c2": [15.0, 15.0], "kind": ["a", "b"]})
    means = gen.mean(at).to_numpy()
    np.testing.assert_allclose(means[1] - means[0], 5.0, atol=0.05)
    rows = gen.sample(at, n=3, seed=0)
    assert rows["kind"].tolist() == ["a"] * 3 + ["b"] * 3 and rows["source_row"].tolist() == [0, 0, 0, 1, 1, 1]


def test_seeded_and_marked() -> None:
    gen = generator(seed=7).fit(synthetic(500))
    at = pd.DataFrame({"c1": [0.5, 3.0], "c2": [15.0, 15.0]})
    a, b = gen.sample(at, n=4, seed=1), gen.sample(at, n=4, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["y1"], gen.sample(at, n=4, seed=2)["y1"])
    pd.testing.assert_frame_equal(gen.sample(at), gen.sample(at, seed=7))  # default: the estimator's seed
    assert a[GENERATED].all() and a[GENERATED].dtype == bool
    assert a["extrapolated"].tolist() == [False] * 4 + [True] * 4  # c1 = 3 is outside the fitted 0-1


def test_sklearn_style_and_round_trip(tmp_path: Path) -> None:
    gen = generator(degree=2)
    assert clone(gen).get_params()["degree"] == 2 and not hasattr(gen, "groups_")
    gen.fit(synthetic(500))
    assert gen.n_features_in_ == 2
    path = gen.save(tmp_path / "gen")
    back = ConditionalGaussian.load(path)
    at = pd.DataFrame({"c1": [0.1], "c2": [11.0]})
    pd.testing.assert_frame_equal(back.sample(at, n=5, seed=4), gen.sample(at, n=5, seed=4))
    with pytest.raises(BattlabError, match="no generator at"):
        ConditionalGaussian.load(tmp_path / "nothing.joblib")


def _bad_fit(edit, **params):
    def run():
        generator(**params).fit(edit(synthetic(50)))
    return run


def _bad_sample(conditions, **kwargs):
    def run():
        generator(by="kind").fit(synthetic(50).assign(kind="a")).sample(conditions, **kwargs)
    return run


GOOD = pd.DataFrame({"c1": [0.5], "c2": [15.0], "kind": ["a"]})


@pytest.mark.parametrize(("action", "message"), [
    (_bad_sample(GOOD.drop(columns="c2")), r"the conditions table has no column\(s\) \['c2'\]"),
    (_bad_sample(GOOD.assign(c1=["x"])), r"row 0, column 'c1': 'x' is not a finite number"),
    (_bad_sample(GOOD.assign(c2=[np.nan])), r"row 0, column 'c2': nan is not a finite number"),
    (_bad_sample(GOOD.assign(c2=[np.inf])), r"row 0, column 'c2': inf is not a finite number"),
    (_bad_sample(GOOD.assign(kind=["z"])), r"row 0, column 'kind': 'z' was not fitted \(fitted: \['a'\]\)"),
    (_bad_sample(GOOD.drop(columns="kind")), r"no grouping column 'kind'"),
    (_bad_sample(GOOD, n=0), r"n must be a whole number of rows per condition >= 1, got 0"),
    (_bad_sample([0.5, 15.0]), r"expected the conditions as a table \(DataFrame\), got list"),
    (lambda: generator().sample(GOOD), r"not fitted: call fit\(table\) first"),
    (_bad_fit(lambda t: t.drop(columns="y2")), r"the training table has no column\(s\) \['y2'\]"),
    (_bad_fit(lambda t: t.assign(**{GENERATED: [False] * 49 + [True]})), r"row 49 is marked 'generated'"),
    (_bad_fit(lambda t: t.head(4)), r"group '__all__': 4 row\(s\), too few for a degree-1 generator"),
    (_bad_fit(lambda t: t, degree=0), r"degree must be an integer >= 1 or a tuple of them, got 0"),
    (_bad_fit(lambda t: t, shrinkage="lots"), r"shrinkage must be 'ledoit-wolf', None or a number"),
    (lambda: ConditionalGaussian(conditions=["c1"], outputs=["c1", "y1"]).fit(synthetic(50)),
     r"column\(s\) \['c1'\] are both conditions and outputs"),
])
def test_bad_input_one_line(action, message: str) -> None:
    with pytest.raises(BattlabError, match=message) as info:
        action()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- generated rows in the SOH evaluation


def test_generated_rows_use_training_soh_only() -> None:
    t = pulse_table(n_cells=6)
    train = t[t["SOC"].isin([5, 25, 50])]
    rows = generated_rows(train, [10, 40], ConditionalGaussian(outputs=U, degree=2), seed=0)
    assert len(rows) == 6 * 2 and rows[GENERATED].all() and set(rows["SOC"]) == {10.0, 40.0}
    assert set(rows["SOH"]) == set(train["SOH"]) and set(rows["cell_id"]) == set(train["cell_id"])
    # the voltages follow the measured pulse response at those levels (the OCV here is curved in SOC/SOH: degree 2)
    measured = t.set_index(["cell_id", "SOC"])["U1"]
    gen = rows.set_index(["cell_id", "SOC"])["U1"]
    np.testing.assert_allclose(gen.to_numpy(), measured.loc[gen.index].to_numpy(), atol=0.02)


def test_evaluation_never_scores_generated_rows() -> None:
    t = pulse_table(n_cells=8).assign(cell_kind="toy", generated=False)
    # rows already marked generated (at a test SOC level, with a wrong SOH): never test rows
    fake = t[t["SOC"] == 10].assign(generated=True, SOH=0.1)
    table = pd.concat([t, fake], ignore_index=True)
    options = {"models": ("ridge",), "n_trials": 1, "feature_sets": ("pulse+soc",)}
    pred = evaluate_soh(table, "soc_interpolation", generator=ConditionalGaussian(outputs=U, degree=2), **options)
    assert len(pred) == 8 * 5 and sorted(pred["SOC"].unique()) == [10, 20, 30, 40, 45]
    assert (pred["SOH"] > 0.5).all()  # none of the marked rows (SOH 0.1)
    measured = set(zip(t["cell_id"], t["SOC"], strict=True))
    assert set(zip(pred["cell_id"], pred["SOC"], strict=True)) <= measured
    assert (pred["n_generated"] == 8 * 5).all()  # 8 training samples x 5 missing SOC levels
    assert mape(pred["SOH"], pred["SOH_pred"]) < 3.0 and np.isfinite(pred["SOH_pred_generated"]).all()
    plain = evaluate_soh(t.drop(columns="generated"), "soc_interpolation", **options)
    np.testing.assert_allclose(pred["SOH_pred"], plain["SOH_pred"])  # the choice is made on measured rows only


def test_generated_rows_fill_unseen_soc_of_a_toy_table() -> None:
    t = pulse_table(n_cells=8).assign(cell_kind="toy")
    pred = evaluate_soh(t, "soc_interpolation", generator=ConditionalGaussian(outputs=U, degree=2),
                        models=("ridge",), n_trials=1, feature_sets=("pulse+soc",))
    assert mape(pred["SOH"], pred["SOH_pred_generated"]) < 1.0


def test_nothing_generated_where_no_soc_level_is_missing() -> None:
    t = pulse_table(n_cells=10).assign(cell_kind="toy")
    pred = evaluate_soh(t, "unseen_cells", generator=ConditionalGaussian(outputs=U), models=("ridge",), n_trials=1,
                        feature_sets=("pulse+soc",))
    assert (pred["n_generated"] == 0).all()
    np.testing.assert_allclose(pred["SOH_pred_generated"], pred["SOH_pred"])


def test_degree_chosen_by_leaving_levels_out() -> None:
    rng = np.random.default_rng(0)
    level = np.repeat(np.arange(0.0, 60.0, 10.0), 40)
    other = rng.uniform(0.7, 1.0, len(level))
    t = pd.DataFrame({"SOC": level, "SOH": other, "y": 0.002 * (level - 30) ** 2 + other
                      + rng.normal(scale=0.05, size=len(level))})
    gen = ConditionalGaussian(conditions=["SOC", "SOH"], outputs=["y"], degree=(1, 2), degree_by="SOC").fit(t)
    assert gen.degree_ == 2 and gen.degree_scores_[2] < gen.degree_scores_[1]
    assert ConditionalGaussian(conditions=["SOC", "SOH"], outputs=["y"], degree=3).fit(t).degree_scores_ == {}
    with pytest.raises(BattlabError, match=r"degree candidates \(1, 2\) need degree_by"):
        ConditionalGaussian(conditions=["SOC", "SOH"], outputs=["y"], degree=(1, 2)).fit(t)
