"""Candidate electrode and electrolyte materials: new compositions and structures made from known ones.

Three generators, one table (:class:`CandidateSet`):

- **substitution** (:func:`substitute`) — Hautier's data-mined ionic substitution (Hautier et al., Inorg. Chem.
  50, 656 (2011); the probability table ships inside pymatgen): each ion of a parent (other than the working ion)
  may be replaced by another, and a candidate's probability is the product of the conditional substitution
  probabilities ``P(new ion | parent ion)``, as pymatgen's ``SubstitutionPredictor`` computes it (the same search,
  with the table held as a matrix so a parent takes milliseconds). The working ion is kept (and exchanged for
  ``ion`` when the parent holds another one: LiFePO4 with ``ion="Na"`` gives NaFePO4 and its substitutions).
- **enumeration** (:func:`enumerate_compositions`) — every charge-neutral composition of a set of elements that
  passes the electronegativity test (SMACT, Davies et al., J. Open Source Softw. 4, 1361 (2019)), with the working
  ion a cation, up to ``max_stoich`` atoms of an element.
- **prototype structures** — the same substitutions applied to a structure (a user's CIF or a built-in prototype of
  :mod:`battlab.design.prototypes`): every site of a replaced element changes, and the cell is scaled by the change
  in ionic volume (a starting point for a relaxation, not a relaxed structure). Structures that pymatgen's
  ``StructureMatcher`` finds equal are kept once.

Validity filters on every candidate: charge neutrality (from integer oxidation states), the electronegativity test
(cations less electronegative than anions; SMACT's ``pauling_test``), the working ion kept. Every candidate records
its ``parent`` and the ``substitution`` that made it. Nothing is lost: a parent that cannot be used (a formula that
does not parse, an unknown element, a CIF that does not parse, no working ion, no integer oxidation states) and a
duplicate are in :attr:`CandidateSet.set_aside` with the reason.

The table (columns ``candidate_id``, ``formula``, ``working_ion``, ``framework``, ``parent``, ``substitution``,
``method``, ``probability``, ...) is a table like any other: ``battlab curate``, ``battlab featurize`` and
``battlab predict MODEL TABLE`` read it; :meth:`CandidateSet.pool` makes a :class:`~battlab.plan.CandidatePool`.

Example
-------
>>> cands = generate(["LiFePO4"], ion="Na", top=5)
>>> cands.table[["formula", "parent", "substitution"]].iloc[0].tolist()
['NaFePO4', 'LiFePO4', 'Li+->Na+']
>>> len(cands.table), bool(cands.table["formula"].str.contains("Na").all())
(5, True)
>>> generate(["LiXxO2"], ion="Li").set_aside[["parent", "reason"]].iloc[0].tolist()
['LiXxO2', "unknown element 'Xx'"]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["COLUMNS", "ION_CHARGES", "CandidateSet", "enumerate_compositions", "framework", "generate",
           "load_structure", "substitute"]

#: Working ions and their charge.
ION_CHARGES = {"Li": 1, "Na": 1, "K": 1, "Mg": 2, "Ca": 2, "Zn": 2, "Al": 3}
#: Columns of :attr:`CandidateSet.table`.
COLUMNS = ["candidate_id", "formula", "working_ion", "framework", "parent", "parent_formula", "substitution",
           "method", "probability", "n_substituted", "has_structure", "n_sites", "space_group"]
_ASIDE = ["parent", "candidate", "reason"]
_ARROW = "->"


# ============================================================================ helpers

def framework(formula: str, ion: str) -> str:
    """The host composition without the working ion, as a reduced formula (``""`` if nothing is left).

    >>> framework("LiFePO4", "Li"), framework("Na2Fe2(SO4)3", "Na")
    ('FePO4', 'Fe2(SO4)3')
    """
    from pymatgen.core import Composition

    comp = Composition(formula)
    rest = Composition({el: amt for el, amt in comp.items() if el.symbol != ion})
    return rest.reduced_formula if rest.num_atoms else ""


@lru_cache(maxsize=1)
def _model() -> tuple[list[Any], dict[Any, int], np.ndarray]:
    """Hautier's substitution probabilities as a matrix: ``cond[new, old] = P(new | old)``.

    The same numbers as pymatgen's ``SubstitutionProbability.cond_prob`` (its lambda table, its ``alpha = -5`` for
    pairs never observed, its normalisation), computed with numpy from the table file in a fraction of a second.
    """
    import inspect

    from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionProbability
    from pymatgen.core import Species

    table = json.loads((Path(inspect.getfile(SubstitutionProbability)).parent / "data" / "lambda.json").read_text())
    pairs = [(Species.from_str(r[0]), Species.from_str(r[1]), float(r[2])) for r in table if "D1+" not in r]
    species = sorted({s for a, b, _ in pairs for s in (a, b)}, key=lambda s: (s.symbol, s.oxi_state))
    index = {s: i for i, s in enumerate(species)}
    lam = np.full((len(species), len(species)), -5.0)  # pymatgen's default alpha
    for a, b, value in pairs:
        lam[index[a], index[b]] = lam[index[b], index[a]] = value
    e = np.exp(lam)
    px = e.sum(axis=0)  # symmetric: pymatgen's px (half of row sum plus half of column sum)
    return species, index, e / px[None, :]


@lru_cache(maxsize=1)
def _species_keys() -> list[tuple[str, float]]:
    """(symbol, oxidation state) of every species of :func:`_model`, in its order."""
    return [(s.symbol, s.oxi_state) for s in _model()[0]]


@lru_cache(maxsize=256)
def _pauling(symbol: str) -> float | None:
    from smact import Element

    try:
        return Element(symbol).pauling_eneg
    except (NameError, KeyError):
        return None


def _pauling_ok(symbols: Sequence[str], oxi: Sequence[float]) -> bool:
    """SMACT's electronegativity test: every cation less electronegative than every anion."""
    from smact.screening import pauling_test

    oxi = [int(np.sign(o)) * max(1, int(round(abs(o)))) for o in oxi]  # a mean (mixed-valence) state: its sign
    eneg = [_pauling(s) for s in symbols]
    if any(e is None for e in eneg):
        return False
    return bool(pauling_test(list(oxi), eneg))


