import math

import pytest

from battlab.units import convert, parse_cell, parse_unit, split_header


@pytest.mark.parametrize("text, value, unit", [
    ("165 mAh/g", 165.0, "milliampere_hour / gram"),
    ("165mAh g-1", 165.0, "milliampere_hour / gram"),
    ("1,5", 1.5, ""),
    ("0,165 Ah/g", 0.165, "ampere_hour / gram"),
    ("2.3×10^-4 S cm-1", 2.3e-4, "siemens / centimeter"),
    ("2.3x10-4", 2.3e-4, ""),
    ("−0.5", -0.5, ""),
    ("45 %", 45.0, "percent"),
    ("5 μm", 5.0, "micrometer"),
    ("1E-10", 1e-10, ""),
])
def test_parse_cell_values_and_units(text, value, unit):
    cell = parse_cell(text)
    assert cell.error == ""
    assert cell.value == pytest.approx(value)
    assert cell.unit == unit


@pytest.mark.parametrize("text, direction", [("<1E-10", "<"), (">1000", ">"), ("≤ 3", "<"), (">= 2", ">")])
def test_censored_values_keep_value_and_flag(text, direction):
    cell = parse_cell(text)
    assert cell.censored == direction
    assert math.isfinite(cell.value)


@pytest.mark.parametrize("text", ["", "NA", "n/a", "nan", "None", "-", None, float("nan")])
def test_missing_markers(text):
    assert parse_cell(text).missing


@pytest.mark.parametrize("text, fragment", [
    ("abc", "not a number"),
    ("1,500", "ambiguous"),
    ("inf", "non-finite"),
    (float("inf"), "non-finite"),
    ("12 parsecs per fortnight squared", "unit"),
    ("165 ± 3", "unit"),
])
def test_bad_cells_report_an_error(text, fragment):
    cell = parse_cell(text)
    assert fragment in cell.error
    assert math.isnan(cell.value) or not math.isfinite(cell.value)


def test_headers_with_units():
    assert split_header("Capacity (mAh/g)") == ("Capacity", "milliampere_hour / gram")
    assert split_header("Ionic conductivity (S cm-1)") == ("Ionic conductivity", "siemens / centimeter")
    assert split_header("Comma Gap [μm]") == ("Comma Gap", "micrometer")
    assert split_header("Space group #") == ("Space group #", None)
    assert split_header("Sample (batch A)") == ("Sample (batch A)", None)


def test_conversion_and_incompatible_units():
    assert convert(1.2, "mS/cm", "S/cm") == pytest.approx(1.2e-3)
    assert convert(45, "percent", "dimensionless") == pytest.approx(0.45)
    with pytest.raises(ValueError, match="cannot be converted"):
        convert(3.7, "V", "mAh/g")
    # per-atom and per-formula-unit energies are different quantities
    with pytest.raises(ValueError):
        convert(1.0, "eV/atom", "eV/fu")
    with pytest.raises(ValueError, match="unknown unit"):
        parse_unit("furlongs of joy")
