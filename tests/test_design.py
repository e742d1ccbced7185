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
    one = generate(prototype("olivine"), ion="Li", top=3)  # a Structure object as the parent
    assert one.table["formula"].tolist() == li.table["formula"].tolist() and one.table["parent"].iloc[0] == "LiFePO4"


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
    big = generate(["Na17(Mo15S19)4"], ion="Na")  # pymatgen's guesser would try ~1.6e8 combinations: set aside
    assert "too large for oxidation-state guessing" in big.set_aside["reason"].iloc[0] and not len(big)
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


# ----------------------------------------------------------------------------------------------- voltage models
@pytest.fixture(scope="module")
def electrodes(data_cache):
    from battlab.design.voltage import electrode_table, load_electrodes

    if not (data_cache / "mp_insertion_electrodes" / "K.parquet").is_file():
        pytest.skip("the Materials Project export (shared/datasets/mp_batteries) is not in the cache")
    table, aside = electrode_table(load_electrodes(("Li", "Na", "K")))
    return table, aside


def test_electrode_table_sets_aside_what_cannot_be_used():
    from battlab.design.voltage import electrode_table

    raw = pd.DataFrame({"battery_id": list("abcdef"), "working_ion": ["Li", "Na", "Li", "Li", "Rb", "K"],
                        "formula_discharge": ["LiFePO4", "NaFePO4", "LiQqO2", "LiCoO2", "RbF", "KFeSO4F"],
                        "formula_charge": ["FePO4", "FePO4", "QqO2", "CoO2", "F", "FeSO4F"],
                        "average_voltage": [3.4, 2.9, 4.0, 54.5, 1.0, "n/a"]})
    table, aside = electrode_table(raw)
    assert table["battery_id"].tolist() == ["a", "b"] and table["framework"].tolist() == ["FePO4", "FePO4"]
    reasons = dict(zip(aside["battery_id"], aside["reason"], strict=True))
    assert reasons == {"c": "formula_discharge: unknown element 'Qq'", "d": "average voltage 54.5 V outside 0-6 V",
                       "e": "working ion 'Rb' not one of Li, Na, K, Mg, Ca, Zn, Al",
                       "f": "average_voltage 'n/a' is not a number"}
    with pytest.raises(BattlabError, match="lacks column"):
        electrode_table(raw.drop(columns="formula_charge"))


def test_voltage_splits_keep_frameworks_apart(electrodes):
    from battlab.design.voltage import _split

    table, aside = electrodes
    assert set(table["working_ion"]) == {"Li", "Na", "K"} and len(aside) < 0.05 * (len(table) + len(aside))
    for scheme in ("li_to_na_k", "grouped"):
        tr, te, _ = _split(table, scheme, 0.2, seed=0)
        assert not set(table["framework"].iloc[tr]) & set(table["framework"].iloc[te]), scheme
    tr, te, _ = _split(table, "li_to_na_k", 0.2, seed=0)
    assert set(table["working_ion"].iloc[tr]) == {"Li"} and set(table["working_ion"].iloc[te]) == {"Na", "K"}
    tr, te, _ = _split(table, "random", 0.2, seed=0)
    assert len(te) == pytest.approx(0.2 * len(table), abs=1)


def test_voltage_model_beats_the_mean_and_is_reproducible(electrodes):
    from battlab.design.voltage import evaluate_voltage, voltage_features

    table, _ = electrodes
    small = table.sample(400, random_state=0).reset_index(drop=True)
    X = voltage_features(small)
    assert {"ion is Li", "ion is Na", "ion radius (A)"} <= set(X.columns)
    assert (X.loc[small["working_ion"] == "Na", "ion is Na"] == 1).all()
    a = evaluate_voltage(small, "grouped", features=X, models=("ridge",), n_trials=2, inner_folds=3, seed=1)
    b = evaluate_voltage(small, "grouped", features=X, models=("ridge",), n_trials=2, inner_folds=3, seed=1)
    assert a.mae == b.mae and a.overlap_frameworks == 0 and a.n_test + a.n_train == len(small)
    assert a.mae < a.dummy_mae
    assert np.allclose(np.abs(a.predictions["predicted"] - a.predictions["average_voltage"]).mean(), a.mae)
    host = voltage_features(small, "host")
    assert not [c for c in host.columns if c.startswith(("Li ", "Na ", "K "))]  # no feature names the ion's element
    two = pd.DataFrame({"working_ion": ["Li", "Na"], "formula_discharge": ["LiFePO4", "Na2Fe2(SO4)3"],
                        "formula_charge": ["Li0.5FePO4", "Fe2(SO4)3"], "framework": ["FePO4", "Fe2(SO4)3"]})
    x = voltage_features(two, "host")
    assert x["ion per host atom, discharged"].tolist() == pytest.approx([1 / 6, 2 / 17])
    assert x["ion per host atom, inserted"].tolist() == pytest.approx([0.5 / 6, 2 / 17])
    with pytest.raises(BattlabError, match="unknown feature set"):
        voltage_features(small, "graph")