def _oxidation(comp: Any) -> dict[str, float] | None:
    """The most likely oxidation states of a composition (pymatgen's guesses; integer ones first), or None.

    A mixed-valence element gets its mean state (Mn 3.5 in LiMn2O4): such an element is kept, never substituted.
    """
    guess = _oxidation_of(comp.reduced_formula)
    return dict(guess) if guess is not None else None


@lru_cache(maxsize=4096)
def _oxidation_of(reduced_formula: str) -> tuple[tuple[str, float], ...] | None:
    from pymatgen.core import Composition

    try:
        guesses = Composition(reduced_formula).oxi_state_guesses()
    except Exception:  # pymatgen raises ValueError and others on exotic compositions
        return None
    if not guesses:
        return None
    integer = [g for g in guesses if all(float(v).is_integer() for v in g.values())]
    guess = (integer or guesses)[0]
    return tuple((el, int(v) if float(v).is_integer() else float(v)) for el, v in guess.items())


#: Most combinations pymatgen's oxidation-state guesser may try for one composition (a budget in work, not seconds).
MAX_OXIDATION_COMBINATIONS = 2_000_000


def _guess_cost(comp: Any) -> int:
    """Combinations pymatgen's ``oxi_state_guesses`` enumerates for a composition (its reduced formula)."""
    from math import comb

    from pymatgen.core import Element

    total = 0
    for el, amt in comp.reduced_composition.items():
        n = int(round(amt))
        states = Element(el.symbol).icsd_oxidation_states or Element(el.symbol).common_oxidation_states
        total += comb(n + max(len(states), 1) - 1, max(len(states), 1) - 1) * max(n, 1)
    return total


def _parent_ion(comp: Any, ion: str) -> str | None:
    symbols = [el.symbol for el in comp.elements]
    if ion in symbols:
        return ion
    return next((s for s in ION_CHARGES if s in symbols), None)


# ============================================================================ parents

@dataclass
class _Parent:
    name: str
    composition: Any = None
    structure: Any = None
    error: str = ""


