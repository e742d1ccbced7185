"""Cycler file formats: one module per vendor format, found by content, never by the file's name.

Each format is a :class:`CyclerFormat` in :data:`REGISTRY`: a ``sniff(head, path)`` that says from the file's
first bytes whether the file is of that format, and a ``read(path)`` that returns a :class:`RawCell` (the tidy
columns the file holds, in tidy units, and what its header says). :func:`battlab.cycling.read.read_cycler_file`
tries the sniffers in registry order (specific formats before the plain CSV), then reads with the first that
matches, then finishes the table the same way for every format (cycle numbers derived from the charge and
discharge steps when the file's never increment, per-cycle summaries, unusable cycles listed).

Adding a format: a module here with ``sniff`` and ``read``, one :class:`CyclerFormat` line in :data:`REGISTRY`
(the package that reads it in ``package``), a value test against a real file, a line in the reader table of
docs/cycling.md.

Example
-------
>>> [f.name for f in REGISTRY][-1]
'csv'
>>> describe_binary(b"BIO-LOGIC MODULAR FILE\\x1a   ", Path("x.mpr"))
'BioLogic EC-Lab .mpr'
"""

from __future__ import annotations

import importlib
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["CyclerFormat", "RawCell", "REGISTRY", "by_name", "describe_binary", "first_zip_member", "is_binary",
           "read_head", "text_head", "zip_opens"]

#: Bytes of a file the sniffers see.
SNIFF_BYTES = 64_000


@dataclass
class RawCell:
    """What a format's reader returns: tidy columns (tidy names and units), the ones really present, metadata.

    ``data`` has any subset of :data:`battlab.cycling.read.TIDY_COLUMNS`, one row per point in file order (the
    entry point adds the missing columns as NaN and sets dtypes). ``metadata`` is what the header says (channel,
    protocol, nominal capacity, ...), plain JSON values only.
    """

    data: pd.DataFrame
    present: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CyclerFormat:
    """One cycler file format.

    Attributes
    ----------
    name : str
        Short name (``--format`` in the CLI, ``CellData.format``).
    label : str
        What users call it (``"BioLogic EC-Lab .mpr (binary)"``).
    package : str
        Who reads it (``"galvani"``, ``"beep"``, ``"battlab"`` when written here).
    target : str
        ``"module:function"`` of the reader under :mod:`battlab.cycling.formats`; the sniffer is
        ``"module:sniff_function"`` in ``sniffer``. Both are imported on first use (readers import heavy packages).
    sniffer : str
        ``"module:function"`` of the sniffer.
    """

    name: str
    label: str
    package: str
    target: str
    sniffer: str

    def _load(self, spec: str) -> Callable[..., Any]:
        module, func = spec.split(":")
        return getattr(importlib.import_module(f"battlab.cycling.formats.{module}"), func)

    def sniff(self, head: bytes, path: Path) -> bool:
        """Whether a file whose first bytes are ``head`` is of this format."""
        return bool(self._load(self.sniffer)(head, path))

    def read(self, path: Path) -> RawCell:
        """Read the file (a :class:`RawCell`)."""
        return self._load(self.target)(path)


#: Every format, in the order the sniffers are tried: binary formats, vendor text formats, then the plain CSV.
REGISTRY: tuple[CyclerFormat, ...] = (
    # binary formats
    CyclerFormat("biologic_mpr", "BioLogic EC-Lab .mpr (binary)", "galvani", "biologic_mpr:read", "biologic_mpr:sniff"),
    CyclerFormat("neware", "Neware .nda / .ndax (binary)", "NewareNDA", "neware:read", "neware:sniff"),
    CyclerFormat("arbin_res", "Arbin MITS Pro .res (MS Access database)", "mdbtools", "arbin_res:read",
                 "arbin_res:sniff"),
    CyclerFormat("excel", "Arbin / Neware Excel export (.xlsx)", "openpyxl", "excel:read", "excel:sniff"),
    CyclerFormat("indigo", "Indigo HDF5 (time_series_data)", "h5py", "indigo:read", "indigo:sniff"),
    # vendor text formats
    CyclerFormat("novonix", "Novonix HPC export", "beep", "beep:read_novonix", "beep:sniff_novonix"),
    CyclerFormat("maccor", "Maccor raw text export (.0NN)", "beep", "beep:read_maccor", "beep:sniff_maccor"),
    CyclerFormat("maccor_text", "Maccor text export from a MIMS template (.txt, .csv, .0NN)", "battlab",
                 "maccor_text:read", "maccor_text:sniff"),
    CyclerFormat("biologic", "BioLogic EC-Lab text export (.mpt, .txt, ;-CSV)", "battlab",
                 "biologic_text:read", "biologic_text:sniff"),
    CyclerFormat("arbin", "Arbin CSV export", "beep", "beep:read_arbin", "beep:sniff_arbin"),
    CyclerFormat("neware_csv", "Neware BTS CSV export (flat or three-level regular)", "battlab", "neware_csv:read",
                 "neware_csv:sniff"),
    CyclerFormat("pec", "PEC CSV export", "battlab", "pec:read", "pec:sniff"),
    CyclerFormat("basytec", "BaSyTec text export", "battlab", "basytec:read", "basytec:sniff"),
    CyclerFormat("bdf", "Battery Data Format (BDF) CSV", "battlab", "bdf:read", "bdf:sniff"),
    # the fallback: any table whose header names current and voltage
    CyclerFormat("csv", "plain CSV with named columns", "battlab", "plain:read", "plain:sniff"),
)


