"""Curation: every bad-input case, and the accounting identity on real and messy tables."""

import json

import numpy as np
import pandas as pd
import pytest

from battlab.curate import curate, curate_dataset, example_messy_rows
from battlab.errors import DataFileError

TARGET = "capacity (mAh/g)"

MESSY_CSV = """formula;capacity (mAh/g);porosity;note
LiCoO2;140;0,30;ok
LiCoO2;140;0,30;ok
LiFePO4;0,165 Ah/g;0.35;unit in cell, decimal comma
LiFePO4;160;0.35;replicate
LiFePO4;170;0.35;replicate
Xx2O;100;0.2;unknown element
lico2;120;0.2;lower case
;130;0.2;empty formula
LiMn2O4;-5;0.3;negative capacity
LiNiO2;200;45;porosity in percent, no unit
LiNiO2;3.7 V;0.3;wrong unit
LiCoPo4;150;0.3;case typo Po
NaN;120;0.4;sodium nitride
LiV3O8;;0.3;missing target
LiV3O8;inf;0.3;infinite
LiV3O8;abc;0.3;not a number
LiMnPO4;>300;0.3;censored
LiTiS2;1,500;0.3;ambiguous separator
LiNi0.8Mn0.1Co0.1O2;180;0.3;extra;fields
LiNi0.5Mn1.5O4;140;zero point three;bad non-target cell
"""


@pytest.fixture
def messy(tmp_path):
    path = tmp_path / "messy.csv"
    path.write_text(MESSY_CSV, encoding="utf-8")
    return curate(path, target=TARGET)


def quarantined(result):
    return dict(zip(result.quarantine["row"], result.quarantine["category"], strict=False))


def test_messy_table_accounting(messy):
    r = messy.report
    assert r["n_input"] == 20
    assert r["n_input"] == r["n_kept"] + r["n_merged"] + r["n_quarantined"]
    rows_out = set(messy.curated["row"]) | set(messy.merged["row"]) | set(messy.quarantine["row"])
    assert rows_out == set(range(1, 21))  # each row in exactly one place
    assert len(rows_out) == r["n_kept"] + r["n_merged"] + r["n_quarantined"]


def test_messy_table_quarantine_reasons(messy):
    q = quarantined(messy)
    assert q == {
        6: "formula", 7: "formula", 8: "formula",
        9: "out_of_bounds", 10: "out_of_bounds",
        11: "wrong_unit",
        14: "missing_target", 15: "non_finite", 16: "bad_number", 18: "bad_number",
        19: "ragged_row",
    }


def test_quarantine_reasons_name_file_row_and_column(messy):
    reason = messy.quarantine.set_index("row").loc[11, "reason"]
    assert reason.startswith("messy.csv, row 11, column 'capacity (mAh/g)': wrong unit")
    assert "'volt' cannot be converted" in reason
    pct = messy.quarantine.set_index("row").loc[10, "reason"]
    assert "porosity" in pct and "a percentage?" in pct
    # the original cells travel with the quarantined row
    assert messy.quarantine.set_index("row").loc[6, "input:formula"] == "Xx2O"


def test_duplicates_and_replicates(messy):
    merged = messy.merged.set_index("row")
    assert merged.loc[2].tolist() == [1, "exact duplicate"]
    assert merged.loc[4].tolist() == [3, "replicate"]
    assert merged.loc[5].tolist() == [3, "replicate"]
    lfp = messy.curated.set_index("row").loc[3]
    assert lfp[TARGET] == pytest.approx((165 + 160 + 170) / 3)  # 0,165 Ah/g converted to mAh/g
    assert lfp[f"{TARGET}_n"] == 3
    assert lfp[f"{TARGET}_std"] == pytest.approx(np.std([165, 160, 170], ddof=1))


def test_flags_do_not_remove_rows(messy):
    kept = messy.curated.set_index("row")
    assert "did you mean 'LiCoPO4'" in kept.loc[12, "qc_flags"]
    assert kept.loc[13, "formula"] == "NaN"  # sodium nitride survives
    assert kept.loc[20, "qc_flags"] == "bad_value:porosity"
    assert np.isnan(kept.loc[20, "porosity"])
    issue = messy.issues[(messy.issues["row"] == 20)].iloc[0]
    assert issue["column"] == "porosity" and issue["action"] == "set to NaN"


