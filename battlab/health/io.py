"""Reading a pulse table from a file or an upload, every row kept and numbered as a line of its file.

Text files (CSV/TSV/semicolon) and Excel are read with :func:`battlab.tables.read_table`; a column whose filled
cells are all numbers becomes numeric, anything else stays text (so a voltage typed as ``3,41`` reaches
:class:`~battlab.health.pulse.PulseFeatures`, which names its row and column). Row labels are the line numbers of
the file (the header is line 1; Excel: the sheet's row numbers), so an error names the line a person sees. A row
that cannot be read as a record (too many cells, ...) is a one-line error naming its line: none is dropped.

Example
-------
>>> t = read_pulse_bytes("cells.csv", b"cell,SOC,U1\\na,20,3.61\\nb,30,3.65\\n")
>>> t.index.tolist(), t["U1"].tolist()
([2, 3], [3.61, 3.65])
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["read_pulse_table", "read_pulse_bytes"]


def read_pulse_table(path: str | Path) -> pd.DataFrame:
    """A pulse table file (CSV/TSV/Excel/parquet) as a DataFrame indexed by line number (parquet: as written)."""
    from battlab.tables import read_table

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        from battlab.tables import load_table

        return load_table(path)
    raw = read_table(path)
    if raw.rejected:
        bad = raw.rejected[0]
        raise BattlabError(f"{path.name}, line {bad.line}: {bad.reason} ({len(raw.rejected)} row(s) cannot be read "
                           "as records; fix them, nothing was dropped)")
    df = raw.data.copy()
    df.index = np.arange(2, len(df) + 2)  # the header is line 1
    for col in df.columns:
        text = df[col].astype(str).str.strip()
        converted = pd.to_numeric(text.replace("", np.nan), errors="coerce")
        if converted.notna().sum() == (text != "").sum():
            df[col] = converted
    return df


def read_pulse_bytes(name: str, content: bytes | memoryview) -> pd.DataFrame:
    """Uploaded bytes as a pulse table (:func:`read_pulse_table` on a temporary copy with the upload's name, then
    deleted); errors name the upload, not the temporary path."""
    safe = Path(str(name).replace("\\", "/")).name or "upload.csv"
    with tempfile.TemporaryDirectory(prefix="battlab-pulses-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(bytes(content))
        try:
            return read_pulse_table(path)
        except BattlabError as exc:
            raise type(exc)(str(exc).replace(str(path), safe)) from None
