"""Read cycler files into one tidy table per cell, with per-cycle summaries.

:func:`read_cycler_file` recognises the file by its content (not its name) and returns a :class:`CellData`:

- ``data``: one row per recorded point, the columns of :data:`TIDY_COLUMNS` (SI-ish units in the names:
  seconds, amperes, volts, ampere-hours, watt-hours, degrees Celsius, ohms). Current is positive on charge,
  negative on discharge, whatever the vendor's convention. Quantities a file does not hold are NaN and
  left out of ``present``.
- ``cycles``: one row per cycle: discharge and charge capacity, discharge energy, coulombic efficiency,
  mean discharge voltage, internal resistance and temperature when the file has them, and whether the
  cycle is ``usable`` (with the ``reason`` when it is not). Nothing is dropped: points without a cycle
  number are kept in ``data`` and reported in ``unusable``.

Who reads what
--------------
===============================  =====================================================================
format                           reader
===============================  =====================================================================
Arbin CSV export                 ``beep.structure.arbin.ArbinDatapath`` (TRI's BEEP)
Maccor text export (``.0NN``)    ``beep.structure.maccor.MaccorDatapath`` (current signed by state)
Novonix HPC export               ``beep.structure.novonix.NovonixDatapath`` (time converted h -> s)
BioLogic EC-Lab text export      battlab (below): BEEP's reader needs the ``.mpl`` settings file beside
                                 the export and reads it value by value in Python; cellpy and galvani
                                 read only the binary ``.mpr`` files
plain CSV with named columns     battlab (below): no package reads arbitrary headers; columns are found
                                 by name and unit (``current_mA``, ``Voltage (V)``, ``time/h`` ...)
===============================  =====================================================================

Example
-------
>>> import pandas as pd, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "cell.csv")
>>> pd.DataFrame({"cycle": [1, 1, 1, 1], "time_s": [0, 1800, 3600, 7200],
...               "current_A": [1.0, 1.0, -1.0, -1.0], "voltage_V": [3.4, 3.5, 3.3, 3.0]}).to_csv(path, index=False)
>>> cell = read_cycler_file(path)
>>> cell.format, cell.cycles["discharge_capacity_Ah"].round(3).tolist()
('csv', [1.0])
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import DataFileError

__all__ = ["TIDY_COLUMNS", "CellData", "read_cycler_file", "detect_format", "summarize_cycles", "FORMATS"]

#: Columns of the tidy table, in order.
TIDY_COLUMNS = ("cycle", "step", "time_s", "current_A", "voltage_V", "charge_capacity_Ah",
                "discharge_capacity_Ah", "charge_energy_Wh", "discharge_energy_Wh", "temperature_C",
                "internal_resistance_ohm")
_REQUIRED = ("cycle", "time_s", "current_A", "voltage_V")
#: Formats :func:`read_cycler_file` recognises.
FORMATS = ("arbin", "maccor", "biologic", "novonix", "csv")
#: Currents below this magnitude (A) count as rest when telling charge from discharge.
CURRENT_EPS = 1e-6
_SNIFF_BYTES = 64_000


@dataclass
class CellData:
    """One cell read from a cycler file.

    Attributes
    ----------
    name : str
        The file's name without its extension.
    source : str
        Path of the file read.
    format : str
        One of :data:`FORMATS`.
    data : DataFrame
        The tidy table (:data:`TIDY_COLUMNS`), one row per point, in file order.
    cycles : DataFrame
        Per-cycle summary (see :func:`summarize_cycles`), with ``usable`` and ``reason``.
    present : list of str
        Tidy columns the file really holds (the others are NaN).
    metadata : dict
        What the reader found in the file's header (protocol, channel, nominal capacity...).
    """

    name: str
    source: str
    format: str
    data: pd.DataFrame
    cycles: pd.DataFrame
    present: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def unusable(self) -> pd.DataFrame:
        """Cycles (and points without a cycle number) that cannot be used, with the reason."""
        bad = self.cycles.loc[~self.cycles["usable"], ["cycle", "n_points", "reason"]]
        n_nocycle = int(self.data["cycle"].isna().sum())
        if n_nocycle:
            bad = pd.concat([bad, pd.DataFrame({"cycle": [pd.NA], "n_points": [n_nocycle],
                                                "reason": ["no cycle number (blank cycle index)"]})],
                            ignore_index=True)
        return bad.reset_index(drop=True)

    @property
    def usable_cycles(self) -> list[int]:
        """Numbers of the cycles with a usable discharge."""
        return [int(c) for c in self.cycles.loc[self.cycles["usable"], "cycle"]]

    def summary(self) -> str:
        """One line: points, cycles, usable cycles.

        Example
        -------
        >>> cycles = pd.DataFrame({"cycle": [1], "n_points": [1], "usable": [False], "reason": ["no discharge"]})
        >>> cell = CellData("c", "c.csv", "csv", pd.DataFrame({"cycle": pd.array([1], dtype="Int64")}), cycles)
        >>> cell.summary()
        'c (csv): 1 points, 1 cycles, 0 usable; unusable: cycle 1 (no discharge)'
        """
        bad = self.unusable
        text = f"{self.name} ({self.format}): {len(self.data)} points, {len(self.cycles)} cycles, " \
               f"{len(self.usable_cycles)} usable"
        if len(bad):
            items = [f"{'cycle ' + str(c) if pd.notna(c) else str(n) + ' points'} ({r})"
                     for c, n, r in bad[["cycle", "n_points", "reason"]].itertuples(index=False)]
            text += "; unusable: " + ", ".join(items[:5]) + (f", ... ({len(items)} in all)" if len(items) > 5 else "")
        return text

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``data.parquet``, ``cycles.csv``, ``unusable.csv`` and ``cell.json`` into ``out_dir``.

        Example
        -------
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> cycles = pd.DataFrame({"cycle": [1], "n_points": [1], "usable": [False], "reason": ["no discharge"]})
        >>> cell = CellData("c", "c.csv", "csv", pd.DataFrame({"cycle": pd.array([1], dtype="Int64")}), cycles)
        >>> sorted(p.name for p in cell.save(folder).values())
        ['cell.json', 'cycles.csv', 'data.parquet', 'unusable.csv']
        >>> CellData.load(folder).cycles["reason"].tolist()
        ['no discharge']
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / k for k in ("data.parquet", "cycles.csv", "unusable.csv", "cell.json")}
        self.data.to_parquet(paths["data.parquet"], index=False)
        self.cycles.to_csv(paths["cycles.csv"], index=False)
        self.unusable.to_csv(paths["unusable.csv"], index=False)
        meta = {"name": self.name, "source": self.source, "format": self.format, "present": list(self.present),
                "metadata": self.metadata}
        paths["cell.json"].write_text(json.dumps(meta, indent=2, default=str))
        return paths

    @classmethod
    def load(cls, folder: str | Path) -> CellData:
        """Read a cell written by :meth:`save`."""
        folder = Path(folder)
        meta_path = folder / "cell.json"
        if not meta_path.is_file():
            raise DataFileError(f"{folder}: no cell.json (not a folder written by CellData.save)")
        meta = json.loads(meta_path.read_text())
        data = pd.read_parquet(folder / "data.parquet")
        cycles = pd.read_csv(folder / "cycles.csv", keep_default_na=False, na_values=[""])
        cycles["reason"] = cycles["reason"].fillna("").astype(str)
        cycles["usable"] = cycles["usable"].astype(bool)
        return cls(meta["name"], meta["source"], meta["format"], data, cycles, meta.get("present", []),
                   meta.get("metadata", {}))


# --------------------------------------------------------------------------- format detection


def _head(path: Path) -> str:
    raw = path.read_bytes()[:_SNIFF_BYTES]
    if b"\x00" in raw[:4096]:
        raise DataFileError(f"{path}: binary file, not a cycler text export (export it as text/CSV; BioLogic .mpr "
                            "files: export as text from EC-Lab)")
    for enc in ("utf-8", "latin-1"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1", errors="replace")  # pragma: no cover - latin-1 decodes any byte


def detect_format(path: str | Path) -> str:
    """The cycler format of a file, from its first lines: one of :data:`FORMATS`.

    Raises
    ------
    DataFileError
        Missing, empty or binary file, or a text whose header names no current and voltage column.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.csv")
    >>> _ = open(p, "w").write("Data_Point,Test_Time,Step_Index,Cycle_Index,Current,Voltage\\n0,0,1,1,0,3.3\\n")
    >>> detect_format(p)
    'arbin'
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    head = _head(path)
    if not head.strip():
        raise DataFileError(f"{path}: empty file")
    lines = head.splitlines()
    first = lines[0] if lines else ""
    if "[Summary]" in first or (head.lstrip().startswith("[") and "Novonix" in head[:2000]) \
            or re.search(r'^"?Date and Time,Cycle Number,Step Type', head, re.M):
        return "novonix"
    if len(lines) > 1 and re.match(r"\s*Rec#\tCyc#\tStep", lines[1]) and "Volts" in lines[1]:
        return "maccor"
    if "EC-Lab ASCII FILE" in first or re.search(r"(^|[;\t])(Ecell|Ewe|<Ewe>)/V([;\t]|$)", head[:20000], re.M):
        return "biologic"
    header = first.lower()
    if all(k in header for k in ("cycle_index", "voltage", "current", "test_time")) \
            and not re.search(r"(current|voltage)\s*\(", header):  # newer Arbin exports with units: csv
        return "arbin"
    cols = _split_header(first)
    if len(cols) > 1:
        found = _map_named_columns(cols)
        missing = [q for q in ("current_A", "voltage_V") if q not in found]
        if not missing:
            return "csv"
        raise DataFileError(
            f"{path}: unknown cycler file format: no {' and no '.join(m.split('_')[0] for m in missing)} column "
            f"in the header ({', '.join(cols[:12])}{', ...' if len(cols) > 12 else ''}); known formats: "
            f"{', '.join(FORMATS)} (a plain CSV needs columns named like cycle, time_s, current_A, voltage_V)")
    raise DataFileError(f"{path}: unknown cycler file format (first line {first[:80]!r}); known formats: "
                        f"{', '.join(FORMATS)}")


