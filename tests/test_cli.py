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
