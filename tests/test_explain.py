"""Explanations: additivity per model type, explainer choice, family grouping, interactions, comparison,
save/load, the ShapExplorer widget and ``battlab explain``."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from battlab.explain import EXACT_TOLERANCE, Explanation, explain, explainer_kind, treeshap_cost
from battlab.models import make_model

warnings.filterwarnings("ignore", category=PendingDeprecationWarning)  # import shap: from matplotlib

FEATURES = ["MagpieData mean Electronegativity", "MagpieData range Electronegativity", "MagpieData mean Row",
            "2-norm", "3-norm", "density", "calendering_pressure", "Li fraction"]
INFO = pd.DataFrame({
    "feature": FEATURES,
    "family": ["element property", "element property", "element property", "stoichiometry", "stoichiometry",
               "structure", "process", "battery"],
    "property": ["Electronegativity", "Electronegativity", "Row", "2-norm", "3-norm", "density",
                 "calendering_pressure", "Li fraction"],
    "unit": "",
})
SMALL = {"ridge": None, "rf": {"n_estimators": 30, "max_depth": 6}, "hgb": {"max_iter": 40},
         "lgbm": {"n_estimators": 60, "num_leaves": 8, "min_child_samples": 5},
         "hurdle": {"n_estimators": 30, "num_leaves": 8, "min_child_samples": 5}, "knn": None}


@pytest.fixture(scope="module")
def data():
    """240 rows, 8 features (one with NaN, imputed by the pipeline); y has an interaction; y0 30% zeros."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(240, len(FEATURES))), columns=FEATURES,
                     index=pd.RangeIndex(1000, 1240))  # row ids that are not positions
    X.iloc[::17, 5] = np.nan
    y = 2 * X.iloc[:, 0] - X.iloc[:, 3] + 3 * X.iloc[:, 1] * X.iloc[:, 6] + rng.normal(scale=0.1, size=240)
    y0 = np.where(X.iloc[:, 2] > 0.5, 0.0, y)  # for the zero-inflated hurdle model
    return X, pd.Series(y, index=X.index), pd.Series(y0, index=X.index)


@pytest.fixture(scope="module")
def fitted(data):
    X, y, y0 = data
    return {name: make_model(name, params, seed=0).fit(X.to_numpy(), (y0 if name == "hurdle" else y).to_numpy())
            for name, params in SMALL.items()}


@pytest.fixture(scope="module")
def rf_explanation(data, fitted):
    X = data[0]
    return explain(fitted["rf"], X, info=INFO, target="y", labels=[f"M{i}" for i in range(len(X))],
                   interaction_rows=12)


def test_explainer_choice_per_model_type():
    expected = {"lgbm": "lightgbm", "rf": "tree", "et": "tree", "hgb": "tree", "ridge": "linear",
                "elasticnet": "linear", "hurdle": "permutation", "svr": "permutation", "knn": "permutation",
                "mlp": "permutation", "gp": "permutation", "dummy": "permutation"}
    for name, kind in expected.items():
        assert explainer_kind(make_model(name, None, 0).steps[-1][1]) == kind, name


@pytest.mark.parametrize("name", list(SMALL))
def test_additivity_base_plus_sum_is_the_pipeline_prediction(name, data, fitted):
    X = data[0]
    X = X if name not in ("hurdle", "knn") else X.iloc[:60]  # permutation explainer: fewer rows, same check
    ex = explain(fitted[name], X, info=INFO, background=10)
    pred = fitted[name].predict(X.to_numpy())
    gap = np.max(np.abs(ex.base_value + ex.values.sum(axis=1).to_numpy() - pred))
    assert gap == pytest.approx(ex.additivity_error)
    assert ex.exact == (name not in ("hurdle", "knn"))
    # exact explainers within 1e-6; the permutation explainer adds up by construction, to rounding
    assert ex.additivity_error < (EXACT_TOLERANCE if ex.exact else 1e-8), ex.explainer
    assert list(ex.values.columns) == FEATURES and (ex.values.index == X.index).all()
    assert np.allclose(ex.predictions, pred)


def test_lightgbm_native_contributions_equal_shap_tree_explainer(data, fitted):
    import shap

    X = data[0]
    ex = explain(fitted["lgbm"], X)
    est = fitted["lgbm"].steps[-1][1]
    ref = shap.TreeExplainer(est).shap_values(fitted["lgbm"][:-1].transform(X.to_numpy()))
    assert ex.explainer.startswith("LightGBM native")
    assert np.allclose(ex.values.to_numpy(), ref, atol=1e-8)