def _split_header(line: str) -> list[str]:
    try:
        dialect = csv.Sniffer().sniff(line, delimiters=",;\t")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    return [c.strip().strip('"') for c in line.split(sep)]


# --------------------------------------------------------------------------- named columns (plain CSV)

# quantity -> accepted names (lower case, without unit); the unit comes from the header or the default
_ALIASES: dict[str, tuple[str, ...]] = {
    "cycle": ("cycle", "cycle_index", "cycle_number", "cycle number", "cycle index", "cyc#", "cycle_no", "cycle no"),
    "step": ("step", "step_index", "step_number", "step index", "step number", "ns", "step_no"),
    "time_s": ("time", "test_time", "test time", "time_s", "total_time", "total time", "run time", "elapsed time",
               "elapsed_time"),
    "current_A": ("current", "i", "amps", "current_a"),
    "voltage_V": ("voltage", "potential", "v", "ecell", "ewe", "volts", "voltage_v", "cell potential"),
    "charge_capacity_Ah": ("charge_capacity", "charge capacity", "q charge", "charge_capacity_ah", "qc"),
    "discharge_capacity_Ah": ("discharge_capacity", "discharge capacity", "q discharge", "discharge_capacity_ah",
                              "qd"),
    "charge_energy_Wh": ("charge_energy", "charge energy", "energy charge"),
    "discharge_energy_Wh": ("discharge_energy", "discharge energy", "energy discharge"),
    "temperature_C": ("temperature", "temp", "t", "cell temperature", "aux_temperature"),
    "internal_resistance_ohm": ("internal_resistance", "internal resistance", "dcir", "ir", "resistance"),
}
# unit (lower case) -> factor to the tidy unit, per quantity kind
_UNITS: dict[str, dict[str, float]] = {
    "time_s": {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "hr": 3600.0, "hours": 3600.0},
    "current_A": {"a": 1.0, "ma": 1e-3, "ua": 1e-6},
    "voltage_V": {"v": 1.0, "mv": 1e-3},
    "charge_capacity_Ah": {"ah": 1.0, "mah": 1e-3, "a.h": 1.0, "ma.h": 1e-3},
    "charge_energy_Wh": {"wh": 1.0, "mwh": 1e-3, "w.h": 1.0, "mw.h": 1e-3},
    "temperature_C": {"c": 1.0, "°c": 1.0, "degc": 1.0},
    "internal_resistance_ohm": {"ohm": 1.0, "mohm": 1e-3, "ω": 1.0, "mω": 1e-3},
    "cycle": {"": 1.0}, "step": {"": 1.0},
}
_UNITS["discharge_capacity_Ah"] = _UNITS["charge_capacity_Ah"]
_UNITS["discharge_energy_Wh"] = _UNITS["charge_energy_Wh"]
_DEFAULT_UNIT = {q: ("" if q in ("cycle", "step") else q.rsplit("_", 1)[1].lower()) for q in _ALIASES}