def load_structure(path: str | Path) -> Any:
    """A structure from a CIF (or any file pymatgen reads); a file that does not parse is a :class:`BattlabError`.

    >>> load_structure("no_such.cif")
    Traceback (most recent call last):
    ...
    battlab.errors.BattlabError: no_such.cif: no such file
    """
    import warnings

    from pymatgen.core import Structure

    path = Path(path)
    if not path.is_file():
        raise BattlabError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_file(str(path))
    except Exception as exc:  # pymatgen raises ValueError, IndexError, KeyError ... on a broken CIF
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BattlabError(f"{path.name}: not a readable structure file ({msg})") from None


def _read_parent(item: Any) -> _Parent:
    from pymatgen.core import Structure

    from battlab.design.prototypes import PROTOTYPES, prototype
    from battlab.formulas import parse_formula

    if isinstance(item, Structure):
        return _Parent(item.composition.reduced_formula, item.composition, item)
    if isinstance(item, Path) or isinstance(item, str) and re.search(r"\.(cif|vasp|json|xsf)$|POSCAR", item,
                                                                     re.IGNORECASE):
        name = Path(item).name
        try:
            s = load_structure(item)
        except BattlabError as exc:
            return _Parent(name, error=str(exc).split(": ", 1)[-1])
        return _Parent(name, s.composition, s)
    text = str(item).strip()
    if text in PROTOTYPES:
        s = prototype(text)
        return _Parent(text, s.composition, s)
    parsed = parse_formula(text)
    if parsed.error:
        return _Parent(text, error=parsed.error)
    return _Parent(text, parsed.composition)


# ============================================================================ substitution

