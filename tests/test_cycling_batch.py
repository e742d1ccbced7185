"""Many cycler files at once (battlab.cycling.batch, ``battlab cycling read DIR_OR_GLOB``), paths as users type
them (relative, ``~``, spaces and brackets, upper-case extensions) in the CLI, the Python API and the app's upload,
and the README's cycling commands run exactly as written."""

from __future__ import annotations

import csv
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shared_data import SHARED_DATASETS
from test_apps_browser import open_app, upload, voila  # noqa: F401  (voila: the Voilà server fixture)

from battlab.cycling.batch import SUMMARY_COLUMNS, CellBatch, expand_paths, read_cycler_files
from battlab.cycling.formats import is_binary, read_head
from battlab.cycling.read import CellData, read_cycler_file
from battlab.errors import BattlabError

REPO = Path(__file__).resolve().parents[1]
ARBIN = "FastCharge_000025_CH8.csv"  # the file the README's first cycling command reads


def _is_companion_or_licence(name: str) -> bool:
    return name.upper().startswith("LICENSE") or bool(re.search(r"_metadata\.[^.]+$", name, re.IGNORECASE))


def _data_file_names() -> list[str]:
    """The data files in cycler_files (for parametrizing; empty when the folder is absent: the tests then skip)."""
    folder = SHARED_DATASETS / "cycler_files"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not _is_companion_or_licence(p.name))


