"""The ``next_experiments`` app: :func:`battlab.plan.recommend.next_experiments` (candidate pools, process windows,
reasons, bad input, save/load), the ``NextExperiments`` widget in plain Python (fake upload payloads), and the app
served by Voilà in headless Chromium (fixtures and helpers of ``tests/test_apps_browser.py``)."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import ERRORS, shot
from test_apps_browser import open_app, voila  # noqa: F401  (voila: the Voilà server fixture)

from battlab.errors import BattlabError, DataFileError
from battlab.plan import Campaign
from battlab.plan.recommend import MIN_DONE, Recommendation, example_tables, next_experiments, window_from_table
from battlab.widgets.next_experiments import WINDOW, NextExperiments

SETTINGS = ["active_weight_fraction", "solid_content", "coating_gap_um", "line_load_N_per_mm"]
TARGET = "specific_energy_Wh_kg"


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    done, pool = example_tables()
    return done.drop(columns="rate_capability"), pool


def payload(name: str, content: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload holds after a browser upload."""
    return ({"name": name, "type": "", "size": len(content), "last_modified": datetime.now(),
             "content": memoryview(content)},)


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def bad_done(done: pd.DataFrame) -> pd.DataFrame:
    """The done table with a missing result (row 3) and a text result (row 5)."""
    out = done.astype({TARGET: object}).copy()
    out.loc[2, TARGET] = np.nan
    out.loc[4, TARGET] = "coating cracked"
    return out


# --------------------------------------------------------------------------- candidate pools


def test_pool_suggestions_are_candidates_ranked_with_mean_std_and_a_reason_that_adds_up(tables):
    done, pool = tables
    rec = next_experiments(done, pool, TARGET, batch_size=4, seed=0)
    s = rec.suggestions
    assert s["rank"].tolist() == [1, 2, 3, 4] and rec.space == "pool" and rec.features == SETTINGS
    # each suggestion is the candidate of its row, with the candidate's own columns
    for row in s.itertuples(index=False):
        cand = pool.iloc[row.candidate_row - 1]
        assert cand["design"] == row.design and np.isclose(cand["coating_gap_um"], row.coating_gap_um)
    assert not set(s["design"]) & set(done["design"]) and s["design"].is_unique
    assert (s["std"] > 0).all() and np.isfinite(s["acquisition"]).all()
    # the SHAP values of the mean prediction add up to it (exact TreeSHAP of the extra trees)
    assert rec.explainer.startswith("shap.TreeExplainer")
    assert np.allclose(rec.base_value + rec.contributions.sum(axis=1), s["mean"], atol=1e-6)
    # the reason names the three largest contributions with their signs, largest first
    for i, reason in enumerate(s["reason"]):
        c = rec.contributions.iloc[i]
        top = c.abs().sort_values(ascending=False).index[:3]
        assert [p.split("=")[0] for p in reason.split("; ")] == list(top)
        assert f"({c[top[0]]:+.3g})" in reason
    # the first suggestion is what a Campaign given the same data suggests (no second implementation)
    ids = [f"candidate:{i}" for i in range(1, len(pool) + 1)]
    table = pd.concat([done[SETTINGS], pool[SETTINGS]], ignore_index=True)
    table.insert(0, "id", [f"done:{i}" for i in range(1, len(done) + 1)] + ids)
    from battlab.plan import CandidatePool

    campaign = Campaign(CandidatePool(table, features=SETTINGS, id_column="id"), acquisition="ei", kappa=2.0,
                        seed=0)  # next_experiments' defaults
    campaign.add_data(table["id"].iloc[:len(done)].tolist(), done[TARGET])
    direct = campaign.suggest(4)
    assert direct["design_id"].tolist() == s["design_id"].tolist()
    assert np.allclose(direct["mean"], s["mean"]) and np.allclose(direct["std"], s["std"])


def test_same_seed_same_suggestions(tables):
    done, pool = tables
    a = next_experiments(done, pool, TARGET, batch_size=5, seed=3)
    b = next_experiments(done, pool, TARGET, batch_size=5, seed=3)
    pd.testing.assert_frame_equal(a.suggestions, b.suggestions)
    pd.testing.assert_frame_equal(a.contributions, b.contributions)
    g1 = next_experiments(done, pool, TARGET, batch_size=3, model="gp", acquisition="ucb", seed=1)
    g2 = next_experiments(done, pool, TARGET, batch_size=3, model="gp", acquisition="ucb", seed=1)
    pd.testing.assert_frame_equal(g1.suggestions, g2.suggestions)