def substitute(composition: Any, ion: str = "Li", *, threshold: float = 1e-3, max_substituted: int | None = None
               ) -> tuple[list[dict[str, Any]], str]:
    """Substituted compositions of one parent, most probable first, and the reason when there are none.

    Returns records ``{"mapping": {old element: new element}, "oxidation": {new element: state}, "probability",
    "composition"}``; the ion exchange (the parent's working ion for ``ion``) is part of every mapping when the
    parent holds another working ion. Candidates whose charge does not balance or that fail the electronegativity
    test are dropped (they are not materials); the parent itself is not a candidate.

    >>> recs, why = substitute("LiCoO2", "Li")
    >>> why, recs[0]["composition"].reduced_formula in ("LiNiO2", "LiMnO2", "LiFeO2", "LiCrO2", "LiVO2")
    ('', True)
    """
    from pymatgen.core import Composition, Species

    comp = Composition(composition) if not isinstance(composition, Composition) else composition
    if ion not in ION_CHARGES:
        raise BattlabError(f"working ion {ion!r} is not one of {', '.join(ION_CHARGES)}")
    old_ion = _parent_ion(comp, ion)
    if old_ion is None:
        return [], (f"no working ion in {comp.reduced_formula} (nor {', '.join(s for s in ION_CHARGES if s != ion)} "
                    f"to exchange for {ion}): give the ion-rich (discharged) composition")
    cost = _guess_cost(comp)
    if cost > MAX_OXIDATION_COMBINATIONS:
        return [], (f"{comp.reduced_formula} is too large for oxidation-state guessing ({cost:.2g} combinations, "
                    f"limit {MAX_OXIDATION_COMBINATIONS:.0g})")
    oxi = _oxidation(comp)
    if oxi is None:
        return [], f"no charge-balanced oxidation states found for {comp.reduced_formula}"
    if oxi[old_ion] != ION_CHARGES[old_ion] or (old_ion != ion and ION_CHARGES[ion] != ION_CHARGES[old_ion]):
        if old_ion != ion:
            return [], (f"{old_ion}{oxi[old_ion]:+d} in {comp.reduced_formula} cannot be exchanged for {ion}"
                        f"{ION_CHARGES[ion]:+d} at the same charge")
        return [], f"{ion} is not a {ION_CHARGES[ion]:+d} cation in {comp.reduced_formula} (oxidation {oxi[ion]:+d})"
    species, index, cond = _model()
    hosts = [el for el in oxi if el != old_ion]
    old = [Species(el, oxi[el]) for el in hosts]
    fixed = [isinstance(oxi[el], float) for el in hosts]  # mixed valence: kept as it is
    unknown = [str(s) for s, f in zip(old, fixed, strict=True) if not f and s not in index]
    if unknown:
        return [], f"{', '.join(unknown)} not in the substitution table (Hautier et al. 2011)"
    amounts = {el.symbol: amt for el, amt in comp.reduced_composition.items()}
    blocked = set(ION_CHARGES)  # no working ion enters the host: the ion content stays what it was
    # per host ion, the allowed replacements (symbol, oxidation) sorted by P(new | old), highest first
    table_keys = _species_keys()
    olds = [(el, oxi[el]) for el in hosts]
    options = []
    for s, key, f in zip(old, olds, fixed, strict=True):
        if f:
            options.append([(key, 1.0)])
            continue
        col = cond[:, index[s]]
        options.append([(table_keys[i], float(col[i])) for i in np.argsort(-col, kind="stable")
                        if table_keys[i][0] not in blocked or table_keys[i] == key])
    best = [opt[0][1] for opt in options]
    rests = [float(np.prod(best[k + 1:])) for k in range(len(best))]
    out: list[dict[str, Any]] = []
    n_ion = amounts[old_ion]

    def search(k: int, prob: float, chosen: list[tuple[str, float]], n_changed: int) -> None:
        if k == len(olds):
            news = [c[0] for c in chosen]
            if len(set(news)) < len(news):
                return
            changed = [i for i in range(len(olds)) if chosen[i] != olds[i]]
            if not changed and old_ion == ion:
                return  # the parent itself
            if max_substituted is not None and len(changed) > max_substituted:
                return
            charge = sum((chosen[i][1] - olds[i][1]) * amounts[hosts[i]] for i in changed)
            if abs(charge) > 1e-8:
                return
            symbols = [ion, *news]
            states = [ION_CHARGES[ion], *[c[1] for c in chosen]]
            if not _pauling_ok(symbols, states):
                return
            mapping = {hosts[i]: news[i] for i in changed}
            new_comp = Composition({ion: n_ion, **{news[i]: amounts[hosts[i]] for i in range(len(olds))}})
            out.append({"mapping": ({old_ion: ion} if old_ion != ion else {}) | mapping,
                        "species": ({str(Species(old_ion, ION_CHARGES[old_ion])): str(Species(ion, ION_CHARGES[ion]))}
                                    if old_ion != ion else {})
                        | {str(old[i]): str(Species(*chosen[i])) for i in changed},
                        "oxidation": dict(zip(symbols, states, strict=True)), "probability": prob,
                        "composition": new_comp, "n_substituted": len(changed)})
            return
        for key, p in options[k]:
            if prob * p * rests[k] <= threshold:
                break  # sorted: nothing further down this list can pass
            changed = n_changed + (key != olds[k])
            if max_substituted is not None and changed > max_substituted:
                continue
            search(k + 1, prob * p, [*chosen, key], changed)

    search(0, 1.0, [], 0)
    out.sort(key=lambda r: (-r["probability"], r["composition"].reduced_formula))
    return out, ("" if out else f"no substitution of {comp.reduced_formula} above probability {threshold:g}")


def enumerate_compositions(elements: Iterable[str], ion: str = "Li", *, max_stoich: int = 8,
                           oxidation_states: str = "icsd24") -> tuple[list[dict[str, Any]], str]:
    """Charge-neutral compositions of ``elements`` passing SMACT's electronegativity test, the ion a cation.

    >>> recs, _ = enumerate_compositions(["Na", "Fe", "P", "O"], "Na", max_stoich=4)
    >>> "NaFePO4" in {r["composition"].reduced_formula for r in recs}
    True
    """
    from pymatgen.core import Composition
    from smact import Element
    from smact.screening import smact_filter

    elements = list(dict.fromkeys(str(e).strip() for e in elements if str(e).strip()))
    if ion not in elements:
        return [], f"the elements {'-'.join(elements)} do not include the working ion {ion}"
    try:
        els = [Element(e) for e in elements]
    except (NameError, KeyError, ValueError):
        bad = next(e for e in elements if not _is_element(e))
        return [], f"unknown element {bad!r}"
    found = smact_filter(els, threshold=max_stoich, species_unique=True, oxidation_states_set=oxidation_states)
    seen: dict[str, dict[str, Any]] = {}
    for symbols, states, ratios in found:
        if states[symbols.index(ion)] != ION_CHARGES[ion]:
            continue
        comp = Composition(dict(zip(symbols, ratios, strict=True)))
        key = comp.reduced_formula
        if key not in seen:
            seen[key] = {"mapping": {}, "species": {}, "oxidation": dict(zip(symbols, states, strict=True)),
                         "probability": np.nan, "composition": comp, "n_substituted": 0}
    recs = sorted(seen.values(), key=lambda r: (r["composition"].reduced_composition.num_atoms,
                                                r["composition"].reduced_formula))
    return recs, ("" if recs else f"no charge-neutral composition of {'-'.join(elements)} with {ion}+")


