"""Relaxation, energies and average intercalation voltages with a universal machine-learning potential.

Two potentials whose weights ship inside their PyPI packages, so they work offline:

- ``"chgnet"`` (default): CHGNet 0.3.0 (Deng et al., Nat. Mach. Intell. 5, 1031 (2023); modified BSD), trained on
  the Materials Project's relaxation trajectories (MPtrj, GGA/GGA+U);
- ``"sevenn"``: SevenNet-0 (Park et al., J. Chem. Theory Comput. 20, 4857 (2024); MIT), a second opinion.

Both need PyTorch: they are the optional extra ``battlab[atomistic]`` (``pip install -e ".[atomistic]"``, or
``make .venv-atomistic/.installed`` for the locked CPU build). This module imports neither torch nor the potentials
until a relaxation starts; without the extra, that first call raises :class:`AtomisticNotInstalled`, which says
how to install it.

A relaxation (:func:`relax`) moves ions and cell (ASE's FIRE on a ``FrechetCellFilter``) until every force and
stress component is below ``fmax`` or the step budget is spent. A relaxation that does not converge is kept and
flagged (``converged=False``), never silently used: a voltage made from one has ``status="not converged"`` and
no value. The average voltage of an insertion pair (:func:`average_voltage`) is

.. math:: \\bar V = -\\frac{E(A_{x}H) - E(A_{y}H) - (x - y)\\,E(A)}{(x - y)\\,e}

per formula unit of the host ``H``, with the working ion's metal energy :math:`E(A)` from the same potential
(:func:`~battlab.design.pairs.metal`, relaxed), as the Materials Project computes it from DFT. Gravimetric
capacity and energy are per mass of the ion-rich (discharged) formula unit, as the Materials Project reports them.

Many structures (:func:`relax_structures`, :func:`pair_voltages`) go through the electrode DOE's path: a progress
bar, one checkpoint file per structure (an interrupted run resumes), and Dask with ``scheduler=``
(:mod:`battlab.electrode.distributed`).

Example
-------
>>> from battlab.design.pairs import insertion_pair
>>> pair = insertion_pair("LiCoO2")
>>> v = average_voltage(pair.rich, pair.poor, ion="Li")  # doctest: +SKIP
>>> round(v.voltage_V, 2), v.status  # doctest: +SKIP
(3.9, 'ok')
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from battlab.errors import BattlabError

__all__ = ["INSTALL_HINT", "POTENTIALS", "AtomisticNotInstalled", "PotentialError", "RelaxResult", "VoltageResult",
           "average_voltage", "load_potential", "missing_extra", "pair_voltages", "relax", "relax_structures",
           "voltage_from_relaxed"]

#: How to get the potentials.
INSTALL_HINT = 'pip install -e ".[atomistic]" (or make .venv-atomistic/.installed, then use .venv-atomistic)'

#: Potential name -> (Python package, description).
POTENTIALS: dict[str, tuple[str, str]] = {
    "chgnet": ("chgnet", "CHGNet 0.3.0 (MPtrj, GGA/GGA+U)"),
    "sevenn": ("sevenn", "SevenNet-0 (MPtrj, GGA/GGA+U)"),
}

#: Faraday constant (C/mol) and eV -> GPa (for ASE stresses in eV/Å^3).
FARADAY = 96485.33212
EV_PER_A3_TO_GPA = 160.21766208


class PotentialError(BattlabError, ValueError):
    """A potential that cannot be used: unknown name, or an element it does not know."""


class AtomisticNotInstalled(BattlabError, ImportError):
    """The optional extra ``battlab[atomistic]`` (PyTorch and the potentials) is not installed."""


@dataclass
class _Potential:
    name: str
    version: str
    calculator: Any
    elements: frozenset[str]


def _require(package: str) -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec(package) is None:
        missing = "torch" if importlib.util.find_spec("torch") is None else package
        raise AtomisticNotInstalled(f"the universal potentials need the optional extra battlab[atomistic] "
                                    f"({missing} is not installed): {INSTALL_HINT}")


def missing_extra(potential: str = "chgnet") -> str:
    """``""`` when ``potential`` can run here, else one line saying what is missing and how to install it.

    Looks for the packages (``importlib.util.find_spec``) without importing them: an app can grey out its
    relaxation button at once, and a kernel without the extra never pays for a torch import.

    >>> missing_extra("mace")
    Traceback (most recent call last):
    ...
    battlab.design.relax.PotentialError: unknown potential 'mace'; known: chgnet, sevenn
    """
    if potential not in POTENTIALS:
        raise PotentialError(f"unknown potential {potential!r}; known: {', '.join(POTENTIALS)}")
    try:
        _require(POTENTIALS[potential][0])
    except AtomisticNotInstalled as exc:
        return str(exc)
    return ""


@functools.cache
def load_potential(name: str = "chgnet") -> _Potential:
    """The ASE calculator of a potential (loaded once per process, on the CPU) and the elements it knows.

    Raises
    ------
    PotentialError
        An unknown name.
    AtomisticNotInstalled
        The extra is missing (the message says how to install it).

    Example
    -------
    >>> load_potential("mace")
    Traceback (most recent call last):
    ...
    battlab.design.relax.PotentialError: unknown potential 'mace'; known: chgnet, sevenn
    """
    if name not in POTENTIALS:
        raise PotentialError(f"unknown potential {name!r}; known: {', '.join(POTENTIALS)}")
    package = POTENTIALS[name][0]
    _require(package)
    from importlib.metadata import version

    import torch

    # One thread per process unless OMP_NUM_THREADS says otherwise: on a busy machine torch's OpenMP threads spin
    # (measured on 2 shared cores: 2 threads cost 30x the CPU time of 1 per CHGNet step). Parallelism: processes.
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))

    from pymatgen.core import Element

    if name == "chgnet":
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        model = CHGNet.load(model_name="0.3.0", verbose=False, use_device="cpu")
        calc = CHGNetCalculator(model=model, use_device="cpu")
        n = int(model.atom_embedding.embedding.num_embeddings)
        elements = frozenset(Element.from_Z(z).symbol for z in range(1, n + 1))
    else:
        from sevenn.calculator import SevenNetCalculator

        calc = SevenNetCalculator("7net-0", device="cpu")
        elements = frozenset(Element.from_Z(int(z)).symbol for z in calc.type_map)
    return _Potential(name=name, version=version(package), calculator=calc, elements=elements)


def check_elements(structure: Any, potential: str = "chgnet") -> None:
    """Raise :class:`PotentialError` (one line) if the structure holds an element the potential was not trained on."""
    known = load_potential(potential).elements
    unknown = sorted({site.specie.symbol for site in structure} - known)
    if unknown:
        raise PotentialError(f"{structure.composition.reduced_formula}: potential {potential} does not know "
                             f"element{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")


@dataclass
class RelaxResult:
    """One relaxation: the final structure, its energy, forces and stress, and whether it converged.

    ``forces`` (eV/Å, one row per site) and ``stress`` (GPa, Voigt order xx yy zz yz xz xy) are those of the final
    structure; ``fmax_reached`` is the largest force (or cell-force) norm the optimizer saw at the end;
    ``seconds`` and ``cpu_seconds`` the wall-clock and CPU time of the relaxation (not compared by ``==``).
    """

    formula: str
    potential: str
    potential_version: str
    energy_eV: float
    energy_per_atom_eV: float
    forces: list[list[float]]
    stress_GPa: list[float]
    structure: Any
    converged: bool
    steps: int
    max_steps: int
    fmax: float
    fmax_reached: float
    volume_initial: float
    volume: float
    seconds: float = field(default=float("nan"), compare=False)
    cpu_seconds: float = field(default=float("nan"), compare=False)

    @property
    def status(self) -> str:
        """``"ok"`` or ``"not converged"``."""
        return "ok" if self.converged else "not converged"

    @property
    def reason(self) -> str:
        """Why the relaxation cannot be used (empty when it converged)."""
        if self.converged:
            return ""
        return (f"{self.formula}: not converged in {self.steps} steps (largest force {self.fmax_reached:.3g} eV/Å, "
                f"asked {self.fmax:g}); relax again with more steps")

    def to_row(self) -> dict[str, Any]:
        """A flat row (JSON for the structure, forces and stress): one line of a table or a checkpoint file."""
        row = asdict(self)
        row["structure"] = json.dumps(self.structure.as_dict())
        row["forces"] = json.dumps(self.forces)
        row["stress_GPa"] = json.dumps(self.stress_GPa)
        row["status"], row["reason"] = self.status, self.reason
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RelaxResult:
        """The result from a :meth:`to_row` row."""
        from pymatgen.core import Structure

        names = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in row.items() if k in names}
        kw["structure"] = Structure.from_dict(json.loads(row["structure"]))
        kw["forces"] = json.loads(row["forces"])
        kw["stress_GPa"] = json.loads(row["stress_GPa"])
        kw["converged"] = bool(row["converged"])
        kw["steps"], kw["max_steps"] = int(row["steps"]), int(row["max_steps"])
        return cls(**kw)

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_row()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> RelaxResult:
        """Read a result written by :meth:`save`."""
        return cls.from_row(json.loads(Path(path).read_text()))


def relax(structure: Any, potential: str = "chgnet", fmax: float = 0.05, steps: int = 500,
          relax_cell: bool = True, progress: bool = False) -> RelaxResult:
    """Relax ions (and the cell) with a universal potential: FIRE until every force is below ``fmax``.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The start. It is not changed.
    potential : str
        ``"chgnet"`` or ``"sevenn"`` (:data:`POTENTIALS`).
    fmax : float
        Convergence: the largest force on an atom (eV/Å), and of the cell filter's virial, must fall below it.
    steps : int
        The step budget. A relaxation that does not converge within it is returned with ``converged=False``.
    relax_cell : bool
        Relax the cell too (ASE's ``FrechetCellFilter``); else only the positions.
    progress : bool
        A ``tqdm`` bar of optimizer steps.

    Raises
    ------
    PotentialError
        An unknown potential, an element it does not know, or a disordered structure (one line).
    AtomisticNotInstalled
        The optional extra is missing.

    Example
    -------
    >>> from battlab.design.pairs import metal
    >>> r = relax(metal("Li"), steps=50)  # doctest: +SKIP
    >>> r.converged, round(r.energy_per_atom_eV, 1)  # doctest: +SKIP
    (True, -1.9)
    """
    from tqdm.auto import tqdm

    if not structure.is_ordered:
        raise PotentialError(f"{structure.composition.reduced_formula}: partial occupancies; a potential needs an "
                             "ordered structure (e.g. pymatgen's OrderDisorderedStructureTransformation)")
    pot = load_potential(potential)
    check_elements(structure, potential)
    import numpy as np
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    t0, c0 = time.perf_counter(), time.process_time()
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = pot.calculator
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    opt = FIRE(target, logfile=None)
    converged = False
    formula = structure.composition.reduced_formula
    with tqdm(total=int(steps), disable=not progress, desc=f"relax {formula} ({potential})", unit="step") as bar:
        for converged in opt.irun(fmax=fmax, steps=int(steps)):
            if converged:
                break
            bar.update(1)
    reached = float(np.sqrt((target.get_forces() ** 2).sum(axis=1)).max())
    converged = bool(converged) and reached < fmax
    energy = float(atoms.get_potential_energy())
    final = AseAtomsAdaptor.get_structure(atoms)
    for prop in list(final.site_properties):  # magmoms, charges: the potential's, not part of the structure
        final.remove_site_property(prop)
    return RelaxResult(
        formula=formula, potential=potential, potential_version=pot.version, energy_eV=energy,
        energy_per_atom_eV=energy / len(atoms), forces=atoms.get_forces().round(6).tolist(),
        stress_GPa=(atoms.get_stress(voigt=True) * EV_PER_A3_TO_GPA).round(6).tolist(), structure=final,
        converged=converged, steps=int(opt.nsteps), max_steps=int(steps), fmax=float(fmax), fmax_reached=reached,
        volume_initial=float(structure.volume), volume=float(final.volume), seconds=time.perf_counter() - t0,
        cpu_seconds=time.process_time() - c0)


# --- voltages ------------------------------------------------------------------------------------------------------


@dataclass
class VoltageResult:
    """The average voltage of an insertion pair, its volume change, capacity and energy, and the relaxations.

    Per formula unit of the host ``host``: ``x_rich`` and ``x_poor`` working ions; ``volume_change`` is
    V(ion-rich) / V(ion-poor) - 1; ``capacity_mAh_g`` and ``energy_Wh_kg`` per mass of the ion-rich formula unit.
    When a relaxation did not converge, ``status`` is ``"not converged"``, ``reason`` says which and the voltage,
    capacity-weighted energy and volume change are NaN (the relaxations are kept, to be continued).
    """

    ion: str
    host: str
    rich_formula: str
    poor_formula: str
    x_rich: float
    x_poor: float
    voltage_V: float
    volume_change: float
    capacity_mAh_g: float
    energy_Wh_kg: float
    potential: str
    status: str
    reason: str
    rich: RelaxResult | None = None
    poor: RelaxResult | None = None
    metal: RelaxResult | None = None

    def to_row(self) -> dict[str, Any]:
        """The figures as a flat row (without the relaxations)."""
        return {k: v for k, v in asdict(self).items() if k not in ("rich", "poor", "metal")}


def _host_units(structure: Any, ion: str) -> tuple[Any, float, float]:
    """(reduced host composition, host formula units in the cell, working ions in the cell)."""
    comp = structure.composition
    n_ion = float(comp[ion]) if ion in comp else 0.0
    host = comp.__class__({el: amt for el, amt in comp.items() if el.symbol != ion})
    if host.num_atoms == 0:
        raise PotentialError(f"{comp.reduced_formula}: nothing but {ion}, no host framework")
    reduced = host.reduced_composition
    return reduced, host.num_atoms / reduced.num_atoms, n_ion


def voltage_from_relaxed(rich: RelaxResult, poor: RelaxResult, metal: RelaxResult, ion: str = "Li") -> VoltageResult:
    """The average voltage of a pair from its three relaxations (no potential needed).

    Raises
    ------
    PotentialError
        The two ends do not share a host, the ion-rich end has no more working ions than the ion-poor one, the
        metal is not the working ion, or the relaxations come from different potentials.

    Example
    -------
    >>> from battlab.design.pairs import insertion_pair, metal
    >>> def fake(s, e_per_atom):  # a relaxation result with a given energy, for the arithmetic only
    ...     return RelaxResult(s.composition.reduced_formula, "test", "0", e_per_atom * len(s), e_per_atom,
    ...                        [], [], s, True, 1, 1, 0.05, 0.0, s.volume, s.volume)
    >>> p = insertion_pair("LiCoO2")   # LiCoO2 -> CoO2 + Li: -(-24 - (-18) - (-2)) / 1 = 4 V
    >>> v = voltage_from_relaxed(fake(p.rich, -6.0), fake(p.poor, -6.0), fake(metal("Li"), -2.0))
    >>> v.host, v.x_rich, v.x_poor, round(v.voltage_V, 3), round(v.capacity_mAh_g, 1), v.status
    ('CoO2', 1.0, 0.0, 4.0, 273.8, 'ok')
    """
    from pymatgen.core import Composition

    if len({rich.potential, poor.potential, metal.potential}) != 1:
        raise PotentialError(f"the relaxations come from different potentials: {rich.potential} (ion-rich), "
                             f"{poor.potential} (ion-poor), {metal.potential} (metal)")
    mcomp = metal.structure.composition
    if {el.symbol for el in mcomp} != {ion}:
        raise PotentialError(f"the metal reference {mcomp.reduced_formula} is not the working ion {ion}")
    host_r, units_r, n_r = _host_units(rich.structure, ion)
    host_p, units_p, n_p = _host_units(poor.structure, ion)
    if not host_r.almost_equals(host_p):
        raise PotentialError(f"{rich.formula} and {poor.formula} do not share a host framework "
                             f"({host_r.reduced_formula} vs {host_p.reduced_formula})")
    x_r, x_p = n_r / units_r, n_p / units_p
    if n_r == 0:
        raise PotentialError(f"the ion-rich structure {rich.formula} has no working ion {ion}")
    if x_r <= x_p:
        raise PotentialError(f"the ion-rich structure {rich.formula} holds no more {ion} per {host_r.reduced_formula} "
                             f"({x_r:g}) than the ion-poor one {poor.formula} ({x_p:g})")
    dx = x_r - x_p
    mass = (host_r + Composition({ion: x_r})).weight  # g/mol of the ion-rich formula unit
    capacity = dx * FARADAY / float(mass) / 3.6
    bad = [r for r in (rich, poor, metal) if not r.converged]
    status, reason = ("ok", "") if not bad else ("not converged", "; ".join(r.reason for r in bad))
    if bad:
        voltage = volume_change = energy = float("nan")
    else:
        e_r, e_p = rich.energy_eV / units_r, poor.energy_eV / units_p
        voltage = -(e_r - e_p - dx * metal.energy_per_atom_eV) / dx
        volume_change = (rich.volume / units_r) / (poor.volume / units_p) - 1.0
        energy = capacity * voltage
    return VoltageResult(ion=ion, host=host_r.reduced_formula, rich_formula=rich.formula, poor_formula=poor.formula,
                         x_rich=round(x_r, 6), x_poor=round(x_p, 6), voltage_V=voltage, volume_change=volume_change,
                         capacity_mAh_g=capacity, energy_Wh_kg=energy, potential=rich.potential, status=status,
                         reason=reason, rich=rich, poor=poor, metal=metal)


@functools.cache
def _metal_relaxed(ion: str, potential: str, fmax: float, steps: int) -> RelaxResult:
    from battlab.design.pairs import metal

    return relax(metal(ion), potential=potential, fmax=fmax, steps=steps)


def average_voltage(ion_rich: Any, ion_poor: Any, ion: str = "Li", potential: str = "chgnet", fmax: float = 0.05,
                    steps: int = 500, metal: RelaxResult | None = None, progress: bool = False) -> VoltageResult:
    """Relax both ends of an insertion pair and the working-ion metal; the average voltage against the metal.

    Parameters
    ----------
    ion_rich, ion_poor : pymatgen.core.Structure
        The discharged and charged structures (the same host framework; the ion-poor one may hold no ion).
    ion : str
        The working ion (``"Li"``, ``"Na"``, ``"K"``...).
    potential, fmax, steps, progress
        As for :func:`relax`.
    metal : RelaxResult, optional
        The relaxed metal of the same potential; default: :func:`~battlab.design.pairs.metal` relaxed here (once
        per process, ion, potential and settings).

    Returns
    -------
    VoltageResult
        ``status == "ok"`` only when all three relaxations converged.

    Raises
    ------
    PotentialError, AtomisticNotInstalled, battlab.design.pairs.StructureError
        As :func:`relax`; the ion-rich structure without the working ion.
    """
    from battlab.design.pairs import StructureError

    if ion not in {site.specie.symbol for site in ion_rich}:
        raise StructureError(f"the ion-rich structure {ion_rich.composition.reduced_formula} has no working ion {ion}")
    for s in (ion_rich, ion_poor):
        check_elements(s, potential)
    ref = metal if metal is not None else _metal_relaxed(ion, potential, float(fmax), int(steps))
    rich = relax(ion_rich, potential=potential, fmax=fmax, steps=steps, progress=progress)
    poor = relax(ion_poor, potential=potential, fmax=fmax, steps=steps, progress=progress)
    return voltage_from_relaxed(rich, poor, ref, ion=ion)


# --- many structures: checkpoint, progress bar, Dask ----------------------------------------------------------------


def _versions(potential: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("battlab", "torch", POTENTIALS[potential][0]):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def structure_key(structure: Any, **settings: Any) -> str:
    """A stable key of a structure and the relaxation settings (the checkpoint file's name).

    Example
    -------
    >>> from battlab.design.pairs import metal
    >>> structure_key(metal("Li"), potential="chgnet", fmax=0.05) == structure_key(metal("Li"), fmax=0.05,
    ...                                                                          potential="chgnet")
    True
    """
    blob = json.dumps({"structure": structure.as_dict(), **settings}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _checkpoint(folder: str | Path, potential: str) -> Any:
    """The electrode DOE's checkpoint folder, opened for relaxations of one potential's versions."""
    from battlab.electrode.doe import Checkpoint

    return Checkpoint(Path(folder)).open(_versions(potential), made="structures were relaxed", error=PotentialError)


def _relax_one(design: dict[str, Any], key: str, cache_dir: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Relax one structure unless the checkpoint has it; checkpoint it (when this process sees the folder)."""
    from pymatgen.core import Structure

    from battlab.electrode.doe import checkpointed

    def compute() -> dict[str, Any]:
        structure = Structure.from_dict(json.loads(design["structure"]))
        try:
            return {"name": design["name"], **relax(structure, **kwargs).to_row()}
        except PotentialError as exc:  # an element the potential does not know: kept aside with the reason
            return {"name": design["name"], "formula": structure.composition.reduced_formula, "status": "failed",
                    "reason": str(exc), "structure": design["structure"], "converged": False}
        except (ValueError, RuntimeError, FloatingPointError) as exc:  # the potential or optimizer gave up on it
            return {"name": design["name"], "formula": structure.composition.reduced_formula, "status": "failed",
                    "reason": f"{structure.composition.reduced_formula}: {type(exc).__name__}: {exc}".splitlines()[0],
                    "structure": design["structure"], "converged": False}

    # the log's seconds: the relaxation's own (none for one that failed), as relax measures them
    return checkpointed(cache_dir, key, compute, seconds=lambda row: row.get("seconds"))


def relax_structures(structures: Mapping[str, Any], potential: str = "chgnet", fmax: float = 0.05, steps: int = 500,
                     *, n_jobs: int = 1, scheduler: Any = None, cache_dir: str | Path | None = None,
                     progress: bool = True) -> Any:
    """Relax many structures: a progress bar, one checkpoint file per structure, optionally on Dask.

    Parameters
    ----------
    structures : mapping of name -> pymatgen.core.Structure
        What to relax (identical structures are relaxed once).
    potential, fmax, steps
        As for :func:`relax`.
    n_jobs : int
        Without a scheduler: joblib processes (each loads the potential, ~0.5 GB). With ``scheduler="local"``: the
        LocalCluster's workers.
    scheduler : str, distributed.Client or cluster, optional
        As for :func:`battlab.electrode.doe.run_designs` (``"local"``, an address, a client, a jobqueue cluster).
    cache_dir : str or Path, optional
        A folder with one file per relaxed structure (key: :func:`structure_key` of the structure and settings);
        what is there is never relaxed again, so an interrupted run resumes. Its record of battlab, torch and
        potential versions must match this environment.
    progress : bool
        A ``tqdm`` bar over structures.

    Returns
    -------
    pandas.DataFrame
        One row per name, in order: ``name``, ``status`` (``ok``, ``not converged`` or ``failed``), ``reason``
        and the fields of :class:`RelaxResult` (:meth:`RelaxResult.from_row` rebuilds one). Structures with an
        element the potential does not know are ``failed`` rows with the reason, not an exception.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from battlab.electrode import distributed

    if potential not in POTENTIALS:
        raise PotentialError(f"unknown potential {potential!r}; known: {', '.join(POTENTIALS)}")
    _require(POTENTIALS[potential][0])
    if scheduler is None:
        scheduler = distributed.current_scheduler()
    ck = _checkpoint(cache_dir, potential) if cache_dir is not None else None
    settings = {"potential": potential, "fmax": float(fmax), "steps": int(steps)}
    keys: dict[str, str] = {}
    jobs: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for name, structure in structures.items():
        key = structure_key(structure, **settings)
        keys[name] = key
        jobs.setdefault(key, (key, {"name": name, "structure": json.dumps(structure.as_dict())}, settings))
    results: dict[str, dict[str, Any]] = {}
    if ck is not None:
        done = ck.done_keys()
        results = {k: ck.read(k) for k in jobs if k in done}
    todo = [job for k, job in jobs.items() if k not in results]
    folder = None if ck is None else str(ck.folder)
    where = "" if scheduler is None else " (dask)"
    bar = tqdm(total=len(jobs), initial=len(results), disable=not progress, desc=f"relax ({potential}){where}",
               unit="structure")
    stream: Iterator[tuple[str, dict[str, Any]]] = iter(())
    try:
        if not todo:
            pass
        elif scheduler is None and n_jobs == 1:
            stream = ((k, _relax_one(d, k, folder, kw)) for k, d, kw in todo)
        elif scheduler is None:
            from joblib import Parallel, delayed

            out = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_relax_one)(d, k, folder, kw)
                                                                   for k, d, kw in todo)
            stream = zip((k for k, _, _ in todo), out, strict=True)
        else:
            stream = _dask_stream(scheduler, n_jobs, todo, folder, ck)
        for key, row in stream:
            results[key] = row
            bar.update(1)
    finally:
        bar.close()
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    rows = [{**results[keys[name]], "name": name} for name in structures]
    table = pd.DataFrame(rows)
    if "reason" in table:
        table["reason"] = table["reason"].fillna("")
    return table


def _dask_stream(scheduler: Any, n_jobs: int, todo: list[tuple[str, dict[str, Any], dict[str, Any]]],
                 folder: str | None, ck: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    from battlab.electrode import distributed

    with distributed.connect(scheduler, n_workers=n_jobs) as client, \
            contextlib.closing(distributed.submit_designs(client, todo, _relax_one, folder)) as finished:
        for key, row in finished:
            crashed = str(row.get("reason", "")).startswith(distributed.KILLED_REASON)
            if ck is not None and not crashed and not ck.has(key):
                ck.write(key, row)
            yield key, row


def pair_voltages(pairs: Sequence[Any], potential: str = "chgnet", fmax: float = 0.05, steps: int = 500, *,
                  n_jobs: int = 1, scheduler: Any = None, cache_dir: str | Path | None = None,
                  progress: bool = True) -> Any:
    """Average voltages of many insertion pairs: every structure and metal relaxed once through
    :func:`relax_structures` (progress bar, checkpoint, Dask), then :func:`voltage_from_relaxed`.

    Parameters
    ----------
    pairs : sequence of battlab.design.pairs.InsertionPair
        E.g. ``[insertion_pair(n) for n in pair_names()]``.
    potential, fmax, steps, n_jobs, scheduler, cache_dir, progress
        As for :func:`relax_structures`.

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``name``, the :class:`VoltageResult` figures (``status`` ``ok`` / ``not converged`` /
        ``failed`` and ``reason``), ``steps`` (of the two ends), ``seconds`` and ``cpu_seconds`` (the two ends'
        relaxations: wall-clock and CPU time of the process that ran them).
    """
    import pandas as pd

    from battlab.design.pairs import metal

    structures: dict[str, Any] = {}
    for p in pairs:
        structures[f"{p.name}:rich"], structures[f"{p.name}:poor"] = p.rich, p.poor
    for ion in dict.fromkeys(p.ion for p in pairs):
        structures[f"metal:{ion}"] = metal(ion)
    table = relax_structures(structures, potential, fmax, steps, n_jobs=n_jobs, scheduler=scheduler,
                             cache_dir=cache_dir, progress=progress).set_index("name")
    rows = []
    for p in pairs:
        parts = [table.loc[f"{p.name}:rich"], table.loc[f"{p.name}:poor"], table.loc[f"metal:{p.ion}"]]
        failed = [r for r in parts if r["status"] == "failed"]
        base = {"name": p.name, "ion": p.ion, "mp_battery_id": p.mp_battery_id, "potential": potential}
        if failed:
            rows.append({**base, "status": "failed", "reason": "; ".join(r["reason"] for r in failed),
                         "voltage_V": math.nan})
            continue
        rich, poor, ref = (RelaxResult.from_row(r.to_dict()) for r in parts)
        v = voltage_from_relaxed(rich, poor, ref, ion=p.ion)
        rows.append({**base, **v.to_row(), "steps": rich.steps + poor.steps, "seconds": rich.seconds + poor.seconds,
                     "cpu_seconds": rich.cpu_seconds + poor.cpu_seconds})
    return pd.DataFrame(rows)