def test_a_gaussian_process_is_explained_by_the_kernel_explainer_and_minimizing_keeps_result_units(tables):
    done, pool = tables
    rec = next_experiments(done, pool, TARGET, batch_size=3, model="gp", maximize=False, seed=0)
    assert rec.explainer == "shap.KernelExplainer, 12 done rows as background"
    assert np.allclose(rec.base_value + rec.contributions.sum(axis=1), rec.suggestions["mean"], atol=1e-6)
    # minimizing: the means are specific energies (Wh/kg), not their negatives, and low ones come first
    assert (rec.suggestions["mean"] > 100).all()
    best = next_experiments(done, pool, TARGET, batch_size=3, model="gp", acquisition="mean", seed=0)
    worst = next_experiments(done, pool, TARGET, batch_size=3, model="gp", acquisition="mean", maximize=False, seed=0)
    assert best.suggestions["mean"].min() > worst.suggestions["mean"].max()
    small = next_experiments(done, pool, TARGET, batch_size=2, model="gp", background=5, seed=0)
    assert small.explainer == "shap.KernelExplainer, 5 done rows as background"


def test_a_candidate_already_measured_and_a_non_numeric_cell_are_kept_aside(tables):
    done, pool = tables
    pool = pool.head(30).astype({"solid_content": object}).copy()
    pool.loc[3, "solid_content"] = "0.6x"
    pool = pd.concat([pool, done.iloc[[0]][["design", *SETTINGS]]], ignore_index=True)  # a done design again
    rec = next_experiments(done, pool, TARGET, id_column="design", batch_size=30, seed=0)
    aside = rec.set_aside.set_index("row")
    assert aside.loc[4, "reason"] == "column 'solid_content' is not a number" and aside.loc[4, "value"] == "0.6x"
    assert aside.loc[31, "reason"] == "already measured (done table row 1)"
    assert (rec.set_aside["table"] == "candidate table").all() and len(rec.set_aside) == 2
    assert len(rec.suggestions) == 29 and 4 not in set(rec.suggestions["candidate_row"])  # every other one


def test_nan_and_text_results_are_kept_aside_with_the_file_row(tables, tmp_path):
    done, pool = tables
    path = tmp_path / "done.csv"
    text = bad_done(done).to_csv(index=False) + "doe-999,0.9,0.6\n"  # and a line with too few fields
    path.write_text(text)
    rec = next_experiments(path, pool, TARGET, seed=0)
    aside = rec.set_aside
    assert aside[["table", "row", "column"]].values.tolist() == [
        ["done table", 3, TARGET], ["done table", 5, TARGET], ["done table", 13, ""]]
    assert aside["reason"].tolist() == ["result is missing (NaN)", "result 'coating cracked' is not a number",
                                        "row has 3 fields, the header has 6"]
    assert rec.settings["n_done_used"] == 10 and rec.settings["n_done_rows"] == 13
    assert rec.settings["done"] == "done.csv" and "3 row(s) kept aside" in rec.summary()
    # the campaign keeps them too: not fitted on, never lost
    assert len(rec.campaign.failed) == 2 and len(rec.campaign.observations) == 10


# --------------------------------------------------------------------------- process windows


def test_default_window_is_the_range_of_the_done_table(tables):
    done, _ = tables
    rec = next_experiments(done, None, TARGET, batch_size=4, seed=0)
    assert rec.space == "window" and rec.features == SETTINGS
    bounds = rec.settings["window"]["params"]
    for name in SETTINGS:
        assert bounds[name]["low"] == done[name].min() and bounds[name]["high"] == done[name].max()
        assert rec.suggestions[name].between(done[name].min(), done[name].max()).all()
    assert np.allclose(rec.base_value + rec.contributions.sum(axis=1), rec.suggestions["mean"], atol=1e-6)
    assert window_from_table(pd.DataFrame({"n": [1, 3, 3], "x": [0.5, 0.5, 0.5]}), ["n", "x"]) == {
        "n": (1.0, 3.0, "int"), "x": (0.45, 0.55)}


def test_edited_window_with_a_constraint_and_done_rows_outside_it(tables):
    done, _ = tables
    window = {"active_weight_fraction": (0.88, 0.97), "solid_content": (0.55, 0.75),
              "coating_gap_um": (80.0, 200.0), "line_load_N_per_mm": (0.0, 2000.0)}
    rec = next_experiments(done, window, TARGET, constraints=["coating_gap_um * solid_content <= 120"], seed=0)
    outside = done.index[done["coating_gap_um"] > 200] + 1
    assert len(outside) and rec.set_aside["row"].tolist() == list(outside)
    assert rec.set_aside["reason"].iloc[0].startswith("outside the process window: column 'coating_gap_um' is ")
    s = rec.suggestions
    assert (s["coating_gap_um"] <= 200).all() and (s["coating_gap_um"] * s["solid_content"] <= 120 + 1e-9).all()
    assert rec.settings["n_done_used"] == len(done) - len(outside)


