"""battlab.design.relax and .pairs: universal-potential relaxations and voltages (the optional extra
battlab[atomistic]), and the structures they start from.

The tests marked by ``needs_potential`` skip where CHGNet is not installed (the main .venv) and run in
.venv-atomistic (``make test-atomistic``); the others run everywhere, with the potential replaced by a stub.
"""

import importlib.util
import json
import math
import subprocess
import sys

import pytest

from battlab.design import pairs as P
from battlab.design import relax as R

needs_potential = pytest.mark.skipif(importlib.util.find_spec("chgnet") is None,
                                     reason="the atomistic extra is not installed (make test-atomistic)")


# --- no torch where the extra is not asked for -------------------------------------------------------------------


def test_battlab_and_battlab_design_do_not_import_torch():
    code = ("import sys, battlab, battlab.design, battlab.design.pairs, battlab.design.relax, battlab.cli\n"
            "from battlab.design.pairs import insertion_pair\n"
            "insertion_pair('LiCoO2')\n"
            "print(sorted(m for m in ('torch', 'chgnet', 'sevenn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_extra_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    R.load_potential.cache_clear()
    try:
        with pytest.raises(R.AtomisticNotInstalled, match=r'pip install -e "\.\[atomistic\]".*venv-atomistic'):
            R.relax(P.metal("Li"))
        with pytest.raises(ImportError):  # also an ImportError, for code that catches those
            R.relax_structures({"Li": P.metal("Li")})
    finally:
        R.load_potential.cache_clear()


def test_a_disordered_structure_is_one_line():
    half = P.layered_o3()
    half.replace_species({"Li": {"Li": 0.5}})
    with pytest.raises(R.PotentialError, match="partial occupancies; a potential needs an ordered structure"):
        R.relax(half)


def test_unknown_potential_is_one_line():
    with pytest.raises(R.PotentialError, match="unknown potential 'mace'; known: chgnet, sevenn"):
        R.relax(P.metal("Li"), potential="mace")


# --- structures ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(P.PAIRS))
def test_every_pair_builds_its_two_ends(name):
    pair = P.insertion_pair(name)
    ion = pair.ion
    assert ion in pair.rich.composition and ion not in pair.poor.composition
    host = {el: amt for el, amt in pair.rich.composition.items() if el.symbol != ion}
    assert pair.poor.composition.as_dict() == {el.symbol: amt for el, amt in host.items()}
    assert pair.rich.is_valid(tol=1.4)  # no two atoms closer than 1.4 Å
    assert pair.mp_battery_id.endswith(f"_{ion}")


def test_pair_structures_have_the_published_shape():
    lfp = P.insertion_pair("LiFePO4").rich
    assert lfp.get_space_group_info() == ("Pnma", 62) and len(lfp) == 28
    fe = next(i for i, s in enumerate(lfp) if s.specie.symbol == "Fe")
    p = next(i for i, s in enumerate(lfp) if s.specie.symbol == "P")
    assert 2.0 < min(n.nn_distance for n in lfp.get_neighbors(lfp[fe], 2.5)) < 2.1  # FeO6 octahedra
    assert 1.5 < min(n.nn_distance for n in lfp.get_neighbors(lfp[p], 2.0)) < 1.56  # PO4 tetrahedra
    lco = P.insertion_pair("LiCoO2").rich
    co = next(i for i, s in enumerate(lco) if s.specie.symbol == "Co")
    assert [round(n.nn_distance, 2) for n in lco.get_neighbors(lco[co], 2.0)] == [1.92] * 6


def test_pairs_are_built_on_the_prototypes_crystal_data():
    from battlab.design.prototypes import LAYERED_1T, PROTOTYPES, prototype

    assert P.olivine() == prototype("olivine")  # the published LiFePO4, site for site
    assert P.layered_o3() == prototype("layered").get_primitive_structure()
    assert P.layered_1t() == LAYERED_1T.structure()
    na = P.olivine("Na", "Fe", (10.406, 6.219, 4.947))
    assert [s.frac_coords.tolist() for s in na] == [s.frac_coords.tolist() for s in prototype("olivine")]
    assert na.composition.reduced_formula == "NaFePO4" and na.lattice.abc == pytest.approx((10.406, 6.219, 4.947))
    lno = PROTOTYPES["layered"].structure({"Co": "Ni"}, coords={2: (0, 0, 0.25)})
    assert lno.composition.reduced_formula == "LiNiO2"
    assert 0.25 in {round(s.frac_coords[2], 6) for s in lno if s.specie.symbol == "O" and s.frac_coords[0] == 0}
    kreo3 = P.insertion_pair("KReO3")
    re = next(i for i, s in enumerate(kreo3.rich) if s.specie.symbol == "Re")
    assert [round(n.nn_distance, 3) for n in kreo3.rich.get_neighbors(kreo3.rich[re], 2.0)] == [1.867] * 6
    assert kreo3.poor.composition.reduced_formula == "ReO3" and len(kreo3.poor) == 4


def test_bad_structure_inputs_are_one_line_errors():
    with pytest.raises(P.StructureError, match="unknown insertion pair 'LiXO2'; known: LiCoO2"):
        P.insertion_pair("LiXO2")
    with pytest.raises(P.StructureError, match="structure CoO2 has no working ion Li"):
        P.remove_ion(P.insertion_pair("LiCoO2").poor, "Li")
    with pytest.raises(P.StructureError, match="is only Li: no framework"):
        P.remove_ion(P.metal("Li"), "Li")
    with pytest.raises(P.StructureError, match="no metal reference for working ion 'Xe'"):
        P.metal("Xe")


@pytest.mark.parametrize("ion", list(P.METALS))
def test_metals_are_pure_and_dense(ion):
    m = P.metal(ion)
    assert {s.specie.symbol for s in m} == {ion}
    assert 10 < m.volume / len(m) < 80  # Å^3 per atom of a metal


# --- the voltage arithmetic, with stub relaxations ----------------------------------------------------------------


def _fake(structure, energy_per_atom, converged=True, potential="stub"):
    return R.RelaxResult(structure.composition.reduced_formula, potential, "0", energy_per_atom * len(structure),
                         energy_per_atom, [[0.0, 0.0, 0.0]] * len(structure), [0.0] * 6, structure, converged,
                         5, 10, 0.05, 0.01 if converged else 0.4, structure.volume, structure.volume)


def test_voltage_counts_per_host_formula_unit():
    """LiFePO4 (4 f.u. in the cell) -> FePO4: V = -(E(LiFePO4) - E(FePO4) - E(Li)) per formula unit."""
    pair = P.insertion_pair("LiFePO4")
    rich, poor, li = _fake(pair.rich, -6.9), _fake(pair.poor, -7.2), _fake(P.metal("Li"), -1.9)
    v = R.voltage_from_relaxed(rich, poor, li, ion="Li")
    e_rich, e_poor = -6.9 * 7, -7.2 * 6  # per formula unit: 7 and 6 atoms
    assert v.voltage_V == pytest.approx(-(e_rich - e_poor + 1.9))
    assert (v.host, v.x_rich, v.x_poor, v.status) == ("FePO4", 1.0, 0.0, "ok")
    assert v.capacity_mAh_g == pytest.approx(169.9, abs=0.1)  # the theoretical capacity of LiFePO4
    assert v.energy_Wh_kg == pytest.approx(v.capacity_mAh_g * v.voltage_V)
    assert v.volume_change == pytest.approx(pair.rich.volume / pair.poor.volume - 1)


def test_partial_pairs_and_supercells_use_the_ion_difference():
    rich = P.layered_o3().make_supercell([2, 1, 1], in_place=False)  # Li2Co2O4
    poor = rich.copy()
    poor.remove_sites([next(i for i, s in enumerate(poor) if s.specie.symbol == "Li")])  # LiCo2O4
    v = R.voltage_from_relaxed(_fake(rich, -5.0), _fake(poor, -5.2), _fake(P.metal("Li"), -2.0))
    assert (v.x_rich, v.x_poor) == (1.0, 0.5)
    assert v.voltage_V == pytest.approx(-(-5.0 * 8 - (-5.2 * 7) + 2.0) / 1)  # one Li per cell difference


def test_an_unconverged_relaxation_is_flagged_never_used():
    pair = P.insertion_pair("LiCoO2")
    v = R.voltage_from_relaxed(_fake(pair.rich, -6.0), _fake(pair.poor, -6.0, converged=False),
                               _fake(P.metal("Li"), -2.0))
    assert v.status == "not converged" and math.isnan(v.voltage_V) and math.isnan(v.energy_Wh_kg)
    assert "CoO2: not converged in 5 steps (largest force 0.4 eV/Å, asked 0.05)" in v.reason
    assert v.poor is not None and not v.poor.converged  # kept, to be continued
    assert v.capacity_mAh_g > 0  # what does not depend on energies is still reported


def test_voltage_bad_inputs_are_one_line_errors():
    pair = P.insertion_pair("LiCoO2")
    li = _fake(P.metal("Li"), -2.0)
    with pytest.raises(R.PotentialError, match="do not share a host framework"):
        R.voltage_from_relaxed(_fake(pair.rich, -6), _fake(P.insertion_pair("LiTiS2").poor, -6), li)
    with pytest.raises(R.PotentialError, match="holds no more Li per CoO2"):
        R.voltage_from_relaxed(_fake(pair.rich, -6), _fake(pair.rich, -6), li)
    with pytest.raises(R.PotentialError, match="has no working ion Li"):
        R.voltage_from_relaxed(_fake(pair.poor, -6), _fake(pair.poor, -6), li)
    with pytest.raises(R.PotentialError, match="different potentials"):
        R.voltage_from_relaxed(_fake(pair.rich, -6), _fake(pair.poor, -6), _fake(P.metal("Li"), -2, potential="x"))
    with pytest.raises(R.PotentialError, match="metal reference Na is not the working ion Li"):
        R.voltage_from_relaxed(_fake(pair.rich, -6), _fake(pair.poor, -6), _fake(P.metal("Na"), -1.3))
    with pytest.raises(P.StructureError, match="ion-rich structure CoO2 has no working ion Li"):
        R.average_voltage(pair.poor, pair.poor, ion="Li")


def test_relax_result_round_trips(tmp_path):
    r = _fake(P.insertion_pair("LiCoO2").rich, -6.0, converged=False)
    back = R.RelaxResult.load(r.save(tmp_path / "r.json"))
    assert back == r and back.structure == r.structure and back.status == "not converged"


# --- many structures: checkpoint per structure, failures kept aside (stub potential) ------------------------------


def test_relax_structures_checkpoints_each_structure_and_keeps_failures(tmp_path, monkeypatch):
    calls = []

    def stub(structure, potential="chgnet", fmax=0.05, steps=500, **_):
        calls.append(structure.composition.reduced_formula)
        if "Co" in structure.composition:
            raise R.PotentialError(f"{structure.composition.reduced_formula}: potential stub does not know Co")
        if "Na" in structure.composition and steps == 7:
            raise RuntimeError("the graph has isolated atoms\nmore detail")
        return _fake(structure, -2.0, converged=steps > 3, potential=potential)

    monkeypatch.setattr(R, "relax", stub)
    monkeypatch.setattr(R, "_require", lambda package: None)
    monkeypatch.setattr(R, "_versions", lambda potential: {"battlab": "test", "torch": "x", potential: "y"})
    structures = {"li": P.metal("Li"), "na": P.metal("Na"), "lco": P.layered_o3(), "li again": P.metal("Li")}
    table = R.relax_structures(structures, fmax=0.05, steps=10, cache_dir=tmp_path / "ck", progress=False)
    assert list(table["name"]) == ["li", "na", "lco", "li again"]
    assert list(table["status"]) == ["ok", "ok", "failed", "ok"]
    assert "does not know Co" in table.loc[2, "reason"]
    assert sorted(calls) == ["Li", "LiCoO2", "Na"]  # the duplicate relaxed once
    assert len(list((tmp_path / "ck").glob("*.parquet"))) == 3
    again = R.relax_structures(structures, fmax=0.05, steps=10, cache_dir=tmp_path / "ck", progress=False)
    assert len(calls) == 3  # everything read back from the checkpoint
    assert list(again["energy_per_atom_eV"].fillna(0)) == list(table["energy_per_atom_eV"].fillna(0))
    short = R.relax_structures({"li": P.metal("Li")}, steps=2, cache_dir=tmp_path / "ck", progress=False)
    assert list(short["status"]) == ["not converged"] and len(calls) == 4  # other settings: another key
    crashed = R.relax_structures({"na": P.metal("Na")}, steps=7, progress=False)
    assert list(crashed["status"]) == ["failed"]
    assert crashed.loc[0, "reason"] == "Na: RuntimeError: the graph has isolated atoms"
    monkeypatch.setattr(R, "_versions", lambda potential: {"battlab": "other"})
    with pytest.raises(R.PotentialError, match="relaxed with .* use a new folder"):
        R.relax_structures(structures, cache_dir=tmp_path / "ck", progress=False)


def test_pair_voltages_reports_failed_and_unconverged_pairs(monkeypatch):
    def stub(structure, potential="chgnet", fmax=0.05, steps=500, **_):
        if "Cr" in structure.composition:
            raise R.PotentialError(f"{structure.composition.reduced_formula}: potential stub does not know Cr")
        e = {"Li": -2.0, "Na": -1.3}.get(structure.composition.reduced_formula, -6.0)
        return _fake(structure, e, converged="Ti" not in structure.composition, potential=potential)

    monkeypatch.setattr(R, "relax", stub)
    monkeypatch.setattr(R, "_require", lambda package: None)
    table = R.pair_voltages([P.insertion_pair(n) for n in ("LiCoO2", "NaTiS2", "LiCrO2")], progress=False)
    assert list(table["name"]) == ["LiCoO2", "NaTiS2", "LiCrO2"]
    assert list(table["status"]) == ["ok", "not converged", "failed"]
    assert table.loc[0, "voltage_V"] == pytest.approx(-(-24 + 18 + 2.0))
    assert math.isnan(table.loc[1, "voltage_V"]) and "NaTiS2: not converged" in table.loc[1, "reason"]
    assert "does not know Cr" in table.loc[2, "reason"]


# --- the real potentials (.venv-atomistic) ------------------------------------------------------------------------


@needs_potential
def test_chgnet_relaxes_a_metal_to_a_converged_minimum():
    start = P.metal("Li")
    start.scale_lattice(start.volume * 1.1)
    r = R.relax(start, fmax=0.02, steps=200)
    assert r.converged and r.steps > 0 and r.fmax_reached < 0.02
    assert -2.5 < r.energy_per_atom_eV < -1.3  # CHGNet's bcc Li (the Materials Project's GGA: -1.91 eV/atom)
    assert r.volume < r.volume_initial  # the expanded start shrinks back
    assert max(abs(s) for s in r.stress_GPa) < 1.0
    assert json.loads(json.dumps(r.forces)) == r.forces


@needs_potential
def test_chgnet_voltage_of_litis2():
    """LiTiS2 -> TiS2 (4 and 3 atoms): the Materials Project's GGA value for this framework is 1.88 V."""
    pair = P.insertion_pair("LiTiS2")
    v = R.average_voltage(pair.rich, pair.poor, ion="Li", fmax=0.05, steps=300)
    assert v.status == "ok", v.reason
    assert 1.3 < v.voltage_V < 2.5
    assert 0 < v.volume_change < 0.3  # lithiation opens the van der Waals gap
    assert v.capacity_mAh_g == pytest.approx(225.6, abs=0.5)


@needs_potential
def test_step_budget_exhausted_is_flagged():
    start = P.insertion_pair("LiCoO2").rich
    start.perturb(0.1, min_distance=0.05)
    r = R.relax(start, fmax=0.001, steps=3)
    assert not r.converged and r.steps == 3 and r.status == "not converged" and "3 steps" in r.reason


@needs_potential
def test_an_element_the_potential_does_not_know_is_one_line():
    from pymatgen.core import Lattice, Structure

    odd = Structure(Lattice.cubic(4.0), ["Li", "Og"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(R.PotentialError, match="^LiOg: potential chgnet does not know element Og$"):
        R.relax(odd)


@needs_potential
def test_many_structures_on_dask_with_a_checkpoint(tmp_path):
    structures = {"Li": P.metal("Li"), "Na": P.metal("Na")}
    table = R.relax_structures(structures, steps=100, scheduler="local", n_jobs=1, cache_dir=tmp_path, progress=False)
    assert list(table["status"]) == ["ok", "ok"]
    assert len(list(tmp_path.glob("*.parquet"))) == 2
    again = R.relax_structures(structures, steps=100, cache_dir=tmp_path, progress=False)  # no relaxation left
    assert list(again["energy_eV"]) == list(table["energy_eV"])
    assert R.RelaxResult.from_row(table.iloc[0].to_dict()).structure.composition.reduced_formula == "Li"


@pytest.mark.skipif(importlib.util.find_spec("sevenn") is None, reason="SevenNet is not installed")
def test_sevenn_second_opinion_on_a_metal():
    r = R.relax(P.metal("Na"), potential="sevenn", steps=100)
    assert r.converged and r.potential == "sevenn"
    assert -1.8 < r.energy_per_atom_eV < -0.8  # the Materials Project's GGA bcc Na: -1.31 eV/atom
