"""Read many cycler files at once: a folder of cells, a glob, a list of files -> one :class:`CellBatch`.

:func:`read_cycler_files` reads each file with :func:`battlab.cycling.read.read_cycler_file` (any format of
:data:`battlab.cycling.formats.REGISTRY`, found from the content) and skips nothing silently:

- ``cells``: every file read, by a unique cell name (the file's stem; a second file with the same stem gets its
  extension, then its folder, then a number appended);
- ``failures``: every file that could not be read, with the one-line reason (a glob that matches nothing and a
  path that does not exist are failures too);
- ``companions``: files read as part of another one, e.g. ``X_Metadata.csv`` beside an Arbin or Novonix ``X.csv``
  (named ``<stem>_metadata.<ext>`` beside a ``<stem>.*`` data file and not a cycler file itself): listed, not
  failures;
- ``summary``: one row per cell (cell, file, format, points, cycles, usable cycles, discharge capacity at the first
  and the last usable cycle, whether cycle numbers were derived from the charge/discharge steps).

Example
-------
>>> import pandas as pd, tempfile, os
>>> folder = tempfile.mkdtemp()
>>> for name, q in (("a.csv", 1.0), ("b.csv", 0.5)):
...     pd.DataFrame({"cycle": [1] * 5, "time_s": [0, 3600, 3601, 5400, 7201], "current_A": [q, q, -q, -q, -q],
...                   "voltage_V": [3.4, 3.5, 3.3, 3.2, 3.0]}).to_csv(os.path.join(folder, name), index=False)
>>> _ = open(os.path.join(folder, "notes.txt"), "w").write("not a cycler file\\n")
>>> batch = read_cycler_files(folder, progress=False)
>>> batch.summary[["cell", "format", "cycles", "capacity_first_Ah"]].values.tolist()
[['a', 'csv', 1, 1.0], ['b', 'csv', 1, 0.5]]
>>> batch.failures["file"].map(os.path.basename).tolist()
['notes.txt']
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.read import CellData, read_cycler_file
from battlab.errors import BattlabError, DataFileError

__all__ = ["CellBatch", "read_cycler_files", "expand_paths", "SUMMARY_COLUMNS"]

#: Columns of :attr:`CellBatch.summary`.
SUMMARY_COLUMNS = ("cell", "file", "format", "points", "cycles", "usable_cycles", "first_usable_cycle",
                   "last_usable_cycle", "capacity_first_Ah", "capacity_last_Ah", "cycles_derived")
_GLOB_CHARS = re.compile(r"[*?\[]")
_COMPANION = re.compile(r"^(?P<stem>.+)_metadata$", re.IGNORECASE)


@dataclass
class CellBatch:
    """Cells read from many cycler files.

    Attributes
    ----------
    cells : dict of str to CellData
        Every cell read, by its unique name (also the ``cell`` column of ``summary`` and its folder in :meth:`save`).
    failures : DataFrame
        ``file``, ``reason``: each input that could not be read (one line each).
    companions : DataFrame
        ``file``, ``companion_of``: files that belong to another file (its metadata), not read on their own.
    summary : DataFrame
        One row per cell, columns :data:`SUMMARY_COLUMNS`.
    """

    cells: dict[str, CellData] = field(default_factory=dict)
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["file", "reason"]))
    companions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["file", "companion_of"]))
    summary: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SUMMARY_COLUMNS)))

    @property
    def ok(self) -> bool:
        """Whether every input was read (no failure)."""
        return not len(self.failures)

    def report(self) -> str:
        """What was read, in a few lines: counts, then one line per unreadable file with its reason.

        Example
        -------
        >>> b = CellBatch(failures=pd.DataFrame({"file": ["x.bin"], "reason": ["unknown format"]}))
        >>> print(b.report())
        0 cells read, 1 file not read, 0 companion files
          not read: x.bin: unknown format
        """
        n_fail, n_comp = len(self.failures), len(self.companions)
        n_cells = len(self.summary)
        lines = [f"{n_cells} cell{'s' * (n_cells != 1)} read, {n_fail} file{'s' * (n_fail != 1)} "
                 f"not read, {n_comp} companion file{'s' * (n_comp != 1)}"]
        lines += [f"  not read: {f}: {r}" for f, r in self.failures[["file", "reason"]].itertuples(index=False)]
        return "\n".join(lines)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write one folder per cell (:meth:`CellData.save`), ``summary.csv``, ``failures.csv``, ``companions.csv``.

        Returns the paths written: the three tables by their file name and each cell's folder by its name.
        """
        out = Path(out_dir).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for name, cell in self.cells.items():
            cell.save(out / name)
            paths[name] = out / name
        for table, frame in (("summary.csv", self.summary), ("failures.csv", self.failures),
                             ("companions.csv", self.companions)):
            frame.to_csv(out / table, index=False)
            paths[table] = out / table
        return paths

    @classmethod
    def load(cls, folder: str | Path) -> CellBatch:
        """Read a batch written by :meth:`save` (each cell from its folder, named in ``summary.csv``)."""
        folder = Path(folder).expanduser()
        if not (folder / "summary.csv").is_file():
            raise DataFileError(f"{folder}: no summary.csv (not a folder written by CellBatch.save)")
        summary = pd.read_csv(folder / "summary.csv", dtype={"cell": str, "file": str})
        summary["cycles_derived"] = summary["cycles_derived"].astype(bool)
        tables = {}
        for table, cols in (("failures.csv", ["file", "reason"]), ("companions.csv", ["file", "companion_of"])):
            path = folder / table
            tables[table] = pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() \
                else pd.DataFrame(columns=cols)
        cells = {name: CellData.load(folder / name) for name in summary["cell"]}
        return cls(cells, tables["failures.csv"], tables["companions.csv"], summary)