def test_choice_settings_get_one_contribution_each(tables):
    done, _ = tables
    done = done.assign(binder=np.where(np.arange(len(done)) % 2, "PVDF", "CMC"))
    window = {"solid_content": (0.55, 0.75), "coating_gap_um": (80.0, 300.0), "binder": ["PVDF", "CMC"]}
    rec = next_experiments(done, window, TARGET, batch_size=3, seed=0)
    assert list(rec.contributions.columns) == ["solid_content", "coating_gap_um", "binder"]
    assert set(rec.suggestions["binder"]) <= {"PVDF", "CMC"}
    assert np.allclose(rec.base_value + rec.contributions.sum(axis=1), rec.suggestions["mean"], atol=1e-6)


# --------------------------------------------------------------------------- bad input


def test_a_candidate_table_without_the_model_features_names_them(tables):
    done, pool = tables
    with pytest.raises(BattlabError, match=r"^candidate table lacks 2 of the model's 4 feature column\(s\): "
                                           r"'solid_content', 'coating_gap_um' \(the numeric columns"):
        next_experiments(done, pool.drop(columns=["solid_content", "coating_gap_um"]), TARGET)
    with pytest.raises(BattlabError, match=r"lacks 1 of the model's 2 feature column\(s\): 'solid_content'\.$"):
        next_experiments(done, pool.drop(columns="solid_content"), TARGET, features=["solid_content", "coating_gap_um"])


def test_a_done_table_without_the_target_column(tables, tmp_path):
    done, pool = tables
    done.to_csv(tmp_path / "done.csv", index=False)
    with pytest.raises(DataFileError) as err:
        next_experiments(tmp_path / "done.csv", pool, "specific_energy")
    assert str(err.value).startswith("done.csv: missing column 'specific_energy'; columns are ['design', ")
    assert "(did you mean 'specific_energy_Wh_kg'?)" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BattlabError, match="^name the target"):
        next_experiments(done, pool, None)


def test_unreadable_files_are_one_line_errors(tables, tmp_path):
    done, pool = tables
    (tmp_path / "broken.csv").write_bytes(bytes(range(256)) * 20)
    with pytest.raises(DataFileError, match=r"broken.csv: looks like a binary file, not a text table$"):
        next_experiments(tmp_path / "broken.csv", pool, TARGET)
    (tmp_path / "pool.xlsx").write_bytes(b"not a spreadsheet")
    with pytest.raises(DataFileError, match=r"pool.xlsx: cannot read as xlsx file"):
        next_experiments(done, tmp_path / "pool.xlsx", TARGET)
    with pytest.raises(DataFileError, match=r"nothing.csv: no such file$"):
        next_experiments(tmp_path / "nothing.csv", pool, TARGET)


def test_fewer_done_rows_than_the_model_needs(tables):
    done, pool = tables
    few = bad_done(done).iloc[:3]  # 2 usable results
    with pytest.raises(BattlabError) as err:
        next_experiments(few, pool, TARGET)
    assert str(err.value) == (f"done table: 2 usable result(s) in column {TARGET!r}, the model needs at least "
                              f"{MIN_DONE} (1 row(s) kept aside; first: row 3: result is missing (NaN)).")
    assert len(next_experiments(bad_done(done).iloc[:4], pool, TARGET, batch_size=2).suggestions) == 2  # 3 will do


def test_non_numeric_feature_in_the_done_table_and_bad_campaign_settings(tables):
    done, pool = tables
    with pytest.raises(BattlabError, match="feature column 'design' is not numeric"):
        next_experiments(done, pool, TARGET, features=["design", "solid_content"])
    with pytest.raises(BattlabError, match="unknown acquisition 'pi'"):
        next_experiments(done, pool, TARGET, acquisition="pi")
    with pytest.raises(BattlabError, match="cannot also be a feature"):
        next_experiments(done, pool, TARGET, features=[TARGET, "solid_content"])


# --------------------------------------------------------------------------- the artefact


