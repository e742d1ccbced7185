"""Reading cycler files: battlab's ``read_cycler_file`` vs the maintained reader called directly, per format.

Run ``python benchmarks/cycling_read.py [FOLDER] [--repeat 3]`` (FOLDER: default ``../shared/datasets/cycler_files``
beside the repository, i.e. ``shared/datasets/cycler_files`` next to the clone).

What is measured, in one process, for every data file of FOLDER (every file but ``*_metadata.*`` companions and
``LICENSE*``), the current folder being FOLDER so that files are named relative, as users type them:

* battlab: ``read_cycler_file(name)``: format detection from the content, the reader, the tidy table in SI units,
  derived cycles when the file's never increment and the per-cycle summaries, best of ``--repeat``.
* the maintained reader on the same file, called directly, best of ``--repeat``, chosen by the format battlab
  detected:

  - ``biologic_mpr``: ``galvani.BioLogic.MPRfile`` (+ ``pd.DataFrame`` of its record array);
  - ``neware`` (.nda, .ndax): ``NewareNDA.read``;
  - ``arbin_res``: ``mdb-export`` of ``Channel_Normal_Table`` and ``Global_Table`` + ``pandas.read_csv`` (cellpy's
    way on Linux);
  - ``excel``: ``pandas.read_excel(sheet_name=None)`` (openpyxl);
  - ``arbin``, ``maccor``, ``novonix``, ``indigo``: beep's ``ArbinDatapath`` / ``MaccorDatapath`` /
    ``NovonixDatapath`` / ``IndigoDatapath.from_file``;
  - every text format battlab reads itself (``biologic`` text, ``maccor_text``, ``neware_csv``, ``pec``,
    ``basytec``, ``bdf``, ``csv``, and any text format registered later): ``pandas.read_csv`` with the header row,
    separator, decimal mark and encoding found in the file by :func:`text_layout` (the same skip rows and
    separator a user would pass by hand), numbers parsed by pandas.

Figures (``name: value``): per format, ``points_per_second_<format>`` (rows of battlab's tidy table per second,
summed over the format's files), ``reader_points_per_second_<format>``, ``overhead_<format>`` (battlab seconds /
reader seconds over the format's files), and where battlab's time goes: ``format_module_overhead_<format>`` (the
format module's ``read`` alone, timed the same way, / reader seconds) and ``entry_point_share_<format>`` (the share
of battlab's time spent outside it: detection, dtypes, derived cycles, per-cycle summaries); per file whose reader
table has another number of rows than battlab's, ``rows_<file>: reader R battlab B`` (a pandas baseline that took
metadata lines for data, or a reader that drops points); ``max_overhead`` over the formats; last,
``cycler_files_read: K of N``. Goal: overhead <= 1.5x.
Exits 1 (message on stderr) if FOLDER holds no data file, if a maintained reader fails on a file battlab reads, or
if battlab reads none.

Measured (2 cores shared with other sessions, best of 3, 2026-12-02, three runs of about 35 s, after the text readers
parse numbers in pandas' C parser, durations and counters vectorised, sniffers with substring pre-tests):
``cycler_files_read: 17 of 17``; ``overhead_`` indigo 0.16-0.18, excel 0.62-1.38, maccor 0.74-2.40, novonix
0.87-1.22, neware 1.04-1.26, arbin_res 1.12-1.64, arbin 1.35-1.51, pec 1.25-1.74 (was 4.8-7.7), neware_csv 1.62-2.04
(1.09 in a quieter run; was 5.3-8.7), maccor_text 1.97-2.46 (was 4.5-6.6), biologic 2.06-3.25 (was 4.5-7.9),
biologic_mpr 3.82-4.94, basytec 5.68-6.10 (was 9.2-18.6); ``max_overhead`` 5.68-6.10 (basytec),
``overall_overhead`` 1.00-1.32, 5-7 of 13 formats within the goal. The BaSyTec and small EC-Lab samples have 74 and
132 rows: pandas.read_csv takes 2-4 ms, battlab 10-12 ms, which is the fixed cost of some 60 pandas operations
(~0.1 ms each: column mapping, checks, the tidy frame, derived cycles and summaries; ``entry_point_share_basytec``
0.44), not time per row. Timings of files this small vary by 30-50 % between runs on this machine.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "datasets" / "cycler_files"
GOAL = 1.5


def data_files(folder: Path) -> list[str]:
    """Names of the data files of ``folder``: every file but metadata companions and licences."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.upper().startswith("LICENSE")
                  and not re.search(r"_metadata\.[^.]+$", p.name, re.IGNORECASE))


