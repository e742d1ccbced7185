"""battlab.plan: ask/tell campaigns, search spaces, surrogates, acquisitions, retrospective screening."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from battlab.errors import BattlabError
from battlab.plan import Campaign, CandidatePool, GroupCalibrated, ProcessWindow, TreeEnsemble
from battlab.plan.acquisition import expected_improvement, upper_confidence_bound
from battlab.plan.screening import (
    acceleration_factor,
    enhancement_factor,
    expected_random_experiments,
    experiments_to_find,
    screen,
    top_mask,
)


class FixedPosterior:
    """A model whose posterior is written in the features: mean = column 0, std = column 1."""

    def fit(self, X, y):
        return self

    def predict(self, X, return_std=False):
        X = np.asarray(X, dtype=float)
        return (X[:, 0], X[:, 1]) if return_std else X[:, 0]

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self


def toy_pool(n: int = 60) -> tuple[CandidatePool, np.ndarray]:
    x = np.linspace(0.0, 1.0, n)
    table = pd.DataFrame({"name": [f"c{i}" for i in range(n)], "x": x})
    return CandidatePool(table, features=["x"], id_column="name"), -((x - 0.7) ** 2)


def truth(pool: CandidatePool, values: np.ndarray, ids) -> np.ndarray:
    pos = {d: i for i, d in enumerate(pool.ids)}
    return values[[pos[d] for d in ids]]


def run(campaign: Campaign, pool: CandidatePool, values: np.ndarray, rounds: int, size: int = 3) -> None:
    for _ in range(rounds):
        batch = campaign.suggest(size)
        campaign.observe(batch, truth(pool, values, batch["design_id"]))


def window() -> ProcessWindow:
    return ProcessWindow({"thickness_um": (40.0, 120.0), "porosity": (0.25, 0.45), "passes": (1, 4, "int"),
                          "binder": ["PVDF", "CMC"]},
                         constraints=["thickness_um * (1 - porosity) <= 80"])


def window_result(batch: pd.DataFrame) -> np.ndarray:
    return (-(batch["thickness_um"] - 90) ** 2 / 100 - 50 * (batch["porosity"] - 0.3) ** 2
            + 0.5 * (batch["binder"] == "CMC") - 0.1 * batch["passes"]).to_numpy()


# --------------------------------------------------------------------------------------------- acquisitions
def test_expected_improvement_is_the_expected_gain_of_a_normal_posterior():
    rng = np.random.default_rng(0)
    mean, std, best = np.array([0.2, 1.0, 1.5]), np.array([0.5, 0.3, 0.1]), 1.1
    draws = mean + std * rng.standard_normal((200_000, 3))
    monte_carlo = np.maximum(draws - best, 0).mean(axis=0)
    np.testing.assert_allclose(expected_improvement(mean, std, best), monte_carlo, rtol=0.01, atol=5e-4)
    # no uncertainty: the plain improvement, never negative
    assert expected_improvement(np.array([2.0, 0.5]), np.zeros(2), best=1.0).tolist() == [1.0, 0.0]


def test_upper_confidence_bound_rejects_negative_kappa():
    assert upper_confidence_bound(np.array([1.0]), np.array([0.5]), kappa=2).tolist() == [2.0]
    with pytest.raises(BattlabError, match="kappa"):
        upper_confidence_bound(np.array([1.0]), np.array([0.5]), kappa=-1)


def posterior_campaign(acquisition: str, **kwargs) -> Campaign:
    """Candidates A..D with a known posterior; two earlier results make the best so far 1.0."""
    table = pd.DataFrame({"id": ["A", "B", "C", "D", "seen1", "seen2"],
                          "mean": [1.1, 0.9, 0.0, -5.0, 1.0, 0.0], "std": [0.01, 0.5, 0.1, 1.0, 0.0, 0.0]})
    pool = CandidatePool(table, features=["mean", "std"], id_column="id")
    campaign = Campaign(pool, model=FixedPosterior(), acquisition=acquisition, batch="greedy", **kwargs) \
        if acquisition != "ts" else Campaign(pool, model=FixedPosterior(), acquisition="ts", **kwargs)
    campaign.add_data(["seen1", "seen2"], [1.0, 0.0])
    return campaign


@pytest.mark.parametrize("acquisition, kwargs, expected", [
    ("mean", {}, "A"),                        # pure exploitation: the highest mean
    ("explore", {}, "D"),                     # pure exploration: the largest uncertainty
    ("ei", {}, "B"),                          # EI: B's chance of beating 1.0 outweighs A's sure 0.1
    ("ucb", {"kappa": 0.1}, "A"),             # UCB with little weight on uncertainty: exploitation
    ("ucb", {"kappa": 2.0}, "B"),             # ... with more: B's 0.9 + 2 x 0.5
])
def test_acquisitions_pick_what_they_define(acquisition, kwargs, expected):
    batch = posterior_campaign(acquisition, **kwargs).suggest(1)
    assert batch["design_id"].tolist() == [expected]
    if acquisition == "ei":
        assert batch["acquisition"].iloc[0] == pytest.approx(float(expected_improvement(0.9, 0.5, 1.0)))


def test_thompson_sampling_picks_each_candidate_with_its_probability_of_being_best():
    """Two candidates, independent normal posteriors: P(pick B) = P(f_B > f_A)."""
    table = pd.DataFrame({"id": ["A", "B", "s1", "s2"], "mean": [0.0, 0.3, 0, 0], "std": [0.5, 0.5, 0, 0]})
    pool = CandidatePool(table, features=["mean", "std"], id_column="id")
    picks = []
    for seed in range(600):
        campaign = Campaign(pool, model=FixedPosterior(), acquisition="ts", seed=seed)
        campaign.add_data(["s1", "s2"], [0.0, 0.0])
        picks.append(campaign.suggest(1)["design_id"].iloc[0])
    share_b = np.mean(np.array(picks) == "B")
    expected = norm.cdf(0.3 / np.sqrt(0.5**2 + 0.5**2))  # 0.66
    assert abs(share_b - expected) < 0.06


# ---------------------------------------------------------------------------------------------- batches
def test_diverse_batches_spread_out_where_greedy_batches_cluster():
    pool, values = toy_pool(101)

    def spread(batch_kind: str, model: str) -> float:
        campaign = Campaign(pool, model=model, acquisition="ucb", kappa=1.0, batch=batch_kind, transform="none", seed=3)
        campaign.add_data([f"c{i}" for i in (0, 30, 50, 100)], truth(pool, values, ["c0", "c30", "c50", "c100"]))
        xs = np.sort(pool.rows(campaign.suggest(4)["design_id"])["x"].to_numpy())
        return float(np.min(np.diff(xs)))

    greedy = spread("greedy", "gp")
    assert greedy <= 0.011  # neighbours on a 0.01 grid
    assert spread("believer", "gp") > 3 * greedy
    assert spread("penalize", "gp") > 3 * greedy


def test_thompson_batch_has_distinct_designs():
    pool, values = toy_pool()
    campaign = Campaign(pool, model="et", acquisition="ts", seed=0)
    run(campaign, pool, values, rounds=2, size=4)
    batch = campaign.suggest(5)
    assert batch["design_id"].is_unique and len(batch) == 5
    assert not set(batch["design_id"]) & set(campaign.observations["design_id"])


def test_a_campaign_finds_the_optimum_of_a_toy_pool():
    pool, values = toy_pool(101)
    campaign = Campaign(pool, model="gp", acquisition="ei", seed=0)
    run(campaign, pool, values, rounds=6, size=2)
    assert campaign.best["result"] > -0.0005  # within 0.02 of x = 0.7 after 12 of 101 candidates


# ------------------------------------------------------------------------------------------- save, load
def test_pool_campaign_round_trips_and_continues_identically(tmp_path):
    pool, values = toy_pool()
    campaign = Campaign(pool, model="et-group", acquisition="ei", seed=5)
    run(campaign, pool, values, rounds=2)
    campaign.suggest(2)  # two designs left pending
    campaign.observe(campaign.pending.iloc[[0]], [float("nan")])  # one failed, kept aside
    campaign.save(tmp_path / "c")
    loaded = Campaign.load(tmp_path / "c")
    for name in ("observations", "pending", "failed"):
        pd.testing.assert_frame_equal(getattr(loaded, name).reset_index(drop=True),
                                      getattr(campaign, name).reset_index(drop=True), check_dtype=False)
    assert loaded.round == campaign.round and repr(loaded) == repr(campaign)
    pd.testing.assert_frame_equal(loaded.suggest(3), campaign.suggest(3))
    state = json.loads((tmp_path / "c" / "campaign.json").read_text())
    assert state["version"] == 1 and state["format"] == "battlab.plan.Campaign"


def test_window_campaign_round_trips_with_a_custom_model(tmp_path):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import Matern, WhiteKernel

    gp = GaussianProcessRegressor(Matern(length_scale=0.5) + WhiteKernel(0.01), normalize_y=True, random_state=0)
    campaign = Campaign(window(), model=gp, acquisition="ucb", seed=2)
    for _ in range(2):
        batch = campaign.suggest(4)
        campaign.observe(batch, window_result(batch))
    loaded = Campaign.load(campaign.save(tmp_path / "w"))
    pd.testing.assert_frame_equal(loaded.suggest(2), campaign.suggest(2))


def test_load_refuses_other_versions_and_missing_files(tmp_path):
    pool, values = toy_pool()
    campaign = Campaign(pool, model="et")
    folder = campaign.save(tmp_path / "c")
    state = json.loads((folder / "campaign.json").read_text())
    (folder / "campaign.json").write_text(json.dumps({**state, "version": 99}))
    with pytest.raises(BattlabError, match="state version 99"):
        Campaign.load(folder)
    (folder / "pending.parquet").unlink()
    with pytest.raises(BattlabError, match="no pending.parquet"):
        Campaign.load(folder)


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_same_campaign_other_seed_other_start():
    pool, values = toy_pool()

    def ids(seed: int) -> list[list[str]]:
        campaign = Campaign(pool, model="et-group", acquisition="ucb", seed=seed)
        out = []
        for _ in range(3):
            batch = campaign.suggest(3)
            campaign.observe(batch, truth(pool, values, batch["design_id"]))
            out.append(batch["design_id"].tolist())
        return out

    assert ids(1) == ids(1)
    assert ids(1)[0] != ids(2)[0]
    w1, w2 = Campaign(window(), model="gp", seed=4), Campaign(window(), model="gp", seed=4)
    pd.testing.assert_frame_equal(w1.suggest(4), w2.suggest(4))


def test_rank_transform_makes_decisions_depend_only_on_the_order_of_results():
    pool, values = toy_pool()

    def history(scale) -> tuple[list[str], pd.DataFrame]:
        campaign = Campaign(pool, model="et-group", acquisition="ucb", kappa=1.0, transform="rank", seed=0)
        ids = []
        for _ in range(3):
            batch = campaign.suggest(4)
            campaign.observe(batch, scale(truth(pool, values, batch["design_id"])))
            ids += batch["design_id"].tolist()
        return ids, campaign.suggest(3)

    plain_ids, plain = history(lambda v: v)
    exp_ids, stretched = history(lambda v: np.exp(20 * v))  # same order, a long tail
    assert plain_ids == exp_ids
    assert plain["design_id"].tolist() == stretched["design_id"].tolist()
    observed = np.exp(20 * values)
    assert stretched["mean"].between(observed.min(), observed.max()).all()  # reported in result units
    with pytest.raises(BattlabError, match="unknown transform 'log'"):
        Campaign(pool, transform="log")


def test_floor_transform_ignores_how_poor_the_poorest_results_are():
    """The default in a pool: results below the lower quartile of those measured are raised to it, so a censored
    tail (1e-15 S/cm) steers neither the trees' splits nor their spread; the better results keep their gaps."""
    X = np.random.default_rng(0).uniform(size=(80, 3))
    values = -(X[:, 0] - 0.7) ** 2 - (X[:, 1] - 0.3) ** 2
    pool = CandidatePool(pd.DataFrame({"name": [f"c{i}" for i in range(80)], "a": X[:, 0], "b": X[:, 1],
                                       "c": X[:, 2]}), features=["a", "b", "c"], id_column="name")
    poor = np.quantile(values, 0.2)

    def history(tail: float, transform: str) -> list[str]:
        campaign = Campaign(pool, model="et-group", model_params={"n_estimators": 20, "max_features": 1.0},
                            transform=transform, seed=0)
        ids = []
        for _ in range(4):
            batch = campaign.suggest(4)
            v = truth(pool, values, batch["design_id"])
            campaign.observe(batch, np.where(v < poor, tail, v))  # the poorest fifth: as they are, or censored
            ids += batch["design_id"].tolist()
        return ids

    assert Campaign(pool).transform == "auto" and Campaign(pool)._transform() == "floor"
    assert Campaign(window())._transform() == "none"
    assert history(poor, "floor") == history(-15.0, "floor") == history(-15.0, "auto")
    assert history(poor, "none") != history(-15.0, "none")  # without the floor the tail changes the picks