# ----------------------------------------------------------------------------------------------- funnel
def test_screen_ranks_candidates_and_plans_the_next_ones(electrodes, tmp_path, capsys):
    from battlab import steps
    from battlab.design.funnel import Screening, screen

    table, _ = electrodes
    done = (table.loc[table["working_ion"] == "Na", ["formula_discharge", "average_voltage"]]
            .rename(columns={"formula_discharge": "formula"}).head(120).reset_index(drop=True))
    tuned = steps.tune(steps.featurize(steps.curate(done, target="average_voltage"), preset="magpie"),
                       models=("ridge",), n_trials=1, progress=False, storage="sqlite:///:memory:")
    tuned.save(tmp_path / "tuned")
    cands = generate(["LiFePO4", "LiCoO2", "Li2MnO3"], ion="Na", top=6)
    result = screen(cands, tuned, rank_by="energy", done=done, target="average_voltage", batch_size=3, seed=0)
    ranked = result.ranked
    assert ranked["rank"].tolist() == list(range(1, len(cands) + 1))
    assert ranked["energy_Wh_kg"].is_monotonic_decreasing
    assert np.allclose(ranked["energy_Wh_kg"], ranked["prediction"] * ranked["capacity_mAh_g"])
    assert (ranked["low"] <= ranked["prediction"]).all() and (ranked["prediction"] <= ranked["high"]).all()
    nxt = result.suggestions
    assert len(nxt) == 3 and set(nxt["candidate_id"]) <= set(ranked["candidate_id"])
    assert not set(nxt["formula"]) & set(done["formula"].map(lambda f: Composition(f).reduced_formula))
    known = result.set_aside[result.set_aside["reason"].str.contains("already measured")]
    assert len(known) and set(known["formula"]) <= set(ranked["formula"])
    again = screen(cands, tuned, rank_by="energy", done=done, target="average_voltage", batch_size=3, seed=0)
    pd.testing.assert_frame_equal(again.suggestions, nxt)
    result.save(tmp_path / "s")
    back = Screening.load(tmp_path / "s")
    assert back.ranked["candidate_id"].tolist() == ranked["candidate_id"].tolist()
    # the CLI: the same screening from the files
    cands.save(tmp_path / "c")
    done.to_csv(tmp_path / "done.csv", index=False)
    assert main(["design", "screen", str(tmp_path / "c"), "--model", str(tmp_path / "tuned"), "--rank-by", "energy",
                 "--done", str(tmp_path / "done.csv"), "--target", "average_voltage", "--batch-size", "3",
                 "--out", str(tmp_path / "cli")]) == 0
    from battlab.tables import load_table

    from_files = screen(cands, tuned, rank_by="energy", done=load_table(tmp_path / "done.csv"),
                        target="average_voltage", batch_size=3, seed=0)  # the CSV's numbers, as the CLI reads them
    cli = pd.read_csv(tmp_path / "cli" / "next.csv")
    assert cli["candidate_id"].tolist() == from_files.suggestions["candidate_id"].tolist()
    assert np.allclose(cli["mean"], from_files.suggestions["mean"])
    assert "compute next:" in capsys.readouterr().out


