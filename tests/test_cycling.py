"""battlab.cycling: cycler files, the Severson dataset, early-life features, cycle-life models, CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from battlab.cycling.read import TIDY_COLUMNS, CellData, detect_format, read_cycler_file
from battlab.errors import DataFileError


def _raw_rows(path: Path, delimiter: str, skip: int = 0, encoding: str = "utf-8") -> list[dict[str, str]]:
    with open(path, encoding=encoding, newline="") as fh:
        for _ in range(skip):
            fh.readline()
        return list(csv.DictReader(fh, delimiter=delimiter))


# --------------------------------------------------------------------------- reading real files


def test_arbin_values_match_the_raw_text(cycler_files):
    path = cycler_files / "FastCharge_000025_CH8.csv"
    cell = read_cycler_file(path)
    raw = _raw_rows(path, ",")
    assert cell.format == "arbin" and len(cell.data) == len(raw) == 248
    for i in (0, 100, 247):
        row = cell.data.iloc[i]
        assert row["time_s"] == pytest.approx(float(raw[i]["Test_Time"]), rel=1e-9)
        assert row["voltage_V"] == pytest.approx(float(raw[i]["Voltage"]), rel=1e-6)
        assert row["temperature_C"] == pytest.approx(float(raw[i]["Temperature"]), rel=1e-6)
        assert row["cycle"] == int(float(raw[i]["Cycle_Index"]))
    assert list(cell.data.columns) == list(TIDY_COLUMNS)
    assert "temperature_C" in cell.present and "internal_resistance_ohm" not in cell.present


def test_arbin_rest_only_cycle_is_listed_as_unusable(cycler_files):
    cell = read_cycler_file(cycler_files / "FastCharge_000025_CH8.csv")  # 248 points of rest in cycle 0
    assert cell.usable_cycles == []
    assert cell.unusable[["cycle", "reason"]].values.tolist() == [[0, "no discharge (no point with negative current)"]]


def test_arbin_blank_cycle_index_keeps_every_point(cycler_files):
    path = cycler_files / "2017-05-09_test-TC-contact_CH33.csv"
    cell = read_cycler_file(path)
    raw = _raw_rows(path, ",")
    assert len(cell.data) == len(raw) == 287  # nothing dropped
    assert cell.data["cycle"].isna().all()
    assert cell.data["current_A"].iloc[2] == pytest.approx(float(raw[2]["Current"]), rel=1e-6)
    assert cell.data["charge_capacity_Ah"].iloc[2] == pytest.approx(float(raw[2]["Charge_Capacity"]), rel=1e-9)
    bad = cell.unusable
    assert bad["n_points"].tolist() == [287] and "no cycle number" in bad["reason"].iloc[0]


def test_maccor_values_match_the_raw_text(cycler_files):
    path = cycler_files / "PredictionDiagnostics_000151_test.052"
    cell = read_cycler_file(path)
    raw = _raw_rows(path, "\t", skip=1)
    assert cell.format == "maccor" and len(cell.data) == len(raw) == 333
    for i in (0, 200, 332):
        row = cell.data.iloc[i]
        assert row["cycle"] == int(raw[i]["Cyc#"]) and row["step"] == int(raw[i]["Step"])
        assert row["time_s"] == pytest.approx(float(raw[i]["Test (Sec)"]))
        assert row["voltage_V"] == pytest.approx(float(raw[i]["Volts"]), rel=1e-7)
        assert raw[i]["State"] == "D" and row["current_A"] == pytest.approx(-abs(float(raw[i]["Amps"])), rel=1e-7)
        assert row["discharge_capacity_Ah"] == pytest.approx(float(raw[i]["Amp-hr"]), rel=1e-7)
    summary = cell.cycles.set_index("cycle").loc[37]
    rise = float(raw[-1]["Amp-hr"]) - float(raw[0]["Amp-hr"])
    assert summary["usable"] and summary["discharge_capacity_Ah"] == pytest.approx(rise, rel=1e-6)


def test_biologic_values_match_the_raw_text(cycler_files):
    path = cycler_files / "test_loopsnewoutput_MB_CE1_short10k.csv"
    cell = read_cycler_file(path)
    raw = _raw_rows(path, ";")
    assert cell.format == "biologic" and len(cell.data) == len(raw) == 9999
    for i in (1, 1000, 5000):
        row = cell.data.iloc[i]
        assert row["voltage_V"] == pytest.approx(float(raw[i]["Ecell/V"]))
        assert row["current_A"] == pytest.approx(float(raw[i]["I/mA"]) / 1000)
        assert row["cycle"] == int(float(raw[i]["cycle number"]))
        assert row["discharge_capacity_Ah"] == pytest.approx(float(raw[i]["Q discharge/mA.h"]) / 1000)
    assert cell.data["time_s"].iloc[1] == pytest.approx(22.756)  # 15:36:45.513 - 15:36:22.757
    by_cycle = cell.cycles.set_index("cycle")
    q0 = max(float(r["Q discharge/mA.h"]) for r in raw if r["cycle number"] == "0") / 1000
    assert by_cycle.loc[0, "discharge_capacity_Ah"] == pytest.approx(q0)
    assert by_cycle.loc[1, "coulombic_efficiency"] == pytest.approx(
        by_cycle.loc[1, "discharge_capacity_Ah"] / by_cycle.loc[1, "charge_capacity_Ah"])
    assert cell.usable_cycles == [0, 1]
    assert by_cycle.loc[2, "reason"].startswith("no discharge")  # cycle 2 is cut off before its discharge


def test_novonix_values_match_the_raw_text(cycler_files):
    path = cycler_files / "test_Nova_Form-CH01-01_short.csv"
    cell = read_cycler_file(path)
    with open(path, encoding="utf-8") as fh:
        lines = [ln.strip().strip('"') for ln in fh]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Date and Time,Cycle Number"))
    header = lines[start].split(",")
    rows = [dict(zip(header, ln.split(","), strict=True)) for ln in lines[start + 1:] if ln]
    assert cell.format == "novonix" and len(cell.data) == len(rows)
    for i in (0, 500, len(rows) - 1):
        row = cell.data.iloc[i]
        assert row["time_s"] == pytest.approx(float(rows[i]["Run Time (h)"]) * 3600)
        assert row["voltage_V"] == pytest.approx(float(rows[i]["Potential (V)"]))
        assert row["current_A"] == pytest.approx(float(rows[i]["Current (A)"]))
        assert row["temperature_C"] == pytest.approx(float(rows[i]["Temperature (°C)"]))
        assert row["step"] == int(rows[i]["Step Number"])
    # the short file ends during the first charge: no discharge yet, and it says so
    assert cell.unusable["reason"].tolist() == ["no discharge (no point with negative current)"]


def test_save_and_load_round_trip(cycler_files, tmp_path):
    cell = read_cycler_file(cycler_files / "test_loopsnewoutput_MB_CE1_short10k.csv")
    cell.save(tmp_path / "cell")
    back = CellData.load(tmp_path / "cell")
    pd.testing.assert_frame_equal(back.data, cell.data)
    pd.testing.assert_frame_equal(back.cycles, cell.cycles, check_dtype=False)
    assert back.format == "biologic" and back.present == cell.present
    assert pd.read_csv(tmp_path / "cell" / "unusable.csv")["cycle"].tolist() == [2]


# --------------------------------------------------------------------------- plain CSV and bad input


def test_plain_csv_with_units_in_headers(tmp_path):
    path = tmp_path / "lab.csv"
    pd.DataFrame({"Cycle": [1, 1, 1, 2, 2, 2], "Time (h)": [0, 1, 2, 3, 4, 5],
                  "Current (mA)": [500, -500, -500, 500, -400, -400], "Voltage (V)": [3.5, 3.3, 3.0, 3.5, 3.2, 3.0],
                  "Temperature (°C)": [25, 26, 27, 25, 26, 28]}).to_csv(path, index=False)
    cell = read_cycler_file(path)
    assert cell.format == "csv"
    assert cell.data["time_s"].tolist()[:2] == [0.0, 3600.0] and cell.data["current_A"].iloc[0] == 0.5
    # no capacity counters: integrated from the current (0.5 A for 1 h, then the last point ends the cycle)
    assert cell.cycles["discharge_capacity_Ah"].round(6).tolist() == [0.5, 0.4]
    assert cell.cycles["temperature_max_C"].tolist() == [27.0, 28.0]


def test_unknown_format_names_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\nthis is not a cycler file\n")
    with pytest.raises(DataFileError, match=r"notes\.txt: unknown cycler file format"):
        read_cycler_file(path)


def test_missing_voltage_column(tmp_path):
    path = tmp_path / "novolt.csv"
    path.write_text("cycle,time_s,current_A,temperature\n1,0,1.0,25\n")
    with pytest.raises(DataFileError, match=r"novolt\.csv: unknown cycler file format: no voltage column"):
        read_cycler_file(path)


def test_missing_current_column_in_an_arbin_file(cycler_files, tmp_path):
    src = (cycler_files / "FastCharge_000025_CH8.csv").read_text().splitlines()
    header = src[0].split(",")
    keep = [i for i, h in enumerate(header) if h != "Current"]
    path = tmp_path / "arbin_nocurrent.csv"
    path.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in src) + "\n")
    with pytest.raises(DataFileError, match=r"arbin_nocurrent\.csv: .*no current column"):
        read_cycler_file(path)


def test_missing_cycle_column_in_a_plain_csv(tmp_path):
    # issue 19: a file without a cycle column gets cycles derived from the current (it used to be refused)
    path = tmp_path / "nocycle.csv"
    path.write_text("time_s,current_A,voltage_V\n0,1.0,3.3\n1,-1.0,3.2\n2,1.0,3.3\n3,-1.0,3.2\n")
    cell = read_cycler_file(path)
    assert cell.data["cycle"].tolist() == [1, 1, 2, 2]
    assert "is missing" in cell.metadata["cycles_derived"] and cell.metadata["file_cycle_column"] == "none"


def test_text_in_the_current_column_names_row_and_column(tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("cycle,time_s,current_A,voltage_V\n1,0,1.0,3.3\n1,1,oops,3.2\n")
    with pytest.raises(DataFileError, match=r"typo\.csv: row 2, column 'current_A': 'oops' is not a number"):
        read_cycler_file(path)


@pytest.mark.parametrize("content, message", [(b"", "empty file"),
                                              (b"\x00\x01\x02BIN", "unknown binary .csv file: no reader")])
def test_empty_and_binary_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=message):
        detect_format(path)


def test_git_lfs_pointer_says_what_it_is(tmp_path):
    path = tmp_path / "cell.csv"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 123456\n")
    with pytest.raises(DataFileError, match=r"cell\.csv: a Git LFS pointer, not the data itself"):
        read_cycler_file(path)


def test_unknown_binary_advice_is_given_once(tmp_path):
    path = tmp_path / "cell.ccs"
    path.write_bytes(b"\x00\x01LANHE" * 100)
    with pytest.raises(DataFileError) as exc:
        read_cycler_file(path)
    message = str(exc.value)
    assert message.count("export") == 1 and "LANHE .ccs" in message and "\n" not in message


def test_header_only(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("cycle,time_s,current_A,voltage_V\n")
    with pytest.raises(DataFileError, match="header only"):
        read_cycler_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        read_cycler_file(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- severson2019


@pytest.fixture(scope="module")
def severson(data_cache):
    from battlab.cycling.curves import load_severson

    return load_severson()


def test_severson_registry_and_split(data_cache, shared_datasets):
    from battlab.datasets import dataset_card, fetch, load_dataset

    cells, card = load_dataset("severson2019")
    assert cells["split"].value_counts().to_dict() == {"test1": 43, "train": 41, "test2": 40}
    outlier = cells.loc[cells["is_outlier"]]
    assert outlier[["split", "cell_in_split", "cycle_life"]].values.tolist() == [["test1", 22, 148]]
    lives = (shared_datasets / "severson" / "train_cycle_lives.csv").read_text().split()
    assert cells.loc[cells["split"] == "train", "cycle_life"].tolist() == [int(x) for x in lives]
    assert card.target == "cycle_life" and "MIT" in dataset_card("severson2019").licence
    assert fetch("severson2019", "test2_cell40.csv").is_file()  # checksum verified on the way


def test_severson_curves_match_the_files(severson, shared_datasets):
    raw = np.loadtxt(shared_datasets / "severson" / "curves" / "test1" / "cell5.csv", delimiter=",")
    i = int(np.flatnonzero(severson.cells["cell"] == "test1_cell5")[0])
    assert severson.Q.shape == (124, 99, 1000)
    np.testing.assert_allclose(severson.Q[i, 0], raw[:, 0], rtol=1e-6)     # cycle 2
    np.testing.assert_allclose(severson.Q[i, 98], raw[:, 98], rtol=1e-6)   # cycle 100
    np.testing.assert_allclose(severson.capacity[i], raw[-1], rtol=1e-6)   # Q at 2.0 V
    assert severson.voltages[0] == 3.6 and severson.voltages[-1] == 2.0


def test_shipped_subset_is_small_and_faithful(severson):
    from battlab.cycling.curves import _SUBSET, load_severson_subset, severson_subset

    sub = load_severson_subset()
    assert _SUBSET.stat().st_size < 1_000_000
    assert (_SUBSET.parent / "LICENSE_revisit-severson-et-al_MIT.txt").is_file()
    fresh = severson_subset(severson)
    np.testing.assert_allclose(sub.Q, fresh.Q, rtol=1e-6)
    np.testing.assert_allclose(sub.capacity, severson.capacity, rtol=1e-6)  # every cycle's capacity, exact
    assert sub.cells["cell"].tolist() == severson.cells["cell"].tolist()
    assert sub.cells["cycle_life"].tolist() == severson.cells["cycle_life"].astype(float).tolist()


# --------------------------------------------------------------------------- features


def test_delta_q_features_match_the_published_derivation(severson, shared_datasets):
    from battlab.cycling.features import DeltaQFeatures

    ref = pd.read_csv(shared_datasets / "severson" / "severson2019_dQ100_10_features.csv")
    table = DeltaQFeatures(100, 10).transform(severson)
    cols = [c for c in table.columns if c in ref.columns]
    assert len(cols) == 6
    np.testing.assert_allclose(table[cols].to_numpy(), ref[cols].to_numpy(), atol=1e-5)


def test_cycle_windows_are_parameters(severson):
    from battlab.cycling.features import CapacityFadeFeatures, DeltaQFeatures, early_life_features

    cell = severson[0]
    dq = DeltaQFeatures(50, 10)
    d = cell.curve(50) - cell.curve(10)
    values = dict(zip(dq.feature_labels(), dq.featurize(cell), strict=True))
    assert values["log10_var_dQ50_10"] == pytest.approx(np.log10(np.var(d)))
    assert values["dQ50_10_at_2V"] == pytest.approx(d[-1])
    fade = CapacityFadeFeatures(window=(41, 50))
    cyc = np.arange(41, 51)
    slope, intercept = np.polyfit(cyc, cell.capacity[cyc - 2], 1)
    got = dict(zip(fade.feature_labels(), fade.featurize(cell), strict=True))
    assert got["fade_slope_41_50"] == pytest.approx(slope) and got["fade_intercept_41_50"] == pytest.approx(intercept)
    assert [f.feature_labels()[0] for f in early_life_features(20)] == ["log10_var_dQ20_10", "Qd_cycle2"]


def test_capacity_glitches_are_ignored_and_listed(severson):
    from battlab.cycling.features import CapacityFadeFeatures

    i = int(np.flatnonzero(severson.cells["cell"] == "train_cell2")[0])
    cell = severson[i]
    assert cell.capacity[12 - 2] > 30  # a logging glitch in the data: 31 Ah for a 1.1 Ah cell
    fade = CapacityFadeFeatures()
    assert fade.ignored_cycles(cell) == [12]
    rise = fade.featurize(cell)[1]
    others = np.delete(cell.capacity, 12 - 2)
    assert rise == pytest.approx(others.max() - cell.capacity[0])
    # a single cycle 6 % low is a glitch too; the outlier cell's sustained fade over cycles 93-100 is not
    low = severson[int(np.flatnonzero(severson.cells["cell"] == "test1_cell1")[0])]
    assert low.capacity[12 - 2] < 0.95 * np.median(low.capacity) and fade.ignored_cycles(low) == [12]
    fading = severson[int(np.flatnonzero(severson.cells["is_outlier"])[0])]
    assert fading.capacity[-1] < 0.95 * np.median(fading.capacity) and fade.ignored_cycles(fading) == []


def test_missing_cycle_is_a_clear_error(severson):
    from battlab.cycling.features import DeltaQFeatures
    from battlab.errors import BattlabError

    with pytest.raises(BattlabError, match=r"train_cell1: no discharge curve for cycle 150 \(curves of cycles 2-100\)"):
        DeltaQFeatures(150, 10).featurize(severson[0])


def test_whole_curve_components_learn_from_training_cells_only(severson):
    from sklearn.base import clone
    from sklearn.decomposition import PCA

    from battlab.cycling.features import DeltaQComponents

    train = severson.select(severson.cells["split"] == "train")
    comp = DeltaQComponents(n_components=2).fit(train)
    dq = np.asarray([c.curve(100) - c.curve(10) for c in train], dtype=float)
    ref = PCA(n_components=2).fit(dq)
    np.testing.assert_allclose(np.abs(comp.pca_.components_), np.abs(ref.components_), atol=1e-8)
    out = comp.transform(severson)
    assert list(out.columns) == ["dQ100_10_pc1", "dQ100_10_pc2"] and len(out) == 124
    assert clone(comp).get_params() == {"n_components": 2, "cycle_a": 100, "cycle_b": 10, "seed": 0}
    assert not hasattr(DeltaQComponents(), "pca_")  # __init__ stores parameters only


def test_components_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    from battlab.cycling.features import DeltaQComponents

    check_estimator(DeltaQComponents(n_components=1))


# --------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def subset():
    from battlab.cycling.curves import load_severson_subset

    return load_severson_subset()


@pytest.fixture(scope="module")
def small_model(subset):
    from battlab.cycling.models import fit_cycle_life

    return fit_cycle_life(subset, models=("ridge",), n_trials=3, components=2, progress=False)


def test_test_cells_never_reach_the_fit(subset, small_model):
    from battlab.cycling.models import fit_cycle_life

    scrambled = subset.select(np.ones(len(subset), dtype=bool))
    test = scrambled.cells["split"] != "train"
    scrambled.cells.loc[test, "cycle_life"] = 1.0  # nonsense lives on the test cells
    scrambled.Q[test.to_numpy()] = 0.0              # and flat curves
    other = fit_cycle_life(scrambled, models=("ridge",), n_trials=3, components=2, progress=False)
    train = subset.select(subset.cells["split"] == "train")
    pd.testing.assert_frame_equal(other.predict(train), small_model.predict(train))


def test_evaluation_figures_are_computed_from_the_predictions(subset, small_model):
    from battlab.cycling.models import evaluate

    ev = evaluate(small_model, subset)
    p = ev.predictions
    t2 = p.loc[p["split"] == "test2"]
    rmse = np.sqrt(np.mean((t2["predicted_cycle_life"] - t2["cycle_life"]) ** 2))
    assert ev.metrics["test2"]["rmse"] == pytest.approx(rmse)
    t1 = p.loc[(p["split"] == "test1") & ~p["is_outlier"]]
    assert ev.metrics["test1_without_outlier"]["n_cells"] == len(t1) == 42
    inside = (t2["cycle_life"] >= t2["interval_low"]) & (t2["cycle_life"] <= t2["interval_high"])
    assert ev.metrics["test2"]["coverage"] == pytest.approx(inside.mean())
    assert (p["interval_low"] < p["predicted_cycle_life"]).all()
    assert (p["predicted_cycle_life"] < p["interval_high"]).all()
    assert set(ev.table().index) == {"train", "test1", "test1_without_outlier", "test2", "all_test"}


def test_model_save_load_round_trip(subset, small_model, tmp_path):
    from battlab.cycling.models import CycleLifeModel

    small_model.save(tmp_path / "m")
    back = CycleLifeModel.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.predict(subset), small_model.predict(subset))
    assert json.loads((tmp_path / "m" / "model_card.json").read_text())["cycle_life"]["n_cycles"] == 100


def test_a_cell_with_too_few_cycles_says_how_many(cycler_files, small_model):
    from battlab.cycling.curves import curves_from_cell
    from battlab.errors import BattlabError

    cell = read_cycler_file(cycler_files / "test_loopsnewoutput_MB_CE1_short10k.csv")
    curves = curves_from_cell(cell, small_model.voltages)
    assert curves.cycles.tolist() == [0, 1]
    with pytest.raises(BattlabError, match=r"test_loopsnewoutput_MB_CE1_short10k: the model predicts from the first "
                                           r"100 cycles and needs cycles 2, 10, 91-100; the cell has 2 cycles with "
                                           r"a usable discharge \(0-1\)"):
        small_model.predict(curves)


def test_curves_from_a_cycler_file_follow_the_discharge(cycler_files):
    from battlab.cycling.curves import curves_from_cell

    cell = read_cycler_file(cycler_files / "test_loopsnewoutput_MB_CE1_short10k.csv")
    v = np.linspace(4.1, 3.0, 12)
    q = curves_from_cell(cell, v).Q[0, 1]  # cycle 1
    assert np.all(np.diff(q) >= 0)  # more capacity at lower voltage
    d = cell.data.loc[(cell.data["cycle"] == 1) & (cell.data["current_A"] < 0)]
    assert q[-1] == pytest.approx(d["discharge_capacity_Ah"].max() - d["discharge_capacity_Ah"].min(), rel=1e-3)


def test_life_classifier_on_training_cells(subset):
    from battlab.cycling.models import fit_life_classifier

    clf = fit_life_classifier(subset, n_cycles=5, threshold=550)
    acc = clf.accuracy(subset)
    assert set(acc) == {"train", "test1", "test2", "all_test"}
    assert acc["train"] > 0.7 and 0.5 < clf.cv_accuracy <= 1.0
    assert clf.features[0] == "log10_var_dQ5_4"


# --------------------------------------------------------------------------- feature sets, choosing by CV


def test_feature_subsets_are_columns_of_the_full_set(severson):
    from battlab.cycling.features import CapacityFadeFeatures, DeltaQFeatures

    full = DeltaQFeatures(100, 10).transform(severson)
    part = DeltaQFeatures(100, 10, stats=("min", "var")).transform(severson)
    assert list(part.columns) == ["log10_var_dQ100_10", "log10_abs_min_dQ100_10"]  # in the order of the full set
    pd.testing.assert_frame_equal(part, full[list(part.columns)])
    fade = CapacityFadeFeatures(2, (2, 100))
    full_fade, cell = fade.transform(severson), severson[5]
    part_fade = CapacityFadeFeatures(2, (2, 100), values=("slope", "intercept")).transform(severson)
    pd.testing.assert_frame_equal(part_fade, full_fade[["fade_slope_2_100", "fade_intercept_2_100"]])
    slope, intercept = np.polyfit(np.arange(2, 101), cell.capacity, 1)  # cell 6 has no capacity glitch
    assert fade.ignored_cycles(cell) == []
    assert part_fade.iloc[5].tolist() == pytest.approx([slope, intercept])
    info = DeltaQFeatures(stats=("kurt",)).feature_info()
    assert info[["feature", "property", "unit"]].values.tolist() == [["log10_abs_kurt_dQ100_10", "kurtosis", "log10"]]


@pytest.mark.parametrize("kind, chosen, message", [
    ("stats", ("var", "median"), r"stats must be a non-empty subset of \['var', 'min', 'mean', 'skew', 'kurt', "
                                 r"'at_voltage'\], got \['var', 'median'\]"),
    ("values", (), r"values must be a non-empty subset of \['first', 'rise', 'slope', 'intercept'\], got \[\]"),
])
def test_unknown_feature_subset_is_a_clear_error(kind, chosen, message):
    from battlab.cycling.features import CapacityFadeFeatures, DeltaQFeatures
    from battlab.errors import BattlabError

    featurizer = DeltaQFeatures(stats=chosen) if kind == "stats" else CapacityFadeFeatures(values=chosen)
    with pytest.raises(BattlabError, match=message):
        featurizer.feature_labels()


def test_feature_sets_are_the_published_models():
    from battlab.cycling.features import FEATURE_SETS, early_life_features
    from battlab.errors import BattlabError

    def labels(preset, n=100):
        return [label for f in early_life_features(n, preset) for label in f.feature_labels()]

    assert labels("variance") == ["log10_var_dQ100_10"]
    assert labels("discharge") == ["log10_var_dQ100_10", "log10_abs_min_dQ100_10", "log10_abs_skew_dQ100_10",
                                   "log10_abs_kurt_dQ100_10", "Qd_cycle2", "Qd_max_minus_cycle2"]
    assert labels("full_discharge", 50) == ["log10_var_dQ50_10", "log10_abs_min_dQ50_10", "Qd_cycle2",
                                            "fade_slope_2_50", "fade_intercept_2_50"]
    default = [label for f in early_life_features(100) for label in f.feature_labels()]
    assert len(labels("all")) == 10 and labels("all") == default
    assert set(FEATURE_SETS) == {"all", "variance", "discharge", "full_discharge", "relative"}
    with pytest.raises(BattlabError, match=r"unknown feature set 'paper'; feature sets are \['all', 'discharge'"):
        early_life_features(100, "paper")


def test_fit_with_a_feature_set_needs_its_cycles(subset, cycler_files):
    from battlab.cycling.curves import curves_from_cell
    from battlab.cycling.models import fit_cycle_life
    from battlab.errors import BattlabError

    model = fit_cycle_life(subset, feature_set="full_discharge", components=0, models=("ridge",), n_trials=2,
                           progress=False)
    assert model.features == ["log10_var_dQ100_10", "log10_abs_min_dQ100_10", "Qd_cycle2", "fade_slope_2_100",
                              "fade_intercept_2_100"]
    assert model.card["cycle_life"]["feature_set"] == "full_discharge"
    assert model.required_cycles() == list(range(2, 101))
    cell = read_cycler_file(cycler_files / "test_loopsnewoutput_MB_CE1_short10k.csv")
    with pytest.raises(BattlabError, match=r"needs cycles 2-100; the cell has 2 cycles with a usable discharge"):
        model.predict(curves_from_cell(cell, model.voltages))


@pytest.fixture(scope="module")
def small_cv(subset):
    from battlab.cycling.models import cross_validate_cycle_life

    return cross_validate_cycle_life(subset, n_splits=4, n_repeats=2, feature_set="variance", components=0,
                                     models=("ridge",), n_trials=2)


def test_cross_validation_predicts_each_training_cell_once_per_repeat(subset, small_cv):
    p = small_cv.predictions
    train = set(subset.cells.loc[subset.cells["split"] == "train", "cell"])
    assert len(p) == 2 * len(train) and p["repeat"].tolist().count(0) == len(train)
    for _, part in p.groupby("repeat"):
        assert set(part["cell"]) == train and part["cell"].is_unique
    assert not p["cell"].str.startswith("test").any()
    per_repeat = [np.sqrt(np.mean((g["predicted_cycle_life"] - g["cycle_life"]) ** 2)) for _, g in p.groupby("repeat")]
    assert small_cv.metrics["rmse_mean"] == pytest.approx(np.mean(per_repeat))
    assert small_cv.metrics["rmse_std"] == pytest.approx(np.std(per_repeat, ddof=1))
    inside = (p["cycle_life"] >= p["interval_low"]) & (p["cycle_life"] <= p["interval_high"])
    assert small_cv.metrics["coverage"] == pytest.approx(inside.mean())
    assert small_cv.settings["feature_set"] == "variance" and small_cv.settings["seed"] == 0


def test_cross_validation_holds_the_fold_out_and_never_reads_test_cells(subset, small_cv, monkeypatch):
    import battlab.cycling.models as models

    scrambled = subset.select(np.ones(len(subset), dtype=bool))
    test = (scrambled.cells["split"] != "train").to_numpy()
    scrambled.cells.loc[test, "cycle_life"] = 1.0
    scrambled.Q[test] = 0.0
    seen = []
    real_fit = models.fit_cycle_life

    def spy(curves, **kwargs):
        seen.append(set(curves.cells["cell"]))
        return real_fit(curves, **kwargs)

    monkeypatch.setattr(models, "fit_cycle_life", spy)
    again = models.cross_validate_cycle_life(scrambled, n_splits=4, n_repeats=2, feature_set="variance",
                                             components=0, models=("ridge",), n_trials=2)
    pd.testing.assert_frame_equal(again.predictions, small_cv.predictions)
    p = small_cv.predictions
    assert len(seen) == 8
    for k, fitted in enumerate(seen):
        held = set(p.loc[(p["repeat"] == k // 4) & (p["fold"] == k % 4), "cell"])
        assert held and not held & fitted and len(held | fitted) == 41


def test_cross_validation_save_load_and_comparison(subset, small_cv, tmp_path):
    from battlab.cycling.models import CycleLifeComparison, CycleLifeCV
    from battlab.errors import BattlabError

    back = CycleLifeCV.load(small_cv.save(tmp_path / "cv"))
    assert back.metrics == small_cv.metrics and back.settings["models"] == ["ridge"]
    pd.testing.assert_frame_equal(back.predictions, small_cv.predictions)
    worse = CycleLifeCV({**small_cv.metrics, "rmse_mean": small_cv.metrics["rmse_mean"] + 1}, small_cv.predictions)
    found = CycleLifeComparison({"worse": worse, "cv": small_cv})
    assert found.best == "cv" and found.table()["candidate"].tolist() == ["cv", "worse"]
    with pytest.raises(BattlabError, match="no cv.json"):
        CycleLifeCV.load(tmp_path)


def test_clip_margin_keeps_predictions_within_the_training_range(subset):
    from battlab.cycling.models import fit_cycle_life

    kw = {"feature_set": "variance", "components": 0, "models": ("ridge",), "n_trials": 2, "progress": False}
    free = fit_cycle_life(subset, **kw)
    held = fit_cycle_life(subset, clip_margin=0.0, **kw)
    lives = np.log10(subset.cells.loc[subset.cells["split"] == "train", "cycle_life"].to_numpy(dtype=float))
    assert held.target_bounds == pytest.approx((lives.min(), lives.max()))
    feats = held.train_table[held.features]
    assert held.feature_bounds.loc["low"].tolist() == feats.min().tolist()
    # a cell whose dQ(V) barely changes: far beyond every training cell, the free line runs away
    far = subset.select(np.arange(len(subset)) < 2)
    far.Q[:] = far.Q[:, :1]  # every cycle's curve is its first one: dQ ~ 0
    far.Q[:, -1] += 1e-6 * np.linspace(0, 1, far.Q.shape[2])
    p_free, p_held = free.predict(far), held.predict(far)
    raw = 10 ** free.model.predict(free.feature_table(far)[free.features].to_numpy(dtype=float))
    assert (raw > 10 ** lives.max() * 1.5).all()
    # ... and the domain check bounds it to the training lives (widened) and flags the cells (issue 22 item 7)
    assert np.allclose(p_free["predicted_cycle_life"], free.domain.life_bounds()[1])
    assert not p_free["in_domain"].any() and p_free["domain_warnings"].str.contains("log10_var").all()
    # held: the feature is winsorised to the lowest training variance, the life stays in the training range
    edge = 10 ** free.model.predict(feats.min().to_numpy()[None, :])[0]
    assert np.allclose(p_held["predicted_cycle_life"], edge) and edge <= 10 ** lives.max()
    # the interval moves with the clipped prediction and keeps its width (log10 cycles)
    width = np.log10(p_held["interval_high"]) - np.log10(p_held["interval_low"])
    assert (p_held["interval_low"] < p_held["predicted_cycle_life"]).all()
    assert (p_held["predicted_cycle_life"] < p_held["interval_high"]).all()
    assert np.all(width > 0)
    # on the training cells (features within range) only a prediction beyond the training lives changes: clipped
    train = subset.select(subset.cells["split"] == "train")
    a, b = held.predict(train)["predicted_cycle_life"], free.predict(train)["predicted_cycle_life"]
    inside = (b >= 10 ** lives.min()) & (b <= 10 ** lives.max())
    assert (~inside).any() and np.allclose(a[inside], b[inside])
    assert np.allclose(a[~inside], np.clip(b[~inside], *10 ** np.array(held.target_bounds)))
    wide = fit_cycle_life(subset, clip_margin=0.5, **kw)
    low = feats.min() - 0.5 * (feats.max() - feats.min())
    assert wide.feature_bounds.loc["low"].to_numpy() == pytest.approx(low.to_numpy())
    top = lives.max() + 0.5 * (lives.max() - lives.min())
    expected = 10 ** min(free.model.predict(low.to_numpy()[None, :])[0], top)
    assert np.allclose(wide.predict(far)["predicted_cycle_life"], expected) and expected > edge


@pytest.mark.parametrize("margin", [-0.1, float("nan")])
def test_a_bad_clip_margin_is_a_clear_error(subset, margin):
    from battlab.cycling.models import fit_cycle_life
    from battlab.errors import BattlabError

    with pytest.raises(BattlabError, match="clip_margin must be None or a fraction >= 0"):
        fit_cycle_life(subset, clip_margin=margin, models=("ridge",), n_trials=2, progress=False)


def test_average_of_candidates_is_the_geometric_mean_of_their_predictions(subset, small_cv):
    from battlab.cycling.models import (
        CycleLifeComparison,
        cross_validate_cycle_life,
        evaluate,
        fit_cycle_life,
        fit_cycle_life_average,
    )
    from battlab.errors import BattlabError

    kw = {"components": 0, "models": ("ridge",), "n_trials": 2}
    other = cross_validate_cycle_life(subset, n_splits=4, n_repeats=2, feature_set="full_discharge", **kw)
    found = CycleLifeComparison({"variance": small_cv, "full": other})
    avg = found.average(["variance", "full"])
    assert "average(full+variance)" in found.results and avg.settings["average_of"] == ["full", "variance"]
    key = ["repeat", "fold", "cell"]
    a, b = (cv.predictions.sort_values(key).reset_index(drop=True) for cv in (small_cv, other))
    assert np.allclose(avg.predictions["predicted_cycle_life"],
                       np.sqrt(a["predicted_cycle_life"] * b["predicted_cycle_life"]))
    assert np.allclose(avg.predictions["interval_low"], np.sqrt(a["interval_low"] * b["interval_low"]))
    err = avg.predictions["predicted_cycle_life"] - avg.predictions["cycle_life"]
    per_repeat = np.sqrt((err ** 2).groupby(avg.predictions["repeat"]).mean())
    assert avg.metrics["rmse_mean"] == pytest.approx(per_repeat.mean())
    with pytest.raises(BattlabError, match="average needs two or more"):
        found.average(["variance"])
    with pytest.raises(BattlabError, match="average needs two or more"):
        found.average(["variance", "nope"])
    shifted = cross_validate_cycle_life(subset, n_splits=4, n_repeats=2, seed=1, feature_set="variance", **kw)
    with pytest.raises(BattlabError, match="not cross-validated on the same folds"):
        CycleLifeComparison({"a": small_cv, "b": shifted}).average(["a", "b"])
    # the refitted average predicts the geometric mean of its members, fitted on the training cells only
    model = fit_cycle_life_average(subset, [{"feature_set": "variance", **kw}, {"feature_set": "full_discharge", **kw}])
    one, two = (fit_cycle_life(subset, feature_set=fs, progress=False, **kw) for fs in ("variance", "full_discharge"))
    p = model.predict(subset)
    assert np.allclose(p["predicted_cycle_life"], np.sqrt(one.predict(subset)["predicted_cycle_life"]
                                                         * two.predict(subset)["predicted_cycle_life"]))
    assert model.required_cycles() == two.required_cycles() and model.n_cycles == 100
    assert evaluate(model, subset).metrics["test2"]["n_cells"] == 40
    with pytest.raises(BattlabError, match="an average needs two or more settings"):
        fit_cycle_life_average(subset, [{"feature_set": "variance", **kw}])


# --------------------------------------------------------------------------- CLI


def _cli(*argv: str) -> int:
    from battlab.cli import main

    return main(list(argv))


def test_cli_read_writes_the_cell(cycler_files, tmp_path, capsys):
    code = _cli("cycling", "read", str(cycler_files / "PredictionDiagnostics_000151_test.052"), "--out",
                str(tmp_path / "cell"))
    assert code == 0
    assert "maccor): 333 points, 1 cycles, 1 usable" in capsys.readouterr().out
    back = CellData.load(tmp_path / "cell")
    assert back.format == "maccor" and len(back.data) == 333


def test_cli_bad_input_exits_2(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    assert _cli("cycling", "read", str(path), "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert err.startswith("battlab cycling: error: ") and "notes.txt: unknown cycler file format" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_predict_and_too_few_cycles(cycler_files, tmp_path, capsys, small_model, subset):
    small_model.save(tmp_path / "model")
    # a plain CSV of a cell with 100 cycles, rebuilt from one subset cell's capacities: predicted, with interval
    cell = subset[0]
    rows = []
    t = 0.0
    for c, q in zip(cell.capacity_cycles, cell.capacity, strict=True):
        for v, frac in ((3.5, 0.0), (3.3, 0.2), (3.2, 0.6), (3.0, 0.9), (2.0, 1.0)):
            rows.append({"cycle": int(c), "time_s": t, "current_A": -1.1, "voltage_V": v,
                         "discharge_capacity_Ah": q * frac})
            t += 600
    pd.DataFrame(rows).to_csv(tmp_path / "cell.csv", index=False)
    assert _cli("cycling", "predict", str(tmp_path / "cell.csv"), "--model", str(tmp_path / "model"),
                "--json", str(tmp_path / "p.json")) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["interval_low"] < record["predicted_cycle_life"] < record["interval_high"]
    assert "predicted cycle life" in capsys.readouterr().out
    # the Maccor file holds one cycle: exit 2 and say how many the model needs and how many there are
    code = _cli("cycling", "predict", str(cycler_files / "PredictionDiagnostics_000151_test.052"), "--model",
                str(tmp_path / "model"))
    err = capsys.readouterr().err
    assert code == 2
    assert "needs cycles 2, 10, 91-100; the cell has 1 cycles with a usable discharge (37)" in err


def test_cli_fit_uses_the_benchmark_feature_set_by_default(tmp_path, capsys):
    from battlab.cycling.models import CycleLifeModel

    assert _cli("cycling", "fit", "--subset", "--quiet", "--n-trials", "2", "--out", str(tmp_path / "m")) == 0
    model = CycleLifeModel.load(tmp_path / "m")
    assert model.card["cycle_life"]["feature_set"] == "relative" and model.card["model"]["name"] == "ridge"
    assert model.required_cycles() == list(range(2, 101))
    assert "RMSE (cycles): primary test" in capsys.readouterr().out
    assert _cli("cycling", "fit", "--subset", "--quiet", "--n-trials", "2", "--feature-set", "variance", "--out",
                str(tmp_path / "v")) == 0
    assert CycleLifeModel.load(tmp_path / "v").features == ["log10_var_dQ100_10"]


def test_cli_missing_model_exits_2(cycler_files, tmp_path, capsys):
    code = _cli("cycling", "predict", str(cycler_files / "FastCharge_000025_CH8.csv"), "--model", str(tmp_path))
    assert code == 2 and "no cycle-life model there" in capsys.readouterr().err


def test_eclab_ascii_export_latin1_decimal_comma(tmp_path):
    """EC-Lab's own text export: 'Nb header lines', tab separated, Latin-1, decimal commas."""
    header = ["EC-Lab ASCII FILE", "Nb header lines : 4", "", ]
    cols = "mode\ttime/s\tEwe/V\t<I>/mA\tcycle number\tQ charge/mA.h\tQ discharge/mA.h\tTemperature/°C"
    rows = ["1\t0,0\t3,400\t500,0\t1\t0,0\t0,0\t25,1", "1\t3600,0\t3,600\t500,0\t1\t500,0\t0,0\t25,3",
            "1\t3700,0\t3,300\t-500,0\t1\t500,0\t10,0\t25,4", "1\t5400,0\t3,100\t-500,0\t1\t500,0\t250,0\t25,9",
            "1\t7200,0\t2,900\t-500,0\t1\t500,0\t490,0\t26,2"]
    path = tmp_path / "eclab.mpt"
    path.write_bytes("\n".join(header + [cols] + rows).encode("latin-1") + b"\n")
    cell = read_cycler_file(path)
    assert cell.format == "biologic" and cell.metadata["header_lines"] == 4
    assert cell.data["voltage_V"].tolist()[:2] == [3.4, 3.6] and cell.data["current_A"].iloc[2] == -0.5
    assert cell.data["temperature_C"].iloc[-1] == 26.2
    s = cell.cycles.iloc[0]
    assert s["discharge_capacity_Ah"] == pytest.approx(0.49) and s["charge_capacity_Ah"] == pytest.approx(0.5)
    assert s["coulombic_efficiency"] == pytest.approx(0.98) and bool(s["usable"])


def test_read_text_of_an_upload():
    from battlab.cycling.read import read_text

    cell = read_text("cycle,time_s,current_A,voltage_V\n1,0,-1,3.3\n1,1800,-1,3.1\n1,3600,-1,2.9\n", "up.csv")
    assert cell.source == "up.csv" and cell.usable_cycles == [1]
    assert cell.cycles["discharge_capacity_Ah"].iloc[0] == pytest.approx(1.0)


def test_readme_reader_table_lists_every_registered_format():
    """The reader table of docs/cycling.md names each format of the registry with the package that reads it."""
    from battlab.cycling.formats import REGISTRY

    readme = (Path(__file__).resolve().parents[1] / "docs" / "cycling.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\s*\| `(\w+)` \|[^|]*\| ([^|]*) \|", readme, re.M)}
    for fmt in REGISTRY:
        assert fmt.name in rows, f"README reader table has no row for {fmt.name}"
        assert fmt.package.lower() in rows[fmt.name].lower(), (fmt.name, fmt.package, rows[fmt.name])
