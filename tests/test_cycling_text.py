"""Text cycler exports in their real variety (issue 19): EC-Lab .mpt, Maccor templates, Neware CSV, PEC, BaSyTec, BDF.

Each real file is read with a relative path and checked against its raw content parsed here with the csv module
(first and last voltage, point count, cycles) and the figures its source project states (shared/datasets README).
Synthetic variants in tmp_path show that formats are found from the content (header lengths, CRLF, extensions,
decimal commas, Latin-1, German locale, milli-units), and bad input gets one-line errors.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from battlab.cycling.read import detect_format, read_cycler_file
from battlab.errors import DataFileError

MPT = "biologic_yadg_gcpl.issue_149_decimalcomma.mpt"
MACCOR_001 = "maccor_cellpy_maccor_001.txt"
MACCOR_THREE = "maccor_cellpy_maccor_three.txt"
NEWARE = "neware_cellpy_neware_uio.csv"
PEC = "pec_cellpy_pec.csv"
BASYTEC = "basytec_pyprobe_sample_data_basytec.txt"


def _num(text: str) -> float:
    return float(text.strip().replace(",", "."))


def _lines(path: Path, encoding: str = "utf-8") -> list[str]:
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        return fh.read().splitlines()


def _table(lines: list[str], header_at: int, delimiter: str) -> tuple[list[str], list[list[str]]]:
    """The header and the non-blank rows after it, split by the csv module."""
    rows = list(csv.reader(lines[header_at:], delimiter=delimiter))
    return [h.strip() for h in rows[0]], [r for r in rows[1:] if any(c.strip() for c in r)]


def _col(header: list[str], rows: list[list[str]], name: str) -> list[str]:
    i = header.index(name)
    return [r[i] for r in rows]


def _read(monkeypatch, folder: Path, name: str, **kw):
    monkeypatch.chdir(folder)
    return read_cycler_file(name, **kw)


def _opening_direction_cycles(letters: list[str]) -> int:
    """Cycles counted from a sequence of C/D state letters: one more each time the first direction comes back."""
    runs = [s for i, s in enumerate(letters) if i == 0 or s != letters[i - 1]]
    return sum(1 for s in runs if s == runs[0])


# --------------------------------------------------------------------------- EC-Lab .mpt


def _mpt_raw(path: Path) -> tuple[list[str], list[list[str]], int]:
    lines = _lines(path, "latin-1")
    n = int(re.search(r"Nb header lines\s*:\s*(\d+)", lines[1]).group(1))
    header, rows = _table(lines, n - 1, "\t")
    return header, rows, n


def test_mpt_decimal_comma_latin1_reads_like_the_raw_file(cycler_files, monkeypatch):
    cell = _read(monkeypatch, cycler_files, MPT)
    header, rows, n = _mpt_raw(cycler_files / MPT)
    assert cell.format == "biologic" and cell.metadata["header_lines"] == n
    assert len(cell.data) == len(rows) == 132  # yadg's test file: 132 rows
    volts = _col(header, rows, "Ewe/V")
    assert cell.data["voltage_V"].iloc[0] == pytest.approx(_num(volts[0]))
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(_num(volts[-1]))
    amps = [_num(v) / 1000 for v in _col(header, rows, "<I>/mA")]
    assert np.allclose(cell.data["current_A"], amps)
    cycles = sorted({_num(v) for v in _col(header, rows, "cycle number")})
    assert cell.cycles["cycle"].tolist() == [int(c) for c in cycles] and len(cycles) == 4  # 4 cycles (README)
    assert "cycles_derived" not in cell.metadata
    # the discharge capacity of each cycle is the file's Q discharge counter (mA.h -> Ah)
    qd = np.array([_num(v) for v in _col(header, rows, "Q discharge/mA.h")]) / 1000
    cyc = np.array([_num(v) for v in _col(header, rows, "cycle number")])
    for c, got in zip(cell.cycles["cycle"], cell.cycles["discharge_capacity_Ah"], strict=True):
        assert got == pytest.approx(qd[cyc == c].max() - qd[cyc == c].min())


def _mpt_without(src: Path, dest: Path, drop: tuple[str, ...]) -> None:
    lines = _lines(src, "latin-1")
    n = int(re.search(r"Nb header lines\s*:\s*(\d+)", lines[1]).group(1))
    header = lines[n - 1].split("\t")
    keep = [i for i, h in enumerate(header) if h not in drop]
    body = ["\t".join(line.split("\t")[i] for i in keep if i < len(line.split("\t"))) for line in lines[n - 1:]]
    dest.write_bytes("\r\n".join(lines[: n - 1] + body).encode("latin-1"))


def test_mpt_signed_q_charge_discharge_column_splits_into_the_two_counters(cycler_files, tmp_path):
    # EC-Lab versions that write only 'Q charge/discharge/mA.h': the same per-cycle capacities as the two counters
    path = tmp_path / "signed.mpt"
    _mpt_without(cycler_files / MPT, path, ("Q charge/mA.h", "Q discharge/mA.h"))
    cell = read_cycler_file(path)
    header, rows, _ = _mpt_raw(cycler_files / MPT)
    cyc = np.array([_num(v) for v in _col(header, rows, "cycle number")])
    for kind, col in (("discharge", "Q discharge/mA.h"), ("charge", "Q charge/mA.h")):
        q = np.array([_num(v) for v in _col(header, rows, col)]) / 1000
        expected = [q[cyc == c].max() - q[cyc == c].min() for c in sorted(set(cyc))]
        assert np.allclose(cell.cycles[f"{kind}_capacity_Ah"], expected, rtol=1e-6, atol=1e-12)
    assert "Q charge/discharge" in cell.metadata["capacity_from"]


def test_mpt_q_minus_qo_alone_gives_charge_and_discharge(cycler_files, tmp_path):
    path = tmp_path / "qqo.mpt"
    _mpt_without(cycler_files / MPT, path, ("Q charge/mA.h", "Q discharge/mA.h", "Q charge/discharge/mA.h"))
    cell = read_cycler_file(path)
    header, rows, _ = _mpt_raw(cycler_files / MPT)
    q = np.array([_num(v) for v in _col(header, rows, "(Q-Qo)/mA.h")]) / 1000
    cyc = np.array([_num(v) for v in _col(header, rows, "cycle number")])
    dq = np.diff(q, prepend=q[0])
    dis = np.cumsum(np.clip(-dq, 0, None))
    expected = [dis[cyc == c].max() - dis[cyc == c].min() for c in sorted(set(cyc))]
    assert np.allclose(cell.cycles["discharge_capacity_Ah"], expected, rtol=1e-6)
    assert (cell.cycles["discharge_capacity_Ah"] > 0).all() and "(Q-Qo)" in cell.metadata["capacity_from"]


def test_mpt_other_header_length_crlf_and_upper_case_extension(cycler_files, tmp_path, monkeypatch):
    lines = _lines(cycler_files / MPT, "latin-1")
    n = int(re.search(r"Nb header lines\s*:\s*(\d+)", lines[1]).group(1))
    extra = ["Comments : a longer header", "Extra line 2", "Extra line 3"]
    new = [lines[0], lines[1].replace(str(n), str(n + len(extra)))] + extra + lines[2:]
    (tmp_path / "CELL 1 [x].MPT").write_bytes("\r\n".join(new).encode("latin-1"))
    cell = _read(monkeypatch, tmp_path, "CELL 1 [x].MPT")
    ref = read_cycler_file(cycler_files / MPT)
    assert cell.metadata["header_lines"] == n + 3 and len(cell.data) == len(ref.data)
    assert np.allclose(cell.data["voltage_V"], ref.data["voltage_V"]) and cell.name == "CELL 1 [x]"


def test_mpt_german_locale_dates_day_first(tmp_path):
    # German EC-Lab: tabs, decimal commas, dates dd.mm.yyyy (day first: 01.10 is 1 October, 02.10 the next day)
    text = ("EC-Lab ASCII FILE\nNb header lines : 4\nAcquisition started on : 01.10.2024 11:02:29,886\n"
            "time/s\tEwe/V\t<I>/mA\tcycle number\n"
            "01.10.2024 23:00:00,000\t3,40\t1,5\t0\n02.10.2024 01:00:00,500\t3,50\t-1,5\t0\n")
    path = tmp_path / "de.mpt"
    path.write_bytes(text.encode("latin-1"))
    cell = read_cycler_file(path)
    assert cell.data["time_s"].tolist() == pytest.approx([0.0, 7200.5])
    assert cell.data["voltage_V"].tolist() == pytest.approx([3.4, 3.5])
    assert cell.data["current_A"].tolist() == pytest.approx([0.0015, -0.0015])
    assert cell.metadata["date_format"].startswith("dd.mm.yyyy")


def test_bt_lab_banner_averaged_ewe_and_no_cycle_column(tmp_path):
    # BT-Lab's banner, '<Ewe/V>' (averaged), no 'cycle number' column: the entry point derives the cycles
    text = ("BT-Lab ASCII FILE\nNb header lines : 4\n\nmode\ttime/s\t<Ewe/V>\t<I>/mA\n"
            "1\t0\t3,4\t1\n1\t1\t3,5\t-1\n1\t2\t3,4\t1\n1\t3\t3,3\t-1\n")
    path = tmp_path / "bt.mpt"
    path.write_bytes(text.encode("latin-1"))
    cell = read_cycler_file(path)
    assert cell.format == "biologic" and cell.data["voltage_V"].tolist() == [3.4, 3.5, 3.4, 3.3]
    assert cell.data["cycle"].tolist() == [1, 1, 2, 2] and "is missing" in cell.metadata["cycles_derived"]


def test_mpt_latin1_degree_sign_temperature(tmp_path):
    text = "time/s\tEwe/V\tI/mA\tcycle number\tTemperature/°C\n0\t3,4\t1\t1\t25,5\n10\t3,5\t1\t1\t26,0\n"
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("latin-1"))
    cell = read_cycler_file(path)
    assert cell.format == "biologic" and cell.data["temperature_C"].tolist() == [25.5, 26.0]


# --------------------------------------------------------------------------- Maccor templates


def _maccor_raw(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = _lines(path)
    at = next(i for i, line in enumerate(lines) if line.startswith("Rec#"))
    return _table(lines, at, "\t")


def test_maccor_001_stuck_cycle_column_gets_cycles_from_the_state(cycler_files, monkeypatch, tmp_path):
    cell = _read(monkeypatch, cycler_files, MACCOR_001)
    header, rows = _maccor_raw(cycler_files / MACCOR_001)
    assert cell.format == "maccor_text" and len(cell.data) == len(rows) == 6704
    volts = _col(header, rows, "Volts")
    assert cell.data["voltage_V"].iloc[0] == pytest.approx(float(volts[0]))
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(float(volts[-1]))
    assert set(_col(header, rows, "Cyc#")) == {"0"}  # Cyc# always 0 ...
    assert cell.metadata["file_cycle_column"] == "constant 0" and "never increments" in cell.metadata["cycles_derived"]
    states = [s.strip() for s in _col(header, rows, "State") if s.strip() in ("C", "D")]
    expected = _opening_direction_cycles(states)
    assert len(cell.cycles) == expected and 4 <= expected <= 5  # ... about 4-5 charge/discharge pairs (README)
    # the file writes |I|: discharge rows are negative, charge rows positive
    state = np.array([s.strip() for s in _col(header, rows, "State")])
    amps = np.array([float(a) for a in _col(header, rows, "Amps")])
    assert (amps >= 0).all()
    assert np.allclose(cell.data["current_A"][state == "D"], -amps[state == "D"])
    assert np.allclose(cell.data["current_A"][state == "C"], amps[state == "C"])
    saved = json.loads(cell.save(tmp_path / "out")["cell.json"].read_text())  # cell.json says the cycles are derived
    assert "never increments" in saved["metadata"]["cycles_derived"] and saved["format"] == "maccor_text"


def test_maccor_001_counters_restart_each_step(cycler_files):
    # Amp-hr restarts at each step: the charge of a derived cycle is the sum of its C steps' ends
    cell = read_cycler_file(cycler_files / MACCOR_001)
    header, rows = _maccor_raw(cycler_files / MACCOR_001)
    step, state = _col(header, rows, "Step"), [s.strip() for s in _col(header, rows, "State")]
    cap = [float(v) for v in _col(header, rows, "Amp-hr")]
    ends: dict[str, float] = {}
    for i in range(len(rows)):
        if state[i] == "C" and (i + 1 == len(rows) or step[i + 1] != step[i]):
            ends[step[i]] = cap[i]
    cycle = cell.data["cycle"].to_numpy()
    for c in cell.cycles["cycle"]:
        mine = {step[i] for i in np.flatnonzero(cycle == c) if state[i] == "C"}
        want = sum(ends[s] for s in mine)
        got = float(cell.cycles.loc[cell.cycles["cycle"] == c, "charge_capacity_Ah"].iloc[0])
        assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_maccor_three_milli_units(cycler_files, monkeypatch):
    cell = _read(monkeypatch, cycler_files, MACCOR_THREE)
    header, rows = _maccor_raw(cycler_files / MACCOR_THREE)
    assert cell.format == "maccor_text" and len(cell.data) == len(rows)
    cycles = sorted({int(c) for c in _col(header, rows, "Cyc#")})
    assert cycles == list(range(15)) and cell.cycles["cycle"].tolist() == cycles  # 15 cycles, Cyc# 0-14 (README)
    volts = [float(v) for v in _col(header, rows, "Volts")]
    # the milli-unit export writes mV in its 'Volts' column: 1853.8 is 1.8538 V, not 1853 V
    assert cell.data["voltage_V"].iloc[0] == pytest.approx(volts[0] / 1000)
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(volts[-1] / 1000)
    assert cell.data["voltage_V"].max() < 5 and "mV" in cell.metadata["voltage_unit"]
    amps = np.array([float(v) for v in _col(header, rows, "mAmps")]) / 1000
    assert np.allclose(cell.data["current_A"], amps)
    state = np.array([s.strip() for s in _col(header, rows, "State")])
    cap = np.array([float(v) for v in _col(header, rows, "mAmp-hr")]) / 1000
    cyc = np.array([int(c) for c in _col(header, rows, "Cyc#")])
    for c in cycles:
        want = cap[(cyc == c) & (state == "D")].max()
        got = cell.cycles.loc[cell.cycles["cycle"] == c, "discharge_capacity_Ah"].iloc[0]
        assert got == pytest.approx(want, rel=1e-6)


def test_maccor_channel_named_export_crlf_and_other_header(cycler_files, tmp_path, monkeypatch):
    lines = _lines(cycler_files / MACCOR_THREE)[:400]
    at = next(i for i, line in enumerate(lines) if line.startswith("Rec#"))
    new = ["Channel:\t70", "Procedure:\tformation.000"] + lines[at:]  # a shorter header, CRLF, named by channel
    (tmp_path / "CELL_A.070").write_bytes(("\r\n".join(new) + "\r\n").encode())
    assert detect_format(tmp_path / "CELL_A.070") == "maccor_text"
    cell = _read(monkeypatch, tmp_path, "CELL_A.070")
    header, rows = _table(new, 2, "\t")
    assert len(cell.data) == len(rows) and cell.metadata["header_lines"] == 2
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(float(_col(header, rows, "Volts")[-1]) / 1000)


def test_maccor_cycle_p_column_when_cyc_is_stuck(tmp_path):
    text = ("Today's Date\t01/01/2024\nRec#\tCyc#\tCycle P\tCycle C\tStep\tTestTime\tAmp-hr\tAmps\tVolts\tState\n"
            "1\t0\t1\t1\t1\t0d 00:00:00\t0\t1\t3.5\tC\n2\t0\t1\t1\t2\t0d 01:00:00\t1\t1\t3.2\tD\n"
            "3\t0\t2\t2\t1\t0d 02:00:00\t0\t1\t3.5\tC\n4\t0\t2\t2\t2\t0d 03:00:00\t1\t1\t3.2\tD\n")
    path = tmp_path / "cp.txt"
    path.write_text(text)
    cell = read_cycler_file(path)
    assert cell.metadata["cycle_column"] == "Cycle P" and cell.data["cycle"].tolist() == [1, 1, 2, 2]
    assert "cycles_derived" not in cell.metadata and cell.data["current_A"].tolist() == [1, -1, 1, -1]
    assert cell.data["time_s"].tolist() == [0, 3600, 7200, 10800]


def test_maccor_csv_template_without_state(tmp_path):
    # the comma-separated template: Rec, Cycle C, Test Time (sec), Capacity, Current (signed), Voltage, Temp 1
    text = ("Today's Date ,01-Jan-24\nDate of Test:,01-Jan-24 3:56:08 PM\n"
            "Rec,Cycle C,Step,Test Time (sec),Step Time (sec),Capacity,Energy,Current,Voltage,DPT Time,Temp 1\n"
            "1,1,1,0,0,0,0,0,3.6,01-Jan-24 3:56:11 PM,22.5\n2,1,2,1800,1800,0.5,1.9,1.0,3.9,x,22.6\n"
            "3,1,2,3600,3600,1.0,3.9,1.0,4.1,x,22.7\n4,1,3,5400,1800,0.5,1.8,-1.0,3.7,x,22.8\n"
            "5,1,3,7200,3600,1.0,3.6,-1.0,3.2,x,22.9\n")
    path = tmp_path / "maccor.csv"
    path.write_text(text)
    assert detect_format(path) == "maccor_text"
    cell = read_cycler_file(path)
    assert cell.data["voltage_V"].tolist() == [3.6, 3.9, 4.1, 3.7, 3.2] and cell.data["temperature_C"].iloc[-1] == 22.9
    assert cell.data["current_A"].tolist() == [0, 1, 1, -1, -1] and cell.metadata["Date of Test"].startswith("01-Jan")
    assert cell.cycles[["charge_capacity_Ah", "discharge_capacity_Ah"]].values.tolist() == [[1.0, 1.0]]


def test_maccor_kit_template_minutes_decimal_commas_md_column(tmp_path):
    # 12 metadata lines, a blank line after the header, decimal commas, 'Md' state, 'Cap. [Ah]', a trailing tab,
    # TestTime as a plain number of minutes (the DPT Time stamps run 60 times faster)
    meta = ["Name:\tCELL-1.081", "Channel:\t81", "Tester\tMaccor #4", "SCap\t0,017"]
    header = "\t".join(["Rec", "Cycle P", "Cycle C", "Step", "TestTime", "StepTime", "Cap. [Ah]", "Ener. [Wh]",
                        "Current [A]", "Voltage [V]", "Md", "ES", "DPT Time"])
    rows = [(1, 0, 1, 1, "0,0", "0,0", "0", "0", "0,0", "3,50", "R", "06/05/2021 11:00:00"),
            (2, 0, 1, 2, "60,0", "60,0", "0,5", "1,9", "0,5", "4,10", "C", "06/05/2021 12:00:00"),
            (3, 0, 1, 3, "120,0", "60,0", "0,4", "1,5", "0,4", "3,00", "D", "06/05/2021 13:00:00")]
    body = ["\t".join(map(str, r[:11])) + "\t1\t" + r[11] + "\t" for r in rows]
    path = tmp_path / "kit.txt"
    path.write_bytes("\r\n".join(meta + [header, ""] + body).encode("latin-1"))
    cell = read_cycler_file(path)
    assert cell.format == "maccor_text" and len(cell.data) == 3 and cell.metadata["blank_lines_skipped"] == 1
    assert cell.data["time_s"].tolist() == [0, 3600, 7200] and "minutes" in cell.metadata["time_unit"]
    assert cell.data["current_A"].tolist() == [0, 0.5, -0.4] and cell.data["voltage_V"].tolist() == [3.5, 4.1, 3.0]
    assert cell.cycles[["charge_capacity_Ah", "discharge_capacity_Ah"]].values.tolist() == [[0.5, 0.4]]
    assert "extra_fields" not in cell.metadata  # the trailing tab holds nothing


def test_maccor_values_beyond_the_header_are_kept_and_reported(tmp_path):
    path = tmp_path / "extra.txt"
    path.write_text("X\t1\nRec#\tCyc#\tTestTime\tAmps\tVolts\n1\t0\t0d 00:00:00\t1\t3.5\n"
                    "2\t0\t0d 00:00:01\t1\t3.6\tsurprise\n")
    cell = read_cycler_file(path)
    assert len(cell.data) == 2 and "1 rows hold values beyond the header's 5 columns" in cell.metadata["extra_fields"]


def test_maccor_raw_052_still_reads_through_beep_and_the_template_reader_agrees(cycler_files, monkeypatch):
    monkeypatch.chdir(cycler_files)
    beep = read_cycler_file("PredictionDiagnostics_000151_test.052")
    ours = read_cycler_file("PredictionDiagnostics_000151_test.052", format="maccor_text")
    assert beep.format == "maccor"
    for col in ("time_s", "current_A", "voltage_V", "discharge_capacity_Ah", "cycle"):
        assert np.allclose(beep.data[col].astype(float), ours.data[col].astype(float), rtol=1e-6)


# --------------------------------------------------------------------------- Neware CSV


def test_neware_flat_export(cycler_files, monkeypatch):
    cell = _read(monkeypatch, cycler_files, NEWARE)
    header, rows = _table(_lines(cycler_files / NEWARE), 0, ",")
    assert cell.format == "neware_csv" and len(cell.data) == len(rows)
    volts = _col(header, rows, "Voltage(V)")
    assert cell.data["voltage_V"].iloc[0] == pytest.approx(float(volts[0]))
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(float(volts[-1]))
    cycles = sorted({int(c) for c in _col(header, rows, "Cycle Index")})
    assert cell.cycles["cycle"].tolist() == cycles and len(cycles) == 4  # 4 cycles (README)
    # a cycle's discharge is the sum of its discharge steps (the counter restarts at each step)
    step, cyc = _col(header, rows, "Step Index"), _col(header, rows, "Cycle Index")
    cap = [float(v) for v in _col(header, rows, "DChg. Cap.(Ah)")]
    want: dict[int, float] = {}
    for i in range(len(rows)):
        if i + 1 == len(rows) or step[i + 1] != step[i]:
            want[int(cyc[i])] = want.get(int(cyc[i]), 0.0) + cap[i]
    assert np.allclose(cell.cycles["discharge_capacity_Ah"], [want[c] for c in cycles], rtol=1e-6)
    total = _col(header, rows, "Cumulative Time")[-1].split(":")
    assert cell.data["time_s"].iloc[-1] == pytest.approx(int(total[0]) * 3600 + int(total[1]) * 60 + float(total[2]))


def test_neware_flat_milliamps_and_unsigned_current(tmp_path):
    text = ("DataPoint,Cycle Index,Step Index,Step Type,Time,Total Time,Current(mA),Voltage(V),Chg. Cap.(mAh),"
            "DChg. Cap.(mAh)\n1,1,1,CC Chg,00:00:00,00:00:00,500,3.5,0,0\n"
            "2,1,1,CC Chg,01:00:00,01:00:00,500,4.2,500,0\n"
            "3,1,2,CC DChg,00:00:00,01:00:01,500,4.1,0,0\n4,1,2,CC DChg,01:00:00,02:00:01,500,3.0,0,500\n")
    path = tmp_path / "neware_ma.CSV"
    path.write_text(text)
    cell = read_cycler_file(path)
    assert cell.format == "neware_csv"
    assert cell.data["current_A"].tolist() == [0.5, 0.5, -0.5, -0.5]
    assert cell.cycles["discharge_capacity_Ah"].tolist() == [0.5]
    assert cell.cycles["charge_capacity_Ah"].tolist() == [0.5]


def _neware_regular(n_cycles: int = 2) -> str:
    """A regular (three-level) Neware export as BTSDA writes it: cycle, step and record rows, each level one
    leading empty field deeper, with per-step record times and real-time stamps."""
    lines = ["Cycle ID,Cap_Chg(mAh),Cap_DChg(mAh),Charge/Discharge Efficiency(%),Engy_Chg(mWh),Engy_DChg(mWh)",
             ",Step ID,Step Name,Step Time(h:min:s.ms),Capacity(mAh),Energy(mWh)",
             ",,Record ID,Time(h:min:s.ms),Voltage(V),Current(mA),Temperature(C),Capacitance_Chg(mAh),"
             "Capacitance_DChg(mAh),Engy_Chg(mWh),Engy_DChg(mWh),Realtime"]
    rec, t = 1, 0
    for c in range(1, n_cycles + 1):
        lines.append(f"{c},10.0,9.5,95.0,37.0,33.0")
        for s, (name, cur) in enumerate((("CC_Chg", 10.0), ("Rest", 0.0), ("CC_DChg", -9.5))):
            step_id = 3 * (c - 1) + s + 1
            lines.append(f",{step_id},{name},01:00:00.000,{abs(cur):.1f},0")
            for k in range(3):
                v = 3.5 + 0.3 * k if cur > 0 else (4.0 if cur == 0 else 4.0 - 0.3 * k)
                qc = cur * 0.5 * k if cur > 0 else 0.0
                qd = -cur * 0.5 * k if cur < 0 else 0.0
                stamp = f"2024-01-01 {t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"
                lines.append(f",,{rec},00:{30 * k // 60:02d}:{30 * k % 60:02d}.000,{v:.3f},{cur},25.0,{qc},{qd},0,0,"
                             f"{stamp}")
                rec, t = rec + 1, t + 1800
    return "\n".join(lines) + "\n"


def test_neware_regular_three_level_export(tmp_path):
    path = tmp_path / "regular.csv"
    path.write_text(_neware_regular(2))
    assert detect_format(path) == "neware_csv"
    cell = read_cycler_file(path)
    rows = list(csv.reader(path.read_text().splitlines()))
    records = [r for r in rows[3:] if not r[0] and not r[1] and r[2]]
    assert len(cell.data) == len(records) == 18  # record rows only; cycle and step rows are summaries
    assert cell.metadata["cycle_rows"] == 2 and cell.metadata["step_rows"] == 6
    assert cell.data["voltage_V"].iloc[0] == pytest.approx(float(records[0][4]))
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(float(records[-1][4]))
    assert cell.data["cycle"].tolist() == [1] * 9 + [2] * 9 and cell.data["step"].iloc[-1] == 6
    assert cell.data["current_A"].iloc[-1] == pytest.approx(-0.0095)
    assert np.all(np.diff(cell.data["time_s"]) == 1800)  # from the stamps, not the per-step times
    assert cell.cycles["discharge_capacity_Ah"].tolist() == pytest.approx([0.0095, 0.0095])
    assert cell.data["temperature_C"].iloc[0] == 25.0


def _neware_regular_bts8(n_cycles: int = 3) -> str:
    """The BTS 8 regular export: 'Cycle Index' / 'Step Index' / 'DataPoint' headers, the first step written on
    the first cycle's line, one step 'Capacity(Ah)' for both directions, 'Total Time', a mangled 'T1(?)' unit, and
    cycle rows holding the cycle's charge and discharge (what the records must add up to)."""
    head = ["Cycle Index,Chg. Cap.(Ah),DChg. Cap.(Ah),Chg.-DChg. Eff(%),Chg. Energy(Wh),DChg. Energy(Wh)",
            ",Step Index,Step Number,Step Type,Step Time,Capacity(Ah),Energy(Wh)",
            ",,DataPoint,Time,Total Time,Current(A),Voltage(V),Capacity(Ah),Energy(Wh),Date,T1(?)"]
    body, rec, total = [], 1, 0
    for c in range(1, n_cycles + 1):
        qc, qd = 0.30 + 0.01 * c, 0.29 + 0.01 * c  # the cycle's charge and discharge, Ah
        cycle_line = f"{c},{qc:.5f},{qd:.5f},99.0,1.2,1.1"
        steps = (("CC Chg", 0.5, qc / 2), ("CC Chg", 0.5, qc / 2), ("Rest", 0.0, 0.0), ("CC DChg", -0.5, qd))
        for s, (kind, amps, q) in enumerate(steps, start=1):
            step_line = f"{4 * (c - 1) + s},{s},{kind},00:10:00,{q:.5f},0"
            if s == 1:
                body.append(cycle_line + "," + step_line)  # BTS 8: the first step on the cycle's line
            else:
                body.append(f",{step_line}")
            for k in range(5):
                cap = q * k / 4
                h, m = divmod(total // 60, 60)
                body.append(f",,{rec},00:0{2 * k}:00,{h:02d}:{m:02d}:{total % 60:02d},{amps},{3.6 + 0.1 * k:.4f},"
                            f"{cap:.6f},0,2026-03-06 12:00:00,26.5")
                rec, total = rec + 1, total + 120
    return "\n".join(head + body) + "\n"


def test_neware_regular_bts8_layout_adds_up_to_its_cycle_rows(tmp_path):
    path = tmp_path / "bts8.csv"
    path.write_text(_neware_regular_bts8(3))
    assert detect_format(path) == "neware_csv"
    cell = read_cycler_file(path)
    rows = list(csv.reader(path.read_text().splitlines()))[3:]
    records = [r for r in rows if not r[0] and not r[1] and r[2]]
    cycle_rows = [r for r in rows if r[0]]
    assert len(cell.data) == len(records) and cell.metadata["cycle_rows"] == len(cycle_rows) == 3
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(float(records[-1][6]))
    assert cell.data["temperature_C"].iloc[0] == pytest.approx(float(records[0][10]))
    assert cell.data["step"].iloc[0] == int(cycle_rows[0][6])  # the step written on the cycle's line
    # the records' counters add up to the file's own cycle rows (two charge steps per cycle)
    assert cell.cycles["charge_capacity_Ah"].tolist() == pytest.approx([float(r[1]) for r in cycle_rows], rel=1e-4)
    assert cell.cycles["discharge_capacity_Ah"].tolist() == pytest.approx([float(r[2]) for r in cycle_rows],
                                                                            rel=1e-4)
    last = records[-1][4].split(":")
    assert cell.data["time_s"].iloc[-1] == int(last[0]) * 3600 + int(last[1]) * 60 + int(last[2])


# --------------------------------------------------------------------------- PEC, BaSyTec


def test_pec_export(cycler_files, monkeypatch):
    cell = _read(monkeypatch, cycler_files, PEC)
    lines = _lines(cycler_files / PEC)
    at = next(i for i, line in enumerate(lines) if line.startswith("Test,Cell,"))
    header, rows = _table(lines, at, ",")
    assert cell.format == "pec" and cell.metadata["header_lines"] == at and len(cell.data) == len(rows)
    mv = _col(header, rows, "Voltage (mV)")
    assert cell.data["voltage_V"].iloc[0] == pytest.approx(float(mv[0]) / 1000)
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(float(mv[-1]) / 1000)
    cycles = sorted({int(c) for c in _col(header, rows, "Cycle")})
    assert cell.cycles["cycle"].tolist() == cycles and len(cycles) == 3  # 3 cycles (README)
    ma = np.array([float(v) for v in _col(header, rows, "Current (mA)")]) / 1000
    assert np.allclose(cell.data["current_A"], ma)
    mwh = np.array([float(v) for v in _col(header, rows, "Discharge Capacity (mWh)")]) / 1000
    assert np.allclose(cell.data["discharge_energy_Wh"], mwh)  # PEC's 'Capacity (mWh)' is an energy


def test_pec_shorter_metadata_header(cycler_files, tmp_path):
    lines = _lines(cycler_files / PEC)
    at = next(i for i, line in enumerate(lines) if line.startswith("Test,Cell,"))
    path = tmp_path / "pec_short.csv"
    path.write_text("\n".join(lines[:3] + lines[at:at + 51]) + "\n")  # header + 50 rows
    cell = read_cycler_file(path)
    assert cell.format == "pec" and cell.metadata["header_lines"] == 3 and len(cell.data) == 50


def test_pec_total_time_as_hh_mm_ss(tmp_path):
    path = tmp_path / "Test1.csv"
    path.write_text("Test:,1\nTest,Cell,Step,Instruction Name,Cycle,Total Time (Hours in hh:mm:ss.xxx),"
                    "Load On Time (Hours in hh:mm:ss.xxx),Step Time (Seconds),Voltage (V),Current (A),"
                    "Charge Capacity (mAh),Discharge Capacity (mAh),Charge Energy (mWh)\n"
                    "1,1,1,Discharge,0,00:00:00.002,00:00:00.000,0.002,3.5,-1,0,0,0\n"
                    "1,1,1,Discharge,0,25:00:00.502,25:00:00.000,90000.5,3.0,-1,0,1000,0\n")
    cell = read_cycler_file(path)
    assert cell.format == "pec" and cell.data["time_s"].tolist() == pytest.approx([0.002, 90000.502])
    assert cell.data["discharge_capacity_Ah"].tolist() == [0, 1.0] and cell.data["voltage_V"].tolist() == [3.5, 3.0]


def test_basytec_export(cycler_files, monkeypatch):
    cell = _read(monkeypatch, cycler_files, BASYTEC)
    lines = _lines(cycler_files / BASYTEC)
    at = max(i for i, line in enumerate(lines) if line.startswith("~"))
    header, rows = _table(lines, at, "\t")
    assert cell.format == "basytec" and len(cell.data) == len(rows) == 74  # 74 rows (README)
    volts = _col(header, rows, "U[V]")
    assert cell.data["voltage_V"].iloc[0] == pytest.approx(float(volts[0]))
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(float(volts[-1]))
    assert cell.data["time_s"].iloc[-1] == pytest.approx(float(_col(header, rows, "~Time[s]")[-1]))
    assert cell.data["cycle"].tolist() == [int(c) for c in _col(header, rows, "Cyc-Count")]
    assert cell.usable_cycles == []  # a format sample: no full cycle


def test_basytec_decimal_commas_and_fewer_header_lines(tmp_path):
    text = "~Resultfile from Basytec Battery Test System\n~Time[s];U[V];I[A];Cyc-Count\n0;3,5;1,0;1\n10;3,6;-1,0;1\n"
    path = tmp_path / "b.TXT"
    path.write_bytes(text.encode("latin-1"))
    cell = read_cycler_file(path)
    assert cell.format == "basytec" and cell.data["voltage_V"].tolist() == [3.5, 3.6]
    assert cell.data["current_A"].tolist() == [1.0, -1.0]


# --------------------------------------------------------------------------- BDF, plain CSV with units


def test_bdf_preferred_labels(tmp_path):
    text = ("Test Time / h,Voltage / V,Current / mA,Unix Time / s,Cycle Count / 1,Step Index / 1,"
            "Charging Capacity / Ah,Discharging Capacity / Ah,Ambient Temperature / degC,Net Capacity / Ah\n"
            "0,3.5,1000,1.7e9,1,1,0,0,25,0\n1,4.2,1000,1.7e9,1,1,1,0,25,1\n"
            "1.5,4.0,-1000,1.7e9,1,2,1,0.5,26,0.5\n2,3.0,-1000,1.7e9,1,2,1,1,26,0\n")
    path = tmp_path / "cell.bdf.csv"
    path.write_text(text)
    assert detect_format(path) == "bdf"
    cell = read_cycler_file(path)
    assert cell.data["time_s"].tolist() == [0, 3600, 5400, 7200]
    assert cell.data["current_A"].tolist() == [1, 1, -1, -1] and cell.data["step"].tolist() == [1, 1, 2, 2]
    assert cell.cycles["discharge_capacity_Ah"].tolist() == [1.0] and cell.data["temperature_C"].iloc[-1] == 26
    assert "Net Capacity / Ah" in cell.metadata["other_columns"]


def test_bdf_step_type_decides_the_sign_and_restarting_counters_add_up(tmp_path):
    # current positive on the 'discharge' steps (cellpy's BaTMo BDF example does this), a counter per step
    text = ("Test Time / h,Current / A,Voltage / V,Step Type / 1,Cycle Count / 1,Step Index / 1,"
            "Charge Capacity / Ah,Discharge Capacity / Ah\n"
            "0,0.5,3.3,discharge,1,1,0,0\n1,0.5,3.1,discharge,1,1,0,0.5\n2,0,3.2,rest,1,2,0,0\n"
            "3,0.5,3.1,discharge,1,3,0,0.25\n4,-0.5,3.6,charge,1,4,0,0\n5,-0.5,3.8,charge,1,4,0.5,0\n")
    path = tmp_path / "batmo.csv"
    path.write_text(text)
    cell = read_cycler_file(path)
    assert cell.format == "bdf" and cell.data["current_A"].tolist() == [-0.5, -0.5, 0, -0.5, 0.5, 0.5]
    assert "discharge" in cell.metadata["current_sign"]
    assert cell.cycles[["discharge_capacity_Ah", "charge_capacity_Ah"]].values.tolist() == [[0.75, 0.5]]


def test_bdf_machine_names_without_cycle_count(tmp_path):
    text = "test_time_second,voltage_volt,current_ampere\n0,3.5,1\n1,4.2,-1\n2,3.6,1\n3,4.1,-1\n"
    path = tmp_path / "m.csv"
    path.write_text(text)
    cell = read_cycler_file(path)
    assert cell.format == "bdf" and cell.data["cycle"].tolist() == [1, 1, 2, 2]
    assert "is missing" in cell.metadata["cycles_derived"]


def test_voltage_in_millivolts_is_read_as_volts(tmp_path):
    path = tmp_path / "mv.csv"
    path.write_text("Cycle,Test Time (s),Voltage (mV),Current (mA),Discharge Capacity (mAh)\n"
                    "1,0,3700,-500,0\n1,3600,3300,-500,500\n")
    cell = read_cycler_file(path)
    assert cell.data["voltage_V"].tolist() == pytest.approx([3.7, 3.3])  # not 3700 V
    assert cell.data["current_A"].tolist() == [-0.5, -0.5]
    assert cell.cycles["discharge_capacity_Ah"].tolist() == [0.5]
    assert cell.cycles["mean_discharge_voltage_V"].iloc[0] < 5


def test_plain_csv_units_in_headers(tmp_path):
    # units written as '(h)', ' / unit' and Maccor-style words: converted, whatever the spelling
    path = tmp_path / "units.csv"
    path.write_text("cycle;Time (h);Current / mA;Voltage / V;Discharge Capacity (mAmp-hr);Discharge Energy [mWh]\n"
                    "1;0;-500;3,7;0;0\n1;1;-500;3,5;500;1800\n1;2;-500;3,1;1000;3500\n")
    cell = read_cycler_file(path)
    assert cell.format == "csv" and cell.data["time_s"].tolist() == [0, 3600, 7200]
    assert cell.data["current_A"].tolist() == [-0.5] * 3 and cell.data["voltage_V"].tolist() == [3.7, 3.5, 3.1]
    assert cell.cycles["discharge_capacity_Ah"].tolist() == [1.0]
    assert cell.cycles["discharge_energy_Wh"].tolist() == pytest.approx([3.5])


def test_mpt_half_cycle_is_the_step_without_ns(tmp_path):
    path = tmp_path / "hc.mpt"
    path.write_bytes(("EC-Lab ASCII FILE\r\nNb header lines : 3\r\n\r\n"
                      "time/s\tEwe/V\tI/mA\thalf cycle\tcycle number\r\n"
                      "0\t3,4\t1\t0\t0\r\n1\t3,5\t-1\t1\t0\r\n").encode("latin-1"))
    with pytest.raises(DataFileError, match=r"hc\.mpt: .*'Nb header lines : 3' but line 3 is not the column header"):
        read_cycler_file(path)
    path.write_bytes(path.read_bytes().replace(b"Nb header lines : 3", b"Nb header lines : 4"))
    cell = read_cycler_file(path)
    assert cell.data["step"].tolist() == [0, 1] and cell.data["cycle"].tolist() == [0, 0]


# --------------------------------------------------------------------------- the five older files, relative paths


def test_old_files_read_with_relative_paths(cycler_files, monkeypatch):
    monkeypatch.chdir(cycler_files)
    # Arbin x2 (comma CSV)
    for name in ("FastCharge_000025_CH8.csv", "2017-05-09_test-TC-contact_CH33.csv"):
        cell = read_cycler_file(name)
        header, rows = _table(_lines(Path(name)), 0, ",")
        assert cell.format == "arbin" and len(cell.data) == len(rows)
        v = _col(header, rows, "Voltage")
        assert cell.data["voltage_V"].iloc[[0, -1]].tolist() == pytest.approx([float(v[0]), float(v[-1])])
    # Maccor raw .052 (one metadata line)
    cell = read_cycler_file("PredictionDiagnostics_000151_test.052")
    header, rows = _table(_lines(Path("PredictionDiagnostics_000151_test.052")), 1, "\t")
    assert cell.format == "maccor" and len(cell.data) == len(rows)
    v = _col(header, rows, "Volts")
    assert cell.data["voltage_V"].iloc[[0, -1]].tolist() == pytest.approx([float(v[0]), float(v[-1])])
    assert cell.cycles["cycle"].tolist() == sorted({int(c) for c in _col(header, rows, "Cyc#")})
    # BioLogic ';' export
    name = "test_loopsnewoutput_MB_CE1_short10k.csv"
    cell = read_cycler_file(name)
    header, rows = _table(_lines(Path(name), "latin-1"), 0, ";")
    assert cell.format == "biologic" and len(cell.data) == len(rows)
    v = _col(header, rows, "Ecell/V")
    assert cell.data["voltage_V"].iloc[[0, -1]].tolist() == pytest.approx([_num(v[0]), _num(v[-1])])
    assert len(cell.cycles) == len({_num(c) for c in _col(header, rows, "cycle number")})
    # Novonix: a quoted header after [Summary]/[Protocol] sections, each line quoted as a whole
    name = "test_Nova_Form-CH01-01_short.csv"
    cell = read_cycler_file(name)
    lines = [line.strip().strip('"') for line in _lines(Path(name))]
    at = next(i for i, line in enumerate(lines) if line.startswith("Date and Time,Cycle Number"))
    header, rows = _table(lines, at, ",")
    assert cell.format == "novonix" and len(cell.data) == len(rows)
    v = _col(header, rows, "Potential (V)")
    assert cell.data["voltage_V"].iloc[[0, -1]].tolist() == pytest.approx([float(v[0]), float(v[-1])])


def test_novonix_with_24_hour_stamps_reads_when_beep_refuses_it(cycler_files, tmp_path):
    # newer Novonix UHPC files write '2025-07-19 15:26:20' (no AM/PM); BEEP's parser aborts on them
    import datetime as dt

    src = cycler_files / "test_Nova_Form-CH01-01_short.csv"
    lines = _lines(src)

    def to24(line: str) -> str:
        m = re.match(r'^"?(\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}:\d{2} [AP]M)(,.*?)"?$', line)
        if not m:
            return line
        stamp = dt.datetime.strptime(m.group(1), "%Y-%m-%d %I:%M:%S %p").strftime("%Y-%m-%d %H:%M:%S")
        return stamp + m.group(2)

    new = [to24(line) for line in lines]
    assert sum(a != b for a, b in zip(lines, new, strict=True)) > 3000
    (tmp_path / "nova24.csv").write_text("\n".join(new) + "\n", encoding="utf-8")
    cell = read_cycler_file(tmp_path / "nova24.csv")
    ref = read_cycler_file(src)
    assert cell.format == "novonix" and "beep's Novonix reader failed" in cell.metadata["reader"]
    assert len(cell.data) == len(ref.data)
    for col in ("time_s", "current_A", "voltage_V", "cycle", "step"):
        assert np.allclose(cell.data[col].astype(float), ref.data[col].astype(float), rtol=1e-6)


# --------------------------------------------------------------------------- bad input


_HEADERS = {
    "mpt": "EC-Lab ASCII FILE\nNb header lines : 3\n\ntime/s\tEwe/V\t<I>/mA\tcycle number\n",
    "maccor": "Today's Date\t01/01/2024\nRec#\tCyc#\tStep\tTestTime\tAmp-hr\tAmps\tVolts\tState\n",
    "neware": "DataPoint,Cycle Index,Step Index,Step Type,Total Time,Current(A),Voltage(V),DChg. Cap.(Ah)\n",
    "neware_regular": ("Cycle ID,Cap_Chg(mAh)\n,Step ID,Step Name\n"
                       ",,Record ID,Time(h:min:s.ms),Voltage(V),Current(mA)\n"),
    "pec": "Test:,1\nTest,Step,Cycle,Total Time (Seconds),Voltage (mV),Current (mA)\n",
    "basytec": "~Resultfile from Basytec Battery Test System\n~Time[s]\tU[V]\tI[A]\tCyc-Count\n",
    "bdf": "Test Time / s,Voltage / V,Current / A,Cycle Count / 1\n",
}
_FORMAT = {"mpt": "biologic", "maccor": "maccor_text", "neware": "neware_csv", "neware_regular": "neware_csv",
           "pec": "pec", "basytec": "basytec", "bdf": "bdf"}


@pytest.mark.parametrize("kind", sorted(_HEADERS))
def test_header_only_files_are_one_line_errors(tmp_path, kind):
    path = tmp_path / f"{kind}_header.txt"
    path.write_text(_HEADERS[kind].replace("Nb header lines : 3\n\n", "Nb header lines : 3\n"))
    assert detect_format(path) == _FORMAT[kind]
    with pytest.raises(DataFileError) as err:
        read_cycler_file(path)
    assert "header only" in str(err.value) and path.name in str(err.value) and "\n" not in str(err.value)


_TYPO = {
    "mpt": ("time/s\tEwe/V\t<I>/mA\tcycle number\n0\t3,4\t1\t0\n1\t3,5\toops\t0\n", "<I>/mA"),
    "maccor": ("X\t1\nRec#\tCyc#\tStep\tTestTime\tAmps\tVolts\tState\n1\t0\t1\t0d 00:00:00\t1\t3.5\tC\n"
               "2\t0\t1\t0d 00:00:01\toops\t3.5\tC\n", "Amps"),
    "neware": ("Cycle Index,Step Index,Step Type,Total Time,Current(A),Voltage(V),DChg. Cap.(Ah)\n"
               "1,1,CC Chg,00:00:00,1,3.5,0\n1,1,CC Chg,00:00:01,oops,3.5,0\n", "Current(A)"),
    "pec": ("Test:,1\nTest,Step,Cycle,Total Time (Seconds),Voltage (mV),Current (mA)\n1,1,0,0,3500,1\n"
            "1,1,0,1,3500,oops\n", "Current (mA)"),
    "basytec": ("~Basytec\n~Time[s]\tU[V]\tI[A]\tCyc-Count\n0\t3.5\t1\t1\n1\t3.5\toops\t1\n", "I[A]"),
    "bdf": ("Test Time / s,Voltage / V,Current / A\n0,3.5,1\n1,3.5,oops\n", "Current / A"),
}


@pytest.mark.parametrize("kind", sorted(_TYPO))
def test_text_in_the_current_column_names_file_row_and_column(tmp_path, kind):
    text, column = _TYPO[kind]
    path = tmp_path / f"{kind}_typo.txt"
    path.write_text(text)
    with pytest.raises(DataFileError) as err:
        read_cycler_file(path)
    msg = str(err.value)
    assert path.name in msg and "row 2" in msg and repr(column) in msg and "'oops' is not a number" in msg


@pytest.mark.parametrize("kind", sorted(_TYPO))
def test_text_in_the_voltage_column_is_an_error_too(tmp_path, kind):
    text, column = _TYPO[kind]
    lines = text.splitlines()
    sep = "\t" if "\t" in lines[-1] else ("," if "," in lines[-1] else ";")
    header = lines[-3].split(sep)  # every text has a header and two data rows
    vcol = next(i for i, h in enumerate(header) if re.match(r"(Ewe|Volt|U\[|Voltage)", h.strip()))
    good = lines[-2].split(sep)
    good[vcol] = "3.x5"
    lines[-1] = sep.join(good)
    path = tmp_path / f"{kind}_vtypo.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=rf"{kind}_vtypo\.txt: row 2, column '.*': '3\.x5' is not a number"):
        read_cycler_file(path)


@pytest.mark.parametrize("name", ["empty.mpt", "empty.txt", "EMPTY.CSV", "blank.070"])
def test_empty_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"" if "blank" not in name else b"\r\n \r\n")
    with pytest.raises(DataFileError, match=rf"{re.escape(name)}: empty file"):
        read_cycler_file(path)