def test_screen_bad_input(tmp_path):
    from battlab import steps
    from battlab.design.funnel import screen

    raw = pd.DataFrame({"formula": ["LiCoO2", "LiFePO4", "LiMn2O4", "LiNiO2", "Li2S", "LiF", "LiCl", "Li2O"],
                        "v": [3.9, 3.4, 4.0, 3.8, 2.2, 3.0, 3.2, 1.5]})
    tuned = steps.tune(steps.featurize(steps.curate(raw, target="v"), preset="magpie"), models=("ridge",),
                       n_trials=1, progress=False, storage="sqlite:///:memory:", split="random:2")
    result = screen(pd.DataFrame({"formula": ["LiCoO2", "LiQqO2"]}), tuned)
    assert result.ranked["rank"].tolist()[0] == 1 and np.isnan(result.ranked["rank"].iloc[1])
    assert result.set_aside["formula"].tolist() == ["LiQqO2"] and "Qq" in result.set_aside["reason"].iloc[0]
    with pytest.raises(BattlabError, match="no 'formula' column"):
        screen(pd.DataFrame({"x": [1]}), tuned)
    with pytest.raises(BattlabError, match="give target="):
        screen(pd.DataFrame({"formula": ["LiCoO2"]}), tuned, done=raw)
    with pytest.raises(BattlabError, match="unknown rank_by"):
        screen(pd.DataFrame({"formula": ["LiCoO2"]}), tuned, rank_by="cost")


# ----------------------------------------------------------------------------------------------- retrospective recall
def test_substitution_recall_finds_held_out_analogues():
    from battlab.design.retro import substitution_recall

    known = pd.DataFrame({"working_ion": ["Li"] * 6 + ["Na"] * 2,
                          "formula_discharge": ["LiFePO4", "LiMnPO4", "LiCoPO4", "LiNiPO4", "LiCoO2", "LiNiO2",
                                                "NaFePO4", "NaCoO2"]})
    r = substitution_recall(known, holdout=0.25, n_values=(10, 10_000), seed=0)
    assert sorted(r.held_out) == [("Li", "LiNiPO4"), ("Na", "NaFePO4")] and r.n_parents == 6
    assert r.coverage == 1.0  # NaFePO4: LiFePO4 with Li+->Na+; LiNiPO4: Co2+->Ni2+ or Mn2+->Ni2+ of a parent
    held = set(r.held_out)
    found = set(zip(r.ranked.loc[r.ranked["held_out"], "working_ion"], r.ranked.loc[r.ranked["held_out"], "formula"],
                    strict=True))
    assert found <= held and r.coverage == len(found) / 2
    assert r.recall[10_000] == r.coverage and r.recall[10] <= r.recall[10_000]
    known_pairs = set(zip(known["working_ion"], known["formula_discharge"], strict=True)) - held
    assert not known_pairs & set(zip(r.ranked["working_ion"], r.ranked["formula"], strict=True))  # known: not new
    assert r.ranked["probability"].is_monotonic_decreasing
    with pytest.raises(BattlabError, match="holdout"):
        substitution_recall(known, holdout=1.5)


def test_not_used_lists_parents_candidates_and_screening_with_the_stage():
    from battlab.design import CandidateSet
    from battlab.design.funnel import Screening, not_used

    cands = CandidateSet(pd.DataFrame({"candidate_id": ["c1", "c2"], "formula": ["NaCoO2", "NaQqO2"],
                                       "parent": ["LiCoO2", "LiCoO2"]}), {},
                         pd.DataFrame({"parent": ["LiXxO2", "LiCoO2"], "candidate": ["", "NaCoO2"],
                                       "reason": ["unknown element Xx", "duplicate structure of c1"]}), {})
    screening = Screening(pd.DataFrame({"candidate_id": ["c1", "c2"], "rank": [1.0, np.nan]}),
                          set_aside=pd.DataFrame({"candidate_id": ["c2"], "formula": ["NaQqO2"],
                                                  "reason": ["no prediction: unknown element Qq"]}))
    before = not_used(cands)
    assert before["stage"].tolist() == ["parents", "candidates"] and before["parent"].tolist() == ["LiXxO2", "LiCoO2"]
    after = not_used(cands, screening)
    assert after.columns.tolist() == ["stage", "parent", "candidate", "reason"]
    assert after.iloc[2].tolist() == ["screening", "LiCoO2", "NaQqO2", "no prediction: unknown element Qq"]
    assert len(not_used(cands, Screening(screening.ranked))) == 2  # nothing set aside while screening