def by_name(name: str) -> CyclerFormat:
    """The registered format called ``name``."""
    for fmt in REGISTRY:
        if fmt.name == name:
            return fmt
    raise KeyError(name)


def read_head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    """The first ``n`` bytes of a file."""
    with open(path, "rb") as fh:
        return fh.read(n)


def text_head(head: bytes) -> str:
    """The first bytes of a text file decoded (UTF-8 with or without BOM, else Latin-1)."""
    for enc in ("utf-8-sig", "latin-1"):
        try:
            return head.decode(enc)
        except UnicodeDecodeError:
            continue
    return head.decode("latin-1", errors="replace")  # pragma: no cover - latin-1 decodes any byte


def is_binary(head: bytes) -> bool:
    """Whether the first bytes look binary (a NUL byte in the first 4 kB, or a known container signature)."""
    return b"\x00" in head[:4096] or head[:4] == b"PK\x03\x04" or head[:8] == b"\x89HDF\r\n\x1a\n"


# magic bytes / zip members / extensions -> what the file looks like (for files no registered format reads; the
# formats battlab reads are named too, for a file of theirs that their reader's sniffer did not claim)
_MAGIC = (
    (b"BIO-LOGIC MODULAR FILE", "BioLogic EC-Lab .mpr"),
    (b"NEWARE", "Neware .nda"),
    (b"\x00\x01\x00\x00Standard Jet DB", "Arbin .res (MS Access database)"),
    (b"\x00\x01\x00\x00Standard ACE DB", "Arbin .res (MS Access database)"),
    (b"\x89HDF\r\n\x1a\n", "HDF5 file without Indigo's time_series_data (cellpy, BDF or other HDF5 files are not "
                           "read; export the cell as CSV)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE2 compound file (an old Excel .xls: save it as .xlsx; or an "
                                          "Arbin/Digatron binary: export it as Excel or CSV)"),
    (b"SQLite format 3\x00", "SQLite database (no cycler reader; export the cell as CSV)"),
    (b"MATLAB 5.0 MAT-file", "MATLAB .mat file (not a cycler file; save the cell's table as CSV)"),
)
_EXTENSIONS = {
    ".ccs": "LANHE .ccs: no maintained reader; export as Excel", ".cex": "LANHE .cex: no maintained reader; "
    "export as Excel", ".nda": "Neware .nda", ".ndax": "Neware .ndax", ".mpr": "BioLogic .mpr", ".res": "Arbin .res",
    ".xls": "Excel .xls (save it as .xlsx)", ".xlsx": "Excel .xlsx", ".h5": "HDF5", ".hdf5": "HDF5",
    ".mat": "MATLAB .mat", ".cda": "Arbin .cda: no maintained reader; export as Excel or CSV",
    ".dta": "Gamry .DTA", ".idf": "Digatron .idf: no maintained reader; export as CSV",
    ".bdat": "BaSyTec binary: no maintained reader; export as text",
}


def first_zip_member(head: bytes) -> str | None:
    """The name of a zip file's first member, from its first local header (readable when the file is truncated
    and its central directory lost).

    Example
    -------
    >>> first_zip_member(b"PK\\x03\\x04" + bytes(22) + bytes([8, 0, 0, 0]) + b"data.ndc")
    'data.ndc'
    """
    if head[:4] != b"PK\x03\x04" or len(head) < 30:
        return None
    (length,) = struct.unpack("<H", head[26:28])
    return head[30:30 + length].decode("utf-8", "replace") or None


def zip_opens(path: Path) -> bool:
    """Whether a zip container opens (its central directory is there: not truncated)."""
    try:
        with zipfile.ZipFile(path):
            return True
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def describe_binary(head: bytes, path: Path) -> str:
    """What a binary file looks like, from its magic bytes, zip members or extension (for error messages).

    Example
    -------
    >>> describe_binary(b"\\x00\\x01\\x02", Path("cell.CCS"))
    'LANHE .ccs: no maintained reader; export as Excel'
    """
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return "truncated or damaged zip file"
        if any(n.startswith("xl/") for n in names):
            return "Excel workbook (.xlsx)"
        if any(n.endswith(".ndc") for n in names):
            return "Neware .ndax"
        shown = ", ".join(names[:3]) + (f", ... ({len(names)} members)" if len(names) > 3 else "")
        return f"zip archive that is neither an Excel workbook nor a Neware .ndax ({shown or 'empty'}): unpack it"
    ext = path.suffix.lower()
    return _EXTENSIONS.get(ext, f"unknown binary{' ' + ext if ext else ''} file")