def test_save_load_round_trip_and_the_campaign_goes_on(tables, tmp_path):
    done, pool = tables
    rec = next_experiments(bad_done(done), pool, TARGET, batch_size=3, seed=0)
    rec.save(tmp_path / "rec")
    back = Recommendation.load(tmp_path / "rec")
    pd.testing.assert_frame_equal(back.suggestions, rec.suggestions)
    pd.testing.assert_frame_equal(back.contributions, rec.contributions)
    pd.testing.assert_frame_equal(back.set_aside, rec.set_aside, check_dtype=False)
    assert (back.base_value, back.target, back.features, back.settings) == (rec.base_value, rec.target, rec.features,
                                                                            rec.settings)
    assert pd.read_csv(tmp_path / "rec" / "suggestions.csv")["design"].tolist() == rec.suggestions["design"].tolist()
    assert pd.read_csv(io.StringIO(rec.to_csv())).shape == rec.suggestions.shape
    # a week later: the measured results go to the saved campaign, which suggests the next batch
    campaign = back.campaign
    assert len(campaign.pending) == 3 and len(campaign.failed) == 2
    campaign.observe(rec.suggestions["design_id"], [300.0, 310.0, 320.0])
    assert len(campaign.observations) == 13 and len(campaign.suggest(2)) == 2
    with pytest.raises(BattlabError, match="no recommendation.json"):
        Recommendation.load(tmp_path)


# --------------------------------------------------------------------------- the widget


def test_widget_uploads_suggests_and_offers_the_csv(tables):
    done, pool = tables
    app = NextExperiments()
    assert app.state == "INIT" and app.suggest_button.disabled
    app.done_upload.value = payload("done.csv", csv_bytes(bad_done(done)))
    assert app.done_upload.value == () and app.target.value == TARGET and app.state == "INIT"
    app.pool_upload.value = payload("pool.csv", csv_bytes(pool.head(40)))
    assert app.state == "READY" and not app.suggest_button.disabled
    assert list(app.features.value) == SETTINGS and app.id_column.value == "design"
    assert "done.csv (12 rows" in app.tables_info.value and "pool.csv (40 rows)" in app.tables_info.value
    app.batch_size.value = 4
    app.suggest_button.click()
    assert app.state == "SUCCESS", app.message
    assert len(app.suggestions) == 4 and app.message.startswith("4 suggestion(s) from 40 candidates")
    for header in ("<th>mean</th>", "<th>std</th>", "<th>reason</th>", "<th>design</th>"):
        assert header in app.result.value
    assert app.suggestions["reason"].iloc[0].split(" (")[0] in html_unescape(app.result.value)
    # the download link holds exactly the suggestions as CSV
    link = re.search(r"base64,([A-Za-z0-9+/=]+)'", app.download.value).group(1)
    assert base64.b64decode(link).decode() == app.recommendation.to_csv()
    # the NaN and text results are shown, kept aside with the reason
    assert "2 row(s) kept aside" in app.aside_view.value and "coating cracked" in app.aside_view.value
    assert app.set_aside["row"].tolist() == [3, 5]


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_widget_reads_excel_uploads_as_csv_ones(tables):
    done, pool = tables
    buf = io.BytesIO()
    bad_done(done).to_excel(buf, index=False)
    app = NextExperiments()
    app.done_upload.value = payload("done.xlsx", buf.getvalue())
    app.pool_upload.value = payload("pool.csv", csv_bytes(pool.head(40)))
    app.suggest()
    assert app.state == "SUCCESS", app.message
    # Excel keeps ~15 significant digits: the campaign compares acquisition values at 10 digits, so the last bits do
    # not reorder near-equal candidates (the floored results tie exactly) and the file gives the table's batch
    buf.seek(0)
    pd.testing.assert_frame_equal(pd.read_excel(buf).drop(columns=TARGET), bad_done(done).drop(columns=TARGET),
                                  rtol=1e-12)
    from_csv = next_experiments(bad_done(done), pool.head(40), TARGET, id_column="design")
    pd.testing.assert_frame_equal(app.suggestions[from_csv.suggestions.columns], from_csv.suggestions, atol=1e-9)
    assert app.set_aside["reason"].tolist() == from_csv.set_aside["reason"].tolist()


def test_widget_process_window_with_edited_bounds(tables):
    done, _ = tables
    app = NextExperiments()
    app.done_upload.value = payload("done.csv", csv_bytes(done))
    app.space.value = WINDOW
    assert app.state == "READY" and app.window_box.layout.display is None and app.pool_box.layout.display == "none"
    assert list(app.window()) == SETTINGS and app.window()["solid_content"] == (done["solid_content"].min(),
                                                                                  done["solid_content"].max())
    gap = app.bounds.children[SETTINGS.index("coating_gap_um")]
    gap.children[1].value, gap.children[3].value = 100.0, 250.0
    app.suggest()
    assert app.state == "SUCCESS", app.message
    assert app.suggestions["coating_gap_um"].between(100, 250).all()
    assert app.recommendation.space == "window" and "3 row(s) kept aside" in app.aside_view.value  # gaps > 250 um
    reasons = app.set_aside["reason"].tolist()
    assert all(r.startswith("outside the process window: column 'coating_gap_um' is 2") for r in reasons)
    assert reasons[0] in app.aside_view.value


