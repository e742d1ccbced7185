"""Columns found by name and unit: ``Current (mA)``, ``I/mA``, ``current_A``, ``time/h`` -> the tidy quantities.

Every text reader that meets vendor headers maps them here, so that one alias table and one unit table serve all
formats (and a header the suite has never seen still reads when it names its quantity and unit).

Example
-------
>>> sorted(map_named_columns(["Current (mA)", "Voltage/V", "Test Time (h)"]).items())
[('current_A', ('Current (mA)', 0.001)), ('time_s', ('Test Time (h)', 3600.0)), ('voltage_V', ('Voltage/V', 1.0))]
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from battlab.cycling.formats import read_head, text_head
from battlab.errors import DataFileError

__all__ = ["REQUIRED", "check_numbers", "decimal_mark", "looks_like_duration", "map_named_columns", "name_and_unit",
           "parse_duration", "parse_stamps", "read_delimited", "split_counter", "tidy_from_named", "to_number"]

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
# a whole column of durations, one per line (no decimal commas): rewritten to 'D:H:M:S' lines for pandas' C parser
_DURATIONS = re.compile(r"(?:[ \t]*+(?:\d++[ \t]*+d(?:ays?)?+[ \t]*+)?+\d++:\d{1,2}+:\d{1,2}+(?:\.\d*+)?+[ \t]*+"
                        r"(?:\n|\Z))++")


def parse_duration(series: pd.Series) -> pd.Series:
    """Seconds from durations written as ``[Nd ]h:mm:ss[.f]`` (hours may exceed 24) or plain numbers of seconds.

    Example
    -------
    >>> parse_duration(pd.Series(["  2d 02:52:51.57", "144:01:18", "00:00:0", "12.5"])).tolist()
    [183171.57, 518478.0, 0.0, 12.5]
    """
    if series.dtype != object:  # parsed as numbers already: seconds
        return to_number(series).astype(float).round(9)
    written = series.notna().to_numpy()
    whole = "\n".join(series[written].astype(str))
    # one check for the whole column, then, when every value has days or none has, 'D:H:M:S' (or 'H:M:S') lines for
    # pandas' C parser (after the check, a 'd' can only follow the days)
    days = whole.count("d")
    if whole and days in (0, whole.count("\n") + 1) and _DURATIONS.fullmatch(whole):
        whole = whole.replace("days", "d").replace("day", "d").replace("d", ":")
        parts = pd.read_csv(io.StringIO(whole), sep=":", header=None, names=["d", "h", "m", "s"][0 if days else 1:],
                            dtype=float, engine="c", skipinitialspace=True).to_numpy()
        if not days:
            parts = np.column_stack([np.zeros(len(parts)), parts])
        seconds = np.full(len(series), np.nan)
        seconds[written] = parts[:, 0] * 86400 + parts[:, 1] * 3600 + parts[:, 2] * 60 + parts[:, 3]
        return pd.Series(seconds, index=series.index).round(9)
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
    n = len(k)
    rows = np.arange(n)
    code = np.where(k == "C", 1, np.where(k == "D", 2, 0))
    last = np.maximum.accumulate(np.where(code > 0, rows, 0)) if n else rows
    phase = code[last] if n else code  # the kind of the phase a row is in (0 before the first C or D)
    if group is None:
        starts = np.r_[True, phase[1:] != phase[:-1]]
    else:
        g = pd.Series(group)
        if g.dtype.kind == "f":  # a change of value (NaN after NaN is none, -0.0 after 0.0 is one: as their text)
            v = g.to_numpy()
            same = (v[1:] == v[:-1]) & (np.signbit(v[1:]) == np.signbit(v[:-1]))
            same |= np.isnan(v[1:]) & np.isnan(v[:-1])
            starts = np.r_[True, ~same]
        elif g.dtype.kind in "iub":
            v = g.to_numpy()
            starts = np.r_[True, v[1:] != v[:-1]]
        else:
            t = g.astype(str).to_numpy()
            starts = np.r_[True, t[1:] != t[:-1]]
    starts = starts[:n]
    segment = np.cumsum(starts)
    mine = k == which
    own = np.nan_to_num(values[mine])
    seg_own = segment[mine]
    same_seg = np.r_[False, seg_own[1:] == seg_own[:-1]]
    step = np.where(same_seg, own - np.r_[np.nan, own[:-1]], np.nan) if len(own) else own
    inc = np.where(step >= 0, step, own)  # the rise, or the value itself after a fall (a restart) or at the start
    running = np.zeros(n)
    if len(own):  # pandas' grouped cumsum (compensated) within each segment
        running[mine] = pd.Series(inc).groupby(seg_own).cumsum().to_numpy()
    # carried on over the other rows of the segment: the last own row, when it is in the same segment
    last_own = np.maximum.accumulate(np.where(mine, rows, -1)) if n else rows
    seg_start = np.maximum.accumulate(np.where(starts, rows, 0)) if n else rows
    carried = (last_own >= seg_start) & (last_own >= 0)
    out = np.where(carried, running[np.maximum(last_own, 0)], 0.0) if n else running
    out[phase != (1 if which == "C" else 2)] = 0.0
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


def _all_numbers(values: pd.Series) -> bool:
    """Whether every value of a text column reads as a number (its first 50 values tried first)."""
    head = values.head(50)
    return bool(to_number(head).notna().all()) and bool(to_number(values).notna().all())


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
        if quantity == "time_s" and values.dtype == object and not _all_numbers(values):
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
    return out, [q for q in found if q in required or not np.isnan(out[q].to_numpy(dtype=float)).all()]


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
    raw_head = read_head(path)
    head = text_head(raw_head).splitlines()
    header = head[skip] if len(head) > skip else ""
    sep = max((";", "\t", ","), key=header.count)
    decimal = decimal_mark(head[skip + 1:-1] or head[skip + 1:], sep)
    try:
        raw_head.decode("utf-8")
        encodings = ("utf-8", "latin-1")
    except UnicodeDecodeError as exc:  # not UTF-8 (unless only a character cut at the end of the head)
        encodings = ("utf-8", "latin-1") if exc.start >= len(raw_head) - 3 else ("latin-1",)
    for enc in encodings:
        try:
            return pd.read_csv(path, sep=sep, skiprows=skip, encoding=enc, keep_default_na=False, na_values=[""],
                               index_col=False, decimal=decimal, engine="c", low_memory=False)
        except UnicodeDecodeError:
            continue
        except pd.errors.ParserError as exc:
            raise DataFileError(f"{path}: cannot be read as a {sep!r}-separated table ({exc})") from exc
    raise DataFileError(f"{path}: neither UTF-8 nor Latin-1 text")  # pragma: no cover