# ------------------------------------------------------------------------------------------------ window
def test_window_suggestions_respect_bounds_types_and_constraints():
    campaign = Campaign(window(), model="gp", acquisition="ei", seed=0)
    for _ in range(4):
        batch = campaign.suggest(4)
        assert (batch["thickness_um"] * (1 - batch["porosity"]) <= 80 + 1e-9).all()
        assert batch["passes"].isin([1, 2, 3, 4]).all() and batch["binder"].isin(["PVDF", "CMC"]).all()
        assert batch["design_id"].is_unique
        campaign.observe(batch, window_result(batch))
    assert campaign.best["binder"] == "CMC"  # the model learned the categorical effect
    assert len(campaign.observations) == 16 and campaign.observations["design_id"].is_unique


def test_window_rejects_bad_bounds_and_constraints():
    with pytest.raises(BattlabError, match="low < high"):
        ProcessWindow({"x": (1.0, 0.0)})
    with pytest.raises(BattlabError, match=re.escape("constraint 'x + z <= 1' cannot be evaluated")):
        ProcessWindow({"x": (0.0, 1.0)}, constraints=["x + z <= 1"])
    with pytest.raises(BattlabError, match="not a true/false expression"):
        ProcessWindow({"x": (0.0, 1.0)}, constraints=["x * 2"])
    with pytest.raises(BattlabError, match="only 0 of"):
        ProcessWindow({"x": (0.0, 1.0)}, constraints=["x > 2"]).sample(4, max_tries=2)