def _name_and_unit(header: str) -> tuple[str, str]:
    """``'Current (mA)'`` -> ``('current', 'ma')``; ``'I/mA'`` -> ``('i', 'ma')``; ``'current_A'``: no unit here."""
    h = header.strip().strip('"').lower()
    m = re.fullmatch(r"(.+?)\s*[\(\[]\s*([^\)\]]+?)\s*[\)\]]", h)
    if m:
        return m.group(1).strip(), m.group(2).replace(" ", "")
    if "/" in h and not h.startswith("d"):
        name, unit = h.split("/", 1)
        return name.strip(), unit.strip().replace(" ", "")
    return h, ""


def _map_named_columns(headers: list[str]) -> dict[str, tuple[str, float]]:
    """quantity -> (header, factor to the tidy unit), for the headers that name a tidy quantity."""
    found: dict[str, tuple[str, float]] = {}
    for header in headers:
        name, unit = _name_and_unit(header)
        for quantity, names in _ALIASES.items():
            if quantity in found:
                continue
            plain = name
            if not unit:  # 'current_ma', 'time_h': the unit as a suffix
                for suffix in _UNITS[quantity]:
                    if suffix and name.endswith("_" + suffix) and name[: -len(suffix) - 1] in names:
                        plain, unit = name[: -len(suffix) - 1], suffix
                        break
            if plain in names or name == quantity.lower():
                factor = _UNITS[quantity].get(unit or _DEFAULT_UNIT[quantity])
                if factor is None:
                    raise DataFileError(f"column {header!r}: unit {unit!r} is not a unit of {quantity.split('_')[0]} "
                                        f"(known: {', '.join(u for u in _UNITS[quantity] if u)})")
                found[quantity] = (header, factor)
                break
    return found


