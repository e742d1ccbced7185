"""battlab.design: candidates by substitution, enumeration and prototypes; voltage models across working ions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from battlab.cli import main
from battlab.design import PROTOTYPES, CandidateSet, enumerate_compositions, framework, generate, prototype, substitute
from battlab.errors import BattlabError


# ----------------------------------------------------------------------------------------------- substitution
def test_substitution_probabilities_are_pymatgens_conditional_probabilities():
    from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionProbability
    from pymatgen.core import Species

    recs, why = substitute("LiFePO4", "Li", threshold=1e-3)
    assert why == "" and len(recs) > 10
    p = SubstitutionProbability()
    old = {"Fe": Species("Fe", 2), "P": Species("P", 5), "O": Species("O", -2)}
    for rec in recs[:15]:
        new = {el: Species(rec["mapping"].get(el, el), rec["oxidation"][rec["mapping"].get(el, el)]) for el in old}
        expected = math.prod(p.cond_prob(new[el], old[el]) for el in old)
        assert rec["probability"] == pytest.approx(expected, rel=1e-9)
        assert rec["probability"] > 1e-3
    probs = [r["probability"] for r in recs]
    assert probs == sorted(probs, reverse=True)


def test_substitutions_keep_the_working_ion_and_balance_charge():
    cands = generate(["LiFePO4", "LiCoO2", "Li2MnO3"], ion="Li", top=None, threshold=1e-3)
    assert len(cands) > 30
    parent_li = {"LiFePO4": 1 / 7, "LiCoO2": 1 / 4, "Li2MnO3": 2 / 6}
    for _, row in cands.table.iterrows():
        comp = Composition(row["formula"])
        assert comp.get_atomic_fraction("Li") == pytest.approx(parent_li[row["parent"]])
        assert row["formula"] != row["parent"] and row["substitution"]
        assert row["framework"] == framework(row["formula"], "Li")
    for formula in cands.table["formula"].head(12):  # charge neutral: pymatgen finds integer oxidation states
        assert Composition(formula).oxi_state_guesses(), formula


def test_ion_exchange_records_parent_and_substitution():
    cands = generate(["LiFePO4"], ion="Na", top=5)
    first = cands.table.iloc[0]
    assert (first["formula"], first["parent"], first["substitution"]) == ("NaFePO4", "LiFePO4", "Li+->Na+")
    assert cands.table["substitution"].str.startswith("Li+->Na+").all()
    assert all("Li" not in Composition(f) for f in cands.table["formula"])
    assert cands.table["candidate_id"].tolist() == [f"c{i:04d}" for i in range(1, 6)]


def test_mixed_valence_elements_are_kept_and_the_rest_substituted():
    cands = generate(["LiMn2O4"], ion="Na", top=None)
    assert "NaMn2O4" in set(cands.table["formula"])
    assert all(Composition(f)["Mn"] > 0 for f in cands.table["formula"])


def test_enumeration_is_charge_neutral_with_the_ion_a_cation():
    recs, why = enumerate_compositions(["Na", "Fe", "P", "O"], "Na", max_stoich=4)
    formulas = {r["composition"].reduced_formula for r in recs}
    assert why == "" and "NaFePO4" in formulas and len(formulas) == len(recs)
    for r in recs:
        assert r["oxidation"]["Na"] == 1
        assert sum(r["oxidation"][el.symbol] * amt for el, amt in r["composition"].items()) == 0
        assert set(r["composition"].chemical_system.split("-")) == {"Fe", "Na", "O", "P"}
    # a chemical system as a parent is enumerated; a formula with method="enumeration" uses its elements
    a = generate(["Na-Fe-P-O"], ion="Na", max_stoich=4, top=None)
    b = generate(["LiFePO4"], ion="Na", method="enumeration", max_stoich=4, top=None)
    assert set(a.table["formula"]) == set(b.table["formula"]) == formulas
    assert (a.table["method"] == "enumeration").all() and a.table["probability"].isna().all()


# ----------------------------------------------------------------------------------------------- structures
@pytest.mark.parametrize("name", sorted(PROTOTYPES))
def test_prototypes_are_the_published_structures(name):
    proto = PROTOTYPES[name]
    s = prototype(name)
    assert s.composition.reduced_formula == Composition(proto.formula).reduced_formula
    assert s.get_space_group_info()[0] == proto.space_group
    d = s.distance_matrix + np.eye(len(s)) * 99
    assert 1.4 < d.min() < 2.2  # shortest bonds: P-O 1.52 (olivine) ... Li-O 1.96 (antiperovskite)
    assert proto.source and "(19" in proto.source or "(20" in proto.source


def test_prototype_substitution_scales_the_cell_and_removes_equal_structures():
    li = generate(["olivine"], ion="Li", top=3)
    na = generate(["olivine", "olivine"], ion="Na", top=3)
    assert len(na) == 3 and (na.table["method"] == "prototype").all()
    dup = na.set_aside[na.set_aside["reason"].str.contains("duplicate structure")]
    assert len(dup) == 3  # the second olivine gives the same three structures
    s = na.structures["c0001"]
    assert s.composition.reduced_formula == "NaFePO4" and len(s) == 28
    assert na.table.loc[0, "space_group"] == "Pnma"
    assert s.volume > prototype("olivine").volume * 1.05  # Na+ is larger than Li+
    assert set(li.structures) == set(li.table["candidate_id"])


def test_candidate_set_round_trip(tmp_path):
    cands = generate(["olivine", "LiCoO2", "Fe2O3"], ion="Na", top=3)
    cands.save(tmp_path / "c")
    back = CandidateSet.load(tmp_path / "c")
    pd.testing.assert_frame_equal(back.table, cands.table, check_dtype=False)
    pd.testing.assert_frame_equal(back.set_aside, cands.set_aside, check_dtype=False)
    assert set(back.structures) == set(cands.structures)
    assert back.settings["ion"] == "Na"
    with pytest.raises(BattlabError, match="no candidates.json"):
        CandidateSet.load(tmp_path)


def test_candidate_pool_for_a_campaign():
    from battlab.plan import Campaign

    pool = generate(["LiFePO4", "LiCoO2"], ion="Li", top=10).pool()
    assert pool.id_column == "candidate_id" and len(pool.ids) == 20
    campaign = Campaign(pool, model="et", acquisition="ucb", seed=0)
    batch = campaign.suggest(4)
    assert set(batch["design_id"]) <= set(pool.ids)


# ----------------------------------------------------------------------------------------------- bad input
def test_unusable_parents_are_set_aside_with_the_reason(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 3\nnot a cif at all\n")
    host = prototype("olivine")
    host.remove_species(["Li"])
    host.to(filename=str(tmp_path / "FePO4.cif"))
    cands = generate([str(bad), str(tmp_path / "FePO4.cif"), "LiXxO2", "LiFePO4"], ion="Li", top=2)
    reasons = dict(zip(cands.set_aside["parent"], cands.set_aside["reason"], strict=True))
    assert "not a readable structure file" in reasons["broken.cif"]
    assert reasons["FePO4.cif"].startswith("no working ion in FePO4")
    assert reasons["LiXxO2"] == "unknown element 'Xx'"
    assert len(cands) == 2 and set(cands.table["parent"]) == {"LiFePO4"}
    with pytest.raises(BattlabError, match="working ion 'Xx'"):
        generate(["LiFePO4"], ion="Xx")
    with pytest.raises(BattlabError, match="unknown prototype"):
        prototype("perovskit")


def test_cli_candidates_and_a_bad_only_input(tmp_path, capsys):
    out = tmp_path / "cands.csv"
    assert main(["design", "candidates", "LiFePO4", "olivine", "--ion", "Na", "--top", "4", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 8 and table["formula"].str.contains("Na").all()
    assert len(list((tmp_path / "cands_structures").glob("*.cif"))) == 4
    assert "8 candidates" in capsys.readouterr().out
    assert main(["design", "candidates", "FePO4", "--ion", "Na", "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "set aside FePO4: no working ion" in err and err.strip().splitlines()[-1].startswith(
        "battlab design: error: no candidate made")
    assert not (tmp_path / "x.csv").exists()


def test_candidates_go_through_curate_featurize_predict(tmp_path, capsys):
    from battlab import steps

    curated = steps.curate(dataset="exp_formation_enthalpy")
    tuned = steps.tune(steps.featurize(curated, preset="magpie"), models=("ridge",), n_trials=1, progress=False,
                       storage="sqlite:///:memory:")
    tuned.save(tmp_path / "tuned")
    assert main(["design", "candidates", "LiCoO2", "--ion", "Li", "--top", "6", "--out",
                 str(tmp_path / "c.csv")]) == 0
    assert main(["predict", str(tmp_path / "tuned"), str(tmp_path / "c.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert len(pred) == 6 and (pred["error"] == "").all()
    assert np.isfinite(pred[["prediction", "low", "high"]].astype(float).to_numpy()).all()
    cur = steps.curate(pd.read_csv(tmp_path / "c.csv"))  # the curate step reads the table as any other
    assert len(cur.table) == 6
