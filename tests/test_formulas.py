import pytest

from battlab.formulas import clean_formula_text, parse_formula


@pytest.mark.parametrize("text, formula", [
    ("LiCoO2", "LiCoO2"),
    (" LiCoO₂ ", "LiCoO2"),
    ("Li Co O2", "LiCoO2"),
    ("Li2SO4·H2O", "Li2H2SO5"),
    ("LiOH.H2O", "LiH3O2"),
    ("CuSO4*5H2O", "CuH10SO9"),
    ("Li0.5CoO2", "Li0.5Co1O2"),
    ("Li6.4La3Zr1.4Ta0.6O12", "Li6.4La3Zr1.4Ta0.6O12"),
    ("NaN", "NaN"),  # sodium nitride, not a missing value
    ("Li2O2", "Li2O2"),
    ("LiNi1/3Mn1/3Co1/3O2", "Li1Mn0.33333333Co0.33333333Ni0.33333333O2"),  # NMC111 as people write it
    ("Li(Ni1/3Mn1/3Co1/3)O2", "Li1Mn0.33333333Co0.33333333Ni0.33333333O2"),
    ("Li3/2PO4", "Li1.5P1O4"),
])
def test_normalized_formulas(text, formula):
    p = parse_formula(text)
    assert p.error == ""
    assert p.formula == formula


def test_hydrate_dot_is_not_a_decimal_point():
    assert clean_formula_text("Li0.5CoO2") == "Li0.5CoO2"
    assert clean_formula_text("CuSO4 · 5H2O") == "CuSO4(H2O)5"


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    (None, "empty"),
    ("Xx2O", "unknown element"),
    ("lico2", "cannot parse"),
    ("Li-2O", "cannot parse"),
    ("Fe2O3-x", "cannot parse"),
    ("Li1e6O", "implausible"),
])
def test_bad_formulas_are_errors(text, fragment):
    p = parse_formula(text)
    assert fragment in p.error
    assert p.formula == ""


def test_case_typo_is_flagged_with_a_suggestion():
    p = parse_formula("LiCoPo4")  # Po (polonium) for PO
    assert p.error == ""
    assert p.warnings == ["rare element in battery materials: Po (did you mean 'LiCoPO4'?)"]


def test_rare_element_without_suggestion_and_plain_formulas_unflagged():
    assert parse_formula("UO2").warnings == ["rare element in battery materials: U"]
    assert parse_formula("LiFePO4").warnings == []


def test_large_amounts_and_zero_amounts_are_flagged():
    assert any("large amounts" in w for w in parse_formula("Mo1000O2889").warnings)
    assert parse_formula("H2O0").warnings == ["zero amount of O"]


def test_zero_typed_for_letter_o_is_flagged():
    assert parse_formula("LiFeP04").warnings == ["amount with a leading zero: 'P04' (did you mean 'LiFePO4'?)"]
    assert parse_formula("Li0.5CoO2").warnings == []  # a decimal amount, not a typo
    assert parse_formula("Li10GeP2S12").warnings == []


def test_a_fraction_with_a_zero_denominator_is_an_error_not_a_crash():
    p = parse_formula("Li1/0O")
    assert p.formula == "" and "cannot parse formula 'Li1/0O'" in p.error
