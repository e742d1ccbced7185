"""Issue 22 items 2, 7, 8: a cycle-life model fitted on a lab's own cycler files, predictions only where the model
knows the ground, and bad input in one line.

The cells are synthetic (battlab.cycling.synthetic): known latent lives, written as Arbin CSV and EC-Lab text exports,
one of them right-censored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from battlab.cycling.synthetic import EXAMPLE_NOMINAL_AH, _write_arbin, synthetic_cycles, write_example_cells


def _cli(*argv: str) -> int:
    from battlab.cli import main

    return main([str(a) for a in argv])



def test_fit_on_a_folder_of_two_vendor_formats_labels_and_sets_aside_the_censored_cell(example_cells,
                                                                                     example_model_dir):
    folder, truth = example_cells
    assert set(truth["format"]) == {"arbin", "biologic"}
    labels = pd.read_csv(example_model_dir / "labels.csv").set_index("cell")
    censored = truth.loc[truth["censored"], "cell"].tolist()
    last = int(truth.set_index("cell").loc["cell_12", "last_cycle"])
    assert censored == ["cell_12"] and bool(labels.loc["cell_12", "censored"])
    assert np.isnan(labels.loc["cell_12", "cycle_life"]) and labels.loc["cell_12", "last_cycle"] == last
    lived = truth.loc[~truth["censored"]].set_index("cell")
    # labels (cycles to 0.88 Ah) land on the latent lives the files were written with
    assert np.abs(labels.loc[lived.index, "cycle_life"] - lived["true_life"]).max() <= 3
    aside = pd.read_csv(example_model_dir / "set_aside.csv")
    assert aside["cell"].tolist() == ["cell_12"] and "right-censored" in aside["reason"].iloc[0]
    card = json.loads((example_model_dir / "model_card.json").read_text())
    assert card["cells"]["set_aside"][0]["cell"] == "cell_12" and len(card["cells"]["training_cells"]) == 11
    assert card["domain"]["n_cycles"] == 100 and card["domain"]["capacity_Ah"][0] == pytest.approx(1.1, abs=0.01)
    # the censored cell checks the model: its prediction is not below the cycles it already ran
    (check,) = card["cells"]["censored_check"]
    assert check["cell"] == "cell_12" and check["life_at_least"] == last and check["consistent"]
    assert check["predicted_cycle_life"] == pytest.approx(truth.set_index("cell").loc["cell_12", "true_life"], rel=0.2)


def test_predict_a_cell_with_its_interval_observed_or_censored(example_cells, example_model_dir, tmp_path, capsys):
    folder, truth = example_cells
    capsys.readouterr()
    out = tmp_path / "p.json"
    assert _cli("cycling", "predict", folder / "cell_03.csv", "--model", example_model_dir, "--json", out) == 0
    rec = json.loads(out.read_text())
    life = float(truth.set_index("cell").loc["cell_03", "true_life"])
    assert abs(rec["predicted_cycle_life"] - life) < 0.15 * life
    assert rec["interval_low"] <= rec["predicted_cycle_life"] <= rec["interval_high"]
    assert rec["in_domain"] and rec["censored"] is False and abs(rec["observed_cycle_life"] - life) <= 3
    assert "observed" in capsys.readouterr().out
    assert _cli("cycling", "predict", folder / "cell_12.mpt", "--model", example_model_dir, "--json", out) == 0
    rec = json.loads(out.read_text())
    last = int(truth.set_index("cell").loc["cell_12", "last_cycle"])
    assert rec["censored"] is True and rec["life_at_least"] == last
    assert rec["predicted_cycle_life"] >= last and rec["interval_low"] >= last
    assert f"life >= {last}" in capsys.readouterr().out


def test_features_table_feeds_battlab_tune(tmp_path, capsys):
    # 20 cells: battlab tune's 90 % conformal intervals need more than 10 rows in each training fold
    folder = tmp_path / "cells"
    write_example_cells(folder, n_cells=20, seed=3)
    path = tmp_path / "features.csv"
    assert _cli("cycling", "features", folder, "--nominal", EXAMPLE_NOMINAL_AH, "--out", path) == 0
    table = pd.read_csv(path)
    assert len(table) == 20 and table["cell"].is_unique  # one row per cell, the censored one too (flagged)
    assert bool(table.set_index("cell").loc["cell_20", "censored"])
    features = ["log10_var_dQ100_10_per_Q2", "log10_abs_min_dQ100_10_per_Q2", "fade_slope_2_100_per_Q2",
                "fade_intercept_2_100_per_Q2"]  # the default feature set, relative to each cell's capacity
    assert {*features, "cycle_life"} <= set(table.columns)
    labelled = table.loc[~table["censored"]]
    labelled.to_csv(tmp_path / "labelled.csv", index=False)
    assert _cli("tune", tmp_path / "labelled.csv", "--target", "cycle_life", "--features", ",".join(features),
                "--split", "random", "--n-trials", 2, "--models", "ridge", "--out", tmp_path / "tuned") == 0
    assert (tmp_path / "tuned").is_dir()


def test_labels_command_writes_life_labels(example_cells, tmp_path):
    folder, _ = example_cells
    assert _cli("cycling", "labels", folder, "--nominal", EXAMPLE_NOMINAL_AH, "--out", tmp_path / "labels") == 0
    assert any((tmp_path / "labels").iterdir())


def test_labels_table_naming_missing_cells_loses_nothing_else(example_cells, tmp_path, capsys):
    folder, truth = example_cells
    lab = truth.loc[~truth["censored"], ["cell", "true_life"]].rename(columns={"true_life": "cycle_life"})
    lab["batch"] = ["a", "b", "c", "d"] * 2 + ["a", "b", "c"]
    lab = pd.concat([lab, pd.DataFrame({"cell": ["ghost_1", "ghost_2"], "cycle_life": [300, 400],
                                        "batch": "a"})])
    lab.to_csv(tmp_path / "cells.csv", index=False)
    capsys.readouterr()
    assert _cli("cycling", "fit", folder, "--labels", tmp_path / "cells.csv", "--group-by", "batch", "--n-trials", 2,
                "--quiet", "--out", tmp_path / "m") == 0
    out = capsys.readouterr().out
    for ghost in ("ghost_1", "ghost_2"):
        assert sum(ghost in line and "no cycler file" in line for line in out.splitlines()) == 1
    assert "tuned on 11 of your cells" in out and "cell_12: no label" in out
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert card["cells"]["group_by"] == "batch" and card["split"]["splitter"] == "GroupKFoldBy"
    assert "'batch'" in card["split"]["description"]


def test_group_column_with_too_few_groups_is_one_line(example_cells, tmp_path, capsys):
    folder, truth = example_cells
    lab = truth[["cell", "true_life"]].rename(columns={"true_life": "cycle_life"}).assign(batch="one")
    lab.to_csv(tmp_path / "cells.csv", index=False)
    capsys.readouterr()
    assert _cli("cycling", "fit", folder, "--labels", tmp_path / "cells.csv", "--group-by", "batch", "--quiet",
                "--out", tmp_path / "m") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'batch' has 1 groups" in err


def test_too_few_cycles_says_how_many_it_has_and_needs(example_model_dir, tmp_path, capsys):
    _write_arbin(synthetic_cycles(300, 40), tmp_path / "short.csv")
    capsys.readouterr()
    assert _cli("cycling", "predict", tmp_path / "short.csv", "--model", example_model_dir) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "short" in err and "cycles 2-100" in err and "has 40 cycles" in err


def test_no_nominal_capacity_is_one_line_or_initial_when_told(example_cells, tmp_path, capsys):
    folder, _ = example_cells
    capsys.readouterr()
    assert _cli("cycling", "fit", folder, "--n-trials", 2, "--quiet", "--out", tmp_path / "m") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nominal" in err
    assert _cli("cycling", "fit", folder, "--reference", "initial", "--n-trials", 2, "--quiet",
                "--out", tmp_path / "m") == 0


def test_too_few_labelled_cells_is_one_line(tmp_path, capsys):
    write_example_cells(tmp_path / "few", n_cells=4)
    capsys.readouterr()
    assert _cli("cycling", "fit", tmp_path / "few", "--nominal", 1.1, "--quiet", "--out", tmp_path / "m") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "3 labelled cells" in err and "at least 6" in err


# --------------------------------------------------------------------------- domain of applicability


@pytest.fixture(scope="module")
def severson50(tmp_path_factory) -> Path:
    from battlab.cycling.curves import load_severson_subset
    from battlab.cycling.models import fit_cycle_life

    out = tmp_path_factory.mktemp("sev50")
    fit_cycle_life(load_severson_subset(), n_cycles=50, feature_set="full_discharge", components=0,
                   models=("ridge",), n_trials=2, progress=False).save(out)
    return out


def test_an_18_Ah_cell_is_refused_by_a_model_of_1_1_Ah_cells(cycler_files, severson50, capsys):
    capsys.readouterr()
    code = _cli("cycling", "predict", cycler_files / "indigo_beep_indigo_test_sample.h5", "--model", severson50)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "outside what the model knows" in err and "initial capacity 18.5 Ah far outside" in err


def test_newarenda_test_2_is_one_line_not_an_index_error(cycler_files, severson50, example_model_dir, capsys):
    path = cycler_files / "neware_newarenda_test_2.ndax"  # 54 cycles of a fast-fading, micro-Ah cell
    for model in (severson50, example_model_dir):
        capsys.readouterr()
        assert _cli("cycling", "predict", path, "--model", model) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "test_2" in err
    assert "has 54 cycles" in err  # the 100-cycle model: too few cycles


def test_out_of_domain_prediction_is_bounded_and_flagged(example_cells, severson50):
    """A synthetic cell against the Severson model: flagged, and never beyond the training lives (widened)."""
    from battlab.cycling.models import CycleLifeModel
    from battlab.cycling.owncells import predict_cells

    model = CycleLifeModel.load(severson50)
    folder, _ = example_cells
    pred, aside = predict_cells(model, folder)
    assert len(pred) == 12 and aside.empty
    lo, hi = model.domain.life_bounds()
    assert pred["predicted_cycle_life"].between(lo, hi).all() and hi < 2 * model.domain.life[1]
    flagged = pred.loc[~pred["in_domain"]]
    assert len(flagged) and flagged["domain_warnings"].str.contains("outside the training range").all()


def test_models_saved_before_the_domain_still_load_and_predict(example_cells, severson50, tmp_path):
    from battlab.cycling.models import CycleLifeModel
    from battlab.cycling.owncells import predict_cells

    model = CycleLifeModel.load(severson50)
    del model.__dict__["domain"]  # as a pickle of an older battlab
    model.save(tmp_path / "old")
    old = CycleLifeModel.load(tmp_path / "old")
    assert "domain" not in old.__dict__
    folder, _ = example_cells
    pred, _ = predict_cells(old, folder)  # its domain learned from the stored training table
    assert (~pred["in_domain"]).any() and np.isfinite(pred["predicted_cycle_life"]).all()
    old.train_table = None  # nothing to learn from: today's behaviour, no check, no crash
    pred, _ = predict_cells(old, folder)
    assert "in_domain" not in pred and np.isfinite(pred["predicted_cycle_life"]).all()


def test_example_command_writes_cells_with_known_lives(tmp_path, capsys):
    assert _cli("cycling", "example", "--out", tmp_path / "ex", "--n-cells", 4) == 0
    truth = pd.read_csv(tmp_path / "ex" / "known_lives.csv")
    assert sorted(p.name for p in (tmp_path / "ex" / "cells").iterdir()) == truth["file"].tolist()
    assert truth["censored"].tolist() == [False, False, False, True]
    assert "battlab cycling fit" in capsys.readouterr().out


def test_a_wrong_nominal_capacity_sets_every_cell_aside_in_one_line(example_cells, tmp_path, capsys):
    folder, _ = example_cells
    capsys.readouterr()
    assert _cli("cycling", "fit", folder, "--nominal", 2.0, "--quiet", "--out", tmp_path / "m") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no cell left to featurize (12 set aside)" in err and "cell_01" in err


def test_a_short_labelled_cell_is_set_aside_with_the_cycles_it_has_and_needs(example_cells, tmp_path, capsys):
    folder, _ = example_cells
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in folder.iterdir():
        (mixed / p.name).write_bytes(p.read_bytes())
    _write_arbin(synthetic_cycles(60, 70), mixed / "short.csv")  # reaches end of life at cycle 60: labelled
    capsys.readouterr()
    assert _cli("cycling", "fit", mixed, "--nominal", 1.1, "--n-trials", 2, "--quiet", "--out", tmp_path / "m") == 0
    out = capsys.readouterr().out
    (line,) = [s for s in out.splitlines() if "short:" in s]
    assert "too few cycles" in line and "needs cycles 2-100" in line and "has 70 cycles" in line
    assert "tuned on 11 of your cells" in out
    labels = pd.read_csv(tmp_path / "m" / "labels.csv").set_index("cell")
    assert labels.loc["short", "cycle_life"] == pytest.approx(60, abs=2)  # its label is kept in labels.csv


def test_the_readmes_own_cells_commands_run_as_written(tmp_path, monkeypatch, capsys):
    """Every command of the README's offline own-cells block (the lines on example/), in order, exits 0."""
    import shlex

    text = (Path(__file__).resolve().parents[1] / "docs" / "cycling.md").read_text()
    block = text.split("Your own cells, offline")[1].split("```bash")[1].split("```")[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("battlab cycling")]
    runnable = [c for c in commands if "example" in c]
    assert len(runnable) >= 6 and any(c.startswith("battlab cycling fit example/cells") for c in runnable)
    monkeypatch.chdir(tmp_path)
    for command in runnable:
        argv = shlex.split(command)[1:]
        if argv[:2] == ["cycling", "fit"]:
            argv += ["--n-trials", "4", "--quiet"]  # the README's default budget, made small for the suite
        assert _cli(*argv) == 0, (command, capsys.readouterr())
    out = capsys.readouterr().out
    assert "censored: 236 cycles run without reaching end of life" in out
