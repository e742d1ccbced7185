"""battlab.design.capacity: the redox-limited theoretical capacity, and the screening funnel's energy proxy built on
it (a solid electrolyte without redox-active cation must not out-rank a layered oxide)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from battlab.design.capacity import max_oxidation_state, redox_capacity
from battlab.errors import BattlabError


@pytest.mark.parametrize(("formula", "ion", "literature", "couple"), [
    ("LiFePO4", "Li", 170, "Fe2+->Fe3+"),  # Padhi et al. 1997
    ("LiCoO2", "Li", 274, "Co3+->Co4+"),
    ("LiMn2O4", "Li", 148, "Mn3.5+->Mn4+"),
    ("NaFePO4", "Na", 154, "Fe2+->Fe3+"),
])
def test_literature_theoretical_capacities(formula, ion, literature, couple):
    c = redox_capacity([formula], working_ion=ion).iloc[0]
    assert c["capacity_mAh_g"] == pytest.approx(literature, abs=1)
    assert c["redox"] == couple and c["note"] == "" and c["removable_ions"] == 1


def test_all_ions_capacity_is_battery_descriptors_and_the_redox_one_never_exceeds_it():
    from battlab.featurize import BatteryDescriptors

    formulas = ["LiFePO4", "Li3ClO", "Li5FeO4", "Li2MnO3", "LiNi0.8Co0.1Mn0.1O2", "Li2FeSiO4"]
    c = redox_capacity(formulas, working_ion="Li")
    d = BatteryDescriptors(working_ion="Li").fit_transform(formulas)
    np.testing.assert_allclose(c["capacity_all_ions_mAh_g"], d["theoretical capacity Li (mAh/g)"], rtol=1e-9)
    assert (c["capacity_mAh_g"] <= c["capacity_all_ions_mAh_g"] + 1e-9).all()


def test_redox_limits_the_extracted_ions():
    c = redox_capacity(["Li5FeO4", "Li2FeSiO4"], working_ion="Li")
    # Li5FeO4: Fe3+ -> Fe4+ compensates one Li of five
    assert c.loc[0, "removable_ions"] == pytest.approx(1)
    assert c.loc[0, "capacity_mAh_g"] == pytest.approx(c.loc[0, "capacity_all_ions_mAh_g"] / 5)
    assert c.loc[0, "note"] == "redox-limited: 1 of 5 Li removable" and c.loc[0, "redox"] == "Fe3+->Fe4+"
    # Li2FeSiO4: Fe2+ -> Fe4+ (the Fe override) allows both Li, the literature's two-electron 331 mAh/g
    assert c.loc[1, "capacity_mAh_g"] == pytest.approx(331, abs=1) and c.loc[1, "redox"] == "Fe2+->Fe4+"


def test_no_redox_active_cation_is_zero_with_the_reason():
    c = redox_capacity(["Li3ClO", "Na3OF", "Li2MnO3", "Li7La3Zr2O12"], working_ion="Li")
    assert c["capacity_mAh_g"].tolist()[::2] == [0.0, 0.0]  # Li3ClO, Li2MnO3
    assert c.loc[0, "note"] == "no redox-active cation (anion redox not counted)"
    assert c.loc[0, "capacity_all_ions_mAh_g"] > 1000  # what the all-ions capacity claims for a solid electrolyte
    assert c.loc[1, "note"] == "no Li in the formula" and c.loc[1, "capacity_mAh_g"] == 0
    assert "Mn at its highest counted state" in c.loc[2, "note"] and max_oxidation_state("Mn") == 4
    assert "La, Zr at their highest counted state" in c.loc[3, "note"] and c.loc[3, "capacity_mAh_g"] == 0


def test_what_cannot_be_guessed_is_nan_with_the_reason_not_zero():
    c = redox_capacity(pd.Series(["LiAl", "Li1.2Mn0.54Ni0.13Co0.13O2", "LiQqO2", None], index=[7, 8, 9, 10]),
                       working_ion="Li")
    assert c.index.tolist() == [7, 8, 9, 10]
    assert c["capacity_mAh_g"].isna().all()
    assert c.loc[7, "note"] == "no charge-balanced oxidation states found (pymatgen's guesses)"
    assert c.loc[7, "capacity_all_ions_mAh_g"] > 0  # the all-ions value is still there
    assert "not integer" in c.loc[8, "note"]
    assert "Qq" in c.loc[9, "note"] and c.loc[10, "note"] == "empty formula"


def test_a_formula_over_the_guessing_budget_is_nan_with_the_reason():
    from pymatgen.core import Composition

    from battlab.design.candidates import _guess_cost

    cost = _guess_cost(Composition("Na3V2(PO4)3"))
    over = redox_capacity(["Na3V2(PO4)3"], working_ion="Na", max_combinations=cost - 1).iloc[0]
    assert np.isnan(over["capacity_mAh_g"]) and f"{cost:,} combinations > max_combinations" in over["note"]
    within = redox_capacity(["Na3V2(PO4)3"], working_ion="Na", max_combinations=cost).iloc[0]
    # V3+ up to V5+ (ICSD maximum) compensates all 3 Na: 176 mAh/g, above the 118 of the usual V3+/V4+ couple
    assert within["capacity_mAh_g"] == pytest.approx(within["capacity_all_ions_mAh_g"])
    assert within["redox"] == "V3+->V4.5+" and within["note"] == ""


def test_fractional_formulas_are_scaled_to_integers():
    c = redox_capacity(["Na0.67Mn0.67Ni0.33O2"], working_ion="Na").iloc[0]
    assert np.isfinite(c["capacity_mAh_g"]) and c["capacity_mAh_g"] > 0 and c["removable_ions"] <= 0.67 + 1e-9


def test_unknown_working_ion_is_an_error():
    with pytest.raises(BattlabError, match="unknown working ion 'Cs'"):
        redox_capacity(["CsCoO2"], working_ion="Cs")


def test_funnel_ranks_an_antiperovskite_below_a_layered_oxide_on_energy():
    from battlab import steps
    from battlab.design.funnel import screen

    known = pd.DataFrame({"formula": ["NaFePO4", "NaCoO2", "NaMnO2", "NaCrO2", "NaVPO4F", "NaTiS2", "NaNiO2",
                                      "NaFeO2", "Na2FeP2O7", "LiCoO2", "LiFePO4", "LiMn2O4"],
                          "v": [2.9, 2.8, 2.9, 3.0, 3.7, 1.6, 3.0, 3.3, 2.9, 3.9, 3.4, 4.0]})
    tuned = steps.tune(steps.featurize(steps.curate(known, target="v"), preset="magpie"), models=("ridge",),
                       n_trials=1, progress=False, storage="sqlite:///:memory:", split="random:3")
    cands = pd.DataFrame({"formula": ["Na3OF", "NaCoO2", "Na3ClO", "NaAl"]})
    r = screen(cands, tuned, rank_by="energy", working_ion="Na")
    ranked = r.ranked.set_index("formula")
    assert ranked.loc["NaCoO2", "rank"] == 1
    assert ranked.loc["Na3OF", "rank"] > ranked.loc["NaCoO2", "rank"]
    assert ranked.loc["Na3OF", "capacity_all_ions_mAh_g"] > 3 * ranked.loc["NaCoO2", "capacity_all_ions_mAh_g"]
    for f in ("Na3OF", "Na3ClO"):
        assert ranked.loc[f, "energy_Wh_kg"] == 0 and "no redox-active cation" in ranked.loc[f, "capacity_note"]
    assert ranked.loc["NaCoO2", "redox"] == "Co3+->Co4+"
    np.testing.assert_allclose(r.ranked["energy_Wh_kg"], r.ranked["prediction"] * r.ranked["capacity_mAh_g"])
    # NaAl: no oxidation states, so no energy proxy: set aside with the reason, not ranked
    assert np.isnan(ranked.loc["NaAl", "rank"])
    assert r.set_aside["formula"].tolist() == ["NaAl"]
    assert r.set_aside["reason"].iloc[0] == "no energy proxy: no charge-balanced oxidation states found (pymatgen's " \
                                            "guesses)"
    # ranked by the prediction, the capacity is information only: NaAl is ranked
    by_v = screen(cands, tuned, rank_by="prediction", working_ion="Na")
    assert by_v.ranked["rank"].notna().all() and not len(by_v.set_aside)
