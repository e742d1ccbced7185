"""Sorting retired cells (reuse / repurpose / recycle / retest), the synthetic example pulse table, the drivers of a
SOH estimate, and `battlab health predict --sort` / `battlab health sort` on a lab's own table."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_health import LAB_NAMES, lab_table

from battlab.cli import main
from battlab.errors import BattlabError
from battlab.health import example_pulse_table, fit_soh, load_pulse_table
from battlab.health.soh import SohModel, mape
from battlab.health.sort import DECISIONS, check_thresholds, decision_counts, parse_thresholds, sort_cells


def preds(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["cell", "SOH_pred", "SOH_low", "SOH_high"])


# --------------------------------------------------------------------------- sorting


def test_interval_on_one_side_decides_and_a_straddling_interval_is_retest() -> None:
    p = preds([("a", 0.90, 0.85, 0.95), ("b", 0.81, 0.78, 0.84), ("c", 0.70, 0.62, 0.78), ("d", 0.61, 0.58, 0.65),
               ("e", 0.40, 0.35, 0.45), ("f", 0.70, 0.55, 0.85), ("g", 0.80, 0.80, 0.90)])
    s = sort_cells(p, cell="cell")
    assert s["decision"].tolist() == ["reuse", "retest", "repurpose", "retest", "recycle", "retest", "reuse"]
    reasons = s.set_index("cell")["reason"]
    assert reasons["b"] == "uncertain - retest: interval 0.780-0.840 straddles reuse 0.8"
    assert reasons["d"].endswith("straddles repurpose 0.6")
    assert reasons["f"].endswith("straddles reuse 0.8 and repurpose 0.6")
    # the same estimates with the thresholds moved: the decisions follow the parameters
    moved = sort_cells(p, reuse=0.75, repurpose=0.5, cell="cell")
    assert moved.set_index("cell").loc[["b", "d", "e"], "decision"].tolist() == ["reuse", "repurpose", "recycle"]
    assert decision_counts(s).to_dict() == {"reuse": 2, "repurpose": 1, "recycle": 1, "retest": 3}
    assert tuple(decision_counts(s.iloc[:1]).index) == DECISIONS  # every decision listed, zeros included


def test_a_cell_tested_at_several_socs_is_decided_once_on_its_medians_and_extrapolation_is_said() -> None:
    p = preds([("a", 0.90, 0.86, 0.94), ("a", 0.92, 0.88, 0.96), ("a", 0.70, 0.65, 0.75), ("b", 0.5, 0.45, 0.55)])
    p["soc_extrapolation"] = [False, False, True, False]
    s = sort_cells(p, cell="cell")
    assert s["cell"].tolist() == ["a", "b"] and s["n_tests"].tolist() == [3, 1]
    a = s.iloc[0]
    assert (a["SOH_pred"], a["SOH_low"], a["SOH_high"]) == (0.90, 0.86, 0.94) and a["decision"] == "reuse"
    assert a["reason"].endswith("1 of 3 test(s) at a SOC outside the trained range (extrapolation)")
    # without a cell column each row is a cell, named by the index
    assert sort_cells(p)["cell"].tolist() == ["0", "1", "2", "3"]


def test_no_interval_decides_on_the_estimate_and_says_so() -> None:
    s = sort_cells(preds([("a", 0.85, np.nan, np.nan)]), cell="cell")
    assert s.loc[0, "decision"] == "reuse" and "no interval" in s.loc[0, "reason"]


@pytest.mark.parametrize(("reuse", "repurpose", "message"), [
    (80, 60, "reuse=80: thresholds are SOH fractions"),
    (0.6, 0.8, "repurpose=0.8 must be below reuse=0.6"),
    ("high", 0.6, "reuse='high' is not a number"),
    (0.8, float("nan"), "repurpose=nan: thresholds are SOH fractions"),
    (0.8, 0.0, "repurpose=0.0: thresholds are SOH fractions"),
])
def test_bad_thresholds_are_one_line_errors(reuse, repurpose, message: str) -> None:
    with pytest.raises(BattlabError, match=re.escape(message)):
        check_thresholds(reuse, repurpose)


def test_bad_predictions_are_one_line_errors() -> None:
    with pytest.raises(BattlabError, match=r"no column\(s\) \['SOH_low'\]"):
        sort_cells(preds([("a", 0.9, 0.8, 1.0)]).drop(columns="SOH_low"))
    with pytest.raises(BattlabError, match=r"no column\(s\) \['cell_id'\]"):
        sort_cells(preds([("a", 0.9, 0.8, 1.0)]), cell="cell_id")
    bad = preds([("a", 0.9, 0.8, 1.0), ("b", 0.9, 0.8, 1.0)]).astype({"SOH_pred": object})
    bad.loc[1, "SOH_pred"] = "n/a"
    with pytest.raises(BattlabError, match=r"row 1, column 'SOH_pred': 'n/a' is not a SOH estimate"):
        sort_cells(bad)
    with pytest.raises(BattlabError, match="give reuse=NUMBER"):
        parse_thresholds("reuse")
    assert parse_thresholds(" repurpose = 0.5 ") == (0.8, 0.5)


# --------------------------------------------------------------------------- the example table and drivers


def test_example_table_is_seeded_physical_and_marked_synthetic() -> None:
    a, b = example_pulse_table(6, seed=3), example_pulse_table(6, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(example_pulse_table(6, seed=4))
    assert a["synthetic"].all() and "not measurements" in a.attrs["source"]
    assert a.groupby("cell_id")["SOH"].nunique().eq(1).all() and a["SOH"].between(0.55, 1.0).all()
    # ageing raises the resistance: the 1 C charge step (U11 - U9) grows as the SOH falls, per kind and SOC
    for _, part in a[a["SOC"] == 30].groupby("cell_kind"):
        step = (part["U11"] - part["U9"]) / part["nominal_capacity_Ah"]
        assert np.corrcoef(step, part["SOH"])[0, 1] < -0.9
    with pytest.raises(BattlabError, match="unknown example kind"):
        example_pulse_table(2, kinds=("NCA",))
    with pytest.raises(BattlabError, match="soc_levels must be in"):
        example_pulse_table(2, soc_levels=(0, 50))


def test_auto_source_uses_the_example_when_pulsebat_is_not_cached(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    table, source = load_pulse_table("auto", n_cells=2)
    assert table["synthetic"].all() and "PulseBat is not in the download cache" in source
    with pytest.raises(BattlabError, match="dataset must be one of"):
        load_pulse_table("pulsebatt")


@pytest.fixture(scope="module")
def example_model() -> SohModel:
    return fit_soh(example_pulse_table(10, seed=0), models=("ridge",), n_trials=1)


def test_a_model_of_the_example_estimates_unseen_cells_and_names_its_drivers(example_model: SohModel) -> None:
    new = example_pulse_table(4, seed=9)
    pred = example_model.predict(new)
    assert mape(new["SOH"], pred["SOH_pred"]) < 5
    d = example_model.drivers(new, cell="cell_id", n=3)
    assert d.groupby("cell")["rank"].apply(lambda r: list(r) == [1, 2, 3]).all() and d["cell"].nunique() == 8
    assert set(d["feature"]) <= set(example_model.features)
    # SHAP of a linear model from the training reference: a cell's drivers sum to no more than its whole
    # deviation from the reference mean, and the full attribution adds up to the prediction
    full = example_model.drivers(new.iloc[:1], n=len(example_model.features))
    base = example_model.model.predict(example_model.reference.to_numpy(dtype=float))
    total = full["shap"].sum() + np.mean(np.r_[base, pred["SOH_pred"].iloc[0]])
    assert abs(total - pred["SOH_pred"].iloc[0]) < 1e-6
    with pytest.raises(BattlabError, match="no cell column 'cell'"):
        example_model.drivers(new, cell="cell")


# --------------------------------------------------------------------------- CLI


def _lab_model(tmp_path: Path) -> tuple[Path, str]:
    train = tmp_path / "lab_pulses.csv"
    lab_table(n_cells=8).to_csv(train, index=False)
    mapping = ",".join(f"{k}={v}" for k, v in LAB_NAMES.items())
    code = main(["health", "fit", str(train), "--out", str(tmp_path / "model"), "--map", mapping, "--nominal", "2",
                 "--soc-column", "soc_pct", "--target", "soh", "--group-column", "cell", "--models", "ridge",
                 "--n-trials", "1"])
    assert code == 0
    return tmp_path / "model", mapping


def test_cli_predict_sort_and_sort_command_on_a_lab_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model, _ = _lab_model(tmp_path)
    new = tmp_path / "new.csv"
    lab_table(n_cells=5, seed=4, socs=(10, 30, 60)).drop(columns="soh").to_csv(new, index=False)
    capsys.readouterr()
    code = main(["health", "predict", str(new), "--model", str(model), "--out", str(tmp_path / "p.csv"),
                 "--sort", "reuse=0.85,repurpose=0.7", "--cell-column", "cell", "--sort-out", str(tmp_path / "s.csv")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "5 row(s) at a SOC outside the trained 5-50 %" in out.err  # SOC 60: flagged, still predicted
    assert "sorting (reuse >= 0.85, repurpose >= 0.7" in out.out and "of 5 cell(s):" in out.out
    sorting = pd.read_csv(tmp_path / "s.csv")
    assert len(sorting) == 5 and sorting["n_tests"].eq(3).all() and set(sorting["decision"]) <= set(DECISIONS)
    assert sorting["reason"].str.contains("1 of 3 test").all()
    # the same decisions from the predictions file with `battlab health sort`
    code = main(["health", "sort", str(tmp_path / "p.csv"), "--reuse", "0.85", "--repurpose", "0.7",
                 "--cell-column", "cell", "--out", str(tmp_path / "s2.csv")])
    assert code == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "s2.csv"), sorting)
    expected = sort_cells(pd.read_csv(tmp_path / "p.csv"), 0.85, 0.7, cell="cell")
    assert expected["decision"].tolist() == sorting["decision"].tolist()


@pytest.mark.parametrize(("args", "message"), [
    (["--sort", "reuse=0.6,repurpose=0.8"], "repurpose=0.8 must be below reuse=0.6"),
    (["--sort", "reuse=80"], "reuse='80': thresholds are SOH fractions"),
    (["--sort", "--cell-column", "battery"], "--cell-column 'battery': the table has no such column"),
])
def test_cli_bad_sort_options_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, args,
                                                   message: str) -> None:
    model, _ = _lab_model(tmp_path)
    new = tmp_path / "new.csv"
    lab_table(n_cells=3, seed=4, socs=(20,)).to_csv(new, index=False)
    capsys.readouterr()
    code = main(["health", "predict", str(new), "--model", str(model), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_cli_sort_of_a_file_without_predictions_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "pulses.csv"
    lab_table(n_cells=3, socs=(20,)).to_csv(path, index=False)
    code = main(["health", "sort", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no column(s) ['SOH_pred', 'SOH_low', 'SOH_high']" in err, err


def test_a_model_with_soc_as_a_feature_reads_a_new_tables_soc_column() -> None:
    """``soc_column`` set to a new table's name (CLI --soc-column, the app's SOC picker): the same estimates."""
    t = example_pulse_table(4, seed=0)
    model = fit_soh(t, models=("ridge",), n_trials=1, feature_sets=("pulse+soc",))
    assert "SOC" in model.features
    new = example_pulse_table(2, seed=6)
    expected = model.predict(new)
    model.soc_column = "soc_pct"
    pd.testing.assert_frame_equal(model.predict(new.rename(columns={"SOC": "soc_pct"})), expected)
    assert len(model.drivers(new.rename(columns={"SOC": "soc_pct"}), cell="cell_id")) == 12


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.drop(columns="v07 [V]"), "the pulse table has no column(s) ['v07 [V]']"),
    (lambda t: t.astype({"v10 [V]": object}).assign(**{"v10 [V]": ["3.4", "3,41"] + ["3.4"] * (len(t) - 2)}),
     "row 3, column 'v10 [V]': '3,41' is not a voltage (a number in V)"),
    (lambda t: t.astype({"soc_pct": object}).assign(soc_pct=["20 %"] + [20.0] * (len(t) - 1)),
     "row 2, column 'soc_pct': '20 %' is not a state of charge"),
])
def test_cli_predict_on_a_bad_lab_table_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, edit,
                                                               message: str) -> None:
    """A lab's own pulse table (other names) through `battlab health predict`: each bad-input case is one line
    naming the file's line and the column."""
    model, mapping = _lab_model(tmp_path)
    path = tmp_path / "new.csv"
    edit(lab_table(n_cells=3, seed=4, socs=(20,))).to_csv(path, index=False)
    capsys.readouterr()
    code = main(["health", "predict", str(path), "--model", str(model), "--map", mapping, "--soc-column", "soc_pct"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
