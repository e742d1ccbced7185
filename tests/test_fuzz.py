"""Property-based fuzzing of curation and featurization (hypothesis, reproducible: derandomized, no database).

Curation of any table (random cells of any type, unicode, extreme numbers, NaN/inf, duplicate columns,
ragged rows, random bytes as a file) either returns a result in which every input row is in exactly one of
``curated``/``merged``/``quarantine`` (so ``n_input == n_kept + n_merged + n_quarantined``), or raises a
:class:`~battlab.errors.BattlabError`. Featurization of any formula column never raises, keeps every row
and gives every failed row a ``featurize_error``.

The number of examples tried is printed at the end of the session (``fuzz examples tried: N``) and kept in
``test-artifacts/fuzz-examples.json``.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from battlab.curate import curate
from battlab.errors import BattlabError
from battlab.featurize import composition_features, featurize_table

TRIED: Counter[str] = Counter()  # examples tried, per test


@pytest.fixture(scope="module", autouse=True)
def _report_examples(request: pytest.FixtureRequest):
    """conftest's ``pytest_terminal_summary`` prints these and keeps them in test-artifacts/."""
    request.config.battlab_fuzz_tried = TRIED
    yield


def fuzz_settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


# --------------------------------------------------------------------------- strategies

FORMULAS = ["LiCoO2", "LiFePO4", "LiNi0.8Co0.1Mn0.1O2", "Li3V2(PO4)3", "NaCl", "Li7La3Zr2O12", "LiCoO₂",
            "Li₂MnO₃", "Li2MnO3·H2O", "Fe2O3", "NaN", "Xx2O", "Li(CoO2", "li co o2", "LiCo O2", "CoO2Li",
            "H2O", "LiNi1/3Co1/3Mn1/3O2", "Li0.5CoO2", "Li1e308O", "Li1e-320O", "LiCoO-2", "LiCoO2 (R-3m)"]
WEIRD = ["", " ", "\t", "NaN", "nan", "None", "null", "N/A", "-", "—", "inf", "-inf", "1e308", "1e-320",
         "1e999", "-0", "0x10", "١٢٣", "ليثيوم", "שלום", "\u202eRTL", "🔋", "🔋Li", "∞", "½", "²", "𝟙𝟚",
         "1,5", "1.5e3 mAh/g", "<5", ">1e-3 S/cm", "140 mAh g-1", "3.7 V", "25 °C", "298 K", "\x00", "\ufeff",
         "a\nb", '"', "'", ",", ";", "|", "=1+1", "@SUM(A1)", "${jndi:x}", "%s%n", "../x", "Z" * 300]
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([1e308, -1e308, 1e-320, 5e-324, 0.0, -0.0, float("nan"), float("inf")]),
                    st.integers(min_value=-(2**70), max_value=2**70))
FORMULA_LIKE = st.one_of(
    st.sampled_from(FORMULAS),
    st.text(alphabet="LiCoNaFeMnPOSZrLaVAlTiXxHe0123456789.()[]/·₀₁₂₃₄₅₆₇₈₉ +-eE", max_size=24),
    st.builds(lambda a, b: a + b, st.sampled_from(FORMULAS), st.sampled_from(WEIRD)),
)
CELL = st.one_of(st.sampled_from(WEIRD), FORMULA_LIKE, NUMBERS, st.text(max_size=12), st.none(),
                 st.booleans(), st.just(pd.NaT), st.binary(max_size=6))
COLUMN_NAMES = st.sampled_from(["formula", "Formula", "composition", "capacity (mAh/g)", "capacity",
                                "conductivity (S/cm)", "porosity", "voltage", "T", "", " ", "formula.1",
                                "row", "formula_raw", "🔋", "ليثيوم", "0", "1e308", "nan", "qc_flags",
                                "capacity (mAh/g)_censored", "Li₂O"])


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, str | None, str | None]:
    n_cols = draw(st.integers(1, 5))
    names = draw(st.lists(COLUMN_NAMES, min_size=n_cols, max_size=n_cols))  # duplicates allowed
    n_rows = draw(st.integers(0, 12))
    rows = [[draw(CELL) for _ in range(n_cols)] for _ in range(n_rows)]
    if rows and draw(st.booleans()):  # replicates: repeat some rows, perhaps with another value
        for _ in range(draw(st.integers(1, 4))):
            r = list(draw(st.sampled_from(rows)))
            if draw(st.booleans()):
                r[draw(st.integers(0, n_cols - 1))] = draw(CELL)
            rows.append(r)
    df = pd.DataFrame(rows, columns=names, dtype=object) if rows else pd.DataFrame(columns=names)
    if draw(st.booleans()) and len(df):  # a typed column too
        df[f"typed_{draw(st.integers(0, 2))}"] = draw(st.lists(NUMBERS, min_size=len(df), max_size=len(df)))
    cols = [str(c) for c in df.columns]
    formula = draw(st.one_of(st.none(), st.sampled_from(cols)))
    target = draw(st.one_of(st.none(), st.sampled_from(cols), st.just("missing column")))
    return df, formula, target