def _is_element(symbol: str) -> bool:
    from pymatgen.core import Element

    return Element.is_valid_symbol(symbol)


def _substituted_structure(structure: Any, rec: dict[str, Any]) -> Any:
    """The parent structure with the elements of ``rec["mapping"]`` replaced, its cell scaled by ionic volume."""
    from pymatgen.core import Element, Species

    s = structure.copy()
    s.remove_oxidation_states()
    old_oxi = (_oxidation(structure.composition) if _guess_cost(structure.composition) <= MAX_OXIDATION_COMBINATIONS
               else None) or {}
    ratio_num = ratio_den = 0.0
    for old, new in rec["mapping"].items():
        n = structure.composition[old]
        r_old = _radius(Species(old, old_oxi.get(old, 0))) if old in old_oxi else None
        r_new = _radius(Species(new, rec["oxidation"][new]))
        if r_old and r_new:
            ratio_num += n * (r_new ** 3 - r_old ** 3)
    for el, amt in structure.composition.items():
        r = _radius(Species(el.symbol, old_oxi[el.symbol])) if el.symbol in old_oxi else None
        if r:
            ratio_den += amt * r ** 3
    s.replace_species({Element(o): Element(n) for o, n in rec["mapping"].items()})
    if ratio_den > 0:
        s.scale_lattice(s.volume * max(0.5, 1 + ratio_num / ratio_den))
    return s


def _radius(species: Any) -> float | None:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns for species without tabulated radii
            r = species.ionic_radius
    except Exception:  # ... or fails
        return None
    return float(r) if r else None


# ============================================================================ the candidate set

@dataclass
class CandidateSet:
    """Candidates (one row each; :data:`COLUMNS`), their structures, what was set aside and the settings."""

    table: pd.DataFrame
    structures: dict[str, Any] = field(default_factory=dict)
    set_aside: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_ASIDE))
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    def summary(self) -> str:
        by = self.table["method"].value_counts().to_dict() if len(self.table) else {}
        parts = ", ".join(f"{n} by {m}" for m, n in by.items())
        return (f"{len(self.table)} candidates ({parts or 'none'}) for {self.settings.get('ion', '?')}, "
                f"{len(self.structures)} with a structure; {len(self.set_aside)} set aside")

    def pool(self, preset: str = "magpie", features: Sequence[str] | None = None):  # -> CandidatePool
        """A :class:`~battlab.plan.CandidatePool` of the candidates with composition features of ``formula``."""
        from battlab.featurize import composition_features
        from battlab.plan import CandidatePool

        if not len(self.table):
            raise BattlabError("no candidates: nothing to make a pool of")
        X = composition_features(self.table["formula"].tolist(), preset=preset,
                                 working_ion=self.settings.get("ion", "Li"))
        table = pd.concat([self.table.reset_index(drop=True), X], axis=1)
        return CandidatePool(table, features=list(features) if features else list(X.columns),
                             id_column="candidate_id", formula_column="formula")

    def save(self, out: str | Path) -> dict[str, Path]:
        """``candidates.csv``, ``set_aside.csv``, ``candidates.json`` and ``structures/<id>.cif``."""
        from battlab.steps import artefact_header

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"candidates": out / "candidates.csv", "set_aside": out / "set_aside.csv",
                 "record": out / "candidates.json"}
        self.table.to_csv(paths["candidates"], index=False)
        self.set_aside.to_csv(paths["set_aside"], index=False)
        if self.structures:
            folder = out / "structures"
            folder.mkdir(exist_ok=True)
            for cid, s in self.structures.items():
                s.to(filename=str(folder / f"{cid}.cif"))
            paths["structures"] = folder
        paths["record"].write_text(json.dumps({**artefact_header("CandidateSet"), "settings": self.settings,
                                               "n_candidates": len(self.table)}, indent=1, default=str))
        return paths

    @classmethod
    def load(cls, path: str | Path) -> CandidateSet:
        """Read a folder written by :meth:`save`."""
        from battlab.steps import check_artefact

        path = Path(path)
        record = path / "candidates.json"
        if not record.is_file():
            raise BattlabError(f"{path}: no candidates.json (not a folder written by CandidateSet.save)")
        meta = json.loads(record.read_text())
        check_artefact(meta, "CandidateSet", path)
        table = pd.read_csv(path / "candidates.csv", keep_default_na=False, na_values=[""])
        for col in ("substitution", "space_group", "parent_formula", "framework"):
            table[col] = table[col].fillna("").astype(str)
        aside = pd.read_csv(path / "set_aside.csv", dtype=str, keep_default_na=False)
        structures = {}
        if (path / "structures").is_dir():
            for f in sorted((path / "structures").glob("*.cif")):
                structures[f.stem] = load_structure(f)
        return cls(table, structures, aside, meta.get("settings", {}))