def _arbin_raw(path: Path) -> list[dict[str, str]]:
    """The Arbin CSV's rows as the csv module reads them (independent of battlab)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _check_arbin_cell(cell: CellData, raw: list[dict[str, str]]) -> None:
    assert len(cell.data) == len(raw)
    assert cell.data["voltage_V"].iloc[0] == pytest.approx(float(raw[0]["Voltage"]))
    assert cell.data["voltage_V"].iloc[-1] == pytest.approx(float(raw[-1]["Voltage"]))
    assert cell.data["time_s"].iloc[-1] == pytest.approx(float(raw[-1]["Test_Time"]))


def _cycle_csv(path: Path, n_cycles: int = 2, q: float = 1.0, newline: str = "\n", cycle_col: bool = True) -> Path:
    """A plain CSV of ``n_cycles`` charge/discharge cycles (discharge capacity ``q`` Ah each: 1 A for q hours)."""
    rows, t = [], 0.0
    for c in range(1, n_cycles + 1):
        for i, v in ((1.0, 3.4), (1.0, 3.6), (-1.0, 3.3), (-1.0, 3.2), (-1.0, 3.1), (-1.0, 3.0)):
            rows.append({"cycle": c, "time_s": t, "current_A": i, "voltage_V": v})
            t += 3600 * q / 3 if i < 0 else 1800 * q
    frame = pd.DataFrame(rows)
    if not cycle_col:
        frame = frame.drop(columns="cycle")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(frame.to_csv(index=False, lineterminator=newline).encode())
    return path


def _cli(*argv: str) -> int:
    from battlab.cli import main

    return main(list(argv))


# --------------------------------------------------------------------------- the README, exactly as written


def _readme_cycling_commands() -> list[str]:
    """The ``battlab cycling read`` lines of the first code block under "## Cell cycling" in docs/cycling.md."""
    text = (REPO / "docs" / "cycling.md").read_text()
    section = text.split("\n## Cell cycling", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:bash|console|sh)?\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip().startswith("battlab cycling read ")]


def _shell(line: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one README line in bash, as a user would type it (quotes, globs, ``~`` and comments as the shell
    sees them), with this interpreter's ``battlab`` first on PATH."""
    env = {**os.environ, **(env or {})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_readme_cycling_commands_run_exactly_as_written(cycler_files, tmp_path):
    """Each ``battlab cycling read`` line of the README's "Cell cycling" block, run unchanged in bash.

    The commands name the file relative to the current folder and write ``--out cell8/`` there, and the folder of
    the real files is read-only (and must not be copied). The honest way to run them exactly as written: the
    current folder is a temporary one that holds the README's names as symlinks to the real files (``cycler_files``
    -> the real folder itself), so the relative names the user types are the ones battlab gets, nothing is copied,
    and the outputs land in the temporary folder. (The same first command is also run from the real folder with
    only its ``--out`` made absolute, in the next test.)
    """
    lines = _readme_cycling_commands()
    assert lines, "docs/cycling.md: no `battlab cycling read` command under ## Cell cycling"
    assert shlex.split(lines[0], comments=True) == ["battlab", "cycling", "read", ARBIN, "--out", "cell8/"]
    (tmp_path / ARBIN).symlink_to(cycler_files / ARBIN)
    (tmp_path / "cycler_files").symlink_to(cycler_files, target_is_directory=True)
    raw = _arbin_raw(cycler_files / ARBIN)
    for line in lines:
        args = shlex.split(line, comments=True)
        out = Path(args[args.index("--out") + 1])
        inputs = args[3:args.index("--out")]
        result = _shell(line, tmp_path)
        if len(inputs) == 1 and (tmp_path / inputs[0]).is_file():  # one file: today's layout
            assert result.returncode == 0, (line, result.stderr)
            cell = CellData.load(tmp_path / out)
            assert cell.source == inputs[0]  # the path as typed
            if inputs[0] == ARBIN:
                _check_arbin_cell(cell, raw)
            continue
        # several files, a folder or a glob: the batch layout, every file accounted for, exit code says if any failed
        summary = pd.read_csv(tmp_path / out / "summary.csv", dtype={"cell": str, "file": str})
        failures = pd.read_csv(tmp_path / out / "failures.csv", dtype=str)
        companions = pd.read_csv(tmp_path / out / "companions.csv", dtype=str)
        assert result.returncode == (1 if len(failures) else 0), (line, result.stdout, result.stderr)
        expected: list[str] = []
        for item in inputs:
            if (tmp_path / item).is_dir():
                expected += [os.path.join(item, p.name) for p in (tmp_path / item).iterdir()]
            else:
                expected += [os.path.relpath(p, tmp_path) for p in tmp_path.glob(item)]
        listed = list(summary["file"]) + list(failures["file"]) + list(companions["file"])
        assert sorted(os.path.normpath(p) for p in listed) == sorted(os.path.normpath(p) for p in expected)
        for f, reason in failures[["file", "reason"]].itertuples(index=False):
            assert f"not read: {f}: {reason}" in result.stdout
        if not any((tmp_path / item).exists() for item in inputs):  # globs only: each file matches one of them
            assert all(any(fnmatch.fnmatch(f, item) for item in inputs) for f in listed)
        for row in summary.itertuples(index=False):
            cell = CellData.load(tmp_path / out / row.cell)
            assert len(cell.data) == row.points and len(cell.cycles) == row.cycles
            if Path(row.file).name == ARBIN:
                _check_arbin_cell(cell, raw)


def test_readme_first_command_from_the_files_own_folder(cycler_files, tmp_path):
    """The README's first command run in the real (read-only) folder of the file; only ``--out`` points elsewhere,
    since ``cell8/`` cannot be written there."""
    args = shlex.split(_readme_cycling_commands()[0], comments=True)
    args[args.index("--out") + 1] = str(tmp_path / "cell8")
    result = _shell(shlex.join(args), cycler_files)
    assert result.returncode == 0, result.stderr
    cell = CellData.load(tmp_path / "cell8")
    assert cell.source == ARBIN
    _check_arbin_cell(cell, _arbin_raw(cycler_files / ARBIN))


# --------------------------------------------------------------------------- paths as users type them

VARIANTS = ("relative", "tilde", "spaces_and_brackets", "upper_case_extension")


def _typed(kind: str, cycler_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A copy (in tmp_path, not the repository) of the Arbin file under a name as a user types it; the current
    folder and HOME set up so that the typed string names it. Copies, not symlinks: the readers see the name."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    if kind == "relative":
        typed = f"data/{ARBIN}"
    elif kind == "tilde":
        home = tmp_path / "home"
        monkeypatch.setenv("HOME", str(home))
        typed, target = f"~/cells/{ARBIN}", home / "cells" / ARBIN
        target.parent.mkdir(parents=True)
        shutil.copyfile(cycler_files / ARBIN, target)
        return typed
    elif kind == "spaces_and_brackets":
        typed = "61[07005012] cell (2).csv"
    else:
        typed = "CELL8.CSV"
    target = work / typed
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cycler_files / ARBIN, target)
    return typed


@pytest.mark.parametrize("kind", VARIANTS)
def test_paths_as_typed_through_the_python_api(kind, cycler_files, tmp_path, monkeypatch):
    raw = _arbin_raw(cycler_files / ARBIN)
    typed = _typed(kind, cycler_files, tmp_path, monkeypatch)
    cell = read_cycler_file(typed)
    _check_arbin_cell(cell, raw)
    assert cell.name == Path(os.path.expanduser(typed)).stem
    batch = read_cycler_files(typed, progress=False)  # a path that exists is a file, never a glob (brackets)
    assert batch.ok and list(batch.cells) == [cell.name]
    _check_arbin_cell(batch.cells[cell.name], raw)
    batch = read_cycler_files([typed, str(Path(typed).parent / "*")], progress=False)  # the same file twice: once
    assert batch.ok and len(batch.cells) == 1


@pytest.mark.parametrize("kind", VARIANTS)
def test_paths_as_typed_through_the_cli(kind, cycler_files, tmp_path, monkeypatch, capsys, small_model_dir):
    raw = _arbin_raw(cycler_files / ARBIN)
    typed = _typed(kind, cycler_files, tmp_path, monkeypatch)
    assert _cli("cycling", "read", typed, "--out", "~/out cell" if kind == "tilde" else "out [1]/") == 0
    out = Path(os.path.expanduser("~/out cell")) if kind == "tilde" else Path("out [1]")
    _check_arbin_cell(CellData.load(out), raw)
    capsys.readouterr()
    # predict reads the same typed path: it gets to the model's check of the cycles (the file has too few)
    code = _cli("cycling", "predict", typed, "--model", str(small_model_dir))
    err = capsys.readouterr().err
    assert code == 2 and "cycles with a usable discharge" in err and "no such file" not in err, err


@pytest.mark.parametrize("kind", ["spaces_and_brackets", "upper_case_extension"])
def test_paths_as_typed_through_the_app_upload(kind, cycler_files, tmp_path, monkeypatch):
    from battlab.widgets.cycle_life import read_cycler_upload

    typed = _typed(kind, cycler_files, tmp_path, monkeypatch)
    cell = read_cycler_upload(f"C:\\Users\\me\\{typed}", Path(typed).read_bytes())  # a Windows browser's name
    assert cell.source == typed and cell.name == Path(typed).stem
    _check_arbin_cell(cell, _arbin_raw(cycler_files / ARBIN))


@pytest.mark.parametrize("original, typed", [("neware_newarenda_TestFile.nda", "61[07005012].NDA"),
                                             ("neware_newarenda_test_2.ndax", "~/my cells/61[07005012] (2).NDAX")])
def test_a_binary_file_named_as_users_name_it(original, typed, cycler_files, tmp_path, monkeypatch, capsys):
    """The issue's own example (``61[07005012].nda``), upper-case extension, spaces and ``~``: a copy in tmp_path
    read through the API, the batch reader and the CLI; values against NewareNDA reading the original file."""
    newarenda = pytest.importorskip("NewareNDA")
    raw = newarenda.read(str(cycler_files / original))  # the maintained package, on the file as it is
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    target = Path(os.path.expanduser(typed))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cycler_files / original, target)

    def check(cell: CellData) -> None:
        assert cell.format == "neware" and len(cell.data) == len(raw)
        assert cell.data["voltage_V"].iloc[[0, -1]].tolist() == pytest.approx(raw["Voltage"].iloc[[0, -1]].tolist())
        assert cell.data["current_A"].abs().max() == pytest.approx(raw["Current(mA)"].abs().max() / 1000)  # mA -> A

    check(read_cycler_file(typed))
    batch = read_cycler_files([typed], progress=False)
    assert batch.ok
    check(batch.cells[target.stem])
    assert _cli("cycling", "read", typed, "--out", "out") == 0
    check(CellData.load("out"))
    assert target.stem in capsys.readouterr().out


