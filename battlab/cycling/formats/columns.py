"""Columns found by name and unit: ``Current (mA)``, ``I/mA``, ``current_A``, ``time/h`` -> the tidy quantities.

Every text reader that meets vendor headers maps them here, so that one alias table and one unit table serve all
formats (and a header the suite has never seen still reads when it names its quantity and unit).

Example
-------
>>> sorted(map_named_columns(["Current (mA)", "Voltage/V", "Test Time (h)"]).items())
[('current_A', ('Current (mA)', 0.001)), ('time_s', ('Test Time (h)', 3600.0)), ('voltage_V', ('Voltage/V', 1.0))]
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from battlab.cycling.formats import read_head, text_head
from battlab.errors import DataFileError

__all__ = ["REQUIRED", "check_numbers", "decimal_mark", "looks_like_duration", "map_named_columns", "name_and_unit", "parse_duration",
           "parse_stamps", "read_delimited", "split_counter", "tidy_from_named", "to_number"]

#: Tidy quantities every cell needs.
REQUIRED = ("cycle", "time_s", "current_A", "voltage_V")

# quantity -> accepted names (lower case, without unit); the unit comes from the header or the default. German
# names are those of German-locale exports (Zyklus, Zeit, Strom, Spannung).
_ALIASES: dict[str, tuple[str, ...]] = {
    "cycle": ("cycle", "cycle_index", "cycle_number", "cycle number", "cycle index", "cyc#", "cycle_no", "cycle no",
              "cycle count", "cycle_count", "zyklus", "zyklusnummer", "zyklus-nr."),
    "step": ("step", "step_index", "step_number", "step index", "step number", "ns", "step_no", "schritt"),
    "time_s": ("time", "test_time", "test time", "time_s", "total_time", "total time", "run time", "elapsed time",
               "elapsed_time", "testtime", "total time (seconds)", "zeit", "programmdauer", "gesamtzeit"),
    "current_A": ("current", "i", "amps", "current_a", "strom"),
    "voltage_V": ("voltage", "potential", "v", "ecell", "ewe", "volts", "voltage_v", "cell potential", "spannung", "u"),
    "charge_capacity_Ah": ("charge_capacity", "charge capacity", "q charge", "charge_capacity_ah", "qc",
                           "charging capacity", "chg. cap.", "chg cap", "ah-cyc-charge", "ah-cyc-charge-0"),
    "discharge_capacity_Ah": ("discharge_capacity", "discharge capacity", "q discharge", "discharge_capacity_ah",
                              "qd", "discharging capacity", "dchg. cap.", "dchg cap", "ah-cyc-discharge",
                              "ah-cyc-discharge-0"),
    "charge_energy_Wh": ("charge_energy", "charge energy", "energy charge", "charging energy", "chg. energy",
                         "wh-cyc-charge"),
    "discharge_energy_Wh": ("discharge_energy", "discharge energy", "energy discharge", "discharging energy",
                            "dchg. energy", "wh-cyc-discharge"),
    "temperature_C": ("temperature", "temp", "t", "cell temperature", "aux_temperature", "temperatur",
                      "surface temperature", "cell surface temperature", "t1"),
    "internal_resistance_ohm": ("internal_resistance", "internal resistance", "dcir", "ir", "resistance",
                                "dc internal resistance", "r-dc"),
}
# unit (lower case, no spaces) -> factor to the tidy unit, per quantity kind
_UNITS: dict[str, dict[str, float]] = {
    "time_s": {"s": 1.0, "sec": 1.0, "seconds": 1.0, "min": 60.0, "h": 3600.0, "hr": 3600.0, "hours": 3600.0,
               "ms": 1e-3},
    "current_a": {"a": 1.0, "ma": 1e-3, "ua": 1e-6, "µa": 1e-6, "amps": 1.0, "mamps": 1e-3},
    "voltage_v": {"v": 1.0, "mv": 1e-3, "volts": 1.0, "mvolts": 1e-3},
    "charge_capacity_ah": {"ah": 1.0, "mah": 1e-3, "a.h": 1.0, "ma.h": 1e-3, "amp-hr": 1.0, "mamp-hr": 1e-3,
                           "µah": 1e-6, "uah": 1e-6},
    "charge_energy_wh": {"wh": 1.0, "mwh": 1e-3, "w.h": 1.0, "mw.h": 1e-3, "watt-hr": 1.0, "mwatt-hr": 1e-3,
                         "kwh": 1e3},
    "temperature_c": {"c": 1.0, "°c": 1.0, "degc": 1.0, "deg.c": 1.0, "\ufffdc": 1.0, "ºc": 1.0, "℃": 1.0,
                      "?": 1.0, "\ufffd": 1.0},  # '?', U+FFFD: a degree sign lost to the encoding (Neware 'T1(?)')
    "internal_resistance_ohm": {"ohm": 1.0, "ohms": 1.0, "mohm": 1e-3, "ω": 1.0, "mω": 1e-3},
    "cycle": {"": 1.0, "1": 1.0, "-": 1.0}, "step": {"": 1.0, "1": 1.0, "-": 1.0},
}
_UNITS = {q: _UNITS[q.lower()] for q in _ALIASES if q.lower() in _UNITS} | {
    "discharge_capacity_Ah": _UNITS["charge_capacity_ah"], "discharge_energy_Wh": _UNITS["charge_energy_wh"]}
_DEFAULT_UNIT = {q: ("" if q in ("cycle", "step") else q.rsplit("_", 1)[1].lower()) for q in _ALIASES}


def name_and_unit(header: str) -> tuple[str, str]:
    """A header's quantity name and unit (lower case): ``(unit)``, ``[unit]``, ``/unit`` or `` / unit``.

    The unit is what follows the last ``/`` (EC-Lab writes ``Q charge/discharge/mA.h``).

    Example
    -------
    >>> name_and_unit("Current (mA)"), name_and_unit("I/mA"), name_and_unit("Test Time / s")
    (('current', 'ma'), ('i', 'ma'), ('test time', 's'))
    >>> name_and_unit("Q charge/discharge/mA.h"), name_and_unit("current_A")
    (('q charge/discharge', 'ma.h'), ('current_a', ''))
    """
    h = header.strip().strip('"').strip().lower()
    m = re.fullmatch(r"(.+?)\s*[\(\[]\s*([^\)\]]+?)\s*[\)\]]", h)
    if m:
        return m.group(1).strip(), m.group(2).replace(" ", "")
    if "/" in h and not re.match(r"d[a-z]+/d", h):  # not dQ/dV, dV/dt
        name, unit = h.rsplit("/", 1)
        return name.strip(), unit.strip().replace(" ", "")
    return h, ""


def map_named_columns(headers: list[str]) -> dict[str, tuple[str, float]]:
    """quantity -> (header, factor to the tidy unit), for the headers that name a tidy quantity."""
    found: dict[str, tuple[str, float]] = {}
    for header in headers:
        name, unit = name_and_unit(header)
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


def to_number(series: pd.Series) -> pd.Series:
    """Numbers from a column of text (decimal commas read as points; blanks are NaN).

    Example
    -------
    >>> to_number(pd.Series(["3,5", " 1e-3 ", ""])).tolist()
    [3.5, 0.001, nan]
    """
    out = pd.to_numeric(series, errors="coerce")
    if series.dtype == object:  # only the values pandas could not read: decimal commas, blanks
        again = out.isna() & series.notna()
        if again.any():
            fixed = series[again].astype(str).str.strip().str.replace(",", ".", regex=False)
            out = out.astype(float)
            out[again] = pd.to_numeric(fixed.replace({"": None, "nan": None}), errors="coerce").astype(float)
    return out


_DURATION = re.compile(r"^\s*(?:(\d+)\s*d(?:ays?)?,?\s*)?(\d+):(\d{1,2}):(\d{1,2}(?:[.,]\d*)?)\s*$")
# a whole column of durations pandas' timedelta parser reads the same way, one per line (no decimal commas)
_DURATIONS = re.compile(r"(?:[ \t]*(?:\d+[ \t]*d(?:ays?)?[ \t]*)?\d+:\d{1,2}:\d{1,2}(?:\.\d{0,9})?[ \t]*(?:\n|\Z))+")


def parse_duration(series: pd.Series) -> pd.Series:
    """Seconds from durations written as ``[Nd ]h:mm:ss[.f]`` (hours may exceed 24) or plain numbers of seconds.

    Example
    -------
    >>> parse_duration(pd.Series(["  2d 02:52:51.57", "144:01:18", "00:00:0", "12.5"])).tolist()
    [183171.57, 518478.0, 0.0, 12.5]
    """
    if series.dtype != object:  # parsed as numbers already: seconds
        return to_number(series).astype(float).round(9)
    written = series.dropna()
    if len(written) and _DURATIONS.fullmatch("\n".join(written.astype(str))):  # one check for the whole column
        try:  # pandas' timedelta parser reads exactly these (hours past 24, 1-digit fields, <= 9 decimals)
            return pd.to_timedelta(series).dt.total_seconds().round(9)
        except (ValueError, TypeError):  # pragma: no cover - the regex admits only what it reads
            pass
    text = series.astype(str)
    parts = text.str.extract(_DURATION)
    days = pd.to_numeric(parts[0], errors="coerce").fillna(0.0)
    secs = pd.to_numeric(parts[3].str.replace(",", ".", regex=False), errors="coerce")
    out = days * 86400 + pd.to_numeric(parts[1], errors="coerce") * 3600 + pd.to_numeric(parts[2],
                                                                                         errors="coerce") * 60 + secs
    return out.where(parts[1].notna(), to_number(series)).round(9)


_STAMP_FORMATS = ("%m/%d/%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S",
                  "%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%d/%m/%Y %H:%M:%S.%f",
                  "%d/%m/%Y %H:%M:%S")


def parse_stamps(values: pd.Series) -> pd.Series:
    """Date-times written as text: one of the usual cycler layouts when every value fits it (fast), else pandas'
    per-value parser (``dd.mm.yyyy`` read day first, as German-locale exports write it). Decimal commas allowed.

    Example
    -------
    >>> parse_stamps(pd.Series(["01.10.2024 23:00:00,5", "02.10.2024 01:00:00,5"])).diff().iloc[1]
    Timedelta('0 days 02:00:00')
    """
    text = values.astype(str).str.strip().str.replace(",", ".", regex=False)
    for fmt in _STAMP_FORMATS:
        try:
            return pd.to_datetime(text.where(values.notna()), format=fmt)
        except (ValueError, TypeError):
            continue
    day_first = bool(text.str.match(r"\d{1,2}\.\d{1,2}\.\d{4}").any())
    return pd.to_datetime(text.where(values.notna()), errors="coerce", format="mixed", dayfirst=day_first)


def looks_like_duration(series: pd.Series) -> bool:
    """Whether a text column holds ``h:mm:ss`` durations (checked on its first non-blank values)."""
    values = series.dropna().astype(str).head(50)
    return bool(len(values)) and bool(values.str.match(_DURATION).all())


def split_counter(capacity: pd.Series, kind: pd.Series, which: str, group: pd.Series | None = None) -> pd.Series:
    """The charge (``which="C"``) or discharge (``"D"``) counter of what a vendor's one capacity or energy column
    adds up on the rows of that ``kind``; 0 on the rows of the other direction.

    A phase runs from the first row of its kind to the first row of the other kind (``C``/``D``); rows of any other
    kind (rest) inside it carry the counter on. The counter starts from 0 at each phase, or, when the file's own
    cycle numbers are given as ``group``, at each cycle (so a cycle with two discharges counts both). The rises of the
    vendor's column are summed and a fall is a restart from 0, so a column that restarts at each step and one that
    runs on give the same counter; a cycle's ``max - min`` is then its charge or discharge.

    Example
    -------
    >>> cap = pd.Series([0.0, 1.0, 2.0, 0.5, 1.0, 1.0, 0.0, 0.4, 0.8])
    >>> state = pd.Series(["C", "C", "C", "C", "C", "R", "D", "D", "D"])   # the counter restarts at a new C step
    >>> split_counter(cap, state, "C").tolist(), split_counter(cap, state, "D").tolist()
    ([0.0, 1.0, 2.0, 2.5, 3.0, 3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.8])
    """
    values = capacity.astype(float).abs().to_numpy()
    k = kind.astype(str).to_numpy()
    phase_kind = pd.Series(np.where(np.isin(k, ["C", "D"]), k, None), dtype=object).ffill().to_numpy()
    if group is None:
        starts = np.r_[True, phase_kind[1:] != phase_kind[:-1]]
    else:
        g = pd.Series(group).astype(str).to_numpy()
        starts = np.r_[True, g[1:] != g[:-1]]
    segment = pd.Series(np.cumsum(starts))
    mine = k == which
    own = pd.Series(np.nan_to_num(values[mine]))
    seg_own = segment[mine].reset_index(drop=True)
    step = own.groupby(seg_own).diff()
    inc = own.where(~(step >= 0), step)  # the rise, or the value itself after a fall (a restart) or at the start
    running = np.full(len(values), np.nan)
    running[mine] = inc.groupby(seg_own).cumsum().to_numpy()
    out = pd.Series(running).groupby(segment).ffill().fillna(0.0).to_numpy()
    out[phase_kind != which] = 0.0
    return pd.Series(out, index=capacity.index)


def check_numbers(path: Path, text: pd.Series, numbers: pd.Series, column: str) -> None:
    """A one-line :class:`DataFileError` naming the file, the (1-based data) row and the column of the first value
    that is written but is not a number.

    Example
    -------
    >>> check_numbers(Path("x.csv"), pd.Series(["1", "oops"]), pd.Series([1.0, np.nan]), "Current")
    Traceback (most recent call last):
    ...
    battlab.errors.DataFileError: x.csv: row 2, column 'Current': 'oops' is not a number
    """
    if text.dtype != object:  # parsed as numbers: every written value is one
        return
    bad = numbers.isna().to_numpy() & text.notna().to_numpy() & (text.astype(str).str.strip() != "").to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFileError(f"{path}: row {row + 1}, column {column!r}: {text.iloc[row]!r} is not a number")


def tidy_from_named(path: Path, raw: pd.DataFrame, fmt: str, required: tuple[str, ...] = REQUIRED,
                    labels: dict[str, str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The tidy columns (tidy units) of a table whose headers name their quantities, and the ones it holds.

    Raises a one-line :class:`DataFileError` naming the file when a ``required`` quantity has no column, when the
    table has no rows, and (row and column) when a current or voltage is not a number. ``labels`` maps columns a reader
    renamed back to the file's own headers, for the messages.

    Example
    -------
    >>> raw = pd.DataFrame({"Voltage (mV)": ["3500"], "Current (mA)": ["-100"], "Test Time (h)": ["1"]})
    >>> tidy, present = tidy_from_named(Path("x.csv"), raw, "csv", required=("time_s", "current_A", "voltage_V"))
    >>> tidy.values.tolist(), sorted(present)
    ([[3.5, -0.1, 3600.0]], ['current_A', 'time_s', 'voltage_V'])
    """
    found = map_named_columns([str(c) for c in raw.columns])
    missing = [q for q in required if q not in found]
    if missing:
        raise DataFileError(f"{path}: no {', no '.join(m.split('_')[0] for m in missing)} column ({fmt}); "
                            f"columns are: {', '.join(map(str, raw.columns[:15]))}")
    if not len(raw):
        raise DataFileError(f"{path}: header only, no data rows")
    columns: dict[str, pd.Series] = {}
    for quantity, (header, factor) in found.items():
        values = raw[header]
        if quantity == "time_s" and values.dtype == object and not to_number(values).notna().all():
            if looks_like_duration(values):
                values = parse_duration(values)
            else:  # EC-Lab 'time/s' written as dates (dd.mm.yyyy in German-locale exports)
                stamps = parse_stamps(values)
                values = (stamps - stamps.dropna().iloc[0]).dt.total_seconds() if stamps.notna().any() else values
            factor = 1.0
        columns[quantity] = to_number(values) * factor
    out = pd.DataFrame(columns, index=raw.index)
    for quantity in ("current_A", "voltage_V"):
        if quantity in found:
            header = found[quantity][0]
            check_numbers(path, raw[header], out[quantity], (labels or {}).get(header, header))
    # a column the file names but leaves blank throughout is not a quantity it holds (the required ones stay)
    return out, [q for q in found if q in required or out[q].notna().any()]


