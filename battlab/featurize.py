"""Featurization: tables of formulas, structures and process settings in, feature matrices out.

Composition descriptors are computed for a whole column at once: formulas become a padded
(element index, amount) array, and each statistic is a vectorized reduction over an
element-property table. The values equal matminer's (its Magpie element data are the table; tests
compare every feature), at a small fraction of the time (``benchmarks/featurize.py``).

Every featurizer is a scikit-learn transformer (``fit``/``transform``/``get_feature_names_out``)
and, like a matminer featurizer, has ``feature_labels()``, ``citations()`` and ``implementors()``;
``feature_info()`` gives each feature's descriptor family (used to group SHAP values) and unit.

Example
-------
>>> X = composition_features(["LiCoO2", "LiFePO4"], preset="magpie")
>>> X.shape
(2, 132)
>>> round(float(X.loc[0, "MagpieData mean Electronegativity"]), 4)
2.435
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from battlab.formulas import parse_formula

#: Largest atomic number in the element tables (matminer's Magpie data go to Z = 118).
MAX_Z = 118
MAGPIE_PROPERTIES = (
    "Number", "MendeleevNumber", "AtomicWeight", "MeltingT", "Column", "Row", "CovalentRadius",
    "Electronegativity", "NsValence", "NpValence", "NdValence", "NfValence", "NValence",
    "NsUnfilled", "NpUnfilled", "NdUnfilled", "NfUnfilled", "NUnfilled", "GSvolume_pa",
    "GSbandgap", "GSmagmom", "SpaceGroupNumber",
)
MAGPIE_STATS = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")
WARD_2016 = (
    "@article{ward_agrawal_choudary_wolverton_2016, title={A general-purpose machine learning framework for "
    "predicting properties of inorganic materials}, volume={2}, DOI={10.1038/npjcompumats.2017.28}, "
    "number={1}, journal={npj Computational Materials}, author={Ward, Logan and Agrawal, Ankit and Choudhary, "
    "Alok and Wolverton, Christopher}, year={2016}}"
)
PYMATGEN_2013 = (
    "@article{ong_2013, title={Python Materials Genomics (pymatgen): A robust, open-source python library for "
    "materials analysis}, volume={68}, DOI={10.1016/j.commatsci.2012.10.028}, journal={Computational Materials "
    "Science}, author={Ong, Shyue Ping and others}, year={2013}}"
)
GADDY_2014 = (
    "@article{gaultois_2013, title={Data-driven review of thermoelectric materials: performance and resource "
    "considerations}, volume={25}, DOI={10.1021/cm400893e}, journal={Chemistry of Materials}, "
    "author={Gaultois, Michael W. and others}, year={2013}}"
)
FARADAY = 96485.33212  # C/mol
WORKING_IONS = ("Li", "Na", "K", "Mg")
_CHUNK = 20_000  # rows per vectorized block: bounds memory whatever the table size


# --------------------------------------------------------------------------- formulas -> padded arrays

@lru_cache(maxsize=1)
def _symbols() -> dict[str, int]:
    from pymatgen.core import Element

    return {Element.from_Z(z).symbol: z - 1 for z in range(1, MAX_Z + 1)}


_SIMPLE = re.compile(r"^(?:[A-Z][a-z]?(?:\d+(?:\.\d+)?|\.\d+)?|[()](?:\d+(?:\.\d+)?)?)+$")
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*\.?\d*)|(\()|\)(\d*\.?\d*)")


def _parse_simple(formula: str) -> dict[int, float] | None:
    """Plain formulas (elements, amounts, parentheses): a fast path; ``None`` sends others to pymatgen."""
    if not _SIMPLE.match(formula):
        return None
    symbols = _symbols()
    stack: list[dict[int, float]] = [{}]
    for el, amt, opening, close_amt in _TOKEN.findall(formula):
        if opening:
            stack.append({})
        elif el:
            z = symbols.get(el)
            if z is None:
                return None
            stack[-1][z] = stack[-1].get(z, 0.0) + (float(amt) if amt else 1.0)
        else:  # closing parenthesis
            if len(stack) == 1:
                return None
            group, factor = stack.pop(), float(close_amt) if close_amt else 1.0
            for z, a in group.items():
                stack[-1][z] = stack[-1].get(z, 0.0) + a * factor
    if len(stack) != 1 or not stack[0] or any(a <= 0 for a in stack[0].values()):
        return None
    return stack[0]


def _parse_any(formula: str) -> tuple[dict[int, float], str]:
    simple = _parse_simple(formula.strip()) if isinstance(formula, str) else None
    if simple is not None:
        return simple, ""
    p = parse_formula(formula)
    if p.error:
        return {}, p.error
    symbols = _symbols()
    amounts: dict[int, float] = {}
    for el, amt in p.composition.element_composition.items():
        amounts[symbols[el.symbol]] = amounts.get(symbols[el.symbol], 0.0) + float(amt)
    return amounts, ""


def parse_compositions(formulas: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Formulas -> padded element indices ``(n, k)`` (Z - 1, -1 = none), amounts ``(n, k)`` and errors.

    Each distinct formula is parsed once. Plain formulas take a fast path that gives the same
    amounts as pymatgen's ``Composition`` (checked in the tests); anything else (hydrates,
    unicode, oxidation states) goes through pymatgen via :func:`battlab.formulas.parse_formula`.

    Example
    -------
    >>> idx, amt, err = parse_compositions(["LiCoO2", "Xx"])
    >>> idx[0].tolist(), amt[0].tolist(), err
    ([2, 26, 7], [1.0, 1.0, 2.0], ['', "unknown element 'Xx'"])
    """
    values = pd.Series(list(formulas), dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = [_parse_any(u) for u in uniques]
    width = max((len(a) for a, _ in parsed), default=1) or 1
    u_idx = np.full((len(parsed) + 1, width), -1, dtype=np.int16)  # last row: missing formula
    u_amt = np.zeros((len(parsed) + 1, width))
    for i, (amounts, _) in enumerate(parsed):
        u_idx[i, : len(amounts)] = list(amounts)
        u_amt[i, : len(amounts)] = list(amounts.values())
    errors_u = [e for _, e in parsed] + ["empty formula"]
    codes = np.where(codes < 0, len(parsed), codes)
    return u_idx[codes], u_amt[codes], [errors_u[c] for c in codes]


def _masked_values(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Property values ``(n, k, p)`` of each composition's elements (padding gives row 0, masked later)."""
    return table[np.where(idx < 0, 0, idx)]


def _weighted_mean(values: np.ndarray, amt: np.ndarray) -> np.ndarray:
    # np.average(x, weights=amounts) as matminer computes it: sum(a x) / sum(a); pads have a = 0.
    x = np.where(amt[..., None] > 0, values, 0.0)
    return np.einsum("nk,nkp->np", amt, x) / amt.sum(axis=1)[:, None]


def element_stats(idx: np.ndarray, amt: np.ndarray, table: np.ndarray, stats: tuple[str, ...]) -> np.ndarray:
    """matminer's PropertyStats over a property table: returns ``(n, p, len(stats))``."""
    present = (amt > 0)[..., None]
    v = _masked_values(table, idx)
    nan_any = np.any(np.isnan(v) & present, axis=1)
    out = {}
    mean = _weighted_mean(v, amt)
    if {"minimum", "range"} & set(stats):
        out["minimum"] = np.where(present, v, np.inf).min(axis=1)
    if {"maximum", "range"} & set(stats):
        out["maximum"] = np.where(present, v, -np.inf).max(axis=1)
    if "range" in stats:
        out["range"] = out["maximum"] - out["minimum"]
    out["mean"] = mean
    if "avg_dev" in stats:
        out["avg_dev"] = _weighted_mean(np.abs(v - mean[:, None, :]), amt)
    if "mode" in stats:
        # The value of the most abundant element; ties (np.isclose, as matminer) -> the smallest value.
        top = amt.max(axis=1, keepdims=True)
        tied = (np.isclose(amt, top) & (amt > 0))[..., None]
        out["mode"] = np.where(tied, v, np.inf).min(axis=1)
    for name in ("minimum", "maximum", "range"):
        if name in out:
            out[name] = np.where(nan_any, np.nan, out[name])
    return np.stack([out[s] for s in stats], axis=-1)


@lru_cache(maxsize=1)
def magpie_table() -> pd.DataFrame:
    """Element-property table (118 elements x 22 properties) from matminer's Magpie data, NaNs imputed
    as matminer's ``from_preset("magpie")`` does."""
    from matminer.utils.data import MagpieData

    data = MagpieData(impute_nan=True).all_elemental_props
    symbols = list(_symbols())
    return pd.DataFrame({p: [float(data[p][s]) for s in symbols] for p in MAGPIE_PROPERTIES}, index=symbols)


# --------------------------------------------------------------------------- featurizers

class _Featurizer(TransformerMixin, BaseEstimator):
    """Base: formulas (a column of X, a Series or a list) in, a DataFrame of features out."""

    family = ""

    def fit(self, X: Any, y: Any = None) -> _Featurizer:
        self.n_features_in_ = 1
        return self

    def _formulas(self, X: Any) -> list:
        if isinstance(X, pd.DataFrame):
            return X[getattr(self, "formula_column", "formula")].tolist()
        return list(X.iloc[:, 0] if isinstance(X, np.ndarray) and X.ndim == 2 else X)

    def transform(self, X: Any) -> pd.DataFrame:
        formulas = self._formulas(X)
        idx, amt, errors = parse_compositions(formulas)
        values = np.empty((len(formulas), len(self.feature_labels())))  # filled chunk by chunk: one copy in memory
        with np.errstate(invalid="ignore", divide="ignore"):  # rows that failed to parse: NaN, set below
            for i in range(0, len(formulas), _CHUNK):
                values[i:i + _CHUNK] = self._compute(idx[i:i + _CHUNK], amt[i:i + _CHUNK])
        values[np.array([bool(e) for e in errors], dtype=bool)] = np.nan
        index = X.index if isinstance(X, (pd.DataFrame, pd.Series)) else None
        return pd.DataFrame(values, columns=self.feature_labels(), index=index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.feature_labels(), dtype=object)

    def feature_info(self) -> pd.DataFrame:
        """One row per feature: its descriptor family, the property it describes, and its unit."""
        return pd.DataFrame({"feature": self.feature_labels(), "family": self.family,
                             "property": self._properties(), "unit": self._units()})

    def _properties(self) -> list[str]:
        return self.feature_labels()

    def _units(self) -> list[str]:
        return [""] * len(self.feature_labels())

    def implementors(self) -> list[str]:
        return ["battlab developers"]


class ElementProperty(_Featurizer):
    """Statistics of element properties weighted by composition (Magpie: 22 properties x 6 stats = 132).

    Same labels and values as ``matminer.featurizers.composition.ElementProperty.from_preset("magpie")``.

    Example
    -------
    >>> ElementProperty().fit_transform(["Li2O"]).shape
    (1, 132)
    """

    family = "element property"

    def __init__(self, formula_column: str = "formula", properties: tuple[str, ...] = MAGPIE_PROPERTIES,
                 stats: tuple[str, ...] = MAGPIE_STATS):
        self.formula_column = formula_column
        self.properties = properties
        self.stats = stats

    def _compute(self, idx: np.ndarray, amt: np.ndarray) -> np.ndarray:
        table = magpie_table()[list(self.properties)].to_numpy()
        return element_stats(idx, amt, table, tuple(self.stats)).reshape(len(idx), -1)

    def feature_labels(self) -> list[str]:
        return [f"MagpieData {s} {p}" for p in self.properties for s in self.stats]

    def _properties(self) -> list[str]:
        return [p for p in self.properties for _ in self.stats]

    def citations(self) -> list[str]:
        return [WARD_2016]


class Stoichiometry(_Featurizer):
    """L^p norms of the atomic fractions (p = 0 counts the elements), as matminer's ``Stoichiometry``.

    Example
    -------
    >>> Stoichiometry().fit_transform(["LiCoO2"]).round(4).values.tolist()
    [[3.0, 0.6124, 0.5386, 0.5061, 0.5011, 0.5001]]
    """

    family = "stoichiometry"

    def __init__(self, formula_column: str = "formula", p_list: tuple[int, ...] = (0, 2, 3, 5, 7, 10)):
        self.formula_column = formula_column
        self.p_list = p_list

    def _compute(self, idx: np.ndarray, amt: np.ndarray) -> np.ndarray:
        frac = amt / amt.sum(axis=1, keepdims=True)
        cols = [(amt > 0).sum(axis=1).astype(float) if p == 0 else (frac ** p).sum(axis=1) ** (1.0 / p)
                for p in self.p_list]
        return np.column_stack(cols)

    def feature_labels(self) -> list[str]:
        return [f"{p}-norm" for p in self.p_list]

    def citations(self) -> list[str]:
        return [WARD_2016]


class ValenceOrbital(_Featurizer):
    """Mean number of s/p/d/f valence electrons and their fractions, as matminer's ``ValenceOrbital``.

    Example
    -------
    >>> ValenceOrbital().fit_transform(["Li2O"]).iloc[0, :4].round(4).tolist()
    [1.3333, 1.3333, 0.0, 0.0]
    """

    family = "valence orbital"
    orbitals = ("s", "p", "d", "f")

    def __init__(self, formula_column: str = "formula"):
        self.formula_column = formula_column

    def _compute(self, idx: np.ndarray, amt: np.ndarray) -> np.ndarray:
        table = magpie_table()[[f"N{o}Valence" for o in self.orbitals] + ["NValence"]].to_numpy()
        mean = _weighted_mean(_masked_values(table, idx), amt)
        return np.hstack([mean[:, :4], mean[:, :4] / mean[:, 4:5]])

    def feature_labels(self) -> list[str]:
        return [f"{prop} {o} valence electrons" for prop in ("avg", "frac") for o in self.orbitals]

    def citations(self) -> list[str]:
        return [WARD_2016]


@lru_cache(maxsize=1)
def _element_data() -> pd.DataFrame:
    """Per-element data that pymatgen ships: mass, Pauling X, transition metal?, cost, HHI."""
    import warnings

    from pymatgen.analysis.hhi import HHIModel
    from pymatgen.core import Element

    # pymatgen's element price table ($/kg, the values its CostAnalyzer uses); read directly, since building
    # CostDBElements validates every bibtex entry and takes seconds.
    prices: dict[str, float] = {}
    with (importlib.resources.files("pymatgen.analysis") / "costdb_elements.csv").open(encoding="utf-8") as fh:
        for row in csv.reader(fh, quotechar="|"):
            prices[row[0]] = min(float(row[1]), prices.get(row[0], np.inf))
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for elements without a Pauling X (noble gases)
        hhi = HHIModel().symbol_hhip_hhir
        for sym in _symbols():
            el = Element(sym)
            hp, hr = hhi.get(sym, (np.nan, np.nan))
            rows[sym] = {"mass": float(el.atomic_mass), "X": float(el.X), "tm": float(el.is_transition_metal),
                         "cost": prices.get(sym, np.nan), "hhi_p": float(hp), "hhi_r": float(hr)}
    return pd.DataFrame.from_dict(rows, orient="index")


class BatteryDescriptors(_Featurizer):
    """Descriptors battery researchers ask for, from data that pymatgen ships.

    * working-ion content (atoms per formula unit as written) and atomic fraction, for Li, Na, K, Mg;
    * theoretical gravimetric capacity for ``working_ion`` (mAh/g): all working ions of the formula
      extracted, ``n z F / M`` with M the molar mass of the whole (discharged) formula; 0 without the ion (a
      descriptor, not an electrode's capacity: :func:`battlab.design.capacity.redox_capacity` limits it by what the
      redox-active cations can give up, and the screening funnel ranks by that one);
    * mean Pauling electronegativity of the transition metals (NaN without one) and their fraction;
    * element cost ($/kg, pymatgen's cost database) and supply risk (Herfindahl-Hirschman index of
      production and reserves, pymatgen's HHI data), mass-weighted means and maxima.

    Example
    -------
    >>> d = BatteryDescriptors(working_ion="Li").fit_transform(["LiFePO4"])
    >>> round(float(d.loc[0, "theoretical capacity Li (mAh/g)"]), 1)
    169.9
    """

    family = "battery"

    def __init__(self, formula_column: str = "formula", working_ion: str = "Li"):
        self.formula_column = formula_column
        self.working_ion = working_ion

    def _columns(self) -> list[tuple[str, str]]:
        cols = [(f"{ion} content", "atoms per formula unit") for ion in WORKING_IONS]
        cols += [(f"{ion} fraction", "") for ion in WORKING_IONS]
        cols += [(f"theoretical capacity {self.working_ion} (mAh/g)", "mAh/g"),
                 ("mean TM electronegativity", "Pauling"), ("TM fraction", ""),
                 ("cost mean ($/kg)", "$/kg"), ("cost max ($/kg)", "$/kg"),
                 ("HHI production mean", ""), ("HHI reserve mean", ""), ("HHI production max", "")]
        return cols

    def _compute(self, idx: np.ndarray, amt: np.ndarray) -> np.ndarray:
        from pymatgen.core import Element

        data = _element_data()
        present = amt > 0
        total = amt.sum(axis=1)
        sym = _symbols()
        ion_amt = {ion: np.where(idx == sym[ion], amt, 0.0).sum(axis=1) for ion in WORKING_IONS}
        cols = [ion_amt[i] for i in WORKING_IONS] + [ion_amt[i] / total for i in WORKING_IONS]
        z = Element(self.working_ion).common_oxidation_states[0]
        mass = data["mass"].to_numpy()[np.where(idx < 0, 0, idx)]
        molar = (np.where(present, mass, 0.0) * amt).sum(axis=1)
        cols.append(ion_amt[self.working_ion] * z * FARADAY / 3.6 / molar)
        tm = data["tm"].to_numpy()[np.where(idx < 0, 0, idx)] * present
        x = data["X"].to_numpy()[np.where(idx < 0, 0, idx)]
        tm_amt = (tm * amt).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols.append(np.where(tm_amt > 0, (tm * amt * np.nan_to_num(x)).sum(axis=1) / tm_amt, np.nan))
        cols.append(tm_amt / total)
        wt = np.where(present, mass * amt, 0.0) / molar[:, None]  # mass fractions, as pymatgen's HHI
        for key, stat in (("cost", "mean"), ("cost", "max"), ("hhi_p", "mean"), ("hhi_r", "mean"),
                          ("hhi_p", "max")):
            v = data[key].to_numpy()[np.where(idx < 0, 0, idx)]
            if stat == "mean":
                cols.append(np.where(present, v * wt, 0.0).sum(axis=1))  # NaN stays NaN for unknown elements
            else:
                cols.append(np.where(present, v, -np.inf).max(axis=1))
        return np.column_stack(cols)

    def feature_labels(self) -> list[str]:
        return [c for c, _ in self._columns()]

    def _units(self) -> list[str]:
        return [u for _, u in self._columns()]

    def citations(self) -> list[str]:
        return [PYMATGEN_2013, GADDY_2014]


PRESETS: dict[str, tuple[type[_Featurizer], ...]] = {
    "magpie": (ElementProperty,),
    "stoichiometry": (Stoichiometry,),
    "valence": (ValenceOrbital,),
    "battery": (ElementProperty, Stoichiometry, ValenceOrbital, BatteryDescriptors),
}


class CompositionFeaturizer(_Featurizer):
    """Several composition featurizers in one transformer, by preset name (see :data:`PRESETS`).

    Example
    -------
    >>> f = CompositionFeaturizer(preset="battery")
    >>> len(f.feature_labels())
    162
    """

    def __init__(self, preset: str = "battery", formula_column: str = "formula", working_ion: str = "Li"):
        self.preset = preset
        self.formula_column = formula_column
        self.working_ion = working_ion

    def _parts(self) -> list[_Featurizer]:
        if self.preset not in PRESETS:
            from battlab.errors import BattlabError

            raise BattlabError(f"unknown preset {self.preset!r}; presets are {sorted(PRESETS)}")
        parts = []
        for cls in PRESETS[self.preset]:
            kw = {"formula_column": self.formula_column}
            if cls is BatteryDescriptors:
                kw["working_ion"] = self.working_ion
            parts.append(cls(**kw))
        return parts

    def _compute(self, idx: np.ndarray, amt: np.ndarray) -> np.ndarray:
        return np.hstack([p._compute(idx, amt) for p in self._parts()])

    def feature_labels(self) -> list[str]:
        return [label for p in self._parts() for label in p.feature_labels()]

    def feature_info(self) -> pd.DataFrame:
        return pd.concat([p.feature_info() for p in self._parts()], ignore_index=True)

    def citations(self) -> list[str]:
        return list(dict.fromkeys(c for p in self._parts() for c in p.citations()))


def composition_features(formulas: Any, preset: str = "magpie", working_ion: str = "Li") -> pd.DataFrame:
    """One row of composition features per formula, in order (matminer's labels for ``"magpie"``).

    Formulas that cannot be parsed give a row of NaN; :func:`featurize_table` records why.

    Example
    -------
    >>> composition_features(["LiCoO2"], preset="magpie").columns[0]
    'MagpieData minimum Number'
    """
    return CompositionFeaturizer(preset=preset, working_ion=working_ion).fit_transform(list(formulas))


# --------------------------------------------------------------------------- structure and process columns

#: Column names of a table's structure information (OBELiX's names by default).
STRUCTURE_COLUMNS = {"space_group": "Space group #", "a": "a", "b": "b", "c": "c", "alpha": "alpha",
                     "beta": "beta", "gamma": "gamma", "z": "Z"}


class StructureDescriptors(_Featurizer):
    """Crystal descriptors from a table's columns: space group number, lattice parameters, cell volume,
    volume per atom and density (``Z`` formula units of the formula per cell), as in OBELiX.

    Example
    -------
    >>> row = pd.DataFrame({"formula": ["Li7BiO6"], "Space group #": [2], "a": [5.5071], "b": [6.0425],
    ...                     "c": [5.5231], "alpha": [116.912], "beta": [120.867], "gamma": [62.234], "Z": [1]})
    >>> StructureDescriptors().fit_transform(row)["density (g/cm3)"].round(2).tolist()
    [4.38]
    """

    family = "structure"
    _LABELS = (("space group number", ""), ("a (Å)", "Å"), ("b (Å)", "Å"), ("c (Å)", "Å"), ("alpha (deg)", "deg"),
               ("beta (deg)", "deg"), ("gamma (deg)", "deg"), ("cell volume (Å3)", "Å3"),
               ("volume per atom (Å3)", "Å3/atom"), ("density (g/cm3)", "g/cm3"))

    def __init__(self, formula_column: str = "formula", columns: dict[str, str] | None = None):
        self.formula_column = formula_column
        self.columns = columns

    @classmethod
    def applies_to(cls, df: pd.DataFrame, columns: dict[str, str] | None = None) -> bool:
        """Whether the table has every structure column."""
        return all(c in df.columns for c in (columns or STRUCTURE_COLUMNS).values())

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        cols = self.columns or STRUCTURE_COLUMNS
        num = {k: pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float) for k, c in cols.items()}
        ca, cb, cg = (np.cos(np.radians(num[k])) for k in ("alpha", "beta", "gamma"))
        with np.errstate(invalid="ignore"):
            volume = num["a"] * num["b"] * num["c"] * np.sqrt(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg)
        idx, amt, _ = parse_compositions(X[self.formula_column])
        mass = _element_data()["mass"].to_numpy()[np.where(idx < 0, 0, idx)]
        n_atoms = amt.sum(axis=1)
        molar = (np.where(amt > 0, mass, 0.0) * amt).sum(axis=1)
        avogadro_a3 = 0.602214076  # N_A x 1e-24 cm3/Å3: g/mol per Å3 -> g/cm3
        values = np.column_stack([num["space_group"], num["a"], num["b"], num["c"], num["alpha"], num["beta"],
                                  num["gamma"], volume, volume / (num["z"] * n_atoms),
                                  num["z"] * molar / (avogadro_a3 * volume)])
        return pd.DataFrame(values, columns=self.feature_labels(), index=X.index)

    def feature_labels(self) -> list[str]:
        return [label for label, _ in self._LABELS]

    def _units(self) -> list[str]:
        return [unit for _, unit in self._LABELS]

    def citations(self) -> list[str]:
        return ["@article{therrien_2025, title={OBELiX: A Curated Dataset of Crystal Structures and Experimentally "
                "Measured Ionic Conductivities for Lithium Solid-State Electrolytes}, journal={arXiv:2502.14234}, "
                "author={Therrien, F. and others}, year={2025}}"]


class ProcessDescriptors(_Featurizer):
    """Numeric process columns passed through with their units, plus derived quantities.

    ``derived`` maps a new feature name to a ``DataFrame.eval`` expression over the columns (names with
    spaces or dots in backticks), e.g. ``{"compaction ratio": "`calender.gap.um` / thickness_before"}``.

    Example
    -------
    >>> df = pd.DataFrame({"gap (um)": [100, 200], "solid": [0.6, 0.7]})
    >>> ProcessDescriptors(columns=["gap (um)", "solid"], derived={"wet solids (um)": "`gap (um)` * solid"}
    ...                    ).fit_transform(df)["wet solids (um)"].tolist()
    [60.0, 140.0]
    """

    family = "process"

    def __init__(self, columns: list[str] | None = None, units: dict[str, str] | None = None,
                 derived: dict[str, str] | None = None):
        self.columns = columns
        self.units = units
        self.derived = derived

    def fit(self, X: pd.DataFrame, y: Any = None) -> ProcessDescriptors:
        cols = self.columns if self.columns is not None else list(X.select_dtypes("number").columns)
        self.columns_ = list(cols)
        self.n_features_in_ = len(cols)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X[self.columns_].apply(pd.to_numeric, errors="coerce").astype(float)
        for name, expr in (self.derived or {}).items():
            out[name] = pd.to_numeric(X.eval(expr), errors="coerce").astype(float)
        return out

    def feature_labels(self) -> list[str]:
        return list(getattr(self, "columns_", self.columns or [])) + list(self.derived or {})

    def _units(self) -> list[str]:
        units = self.units or {}
        return [units.get(c, "") for c in getattr(self, "columns_", self.columns or [])] + \
            [units.get(c, "derived") for c in (self.derived or {})]

    def citations(self) -> list[str]:
        return []


# --------------------------------------------------------------------------- pruning

class FeaturePruner(TransformerMixin, BaseEstimator):
    """Drop constant features and near-duplicates (``|Pearson r|`` above ``threshold``), saying why.

    Of two correlated features the first (in column order) is kept. ``dropped_`` lists each dropped
    feature with its reason.

    Example
    -------
    >>> X = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [2.0, 4, 6, 8.1], "c": [1.0, 1, 1, 1], "d": [4.0, 1, 3, 2]})
    >>> FeaturePruner(threshold=0.95).fit(X).dropped_["reason"].tolist()
    ["near-duplicate of 'a' (|r| = 1.000)", 'constant']
    """

    def __init__(self, threshold: float = 0.95):
        self.threshold = threshold

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeaturePruner:
        X = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        std = X.std(skipna=True)
        dropped = {c: "constant" for c in X.columns if not np.isfinite(std[c]) or std[c] == 0}
        rest = [c for c in X.columns if c not in dropped]
        corr = X[rest].corr().abs().to_numpy()
        kept: list[int] = []
        for j, col in enumerate(rest):
            dup = next((i for i in kept if corr[i, j] > self.threshold), None)
            if dup is None:
                kept.append(j)
            else:
                dropped[col] = f"near-duplicate of {rest[dup]!r} (|r| = {corr[dup, j]:.3f})"
        order = {c: i for i, c in enumerate(X.columns)}
        self.dropped_ = pd.DataFrame(sorted(dropped.items(), key=lambda kv: order[kv[0]]),
                                     columns=["feature", "reason"])
        self.kept_ = [c for c in X.columns if c not in dropped]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(X)[self.kept_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.kept_, dtype=object)


# --------------------------------------------------------------------------- tables

def default_cache_dir() -> Path:
    """Where feature tables are cached: ``$BATTLAB_CACHE``, else the platform cache folder."""
    import os

    env = os.environ.get("BATTLAB_CACHE", "").strip()
    if env:
        return Path(env).expanduser() / "features"
    import platformdirs

    return Path(platformdirs.user_cache_dir("battlab")) / "features"


def prune_info(table: pd.DataFrame, info: pd.DataFrame, threshold: float = 0.95) -> pd.DataFrame:
    """``info`` with ``kept`` and ``drop_reason`` columns from a :class:`FeaturePruner` fitted on ``table``."""
    pruner = FeaturePruner(threshold=threshold).fit(table[info["feature"].tolist()])
    reasons = dict(zip(pruner.dropped_["feature"], pruner.dropped_["reason"], strict=True))
    return info.assign(kept=~info["feature"].isin(reasons), drop_reason=info["feature"].map(reasons).fillna(""))


def _cache_key(formulas: list, settings: dict[str, Any]) -> str:
    from battlab import __version__

    h = hashlib.sha256(json.dumps({"settings": settings, "version": __version__}, sort_keys=True).encode())
    for f in formulas:
        h.update(str(f).encode() + b"\x00")
    return h.hexdigest()[:24]


def cached_composition_features(formulas: list, featurizer: CompositionFeaturizer,
                                cache_dir: str | Path | None) -> pd.DataFrame:
    """Composition features, read from ``cache_dir`` when the same formulas and settings were seen before."""
    if cache_dir is None:
        return featurizer.fit_transform(formulas)
    path = Path(cache_dir) / f"composition-{_cache_key(formulas, featurizer.get_params())}.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    features = featurizer.fit_transform(formulas)
    path.parent.mkdir(parents=True, exist_ok=True)
    features.to_parquet(path)
    return features


def featurize_table(df: pd.DataFrame, *, preset: str = "battery", formula_column: str | None = "formula",
                    working_ion: str = "Li", structure: bool | None = None,
                    process_columns: list[str] | None = None, derived: dict[str, str] | None = None,
                    units: dict[str, str] | None = None, cache_dir: str | Path | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add features to a (curated) table: dataframe in, dataframe out, plus a feature-info table.

    Returns ``(table, info)``: ``table`` is ``df`` with the feature columns appended and a
    ``featurize_error`` column ('' when the row was featurized); ``info`` lists the features with their
    family (element property, stoichiometry, valence orbital, battery, structure, process), property
    and unit. Downstream steps take exactly ``info["feature"]`` as the model's inputs.

    Parameters
    ----------
    structure
        Add structure descriptors; ``None``: when the table has the structure columns.
    process_columns, derived, units
        Process columns passed through (with their units) and derived quantities (see
        :class:`ProcessDescriptors`).
    cache_dir
        Folder where composition features are cached (parquet), keyed by the formulas and settings.

    Example
    -------
    >>> table, info = featurize_table(pd.DataFrame({"formula": ["LiCoO2", "Xx"]}), preset="magpie")
    >>> table["featurize_error"].tolist(), info["family"].unique().tolist()
    (['', "unknown element 'Xx'"], ['element property'])
    """
    parts, infos = [], []
    errors = pd.Series("", index=df.index)
    if formula_column:
        comp = CompositionFeaturizer(preset=preset, formula_column=formula_column, working_ion=working_ion)
        formulas = df[formula_column].tolist()
        block = cached_composition_features(formulas, comp, cache_dir)
        block.index = df.index
        parts.append(block)
        infos.append(comp.feature_info())
        errors[:] = parse_compositions(formulas)[2]
    if structure or (structure is None and formula_column and StructureDescriptors.applies_to(df)):
        s = StructureDescriptors(formula_column=formula_column)
        parts.append(s.fit_transform(df))
        infos.append(s.feature_info())
    if process_columns or derived:
        p = ProcessDescriptors(columns=process_columns or [], units=units, derived=derived).fit(df)
        parts.append(p.transform(df))
        infos.append(p.feature_info())
    if not parts:
        from battlab.errors import BattlabError

        raise BattlabError("nothing to featurize: give a formula column, structure or process columns")
    features = pd.concat(parts, axis=1)
    clash = [c for c in features.columns if c in df.columns and c not in (process_columns or [])]
    if clash:
        features = features.rename(columns={c: f"{c}{_FEATURE_SUFFIX}" for c in clash})
        for info in infos:
            info["feature"] = info["feature"].map(lambda c: f"{c}{_FEATURE_SUFFIX}" if c in clash else c)
    base = df.drop(columns=[c for c in (process_columns or []) if c in df.columns and c in features.columns])
    table = pd.concat([base, features, errors.rename("featurize_error")], axis=1)
    return table, pd.concat(infos, ignore_index=True)


_FEATURE_SUFFIX = " [feature]"  # featurize_table's rename of a feature whose name is already a column


class FeatureRecipe:
    """How a raw table becomes a model's feature columns: what :func:`featurize_table` was asked to compute,
    and which of its features (pruned, selected) the model takes, in order.

    A tuned model keeps its recipe, so that a table of new rows (formulas typed in an app, a lab's new
    measurements) is featurized exactly as the training table was (:meth:`transform`).

    Parameters
    ----------
    features : sequence of str
        The model's inputs, in its column order.
    formula_column, preset, working_ion
        Composition features (``formula_column=None``: none, e.g. a table of process parameters).
    structure : bool
        Structure descriptors from lattice columns (:class:`StructureDescriptors`).
    process_columns, derived, units
        Numeric columns passed through and derived quantities (:class:`ProcessDescriptors`).

    Example
    -------
    >>> r = FeatureRecipe(["gap (um)", "MagpieData mean Number"], formula_column="formula", preset="magpie",
    ...                   process_columns=["gap (um)"])
    >>> r.inputs
    ['formula', 'gap (um)']
    >>> X, errors = r.transform(pd.DataFrame({"formula": ["LiCoO2", "Xx"], "gap (um)": [100, 150]}))
    >>> X.round(2).to_dict("list"), errors
    ({'gap (um)': [100.0, nan], 'MagpieData mean Number': [11.5, nan]}, ['', "unknown element 'Xx'"])
    >>> FeatureRecipe.from_dict(r.to_dict()) == r
    True
    """

    def __init__(self, features: Any, *, formula_column: str | None = None, preset: str | None = "battery",
                 working_ion: str = "Li", structure: bool = False, process_columns: Any = (),
                 derived: dict[str, str] | None = None, units: dict[str, str] | None = None) -> None:
        self.features = [str(f) for f in features]
        self.formula_column = formula_column or None
        self.preset = preset if self.formula_column else None
        self.working_ion = working_ion
        self.structure = bool(structure and self.formula_column)
        self.process_columns = [str(c) for c in process_columns]
        self.derived = dict(derived or {})
        self.units = dict(units or {})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record (:meth:`from_dict` rebuilds the recipe)."""
        return {"features": self.features, "formula_column": self.formula_column, "preset": self.preset,
                "working_ion": self.working_ion, "structure": self.structure,
                "process_columns": self.process_columns, "derived": self.derived, "units": self.units}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureRecipe:
        return cls(d["features"], formula_column=d.get("formula_column"), preset=d.get("preset"),
                   working_ion=d.get("working_ion", "Li"), structure=d.get("structure", False),
                   process_columns=d.get("process_columns", ()), derived=d.get("derived"), units=d.get("units"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureRecipe) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        parts = [f"{len(self.features)} features"]
        if self.formula_column:
            parts.append(f"composition ({self.preset}) from {self.formula_column!r}")
        if self.structure:
            parts.append("structure")
        if self.process_columns:
            parts.append(f"{len(self.process_columns)} table columns")
        return f"FeatureRecipe({', '.join(parts)})"

    @property
    def composition(self) -> bool:
        """Whether the model reads a formula (a formula alone gives most of its inputs)."""
        return self.formula_column is not None

    @property
    def inputs(self) -> list[str]:
        """The raw columns :meth:`transform` reads."""
        cols = [self.formula_column] if self.formula_column else []
        if self.structure:
            cols += list(STRUCTURE_COLUMNS.values())
        return list(dict.fromkeys(cols + self.process_columns))

    def select(self, features: Any) -> FeatureRecipe:
        """The same recipe for a subset of its features (in the order given)."""
        names = [str(f) for f in features]
        unknown = [f for f in names if f not in self.features]
        if unknown:
            from battlab.errors import BattlabError

            raise BattlabError(f"not features of this table: {unknown[:5]}; features are {self.features[:8]}...")
        process = [c for c in self.process_columns if c in names]
        derived = {k: v for k, v in self.derived.items() if k in names}
        table_features = set(process) | set(derived)
        computed = [f for f in names if f not in table_features]
        structure_labels = set(StructureDescriptors().feature_labels())
        structure = self.structure and any(_base(f) in structure_labels for f in computed)
        return FeatureRecipe(names, formula_column=self.formula_column if computed else None, preset=self.preset,
                             working_ion=self.working_ion, structure=structure, process_columns=process,
                             derived=derived, units=self.units)

    def info(self) -> pd.DataFrame:
        """``feature``, ``family``, ``property``, ``unit`` of every feature, in the model's order."""
        infos = []
        if self.formula_column:
            infos.append(CompositionFeaturizer(preset=self.preset, working_ion=self.working_ion).feature_info())
            infos.append(StructureDescriptors().feature_info())
        infos.append(ProcessDescriptors(columns=self.process_columns, units=self.units,
                                        derived=self.derived).feature_info())
        info = pd.concat(infos, ignore_index=True).drop_duplicates("feature").set_index("feature")
        rows = [info.loc[_base(f)] if _base(f) in info.index else pd.Series({"family": "other", "property": f,
                                                                            "unit": ""}) for f in self.features]
        return pd.DataFrame(rows).reset_index(drop=True).assign(feature=self.features)[
            ["feature", "family", "property", "unit"]]

    def missing_inputs(self, df: pd.DataFrame) -> list[str]:
        """Input columns that ``df`` lacks (:meth:`transform` gives their features as NaN)."""
        return [c for c in self.inputs if c not in df.columns]

    def transform(self, df: pd.DataFrame, *, cache_dir: str | Path | None = None
                  ) -> tuple[pd.DataFrame, list[str]]:
        """The feature matrix of ``df`` (columns :attr:`features`, float, ``df``'s index) and one error per
        row ('' when featurized; a row with an error is all NaN). Missing structure or process columns give NaN
        features (the model's imputer fills its training median; see :meth:`missing_inputs`); a missing formula
        column is an error."""
        from battlab.errors import BattlabError

        if self.formula_column and self.formula_column not in df.columns:
            raise BattlabError(f"no formula column {self.formula_column!r}: the model computes composition "
                               f"features from it; columns are {[str(c) for c in df.columns][:12]}")
        work = pd.DataFrame({c: df[c] if c in df.columns else np.nan for c in self.inputs}, index=df.index)
        if not self.inputs:
            return pd.DataFrame(index=df.index, columns=self.features, dtype=float), [""] * len(df)
        table, _ = featurize_table(work, preset=self.preset or "battery", formula_column=self.formula_column,
                                   working_ion=self.working_ion, structure=self.structure,
                                   process_columns=self.process_columns, derived=self.derived or None,
                                   units=self.units, cache_dir=cache_dir)
        X = pd.DataFrame({f: table[f] if f in table.columns else table[_base(f)] for f in self.features},
                         index=df.index)
        errors = table["featurize_error"].tolist()
        for c in self.process_columns:  # a cell that is not a number is that row's error, not a silent NaN
            if c not in df.columns:
                continue
            raw = df[c]
            bad = (raw.notna() & pd.to_numeric(raw, errors="coerce").isna()
                   & (raw.astype(str).str.strip() != "")).to_numpy()
            for i in np.flatnonzero(bad):
                errors[i] = errors[i] or f"column {c!r}: {raw.iloc[i]!r} is not a number"
        X = X.apply(pd.to_numeric, errors="coerce").astype(float)
        X.loc[np.array([bool(e) for e in errors], dtype=bool)] = np.nan
        return X, errors

    @classmethod
    def infer(cls, features: Any, formula_column: str = "formula") -> FeatureRecipe:
        """A recipe for a feature list saved without one (models tuned before recipes were kept): composition
        features of the smallest preset that has them, structure descriptors, and the rest as table columns."""
        names = [str(f) for f in features]
        structure_labels = set(StructureDescriptors().feature_labels())
        preset, covered = None, set()
        for p in sorted(PRESETS, key=lambda p: len(CompositionFeaturizer(preset=p).feature_labels())):
            labels = set(CompositionFeaturizer(preset=p).feature_labels())
            hit = {f for f in names if _base(f) in labels}
            if len(hit) > len(covered):
                preset, covered = p, hit
        structure = any(_base(f) in structure_labels for f in names)
        rest = [f for f in names if f not in covered and _base(f) not in structure_labels]
        return cls(names, formula_column=formula_column if (covered or structure) else None,
                   preset=preset or "battery", structure=structure, process_columns=rest)


def _base(name: str) -> str:
    return name[: -len(_FEATURE_SUFFIX)] if name.endswith(_FEATURE_SUFFIX) else name


def add_model_target(table: pd.DataFrame, target: str, log: bool) -> tuple[pd.DataFrame, str]:
    """The column models learn: the target itself, or ``log10 <target>`` for quantities spanning decades
    (conductivities), as curation decided (its report's ``log_target``).

    Example
    -------
    >>> t, name = add_model_target(pd.DataFrame({"s": [1e-3, 1e-5]}), "s", log=True)
    >>> name, t[name].tolist()
    ('log10 s', [-3.0, -5.0])
    """
    if not log:
        return table, target
    name = f"log10 {target}"
    values = table[target].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return table.assign(**{name: np.where(values > 0, np.log10(values), np.nan)}), name
