import pandas as pd
import pytest

from battlab.errors import DataFileError
from battlab.tables import read_table


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path, sep):
    p = write(tmp_path, "t.csv", f"formula{sep}capacity\nLiCoO2{sep}140\nLiFePO4{sep}165\n")
    table = read_table(p)
    assert table.delimiter == sep
    assert list(table.data.columns) == ["formula", "capacity"]
    assert table.data["capacity"].tolist() == ["140", "165"]
    assert table.data.index.tolist() == [1, 2]


def test_semicolon_file_with_decimal_commas(tmp_path):
    p = write(tmp_path, "eu.csv", "formula;capacity\nLiCoO2;140,5\nLiFePO4;165,2\n")
    table = read_table(p)
    assert table.delimiter == ";"
    assert table.data["capacity"].tolist() == ["140,5", "165,2"]


def test_cells_stay_text(tmp_path):
    p = write(tmp_path, "t.csv", "formula,sigma\nNaN,<1E-10\n")
    row = read_table(p).data.iloc[0]
    assert row["formula"] == "NaN" and row["sigma"] == "<1E-10"


def test_ragged_rows_are_returned_aside_not_dropped(tmp_path):
    p = write(tmp_path, "r.csv", "formula,capacity\nLiCoO2,140\nLiFePO4,165,extra\n\nLiMn2O4\nLiNiO2,200\n")
    table = read_table(p)
    assert table.data["formula"].tolist() == ["LiCoO2", "LiNiO2"]
    assert [(r.row, r.line) for r in table.rejected] == [(2, 3), (3, 5)]
    assert table.rejected[0].reason == "row has 3 fields, the header has 2"
    assert table.n_rows == 4


@pytest.mark.parametrize("content, fragment", [
    ("", "empty"),
    ("   \n\n", "empty"),
    ("1.0,2.0,3.0\n4.0,5.0,6.0\n", "no header"),
])
def test_malformed_text_files(tmp_path, content, fragment):
    p = write(tmp_path, "bad.csv", content)
    with pytest.raises(DataFileError, match=fragment) as err:
        read_table(p)
    assert "bad.csv" in str(err.value)


def test_binary_file_is_refused(tmp_path):
    p = write(tmp_path, "bin.csv", bytes(range(256)) * 10, mode="wb")
    with pytest.raises(DataFileError, match="binary"):
        read_table(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        read_table(tmp_path / "nope.csv")


def test_missing_required_column_names_it_and_suggests(tmp_path):
    p = write(tmp_path, "t.csv", "Formula,capacity\nLiCoO2,140\n")
    with pytest.raises(DataFileError, match=r"missing column 'formula'.*did you mean 'Formula'"):
        read_table(p, required_columns=["formula"])


def test_wrong_delimiter_is_named(tmp_path):
    p = write(tmp_path, "t.csv", "formula capacity\nLiCoO2 140\n")
    with pytest.raises(DataFileError, match="wrong delimiter"):
        read_table(p, required_columns=["formula"])


def test_duplicate_columns_are_renamed_and_noted(tmp_path):
    p = write(tmp_path, "d.csv", "formula,x,x\nLiCoO2,1,2\n")
    table = read_table(p)
    assert list(table.data.columns) == ["formula", "x", "x.1"]
    assert "duplicate column 'x'" in table.notes[0]


def test_excel_and_parquet(tmp_path):
    df = pd.DataFrame({"formula": ["LiCoO2", "LiFePO4"], "capacity": ["140", "165 mAh/g"]})
    df.to_excel(tmp_path / "t.xlsx", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    for name in ("t.xlsx", "t.parquet"):
        table = read_table(tmp_path / name)
        assert table.data["capacity"].tolist() == ["140", "165 mAh/g"]
        assert table.data.index.tolist() == [1, 2]


def test_corrupt_excel(tmp_path):
    p = write(tmp_path, "t.xlsx", "formula,capacity\nLiCoO2,140\n")
    with pytest.raises(DataFileError, match="t.xlsx: cannot read as xlsx"):
        read_table(p)
