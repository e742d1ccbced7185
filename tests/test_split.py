"""Tests of battlab.split: grouped splits keep chemical systems (families, clusters) on one side."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_score

import battlab.split as split_module
from battlab.errors import BattlabError
from battlab.split import (
    DEFAULT_SPLIT,
    SPLITTERS,
    GroupKFoldBy,
    LeaveClusterOut,
    MatbenchFolds,
    OfficialSplit,
    RandomKFold,
    Splitter,
    chemical_system,
    make_splitter,
)

# 12 chemical systems x 5 stoichiometries: the near-duplicates a random K-fold leaks.
TEMPLATES = [
    "Li{x}CoO2", "Li{x}NiO2", "Li{x}MnO2", "Li{x}FePO4", "Na{x}CoO2", "Li{x}TiS2",
    "Li{x}La3Zr2O12", "Li{x}GeP2S12", "Na{x}FePO4", "Li{x}VO2", "Li{x}Ti5O12", "Li{x}Al0.3Ti1.7(PO4)3",
]
AMOUNTS = [0.6, 0.7, 0.8, 0.9, 1]
FEATURES = ["f1", "f2", "f3"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """60 rows: formula, its system (also as 'Family'), 3 features clustered by system, a target."""
    rng = np.random.default_rng(42)
    rows = []
    for template in TEMPLATES:
        center = rng.normal(0, 5, size=3)
        for x in AMOUNTS:
            formula = template.format(x=x)
            feats = dict(zip(FEATURES, center + rng.normal(0, 0.3, size=3), strict=True))
            rows.append({"formula": formula, "system": chemical_system(formula), **feats})
    df = pd.DataFrame(rows)
    df["Family"] = df["system"]
    df["target"] = df[FEATURES].to_numpy() @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, len(df))
    # Shuffle so that a splitter cannot pass by cutting the table into contiguous blocks.
    return df.sample(frac=1, random_state=0).reset_index(drop=True)


def folds_of(splitter: Splitter, df: pd.DataFrame) -> list[tuple[list[int], list[int]]]:
    return [(train.tolist(), test.tolist()) for train, test in splitter.split(df)]


def leaked(folds: list[tuple[list[int], list[int]]], groups: pd.Series) -> set[str]:
    """Groups seen on both sides of some fold."""
    out: set[str] = set()
    for train, test in folds:
        out |= set(groups.iloc[train]) & set(groups.iloc[test])
    return out


def assert_partition(folds: list[tuple[list[int], list[int]]], n_rows: int) -> None:
    """Every row is tested exactly once and trained on in every other fold."""
    tested = sorted(i for _, test in folds for i in test)
    assert tested == list(range(n_rows))
    for train, test in folds:
        assert sorted(train + test) == list(range(n_rows))


GROUPED: dict[str, Callable[[], Splitter]] = {
    "chemical_system": lambda: make_splitter("chemical_system"),
    "family": lambda: make_splitter("family"),
    "column": lambda: GroupKFoldBy(n_splits=4, by="system", seed=3),
    "size_balanced": lambda: GroupKFoldBy(seed=None),
}
SEEDED: dict[str, Callable[[int], Splitter]] = {
    "random": lambda seed: RandomKFold(seed=seed),
    "chemical_system": lambda seed: make_splitter("chemical_system", seed=seed),
    "family": lambda seed: make_splitter("family", seed=seed),
    "cluster": lambda seed: LeaveClusterOut(n_clusters=5, seed=seed, columns=FEATURES),
}


# --------------------------------------------------------------------------- chemical_system


@pytest.mark.parametrize(("formula", "system"), [
    ("LiCoO2", "Co-Li-O"),
    ("Li0.9CoO2", "Co-Li-O"),
    ("LiFePO4", "Fe-Li-O-P"),
    ("Li2SO4·H2O", "H-Li-O-S"),
    ("Li₇La₃Zr₂O₁₂", "La-Li-O-Zr"),
])
def test_chemical_system(formula: str, system: str) -> None:
    assert chemical_system(formula) == system


@pytest.mark.parametrize("bad", ["Xx2O", "", "Li(CoO2"])
def test_chemical_system_bad_formula(bad: str) -> None:
    with pytest.raises(BattlabError, match=re.escape(f"formula {bad!r}")):
        chemical_system(bad)


def test_synthetic_table_has_near_duplicates(table: pd.DataFrame) -> None:
    assert len(table) == 60
    assert table["system"].nunique() == 12
    assert table["system"].value_counts().eq(5).all()


# --------------------------------------------------------------------------- grouped splits


@pytest.mark.parametrize("make", GROUPED.values(), ids=GROUPED.keys())
def test_grouped_no_chemical_system_on_both_sides(make: Callable[[], Splitter], table: pd.DataFrame) -> None:
    splitter = make()
    folds = folds_of(splitter, table)
    assert len(folds) == splitter.get_n_splits()
    assert leaked(folds, table["system"]) == set()
    assert_partition(folds, len(table))


def test_random_kfold_leaks_near_duplicates(table: pd.DataFrame) -> None:
    # The leak check above is not vacuous: the random K-fold does leak on this table.
    assert leaked(folds_of(RandomKFold(), table), table["system"])


def test_group_kfold_by_chemical_system_groups(table: pd.DataFrame) -> None:
    assert GroupKFoldBy().groups(table).tolist() == table["system"].tolist()


@pytest.mark.parametrize("name", SEEDED.keys())
def test_same_seed_same_folds_other_seed_other_folds(name: str, table: pd.DataFrame) -> None:
    make = SEEDED[name]
    first = folds_of(make(0), table)
    assert folds_of(make(0), table) == first
    assert any(folds_of(make(seed), table) != first for seed in range(1, 6))


@pytest.mark.parametrize("name", SEEDED.keys())
def test_folds_partition_rows(name: str, table: pd.DataFrame) -> None:
    assert_partition(folds_of(SEEDED[name](0), table), len(table))


def test_groups_argument_overrides_by(table: pd.DataFrame) -> None:
    parity = np.arange(len(table)) % 2
    folds = list(GroupKFoldBy(n_splits=2).split(table.drop(columns="formula"), groups=parity))
    assert sorted(test.tolist() for _, test in folds) == [list(range(0, 60, 2)), list(range(1, 60, 2))]


def test_too_few_groups(table: pd.DataFrame) -> None:
    with pytest.raises(BattlabError, match="only 12 distinct chemical systems for 13 folds"):
        list(GroupKFoldBy(n_splits=13).split(table))
    with pytest.raises(BattlabError, match="only 2 distinct groups for 3 folds"):
        list(GroupKFoldBy(n_splits=3, by="kind").split(table.assign(kind=["a", "b"] * 30)))


def test_grouped_errors(table: pd.DataFrame) -> None:
    with pytest.raises(BattlabError, match="column 'composition' not in the table"):
        list(GroupKFoldBy(formula_column="composition").split(table))
    with pytest.raises(BattlabError, match="column 'Family' not in the table"):
        list(make_splitter("family").split(table.drop(columns="Family")))
    bad = table.copy()
    bad.loc[7, "formula"] = "Xx2O"
    with pytest.raises(BattlabError, match=r"'Xx2O'.*row 7"):
        list(GroupKFoldBy().split(bad))
    with pytest.raises(BattlabError, match="needs X as a pandas DataFrame"):
        list(GroupKFoldBy().split(table[FEATURES].to_numpy()))


def test_missing_group_values_stay_together(table: pd.DataFrame) -> None:
    df = table.assign(Family=table["Family"].where(table.index % 6 != 0))  # every 6th row unlabeled
    folds = folds_of(make_splitter("family"), df)
    assert leaked(folds, df["Family"].fillna("<missing>")) == set()


# --------------------------------------------------------------------------- other splitters


def test_random_kfold_matches_sklearn(table: pd.DataFrame) -> None:
    for seed in (0, 7):
        expected = [(tr.tolist(), te.tolist())
                    for tr, te in KFold(5, shuffle=True, random_state=seed).split(table)]
        assert folds_of(RandomKFold(n_splits=5, seed=seed), table) == expected


def test_leave_cluster_out(table: pd.DataFrame) -> None:
    splitter = LeaveClusterOut(n_clusters=4, seed=1)
    assert splitter.get_n_splits() == 4
    assert splitter.clusters_ is None
    folds = list(splitter.split(table))  # all numeric columns: f1, f2, f3, target
    labels = splitter.clusters_
    assert labels is not None and len(labels) == len(table)
    assert len(folds) == 4 and sorted(set(labels.tolist())) == [0, 1, 2, 3]
    for k, (train, test) in enumerate(folds):
        assert test.tolist() == np.flatnonzero(labels == k).tolist()
        assert not set(labels[train]) & {k}
    assert_partition([(tr.tolist(), te.tolist()) for tr, te in folds], len(table))


def test_leave_cluster_out_columns_and_nan(table: pd.DataFrame) -> None:
    df = table.assign(f1=table["f1"].where(table.index % 10 != 0), empty=np.nan)
    splitter = LeaveClusterOut(n_clusters=3, columns=["f1", "f2"])
    folds = list(splitter.split(df))
    assert len(folds) == 3 and splitter.clusters_ is not None
    # The all-NaN column is dropped, not fatal, when columns are picked automatically.
    assert len(list(LeaveClusterOut(n_clusters=3).split(df))) == 3
    with pytest.raises(BattlabError, match="no numeric values in column"):
        list(LeaveClusterOut(columns=["f1", "empty"]).split(df))
    with pytest.raises(BattlabError, match="no numeric columns"):
        list(LeaveClusterOut().split(table[["formula"]]))
    with pytest.raises(BattlabError, match="only 2 distinct clusters"):
        list(LeaveClusterOut(n_clusters=3).split(pd.DataFrame({"x": [0.0, 0.0, 1.0, 1.0]})))


def test_official_split_synthetic() -> None:
    df = pd.DataFrame({"split": ["train", "test", "train", "val", "test"], "part": ["a"] * 5})
    [(train, test)] = OfficialSplit().split(df)
    assert (train.tolist(), test.tolist()) == ([0, 2], [1, 4])
    assert OfficialSplit().get_n_splits() == 1
    with pytest.raises(BattlabError, match="column 'fold' not in the table"):
        list(OfficialSplit(column="fold").split(df))
    with pytest.raises(BattlabError, match="no row has 'part' == 'train'"):
        list(OfficialSplit(column="part").split(df))
    with pytest.raises(BattlabError, match="no row has 'split' == 'holdout'"):
        list(OfficialSplit(test="holdout").split(df))


def test_matbench_folds() -> None:
    from battlab.datasets import matbench_folds

    folds = [(tr.tolist(), te.tolist()) for tr, te in MatbenchFolds().split(np.zeros((100, 2)))]
    assert folds == [(tr.tolist(), te.tolist()) for tr, te in matbench_folds(100)]
    assert MatbenchFolds().get_n_splits() == len(folds) == 5


@pytest.mark.parametrize("name", ["random", "chemical_system", "family", "cluster", "matbench"])
def test_cross_val_score(name: str, table: pd.DataFrame) -> None:
    splitter = make_splitter(name, **({"columns": FEATURES} if name == "cluster" else {}))
    scores = cross_val_score(Ridge(), table[FEATURES], table["target"], cv=list(splitter.split(table)))
    assert len(scores) == splitter.get_n_splits()
    assert np.isfinite(scores).all()


def test_splitter_as_cv_object(table: pd.DataFrame) -> None:
    scores = cross_val_score(Ridge(), table[FEATURES], table["target"], cv=RandomKFold(n_splits=3))
    assert len(scores) == 3


# --------------------------------------------------------------------------- factory and descriptions


def test_make_splitter_names() -> None:
    assert DEFAULT_SPLIT == "chemical_system"
    expected = {"random": RandomKFold, "chemical_system": GroupKFoldBy, "family": GroupKFoldBy,
                "cluster": LeaveClusterOut, "official": OfficialSplit, "matbench": MatbenchFolds}
    assert set(SPLITTERS) == set(expected)
    for name, cls in expected.items():
        assert type(make_splitter(name)) is cls
    assert make_splitter().by == "chemical_system"
    assert make_splitter("family").by == "Family"


def test_make_splitter_errors() -> None:
    with pytest.raises(BattlabError, match="unknown split 'kfold'.*random, chemical_system, family, cluster"):
        make_splitter("kfold")
    with pytest.raises(BattlabError, match="unknown option.*n_folds.*n_splits"):
        make_splitter("random", n_folds=3)
    with pytest.raises(BattlabError, match="n_splits must be an integer >= 2"):
        make_splitter("chemical_system", n_splits=1)


def test_descriptions() -> None:
    assert make_splitter("chemical_system").name == "group 5-fold by chemical system (seed 0)"
    assert make_splitter("family", n_splits=3, seed=2).describe() == "group 3-fold by 'Family' (seed 2)"
    assert GroupKFoldBy(seed=None).describe() == "group 5-fold by chemical system (size-balanced)"
    assert make_splitter("random").name == "random 5-fold (seed 0)"
    assert "cluster" in make_splitter("cluster").name
    assert "'split'" in make_splitter("official").name
    assert "matbench" in make_splitter("matbench").name


@pytest.mark.parametrize("name", SPLITTERS.keys())
def test_to_dict_round_trips(name: str) -> None:
    splitter = make_splitter(name)
    record = splitter.to_dict()
    assert record["description"] == splitter.name
    params = {k: v for k, v in record.items() if k not in ("splitter", "description")}
    rebuilt = getattr(split_module, record["splitter"])(**params)
    assert rebuilt.to_dict() == record
    assert repr(rebuilt) == repr(splitter)


# --------------------------------------------------------------------------- OBELiX


@pytest.fixture(scope="module")
def obelix(data_cache: Path) -> pd.DataFrame:
    from battlab.datasets import load_dataset

    df, _ = load_dataset("obelix")
    return df


def test_obelix_family_split_keeps_families_apart(obelix: pd.DataFrame) -> None:
    folds = folds_of(make_splitter("family"), obelix)
    assert leaked(folds, obelix["Family"]) == set()
    assert_partition(folds, len(obelix))


def test_obelix_chemical_system_split(obelix: pd.DataFrame) -> None:
    systems = obelix["Reduced Composition"].map(chemical_system)
    folds = folds_of(make_splitter("chemical_system", formula_column="Reduced Composition"), obelix)
    assert leaked(folds, systems) == set()
    # The official split was drawn at random: it does share chemical systems between train and test.
    assert leaked(folds_of(OfficialSplit(), obelix), systems)


def test_obelix_official_split(obelix: pd.DataFrame) -> None:
    [(train, test)] = make_splitter("official").split(obelix)
    assert (len(train), len(test)) == (478, 121)
    assert set(obelix["split"].iloc[train]) == {"train"}
    assert set(obelix["split"].iloc[test]) == {"test"}