def test_family_and_property_sums_equal_member_sums(rf_explanation):
    ex = rf_explanation
    fam = ex.grouped("family")
    for family, members in INFO.groupby("family")["feature"]:
        assert np.allclose(fam[family], ex.values[list(members)].sum(axis=1))
    prop = ex.grouped("property")
    assert np.allclose(prop["Electronegativity"], ex.values[FEATURES[0]] + ex.values[FEATURES[1]])
    assert np.allclose(fam.sum(axis=1), ex.values.sum(axis=1))
    imp = ex.importance("family")
    assert imp.index[0] == "element property" and np.isclose(imp.iloc[0], fam["element property"].abs().mean())


def test_interaction_values_are_symmetric_and_rows_sum_to_shap_values(rf_explanation):
    ex = rf_explanation
    iv = ex.interaction_values
    assert iv.shape == (12, len(FEATURES), len(FEATURES)) and len(ex.interaction_rows) == 12
    assert np.allclose(iv, iv.transpose(0, 2, 1), atol=1e-10)
    assert np.allclose(iv.sum(axis=2), ex.values.loc[ex.interaction_rows].to_numpy(), atol=1e-6)
    assert np.allclose(ex.interactions, ex.interactions.T)
    top = ex.top_interactions(3)  # y has an x1 * x6 term : the forest must find it
    assert {top.loc[0, "feature_a"], top.loc[0, "feature_b"]} == {FEATURES[1], FEATURES[6]}


def test_comparison_of_two_samples_sums_to_the_prediction_difference(rf_explanation):
    ex = rf_explanation
    for by in ("feature", "family", "property"):
        diff = ex.compare("M3", 1010, by=by)  # by label and by row id
        assert np.isclose(diff.sum(), ex.predictions.loc[1010] - ex.predictions.iloc[3])


def test_save_load_round_trip(rf_explanation, tmp_path):
    ex = rf_explanation
    paths = ex.save(tmp_path)
    assert {p.name for p in paths.values()} == {"shap_values.parquet", "features.parquet", "explanation.json",
                                                "interactions.parquet"}
    meta = json.loads(paths["explanation.json"].read_text())
    assert meta["explainer"] == ex.explainer and meta["families"]["density"] == "structure"
    back = Explanation.load(tmp_path)
    pd.testing.assert_frame_equal(back.values, ex.values)
    pd.testing.assert_frame_equal(back.data, ex.data)
    pd.testing.assert_frame_equal(back.grouped("family"), ex.grouped("family"))
    pd.testing.assert_frame_equal(back.interactions, ex.interactions)
    assert back.base_value == ex.base_value and back.labels == ex.labels
    assert back.interaction_rows == ex.interaction_rows


def test_max_rows_is_explicit_and_recorded(data, fitted):
    X = data[0]
    ex = explain(fitted["ridge"], X, max_rows=50, seed=1)
    assert len(ex.values) == 50 and ex.n_rows_total == len(X)
    assert set(ex.values.index) <= set(X.index)


def test_treeshap_cost_grows_with_depth_and_interactions_cost_more(data):
    X, y, _ = data
    shallow = make_model("et", {"n_estimators": 20, "max_depth": 3}, seed=0).fit(X.to_numpy(), y.to_numpy())
    deep = make_model("et", {"n_estimators": 20, "max_depth": None}, seed=0).fit(X.to_numpy(), y.to_numpy())
    a, b = treeshap_cost(shallow[-1]), treeshap_cost(deep[-1])
    assert a["max_depth"] == 3 and b["max_depth"] > 3 and a["trees"] == b["trees"] == 20
    assert 0 < a["values"] < b["values"] and a["values"] < a["interactions"]
    assert treeshap_cost(deep[-1]) == b  # read from the trees, not from a clock


