"""Labels from cycling data (battlab.cycling.labels): cycle life, censoring, knee points, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shared_data import SHARED_DATASETS

from battlab.cycling import CellData, read_cycler_files
from battlab.cycling.labels import (
    CITATIONS,
    LABEL_COLUMNS,
    LifeLabels,
    capacity_table,
    knee_points,
    label_cells,
)
from battlab.errors import BattlabError

TBSI = SHARED_DATASETS / "battery_health" / "tbsi_sunwoda" / "Labels.xlsx"


def _fade(cell: str, n: int, q0: float = 1.1, slope: float = 1e-3, **extra) -> pd.DataFrame:
    cyc = np.arange(1, n + 1)
    return pd.DataFrame({"cell": cell, "cycle": cyc, "discharge_capacity_Ah": q0 - slope * cyc, **extra})


def _cell(name: str, capacities, nominal: float | None = None) -> CellData:
    """A CellData holding only a per-cycle table (what the labels read)."""
    n = len(capacities)
    cycles = pd.DataFrame({"cycle": np.arange(1, n + 1), "discharge_capacity_Ah": capacities,
                           "usable": np.asarray(capacities, dtype=float) > 0,
                           "reason": ["" if q > 0 else "no discharge (no point with negative current)"
                                      for q in capacities]})
    meta = {} if nominal is None else {"nominal_capacity_Ah": nominal}
    return CellData(name, f"{name}.csv", "csv", pd.DataFrame({"cycle": pd.array(np.arange(1, n + 1), dtype="Int64")}),
                    cycles, metadata=meta)


# --------------------------------------------------------------------------- known crossings


def test_known_crossing_glitch_and_censored_cell():
    glitch = _fade("glitch", 400, temperature_C=25.0)   # 1.1 - 0.001 c: below 0.88 from cycle 221 on
    glitch.loc[glitch["cycle"] == 100, "discharge_capacity_Ah"] = 0.70   # a one-cycle dip: not the end of life
    short = _fade("short", 150, temperature_C=45.0)      # reaches 0.95 Ah only: censored at its last cycle
    lab = label_cells(pd.concat([glitch, short]), nominal_Ah=1.1)
    assert list(lab.table.columns) == [*LABEL_COLUMNS, "temperature_C"]
    t = lab.table.set_index("cell")
    assert t.loc["glitch", "cycle_life"] == 221 and t.loc["glitch", "end_of_life_cycle"] == 221
    assert not t.loc["glitch", "censored"]
    assert t.loc["short", "censored"] and np.isnan(t.loc["short", "cycle_life"])
    assert t.loc["short", "last_cycle"] == 150 and t.loc["short", "n_cycles"] == 150
    assert t.loc["short", "temperature_C"] == 45.0
    assert t.loc["glitch", "threshold_Ah"] == 0.88 and t.loc["glitch", "reference"] == "nominal"
    assert lab.lower_bounds().to_dict() == {"glitch": 221.0, "short": 150.0}
    assert lab.summary() == "2 cells labelled: 1 reached 80 % of nominal (life 221-221), 1 censored, 0 set aside"
    # raw capacities (smooth=1): the dip ends the life at cycle 100
    assert label_cells(glitch, nominal_Ah=1.1, smooth=1, knee=False).table.loc[0, "cycle_life"] == 100


def test_lasting_drop_counts_and_fraction_and_initial_reference():
    q = np.r_[np.full(50, 1.0), np.full(20, 0.5)]  # a sudden, lasting drop at cycle 51
    t = pd.DataFrame({"cell": "drop", "cycle": np.arange(1, 71), "discharge_capacity_Ah": q})
    assert label_cells(t, nominal_Ah=1.0).table.loc[0, "cycle_life"] == 51
    # 90 % of initial: formation cycle 1 at 0.6 Ah is ignored, the reference is the plateau (1.0 Ah)
    t2 = _fade("f", 300, q0=1.0, slope=1e-3)
    t2.loc[0, "discharge_capacity_Ah"] = 0.6
    row = label_cells(t2, reference="initial", fraction=0.9, knee=False).table.iloc[0]
    assert row["reference"] == "initial" and row["reference_capacity_Ah"] == pytest.approx(0.997)
    assert row["threshold_Ah"] == pytest.approx(0.8973) and row["cycle_life"] == 103
    lab = label_cells(t2, reference="initial", knee=False)
    assert lab.summary().startswith("1 cell labelled: 1 reached 80 % of initial")


def test_partial_first_discharges_do_not_end_a_life_and_cells_never_above_are_set_aside():
    t = _fade("shipped", 300)
    t.loc[t["cycle"] <= 3, "discharge_capacity_Ah"] = [0.3, 0.5, 0.7]  # as received: partly charged
    assert label_cells(t, nominal_Ah=1.1, smooth=1, knee=False).table.loc[0, "cycle_life"] == 221
    lab = label_cells(pd.concat([t, _fade("small", 50, q0=0.25)]), nominal_Ah=1.1, knee=False)
    assert lab.table["cell"].tolist() == ["shipped"] and lab.table.loc[0, "cycle_life"] == 221
    assert lab.set_aside.values.tolist() == [
        ["small", "capacity never at or above the threshold 0.88 Ah (0.8 x nominal 1.1 Ah; largest smoothed "
                  "capacity 0.248 Ah at cycle 1): wrong nominal capacity?"]]
    assert lab.summary().endswith("0 censored, 1 set aside")


def test_nominal_from_metadata_per_cell_dict_and_cell_inputs():
    a = _cell("a", list(1.0 - 0.01 * np.arange(40)), nominal=1.0)  # 0.8 reached at cycle 21 (0.80 is not below)
    b = _cell("b", list(2.0 - 0.01 * np.arange(40)))
    with pytest.raises(BattlabError, match=r"^b: no nominal capacity in the file; give nominal_Ah="):
        label_cells([a, b])
    for cells in ([a, b], {"a": a, "b": b}):
        t = label_cells(cells, nominal_Ah={"b": 2.0}).table.set_index("cell")
        assert t.loc["a", "reference_capacity_Ah"] == 1.0 and t.loc["a", "cycle_life"] == 22
        assert t.loc["b", "reference_capacity_Ah"] == 2.0 and t.loc["b", "censored"]
        assert t.loc["b", "last_cycle"] == 40
    # one CellData; an explicit nominal_Ah wins over the file's
    assert label_cells(a, nominal_Ah=0.5).table.loc[0, "threshold_Ah"] == 0.4
    table = capacity_table([a, b])
    assert table["nominal_capacity_Ah"].tolist()[:1] == [1.0] and table["nominal_capacity_Ah"].isna().sum() == 40


def test_save_load_round_trip(tmp_path):
    lab = label_cells(pd.concat([_fade("x", 300, group="g1"), _fade("y", 100, group="g2")]), nominal_Ah=1.1)
    paths = lab.save(tmp_path / "labels")
    assert sorted(paths) == ["labels.csv", "labels.json", "set_aside.csv"]
    back = LifeLabels.load(tmp_path / "labels")
    pd.testing.assert_frame_equal(back.table, lab.table)
    assert back.settings == lab.settings and back.summary() == lab.summary()
    with pytest.raises(BattlabError, match="no labels.csv"):
        LifeLabels.load(tmp_path)


# --------------------------------------------------------------------------- knee points


def test_knee_on_two_slope_curve_and_none_on_a_line():
    x = np.arange(1, 1001)
    rng = np.random.default_rng(0)
    y = 1.1 - 5e-5 * x - 8e-4 * np.clip(x - 600, 0, None) + rng.normal(0, 5e-4, x.size)
    knee, onset = knee_points(x, y)
    assert abs(knee - 600) < 30
    assert onset < knee and onset > 300
    assert all(np.isnan(knee_points(x, 1.1 - 1e-4 * x + rng.normal(0, 5e-4, x.size))))
    assert all(np.isnan(knee_points(x[:10], y[:10])))  # too few cycles
    assert "10.1016/j.egyai.2020.100006" in CITATIONS["knee_points"]


def test_label_cells_reports_knee_before_end_of_life():
    x = np.arange(1, 1001)
    q = 1.1 - 5e-5 * x - 8e-4 * np.clip(x - 600, 0, None)
    lab = label_cells(pd.DataFrame({"cell": "k", "cycle": x, "discharge_capacity_Ah": q}), nominal_Ah=1.1)
    row = lab.table.iloc[0]
    assert abs(row["knee_cycle"] - 600) < 30 and row["knee_onset_cycle"] < row["knee_cycle"] < row["cycle_life"]


# --------------------------------------------------------------------------- bad input


def test_missing_column_is_one_line():
    with pytest.raises(BattlabError, match=r"^capacity table: no column 'discharge_capacity_Ah' \(it has: cell, "
                                           r"cycle, Q\)$"):
        label_cells(pd.DataFrame({"cell": ["a"], "cycle": [1], "Q": [1.0]}), nominal_Ah=1.0)


@pytest.mark.parametrize("fraction", [0, -0.2, 1.5, "0.8", True])
def test_bad_fraction(fraction):
    with pytest.raises(BattlabError, match=r"^fraction must be a number in \(0, 1\]"):
        label_cells(_fade("a", 10), nominal_Ah=1.0, fraction=fraction)


@pytest.mark.parametrize("kwargs, message", [
    ({"reference": "first"}, "reference must be 'nominal' or 'initial'"),
    ({"smooth": 0}, "smooth must be a whole number"),
    ({"nominal_Ah": -1.0}, "nominal_Ah must be a positive number"),
    ({"nominal_Ah": {"a": "x"}}, "a: nominal_Ah 'x' is not a positive number"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(BattlabError, match="^" + message):
        label_cells(_fade("a", 10), **{"nominal_Ah": 1.0, **kwargs})


def test_bad_capacity_rows_kept_aside_with_cell_and_cycle():
    t = _fade("a", 300).astype({"discharge_capacity_Ah": object})
    t.loc[t["cycle"] == 5, "discharge_capacity_Ah"] = np.nan
    t.loc[t["cycle"] == 6, "discharge_capacity_Ah"] = -0.3
    t.loc[t["cycle"] == 7, "discharge_capacity_Ah"] = "n/a"
    t = pd.concat([t, t[t["cycle"] == 8], pd.DataFrame({"cell": ["a"], "cycle": ["x"], "discharge_capacity_Ah": [1]})])
    lab = label_cells(t, nominal_Ah=1.1)
    assert lab.table.loc[0, "n_cycles"] == 297 and lab.table.loc[0, "cycle_life"] == 221
    assert lab.set_aside.values.tolist() == [
        ["a", "cycle 5: discharge capacity nan is not a number"],
        ["a", "cycle 6: discharge capacity -0.3 Ah is not positive"],
        ["a", "cycle 7: discharge capacity 'n/a' is not a number"],
        ["a", "cycle 8: repeated (cell, cycle) row, the first one is kept"],
        ["a", "cycle 'x' is not a whole number"],
    ]
    assert lab.unlabelled == []
    assert lab.summary().endswith("0 censored, 0 set aside (and 5 capacity rows of labelled cells)")


def test_empty_cell_is_set_aside_not_dropped():
    empty = _cell("empty", [0.0, 0.0])
    good = _cell("good", [1.0] * 5, nominal=1.0)
    lab = label_cells([empty, good])
    assert lab.table["cell"].tolist() == ["good"]
    assert lab.set_aside["cell"].tolist() == ["empty"]
    assert lab.set_aside["reason"].iloc[0].startswith("no usable cycle (2 cycles read: no discharge")
    assert lab.summary() == "1 cell labelled: 0 reached 80 % of nominal, 1 censored, 1 set aside"
    # a table whose rows are all bad: the cell is set aside, nothing is labelled
    lab = label_cells(pd.DataFrame({"cell": ["z", "z"], "cycle": [1, 2], "discharge_capacity_Ah": [None, -1]}),
                      nominal_Ah=1.0)
    assert lab.table.empty and list(lab.table.columns) == list(LABEL_COLUMNS)
    assert lab.unlabelled == ["z"] and lab.summary().endswith("1 set aside")
    with pytest.raises(BattlabError, match="two cells named 'good'"):
        label_cells([good, good])


def test_rows_without_a_cell_name_and_unknown_nominal_names():
    t = pd.concat([_fade("a", 30), pd.DataFrame({"cell": [None, " "], "cycle": [1, 2],
                                                 "discharge_capacity_Ah": [1.0, 1.0]})])
    lab = label_cells(t, nominal_Ah=1.1, knee=False)
    assert lab.table["cell"].tolist() == ["a"]
    assert lab.set_aside.values.tolist() == [["", "row 31: no cell name"], ["", "row 32: no cell name"]]
    numbered = _fade("a", 30).assign(cell=7)  # cell names are text; a dict keyed by number still matches
    assert label_cells(numbered, nominal_Ah={7: 1.0}, knee=False).table["reference_capacity_Ah"].tolist() == [1.0]
    with pytest.raises(BattlabError, match=r"^nominal_Ah names 1 cell not found: b \(cells: a\)$"):
        label_cells(_fade("a", 30), nominal_Ah={"a": 1.1, "b": 1.0})


def test_batch_read_to_disk_must_be_loaded_first(tmp_path):
    from battlab.cycling import CellBatch

    batch = CellBatch(summary=pd.DataFrame({"cell": ["c1"]}))  # what read_cycler_files(out_dir=...) returns
    with pytest.raises(BattlabError, match=r"CellBatch.load\(out_dir\)"):
        capacity_table(batch)


# --------------------------------------------------------------------------- real files


def test_every_real_cycler_file_gets_a_label_or_a_reason(cycler_files):
    batch = read_cycler_files(cycler_files, progress=False)
    assert len(batch.cells) >= 15
    lab = label_cells(batch, reference="initial")
    labelled, aside = set(lab.table["cell"]), set(lab.set_aside["cell"])
    assert set(batch.cells) <= labelled | aside
    assert set(batch.failures["file"].astype(str)) <= aside
    assert lab.table["censored"].sum() >= len(lab.table) - 2  # short files: nearly all censored
    assert (lab.table["last_cycle"] >= 0).all() and (lab.table["n_cycles"] >= 1).all()
    assert lab.set_aside["reason"].str.len().gt(0).all()
    # with a nominal capacity for all (1 Ah: too large for most of these small cells), every cell still has a row
    lab1 = label_cells(batch, nominal_Ah=1.0, knee=False)
    assert set(batch.cells) <= set(lab1.table["cell"]) | set(lab1.set_aside["cell"])
    assert lab1.set_aside["reason"].str.contains("never at or above the threshold 0.8 Ah").sum() >= 5


@pytest.mark.skipif(not TBSI.is_file(), reason=f"{TBSI} not found (shared/datasets beside the repository)")
def test_tbsi_sunwoda_lives_match_the_published_range():
    sheets = pd.read_excel(TBSI, sheet_name=None)
    assert len(sheets) == 32
    table = pd.concat([pd.DataFrame({"cell": name, "cycle": np.arange(1, len(s) + 1),
                                     "discharge_capacity_Ah": s.iloc[:, 0].to_numpy(),
                                     "temperature_C": int(name.split("T")[-1])}) for name, s in sheets.items()])
    lab = label_cells(table, nominal_Ah=1.1)
    life = lab.table["cycle_life"]
    assert not lab.table["censored"].any() and lab.set_aside.empty
    assert life.min() == 481 and life.max() == 1025 and life.mean() == pytest.approx(776, abs=2)
    assert lab.summary() == "32 cells labelled: 32 reached 80 % of nominal (life 481-1025), 0 censored, 0 set aside"
    t = lab.table
    # 25 and 35 degC cells bend (a knee 400-650 cycles, its onset before it); most hotter cells fade nearly
    # linearly to 80 % (slope ratio under KNEE_MIN_SLOPE_RATIO): no knee
    cool = t[t["temperature_C"] <= 35]
    assert cool["knee_cycle"].between(400, 650).all()
    assert (cool["knee_onset_cycle"] < cool["knee_cycle"]).all()
    assert (t["knee_cycle"].dropna() < life[t["knee_cycle"].notna()]).all()


def test_novonix_header_capacity_is_the_nominal_capacity(cycler_files):
    from battlab.cycling import read_cycler_file
    from battlab.cycling.formats.beep import _novonix_nominal

    path = cycler_files / "test_Nova_Form-CH01-01_short.csv"
    assert "Capacity (Ah): 0.24" in path.read_text(encoding="utf-8", errors="replace")[:2000]
    cell = read_cycler_file(path)
    assert cell.metadata["nominal_capacity_Ah"] == 0.24
    lab = label_cells(cell)  # no nominal_Ah needed; the file's one cycle has no usable discharge
    assert lab.table.empty and lab.unlabelled == [cell.name]
    # battlab's own Novonix parser keeps the header line as "Capacity (Ah)"; blank or zero values state nothing
    for meta, expected in (({"Capacity (Ah)": "1.5"}, 1.5), ({"Capacity (Ah)": ""}, None),
                           ({"nominal_capacity": "0"}, None)):
        _novonix_nominal(meta)
        assert meta.get("nominal_capacity_Ah") == expected


def test_capacity_table_set_aside_travels_and_tables_concatenate():
    a = capacity_table(pd.DataFrame({"cell": "a", "cycle": [1, 2], "discharge_capacity_Ah": [1.0, -1.0]}))
    b = capacity_table(_fade("b", 40))
    both = pd.concat([a, b])  # plain records in attrs: pandas can compare them
    assert len(both) == 41
    lab = label_cells(a, nominal_Ah=1.0)  # the rows set aside by capacity_table are still reported
    assert lab.set_aside.values.tolist() == [["a", "cycle 2: discharge capacity -1.0 Ah is not positive"]]