def _text_cell(draw: st.DrawFn) -> str:
    return str(draw(st.one_of(st.sampled_from(WEIRD), FORMULA_LIKE, NUMBERS, st.text(max_size=8))))


@st.composite
def text_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """Bytes of a table-ish file: random bytes, or CSV-like text with ragged rows and odd encodings."""
    suffix = draw(st.sampled_from([".csv", ".csv", ".tsv", ".txt", "", ".parquet", ".xlsx", ".CSV"]))
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300)), suffix
    delim = draw(st.sampled_from([",", ";", "\t", "|", " "]))
    width = draw(st.integers(1, 4))
    header = [draw(st.one_of(COLUMN_NAMES, st.text(max_size=6))) for _ in range(width)]
    lines = [delim.join(header)]
    for _ in range(draw(st.integers(0, 10))):
        n = width if draw(st.integers(0, 3)) else draw(st.integers(0, width + 2))  # some ragged rows
        lines.append(delim.join(_text_cell(draw) for _ in range(n)))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]))
    raw = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 5)) == 0:  # flip a few bytes
        b = bytearray(raw)
        for _ in range(draw(st.integers(1, 4))):
            if b:
                b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        raw = bytes(b)
    return raw, suffix


# --------------------------------------------------------------------------- checks

def check_result(result) -> None:
    r = result.report
    assert r["n_input"] == r["n_kept"] + r["n_merged"] + r["n_quarantined"], r
    assert (len(result.curated), len(result.merged), len(result.quarantine)) == (
        r["n_kept"], r["n_merged"], r["n_quarantined"])
    rows = [*result.curated["row"].tolist(), *result.merged["row"].tolist(), *result.quarantine["row"].tolist()]
    counts = Counter(int(x) for x in rows)
    assert all(c == 1 for c in counts.values()), f"rows in more than one place: {counts}"
    assert sorted(counts) == list(range(1, r["n_input"] + 1)), (sorted(counts), r["n_input"])
    assert set(result.merged["merged_into"].astype(int)) <= set(result.curated["row"].astype(int))


def curate_or_user_error(data, **kwargs) -> None:
    try:
        result = curate(data, **kwargs)
    except BattlabError as exc:
        assert str(exc).strip()  # a message for the user
        return
    check_result(result)


# --------------------------------------------------------------------------- curation

@fuzz_settings(220)
@given(frames())
def test_curate_random_frames(case: tuple[pd.DataFrame, str | None, str | None]) -> None:
    TRIED["curate_frame"] += 1
    df, formula, target = case
    curate_or_user_error(df, formula_column=formula, target=target)


@fuzz_settings(150)
@given(text_files())
def test_curate_random_files(case: tuple[bytes, str]) -> None:
    TRIED["curate_file"] += 1
    raw, suffix = case
    with tempfile.TemporaryDirectory(prefix="battlab-fuzz-") as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(raw)
        curate_or_user_error(path)
        curate_or_user_error(str(path), target="capacity (mAh/g)")


@fuzz_settings(60)
@given(st.lists(FORMULA_LIKE, min_size=1, max_size=15),
       st.lists(st.one_of(NUMBERS, st.sampled_from(WEIRD)), min_size=15, max_size=15),
       st.sampled_from([None, ("split",)]), st.floats(0, 1), st.sampled_from([None, True, False]))
def test_curate_replicates_and_settings(formulas: list[str], ys: list, group_by, tol: float, log) -> None:
    TRIED["curate_replicates"] += 1
    df = pd.DataFrame({"formula": formulas * 2, "conductivity (S/cm)": (ys * 2)[: 2 * len(formulas)],
                       "split": ["train", "test"] * len(formulas)})
    curate_or_user_error(df, target="conductivity (S/cm)", group_by=group_by or (), replicate_tolerance=tol,
                         log_target=log)


# --------------------------------------------------------------------------- featurization