def _numberish(field: str) -> bool:
    try:
        float(field.strip().strip('"').replace(",", "."))
        return True
    except ValueError:
        return False


def text_layout(path: str) -> dict[str, Any]:
    """``pandas.read_csv`` arguments for a delimited text export, found from its first 64 kB: the separator (tab,
    then ``;``, then ``,``), the header row (the line before the first of three lines with the same number of
    separators, at least half of their non-empty fields numbers), the decimal mark and the encoding.

    Example
    -------
    >>> import tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "x.txt")
    >>> _ = open(p, "w").write("Test: 1\\nDate: today\\n\\na;b;c;\\n1,5;2;3\\n2,5;3;4\\n3,5;4;5\\n4,5;5;6\\n")
    >>> text_layout(p)
    {'sep': ';', 'skiprows': 3, 'decimal': ',', 'encoding': 'utf-8'}
    """
    head = open(path, "rb").read(64_000)
    try:
        text, encoding = head.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = head.decode("latin-1"), "latin-1"
    lines = text.splitlines()[:-1] or text.splitlines()
    for sep in ("\t", ";", ","):
        counts = [line.count(sep) for line in lines]
        for d in range(1, len(lines) - 2):
            if not counts[d] >= 2 or not counts[d] == counts[d + 1] == counts[d + 2]:
                continue
            fields = lines[d].split(sep)
            filled = [f for f in fields if f.strip().strip('"')]
            if sum(map(_numberish, filled)) * 2 < len(filled) or counts[d - 1] < 2:
                continue
            comma = sep != "," and any(re.fullmatch(r"\s*-?\d+,\d+(?:[eE][-+]?\d+)?\s*", f) for f in fields)
            return {"sep": sep, "skiprows": d - 1, "decimal": "," if comma else ".", "encoding": encoding}
    raise ValueError(f"{path}: no delimited table found in the first 64 kB")


def _pandas_text(path: str) -> pd.DataFrame:
    return pd.read_csv(path, index_col=False, low_memory=False, **text_layout(path))


def _galvani(path: str) -> pd.DataFrame:
    from galvani import BioLogic

    return pd.DataFrame(BioLogic.MPRfile(path).data)


def _newarenda(path: str) -> pd.DataFrame:
    import NewareNDA

    return NewareNDA.read(path)


def _mdb(path: str) -> pd.DataFrame:
    tables = {}
    for table in ("Channel_Normal_Table", "Global_Table"):
        out = subprocess.run(["mdb-export", path, table], capture_output=True, text=True, check=True).stdout
        tables[table] = pd.read_csv(io.StringIO(out))
    return tables["Channel_Normal_Table"]


def _excel(path: str) -> pd.DataFrame:
    sheets = pd.read_excel(path, sheet_name=None)
    return max(sheets.values(), key=len)  # the data sheet (the others hold the test's settings)


def _beep(kind: str) -> Callable[[str], pd.DataFrame]:
    def read(path: str) -> pd.DataFrame:
        import importlib

        module = importlib.import_module(f"beep.structure.{kind.lower()}")
        return getattr(module, f"{kind}Datapath").from_file(os.path.abspath(path)).raw_data

    return read