def test_upper_case_extension_and_crlf_of_a_plain_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _cycle_csv(tmp_path / "MY CELL.CSV", n_cycles=3, newline="\r\n")
    batch = read_cycler_files("*.CSV", progress=False)
    assert batch.summary["cycles"].tolist() == [3] and batch.summary["capacity_first_Ah"].iloc[0] == pytest.approx(1)


# --------------------------------------------------------------------------- read_cycler_files


def test_folder_glob_list_and_recursive(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.csv", "b.csv", "sub/c.csv", "sub/deep/d.csv"):
        _cycle_csv(tmp_path / "data" / name)
    batch = read_cycler_files("data", progress=False)
    assert sorted(batch.cells) == ["a", "b"]
    assert batch.failures.values.tolist() == [[os.path.join("data", "sub"), "a sub-folder, not read (recursive=True, "
                                               "or --recursive, reads it)"]]
    batch = read_cycler_files("data/", recursive=True, progress=False)
    assert sorted(batch.cells) == ["a", "b", "c", "d"] and batch.ok
    assert sorted(read_cycler_files("data/**/*.csv", recursive=True, progress=False).cells) == ["a", "b", "c", "d"]
    assert sorted(read_cycler_files("data/*.csv", progress=False).cells) == ["a", "b"]
    assert sorted(read_cycler_files(["data/a.csv", Path("data/sub/c.csv")], progress=False).cells) == ["a", "c"]
    files, missing = expand_paths(["data/a.csv", "data/*.csv"])  # a file named twice is read once
    assert [f.name for f in files] == ["a.csv", "b.csv"] and not missing


def test_cell_names_are_unique(tmp_path):
    for name in ("x/cell.csv", "y/cell.csv", "x/cell.txt", "z/cell.csv"):
        _cycle_csv(tmp_path / name)
    batch = read_cycler_files([tmp_path / "x/cell.csv", tmp_path / "y/cell.csv", tmp_path / "x/cell.txt",
                               tmp_path / "z/cell.csv"], progress=False)
    assert list(batch.cells) == ["cell", "cell_csv", "cell_txt", "z_cell"]
    assert batch.summary["cell"].tolist() == list(batch.cells)
    assert [Path(f).relative_to(tmp_path).as_posix() for f in batch.summary["file"]] == \
        ["x/cell.csv", "y/cell.csv", "x/cell.txt", "z/cell.csv"]
    out = batch.save(tmp_path / "out")
    assert all((out[name] / "cell.json").is_file() for name in batch.cells)


def test_nothing_is_skipped_silently(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _cycle_csv(tmp_path / "d" / "good.csv")
    (tmp_path / "d" / "empty.csv").write_bytes(b"")
    (tmp_path / "d" / "header_only.csv").write_text("cycle,time_s,current_A,voltage_V\n")
    (tmp_path / "d" / "notes.txt").write_text("hello\n")
    (tmp_path / "d" / ".hidden.csv").write_text("hello\n")
    (tmp_path / "d" / "cell.ccs").write_bytes(b"\x00\x01binary" * 100)
    batch = read_cycler_files(["d", "nothing/*.nda", "missing.mpr"], progress=False)
    assert list(batch.cells) == ["good"]
    reasons = dict(zip(batch.failures["file"], batch.failures["reason"], strict=True))
    assert reasons.pop("nothing/*.nda") == "no file matches this pattern"
    assert reasons.pop("missing.mpr") == "no such file or folder"
    assert reasons.pop(os.path.join("d", "empty.csv")) == "empty file"
    assert reasons.pop(os.path.join("d", "header_only.csv")) == "header only, no data rows"
    assert "unknown cycler file format" in reasons.pop(os.path.join("d", "notes.txt"))
    assert "unknown cycler file format" in reasons.pop(os.path.join("d", ".hidden.csv"))
    assert "LANHE .ccs" in reasons.pop(os.path.join("d", "cell.ccs"))
    assert not reasons
    assert all("\n" not in r for r in batch.failures["reason"])
    assert not batch.ok and "1 cell read, 7 files not read" in batch.report()


def test_a_reader_crash_is_listed_not_raised(tmp_path, monkeypatch):
    import battlab.cycling.batch as batch_module

    for name in ("a.csv", "b.csv"):
        _cycle_csv(tmp_path / name)
    real = batch_module.read_cycler_file

    def flaky(path, format=None):
        if Path(path).name == "b.csv":
            raise ZeroDivisionError("a reader bug\nsecond line")
        return real(path, format=format)

    monkeypatch.setattr(batch_module, "read_cycler_file", flaky)
    batch = read_cycler_files(tmp_path, progress=False)
    assert list(batch.cells) == ["a"]
    assert batch.failures["reason"].tolist() == ["ZeroDivisionError: a reader bug"]


def test_metadata_companions_are_listed_not_failures(tmp_path):
    _cycle_csv(tmp_path / "X.csv")
    (tmp_path / "X_Metadata.csv").write_text(",test_id,device_id\n0,153,60369369\n")
    (tmp_path / "Y_metadata.csv").write_text(",test_id,device_id\n0,153,60369369\n")  # no Y.* beside it: a failure
    _cycle_csv(tmp_path / "Z.csv")
    _cycle_csv(tmp_path / "Z_metadata.csv", n_cycles=3)  # a cycler file itself (found from content): a cell
    batch = read_cycler_files(tmp_path, progress=False)
    assert list(batch.cells) == ["X", "Z", "Z_metadata"]
    assert [Path(f).name for f in batch.companions["file"]] == ["X_Metadata.csv"]
    assert [Path(f).name for f in batch.companions["companion_of"]] == ["X.csv"]
    assert [Path(f).name for f in batch.failures["file"]] == ["Y_metadata.csv"]


def test_summary_rows_follow_the_cycle_tables(tmp_path):
    _cycle_csv(tmp_path / "a.csv", n_cycles=3, q=2.0)
    _cycle_csv(tmp_path / "b.csv", n_cycles=2, q=0.5, cycle_col=False)  # no cycle column: derived, and said so
    batch = read_cycler_files(tmp_path, progress=False)
    assert list(batch.summary.columns) == list(SUMMARY_COLUMNS)
    for row in batch.summary.itertuples(index=False):
        cell = batch.cells[row.cell]
        raw = pd.read_csv(row.file)  # the file as pandas reads it
        usable = cell.cycles[cell.cycles["usable"]]
        assert row.points == len(raw) == len(cell.data)
        assert row.format == cell.format and row.cycles == len(cell.cycles) and row.usable_cycles == len(usable)
        assert row.capacity_first_Ah == pytest.approx(usable["discharge_capacity_Ah"].iloc[0])
        assert row.capacity_last_Ah == pytest.approx(usable["discharge_capacity_Ah"].iloc[-1])
        assert row.cycles_derived == ("cycle" not in raw.columns) == ("cycles_derived" in cell.metadata)
        i, t = raw["current_A"].to_numpy(), raw["time_s"].to_numpy()
        within = (i[:-1] < 0) & (i[1:] < 0)  # discharge intervals (each cycle's discharge is one run of points)
        q = float(np.sum(-i[:-1][within] * np.diff(t)[within]) / 3600)
        assert row.capacity_first_Ah == pytest.approx(q / row.cycles)  # the discharge integral, split per cycle
    assert batch.summary["cycles"].tolist() == [3, 2]
    empty = read_cycler_files([], progress=False).summary
    assert list(empty.columns) == list(SUMMARY_COLUMNS) and empty["capacity_first_Ah"].dtype == float


def test_save_and_load_round_trip(tmp_path):
    _cycle_csv(tmp_path / "in" / "a.csv", n_cycles=3)
    (tmp_path / "in" / "bad.txt").write_text("hello\n")
    batch = read_cycler_files(tmp_path / "in", progress=False)
    paths = batch.save(tmp_path / "out")
    assert {p.name for p in paths.values()} == {"a", "summary.csv", "failures.csv", "companions.csv"}
    back = CellBatch.load(tmp_path / "out")
    pd.testing.assert_frame_equal(back.summary, batch.summary, check_dtype=False)
    pd.testing.assert_frame_equal(back.failures, batch.failures, check_dtype=False)
    pd.testing.assert_frame_equal(back.cells["a"].data, batch.cells["a"].data, check_dtype=False)
    with pytest.raises(BattlabError, match="no summary.csv"):
        CellBatch.load(tmp_path / "in")


def test_cells_written_as_read(tmp_path):
    _cycle_csv(tmp_path / "in" / "a.csv", n_cycles=3)
    _cycle_csv(tmp_path / "in" / "b.csv", n_cycles=2, q=0.5)
    (tmp_path / "in" / "bad.txt").write_text("hello\n")
    kept = read_cycler_files(tmp_path / "in", progress=False)
    streamed = read_cycler_files(tmp_path / "in", progress=False, out_dir=tmp_path / "out")
    assert not streamed.cells and "2 cells read, 1 file not read" in streamed.report()  # nothing kept in memory
    pd.testing.assert_frame_equal(streamed.summary, kept.summary)
    back = CellBatch.load(tmp_path / "out")
    assert list(back.cells) == ["a", "b"] and len(back.failures) == 1
    for name, cell in kept.cells.items():
        pd.testing.assert_frame_equal(back.cells[name].data, cell.data, check_dtype=False)


def test_progress_bar(tmp_path, capsys):
    _cycle_csv(tmp_path / "a.csv")
    read_cycler_files(tmp_path, progress=True)
    assert "reading cycler files" in capsys.readouterr().err
    read_cycler_files(tmp_path, progress=False)
    assert "reading cycler files" not in capsys.readouterr().err


def test_the_real_folder_relative(cycler_files, monkeypatch):
    """Every file of cycler_files is a cell, a failure with its reason or a companion, read from its own folder;
    each cell is what read_cycler_file reads from the same file."""
    monkeypatch.chdir(cycler_files)
    batch = read_cycler_files(".", progress=False)
    names = sorted(p.name for p in cycler_files.iterdir() if p.is_file())
    listed = sorted(list(batch.summary["file"]) + list(batch.failures["file"]) + list(batch.companions["file"]))
    assert listed == names
    assert all(_is_companion_or_licence(f) for f in batch.companions["file"])
    assert any(f.upper().startswith("LICENSE") for f in batch.failures["file"])  # a licence text is no cycler file
    for row in batch.summary.itertuples(index=False):
        single = read_cycler_file(row.file)
        pd.testing.assert_frame_equal(batch.cells[row.cell].data, single.data)
    _check_arbin_cell(batch.cells[Path(ARBIN).stem], _arbin_raw(cycler_files / ARBIN))


# --------------------------------------------------------------------------- CLI


def test_cli_batch_exit_codes_and_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _cycle_csv(tmp_path / "cells" / "a.csv", n_cycles=3)
    _cycle_csv(tmp_path / "cells" / "b cell [2].csv", n_cycles=2, q=0.5)
    assert _cli("cycling", "read", "cells", "--out", "tables", "--quiet") == 0  # all read: 0
    out = capsys.readouterr().out
    assert "2 cells read, 0 files not read" in out
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv")
    assert summary["cell"].tolist() == ["a", "b cell [2]"] and summary["cycles"].tolist() == [3, 2]
    assert CellData.load(tmp_path / "tables" / "b cell [2]").cycles["discharge_capacity_Ah"].tolist() == \
        pytest.approx([0.5, 0.5])
    (tmp_path / "cells" / "notes.txt").write_text("hello\n")
    assert _cli("cycling", "read", "cells/*", "missing.nda", "--out", "t2", "--quiet") == 1  # some failed: 1
    out = capsys.readouterr().out
    assert f"not read: {os.path.join('cells', 'notes.txt')}: unknown cycler file format" in out
    assert "not read: missing.nda: no such file or folder" in out
    assert len(pd.read_csv(tmp_path / "t2" / "failures.csv")) == 2
    assert _cli("cycling", "read", "cells/notes.txt", "--out", "t3") == 2  # one bad file: bad input, as before
    assert _cli("cycling", "read", "cells/nothing*.csv", "--out", "t4", "--quiet") == 1  # a glob matching nothing


def test_cli_a_reader_crash_on_one_file_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    import battlab.cycling.read as read_module

    _cycle_csv(tmp_path / "a.csv")

    def crash(path, format=None):
        raise RuntimeError("no column Voltage\ntraceback details")

    monkeypatch.setattr(read_module, "read_cycler_file", crash)
    assert _cli("cycling", "read", str(tmp_path / "a.csv"), "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"battlab cycling: error: {tmp_path / 'a.csv'}: cannot be read as a cycler file "
                   "(RuntimeError: no column Voltage)")


# --------------------------------------------------------------------------- the app


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from battlab.cycling.curves import load_severson_subset
    from battlab.cycling.models import fit_cycle_life

    folder = tmp_path_factory.mktemp("small_model")
    fit_cycle_life(load_severson_subset(), models=("ridge",), n_trials=2, progress=False).save(folder)
    return folder


def test_upload_accepts_every_cycler_extension():
    from battlab.widgets.cycle_life import CycleLifePredictor

    accept = CycleLifePredictor().upload.accept
    wanted = (".mpr", ".mpt", ".nda", ".ndax", ".res", ".xlsx", ".xls", ".h5", ".txt", ".csv", ".052")
    assert accept == "" or all(ext in accept.split(",") for ext in wanted), accept


@pytest.mark.parametrize("name", _data_file_names() or ["<cycler_files absent>"])
def test_every_real_file_uploads_as_it_reads_from_disk(name, cycler_files, monkeypatch):
    """An upload of each real file (binary ones too) gives what read_cycler_file gives for the file on disk, read
    with a relative path; a file battlab cannot read fails the same way, naming the upload."""
    from battlab.widgets.cycle_life import read_cycler_upload

    monkeypatch.chdir(cycler_files)
    content = Path(name).read_bytes()
    try:
        disk = read_cycler_file(name)
    except BattlabError as exc:
        with pytest.raises(BattlabError) as up:
            read_cycler_upload(name, content)
        assert str(up.value) == str(exc) and "battlab-upload-" not in str(up.value)
        return
    up = read_cycler_upload(name, content)
    assert (up.name, up.format, up.source) == (disk.name, disk.format, name)
    pd.testing.assert_frame_equal(up.data, disk.data)
    pd.testing.assert_frame_equal(up.cycles, disk.cycles)


def test_a_binary_upload_reaches_the_model(cycler_files, small_model_dir):
    """The app with a binary cycler file: read, then the model's own check of its cycles (the real files hold far
    fewer than 100 cycles)."""
    from battlab.cycling.curves import load_severson_subset
    from battlab.widgets.cycle_life import CycleLifePredictor

    readable = []
    for name in _data_file_names():
        if is_binary(read_head(cycler_files / name)):
            try:
                readable.append((name, read_cycler_file(cycler_files / name)))
            except BattlabError:
                continue
    if not readable:
        pytest.skip("no binary cycler format is registered yet (battlab.cycling.formats.REGISTRY)")
    app = CycleLifePredictor(small_model_dir, dataset=load_severson_subset())
    for name, disk in readable:
        app.load_bytes(name, (cycler_files / name).read_bytes())
        assert app.cell is not None and app.cell.format == disk.format, (name, app.message)
        assert len(app.cell.data) == len(disk.data)
        n_usable = len(disk.usable_cycles)
        if n_usable < 100:
            assert app.state == "FAIL" and f"the cell has {n_usable} cycles with a usable discharge" in app.message
        assert np.isfinite(app.cell.data["voltage_V"]).any()


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty ``runs/`` for the ``voila`` fixture: the app builds its default model from the shipped subset."""
    return tmp_path_factory.mktemp("runs")


@pytest.mark.browser
def test_app_upload_of_a_binary_file_in_a_browser(browser, voila, cycler_files, tmp_path):  # noqa: F811
    """A binary Neware .ndax, named as users name files (brackets, spaces, upper-case extension), uploaded through
    the cycle_life app's button in Chromium: read (format and points as read_cycler_file reads the original), then
    the model's own check of its cycles."""
    original = cycler_files / "neware_newarenda_test_2.ndax"
    disk = read_cycler_file(original)
    if disk.format != "neware":
        pytest.skip(f"the .ndax is read as {disk.format!r}")
    named = tmp_path / "61[07005012] cell.NDAX"
    shutil.copyfile(original, named)
    page = open_app(browser, voila, "cycle_life")
    upload(page, named)
    page.wait_for_selector(".battlab-cycle-life.battlab-cycle-life-fail", timeout=120_000)
    message = page.inner_text(".battlab-cycle-life-message")
    assert "61[07005012] cell: the model predicts from the first 100 cycles" in message  # after a warning sign
    assert f"the cell has {len(disk.usable_cycles)} cycles with a usable discharge" in message
    info = page.inner_text(".battlab-cycle-life-cell")
    assert f"61[07005012] cell (neware): {len(disk.data)} points" in info
    page.close()