def test_censored_value_is_kept_with_flag(messy):
    kept = messy.curated.set_index("row")
    assert kept.loc[17, TARGET] == 300.0
    assert kept.loc[17, f"{TARGET}_censored"] == ">"
    assert (kept.drop(index=17)[f"{TARGET}_censored"] == "").all()
    assert messy.report["n_censored"] == 1


def test_decimal_comma_in_non_target_column(messy):
    assert messy.curated.set_index("row").loc[1, "porosity"] == pytest.approx(0.30)


def test_replicate_disagreement_is_flagged():
    df = pd.DataFrame({"formula": ["LiCoO2"] * 3 + ["LiFePO4"] * 2,
                       "capacity": [140, 141, 139, 100, 160]})
    r = curate(df, target="capacity", replicate_tolerance=0.1)
    flags = r.curated.set_index("formula")["qc_flags"]
    assert flags["LiFePO4"] == "replicate_disagreement"
    assert flags["LiCoO2"] == ""
    assert r.report["n_replicate_disagreements"] == 1


def test_group_by_keeps_different_conditions_apart():
    df = pd.DataFrame({"formula": ["LiCoO2", "LiCoO2"], "T (K)": [298, 330], "capacity": [140, 120]})
    assert curate(df, target="capacity").report["n_kept"] == 1
    assert curate(df, target="capacity", group_by=["T (K)"]).report["n_kept"] == 2


def test_log_target_aggregates_in_log_space():
    df = pd.DataFrame({"formula": ["A", "A"] + [f"Li{i}O" for i in range(1, 9)],
                       "sigma (S/cm)": [1e-3, 1e-5] + [10.0 ** -k for k in range(1, 9)]})
    df["formula"] = ["Li3PS4", "Li3PS4"] + [f"Li{i}O" for i in range(1, 9)]
    r = curate(df, target="sigma (S/cm)")
    assert r.report["log_target"] is True
    row = r.curated.set_index("formula").loc["Li3PS4"]
    assert row["sigma (S/cm)"] == pytest.approx(1e-4)  # geometric mean
    assert "sigma (S/cm)_std_log10" in r.curated.columns


def test_outliers_are_flagged_not_dropped():
    rng = np.random.default_rng(0)
    values = list(rng.normal(150, 5, 40)) + [900]
    df = pd.DataFrame({"formula": [f"Li{i}CoO2" for i in range(1, 42)], "capacity": values})
    r = curate(df, target="capacity")
    assert r.report["n_kept"] == 41
    assert r.curated.set_index("capacity").loc[900, "qc_flags"] == "outlier"
    assert r.report["qc_flags"] == {"outlier": 1}


def test_units_argument_and_cell_conversion():
    df = pd.DataFrame({"formula": ["LiCoO2", "LiFePO4"], "sigma": ["1.2 mS/cm", "1e-3"]})
    r = curate(df, target="sigma", units={"sigma": "S/cm"})
    assert r.curated["sigma"].tolist() == pytest.approx([1.2e-3, 1e-3])
    assert r.report["units"]["sigma"] == "siemens / centimeter"


def test_cells_with_units_set_the_column_unit_when_none_is_given():
    df = pd.DataFrame({"formula": ["LiCoO2", "LiFePO4", "LiMn2O4"],
                       "capacity": ["140 mAh/g", "0.165 Ah/g", "120"]})
    r = curate(df, target="capacity")
    assert r.report["units"]["capacity"] == "milliampere_hour / gram"
    assert r.curated["capacity"].tolist() == pytest.approx([140, 165, 120])


def test_percent_column_converted_before_bounds():
    df = pd.DataFrame({"formula": ["LiCoO2", "LiFePO4"], "Porosity [%]": ["35", "135"], "y": [1.0, 2.0]})
    r = curate(df, target="y")
    assert quarantined(r) == {2: "out_of_bounds"}
    assert r.curated["Porosity [%]"].tolist() == [35.0]