def test_widget_bad_files_and_too_few_rows_are_shown_and_the_app_keeps_working(tables):
    done, pool = tables
    app = NextExperiments()
    app.done_upload.value = payload("../../broken.csv", bytes(range(256)) * 20)
    assert app.state == "FAIL" and app.message == "broken.csv: looks like a binary file, not a text table"
    assert "battlab-msg-error" in app.status.value and app.done is None
    app.done_upload.value = payload("few.csv", csv_bytes(bad_done(done).iloc[:3]))
    app.pool_upload.value = payload("pool.csv", csv_bytes(pool))
    app.suggest()
    assert app.state == "FAIL" and "2 usable result(s)" in app.message and app.suggestions is None
    app.pool_upload.value = payload("pool.csv", csv_bytes(pool.drop(columns="coating_gap_um")))
    app.features.value = tuple(SETTINGS)  # ask for a feature the candidates lack
    app.done_upload.value = ()
    app.load_done(done, "done")
    app.features.value = tuple(SETTINGS)
    app.suggest()
    assert app.state == "FAIL" and "'coating_gap_um'" in app.message and "lacks 1 of the model's 4" in app.message
    app.load_example()
    app.suggest()
    assert app.state == "SUCCESS" and app.message.startswith("5 suggestion(s) from 288 candidates")
    assert "battlab-next-experiments-success" in app._dom_classes


def test_widget_is_in_the_lazy_registry():
    import battlab.widgets

    assert battlab.widgets.NextExperiments is NextExperiments
    assert "NextExperiments" in battlab.widgets.__all__


# --------------------------------------------------------------------------- tables of compositions

CONDUCTIVITY = "conductivity (S/cm)"
# Real Li-ion conductors with room-temperature conductivities of the usual order of magnitude (rounded, for a unit
# test), some written with their unit: the curate step reads "0.16 mS/cm" as 1.6e-4 S/cm (the header's unit).
DONE_FORMULAS = [
    ("Li7La3Zr2O12", "3e-4"), ("Li6.4La3Zr1.4Ta0.6O12", "1e-3"), ("Li10GeP2S12", "1.2e-2 S/cm"),
    ("Li3PS4", "0.16 mS/cm"), ("Li7P3S11", "17 mS/cm"), ("Li6PS5Cl", "1.9e-3"), ("Li6PS5Br", "1.1e-3"),
    ("Li3YCl6", "5.1e-4"), ("Li3InCl6", "1.5e-3"), ("Li3N", "1e-3"), ("LiTi2(PO4)3", "1e-6"),
    ("Li1.3Al0.3Ti1.7(PO4)3", "7e-4"), ("Li0.34La0.51TiO3", "1e-3"), ("Li3PO4", "6e-10"), ("Li4SiO4", "1e-9"),
    ("LiI", "1e-7"), ("LiBH4", "1e-8"), ("Li2ZrCl6", "4e-4"), ("LiAlCl4", "1e-6"), ("Li3OCl", "1e-5"),
]
CANDIDATE_FORMULAS = [
    "Li6PS5I", "Li3ScCl6", "Li3ErCl6", "Li3HoCl6", "Li3YBr6", "Li3InBr6", "LiGaCl4", "Li5La3Ta2O12", "Li5La3Nb2O12",
    "Li7La3Hf2O12", "Li3BO3", "Li2SiO3", "LiZr2(PO4)3", "Li1.5Al0.5Ge1.5(PO4)3", "Li4GeS4", "Li4SnS4", "Li3SbS4",
    "Li10SnP2S12", "Li7PS6", "LiTaO3", "Li3Xq2", "Li2B4O7", "Li3AlF6", "LiCl", "Li3PS4",
]


@pytest.fixture(scope="module")
def formulas() -> tuple[pd.DataFrame, pd.DataFrame]:
    """20 done compositions with measured conductivities, and 25 candidates named by composition (one has an
    unknown element, row 21; one was measured already, row 25)."""
    done = pd.DataFrame(DONE_FORMULAS, columns=["formula", CONDUCTIVITY])
    done.insert(0, "sample", [f"S{i:02d}" for i in range(1, len(done) + 1)])
    pool = pd.DataFrame({"composition": CANDIDATE_FORMULAS})
    return done, pool


