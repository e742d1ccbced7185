"""Classic insertion electrodes as (ion-rich, ion-poor) structure pairs, and the working-ion metals, built in code.

Every structure is made here from published lattice parameters and Wyckoff positions (pymatgen's
:meth:`~pymatgen.core.Structure.from_spacegroup`); nothing is downloaded. Three prototypes carry most classic
cathodes and anodes:

- **olivine** ``AMPO4`` (Pnma, No. 62): LiFePO4 from Streltsov et al., Acta Cryst. B 49, 147 (1993):
  a, b, c = 10.332, 6.010, 4.692 Å; Li 4a (0, 0, 0), Fe 4c (0.28222, 1/4, 0.97472), P 4c (0.09486, 1/4, 0.41820),
  O 4c (0.09678, 1/4, 0.74279), O 4c (0.45710, 1/4, 0.20602), O 8d (0.16558, 0.04646, 0.28480);
- **layered O3** ``AMO2`` (alpha-NaFeO2 type, R-3m, No. 166, hexagonal axes): LiCoO2 from Akimoto, Gotoh and
  Oosawa, J. Solid State Chem. 141, 298 (1998): a = 2.8156, c = 14.0542 Å; Li 3a (0, 0, 0), Co 3b (0, 0, 1/2),
  O 6c (0, 0, 0.2396);
- **layered 1T** ``AMX2`` (LiTiS2 type, P-3m1, No. 164): Ti 1a (0, 0, 0), S 2d (1/3, 2/3, 1/4), Li 1b (0, 0, 1/2);
  LiTiS2 a = 3.455, c = 6.195 Å from Whittingham, Prog. Solid State Chem. 12, 41 (1978).

Other members of a family take the prototype's positions with their own lattice parameters (rounded from the
literature; the source of each is in :data:`PAIRS`). They are starting points: a relaxation moves every ion and
the cell, so the start must have the right arrangement, not the last digit. The ion-poor member is the ion-rich
one with every working ion removed (the framework kept), as computational voltage studies do.

Example
-------
>>> pair = insertion_pair("LiCoO2")
>>> pair.rich.composition.reduced_formula, pair.poor.composition.reduced_formula, pair.ion
('LiCoO2', 'CoO2', 'Li')
>>> metal("Na").composition.reduced_formula, len(metal("Na"))
('Na', 1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from battlab.errors import BattlabError

__all__ = ["PAIRS", "InsertionPair", "StructureError", "insertion_pair", "layered_1t", "layered_o3", "metal",
           "olivine", "pair_names", "remove_ion"]


class StructureError(BattlabError, ValueError):
    """A structure that cannot serve: unknown pair or metal, or no working ion in it."""


def olivine(a_ion: str = "Li", m: str = "Fe", abc: tuple[float, float, float] = (10.332, 6.010, 4.692)) -> Any:
    """An olivine ``AMPO4`` (Pnma, 28 atoms) on the LiFePO4 positions of Streltsov et al. (1993).

    Example
    -------
    >>> s = olivine("Li", "Mn", (10.446, 6.104, 4.744))
    >>> s.composition.reduced_formula, len(s), s.get_space_group_info()
    ('LiMnPO4', 28, ('Pnma', 62))
    """
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup(
        "Pnma", Lattice.orthorhombic(*abc), [a_ion, m, "P", "O", "O", "O"],
        [[0, 0, 0], [0.28222, 0.25, 0.97472], [0.09486, 0.25, 0.41820], [0.09678, 0.25, 0.74279],
         [0.45710, 0.25, 0.20602], [0.16558, 0.04646, 0.28480]])


def layered_o3(a_ion: str = "Li", m: str = "Co", x: str = "O", a: float = 2.8156, c: float = 14.0542,
               z: float = 0.2396) -> Any:
    """A layered O3 ``AMX2`` (alpha-NaFeO2 type, R-3m), as its 4-atom primitive cell (LiCoO2 by default).

    Example
    -------
    >>> s = layered_o3()
    >>> s.composition.reduced_formula, len(s), s.get_space_group_info()
    ('LiCoO2', 4, ('R-3m', 166))
    """
    from pymatgen.core import Lattice, Structure

    conv = Structure.from_spacegroup("R-3m", Lattice.hexagonal(a, c), [a_ion, m, x],
                                     [[0, 0, 0], [0, 0, 0.5], [0, 0, z]])
    return conv.get_primitive_structure()


def layered_1t(a_ion: str = "Li", m: str = "Ti", x: str = "S", a: float = 3.455, c: float = 6.195,
               z: float = 0.25) -> Any:
    """A layered 1T ``AMX2`` (LiTiS2 type, P-3m1, 4 atoms): the ion in the octahedral sites between MX2 slabs.

    Example
    -------
    >>> s = layered_1t()
    >>> s.composition.reduced_formula, len(s), s.get_space_group_info()
    ('LiTiS2', 4, ('P-3m1', 164))
    """
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("P-3m1", Lattice.hexagonal(a, c), [m, x, a_ion],
                                     [[0, 0, 0], [1 / 3, 2 / 3, z], [0, 0, 0.5]])


#: Working-ion metals: (lattice, a in Å[, c]) at room temperature (Kittel, Introduction to Solid State Physics,
#: 8th ed., Table 1.3 / the CRC Handbook): the reference whose energy per atom enters the voltage.
METALS: dict[str, tuple[str, float, float | None]] = {
    "Li": ("bcc", 3.491, None), "Na": ("bcc", 4.225, None), "K": ("bcc", 5.225, None),
    "Mg": ("hcp", 3.209, 5.211), "Zn": ("hcp", 2.665, 4.947), "Ca": ("fcc", 5.588, None), "Al": ("fcc", 4.050, None),
}


def metal(ion: str) -> Any:
    """The working ion's metal as a one-atom primitive cell (hcp: two atoms), built from :data:`METALS`.

    Raises
    ------
    StructureError
        An ion without a metal here.

    Example
    -------
    >>> round(metal("Li").volume, 2)
    21.27
    >>> metal("Xe")
    Traceback (most recent call last):
    ...
    battlab.design.pairs.StructureError: no metal reference for working ion 'Xe'; known: Li, Na, K, Mg, Zn, Ca, Al
    """
    from pymatgen.core import Lattice, Structure

    if ion not in METALS:
        raise StructureError(f"no metal reference for working ion {ion!r}; known: {', '.join(METALS)}")
    kind, a, c = METALS[ion]
    if kind == "hcp":
        return Structure(Lattice.hexagonal(a, c), [ion, ion], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    basis = [[0, 0, 0], [0.5, 0.5, 0.5]] if kind == "bcc" else [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    conv = Structure(Lattice.cubic(a), [ion] * len(basis), basis)
    return conv.get_primitive_structure()


def remove_ion(structure: Any, ion: str) -> Any:
    """The framework: ``structure`` without any ``ion`` site (the ion-poor end of an insertion pair).

    Raises
    ------
    StructureError
        The structure holds no ``ion`` (nothing to remove), or nothing but ``ion``.

    Example
    -------
    >>> remove_ion(layered_o3(), "Li").composition.reduced_formula
    'CoO2'
    >>> remove_ion(layered_o3(), "Na")
    Traceback (most recent call last):
    ...
    battlab.design.pairs.StructureError: structure LiCoO2 has no working ion Na
    """
    symbols = {site.specie.symbol for site in structure}
    if ion not in symbols:
        raise StructureError(f"structure {structure.composition.reduced_formula} has no working ion {ion}")
    if symbols == {ion}:
        raise StructureError(f"structure {structure.composition.reduced_formula} is only {ion}: no framework")
    poor = structure.copy()
    poor.remove_species([ion])
    return poor


@dataclass(frozen=True)
class InsertionPair:
    """An insertion electrode: the ion-rich (discharged) and ion-poor (charged) structures of one framework.

    ``mp_battery_id`` names the Materials Project insertion electrode of the same framework and end formulas
    (its ``battery_id``, e.g. ``"mp-22526_Li"``), where one was identified; benchmarks compare with its DFT voltage.
    """

    name: str
    ion: str
    rich: Any
    poor: Any
    source: str
    mp_battery_id: str | None = None


@dataclass(frozen=True)
class _PairSpec:
    ion: str
    build: Callable[[], Any]
    source: str
    mp_battery_id: str | None


def _o3(a_ion: str, m: str, a: float, c: float, z: float = 0.2396, x: str = "O") -> Callable[[], Any]:
    return lambda: layered_o3(a_ion, m, x, a, c, z)


def _t1(a_ion: str, m: str, x: str, a: float, c: float, z: float = 0.25) -> Callable[[], Any]:
    return lambda: layered_1t(a_ion, m, x, a, c, z)


#: Classic insertion pairs: name -> (working ion, builder of the ion-rich structure, source, Materials Project
#: battery_id of the same framework). Ordered small cells first. The Materials Project ids were chosen by formula,
#: framework type and ground-state stability; they are the frameworks meant, not checked atom by atom.
PAIRS: dict[str, _PairSpec] = {
    "LiCoO2": _PairSpec("Li", _o3("Li", "Co", 2.8156, 14.0542),
                        "layered O3, Akimoto et al., J. Solid State Chem. 141, 298 (1998)", "mp-22526_Li"),
    "LiTiS2": _PairSpec("Li", _t1("Li", "Ti", "S", 3.455, 6.195),
                        "layered 1T, Whittingham, Prog. Solid State Chem. 12, 41 (1978)", "mp-2156_Li"),
    "NaTiS2": _PairSpec("Na", _t1("Na", "Ti", "S", 3.41, 6.9),
                        "Na in the 1T-TiS2 framework (LiTiS2 positions; c widened for Na, relaxed)", "mp-2156_Na"),
    "LiCrO2": _PairSpec("Li", _o3("Li", "Cr", 2.901, 14.41),
                        "layered O3 (LiCoO2 positions), a and c of LiCrO2 rounded from reported values (a start)",
                        "mp-18793_Li"),
    "LiVO2": _PairSpec("Li", _o3("Li", "V", 2.84, 14.76),
                       "layered O3 (LiCoO2 positions), a and c of LiVO2 rounded from reported values (a start)",
                       "mp-19340_Li"),
    "NaCrO2": _PairSpec("Na", _o3("Na", "Cr", 2.975, 15.96, 0.2327),
                        "layered O3 (alpha-NaFeO2 positions), a and c of NaCrO2: Komaba et al., Electrochem. Commun. "
                        "12, 355 (2010)", "mp-25302_Na"),
    "NaCoO2": _PairSpec("Na", _o3("Na", "Co", 2.889, 15.60, 0.2327),
                        "layered O3 (alpha-NaFeO2 positions), a and c of O3-NaCoO2: Delmas et al., Solid State "
                        "Ionics 3-4, 165 (1981)", "mp-18921_Na"),
    "NaFeO2": _PairSpec("Na", _o3("Na", "Fe", 3.025, 16.09, 0.2327),
                        "alpha-NaFeO2 (R-3m), a and c rounded from reported values (a start)",
                        "mp-19359_Na"),
    "KCrO2": _PairSpec("K", _o3("K", "Cr", 3.03, 17.7, 0.2250),
                       "K in the O3 CrO2 framework of NaCrO2 (alpha-NaFeO2 positions; c widened for K, relaxed)",
                       "mp-25302_K"),
    "LiCrS2": _PairSpec("Li", _t1("Li", "Cr", "S", 3.46, 6.14),
                        "layered 1T (LiTiS2 positions), a and c of LiCrS2 rounded from reported values (a start)",
                        "mp-4226_Li"),
    "LiVS2": _PairSpec("Li", _t1("Li", "V", "S", 3.38, 6.13),
                       "layered 1T (LiTiS2 positions), a and c of LiVS2 rounded from reported values (a start)",
                       "mp-7543_Li"),
    "NaTiO2": _PairSpec("Na", _o3("Na", "Ti", 3.04, 16.2, 0.2327),
                        "layered O3 (alpha-NaFeO2 positions), a and c of NaTiO2 rounded from reported values (a start)",
                        "mp-7002_Na"),
    "LiNiO2": _PairSpec("Li", _o3("Li", "Ni", 2.878, 14.19),
                        "layered O3 (LiCoO2 positions), a and c of LiNiO2 rounded from reported values (a start; kept "
                        "R-3m, without the Jahn-Teller distortion the DFT ground state may have)", "mp-25210_Li"),
    "LiFePO4": _PairSpec("Li", lambda: olivine("Li", "Fe"),
                         "olivine, Streltsov et al., Acta Cryst. B 49, 147 (1993)", "mp-19017_Li"),
    "LiMnPO4": _PairSpec("Li", lambda: olivine("Li", "Mn", (10.446, 6.104, 4.744)),
                         "olivine (LiFePO4 positions), a, b, c of LiMnPO4: Geller and Durand, Acta Cryst. 13, 325 "
                         "(1960)", "mp-18997_Li"),
}


def pair_names(ion: str | None = None) -> list[str]:
    """Names of the pairs in :data:`PAIRS` (of one working ion if given), small cells first.

    Example
    -------
    >>> pair_names("K")
    ['KCrO2']
    """
    return [name for name, spec in PAIRS.items() if ion is None or spec.ion == ion]


def insertion_pair(name: str) -> InsertionPair:
    """The (ion-rich, ion-poor) structures of a pair of :data:`PAIRS`.

    Raises
    ------
    StructureError
        An unknown name (the message lists the known ones).

    Example
    -------
    >>> p = insertion_pair("LiFePO4")
    >>> len(p.rich), len(p.poor), p.mp_battery_id
    (28, 24, 'mp-19017_Li')
    """
    if name not in PAIRS:
        raise StructureError(f"unknown insertion pair {name!r}; known: {', '.join(PAIRS)}")
    spec = PAIRS[name]
    rich = spec.build()
    return InsertionPair(name=name, ion=spec.ion, rich=rich, poor=remove_ion(rich, spec.ion), source=spec.source,
                         mp_battery_id=spec.mp_battery_id)
