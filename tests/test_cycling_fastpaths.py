"""The fast paths of the text readers (issue 19, item 7) give what the per-value paths give.

``read_delimited`` parses numbers in pandas' C parser (decimal mark from the content), ``parse_duration`` splits a
whole column of ``[Nd ]h:mm:ss`` durations in the C parser, ``split_counter`` runs in numpy. Each is checked against
an independent parse in plain Python of the same text.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from battlab.cycling.formats import columns
from battlab.cycling.formats.columns import decimal_mark, parse_duration, read_delimited, split_counter
from battlab.cycling.read import read_cycler_file
from battlab.errors import DataFileError


def _seconds(text: str) -> float:
    """Seconds of one ``[Nd ]h:mm:ss[.f]`` duration, parsed by hand."""
    m = re.fullmatch(r"\s*(?:(\d+)\s*d(?:ays?)?\s*)?(\d+):(\d+):(\d+(?:\.\d*)?)\s*", text)
    assert m, text
    days, h, mins, s = m.groups()
    return int(days or 0) * 86400 + int(h) * 3600 + int(mins) * 60 + float(s)


def _durations(rng: np.random.Generator, n: int, days: str) -> list[str]:
    out = []
    for _ in range(n):
        d = {"none": "", "all": f"{rng.integers(0, 40)}d ", "some": rng.choice(["", "1 days ", "2d"])}[days]
        frac = rng.choice(["", ".", f".{rng.integers(0, 10 ** 6)}"])
        out.append(f"{rng.choice(['', ' ', chr(9)])}{d}{rng.integers(0, 999)}:{rng.integers(0, 60):02d}:"
                   f"{rng.integers(0, 60):0{rng.integers(1, 3)}d}{frac}")
    return out


@pytest.mark.parametrize("days", ["none", "all", "some"])
def test_parse_duration_column_equals_per_value_parse(monkeypatch, days):
    rng = np.random.default_rng(len(days))
    values = _durations(rng, 500, days)
    series = pd.Series(values[:250] + [None] + values[250:], index=np.arange(501) + 3)
    fast = parse_duration(series)
    expected = [np.nan if v is None else _seconds(v) for v in series]
    np.testing.assert_allclose(fast.to_numpy(), expected, rtol=0, atol=1e-9)
    assert list(fast.index) == list(series.index)
    monkeypatch.setattr(columns, "_DURATIONS", re.compile(r"(?!)"))  # the per-value path only
    pd.testing.assert_series_equal(fast, parse_duration(series), check_exact=True)


def test_parse_duration_mixed_with_text_keeps_per_value_rules():
    out = parse_duration(pd.Series(["0:00:01", "12.5", "1:00:00,5", "n/a"]))
    assert out.tolist()[:3] == [1.0, 12.5, 3600.5] and np.isnan(out.iloc[3])


def _reference_counter(cap: list[float], kind: list[str], which: str) -> list[float]:
    """split_counter's rules, one row at a time: a phase runs from a row of its kind to the first row of the other
    kind; rises add, a fall restarts from the value; rows of the other phase are 0."""
    out, phase, total, prev = [], None, 0.0, None
    for c, k in zip(cap, kind, strict=True):
        c = 0.0 if np.isnan(c) else abs(c)
        if k in ("C", "D") and k != phase:
            phase, total, prev = k, 0.0, None
        if k == which:
            total += c if prev is None or c < prev else c - prev
            prev = c
        out.append(total if phase == which else 0.0)
    return out


def test_split_counter_equals_row_by_row_reference():
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 50))
        cap = np.round(rng.random(n) * 3, 3)
        cap[rng.random(n) < 0.1] = np.nan
        kind = rng.choice(["C", "D", "R"], n, p=[0.45, 0.45, 0.1]).tolist()
        for which in "CD":
            got = split_counter(pd.Series(cap), pd.Series(kind), which)
            np.testing.assert_allclose(got.to_numpy(), _reference_counter(cap.tolist(), kind, which), atol=1e-12)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_read_delimited_decimal_commas_from_content(tmp_path, newline, encoding):
    rows = [["Zeit[s]", "U[V]", "I[A]", "T[°C]", "State"]] + [
        [str(i * 10), f"3,{500 + i}", f"-0,{i:03d}" if i else "0", f"25,{i}", "CC"] for i in range(30)]
    path = tmp_path / "cell.TXT"
    path.write_bytes(("~ header\n" + "\n".join(";".join(r) for r in rows) + "\n").replace("\n", newline)
                     .encode(encoding))
    table = read_delimited(path, 1)
    with open(path, encoding=encoding, newline="") as fh:
        raw = list(csv.reader(fh, delimiter=";"))[2:]
    for j, col in enumerate(["U[V]", "I[A]", "T[°C]"], start=1):
        assert table[col].dtype == float
        assert table[col].tolist() == [float(r[j].replace(",", ".")) for r in raw]
    assert table["State"].tolist() == [r[4] for r in raw]


def test_decimal_mark_only_for_semicolon_or_tab_tables():
    assert decimal_mark(["1;2,5;3"], ";") == "," and decimal_mark(["1\t2,5"], "\t") == ","
    assert decimal_mark(["1;2.5;3"], ";") == "." and decimal_mark(['"1,5",2'], ",") == "."


def test_text_in_a_number_column_still_names_row_and_column(tmp_path, monkeypatch):
    lines = ["~Resultfile from Basytec Battery Test System", "~Time[s]\tU[V]\tI[A]\tCyc-Count"]
    lines += [f"{i}\t3,{i}\t1,0\t1" for i in range(5)]
    lines[4] = "2\t3,2\tabc\t1"
    (tmp_path / "b.txt").write_text("\n".join(lines) + "\n", encoding="latin-1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileError, match=r"^b\.txt: row 3, column 'I\[A\]': 'abc' is not a number$"):
        read_cycler_file("b.txt")


def test_numbers_of_a_real_decimal_comma_file(cycler_files: Path, monkeypatch):
    monkeypatch.chdir(cycler_files)
    name = "biologic_yadg_gcpl.issue_149_decimalcomma.mpt"
    cell = read_cycler_file(name)
    text = Path(name).read_bytes().decode("latin-1").splitlines()
    n = int(re.search(r"Nb header lines\s*:\s*(\d+)", "\n".join(text[:5])).group(1))
    header = text[n - 1].split("\t")
    col = next(i for i, h in enumerate(header) if h.strip() in ("Ewe/V", "Ecell/V", "<Ewe>/V"))
    volts = [float(line.split("\t")[col].replace(",", ".")) for line in text[n:] if line.strip()]
    assert cell.data["voltage_V"].tolist() == volts
