"""Units and numbers as people write them in lab tables, read with pint.

Cells such as ``"165 mAh/g"``, ``"1,5"`` (decimal comma), ``"<1E-10"`` (a detection limit),
``"2.3×10^-4 S cm-1"`` and headers such as ``"Capacity (mAh g-1)"`` are turned into a value,
a unit and a censoring flag, or into a clear reason why they cannot be.

Example
-------
>>> parse_cell("165 mAh/g")
ParsedCell(value=165.0, unit='milliampere_hour / gram', censored='', missing=False, error='')
>>> parse_cell("<1E-10").censored
'<'
>>> split_header("Ionic conductivity (S cm-1)")
('Ionic conductivity', 'siemens / centimeter')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import pint

ureg = pint.UnitRegistry()
# Counting units of their own dimensions, so that eV/atom and eV/formula unit never convert into each other.
ureg.define("atom = [atom_count]")
ureg.define("formula_unit = [formula_count] = fu")
Quantity = ureg.Quantity

#: Cell texts that mean "no value" (compared lower-case, stripped).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "none", "null", "-", "--", "?", "#n/a", "missing"})

_NUMBER = r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?"
_CELL = re.compile(
    r"^(?P<cens><=|>=|<|>|≤|≥)?\s*(?P<num>" + _NUMBER + r")"
    r"(?:\s*[x×*·]\s*10\s*\^?\s*(?P<exp>[+-]?\d+))?"
    r"\s*(?P<unit>.*?)\s*$"
)
_HEADER = re.compile(r"^(?P<name>.*?)\s*[\(\[](?P<unit>[^\(\)\[\]]+)[\)\]]\s*$")
_POWER = re.compile(r"(?<=[A-Za-zµμÅ])(\^?)([+-]?\d+)")
_ALIASES = {"wt%": "percent", "wt.%": "percent", "%": "percent", "vol%": "percent",
            "at%": "percent", "μ": "u", "µ": "u", "Å": "angstrom", "°C": "degC", "℃": "degC",
            "ohm": "ohm", "Ω": "ohm", "−": "-"}


@dataclass(frozen=True)
class ParsedCell:
    """One cell read as a number: value, unit text (pint), censoring ('<', '>' or ''), or error."""

    value: float
    unit: str = ""
    censored: str = ""
    missing: bool = False
    error: str = ""


@lru_cache(maxsize=512)
def parse_unit(text: str) -> pint.Unit:
    """Parse a unit as written in papers: ``S cm-1``, ``mAh g^-1``, ``wt%``, ``μm``, ``°C``.

    Raises ``ValueError`` with the text when pint does not know the unit.

    Example
    -------
    >>> str(parse_unit("mAh g-1"))
    'milliampere_hour / gram'
    """
    s = text.strip()
    for old, new in _ALIASES.items():
        s = s.replace(old, new)
    s = _POWER.sub(lambda m: "^" + m.group(2), s)  # cm-1 -> cm^-1, m2 -> m^2
    s = re.sub(r"\s*[·.]\s*(?=[A-Za-z])", "*", s)  # mAh·g-1 / mAh.g-1
    s = re.sub(r"(?<=[\w\)])\s+(?=[A-Za-z\(])", "*", s)  # "S cm^-1" -> "S*cm^-1"
    if not s:
        return ureg.dimensionless
    try:
        return ureg.parse_units(s)
    except Exception as exc:  # pint raises several types; all mean "not a unit"
        raise ValueError(f"unknown unit {text!r}") from exc


def split_header(header: str) -> tuple[str, str | None]:
    """Split ``"Capacity (mAh/g)"`` into ``("Capacity", "milliampere_hour / gram")``.

    Headers without a parseable bracketed unit come back unchanged with ``None``.
    """
    m = _HEADER.match(str(header))
    if not m:
        return str(header), None
    try:
        unit = parse_unit(m.group("unit"))
    except ValueError:
        return str(header), None
    return m.group("name").strip(), str(unit)


def _to_float(num: str) -> float:
    """Read a number with '.' or ',' as decimal mark; refuse '1,500' (1.5 or 1500?)."""
    if "," in num:
        if "." in num:
            raise ValueError("both ',' and '.' in one number")
        if re.fullmatch(r"[+-]?[1-9]\d{0,2}(,\d{3})+", num):  # "0,165" is clear
            raise ValueError("ambiguous: ',' may be a decimal or a thousands separator")
        num = num.replace(",", ".")
    return float(num)


def parse_cell(text: object) -> ParsedCell:
    """Read one table cell as a number with optional unit and censoring.

    Never raises: problems come back in ``ParsedCell.error``.

    Example
    -------
    >>> parse_cell("1,5 V").value
    1.5
    >>> parse_cell("abc").error
    "not a number: 'abc'"
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ParsedCell(math.nan, missing=True)
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
        if not math.isfinite(value):
            return ParsedCell(value, error=f"non-finite value: {text!r}")
        return ParsedCell(value)
    s = str(text).strip().replace("−", "-").replace("\u2009", " ").replace("\xa0", " ")
    if s.lower() in MISSING_MARKERS:
        return ParsedCell(math.nan, missing=True)
    if s.lower().lstrip("+-") in {"inf", "infinity", "∞"}:
        return ParsedCell(math.nan, error=f"non-finite value: {s!r}")
    m = _CELL.match(s)
    if not m:
        return ParsedCell(math.nan, error=f"not a number: {s!r}")
    try:
        value = _to_float(m.group("num"))
    except ValueError as exc:
        return ParsedCell(math.nan, error=f"{exc}: {s!r}")
    if m.group("exp"):
        try:
            value *= 10.0 ** int(m.group("exp"))
        except OverflowError:
            return ParsedCell(math.nan, error=f"non-finite value: {s!r}")
    if not math.isfinite(value):
        return ParsedCell(math.nan, error=f"non-finite value: {s!r}")
    unit = ""
    if m.group("unit"):
        try:
            unit = str(parse_unit(m.group("unit")))
        except ValueError:
            return ParsedCell(math.nan, error=f"not a number with a known unit: {s!r}")
    cens = {"≤": "<", "≥": ">", "<=": "<", ">=": ">"}.get(m.group("cens") or "", m.group("cens") or "")
    return ParsedCell(value, unit=unit, censored=cens)


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a magnitude between units; ``ValueError`` names both units when they do not match.

    Example
    -------
    >>> convert(1.2, "mS/cm", "S/cm")
    0.0012
    """
    if not from_unit or from_unit == to_unit:
        return value
    try:
        return float(Quantity(value, parse_unit(from_unit)).to(parse_unit(to_unit)).magnitude)
    except pint.DimensionalityError as exc:
        raise ValueError(f"unit {from_unit!r} cannot be converted to {to_unit!r}") from exc


# ---------------------------------------------------------------------------------------------- labels for people
#: Unit suffixes of battlab's column names (``specific_energy_Wh_kg``), as people write the unit. Longest first.
_NAME_UNITS: tuple[tuple[str, str], ...] = (
    ("mAh_cm2", "mAh/cm²"), ("mg_cm2", "mg/cm²"), ("kg_m2", "kg/m²"), ("g_cm3", "g/cm³"), ("N_per_mm", "N/mm"),
    ("mAh_g", "mAh/g"), ("Wh_kg", "Wh/kg"), ("Wh_L", "Wh/L"), ("W_kg", "W/kg"), ("S_cm", "S/cm"),
    ("eV_atom", "eV/atom"), ("per_atom", ""), ("pct", "%"), ("um", "µm"), ("nm", "nm"), ("mm", "mm"), ("Ah", "Ah"),
    ("mAh", "mAh"), ("Wh", "Wh"), ("V", "V"), ("C", "°C"), ("K", "K"), ("s", "s"), ("h", "h"),
)
def unit_text(unit: str | None) -> str:
    """A unit as people write it: pint's names abbreviated (``"siemens / centimeter"`` -> ``"S/cm"``), any other
    text kept as written; ``"text"``, ``"unspecified"``, dimensionless -> ``""``.

    >>> unit_text("electron_volt / atom"), unit_text("milligram / centimeter ** 2"), unit_text("text")
    ('eV/atom', 'mg/cm²', '')
    >>> unit_text("mAh/g"), unit_text("atoms per formula unit")
    ('mAh/g', 'atoms per formula unit')
    """
    u = str(unit or "").strip()
    if u.lower() in ("", "text", "unspecified", "none", "derived", "dimensionless"):
        return ""
    if re.fullmatch(r"[a-z_]+(?: (?:/|\*|\*\*) [a-z_0-9]+)*", u):  # pint's long names
        try:
            return f"{ureg.Unit(u):~P}"
        except Exception:  # pint raises several types; the text as written is then the best label
            return u
    return u


def quantity_label(name: str, unit: str | None = None) -> str:
    """An axis label for a column: its name in words and its unit in brackets.

    A snake_case name loses its unit suffix to the brackets (``specific_energy_Wh_kg`` -> ``Specific energy
    [Wh/kg]``); a header that carries a unit keeps its words (``Ionic conductivity (S cm-1)`` -> ``Ionic
    conductivity [S cm-1]``); ``unit`` (a data card's, a curation report's) fills in when the name has none.
    A ``log10`` prefix stays in front.

    Example
    -------
    >>> quantity_label("specific_energy_Wh_kg")
    'Specific energy [Wh/kg]'
    >>> quantity_label("rate_capability"), quantity_label("capacity_mAh_cm2")
    ('Rate capability', 'Capacity [mAh/cm²]')
    >>> quantity_label("formation_enthalpy_per_atom", "eV/atom")
    'Formation enthalpy per atom [eV/atom]'
    >>> quantity_label("log10 Ionic conductivity (S cm-1)")
    'log10 Ionic conductivity [S cm-1]'
    """
    text = str(name).strip()
    prefix = ""
    if text.lower().startswith("log10 "):
        prefix, text = text[:6], text[6:].strip()
    words, written = text, ""
    m = _HEADER.match(text)
    if m:
        words, written = m.group("name").strip(), m.group("unit").strip()
    elif "_" in text and " " not in text:
        parts = text.split("_")
        for suffix, shown in _NAME_UNITS:
            n = suffix.count("_") + 1
            if len(parts) > n and "_".join(parts[-n:]) == suffix:
                written = shown
                if shown:  # "per_atom" is part of the words, its unit comes from ``unit``
                    parts = parts[:-n]
                break
        words = " ".join(parts)
        words = words[:1].upper() + words[1:]
    written = written or unit_text(unit)
    return f"{prefix}{words}" + (f" [{written}]" if written else "")


def plural(n: int | float, word: str, plural_form: str | None = None) -> str:
    """``n`` and the noun in the number it needs: ``1 campaign``, ``3 campaigns``, ``2 cells``.

    >>> plural(1, "campaign"), plural(3, "campaign"), plural(2, "family", "families")
    ('1 campaign', '3 campaigns', '2 families')
    """
    return f"{n} {word if n == 1 else (plural_form or word + 's')}"


def error_unit(target: str, unit: str = "") -> str:
    """The unit an error of ``target`` is in, for a label: ``" eV/atom"``, ``" (log10)"`` for a log10 target, or ``""``.

    >>> error_unit("formation_enthalpy_per_atom", "eV/atom"), error_unit("log10 sigma", "S/cm")
    (' eV/atom', ' (log10)')
    """
    if str(target).lower().startswith("log10 "):
        return " (log10)"
    label = quantity_label(target, unit)
    shown = label.rpartition(" [")[2][:-1] if label.endswith("]") else ""
    return f" {shown}" if shown else ""
