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


@pytest.fixture(scope="module")
def cycler_files(shared_datasets: Path) -> Path:
    return shared_datasets / "cycler_files"


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


@pytest.mark.parametrize("name, copy_as", [(NDA, "61[07005012] x.nda"), (NDA, "TESTFILE.NDA"),
                                           (NDAX, "cell (2).NDAX")])
def test_neware_odd_names(cycler_files, tmp_path, monkeypatch, name, copy_as):
    import NewareNDA

    shutil.copy(cycler_files / name, tmp_path / copy_as)
    monkeypatch.chdir(tmp_path)
    cell = read_cycler_file(copy_as)
    assert cell.name == Path(copy_as).stem and len(cell.data) == len(NewareNDA.read(str(cycler_files / name)))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", [MPR, NDA, NDAX])
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
