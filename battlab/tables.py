"""Reading researchers' table files (CSV/TSV/semicolon, Excel, parquet) without losing a row.

Every cell is read as text, so that curation sees exactly what was written (``<1E-10``, ``1,5``,
``NaN`` as sodium nitride). Rows that cannot be aligned with the header (ragged rows) are returned
aside with their line number, never dropped. Files that are not tables at all raise
:class:`~battlab.errors.DataFileError` with a one-line message naming the file and the problem.

Example
-------
>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = p.write_text("formula;capacity\\nLiCoO2;140,5\\nLiFePO4;165;extra\\n")
>>> table = read_table(p)
>>> table.data.to_dict("records"), table.delimiter
([{'formula': 'LiCoO2', 'capacity': '140,5'}], ';')
>>> table.rejected[0].reason
'row has 3 fields, the header has 2'
"""

from __future__ import annotations

import csv
import difflib
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from battlab.errors import DataFileError
from battlab.units import parse_cell

DELIMITERS = (",", ";", "\t", "|")
_EXCEL = {".xlsx", ".xlsm", ".xls"}


@dataclass(frozen=True)
class RejectedRow:
    """A row that could not be read as a record: its 1-based row and line numbers, reason and text."""

    row: int
    line: int
    reason: str
    text: str


@dataclass
class RawTable:
    """A table as text. ``data`` has one column per header cell and index = 1-based row number."""

    data: pd.DataFrame
    path: Path | None = None
    delimiter: str | None = None
    rejected: list[RejectedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        """All data rows in the file, including rejected ones."""
        return len(self.data) + len(self.rejected)


def _decode(path: Path, raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise DataFileError(f"{path}: looks like a binary file, not a text table")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        control = sum(ch < " " and ch not in "\t\r\n" for ch in text[:8192])
        if control > 0.01 * min(len(text), 8192):
            raise DataFileError(f"{path}: looks like a binary file, not a text table")
        return text
    raise DataFileError(f"{path}: cannot decode the file as UTF-8 or Windows-1252 text")


def _sniff_delimiter(text: str) -> str | None:
    """The delimiter that splits the first lines into the most columns, consistently."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    best, best_score = None, (0.0, 1)
    for d in DELIMITERS:
        counts = [len(r) for r in csv.reader(lines, delimiter=d)]
        if not counts:
            continue
        width, n = Counter(counts).most_common(1)[0]
        score = (n / len(counts), width)
        if width > 1 and score > best_score:
            best, best_score = d, score
    return best


def _looks_like_data(header: list[str]) -> bool:
    """A header whose cells are mostly numbers is really a first data row."""
    numeric = sum(not parse_cell(h).error and not parse_cell(h).missing for h in header)
    return numeric >= max(1, len(header) / 2)


def dedupe_names(header: list[str], notes: list[str]) -> list[str]:
    """Column names made unique (``x``, ``x.1``...; blanks become ``column_N``), each rename noted.

    >>> dedupe_names(["a", "a", "a.1", ""], [])
    ['a', 'a.2', 'a.1', 'column_4']
    """
    names = [h.strip() or f"column_{i + 1}" for i, h in enumerate(header)]
    used: set[str] = set()
    out = []
    for i, name in enumerate(names):
        if name in used or name in names[:i]:
            k = 1
            while f"{name}.{k}" in used or f"{name}.{k}" in names:  # never take a later column's name
                k += 1
            new = f"{name}.{k}"
            notes.append(f"duplicate column {name!r} renamed to {new!r}")
            name = new
        used.add(name)
        out.append(name)
    return out


def _read_text_table(path: Path, text: str, delimiter: str | None) -> RawTable:
    delimiter = delimiter or _sniff_delimiter(text) or ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    records, index, rejected, notes = [], [], [], []
    n = 0
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank line: not a record
            if header is None:
                header = dedupe_names(fields, notes)
                continue
            n += 1
            if len(fields) != len(header):
                rejected.append(RejectedRow(n, reader.line_num, f"row has {len(fields)} fields, "
                                            f"the header has {len(header)}", delimiter.join(fields)))
                continue
            records.append(fields)
            index.append(n)
    except csv.Error as exc:
        raise DataFileError(f"{path}: malformed CSV near line {reader.line_num}: {exc}") from exc
    if header is None:
        raise DataFileError(f"{path}: the file is empty")
    if _looks_like_data(header):
        raise DataFileError(f"{path}: no header row (the first line looks like data: {delimiter.join(header)[:60]!r})")
    data = pd.DataFrame(records, columns=header, index=pd.Index(index, name="row"), dtype=object)
    return RawTable(data, path, delimiter, rejected, notes)


def read_table(path: str | Path, *, delimiter: str | None = None,
               required_columns: tuple[str, ...] | list[str] = ()) -> RawTable:
    """Read a table file as text, sniffing the delimiter; raise :class:`DataFileError` if it is not a table.

    Parameters
    ----------
    path
        CSV/TSV/semicolon text, Excel (``.xlsx``) or parquet file.
    delimiter
        Force a delimiter instead of sniffing one.
    required_columns
        Columns that must exist; a missing one is an error that lists the columns found.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in _EXCEL or suffix == ".parquet":
        try:
            df = pd.read_excel(path, dtype=str) if suffix in _EXCEL else pd.read_parquet(path)
        except Exception as exc:
            raise DataFileError(f"{path}: cannot read as {suffix[1:]} file: {exc}") from exc
        if df.empty and len(df.columns) == 0:
            raise DataFileError(f"{path}: the file is empty")
        df = df.astype(object).where(df.notna(), "")
        df.index = pd.RangeIndex(1, len(df) + 1, name="row")
        table = RawTable(df, path)
    else:
        try:
            raw = path.read_bytes()
        except OSError as exc:  # unreadable: permissions, a special file
            raise DataFileError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
        if not raw.strip():
            raise DataFileError(f"{path}: the file is empty")
        table = _read_text_table(path, _decode(path, raw), delimiter)
    check_columns(table.data, required_columns, source=str(path), delimiter=table.delimiter)
    return table


def check_columns(df: pd.DataFrame, required: tuple[str, ...] | list[str], *, source: str = "table",
                  delimiter: str | None = None) -> None:
    """Raise a :class:`DataFileError` naming each missing column, the columns found and a close match."""
    columns = [str(c) for c in df.columns]
    for name in required:
        if name in columns:
            continue
        msg = f"{source}: missing column {name!r}; columns are {columns[:12]}"
        hint = difflib.get_close_matches(name, columns, n=1)
        if len(columns) == 1 and delimiter is not None:
            msg += " (one column only: wrong delimiter? battlab reads ',', ';', tab and '|')"
        elif hint:
            msg += f" (did you mean {hint[0]!r}?)"
        raise DataFileError(msg)


def load_table(path: str | Path) -> pd.DataFrame:
    """A table file with typed columns, for steps after curation (parquet as written; text files with
    numeric columns converted and everything else, formulas included, kept as text)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet" and path.is_file():
        try:
            return pd.read_parquet(path)
        except Exception as exc:
            raise DataFileError(f"{path}: cannot read as parquet: {exc}") from exc
    df = read_table(path).data.reset_index(drop=True)
    for col in df.columns:
        converted = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
        if converted.notna().sum() == (df[col] != "").sum():
            df[col] = converted
    return df
