"""Redox-limited theoretical capacity: how many working ions the redox-active cations of a formula let you remove.

The all-ions theoretical capacity (:class:`battlab.featurize.BatteryDescriptors`, ``n z F / M``) counts every
working ion of the discharged formula, whether or not anything in the host can be oxidized to compensate. That is
fine as a descriptor but absurd as the capacity of an electrode: Li3ClO or Na3OF (solid electrolytes, no element
that can change its oxidation state) would be "better cathodes" than LiCoO2. :func:`redox_capacity` limits the
extracted ions by the charge the cations can give up.

The rule
--------
1. Oxidation states of the discharged formula: the most probable of pymatgen's
   ``Composition.oxi_state_guesses()`` (integer states first; a mixed-valence element gets its mean state, Mn 3.5 in
   LiMn2O4), computed on the reduced formula and cached. A formula with fractional amounts is scaled by the smallest
   integer up to :data:`MAX_SCALE` that makes it integer (Na0.67Mn0.67Ni0.33O2 -> Na2Mn2NiO6); when none does, or
   pymatgen finds no charge-balanced guess, or the guess would take more than ``max_combinations`` combinations
   (:data:`MAX_GUESS_COMBINATIONS`, a budget in work: large cells such as Li14Ni9(P2O7)8 take seconds each), the
   capacity is NaN and ``note`` says why (never a silent 0).
2. Redox-active: a cation (positive state) of a metal or metalloid other than the working ion. Anions are not counted
   (no anion/oxygen redox: Li2MnO3's capacity beyond Mn4+ is oxygen redox and is not counted), nor non-metal
   cations (P5+, S6+, N5+ of polyanions), nor elements at state 0.
3. Its highest state: :func:`max_oxidation_state`, the highest state in pymatgen's ``Element.icsd_oxidation_states``
   (observed in ICSD compounds), except :data:`MAX_OXIDATION_OVERRIDES` (Mn: 4, Fe: 4).
4. Removable charge = sum over redox-active elements of amount x (highest state - state); removable ions =
   min(working-ion content, removable charge / z); capacity = removable ions x z F / M, M the molar mass of the
   discharged formula as written (mAh/g). An upper bound still: it ignores structural limits and voltage windows.

Example
-------
>>> c = redox_capacity(["LiFePO4", "LiCoO2", "LiMn2O4", "Li2MnO3", "Li3ClO"], working_ion="Li")
>>> c["capacity_mAh_g"].round(0).tolist()
[170.0, 274.0, 148.0, 0.0, 0.0]
>>> c.loc[0, "redox"], c.loc[3, "note"]
('Fe2+->Fe3+', 'no redox-active cation (Mn at its highest counted state; anion redox not counted)')
>>> round(float(c.loc[3, "capacity_all_ions_mAh_g"]), 0)  # every Li extracted: not reachable by cation redox
459.0
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["CAPACITY_COLUMNS", "MAX_GUESS_COMBINATIONS", "MAX_OXIDATION_OVERRIDES", "MAX_SCALE", "max_oxidation_state",
           "redox_capacity"]

#: Highest oxidation states counted where pymatgen's ICSD maximum is not what insertion electrodes reach or is too
#: low. Mn: 4 (ICSD goes to Mn7+, permanganate; no insertion host oxidizes Mn beyond 4+, Li2MnO3 is
#: electrochemically inactive by cation redox). Fe: 4 (ICSD stops at Fe3+; Fe3+/Fe4+ is the couple of O3-NaFeO2,
#: Yabuuchi et al., Electrochemistry 80, 716 (2012)).
MAX_OXIDATION_OVERRIDES: dict[str, int] = {"Mn": 4, "Fe": 4}
#: Default budget of :func:`redox_capacity`: most combinations pymatgen's oxidation-state guesser may try for one
#: formula (as counted by :mod:`battlab.design.candidates`); larger ones get NaN with the reason.
MAX_GUESS_COMBINATIONS = 20_000
#: Largest factor tried to make a fractional formula integer before guessing oxidation states.
MAX_SCALE = 12
#: Columns of :func:`redox_capacity`'s table.
CAPACITY_COLUMNS = ("capacity_mAh_g", "capacity_all_ions_mAh_g", "removable_ions", "redox", "note")
_FARADAY_MAH = 96485.33212 / 3.6  # mAh per mol of electrons


@cache
def max_oxidation_state(symbol: str) -> float:
    """The highest oxidation state counted for an element: :data:`MAX_OXIDATION_OVERRIDES`, else the highest of
    pymatgen's ICSD oxidation states (of all its known states when it has none).

    >>> max_oxidation_state("Co"), max_oxidation_state("Mn"), max_oxidation_state("Ni"), max_oxidation_state("V")
    (4, 4, 4, 5)
    """
    from pymatgen.core import Element

    if symbol in MAX_OXIDATION_OVERRIDES:
        return MAX_OXIDATION_OVERRIDES[symbol]
    el = Element(symbol)
    states = el.icsd_oxidation_states or el.oxidation_states
    return max(states) if states else 0


def _integer_scale(amounts: dict[str, float]) -> int | None:
    for k in range(1, MAX_SCALE + 1):
        if all(abs(a * k - round(a * k)) <= 0.02 * k and round(a * k) > 0 for a in amounts.values()):
            return k
    return None


def _state(x: float) -> str:
    return f"{x:+g}"[1:] + ("+" if x > 0 else "-")


@lru_cache(maxsize=100_000)
def _one(formula: str, ion: str, max_combinations: int) -> tuple[float, float, float, str, str]:
    """(capacity, all-ions capacity, removable ions, redox couples, note) of one formula."""
    from pymatgen.core import Composition, Element

    from battlab.design.candidates import _guess_cost, _oxidation_of
    from battlab.formulas import parse_formula

    p = parse_formula(formula)
    if p.error:
        return np.nan, np.nan, np.nan, "", p.error
    comp = p.composition.element_composition
    amounts = {el.symbol: float(a) for el, a in comp.items()}
    z = Element(ion).common_oxidation_states[0]
    n_ion = amounts.get(ion, 0.0)
    per_ion = z * _FARADAY_MAH / float(comp.weight)
    all_ions = n_ion * per_ion
    if n_ion <= 0:
        return 0.0, 0.0, 0.0, "", f"no {ion} in the formula"
    k = _integer_scale(amounts)
    if k is None:
        return (np.nan, all_ions, np.nan, "",
                f"oxidation states not guessed: amounts not integer even x{MAX_SCALE} (write an integer formula)")
    scaled = Composition({el: round(a * k) for el, a in amounts.items()})
    cost = _guess_cost(scaled)
    if cost > max_combinations:
        return (np.nan, all_ions, np.nan, "", f"too large for oxidation-state guessing ({cost:,} combinations > "
                f"max_combinations={max_combinations:,})")
    guess = _oxidation_of(scaled.reduced_formula)
    if guess is None:
        return np.nan, all_ions, np.nan, "", "no charge-balanced oxidation states found (pymatgen's guesses)"
    states = dict(guess)
    charge, couples, at_max = 0.0, [], []
    for el, x in states.items():
        e = Element(el)
        if el == ion or x <= 0 or not (e.is_metal or e.is_metalloid):
            continue
        top = max_oxidation_state(el)
        if top > x:
            charge += amounts[el] * (top - x)
            couples.append(f"{el}{_state(x)}->{el}{_state(top)}")
        else:
            at_max.append(el)
    removable = min(n_ion, charge / z)
    note = ""
    if not couples:
        which = (f"{', '.join(at_max)} at {'its' if len(at_max) == 1 else 'their'} highest counted state; "
                 if at_max else "")
        note = f"no redox-active cation ({which}anion redox not counted)"
    elif removable < n_ion - 1e-9:
        note = f"redox-limited: {removable:.3g} of {n_ion:g} {ion} removable"
    if couples and removable >= n_ion - 1e-9 and len(couples) == 1 and charge / z > n_ion + 1e-9:
        # one couple, more than enough: show what is used (Fe2+->Fe3+ for LiFePO4, not Fe2+->Fe4+)
        el, x = next((el, x) for el, x in states.items() if couples[0].startswith(f"{el}{_state(x)}->"))
        couples = [f"{el}{_state(x)}->{el}{_state(x + n_ion * z / amounts[el])}"]
    return removable * per_ion, all_ions, removable, ", ".join(couples), note


def redox_capacity(formulas: Any, working_ion: str = "Li",
                   max_combinations: int = MAX_GUESS_COMBINATIONS) -> pd.DataFrame:
    """Redox-limited theoretical gravimetric capacity of each (discharged) formula: see the module's rule.

    Returns one row per formula (same order and index as a Series input) with ``capacity_mAh_g`` (redox-limited),
    ``capacity_all_ions_mAh_g`` (every working ion extracted, as :class:`battlab.featurize.BatteryDescriptors`),
    ``removable_ions`` (per formula unit), ``redox`` (the couples used, e.g. ``Fe2+->Fe3+``) and ``note`` (why the
    capacity is limited, 0 or NaN; empty when every working ion can be removed). Each distinct formula is computed
    once per process (cached); ``max_combinations`` bounds the oxidation-state guessing of one formula.

    >>> c = redox_capacity(["NaFePO4", "Na3OF"], working_ion="Na")
    >>> c["capacity_mAh_g"].round(0).tolist(), c["redox"].tolist()
    ([154.0, 0.0], ['Fe2+->Fe3+', ''])
    """
    from battlab.featurize import WORKING_IONS

    if working_ion not in WORKING_IONS:
        raise BattlabError(f"unknown working ion {working_ion!r}; choose one of {', '.join(WORKING_IONS)}")
    index = formulas.index if isinstance(formulas, pd.Series) else None
    rows = [_one(str(f) if f is not None and f == f else "", working_ion, int(max_combinations))
            for f in list(formulas)]
    table = pd.DataFrame(rows, columns=list(CAPACITY_COLUMNS), index=index)
    return table.astype({c: float for c in CAPACITY_COLUMNS[:3]})