_DECIMAL_COMMA = re.compile(r"(?:^|[;\t])\s*\"?-?\d+,\d+(?:[eE][-+]?\d+)?\"?\s*(?=[;\t]|$)", re.M)


def decimal_mark(lines: list[str], sep: str) -> str:
    """``","`` when ``;``- or tab-separated data lines write numbers with decimal commas, else ``"."``.

    Example
    -------
    >>> decimal_mark(["1,5;2;3"], ";"), decimal_mark(["1.5;2;3"], ";"), decimal_mark(["1,5,2"], ",")
    (',', '.', '.')
    """
    if sep == ",":
        return "."
    return "," if _DECIMAL_COMMA.search("\n".join(lines[:200])) else "."


def read_delimited(path: Path, skip: int = 0) -> pd.DataFrame:
    """The table of a delimited text file whose column header is line ``skip`` (0-based): the separator (``;``,
    tab or ``,``) from that line, the decimal mark from the data lines after it, UTF-8 else Latin-1. Numeric columns
    come back as numbers (parsed by pandas' C parser); a column with text in it stays text (its raw strings), for
    :func:`to_number` and :func:`check_numbers` to convert and report.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.txt")
    >>> _ = open(p, "w").write("~ header\\na;b;c\\n1,5;2;x\\n2,5;3;y\\n")
    >>> read_delimited(Path(p), 1).dtypes.astype(str).tolist()
    ['float64', 'int64', 'object']
    """
    head = text_head(read_head(path)).splitlines()
    header = head[skip] if len(head) > skip else ""
    sep = max((";", "\t", ","), key=header.count)
    decimal = decimal_mark(head[skip + 1:-1] or head[skip + 1:], sep)
    for enc in ("utf-8", "latin-1"):
        try:
            return pd.read_csv(path, sep=sep, skiprows=skip, encoding=enc, keep_default_na=False, na_values=[""],
                               index_col=False, decimal=decimal, engine="c", low_memory=False)
        except UnicodeDecodeError:
            continue
        except pd.errors.ParserError as exc:
            raise DataFileError(f"{path}: cannot be read as a {sep!r}-separated table ({exc})") from exc
    raise DataFileError(f"{path}: neither UTF-8 nor Latin-1 text")  # pragma: no cover
