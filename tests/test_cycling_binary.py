"""Binary cycler files read through maintained readers: BioLogic .mpr (galvani), Neware .nda/.ndax (NewareNDA),
Arbin .res (mdbtools), Arbin Excel exports (openpyxl), Indigo HDF5 (h5py/pandas).

Each real file is read with a relative path (as users type it) and compared with its raw content read
independently (the maintained package or the container format's own reader called directly in the test), and
with the figures the source project's own tests assert. Bad input: one-line DataFileError naming the file.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from battlab.cycling.formats import describe_binary
from battlab.cycling.read import detect_format, read_cycler_file
from battlab.errors import DataFileError

MPR = "biologic_navani_jdb11-1_c3_gcpl_5cycles_2V-3p8V_C-24_data_C09.mpr"
NDA = "neware_newarenda_TestFile.nda"
NDAX = "neware_newarenda_test_2.ndax"
RES = "arbin_cellpy_20160805_test001_45_cc_01.res"
XLSX = "arbin_navani_bs542_004_gr_li_Channel_11.xlsx"
H5 = "indigo_beep_indigo_test_sample.h5"
BINARY = (MPR, NDA, NDAX, RES, XLSX, H5)


def _one_line_naming(exc: pytest.ExceptionInfo, name: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and name in msg, msg
    return msg


def _sign_changes(current: np.ndarray, eps: float = 1e-9) -> int:
    """Number of charge<->discharge turns, counted on the raw current (rests ignored)."""
    s = np.sign(np.where(np.abs(current) > eps, current, 0.0))
    s = s[s != 0]
    return int((s[1:] != s[:-1]).sum())


# --------------------------------------------------------------------------- BioLogic .mpr (galvani)


@pytest.fixture(scope="module")
def mpr_raw(cycler_files):
    from galvani import BioLogic

    mpr = BioLogic.MPRfile(str(cycler_files / MPR))
    raw = pd.DataFrame(mpr.data)
    raw["mode"] = mpr.get_flag("mode")
    return raw


def test_mpr_values_match_galvani(cycler_files, mpr_raw, monkeypatch):
    monkeypatch.chdir(cycler_files)
    cell = read_cycler_file(MPR)
    assert cell.format == "biologic_mpr"
    assert len(cell.data) == len(mpr_raw) == 46102  # navani's test_mpr_reader asserts 46102 rows
    np.testing.assert_allclose(cell.data["voltage_V"].iloc[[0, -1]], mpr_raw["Ewe/V"].iloc[[0, -1]], rtol=1e-6)
    np.testing.assert_allclose(cell.data["time_s"], mpr_raw["time/s"])
    # no I/mA column: the current comes from dq/mA.h; in galvanostatic mode it is the set current (mA) / 1000
    cc = (mpr_raw["mode"] == 1).to_numpy()
    set_current = mpr_raw["control/V/mA"].to_numpy(float)[cc] / 1000.0
    current = cell.data["current_A"].to_numpy()[cc]
    assert np.median(np.abs(current - set_current)) < 1e-3 * np.abs(set_current).max()
    assert 0.05e-3 < np.abs(current).max() < 0.2e-3  # ~0.089 mA, in A
    assert "dq/mA.h" in cell.metadata["current"]
    # cycles: EC-Lab's half cycles, two per cycle
    assert cell.metadata["cycle"].startswith("half cycle // 2")
    assert len(cell.cycles) == mpr_raw["half cycle"].floordiv(2).nunique()
    # per-cycle capacity: the largest |Q charge/discharge| of the negative points, mA.h -> Ah
    q = mpr_raw["Q charge/discharge/mA.h"]
    dis = (-q.where(q < 0, 0.0)).groupby(mpr_raw["half cycle"] // 2).max() / 1000.0
    np.testing.assert_allclose(cell.cycles["discharge_capacity_Ah"], dis.to_numpy(), rtol=1e-9)
    # navani's test asserts the mean discharge (0.7778788 mA.h) and charge (0.9535533 mA.h) capacity per cycle
    np.testing.assert_allclose(cell.cycles["discharge_capacity_Ah"].mean() * 1000, 0.7778788, atol=1e-5)
    charged = cell.cycles["charge_capacity_Ah"][cell.cycles["charge_capacity_Ah"] > 0]
    np.testing.assert_allclose(charged.mean() * 1000, 0.9535533, atol=1e-5)


def test_mpr_upper_case_extension_and_odd_name(cycler_files, tmp_path, monkeypatch):
    shutil.copy(cycler_files / MPR, tmp_path / "CELL.MPR")
    shutil.copy(cycler_files / MPR, tmp_path / "cell [C09] 2.dat")  # the format is found from the content
    monkeypatch.chdir(tmp_path)
    a, b = read_cycler_file("CELL.MPR"), read_cycler_file("cell [C09] 2.dat")
    assert a.format == b.format == "biologic_mpr"
    assert len(a.data) == len(b.data) == 46102 and a.name == "CELL" and b.name == "cell [C09] 2"


def test_mpr_current_from_charge_without_time_step():
    from battlab.cycling.formats.biologic_mpr import _current_from_charge

    current, filled = _current_from_charge(np.array([0.0, 10.0, 10.0, 20.0]), np.array([0.0, 1.0, 0.5, -1.0]))
    np.testing.assert_allclose(current, [0.0, 0.36, 0.36, -0.36])  # 1 mA.h in 10 s = 360 mA
    assert filled == 2


def test_mpr_with_current_and_cycle_number_columns(cycler_files, tmp_path, monkeypatch):
    """Another EC-Lab layout (galvani's names for it): I/mA, cycle number, Q charge/Q discharge, energies and
    temperature: mapped by name, mA -> A, mA.h -> Ah, W.h -> Wh."""
    from galvani import BioLogic

    fields = [("time/s", "<f8"), ("Ewe/V", "<f4"), ("I/mA", "<f4"), ("cycle number", "<f8"), ("Ns", "<u2"),
              ("Q charge/mA.h", "<f8"), ("Q discharge/mA.h", "<f8"), ("Energy charge/W.h", "<f8"),
              ("Energy discharge/W.h", "<f8"), ("Temperature/°C", "<f4")]
    data = np.zeros(8, dtype=fields)  # EC-Lab's Q charge / Q discharge restart at each half cycle
    data["time/s"] = np.arange(8) * 3600.0
    data["Ewe/V"] = [3.0, 4.0, 3.9, 3.1, 3.0, 4.0, 3.9, 3.2]
    data["I/mA"] = [500.0, 500.0, -500.0, -500.0, 400.0, 400.0, -350.0, -350.0]
    data["cycle number"] = [1, 1, 1, 1, 2, 2, 2, 2]
    data["Q charge/mA.h"] = [0, 500, 0, 0, 0, 400, 0, 0]
    data["Q discharge/mA.h"] = [0, 0, 0, 450, 0, 0, 0, 350]
    data["Energy discharge/W.h"] = [0, 0, 0, 1.8, 0, 0, 0, 1.4]
    data["Temperature/°C"] = 25.0

    class FakeMPR:
        def __init__(self, path):
            self.data = data

    monkeypatch.setattr(BioLogic, "MPRfile", FakeMPR)
    shutil.copy(cycler_files / MPR, tmp_path / "variant.mpr")  # real magic bytes, the data above
    monkeypatch.chdir(tmp_path)
    cell = read_cycler_file("variant.mpr")
    np.testing.assert_allclose(cell.data["current_A"], data["I/mA"] / 1000.0)
    assert cell.data["cycle"].tolist() == [1, 1, 1, 1, 2, 2, 2, 2] and cell.metadata["cycle"] == "cycle number"
    np.testing.assert_allclose(cell.cycles["charge_capacity_Ah"], [0.5, 0.4])
    np.testing.assert_allclose(cell.cycles["discharge_capacity_Ah"], [0.45, 0.35])
    np.testing.assert_allclose(cell.cycles["discharge_energy_Wh"], [1.8, 1.4])
    assert cell.data["temperature_C"].eq(25.0).all() and "temperature_C" in cell.present


def test_mpr_of_an_impedance_measurement_is_refused(cycler_files, tmp_path, monkeypatch):
    from galvani import BioLogic

    data = np.zeros(3, dtype=[("freq/Hz", "<f4"), ("Re(Z)/Ohm", "<f4"), ("-Im(Z)/Ohm", "<f4"), ("time/s", "<f8"),
                              ("Ewe/V", "<f4"), ("I/mA", "<f4")])

    class FakeMPR:
        def __init__(self, path):
            self.data = data

    monkeypatch.setattr(BioLogic, "MPRfile", FakeMPR)
    shutil.copy(cycler_files / MPR, tmp_path / "peis.mpr")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileError, match="impedance") as exc:
        read_cycler_file("peis.mpr")
    _one_line_naming(exc, "peis.mpr")


# --------------------------------------------------------------------------- Neware .nda / .ndax (NewareNDA)


@pytest.mark.parametrize("name, points, cycles", [(NDA, 6670, 3), (NDAX, 108563, 54)])
def test_neware_values_match_newarenda(cycler_files, monkeypatch, name, points, cycles):
    """``points``/``cycles``: the row count and last Cycle of NewareNDA's own reference tables for these files
    (tests/reference/TestFile.ftr, test_2.ftr)."""
    import NewareNDA

    monkeypatch.chdir(cycler_files)
    raw = NewareNDA.read(name)
    cell = read_cycler_file(name)
    assert cell.format == "neware"
    assert len(cell.data) == len(raw) == points
    assert len(cell.cycles) == raw["Cycle"].nunique() == cycles
    np.testing.assert_allclose(cell.data["voltage_V"].iloc[[0, -1]], raw["Voltage"].iloc[[0, -1]], rtol=1e-6)
    np.testing.assert_allclose(cell.data["current_A"], raw["Current(mA)"].to_numpy(float) / 1000.0, rtol=1e-6)
    assert np.abs(cell.data["current_A"]).max() == pytest.approx(np.abs(raw["Current(mA)"]).max() / 1000.0)
    dis = cell.data["current_A"] < 0
    assert raw["Status"].astype(str)[dis.to_numpy()].str.contains("DChg").all()
    # capacity per cycle: Neware restarts its counters at each step, the cycle's steps add up (mAh -> Ah)
    step_max = raw.groupby(["Cycle", "Step"])[["Charge_Capacity(mAh)", "Discharge_Capacity(mAh)"]].max()
    per_cycle = step_max.groupby(level="Cycle").sum() / 1000.0
    np.testing.assert_allclose(cell.cycles["charge_capacity_Ah"], per_cycle["Charge_Capacity(mAh)"], rtol=1e-5)
    np.testing.assert_allclose(cell.cycles["discharge_capacity_Ah"], per_cycle["Discharge_Capacity(mAh)"], rtol=1e-5)
    # time runs through the test, never backwards
    assert (np.diff(cell.data["time_s"].to_numpy()) >= 0).all()
    assert cell.data["time_s"].iloc[-1] >= raw["Time"].max()


def test_nda_time_and_temperature(cycler_files, monkeypatch):
    import NewareNDA

    monkeypatch.chdir(cycler_files)
    raw = NewareNDA.read(NDA)
    cell = read_cycler_file(NDA)
    np.testing.assert_allclose(cell.data["temperature_C"], raw["T1"], rtol=1e-6)
    assert "temperature_C" in cell.present


def test_ndax_step_time_added_up(cycler_files, monkeypatch):
    import NewareNDA

    monkeypatch.chdir(cycler_files)
    raw = NewareNDA.read(NDAX)
    cell = read_cycler_file(NDAX)
    assert "step time" in cell.metadata["time"]
    # the test lasts the sum of its steps' durations
    assert cell.data["time_s"].iloc[-1] == pytest.approx(raw.groupby("Step")["Time"].max().sum(), rel=1e-6)


def test_nda_variant_unsigned_current_and_step_times(cycler_files, tmp_path, monkeypatch):
    """Another NewareNDA output (older BTS): |I| with the sign in Status, Time restarting at each step, a CC-CV
    charge in two steps: currents signed by Status, times and each cycle's counters added up over its steps."""
    import NewareNDA.NewareNDA as nda_module

    frame = pd.DataFrame({
        "Index": range(1, 9), "Cycle": [1, 1, 1, 1, 1, 2, 2, 2], "Step": [1, 1, 2, 2, 3, 4, 4, 5],
        "Status": ["CC_Chg", "CC_Chg", "CV_Chg", "CV_Chg", "CC_DChg", "CCCV_Chg", "CCCV_Chg", "CC_DChg"],
        "Time": [0.0, 3600.0, 0.0, 1800.0, 3600.0, 0.0, 3600.0, 3600.0],
        "Voltage": [3.5, 4.2, 4.2, 4.2, 3.0, 3.6, 4.2, 3.0],
        "Current(mA)": [1000.0, 1000.0, 500.0, 200.0, 900.0, 1000.0, 1000.0, 900.0],
        "Charge_Capacity(mAh)": [0.0, 1000.0, 0.0, 150.0, 0.0, 0.0, 1000.0, 0.0],
        "Discharge_Capacity(mAh)": [0.0, 0.0, 0.0, 0.0, 900.0, 0.0, 0.0, 900.0],
    })
    monkeypatch.setattr(nda_module, "read_nda", lambda file, software_cycle_number, cycle_mode="chg": frame.copy())
    shutil.copy(cycler_files / NDA, tmp_path / "old bts.nda")  # a real, complete .nda; its data replaced above
    monkeypatch.chdir(tmp_path)
    cell = read_cycler_file("old bts.nda")
    assert cell.data["current_A"].tolist() == [1.0, 1.0, 0.5, 0.2, -0.9, 1.0, 1.0, -0.9]
    assert cell.data["time_s"].tolist() == [0.0, 3600.0, 3600.0, 5400.0, 9000.0, 9000.0, 12600.0, 16200.0]
    np.testing.assert_allclose(cell.cycles["charge_capacity_Ah"], [1.15, 1.0])
    np.testing.assert_allclose(cell.cycles["discharge_capacity_Ah"], [0.9, 0.9])
    assert "step time" in cell.metadata["time"]


@pytest.mark.parametrize("name, copy_as", [(NDA, "61[07005012] x.nda"), (NDA, "TESTFILE.NDA"),
                                           (NDAX, "cell (2).NDAX")])
def test_neware_odd_names(cycler_files, tmp_path, monkeypatch, name, copy_as):
    import NewareNDA

    shutil.copy(cycler_files / name, tmp_path / copy_as)
    monkeypatch.chdir(tmp_path)
    cell = read_cycler_file(copy_as)
    assert cell.name == Path(copy_as).stem and len(cell.data) == len(NewareNDA.read(str(cycler_files / name)))


# --------------------------------------------------------------------------- Arbin .res (mdbtools)


def _mdb_export(path: Path, table: str) -> list[dict[str, str]]:
    """A table of the Access database as mdb-export writes it, parsed with the csv module."""
    import csv
    import io

    out = subprocess.run(["mdb-export", str(path), table], capture_output=True, check=True, text=True).stdout
    return list(csv.DictReader(io.StringIO(out)))


@pytest.fixture(scope="module")
def res_raw(cycler_files):
    if shutil.which("mdb-export") is None:
        pytest.skip("mdbtools not installed (make system-deps)")
    return _mdb_export(cycler_files / RES, "Channel_Normal_Table")


def test_res_values_match_mdb_export(cycler_files, res_raw, monkeypatch):
    monkeypatch.chdir(cycler_files)
    cell = read_cycler_file(RES)
    assert cell.format == "arbin_res"
    rows = sorted(res_raw, key=lambda r: int(r["Data_Point"]))
    assert len(cell.data) == len(rows) == 10261  # cellpy's loader_arbin_res golden: n_rows 10261
    assert len(cell.cycles) == len({r["Cycle_Index"] for r in rows}) == 18  # cellpy's test: 18 cycles
    for i in (0, -1):
        assert cell.data["voltage_V"].iloc[i] == pytest.approx(float(rows[i]["Voltage"]))
        assert cell.data["time_s"].iloc[i] == pytest.approx(float(rows[i]["Test_Time"]))
    current = np.array([float(r["Current"]) for r in rows])
    np.testing.assert_allclose(cell.data["current_A"], current)  # the .res stores amperes
    assert 1e-4 < np.abs(cell.data["current_A"]).max() < 1e-3  # a coin cell: ~0.3 mA, in A
    # per-cycle discharge capacity: the rise of Discharge_Capacity (Ah) within each cycle
    by_cycle: dict[int, list[float]] = {}
    for r in rows:
        by_cycle.setdefault(int(r["Cycle_Index"]), []).append(float(r["Discharge_Capacity"]))
    expected = [max(v) - min(v) for _, v in sorted(by_cycle.items())]
    np.testing.assert_allclose(cell.cycles["discharge_capacity_Ah"], expected, rtol=1e-6)
    glob = _mdb_export(cycler_files / RES, "Global_Table")[0]
    assert cell.metadata["Test_Name"] == glob["Test_Name"]
    assert cell.metadata["Start_DateTime"].startswith("2016-08-05")


def test_res_odd_name_and_upper_case(cycler_files, res_raw, tmp_path, monkeypatch):
    shutil.copy(cycler_files / RES, tmp_path / "cell [45] 01.RES")
    monkeypatch.chdir(tmp_path)
    cell = read_cycler_file("cell [45] 01.RES")
    assert cell.format == "arbin_res" and len(cell.data) == len(res_raw)


def test_res_without_mdbtools_says_what_to_install(cycler_files, tmp_path, monkeypatch):
    monkeypatch.chdir(cycler_files)
    monkeypatch.setenv("PATH", str(tmp_path))  # no mdb-export on the PATH
    with pytest.raises(DataFileError) as exc:
        read_cycler_file(RES)
    msg = _one_line_naming(exc, RES)
    assert "Arbin .res needs mdbtools (Debian package mdbtools; `make system-deps`)" in msg


def test_res_auxiliary_temperature_joined_on_data_points(monkeypatch):
    """Arbin's Auxiliary_Table (long: one row per data point, channel and type) and Aux_Global_Data_Table (units):
    the first channel in °C is joined on Data_Point; points without a reading stay NaN (none dropped)."""
    from battlab.cycling.formats import arbin_res

    tables = {
        "Auxiliary_Table": pd.DataFrame({"Test_ID": [1, 1, 1, 1], "Data_Point": [1, 2, 1, 3],
                                         "Auxiliary_Index": [0, 0, 1, 0], "Data_Type": [1, 1, 0, 1],
                                         "X": [25.0, 25.5, 3.7, 26.0]}),
        "Aux_Global_Data_Table": pd.DataFrame({"Channel_Index": [3, 3], "Auxiliary_Index": [1, 0],
                                               "Data_Type": [0, 1], "Nickname": ["V1", "T_cell"],
                                               "Unit": ["V", "°C"]}),
    }
    monkeypatch.setattr(arbin_res, "export_table", lambda path, table: tables[table])
    temp, source = arbin_res._temperature(Path("x.res"), list(tables), pd.Series([1, 2, 3, 4]), 1)
    assert temp.tolist()[:3] == [25.0, 25.5, 26.0] and np.isnan(temp.iloc[3])
    assert "T_cell" in source


# --------------------------------------------------------------------------- Excel exports (openpyxl)


def _sheet_rows(path: Path, sheet: str) -> list[tuple]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return [r for r in wb[sheet].iter_rows(values_only=True)]
    finally:
        wb.close()


def _pairs_from_steps(steps: list[int], current: list[float]) -> int:
    """Charge/discharge pairs counted on the steps: each step's direction (mean current), consecutive steps of one
    direction merged, rests ignored; a pair opens with each step of the first direction driven."""
    kinds: list[int] = []
    for lo, hi in _runs(steps):
        mean = float(np.mean(current[lo:hi]))
        kind = 0 if abs(mean) < 1e-9 else (1 if mean > 0 else -1)
        if kind and (not kinds or kinds[-1] != kind):
            kinds.append(kind)
    return sum(1 for k in kinds if k == kinds[0]) if kinds else 1


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """(start, end) of each run of equal consecutive values."""
    starts = [0] + [i for i in range(1, len(values)) if values[i] != values[i - 1]]
    return list(zip(starts, starts[1:] + [len(values)], strict=True))


def test_arbin_excel_values_match_openpyxl(cycler_files, monkeypatch):
    monkeypatch.chdir(cycler_files)
    rows = _sheet_rows(cycler_files / XLSX, "Channel_11_1")
    header, body = list(rows[0]), rows[1:]
    col = {h: i for i, h in enumerate(header)}
    cell = read_cycler_file(XLSX)
    assert cell.format == "excel" and cell.metadata["export"] == "Arbin Excel"
    assert len(cell.data) == len(body) == 4526  # navani's test_xlsx_reader_and_dqdv asserts 4526 rows
    for i in (0, -1):
        assert cell.data["voltage_V"].iloc[i] == pytest.approx(body[i][col["Voltage(V)"]])
        assert cell.data["time_s"].iloc[i] == pytest.approx(body[i][col["Test_Time(s)"]])
    current = [float(r[col["Current(A)"]]) for r in body]
    np.testing.assert_allclose(cell.data["current_A"], current)
    # the file's Cycle_Index stays at 1: the entry point derives the cycles and says so
    assert {r[col["Cycle_Index"]] for r in body} == {1}
    assert "never increments" in cell.metadata["cycles_derived"] and cell.metadata["file_cycle_column"] == "constant 1"
    steps = [int(r[col["Step_Index"]]) for r in body]
    assert len(cell.cycles) == _pairs_from_steps(steps, current) == 2
    assert cell.metadata["Channel"] == 11 and cell.metadata["data_sheets"] == ["Channel_11_1"]
    info = _sheet_rows(cycler_files / XLSX, "Global_Info")
    assert cell.metadata["test_name"] in info[1] and "TEST REPORT" in info[0]


def test_arbin_excel_split_over_sheets_in_milliamps(cycler_files, tmp_path, monkeypatch):
    """A variant the suite has never seen: a title row above the header, the data continued on a second sheet,
    current in mA, an upper-case name with spaces. Same points as the real export."""
    import openpyxl

    rows = _sheet_rows(cycler_files / XLSX, "Channel_11_1")
    header, body = list(rows[0]), [list(r) for r in rows[1:]]
    ic = header.index("Current(A)")
    header[ic] = "Current(mA)"
    header += ["Aux_Temperature_1(C)", "Aux_Temperature_2(C)"]  # Arbin's auxiliary channels
    for n, r in enumerate(body):
        r[ic] = r[ic] * 1000.0
        r += [25.0 + n / 1000.0, 30.0]
    wb = openpyxl.Workbook()
    wb.active.title = "Global_Info"
    wb.active.append(["TEST REPORT"])
    half = len(body) // 2
    for k, part in enumerate((body[:half], body[half:]), start=1):
        ws = wb.create_sheet(f"Channel_3_{k}")
        ws.append(["exported by MITS Pro"])
        ws.append(header)
        for r in part:
            ws.append(r)
    wb.create_sheet("Statistics_1-003").append(["Cycle_Index", "Current(A)", "Voltage(V)"])
    wb.save(tmp_path / "CELL 3 (split).XLSX")
    monkeypatch.chdir(cycler_files)
    real = read_cycler_file(XLSX)
    monkeypatch.chdir(tmp_path)
    cell = read_cycler_file("CELL 3 (split).XLSX")
    assert cell.metadata["data_sheets"] == ["Channel_3_1", "Channel_3_2"]
    assert cell.metadata["points_per_sheet"] == [half, len(body) - half]
    np.testing.assert_allclose(cell.data["temperature_C"], [25.0 + n / 1000.0 for n in range(len(body))])
    assert cell.metadata["temperature"].startswith("Aux_Temperature_1(C)")
    others = [c for c in real.data.columns if c != "temperature_C"]
    pd.testing.assert_frame_equal(cell.data[others], real.data[others], check_exact=False, rtol=1e-9)
    assert len(cell.cycles) == len(real.cycles)


def test_arbin_excel_sheets_with_different_headers_refused(tmp_path, monkeypatch):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Channel_1_1"
    wb.active.append(["Test_Time(s)", "Current(A)", "Voltage(V)"])
    wb.active.append([0.0, 0.1, 3.0])
    other = wb.create_sheet("Channel_1_2")
    other.append(["Test_Time(s)", "Voltage(V)", "Current(A)", "Cycle_Index"])
    other.append([1.0, 3.1, 0.1, 1])
    wb.save(tmp_path / "x.xlsx")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileError, match="different headers") as exc:
        read_cycler_file("x.xlsx")
    _one_line_naming(exc, "x.xlsx")