def test_earlier_window_experiments_are_checked_row_and_column():
    campaign = Campaign(window(), model="gp")
    good = pd.DataFrame({"thickness_um": [60.0], "porosity": [0.3], "passes": [2], "binder": ["CMC"]})
    campaign.add_data(good, [1.0])
    bad = pd.concat([good, good.assign(porosity=0.9)], ignore_index=True)
    with pytest.raises(BattlabError, match=r"row 1, column 'porosity' is 0.9, not in \[0.25, 0.45\]"):
        campaign.add_data(bad, [1.0, 2.0])
    with pytest.raises(BattlabError, match="row 0 breaks the constraint"):
        campaign.add_data(good.assign(thickness_um=119.0, porosity=0.26), [1.0])
    assert len(campaign.observations) == 1  # nothing of the bad calls was recorded


# --------------------------------------------------------------------------------------------- bad input
def test_candidate_table_without_the_models_features():
    from battlab.featurize import composition_features

    formulas = ["LiCoO2", "LiFePO4", "Li2S", "LiMn2O4"]
    table = composition_features(formulas, preset="magpie").assign(formula=formulas)
    features = table.columns[:-1].tolist()
    CandidatePool(table, features=features, formula_column="formula")  # complete: fine
    with pytest.raises(BattlabError, match=r"lacks 1 of the model's 132 feature column\(s\): 'MagpieData mean Number'"):
        CandidatePool(table.drop(columns=["MagpieData mean Number"]), features=features)
    with pytest.raises(BattlabError, match=r"feature column 'x' is not numeric \(row 1: 'abc'\)"):
        CandidatePool(pd.DataFrame({"x": ["1.5", "abc"]}), features=["x"])
    with pytest.raises(BattlabError, match="id 'a' appears more than once"):
        CandidatePool(pd.DataFrame({"id": ["a", "a"], "x": [1.0, 2.0]}), id_column="id")


