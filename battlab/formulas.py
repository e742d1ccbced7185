"""Chemical formulas as people type them, checked and normalized with pymatgen.

Example
-------
>>> parse_formula(" LiCoO₂ ").formula
'LiCoO2'
>>> parse_formula("Li2SO4·H2O").formula
'Li2H2SO5'
>>> parse_formula("LiCoPo4").warnings
["rare element in battery materials: Po (did you mean 'LiCoPO4'?)"]
>>> parse_formula("Xx2O").error
"unknown element 'Xx'"
>>> parse_formula("Li1e6O").error
"implausible amount in 'Li1e6O' (> 100000 per formula unit)"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pymatgen.core import Composition, Element

_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
# Hydrate dots: '·', '•', '∙', '*' always; '.' only after a letter or ')' so 'Li0.5CoO2' keeps its decimal.
_HYDRATE = re.compile(r"[·•∙*]|(?<=[A-Za-z\)])\.(?=\d*[A-Z(])")
_LEADING_COUNT = re.compile(r"^(\d+(?:\.\d+)?)(.+)$")
# Fractional amounts as people write them: 'LiNi1/3Mn1/3Co1/3O2' (NMC111), 'Li(Ni1/3Mn1/3Co1/3)O2'
_FRACTION = re.compile(r"(?<=[A-Za-z\)\]])(\d+(?:\.\d+)?)/(\d*[1-9]\d*(?:\.\d+)?)")

#: Elements that almost never occur in battery materials: noble gases and radioactive elements.
#: A formula containing one is kept but flagged, since such hits are usually typos (``Po`` for ``PO``).
RARE_ELEMENTS = frozenset(
    ["He", "Ne", "Ar", "Kr", "Xe", "Rn", "Tc", "Pm", "Po", "At", "Fr", "Ra", "Ac", "Th", "Pa", "U",
     "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr"]
)
#: Amounts above this per formula unit are implausible (a typo such as ``Li1e5O``) and rejected.
MAX_AMOUNT = 1e5
#: Amounts above this are flagged: usually a fractional stoichiometry written as integers (``Mo1000O2889``).
LARGE_AMOUNT = 100.0


@dataclass(frozen=True)
class ParsedFormula:
    """A formula after normalization: ``formula`` is pymatgen's reduced formula ('' on error)."""

    text: str
    formula: str = ""
    composition: Composition | None = None
    error: str = ""
    warnings: list[str] = field(default_factory=list)


def clean_formula_text(text: str) -> str:
    """Normalize unicode subscripts, whitespace and hydrate dots into pymatgen's syntax.

    Example
    -------
    >>> clean_formula_text("CuSO4 · 5H2O")
    'CuSO4(H2O)5'
    >>> clean_formula_text("LiNi1/3Mn1/3Co1/3O2")
    'LiNi0.333333333333Mn0.333333333333Co0.333333333333O2'
    """
    s = str(text).translate(_SUBSCRIPTS)
    s = re.sub(r"\s+", "", s)
    s = _FRACTION.sub(lambda m: f"{float(m.group(1)) / float(m.group(2)):.12g}", s)
    parts = _HYDRATE.split(s)
    out = parts[0]
    for part in parts[1:]:
        m = _LEADING_COUNT.match(part)
        out += f"({m.group(2)}){m.group(1)}" if m else f"({part})"
    return out


def _case_suggestion(text: str, rare: str) -> str | None:
    """'LiCoPo4' with rare 'Po' -> 'LiCoPO4' when splitting the symbol gives a valid formula."""
    fixed = text.replace(rare, rare[0] + rare[1:].upper())
    if fixed == text:
        return None
    try:
        comp = Composition(fixed)
    except Exception:
        return None
    return fixed if comp.valid else None


def parse_formula(text: object) -> ParsedFormula:
    """Parse and check one formula; never raises (problems come back in ``error``/``warnings``)."""
    raw = "" if text is None else str(text)
    if raw.strip().lower() in {"", "nan", "none", "null", "n/a", "na"} and raw.strip() != "NaN":
        return ParsedFormula(raw, error="empty formula")
    cleaned = clean_formula_text(raw)
    try:
        comp = Composition(cleaned)
    except Exception as exc:  # pymatgen raises ValueError, KeyError, ... for bad text
        return ParsedFormula(raw, error=f"cannot parse formula {raw.strip()!r}: {exc}")
    if len(comp) == 0:
        return ParsedFormula(raw, error=f"formula {raw.strip()!r} has no elements")
    unknown = [str(el) for el in comp.elements if not isinstance(el, Element)]
    if unknown:
        return ParsedFormula(raw, error=f"unknown element {unknown[0].rstrip('0+')!r}")
    if any(amount > MAX_AMOUNT for amount in comp.values()):
        return ParsedFormula(raw, error=f"implausible amount in {raw.strip()!r} (> {MAX_AMOUNT:g} per formula unit)")
    warnings = []
    if any(amount > LARGE_AMOUNT for amount in comp.values()):
        warnings.append(f"large amounts (> {LARGE_AMOUNT:g} per formula unit)")
    written = set(re.findall(r"[A-Z][a-z]?", cleaned))
    dropped = sorted(written - {el.symbol for el in comp.elements})
    if dropped:
        warnings.append(f"zero amount of {', '.join(dropped)}")
    for zero in re.finditer(r"(?<=[A-Za-z)])0\d", cleaned):  # 'LiFeP04': a zero typed for the letter O
        fixed = cleaned[:zero.start()] + "O" + cleaned[zero.start() + 1:]
        warnings.append(f"amount with a leading zero: {cleaned[zero.start() - 1:zero.end()]!r} "
                        f"(did you mean {fixed!r}?)")
    for el in sorted(el.symbol for el in comp.elements if el.symbol in RARE_ELEMENTS):
        hint = _case_suggestion(cleaned, el)
        warnings.append(f"rare element in battery materials: {el}" + (f" (did you mean {hint!r}?)" if hint else ""))
    return ParsedFormula(raw, formula=comp.reduced_formula, composition=comp, warnings=warnings)