def _substitution_text(rec: dict[str, Any]) -> str:
    return "; ".join(f"{o}{_ARROW}{n}" for o, n in rec["species"].items())


def generate(parents: Sequence[Any] | Any, ion: str = "Li", *, method: str = "substitution",
             threshold: float = 1e-3, top: int | None = 50, max_substituted: int | None = 2,
             max_stoich: int = 8, match_structures: bool = True, exclude: Iterable[str] = ()) -> CandidateSet:
    """Candidates for working ion ``ion`` from parents: formulas, CIF paths, structures, prototype names, or
    chemical systems (``"Na-Fe-P-O"``, enumerated).

    Parameters
    ----------
    method : {"substitution", "enumeration"}
        How a formula or a structure parent makes candidates (a chemical system is always enumerated; an
        enumeration of a formula uses its elements, with its working ion exchanged for ``ion``).
    threshold : float
        Lowest substitution probability kept (pymatgen's default, 1e-3).
    top : int or None
        Candidates kept per parent (the most probable; enumeration: the fewest atoms); None keeps all.
    max_substituted : int or None
        Most host ions replaced at once (besides the ion exchange).
    match_structures : bool
        Remove structures ``StructureMatcher`` finds equal to a more probable one (set aside as duplicates).
    exclude : iterable of str
        Formulas not to propose (e.g. known materials); matched on the reduced formula and set aside.
    """
    from pymatgen.core import Composition

    if method not in ("substitution", "enumeration"):
        raise BattlabError(f"unknown method {method!r}: substitution or enumeration")
    if ion not in ION_CHARGES:
        raise BattlabError(f"working ion {ion!r} is not one of {', '.join(ION_CHARGES)}")
    if isinstance(parents, (str, Path)) or hasattr(parents, "lattice") or not isinstance(parents, Sequence):
        parents = [parents]  # one parent (a pymatgen Structure is a sequence of sites: still one parent)
    if not len(parents):
        raise BattlabError("no parent given: give formulas, CIF files, prototype names or chemical systems")
    excluded = {Composition(f).reduced_formula for f in exclude}
    rows: list[dict[str, Any]] = []
    structures: dict[str, Any] = {}
    aside: list[dict[str, Any]] = []
    for item in parents:
        text = str(item).strip() if not hasattr(item, "lattice") else ""
        if re.fullmatch(r"[A-Z][a-z]?(-[A-Z][a-z]?)+", text):  # a chemical system
            recs, why = enumerate_compositions(text.split("-"), ion, max_stoich=max_stoich)
            parent = _Parent(text)
            kind = "enumeration"
        else:
            parent = _read_parent(item)
            if parent.error:
                aside.append({"parent": parent.name, "candidate": "", "reason": parent.error})
                continue
            if method == "enumeration":
                old_ion = _parent_ion(parent.composition, ion)
                els = [ion if e.symbol == old_ion else e.symbol for e in parent.composition.elements]
                recs, why = enumerate_compositions(els, ion, max_stoich=max_stoich) if old_ion else (
                    [], f"no working ion in {parent.composition.reduced_formula}")
                kind = "enumeration"
            else:
                recs, why = substitute(parent.composition, ion, threshold=threshold, max_substituted=max_substituted)
                kind = "prototype" if parent.structure is not None else "substitution"
        if not recs:
            aside.append({"parent": parent.name, "candidate": "", "reason": why})
            continue
        kept = 0
        for rec in recs:
            formula = rec["composition"].reduced_formula
            if formula in excluded:
                aside.append({"parent": parent.name, "candidate": formula, "reason": "excluded (given in exclude)"})
                continue
            if top is not None and kept >= top:
                break
            kept += 1
            row = {"formula": formula, "working_ion": ion, "framework": framework(formula, ion),
                   "parent": parent.name,
                   "parent_formula": parent.composition.reduced_formula if parent.composition else "",
                   "substitution": _substitution_text(rec), "method": kind, "probability": rec["probability"],
                   "n_substituted": rec["n_substituted"], "has_structure": False, "n_sites": np.nan,
                   "space_group": ""}
            if kind == "prototype":
                s = _substituted_structure(parent.structure, rec)
                row.update(has_structure=True, n_sites=len(s))
                try:
                    row["space_group"] = s.get_space_group_info()[0]
                except Exception:  # spglib may fail on a distorted cell: the symbol is informative only
                    row["space_group"] = ""
                row["_structure"] = s
            rows.append(row)
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "candidate_id"] + ["_structure"])
    table, dup = _deduplicate(table, match_structures)
    aside.extend(dup)
    table.insert(0, "candidate_id", [f"c{i + 1:04d}" for i in range(len(table))])
    for cid, s in zip(table["candidate_id"], table["_structure"], strict=True):
        if s is not None and not (isinstance(s, float) and np.isnan(s)):
            structures[cid] = s
    table = table.drop(columns="_structure")
    table["has_structure"] = table["has_structure"].astype(bool)
    settings = {"ion": ion, "method": method, "threshold": threshold, "top": top, "max_substituted": max_substituted,
                "max_stoich": max_stoich, "match_structures": match_structures,
                "parents": [str(p) if not hasattr(p, "lattice") else p.composition.reduced_formula for p in parents]}
    return CandidateSet(table, structures, pd.DataFrame(aside, columns=_ASIDE), settings)