def test_explicit_bounds():
    df = pd.DataFrame({"formula": ["LiCoO2", "LiFePO4"], "voltage": [3.9, 9.0]})
    r = curate(df, target="voltage", bounds={"voltage": (0, 6)})
    assert quarantined(r) == {2: "out_of_bounds"}


def test_table_without_formulas_and_without_target():
    df = pd.DataFrame({"gap (um)": [100, 100, 120], "loading": ["10", "10", "-1"]})
    r = curate(df)
    assert r.report["formula_column"] is None
    assert r.report["n_merged"] == 1 and r.report["n_quarantined"] == 1


def test_nan_cells_in_dataframe_input():
    df = pd.DataFrame({"formula": ["LiCoO2", None, "LiFePO4"], "capacity": [140.0, 150.0, np.nan]})
    r = curate(df, target="capacity")
    assert quarantined(r) == {2: "formula", 3: "missing_target"}


def test_empty_table_is_an_error():
    with pytest.raises(DataFileError, match="no data rows"):
        curate(pd.DataFrame({"formula": [], "capacity": []}), target="capacity")


def test_header_only_file_is_an_error(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("formula,capacity\n")
    with pytest.raises(DataFileError, match="h.csv: the table has a header but no data rows"):
        curate(p, target="capacity")


def test_missing_target_column_is_an_error():
    with pytest.raises(DataFileError, match="missing column 'capacity'"):
        curate(pd.DataFrame({"formula": ["LiCoO2"], "capcity": [1]}), target="capacity")


def test_same_input_same_output(tmp_path):
    (tmp_path / "m.csv").write_text(MESSY_CSV)
    a, b = curate(tmp_path / "m.csv", target=TARGET), curate(tmp_path / "m.csv", target=TARGET)
    pd.testing.assert_frame_equal(a.curated, b.curated)
    assert a.report == b.report


def test_save_writes_all_outputs(messy, tmp_path):
    paths = messy.save(tmp_path / "out")
    report = json.loads(paths["report.json"].read_text())
    assert {k: report[k] for k in ("n_input", "n_kept", "n_merged", "n_quarantined")} == \
        {"n_input": 20, "n_kept": 6, "n_merged": 3, "n_quarantined": 11}
    q = pd.read_csv(paths["quarantine.csv"])
    assert {"row", "reason"} <= set(q.columns) and len(q) == 11
    assert len(pd.read_parquet(paths["curated.parquet"])) == 6


def test_embedded_default_dataset_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))  # empty cache: the default needs none
    result, card = curate_dataset("exp_formation_enthalpy")
    r = result.report
    assert r["n_input"] == 2135
    assert r["n_input"] == r["n_kept"] + r["n_merged"] + r["n_quarantined"]
    assert r["target"] == "formation_enthalpy_per_atom"
    y = result.curated["formation_enthalpy_per_atom"]
    assert -5 < y.min() < y.max() < 2  # eV/atom, not eV per formula unit


def test_demonstration_rows_show_curation_without_changing_the_data(monkeypatch, tmp_path):
    """Notebook 01's default: 8 messy copies of real rows, each merged or quarantined; the 2135 compounds keep
    their values (to 1e-9 eV/atom), so later steps learn from the same table."""
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    clean, _ = curate_dataset("exp_formation_enthalpy")
    demo, _ = curate_dataset("exp_formation_enthalpy", demo_rows=True)
    r = demo.report
    assert demo.summary().startswith("exp_formation_enthalpy + 8 demonstration rows: 2143 rows -> 2135 kept, "
                                     "5 merged, 3 quarantined")
    assert [d["row"] for d in r["demo_rows"]] == list(range(2136, 2144))
    assert r["quarantine_reasons"] == {"formula": 2, "missing_target": 1}
    trace = demo.trace().set_index("problem")
    assert trace.loc["value with its unit in the cell", "outcome"].startswith("merged into row")
    assert trace.loc["value with its unit in the cell", "formula"] == "Li2O"
    assert trace.loc["decimal comma, subscript digits", "formula"] == "Li2SO4"
    assert trace.loc["exact duplicate of a row", "detail"] == "exact duplicate"
    assert "cannot parse formula 'Fe2O3 (hematite)'" in trace.loc["formula with a note in the cell", "detail"]
    assert "missing target" in trace.loc["fraction formula (NMC111), value not measured", "detail"]
    assert "empty formula" in trace.loc["blank row", "detail"]
    mgo = demo.curated.set_index("formula").loc["MgO"]
    assert "replicate_disagreement" in mgo["qc_flags"] and mgo["formation_enthalpy_per_atom_n"] == 3
    target = "formation_enthalpy_per_atom"
    assert list(demo.curated["formula"]) == list(clean.curated["formula"])
    assert np.allclose(demo.curated[target], clean.curated[target], rtol=0, atol=1e-9)
    assert demo.key_figures()["target_mean"] == clean.key_figures()["target_mean"]
    assert len(demo.quarantine) == 3 and set(demo.quarantine["row"]) == {2141, 2142, 2143}