def _to_number(series: pd.Series) -> pd.Series:
    if series.dtype == object:
        series = series.astype(str).str.strip().str.replace(",", ".", regex=False).replace({"": None, "nan": None})
    return pd.to_numeric(series, errors="coerce")


def _tidy_from_named(path: Path, raw: pd.DataFrame, fmt: str) -> tuple[pd.DataFrame, list[str]]:
    found = _map_named_columns([str(c) for c in raw.columns])
    missing = [q for q in _REQUIRED if q not in found]
    if missing:
        raise DataFileError(f"{path}: no {', no '.join(m.split('_')[0] for m in missing)} column ({fmt}); "
                            f"columns are: {', '.join(map(str, raw.columns[:15]))}")
    if not len(raw):
        raise DataFileError(f"{path}: header only, no data rows")
    out = pd.DataFrame(index=raw.index)
    for quantity, (header, factor) in found.items():
        values = raw[header]
        if quantity == "time_s" and values.dtype == object and not _to_number(values).notna().any():
            stamps = pd.to_datetime(values, errors="coerce", format="mixed")  # EC-Lab 'time/s' as dates
            values = (stamps - stamps.iloc[0]).dt.total_seconds()
            factor = 1.0
        out[quantity] = _to_number(values) * factor
    bad = out["current_A"].isna() & raw[found["current_A"][0]].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(f"{path}: row {row + 1}, column {found['current_A'][0]!r}: "
                            f"{raw[found['current_A'][0]].iloc[row]!r} is not a number")
    return out, list(found)


def _read_delimited(path: Path, skip: int = 0) -> pd.DataFrame:
    head = _head(path).splitlines()
    header = head[skip] if len(head) > skip else ""
    sep = max((";", "\t", ","), key=header.count)
    for enc in ("utf-8", "latin-1"):
        try:
            return pd.read_csv(path, sep=sep, skiprows=skip, encoding=enc, dtype=str, keep_default_na=False,
                               na_values=[""], index_col=False)
        except UnicodeDecodeError:
            continue
        except pd.errors.ParserError as exc:
            raise DataFileError(f"{path}: cannot be read as a {sep!r}-separated table ({exc})") from exc
    raise DataFileError(f"{path}: neither UTF-8 nor Latin-1 text")  # pragma: no cover


