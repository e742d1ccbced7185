"""battlab.cycling: cycler files, the Severson dataset, early-life features, cycle-life models, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from battlab.cycling.read import TIDY_COLUMNS, CellData, detect_format, read_cycler_file
from battlab.errors import DataFileError


@pytest.fixture(scope="module")
def cycler_files(shared_datasets: Path) -> Path:
    return shared_datasets / "cycler_files"


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
    path = tmp_path / "nocycle.csv"
    path.write_text("time_s,current_A,voltage_V\n0,1.0,3.3\n")
    with pytest.raises(DataFileError, match=r"nocycle\.csv: no cycle column"):
        read_cycler_file(path)


def test_text_in_the_current_column_names_row_and_column(tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("cycle,time_s,current_A,voltage_V\n1,0,1.0,3.3\n1,1,oops,3.2\n")
    with pytest.raises(DataFileError, match=r"typo\.csv: row 2, column 'current_A': 'oops' is not a number"):
        read_cycler_file(path)


@pytest.mark.parametrize("content, message", [(b"", "empty file"), (b"\x00\x01\x02BIN", "binary file")])
def test_empty_and_binary_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=message):
        detect_format(path)


def test_header_only(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("cycle,time_s,current_A,voltage_V\n")
    with pytest.raises(DataFileError, match="header only"):
        read_cycler_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        read_cycler_file(tmp_path / "nope.csv")