def test_formula_tables_go_through_the_curate_and_featurize_steps(formulas):
    from battlab.featurize import FeatureRecipe
    from battlab.steps import curate, featurize

    done, pool = formulas
    rec = next_experiments(done, pool, CONDUCTIVITY, batch_size=5, seed=0)
    # the features are the featurize step's on the curated done table: one implementation, not a second one
    fs = featurize(curate(done, target=CONDUCTIVITY))
    assert isinstance(rec.recipe, FeatureRecipe) and rec.recipe == fs.recipe and rec.features == fs.features
    assert rec.recipe.formula_column == "formula" and rec.recipe.process_columns == []
    assert any(f.startswith("MagpieData") for f in rec.features) and "formula" not in rec.features
    # conductivities span decades: modelled as log10, as curation decided; units in cells converted first
    assert rec.target == f"log10 {CONDUCTIVITY}" and rec.settings["log_target"] is True
    assert rec.settings["target_unit"] == "siemens / centimeter" and rec.settings["formula_column"] == "formula"
    obs = rec.campaign.observations.set_index("design_id")["result"]
    assert np.isclose(obs["done:4"], np.log10(1.6e-4)) and np.isclose(obs["done:5"], np.log10(1.7e-2))
    assert len(obs) == 20 and rec.settings["n_done_used"] == 20
    # the candidates are featurized by the same recipe (the pool's 'composition' column)
    s = rec.suggestions
    for row in s.itertuples(index=False):
        assert row.composition == CANDIDATE_FORMULAS[row.candidate_row - 1]
        X, errors = rec.recipe.transform(pd.DataFrame({"formula": [row.composition]}))
        got = rec.campaign.space.rows([row.design_id])[rec.features].to_numpy(dtype=float)
        assert errors == [""] and np.allclose(got, X.to_numpy(dtype=float), equal_nan=True)
    # the reasons name composition features, with their values, and the SHAP values add up to the mean
    assert np.allclose(rec.base_value + rec.contributions.sum(axis=1), s["mean"], atol=1e-6)
    assert list(rec.contributions.columns) == rec.features
    for i, reason in enumerate(s["reason"]):
        names = [p.split("=")[0] for p in reason.split("; ")]
        top = rec.contributions.iloc[i].abs().sort_values(ascending=False).index[:3]
        assert names == list(top) and set(names) <= set(rec.recipe.features)
        assert "=nan" not in reason
    assert "candidates" in rec.summary() and f"maximizing log10 {CONDUCTIVITY}" in rec.summary()
    # grouped uncertainty: the pool's formulas give the chemical systems
    assert rec.campaign.space.groups() is not None and "Li-P-S" in set(rec.campaign.space.groups())


def test_an_unreadable_candidate_formula_and_a_measured_one_are_kept_aside(formulas):
    done, pool = formulas
    rec = next_experiments(done, pool, CONDUCTIVITY, batch_size=len(pool) - 2, seed=0)
    aside = rec.set_aside
    assert aside[["table", "row", "column", "value"]].values.tolist() == [
        ["candidate table", 21, "composition", "Li3Xq2"], ["candidate table", 25, "composition", "Li3PS4"]]
    assert aside["reason"].tolist() == ["formula cannot be read: unknown element 'Xq'",
                                        "already measured (done table row 4)"]
    # every other candidate is suggested: nothing else lost
    assert sorted(rec.suggestions["candidate_row"]) == [r for r in range(1, 26) if r not in (21, 25)]
    assert rec.settings["n_candidates"] == 23


def test_formula_done_table_quarantine_goes_into_set_aside(formulas, tmp_path):
    done, pool = formulas
    bad = pd.concat([done, pd.DataFrame({"sample": ["S21", "S22", "S23", "S24"],
                                         "formula": ["Li3PS4", "Li2S", "Zz3N", "LiF"],
                                         CONDUCTIVITY: ["2e-4", "3 V", "1e-5", ""]})], ignore_index=True)
    path = tmp_path / "done.csv"
    path.write_text(bad.to_csv(index=False) + "S25,LiCl\n")  # a line with too few fields
    rec = next_experiments(path, pool, CONDUCTIVITY, batch_size=3, seed=0)
    done_aside = rec.set_aside[rec.set_aside["table"] == "done table"]
    assert done_aside["row"].tolist() == [21, 22, 23, 24, 25]
    reasons = dict(zip(done_aside["row"], done_aside["reason"], strict=True))
    assert reasons[21] == "a replicate of row 4: curation averaged them into one result"
    assert reasons[22].startswith("wrong unit") and done_aside.set_index("row").loc[22, "column"] == CONDUCTIVITY
    assert reasons[23] == "formula cannot be read: unknown element 'Zz'"
    assert reasons[24] == "missing target value" and reasons[25].startswith("row has 2 fields, the header has 3")
    assert (rec.settings["n_done_rows"], rec.settings["n_done_used"], rec.settings["done"]) == (25, 20, "done.csv")
    # the replicates' results are averaged (in log10, as curation does for conductivities)
    obs = rec.campaign.observations.set_index("design_id")["result"]
    assert np.isclose(obs["done:4"], (np.log10(1.6e-4) + np.log10(2e-4)) / 2)