def _read_biologic(path: Path) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
    head = _head(path).splitlines()
    skip, meta = 0, {}
    if head and "EC-Lab ASCII FILE" in head[0]:
        m = next((re.search(r"Nb header lines\s*:\s*(\d+)", line) for line in head[:5] if "Nb header" in line), None)
        if not m:
            raise DataFileError(f"{path}: EC-Lab text export without its 'Nb header lines' line")
        skip = int(m.group(1)) - 1
        meta["header_lines"] = skip + 1
    raw = _read_delimited(path, skip)
    raw.columns = [str(c).strip() for c in raw.columns]
    raw = raw.drop(columns=[c for c in raw.columns if c == "" or c.startswith("Unnamed")])
    rename = {}
    for c in raw.columns:  # EC-Lab's own names first: 'cycle number', 'Ns', 'Q discharge/mA.h', '<I>/mA'
        if c in ("<I>/mA", "I/mA") and "current" not in rename.values():
            rename[c] = "current/mA"
        elif c in ("Ecell/V", "Ewe/V", "<Ewe>/V") and "voltage" not in rename.values():
            rename[c] = "voltage/V"
        elif c in ("T/°C", "Temperature/°C") and raw[c].notna().any():
            rename[c] = "temperature/°C"
    raw = raw.rename(columns=rename)
    for c in list(raw.columns):  # keep one column per quantity: the named ones win over later aliases
        if c in ("cycle_index", "control/mA", "control/V", "|I|/A", "|Ewe|/V", "T/°C", "Temperature/°C/°c"):
            raw = raw.drop(columns=c)
    tidy, present = _tidy_from_named(path, raw, "biologic")
    return tidy, present, meta


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
    raw = _read_delimited(path)
    tidy, present = _tidy_from_named(path, raw, "csv")
    return tidy, present, {}


@contextlib.contextmanager
def _quiet_beep():
    """BEEP logs every file it reads to stdout at DEBUG and sets numpy's print precision on import."""
    printopts = np.get_printoptions()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import beep  # noqa: F401

            logger = logging.getLogger("beep")
            level = logger.level
            logger.setLevel(logging.ERROR)
            try:
                yield
            finally:
                logger.setLevel(level)
    finally:
        np.set_printoptions(**printopts)


def _check_header(path: Path, line: str, needed: dict[str, tuple[str, ...]], fmt: str) -> None:
    cols = {c.strip().strip('"').lower() for c in re.split(r"[,\t;]", line)}
    missing = [q for q, names in needed.items() if not any(n.lower() in cols for n in names)]
    if missing:
        raise DataFileError(f"{path}: {fmt} file without a {' or '.join(missing)} column "
                            f"(header: {line.strip()[:120]})")


def _read_beep(path: Path, fmt: str) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
    lines = _head(path).splitlines()
    if fmt == "arbin":
        _check_header(path, lines[0], {"current": ("Current",), "voltage": ("Voltage",), "time": ("Test_Time",),
                                       "cycle": ("Cycle_Index",)}, "Arbin")
    elif fmt == "maccor":
        _check_header(path, lines[1], {"current": ("Amps",), "voltage": ("Volts",), "time": ("Test (Sec)",),
                                       "cycle": ("Cyc#",)}, "Maccor")
    else:
        header = next((ln for ln in lines if "Cycle Number" in ln), "")
        _check_header(path, header.strip('"'), {"current": ("Current (A)",), "voltage": ("Potential (V)",),
                                                "time": ("Run Time (h)",), "cycle": ("Cycle Number",)}, "Novonix")
    with _quiet_beep():
        try:
            if fmt == "arbin":
                from beep.structure.arbin import ArbinDatapath as Reader
            elif fmt == "maccor":
                from beep.structure.maccor import MaccorDatapath as Reader
            else:
                from beep.structure.novonix import NovonixDatapath as Reader
            dp = Reader.from_file(str(path))
        except DataFileError:
            raise
        except Exception as exc:
            raise DataFileError(f"{path}: the {fmt} reader (beep) failed: {type(exc).__name__}: {exc}") from exc
    raw = dp.raw_data
    tidy = pd.DataFrame(index=raw.index)
    tidy["cycle"] = raw["cycle_index"]
    tidy["step"] = raw["step_num"] if fmt == "novonix" else raw["step_index"]
    tidy["time_s"] = raw["test_time"].astype(float) * (3600.0 if fmt == "novonix" else 1.0)
    current = raw["current"].astype(float)
    if fmt == "maccor":  # Maccor writes |I| or signed I depending on the setup: the state letter decides
        state = raw["_state"].astype(str)
        current = current.abs().where(state != "D", -current.abs()).where(state.isin(["C", "D"]), current)
    tidy["current_A"] = current
    tidy["voltage_V"] = raw["voltage"].astype(float)
    for col in ("charge_capacity", "discharge_capacity"):
        tidy[f"{col}_Ah"] = raw[col].astype(float)
    for col in ("charge_energy", "discharge_energy"):
        tidy[f"{col}_Wh"] = raw[col].astype(float)
    if fmt == "novonix":  # beep leaves the other half-cycle's counter empty
        for col in ("charge_capacity_Ah", "discharge_capacity_Ah", "charge_energy_Wh", "discharge_energy_Wh"):
            tidy[col] = tidy[col].fillna(0.0)
    present = ["cycle", "step", "time_s", "current_A", "voltage_V", "charge_capacity_Ah", "discharge_capacity_Ah",
               "charge_energy_Wh", "discharge_energy_Wh"]
    if "temperature" in raw and raw["temperature"].notna().any():
        tidy["temperature_C"] = raw["temperature"].astype(float)
        present.append("temperature_C")
    if "internal_resistance" in raw and (raw["internal_resistance"].fillna(0) != 0).any():
        tidy["internal_resistance_ohm"] = raw["internal_resistance"].astype(float).replace(0.0, np.nan)
        present.append("internal_resistance_ohm")
    meta = {k: v for k, v in (dp.metadata.raw if hasattr(dp.metadata, "raw") else {}).items()
            if isinstance(v, (str, int, float, bool)) and not str(k).startswith("_")}
    return tidy, present, meta