def test_max_seconds_explains_fewer_rows_and_says_so(data):
    X, y, _ = data
    deep = make_model("et", {"n_estimators": 20, "max_depth": None}, seed=0).fit(X.to_numpy(), y.to_numpy())
    cost = treeshap_cost(deep[-1])
    budget = 10 * cost["interactions"]  # a quarter of it: 2.5 interaction rows
    rows = int(8 * cost["interactions"] // cost["values"])  # the rest, after 2 interaction rows
    assert rows < len(X)
    with pytest.warns(UserWarning) as caught:
        ex = explain(deep, X, info=INFO, interaction_rows=12, max_seconds=budget, seed=3)
    said = [str(w.message) for w in caught]
    assert said == ex.notes and ex.summary()["notes"] == ex.notes
    assert said[0].startswith("interaction values on 2 of 12 rows")
    assert said[1].startswith(f"SHAP values of a random {rows} of 240 rows")
    assert len(ex.values) == rows and ex.n_rows_total == len(X) and len(ex.interaction_rows) == 2
    with pytest.warns(UserWarning):
        again = explain(deep, X, info=INFO, interaction_rows=12, max_seconds=budget, seed=3)
    assert list(again.values.index) == list(ex.values.index)  # deterministic: the same rows every time
    assert np.allclose(ex.predictions, deep.predict(X.loc[ex.values.index].to_numpy()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a budget that fits changes nothing and warns about nothing
        full = explain(deep, X, info=INFO, interaction_rows=12, max_seconds=1e6)
    assert len(full.values) == len(X) and len(full.interaction_rows) == 12 and full.notes == []


def test_plots_draw(rf_explanation):
    import matplotlib.pyplot as plt

    from battlab.explain import (
        plot_comparison,
        plot_dependence,
        plot_importance,
        plot_interactions,
        plot_summary,
        plot_waterfall,
    )

    ex = rf_explanation
    figs = [plot_summary(ex), plot_importance(ex, "family"), plot_dependence(ex, FEATURES[1]),
            plot_dependence(ex, "element property", by="family"), plot_waterfall(ex, "M0"),
            plot_waterfall(ex, 2, by="family"), plot_comparison(ex, 0, 1), plot_interactions(ex)]
    assert all(f.axes for f in figs)
    plt.close("all")


def test_shap_explorer_from_a_saved_folder(rf_explanation, tmp_path):
    import matplotlib.pyplot as plt

    from battlab.widgets.shap_explorer import ShapExplorer

    rf_explanation.save(tmp_path)
    app = ShapExplorer(tmp_path)
    assert app.state == "READY" and app.selected == rf_explanation.importance().index[0]
    app.group_dropdown.value = "family"
    assert app.group_by == "family" and app.selected == "element property"
    app.item_dropdown.value = "stoichiometry"
    assert app.selected == "stoichiometry" and "stoichiometry" in app.figures["dependence"].axes[0].get_ylabel()
    app.sample_dropdown.value = 5
    assert app.sample == 5 and app.prediction == pytest.approx(rf_explanation.predictions.iloc[5])
    assert "M5" in app.figures["waterfall"].axes[0].get_title()
    app.group_by = "feature"  # traitlets -> dropdowns too
    app.selected = FEATURES[6]
    assert app.group_dropdown.value == "feature" and app.item_dropdown.value == FEATURES[6]
    assert app.figures["dependence"].axes[0].get_xlabel() == FEATURES[6] and app.state == "READY"
    plt.close("all")


def test_cli(tmp_path):
    from battlab import steps
    from battlab.cli import main

    rng = np.random.default_rng(0)
    raw = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    raw["y"] = 2 * raw["a"] + raw["b"] * raw["c"]
    raw.to_csv(tmp_path / "t.csv", index=False)
    tuned = steps.tune(steps.featurize(steps.curate(raw, target="y")), models=("lgbm",), n_trials=1,
                       storage="sqlite:///:memory:", progress=False)
    tuned.save(tmp_path / "m")
    assert main(["explain", str(tmp_path / "m"), str(tmp_path / "t.csv"), "--out", str(tmp_path / "ex"),
                 "--max-rows", "40"]) == 0
    ex = Explanation.load(tmp_path / "ex")
    assert len(ex.values) == 40 and ex.explainer.startswith("LightGBM") and ex.additivity_error < EXACT_TOLERANCE
    assert ex.target == "y" and ex.model_name == "lgbm" and ex.features == ["a", "b", "c"]
    assert main(["explain", str(tmp_path / "nope"), str(tmp_path / "t.csv"), "--out", "x"]) == 2


def test_loading_an_explanation_of_another_format_version_says_so(rf_explanation, tmp_path):
    rf_explanation.save(tmp_path)
    meta = json.loads((tmp_path / "explanation.json").read_text())
    assert meta["artefact"] == "Explanation" and meta["format_version"] == 1
    (tmp_path / "explanation.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(Exception, match="format version 99.*reads version 1"):
        Explanation.load(tmp_path)