def _looks_like_glob(text: str) -> bool:
    return bool(_GLOB_CHARS.search(text))


def expand_paths(paths: str | Path | Iterable[str | Path], *, recursive: bool = False
                 ) -> tuple[list[Path], list[tuple[str, str]]]:
    """The files named by ``paths`` (files, folders, globs; ``~`` expanded), in order, each once, and the inputs
    that name no file as ``(input, reason)``.

    A path that exists is taken as it is (a file named ``61[07005012] cell.csv`` is that file, not a glob); a
    folder gives every file in it, hidden ones included (in sub-folders too with ``recursive=True``; without it,
    each sub-folder is listed as not read); anything else with ``*``, ``?`` or ``[`` is a glob (``**`` with
    ``recursive=True``).

    Example
    -------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> for n in ("b.nda", "a.nda", "c.txt"):
    ...     _ = open(os.path.join(d, n), "w").write("x")
    >>> files, missing = expand_paths([os.path.join(d, "*.nda"), os.path.join(d, "none*.mpr")])
    >>> [f.name for f in files], [reason for _, reason in missing]
    (['a.nda', 'b.nda'], ['no file matches this pattern'])
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for item in items:
        text = os.path.expanduser(os.fspath(item))
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in (path.rglob("*") if recursive else path.iterdir()) if p.is_file())
            if not recursive:  # listed, not silently left out
                missing += [(os.fspath(p), "a sub-folder, not read (recursive=True, or --recursive, reads it)")
                            for p in sorted(path.iterdir()) if p.is_dir()]
            if not found:
                missing.append((os.fspath(item), "folder holds no file"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        elif _looks_like_glob(text):
            found = sorted(Path(p) for p in glob.glob(text, recursive=recursive) if os.path.isfile(p))
            if not found:
                missing.append((os.fspath(item), "no file matches this pattern"))
            files.extend(found)
        else:
            missing.append((os.fspath(item), "no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, missing


def _companion_of(path: Path) -> Path | None:
    """The data file ``path`` is the metadata companion of (``X_Metadata.csv`` -> ``X.csv``), if there is one."""
    m = _COMPANION.match(path.stem)
    if not m:
        return None
    stem = m.group("stem")
    partners = sorted(p for p in path.parent.glob(glob.escape(stem) + ".*") if p.is_file() and p != path)
    return partners[0] if partners else None


def _unique_name(path: Path, taken: set[str]) -> str:
    """The cell name of ``path``: its stem, or when taken, stem + extension, folder + stem, then stem + number."""
    stem = path.stem
    candidates = [stem]
    if path.suffix:
        candidates.append(f"{stem}_{path.suffix.lstrip('.')}")
    if path.parent.name:
        candidates.append(f"{path.parent.name}_{stem}")
    for name in candidates:
        if name not in taken:
            return name
    k = 2
    while f"{stem}_{k}" in taken:
        k += 1
    return f"{stem}_{k}"


def _reason(exc: Exception, path: Path) -> str:
    """One line: the message without the file name it starts with (the ``file`` column holds it)."""
    text = str(exc) if isinstance(exc, BattlabError) else f"{type(exc).__name__}: {exc}"
    text = (text.strip().splitlines() or [type(exc).__name__])[0]
    for prefix in (f"{path}: ", f"{path.name}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def summary_row(name: str, cell: CellData) -> dict[str, Any]:
    """The :attr:`CellBatch.summary` row of one cell."""
    usable = cell.cycles.loc[cell.cycles["usable"]]
    q = usable["discharge_capacity_Ah"].to_numpy(dtype=float)
    return {"cell": name, "file": cell.source, "format": cell.format, "points": len(cell.data),
            "cycles": len(cell.cycles), "usable_cycles": len(usable),
            "first_usable_cycle": int(usable["cycle"].iloc[0]) if len(usable) else pd.NA,
            "last_usable_cycle": int(usable["cycle"].iloc[-1]) if len(usable) else pd.NA,
            "capacity_first_Ah": float(q[0]) if len(q) else np.nan,
            "capacity_last_Ah": float(q[-1]) if len(q) else np.nan,
            "cycles_derived": bool(cell.metadata.get("cycles_derived"))}


def read_cycler_files(paths: str | Path | Iterable[str | Path], *, recursive: bool = False, format: str | None = None,
                      progress: bool = True, out_dir: str | Path | None = None) -> CellBatch:
    """Read every cycler file named by ``paths`` (files, folders, quoted globs such as ``"data/*.nda"``, or a list
    of them) into a :class:`CellBatch`.

    Parameters
    ----------
    paths
        As users type them: relative or absolute, ``~``, spaces or brackets in names, any case of extension.
    recursive
        Read the files in sub-folders of a folder too (and let ``**`` in a glob match folders).
    format
        One format for every file (skip detection; default: each file's format found from its content).
    progress
        Show a ``tqdm`` progress bar.
    out_dir
        Write each cell into ``out_dir/<cell>`` as soon as it is read, and the tables at the end (the layout of
        :meth:`CellBatch.save`), keeping no cell in memory (for folders of hundreds of large files): the returned
        batch then has its summary, failures and companions but empty ``cells``; :meth:`CellBatch.load` reads them.

    Nothing is skipped silently: a file that cannot be read is a row of ``failures`` with its reason, a metadata
    companion a row of ``companions``.
    """
    from tqdm.auto import tqdm

    files, missing = expand_paths(paths, recursive=recursive)
    failures: list[dict[str, str]] = [{"file": f, "reason": r} for f, r in missing]
    companions: list[dict[str, str]] = []
    cells: dict[str, CellData] = {}
    taken: set[str] = set()  # cell names given so far
    out = None if out_dir is None else Path(out_dir).expanduser()
    rows: list[dict[str, Any]] = []
    bar = tqdm(files, desc="reading cycler files", unit="file", disable=not progress or not files)
    for path in bar:
        bar.set_postfix_str(path.name[-40:], refresh=False)
        try:
            cell = read_cycler_file(path, format=format)
        except Exception as exc:  # every failure is listed, a reader's own exception too
            partner = _companion_of(path)
            if partner is not None:
                companions.append({"file": str(path), "companion_of": str(partner)})
            else:
                failures.append({"file": str(path), "reason": _reason(exc, path)})
            continue
        name = _unique_name(path, taken)
        taken.add(name)
        cell.name = name
        if out is not None:
            cell.save(out / name)
        else:
            cells[name] = cell
        rows.append(summary_row(name, cell))
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    for col in ("points", "cycles", "usable_cycles"):
        summary[col] = summary[col].astype(int)
    for col in ("first_usable_cycle", "last_usable_cycle"):
        summary[col] = summary[col].astype("Int64")
    for col in ("capacity_first_Ah", "capacity_last_Ah"):
        summary[col] = summary[col].astype(float)
    summary["cycles_derived"] = summary["cycles_derived"].astype(bool)
    batch = CellBatch(cells, pd.DataFrame(failures, columns=["file", "reason"]),
                      pd.DataFrame(companions, columns=["file", "companion_of"]), summary)
    if out is not None:
        batch.save(out)  # the tables (the cells are written already)
    return batch