def test_result_for_a_design_never_suggested_changes_nothing():
    pool, values = toy_pool()
    campaign = Campaign(pool, model="et", seed=0)
    batch = campaign.suggest(3)
    before = campaign.pending.copy()
    with pytest.raises(BattlabError, match="design 'c59' was never suggested"):
        campaign.observe([*batch["design_id"], "c59"], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(BattlabError, match="got 2 result"):
        campaign.observe(batch, [0.1, 0.2])
    pd.testing.assert_frame_equal(campaign.pending, before)
    assert len(campaign.observations) == 0
    campaign.observe(batch, [0.1, 0.2, 0.3])
    with pytest.raises(BattlabError, match="already observed"):
        campaign.observe(batch.iloc[:1], [0.5])
    with pytest.raises(BattlabError, match=r"1 id\(s\) not in the candidate pool: zz"):
        campaign.add_data(["zz"], [1.0])


def test_nan_and_text_results_are_kept_aside_with_the_reason():
    pool, values = toy_pool()
    campaign = Campaign(pool, model="et", seed=0)
    batch = campaign.suggest(4)
    report = campaign.observe(batch, [0.5, float("nan"), "n/a", np.inf])
    assert report["status"].tolist() == ["observed", "failed", "failed", "failed"]
    assert campaign.failed["reason"].tolist() == ["result is missing (NaN)", "result 'n/a' is not a number",
                                                   "result is not finite"]
    assert campaign.failed["design_id"].tolist() == batch["design_id"].iloc[1:].tolist()
    assert campaign.observations["design_id"].tolist() == batch["design_id"].iloc[:1].tolist()
    assert len(campaign.pending) == 0
    later = campaign.suggest(50)  # failed designs are not suggested again
    assert not set(later["design_id"]) & set(campaign.failed["design_id"])
    with pytest.raises(BattlabError, match="already recorded as failed"):
        campaign.observe(batch.iloc[[1]], [0.3])


def test_bad_settings_are_named():
    pool, _ = toy_pool()
    with pytest.raises(BattlabError, match="unknown acquisition 'pi'"):
        Campaign(pool, acquisition="pi")
    with pytest.raises(BattlabError, match="unknown surrogate 'xgb'"):
        Campaign(pool, model="xgb")
    with pytest.raises(BattlabError, match="Thompson batches"):
        Campaign(pool, acquisition="ei", batch="thompson")
    with pytest.raises(BattlabError, match="batch_size must be an integer >= 1"):
        Campaign(pool).suggest(0)


def test_an_exhausted_pool_says_so():
    pool, values = toy_pool(5)
    campaign = Campaign(pool, model="et")
    run(campaign, pool, values, rounds=2, size=3)  # 3 + the 2 left
    with pytest.raises(BattlabError, match="no candidate left"):
        campaign.suggest(1)


# ------------------------------------------------------------------------------------------- surrogates
def test_grouped_calibration_widens_the_uncertainty_of_unseen_groups():
    """Groups with their own offset: within a measured group the trees are right, on a new group far off."""
    rng = np.random.default_rng(0)
    groups = np.repeat([f"g{i}" for i in range(12)], 10)
    offset = dict(zip(np.unique(groups), rng.normal(scale=3.0, size=12), strict=True))
    X = np.column_stack([rng.uniform(size=120), rng.uniform(size=120)])
    y = np.array([offset[g] for g in groups]) + X[:, 0] + rng.normal(scale=0.05, size=120)
    X = np.column_stack([X, [offset[g] + rng.normal(scale=0.5) for g in groups]])  # a noisy hint of the group
    model = GroupCalibrated(TreeEnsemble(n_estimators=50), split="group", novelty=True).fit(X, y, groups=groups)
    assert model.split_used_ == "group"
    assert model.scale_new_ > 1.5 * model.scale_seen_
    _, std_seen = model.predict(X[:5], return_std=True, groups=groups[:5])
    _, std_new = model.predict(X[:5], return_std=True, groups=["unseen"] * 5)
    np.testing.assert_allclose(std_new / std_seen, model.scale_new_ / model.scale_seen_)
    random = GroupCalibrated(TreeEnsemble(n_estimators=50), split="random").fit(X, y, groups=groups)
    assert random.scale_new_ < model.scale_new_


def test_bagged_zoo_model_gives_a_spread():
    from battlab.plan import Bagged

    rng = np.random.default_rng(1)
    X = rng.uniform(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=60)
    model = Bagged("ridge", n_members=4).fit(X, y)
    mean, std = model.predict(X[:10], return_std=True)
    assert np.abs(mean - y[:10]).mean() < 0.3 and (std > 0).all()


# -------------------------------------------------------------------------------------------- screening
def test_screening_figures_follow_rohr_definitions():
    y = np.arange(200.0)
    top = top_mask(y, 0.05)
    assert top.sum() == 10 and top[-10:].all()
    perfect = np.argsort(-y)
    assert experiments_to_find(perfect, top, 5) == 5
    af, median = acceleration_factor([perfect], top, 0.5)
    assert median == 5 and af == pytest.approx(expected_random_experiments(5, 10, 200) / 5)
    assert enhancement_factor([perfect], top, 10, 200) == pytest.approx(20.0)
    # random orders: AF and EF near 1 on average
    rng = np.random.default_rng(0)
    orders = [rng.permutation(200) for _ in range(400)]
    assert acceleration_factor(orders, top, 0.5)[0] == pytest.approx(1.0, abs=0.12)
    assert enhancement_factor(orders, top, 50, 200) == pytest.approx(1.0, abs=0.1)
    assert experiments_to_find(np.arange(10), top, 1) is None


def test_screen_replays_a_campaign_until_the_top_is_found():
    pool, values = toy_pool(60)
    pool_ids = CandidatePool(pool.table.assign(pos=[str(i) for i in range(60)]), features=["x"], id_column="pos")
    result = screen("gp_ei", lambda seed: Campaign(pool_ids, model="gp", acquisition="ei", seed=seed), values,
                    seeds=[0, 1], n_initial=5, batch_size=2, budget=30, progress=False)
    frame = result.to_frame()
    assert frame["seed"].tolist() == [0, 1] and result.n_top == 3
    assert (frame["experiments_to_1"] <= 30).all()  # a smooth 1-D optimum: the top 3 found
    assert result.af[1.0] > 1.5


def test_obelix_pool_campaign_with_grouped_uncertainty(data_cache):
    from battlab.curate import curate_dataset
    from battlab.featurize import add_model_target, featurize_table

    result, card = curate_dataset("obelix", group_by=["split", "ID"])
    table, info = featurize_table(result.curated, formula_column="formula")
    table, target = add_model_target(table, card.target, log=True)
    table = table[table[target].notna()].reset_index(drop=True)
    pool = CandidatePool(table, features=info["feature"].tolist(), id_column="ID", formula_column="formula")
    campaign = Campaign(pool, model="et-group", model_params={"n_estimators": 30}, acquisition="ucb", seed=0)
    y = dict(zip(table["ID"].astype(str), table[target], strict=True))
    for size in (20, 5):
        batch = campaign.suggest(size)
        campaign.observe(batch, [y[d] for d in batch["design_id"]])
    batch = campaign.suggest(5)
    assert campaign.model_.split_used_ == "group"  # 25 materials span enough chemical systems
    assert batch["std"].gt(0).all() and batch["formula"].notna().all()


# -------------------------------------------------------------------------------- recovery from a bad start
def plateau_pool(n: int = 80) -> tuple[CandidatePool, np.ndarray]:
    """A broad mediocre plateau (x < 0.6, results -3 +- 0.3) and a narrow good peak (x > 0.85, results > -1)."""
    rng = np.random.default_rng(7)
    x = np.sort(rng.uniform(0.0, 1.0, n))
    values = np.where(x > 0.85, -0.5 - 2 * (x - 0.95) ** 2, -3.0 + 0.3 * np.sin(9 * x) - 3 * (x > 0.6))
    table = pd.DataFrame({"name": [f"c{i}" for i in range(n)], "x": x})
    return CandidatePool(table, features=["x"], id_column="name"), values


def test_stalled_rounds_count_rounds_without_a_better_result():
    pool, _ = toy_pool()
    for maximize, sign in ((True, 1.0), (False, -1.0)):
        campaign = Campaign(pool, model="et", model_params={"n_estimators": 10}, maximize=maximize, seed=0)
        counts = []
        for results in ([1.0, 2.0, 3.0], [0.0, 2.5], [3.0, 1.0], [3.5, 0.0], [1.0, 1.0]):
            batch = campaign.suggest(len(results))
            campaign.observe(batch, sign * np.array(results))
            counts.append(campaign.stalled_rounds())
        assert counts == [0, 1, 2, 0, 1]  # the start is no stall; 3.0 ties the best (no gain); 3.5 beats it
    assert Campaign(pool).stalled_rounds() == 0


def test_exploration_starts_once_the_results_stall_after_the_models_picks():
    pool, values = plateau_pool()
    poor = [d for d, x in zip(pool.ids, pool.table["x"], strict=True) if x < 0.5][::3]  # no good member

    def campaign_from_a_poor_start(explore_after: int) -> tuple[Campaign, list[int], list[list[str]]]:
        campaign = Campaign(pool, model="et", model_params={"n_estimators": 30}, acquisition="ucb", kappa=0.1,
                            batch="greedy", explore_after=explore_after, seed=1)
        campaign.add_data(poor, truth(pool, values, poor))
        picks, batches = [], []
        for _ in range(8):
            batch = campaign.suggest(4)
            campaign.observe(batch, truth(pool, values, batch["design_id"]))
            picks.append(campaign.explore_picks_)
            batches.append(batch["design_id"].tolist())
        return campaign, picks, batches

    stuck, none, greedy = campaign_from_a_poor_start(explore_after=0)
    assert none == [0] * 8 and stuck.best["result"] < -1  # greedy UCB stays on the plateau
    _, picks, explored = campaign_from_a_poor_start(explore_after=2)
    first = int(np.argmax(np.array(picks) > 0))
    assert picks[0] == 0 and first > 0  # exploration only once the results stall
    assert explored[:first] == greedy[:first]  # the same campaign until then
    assert explored[first][:-picks[first]] == greedy[first][:-picks[first]]  # the model's picks come first
    # the exploring picks are the top of UCB with explore_kappa (the test below); here the trees agree everywhere
    # beyond the measured plateau (no spread there), so they do not reach the peak in this one-feature toy


def test_exploring_picks_are_the_upper_confidence_bound_with_more_weight_on_the_uncertainty():
    """Once stalled, the last explore_share of the batch is the top of mean + explore_kappa * std (not yet picked)."""
    table = pd.DataFrame({"id": ["A", "B", "C", "D", "E", "F", "s1", "s2"],
                          "mean": [1.0, 0.9, 0.8, 0.0, -0.4, -3.0, 0.0, 0.0],
                          "std": [0.0, 0.0, 0.1, 1.5, 2.0, 3.5, 0.0, 0.0]})
    pool = CandidatePool(table, features=["mean", "std"], id_column="id")
    campaign = Campaign(pool, model=FixedPosterior(), acquisition="ucb", kappa=0.1, explore_after=2,
                        explore_share=0.5, explore_kappa=1.0, explore_clusters=0)
    campaign.add_data(["s1", "s2"], [5.0, 0.0])  # a best no candidate beats: every round stalls
    for _ in range(2):
        batch = campaign.suggest(1)  # A, then B: the highest mean + 0.1 std
        campaign.observe(batch, [0.0])
    assert campaign.stalled_rounds() == 2
    batch = campaign.suggest(2)
    # C is the model's pick (0.81); then the largest mean + 1.0 std: E (1.6) before D (1.5) and F (0.5)
    assert batch["design_id"].tolist() == ["C", "E"] and campaign.explore_picks_ == 1
    assert batch["acquisition"].tolist() == pytest.approx([0.81, -0.2])  # scored by the campaign's UCB


def test_exploring_picks_turn_random_once_they_too_have_stalled():
    """After explore_after + explore_random_after stalled rounds the exploring picks are random draws (seeded)."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"id": [f"c{i}" for i in range(60)] + ["s1", "s2"],
                          "mean": np.r_[np.linspace(1.0, 0.0, 60), 0.0, 0.0],
                          "std": np.r_[rng.uniform(0, 1, 60), 0, 0]})
    pool = CandidatePool(table, features=["mean", "std"], id_column="id")

    def exploring_picks(random_after: int, seed: int = 0) -> list[list[str]]:
        campaign = Campaign(pool, model=FixedPosterior(), acquisition="ucb", kappa=0.1, explore_after=1,
                            explore_share=0.5, explore_kappa=1.0, explore_random_after=random_after,
                            explore_clusters=0, seed=seed)
        campaign.add_data(["s1", "s2"], [5.0, 0.0])  # a best no candidate beats: every round stalls
        out = []
        for _ in range(4):
            batch = campaign.suggest(4)
            out.append(batch["design_id"].tolist()[-campaign.explore_picks_:] if campaign.explore_picks_ else [])
            campaign.observe(batch, [0.0] * 4)
        return out

    ucb, random_ = exploring_picks(0), exploring_picks(2)
    assert ucb[0] == random_[0] == []  # round 1: no stall yet
    assert ucb[1:3] == random_[1:3]  # stalled 1 and 2 rounds: the upper confidence bound, as without the option
    assert random_[3] != ucb[3] and len(random_[3]) == 2  # stalled 3 = 1 + 2 rounds: random picks
    mean_std = table.set_index("id")
    bound = mean_std["mean"] + mean_std["std"]
    assert bound[random_[3]].max() < bound[ucb[3]].min()  # not the top of the bound: drawn from all that are left
    assert exploring_picks(2) == random_ and exploring_picks(2, seed=1)[3] != random_[3]  # the seed decides


def test_random_exploring_picks_leave_a_plateau_that_uncertainty_does_not():
    pool, values = plateau_pool()
    poor = [d for d, x in zip(pool.ids, pool.table["x"], strict=True) if x < 0.5][::3]  # no good member

    def best_after(random_after: int) -> float:
        campaign = Campaign(pool, model="et", model_params={"n_estimators": 30}, acquisition="ucb", kappa=0.1,
                            batch="greedy", explore_after=2, explore_random_after=random_after,
                            explore_clusters=0, seed=1)
        campaign.add_data(poor, truth(pool, values, poor))
        for _ in range(12):
            batch = campaign.suggest(4)
            campaign.observe(batch, truth(pool, values, batch["design_id"]))
        return float(campaign.best["result"])

    assert best_after(0) < -1 < best_after(1)  # the peak (results > -1) is found only with random picks


def test_cluster_exploring_picks_go_to_the_least_measured_cluster_first():
    """explore_clusters: each exploring pick is the best bound of the cluster least measured for its size."""
    # three families far apart in the features (mean, std of FixedPosterior): A high mean, B uncertain, C poor
    mean = np.r_[np.full(20, 1.0), np.full(8, 0.0), np.full(10, -1.0)] + np.linspace(0, 0.05, 38)
    std = np.r_[np.full(20, 0.1), np.full(8, 1.5), np.full(10, 0.05)]
    table = pd.DataFrame({"id": [f"c{i}" for i in range(38)] + ["s1", "s2"], "mean": np.r_[mean, 1.0, -1.0],
                          "std": np.r_[std, 0.1, 0.05]})
    pool = CandidatePool(table, features=["mean", "std"], id_column="id")
    family = dict(zip(table["id"], ["A"] * 20 + ["B"] * 8 + ["C"] * 10 + ["A", "C"], strict=True))

    def exploring_picks(clusters: int) -> list[str]:
        campaign = Campaign(pool, model=FixedPosterior(), acquisition="ucb", kappa=0.1, explore_after=1,
                            explore_share=0.5, explore_kappa=1.0, explore_clusters=clusters, seed=0)
        campaign.add_data(["s1", "s2"], [5.0, 0.0])  # a best no candidate beats: every round stalls
        campaign.observe(campaign.suggest(4), [0.0] * 4)  # round 1: the model's picks, all in A
        batch = campaign.suggest(4)
        assert campaign.explore_picks_ == 2 and [family[d] for d in batch["design_id"][:2]] == ["A", "A"]
        return batch["design_id"].tolist()[-2:]

    assert [family[d] for d in exploring_picks(0)] == ["B", "B"]  # the upper confidence bound: B's large std
    campaign = Campaign(pool, model=FixedPosterior(), explore_clusters=3)
    labels = pd.Series(campaign.clusters(), index=table["id"])
    assert labels.groupby(pd.Series(family)).nunique().eq(1).all() and labels.nunique() == 3  # the families
    # measured or picked: A 7 of 21, B 0 of 8, C 1 of 11: B first (its best bound, c27), then C (1/11 < 1/8
    # < 7/21) at its best bound, c37
    assert exploring_picks(3) == ["c27", "c37"]


def families_pool() -> tuple[CandidatePool, np.ndarray, list[str]]:
    """A large family A (results about -3) and a small family B, poor below z = 0.7 and good above it."""
    rng = np.random.default_rng(3)
    family = np.r_[np.zeros(120), np.ones(30)]
    x, z = rng.uniform(0, 1, 150), rng.uniform(0, 1, 150)
    values = np.where(family == 0, -3 - 0.5 * x, np.where(z > 0.7, -1 + 0.5 * z, -5 + z))
    table = pd.DataFrame({"name": [f"c{i}" for i in range(150)], "family": 5 * family, "x": x, "z": z})
    names = table["name"].to_numpy()
    start = [*names[family == 0][::8], *names[(family == 1) & (z < 0.4)][:3]]  # B's poor members only
    return CandidatePool(table, features=["family", "x", "z"], id_column="name"), values, start


def test_cluster_exploring_picks_find_a_family_whose_measured_members_were_poor():
    """A start that measured only poor members of a small family: the trees rank the family poor everywhere and
    their exploring picks stay in the large family; picks stratified by cluster try the small family again."""
    pool, values, start = families_pool()

    def best_after(clusters: int) -> float:
        campaign = Campaign(pool, model="et", model_params={"n_estimators": 30}, explore_after=2,
                            explore_clusters=clusters, seed=0)
        campaign.add_data(start, truth(pool, values, start))
        for _ in range(8):
            batch = campaign.suggest(4)
            campaign.observe(batch, truth(pool, values, batch["design_id"]))
        return float(campaign.best["result"])

    assert best_after(0) < -2 < best_after(2)  # B's good members (results > -0.65) only with clusters


def test_a_start_that_keeps_improving_does_not_explore():
    pool, values = toy_pool(101)
    campaign = Campaign(pool, model="et", model_params={"n_estimators": 30}, explore_after=2, seed=0)
    campaign.add_data(["c0", "c5"], truth(pool, values, ["c0", "c5"]))
    batch = campaign.suggest(2)
    campaign.observe(batch, [10.0, 0.0])  # a gain every round
    assert campaign.stalled_rounds() == 0 and campaign.explore_picks_ == 0


@pytest.mark.parametrize("clusters", [0, 3])
def test_exploring_campaigns_are_reproducible_and_survive_save_load(tmp_path, clusters):
    pool, values = plateau_pool()
    poor = [d for d, x in zip(pool.ids, pool.table["x"], strict=True) if x < 0.5][::3]

    def history(seed: int, stop_at: int = 6) -> tuple[list[list[str]], Campaign]:
        campaign = Campaign(pool, model="et-group", model_params={"n_estimators": 20}, explore_after=1,
                            explore_clusters=clusters, seed=seed)
        campaign.add_data(poor, truth(pool, values, poor))
        out = []
        for _ in range(stop_at):
            batch = campaign.suggest(3)
            campaign.observe(batch, truth(pool, values, batch["design_id"]))
            out.append(batch["design_id"].tolist())
        return out, campaign

    first, campaign = history(3)
    again, _ = history(3)
    assert first == again
    assert history(4)[0] != first
    loaded = Campaign.load(campaign.save(tmp_path / "c"))
    assert loaded.explore_after == 1 and loaded.explore_share == campaign.explore_share
    assert loaded.explore_random_after == campaign.explore_random_after
    assert loaded.explore_clusters == campaign.explore_clusters
    assert loaded.suggest(3)["design_id"].tolist() == campaign.suggest(3)["design_id"].tolist()


@pytest.mark.parametrize("kwargs, message", [
    ({"explore_after": -1}, "explore_after must be an integer >= 0"),
    ({"explore_share": 1.5}, "explore_share must be in"),
    ({"explore_share": float("nan")}, "explore_share must be in"),
    ({"explore_kappa": -1.0}, "explore_kappa must be a number >= 0"),
    ({"explore_kappa": "high"}, "explore_kappa must be a number >= 0"),
    ({"explore_random_after": -1}, "explore_random_after must be an integer >= 0"),
    ({"explore_random_after": 1.5}, "explore_random_after must be an integer >= 0"),
    ({"explore_clusters": -2}, "explore_clusters must be an integer >= 0"),
    ({"explore_clusters": True}, "explore_clusters must be an integer >= 0"),
])
def test_bad_exploration_settings_are_named(kwargs, message):
    with pytest.raises(BattlabError, match=message):
        Campaign(toy_pool()[0], **kwargs)


def test_clusters_need_a_candidate_pool():
    with pytest.raises(BattlabError, match="explore_clusters needs a candidate pool"):
        Campaign(window(), explore_clusters=4)
    for campaign in (Campaign(toy_pool()[0], explore_clusters=0), Campaign(window())):
        with pytest.raises(BattlabError, match="clusters are made in a candidate pool with explore_clusters > 0"):
            campaign.clusters()
    labels = Campaign(toy_pool()[0]).clusters()  # the default in a pool: 10 clusters (CLUSTERS)
    assert len(labels) == 60 and len(np.unique(labels)) == 10
    assert len(np.unique(Campaign(toy_pool(6)[0]).clusters())) == 6  # no more clusters than candidates


def test_a_campaign_saved_before_exploration_existed_goes_on_without_it(tmp_path):
    pool, values = toy_pool()
    campaign = Campaign(pool, model="et", model_params={"n_estimators": 10}, seed=0)
    run(campaign, pool, values, rounds=2)
    folder = campaign.save(tmp_path / "old")
    state = json.loads((folder / "campaign.json").read_text())
    for key in ("explore_after", "explore_share", "explore_random_after", "explore_clusters"):
        del state["settings"][key]
    (folder / "campaign.json").write_text(json.dumps(state))
    loaded = Campaign.load(folder)
    assert loaded.explore_random_after == 0 and loaded.explore_clusters == 0
    assert loaded.explore_after == 0 and Campaign.load(campaign.save(tmp_path / "new")).explore_after is None