#: battlab's format -> the maintained reader on the same file. Formats not listed: pandas when text.
READERS: dict[str, tuple[str, Callable[[str], pd.DataFrame]]] = {
    "biologic_mpr": ("galvani.BioLogic.MPRfile", _galvani),
    "neware": ("NewareNDA.read", _newarenda),
    "arbin_res": ("mdb-export + pandas.read_csv", _mdb),
    "excel": ("pandas.read_excel (openpyxl)", _excel),
    "arbin": ("beep ArbinDatapath", _beep("Arbin")),
    "maccor": ("beep MaccorDatapath", _beep("Maccor")),
    "novonix": ("beep NovonixDatapath", _beep("Novonix")),
    "indigo": ("beep IndigoDatapath", _beep("Indigo")),
}


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The shortest of ``repeat`` wall-clock times of ``fn()`` and its last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(DEFAULT), help=f"folder of cycler files (default {DEFAULT})")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    args = ap.parse_args()
    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        _fail(f"{folder}: no such folder")
    names = data_files(folder)
    if not names:
        _fail(f"{folder}: no data files")
    os.chdir(folder)  # files named relative, as users type them

    from battlab.cycling.formats import by_name, is_binary, read_head
    from battlab.cycling.read import read_cycler_file
    from battlab.errors import BattlabError

    ours: dict[str, float] = defaultdict(float)
    module: dict[str, float] = defaultdict(float)
    theirs: dict[str, float] = defaultdict(float)
    points: dict[str, int] = defaultdict(int)
    reader_rows: dict[str, int] = defaultdict(int)
    read_ok = 0
    problems = []
    for name in names:
        try:
            t_ours, cell = best_of(lambda n=name: read_cycler_file(n), args.repeat)
        except BattlabError as exc:
            print(f"not_read_{name}: {str(exc).splitlines()[0]}")
            continue
        read_ok += 1
        fmt = cell.format
        if fmt in READERS:
            label, reader = READERS[fmt]
        elif not is_binary(read_head(Path(name))):
            label, reader = "pandas.read_csv", _pandas_text
        else:
            problems.append(f"{name}: no maintained reader listed for the binary format {fmt}")
            continue
        try:
            t_theirs, table = best_of(lambda n=name, r=reader: r(n), args.repeat)
        except Exception as exc:
            problems.append(f"{name}: {label} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            continue
        t_module, _ = best_of(lambda n=name, f=fmt: by_name(f).read(Path(n)), args.repeat)
        ours[fmt] += t_ours
        module[fmt] += t_module
        theirs[fmt] += t_theirs
        points[fmt] += len(cell.data)
        reader_rows[fmt] += len(table)
        print(f"file_{name}: {fmt}, {len(cell.data)} points, battlab {t_ours:.4f} s, {label} {t_theirs:.4f} s "
              f"({t_ours / t_theirs:.2f}x)")
        if len(table) != len(cell.data):
            print(f"rows_{name}: reader {len(table)} battlab {len(cell.data)}")
    overheads = {}
    for fmt in sorted(ours):
        overheads[fmt] = ours[fmt] / theirs[fmt]
        print(f"points_per_second_{fmt}: {points[fmt] / ours[fmt]:.0f}")
        print(f"reader_points_per_second_{fmt}: {reader_rows[fmt] / theirs[fmt]:.0f}")
        print(f"overhead_{fmt}: {overheads[fmt]:.2f}")
        print(f"format_module_overhead_{fmt}: {module[fmt] / theirs[fmt]:.2f}")
        print(f"entry_point_share_{fmt}: {max(ours[fmt] - module[fmt], 0.0) / ours[fmt]:.2f}")
    if overheads:
        worst = max(overheads, key=overheads.get)
        print(f"max_overhead: {overheads[worst]:.2f} ({worst}; goal <= {GOAL})")
        print(f"formats_within_goal: {sum(v <= GOAL for v in overheads.values())} of {len(overheads)}")
        total = sum(ours.values()) / sum(theirs.values())
        print(f"overall_overhead: {total:.2f}")
        print(f"median_overhead: {float(np.median(list(overheads.values()))):.2f}")
    for p in problems:
        print(f"could not measure: {p}", file=sys.stderr)
    print(f"cycler_files_read: {read_ok} of {len(names)}")
    if problems or not read_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