# --------------------------------------------------------------------------- summaries


def _integrate(t: np.ndarray, i: np.ndarray, sign: int) -> np.ndarray:
    """Cumulative charge (Ah) passed with current of ``sign`` (+1 charge, -1 discharge), left rectangles."""
    dt = np.diff(t, prepend=t[:1])
    part = np.where(sign * i > CURRENT_EPS, np.abs(i), 0.0)
    return np.cumsum(np.r_[0.0, (part[:-1] * dt[1:])]) / 3600.0 if len(t) else np.zeros(0)


def summarize_cycles(data: pd.DataFrame) -> pd.DataFrame:
    """Per-cycle summary of a tidy table (:data:`TIDY_COLUMNS`).

    Capacities are the rise of the cycle's counters (``max - min`` of ``charge_capacity_Ah`` /
    ``discharge_capacity_Ah``), or the integral of the current when the file has no counters. A cycle is
    ``usable`` when it has a discharge (points with current below ``-CURRENT_EPS`` and a positive discharge
    capacity); otherwise ``reason`` says why.

    Example
    -------
    >>> t = pd.DataFrame({"cycle": [1, 1, 1, 2, 2], "time_s": [0.0, 1800, 3600, 7200, 10800],
    ...                   "current_A": [-1.0, -1.0, -1.0, 1.0, 1.0], "voltage_V": [3.3, 3.2, 3.0, 3.4, 3.5]})
    >>> s = summarize_cycles(t)
    >>> s[["cycle", "discharge_capacity_Ah", "usable", "reason"]].values.tolist()
    [[1, 1.0, True, ''], [2, 0.0, False, 'no discharge (no point with negative current)']]
    """
    rows = []
    known = data.dropna(subset=["cycle"])
    for cycle, g in known.groupby("cycle", sort=True):
        t = g["time_s"].to_numpy(dtype=float)
        i = g["current_A"].to_numpy(dtype=float)
        v = g["voltage_V"].to_numpy(dtype=float)
        dis = i < -CURRENT_EPS
        row: dict[str, Any] = {"cycle": int(cycle), "n_points": len(g), "start_s": float(np.nanmin(t)),
                               "duration_s": float(np.nanmax(t) - np.nanmin(t)), "n_discharge_points": int(dis.sum())}
        for kind, sign in (("charge", 1), ("discharge", -1)):
            col = f"{kind}_capacity_Ah"
            counter = g[col].to_numpy(dtype=float) if col in g else np.full(len(g), np.nan)
            if np.isfinite(counter).any():
                row[col] = float(np.nanmax(counter) - np.nanmin(counter))
            else:
                row[col] = float(_integrate(t, i, sign)[-1])
        ecol = "discharge_energy_Wh"
        energy = g[ecol].to_numpy(dtype=float) if ecol in g else np.full(len(g), np.nan)
        if np.isfinite(energy).any():
            row[ecol] = float(np.nanmax(np.abs(energy)) - np.nanmin(np.abs(energy)))
        else:  # integrate V*|I| over the discharge
            dt = np.diff(t, prepend=t[:1])
            row[ecol] = float(np.nansum(np.where(dis, v * np.abs(i), 0.0)[:-1] * dt[1:]) / 3600.0) if len(t) else 0.0
        qc, qd = row["charge_capacity_Ah"], row["discharge_capacity_Ah"]
        row["coulombic_efficiency"] = qd / qc if qc > 0 else np.nan
        row["mean_discharge_voltage_V"] = row[ecol] / qd if qd > 0 else np.nan
        row["min_voltage_V"] = float(np.nanmin(v)) if len(v) else np.nan
        row["max_voltage_V"] = float(np.nanmax(v)) if len(v) else np.nan
        if "internal_resistance_ohm" in g and g["internal_resistance_ohm"].notna().any():
            row["internal_resistance_ohm"] = float(g["internal_resistance_ohm"].dropna().median())
        else:
            row["internal_resistance_ohm"] = np.nan
        temp = g["temperature_C"] if "temperature_C" in g else pd.Series(dtype=float)
        row["temperature_mean_C"] = float(temp.mean()) if temp.notna().any() else np.nan
        row["temperature_max_C"] = float(temp.max()) if temp.notna().any() else np.nan
        if not dis.any():
            reason = "no discharge (no point with negative current)"
        elif not qd > 0:
            reason = "no discharge capacity (the discharge counter does not rise)"
        elif dis.sum() < 3:
            reason = f"discharge has only {int(dis.sum())} points"
        else:
            reason = ""
        row["usable"], row["reason"] = reason == "", reason
        rows.append(row)
    cols = ["cycle", "n_points", "start_s", "duration_s", "n_discharge_points", "charge_capacity_Ah",
            "discharge_capacity_Ah", "discharge_energy_Wh", "coulombic_efficiency", "mean_discharge_voltage_V",
            "min_voltage_V", "max_voltage_V", "internal_resistance_ohm", "temperature_mean_C", "temperature_max_C",
            "usable", "reason"]
    out = pd.DataFrame(rows, columns=cols)
    out["usable"] = out["usable"].astype(bool)
    out["reason"] = out["reason"].astype(str)
    return out


