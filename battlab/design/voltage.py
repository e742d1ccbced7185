"""Average voltage of insertion electrodes from composition, and how a model of one working ion transfers to others.

The Materials Project's insertion-electrode collection (:func:`battlab.datasets.load_dataset`
``("mp_insertion_electrodes", working_ion=...)``) gives, per electrode, the ion-rich (discharged) and ion-poor
(charged) formulas and the DFT average voltage against the metal. :func:`electrode_table` stacks several working
ions, adds the **framework** (the host composition without the working ion, e.g. FePO4 for both LiFePO4 and
NaFePO4) and sets aside what cannot be used, with the reason. :func:`voltage_features` describes an electrode by
its discharged formula (battlab's "battery" composition preset), its charged formula (Magpie statistics) and its
working ion (one-hot and the ion's charge, radius and electronegativity).

:func:`evaluate_voltage` measures a tuned model (:func:`battlab.tune.tune`, settings chosen on the training rows
only, by cross-validation grouped by framework or random) on held-out rows, for three questions:

- ``"li_to_na_k"`` — trained on Li electrodes, tested on Na and K electrodes; Li frameworks that also occur
  among the Na/K electrodes are left out of training, so no framework is on both sides;
- ``"grouped"`` — all ions, the working ion a feature, a fifth of the frameworks held out (no framework on both sides);
- ``"random"`` — all ions, a random fifth of the electrodes held out (the setting of published figures: MAE 0.43 V,
  Joshi et al., ACS Appl. Mater. Interfaces 11, 18494 (2019); 0.37 V, Moses et al., Mater. Today Energy (2021)).

Example
-------
>>> raw = pd.DataFrame({"battery_id": ["a", "b", "c"], "working_ion": ["Li", "Na", "Li"],
...                     "formula_discharge": ["LiFePO4", "NaFePO4", "LiQqO2"], "formula_charge": ["FePO4"] * 3,
...                     "average_voltage": [3.4, 2.9, 4.0]})
>>> table, aside = electrode_table(raw)
>>> table["framework"].tolist(), aside["reason"].tolist()
(['FePO4', 'FePO4'], ["formula_discharge: unknown element 'Qq'"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["FEATURE_SETS", "SCHEMES", "VOLTAGE_RANGE", "VoltageEvaluation", "electrode_table", "evaluate_voltage",
           "load_electrodes", "voltage_features"]

#: Average voltages (V vs the metal) kept: outside, DFT voltages of insertion electrodes are artefacts.
VOLTAGE_RANGE = (0.0, 6.0)
#: Held-out sets of :func:`evaluate_voltage`.
SCHEMES = ("li_to_na_k", "grouped", "random")
_ION_PROPS = {  # charge, Shannon ionic radius (Å, 6-coordinate), Pauling electronegativity
    "Li": (1, 0.76, 0.98), "Na": (1, 1.02, 0.93), "K": (1, 1.38, 0.82), "Mg": (2, 0.72, 1.31),
    "Ca": (2, 1.00, 1.00), "Zn": (2, 0.74, 1.65), "Al": (3, 0.535, 1.61)}


def load_electrodes(ions: Sequence[str] = ("Li", "Na", "K"), api_key: str | None = None) -> pd.DataFrame:
    """The Materials Project insertion electrodes of several working ions, stacked (cached by the dataset loader)."""
    from battlab.datasets import load_dataset

    return pd.concat([load_dataset("mp_insertion_electrodes", working_ion=ion, api_key=api_key)[0] for ion in ions],
                     ignore_index=True)


def electrode_table(raw: pd.DataFrame, voltage_range: tuple[float, float] | None = VOLTAGE_RANGE
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Usable electrodes with their ``framework``, and the rows set aside (``row``, ``battery_id``, ``reason``)."""
    from battlab.design.candidates import framework
    from battlab.formulas import parse_formula

    need = ["working_ion", "formula_discharge", "formula_charge", "average_voltage"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise BattlabError(f"the electrode table lacks column(s) {', '.join(missing)}")
    keep, aside, frameworks = [], [], []
    ids = raw["battery_id"] if "battery_id" in raw else pd.Series(raw.index.astype(str), index=raw.index)
    for pos, (i, row) in enumerate(raw.iterrows()):
        why = ""
        ion = str(row["working_ion"])
        for col in ("formula_discharge", "formula_charge"):
            parsed = parse_formula(row[col])
            if parsed.error:
                why = f"{col}: {parsed.error}"
                break
        v = pd.to_numeric(pd.Series([row["average_voltage"]]), errors="coerce").iloc[0]
        if not why and ion not in _ION_PROPS:
            why = f"working ion {ion!r} not one of {', '.join(_ION_PROPS)}"
        if not why and not np.isfinite(v):
            why = f"average_voltage {row['average_voltage']!r} is not a number"
        if not why and voltage_range is not None and not voltage_range[0] <= v <= voltage_range[1]:
            why = f"average voltage {v:.3g} V outside {voltage_range[0]:g}-{voltage_range[1]:g} V"
        if why:
            aside.append({"row": pos, "battery_id": ids.loc[i], "reason": why})
            continue
        keep.append(i)
        frameworks.append(framework(row["formula_discharge"], ion))
    table = raw.loc[keep].reset_index(drop=True).assign(framework=frameworks)
    table["average_voltage"] = pd.to_numeric(table["average_voltage"])
    return table, pd.DataFrame(aside, columns=["row", "battery_id", "reason"])


#: Feature sets of :func:`voltage_features`.
FEATURE_SETS = ("formulas", "host")


def _ion_fraction(formulas: pd.Series, ions: pd.Series) -> np.ndarray:
    """Working-ion atoms per host atom of each formula."""
    from pymatgen.core import Composition

    out = []
    for f, ion in zip(formulas, ions, strict=True):
        comp = Composition(f)
        n_host = comp.num_atoms - comp[ion]
        out.append(comp[ion] / n_host if n_host else np.nan)
    return np.array(out, dtype=float)


def voltage_features(table: pd.DataFrame, feature_set: str = "formulas") -> pd.DataFrame:
    """Features of each electrode and its working ion (one-hot, charge, radius, electronegativity).

    ``"formulas"``: the discharged formula (preset "battery") and the charged formula (Magpie). ``"host"``: the
    framework without the ion (Magpie and stoichiometry) and the ion content per host atom, discharged and charged:
    no feature names the ion's element, so a model of Li electrodes sees Na and K ones in the same terms.
    """
    from battlab.featurize import composition_features

    if feature_set not in FEATURE_SETS:
        raise BattlabError(f"unknown feature set {feature_set!r}; choose one of {', '.join(FEATURE_SETS)}")
    ions = table["working_ion"].astype(str)
    ion = pd.DataFrame({f"ion is {k}": (ions == k).astype(float) for k in ("Li", "Na", "K")}, index=table.index)
    for j, name in enumerate(("ion charge", "ion radius (A)", "ion electronegativity")):
        ion[name] = [(_ION_PROPS.get(k, (np.nan,) * 3))[j] for k in ions]
    if feature_set == "host":
        host = pd.concat([composition_features(table["framework"].tolist(), preset=p) for p in ("magpie",
                                                                                                "stoichiometry")],
                         axis=1).add_prefix("host ").set_index(table.index)
        x_dis = _ion_fraction(table["formula_discharge"], ions)
        x_cha = _ion_fraction(table["formula_charge"], ions)
        amounts = pd.DataFrame({"ion per host atom, discharged": x_dis, "ion per host atom, charged": x_cha,
                                "ion per host atom, inserted": x_dis - x_cha}, index=table.index)
        return pd.concat([host, amounts, ion], axis=1)
    dis = composition_features(table["formula_discharge"].tolist(), preset="battery")
    dis = dis.drop(columns=[c for c in dis.columns if c.startswith("theoretical capacity")])
    cha = composition_features(table["formula_charge"].tolist(), preset="magpie").add_prefix("charged ")
    return pd.concat([pd.concat([dis, cha], axis=1).set_index(table.index), ion], axis=1)


@dataclass
class VoltageEvaluation:
    """What :func:`evaluate_voltage` measured: MAE on the held-out rows, the model chosen, the predictions."""

    scheme: str
    mae: float
    dummy_mae: float
    n_train: int
    n_test: int
    model: str
    inner_cv_mae: float
    split: str
    predictions: pd.DataFrame = field(repr=False)
    mae_by_ion: dict[str, float] = field(default_factory=dict)
    overlap_frameworks: int = 0


def _split(table: pd.DataFrame, scheme: str, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit

    ions = table["working_ion"].to_numpy()
    if scheme == "li_to_na_k":
        test = np.isin(ions, ["Na", "K"])
        if not test.any() or not (ions == "Li").any():
            raise BattlabError("li_to_na_k needs Li electrodes and Na or K electrodes")
        held = set(table.loc[test, "framework"])
        train = (ions == "Li") & ~table["framework"].isin(held).to_numpy()
        return np.flatnonzero(train), np.flatnonzero(test), "train Li, test Na+K, shared frameworks left out"
    if scheme == "grouped":
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        tr, te = next(splitter.split(table, groups=table["framework"]))
        return tr, te, f"{test_size:.0%} of frameworks held out (seed {seed})"
    if scheme == "random":
        tr, te = next(ShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(table))
        return tr, te, f"random {test_size:.0%} of electrodes held out (seed {seed})"
    raise BattlabError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def evaluate_voltage(table: pd.DataFrame, scheme: str = "grouped", *, features: pd.DataFrame | None = None,
                     models: Sequence[str] = ("lgbm", "et", "ridge"), n_trials: int = 12, inner_folds: int = 5,
                     test_size: float = 0.2, seed: int = 0, progress: bool = False) -> VoltageEvaluation:
    """Tune on the training rows of ``scheme`` (inner CV grouped by framework, random for ``"random"``), refit,
    and score the held-out rows. ``table`` comes from :func:`electrode_table`; ``features`` default to
    :func:`voltage_features` of it. Same ``seed``, same numbers.
    """
    from battlab.split import GroupKFoldBy, RandomKFold
    from battlab.tune import tune

    if features is None:
        features = voltage_features(table)
    tr, te, described = _split(table, scheme, test_size, seed)
    names = list(features.columns)
    data = features.reset_index(drop=True).assign(average_voltage=table["average_voltage"].to_numpy(),
                                                  framework=table["framework"].to_numpy())
    train = data.iloc[tr].reset_index(drop=True)
    test = data.iloc[te].reset_index(drop=True)
    inner = (RandomKFold(inner_folds, seed=seed) if scheme == "random"
             else GroupKFoldBy(inner_folds, by="framework", seed=seed))
    result = tune(train, names, "average_voltage", split=inner, models=tuple(models), n_trials=n_trials,
                  storage="sqlite:///:memory:", intervals=False, seed=seed, progress=progress)
    pred = result.model.predict(test[names].to_numpy(dtype=float))
    y = test["average_voltage"].to_numpy()
    rows = table.iloc[te].reset_index(drop=True)
    out = pd.DataFrame({"battery_id": rows.get("battery_id", pd.Series(te)), "working_ion": rows["working_ion"],
                        "formula_discharge": rows["formula_discharge"], "framework": rows["framework"],
                        "average_voltage": y, "predicted": pred})
    err = np.abs(pred - y)
    by_ion = {ion: float(err[out["working_ion"].to_numpy() == ion].mean()) for ion in sorted(set(out["working_ion"]))}
    overlap = len(set(train["framework"]) & set(test["framework"]))
    return VoltageEvaluation(scheme, float(err.mean()), float(np.abs(y - train["average_voltage"].mean()).mean()),
                             len(train), len(test), result.best_name, float(result.metrics["mae_mean"]),
                             described, out, by_ion, overlap)

