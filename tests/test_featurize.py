"""Featurization: equality with matminer and pymatgen, bad input, sklearn behaviour, cache, CLI."""

import warnings

import matminer.featurizers.composition as matminer_composition  # a core dependency: never skipped
import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from battlab.cli import main
from battlab.datasets import load_dataset
from battlab.featurize import (
    BatteryDescriptors,
    CompositionFeaturizer,
    ElementProperty,
    FeaturePruner,
    ProcessDescriptors,
    Stoichiometry,
    StructureDescriptors,
    ValenceOrbital,
    composition_features,
    featurize_table,
    parse_compositions,
)

ELEMENTS = ["Li", "Na", "K", "Mg", "Ca", "Al", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Zr",
            "Nb", "Mo", "La", "Ce", "Si", "Sn", "P", "S", "Se", "O", "F", "Cl", "Br", "B", "C", "N", "Bi", "W"]


def random_formulas(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        els = rng.choice(ELEMENTS, size=rng.integers(1, 6), replace=False)
        parts = []
        for el in els:
            amt = rng.choice([1, 2, 3, 4, 7, 0.5, 0.25, 1.05, 0.8])
            parts.append(el + ("" if amt == 1 else f"{amt:g}"))
        formula = "".join(parts)
        if rng.random() < 0.15:  # parentheses
            formula = f"{formula}({rng.choice(['PO4', 'SO4', 'OH', 'BF4'])}){rng.integers(1, 4)}"
        out.append(formula)
    return out


def matminer_values(featurizer, formulas):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([featurizer.featurize(Composition(f)) for f in formulas], dtype=float)


def assert_same(ours, ref, labels):
    assert list(ours.columns) == labels
    np.testing.assert_array_equal(np.isnan(ours.to_numpy()), np.isnan(ref))
    assert np.nanmax(np.abs(ours.to_numpy() - ref)) < 1e-9


@pytest.fixture(scope="module")
def exp_formulas():
    df, _ = load_dataset("exp_formation_enthalpy")
    return df["formula"].tolist()


def test_magpie_equals_matminer_on_embedded_dataset(exp_formulas):
    ref_f = matminer_composition.ElementProperty.from_preset("magpie")
    ours = composition_features(exp_formulas, preset="magpie")
    assert ours.shape == (2135, 132)
    assert_same(ours, matminer_values(ref_f, exp_formulas), ref_f.feature_labels())


@pytest.mark.parametrize("ours, ref", [
    (ElementProperty(), lambda: matminer_composition.ElementProperty.from_preset("magpie")),
    (Stoichiometry(), lambda: matminer_composition.Stoichiometry()),
    (ValenceOrbital(), lambda: matminer_composition.ValenceOrbital()),
], ids=["magpie", "stoichiometry", "valence"])
def test_equal_to_matminer_on_random_compositions(ours, ref):
    formulas = random_formulas(400, seed=1)
    ref_f = ref()
    assert_same(ours.fit_transform(formulas), matminer_values(ref_f, formulas), ref_f.feature_labels())


def test_fast_parser_equals_pymatgen():
    formulas = random_formulas(500, seed=2) + ["Li2SO4·H2O", "LiCoO₂", "(LiO)2", "Li0.5CoO2", "NaN",
                                              "Ca(OH)2", "Fe2(SO4)3", "D2O"]
    idx, amt, errors = parse_compositions(formulas)
    assert errors == [""] * len(formulas)
    for f, i, a in zip(formulas, idx, amt, strict=True):
        ours = {int(z) + 1: x for z, x in zip(i, a, strict=True) if z >= 0}
        from battlab.formulas import clean_formula_text
        ref = {el.Z: amount for el, amount in Composition(clean_formula_text(f)).element_composition.items()}
        assert ours.keys() == ref.keys() and all(abs(ours[z] - ref[z]) < 1e-12 for z in ref), f


def test_bad_formulas_give_nan_rows_and_errors_without_aborting():
    formulas = ["LiCoO2", "Xx2O", "", None, "Li(", "LiFePO4"]
    X = composition_features(formulas, preset="battery")
    assert len(X) == 6
    assert X.iloc[[1, 2, 3, 4]].isna().all(axis=1).all()
    assert X.iloc[[0, 5]].notna().any(axis=1).all()
    table, _ = featurize_table(pd.DataFrame({"formula": formulas}), preset="magpie")
    errors = table["featurize_error"].tolist()
    assert errors[0] == errors[5] == ""
    assert "unknown element 'Xx'" in errors[1] and errors[2] == errors[3] == "empty formula"
    assert "cannot parse" in errors[4]


def test_battery_descriptors_match_pymatgen_and_textbook_capacities():
    from pymatgen.analysis.cost import CostAnalyzer, CostDBElements
    from pymatgen.analysis.hhi import HHIModel

    formulas = ["LiFePO4", "LiCoO2", "Li7La3Zr2O12", "NaCoO2", "MgMn2O4", "C6"]
    d = BatteryDescriptors(working_ion="Li").fit_transform(formulas).set_index(pd.Index(formulas))
    # textbook theoretical capacities: LiFePO4 170 mAh/g, LiCoO2 274 mAh/g
    assert d.loc["LiFePO4", "theoretical capacity Li (mAh/g)"] == pytest.approx(169.9, abs=0.1)
    assert d.loc["LiCoO2", "theoretical capacity Li (mAh/g)"] == pytest.approx(273.8, abs=0.1)
    assert d.loc["C6", "theoretical capacity Li (mAh/g)"] == 0
    assert d.loc["Li7La3Zr2O12", "Li content"] == 7 and d.loc["NaCoO2", "Na fraction"] == 0.25
    assert d.loc["LiCoO2", "mean TM electronegativity"] == pytest.approx(1.88)
    assert np.isnan(d.loc["C6", "mean TM electronegativity"])
    hhi, cost = HHIModel(), CostAnalyzer(CostDBElements())
    for f in formulas:
        hp, hr = hhi.get_hhi(f)
        assert d.loc[f, "HHI production mean"] == pytest.approx(hp)
        assert d.loc[f, "HHI reserve mean"] == pytest.approx(hr)
        assert d.loc[f, "cost mean ($/kg)"] == pytest.approx(float(cost.get_cost_per_kg(f)))
    mg = BatteryDescriptors(working_ion="Mg").fit_transform(["MgMn2O4"])
    assert mg.iloc[0, 8] == pytest.approx(2 * 96485.33212 / 3.6 / Composition("MgMn2O4").weight, rel=1e-6)


def test_structure_descriptors_match_pymatgen_lattice():
    rows = pd.DataFrame({"formula": ["Li4P2O7", "Li7BiO6"], "Space group #": [2, 2], "a": [8.56, 5.5071],
                         "b": [7.11, 6.0425], "c": [5.19, 5.5231], "alpha": [111.4, 116.912],
                         "beta": [89.9, 120.867], "gamma": [103.1, 62.234], "Z": [2, 1]})
    s = StructureDescriptors().fit_transform(rows)
    for i, r in rows.iterrows():
        lat = Lattice.from_parameters(r.a, r.b, r.c, r.alpha, r.beta, r.gamma)
        comp = Composition(r.formula)
        assert s.loc[i, "cell volume (Å3)"] == pytest.approx(lat.volume)
        assert s.loc[i, "volume per atom (Å3)"] == pytest.approx(lat.volume / (r.Z * comp.num_atoms))
        assert s.loc[i, "density (g/cm3)"] == pytest.approx(r.Z * comp.weight / 0.602214076 / lat.volume)
    assert StructureDescriptors.applies_to(rows) and not StructureDescriptors.applies_to(rows[["formula"]])


def test_process_descriptors_pass_through_and_derive(data_cache):
    cal, card = load_dataset("artistic_calendering")
    p = ProcessDescriptors(columns=["calender.gap.um", "thickness_before"], units={"calender.gap.um": "um"},
                           derived={"gap / thickness": "`calender.gap.um` / thickness_before"}).fit(cal)
    out = p.transform(cal)
    assert out["gap / thickness"].tolist() == pytest.approx((cal["calender.gap.um"] / cal["thickness_before"]).tolist())
    info = p.feature_info()
    assert info["unit"].tolist() == ["um", "", "derived"] and set(info["family"]) == {"process"}


def test_pruner_drops_constant_and_duplicates_with_reasons():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    X = pd.DataFrame({"a": a, "const": 1.0, "a_copy": 2 * a + 1e-3 * rng.normal(size=200),
                      "b": rng.normal(size=200), "neg_b": None})
    X["neg_b"] = -X["b"] + 1e-3 * rng.normal(size=200)
    p = FeaturePruner(threshold=0.95).fit(X)
    assert p.kept_ == ["a", "b"]
    reasons = dict(zip(p.dropped_["feature"], p.dropped_["reason"], strict=True))
    assert reasons["const"] == "constant"
    assert reasons["a_copy"].startswith("near-duplicate of 'a'")
    assert reasons["neg_b"].startswith("near-duplicate of 'b'")
    assert list(p.transform(X).columns) == ["a", "b"]
    assert FeaturePruner(threshold=1.0).fit(X).kept_ == ["a", "a_copy", "b", "neg_b"]


def test_featurizers_are_sklearn_transformers():
    f = CompositionFeaturizer(preset="battery", working_ion="Na")
    g = clone(f)
    assert g.get_params() == {"preset": "battery", "formula_column": "formula", "working_ion": "Na"}
    pipe = make_pipeline(CompositionFeaturizer(preset="magpie"), FeaturePruner(threshold=0.9))
    out = pipe.fit_transform(pd.DataFrame({"formula": random_formulas(60)}))
    assert list(out.columns) == list(pipe.get_feature_names_out())
    assert len(f.get_feature_names_out()) == len(f.feature_labels()) == 162
    info = f.feature_info()
    assert info.groupby("family").size().to_dict() == {"battery": 16, "element property": 132,
                                                       "stoichiometry": 6, "valence orbital": 8}
    assert any("ward" in c for c in f.citations())


def test_unknown_preset():
    from battlab.errors import BattlabError

    with pytest.raises(BattlabError, match="unknown preset 'nope'"):
        composition_features(["LiCoO2"], preset="nope")


def test_cache_is_reused_and_keyed_by_settings(tmp_path, monkeypatch):
    df = pd.DataFrame({"formula": random_formulas(50, seed=3)})
    first, _ = featurize_table(df, preset="magpie", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("recomputed instead of reading the cache")
    monkeypatch.setattr(CompositionFeaturizer, "_compute", boom)
    again, _ = featurize_table(df, preset="magpie", cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first, again)
    with pytest.raises(AssertionError, match="recomputed"):
        featurize_table(df, preset="stoichiometry", cache_dir=tmp_path)


def test_obelix_table_gets_structure_features(data_cache):
    from battlab.curate import curate_dataset

    result, _ = curate_dataset("obelix")
    table, info = featurize_table(result.curated)
    assert set(info["family"]) == {"element property", "stoichiometry", "valence orbital", "battery", "structure"}
    assert table["density (g/cm3)"].between(1, 10).mean() > 0.95
    assert "a" in table.columns and "a (Å)" in table.columns  # original columns kept beside features


def test_cli_featurize(tmp_path, capsys):
    from battlab.steps import FeatureSet

    src = tmp_path / "in.csv"
    src.write_text("formula,y\nLiCoO2,1\nNaN,2\nXx,3\n")
    assert main(["featurize", str(src), "--out", str(tmp_path / "f"), "--preset", "magpie", "--target", "y"]) == 0
    out = capsys.readouterr().out
    assert "3 rows -> 2 kept, 0 merged, 1 quarantined" in out  # a raw table is curated first: Xx set aside
    fs = FeatureSet.load(tmp_path / "f")
    assert fs.table["formula"].tolist() == ["LiCoO2", "NaN"]  # NaN is sodium nitride
    assert fs.table["featurize_error"].tolist() == ["", ""] and fs.model_target == "y"
    assert len(pd.read_csv(tmp_path / "f" / "feature_info.csv")) == 132 and fs.recipe.preset == "magpie"
    assert main(["featurize", str(src), "--out", str(tmp_path / "f.parquet")]) == 2
    assert "give a folder" in capsys.readouterr().err
    assert main(["featurize", str(src), "--out", str(tmp_path / "g"), "--formula-column", "comp"]) == 2
