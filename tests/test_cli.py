"""The battlab command: curate files, list datasets, clear one-line errors with exit code 2."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from test_curate import MESSY_CSV, TARGET

from battlab.cli import main


def test_curate_writes_outputs(tmp_path, capsys):
    src = tmp_path / "messy.csv"
    src.write_text(MESSY_CSV)
    out = tmp_path / "out"
    assert main(["curate", str(src), "--out", str(out), "--target", TARGET]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n_input"] == report["n_kept"] + report["n_merged"] + report["n_quarantined"] == 20
    q = pd.read_csv(out / "quarantine.csv")
    assert len(q) == report["n_quarantined"] and q["row"].is_unique
    assert len(pd.read_parquet(out / "curated.parquet")) == report["n_kept"]
    assert "20 rows -> 6 kept, 3 merged, 11 quarantined" in capsys.readouterr().out


def test_curate_units_and_formula_column_options(tmp_path):
    src = tmp_path / "t.tsv"
    src.write_text("Compound\tsigma\nLi3PS4\t0.2 mS/cm\nLi7La3Zr2O12\t3e-4\n")
    out = tmp_path / "out"
    assert main(["curate", str(src), "--out", str(out), "--formula-column", "Compound",
                 "--target", "sigma", "--unit", "sigma=S/cm"]) == 0
    df = pd.read_parquet(out / "curated.parquet")
    assert df["sigma"].tolist() == pytest.approx([2e-4, 3e-4])


@pytest.mark.parametrize("content, fragment", [
    (b"", "the file is empty"),
    (b"\x00\x01\x02\x03PK\x03\x04" * 50, "binary"),
    (b"1,2\n3,4\n", "no header"),
    (b"formula capacity\nLiCoO2 140\n", "wrong delimiter"),
    (b"formula,capacity\n", "no data rows"),
    (b"formula,cap\nLiCoO2,140\n", "missing column 'capacity'"),
])
def test_malformed_files_exit_2_with_one_line(tmp_path, capsys, content, fragment):
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    assert main(["curate", str(src), "--out", str(tmp_path / "o"), "--target", "capacity"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bad.csv" in err and fragment in err
    assert not (tmp_path / "o").exists()


def test_datasets_listing(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "exp_formation_enthalpy" in out and "obelix" in out
    assert main(["datasets", "obelix"]) == 0
    assert json.loads(capsys.readouterr().out)["licence"] == "CC BY 4.0"
    assert main(["datasets", "../etc"]) == 2


def test_console_script_and_module_entry_points(tmp_path):
    bindir = __import__("pathlib").Path(sys.executable).parent
    out = subprocess.run([bindir / "battlab", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "run" in out.stdout and "curate" in out.stdout
    out = subprocess.run([sys.executable, "-m", "battlab", "curate", str(tmp_path / "none.csv"),
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and "no such file" in out.stderr


# --------------------------------------------------------------------------- the step layer through every door


import numpy as np  # noqa: E402

from battlab import steps  # noqa: E402

SEVERSON = "severson/severson2019_dQ100_10_features.csv"


def test_artefacts_round_trip_save_and_load(tmp_path):
    curated = steps.curate(dataset="exp_formation_enthalpy")
    fs = steps.featurize(curated, preset="magpie")
    back_cs = steps.CuratedSet.load(curated.save(tmp_path / "c")["curated.parquet"])
    pd.testing.assert_frame_equal(back_cs.table, curated.table)
    assert (back_cs.target, back_cs.formula_column, back_cs.log_target) == (curated.target, "formula", False)
    fs.save(tmp_path / "f")
    back = steps.FeatureSet.load(tmp_path / "f")
    pd.testing.assert_frame_equal(back.table, fs.table)
    pd.testing.assert_frame_equal(back.info, fs.info, check_dtype=False)
    assert (back.recipe, back.target, back.model_target, back.split) == (fs.recipe, fs.target, fs.model_target,
                                                                         "chemical_system")
    tuned = steps.tune(fs, models=("ridge",), n_trials=1, progress=False, storage="sqlite:///:memory:")
    tuned.save(tmp_path / "m")
    again = steps.TunedModel.load(tmp_path / "m" / "model.joblib")
    assert (again.recipe, again.best_name, again.metrics, again.split) == (tuned.recipe, tuned.best_name,
                                                                           tuned.metrics, tuned.split)
    raw = curated.table.head(30)
    pd.testing.assert_frame_equal(again.predict_interval(raw), tuned.predict_interval(raw))
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    (tmp_path / "m" / "model_card.json").write_text(json.dumps({**card, "format_version": 2}))
    with pytest.raises(steps.BattlabError, match="TunedModel of format version 2"):
        steps.TunedModel.load(tmp_path / "m")
    meta = json.loads((tmp_path / "f" / "featureset.json").read_text())
    (tmp_path / "f" / "featureset.json").write_text(json.dumps({**meta, "artefact": "TunedModel"}))
    with pytest.raises(steps.BattlabError, match="a TunedModel, not a FeatureSet"):
        steps.FeatureSet.load(tmp_path / "f")


def test_the_same_input_gives_the_same_features_and_predictions_through_every_door(tmp_path, capsys):
    """Notebook-facing functions, the CLI and the predictor app: one implementation, identical numbers."""
    from battlab.widgets.predictor import Predictor

    curated = steps.curate(dataset="exp_formation_enthalpy")
    curated.save(tmp_path / "cur")
    fs = steps.featurize(curated, preset="magpie")  # notebook 02
    assert main(["featurize", str(tmp_path / "cur"), "--out", str(tmp_path / "feat"), "--preset", "magpie"]) == 0
    cli_fs = steps.FeatureSet.load(tmp_path / "feat")
    pd.testing.assert_frame_equal(cli_fs.table, fs.table)
    assert cli_fs.recipe == fs.recipe and cli_fs.model_target == fs.model_target == "formation_enthalpy_per_atom"
    tuned = steps.tune(fs, models=("ridge",), n_trials=1, progress=False, storage="sqlite:///:memory:")  # nb 03
    assert main(["tune", str(tmp_path / "feat"), "--target", fs.model_target, "--models", "ridge", "--n-trials",
                 "1", "--quiet", "--out", str(tmp_path / "tuned")]) == 0
    cli_tuned = steps.TunedModel.load(tmp_path / "tuned")
    assert cli_tuned.features == tuned.features and cli_tuned.metrics == tuned.metrics
    formulas = ["LiCoO2", "LiFePO4", "Li2MnO3", "NaCl"]
    raw = pd.DataFrame({"formula": formulas})
    X_recipe, _ = tuned.features_for(raw)  # a raw table, featurized by the model's recipe
    rows = fs.table.set_index("formula").loc[["NaCl"], tuned.features]
    assert np.allclose(X_recipe.iloc[[3]].to_numpy(), rows.to_numpy())  # = the feature set's own values
    app = Predictor(tmp_path / "tuned").predict(formulas)  # the app
    expected = tuned.predict_interval(raw)
    assert np.allclose(app["prediction"], expected["prediction"]) and np.allclose(app["low"], expected["low"])
    assert np.allclose(cli_tuned.predict(raw)["prediction"], expected["prediction"])


def test_artistic_coating_table_through_tune_and_explain(data_cache, tmp_path, capsys):
    """Process parameters -> heterogeneity: no formula column, a random K-fold, the CLI end to end."""
    from battlab.datasets import fetch

    table = fetch("artistic_coating_heterogeneity", "heterogeneity-dataset.csv")
    inputs = ["Active Material [%]", "Solid Content [%]", "Comma Gap [μm]"]
    assert main(["tune", str(table), "--target", "σ.Mass Loading.mg.cm2.", "--features", ",".join(inputs),
                 "--split", "random", "--models", "ridge,rf", "--n-trials", "3", "--quiet",
                 "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "144 rows -> 144 kept" in out and "random 5-fold (seed 0)" in out
    tuned = steps.TunedModel.load(tmp_path / "m")
    assert tuned.features == inputs and not tuned.recipe.composition and tuned.recipe.inputs == inputs
    assert tuned.metrics["mae_mean"] < tuned.metrics["dummy_mae_mean"]
    assert main(["explain", str(tmp_path / "m"), str(table), "--out", str(tmp_path / "x")]) == 0
    ex = steps.Explanation.load(tmp_path / "x")
    assert ex.features == inputs and len(ex.values) == 144 and ex.importance().index[0] == "Comma Gap [μm]"
    new = pd.DataFrame({"Active Material [%]": [95], "Solid Content [%]": [0.6], "Comma Gap [μm]": [100]})
    assert np.isfinite(tuned.predict_interval(new)[["prediction", "low", "high"]].to_numpy()).all()


def test_severson_cycling_features_on_the_papers_split(shared_datasets, tmp_path, capsys):
    """Cycling features -> cycle life on the paper's train / test1 / test2 split, through the CLI."""
    table = shared_datasets / SEVERSON
    assert main(["tune", str(table), "--target", "cycle_life", "--exclude", "cell_idx_in_split", "--split",
                 "official:split", "--models", "ridge", "--n-trials", "2", "--quiet", "--out",
                 str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "not numeric, so not features: split, is_severson_test1_outlier" in out
    tuned = steps.TunedModel.load(tmp_path / "m")
    assert "cell_idx_in_split" not in tuned.features and "log10_var_dQ100_10" in tuned.features
    assert tuned.split == "official split (column 'split': train/every other value)"
    folds = tuned.folds
    assert folds["n_train"].tolist() == [41, 41] and folds["n_test"].tolist() == [43, 40]  # test1, test2
    # the variance feature alone gives 138 / 196 cycles RMSE in the paper; more features do not do worse here
    assert folds["rmse"].iloc[0] < 200 and folds["rmse"].iloc[1] < 260
    assert 0.5 <= tuned.coverage["empirical"] <= 1.0 and tuned.coverage["n_test"] == 43
    assert main(["explain", str(tmp_path / "m"), str(table), "--out", str(tmp_path / "x")]) == 0
    ex = steps.Explanation.load(tmp_path / "x")
    assert ex.importance().index[0] == "log10_var_dQ100_10" and len(ex.values) == 124