# --------------------------------------------------------------------------- entry point


def read_cycler_file(path: str | Path, format: str | None = None) -> CellData:
    """Read a cycler file (Arbin, Maccor, BioLogic EC-Lab text, Novonix, plain CSV) into a :class:`CellData`.

    Parameters
    ----------
    path
        The file.
    format
        One of :data:`FORMATS` to skip detection (default: detected from the content).

    Raises
    ------
    DataFileError
        One line naming the file and the problem: missing/empty/binary file, unknown format, no current,
        voltage, time or cycle column, a value that is not a number.
    """
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise DataFileError(f"{path}: unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
    if fmt in ("arbin", "maccor", "novonix"):
        tidy, present, meta = _read_beep(path, fmt)
    elif fmt == "biologic":
        tidy, present, meta = _read_biologic(path)
    else:
        tidy, present, meta = _read_csv(path)
    if not len(tidy):
        raise DataFileError(f"{path}: header only, no data rows")
    for col in TIDY_COLUMNS:
        if col not in tidy:
            tidy[col] = np.nan
    tidy = tidy[list(TIDY_COLUMNS)].reset_index(drop=True)
    for col in ("cycle", "step"):
        values = pd.to_numeric(tidy[col], errors="coerce")
        tidy[col] = values.round().astype("Int64")
    for col in TIDY_COLUMNS[2:]:
        tidy[col] = tidy[col].astype(float)
    for col in ("time_s", "voltage_V"):
        bad = tidy[col].isna()
        if bad.all():
            raise DataFileError(f"{path}: the {col.split('_')[0]} column holds no number")
    return CellData(path.stem, str(path), fmt, tidy, summarize_cycles(tidy),
                    [c for c in TIDY_COLUMNS if c in present], meta)


def read_text(text: str, name: str = "upload.csv") -> CellData:
    """Read a cycler export given as text (e.g. an upload), via a temporary file named ``name``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_text(text)
        cell = read_cycler_file(path)
    cell.source = name
    return cell

