"""Classic cathode and solid-electrolyte prototype structures, built in code from published crystal data.

Nothing is downloaded: each prototype is made with :meth:`pymatgen.core.Structure.from_spacegroup` from its
space group, lattice parameters and Wyckoff positions as published (rounded; the source is in
:data:`PROTOTYPES`). They are starting points for element substitution (:func:`battlab.design.candidates`),
not relaxed structures: a candidate made from one needs a relaxation (DFT or a universal potential) before its
energy means anything.

This module is the one place of battlab's crystal data: :mod:`battlab.design.pairs` builds its insertion
electrodes from the olivine and layered prototypes and from :data:`LAYERED_1T` and :data:`PEROVSKITE`, other
members of a family taking the same Wyckoff sites with their own elements and cell (:meth:`Prototype.structure`).

Example
-------
>>> s = prototype("olivine")
>>> s.composition.reduced_formula, len(s), s.get_space_group_info()[1]
('LiFePO4', 28, 62)
>>> sorted(PROTOTYPES)
['antiperovskite', 'layered', 'olivine', 'spinel']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from battlab.errors import BattlabError

__all__ = ["LAYERED_1T", "PEROVSKITE", "PROTOTYPES", "Prototype", "prototype"]


@dataclass(frozen=True)
class Prototype:
    """A crystal structure as published: space group, lattice (Å, degrees) and asymmetric unit."""

    name: str
    formula: str
    kind: str
    space_group: str
    lattice: tuple[float, float, float, float, float, float]  # a, b, c (Å), alpha, beta, gamma (degrees)
    species: tuple[str, ...]
    coords: tuple[tuple[float, float, float], ...]  # fractional, in pymatgen's setting of the space group
    source: str

    def structure(self, species: Mapping[str, str] | None = None,
                  lattice: tuple[float, float, float, float, float, float] | None = None,
                  coords: Mapping[int, tuple[float, float, float]] | None = None):  # -> pymatgen.core.Structure
        """The structure as published, or another member of its family on the same Wyckoff sites.

        ``species`` maps a published element to its replacement on every site of that element (``{"Li": "Na"}``),
        ``lattice`` replaces the cell (a, b, c, alpha, beta, gamma), ``coords`` replaces the position of some
        sites of the asymmetric unit (by index into :attr:`coords`).

        Example
        -------
        >>> s = PROTOTYPES["olivine"].structure({"Li": "Na"}, (10.406, 6.219, 4.947, 90, 90, 90))
        >>> s.composition.reduced_formula, len(s), s.get_space_group_info()[1]
        ('NaFePO4', 28, 62)
        """
        from pymatgen.core import Lattice, Structure

        names = [species.get(e, e) for e in self.species] if species else list(self.species)
        sites = [list(coords[i]) if coords and i in coords else list(c) for i, c in enumerate(self.coords)]
        return Structure.from_spacegroup(self.space_group, Lattice.from_parameters(*(lattice or self.lattice)),
                                         names, sites)


#: The built-in prototypes, by name.
PROTOTYPES: dict[str, Prototype] = {p.name: p for p in (
    Prototype(
        "olivine", "LiFePO4", "cathode (olivine)", "Pnma", (10.332, 6.010, 4.692, 90, 90, 90),
        ("Li", "Fe", "P", "O", "O", "O"),
        ((0, 0, 0), (0.28222, 0.25, 0.97472), (0.09486, 0.25, 0.41820), (0.09678, 0.25, 0.74279),
         (0.45710, 0.25, 0.20602), (0.16558, 0.04646, 0.28473)),
        "Streltsov, V. A., Belokoneva, E. L., Tsirelson, V. G. & Hansen, N. K., Multipole analysis of the "
        "electron density in triphylite, LiFePO4, using X-ray diffraction data, Acta Cryst. B49, 147-153 (1993)"),
    Prototype(
        "layered", "LiCoO2", "cathode (layered O3, alpha-NaFeO2 type)", "R-3m", (2.8156, 2.8156, 14.0542, 90, 90, 120),
        ("Li", "Co", "O"), ((0, 0, 0), (0, 0, 0.5), (0, 0, 0.2396)),
        "Akimoto, J., Gotoh, Y. & Oosawa, Y., Synthesis and structure refinement of LiCoO2 single crystals, "
        "J. Solid State Chem. 141, 298-302 (1998)"),
    Prototype(
        "spinel", "LiMn2O4", "cathode (spinel)", "Fd-3m", (8.245, 8.245, 8.245, 90, 90, 90),
        ("Li", "Mn", "O"), ((0, 0, 0), (0.625, 0.625, 0.625), (0.3881, 0.3881, 0.3881)),  # origin choice 1
        "Akimoto, J., Takahashi, Y., Gotoh, Y. & Mizuta, S., Single crystal X-ray diffraction study of the "
        "spinel-type LiMn2O4, Chem. Mater. 12, 3246-3248 (2000); x(O) = 0.263 in origin choice 2"),
    Prototype(
        "antiperovskite", "Li3OCl", "solid electrolyte (antiperovskite)", "Pm-3m", (3.91, 3.91, 3.91, 90, 90, 90),
        ("Cl", "O", "Li"), ((0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)),
        "Zhao, Y. & Daemen, L. L., Superionic conductivity in lithium-rich anti-perovskites, "
        "J. Am. Chem. Soc. 134, 15042-15047 (2012)"),
)}


#: Two more structure types of classic insertion electrodes, used by :mod:`battlab.design.pairs` (not substitution
#: parents: :data:`PROTOTYPES` holds those).
LAYERED_1T = Prototype(
    "layered 1T", "LiTiS2", "layered 1T AMX2 (LiTiS2 / CdI2-derived type)", "P-3m1", (3.455, 3.455, 6.195, 90, 90, 120),
    ("Ti", "S", "Li"), ((0, 0, 0), (1 / 3, 2 / 3, 0.25), (0, 0, 0.5)),
    "Whittingham, M. S., Chemistry of intercalation compounds: metal guests in chalcogenide hosts, "
    "Prog. Solid State Chem. 12, 41-99 (1978)")
PEROVSKITE = Prototype(
    "perovskite", "ReO3", "ReO3 type MX3 and the cubic perovskite AMX3 with A on the empty cube centre", "Pm-3m",
    (3.734, 3.734, 3.734, 90, 90, 90), ("Re", "O"), ((0, 0, 0), (0.5, 0, 0)),
    "Meisel, K., Rheniumtrioxyd. III. Mitteilung. Über die Kristallstruktur des Rheniumtrioxyds, "
    "Z. anorg. allg. Chem. 207, 121-128 (1932)")


def prototype(name: str):  # -> pymatgen.core.Structure
    """The structure of a built-in prototype; an unknown name is a one-line :class:`BattlabError`."""
    if name not in PROTOTYPES:
        raise BattlabError(f"unknown prototype {name!r}; built-in prototypes: {', '.join(sorted(PROTOTYPES))}")
    return PROTOTYPES[name].structure()