@fuzz_settings(90)
@given(st.lists(st.one_of(FORMULA_LIKE, st.sampled_from(WEIRD), st.none(), NUMBERS), min_size=0, max_size=12),
       st.sampled_from(["magpie", "battery"]))
def test_featurize_table_never_raises(formulas: list, preset: str) -> None:
    TRIED["featurize_table"] += 1
    df = pd.DataFrame({"formula": pd.Series(formulas, dtype=object), "y": np.arange(len(formulas))},
                      index=pd.RangeIndex(10, 10 + len(formulas)))
    table, info = featurize_table(df, preset=preset, formula_column="formula")
    assert len(table) == len(df) and table.index.equals(df.index)
    assert table["y"].tolist() == df["y"].tolist()
    features = table[info["feature"].tolist()].apply(pd.to_numeric, errors="coerce")
    failed = features.isna().all(axis=1)
    errors = table["featurize_error"].astype(str)
    assert (errors[failed].str.strip() != "").all(), table.loc[failed, ["formula", "featurize_error"]]
    assert features[errors != ""].isna().all(axis=None)  # an error row carries no features
    assert not np.isinf(features.to_numpy(dtype=float)).any()


@fuzz_settings(40)
@given(st.lists(FORMULA_LIKE, min_size=1, max_size=10))
def test_composition_features_one_row_per_formula(formulas: list[str]) -> None:
    TRIED["composition_features"] += 1
    out = composition_features(formulas, preset="magpie")
    assert len(out) == len(formulas)


# --------------------------------------------------------------------------- bugs the fuzzer found, fixed

def test_duplicate_dataframe_columns_are_renamed_and_kept() -> None:
    result = curate(pd.DataFrame([["LiCoO2", "LiFePO4"]], columns=["formula", "formula"]))
    assert result.curated.loc[0, ["formula", "formula.1"]].tolist() == ["LiCoO2", "LiFePO4"]
    assert any("formula.1" in n for n in result.report["notes"])


def test_formula_column_beside_a_formula_column_keeps_both() -> None:
    result = curate(pd.DataFrame({"composition": ["LiCoO2"], "formula": ["x"]}), formula_column="composition")
    assert result.curated.loc[0, "formula (input)"] == "x"
    assert result.curated.loc[0, "composition"] == "LiCoO2"
    assert any("'formula (input)'" in n for n in result.report["notes"])


def test_input_columns_named_like_outputs_are_renamed_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("formula,row,qc_flags,y,y_std\nLiCoO2,7,ok,1,0.5\nLiFePO4,8,ok,2,0.25\n")
    result = curate(path, target="y")
    c = result.curated
    assert c["row"].tolist() == [1, 2]  # battlab's row numbers
    assert c["row (input)"].tolist() == [7, 8] and c["qc_flags (input)"].tolist() == ["ok", "ok"]
    assert c["y_std (input)"].tolist() == [0.5, 0.25]  # the input column, not the replicate spread
    check_result(result)


def test_target_named_row_follows_its_rename() -> None:
    result = curate(pd.DataFrame({"formula": ["LiCoO2", "LiFePO4"], "row": [5, 6]}), target="row")
    assert result.report["target"] == "row (input)"
    assert result.curated["row (input)"].tolist() == [5.0, 6.0]


def test_bytes_cells_are_decoded_and_bad_bytes_quarantined_with_their_text() -> None:
    result = curate(pd.DataFrame({"formula": [b"LiCoO2", b"\x80"]}))
    assert result.curated["formula"].tolist() == ["LiCoO2"]
    assert result.quarantine["value"].tolist() == ["\\x80"]  # escaped, not lost
    check_result(result)


def test_formula_and_Formula_columns_use_the_exact_name() -> None:
    result = curate(pd.DataFrame({"formula": ["LiCoO2"], "Formula": ["x"]}))
    assert result.report["formula_column"] == "formula"
    assert result.curated.loc[0, "Formula"] == "x"


def test_huge_power_of_ten_cell_is_a_bad_value_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"formula formula formula\n\n 0x10 309")
    curate_or_user_error(path)


def test_renamed_duplicate_header_never_takes_a_later_columns_name(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"  # found by the fuzzer: "formula" x3 then "formula.1"
    path.write_bytes(b"formula,formula,formula,formula.1\nLiCoO2,a,b,c\n")
    result = curate(path)
    assert result.curated.loc[0, ["formula.1", "formula.2", "formula.3"]].tolist() == ["c", "a", "b"]
    check_result(result)