def test_excel_without_cycler_sheet(tmp_path, monkeypatch):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["sample", "mass_g"])
    wb.active.append(["A", 1.0])
    wb.save(tmp_path / "notes.xlsx")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileError, match="names a current and a voltage") as exc:
        read_cycler_file("notes.xlsx")
    _one_line_naming(exc, "notes.xlsx")


def test_excel_header_only(tmp_path, monkeypatch):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Channel_1_1"
    wb.active.append(["Test_Time(s)", "Current(A)", "Voltage(V)", "Cycle_Index"])
    wb.save(tmp_path / "empty export.xlsx")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileError, match="header only") as exc:
        read_cycler_file("empty export.xlsx")
    _one_line_naming(exc, "empty export.xlsx")


def test_neware_excel_export_reads_like_its_csv(cycler_files, tmp_path, monkeypatch):
    """A Neware Excel export (BTS: info, cycle and step summaries, then the record sheet) made from the rows of
    the real Neware CSV export: the same points as the CSV read by battlab's Neware CSV reader."""
    import csv

    import openpyxl

    with open(cycler_files / "neware_cellpy_neware_uio.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:2001]
    (tmp_path / "cell.csv").write_text("\n".join(",".join(r) for r in [header, *body]) + "\n", encoding="utf-8")

    def value(text: str):
        try:
            return float(text)
        except ValueError:
            return text  # step types, h:mm:ss times, dates stay text as Neware writes them

    wb = openpyxl.Workbook()
    wb.active.title = "test"
    wb.active.append(["Start Time", "Barcode", "Remarks"])
    wb.active.append(["2022-05-18 16:27:52", "uio", "made in a test"])
    cyc = wb.create_sheet("cycle")
    cyc.append(["Cycle Index", "Chg. Cap.(Ah)", "DChg. Cap.(Ah)", "Current(A)", "Voltage(V)"])
    step = wb.create_sheet("step")
    step.append(["Cycle Index", "Step Index", "Step Type", "Current(A)", "Voltage(V)"])
    rec = wb.create_sheet("record")
    rec.append(header)
    for r in body:
        rec.append([value(c) for c in r])
    wb.save(tmp_path / "Cell UIO.xlsx")
    monkeypatch.chdir(tmp_path)
    from_csv = read_cycler_file("cell.csv")
    cell = read_cycler_file("Cell UIO.xlsx")
    assert from_csv.format == "neware_csv" and cell.format == "excel"
    assert cell.metadata["export"].startswith("Neware Excel") and cell.metadata["data_sheets"] == ["record"]
    assert len(cell.data) == len(body)
    pd.testing.assert_frame_equal(cell.data, from_csv.data, check_exact=False, rtol=1e-9)
    ic = header.index("Current(A)")
    np.testing.assert_allclose(cell.data["current_A"].abs(), [abs(float(r[ic])) for r in body])


def test_neware_excel_record_sheet_without_cycle_column(cycler_files, tmp_path, monkeypatch):
    """The layout cellpy's neware_xlsx loader reads (unit, test, step and record sheets; the record sheet without
    cycle or step index, one Capacity column, |I|, 'CC DChg' step types): current signed by the step type, time
    from Total Time, cycles derived from the current (and said so)."""
    import csv

    import openpyxl

    with open(cycler_files / "neware_cellpy_neware_uio.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:3000]
    wb = openpyxl.Workbook()
    wb.active.title = "unit"
    wb.active.append(["uio cell"])
    wb.create_sheet("test").append(["Start Step ID", 1])
    wb.create_sheet("step").append(["Cycle Index", "Step Index", "Step Type", "Oneset Date", "End Date"])
    rec = wb.create_sheet("record")
    rec.append(["DataPoint", "Date", "Total Time", "Step Time", "Step Type", "Current(A)", "Voltage(V)",
                "Capacity(Ah)", "Energy(Wh)"])
    for r in rows:
        rec.append([int(r["DataPoint"]), r["Date"], r["Cumulative Time"], r["Time"], r["Step Type"],
                    abs(float(r["Current(A)"])), float(r["Voltage(V)"]), float(r["Capacity(Ah)"]),
                    float(r["Energy(Wh)"])])
    wb.save(tmp_path / "neware export.xlsx")
    monkeypatch.chdir(tmp_path)
    cell = read_cycler_file("neware export.xlsx")
    assert cell.metadata["export"].startswith("Neware Excel")
    current = [float(r["Current(A)"]) for r in rows]  # the CSV's signed current
    np.testing.assert_allclose(cell.data["current_A"], current)
    np.testing.assert_allclose(cell.data["voltage_V"], [float(r["Voltage(V)"]) for r in rows])
    h, m, sec = (int(x) for x in rows[-1]["Cumulative Time"].split(":"))
    assert cell.data["time_s"].iloc[-1] == pytest.approx(3600 * h + 60 * m + sec)
    assert "missing" in cell.metadata["cycles_derived"]
    kinds = [r["Step Type"] for r in rows]
    steps = np.cumsum([0] + [a != b for a, b in zip(kinds[:-1], kinds[1:], strict=True)]).tolist()  # step runs
    assert len(cell.cycles) == _pairs_from_steps(steps, current)


# --------------------------------------------------------------------------- Indigo HDF5


def test_indigo_values_match_h5py_and_beep(cycler_files, monkeypatch):
    import h5py

    from battlab.cycling.formats.beep import _quiet_beep

    monkeypatch.chdir(cycler_files)
    cell = read_cycler_file(H5)
    assert cell.format == "indigo"
    with h5py.File(cycler_files / H5, "r") as h5:
        g = h5["time_series_data"]
        items = [x.decode() for x in g["block2_items"][()]]
        floats = g["block2_values"][()]
        ints = g["block0_values"][()]
        int_items = [x.decode() for x in g["block0_items"][()]]
    volts, amps = floats[:, items.index("cell_voltage_v")], floats[:, items.index("cell_current_a")]
    coulombs = floats[:, items.index("cell_coulomb_count_c")]
    cycles = ints[:, int_items.index("cycle_count")]
    assert len(cell.data) == len(volts) == 20000
    np.testing.assert_allclose(cell.data["voltage_V"].iloc[[0, -1]], volts[[0, -1]])
    np.testing.assert_allclose(cell.data["current_A"], amps)
    assert len(cell.cycles) == len(np.unique(cycles))
    # capacity: the coulomb count (C) / 3600, split by sign, largest in each cycle
    dis = pd.Series(np.clip(-coulombs, 0, None) / 3600.0).groupby(cycles).max()
    np.testing.assert_allclose(cell.cycles["discharge_capacity_Ah"], dis.to_numpy(), rtol=1e-6)
    assert 10 < cell.cycles["discharge_capacity_Ah"].median() < 30  # Ah, not coulombs (x3600) or mAh
    with _quiet_beep():
        from beep.structure.indigo import IndigoDatapath

        dp = IndigoDatapath.from_file(str(cycler_files / H5))
    np.testing.assert_allclose(cell.data["voltage_V"], dp.raw_data["voltage"])
    np.testing.assert_allclose(cell.data["time_s"], dp.raw_data["time_s"])
    np.testing.assert_array_equal(cell.data["cycle"], dp.raw_data["cycle_index"])
    assert cell.metadata["indigo_cell_id"] == dp.metadata.raw["indigo_cell_id"]


def test_indigo_upper_case_copy(cycler_files, tmp_path, monkeypatch):
    shutil.copy(cycler_files / H5, tmp_path / "INDIGO CELL.H5")
    monkeypatch.chdir(tmp_path)
    assert len(read_cycler_file("INDIGO CELL.H5").data) == 20000


def test_other_hdf5_is_named(tmp_path, monkeypatch):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5["x"] = np.arange(3)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileError, match="HDF5 file without Indigo") as exc:
        read_cycler_file("other.h5")
    _one_line_naming(exc, "other.h5")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", BINARY)
def test_truncated_binary_file_is_one_line(cycler_files, tmp_path, monkeypatch, name):
    data = (cycler_files / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileError) as exc:
        read_cycler_file(name)
    _one_line_naming(exc, name)


def test_empty_binary_named_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("empty.mpr", "empty.nda", "empty.res"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(DataFileError, match="empty") as exc:
            read_cycler_file(name)
        _one_line_naming(exc, name)


def test_zip_that_is_neither_xlsx_nor_ndax(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile(tmp_path / "cells.zip", "w") as zf:
        zf.writestr("notes.txt", "hello")
        zf.writestr("data/cell1.csv", "a,b\n1,2\n")
    with pytest.raises(DataFileError, match="zip archive") as exc:
        read_cycler_file("cells.zip")
    _one_line_naming(exc, "cells.zip")


def test_lanhe_and_unknown_binaries_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cell 1.CCS").write_bytes(b"\x00\x01LANHE?" * 200)
    with pytest.raises(DataFileError, match="LANHE .ccs: no maintained reader; export as Excel") as exc:
        read_cycler_file("cell 1.CCS")
    _one_line_naming(exc, "cell 1.CCS")
    assert describe_binary(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Path("old.xls")).startswith("OLE2")


@pytest.mark.parametrize("name", BINARY)
def test_binary_files_are_detected_from_content(cycler_files, name):
    fmt = {MPR: "biologic_mpr", NDA: "neware", NDAX: "neware", RES: "arbin_res", XLSX: "excel", H5: "indigo"}[name]
    assert detect_format(cycler_files / name) == fmt