def _deduplicate(table: pd.DataFrame, match_structures: bool) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Keep the most probable of equal candidates: same formula without structures, or matching structures."""
    if not len(table):
        return table.reset_index(drop=True), []
    table = table.assign(_p=table["probability"].fillna(-1.0)).sort_values(
        ["_p"], ascending=False, kind="stable").drop(columns="_p")
    keep, aside = [], []
    first_comp: dict[str, Any] = {}
    kept_structures: dict[str, list[tuple[int, Any, str]]] = {}
    matcher = None
    if match_structures and table["has_structure"].any():
        from pymatgen.analysis.structure_matcher import StructureMatcher

        matcher = StructureMatcher()
    for i, row in table.iterrows():
        f = row["formula"]
        if not row["has_structure"]:
            if f in first_comp:
                aside.append({"parent": row["parent"], "candidate": f,
                              "reason": f"duplicate of the same composition from {first_comp[f]}"})
                continue
            first_comp[f] = f"{row['parent']} ({row['substitution'] or row['method']})"
            keep.append(i)
            continue
        s = row["_structure"]
        same = None
        if matcher is not None:
            same = next((who for _, other, who in kept_structures.get(f, []) if matcher.fit(s, other)), None)
        if same is not None:
            aside.append({"parent": row["parent"], "candidate": f,
                          "reason": f"duplicate structure (StructureMatcher) of {same}"})
            continue
        kept_structures.setdefault(f, []).append((i, s, f"{row['parent']} ({row['substitution']})"))
        keep.append(i)
    out = table.loc[keep]
    order = out.assign(_p=out["probability"].fillna(-1.0)).sort_values(["_p"], ascending=False, kind="stable").index
    return out.loc[order].reset_index(drop=True), aside