def test_formula_tables_bad_input(formulas, tables):
    done, pool = formulas
    with pytest.raises(BattlabError, match=r"^candidate table: no formula column \('formula', 'composition', "):
        next_experiments(done, pd.DataFrame({"x": [1.0, 2.0]}), CONDUCTIVITY)
    with pytest.raises(BattlabError, match=r"^done table: 2 usable result\(s\) in column 'conductivity \(S/cm\)', the"
                                           r" model needs at least 3 \(1 row\(s\) kept aside; first: row 3: "):
        next_experiments(done.iloc[:3].assign(**{CONDUCTIVITY: ["1e-3", "1e-4", "n/a"]}), pool, CONDUCTIVITY)
    with pytest.raises(BattlabError, match=r"^candidate table lacks 1 of the model's 1 feature column\(s\): 'T'\.$"):
        next_experiments(done.assign(T=25.0), pool, CONDUCTIVITY, features=["T"])
    # formula_column=None: the table is read as columns of numbers, as before
    with pytest.raises(BattlabError, match="no numeric feature column besides"):
        next_experiments(done, pool, CONDUCTIVITY, formula_column=None)
    # a 'material' column of sample names is not a column of formulas: the message says how to read it as names
    settings, candidates = tables
    named = settings.rename(columns={"design": "material"})
    with pytest.raises(BattlabError, match=r"\(12 row\(s\) kept aside; first: row 1: formula cannot be read: .*\); "
                                           r"if column 'material' holds names rather than formulas, pass "
                                           r"formula_column=None\.$"):
        next_experiments(named, candidates.rename(columns={"design": "material"}), TARGET)
    rec = next_experiments(named, candidates.rename(columns={"design": "material"}), TARGET, formula_column=None,
                           batch_size=2)
    assert rec.recipe is None and rec.features == SETTINGS


def test_formula_table_with_a_process_column_and_the_round_trip(formulas, tmp_path):
    done, pool = formulas
    done = done.assign(sintering_C=np.linspace(400, 900, len(done)))
    pool = pool.assign(sintering_C=np.linspace(450, 850, len(pool)))
    rec = next_experiments(done, pool, CONDUCTIVITY, features=["sintering_C"], batch_size=3, seed=1)
    assert rec.recipe.process_columns == ["sintering_C"] and "sintering_C" in rec.features
    assert "sintering_C" in rec.contributions.columns
    for row in rec.suggestions.itertuples(index=False):  # the candidate's own temperature, beside its formula
        assert np.isclose(row.sintering_C, pool["sintering_C"].iloc[row.candidate_row - 1])
    # Li3PS4 at another temperature than the done one is a new candidate
    assert "already measured" not in " ".join(rec.set_aside["reason"])
    rec.save(tmp_path / "rec")
    back = Recommendation.load(tmp_path / "rec")
    assert back.recipe == rec.recipe and back.target == rec.target
    pd.testing.assert_frame_equal(back.suggestions, rec.suggestions)


def test_units_in_result_cells_of_a_settings_table(tables):
    done, pool = tables
    plain = next_experiments(done, pool, TARGET, batch_size=3, seed=0)
    written = done.astype({TARGET: object}).copy()
    written.loc[0, TARGET] = f"{done.loc[0, TARGET]} Wh/kg"
    written.loc[1, TARGET] = f"{done.loc[1, TARGET] / 1000} kWh/kg"
    rec = next_experiments(written, pool, TARGET, batch_size=3, seed=0)
    assert len(rec.set_aside) == 0 and rec.settings["n_done_used"] == len(done)
    assert rec.settings["target_unit"] == "watt_hour / kilogram"
    pd.testing.assert_frame_equal(rec.suggestions, plain.suggestions)
    # a result in a unit of another quantity is kept aside with curation's reason, the rest is used
    written.loc[2, TARGET] = "3.7 V"
    rec = next_experiments(written, pool, TARGET, batch_size=3, seed=0)
    assert rec.set_aside[["table", "row", "column", "value"]].values.tolist() == [["done table", 3, TARGET, "3.7 V"]]
    assert rec.set_aside["reason"].iloc[0].startswith("wrong unit") and rec.settings["n_done_used"] == len(done) - 1