def test_example_messy_rows_on_a_small_table_and_a_table_without_numbers():
    t = pd.DataFrame({"formula": ["LiCoO2", "LiFePO4"], TARGET: [140.0, 160.0]})
    demo = example_messy_rows(t, "formula", TARGET, "mAh/g")
    assert demo.loc[0, TARGET] == "0.14 Ah/g" and demo.loc[1, "formula"] == "LiFePO₄"
    result = curate(pd.concat([t, demo.drop(columns="problem")], ignore_index=True), target=TARGET)
    assert result.report["n_kept"] == 2 and result.curated[TARGET].round(9).tolist() == [140.0, 160.0]
    assert result.trace([3, 4])["outcome"].tolist() == ["merged into row 1", "merged into row 2"]
    with pytest.raises(DataFileError, match="no row of the table has both a formula"):
        example_messy_rows(pd.DataFrame({"formula": ["LiCoO2"], TARGET: ["n/a"]}), "formula", TARGET)


def test_demonstration_rows_auto_leave_a_messy_dataset_as_it_is_and_refuse_a_bad_value(data_cache):
    auto, _ = curate_dataset("obelix", demo_rows="auto")  # OBELiX merges and quarantines rows by itself
    assert auto.report["n_input"] == 599 and "demo_rows" not in auto.report
    forced, card = curate_dataset("obelix", demo_rows=True)
    assert forced.report["n_input"] == 607 and forced.source == "obelix + 8 demonstration rows"
    # the conductivities are averaged in log10: the disagreeing replicates sit 10**0.75 either side
    key = ["formula", *auto.group_by]
    common = auto.curated.merge(forced.curated, on=key, suffixes=("", "_demo"))
    assert len(common) == len(auto.curated)
    assert np.allclose(common[card.target], common[card.target + "_demo"], rtol=1e-9)
    with pytest.raises(DataFileError, match="demo_rows must be True, False or 'auto', got 'yes'"):
        curate_dataset("exp_formation_enthalpy", demo_rows="yes")


def test_obelix_accounting_and_censoring(data_cache):
    result, card = curate_dataset("obelix")
    r = result.report
    assert r["n_input"] == 599
    assert r["n_input"] == r["n_kept"] + r["n_merged"] + r["n_quarantined"]
    assert r["log_target"] is True
    # 36 '<1E-10' and one '<1E-8': kept as values with a flag, never turned into plain numbers
    censored = result.curated[result.curated[f"{card.target}_censored"] == "<"]
    assert r["n_censored"] == len(censored) >= 30
    assert set(censored[card.target]) <= {1e-10, 1e-8}
    # replicates are never merged across the official split or across polymorphs
    merged = result.merged.merge(result.curated[["row", "split", "Space group #"]],
                                 left_on="merged_into", right_on="row", suffixes=("", "_kept"))
    raw = pd.read_csv(data_cache / "obelix" / "all.csv", dtype=str, keep_default_na=False)
    assert r["n_merged"] > 0
    assert set(result.curated["split"]) == {"train", "test"}
    for _, m in merged.iterrows():
        assert raw.iloc[m["row"] - 1]["Space group #"] == raw.iloc[m["merged_into"] - 1]["Space group #"]