def test_widget_with_formula_tables(formulas):
    done, pool = formulas
    app = NextExperiments()
    app.done_upload.value = payload("done.csv", csv_bytes(done))
    app.pool_upload.value = payload("pool.csv", csv_bytes(pool))
    assert app.state == "READY" and app.target.value == CONDUCTIVITY and app.formula_column() == "formula"
    assert app.features.value == () and app.id_column.value == _NONE_ID  # the formulas name the candidates
    assert "formula column 'formula' found" in html_unescape(app.tables_info.value)
    app.batch_size.value = 3
    app.suggest()
    assert app.state == "SUCCESS", app.message
    rec = app.recommendation
    assert rec.recipe is not None and len(app.suggestions) == 3
    info = html_unescape(app.tables_info.value)
    assert f"{len(rec.features)} composition features (battery preset)" in info and rec.target in info
    assert app.suggestions["reason"].iloc[0].split(" (")[0] in html_unescape(app.result.value)
    assert "Li3Xq2" in app.aside_view.value and "unknown element" in html_unescape(app.aside_view.value)
    direct = next_experiments(done, pool, CONDUCTIVITY, batch_size=3, seed=0)
    pd.testing.assert_frame_equal(app.suggestions, direct.suggestions)


_NONE_ID = "(none)"


# --------------------------------------------------------------------------- the app in a browser


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty ``runs/`` (used by the ``voila`` fixture): the app needs no model from the pipeline."""
    return tmp_path_factory.mktemp("runs")


def choose_file(page, box: str, path: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.click(f"{box} .widget-upload")
    chooser.value.set_files(str(path))


def upload_tables(page, done: Path, pool: Path) -> None:
    """Once the example's suggestions are shown: upload the done and candidate tables, wait until it is ready."""
    page.wait_for_selector(".battlab-next-experiments-success", timeout=60_000)
    for box, path in ((".battlab-next-done-upload", done), (".battlab-next-pool-upload", pool)):
        choose_file(page, box, path)
        page.wait_for_function(f"document.querySelector('.battlab-next-tables').innerText.includes('{path.name}')",
                               timeout=60_000)
    page.wait_for_selector(".battlab-next-experiments-ready", timeout=30_000)


@pytest.mark.browser
def test_app_upload_done_and_pool_then_suggest(browser, voila, tables, tmp_path):  # noqa: F811
    done, pool = tables
    bad_done(done).to_csv(tmp_path / "done.csv", index=False)
    pool.head(40).to_csv(tmp_path / "pool.csv", index=False)
    page = open_app(browser, voila, "next_experiments")
    assert "example" in page.inner_text(".battlab-app-status").lower()
    upload_tables(page, tmp_path / "done.csv", tmp_path / "pool.csv")
    page.click(".battlab-next-suggest")
    page.wait_for_selector(".battlab-next-experiments-success", timeout=120_000)
    assert page.inner_text(".battlab-next-message").startswith("✔ 5 suggestion(s) from 40 candidates")
    headers = page.locator(".battlab-next-suggestions th").all_inner_texts()
    assert {"rank", "mean", "std", "reason"} <= set(headers)
    assert page.locator(".battlab-next-suggestions tbody tr").count() == 5
    first_reason = page.locator(".battlab-next-suggestions tbody tr").first.locator("td").last.inner_text()
    assert re.search(r"=\S+ \([+-]", first_reason), first_reason
    link = page.locator(".battlab-next-download a.battlab-download-link")
    assert link.get_attribute("download") == "next_experiments.csv"
    assert "Download the suggestions (CSV) (5 rows)" in link.inner_text()
    assert "coating cracked" in page.inner_text(".battlab-next-set-aside")
    assert page.locator(ERRORS).count() == 0
    shot(page, "next_experiments")
    page.close()


@pytest.mark.browser
def test_app_suggests_from_tables_of_compositions(browser, voila, formulas, tmp_path):  # noqa: F811
    done, pool = formulas
    done.to_csv(tmp_path / "conductors.csv", index=False)
    pool.to_csv(tmp_path / "candidates.csv", index=False)
    page = open_app(browser, voila, "next_experiments")
    upload_tables(page, tmp_path / "conductors.csv", tmp_path / "candidates.csv")
    assert "formula column 'formula' found" in page.inner_text(".battlab-next-tables")
    page.click(".battlab-next-suggest")
    page.wait_for_selector(".battlab-next-experiments-success", timeout=120_000)
    assert page.inner_text(".battlab-next-message").startswith("✔ 5 suggestion(s) from 23 candidates, maximizing log10")
    assert "composition features (battery preset)" in page.inner_text(".battlab-next-tables")
    reasons = page.locator(".battlab-next-suggestions tbody tr td:last-child").all_inner_texts()
    assert len(reasons) == 5 and all(re.search(r"=\S+ \([+-]", r) and "=nan" not in r for r in reasons), reasons
    assert "Li3Xq2" in page.inner_text(".battlab-next-set-aside")
    assert page.locator(ERRORS).count() == 0
    shot(page, "next_experiments_formulas")
    page.close()
